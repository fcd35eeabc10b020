//! Time as the trap and the simulated chain see it.
//!
//! Chain time is whole seconds (`time_point_sec`), and the trap judges freshness by comparing the head block
//! time with "now". Production uses the system clock; the simulated node, the demo and the benchmark run a
//! time-compressed chain, so they hand the trap a [`ScaledClock`] whose seconds pass `speedup` times faster.
//! Sleeping goes through the clock too, so a 30 s poll interval stays 30 chain seconds at any speed.
//! Network timeouts are not chain time and stay real.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of "now" and of sleeps, both in chain time.
pub trait Clock: Send + Sync + 'static {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;
    /// Sleep for `d` of this clock's time.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
    /// Whole seconds since the epoch, as chain timestamps are written.
    fn now_secs(&self) -> u64 {
        self.now().as_secs()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock: what a real deployment uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A system clock before 1970 is a broken host; treat it as the epoch rather than panic.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that starts at `origin` and runs `speedup` times faster than the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    started: Instant,
    origin: Duration,
    speedup: f64,
}

impl ScaledClock {
    /// `origin` is the chain time at creation; `speedup` ≥ 1 compresses time (values below 1 are taken as 1).
    pub fn new(origin: Duration, speedup: f64) -> Self {
        let speedup = if speedup.is_finite() && speedup >= 1.0 { speedup } else { 1.0 };
        Self { started: Instant::now(), origin, speedup }
    }

    /// A clock starting at the current wall time.
    pub fn starting_now(speedup: f64) -> Self {
        Self::new(SystemClock.now(), speedup)
    }

    /// How many times faster than the wall clock this clock runs.
    pub fn speedup(&self) -> f64 {
        self.speedup
    }

    /// Wall-clock duration that corresponds to `d` of this clock's time.
    pub fn to_wall(&self, d: Duration) -> Duration {
        d.div_f64(self.speedup)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Duration {
        self.origin + self.started.elapsed().mul_f64(self.speedup)
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(self.to_wall(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster_and_never_below_one() {
        let c = ScaledClock::new(Duration::from_secs(1_000), 0.5);
        assert_eq!(c.speedup(), 1.0);
        let c = ScaledClock::new(Duration::from_secs(1_000), 100.0);
        assert_eq!(c.to_wall(Duration::from_secs(3)), Duration::from_millis(30));
        assert!(c.now() >= Duration::from_secs(1_000));
    }
}
