//! `/metrics`: the Prometheus text exposition.
//!
//! The process-wide `metrics` recorder (what sources report through the
//! `metrics` macros) is installed once, by [`install_recorder`], before any
//! source starts; relays started later in the same process reuse it. At
//! scrape time its output is followed by series built from the ring's
//! counters and each destination's status:
//!
//! - `siem_relay_buffer_next_seq`, `siem_relay_buffer_oldest_seq`,
//!   `siem_relay_buffer_segments`, `siem_relay_buffer_no_space` (gauges),
//!   `siem_relay_buffer_appended_total`, `siem_relay_buffer_appended_bytes_total`,
//!   `siem_relay_buffer_full_refusals_total`,
//!   `siem_relay_buffer_queued_appends_total`,
//!   `siem_relay_buffer_replaced_segments_total` (counters);
//! - per `destination`: `siem_relay_destination_sent_total`,
//!   `..._retried_total`, `..._rejected_total`,
//!   `..._dead_letter_failed_total`, `..._filtered_total`,
//!   `..._dropped_total`, `..._failure_count_total` (counters),
//!   `..._lag`, `..._in_flight`, `..._consecutive_failures`,
//!   `..._last_successful_batch_timestamp_seconds` (gauges; 0 = never).

use crate::buffer::RingStats;
use crate::destinations::StatusSnapshot;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::fmt::Write;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once.
/// When another recorder was installed first, a detached recorder is used
/// (its output is then empty) rather than panicking.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(
                    "metrics recorder not installed ({e}); source metrics are not exported"
                );
                PrometheusBuilder::new().build_recorder().handle()
            }
        })
        .clone()
}

/// One destination's snapshot, by name.
pub type DestinationRow<'a> = (&'a str, &'a StatusSnapshot, Option<i64>);

/// The full exposition: recorder output, then ring and destination series.
/// `destinations` holds name, snapshot, and the last successful batch time
/// in milliseconds since the epoch.
pub fn render(
    handle: &PrometheusHandle,
    ring: &RingStats,
    destinations: &[DestinationRow],
) -> String {
    let mut out = handle.render();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let ring_series: [(&str, &str, &str, u64); 9] = [
        (
            "siem_relay_buffer_next_seq",
            "gauge",
            "Sequence number the next appended record gets.",
            ring.next_seq,
        ),
        (
            "siem_relay_buffer_oldest_seq",
            "gauge",
            "Sequence number of the oldest retained record.",
            ring.oldest_seq,
        ),
        (
            "siem_relay_buffer_segments",
            "gauge",
            "Live ring segments.",
            ring.segments as u64,
        ),
        (
            "siem_relay_buffer_no_space",
            "gauge",
            "1 while the file system has no space for a new ring segment (the ring is full below its max_bytes), else 0.",
            ring.no_space as u64,
        ),
        (
            "siem_relay_buffer_appended_total",
            "counter",
            "Records appended since start.",
            ring.appended,
        ),
        (
            "siem_relay_buffer_appended_bytes_total",
            "counter",
            "Record bytes appended since start.",
            ring.appended_bytes,
        ),
        (
            "siem_relay_buffer_full_refusals_total",
            "counter",
            "Appends refused because a block destination held the ring.",
            ring.full_refusals,
        ),
        (
            "siem_relay_buffer_queued_appends_total",
            "counter",
            "Appends that found the ring's writer busy with another append and were done by it (how often sources contend for the ring).",
            ring.queued_appends,
        ),
        (
            "siem_relay_buffer_replaced_segments_total",
            "counter",
            "Segments reused with a new file because a destination's batch still held them (the old file stays on disk until the batch is done).",
            ring.replaced_segments,
        ),
    ];
    for (name, kind, help, value) in ring_series {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    type Get = fn(&StatusSnapshot) -> u64;
    let dest_series: [(&str, &str, &str, Get); 10] = [
        ("sent_total", "counter", "Events delivered.", |s| s.sent),
        (
            "retried_total",
            "counter",
            "Events sent again after a failed attempt.",
            |s| s.retried,
        ),
        (
            "rejected_total",
            "counter",
            "Events refused for good (dead-lettered).",
            |s| s.rejected,
        ),
        (
            "dead_letter_failed_total",
            "counter",
            "Rejected events the dead-letter file could not take (each is in an error line of the log).",
            |s| s.dead_letter_failed,
        ),
        (
            "filtered_total",
            "counter",
            "Events skipped by the destination's filter.",
            |s| s.filtered,
        ),
        (
            "dropped_total",
            "counter",
            "Events lost to buffer overflow.",
            |s| s.dropped,
        ),
        (
            "failure_count_total",
            "counter",
            "Failed send attempts.",
            |s| s.failure_count,
        ),
        (
            "consecutive_failures",
            "gauge",
            "Failed send attempts since the last success.",
            |s| s.consecutive_failures,
        ),
        (
            "lag",
            "gauge",
            "Records appended but not yet acknowledged.",
            |s| s.lag,
        ),
        ("in_flight", "gauge", "Batches being sent.", |s| s.in_flight),
    ];
    for (suffix, kind, help, get) in dest_series {
        let name = format!("siem_relay_destination_{suffix}");
        header(&mut out, &name, kind, help);
        for (dest, snap, _) in destinations {
            let _ = writeln!(
                out,
                "{name}{{destination=\"{}\"}} {}",
                escape(dest),
                get(snap)
            );
        }
    }
    let name = "siem_relay_destination_last_successful_batch_timestamp_seconds";
    header(
        &mut out,
        name,
        "gauge",
        "Unix time of the last delivered batch (0 = never).",
    );
    for (dest, _, last_ms) in destinations {
        let secs = last_ms.unwrap_or(0) as f64 / 1000.0;
        let _ = writeln!(out, "{name}{{destination=\"{}\"}} {secs}", escape(dest));
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::DestinationStatus;
    use std::sync::atomic::Ordering;

    #[test]
    fn renders_ring_and_destination_series() {
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let stats = RingStats {
            segments: 2,
            slots: 8,
            oldest_seq: 0,
            next_seq: 42,
            appended: 40,
            appended_bytes: 4000,
            full_refusals: 1,
            queued_appends: 5,
            replaced_segments: 2,
            no_space: true,
        };
        let st = DestinationStatus::default();
        st.sent.store(7, Ordering::Relaxed);
        st.lag.store(3, Ordering::Relaxed);
        let snap = st.snapshot();
        let text = render(&handle, &stats, &[("a\"b", &snap, Some(1_500))]);
        assert!(text.contains("\nsiem_relay_buffer_next_seq 42\n"), "{text}");
        assert!(text.contains("siem_relay_buffer_full_refusals_total 1\n"));
        assert!(text.contains("siem_relay_buffer_queued_appends_total 5\n"));
        assert!(text.contains("siem_relay_buffer_replaced_segments_total 2\n"));
        assert!(text.contains("\nsiem_relay_buffer_no_space 1\n"), "{text}");
        assert!(
            text.contains("siem_relay_destination_sent_total{destination=\"a\\\"b\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("siem_relay_destination_lag{destination=\"a\\\"b\"} 3\n"));
        assert!(text.contains("siem_relay_destination_last_successful_batch_timestamp_seconds{destination=\"a\\\"b\"} 1.5\n"));
        assert!(text.contains("# TYPE siem_relay_destination_sent_total counter\n"));
    }
}
