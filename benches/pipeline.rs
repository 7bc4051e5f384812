//! Hot-path micro-benchmarks between the socket and the destination encoder:
//!
//! - `framing`: RFC 6587 [`Framer`] over 1000 RFC 5424 frames (~290 bytes),
//!   LF-terminated and octet-counted, pushed in 64 KiB reads as the TCP
//!   source does; frames counted.
//! - `record`: the on-disk record (`record::encode_append`, as the ring
//!   stages records, and `Record::decode` with its CRC32C check) of 1000
//!   events laid end to end as in a ring segment.
//! - `filter`: [`Filter::accepts`] with typical destination filters over
//!   1000 mixed records (header-only decisions, tenant hash confirmed on the
//!   body, body rules), and [`Redactor::apply`] (`drop_fields`, `hash_fields`).
//!
//! Throughput is per element (frame, record, event); `framing` and `record`
//! also report bytes (`…_bytes`). Each benchmark runs twice: with wall time
//! (`wall/…`) and with the thread's CPU time (`cpu/…`,
//! `CLOCK_THREAD_CPUTIME_ID`), the per-core cost even on a busy machine.
//!
//! `cargo bench --bench pipeline`

use chrono_tz::Tz;
use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::destinations::filter::Filter;
use siem_relay::destinations::redact::Redactor;
use siem_relay::destinations::settings::{FilterSettings, RedactSettings};
use siem_relay::event::record::{encode_append, Record};
use siem_relay::event::EncodedEvent;
use siem_relay::parse::{
    syslog_line_to_event, syslog_line_to_record, Frame, Framer, FramerConfig, Origin,
};

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

const ORIGIN: Origin = Origin {
    listener: "bench",
    address: Some("10.1.2.3:51514"),
    syslog_hint: true,
};
const NOW: i64 = 1_790_000_000_000;
const N: usize = 1000;
/// The TCP source's read size (`sources::stream::READ_BUF`).
const READ_BUF: usize = 64 * 1024;

/// The event line of the e2e benchmark (one record of the `record` group).
const RECORD_LINE: &str = r#"<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq="1" ts_ns="2"][origin@32473 ip="10.1.2.3" software="e2e"] {"seq":1,"ts_ns":2,"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}"#;

/// The `n`th framing line: the e2e line with growing counters (~290 bytes).
fn frame_line(n: usize) -> String {
    let ts_ns = 1_795_000_000_000_000_000u64 + n as u64 * 1_000;
    format!(
        r#"<86>1 2026-11-23T10:00:{:02}.{:06}Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq="{n}" ts_ns="{ts_ns}"][origin@32473 ip="10.1.2.3" software="e2e"] {{"seq":{n},"ts_ns":{ts_ns},"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}}"#,
        n / 1_000_000 % 60,
        n % 1_000_000
    )
}

// ---------------------------------------------------------------- framing

