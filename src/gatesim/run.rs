//! One gate-sim run: a seeded world, the deploy hook from CI, then simulated minutes of cron
//! ticks (late, twice, out of order, skipped), operator commands racing them and a human's
//! deploy, each object call possibly dying at an await point. The real `Controller` does
//! the work; the checker looks after every call.

use super::faults::{FaultClass, FaultPlan};
use super::invariants::{Checker, Invariant, Violation};
use super::world::{World, HUMAN, NEW, OLD, SCRIPT, SLACK_URL, T0_MS};
use crate::api::parse_deploy_hook;
use crate::config::{GateConfig, Secrets};
use crate::controller::Controller;
use crate::rollout::Command;
use crate::sim::rng::Rng;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{Context, Poll, Waker};

/// Last minute a run may reach (Slack may be down for up to four hours).
const MAX_MINUTES: i64 = 420;
/// Minutes the on-call engineer lets a paused or drifted rollout wait.
const ON_CALL_MINUTES: i64 = 15;
/// Await points a crash may be armed at (calls have fewer or more; a point past the end
/// means the call survives).
const CRASH_POINTS: u32 = 14;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Restrict the fault classes a plan may switch on (`None`: all).
    pub only: Option<Vec<FaultClass>>,
    /// Keep a line per call and per fault.
    pub trace: bool,
    /// Keep every text the gate saved (`SeedReport::saved`), for tests that read them back.
    pub keep_saved: bool,
}

/// One run's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct SeedReport {
    pub seed: u64,
    pub bad_release: bool,
    pub plan: Vec<FaultClass>,
    pub fired: BTreeMap<FaultClass, u32>,
    /// The final phase.
    pub outcome: String,
    pub steps: u32,
    pub minutes: i64,
    pub max_state_bytes: usize,
    /// Slack posts repeated because an applied post was never confirmed.
    pub slack_repeats: u32,
    pub checks: BTreeMap<Invariant, u64>,
    /// Checks made right after a step in which the class fired, per class and invariant.
    #[serde(skip)]
    pub exercised: BTreeMap<(FaultClass, Invariant), u64>,
    pub violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
    /// Every stored rollout and audit event the gate saved, as saved (`Options::keep_saved`).
    #[serde(skip)]
    pub saved: Vec<String>,
}

fn config(plan: &FaultPlan) -> GateConfig {
    let on_refusal = if plan.pause_refused_rollbacks {
        "pause"
    } else {
        "force"
    };
    let vars = [
        ("ROLLBACK_WHEN_SECRETS_CHANGED", on_refusal),
        ("CLOUDFLARE_ACCOUNT_ID", "acc"),
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
    .expect("gate-sim's own configuration is valid")
}

fn secrets() -> Secrets {
    Secrets {
        api_token: Some("cf-token".into()),
        slack_webhook_url: Some(SLACK_URL.into()),
        hook_token: Some("hook".into()),
        analytics_token: None,
        slack_signing_secret: None,
    }
}

/// How a call ended.
enum Ended<T> {
    Done(T),
    /// The object died at an await point (the future was dropped there).
    Crashed,
    Panicked(String),
}

/// Polls `future` until it is done or parks: the world never waits, so a pending poll is
/// the armed crash, and dropping the future is the object dying there.
fn run_call<F: Future>(future: F) -> Ended<F::Output> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }));
    match outcome {
        Ok(Some(v)) => Ended::Done(v),
        Ok(None) => Ended::Crashed,
        Err(panic) => Ended::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
    }
}

/// One object call to make.
#[derive(Clone, Copy, Debug)]
enum Call {
    Hook,
    Tick { scheduled_minute: i64 },
    Operator(Command),
}

struct Sim {
    world: World,
    checker: Checker,
    config: GateConfig,
    secrets: Secrets,
    rng: Rng,
    steps: u32,
    started: bool,
    /// Faults that touched the gate's calls so far (to date the last one).
    disturbances: u32,
}

impl Sim {
    fn now(minute: i64) -> Timestamp {
        Timestamp::from_millis(T0_MS + minute * 60_000)
    }

