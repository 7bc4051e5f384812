//! Many UDP datagrams in few system calls: a batch's datagrams are laid end
//! to end in one buffer ([`Datagrams`]) and sent on a connected socket with
//! `sendmmsg(2)`, up to [`PER_CALL`] a call ([`send_all`]).
//!
//! The syslog destination's UDP mode sends one datagram per event (RFC 5426);
//! a `send` each made a system call per event, which cost more than encoding
//! the event (`cargo bench --bench udp_send`; BENCHMARKS.md, micro-benchmarks).
//!
//! UDP has no flow control: a receiver slower than the relay drops what its
//! socket buffer cannot hold. [`Pace`] caps the datagrams per second (the
//! syslog destination's `max_udp_rate`).

use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrIn};
use std::io::{self, IoSlice};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;

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

/// A cap on datagrams per second. Sends wait their turn in bursts of about
/// [`BURST`] of the rate: a burst goes out at once, the next when the time
/// its datagrams stand for has passed. A send that wakes a little late (the
/// timer's 1 ms ticks) keeps the schedule, so the rate is the cap, not the
/// cap less the oversleeping; after more than a [`BURST`] of idle time the
/// schedule starts afresh, so an idle spell never buys a larger burst.
#[derive(Debug)]
pub struct Pace {
    per_sec: NonZeroU32,
    /// When the next datagram may go.
    next: Mutex<Option<Instant>>,
}

/// The span of the rate a burst holds.
pub const BURST: Duration = Duration::from_millis(10);

impl Pace {
    pub fn new(per_sec: NonZeroU32) -> Pace {
        Pace {
            per_sec,
            next: Mutex::new(None),
        }
    }

    /// Datagrams a burst may hold: [`BURST`] of the rate, 1 to [`PER_CALL`].
    pub fn burst(&self) -> usize {
        let n = u64::from(self.per_sec.get()) * BURST.as_millis() as u64 / 1000;
        (n as usize).clamp(1, PER_CALL)
    }

    /// How long `n` datagrams take at this rate.
    pub fn time_for(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 / f64::from(self.per_sec.get()))
    }

    /// Waits until `n` more datagrams may go, and books their time.
    pub async fn take(&self, n: usize) {
        let at = {
            let mut next = self.next.lock().unwrap();
            let now = Instant::now();
            let at = match *next {
                Some(t) if t + BURST > now => t,
                _ => now,
            };
            *next = Some(at + self.time_for(n));
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Sends every datagram of `grams`, in order, on the connected `sock`,
/// `per_call` (at most [`PER_CALL`]) a system call, each burst when `pace`
/// lets it. An error (such as the `ECONNREFUSED` of an earlier datagram's
/// ICMP answer) ends the send; the caller resends the batch.
pub async fn send_all(
    sock: &UdpSocket,
    grams: &Datagrams,
    per_call: usize,
    pace: Option<&Pace>,
) -> io::Result<()> {
    let per_call = per_call.clamp(1, PER_CALL);
    let burst = pace.map_or(grams.len(), Pace::burst);
    let mut sent = 0;
    while sent < grams.len() {
        let end = (sent + burst).min(grams.len());
        if let Some(pace) = pace {
            pace.take(end - sent).await;
        }
        while sent < end {
            let to = (sent + per_call).min(end);
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

    /// A receiving socket (blocking, 5 s timeout) and a sender connected to it.
    async fn connected_pair() -> (std::net::UdpSocket, UdpSocket) {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(rx.local_addr().unwrap()).await.unwrap();
        (rx, tx)
    }

    /// `rx` receives every datagram of `g`, whole and in order.
    fn assert_received(rx: &std::net::UdpSocket, g: &Datagrams) {
        let mut buf = [0u8; 64];
        for i in 0..g.len() {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], g.get(i), "datagram {i}");
        }
    }

    #[tokio::test]
    async fn every_datagram_arrives_whole_and_in_order_across_calls() {
        let (rx, tx) = connected_pair().await;
        // 7 datagrams, 3 a call: calls of 3, 3 and 1; sizes 0..=6 bytes
        let g = grams(&[0, 1, 2, 3, 4, 5, 6]);
        send_all(&tx, &g, 3, None).await.unwrap();
        assert_received(&rx, &g);
    }

    /// Bursts of 10 ms of the rate, each when the last one's time has
    /// passed; an idle spell buys no larger burst (the clock is tokio's
    /// paused test clock, so the times are exact).
    #[tokio::test(start_paused = true)]
    async fn pace_lets_bursts_go_at_the_rate() {
        let pace = Pace::new(NonZeroU32::new(1000).unwrap());
        assert_eq!(pace.burst(), 10);
        let t0 = Instant::now();
        let mut went = Vec::new();
        for n in [10, 10, 5, 10] {
            pace.take(n).await;
            went.push(t0.elapsed());
        }
        let ms = Duration::from_millis;
        assert_eq!(went, [ms(0), ms(10), ms(20), ms(25)]);
        tokio::time::sleep(ms(1000)).await;
        let t1 = Instant::now();
        pace.take(10).await;
        pace.take(10).await;
        assert_eq!(t1.elapsed(), ms(10), "no credit saved while idle");
        // woken 3 ms late: the next burst keeps the schedule and goes at once
        tokio::time::advance(ms(13)).await;
        let t2 = Instant::now();
        pace.take(10).await;
        assert_eq!(t2.elapsed(), ms(0));
        pace.take(10).await;
        assert_eq!(t2.elapsed(), ms(7));
        assert_eq!(Pace::new(NonZeroU32::new(1).unwrap()).burst(), 1);
        assert_eq!(Pace::new(NonZeroU32::MAX).burst(), PER_CALL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_send_takes_the_time_of_its_datagrams_and_loses_none() {
        let (rx, tx) = connected_pair().await;
        let g = grams(&[3; 95]);
        // 2000/s: bursts of 20, the fifth (15) at 40 ms, 3 a call
        let pace = Pace::new(NonZeroU32::new(2000).unwrap());
        let t0 = Instant::now();
        send_all(&tx, &g, 3, Some(&pace)).await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_millis(40));
        assert_received(&rx, &g);
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
            if let Err(e) = send_all(&tx, &g, PER_CALL, None).await {
                err = Some(e);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let e = err.expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }
}
