//! `rollout-sim --validity`: Monte Carlo measurements of each statistical test on its own,
//! outside the gate. The table of cells below holds every test type's false rejections of
//! healthy releases against its α (checked), the same releases without the correction a test
//! relies on (for contrast), and its power on regressions; `limits` adds what bounds the
//! split e-process's power. The unit tests run one fast seeded check per test type on the
//! same models (`models`).

pub mod limits;
pub mod models;

use self::models::{Bake, Prior};
use crate::sim::rng::{hash_name, Rng};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a cell's measured rate is held to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Claim {
    /// Healthy releases: the test rejects at most `allowed` of them (α for the exact and
    /// anytime-valid tests, a stated multiple of it for the approximate burst scaling),
    /// beyond Monte Carlo error.
    AtMost { allowed: f64 },
    /// The same healthy releases without the correction the test relies on: shown to say
    /// why it is there (expected above α), not checked.
    Contrast,
    /// Regressions: the rate is the test's power, not checked.
    Power,
}

/// One measurement: a test, the releases it sees, and its claim.
pub struct Cell {
    /// The test measured.
    pub test: &'static str,
    /// The releases it is run on.
    pub case: String,
    /// The test's α.
    pub alpha: f64,
    pub claim: Claim,
    /// Seeded runs when `--runs` is not given.
    pub runs: usize,
    /// One seeded run: whether the test rejected.
    trial: Box<dyn Fn(&mut Rng) -> bool + Send + Sync>,
}

/// A cell's measured rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub test: &'static str,
    pub case: String,
    pub alpha: f64,
    pub claim: Claim,
    pub runs: usize,
    /// Runs the test rejected.
    pub rejected: usize,
    pub rate: f64,
    /// For `Claim::AtMost`: the allowed rate plus three binomial standard errors.
    pub limit: Option<f64>,
    /// The rate is above `limit`.
    pub exceeds: bool,
}

/// The allowed rate plus three binomial standard errors at `runs`: the most a test that
/// holds its claim shows, but for about one measurement in 700.
pub fn limit(allowed: f64, runs: usize) -> f64 {
    allowed + 3.0 * (allowed * (1.0 - allowed) / runs as f64).sqrt()
}

/// The share of `runs` runs of `trial` that reject.
pub fn rate(runs: usize, mut trial: impl FnMut() -> bool) -> f64 {
    (0..runs).filter(|_| trial()).count() as f64 / runs as f64
}

impl Cell {
    fn new(
        test: &'static str,
        case: impl Into<String>,
        alpha: f64,
        claim: Claim,
        runs: usize,
        trial: impl Fn(&mut Rng) -> bool + Send + Sync + 'static,
    ) -> Cell {
        Cell {
            test,
            case: case.into(),
            alpha,
            claim,
            runs,
            trial: Box::new(trial),
        }
    }

    /// Runs the cell `runs` times on its own stream of `seed` (derived from its test, case
    /// and α, so that no cell's numbers depend on the others or on the threads).
    pub fn measure(&self, runs: usize, seed: u64) -> Measured {
        let parts = [
            hash_name(self.test),
            hash_name(&self.case),
            self.alpha.to_bits(),
        ];
        let mut rng = Rng::derive(seed, &parts);
        let rejected = (0..runs).filter(|_| (self.trial)(&mut rng)).count();
        let rate = rejected as f64 / runs as f64;
        let limit = match self.claim {
            Claim::AtMost { allowed } => Some(limit(allowed, runs)),
            Claim::Contrast | Claim::Power => None,
        };
        Measured {
            test: self.test,
            case: self.case.clone(),
            alpha: self.alpha,
            claim: self.claim,
            runs,
            rejected,
            rate,
            limit,
            exceeds: limit.is_some_and(|l| rate > l),
        }
    }
}

