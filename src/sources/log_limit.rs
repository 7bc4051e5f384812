//! Rate limiting of a source's warnings, per reason: the first occurrence is
//! logged in full, then the ones that follow within [`WINDOW`] are only
//! counted, and one summary per window says how many there were (with the
//! last one's details). A flood of failing clients thus writes at most one
//! line per reason every [`WINDOW`], and nothing is left out of the count.
//!
//! The limiter decides; [`Warnings`] logs what it lets through, at `warn`,
//! and writes the summaries. Time comes from a [`Clock`] so the tests can
//! move it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the occurrences after a logged one are only counted.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// How often a source looks for windows that are over, to write their
/// summaries (within a second of a window's end).
pub(crate) const SUMMARY_CHECK: Duration = Duration::from_secs(1);
const _: () = assert!(SUMMARY_CHECK.as_secs() < WINDOW.as_secs());

/// Where the limiter reads the time.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The monotonic clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What to do with one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Log it. `suppressed` occurrences of the window before it were not
    /// logged nor summarised yet (no [`LogLimiter::due`] ran since).
    Log { suppressed: u64 },
    /// Only counted: a summary will say so.
    Quiet,
}

/// The occurrences a window suppressed, for its summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary<D> {
    pub reason: &'static str,
    pub suppressed: u64,
    /// How long the window lasted (from its logged occurrence to now).
    pub over: Duration,
    /// The last suppressed occurrence's details.
    pub last: D,
}

struct Window<D> {
    opened: Instant,
    suppressed: u64,
    last: Option<D>,
}

/// One source's limiter; `D` is what a summary tells of the last occurrence.
pub(crate) struct LogLimiter<D> {
    window: Duration,
    clock: Arc<dyn Clock>,
    reasons: Mutex<HashMap<&'static str, Window<D>>>,
}

impl<D> LogLimiter<D> {
    pub(crate) fn new(window: Duration, clock: Arc<dyn Clock>) -> Self {
        LogLimiter {
            window,
            clock,
            reasons: Mutex::new(HashMap::new()),
        }
    }

    /// One occurrence of `reason`; `detail` is called only when it is kept
    /// for a summary.
    pub(crate) fn admit(&self, reason: &'static str, detail: impl FnOnce() -> D) -> Admit {
        let now = self.clock.now();
        let mut reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        match reasons.get_mut(reason) {
            Some(w) if now.saturating_duration_since(w.opened) < self.window => {
                w.suppressed += 1;
                w.last = Some(detail());
                Admit::Quiet
            }
            Some(w) => {
                // the window is over and no summary was written for it
                let suppressed = w.suppressed;
                *w = Window {
                    opened: now,
                    suppressed: 0,
                    last: None,
                };
                Admit::Log { suppressed }
            }
            None => {
                reasons.insert(
                    reason,
                    Window {
                        opened: now,
                        suppressed: 0,
                        last: None,
                    },
                );
                Admit::Log { suppressed: 0 }
            }
        }
    }

    /// The summaries of the windows that are over: each of those that
    /// suppressed something opens a new window (the flood goes on, quietly);
    /// the others are forgotten (the next occurrence is logged in full).
    pub(crate) fn due(&self) -> Vec<Summary<D>> {
        self.take(false)
    }

    /// The summaries of every window, over or not (at shutdown).
    pub(crate) fn flush(&self) -> Vec<Summary<D>> {
        self.take(true)
    }

    fn take(&self, all: bool) -> Vec<Summary<D>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        let mut reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        reasons.retain(|reason, w| {
            let over = now.saturating_duration_since(w.opened);
            if over < self.window && !all {
                return true;
            }
            let Some(last) = w.last.take() else {
                return false;
            };
            out.push(Summary {
                reason,
                suppressed: std::mem::take(&mut w.suppressed),
                over,
                last,
            });
            w.opened = now;
            !all
        });
        out.sort_by_key(|s| s.reason);
        out
    }
}

/// The last occurrence of a rate-limited warning, for its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warned {
    pub peer: String,
    pub error: String,
}

/// A source's problems worth an operator's eye (a failed TLS handshake, an
/// oversized frame, a buffer that refuses appends), logged at `warn` a few
/// at a time: the first of a reason in full, then one summary per
/// [`WINDOW`] while they go on.
pub(crate) struct Warnings {
    source: String,
    /// What a line says, by its `reason` (the label its counter has).
    text: fn(&str) -> &'static str,
    pub limiter: LogLimiter<Warned>,
}

impl Warnings {
    pub(crate) fn new(source: &str, text: fn(&str) -> &'static str) -> Self {
        Warnings {
            source: source.to_string(),
            text,
            limiter: LogLimiter::new(WINDOW, Arc::new(SystemClock)),
        }
    }

