//! One-dimensional searches behind the e-processes' numbers: the smallest rejected ratio by
//! bisection (upper bounds), and minima over the reference rate by golden section.

use serde::{Deserialize, Serialize};

/// Search range for upper bounds (ratios).
const BOUND_LOWEST: f64 = 1e-6;
const BOUND_HIGHEST: f64 = 1e6;
/// Upper bounds are found to within this relative width (in ln), about 25 bisection steps.
const BOUND_PRECISION: f64 = 1e-6;

/// `n` points from `lo` to `hi` (both included), evenly spaced in ln.
pub(super) fn log_spaced(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    let step = (hi / lo).ln() / (n.max(2) - 1) as f64;
    (0..n).map(move |i| lo * (step * i as f64).exp())
}

/// Where `lowest_rejected` stopped: below the range, at a point of its bisection's lattice
/// (the bisection's last `hi`, by index), or above the range. A search started from the
/// previous tick's answer (`lowest_rejected_near`) needs a few evaluations instead of the
/// bisection's 27.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum BoundAt {
    Lowest,
    Lattice(u32),
    Unbounded,
}

impl BoundAt {
    /// The lattice point nearest `value`, as a starting point for `lowest_rejected_near`
    /// where no earlier answer is known (`None` for a value that is not positive and finite).
    pub(super) fn near(value: f64) -> Option<BoundAt> {
        if !(value.is_finite() && value > 0.0) {
            return None;
        }
        let (lo, hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
        let top = f64::from(1u32 << lattice_depth());
        let share = ((value.ln() - lo) / (hi - lo)).clamp(0.0, 1.0);
        Some(BoundAt::Lattice((share * top).round() as u32))
    }

    /// The bound this answer stands for.
    pub(super) fn value(self) -> f64 {
        match self {
            BoundAt::Lowest => BOUND_LOWEST,
            BoundAt::Lattice(m) => lattice_point(m).exp(),
            BoundAt::Unbounded => f64::INFINITY,
        }
    }
}

/// An upper bound kept between ticks (an e-process stores it when its evidence changes, and
/// its summaries read it): where the search stopped, and the level it searched for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredBound {
    pub(super) level: f64,
    pub(super) at: BoundAt,
}

impl StoredBound {
    /// The bound, if it was found for `level` (to JSON's last digit: a float read back from
    /// JSON may be an ulp off).
    pub(super) fn at_level(&self, level: f64) -> Option<f64> {
        ((self.level - level).abs() <= 1e-12 * level.abs()).then(|| self.at.value())
    }
}

