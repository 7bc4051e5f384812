//! The `http` source driven by curl: JSON object, array, NDJSON and gzip
//! bodies on `/v1/events`, HEC envelopes on `/services/collector/event`,
//! token checks, malformed and oversized bodies (nothing partial appended),
//! and 503 + Retry-After when the ring is full.

mod ingest_support;

use ingest_support::{require_program, start, Harness};
use serde_json::{json, Value};
use siem_relay::event::Event;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SETTINGS: &str = r#"
address = "127.0.0.1:0"
tokens = ["s3cret"]
max_body_bytes = "4KiB"
"#;

/// What curl saw: status, headers (lower-cased), body.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body {:?}: {e}", self.body))
    }
}

/// POSTs `body` (a file, so binary bodies work) with extra curl args.
fn post(h: &Harness, path: &str, body: &[u8], args: &[&str]) -> Reply {
    require_program("curl", "curl");
    let dir = tempfile::tempdir().expect("tmp");
    let body_file = dir.path().join("body");
    std::fs::File::create(&body_file)
        .and_then(|mut f| f.write_all(body))
        .expect("write body");
    let header_file = dir.path().join("headers");
    let url = format!("http://127.0.0.1:{}{path}", h.port());
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-D"])
        .arg(&header_file)
        .args(["-X", "POST", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .args(args)
        .arg(&url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    Reply {
        status: code.trim().parse().expect("status code"),
        headers: std::fs::read_to_string(&header_file)
            .unwrap_or_default()
            .to_lowercase(),
        body: body.to_string(),
    }
}

const BEARER: &str = "Authorization: Bearer s3cret";
const GZIP: [&str; 4] = ["-H", BEARER, "-H", "Content-Encoding: gzip"];

/// Asserts a reply's status and one numeric field of its JSON answer.
fn assert_answer(r: &Reply, status: u16, field: &str, value: u64) {
    assert_eq!(
        (r.status, r.json()[field].as_u64()),
        (status, Some(value)),
        "{}",
        r.body
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

async fn harness() -> Harness {
    start("web", "http", SETTINGS, std::path::Path::new(".")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_array_ndjson_and_gzip_are_accepted() {
    let h = harness().await;
    let r = post(
        &h,
        "/v1/events",
        br#"{"action":"user.login","user_id":"u1","tenant_id":"acme","extra":1}"#,
        &["-H", BEARER],
    );
    assert_answer(&r, 200, "accepted", 1);
    let r = post(
        &h,
        "/v1/events",
        br#"[{"action":"a.one"},{"action":"a.two"}]"#,
        &["-H", BEARER],
    );
    assert_eq!(r.json()["accepted"], 2);
    let r = post(
        &h,
        "/v1/events",
        b"{\"action\":\"n.one\"}\n{\"action\":\"n.two\"}\n{\"action\":\"n.three\"}\n",
        &["-H", BEARER],
    );
    assert_eq!(r.json()["accepted"], 3);
    let body = gzip(b"{\"action\":\"g.one\"}\n{\"action\":\"g.two\"}\n");
    let r = post(&h, "/v1/events", &body, &GZIP);
    assert_answer(&r, 200, "accepted", 2);

    let evs = h.collector.snapshot();
    let actions: Vec<_> = evs.iter().filter_map(|e| e.action.clone()).collect();
    assert_eq!(
        actions,
        [
            "user.login",
            "a.one",
            "a.two",
            "n.one",
            "n.two",
            "n.three",
            "g.one",
            "g.two"
        ]
    );
    assert_eq!(
        evs[0].actor.as_ref().and_then(|a| a.id.as_deref()),
        Some("u1")
    );
    assert_eq!(evs[0].tenant_id.as_deref(), Some("acme"));
    assert_eq!(evs[0].metadata.as_ref().unwrap()["extra"], 1);
    let src = evs[0].source.as_ref().unwrap();
    assert_eq!(src.listener, "web");
    assert!(src.address.as_deref().unwrap().starts_with("127.0.0.1:"));
    // One append call per request.
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 4);
    h.stop().await;
}

/// A `timestamp` in epoch milliseconds, microseconds or nanoseconds is
/// the event's time, told apart by size as on the HEC endpoint (micro- and
/// nanoseconds were once kept as `metadata.timestamp`, the receive time used).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_timestamps_in_any_unit_are_the_event_time() {
    let h = harness().await;
    let body = concat!(
        r#"{"action":"s","timestamp":1700000000.123}"#,
        "\n",
        r#"{"action":"ms","timestamp":1700000000123}"#,
        "\n",
        r#"{"action":"us","timestamp":1700000000123456}"#,
        "\n",
        r#"{"action":"ns","timestamp":1700000000123456789}"#,
        "\n",
        r#"{"action":"us-text","timestamp":"1700000000123456"}"#,
        "\n",
        r#"{"action":"text","timestamp":"yesterday"}"#,
        "\n",
    );
    let r = post(&h, "/v1/events", body.as_bytes(), &["-H", BEARER]);
    assert_answer(&r, 200, "accepted", 6);
    let evs = h.collector.snapshot();
    for ev in &evs[..5] {
        assert_eq!(ev.timestamp_ms, 1_700_000_000_123, "{:?}", ev.action);
        assert!(ev
            .metadata
            .as_ref()
            .is_none_or(|m| m.get("timestamp").is_none()));
    }
    assert_eq!(evs[5].metadata.as_ref().unwrap()["timestamp"], "yesterday");
    assert!(evs[5].timestamp_ms > 1_700_000_000_123);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_event_endpoint() {
    let h = harness().await;
    let body = br#"{"event":{"action":"cert.issue","user_email":"a@b.c"},"time":1700000000.5,"host":"h1","sourcetype":"audit","fields":{"env":"prod"}}{"event":"free text","index":"main"}"#;
    let r = post(
        &h,
        "/services/collector/event",
        body,
        &["-H", "Authorization: Splunk s3cret"],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"text": "Success", "code": 0}));
    let r = post(
        &h,
        "/services/collector",
        br#"{"event":"again"}"#,
        &["-H", "Authorization: Splunk s3cret"],
    );
    assert_eq!(r.status, 200);
    // Splunk's answers: a wrong token 403 code 4, a malformed header 401
    // code 3, none 401 code 2
    for (args, want) in [
        (&["-H", "Authorization: Splunk nope"][..], (403, 4)),
        (&["-H", "Authorization: Basic abc"][..], (401, 3)),
        (&[][..], (401, 2)),
    ] {
        let r = post(&h, "/services/collector/event", br#"{"event":"x"}"#, args);
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (want.0, Some(want.1)),
            "{args:?}"
        );
    }
    // the versioned path of some clients
    let r = post(
        &h,
        "/services/collector/event/1.0",
        br#"{"event":"versioned"}"#,
        &["-H", "Authorization: Splunk s3cret"],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &h,
        "/services/collector/event",
        br#"{"time":1}"#,
        &["-H", "Authorization: Splunk s3cret"],
    );
    assert_eq!((r.status, r.json()["code"].as_u64()), (400, Some(12)));

    let evs = h.collector.snapshot();
    assert_eq!(evs.len(), 4, "{evs:#?}");
    assert_eq!(evs[0].action.as_deref(), Some("cert.issue"));
    assert_eq!(evs[0].timestamp_ms, 1_700_000_000_500);
    let md = evs[0].metadata.as_ref().unwrap();
    assert_eq!(
        (
            md["host"].as_str(),
            md["sourcetype"].as_str(),
            md["env"].as_str()
        ),
        (Some("h1"), Some("audit"), Some("prod"))
    );
    assert_eq!(evs[1].message.as_deref(), Some("free text"));
    // an envelope with no host, source, sourcetype, index or fields: no
    // empty `metadata` object
    assert_eq!(evs[2].message.as_deref(), Some("again"));
    assert_eq!(evs[2].metadata, None);
    // the health check HEC clients use, without a token
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            &format!("http://127.0.0.1:{}/services/collector/health", h.port()),
        ])
        .output()
        .expect("curl");
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        health,
        serde_json::json!({"text": "HEC is healthy", "code": 17})
    );
    // indexer acknowledgement polls: Splunk's answer when it is off (it
    // was a 404 with no body, which HEC clients do not read as HEC)
    let ack = post(&h, "/services/collector/ack", br#"{"acks":[0]}"#, &[]);
    assert_eq!(ack.status, 400);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ack.body).unwrap(),
        serde_json::json!({"text": "ACK is disabled", "code": 14})
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_malformed_and_oversized_are_refused_without_appending() {
    let h = harness().await;
    let one = br#"{"action":"x"}"#;
    assert_eq!(post(&h, "/v1/events", one, &[]).status, 401);
    assert_eq!(
        post(
            &h,
            "/v1/events",
            one,
            &["-H", "Authorization: Bearer wrong"]
        )
        .status,
        401
    );
    assert_eq!(
        post(
            &h,
            "/v1/events",
            one,
            &["-H", "Authorization: Splunk s3cret"]
        )
        .status,
        401
    );

    let r = post(
        &h,
        "/v1/events",
        b"{\"a\":1}\n{\"b\":2}\n{\"c\": oops}\n",
        &["-H", BEARER],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(j["line"], 3, "{j}");
    let offset = j["offset"].as_u64().expect("offset");
    assert!((16..=30).contains(&offset), "{j}");
    assert!(j["error"].as_str().is_some());

    // an array's element that is not an object: where it is, and the
    // objects around it are not kept either
    let r = post(
        &h,
        "/v1/events",
        br#"[{"a":1}, 5, {"b":2}]"#,
        &["-H", BEARER],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(j["line"], 1, "{j}");
    assert_eq!(j["offset"], 10, "{j}");

    let big = format!(
        "[{}]",
        vec![r#"{"action":"padding.padding.padding"}"#; 200].join(",")
    );
    assert_eq!(
        post(&h, "/v1/events", big.as_bytes(), &["-H", BEARER]).status,
        413
    );
    // A small gzip body that inflates past the limit is refused too.
    let bomb = gzip(&vec![b' '; 64 * 1024]);
    let r = post(&h, "/v1/events", &bomb, &GZIP);
    assert_eq!(r.status, 413);

    assert!(h.collector.snapshot().is_empty());
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 0);
    // two objects run together: said in words, not a parser's debug dump
    let r = post(&h, "/v1/events", br#"{"a":1}{"b":2}"#, &["-H", BEARER]);
    assert_eq!(r.status, 400, "{}", r.body);
    let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("not one JSON value"), "{msg}");
    // a lone UTF-16 surrogate is refused, not turned into U+0000
    let r = post(&h, "/v1/events", br#"{"b":"\ud800"}"#, &["-H", BEARER]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(h.collector.snapshot().is_empty());
    // a byte order mark before the JSON is no error
    let r = post(
        &h,
        "/v1/events",
        b"\xEF\xBB\xBF{\"action\":\"bom\"}",
        &["-H", BEARER],
    );
    assert_answer(&r, 200, "accepted", 1);
    // the auth scheme's case does not matter (RFC 9110)
    let r = post(
        &h,
        "/v1/events",
        one,
        &["-H", "Authorization: bearer s3cret"],
    );
    assert_answer(&r, 200, "accepted", 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_ring_answers_503_with_retry_after() {
    let h = harness().await;
    h.collector.full.store(true, Ordering::SeqCst);
    let r = post(&h, "/v1/events", b"{\"a\":1}\n{\"b\":2}\n", &["-H", BEARER]);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains("retry-after: 7"), "{}", r.headers);
    assert!(h.collector.snapshot().is_empty());
    h.collector.full.store(false, Ordering::SeqCst);
    let r = post(&h, "/v1/events", b"{\"a\":1}\n{\"b\":2}\n", &["-H", BEARER]);
    assert_eq!(r.status, 200);
    h.collector.wait_for_async(2, Duration::from_secs(5)).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health() {
    let h = harness().await;
    let out = Command::new("curl")
        .args(["-sS", &format!("http://127.0.0.1:{}/health", h.port())])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), r#"{"status":"ok"}"#);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_the_queue_and_is_told_to_retry_when_it_stays_spent() {
    use std::io::Read;
    const SETTINGS: &str = r#"
address = "127.0.0.1:0"
tokens = ["s3cret"]
max_body_bytes = "64KiB"
queue_bytes = "64KiB"
"#;
    let h = start("web", "http", SETTINGS, std::path::Path::new(".")).await;
    let body = |lines: usize| b"{\"a\":1}\n".repeat(lines);
    // a request whose body is slow to come holds 60000 of the 65536 bytes
    let slow_body = body(7_500);
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", h.port())).expect("connect");
    write!(
        slow,
        "POST /v1/events HTTP/1.1\r\nHost: relay\r\n{BEARER}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        slow_body.len()
    )
    .expect("headers");
    slow.write_all(&slow_body[..1_000])
        .expect("part of the body");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // a request of `n` events of the test's body, sent at once
    let post_events = |n| post(&h, "/v1/events", &body(n), &["-H", BEARER, "-H", "Expect:"]);
    // another cannot have its 8000 bytes: after waiting, 503 + Retry-After
    let started = std::time::Instant::now();
    let r = post_events(1_000);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains("retry-after: 1"), "{}", r.headers);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited first"
    );
    assert!(h.collector.snapshot().is_empty());
    // a Content-Length over max_body_bytes is refused at once, unread
    let r = post_events(9_000);
    assert_eq!(r.status, 413, "{}", r.body);
    // the slow body completes: accepted, and the queue is free again
    slow.write_all(&slow_body[1_000..])
        .expect("rest of the body");
    let mut answer = String::new();
    slow.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let r = post_events(1_000);
    assert_eq!(r.status, 200, "{}", r.body);
    h.collector
        .wait_for_async(8_500, Duration::from_secs(5))
        .await;
    h.stop().await;
}

/// Bodies past the source's offload thresholds (256 KiB, or 32 KiB
/// compressed) are gunzipped and parsed on tokio's blocking pool. This
/// checks that path answers as the inline one does: every event accepted
/// in order, a malformed line named with nothing appended, an inflated
/// body over the limit refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_lose_nothing_and_are_refused_whole() {
    let h = start(
        "web",
        "http",
        "address = \"127.0.0.1:0\"\ntokens = [\"s3cret\"]\nmax_body_bytes = \"8MiB\"\nqueue_bytes = \"32MiB\"\n",
        std::path::Path::new("."),
    )
    .await;
    let lines = |prefix: &str, n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "{{\"action\":\"{prefix}.{i}\",\"user_id\":\"u{}\"}}\n",
                    i * 7919 % 10007
                )
            })
            .collect()
    };
    let plain = lines("plain", 12_000);
    assert!(plain.len() > 256 << 10, "{} bytes", plain.len());
    let r = post(&h, "/v1/events", plain.as_bytes(), &["-H", BEARER]);
    assert_answer(&r, 200, "accepted", 12_000);

    let zipped = gzip(lines("gz", 30_000).as_bytes());
    assert!(zipped.len() > 32 << 10, "{} bytes compressed", zipped.len());
    let r = post(&h, "/v1/events", &zipped, &GZIP);
    assert_answer(&r, 200, "accepted", 30_000);

    let hec: String = (0..8_000)
        .map(|i| format!("{{\"event\":{{\"action\":\"hec.{i}\"}},\"host\":\"h{i}\"}}"))
        .collect();
    assert!(hec.len() > 256 << 10);
    let r = post(
        &h,
        "/services/collector/event",
        hec.as_bytes(),
        &["-H", BEARER],
    );
    assert_answer(&r, 200, "code", 0);

    let evs = h.collector.snapshot();
    let actions: Vec<String> = evs.iter().filter_map(|e| e.action.clone()).collect();
    let expected: Vec<String> = (0..12_000)
        .map(|i| format!("plain.{i}"))
        .chain((0..30_000).map(|i| format!("gz.{i}")))
        .chain((0..8_000).map(|i| format!("hec.{i}")))
        .collect();
    assert!(
        actions == expected,
        "{} events, not the {} sent in order",
        actions.len(),
        expected.len()
    );
    let before = h.collector.append_calls.load(Ordering::SeqCst);
    assert_eq!(before, 3, "one append per request");

    let mut bad = lines("bad", 20_000);
    let at = bad.match_indices('\n').nth(14_998).expect("line 14999").0 + 1;
    bad.insert_str(at, "{\"action\": oops}\n");
    let r = post(&h, "/v1/events", bad.as_bytes(), &["-H", BEARER]);
    assert_answer(&r, 400, "line", 15_000);

    let bomb = gzip(&vec![b' '; 40 << 20]);
    assert!(bomb.len() > 32 << 10, "{} bytes compressed", bomb.len());
    let r = post(&h, "/v1/events", &bomb, &GZIP);
    assert_eq!(r.status, 413, "{}", r.body);

    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), before);
    assert_eq!(h.collector.snapshot().len(), 50_000);
    h.stop().await;
}

