//! The gate's configuration: raw `[vars]` strings in, a validated `GateConfig` out (or
//! every problem at once, by name). Secrets are not here: see `Secrets`.

use crate::access::AccessConfig;
use crate::auth::{check_token_specs, Scope, Scopes, TokenSpec};
use crate::clients::analytics::{is_dataset_name, quote_sql_string, Columns};
use crate::clients::cloudflare::{ApiBudget, ApiConfig, RequiredBinding};
use crate::clients::probe::{build_probe_request, ProbeConfig};
use crate::policy::Policy;
use crate::rollout::WhenSecretsChanged;
use crate::slack_actions::Operators;
use serde::Serialize;

/// Default Cloudflare API base; the sandbox points it at loopback.
pub const DEFAULT_API_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// Any valid version id: `TARGET_BASE_URL` is checked by building a probe request with it.
const PROBE_CHECK_VERSION: &str = "00000000-0000-4000-8000-000000000000";
/// Default Analytics Engine dataset the target Workers write to.
pub const DEFAULT_DATASET: &str = "mauntic_logs";

/// Every `[vars]` name the gate reads, with its meaning (shown in docs and errors).
pub const VARS: &[(&str, &str)] = &[
    ("GATE_ENV", "environment name shown in Slack and on the status page (default \"dev\")"),
    ("CLOUDFLARE_ACCOUNT_ID", "account that owns the target Workers (required)"),
    ("CLOUDFLARE_API_BASE_URL", "Cloudflare API base (default https://api.cloudflare.com/client/v4)"),
    ("AE_DATASET", "Analytics Engine dataset the targets write to (default mauntic_logs)"),
    ("AE_COLUMNS", "JSON overrides of the column mapping (default index1 = version id, blob1 = event type, double1 = status, double2 = latency ms, blob2 = queue, double3 = depth, double4 = retries)"),
    ("TARGET_BASE_URL", "where a target's /healthz lives; {script} is replaced (required)"),
    ("ASSET_BASE_URL", "asset CDN base; pre-flight checks styles/<git-sha>.css when set"),
    ("REQUIRED_BINDINGS", "JSON list of bindings every new version must carry (pre-flight)"),
    ("QUEUE_NAMES", "comma-separated queues whose depth and retries are watched"),
    ("AUDIT_SCRIPTS", "comma-separated Workers the daily parity audit checks for REQUIRED_BINDINGS"),
    ("POLICY", "JSON overrides of the decision policy (thresholds, alpha)"),
    ("STATUS_PAGE_URL", "public URL of this gate, linked from Slack"),
    ("STATUS_PAGE_AUTH", "\"token\" (default): every route but /healthz and /openapi.json needs a token; \"access\": a request carrying Cloudflare Access's Cf-Access-Jwt-Assertion header is let in when that JWT verifies (RS256 against the team's keys, aud, iss, exp, nbf) and refused when it does not; without the header, a token is needed as before"),
    ("ACCESS_TEAM_DOMAIN", "with STATUS_PAGE_AUTH=access (required then): the Zero Trust team, \"myteam\" or https://myteam.cloudflareaccess.com"),
    ("ACCESS_AUD", "with STATUS_PAGE_AUTH=access (required then): the Access application's AUD tag"),
    ("ACCESS_CERTS_URL", "where the team's signing keys are read (default https://<team>.cloudflareaccess.com/cdn-cgi/access/certs; tests point it at the sandbox)"),
    ("ACCESS_SCOPES", "comma-separated scopes a verified Access identity has (default \"read\"; start, operate, read)"),
    ("API_TOKENS", "JSON list of named tokens, e.g. [{\"name\":\"ci\",\"scopes\":[\"start\"]}]; each token's value is the secret TOKEN_<NAME>. Scopes: start (POST /v1/rollouts, a rollout's status), operate (pause, resume, promote, abort, parity), read (status, events, listing, pages)"),
    ("SLACK_OPERATORS", "JSON object of the Slack users who may use the alerts' buttons, by user id, with their scopes, e.g. {\"U012ABCDEF\":[\"operate\",\"read\"]} (pause, resume, promote and abort need operate). With the secret SLACK_SIGNING_SECRET it turns Slack actions on: alerts carry buttons and POST /slack/actions takes the clicks (docs/deploy.md)"),
    ("API_CALLS_PER_5_MIN", "Cloudflare API calls the gate makes in any 5 minutes, all rollouts, hooks, commands and audits together (default 1000, at most 1200, Cloudflare's limit per token); leave room for whatever else uses the same token"),
    ("AUDIT_KEEP_ROLLOUTS", "rollouts of each script whose audit log is kept (default 20); older ones go when a rollout starts"),
    ("AUDIT_KEEP_DAYS", "days of audit and action rows kept (default 90), pruned when a rollout starts"),
    ("ROLLBACK_WHEN_SECRETS_CHANGED", "when Cloudflare refuses a rollback because secrets changed since the stable version was deployed (code 10220): \"force\" (default) re-sends it with ?force=true, bringing back the secret values that version was deployed with; \"pause\" does not force and alerts Slack. A step toward the new version is never forced"),
];

