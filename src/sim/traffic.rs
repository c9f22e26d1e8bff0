//! The simulated world behind one run: per-minute requests, 5xx and slow counts for each
//! version under the split the gate itself wrote, with overdispersion, Analytics Engine
//! sampling, late data and outages, and the answers to the gate's queries (counts windows,
//! p95, `/healthz`, the live deployment, queue metrics). Minutes are generated once, when they
//! end, so every query about a minute sees the same events.

use super::latency::{sampled_quantile, LatencyModel};
use super::rng::Rng;
use super::scenario::{Fault, Overdispersion, Scenario};
use crate::observe::{
    CountsQuery, CountsWindow, Fetched, LiveDeployment, MinuteCounts, Probe, QueueMetrics,
    StoredRows, VersionCounts, VersionLatency, VersionShare,
};
use crate::time::{Timestamp, MINUTE_MS};

/// Minute 0 of every run: when the deploy hook arrives (2026-11-27T10:00:00Z).
pub const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000);

/// Cron fires a few seconds after each whole minute; a write at a tick therefore changes the
/// split a little into a minute, and that minute mixes the two splits (as in production).
pub const TICK_OFFSET_MS: i64 = 3_000;

/// Mixed into the history's seed to seed the very slow requests' streams (the run's, and
/// the window's before the deploy hook).
const TAIL_STREAM: u64 = 0x7a11_5eed_0f00_d1e5;
const HISTORY_TAIL_STREAM: u64 = 0x4157_0a11_7a11_0001;
/// The same for requests approaching the ceiling.
const APPROACH_STREAM: u64 = 0x0a11_0ac4_0000_0125;
const HISTORY_APPROACH_STREAM: u64 = 0x4157_0a11_0ac4_0125;

/// Version ids the simulated rollout uses.
pub const NEW_VERSION: &str = "candidate";
/// See `NEW_VERSION`.
pub const OLD_VERSION: &str = "baseline";

/// The tick at `minute` (minutes since `T0`).
pub fn tick_time(minute: u32) -> Timestamp {
    Timestamp::from_millis(T0.plus_minutes(i64::from(minute)).millis() + TICK_OFFSET_MS)
}

/// Whole minutes from `T0` to `t` (floor; negative before `T0`).
pub fn minute_of(t: Timestamp) -> i64 {
    t.millis_since(T0).div_euclid(MINUTE_MS)
}

/// One version's true counts in one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrueCounts {
    /// Requests served.
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    /// Requests slower than the policy's latency ceiling.
    pub slow: u64,
    /// Of those, requests slower than the policy's very slow threshold.
    pub very_slow: u64,
    /// Requests slower than the policy's approaching threshold (slow ones included).
    pub approaching: u64,
}

/// Random streams of the counts added after the first ones (very slow, approaching), each
/// its own, so that counting them shifted none of the draws before them.
pub struct SideStreams {
    /// Very slow requests.
    pub tail: Rng,
    /// Requests approaching the ceiling.
    pub approach: Rng,
}

/// One version's per-request probabilities in one minute.
#[derive(Clone, Copy, Debug)]
struct Rates {
    /// 5xx.
    error: f64,
    /// Slower than the ceiling.
    slow: f64,
    /// Very slow, given slow.
    very_slow_given_slow: f64,
    /// Approaching the ceiling but not over it.
    approach_band: f64,
}

