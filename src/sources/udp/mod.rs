//! `syslog_udp`: syslog over UDP (RFC 5426), one message per datagram.
//!
//! Sockets are made with socket2: SO_REUSEPORT (so `sockets = N` receive
//! sockets can share the port and the kernel spreads datagrams over them), a
//! large SO_RCVBUF (`recv_buffer_bytes`, default 8MiB), and SO_RXQ_OVFL so the
//! kernel reports how many datagrams it dropped on a full receive queue.
//! Datagrams are read in batches with `recvmmsg(2)` ([`batch`]); if the
//! kernel does not support it, one `recv_from` at a time.
//!
//! Receiving and the rest are split: the sockets are read by a thread of
//! their own ([`receive_thread`], [`receive`]) that only copies each batch
//! out of the receive buffers and queues it, and while datagrams flow
//! reads in naps of 1 ms rather than on every arrival; per socket, an [`Appender`] task on the
//! main runtime parses the batches (several at once, [`ParseAhead`]) and
//! appends them in the order received. Up to `queue_bytes` per socket wait
//! in between, so a burst the cores cannot parse in real time waits in
//! memory instead of overflowing the kernel queue; beyond that the receive
//! loop pauses and the kernel queue fills (and drops, counted). One
//! sender's datagrams all hash to the same SO_REUSEPORT socket, so this
//! split, not more sockets, is what spreads a single busy sender over the
//! cores. UDP has no backpressure: when the ring refuses a batch, it is
//! dropped and counted (a failing buffer is also warned of, a few lines at
//! a time: [`Warnings`]).
//!
//! The receive thread runs at nice -10 where the process may raise its
//! priority, or at `receive_nice` ([`set_receive_priority`]): on busy cores
//! the kernel queue overflows while it waits its turn.
//!
//! Only safe code here: `recvmmsg`, poll(2), SO_RXQ_OVFL and its control
//! message go through nix's safe wrappers.

mod batch;
mod receive;

use super::log_limit::Warnings;
use super::metrics::SourceMetrics;
use super::parse_ahead::{ParseAhead, ParseFailed};
use super::{is_blank, resolve, Ingest, IngestError, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigError, SectionConfig};
use crate::event::{buffers, EncodedEvent};
use crate::parse::{syslog_line_to_record, Origin};
use nix::sys::socket::{setsockopt, sockopt};
use receive::Receiver;
use serde::Deserialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// `[sources.NAME]` with `type = "syslog_udp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub address: String,
    /// SO_RCVBUF per socket (default 8MiB; the kernel may cap it at `net.core.rmem_max`).
    #[serde(default = "default_recv_buffer")]
    pub recv_buffer_bytes: ByteSize,
    /// Receive sockets sharing the port via SO_REUSEPORT (default 1).
    #[serde(default = "default_sockets")]
    pub sockets: usize,
    /// Received datagrams each socket may hold while they wait to be parsed
    /// (default 8MiB): a burst beyond what the cores parse in real time
    /// waits here instead of overflowing the kernel queue.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: ByteSize,
    /// The receive thread's nice value (default -10 where permitted, else
    /// the process's; see [`set_receive_priority`]).
    #[serde(default)]
    pub receive_nice: Option<i32>,
}

fn default_recv_buffer() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_sockets() -> usize {
    1
}
fn default_queue_bytes() -> ByteSize {
    ByteSize(8 << 20)
}

impl Settings {
    pub fn from_section(section: &SectionConfig) -> Result<Self, ConfigError> {
        let s: Settings = section.settings()?;
        if s.sockets == 0 || s.sockets > 256 {
            return Err(ConfigError::new(
                format!("{}.sockets", section.path()),
                "must be between 1 and 256",
            ));
        }
        if s.receive_nice.is_some_and(|n| !(-20..=19).contains(&n)) {
            return Err(ConfigError::new(
                format!("{}.receive_nice", section.path()),
                "must be between -20 and 19",
            ));
        }
        Ok(s)
    }
}

