//! A batch: the events one send covers, already filtered and redacted, each
//! with its ring sequence number and the canonical JSON body to splice.

/// One event of a batch: the ring record as read (`seq` is stable across
/// retries; with `event_id` it lets a SIEM deduplicate), its `body` the
/// canonical event as compact JSON after redaction.
pub use crate::buffer::ReadRecord as BatchEvent;

/// The events of one send, in ring order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub events: Vec<BatchEvent>,
}

impl Batch {
    pub fn new(events: Vec<BatchEvent>) -> Self {
        Batch { events }
    }
    pub fn len(&self) -> usize {
        self.events.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
    /// Sum of the JSON body lengths.
    pub fn body_bytes(&self) -> usize {
        self.events.iter().map(|e| e.body().len()).sum()
    }
    /// A batch of the events at `indices` (for retrying part of a batch).
    pub fn subset(&self, indices: &[usize]) -> Batch {
        Batch {
            events: indices.iter().map(|&i| self.events[i].clone()).collect(),
        }
    }

    /// Copies the bodies and hints out of the ring's map into one buffer
    /// of the batch's own. Read records share the segment they were read
    /// from, which the ring then may not rewrite (it gives the slot a new
    /// file instead); a batch that waits to be retried, maybe for hours
    /// while a SIEM is down, should hold its events' bytes, not whole
    /// segments of disk.
    pub fn detach(&mut self) {
        let size = self.events.iter().map(|e| e.body_and_hint().len()).sum();
        let mut buf = Vec::with_capacity(size);
        for e in &self.events {
            buf.extend_from_slice(e.body_and_hint());
        }
        let buf = bytes::Bytes::from(buf);
        let mut at = 0;
        for e in &mut self.events {
            let (body, hint) = (e.body().len(), e.hint().len());
            *e = BatchEvent::in_buffer(e.seq, e.meta, &buf, at, body, hint);
            at += body + hint;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Ring, RingSettings, WhenFull};
    use crate::config::FsyncPolicy;
    use crate::event::{Event, Severity};
    use std::time::Duration;

    /// Reads a batch of the ring's first records, optionally detaches it,
    /// then appends until the ring has reused every segment twice; returns
    /// how many segments got a new file because a batch held them, and
    /// whether the batch still reads what it read.
    fn wrap_while_holding(detach: bool) -> (u64, bool) {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(RingSettings {
            dir: d.path().to_path_buf(),
            max_bytes: 256 << 10,
            segment_bytes: 64 << 10,
            max_age: Duration::ZERO,
            fsync: FsyncPolicy::Never,
        })
        .unwrap();
        let mut cursor = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let event = |n: usize| {
            let mut e = Event::new("SYSTEM", None, Severity::Info);
            e.message = Some(format!("event {n} {}", "x".repeat(300)));
            e.encode()
        };
        ring.append(&(0..10).map(event).collect::<Vec<_>>())
            .unwrap();
        let mut read = Vec::new();
        cursor.read(10, 1 << 20, &mut read).unwrap();
        let mut batch = Batch::new(read);
        let before = batch
            .clone()
            .events
            .iter()
            .map(|e| e.body().to_vec())
            .collect::<Vec<_>>();
        if detach {
            batch.detach();
        }
        for n in 10..3000 {
            ring.append(&[event(n)]).unwrap();
        }
        let same = batch
            .events
            .iter()
            .map(|e| e.body().to_vec())
            .collect::<Vec<_>>()
            == before;
        (ring.stats().replaced_segments, same)
    }

    #[test]
    fn a_detached_batch_holds_no_segment() {
        assert_eq!(
            wrap_while_holding(false),
            (1, true),
            "a held batch pins its segment"
        );
        assert_eq!(wrap_while_holding(true), (0, true));
    }

    #[test]
    fn detach_keeps_bodies_and_hints() {
        let mut e = Event::new("SYSTEM", None, Severity::Info);
        e.message = Some("m".into());
        let body = bytes::Bytes::from(e.encode().into_body());
        let with_hint = BatchEvent::with_hint(2, e.meta(), &body, b"hint");
        let mut batch = Batch::new(vec![BatchEvent::new(1, e.meta(), body.clone()), with_hint]);
        let before = batch.clone();
        batch.detach();
        assert_eq!(batch, before);
        assert_eq!(batch.events[1].hint(), b"hint");
        assert_ne!(batch.events[0].body().as_ptr(), body.as_ptr(), "copied");
    }
}
