//! Shared helpers of the ingest integration tests: an in-memory `Ingest`
//! collector, starting a source from TOML, waiting for events, making sure
//! external programs are installed, and test certificates.
#![allow(dead_code)]

use futures::future::BoxFuture;
use siem_relay::config::SectionConfig;
use siem_relay::event::{EncodedEvent, Event};
use siem_relay::sources::{self, Appended, Ingest, IngestError, RunningSource, SourceContext};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keeps every appended event; can be switched to answer `Full`, or to
/// fail as a buffer with a disk error does.
#[derive(Default)]
pub struct Collector {
    pub events: Mutex<Vec<Event>>,
    pub full: AtomicBool,
    pub failing: AtomicBool,
    pub append_calls: AtomicUsize,
}

impl Collector {
    fn take(&self, events: &[EncodedEvent]) -> Result<(), IngestError> {
        self.append_calls.fetch_add(1, Ordering::SeqCst);
        if self.full.load(Ordering::SeqCst) {
            return Err(IngestError::Full(Duration::from_secs(7)));
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(IngestError::Failed("disk I/O error".into()));
        }
        let decoded: Vec<Event> = events
            .iter()
            .map(|e| Event::decode(e.body()).expect("record body is a canonical event"))
            .collect();
        self.events.lock().unwrap().extend(decoded);
        Ok(())
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until at least `n` events arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let evs = self.snapshot();
            if evs.len() >= n {
                return evs;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} events, got {}: {evs:#?}",
                evs.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Async flavour of [`Collector::wait_for`].
    pub async fn wait_for_async(&self, n: usize, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let evs = self.snapshot();
            if evs.len() >= n {
                return evs;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} events, got {}: {evs:#?}",
                evs.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Ingest for Collector {
    fn try_append(&self, events: &[EncodedEvent]) -> Result<(), IngestError> {
        self.take(events)
    }

    fn append(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let r = self.take(&events);
            (events, r)
        })
    }
}

/// A running source with its collector and shutdown switch.
pub struct Harness {
    pub source: RunningSource,
    pub collector: Arc<Collector>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl Harness {
    pub fn port(&self) -> u16 {
        self.source.local_addr.port()
    }

    pub async fn stop(self) {
        self.shutdown.send(true).expect("source still listening");
        tokio::time::timeout(Duration::from_secs(10), self.source.task)
            .await
            .expect("source stops after shutdown")
            .expect("source task did not panic");
    }
}

/// Starts source `name` of `kind` with the settings in `toml` (no `type` key).
pub async fn start(name: &str, kind: &str, toml_text: &str, base_dir: &Path) -> Harness {
    let table: toml::Table = toml::from_str(toml_text).expect("test settings are TOML");
    let section = SectionConfig {
        section: "sources",
        name: name.into(),
        kind: kind.into(),
        table,
    };
    sources::validate_in(&section, base_dir).expect("settings are valid");
    let collector = Arc::new(Collector::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let ctx = SourceContext {
        ingest: collector.clone(),
        shutdown: rx,
        timezone: chrono_tz::Tz::UTC,
        base_dir: base_dir.to_path_buf(),
    };
    let source = sources::start(&section, ctx).await.expect("source starts");
    Harness {
        source,
        collector,
        shutdown: tx,
    }
}

/// Makes sure `program` exists, installing Debian `package` if needed; panics
/// (never skips) when it cannot.
pub fn require_program(program: &str, package: &str) {
    if which(program).is_some() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", package])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()) && which(program).is_some(),
        "`{program}` is required: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

/// Makes sure `file` exists, installing Debian `package` if needed; panics
/// (never skips) when it cannot.
pub fn require_file(file: &Path, package: &str) {
    if file.exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", package])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()) && file.exists(),
        "{} is required: install the Debian package `{package}` (apt-get install -y {package})",
        file.display()
    );
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Runs a command and panics with its output when it fails.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// PEM files of a test PKI: a CA (and its key), a server certificate for
/// localhost and 127.0.0.1, and a client certificate, all signed by the CA.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

pub fn make_pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "siem-relay test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let leaf = |cn: &str, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![purpose];
        let cert = p.signed_by(&key, &ca, &ca_key).expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf("client", ExtendedKeyUsagePurpose::ClientAuth);
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write pem");
    write("ca.pem", &ca.pem());
    write("ca.key", &ca_key.serialize_pem());
    write("server.pem", &server);
    write("server.key", &server_key);
    write("client.pem", &client);
    write("client.key", &client_key);
    Pki { dir }
}
