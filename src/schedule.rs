//! The rollout schedule: the percentages the new version steps through, how long each step
//! dwells at least and at most, and the validation that turns a raw request into a `Schedule`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most steps a schedule may have. Each step is a deployment write and at least a minute of
/// watching; more than this is almost certainly a mistake in the request.
pub const MAX_STEPS: usize = 10;

/// A traffic share in hundredths of a percent (`1000` = 10%), so two-decimal percentages
/// are exact and the old version's complement (`100 − p`) never picks up float noise.
/// Invariant for schedule steps: `1..=10_000` (the deployments API takes 0.01..=100,
/// platform reference §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(u32);

impl Percent {
    /// 100%.
    pub const FULL: Percent = Percent(10_000);

    /// From hundredths of a percent (`1025` = 10.25%).
    pub const fn from_hundredths(hundredths: u32) -> Self {
        Percent(hundredths)
    }

    /// Hundredths of a percent.
    pub const fn hundredths(self) -> u32 {
        self.0
    }

    /// The share as a percentage number for the API body (`10.25`).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// `100 − self`, the old version's share during a split (zero at 100%).
    pub const fn complement(self) -> Percent {
        Percent(10_000u32.saturating_sub(self.0))
    }

    /// Parses a request percentage: `None` when it is not finite, not in `(0, 100]`, or has
    /// more than two decimals.
    pub fn from_f64(percent: f64) -> Option<Percent> {
        let scaled = percent * 100.0;
        let rounded = scaled.round();
        // 1e-6 hundredths absorbs binary noise in e.g. 10.1 * 100 without letting 10.001 through.
        if !percent.is_finite() || (scaled - rounded).abs() > 1e-6 {
            return None;
        }
        if !(1.0..=10_000.0).contains(&rounded) {
            return None;
        }
        // In range 1..=10_000 just checked, so the cast is exact.
        Some(Percent(rounded as u32))
    }
}

impl fmt::Display for Percent {
    /// `10%`, `10.5%`, `10.25%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            _ if frac % 10 == 0 => write!(f, "{whole}.{}%", frac / 10),
            _ => write!(f, "{whole}.{frac:02}%"),
        }
    }
}

/// One validated step: the new version's share and how long it stays there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The new version's traffic share while this step is live.
    pub percent: Percent,
    /// Minimum minutes at this share (counted from the split being confirmed live) before
    /// the step may be promoted. For the final 100% step this is the bake.
    pub dwell_minutes: u32,
    /// Minutes after which a step still lacking evidence pauses the rollout (≥ dwell).
    pub max_minutes: u32,
}

/// A validated schedule. Invariants: 1..=`MAX_STEPS` steps, percents strictly increasing,
/// the last at 100% (its dwell is the bake), every dwell ≥ 1 minute, max ≥ dwell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    steps: Vec<Step>,
}

/// A schedule as it arrives in the deploy hook, before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Steps in order; the last must be 100 (its dwell is the bake at 100%).
    pub steps: Vec<StepRequest>,
}

/// One raw step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// New version's share in percent, `(0, 100]`, at most two decimals.
    pub percent: f64,
    /// Minimum dwell in minutes, ≥ 1.
    pub dwell_minutes: u32,
    /// Maximum minutes without enough evidence before pausing; default 3 × dwell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_minutes: Option<u32>,
}

/// Why a schedule request was refused. Indexes are 0-based positions in `steps`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// No steps at all.
    #[error("schedule has no steps; give at least one, ending at 100%")]
    Empty,
    /// More steps than `MAX_STEPS`.
    #[error("schedule has {count} steps; at most {max} are allowed")]
    TooManySteps { count: usize, max: usize },
    /// A percent outside `(0, 100]` (or not a number).
    #[error("step {index}: percent {percent} is outside (0, 100]")]
    OutOfRange { index: usize, percent: f64 },
    /// A percent with more than two decimals (the deployments API precision).
    #[error("step {index}: percent {percent} has more than 2 decimals")]
    TooPrecise { index: usize, percent: f64 },
    /// A percent not above the previous step's.
    #[error("step {index}: percent {percent} is not above the previous step's {previous}")]
    NotIncreasing {
        index: usize,
        percent: f64,
        previous: f64,
    },
    /// The final step is not 100%.
    #[error("the last step is {percent}%; a schedule must end at 100%")]
    LastNotFull { percent: f64 },
    /// A dwell shorter than one minute (the gate decides once a minute).
    #[error("step {index}: dwell of {dwell_minutes} min is under the 1 min minimum")]
    DwellTooShort { index: usize, dwell_minutes: u32 },
    /// A maximum shorter than the dwell.
    #[error(
        "step {index}: max of {max_minutes} min is shorter than its dwell of {dwell_minutes} min"
    )]
    MaxBelowDwell {
        index: usize,
        max_minutes: u32,
        dwell_minutes: u32,
    },
}

