//! The `syslog` destination's settings: its keys, their defaults, and the
//! checks made when the config loads (address, facility, app name, TCP
//! congestion control, the TLS keys and the client's TLS setup).

use crate::config::{ConfigError, HumanDuration};
use crate::destinations::BuildContext;
use crate::event::rfc5424_fields::MAX_APP_NAME;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsConnector;

pub(super) const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
pub(super) const DEFAULT_FACILITY: u8 = 16;

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Tcp,
    Udp,
    #[default]
    Tls,
}

/// What goes into MSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// MSG is the canonical event JSON.
    #[default]
    Json,
    /// The original syslog header, structured data and message are rebuilt.
    Syslog,
}

/// `facility = "local3"` or `facility = 19`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum FacilitySetting {
    Code(i64),
    Name(String),
}

/// The `syslog` destination's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SyslogSettings {
    pub(super) address: String,
    #[serde(default)]
    pub(super) mode: Mode,
    #[serde(default)]
    pub(super) format: Format,
    #[serde(default)]
    pub(super) ca: Option<PathBuf>,
    #[serde(default)]
    pub(super) cert: Option<PathBuf>,
    #[serde(default)]
    pub(super) key: Option<PathBuf>,
    #[serde(default)]
    pub(super) server_name: Option<String>,
    #[serde(default)]
    pub(super) facility: Option<FacilitySetting>,
    #[serde(default = "default_app_name")]
    pub(super) app_name: String,
    /// HOSTNAME of the messages the relay writes itself (default: this
    /// machine's host name).
    #[serde(default)]
    pub(super) hostname: Option<String>,
    #[serde(default = "default_max_udp_bytes")]
    pub(super) max_udp_bytes: usize,
    #[serde(default = "default_timeout")]
    pub(super) timeout: HumanDuration,
    #[serde(default)]
    pub(super) tcp_congestion: Option<String>,
    #[serde(default)]
    pub(super) max_udp_rate: Option<u32>,
}

pub(super) fn default_app_name() -> String {
    "siem-relay".to_string()
}
pub(super) fn default_max_udp_bytes() -> usize {
    2048
}
pub(super) fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// The host part of `host:port` / `[v6]:port`, after checking the port.
pub(super) fn validate_address(address: &str, path: &str) -> Result<String, ConfigError> {
    let err = || {
        ConfigError::new(
            format!("{path}.address"),
            format!("`{address}` is not host:port"),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(err)?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(err)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(err());
    }
    Ok(host.to_string())
}

pub(super) fn facility_code(f: Option<&FacilitySetting>, path: &str) -> Result<u8, ConfigError> {
    let err = |what: String| {
        ConfigError::new(
            format!("{path}.facility"),
            format!("{what}; expected 0..=23 or a name (kern, user, …, audit, local0 … local7)"),
        )
    };
    match f {
        None => Ok(DEFAULT_FACILITY),
        Some(FacilitySetting::Code(c)) => u8::try_from(*c)
            .ok()
            .filter(|c| *c <= 23)
            .ok_or_else(|| err(format!("unknown facility {c}"))),
        Some(FacilitySetting::Name(n)) => FACILITIES
            .iter()
            .position(|f| f.eq_ignore_ascii_case(n))
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| err(format!("unknown facility `{n}`"))),
    }
}

pub(super) fn validate_app_name(app: &str, path: &str) -> Result<(), ConfigError> {
    if app.is_empty() || app.len() > MAX_APP_NAME || !app.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(ConfigError::new(
            format!("{path}.app_name"),
            "must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
        ));
    }
    Ok(())
}

/// RFC 5424 HOSTNAME: 1 to 255 printable ASCII characters, no spaces.
pub(super) fn validate_hostname(host: &str, path: &str) -> Result<(), ConfigError> {
    if host.is_empty() || host.len() > 255 || !host.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(ConfigError::new(
            format!("{path}.hostname"),
            "must be 1 to 255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)",
        ));
    }
    Ok(())
}

