//! The simulator: replays scenario files through the very same decision core (and through
//! comparator gates and an oracle), many seeded runs in parallel, and measures decision
//! quality. Native only; `src/bin/rollout-sim.rs` is its command line. See docs/benchmark.md
//! for results and docs/scenarios.md for the scenario format.

pub mod cpu_clock;
pub mod gates;
pub mod latency;
pub mod oracle;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod traffic;
pub mod validity;

pub use report::{GateSummary, OracleSummary, ScenarioReport};
pub use run::{run_once, tick_costs, GateKind, RunOutcome, TickCost};
pub use scenario::{Scenario, ScenarioError};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seeded runs per scenario and gate.
    pub runs: usize,
    /// Base seed; each (scenario, gate, run) derives its own stream from it.
    pub seed: u64,
    /// The gates to run.
    pub gates: Vec<GateKind>,
    /// Evaluate the oracle on regression scenarios.
    pub oracle: bool,
    /// Null runs that calibrate the oracle's critical value.
    pub calibration_runs: usize,
    /// Worker threads (≥ 1).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 300,
            seed: 1,
            gates: GateKind::ALL.to_vec(),
            oracle: true,
            calibration_runs: 20_000,
            threads: 1,
        }
    }
}

/// Runs per job: small enough to balance threads, large enough to amortize bookkeeping.
const CHUNK: usize = 25;

/// One unit of work.
enum Job {
    /// Runs `[from, to)` of one gate in one scenario.
    Gate {
        scenario: usize,
        gate: usize,
        from: usize,
        to: usize,
    },
    /// The oracle of one scenario.
    Oracle { scenario: usize },
}

/// Simulates every scenario with every gate. `progress(done, total)` is called (from worker
/// threads) as runs finish; results do not depend on the number of threads.
pub fn simulate(
    scenarios: &[Scenario],
    options: &Options,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<ScenarioReport> {
    let oracle_runs = options.runs.max(1);
    let mut jobs = Vec::new();
    for (s, scenario) in scenarios.iter().enumerate() {
        if options.oracle && !scenario.is_healthy() {
            jobs.push(Job::Oracle { scenario: s });
        }
        for (g, kind) in options.gates.iter().enumerate() {
            if !applies(*kind, scenario) {
                continue;
            }
            for from in (0..options.runs).step_by(CHUNK) {
                jobs.push(Job::Gate {
                    scenario: s,
                    gate: g,
                    from,
                    to: (from + CHUNK).min(options.runs),
                });
            }
        }
    }
    let weight = |job: &Job| match job {
        Job::Gate { from, to, .. } => to - from,
        Job::Oracle { .. } => oracle_runs,
    };
    let total: usize = jobs.iter().map(weight).sum();
    let outcomes: Vec<Vec<Mutex<Vec<RunOutcome>>>> = scenarios
        .iter()
        .map(|_| {
            options
                .gates
                .iter()
                .map(|_| Mutex::new(vec![RunOutcome::default(); options.runs]))
                .collect()
        })
        .collect();
    let oracles: Vec<Mutex<Option<oracle::OracleReport>>> =
        scenarios.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(index) else { break };
        match *job {
            Job::Gate {
                scenario,
                gate,
                from,
                to,
            } => {
                let kind = options.gates[gate];
                let results: Vec<RunOutcome> = (from..to)
                    .map(|run| run_once(&scenarios[scenario], kind, options.seed, run as u64))
                    .collect();
                let mut slot = lock(&outcomes[scenario][gate]);
                slot[from..to].clone_from_slice(&results);
            }
            Job::Oracle { scenario } => {
                let report = oracle::evaluate(
                    &scenarios[scenario],
                    oracle_runs,
                    options.calibration_runs,
                    options.seed,
                );
                *lock(&oracles[scenario]) = report;
            }
        }
        let finished = done.fetch_add(weight(job), Ordering::Relaxed) + weight(job);
        progress(finished, total);
    };
    // One thread runs here (WASI, where the tick-cost benchmark runs, has no threads).
    match options.threads {
        0 | 1 => work(),
        threads => std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        }),
    }
    scenarios
        .iter()
        .enumerate()
        .map(|(s, scenario)| {
            let gates = options
                .gates
                .iter()
                .enumerate()
                .filter(|(_, kind)| applies(**kind, scenario))
                .map(|(g, kind)| report::summarize(scenario, *kind, &lock(&outcomes[s][g])))
                .collect();
            ScenarioReport {
                scenario: scenario.name.clone(),
                description: scenario.description.clone(),
                healthy: scenario.is_healthy(),
                rps: scenario.rps_at(0),
                split_minutes: scenario.split_minutes(),
                schedule_minutes: report::total_minutes(scenario),
                gates,
                oracle: lock(&oracles[s]).as_ref().map(report::summarize_oracle),
                onset_minute: scenario.onset_minute(),
            }
        })
        .collect()
}

/// Whether `gate` runs on `scenario`: the schedule-forced variant of ours only measures
/// detection power, so it runs on regressions only.
fn applies(gate: GateKind, scenario: &Scenario) -> bool {
    gate != GateKind::OursScheduled || !scenario.is_healthy()
}

/// Locks a mutex, recovering the data if another worker panicked (the panic itself still
/// propagates out of the thread scope).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
