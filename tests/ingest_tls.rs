//! `syslog_tls` with a rustls client: a client with a certificate from the
//! configured CA is served; under mTLS a client without a certificate, or
//! with one from another CA, is refused and nothing it sends arrives. The
//! relay's log says in words why a handshake failed.

mod ingest_support;

use ingest_support::{make_pki, start, Harness, Pki};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).expect("read cert");
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("pem certs")
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(path).expect("read key");
    rustls_pemfile::private_key(&mut pem.as_slice())
        .expect("pem key")
        .expect("a key")
}

fn client_config(pki: &Pki, identity: Option<&Pki>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in certs(&pki.path("ca.pem")) {
        roots.add(c).expect("root");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
    match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(certs(&id.path("client.pem")), key(&id.path("client.key")))
            .expect("client cert"),
    }
}

async fn tls_source(pki: &Pki) -> Harness {
    let settings = r#"
address = "127.0.0.1:0"
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
"#;
    start("tls", "syslog_tls", settings, pki.dir.path()).await
}

/// A `syslog_tls` source without `client_ca`, and a client's session with it.
async fn anonymous_session(pki: &Pki) -> (Harness, tokio_rustls::client::TlsStream<TcpStream>) {
    let settings = "address = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"server.key\"\n";
    let h = start("tls", "syslog_tls", settings, pki.dir.path()).await;
    let tcp = TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .expect("connect");
    let connector = TlsConnector::from(Arc::new(client_config(pki, None)));
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    (h, tls)
}

