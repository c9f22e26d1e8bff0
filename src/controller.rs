//! The controller: async and generic. It loads a rollout, asks the core what to observe,
//! fetches it through `HttpClient`, calls `step`, saves, then carries out the actions
//! (deployment writes, pre-flight, Slack through the outbox). Decides nothing itself.
//! The runtime implements `RolloutStore` over Durable Object storage; tests use fakes.

pub mod batch;
mod fetch;
pub mod parity;
mod preflight;
pub mod queues;

use crate::api::DeployHook;
use crate::clients::analytics::batch::{PlannedCounts, SharedCounts};
use crate::clients::cloudflare::ApiBudget;
use crate::clients::http::{HttpClient, HttpRequest, HttpResponse, TransportError};
use crate::config::{AuditRetention, GateConfig, Secrets};
use crate::http_error::ApiError;
use crate::notify::Outbox;
use crate::registry::AccountUse;
use crate::rollout::{
    self, schema, Action, AuditEvent, Command, Input, RolloutState, StartRequest,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::VecDeque;

pub use fetch::resolve_baseline;

/// Cloudflare API calls one rollout may make per rolling 5 minutes: a guard against a
/// rollout that loops. The account's budget, shared by every rollout, is the registry's
/// (`registry::Book::api`), which hands each tick its share (`TickSupply::api_calls`).
pub const API_CALLS_PER_5_MIN: u32 = 200;
/// Follow-up actions carried out per call; a guard against a core bug looping forever.
const MAX_ACTIONS_PER_CALL: usize = 64;

/// Everything a rollout's Durable Object keeps under one key. Read it with
/// `rollout::schema::decode`, which migrates what an earlier gate stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRollout {
    /// The version of this stored form: always `schema::CURRENT` (written so, and what
    /// `schema::decode` migrates every other version to).
    pub schema: u32,
    pub state: RolloutState,
    pub outbox: Outbox,
    pub budget: ApiBudget,
    /// The latest `now` this rollout has seen. The gate's clock never runs backwards:
    /// hooks and commands use the wall clock, ticks the scheduled time, and the two may
    /// disagree by a little (or, in tests that replay time, by a lot).
    pub last_now: Timestamp,
    /// Set by `schema::decode` when the rollout was stored in a schema this gate cannot
    /// carry on from (its evidence was set aside): the schema it was stored in. `load`
    /// steps `Input::GateUpgraded` before anything else. Never stored.
    #[serde(skip)]
    pub upgraded_from: Option<u32>,
}

/// One action carried out, for the action log (one row per action with its outcome).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub at: Timestamp,
    pub action: String,
    pub outcome: String,
}

/// Why the store failed (the runtime's storage error, as text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

/// Storage of one rollout. Implemented over Durable Object SQLite storage in the runtime.
#[allow(async_fn_in_trait)]
pub trait RolloutStore {
    /// The rollout, if one was ever started here.
    async fn load(&self) -> Result<Option<StoredRollout>, StoreError>;
    /// Replaces the rollout and appends `events` to the audit log (one row each), as one
    /// atomic write: a transition is never stored without its audit events, nor logged
    /// without being stored. Called before every side effect.
    async fn save(&self, rollout: &StoredRollout, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// Appends one action with its outcome.
    async fn append_action(&self, record: &ActionRecord) -> Result<(), StoreError>;
    /// Removes audit rows of rollouts other than `current`'s version beyond the newest
    /// `keep.rollouts` (by their latest row), and audit and action rows older than
    /// `keep.days` before `now`, except `current`'s; returns the rows removed.
    async fn prune(
        &self,
        keep: AuditRetention,
        current: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
}

/// What a call did, for logs and the API answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Outbound HTTP requests made (the Workers subrequest budget).
    pub subrequests: u32,
    /// Phase name after the call (`None`: no rollout here).
    pub phase: Option<String>,
    /// The same phase's tag (`Phase::tag`), which the registry keeps for listing.
    #[serde(default)]
    pub phase_tag: Option<String>,
    /// True once the rollout needs no more ticks (terminal and outbox empty).
    pub finished: bool,
    /// When the core asked to be woken next, if it did.
    pub wake_at: Option<Timestamp>,
    /// The Slack webhook is dead (Slack's code).
    pub dead_webhook: Option<String>,
    /// Of `subrequests`, those to the Cloudflare API, a 429 seen and the next counts query:
    /// what the registry books against the account's budget.
    #[serde(default)]
    pub account: AccountUse,
}

/// What the cron handler hands one rollout's tick besides the time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickSupply {
    /// Cloudflare API calls this tick may make: its share of the account's budget
    /// (`None`: only the rollout's own guard applies).
    pub api_calls: Option<u32>,
    /// The answer of the shared counts query, when one covered this rollout.
    pub counts: Option<SharedCounts>,
}

