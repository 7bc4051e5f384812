//! The stream-syslog machinery TCP and TLS share: the accept loop (connection
//! limit, optional TLS handshake) and the per-connection handler (RFC 6587
//! framer → parse → normalise → `Ingest::append`, idle timeout). A busy
//! connection's reads are parsed by tasks of their own, a few reads ahead,
//! and appended in the order they were read by a task of their own too
//! ([`Appender`]), while the connection reads on.
//!
//! `Ingest::append` may wait while the ring blocks; once a connection holds
//! [`IN_FLIGHT`] reads not yet in the ring the handler stops reading, which
//! is the TCP backpressure the sender sees. When a connection ends (EOF,
//! an I/O error such as a TLS peer gone without `close_notify`, the idle
//! timeout), a last line without its LF is kept; at shutdown, a piece of a
//! line is counted as dropped. A line or frame of nothing but spaces, tabs,
//! line ends and NULs makes no event ([`super::is_blank`], as for a UDP
//! datagram) and is not counted.

use super::log_limit::{Warnings, SUMMARY_CHECK};
use super::metrics::SourceMetrics;
use super::parse_ahead::{ParseAhead, ParseFailed};
use super::read_budget::{Held, ReadBudget};
use super::stream_append::{deliver, Appender};
use super::tls::LiveTls;
use super::{is_blank, shutdown_signal, Ingest};
use crate::event::now_millis;
use crate::event::EncodedEvent;
use crate::parse::{
    syslog_line_to_event, syslog_line_to_record, syslog_text_to_record, Frame, FrameRef, FrameSpan,
    Framer, FramerConfig, Origin,
};
use bytes::BufMut;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_BUF: usize = 64 * 1024;

/// Everything a connection handler needs, shared by all connections of a source.
pub(crate) struct StreamShared {
    pub name: String,
    pub ingest: Arc<dyn Ingest>,
    pub timezone: chrono_tz::Tz,
    pub framer: FramerConfig,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// What all connections together may hold between reading and the ring.
    pub budget: Arc<ReadBudget>,
    pub metrics: SourceMetrics,
    /// Connection problems worth an operator's eye (a failed TLS handshake,
    /// an oversized frame, a connection ended inside a frame), logged at
    /// `warn` a few at a time (with [`warning_text`]).
    pub warnings: Warnings,
}

/// What a rate-limited warning's line says, by its `reason` (the one its
/// counter is labelled with).
pub(crate) fn warning_text(reason: &str) -> &'static str {
    match reason {
        "tls_handshake" => "TLS handshake failed",
        "tls_handshake_timeout" => "TLS handshake timed out",
        "oversize" => "frame longer than max_message_bytes",
        "incomplete_frame" => {
            "connection ended inside an octet-counted frame; its piece is dropped"
        }
        "buffer_error" => {
            "the buffer refused an append; the source's reads wait and it is tried again"
        }
        "too_large" => {
            "an event is too large for a ring segment (raise [buffer] segment_bytes); it alone is dropped"
        }
        _ => "connection problem",
    }
}