/// Who may read the status pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageAuth {
    /// The hook token, as Bearer or as the Basic-auth password.
    #[default]
    Token,
    /// Cloudflare Access guards the hostname: a request carrying Access's
    /// `Cf-Access-Jwt-Assertion` header is let in when that JWT verifies (`access`,
    /// `runtime::access`), with `ACCESS_SCOPES`; a header that does not verify is refused,
    /// never passed on to the token check. Requests without it need a token.
    Access,
}

/// The names of the three secrets, each read from a Secrets Store binding of that name
/// when bound, else from a plain Worker secret.
pub const SECRET_NAMES: [&str; 3] = ["CLOUDFLARE_API_TOKEN", "SLACK_WEBHOOK_URL", "HOOK_TOKEN"];

/// The optional secret for Analytics Engine SQL: a second Cloudflare token with only
/// Account Analytics Read, so that `CLOUDFLARE_API_TOKEN` needs only Workers Scripts Edit
/// (docs/deploy.md). Without it the SQL API gets `CLOUDFLARE_API_TOKEN`.
pub const ANALYTICS_TOKEN_NAME: &str = "CLOUDFLARE_ANALYTICS_TOKEN";

/// The optional secret that verifies clicks on the alerts' buttons: the Slack app's
/// signing secret (Basic Information > App Credentials). Slack actions are off without it.
pub const SLACK_SIGNING_SECRET_NAME: &str = "SLACK_SIGNING_SECRET";

/// Validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateConfig {
    pub environment: String,
    pub api: ApiConfig,
    pub dataset: String,
    pub columns: Columns,
    pub probe: ProbeConfig,
    pub asset_base_url: Option<String>,
    pub required_bindings: Vec<RequiredBinding>,
    pub queues: Vec<String>,
    pub audit_scripts: Vec<String>,
    pub policy: Policy,
    pub status_page_url: Option<String>,
    pub page_auth: PageAuth,
    /// What to do about a rollback Cloudflare refuses until forced (code 10220).
    pub rollback_when_secrets_changed: WhenSecretsChanged,
    /// How much of each script's audit log is kept.
    pub audit_retention: AuditRetention,
    /// The account's API budget: calls per rolling 5 minutes (`Book::api`'s cap).
    pub api_calls_per_5_min: u32,
    /// Named tokens (`API_TOKENS`); their values are secrets (`TokenSpec::secret_name`).
    pub tokens: Vec<TokenSpec>,
    /// Set when `STATUS_PAGE_AUTH=access`: the team, application and keys to verify with.
    pub access: Option<AccessConfig>,
    /// What a verified Access identity may do (`ACCESS_SCOPES`, default read).
    pub access_scopes: Scopes,
    /// The Slack users who may click the alerts' buttons (`SLACK_OPERATORS`; empty: off).
    pub slack_operators: Operators,
}

