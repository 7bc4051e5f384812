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
//! most [`MAX_POOLED_CAPACITY`] bytes each in the shared queue (≤ 4 MiB),
//! and one batch per thread that takes.
//!
//! The pool passes buffers between threads a batch at a time: a source
//! gives back one append's buffers as one batch, and a thread that takes
//! keeps a batch of its own to take from ([`Stash`]), so the shared queue
//! sees two atomic operations per append instead of two per event (the
//! per-event pops and pushes were 1.6–2.9% of tcp_syslog's samples, and
//! the queue's cache lines moved between the cores for every event).

use super::EncodedEvent;
use crossbeam::queue::ArrayQueue;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

/// Buffers held at most in the shared queue ([`BATCHES`] of at most
/// [`BATCH`]); each thread that takes holds at most one more batch.
pub const POOLED: usize = BATCHES * BATCH;
/// Batches the shared queue holds.
pub const BATCHES: usize = 4;
/// Buffers per batch at most (a larger give-back is split).
pub const BATCH: usize = 256;
/// A larger buffer (a huge event's) is freed, not kept.
pub const MAX_POOLED_CAPACITY: usize = 4096;

/// A bounded pool of empty byte buffers, shared by all threads, in batches.
pub struct BufferPool {
    batches: ArrayQueue<Vec<Vec<u8>>>,
    /// Buffers in `batches`.
    held: AtomicUsize,
}

/// One thread's batch to take buffers from.
#[derive(Default)]
pub struct Stash {
    buffers: Vec<Vec<u8>>,
}

impl Stash {
    /// Buffers held.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }
}

impl BufferPool {
    /// At most `batches` batches of at most [`BATCH`] buffers.
    pub fn new(batches: usize) -> Self {
        BufferPool {
            batches: ArrayQueue::new(batches),
            held: AtomicUsize::new(0),
        }
    }

    /// An empty buffer of at least `capacity` bytes: from `stash`, which
    /// takes the pool's next batch when it is empty (a pooled buffer is
    /// grown if it is smaller), else a new one.
    #[inline]
    pub fn take(&self, stash: &mut Stash, capacity: usize) -> Vec<u8> {
        if stash.buffers.is_empty() {
            if let Some(batch) = self.batches.pop() {
                self.held.fetch_sub(batch.len(), Ordering::Relaxed);
                stash.buffers = batch;
            }
        }
        match stash.buffers.pop() {
            Some(mut v) => {
                v.reserve(capacity);
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps the buffers of `events` (emptied) for later [`take`](Self::take)s,
    /// in batches of at most [`BATCH`], as many as there is room for; the
    /// others are freed.
    pub fn give_back(&self, events: Vec<EncodedEvent>) {
        let mut events = events.into_iter();
        loop {
            let mut batch = Vec::with_capacity(events.len().min(BATCH));
            batch.extend(
                events
                    .by_ref()
                    .map(EncodedEvent::into_bytes)
                    .filter(|v| v.capacity() != 0 && v.capacity() <= MAX_POOLED_CAPACITY)
                    .take(BATCH)
                    .map(|mut v| {
                        v.clear();
                        v
                    }),
            );
            let n = batch.len();
            if n == 0 {
                return;
            }
            // counted before it can be taken, so the count never goes below zero
            self.held.fetch_add(n, Ordering::Relaxed);
            if self.batches.push(batch).is_err() {
                self.held.fetch_sub(n, Ordering::Relaxed);
                return; // full: the rest are freed
            }
        }
    }

    /// Buffers held in the shared queue (not in the threads' stashes).
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

static POOL: LazyLock<BufferPool> = LazyLock::new(|| BufferPool::new(BATCHES));

thread_local! {
    static STASH: RefCell<Stash> = RefCell::new(Stash::default());
}

/// [`BufferPool::take`] from the process's pool, with this thread's stash.
#[inline]
pub fn take(capacity: usize) -> Vec<u8> {
    STASH.with_borrow_mut(|stash| POOL.take(stash, capacity))
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
        let mut stash = Stash::default();
        assert!(pool.is_empty());
        pool.give_back(events(2, 100));
        assert_eq!(pool.len(), 2);
        let v = pool.take(&mut stash, 50);
        assert!(v.is_empty() && v.capacity() >= 104, "{}", v.capacity());
        // the take moved the whole batch to the stash
        assert_eq!((pool.len(), stash.len()), (0, 1));
        // a pooled buffer smaller than asked for is grown
        let w = pool.take(&mut stash, 10_000);
        assert!(w.is_empty() && w.capacity() >= 10_000);
        assert!(pool.is_empty() && stash.is_empty());
        // none left: a new one
        assert!(pool.take(&mut stash, 7).capacity() >= 7);
    }

    #[test]
    fn the_pool_is_bounded_in_batches_batch_size_and_buffer_size() {
        let pool = BufferPool::new(2);
        // split into batches of BATCH; the third batch finds no room
        pool.give_back(events(2 * BATCH + 5, 10));
        assert_eq!(pool.len(), 2 * BATCH);
        let mut stash = Stash::default();
        pool.take(&mut stash, 1);
        assert_eq!((pool.len(), stash.len()), (BATCH, BATCH - 1));
        let pool = BufferPool::new(3);
        pool.give_back(events(2, MAX_POOLED_CAPACITY + 1));
        assert!(pool.is_empty(), "huge buffers are freed");
    }

    #[test]
    fn buffers_given_back_on_one_thread_are_taken_on_another() {
        let pool = std::sync::Arc::new(BufferPool::new(2));
        let giver = pool.clone();
        std::thread::spawn(move || giver.give_back(events(3, 100)))
            .join()
            .unwrap();
        let taker = pool.clone();
        let taken = std::thread::spawn(move || {
            let mut stash = Stash::default();
            (0..4)
                .map(|_| taker.take(&mut stash, 10).capacity())
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert!(taken[..3].iter().all(|&c| c >= 104), "{taken:?}");
        assert_eq!(taken[3], 10, "a new one once the batch is used up");
        assert!(pool.is_empty());
    }
}
