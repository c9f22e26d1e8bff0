//! What bounds the split e-process's power, beside it on the same seeded splits: a randomized
//! final look, the GLR union any likelihood-ratio mixture stays under, a clairvoyant
//! e-process and the fixed-horizon oracle; and how the exposure rule's promise compares with
//! the power it claims (docs/statistics.md, "Issue 3's targets" and "Exposure rule").

use super::models::{self, Prior, BASE_RATE, SPLIT};
use crate::sim::rng::{hash_name, Rng};
use crate::stats::{event_log_lrs, PairCounts, RatioTest};
use std::fmt::Write;

/// The e-processes' α here.
const ALPHA: f64 = 0.01;
/// Seeded splits a cell of `render_limits` and of `render_exposure` when `--runs` is not
/// given.
pub const LIMITS_RUNS: usize = 4_000;
pub const EXPOSURE_RUNS: usize = 2_000;

/// Log-LR of ratio `rho` against 1 over whole minutes (what every bound below is built on).
fn split_log_lr(minutes: &[PairCounts], rho: f64) -> f64 {
    minutes
        .iter()
        .filter_map(|m| m.new_share().map(|q| (m, event_log_lrs(rho, 1.0, q))))
        .map(|(m, (a, b))| m.new_bad * a + m.old_bad * b)
        .sum()
}

/// ln of the null probability of a minute's split of its bad events (integer counts).
fn log_null_probability(m: &PairCounts) -> f64 {
    let Some(q) = m.new_share() else { return 0.0 };
    let total = m.new_bad + m.old_bad;
    let log_choose: f64 = (0..m.new_bad as u64)
        .map(|i| ((total - i as f64) / (i as f64 + 1.0)).ln())
        .sum();
    log_choose + m.new_bad * q.ln() + m.old_bad * (1.0 - q).ln()
}

/// Reaches ln(1/α) at some minute, for a statistic computed on each prefix.
fn crosses(minutes: &[PairCounts], stat: impl Fn(&[PairCounts]) -> f64) -> bool {
    (1..=minutes.len()).any(|t| stat(&minutes[..t]) >= -ALPHA.ln())
}

/// The bounds behind "physically impossible" in docs/statistics.md, for the target cells,
/// over `runs` seeded splits each, as a Markdown table:
/// - oracle: fixed-horizon log-LR of the true ratio, critical value = simulated null 99th
///   percentile (it knows the base rate and the traffic, and looks once);
/// - GLR union: sup over ratios of Λ_t(ρ) ≥ 1/α at any minute, which every mixture of
///   likelihood ratios is below (Σ w_i Λ_i ≤ max_i Λ_i);
/// - clairvoyant: any e-process on the split of bad events given the per-minute totals obeys
///   M_t ≤ 1/P_null(observed split), so it cannot reject before P_null ≤ α;
/// - randomized final look (Ramdas & Manole): ours, plus rejecting at the end of the split
///   with probability α·M_T; valid, but a rollback decided by a coin.
pub fn render_limits(runs: usize, seed: u64) -> String {
    let mut out = String::from(
        "| cell | ours | randomized final look | GLR union (any LR mixture) | clairvoyant | oracle |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for (rps, ratio) in [(10.0, 5.0), (1.0, 20.0), (100.0, 2.0)] {
        let mut rng = Rng::derive(seed, &[hash_name("limits"), f64::to_bits(rps)]);
        let nulls: Vec<Vec<PairCounts>> = (0..runs)
            .map(|_| models::simulate_split(&mut rng, rps, 1.0))
            .collect();
        let mut null_llr: Vec<f64> = nulls.iter().map(|m| split_log_lr(m, ratio)).collect();
        null_llr.sort_by(f64::total_cmp);
        let critical = null_llr[runs * 99 / 100];
        let data: Vec<Vec<PairCounts>> = (0..runs)
            .map(|_| models::simulate_split(&mut rng, rps, ratio))
            .collect();
        let share = |hit: &dyn Fn(&[PairCounts]) -> f64| {
            data.iter().map(|m| hit(m)).sum::<f64>() / runs as f64
        };
        let oracle = share(&|m| f64::from(split_log_lr(m, ratio) > critical));
        let grid: Vec<f64> = (1..=200).map(|k| 1.04f64.powi(k)).collect();
        let glr = share(&|m| {
            f64::from(crosses(m, |p| {
                grid.iter()
                    .map(|&r| split_log_lr(p, r))
                    .fold(f64::MIN, f64::max)
            }))
        });
        let clairvoyant = share(&|m| {
            f64::from(crosses(m, |p| {
                -p.iter().map(log_null_probability).sum::<f64>()
            }))
        });
        let ours = share(&|m| f64::from(models::split_rejects(Prior::Gate.test(), m)));
        let randomized = share(&|m| {
            let mut test = Prior::Gate.test();
            m.iter().for_each(|x| test.observe(*x));
            if test.rejected() {
                1.0
            } else {
                (ALPHA * test.summary().e_value).min(1.0)
            }
        });
        let _ = writeln!(
            out,
            "| ×{ratio} at {rps} rps | {ours:.3} | {randomized:.3} | {glr:.3} | {clairvoyant:.3} | {oracle:.3} |"
        );
    }
    out
}

/// For healthy splits, over `runs` seeded splits at each traffic level: how often the
/// exposure rule (×5, 90%) holds at the end, and how often a ×5 regression at the same
/// traffic is caught; then the power and the requests still needed on expected counts at
/// 10 rps. Markdown.
pub fn render_exposure(runs: usize, seed: u64) -> String {
    let mut out = String::from(
        "| rps | exposure met (A/A, end of split) | ×5 caught by end of split |\n| --- | --- | --- |\n",
    );
    for rps in [10.0, 20.0, 30.0, 50.0, 100.0] {
        let mut rng = Rng::derive(seed, &[hash_name("exposure"), f64::to_bits(rps)]);
        let met = (0..runs)
            .filter(|_| {
                let mut test = Prior::Gate.test();
                models::simulate_split(&mut rng, rps, 1.0)
                    .into_iter()
                    .for_each(|m| test.observe(m));
                test.summary().exposure_met
            })
            .count() as f64
            / runs as f64;
        let caught = (0..runs)
            .filter(|_| {
                let minutes = models::simulate_split(&mut rng, rps, 5.0);
                models::split_rejects(Prior::Gate.test(), &minutes)
            })
            .count() as f64
            / runs as f64;
        let _ = writeln!(out, "| {rps} | {met:.3} | {caught:.3} |");
    }
    let mut test: RatioTest = Prior::Gate.test();
    for (share, minutes) in SPLIT {
        let (new_total, old_total) = (600.0 * share, 600.0 * (1.0 - share));
        let m = PairCounts {
            new_total,
            new_bad: new_total * BASE_RATE,
            old_total,
            old_bad: old_total * BASE_RATE,
        };
        (0..minutes).for_each(|_| test.observe(m));
    }
    let s = test.summary();
    let _ = writeln!(
        out,
        "\n10 rps, expected counts: power {:.3}, {} more new-version requests at 50%",
        test.exposure_power(),
        s.new_requests_needed
    );
    out
}
