//! The simulated outside world of one gate-sim run: Cloudflare's deployments API, Analytics
//! Engine, Slack, the target's `/healthz`, the asset host and the rollout object's storage,
//! all in one seeded, single-threaded value. Every call may fail by the run's `FaultPlan`;
//! every effect is recorded so the invariants can be checked after each step.

use super::faults::{FaultClass, FaultPlan};
use crate::clients::http::{HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use crate::controller::{ActionRecord, RolloutStore, StoreError, StoredRollout};
use crate::rollout::AuditEvent;
use crate::sim::rng::Rng;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

pub const ACCOUNT: &str = "acc";
pub const SCRIPT: &str = "mauntic-gateway";
pub const NEW: &str = "11111111-1111-4111-8111-111111111111";
pub const OLD: &str = "22222222-2222-4222-8222-222222222222";
/// The version a human deploys by hand at a random minute.
pub const HUMAN: &str = "33333333-3333-4333-8333-333333333333";
pub const SLACK_URL: &str = "http://slack.test/slack/hook";
/// `author_email` of the gate's own deployments (and of the one live before the hook).
pub const GATE_AUTHOR: &str = "gate@example.com";
/// Wall-clock millis of world minute 0.
pub const T0_MS: i64 = 1_795_773_600_000;
/// Requests per minute over both versions (10 rps).
const REQUESTS_PER_MINUTE: f64 = 600.0;
/// The old version's 5xx rate.
const OLD_ERROR_RATE: f64 = 0.005;

/// One deployment as Cloudflare keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub id: u64,
    pub split: Vec<(String, f64)>,
    pub author: String,
    pub message: Option<String>,
    /// World minute it was created.
    pub minute: i64,
}

/// A deployment write Cloudflare applied.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedWrite {
    pub minute: i64,
    pub split: Vec<(String, f64)>,
    /// The phase the rollout object had saved when the write was made.
    pub saved_phase: Option<String>,
    /// The answer never reached the gate.
    pub answer_lost: bool,
    /// Sent with `?force=true`.
    pub forced: bool,
    /// The same object call had listed the deployments successfully before it (since its
    /// previous write, if any): the write followed a fresh read.
    pub read_first: bool,
}

/// One Slack post Slack accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackPost {
    pub minute: i64,
    pub body: String,
    pub answer_lost: bool,
}

/// What the rollout object has durably stored.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub rollout: Option<String>,
    pub events: Vec<AuditEvent>,
    pub actions: usize,
}

/// The whole world. `HttpClient` and `RolloutStore` are both implemented on it, so one
/// value plays every outside party and the storage.
pub struct World {
    pub rng: RefCell<Rng>,
    pub plan: FaultPlan,
    /// The world's minute (the real clock; the gate's `now` may lag it on late ticks).
    pub minute: Cell<i64>,
    /// Cloudflare's deployments, oldest first; the last one serves.
    pub deployments: RefCell<Vec<Deployment>>,
    /// The split served in each world minute (what Analytics Engine saw).
    pub served: RefCell<BTreeMap<i64, Vec<(String, f64)>>>,
    pub writes: RefCell<Vec<AppliedWrite>>,
    pub slack_posts: RefCell<Vec<SlackPost>>,
    pub disk: RefCell<Disk>,
    /// The new version's 5xx rate (a bad release's is higher).
    pub new_error_rate: f64,
    /// Await points so far in the current object call, and the one to die at.
    awaits: Cell<u32>,
    crash_at: Cell<Option<(u32, bool)>>,
    crashed: Cell<bool>,
    /// Fault classes that fired, with counts.
    pub fired: RefCell<BTreeMap<FaultClass, u32>>,
    /// Fault classes that fired during the current step.
    pub fired_this_step: RefCell<std::collections::BTreeSet<FaultClass>>,
    /// Minute of the last Cloudflare call that failed (by any fault).
    pub last_cf_fault_minute: Cell<Option<i64>>,
    pub trace: RefCell<Vec<String>>,
    pub tracing: bool,
    /// The Slack body of every outbox item any save ever stored, by item id.
    pub committed: RefCell<BTreeMap<u64, String>>,
    /// The current object call's last deployments list succeeded, and no write came after it.
    fresh_read: Cell<bool>,
    /// Every text the gate saved (each stored rollout and audit event), when kept
    /// (`Options::keep_saved`).
    pub saved: RefCell<Option<Vec<String>>>,
}

