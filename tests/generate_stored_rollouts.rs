//! Writes tests/fixtures/stored/v2/: rollouts as this release (a1fb043, schema 2) stores them,
//! at interesting points, each with the inputs of the ticks that followed and what this release decided on them.
//! Run on the release whose stored rollouts the fixtures stand for:
//! `cargo test --test generate_stored_rollouts -- --ignored`.
//!
//! Each rollout is driven by the simulator's seeded world through the real core, as the
//! Durable Object runs it (notices rendered into the outbox, API calls in the budget). At the
//! snapshot the stored rollout is written as text and read back, and the run goes on from
//! what was read, so a later release that reads the same text sees exactly the same numbers.
//! Inputs are kept as the text that was stepped on, for the same reason.

use rollout_gate::clients::cloudflare::ApiBudget;
use rollout_gate::config::GateConfig;
use rollout_gate::controller::StoredRollout;
use rollout_gate::notify::{render, Outbox};
use rollout_gate::observe::{
    Check, Fetched, LiveDeployment, Observations, PreflightReport, VersionShare,
};
use rollout_gate::rollout::{
    self, Action, Command, Input, Phase, RolloutState, StartRequest, WriteFailure, WriteOutcome,
};
use rollout_gate::sim::rng::Rng;
use rollout_gate::sim::traffic::{tick_time, World, NEW_VERSION, OLD_VERSION};
use rollout_gate::sim::Scenario;
use rollout_gate::time::Timestamp;
use serde_json::{json, Value};
use std::path::Path;

const HEALTHY: &str = r#"{"name": "healthy-100rps", "rps": 100, "minutes": 60,
    "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
    "candidate": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}}}"#;

const REGRESSION_IN_BAKE: &str = r#"{"name": "x5-100rps-in-bake", "rps": 100, "minutes": 60,
    "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
    "candidate": {"error_rate": 0.005, "latency": {"median_ms": 80, "p95_ms": 200}},
    "candidate_changes_at_min": 24}"#;

const BURSTY_WITH_QUEUE: &str = r#"{"name": "bursty-1000rps-queue", "rps": 1000, "minutes": 60,
    "baseline": {"error_rate": 0.01, "latency": {"median_ms": 80, "p95_ms": 200}},
    "candidate": {"error_rate": 0.01, "latency": {"median_ms": 80, "p95_ms": 200}},
    "overdispersion": {"shared": 0.5, "per_version": 0.1},
    "queue": {"depth": 400, "retries_per_minute": 10},
    "policy": {"queue": {"max_depth": 1000, "max_retries_per_minute": 100, "consecutive": 3}}}"#;

/// The fields the previous release filled with `serde(default)` when a stored rollout
/// lacked them, as paths (`[]`: every element); a `v0` fixture is stored without them.
#[allow(dead_code)] // the v0 copies are 4c8fa47's (4e8d88f), not written again here
const INNER_DEFAULTS: &[&str] = &[
    "state.signals.errors_looks.exact_allowance",
    "state.signals.errors_looks.z_minutes",
    "state.signals.errors_looks.z_sum",
    "state.signals.errors_looks.z_sum_sq",
    "state.signals.errors_looks.z_events",
    "state.signals.errors_looks.z_requests",
    "state.signals.errors_looks.scaled",
    "state.signals.errors_looks.new_requests",
    "state.signals.errors_looks.old_requests",
    "state.signals.errors_looks.raw_requests",
    "state.signals.errors_looks.latest.robust",
    "state.signals.errors_looks.latest.scaled",
    "state.signals.errors_looks.latest.divisor",
    "state.signals.slow_looks.exact_allowance",
    "state.signals.slow_looks.z_sum",
    "state.signals.slow_looks.latest.scaled",
    "state.signals.very_slow_looks.raw_requests",
    "state.signals.approach_looks.scaled",
    "state.signals.approach_looks.latest.divisor",
    "state.signals.errors_history.guard.exact_allowance",
    "state.signals.errors_history.guard.z_minutes",
    "state.signals.errors_history.guard.latest.robust",
    "state.signals.errors_history.old_requests",
    "state.signals.errors_history.old_bad",
    "state.signals.errors_history.minutes",
    "state.signals.errors_bake.bursty",
    "state.signals.errors_bake.log_e",
    "state.signals.errors_bake.burst_divisor",
    "state.signals.errors_bake.burst_horizon",
    "state.signals.errors_bake.minutes",
    "state.signals.slow_bake.log_e",
    "state.signals.slow_bake.minutes",
    "state.signals.errors_bake_looks.burst_scaling",
    "state.signals.errors_bake_looks.reference_minutes",
    "state.signals.errors_bake_looks.latest.scaled",
    "state.signals.errors_bake_looks.latest.divisor",
    "state.signals.slow_bake_looks.burst_scaling.bursts.spans",
    "state.signals.slow_bake_looks.burst_scaling.bursts.bursty_blocks",
    "state.signals.slow_bake_looks.reference_minutes",
    "state.signals.approach_bursts.bursts.spans",
    "state.signals.approach_bursts.bursts.bursty_blocks",
    "state.signals.errors_bursts.bursts.spans",
    "state.signals.slow_bursts.bursts.bursty_blocks",
    "state.signals.recent.[].sample_interval",
    "state.signals.recent.[].new.very_slow",
    "state.signals.recent.[].old.approaching",
    "state.signals.step_totals.new.very_slow",
    "state.signals.step_totals.old.approaching",
    "state.last_assessment.errors_look.robust",
    "state.last_assessment.errors_look.scaled",
    "state.last_assessment.latency_look.divisor",
    "state.last_assessment.errors_bake_look.scaled",
    "state.last_assessment.latency_bake_look.divisor",
    "state.last_assessment.window.new.very_slow",
    "state.last_assessment.window.old.approaching",
];

