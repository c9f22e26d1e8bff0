//! Client adapters against captured-shape fixtures (`tests/fixtures/`) and exact request
//! text: Cloudflare v4, Analytics Engine SQL, Slack webhooks, `/healthz` probes.

#[path = "clients/analytics.rs"]
mod analytics;
#[path = "clients/cloudflare.rs"]
mod cloudflare;
#[path = "clients/probe.rs"]
mod probe;
#[path = "clients/slack.rs"]
mod slack;

/// Shared ids and fixture loading.
pub mod support {
    use rollout_gate::clients::http::HttpResponse;

    /// The version being rolled out in every fixture.
    pub const NEW: &str = "11111111-1111-4111-8111-111111111111";
    /// The stable version in every fixture.
    pub const OLD: &str = "22222222-2222-4222-8222-222222222222";

    /// The fixture file `tests/fixtures/<path>` as text.
    pub fn fixture(path: &str) -> String {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// A response with `status` and the fixture as body.
    pub fn response(status: u16, path: &str) -> HttpResponse {
        HttpResponse::new(status, fixture(path))
    }
}
