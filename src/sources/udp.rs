//! `syslog_udp`: syslog over UDP (RFC 5426), one message per datagram.
//!
//! Sockets are made with socket2: SO_REUSEPORT (so `sockets = N` receive
//! sockets can share the port and the kernel spreads datagrams over them), a
//! large SO_RCVBUF (`recv_buffer_bytes`, default 8MiB), and SO_RXQ_OVFL so the
//! kernel reports how many datagrams it dropped on a full receive queue.
//! Datagrams are read in batches with `recvmmsg(2)`; if the kernel does not
//! support it, one `recv_from` at a time. UDP has no backpressure: when the
//! ring refuses a batch, it is dropped and counted.
//!
//! Only safe code here: `recvmmsg`, SO_RXQ_OVFL and its control message go
//! through nix's safe wrappers.

use super::metrics::SourceMetrics;
use super::{resolve, shutdown_signal, Ingest, IngestError, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigError, SectionConfig};
use crate::event::{now_millis, EncodedEvent};
use crate::parse::{syslog_line_to_record, Origin};
use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrLike,
    SockaddrStorage,
};
use serde::Deserialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65536;
/// Datagrams per `recvmmsg` call.
const BATCH: usize = 32;

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
}

fn default_recv_buffer() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_sockets() -> usize {
    1
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
        Ok(s)
    }
}

/// Binds the sockets and starts one receive task per socket.
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
    let name = Arc::<str>::from(name);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|sock| {
            let receiver = Receiver {
                name: name.clone(),
                ingest: ctx.ingest.clone(),
                timezone: ctx.timezone,
                metrics: metrics.clone(),
                kernel_drops: 0,
                last_peer: None,
            };
            tokio::spawn(receiver.run(sock, ctx.shutdown.clone()))
        })
        .collect();
    tracing::info!(source = %name, address = %addr, sockets = tasks.len(), "listening (udp)");
    let task = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
    });
    Ok((addr, task))
}

/// A non-blocking, SO_REUSEPORT UDP socket bound to `addr`.
fn bind_socket(addr: SocketAddr, recv_buffer: u64) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    set_recv_buffer(&sock, recv_buffer.min(i32::MAX as u64 / 2) as usize);
    enable_rxq_ovfl(&sock);
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(addr))?;
    UdpSocket::from_std(sock.into())
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

/// One receive socket's loop.
struct Receiver {
    name: Arc<str>,
    ingest: Arc<dyn Ingest>,
    timezone: chrono_tz::Tz,
    metrics: SourceMetrics,
    /// Last cumulative SO_RXQ_OVFL value seen.
    kernel_drops: u32,
    /// The last sender and its text form (senders repeat: format it once).
    last_peer: Option<(SocketAddr, String)>,
}

impl Receiver {
    async fn run(mut self, sock: UdpSocket, shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut batch = Batch::new();
        let stop = shutdown_signal(shutdown);
        tokio::pin!(stop);
        let mut use_mmsg = true;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                r = sock.readable() => if r.is_err() { return },
            }
            let received = if use_mmsg {
                match sock.try_io(Interest::READABLE, || batch.recv(sock.as_raw_fd())) {
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
                        ) =>
                    {
                        use_mmsg = false;
                        continue;
                    }
                    other => other.map(|()| self.batch_events(&batch)),
                }
            } else {
                self.recv_one(&sock, &mut batch.bufs[0])
            };
            match received {
                Ok(events) => self.deliver(events),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!(source = %self.name, error = %e, "udp receive error");
                    self.metrics.connection_error("recv");
                }
            }
        }
    }

    /// Events of the datagrams of a `recvmmsg` batch.
    fn batch_events(&mut self, batch: &Batch) -> Vec<EncodedEvent> {
        let now = now_millis();
        let mut out = Vec::with_capacity(batch.received.len());
        for (i, d) in batch.received.iter().enumerate() {
            if let Some(drops) = d.kernel_drops {
                self.note_kernel_drops(drops);
            }
            if d.truncated {
                self.metrics.oversized();
            }
            out.push(self.event(batch.payload(i), d.peer, now));
        }
        out
    }

    fn recv_one(&mut self, sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Vec<EncodedEvent>> {
        let (len, peer) = sock.try_recv_from(buf)?;
        Ok(vec![self.event(&buf[..len], Some(peer), now_millis())])
    }

    fn event(&mut self, data: &[u8], peer: Option<SocketAddr>, now: i64) -> EncodedEvent {
        let address = match peer {
            Some(p) => {
                if self.last_peer.as_ref().is_none_or(|(last, _)| *last != p) {
                    self.last_peer = Some((p, p.to_string()));
                }
                self.last_peer.as_ref().map(|(_, text)| text.as_str())
            }
            None => None,
        };
        let origin = Origin {
            listener: &self.name,
            address,
        };
        syslog_line_to_record(data, now, self.timezone, &origin)
    }

    fn note_kernel_drops(&mut self, cumulative: u32) {
        let delta = cumulative.wrapping_sub(self.kernel_drops);
        if delta > 0 {
            self.metrics.dropped("kernel", u64::from(delta));
        }
        self.kernel_drops = cumulative;
    }

    fn deliver(&self, events: Vec<EncodedEvent>) {
        if events.is_empty() {
            return;
        }
        match self.ingest.try_append(&events) {
            Ok(()) => self.metrics.accepted(&events),
            Err(IngestError::Full(_)) => self.metrics.dropped("buffer_full", events.len() as u64),
            Err(IngestError::Closed) => self.metrics.dropped("shutdown", events.len() as u64),
            Err(IngestError::Failed(e)) => {
                tracing::warn!(source = %self.name, error = %e, "append failed");
                self.metrics.dropped("buffer_error", events.len() as u64);
            }
        }
    }
}

