//! Reads configuration and secrets from the Worker environment: `[vars]` into
//! `GateConfig`, and each secret from a Secrets Store binding of its name when bound,
//! else from a plain Worker secret.

use crate::config::{ConfigError, GateConfig, Secrets, ANALYTICS_TOKEN_NAME, SECRET_NAMES};
use worker::{console_warn, Env};

/// The validated configuration, or every problem by variable name.
pub fn config(env: &Env) -> Result<GateConfig, Vec<ConfigError>> {
    GateConfig::from_vars(|name| env.var(name).ok().map(|v| v.to_string()))
}

/// The three secrets, a missing one `None` (named on `/healthz`, never shown), and the
/// optional analytics token.
pub async fn secrets(env: &Env) -> Secrets {
    let mut values = Vec::with_capacity(SECRET_NAMES.len());
    for name in SECRET_NAMES {
        values.push(secret(env, name).await);
    }
    let mut it = values.into_iter();
    Secrets {
        api_token: it.next().flatten(),
        slack_webhook_url: it.next().flatten(),
        hook_token: it.next().flatten(),
        analytics_token: secret(env, ANALYTICS_TOKEN_NAME).await,
    }
}

async fn secret(env: &Env, name: &str) -> Option<String> {
    if let Ok(store) = env.secret_store(name) {
        match store.get().await {
            Ok(Some(value)) => return Some(value),
            Ok(None) => {}
            // A bound but unreadable Secrets Store secret: say which, never the value.
            Err(err) => console_warn!("secrets store binding {name} unreadable: {err}"),
        }
    }
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
}