/// Whole fields the previous release filled (the signals' looks, bursts and history, the
/// assessment's looks, the clock's high-water mark).
#[allow(dead_code)]
const OUTER_DEFAULTS: &[&str] = &[
    "last_now",
    "state.signals.bake_horizon",
    "state.signals.errors_bake_looks",
    "state.signals.slow_bake_looks",
    "state.signals.split_minutes",
    "state.signals.errors_looks",
    "state.signals.slow_looks",
    "state.signals.very_slow_looks",
    "state.signals.approach_looks",
    "state.signals.approach_bursts",
    "state.signals.errors_bursts",
    "state.signals.slow_bursts",
    "state.signals.last_step_look",
    "state.signals.errors_history",
    "state.signals.history_read",
    "state.signals.history_failures",
    "state.last_assessment.errors_look",
    "state.last_assessment.latency_look",
    "state.last_assessment.very_slow_look",
    "state.last_assessment.approach_look",
    "state.last_assessment.errors_history",
    "state.last_assessment.errors_bake_look",
    "state.last_assessment.latency_bake_look",
];

/// The pending write's and the drift's fields the previous release filled.
#[allow(dead_code)]
const WRITE_AND_DRIFT_DEFAULTS: &[&str] = &[
    "last_now",
    "state.deployment.pending.force",
    "state.deployment.pending.changed_secrets",
    "state.deployment.pending.last_failure.credentials",
    "state.phase.observed.deployment_id",
    "state.phase.observed.author_email",
    "state.phase.observed.message",
    "state.phase.observed.triggered_by",
    "state.phase.observed.created_on",
];

/// One stored rollout to write.
struct Case {
    /// File name under tests/fixtures/stored/ (`v1/name.json` or `v0/name.json`).
    file: &'static str,
    about: &'static str,
    scenario: &'static str,
    /// The world's seed.
    seed: u64,
    /// Stored at the end of the first tick for which this holds.
    snapshot: fn(&RolloutState, u32) -> bool,
    /// Ticks run after the snapshot.
    then_ticks: u32,
    /// Operator commands, after the step of the given tick.
    commands: &'static [(u32, Command)],
    /// What the deployments API answers (write id, attempt, split).
    write: fn(&[VersionShare], u32) -> WriteOutcome,
    /// What the live-deployment read shows instead of the gate's own split, by tick.
    read: fn(u32) -> Option<LiveDeployment>,
    /// Fields removed from the stored text (a rollout stored before they existed).
    strip: &'static [&'static str],
}

fn confirmed(_: &[VersionShare], _: u32) -> WriteOutcome {
    WriteOutcome::Confirmed {
        deployment_id: Some("dep-1".into()),
    }
}

