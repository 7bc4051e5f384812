//! End-to-end benchmark: load generator → siem-relay (or rsyslog, syslog-ng,
//! or nothing: `direct`) → counting sinks. See BENCHMARKS.md.
//!
//! cargo bench --bench e2e -- [--events N] [--runs K] [--scenario A,B]
//!     [--relay PATH] [--peers rsyslog,syslog-ng] [--direct] [--no-relay]
//!     [--udp-rate R] [--rate R] [--connections C] [--http-batch B]
//!     [--relay-format syslog|json] [--tcp-congestion NAME] [--max-udp-rate R]
//!     [--udp-receive-nice N] [--udp-queue-bytes B] [--tcp-queue-bytes B]
//!     [--peer-disk-queue] [--peer-durable-queue]
//!     [--timeout SECS]
//!     [--keep] [--self-check]
//!
//! It builds nothing: the relay binary must already exist
//! (`cargo build --release`), and the peers are installed by
//! `benches/peers/install.sh`.

#[path = "e2e/load.rs"]
mod load;
#[path = "e2e/procs.rs"]
mod procs;
#[path = "e2e/sink.rs"]
mod sink;

use load::{LineFormat, LoadResult, LoadSpec, Proto};
use procs::{free_port, render, Proc};
use sink::{Sink, SinkKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Out {
    Syslog,
    Hec,
    StalledSyslog,
    /// HEC endpoint answering every request 503
    StalledHec,
    /// Elasticsearch `_bulk` (the sink answers every item created).
    Elastic,
    /// Syslog over UDP: one datagram per event (RFC 5426), no flow control.
    SyslogUdp,
    /// Datadog logs intake: gzip JSON arrays (the destination's default).
    Datadog,
}

impl Out {
    fn stalls(&self) -> bool {
        matches!(self, Out::StalledSyslog | Out::StalledHec)
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    input: Proto,
    /// the syslog lines of a TCP, TLS or UDP input
    format: LineFormat,
    conns: usize,
    outs: Vec<Out>,
    what: &'static str,
}

impl Scenario {
    /// Whether events travel over UDP on the way in or out: the input is
    /// paced at `--udp-rate`, and loss is a rate to report, not a failure.
    fn udp(&self) -> bool {
        self.input == Proto::Udp || self.outs.contains(&Out::SyslogUdp)
    }
}

fn scenarios() -> Vec<Scenario> {
    use LineFormat::*;
    use Out::*;
    use Proto::*;
    vec![
        Scenario {
            name: "tcp_syslog",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog],
            what: "TCP LF in → syslog TCP out",
        },
        Scenario {
            name: "tcp_3164",
            input: TcpLf,
            format: Rfc3164,
            conns: 1,
            outs: vec![Syslog],
            what: "TCP LF in, RFC 3164 (BSD) lines of ~190 bytes → syslog TCP out",
        },
        Scenario {
            name: "tcp_octet",
            input: TcpOctet,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog],
            what: "TCP octet-counting in → syslog TCP out",
        },
        Scenario {
            name: "tls_syslog",
            input: TlsOctet,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog],
            what: "TLS in (RFC 5425 octet-counting, a certificate of the bench's own CA) → syslog TCP out",
        },
        Scenario {
            name: "tcp16",
            input: TcpLf,
            format: Rfc5424,
            conns: 16,
            outs: vec![Syslog],
            what: "16 TCP connections → syslog TCP out",
        },
        Scenario {
            name: "udp_syslog",
            input: Udp,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog],
            what: "UDP in (paced) → syslog TCP out",
        },
        Scenario {
            name: "udp_3164",
            input: Udp,
            format: Rfc3164,
            conns: 1,
            outs: vec![Syslog],
            what: "UDP in (paced), RFC 3164 (BSD) lines → syslog TCP out",
        },
        Scenario {
            name: "udp_out",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![SyslogUdp],
            what: "TCP in (paced at the UDP rate) → syslog UDP out, a datagram per event (rsyslog: omfwd)",
        },
        Scenario {
            name: "http_hec",
            input: HttpNdjson,
            format: Rfc5424,
            conns: 4,
            outs: vec![Hec],
            what: "HTTP NDJSON in (4 conns) → Splunk HEC out",
        },
        Scenario {
            name: "tcp_hec",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Hec],
            what: "TCP in → HTTP/HEC out (peer-comparable)",
        },
        Scenario {
            name: "tcp_elastic",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Elastic],
            what: "TCP in → Elasticsearch _bulk out (rsyslog: omelasticsearch)",
        },
        Scenario {
            name: "tcp_datadog",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Datadog],
            what: "TCP in → Datadog logs out (gzip JSON arrays, the destination's default)",
        },
        Scenario {
            name: "fanout5",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog; 5],
            what: "TCP in → 5 syslog TCP sinks (events/s = per destination, all 5 complete)",
        },
        Scenario {
            name: "fanout4",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog; 4],
            what: "TCP in → 4 syslog TCP sinks (the baseline of fanout5_stalled)",
        },
        Scenario {
            name: "fanout5_stalled",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog, Syslog, Syslog, Syslog, StalledSyslog],
            what: "TCP in → 4 syslog TCP sinks + 1 sink that never reads",
        },
        Scenario {
            name: "stalled",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog, StalledSyslog],
            what: "TCP in → healthy + stalled sink",
        },
        Scenario {
            name: "stalled_hec",
            input: TcpLf,
            format: Rfc5424,
            conns: 1,
            outs: vec![Syslog, StalledHec],
            what: "TCP in → healthy syslog sink + HEC answering 503",
        },
    ]
}

