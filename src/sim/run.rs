//! One seeded run of one gate through one scenario, and what it did: our gate drives the real
//! core (`rollout::start`, then `plan` and `step` every simulated minute, with deployment
//! writes confirmed back into `step`), the comparators drive the same world (see `gates`).

use super::cpu_clock::CpuInstant;
use super::gates;
use super::rng::Rng;
use super::scenario::Scenario;
use super::traffic::{tick_time, World, NEW_VERSION, OLD_VERSION};
use crate::observe::{Check, Observations, PreflightReport, VersionShare};
use crate::policy::Signal;
use crate::rollout::{
    self, Action, Command, Decision, EventKind, Input, Phase, RollbackCause, RolloutState, Stage,
    StartRequest, WriteOutcome,
};
use crate::signals::Assessment;
use crate::stats::RatioSummary;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::VecDeque;

/// The gates the simulator compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateKind {
    /// rollout-gate's own decision core.
    Ours,
    /// The same core, but a simulated operator promotes every split step when its dwell
    /// ends, evidence or not: the test's power at the schedule's exposure (the oracle's).
    OursScheduled,
    /// Flagger-style: 1-minute checks, roll back at the first failed check.
    Flagger1,
    /// Flagger-style with `threshold: 5`.
    Flagger5,
    /// Trailing-window threshold (cloud-run-release-manager defaults).
    Window,
    /// A fixed-horizon z-test re-run every minute.
    FixedZ,
}

impl GateKind {
    /// Every gate, in report order.
    pub const ALL: [GateKind; 6] = [
        GateKind::Ours,
        GateKind::OursScheduled,
        GateKind::Flagger1,
        GateKind::Flagger5,
        GateKind::Window,
        GateKind::FixedZ,
    ];

    /// Short name for tables and the `--gates` option.
    pub fn name(self) -> &'static str {
        match self {
            GateKind::Ours => "ours",
            GateKind::OursScheduled => "ours-sched",
            GateKind::Flagger1 => "flagger-1",
            GateKind::Flagger5 => "flagger-5",
            GateKind::Window => "window",
            GateKind::FixedZ => "fixed-z",
        }
    }

    /// Parses a name from `name()`.
    pub fn parse(name: &str) -> Option<GateKind> {
        GateKind::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Stream id for seeding (stable across versions of this list).
    fn stream(self) -> u64 {
        match self {
            GateKind::Ours => 1,
            GateKind::Flagger1 => 2,
            GateKind::Flagger5 => 3,
            GateKind::Window => 4,
            GateKind::FixedZ => 5,
            // Same stream as ours: the two differ only by the operator (common random numbers).
            GateKind::OursScheduled => 1,
        }
    }

    /// The comparator rule behind this gate (`None` for ours).
    fn comparator(self) -> Option<gates::Comparator> {
        match self {
            GateKind::Ours | GateKind::OursScheduled => None,
            GateKind::Flagger1 => Some(gates::Comparator::Flagger { threshold: 1 }),
            GateKind::Flagger5 => Some(gates::Comparator::Flagger { threshold: 5 }),
            GateKind::Window => Some(gates::Comparator::Window),
            GateKind::FixedZ => Some(gates::Comparator::FixedZ),
        }
    }
}

/// What one run did. Minutes are tick minutes since the deploy hook (the split starts at 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunOutcome {
    /// When the gate decided to roll back.
    pub rolled_back_at: Option<u32>,
    /// The first signal behind the rollback.
    pub rollback_signal: Option<Signal>,
    /// The rollback happened while the first step's share was live.
    pub rolled_back_in_first_step: bool,
    /// When the new version completed (100% and baked).
    pub completed_at: Option<u32>,
    /// When the rollout first paused.
    pub paused_at: Option<u32>,
    /// A step's dwell ended without the evidence to promote, at least once.
    pub held: bool,
    /// Promotions (advance or complete) decided by the gate.
    pub promotions: u32,
    /// Promotions taken without positive evidence: for ours, a promotion whose tick lacked
    /// fresh counts, healthy verdicts or a met bound/exposure rule; for comparators, one our
    /// 5xx evidence rule would not have allowed on the minutes they had seen.
    pub unsupported_promotions: u32,
    /// Bad requests (5xx + slow) the new version served beyond the baseline's rates, over
    /// the scenario's whole horizon.
    pub excess_bad: f64,
}

