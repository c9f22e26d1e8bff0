//! The calling thread's CPU time, for `rollout-sim --tick-cost`: what the budget counts
//! (Workers bill and limit CPU time, not wall time), and what a tick costs on a machine whose
//! other work would otherwise show up as time the tick spent waiting. Linux natively, WASI's
//! thread CPU clock under a WebAssembly engine; elsewhere, wall time.

use std::time::Duration;

/// A reading of the clock; the difference of two is the CPU time spent between them.
#[derive(Clone, Copy, Debug)]
pub struct CpuInstant(Duration);

impl CpuInstant {
    pub fn now() -> Self {
        CpuInstant(thread_cpu_time())
    }

    pub fn elapsed(&self) -> Duration {
        thread_cpu_time().saturating_sub(self.0)
    }
}

#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    /// CLOCK_THREAD_CPUTIME_ID (linux/time.h).
    const THREAD_CPUTIME: i32 = 3;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec of the C layout on 64-bit Linux.
    let ok = unsafe { clock_gettime(THREAD_CPUTIME, &mut time) } == 0;
    if ok {
        Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
    } else {
        wall_time()
    }
}

#[cfg(target_os = "wasi")]
fn thread_cpu_time() -> Duration {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    /// WASI's `clockid::thread_cputime_id`.
    const THREAD_CPUTIME: u32 = 3;
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 through the pointer, which is valid and aligned.
    let errno = unsafe { clock_time_get(THREAD_CPUTIME, 1, &mut nanos) };
    if errno == 0 {
        Duration::from_nanos(nanos)
    } else {
        wall_time()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "wasi")))]
fn thread_cpu_time() -> Duration {
    wall_time()
}

/// Wall time since the first reading, where no CPU clock answers.
#[allow(dead_code)]
fn wall_time() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_clock_counts_work_and_not_sleep() {
        let started = CpuInstant::now();
        std::thread::sleep(Duration::from_millis(30));
        let slept = started.elapsed();
        let started = CpuInstant::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let worked = started.elapsed();
        assert!(slept < Duration::from_millis(25), "{slept:?} while asleep");
        assert!(worked > Duration::ZERO, "{worked:?} for 20M steps ({x})");
    }
}
