//! Load generator: RFC 5424 lines (~270 bytes, two SD elements, JSON MSG) or
//! RFC 3164 lines (~190 bytes, `key=value` text) over TCP (LF or
//! octet-counting), TLS (octet-counting) and UDP, and NDJSON over HTTP/1.1
//! keep-alive. Every event carries its sequence number and send timestamp
//! (ns since the epoch): in an SD param and in the JSON MSG, or in the text.

use super::sink::now_ns;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Proto {
    TcpLf,
    TcpOctet,
    Udp,
    /// NDJSON POST /v1/events with a bearer token
    HttpNdjson,
    /// TLS, octet-counted frames (RFC 5425)
    TlsOctet,
}

/// The syslog lines a stream or UDP load sends.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum LineFormat {
    /// [`syslog_line`]
    Rfc5424,
    /// [`bsd_line`]
    Rfc3164,
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub proto: Proto,
    pub format: LineFormat,
    pub addr: SocketAddr,
    /// TCP without TLS: more addresses every connection's lines also go to,
    /// each on a connection of its own (the `direct` row of a fan-out)
    pub also: Vec<SocketAddr>,
    pub events: u64,
    pub connections: usize,
    /// events per second over all connections; 0 = as fast as possible
    pub rate: u64,
    pub http_batch: usize,
    pub http_path: String,
    pub token: String,
    /// self-check: seqs the generator must skip / send twice
    pub skip_every: u64,
    pub dup_every: u64,
    /// the client side of [`Proto::TlsOctet`] (trusts the bench's own CA)
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Default, Debug, Clone)]
pub struct LoadResult {
    pub sent: u64,
    pub bytes: u64,
    pub started_ns: u64,
    pub elapsed: Duration,
    pub errors: Vec<String>,
}

fn rfc3339_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Appends `n` in decimal. The generator writes every line with this and
/// constant pieces instead of `write!`'s formatting machinery: it shares
/// the 2 cores with the relay under test, so its CPU is kept small (most of
/// what remains is the kernel's loopback TCP).
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// One RFC 5424 line (no framing, no LF).
pub fn syslog_line(out: &mut Vec<u8>, ts: &str, seq: u64, ts_ns: u64) {
    out.extend_from_slice(b"<86>1 ");
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(b" bench-host-01 siem-bench 4242 AUTH [bench@32473 seq=\"");
    push_u64(out, seq);
    out.extend_from_slice(b"\" ts_ns=\"");
    push_u64(out, ts_ns);
    out.extend_from_slice(b"\"][origin@32473 ip=\"10.1.2.3\" software=\"e2e\"] {\"seq\":");
    push_u64(out, seq);
    out.extend_from_slice(b",\"ts_ns\":");
    push_u64(out, ts_ns);
    out.extend_from_slice(
        b",\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\"outcome\":\"success\",\"user\":\"alice\"}",
    );
}

/// One RFC 3164 line (no framing, no LF): `ts` is `Mmm dd hh:mm:ss`.
pub fn bsd_line(out: &mut Vec<u8>, ts: &str, seq: u64, ts_ns: u64) {
    out.extend_from_slice(b"<86>");
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(b" bench-host-01 siem-bench[4242]: user login seq=");
    push_u64(out, seq);
    out.extend_from_slice(b" ts_ns=");
    push_u64(out, ts_ns);
    out.extend_from_slice(
        b" action=user.login category=AUTHENTICATION outcome=success user=alice src=10.1.2.3 software=e2e",
    );
}

/// Writes one line: (out, timestamp, seq, ts_ns).
type WriteLine = fn(&mut Vec<u8>, &str, u64, u64);

/// The line writer and the current timestamp in its format.
fn line_format(f: LineFormat) -> (WriteLine, fn() -> String) {
    match f {
        LineFormat::Rfc5424 => (syslog_line, rfc3339_now),
        LineFormat::Rfc3164 => (bsd_line, || {
            chrono::Utc::now().format("%b %e %H:%M:%S").to_string()
        }),
    }
}

/// One JSON event for the HTTP source (no LF).
pub fn json_event(out: &mut Vec<u8>, ts: &str, seq: u64, ts_ns: u64) {
    out.extend_from_slice(b"{\"seq\":");
    push_u64(out, seq);
    out.extend_from_slice(b",\"ts_ns\":");
    push_u64(out, ts_ns);
    out.extend_from_slice(b",\"timestamp\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(
        b"\",\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\
\"severity\":\"info\",\"outcome\":\"success\",\"actor\":{\"type\":\"user\",\"id\":\"u-1234\",\"email\":\"alice@example.com\"},\
\"source_ip\":\"10.1.2.3\",\"metadata\":{\"bench\":\"e2e\"}}",
    );
}

/// Sequence numbers connection `c` of `conns` sends: a contiguous range.
fn range_for(c: usize, conns: usize, n: u64) -> std::ops::Range<u64> {
    let per = n / conns as u64;
    let lo = per * c as u64;
    let hi = if c + 1 == conns { n } else { lo + per };
    lo..hi
}