/// Binds the sockets and starts their receive loops on a thread of their
/// own (see [`receive_thread`]).
pub fn start(
    name: &str,
    settings: Settings,
    ctx: SourceContext,
) -> Result<(SocketAddr, JoinHandle<()>), SourceError> {
    let bind_err = |source| SourceError::Bind {
        name: name.to_string(),
        address: settings.address.clone(),
        source,
    };
    let mut addr = resolve(name, &settings.address)?;
    let mut sockets = Vec::with_capacity(settings.sockets);
    for _ in 0..settings.sockets {
        let sock = bind_socket(addr, settings.recv_buffer_bytes.0).map_err(bind_err)?;
        addr = sock.local_addr().map_err(bind_err)?;
        sockets.push(sock);
    }
    let metrics = SourceMetrics::new(name);
    let warnings = Arc::new(Warnings::new(name, warning_text));
    let name = Arc::<str>::from(name);
    let mut appenders = Vec::with_capacity(sockets.len());
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|sock| {
            let queue = Arc::new(Queue::new(
                settings.queue_bytes.0.min(usize::MAX as u64) as usize
            ));
            let (to_appender, chunks) = mpsc::unbounded_channel();
            let appender = Appender {
                warnings: warnings.clone(),
                ingest: ctx.ingest.clone(),
                metrics: metrics.clone(),
                queue: queue.clone(),
            };
            appenders.push(tokio::spawn(appender.run(chunks)));
            Receiver::new(
                name.clone(),
                ctx.timezone,
                metrics.clone(),
                sock,
                queue,
                to_appender,
            )
        })
        .collect();
    let count = receivers.len();
    let thread = receive_thread(
        &name,
        receivers,
        settings.receive_nice,
        ctx.shutdown.clone(),
    )
    .map_err(bind_err)?;
    tracing::info!(source = %name, address = %addr, sockets = count, "listening (udp)");
    let task = tokio::spawn(async move {
        warnings
            .summarising(async move {
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("a UDP receive thread panicked");
                }
                // the receive loops have ended: the appenders finish what they received
                for a in appenders {
                    let _ = a.await;
                }
            })
            .await
    });
    Ok((addr, task))
}

/// Runs the receive loops of a source's sockets on a thread of their own
/// ([`receive::run`]); their appenders run on the main runtime.
///
/// Why a thread: the kernel drops datagrams once a socket's queue is full,
/// so the receive loop must run as soon as datagrams arrive. As a task of
/// the main runtime it waited behind parse and append work whenever the
/// cores were busy, and a burst overflowed the queue while the same CPU
/// time would have sufficed; a thread that mostly sleeps in the kernel is
/// woken promptly by the OS scheduler (the way rsyslog's imudp thread is).
fn receive_thread(
    name: &str,
    receivers: Vec<Receiver>,
    nice: Option<i32>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let source = name.to_string();
    std::thread::Builder::new()
        .name(format!("siem-udp-{name}"))
        .spawn(move || {
            set_receive_priority(&source, nice);
            receive::run(receivers, shutdown)
        })
}

/// The receive thread's nice value when `receive_nice` is not set.
const DEFAULT_RECEIVE_NICE: i32 = -10;

/// Gives the calling thread (a receive thread) the nice value `nice`, or
/// [`DEFAULT_RECEIVE_NICE`] if unset. When the cores are busy, the kernel
/// queue overflows while this thread waits its turn behind the relay's own
/// parse and delivery threads and whatever else runs. On the e2e bench
/// (with a `queue_bytes` for the whole run), one unpaced sender lost 19–31%
/// of its datagrams at nice 0 and nothing at -10. Since the thread naps between reads ([`receive`]), -10 costs no
/// more CPU than nice 0 at moderate rates (woken on every arrival, it had
/// cost twice as much at 50k/s). A lower nice value needs `CAP_SYS_NICE`
/// (or an `RLIMIT_NICE` that allows it): without it the thread keeps the
/// process's, with a warning when `receive_nice` asked for it and a note
/// when the default did.
fn set_receive_priority(source: &str, nice: Option<i32>) {
    let tid = rustix::thread::gettid();
    let (value, asked) = match nice {
        Some(n) => (n, true),
        None => (DEFAULT_RECEIVE_NICE, false),
    };
    match rustix::process::setpriority_process(Some(tid), value) {
        Ok(()) => tracing::debug!(source, nice = value, "UDP receive thread priority set"),
        Err(e) if asked => tracing::warn!(source, nice = value, error = %e,
            "cannot set the UDP receive thread's nice value (lowering it needs CAP_SYS_NICE)"),
        Err(e) => tracing::info!(source, nice = value, error = %e,
            "the UDP receive thread runs at the process's priority: with CAP_SYS_NICE (or LimitNICE) it would run at nice -10 and keep up better on busy cores"),
    }
}

