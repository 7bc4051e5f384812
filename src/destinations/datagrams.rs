//! Many UDP datagrams in few system calls: a batch's datagrams are laid end
//! to end in one buffer ([`Datagrams`]) and sent on a connected socket with
//! `sendmmsg(2)`, up to [`PER_CALL`] a call ([`send_all`]).
//!
//! The syslog destination's UDP mode sends one datagram per event (RFC 5426);
//! a `send` each made a system call per event, which cost more than encoding
//! the event (see BENCHMARKS.md, `udp_out`).

use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrIn};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per `sendmmsg` call: the kernel's limit (`UIO_MAXIOV`).
pub const PER_CALL: usize = 1024;

/// A batch's datagrams, end to end in one buffer.
#[derive(Default)]
pub struct Datagrams {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Datagrams {
    /// Empties it, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Appends one datagram written by `write` (which appends to the buffer
    /// it is given), of which `keep(datagram)` says how many bytes to keep.
    /// Returns true if it was cut.
    pub fn push(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>),
        keep: impl FnOnce(&[u8]) -> usize,
    ) -> bool {
        let start = self.buf.len();
        write(&mut self.buf);
        let keep = keep(&self.buf[start..]);
        let cut_short = start + keep < self.buf.len();
        self.buf.truncate(start + keep);
        self.ends.push(self.buf.len());
        cut_short
    }

    /// How many datagrams there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes allocated for the datagrams.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Datagram `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
}

/// Sends every datagram of `grams`, in order, on the connected `sock`,
/// `per_call` (at most [`PER_CALL`]) a system call. An error (such as the
/// `ECONNREFUSED` of an earlier datagram's ICMP answer) ends the send; the
/// caller resends the batch.
pub async fn send_all(sock: &UdpSocket, grams: &Datagrams, per_call: usize) -> io::Result<()> {
    let per_call = per_call.clamp(1, PER_CALL);
    let mut sent = 0;
    while sent < grams.len() {
        let to = (sent + per_call).min(grams.len());
        let n = sock
            .async_io(Interest::WRITABLE, || send_some(sock, grams, sent..to))
            .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sendmmsg sent no datagram",
            ));
        }
        sent += n;
    }
    Ok(())
}

/// One `sendmmsg` of datagrams `range`; how many the kernel took.
fn send_some(
    sock: &UdpSocket,
    grams: &Datagrams,
    range: std::ops::Range<usize>,
) -> io::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = range.map(|i| [IoSlice::new(grams.get(i))]).collect();
    // No addresses: the socket is connected. `SockaddrIn` only names the
    // (unused) address type, IPv6 sockets included.
    let addrs: Vec<Option<SockaddrIn>> = vec![None; slices.len()];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(slices.len(), None);
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    let results = sendmmsg(
        sock.as_raw_fd(),
        &mut headers,
        &slices,
        &addrs,
        no_cmsgs,
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    Ok(results.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(lens: &[usize]) -> Datagrams {
        let mut g = Datagrams::default();
        for (i, &n) in lens.iter().enumerate() {
            g.push(
                |b| b.extend(std::iter::repeat_n(b'a' + i as u8, n)),
                |d| d.len(),
            );
        }
        g
    }

    #[test]
    fn datagrams_keep_their_bounds_and_are_cut_where_told() {
        let mut g = grams(&[3, 0, 5]);
        assert_eq!(
            (g.len(), g.get(0), g.get(1), g.get(2)),
            (3, &b"aaa"[..], &b""[..], &b"ccccc"[..])
        );
        let cut = g.push(|b| b.extend_from_slice(b"0123456789"), |d| d.len().min(4));
        assert!(cut);
        assert_eq!(g.get(3), b"0123");
        assert!(!g.push(|b| b.extend_from_slice(b"xy"), |d| d.len().min(4)));
        assert_eq!(g.get(4), b"xy");
        g.clear();
        assert!(g.is_empty());
    }

    #[tokio::test]
    async fn every_datagram_arrives_whole_and_in_order_across_calls() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(rx.local_addr().unwrap()).await.unwrap();
        // 7 datagrams, 3 a call: calls of 3, 3 and 1; sizes 0..=6 bytes
        let g = grams(&[0, 1, 2, 3, 4, 5, 6]);
        send_all(&tx, &g, 3).await.unwrap();
        let mut buf = [0u8; 64];
        for i in 0..g.len() {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], g.get(i), "datagram {i}");
        }
    }

    #[tokio::test]
    async fn a_refused_destination_is_an_error() {
        // a port nobody listens on answers ICMP port unreachable; the next
        // send on the connected socket reports it
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(addr).await.unwrap();
        let g = grams(&[10, 10]);
        let mut err = None;
        for _ in 0..50 {
            if let Err(e) = send_all(&tx, &g, PER_CALL).await {
                err = Some(e);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let e = err.expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }
}