impl World {
    pub fn new(seed: u64, plan: FaultPlan, bad_release: bool, tracing: bool) -> Self {
        let served = BTreeMap::new();
        World {
            rng: RefCell::new(Rng::derive(seed, &[0x0057_4f52_4c44])),
            plan,
            minute: Cell::new(-200),
            deployments: RefCell::new(vec![Deployment {
                id: 1,
                split: vec![(OLD.into(), 100.0)],
                author: GATE_AUTHOR.into(),
                message: None,
                minute: -1000,
            }]),
            served: RefCell::new(served),
            writes: RefCell::new(Vec::new()),
            slack_posts: RefCell::new(Vec::new()),
            disk: RefCell::new(Disk::default()),
            new_error_rate: if bad_release {
                OLD_ERROR_RATE * 5.0
            } else {
                OLD_ERROR_RATE
            },
            awaits: Cell::new(0),
            crash_at: Cell::new(None),
            crashed: Cell::new(false),
            fired: RefCell::new(BTreeMap::new()),
            fired_this_step: RefCell::new(std::collections::BTreeSet::new()),
            last_cf_fault_minute: Cell::new(None),
            trace: RefCell::new(Vec::new()),
            tracing,
            committed: RefCell::new(BTreeMap::new()),
            fresh_read: Cell::new(false),
            saved: RefCell::new(None),
        }
    }

    pub fn note(&self, line: impl FnOnce() -> String) {
        if self.tracing {
            self.trace
                .borrow_mut()
                .push(format!("[m{:>4}] {}", self.minute.get(), line()));
        }
    }

    pub fn fire(&self, class: FaultClass) {
        *self.fired.borrow_mut().entry(class).or_insert(0) += 1;
        self.fired_this_step.borrow_mut().insert(class);
        self.note(|| format!("fault: {class:?}"));
    }

    /// A uniform draw in [0, 1).
    pub fn roll(&self) -> f64 {
        self.rng.borrow_mut().uniform()
    }