/// Accepts connections until shutdown; each runs [`handle_connection`],
/// after a TLS handshake when `tls` is set.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<StreamShared>,
    tls: Option<Arc<LiveTls>>,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.max_connections));
    let mut conns = JoinSet::new();
    let stop = shutdown_signal(shutdown.clone());
    tokio::pin!(stop);
    // the rate-limited warnings' summaries are written within a second of
    // their window's end
    let mut summaries = tokio::time::interval(SUMMARY_CHECK);
    summaries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (sock, peer) = tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = summaries.tick() => {
                shared.warnings.summarise(false);
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(source = %shared.name, error = %e, "accept failed");
                    shared.metrics.connection_error("accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.metrics.connection_error("max_connections");
            drop(sock);
            continue;
        };
        let (shared, tls, shutdown) = (shared.clone(), tls.clone(), shutdown.clone());
        conns.spawn(async move {
            shared.metrics.connection_opened();
            run_connection(sock, peer, &shared, tls, shutdown).await;
            shared.metrics.connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    shared.warnings.summarise(true);
}

async fn run_connection(
    sock: TcpStream,
    peer: SocketAddr,
    shared: &Arc<StreamShared>,
    tls: Option<Arc<LiveTls>>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = sock.set_nodelay(true);
    let Some(tls) = tls else {
        return handle_connection(sock, peer, shared, shutdown).await;
    };
    // the configuration current now: a reload may renew it meanwhile
    let acceptor = tls.acceptor();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
        Ok(Ok(stream)) => handle_connection(stream, peer, shared, shutdown).await,
        Ok(Err(e)) => {
            let error = super::tls::handshake_failure(&e);
            shared
                .warnings
                .warn("tls_handshake", &peer.to_string(), error);
            shared.metrics.connection_error("tls_handshake");
        }
        Err(_) => {
            let waited = format!("no handshake within {}s", HANDSHAKE_TIMEOUT.as_secs());
            shared
                .warnings
                .warn("tls_handshake_timeout", &peer.to_string(), waited);
            shared.metrics.connection_error("tls_handshake_timeout");
        }
    }
}

/// How a connection ended.
enum End {
    Eof,
    Shutdown,
    Idle,
    Io,
    IngestClosed,
    ParseFailed,
}

/// Reads frames from one connection until EOF, error, idle timeout or
/// shutdown, then closes it cleanly.
///
/// The frames of each read go into a [`Chunk`] in the framer's own buffer,
/// handed over without a copy ([`Framer::take_framed`]: only an unfinished
/// frame moves to the framer's next buffer). A small chunk with nothing in
/// flight is parsed right here; a larger one is parsed by a task of its
/// own while this one reads on, up to [`PARSE_AHEAD`] chunks ahead, so one
/// busy connection keeps every core parsing instead of one (parsing is
/// most of ingest's CPU). Chunks are
/// appended in the order they were read (by the [`Appender`], so reading
/// goes on meanwhile), and nothing read is dropped at the
/// end: whatever is in flight when the connection ends (EOF, an error,
/// shutdown) is still appended.
pub(crate) async fn handle_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    shared: &Arc<StreamShared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut c = Connection {
        framer: Framer::new(shared.framer),
        ahead: ParseAhead::new(PARSE_AHEAD),
        appender: Appender::spawn(shared.clone()),
        origin: Arc::new(ConnOrigin {
            listener: shared.name.clone(),
            address: peer.to_string(),
            timezone: shared.timezone,
        }),
    };
    // a read framed but not parsed yet: the source's budget is spent
    let mut waiting: Option<(Framed, WaitingShare)> = None;
    let stop = shutdown_signal(shutdown);
    tokio::pin!(stop);
    let end = loop {
        // reads not yet in the ring, parsing or queued, stay within IN_FLIGHT
        let room = c.ahead.len() + c.appender.queued() < IN_FLIGHT;
        let reading = room && c.ahead.has_room() && waiting.is_none();
        let read = tokio::select! {
            biased;
            _ = &mut stop => break End::Shutdown,
            parsed = c.ahead.next() => {
                match parsed {
                    Ok((batch, held)) => {
                        if !c.appender.append(shared, batch, held).await {
                            break End::IngestClosed;
                        }
                    }
                    Err(failed) => break parse_failed(shared, failed),
                }
                continue;
            }
            held = async { waiting.as_mut().expect("checked").1.as_mut().await }, if waiting.is_some() => {
                let (read, _) = waiting.take().expect("checked");
                if !c.dispatch(read, held, shared).await {
                    break End::IngestClosed;
                }
                continue;
            }
            // everything is queued for the appender: read again once it has room
            _ = c.appender.appended(), if !room && c.ahead.is_empty() => continue,
            r = async {
                // reads go straight into the framer's buffer: no copy of what
                // is read (made ready here, only when reading: it may move
                // the framed bytes a waiting read still refers to)
                let mut buf = c.framer.receive_buffer(READ_BUF).limit(READ_BUF);
                tokio::time::timeout(shared.idle_timeout, stream.read_buf(&mut buf)).await
            }, if reading => r,
        };
        match read {
            Err(_) => break End::Idle,
            Ok(Err(_)) => break End::Io,
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(_)) => {}
        }
        let frames = frame_spans(&mut c.framer, shared, &c.origin.address);
        if frames.is_empty() {
            continue;
        }
        let read = Framed {
            frames,
            received_ms: now_millis(),
        };
        let bytes = c.framer.framed().len();
        match shared.budget.try_hold(bytes) {
            Some(held) => {
                if !c.dispatch(read, held, shared).await {
                    break End::IngestClosed;
                }
            }
            None => waiting = Some((read, Box::pin(shared.budget.hold(bytes)))),
        }
    };
    let mut end = drain_in_flight(end, &mut c.ahead, &c.appender, shared).await;
    if let Some((read, _)) = waiting {
        // read before the end: appended all the same, without waiting for
        // the budget (the connection is ending; this is its last read)
        if !c.dispatch(read, shared.budget.nothing(), shared).await {
            end = End::IngestClosed;
        }
        end = drain_in_flight(end, &mut c.ahead, &c.appender, shared).await;
    }
    let Connection {
        mut framer,
        appender,
        origin,
        ..
    } = c;
    let end = match appender.finish().await {
        true => end,
        false => End::IngestClosed,
    };
    finish(end, &mut framer, shared, &origin).await;
    // Sends TLS close_notify (RFC 5425 §4.4) / FIN; the peer may be gone already.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// A read's share of the source's budget, once it is free.