/// Reads until the server closes the connection or `within` passes;
/// returns what it sent, or `None` if it kept the connection open.
async fn read_until_closed(s: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

/// Clients that connect and say nothing, trickle their headers, or never
/// send the body they announced cannot hold the source: each is cut off
/// after `request_timeout` (the body with a 408), a connection over
/// `max_connections` is closed at once, and the slots free up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_clients_are_cut_off_and_connections_capped() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let settings = r#"
address = "127.0.0.1:0"
tokens = ["s3cret"]
max_connections = 3
request_timeout = "400ms"
"#;
    let h = start("web", "http", settings, std::path::Path::new(".")).await;
    let addr = ("127.0.0.1", h.port());
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut no_body = TcpStream::connect(addr).await.unwrap();
    no_body
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // a fourth is over the cap: closed at once, without an answer
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        read_until_closed(&mut fourth, Duration::from_millis(300)).await,
        Some(String::new()),
        "the connection over the cap is closed at once"
    );
    let answer = read_until_closed(&mut no_body, Duration::from_secs(3))
        .await
        .expect("the body that never came is given up");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        read_until_closed(&mut partial, Duration::from_secs(3))
            .await
            .is_some(),
        "trickled headers are given up"
    );
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(3))
            .await
            .is_some(),
        "a silent connection is closed"
    );
    // the slots are free again, and nothing was appended
    let r = post(
        &h,
        "/v1/events",
        br#"{"action":"after"}"#,
        &["-H", "Authorization: Bearer s3cret"],
    );
    assert_answer(&r, 200, "accepted", 1);
    assert_eq!(h.collector.snapshot().len(), 1);
    h.stop().await;
}