/// Runs `gate` once through `scenario` with the run's own random stream.
pub fn run_once(scenario: &Scenario, gate: GateKind, seed: u64, run: u64) -> RunOutcome {
    let rng = run_rng(scenario, gate, seed, run);
    match gate.comparator() {
        Some(comparator) => gates::run_comparator(scenario, comparator, rng),
        None => drive_ours(scenario, rng, gate == GateKind::OursScheduled, false, None).0,
    }
}

/// The random stream of run `run` of `gate` in `scenario`: the same whether the run is
/// simulated, traced or timed.
fn run_rng(scenario: &Scenario, gate: GateKind, seed: u64, run: u64) -> Rng {
    Rng::derive(
        seed,
        &[super::rng::hash_name(&scenario.name), gate.stream(), run],
    )
}

/// A pre-flight that passes (the simulator studies the ramp, not pre-flight).
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

/// The shell's part, simulated: carries out actions at once (a read before a write answers
/// from the world, writes succeed and are confirmed back into `step`) and records what the
/// run did.
struct Shell<'s> {
    world: World<'s>,
    /// The gate's last confirmed split (what a read returns).
    written: Vec<VersionShare>,
    outcome: RunOutcome,
    /// Audit-event lines, when tracing.
    trace: Option<Vec<String>>,
    /// Encode each audit event as JSON, as the Durable Object stores it (when timing ticks).
    encode_events: bool,
    /// The current schedule step (0-based) and the tick it started.
    step: usize,
    step_since: u32,
}

impl Shell<'_> {
    fn carry_out(
        &mut self,
        mut state: RolloutState,
        actions: Vec<Action>,
        now: Timestamp,
        tick: u32,
    ) -> RolloutState {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let input = match action {
                Action::SetDeployment { write, split, .. } => {
                    self.world.apply_split(now, &split);
                    self.written = split;
                    Input::DeploymentWrite {
                        write,
                        outcome: WriteOutcome::Confirmed {
                            deployment_id: None,
                        },
                    }
                }
                // The read the core asks for before a write it has no fresh read for.
                Action::ReadDeployment { .. } => {
                    Input::LiveRead(self.world.read_deployment(tick, &self.written))
                }
                Action::RunPreflight { .. } => Input::Preflight(passing_preflight()),
                Action::RecordEvent(event) => {
                    if self.encode_events {
                        let json = serde_json::to_string(&event).expect("an audit event encodes");
                        std::hint::black_box(json);
                    }
                    if let Some(lines) = self.trace.as_mut() {
                        lines.push(format!("{tick:>3}  {}", event.summary));
                        lines.extend(event.details.iter().map(|d| format!("       {d}")));
                    }
                    if event.kind == EventKind::Tick {
                        let counts_gap =
                            event.facts.as_ref().is_some_and(|f| f.counts_gap.is_some());
                        let tolerance = state.policy.rho_tolerance;
                        self.record_tick(
                            event.decision.as_ref(),
                            event.assessment.as_ref(),
                            counts_gap,
                            tolerance,
                        );
                    }
                    continue;
                }
                Action::Notify(notice) => {
                    self.record_notice(&notice.kind, &notice.phase, tick);
                    continue;
                }
                Action::WakeAt(_) => continue,
            };
            let (next, more) = rollout::step(state, input, now);
            state = next;
            queue.extend(more);
        }
        state
    }

    /// Counts a promotion, and whether the tick that took it had positive evidence: fresh
    /// counts, healthy 5xx and latency verdicts, and each test's bound or exposure rule met.
    fn record_tick(
        &mut self,
        decision: Option<&Decision>,
        assessment: Option<&Assessment>,
        counts_gap: bool,
        tolerance: f64,
    ) {
        if !matches!(
            decision,
            Some(Decision::Advance { .. } | Decision::Complete)
        ) {
            return;
        }
        self.outcome.promotions += 1;
        let supported = !counts_gap
            && assessment.is_some_and(|a| {
                a.errors.is_healthy()
                    && a.latency.is_healthy()
                    && evidenced(a.errors_test.as_ref(), tolerance)
                    && evidenced(a.slow_test.as_ref(), tolerance)
            });
        if !supported {
            self.outcome.unsupported_promotions += 1;
        }
    }

    fn record_notice(&mut self, kind: &EventKind, phase: &Phase, tick: u32) {
        let o = &mut self.outcome;
        match kind {
            EventKind::RollingBack if o.rolled_back_at.is_none() => {
                o.rolled_back_at = Some(tick);
                o.rolled_back_in_first_step = self.step == 0;
                if let Phase::RollingBack {
                    cause: RollbackCause::Unhealthy { reasons },
                } = phase
                {
                    o.rollback_signal = reasons.first().map(|r| r.signal);
                }
            }
            EventKind::Completed => o.completed_at = Some(tick),
            EventKind::Paused => {
                o.paused_at.get_or_insert(tick);
            }
            EventKind::Holding { .. } => o.held = true,
            EventKind::StepStarted { step, .. } => {
                self.step = *step;
                self.step_since = tick;
            }
            _ => {}
        }
    }
}

