//! The syslog hint is stored only while a destination that reads it runs: a
//! relay started from a config file with a syslog TCP source and a file
//! destination writes records without hints; after a reload adds a `syslog`
//! destination (a real TCP listener here), new records carry them, and both
//! kinds of record reach the syslog destination rendered the same way.

use siem_relay::app::{load_config, Relay};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

fn config(dir: &std::path::Path, syslog_to: Option<(&str, u16, &str)>) -> String {
    let mut text = format!(
        r#"data_dir = "{d}/data"

[buffer]
max_bytes = "4MiB"
segment_bytes = "1MiB"
fsync = "never"

[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:0"

[destinations.archive]
type = "file"
path = "{d}/out/events.ndjson"
batch_timeout = "20ms"
"#,
        d = dir.display()
    );
    if let Some((name, port, format)) = syslog_to {
        text.push_str(&format!(
            "\n[destinations.{name}]\ntype = \"syslog\"\naddress = \"127.0.0.1:{port}\"\n\
             mode = \"tcp\"\nformat = \"{format}\"\nbatch_timeout = \"20ms\"\n"
        ));
    }
    text
}

/// Sends `line` on a new connection to the relay's TCP source.
fn send(addr: std::net::SocketAddr, line: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Reads records through a cursor of its own until `n` are there; returns
/// each one's (body, hint).
async fn records(relay: &Arc<Relay>, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let relay = relay.clone();
    tokio::task::spawn_blocking(move || read_records(&relay, n))
        .await
        .unwrap()
}

fn read_records(relay: &Relay, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut cursor = relay.ring().cursor("probe", Default::default()).unwrap();
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < deadline, "{} of {n} records", got.len());
        let mut out = Vec::new();
        if cursor.read(100, 1 << 20, &mut out).is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        got.extend(out.iter().map(|r| (r.body().to_vec(), r.hint().to_vec())));
    }
    got
}

const LINE: &str = "<86>1 2026-12-05T04:00:00.123Z host-a app-b 42 LOGIN \
                    [origin@32473 ip=\"10.1.2.3\"] user alice logged in";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_are_stored_only_while_a_syslog_destination_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, config(dir.path(), None)).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];
    assert!(!relay.writes_syslog_hints(), "no destination reads hints");

    send(source, LINE);
    let first = records(&relay, 1).await;
    assert!(first[0].1.is_empty(), "a record without a hint");

    // a syslog destination that sends the event's JSON does not read hints
    let json_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let json_port = json_listener.local_addr().unwrap().port();
    std::fs::write(
        &file,
        config(dir.path(), Some(("json_out", json_port, "json"))),
    )
    .unwrap();
    relay.reload().await.unwrap();
    assert!(
        !relay.writes_syslog_hints(),
        "format = \"json\" reads no hints"
    );

    // a reload makes it rebuild syslog lines: it starts over from the start
    // of the ring with the hint-less record, and new records carry hints
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(&file, config(dir.path(), Some(("central", port, "syslog")))).unwrap();
    relay.reload().await.unwrap();
    assert!(
        relay.writes_syslog_hints(),
        "format = \"syslog\" reads hints"
    );
    send(source, LINE);
    let both = records(&relay, 2).await;
    assert!(both[0].1.is_empty());
    assert!(!both[1].1.is_empty(), "a record with a hint");
    // the same body but for the event id, the receive time and the peer's port
    let strip = |b: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        let mut m = v.as_object().unwrap().clone();
        m.remove("event_id");
        m.remove("received_at");
        m["source"]["address"].take();
        m
    };
    assert_eq!(strip(&both[0].0), strip(&both[1].0));

    // both reach the syslog destination as the same RFC 5424 line
    let lines = tokio::task::spawn_blocking(move || octet_counted(listener, 2))
        .await
        .unwrap();
    assert_eq!(lines[0], lines[1]);
    assert!(
        lines[0].starts_with(
            "<86>1 2026-12-05T04:00:00.123Z host-a app-b 42 LOGIN [origin@32473 ip=\"10.1.2.3\"]"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("user alice logged in"), "{}", lines[0]);

    // removing it again: no more hints
    std::fs::write(&file, config(dir.path(), None)).unwrap();
    relay.reload().await.unwrap();
    assert!(!relay.writes_syslog_hints());
    relay.shutdown().await.unwrap();
}

