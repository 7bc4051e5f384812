//! `syslog_udp` specifics: several SO_REUSEPORT sockets on one port receive
//! every datagram (batched with recvmmsg), a datagram near 64 KiB arrives
//! whole, and a full ring drops (UDP cannot wait) without stopping the
//! source.

mod ingest_support;

use ingest_support::start;
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind sender")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuseport_sockets_receive_everything() {
    let settings = "address = \"127.0.0.1:0\"\nsockets = 3\nrecv_buffer_bytes = \"4MiB\"\n";
    let h = start("udp", "syslog_udp", settings, Path::new(".")).await;
    let target = ("127.0.0.1", h.port());
    // Different source ports spread over the sockets.
    for i in 0..60 {
        let s = sender();
        let msg = format!("<13>1 2026-01-01T00:00:00Z h app - - - dgram {i}");
        s.send_to(msg.as_bytes(), target).expect("send");
    }
    let big = format!(
        "<13>1 2026-01-01T00:00:00Z h app - - - {}",
        "y".repeat(60_000)
    );
    sender().send_to(big.as_bytes(), target).expect("send big");
    let evs = h
        .collector
        .wait_for_async(61, Duration::from_secs(10))
        .await;
    for i in 0..60 {
        let text = format!("dgram {i}");
        assert!(
            evs.iter()
                .any(|e| e.message.as_deref() == Some(text.as_str())),
            "{text} missing"
        );
    }
    assert!(evs
        .iter()
        .any(|e| e.message.as_ref().is_some_and(|m| m.len() == 60_000)));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_ring_drops_and_recovers() {
    let h = start(
        "udp",
        "syslog_udp",
        r#"address = "127.0.0.1:0""#,
        Path::new("."),
    )
    .await;
    let target = ("127.0.0.1", h.port());
    h.collector.full.store(true, Ordering::SeqCst);
    let s = sender();
    s.send_to(b"<13>1 - h app - - - dropped", target)
        .expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.collector.append_calls.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "datagram never reached the ingest"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.collector.full.store(false, Ordering::SeqCst);
    s.send_to(b"<13>1 - h app - - - kept", target)
        .expect("send");
    let evs = h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].message.as_deref(), Some("kept"));
    h.stop().await;
}

// One sender's datagrams all land on one SO_REUSEPORT socket; that socket's
// receive batches are parsed by several tasks at once and must still all
// arrive, in the order sent (one socket, one loopback path), each with its
// sender's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_busy_sender_arrives_whole_in_order_with_its_address() {
    let settings = "address = \"127.0.0.1:0\"\nsockets = 2\nrecv_buffer_bytes = \"16MiB\"\n";
    let h = start("udp", "syslog_udp", settings, Path::new(".")).await;
    let s = sender();
    let from = s.local_addr().unwrap().to_string();
    const N: usize = 5000;
    for i in 0..N {
        let msg = format!("<13>1 2026-01-01T00:00:00Z h app - - - seq {i}");
        s.send_to(msg.as_bytes(), ("127.0.0.1", h.port()))
            .expect("send");
    }
    let evs = h.collector.wait_for_async(N, Duration::from_secs(20)).await;
    let seqs: Vec<usize> = evs
        .iter()
        .filter_map(|e| e.message.as_deref()?.strip_prefix("seq ")?.parse().ok())
        .collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    assert!(evs
        .iter()
        .all(|e| e.source.as_ref().and_then(|s| s.address.as_deref()) == Some(from.as_str())));
    h.stop().await;
}