/// The first write back to the stable version fails with a 503 (retried).
fn rollback_fails_once(split: &[VersionShare], attempt: u32) -> WriteOutcome {
    let back = split.len() == 1 && split[0].version_id == OLD_VERSION;
    if back && attempt == 1 {
        return WriteOutcome::Failed(WriteFailure {
            status: Some(503),
            retry_after_secs: Some(30),
            message: "Service Unavailable".into(),
            credentials: false,
        });
    }
    confirmed(split, attempt)
}

fn own_reads(_: u32) -> Option<LiveDeployment> {
    None
}

/// Someone else sets 30% from tick 16 to tick 19.
fn human_split(tick: u32) -> Option<LiveDeployment> {
    (16..20).contains(&tick).then(|| LiveDeployment {
        deployment_id: Some("dep-human".into()),
        versions: vec![
            VersionShare {
                version_id: NEW_VERSION.into(),
                percent: 30.0,
            },
            VersionShare {
                version_id: OLD_VERSION.into(),
                percent: 70.0,
            },
        ],
        author_email: Some("someone@example.com".into()),
        message: Some("hand-tuned split".into()),
        triggered_by: Some("deployment".into()),
        created_on: Some("2026-11-27T10:16:30Z".into()),
        cohorts: Vec::new(),
    })
}

/// At step 2 (50%), after step 1's end-of-dwell look.
fn mid_split(s: &RolloutState, tick: u32) -> bool {
    s.phase == (Phase::Ramping { step: 1 }) && s.signals.last_step_look == Some(0) && tick >= 14
}

/// At 100% with the bake's tests running.
fn baking(s: &RolloutState, tick: u32) -> bool {
    s.phase == Phase::Baking && s.signals.errors_bake.is_some() && tick >= 24
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            file: "v2/mid-split.json",
            about: "Healthy release ramping at step 2 (50%) after step 1's end-of-dwell look; \
                    the ticks that follow take it to the bake.",
            scenario: HEALTHY,
            seed: 1,
            snapshot: mid_split,
            then_ticks: 9,
            commands: &[],
            write: confirmed,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/baking.json",
            about: "Healthy release at 100% with bake minutes counted; the ticks that follow \
                    complete it.",
            scenario: HEALTHY,
            seed: 2,
            snapshot: baking,
            then_ticks: 10,
            commands: &[],
            write: confirmed,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/paused.json",
            about: "Paused by an operator at step 1 (10%); the ticks that follow observe while \
                    paused, then the operator resumes.",
            scenario: HEALTHY,
            seed: 3,
            snapshot: |_, tick| tick == 7,
            then_ticks: 8,
            commands: &[(5, Command::Pause), (10, Command::Resume)],
            write: confirmed,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/rolling-back.json",
            about: "5xx ×5 from minute 24 (the bake): rolling back, the write back to the \
                    stable version failed once (503) and waits for its retry.",
            scenario: REGRESSION_IN_BAKE,
            seed: 4,
            snapshot: |s, _| matches!(s.phase, Phase::RollingBack { .. }),
            then_ticks: 4,
            commands: &[],
            write: rollback_fails_once,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/completed.json",
            about: "Completed healthy; later ticks change nothing.",
            scenario: HEALTHY,
            seed: 5,
            snapshot: |s, _| s.phase == Phase::Completed,
            then_ticks: 2,
            commands: &[],
            write: confirmed,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/queue.json",
            about: "Bursty service at 1000 rps (5xx and slow looks burst-scaled) whose policy \
                    watches a queue, mid-split; the ticks that follow read the queue.",
            scenario: BURSTY_WITH_QUEUE,
            seed: 6,
            snapshot: |s, tick| s.phase == (Phase::Ramping { step: 1 }) && tick >= 16,
            then_ticks: 6,
            commands: &[],
            write: confirmed,
            read: own_reads,
            strip: &[],
        },
        Case {
            file: "v2/drifted.json",
            about: "Someone else set 30% during step 2: drifted; the operator then resumes \
                    (takes over) and the gate re-asserts its split.",
            scenario: HEALTHY,
            seed: 7,
            snapshot: |s, _| matches!(s.phase, Phase::Drifted { .. }),
            then_ticks: 6,
            commands: &[(19, Command::Resume)],
            write: confirmed,
            read: human_split,
            strip: &[],
        },

    ]
}

