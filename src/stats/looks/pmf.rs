//! The exact distribution of a count of bad events (`Pmf`), trimmed to where its mass is, that
//! the looks' boundaries are computed from, and its stored form (every mass's bits, base64).

use crate::base64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A distribution of a count over `offset..offset + mass.len()`; counts outside carry less
/// than `PMF_TRIM` of the largest mass (e⁻⁹⁰ ≈ 10⁻³⁹: nothing any level here can see), and
/// are dropped so that the looks' work grows with the spread of the counts, not their total.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pmf {
    pub(super) offset: u64,
    pub(super) mass: Vec<f64>,
}

/// ln of the share of the largest mass below which a `Pmf` drops a count.
const PMF_TRIM: f64 = -90.0;

impl Pmf {
    /// All mass at 0.
    pub(super) fn one() -> Self {
        Pmf {
            offset: 0,
            mass: vec![1.0],
        }
    }

    /// Binomial(n, p), computed in log space (no underflow at large n) and trimmed around
    /// its mode.
    pub(super) fn binomial(n: u64, p: f64) -> Self {
        let p = p.clamp(1e-300, 1.0 - 1e-16);
        let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
        let mut ln_fact = Vec::with_capacity(n as usize + 1);
        let mut acc = 0.0;
        ln_fact.push(0.0);
        for i in 1..=n {
            acc += (i as f64).ln();
            ln_fact.push(acc);
        }
        let n = n as usize;
        let ln_pmf = |k: usize| {
            ln_fact[n] - ln_fact[k] - ln_fact[n - k] + k as f64 * ln_p + (n - k) as f64 * ln_q
        };
        let mode = (((n + 1) as f64 * p).floor() as usize).min(n);
        let floor = ln_pmf(mode) + PMF_TRIM;
        let lo = (0..mode)
            .rev()
            .take_while(|&k| ln_pmf(k) >= floor)
            .last()
            .unwrap_or(mode);
        let hi = (mode + 1..=n)
            .take_while(|&k| ln_pmf(k) >= floor)
            .last()
            .unwrap_or(mode);
        Pmf {
            offset: lo as u64,
            mass: (lo..=hi).map(|k| ln_pmf(k).exp()).collect(),
        }
    }

    /// The distribution of the sum of two independent counts, trimmed.
    pub(super) fn convolve(&self, other: &Pmf) -> Pmf {
        let mut out = vec![0.0; self.mass.len() + other.mass.len() - 1];
        for (i, x) in self.mass.iter().enumerate() {
            if *x == 0.0 {
                continue;
            }
            // Slices zipped, not indexed: no bounds check per term (the Worker's build
            // optimizes for size and would not remove them).
            let row = &mut out[i..i + other.mass.len()];
            for (o, y) in row.iter_mut().zip(&other.mass) {
                *o += x * y;
            }
        }
        let floor = out.iter().copied().fold(0.0, f64::max) * PMF_TRIM.exp();
        let keep = |m: &f64| *m > 0.0 && *m >= floor;
        let first = out.iter().position(keep).unwrap_or(0);
        let last = out.iter().rposition(keep).unwrap_or(first);
        Pmf {
            offset: self.offset + other.offset + first as u64,
            mass: out[first..=last].to_vec(),
        }
    }

    /// One past the largest count kept.
    pub(super) fn end(&self) -> u64 {
        self.offset + self.mass.len() as u64
    }

    /// The mass at counts ≥ `count`.
    pub(super) fn mass_from(&self, count: u64) -> f64 {
        let skip = count.saturating_sub(self.offset) as usize;
        self.mass.iter().skip(skip).sum()
    }

    /// Removes the mass at counts ≥ `count` and returns it.
    pub(super) fn take_from(&mut self, count: u64) -> f64 {
        let skip = count.saturating_sub(self.offset) as usize;
        let mut taken = 0.0;
        for mass in self.mass.iter_mut().skip(skip) {
            taken += *mass;
            *mass = 0.0;
        }
        taken
    }

