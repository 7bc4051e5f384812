//! The `syslog` destination: RFC 5424 messages over TCP, UDP or TLS.
//!
//! Standards (rfc-editor.org):
//! - RFC 5424, The Syslog Protocol — message format (§6), STRUCTURED-DATA
//!   escaping of `"`, `\` and `]` in PARAM-VALUE (§6.3.3):
//!   <https://www.rfc-editor.org/rfc/rfc5424>
//! - RFC 5425, TLS Transport Mapping for Syslog — octet-counted frames over
//!   TLS, `close_notify` before closing (§4.4): <https://www.rfc-editor.org/rfc/rfc5425>
//! - RFC 5426, Transmission of Syslog Messages over UDP — one message per
//!   datagram: <https://www.rfc-editor.org/rfc/rfc5426>
//! - RFC 6587, Transmission of Syslog Messages over TCP — octet counting
//!   (§3.4.1) `MSG-LEN SP SYSLOG-MSG`: <https://www.rfc-editor.org/rfc/rfc6587>
//!
//! Settings (`[destinations.NAME]`, after the common keys are peeled off):
//! `address` (`host:port`, required), `mode` (`"tls"` default, `"tcp"`,
//! `"udp"`), `format` (`"json"` default: MSG is the canonical event JSON;
//! `"syslog"`: the original syslog fields are rebuilt), `ca`, `cert`, `key`,
//! `server_name` (TLS only), `facility` (name or code, default `local0` = 16:
//! the conventional facility for relayed application logs, easy to route),
//! `app_name` (default `siem-relay`), `max_udp_bytes` (default 2048, the size
//! RFC 5426 says receivers SHOULD accept), `max_udp_rate` (UDP only:
//! datagrams per second at most, sent in bursts of 10 ms of the rate; default
//! no limit), `timeout` (connect and write,
//! default `10s`), `tcp_congestion` (TCP and TLS: the connection's
//! congestion control, such as `"cubic"`; default the system's. Checked
//! when the config loads.)
//!
//! With `format = "syslog"` each body is read by the allocation-free scanner
//! in `syslog_view`; bodies it does not fully handle go to the serde reader
//! (`SyslogView`), the reference it is tested against, with the same output.
//!
//! MSG is sent without a BOM (RFC 5424 `MSG-ANY`): most SIEM parsers do not
//! strip it. A UDP message longer than `max_udp_bytes` is truncated at a UTF-8
//! boundary and counted (`siem_relay_syslog_truncated_total`), never dropped.
//! A batch's datagrams go out with `sendmmsg(2)`, up to 1024 a system call
//! ([`datagrams`]).
//!
//! One persistent connection per destination. Before a batch is written on a
//! reused stream, the socket is checked for a peer close (EOF, reset, or a
//! TLS `close_notify`) so a restarted server gets a fresh connection instead
//! of a write into a dead socket. A failed connect or write drops the
//! connection and answers `Delivery::Retry`; the next send reconnects.

use super::datagrams::{self, Datagrams, Pace};
use super::syslog_view::{self, Fallback, JsonStr, Scratch};
use crate::config::{table_into, ConfigError, HumanDuration};
use crate::destinations::{Batch, BatchEvent, BuildContext, Delivery, Sink};
use crate::event::rfc5424_fields::{
    push_header_field, push_sd_name, push_sd_value, MAX_APP_NAME, MAX_HOSTNAME, MAX_MSGID,
    MAX_PROCID,
};
use crate::event::syslog_hint::{HintHeader, SyslogHint};
use crate::event::{json_writer, push_rfc3339_millis};
use futures::future::BoxFuture;
use futures::FutureExt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::mem::MaybeUninit;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Mutex;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const DEFAULT_FACILITY: u8 = 16;

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

/// How `format = "syslog"` reads record bodies. The relay always uses
/// [`BodyReader::Hint`]; [`BodyReader::Scanner`] and [`BodyReader::Serde`]
/// are what it is checked against, reachable for benchmarks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyReader {
    /// The record's syslog hint (`event::syslog_hint`) when it has one,
    /// else [`BodyReader::Scanner`] (same output either way).
    #[default]
    Hint,
    /// The allocation-free scanner, falling back to serde for any body it
    /// does not fully handle (same output either way).
    Scanner,
    /// Always the serde reader.
    Serde,
}

/// Which reader produced a message (tests check that the scanner is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoded {
    /// `format = "json"`: the body is spliced unread.
    Unread,
    /// The record's syslog hint gave the fields; the body was not read.
    Hinted,
    /// The scanner read the body.
    Fast,
    /// The serde reader did: why the scanner declined, or `None` when asked for serde.
    Reference(Option<Fallback>),
}

/// `facility = "local3"` or `facility = 19`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum FacilitySetting {
    Code(i64),
    Name(String),
}

/// The `syslog` destination's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyslogSettings {
    address: String,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    facility: Option<FacilitySetting>,
    #[serde(default = "default_app_name")]
    app_name: String,
    #[serde(default = "default_max_udp_bytes")]
    max_udp_bytes: usize,
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
    #[serde(default)]
    tcp_congestion: Option<String>,
    #[serde(default)]
    max_udp_rate: Option<u32>,
}

