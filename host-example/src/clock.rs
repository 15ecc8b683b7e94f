//! The wall clock the component reads, injectable for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A wall clock: the time since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time since the Unix epoch.
    fn now(&self) -> Duration;

    /// The current time in whole seconds since the Unix epoch, as cheaply
    /// as the clock can tell it: the cached-token path reads it on every
    /// call.
    fn now_secs(&self) -> u64 {
        self.now().as_secs()
    }

    /// The smallest step between two readings of [`Clock::now`]; what the
    /// component's `wall-clock.resolution` returns.
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// On Linux the system clock is the coarse real-time clock: updated at each
/// timer tick (a few milliseconds), far finer than the seconds the component
/// and the token windows count in, and several times cheaper to read than
/// the precise one. The component reads it on every call.
#[cfg(any(target_os = "linux", target_os = "android"))]
impl Clock for SystemClock {
    fn now(&self) -> Duration {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or_default(),
            u32::try_from(now.tv_nsec).unwrap_or_default(),
        )
    }

    fn now_secs(&self) -> u64 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        u64::try_from(now.tv_sec).unwrap_or_default()
    }

    fn resolution(&self) -> Duration {
        let tick = rustix::time::clock_getres(rustix::time::ClockId::RealtimeCoarse);
        Duration::new(
            u64::try_from(tick.tv_sec).unwrap_or_default(),
            u32::try_from(tick.tv_nsec).unwrap_or_default(),
        )
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A monotonic reading, for measuring a call against its time budget:
/// the coarse monotonic clock on Linux (a few milliseconds of resolution
/// against budgets of seconds, at a fraction of the precise clock's cost,
/// which every call through the component would pay), else [`Instant`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoarseInstant(Duration);

impl CoarseInstant {
    /// Now.
    pub(crate) fn now() -> CoarseInstant {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
            CoarseInstant(Duration::new(
                u64::try_from(now.tv_sec).unwrap_or_default(),
                u32::try_from(now.tv_nsec).unwrap_or_default(),
            ))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            CoarseInstant(START.get_or_init(Instant::now).elapsed())
        }
    }

    /// The time since this reading.
    pub(crate) fn elapsed(self) -> Duration {
        CoarseInstant::now().0.saturating_sub(self.0)
    }
}

/// A clock that moves only when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `since_epoch`.
    pub fn new(since_epoch: Duration) -> ManualClock {
        ManualClock {
            millis: AtomicU64::new(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(
            u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_tells_the_time_to_its_resolution() {
        let precise = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        let clock = SystemClock;
        let resolution = clock.resolution();
        assert!(resolution > Duration::ZERO && resolution <= Duration::from_millis(100));
        let before = precise();
        let read = clock.now();
        let after = precise();
        // A coarse reading lags the precise clock by at most one tick.
        assert!(read <= after, "{read:?} after {after:?}");
        assert!(
            read + resolution + Duration::from_millis(1) >= before,
            "{read:?} before {before:?}"
        );
        let secs = clock.now_secs();
        assert!(secs + 1 >= before.as_secs() && secs <= precise().as_secs());
    }

    #[test]
    fn a_coarse_instant_measures_elapsed_time() {
        let start = CoarseInstant::now();
        std::thread::sleep(Duration::from_millis(60));
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(40) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
    }
}