impl TrueCounts {
    /// `requests`, each bad with probability `rates.error` (5xx) and `rates.slow` (slow),
    /// capped at 1, each slow one very slow with probability `rates.very_slow_given_slow`,
    /// and each one not slow approaching the ceiling with probability `rates.approach_band`
    /// out of what is not slow. The later counts come from `side`.
    fn draw(rng: &mut Rng, side: &mut SideStreams, requests: u64, rates: Rates) -> TrueCounts {
        let errors = rng.binomial(requests, rates.error.min(1.0));
        let slow_p = rates.slow.min(1.0);
        let slow = rng.binomial(requests, slow_p);
        let band = if slow_p < 1.0 {
            (rates.approach_band / (1.0 - slow_p)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        TrueCounts {
            requests,
            errors,
            slow,
            very_slow: side
                .tail
                .binomial(slow, rates.very_slow_given_slow.clamp(0.0, 1.0)),
            approaching: slow + side.approach.binomial(requests - slow, band),
        }
    }

    /// Each request kept with probability `keep` (sampling, late data), whole: the 5xx and
    /// slow ones kept are those among the kept requests, the very slow ones those among the
    /// kept slow ones, and the approaching ones the kept slow ones and those among the kept
    /// requests that are not slow (drawn from `side`). So every stored row is one request
    /// with its attributes, as in Analytics Engine, and never more bad rows than rows.
    fn thinned(self, rng: &mut Rng, side: &mut SideStreams, keep: f64) -> TrueCounts {
        let requests = rng.binomial(self.requests, keep);
        let errors = chosen_among(rng, requests, self.requests, self.errors);
        let slow = chosen_among(rng, requests, self.requests, self.slow);
        let below = self.approaching.saturating_sub(self.slow);
        let (kept_fast, fast) = (requests - slow, self.requests - self.slow);
        TrueCounts {
            requests,
            errors,
            slow,
            very_slow: chosen_among(&mut side.tail, slow, self.slow, self.very_slow),
            approaching: slow + chosen_among(&mut side.approach, kept_fast, fast, below),
        }
    }
}

/// Of `total` items, `marked` of them marked, `chosen` picked uniformly without replacement:
/// how many marked ones were picked (hypergeometric, by deciding for the smaller of the two
/// sets, item by item, whether it falls in the other: the count is symmetric in them).
fn chosen_among(rng: &mut Rng, chosen: u64, total: u64, marked: u64) -> u64 {
    let (chosen, marked) = (chosen.min(total), marked.min(total));
    let (picks, items) = (chosen.max(marked), chosen.min(marked));
    let (mut left, mut to_pick, mut got) = (total, picks, 0);
    for _ in 0..items {
        if to_pick == 0 {
            break;
        }
        if rng.uniform() * (left as f64) < to_pick as f64 {
            got += 1;
            to_pick -= 1;
        }
        left -= 1;
    }
    got
}

/// One generated minute.
#[derive(Clone, Debug, PartialEq)]
pub struct Minute {
    /// The new version's share of the minute's traffic (time-weighted over the minute).
    pub share: f64,
    /// True counts, new version.
    pub new: TrueCounts,
    /// True counts, old version.
    pub old: TrueCounts,
    /// What Analytics Engine stores (rows, before `× sample_interval`), new version.
    pub stored_new: TrueCounts,
    /// The same for the old version.
    pub stored_old: TrueCounts,
    /// The new version ran the changed (candidate) behaviour this minute.
    pub candidate_changed: bool,
    /// 5xx plus slow requests the new version served beyond what the baseline's rates would
    /// have given for the same requests (the harm of this minute).
    pub excess_bad: f64,
}

/// The world of one run.
pub struct World<'a> {
    scenario: &'a Scenario,
    rng: Rng,
    /// `(ms since T0, new share)`: the split in force from that instant.
    splits: Vec<(i64, f64)>,
    /// Minutes generated so far (index = minute since `T0`).
    pub minutes: Vec<Minute>,
    /// P(slower than the ceiling): baseline, candidate.
    slow_rates: (f64, f64),
    /// P(very slow | slow): baseline, candidate.
    very_slow_given_slow: (f64, f64),
    /// P(approaching the ceiling but not over it): baseline, candidate.
    approach_bands: (f64, f64),
    /// Draws for the minutes before the deploy hook (its own stream, so reading the history
    /// does not shift the run's).
    history_rng: Rng,
    /// Draws of the later counts (their own streams, derived from the history's seed, so
    /// counting them shifts no other draw).
    side: SideStreams,
    /// The same for the window before the deploy hook (so that when and how often it is
    /// read moves none of the run's draws).
    history_side: SideStreams,
    /// The shared burst multipliers in force (5xx, slow), held for `shared_minutes`.
    shared: HeldBursts,
}

/// Shared burst multipliers (5xx, slow) held over blocks of `Overdispersion::shared_minutes`
/// minutes: each is drawn at the block's first minute it is asked for, so with blocks of one
/// minute the draws are exactly one per minute and multiplier, in the order asked.
#[derive(Clone, Copy, Debug, Default)]
struct HeldBursts {
    errors: Option<(i64, f64)>,
    slow: Option<(i64, f64)>,
}

impl HeldBursts {
    fn errors(&mut self, rng: &mut Rng, od: &Overdispersion, minute: i64) -> f64 {
        held(&mut self.errors, rng, od, minute)
    }

