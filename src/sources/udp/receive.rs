//! The receive thread of a `syslog_udp` source: it reads its sockets'
//! kernel queues and hands the datagrams, in chunks, to their appenders.
//!
//! A plain thread: it blocks in poll(2) while its sockets are idle, but
//! once datagrams flow it does not wait for each one. After a read it naps
//! ([`NAP`]) and then reads all that queued up meanwhile. Woken by every
//! arrival, it read one to seven datagrams per wake-up at 50k/s (7,400
//! wake-ups a second at nice 0, 31,500 at nice -10), and the wake-ups cost
//! more than the reading. It naps only while the kernel queue has ample
//! room: after a read that found more than an eighth of what the queue
//! holds ([`NAP_MARGIN`]) it reads on at once, and for a second after the
//! kernel dropped datagrams during a nap ([`Naps`]) it waits for the next
//! arrival, as before naps. A slow flow (below 16k datagrams/s) naps until
//! its next chunk is due instead ([`SLOW_PER_NAP`]).
//!
//! Kernel drops are counted from the SO_RXQ_OVFL count each datagram
//! carries: the socket's drop count when the kernel queued it. The drops
//! after the last datagram queued (the tail of a burst that overflowed the
//! queue) would wait for the next datagram to be counted, so a socket that
//! has nothing to read asks the kernel for the count itself (SO_MEMINFO,
//! the same counter), once per [`DROPS_CHECK`] at most.

use super::batch::Batch;
use super::{Chunk, Queue, FLUSH_DATAGRAMS, LINGER};
use crate::event::now_millis;
use crate::sources::metrics::SourceMetrics;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::getsockopt;
use nix::{getsockopt_impl, sockopt_impl};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long the thread sleeps between reads while datagrams flow.
const NAP: Duration = Duration::from_millis(1);
/// A flow slower than this many datagrams per [`NAP`] (16k/s) is slow: the
/// thread naps until the next chunk is due, [`LINGER`] at most, instead of
/// [`NAP`]. Such a flow leaves a chunk at [`LINGER`] anyway, so the longer
/// naps add no latency, and at 5k/s they take 250 wake-ups a second
/// instead of 1000; the kernel queue (8192 datagrams by default) holds a
/// nap's arrivals up to 2M/s.
const SLOW_PER_NAP: usize = 16;
/// Bytes the kernel charges a receive queue per small datagram, at most
/// (the payload plus the socket buffer's bookkeeping): what turns SO_RCVBUF
/// into a number of datagrams.
const CHARGE_PER_DATAGRAM: usize = 2048;
/// A read that found more than 1/`NAP_MARGIN` of what the kernel queue
/// holds means it fills too fast to nap.
const NAP_MARGIN: usize = 8;
/// After a kernel drop, no naps for this long.
const NO_NAPS_AFTER_DROPS: Duration = Duration::from_secs(1);
/// The longest wait in poll(2): how soon an idle thread sees a shutdown.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Datagrams read from one socket before the others get their turn.
const READ_MAX: usize = 1024;
/// How often, at most, a socket with nothing to read asks the kernel for
/// its drop count.
const DROPS_CHECK: Duration = IDLE_POLL;

/// The `u32`s of SO_MEMINFO up to the drop count. Every kernel with
/// SO_MEMINFO (Linux 4.12) has them all; a newer one with more counters
/// fills only the length asked for.
const MEMINFO_VARS: usize = libc::SK_MEMINFO_DROPS as usize + 1;

sockopt_impl!(
    /// SO_MEMINFO: the socket's memory counters, its drop count
    /// (`SK_MEMINFO_DROPS`, what SO_RXQ_OVFL reports) last.
    MemInfo,
    GetOnly,
    libc::SOL_SOCKET,
    libc::SO_MEMINFO,
    [u32; MEMINFO_VARS]
);

