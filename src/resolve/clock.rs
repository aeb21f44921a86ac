//! Time, passed in: what expires (cache entries, `mapping.log` lines) reads a [`Clock`],
//! so that tests move time forward instead of sleeping through a TTL.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::sync::lock;

/// A source of the time: monotonic for deadlines and expiry, wall-clock for what is
/// written down (`mapping.log`'s `learned=`).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, for measuring and expiring.
    fn now(&self) -> Instant;
    /// Now, as a date.
    fn wall(&self) -> SystemTime;
}

/// The system's clocks: what every server uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that runs with the system's but that a test can move forward
/// ([`advance`](Self::advance)): both of its readings move together.
#[derive(Debug, Default)]
pub struct ManualClock {
    ahead: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock `by` forward, at once.
    pub fn advance(&self, by: Duration) {
        *lock(&self.ahead) += by;
    }

    fn ahead(&self) -> Duration {
        *lock(&self.ahead)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::now() + self.ahead()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now() + self.ahead()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings() {
        let clock = ManualClock::new();
        let (t, w) = (Instant::now(), SystemTime::now());
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= t + Duration::from_secs(3600));
        assert!(clock.wall() >= w + Duration::from_secs(3600));
        assert!(SystemClock.now() < clock.now());
    }
}
