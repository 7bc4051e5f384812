//! `syslog_tls`: syslog over TLS (RFC 5425, default port 6514) with rustls
//! and the *ring* crypto provider, TLS 1.2 and 1.3 only, and optional client
//! certificate authentication (`client_ca`, mTLS). After the handshake the
//! connection is handled exactly like `syslog_tcp` ([`super::stream`]).

use super::tcp::{self, start_stream};
use super::{SourceContext, SourceError};
use crate::config::{peel, table_into, ConfigError, SectionConfig};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// `[sources.NAME]` with `type = "syslog_tls"`: the `syslog_tcp` keys
/// (address default `0.0.0.0:6514`) plus the TLS files.
#[derive(Debug, Clone)]
pub struct Settings {
    pub stream: tcp::Settings,
    pub files: TlsFiles,
}

/// The TLS keys of a `syslog_tls` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle (PEM); when set, clients must present a certificate it signed.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

const TLS_KEYS: [&str; 3] = ["cert", "key", "client_ca"];
const DEFAULT_ADDRESS: &str = "0.0.0.0:6514";

impl Settings {
    pub fn from_section(section: &SectionConfig) -> Result<Self, ConfigError> {
        let mut table = section.table.clone();
        let files = table_into(&peel(&mut table, &TLS_KEYS), &section.path())?;
        table
            .entry("address")
            .or_insert_with(|| toml::Value::String(DEFAULT_ADDRESS.into()));
        let stream = tcp::Settings::from_table(&table, section)?;
        Ok(Settings { stream, files })
    }

    /// Checks that the certificate, key and CA files exist (each missing
    /// one is an error) and make a working server configuration (a key that
    /// does not belong to the certificate, a file with no PEM in it), so
    /// that `validate` and a reload refuse what `run` would.
    pub fn check_files(
        &self,
        section: &SectionConfig,
        base_dir: &Path,
    ) -> Result<(), Vec<ConfigError>> {
        let files = [
            ("cert", Some(&self.files.cert)),
            ("key", Some(&self.files.key)),
            ("client_ca", self.files.client_ca.as_ref()),
        ];
        let missing: Vec<ConfigError> = files
            .into_iter()
            .filter_map(|(key, path)| {
                let full = base_dir.join(path?);
                (!full.is_file()).then(|| {
                    ConfigError::new(
                        format!("{}.{key}", section.path()),
                        format!("file {} does not exist", full.display()),
                    )
                })
            })
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        server_config_keyed(self, base_dir).map(drop).map_err(|e| {
            vec![ConfigError::new(
                format!("{}.{}", section.path(), e.key),
                e.message,
            )]
        })
    }
}

/// Starts a `syslog_tls` source.
pub async fn start(
    name: &str,
    settings: Settings,
    ctx: SourceContext,
) -> Result<(SocketAddr, JoinHandle<()>), SourceError> {
    let config = server_config(&settings, &ctx.base_dir).map_err(|message| SourceError::Tls {
        name: name.to_string(),
        message,
    })?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    start_stream(
        name,
        &settings.stream.address,
        &settings.stream.stream(),
        Some(acceptor),
        ctx,
    )
    .await
}

/// The rustls server configuration: ring provider, TLS 1.2+, optional mTLS.
pub fn server_config(settings: &Settings, base_dir: &Path) -> Result<ServerConfig, String> {
    server_config_keyed(settings, base_dir).map_err(|e| format!("{}: {}", e.key, e.message))
}

/// Why the TLS files make no server configuration, and which key names the file at fault.
struct TlsFileError {
    key: &'static str,
    message: String,
}

fn server_config_keyed(settings: &Settings, base_dir: &Path) -> Result<ServerConfig, TlsFileError> {
    let at = |key: &'static str| move |message: String| TlsFileError { key, message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&base_dir.join(&settings.files.cert)).map_err(at("cert"))?;
    let key = load_key(&base_dir.join(&settings.files.key)).map_err(at("key"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| at("cert")(e.to_string()))?;
    let builder = match &settings.files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(&base_dir.join(ca)).map_err(at("client_ca"))? {
                roots
                    .add(cert)
                    .map_err(|e| at("client_ca")(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| at("client_ca")(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            at("key")("the private key does not belong to the certificate".into())
        }
        e => at("key")(format!("certificate/key: {e}")),
    })?;
    // No TLS 1.3 session tickets (rustls sends two after each handshake by
    // default). A syslog sender writes and never reads: tickets it never
    // read are still in its socket when it closes, so its kernel aborts the
    // connection (RST instead of FIN) and discards what it has not yet
    // transmitted: up to a send buffer of events the sender has written and
    // counts as sent. Resumption buys nothing on connections that last for
    // hours.
    config.send_tls13_tickets = 0;
    Ok(config)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut std::io::BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no PEM private key found", path.display()))
}