/// Checks that this process can use congestion control `name` by setting
/// it on a throwaway socket (the kernel may load its module on the way; a
/// process without CAP_NET_ADMIN may use only those in
/// `net.ipv4.tcp_allowed_congestion_control`).
pub(super) fn check_congestion(name: &str, path: &str) -> Result<(), ConfigError> {
    let key = format!("{path}.tcp_congestion");
    let probe =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).map_err(|e| {
            ConfigError::new(
                key.clone(),
                format!("cannot make a socket to check it: {e}"),
            )
        })?;
    probe.set_tcp_congestion(name.as_bytes()).map_err(|e| {
        let read = |f: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/{f}"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        ConfigError::new(
            key.clone(),
            format!(
                "cannot use {name:?}: {e} (available: {}; allowed without CAP_NET_ADMIN: {})",
                read("tcp_available_congestion_control"),
                read("tcp_allowed_congestion_control")
            ),
        )
    })
}

pub(super) fn reject_tls_keys(s: &SyslogSettings, path: &str) -> Result<(), ConfigError> {
    let set = [
        ("ca", s.ca.is_some()),
        ("cert", s.cert.is_some()),
        ("key", s.key.is_some()),
        ("server_name", s.server_name.is_some()),
    ];
    match set.iter().find(|(_, is_set)| *is_set) {
        Some((k, _)) => Err(ConfigError::new(
            format!("{path}.{k}"),
            "only used with mode = \"tls\"",
        )),
        None => Ok(()),
    }
}

pub(super) fn tls_connector(
    s: &SyslogSettings,
    host: &str,
    ctx: &BuildContext,
    path: &str,
) -> Result<(TlsConnector, ServerName<'static>), ConfigError> {
    let name_src = s.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name_src.to_string()).map_err(|e| {
        let key = if s.server_name.is_some() {
            "server_name"
        } else {
            "address"
        };
        ConfigError::new(
            format!("{path}.{key}"),
            format!("invalid TLS server name `{name_src}`: {e}"),
        )
    })?;
    let roots = root_store(s.ca.as_deref(), ctx, path)?;
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new(path, format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
    let config = match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(&ctx.resolve(cert), &format!("{path}.cert"))?;
            let key = load_key(&ctx.resolve(key), &format!("{path}.key"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                let words = match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "this key does not belong to the certificate in `cert`".to_string()
                    }
                    other => other.to_string(),
                };
                ConfigError::new(format!("{path}.key"), words)
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        // the file given is checked first: `validate` lists every bad key
        // (it checks again without each key at fault, and the pair rule
        // would hide the other file's error)
        (Some(cert), None) => {
            load_certs(&ctx.resolve(cert), &format!("{path}.cert"))?;
            return Err(ConfigError::new(
                format!("{path}.key"),
                "required when cert is set",
            ));
        }
        (None, Some(key)) => {
            load_key(&ctx.resolve(key), &format!("{path}.key"))?;
            return Err(ConfigError::new(
                format!("{path}.cert"),
                "required when key is set",
            ));
        }
    };
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

pub(super) fn root_store(
    ca: Option<&Path>,
    ctx: &BuildContext,
    path: &str,
) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    match ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(ca) => {
            let key = format!("{path}.ca");
            for cert in load_certs(&ctx.resolve(ca), &key)? {
                roots
                    .add(cert)
                    .map_err(|e| ConfigError::new(key.as_str(), e.to_string()))?;
            }
        }
    }
    Ok(roots)
}

pub(super) fn load_certs(
    file: &Path,
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let f =
        File::open(file).map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("{}: no PEM certificate found", file.display()),
        ));
    }
    Ok(certs)
}

pub(super) fn load_key(file: &Path, key: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let f =
        File::open(file).map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?
        .ok_or_else(|| {
            ConfigError::new(key, format!("{}: no PEM private key found", file.display()))
        })
}
