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
        self.events.iter().map(|e| e.body.len()).sum()
    }
    /// A batch of the events at `indices` (for retrying part of a batch).
    pub fn subset(&self, indices: &[usize]) -> Batch {
        Batch {
            events: indices.iter().map(|&i| self.events[i].clone()).collect(),
        }
    }
}