/// Cloudflare's API rate limit per user or token: 1,200 requests per 5 minutes (platform
/// reference §9). The gate's budget may not be set above it.
pub const API_LIMIT_PER_5_MIN: u32 = 1_200;

/// Each script's audit log and action log keep the rows of its newest `rollouts` rollouts
/// that are at most `days` old (`AUDIT_KEEP_ROLLOUTS`, `AUDIT_KEEP_DAYS`); older rows go
/// when a rollout starts. The rollout starting is always kept whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRetention {
    pub rollouts: u32,
    pub days: u32,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            rollouts: 20,
            days: 90,
        }
    }
}

/// The three credentials, and the optional analytics token. `Debug` never prints them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    pub api_token: Option<String>,
    pub slack_webhook_url: Option<String>,
    pub hook_token: Option<String>,
    /// `CLOUDFLARE_ANALYTICS_TOKEN` (`ANALYTICS_TOKEN_NAME`).
    pub analytics_token: Option<String>,
    /// `SLACK_SIGNING_SECRET` (`SLACK_SIGNING_SECRET_NAME`): the Slack app's signing
    /// secret, which turns Slack actions on with `SLACK_OPERATORS`.
    pub slack_signing_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets {{ missing: {:?} }}", self.missing())
    }
}

impl Secrets {
    /// Names of the secrets that are not set (never their values).
    pub fn missing(&self) -> Vec<&'static str> {
        let values = [&self.api_token, &self.slack_webhook_url, &self.hook_token];
        SECRET_NAMES
            .iter()
            .zip(values)
            .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| *name)
            .collect()
    }

    /// The token for Analytics Engine SQL: `CLOUDFLARE_ANALYTICS_TOKEN` when set, else
    /// `CLOUDFLARE_API_TOKEN`; an error naming both when neither is.
    pub fn analytics_token(&self) -> Result<&str, &'static str> {
        fn set(token: &Option<String>) -> Option<&str> {
            token.as_deref().filter(|t| !t.is_empty())
        }
        set(&self.analytics_token)
            .or_else(|| set(&self.api_token))
            .ok_or("neither CLOUDFLARE_ANALYTICS_TOKEN nor CLOUDFLARE_API_TOKEN is configured")
    }

    /// Whether Analytics Engine SQL has its own token (`"separate"`) or shares
    /// `CLOUDFLARE_API_TOKEN` (`"shared"`), as `/healthz` says.
    pub fn analytics_token_mode(&self) -> &'static str {
        if self
            .analytics_token
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            "separate"
        } else {
            "shared"
        }
    }
}

