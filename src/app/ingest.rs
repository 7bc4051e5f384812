//! The ring as the sources' [`Ingest`]: appends map to ring appends, a full
//! ring under a `block` destination becomes `IngestError::Full`.

use crate::buffer::{AppendError, Ring};
use crate::event::EncodedEvent;
use crate::sources::{Appended, Ingest, IngestError};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long an HTTP client is told to wait when the ring blocks.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Sources append into the ring through this.
pub struct RingIngest {
    pub ring: Ring,
    /// Whether a running destination reads syslog hints (kept by the relay
    /// as destinations start and stop).
    pub syslog_hints: Arc<AtomicBool>,
}

fn map_err(e: AppendError) -> IngestError {
    match e {
        AppendError::Full(_) => IngestError::Full(RETRY_AFTER),
        AppendError::Closed => IngestError::Closed,
        AppendError::NotDurable(e) => IngestError::NotDurable(e),
        e @ AppendError::TooLarge { .. } => IngestError::TooLarge(e.to_string()),
        e @ AppendError::Io(_) => IngestError::Failed(e.to_string()),
    }
}

impl Ingest for RingIngest {
    fn try_append(&self, events: &[EncodedEvent]) -> Result<(), IngestError> {
        self.ring.append(events).map(drop).map_err(map_err)
    }

    fn append(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let (events, r) = self.ring.append_owned(events).await;
            (events, r.map(drop).map_err(map_err))
        })
    }

    fn try_append_owned(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let (events, r) = self.ring.try_append_owned(events).await;
            (events, r.map(drop).map_err(map_err))
        })
    }

    fn syslog_hints(&self) -> bool {
        self.syslog_hints.load(Ordering::Relaxed)
    }
}
