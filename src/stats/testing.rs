//! Helpers the statistics' unit tests share: one minute's counts, and serde round trips of
//! stored state.

use super::PairCounts;
use serde::{Deserialize, Serialize};

/// One minute's counts, new version first.
pub(crate) fn minute(new_total: f64, new_bad: f64, old_total: f64, old_bad: f64) -> PairCounts {
    PairCounts {
        new_total,
        new_bad,
        old_total,
        old_bad,
    }
}

/// serde_json parses floats to within an ulp unless its `float_roundtrip` feature is on,
/// so stored state is compared number by number with a relative tolerance.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_json_close(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.iter().for_each(|(k, v)| assert_json_close(v, &y[k]));
        }
        _ => assert_eq!(a, b),
    }
}

/// Serializes `value`, reads it back, and checks that both serialize alike.
pub(crate) fn assert_round_trips<T: Serialize + for<'de> Deserialize<'de>>(value: &T) {
    let json = serde_json::to_value(value).unwrap();
    let restored: T = serde_json::from_value(json.clone()).unwrap();
    assert_json_close(&serde_json::to_value(&restored).unwrap(), &json);
}