/// Default maximum time per step as a multiple of its dwell.
pub const DEFAULT_MAX_DWELL_FACTOR: u32 = 3;

impl Schedule {
    /// Validates a raw schedule.
    ///
    /// # Errors
    /// The first problem found, as a `ScheduleError` with the step index and values.
    pub fn from_request(request: &ScheduleRequest) -> Result<Schedule, ScheduleError> {
        let raw = &request.steps;
        if raw.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if raw.len() > MAX_STEPS {
            return Err(ScheduleError::TooManySteps {
                count: raw.len(),
                max: MAX_STEPS,
            });
        }
        let mut steps: Vec<Step> = Vec::with_capacity(raw.len());
        for (index, step) in raw.iter().enumerate() {
            let percent = parse_percent(index, step.percent)?;
            if let Some(prev) = steps.last() {
                if percent <= prev.percent {
                    return Err(ScheduleError::NotIncreasing {
                        index,
                        percent: step.percent,
                        previous: prev.percent.as_f64(),
                    });
                }
            }
            if step.dwell_minutes < 1 {
                return Err(ScheduleError::DwellTooShort {
                    index,
                    dwell_minutes: step.dwell_minutes,
                });
            }
            let max_minutes = step
                .max_minutes
                .unwrap_or(step.dwell_minutes.saturating_mul(DEFAULT_MAX_DWELL_FACTOR));
            if max_minutes < step.dwell_minutes {
                return Err(ScheduleError::MaxBelowDwell {
                    index,
                    max_minutes,
                    dwell_minutes: step.dwell_minutes,
                });
            }
            steps.push(Step {
                percent,
                dwell_minutes: step.dwell_minutes,
                max_minutes,
            });
        }
        match steps.last() {
            Some(last) if last.percent == Percent::FULL => Ok(Schedule { steps }),
            _ => Err(ScheduleError::LastNotFull {
                percent: raw.last().map_or(0.0, |s| s.percent),
            }),
        }
    }

    /// The steps, in order (never empty; the last is 100%).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Step `index`, if it exists.
    pub fn step(&self, index: usize) -> Option<&Step> {
        self.steps.get(index)
    }

    /// Index of the final (100%, bake) step.
    pub fn last_index(&self) -> usize {
        self.steps.len().saturating_sub(1)
    }
}

impl Default for Schedule {
    /// 10% for 10 min → 50% for 10 min → 100% with a 10 min bake; each step may hold up to
    /// 30 min for evidence before the rollout pauses.
    fn default() -> Self {
        let step = |hundredths, dwell| Step {
            percent: Percent(hundredths),
            dwell_minutes: dwell,
            max_minutes: dwell * DEFAULT_MAX_DWELL_FACTOR,
        };
        Schedule {
            steps: vec![step(1_000, 10), step(5_000, 10), step(10_000, 10)],
        }
    }
}

