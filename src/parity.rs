//! The parity audit: does every configured Worker's live version carry the bindings the
//! team requires (Secrets Store links, the Analytics Engine dataset)? Pure: findings in,
//! report out, and a fingerprint so the same gaps reach Slack once, not every day.

use crate::clients::cloudflare::{RequiredBinding, Version};
use crate::clients::slack::SlackMessage;
use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};

internally_tagged! {
    tag = "status";
    /// What the audit found for one Worker.
    #[derive(Clone, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    pub enum Finding {
        /// Every required binding is on the live version.
        Complete { script: String, version_id: String },
        /// The live version lacks these bindings.
        Gaps {
            script: String,
            version_id: String,
            missing: Vec<String>,
        },
        /// The audit could not read the Worker (it is reported, never taken as complete).
        Unreadable { script: String, why: String },
    }
}

/// The audit of every configured Worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParityReport {
    pub environment: String,
    pub findings: Vec<Finding>,
}

impl ParityReport {
    /// Judges one Worker's live version.
    pub fn judge(script: &str, version: &Version, required: &[RequiredBinding]) -> Finding {
        let missing: Vec<String> = version
            .missing_bindings(required)
            .iter()
            .map(|b| b.to_string())
            .collect();
        if missing.is_empty() {
            Finding::Complete {
                script: script.into(),
                version_id: version.id.clone(),
            }
        } else {
            Finding::Gaps {
                script: script.into(),
                version_id: version.id.clone(),
                missing,
            }
        }
    }

    /// True when some Worker lacks a binding or could not be read.
    pub fn has_gaps(&self) -> bool {
        self.findings
            .iter()
            .any(|f| !matches!(f, Finding::Complete { .. }))
    }

    /// A stable text of the gaps; the same gaps give the same fingerprint, so an unchanged
    /// problem is posted once (and a fixed-then-broken-again one is posted again).
    pub fn fingerprint(&self) -> String {
        let mut lines: Vec<String> = self
            .findings
            .iter()
            .filter_map(|f| match f {
                Finding::Complete { .. } => None,
                Finding::Gaps {
                    script, missing, ..
                } => Some(format!("{script}: {}", missing.join(", "))),
                Finding::Unreadable { script, .. } => Some(format!("{script}: unreadable")),
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// The Slack message listing each gap.
    pub fn message(&self) -> SlackMessage {
        let lines: Vec<String> = self
            .findings
            .iter()
            .filter_map(|f| match f {
                Finding::Complete { .. } => None,
                Finding::Gaps {
                    script,
                    version_id,
                    missing,
                } => Some(format!(
                    "• `{script}` (live version `{version_id}`) lacks {}",
                    missing.join(", ")
                )),
                Finding::Unreadable { script, why } => {
                    Some(format!("• `{script}` could not be read: {why}"))
                }
            })
            .collect();
        let title = format!(":warning: Binding parity gaps in {}", self.environment);
        SlackMessage::new(title.clone())
            .header(title)
            .section(lines.join("\n"))
            .context(vec![
                "Posted once per distinct set of gaps. Fix with a new version carrying the binding (docs/runbook.md).".into(),
            ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(bindings: serde_json::Value) -> Version {
        let body = serde_json::json!({"success": true, "errors": [], "messages": [],
            "result": {"id": "11111111-1111-4111-8111-111111111111", "resources": {"bindings": bindings}}});
        let resp = crate::clients::http::HttpResponse::new(200, body.to_string());
        crate::clients::cloudflare::parse_version(&resp).expect("version")
    }

    fn required() -> Vec<RequiredBinding> {
        serde_json::from_str(
            r#"[{"kind":"secrets_store_secret","secret_name":"slack_webhook_url"},
                {"kind":"analytics_engine","dataset":"mauntic_logs"}]"#,
        )
        .unwrap()
    }

    #[test]
    fn a_live_version_missing_a_secrets_store_link_is_a_gap_by_name() {
        let v = version(
            serde_json::json!([{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]),
        );
        let finding = ParityReport::judge("tenant-cache", &v, &required());
        let Finding::Gaps { missing, .. } = &finding else {
            panic!("{finding:?}")
        };
        assert_eq!(missing, &["Secrets Store secret `slack_webhook_url`"]);
    }

    #[test]
    fn the_fingerprint_names_gaps_and_ignores_complete_workers_and_order() {
        let gap = |s: &str| Finding::Gaps {
            script: s.into(),
            version_id: "v".into(),
            missing: vec!["x".into()],
        };
        let ok = Finding::Complete {
            script: "gw".into(),
            version_id: "v".into(),
        };
        let a = ParityReport {
            environment: "production".into(),
            findings: vec![gap("b"), ok.clone(), gap("a")],
        };
        let b = ParityReport {
            environment: "production".into(),
            findings: vec![gap("a"), gap("b")],
        };
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.has_gaps());
        let clean = ParityReport {
            environment: "production".into(),
            findings: vec![ok],
        };
        assert!(!clean.has_gaps() && clean.fingerprint().is_empty());
    }

    #[test]
    fn an_unreadable_worker_is_never_taken_as_complete() {
        let report = ParityReport {
            environment: "preview".into(),
            findings: vec![Finding::Unreadable {
                script: "gw".into(),
                why: "HTTP 500".into(),
            }],
        };
        assert!(report.has_gaps());
        assert!(report
            .message()
            .to_payload()
            .unwrap()
            .contains("could not be read"));
    }
}
