//! Counting sinks: receive events, find each one's sequence number and send
//! timestamp, mark it in a bitmap (lost / duplicated) and record latency.
//!
//! Works on what the relay or a peer forwards, whatever shape it has: the
//! original RFC 5424 line (seq in the SD param `seq="N"` and in the JSON MSG),
//! the canonical JSON event (MSG as an escaped string in `message`, parsed
//! fields in `metadata`, SD in `syslog.structured_data`), HEC envelopes,
//! NDJSON or a JSON array.

use hdrhistogram::Histogram;
use memchr::memmem::Finder;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn new_hist() -> Histogram<u64> {
    // microseconds, 1 us .. 10 min, 3 significant figures
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// Which sequence numbers arrived, and how often more than once.
pub struct Seen {
    bits: Vec<AtomicU64>,
    pub n: u64,
    pub unique: AtomicU64,
    pub dup: AtomicU64,
    /// events with no sequence number, or one out of range
    pub bogus: AtomicU64,
    /// siem-relay's `relay.buffer.overflow` notices: a destination's cursor
    /// jumped over records the ring had to reuse (`when_full = "drop_oldest"`)
    pub overflow_notices: AtomicU64,
    pub bytes: AtomicU64,
    /// wall clock (ns) of the last event that was new
    pub last_new_ns: AtomicU64,
}

impl Seen {
    pub fn new(n: u64) -> Seen {
        let words = (n as usize).div_ceil(64);
        Seen {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            n,
            unique: AtomicU64::new(0),
            dup: AtomicU64::new(0),
            bogus: AtomicU64::new(0),
            overflow_notices: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_new_ns: AtomicU64::new(0),
        }
    }
    /// Marks `seq`; true if it is the first time.
    pub fn mark(&self, seq: u64) -> bool {
        if seq >= self.n {
            self.bogus.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let bit = 1u64 << (seq % 64);
        let prev = self.bits[(seq / 64) as usize].fetch_or(bit, Ordering::Relaxed);
        if prev & bit != 0 {
            self.dup.fetch_add(1, Ordering::Relaxed);
            false
        } else {
            self.unique.fetch_add(1, Ordering::Relaxed);
            true
        }
    }
    pub fn lost(&self) -> u64 {
        // counted from the bitmap, not from `unique`, so the two must agree
        let mut set = 0u64;
        for (i, w) in self.bits.iter().enumerate() {
            let mut v = w.load(Ordering::Relaxed);
            if i == self.bits.len() - 1 && !self.n.is_multiple_of(64) {
                v &= (1u64 << (self.n % 64)) - 1;
            }
            set += v.count_ones() as u64;
        }
        self.n - set
    }
}

/// Finds `key` followed by 1..=4 of `\ " : = space` then digits, with no
/// identifier character just before the key. Returns the number.
pub fn find_num(hay: &[u8], key: &[u8]) -> Option<u64> {
    find_num_end(hay, key).map(|(v, _)| v)
}

/// [`find_num`], also returning where the number ends in `hay`.
pub fn find_num_end(hay: &[u8], key: &[u8]) -> Option<(u64, usize)> {
    static SEQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"seq"));
    static TS_NS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"ts_ns"));
    match key {
        b"seq" => find_num_with(hay, &SEQ),
        b"ts_ns" => find_num_with(hay, &TS_NS),
        _ => find_num_with(hay, &Finder::new(key)),
    }
}

/// [`find_num`] with the key's searcher built once (a byte-by-byte scan
/// for the key's first letter was a fifth of the bench process's CPU, CPU
/// the relay and its peers compete for on a small machine).
fn find_num_with(hay: &[u8], key: &Finder<'_>) -> Option<(u64, usize)> {
    let klen = key.needle().len();
    for i in key.find_iter(hay) {
        if i > 0 && (hay[i - 1].is_ascii_alphanumeric() || hay[i - 1] == b'_') {
            continue;
        }
        let mut j = i + klen;
        let mut sep = 0;
        while j < hay.len() && sep < 4 && matches!(hay[j], b'\\' | b'"' | b':' | b'=' | b' ') {
            j += 1;
            sep += 1;
        }
        if sep == 0 {
            continue;
        }
        let start = j;
        let mut v: u64 = 0;
        while j < hay.len() && hay[j].is_ascii_digit() && j - start < 20 {
            v = v.wrapping_mul(10).wrapping_add((hay[j] - b'0') as u64);
            j += 1;
        }
        if j > start {
            return Some((v, j));
        }
    }
    None
}

/// Per-thread view of a sink: marks events, keeps a local histogram and
/// merges it into the shared one now and then.
pub struct Recorder {
    seen: Arc<Seen>,
    shared: Arc<Mutex<Histogram<u64>>>,
    local: Histogram<u64>,
    last_flush: Instant,
    /// When the data being counted arrived (set once per read: a clock
    /// read per event cost the bench process 6% of its CPU).
    now: u64,
    /// The `now` last stored into `Seen::last_new_ns` (stored once per read).
    published_ns: u64,
}