/// Counts requests on their way out, and of them those to the Cloudflare API, which it
/// holds to the call's allowance: every API call of a hook, tick or command, pre-flight and
/// the stable version's lookup included, counts against the share the registry granted.
struct Counted<'a, H> {
    inner: &'a H,
    sent: Cell<u32>,
    /// The API's base URL: a request under it counts against the account's rate limit.
    api_base: &'a str,
    api_sent: Cell<u32>,
    /// Cloudflare API calls this call may make (`None`: no share was given).
    api_allowance: Cell<Option<u32>>,
}

impl<H: HttpClient> HttpClient for Counted<'_, H> {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        if req.url.starts_with(self.api_base) {
            if let Some(allowed) = self.api_allowance.get() {
                if self.api_sent.get() >= allowed {
                    return Err(TransportError::NotSent(format!(
                        "this call's share of the account's Cloudflare API budget \
                         ({allowed} call(s)) is spent"
                    )));
                }
            }
            self.api_sent.set(self.api_sent.get() + 1);
        }
        self.sent.set(self.sent.get() + 1);
        self.inner.send(req).await
    }
}

/// One rollout's controller for one call (a hook, a tick or a command).
pub struct Controller<'a, H, S> {
    http: Counted<'a, H>,
    store: &'a S,
    config: &'a GateConfig,
    secrets: &'a Secrets,
}

/// The answer to a deploy hook.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    /// False when the same hook had already started this rollout.
    pub created: bool,
    pub rollout: StoredRollout,
}

impl<'a, H: HttpClient, S: RolloutStore> Controller<'a, H, S> {
    pub fn new(http: &'a H, store: &'a S, config: &'a GateConfig, secrets: &'a Secrets) -> Self {
        Controller {
            http: Counted {
                inner: http,
                sent: Cell::new(0),
                api_base: &config.api.base_url,
                api_sent: Cell::new(0),
                api_allowance: Cell::new(None),
            },
            store,
            config,
            secrets,
        }
    }

    /// Whether alerts carry the Slack buttons: the signing secret and the allow-list are
    /// both set.
    fn slack_actions(&self) -> bool {
        self.secrets
            .slack_signing_secret
            .as_deref()
            .is_some_and(|s| !s.is_empty())
            && !self.config.slack_operators.is_empty()
    }

    /// Limits this call to `calls` Cloudflare API requests (its share of the account's
    /// budget, granted by the registry); past them, a budgeted call fails as the spent
    /// budget does and the core sees an observation it could not make.
    pub fn limit_api_calls(&self, calls: Option<u32>) {
        self.http.api_allowance.set(calls);
    }

