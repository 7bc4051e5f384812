//! `syslog_tls`: syslog over TLS (RFC 5425, default port 6514) with rustls
//! and the *ring* crypto provider, TLS 1.2 and 1.3 only, and optional client
//! certificate authentication (`client_ca`, mTLS). After the handshake the
//! connection is handled exactly like `syslog_tcp` ([`super::stream`]).
//! A failed handshake is logged in words ([`handshake_failure`]), not under
//! rustls's names for its errors.
//!
//! The server configuration is a [`LiveTls`]: each connection's handshake
//! takes the one current when it is accepted, and a reload whose TLS files
//! changed at the same paths (a renewed certificate) puts in one made from
//! the new files, so new connections get the new certificate while those
//! open keep theirs.

use super::tcp::{self, start_stream};
use super::{SourceContext, SourceError};
use crate::config::{peel, table_into, ConfigError, SectionConfig};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, CertificateError, PeerIncompatible, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
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

/// A started `syslog_tls` source: where it listens, its task, and its
/// server configuration (for a reload to renew).
pub struct Started {
    pub local_addr: SocketAddr,
    pub task: JoinHandle<()>,
    pub tls: Arc<LiveTls>,
}

/// Starts a `syslog_tls` source.
pub async fn start(
    name: &str,
    settings: Settings,
    ctx: SourceContext,
) -> Result<Started, SourceError> {
    let tls = LiveTls::load(name, &settings, &ctx.base_dir).map_err(|e| SourceError::Tls {
        name: name.to_string(),
        message: format!("{}: {}", e.key, e.message),
    })?;
    let tls = Arc::new(tls);
    let (local_addr, task) = start_stream(
        name,
        &settings.stream.address,
        &settings.stream.stream(),
        Some(tls.clone()),
        ctx,
    )
    .await?;
    Ok(Started {
        local_addr,
        task,
        tls,
    })
}

/// A running source's server configuration, and the contents of the
/// files it was made from: [`renewed`](Self::renewed) reads them again.
pub struct LiveTls {
    /// `sources.NAME`, for errors.
    path: String,
    /// The files, resolved.
    files: TlsFiles,
    current: RwLock<(TlsFileContents, Arc<ServerConfig>)>,
}

impl std::fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTls")
            .field("files", &self.files)
            .finish()
    }
}

/// A server configuration made from files whose contents changed, for
/// [`LiveTls::renew`].
pub struct Renewed(TlsFileContents, Arc<ServerConfig>);

impl LiveTls {
    fn load(name: &str, settings: &Settings, base_dir: &Path) -> Result<LiveTls, TlsFileError> {
        let files = TlsFiles {
            cert: base_dir.join(&settings.files.cert),
            key: base_dir.join(&settings.files.key),
            client_ca: settings
                .files
                .client_ca
                .as_ref()
                .map(|ca| base_dir.join(ca)),
        };
        let contents = TlsFileContents::read(&files)?;
        let config = server_config_from(&contents, &files)?;
        Ok(LiveTls {
            path: format!("sources.{}", crate::config::quote_key(name)),
            files,
            current: RwLock::new((contents, Arc::new(config))),
        })
    }

    /// What a new connection's handshake uses.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().expect("not poisoned").1.clone())
    }

    /// Reads the files again: `None` when their contents are those in use,
    /// else the server configuration they make now. A file that no longer
    /// makes one (gone, no PEM in it, a key not the certificate's) is an
    /// error at its key, as `validate` reports it.
    pub fn renewed(&self) -> Result<Option<Renewed>, ConfigError> {
        let at = |e: TlsFileError| ConfigError::new(format!("{}.{}", self.path, e.key), e.message);
        let contents = TlsFileContents::read(&self.files).map_err(at)?;
        if contents == self.current.read().expect("not poisoned").0 {
            return Ok(None);
        }
        let config = server_config_from(&contents, &self.files).map_err(at)?;
        Ok(Some(Renewed(contents, Arc::new(config))))
    }

    /// Puts `renewed` in use for the connections accepted from now on.
    pub fn renew(&self, renewed: Renewed) {
        *self.current.write().expect("not poisoned") = (renewed.0, renewed.1);
    }
}

/// The bytes of the TLS files, as read once: the configuration is made
/// from these, and a reload compares them with the files' bytes then.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsFileContents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsFileContents {
    /// Reads the (resolved) files.
    fn read(files: &TlsFiles) -> Result<TlsFileContents, TlsFileError> {
        let read = |key: &'static str, path: &Path| {
            std::fs::read(path).map_err(|e| TlsFileError {
                key,
                message: format!("{}: {e}", path.display()),
            })
        };
        Ok(TlsFileContents {
            cert: read("cert", &files.cert)?,
            key: read("key", &files.key)?,
            client_ca: files
                .client_ca
                .as_deref()
                .map(|ca| read("client_ca", ca))
                .transpose()?,
        })
    }
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
    LiveTls::load("", settings, base_dir).map(|live| {
        let (_, config) = live.current.into_inner().expect("not poisoned");
        Arc::unwrap_or_clone(config)
    })
}

