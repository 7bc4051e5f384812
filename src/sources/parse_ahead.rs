//! Parsing a few reads ahead on other cores, results kept in read order.
//!
//! A source that reads one busy stream (a TCP connection, a UDP socket one
//! sender's datagrams all hash to) would otherwise parse everything on the
//! core that reads it. [`ParseAhead`] lets the reader hand each read's
//! frames to a task of their own and read on, up to a limit; the reader
//! takes the results back oldest first, so the events still enter the ring
//! in the order they were read. Small reads with nothing in flight are
//! better parsed in place (a task would only add latency):
//! [`ParseAhead::worth_spawning`] says when.

use crate::event::EncodedEvent;
use std::collections::VecDeque;
use tokio::task::{JoinError, JoinHandle};

/// A read with fewer frames than this is parsed in place when nothing is in
/// flight (and a stream connection appends its records in place too).
pub(super) const INLINE_FRAMES: usize = 16;

/// Parse tasks in flight, oldest first, each with a `T` its caller hands
/// along and takes back with the records (a stream connection's share of
/// its source's budget; nothing for UDP).
pub(crate) struct ParseAhead<T = ()> {
    /// Each task with its frames, its input bytes and its `T`.
    in_flight: VecDeque<(JoinHandle<Vec<EncodedEvent>>, usize, usize, T)>,
    limit: usize,
    /// Input bytes held by the tasks in flight.
    bytes: usize,
}

/// A parse task that did not finish (it panicked: a bug), with how many
/// frames it held, so they can be counted as dropped.
#[derive(Debug)]
pub(crate) struct ParseFailed {
    pub error: JoinError,
    pub frames: usize,
}

impl<T> ParseAhead<T> {
    /// At most `limit` parse tasks at once.
    pub fn new(limit: usize) -> Self {
        ParseAhead {
            in_flight: VecDeque::with_capacity(limit),
            limit,
            bytes: 0,
        }
    }

    /// Input bytes held by the tasks in flight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Parse tasks in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether another task may start (the reader should read on).
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.limit
    }

    /// Whether a read of `frames` frames should go to a task rather than be
    /// parsed in place: it is large, or older reads are still in flight
    /// (whose results must be appended first).
    pub fn worth_spawning(&self, frames: usize) -> bool {
        !self.in_flight.is_empty() || frames >= INLINE_FRAMES
    }

    /// Starts parsing `frames` frames (`bytes` of input) with `parse` on a
    /// task of its own; `ticket` comes back with its records.
    pub fn spawn<F>(&mut self, frames: usize, bytes: usize, ticket: T, parse: F)
    where
        F: FnOnce() -> Vec<EncodedEvent> + Send + 'static,
    {
        self.bytes += bytes;
        let task = tokio::spawn(async move { parse() });
        self.in_flight.push_back((task, frames, bytes, ticket));
    }

    /// The oldest task's records and ticket once it is done (a failed task's
    /// ticket is dropped); never ready while nothing is in flight (so it can
    /// sit in a `select!` branch).
    pub async fn next(&mut self) -> Result<(Vec<EncodedEvent>, T), ParseFailed> {
        let Some((task, frames, ..)) = self.in_flight.front_mut() else {
            return std::future::pending().await;
        };
        let result = task.await;
        let frames = *frames;
        let (_, _, bytes, ticket) = self.in_flight.pop_front().expect("the front task");
        self.bytes -= bytes;
        result
            .map(|records| (records, ticket))
            .map_err(|error| ParseFailed { error, frames })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};

    fn records(tag: &str, n: usize) -> Vec<EncodedEvent> {
        (0..n)
            .map(|i| {
                let mut e = Event::new("SYSTEM", None, Severity::Info);
                e.message = Some(format!("{tag}{i}"));
                e.encode()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_oldest_first_whatever_finishes_first() {
        let mut p = ParseAhead::new(3);
        assert!(!p.worth_spawning(1) && p.worth_spawning(INLINE_FRAMES));
        p.spawn(2, 10, (), || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            records("slow", 2)
        });
        assert!(p.worth_spawning(1), "later reads must queue behind it");
        p.spawn(1, 10, (), || records("fast", 1));
        p.spawn(1, 10, (), || records("fast2", 1));
        assert!(!p.has_room());
        assert_eq!(p.bytes(), 30);
        let (first, ()) = p.next().await.unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(
            Event::decode(first[0].body()).unwrap().message.as_deref(),
            Some("slow0")
        );
        let (second, ()) = p.next().await.unwrap();
        assert_eq!(
            Event::decode(second[0].body()).unwrap().message.as_deref(),
            Some("fast0")
        );
        assert_eq!(p.next().await.unwrap().0.len(), 1);
        assert!(p.is_empty() && p.bytes() == 0);
        // Nothing in flight: never ready.
        let idle = tokio::time::timeout(std::time::Duration::from_millis(50), p.next()).await;
        assert!(idle.is_err());
    }

    #[tokio::test]
    async fn a_panicking_parse_reports_its_frames() {
        let mut p = ParseAhead::new(2);
        p.spawn(7, 70, (), || panic!("parser bug"));
        let failed = p.next().await.unwrap_err();
        assert_eq!(failed.frames, 7);
        assert!(failed.error.is_panic());
        assert_eq!(p.bytes(), 0);
    }
}
