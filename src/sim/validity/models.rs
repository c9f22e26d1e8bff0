//! The seeded releases each statistical test is measured on by `--validity`: Poisson splits
//! and bakes at a base 5xx rate, windows of the old version with bursts, and busy bakes whose
//! bursts both versions share. Each trial runs one release and says whether the test rejected.

use crate::sim::rng::Rng;
use crate::stats::{
    BakeLooks, BakeTest, Baseline, BurstScale, Burstiness, ExactLooks, HistoryLooks, LookKind,
    OnsetLooks, PairCounts, RatioTest, RatioTestConfig, Reference, ScheduledLooks, ONSET_MAX_LOOKS,
};

/// The default schedule's split (10 minutes at 10%, 10 at 50%) at base 5xx rate 0.1%.
pub const SPLIT: [(f64, usize); 2] = [(0.1, 10), (0.5, 10)];
/// The old version's 5xx rate per request in the split and bake models.
pub const BASE_RATE: f64 = 0.001;

/// The e-processes' configuration at the gate's defaults (α 1%, ρ0 1).
pub fn config() -> RatioTestConfig {
    RatioTestConfig::default_5xx()
}

/// The split e-process's mixture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prior {
    /// The gate's (`default_prior`).
    Gate,
    /// The reference note's plain prior: eight ratios, equal weights.
    EqualWeight,
}

impl Prior {
    /// A fresh split e-process with this prior.
    pub fn test(self) -> RatioTest {
        match self {
            Prior::Gate => RatioTest::new(config()),
            Prior::EqualWeight => {
                let prior: Vec<(f64, f64)> = [1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0]
                    .iter()
                    .map(|&r| (r, 1.0))
                    .collect();
                RatioTest::with_alternatives(config(), &prior).expect("ratios above 1")
            }
        }
    }
}

/// One split minute at `rps` with the new version at `share` of requests and `ratio` × the
/// base rate.
fn simulate_minute(rng: &mut Rng, rps: f64, share: f64, ratio: f64) -> PairCounts {
    let new_total = rng.poisson(rps * 60.0 * share) as f64;
    let old_total = rng.poisson(rps * 60.0 * (1.0 - share)) as f64;
    PairCounts {
        new_total,
        new_bad: rng.poisson(new_total * BASE_RATE * ratio) as f64,
        old_total,
        old_bad: rng.poisson(old_total * BASE_RATE) as f64,
    }
}

/// The minutes of one `SPLIT` at `rps`, the new version at `ratio` × the base rate.
pub fn simulate_split(rng: &mut Rng, rps: f64, ratio: f64) -> Vec<PairCounts> {
    SPLIT
        .iter()
        .flat_map(|&(share, minutes)| std::iter::repeat_n(share, minutes))
        .map(|share| simulate_minute(rng, rps, share, ratio))
        .collect()
}

/// Whether the split e-process `test` rejects by the end of `minutes`.
pub fn split_rejects(mut test: RatioTest, minutes: &[PairCounts]) -> bool {
    minutes.iter().any(|m| {
        test.observe(*m);
        test.rejected()
    })
}

/// Whether the upper bound of the gate's split e-process falls below the true ratio 1 at the
/// end of a healthy split at `rps`.
pub fn split_bound_misses(rng: &mut Rng, rps: f64) -> bool {
    let mut test = Prior::Gate.test();
    simulate_split(rng, rps, 1.0)
        .into_iter()
        .for_each(|m| test.observe(m));
    test.summary().upper_bound < 1.0
}

/// The old version's counts over a healthy split at `rps`, as the bake's reference (bad,
/// requests).
fn simulate_reference(rng: &mut Rng, rps: f64) -> (f64, f64) {
    simulate_split(rng, rps, 1.0)
        .iter()
        .fold((0.0, 0.0), |(bad, total), m| {
            (bad + m.old_bad, total + m.old_total)
        })
}

/// Whether the bake e-process rejects over 10 bake minutes at `rps`, the new version at
/// `ratio` × the base rate, against the old version's counts over a split.
pub fn bake_rejects(rng: &mut Rng, rps: f64, ratio: f64) -> bool {
    let (bad, total) = simulate_reference(rng, rps);
    let mut bake = BakeTest::new(config(), bad, total);
    (0..10).any(|_| {
        let n = rng.poisson(rps * 60.0) as f64;
        bake.observe(n, rng.poisson(n * BASE_RATE * ratio) as f64);
        bake.rejected()
    })
}