    /// Drops the zeros at the top (what `take_from` left): nothing reads them, and a
    /// convolution adds nothing from them, so the distribution stays what it was bit for bit.
    pub(super) fn drop_top_zeros(&mut self) {
        let keep = self
            .mass
            .iter()
            .rposition(|m| *m != 0.0)
            .map_or(1, |i| i + 1);
        self.mass.truncate(keep);
    }
}

/// Stored as `[offset, "masses"]`, the masses' IEEE bits little-endian in base64: exact
/// (JSON's decimal floats read back within an ulp, not always to the bit), and 10.7 bytes a
/// count where a decimal mass takes about 22.
impl Serialize for Pmf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(8 * self.mass.len());
        for m in &self.mass {
            bytes.extend_from_slice(&m.to_le_bytes());
        }
        (self.offset, base64::STANDARD.encode(&bytes)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pmf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (offset, text): (u64, String) = Deserialize::deserialize(deserializer)?;
        let bytes = base64::STANDARD
            .decode(&text)
            .filter(|b| !b.is_empty() && b.len() % 8 == 0)
            .ok_or_else(|| {
                serde::de::Error::custom("a distribution's masses are not base64 of f64s")
            })?;
        let mass = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect();
        Ok(Pmf { offset, mass })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binomial(n, p) over 0..=n, nothing dropped, and the sum of independent counts.
    fn full_binomial(n: u64, p: f64) -> Vec<f64> {
        let ln_fact: Vec<f64> = (0..=n)
            .scan(0.0, |acc, i| {
                *acc += if i == 0 { 0.0 } else { (i as f64).ln() };
                Some(*acc)
            })
            .collect();
        let n = n as usize;
        (0..=n)
            .map(|k| {
                let ln = ln_fact[n] - ln_fact[k] - ln_fact[n - k];
                (ln + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp()
            })
            .collect()
    }

    fn full_convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += x * y;
            }
        }
        out
    }

    #[test]
    fn a_stored_distribution_reads_back_bit_for_bit() {
        let mut pmf = Pmf::binomial(1_000, 0.1).convolve(&Pmf::binomial(37, 0.3));
        pmf.take_from(150);
        pmf.drop_top_zeros();
        let text = serde_json::to_string(&pmf).unwrap();
        let back: Pmf = serde_json::from_str(&text).unwrap();
        assert_eq!(back.offset, pmf.offset);
        let bits = |p: &Pmf| p.mass.iter().map(|m| m.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&pmf));
        assert!(serde_json::from_str::<Pmf>(r#"[3, "TWE*"]"#).is_err());
        assert!(
            serde_json::from_str::<Pmf>(r#"[3, "TWFu"]"#).is_err(),
            "not whole f64s"
        );
    }

    #[test]
    fn trimmed_distributions_keep_every_tail_a_look_can_read() {
        let groups = [(900, 0.1), (1_500, 0.5), (40, 0.02), (3_000, 0.48)];
        let (mut trimmed, mut full) = (Pmf::one(), vec![1.0]);
        for (n, p) in groups {
            trimmed = trimmed.convolve(&Pmf::binomial(n, p));
            full = full_convolve(&full, &full_binomial(n, p));
        }
        // The kept range is a small part of the 5,440 counts: the work follows the spread.
        assert!(trimmed.mass.len() < 1_500, "{} kept", trimmed.mass.len());
        let dropped = full.iter().sum::<f64>() - trimmed.mass.iter().sum::<f64>();
        assert!(dropped.abs() < 1e-14, "{dropped}");
        for count in (0..full.len() as u64).step_by(7) {
            let exact: f64 = full[count as usize..].iter().sum();
            let kept = trimmed.mass_from(count);
            assert!(
                (kept - exact).abs() <= 1e-30 + 1e-12 * exact,
                "P(S ≥ {count}): {kept} vs {exact}"
            );
        }
    }
}