/// The configuration `contents` make (`files` are their paths, for errors).
fn server_config_from(
    contents: &TlsFileContents,
    files: &TlsFiles,
) -> Result<ServerConfig, TlsFileError> {
    let at = |key: &'static str| move |message: String| TlsFileError { key, message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&contents.cert, &files.cert).map_err(at("cert"))?;
    let key = load_key(&contents.key, &files.key).map_err(at("key"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| at("cert")(e.to_string()))?;
    let builder = match &contents.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let path = files.client_ca.as_deref().unwrap_or(Path::new(""));
            for cert in load_certs(ca, path).map_err(at("client_ca"))? {
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

/// The certificates in PEM `text` (read from `path`).
fn load_certs(mut text: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// The private key in PEM `text` (read from `path`).
fn load_key(mut text: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no PEM private key found", path.display()))
}

/// Why a client's TLS handshake failed, in words an operator reads: rustls
/// names most of its errors after its own enum variants (a TLS 1.1 client
/// is `peer is incompatible: SignatureAlgorithmsExtensionRequired`, as only
/// TLS 1.2 added that extension; an X.509 v1 client certificate is
/// `invalid peer certificate: Other(OtherError(UnsupportedCertVersion))`).
/// What has no text of its own here is rustls's text.
pub(crate) fn handshake_failure(e: &std::io::Error) -> String {
    use rustls::{Error, InvalidMessage};
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return "the client closed the connection during the handshake".into();
    }
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return e.to_string();
    };
    match tls {
        Error::InvalidMessage(InvalidMessage::InvalidContentType) => {
            "the client does not speak TLS (plain syslog sent to the TLS port?)".into()
        }
        // a record or handshake message that does not parse: rustls says
        // it in its type names (`MessageTooLarge`, `MissingData("Random")`)
        Error::InvalidMessage(why) => format!(
            "client sent a malformed TLS message ({}): not TLS, or a broken client",
            words(why)
        ),
        Error::PeerIncompatible(
            PeerIncompatible::SignatureAlgorithmsExtensionRequired
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled,
        ) => "client offered no TLS version this relay accepts (TLS 1.2 or 1.3 required)".into(),
        Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon) => {
            "client offered no cipher suite this relay accepts".into()
        }
        Error::PeerIncompatible(why) => format!("client is incompatible: {}", words(why)),
        Error::PeerMisbehaved(why) => format!("client broke the TLS protocol: {}", words(why)),
        Error::NoCertificatesPresented => {
            "client sent no certificate (client_ca requires one)".into()
        }
        Error::InvalidCertificate(why) => {
            format!("client certificate rejected: {}", certificate_problem(why))
        }
        Error::AlertReceived(alert) => alert_text(*alert),
        other => other.to_string(),
    }
}

/// What is wrong with a client certificate rustls refused.
fn certificate_problem(e: &CertificateError) -> String {
    let text = match e {
        CertificateError::UnknownIssuer => "not signed by a CA in client_ca",
        CertificateError::BadSignature => "its signature does not verify",
        CertificateError::BadEncoding => "not a well-formed certificate",
        CertificateError::Expired => "expired",
        CertificateError::NotValidYet => "not valid yet",
        CertificateError::Revoked => "revoked",
        CertificateError::InvalidPurpose => {
            "not issued for client authentication (extended key usage)"
        }
        CertificateError::UnhandledCriticalExtension => {
            "it has a critical extension this relay does not know"
        }
        CertificateError::Other(other) => return webpki_problem(&*other.0),
        // the variants with context have readable texts of their own
        other => return other.to_string(),
    };
    text.into()
}

/// What webpki found wrong with a certificate (rustls passes these on as
/// `CertificateError::Other`).
fn webpki_problem(e: &(dyn std::error::Error + 'static)) -> String {
    let text = match e.downcast_ref::<webpki::Error>() {
        Some(webpki::Error::UnsupportedCertVersion) => "an X.509 v1 certificate (v3 required)",
        Some(webpki::Error::CaUsedAsEndEntity) => "a CA's certificate, not a client's own",
        Some(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            "not issued for client authentication (extended key usage)"
        }
        _ => return words(&e),
    };
    text.into()
}

/// A TLS alert the client ended the handshake with: most often it refused
/// the relay's certificate (or could not verify its signature).
fn alert_text(alert: AlertDescription) -> String {
    use AlertDescription as A;
    match alert {
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA => format!(
            "client refused the relay's certificate (TLS alert: {})",
            words(&alert)
        ),
        // a signature that does not verify: most often in the relay's
        // chain, against a CA of the same name in the client's roots
        A::DecryptError => {
            "client could not verify the relay's certificate or handshake (TLS alert: decrypt error)"
                .into()
        }
        other => format!("client ended the handshake (TLS alert: {})", words(&other)),
    }
}

/// A Rust name as words (`UnknownCA` → `unknown CA`, `NoKxGroupsInCommon`
/// → `no kx groups in common`): its first token, split where the case
/// changes, acronyms kept.
fn words(name: &dyn std::fmt::Debug) -> String {
    let debug = format!("{name:?}");
    let name: Vec<char> = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut out = String::new();
    let mut word = String::new();
    for (i, &c) in name.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| name[p]);
        let next = name.get(i + 1);
        let starts_word = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                !p.is_ascii_uppercase() || next.is_some_and(char::is_ascii_lowercase)
            });
        if starts_word {
            push_word(&mut out, &word);
            word.clear();
        }
        word.push(c);
    }
    push_word(&mut out, &word);
    out
}