/// Whether the scheduled looks at α 1% reject a healthy split: 0–4 bad events a minute (the
/// new version's each with its share's probability, ratio exactly 1), a look every minute (a
/// quarter of the budget over the first step, half at its end, the rest at the close).
pub fn scheduled_looks_reject(rng: &mut Rng) -> bool {
    let mut looks = ScheduledLooks::new(0.01, 1.0, 100.0);
    for m in 0..20 {
        let q = if m < 10 { 0.1 } else { 0.5 };
        let events = (rng.uniform() * 5.0).floor();
        let new_bad = (0..events as u32).filter(|_| rng.uniform() < q).count() as f64;
        looks.observe(PairCounts {
            new_total: q * 600.0,
            new_bad,
            old_total: (1.0 - q) * 600.0,
            old_bad: events - new_bad,
        });
        let x = f64::from(m % 10 + 1) / 10.0;
        let (kind, allowance) = match m {
            9 => (LookKind::StepEnd { step: 0 }, 0.5),
            0..=8 => (LookKind::Interim { step: 0 }, 0.125 * x * x),
            _ => (LookKind::Interim { step: 1 }, 0.5 + 0.125 * x * x),
        };
        looks.look(kind, allowance);
    }
    looks.look(LookKind::Closing, 1.0);
    looks.rejected().is_some()
}

/// Whether the history looks (α 5%, margin 1.5, guard at α 5%) reject a healthy split at 1
/// rps with 0.4% bad events, both versions' rate during the split `drift` × the 3-hour
/// window's.
pub fn history_looks_reject(rng: &mut Rng, drift: f64) -> bool {
    let rate = 0.004;
    let mut looks = HistoryLooks::new(0.05, 1.5, 0.05, 1.0, 30.0);
    let h = rng.poisson(10_800.0 * rate) as f64;
    looks.set_baseline(Baseline {
        minutes: 180,
        requests: 10_800.0,
        bad: h,
    });
    for (share, minutes) in SPLIT {
        for _ in 0..minutes {
            let (n1, n0) = (60.0 * share, 60.0 * (1.0 - share));
            let e1 = rng.poisson(n1 * rate * drift) as f64;
            let e0 = rng.poisson(n0 * rate * drift) as f64;
            looks.observe(PairCounts {
                new_total: n1,
                new_bad: e1,
                old_total: n0,
                old_bad: e0,
            });
            looks.look(LookKind::Interim { step: 0 }, 0.0);
        }
        if share < 0.5 {
            looks.look(LookKind::StepEnd { step: 0 }, 0.5);
        }
    }
    looks.look(LookKind::Closing, 1.0);
    looks.rejected().is_some()
}

/// Whether the bake looks (α 5%) reject a healthy bake at the null's hardest case (margin
/// 1): Poisson counts at exactly the reference's rate, 3 bad events a minute, 8 looks.
pub fn bake_looks_reject(rng: &mut Rng) -> bool {
    bake_looks_of_reject(rng, BakeLooks::new)
}

/// The same for the bake's onset looks (`BakeLooks::onset`), which look at every minute.
pub fn bake_onset_looks_reject(rng: &mut Rng) -> bool {
    bake_looks_of_reject(rng, BakeLooks::onset)
}

fn bake_looks_of_reject(rng: &mut Rng, make: fn(f64, f64, f64) -> BakeLooks) -> bool {
    let mut looks = make(0.05, 1.0, 30.0);
    looks.start(Reference {
        minutes: 20,
        requests: 20.0 * 3000.0,
        bad: rng.poisson(20.0 * 3.0) as f64,
    });
    for minute in 1..=8 {
        looks.observe(3000.0, rng.poisson(3.0) as f64);
        let x = f64::from(minute) / 8.0;
        let allowance = if minute == 8 { 1.0 } else { 0.25 * x * x };
        looks.look(allowance);
    }
    looks.rejected().is_some()
}

