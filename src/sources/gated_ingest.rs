//! Test support for the stream sources: an ingest that blocks as a full
//! ring does, and a source's shared state around it.

use super::log_limit::Warnings;
use super::metrics::SourceMetrics;
use super::read_budget::ReadBudget;
use super::stream::{warning_text, StreamShared};
use super::{Appended, Ingest, IngestError};
use crate::event::{EncodedEvent, Event};
use crate::parse::FramerConfig;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// An ingest that takes one batch per permit (none: it blocks, as a
/// full ring does), after `delay`, and notes each batch's messages.
pub(crate) struct Gated {
    pub permits: Semaphore,
    delay: Duration,
    closed: bool,
    /// Every append panics (a bug in the ingest).
    panics: bool,
    /// The next this many appends fail as a failing disk makes them.
    failures: AtomicUsize,
    /// An append with an event of this message is refused as too large.
    too_large: Option<String>,
    /// Every batch offered, as its messages.
    pub calls: Mutex<Vec<Vec<String>>>,
    /// The messages of the batches taken, in order.
    pub stored: Mutex<Vec<String>>,
}

impl Gated {
    pub(crate) fn new(permits: usize, delay: Duration, closed: bool) -> Arc<Self> {
        Arc::new(Gated {
            permits: Semaphore::new(permits),
            delay,
            closed,
            panics: false,
            failures: AtomicUsize::new(0),
            too_large: None,
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
        })
    }

    /// An ingest that takes every batch, except that its first `failures`
    /// appends fail (a disk error) and any batch with an event whose
    /// message is `too_large` is refused as too large for a segment.
    pub(crate) fn faulty(failures: usize, too_large: Option<&str>) -> Arc<Self> {
        Arc::new(Gated {
            permits: Semaphore::new(Semaphore::MAX_PERMITS),
            delay: Duration::ZERO,
            closed: false,
            panics: false,
            failures: AtomicUsize::new(failures),
            too_large: too_large.map(String::from),
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
        })
    }

    /// An ingest whose every append panics.
    pub(crate) fn panicking() -> Arc<Self> {
        Arc::new(Gated {
            permits: Semaphore::new(0),
            delay: Duration::ZERO,
            closed: false,
            panics: true,
            failures: AtomicUsize::new(0),
            too_large: None,
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
        })
    }

    /// It took events 0..n, each once, in order.
    pub(crate) fn assert_stored_in_order(&self, n: usize) {
        let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        assert_eq!(*self.stored.lock().unwrap(), want);
    }

    /// It was offered events 0..n, each once, in order.
    pub(crate) fn assert_took_in_order(&self, n: usize) {
        let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        assert_eq!(self.calls.lock().unwrap().concat(), want);
    }
}

impl Ingest for Gated {
    fn try_append(&self, _: &[EncodedEvent]) -> Result<(), IngestError> {
        unreachable!("streams wait")
    }

    fn append(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let r = self.append_ref(&events).await;
            (events, r)
        })
    }
}

impl Gated {
    async fn append_ref(&self, events: &[EncodedEvent]) -> Result<(), IngestError> {
        let msgs: Vec<String> = events
            .iter()
            .map(|e| Event::decode(e.body()).unwrap().message.unwrap())
            .collect();
        self.calls.lock().unwrap().push(msgs.clone());
        if self.panics {
            panic!("an ingest bug");
        }
        if self.closed {
            return Err(IngestError::Closed);
        }
        let failing = self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(IngestError::Failed("writing to the buffer failed".into()));
        }
        if self.too_large.as_ref().is_some_and(|m| msgs.contains(m)) {
            return Err(IngestError::TooLarge(
                "record does not fit a segment".into(),
            ));
        }
        self.permits.acquire().await.unwrap().forget();
        tokio::time::sleep(self.delay).await;
        self.stored.lock().unwrap().extend(msgs);
        Ok(())
    }
}

/// A stream source's shared state around `ingest`, with a budget of
/// `budget` bytes for what its connections hold.
pub(crate) fn shared(ingest: Arc<Gated>, budget: usize) -> Arc<StreamShared> {
    Arc::new(StreamShared {
        name: "t".into(),
        ingest,
        timezone: chrono_tz::UTC,
        framer: FramerConfig::default(),
        idle_timeout: Duration::from_secs(60),
        max_connections: 64,
        budget: ReadBudget::new(budget, SourceMetrics::new("t")),
        metrics: SourceMetrics::new("t"),
        warnings: Warnings::new("t", warning_text),
    })
}