fn framing_input(octet_counted: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for n in 0..N {
        let line = frame_line(n);
        if octet_counted {
            out.extend_from_slice(format!("{} ", line.len()).as_bytes());
            out.extend_from_slice(line.as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// One connection's worth of frames, read in 64 KiB chunks.
fn frame_all(input: &[u8]) -> usize {
    let mut framer = Framer::new(FramerConfig::default());
    let mut frames = 0;
    for chunk in input.chunks(READ_BUF) {
        framer.push(chunk);
        while let Some(f) = framer.next_frame() {
            if let Frame::Message(m) = f {
                black_box(&m);
                frames += 1;
            }
        }
    }
    frames
}

fn framing<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let mut g = c.benchmark_group(format!("{prefix}/framing"));
    for (name, octet) in [("lf", false), ("octet_counted", true)] {
        let input = framing_input(octet);
        assert_eq!(frame_all(&input), N, "{name}: every frame is found");
        if prefix == "wall" {
            eprintln!("framing/{name}: {} bytes/frame", input.len() / N);
        }
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function(format!("{name}_1000"), |b| {
            b.iter(|| frame_all(black_box(&input)))
        });
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(format!("{name}_1000_bytes"), |b| {
            b.iter(|| frame_all(black_box(&input)))
        });
    }
    g.finish();
}

// ----------------------------------------------------------------- record

fn record<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    // what ingest appends: body and syslog hint
    let ev = syslog_line_to_record(RECORD_LINE.as_bytes(), NOW, Tz::UTC, &ORIGIN);
    let rec_len = ev.record_len();
    if prefix == "wall" {
        eprintln!(
            "record: {rec_len} bytes ({} body, {} hint): {}",
            ev.body().len(),
            ev.hint().len(),
            String::from_utf8_lossy(ev.body())
        );
    }
    let total = rec_len * N;
    // as the ring does: appended to a staging buffer that keeps its capacity
    let mut buf = Vec::with_capacity(total);
    let encode_all = |buf: &mut Vec<u8>| {
        buf.clear();
        for i in 0..N {
            encode_append(buf, i as u64, &ev.meta, ev.body(), ev.hint());
        }
    };
    let decode_all = |buf: &[u8]| {
        let mut at = 0;
        let mut seqs = 0u64;
        while at < buf.len() {
            let r = Record::decode(&buf[at..]).expect("valid record");
            seqs += r.seq;
            at += r.encoded_len();
        }
        seqs
    };
    encode_all(&mut buf);
    assert_eq!(decode_all(&buf), (N as u64 - 1) * N as u64 / 2);

    let mut g = c.benchmark_group(format!("{prefix}/record"));
    for (unit, tp) in [
        ("", Throughput::Elements(N as u64)),
        ("_bytes", Throughput::Bytes(total as u64)),
    ] {
        g.throughput(tp);
        g.bench_function(format!("encode_1000{unit}"), |b| {
            b.iter(|| encode_all(black_box(&mut buf)))
        });
        g.bench_function(format!("decode_verify_1000{unit}"), |b| {
            b.iter(|| decode_all(black_box(&buf)))
        });
    }
    g.finish();
}

// ----------------------------------------------------------------- filter

/// 1000 records of mixed category, severity, tenant, action, actor and
/// resource path, normalised from syslog lines with a JSON MSG.
fn mixed_records() -> Vec<EncodedEvent> {
    const CATEGORIES: [&str; 6] = [
        "AUTHENTICATION",
        "SECURITY",
        "ADMIN",
        "FILE_ACCESS",
        "NETWORK",
        "BILLING",
    ];
    const SEVERITIES: [&str; 5] = ["debug", "info", "notice", "warning", "error"];
    const TENANTS: [Option<&str>; 4] = [Some("acme"), Some("globex"), Some("initech"), None];
    const ACTIONS: [&str; 7] = [
        "user.login",
        "user.logout",
        "user.heartbeat",
        "file.read",
        "file.write",
        "certificate.issue",
        "config.change",
    ];
    const USERS: [(&str, &str); 4] = [
        ("u-1", "alice@example.com"),
        ("u-2", "bob@example.com"),
        ("svc-backup", "backup@example.com"),
        ("u-42", "carol@example.com"),
    ];
    const PATHS: [Option<&str>; 5] = [
        Some("/etc/passwd"),
        Some("/tmp/upload-7"),
        Some("/var/cache/app/a/b"),
        Some("/home/alice/report.pdf"),
        None,
    ];
    (0..N)
        .map(|n| {
            let mut fields = vec![
                format!(r#""seq":{n}"#),
                format!(r#""category":"{}""#, CATEGORIES[n % 6]),
                format!(r#""severity":"{}""#, SEVERITIES[n % 5]),
                format!(r#""action":"{}""#, ACTIONS[n % 7]),
                r#""outcome":"success""#.to_string(),
                format!(r#""user_id":"{}""#, USERS[n % 4].0),
                format!(r#""user_email":"{}""#, USERS[n % 4].1),
                r#""ip":"10.1.2.3""#.to_string(),
            ];
            if let Some(t) = TENANTS[n / 3 % 4] {
                fields.push(format!(r#""tenant_id":"{t}""#));
            }
            if let Some(p) = PATHS[n % 5] {
                fields.push(format!(r#""resource_path":"{p}""#));
            }
            let line = format!(
                r#"<86>1 2026-11-23T10:00:00.{n:06}Z bench-host-01 siem-bench 4242 AUTH [origin@32473 ip="10.1.2.3" software="e2e"] {{{}}}"#,
                fields.join(",")
            );
            syslog_line_to_event(line.as_bytes(), NOW, Tz::UTC, &ORIGIN).encode()
        })
        .collect()
}

/// Typical destination filters, by what the decision needs.
const FILTERS: &[(&str, &str)] = &[
    ("pass_all", ""),
    (
        "header_categories_min_severity",
        "categories = [\"AUTHENTICATION\", \"SECURITY\", \"ADMIN\"]\nmin_severity = \"notice\"",
    ),
    ("tenants", "tenants = [\"acme\", \"globex\"]"),
    (
        "actions_exclude_actions",
        "actions = [\"user.*\", \"file.*\", \"certificate.issue\"]\nexclude_actions = [\"user.heartbeat\"]",
    ),
    (
        "exclude_users_paths",
        "exclude_users = [\"svc-backup\", \"bob@example.com\"]\nexclude_paths = [\"/tmp/*\", \"/var/cache/**\"]",
    ),
    (
        "combined",
        "categories = [\"AUTHENTICATION\", \"SECURITY\", \"FILE_ACCESS\"]\nmin_severity = \"info\"\ntenants = [\"acme\"]\nexclude_users = [\"svc-backup\"]\nexclude_actions = [\"user.heartbeat\"]",
    ),
];

fn filter_bench<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let records = mixed_records();
    let mut g = c.benchmark_group(format!("{prefix}/filter"));
    g.throughput(Throughput::Elements(N as u64));
    for (name, src) in FILTERS {
        let settings: FilterSettings = toml::from_str(src).expect("filter settings");
        let f = Filter::new(&settings, "destinations.bench.filter").expect("filter");
        let run = || {
            records
                .iter()
                .filter(|r| f.accepts(black_box(&r.meta), black_box(r.body())))
                .count()
        };
        if prefix == "wall" {
            eprintln!("filter/{name}: accepts {} of {N}", run());
        }
        g.bench_function(format!("{name}_1000"), |b| b.iter(run));
    }
    g.finish();
}

/// Redaction settings (`drop_fields`, `hash_fields`).
const REDACTIONS: &[(&str, &str)] = &[
    (
        "drop_fields",
        "drop_fields = [\"syslog.structured_data\", \"metadata\", \"source\"]",
    ),
    (
        "hash_fields",
        "hash_fields = [\"actor.id\", \"actor.email\", \"source_ip\"]\nhash_key = \"bench-key\"",
    ),
];

fn redact<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let records = mixed_records();
    let body_bytes: usize = records.iter().map(|r| r.body().len()).sum();
    if prefix == "wall" {
        eprintln!(
            "filter: {} body bytes/record, e.g. {}",
            body_bytes / N,
            String::from_utf8_lossy(records[1].body())
        );
    }
    let mut g = c.benchmark_group(format!("{prefix}/redact"));
    g.throughput(Throughput::Elements(N as u64));
    for (name, src) in REDACTIONS {
        let settings: RedactSettings = toml::from_str(src).expect("redact settings");
        let r = Redactor::new(&settings, "destinations.bench.redact")
            .expect("redactor")
            .expect("rules set");
        let run = || {
            records
                .iter()
                .map(|e| r.apply(black_box(e.body())).expect("redacts").len())
                .sum::<usize>()
        };
        if prefix == "wall" {
            eprintln!(
                "redact/{name}: {} → {} body bytes/record",
                body_bytes / N,
                run() / N
            );
        }
        g.bench_function(format!("{name}_1000"), |b| b.iter(run));
    }
    g.finish();
}

// ------------------------------------------------------------ measurement

fn all<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    framing(c, prefix);
    record(c, prefix);
    filter_bench(c, prefix);
    redact(c, prefix);
}

fn wall(c: &mut Criterion) {
    all(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    all(c, "cpu");
}

criterion_group!(wall_benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_benches, cpu_benches);
