//! A reload picks up TLS files renewed at the same paths (an ACME renewal):
//! a `syslog_tls` source serves the new certificate to new connections
//! while one opened before goes on; a key that does not belong to the
//! certificate refuses the reload and the running certificate stays; a
//! `syslog` destination whose client certificate was renewed is restarted
//! and presents the new one.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use siem_relay::app::{load_config, AppError, Relay};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const T: Duration = Duration::from_secs(10);

/// A CA, and the leaf certificates it signs.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).expect("CA");
        Ca { cert, key }
    }

    /// Writes a leaf certificate with `serial` (for localhost) and a new
    /// key to `dir/{name}.pem` and `dir/{name}.key`; returns its DER.
    fn issue(
        &self,
        dir: &Path,
        name: &str,
        serial: u64,
        purpose: ExtendedKeyUsagePurpose,
    ) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![purpose];
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("leaf");
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
        cert.der().to_vec()
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("root");
        roots
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config(dir: &Path, extra: &str) -> String {
    format!(
        r#"data_dir = "{d}/data"

[buffer]
max_bytes = "4MiB"
segment_bytes = "1MiB"
fsync = "never"

[destinations.archive]
type = "file"
path = "{d}/out/events.ndjson"
batch_timeout = "20ms"
{extra}"#,
        d = dir.display()
    )
}

/// A TLS session with the source; the certificate it was served.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &Ca,
) -> (tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>) {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let served = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    (tls, served)
}

/// Waits until the file destination wrote `text`.
async fn archived(dir: &Path, text: &str) {
    let deadline = Instant::now() + T;
    loop {
        let out = std::fs::read_to_string(dir.join("out/events.ndjson")).unwrap_or_default();
        if out.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "{text} not delivered: {out}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send_frame(tls: &mut tokio_rustls::client::TlsStream<TcpStream>, text: &str) {
    let msg = format!("<38>1 2026-01-01T00:00:00Z host app - - - {text}");
    tls.write_all(format!("{} {msg}", msg.len()).as_bytes())
        .await
        .expect("write");
    tls.flush().await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_a_certificate_renewed_at_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.issue(dir.path(), "server", 1, ExtendedKeyUsagePurpose::ServerAuth);
    let file = dir.path().join("relay.toml");
    let source = "\n[sources.tls]\ntype = \"syslog_tls\"\naddress = \"127.0.0.1:0\"\n\
                  cert = \"server.pem\"\nkey = \"server.key\"\n";
    std::fs::write(&file, config(dir.path(), source)).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let addr = relay.source_addresses().await["tls"];
    let (mut before, served) = connect(addr, &ca).await;
    assert!(served == first, "the certificate of the start");

    // renewed in place, as certbot does: new serial, new key, same paths
    let renewed = ca.issue(dir.path(), "server", 2, ExtendedKeyUsagePurpose::ServerAuth);
    relay.reload().await.expect("reload");
    let (mut after, served) = connect(addr, &ca).await;
    assert!(
        served == renewed,
        "a new connection gets the renewed certificate (got the first: {})",
        served == first
    );
    assert_eq!(
        relay.source_addresses().await["tls"],
        addr,
        "the same listener"
    );

    // the connection opened before the reload goes on
    send_frame(&mut before, "sent after the renewal on the old session").await;
    send_frame(&mut after, "sent on the new session").await;
    archived(dir.path(), "sent after the renewal on the old session").await;
    archived(dir.path(), "sent on the new session").await;

    // a key that does not belong to the certificate: the reload is refused
    // as `validate` refuses it, and the renewed certificate stays in use
    std::fs::write(
        dir.path().join("server.key"),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    match relay.reload().await {
        Err(AppError::Config(e)) => {
            assert!(e.to_string().contains("sources.tls.key"), "{e}")
        }
        other => panic!("reload not refused: {:?}", other.map_err(|e| e.to_string())),
    }
    let (_, served) = connect(addr, &ca).await;
    assert!(served == renewed, "the renewed certificate stays in use");

    drop((before, after));
    relay.shutdown().await.unwrap();
}

/// The DER of each client certificate a test server was presented, in order.
type Presented = Arc<Mutex<Vec<Vec<u8>>>>;

/// A TLS server requiring a client certificate from `ca`: the DER of each
/// client certificate presented, in order, and every line received.
fn mtls_server(listener: TcpListener, dir: &Path, ca: &Ca) -> (Presented, Arc<Mutex<String>>) {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
        .build()
        .expect("verifier");
    let chain: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut std::fs::read(dir.join("server.pem")).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        rustls_pemfile::private_key(&mut std::fs::read(dir.join("server.key")).unwrap().as_slice())
            .unwrap()
            .unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (presented, received) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(String::new())),
    );
    let (p, r) = (presented.clone(), received.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, p, r) = (acceptor.clone(), p.clone(), r.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                p.lock().unwrap().push(cert);
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    r.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
    });
    (presented, received)
}

async fn wait_for(received: &Mutex<String>, text: &str) {
    let deadline = Instant::now() + T;
    while !received.lock().unwrap().contains(text) {
        assert!(Instant::now() < deadline, "{text} not received");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_restarts_a_syslog_destination_whose_client_certificate_was_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    ca.issue(dir.path(), "server", 1, ExtendedKeyUsagePurpose::ServerAuth);
    let first = ca.issue(
        dir.path(),
        "client",
        10,
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (presented, received) = mtls_server(listener, dir.path(), &ca);
    let extra = format!(
        "\n[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\n\n\
         [destinations.central]\ntype = \"syslog\"\naddress = \"localhost:{port}\"\n\
         mode = \"tls\"\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\n"
    );
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, config(dir.path(), &extra)).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];
    let send = |text: &str| {
        let mut s = std::net::TcpStream::connect(source).unwrap();
        std::io::Write::write_all(&mut s, format!("<38>1 - h a - - - {text}\n").as_bytes())
            .unwrap();
    };
    send("before the renewal");
    wait_for(&received, "before the renewal").await;
    assert!(presented.lock().unwrap().as_slice() == [first.clone()]);

    // an unchanged reload keeps the destination (and its connection)
    relay.reload().await.expect("reload");
    let renewed = ca.issue(
        dir.path(),
        "client",
        11,
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    relay.reload().await.expect("reload");
    send("after the renewal");
    wait_for(&received, "after the renewal").await;
    let presented = presented.lock().unwrap().clone();
    assert!(
        presented == [first.clone(), renewed],
        "one connection before the renewal, one with the renewed certificate after; \
         got {} connection(s), the first certificate each time: {}",
        presented.len(),
        presented.iter().all(|c| *c == first)
    );
    relay.shutdown().await.unwrap();
}