struct Pacer {
    rate_per_conn: f64,
    start: Instant,
}
impl Pacer {
    fn wait(&self, sent: u64) {
        if self.rate_per_conn <= 0.0 {
            return;
        }
        let due = Duration::from_secs_f64(sent as f64 / self.rate_per_conn);
        let el = self.start.elapsed();
        if due > el + Duration::from_micros(200) {
            std::thread::sleep(due - el);
        }
    }
}

pub fn run(spec: &LoadSpec, stop: Arc<AtomicBool>) -> LoadResult {
    let started_ns = now_ns();
    let t0 = Instant::now();
    let conns = spec.connections.max(1);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let spec = spec.clone();
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<(u64, u64), String> {
                let range = range_for(c, conns, spec.events);
                let pacer = Pacer {
                    rate_per_conn: spec.rate as f64 / conns as f64,
                    start: Instant::now(),
                };
                match spec.proto {
                    Proto::TcpLf | Proto::TcpOctet | Proto::TlsOctet => {
                        send_tcp(&spec, range, &pacer, &stop)
                    }
                    Proto::Udp => send_udp(&spec, range, &pacer, &stop),
                    Proto::HttpNdjson => send_http(&spec, range, &pacer, &stop),
                }
            })
        })
        .collect();
    let mut res = LoadResult {
        started_ns,
        ..Default::default()
    };
    for h in handles {
        match h.join() {
            Ok(Ok((n, b))) => {
                res.sent += n;
                res.bytes += b;
            }
            Ok(Err(e)) => res.errors.push(e),
            Err(_) => res.errors.push("generator thread panicked".into()),
        }
    }
    res.elapsed = t0.elapsed();
    res
}

/// The seqs to send, with the self-check's holes and doubles applied.
fn plan(spec: &LoadSpec, range: std::ops::Range<u64>) -> impl Iterator<Item = u64> + '_ {
    range.flat_map(move |s| {
        let skip = spec.skip_every > 0 && s % spec.skip_every == spec.skip_every / 2;
        let dup = spec.dup_every > 0 && s % spec.dup_every == spec.dup_every / 3;
        let times = if skip {
            0
        } else if dup {
            2
        } else {
            1
        };
        std::iter::repeat_n(s, times)
    })
}

fn send_tcp(
    spec: &LoadSpec,
    range: std::ops::Range<u64>,
    pacer: &Pacer,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    let s = TcpStream::connect_timeout(&spec.addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {}: {e}", spec.addr))?;
    s.set_nodelay(true).ok();
    s.set_write_timeout(Some(Duration::from_secs(20))).ok();
    let Some(cfg) = &spec.tls else {
        let mut streams = vec![s];
        for addr in &spec.also {
            let s = TcpStream::connect_timeout(addr, Duration::from_secs(5))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_nodelay(true).ok();
            s.set_write_timeout(Some(Duration::from_secs(20))).ok();
            streams.push(s);
        }
        let mut tee = Tee(streams);
        let sent = write_lines(&mut tee, spec, range, pacer, stop)?;
        // a clean close: FIN after everything, and keep the socket alive briefly
        for s in &tee.0 {
            s.shutdown(std::net::Shutdown::Write).ok();
        }
        return Ok(sent);
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name");
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, s);
    let sent = write_lines(&mut tls, spec, range, pacer, stop)?;
    tls.conn.send_close_notify();
    tls.flush().map_err(|e| format!("tls close: {e}"))?;
    tls.sock.shutdown(std::net::Shutdown::Write).ok();
    // Read until the server closes too. Closing with unread bytes in the
    // receive queue (TLS 1.3 session tickets the client never asked to
    // read) makes the kernel send RST instead of FIN, and an RST discards
    // what the server has received and not yet read: lost in the kernel,
    // not in the relay.
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok();
    let mut sink = [0u8; 4096];
    while matches!(tls.read(&mut sink), Ok(n) if n > 0) {}
    Ok(sent)
}

/// Writes everything to each of its streams in turn.
struct Tee(Vec<TcpStream>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for s in &mut self.0 {
            s.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.flush())
    }
}