impl Recorder {
    pub fn new(seen: Arc<Seen>, shared: Arc<Mutex<Histogram<u64>>>) -> Recorder {
        Recorder {
            seen,
            shared,
            local: new_hist(),
            last_flush: Instant::now(),
            now: now_ns(),
            published_ns: 0,
        }
    }
    /// Data arrived: the events counted next arrived now.
    pub fn arrived(&mut self) {
        self.now = now_ns();
    }
    pub fn event(&mut self, ev: &[u8]) {
        let ev = trim(ev);
        if ev.is_empty() {
            return;
        }
        match find_num_end(ev, b"seq") {
            Some((seq, seq_end)) => {
                if self.seen.mark(seq) {
                    let now = self.now;
                    // once per read: every event of a read has its time
                    if self.published_ns != now {
                        self.seen.last_new_ns.fetch_max(now, Ordering::Relaxed);
                        self.published_ns = now;
                    }
                    // every shape a relay or peer forwards has the send time
                    // after the sequence number; the whole event otherwise
                    let ts = find_num(&ev[seq_end..], b"ts_ns").or_else(|| find_num(ev, b"ts_ns"));
                    if let Some(ts) = ts {
                        let us = now.saturating_sub(ts) / 1000;
                        self.local.saturating_record(us.max(1));
                    }
                }
            }
            None if contains(ev, b"relay.buffer.overflow") => {
                self.seen.overflow_notices.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.seen.bogus.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    pub fn bytes(&self, n: usize) {
        self.seen.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn maybe_flush(&mut self, force: bool) {
        if !self.local.is_empty()
            && (force || self.last_flush.elapsed() > Duration::from_millis(100))
        {
            self.shared.lock().unwrap().add(&self.local).ok();
            self.local.reset();
            self.last_flush = Instant::now();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.maybe_flush(true);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() || *first == 0 {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() || *last == 0 {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Splits a syslog TCP stream into frames: octet-counting (`LEN SP MSG`) when
/// a frame starts with a digit, else LF-terminated. Returns bytes consumed.
pub fn split_syslog_frames(buf: &[u8], mut on_frame: impl FnMut(&[u8])) -> usize {
    let mut pos = 0;
    loop {
        // skip stray newlines between frames
        while pos < buf.len() && (buf[pos] == b'\n' || buf[pos] == b'\r') {
            pos += 1;
        }
        if pos >= buf.len() {
            return pos;
        }
        let rest = &buf[pos..];
        if rest[0].is_ascii_digit() {
            let Some(sp) = rest.iter().take(12).position(|&b| b == b' ') else {
                if rest.len() >= 12 {
                    // not a length after all: treat as an LF line
                    match memchr::memchr(b'\n', rest) {
                        Some(nl) => {
                            on_frame(&rest[..nl]);
                            pos += nl + 1;
                            continue;
                        }
                        None => return pos,
                    }
                }
                return pos;
            };
            let len: usize = match std::str::from_utf8(&rest[..sp])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                Some(l) => l,
                None => match memchr::memchr(b'\n', rest) {
                    Some(nl) => {
                        on_frame(&rest[..nl]);
                        pos += nl + 1;
                        continue;
                    }
                    None => return pos,
                },
            };
            if rest.len() < sp + 1 + len {
                return pos;
            }
            on_frame(&rest[sp + 1..sp + 1 + len]);
            pos += sp + 1 + len;
        } else {
            match memchr::memchr(b'\n', rest) {
                Some(nl) => {
                    on_frame(&rest[..nl]);
                    pos += nl + 1;
                }
                None => return pos,
            }
        }
    }
}

/// Splits a JSON body into events: the top-level objects of NDJSON or of
/// concatenated objects (HEC batches), or the elements of a top-level array.
/// Anything that is not JSON is split by lines.
pub fn split_json_events(body: &[u8], mut on_event: impl FnMut(&[u8])) {
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else { return };
    if body[first] != b'{' && body[first] != b'[' {
        return split_lines(body, on_event);
    }
    let event_depth = if body[first] == b'[' { 1 } else { 0 };
    let mut depth = 0i32;
    let mut in_str = false;
    let mut start = None;
    let mut i = 0;
    while i < body.len() {
        if in_str {
            // most of a document's bytes are inside strings: jump to the
            // next quote or backslash (read a byte at a time, the bench
            // process took 73-78% of a core in tcp_elastic, 60-64% now: CPU
            // the relay under test competes for)
            match memchr::memchr2(b'"', b'\\', &body[i..]) {
                Some(k) if body[i + k] == b'\\' => i += k + 2,
                Some(k) => {
                    in_str = false;
                    i += k + 1;
                }
                None => return,
            }
            continue;
        }
        let b = body[i];
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                if depth == event_depth && b == b'{' {
                    start = Some(i);
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == event_depth && b == b'}' {
                    if let Some(s) = start.take() {
                        on_event(&body[s..=i]);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Splits an NDJSON body (an Elasticsearch `_bulk` request: one JSON
/// object a line, by the bulk API's definition) at its LFs. Walking the
/// JSON structure instead, as [`split_json_events`] must for HEC batches,
/// kept the bench process at 60-64% of a core in tcp_elastic, CPU the
/// relay under test competes for.
pub fn split_lines(body: &[u8], mut on_line: impl FnMut(&[u8])) {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', body) {
        on_line(&body[start..nl]);
        start = nl + 1;
    }
    if start < body.len() {
        on_line(&body[start..]);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum SinkKind {
    /// syslog over TCP, octet-counting or LF, detected per frame
    SyslogTcp,
    /// HTTP: HEC, NDJSON or JSON array; answers HEC success
    Http,
    /// UDP syslog datagrams (only for the direct row)
    Udp,
    /// TCP: accepts and never reads
    StalledTcp,
    /// HTTP: answers every request 503
    StalledHttp,
}

pub struct Sink {
    pub port: u16,
    pub kind: SinkKind,
    pub seen: Arc<Seen>,
    pub hist: Arc<Mutex<Histogram<u64>>>,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub conns: Arc<AtomicU64>,
}

impl Sink {
    pub fn start(kind: SinkKind, n: u64) -> std::io::Result<Sink> {
        let seen = Arc::new(Seen::new(n));
        let hist = Arc::new(Mutex::new(new_hist()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicU64::new(0));
        let port;
        if kind == SinkKind::Udp {
            let sock = UdpSocket::bind("127.0.0.1:0")?;
            set_rcvbuf(&sock, 16 << 20);
            port = sock.local_addr()?.port();
            sock.set_read_timeout(Some(Duration::from_millis(50)))?;
            let (seen2, hist2, stop2) = (seen.clone(), hist.clone(), stop.clone());
            threads.lock().unwrap().push(std::thread::spawn(move || {
                let mut rec = Recorder::new(seen2, hist2);
                let mut buf = vec![0u8; 65536];
                while !stop2.load(Ordering::Relaxed) {
                    match sock.recv(&mut buf) {
                        Ok(n) => {
                            rec.arrived();
                            rec.bytes(n);
                            rec.event(&buf[..n]);
                            rec.maybe_flush(false);
                        }
                        Err(_) => rec.maybe_flush(true),
                    }
                }
            }));
        } else {
            let l = TcpListener::bind("127.0.0.1:0")?;
            port = l.local_addr()?.port();
            l.set_nonblocking(true)?;
            let (seen2, hist2, stop2, th2, conns2) = (
                seen.clone(),
                hist.clone(),
                stop.clone(),
                threads.clone(),
                conns.clone(),
            );
            threads.lock().unwrap().push(std::thread::spawn(move || {
                let mut stalled: Vec<TcpStream> = Vec::new();
                while !stop2.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            conns2.fetch_add(1, Ordering::Relaxed);
                            s.set_nonblocking(false).ok();
                            if kind == SinkKind::StalledTcp {
                                // small receive window so the sender stalls quickly
                                stalled.push(s);
                                continue;
                            }
                            s.set_read_timeout(Some(Duration::from_millis(50))).ok();
                            let rec = Recorder::new(seen2.clone(), hist2.clone());
                            let stop3 = stop2.clone();
                            let h = std::thread::spawn(move || match kind {
                                SinkKind::SyslogTcp => serve_syslog(s, rec, stop3),
                                _ => serve_http(s, rec, stop3, kind == SinkKind::StalledHttp),
                            });
                            th2.lock().unwrap().push(h);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                drop(stalled);
            }));
        }
        Ok(Sink {
            port,
            kind,
            seen,
            hist,
            stop,
            threads,
            conns,
        })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let hs: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for h in hs {
            h.join().ok();
        }
        // accept thread may have pushed more while we joined
        let hs: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for h in hs {
            h.join().ok();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn set_rcvbuf(sock: &UdpSocket, bytes: i32) {
    let _ = socket2::SockRef::from(sock).set_recv_buffer_size(bytes.max(0) as usize);
}

fn serve_syslog(mut s: TcpStream, mut rec: Recorder, stop: Arc<AtomicBool>) {
    // read straight into `buf` after the partial frame kept from the last
    // read (copying every read into a second buffer cost the bench process
    // a tenth of its CPU)
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0;
    while !stop.load(Ordering::Relaxed) {
        if kept == buf.len() {
            buf.resize(buf.len() * 2, 0); // a frame longer than the buffer
        }
        match s.read(&mut buf[kept..]) {
            Ok(0) => break,
            Ok(n) => {
                rec.arrived();
                rec.bytes(n);
                let filled = kept + n;
                let used = split_syslog_frames(&buf[..filled], |f| rec.event(f));
                buf.copy_within(used..filled, 0);
                kept = filled - used;
                rec.maybe_flush(false);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                rec.maybe_flush(true)
            }
            Err(_) => break,
        }
    }
    // a last frame without its LF
    if kept > 0 && !buf[0].is_ascii_digit() {
        rec.event(&buf[..kept]);
    }
}

/// Reads one HTTP/1.1 request (Content-Length or chunked, gzip if said).
/// Returns (head, body) or None at EOF / stop.
/// `tmp` is the read buffer, kept by the caller (allocating and zeroing
/// 256 KiB per request showed in the HTTP sink's profile).
fn read_request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    tmp: &mut [u8],
    stop: &AtomicBool,
    rec: &mut Recorder,
) -> Option<(String, Vec<u8>)> {
    let mut fill = |s: &mut TcpStream, buf: &mut Vec<u8>, rec: &mut Recorder| -> bool {
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match s.read(tmp) {
                Ok(0) => return false,
                Ok(n) => {
                    rec.bytes(n);
                    buf.extend_from_slice(&tmp[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    rec.maybe_flush(true)
                }
                Err(_) => return false,
            }
        }
    };
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if !fill(s, buf, rec) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end + 4);
    let lower = head.to_ascii_lowercase();
    let header = |name: &str| -> Option<String> {
        lower.lines().find_map(|l| {
            l.strip_prefix(name)
                .map(|v| v.trim_start_matches(':').trim().to_string())
        })
    };
    if header("expect").is_some_and(|v| v.contains("100-continue"))
        && s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
    {
        return None;
    }
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let line_end = loop {
                if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                if !fill(s, buf, rec) {
                    return None;
                }
            };
            let size_str = String::from_utf8_lossy(&buf[..line_end]).to_string();
            let size =
                usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                if !fill(s, buf, rec) {
                    return None;
                }
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        buf.reserve(len.saturating_sub(buf.len()));
        while buf.len() < len {
            if !fill(s, buf, rec) {
                return None;
            }
        }
        // the body keeps the buffer; what follows it (usually nothing) is
        // the buffer from now on: no copy of the body
        let rest = buf.split_off(len);
        body = std::mem::replace(buf, rest);
    }
    if header("content-encoding").is_some_and(|v| v.contains("gzip")) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .ok()?;
        body = out;
    }
    Some((head, body))
}

fn serve_http(mut s: TcpStream, mut rec: Recorder, stop: Arc<AtomicBool>, stalled: bool) {
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 256 * 1024];
    let mut bulk_answer = Vec::new();
    while let Some((head, body)) = read_request(&mut s, &mut buf, &mut tmp, &stop, &mut rec) {
        let close = head.to_ascii_lowercase().contains("connection: close");
        let target = head.split(' ').nth(1).unwrap_or("");
        let resp: &[u8] = if stalled {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 39\r\n\r\n{\"text\":\"Server is busy\",\"code\":9}\n\n\n\n\n"
        } else if head.starts_with("GET") && target == "/" {
            // an Elasticsearch client's version probe
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n{\"version\":{\"number\":\"7.17.0\"}}"
        } else if head.starts_with("POST") && target.starts_with("/_bulk") {
            // Elasticsearch bulk: an action line before each document; the
            // answer has one item per action, all created
            rec.arrived();
            let mut docs = 0usize;
            split_lines(&body, |ev| {
                if is_bulk_action(ev) {
                    docs += 1;
                } else {
                    rec.event(ev);
                }
            });
            bulk_answer.clear();
            let items = vec![r#"{"create":{"status":201}}"#; docs].join(",");
            let json = format!(r#"{{"took":1,"errors":false,"items":[{items}]}}"#);
            bulk_answer.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                    json.len()
                )
                .as_bytes(),
            );
            &bulk_answer
        } else {
            if head.starts_with("POST") || head.starts_with("PUT") {
                rec.arrived();
                split_json_events(&body, |ev| rec.event(ev));
            }
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"text\":\"Success\",\"code\":0}"
        };
        rec.maybe_flush(false);
        if s.write_all(resp).is_err() || close {
            break;
        }
    }
}

/// An Elasticsearch bulk action line (`{"index":…}`, `{"create":…}`).
pub fn is_bulk_action(ev: &[u8]) -> bool {
    let ev = trim(ev);
    ev.starts_with(br#"{"index":"#) || ev.starts_with(br#"{"create":"#)
}