/// Whether the split's onset looks at `alpha` reject a healthy split: 40 minutes, 10 at 10%
/// then 30 at 50%, 6,000 requests a minute at 0.1% (6 bad events a minute), each version's
/// rate moved every minute by a gamma factor of its own of squared CV `cv2`; a look after
/// each minute, with the minutes scaled for the burstiness of 180 minutes of the old
/// version before the rollout (`scaled`), or not.
pub fn onset_looks_reject(rng: &mut Rng, alpha: f64, cv2: f64, scaled: bool) -> bool {
    let rate = 0.001;
    let bursts = Burstiness::estimate(window(rng, 180, 6000, rate, cv2)).expect("an estimate");
    let mut scale = BurstScale::new(bursts, 1e9);
    let mut looks = OnsetLooks::new(alpha, 1.0, if scaled { 5_000.0 } else { 1e9 });
    if scaled {
        looks.scale_for_bursts(5_000.0);
    }
    for m in 0..ONSET_MAX_LOOKS {
        let q = if m < 10 { 0.1 } else { 0.5 };
        let mut draw = |requests: f64| {
            let burst = rng.gamma_mean_one(cv2);
            rng.poisson(requests * rate * burst) as f64
        };
        let (new_total, old_total) = (6000.0 * q, 6000.0 * (1.0 - q));
        let minute = PairCounts {
            new_total,
            new_bad: draw(new_total),
            old_total,
            old_bad: draw(old_total),
        };
        let fed = if scaled {
            scale.scale(minute, 1.0)
        } else {
            minute
        };
        looks.observe(fed);
        if looks
            .look(LookKind::Interim { step: 0 })
            .is_some_and(|l| l.rejected)
        {
            return true;
        }
    }
    false
}

/// `minutes` minutes of the old version at `requests` a minute and `rate` bad events per
/// request, each minute's rate moved by a gamma factor of squared CV `cv2`, as (requests,
/// bad events).
pub fn window(rng: &mut Rng, minutes: u32, requests: u64, rate: f64, cv2: f64) -> Vec<(f64, f64)> {
    (0..minutes)
        .map(|_| {
            let mean = requests as f64 * rate * rng.gamma_mean_one(cv2);
            (requests as f64, rng.poisson(mean) as f64)
        })
        .collect()
}

/// Whether the closing scheduled look at `alpha` rejects a healthy split of 20 minutes at 10%,
/// 600 requests a minute, a tenth of them approaching the ceiling, each version with bursts
/// of its own of squared CV `cv2`: with the minutes scaled for the burstiness of 180 minutes
/// of the old version before the rollout (`scaled`), or not.
pub fn burst_looks_reject(rng: &mut Rng, alpha: f64, cv2: f64, scaled: bool) -> bool {
    let bursts = Burstiness::estimate(window(rng, 180, 600, 0.1, cv2)).expect("an estimate");
    let mut scale = BurstScale::new(bursts, 1e9);
    let mut looks = ScheduledLooks::new(alpha, 1.0, 5_000.0);
    for _ in 0..20 {
        let mut draw = |requests: f64| {
            let burst = rng.gamma_mean_one(cv2);
            rng.poisson(requests * 0.1 * burst) as f64
        };
        let (new_bad, old_bad) = (draw(60.0), draw(540.0));
        let minute = PairCounts {
            new_total: 60.0,
            new_bad,
            old_total: 540.0,
            old_bad,
        };
        looks.observe(if scaled {
            scale.scale(minute, 1.0)
        } else {
            minute
        });
    }
    looks
        .look(LookKind::Closing, 1.0)
        .is_some_and(|l| l.rejected)
}

/// A busy service, 1% 5xx at 6,000 requests a minute (60 events), each minute's rate
/// moved by a gamma factor of squared CV `cv2` shared by both versions: 180 minutes of
/// the old version before the rollout (the window the looks are scaled for, unless
/// `raw`), 20 split minutes of it (10 at 90%, 10 at 50%), then 8 bake minutes with the
/// new version at `ratio` × that rate from bake minute `from` (1-based), looked at as
/// the gate does against "new ≤ `margin` × old". A burst factor lasts `block` minutes
/// (1: independent minutes).
#[derive(Clone, Copy, Debug)]
pub struct Bake {
    pub alpha: f64,
    pub margin: f64,
    pub cv2: f64,
    pub ratio: f64,
    pub from: u32,
    pub raw: bool,
    pub block: u32,
}

/// The window's, the split's (old version) and the bake's minutes of a `Bake`, as
/// (requests, bad events).
type Minutes = [Vec<(f64, f64)>; 3];

