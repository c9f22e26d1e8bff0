//! What build this is: package version, git sha and build time, embedded by `build.rs`
//! and shown by the gate's `GET /healthz`.

use serde::Serialize;

/// Identity of the running build. `git_sha` is `"unknown"` outside a git checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    pub service: &'static str,
    pub version: &'static str,
    pub git_sha: &'static str,
    pub git_dirty: bool,
    /// RFC 3339 UTC time of the build, or `"unknown"` when `SOURCE_DATE_EPOCH` was unusable.
    pub built_at: &'static str,
}

/// The build this binary was compiled from.
pub const BUILD: BuildInfo = BuildInfo {
    service: "rollout-gate",
    version: env!("CARGO_PKG_VERSION"),
    git_sha: env!("GATE_GIT_SHA"),
    git_dirty: matches!(env!("GATE_GIT_DIRTY").as_bytes(), b"true"),
    built_at: env!("GATE_BUILT_AT"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_names_the_service_and_a_sha_or_unknown() {
        assert_eq!(BUILD.service, "rollout-gate");
        let sha = BUILD.git_sha;
        assert!(
            sha == "unknown" || (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())),
            "unexpected sha {sha:?}"
        );
        assert!(BUILD.built_at == "unknown" || BUILD.built_at.ends_with('Z'));
    }
}
