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
//! `app_name` (default `siem-relay`), `hostname` (default this machine's
//! host name: HOSTNAME where the relay writes the header), `max_udp_bytes` (default 2048, the size
//! RFC 5426 says receivers SHOULD accept), `max_udp_rate` (UDP only:
//! datagrams per second at most, sent in bursts of 10 ms of the rate; default
//! no limit), `timeout` (connect and write,
//! default `10s`), `tcp_congestion` (TCP and TLS: the connection's
//! congestion control, such as `"cubic"`; default the system's. Checked
//! when the config loads.)
//!
//! With `format = "syslog"` each body is read by the allocation-free scanner
//! in [`view`]; bodies it does not fully handle go to the serde reader
//! (`SyslogView`), the reference it is tested against, with the same output.
//!
//! MSG is sent without a BOM (RFC 5424 `MSG-ANY`): most SIEM parsers do not
//! strip it. A UDP message longer than `max_udp_bytes` is truncated at a UTF-8
//! boundary and counted (`siem_relay_syslog_truncated_total`), never dropped.
//! A batch's datagrams go out with `sendmmsg(2)`, up to 1024 a system call
//! ([`datagrams`]).
//!
//! The parts: [`settings`] (keys, checks, TLS setup), [`encode`] (the
//! messages and their frames), [`view`] (the body scanner), [`datagrams`]
//! (UDP sends and pacing), [`conn`] (connection liveness and close); this
//! file is the sink that ties them together.
//!
//! One persistent connection per destination. Before a batch is written on a
//! reused stream, the socket is checked for a peer close (EOF, reset, or a
//! TLS `close_notify`) so a restarted server gets a fresh connection instead
//! of a write into a dead socket. A failed connect or write drops the
//! connection and answers `Delivery::Retry`; the next send reconnects.

mod conn;
pub mod datagrams;
mod encode;
mod settings;
pub(crate) mod view;

use crate::config::{table_into, ConfigError};
use crate::destinations::{Batch, BuildContext, Delivery, Sink};
use conn::{half_close, is_alive, tls_settle, with_timeout, write_flush, Conn, TransportError};
use datagrams::{Datagrams, Pace};
use encode::{local_hostname, push_octet_counted, utf8_floor, Encoder};
use futures::future::BoxFuture;
use rustls::pki_types::ServerName;
use settings::*;
use std::io::ErrorKind;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use view::Scratch;

pub use encode::BodyReader;
pub use settings::{Format, Mode};

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

/// How long a new TLS 1.3 connection waits at least and at most for the
/// server's first records (see [`conn::tls_settle`]): about as long as
/// the handshake took, which is two round trips.
const SETTLE_MIN: Duration = Duration::from_millis(20);
const SETTLE_MAX: Duration = Duration::from_secs(1);

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
        if let Some(h) = &s.hostname {
            validate_hostname(h, &path)?;
        }
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
                hostname: s.hostname.clone().unwrap_or_else(local_hostname),
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
            if let Err(why) = is_alive(conn) {
                // TCP has no acknowledgements: what the peer had not read
                // when it closed (the end of the last batch) may be lost,
                // and no one can say how much (README: "What syslog over
                // TCP cannot promise")
                tracing::warn!(destination = %self.name, reason = %why, "syslog peer closed the connection (the end of the last batch may not have been read); reconnecting");
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
        out.reserve(frames_capacity(batch, reader));
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
                let began = std::time::Instant::now();
                let mut tls = with_timeout(self.timeout, "TLS handshake", async {
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|source| TransportError::Handshake {
                            addr: self.address.clone(),
                            source,
                        })
                })
                .await?;
                if tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                    // the server's answer to our Finished takes about a
                    // round trip; the handshake took two
                    let wait = began.elapsed().clamp(SETTLE_MIN, SETTLE_MAX);
                    tls_settle(&mut tls, wait)
                        .await
                        .map_err(|reason| TransportError::Refused {
                            addr: self.address.clone(),
                            reason,
                        })?;
                }
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }
}

/// About the bytes the frames of `batch` take: a hinted event's frame is
/// its hint (the line as it came) and a length; one rebuilt from its body
/// (no hint, or another reader) the body as MSG at most, plus the header
/// and the structured data. Reserving only the bodies plus 96 bytes an
/// event, rebuilt frames grew the vector by reallocation, 5.5% of their
/// encoding (`encoders` bench, `syslog_scanner`).
fn frames_capacity(batch: &Batch, reader: BodyReader) -> usize {
    batch
        .events
        .iter()
        .map(|ev| match reader {
            BodyReader::Hint if !ev.hint().is_empty() => ev.hint().len() + 8,
            _ => ev.body().len() + 256,
        })
        .sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
        assert_eq!(
            sink("address = \"h:1\"\nmode = \"tcp\"\nhostname = \"edge-7.example\"")
                .expect("ok")
                .encoder
                .hostname,
            "edge-7.example"
        );
        assert_eq!(s.encoder.hostname, local_hostname(), "default");
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
            // the file given is checked before the pair rule (`validate`
            // lists both)
            ("address = \"h:1\"\ncert = \"c.pem\"", "destinations.s.cert"),
            (
                "address = \"h:1\"\nmax_udp_bytes = 100",
                "destinations.s.max_udp_bytes",
            ),
            (
                "address = \"h:1\"\napp_name = \"a b\"",
                "destinations.s.app_name",
            ),
            (
                "address = \"h:1\"\nhostname = \"edge 7\"",
                "destinations.s.hostname",
            ),
            (
                "address = \"h:1\"\nhostname = \"\"",
                "destinations.s.hostname",
            ),
            ("address = \"h:1\"\nmode = \"sctp\"", "destinations.s.mode"),
            ("address = \"h:1\"\nbogus = 1", "destinations.s"),
        ] {
            let e = sink(src).err().unwrap_or_else(|| panic!("{src} must fail"));
            assert!(e.path.starts_with(key), "{src}: {e}");
        }
        // a readable cert without its key: the pair rule names the key
        let d = tempfile::tempdir().unwrap();
        let cert = d.path().join("c.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let self_signed = rcgen::CertificateParams::new(vec!["relay".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&cert, self_signed.pem()).unwrap();
        let src = format!("address = \"h:1\"\ncert = \"{}\"", cert.display());
        let e = sink(&src).err().expect("a cert without its key");
        assert!(e.path.starts_with("destinations.s.key"), "{e}");
        assert!(e.to_string().contains("required when cert is set"), "{e}");
    }
}