fn default_app_name() -> String {
    "siem-relay".to_string()
}
fn default_max_udp_bytes() -> usize {
    2048
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// A transport failure (the batch is retried).
#[derive(Debug, Error)]
enum TransportError {
    #[error("cannot resolve {addr}: {reason}")]
    Resolve { addr: String, reason: String },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        addr: String,
        source: std::io::Error,
    },
    #[error("write: {0}")]
    Write(std::io::Error),
    #[error("timed out after {0:?} during {1}")]
    Timeout(Duration, &'static str),
}

/// One open connection.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

/// How RFC 5424 header fields are filled in.
#[derive(Debug, Clone)]
struct Encoder {
    format: Format,
    facility: u8,
    hostname: String,
    app_name: String,
    max_udp_bytes: usize,
}

/// The `syslog` sink.
pub struct SyslogSink {
    name: String,
    address: String,
    mode: Mode,
    timeout: Duration,
    encoder: Encoder,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    conn: Mutex<Option<Conn>>,
    /// TCP congestion control for the connection (`TCP_CONGESTION`); the system's when `None`.
    tcp_congestion: Option<String>,
    truncated: AtomicU64,
    /// The frames buffer of the last TCP/TLS batch, kept for the next one
    /// (sends are serialised by `conn`): a fresh buffer per batch faulted
    /// its pages in anew, 6% of a delivery thread's time in the fan-out profile.
    spare: std::sync::Mutex<Vec<u8>>,
    /// The same for the datagrams of the last UDP batch.
    spare_datagrams: std::sync::Mutex<Datagrams>,
    /// `max_udp_rate`: UDP sends wait their turn.
    pace: Option<Pace>,
}

/// A frames buffer larger than this is not kept between batches.
const SPARE_MAX: usize = 8 << 20;

/// Builds a `syslog` destination from its table (common keys already peeled).
pub fn build(table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    Ok(Arc::new(SyslogSink::new(table, ctx)?))
}

impl SyslogSink {
    /// Validates the settings and prepares (but does not open) the connection.
    pub fn new(table: toml::Table, ctx: &BuildContext) -> Result<SyslogSink, ConfigError> {
        let path = ctx.path();
        let s: SyslogSettings = table_into(&table, &path)?;
        let host = validate_address(&s.address, &path)?;
        let facility = facility_code(s.facility.as_ref(), &path)?;
        validate_app_name(&s.app_name, &path)?;
        if !(480..=65_507).contains(&s.max_udp_bytes) {
            return Err(ConfigError::new(
                format!("{path}.max_udp_bytes"),
                "must be between 480 and 65507",
            ));
        }
        if s.timeout.0.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.timeout"),
                "must be more than 0",
            ));
        }
        if let Some(name) = &s.tcp_congestion {
            if s.mode == Mode::Udp {
                return Err(ConfigError::new(
                    format!("{path}.tcp_congestion"),
                    "only used with mode = \"tcp\" or \"tls\"",
                ));
            }
            check_congestion(name, &path)?;
        }
        let pace = match s.max_udp_rate {
            None => None,
            Some(_) if s.mode != Mode::Udp => {
                return Err(ConfigError::new(
                    format!("{path}.max_udp_rate"),
                    "only used with mode = \"udp\"",
                ))
            }
            Some(rate) => Some(Pace::new(NonZeroU32::new(rate).ok_or_else(|| {
                ConfigError::new(
                    format!("{path}.max_udp_rate"),
                    "must be at least 1 (datagrams per second)",
                )
            })?)),
        };
        let tls = match s.mode {
            Mode::Tls => Some(tls_connector(&s, &host, ctx, &path)?),
            _ => {
                reject_tls_keys(&s, &path)?;
                None
            }
        };
        Ok(SyslogSink {
            name: ctx.name.clone(),
            address: s.address.clone(),
            mode: s.mode,
            timeout: s.timeout.0,
            encoder: Encoder {
                format: s.format,
                facility,
                hostname: local_hostname(),
                app_name: s.app_name.clone(),
                max_udp_bytes: s.max_udp_bytes,
            },
            tls,
            conn: Mutex::new(None),
            tcp_congestion: s.tcp_congestion.clone(),
            truncated: AtomicU64::new(0),
            spare: std::sync::Mutex::new(Vec::new()),
            spare_datagrams: std::sync::Mutex::new(Datagrams::default()),
            pace,
        })
    }

    /// UDP messages truncated to `max_udp_bytes` so far.
    pub fn truncated_total(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    async fn deliver(&self, batch: &Batch) -> Result<(), TransportError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_mut() {
            if !is_alive(conn) {
                tracing::debug!(destination = %self.name, "syslog peer closed the connection; reconnecting");
                *guard = None;
            }
        }
        let conn = match guard.as_mut() {
            Some(c) => c,
            None => guard.insert(self.connect().await?),
        };
        let result = self.write_batch(conn, batch).await;
        if result.is_err() {
            *guard = None;
        }
        result
    }

    async fn write_batch(&self, conn: &mut Conn, batch: &Batch) -> Result<(), TransportError> {
        let t = self.timeout;
        if let Conn::Udp(s) = conn {
            // the timeout is for the sending, not for waiting on `max_udp_rate`
            let paced = self.pace.as_ref().map_or(Duration::ZERO, |p| {
                p.time_for(batch.len()) + datagrams::BURST
            });
            return with_timeout(t + paced, "write", self.send_datagrams(s, batch)).await;
        }
        let mut frames = std::mem::take(&mut *self.spare.lock().unwrap());
        self.encode_frames_into(batch, BodyReader::Hint, &mut frames);
        let result = match conn {
            Conn::Tcp(s) => with_timeout(t, "write", write_flush(s, &frames)).await,
            Conn::Tls(s) => with_timeout(t, "write", write_flush(s, &frames)).await,
            Conn::Udp(_) => unreachable!("sent as datagrams above"),
        };
        if frames.capacity() <= SPARE_MAX {
            *self.spare.lock().unwrap() = frames;
        }
        result
    }

    /// The octet-counted frames a TCP or TLS send of `batch` writes, built
    /// without sending, with the given body reader (for benchmarks and tests).
    pub fn encode_frames(&self, batch: &Batch, reader: BodyReader) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_frames_into(batch, reader, &mut out);
        out
    }

    /// [`SyslogSink::encode_frames`] into `out` (cleared first).
    fn encode_frames_into(&self, batch: &Batch, reader: BodyReader, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(batch.body_bytes() + batch.len() * 96);
        let mut scratch = Scratch::default();
        for ev in &batch.events {
            push_octet_counted(out, |o| {
                self.encoder.encode_with(ev, o, &mut scratch, reader);
            });
        }
    }

    async fn send_datagrams(&self, sock: &UdpSocket, batch: &Batch) -> std::io::Result<()> {
        let mut grams = std::mem::take(&mut *self.spare_datagrams.lock().unwrap());
        grams.clear();
        let mut scratch = Scratch::default();
        let mut truncated = 0u64;
        for ev in &batch.events {
            let cut = grams.push(
                |msg| {
                    self.encoder.encode(ev, msg, &mut scratch);
                },
                |msg| utf8_floor(msg, self.encoder.max_udp_bytes),
            );
            truncated += u64::from(cut);
        }
        let result =
            datagrams::send_all(sock, &grams, datagrams::PER_CALL, self.pace.as_ref()).await;
        if grams.capacity() <= SPARE_MAX {
            *self.spare_datagrams.lock().unwrap() = grams;
        }
        // counted once the batch is sent: a resent batch is not counted twice
        if truncated > 0 && result.is_ok() {
            self.truncated.fetch_add(truncated, Ordering::Relaxed);
            metrics::counter!("siem_relay_syslog_truncated_total", "destination" => self.name.clone())
                .increment(truncated);
            tracing::warn!(destination = %self.name, truncated, max = self.encoder.max_udp_bytes,
                "syslog UDP messages truncated to max_udp_bytes");
        }
        result
    }

    /// Resolves `address` afresh on each connect (a SIEM may move), within the timeout.
    async fn resolve(&self) -> Result<Vec<std::net::SocketAddr>, TransportError> {
        let lookup = tokio::net::lookup_host(self.address.as_str());
        let resolve_err = |reason: String| TransportError::Resolve {
            addr: self.address.clone(),
            reason,
        };
        let addrs: Vec<_> = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err(resolve_err(e.to_string())),
            Err(_) => return Err(TransportError::Timeout(self.timeout, "resolve")),
        };
        if addrs.is_empty() {
            return Err(resolve_err("no address".into()));
        }
        Ok(addrs)
    }

    /// A TCP connection to `addr`, with `tcp_congestion` set before the handshake.
    async fn connect_tcp(&self, addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(name) = &self.tcp_congestion {
            socket2::SockRef::from(&sock).set_tcp_congestion(name.as_bytes())?;
        }
        sock.connect(addr).await
    }

    async fn connect(&self) -> Result<Conn, TransportError> {
        let addrs = self.resolve().await?;
        let connect_err = |source| TransportError::Connect {
            addr: self.address.clone(),
            source,
        };
        if self.mode == Mode::Udp {
            let addr = addrs[0];
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(bind).await.map_err(connect_err)?;
            sock.connect(addr).await.map_err(connect_err)?;
            return Ok(Conn::Udp(sock));
        }
        let tcp = with_timeout(self.timeout, "connect", async {
            // Every resolved address in turn (`localhost` may be ::1 and 127.0.0.1).
            let mut last = None;
            for addr in &addrs {
                match self.connect_tcp(*addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(connect_err(last.unwrap_or_else(|| {
                std::io::Error::new(ErrorKind::NotFound, "no address")
            })))
        })
        .await?;
        // Best effort: frames are written whole, Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Tcp(tcp)),
            Some((connector, name)) => {
                let tls = with_timeout(self.timeout, "TLS handshake", async {
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|source| TransportError::Handshake {
                            addr: self.address.clone(),
                            source,
                        })
                })
                .await?;
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }
}

impl Sink for SyslogSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            if batch.is_empty() {
                return Delivery::Delivered;
            }
            match self.deliver(batch).await {
                Ok(()) => Delivery::Delivered,
                Err(e) => Delivery::retry(format!("{}: {e}", self.target())),
            }
        })
    }

    fn encode_only(&self, batch: &Batch) -> Option<usize> {
        Some(self.encode_frames(batch, BodyReader::Hint).len())
    }

    fn reads_syslog_hint(&self) -> bool {
        self.encoder.format == Format::Syslog
    }

    fn target(&self) -> String {
        let scheme = match self.mode {
            Mode::Tcp => "tcp",
            Mode::Udp => "udp",
            Mode::Tls => "tls",
        };
        format!("syslog+{scheme}://{}", self.address)
    }

    fn close<'a>(&'a self) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(conn) = self.conn.lock().await.take() else {
                return;
            };
            let t = self.timeout;
            // `shutdown` on a TLS stream sends close_notify (RFC 5425 §4.4) first.
            let result = match conn {
                Conn::Tls(mut s) => half_close(&mut s, t).await,
                Conn::Tcp(mut s) => half_close(&mut s, t).await,
                Conn::Udp(_) => Ok(Ok(())),
            };
            if let Ok(Err(e)) = result {
                tracing::debug!(destination = %self.name, error = %e, "syslog close");
            }
        })
    }
}