/// A body cut short (the client half-closes before sending what its
/// `Content-Length` announced) is a bad request, not one too large: 400,
/// on both APIs, and nothing of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_is_a_bad_request_not_too_large() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let h = harness().await;
    for (path, auth, answer) in [
        ("/v1/events", "Bearer s3cret", "request body incomplete"),
        ("/services/collector/event", "Splunk s3cret", "\"code\":6"),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", h.port())).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(br#"{"action":"cut"}"#).await.unwrap();
        s.shutdown().await.unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .expect("an answer");
        assert!(got.starts_with("HTTP/1.1 400"), "{path}: {got}");
        assert!(got.contains(answer), "{path}: {got}");
    }
    assert_eq!(h.collector.snapshot().len(), 0);
    h.stop().await;
}

const SPLUNK: [&str; 2] = ["-H", "Authorization: Splunk s3cret"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_raw_endpoint() {
    let h = harness().await;
    // a channel (header or query) is accepted, never required; the query's
    // host, source, sourcetype and index go to metadata
    let body = b"plain line one\r\n\r\n<38>1 2023-11-14T22:13:20Z web sshd 42 - - Accepted publickey\n  \nlast line, no newline";
    let r = post(
        &h,
        "/services/collector/raw?channel=0aec2d16-8f24-4c3c-9d3e-6d1c1b3c1f2a&host=fw1&source=udp%3A514&sourcetype=syslog&index=net",
        body,
        &[
            "-H",
            "Authorization: Splunk s3cret",
            "-H",
            "X-Splunk-Request-Channel: 0aec2d16-8f24-4c3c-9d3e-6d1c1b3c1f2a",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"text": "Success", "code": 0}));
    let evs = h.collector.snapshot();
    assert_eq!(evs.len(), 3, "{evs:#?}");
    let messages: Vec<_> = evs.iter().map(|e| e.message.as_deref()).collect();
    assert_eq!(
        messages,
        [
            Some("plain line one"),
            Some("Accepted publickey"),
            Some("last line, no newline")
        ]
    );
    for ev in &evs {
        let md = ev.metadata.as_ref().expect("metadata");
        assert_eq!(
            (
                md["host"].as_str(),
                md["source"].as_str(),
                md["sourcetype"].as_str(),
                md["index"].as_str(),
                md.get("channel")
            ),
            (
                Some("fw1"),
                Some("udp:514"),
                Some("syslog"),
                Some("net"),
                None
            )
        );
        assert!(!ev.parse_error);
    }
    let sys = evs[1].syslog.as_ref().expect("the syslog line is parsed");
    assert_eq!(
        (sys.hostname.as_deref(), sys.app_name.as_deref()),
        (Some("web"), Some("sshd"))
    );
    assert_eq!(evs[1].timestamp_ms, 1_700_000_000_000);
    assert!(evs[0].syslog.is_none());
    // gzip, the versioned path, no channel at all
    let r = post(
        &h,
        "/services/collector/raw/1.0",
        &gzip(b"zipped one\nzipped two\n"),
        &[
            "-H",
            "Authorization: Splunk s3cret",
            "-H",
            "Content-Encoding: gzip",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.collector.snapshot().len(), 5);
    // no data: Splunk's code 5
    for body in [&b""[..], b"\r\n \n"] {
        let r = post(&h, "/services/collector/raw", body, &SPLUNK);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json(), serde_json::json!({"text": "No data", "code": 5}));
    }
    // the same auth as the other HEC paths
    for (args, want) in [
        (&["-H", "Authorization: Splunk nope"][..], (403, 4)),
        (&["-H", "Authorization: Basic abc"][..], (401, 3)),
        (&[][..], (401, 2)),
    ] {
        let r = post(&h, "/services/collector/raw", b"x\n", args);
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (want.0, Some(want.1)),
            "{args:?}"
        );
    }
    // the same limits: max_body_bytes (4KiB here), a full ring
    let big = "a raw line of padding padding padding\n".repeat(200);
    let r = post(&h, "/services/collector/raw", big.as_bytes(), &SPLUNK);
    assert_eq!(r.status, 413, "{}", r.body);
    h.collector.full.store(true, Ordering::SeqCst);
    let r = post(&h, "/services/collector/raw", b"one\ntwo\n", &SPLUNK);
    assert_eq!((r.status, r.json()["code"].as_u64()), (503, Some(9)));
    assert_eq!(r.json()["text"], "Server is busy", "Splunk's words");
    assert!(r.headers.contains("retry-after: 7"), "{}", r.headers);
    h.collector.full.store(false, Ordering::SeqCst);
    assert_eq!(h.collector.snapshot().len(), 5);
    // a query string on the event endpoint too
    let r = post(
        &h,
        "/services/collector/event?channel=0aec2d16-8f24-4c3c-9d3e-6d1c1b3c1f2a",
        br#"{"event":"with a channel"}"#,
        &SPLUNK,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.collector.snapshot().len(), 6);
    h.stop().await;
}