impl Bake {
    /// A healthy bake at the gate's margin 1.5 with the new version at the null's boundary
    /// (1.5 × the old version's rate) from the start, scaled, its bursts of squared CV `cv2`
    /// held for `block` minutes.
    pub fn healthy(alpha: f64, cv2: f64, block: u32) -> Bake {
        Bake {
            alpha,
            margin: 1.5,
            cv2,
            ratio: 1.5,
            from: 1,
            raw: false,
            block,
        }
    }

    fn minutes(self, rng: &mut Rng) -> Minutes {
        let (mut drawn, mut factor) = (0, 1.0);
        let mut draw = |requests: f64, ratio: f64| {
            if drawn % self.block.max(1) == 0 {
                factor = rng.gamma_mean_one(self.cv2);
            }
            drawn += 1;
            let mean = requests * 0.01 * ratio * factor;
            (requests, rng.poisson(mean) as f64)
        };
        let window = (0..180).map(|_| draw(6000.0, 1.0)).collect();
        let split = (0..20)
            .map(|m| draw(if m < 10 { 5400.0 } else { 3000.0 }, 1.0))
            .collect();
        let at = |m: u32| if m >= self.from { self.ratio } else { 1.0 };
        let baked = (1..=8).map(|m| draw(6000.0, at(m))).collect();
        [window, split, baked]
    }

    /// The bake looks after one seeded run of this bake.
    pub fn looks(self, rng: &mut Rng) -> BakeLooks {
        self.looks_of(rng, BakeLooks::new)
    }

    /// Whether the bake's onset looks (`BakeLooks::onset`) reject one seeded run of this
    /// bake (a look after each minute, as the gate takes them).
    pub fn onset_looks_reject(self, rng: &mut Rng) -> bool {
        self.looks_of(rng, BakeLooks::onset).rejected().is_some()
    }

    fn looks_of(self, rng: &mut Rng, make: fn(f64, f64, f64) -> BakeLooks) -> BakeLooks {
        let [window, split, baked] = self.minutes(rng);
        let limit = if self.raw { 1e9 } else { 30.0 };
        let mut looks = make(self.alpha, self.margin, limit);
        if !self.raw {
            let bursts = Burstiness::estimate(window).expect("an estimate");
            assert!(looks.scale_for_bursts(bursts, 200.0, 5_000.0));
        }
        for &(total, events) in &split {
            looks.observe_reference(total, events);
        }
        looks.start(Reference {
            minutes: 20,
            requests: split.iter().map(|m| m.0).sum(),
            bad: split.iter().map(|m| m.1).sum(),
        });
        for (minute, &(total, events)) in (1..=8).zip(&baked) {
            looks.observe(total, events);
            let x = f64::from(minute) / 8.0;
            looks.look(if minute == 8 { 1.0 } else { 0.25 * x * x });
        }
        looks
    }

    /// Whether the bake looks reject one seeded run of this bake.
    pub fn looks_reject(self, rng: &mut Rng) -> bool {
        self.looks(rng).rejected().is_some()
    }

    /// Whether the bake's e-process, at `alpha` and scaled as the gate scales it where the
    /// looks are (`BakeLooks::e_process_scaling`, horizon the 8 bake minutes; raw counts
    /// when `raw`), rejects one seeded run of this bake.
    pub fn e_process_rejects(self, rng: &mut Rng) -> bool {
        let [window, split, baked] = self.minutes(rng);
        let config = RatioTestConfig {
            alpha: self.alpha,
            rho0: self.margin,
            ..RatioTestConfig::default_5xx()
        };
        let (total, bad) = split
            .iter()
            .fold((0.0, 0.0), |(t, b), m| (t + m.0, b + m.1));
        let mut test = if self.raw {
            BakeTest::new(config, bad, total)
        } else {
            let mut looks = BakeLooks::new(self.alpha, self.margin, 30.0);
            let bursts = Burstiness::estimate(window).expect("an estimate");
            assert!(looks.scale_for_bursts(bursts, 200.0, 5_000.0));
            split
                .iter()
                .for_each(|&(t, b)| looks.observe_reference(t, b));
            let scaling = looks.e_process_scaling(8).expect("scaled");
            BakeTest::new(config, scaling.reference.bad, scaling.reference.requests)
                .with_burst_scaling(scaling.bake_divisor, 8)
        };
        baked.iter().for_each(|&(t, b)| test.observe(t, b));
        test.rejected()
    }
}