/// Appends `word` to `out`, lower-cased unless it is an acronym.
fn push_word(out: &mut String, word: &str) {
    if word.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    if word.len() > 1 && word.chars().all(|c| !c.is_ascii_lowercase()) {
        out.push_str(word);
    } else {
        out.push_str(&word.to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{Error, OtherError};
    use std::io;

    /// As tokio-rustls hands a rustls error over.
    fn io_error(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn handshake_failures_are_told_in_words() {
        let cases = [
            (
                Error::PeerIncompatible(PeerIncompatible::SignatureAlgorithmsExtensionRequired),
                "client offered no TLS version this relay accepts (TLS 1.2 or 1.3 required)",
            ),
            (
                Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
                "client offered no TLS version this relay accepts (TLS 1.2 or 1.3 required)",
            ),
            (
                Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon),
                "client is incompatible: no kx groups in common",
            ),
            (
                Error::InvalidCertificate(CertificateError::Other(OtherError(
                    std::sync::Arc::new(webpki::Error::UnsupportedCertVersion),
                ))),
                "client certificate rejected: an X.509 v1 certificate (v3 required)",
            ),
            (
                Error::InvalidCertificate(CertificateError::Other(OtherError(
                    std::sync::Arc::new(webpki::Error::UnsupportedCriticalExtension),
                ))),
                "client certificate rejected: unsupported critical extension",
            ),
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "client certificate rejected: not signed by a CA in client_ca",
            ),
            (
                Error::NoCertificatesPresented,
                "client sent no certificate (client_ca requires one)",
            ),
            (
                Error::AlertReceived(AlertDescription::UnknownCA),
                "client refused the relay's certificate (TLS alert: unknown CA)",
            ),
            (
                Error::AlertReceived(AlertDescription::DecryptError),
                "client could not verify the relay's certificate or handshake (TLS alert: decrypt error)",
            ),
            (
                Error::AlertReceived(AlertDescription::UnknownPSKIdentity),
                "client ended the handshake (TLS alert: unknown PSK identity)",
            ),
            (
                Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                "the client does not speak TLS (plain syslog sent to the TLS port?)",
            ),
            (
                Error::InvalidMessage(rustls::InvalidMessage::MessageTooLarge),
                "client sent a malformed TLS message (message too large): not TLS, or a broken client",
            ),
            (
                Error::InvalidMessage(rustls::InvalidMessage::MissingData("Random")),
                "client sent a malformed TLS message (missing data): not TLS, or a broken client",
            ),
            (Error::DecryptError, "cannot decrypt peer's message"),
        ];
        for (error, want) in cases {
            assert_eq!(handshake_failure(&io_error(error)), want);
        }
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(
            handshake_failure(&eof),
            "the client closed the connection during the handshake"
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(handshake_failure(&reset), reset.to_string());
    }

    #[test]
    fn names_become_words_with_their_acronyms() {
        let w = |s: &str| {
            struct Name<'a>(&'a str);
            impl std::fmt::Debug for Name<'_> {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(self.0)
                }
            }
            words(&Name(s))
        };
        assert_eq!(w("UnknownCA"), "unknown CA");
        assert_eq!(w("UnknownPSKIdentity"), "unknown PSK identity");
        assert_eq!(w("Tls12NotOffered"), "tls12 not offered");
        assert_eq!(
            w("RequiredEkuNotFoundContext(RequiredEkuNotFoundContext { x: 1 })"),
            "required eku not found context"
        );
        assert_eq!(w(""), "");
    }
}
