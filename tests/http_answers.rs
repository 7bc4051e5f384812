//! The `http` source's answers on a raw socket, byte for byte: every answer
//! after which the server closes the connection says `Connection: close`
//! (a keep-alive client's next request would otherwise go to a closed
//! connection), one after a body read to its end keeps the connection; the
//! HEC paths answer a body that is not gzip, or cut short, with Splunk's
//! `{"text":"Invalid data format","code":6}` and an empty one (gzip or not)
//! with `{"text":"No data","code":5}`.

mod ingest_support;

use ingest_support::start;
use std::io::Write;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SETTINGS: &str = r#"
address = "127.0.0.1:0"
tokens = ["s3cret"]
max_body_bytes = "1KiB"
request_timeout = "300ms"
"#;

/// One answer: its status, its head (lower-cased), its body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn closes(&self) -> bool {
        self.head.lines().any(|l| l == "connection: close")
    }
}

/// Reads one answer (its `Content-Length` body) off `s`.
async fn answer(s: &mut TcpStream) -> Answer {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse().unwrap());
                if got.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into();
                    let status = head[9..12].parse().unwrap();
                    return Answer { status, head, body };
                }
            }
            let n = s.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before a whole answer: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer within 5s")
}

/// Whether the server closed `s` (within a second) after its answer.
async fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut rest)).await {
        Ok(Ok(_)) | Ok(Err(_)) => true,
        Err(_) => false,
    }
}

fn request(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer s3cret\r\n{headers}\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn length(body: &[u8]) -> String {
    format!("Content-Length: {}\r\n", body.len())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A keep-alive client's request refused before its body was read to its
/// end is answered with `Connection: close`, and the connection closes;
/// one refused after its body was read (malformed JSON) or accepted keeps
/// the connection for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_end_the_connection_say_so() {
    let h = start("web", "http", SETTINGS, std::path::Path::new(".")).await;
    let addr = ("127.0.0.1", h.port());
    let event = br#"{"event":"x"}"#;
    let big = vec![b'a'; 2048];
    // (what is sent, the status, whether the client half-closes after it)
    let closing: Vec<(&str, Vec<u8>, u16, bool)> = vec![
        // over max_body_bytes by its Content-Length: not read at all
        (
            "413 by length",
            request("/v1/events", &length(&big), &big),
            413,
            false,
        ),
        // chunked, over max_body_bytes as it is read
        (
            "413 as read",
            request(
                "/services/collector/event",
                "Transfer-Encoding: chunked\r\n",
                format!(
                    "800\r\n{}\r\n800\r\n{}\r\n0\r\n\r\n",
                    "a".repeat(2048),
                    "a".repeat(2048)
                )
                .as_bytes(),
            ),
            413,
            false,
        ),
        // the body announced never comes
        (
            "408",
            request("/v1/events", "Content-Length: 100\r\n", b"{\"a\":"),
            408,
            false,
        ),
        // the client stops sending before its Content-Length
        (
            "400 incomplete",
            request("/v1/events", "Content-Length: 100\r\n", b"{\"a\":"),
            400,
            true,
        ),
        // refused before the body is read
        (
            "415",
            request(
                "/v1/events",
                &format!("Content-Encoding: br\r\n{}", length(event)),
                event,
            ),
            415,
            false,
        ),
        (
            "401",
            {
                let mut r = format!(
                    "POST /v1/events HTTP/1.1\r\nHost: relay\r\n{}\r\n",
                    length(event)
                )
                .into_bytes();
                r.extend_from_slice(event);
                r
            },
            401,
            false,
        ),
    ];
    for (what, req, status, half_close) in closing {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&req).await.unwrap();
        if half_close {
            s.shutdown().await.unwrap();
        }
        let a = answer(&mut s).await;
        assert_eq!(a.status, status, "{what}: {a:?}");
        assert!(a.closes(), "{what}: no Connection: close in {a:?}");
        assert!(closed(&mut s).await, "{what}: the connection stays open");
    }

    // bodies read to their end: the connection is kept for the next one
    // (all four go on one connection)
    let mut s = TcpStream::connect(addr).await.unwrap();
    let malformed = b"{not json";
    for (req, status) in [
        (
            request("/services/collector/event", &length(malformed), malformed),
            400,
        ),
        (
            request("/services/collector/event", &length(event), event),
            200,
        ),
        (
            request("/services/collector/event", "Content-Length: 0\r\n", b""),
            400,
        ),
        (
            request("/services/collector/event", &length(event), event),
            200,
        ),
    ] {
        s.write_all(&req).await.unwrap();
        let a = answer(&mut s).await;
        assert_eq!(a.status, status, "{a:?}");
        assert!(!a.closes(), "{a:?}");
    }
    h.stop().await;
}

/// The HEC paths' answers to bodies that are not gzip, cut short or empty,
/// and to those Splunk's table has no code for, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_answers_bad_and_empty_bodies_as_splunk_does() {
    let h = start("web", "http", SETTINGS, std::path::Path::new(".")).await;
    let addr = ("127.0.0.1", h.port());
    let gz = |body: &[u8]| format!("Content-Encoding: gzip\r\n{}", length(body));
    let not_gzip = b"this is not gzip";
    let cut = gzip(b"{\"event\":\"x\"}");
    let cut = &cut[..cut.len() - 6];
    let empty_gzip = gzip(b"");
    let big = vec![b'a'; 2048];
    let invalid = r#"{"text":"Invalid data format","code":6}"#;
    let no_data = r#"{"text":"No data","code":5}"#;
    for path in ["/services/collector/event", "/services/collector/raw"] {
        let cases: Vec<(&str, Vec<u8>, bool, u16, &str)> = vec![
            (
                "not gzip",
                request(path, &gz(not_gzip), not_gzip),
                false,
                400,
                invalid,
            ),
            (
                "gzip cut short",
                request(path, &gz(cut), cut),
                false,
                400,
                invalid,
            ),
            (
                "gzip, empty body",
                request(path, &gz(b""), b""),
                false,
                400,
                no_data,
            ),
            (
                "gzip of nothing",
                request(path, &gz(&empty_gzip), &empty_gzip),
                false,
                400,
                no_data,
            ),
            (
                "empty",
                request(path, "Content-Length: 0\r\n", b""),
                false,
                400,
                no_data,
            ),
            (
                "body incomplete",
                request(path, "Content-Length: 100\r\n", b"{\"event\":"),
                true,
                400,
                invalid,
            ),
            (
                "too large",
                request(path, &length(&big), &big),
                false,
                413,
                r#"{"text":"request body too large","code":6}"#,
            ),
            (
                "timeout",
                request(path, "Content-Length: 100\r\n", b"{\"event\":"),
                false,
                408,
                r#"{"text":"request body not received within 300ms","code":6}"#,
            ),
            (
                "brotli",
                request(path, "Content-Encoding: br\r\nContent-Length: 0\r\n", b""),
                false,
                415,
                r#"{"text":"unsupported content encoding `br`","code":6}"#,
            ),
        ];
        for (what, req, half_close, status, body) in cases {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            if half_close {
                s.shutdown().await.unwrap();
            }
            let a = answer(&mut s).await;
            assert_eq!((a.status, a.body.as_str()), (status, body), "{path} {what}");
        }
    }
    // nothing of them was kept
    assert!(h.collector.snapshot().is_empty());
    h.stop().await;
}