/// One problem with one variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl GateConfig {
    /// Builds the configuration from a variable lookup (`[vars]` in the Worker, a map in
    /// tests). Blank values count as unset.
    ///
    /// # Errors
    /// Every invalid or missing required variable, each as a `ConfigError`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<GateConfig, Vec<ConfigError>> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut errors = Vec::new();
        let mut fail =
            |var: &'static str, problem: String| errors.push(ConfigError { var, problem });

        let account_id = var("CLOUDFLARE_ACCOUNT_ID").unwrap_or_else(|| {
            fail("CLOUDFLARE_ACCOUNT_ID", "required".into());
            String::new()
        });
        let base = var("CLOUDFLARE_API_BASE_URL").unwrap_or_else(|| DEFAULT_API_BASE_URL.into());
        // Both go into every API URL: refuse here what `account_url` refuses on each call.
        if !is_http_url(&base)
            || ApiConfig::new("a")
                .with_base_url(&base)
                .account_url()
                .is_err()
        {
            fail(
                "CLOUDFLARE_API_BASE_URL",
                "must be an http(s) URL without query or fragment".into(),
            );
        }
        if !account_id.is_empty() && ApiConfig::new(&account_id).account_url().is_err() {
            fail(
                "CLOUDFLARE_ACCOUNT_ID",
                "1-64 characters of A-Z, a-z, 0-9, '-' and '_' (the 32-hex id from the dashboard)"
                    .into(),
            );
        }
        let dataset = var("AE_DATASET").unwrap_or_else(|| DEFAULT_DATASET.into());
        if !is_dataset_name(&dataset) {
            fail(
                "AE_DATASET",
                "only letters, digits and '_' are allowed".into(),
            );
        }
        let columns: Columns = parse_json(&var, "AE_COLUMNS", &mut fail).unwrap_or_default();
        if let Err(e) = columns.validate() {
            fail("AE_COLUMNS", e.to_string());
        }
        let target = var("TARGET_BASE_URL").unwrap_or_else(|| {
            fail(
                "TARGET_BASE_URL",
                "required, e.g. https://{script}.example.com".into(),
            );
            String::new()
        });
        // Every probe builds its URL from this: refuse here what the probe builder refuses.
        let probe = ProbeConfig::new(target.clone());
        if !target.is_empty() && build_probe_request(&probe, "w", PROBE_CHECK_VERSION).is_err() {
            fail(
                "TARGET_BASE_URL",
                "must be an http(s) URL without whitespace or braces other than {script}".into(),
            );
        }
        let asset_base_url = var("ASSET_BASE_URL");
        if asset_base_url.as_deref().is_some_and(|u| !is_http_url(u)) {
            fail("ASSET_BASE_URL", "must be an http(s) URL".into());
        }
        let required_bindings =
            parse_json(&var, "REQUIRED_BINDINGS", &mut fail).unwrap_or_default();
        let list = |name: &str| -> Vec<String> {
            var(name)
                .map(|v| {
                    v.split(',')
                        .map(|q| q.trim().to_string())
                        .filter(|q| !q.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let queues = list("QUEUE_NAMES");
        // Each name is quoted into the queue query on every tick; refuse what cannot be.
        if let Some(bad) = queues.iter().find(|q| quote_sql_string(q).is_err()) {
            fail(
                "QUEUE_NAMES",
                format!(
                    "{:?} has control characters",
                    crate::clients::truncate_to_bytes(bad, 64)
                ),
            );
        }
        let audit_scripts = list("AUDIT_SCRIPTS");
        if let Some(bad) = audit_scripts
            .iter()
            .find(|s| !crate::clients::is_script_name(s))
        {
            fail(
                "AUDIT_SCRIPTS",
                format!("{bad:?} is not a Worker script name"),
            );
        }
        let policy: Policy = parse_json(&var, "POLICY", &mut fail).unwrap_or_default();
        if let Err(e) = policy.validate() {
            fail("POLICY", e.to_string());
        }
        let page_auth = match var("STATUS_PAGE_AUTH").as_deref() {
            None | Some("token") => PageAuth::Token,
            Some("access") => PageAuth::Access,
            Some(other) => {
                fail(
                    "STATUS_PAGE_AUTH",
                    format!("{other:?}: use \"token\" or \"access\""),
                );
                PageAuth::Token
            }
        };
        let access = match page_auth {
            PageAuth::Token => None,
            PageAuth::Access => {
                let team = var("ACCESS_TEAM_DOMAIN");
                let aud = var("ACCESS_AUD");
                if team.is_none() {
                    fail(
                        "ACCESS_TEAM_DOMAIN",
                        "required with STATUS_PAGE_AUTH=access".into(),
                    );
                }
                if aud.is_none() {
                    fail("ACCESS_AUD", "required with STATUS_PAGE_AUTH=access".into());
                }
                let certs = var("ACCESS_CERTS_URL");
                if certs.as_deref().is_some_and(|u| !is_http_url(u)) {
                    fail("ACCESS_CERTS_URL", "must be an http(s) URL".into());
                }
                match (team, aud) {
                    (Some(team), Some(aud)) => AccessConfig::new(&team, &aud, certs.as_deref())
                        .map_err(|e| fail("ACCESS_TEAM_DOMAIN", e))
                        .ok(),
                    _ => None,
                }
            }
        };
        let access_scopes = match var("ACCESS_SCOPES") {
            None => Scopes::of(&[Scope::Read]),
            Some(list) => {
                let parsed: Option<Vec<Scope>> = list
                    .split(',')
                    .map(|s| Scope::ALL.into_iter().find(|k| k.name() == s.trim()))
                    .collect();
                parsed.map(|s| Scopes::of(&s)).unwrap_or_else(|| {
                    fail(
                        "ACCESS_SCOPES",
                        format!("{list:?}: comma-separated start, operate, read"),
                    );
                    Scopes::of(&[Scope::Read])
                })
            }
        };
        let tokens: Vec<TokenSpec> = parse_json(&var, "API_TOKENS", &mut fail).unwrap_or_default();
        if let Err(e) = check_token_specs(&tokens) {
            fail("API_TOKENS", e);
        }
        let slack_operators = match var("SLACK_OPERATORS") {
            None => Operators::default(),
            Some(raw) => Operators::parse(&raw).unwrap_or_else(|e| {
                fail("SLACK_OPERATORS", e);
                Operators::default()
            }),
        };
        let var_name = WhenSecretsChanged::VAR;
        let rollback_when_secrets_changed = match var(var_name) {
            None => WhenSecretsChanged::default(),
            Some(value) => WhenSecretsChanged::parse(&value).unwrap_or_else(|| {
                fail(var_name, format!("{value:?}: use \"force\" or \"pause\""));
                WhenSecretsChanged::default()
            }),
        };
        let mut count = |name: &'static str, default: u32| match var(name) {
            None => default,
            Some(value) => match value.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    fail(name, format!("{value:?}: a whole number, at least 1"));
                    default
                }
            },
        };
        let keep = AuditRetention::default();
        let audit_retention = AuditRetention {
            rollouts: count("AUDIT_KEEP_ROLLOUTS", keep.rollouts),
            days: count("AUDIT_KEEP_DAYS", keep.days),
        };
        let api_calls_per_5_min = match count("API_CALLS_PER_5_MIN", ApiBudget::DEFAULT_CAP) {
            n if n > API_LIMIT_PER_5_MIN => {
                fail(
                    "API_CALLS_PER_5_MIN",
                    format!("{n}: at most {API_LIMIT_PER_5_MIN}, Cloudflare's limit per token"),
                );
                ApiBudget::DEFAULT_CAP
            }
            n => n,
        };
        let config = GateConfig {
            environment: var("GATE_ENV").unwrap_or_else(|| "dev".into()),
            api: ApiConfig::new(account_id).with_base_url(base),
            dataset,
            columns,
            probe,
            asset_base_url,
            required_bindings,
            queues,
            audit_scripts,
            policy,
            status_page_url: var("STATUS_PAGE_URL"),
            page_auth,
            rollback_when_secrets_changed,
            audit_retention,
            api_calls_per_5_min,
            tokens,
            access,
            access_scopes,
            slack_operators,
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Link to one rollout on the status page, when the page URL is configured.
    pub fn rollout_url(&self, script: &str) -> Option<String> {
        self.status_page_url
            .as_ref()
            .map(|base| format!("{}/rollouts/{script}", base.trim_end_matches('/')))
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn parse_json<T: serde::de::DeserializeOwned>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    fail: &mut impl FnMut(&'static str, String),
) -> Option<T> {
    let raw = var(name)?;
    serde_json::from_str(&raw)
        .map_err(|e| fail(name, format!("invalid JSON: {e}")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("CLOUDFLARE_ACCOUNT_ID", "acc123"),
        ("TARGET_BASE_URL", "https://{script}.zeluto.workers.dev"),
    ];

    #[test]
    fn minimal_vars_get_documented_defaults() {
        let cfg = GateConfig::from_vars(vars(MINIMAL)).unwrap();
        assert_eq!(cfg.environment, "dev");
        assert_eq!(cfg.api.base_url, DEFAULT_API_BASE_URL);
        assert_eq!(cfg.dataset, "mauntic_logs");
        assert_eq!(cfg.columns, Columns::default());
        assert_eq!(cfg.policy, Policy::default());
        assert!(cfg.queues.is_empty() && cfg.required_bindings.is_empty());
        assert_eq!(
            cfg.rollback_when_secrets_changed,
            WhenSecretsChanged::Force,
            "forcing a refused rollback is the default"
        );
        assert_eq!(cfg.audit_retention, AuditRetention::default());
        assert_eq!(cfg.api_calls_per_5_min, 1_000);
    }

    #[test]
    fn every_problem_is_reported_at_once_by_name() {
        let errors = GateConfig::from_vars(vars(&[
            ("AE_DATASET", "logs; DROP"),
            ("POLICY", "{\"alpha\": 2}"),
            ("REQUIRED_BINDINGS", "[{\"kind\":\"nope\"}]"),
            ("ASSET_BASE_URL", "ftp://x"),
            ("STATUS_PAGE_AUTH", "nobody"),
            ("ROLLBACK_WHEN_SECRETS_CHANGED", "always"),
            ("AUDIT_KEEP_ROLLOUTS", "0"),
            ("AUDIT_KEEP_DAYS", "a year"),
            ("SLACK_OPERATORS", "{\"ana\": [\"operate\"]}"),
            ("API_CALLS_PER_5_MIN", "1201"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.var).collect();
        assert_eq!(
            names,
            [
                "CLOUDFLARE_ACCOUNT_ID",
                "AE_DATASET",
                "TARGET_BASE_URL",
                "ASSET_BASE_URL",
                "REQUIRED_BINDINGS",
                "POLICY",
                "STATUS_PAGE_AUTH",
                "SLACK_OPERATORS",
                "ROLLBACK_WHEN_SECRETS_CHANGED",
                "AUDIT_KEEP_ROLLOUTS",
                "AUDIT_KEEP_DAYS",
                "API_CALLS_PER_5_MIN"
            ]
        );
    }

    #[test]
    fn overrides_are_parsed() {
        let mut pairs = MINIMAL.to_vec();
        pairs.extend([
            ("GATE_ENV", "production"),
            ("QUEUE_NAMES", "mauntic-events, mauntic-mail"),
            ("POLICY", "{\"alpha\": 0.005}"),
            (
                "REQUIRED_BINDINGS",
                "[{\"kind\":\"analytics_engine\",\"dataset\":\"mauntic_logs\"}]",
            ),
            ("STATUS_PAGE_URL", "https://gate.zeluto.com/"),
            ("ROLLBACK_WHEN_SECRETS_CHANGED", "pause"),
            ("AUDIT_KEEP_ROLLOUTS", "5"),
            ("AUDIT_KEEP_DAYS", "30"),
            (
                "SLACK_OPERATORS",
                "{\"U012ABCDEF\": [\"operate\", \"read\"]}",
            ),
            ("API_CALLS_PER_5_MIN", "600"),
        ]);
        let cfg = GateConfig::from_vars(vars(&pairs)).unwrap();
        assert_eq!(
            cfg.audit_retention,
            AuditRetention {
                rollouts: 5,
                days: 30
            }
        );
        assert_eq!(cfg.rollback_when_secrets_changed, WhenSecretsChanged::Pause);
        assert_eq!(cfg.api_calls_per_5_min, 600);
        assert_eq!(cfg.queues, ["mauntic-events", "mauntic-mail"]);
        assert_eq!(cfg.policy.alpha, 0.005);
        assert_eq!(cfg.required_bindings.len(), 1);
        assert_eq!(
            cfg.slack_operators
                .check("U012ABCDEF", crate::auth::Scope::Operate),
            Ok(())
        );
        assert_eq!(
            cfg.rollout_url("gw").as_deref(),
            Some("https://gate.zeluto.com/rollouts/gw")
        );
    }

    #[test]
    fn access_mode_without_team_or_aud_is_a_config_error_not_an_open_door() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("STATUS_PAGE_AUTH", "access"));
        let errors = GateConfig::from_vars(vars(&pairs)).unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.var).collect();
        assert_eq!(names, ["ACCESS_TEAM_DOMAIN", "ACCESS_AUD"]);
        pairs.extend([
            ("ACCESS_TEAM_DOMAIN", "https://myteam.cloudflareaccess.com"),
            ("ACCESS_AUD", "aud-tag"),
            ("ACCESS_SCOPES", "read, operate"),
        ]);
        let cfg = GateConfig::from_vars(vars(&pairs)).unwrap();
        let access = cfg.access.unwrap();
        assert_eq!(access.issuer, "https://myteam.cloudflareaccess.com");
        assert_eq!(access.aud, "aud-tag");
        assert_eq!(cfg.access_scopes.names(), ["operate", "read"]);
        pairs.push(("ACCESS_SCOPES", "admin"));
        let errors = GateConfig::from_vars(vars(&pairs)).unwrap_err();
        assert_eq!(errors[0].var, "ACCESS_SCOPES");
    }

    #[test]
    fn named_tokens_come_from_api_tokens_and_bad_ones_are_named() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push((
            "API_TOKENS",
            r#"[{"name":"ci","scopes":["start"]},{"name":"oncall","scopes":["operate","read"]}]"#,
        ));
        let cfg = GateConfig::from_vars(vars(&pairs)).unwrap();
        assert_eq!(cfg.tokens.len(), 2);
        assert!(cfg.access.is_none(), "token mode by default");
        assert_eq!(cfg.access_scopes.names(), ["read"]);
        pairs.push(("API_TOKENS", r#"[{"name":"hook","scopes":["read"]}]"#));
        let errors = GateConfig::from_vars(vars(&pairs)).unwrap_err();
        assert_eq!(errors[0].var, "API_TOKENS");
    }

    #[test]
    fn secrets_debug_names_what_is_missing_never_values() {
        let secrets = Secrets {
            api_token: Some("cf-token-value".into()),
            slack_webhook_url: None,
            hook_token: Some(String::new()),
            analytics_token: None,
            slack_signing_secret: Some("signing-secret-value".into()),
        };
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("cf-token-value") && !shown.contains("signing-secret-value"));
        assert_eq!(secrets.missing(), ["SLACK_WEBHOOK_URL", "HOOK_TOKEN"]);
    }

    #[test]
    fn analytics_sql_gets_its_own_token_when_set_and_the_api_token_otherwise() {
        let mut secrets = Secrets {
            api_token: Some("scripts-edit".into()),
            ..Secrets::default()
        };
        assert_eq!(secrets.analytics_token(), Ok("scripts-edit"));
        assert_eq!(secrets.analytics_token_mode(), "shared");
        secrets.analytics_token = Some(String::new());
        assert_eq!(
            secrets.analytics_token(),
            Ok("scripts-edit"),
            "empty is unset"
        );
        secrets.analytics_token = Some("analytics-read".into());
        assert_eq!(secrets.analytics_token(), Ok("analytics-read"));
        assert_eq!(secrets.analytics_token_mode(), "separate");
        // The optional token is never reported missing, and never shown.
        assert!(!secrets.missing().contains(&"CLOUDFLARE_ANALYTICS_TOKEN"));
        assert!(!format!("{secrets:?}").contains("analytics-read"));
        let neither = Secrets::default();
        assert!(neither
            .analytics_token()
            .unwrap_err()
            .contains("CLOUDFLARE_ANALYTICS_TOKEN"));
    }
}
