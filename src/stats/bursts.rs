//! Burstiness of a count beyond Poisson, estimated from the old version's own minutes before
//! the rollout, and the variance inflation it implies for one minute's split. Pure and sync.
//! Method: docs/statistics.md, "Approaching the ceiling".

use super::PairCounts;
use serde::{Deserialize, Serialize};

/// Squared coefficient of variation of a per-minute rate, beyond Poisson noise.
///
/// Model: in minute m a version's count is Poisson with mean r·Rₘ·Uₘ, Rₘ its requests and
/// Uₘ a burst factor of mean 1 and variance c², so Var = μₘ + c²μₘ². Over the window,
/// r̂ = Σx/ΣR, μₘ = r̂Rₘ and ĉ² = Σdₘ/Σμₘ² with dₘ = (xₘ − μₘ)² − μₘ (moments; 0 when
/// negative). `c2_upper` adds two standard errors, the larger of the one under Poisson,
/// √Σ(μₘ + 2μₘ²)/Σμₘ², and the empirical one, √Σ(dₘ − ĉ²μₘ²)²/Σμₘ² (bursts make the
/// estimate noisier than Poisson counts would): a calm window still inflates a little, and a
/// bursty one is rarely underestimated.
///
/// Used for one minute of a split with E expected events (both versions), of which a share p
/// comes from the new version under the null, each version bursting independently with the
/// same c²: the new version's excess N − pT has variance (1 − p)²·pE(1 + c²pE) + p²·(1 −
/// p)E(1 + c²(1 − p)E) = p(1 − p)E·(1 + 2c²·p(1 − p)·E), the binomial's times `inflation`.
/// E comes from rates and requests (`BurstScale`), not from the minute's own count: a
/// weight that moved with the count would favour minutes where one version burst and bias
/// the sum.
/// Bursts shared by both versions cancel in the split but not in the window, so the window
/// overstates them: conservative there.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Burstiness {
    /// Minutes of the window with requests.
    pub minutes: u32,
    /// Mean events a minute over the window (per sample).
    pub mean_events: f64,
    /// Events per request over the window.
    pub rate: f64,
    /// The moment estimate of c² (≥ 0).
    pub c2: f64,
    /// `c2` plus two standard errors: what the inflation uses.
    pub c2_upper: f64,
    /// The same bound for sums over blocks of s consecutive minutes, s = 2..=`MAX_SPAN`
    /// (index s − 2; 0: too few blocks to say), never above `c2_upper` (see `c2_over`).
    pub spans: [f64; SPANS],
    /// Some span's estimate is well above 0 (`is_bursty_in_blocks`).
    pub bursty_blocks: bool,
}

/// The longest block, in minutes, whose burstiness the window estimates.
pub const MAX_SPAN: u32 = 20;
const SPANS: usize = MAX_SPAN as usize - 1;
/// Blocks a span's estimate needs.
const MIN_BLOCKS: usize = 9;
/// Spans whose estimate can make the window `bursty_blocks` (a few), and how many of its
/// standard errors under Poisson counts it must be above 0: a calm window is taken for a
/// bursty one in about 1.3% of cases (the estimates are skewed; measured at 0.6 to 60
/// events a minute).
const BURSTY_SPANS: [u32; 4] = [2, 5, 10, 20];
const BURSTY_BLOCKS_Z: f64 = 3.0;

/// The moment estimate over units (minutes, or blocks of them) of `(requests, events)`.
struct Moments {
    /// Events over all units.
    events: f64,
    /// Events per request.
    rate: f64,
    /// ĉ² ≥ 0.
    c2: f64,
    /// ĉ² plus two standard errors (the larger of the Poisson and the empirical one).
    c2_upper: f64,
    /// The standard error under Poisson counts.
    null_se: f64,
}

