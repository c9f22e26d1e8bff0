//! Who may call which route: the three scopes, named tokens (names and scopes in `[vars]`,
//! values in secrets), the constant-time check of a presented token against every
//! configured one, and the scope each route needs. Pure; the runtime reads the secrets.

use crate::api::{constant_time_eq, presented_token, Route};
use crate::http_error::ApiError;
use serde::{Deserialize, Serialize};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// CI: start a rollout (`POST /v1/rollouts`) and read its status.
    Start,
    /// People on call: pause, resume, promote, abort, run the parity audit.
    Operate,
    /// Status, events, the listing and the status pages.
    Read,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Start, Scope::Operate, Scope::Read];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Start => "start",
            Scope::Operate => "operate",
            Scope::Read => "read",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub const ALL: Scopes = Scopes(0b111);

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.has(*s))
            .map(Scope::name)
            .collect()
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// The scopes that each let a caller use `route` (any one suffices); empty for the open
/// routes (`/healthz`, `/openapi.json`).
pub fn route_scopes(route: &Route) -> &'static [Scope] {
    match route {
        // Slack's signature and the SLACK_OPERATORS allow-list stand in for a token.
        Route::Health | Route::OpenApi | Route::SlackActions => &[],
        Route::StartRollout => &[Scope::Start],
        // CI polls the rollout it started.
        Route::RolloutStatus { .. } => &[Scope::Read, Scope::Start],
        Route::Operator { .. } | Route::Parity => &[Scope::Operate],
        Route::ListRollouts
        | Route::RolloutEvents { .. }
        | Route::StatusPage
        | Route::RolloutPage { .. } => &[Scope::Read],
    }
}

/// Someone the gate has identified: `token:<name>` (`token:hook` for `HOOK_TOKEN`) or a
/// Cloudflare Access identity (`access:<email>`), with what they may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scopes: Scopes,
}

/// Refuses a caller without any of the route's scopes.
///
/// # Errors
/// 403 `missing_scope`, naming the caller and the scope (never a token value).
pub fn check_scope(caller: &Caller, route: &Route) -> Result<(), ApiError> {
    let needed = route_scopes(route);
    if needed.is_empty() || needed.iter().any(|s| caller.scopes.has(*s)) {
        return Ok(());
    }
    let wanted: Vec<String> = needed.iter().map(|s| format!("'{}'", s.name())).collect();
    Err(ApiError::Forbidden {
        code: "missing_scope",
        message: format!("{} lacks scope {}", caller.name, wanted.join(" or ")),
    })
}

/// One configured token: its name (shown in the audit log and on 403s), its scopes, and
/// its value (a secret; `Debug` does not print it).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub scopes: Scopes,
    pub value: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credential {{ name: {:?}, scopes: {:?} }}",
            self.name, self.scopes
        )
    }
}

/// The caller an `Authorization` header identifies among `credentials`. The presented
/// token is compared with every configured value, each in constant time, without stopping
/// at a match, so the time taken does not say which token (if any) matched. Empty values
/// (an unset secret) match nothing.
///
/// # Errors
/// 401 `unauthorized` for no token or one that matches none.
pub fn authenticate(header: Option<&str>, credentials: &[Credential]) -> Result<Caller, ApiError> {
    let presented = presented_token(header).ok_or(ApiError::Unauthorized)?;
    let mut found: Option<&Credential> = None;
    for credential in credentials {
        let same = constant_time_eq(&presented, &credential.value) & !credential.value.is_empty();
        if std::hint::black_box(same) && found.is_none() {
            found = Some(credential);
        }
    }
    found
        .map(|c| Caller {
            name: format!("token:{}", c.name),
            scopes: c.scopes,
        })
        .ok_or(ApiError::Unauthorized)
}

/// One entry of `API_TOKENS`: `{"name": "ci", "scopes": ["start"]}`. The value is the
/// secret `TOKEN_<NAME>` (`secret_name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// The name `HOOK_TOKEN` goes by: it has every scope.
pub const HOOK_NAME: &str = "hook";

impl TokenSpec {
    /// The secret holding this token's value: `TOKEN_` and the name in upper case.
    pub fn secret_name(&self) -> String {
        format!("TOKEN_{}", self.name.to_ascii_uppercase())
    }
}

/// Checks `API_TOKENS`: names of 1-32 characters of a-z, 0-9 and '_' starting with a
/// letter, none twice, not `hook`; each with at least one scope.
///
/// # Errors
/// The first problem, as a message.
pub fn check_token_specs(specs: &[TokenSpec]) -> Result<(), String> {
    for (i, spec) in specs.iter().enumerate() {
        let name = &spec.name;
        let good = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !good {
            return Err(format!(
                "{:?}: a name is 1-32 characters of a-z, 0-9 and '_', starting with a letter",
                crate::clients::truncate_to_bytes(name, 40)
            ));
        }
        if name == HOOK_NAME {
            return Err("\"hook\" is HOOK_TOKEN's name; choose another".into());
        }
        if specs[..i].iter().any(|s| &s.name == name) {
            return Err(format!("{name:?} is listed twice"));
        }
        if spec.scopes.is_empty() {
            return Err(format!("{name:?} has no scopes"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
