//! Traffic splits: the 1–2 versions summing to 100% that every deployment carries, as
//! the gate sends them and as it compares them with what is live (drift).

use super::CloudflareError;
use crate::clients::is_uuid;
use serde::{Deserialize, Serialize, Serializer};

/// One version's share of traffic in a deployment, as the API spells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionShare {
    /// Worker version id (UUID).
    pub version_id: String,
    /// Share of traffic in percent, `0..=100`.
    #[serde(serialize_with = "serialize_percentage")]
    pub percentage: f64,
}

/// Whole percentages go out as integers (`10`, not `10.0`), as wrangler sends them.
fn serialize_percentage<S: Serializer>(p: &f64, s: S) -> Result<S::Ok, S::Error> {
    if p.fract() == 0.0 && (0.0..=100.0).contains(p) {
        s.serialize_u64(*p as u64)
    } else {
        s.serialize_f64(*p)
    }
}

/// Sum tolerance for a split, as wrangler allows (±0.001).
const SPLIT_SUM_TOLERANCE: f64 = 0.001;

/// A validated traffic split: one or two distinct versions (UUIDs), each `0..=100`,
/// summing to 100 (±0.001). Every deployment the gate creates carries the full split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<VersionShare>", into = "Vec<VersionShare>")]
pub struct Split {
    shares: Vec<VersionShare>,
}

impl Split {
    /// Validates `shares`.
    ///
    /// # Errors
    /// [`CloudflareError::InvalidVersionId`] for a non-UUID id;
    /// [`CloudflareError::InvalidSplit`] for zero or more than two versions, a repeated
    /// version, a share outside `0..=100` or not finite, or a sum other than 100.
    pub fn new(shares: Vec<VersionShare>) -> Result<Split, CloudflareError> {
        if shares.is_empty() || shares.len() > 2 {
            return Err(CloudflareError::InvalidSplit(format!(
                "a deployment holds 1 or 2 versions, not {}",
                shares.len()
            )));
        }
        for share in &shares {
            if !is_uuid(&share.version_id) {
                return Err(CloudflareError::InvalidVersionId(share.version_id.clone()));
            }
            if !share.percentage.is_finite() || !(0.0..=100.0).contains(&share.percentage) {
                return Err(CloudflareError::InvalidSplit(format!(
                    "percentage {} is outside 0..=100",
                    share.percentage
                )));
            }
        }
        if shares.len() == 2
            && shares[0]
                .version_id
                .eq_ignore_ascii_case(&shares[1].version_id)
        {
            return Err(CloudflareError::InvalidSplit(
                "the same version appears twice".into(),
            ));
        }
        let sum: f64 = shares.iter().map(|s| s.percentage).sum();
        if (sum - 100.0).abs() > SPLIT_SUM_TOLERANCE {
            return Err(CloudflareError::InvalidSplit(format!(
                "percentages sum to {sum}, not 100"
            )));
        }
        Ok(Split { shares })
    }

    /// `version_id` at 100%.
    ///
    /// # Errors
    /// As [`Split::new`].
    pub fn all(version_id: &str) -> Result<Split, CloudflareError> {
        Split::new(vec![VersionShare {
            version_id: version_id.to_string(),
            percentage: 100.0,
        }])
    }

    /// `new_version` at `new_percent`, `stable_version` at the rest; at 100% the stable
    /// version is left out (one entry), at 0% it keeps both (for override probes).
    ///
    /// # Errors
    /// As [`Split::new`].
    pub fn canary(
        new_version: &str,
        new_percent: f64,
        stable_version: &str,
    ) -> Result<Split, CloudflareError> {
        if new_percent == 100.0 {
            return Split::all(new_version);
        }
        Split::new(vec![
            VersionShare {
                version_id: new_version.to_string(),
                percentage: new_percent,
            },
            VersionShare {
                version_id: stable_version.to_string(),
                percentage: 100.0 - new_percent,
            },
        ])
    }

    /// The shares in sending order.
    pub fn shares(&self) -> &[VersionShare] {
        &self.shares
    }

    /// The share of `version_id` in percent (0 when absent).
    pub fn percent_of(&self, version_id: &str) -> f64 {
        self.shares
            .iter()
            .filter(|s| s.version_id.eq_ignore_ascii_case(version_id))
            .map(|s| s.percentage)
            .sum()
    }

