//! One monotonic clock for every live input: milliseconds since the first time anything in the process asked
//! for the time. Camera frames and microphone audio are stamped with it, so the loop can line them up.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process's sensor epoch (monotonic).
pub fn now_ms() -> u64 {
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reconnection delays: `initial`, doubling after each failed attempt up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a device is lost.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling to 2 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The delay after `delay`: doubled, capped at `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        (delay * 2).min(self.max).max(self.initial)
    }
}

/// Sleeps `d` in short slices, returning early (false) once `stop` is set.
pub(crate) fn sleep_unless(stop: &std::sync::atomic::AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}
