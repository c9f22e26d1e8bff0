//! The internally tagged enums read by `internally_tagged!` read what serde's derived
//! `#[serde(tag = ...)]` reader reads, and refuse what it refuses, with the same messages:
//! every object of the stored rollouts and client fixtures (tests/fixtures), changed in every
//! way that matters (tag missing, not a string, unknown, repeated; each field missing or of
//! another type; fields added), and every variant named alone. Where the messages may differ
//! (malformed JSON, a repeated tag, a field of another type) both refuse.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;

/// An enum declared with `internally_tagged!`: its tag, and the reader serde derives for it.
pub(crate) trait Derived: DeserializeOwned + PartialEq + Debug {
    const TAG: &'static str;
    /// `text` read as `#[serde(tag = TAG)]` reads it.
    fn derived(text: &str) -> Result<Self, serde_json::Error>;
}

/// The value's raw text, as `read` takes it; and, for the derived readers compared with here,
/// which read their variants from serde's `Content`, the text of the value read from it:
/// an enum converted by `internally_tagged!` inside one read by the derived reader (which
/// outside the tests fails: `another_deserializer_fails_instead_of_reading_something_else`).
pub(crate) fn raw_text<'de, D: serde::Deserializer<'de>>(
    json: D,
) -> Result<Box<serde_json::value::RawValue>, D::Error> {
    use serde::de::Error;
    use serde::Deserialize;
    if !std::any::type_name::<D>().contains("ContentDeserializer") {
        return Box::<serde_json::value::RawValue>::deserialize(json);
    }
    let value = Value::deserialize(json)?;
    serde_json::value::RawValue::from_string(value.to_string()).map_err(D::Error::custom)
}

/// `text` read by both readers: the same value, or errors with the same message (positions
/// aside: the derived reader reports some errors where it found them in the value, this
/// one at the value's end). Returns the variant read, if any.
fn agree<T: Derived>(text: &str) -> Option<String> {
    both::<T>(text, true)
}

/// `text` read by both readers: the same value, or both errors, with the same message when
/// `same_message`.
fn both<T: Derived>(text: &str, same_message: bool) -> Option<String> {
    let derived = T::derived(text);
    let ours = serde_json::from_str::<T>(text);
    let name = std::any::type_name::<T>();
    match (&derived, &ours) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}: {text}"),
        (Err(a), Err(b)) if same_message => {
            // The test's copy of the derived reader is a `serde(remote)` one, named so.
            let short = name.rsplit("::").next().unwrap_or(name);
            let a = message(a).replace("enum Remote", &format!("enum {short}"));
            assert_eq!(a, message(b), "{name}: {text}")
        }
        (Err(_), Err(_)) => {}
        _ => panic!("{name}: derived {derived:?}, ours {ours:?}: {text}"),
    }
    let value: Value = serde_json::from_str(text).ok()?;
    ours.ok()
        .and_then(|_| value.get(T::TAG)?.as_str().map(str::to_owned))
}

/// The error's message without its position.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Every distinct JSON object carrying one of `tags`, nested at any depth, in tests/fixtures
/// (parsed files) and in what gate-sim's gate saved (`GATE_SIM_SEEDS`).
fn corpus(tags: &[&str]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut walk = |value: &Value| {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if tags.iter().any(|t| map.contains_key(*t)) && seen.insert(value.to_string()) {
                        out.push(map.clone());
                    }
                    stack.extend(map.values().rev());
                }
                Value::Array(items) => stack.extend(items.iter().rev()),
                _ => {}
            }
        }
    };
    fn files(dir: &Path, out: &mut Vec<Value>) {
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                files(&path, out);
            } else if let Ok(value) = serde_json::from_slice(&std::fs::read(&path).unwrap()) {
                out.push(value);
            }
        }
    }
    let mut fixtures = Vec::new();
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut fixtures,
    );
    fixtures.iter().for_each(&mut walk);
    for seed in 0..GATE_SIM_SEEDS {
        let report = crate::gatesim::run(&crate::gatesim::Options {
            seed,
            only: None,
            trace: false,
            keep_saved: true,
        });
        for text in &report.saved {
            walk(&serde_json::from_str(text).expect("saved JSON"));
        }
    }
    out
}

