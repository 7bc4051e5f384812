//! The `syslog` destination's connection: TCP, TLS or UDP, the check that a
//! reused stream is still open before a batch goes out, and the orderly
//! close (half-close, then read until the server closes too).

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
    #[error("TLS handshake with {addr}: {}", handshake_problem(source))]
    Handshake {
        addr: String,
        source: std::io::Error,
    },
    #[error("the TLS server at {addr} ended the connection after the handshake: {reason} (does it want a client certificate? see `cert` and `key`)")]
    Refused { addr: String, reason: String },
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

/// A failed handshake in words (see [`tls_problem`](crate::destinations::tls_problem)).
fn handshake_problem(e: &std::io::Error) -> String {
    crate::destinations::tls_problem::of_error(e).unwrap_or_else(|| e.to_string())
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

/// Whether a reused connection still looks open: `Err` says why not.
/// Syslog servers send nothing, so readable bytes on the socket are EOF, a
/// reset, or TLS records (session tickets are fine; a `close_notify` or an
/// alert means closed).
pub(super) fn is_alive(conn: &mut Conn) -> Result<(), String> {
    match conn {
        Conn::Udp(_) => Ok(()),
        Conn::Tcp(s) => match tcp_alive(s) {
            true => Ok(()),
            false => Err("the server closed the connection".into()),
        },
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

/// Reads what the server sent on a TLS connection, without waiting, and
/// lets rustls process it: session tickets (TLS 1.3 servers send them after
/// the handshake) leave the connection open, a `close_notify`, an alert or
/// EOF close it (`Err`, why). The bytes are read from the socket here, not
/// through tokio: its read answers "not ready" without reading when its
/// own readiness flag is stale, and the tickets left unread then looked
/// like a closed connection. Dropping that connection with the tickets
/// unread made the kernel reset it, and the reset discarded the tail of
/// the last batch, counted as delivered (lost on every new TLS 1.3
/// connection that began with a backlog).
pub(super) fn tls_alive(s: &mut TlsStream<TcpStream>) -> Result<(), String> {
    let (tcp, tls) = s.get_mut();
    let sock = socket2::SockRef::from(&*tcp);
    let mut plain = [0u8; 4096];
    for _ in 0..64 {
        match peek(tcp) {
            Peek::Nothing => return Ok(()),
            Peek::Closed => return Err("the server closed the connection".into()),
            Peek::Data => {}
        }
        let mut raw: &socket2::Socket = &sock;
        match tls.read_tls(&mut raw) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("reading from the server: {e}")),
        }
        let state = tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        if state.peer_has_closed() {
            return Err("the server closed the connection (close_notify)".into());
        }
        // a syslog server has nothing to say: what it says anyway is dropped
        let mut left = state.plaintext_bytes_to_read();
        while left > 0 {
            match std::io::Read::read(&mut tls.reader(), &mut plain) {
                Ok(n) if n > 0 => left = left.saturating_sub(n),
                _ => break,
            }
        }
    }
    Ok(())
}

/// After a TLS 1.3 handshake: waits up to `wait` for the server's first
/// records and reads them ([`tls_alive`]). In TLS 1.3 the client's side of
/// the handshake is done before the server has checked the client's
/// certificate, so a server that refuses it (none given, or one it does not
/// trust) says so with an alert only after: without this wait the first
/// batch went out into a connection the server was closing, and counted as
/// delivered. A server that accepts sends its session tickets (most do,
/// and the wait ends with them) or nothing (the wait runs out).
pub(super) async fn tls_settle(s: &mut TlsStream<TcpStream>, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let tcp = s.get_ref().0;
        match tokio::time::timeout_at(deadline, tcp.readable()).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(format!("waiting for the server: {e}")),
            Ok(Ok(())) => {}
        }
        // readiness may be stale: clear it when nothing is there, and wait again
        let there = tcp.try_io(tokio::io::Interest::READABLE, || match peek(tcp) {
            Peek::Nothing => Err(ErrorKind::WouldBlock.into()),
            _ => Ok(()),
        });
        if there.is_ok() {
            return tls_alive(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{PrivatePkcs8KeyDer, ServerName};
    use std::sync::Arc;

    /// The race that lost events on new TLS 1.3 connections, forced: the
    /// server's session tickets arrive after the client's handshake, while
    /// tokio's readiness flag for the socket says "not readable" (a read
    /// found nothing just before) and the runtime does not turn its reactor
    /// (this thread sleeps). A check that read through tokio got "not
    /// ready" with the tickets on the socket, took them for a closed
    /// connection and dropped it unread, and the kernel's reset discarded
    /// the last batch's tail. `tls_alive` reads the socket itself: the
    /// tickets are read and processed, and the connection stays.
    #[test]
    fn tickets_the_reactor_has_not_seen_yet_keep_the_connection() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()).into(),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut tls = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
            while tls.is_handshaking() {
                if tls.wants_write() {
                    tls.write_tls(&mut sock).unwrap();
                } else {
                    tls.read_tls(&mut sock).unwrap();
                    tls.process_new_packets().unwrap();
                }
            }
            // the tickets, queued when the handshake ended, go out later
            std::thread::sleep(Duration::from_millis(200));
            let mut sent = 0;
            while tls.wants_write() {
                sent += tls.write_tls(&mut sock).unwrap();
            }
            assert!(sent > 0, "session tickets were sent");
            std::thread::sleep(Duration::from_secs(1));
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
            let name = ServerName::try_from("localhost").unwrap();
            let mut s = connector.connect(name, tcp).await.unwrap();
            let mut byte = [0u8; 1];
            // nothing there yet: tokio marks the socket not readable
            let first = s.get_ref().0.try_read(&mut byte);
            assert_eq!(first.map_err(|e| e.kind()), Err(ErrorKind::WouldBlock));
            // the tickets arrive while the reactor does not run
            std::thread::sleep(Duration::from_millis(500));
            assert!(matches!(peek(s.get_ref().0), Peek::Data), "tickets wait");
            let stale = s.get_ref().0.try_read(&mut byte);
            assert_eq!(
                stale.map_err(|e| e.kind()),
                Err(ErrorKind::WouldBlock),
                "tokio's readiness is stale here: what the old check went by"
            );
            assert_eq!(tls_alive(&mut s), Ok(()));
            assert!(matches!(peek(s.get_ref().0), Peek::Nothing), "tickets read");
        });
        server.join().unwrap();
    }
}