/// A test summary shows positive evidence: a tight upper bound or a met exposure rule.
fn evidenced(summary: Option<&RatioSummary>, tolerance: f64) -> bool {
    summary.is_some_and(|s| s.upper_bound < tolerance || s.exposure_met)
}

/// One run of our gate with its audit log: one line per event (`minute  summary`), for
/// `rollout-sim --trace`.
pub fn trace_ours(scenario: &Scenario, seed: u64, run: u64) -> (RunOutcome, Vec<String>) {
    let rng = run_rng(scenario, GateKind::Ours, seed, run);
    let (outcome, lines) = drive_ours(scenario, rng, false, true, None);
    (outcome, lines.unwrap_or_default())
}

/// What one tick of our gate cost, measured on this machine (`rollout-sim --tick-cost`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TickCost {
    pub tick: u32,
    /// The phase after the tick.
    pub phase: &'static str,
    /// The thread's CPU time (`cpu_clock`) decoding the stored state, planning, stepping
    /// (with the actions' confirmations) and encoding the state and the tick's audit events:
    /// the Durable Object's work each tick besides its I/O.
    pub nanos: u64,
    /// The encoded state's length.
    pub state_bytes: usize,
}

/// One run of our gate, timed tick by tick (see `TickCost`), and its outcome.
pub fn tick_costs(scenario: &Scenario, seed: u64, run: u64) -> (RunOutcome, Vec<TickCost>) {
    let rng = run_rng(scenario, GateKind::Ours, seed, run);
    let mut costs = Vec::new();
    let (outcome, _) = drive_ours(scenario, rng, false, false, Some(&mut costs));
    (outcome, costs)
}

