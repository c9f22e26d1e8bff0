//! A fake outside world for controller tests: a stateful Cloudflare API (deployments and
//! versions), an Analytics Engine that answers from a traffic model, target `/healthz`,
//! an asset host and Slack. It records every call and fails on demand.

use rollout_gate::clients::http::{HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use rollout_gate::config::{AuditRetention, GateConfig, Secrets};
use rollout_gate::controller::{ActionRecord, RolloutStore, StoreError, StoredRollout};
use rollout_gate::rollout::AuditEvent;
use rollout_gate::time::Timestamp;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Context, Poll, Waker};

pub const ACCOUNT: &str = "acc";
pub const SCRIPT: &str = "mauntic-gateway";
pub const NEW: &str = "11111111-1111-4111-8111-111111111111";
pub const OLD: &str = "22222222-2222-4222-8222-222222222222";
pub const OTHER: &str = "33333333-3333-4333-8333-333333333333";
pub const T0: i64 = 1_795_773_600_000;

/// Minute `n` of the tests' clock.
pub fn minute(n: i64) -> Timestamp {
    Timestamp::from_millis(T0 + n * 60_000)
}

/// The fakes never wait, so polling once more always finishes.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// The gate's configuration against this world's hosts.
pub fn config() -> GateConfig {
    let vars = [
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
        ("CLOUDFLARE_API_BASE_URL", "http://cf.test/client/v4"),
        ("TARGET_BASE_URL", "http://targets.test/{script}"),
        ("ASSET_BASE_URL", "http://cdn.test/assets"),
        ("GATE_ENV", "production"),
        ("STATUS_PAGE_URL", "https://gate.test"),
    ];
    GateConfig::from_vars(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .expect("valid config")
}

/// The three secrets, with this world's Slack webhook.
pub fn secrets() -> Secrets {
    Secrets {
        api_token: Some("cf-token".into()),
        slack_webhook_url: Some("http://slack.test/slack/hook".into()),
        hook_token: Some("hook".into()),
        analytics_token: None,
        slack_signing_secret: None,
    }
}

/// One recorded call: method, URL and body.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub url: String,
    pub body: Option<String>,
}

/// A scripted failure: the next call whose URL contains `url_part` gets `response`.
pub struct Fault {
    pub url_part: &'static str,
    pub method: Option<Method>,
    pub response: Result<HttpResponse, TransportError>,
}

pub struct World {
    pub live: RefCell<Vec<(String, f64)>>,
    pub deployments_made: RefCell<Vec<Vec<(String, f64)>>>,
    pub calls: RefCell<Vec<Call>>,
    pub faults: RefCell<Vec<Fault>>,
    pub slack: RefCell<Vec<Value>>,
    /// Requests per minute over both versions.
    pub requests_per_minute: Cell<f64>,
    /// 5xx rate of the new and the old version.
    pub error_rates: Cell<(f64, f64)>,
    /// Share of requests slower than the p95 ceiling, new and old version.
    pub slow_rates: Cell<(f64, f64)>,
    /// Share of requests slower than the very slow threshold (a part of the slow ones).
    pub very_slow_rates: Cell<(f64, f64)>,
    /// Share of requests slower than the approaching threshold (at least the slow ones).
    pub approach_rates: Cell<(f64, f64)>,
    pub healthz_status: Cell<u16>,
    pub known_versions: Vec<&'static str>,
}

impl World {
    pub fn new() -> Self {
        World {
            live: RefCell::new(vec![(OLD.into(), 100.0)]),
            deployments_made: RefCell::new(Vec::new()),
            calls: RefCell::new(Vec::new()),
            faults: RefCell::new(Vec::new()),
            slack: RefCell::new(Vec::new()),
            requests_per_minute: Cell::new(6_000.0),
            error_rates: Cell::new((0.001, 0.001)),
            slow_rates: Cell::new((0.0, 0.0)),
            very_slow_rates: Cell::new((0.0, 0.0)),
            approach_rates: Cell::new((0.0, 0.0)),
            healthz_status: Cell::new(200),
            known_versions: vec![NEW, OLD, OTHER],
        }
    }

    pub fn fail_next(
        &self,
        url_part: &'static str,
        method: Option<Method>,
        status: u16,
        body: &str,
    ) {
        let mut response = HttpResponse::new(status, body);
        if status == 429 {
            response = response.with_header("retry-after", "60");
        }
        self.faults.borrow_mut().push(Fault {
            url_part,
            method,
            response: Ok(response),
        });
    }

