//! The stream-syslog machinery TCP and TLS share: the accept loop (connection
//! limit, optional TLS handshake) and the per-connection handler (RFC 6587
//! framer → parse → normalise → `Ingest::append`, idle timeout).
//!
//! `Ingest::append` may wait while the ring blocks; the handler stops reading
//! meanwhile, which is the TCP backpressure the sender sees. A framing
//! violation ends only the connection it happened on.

use super::metrics::SourceMetrics;
use super::{shutdown_signal, Ingest};
use crate::event::now_millis;
use crate::event::EncodedEvent;
use crate::parse::{
    syslog_line_to_event, syslog_line_to_record, FrameRef, Framer, FramerConfig, FramingError,
    Origin,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

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
    pub metrics: SourceMetrics,
}

/// Accepts connections until shutdown; each runs [`handle_connection`],
/// after a TLS handshake when `tls` is set.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<StreamShared>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.max_connections));
    let mut conns = JoinSet::new();
    let stop = shutdown_signal(shutdown.clone());
    tokio::pin!(stop);
    loop {
        let (sock, peer) = tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
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
}

async fn run_connection(
    sock: TcpStream,
    peer: SocketAddr,
    shared: &StreamShared,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = sock.set_nodelay(true);
    let Some(acceptor) = tls else {
        return handle_connection(sock, peer, shared, shutdown).await;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
        Ok(Ok(stream)) => handle_connection(stream, peer, shared, shutdown).await,
        Ok(Err(e)) => {
            tracing::debug!(source = %shared.name, %peer, error = %e, "TLS handshake failed");
            shared.metrics.connection_error("tls_handshake");
        }
        Err(_) => shared.metrics.connection_error("tls_handshake_timeout"),
    }
}

/// How a connection ended.
enum End {
    Eof,
    Shutdown,
    Idle,
    Io,
    Framing(FramingError),
    IngestClosed,
}

/// Reads frames from one connection until EOF, error, idle timeout or
/// shutdown, then closes it cleanly.
pub(crate) async fn handle_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    shared: &StreamShared,
    shutdown: watch::Receiver<bool>,
) {
    let peer_text = peer.to_string();
    let origin = Origin {
        listener: &shared.name,
        address: Some(&peer_text),
    };
    let mut framer = Framer::new(shared.framer);
    let mut buf = vec![0u8; READ_BUF];
    let stop = shutdown_signal(shutdown);
    tokio::pin!(stop);
    let end = loop {
        let read = tokio::select! {
            _ = &mut stop => break End::Shutdown,
            r = tokio::time::timeout(shared.idle_timeout, stream.read(&mut buf)) => r,
        };
        let n = match read {
            Err(_) => break End::Idle,
            Ok(Err(_)) => break End::Io,
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        let (batch, violation) = drain_frames(&mut framer, shared, &origin);
        if !deliver(shared, &batch).await {
            break End::IngestClosed;
        }
        if let Some(e) = violation {
            break End::Framing(e);
        }
    };
    finish(end, &mut framer, shared, &origin).await;
    // Sends TLS close_notify (RFC 5425 §4.4) / FIN; the peer may be gone already.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Handles the end of a connection: the last unterminated frame at EOF, and counters.
async fn finish(end: End, framer: &mut Framer, shared: &StreamShared, origin: &Origin<'_>) {
    let reason = match end {
        End::Eof => match framer.finish() {
            Some(Ok(frame)) => {
                let batch: Vec<_> = frame_event(frame.as_ref(), now_millis(), shared, origin)
                    .into_iter()
                    .collect();
                deliver(shared, &batch).await;
                None
            }
            Some(Err(_)) => Some("incomplete_frame"),
            None => None,
        },
        End::Shutdown => None,
        End::Idle => Some("idle_timeout"),
        End::Io => Some("io"),
        End::Framing(e) => {
            tracing::debug!(source = %shared.name, peer = ?origin.address, error = %e, "framing violation");
            Some("framing")
        }
        End::IngestClosed => Some("ingest_closed"),
    };
    if let Some(reason) = reason {
        shared.metrics.connection_error(reason);
    }
}

/// All complete frames in the framer, as encoded events, and the framing
/// violation that stopped it, if any.
fn drain_frames(
    framer: &mut Framer,
    shared: &StreamShared,
    origin: &Origin,
) -> (Vec<EncodedEvent>, Option<FramingError>) {
    let mut batch = Vec::new();
    // the frames of one read share its receive time
    let received_ms = now_millis();
    while let Some(next) = framer.next_frame_ref() {
        match next {
            Ok(frame) => batch.extend(frame_event(frame, received_ms, shared, origin)),
            Err(e) => return (batch, Some(e)),
        }
    }
    (batch, None)
}

/// The event of one frame (none for a skipped one).
fn frame_event(
    frame: FrameRef<'_>,
    received_ms: i64,
    shared: &StreamShared,
    origin: &Origin,
) -> Option<EncodedEvent> {
    let (bytes, truncated) = match frame {
        FrameRef::Message(b) => (b, false),
        FrameRef::Truncated(b) => {
            shared.metrics.oversized();
            (b, true)
        }
        FrameRef::Skipped(_) => {
            shared.metrics.oversized();
            shared.metrics.dropped("oversize", 1);
            return None;
        }
    };
    if !truncated {
        return Some(syslog_line_to_record(
            bytes,
            received_ms,
            shared.timezone,
            origin,
        ));
    }
    let mut ev = syslog_line_to_event(bytes, received_ms, shared.timezone, origin);
    ev.metadata
        .get_or_insert_with(Default::default)
        .insert("truncated".into(), Value::Bool(true));
    Some(ev.encode())
}

/// Appends a batch, waiting while the ring blocks. False when the ingest is
/// closed (the connection should end).
async fn deliver(shared: &StreamShared, batch: &[EncodedEvent]) -> bool {
    if batch.is_empty() {
        return true;
    }
    match shared.ingest.append(batch).await {
        Ok(()) => {
            shared.metrics.accepted(batch);
            true
        }
        Err(super::IngestError::Closed) => {
            shared.metrics.dropped("shutdown", batch.len() as u64);
            false
        }
        Err(e) => {
            tracing::warn!(source = %shared.name, error = %e, "append failed");
            shared.metrics.dropped("buffer_error", batch.len() as u64);
            true
        }
    }
}