/// One socket's reading side.
pub(super) struct Receiver {
    name: Arc<str>,
    timezone: chrono_tz::Tz,
    metrics: SourceMetrics,
    sock: UdpSocket,
    /// Datagrams the socket's kernel queue holds, about.
    capacity: usize,
    /// Last cumulative SO_RXQ_OVFL value seen.
    kernel_drops: u32,
    /// When the kernel was last asked for the drop count (SO_MEMINFO);
    /// `None` when it was not yet.
    drops_checked: Option<Instant>,
    /// False once SO_MEMINFO failed (a kernel without it).
    meminfo: bool,
    /// The last sender and its text form (senders repeat: format it once).
    last_peer: Option<(SocketAddr, Arc<str>)>,
    queue: Arc<Queue>,
    /// Where the received chunks go, in order.
    appender: mpsc::UnboundedSender<Chunk>,
    /// The chunk being gathered, and when it goes at the latest.
    pending: Option<(Chunk, Instant)>,
    use_mmsg: bool,
    /// False once the appender is gone.
    open: bool,
}

/// What one read of a socket found.
#[derive(Debug, Default, Clone, Copy)]
struct Read {
    datagrams: usize,
    /// The read stopped at [`READ_MAX`] with more waiting, or found more
    /// than 1/[`NAP_MARGIN`] of what the kernel queue holds.
    crowded: bool,
    /// The parse queue is full: the kernel queue holds the rest meanwhile.
    queue_full: bool,
    kernel_dropped: bool,
}

impl Read {
    fn merge(&mut self, other: Read) {
        self.datagrams += other.datagrams;
        self.crowded |= other.crowded;
        self.queue_full |= other.queue_full;
        self.kernel_dropped |= other.kernel_dropped;
    }
}

/// What the thread does after a round of reads.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    /// Read again at once.
    Now,
    /// Sleep, not woken by arrivals.
    Nap(Duration),
    /// Wait for an arrival, at most this long.
    Poll(Duration),
}

/// The wait after a round that found `round` over `waited` (how long the
/// wait before it lasted), when naps are `allowed` and the next chunk is
/// due in `due`.
fn next_wait(round: Read, waited: Duration, allowed: bool, due: Option<Duration>) -> Wait {
    let within = |d: Duration| due.map_or(d, |due| due.min(d));
    // fewer than SLOW_PER_NAP datagrams per NAP of waiting
    let slow = (round.datagrams as u128) * NAP.as_micros()
        < (SLOW_PER_NAP as u128) * waited.as_micros().max(1);
    if round.crowded {
        Wait::Now
    } else if round.queue_full {
        Wait::Nap(within(NAP))
    } else if round.datagrams > 0 && allowed {
        Wait::Nap(within(if slow { LINGER } else { NAP }))
    } else {
        Wait::Poll(within(IDLE_POLL))
    }
}

/// Whether the thread may nap: not for [`NO_NAPS_AFTER_DROPS`] after the
/// kernel dropped datagrams during a nap. Drops while the parse queue was
/// full say nothing against naps (the thread could not read then anyway),
/// and turning naps off there only added wake-ups while the cores were
/// short.
struct Naps {
    /// No naps before this.
    off_until: Option<Instant>,
}

impl Naps {
    fn new() -> Self {
        Naps { off_until: None }
    }

    /// Takes note of a round that followed a nap (`napped`) or another wait.
    fn after(&mut self, round: Read, napped: bool, now: Instant) {
        if round.kernel_dropped && napped {
            self.off_until = Some(now + NO_NAPS_AFTER_DROPS);
        }
    }

    fn allowed(&self, now: Instant) -> bool {
        self.off_until.is_none_or(|t| now >= t)
    }
}