    fn slow(&mut self, rng: &mut Rng, od: &Overdispersion, minute: i64) -> f64 {
        held(&mut self.slow, rng, od, minute)
    }
}

fn held(slot: &mut Option<(i64, f64)>, rng: &mut Rng, od: &Overdispersion, minute: i64) -> f64 {
    let block = minute.div_euclid(i64::from(od.shared_minutes.max(1)));
    match *slot {
        Some((b, value)) if b == block => value,
        _ => {
            let value = rng.gamma_mean_one(od.shared);
            *slot = Some((block, value));
            value
        }
    }
}

impl<'a> World<'a> {
    /// A world where the stable version serves everything until a split is written.
    pub fn new(scenario: &'a Scenario, mut rng: Rng) -> Self {
        let ceiling = scenario.policy.latency_p95_ceiling_ms;
        let very_slow = scenario.policy.very_slow_ms();
        let given_slow = |latency: &LatencyModel| {
            let slow = latency.slower_than(ceiling);
            if slow > 0.0 {
                latency.slower_than(very_slow) / slow
            } else {
                0.0
            }
        };
        let approach = scenario.policy.approach_ms();
        let band = |latency: &LatencyModel| {
            (latency.slower_than(approach) - latency.slower_than(ceiling)).max(0.0)
        };
        let history_seed = rng.next_u64();
        World {
            history_rng: Rng::from_seed(history_seed),
            side: SideStreams {
                tail: Rng::from_seed(history_seed ^ TAIL_STREAM),
                approach: Rng::from_seed(history_seed ^ APPROACH_STREAM),
            },
            history_side: SideStreams {
                tail: Rng::from_seed(history_seed ^ HISTORY_TAIL_STREAM),
                approach: Rng::from_seed(history_seed ^ HISTORY_APPROACH_STREAM),
            },
            shared: HeldBursts::default(),
            approach_bands: (
                band(&scenario.baseline.latency),
                band(&scenario.candidate.latency),
            ),
            slow_rates: (
                scenario.baseline.latency.slower_than(ceiling),
                scenario.candidate.latency.slower_than(ceiling),
            ),
            very_slow_given_slow: (
                given_slow(&scenario.baseline.latency),
                given_slow(&scenario.candidate.latency),
            ),
            scenario,
            rng,
            splits: vec![(i64::MIN, 0.0)],
            minutes: Vec::new(),
        }
    }

    /// P(slower than the ceiling) for the baseline and the (changed) candidate.
    pub fn slow_rates(&self) -> (f64, f64) {
        self.slow_rates
    }

    /// The new version serves `share` (0..=1) from `at` on.
    pub fn set_share(&mut self, at: Timestamp, share: f64) {
        let at = at.millis_since(T0);
        self.splits.retain(|(t, _)| *t < at);
        self.splits.push((at, share.clamp(0.0, 1.0)));
    }

    /// Applies a deployment write of the gate: the new version's percent in `split`.
    pub fn apply_split(&mut self, at: Timestamp, split: &[VersionShare]) {
        let share = split
            .iter()
            .find(|v| v.version_id == NEW_VERSION)
            .map_or(0.0, |v| v.percent / 100.0);
        self.set_share(at, share);
    }

    /// The new version's share at `at`.
    pub fn share_at(&self, at: Timestamp) -> f64 {
        let at = at.millis_since(T0);
        self.splits
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map_or(0.0, |(_, s)| *s)
    }

    /// Generates every minute that has ended by `now`.
    pub fn advance_to(&mut self, now: Timestamp) {
        let complete = minute_of(now).max(0);
        while (self.minutes.len() as i64) < complete {
            let minute = self.generate(self.minutes.len() as u32);
            self.minutes.push(minute);
        }
    }

    fn mean_share(&self, minute: u32) -> f64 {
        let start = i64::from(minute) * MINUTE_MS;
        let end = start + MINUTE_MS;
        let mut total = 0.0;
        for (i, (from, share)) in self.splits.iter().enumerate() {
            let to = self.splits.get(i + 1).map_or(i64::MAX, |(t, _)| *t);
            let overlap = to.min(end) - (*from).max(start);
            if overlap > 0 {
                total += share * overlap as f64;
            }
        }
        total / MINUTE_MS as f64
    }

