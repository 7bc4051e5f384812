//! A stream connection's appends to the ring, in read order, on a task of
//! their own.
//!
//! The connection's reader hands each parsed read to an [`Appender`] and
//! reads on: while one read's records are copied, checksummed and written,
//! the next is already being read and parsed. Before, the reader appended
//! itself and read nothing meanwhile (one connection, TCP → syslog: ~6%
//! more events/s with the appender, see benches/HISTORY.md). The hand-over queue
//! is short, so a ring that blocks still stops the reads within a few
//! batches, which is the backpressure a TCP sender sees.

use super::parse_ahead::INLINE_FRAMES;
use super::read_budget::Held;
use super::stream::StreamShared;
use super::IngestError;
use crate::event::{buffers, EncodedEvent};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// A connection's appends, in the order they are handed over, on a task of
/// their own: while one read's records are copied, checksummed and written
/// to the ring, the connection reads on and starts parsing the next. The
/// queue is short ([`APPEND_QUEUE`] batches), so a ring that blocks still
/// stops the reads soon (the sender's backpressure). A batch of a read small
/// enough to be parsed in place ([`INLINE_FRAMES`]), with nothing queued, is
/// appended in place too (a task hop would only add latency).
pub(super) struct Appender {
    queue: mpsc::Sender<(Vec<EncodedEvent>, Held)>,
    /// Batches handed over and not yet appended.
    queued: Arc<AtomicUsize>,
    /// The ingest closed: later batches are counted as dropped.
    closed: Arc<AtomicBool>,
    /// Notified after each batch the task appends.
    appended: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// Batches queued for the appending task at most.
const APPEND_QUEUE: usize = 2;

impl Appender {
    pub(super) fn spawn(shared: Arc<StreamShared>) -> Self {
        let (queue, mut rx) = mpsc::channel::<(Vec<EncodedEvent>, Held)>(APPEND_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let appended = Arc::new(Notify::new());
        let (q, c, a) = (queued.clone(), closed.clone(), appended.clone());
        let task = tokio::spawn(async move {
            // drains until the connection drops its end, so nothing queued
            // goes uncounted
            while let Some((batch, held)) = rx.recv().await {
                if c.load(Ordering::Acquire) {
                    shared.metrics.dropped("shutdown", batch.len() as u64);
                } else if !deliver(&shared, batch).await {
                    c.store(true, Ordering::Release);
                }
                drop(held);
                q.fetch_sub(1, Ordering::AcqRel);
                a.notify_one();
            }
        });
        Appender {
            queue,
            queued,
            closed,
            appended,
            task,
        }
    }

    /// Batches handed over and not yet appended.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Resolves once a batch has been appended since the last call (at
    /// once if one was meanwhile): the moment to look at [`queued`] again.
    ///
    /// [`queued`]: Appender::queued
    pub(super) async fn appended(&self) {
        self.appended.notified().await
    }

    /// Appends `batch` after everything handed over before it, then gives
    /// back its read's share of the source's budget (`held`). False when
    /// the ingest is closed (the connection should end).
    pub(super) async fn append(
        &self,
        shared: &StreamShared,
        batch: Vec<EncodedEvent>,
        held: Held,
    ) -> bool {
        if self.closed.load(Ordering::Acquire) {
            shared.metrics.dropped("shutdown", batch.len() as u64);
            return false;
        }
        if batch.len() < INLINE_FRAMES && self.queued.load(Ordering::Acquire) == 0 {
            let open = deliver(shared, batch).await;
            if !open {
                self.closed.store(true, Ordering::Release);
            }
            return open;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError((batch, _))) = self.queue.send((batch, held)).await {
            // the task ended (it panicked: a bug)
            self.queued.fetch_sub(1, Ordering::AcqRel);
            shared.metrics.dropped("shutdown", batch.len() as u64);
            self.closed.store(true, Ordering::Release);
            return false;
        }
        !self.closed.load(Ordering::Acquire)
    }

    /// Waits until everything handed over is appended; false when the
    /// ingest closed meanwhile.
    pub(super) async fn finish(self) -> bool {
        drop(self.queue);
        let _ = self.task.await;
        !self.closed.load(Ordering::Acquire)
    }
}

/// Appends a batch, waiting while the ring blocks. False when the ingest is
/// closed, or the append panicked (a bug: the batch is counted as dropped),
/// and the connection should end.
///
/// Nothing else drops events:
/// - a buffer that fails (a disk error) is tried again, after 100 ms and
///   then twice as long each time up to 2 s, while the connection's reads
///   wait: its sender sees backpressure, as from a ring that blocks;
/// - an event too large for a ring segment is dropped alone (counted as
///   `too_large`): the batch's other events are appended one by one, in
///   order, instead of going down with it.
pub(super) async fn deliver(shared: &StreamShared, batch: Vec<EncodedEvent>) -> bool {
    if batch.is_empty() {
        return true;
    }
    let batch = match append_retrying(shared, batch).await {
        Step::Stored => return true,
        Step::End => return false,
        Step::TooLarge(batch, _) => batch,
    };
    for event in batch {
        match append_retrying(shared, vec![event]).await {
            Step::Stored => {}
            Step::End => return false,
            Step::TooLarge(one, error) => {
                shared.metrics.dropped("too_large", 1);
                shared.warnings.warn("too_large", "-", error);
                buffers::give_back(one);
            }
        }
    }
    true
}

/// What [`append_retrying`] did with a batch.
enum Step {
    /// In the ring (and counted as accepted).
    Stored,
    /// Not stored, and the connection should end (counted as dropped).
    End,
    /// Not stored: an event of it is too large for a segment.
    TooLarge(Vec<EncodedEvent>, String),
}

/// The first wait before a failed append is tried again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between tries.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Appends `batch`, trying again while the buffer fails (see [`deliver`]).
async fn append_retrying(shared: &StreamShared, mut batch: Vec<EncodedEvent>) -> Step {
    let n = batch.len() as u64;
    let mut wait = RETRY_FIRST;
    loop {
        let appended = AssertUnwindSafe(shared.ingest.append(batch))
            .catch_unwind()
            .await;
        let Ok((back, appended)) = appended else {
            tracing::error!(source = %shared.name, events = n, "appending a batch panicked (a bug); its events are dropped and the connection ends");
            shared.metrics.dropped("append_panicked", n);
            return Step::End;
        };
        let step = match appended {
            // no acknowledgement to withhold: the ring logged the flush error
            Ok(()) | Err(IngestError::NotDurable(_)) => {
                shared.metrics.accepted(&back);
                Step::Stored
            }
            Err(IngestError::Closed) => {
                shared.metrics.dropped("shutdown", n);
                Step::End
            }
            Err(IngestError::TooLarge(e)) => return Step::TooLarge(back, e),
            // (`append` waits while the ring is full; a failing buffer is
            // waited for here)
            Err(e @ (IngestError::Failed(_) | IngestError::Full(_))) => {
                shared.metrics.connection_error("buffer_error");
                shared.warnings.warn("buffer_error", "-", e);
                batch = back;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        buffers::give_back(back);
        return step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};
    use crate::sources::gated_ingest::{shared, Gated};
    use std::time::Duration;
    use tokio::time::timeout;

    /// `n` events numbered from `from`.
    fn batch(from: usize, n: usize) -> Vec<EncodedEvent> {
        (from..from + n)
            .map(|i| {
                let mut e = Event::new("SYSTEM", None, Severity::Info);
                e.message = Some(i.to_string());
                e.encode()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_appended_in_the_order_handed_over() {
        let ingest = Gated::new(1000, Duration::from_millis(2), false);
        let shared = shared(ingest.clone(), 1 << 20);
        let appender = Appender::spawn(shared.clone());
        // large batches go to the task; small ones right behind them must
        // wait for them, and small ones with nothing queued go in place
        let sizes = [40, 1, 3, 40, 40, 2, 1, 40, 5, 1, 1, 1, 40, 1];
        let mut next = 0;
        for n in sizes {
            assert!(
                appender
                    .append(&shared, batch(next, n), shared.budget.nothing())
                    .await
            );
            next += n;
        }
        assert!(appender.finish().await);
        ingest.assert_took_in_order(next);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_ingest_stops_the_reader_after_a_few_batches() {
        let ingest = Gated::new(0, Duration::ZERO, false);
        let shared = shared(ingest.clone(), 1 << 20);
        let appender = Appender::spawn(shared.clone());
        let wait = Duration::from_secs(2);
        // one batch waits in the ingest, APPEND_QUEUE more in the queue...
        for i in 0..=APPEND_QUEUE {
            let handed = timeout(
                wait,
                appender.append(&shared, batch(i * 20, 20), shared.budget.nothing()),
            )
            .await;
            assert_eq!(handed, Ok(true), "batch {i} is taken while there is room");
        }
        // ...and the next one is not taken: the reader stops reading
        let more = APPEND_QUEUE + 1;
        let mut held =
            Box::pin(appender.append(&shared, batch(more * 20, 20), shared.budget.nothing()));
        assert!(timeout(Duration::from_millis(300), &mut held)
            .await
            .is_err());
        assert_eq!(ingest.calls.lock().unwrap().len(), 1);
        assert_eq!(
            appender.queued(),
            APPEND_QUEUE + 2,
            "one appending, two queued, one held"
        );
        // nothing appended: no notice that there is room
        assert!(timeout(Duration::from_millis(100), appender.appended())
            .await
            .is_err());
        // the ring takes one batch: the notice comes, and the count drops
        ingest.permits.add_permits(1);
        timeout(wait, appender.appended()).await.expect("notified");
        assert!(appender.queued() <= APPEND_QUEUE + 1);
        // the ring takes batches again: everything arrives, in order
        ingest.permits.add_permits(100);
        assert_eq!(timeout(wait, held).await, Ok(true));
        while appender.queued() > 0 {
            timeout(wait, appender.appended()).await.expect("notified");
        }
        assert!(appender.finish().await);
        ingest.assert_took_in_order((more + 1) * 20);
    }

    /// Offered again until taken, nothing dropped; the waits between the
    /// tries double from 100 ms and stop growing at 2 s.
    #[tokio::test(start_paused = true)]
    async fn a_failing_buffer_is_tried_again_until_it_takes_the_batch() {
        for (failures, waits_ms) in [
            (5, 100 + 200 + 400 + 800 + 1600),
            (7, 100 + 200 + 400 + 800 + 1600 + 2000 + 2000),
        ] {
            let ingest = Gated::faulty(failures, None);
            let shared = shared(ingest.clone(), 1 << 20);
            let started = tokio::time::Instant::now();
            assert!(deliver(&shared, batch(0, 20)).await);
            assert_eq!(ingest.calls.lock().unwrap().len(), failures + 1);
            ingest.assert_stored_in_order(20);
            assert_eq!(started.elapsed(), Duration::from_millis(waits_ms));
        }
    }

    #[tokio::test]
    async fn an_event_too_large_for_a_segment_is_dropped_alone() {
        let ingest = Gated::faulty(0, Some("4"));
        let shared = shared(ingest.clone(), 1 << 20);
        assert!(deliver(&shared, batch(0, 10)).await);
        let want: Vec<String> = (0..10).filter(|&i| i != 4).map(|i| i.to_string()).collect();
        assert_eq!(*ingest.stored.lock().unwrap(), want);
        // the batch once, then each event on its own
        assert_eq!(ingest.calls.lock().unwrap().len(), 11);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_ingest_ends_the_connection_and_takes_nothing_more() {
        let ingest = Gated::new(0, Duration::ZERO, true);
        let shared = shared(ingest.clone(), 1 << 20);
        let appender = Appender::spawn(shared.clone());
        let mut open = true;
        for i in 0..20 {
            open = appender
                .append(&shared, batch(i * 20, 20), shared.budget.nothing())
                .await;
            if !open {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!open, "the reader learns that the ingest closed");
        assert!(!appender.finish().await);
        // the first refused batch ended it: later ones were counted as
        // dropped instead of offered again
        assert_eq!(ingest.calls.lock().unwrap().len(), 1);
    }
}