/// A non-blocking, SO_REUSEPORT UDP socket bound to `addr`.
fn bind_socket(addr: SocketAddr, recv_buffer: u64) -> io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    set_recv_buffer(&sock, recv_buffer.min(i32::MAX as u64 / 2) as usize);
    enable_rxq_ovfl(&sock);
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock.into())
}

/// Sets SO_RCVBUF to `want` bytes. The kernel caps it at
/// `net.core.rmem_max`; with CAP_NET_ADMIN, SO_RCVBUFFORCE goes past the cap.
/// A smaller buffer than asked for is logged (bursts beyond it are dropped
/// by the kernel, counted through SO_RXQ_OVFL).
fn set_recv_buffer(sock: &Socket, want: usize) {
    if let Err(e) = sock.set_recv_buffer_size(want) {
        tracing::warn!(error = %e, "cannot set SO_RCVBUF");
    }
    // Linux reports twice the value set (bookkeeping overhead included)
    let got = || sock.recv_buffer_size().unwrap_or(0) / 2;
    if got() < want {
        let _ = setsockopt(sock, sockopt::RcvBufForce, &want);
    }
    if got() < want {
        tracing::warn!(
            requested = want,
            granted = got(),
            "UDP receive buffer smaller than recv_buffer_bytes: raise net.core.rmem_max (sysctl) or run with CAP_NET_ADMIN"
        );
    }
}

/// Asks the kernel to report receive-queue drops (Linux SO_RXQ_OVFL).
fn enable_rxq_ovfl(sock: &Socket) {
    if let Err(e) = setsockopt(sock, sockopt::RxqOvfl, &1) {
        tracing::debug!(error = %e, "SO_RXQ_OVFL not available; kernel drops are not counted");
    }
}

/// Input received and not yet appended, shared by a socket's receive loop
/// and its [`Appender`].
struct Queue {
    bytes: AtomicUsize,
    /// `queue_bytes`: how much may wait before the receive loop pauses.
    limit: usize,
}

impl Queue {
    fn new(limit: usize) -> Self {
        Queue {
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Acquire) < self.limit
    }

    fn hold(&self, n: usize, metrics: &SourceMetrics) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
        metrics.queued(n as f64);
    }

    fn release(&self, n: usize, metrics: &SourceMetrics) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        metrics.queued(-(n as f64));
    }
}

/// One socket's other half, on the main runtime: parses the received
/// chunks (several at once, [`ParseAhead`]) and appends them in the order
/// they were received.
struct Appender {
    /// The source's rate-limited warnings, shared by its sockets.
    warnings: Arc<Warnings>,
    ingest: Arc<dyn Ingest>,
    metrics: SourceMetrics,
    queue: Arc<Queue>,
}

impl Appender {
    async fn run(self, mut chunks: mpsc::UnboundedReceiver<Chunk>) {
        let mut ahead: ParseAhead = ParseAhead::new(PARSE_AHEAD);
        let mut open = true;
        while open || !ahead.is_empty() {
            let held = ahead.bytes();
            tokio::select! {
                biased;
                parsed = ahead.next() => {
                    self.deliver_parsed(parsed.map(|(events, ())| events)).await;
                    self.queue.release(held - ahead.bytes(), &self.metrics);
                }
                chunk = chunks.recv(), if open && ahead.has_room() => match chunk {
                    Some(chunk) if !ahead.worth_spawning(chunk.datagrams.len()) => {
                        self.deliver(chunk.parse(self.ingest.syslog_hints())).await;
                        self.queue.release(chunk.bytes.len(), &self.metrics);
                    }
                    Some(chunk) => {
                        let hints = self.ingest.syslog_hints();
                        ahead.spawn(chunk.datagrams.len(), chunk.bytes.len(), (), move || chunk.parse(hints))
                    }
                    None => open = false,
                },
            }
        }
    }

    async fn deliver_parsed(&self, parsed: Result<Vec<EncodedEvent>, ParseFailed>) {
        match parsed {
            Ok(events) => self.deliver(events).await,
            Err(failed) => {
                tracing::error!(source = %self.warnings.source(), error = %failed.error, datagrams = failed.frames, "parsing received datagrams failed; they are dropped");
                self.metrics.dropped("parse_failed", failed.frames as u64);
            }
        }
    }