/// See `Moments`; `None` without events.
fn moments(units: &[(f64, f64)]) -> Option<Moments> {
    let (requests, events) = units
        .iter()
        .fold((0.0, 0.0), |(r, x), m| (r + m.0, x + m.1));
    if events <= 0.0 || requests <= 0.0 {
        return None;
    }
    let rate = events / requests;
    let excess = |r: f64, x: f64| {
        let mu = rate * r;
        ((x - mu).powi(2) - mu, mu)
    };
    let (mut sum, mut mu2, mut null_var) = (0.0, 0.0, 0.0);
    for (r, x) in units {
        let (d, mu) = excess(*r, *x);
        sum += d;
        mu2 += mu * mu;
        null_var += mu + 2.0 * mu * mu;
    }
    let raw = sum / mu2;
    let spread: f64 = units
        .iter()
        .map(|(r, x)| {
            let (d, mu) = excess(*r, *x);
            (d - raw * mu * mu).powi(2)
        })
        .sum();
    let null_se = null_var.sqrt() / mu2;
    let se = null_se.max(spread.sqrt() / mu2);
    let c2 = raw.max(0.0);
    Some(Moments {
        events,
        rate,
        c2,
        c2_upper: c2 + 2.0 * se,
        null_se,
    })
}

impl Burstiness {
    /// Minutes with requests the estimate needs (fewer: no estimate, and the looks that need
    /// one do not run).
    pub const MIN_MINUTES: u32 = 30;

    /// The estimate from `(requests, events)` per minute (per sample, like the tests'
    /// counts), oldest first. `None` with fewer than `Self::MIN_MINUTES` minutes with
    /// requests, or no events. Blocks for the spans are counted back from the newest minute.
    pub fn estimate(minutes: impl IntoIterator<Item = (f64, f64)>) -> Option<Burstiness> {
        let minutes: Vec<(f64, f64)> = minutes
            .into_iter()
            .filter(|(r, x)| r.is_finite() && x.is_finite() && *r > 0.0 && *x >= 0.0)
            .collect();
        let n = u32::try_from(minutes.len()).ok()?;
        if n < Self::MIN_MINUTES {
            return None;
        }
        let window = moments(&minutes)?;
        let mut spans = [0.0; SPANS];
        let mut bursty_blocks = false;
        for span in 2..=MAX_SPAN {
            let blocks: Vec<(f64, f64)> = minutes
                .rchunks_exact(span as usize)
                .map(|b| b.iter().fold((0.0, 0.0), |(r, x), m| (r + m.0, x + m.1)))
                .collect();
            if blocks.len() < MIN_BLOCKS {
                break;
            }
            if let Some(m) = moments(&blocks) {
                spans[span as usize - 2] = m.c2_upper.min(window.c2_upper);
                bursty_blocks |= BURSTY_SPANS.contains(&span) && m.c2 > BURSTY_BLOCKS_Z * m.null_se;
            }
        }
        Some(Burstiness {
            minutes: n,
            mean_events: window.events / f64::from(n),
            rate: window.rate,
            c2: window.c2,
            c2_upper: window.c2_upper,
            spans,
            bursty_blocks,
        })
    }

    /// The bound on c² of a sum over `minutes` minutes (its excess variance is c²·μ² for μ
    /// expected events): the estimate over blocks of that many minutes, rounded down to a
    /// span the window estimated (a longer span's c² is no larger: bursts average out over
    /// it, or at worst persist), never above one minute's (`c2_upper`: an average varies no
    /// more than its parts). Without spans, one minute's.
    pub fn c2_over(&self, minutes: f64) -> f64 {
        let longest = self.spans.iter().take_while(|c| **c > 0.0).count();
        // Span s sits at index s − 2; spans below 2 are one minute's.
        let span = if minutes.is_finite() {
            minutes.floor()
        } else {
            1.0
        };
        if span < 2.0 || longest == 0 {
            return self.c2_upper;
        }
        let index = (span as usize - 2).min(longest - 1);
        self.spans[index]
    }

    /// Variance inflation of a sum of `events` expected events over `minutes` minutes of one
    /// version (nothing cancels, as it does within a split minute): 1 + c²·μ at the span's
    /// bound (`c2_over`).
    pub fn sum_inflation(&self, events: f64, minutes: f64) -> f64 {
        1.0 + self.c2_over(minutes) * events.max(0.0)
    }