/// Splunk refuses an event whose `time` is not epoch time with code 6,
/// naming it (from 0); nothing of the request is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_invalid_time_is_refused_whole() {
    let h = harness().await;
    for bad in [
        r#""yesterday""#,
        "-1",
        r#""NaN""#,
        r#""2023-11-14T22:13:20Z""#,
        // past the year 9999, in seconds and beyond every unit
        "1e21",
        "1e30",
        r#""1e300""#,
    ] {
        let body = format!(
            r#"{{"event":"good","time":1700000000}}{{"event":"also good","time":"1700000000.5"}}{{"event":"bad","time":{bad}}}"#
        );
        let r = post(&h, "/services/collector/event", body.as_bytes(), &SPLUNK);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 2}),
            "{bad}"
        );
    }
    assert!(h.collector.snapshot().is_empty());
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 0);
    // the missing event is numbered too
    let r = post(
        &h,
        "/services/collector/event",
        br#"{"event":"a"}{"time":1}"#,
        &SPLUNK,
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"text": "Event field is required", "code": 12, "invalid-event-number": 1})
    );
    h.stop().await;
}

/// A JSON syntax error in the n-th event of a batch, or an n-th value that
/// is not an object: Splunk's code 6 with `invalid-event-number` n (from
/// 0); as for a bad `time`, nothing of the request is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_syntax_error_names_its_event_and_keeps_nothing() {
    let h = harness().await;
    for (body, n) in [
        (
            &br#"{"event":"good"}{"event":"also good"}{"event":"bad""#[..],
            2,
        ),
        (br#"{"event":"good"} {"event": nope}"#, 1),
        (br#"{"event" "no colon"}"#, 0),
        // JSON, but not an envelope: a value that is not an object
        (br#"{"event":"good"} ["not", "an", "envelope"]"#, 1),
        (br#"{"event":"good"}{"event":"also good"} 42"#, 2),
    ] {
        let r = post(&h, "/services/collector/event", body, &SPLUNK);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"text": "Invalid data format", "code": 6, "invalid-event-number": n}),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(h.collector.snapshot().is_empty());
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 0);
    h.stop().await;
}

/// The events of `body` posted to `path`, whose query has
/// `time=1700000100.25`: accepted, the first and third without a time of
/// their own (they get the query's) and the second with 1700000000.
fn accepted_with_query_time(h: &Harness, path: &str, body: &[u8]) -> Vec<Event> {
    let r = post(h, path, body, &SPLUNK);
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = h.collector.snapshot();
    let times: Vec<i64> = evs.iter().map(|e| e.timestamp_ms).collect();
    assert_eq!(
        times,
        [1_700_000_100_250, 1_700_000_000_000, 1_700_000_100_250]
    );
    evs
}

/// A `time` query parameter that is not epoch time makes `path` refuse
/// `body` as Splunk refuses one: 400, code 6, `invalid-event-number` 0.
fn query_times_are_refused(h: &Harness, path: &str, body: &[u8]) {
    for bad in ["abc", "-1", "NaN", "2023-11-14T22:13:20Z", ""] {
        let r = post(h, &format!("{path}?time={bad}"), body, &SPLUNK);
        assert_eq!(r.status, 400, "{path} {bad}: {}", r.body);
        assert_eq!(
            r.json(),
            json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 0}),
            "{path} {bad}"
        );
    }
}