    /// Starts a rollout from a validated deploy hook; the same hook twice starts one.
    ///
    /// # Errors
    /// 409 when another version is rolling out here; 422 when Cloudflare does not know the
    /// script (its error passed on); 502 when the API could not be asked; 500 on storage.
    pub async fn start(&self, hook: DeployHook, now: Timestamp) -> Result<Started, ApiError> {
        let previous = self.load(now).await?;
        let now = previous.as_ref().map_or(now, |p| now.max(p.last_now));
        if let Some(existing) = previous {
            if existing.state.version_id == hook.version_id {
                return Ok(Started {
                    created: false,
                    rollout: existing,
                });
            }
            if !existing.state.phase.is_terminal() {
                return Err(ApiError::conflict(
                    "rollout_active",
                    format!(
                        "{} is rolling out version {} ({}); pause or abort it first",
                        existing.state.script,
                        existing.state.version_id,
                        existing.state.phase.name()
                    ),
                ));
            }
        }
        let token = self.api_token()?;
        let baseline = match hook.baseline_version_id.clone() {
            Some(id) => id,
            None => {
                resolve_baseline(
                    &self.http,
                    self.config,
                    token,
                    &hook.script,
                    &hook.version_id,
                )
                .await?
            }
        };
        let request = StartRequest {
            script: hook.script,
            version_id: hook.version_id,
            baseline_version_id: baseline,
            git_sha: hook.git_sha,
            schedule: hook.schedule,
            dry_run: hook.dry_run,
            message: hook.message,
        };
        let (state, actions) = rollout::start(request, self.config.policy.clone(), now);
        let mut stored = StoredRollout {
            schema: schema::CURRENT,
            state,
            outbox: Outbox::default(),
            budget: ApiBudget::new(API_CALLS_PER_5_MIN),
            last_now: now,
            upgraded_from: None,
        };
        let actions = self.commit(&mut stored, actions, now).await?;
        // The new rollout is stored; the log of old ones past the retention goes now, and
        // the action log says what went. A failure loses nothing the rollout needs: it is
        // noted there too and the start goes on (the next start prunes again).
        let keep = self.config.audit_retention;
        let outcome = match self.store.prune(keep, &stored.state.version_id, now).await {
            Ok(removed) => format!(
                "{removed} row(s) removed (kept: {} rollouts, {} days)",
                keep.rollouts, keep.days
            ),
            Err(err) => format!("failed: {err}"),
        };
        let record = ActionRecord {
            at: now,
            action: "prune audit log".into(),
            outcome,
        };
        let _ = self.store.append_action(&record).await;
        let mut report = Report::default();
        self.drive(&mut stored, actions, now, &mut report).await?;
        Ok(Started {
            created: true,
            rollout: stored,
        })
    }

    /// One cron tick: observe what the core asks for, step, act, flush Slack.
    ///
    /// # Errors
    /// Only storage failures; everything outside is an observation for the core.
    pub async fn tick(&self, now: Timestamp) -> Result<Report, ApiError> {
        self.tick_with(now, TickSupply::default()).await
    }

    /// One cron tick with what the cron handler supplied: an API allowance and, when the
    /// shared query covered this rollout, its counts (then this tick queries no counts).
    ///
    /// # Errors
    /// Only storage failures.
    pub async fn tick_with(&self, now: Timestamp, supply: TickSupply) -> Result<Report, ApiError> {
        if supply.api_calls.is_some() {
            self.limit_api_calls(supply.api_calls);
        }
        let mut report = Report::default();
        let Some(mut stored) = self.load(now).await? else {
            report.finished = true;
            return Ok(report);
        };
        let now = now.max(stored.last_now);
        stored.last_now = now;
        if !stored.state.phase.is_terminal() {
            let plan = rollout::plan(&stored.state, now);
            let input = if plan.preflight {
                Input::Preflight(preflight::run(self, &stored.state).await)
            } else {
                let shared = supply.counts.as_ref();
                Input::Tick(
                    fetch::observe(self, &mut stored.budget, &stored.state, &plan, shared, now)
                        .await,
                )
            };
            let actions = self.step(&mut stored, input, now).await?;
            self.drive(&mut stored, actions, now, &mut report).await?;
        } else {
            self.flush_outbox(&mut stored, now).await?;
        }
        self.finish(&stored, &mut report);
        report.account.rate_limited_until =
            stored.budget.blocked_until().filter(|&until| now < until);
        if !report.finished {
            let next = now.floor_minute().plus_minutes(1);
            report.account.next_counts =
                rollout::plan(&stored.state, next)
                    .counts
                    .map(|query| PlannedCounts {
                        minute: next,
                        query,
                    });
        }
        Ok(report)
    }

    /// An operator command.
    ///
    /// # Errors
    /// 404 when no rollout exists here; 409 when the command does not apply to its phase.
    pub async fn command(
        &self,
        command: Command,
        by: String,
        why: Option<String>,
        now: Timestamp,
    ) -> Result<StoredRollout, ApiError> {
        let mut stored = self
            .load(now)
            .await?
            .ok_or_else(|| ApiError::NotFound("no rollout for this script".into()))?;
        let now = now.max(stored.last_now);
        stored.last_now = now;
        rollout::check_command(&stored.state, command)
            .map_err(|e| ApiError::conflict("command_not_applicable", e.to_string()))?;
        let actions = self
            .step(&mut stored, Input::Operator { command, by, why }, now)
            .await?;
        let mut report = Report::default();
        self.drive(&mut stored, actions, now, &mut report).await?;
        Ok(stored)
    }