    /// The source's name.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Logs a problem at `warn` (or only counts it, when this reason was
    /// logged less than [`WINDOW`] ago: its summary will say so).
    pub(crate) fn warn(&self, reason: &'static str, peer: &str, error: impl std::fmt::Display) {
        let admitted = self.limiter.admit(reason, || Warned {
            peer: peer.to_string(),
            error: error.to_string(),
        });
        let Admit::Log { suppressed } = admitted else {
            return;
        };
        let (source, what) = (&self.source, (self.text)(reason));
        if suppressed == 0 {
            tracing::warn!(%source, %peer, reason, error = %error, "{what}");
        } else {
            // no summary pass ran since the last window ended
            tracing::warn!(%source, %peer, reason, error = %error, suppressed,
                "{what} ({suppressed} more before it were not logged)");
        }
    }

    /// Writes the summaries of the windows that are over (all of them with
    /// `all`, at shutdown).
    pub(crate) fn summarise(&self, all: bool) {
        let summaries = match all {
            true => self.limiter.flush(),
            false => self.limiter.due(),
        };
        for s in summaries {
            self.log_summary(&s);
        }
    }

    fn log_summary(&self, s: &Summary<Warned>) {
        let secs = s.over.as_secs_f64().round();
        tracing::warn!(
            source = %self.source,
            reason = s.reason,
            suppressed = s.suppressed,
            last_peer = %s.last.peer,
            last_error = %s.last.error,
            "{}: {} more times in the last {secs}s (not logged one by one)",
            (self.text)(s.reason),
            s.suppressed,
        );
    }

    /// Awaits `work`, writing the summaries every [`SUMMARY_CHECK`]
    /// meanwhile, and those left once it is done.
    pub(crate) async fn summarising<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let mut ticks = tokio::time::interval(SUMMARY_CHECK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(work);
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = ticks.tick() => self.summarise(false),
            }
        };
        self.summarise(true);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves.
    struct Manual(Mutex<Instant>);

    impl Manual {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for Manual {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn limiter() -> (LogLimiter<u32>, Arc<Manual>) {
        let clock = Arc::new(Manual(Mutex::new(Instant::now())));
        (LogLimiter::new(WINDOW, clock.clone()), clock)
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_is_logged_the_rest_of_the_window_counted_then_summarised_once() {
        let (l, clock) = limiter();
        assert_eq!(l.admit("tls", || 0), Admit::Log { suppressed: 0 });
        for i in 1..=5 {
            clock.advance(SEC);
            assert_eq!(l.admit("tls", || i), Admit::Quiet);
        }
        // not before the window is over
        assert_eq!(l.due(), vec![]);
        clock.advance(5 * SEC);
        assert_eq!(
            l.due(),
            vec![Summary {
                reason: "tls",
                suppressed: 5,
                over: 10 * SEC,
                last: 5
            }]
        );
        // one summary per window
        assert_eq!(l.due(), vec![]);
    }

    #[test]
    fn a_flood_gives_one_summary_per_window_and_no_other_line() {
        let (l, clock) = limiter();
        assert_eq!(l.admit("tls", || 0), Admit::Log { suppressed: 0 });
        let mut summaries = Vec::new();
        // 35 s of one failure every 100 ms, the summaries looked at every second
        for tick in 1..=350u32 {
            clock.advance(SEC / 10);
            if tick % 10 == 0 {
                summaries.extend(l.due());
            }
            assert_eq!(l.admit("tls", || tick), Admit::Quiet, "at {tick}");
        }
        let counts: Vec<u64> = summaries.iter().map(|s| s.suppressed).collect();
        assert_eq!(counts, [99, 100, 100], "{summaries:?}");
        assert_eq!(summaries[2].last, 299);
        assert_eq!(summaries[2].over, 10 * SEC);
        // the rest at shutdown: nothing is left out of the count
        let rest = l.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].suppressed, 51);
        assert_eq!(counts.iter().sum::<u64>() + 51, 350);
        assert_eq!(l.flush(), vec![]);
    }

    #[test]
    fn after_a_quiet_window_the_next_one_is_logged_in_full() {
        let (l, clock) = limiter();
        assert_eq!(l.admit("tls", || 0), Admit::Log { suppressed: 0 });
        clock.advance(11 * SEC);
        assert_eq!(l.due(), vec![], "nothing suppressed, nothing to say");
        assert_eq!(l.admit("tls", || 1), Admit::Log { suppressed: 0 });
        // no summary pass ran: the next logged one carries the count
        assert_eq!(l.admit("tls", || 2), Admit::Quiet);
        clock.advance(10 * SEC);
        assert_eq!(l.admit("tls", || 3), Admit::Log { suppressed: 1 });
        assert_eq!(l.flush(), vec![]);
    }

    #[test]
    fn reasons_are_limited_apart() {
        let (l, clock) = limiter();
        assert_eq!(l.admit("tls", || 0), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit("oversize", || 0), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit("tls", || 1), Admit::Quiet);
        assert_eq!(l.admit("oversize", || 2), Admit::Quiet);
        assert_eq!(l.admit("oversize", || 3), Admit::Quiet);
        clock.advance(10 * SEC);
        let s = l.due();
        let got: Vec<_> = s.iter().map(|s| (s.reason, s.suppressed, s.last)).collect();
        assert_eq!(got, [("oversize", 2, 3), ("tls", 1, 1)]);
    }
}