/// Reads `n` octet-counted messages from the first connection to `listener`.
fn octet_counted(listener: TcpListener, n: usize) -> Vec<String> {
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(T)).unwrap();
    let mut r = BufReader::new(conn);
    let mut lines = Vec::new();
    while lines.len() < n {
        let mut len = Vec::new();
        r.read_until(b' ', &mut len).unwrap();
        let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut msg = vec![0u8; len];
        std::io::Read::read_exact(&mut r, &mut msg).unwrap();
        lines.push(String::from_utf8(msg).unwrap());
    }
    lines
}

/// `format = "syslog"` forwards an RFC 5424 line byte for byte: the
/// sender's microseconds and UTC offset, its SD as written, a JSON MSG as
/// written (not the canonical event, nor only its `message` member); only
/// a BOM before the MSG is left out, as from every rebuilt message. An RFC
/// 3164 line goes out as RFC 5424, its JSON MSG as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rfc5424_line_goes_out_as_it_came() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(&file, config(dir.path(), Some(("central", port, "syslog")))).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];
    let lines = [
        r#"<134>1 2026-12-06T10:00:00.123456+02:00 host1 app 123 ID47 [ex@32473 b="2" a="1"] {"user":"bob","n":1,  "z":true}"#,
        r#"<165>1 2003-10-11T22:14:15.003000Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \u{feff}An application event"#,
        r#"<13>1 2026-12-06T10:00:00-05:00 h a - - - {"message":"hi","user":"carol"}"#,
    ];
    let mut s = TcpStream::connect(source).unwrap();
    for line in lines {
        let line = line.replace("\\u{feff}", "\u{feff}");
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    s.write_all(b"<13>Dec  6 10:00:00 myhost sshd[12]: {\"a\": 1, \"message\":\"hi\"}\n")
        .unwrap();
    drop(s);
    let got = tokio::task::spawn_blocking(move || octet_counted(listener, 4))
        .await
        .unwrap();
    // all but the BOM, which no MSG is sent with
    for (line, out) in lines.iter().zip(&got) {
        assert_eq!(out, &line.replace("\\u{feff}", ""));
    }
    // the year is the receiver's guess: not checked
    assert!(got[3].starts_with("<13>1 "), "{}", got[3]);
    assert!(
        got[3].contains("-12-06T10:00:00.000Z myhost sshd 12 - - "),
        "{}",
        got[3]
    );
    assert!(
        got[3].ends_with(r#" {"a": 1, "message":"hi"}"#),
        "{}",
        got[3]
    );
    relay.shutdown().await.unwrap();
}

/// RFC 3164 has no STRUCTURED-DATA: a 3164 MSG that starts with a bracketed
/// word or an SD-shaped element, or with `-`, is stored as the event's
/// `message`, with no `structured_data`, and goes out in RFC 5424 after
/// NILVALUE SD, as written (on the fast path and on syslog_loose's: the
/// line without a hostname).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3164_msg_that_looks_like_sd_goes_out_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(&file, config(dir.path(), Some(("central", port, "syslog")))).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];
    let sent = [
        (
            "<13>Dec  7 10:12:14 host1 kernel: [12345.678] R2 kernel uptime",
            " host1 kernel - - - [12345.678] R2 kernel uptime",
            "[12345.678] R2 kernel uptime",
        ),
        (
            "<11>2026-12-07T10:12:14+01:00 web1 myapp[77]: [INFO] R3 service started",
            " web1 myapp 77 - - [INFO] R3 service started",
            "[INFO] R3 service started",
        ),
        (
            r#"<13>Dec  7 10:12:14 h app: [x@1 a="b"][error][client 1.2.3.4] R4"#,
            r#" h app - - - [x@1 a="b"][error][client 1.2.3.4] R4"#,
            r#"[x@1 a="b"][error][client 1.2.3.4] R4"#,
        ),
        (
            "<13>Dec  7 10:12:14 sshd[9]: - R5",
            " sshd 9 - - - R5",
            "- R5",
        ),
    ];
    let mut s = TcpStream::connect(source).unwrap();
    for (line, _, _) in sent {
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    drop(s);
    let got = tokio::task::spawn_blocking(move || octet_counted(listener, sent.len()))
        .await
        .unwrap();
    let stored = records(&relay, sent.len()).await;
    for (((line, tail, msg), out), (body, _)) in sent.iter().zip(&got).zip(&stored) {
        assert!(out.ends_with(tail), "{line}\n → {out}");
        let event: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["message"], *msg, "{line}");
        assert!(event["syslog"].get("structured_data").is_none(), "{line}");
        assert!(event.get("parse_error").is_none(), "{line}");
    }
    relay.shutdown().await.unwrap();
}