    fn hook_body(&self) -> String {
        format!(
            r#"{{"script":"{SCRIPT}","version_id":"{NEW}","git_sha":"deadbeef","baseline_version_id":"{OLD}"}}"#
        )
    }

    /// Makes one object call, possibly dying at an await point, then checks.
    fn call(&mut self, call: Call) {
        self.steps += 1;
        let crash = if self.world.chance(self.world.plan.eviction) {
            let at = 1 + (self.rng.next_u64() % u64::from(CRASH_POINTS)) as u32;
            Some((at, self.rng.uniform() < 0.5))
        } else {
            None
        };
        self.world.arm_crash(crash);
        let minute = self.world.minute.get();
        self.world.note(|| format!("step {}: {call:?}", self.steps));
        let ctl = Controller::new(&self.world, &self.world, &self.config, &self.secrets);
        let ended = match call {
            Call::Hook => {
                let hook = parse_deploy_hook(Some("application/json"), self.hook_body().as_bytes())
                    .expect("gate-sim's hook is valid");
                match run_call(ctl.start(hook, Sim::now(minute))) {
                    Ended::Done(r) => {
                        self.started |= r.is_ok();
                        Ended::Done(r.map(|_| ()))
                    }
                    Ended::Crashed => Ended::Crashed,
                    Ended::Panicked(p) => Ended::Panicked(p),
                }
            }
            Call::Tick { scheduled_minute } => {
                let now = Timestamp::from_millis(T0_MS + scheduled_minute * 60_000);
                map_unit(run_call(ctl.tick(now)))
            }
            Call::Operator(command) => {
                let now = Timestamp::from_millis(T0_MS + minute * 60_000 + 20_000);
                map_unit(run_call(ctl.command(
                    command,
                    "operator@example.com".into(),
                    None,
                    now,
                )))
            }
        };
        let unconfirmed = matches!(ended, Ended::Crashed | Ended::Done(Err(_)));
        match ended {
            Ended::Done(Err(e)) => self.world.note(|| format!("  -> error {e:?}")),
            Ended::Crashed => self
                .world
                .note(|| format!("  -> object died at await {}", self.world.awaits())),
            Ended::Panicked(p) => {
                let detail = format!("panic in {call:?}: {p}");
                self.checker.violations.push(Violation {
                    seed: self.checker.seed,
                    step: self.steps,
                    minute,
                    invariant: Invariant::Bounded,
                    detail,
                });
            }
            Ended::Done(Ok(())) => {}
        }
        self.world.arm_crash(None);
        if self.world.tracing {
            let label = self
                .stored()
                .map(|s| super::invariants::phase_label(&s.state.phase));
            self.world
                .note(|| format!("  stored phase: {}", label.unwrap_or_default()));
        }
        self.update_disturbance();
        self.checker
            .after_step(&self.world, self.steps, unconfirmed);
    }

    fn update_disturbance(&mut self) {
        let disturbing = [
            FaultClass::Timeout,
            FaultClass::ServerError,
            FaultClass::RateLimited,
            FaultClass::WriteAnswerLost,
            FaultClass::StorageFailure,
            FaultClass::Eviction,
        ];
        let fired = self.world.fired.borrow();
        let total: u32 = disturbing.iter().filter_map(|c| fired.get(c)).sum();
        drop(fired);
        if total > self.disturbances {
            self.checker.last_disturbance = Some(self.world.minute.get());
        }
        self.disturbances = total;
    }
}

fn map_unit<T, E>(ended: Ended<Result<T, E>>) -> Ended<Result<(), E>> {
    match ended {
        Ended::Done(r) => Ended::Done(r.map(|_| ())),
        Ended::Crashed => Ended::Crashed,
        Ended::Panicked(p) => Ended::Panicked(p),
    }
}