/// The split e-process's priors measured, with their names.
const PRIORS: [(Prior, &str); 2] = [
    (Prior::Gate, "split e-process"),
    (
        Prior::EqualWeight,
        "split e-process, equal-weight 8-point prior",
    ),
];
/// Traffic levels of the split e-process's cells (requests a second).
const TRAFFIC: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
/// The split e-process's regression cells (rps, ratio): issue 3's reference cells.
const SPLIT_REGRESSIONS: [(f64, f64); 11] = [
    (0.1, 20.0),
    (1.0, 5.0),
    (1.0, 20.0),
    (10.0, 2.0),
    (10.0, 5.0),
    (10.0, 20.0),
    (100.0, 1.5),
    (100.0, 2.0),
    (100.0, 5.0),
    (1000.0, 1.5),
    (1000.0, 2.0),
];
/// Bursts (squared CV, minutes each lasts) of the bake's burst-scaled cells at the gate's α.
const GATE_BURSTS: [(f64, u32); 5] = [(0.04, 1), (0.09, 1), (0.04, 10), (0.09, 10), (0.25, 10)];
/// The gate's bake looks' α for 5xx (0.01 × 0.05 × 0.75) and its bake e-process's.
const GATE_BAKE_LOOKS_ALPHA: f64 = 0.000375;
const GATE_BAKE_E_ALPHA: f64 = 0.000125;