    /// Calls whose URL contains `part` (and, when given, with this method).
    pub fn count(&self, method: Option<Method>, part: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.url.contains(part) && method.is_none_or(|m| m == c.method))
            .count()
    }

    /// The splits the gate wrote, new version's percent first.
    pub fn written_percents(&self) -> Vec<f64> {
        self.deployments_made
            .borrow()
            .iter()
            .map(|split| {
                split
                    .iter()
                    .find(|(v, _)| v == NEW)
                    .map_or(0.0, |(_, p)| *p)
            })
            .collect()
    }

    fn envelope(result: Value) -> HttpResponse {
        HttpResponse::new(
            200,
            json!({"success": true, "errors": [], "messages": [], "result": result}).to_string(),
        )
    }

    fn not_found() -> HttpResponse {
        HttpResponse::new(
            404,
            json!({"success": false, "errors": [{"code": 10007, "message": "This Worker does not exist on your account."}], "messages": [], "result": null}).to_string(),
        )
    }

    fn deployments(&self) -> HttpResponse {
        let versions: Vec<Value> = self
            .live
            .borrow()
            .iter()
            .map(|(v, p)| json!({"version_id": v, "percentage": p}))
            .collect();
        World::envelope(json!({"deployments": [{
            "id": "dep-live", "created_on": "2026-11-27T10:00:00Z", "source": "api",
            "strategy": "percentage", "author_email": "gate@example.com",
            "versions": versions, "annotations": {"workers/triggered_by": "deployment"}
        }]}))
    }

    fn create_deployment(&self, body: &str) -> HttpResponse {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let split: Vec<(String, f64)> = parsed["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        (
                            v["version_id"].as_str().unwrap_or_default().to_string(),
                            v["percentage"].as_f64().unwrap_or(-1.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sum: f64 = split.iter().map(|(_, p)| p).sum();
        if split.is_empty() || split.len() > 2 || (sum - 100.0).abs() > 0.001 {
            return HttpResponse::new(400, json!({"success": false, "errors": [{"code": 10021, "message": "invalid split"}], "messages": [], "result": null}).to_string());
        }
        *self.live.borrow_mut() = split.clone();
        self.deployments_made.borrow_mut().push(split);
        World::envelope(
            json!({"id": format!("dep-{}", self.deployments_made.borrow().len()),
            "versions": parsed["versions"], "strategy": "percentage"}),
        )
    }

    /// Per-minute rows for both versions between the query's `toDateTime` bounds, from the
    /// current split and error rates (expected counts, no noise).
    fn analytics(&self, sql: &str) -> HttpResponse {
        let bounds: Vec<i64> = sql
            .split("toDateTime(")
            .skip(1)
            .filter_map(|rest| rest.split(')').next()?.parse().ok())
            .collect();
        let (from, to) = (bounds[0], bounds[1]);
        let live = self.live.borrow().clone();
        let share = |v: &str| {
            live.iter()
                .find(|(id, _)| id == v)
                .map_or(0.0, |(_, p)| p / 100.0)
        };
        let (errors, slow, very_slow) = (
            self.error_rates.get(),
            self.slow_rates.get(),
            self.very_slow_rates.get(),
        );
        let ((a_new, a_old), (s_new, s_old)) = (self.approach_rates.get(), slow);
        let approaching = (a_new.max(s_new), a_old.max(s_old));
        let mut data = Vec::new();
        let mut minute = from;
        while minute < to {
            for (version, pick) in [(NEW, 0), (OLD, 1)] {
                let rate = |rates: (f64, f64)| if pick == 0 { rates.0 } else { rates.1 };
                let requests = (self.requests_per_minute.get() * share(version)).round();
                let count = |rates| (requests * rate(rates)).round().to_string();
                if requests > 0.0 {
                    data.push(json!({"version": version, "minute": minute.to_string(),
                        "requests": requests.to_string(), "errors_5xx": count(errors),
                        "slow": count(slow), "very_slow": count(very_slow),
                        "approaching": count(approaching), "p95_ms": 80.0,
                        "stored_rows": requests.to_string(), "error_rows": count(errors),
                        "slow_rows": count(slow)}));
                }
            }
            minute += 60;
        }
        let rows = data.len();
        HttpResponse::new(
            200,
            json!({"meta": [], "data": data, "rows": rows}).to_string(),
        )
    }

    fn route(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = req.url.as_str();
        let body = req.body.as_deref().unwrap_or("");
        if url.contains("/slack/") {
            self.slack
                .borrow_mut()
                .push(serde_json::from_str(body).unwrap_or(Value::Null));
            return Ok(HttpResponse::new(200, "ok"));
        }
        if url.contains("/healthz") {
            let status = self.healthz_status.get();
            let version = req
                .header("Cloudflare-Workers-Version-Overrides")
                .and_then(|h| h.split('"').nth(1))
                .unwrap_or(OLD);
            return Ok(HttpResponse::new(
                status,
                json!({"version_id": version}).to_string(),
            ));
        }
        if url.contains("/assets/") {
            return Ok(HttpResponse::new(
                if url.contains("deadbeef") { 200 } else { 404 },
                "",
            ));
        }
        if url.ends_with("/analytics_engine/sql") {
            return Ok(self.analytics(body));
        }
        if !url.contains(&format!("/accounts/{ACCOUNT}/workers/scripts/{SCRIPT}/")) {
            return Ok(World::not_found());
        }
        if url.contains("/deployments") {
            return Ok(match req.method {
                Method::Post => self.create_deployment(body),
                _ => self.deployments(),
            });
        }
        if let Some(id) = url.split("/versions/").nth(1) {
            if self.known_versions.contains(&id) {
                return Ok(World::envelope(json!({"id": id, "number": 7,
                    "resources": {"bindings": [{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]}})));
            }
            return Ok(HttpResponse::new(404, json!({"success": false, "errors": [{"code": 10007, "message": "version not found"}], "messages": [], "result": null}).to_string()));
        }
        Ok(World::not_found())
    }
}

impl HttpClient for World {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.calls.borrow_mut().push(Call {
            method: req.method,
            url: req.url.clone(),
            body: req.body.clone(),
        });
        let fault = {
            let mut faults = self.faults.borrow_mut();
            let hit = faults.iter().position(|f| {
                req.url.contains(f.url_part) && f.method.is_none_or(|m| m == req.method)
            });
            hit.map(|i| faults.remove(i))
        };
        match fault {
            Some(f) => f.response,
            None => self.route(&req),
        }
    }
}

/// In-memory store that can be told to fail.
#[derive(Default)]
pub struct MemStore {
    pub rollout: RefCell<Option<StoredRollout>>,
    pub events: RefCell<Vec<AuditEvent>>,
    pub actions: RefCell<Vec<ActionRecord>>,
    pub fail_saves: Cell<bool>,
}

impl RolloutStore for MemStore {
    async fn load(&self) -> Result<Option<StoredRollout>, StoreError> {
        Ok(self.rollout.borrow().clone())
    }
    async fn save(&self, rollout: &StoredRollout, events: &[AuditEvent]) -> Result<(), StoreError> {
        if self.fail_saves.get() {
            return Err(StoreError("disk full".into()));
        }
        // Round-trip through JSON like the Durable Object does.
        let json = serde_json::to_string(rollout).map_err(|e| StoreError(e.to_string()))?;
        *self.rollout.borrow_mut() =
            Some(serde_json::from_str(&json).map_err(|e| StoreError(e.to_string()))?);
        self.events.borrow_mut().extend_from_slice(events);
        Ok(())
    }
    async fn append_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        self.actions.borrow_mut().push(record.clone());
        Ok(())
    }
    async fn prune(
        &self,
        keep: AuditRetention,
        current: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // The same rule as the Durable Object's SQL (runtime/storage.rs), on the list.
        let cutoff = now.millis() - i64::from(keep.days) * 86_400_000;
        let mut events = self.events.borrow_mut();
        let mut newest: Vec<(usize, String)> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            newest.retain(|(_, v)| *v != e.version_id);
            newest.push((i, e.version_id.clone()));
        }
        newest.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        let kept: Vec<String> = newest
            .into_iter()
            .take(keep.rollouts as usize)
            .map(|(_, v)| v)
            .collect();
        let before = events.len() + self.actions.borrow().len();
        events.retain(|e| {
            e.version_id == current || (kept.contains(&e.version_id) && e.at.millis() >= cutoff)
        });
        self.actions
            .borrow_mut()
            .retain(|a| a.at.millis() >= cutoff);
        Ok((before - events.len() - self.actions.borrow().len()) as u64)
    }
}