    fn generate(&mut self, minute: u32) -> Minute {
        let sc = self.scenario;
        let od = &sc.overdispersion;
        let share = self.mean_share(minute);
        let rng = &mut self.rng;
        let mean_requests = sc.rps_at(minute) * 60.0 * rng.gamma_mean_one(od.requests);
        let total = rng.poisson(mean_requests);
        let new_requests = rng.binomial(total, share);
        let old_requests = total - new_requests;
        let changed = sc.candidate_changes_at_min.is_none_or(|at| minute >= at);
        let candidate = sc.candidate_at(minute);
        let (base_slow, cand_slow) = self.slow_rates;
        let (base_tail, cand_tail) = self.very_slow_given_slow;
        let (base_band, cand_band) = self.approach_bands;
        let base = Rates {
            error: sc.baseline.error_rate,
            slow: base_slow,
            very_slow_given_slow: base_tail,
            approach_band: base_band,
        };
        let new_rates = if changed {
            Rates {
                error: candidate.error_rate,
                slow: cand_slow,
                very_slow_given_slow: cand_tail,
                approach_band: cand_band,
            }
        } else {
            Rates {
                error: candidate.error_rate,
                ..base
            }
        };
        let at = i64::from(minute);
        let shared = (
            self.shared.errors(rng, od, at),
            self.shared.slow(rng, od, at),
        );
        let side = &mut self.side;
        // A burst of slowness moves the approaching band with the slow requests.
        let mut draw = |requests: u64, rates: Rates| {
            let e = shared.0 * rng.gamma_mean_one(od.per_version);
            let s = shared.1 * rng.gamma_mean_one(od.per_version);
            let burst = Rates {
                error: rates.error * e,
                slow: rates.slow * s,
                approach_band: rates.approach_band * s,
                ..rates
            };
            TrueCounts::draw(rng, side, requests, burst)
        };
        let new = draw(new_requests, new_rates);
        let old = draw(old_requests, base);
        let stored_new = self.sample(new);
        let stored_old = self.sample(old);
        let expected_bad = new.requests as f64 * (sc.baseline.error_rate + base_slow);
        Minute {
            share,
            new,
            old,
            stored_new,
            stored_old,
            candidate_changed: changed && !sc.is_healthy(),
            excess_bad: (new.errors + new.slow) as f64 - expected_bad,
        }
    }

    /// Analytics Engine keeps each event with probability 1/interval.
    fn sample(&mut self, counts: TrueCounts) -> TrueCounts {
        let interval = self.scenario.sample_interval;
        if interval <= 1.0 {
            return counts;
        }
        counts.thinned(&mut self.rng, &mut self.side, 1.0 / interval)
    }

    /// The counts a query at tick `tick` reads for `minute`: stored rows × interval, and the
    /// rows, thinned when a late-data fault says the minute has not fully arrived.
    pub fn read_minute(&mut self, minute: u32, tick: u32) -> (VersionCounts, VersionCounts) {
        let lag = self.scenario.policy.ingestion_lag_minutes;
        let arrived = self
            .scenario
            .fault_at(tick, |f| match f {
                Fault::LateData {
                    extra_lag_min,
                    arrived_fraction,
                    ..
                } => Some((*extra_lag_min, *arrived_fraction)),
                _ => None,
            })
            .filter(|(extra, _)| i64::from(minute) + i64::from(lag + extra) >= i64::from(tick))
            .map(|(_, fraction)| fraction);
        let Some(m) = self.minutes.get(minute as usize) else {
            return Default::default();
        };
        let (mut new, mut old) = (m.stored_new, m.stored_old);
        if let Some(fraction) = arrived {
            new = new.thinned(&mut self.rng, &mut self.side, fraction);
            old = old.thinned(&mut self.rng, &mut self.side, fraction);
        }
        let interval = self.scenario.sample_interval;
        (weighted(new, interval), weighted(old, interval))
    }

    /// Answers the gate's counts query at tick `tick`.
    pub fn counts(&mut self, q: &CountsQuery, tick: u32) -> Fetched<CountsWindow> {
        if self.metrics_down(tick) {
            return Fetched::Failed {
                why: "Analytics Engine SQL API answered 503 (simulated outage)".into(),
            };
        }
        let from = minute_of(q.from).max(0);
        let to = minute_of(q.to).min(self.minutes.len() as i64);
        let mut minutes = Vec::new();
        for minute in from..to {
            let (new, old) = self.read_minute(minute as u32, tick);
            if new.requests + old.requests > 0.0 {
                minutes.push(MinuteCounts {
                    minute: T0.plus_minutes(minute),
                    new,
                    old,
                    sample_interval: self.scenario.sample_interval,
                });
            }
        }
        let latency_from = minute_of(q.latency_from).max(0);
        let (new_latency, old_latency) = self.latency(latency_from as u32, to.max(0) as u32);
        Fetched::Ok(CountsWindow {
            from: q.from,
            to: q.to,
            minutes,
            new_latency,
            old_latency,
        })
    }