/// The peers' queues (siem-relay always writes every event to its ring on disk).
#[derive(Clone, Copy, PartialEq, Debug)]
enum PeerQueue {
    /// In memory only (the default).
    Memory,
    /// `--peer-disk-queue`: memory first, spilling to disk when it fills
    /// (rsyslog disk-assisted queues, syslog-ng `disk-buffer(reliable(no))`).
    DiskAssisted,
    /// `--peer-durable-queue`: every event through the disk, like the ring
    /// (rsyslog `queue.type="Disk"`, syslog-ng `disk-buffer(reliable(yes))`).
    Disk,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    Relay,
    Rsyslog,
    SyslogNg,
    Direct,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Relay => "siem-relay",
            Target::Rsyslog => "rsyslog",
            Target::SyslogNg => "syslog-ng",
            Target::Direct => "direct",
        }
    }
    /// None if the target runs the scenario, else why not.
    fn unsupported(self, s: &Scenario) -> Option<&'static str> {
        match (self, s.name) {
            (
                Target::Direct,
                "fanout5_stalled" | "stalled" | "stalled_hec" | "tcp_hec" | "tcp_elastic"
                | "tcp_datadog" | "tls_syslog" | "udp_out",
            ) => Some("needs a relay"),
            (Target::Rsyslog | Target::SyslogNg, "tcp_datadog") => {
                Some("no gzip HTTP output (rsyslog: no omhttp in Debian; syslog-ng 3.38's http() does not compress)")
            }
            (Target::Rsyslog | Target::SyslogNg, "http_hec") => Some("no HTTP source; see tcp_hec"),
            (Target::Rsyslog, "tcp_hec" | "stalled_hec") => {
                Some("omhttp not in Debian's rsyslog; see tcp_elastic")
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Opts {
    events: u64,
    runs: usize,
    scenarios: Vec<String>,
    relay: Option<PathBuf>,
    relay_explicit: bool,
    no_relay: bool,
    peers: Vec<Target>,
    direct: bool,
    udp_rate: u64,
    rate: u64,
    connections: Option<usize>,
    http_batch: usize,
    relay_format: String,
    /// `--tcp-congestion NAME`: the relay's syslog destinations' `tcp_congestion`
    /// (default unset: the system's, as the peers use).
    tcp_congestion: Option<String>,
    /// `--max-udp-rate R`: the relay's UDP syslog destinations' `max_udp_rate`
    max_udp_rate: Option<u32>,
    /// `--udp-receive-nice N`: the relay's UDP source's `receive_nice`
    udp_receive_nice: Option<i32>,
    /// `--udp-queue-bytes B`: the relay's UDP source's `queue_bytes`
    /// (default: as many datagrams as the peers' queues hold messages)
    udp_queue_bytes: Option<u64>,
    /// `--tcp-queue-bytes B`: the relay's TCP source's `queue_bytes`
    /// (default: unset, the source's default)
    tcp_queue_bytes: Option<u64>,
    peer_queue: PeerQueue,
    timeout: Duration,
    self_check: bool,
    keep: bool,
    syslog_ng_root: PathBuf,
    /// `--ring-bytes`; unset: [`DEFAULT_RING`], or [`STALLED_RING`] where a sink stalls.
    ring_bytes: Option<String>,
    /// `--segment-bytes`: the relay's `buffer.segment_bytes` (see [`ring_sizes`]).
    segment_bytes: Option<String>,
    /// `--fsync`: the relay's `buffer.fsync` (default `100ms`, the targets'
    /// setting; `never` leaves write-back to the kernel, for comparison).
    fsync: String,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"))
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench e2e -- [--events N] [--runs K] [--scenario NAME[,NAME]] [--relay PATH] \
[--no-relay] [--peers rsyslog,syslog-ng] [--direct] [--udp-rate EV_PER_S] [--rate EV_PER_S] [--connections C] \
[--http-batch B] [--relay-format syslog|json] [--tcp-congestion NAME] [--max-udp-rate R] [--udp-receive-nice N] [--udp-queue-bytes B] [--tcp-queue-bytes B] [--peer-disk-queue] [--peer-durable-queue] [--ring-bytes SIZE] [--segment-bytes SIZE] [--fsync 100ms|never|…] [--timeout SECS] [--keep] [--self-check]\n\
scenarios: {}",
        scenarios().iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Opts {
    let mut o = Opts {
        events: 200_000,
        runs: 3,
        scenarios: Vec::new(),
        relay: None,
        relay_explicit: false,
        no_relay: false,
        peers: Vec::new(),
        direct: false,
        udp_rate: 50_000,
        rate: 0,
        connections: None,
        http_batch: 500,
        relay_format: "syslog".into(),
        tcp_congestion: None,
        max_udp_rate: None,
        udp_receive_nice: None,
        udp_queue_bytes: None,
        tcp_queue_bytes: None,
        peer_queue: PeerQueue::Memory,
        timeout: Duration::from_secs(30),
        self_check: false,
        keep: false,
        syslog_ng_root: std::env::var_os("SYSLOG_NG_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("peers/syslog-ng")),
        ring_bytes: None,
        segment_bytes: None,
        fsync: "100ms".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let val = |i: &mut usize| -> String {
        *i += 1;
        args.get(*i).cloned().unwrap_or_else(|| usage())
    };
    while i < args.len() {
        let a = args[i].clone();
        // accept --key=value too
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let v = |i: &mut usize| inline.clone().unwrap_or_else(|| val(i));
        let num = |s: String| -> u64 { s.replace('_', "").parse().unwrap_or_else(|_| usage()) };
        match key.as_str() {
            "--bench" => {} // cargo bench passes it to harness=false benches
            "--events" | "-n" => o.events = num(v(&mut i)),
            "--runs" => o.runs = num(v(&mut i)).max(1) as usize,
            "--scenario" | "--scenarios" => {
                o.scenarios.extend(v(&mut i).split(',').map(str::to_string))
            }
            "--relay" => {
                o.relay = Some(PathBuf::from(v(&mut i)));
                o.relay_explicit = true
            }
            "--no-relay" => o.no_relay = true,
            "--peers" => {
                for p in v(&mut i).split(',') {
                    match p.trim() {
                        "rsyslog" => o.peers.push(Target::Rsyslog),
                        "syslog-ng" | "syslog_ng" => o.peers.push(Target::SyslogNg),
                        "all" => o.peers.extend([Target::Rsyslog, Target::SyslogNg]),
                        "" | "none" => {}
                        other => {
                            eprintln!("unknown peer {other}");
                            usage()
                        }
                    }
                }
            }
            "--direct" => o.direct = true,
            "--udp-rate" => o.udp_rate = num(v(&mut i)),
            "--rate" => o.rate = num(v(&mut i)),
            "--connections" => o.connections = Some(num(v(&mut i)) as usize),
            "--http-batch" => o.http_batch = num(v(&mut i)).max(1) as usize,
            "--relay-format" => o.relay_format = v(&mut i),
            "--tcp-congestion" => o.tcp_congestion = Some(v(&mut i)),
            "--max-udp-rate" => o.max_udp_rate = Some(num(v(&mut i)) as u32),
            "--udp-receive-nice" => {
                o.udp_receive_nice = Some(v(&mut i).parse().unwrap_or_else(|_| usage()))
            }
            "--udp-queue-bytes" => o.udp_queue_bytes = Some(num(v(&mut i))),
            "--tcp-queue-bytes" => o.tcp_queue_bytes = Some(num(v(&mut i))),
            "--peer-disk-queue" => o.peer_queue = PeerQueue::DiskAssisted,
            "--peer-durable-queue" => o.peer_queue = PeerQueue::Disk,
            "--ring-bytes" => o.ring_bytes = Some(v(&mut i)),
            "--segment-bytes" => o.segment_bytes = Some(v(&mut i)),
            "--fsync" => o.fsync = v(&mut i),
            "--timeout" => o.timeout = Duration::from_secs(num(v(&mut i))),
            "--self-check" => o.self_check = true,
            "--keep" => o.keep = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
        i += 1;
    }
    let known: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
    for s in &o.scenarios {
        if s != "all" && !known.contains(&s.as_str()) {
            eprintln!("unknown scenario {s}");
            usage()
        }
    }
    if o.relay.is_none() {
        o.relay = Some(target_dir().join("release/siem-relay"));
    }
    if !o.events.is_multiple_of(RELAY_BATCH) {
        eprintln!(
            "note: --events {} is not a multiple of the relay's batch_size ({RELAY_BATCH}): \
its last batch leaves at batch_timeout (1s for the HTTP destinations, 10ms for syslog), \
and a run's events/s includes that wait",
            o.events
        );
    }
    o
}

// ---------------------------------------------------------------- configs

/// The relay's ring unless `--ring-bytes` says otherwise: smaller than what a
/// run writes, so the ring wraps and the writer reuses segment files whose
/// blocks are allocated and whose pages are already in the page cache, as in
/// a relay that has been running a while. A fresh ring writes every page for
/// the first time, which on this VM (free memory is handed back to the
/// hypervisor) costs a host page fault per 4 KiB, and allocates every block,
/// which makes each `fdatasync` commit ext4's journal; `--ring-bytes 2GiB`
/// measures that cold start (BENCHMARKS.md).
const DEFAULT_RING: u64 = 256 << 20;
/// The relay destinations' `batch_size` (their default). A run whose event
/// count is not a multiple of it ends with a partial batch, which leaves
/// only at `batch_timeout` (1 s for the HTTP destinations; 10 ms for
/// `syslog` since it became that destination's default): 2M events in
/// batches of 1500 measured 661k events/s, 1,999,500 events 980k.
const RELAY_BATCH: u64 = 500;
/// Where one sink stalls, the ring holds the whole run, so the stalled
/// destination never overflows and its overflow notices never reach the
/// healthy sinks' counts.
const STALLED_RING: &str = "2GiB";
/// About what one bench event takes in the ring (record header, canonical
/// JSON body, syslog hint) for the RFC 5424 line: ~650 bytes.
const RECORD_BYTES: u64 = 700;

/// The fastest paced input whose run may get a smaller ring: at this rate
/// the destinations stay within milliseconds of the input, so a ring of a
/// few MiB never fills. Unpaced, a destination may lag by tens of MiB (the
/// p99 latency at full rate is ~60 ms, fan-out's ~200 ms), and a small ring
/// would block the input (TCP) or drop datagrams (UDP).
const SMALL_RING_MAX_RATE: u64 = 50_000;

/// The relay's `buffer.max_bytes` and `segment_bytes`. By default
/// [`DEFAULT_RING`] in 64 MiB segments. A run paced at up to
/// [`SMALL_RING_MAX_RATE`] that writes less than twice that (the low-rate
/// ones) gets a quarter of what it writes (a power of two, at least 8 MiB)
/// in four segments, so its ring too wraps early in the run instead of
/// writing fresh files throughout.
fn ring_sizes(o: &Opts, s: &Scenario) -> (String, String) {
    const MIB: u64 = 1 << 20;
    let segment = |d: &str| o.segment_bytes.clone().unwrap_or_else(|| d.to_string());
    if let Some(r) = &o.ring_bytes {
        return (r.clone(), segment("64MiB"));
    }
    if s.outs.iter().any(Out::stalls) {
        return (STALLED_RING.into(), segment("64MiB"));
    }
    let rate = if s.udp() { o.udp_rate } else { o.rate };
    let written = o.events.saturating_mul(RECORD_BYTES);
    if rate == 0 || rate > SMALL_RING_MAX_RATE || written >= 2 * DEFAULT_RING {
        return (format!("{}MiB", DEFAULT_RING / MIB), segment("64MiB"));
    }
    let ring = prev_power_of_two((written / 4).max(8 * MIB));
    (
        format!("{}MiB", ring / MIB),
        segment(&format!("{}MiB", ring / 4 / MIB)),
    )
}

fn prev_power_of_two(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}

fn relay_config(o: &Opts, s: &Scenario, dir: &Path, in_port: u16, sinks: &[Sink]) -> String {
    let (ring, segment) = ring_sizes(o, s);
    let mut c = format!(
        "# generated by benches/e2e.rs, scenario {}\n\
data_dir = \"{}\"\n\n\
[buffer]\nmax_bytes = \"{}\"\nsegment_bytes = \"{}\"\nfsync = \"{}\"\n\n",
        s.name,
        dir.join("data").display(),
        ring,
        segment,
        o.fsync
    );
    match s.input {
        Proto::TcpLf | Proto::TcpOctet => {
            c += &format!("[sources.bench_tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{in_port}\"\n");
            if let Some(b) = o.tcp_queue_bytes {
                c += &format!("queue_bytes = {b}\n");
            }
            c += "\n";
        }
        Proto::TlsOctet => {
            let (_, cert, key) = tls_files(dir);
            c += &format!(
                "[sources.bench_tls]\ntype = \"syslog_tls\"\naddress = \"127.0.0.1:{in_port}\"\ncert = \"{}\"\nkey = \"{}\"\n\n",
                cert.display(),
                key.display()
            )
        }
        Proto::Udp => {
            // the TCP source on the same port number is only for the readiness poll
            c += &format!("[sources.bench_tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{in_port}\"\n\n");
            // queue_bytes: room for as many datagrams as the peers' queues
            // hold messages (`queue_size`), at the ~300 bytes of an event
            c += &format!(
                "[sources.bench_udp]\ntype = \"syslog_udp\"\naddress = \"127.0.0.1:{in_port}\"\nsockets = 4\nqueue_bytes = {}\n",
                o.udp_queue_bytes.unwrap_or_else(|| udp_queue_bytes(o))
            );
            if let Some(nice) = o.udp_receive_nice {
                c += &format!("receive_nice = {nice}\n");
            }
            c += "\n";
        }
        Proto::HttpNdjson => {
            c += &format!(
                "[sources.bench_http]\ntype = \"http\"\naddress = \"127.0.0.1:{in_port}\"\ntokens = [\"bench-ingest-token\"]\n\n"
            )
        }
    }
    for (i, (out, sink)) in s.outs.iter().zip(sinks).enumerate() {
        match out {
            Out::Syslog | Out::StalledSyslog => {
                c += &format!(
                    "[destinations.sink{i}]\ntype = \"syslog\"\naddress = \"127.0.0.1:{}\"\nmode = \"tcp\"\nformat = \"{}\"\nbatch_size = {RELAY_BATCH}\nwhen_full = \"{}\"\n",
                    sink.port, o.relay_format, when_full(*out)
                );
                if let Some(cc) = &o.tcp_congestion {
                    c += &format!("tcp_congestion = \"{cc}\"\n");
                }
                c += "\n";
            }
            Out::SyslogUdp => {
                c += &format!(
                    "[destinations.sink{i}]\ntype = \"syslog\"\naddress = \"127.0.0.1:{}\"\nmode = \"udp\"\nformat = \"{}\"\nbatch_size = {RELAY_BATCH}\nwhen_full = \"{}\"\n",
                    sink.port, o.relay_format, when_full(*out)
                );
                if let Some(rate) = o.max_udp_rate {
                    c += &format!("max_udp_rate = {rate}\n");
                }
                c += "\n";
            }
            Out::Hec | Out::StalledHec => {
                c += &format!(
                    "[destinations.hec{i}]\ntype = \"splunk_hec\"\nendpoint = \"http://127.0.0.1:{}\"\ntoken = \"bench-hec-token\"\nbatch_size = {RELAY_BATCH}\nconcurrency = 2\nwhen_full = \"{}\"\n\n",
                    sink.port, when_full(*out)
                )
            }
            Out::Elastic => {
                c += &format!(
                    "[destinations.es{i}]\ntype = \"elasticsearch\"\nendpoint = \"http://127.0.0.1:{}\"\nindex = \"bench\"\nbatch_size = {RELAY_BATCH}\nconcurrency = 2\nwhen_full = \"{}\"\n\n",
                    sink.port, when_full(*out)
                )
            }
            Out::Datadog => {
                c += &format!(
                    "[destinations.dd{i}]\ntype = \"datadog\"\nendpoint = \"http://127.0.0.1:{}\"\napi_key = \"bench-dd-key\"\nbatch_size = {RELAY_BATCH}\nconcurrency = 2\nwhen_full = \"{}\"\n\n",
                    sink.port, when_full(*out)
                )
            }
        }
    }
    c
}

/// A healthy sink's destination blocks when the ring is full, as the peers'
/// full queues block their inputs: the backlog a fan-out builds behind a
/// fast sender then slows the sender instead of being dropped. A stalled
/// sink's destination drops its oldest records so it cannot stop the others.
fn when_full(out: Out) -> &'static str {
    if out.stalls() {
        "drop_oldest"
    } else {
        "block"
    }
}

/// The peers' queues, in messages: room for the whole run, so no event is
/// dropped for lack of queue space.
fn queue_size(o: &Opts) -> String {
    (o.events.max(100_000) + 10_000).to_string()
}

/// siem-relay's UDP `queue_bytes` equivalent to [`queue_size`].
fn udp_queue_bytes(o: &Opts) -> u64 {
    (o.events.max(100_000) + 10_000) * 320
}

fn rsyslog_config(o: &Opts, s: &Scenario, dir: &Path, in_port: u16, sinks: &[Sink]) -> String {
    let q = queue_size(o);
    let mut inputs = if s.input == Proto::TlsOctet {
        render(
            include_str!("peers/rsyslog.in_tls.tmpl"),
            &tls_slots(dir, in_port),
        )
    } else {
        render(
            include_str!("peers/rsyslog.in_tcp.tmpl"),
            &[("IN_PORT", in_port.to_string())],
        )
    };
    if s.input == Proto::Udp {
        inputs += &render(
            include_str!("peers/rsyslog.in_udp.tmpl"),
            &[("IN_PORT", in_port.to_string())],
        );
    }
    let mut outputs = String::new();
    for (i, (out, sink)) in s.outs.iter().zip(sinks).enumerate() {
        let (queue_type, disk) = match o.peer_queue {
            PeerQueue::Memory => ("LinkedList", String::new()),
            PeerQueue::DiskAssisted | PeerQueue::Disk => (
                if o.peer_queue == PeerQueue::Disk {
                    "Disk"
                } else {
                    "LinkedList"
                },
                format!(
                    "queue.filename=\"q{i}\" queue.maxDiskSpace=\"2g\" queue.saveOnShutdown=\"off\""
                ),
            ),
        };
        let tmpl = match out {
            Out::Elastic => include_str!("peers/rsyslog.out_elastic.tmpl"),
            Out::SyslogUdp => include_str!("peers/rsyslog.out_syslog_udp.tmpl"),
            _ => include_str!("peers/rsyslog.out_syslog.tmpl"),
        };
        outputs += &render(
            tmpl,
            &[
                ("OUT_NAME", format!("out{i}")),
                ("PORT", sink.port.to_string()),
                ("QUEUE", q.clone()),
                ("QUEUE_TYPE", queue_type.to_string()),
                ("DISK_QUEUE", disk),
            ],
        );
    }
    render(
        include_str!("peers/rsyslog.conf.tmpl"),
        &[
            ("SCENARIO", s.name.to_string()),
            ("WORKDIR", dir.display().to_string()),
            ("QUEUE", q),
            ("INPUTS", inputs),
            ("OUTPUTS", outputs),
        ],
    )
}

fn syslog_ng_config(o: &Opts, s: &Scenario, dir: &Path, in_port: u16, sinks: &[Sink]) -> String {
    let q = queue_size(o);
    let p = ("IN_PORT", in_port.to_string());
    let mut inputs = match s.input {
        Proto::TcpOctet => render(
            include_str!("peers/syslog-ng.in_tcp_octet.tmpl"),
            std::slice::from_ref(&p),
        ),
        Proto::TlsOctet => render(
            include_str!("peers/syslog-ng.in_tls.tmpl"),
            &tls_slots(dir, in_port),
        ),
        _ => render(
            include_str!("peers/syslog-ng.in_tcp.tmpl"),
            std::slice::from_ref(&p),
        ),
    };
    if s.input == Proto::Udp {
        inputs += &render(include_str!("peers/syslog-ng.in_udp.tmpl"), &[p]);
    }
    let mut outputs = String::new();
    let mut refs = String::new();
    for (i, (out, sink)) in s.outs.iter().zip(sinks).enumerate() {
        let disk = match o.peer_queue {
            PeerQueue::Memory => String::new(),
            PeerQueue::DiskAssisted | PeerQueue::Disk => format!(
                "disk-buffer(reliable({}) disk-buf-size(2147483648) dir(\"{}\"))",
                if o.peer_queue == PeerQueue::Disk {
                    "yes"
                } else {
                    "no"
                },
                dir.display()
            ),
        };
        let tmpl = match out {
            Out::Hec | Out::StalledHec => include_str!("peers/syslog-ng.out_hec.tmpl"),
            Out::Elastic => include_str!("peers/syslog-ng.out_elastic.tmpl"),
            Out::SyslogUdp => include_str!("peers/syslog-ng.out_syslog_udp.tmpl"),
            _ => include_str!("peers/syslog-ng.out_syslog.tmpl"),
        };
        outputs += &render(
            tmpl,
            &[
                ("OUT_NAME", format!("d{i}")),
                ("PORT", sink.port.to_string()),
                ("QUEUE", q.clone()),
                ("DISK_QUEUE", disk),
            ],
        );
        refs += &format!("destination(d{i}); ");
    }
    render(
        include_str!("peers/syslog-ng.conf.tmpl"),
        &[
            ("SCENARIO", s.name.to_string()),
            ("QUEUE", q),
            ("INPUTS", inputs),
            ("OUTPUTS", outputs),
            ("DEST_REFS", refs),
        ],
    )
}

/// The CA, certificate and key files of a TLS scenario, in its run's directory.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir.join("tls");
    (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"))
}

/// A peer TLS input template's slots.
fn tls_slots(dir: &Path, in_port: u16) -> [(&'static str, String); 4] {
    let (ca, cert, key) = tls_files(dir);
    [
        ("IN_PORT", in_port.to_string()),
        ("CA", ca.display().to_string()),
        ("CERT", cert.display().to_string()),
        ("KEY", key.display().to_string()),
    ]
}

/// Makes a CA and a certificate for `localhost` and 127.0.0.1 signed by
/// it (ECDSA P-256, as rcgen makes them), writes them to [`tls_files`] and
/// returns the generator's client configuration, which trusts that CA.
fn make_tls(dir: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "siem-relay e2e bench CA");
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(err)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    let (ca_file, cert_file, key_file) = tls_files(dir);
    std::fs::create_dir_all(dir.join("tls")).map_err(|e| e.to_string())?;
    for (path, pem) in [
        (&ca_file, ca.pem()),
        (&cert_file, cert.pem()),
        (&key_file, key.serialize_pem()),
    ] {
        std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn start_target(
    o: &Opts,
    t: Target,
    s: &Scenario,
    dir: &Path,
    in_port: u16,
    sinks: &[Sink],
) -> Result<Proc, String> {
    let log = dir.join(format!("{}.log", t.label()));
    match t {
        Target::Relay => {
            let cfg = dir.join("siem-relay.toml");
            std::fs::write(&cfg, relay_config(o, s, dir, in_port, sinks))
                .map_err(|e| e.to_string())?;
            let mut cmd = Command::new(o.relay.as_ref().unwrap());
            // the relay's own log level (`info`, or `SIEM_RELAY_LOG` if set), as users run it
            cmd.arg("run").arg("--config").arg(&cfg).current_dir(dir);
            Proc::spawn("siem-relay", cmd, &log)
        }
        Target::Rsyslog => {
            let cfg = dir.join("rsyslog.conf");
            std::fs::write(&cfg, rsyslog_config(o, s, dir, in_port, sinks))
                .map_err(|e| e.to_string())?;
            let mut cmd = Command::new(
                rsyslogd_path().ok_or("rsyslogd not found: run benches/peers/install.sh")?,
            );
            cmd.arg("-n")
                .arg("-f")
                .arg(&cfg)
                .arg("-i")
                .arg(dir.join("rsyslog.pid"));
            Proc::spawn("rsyslog", cmd, &log)
        }
        Target::SyslogNg => {
            let root = &o.syslog_ng_root;
            let bin = root.join("usr/sbin/syslog-ng");
            if !bin.exists() {
                return Err(format!(
                    "{} not found: run benches/peers/install.sh",
                    bin.display()
                ));
            }
            let cfg = dir.join("syslog-ng.conf");
            std::fs::write(&cfg, syslog_ng_config(o, s, dir, in_port, sinks))
                .map_err(|e| e.to_string())?;
            let mut cmd = Command::new(bin);
            let ld = format!(
                "{}:{}:{}",
                root.join("usr/lib/x86_64-linux-gnu").display(),
                root.join("usr/lib/syslog-ng").display(),
                root.join("lib/x86_64-linux-gnu").display()
            );
            cmd.env("LD_LIBRARY_PATH", ld)
                .arg("-F")
                .arg("--no-caps")
                .arg("-f")
                .arg(&cfg)
                .arg(format!(
                    "--module-path={}",
                    root.join("usr/lib/syslog-ng/3.38").display()
                ))
                .arg("-p")
                .arg(dir.join("syslog-ng.pid"))
                .arg("-R")
                .arg(dir.join("syslog-ng.persist"))
                .arg("-c")
                .arg(dir.join("syslog-ng.ctl"));
            Proc::spawn("syslog-ng", cmd, &log)
        }
        Target::Direct => Err("direct has no process".into()),
    }
}

fn rsyslogd_path() -> Option<PathBuf> {
    [
        "/usr/sbin/rsyslogd",
        "/sbin/rsyslogd",
        "/usr/local/sbin/rsyslogd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

// ---------------------------------------------------------------- one run

#[derive(Clone, Debug, Default)]
struct RunStats {
    eps: f64,
    mbps: f64,
    cpu_per_mev: Option<f64>,
    /// CPU µs per event by thread name (what the threads' times leave of
    /// the process's as `(rest)`), for the run's line; empty in medians
    threads: Vec<(String, f64)>,
    rss_mib: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    lost: u64,
    dup: u64,
    bogus: u64,
    overflow_notices: u64,
    sent: u64,
    note: String,
}

fn run_once(o: &Opts, t: Target, s: &Scenario) -> Result<RunStats, String> {
    let dir = tempfile::Builder::new()
        .prefix("siem-e2e-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let n = o.events;
    let direct = t == Target::Direct;
    let sinks: Vec<Sink> = if direct {
        let k = match s.input {
            Proto::Udp => SinkKind::Udp,
            Proto::HttpNdjson => SinkKind::Http,
            _ => SinkKind::SyslogTcp,
        };
        // a fan-out's direct row: the generator writes to every sink itself
        (0..s.outs.len().max(1))
            .map(|_| Sink::start(k, n).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?
    } else {
        s.outs
            .iter()
            .map(|out| {
                Sink::start(
                    match out {
                        Out::Syslog => SinkKind::SyslogTcp,
                        Out::Hec | Out::Elastic | Out::Datadog => SinkKind::Http,
                        Out::StalledSyslog => SinkKind::StalledTcp,
                        Out::StalledHec => SinkKind::StalledHttp,
                        Out::SyslogUdp => SinkKind::Udp,
                    },
                    n,
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?
    };
    let healthy: Vec<&Sink> = sinks
        .iter()
        .filter(|k| !matches!(k.kind, SinkKind::StalledTcp | SinkKind::StalledHttp))
        .collect();

    let tls = match s.input {
        Proto::TlsOctet => Some(make_tls(dir.path())?),
        _ => None,
    };
    let (mut proc, in_port) = if direct {
        (None, sinks[0].port)
    } else {
        let in_port = free_port();
        let started = start_target(o, t, s, dir.path(), in_port, &sinks)
            .and_then(|mut p| p.wait_ready(in_port, Duration::from_secs(15)).map(|_| p));
        let p = match started {
            Ok(p) => p,
            Err(e) => {
                let kept = dir.keep();
                return Err(format!(
                    "{e}\n  (config and log kept in {})",
                    kept.display()
                ));
            }
        };
        if s.input == Proto::Udp {
            std::thread::sleep(Duration::from_millis(300));
        }
        (Some(p), in_port)
    };

    let spec = LoadSpec {
        proto: s.input,
        format: s.format,
        addr: ([127, 0, 0, 1], in_port).into(),
        also: if direct {
            sinks[1..]
                .iter()
                .map(|k| ([127, 0, 0, 1], k.port).into())
                .collect()
        } else {
            Vec::new()
        },
        events: n,
        connections: o.connections.unwrap_or(s.conns),
        rate: if s.udp() { o.udp_rate } else { o.rate },
        http_batch: o.http_batch,
        http_path: "/v1/events".into(),
        token: "bench-ingest-token".into(),
        skip_every: 0,
        dup_every: 0,
        tls,
    };
    let cpu0 = proc.as_ref().and_then(|p| p.cpu_secs());
    let threads0 = proc.as_ref().map(|p| p.thread_cpu_secs());
    // peak anonymous RSS (excludes the mapped ring's page cache), sampled every 20 ms
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = proc.as_ref().map(|p| {
        let (pid, on) = (p.pid, sampling.clone());
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(Proc::anon_rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    });
    let (res, note) = drive(o, &spec, s.udp(), &healthy, proc.as_mut())?;
    let cpu1 = proc.as_ref().and_then(|p| p.cpu_secs());
    let threads1 = proc.as_ref().map(|p| p.thread_cpu_secs());
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss = sampler.and_then(|h| h.join().ok()).filter(|&k| k > 0);
    let mut stats = collect(&res, &healthy);
    stats.note = note;
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        stats.cpu_per_mev = Some((b - a) / n as f64 * 1e6);
        if let (Some(t0), Some(t1)) = (threads0, threads1) {
            stats.threads = per_thread(&t0, &t1, b - a)
                .into_iter()
                .map(|(name, secs)| (name, secs / n as f64 * 1e6))
                .collect();
        }
    }
    stats.rss_mib = rss.map(|k| k as f64 / 1024.0);
    if let Some(p) = proc.as_mut() {
        if !p.alive() {
            stats.note += &format!(" {} died: {}", p.name, p.log_tail().replace('\n', " | "));
        }
        p.stop();
    }
    for k in &sinks {
        if matches!(k.kind, SinkKind::StalledTcp | SinkKind::StalledHttp)
            && k.conns.load(Ordering::Relaxed) == 0
        {
            stats.note += " (the stalled destination never connected)";
        }
        k.stop();
    }
    if o.keep {
        stats.note += &format!(" (kept {})", dir.keep().display());
    }
    Ok(stats)
}

/// Runs the generator and waits, bounded, until every healthy sink has all
/// events, or nothing new arrived for a while after the generator finished
/// (not long when `udp`: what is lost on the way never comes).
fn drive(
    o: &Opts,
    spec: &LoadSpec,
    udp: bool,
    healthy: &[&Sink],
    mut proc: Option<&mut Proc>,
) -> Result<(LoadResult, String), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let gen = {
        let (spec, stop) = (spec.clone(), stop.clone());
        std::thread::spawn(move || load::run(&spec, stop))
    };
    let t0 = Instant::now();
    let idle_limit = if udp {
        Duration::from_millis(1500)
    } else {
        Duration::from_secs(5)
    };
    let mut last_total = 0u64;
    let mut last_change = Instant::now();
    let mut note = String::new();
    let expected = spec.events;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let total: u64 = healthy
            .iter()
            .map(|k| k.seen.unique.load(Ordering::Relaxed))
            .sum();
        if total != last_total {
            last_total = total;
            last_change = Instant::now();
        }
        if healthy
            .iter()
            .all(|k| k.seen.unique.load(Ordering::Relaxed) >= expected)
        {
            break;
        }
        if gen.is_finished() && last_change.elapsed() > idle_limit {
            if !udp {
                note += &format!("stopped waiting: no progress for {idle_limit:?};");
            }
            break;
        }
        if t0.elapsed() > o.timeout {
            note += &format!("timed out after {:?};", o.timeout);
            break;
        }
        if let Some(p) = proc.as_deref_mut() {
            if !p.alive() {
                note += "process exited;";
                break;
            }
        }
    }
    // a short grace to catch late duplicates
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let res = gen.join().map_err(|_| "generator panicked")?;
    for e in &res.errors {
        note += &format!(" generator: {e};");
    }
    Ok((res, note))
}

fn collect(res: &LoadResult, healthy: &[&Sink]) -> RunStats {
    let mut st = RunStats {
        sent: res.sent,
        ..Default::default()
    };
    let mut hist = sink::new_hist();
    let mut last = res.started_ns;
    let mut min_unique = u64::MAX;
    for k in healthy {
        // make sure local histograms are flushed (threads flush on idle)
        std::thread::sleep(Duration::from_millis(60));
        hist.add(&*k.hist.lock().unwrap()).ok();
        last = last.max(k.seen.last_new_ns.load(Ordering::Relaxed));
        min_unique = min_unique.min(k.seen.unique.load(Ordering::Relaxed));
        st.lost += k.seen.lost();
        st.dup += k.seen.dup.load(Ordering::Relaxed);
        st.bogus += k.seen.bogus.load(Ordering::Relaxed);
        st.overflow_notices += k.seen.overflow_notices.load(Ordering::Relaxed);
    }
    let secs = (last.saturating_sub(res.started_ns)) as f64 / 1e9;
    if secs > 0.0 {
        st.eps = min_unique as f64 / secs;
        let avg = if res.sent > 0 {
            res.bytes as f64 / res.sent as f64
        } else {
            0.0
        };
        st.mbps = st.eps * avg / 1e6;
    }
    st.p50_ms = hist.value_at_quantile(0.50) as f64 / 1000.0;
    st.p99_ms = hist.value_at_quantile(0.99) as f64 / 1000.0;
    st
}

// ---------------------------------------------------------------- table

#[derive(Clone, Debug)]
struct Row {
    scenario: String,
    target: Target,
    udp: bool,
    stats: Option<RunStats>,
    skipped: Option<String>,
    /// the error of a run that failed (later runs of the row are not made)
    failure: Option<String>,
    /// events/s of each run, in order, when all of them succeeded: paired
    /// with the other targets' runs of the same round
    run_eps: Vec<f64>,
    /// CPU seconds per million events of each run, paired the same way
    /// (empty unless every run measured its CPU)
    run_cpu: Vec<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The ratio of `a`'s runs to `b`'s taken in the same round (run 1 to
/// run 1, ...): their median, lowest and highest. `None` unless both made
/// all their runs, two or more.
fn paired_ratios(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((median(ratios), lo, hi))
}

/// ` [name 1.23, other 0.45]`: CPU µs per event by thread name, the ones
/// that show as 0.01 µs or more; empty when there are none.
fn thread_split(threads: &[(String, f64)]) -> String {
    let shown: Vec<String> = threads
        .iter()
        .filter(|(_, us)| *us >= 0.005)
        .map(|(name, us)| format!("{name} {us:.2}"))
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!(" [{}]", shown.join(", "))
    }
}

/// CPU seconds by thread name between two [`Proc::thread_cpu_secs`]
/// samples, busiest first; what the process used beyond them (threads that
/// exited before the second sample, and the rounding of each thread's time
/// to clock ticks) as `(rest)`. `total`: the process's
/// CPU seconds between the samples.
fn per_thread(before: &[(String, f64)], after: &[(String, f64)], total: f64) -> Vec<(String, f64)> {
    let was = |name: &str| {
        before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |&(_, s)| s)
    };
    // a name whose threads partly exited can come out below its start
    let mut v: Vec<(String, f64)> = after
        .iter()
        .map(|(n, s)| (n.clone(), (s - was(n)).max(0.0)))
        .collect();
    let rest = total - v.iter().map(|(_, s)| s).sum::<f64>();
    if rest > 0.0 {
        v.push(("(rest)".into(), rest));
    }
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn median_stats(runs: &[RunStats], udp: bool) -> RunStats {
    let f = |g: &dyn Fn(&RunStats) -> f64| median(runs.iter().map(g).collect());
    let opt = |g: &dyn Fn(&RunStats) -> Option<f64>| {
        let v: Vec<f64> = runs.iter().filter_map(g).collect();
        if v.is_empty() {
            None
        } else {
            Some(median(v))
        }
    };
    RunStats {
        eps: f(&|r| r.eps),
        mbps: f(&|r| r.mbps),
        cpu_per_mev: opt(&|r| r.cpu_per_mev),
        threads: Vec::new(),
        rss_mib: opt(&|r| r.rss_mib),
        p50_ms: f(&|r| r.p50_ms),
        p99_ms: f(&|r| r.p99_ms),
        // UDP: the median run's loss (loss is expected there);
        // TCP/HTTP: the worst run, so a single loss is never hidden by the median
        lost: if udp {
            median(runs.iter().map(|r| r.lost as f64).collect()) as u64
        } else {
            runs.iter().map(|r| r.lost).max().unwrap_or(0)
        },
        dup: runs.iter().map(|r| r.dup).max().unwrap_or(0),
        bogus: runs.iter().map(|r| r.bogus).max().unwrap_or(0),
        overflow_notices: runs.iter().map(|r| r.overflow_notices).max().unwrap_or(0),
        sent: runs.iter().map(|r| r.sent).max().unwrap_or(0),
        note: runs
            .iter()
            .map(|r| r.note.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

fn header() -> String {
    "| scenario | target | events/s | MB/s | CPU s / M events | peak anon RSS MiB | p50 ms | p99 ms | lost | dup | UDP loss % | note |\n\
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        .to_string()
}

fn fmt_row(r: &Row, n: u64) -> String {
    match (&r.stats, &r.skipped) {
        (_, Some(why)) => format!(
            "| {} | {} | – | – | – | – | – | – | – | – | – | not run: {} |",
            r.scenario,
            r.target.label(),
            why
        ),
        (Some(s), None) => {
            let udp = if r.udp {
                format!("{:.2}", s.lost as f64 * 100.0 / n as f64)
            } else {
                "–".into()
            };
            let (lost, dup) = if r.udp {
                ("–".to_string(), s.dup.to_string())
            } else {
                (s.lost.to_string(), s.dup.to_string())
            };
            let mut note = s.note.clone();
            if s.bogus > 0 {
                note = format!("{} events without a valid seq; {note}", s.bogus);
            }
            if s.overflow_notices > 0 {
                note = format!(
                    "{} relay.buffer.overflow notices (the ring dropped a destination's backlog); {note}",
                    s.overflow_notices
                );
            }
            if !r.udp && (s.lost > 0 || s.dup > 0) {
                note = format!("**LOSS/DUP** {note}");
            }
            format!(
                "| {} | {} | {:.0} | {:.1} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                r.scenario,
                r.target.label(),
                s.eps,
                s.mbps,
                s.cpu_per_mev
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or("–".into()),
                s.rss_mib.map(|v| format!("{v:.0}")).unwrap_or("–".into()),
                s.p50_ms,
                s.p99_ms,
                lost,
                dup,
                udp,
                note.trim()
            )
        }
        (None, None) => format!(
            "| {} | {} | – | – | – | – | – | – | – | – | – | failed |",
            r.scenario,
            r.target.label()
        ),
    }
}

// ---------------------------------------------------------------- self-check

fn self_check(o: &Opts) -> bool {
    let mut pass = 0;
    let mut fail = 0;
    let mut check = |name: &str, ok: bool| {
        if ok {
            pass += 1;
            println!("  ok    {name}");
        } else {
            fail += 1;
            println!("  FAIL  {name}");
        }
    };
    println!("self-check: sequence extraction, framing, bitmap, and loss/dup detection end to end");
    use sink::find_num;
    // ratios of runs taken in the same round
    check(
        "paired ratios: run k to run k",
        paired_ratios(&[2.0, 3.0, 4.0], &[1.0, 1.0, 2.0]) == Some((2.0, 2.0, 3.0)),
    );
    check(
        "paired ratios: none unless both rows made every run",
        paired_ratios(&[2.0, 3.0], &[1.0]).is_none() && paired_ratios(&[2.0], &[1.0]).is_none(),
    );
    // CPU by thread name
    let split = per_thread(
        &[("a".into(), 1.0), ("b".into(), 2.0)],
        &[("a".into(), 1.5), ("b".into(), 2.25), ("c".into(), 0.0625)],
        1.0,
    );
    check(
        "per-thread CPU: deltas busiest first, what they leave as the rest",
        split
            == [
                ("a".to_string(), 0.5),
                ("b".to_string(), 0.25),
                ("(rest)".to_string(), 0.1875),
                ("c".to_string(), 0.0625),
            ],
    );
    check(
        "per-thread CPU: a thread name holding ') ' parses",
        procs::thread_stat("7 (w) x) S 1 7 7 0 -1 4194560 1 0 0 0 300 100 0 0 20 0 1 0")
            .is_some_and(|(name, secs)| name == "w) x" && secs > 0.0),
    );
    // seq extraction from every shape a relay or peer may forward
    check(
        "syslog line SD",
        find_num(
            br#"<86>1 - h a - - [bench@32473 seq="42" ts_ns="7"] x"#,
            b"seq",
        ) == Some(42),
    );
    check(
        "canonical JSON, escaped MSG",
        find_num(
            br#"{"event_id":"evt_1","message":"{\"seq\":43,\"ts_ns\":9}"}"#,
            b"seq",
        ) == Some(43),
    );
    check(
        "canonical JSON, metadata",
        find_num(br#"{"metadata":{"seq":44,"ts_ns":9}}"#, b"seq") == Some(44),
    );
    check(
        "canonical JSON, SD map",
        find_num(
            br#"{"structured_data":{"bench@32473":{"seq":"45"}}}"#,
            b"seq",
        ) == Some(45),
    );
    check(
        "ts_ns",
        find_num(br#"{"seq":1,"ts_ns":1795000000000000000}"#, b"ts_ns")
            == Some(1795000000000000000),
    );
    check(
        "no false match on 'sequence'/'xseq'",
        find_num(br#"{"sequence":5,"xseq":6,"seq":7}"#, b"seq") == Some(7),
    );
    check("missing seq", find_num(br#"{"a":1}"#, b"seq").is_none());
    let line = br#"<86>1 - h a - - [bench@32473 seq="42" ts_ns="7"] {"seq":42,"ts_ns":7}"#;
    check(
        "where seq ends, and ts_ns after it",
        sink::find_num_end(line, b"seq") == Some((42, 36))
            && find_num(&line[36..], b"ts_ns") == Some(7),
    );
    // an RFC 3164 line's text, and the relay's RFC 5424 rendering of it
    let mut bsd = Vec::new();
    load::bsd_line(&mut bsd, "Dec  5 21:40:00", 46, 8);
    check(
        "RFC 3164 line: seq and ts_ns in the text",
        find_num(&bsd, b"seq") == Some(46)
            && find_num(&bsd, b"ts_ns") == Some(8)
            && bsd.starts_with(
                b"<86>Dec  5 21:40:00 bench-host-01 siem-bench[4242]: user login seq=46 ",
            ),
    );
    // the generator's lines, written piece by piece, are what `format!` writes
    let same_lines = [(0u64, 0u64), (7, 1795000000000000000), (u64::MAX, u64::MAX)]
        .iter()
        .all(|&(seq, ns)| {
            let ts = "2026-12-05T02:21:32.123456Z";
            let (mut line, mut event) = (Vec::new(), Vec::new());
            load::syslog_line(&mut line, ts, seq, ns);
            load::json_event(&mut event, ts, seq, ns);
            line == format!(
                "<86>1 {ts} bench-host-01 siem-bench 4242 AUTH [bench@32473 seq=\"{seq}\" ts_ns=\"{ns}\"][origin@32473 ip=\"10.1.2.3\" software=\"e2e\"] \
{{\"seq\":{seq},\"ts_ns\":{ns},\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\"outcome\":\"success\",\"user\":\"alice\"}}"
            )
            .into_bytes()
                && event == format!(
                    "{{\"seq\":{seq},\"ts_ns\":{ns},\"timestamp\":\"{ts}\",\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\
\"severity\":\"info\",\"outcome\":\"success\",\"actor\":{{\"type\":\"user\",\"id\":\"u-1234\",\"email\":\"alice@example.com\"}},\
\"source_ip\":\"10.1.2.3\",\"metadata\":{{\"bench\":\"e2e\"}}}}"
                )
                .into_bytes()
        });
    check("generated lines equal the format! reference", same_lines);
    // framing
    let mut frames = Vec::new();
    let used = sink::split_syslog_frames(b"5 <1>1a<2>1 b\n3 xyz<3>1 partial", |f| {
        frames.push(f.to_vec())
    });
    check(
        "octet + LF frames, partial kept",
        frames == vec![b"<1>1a".to_vec(), b"<2>1 b".to_vec(), b"xyz".to_vec()] && used == 19,
    );
    let mut evs = Vec::new();
    sink::split_json_events(br#"{"event":{"a":"}{"},"x":1}{"event":{"b":2}}"#, |e| {
        evs.push(e.len())
    });
    check("HEC concatenated objects", evs.len() == 2);
    evs.clear();
    sink::split_json_events(br#"{"a":"\\\"}"}{"b":1}"#, |e| evs.push(e.len()));
    check(
        "escaped quotes and backslashes in strings",
        evs == [13, 7] && {
            evs.clear();
            sink::split_json_events(br#"{"a":"x\"}{\\"}{"b":"\\"}"#, |e| evs.push(e.len()));
            evs == [15, 10]
        },
    );
    evs.clear();
    sink::split_json_events(b"[{\"a\":[1,{\"b\":2}]},{\"c\":3}]", |e| evs.push(e.len()));
    check("JSON array", evs.len() == 2);
    evs.clear();
    sink::split_json_events(b"{\"a\":1}\n{\"b\":2}\n", |e| evs.push(e.len()));
    check("NDJSON", evs.len() == 2);
    // Elasticsearch bulk bodies are split at their LFs: a document whose
    // strings hold braces, quotes and escapes stays one line; a last line
    // without its LF still counts, an empty one is skipped by `event`
    let (mut actions, mut docs) = (0, Vec::new());
    sink::split_lines(
        b"{\"index\":{\"_index\": \"b\"}}\n{\"seq\":1}\r\n{\"create\":{\"_id\":\"x\"}}\n{\"m\":\"}{\\\"\\n{\",\"seq\":2,\"index\":3}\n\n{\"index\":{}}\n{\"seq\":3}",
        |e| {
            if sink::is_bulk_action(e) {
                actions += 1;
            } else if !e.is_empty() {
                docs.push(find_num(e, b"seq"));
            }
        },
    );
    check(
        "Elasticsearch bulk: actions apart from documents",
        actions == 3 && docs == [Some(1), Some(2), Some(3)],
    );
    // bitmap
    let seen = sink::Seen::new(130);
    for s in 0..130 {
        if s != 64 && s != 129 {
            seen.mark(s);
        }
    }
    seen.mark(3);
    seen.mark(500);
    check(
        "bitmap lost=2 dup=1 bogus=1",
        seen.lost() == 2
            && seen.dup.load(Ordering::Relaxed) == 1
            && seen.bogus.load(Ordering::Relaxed) == 1,
    );

    // end to end through real sockets: the generator leaves holes and sends doubles
    for (proto, kind, conns) in [
        (Proto::TcpOctet, SinkKind::SyslogTcp, 3),
        (Proto::TcpLf, SinkKind::SyslogTcp, 2),
        (Proto::HttpNdjson, SinkKind::Http, 2),
    ] {
        let n = 50_000u64;
        let k = Sink::start(kind, n).unwrap();
        let spec = LoadSpec {
            proto,
            format: LineFormat::Rfc5424,
            addr: ([127, 0, 0, 1], k.port).into(),
            also: Vec::new(),
            events: n,
            connections: conns,
            rate: 0,
            http_batch: 100,
            http_path: "/v1/events".into(),
            token: "t".into(),
            skip_every: 1000,
            dup_every: 777,
            tls: None,
        };
        let want_lost = (0..n).filter(|s| s % 1000 == 500).count() as u64;
        let want_dup = (0..n).filter(|s| s % 777 == 259 && s % 1000 != 500).count() as u64;
        let (res, note) = drive(
            o,
            &LoadSpec {
                events: n,
                ..spec.clone()
            },
            proto == Proto::Udp,
            &[&k],
            None,
        )
        .unwrap();
        let st = collect(&res, &[&k]);
        k.stop();
        check(
            &format!(
                "{proto:?}: detects lost={} (want {want_lost}) dup={} (want {want_dup}) {note}",
                st.lost, st.dup
            ),
            st.lost == want_lost && st.dup == want_dup && st.bogus == 0,
        );
        let row = Row {
            scenario: "self".into(),
            target: Target::Direct,
            udp: false,
            stats: Some(st),
            skipped: None,
            failure: None,
            run_eps: Vec::new(),
            run_cpu: Vec::new(),
        };
        check(
            &format!("{proto:?}: a lossy run fails the bench"),
            row_fails(&row),
        );
    }
    println!("{pass} passed, {fail} failed");
    fail == 0
}

fn row_fails(r: &Row) -> bool {
    if matches!(r.target, Target::Rsyslog | Target::SyslogNg) {
        return false; // peers' losses are findings, not harness failures
    }
    match &r.stats {
        None => r.skipped.as_deref().is_none_or(|s| s.starts_with("error")),
        Some(s) => r.failure.is_some() || (!r.udp && (s.lost > 0 || s.dup > 0 || s.bogus > 0)),
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let o = parse_args();
    if o.self_check {
        std::process::exit(if self_check(&o) { 0 } else { 1 });
    }
    let mut targets = Vec::new();
    let relay = o.relay.clone().unwrap();
    if !o.no_relay {
        if relay.exists() {
            targets.push(Target::Relay);
        } else {
            let msg = format!(
                "error: relay binary not found at {}\n       build it first with `cargo build --release` (or pass --relay PATH)",
                relay.display()
            );
            if o.relay_explicit || (o.peers.is_empty() && !o.direct) {
                eprintln!("{msg}\n       (--direct and/or --peers rsyslog,syslog-ng run without it; --no-relay skips it)");
                std::process::exit(2);
            }
            eprintln!("{msg}\n       continuing with the peers/direct rows only: siem-relay rows are 'not run'");
        }
    }
    targets.extend(o.peers.iter().copied());
    if o.direct {
        targets.push(Target::Direct);
    }
    let all = scenarios();
    let chosen: Vec<Scenario> = if o.scenarios.is_empty() || o.scenarios.iter().any(|s| s == "all")
    {
        all
    } else {
        all.into_iter()
            .filter(|s| o.scenarios.iter().any(|n| n == s.name))
            .collect()
    };
    println!(
        "e2e: {} events/run, {} runs (median), scenarios: {}; targets: {}; UDP offered rate {}/s; relay format {}; \
TCP congestion control: system {}, relay's syslog destinations {}",
        o.events,
        o.runs,
        chosen.iter().map(|s| s.name).collect::<Vec<_>>().join(","),
        targets.iter().map(|t| t.label()).collect::<Vec<_>>().join(","),
        o.udp_rate,
        o.relay_format,
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
        o.tcp_congestion.as_deref().unwrap_or("the system's"),
    );
    let mut rows: Vec<Row> = Vec::new();
    let t_all = Instant::now();
    // Runs go round the scenarios and, within each, the targets (round 1:
    // every scenario's relay run, its peers' runs, the direct one; then
    // round 2, ...): the machine's speed drifts by tens of percent within
    // minutes, and runs taken side by side are what a ratio may compare
    // (the run-by-run ratios below: relay to peer, fanout5 to tcp_syslog).
    let mut grid: Vec<Vec<Row>> = chosen
        .iter()
        .map(|s| {
            targets
                .iter()
                .map(|&t| Row {
                    scenario: s.name.into(),
                    target: t,
                    udp: s.udp(),
                    stats: None,
                    skipped: t.unsupported(s).map(Into::into),
                    failure: None,
                    run_eps: Vec::new(),
                    run_cpu: Vec::new(),
                })
                .collect()
        })
        .collect();
    let mut runs: Vec<Vec<Vec<RunStats>>> = vec![vec![Vec::new(); targets.len()]; chosen.len()];
    for k in 0..o.runs {
        if o.runs > 1 && chosen.len() > 1 {
            println!("\n# round {} of {}", k + 1, o.runs);
        }
        for (si, s) in chosen.iter().enumerate() {
            println!("\n## {} — {}", s.name, s.what);
            if k == 0 && targets.contains(&Target::Relay) {
                let (ring, segment) = ring_sizes(&o, s);
                println!(
                    "siem-relay ring: {ring} in {segment} segments, fsync {}",
                    o.fsync
                );
            }
            for (ti, &t) in targets.iter().enumerate() {
                let row = &mut grid[si][ti];
                if row.skipped.is_some() || row.failure.is_some() {
                    continue;
                }
                let t0 = Instant::now();
                match run_once(&o, t, s) {
                    Ok(st) => {
                        // CPU per event on each run's line too (the table has medians)
                        let cpu = st
                            .cpu_per_mev
                            .map(|c| format!("  {c:.2} CPU s/M ev{}", thread_split(&st.threads)))
                            .unwrap_or_default();
                        println!(
                            "  {:<10} run {}: {:>9.0} ev/s  lost {} dup {}  p99 {:.1} ms{}  ({:.1}s) {}",
                            t.label(),
                            k + 1,
                            st.eps,
                            st.lost,
                            st.dup,
                            st.p99_ms,
                            cpu,
                            t0.elapsed().as_secs_f64(),
                            st.note
                        );
                        runs[si][ti].push(st)
                    }
                    Err(e) => {
                        println!("  {:<10} run {}: error: {e}", t.label(), k + 1);
                        row.failure = Some(format!("error: {}", e.lines().next().unwrap_or("")));
                    }
                }
            }
        }
    }
    for (scenario_rows, scenario_runs) in grid.into_iter().zip(runs) {
        for (mut row, runs) in scenario_rows.into_iter().zip(scenario_runs) {
            if row.skipped.is_none() {
                if runs.is_empty() {
                    row.skipped = row.failure.take();
                } else {
                    row.stats = Some(median_stats(&runs, row.udp));
                    // a run that failed after others succeeded breaks the pairs
                    if row.failure.is_none() {
                        row.run_eps = runs.iter().map(|r| r.eps).collect();
                        row.run_cpu = runs.iter().map_while(|r| r.cpu_per_mev).collect();
                        if row.run_cpu.len() != runs.len() {
                            row.run_cpu.clear();
                        }
                    }
                }
            }
            rows.push(row);
        }
    }

    println!(
        "\n# Results ({} events/run, median of {} runs, {:.0}s total)\n",
        o.events,
        o.runs,
        t_all.elapsed().as_secs_f64()
    );
    println!("{}", header());
    for r in &rows {
        println!("{}", fmt_row(r, o.events));
    }
    if targets.contains(&Target::Relay) {
        println!("\nsiem-relay relative to the peers (events/s ratio; CPU-per-event ratio, lower is better):");
        for s in &chosen {
            let row =
                |t: Target, name: &str| rows.iter().find(|r| r.target == t && r.scenario == name);
            let get = |t: Target, name: &str| row(t, name).and_then(|r| r.stats.clone());
            let Some(me) = get(Target::Relay, s.name) else {
                continue;
            };
            for &p in &o.peers {
                if let Some(peer) = get(p, s.name) {
                    let (mine, theirs) = (row(Target::Relay, s.name), row(p, s.name));
                    let paired = |f: fn(&Row) -> &[f64], what: &str| {
                        mine.zip(theirs)
                            .and_then(|(a, b)| paired_ratios(f(a), f(b)))
                            .map(|(mid, lo, hi)| {
                                format!("; {what} run by run {mid:.2}x ({lo:.2}x to {hi:.2}x)")
                            })
                            .unwrap_or_default()
                    };
                    let cpu = match (me.cpu_per_mev, peer.cpu_per_mev) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                        _ => "–".into(),
                    };
                    println!(
                        "  {:<11} vs {:<9}: {:.2}x events/s, CPU {}{}{}",
                        s.name,
                        p.label(),
                        me.eps / peer.eps,
                        cpu,
                        paired(|r| &r.run_eps, "events/s"),
                        paired(|r| &r.run_cpu, "CPU"),
                    );
                }
            }
        }
    }
    // the stalled scenarios: healthy destination's rate relative to tcp_syslog
    for &t in &targets {
        let get = |name: &str| {
            rows.iter()
                .find(|r| r.target == t && r.scenario == name)
                .and_then(|r| r.stats.clone())
        };
        let runs_of = |name: &str, f: fn(&Row) -> &[f64]| {
            rows.iter()
                .find(|r| r.target == t && r.scenario == name)
                .map(|r| f(r).to_vec())
                .unwrap_or_default()
        };
        let percent = |(mid, lo, hi): (f64, f64, f64)| {
            format!(
                "{:.1}% ({:.1}% to {:.1}%)",
                mid * 100.0,
                lo * 100.0,
                hi * 100.0
            )
        };
        for name in ["fanout5", "fanout4"] {
            if let (Some(st), Some(base)) = (get(name), get("tcp_syslog")) {
                let paired = paired_ratios(
                    &runs_of(name, |r| &r.run_eps),
                    &runs_of("tcp_syslog", |r| &r.run_eps),
                )
                .map(|p| format!("; run by run {}", percent(p)))
                .unwrap_or_default();
                // the process's own cost, apart from the sinks' and the
                // generator's share of the machine: tcp_syslog's CPU per
                // event over this scenario's
                let cpu = paired_ratios(
                    &runs_of("tcp_syslog", |r| &r.run_cpu),
                    &runs_of(name, |r| &r.run_cpu),
                )
                .map(|p| {
                    format!(
                        "; its CPU per event, tcp_syslog's over {name}'s, run by run {}",
                        percent(p)
                    )
                })
                .unwrap_or_default();
                println!(
                    "  {name}: {} at {:.1}% of its tcp_syslog rate{paired}{cpu}",
                    t.label(),
                    st.eps * 100.0 / base.eps
                );
            }
        }
        if let (Some(st), Some(base)) = (get("fanout5_stalled"), get("fanout4")) {
            println!(
                "  fanout5_stalled: {} four healthy destinations at {:.0}% of fanout4 (the same without the stalled one)",
                t.label(),
                st.eps * 100.0 / base.eps
            );
        }
        for name in ["stalled", "stalled_hec"] {
            if let (Some(st), Some(base)) = (get(name), get("tcp_syslog")) {
                println!(
                    "  {name}: {} healthy destination at {:.0}% of its tcp_syslog rate",
                    t.label(),
                    st.eps * 100.0 / base.eps
                );
            }
        }
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| row_fails(r)).collect();
    if !failed.is_empty() {
        eprintln!(
            "\nFAILED: lost or duplicated events (or errors) on TCP/HTTP in: {}",
            failed
                .iter()
                .map(|r| format!("{}/{}", r.scenario, r.target.label()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(1);
    }
}
