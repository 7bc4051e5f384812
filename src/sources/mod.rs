//! Sources: listeners that take events in (syslog over UDP, TCP and TLS; JSON
//! over HTTP), parse them with [`crate::parse`], and hand them to an [`Ingest`]
//! (the ring, in the running relay).

use crate::event::EncodedEvent;
use futures::future::BoxFuture;
use std::time::Duration;
use thiserror::Error;

/// Why events could not be taken in.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The ring is full and a `block` destination holds the oldest segment:
    /// try again later (HTTP answers 503 with this as Retry-After).
    #[error("buffer full, retry in {0:?}")]
    Full(Duration),
    /// The relay is shutting down.
    #[error("relay is shutting down")]
    Closed,
    /// The buffer failed (disk error, oversized record…).
    #[error("buffer error: {0}")]
    Failed(String),
}

/// Where sources put events. Implemented by the ring (in `app`) and by
/// in-memory collectors in tests.
pub trait Ingest: Send + Sync + 'static {
    /// Appends all of `events` or none of them, without waiting. Returns after
    /// the events are durable as the fsync policy says.
    fn try_append(&self, events: &[EncodedEvent]) -> Result<(), IngestError>;

    /// Appends all of `events`, waiting while the buffer blocks (TCP stops
    /// reading meanwhile, which is the backpressure a sender sees).
    fn append<'a>(&'a self, events: &'a [EncodedEvent]) -> BoxFuture<'a, Result<(), IngestError>>;
}