/// Runs one seed.
pub fn run(options: &Options) -> SeedReport {
    let seed = options.seed;
    let plan = FaultPlan::draw(seed, options.only.as_deref());
    let mut rng = Rng::derive(seed, &[0x0052_554e]);
    let bad_release = rng.uniform() < 0.4;
    let world = World::new(seed, plan.clone(), bad_release, options.trace);
    if options.keep_saved {
        *world.saved.borrow_mut() = Some(Vec::new());
    }
    let mut sim = Sim {
        world,
        checker: Checker::new(seed),
        config: config(&plan),
        secrets: secrets(),
        rng,
        steps: 0,
        started: false,
        disturbances: 0,
    };
    let mut carried: Vec<i64> = Vec::new();
    let mut stopped_since: Option<i64> = None;
    let mut last_minute = 0;
    for minute in 0..=MAX_MINUTES {
        last_minute = minute;
        sim.world.minute.set(minute);
        sim.world.serve_minute();
        if !sim.started {
            // CI calls the deploy hook, and calls it again while it fails (it is idempotent).
            if minute < 10 {
                sim.call(Call::Hook);
            }
            continue;
        }
        if plan.manual_deploy_minute == Some(minute) {
            sim.deploy_by_hand();
        }
        let ticks = sim.cron_deliveries(minute, &mut carried);
        let operator = sim.world.chance(plan.operator).then(|| sim.pick_command());
        let operator_first = sim.rng.uniform() < 0.5;
        if let (Some(command), true) = (operator, operator_first) {
            sim.world.fire(FaultClass::OperatorRace);
            sim.call(Call::Operator(command));
        }
        for scheduled_minute in ticks {
            sim.call(Call::Tick { scheduled_minute });
        }
        if let (Some(command), false) = (operator, operator_first) {
            sim.world.fire(FaultClass::OperatorRace);
            sim.call(Call::Operator(command));
        }
        sim.on_call(minute, &mut stopped_since);
        if sim.finished() && carried.is_empty() {
            break;
        }
    }
    let slack_reachable = !plan
        .slack_down
        .is_some_and(|(from, to)| (from..to).contains(&last_minute));
    let steps = sim.steps;
    if sim.finished() {
        sim.checker.at_end(&sim.world, steps, slack_reachable);
    }
    if let Some(stored) = sim.stored() {
        sim.checker
            .rollback_finished(&sim.world, steps, &stored.state.phase);
    }
    let outcome = sim.outcome();
    let saved = sim.world.saved.take().unwrap_or_default();
    if let Some(stored) = sim.stored() {
        sim.world
            .note(|| format!("final phase: {:?}", stored.state.phase));
    }
    let slack_repeats = sim.slack_repeats();
    let world = sim.world;
    let fired = world.fired.borrow().clone();
    let trace = world.trace.take();
    SeedReport {
        seed,
        bad_release,
        plan: plan.classes(),
        fired,
        outcome,
        steps,
        minutes: last_minute,
        max_state_bytes: sim.checker.max_state_bytes,
        slack_repeats,
        checks: sim.checker.checks.clone(),
        exercised: sim.checker.exercised.clone(),
        violations: sim.checker.violations,
        trace,
        saved,
    }
}

impl Sim {
    /// The scheduled minutes whose cron events arrive during `minute`, oldest plan first:
    /// normally just `minute`; a late one arrives next minute, one out of order after the
    /// next minute's, a doubled one twice, a skipped one never.
    fn cron_deliveries(&mut self, minute: i64, carried: &mut Vec<i64>) -> Vec<i64> {
        let p = self.world.plan.clone();
        let mut ticks: Vec<i64> = Vec::new();
        let held = std::mem::take(carried);
        let (late, out_of_order): (Vec<i64>, Vec<i64>) = held.into_iter().partition(|m| *m >= 0);
        ticks.extend(late);
        if self.world.chance(p.cron_skipped) {
            self.world.fire(FaultClass::CronSkipped);
        } else if self.world.chance(p.cron_late) {
            self.world.fire(FaultClass::CronLate);
            carried.push(minute);
        } else if self.world.chance(p.cron_out_of_order) {
            self.world.fire(FaultClass::CronOutOfOrder);
            // Marked negative: delivered after the next minute's own tick.
            carried.push(-minute - 1);
        } else {
            ticks.push(minute);
            if self.world.chance(p.cron_twice) {
                self.world.fire(FaultClass::CronTwice);
                ticks.push(minute);
            }
        }
        ticks.extend(out_of_order.into_iter().map(|m| -m - 1));
        ticks
    }