    /// Answers the gate's baseline-history query at tick `tick`: the stable version alone,
    /// at the first traffic level, its rates × `history_drift`, with the run's
    /// overdispersion and sampling (an outage at `tick` fails it like any query).
    pub fn history(&mut self, q: &CountsQuery, tick: u32) -> Fetched<CountsWindow> {
        if self.metrics_down(tick) {
            return Fetched::Failed {
                why: "Analytics Engine SQL API answered 503 (simulated outage)".into(),
            };
        }
        let sc = self.scenario;
        let od = &sc.overdispersion;
        let rng = &mut self.history_rng;
        let error_rate = sc.baseline.error_rate * sc.history_drift;
        let slow_rate = self.slow_rates.0 * sc.history_drift;
        let interval = sc.sample_interval;
        let mut minutes = Vec::new();
        let mut shared = HeldBursts::default();
        for minute in minute_of(q.from)..minute_of(q.to) {
            let mean_requests = sc.rps_at(0) * 60.0 * rng.gamma_mean_one(od.requests);
            let requests = rng.poisson(mean_requests);
            let e = shared.errors(rng, od, minute) * rng.gamma_mean_one(od.per_version);
            let s = shared.slow(rng, od, minute) * rng.gamma_mean_one(od.per_version);
            let rates = Rates {
                error: error_rate * e,
                slow: slow_rate * s,
                very_slow_given_slow: self.very_slow_given_slow.0,
                approach_band: self.approach_bands.0 * sc.history_drift * s,
            };
            let side = &mut self.history_side;
            let mut stored = TrueCounts::draw(rng, side, requests, rates);
            if interval > 1.0 {
                stored = stored.thinned(rng, side, 1.0 / interval);
            }
            if stored.requests > 0 {
                minutes.push(MinuteCounts {
                    minute: T0.plus_minutes(minute),
                    new: VersionCounts::default(),
                    old: weighted(stored, interval),
                    sample_interval: interval,
                });
            }
        }
        Fetched::Ok(CountsWindow {
            from: q.from,
            to: q.to,
            minutes,
            new_latency: VersionLatency::default(),
            old_latency: VersionLatency::default(),
        })
    }

    /// Each version's request count and sampled p95 over minutes `[from, to)`.
    pub fn latency(&mut self, from: u32, to: u32) -> (VersionLatency, VersionLatency) {
        self.quantiles(from, to, 0.95)
    }

    /// Each version's requests and sampled `p` quantile over `[from, to)` (reported in the
    /// `p95_ms` field whatever `p` is; Flagger's check asks for p99).
    pub fn quantiles(&mut self, from: u32, to: u32, p: f64) -> (VersionLatency, VersionLatency) {
        let sc = self.scenario;
        let interval = sc.sample_interval;
        let (mut new_base, mut new_cand, mut old) = (0.0, 0.0, 0.0);
        for m in self.minutes.iter().take(to as usize).skip(from as usize) {
            if m.candidate_changed {
                new_cand += m.stored_new.requests as f64;
            } else {
                new_base += m.stored_new.requests as f64;
            }
            old += m.stored_old.requests as f64;
        }
        let base: &LatencyModel = &sc.baseline.latency;
        let cand: &LatencyModel = &sc.candidate.latency;
        let rng = &mut self.rng;
        let mut version = |parts: &[(f64, &LatencyModel)]| {
            let rows: f64 = parts.iter().map(|(w, _)| w).sum();
            VersionLatency {
                requests: rows * interval,
                p95_ms: (rows > 0.0).then(|| sampled_quantile(parts, p, rows, rng)),
            }
        };
        let new = version(&[(new_base, base), (new_cand, cand)]);
        let old = version(&[(old, base)]);
        (new, old)
    }

    /// Whether the metrics source is down at tick `tick`.
    pub fn metrics_down(&self, tick: u32) -> bool {
        self.scenario.metrics_down(tick)
    }

    /// The new version's `/healthz` at tick `tick`.
    pub fn probe(&self, tick: u32) -> Probe {
        let down = self.scenario.fault_at(tick, |f| {
            matches!(f, Fault::HealthzDown { .. }).then_some(())
        });
        match down {
            Some(()) => Probe::Failed {
                status: Some(503),
                error: Some("simulated /healthz failure".into()),
            },
            None => Probe::Ok,
        }
    }

