//! A TCP connection that misbehaves (garbage, a half frame, an oversized
//! frame, NUL bytes, invalid UTF-8) loses none of the valid messages sent
//! before and after it on other connections, and its own later frames after
//! an oversized one. Also: the connection limit refuses excess connections.

mod ingest_support;

use ingest_support::{start, Harness};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SETTINGS: &str = r#"
address = "127.0.0.1:0"
max_message_bytes = 100
"#;

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .expect("connect")
}

async fn send(h: &Harness, bytes: &[u8]) {
    let mut s = connect(h).await;
    s.write_all(bytes).await.expect("write");
    s.shutdown().await.expect("shutdown");
    // Wait for the server to close its side, so ordering is deterministic.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
}

fn good(n: usize) -> String {
    format!("<13>1 2026-01-01T00:00:00Z host app - - - good {n}\n")
}

fn messages(h: &Harness) -> Vec<String> {
    h.collector
        .snapshot()
        .into_iter()
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connections_do_not_lose_good_messages() {
    let h = start("tcp", "syslog_tcp", SETTINGS, std::path::Path::new(".")).await;
    send(&h, good(1).as_bytes()).await;
    // Digits that are no octet count start a line; the connection goes on.
    send(&h, b"12x this is not a frame\n<13>after it\n").await;
    send(&h, good(2).as_bytes()).await;
    // A half octet-counted frame, then EOF.
    send(&h, b"50 <13>1 2026-01-01T00:00:00Z host app - - - half").await;
    send(&h, good(3).as_bytes()).await;
    // Oversized frames (both framings) are truncated; later frames survive.
    let long = "x".repeat(300);
    let mut mixed = format!("<13>{long}\n").into_bytes();
    let counted = format!("<13>1 - h a - - - {long}");
    mixed.extend(format!("{} {counted}", counted.len()).as_bytes());
    mixed.extend(b"\0<13>1 2026-01-01T00:00:00Z host app - - - after oversize\0");
    send(&h, &mixed).await;
    // NUL bytes inside, and invalid UTF-8.
    send(
        &h,
        b"<13>nul\x00inside\n<13>1 2026-01-01T00:00:00Z host app - - - bad \xff\xfe utf8\n",
    )
    .await;
    send(&h, good(4).as_bytes()).await;

    let evs = h
        .collector
        .wait_for_async(12, Duration::from_secs(10))
        .await;
    let msgs = messages(&h);
    for n in 1..=4 {
        assert!(
            msgs.contains(&format!("good {n}")),
            "good {n} missing: {msgs:#?}"
        );
    }
    assert!(
        msgs.iter().any(|m| m == "12x this is not a frame"),
        "{msgs:#?}"
    );
    assert!(msgs.iter().any(|m| m.contains("after it")), "{msgs:#?}");
    assert!(msgs.contains(&"after oversize".to_string()), "{msgs:#?}");
    assert!(
        msgs.contains(&"bad \u{fffd}\u{fffd} utf8".to_string()),
        "{msgs:#?}"
    );
    let truncated: Vec<_> = evs
        .iter()
        .filter(|e| {
            e.metadata
                .as_ref()
                .is_some_and(|m| m.contains_key("truncated"))
        })
        .collect();
    assert_eq!(truncated.len(), 2, "{evs:#?}");
    assert!(truncated
        .iter()
        .all(|e| e.message.as_ref().is_some_and(|m| m.len() <= 100)));
    // "<13>nul" then "inside" (NUL is a trailer): the second is kept with parse_error.
    assert!(
        evs.iter()
            .any(|e| e.parse_error && e.message.as_deref() == Some("inside")),
        "{evs:#?}"
    );
    assert_eq!(evs.len(), 12, "{evs:#?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused() {
    let settings = "address = \"127.0.0.1:0\"\nmax_connections = 1\n";
    let h = start("tcp", "syslog_tcp", settings, std::path::Path::new(".")).await;
    let mut first = connect(&h).await;
    first.write_all(good(1).as_bytes()).await.expect("write");
    h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    let mut second = connect(&h).await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "excess connection was not closed"
    );
    first.write_all(good(2).as_bytes()).await.expect("write");
    h.collector.wait_for_async(2, Duration::from_secs(5)).await;
    drop(first);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let settings = "address = \"127.0.0.1:0\"\nidle_timeout = \"200ms\"\n";
    let h = start("tcp", "syslog_tcp", settings, std::path::Path::new(".")).await;
    let mut s = connect(&h).await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection stayed open"
    );
    h.stop().await;
}

