//! The fuzz loop: seeded cases, one `catch_unwind` per case, a per-thread allocation
//! meter, and a failure report that names the target, the case seed, the replay command and
//! the input (also written whole under `target/fuzz-failures/`).
//!
//! Knobs (environment): `FUZZ_CASES` cases per target (default: each target's own budget,
//! sized so the whole file runs in under ~20 s in debug on 2 cores); `FUZZ_SEED` the run's
//! base seed (default fixed, so `cargo test` is deterministic); `FUZZ_CASE_SEED` runs exactly
//! one case, the one a failure report names; `FUZZ_STATS` prints each target's time and
//! worst allocation ratio.

use rollout_gate::sim::rng::{hash_name, Rng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Base seed of a default run. Any value works; a fixed one keeps `cargo test` repeatable.
const DEFAULT_SEED: u64 = 0x5EED_F022_2026;

/// Allocation budget of one parse: `ALLOC_PER_INPUT_BYTE` × input bytes + `ALLOC_SLACK`.
/// A parse through `serde_json::Value` is linear but not cheap: on a 64-bit host a node
/// costs 32 bytes, an array's first element buys a 4-slot vector (128 bytes) for 2 input
/// bytes, and a one-key object (`{"":…}`, 5 bytes) buys a B-tree leaf of several hundred.
/// The worst case, measured by `worst_case_json_amplification_stays_within_the_allocation_budget`,
/// is ~126× (debug and release alike: it counts bytes, not time); 160× leaves room for the typed result, and still catches any allocation sized
/// by a *number in* the input (`Vec::with_capacity(n)`), which is what "unbounded" means.
pub const ALLOC_PER_INPUT_BYTE: usize = 160;
/// Fixed part of the allocation budget (bytes): error strings, small maps, defaults.
pub const ALLOC_SLACK: usize = 64 * 1024;

/// Counts the bytes live on each thread, so a parse's peak can be read around the call.
/// Tests run on several threads; each meter only sees its own thread's allocations.
pub struct MeteredAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: allocations during thread teardown, after the TLS is gone, are not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call forwards to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for MeteredAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static METER: MeteredAlloc = MeteredAlloc;

/// Runs `f` and returns its result with the most bytes it had live at once on this thread
/// (its result included, since it is still alive when `f` returns).
pub fn peak_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get) - start;
    (result, peak.max(0) as usize)
}

thread_local! {
    /// Largest peak allocation per input byte seen by `check_alloc` on this thread (inputs
    /// of at least 1 KiB, where the fixed slack no longer dominates), for `FUZZ_STATS`.
    static WORST_RATIO: Cell<(f64, usize, usize)> = const { Cell::new((0.0, 0, 0)) };
}

/// Checks that a parse of `input_len` bytes stayed within the allocation budget.
pub fn check_alloc(peak: usize, input_len: usize) -> Result<(), String> {
    if input_len >= 1024 {
        let ratio = peak as f64 / input_len as f64;
        WORST_RATIO.with(|w| {
            if ratio > w.get().0 {
                w.set((ratio, peak, input_len));
            }
        });
    }
    let budget = ALLOC_PER_INPUT_BYTE * input_len + ALLOC_SLACK;
    if peak > budget {
        Err(format!(
            "allocated {peak} bytes at peak for {input_len} input bytes (budget {budget})"
        ))
    } else {
        Ok(())
    }
}

/// Checks that an error text is a clear message: not empty, not only whitespace, and at most
/// `max_chars` characters (error texts reach the audit log and Slack).
pub fn check_message(what: &str, message: &str, max_chars: usize) -> Result<(), String> {
    if message.trim().is_empty() {
        return Err(format!("{what}: empty error message"));
    }
    let chars = message.chars().count();
    if chars > max_chars {
        return Err(format!(
            "{what}: error message of {chars} chars, over {max_chars}: {:?}…",
            message.chars().take(120).collect::<String>()
        ));
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    let raw = raw.trim().replace('_', "");
    let parsed = match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => raw.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={raw:?} is not a number")))
}

/// Runs the fuzz target `name`: `default_cases` cases (or `FUZZ_CASES`, or the one case
/// `FUZZ_CASE_SEED` names), each input built by `generate` from its own seeded stream and
/// judged by `check` under `catch_unwind`. Panics with a report on the first failing case
/// (an `Err(why)` or a panic). Returns the number of cases run.
pub fn fuzz<I: Debug>(
    name: &str,
    default_cases: u64,
    generate: impl Fn(&mut Rng) -> I,
    check: impl Fn(&I) -> Result<(), String>,
) -> u64 {
    let run_case = |case: u64, case_seed: u64| {
        let input = generate(&mut Rng::from_seed(case_seed));
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let why = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(panic) => format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string payload)")
            ),
        };
        let shown = format!("{input:?}");
        let saved = save_failure(name, case_seed, &shown);
        panic!(
            "fuzz target `{name}` failed at case {case} (case seed {case_seed:#018x}): {why}\n\
             replay: FUZZ_CASE_SEED={case_seed:#018x} cargo test --test fuzz {name}\n\
             input ({len} chars as Debug, whole in {saved}): {head}",
            len = shown.len(),
            head = shown.chars().take(600).collect::<String>(),
        );
    };
    if let Some(case_seed) = env_u64("FUZZ_CASE_SEED") {
        run_case(u64::MAX, case_seed);
        return 1;
    }
    let cases = env_u64("FUZZ_CASES").unwrap_or(default_cases);
    let seed = env_u64("FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    WORST_RATIO.with(|w| w.set((0.0, 0, 0)));
    let started = std::time::Instant::now();
    for case in 0..cases {
        run_case(case, Rng::derive(seed, &[hash_name(name), case]).next_u64());
    }
    if std::env::var_os("FUZZ_STATS").is_some() {
        let (ratio, peak, len) = WORST_RATIO.with(Cell::get);
        eprintln!(
            "fuzz {name}: {cases} cases in {:.1} s; worst peak allocation {ratio:.1} bytes per \
             input byte ({peak} bytes for {len})",
            started.elapsed().as_secs_f64(),
        );
    }
    cases
}

fn save_failure(target: &str, case_seed: u64, shown: &str) -> String {
    let dir = format!("{}/target/fuzz-failures", env!("CARGO_MANIFEST_DIR"));
    let path = format!("{dir}/{target}-{case_seed:016x}.txt");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, shown)) {
        Ok(()) => path,
        Err(e) => format!("(not saved: {e})"),
    }
}