    /// Appends a chunk's events; a ring held by a `block` destination
    /// refuses them at once (counted: a UDP sender cannot be slowed down),
    /// a busy writer is waited for without blocking the thread. An event
    /// too large for a ring segment is dropped alone: the chunk's others
    /// are then appended one by one.
    async fn deliver(&self, events: Vec<EncodedEvent>) {
        if events.is_empty() {
            return;
        }
        let Some(events) = self.append(events).await else {
            return;
        };
        for event in events {
            if let Some(one) = self.append(vec![event]).await {
                self.metrics.dropped("too_large", 1);
                buffers::give_back(one);
            }
        }
    }

    /// Appends `events`, counting them as accepted or dropped; gives them
    /// back, not stored, when one of them is too large for a segment.
    async fn append(&self, events: Vec<EncodedEvent>) -> Option<Vec<EncodedEvent>> {
        let (events, appended) = self.ingest.try_append_owned(events).await;
        match appended {
            // no acknowledgement to withhold: the ring logged the flush error
            Ok(()) | Err(IngestError::NotDurable(_)) => self.metrics.accepted(&events),
            Err(IngestError::Full(_)) => self.metrics.dropped("buffer_full", events.len() as u64),
            Err(IngestError::Closed) => self.metrics.dropped("shutdown", events.len() as u64),
            Err(IngestError::TooLarge(e)) => {
                if events.len() == 1 {
                    self.warnings.warn("too_large", "-", e);
                }
                return Some(events);
            }
            Err(e @ IngestError::Failed(_)) => {
                self.metrics.dropped("buffer_error", events.len() as u64);
                self.warnings.warn("buffer_error", "-", e);
            }
        }
        buffers::give_back(events);
        None
    }
}

/// What a rate-limited warning's line says, by its `reason`: as from the
/// stream sources, but a UDP sender cannot be made to wait, so a batch the
/// buffer refuses is dropped (and counted), not tried again.
fn warning_text(reason: &str) -> &'static str {
    match reason {
        "buffer_error" => "the buffer refused an append; the datagrams are dropped (counted in dropped_total{reason=\"buffer_error\"})",
        other => super::stream::warning_text(other),
    }
}

/// Parse tasks in flight per socket.
const PARSE_AHEAD: usize = 4;
/// A chunk goes to the appender once it holds this many datagrams…
const FLUSH_DATAGRAMS: usize = 128;
/// … or this long after its first one: handing over every few datagrams
/// cost two thread wake-ups each at moderate rates (measured: 50k
/// datagrams/s took 1.5× the CPU per event before chunks lingered). 4 ms
/// rather than 1: the relay's CPU per event at 50k/s fell by 15–20%
/// (alternating runs on the e2e bench: 3.18–3.58 µs → 2.70–3.04), with the
/// same p50 latency (the destinations' batching is the larger wait); at
/// 200k/s, where chunks fill before they linger, no difference beyond
/// noise. 8 ms saved a little more at 50k/s but looked worse at 200k/s.
const LINGER: Duration = Duration::from_millis(4);

/// The datagrams of one receive, copied out of the receive buffers so that
/// any worker can parse them.
struct Chunk {
    listener: Arc<str>,
    timezone: chrono_tz::Tz,
    received_ms: i64,
    bytes: Vec<u8>,
    /// Each datagram's range in `bytes` and its sender (index into `peers`).
    datagrams: Vec<(Range<usize>, Option<usize>)>,
    peers: Vec<Arc<str>>,
}