fn config() -> GateConfig {
    let vars = [
        ("CLOUDFLARE_ACCOUNT_ID", "acc"),
        ("TARGET_BASE_URL", "https://{script}.example.com"),
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

fn passing_preflight() -> PreflightReport {
    let pass = || Check::Pass {
        detail: "simulated".into(),
    };
    PreflightReport {
        version_exists: pass(),
        healthz: pass(),
        asset: pass(),
        bindings: pass(),
    }
}

/// What a step decided, as the fixtures record it: the phase after it, the tick's decision,
/// and each action (audit events and notices by kind, phase and decision; the rest whole).
fn decided(state: &RolloutState, actions: &[Action]) -> Value {
    let actions: Vec<Value> = actions
        .iter()
        .map(|a| match a {
            Action::RecordEvent(e) => json!({
                "record_event": e.kind, "phase": e.phase, "decision": e.decision,
            }),
            Action::Notify(n) => json!({"notify": n.kind, "phase": n.phase}),
            // An internally tagged newtype of an integer does not encode.
            Action::WakeAt(at) => json!({"wake_at": at}),
            other => serde_json::to_value(other).expect("an action encodes"),
        })
        .collect();
    json!({
        "phase": state.phase,
        "decision": state.last_decision,
        "actions": actions,
    })
}

/// The simulated Durable Object of one case.
struct Object<'s> {
    case: &'s Case,
    world: World<'s>,
    config: GateConfig,
    written: Vec<VersionShare>,
    attempts: u32,
    state: Option<RolloutState>,
    outbox: Outbox,
    budget: ApiBudget,
    last_now: Timestamp,
    /// After the snapshot: one line per step (`{"now", "input", "then"}`), inputs as stepped.
    steps: Option<Vec<String>>,
}

impl Object<'_> {
    /// Steps `input` (read back from its text) and carries out the actions as the controller
    /// does: notices to the outbox, writes answered at once, pre-flight passing.
    fn feed(&mut self, input: Input, now: Timestamp) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let text = serde_json::to_string(&input).expect("an input encodes");
            let input: Input = serde_json::from_str(&text).expect("an input decodes");
            let state = self.state.take().expect("a rollout");
            let (state, actions) = rollout::step(state, input, now);
            if let Some(steps) = self.steps.as_mut() {
                let then = serde_json::to_string(&decided(&state, &actions)).expect("encodes");
                steps.push(format!(
                    r#"{{"now": {}, "input": {text}, "then": {then}}}"#,
                    now.millis()
                ));
            }
            self.state = Some(state);
            for action in actions {
                match action {
                    Action::Notify(notice) => self.outbox.push(render(&notice, &self.config), now),
                    Action::SetDeployment { write, split, .. } => {
                        self.attempts += 1;
                        self.budget.record(now);
                        let outcome = (self.case.write)(&split, self.attempts);
                        if matches!(outcome, WriteOutcome::Confirmed { .. }) {
                            self.world.apply_split(now, &split);
                            self.written = split;
                            self.attempts = 0;
                        }
                        queue.push_back(Input::DeploymentWrite { write, outcome });
                    }
                    Action::RunPreflight { .. } => {
                        queue.push_back(Input::Preflight(passing_preflight()))
                    }
                    Action::RecordEvent(_) | Action::WakeAt(_) => {}
                }
            }
        }
    }

    fn tick(&mut self, tick: u32) {
        let now = tick_time(tick);
        self.last_now = now;
        self.world.advance_to(now);
        let state = self.state.as_ref().expect("a rollout");
        if state.phase.is_terminal() {
            self.feed(Input::Tick(Observations::default()), now);
            return;
        }
        let plan = rollout::plan(state, now);
        let deployment = plan.read_deployment.then(|| match (self.case.read)(tick) {
            Some(live) => Fetched::Ok(live),
            None => self.world.read_deployment(tick, &self.written),
        });
        let mut calls = u32::from(plan.read_deployment);
        calls += u32::from(plan.counts.is_some()) + u32::from(plan.history.is_some());
        for _ in 0..calls {
            self.budget.record(now);
        }
        let observations = Observations {
            deployment,
            healthz: plan.probe_healthz.then(|| self.world.probe(tick)),
            counts: plan.counts.as_ref().map(|q| self.world.counts(q, tick)),
            queue: if plan.queue {
                self.world.queue(tick)
            } else {
                None
            },
            history: plan.history.as_ref().map(|q| self.world.history(q, tick)),
        };
        self.feed(Input::Tick(observations), now);
        for (at, command) in self.case.commands {
            if *at == tick {
                let input = Input::Operator {
                    command: *command,
                    by: "oncall@example.com".into(),
                    why: Some(format!("{command} from the runbook")),
                };
                self.feed(input, now);
            }
        }
        // Slack answers the oldest message each tick.
        if let Some(&id) = self.outbox.due(now).first() {
            self.outbox.record(
                id,
                &rollout_gate::clients::slack::SlackOutcome::Delivered,
                now,
            );
        }
    }

    fn stored(&self) -> StoredRollout {
        StoredRollout {
            schema: rollout_gate::rollout::schema::CURRENT,
            upgraded_from: None,
            state: self.state.clone().expect("a rollout"),
            outbox: self.outbox.clone(),
            budget: self.budget.clone(),
            last_now: self.last_now,
        }
    }
}

