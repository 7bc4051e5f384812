//! The `syslog` destination's connection: TCP, TLS or UDP, the check that a
//! reused stream is still open before a batch goes out, and the orderly
//! close (half-close, then read until the server closes too).

use futures::FutureExt;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;

/// A transport failure (the batch is retried).
#[derive(Debug, Error)]
pub(super) enum TransportError {
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
pub(super) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

/// Half-closes `s` within `t` (TLS: `close_notify` first), then [`linger`]s.
pub(super) async fn half_close<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    t: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    let result = tokio::time::timeout(t, s.shutdown()).await;
    linger(s).await;
    result
}

/// How long [`linger`] waits for the server to close its side.
pub(super) const LINGER: Duration = Duration::from_secs(1);

/// After our half-close, reads and drops what the server still sends
/// (TLS 1.3 session tickets, a banner, anything) until it closes too, or
/// [`LINGER`] passes. Closing a socket with unread bytes makes the kernel
/// abort the connection with RST, and an abort discards what it has not
/// yet transmitted: the tail of the last batch, which `write_all` counted
/// as sent and the relay as delivered.
pub(super) async fn linger<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
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

pub(super) async fn with_timeout<T, E>(
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

pub(super) async fn write_flush<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    buf: &[u8],
) -> std::io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}

/// Whether a reused connection still looks open. Syslog servers send
/// nothing, so readable bytes on the socket are EOF, a reset, or TLS records
/// (session tickets are fine; a `close_notify` means closed).
pub(super) fn is_alive(conn: &mut Conn) -> bool {
    match conn {
        Conn::Udp(_) => true,
        Conn::Tcp(s) => tcp_alive(s),
        Conn::Tls(s) => tls_alive(s),
    }
}

/// What a non-blocking peek at the raw socket shows.
pub(super) enum Peek {
    Nothing,
    Data,
    Closed,
}

pub(super) fn peek(s: &TcpStream) -> Peek {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(s).peek(&mut buf) {
        Ok(0) => Peek::Closed,
        Ok(_) => Peek::Data,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Peek::Nothing,
        Err(_) => Peek::Closed,
    }
}

pub(super) fn tcp_alive(s: &TcpStream) -> bool {
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

pub(super) fn tls_alive(s: &mut TlsStream<TcpStream>) -> bool {
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
