//! A server's request to wait (`Retry-After` on a 429 or 503), held for the
//! whole destination: every batch it has in flight (`concurrency`), and
//! every new one, waits until then, not only the batch that was answered.
//! A throttled SIEM that got the other batches' requests anyway counts
//! them against the client's quota, and some (Datadog, Azure) lengthen
//! the wait for each. A reload that restarts the destination with the
//! same target keeps the wait (see `app`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the destination's server said it may be called again.
#[derive(Debug, Default)]
pub struct Throttle {
    until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// The server asked for no calls before `until`; a later wait already
    /// held stays. True when this made the wait longer.
    pub fn hold_until(&self, until: Instant) -> bool {
        let mut held = self.until.lock().unwrap();
        match *held {
            Some(t) if t >= until => false,
            _ => {
                *held = Some(until);
                true
            }
        }
    }

    /// When sends may go again, if that is still ahead.
    pub fn until(&self) -> Option<Instant> {
        let held = *self.until.lock().unwrap();
        held.filter(|t| *t > Instant::now())
    }

    /// How long from now sends still wait (zero: they may go).
    pub fn remaining(&self) -> Duration {
        self.until()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_wait_asked_for_holds() {
        let t = Throttle::default();
        assert_eq!(t.until(), None);
        assert_eq!(t.remaining(), Duration::ZERO);
        let now = Instant::now();
        assert!(t.hold_until(now + Duration::from_secs(5)));
        assert!(!t.hold_until(now + Duration::from_secs(2)), "shorter");
        assert_eq!(t.until(), Some(now + Duration::from_secs(5)));
        assert!(t.remaining() > Duration::from_secs(4));
        assert!(t.hold_until(now + Duration::from_secs(9)));
        assert_eq!(t.until(), Some(now + Duration::from_secs(9)));
    }

    #[test]
    fn a_wait_in_the_past_is_none() {
        let t = Throttle::default();
        t.hold_until(Instant::now() - Duration::from_millis(1));
        assert_eq!(t.until(), None);
    }
}
