//! Sources: listeners that take events in (syslog over UDP, TCP and TLS; JSON
//! over HTTP), parse them with [`crate::parse`], and hand them to an [`Ingest`]
//! (the ring, in the running relay).
//!
//! One file per source type: [`udp`] (`syslog_udp`), [`tcp`] (`syslog_tcp`),
//! [`tls`] (`syslog_tls`), [`http`] (`http`). [`stream`] is the connection
//! handler TCP and TLS share; [`metrics`] names the counters every source
//! reports. The entry points are [`validate`] and [`start`].

#[cfg(test)]
mod gated_ingest;
pub mod http;
pub(crate) mod log_limit;
mod metrics;
pub use metrics::queued_bytes;
mod parse_ahead;
mod read_budget;
pub mod record_fit;
mod stream;
mod stream_append;
pub mod tcp;
pub mod tls;
pub mod udp;

use crate::config::{closest, closest_type, did_you_mean, every_error, ConfigError, SectionConfig};
use crate::event::EncodedEvent;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why events could not be taken in.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The ring is full and a `block` destination holds the oldest segment:
    /// try again later (HTTP answers 503 with this as Retry-After).
    #[error("buffer full, retry in {0:?}")]
    Full(Duration),
    /// The relay is shutting down.
    #[error("relay is shutting down")]
    Closed,
    /// The buffer failed (a disk error).
    #[error("buffer error: {0}")]
    Failed(String),
    /// An event too large for the ring's segments: it can never be stored
    /// (HTTP answers 413, not a 503 to retry).
    #[error("{0}")]
    TooLarge(String),
    /// The events are in the ring, but `fsync = always` could not flush
    /// them to disk: a source that acknowledges (HTTP) must not say they
    /// are stored; one that does not (TCP, UDP) counts them as accepted.
    #[error("stored, but not flushed to disk: {0}")]
    NotDurable(String),
}

/// What [`Ingest::append`] gives back: the events, and whether they are in.
pub type Appended = (Vec<EncodedEvent>, Result<(), IngestError>);

/// Where sources put events. Implemented by the ring (in `app`) and by
/// in-memory collectors in tests.
pub trait Ingest: Send + Sync + 'static {
    /// Appends all of `events` or none of them, without waiting. Returns after
    /// the events are durable as the fsync policy says.
    fn try_append(&self, events: &[EncodedEvent]) -> Result<(), IngestError>;

    /// Appends all of `events`, waiting while the buffer blocks (TCP stops
    /// reading meanwhile, which is the backpressure a sender sees). Gives
    /// the events back with the result, for their buffers.
    fn append(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended>;

    /// [`try_append`](Self::try_append) for an async caller: refuses at
    /// once when the buffer blocks, but waits for its turn at the buffer
    /// without blocking the caller's thread. Gives the events back.
    fn try_append_owned(&self, events: Vec<EncodedEvent>) -> BoxFuture<'_, Appended> {
        Box::pin(async move {
            let r = self.try_append(&events);
            (events, r)
        })
    }

    /// Whether syslog records should store the syslog hint now (a
    /// destination that reads it is running). Sources ask per read, so a
    /// destination added by a reload gets hints from the next read on.
    fn syslog_hints(&self) -> bool {
        true
    }
}

/// What every source gets from the application.
#[derive(Clone)]
pub struct SourceContext {
    pub ingest: Arc<dyn Ingest>,
    /// Becomes `true` when the relay shuts down: stop accepting, end tasks.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Default zone for syslog timestamps without one.
    pub timezone: chrono_tz::Tz,
    /// Relative file paths in settings (certificates) resolve against this.
    pub base_dir: PathBuf,
}

/// A started source.
#[derive(Debug)]
pub struct RunningSource {
    pub name: String,
    pub kind: String,
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// Ends after the shutdown flag is set and the source has stopped.
    pub task: tokio::task::JoinHandle<()>,
    /// A `syslog_tls` source's server configuration, which a reload renews
    /// when its files changed ([`tls::LiveTls`]).
    pub tls: Option<Arc<tls::LiveTls>>,
}

/// Why a source could not start.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sources.{name}: cannot bind {address}: {source}")]
    Bind {
        name: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sources.{name}: TLS setup: {message}")]
    Tls { name: String, message: String },
}

/// The source types this module knows.
pub const KINDS: [&str; 4] = ["syslog_udp", "syslog_tcp", "syslog_tls", "http"];

/// Checks a `[sources.NAME]` section: known type, valid settings, and that
/// the files it names exist (relative paths against the current directory).
pub fn validate(section: &SectionConfig) -> Result<(), ConfigError> {
    validate_in(section, Path::new("."))
}

/// [`validate`] with relative paths resolved against `base_dir`: the
/// section's first problem.
pub fn validate_in(section: &SectionConfig, base_dir: &Path) -> Result<(), ConfigError> {
    check_in(section, base_dir).map_err(|mut e| e.swap_remove(0))
}

/// Every problem of the section, not only the first (see [`every_error`]).
pub fn every_error_in(section: &SectionConfig, base_dir: &Path) -> Vec<ConfigError> {
    every_error(section, |s| check_in(s, base_dir))
}