    /// The on-call engineer: a rollout paused or drifted for `ON_CALL_MINUTES` is resumed
    /// (taken over, after drift) or, half the time or when it cannot resume, aborted.
    fn on_call(&mut self, minute: i64, stopped_since: &mut Option<i64>) {
        let rolling_back = self
            .stored()
            .is_some_and(|s| matches!(s.state.phase, crate::rollout::Phase::RollingBack { .. }));
        if rolling_back {
            // A rollback Slack says is held (refused until forced, with the `pause`
            // setting): after a while a human rolls back by hand (`wrangler rollback`, which
            // confirms the secrets and sends force), as the runbook says.
            let since = *stopped_since.get_or_insert(minute);
            if minute - since >= ON_CALL_MINUTES && self.world.live().iter().any(|(v, _)| v == NEW)
            {
                *stopped_since = None;
                self.world.fire(FaultClass::ManualDeploy);
                self.world.note(|| "on call: rolls back by hand".into());
                self.world.deploy_by_hand(vec![(OLD.to_string(), 100.0)]);
                self.checker.manual_minute = Some(minute);
            }
            return;
        }
        let stopped = self.stored().is_some_and(|s| {
            matches!(
                s.state.phase,
                crate::rollout::Phase::Paused { .. } | crate::rollout::Phase::Drifted { .. }
            )
        });
        if !stopped {
            *stopped_since = None;
            return;
        }
        let since = *stopped_since.get_or_insert(minute);
        if minute - since < ON_CALL_MINUTES {
            return;
        }
        *stopped_since = None;
        let command = if self.rng.uniform() < 0.5 {
            Command::Resume
        } else {
            Command::Abort
        };
        self.call(Call::Operator(command));
        let still = self
            .stored()
            .is_some_and(|s| matches!(s.state.phase, crate::rollout::Phase::Paused { .. }));
        if command == Command::Resume && still {
            self.call(Call::Operator(Command::Abort));
        }
    }

    fn pick_command(&mut self) -> Command {
        match self.rng.next_u64() % 20 {
            0..=6 => Command::Pause,
            7..=13 => Command::Resume,
            14..=16 => Command::Promote,
            _ => Command::Abort,
        }
    }

    /// A human runs `wrangler versions deploy`: some other split of our versions, or
    /// another version entirely.
    fn deploy_by_hand(&mut self) {
        self.world.fire(FaultClass::ManualDeploy);
        let split = match self.rng.next_u64() % 3 {
            0 => vec![(NEW.to_string(), 30.0), (OLD.to_string(), 70.0)],
            1 => vec![(OLD.to_string(), 100.0)],
            _ => vec![(HUMAN.to_string(), 100.0)],
        };
        self.world.note(|| format!("a human deploys {split:?}"));
        self.world.deploy_by_hand(split);
        self.checker.manual_minute = Some(self.world.minute.get());
    }

    fn stored(&self) -> Option<crate::controller::StoredRollout> {
        let disk = self.world.disk.borrow();
        serde_json::from_str(disk.rollout.as_deref()?).ok()
    }

    /// Terminal, and Slack has everything (or the webhook is dead).
    fn finished(&self) -> bool {
        self.stored().is_some_and(|s| {
            s.state.phase.is_terminal()
                && (s.outbox.items.is_empty() || s.outbox.dead_webhook.is_some())
        })
    }

    fn outcome(&self) -> String {
        self.stored().map_or("not started".into(), |s| {
            super::invariants::phase_label(&s.state.phase)
        })
    }

    fn slack_repeats(&self) -> u32 {
        let posts = self.world.slack_posts.borrow();
        let distinct: std::collections::BTreeSet<&str> =
            posts.iter().map(|p| p.body.as_str()).collect();
        (posts.len() - distinct.len()) as u32
    }
}
