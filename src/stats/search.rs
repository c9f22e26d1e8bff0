//! One-dimensional searches behind the e-processes' numbers: the smallest rejected ratio by
//! bisection (upper bounds), and minima over the reference rate by golden section.

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

/// The smallest tolerance in [1e-6, 1e6] at which `log_e` (increasing) reaches `level`,
/// rounded up (conservative); infinity when even 1e6 is not rejected.
pub(super) fn lowest_rejected(log_e: impl Fn(f64) -> f64, level: f64) -> f64 {
    if log_e(BOUND_HIGHEST) < level {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (BOUND_LOWEST.ln(), BOUND_HIGHEST.ln());
    if log_e(BOUND_LOWEST) >= level {
        return BOUND_LOWEST;
    }
    // Each step costs a minimisation in the bake's bound, so stop at a relative width of
    // `BOUND_PRECISION`; `hi` is always rejected, so the bound errs high.
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

/// Golden-section searches stop when their bracket is this share of its position.
const GOLDEN_PRECISION: f64 = 1e-11;

/// Minimum of a convex function on [0, hi] by golden-section search.
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
