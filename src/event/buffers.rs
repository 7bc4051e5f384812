//! Record buffers given back once the ring holds their events, for the next
//! events' bodies.
//!
//! Each ingested event's body and hint live in one `Vec<u8>`
//! ([`EncodedEvent`]), written by the parser on one thread and dropped by
//! the task that appended it to the ring, usually on another: past glibc's
//! per-thread cache, so `malloc`/`free` were ~4% of the relay's ingest
//! samples (perf, tcp_syslog). The sources give the buffers back here
//! after an append and the direct encoder takes them, so a steady stream
//! allocates no buffer per event. Bounded: at most [`POOLED`] buffers of at
//! most [`MAX_POOLED_CAPACITY`] bytes each (≤ 4 MiB held).

use super::EncodedEvent;
use crossbeam::queue::ArrayQueue;
use std::sync::LazyLock;

/// Buffers held at most.
pub const POOLED: usize = 1024;
/// A larger buffer (a huge event's) is freed, not kept.
pub const MAX_POOLED_CAPACITY: usize = 4096;

/// A bounded pool of empty byte buffers, shared by all threads.
pub struct BufferPool {
    free: ArrayQueue<Vec<u8>>,
}

impl BufferPool {
    pub fn new(pooled: usize) -> Self {
        BufferPool {
            free: ArrayQueue::new(pooled),
        }
    }

    /// An empty buffer of at least `capacity` bytes: a pooled one when
    /// there is one (grown if it is smaller), else a new one.
    #[inline]
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        match self.free.pop() {
            Some(mut v) => {
                v.reserve(capacity);
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps the buffers of `events` (emptied) for later [`take`](Self::take)s,
    /// as many as there is room for; the others are freed.
    pub fn give_back(&self, events: Vec<EncodedEvent>) {
        for e in events {
            let mut v = e.into_bytes();
            if v.capacity() == 0 || v.capacity() > MAX_POOLED_CAPACITY {
                continue;
            }
            v.clear();
            if self.free.push(v).is_err() {
                return; // full: the rest are freed with the vector
            }
        }
    }

    /// Buffers held.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

static POOL: LazyLock<BufferPool> = LazyLock::new(|| BufferPool::new(POOLED));

/// [`BufferPool::take`] from the process's pool.
#[inline]
pub fn take(capacity: usize) -> Vec<u8> {
    POOL.take(capacity)
}

/// [`BufferPool::give_back`] to the process's pool.
pub fn give_back(events: Vec<EncodedEvent>) {
    POOL.give_back(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};

    fn events(n: usize, body_len: usize) -> Vec<EncodedEvent> {
        (0..n)
            .map(|_| {
                let meta = Event::new("SYSTEM", None, Severity::Info).meta();
                EncodedEvent::with_hint(meta, vec![b'x'; body_len], b"hint")
            })
            .collect()
    }

    #[test]
    fn buffers_given_back_are_taken_again_empty_and_large_enough() {
        let pool = BufferPool::new(4);
        assert!(pool.is_empty());
        pool.give_back(events(2, 100));
        assert_eq!(pool.len(), 2);
        let v = pool.take(50);
        assert!(v.is_empty() && v.capacity() >= 104, "{}", v.capacity());
        // a pooled buffer smaller than asked for is grown
        let w = pool.take(10_000);
        assert!(w.is_empty() && w.capacity() >= 10_000);
        assert!(pool.is_empty());
        // none left: a new one
        assert!(pool.take(7).capacity() >= 7);
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_buffer_size() {
        let pool = BufferPool::new(3);
        pool.give_back(events(5, 10));
        assert_eq!(pool.len(), 3);
        let pool = BufferPool::new(3);
        pool.give_back(events(2, MAX_POOLED_CAPACITY + 1));
        assert!(pool.is_empty(), "huge buffers are freed");
    }
}
