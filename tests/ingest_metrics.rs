//! The source counters, read through the Prometheus exporter: accepted
//! events, parse errors, oversized frames, frames cut short, refused
//! connections; the `http` source's refusals (a 503 is no loss).

mod ingest_support;

use ingest_support::start;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
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

/// The process's recorder (there can be one only), for every test.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install recorder")
    })
}

/// Waits until every series has its value (panics after 5 s).
async fn expect_series(expected: &[(&str, Option<f64>)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = recorder().render();
        if expected.iter().all(|(s, v)| value(&text, s) == *v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metrics not as expected: {expected:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_source_counts_what_happens() {
    recorder();
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

    expect_series(&[
        ("siem_relay_source_events_total{source=\"m\"}", Some(4.0)),
        (
            "siem_relay_source_parse_errors_total{source=\"m\"}",
            Some(3.0),
        ),
        ("siem_relay_source_oversized_total{source=\"m\"}", Some(1.0)),
        (
            "siem_relay_source_connection_errors_total{source=\"m\",reason=\"incomplete_frame\"}",
            Some(1.0),
        ),
        (
            "siem_relay_source_dropped_total{source=\"m\",reason=\"incomplete_frame\"}",
            Some(1.0),
        ),
        ("siem_relay_source_connections{source=\"m\"}", Some(0.0)),
    ])
    .await;
    h.stop().await;
}

/// A UDP sender cannot be made to wait: the datagrams a failing buffer
/// (a disk error) refuses are dropped, each counted in
/// `dropped_total{reason="buffer_error"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_source_counts_what_a_failing_buffer_drops() {
    recorder();
    let h = start(
        "u",
        "syslog_udp",
        "address = \"127.0.0.1:0\"\n",
        Path::new("."),
    )
    .await;
    h.collector.failing.store(true, Ordering::SeqCst);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..3 {
        let line = format!("<13>1 - h app - - - lost {i}");
        sock.send_to(line.as_bytes(), ("127.0.0.1", h.port()))
            .expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect_series(&[(
        "siem_relay_source_dropped_total{source=\"u\",reason=\"buffer_error\"}",
        Some(3.0),
    )])
    .await;
    assert!(h.collector.snapshot().is_empty());
    h.stop().await;
}

/// POSTs `body` to the http source on `port`; the status code.
async fn http_post(port: u16, path: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: relay\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&reply);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"))
}

/// A 503 for a full ring is a refusal (the client keeps its events and
/// retries), counted in `connection_errors_total{reason="buffer_full"}`,
/// not in `dropped_total`: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_full_ring_is_a_refusal_not_a_drop() {
    recorder();
    let h = start("w", "http", "address = \"127.0.0.1:0\"\n", Path::new(".")).await;
    h.collector.full.store(true, Ordering::SeqCst);
    let ndjson = b"{\"a\":1}\n{\"b\":2}\n";
    assert_eq!(http_post(h.port(), "/v1/events", ndjson).await, 503);
    let raw = b"one\ntwo\nthree\n";
    assert_eq!(
        http_post(h.port(), "/services/collector/raw", raw).await,
        503
    );
    let hec = br#"{"event":"x"}"#;
    assert_eq!(
        http_post(h.port(), "/services/collector/event", hec).await,
        503
    );
    h.collector.full.store(false, Ordering::SeqCst);
    assert_eq!(http_post(h.port(), "/v1/events", ndjson).await, 200);
    assert_eq!(
        http_post(h.port(), "/services/collector/raw", raw).await,
        200
    );
    expect_series(&[
        (
            "siem_relay_source_connection_errors_total{source=\"w\",reason=\"buffer_full\"}",
            Some(3.0),
        ),
        (
            "siem_relay_source_dropped_total{source=\"w\",reason=\"buffer_full\"}",
            None,
        ),
        ("siem_relay_source_events_total{source=\"w\"}", Some(5.0)),
    ])
    .await;
    h.stop().await;
}
