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
/// below `stop_below` once its own is certain to be there (`convex_minimum_unless_below`):
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
    golden_section(&f, lo, up, f64::NEG_INFINITY).min(values[best])
}

/// Golden-section searches stop when their bracket is this share of its position.
const GOLDEN_PRECISION: f64 = 1e-11;

/// Minimum of a convex function on [0, hi] by golden-section search.
pub(super) fn minimise_convex(f: impl Fn(f64) -> f64, hi: f64) -> f64 {
    golden_section(&f, 0.0, hi, f64::NEG_INFINITY)
}

/// `minimise_convex(f, hi)` where that is at least `level`, else some value below `level`,
/// stopping as soon as it is certain: the golden section keeps the better of its two inner
/// points at every step, so once either is below `level` the minimum it would return is
/// too. The same comparisons with `level` as that minimum's, for an `f` that returns no NaN
/// (a NaN point could displace the better one); a minimum far below the level takes a few
/// evaluations instead of about 55.
pub(super) fn convex_minimum_unless_below(f: impl Fn(f64) -> f64, hi: f64, level: f64) -> f64 {
    golden_section(&f, 0.0, hi, level)
}

/// Golden-section search for the minimum of a unimodal function on [lo, hi] (ends included),
/// returning early, with a value below `stop_below`, once one of its inner points is there
/// (`f64::NEG_INFINITY`: never).
fn golden_section(f: &impl Fn(f64) -> f64, lo: f64, hi: f64, stop_below: f64) -> f64 {
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
        if fc.min(fd) < stop_below {
            return fc.min(fd);
        }
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

    #[test]
    fn a_minimisation_stopped_below_the_level_compares_with_it_as_the_full_one_does() {
        // Convex functions of the e-values' shape (a mixture against a penalty), with minima
        // far below, just below, at and above each level.
        for (scale, at) in [(1.0, 0.3), (40.0, 1e-4), (5e3, 2.0), (1e-3, 7.0)] {
            let f = move |r: f64| scale * ((r / at).ln().powi(2) + 0.1 * r) - 3.0;
            let full = minimise_convex(f, 10.0);
            for level in [
                full - 1e3,
                full - 1e-9,
                full,
                full + 1e-12,
                full + 0.5,
                full + 1e4,
            ] {
                let stopped = convex_minimum_unless_below(f, 10.0, level);
                assert_eq!(
                    stopped >= level,
                    full >= level,
                    "scale {scale}, level {level}"
                );
                if full >= level {
                    assert_eq!(stopped.to_bits(), full.to_bits());
                }
            }
            let exact = convex_minimum_unless_below(f, 10.0, f64::NEG_INFINITY);
            assert_eq!(exact.to_bits(), full.to_bits());
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