/// Half-closes `s` within `t` (TLS: `close_notify` first), then [`linger`]s.
async fn half_close<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    t: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    let result = tokio::time::timeout(t, s.shutdown()).await;
    linger(s).await;
    result
}

/// How long [`linger`] waits for the server to close its side.
const LINGER: Duration = Duration::from_secs(1);

/// After our half-close, reads and drops what the server still sends
/// (TLS 1.3 session tickets, a banner, anything) until it closes too, or
/// [`LINGER`] passes. Closing a socket with unread bytes makes the kernel
/// abort the connection with RST, and an abort discards what it has not
/// yet transmitted: the tail of the last batch, which `write_all` counted
/// as sent and the relay as delivered.
async fn linger<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 4096];
    let drain = async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

async fn with_timeout<T, E>(
    t: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, TransportError>
where
    TransportError: From<E>,
{
    match tokio::time::timeout(t, f).await {
        Ok(r) => r.map_err(TransportError::from),
        Err(_) => Err(TransportError::Timeout(t, what)),
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Write(e)
    }
}

async fn write_flush<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    buf: &[u8],
) -> std::io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}

/// Whether a reused connection still looks open. Syslog servers send
/// nothing, so readable bytes on the socket are EOF, a reset, or TLS records
/// (session tickets are fine; a `close_notify` means closed).
fn is_alive(conn: &mut Conn) -> bool {
    match conn {
        Conn::Udp(_) => true,
        Conn::Tcp(s) => tcp_alive(s),
        Conn::Tls(s) => tls_alive(s),
    }
}

/// What a non-blocking peek at the raw socket shows.
enum Peek {
    Nothing,
    Data,
    Closed,
}

fn peek(s: &TcpStream) -> Peek {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(s).peek(&mut buf) {
        Ok(0) => Peek::Closed,
        Ok(_) => Peek::Data,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Peek::Nothing,
        Err(_) => Peek::Closed,
    }
}

fn tcp_alive(s: &TcpStream) -> bool {
    // Unexpected bytes from the server are read and ignored, to see what follows.
    let sock = socket2::SockRef::from(s);
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    for _ in 0..64 {
        match peek(s) {
            Peek::Nothing => return true,
            Peek::Closed => return false,
            Peek::Data => {
                if sock.recv(&mut buf).is_err() {
                    return false;
                }
            }
        }
    }
    true
}

fn tls_alive(s: &mut TlsStream<TcpStream>) -> bool {
    match peek(s.get_ref().0) {
        Peek::Nothing => return true,
        Peek::Closed => return false,
        Peek::Data => {}
    }
    // Let rustls process what arrived (tickets, alerts) without waiting.
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match s.read(&mut buf).now_or_never() {
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(_)) => continue,
            // Nothing ready for rustls: alive only if the raw bytes were consumed.
            None => return matches!(peek(s.get_ref().0), Peek::Nothing),
        }
    }
    true
}

/// `MSG-LEN SP SYSLOG-MSG` (RFC 6587 §3.4.1, RFC 5425 §4.3).
#[cfg(test)]
fn frame_octet_counted(msg: &[u8], out: &mut Vec<u8>) {
    push_octet_counted(out, |o| o.extend_from_slice(msg));
}

/// Appends `MSG-LEN SP MSG` (RFC 6587 §3.4.1) with the message written by
/// `write` straight into `out`: room for a 3-digit length (a message of
/// 100 to 999 bytes, the usual size) is left in front of it, and only a
/// message of another length is moved to fit its length.
fn push_octet_counted(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(b"000 ");
    let msg_at = out.len();
    write(out);
    let len = out.len() - msg_at;
    if (100..=999).contains(&len) {
        out[start] = b'0' + (len / 100) as u8;
        out[start + 1] = b'0' + (len / 10 % 10) as u8;
        out[start + 2] = b'0' + (len % 10) as u8;
    } else {
        let mut prefix = Vec::with_capacity(24);
        json_writer::uint(&mut prefix, len as u64);
        prefix.push(b' ');
        out.splice(start..msg_at, prefix);
    }
}

/// The largest `n <= max` that does not split a UTF-8 sequence of `bytes`.
fn utf8_floor(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut n = max;
    // A continuation byte (0b10xx_xxxx) at `n` means `n` is inside a character.
    while n > 0 && bytes[n] & 0xC0 == 0x80 {
        n -= 1;
    }
    n
}

/// The body fields `format = "syslog"` reads: the serde reference reader
/// (`syslog_view` is the fast one, and falls back to this).
#[derive(Debug, Default, Deserialize)]
struct SyslogView<'a> {
    #[serde(borrow, default)]
    syslog: Option<SyslogPart<'a>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct SyslogPart<'a> {
    #[serde(default)]
    facility: Option<u8>,
    #[serde(default)]
    severity: Option<u8>,
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    procid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msgid: Option<Cow<'a, str>>,
    /// SD-ID → param → value, borrowed from the body (sorted, as the canonical map is).
    #[serde(borrow, default)]
    structured_data: SdMap<'a>,
}

type SdMap<'a> = BTreeMap<Cow<'a, str>, BTreeMap<Cow<'a, str>, SdValue<'a>>>;

