//! The source counters, read through the Prometheus exporter: accepted
//! events, parse errors, oversized frames, frames cut short, refused
//! connections.

mod ingest_support;

use ingest_support::start;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(bytes).await.expect("write");
    s.shutdown().await.expect("shutdown");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_source_counts_what_happens() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("install recorder");
    let h = start(
        "m",
        "syslog_tcp",
        "address = \"127.0.0.1:0\"\nmax_message_bytes = 50\n",
        Path::new("."),
    )
    .await;
    let long = "z".repeat(80);
    let body = format!("<13>1 - h app - - - ok\nnot syslog at all\n<13>{long}\n");
    send(h.port(), body.as_bytes()).await;
    // digits that are no octet count: a line (not syslog, a parse error)
    send(h.port(), b"7x not a count").await;
    // a real octet count whose frame the connection's end cuts short
    send(h.port(), b"40 <13>1 - h app - - - cut short").await;
    h.collector.wait_for_async(4, Duration::from_secs(5)).await;

    let expected = [
        ("siem_relay_source_events_total{source=\"m\"}", 4.0),
        ("siem_relay_source_parse_errors_total{source=\"m\"}", 3.0),
        ("siem_relay_source_oversized_total{source=\"m\"}", 1.0),
        (
            "siem_relay_source_connection_errors_total{source=\"m\",reason=\"incomplete_frame\"}",
            1.0,
        ),
        (
            "siem_relay_source_dropped_total{source=\"m\",reason=\"incomplete_frame\"}",
            1.0,
        ),
        ("siem_relay_source_connections{source=\"m\"}", 0.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = handle.render();
        let ok = expected.iter().all(|(s, v)| value(&text, s) == Some(*v));
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics not as expected: {expected:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
}
