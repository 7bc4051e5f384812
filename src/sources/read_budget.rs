//! How much a source's connections may hold between reading and the ring,
//! all connections together (`queue_bytes` of `syslog_tcp`, `syslog_tls`
//! and `http`; an HTTP request takes its body's share before reading it).
//!
//! Each connection already stops reading once it holds a few reads not yet
//! in the ring, but that bound is per connection: with a thousand senders
//! and a ring that blocks, a source would hold a thousand times that (the
//! bytes read, and their records, which take about twice as much). A
//! connection takes its share of the source's [`ReadBudget`] for each read
//! before parsing it, and gives it back once the read's records are in the
//! ring (or counted as dropped); while the budget is spent, connections
//! wait with what they read unparsed and read nothing more, which is the
//! backpressure their senders see. The budget is a fair (FIFO) semaphore of
//! bytes, so a connection waiting for a large share is not overtaken
//! forever by small ones.

use super::metrics::SourceMetrics;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes a source's connections may hold between reading and the ring.
pub(crate) struct ReadBudget {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Where the bytes held show (`siem_relay_source_queued_bytes`).
    metrics: SourceMetrics,
}

/// One read's share of a [`ReadBudget`], given back when dropped.
pub(crate) struct Held {
    budget: Arc<ReadBudget>,
    bytes: usize,
    _permit: OwnedSemaphorePermit,
}

impl ReadBudget {
    /// A budget of `limit` bytes (at least 1), reported through `metrics`.
    pub(crate) fn new(limit: usize, metrics: SourceMetrics) -> Arc<Self> {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Arc::new(ReadBudget {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        })
    }

    /// Bytes held now (and promised to those waiting).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// The share a read of `bytes` takes: a read larger than the whole
    /// budget takes all of it (it could never be held otherwise).
    fn share(&self, bytes: usize) -> u32 {
        bytes.min(self.limit) as u32
    }

    /// `bytes` of the budget if they are free now (and nobody waits before).
    pub(crate) fn try_hold(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(self.share(bytes))
            .ok()?;
        Some(self.held_by(permit))
    }

    /// `bytes` of the budget once they are free, after those who wait before.
    pub(crate) fn hold(self: &Arc<Self>, bytes: usize) -> impl Future<Output = Held> + 'static {
        let budget = self.clone();
        let wanted = self.permits.clone().acquire_many_owned(self.share(bytes));
        async move {
            let permit = wanted.await.expect("a read budget is never closed");
            budget.held_by(permit)
        }
    }

    /// No share at all: for a read taken past the budget when a connection
    /// ends (its last read is appended without waiting).
    pub(crate) fn nothing(self: &Arc<Self>) -> Held {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(0)
            .expect("zero permits are always free");
        self.held_by(permit)
    }

    fn held_by(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Held {
        let bytes = permit.num_permits();
        self.metrics.queued(bytes as f64);
        Held {
            budget: self.clone(),
            bytes,
            _permit: permit,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.metrics.queued(-(self.bytes as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    fn budget(limit: usize) -> Arc<ReadBudget> {
        ReadBudget::new(limit, SourceMetrics::new("budget-test"))
    }

    #[tokio::test]
    async fn holds_up_to_the_limit_and_gives_back_on_drop() {
        let b = budget(100);
        let a = b.try_hold(60).expect("free");
        assert_eq!(b.held(), 60);
        assert!(b.try_hold(50).is_none(), "60 + 50 is over 100");
        let c = b.try_hold(40).expect("60 + 40 fits");
        assert_eq!(b.held(), 100);
        drop(a);
        assert_eq!(b.held(), 40);
        assert!(b.try_hold(50).is_some());
        drop(c);
        assert_eq!(b.held(), 0);
    }

    #[tokio::test]
    async fn a_read_larger_than_the_budget_takes_all_of_it() {
        let b = budget(100);
        let big = b.try_hold(1_000).expect("clamped to the limit");
        assert_eq!(b.held(), 100);
        assert!(b.try_hold(1).is_none());
        drop(big);
        assert!(b.try_hold(1).is_some());
    }

    #[tokio::test]
    async fn a_waiter_gets_its_share_once_enough_is_given_back_and_keeps_its_turn() {
        let b = budget(100);
        let first = b.try_hold(90).unwrap();
        let mut big = Box::pin(b.hold(50));
        assert!(timeout(Duration::from_millis(50), &mut big).await.is_err());
        // a small read asking later does not overtake the waiting one
        assert!(
            b.try_hold(5).is_none(),
            "FIFO: the waiting share comes first"
        );
        drop(first);
        let got = timeout(Duration::from_secs(2), big).await.expect("woken");
        assert_eq!(got.bytes, 50);
        assert_eq!(b.held(), 50);
    }
}
