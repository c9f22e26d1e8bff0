//! Input generators: structure-aware mutation of real bodies (captured fixtures and valid
//! requests) at the byte level and at the JSON level, plus random bytes, token soup and deep
//! nesting. Everything draws from the case's seeded `Rng`, so a case seed rebuilds its input.

use rollout_gate::sim::rng::Rng;
use serde_json::{Map, Number, Value};

/// A uniform index in `0..n` (0 when `n == 0`).
pub fn below(rng: &mut Rng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

/// True with probability `p`.
pub fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.uniform() < p
}

/// One item of a non-empty slice.
pub fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

/// Text that breaks parsers: numbers past every integer and float range, the non-JSON
/// spellings of NaN and infinity, lone surrogates, control characters, stray structure.
pub const TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-1",
    "1.5",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "99999999999999999999999999999999999999",
    "1.0000000000000001",
    "100.001",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\uDFFF\\ud800\"",
    "\"é\"",
    "\"🚀\"",
    "[]",
    "{}",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "\\",
    "\u{0}",
    "\u{feff}",
    "\r\n",
    "//",
    "/*",
    "+1",
    ".5",
    "5.",
    "1e",
    "0x10",
    "\"\\x41\"",
    "%00",
    "&",
    "=",
    "?",
    "/",
    "..",
];