fn remove(value: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if *first == "[]" {
        if let Value::Array(items) = value {
            for item in items {
                remove(item, rest);
            }
        }
        return;
    }
    let Value::Object(fields) = value else { return };
    if rest.is_empty() {
        fields.remove(*first);
    } else if let Some(inner) = fields.get_mut(*first) {
        remove(inner, rest);
    }
}

fn generate(case: &Case, dir: &Path) {
    let scenario = Scenario::from_json(case.scenario).expect("valid scenario");
    let mut object = Object {
        case,
        world: World::new(&scenario, Rng::from_seed(case.seed)),
        config: config(),
        written: vec![VersionShare {
            version_id: OLD_VERSION.into(),
            percent: 100.0,
        }],
        attempts: 0,
        state: None,
        outbox: Outbox::default(),
        budget: ApiBudget::new(200),
        last_now: tick_time(0),
        steps: None,
    };
    let request = StartRequest {
        script: "shop-frontend".into(),
        version_id: NEW_VERSION.into(),
        baseline_version_id: OLD_VERSION.into(),
        git_sha: Some("4c8fa47".into()),
        schedule: scenario.schedule.clone(),
        dry_run: false,
        message: Some("Release 2026.11.27".into()),
    };
    let now = tick_time(0);
    object.state = Some(rollout::RolloutState::new(
        request,
        scenario.policy.clone(),
        now,
    ));
    object.feed(Input::Start, now);
    let mut snapshot = None;
    let mut tick = 0;
    while snapshot.is_none() {
        tick += 1;
        assert!(tick < scenario.minutes, "{}: no snapshot", case.file);
        object.tick(tick);
        if (case.snapshot)(object.state.as_ref().expect("a rollout"), tick) {
            let mut stored = serde_json::to_value(object.stored()).expect("encodes");
            for path in case.strip {
                let parts: Vec<&str> = path.split('.').collect();
                remove(&mut stored, &parts);
            }
            let text = serde_json::to_string(&stored).expect("encodes");
            // What this release makes of the text is what the run goes on from.
            let read: StoredRollout = serde_json::from_str(&text).expect("the stored text reads");
            object.state = Some(read.state.clone());
            object.outbox = read.outbox.clone();
            object.budget = read.budget.clone();
            object.last_now = read.last_now;
            snapshot = Some((text, read));
        }
    }
    let (text, read) = snapshot.expect("a snapshot");
    object.steps = Some(Vec::new());
    for next in tick + 1..=tick + case.then_ticks {
        object.tick(next);
    }
    let steps = object.steps.take().expect("steps").join(",\n    ");
    let about = serde_json::to_string(case.about).expect("encodes");
    let read_back = if case.strip.is_empty() {
        String::new()
    } else {
        let read = serde_json::to_string(&read).expect("encodes");
        format!(",\n  \"read_by_previous_release\": {read}")
    };
    let body = format!(
        "{{\n  \"about\": {about},\n  \"stored_at_tick\": {tick},\n  \"stored\": {text}{read_back},\n  \"steps\": [\n    {steps}\n  ]\n}}\n"
    );
    let path = dir.join(case.file);
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
    serde_json::from_str::<Value>(&body).expect("the fixture is JSON");
    std::fs::write(&path, body).expect("write");
    println!("{}: stored at tick {tick}, {} bytes", case.file, text.len());
}

#[test]
#[ignore = "writes tests/fixtures/stored/; run on the release the fixtures stand for"]
fn generate_stored_rollouts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stored");
    for case in cases() {
        generate(&case, &dir);
    }
}