type WaitingShare = Pin<Box<dyn Future<Output = Held> + Send>>;

/// The complete frames of one read, still in the framer's buffer.
struct Framed {
    /// Each frame's range in [`Framer::framed`], and whether it was truncated.
    frames: Vec<(Range<usize>, bool)>,
    /// The frames of one read share its receive time.
    received_ms: i64,
}

/// What one connection works with besides its stream.
struct Connection {
    framer: Framer,
    /// Parse tasks, each with its read's share of the source's budget.
    ahead: ParseAhead<Held>,
    appender: Appender,
    origin: Arc<ConnOrigin>,
}

impl Connection {
    /// Parses a read's frames, holding `held` of the source's budget until
    /// its records are in the ring: in place when it is small and nothing is
    /// in flight (and appends them), else on a task of its own. False when
    /// the ingest is closed (the connection should end).
    async fn dispatch(&mut self, read: Framed, held: Held, shared: &StreamShared) -> bool {
        let hints = shared.ingest.syslog_hints();
        if !self.ahead.worth_spawning(read.frames.len()) {
            // parsed where they lie in the framer's buffer
            let records = parse_frames(
                self.framer.framed(),
                &read.frames,
                read.received_ms,
                &self.origin,
                hints,
            );
            return self.appender.append(shared, records, held).await;
        }
        // the buffer goes to the parse task; the framer keeps the unframed rest
        let chunk = Chunk {
            bytes: self.framer.take_framed(READ_BUF),
            frames: read.frames,
            received_ms: read.received_ms,
        };
        let origin = self.origin.clone();
        self.ahead
            .spawn(chunk.frames.len(), chunk.bytes.len(), held, move || {
                parse_frames(
                    &chunk.bytes,
                    &chunk.frames,
                    chunk.received_ms,
                    &origin,
                    hints,
                )
            });
        true
    }
}

/// Reads parsed ahead of the one being appended, per connection.
const PARSE_AHEAD: usize = 3;

/// Reads not yet in the ring (parsing, or queued for the appender), per
/// connection, which bounds what one connection holds while the ring
/// blocks: three parsing, one appending and one more. Unbounded, the
/// appender's queue on top of the parse tasks let a connection hold 7; at 4
/// (the bound before the appender, three parsing and one appending) the
/// reader was mostly back to waiting for the append, and tcp_syslog lost
/// most of what the appender gained (A/B in benches/HISTORY.md).
const IN_FLIGHT: usize = PARSE_AHEAD + 2;

/// Where a connection's events come from, owned so parse tasks can share it.
struct ConnOrigin {
    listener: String,
    address: String,
    timezone: chrono_tz::Tz,
}

impl ConnOrigin {
    fn origin(&self, syslog_hint: bool) -> Origin<'_> {
        Origin {
            listener: &self.listener,
            address: Some(&self.address),
            syslog_hint,
        }
    }
}

/// The complete frames of one read, in the framer's buffer handed over
/// ([`Framer::take_framed`]).
struct Chunk {
    bytes: Vec<u8>,
    /// Each frame's range in `bytes`, and whether it was truncated.
    frames: Vec<(Range<usize>, bool)>,
    /// The frames of one read share its receive time.
    received_ms: i64,
}

