//! The ring as the sources' [`Ingest`]: appends map to ring appends, a full
//! ring under a `block` destination becomes `IngestError::Full`. A batch
//! more than the ring can take in one append (one TCP read of short lines
//! into a ring of a few segments) is appended in halves: whole, it would
//! have been refused as full for ever, the connection stalled with nothing
//! said. The halves are appended in order; once one is in, the ones after
//! it wait for room even on a path that does not wait (HTTP), for
//! [`REST_WAIT`] at most: refused at once, a request larger than a ring
//! held by a `block` destination could never get in whole, and each retry
//! stored its first part again. If a later half fails all the same, the
//! ones before it stay in the ring (a client that retries sends them twice).

use crate::buffer::{AppendError, Ring};
use crate::event::EncodedEvent;
use crate::sources::{Appended, Ingest, IngestError};
use futures::future::BoxFuture;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an HTTP client is told to wait when the ring blocks.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the rest of a batch waits for room once its first part is in
/// the ring (see the module doc).
const REST_WAIT: Duration = Duration::from_secs(10);

/// Whether an append waits for room in a ring a `block` destination holds.
#[derive(Debug, Clone, Copy)]
enum Wait {
    No,
    Forever,
    Until(Instant),
}

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
        e @ (AppendError::TooLarge { .. } | AppendError::LargerThanRing) => {
            IngestError::TooLarge(e.to_string())
        }
        e @ AppendError::Io(_) => IngestError::Failed(e.to_string()),
    }
}

/// Whether an append's answer says to append the batch in halves.
fn split(r: &Result<Range<u64>, AppendError>, events: usize) -> bool {
    matches!(r, Err(AppendError::LargerThanRing)) && events > 1
}

impl RingIngest {
    /// An owned append ([`Ring::append_owned`], or without waiting for space
    /// [`Ring::try_append_owned`]), in halves where the batch is more than
    /// the ring takes at once.
    fn owned(&self, mut events: Vec<EncodedEvent>, wait: Wait) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let (back, r) = match wait {
                Wait::No => self.ring.try_append_owned(events).await,
                Wait::Forever => self.ring.append_owned(events).await,
                Wait::Until(t) => {
                    match tokio::time::timeout_at(t.into(), self.ring.append_owned(events)).await {
                        Ok(done) => done,
                        // still no room: the events went with the append
                        // given up (not in the ring, unless the writer had
                        // taken them from its queue already: at least once)
                        Err(_) => return (Vec::new(), Err(IngestError::Full(RETRY_AFTER))),
                    }
                }
            };
            if !split(&r, back.len()) {
                return (back, r.map(drop).map_err(map_err));
            }
            events = back;
            let second = events.split_off(events.len() / 2);
            let (mut first, r) = self.owned(events, wait).await;
            if r.is_err() {
                first.extend(second);
                return (first, r);
            }
            // the first part is in: refused now, the client would send it again
            let rest = match wait {
                Wait::No => Wait::Until(Instant::now() + REST_WAIT),
                w => w,
            };
            let (second, r) = self.owned(second, rest).await;
            first.extend(second);
            (first, r)
        })
    }
}

impl Ingest for RingIngest {
    fn try_append(&self, events: &[EncodedEvent]) -> Result<(), IngestError> {
        let r = self.ring.append(events);
        if split(&r, events.len()) {
            let (first, second) = events.split_at(events.len() / 2);
            return self
                .try_append(first)
                .and_then(|()| self.try_append(second));
        }
        r.map(drop).map_err(map_err)
    }

    fn append(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        self.owned(events, Wait::Forever)
    }

    fn try_append_owned(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        self.owned(events, Wait::No)
    }

    fn syslog_hints(&self) -> bool {
        self.syslog_hints.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{RingSettings, WhenFull};
    use crate::config::FsyncPolicy;
    use crate::event::{Event, Severity};

    fn ingest(dir: &std::path::Path) -> RingIngest {
        let (ring, _) = Ring::open(RingSettings {
            dir: dir.to_path_buf(),
            max_bytes: 256 << 10,
            segment_bytes: 64 << 10,
            max_age: Duration::ZERO,
            fsync: FsyncPolicy::Never,
        })
        .unwrap();
        RingIngest {
            ring,
            syslog_hints: Arc::default(),
        }
    }

    fn events(n: usize, pad: usize) -> Vec<EncodedEvent> {
        (0..n)
            .map(|i| {
                let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
                e.message = Some(format!("{i} {}", "x".repeat(pad)));
                e.encode()
            })
            .collect()
    }

    /// ~600 KB of records into a ring of four 64 KiB segments: refused
    /// whole as more than it can take at once, appended in halves by the
    /// ingest, in order, every one of them (the ring overwrote the oldest
    /// for its `drop_oldest` reader). The ring refused it as full before,
    /// for ever, and a TCP connection sending it stalled without a word.
    #[tokio::test]
    async fn a_batch_larger_than_the_ring_goes_in_in_halves() {
        let d = tempfile::tempdir().unwrap();
        let ingest = ingest(d.path());
        let _reader = ingest.ring.cursor("c", WhenFull::DropOldest).unwrap();
        let batch = events(2000, 200);
        assert_eq!(ingest.ring.append(&batch), Err(AppendError::LargerThanRing));
        assert_eq!(ingest.ring.stats().full_refusals, 0, "not a full ring");
        let (back, r) = ingest.append(batch).await;
        assert_eq!((back.len(), r.is_ok()), (2000, true));
        let (_, r) = ingest.try_append_owned(events(2000, 200)).await;
        assert!(r.is_ok());
        assert!(ingest.try_append(&events(2000, 200)).is_ok());
        // what the ring still holds of them: the last ones, in order (the
        // reader's overflow notices among them)
        let mut c = ingest.ring.cursor("late", WhenFull::DropOldest).unwrap();
        let mut out = Vec::new();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        let numbers: Vec<u64> = out
            .iter()
            .filter_map(|r| {
                let ev = Event::decode(r.body()).ok()?;
                ev.message?.split(' ').next()?.parse().ok()
            })
            .collect();
        assert!(numbers.len() > 300, "{}", numbers.len());
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(numbers.last(), Some(&1999));
        // one record alone that large is no batch to split: too large
        let (_, r) = ingest.append(events(1, 70 << 10)).await;
        assert!(matches!(r, Err(IngestError::TooLarge(_))), "{r:?}");
    }
}