/// The section's problems: the first its settings have, or every missing
/// TLS file (never an empty list).
fn check_in(section: &SectionConfig, base_dir: &Path) -> Result<(), Vec<ConfigError>> {
    let one = |e: ConfigError| vec![e];
    match section.kind.as_str() {
        "syslog_udp" => udp::Settings::from_section(section).map(drop).map_err(one),
        "syslog_tcp" => tcp::Settings::from_section(section).map(drop).map_err(one),
        "syslog_tls" => tls::Settings::from_section(section)
            .map_err(one)?
            .check_files(section, base_dir),
        "http" => http::Settings::from_section(section).map(drop).map_err(one),
        other => Err(vec![ConfigError::new(
            format!("{}.type", section.path()),
            format!(
                "unknown source type `{other}`, expected one of {}{}",
                KINDS.join(", "),
                did_you_mean(closest_kind(other))
            ),
        )]),
    }
}

/// The source type a mistyped one was meant to be, whatever the letter
/// case: the one whose transport (`tcp` of `syslog_tcp`) it is, else the
/// [`closest_type`] of [`KINDS`], else the one whose transport it is
/// closest to.
fn closest_kind(word: &str) -> Option<&'static str> {
    fn transport(kind: &'static str) -> &'static str {
        kind.strip_prefix("syslog_").unwrap_or(kind)
    }
    let by_transport = |t: &str| KINDS.into_iter().find(|k| transport(k) == t);
    by_transport(&word.to_lowercase())
        .or_else(|| closest_type(word, KINDS))
        .or_else(|| by_transport(closest(word, KINDS.map(transport))?))
}

/// Starts the source a section describes.
pub async fn start(
    section: &SectionConfig,
    ctx: SourceContext,
) -> Result<RunningSource, SourceError> {
    validate_in(section, &ctx.base_dir)?;
    let name = section.name.clone();
    let mut live_tls = None;
    let (local_addr, task) = match section.kind.as_str() {
        "syslog_udp" => udp::start(&name, udp::Settings::from_section(section)?, ctx)?,
        "syslog_tcp" => tcp::start(&name, tcp::Settings::from_section(section)?, ctx).await?,
        "syslog_tls" => {
            let started = tls::start(&name, tls::Settings::from_section(section)?, ctx).await?;
            live_tls = Some(started.tls);
            (started.local_addr, started.task)
        }
        "http" => http::start(&name, http::Settings::from_section(section)?, ctx).await?,
        other => {
            return Err(SourceError::Config(ConfigError::new(
                format!("{}.type", section.path()),
                format!("unknown source type `{other}`"),
            )))
        }
    };
    Ok(RunningSource {
        name,
        kind: section.kind.clone(),
        local_addr,
        task,
        tls: live_tls,
    })
}

/// Resolves `address` (`host:port`) to the first socket address.
fn resolve(name: &str, address: &str) -> Result<SocketAddr, SourceError> {
    use std::net::ToSocketAddrs;
    let bind_err = |source| SourceError::Bind {
        name: name.to_string(),
        address: address.to_string(),
        source,
    };
    address
        .to_socket_addrs()
        .map_err(bind_err)?
        .next()
        .ok_or_else(|| {
            bind_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "address resolves to nothing",
            ))
        })
}

/// Whether a syslog message (a UDP datagram, a TCP or TLS frame) is blank:
/// nothing but spaces, tabs, line ends (LF, CR, form feed) and NULs. A blank
/// one carries no message and makes no event in any syslog source (it
/// became an empty `parse_error` event); it is not counted either, as an
/// empty line between frames is not.
pub(crate) fn is_blank(message: &[u8]) -> bool {
    message.iter().all(|b| *b == 0 || b.is_ascii_whitespace())
}

/// Waits until the shutdown flag is set (or its sender is gone).
async fn shutdown_signal(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_white_space_and_nuls_only() {
        for blank in [&b""[..], b" ", b"\t", b"\r\n", b"\0", b" \t\r\n\0\x0c"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for not in [&b"x"[..], b" x ", b"\t-", b"\x0b", b"\0\x01"] {
            assert!(!is_blank(not), "{not:?}");
        }
    }

    /// A mistyped source type gets the type meant suggested, a transport
    /// alone (`tcp`) or mistyped (`tpc`) the syslog source of it.
    #[test]
    fn a_mistyped_type_gets_the_closest_known_one_suggested() {
        let error = |kind: &str| {
            let section = SectionConfig {
                section: "sources",
                name: "s".into(),
                kind: kind.into(),
                table: toml::Table::new(),
            };
            validate(&section).expect_err("refused").message
        };
        for (typed, meant) in [
            ("tpc", "syslog_tcp"),
            ("tcp", "syslog_tcp"),
            ("syslog_tsl", "syslog_tls"),
            ("htp", "http"),
            ("udp", "syslog_udp"),
        ] {
            let m = error(typed);
            assert!(
                m.starts_with(&format!("unknown source type `{typed}`")),
                "{m}"
            );
            assert!(m.ends_with(&format!("; did you mean `{meant}`?")), "{m}");
        }
        assert!(!error("kafka").contains("did you mean"));
    }
}