/// How many gate-sim seeds' saved rollouts and events join the corpus: the whole gate
/// against a faulty world (rollbacks, pauses, refusals, retries), for the variants no
/// fixture holds.
const GATE_SIM_SEEDS: u64 = 10;

/// How many objects with each tag value (the first, in the corpus's order) are read as they
/// are, and how many of those also changed.
const READ_PER_TAG: usize = 50;
const CHANGED_PER_TAG: usize = 2;

/// The variants `T` names in its unknown-variant error.
fn variants<T: Derived>() -> Vec<String> {
    let e = T::derived(&json!({ T::TAG: "\u{1}" }).to_string())
        .unwrap_err()
        .to_string();
    let listed = e.split("expected ").nth(1).expect("a variant list");
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Compares both readers on the corpus objects carrying `T`'s tag (`READ_PER_TAG` of each
/// tag value), on changed copies of the first few (`CHANGED_PER_TAG`), and on each variant
/// named alone; returns the variants read (not refused) from any of these.
fn check<T: Derived>(objects: &[Map<String, Value>]) -> BTreeSet<String> {
    let tag = T::TAG;
    let text = |o: &Map<String, Value>| Value::Object(o.clone()).to_string();
    let odd = [
        json!("x"),
        json!(12_345_678_901_u64),
        json!(-1),
        json!(1.5),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
    ];
    let mut read = BTreeSet::new();
    let mut per_tag = BTreeMap::<String, usize>::new();
    for object in objects.iter().filter(|o| o.contains_key(tag)) {
        // The first objects with each tag value as they are; the first few of those also
        // changed in every way.
        let count = per_tag.entry(object[tag].to_string()).or_default();
        *count += 1;
        if *count > READ_PER_TAG {
            continue;
        }
        read.extend(agree::<T>(&text(object)));
        if *count > CHANGED_PER_TAG {
            continue;
        }
        let mut without = object.clone();
        without.remove(tag);
        agree::<T>(&text(&without));
        for value in odd.iter().chain([&json!("no_such_variant")]) {
            let mut changed = object.clone();
            changed.insert(tag.to_owned(), value.clone());
            agree::<T>(&text(&changed));
        }
        // A repeated tag: the derived reader refuses an unknown first one as unknown, before
        // it sees the second; this one says "duplicate field".
        let repeated = |first: &str| format!("{{\"{tag}\":\"{first}\",{}", &text(object)[1..]);
        both::<T>(&repeated("x"), false);
        if let Some(name) = object[tag].as_str() {
            both::<T>(&repeated(name), false);
        }
        let mut extra = object.clone();
        extra.insert("zz_extra".to_owned(), json!([1, {"a": null}]));
        agree::<T>(&text(&extra));
        for field in object.keys().filter(|k| *k != tag) {
            let mut missing = object.clone();
            missing.remove(field);
            agree::<T>(&text(&missing));
            // A field of another type: refused by both, in serde_json's own words here where
            // the derived reader has `Content`'s for some (e.g. "expected value" for "invalid
            // type: integer `-1`, expected string or map", for a unit-only enum's field).
            for value in &odd {
                let mut changed = object.clone();
                changed.insert(field.clone(), value.clone());
                both::<T>(&text(&changed), false);
            }
        }
    }
    for name in variants::<T>() {
        // Unit variants read named alone; struct variants are refused, missing a field.
        read.extend(agree::<T>(&json!({ tag: name }).to_string()));
        agree::<T>(&json!({ "zz_extra": 1, tag: name }).to_string());
    }
    for text in ["null", "1", "\"x\"", "{}", "{\"a\":1}"] {
        agree::<T>(text);
    }
    // Malformed JSON: refused by both, not always in the same words (serde_json's skipping
    // parser, which reads the raw text, words a few syntax errors differently).
    for text in ["{", "{\"x\":1,}", "{\"x\" 1}", "[1,]"] {
        both::<T>(text, false);
    }
    read
}

/// Variants neither the corpus nor their name alone reads (`every_internally_tagged_…`
/// prints which), written out: both readers read each to the same value. Not written out:
/// the newtype variants `WriteOutcome::Failed`, `Input::Preflight`, `Input::LiveRead`,
/// `Action::Notify` and `Action::RecordEvent` (a struct's fields beside the tag, read by
/// the same path as `Input::Tick`, which the corpus reads), and `Action::WakeAt`, which no
/// serializer can write internally tagged (a newtype variant of a string).
#[test]
fn variants_missing_from_the_corpus_read_as_the_derived_reader_reads_them() {
    fn read<T: Derived>(samples: &[Value]) {
        for sample in samples {
            let text = sample.to_string();
            assert!(agree::<T>(&text).is_some(), "{text} did not read");
        }
    }
    let reason =
        json!({"signal": "errors", "detail": "5xx 2% vs 0.1%", "observed": 0.02, "limit": 0.01});
    let uuid = "11111111-1111-4111-8111-111111111111";
    use crate::rollout::{Action, PauseReason, WriteOutcome};
    read::<PauseReason>(&[
        json!({"pause": "step_max_reached", "step": 1, "minutes": 60, "gaps": ["no errors yet"]}),
        json!({"pause": "write_refused", "status": 400, "message": "refused"}),
        json!({"pause": "write_refused", "status": null, "message": "refused"}),
        json!({"pause": "write_stuck", "attempts": 3, "minutes": 9, "last_failure": "timeout"}),
        json!({"pause": "queue", "reasons": [reason]}),
        json!({"pause": "preflight_undecided", "minutes": 15, "why": ["healthz timed out"]}),
        json!({"pause": "gate_upgraded", "stored_schema": 3, "schema": 4}),
    ]);
    read::<crate::rollout::Phase>(&[json!({"phase": "failed", "reasons": ["no version"]})]);
    read::<crate::rollout::Input>(&[json!({"input": "gate_upgraded", "stored_schema": 3})]);
    read::<WriteOutcome>(&[json!({"outcome": "secrets_changed", "status": 400,
        "secrets": ["API_KEY"], "message": "secrets changed", "sent_forced": false,
        "setting": "pause"})]);
    read::<Action>(&[
        json!({"action": "run_preflight", "version_id": uuid, "git_sha": null}),
        json!({"action": "read_deployment", "write": 7}),
    ]);
    read::<crate::stats::Skipped>(&[json!({"why": "drifted", "old_bad": 3,
        "old_requests": 1000.0, "p_value": 0.001})]);
    read::<crate::policy::Breach>(&[{
        let mut over = reason.clone();
        over["kind"] = json!("over");
        over
    }]);
    read::<crate::policy::Gap>(&[
        json!({"gap": "debouncing", "signal": "latency", "breaches": 1, "needed": 2, "detail": "d"}),
        json!({"gap": "wrong_version", "answered_by": "v1"}),
    ]);
    read::<crate::clients::slack::SlackOutcome>(&[
        json!({"outcome": "retry_after", "secs": 30}),
        json!({"outcome": "dead_webhook", "code": "no_service"}),
        json!({"outcome": "rejected", "code": "invalid_blocks"}),
    ]);
    read::<crate::clients::cloudflare::Endpoint>(&[
        json!({"op": "get_version", "script": "api", "version_id": uuid}),
        json!({"op": "list_versions", "script": "api", "page": 1, "per_page": 10}),
        json!({"op": "list_deployments", "script": "api"}),
        json!({"op": "create_deployment", "script": "api",
            "split": [{"version_id": uuid, "percentage": 100}], "message": "m", "force": true}),
    ]);
    read::<crate::clients::probe::ProbeOutcome>(&[
        json!({"result": "wrong_version", "answered_by": "v1"}),
        json!({"result": "unattributed", "status": 200}),
    ]);
    read::<crate::observe::Probe>(&[json!({"result": "wrong_version", "answered_by": "v1"})]);
    read::<crate::observe::Check>(&[
        json!({"outcome": "pass", "detail": "d"}),
        json!({"outcome": "fail", "reason": "r"}),
        json!({"outcome": "skipped", "reason": "r"}),
        json!({"outcome": "unknown", "why": "w"}),
    ]);
    read::<crate::parity::Finding>(&[
        json!({"status": "complete", "script": "api", "version_id": uuid}),
        json!({"status": "gaps", "script": "api", "version_id": uuid, "missing": ["KV"]}),
        json!({"status": "unreadable", "script": "api", "why": "403"}),
    ]);
}

/// The one input the readers differ on: an array whose first element is the tag, which the
/// derived reader accepts (serde's `TaggedContentVisitor::visit_seq`) and no writer of ours
/// produces. This reader refuses it.
#[test]
fn an_enum_written_as_an_array_is_refused_where_the_derived_reader_took_it() {
    use crate::rollout::Phase;
    let text = r#"["ramping", 2]"#;
    assert_eq!(Phase::derived(text).unwrap(), Phase::Ramping { step: 2 });
    let e = serde_json::from_str::<Phase>(text).unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid type: sequence, expected internally tagged enum Phase"
    );
}

