//! A number in `actor` / `resource` members is the member's text, end to
//! end: JSON events posted to the `http` source and JSON MSGs over syslog
//! TCP reach a file destination with `redact` and `filter` as the same
//! events with string ids. The whole object went to `metadata` instead, so
//! `actor.email` and `actor.id` were written in clear and `exclude_users` /
//! `exclude_paths` let the events through.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use siem_relay::app::{load_config, Relay};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn config(dir: &Path) -> String {
    format!(
        r#"data_dir = "{d}/data"

[buffer]
max_bytes = "4MiB"
segment_bytes = "1MiB"
fsync = "never"

[sources.web]
type = "http"
address = "127.0.0.1:0"

[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:0"

[destinations.red]
type = "file"
path = "{d}/out/red.ndjson"
batch_timeout = "20ms"
redact = {{ drop_fields = ["actor.email"], hash_fields = ["actor.id"], hash_key = "k" }}
filter = {{ exclude_users = ["bob@example.com"], exclude_paths = ["/secret/*"] }}
"#,
        d = dir.display()
    )
}

/// `hex(HMAC-SHA256("k", id))`, what `hash_fields` writes.
fn hashed(id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
    mac.update(id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs `body` to `/v1/events` on a new connection; the status line.
fn post(addr: std::net::SocketAddr, body: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(T)).unwrap();
    write!(
        conn,
        "POST /v1/events HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply.lines().next().unwrap_or_default().to_string()
}

/// The written events by `event_id`, once the ids `until` are all there.
fn written(file: &Path, until: &[&str]) -> serde_json::Map<String, Value> {
    let deadline = Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let events: serde_json::Map<String, Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["event_id"].as_str().unwrap().to_string(), v))
            .collect();
        if until.iter().all(|id| events.contains_key(*id)) {
            return events;
        }
        assert!(Instant::now() < deadline, "not all of {until:?} in {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_actor_and_resource_ids_are_redacted_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, config(dir.path())).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let sources = relay.source_addresses().await;
    let (web, tcp) = (sources["web"], sources["tcp"]);

    let events = [
        r#"{"event_id":"s","actor":{"id":"1001","email":"alice@example.com"}}"#,
        r#"{"event_id":"n","actor":{"id":1001,"email":"alice@example.com"}}"#,
        r#"{"event_id":"f","actor":{"id":1001.5,"email":"alice@example.com"},"resource":{"id":3,"path":"/pub/x"}}"#,
        r#"{"event_id":"b","actor":{"id":7,"email":"bob@example.com"}}"#,
        r#"{"event_id":"r","resource":{"id":42,"path":"/secret/payroll"}}"#,
        r#"{"event_id":"end"}"#,
    ];
    // HTTP: each object its own POST, then all of them in one NDJSON body
    for body in events.iter().map(|e| e.to_string()).chain([events
        .map(|e| e.replace("\"event_id\":\"", "\"event_id\":\"nd-"))
        .join("\n")])
    {
        let status = post(web, &body);
        assert!(status.starts_with("HTTP/1.1 2"), "{status}");
    }
    // syslog: the same objects as JSON MSGs, one connection (in order)
    let mut conn = TcpStream::connect(tcp).unwrap();
    for e in events {
        let e = e.replace("\"event_id\":\"", "\"event_id\":\"sys-");
        writeln!(conn, "<14>1 2026-12-07T10:00:00Z host app - - - {e}").unwrap();
    }
    drop(conn);

    let out = written(
        &dir.path().join("out/red.ndjson"),
        &["end", "nd-end", "sys-end"],
    );
    for prefix in ["", "nd-", "sys-"] {
        let ev = |id: &str| {
            out.get(&format!("{prefix}{id}"))
                .unwrap_or_else(|| panic!("{prefix}{id} not written: {out:?}"))
        };
        // the number is the id "1001": hashed as the string one is, the email dropped
        for id in ["s", "n"] {
            let e = ev(id);
            assert_eq!(e["actor"], serde_json::json!({"id": hashed("1001")}), "{e}");
            assert!(e.get("metadata").is_none(), "{e}");
        }
        let f = ev("f");
        assert_eq!(
            f["actor"],
            serde_json::json!({"id": hashed("1001.5")}),
            "{f}"
        );
        assert_eq!(
            f["resource"],
            serde_json::json!({"id": "3", "path": "/pub/x"})
        );
        assert!(f.get("metadata").is_none(), "{f}");
        // bob (exclude_users) and /secret/* (exclude_paths) are left out
        for id in ["b", "r"] {
            assert!(
                !out.contains_key(&format!("{prefix}{id}")),
                "{prefix}{id} sent"
            );
        }
    }
    let text = std::fs::read_to_string(dir.path().join("out/red.ndjson")).unwrap();
    assert!(!text.contains("example.com"), "an email in clear: {text}");
    assert!(!text.contains("1001\""), "an id in clear: {text}");
    relay.shutdown().await.unwrap();
}