/// Reads `receivers` until `shutdown` (or until every appender is gone),
/// then hands over what was gathered.
pub(super) fn run(mut receivers: Vec<Receiver>, shutdown: watch::Receiver<bool>) {
    let mut batch = Batch::new();
    let mut naps = Naps::new();
    // whether the last wait was a nap with room in the parse queue
    let mut napped = false;
    // how long the last wait lasted (what the next round found came in it)
    let mut waited = NAP;
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        let mut round = Read::default();
        for r in receivers.iter_mut().filter(|r| r.open) {
            round.merge(r.read(&mut batch));
        }
        let now = Instant::now();
        naps.after(round, napped, now);
        for r in &mut receivers {
            r.flush_due(now);
        }
        if receivers.iter().all(|r| !r.open) {
            break;
        }
        let due = receivers
            .iter()
            .filter_map(|r| {
                r.pending
                    .as_ref()
                    .map(|(_, at)| at.saturating_duration_since(now))
            })
            .min();
        let wait = next_wait(round, waited, naps.allowed(now), due);
        napped = matches!(wait, Wait::Nap(_)) && !round.queue_full;
        match wait {
            Wait::Now => {}
            Wait::Nap(d) => std::thread::sleep(d),
            Wait::Poll(d) => wait_readable(&receivers, d),
        }
        waited = now.elapsed();
    }
    for r in &mut receivers {
        r.flush();
    }
    // Dropping the receivers lets the appenders finish what was received.
}

