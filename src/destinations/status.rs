//! A destination's live counters, shared by its loop, the admin API and
//! `/metrics`.

use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters of one destination. Updated by the shared loop only.
#[derive(Debug, Default)]
pub struct DestinationStatus {
    pub sent: AtomicU64,
    pub sent_batches: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    /// Rejected events whose dead-letter write failed (each is in an
    /// `error` line of the log instead).
    pub dead_letter_failed: AtomicU64,
    pub filtered: AtomicU64,
    pub dropped: AtomicU64,
    pub lag: AtomicU64,
    pub in_flight: AtomicU64,
    /// Failed send attempts over the destination's life.
    pub failure_count: AtomicU64,
    /// Failed attempts since the last success.
    pub consecutive_failures: AtomicU64,
    /// Milliseconds since the epoch; 0 = never.
    pub last_successful_batch_at: AtomicI64,
    pub last_error: Mutex<Option<String>>,
}

/// A point-in-time copy, for the API and `test-destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    pub sent: u64,
    pub sent_batches: u64,
    pub retried: u64,
    pub rejected: u64,
    pub dead_letter_failed: u64,
    pub filtered: u64,
    pub dropped: u64,
    pub lag: u64,
    pub in_flight: u64,
    pub failure_count: u64,
    pub consecutive_failures: u64,
    pub last_successful_batch_at: Option<String>,
    pub last_error: Option<String>,
    pub healthy: bool,
}

impl DestinationStatus {
    pub fn record_success(&self, events: u64) {
        self.sent.fetch_add(events, Ordering::Relaxed);
        self.sent_batches.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.last_successful_batch_at
            .store(crate::event::now_millis(), Ordering::Relaxed);
    }

    pub fn record_failure(&self, reason: &str) {
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap() = Some(reason.to_string());
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let last = self.last_successful_batch_at.load(Ordering::Relaxed);
        let consecutive = self.consecutive_failures.load(Ordering::Relaxed);
        StatusSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            sent_batches: self.sent_batches.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            dead_letter_failed: self.dead_letter_failed.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lag: self.lag.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            failure_count: self.failure_count.load(Ordering::Relaxed),
            consecutive_failures: consecutive,
            last_successful_batch_at: (last > 0).then(|| crate::event::format_rfc3339_millis(last)),
            last_error: self.last_error.lock().unwrap().clone(),
            healthy: consecutive == 0,
        }
    }
}