/// The records of `frames` (ranges in `bytes`), in order.
///
/// When all of `bytes` is UTF-8 (one SIMD pass over the read), a frame
/// whose ends are character boundaries is UTF-8 too and skips its own
/// check (per line, that check was 1.6% of tcp_syslog's samples; per read,
/// 0.2%).
fn parse_frames(
    bytes: &[u8],
    frames: &[(Range<usize>, bool)],
    received_ms: i64,
    conn: &ConnOrigin,
    syslog_hint: bool,
) -> Vec<EncodedEvent> {
    let origin = conn.origin(syslog_hint);
    let text = simdutf8::basic::from_utf8(bytes).ok();
    frames
        .iter()
        .map(
            |(range, truncated)| match text.and_then(|t| t.get(range.clone())) {
                Some(line) if !truncated => {
                    syslog_text_to_record(line, received_ms, conn.timezone, &origin)
                }
                _ => frame_record(
                    &bytes[range.clone()],
                    *truncated,
                    received_ms,
                    conn.timezone,
                    &origin,
                ),
            },
        )
        .collect()
}

/// Appends what is still in flight when the connection's loop ends, in
/// order, so that nothing read is lost. Returns how the connection ended
/// (a failed parse or a closed ingest replaces `end`).
async fn drain_in_flight(
    mut end: End,
    ahead: &mut ParseAhead<Held>,
    appender: &Appender,
    shared: &StreamShared,
) -> End {
    let mut closed = false;
    while !ahead.is_empty() {
        match ahead.next().await {
            Ok((batch, held)) if !closed => {
                if !appender.append(shared, batch, held).await {
                    closed = true;
                    end = End::IngestClosed;
                }
            }
            Ok((batch, _)) => shared.metrics.dropped("shutdown", batch.len() as u64),
            Err(failed) => end = parse_failed(shared, failed),
        }
    }
    end
}

/// A parse task that panicked (a bug): its frames are counted as dropped
/// and the connection ends.
fn parse_failed(shared: &StreamShared, failed: ParseFailed) -> End {
    tracing::error!(source = %shared.name, error = %failed.error, frames = failed.frames, "parsing a read's frames failed; they are dropped");
    shared.metrics.dropped("parse_failed", failed.frames as u64);
    End::ParseFailed
}

/// Handles the end of a connection: its last unterminated frame, and counters.
async fn finish(end: End, framer: &mut Framer, shared: &StreamShared, conn: &ConnOrigin) {
    let (keep_last_line, reason) = match end {
        End::Eof => (true, None),
        End::Idle => (true, Some("idle_timeout")),
        End::Io => (true, Some("io")),
        // the relay closes the connection mid-stream: what it holds of a
        // line is most likely a piece of one (its rest is still on its way)
        End::Shutdown => (false, None),
        // the ring is closing: there is nowhere to put it
        End::IngestClosed => (false, Some("ingest_closed")),
        End::ParseFailed => (false, Some("parse_failed")),
    };
    if let Some(reason) = reason {
        shared.metrics.connection_error(reason);
    }
    if !keep_last_line {
        if matches!(end, End::Shutdown) && framer.finish().is_some() {
            shared.metrics.dropped("shutdown", 1);
        }
        return;
    }
    // what was read before the end is the sender's: a last line without
    // its LF (on TLS also when the peer left without `close_notify`,
    // which rustls reports as an error after the data it authenticated)
    match framer.finish() {
        Some(Ok(Frame::Message(line))) if is_blank(&line) => {}
        Some(Ok(frame)) => {
            let record = kept_bytes(frame.as_ref(), shared, &conn.address).map(|(b, truncated)| {
                let origin = conn.origin(shared.ingest.syslog_hints());
                frame_record(b, truncated, now_millis(), conn.timezone, &origin)
            });
            deliver(shared, Vec::from_iter(record)).await;
        }
        Some(Err(e)) => {
            shared.warnings.warn("incomplete_frame", &conn.address, &e);
            shared.metrics.connection_error("incomplete_frame");
            shared.metrics.dropped("incomplete_frame", 1);
        }
        None => {}
    }
}

/// The complete frames in the framer, as ranges of [`Framer::framed`] with
/// their truncation flag (counting oversized ones). A blank frame (a line
/// or an octet-counted frame of nothing but spaces, tabs, line ends and
/// NULs: [`is_blank`]) is left out: it makes no event, as a blank UDP
/// datagram makes none. A truncated frame is kept whatever its first bytes
/// are (its rest was not looked at).
fn frame_spans(
    framer: &mut Framer,
    shared: &StreamShared,
    peer: &str,
) -> Vec<(Range<usize>, bool)> {
    // sized for lines of ~128 bytes (the list would otherwise grow ~8 times per read)
    let mut frames = Vec::with_capacity(framer.pending() / 128 + 1);
    while let Some(next) = framer.next_frame_span() {
        match next {
            FrameSpan::Message(r) if is_blank(&framer.framed()[r.clone()]) => {}
            FrameSpan::Message(r) => frames.push((r, false)),
            FrameSpan::Truncated(r) => {
                oversized(shared, peer, None);
                frames.push((r, true));
            }
            FrameSpan::Skipped(n) => oversized(shared, peer, Some(n)),
        }
    }
    frames
}