    /// True when `shares` (e.g. a live deployment's) give every version the same share
    /// as this split, within the API's ±0.001 tolerance and in any order. Drift detection
    /// compares the live deployment with the split the gate last set this way.
    pub fn matches(&self, shares: &[VersionShare]) -> bool {
        let theirs = |id: &str| -> f64 {
            shares
                .iter()
                .filter(|s| s.version_id.eq_ignore_ascii_case(id))
                .map(|s| s.percentage)
                .sum()
        };
        let close = |a: f64, b: f64| (a - b).abs() <= SPLIT_SUM_TOLERANCE;
        self.shares
            .iter()
            .all(|s| close(s.percentage, theirs(&s.version_id)))
            && shares
                .iter()
                .all(|s| close(self.percent_of(&s.version_id), theirs(&s.version_id)))
    }
}

impl TryFrom<Vec<VersionShare>> for Split {
    type Error = CloudflareError;
    fn try_from(shares: Vec<VersionShare>) -> Result<Self, Self::Error> {
        Split::new(shares)
    }
}

impl From<Split> for Vec<VersionShare> {
    fn from(split: Split) -> Self {
        split.shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "11111111-1111-4111-8111-111111111111";
    const OLD: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn split_rules_table() {
        let share = |id: &str, p: f64| VersionShare {
            version_id: id.into(),
            percentage: p,
        };
        let cases: Vec<(Vec<VersionShare>, bool)> = vec![
            (vec![share(NEW, 100.0)], true),
            (vec![share(NEW, 10.0), share(OLD, 90.0)], true),
            (vec![share(NEW, 0.0), share(OLD, 100.0)], true),
            (vec![share(NEW, 33.3333), share(OLD, 66.6667)], true),
            (vec![share(NEW, 33.3333), share(OLD, 66.6657)], false),
            (vec![], false),
            (
                vec![share(NEW, 50.0), share(OLD, 50.0), share(NEW, 0.0)],
                false,
            ),
            (vec![share(NEW, 50.0), share(NEW, 50.0)], false),
            (vec![share(NEW, 90.0)], false),
            (vec![share(NEW, 110.0), share(OLD, -10.0)], false),
            (vec![share(NEW, f64::NAN), share(OLD, 100.0)], false),
            (vec![share("not-a-uuid", 100.0)], false),
        ];
        for (shares, ok) in cases {
            assert_eq!(Split::new(shares.clone()).is_ok(), ok, "{shares:?}");
        }
    }

    #[test]
    fn canary_at_full_share_drops_the_stable_version() {
        let split = Split::canary(NEW, 100.0, OLD).expect("valid");
        assert_eq!(split.shares().len(), 1);
        assert_eq!(split.percent_of(NEW), 100.0);
        let split = Split::canary(NEW, 10.0, OLD).expect("valid");
        assert_eq!(split.percent_of(OLD), 90.0);
    }

    #[test]
    fn split_matches_live_shares_in_any_order() {
        let split = Split::canary(NEW, 10.0, OLD).expect("valid");
        let live = |a: f64, b: f64| {
            vec![
                VersionShare {
                    version_id: OLD.into(),
                    percentage: a,
                },
                VersionShare {
                    version_id: NEW.into(),
                    percentage: b,
                },
            ]
        };
        assert!(split.matches(&live(90.0, 10.0)));
        assert!(split.matches(&live(90.0005, 9.9995)));
        assert!(!split.matches(&live(50.0, 50.0)));
        assert!(!split.matches(&live(100.0, 0.0)[..1]));
        let full = Split::all(NEW).expect("valid");
        assert!(full.matches(&live(0.0, 100.0)));
        assert!(!full.matches(&live(100.0, 0.0)));
    }

    #[test]
    fn split_refuses_invalid_json() {
        let bad = format!(r#"[{{"version_id":"{NEW}","percentage":60}}]"#);
        assert!(serde_json::from_str::<Split>(&bad).is_err());
        let good = format!(r#"[{{"version_id":"{NEW}","percentage":100}}]"#);
        let split: Split = serde_json::from_str(&good).expect("valid");
        assert_eq!(serde_json::to_string(&split).expect("json"), good);
    }
}