fn parse_percent(index: usize, percent: f64) -> Result<Percent, ScheduleError> {
    if !percent.is_finite() || percent <= 0.0 || percent > 100.0 {
        return Err(ScheduleError::OutOfRange { index, percent });
    }
    Percent::from_f64(percent).ok_or(ScheduleError::TooPrecise { index, percent })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(steps: &[(f64, u32)]) -> ScheduleRequest {
        ScheduleRequest {
            steps: steps
                .iter()
                .map(|&(percent, dwell_minutes)| StepRequest {
                    percent,
                    dwell_minutes,
                    max_minutes: None,
                })
                .collect(),
        }
    }

    #[test]
    fn default_is_ten_fifty_hundred_ten_minutes_each() {
        let schedule = Schedule::default();
        let shape: Vec<(u32, u32, u32)> = schedule
            .steps()
            .iter()
            .map(|s| (s.percent.hundredths(), s.dwell_minutes, s.max_minutes))
            .collect();
        assert_eq!(
            shape,
            vec![(1_000, 10, 30), (5_000, 10, 30), (10_000, 10, 30)]
        );
        let same = Schedule::from_request(&request(&[(10.0, 10), (50.0, 10), (100.0, 10)]));
        assert_eq!(same, Ok(schedule));
    }

    #[test]
    fn accepts_two_decimal_percents_exactly() {
        let schedule =
            Schedule::from_request(&request(&[(0.01, 1), (10.25, 1), (100.0, 1)])).expect("valid");
        let first = schedule.steps()[0].percent;
        assert_eq!(first.hundredths(), 1);
        assert_eq!(schedule.steps()[1].percent.complement().as_f64(), 89.75);
        assert_eq!(schedule.steps()[1].percent.to_string(), "10.25%");
    }

    #[test]
    fn each_invalid_schedule_is_refused_with_its_reason() {
        let too_many: Vec<(f64, u32)> = (1..=11).map(|i| (f64::from(i) * 9.0, 1)).collect();
        let cases: Vec<(&str, ScheduleRequest, ScheduleError)> = vec![
            ("empty", request(&[]), ScheduleError::Empty),
            (
                "too many steps",
                request(&too_many),
                ScheduleError::TooManySteps { count: 11, max: 10 },
            ),
            (
                "zero percent",
                request(&[(0.0, 1), (100.0, 1)]),
                ScheduleError::OutOfRange {
                    index: 0,
                    percent: 0.0,
                },
            ),
            (
                "over 100",
                request(&[(10.0, 1), (100.5, 1)]),
                ScheduleError::OutOfRange {
                    index: 1,
                    percent: 100.5,
                },
            ),
            (
                "three decimals",
                request(&[(10.125, 1), (100.0, 1)]),
                ScheduleError::TooPrecise {
                    index: 0,
                    percent: 10.125,
                },
            ),
            (
                "not increasing",
                request(&[(50.0, 1), (50.0, 1), (100.0, 1)]),
                ScheduleError::NotIncreasing {
                    index: 1,
                    percent: 50.0,
                    previous: 50.0,
                },
            ),
            (
                "last not 100",
                request(&[(10.0, 1), (50.0, 1)]),
                ScheduleError::LastNotFull { percent: 50.0 },
            ),
            (
                "dwell under a minute",
                request(&[(10.0, 0), (100.0, 1)]),
                ScheduleError::DwellTooShort {
                    index: 0,
                    dwell_minutes: 0,
                },
            ),
        ];
        for (name, req, want) in cases {
            assert_eq!(Schedule::from_request(&req), Err(want), "{name}");
        }
    }

    #[test]
    fn nan_percent_is_out_of_range() {
        let got = Schedule::from_request(&request(&[(f64::NAN, 1), (100.0, 1)]));
        assert!(matches!(
            got,
            Err(ScheduleError::OutOfRange { index: 0, .. })
        ));
    }

    #[test]
    fn max_below_dwell_is_refused() {
        let mut req = request(&[(10.0, 5), (100.0, 5)]);
        req.steps[0].max_minutes = Some(4);
        assert_eq!(
            Schedule::from_request(&req),
            Err(ScheduleError::MaxBelowDwell {
                index: 0,
                max_minutes: 4,
                dwell_minutes: 5
            })
        );
    }

    #[test]
    fn errors_read_as_sentences_with_the_numbers() {
        let err = ScheduleError::NotIncreasing {
            index: 2,
            percent: 40.0,
            previous: 50.0,
        };
        assert_eq!(
            err.to_string(),
            "step 2: percent 40 is not above the previous step's 50"
        );
    }

    #[test]
    fn unknown_fields_in_a_request_are_rejected() {
        let json = r#"{"steps":[{"percent":100,"dwell_minutes":5,"pct":1}]}"#;
        assert!(serde_json::from_str::<ScheduleRequest>(json).is_err());
    }
}