/// Blocks until a socket is readable or `timeout` (rounded up to whole
/// milliseconds) has passed.
fn wait_readable(receivers: &[Receiver], timeout: Duration) {
    let mut fds: Vec<PollFd<'_>> = receivers
        .iter()
        .filter(|r| r.open)
        .map(|r| PollFd::new(r.sock.as_fd(), PollFlags::POLLIN))
        .collect();
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .clamp(1, u16::MAX as u128) as u16;
    // EINTR or any other failure: the caller reads again and comes back
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

impl Receiver {
    pub(super) fn new(
        name: Arc<str>,
        timezone: chrono_tz::Tz,
        metrics: SourceMetrics,
        sock: UdpSocket,
        queue: Arc<Queue>,
        appender: mpsc::UnboundedSender<Chunk>,
    ) -> Self {
        // Linux reports the queue's limit in bytes charged, bookkeeping included
        let limit = socket2::SockRef::from(&sock)
            .recv_buffer_size()
            .unwrap_or(0);
        Receiver {
            name,
            timezone,
            metrics,
            sock,
            capacity: limit / CHARGE_PER_DATAGRAM,
            kernel_drops: 0,
            drops_checked: None,
            meminfo: true,
            last_peer: None,
            queue,
            appender,
            pending: None,
            use_mmsg: true,
            open: true,
        }
    }

    /// Reads what the kernel queue holds, up to [`READ_MAX`] datagrams, or
    /// until the parse queue is full.
    fn read(&mut self, batch: &mut Batch) -> Read {
        let mut read = Read::default();
        while read.datagrams < READ_MAX {
            if !self.queue.has_room() {
                read.queue_full = true;
                break;
            }
            let got = if self.use_mmsg {
                match batch.recv(self.sock.as_raw_fd()) {
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
                        ) =>
                    {
                        self.use_mmsg = false;
                        continue;
                    }
                    Ok(()) => Ok(self.take_batch(batch, &mut read)),
                    Err(e) => Err(e),
                }
            } else {
                self.recv_one(&mut batch.bufs[0])
            };
            match got {
                Ok(0) => break,
                Ok(n) => read.datagrams += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(source = %self.name, error = %e, "udp receive error");
                    self.metrics.connection_error("recv");
                    break;
                }
            }
            let full = self
                .pending
                .as_ref()
                .is_some_and(|(c, _)| c.datagrams.len() >= FLUSH_DATAGRAMS);
            if full && !self.flush() {
                break;
            }
        }
        read.crowded = read.datagrams >= READ_MAX || read.datagrams * NAP_MARGIN > self.capacity;
        if read.datagrams == 0 && !read.queue_full {
            read.kernel_dropped |= self.catch_up_kernel_drops(Instant::now());
        }
        read
    }

    /// Asks the kernel for the socket's drop count (at most once per
    /// [`DROPS_CHECK`]) and counts the drops not counted yet; true if there
    /// were any. A datagram's SO_RXQ_OVFL count is the one when it was
    /// queued, so without this the drops after the last datagram queued
    /// (the end of a burst) were counted only once another datagram
    /// arrived.
    fn catch_up_kernel_drops(&mut self, now: Instant) -> bool {
        if !self.meminfo
            || self
                .drops_checked
                .is_some_and(|at| now.saturating_duration_since(at) < DROPS_CHECK)
        {
            return false;
        }
        self.drops_checked = Some(now);
        match getsockopt(&self.sock, MemInfo) {
            Ok(info) => self.note_kernel_drops(info[libc::SK_MEMINFO_DROPS as usize]),
            Err(e) => {
                tracing::debug!(source = %self.name, error = %e, "SO_MEMINFO not available; kernel drops are counted as datagrams arrive");
                self.meminfo = false;
                false
            }
        }
    }

    /// Starts a chunk now if none is being gathered.
    fn start_chunk(&mut self) {
        self.pending.get_or_insert_with(|| {
            let chunk = Chunk {
                listener: self.name.clone(),
                timezone: self.timezone,
                received_ms: now_millis(),
                bytes: Vec::new(),
                datagrams: Vec::with_capacity(FLUSH_DATAGRAMS),
                peers: Vec::new(),
            };
            (chunk, Instant::now() + LINGER)
        });
    }

    /// Hands the chunk over if it is due by `now`.
    fn flush_due(&mut self, now: Instant) {
        if self.pending.as_ref().is_some_and(|(_, at)| *at <= now) {
            self.flush();
        }
    }

    /// Hands the gathered chunk (if any datagram is in it) to the appender;
    /// false (and closed) when the appender is gone.
    fn flush(&mut self) -> bool {
        if let Some((chunk, _)) = self.pending.take() {
            if !chunk.datagrams.is_empty() {
                self.queue.hold(chunk.bytes.len(), &self.metrics);
                if self.appender.send(chunk).is_err() {
                    self.open = false;
                }
            }
        }
        self.open
    }

    /// Copies the datagrams of a `recvmmsg` batch into the chunk; how many.
    fn take_batch(&mut self, batch: &Batch, read: &mut Read) -> usize {
        for (i, d) in batch.received.iter().enumerate() {
            if let Some(drops) = d.kernel_drops {
                read.kernel_dropped |= self.note_kernel_drops(drops);
            }
            if d.truncated {
                self.metrics.oversized();
            }
            self.add(batch.payload(i), d.peer);
        }
        batch.received.len()
    }

    /// One datagram with `recv_from`, where `recvmmsg` is missing.
    fn recv_one(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (len, peer) = self.sock.recv_from(buf)?;
        self.add(&buf[..len], Some(peer));
        Ok(1)
    }

    /// Adds one datagram from `peer` to the chunk.
    fn add(&mut self, data: &[u8], peer: Option<SocketAddr>) {
        if let Some(p) = peer {
            // senders repeat: format each one once
            if self.last_peer.as_ref().is_none_or(|(last, _)| *last != p) {
                self.last_peer = Some((p, Arc::from(p.to_string())));
            }
        }
        self.start_chunk();
        let (chunk, _) = self.pending.as_mut().expect("started above");
        let peer = peer.map(|_| {
            let text = &self.last_peer.as_ref().expect("set above").1;
            if chunk
                .peers
                .last()
                .is_none_or(|last| !Arc::ptr_eq(last, text))
            {
                chunk.peers.push(text.clone());
            }
            chunk.peers.len() - 1
        });
        let at = chunk.bytes.len();
        chunk.bytes.extend_from_slice(data);
        chunk.datagrams.push((at..chunk.bytes.len(), peer));
    }

    /// Counts the kernel's drops since the last count; true if there were
    /// any. A count behind the last one (a datagram queued before the
    /// kernel was last asked, [`Self::catch_up_kernel_drops`]) is old news;
    /// the count wraps at `u32::MAX`.
    fn note_kernel_drops(&mut self, cumulative: u32) -> bool {
        let delta = cumulative.wrapping_sub(self.kernel_drops);
        if delta == 0 || delta > u32::MAX / 2 {
            return false;
        }
        self.metrics.dropped("kernel", u64::from(delta));
        self.kernel_drops = cumulative;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::bind_socket;
    use super::*;

    fn round(datagrams: usize) -> Read {
        Read {
            datagrams,
            ..Read::default()
        }
    }

    #[test]
    fn the_thread_naps_only_while_datagrams_flow_and_the_queue_has_room() {
        let ms = Duration::from_millis;
        assert_eq!(next_wait(round(50), NAP, true, None), Wait::Nap(NAP));
        assert_eq!(
            next_wait(round(50), NAP, true, Some(Duration::from_micros(300))),
            Wait::Nap(Duration::from_micros(300)),
            "a chunk due sooner shortens the nap"
        );
        assert_eq!(next_wait(round(0), NAP, true, None), Wait::Poll(IDLE_POLL));
        assert_eq!(
            next_wait(round(0), NAP, true, Some(ms(3))),
            Wait::Poll(ms(3))
        );
        assert_eq!(
            next_wait(round(50), NAP, false, None),
            Wait::Poll(IDLE_POLL),
            "after a kernel drop, every arrival is read at once"
        );
        let crowded = Read {
            crowded: true,
            ..round(900)
        };
        assert_eq!(next_wait(crowded, NAP, true, None), Wait::Now);
        let full = Read {
            queue_full: true,
            ..round(0)
        };
        assert_eq!(
            next_wait(full, NAP, false, None),
            Wait::Nap(NAP),
            "a full parse queue is not polled for"
        );
    }

    #[test]
    fn a_slow_flow_naps_until_its_chunk_is_due() {
        let ms = Duration::from_millis;
        // 5 datagrams in a 1 ms nap: 5k/s, slow
        assert_eq!(next_wait(round(5), NAP, true, None), Wait::Nap(LINGER));
        assert_eq!(
            next_wait(round(5), NAP, true, Some(ms(2))),
            Wait::Nap(ms(2)),
            "no later than the chunk is due"
        );
        // 20 in a 4 ms nap is still 5k/s; 20 in 1 ms is 20k/s
        assert_eq!(next_wait(round(20), LINGER, true, None), Wait::Nap(LINGER));
        assert_eq!(next_wait(round(20), NAP, true, None), Wait::Nap(NAP));
        // the first arrival after a long idle wait
        assert_eq!(next_wait(round(1), ms(900), true, None), Wait::Nap(LINGER));
        // after a drop, or with the parse queue full, as before
        assert_eq!(next_wait(round(5), NAP, false, None), Wait::Poll(IDLE_POLL));
        let full = Read {
            queue_full: true,
            ..round(5)
        };
        assert_eq!(next_wait(full, NAP, true, None), Wait::Nap(NAP));
    }

    #[test]
    fn naps_stop_for_a_second_after_drops_during_a_nap_only() {
        let now = Instant::now();
        let dropped = Read {
            kernel_dropped: true,
            ..round(10)
        };
        let mut naps = Naps::new();
        naps.after(dropped, false, now);
        assert!(naps.allowed(now), "drops behind a full parse queue");
        naps.after(round(10), true, now);
        assert!(naps.allowed(now), "a nap without drops");
        naps.after(dropped, true, now);
        assert!(!naps.allowed(now + NO_NAPS_AFTER_DROPS - Duration::from_millis(1)));
        assert!(naps.allowed(now + NO_NAPS_AFTER_DROPS));
    }

    /// A receiver of a fresh socket with `recv_buffer` bytes of SO_RCVBUF,
    /// and where its chunks go.
    fn receiver(recv_buffer: u64) -> (Receiver, SocketAddr, mpsc::UnboundedReceiver<Chunk>) {
        let sock = bind_socket("127.0.0.1:0".parse().unwrap(), recv_buffer).unwrap();
        let addr = sock.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Receiver::new(
            Arc::from("test"),
            chrono_tz::UTC,
            SourceMetrics::new("test"),
            sock,
            Arc::new(Queue::new(8 << 20)),
            tx,
        );
        (r, addr, rx)
    }

    #[test]
    fn a_read_is_crowded_when_it_finds_an_eighth_of_the_kernel_queue() {
        let (mut r, addr, _rx) = receiver(8 << 20);
        assert!(r.capacity >= 4096, "8MiB holds {} datagrams", r.capacity);
        r.capacity = 80; // as if the kernel had granted a small buffer
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = Batch::new();
        for (n, crowded) in [(10, false), (11, true)] {
            for _ in 0..n {
                sender.send_to(b"x", addr).unwrap();
            }
            let read = r.read(&mut batch);
            assert_eq!(read.datagrams, n);
            assert_eq!(read.crowded, crowded, "{n} of 80");
        }
    }

    /// The drops the kernel made after the last datagram it queued are
    /// counted once the socket is idle, without another datagram to carry
    /// their count: a burst into the smallest receive buffer, read after
    /// it, counts every datagram that did not arrive. (They were counted
    /// only when the next datagram came: none here, as its queue filled
    /// before the kernel dropped any.)
    #[test]
    fn kernel_drops_are_counted_while_the_socket_is_idle() {
        use metrics_exporter_prometheus::PrometheusBuilder;
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let series = "siem_relay_source_dropped_total{source=\"test\",reason=\"kernel\"}";
        let dropped = || {
            handle
                .render()
                .lines()
                .find_map(|l| l.strip_prefix(series))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap())
        };
        metrics::with_local_recorder(&recorder, || {
            // the smallest receive buffer the kernel allows
            let (mut r, addr, _chunks) = receiver(1);
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            let sent = 400;
            for _ in 0..sent {
                sender.send_to(&[b'x'; 1200], addr).unwrap();
            }
            let mut batch = Batch::new();
            let mut received = 0;
            let deadline = Instant::now() + 5 * DROPS_CHECK;
            while received + dropped() != sent {
                assert!(
                    Instant::now() < deadline,
                    "{received} received, {} counted as dropped of {sent}",
                    dropped()
                );
                received += r.read(&mut batch).datagrams;
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(received > 0 && received < sent, "{received} of {sent}");
        });
    }

    /// A drop count behind the last one seen (a datagram the kernel queued
    /// before the count was asked for) counts nothing; the count wraps.
    #[test]
    fn an_older_drop_count_counts_nothing() {
        let (mut r, _addr, _chunks) = receiver(1 << 20);
        assert!(r.note_kernel_drops(10));
        assert!(!r.note_kernel_drops(10));
        assert!(!r.note_kernel_drops(4), "older");
        assert_eq!(r.kernel_drops, 10);
        assert!(r.note_kernel_drops(12));
        r.kernel_drops = u32::MAX - 1;
        assert!(r.note_kernel_drops(3), "wrapped");
        assert_eq!(r.kernel_drops, 3);
    }

    /// Voluntary context switches of thread `tid` of this process so far.
    fn voluntary_switches(tid: i32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches")
    }

    /// At a steady 20k datagrams/s the thread wakes about once a nap, not
    /// once a datagram, and every datagram arrives, in order.
    #[test]
    fn a_steady_stream_is_read_in_naps_not_one_wake_up_a_datagram() {
        let (r, addr, mut chunks) = receiver(8 << 20);
        let (stop, shutdown) = watch::channel(false);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            tid_tx
                .send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            run(vec![r], shutdown)
        });
        let tid = tid_rx.recv().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"warm-up", addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let before = voluntary_switches(tid);
        let sent = 4000;
        let start = Instant::now();
        for i in 0..sent {
            // one every 50 µs, by the clock (sleeps are too coarse)
            let at = start + Duration::from_micros(50 * i);
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            sender.send_to(format!("{i}").as_bytes(), addr).unwrap();
        }
        let elapsed_ms = start.elapsed().as_millis() as u64;
        std::thread::sleep(Duration::from_millis(20));
        let switches = voluntary_switches(tid) - before;
        stop.send(true).unwrap();
        thread.join().unwrap();
        let mut got = Vec::new();
        while let Ok(chunk) = chunks.try_recv() {
            for (range, _) in &chunk.datagrams {
                got.push(String::from_utf8(chunk.bytes[range.clone()].to_vec()).unwrap());
            }
        }
        let want: Vec<String> = std::iter::once("warm-up".to_string())
            .chain((0..sent).map(|i| i.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(
            switches <= 2 * elapsed_ms + 50 && switches * 4 < sent,
            "{switches} wake-ups for {sent} datagrams in {elapsed_ms} ms"
        );
    }
}