/// Connects, sends one octet-counted message, and reads until the server
/// closes or 2 s pass. Returns whether the handshake and write succeeded.
async fn send(h: &Harness, config: ClientConfig, text: &str) -> bool {
    let tcp = TcpStream::connect(("127.0.0.1", h.port()))
        .await
        .expect("connect");
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").expect("name");
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return false;
    };
    let msg = format!("<38>1 2026-01-01T00:00:00Z host app - - - {text}");
    let frame = format!("{} {msg}", msg.len());
    if tls.write_all(frame.as_bytes()).await.is_err() || tls.flush().await.is_err() {
        return false;
    }
    let _ = tls.shutdown().await;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut sink)).await;
    !matches!(read, Ok(Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepts_valid_client_and_refuses_others() {
    let pki = make_pki();
    let other = make_pki();
    let h = tls_source(&pki).await;

    assert!(send(&h, client_config(&pki, Some(&pki)), "with client cert").await);
    let evs = h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    assert_eq!(evs[0].message.as_deref(), Some("with client cert"));
    assert_eq!(evs[0].category, "AUTHENTICATION");
    assert_eq!(evs[0].source.as_ref().unwrap().listener, "tls");

    assert!(!send(&h, client_config(&pki, None), "no client cert").await);
    assert!(!send(&h, client_config(&pki, Some(&other)), "foreign client cert").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msgs: Vec<_> = h
        .collector
        .snapshot()
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert_eq!(msgs, ["with client cert"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_client_ca_needs_no_client_cert() {
    let pki = make_pki();
    let settings = "address = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"server.key\"\n";
    let h = start("tls", "syslog_tls", settings, pki.dir.path()).await;
    assert!(send(&h, client_config(&pki, None), "anonymous client").await);
    let evs = h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    assert_eq!(evs[0].message.as_deref(), Some("anonymous client"));
    h.stop().await;
}

/// The server sends nothing after the handshake (no TLS 1.3 session
/// tickets). A syslog sender writes and never reads; were tickets waiting
/// unread in its socket when it closes, its kernel would abort the
/// connection (RST instead of FIN) and discard what it has not yet
/// transmitted: the tail of the stream, which the sender counts as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_after_the_handshake_so_a_sender_that_never_reads_closes_cleanly() {
    let pki = make_pki();
    let (h, mut tls) = anonymous_session(&pki).await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let msg = "<38>1 2026-01-01T00:00:00Z host app - - - after the handshake";
    tls.write_all(format!("{} {msg}", msg.len()).as_bytes())
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    h.collector.wait_for_async(1, Duration::from_secs(5)).await;
    // whatever the server sent after its handshake messages is still in the socket, unread
    let mut buf = [0u8; 1024];
    let peeked =
        tokio::time::timeout(Duration::from_millis(500), tls.get_ref().0.peek(&mut buf)).await;
    assert!(
        peeked.is_err(),
        "the server sent {:?} bytes after the handshake",
        peeked.map(|r| r.map_err(|e| e.to_string()))
    );
    h.stop().await;
}

/// A sender that closes its TCP connection without TLS `close_notify`
/// (rustls reports that as an error after the data it authenticated) still
/// has its last line kept, LF or not, as on plain TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_lf_is_kept_when_the_peer_skips_close_notify() {
    let pki = make_pki();
    let (h, mut tls) = anonymous_session(&pki).await;
    tls.write_all(b"<13>1 - h app - - - terminated\n<13>1 - h app - - - unterminated")
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    // close the TCP connection under the TLS session: FIN, no close_notify
    let (mut tcp, _) = tls.into_inner();
    tcp.shutdown().await.expect("FIN");
    let evs = h.collector.wait_for_async(2, Duration::from_secs(5)).await;
    let msgs: Vec<_> = evs.iter().filter_map(|e| e.message.as_deref()).collect();
    assert_eq!(msgs, ["terminated", "unterminated"]);
    h.stop().await;
}

/// `validate` (and a SIGHUP reload, which validates first) loads the TLS
/// files as `run` does: a key that belongs to another certificate, or a
/// file with no PEM key in it, is an error at the key's path, not a
/// listener that fails only when the relay starts.
#[test]
fn validation_loads_the_tls_files_and_names_the_key_at_fault() {
    let pki = make_pki();
    let section = |key: &str| siem_relay::config::SectionConfig {
        section: "sources",
        name: "tls".into(),
        kind: "syslog_tls".into(),
        table: toml::from_str(&format!(
            "address = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"{key}\""
        ))
        .unwrap(),
    };
    let base = pki.dir.path();
    siem_relay::sources::validate_in(&section("server.key"), base).expect("matching pair");

    let e = siem_relay::sources::validate_in(&section("client.key"), base)
        .expect_err("the client's key does not belong to the server certificate");
    assert_eq!(e.path, "sources.tls.key", "{e}");
    assert!(
        e.message.contains("does not belong to the certificate"),
        "{e}"
    );

    let e = siem_relay::sources::validate_in(&section("ca.pem"), base)
        .expect_err("a certificate is not a key");
    assert_eq!(e.path, "sources.tls.key", "{e}");
    assert!(e.message.contains("no PEM private key"), "{e}");
}

/// `siem-relay run`, killed when the test ends.
struct RunningRelay {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl RunningRelay {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Waits until the log has a line with all of `parts`, and returns it.
    async fn line(&self, parts: &[&str], within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {parts:?} within {within:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl RunningRelay {
    /// Starts the relay at the default log level with one `syslog_tls`
    /// source using the PKI in `dir` (`extra`: more of its keys); its port.
    async fn start(dir: &Path, extra: &str) -> (RunningRelay, u16) {
        let cfg = dir.join("relay.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = \"data\"\n[buffer]\nmax_bytes = \"1MiB\"\nsegment_bytes = \"64KiB\"\n\n\
                 [sources.tls]\ntype = \"syslog_tls\"\naddress = \"127.0.0.1:0\"\n\
                 cert = \"server.pem\"\nkey = \"server.key\"\nmax_message_bytes = \"8KiB\"\n{extra}\n\
                 [destinations.out]\ntype = \"file\"\npath = \"out.ndjson\"\n"
            ),
        )
        .unwrap();
        let log = dir.join("stderr.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_siem-relay"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env_remove("SIEM_RELAY_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let relay = RunningRelay { child, log };
        let listening = relay
            .line(&["source listening", "source=tls"], Duration::from_secs(10))
            .await;
        let port: u16 = listening
            .split("address=127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {listening}"));
        (relay, port)
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay at the default log level, with clients that fail the TLS
/// handshake: plain TCP sent to the TLS port, and a client that does not
/// trust the server's CA. The first failure is a `warn` line naming the
/// peer and the reason; the others of the next 10 s are not logged one by
/// one but counted in one summary line, with the last one's peer and error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_warned_of_once_then_summarised() {
    let pki = make_pki();
    let stranger = make_pki();
    let (relay, port) = RunningRelay::start(pki.dir.path(), "").await;

    // plain TCP: a syslog line where the ClientHello belongs
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(b"<13>1 - h app - - - plain text\n")
            .await
            .unwrap();
        // the relay closes the connection once the handshake failed
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
    }
    let first = relay
        .line(&["TLS handshake failed"], Duration::from_secs(5))
        .await;
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("peer=127.0.0.1:"), "{first}");
    assert!(first.contains("tls_handshake"), "{first}");
    assert!(first.contains("does not speak TLS"), "{first}");

    // a client that does not trust the server's certificate
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_config(&stranger, None)));
    let name = ServerName::try_from("localhost").expect("name");
    assert!(connector.connect(name, tcp).await.is_err());

    let summary = relay
        .line(&["more times in the last"], Duration::from_secs(15))
        .await;
    assert!(summary.contains("WARN"), "{summary}");
    assert!(summary.contains("suppressed=3"), "{summary}");
    assert!(summary.contains("TLS handshake failed"), "{summary}");
    // the last of them was the client that refused the certificate (its
    // CA has the test CA's name: the signature does not verify)
    assert!(
        summary.contains(
            "client could not verify the relay's certificate or handshake (TLS alert: decrypt error)"
        ),
        "{summary}"
    );
    assert!(summary.contains("last_peer=127.0.0.1:"), "{summary}");
    let log = relay.log();
    assert_eq!(
        log.matches("TLS handshake failed").count(),
        2,
        "one line for the first, one summary for the others:\n{log}"
    );
}

/// A TLS 1.1 ClientHello (rustls speaks no TLS 1.1, so the test writes it):
/// version 3.2, two cipher suites of the time, no extensions (TLS 1.1 has
/// no `signature_algorithms` nor `supported_versions`).
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend_from_slice(&[0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0xc0, 0x09]); // cipher suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

/// An X.509 v1 client certificate for `client.key`, signed by the PKI's CA
/// (`openssl x509 -req` without extensions writes v1).
fn v1_client_cert(pki: &Pki) -> Vec<CertificateDer<'static>> {
    ingest_support::require_program("openssl", "openssl");
    let at = |f: &str| pki.path(f).to_str().unwrap().to_string();
    let csr = at("old.csr");
    ingest_support::run(std::process::Command::new("openssl").args([
        "req",
        "-new",
        "-key",
        &at("client.key"),
        "-subj",
        "/CN=old-client",
        "-out",
        &csr,
    ]));
    ingest_support::run(std::process::Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &at("ca.pem"),
        "-CAkey",
        &at("ca.key"),
        "-days",
        "1",
        "-out",
        &at("old.pem"),
    ]));
    let text = ingest_support::run(std::process::Command::new("openssl").args([
        "x509",
        "-noout",
        "-text",
        "-in",
        &at("old.pem"),
    ]));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "openssl made no v1 certificate"
    );
    certs(&pki.path("old.pem"))
}

/// A client configuration presenting `chain` as is (rustls's own
/// `with_client_auth_cert` refuses to parse a v1 certificate).
fn client_config_presenting(pki: &Pki, chain: Vec<CertificateDer<'static>>) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signer = provider
        .key_provider
        .load_private_key(key(&pki.path("client.key")))
        .expect("client key");
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    let mut roots = RootCertStore::empty();
    for c in certs(&pki.path("ca.pem")) {
        roots.add(c).expect("root");
    }
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
}

/// A failed handshake is logged in words, not in rustls's names for its
/// errors: a TLS 1.1 client, and under `client_ca` an X.509 v1 client
/// certificate (the first logged at once, the second in the summary that
/// follows within 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_logged_in_words() {
    let pki = make_pki();
    let v1 = v1_client_cert(&pki);
    let (relay, port) = RunningRelay::start(pki.dir.path(), "client_ca = \"ca.pem\"").await;

    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert_eq!(answer.first(), Some(&0x15), "a TLS alert: {answer:?}");
    let first = relay
        .line(&["TLS handshake failed"], Duration::from_secs(5))
        .await;
    assert!(
        first
            .contains("client offered no TLS version this relay accepts (TLS 1.2 or 1.3 required)"),
        "{first}"
    );
    assert!(
        !first.contains("SignatureAlgorithmsExtensionRequired"),
        "{first}"
    );

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_config_presenting(&pki, v1)));
    let name = ServerName::try_from("localhost").expect("name");
    // TLS 1.3: the server's verdict on the client's certificate comes after
    // the client's handshake is done, with its first read
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        let _ = tls.write_all(b"<13>1 - h app - - - refused\n").await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut sink)).await;
    }
    let summary = relay
        .line(&["more times in the last"], Duration::from_secs(15))
        .await;
    assert!(
        summary.contains("client certificate rejected: an X.509 v1 certificate (v3 required)"),
        "{summary}"
    );
    assert!(!summary.contains("OtherError"), "{summary}");
}

/// rustls warns of a client's oddities once per connection, unlimited (an
/// IP address sent as the SNI name, which the handshake then ignores): at
/// the default log level those lines are not written, and the client is
/// served. Three `openssl s_client -servername 127.0.0.1` sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_address_as_sni_is_served_and_not_warned_of_per_connection() {
    use std::io::Write as _;
    let pki = make_pki();
    let (relay, port) = RunningRelay::start(pki.dir.path(), "").await;
    for i in 0..3 {
        let mut client = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "127.0.0.1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let line = format!("<13>1 - h app - - - sni as ip {i}\n");
        client
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        // stdin closed: s_client ends the session
        let status = tokio::task::spawn_blocking(move || client.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "s_client {status:?}");
    }
    let out = pki.dir.path().join("out.ndjson");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out)
        .unwrap_or_default()
        .matches("sni as ip")
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not all 3 lines delivered:\n{}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = relay.log();
    assert!(!log.contains("SNI"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
}
