//! One `recvmmsg(2)` call's buffers and what the kernel said about each
//! datagram: payload length, sender, truncation and the SO_RXQ_OVFL drop
//! count. Only safe code: the call and its control messages go through
//! nix's wrappers.

use nix::sys::socket::{
    recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrLike, SockaddrStorage,
};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Largest UDP payload.
pub(super) const MAX_DATAGRAM: usize = 65536;
/// Datagrams per `recvmmsg` call.
pub(super) const BATCH: usize = 32;

/// What `recvmmsg` reported about one datagram.
#[derive(Debug, Clone, Copy)]
pub(super) struct Datagram {
    /// Payload bytes in the matching buffer.
    pub(super) len: usize,
    pub(super) peer: Option<SocketAddr>,
    /// The datagram was larger than the buffer (MSG_TRUNC).
    pub(super) truncated: bool,
    /// Cumulative SO_RXQ_OVFL count, when the kernel attached one.
    pub(super) kernel_drops: Option<u32>,
}

/// Buffers for one `recvmmsg(2)` call: [`BATCH`] payload buffers of
/// [`MAX_DATAGRAM`] bytes, reused across calls, and the results of the last call.
///
/// Plain owned data, so it is `Send` and lives in the receive thread. nix's
/// `MultiHeaders` (raw pointers, not `Send`) is built per call in [`Batch::recv`]:
/// nix's `recvmmsg` refreshes only the iovecs of a reused header, while the
/// kernel shrinks `msg_namelen`/`msg_controllen` on return, so a reused header
/// would lose the SO_RXQ_OVFL message (and could cut an IPv6 peer address).
pub(super) struct Batch {
    pub(super) bufs: Vec<Vec<u8>>,
    pub(super) received: Vec<Datagram>,
}

impl Batch {
    pub(super) fn new() -> Self {
        Batch {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            received: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking into `self.received`.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<()> {
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
    pub(super) fn payload(&self, i: usize) -> &[u8] {
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
    use super::super::bind_socket;
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// Drains `sock` batch by batch until the kernel has nothing left.
    fn drain(sock: &std::net::UdpSocket, batch: &mut Batch, seen: &mut Vec<(Vec<u8>, Datagram)>) {
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

    #[test]
    fn batch_reports_payload_peer_and_kernel_drops() {
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