    /// The stored rollout. One stored in a schema this gate cannot carry on from is paused
    /// first (`Input::GateUpgraded`), and that is stored before anything else happens.
    async fn load(&self, now: Timestamp) -> Result<Option<StoredRollout>, ApiError> {
        let Some(mut stored) = self.store.load().await.map_err(internal)? else {
            return Ok(None);
        };
        if let Some(stored_schema) = stored.upgraded_from.take() {
            let now = now.max(stored.last_now);
            stored.last_now = now;
            let input = Input::GateUpgraded { stored_schema };
            let actions = self.step(&mut stored, input, now).await?;
            self.drive(&mut stored, actions, now, &mut Report::default())
                .await?;
        }
        Ok(Some(stored))
    }

    /// Applies one input and commits it before anything else happens.
    async fn step(
        &self,
        stored: &mut StoredRollout,
        input: Input,
        now: Timestamp,
    ) -> Result<Vec<Action>, ApiError> {
        let (state, actions) = rollout::step(stored.state.clone(), input, now);
        stored.state = state;
        self.commit(stored, actions, now).await
    }

    /// Stores the state with the step's audit events and Slack notices (queued in the
    /// outbox) in one atomic write, and returns the actions left to carry out. Were the
    /// events or notices written apart from the state, an object dying in between would
    /// store a transition the audit log or Slack never hears of (gate-sim found both).
    async fn commit(
        &self,
        stored: &mut StoredRollout,
        actions: Vec<Action>,
        now: Timestamp,
    ) -> Result<Vec<Action>, ApiError> {
        let mut events = Vec::new();
        let mut rest = Vec::new();
        for action in actions {
            match action {
                Action::RecordEvent(event) => events.push(event),
                Action::Notify(notice) => stored.outbox.push(
                    crate::notify::render(&notice, self.config, self.slack_actions()),
                    now,
                ),
                other => rest.push(other),
            }
        }
        self.store.save(stored, &events).await.map_err(internal)?;
        Ok(rest)
    }