impl Chunk {
    /// The records of the chunk's datagrams, in order (with syslog hints
    /// when `syslog_hint`). A datagram of nothing but line ends, NULs and
    /// spaces carries no message and makes no event ([`is_blank`]), as a
    /// blank TCP line or frame makes none.
    fn parse(&self, syslog_hint: bool) -> Vec<EncodedEvent> {
        self.datagrams
            .iter()
            .filter(|(range, _)| !is_blank(&self.bytes[range.clone()]))
            .map(|(range, peer)| {
                let origin = Origin {
                    listener: &self.listener,
                    address: peer.map(|i| &*self.peers[i]),
                    syslog_hint,
                };
                syslog_line_to_record(
                    &self.bytes[range.clone()],
                    self.received_ms,
                    self.timezone,
                    &origin,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};
    use crate::sources::log_limit::Warned;
    use futures::future::BoxFuture;

    #[test]
    fn blank_datagrams_make_no_events() {
        let datagrams: [&[u8]; 5] = [b"", b"\n", b"\0\r\n", b"<13>1 - h a - - - hi", b"  \t"];
        let mut bytes = Vec::new();
        let mut ranges = Vec::new();
        for d in datagrams {
            ranges.push((bytes.len()..bytes.len() + d.len(), None));
            bytes.extend_from_slice(d);
        }
        let chunk = Chunk {
            listener: "udp".into(),
            timezone: chrono_tz::UTC,
            received_ms: 0,
            bytes,
            datagrams: ranges,
            peers: Vec::new(),
        };
        let records = chunk.parse(false);
        assert_eq!(records.len(), 1);
        let ev = Event::decode(records[0].body()).unwrap();
        assert_eq!(ev.message.as_deref(), Some("hi"));
    }

    /// A buffer whose every append fails (a disk error).
    struct FailingBuffer;

    impl Ingest for FailingBuffer {
        fn try_append(&self, _: &[EncodedEvent]) -> Result<(), IngestError> {
            Err(IngestError::Failed("disk I/O error".into()))
        }

        fn append(&self, _: Vec<EncodedEvent>) -> BoxFuture<'_, crate::sources::Appended> {
            unreachable!("UDP does not wait for the buffer")
        }
    }

    /// A buffer that fails drops each batch (a UDP sender cannot be made
    /// to wait), counted; only the first failure is logged, the others are
    /// counted for the window's summary, not logged one by one.
    #[tokio::test]
    async fn a_failing_buffer_is_warned_of_once_a_window_and_its_batches_counted() {
        let warnings = Arc::new(Warnings::new("udp-test", warning_text));
        let appender = Appender {
            warnings: warnings.clone(),
            ingest: Arc::new(FailingBuffer),
            metrics: SourceMetrics::new("udp-test"),
            queue: Arc::new(Queue::new(1 << 20)),
        };
        let batch = |n: usize| -> Vec<EncodedEvent> {
            (0..n)
                .map(|_| Event::new("SYSTEM", None, Severity::Info).encode())
                .collect()
        };
        for n in [3, 1, 4, 2] {
            appender.deliver(batch(n)).await;
        }
        // the first was logged: the three after it wait for the summary
        let summaries = warnings.limiter.flush();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!(summaries[0].reason, "buffer_error");
        assert_eq!(summaries[0].suppressed, 3);
        assert_eq!(
            summaries[0].last,
            Warned {
                peer: "-".into(),
                error: "buffer error: disk I/O error".into()
            }
        );
        assert!(warning_text("buffer_error").contains("dropped"));
        assert_eq!(
            warning_text("too_large"),
            super::super::stream::warning_text("too_large")
        );
    }

    #[tokio::test]
    async fn receive_buffer_goes_past_rmem_max_with_cap_net_admin() {
        let want = 16 << 20;
        let sock = bind_socket("127.0.0.1:0".parse().unwrap(), want as u64).unwrap();
        let granted = socket2::SockRef::from(&sock).recv_buffer_size().unwrap() / 2;
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if nix::unistd::geteuid().is_root() {
            assert!(
                granted >= want,
                "root gets SO_RCVBUFFORCE: granted {granted} of {want}"
            );
        } else {
            // without the capability the kernel's cap applies
            assert!(
                granted >= want.min(rmem_max),
                "granted {granted}, rmem_max {rmem_max}"
            );
        }
    }

    /// The receive thread gets the configured nice value, or -10 by
    /// default, where the process may lower it (root, or CAP_SYS_NICE), and
    /// keeps its own otherwise.
    #[test]
    fn the_receive_thread_gets_its_nice_value_when_permitted() {
        let nice_of_thread = |nice: Option<i32>| {
            std::thread::spawn(move || {
                set_receive_priority("test", nice);
                rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
            })
            .join()
            .unwrap()
        };
        let before = rustix::process::getpriority_process(None).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(nice_of_thread(None), DEFAULT_RECEIVE_NICE, "the default");
            assert_eq!(nice_of_thread(Some(-5)), -5);
        } else {
            assert_eq!(
                nice_of_thread(None),
                before,
                "unchanged without the capability"
            );
            assert_eq!(
                nice_of_thread(Some(-5)),
                before,
                "unchanged without the capability"
            );
        }
        // a higher value needs no privilege
        assert_eq!(nice_of_thread(Some(7)), 7);
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            before,
            "only the receive thread changes, not the process"
        );
    }
}
