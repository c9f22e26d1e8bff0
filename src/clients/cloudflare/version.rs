//! Worker versions as the API returns them (`GET .../versions/{id}`, paged
//! `GET .../versions`), and the pre-flight check that a version carries the bindings the
//! team requires.

use super::response::{parse_envelope, ResultInfo};
use super::CloudflareError;
use crate::clients::http::HttpResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// One binding of a version (`resources.bindings[]`), with the fields pre-flight needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// `type`, e.g. `analytics_engine`, `secrets_store_secret`, `kv_namespace`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The variable name the code sees.
    pub name: String,
    /// `dataset` of an `analytics_engine` binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// `store_id` of a `secrets_store_secret` binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// `secret_name` of a `secrets_store_secret` binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// A binding the team requires on every new version (pre-flight). Unknown keys are
/// refused: a misspelt `store_id` would otherwise widen the check to any store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequiredBinding {
    /// A Secrets Store secret, by secret name (and store, when given).
    SecretsStoreSecret {
        /// `secret_name`.
        secret_name: String,
        /// `store_id`; `None` accepts any store.
        #[serde(default)]
        store_id: Option<String>,
    },
    /// An Analytics Engine binding writing to `dataset`.
    AnalyticsEngine {
        /// Dataset name.
        dataset: String,
    },
    /// Any binding of `type` named `name`.
    Named {
        /// The binding `type`.
        binding_type: String,
        /// The binding name.
        name: String,
    },
}

impl RequiredBinding {
    fn is_met_by(&self, b: &Binding) -> bool {
        match self {
            RequiredBinding::SecretsStoreSecret {
                secret_name,
                store_id,
            } => {
                b.kind == "secrets_store_secret"
                    && b.secret_name.as_deref() == Some(secret_name.as_str())
                    && store_id
                        .as_deref()
                        .is_none_or(|s| b.store_id.as_deref() == Some(s))
            }
            RequiredBinding::AnalyticsEngine { dataset } => {
                b.kind == "analytics_engine" && b.dataset.as_deref() == Some(dataset.as_str())
            }
            RequiredBinding::Named { binding_type, name } => {
                &b.kind == binding_type && &b.name == name
            }
        }
    }
}

impl fmt::Display for RequiredBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequiredBinding::SecretsStoreSecret {
                secret_name,
                store_id: Some(store),
            } => write!(f, "Secrets Store secret `{secret_name}` (store {store})"),
            RequiredBinding::SecretsStoreSecret { secret_name, .. } => {
                write!(f, "Secrets Store secret `{secret_name}`")
            }
            RequiredBinding::AnalyticsEngine { dataset } => {
                write!(f, "Analytics Engine dataset `{dataset}`")
            }
            RequiredBinding::Named { binding_type, name } => {
                write!(f, "{binding_type} binding `{name}`")
            }
        }
    }
}

/// A Worker version: identity, provenance and bindings (from `GET .../versions/{id}`;
/// list items carry no `resources`, so their `bindings` are empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Version id (UUID).
    pub id: String,
    /// Sequential number.
    pub number: Option<u64>,
    /// `metadata.created_on`.
    pub created_on: Option<String>,
    /// `metadata.source` (`wrangler`, `api`, `workersci`, ...).
    pub source: Option<String>,
    /// `metadata.author_email`.
    pub author_email: Option<String>,
    /// The `workers/tag` annotation.
    pub tag: Option<String>,
    /// The `workers/message` annotation.
    pub message: Option<String>,
    /// `resources.bindings[]`; entries without `type` and `name` are skipped.
    pub bindings: Vec<Binding>,
}

impl Version {
    /// The required bindings this version lacks (empty: pre-flight passes).
    pub fn missing_bindings<'a>(
        &self,
        required: &'a [RequiredBinding],
    ) -> Vec<&'a RequiredBinding> {
        required
            .iter()
            .filter(|r| !self.bindings.iter().any(|b| r.is_met_by(b)))
            .collect()
    }
}

#[derive(Deserialize)]
struct RawVersion {
    id: String,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    metadata: RawVersionMetadata,
    #[serde(default)]
    annotations: RawVersionAnnotations,
    #[serde(default)]
    resources: RawResources,
}

#[derive(Default, Deserialize)]
struct RawVersionMetadata {
    created_on: Option<String>,
    source: Option<String>,
    author_email: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawVersionAnnotations {
    #[serde(rename = "workers/tag")]
    tag: Option<String>,
    #[serde(rename = "workers/message")]
    message: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawResources {
    #[serde(default)]
    bindings: Vec<Value>,
}

impl From<RawVersion> for Version {
    fn from(raw: RawVersion) -> Self {
        Version {
            id: raw.id,
            number: raw.number,
            created_on: raw.metadata.created_on,
            source: raw.metadata.source,
            author_email: raw.metadata.author_email,
            tag: raw.annotations.tag,
            message: raw.annotations.message,
            // Bindings come in dozens of shapes; keep the ones we can name, skip the rest.
            bindings: raw
                .resources
                .bindings
                .into_iter()
                .filter_map(|b| crate::json::from_value(&b).ok())
                .collect(),
        }
    }
}

/// Parses `GET .../versions/{id}`.
///
/// # Errors
/// As [`parse_envelope`]; an unknown version is [`CloudflareError::NotFound`].
pub fn parse_version(resp: &HttpResponse) -> Result<Version, CloudflareError> {
    Ok(parse_envelope::<RawVersion>(resp)?.result.into())
}

/// One page of `GET .../versions` (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionsPage {
    /// The versions on this page.
    pub items: Vec<Version>,
    /// Paging: `page`, `per_page`, `total_count`, ...
    pub result_info: ResultInfo,
}

impl VersionsPage {
    /// True when a later page exists (by `total_pages`, else by `total_count`).
    pub fn has_more(&self) -> bool {
        let info = &self.result_info;
        let page = info.page.unwrap_or(1);
        match (info.total_pages, info.total_count, info.per_page) {
            (Some(pages), _, _) => page < pages,
            (None, Some(total), Some(per)) if per > 0 => page.saturating_mul(per) < total,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct VersionsResult {
    #[serde(default)]
    items: Vec<RawVersion>,
}

/// Parses `GET .../versions?page=&per_page=` (`result.items[]` plus `result_info`).
///
/// # Errors
/// As [`parse_envelope`].
pub fn parse_versions_page(resp: &HttpResponse) -> Result<VersionsPage, CloudflareError> {
    let envelope = parse_envelope::<VersionsResult>(resp)?;
    Ok(VersionsPage {
        items: envelope
            .result
            .items
            .into_iter()
            .map(Version::from)
            .collect(),
        result_info: envelope.result_info.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_more_pages_uses_total_pages_then_total_count() {
        let page = |page, per_page, total_count, total_pages| VersionsPage {
            items: vec![],
            result_info: ResultInfo {
                page,
                per_page,
                count: None,
                total_count,
                total_pages,
            },
        };
        assert!(page(Some(1), Some(10), Some(25), Some(3)).has_more());
        assert!(!page(Some(3), Some(10), Some(25), Some(3)).has_more());
        assert!(page(Some(2), Some(10), Some(25), None).has_more());
        assert!(!page(Some(3), Some(10), Some(25), None).has_more());
        assert!(!page(None, None, None, None).has_more());
    }
}