/// Counts (and warns of) an oversized frame: truncated, or `skipped` bytes dropped.
fn oversized(shared: &StreamShared, peer: &str, skipped: Option<usize>) {
    shared.metrics.oversized();
    let max = shared.framer.max_message_bytes;
    match skipped {
        None => shared.warnings.warn(
            "oversize",
            peer,
            format_args!("truncated to its first {max} bytes"),
        ),
        Some(n) => {
            shared.metrics.dropped("oversize", 1);
            shared.warnings.warn(
                "oversize",
                peer,
                format_args!("{n} bytes skipped (more than {max})"),
            );
        }
    }
}

/// The bytes of a frame to keep and whether they were truncated, counting
/// an oversized frame (and a skipped one as dropped).
fn kept_bytes<'f>(
    frame: FrameRef<'f>,
    shared: &StreamShared,
    peer: &str,
) -> Option<(&'f [u8], bool)> {
    match frame {
        FrameRef::Message(b) => Some((b, false)),
        FrameRef::Truncated(b) => {
            oversized(shared, peer, None);
            Some((b, true))
        }
        FrameRef::Skipped(n) => {
            oversized(shared, peer, Some(n));
            None
        }
    }
}

/// The record of one frame; a truncated one is marked in its metadata.
pub(crate) fn frame_record(
    bytes: &[u8],
    truncated: bool,
    received_ms: i64,
    timezone: chrono_tz::Tz,
    origin: &Origin,
) -> EncodedEvent {
    if !truncated {
        return syslog_line_to_record(bytes, received_ms, timezone, origin);
    }
    let mut ev = syslog_line_to_event(bytes, received_ms, timezone, origin);
    ev.metadata
        .get_or_insert_with(Default::default)
        .insert("truncated".into(), Value::Bool(true));
    ev.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::sources::log_limit::{Admit, Warned};

    /// Each record's message and whether it took the direct path (a hint).
    fn read(records: &[EncodedEvent]) -> Vec<(Option<String>, bool)> {
        records
            .iter()
            .map(|r| {
                let ev = Event::decode(r.body()).unwrap();
                (ev.message, !r.hint().is_empty())
            })
            .collect()
    }

    /// A stream whose reads are counted.
    struct Counted<S> {
        inner: S,
        read: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            let n = buf.filled().len() - before;
            self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            r
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// Polls `f` every 20 ms until it gives the same value 10 times running.
    async fn settled(f: impl Fn() -> usize) -> usize {
        let (mut last, mut same) = (usize::MAX, 0);
        while same < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = f();
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    }

    /// Line `i` of connection `c`: all lines are [`LINE_LEN`] bytes.
    fn line(c: usize, i: usize) -> String {
        format!("<13>1 - host app - - - {c}-{i:06} {:>150}\n", "pad")
    }
    const LINE_LEN: usize = 183;

    /// One connection over an in-memory stream: the sender's end, and the
    /// handler's task.
    fn open(
        shared: &Arc<StreamShared>,
        shutdown: watch::Receiver<bool>,
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let shared = shared.clone();
        let handler = tokio::spawn(async move {
            let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
            handle_connection(theirs, peer, &shared, shutdown).await
        });
        (ours, handler)
    }

    /// Connections over in-memory streams, from [`connect`].
    struct Conns {
        /// Each connection's count of bytes its handler read.
        read: Vec<Arc<std::sync::atomic::AtomicUsize>>,
        handlers: Vec<tokio::task::JoinHandle<()>>,
        /// The senders, which keep their stream open until done.
        senders: Vec<tokio::task::JoinHandle<tokio::io::DuplexStream>>,
    }

    /// `conns` connections over in-memory streams, each sending `lines`
    /// lines in writes of many (so the handler's reads are full), then EOF.
    fn connect(
        conns: usize,
        lines: usize,
        shared: &Arc<StreamShared>,
        shutdown: &watch::Receiver<bool>,
    ) -> Conns {
        let (mut read, mut handlers, mut senders) = (Vec::new(), Vec::new(), Vec::new());
        for c in 0..conns {
            let (mut ours, theirs) = tokio::io::duplex(64 << 10);
            let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            read.push(count.clone());
            let stream = Counted {
                inner: theirs,
                read: count,
            };
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
            handlers.push(tokio::spawn(async move {
                handle_connection(stream, peer, &shared, shutdown).await
            }));
            senders.push(tokio::spawn(async move {
                let mut batch = Vec::new();
                for i in 0..lines {
                    batch.extend_from_slice(line(c, i).as_bytes());
                    if batch.len() >= 60_000 || i + 1 == lines {
                        if ours.write_all(&batch).await.is_err() {
                            break; // the handler ended (shutdown)
                        }
                        batch.clear();
                    }
                }
                let _ = ours.shutdown().await;
                ours
            }));
        }
        Conns {
            read,
            handlers,
            senders,
        }
    }

    /// The line numbers the ingest took from connection `c`, in order.
    fn took_from(ingest: &crate::sources::gated_ingest::Gated, c: usize) -> Vec<usize> {
        let prefix = format!("{c}-");
        ingest
            .calls
            .lock()
            .unwrap()
            .concat()
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix))
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The ingest took lines `0..n` of connection `c`, each once, in order.
    fn assert_took_lines(ingest: &crate::sources::gated_ingest::Gated, c: usize, n: usize) {
        assert_eq!(
            took_from(ingest, c),
            (0..n).collect::<Vec<_>>(),
            "connection {c}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_stop_reading_once_the_source_budget_is_spent() {
        use crate::sources::gated_ingest::{shared, Gated};
        use std::sync::atomic::Ordering;
        const CONNS: usize = 8;
        const LINES: usize = 20_000;
        const BUDGET: usize = 128 << 10;
        assert_eq!(line(0, 0).len(), LINE_LEN);
        // a ring that blocks: nothing is taken until permits are added
        let ingest = Gated::new(0, Duration::ZERO, false);
        let shared = shared(ingest.clone(), BUDGET);
        let (_stop, shutdown) = watch::channel(false);
        let Conns {
            read,
            handlers,
            senders,
        } = connect(CONNS, LINES, &shared, &shutdown);
        let total_read = settled(|| read.iter().map(|r| r.load(Ordering::Relaxed)).sum()).await;
        let held = shared.budget.held();
        assert!(held > 0 && held <= BUDGET, "held {held}");
        // beyond the budget, each connection holds at most the read that
        // waits for its share (and a partial line in the framer); without
        // the budget it would be up to 5 reads of 64 KiB each
        let bound = BUDGET + CONNS * (READ_BUF + LINE_LEN);
        assert!(
            total_read <= bound,
            "read {total_read} bytes while the ring blocks; bound {bound}"
        );
        // the ring takes batches again: every line arrives, each
        // connection's in order, and the budget is all given back
        ingest.permits.add_permits(1 << 20);
        for s in senders {
            let _keep_open_until_read = s.await.unwrap();
        }
        for h in handlers {
            h.await.unwrap();
        }
        assert_eq!(shared.budget.held(), 0);
        for c in 0..CONNS {
            assert_took_lines(&ingest, c, LINES);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_shutdown_a_read_waiting_for_the_budget_is_still_appended() {
        use crate::sources::gated_ingest::{shared, Gated};
        use std::sync::atomic::Ordering;
        const CONNS: usize = 4;
        // a budget smaller than one read: every connection but one waits
        let ingest = Gated::new(0, Duration::ZERO, false);
        let shared = shared(ingest.clone(), 1);
        let (stop, shutdown) = watch::channel(false);
        let Conns {
            read,
            handlers,
            senders,
        } = connect(CONNS, 20_000, &shared, &shutdown);
        settled(|| read.iter().map(|r| r.load(Ordering::Relaxed)).sum()).await;
        // shutdown, and the ring takes batches again: every whole line read
        // is appended, in order (the partial one at the end is not a frame)
        stop.send(true).unwrap();
        ingest.permits.add_permits(1 << 20);
        for h in handlers {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("the handler ends")
                .unwrap();
        }
        for s in senders {
            s.abort();
        }
        assert_eq!(shared.budget.held(), 0);
        for (c, r) in read.iter().enumerate() {
            let whole = r.load(Ordering::Relaxed) / LINE_LEN;
            assert!(whole > 0);
            assert_took_lines(&ingest, c, whole);
        }
    }

    /// An oversized frame (truncated or skipped) and a connection that ends
    /// inside an octet-counted frame are warned of under their reason,
    /// rate-limited: the first of each is logged, the next ones counted for
    /// the summary, with their peer.
    #[tokio::test]
    async fn framing_problems_are_warned_of_under_their_reason() {
        use crate::parse::Oversize;
        use crate::sources::gated_ingest::{shared, Gated};
        let ingest = Gated::new(1 << 20, Duration::ZERO, false);
        let mut s = Arc::into_inner(shared(ingest, 1 << 20)).unwrap();
        s.framer.max_message_bytes = 16;
        let truncating = Arc::new(s);
        let (_stop, shutdown) = watch::channel(false);
        let (mut ours, handler) = open(&truncating, shutdown.clone());
        // three oversized lines and one cut short by the end of the stream
        let long = format!("<13>1 - h app - - - {}\n", "x".repeat(40));
        ours.write_all(long.repeat(3).as_bytes()).await.unwrap();
        ours.write_all(b"100 <13>1 - h app").await.unwrap();
        ours.shutdown().await.unwrap();
        handler.await.unwrap();
        // the first incomplete frame was logged: the next one is only counted
        let next = || Warned {
            peer: "p".into(),
            error: "e".into(),
        };
        let incomplete = truncating.warnings.limiter.admit("incomplete_frame", next);
        assert_eq!(incomplete, Admit::Quiet);
        let summaries = truncating.warnings.limiter.flush();
        let got: Vec<_> = summaries
            .iter()
            .map(|s| (s.reason, s.suppressed, s.last.peer.as_str()))
            .collect();
        assert_eq!(
            got,
            [("incomplete_frame", 1, "p"), ("oversize", 2, "127.0.0.1:1")]
        );
        assert!(
            summaries[1]
                .last
                .error
                .contains("truncated to its first 16 bytes"),
            "{summaries:?}"
        );

        let mut s =
            Arc::into_inner(shared(Gated::new(1 << 20, Duration::ZERO, false), 1 << 20)).unwrap();
        s.framer.max_message_bytes = 16;
        s.framer.oversize = Oversize::Skip;
        let skipping = Arc::new(s);
        let (mut ours, handler) = open(&skipping, shutdown);
        ours.write_all(long.repeat(2).as_bytes()).await.unwrap();
        ours.write_all(b"100 <13>1 - h app").await.unwrap();
        ours.shutdown().await.unwrap();
        handler.await.unwrap();
        let summaries = skipping.warnings.limiter.flush();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!(summaries[0].reason, "oversize");
        assert_eq!(summaries[0].suppressed, 1);
        assert!(
            summaries[0].last.error.contains("bytes skipped"),
            "{summaries:?}"
        );
    }

    /// A line or an octet-counted frame of nothing but spaces, tabs, line
    /// ends and NULs makes no event, as a blank UDP datagram makes none: in
    /// a read of blank lines only, among other frames, and as the last line
    /// at the end of the stream (each became an empty `parse_error` event).
    #[tokio::test]
    async fn blank_lines_and_frames_make_no_events() {
        use crate::sources::gated_ingest::{shared, Gated};
        let ingest = Gated::new(1 << 20, Duration::ZERO, false);
        let shared = shared(ingest.clone(), 1 << 20);
        let (_stop, shutdown) = watch::channel(false);
        let (mut ours, handler) = open(&shared, shutdown);
        ours.write_all(b"   \n\t\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        ours.write_all(b"<13>1 - h app - - - one\n \0\t\r\n4 \t\0 \x0c\n")
            .await
            .unwrap();
        ours.write_all(b"<13>1 - h app - - - two\n \t\r")
            .await
            .unwrap();
        ours.shutdown().await.unwrap();
        handler.await.unwrap();
        assert_eq!(ingest.calls.lock().unwrap().concat(), ["one", "two"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_append_ends_the_connection_not_its_task() {
        use crate::sources::gated_ingest::{shared, Gated};
        let ingest = Gated::panicking();
        let shared = shared(ingest.clone(), 1 << 20);
        let (_stop, shutdown) = watch::channel(false);
        // a few lines: appended in place, on the connection's own task
        let (mut ours, handler) = open(&shared, shutdown);
        ours.write_all(line(0, 0).as_bytes()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), handler)
            .await
            .expect("the connection ends")
            .expect("without its task panicking");
        assert_eq!(ingest.calls.lock().unwrap().len(), 1);
        // and through the appender's task (reads large enough to queue)
        let Conns {
            handlers, senders, ..
        } = connect(2, 20_000, &shared, &watch::channel(false).1);
        for h in handlers {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("the connection ends")
                .expect("without its task panicking");
        }
        for s in senders {
            s.abort();
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever the line sizes, the way the sender's writes split them
        /// and the source's budget (down to less than one read), every line
        /// reaches the ring once, in order.
        #[test]
        fn every_line_arrives_in_order_whatever_the_writes_and_the_budget(
            lengths in proptest::collection::vec(0usize..400, 1..600),
            writes in proptest::collection::vec(1usize..70_000, 1..40),
            budget in 1usize..200_000,
        ) {
            use crate::sources::gated_ingest::{shared, Gated};
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let n = lengths.len();
            let took = rt.block_on(async move {
                let ingest = Gated::new(1 << 20, Duration::ZERO, false);
                let shared = shared(ingest.clone(), budget);
                let (_stop, shutdown) = watch::channel(false);
                let (mut ours, handler) = open(&shared, shutdown);
                let mut bytes = Vec::new();
                for (i, len) in lengths.iter().enumerate() {
                    bytes.extend_from_slice(format!("<13>1 - h a - - - {i} {}\n", "x".repeat(*len)).as_bytes());
                }
                let mut at = 0;
                for w in writes.iter().cycle() {
                    if at == bytes.len() {
                        break;
                    }
                    let end = (at + w).min(bytes.len());
                    ours.write_all(&bytes[at..end]).await.unwrap();
                    at = end;
                }
                ours.shutdown().await.unwrap();
                tokio::time::timeout(Duration::from_secs(20), handler)
                    .await
                    .expect("the connection ends")
                    .unwrap();
                assert_eq!(shared.budget.held(), 0);
                let took: Vec<usize> = ingest
                    .calls
                    .lock()
                    .unwrap()
                    .concat()
                    .iter()
                    .map(|m| m.split(' ').next().unwrap().parse().unwrap())
                    .collect();
                took
            });
            proptest::prop_assert_eq!(took, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_read_checked_as_a_whole_gives_the_records_of_each_frame_checked_alone() {
        let conn = ConnOrigin {
            listener: "t".into(),
            address: "127.0.0.1:1".into(),
            timezone: chrono_tz::Tz::UTC,
        };
        let line = "<13>1 - h a p m - caf\u{e9} \u{1f600} end";
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let mut frame = |bytes: &mut Vec<u8>, b: &[u8], truncated: bool| {
            let at = bytes.len();
            bytes.extend_from_slice(b);
            frames.push((at..bytes.len(), truncated));
            bytes.push(b'\n');
        };
        frame(&mut bytes, line.as_bytes(), false);
        frame(&mut bytes, line.as_bytes(), true);
        // a frame whose end cuts a character (as an octet count can)
        let cut = line.len() - 5;
        assert!(!line.is_char_boundary(cut));
        frame(&mut bytes, &line.as_bytes()[..cut], false);
        frame(&mut bytes, b"<13>1 - h a p m - plain", false);
        let alone = |bytes: &[u8], frames: &[(Range<usize>, bool)]| -> Vec<EncodedEvent> {
            frames
                .iter()
                .map(|(r, t)| {
                    frame_record(&bytes[r.clone()], *t, 5, conn.timezone, &conn.origin(true))
                })
                .collect()
        };
        let whole = parse_frames(&bytes, &frames, 5, &conn, true);
        assert_eq!(read(&whole), read(&alone(&bytes, &frames)));
        let got = read(&whole);
        assert_eq!(got[0], (Some("caf\u{e9} \u{1f600} end".into()), true));
        assert!(!got[1].1, "a truncated frame takes the general path");
        assert!(
            got[2].0.as_deref().unwrap().ends_with('\u{fffd}'),
            "{got:?}"
        );
        assert_eq!(got[3], (Some("plain".into()), true));

        // a read that is not UTF-8 as a whole: each frame checked alone
        let mut bad = bytes.clone();
        bad.extend_from_slice(b"\xff\n");
        let whole = parse_frames(&bad, &frames, 5, &conn, true);
        assert_eq!(read(&whole), read(&alone(&bad, &frames)));
    }
}
