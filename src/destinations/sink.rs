//! The one trait every destination implements: deliver a batch and say what
//! became of each event. Batching, concurrency, retries, dead-lettering and
//! status live in the shared loop (`worker`), not here.

use super::batch::Batch;
use futures::future::BoxFuture;
use std::time::Duration;

/// What became of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Every event was accepted.
    Delivered,
    /// Nothing was accepted; send the whole batch again (after `after`, when
    /// the server said, e.g. `Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The whole batch was refused for good: it goes to the dead-letter file.
    Rejected { reason: String },
    /// Some events were accepted. `retry` and `rejected` hold indices into
    /// `batch.events`; every index not named was accepted. `retry_reason`:
    /// why the `retry` events must go again, in the server's words
    /// (Elasticsearch's item status and error type), for the loop's
    /// `last_error` and its give-up reason once `max_attempts` runs out;
    /// `None` when they were not judged (sent again for another event's fault).
    Partial {
        retry: Vec<usize>,
        rejected: Vec<(usize, String)>,
        after: Option<Duration>,
        retry_reason: Option<String>,
    },
}

impl Delivery {
    pub fn retry(reason: impl Into<String>) -> Self {
        Delivery::Retry {
            reason: reason.into(),
            after: None,
        }
    }
    pub fn rejected(reason: impl Into<String>) -> Self {
        Delivery::Rejected {
            reason: reason.into(),
        }
    }
}

/// The outcome of `test-destination`: a one-line human message and success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub ok: bool,
    pub message: String,
}

/// What a sink tells the delivery loop while a send goes on: a request
/// of the batch that the server refused and the sink deals with itself
/// (an HTTP 413, answered by sending the request again in halves). The
/// loop counts it as a failed attempt in the status and logs it, so that a
/// destination refusing everything as too large is not shown healthy and
/// silent for as long as the halving takes.
pub trait SendWatch: Send + Sync {
    /// A request of the batch failed; `reason` as `last_error` shows it.
    fn failed_attempt(&self, reason: &str);
}

/// A destination's transport and wire format.
pub trait Sink: Send + Sync + 'static {
    /// Delivers `batch`. Must not panic on any server answer; transport errors
    /// are `Delivery::Retry`.
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery>;

    /// [`send`](Self::send), telling `watch` of the failed requests the
    /// sink deals with itself meanwhile. By default, `send`: a sink that
    /// deals with none.
    fn send_watched<'a>(
        &'a self,
        batch: &'a Batch,
        watch: &'a dyn SendWatch,
    ) -> BoxFuture<'a, Delivery> {
        let _ = watch;
        self.send(batch)
    }

    /// Where this sink sends, for status and messages (`https://host:8088`, a path…).
    fn target(&self) -> String;

    /// Connection test for `test-destination`: by default sends `probe` (one
    /// synthetic `relay.test` event) through `send`. Formats with a health
    /// endpoint check it first.
    fn test<'a>(&'a self, probe: &'a Batch) -> BoxFuture<'a, TestOutcome> {
        Box::pin(async move {
            match self.send(probe).await {
                Delivery::Delivered => TestOutcome {
                    ok: true,
                    message: format!("connected to {}", self.target()),
                },
                Delivery::Retry { reason, .. } | Delivery::Rejected { reason } => TestOutcome {
                    ok: false,
                    // a reason may name the target already (the syslog one's do)
                    message: match reason.starts_with(&self.target()) {
                        true => reason,
                        false => format!("{}: {reason}", self.target()),
                    },
                },
                Delivery::Partial {
                    rejected, retry, ..
                } => TestOutcome {
                    ok: false,
                    message: format!(
                        "{}: partially refused ({} rejected, {} to retry){}",
                        self.target(),
                        rejected.len(),
                        retry.len(),
                        rejected
                            .first()
                            .map(|r| format!(": {}", r.1))
                            .unwrap_or_default()
                    ),
                },
            }
        })
    }

    /// Builds the wire bytes a send of `batch` would write (request bodies
    /// before compression; for `syslog`, the octet-counted TCP/TLS frames)
    /// without sending, and returns their length: `None` for sinks without a
    /// separate encoding step. For the encoder benchmarks.
    fn encode_only(&self, _batch: &Batch) -> Option<usize> {
        None
    }

    /// Whether this sink reads the records' syslog hints
    /// (`event::syslog_hint`). While no running sink does, ingest leaves
    /// them out of the ring.
    fn reads_syslog_hint(&self) -> bool {
        false
    }

    /// Flushes and closes (file handles, connections). Called on shutdown and
    /// when a reload removes the destination.
    fn close<'a>(&'a self) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