/// `x` as a percentage with at most four decimals, e.g. "0.0375%", "30%".
fn percent(x: f64) -> String {
    let text = format!("{:.4}", x * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Every cell, in the order of the report.
pub fn cells() -> Vec<Cell> {
    [
        split_cells(),
        looks_cells(),
        burst_cells(),
        gate_burst_cells(),
        power_cells(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A healthy release's rate at most `alpha`.
fn at_most(alpha: f64) -> Claim {
    Claim::AtMost { allowed: alpha }
}

/// The split e-process (with the gate's prior and the plain one it is compared with) and its
/// upper bound, and the bake e-process, on healthy releases.
fn split_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (prior, name) in PRIORS {
        for rps in TRAFFIC {
            let case = format!("healthy, {rps} rps");
            cells.push(Cell::new(
                name,
                case,
                0.01,
                at_most(0.01),
                20_000,
                move |rng| {
                    models::split_rejects(prior.test(), &models::simulate_split(rng, rps, 1.0))
                },
            ));
        }
    }
    cells.push(Cell::new(
        "split e-process upper bound",
        "below the true ratio 1, healthy, 100 rps",
        0.01,
        at_most(0.01),
        2_000,
        |rng| models::split_bound_misses(rng, 100.0),
    ));
    for rps in [1.0, 10.0, 100.0, 1000.0] {
        let case = format!("healthy, {rps} rps");
        cells.push(Cell::new(
            "bake e-process",
            case,
            0.01,
            at_most(0.01),
            5_000,
            move |rng| models::bake_rejects(rng, rps, 1.0),
        ));
    }
    cells
}

/// The exact looks (scheduled, history, bake) on healthy Poisson releases.
fn looks_cells() -> Vec<Cell> {
    vec![
        Cell::new(
            "scheduled looks",
            "healthy, 0–4 events a minute, a look each minute",
            0.01,
            at_most(0.01),
            20_000,
            models::scheduled_looks_reject,
        ),
        Cell::new(
            "history looks",
            "healthy, rate as in the window",
            0.05,
            at_most(0.05),
            4_000,
            |rng| models::history_looks_reject(rng, 1.0),
        ),
        Cell::new(
            "history looks",
            "healthy, both versions ×3 the window's rate (the guard's α)",
            0.05,
            at_most(0.05),
            4_000,
            |rng| models::history_looks_reject(rng, 3.0),
        ),
        Cell::new(
            "bake looks",
            "healthy, at the margin (1)",
            0.05,
            at_most(0.05),
            20_000,
            models::bake_looks_reject,
        ),
        Cell::new(
            "onset looks",
            "healthy, 6 events a minute, a look each minute",
            0.05,
            at_most(0.05),
            4_000,
            |rng| models::onset_looks_reject(rng, 0.05, 0.0, false),
        ),
        Cell::new(
            "bake onset looks",
            "healthy, at the margin (1)",
            0.05,
            at_most(0.05),
            4_000,
            models::bake_onset_looks_reject,
        ),
    ]
}

/// The burst-scaled looks and bake e-process on healthy bursty releases at α 5% and 0.2%,
/// each beside the same releases unscaled.
fn burst_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (alpha, cv2, allowed, runs) in [
        (0.05, 0.25, 1.0, 2_000),
        (0.002, 0.01, 2.0, 20_000),
        (0.002, 0.09, 2.0, 20_000),
        (0.002, 0.25, 2.0, 20_000),
    ] {
        let case = format!("healthy, per-version bursts CV {}", percent(f64::sqrt(cv2)));
        let claim = at_most(allowed * alpha);
        cells.push(Cell::new(
            "scheduled looks, burst-scaled",
            case.clone(),
            alpha,
            claim,
            runs,
            move |rng| models::burst_looks_reject(rng, alpha, cv2, true),
        ));
        cells.push(Cell::new(
            "scheduled looks, unscaled",
            case,
            alpha,
            Claim::Contrast,
            runs,
            move |rng| models::burst_looks_reject(rng, alpha, cv2, false),
        ));
    }
    let independent = |margin| Bake {
        alpha: 0.05,
        margin,
        cv2: 0.09,
        ratio: margin,
        from: 1,
        raw: false,
        block: 1,
    };
    let held = Bake::healthy(0.05, 0.09, 10);
    for (bake, case) in [
        (independent(1.0), "at the margin (1), shared bursts CV 30%"),
        (
            independent(1.5),
            "at the margin (1.5), shared bursts CV 30%",
        ),
        (
            held,
            "at the margin (1.5), shared bursts CV 30% held 10 min",
        ),
    ] {
        let raw = Bake { raw: true, ..bake };
        cells.push(Cell::new(
            "bake looks, burst-scaled",
            case,
            0.05,
            at_most(0.05),
            2_000,
            move |rng| bake.looks_reject(rng),
        ));
        cells.push(Cell::new(
            "bake looks, raw",
            case,
            0.05,
            Claim::Contrast,
            2_000,
            move |rng| raw.looks_reject(rng),
        ));
        cells.push(Cell::new(
            "bake onset looks, burst-scaled",
            case,
            0.05,
            at_most(0.05),
            2_000,
            move |rng| bake.onset_looks_reject(rng),
        ));
        cells.push(Cell::new(
            "bake onset looks, raw",
            case,
            0.05,
            Claim::Contrast,
            2_000,
            move |rng| raw.onset_looks_reject(rng),
        ));
    }
    let case = "healthy, per-version bursts CV 30%";
    cells.push(Cell::new(
        "onset looks, burst-scaled",
        case,
        0.05,
        at_most(0.05),
        2_000,
        |rng| models::onset_looks_reject(rng, 0.05, 0.09, true),
    ));
    cells.push(Cell::new(
        "onset looks, unscaled",
        case,
        0.05,
        Claim::Contrast,
        2_000,
        |rng| models::onset_looks_reject(rng, 0.05, 0.09, false),
    ));
    let raw = Bake { raw: true, ..held };
    let case = "at the margin (1.5), shared bursts CV 30% held 10 min";
    cells.push(Cell::new(
        "bake e-process, burst-scaled",
        case,
        0.05,
        at_most(0.05),
        800,
        move |rng| held.e_process_rejects(rng),
    ));
    cells.push(Cell::new(
        "bake e-process, raw",
        case,
        0.05,
        Claim::Contrast,
        800,
        move |rng| raw.e_process_rejects(rng),
    ));
    cells
}

/// The bake's burst-scaled looks and e-process at the gate's own levels, held to 3 α: the
/// scaling matches a sum's variance, not its skew, and at small α the skew shows.
fn gate_burst_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (cv2, block) in GATE_BURSTS {
        let case = format!(
            "at the margin (1.5), shared bursts CV {} held {block} min",
            percent(cv2.sqrt())
        );
        let (looks, e_process) = (GATE_BAKE_LOOKS_ALPHA, GATE_BAKE_E_ALPHA);
        let bake = Bake::healthy(looks, cv2, block);
        cells.push(Cell::new(
            "bake looks, burst-scaled",
            case.clone(),
            looks,
            at_most(3.0 * looks),
            20_000,
            move |rng| bake.looks_reject(rng),
        ));
        let bake = Bake::healthy(e_process, cv2, block);
        cells.push(Cell::new(
            "bake e-process, burst-scaled",
            case,
            e_process,
            at_most(3.0 * e_process),
            20_000,
            move |rng| bake.e_process_rejects(rng),
        ));
    }
    cells
}

/// The e-processes' power on regressions.
fn power_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (prior, name) in PRIORS {
        for (rps, ratio) in SPLIT_REGRESSIONS {
            let case = format!("×{ratio} at {rps} rps");
            cells.push(Cell::new(
                name,
                case,
                0.01,
                Claim::Power,
                20_000,
                move |rng| {
                    models::split_rejects(prior.test(), &models::simulate_split(rng, rps, ratio))
                },
            ));
        }
    }
    for (rps, ratio) in [(10.0, 5.0), (100.0, 2.0), (100.0, 5.0), (100.0, 10.0)] {
        let case = format!("×{ratio} at {rps} rps");
        cells.push(Cell::new(
            "bake e-process",
            case,
            0.01,
            Claim::Power,
            5_000,
            move |rng| models::bake_rejects(rng, rps, ratio),
        ));
    }
    cells
}

/// Measures every cell, `runs` times each (or each cell's own count), on `threads` threads;
/// `progress(done, total, cell)` is called as cells finish. Results are in the cells' order
/// and do not depend on the threads.
pub fn measure_all(
    cells: &[Cell],
    runs: Option<usize>,
    seed: u64,
    threads: usize,
    progress: &(dyn Fn(usize, usize, &Measured) + Sync),
) -> Vec<Measured> {
    let slots: Vec<Mutex<Option<Measured>>> = cells.iter().map(|_| Mutex::new(None)).collect();
    let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(cell) = cells.get(index) else { break };
        let measured = cell.measure(runs.unwrap_or(cell.runs), seed);
        progress(
            done.fetch_add(1, Ordering::Relaxed) + 1,
            cells.len(),
            &measured,
        );
        *super::lock(&slots[index]) = Some(measured);
    };
    match threads {
        0 | 1 => work(),
        threads => std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        }),
    }
    slots
        .into_iter()
        .map(|slot| {
            let measured = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            measured.expect("every cell measured")
        })
        .collect()
}