/// Writes the range's lines to `s`, LF-terminated or octet-counted, in
/// writes of ~64 KiB; returns (events, bytes).
fn write_lines(
    s: &mut impl Write,
    spec: &LoadSpec,
    range: std::ops::Range<u64>,
    pacer: &Pacer,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    let octet = matches!(spec.proto, Proto::TcpOctet | Proto::TlsOctet);
    let mut buf = Vec::with_capacity(128 * 1024);
    let mut line = Vec::with_capacity(512);
    let (mut sent, mut bytes) = (0u64, 0u64);
    let (write_line, now) = line_format(spec.format);
    let mut ts = now();
    for seq in plan(spec, range) {
        if sent % 256 == 0 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            ts = now();
            pacer.wait(sent);
        }
        line.clear();
        write_line(&mut line, &ts, seq, now_ns());
        if octet {
            push_u64(&mut buf, line.len() as u64);
            buf.push(b' ');
            buf.extend_from_slice(&line);
        } else {
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        sent += 1;
        if buf.len() >= 64 * 1024 || (spec.rate > 0 && sent % 64 == 0) {
            s.write_all(&buf)
                .map_err(|e| format!("tcp write after {sent} events: {e}"))?;
            bytes += buf.len() as u64;
            buf.clear();
        }
    }
    s.write_all(&buf).map_err(|e| format!("tcp write: {e}"))?;
    bytes += buf.len() as u64;
    s.flush().ok();
    Ok((sent, bytes))
}

fn send_udp(
    spec: &LoadSpec,
    range: std::ops::Range<u64>,
    pacer: &Pacer,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.connect(spec.addr).map_err(|e| e.to_string())?;
    let mut line = Vec::with_capacity(512);
    let (mut sent, mut bytes) = (0u64, 0u64);
    let (write_line, now) = line_format(spec.format);
    let mut ts = now();
    for seq in plan(spec, range) {
        if sent % 64 == 0 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            ts = now();
            pacer.wait(sent);
        }
        line.clear();
        write_line(&mut line, &ts, seq, now_ns());
        // ECONNREFUSED from an earlier ICMP is not our loss to count: retry once
        if s.send(&line).is_err() {
            s.send(&line).ok();
        }
        sent += 1;
        bytes += line.len() as u64;
    }
    Ok((sent, bytes))
}

/// Minimal HTTP/1.1 client: one keep-alive connection, Content-Length bodies.
pub struct HttpConn {
    addr: SocketAddr,
    s: Option<TcpStream>,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            s: None,
            buf: Vec::new(),
        }
    }
    /// POSTs and returns the status code.
    pub fn post(&mut self, path: &str, headers: &str, body: &[u8]) -> Result<u16, String> {
        if self.s.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(Duration::from_secs(30))).ok();
            s.set_write_timeout(Some(Duration::from_secs(30))).ok();
            self.s = Some(s);
            self.buf.clear();
        }
        let s = self.s.as_mut().unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n{headers}\r\n",
            self.addr,
            body.len()
        );
        let r = (|| -> Result<(u16, bool), String> {
            s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
            s.write_all(body).map_err(|e| e.to_string())?;
            let mut tmp = [0u8; 8192];
            let head_end = loop {
                if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                let n = s.read(&mut tmp).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                self.buf.extend_from_slice(&tmp[..n]);
            };
            let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
            self.buf.drain(..head_end + 4);
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .ok_or("bad status line")?;
            let close = head.contains("connection: close");
            if head.contains("transfer-encoding: chunked") {
                // read until the terminating 0-size chunk
                loop {
                    if let Some(p) = self.buf.windows(5).position(|w| w == b"0\r\n\r\n") {
                        self.buf.drain(..p + 5);
                        break;
                    }
                    let n = s.read(&mut tmp).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    self.buf.extend_from_slice(&tmp[..n]);
                }
            } else {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while self.buf.len() < len {
                    let n = s.read(&mut tmp).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    self.buf.extend_from_slice(&tmp[..n]);
                }
                let len = len.min(self.buf.len());
                self.buf.drain(..len);
            }
            Ok((status, close))
        })();
        match r {
            Ok((st, close)) => {
                if close {
                    self.s = None;
                }
                Ok(st)
            }
            Err(e) => {
                self.s = None;
                Err(e)
            }
        }
    }
}

fn send_http(
    spec: &LoadSpec,
    range: std::ops::Range<u64>,
    pacer: &Pacer,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    let mut c = HttpConn::new(spec.addr);
    let headers = format!("Authorization: Bearer {}\r\n", spec.token);
    let (mut sent, mut bytes) = (0u64, 0u64);
    let seqs: Vec<u64> = plan(spec, range).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut body = Vec::with_capacity(spec.http_batch * 300);
    for chunk in seqs.chunks(spec.http_batch.max(1)) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        pacer.wait(sent);
        body.clear();
        let ts = rfc3339_now();
        for &seq in chunk {
            json_event(&mut body, &ts, seq, now_ns());
            body.push(b'\n');
        }
        // retry 503 / 429 / connection errors (bounded): at-least-once from our side
        let mut tries = 0;
        loop {
            tries += 1;
            match c.post(&spec.http_path, &headers, &body) {
                Ok(st) if (200..300).contains(&st) => break,
                Ok(st) if (st == 503 || st == 429) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(st) => return Err(format!("HTTP {st} after {sent} events")),
                Err(e) if tries < 5 && Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(format!("http post after {sent} events: {e}")),
            }
        }
        sent += chunk.len() as u64;
        bytes += body.len() as u64;
    }
    Ok((sent, bytes))
}