/// On the event endpoint the query's `host`, `source`, `sourcetype`,
/// `index` and `time` are what envelopes that set none of their own get, as
/// Splunk takes them; a `time` that is not epoch time is refused (code 6,
/// `invalid-event-number` 0) with nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_event_query_gives_envelopes_what_they_do_not_set() {
    let h = harness().await;
    let body = br#"{"event":"no time","host":"own-host"}
{"event":"own time","time":1700000000,"index":"own-index"}
{"event":"null time","time":null}"#;
    let evs = accepted_with_query_time(
        &h,
        "/services/collector/event?host=fw1&index=edge&time=1700000100.25&channel=x",
        body,
    );
    let md: Vec<_> = evs
        .iter()
        .map(|e| e.metadata.as_ref().expect("metadata"))
        .collect();
    assert_eq!(
        (&md[0]["host"], &md[0]["index"]),
        (&json!("own-host"), &json!("edge"))
    );
    assert_eq!(
        (&md[1]["host"], &md[1]["index"]),
        (&json!("fw1"), &json!("own-index"))
    );
    assert_eq!(
        (&md[2]["host"], &md[2]["index"]),
        (&json!("fw1"), &json!("edge"))
    );
    assert!(
        md.iter()
            .all(|m| m.get("time").is_none() && m.get("channel").is_none()),
        "{md:?}"
    );
    query_times_are_refused(&h, "/services/collector/event", br#"{"event":"x"}"#);
    assert_eq!(h.collector.snapshot().len(), 3);
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 1);
    h.stop().await;
}