/// Halvings of [ln 1e-6, ln 1e6] until an interval is within `BOUND_PRECISION` (25).
fn lattice_depth() -> u32 {
    let (lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
    let mut depth = 0;
    while hi - lo > BOUND_PRECISION {
        hi = 0.5 * (lo + hi);
        depth += 1;
    }
    depth
}

/// The `m`-th of the `2^depth + 1` points the bisection in `lowest_rejected` can stop at, as
/// that bisection computes it (each the midpoint of the interval it halves, so the same
/// float whichever path reaches it).
fn lattice_point(m: u32) -> f64 {
    let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
    let (mut at_lo, mut at_hi) = (0u32, 1u32 << lattice_depth());
    if m == at_lo {
        return lo;
    }
    while at_hi - at_lo > 1 && m < at_hi {
        let (mid, at_mid) = (0.5 * (lo + hi), at_lo + (at_hi - at_lo) / 2);
        if m == at_mid {
            return mid;
        }
        if m < at_mid {
            (hi, at_hi) = (mid, at_mid);
        } else {
            (lo, at_lo) = (mid, at_mid);
        }
    }
    hi
}

/// `lowest_rejected`, where it stops, started from `hint` (where it stopped for nearly the
/// same evidence): the same answer to the bit wherever `log_e` is increasing, as it is (the
/// smallest lattice point that rejects is what the bisection finds). Secant steps from the
/// hint bracket the crossing, false position with a bisection fallback narrows the bracket
/// to adjacent points: about five evaluations where the bisection takes 27.
pub(super) fn lowest_rejected_near(
    log_e: impl Fn(f64) -> f64,
    level: f64,
    hint: Option<BoundAt>,
) -> BoundAt {
    lowest_rejected_near_unless_below(|tol, _| log_e(tol), level, hint)
}

/// `lowest_rejected_near` for a `log_e(tolerance, stop_below)` that may return any value
/// below `stop_below` once its own is certain to be there (`minimise_mixtures`):
/// the same points evaluated and the same answer, to the bit, as with its exact values. The
/// search reads a point's value only to place the next one; it asks for the exact value of a
/// point not rejected (one of them costs a full minimisation) only where it reads it, and
/// otherwise only whether it rejects (a few evaluations of the minimisation far below the
/// level).
pub(super) fn lowest_rejected_near_unless_below(
    log_e: impl Fn(f64, f64) -> f64,
    level: f64,
    hint: Option<BoundAt>,
) -> BoundAt {
    let Some(BoundAt::Lattice(hint)) = hint else {
        return lowest_rejected_unless_below(log_e, level);
    };
    let top = 1u32 << lattice_depth();
    // How far past the level point `m` is (≥ 0: rejected). The range's ends are judged at
    // 1e-6 and 1e6 themselves, as the bisection judges them; within it, monotonicity makes
    // any rejected point a proof that 1e6 is rejected, and any point not rejected one that
    // 1e-6 is not. `exact` gives that; `sign` may return any negative value where it is
    // negative, which `exact_excess` replaces where it is read.
    let exact = |m: u32| log_e(lattice_point(m).exp(), f64::NEG_INFINITY) - level;
    let sign = |m: u32| log_e(lattice_point(m).exp(), level) - level;
    // A point and its excess, and whether that excess is exact (a rejected point's always is).
    let exact_excess = |(m, excess, is_exact): (u32, f64, bool)| {
        if is_exact {
            excess
        } else {
            exact(m)
        }
    };
    let start = hint.clamp(1, top - 1);
    let mut a = (start, exact(start), true);
    // The crossing is below `a` when `a` rejects. Step away by secants through the last two
    // points (at least doubling each step) until the sign changes or a range end is passed.
    // Stepping up, a point not rejected is read by the next secant, so it is computed exactly;
    // stepping down, the first point not rejected ends the stepping.
    let down = a.1 >= 0.0;
    let mut step = 1u32;
    let mut b;
    loop {
        let m = if down {
            a.0.saturating_sub(step)
        } else {
            a.0.saturating_add(step).min(top)
        };
        if m == 0 {
            if log_e(BOUND_LOWEST, level) >= level {
                return BoundAt::Lowest;
            }
            b = (0, f64::NEG_INFINITY, true);
            break;
        }
        if m == top {
            if log_e(BOUND_HIGHEST, level) < level {
                return BoundAt::Unbounded;
            }
            b = (top, f64::INFINITY, true);
            break;
        }
        b = if down {
            let excess = sign(m);
            (m, excess, excess >= 0.0)
        } else {
            (m, exact(m), true)
        };
        if (b.1 >= 0.0) != down {
            break;
        }
        // Same side: the secant's guess for the remaining distance, at least twice the step.
        let slope = (b.1 - a.1) / (f64::from(b.0) - f64::from(a.0));
        let guess = (b.1 / slope).abs().ceil();
        let next = if guess.is_finite() {
            guess.min(f64::from(top)) as u32
        } else {
            0
        };
        step = next.max(step.saturating_mul(2)).max(1);
        a = b;
    }
    let (mut lo, mut hi) = if down { (b, a) } else { (a, b) };
    // False position on the bracket, then the guess's neighbour towards the crossing (the
    // guess is often off by at most one). `hi` rejects, so its excess is exact; `lo`'s is
    // made exact where false position reads it.
    // Illinois: where one end stays while the other moves twice running, its excess counts
    // half as much in the next interpolation (then a quarter, ...), so that false position
    // does not creep towards the crossing from one side (the mirror's e-values are steeply
    // concave far below it). A bisection wherever two steps did not halve the bracket.
    let (mut lo_weight, mut hi_weight) = (1.0, 1.0);
    let mut last_moved = None;
    let mut widths = [u32::MAX; 2];
    while hi.0 - lo.0 > 1 {
        let width = hi.0 - lo.0;
        let bisect = width > widths[1] / 2;
        widths = [width, widths[0]];
        let (lo_was, hi_was) = (lo, hi);
        let m = if bisect || {
            lo = (lo.0, exact_excess(lo), true);
            !lo.1.is_finite() || !hi.1.is_finite()
        } {
            lo.0 + width / 2
        } else {
            let (lo_excess, hi_excess) = (lo_weight * lo.1, hi_weight * hi.1);
            let share = -lo_excess / (hi_excess - lo_excess);
            let offset = (share * f64::from(width)).round();
            let offset = if offset.is_finite() {
                offset as u32
            } else {
                width / 2
            };
            lo.0 + offset.clamp(1, width - 1)
        };
        let excess = sign(m);
        let point = (m, excess, excess >= 0.0);
        // The guess's neighbour towards the crossing, where the crossing may be within one
        // point of it (not after a bisection): above a point not rejected (whose excess is
        // not read); below a rejected one where the secant through it and the previous `hi`
        // (both exact) puts the crossing within one point.
        let neighbour = if point.1 >= 0.0 {
            hi = point;
            let slope = (hi_was.1 - point.1) / f64::from(hi_was.0 - m);
            // Not above the slope, or either is NaN.
            let within_one = point.1.partial_cmp(&slope) != Some(std::cmp::Ordering::Greater);
            (!bisect && within_one).then(|| m - 1)
        } else {
            lo = point;
            (!bisect).then_some(m + 1)
        };
        if let Some(neighbour) = neighbour.filter(|&n| lo.0 < n && n < hi.0) {
            let excess = sign(neighbour);
            let point = (neighbour, excess, excess >= 0.0);
            if point.1 >= 0.0 {
                hi = point;
            } else {
                lo = point;
            }
        }
        let moved = match (lo.0 != lo_was.0, hi.0 != hi_was.0) {
            (true, false) => Some(false),
            (false, true) => Some(true),
            _ => None,
        };
        match moved {
            Some(true) => {
                hi_weight = 1.0;
                if last_moved == moved {
                    lo_weight *= 0.5;
                }
            }
            Some(false) => {
                lo_weight = 1.0;
                if last_moved == moved {
                    hi_weight *= 0.5;
                }
            }
            None => (lo_weight, hi_weight) = (1.0, 1.0),
        }
        last_moved = moved;
    }
    BoundAt::Lattice(hi.0)
}

/// The smallest tolerance in [1e-6, 1e6] at which `log_e` (increasing) reaches `level`,
/// rounded up (conservative), as where the bisection stopped (`BoundAt::value`); unbounded
/// when even 1e6 is not rejected. (The searches call `lowest_rejected_unless_below`; tests
/// compare them with this.)
#[cfg(test)]
pub(super) fn lowest_rejected(log_e: impl Fn(f64) -> f64, level: f64) -> BoundAt {
    lowest_rejected_unless_below(|tol, _| log_e(tol), level)
}

/// `lowest_rejected` for a `log_e(tolerance, stop_below)` as `lowest_rejected_near_unless_below`
/// takes it: the bisection reads only whether each point rejects, so the same answer.
fn lowest_rejected_unless_below(log_e: impl Fn(f64, f64) -> f64, level: f64) -> BoundAt {
    if log_e(BOUND_HIGHEST, level) < level {
        return BoundAt::Unbounded;
    }
    let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
    if log_e(BOUND_LOWEST, level) >= level {
        return BoundAt::Lowest;
    }
    // Each step costs a minimisation in the bake's bound, so stop at a relative width of
    // `BOUND_PRECISION`; `hi` is always rejected, so the bound errs high. `at` is `hi`'s
    // index among the lattice's points (`lattice_point`).
    let mut at = 1u32 << lattice_depth();
    let mut step = at;
    while hi - lo > BOUND_PRECISION {
        let mid = 0.5 * (lo + hi);
        step /= 2;
        if log_e(mid.exp(), level) >= level {
            hi = mid;
            at -= step;
        } else {
            lo = mid;
        }
    }
    BoundAt::Lattice(at)
}

/// Minimum on [0, hi] of a function that is convex but for the burst guard's kinks: the
/// best of 0 and 97 log-spaced points down to `hi`·1e-8, refined by golden section between
/// the best point's neighbours. (Reporting a point above the true minimum would overstate the
/// e-value; the grid keeps a kink from trapping the search far from it.)
pub(super) fn minimise_on_grid(f: impl Fn(f64) -> f64, hi: f64) -> f64 {
    let grid: Vec<f64> = std::iter::once(0.0)
        .chain(log_spaced(hi * 1e-8, hi, 97))
        .collect();
    let values: Vec<f64> = grid.iter().map(|&r| f(r)).collect();
    let best = (0..grid.len())
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    let lo = grid[best.saturating_sub(1)];
    let up = grid[(best + 1).min(grid.len() - 1)];
    golden_section(&f, lo, up).min(values[best])
}

/// Minimum over r in [0, `hi`] of Σ over `mixtures` of ln Σᵢ exp(aᵢ + bᵢ·r), each mixture
/// given as its (aᵢ, bᵢ) pairs (the bake's e-values as functions of the reference rate), or
/// any value below `stop_below` once one is found (`f64::NEG_INFINITY`: exact). Each mixture is
/// a log-sum-exp of affine functions, so the sum is convex, and its slope and curvature come
/// with its value from the same exponentials: Newton's method on the slope, kept inside the
/// bracket where the slope changes sign (a bisection where a step would leave it), from
/// `start`, reaches the minimum in a handful of evaluations where a golden section takes about
/// 55 (`MIXTURE_PRECISION` says where it stops). Every value it returns is the sum at a
/// point it evaluated, so never below the minimum.
pub(super) fn minimise_mixtures(
    mixtures: &[&[(f64, f64)]],
    hi: f64,
    start: f64,
    stop_below: f64,
) -> f64 {
    convex_newton(|r| mixtures_at(mixtures, r), hi, start, stop_below)
}

/// `minimise_mixtures` for any convex function given with its slope and curvature (`at`).
fn convex_newton(at: impl Fn(f64) -> (f64, f64, f64), hi: f64, start: f64, stop_below: f64) -> f64 {
    let (low_end, high_end) = (at(0.0), at(hi));
    let mut best = low_end.0.min(high_end.0);
    if best < stop_below {
        return best;
    }
    // Convex: a slope up at 0 or down at `hi` puts the minimum there.
    if low_end.1 >= 0.0 {
        return low_end.0;
    }
    if high_end.1 <= 0.0 {
        return high_end.0;
    }
    // The bracket where the slope changes sign, with the slopes at its ends.
    let (mut lo, mut up) = ((0.0, low_end.1), (hi, high_end.1));
    // Illinois: an end that stays while the other moves twice running has its slope count
    // half as much in the next false position (then a quarter, ...).
    let (mut weights, mut last_moved_up) = ((1.0, 1.0), None);
    let mut r = if start > 0.0 && start < hi {
        start
    } else {
        hi / 2.0
    };
    for _ in 0..200 {
        let (value, slope, curvature) = at(r);
        best = best.min(value);
        if best < stop_below || slope == 0.0 {
            break;
        }
        let newton = r - slope / curvature;
        // Converged: the value here is above the minimum by about curvature·step²/2, far
        // below its own rounding.
        if curvature > 0.0 && (newton - r).abs() <= MIXTURE_PRECISION * r {
            break;
        }
        let moved_up = slope > 0.0;
        if moved_up {
            up = (r, slope);
            weights = (
                if last_moved_up == Some(true) {
                    weights.0 / 2.0
                } else {
                    1.0
                },
                1.0,
            );
        } else {
            lo = (r, slope);
            weights = (
                1.0,
                if last_moved_up == Some(false) {
                    weights.1 / 2.0
                } else {
                    1.0
                },
            );
        }
        last_moved_up = Some(moved_up);
        if up.0 - lo.0 <= MIXTURE_PRECISION * up.0 {
            break;
        }
        // Far from the minimum the mixtures are nearly piecewise affine, with little
        // curvature to go by: where Newton's step leaves the bracket, false position on the
        // slope (Illinois) within a bracket narrow in ln r, halving it in ln r (from 0:
        // dividing by 16) where it is wide.
        r = if curvature > 0.0 && lo.0 < newton && newton < up.0 {
            newton
        } else if lo.0 == 0.0 {
            up.0 / 16.0
        } else if up.0 > 4.0 * lo.0 {
            (lo.0 * up.0).sqrt()
        } else {
            let (lo_slope, up_slope) = (weights.0 * lo.1, weights.1 * up.1);
            let share = -lo_slope / (up_slope - lo_slope);
            let guess = lo.0 + share * (up.0 - lo.0);
            if lo.0 < guess && guess < up.0 {
                guess
            } else {
                0.5 * (lo.0 + up.0)
            }
        };
    }
    best
}

/// `minimise_mixtures` stops once Newton's step, or the bracket, is this share of r: the
/// value is then above the minimum by about (curvature·r²)·10⁻²⁰/2, where curvature·r² is
/// about the events counted (10⁻¹³ at 10⁷ events); the slope's rounding keeps steps from
/// getting much shorter.
const MIXTURE_PRECISION: f64 = 1e-10;

/// The sum `minimise_mixtures` minimises at r, with its first and second derivatives in r.
fn mixtures_at(mixtures: &[&[(f64, f64)]], r: f64) -> (f64, f64, f64) {
    let (mut value, mut slope, mut curvature) = (0.0, 0.0, 0.0);
    for terms in mixtures {
        // Exponents relative to the largest term, slopes to that term's: the weighted
        // variance of the slopes then loses no digits to cancellation.
        let (top, top_slope) =
            terms
                .iter()
                .map(|&(a, b)| (a + b * r, b))
                .fold(
                    (f64::NEG_INFINITY, 0.0),
                    |m, t| if t.0 > m.0 { t } else { m },
                );
        let (mut weight, mut moment1, mut moment2) = (0.0, 0.0, 0.0);
        for &(a, b) in terms.iter() {
            let w = (a + b * r - top).exp();
            let d = b - top_slope;
            weight += w;
            moment1 += w * d;
            moment2 += w * d * d;
        }
        let mean = moment1 / weight;
        value += top + weight.ln();
        slope += top_slope + mean;
        curvature += (moment2 / weight - mean * mean).max(0.0);
    }
    (value, slope, curvature)
}

/// Golden-section searches stop when their bracket is this share of its position.
const GOLDEN_PRECISION: f64 = 1e-11;

/// Minimum of a convex function on [0, hi] by golden-section search (the tests' reference
/// for `minimise_mixtures`).
#[cfg(test)]
pub(super) fn minimise_convex(f: impl Fn(f64) -> f64, hi: f64) -> f64 {
    golden_section(&f, 0.0, hi)
}

/// Golden-section search for the minimum of a unimodal function on [lo, hi] (ends included).
fn golden_section(f: &impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    const INV_PHI: f64 = 0.618_033_988_749_895;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - INV_PHI * (b - a);
    let mut d = a + INV_PHI * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    // Until the bracket is 10⁻¹¹ of where it sits, or 80 steps (where the minimum sits at
    // 0). A minimum found too high overstates an e-value, by about the bracket's square
    // times the counts: a helper measured up to 3·10⁻⁶ in ln at a width of 10⁻⁹ with
    // 6.6·10⁸ reference events and 5·10⁻¹⁰ at 10⁷, so about 10⁻¹³ at 10⁷ here.
    for _ in 0..80 {
        if b - a <= GOLDEN_PRECISION * a.abs().max(b.abs()) {
            break;
        }
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - INV_PHI * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + INV_PHI * (b - a);
            fd = f(d);
        }
    }
    [f(lo), fc, fd, f(hi)]
        .into_iter()
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// The bisection as it was before it reported where it stopped.
    fn bisection(log_e: impl Fn(f64) -> f64, level: f64) -> f64 {
        if log_e(BOUND_HIGHEST) < level {
            return f64::INFINITY;
        }
        let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
        if log_e(BOUND_LOWEST) >= level {
            return BOUND_LOWEST;
        }
        while hi - lo > BOUND_PRECISION {
            let mid = 0.5 * (lo + hi);
            if log_e(mid.exp()) >= level {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi.exp()
    }

    /// Increasing log e-values of the mirror test's shape, crossing `level` at `at`.
    fn crossing_at(at: f64, slope: f64) -> impl Fn(f64) -> f64 {
        move |t: f64| slope * (t / at).ln()
    }

    #[test]
    fn a_search_from_a_nearby_answer_stops_where_the_bisection_does_bit_for_bit() {
        let crossings = [
            1e-7,
            1e-6,
            3e-6,
            0.2,
            0.999_999_7,
            1.0,
            1.37,
            2.5,
            40.0,
            9.9e5,
            2e6,
        ];
        for &at in &crossings {
            for slope in [0.01, 1.0, 250.0] {
                let log_e = crossing_at(at, slope);
                let from_scratch = lowest_rejected(&log_e, 0.0);
                assert_eq!(
                    from_scratch.value().to_bits(),
                    bisection(&log_e, 0.0).to_bits(),
                    "crossing at {at}"
                );
                let hints = [
                    None,
                    Some(BoundAt::Lowest),
                    Some(BoundAt::Unbounded),
                    Some(BoundAt::Lattice(0)),
                    Some(BoundAt::Lattice(1)),
                    Some(BoundAt::Lattice(u32::MAX)),
                    Some(lowest_rejected(crossing_at(at * 1.000_01, slope), 0.0)),
                    Some(lowest_rejected(crossing_at(at / 1.3, slope), 0.0)),
                    Some(lowest_rejected(crossing_at(0.5, slope), 0.0)),
                ];
                for hint in hints {
                    let evaluations = Cell::new(0);
                    let counted = |t: f64| {
                        evaluations.set(evaluations.get() + 1);
                        log_e(t)
                    };
                    let near = lowest_rejected_near(counted, 0.0, hint);
                    assert_eq!(near, from_scratch, "crossing at {at}, hint {hint:?}");
                    if hint == Some(from_scratch) {
                        assert!(evaluations.get() <= 4, "{} evaluations", evaluations.get());
                    }
                    if hint
                        .is_some_and(|h| matches!(h, BoundAt::Lattice(m) if m > 1 && m < u32::MAX))
                        && slope >= 1.0
                        && matches!(from_scratch, BoundAt::Lattice(_))
                    {
                        assert!(
                            evaluations.get() <= 8,
                            "{} evaluations from {hint:?}",
                            evaluations.get()
                        );
                    }
                }
            }
        }
    }

    /// A bake mixture, a reference mixture (each as (intercept, slope) pairs), r's cap and the
    /// reference's rate.
    type MixtureCase = (Vec<(f64, f64)>, Vec<(f64, f64)>, f64, f64);

    /// Mixtures of the bake's shapes: a bake mixture against a reference mixture, with counts
    /// from a handful of events to billions of requests, and minima inside and at both ends.
    fn mixture_cases() -> Vec<MixtureCase> {
        let mut cases = Vec::new();
        for (bad, total) in [(0.0, 50.0), (3.0, 600.0), (40.0, 1e5), (2e4, 6e8)] {
            for (reference_bad, reference_total) in [(1.0, 1e3), (8.0, 8.4e3), (5e3, 2e7)] {
                for tol in [1e-3, 0.7, 1.0, 4.0, 3e3] {
                    let bake: Vec<(f64, f64)> = [1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]
                        .iter()
                        .map(|d: &f64| {
                            let m = 1.0 / d;
                            (-(8f64.ln()) + bad * m.ln(), (1.0 - m) * tol * total)
                        })
                        .collect();
                    let reference: Vec<(f64, f64)> = [1.05, 1.2, 1.5, 2.0, 4.0, 10.0]
                        .iter()
                        .map(|&k: &f64| {
                            (
                                -(6f64.ln()) + reference_bad * k.ln(),
                                (1.0 - k) * reference_total,
                            )
                        })
                        .collect();
                    let cap = (10.0 * reference_bad / reference_total).max(1.0);
                    cases.push((bake, reference, cap, reference_bad / reference_total));
                }
            }
        }
        cases
    }

    #[test]
    fn newtons_minimum_of_a_mixture_is_the_golden_sections_or_below_it() {
        for (bake, reference, cap, _) in mixture_cases() {
            let f = |r: f64| mixtures_at(&[&bake, &reference], r).0;
            let golden = minimise_convex(f, cap);
            for start in [0.0, 1e-9, 1e-3, 0.5 * cap, 2.0 * cap] {
                let newton = minimise_mixtures(&[&bake, &reference], cap, start, f64::NEG_INFINITY);
                // Golden section returns a point's value too, within its bracket of the
                // minimum: never much below Newton's, and Newton's no further above it than
                // rounding at that size.
                let slack = 1e-12 * golden.abs().max(1.0);
                assert!(
                    newton <= golden + slack,
                    "{newton} vs {golden} from {start}"
                );
                assert!(
                    newton >= golden - 1e-9 * golden.abs().max(1.0),
                    "{newton} vs {golden}"
                );
            }
        }
    }

    #[test]
    fn newton_finds_a_mixtures_minimum_inside_its_range_in_a_few_evaluations() {
        // From near the minimum (the bake starts at the reference's rate) or far from it; the
        // cases whose minimum is at an end take two (the ends' slopes) and are left out.
        for far in [false, true] {
            let mut counts = Vec::new();
            for (bake, reference, cap, rate) in mixture_cases() {
                let slope = |r: f64| mixtures_at(&[&bake, &reference], r).1;
                let inside = slope(0.0) < 0.0 && slope(cap) > 0.0;
                if !inside {
                    continue;
                }
                let evaluations = Cell::new(0);
                let at = |r: f64| {
                    evaluations.set(evaluations.get() + 1);
                    mixtures_at(&[&bake, &reference], r)
                };
                let start = if far { 0.5 * cap } else { rate };
                convex_newton(at, cap, start, f64::NEG_INFINITY);
                counts.push(evaluations.get());
            }
            counts.sort_unstable();
            let (median, most) = (counts[counts.len() / 2], counts[counts.len() - 1]);
            // The golden section took about 55; here (near, far) the medians are 10 and 11,
            // the most 20 and 25 (cases with a near step in the slope).
            assert!(
                counts.len() >= 10 && median <= 12 && most <= 30,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn a_minimisation_stopped_below_the_level_compares_with_it_as_the_full_one_does() {
        for (bake, reference, cap, _) in mixture_cases() {
            let mixtures = [&bake[..], &reference[..]];
            let full = minimise_mixtures(&mixtures, cap, 1e-3, f64::NEG_INFINITY);
            for level in [
                full - 1e3,
                full - 1e-9,
                full,
                full + 1e-12,
                full + 0.5,
                full + 1e4,
            ] {
                let stopped = minimise_mixtures(&mixtures, cap, 1e-3, level);
                assert_eq!(
                    stopped >= level,
                    full >= level,
                    "level {level}, full {full}"
                );
                assert!(stopped >= full, "{stopped} below the minimum {full}");
                if full >= level {
                    assert_eq!(stopped.to_bits(), full.to_bits());
                }
            }
        }
    }

    #[test]
    fn a_mixtures_slope_and_curvature_are_its_values_differences() {
        for (bake, reference, cap, _) in mixture_cases() {
            for r in [1e-7 * cap, 1e-3 * cap, 0.3 * cap] {
                let at = |r: f64| mixtures_at(&[&bake, &reference], r);
                let (value, slope, curvature) = at(r);
                let h = 1e-5 * r;
                let (below, above) = (at(r - h), at(r + h));
                let numeric_slope = (above.0 - below.0) / (2.0 * h);
                let numeric_curvature = (above.1 - below.1) / (2.0 * h);
                let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-4 * scale;
                assert!(value.is_finite());
                assert!(
                    close(
                        slope,
                        numeric_slope,
                        slope.abs().max(numeric_slope.abs()) + value.abs() / r
                    ),
                    "slope {slope} vs {numeric_slope} at {r}"
                );
                assert!(
                    close(
                        curvature,
                        numeric_curvature,
                        curvature.abs().max(numeric_curvature.abs()) + slope.abs() / r
                    ),
                    "curvature {curvature} vs {numeric_curvature} at {r}"
                );
            }
        }
    }

    #[test]
    fn a_search_told_only_which_points_reject_where_it_can_stops_where_the_exact_one_does() {
        // Below the level, `vague` answers anything below it unless asked for the exact value,
        // as a stopped minimisation does; the search must place its points as with exact values.
        for &at in &[1e-6, 0.2, 1.0, 1.37, 40.0, 9.9e5] {
            for slope in [0.01, 1.0, 250.0] {
                // Concave in the lattice's index, as the bake's mirror e-values are.
                let log_e = move |t: f64| slope * ((t / at).ln() + 1.0 - (at / t).powf(0.5));
                let exact_points = std::cell::RefCell::new(Vec::new());
                let vague_points = std::cell::RefCell::new(Vec::new());
                let exact = |t: f64| {
                    exact_points.borrow_mut().push(t.to_bits());
                    log_e(t)
                };
                let vague = |t: f64, stop_below: f64| {
                    vague_points.borrow_mut().push(t.to_bits());
                    let v = log_e(t);
                    if v < stop_below {
                        return stop_below - 1.0 - 1e3 * (stop_below - v).sqrt();
                    }
                    v
                };
                // The points asked, in the order first asked.
                let first_asked = |points: &[u64]| {
                    let mut seen = Vec::new();
                    for p in points {
                        if !seen.contains(p) {
                            seen.push(*p);
                        }
                    }
                    seen
                };
                let hints = [
                    None,
                    Some(lowest_rejected(crossing_at(at * 1.000_01, slope), 0.0)),
                    Some(lowest_rejected(crossing_at(at / 1.3, slope), 0.0)),
                    Some(lowest_rejected(crossing_at(at * 3.0, slope), 0.0)),
                    Some(lowest_rejected(crossing_at(0.5, slope), 0.0)),
                ];
                for hint in hints {
                    exact_points.borrow_mut().clear();
                    vague_points.borrow_mut().clear();
                    let with_exact = lowest_rejected_near(exact, 0.0, hint);
                    let told_less = lowest_rejected_near_unless_below(vague, 0.0, hint);
                    assert_eq!(told_less, with_exact, "crossing at {at}, hint {hint:?}");
                    assert_eq!(
                        first_asked(&vague_points.borrow()),
                        first_asked(&exact_points.borrow()),
                        "crossing at {at}, hint {hint:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_lattice_point_is_the_float_the_bisection_computes_there() {
        // Walk the bisection to a few targets and compare each `hi` it holds.
        for target in [1e-6, 0.0123, 1.0, 1.5, 77.0, 1e6] {
            let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
            let mut at = 1u32 << lattice_depth();
            let mut step = at;
            assert_eq!(lattice_point(at).to_bits(), hi.to_bits());
            while hi - lo > BOUND_PRECISION {
                let mid = 0.5 * (lo + hi);
                step /= 2;
                if mid >= f64::ln(target) {
                    hi = mid;
                    at -= step;
                    assert_eq!(lattice_point(at).to_bits(), hi.to_bits(), "point {at}");
                } else {
                    lo = mid;
                    assert_eq!(lattice_point(at - step).to_bits(), lo.to_bits());
                }
            }
            assert_eq!(step, 1, "the bisection ends on the lattice's finest step");
        }
        assert_eq!(lattice_depth(), 25);
    }
}