    /// Sums over blocks of minutes vary beyond Poisson noise, beyond doubt: the estimate
    /// over blocks of 2, 5, 10 or 20 minutes is more than 3 of its standard errors under
    /// Poisson counts above 0. Bursts of a minute show there too, more weakly; bursts that
    /// last longer, more strongly than in single minutes.
    pub fn is_bursty_in_blocks(&self) -> bool {
        self.bursty_blocks
    }

    /// The window's excess variance is beyond doubt: ĉ² is more than its two standard
    /// errors above 0 (`c2_upper` − `c2`), which a window of Poisson counts shows in about
    /// 2% of cases.
    pub fn is_bursty(&self) -> bool {
        self.c2 > self.c2_upper - self.c2
    }

    /// Variance inflation of a split minute with `events` expected events (both versions,
    /// per sample), a share `p` of them from the new version under the null.
    pub fn inflation(&self, events: f64, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0);
        1.0 + 2.0 * self.c2_upper * p * (1.0 - p) * events.max(0.0)
    }
}

/// Split minutes scaled down by their inflation (`Burstiness::inflation`), the way
/// `PairCounts::per_sample` scales sampled ones, and further where a minute would still
/// bring more than `events_per_minute` expected events (dividing Poisson counts only makes
/// the exact test more cautious, and it bounds its work, which grows with the square of the
/// events it counts). A minute's expected events are its requests times the larger of the
/// window's rate and the old version's over the split minutes before it (a rate that rose
/// since the window would otherwise shrink the inflation), the new version's requests
/// weighted by the null's ratio. Each version's rounding remainder is carried into the next
/// minute: the exact looks count whole events, and rounding a scaled count of one or two
/// events a minute afresh each minute would add its own noise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurstScale {
    /// The old version's burstiness before the rollout.
    pub bursts: Burstiness,
    /// Expected events a minute kept at most (both versions, after scaling).
    pub events_per_minute: f64,
    /// Scaled events not yet passed on (each in [-0.5, 0.5)).
    carry_new: f64,
    carry_old: f64,
    /// The old version's requests and events over the split minutes scaled so far.
    old_requests: f64,
    old_events: f64,
}

impl BurstScale {
    /// Scaling by `bursts`, thinning to `events_per_minute`, nothing carried yet.
    pub fn new(bursts: Burstiness, events_per_minute: f64) -> Self {
        BurstScale {
            bursts,
            events_per_minute,
            carry_new: 0.0,
            carry_old: 0.0,
            old_requests: 0.0,
            old_events: 0.0,
        }
    }

    /// One minute (per sample) scaled by its inflation under the null "ratio ≤ `rho0`" or
    /// by its expected events over `events_per_minute`, whichever is larger, its bad events
    /// whole numbers. A minute where a version served nothing (which the looks ignore) is
    /// returned as it is, and moves neither the carries nor the split's rate.
    pub fn scale(&mut self, minute: PairCounts, rho0: f64) -> PairCounts {
        if minute.new_share().is_none() || !minute.is_valid() {
            return minute;
        }
        let split_rate = if self.old_requests > 0.0 {
            self.old_events / self.old_requests
        } else {
            0.0
        };
        let rate = self.bursts.rate.max(split_rate);
        self.old_requests += minute.old_total;
        self.old_events += minute.old_bad;
        let events = rate * (minute.old_total + rho0 * minute.new_total);
        let inflation = self.bursts.inflation(events, minute.null_share(rho0));
        let thinning = events / self.events_per_minute;
        let scaled = minute.per_sample(inflation.max(thinning));
        PairCounts {
            new_bad: whole(scaled.new_bad, &mut self.carry_new),
            old_bad: whole(scaled.old_bad, &mut self.carry_old),
            ..scaled
        }
    }
}

/// `value` plus the remainder carried from earlier minutes, rounded to whole events; the new
/// remainder (in [-0.5, 0.5)) is carried on.
fn whole(value: f64, carry: &mut f64) -> f64 {
    let rounded = (value + *carry).round().max(0.0);
    *carry = value + *carry - rounded;
    rounded
}