/// `?time=` on the raw endpoint is the time of the request's events that
/// have none of their own (a syslog line's header time wins); a `time`
/// that is not epoch time is refused as the event endpoint refuses one
/// (code 6, `invalid-event-number`), with nothing of the request kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_raw_query_time_is_the_time_of_events_without_one() {
    let h = harness().await;
    let body = b"plain text\n<38>1 2023-11-14T22:13:20Z web sshd - - - own time\n<38>1 - web sshd - - - no time\n";
    let evs = accepted_with_query_time(
        &h,
        "/services/collector/raw?host=fw1&time=1700000100.25",
        body,
    );
    let md = evs[0].metadata.as_ref().expect("metadata");
    assert_eq!(md["host"], "fw1");
    assert!(md.get("time").is_none(), "{md:?}");
    query_times_are_refused(&h, "/services/collector/raw", b"one\ntwo\n");
    assert_eq!(h.collector.snapshot().len(), 3);
    assert_eq!(h.collector.append_calls.load(Ordering::SeqCst), 1);
    h.stop().await;
}

/// JSON nested deeper than the parsers' stacks allow is refused where it
/// gets too deep (a syslog line's JSON MSG that deep is kept as text), and
/// the relay goes on: a body of `[` a hundred thousand deep, 200 KB,
/// overflowed the stack of the thread parsing it and aborted the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_too_deep_is_refused_not_a_crash() {
    let h = start(
        "web",
        "http",
        "address = \"127.0.0.1:0\"\ntokens = [\"s3cret\"]\nmax_body_bytes = \"1MiB\"\n",
        std::path::Path::new("."),
    )
    .await;
    let deep = |n: usize, open: &str, inner: &str, close: &str| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let arrays = deep(100_000, "[", "", "]");
    let objects = deep(50_000, r#"{"a":"#, "1", "}");
    let ndjson = format!("{{\"ok\":1}}\n{arrays}\n");
    for (body, offset, line) in [(&arrays, 64, 1), (&objects, 320, 1), (&ndjson, 73, 2)] {
        let r = post(&h, "/v1/events", body.as_bytes(), &["-H", BEARER]);
        assert_eq!(r.status, 400, "{}", r.body);
        let v = r.json();
        assert_eq!(
            (v["offset"].as_u64(), v["line"].as_u64()),
            (Some(offset), Some(line))
        );
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains("nested more than 64 levels deep"), "{msg}");
    }
    // as deep as allowed is fine, and its record reads back (the test's
    // collector reads it with serde_json, which stops at 128 levels)
    let r = post(
        &h,
        "/v1/events",
        format!(r#"{{"a":{}}}"#, deep(63, "[", "", "]")).as_bytes(),
        &["-H", BEARER],
    );
    assert_answer(&r, 200, "accepted", 1);
    // HEC: the envelope's fault, in Splunk's words; too deep for serde_json
    // itself, or deeper than the relay takes
    let splunk = ["-H", "Authorization: Splunk s3cret"];
    let hec = format!(r#"{{"event":{objects}}}"#);
    let r = post(&h, "/services/collector/event", hec.as_bytes(), &splunk);
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (400, Some(6)),
        "{}",
        r.body
    );
    let hec = format!(
        r#"{{"event":"fine"}}{{"event":{}}}"#,
        deep(70, r#"{"a":"#, "1", "}")
    );
    let r = post(&h, "/services/collector/event", hec.as_bytes(), &splunk);
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_u64(),
            r.json()["invalid-event-number"].as_u64()
        ),
        (400, Some(6), Some(1)),
        "{}",
        r.body
    );
    // a syslog line whose JSON MSG is that deep: kept, its MSG as text
    let line = format!("<13>1 - h a - - - {{\"a\":{}}}", deep(60_000, "[", "", "]"));
    let r = post(&h, "/services/collector/raw", line.as_bytes(), &splunk);
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = h.collector.wait_for_async(2, Duration::from_secs(5)).await;
    assert_eq!(evs.len(), 2, "{evs:#?}");
    let msg = evs[1].message.as_deref().unwrap_or_default();
    assert!(
        msg.starts_with("{\"a\":[[[") && msg.len() == line.len() - 18,
        "{}",
        msg.len()
    );
    h.stop().await;
}

