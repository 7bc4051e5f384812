//! The `syslog` destination against a real rsyslog: TCP (octet counting),
//! UDP (with truncation), TLS with a client certificate, the `syslog` body
//! format, and reconnection after a server restart.
//!
//! Needs `rsyslogd` with the GnuTLS driver (Debian packages `rsyslog` and
//! `rsyslog-gnutls`); the tests fail with a clear message when it is missing.
//! Each test starts its own rsyslogd (`-n -f CONF -i PIDFILE`) in a temp dir
//! on free high ports; rsyslog writes every message it receives to a file,
//! one per line, and the test compares those lines with what was sent.

use bytes::Bytes;
use siem_relay::destinations::{syslog, Batch, BatchEvent, BuildContext, Delivery, Sink};
use siem_relay::event::{format_rfc3339_millis, Event, Severity, SyslogFields};
use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(15);
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(15);

/// The rsyslog templates: the raw message, and the fields rsyslog parsed.
const TEMPLATES: &str = r#"
template(name="raw" type="string" string="%rawmsg%\n")
template(name="fields" type="string" string="%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
"#;

fn rsyslogd() -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("rsyslogd not found: install the Debian packages `rsyslog` and `rsyslog-gnutls`")
        })
}

fn free_port() -> u16 {
    // Free for TCP and UDP at the time of asking (good enough on a test box).
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free port")
            .port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One rsyslogd started by a test.
struct Rsyslog {
    dir: PathBuf,
    child: Option<Child>,
}

impl Rsyslog {
    /// Writes `inputs` (module and input lines) into a config that logs to
    /// `raw.log` and `fields.log`, and starts rsyslogd.
    fn start(dir: &Path, inputs: &str) -> Rsyslog {
        let d = dir.display();
        let conf = format!(
            "global(workDirectory=\"{d}\")\n{inputs}\n{TEMPLATES}\n\
             action(type=\"omfile\" file=\"{d}/raw.log\" template=\"raw\")\n\
             action(type=\"omfile\" file=\"{d}/fields.log\" template=\"fields\")\n"
        );
        fs::write(dir.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        let mut r = Rsyslog {
            dir: dir.to_path_buf(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.dir.join("rsyslogd.stderr")).expect("log file");
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
    }

    /// SIGTERM, then wait (bounded) for the process to exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        let _ = fs::remove_file(self.dir.join("rsyslogd.pid"));
        self.spawn();
    }

    fn diagnostics(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }

    /// Polls until a TCP connection to `port` succeeds.
    fn wait_tcp(&mut self, port: u16) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("rsyslogd exited ({status}): {}", self.diagnostics());
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "rsyslogd did not listen on {port} within {READY_TIMEOUT:?}: {}",
            self.diagnostics()
        );
    }

    /// Sends probe datagrams until rsyslog has written one.
    fn wait_udp(&self, port: u16) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let _ = sock.send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", port));
            std::thread::sleep(Duration::from_millis(100));
            if read_lines(&self.dir.join("raw.log"))
                .iter()
                .any(|l| l.contains("probe"))
            {
                return;
            }
        }
        panic!(
            "rsyslogd did not receive UDP on {port} within {READY_TIMEOUT:?}: {}",
            self.diagnostics()
        );
    }

    /// Waits until `file` holds at least `n` non-probe lines; returns them.
    fn lines(&self, file: &str, n: usize) -> Vec<String> {
        self.lines_until(file, |lines| lines.len() >= n)
    }

    /// Waits (bounded) until the non-probe lines of `file` satisfy `done`; returns them.
    fn lines_until(&self, file: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let path = self.dir.join(file);
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        loop {
            let lines: Vec<String> = read_lines(&path)
                .into_iter()
                .filter(|l| !l.contains("probe"))
                .collect();
            if done(&lines) || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn context(dir: &Path) -> BuildContext {
    BuildContext {
        name: "central".into(),
        base_dir: dir.to_path_buf(),
        data_dir: dir.to_path_buf(),
    }
}

fn sink(dir: &Path, toml_src: &str) -> Arc<dyn Sink> {
    let table: toml::Table = toml::from_str(toml_src).expect("settings toml");
    syslog::build(table, &context(dir)).expect("valid syslog settings")
}

/// `n` events with distinct ids, varied severities, and non-ASCII text.
fn events(tag: &str, n: usize) -> Batch {
    let events = (0..n)
        .map(|i| {
            let sev = Severity::ALL[i % Severity::ALL.len()];
            let mut ev = Event::new("SECURITY", Some("user.login".into()), sev);
            ev.event_id = format!("evt_{tag}_{i:04}");
            ev.set_timestamp_ms(1_700_000_000_000 + i as i64);
            ev.message = Some(format!("login \"{tag}\" #{i} café 😀 [x] \\ end"));
            batch_event(i as u64, &ev)
        })
        .collect();
    Batch::new(events)
}

fn batch_event(seq: u64, ev: &Event) -> BatchEvent {
    let enc = ev.encode();
    BatchEvent::new(seq, enc.meta, Bytes::from(enc.into_body()))
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "-".into())
}

/// The RFC 5424 message `format = "json"` sends for `ev` (facility local0).
fn expected_json_line(ev: &BatchEvent) -> String {
    format!(
        "<{}>1 {} {} siem-relay - - - {}",
        16 * 8 + u16::from(ev.meta.severity.syslog_code()),
        format_rfc3339_millis(ev.meta.timestamp_ms),
        hostname(),
        std::str::from_utf8(ev.body()).expect("utf8 body")
    )
}

fn assert_delivered(d: Delivery) {
    assert_eq!(d, Delivery::Delivered);
}

fn assert_same_lines(got: &[String], batch: &Batch) {
    assert_eq!(got.len(), batch.len(), "line count; got {got:#?}");
    for (line, ev) in got.iter().zip(&batch.events) {
        assert_eq!(line, &expected_json_line(ev));
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_batch_arrives_whole_and_in_order() {
    let dir = tempdir();
    let port = free_port();
    let mut server = Rsyslog::start(
        dir.path(),
        &format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\")"),
    );
    server.wait_tcp(port);
    let sink = sink(
        dir.path(),
        &format!("address = \"127.0.0.1:{port}\"\nmode = \"tcp\""),
    );
    let batch = events("tcp", 200);
    assert_delivered(sink.send(&batch).await);
    sink.close().await;
    assert_same_lines(&server.lines("raw.log", batch.len()), &batch);
}

/// rsyslog receiving UDP (`imudp`) on a free port, and a `mode = "udp"`
/// syslog destination sending to it with `settings` added.
fn udp_to_rsyslog(dir: &Path, settings: &str) -> (Rsyslog, syslog::SyslogSink) {
    let port = free_port();
    let server = Rsyslog::start(
        dir,
        &format!("module(load=\"imudp\")\ninput(type=\"imudp\" port=\"{port}\")"),
    );
    server.wait_udp(port);
    let table: toml::Table = toml::from_str(&format!(
        "address = \"127.0.0.1:{port}\"\nmode = \"udp\"\n{settings}"
    ))
    .expect("toml");
    let sink = syslog::SyslogSink::new(table, &context(dir)).expect("valid settings");
    (server, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_one_datagram_per_event_and_long_ones_truncated() {
    let dir = tempdir();
    let (server, sink) = udp_to_rsyslog(dir.path(), "max_udp_bytes = 1024");
    let mut batch = events("udp", 20);
    // One event far over the limit, with 2-byte characters around the cut.
    let mut big = Event::new("SECURITY", Some("file.read".into()), Severity::Error);
    big.event_id = "evt_udp_big".into();
    big.message = Some("é".repeat(1500));
    batch.events.push(batch_event(20, &big));
    assert_delivered(sink.send(&batch).await);

    let got = server.lines("raw.log", batch.len());
    assert_eq!(got.len(), batch.len(), "one line per event: {got:#?}");
    let (last, first) = got.split_last().expect("lines");
    assert_same_lines(first, &Batch::new(batch.events[..20].to_vec()));
    let full = expected_json_line(&batch.events[20]);
    assert!(full.len() > 1024);
    assert!(last.len() <= 1024 && last.len() >= 1020, "{}", last.len());
    assert!(full.starts_with(last.as_str()), "truncated prefix");
    assert_eq!(sink.truncated_total(), 1, "truncation is counted");
}

/// `max_udp_rate`: the datagrams go out no faster than the rate (here one
/// per 10 ms, bursts of one), a batch that takes longer than `timeout` at
/// that rate is not cut off by it, and rsyslog gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_max_rate_paces_the_datagrams_past_the_timeout() {
    let dir = tempdir();
    let (server, sink) = udp_to_rsyslog(dir.path(), "max_udp_rate = 100\ntimeout = \"1s\"");
    let batch = events("paced", 150);
    let t0 = Instant::now();
    assert_delivered(sink.send(&batch).await);
    let took = t0.elapsed();
    // the first datagram at once, the 149 others 10 ms apart
    assert!(took >= Duration::from_millis(1490), "{took:?}");
    assert_same_lines(&server.lines("raw.log", batch.len()), &batch);
}

/// CA, server certificate for `localhost`, client certificate; PEM files in `dir`.
fn write_certs(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "siem-relay test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    for (name, san) in [("server", "localhost"), ("client", "relay-client")] {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![san.to_string()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, san);
        let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
        fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
        fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
    }
    fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca");
}

fn tls_inputs(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{d}/ca.pem\" \
         DefaultNetstreamDriverCertFile=\"{d}/server.pem\" DefaultNetstreamDriverKeyFile=\"{d}/server.key\")\n\
         module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
         StreamDriver.AuthMode=\"x509/certvalid\")\n\
         input(type=\"imtcp\" port=\"{port}\")"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate() {
    let dir = tempdir();
    write_certs(dir.path());
    let port = free_port();
    let mut server = Rsyslog::start(dir.path(), &tls_inputs(dir.path(), port));
    server.wait_tcp(port);
    // Relative paths resolve against the config folder (BuildContext::base_dir).
    let sink = sink(
        dir.path(),
        &format!(
            "address = \"127.0.0.1:{port}\"\nmode = \"tls\"\nserver_name = \"localhost\"\n\
             ca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\""
        ),
    );
    let batch = events("tls", 100);
    assert_delivered(sink.send(&batch).await);
    let more = events("tls2", 5);
    assert_delivered(sink.send(&more).await);
    sink.close().await;
    let got = server.lines("raw.log", batch.len() + more.len());
    let all = Batch::new(batch.events.iter().chain(&more.events).cloned().collect());
    assert_same_lines(&got, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_server_the_ca_did_not_sign() {
    let dir = tempdir();
    write_certs(dir.path());
    let other = tempdir();
    write_certs(other.path());
    let port = free_port();
    let mut server = Rsyslog::start(dir.path(), &tls_inputs(dir.path(), port));
    server.wait_tcp(port);
    let sink = sink(
        dir.path(),
        &format!(
            "address = \"localhost:{port}\"\nmode = \"tls\"\nca = \"{}/ca.pem\"\n\
             cert = \"client.pem\"\nkey = \"client.key\"",
            other.path().display()
        ),
    );
    // said in words, not in rustls's names (`UnknownIssuer`)
    match sink.send(&events("bad", 1)).await {
        Delivery::Retry { reason, .. } => {
            assert!(reason.contains("TLS handshake"), "{reason}");
            assert!(
                reason.contains("the server's certificate is not signed by")
                    && reason.contains("`ca`"),
                "{reason}"
            );
            assert!(!reason.contains("UnknownIssuer"), "{reason}");
        }
        d => panic!("expected Retry, got {d:?}"),
    }
    // `test-destination` names the target once
    let outcome = sink.test(&events("probe", 1)).await;
    assert!(!outcome.ok);
    let target = sink.target();
    assert_eq!(
        outcome.message.matches(&target).count(),
        1,
        "{}",
        outcome.message
    );
    // a client key that is not the certificate's: a config error in words
    let err = syslog::build(
        toml::from_str(&format!(
            "address = \"localhost:{port}\"\nmode = \"tls\"\nca = \"ca.pem\"\n\
             cert = \"client.pem\"\nkey = \"server.key\""
        ))
        .unwrap(),
        &context(dir.path()),
    )
    .err()
    .expect("a key that is not the certificate's");
    assert_eq!(err.path, "destinations.central.key");
    assert!(
        err.message
            .contains("does not belong to the certificate in `cert`"),
        "{err}"
    );
}

/// A server certificate made as `openssl req -x509` makes one, a CA
/// (`basicConstraints CA:TRUE`) for its own name, given as `ca`: webpki
/// refuses a CA as the server's own certificate, and the error says so in
/// words and how to make one it takes (it said
/// `Other(OtherError(CaUsedAsEndEntity))`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_a_self_signed_ca_as_the_servers_certificate_is_explained() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempdir();
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.self_signed(&key).expect("self-signed");
    fs::write(dir.path().join("server.pem"), cert.pem()).expect("write cert");
    fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("write key");
    let (port, _server) = tls_reader(dir.path()).await;
    let sink = sink(
        dir.path(),
        &format!("address = \"localhost:{port}\"\nmode = \"tls\"\nca = \"server.pem\""),
    );
    match sink.send(&events("ca", 1)).await {
        Delivery::Retry { reason, .. } => {
            assert!(
                reason.contains("the server's certificate is a CA certificate")
                    && reason.contains("basicConstraints=critical,CA:FALSE"),
                "{reason}"
            );
            assert!(!reason.contains("CaUsedAsEndEntity"), "{reason}");
        }
        d => panic!("expected Retry, got {d:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_format_rebuilds_the_original_fields() {
    let dir = tempdir();
    let port = free_port();
    let mut server = Rsyslog::start(
        dir.path(),
        &format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\")"),
    );
    server.wait_tcp(port);
    let sink = sink(
        dir.path(),
        &format!("address = \"127.0.0.1:{port}\"\nmode = \"tcp\"\nformat = \"syslog\""),
    );
    let mut ev = Event::new("SYSTEM", None, Severity::Critical);
    let mut sd = serde_json::Map::new();
    sd.insert(
        "origin@32473".into(),
        serde_json::json!({"ip": "10.0.0.9", "note": "a \"quoted\" [x] c:\\tmp"}),
    );
    ev.syslog = Some(SyslogFields {
        facility: Some(4),
        severity: Some(2),
        version: Some(1),
        hostname: Some("web-01.example.com".into()),
        app_name: Some("sshd".into()),
        procid: Some("4242".into()),
        msgid: Some("AUTHFAIL".into()),
        structured_data: sd,
    });
    ev.message = Some("Failed password for root from 10.0.0.9 port 22".into());
    let plain = Event::new("ADMIN", Some("config.change".into()), Severity::Notice);
    let batch = Batch::new(vec![batch_event(1, &ev), batch_event(2, &plain)]);
    assert_delivered(sink.send(&batch).await);

    let fields = server.lines("fields.log", 2);
    assert_eq!(fields.len(), 2, "{fields:#?}");
    assert_eq!(
        fields[0],
        "web-01.example.com|sshd|4242|AUTHFAIL|\
         [origin@32473 ip=\"10.0.0.9\" note=\"a \\\"quoted\\\" [x\\] c:\\\\tmp\"]|\
         Failed password for root from 10.0.0.9 port 22"
    );
    // An event that did not come from syslog carries its JSON as MSG.
    let body = std::str::from_utf8(batch.events[1].body()).expect("utf8");
    assert_eq!(fields[1], format!("{}|siem-relay|-|-|-|{body}", hostname()));
    let raw = server.lines("raw.log", 2);
    assert!(raw[0].starts_with("<34>1 "), "{}", raw[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart_without_losing_events() {
    reconnect_case(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reconnects_after_server_restart_without_losing_events() {
    reconnect_case(true).await;
}

/// Send, restart the server, send twice more: every event arrives.
async fn reconnect_case(tls: bool) {
    let dir = tempdir();
    let port = free_port();
    let (inputs, settings) = if tls {
        write_certs(dir.path());
        (
            tls_inputs(dir.path(), port),
            format!(
                "address = \"localhost:{port}\"\nmode = \"tls\"\nca = \"ca.pem\"\n\
                 cert = \"client.pem\"\nkey = \"client.key\"\ntimeout = \"5s\""
            ),
        )
    } else {
        (
            format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\")"),
            format!("address = \"127.0.0.1:{port}\"\nmode = \"tcp\"\ntimeout = \"5s\""),
        )
    };
    let mut server = Rsyslog::start(dir.path(), &inputs);
    server.wait_tcp(port);
    let sink = sink(dir.path(), &settings);
    let a = events("a", 10);
    assert_delivered(sink.send(&a).await);
    assert_eq!(server.lines("raw.log", a.len()).len(), a.len());

    server.restart();
    server.wait_tcp(port);

    let b = events("b", 10);
    match sink.send(&b).await {
        Delivery::Delivered => {}
        Delivery::Retry { .. } => assert_delivered(sink.send(&b).await),
        d => panic!("unexpected {d:?}"),
    }
    let c = events("c", 10);
    assert_delivered(sink.send(&c).await);
    sink.close().await;

    let expected: Vec<String> = [&a, &b, &c]
        .iter()
        .flat_map(|batch| batch.events.iter().map(expected_json_line))
        .collect();
    let last = expected.last().expect("events").clone();
    let got = server.lines_until("raw.log", |l| l.contains(&last));
    // At-least-once: a retried batch may appear twice, but nothing is lost
    // and the order of first appearance is the send order.
    let mut seen: Vec<&String> = Vec::new();
    for line in &got {
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    assert_eq!(seen, expected.iter().collect::<Vec<_>>());
}

/// The server certificate chain and key [`write_certs`] wrote in `dir`.
fn server_identity(
    dir: &Path,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let open = |name: &str| std::io::BufReader::new(fs::File::open(dir.join(name)).expect(name));
    let chain = rustls_pemfile::certs(&mut open("server.pem"))
        .collect::<Result<Vec<_>, _>>()
        .expect("server cert");
    let key = rustls_pemfile::private_key(&mut open("server.key"))
        .expect("read key")
        .expect("server key");
    (chain, key)
}

/// An in-process TLS server (rustls) that accepts one connection and reads
/// it to the end: `Ok(bytes)` after a clean `close_notify`, `Err` otherwise.
async fn tls_reader(dir: &Path) -> (u16, tokio::task::JoinHandle<std::io::Result<Vec<u8>>>) {
    use tokio::io::AsyncReadExt;
    let (chain, key) = server_identity(dir);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await?;
        Ok(got)
    });
    (port, task)
}

/// Splits `MSG-LEN SP SYSLOG-MSG` frames.
fn octet_counted_frames(mut data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|b| *b == b' ').expect("MSG-LEN SP");
        let len: usize = std::str::from_utf8(&data[..sp])
            .expect("ascii length")
            .parse()
            .expect("MSG-LEN");
        let msg = &data[sp + 1..sp + 1 + len];
        out.push(String::from_utf8(msg.to_vec()).expect("utf8 message"));
        data = &data[sp + 1 + len..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_frames_are_octet_counted_and_close_sends_close_notify() {
    let dir = tempdir();
    write_certs(dir.path());
    let (port, reader) = tls_reader(dir.path()).await;
    let sink = sink(
        dir.path(),
        &format!("address = \"localhost:{port}\"\nmode = \"tls\"\nca = \"ca.pem\""),
    );
    send_and_close(
        &*sink,
        events("frames", 30),
        reader,
        "clean close_notify, no truncation",
    )
    .await;
}

/// Sends `batch`, closes the sink, and checks that `server` read exactly
/// the batch's frames and ended without an error (`clean`: what it means).
async fn send_and_close(
    sink: &dyn Sink,
    batch: Batch,
    server: tokio::task::JoinHandle<std::io::Result<Vec<u8>>>,
    clean: &str,
) {
    assert_delivered(sink.send(&batch).await);
    sink.close().await;
    let data = tokio::time::timeout(OUTPUT_TIMEOUT, server)
        .await
        .expect("server finished in time")
        .expect("server task")
        .expect(clean);
    let expected: Vec<String> = batch.events.iter().map(expected_json_line).collect();
    assert_eq!(octet_counted_frames(&data), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_retry_then_delivers_once_up() {
    let dir = tempdir();
    let port = free_port();
    let sink = sink(
        dir.path(),
        &format!("address = \"127.0.0.1:{port}\"\nmode = \"tcp\"\ntimeout = \"2s\""),
    );
    let batch = events("late", 3);
    match sink.send(&batch).await {
        Delivery::Retry { reason, .. } => assert!(reason.contains("connect"), "{reason}"),
        d => panic!("expected Retry, got {d:?}"),
    }
    let mut server = Rsyslog::start(
        dir.path(),
        &format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\")"),
    );
    server.wait_tcp(port);
    assert_delivered(sink.send(&batch).await);
    assert_same_lines(&server.lines("raw.log", batch.len()), &batch);
}

/// A server that writes something first (a banner, anything) and reads
/// only later must still get the whole batch after the sink closes: a
/// socket closed with unread bytes sends RST instead of FIN, and an RST
/// makes the server's kernel discard what it holds unread. The sink reads
/// after its half-close until the server closes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reads_what_the_server_sent_so_the_server_keeps_the_batch() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempdir();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await?;
        tcp.write_all(b"welcome\n").await?;
        // the sink sends and closes meanwhile
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await?;
        Ok::<_, std::io::Error>(got)
    });
    let sink = sink(
        dir.path(),
        &format!("address = \"127.0.0.1:{port}\"\nmode = \"tcp\""),
    );
    send_and_close(
        &*sink,
        events("banner", 20_000),
        server,
        "a clean close (FIN), not a reset",
    )
    .await;
}

/// An in-process TLS 1.3 server (rustls, which sends session tickets after
/// the handshake, as OpenSSL's servers do) that accepts connections until
/// dropped and reads each to its end; `client_ca`: it wants a client
/// certificate signed by that CA. What it read, all connections together,
/// and how many it accepted.
struct TicketServer {
    port: u16,
    read: Arc<std::sync::Mutex<Vec<u8>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TicketServer {
    async fn start(dir: &Path, client_ca: bool) -> TicketServer {
        use tokio::io::AsyncReadExt;
        let open =
            |name: &str| std::io::BufReader::new(fs::File::open(dir.join(name)).expect(name));
        let (chain, key) = server_identity(dir);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("protocols");
        let builder = if client_ca {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut open("ca.pem")) {
                roots.add(c.expect("ca")).expect("add ca");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(chain, key).expect("server config");
        config.send_tls13_tickets = 2;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let read = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, a) = (read.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (acceptor, r) = (acceptor.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 1 << 16];
                    // slow enough that a large batch waits in the buffers
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
            }
        });
        TicketServer {
            port,
            read,
            accepted,
            task,
        }
    }

    /// Waits (up to [`OUTPUT_TIMEOUT`]) until it has read `n` frames.
    async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        while self.frames().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn frames(&self) -> Vec<String> {
        let data = self.read.lock().unwrap().clone();
        // a connection cut inside a frame leaves a partial frame at its end
        let mut frames = Vec::new();
        let mut rest: &[u8] = &data;
        while let Some(sp) = rest.iter().position(|b| *b == b' ') {
            let Some(len) = std::str::from_utf8(&rest[..sp])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                break;
            };
            let Some(msg) = rest.get(sp + 1..sp + 1 + len) else {
                break;
            };
            frames.push(String::from_utf8_lossy(msg).into_owned());
            rest = &rest[sp + 1 + len..];
        }
        frames
    }
}

impl Drop for TicketServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A [`TicketServer`] and a TLS destination without a client certificate
/// sending to it.
async fn ticket_server_and_sink(
    client_ca: bool,
) -> (tempfile::TempDir, TicketServer, Arc<dyn Sink>) {
    let dir = tempdir();
    write_certs(dir.path());
    let server = TicketServer::start(dir.path(), client_ca).await;
    let sink = sink(
        dir.path(),
        &format!(
            "address = \"localhost:{}\"\nmode = \"tls\"\nca = \"ca.pem\"",
            server.port
        ),
    );
    (dir, server, sink)
}

/// A TLS 1.3 server's session tickets, which arrive after the handshake,
/// do not make the next batch's check take the connection for closed: it
/// was dropped with the tickets unread, the kernel reset it, and the reset
/// discarded the unsent tail of the batch before, counted as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_session_tickets_keep_the_connection_and_lose_nothing() {
    let (_dir, server, sink) = ticket_server_and_sink(false).await;
    let mut expected = Vec::new();
    // back to back, as a destination with a backlog sends them, each large
    // enough to wait in the socket buffers for the slow reader
    for round in 0..8 {
        let batch = events(&format!("t{round}"), 2000);
        expected.extend(batch.events.iter().map(expected_json_line));
        assert_delivered(sink.send(&batch).await);
    }
    sink.close().await;
    server.wait_for(expected.len()).await;
    assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(server.frames(), expected);
}

/// A TLS 1.3 server that wants a client certificate the destination does
/// not have finishes the client's side of the handshake and then refuses
/// with an alert: the send is a failure that says so, not a batch counted
/// as delivered into a closing connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_server_refusing_the_client_certificate_fails_the_send() {
    let (dir, server, without) = ticket_server_and_sink(true).await;
    for _ in 0..2 {
        match without.send(&events("refused", 5)).await {
            Delivery::Retry { reason, .. } => {
                assert!(
                    reason.contains("ended the connection after the handshake"),
                    "{reason}"
                );
                assert!(reason.to_lowercase().contains("certificate"), "{reason}");
            }
            d => panic!("expected Retry, got {d:?}"),
        }
    }
    // with the certificate it is accepted and delivers
    let with = sink(
        dir.path(),
        &format!(
            "address = \"localhost:{}\"\nmode = \"tls\"\nca = \"ca.pem\"\n\
             cert = \"client.pem\"\nkey = \"client.key\"",
            server.port
        ),
    );
    let batch = events("accepted", 5);
    assert_delivered(with.send(&batch).await);
    with.close().await;
    let expected: Vec<String> = batch.events.iter().map(expected_json_line).collect();
    server.wait_for(expected.len()).await;
    assert_eq!(server.frames(), expected);
}
