//! `syslog_udp`: syslog over UDP (RFC 5426), one message per datagram.
//!
//! Sockets are made with socket2: SO_REUSEPORT (so `sockets = N` receive
//! sockets can share the port and the kernel spreads datagrams over them), a
//! large SO_RCVBUF (`recv_buffer_bytes`, default 8MiB), and SO_RXQ_OVFL so the
//! kernel reports how many datagrams it dropped on a full receive queue.
//! Datagrams are read in batches with `recvmmsg(2)`; if the kernel does not
//! support it, one `recv_from` at a time. UDP has no backpressure: when the
//! ring refuses a batch, it is dropped and counted.

use super::metrics::SourceMetrics;
use super::{resolve, shutdown_signal, Ingest, IngestError, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigError, SectionConfig};
use crate::event::{now_millis, EncodedEvent};
use crate::parse::{syslog_line_to_event, Origin};
use serde::Deserialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65536;
/// Datagrams per `recvmmsg` call.
const BATCH: usize = 32;
/// Room for the SO_RXQ_OVFL control message.
const CONTROL_LEN: usize = 64;

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
    if let Err(e) = sock.set_recv_buffer_size(recv_buffer.min(i32::MAX as u64) as usize) {
        tracing::warn!(error = %e, "cannot set SO_RCVBUF");
    }
    enable_rxq_ovfl(&sock);
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(addr))?;
    UdpSocket::from_std(sock.into())
}

/// Asks the kernel to report receive-queue drops (Linux SO_RXQ_OVFL).
fn enable_rxq_ovfl(sock: &Socket) {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a valid fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!("SO_RXQ_OVFL not available; kernel drops are not counted");
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
}

impl Receiver {
    async fn run(mut self, sock: UdpSocket, shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut batch = MmsgBatch::new();
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
                    other => other.map(|n| self.batch_events(&batch, n)),
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

    /// Events of the first `n` datagrams of a `recvmmsg` batch.
    fn batch_events(&mut self, batch: &MmsgBatch, n: usize) -> Vec<EncodedEvent> {
        let now = now_millis();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if let Some(drops) = batch.kernel_drops(i) {
                self.note_kernel_drops(drops);
            }
            let (data, peer) = batch.datagram(i);
            if batch.truncated(i) {
                self.metrics.oversized();
            }
            out.push(self.event(data, peer, now));
        }
        out
    }

    fn recv_one(&mut self, sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Vec<EncodedEvent>> {
        let (len, peer) = sock.try_recv_from(buf)?;
        Ok(vec![self.event(&buf[..len], Some(peer), now_millis())])
    }

    fn event(&self, data: &[u8], peer: Option<SocketAddr>, now: i64) -> EncodedEvent {
        let peer = peer.map(|p| p.to_string());
        let origin = Origin {
            listener: &self.name,
            address: peer.as_deref(),
        };
        syslog_line_to_event(data, now, self.timezone, &origin).encode()
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

/// Buffers for one `recvmmsg(2)` call.
struct MmsgBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    controls: Vec<[u8; CONTROL_LEN]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside `iovecs`/`headers` only ever point into the
// batch's own buffers and are rebuilt before every call.
unsafe impl Send for MmsgBatch {}

impl MmsgBatch {
    fn new() -> Self {
        MmsgBatch {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            controls: vec![[0u8; CONTROL_LEN]; BATCH],
            iovecs: vec![unsafe { std::mem::zeroed() }; BATCH],
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many.
    fn recv(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = CONTROL_LEN as _;
            hdr.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the sizes given above.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The payload and sender of datagram `i` (after a successful [`recv`]).
    fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(MAX_DATAGRAM);
        // SAFETY: the kernel filled `addrs[i]` and `msg_namelen` bytes of it.
        let addr = unsafe { SockAddr::new(self.addrs[i], h.msg_hdr.msg_namelen) };
        (&self.bufs[i][..len], addr.as_socket())
    }

    fn truncated(&self, i: usize) -> bool {
        self.headers[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// The cumulative kernel drop count carried by datagram `i`, if any.
    fn kernel_drops(&self, i: usize) -> Option<u32> {
        let hdr = &self.headers[i].msg_hdr;
        // SAFETY: the control buffer was filled by the kernel up to msg_controllen;
        // CMSG_* walk it within those bounds.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL
                {
                    let data = libc::CMSG_DATA(cmsg).cast::<u32>();
                    return Some(data.read_unaligned());
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        None
    }
}