/// A client that sends its whole request and then shuts down its side of
/// the connection (`nc -N`, `shutdown(SHUT_WR)`) gets its answer, and its
/// events are stored. The connection treated the end of its input as the
/// client gone and dropped the request in progress: no answer, nothing
/// stored, nothing counted (QA: 6 of 60 small requests; a large body,
/// parsed on the blocking pool, every time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_then_a_half_close_is_answered_and_kept() {
    use tokio::io::AsyncWriteExt;
    let h = start(
        "web",
        "http",
        "address = \"127.0.0.1:0\"\ntokens = [\"s3cret\"]\nmax_body_bytes = \"8MiB\"\n",
        std::path::Path::new("."),
    )
    .await;
    let request = |body: &str| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\n{BEARER}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let small = r#"{"action":"half.close"}"#.to_string();
    // over 256 KiB: parsed on the blocking pool, while the connection reads on
    let large: String = (0..8_000)
        .map(|i| format!("{{\"action\":\"half.large\",\"user_id\":\"u{i:05}\"}}\n"))
        .collect();
    assert!(large.len() > 256 << 10);
    let mut expected = 0;
    for (body, events) in [(&small, 1), (&large, 8_000)].into_iter().cycle().take(40) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.port()))
            .await
            .unwrap();
        s.write_all(request(body).as_bytes()).await.unwrap();
        s.shutdown().await.unwrap(); // FIN: nothing more to send
        let answer = read_until_closed(&mut s, Duration::from_secs(10))
            .await
            .expect("the server closes after answering");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{} events: answered {answer:?}",
            events
        );
        assert!(
            answer.contains(&format!("\"accepted\":{events}")),
            "{answer}"
        );
        expected += events;
    }
    assert_eq!(
        h.collector
            .wait_for(expected, Duration::from_secs(10))
            .len(),
        expected
    );
    h.stop().await;
}