    /// Carries out actions in order; follow-up actions from the core join the queue.
    async fn drive(
        &self,
        stored: &mut StoredRollout,
        actions: Vec<Action>,
        now: Timestamp,
        report: &mut Report,
    ) -> Result<(), ApiError> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut done = 0;
        while let Some(action) = queue.pop_front() {
            done += 1;
            if done > MAX_ACTIONS_PER_CALL {
                return Err(internal(StoreError("action loop did not settle".into())));
            }
            match action {
                // `commit` stores these with the state; none reach this queue.
                Action::RecordEvent(_) | Action::Notify(_) => {
                    queue.extend(self.commit(stored, vec![action], now).await?);
                }
                Action::WakeAt(at) => report.wake_at = Some(at),
                Action::RunPreflight { .. } => {
                    let checks = preflight::run(self, &stored.state).await;
                    self.log_action(now, "preflight", &summarize_preflight(&checks))
                        .await?;
                    queue.extend(self.step(stored, Input::Preflight(checks), now).await?);
                }
                Action::SetDeployment {
                    write,
                    split,
                    message,
                    force,
                } => {
                    let outcome = fetch::write_deployment(
                        self,
                        &mut stored.budget,
                        &stored.state,
                        &split,
                        &message,
                        force,
                        now,
                    )
                    .await;
                    let label = format!("set deployment {split:?}");
                    self.log_action(now, &label, &format!("{outcome:?}"))
                        .await?;
                    let input = Input::DeploymentWrite { write, outcome };
                    queue.extend(self.step(stored, input, now).await?);
                }
                // The read a write waits for (the core writes only right after one).
                Action::ReadDeployment { write } => {
                    let script = &stored.state.script;
                    let read = fetch::read_deployment(self, &mut stored.budget, script, now).await;
                    let label = format!("read deployment before write {write}");
                    self.log_action(now, &label, &format!("{read:?}")).await?;
                    queue.extend(self.step(stored, Input::LiveRead(read), now).await?);
                }
            }
        }
        self.flush_outbox(stored, now).await
    }

    /// Sends what the outbox holds that is due; keeps the rest for the next tick.
    async fn flush_outbox(
        &self,
        stored: &mut StoredRollout,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        // One message at a time, each answer stored before the next is sent: an object that
        // dies mid-flush repeats at most the one post whose answer it had not stored.
        let Some(url) = self
            .secrets
            .slack_webhook_url
            .as_deref()
            .filter(|u| !u.is_empty())
        else {
            return Ok(());
        };
        for _ in 0..crate::notify::SENDS_PER_FLUSH {
            let Some(&id) = stored.outbox.due(now).first() else {
                break;
            };
            let go_on = deliver_one(&self.http, url, &mut stored.outbox, id, now).await;
            self.save(stored).await?;
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    fn finish(&self, stored: &StoredRollout, report: &mut Report) {
        report.subrequests = self.http.sent.get();
        report.account.api_calls = self.http.api_sent.get();
        report.phase = Some(stored.state.phase.name().to_string());
        report.phase_tag = Some(stored.state.phase.tag().to_string());
        report.dead_webhook = stored.outbox.dead_webhook.clone();
        report.finished = stored.state.phase.is_terminal()
            && (stored.outbox.items.is_empty() || stored.outbox.dead_webhook.is_some());
    }

    /// Outbound requests so far in this call.
    pub fn subrequests(&self) -> u32 {
        self.http.sent.get()
    }

    /// Cloudflare API requests so far in this call.
    pub fn api_calls(&self) -> u32 {
        self.http.api_sent.get()
    }

    fn api_token(&self) -> Result<&str, ApiError> {
        self.secrets
            .api_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Upstream("CLOUDFLARE_API_TOKEN is not configured".into()))
    }

    async fn save(&self, stored: &StoredRollout) -> Result<(), ApiError> {
        self.store.save(stored, &[]).await.map_err(internal)
    }

    async fn log_action(&self, at: Timestamp, action: &str, outcome: &str) -> Result<(), ApiError> {
        let record = ActionRecord {
            at,
            action: action.to_string(),
            outcome: outcome.to_string(),
        };
        self.store.append_action(&record).await.map_err(internal)
    }
}

/// Sends the outbox's due messages to the Slack webhook, recording each answer in the
/// outbox (at-least-once: the caller saves afterwards). Returns how many were attempted.
pub async fn deliver_outbox<H: HttpClient>(
    http: &H,
    webhook: Option<&str>,
    outbox: &mut Outbox,
    now: Timestamp,
) -> usize {
    let Some(url) = webhook.filter(|u| !u.is_empty()) else {
        return 0;
    };
    let due = outbox.due(now);
    let mut attempted = 0;
    for id in due {
        attempted += 1;
        if !deliver_one(http, url, outbox, id, now).await {
            break;
        }
    }
    attempted
}

/// Sends outbox message `id` and records Slack's answer. False when sending should stop
/// for now (rate limited, or the webhook is dead).
async fn deliver_one<H: HttpClient>(
    http: &H,
    url: &str,
    outbox: &mut Outbox,
    id: u64,
    now: Timestamp,
) -> bool {
    use crate::clients::slack::{self, SlackOutcome};
    let Some(item) = outbox.get(id) else {
        return true;
    };
    let outcome = match slack::build_webhook_request(url, &item.message) {
        Ok(req) => match http.send(req).await {
            Ok(resp) => {
                slack::classify_response(resp.status, &resp.body, resp.header("retry-after"))
            }
            Err(err) => slack::classify_transport_error(&err),
        },
        Err(err) => SlackOutcome::Rejected {
            code: err.to_string(),
        },
    };
    outbox.record(id, &outcome, now)
}

fn summarize_preflight(report: &crate::observe::PreflightReport) -> String {
    report
        .checks()
        .iter()
        .map(|(name, check)| format!("{name}: {check:?}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Storage failures are the gate's own: 500, detail for the log only.
fn internal(err: StoreError) -> ApiError {
    ApiError::internal(err.to_string())
}