/// `n` octet-counted frames `seq 0` … `seq n-1`, as one byte string.
fn counted_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let frame = format!("<13>1 2026-01-01T00:00:00Z host app - - - seq {i}");
        out.extend(format!("{} {frame}", frame.len()).as_bytes());
    }
    out
}

/// The `seq N` messages the collector holds, in arrival order.
fn seqs(h: &Harness) -> Vec<usize> {
    messages(h)
        .iter()
        .filter_map(|m| m.strip_prefix("seq ")?.parse().ok())
        .collect()
}

// One busy connection has its chunks parsed by several tasks at once; they
// must still be appended in the order they were read, all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_busy_connection_keeps_its_order() {
    let h = start("tcp", "syslog_tcp", SETTINGS, std::path::Path::new(".")).await;
    const N: usize = 30_000;
    send(&h, &counted_frames(N)).await;
    h.collector.wait_for_async(N, Duration::from_secs(20)).await;
    assert_eq!(seqs(&h), (0..N).collect::<Vec<_>>());
    h.stop().await;
}

// Digits that are no octet count (a plain line that starts with a date or
// a number) are a line, as rsyslog reads them: after many frames, parsed
// ahead or not, it is kept in its place and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_no_octet_count_is_kept_and_the_stream_goes_on() {
    let h = start("tcp", "syslog_tcp", SETTINGS, std::path::Path::new(".")).await;
    const N: usize = 30_000;
    let mut bytes = counted_frames(N);
    bytes.extend(b"2026-12-05 10:00:00 sshd: failed\n12x not a count\n");
    let after = counted_frames(10);
    bytes.extend(&after);
    send(&h, &bytes).await;
    h.collector
        .wait_for_async(N + 12, Duration::from_secs(20))
        .await;
    let expected: Vec<usize> = (0..N).chain(0..10).collect();
    assert_eq!(seqs(&h), expected);
    let all = messages(&h);
    assert_eq!(all.len(), N + 12, "two lines and ten frames after the {N}");
    assert!(all[N].contains("sshd: failed"), "{}", all[N]);
    assert!(all[N + 1].contains("12x not a count"), "{}", all[N + 1]);
    h.stop().await;
}

/// A JSON MSG nested deeper than the parsers' stacks allow is kept as
/// text, and the connection's next line arrives: one such line of 40 KB
/// overflowed the stack of the thread that parsed it and aborted the
/// relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_msg_nested_too_deep_is_text_not_a_crash() {
    let settings = "address = \"127.0.0.1:0\"\n";
    let h = start("tcp", "syslog_tcp", settings, std::path::Path::new(".")).await;
    let msg = format!("{{\"a\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
    send(
        &h,
        format!("<13>1 - h a - - - {msg}\n{}", good(1)).as_bytes(),
    )
    .await;
    let evs = h.collector.wait_for_async(2, Duration::from_secs(5)).await;
    let got: Vec<_> = evs
        .iter()
        .map(|e| e.message.clone().unwrap_or_default())
        .collect();
    assert_eq!(got, [msg, "good 1".to_string()]);
    h.stop().await;
}

/// Lines and octet-counted frames of nothing but spaces, tabs, line ends
/// and NULs make no event, over a real TCP connection, as a blank UDP
/// datagram makes none (`printf '   \n\t\n' | nc` made two `parse_error`
/// events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_lines_make_no_events() {
    let h = start("tcp", "syslog_tcp", SETTINGS, std::path::Path::new(".")).await;
    send(&h, b"   \n\t\n").await;
    send(&h, format!("\0 \r\n{}3  \t\n \t", good(1)).as_bytes()).await;
    // `send` waits for the relay to close: what it kept is in by then
    h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(messages(&h), ["good 1"]);
    assert_eq!(h.collector.snapshot().len(), 1);
    h.stop().await;
}