/// One version's minutes summed raw, for a test that compares them with other minutes
/// rather than within a split: the bake's minutes at 100% against the old version's over the
/// split (`BakeLooks`, `BakeTest`). The sum is scaled when it is tested, by the variance
/// inflation of a sum over that many minutes (`Burstiness::sum_inflation`): across minutes,
/// bursts shared by both versions do not cancel, and a burst that outlasts a minute adds to
/// a sum's variance the more minutes it lasts, which scaling each minute alone would miss.
/// Divided by its inflation at the null's rate, a sum has variance about its mean, as a
/// Poisson count does. The expected events come from requests and a rate, never from the
/// sum's own count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesTotals {
    /// Minutes added.
    pub minutes: u32,
    /// Requests and events over them (per sample).
    pub requests: f64,
    pub events: f64,
    /// Σ requests² over the minutes (for `effective_minutes`).
    pub requests_sq: f64,
}

impl SeriesTotals {
    /// Adds one minute (per sample); one without requests or with invalid counts is ignored.
    pub fn add(&mut self, requests: f64, events: f64) {
        let valid = requests.is_finite() && events.is_finite() && requests > 0.0 && events >= 0.0;
        if valid {
            self.minutes += 1;
            self.requests += requests;
            self.events += events;
            self.requests_sq += requests * requests;
        }
    }

    /// Events per request (0 before any minute).
    pub fn rate(&self) -> f64 {
        if self.requests > 0.0 {
            self.events / self.requests
        } else {
            0.0
        }
    }

    /// The span the sum's bursts average over: (Σr)²/Σr², the minutes when all carry the
    /// same requests and fewer when some carry most of them (as the split's do at 90% and
    /// 50%), so that independent bursts get the inflation Σ(c²μₘ²) they add.
    pub fn effective_minutes(&self) -> f64 {
        if self.requests_sq > 0.0 {
            self.requests * self.requests / self.requests_sq
        } else {
            f64::from(self.minutes)
        }
    }

    /// What the sum is divided by: its inflation (`Burstiness::sum_inflation`) with
    /// `rate` events per request expected, or the expected events over `events_per_minute`
    /// a minute or over `max_events` in all, whichever is largest (thinning Poisson counts
    /// only makes an exact test more cautious, and bounds its work). At least 1.
    pub fn divisor(
        &self,
        bursts: &Burstiness,
        rate: f64,
        events_per_minute: f64,
        max_events: f64,
    ) -> f64 {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        let expected = rate * self.requests;
        let inflation = bursts.sum_inflation(expected, self.effective_minutes());
        let thinning = (expected / (events_per_minute * f64::from(self.minutes.max(1))))
            .max(expected / max_events);
        inflation.max(thinning).max(1.0)
    }