/// Strings that stress validation: empty, unicode, control characters, near-valid ids,
/// and long runs.
pub fn nasty_string(rng: &mut Rng) -> String {
    match below(rng, 12) {
        0 => String::new(),
        1 => "é🚀\u{202e}ß\u{0}".repeat(1 + below(rng, 8)),
        2 => "\u{0}\u{1f}\u{7f}\r\n\t".into(),
        3 => "11111111-1111-4111-8111-11111111111".into(),
        4 => "11111111-1111-4111-8111-1111111111111".into(),
        5 => "11111111_1111_4111_8111_111111111111".into(),
        6 => "x".repeat(below(rng, 70_000)),
        7 => "../../etc/passwd?x=1#y".into(),
        8 => "') OR 1=1 --".into(),
        9 => "{script}".into(),
        10 => (0..below(rng, 64))
            .map(|_| char::from_u32(below(rng, 0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        _ => pick(rng, TOKENS).to_string(),
    }
}

/// Numbers at and past the edges of `u32`, `u64`, `i64` and `f64`.
pub fn nasty_number(rng: &mut Rng) -> Value {
    let n = match below(rng, 12) {
        0 => Number::from(0),
        1 => Number::from(-1),
        2 => Number::from(u32::MAX),
        3 => Number::from(u64::from(u32::MAX) + 1),
        4 => Number::from(u64::MAX),
        5 => Number::from(i64::MIN),
        6 => Number::from_f64(f64::MAX).expect("finite"),
        7 => Number::from_f64(-f64::MIN_POSITIVE).expect("finite"),
        8 => Number::from_f64(0.5).expect("finite"),
        9 => Number::from_f64(100.000_000_1).expect("finite"),
        10 => Number::from_f64(1e-300).expect("finite"),
        _ => Number::from(rng.next_u64() as i64),
    };
    Value::Number(n)
}

/// A random JSON value of at most `depth` levels.
pub fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 4 } else { 6 };
    match below(rng, kinds) {
        0 => Value::Null,
        1 => Value::Bool(chance(rng, 0.5)),
        2 => nasty_number(rng),
        3 => Value::String(nasty_string(rng)),
        4 => Value::Array(
            (0..below(rng, 4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..below(rng, 4))
                .map(|_| (nasty_string(rng), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// `depth` levels of `[` or `{"a":` around `inner`: the input a recursive parser overflows on.
pub fn nested(rng: &mut Rng, depth: usize, inner: &str) -> String {
    let arrays = chance(rng, 0.5);
    let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
    let mut out = String::with_capacity(depth * (open.len() + 1) + inner.len());
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push_str(inner);
    for _ in 0..depth {
        out.push_str(close);
    }
    out
}

/// One JSON-level change somewhere in `value`: a node replaced by another type or an edge
/// value, a key removed, renamed or added, an element duplicated, or a node nested deep.
pub fn mutate_json(rng: &mut Rng, node: &mut Value) {
    // Walk down a random path, stopping at a random depth.
    if !chance(rng, 0.3) {
        match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(below(rng, map.len())).cloned();
                if let Some(child) = key.and_then(|k| map.get_mut(&k)) {
                    return mutate_json(rng, child);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let i = below(rng, items.len());
                return mutate_json(rng, &mut items[i]);
            }
            _ => {}
        }
    }
    match (below(rng, 8), &mut *node) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(below(rng, map.len()))
                .cloned()
                .expect("non-empty");
            map.remove(&key);
        }
        (1, Value::Object(map)) => {
            map.insert(nasty_string(rng), random_value(rng, 2));
        }
        (2, Value::Object(map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(below(rng, map.len()))
                .cloned()
                .expect("non-empty");
            if let Some(v) = map.remove(&key) {
                let renamed = if chance(rng, 0.5) {
                    key.to_uppercase()
                } else {
                    format!("{key}_")
                };
                map.insert(renamed, v);
            }
        }
        (3, Value::Array(items)) if !items.is_empty() => {
            let i = below(rng, items.len());
            let copy = items[i].clone();
            for _ in 0..1 + below(rng, 20) {
                items.push(copy.clone());
            }
        }
        (4, Value::Number(_)) => *node = nasty_number(rng),
        (5, Value::String(_)) => *node = Value::String(nasty_string(rng)),
        (6, _) => {
            let depth = 1 + below(rng, 200);
            let inner = std::mem::take(node);
            *node = (0..depth).fold(inner, |v, _| Value::Array(vec![v]));
        }
        _ => *node = random_value(rng, 2),
    }
}

/// One byte-level change: a flipped bit, a replaced, inserted or deleted run, a duplicated
/// range, a cut, a splice with `other`, or a token from [`TOKENS`].
pub fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    let len = bytes.len();
    let at = below(rng, len + 1);
    match below(rng, 9) {
        0 if len > 0 => bytes[at.min(len - 1)] ^= 1 << below(rng, 8),
        1 if len > 0 => {
            bytes[at.min(len - 1)] = *pick(
                rng,
                &[0u8, 0x7f, 0x80, 0xc3, 0xff, b'"', b'\\', b'{', b'[', b','],
            )
        }
        2 => {
            let token = pick(rng, TOKENS).as_bytes().to_vec();
            bytes.splice(at..at, token);
        }
        3 if len > 0 => {
            let end = (at + 1 + below(rng, 16)).min(len);
            bytes.drain(at.min(len - 1)..end);
        }
        4 if len > 0 => {
            let start = at.min(len - 1);
            let end = (start + 1 + below(rng, 64)).min(len);
            let run = bytes[start..end].to_vec();
            for _ in 0..1 + below(rng, 8) {
                bytes.splice(start..start, run.iter().copied());
            }
        }
        5 => bytes.truncate(at),
        6 => {
            let cut = below(rng, other.len() + 1);
            bytes.truncate(at);
            bytes.extend_from_slice(&other[cut..]);
        }
        7 => {
            let run = vec![*pick(rng, b"a9 [\""); below(rng, 20_000)];
            bytes.splice(at..at, run);
        }
        _ => {
            let noise: Vec<u8> = (0..1 + below(rng, 8))
                .map(|_| rng.next_u64() as u8)
                .collect();
            bytes.splice(at..at, noise);
        }
    }
}

/// Up to `max_len` random bytes.
pub fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    (0..below(rng, max_len + 1))
        .map(|_| rng.next_u64() as u8)
        .collect()
}

/// Random JSON-looking text: tokens and quoted strings glued together.
pub fn token_soup(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..below(rng, 40) {
        out.push_str(pick::<&str>(rng, TOKENS));
        if chance(rng, 0.2) {
            out.push_str(&format!("{:?}", nasty_string(rng)));
        }
    }
    out.into_bytes()
}

/// One body for a parser whose real inputs look like `seeds`: mostly mutations of a seed
/// (JSON-level when it parses, then byte-level), sometimes a seed as is, random bytes,
/// token soup or a deep nest.
pub fn body(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = pick(rng, seeds);
    match below(rng, 16) {
        0 => seed.clone(),
        1 => random_bytes(rng, 512),
        2 => token_soup(rng),
        3 => {
            let depth = *pick(rng, &[127, 128, 129, 1_000, 10_000]);
            nested(rng, depth, "0").into_bytes()
        }
        4..=9 => {
            let mut bytes = match serde_json::from_slice::<Value>(seed) {
                Ok(mut value) => {
                    for _ in 0..1 + below(rng, 3) {
                        mutate_json(rng, &mut value);
                    }
                    serde_json::to_vec(&value).expect("a Value serialises")
                }
                Err(_) => seed.clone(),
            };
            if chance(rng, 0.3) {
                let other = pick(rng, seeds).clone();
                mutate_bytes(rng, &mut bytes, &other);
            }
            bytes
        }
        _ => {
            let mut bytes = seed.clone();
            for _ in 0..1 + below(rng, 4) {
                let other = pick(rng, seeds).clone();
                mutate_bytes(rng, &mut bytes, &other);
            }
            bytes
        }
    }
}

/// A body as text, the way the runtime hands response bodies to the parsers (lossy UTF-8).
pub fn text_body(rng: &mut Rng, seeds: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&body(rng, seeds)).into_owned()
}

/// The files under `tests/fixtures/<dir>/` with extension `ext`, as bytes (the captured
/// answers the mutations start from).
pub fn fixtures(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .map(|entry| entry.expect("readable dir").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} fixtures in {path}");
    files
        .iter()
        .map(|p| std::fs::read(p).expect("readable fixture"))
        .collect()
}

/// A small object map, for building valid seeds in code.
pub fn object(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}