/// Only JSON deserializers carry the raw text; any other fails (outside these tests, which
/// read the derived readers' `Content` through `raw_text`).
#[test]
fn another_deserializer_fails_instead_of_reading_something_else() {
    use crate::rollout::Phase;
    use serde::de::value::{Error, MapDeserializer};
    use serde::Deserialize;
    let map = MapDeserializer::<_, Error>::new([("phase", "baking")].into_iter());
    let e = Box::<serde_json::value::RawValue>::deserialize(map)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "unexpected raw value");
    assert_eq!(
        crate::json::from_value::<Phase>(&json!({"phase": "baking"})).unwrap(),
        Phase::Baking
    );
    assert_eq!(
        serde_json::from_value::<Phase>(json!({"phase": "baking"})).unwrap(),
        Phase::Baking
    );
}

macro_rules! every_enum {
    ($($t:ty),* $(,)?) => {
        /// Each converted enum reads like the derived reader on the whole corpus; prints
        /// which of its variants the corpus read (the rest are checked named alone).
        #[test]
        fn every_internally_tagged_enum_reads_what_the_derived_reader_reads() {
            let objects = corpus(&[$(<$t as Derived>::TAG),*]);
            assert!(objects.len() > 1000, "{} objects", objects.len());
            $(
                let read = check::<$t>(&objects);
                let all = variants::<$t>();
                let unread: Vec<_> = all.iter().filter(|v| !read.contains(*v)).collect();
                eprintln!("{}: {} of {} variants read; not read: {unread:?}",
                    stringify!($t), read.len(), all.len());
            )*
        }
    };
}

every_enum!(
    crate::rollout::Stage,
    crate::rollout::Phase,
    crate::rollout::RollbackCause,
    crate::rollout::PauseReason,
    crate::rollout::WriteOutcome,
    crate::rollout::Input,
    crate::rollout::Action,
    crate::rollout::EventKind,
    crate::rollout::Decision,
    crate::stats::LookKind,
    crate::stats::Against,
    crate::stats::Skipped,
    crate::policy::Breach,
    crate::policy::Gap,
    crate::policy::Verdict,
    crate::clients::slack::Text,
    crate::clients::slack::Block,
    crate::clients::slack::SlackOutcome,
    crate::clients::cloudflare::Endpoint,
    crate::clients::probe::ProbeOutcome,
    crate::observe::Probe,
    crate::observe::Check,
    crate::parity::Finding,
);