    /// True with probability `p` (never draws when `p` is 0, so plans without a class
    /// replay the same stream as before it existed).
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.roll() < p
    }

    /// The split Cloudflare serves now.
    pub fn live(&self) -> Vec<(String, f64)> {
        self.deployments
            .borrow()
            .last()
            .map(|d| d.split.clone())
            .unwrap_or_default()
    }

    /// Records what is served during the current minute (the last deployment of it wins
    /// for the next minute; within a minute the one live at its start counts).
    pub fn serve_minute(&self) {
        let m = self.minute.get();
        self.served.borrow_mut().insert(m, self.live());
    }

    /// A human deploys `split` (wrangler versions deploy).
    pub fn deploy_by_hand(&self, split: Vec<(String, f64)>) {
        let mut deps = self.deployments.borrow_mut();
        let id = deps.len() as u64 + 1;
        deps.push(Deployment {
            id,
            split,
            author: "human@example.com".into(),
            message: Some("hotfix".into()),
            minute: self.minute.get(),
        });
    }

    // ---- crashes: the object dies at a chosen await point of one call ----

    /// Arms a crash at await point `at` of the next call (`after`: once that call's effect
    /// is applied, before its answer returns).
    pub fn arm_crash(&self, at: Option<(u32, bool)>) {
        // Armed once per object call: a read counts only within its own call.
        self.fresh_read.set(false);
        self.awaits.set(0);
        self.crash_at.set(at);
        self.crashed.set(false);
    }

    pub fn crashed(&self) -> bool {
        self.crashed.get()
    }

    pub fn awaits(&self) -> u32 {
        self.awaits.get()
    }

    /// Counts an await point; `Some(after)` when the object dies at this one.
    fn await_point(&self) -> Option<bool> {
        let n = self.awaits.get() + 1;
        self.awaits.set(n);
        match self.crash_at.get() {
            Some((at, after)) if at == n => {
                self.crashed.set(true);
                self.fire(FaultClass::Eviction);
                Some(after)
            }
            _ => None,
        }
    }

    /// Stores the rollout and its events, and notes every outbox item it holds.
    fn write_disk(&self, text: String, rollout: &StoredRollout, events: &[AuditEvent]) {
        if let Some(saved) = self.saved.borrow_mut().as_mut() {
            saved.push(text.clone());
            saved.extend(events.iter().filter_map(|e| serde_json::to_string(e).ok()));
        }
        let mut disk = self.disk.borrow_mut();
        disk.rollout = Some(text);
        disk.events.extend_from_slice(events);
        let mut committed = self.committed.borrow_mut();
        for item in &rollout.outbox.items {
            if let Ok(req) = crate::clients::slack::build_webhook_request(SLACK_URL, &item.message)
            {
                committed.insert(item.id, req.body.unwrap_or_default());
            }
        }
    }

    fn saved_phase(&self) -> Option<String> {
        let disk = self.disk.borrow();
        let stored: StoredRollout = serde_json::from_str(disk.rollout.as_deref()?).ok()?;
        Some(super::invariants::phase_label(&stored.state.phase))
    }

    // ---- the outside parties ----

    fn route(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = req.url.as_str();
        let body = req.body.as_deref().unwrap_or("");
        if url == SLACK_URL {
            return self.slack(body);
        }
        if url.contains("/healthz") {
            // The target answers as the version the override header pins (instrument/).
            let version = req
                .header("Cloudflare-Workers-Version-Overrides")
                .and_then(|h| h.split('"').nth(1))
                .unwrap_or(OLD);
            return Ok(HttpResponse::new(
                200,
                json!({"version_id": version}).to_string(),
            ));
        }
        if url.contains("/assets/") {
            let found = url.contains("deadbeef");
            return Ok(HttpResponse::new(if found { 200 } else { 404 }, ""));
        }
        if url.ends_with("/analytics_engine/sql") {
            return self.analytics(body);
        }
        let prefix = format!("/accounts/{ACCOUNT}/workers/scripts/{SCRIPT}/");
        let Some(rest) = url.split(&prefix).nth(1) else {
            return Ok(not_found());
        };
        if rest.starts_with("deployments") {
            return match req.method {
                Method::Post => self.create_deployment(body, rest.contains("force=true")),
                _ => self.list_deployments(),
            };
        }
        if let Some(id) = rest.strip_prefix("versions/") {
            if [NEW, OLD, HUMAN].contains(&id) {
                return Ok(envelope(
                    json!({"id": id, "number": 7, "resources": {"bindings": [
                    {"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}]}}),
                ));
            }
        }
        Ok(not_found())
    }

    /// A Cloudflare fault for this call, if the plan draws one: `Err` is the answer to give
    /// instead; `Ok(lose)` proceeds, losing the answer after applying when `lose`.
    fn cloudflare_fault(
        &self,
        is_write: bool,
    ) -> Result<bool, Result<HttpResponse, TransportError>> {
        let p = &self.plan;
        let fault = if self.chance(p.timeout) {
            Some((FaultClass::Timeout, Err(TransportError::Timeout(10_000))))
        } else if self.chance(p.server_error) {
            Some((
                FaultClass::ServerError,
                Ok(cf_error(500, 10013, "An unknown error has occurred.")),
            ))
        } else if self.chance(p.rate_limited) {
            let response = cf_error(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .with_header("retry-after", "120");
            Some((FaultClass::RateLimited, Ok(response)))
        } else {
            None
        };
        if let Some((class, answer)) = fault {
            self.fire(class);
            self.last_cf_fault_minute.set(Some(self.minute.get()));
            return Err(answer);
        }
        let lose = is_write && self.chance(p.write_answer_lost);
        if lose {
            self.fire(FaultClass::WriteAnswerLost);
            self.last_cf_fault_minute.set(Some(self.minute.get()));
        }
        Ok(lose)
    }

    fn list_deployments(&self) -> Result<HttpResponse, TransportError> {
        let deps = self.deployments.borrow();
        let mut shown: Vec<&Deployment> = deps.iter().rev().take(10).collect();
        // A write made this minute or the last may not be visible yet: the list shows the
        // one before (eventual consistency; no source bounds it, so the sim tries both).
        let newest_is_fresh = shown
            .first()
            .is_some_and(|d| d.minute >= self.minute.get() - 1);
        if newest_is_fresh && shown.len() > 1 && self.chance(self.plan.stale_read) {
            self.fire(FaultClass::StaleRead);
            shown.remove(0);
        }
        let list: Vec<Value> = shown.into_iter().map(deployment_json).collect();
        self.fresh_read.set(true);
        Ok(envelope(json!({"deployments": list})))
    }

    fn create_deployment(&self, body: &str, forced: bool) -> Result<HttpResponse, TransportError> {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let split: Vec<(String, f64)> = parsed["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        let id = v["version_id"].as_str().unwrap_or_default().to_string();
                        (id, v["percentage"].as_f64().unwrap_or(-1.0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sum: f64 = split.iter().map(|(_, p)| p).sum();
        let known = split
            .iter()
            .all(|(v, p)| [NEW, OLD, HUMAN].contains(&v.as_str()) && *p >= 0.0);
        if split.is_empty() || split.len() > 2 || (sum - 100.0).abs() > 0.001 || !known {
            // PLACEHOLDER code: no source gives Cloudflare's code for an invalid split.
            return Ok(cf_error(
                400,
                100_000,
                "invalid split (sandbox placeholder code)",
            ));
        }
        // After a secret change, giving the older version more traffic than it has is
        // refused unless forced (wrangler's versions/api.ts retries on exactly 10220; the
        // message text is the one wrangler's rollback test captures).
        let secret_changed = self
            .plan
            .secret_change_minute
            .is_some_and(|m| self.minute.get() >= m);
        let old_share = |s: &[(String, f64)]| share_of(s, OLD);
        if secret_changed && !forced && old_share(&split) > old_share(&self.live()) {
            self.fire(FaultClass::SecretChanged);
            return Ok(cf_error(400, 10220, "A secret has changed since this version was active. If you are sure this is ok, add a ?force=true query parameter to allow the rollback. The following secrets have changed: API_KEY"));
        }
        let message = parsed["annotations"]["workers/message"]
            .as_str()
            .map(String::from);
        let mut deps = self.deployments.borrow_mut();
        let id = deps.len() as u64 + 1;
        deps.push(Deployment {
            id,
            split: split.clone(),
            author: GATE_AUTHOR.into(),
            message,
            minute: self.minute.get(),
        });
        let result = deployment_json(deps.last().expect("just pushed"));
        drop(deps);
        self.writes.borrow_mut().push(AppliedWrite {
            minute: self.minute.get(),
            split,
            saved_phase: self.saved_phase(),
            answer_lost: false,
            forced,
            read_first: self.fresh_read.replace(false),
        });
        Ok(envelope(result))
    }

    /// Per-minute rows for both versions inside the query's `toDateTime` bounds, from what
    /// was served each minute. Rows of the newest minutes are missing while the plan's
    /// ingestion lag lasts; a partial answer drops rows at random.
    fn analytics(&self, sql: &str) -> Result<HttpResponse, TransportError> {
        if self.chance(self.plan.analytics_failure) {
            self.fire(FaultClass::AnalyticsFailure);
            return Ok(HttpResponse::new(
                500,
                "Internal error while running the query (sandbox placeholder text)",
            ));
        }
        if !sql.contains("AS errors_5xx") {
            // The queue query: no queues in this world.
            return Ok(HttpResponse::new(
                200,
                json!({"meta": [], "data": [], "rows": 0}).to_string(),
            ));
        }
        let bounds: Vec<i64> = sql
            .split("toDateTime(")
            .skip(1)
            .filter_map(|rest| rest.split(')').next()?.parse().ok())
            .collect();
        let (Some(&from), Some(&to)) = (bounds.first(), bounds.get(1)) else {
            return Ok(HttpResponse::new(422, "bad bounds"));
        };
        let lag = self.plan.analytics_lag_minutes;
        if lag > 1 {
            self.fire(FaultClass::AnalyticsLate);
        }
        let world_minute = |unix_s: i64| (unix_s * 1000 - T0_MS).div_euclid(60_000);
        let visible_until = T0_MS / 1000 + (self.minute.get() - lag) * 60;
        let served = self.served.borrow();
        let mut data = Vec::new();
        let mut minute = from.div_euclid(60) * 60;
        let mut rng = Rng::derive(0xA11A, &[minute as u64, to as u64]);
        while minute < to && minute < visible_until {
            let m = world_minute(minute);
            let split = served
                .get(&m)
                .cloned()
                .unwrap_or_else(|| vec![(OLD.into(), 100.0)]);
            for (version, pct) in split {
                let requests = (REQUESTS_PER_MINUTE * pct / 100.0).round();
                if requests <= 0.0 {
                    continue;
                }
                let rate = if version == NEW {
                    self.new_error_rate
                } else {
                    OLD_ERROR_RATE
                };
                let errors = (rng.poisson(requests * rate) as f64).min(requests);
                if self.chance(self.plan.analytics_partial) {
                    self.fire(FaultClass::AnalyticsPartial);
                    continue;
                }
                data.push(json!({"version": version, "minute": minute.to_string(),
                    "requests": requests.to_string(), "errors_5xx": errors.to_string(),
                    "slow": "0", "very_slow": "0", "approaching": "0", "p95_ms": 80.0,
                    "stored_rows": requests.to_string(), "error_rows": errors.to_string(),
                    "slow_rows": "0"}));
            }
            minute += 60;
        }
        let rows = data.len();
        Ok(HttpResponse::new(
            200,
            json!({"meta": [], "data": data, "rows": rows}).to_string(),
        ))
    }

    fn slack(&self, body: &str) -> Result<HttpResponse, TransportError> {
        let m = self.minute.get();
        if self
            .plan
            .slack_down
            .is_some_and(|(from, to)| (from..to).contains(&m))
        {
            self.fire(FaultClass::SlackDown);
            return Ok(HttpResponse::new(503, "service unavailable"));
        }
        let lost = self.chance(self.plan.slack_answer_lost);
        if lost {
            self.fire(FaultClass::SlackAnswerLost);
        }
        self.slack_posts.borrow_mut().push(SlackPost {
            minute: m,
            body: body.to_string(),
            answer_lost: lost,
        });
        if lost {
            return Err(TransportError::Timeout(10_000));
        }
        Ok(HttpResponse::new(200, "ok"))
    }
}

impl HttpClient for World {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let crash = self.await_point();
        if crash == Some(false) {
            std::future::pending::<()>().await;
        }
        let is_cloudflare = req.url.contains("/client/v4/accounts/") && !req.url.ends_with("/sql");
        let is_write = is_cloudflare && req.method == Method::Post;
        let mut lose = false;
        if is_cloudflare {
            match self.cloudflare_fault(is_write) {
                Err(answer) => {
                    if req.method == Method::Get && req.url.contains("/deployments") {
                        // A failed read is no fresh read, whatever came before it.
                        self.fresh_read.set(false);
                    }
                    self.note(|| format!("{} {} -> fault", req.method, short_url(&req.url)));
                    return answer;
                }
                Ok(l) => lose = l,
            }
        }
        let answer = self.route(&req);
        if let Some(w) = self.writes.borrow_mut().last_mut().filter(|_| lose) {
            w.answer_lost = true;
        }
        self.note(|| {
            let status = answer
                .as_ref()
                .map_or("transport error".to_string(), |r| r.status.to_string());
            format!(
                "{} {} -> {status}{}",
                req.method,
                short_url(&req.url),
                if lose { " (answer lost)" } else { "" }
            )
        });
        if crash == Some(true) {
            std::future::pending::<()>().await;
        }
        if lose {
            return Err(TransportError::Timeout(10_000));
        }
        answer
    }
}

impl RolloutStore for World {
    async fn load(&self) -> Result<Option<StoredRollout>, StoreError> {
        if self.await_point().is_some() {
            std::future::pending::<()>().await;
        }
        let disk = self.disk.borrow();
        match &disk.rollout {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| StoreError(format!("stored rollout does not decode: {e}"))),
        }
    }

    async fn save(&self, rollout: &StoredRollout, events: &[AuditEvent]) -> Result<(), StoreError> {
        let crash = self.await_point();
        if crash == Some(false) {
            std::future::pending::<()>().await;
        }
        if self.chance(self.plan.storage_failure) {
            self.fire(FaultClass::StorageFailure);
            return Err(StoreError("simulated storage write failure".into()));
        }
        let text = serde_json::to_string(rollout).map_err(|e| StoreError(e.to_string()))?;
        self.write_disk(text, rollout, events);
        if crash == Some(true) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn append_action(&self, _record: &ActionRecord) -> Result<(), StoreError> {
        if self.await_point().is_some() {
            std::future::pending::<()>().await;
        }
        self.disk.borrow_mut().actions += 1;
        Ok(())
    }

    /// The simulated disk keeps one rollout's log; nothing older to prune.
    async fn prune(
        &self,
        _keep: crate::config::AuditRetention,
        _current: &str,
        _now: crate::time::Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
}

fn share_of(split: &[(String, f64)], version: &str) -> f64 {
    split
        .iter()
        .find(|(v, _)| v == version)
        .map_or(0.0, |(_, p)| *p)
}

fn short_url(url: &str) -> &str {
    url.split("/workers/scripts/").nth(1).unwrap_or(url)
}

fn deployment_json(d: &Deployment) -> Value {
    let versions: Vec<Value> = d
        .split
        .iter()
        .map(|(v, p)| json!({"version_id": v, "percentage": p}))
        .collect();
    let mut annotations = json!({"workers/triggered_by": "deployment"});
    if let Some(m) = &d.message {
        annotations["workers/message"] = json!(m);
    }
    json!({"id": format!("dep-{}", d.id), "created_on": "2026-11-27T10:00:00Z", "source": "api",
        "strategy": "percentage", "author_email": d.author, "versions": versions,
        "annotations": annotations})
}

fn envelope(result: Value) -> HttpResponse {
    HttpResponse::new(
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result}).to_string(),
    )
}

fn cf_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::new(
        status,
        json!({"success": false, "errors": [{"code": code, "message": message}],
            "messages": [], "result": null})
        .to_string(),
    )
}

fn not_found() -> HttpResponse {
    cf_error(404, 10007, "This Worker does not exist on your account.")
}