/// An SD param value: borrowed when it is a plain JSON string, otherwise the
/// text of the scalar (numbers, booleans) so nothing is refused.
#[derive(Debug)]
struct SdValue<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for SdValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = SdValue<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(SdValue(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Encoder {
    /// Appends the RFC 5424 message for `ev` to `out`.
    fn encode(&self, ev: &BatchEvent, out: &mut Vec<u8>, scratch: &mut Scratch) -> Decoded {
        self.encode_with(ev, out, scratch, BodyReader::Hint)
    }

    /// [`Encoder::encode`] with a chosen body reader; says which one ran.
    fn encode_with(
        &self,
        ev: &BatchEvent,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        reader: BodyReader,
    ) -> Decoded {
        let why = match (self.format, reader) {
            (Format::Json, _) => {
                self.encode_json(ev, out);
                return Decoded::Unread;
            }
            (Format::Syslog, BodyReader::Serde) => None,
            (Format::Syslog, BodyReader::Hint)
                if !ev.hint().is_empty() && self.encode_hinted(ev, out) =>
            {
                return Decoded::Hinted;
            }
            (Format::Syslog, BodyReader::Hint | BodyReader::Scanner) => {
                match syslog_view::scan(ev.body(), scratch) {
                    Ok(v) => {
                        self.encode_fast(ev, &v, scratch, out);
                        return Decoded::Fast;
                    }
                    Err(why) => Some(why),
                }
            }
        };
        self.encode_reference(ev, out);
        Decoded::Reference(why)
    }

    /// `format = "syslog"` through the serde reader.
    fn encode_reference(&self, ev: &BatchEvent, out: &mut Vec<u8>) {
        // A body that does not parse is sent as in `json` format: nothing is lost.
        match serde_json::from_slice::<SyslogView<'_>>(ev.body()) {
            Ok(v) => self.encode_syslog(ev, &v, out),
            Err(_) => self.encode_json(ev, out),
        }
    }

    /// `format = "syslog"` from what the scanner read: the same output as
    /// `encode_syslog` with the serde view of the same body.
    fn encode_fast(
        &self,
        ev: &BatchEvent,
        v: &syslog_view::View<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) {
        let facility = v.facility.filter(|f| *f <= 23).unwrap_or(self.facility);
        let severity = v
            .severity
            .filter(|s| *s <= 7)
            .unwrap_or_else(|| ev.meta.severity.syslog_code());
        let pri = u16::from(facility) * 8 + u16::from(severity);
        push_pri_timestamp(out, pri, ev);
        let text = &mut scratch.text;
        let host = match v.hostname {
            Some(h) => h.resolve(text),
            None => &self.hostname,
        };
        push_header_field(out, host, MAX_HOSTNAME);
        out.push(b' ');
        let app = match v.app_name {
            Some(a) => a.resolve(text),
            None => &self.app_name,
        };
        push_header_field(out, app, MAX_APP_NAME);
        out.push(b' ');
        push_header_field(out, v.procid.map_or("-", |p| p.resolve(text)), MAX_PROCID);
        out.push(b' ');
        push_header_field(out, v.msgid.map_or("-", |m| m.resolve(text)), MAX_MSGID);
        out.push(b' ');
        if scratch.sd.is_empty() {
            out.push(b'-');
        } else {
            out.extend_from_slice(&scratch.sd);
        }
        match v.message {
            Some(m) if !m.is_empty() => {
                out.push(b' ');
                m.write_to(out);
            }
            Some(_) => {}
            // Not from syslog: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
    }

    /// `format = "syslog"` from the record's syslog hint, without reading
    /// the body: the same output as `encode_fast` (property-tested).
    /// False, with nothing written, for a hint that does not parse.
    fn encode_hinted(&self, ev: &BatchEvent, out: &mut Vec<u8>) -> bool {
        let Some(h) = SyslogHint::parse(ev.hint(), ev.body()) else {
            return false;
        };
        push_pri_timestamp(out, u16::from(h.facility) * 8 + u16::from(h.severity), ev);
        match h.header {
            // the common case: the whole rest of the header in one copy
            HintHeader::Rendered(run) => out.extend_from_slice(run),
            HintHeader::Fields {
                hostname,
                app_name,
                procid,
                msgid,
                structured_data,
            } => {
                match hostname {
                    Some(v) => out.extend_from_slice(v),
                    None => push_header_field(out, &self.hostname, MAX_HOSTNAME),
                }
                out.push(b' ');
                match app_name {
                    Some(v) => out.extend_from_slice(v),
                    None => push_header_field(out, &self.app_name, MAX_APP_NAME),
                }
                out.push(b' ');
                out.extend_from_slice(procid.unwrap_or(b"-"));
                out.push(b' ');
                out.extend_from_slice(msgid.unwrap_or(b"-"));
                out.push(b' ');
                if structured_data.is_empty() {
                    out.push(b'-');
                } else {
                    out.extend_from_slice(structured_data);
                }
            }
        }
        match h.message {
            Some(m) if !m.is_empty() => {
                out.push(b' ');
                JsonStr::from_contents(m).write_to(out);
            }
            Some(_) => {}
            // Not from syslog: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
        true
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - JSON`.
    fn encode_json(&self, ev: &BatchEvent, out: &mut Vec<u8>) {
        let pri = u16::from(self.facility) * 8 + u16::from(ev.meta.severity.syslog_code());
        self.header(out, pri, ev, &self.hostname, &self.app_name, "-", "-");
        out.extend_from_slice(b" -");
        push_msg(out, ev.body());
    }

    fn encode_syslog(&self, ev: &BatchEvent, v: &SyslogView<'_>, out: &mut Vec<u8>) {
        let empty = SyslogPart::default();
        let s = v.syslog.as_ref().unwrap_or(&empty);
        let facility = s.facility.filter(|f| *f <= 23).unwrap_or(self.facility);
        let severity = s
            .severity
            .filter(|s| *s <= 7)
            .unwrap_or_else(|| ev.meta.severity.syslog_code());
        let pri = u16::from(facility) * 8 + u16::from(severity);
        let host = s.hostname.as_deref().unwrap_or(&self.hostname);
        let app = s.app_name.as_deref().unwrap_or(&self.app_name);
        let procid = s.procid.as_deref().unwrap_or("-");
        let msgid = s.msgid.as_deref().unwrap_or("-");
        self.header(out, pri, ev, host, app, procid, msgid);
        out.push(b' ');
        write_structured_data(&s.structured_data, out);
        match &v.message {
            Some(m) => push_msg(out, m.as_bytes()),
            // Not from syslog: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &self,
        out: &mut Vec<u8>,
        pri: u16,
        ev: &BatchEvent,
        host: &str,
        app: &str,
        procid: &str,
        msgid: &str,
    ) {
        push_pri_timestamp(out, pri, ev);
        push_header_field(out, host, MAX_HOSTNAME);
        out.push(b' ');
        push_header_field(out, app, MAX_APP_NAME);
        out.push(b' ');
        push_header_field(out, procid, MAX_PROCID);
        out.push(b' ');
        push_header_field(out, msgid, MAX_MSGID);
    }
}

/// `<PRI>1 TIMESTAMP ` (VERSION 1).
fn push_pri_timestamp(out: &mut Vec<u8>, pri: u16, ev: &BatchEvent) {
    out.push(b'<');
    json_writer::uint(out, pri.into());
    out.extend_from_slice(b">1 ");
    push_rfc3339_millis(out, ev.meta.timestamp_ms);
    out.push(b' ');
}

/// `[SP MSG]`: nothing for an empty message.
fn push_msg(out: &mut Vec<u8>, msg: &[u8]) {
    if !msg.is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg);
    }
}

/// STRUCTURED-DATA from the canonical `syslog.structured_data` map, or `-`.
fn write_structured_data(sd: &SdMap<'_>, out: &mut Vec<u8>) {
    if sd.is_empty() {
        out.push(b'-');
        return;
    }
    for (id, params) in sd {
        out.push(b'[');
        push_sd_name(out, id);
        for (name, value) in params {
            out.push(b' ');
            push_sd_name(out, name);
            out.extend_from_slice(b"=\"");
            push_sd_value(out, &value.0);
            out.push(b'"');
        }
        out.push(b']');
    }
}

/// The host part of `host:port` / `[v6]:port`, after checking the port.
fn validate_address(address: &str, path: &str) -> Result<String, ConfigError> {
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

fn facility_code(f: Option<&FacilitySetting>, path: &str) -> Result<u8, ConfigError> {
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

fn validate_app_name(app: &str, path: &str) -> Result<(), ConfigError> {
    if app.is_empty() || app.len() > MAX_APP_NAME || !app.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(ConfigError::new(
            format!("{path}.app_name"),
            "must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
        ));
    }
    Ok(())
}

/// Checks that this process can use congestion control `name` by setting
/// it on a throwaway socket (the kernel may load its module on the way; a
/// process without CAP_NET_ADMIN may use only those in
/// `net.ipv4.tcp_allowed_congestion_control`).
fn check_congestion(name: &str, path: &str) -> Result<(), ConfigError> {
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

fn reject_tls_keys(s: &SyslogSettings, path: &str) -> Result<(), ConfigError> {
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

fn tls_connector(
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
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::new(format!("{path}.key"), e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(ConfigError::new(
                format!("{path}.key"),
                "required when cert is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.cert"),
                "required when key is set",
            ))
        }
    };
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

fn root_store(
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

fn load_certs(file: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
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

fn load_key(file: &Path, key: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let f =
        File::open(file).map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", file.display())))?
        .ok_or_else(|| {
            ConfigError::new(key, format!("{}: no PEM private key found", file.display()))
        })
}

/// This machine's host name (Linux), or `-` when unknown.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity, SyslogFields};
    use serde_json::json;

    fn ctx() -> BuildContext {
        BuildContext {
            name: "s".into(),
            base_dir: PathBuf::from("/nonexistent"),
            data_dir: PathBuf::from("/nonexistent"),
        }
    }

    fn sink(src: &str) -> Result<SyslogSink, ConfigError> {
        SyslogSink::new(toml::from_str(src).expect("toml"), &ctx())
    }

    fn encoder(format: Format) -> Encoder {
        Encoder {
            format,
            facility: 16,
            hostname: "relay".into(),
            app_name: "siem-relay".into(),
            max_udp_bytes: 2048,
        }
    }

    fn batch_event(ev: &Event) -> BatchEvent {
        let enc = ev.encode();
        BatchEvent::new(1, enc.meta, enc.into_body().into())
    }

    fn encode(e: &Encoder, ev: &BatchEvent) -> String {
        let mut out = Vec::new();
        e.encode(ev, &mut out, &mut Scratch::default());
        String::from_utf8(out).expect("utf8")
    }

    /// The message through the scanner (with its fallback) and through the
    /// serde reference alone, and which reader the first one used.
    fn both_readers(e: &Encoder, ev: &BatchEvent) -> (Vec<u8>, Vec<u8>, Decoded) {
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        let used = e.encode_with(ev, &mut fast, &mut scratch, BodyReader::Scanner);
        let forced = e.encode_with(ev, &mut reference, &mut scratch, BodyReader::Serde);
        assert_eq!(forced, Decoded::Reference(None));
        (fast, reference, used)
    }

    /// What the relay writes for `line` (as ingest records it, with its
    /// syslog hint) and what it writes from the body alone, and which reader
    /// the first one used.
    fn hinted_and_body_only(e: &Encoder, line: &str) -> (Vec<u8>, Vec<u8>, Decoded, bool) {
        let origin = crate::parse::Origin {
            listener: "tcp_in",
            address: Some("10.0.0.1:514"),
            syslog_hint: true,
        };
        let rec = crate::parse::syslog_line_to_record(
            line.as_bytes(),
            1_790_000_000_000,
            chrono_tz::Tz::UTC,
            &origin,
        );
        let has_hint = !rec.hint().is_empty();
        let with = BatchEvent::with_hint(1, rec.meta, rec.body(), rec.hint());
        let without = BatchEvent::new(1, rec.meta, rec.into_body().into());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        let used = e.encode_with(&with, &mut a, &mut scratch, BodyReader::Hint);
        e.encode_with(&without, &mut b, &mut scratch, BodyReader::Serde);
        (a, b, used, has_hint)
    }

    #[test]
    fn the_syslog_hint_writes_what_the_body_says() {
        let e = encoder(Format::Syslog);
        let mut kinds = std::collections::BTreeSet::new();
        for line in [
            r#"<86>1 2026-11-23T10:00:00.123456Z host app 4242 AUTH [b@1 seq="1" x="a\"b\]c\\d"][a@1] {"seq":1,"user":"alice"}"#,
            r#"<13>1 - - - - - - plain "text" with \ and é"#,
            r#"<13>1 - h a 0042 m [x@1 a=""] {"message":"from \"json\"","k":1}"#,
            r#"<13>1 - h a p m - {"message":""}"#,
            "<13>1 - h a p m -",
        ] {
            let (hinted, body_only, used, has_hint) = hinted_and_body_only(&e, line);
            assert!(has_hint, "{line}");
            assert_eq!(used, Decoded::Hinted, "{line}");
            let rec = crate::parse::syslog_line_to_record(
                line.as_bytes(),
                1_790_000_000_000,
                chrono_tz::Tz::UTC,
                &crate::parse::Origin {
                    listener: "tcp_in",
                    address: None,
                    syslog_hint: true,
                },
            );
            kinds.insert(rec.hint()[0]);
            assert_eq!(
                String::from_utf8_lossy(&hinted),
                String::from_utf8_lossy(&body_only),
                "{line}"
            );
        }
        // both hint kinds: fields one by one (no hostname), and rendered
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), [1, 2]);
    }

    /// The generated lines must mostly carry hints, or the property test
    /// below proves little.
    #[test]
    fn generated_lines_mostly_carry_a_syslog_hint() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let e = encoder(Format::Syslog);
        let mut hinted = 0;
        for _ in 0..500 {
            let line = crate::parse::direct::tests::line()
                .new_tree(&mut runner)
                .unwrap()
                .current();
            let (a, b, used, has_hint) = hinted_and_body_only(&e, &line);
            assert_eq!(a, b, "{line}");
            if has_hint {
                assert_eq!(used, Decoded::Hinted, "{line}");
                hinted += 1;
            }
        }
        assert!(hinted > 250, "{hinted} of 500 with a hint");
    }

    #[test]
    fn a_hint_that_does_not_parse_falls_back_to_the_body() {
        let e = encoder(Format::Syslog);
        let origin = crate::parse::Origin {
            listener: "tcp_in",
            address: None,
            syslog_hint: true,
        };
        let rec = crate::parse::syslog_line_to_record(
            br#"<13>1 - h a p m [x@1 a="1"] hello"#,
            1_790_000_000_000,
            chrono_tz::Tz::UTC,
            &origin,
        );
        let mut hint = rec.hint().to_vec();
        hint[0] = 0xFF;
        let ev = BatchEvent::with_hint(1, rec.meta, rec.body(), &hint);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let used = e.encode_with(&ev, &mut a, &mut Scratch::default(), BodyReader::Hint);
        assert_eq!(used, Decoded::Fast);
        e.encode_with(&ev, &mut b, &mut Scratch::default(), BodyReader::Serde);
        assert_eq!(a, b);
        assert!(a.ends_with(br#" h a p m [x@1 a="1"] hello"#));
    }

    fn raw_event(body: &[u8]) -> BatchEvent {
        let mut ev = Event::new("SYSTEM", None, Severity::Notice);
        ev.set_timestamp_ms(1_700_000_000_123);
        let mut be = batch_event(&ev);
        be.set_body(bytes::Bytes::copy_from_slice(body));
        be
    }

    /// Bodies the canonical writer never produces: the same bytes out of
    /// both readers, and the scanner hands each to serde (or reads it, for
    /// the `Fast` ones).
    #[test]
    fn unusual_bodies_encode_like_the_reference() {
        use Fallback::*;
        let fast = Decoded::Fast;
        let serde = |why| Decoded::Reference(Some(why));
        let cases: &[(&str, Decoded)] = &[
            (r#"{}"#, fast),
            (r#"{"syslog":{}}"#, fast),
            (
                r#"{"syslog":{"hostname":"h","structured_data":{}},"message":""}"#,
                fast,
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{}}},"message":"m"}"#,
                fast,
            ),
            (r#"{"message":"a\ud83d\ude00b\u00e9\/\u0007\"\\"}"#, fast),
            (
                r#"{"message":"m","syslog":{"msgid":"i\"d","hostname":"h\u00e9 st","facility":23,"severity":7}}"#,
                fast,
            ),
            (r#"{"syslog":{"facility":24,"severity":8}}"#, fast),
            (r#"{"syslog":{"facility":0,"severity":255}}"#, fast),
            (
                r#"{"syslog":{"structured_data":{"a":{"b":true,"f":false,"n":18446744073709551615,"z":0}}}}"#,
                fast,
            ),
            (
                r#"{"syslog":{"version":1,"version":2},"message":"m"}"#,
                fast,
            ),
            (r#"{"metadata":{"k":1,"k":2},"message":"m"}"#, fast),
            (
                r#"{"metadata":{"n":1e999,"b":-0.5E+3,"c":[],"d":{},"e":[null,true]},"message":"m"}"#,
                fast,
            ),
            (r#" {"message":"m"}"#, serde(NotObject)),
            (r#"{"message":"m"} "#, serde(Syntax)),
            (
                r#"{"message" : "m", "syslog" : {"hostname" : "h"}}"#,
                serde(Syntax),
            ),
            ("{\n\"message\":\"m\"\n}", serde(Syntax)),
            (r#"{"message":"m"}x"#, serde(Syntax)),
            (r#"{"message":"m",}"#, serde(Syntax)),
            (r#"{"syslog":{"hostname":"h""#, serde(Syntax)),
            (r#"{"message":"m"#, serde(Syntax)),
            (r#"{"message":"\ud800"}"#, serde(Syntax)),
            (r#"{"message":"\udc00x"}"#, serde(Syntax)),
            (r#"{"metadata":"\ud800","message":"m"}"#, serde(Syntax)),
            (r#"{"message":"\x"}"#, serde(Syntax)),
            (r#"{"message":"\u12"}"#, serde(Syntax)),
            ("{\"message\":\"a\tb\"}", serde(Syntax)),
            (r#"{"metadata":{"n":01},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":{"n":+1},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":{"n":.5},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":tru,"message":"m"}"#, serde(Syntax)),
            (r#"[{"hostname":"h"},"m"]"#, serde(NotObject)),
            (r#""text""#, serde(NotObject)),
            (r#"null"#, serde(NotObject)),
            ("", serde(NotObject)),
            (r#"{"message":"a","message":"b"}"#, serde(DuplicateField)),
            (r#"{"syslog":{},"syslog":{}}"#, serde(DuplicateField)),
            (
                r#"{"syslog":{"procid":"1","procid":"2"}}"#,
                serde(DuplicateField),
            ),
            (
                r#"{"syslog":{"facility":1,"facility":2}}"#,
                serde(DuplicateField),
            ),
            (
                r#"{"syslog":{"structured_data":{},"structured_data":{}}}"#,
                serde(DuplicateField),
            ),
            (r#"{"mess\u0061ge":"m"}"#, serde(EscapedKey)),
            (r#"{"syslog":{"h\u006fstname":"x"}}"#, serde(EscapedKey)),
            (r#"{"message":null}"#, serde(Unsupported)),
            (r#"{"message":5}"#, serde(Unsupported)),
            (r#"{"message":["m"]}"#, serde(Unsupported)),
            (r#"{"syslog":null,"message":"m"}"#, serde(NotObject)),
            (r#"{"syslog":["h"],"message":"m"}"#, serde(NotObject)),
            (r#"{"syslog":{"facility":300}}"#, serde(Unsupported)),
            (r#"{"syslog":{"facility":-1}}"#, serde(Unsupported)),
            (r#"{"syslog":{"severity":2.0}}"#, serde(Unsupported)),
            (r#"{"syslog":{"severity":null}}"#, serde(Unsupported)),
            (r#"{"syslog":{"hostname":7}}"#, serde(Unsupported)),
            (
                r#"{"syslog":{"hostname":null},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":1.5,"m":-3,"z":0}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":1e2}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":-0}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":18446744073709551616}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":null}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":{}}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":"v"}}}"#,
                serde(Unsupported),
            ),
            (r#"{"syslog":{"structured_data":[]}}"#, serde(Unsupported)),
            (
                r#"{"syslog":{"structured_data":null},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"b":{"x":"1"},"a":{"y":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"p":"1","p":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"x":"1"},"a":{"y":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"q":"1","p":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"x":{"a#":"1","a\"b":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"x":{"a\"b":"1","a#":"2"}}},"message":"m"}"#,
                fast,
            ),
        ];
        let e = encoder(Format::Syslog);
        for (body, path) in cases {
            let (fast, reference, used) = both_readers(&e, &raw_event(body.as_bytes()));
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&reference),
                "{body}"
            );
            assert_eq!(fast, reference, "{body}");
            assert_eq!(used, *path, "{body}");
        }
        let deep = format!(
            "{{\"metadata\":{}{},\"message\":\"m\"}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let invalid = b"{\"metadata\":\"\xff\",\"message\":\"m\"}";
        for (body, why) in [(deep.as_bytes(), TooDeep), (&invalid[..], NotUtf8)] {
            let (fast, reference, used) = both_readers(&e, &raw_event(body));
            assert_eq!(fast, reference);
            assert_eq!(used, serde(why));
        }
    }

    #[test]
    fn relayed_syslog_takes_the_fast_path() {
        use crate::parse::{syslog_line_to_event, Origin};
        let origin = Origin {
            listener: "t",
            address: Some("10.1.2.3:514"),
            syslog_hint: true,
        };
        let e = encoder(Format::Syslog);
        for line in [
            &br#"<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq="1" ts_ns="2"][origin@32473 ip="10.1.2.3" software="e2e"] {"seq":1,"ts_ns":2,"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}"#[..],
            br#"<34>1 2026-11-23T14:56:08.123Z web-01 sshd 4242 LOGIN [meta@32473 user="al\"i\\ce" m="a\]b"][a x="1"] Accepted password for alice"#,
            b"<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice",
            b"<13>1 - - - - - -",
            b"not syslog at all \x01\xff",
        ] {
            let ev = syslog_line_to_event(line, 1_790_000_000_000, chrono_tz::Tz::UTC, &origin);
            let (fast, reference, used) = both_readers(&e, &batch_event(&ev));
            assert_eq!(fast, reference);
            assert_eq!(used, Decoded::Fast, "{}", String::from_utf8_lossy(line));
        }
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        let ev = syslog_line_to_event(b"<13>1 - h a - - - m", 0, chrono_tz::Tz::UTC, &origin);
        assert_eq!(
            e.encode(&batch_event(&ev), &mut out, &mut scratch),
            Decoded::Fast
        );
        assert_eq!(
            encoder(Format::Json).encode(&batch_event(&ev), &mut out, &mut scratch),
            Decoded::Unread
        );
    }

    /// Differential tests: random canonical events encode to the same bytes
    /// through the scanner and through the serde reference, the scanner (not
    /// its fallback) reads every body it is meant to, and damaged bodies
    /// still come out as the reference makes them.
    mod scanner_matches_serde {
        use super::*;
        use proptest::option::of;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "(?s).{0,12}",
                "[ -~]{0,40}",
                "[\"\\\\\\]=\\x00-\\x1f\\x7f\u{80}\u{e9}\u{2028}\u{fffd}\u{1F600} a]{0,10}",
                Just(String::new()),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            crate::event::tests::encode_matches_serde::json_value_of(text)
        }

        /// SD param values: mostly strings, as syslog input gives them.
        fn sd_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                8 => text().prop_map(Value::String),
                1 => any::<bool>().prop_map(Value::Bool),
                1 => any::<u64>().prop_map(Value::from),
                1 => (0u64..1000).prop_map(Value::from),
                1 => any::<i64>().prop_map(Value::from),
                1 => any::<f64>().prop_map(Value::from),
                1 => Just(Value::Null),
            ]
        }

        fn structured_data() -> impl Strategy<Value = Map<String, Value>> {
            let element = prop_oneof![
                9 => prop::collection::vec((text(), sd_value()), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                1 => json_value(),
            ];
            prop::collection::vec((text(), element), 0..4).prop_map(|kv| kv.into_iter().collect())
        }

        fn syslog() -> impl Strategy<Value = SyslogFields> {
            (
                (
                    of(prop_oneof![0u8..24, 20u8..=30, any::<u8>()]),
                    of(prop_oneof![0u8..8, 5u8..=12, any::<u8>()]),
                ),
                of(any::<u32>()),
                (of(text()), of(text()), of(text()), of(text())),
                structured_data(),
            )
                .prop_map(|((facility, severity), version, (h, a, p, m), sd)| {
                    SyslogFields {
                        facility,
                        severity,
                        version,
                        hostname: h,
                        app_name: a,
                        procid: p,
                        msgid: m,
                        structured_data: sd,
                    }
                })
        }

        fn event() -> impl Strategy<Value = Event> {
            (
                (
                    prop::sample::select(Severity::ALL.to_vec()),
                    -100_000_000_000_000i64..300_000_000_000_000,
                    of(text()),
                    of(text()),
                ),
                (
                    of(syslog()),
                    of(text()),
                    of(prop::collection::vec((text(), json_value()), 0..4)),
                    any::<bool>(),
                ),
            )
                .prop_map(
                    |((severity, ms, tenant, action), (syslog, message, metadata, parse_error))| {
                        let mut ev = Event::new("SECURITY", action, severity);
                        ev.set_timestamp_ms(ms);
                        ev.tenant_id = tenant;
                        ev.syslog = syslog;
                        ev.message = message;
                        ev.metadata = metadata.map(|kv| kv.into_iter().collect());
                        ev.parse_error = parse_error;
                        ev.source = Some(crate::event::SourceInfo {
                            listener: "l".into(),
                            address: Some("10.0.0.1:514".into()),
                        });
                        ev
                    },
                )
        }

        /// Whether the scanner reads this event's body itself: SD elements
        /// are objects of strings, booleans and unsigned integers.
        fn scanner_reads(ev: &Event) -> bool {
            ev.syslog.as_ref().is_none_or(|s| {
                s.structured_data.values().all(|el| match el {
                    Value::Object(params) => params.values().all(|v| match v {
                        Value::String(_) | Value::Bool(_) => true,
                        Value::Number(n) => n.is_u64(),
                        _ => false,
                    }),
                    _ => false,
                })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn same_bytes_as_the_serde_reader(ev in event()) {
                let be = batch_event(&ev);
                let e = encoder(Format::Syslog);
                let (fast, reference, used) = both_readers(&e, &be);
                prop_assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&reference)
                );
                prop_assert_eq!(&fast, &reference);
                if scanner_reads(&ev) {
                    prop_assert_eq!(used, Decoded::Fast);
                } else {
                    prop_assert!(matches!(used, Decoded::Reference(Some(_))), "{:?}", used);
                }
            }

            #[test]
            fn damaged_bodies_encode_like_the_reference(
                ev in event(),
                at in any::<prop::sample::Index>(),
                damage in prop::sample::select(vec![
                    &b""[..], b" ", b"\n", b",", b"}", b"]", b"\"", b"\\", b"\xff", b"0", b"{",
                ]),
                cut in any::<bool>(),
            ) {
                let be = batch_event(&ev);
                let i = at.index(be.body().len() + 1);
                let mut body = be.body()[..i].to_vec();
                body.extend_from_slice(damage);
                if !cut {
                    body.extend_from_slice(&be.body()[i..]);
                }
                let (fast, reference, _) =
                    both_readers(&encoder(Format::Syslog), &raw_event(&body));
                prop_assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&reference)
                );
                prop_assert_eq!(fast, reference);
            }

            #[test]
            fn the_syslog_hint_gives_the_bytes_the_body_gives(
                line in crate::parse::direct::tests::line(),
            ) {
                let (hinted, body_only, used, has_hint) =
                    hinted_and_body_only(&encoder(Format::Syslog), &line);
                prop_assert_eq!(
                    String::from_utf8_lossy(&hinted),
                    String::from_utf8_lossy(&body_only)
                );
                prop_assert_eq!(hinted, body_only);
                prop_assert_eq!(used == Decoded::Hinted, has_hint);
            }
        }
    }

    #[test]
    fn json_format_splices_the_body() {
        let mut ev = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
        ev.set_timestamp_ms(1_700_000_000_123);
        let be = batch_event(&ev);
        let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
        // local0 (16) * 8 + warning (4) = 132
        assert_eq!(
            encode(&encoder(Format::Json), &be),
            format!("<132>1 2023-11-14T22:13:20.123Z relay siem-relay - - - {body}")
        );
    }

    #[test]
    fn syslog_format_rebuilds_fields_and_escapes_sd() {
        let mut ev = Event::new("SYSTEM", None, Severity::Info);
        ev.set_timestamp_ms(0);
        let mut sd = serde_json::Map::new();
        sd.insert(
            "exampleSDID@32473".into(),
            json!({"iut": "3", "eventSource": "Ap\"p]li\\cation", "n": 5}),
        );
        ev.syslog = Some(SyslogFields {
            facility: Some(4),
            severity: Some(2),
            version: Some(1),
            hostname: Some("mymachine.example.com".into()),
            app_name: Some("su".into()),
            procid: Some("123".into()),
            msgid: Some("ID47".into()),
            structured_data: sd,
        });
        ev.message = Some("'su root' failed for lonvick on /dev/pts/8".into());
        assert_eq!(
            encode(&encoder(Format::Syslog), &batch_event(&ev)),
            "<34>1 1970-01-01T00:00:00.000Z mymachine.example.com su 123 ID47 \
             [exampleSDID@32473 eventSource=\"Ap\\\"p\\]li\\\\cation\" iut=\"3\" n=\"5\"] \
             'su root' failed for lonvick on /dev/pts/8"
        );
    }

    #[test]
    fn syslog_format_without_syslog_fields_falls_back() {
        let mut ev = Event::new("ADMIN", None, Severity::Error);
        ev.set_timestamp_ms(0);
        let be = batch_event(&ev);
        let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
        assert_eq!(
            encode(&encoder(Format::Syslog), &be),
            format!("<131>1 1970-01-01T00:00:00.000Z relay siem-relay - - - {body}")
        );
        let mut garbage = be;
        garbage.set_body(bytes::Bytes::from_static(b"{oops"));
        assert!(encode(&encoder(Format::Syslog), &garbage).ends_with(" - - - {oops"));
    }

    #[test]
    fn octet_counting_frame() {
        let mut out = Vec::new();
        frame_octet_counted("<13>1 - - - - - - h\u{e9}".as_bytes(), &mut out);
        assert_eq!(out, "21 <13>1 - - - - - - h\u{e9}".as_bytes());
        // every length around the in-place 3-digit case, after earlier frames
        for len in [0, 1, 9, 10, 99, 100, 101, 555, 999, 1000, 1001, 12345] {
            let msg = vec![b'x'; len];
            let mut out = b"7 earlier".to_vec();
            frame_octet_counted(&msg, &mut out);
            let mut want = b"7 earlier".to_vec();
            want.extend_from_slice(format!("{len} ").as_bytes());
            want.extend_from_slice(&msg);
            assert_eq!(out, want, "{len}");
        }
    }

    /// The congestion control of a connected socket.
    fn congestion(s: &TcpStream) -> String {
        let name = socket2::SockRef::from(s)
            .tcp_congestion()
            .expect("getsockopt");
        String::from_utf8_lossy(&name)
            .trim_end_matches('\0')
            .to_string()
    }

    #[tokio::test]
    async fn tcp_congestion_is_set_on_the_connection_and_the_system_default_kept_without_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let addr = listener.local_addr().unwrap();
        let system = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .expect("system default")
            .trim()
            .to_string();
        // one that differs from the system's, so the setting shows
        let other = if system == "reno" { "cubic" } else { "reno" };
        for (setting, want) in [
            (format!("\ntcp_congestion = \"{other}\""), other),
            (String::new(), system.as_str()),
        ] {
            let s = sink(&format!("address = \"{addr}\"\nmode = \"tcp\"{setting}")).expect("valid");
            match s.connect().await.expect("connect") {
                Conn::Tcp(t) => assert_eq!(congestion(&t), want, "setting {setting:?}"),
                _ => panic!("a TCP connection"),
            }
        }
    }

    #[test]
    fn tcp_congestion_is_checked_when_the_config_loads() {
        let err =
            sink("address = \"127.0.0.1:514\"\nmode = \"tcp\"\ntcp_congestion = \"no-such-cc\"")
                .err()
                .expect("unknown algorithm refused");
        let text = err.to_string();
        assert!(
            text.contains("tcp_congestion")
                && text.contains("no-such-cc")
                && text.contains("available: "),
            "{text}"
        );
        let err = sink("address = \"127.0.0.1:514\"\nmode = \"udp\"\ntcp_congestion = \"reno\"")
            .err()
            .expect("not for UDP");
        assert!(err.to_string().contains("only used with mode"), "{err}");
    }

    #[test]
    fn max_udp_rate_is_checked_when_the_config_loads() {
        let s = sink("address = \"127.0.0.1:514\"\nmode = \"udp\"\nmax_udp_rate = 5000")
            .expect("valid");
        assert_eq!(s.pace.as_ref().map(|p| p.burst()), Some(50));
        assert!(sink("address = \"127.0.0.1:514\"\nmode = \"udp\"")
            .expect("valid")
            .pace
            .is_none());
        for (setting, says) in [
            ("mode = \"udp\"\nmax_udp_rate = 0", "must be at least 1"),
            (
                "mode = \"tcp\"\nmax_udp_rate = 100",
                "only used with mode = \"udp\"",
            ),
            ("max_udp_rate = 100", "only used with mode = \"udp\""),
        ] {
            let err = sink(&format!("address = \"127.0.0.1:514\"\n{setting}"))
                .err()
                .expect("refused");
            let text = err.to_string();
            assert!(
                text.contains("max_udp_rate") && text.contains(says),
                "{setting}: {text}"
            );
        }
    }

    #[test]
    fn udp_truncation_respects_utf8() {
        let s = "ab\u{e9}\u{1F600}".as_bytes(); // 2 + 2 + 4 bytes
        assert_eq!(utf8_floor(s, 100), 8);
        assert_eq!(utf8_floor(s, 3), 2);
        assert_eq!(utf8_floor(s, 4), 4);
        assert_eq!(utf8_floor(s, 7), 4);
    }

    #[test]
    fn settings_defaults_and_errors() {
        let s = sink("address = \"127.0.0.1:514\"\nmode = \"udp\"").expect("valid");
        assert_eq!(s.encoder.facility, 16);
        assert_eq!(s.encoder.app_name, "siem-relay");
        assert_eq!(s.target(), "syslog+udp://127.0.0.1:514");
        let s = sink("address = \"localhost:6514\"").expect("tls with webpki roots");
        assert_eq!(s.mode, Mode::Tls);
        assert_eq!(
            sink("address = \"h:1\"\nmode = \"tcp\"\nfacility = \"audit\"")
                .expect("ok")
                .encoder
                .facility,
            13
        );
        for (src, key) in [
            ("address = \"nohost\"", "destinations.s.address"),
            ("address = \"h:0\"", "destinations.s.address"),
            (
                "address = \"h:1\"\nfacility = 24",
                "destinations.s.facility",
            ),
            (
                "address = \"h:1\"\nfacility = \"local9\"",
                "destinations.s.facility",
            ),
            (
                "address = \"h:1\"\nmode = \"tcp\"\nca = \"x.pem\"",
                "destinations.s.ca",
            ),
            (
                "address = \"h:1\"\nca = \"missing.pem\"",
                "destinations.s.ca",
            ),
            ("address = \"h:1\"\ncert = \"c.pem\"", "destinations.s.key"),
            (
                "address = \"h:1\"\nmax_udp_bytes = 100",
                "destinations.s.max_udp_bytes",
            ),
            (
                "address = \"h:1\"\napp_name = \"a b\"",
                "destinations.s.app_name",
            ),
            ("address = \"h:1\"\nmode = \"sctp\"", "destinations.s.mode"),
            ("address = \"h:1\"\nbogus = 1", "destinations.s"),
        ] {
            let e = sink(src).err().unwrap_or_else(|| panic!("{src} must fail"));
            assert!(e.path.starts_with(key), "{src}: {e}");
        }
    }
}