    /// The live deployment as the API would show it at `now` (`written` = the gate's last
    /// confirmed split, so reads never look like drift).
    pub fn read_deployment(&self, tick: u32, written: &[VersionShare]) -> Fetched<LiveDeployment> {
        let down = self.scenario.fault_at(tick, |f| {
            matches!(f, Fault::DeploymentReadDown { .. }).then_some(())
        });
        if down.is_some() {
            return Fetched::Failed {
                why: "deployments API answered 502 (simulated)".into(),
            };
        }
        Fetched::Ok(LiveDeployment {
            versions: written.to_vec(),
            message: Some(format!("{} simulated", crate::rollout::MESSAGE_PREFIX)),
            ..LiveDeployment::default()
        })
    }

    /// Queue metrics at tick `tick`, when the scenario has a queue.
    pub fn queue(&mut self, tick: u32) -> Option<Fetched<QueueMetrics>> {
        let q = self.scenario.queue.as_ref()?;
        if self.metrics_down(tick) {
            return Some(Fetched::Failed {
                why: "Analytics Engine SQL API answered 503 (simulated outage)".into(),
            });
        }
        Some(Fetched::Ok(QueueMetrics {
            depth: self.rng.poisson(q.depth) as f64,
            retries_per_minute: self.rng.poisson(q.retries_per_minute) as f64,
        }))
    }
}

/// What the counts query reports for stored counts `c`: `SUM(_sample_interval)` of each, and
/// the rows themselves.
fn weighted(c: TrueCounts, interval: f64) -> VersionCounts {
    VersionCounts {
        requests: c.requests as f64 * interval,
        errors: c.errors as f64 * interval,
        slow: c.slow as f64 * interval,
        very_slow: c.very_slow as f64 * interval,
        approaching: c.approaching as f64 * interval,
        stored: StoredRows {
            rows: c.requests as f64,
            errors: c.errors as f64,
            slow: c.slow as f64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            r#"{{"name": "t", "rps": 10, "minutes": 30 {extra},
            "baseline": {{"error_rate": 0.01, "latency": {{"median_ms": 80, "p95_ms": 200}}}},
            "candidate": {{"error_rate": 0.05, "latency": {{"median_ms": 80, "p95_ms": 200}}}}}}"#
        );
        Scenario::from_json(&text).expect("valid scenario")
    }

    #[test]
    fn shared_bursts_are_held_for_their_minutes_and_drawn_once_a_minute_by_default() {
        let held = scenario(r#", "overdispersion": {"shared": 0.25, "shared_minutes": 10}"#);
        let od = &held.overdispersion;
        let mut bursts = HeldBursts::default();
        let mut rng = Rng::from_seed(9);
        let first: Vec<f64> = (0..20).map(|m| bursts.errors(&mut rng, od, m)).collect();
        assert!(first[..10].iter().all(|f| *f == first[0]), "{first:?}");
        assert!(first[10..].iter().all(|f| *f == first[10]), "{first:?}");
        assert_ne!(first[0], first[10]);
        // The window before the deploy hook: blocks end at minute 0.
        assert_ne!(bursts.errors(&mut rng, od, -1), first[0]);
        // One minute each: one draw a minute, in the order asked, as before holding existed.
        let plain = scenario(r#", "overdispersion": {"shared": 0.25}"#);
        let (mut a, mut b) = (Rng::from_seed(3), Rng::from_seed(3));
        let mut bursts = HeldBursts::default();
        for m in 0..5 {
            assert_eq!(
                bursts.errors(&mut a, &plain.overdispersion, m),
                b.gamma_mean_one(0.25)
            );
            assert_eq!(
                bursts.slow(&mut a, &plain.overdispersion, m),
                b.gamma_mean_one(0.25)
            );
        }
        let zero = r#"{"name": "t", "rps": 10, "minutes": 30,
            "overdispersion": {"shared": 0.25, "shared_minutes": 0},
            "baseline": {"error_rate": 0.01, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate": {"error_rate": 0.01, "latency": {"median_ms": 80, "p95_ms": 200}}}"#;
        let err = Scenario::from_json(zero).expect_err("0 minutes is no burst");
        assert!(
            err.to_string().contains("overdispersion.shared_minutes"),
            "{err}"
        );
    }

    #[test]
    fn a_write_mid_minute_gives_that_minute_a_mixed_share() {
        let sc = scenario("");
        let mut world = World::new(&sc, Rng::from_seed(1));
        world.set_share(tick_time(0), 0.1);
        world.set_share(tick_time(10), 0.5);
        world.advance_to(tick_time(12));
        assert_eq!(world.minutes.len(), 12);
        assert!((world.minutes[5].share - 0.1).abs() < 1e-9);
        let mixed = 0.1 * 0.05 + 0.5 * 0.95;
        assert!((world.minutes[10].share - mixed).abs() < 1e-9);
        assert!((world.minutes[0].share - 0.095).abs() < 1e-9);
    }

    #[test]
    fn very_slow_requests_are_a_sampled_part_of_the_slow_ones_at_the_models_rate() {
        let text = r#"{"name": "t", "rps": 100, "minutes": 30, "sample_interval": 2,
            "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200,
                "tail": {"fraction": 0.02, "median_ms": 1000, "p95_ms": 2500}}}}"#;
        let sc = Scenario::from_json(text).expect("valid scenario");
        let mut world = World::new(&sc, Rng::from_seed(4));
        world.set_share(tick_time(0), 0.5);
        world.advance_to(tick_time(30));
        let (mut true_new, mut stored_new, mut old) = (0, 0, 0);
        for m in &world.minutes[1..] {
            for c in [m.new, m.old, m.stored_new, m.stored_old] {
                assert!(c.very_slow <= c.slow, "{c:?}");
            }
            true_new += m.new.very_slow;
            stored_new += m.stored_new.very_slow;
            old += m.old.very_slow;
        }
        // 29 minutes × 3000 new-version requests × ~1% over 1 s (half of the 2% tail); the
        // baseline's body almost never gets there; sampling keeps about half.
        let expected = 29.0 * 3000.0 * sc.candidate.latency.slower_than(1000.0);
        assert!(
            (true_new as f64 - expected).abs() < 5.0 * expected.sqrt(),
            "{true_new}"
        );
        assert!(old <= 2, "{old}");
        let kept = stored_new as f64 / true_new as f64;
        assert!((kept - 0.5).abs() < 0.1, "{kept}");
    }

    #[test]
    fn approaching_requests_hold_the_slow_ones_and_come_at_the_models_rate_sampled_or_not() {
        let text = r#"{"name": "t", "rps": 100, "minutes": 30, "sample_interval": 2,
            "baseline": {"error_rate": 0.001, "latency": {"median_ms": 80, "p95_ms": 200}},
            "candidate": {"error_rate": 0.001, "latency": {"median_ms": 100, "p95_ms": 250}}}"#;
        let sc = Scenario::from_json(text).expect("valid scenario");
        let mut world = World::new(&sc, Rng::from_seed(5));
        world.set_share(tick_time(0), 0.5);
        world.advance_to(tick_time(30));
        let (mut new, mut stored_new, mut old, mut new_requests, mut old_requests) =
            (0, 0, 0, 0, 0);
        for m in &world.minutes[1..] {
            for c in [m.new, m.old, m.stored_new, m.stored_old] {
                assert!(
                    c.slow <= c.approaching && c.approaching <= c.requests,
                    "{c:?}"
                );
            }
            new += m.new.approaching;
            stored_new += m.stored_new.approaching;
            old += m.old.approaching;
            new_requests += m.new.requests;
            old_requests += m.old.requests;
        }
        // Over 125 ms: 34% of the candidate's requests, 21% of the baseline's.
        for (count, requests, latency) in [
            (new, new_requests, &sc.candidate.latency),
            (old, old_requests, &sc.baseline.latency),
        ] {
            let expected = requests as f64 * latency.slower_than(125.0);
            assert!(
                (count as f64 - expected).abs() < 5.0 * expected.sqrt(),
                "{count} vs {expected}"
            );
        }
        let kept = stored_new as f64 / new as f64;
        assert!((kept - 0.5).abs() < 0.05, "{kept}");
        // The window before the deploy hook: the baseline's rate, at the first traffic level.
        let q = CountsQuery {
            new_version: NEW_VERSION.into(),
            old_version: OLD_VERSION.into(),
            from: T0.plus_minutes(-60),
            to: T0,
            latency_from: T0,
            slow_above_ms: 250.0,
            very_slow_above_ms: 1000.0,
            approach_above_ms: 125.0,
        };
        let Fetched::Ok(window) = world.history(&q, 0) else {
            panic!("the history read failed");
        };
        let (approaching, requests) = window.minutes.iter().fold((0.0, 0.0), |(a, r), m| {
            assert!(m.old.slow <= m.old.approaching);
            (a + m.old.approaching, r + m.old.requests)
        });
        let expected = requests * sc.baseline.latency.slower_than(125.0);
        assert!(
            (approaching - expected).abs() < 2.0 * 5.0 * (expected / 2.0).sqrt(),
            "{approaching} vs {expected}"
        );
    }

    #[test]
    fn chosen_among_is_hypergeometric() {
        let mut rng = Rng::from_seed(5);
        let draws: Vec<u64> = (0..20_000)
            .map(|_| chosen_among(&mut rng, 30, 100, 20))
            .collect();
        assert!(draws.iter().all(|&d| d <= 20));
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        // Mean 30 × 20 / 100 = 6; variance 6 × 0.8 × 70/99 ≈ 3.39.
        assert!((mean - 6.0).abs() < 0.06, "{mean}");
        let var = draws
            .iter()
            .map(|&d| (d as f64 - mean).powi(2))
            .sum::<f64>()
            / 20_000.0;
        assert!((var - 3.39).abs() < 0.2, "{var}");
        assert_eq!(chosen_among(&mut rng, 100, 100, 20), 20);
        assert_eq!(chosen_among(&mut rng, 0, 100, 20), 0);
    }

    #[test]
    fn sampled_counts_are_multiples_of_the_interval() {
        let sc = scenario(r#", "sample_interval": 4"#);
        let mut world = World::new(&sc, Rng::from_seed(2));
        world.set_share(tick_time(0), 0.5);
        world.advance_to(tick_time(20));
        for minute in 1..19 {
            let (new, old) = world.read_minute(minute, 20);
            for c in [new.requests, new.errors, old.requests, old.slow] {
                assert_eq!(c % 4.0, 0.0);
            }
        }
    }

    #[test]
    fn sampling_keeps_whole_requests_so_bad_rows_never_outnumber_rows() {
        // 5xx at 30%, 3 requests a minute per version, sampled at 4: the kept 5xx are among
        // the kept requests, so no minute reports more 5xx rows than rows.
        let sc = Scenario::from_json(
            r#"{"name": "t", "rps": 0.1, "minutes": 400, "sample_interval": 4,
            "baseline": {"error_rate": 0.3, "latency": {"median_ms": 200, "p95_ms": 400}},
            "candidate": {"error_rate": 0.3, "latency": {"median_ms": 200, "p95_ms": 400}}}"#,
        )
        .expect("valid scenario");
        let mut world = World::new(&sc, Rng::from_seed(7));
        world.set_share(tick_time(0), 0.5);
        world.advance_to(tick_time(400));
        let (mut rows, mut requests) = (0.0, 0.0);
        for minute in 0..398 {
            let (new, old) = world.read_minute(minute, 400);
            for c in [new, old] {
                let stored = c.stored;
                assert!(
                    stored.errors <= stored.rows && stored.slow <= stored.rows,
                    "{c:?}"
                );
                assert_eq!(
                    (stored.rows * 4.0, stored.errors * 4.0),
                    (c.requests, c.errors)
                );
                rows += stored.rows;
            }
            let m = &world.minutes[minute as usize];
            requests += (m.new.requests + m.old.requests) as f64;
        }
        let kept = rows / requests;
        assert!((kept - 0.25).abs() < 0.05, "{kept}");
    }

    #[test]
    fn an_outage_fails_the_query_and_late_data_thins_the_newest_minutes() {
        let sc = scenario(
            r#", "faults": [{"kind": "metrics_down", "from_min": 5, "to_min": 7},
            {"kind": "late_data", "from_min": 10, "to_min": 12, "extra_lag_min": 1, "arrived_fraction": 0.0}]"#,
        );
        let mut world = World::new(&sc, Rng::from_seed(3));
        world.set_share(tick_time(0), 0.5);
        world.advance_to(tick_time(11));
        let q = CountsQuery {
            new_version: NEW_VERSION.into(),
            old_version: OLD_VERSION.into(),
            from: T0,
            to: T0.plus_minutes(9),
            latency_from: T0.plus_minutes(4),
            slow_above_ms: 250.0,
            very_slow_above_ms: 1000.0,
            approach_above_ms: 125.0,
        };
        assert!(matches!(world.counts(&q, 5), Fetched::Failed { .. }));
        let Fetched::Ok(window) = world.counts(&q, 11) else {
            panic!("query should answer at minute 11");
        };
        // Lag 2 + 1 extra: at tick 11, minute 8 has not arrived (fraction 0); minute 7 has.
        let minutes: Vec<i64> = window.minutes.iter().map(|m| minute_of(m.minute)).collect();
        assert_eq!(minutes, (0..8).collect::<Vec<_>>());
        assert!(window.new_latency.p95_ms.is_some());
    }
}