/// What `recvmmsg` reported about one datagram.
#[derive(Debug, Clone, Copy)]
struct Datagram {
    /// Payload bytes in the matching buffer.
    len: usize,
    peer: Option<SocketAddr>,
    /// The datagram was larger than the buffer (MSG_TRUNC).
    truncated: bool,
    /// Cumulative SO_RXQ_OVFL count, when the kernel attached one.
    kernel_drops: Option<u32>,
}

/// Buffers for one `recvmmsg(2)` call: [`BATCH`] payload buffers of
/// [`MAX_DATAGRAM`] bytes, reused across calls, and the results of the last call.
///
/// Plain owned data, so it is `Send` and lives in the receive task. nix's
/// `MultiHeaders` (raw pointers, not `Send`) is built per call in [`Batch::recv`]:
/// nix's `recvmmsg` refreshes only the iovecs of a reused header, while the
/// kernel shrinks `msg_namelen`/`msg_controllen` on return, so a reused header
/// would lose the SO_RXQ_OVFL message (and could cut an IPv6 peer address).
struct Batch {
    bufs: Vec<Vec<u8>>,
    received: Vec<Datagram>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            received: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking into `self.received`.
    fn recv(&mut self, fd: RawFd) -> io::Result<()> {
        self.received.clear();
        let mut headers =
            MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(nix::cmsg_space!(u32)));
        let mut bufs = self.bufs.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(bufs.next().expect("BATCH receive buffers"))]);
        let msgs = recvmmsg(
            fd,
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in msgs {
            let kernel_drops = msg.cmsgs().ok().and_then(|cmsgs| {
                cmsgs
                    .filter_map(|c| match c {
                        ControlMessageOwned::RxqOvfl(n) => Some(n),
                        _ => None,
                    })
                    .last()
            });
            self.received.push(Datagram {
                len: msg.bytes.min(MAX_DATAGRAM),
                peer: msg.address.as_ref().and_then(socket_addr),
                truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
                kernel_drops,
            });
        }
        Ok(())
    }

    /// The payload of received datagram `i` (after a successful [`Batch::recv`]).
    fn payload(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.received[i].len]
    }
}

/// The IPv4/IPv6 address in `addr`, if it holds one.
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if addr.len() == 0 {
        return None;
    }
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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

    /// Drains `sock` batch by batch until the kernel has nothing left.
    fn drain(sock: &UdpSocket, batch: &mut Batch, seen: &mut Vec<(Vec<u8>, Datagram)>) {
        loop {
            match batch.recv(sock.as_raw_fd()) {
                Ok(()) if batch.received.is_empty() => return,
                Ok(()) => {
                    for (i, d) in batch.received.iter().enumerate() {
                        seen.push((batch.payload(i).to_vec(), *d));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("recvmmsg: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn batch_reports_payload_peer_and_kernel_drops() {
        // Smallest receive buffer the kernel allows, so a burst overflows it.
        let sock = bind_socket("127.0.0.1:0".parse().unwrap(), 1).expect("bind");
        let target = sock.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = sender.local_addr().unwrap();
        let mut batch = Batch::new();
        let mut seen = Vec::new();

        sender.send_to(b"first", target).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.is_empty() && Instant::now() < deadline {
            drain(&sock, &mut batch, &mut seen);
        }
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, b"first");
        assert_eq!(seen[0].1.peer, Some(from));
        assert!(!seen[0].1.truncated);
        assert_eq!(seen[0].1.kernel_drops, None, "no drops yet");

        // Overflow the queue, drain it, then one more datagram carries the count.
        let payload = vec![b'x'; 1200];
        for _ in 0..400 {
            let _ = sender.send_to(&payload, target);
        }
        seen.clear();
        drain(&sock, &mut batch, &mut seen);
        assert!(!seen.is_empty() && seen.len() < 400, "got {}", seen.len());
        assert!(seen
            .iter()
            .all(|(p, d)| p == &payload && d.peer == Some(from)));

        sender.send_to(b"after", target).unwrap();
        seen.clear();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.is_empty() && Instant::now() < deadline {
            drain(&sock, &mut batch, &mut seen);
        }
        let (p, d) = seen.last().expect("datagram after the overflow");
        assert_eq!(p, b"after");
        let drops = d.kernel_drops.expect("SO_RXQ_OVFL count");
        assert!(drops > 0 && drops as usize <= 400, "drops {drops}");
    }
}
