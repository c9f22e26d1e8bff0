//! Base64 (RFC 4648) without padding, in the standard alphabet (the stored distributions,
//! HTTP Basic auth) and the URL-safe one (JWTs, RFC 7515 §2).

/// One alphabet: its 64 digits, and each byte's value as a digit (`NOT_A_DIGIT` for the
/// rest). The stored state carries tens of kilobytes of base64, decoded every tick: a
/// table read per character, where a search of the alphabet was a third of a long hold's
/// tick (docs/benchmark.md, "Cost per tick").
pub struct Alphabet {
    digits: &'static [u8; 64],
    values: [u8; 256],
}

const NOT_A_DIGIT: u8 = 64;

impl Alphabet {
    const fn new(digits: &'static [u8; 64]) -> Self {
        let mut values = [NOT_A_DIGIT; 256];
        let mut i = 0;
        while i < digits.len() {
            values[digits[i] as usize] = i as u8;
            i += 1;
        }
        Alphabet { digits, values }
    }

    /// `bytes` in this alphabet, without padding.
    pub fn encode(&self, bytes: &[u8]) -> String {
        let digit = |n: u32, shift: usize| self.digits[(n >> shift & 63) as usize];
        let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
        let mut triples = bytes.chunks_exact(3);
        for t in &mut triples {
            let n = u32::from(t[0]) << 16 | u32::from(t[1]) << 8 | u32::from(t[2]);
            out.extend_from_slice(&[digit(n, 18), digit(n, 12), digit(n, 6), digit(n, 0)]);
        }
        let rest = triples.remainder();
        if !rest.is_empty() {
            let n = rest
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            out.extend((0..=rest.len()).map(|i| digit(n, 18 - 6 * i)));
        }
        String::from_utf8(out).expect("base64 digits are ASCII")
    }

    /// The inverse of `encode`; `None` for a character outside the alphabet (padding
    /// included: strip it first where it is allowed) or a length no encoding has.
    pub fn decode(&self, text: &str) -> Option<Vec<u8>> {
        let digits = |chunk: &[u8]| {
            chunk.iter().enumerate().try_fold(0u32, |n, (i, &c)| {
                let digit = self.values[usize::from(c)];
                (digit != NOT_A_DIGIT).then(|| n | u32::from(digit) << (18 - 6 * i))
            })
        };
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
        let mut quads = text.as_bytes().chunks_exact(4);
        for q in &mut quads {
            let n = digits(q)?;
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        }
        match quads.remainder() {
            [] => {}
            [_] => return None,
            rest => {
                let n = digits(rest)?;
                out.extend((0..rest.len() - 1).map(|i| (n >> (16 - 8 * i)) as u8));
            }
        }
        Some(out)
    }
}

/// The standard alphabet (`+` and `/`).
pub const STANDARD: Alphabet =
    Alphabet::new(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
/// The URL-safe alphabet (`-` and `_`).
pub const URL_SAFE: Alphabet =
    Alphabet::new(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_and_every_byte_reads_back_in_both_alphabets() {
        let every_byte: Vec<u8> = (0..=255).rev().collect();
        for alphabet in [&STANDARD, &URL_SAFE] {
            for len in 0..every_byte.len() {
                let bytes = &every_byte[..len];
                let text = alphabet.encode(bytes);
                assert_eq!(text.len(), (4 * len).div_ceil(3));
                assert_eq!(alphabet.decode(&text).as_deref(), Some(bytes));
            }
        }
        assert_eq!(STANDARD.encode(b"Man"), "TWFu");
        assert_eq!(STANDARD.encode(b"Ma"), "TWE");
        assert_eq!(STANDARD.encode(&[0xfb, 0xff]), "+/8");
        assert_eq!(URL_SAFE.encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_character_outside_the_alphabet_or_an_impossible_length_is_refused() {
        for bad in ["TWF=", "TW\u{e9}u", "TW\u{0}u", "T", "TWFuT", "TWE*"] {
            assert_eq!(STANDARD.decode(bad), None, "{bad:?}");
        }
        assert_eq!(
            STANDARD.decode("-_8"),
            None,
            "URL-safe digits are not standard"
        );
        assert_eq!(
            URL_SAFE.decode("+/8"),
            None,
            "standard digits are not URL-safe"
        );
    }
}