    /// The totals divided by `divisor`: (requests, events made whole by `whole`, e.g.
    /// `f64::floor` where rounding up would favour rejection).
    pub fn scaled(&self, divisor: f64, whole: fn(f64) -> f64) -> (f64, f64) {
        (self.requests / divisor, whole(self.events / divisor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Rng;
    use crate::sim::validity::models::{burst_looks_reject, window};
    use crate::sim::validity::{limit, rate};
    use crate::stats::testing::minute;

    /// 40 minutes of exactly `events` out of `requests`: no burstiness at all.
    fn steady(requests: f64, events: f64) -> Burstiness {
        Burstiness::estimate(vec![(requests, events); 40]).unwrap()
    }

    #[test]
    fn poisson_minutes_give_a_c2_near_zero_and_an_upper_bound_of_about_two_standard_errors() {
        let mut rng = Rng::from_seed(7);
        let b = Burstiness::estimate(window(&mut rng, 180, 600, 0.2, 0.0)).unwrap();
        assert_eq!(b.minutes, 180);
        assert!((b.mean_events - 120.0).abs() < 3.0, "{b:?}");
        // One Poisson standard error at 120 events a minute over 180 minutes: √(2/180)/120 ≈
        // 0.00088; the bound adds two of the larger of it and the empirical one.
        let se = (180.0f64 * (120.0 + 2.0 * 14_400.0)).sqrt() / (180.0 * 14_400.0);
        assert!(b.c2 < 3.0 * se, "{b:?}");
        assert!(
            b.c2_upper >= 2.0 * se * 0.9 && b.c2_upper < 6.0 * se,
            "{b:?}"
        );
        assert!((b.rate - 0.2).abs() < 0.005, "{b:?}");
        assert!(b.inflation(120.0, 0.5) < 1.3, "{}", b.inflation(120.0, 0.5));
    }

    #[test]
    fn bursts_of_cv_30_percent_are_estimated_within_a_quarter() {
        let mut rng = Rng::from_seed(11);
        let b = Burstiness::estimate(window(&mut rng, 180, 600, 0.2, 0.09)).unwrap();
        assert!((b.c2 - 0.09).abs() < 0.09 / 4.0, "{b:?}");
        assert!(b.c2_upper > b.c2);
        let expected = 1.0 + 2.0 * 0.1 * 0.9 * 100.0 * b.c2_upper;
        assert!((b.inflation(100.0, 0.1) - expected).abs() < 1e-12);
    }

    #[test]
    fn too_few_minutes_or_no_events_give_no_estimate() {
        let mut rng = Rng::from_seed(3);
        assert!(
            Burstiness::estimate(window(&mut rng, Burstiness::MIN_MINUTES - 1, 600, 0.2, 0.0))
                .is_none()
        );
        assert!(Burstiness::estimate(vec![(600.0, 0.0); 60]).is_none());
        // Minutes without requests do not count towards the minimum.
        let mut some = window(&mut rng, Burstiness::MIN_MINUTES - 1, 600, 0.2, 0.0);
        some.extend([(0.0, 0.0); 10]);
        assert!(Burstiness::estimate(some).is_none());
    }

    #[test]
    fn scaled_minutes_carry_their_rounding_so_the_totals_stay_within_half_an_event() {
        let bursts = steady(100.0, 10.0);
        let mut scale = BurstScale::new(bursts, 1e9);
        let minute = minute(50.0, 3.0, 450.0, 27.0);
        let inflation = bursts.inflation(50.0, 0.1);
        assert!(inflation > 1.0);
        let (mut new_bad, mut old_bad) = (0.0, 0.0);
        for m in 1..=50 {
            let scaled = scale.scale(minute, 1.0);
            assert_eq!(scaled.new_bad.fract(), 0.0);
            assert!((scaled.new_total - 50.0 / inflation).abs() < 1e-9);
            new_bad += scaled.new_bad;
            old_bad += scaled.old_bad;
            let exact = f64::from(m) / inflation;
            assert!((new_bad - 3.0 * exact).abs() <= 0.5 + 1e-9, "minute {m}");
            assert!((old_bad - 27.0 * exact).abs() <= 0.5 + 1e-9, "minute {m}");
        }
    }

    #[test]
    fn minutes_with_more_expected_events_than_the_limit_are_thinned_to_it() {
        // 10% of requests are events; 5,000 requests a minute are 500 expected events.
        let bursts = steady(1_000.0, 100.0);
        let mut scale = BurstScale::new(bursts, 200.0);
        let minute = minute(500.0, 50.0, 4_500.0, 450.0);
        assert!(bursts.inflation(500.0, 0.1) < 2.5);
        let scaled = scale.scale(minute, 1.0);
        assert!((scaled.new_total - 200.0).abs() < 1e-9, "{scaled:?}");
        assert_eq!((scaled.new_bad, scaled.old_bad), (20.0, 180.0));
        // Below the limit only the inflation applies.
        let mut roomy = BurstScale::new(bursts, 1_000.0);
        let inflation = bursts.inflation(500.0, 0.1);
        let scaled = roomy.scale(minute, 1.0);
        assert!(
            (scaled.old_total - 4_500.0 / inflation).abs() < 1e-9,
            "{scaled:?}"
        );
    }

    #[test]
    fn a_rate_that_rose_since_the_window_inflates_by_the_splits_rate() {
        // The window: 10% of requests; the split: 20% of the old version's.
        let bursts = steady(1_000.0, 100.0);
        let mut scale = BurstScale::new(bursts, 1e9);
        let minute = minute(100.0, 20.0, 900.0, 180.0);
        // The first minute has only the window's rate to go on: 100 expected events.
        let first = scale.scale(minute, 1.0);
        assert!((first.old_total - 900.0 / bursts.inflation(100.0, 0.1)).abs() < 1e-9);
        // From the second on, the old version's split-time rate: 200.
        let second = scale.scale(minute, 1.0);
        assert!((second.old_total - 900.0 / bursts.inflation(200.0, 0.1)).abs() < 1e-9);
        assert!(second.old_total < first.old_total);
    }

    #[test]
    fn a_minute_where_one_version_served_nothing_passes_untouched() {
        let bursts = steady(1_000.0, 100.0);
        let mut scale = BurstScale::new(bursts, 1e9);
        let alone = minute(0.0, 0.0, 900.0, 97.0);
        assert_eq!(scale.scale(alone, 1.0), alone);
        assert_eq!(scale, BurstScale::new(bursts, 1e9));
    }

    /// Like `models::window`, each burst factor held for `block` minutes.
    fn held_window(
        rng: &mut Rng,
        requests: f64,
        rate: f64,
        cv2: f64,
        block: u32,
    ) -> Vec<(f64, f64)> {
        let mut factor = 1.0;
        (0..180)
            .map(|m| {
                if m % block == 0 {
                    factor = rng.gamma_mean_one(cv2);
                }
                (requests, rng.poisson(requests * rate * factor) as f64)
            })
            .collect()
    }

    #[test]
    fn bursts_held_for_ten_minutes_keep_their_whole_c2_over_ten_minute_sums() {
        let mut rng = Rng::from_seed(23);
        let b = Burstiness::estimate(held_window(&mut rng, 6000.0, 0.01, 0.09, 10)).unwrap();
        assert!(b.is_bursty_in_blocks(), "{b:?}");
        // A sum over 10 minutes that move together varies as one minute does: c² ≈ 0.09,
        // where independent minutes would give 0.009. The bound is the estimate's, at most
        // one minute's.
        let over_ten = b.c2_over(10.0);
        assert!(over_ten > 0.06 && over_ten <= b.c2_upper, "{b:?}");
        let independent = Burstiness::estimate(window(&mut rng, 180, 6000, 0.01, 0.09)).unwrap();
        assert!(
            independent.c2_over(10.0) < 0.35 * independent.c2_upper,
            "{independent:?}"
        );
        assert!(independent.c2_over(10.0) > 0.009, "{independent:?}");
    }

    #[test]
    fn a_span_bound_falls_back_to_one_minutes_below_two_and_to_the_longest_beyond() {
        let mut rng = Rng::from_seed(29);
        let b = Burstiness::estimate(window(&mut rng, 180, 6000, 0.01, 0.01)).unwrap();
        assert_eq!(b.c2_over(1.9), b.c2_upper);
        assert_eq!(b.c2_over(f64::NAN), b.c2_upper);
        // 180 minutes make at least 9 blocks of up to 20 minutes.
        assert!(
            b.spans.iter().all(|c| *c > 0.0 && *c <= b.c2_upper),
            "{b:?}"
        );
        assert_eq!(b.c2_over(45.0), b.spans[(MAX_SPAN - 2) as usize]);
        assert_eq!(b.c2_over(7.6), b.spans[5]);
        // 45 minutes make 9 blocks of at most 5.
        let short = Burstiness::estimate(window(&mut rng, 45, 6000, 0.01, 0.01)).unwrap();
        assert!(short.spans[3] > 0.0 && short.spans[4] == 0.0, "{short:?}");
        assert_eq!(short.c2_over(10.0), short.spans[3]);
    }

    #[test]
    fn calm_windows_are_rarely_taken_for_bursty_ones_in_blocks() {
        let mut rng = Rng::from_seed(31);
        for (requests, rate) in [(6000.0, 0.001), (6000.0, 0.01)] {
            let flagged = (0..400)
                .filter(|_| {
                    let w = held_window(&mut rng, requests, rate, 0.0, 1);
                    Burstiness::estimate(w).unwrap().is_bursty_in_blocks()
                })
                .count();
            assert!(
                flagged <= 8,
                "{flagged} of 400 at {} a minute",
                requests * rate
            );
        }
    }

    #[test]
    fn series_totals_divide_by_their_sums_inflation_or_thin_to_the_limits() {
        let mut rng = Rng::from_seed(37);
        let bursts = Burstiness::estimate(held_window(&mut rng, 6000.0, 0.01, 0.09, 10)).unwrap();
        let mut split = SeriesTotals::default();
        for m in 0..20 {
            split.add(if m < 10 { 5400.0 } else { 3000.0 }, 40.0);
        }
        split.add(0.0, 3.0);
        split.add(f64::NAN, 3.0);
        assert_eq!(split.minutes, 20);
        // Unequal minutes average over fewer than 20: (84,000)² / (10·5400² + 10·3000²).
        let effective = 84_000.0f64.powi(2) / (10.0 * 5400.0f64.powi(2) + 10.0 * 3000.0f64.powi(2));
        assert!((split.effective_minutes() - effective).abs() < 1e-9);
        let divisor = split.divisor(&bursts, 0.01, 1e9, 1e9);
        let inflation = 1.0 + bursts.c2_over(effective) * 840.0;
        assert!((divisor - inflation).abs() < 1e-9, "{divisor} {inflation}");
        let (requests, events) = split.scaled(divisor, f64::floor);
        assert!((requests - 84_000.0 / divisor).abs() < 1e-9);
        assert_eq!(events, (800.0 / divisor).floor());
        assert_eq!(split.scaled(divisor, f64::ceil).1, (800.0 / divisor).ceil());
        // Thinning, in a calm window: 840 expected events over 20 minutes at 2 a minute is
        // ÷ 21; 100 in all is ÷ 8.4, both above the calm window's inflation.
        let calm = steady(6000.0, 60.0);
        let calm_inflation = split.divisor(&calm, 0.01, 1e9, 1e9);
        assert!(calm_inflation < 8.4, "{calm_inflation}");
        assert!((split.divisor(&calm, 0.01, 2.0, 1e9) - 21.0).abs() < 1e-9);
        assert!((split.divisor(&calm, 0.01, 1e9, 100.0) - 8.4).abs() < 1e-9);
        assert_eq!(SeriesTotals::default().divisor(&calm, 0.01, 2.0, 1e9), 1.0);
    }

    #[test]
    fn a_bursty_window_widens_its_margin_beyond_the_poisson_standard_error() {
        let mut rng = Rng::from_seed(17);
        let b = Burstiness::estimate(window(&mut rng, 180, 600, 0.1, 0.25)).unwrap();
        let (mu, n) = (60.0f64, 180.0f64);
        let poisson_se = (n * (mu + 2.0 * mu * mu)).sqrt() / (n * mu * mu);
        assert!(b.c2_upper - b.c2 > 4.0 * poisson_se, "{b:?}");
    }

    #[test]
    fn a_steady_window_estimates_exactly_zero_excess() {
        // Counts exactly at their means: the excess is −Σμ, clamped to 0.
        let b = steady(100.0, 10.0);
        assert_eq!(b.c2, 0.0);
        assert!(b.c2_upper > 0.0);
    }

    /// The fast seeded check of `rollout-sim --validity`'s burst-scaled scheduled looks
    /// cells: a healthy split, each version with bursts of its own of CV 50%.
    #[test]
    fn inflated_exact_looks_keep_their_alpha_under_per_version_bursts_that_break_plain_ones() {
        let mut rng = Rng::from_seed(1);
        let runs = 100;
        let inflated = rate(runs, || burst_looks_reject(&mut rng, 0.05, 0.25, true));
        let plain = rate(runs, || burst_looks_reject(&mut rng, 0.05, 0.25, false));
        assert!(inflated <= limit(0.05, runs), "inflated {inflated}");
        // The same minutes without the inflation: the exact test is far overconfident.
        assert!(plain > 2.5 * 0.05, "plain {plain}");
    }
}