/// The measurements as Markdown: false rejections (with each check's verdict), then power;
/// a section without measurements is left out.
pub fn render(measured: &[Measured]) -> String {
    let mut out = String::new();
    let (power, healthy): (Vec<&Measured>, Vec<&Measured>) =
        measured.iter().partition(|m| m.claim == Claim::Power);
    if !healthy.is_empty() {
        out.push_str(
            "False rejections of healthy releases:\n\n\
             | test | releases | α | runs | rejected | rate | allowed | limit | |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
    }
    for m in healthy {
        let (allowed, limit, verdict) = match (m.claim, m.limit) {
            (Claim::AtMost { allowed }, Some(limit)) => (
                format!("{:.2} α", allowed / m.alpha),
                format!("{:.3}%", limit * 100.0),
                if m.exceeds { "EXCEEDS" } else { "ok" },
            ),
            _ => ("–".into(), "–".into(), "contrast"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.3}% ({:.2} α) | {allowed} | {limit} | {verdict} |",
            m.test,
            m.case,
            percent(m.alpha),
            m.runs,
            m.rejected,
            m.rate * 100.0,
            m.rate / m.alpha,
        );
    }
    if !power.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "Power on regressions:\n\n| test | releases | α | runs | rejected |\n| --- | --- | --- | --- | --- |\n",
        );
    }
    for m in power {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.4} |",
            m.test,
            m.case,
            percent(m.alpha),
            m.runs,
            m.rate
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_above_its_limit_fails_the_check_and_contrasts_never_do() {
        let always = |claim| Cell::new("always", "rejects", 0.01, claim, 10, |_: &mut Rng| true);
        let checked = always(at_most(0.01)).measure(50, 1);
        assert!(checked.exceeds && checked.rate == 1.0, "{checked:?}");
        assert!(render(&[checked]).contains("| EXCEEDS |"));
        let contrast = always(Claim::Contrast).measure(50, 1);
        assert!(
            !contrast.exceeds && contrast.limit.is_none(),
            "{contrast:?}"
        );
        let never = Cell::new(
            "never",
            "rejects",
            0.01,
            at_most(0.01),
            10,
            |_: &mut Rng| false,
        );
        assert!(!never.measure(50, 1).exceeds);
    }

    #[test]
    fn every_cell_draws_its_own_stream() {
        let cells = cells();
        let mut names: Vec<(String, u64)> = cells
            .iter()
            .map(|c| (format!("{}, {}", c.test, c.case), c.alpha.to_bits()))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cells.len());
    }
}
