//! The counters every source reports, labelled with the source name.
//!
//! `siem_relay_source_events_total{source}`,
//! `siem_relay_source_parse_errors_total{source}`,
//! `siem_relay_source_oversized_total{source}`,
//! `siem_relay_source_dropped_total{source,reason}`,
//! `siem_relay_source_connections{source}` (gauge),
//! `siem_relay_source_connection_errors_total{source,reason}`,
//! `siem_relay_source_queued_bytes{source}` (gauge: received input waiting
//! to be parsed and appended, UDP and TCP/TLS).

use crate::event::record::FLAG_PARSE_ERROR;
use crate::event::EncodedEvent;
use metrics::{counter, gauge, Counter, Gauge};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Each source's queued bytes as this process can read them back (the
/// `metrics` gauges cannot be read): a source that does not stop in time
/// at shutdown says how much it held ([`queued_bytes`]).
static QUEUED: LazyLock<Mutex<HashMap<String, Arc<AtomicI64>>>> = LazyLock::new(Default::default);

/// Bytes source `name` has received and not yet put in the ring (or
/// counted as dropped), as `siem_relay_source_queued_bytes` shows them.
pub fn queued_bytes(name: &str) -> u64 {
    QUEUED
        .lock()
        .unwrap()
        .get(name)
        .map_or(0, |q| q.load(Ordering::Relaxed).max(0) as u64)
}

/// Handles to one source's metrics.
#[derive(Clone)]
pub(crate) struct SourceMetrics {
    name: String,
    events: Counter,
    parse_errors: Counter,
    oversized: Counter,
    connections: Gauge,
    queued: Gauge,
    queued_now: Arc<AtomicI64>,
}

impl SourceMetrics {
    pub(crate) fn new(name: &str) -> Self {
        let source = name.to_string();
        SourceMetrics {
            name: source.clone(),
            events: counter!("siem_relay_source_events_total", "source" => source.clone()),
            parse_errors: counter!("siem_relay_source_parse_errors_total", "source" => source.clone()),
            oversized: counter!("siem_relay_source_oversized_total", "source" => source.clone()),
            connections: gauge!("siem_relay_source_connections", "source" => source.clone()),
            queued: gauge!("siem_relay_source_queued_bytes", "source" => source),
            queued_now: QUEUED
                .lock()
                .unwrap()
                .entry(name.to_string())
                .or_default()
                .clone(),
        }
    }

    /// Counts events that were accepted by the ingest.
    pub(crate) fn accepted(&self, events: &[EncodedEvent]) {
        self.events.increment(events.len() as u64);
        let bad = events
            .iter()
            .filter(|e| e.meta.flags & FLAG_PARSE_ERROR != 0)
            .count();
        if bad > 0 {
            self.parse_errors.increment(bad as u64);
        }
    }

    pub(crate) fn oversized(&self) {
        self.oversized.increment(1);
    }

    pub(crate) fn dropped(&self, reason: &'static str, n: u64) {
        counter!("siem_relay_source_dropped_total", "source" => self.name.clone(), "reason" => reason)
            .increment(n);
    }

    pub(crate) fn connection_error(&self, reason: &'static str) {
        counter!("siem_relay_source_connection_errors_total", "source" => self.name.clone(), "reason" => reason)
            .increment(1);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.increment(1.0);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.decrement(1.0);
    }

    /// `bytes` more (or, negative, fewer) received bytes wait to be parsed.
    pub(crate) fn queued(&self, bytes: f64) {
        self.queued.increment(bytes);
        self.queued_now.fetch_add(bytes as i64, Ordering::Relaxed);
    }
}