/// Our gate: the real core, ticked every simulated minute. With `scheduled`, a simulated
/// operator promotes each split step whose dwell is over (see `GateKind::OursScheduled`).
fn drive_ours(
    scenario: &Scenario,
    rng: Rng,
    scheduled: bool,
    trace: bool,
    mut costs: Option<&mut Vec<TickCost>>,
) -> (RunOutcome, Option<Vec<String>>) {
    let mut shell = Shell {
        world: World::new(scenario, rng),
        written: vec![VersionShare {
            version_id: OLD_VERSION.into(),
            percent: 100.0,
        }],
        outcome: RunOutcome::default(),
        trace: trace.then(Vec::new),
        encode_events: costs.is_some(),
        step: 0,
        step_since: 0,
    };
    let request = StartRequest {
        script: "simulated-worker".into(),
        version_id: NEW_VERSION.into(),
        baseline_version_id: OLD_VERSION.into(),
        git_sha: None,
        schedule: scenario.schedule.clone(),
        dry_run: false,
        message: None,
    };
    let start = tick_time(0);
    let (state, actions) = rollout::start(request, scenario.policy.clone(), start);
    let mut state = shell.carry_out(state, actions, start, 0);
    // With `costs`, the state as the Durable Object stores it between ticks: each tick
    // decodes it and encodes the next (the simulated operator of `scheduled` would change
    // the state after that, so timed runs are not scheduled).
    debug_assert!(
        !(scheduled && costs.is_some()),
        "timed runs are not scheduled"
    );
    let mut stored = costs
        .is_some()
        .then(|| serde_json::to_string(&state).expect("a rollout state encodes"));
    for tick in 1..=scenario.minutes {
        let now = tick_time(tick);
        shell.world.advance_to(now);
        // Timed with `costs`: the stored state is decoded and planned on; the simulated
        // reads below are not timed.
        let started = CpuInstant::now();
        if let Some(json) = stored.take() {
            state = serde_json::from_str(&json).expect("an encoded rollout state decodes");
        }
        let plan = rollout::plan(&state, now);
        let planning = started.elapsed();
        let world = &mut shell.world;
        let observations = Observations {
            deployment: plan
                .read_deployment
                .then(|| world.read_deployment(tick, &shell.written)),
            healthz: plan.probe_healthz.then(|| world.probe(tick)),
            counts: plan.counts.as_ref().map(|q| world.counts(q, tick)),
            queue: if plan.queue { world.queue(tick) } else { None },
            history: plan.history.as_ref().map(|q| world.history(q, tick)),
        };
        let started = CpuInstant::now();
        let (next, actions) = rollout::step(state, Input::Tick(observations), now);
        state = shell.carry_out(next, actions, now, tick);
        if let Some(costs) = costs.as_deref_mut() {
            // Encoded as the Durable Object stores it, and timed with the rest.
            let encoded = serde_json::to_string(&state).expect("a rollout state encodes");
            let spent = planning + started.elapsed();
            costs.push(TickCost {
                tick,
                phase: state.phase.name(),
                nanos: u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
                state_bytes: encoded.len(),
            });
            stored = Some(encoded);
        }
        if scheduled {
            state = promote_on_schedule(&mut shell, state, now, tick);
        }
        if state.phase.is_terminal() {
            break;
        }
    }
    finish(&mut shell.world, scenario, &mut shell.outcome);
    (shell.outcome, shell.trace)
}

/// The simulated operator of `GateKind::OursScheduled`: promotes a split step (ramping or
/// paused there) once its dwell is over.
fn promote_on_schedule(
    shell: &mut Shell<'_>,
    state: RolloutState,
    now: Timestamp,
    tick: u32,
) -> RolloutState {
    let Some(Stage::Ramping { step }) = state.phase.stage() else {
        return state;
    };
    let dwell = state.schedule.step(step).map_or(0, |s| s.dwell_minutes);
    if tick < shell.step_since + dwell || rollout::check_command(&state, Command::Promote).is_err()
    {
        return state;
    }
    let input = Input::Operator {
        command: Command::Promote,
        by: "schedule".into(),
        why: None,
    };
    let (next, actions) = rollout::step(state, input, now);
    shell.carry_out(next, actions, now, tick)
}

/// Generates the rest of the horizon (the split stays as the gate left it) and totals the
/// harm the new version did.
pub(super) fn finish(world: &mut World<'_>, scenario: &Scenario, outcome: &mut RunOutcome) {
    world.advance_to(tick_time(scenario.minutes));
    outcome.excess_bad = world.minutes.iter().map(|m| m.excess_bad).sum();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The state a busy rollout stores stays bounded over a day's hold: its looks fold the
    /// minutes they have looked at and keep totals only past their event limit, its
    /// e-processes' rows are capped. 1000 rps held at 10% for 24 hours, encoded every tick as
    /// the Durable Object stores it (about 69 KB at most, reached within the first hours).
    #[test]
    fn a_24_hour_hold_at_1000_rps_stores_under_80_kb_and_stops_growing() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hold/aa-1000rps-held-24h.json");
        let scenario = Scenario::load(&path).expect("the scenario loads");
        let (_, costs) = tick_costs(&scenario, 1, 0);
        assert_eq!(costs.len(), 1440, "ticked through the day");
        let largest = |ticks: &[TickCost]| ticks.iter().map(|c| c.state_bytes).max().unwrap_or(0);
        assert!(largest(&costs) < 80_000, "{} bytes", largest(&costs));
        let (first_half, second_half) = costs.split_at(720);
        assert!(
            largest(second_half) <= largest(first_half) + 1_000,
            "still growing: {} bytes in the first 12 hours, {} in the next",
            largest(first_half),
            largest(second_half)
        );
    }
}
