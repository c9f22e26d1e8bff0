//! Reads configuration and secrets from the Worker environment: `[vars]` into
//! `GateConfig`, and each secret from a Secrets Store binding of its name when bound,
//! else from a plain Worker secret.

use crate::auth::{Credential, Scopes, HOOK_NAME};
use crate::config::{
    ConfigError, GateConfig, Secrets, ANALYTICS_TOKEN_NAME, SECRET_NAMES, SLACK_SIGNING_SECRET_NAME,
};
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
        slack_signing_secret: secret(env, SLACK_SIGNING_SECRET_NAME).await,
    }
}

/// Every token the gate accepts: each of `API_TOKENS` with the value of its secret
/// `TOKEN_<NAME>` (empty when unset: it matches nothing), and `HOOK_TOKEN`, when set, as
/// `hook` with every scope. The second value names the token secrets that are not set.
pub async fn credentials(
    env: &Env,
    config: Option<&GateConfig>,
    secrets: &Secrets,
) -> (Vec<Credential>, Vec<String>) {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for spec in config.map(|c| c.tokens.as_slice()).unwrap_or_default() {
        let name = spec.secret_name();
        let value = secret(env, &name).await.unwrap_or_default();
        if value.is_empty() {
            missing.push(name);
        }
        out.push(Credential {
            name: spec.name.clone(),
            scopes: Scopes::of(&spec.scopes),
            value,
        });
    }
    if let Some(hook) = secrets.hook_token.as_ref().filter(|t| !t.is_empty()) {
        out.push(Credential {
            name: HOOK_NAME.into(),
            scopes: Scopes::ALL,
            value: hook.clone(),
        });
    }
    (out, missing)
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
