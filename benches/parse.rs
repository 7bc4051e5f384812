//! Parse throughput: syslog parse + normalise + `Event::encode` for RFC 5424
//! (plain and with a JSON MSG) and RFC 3164 (BSD timestamp, and RFC 3339 as
//! rsyslog forwards it), and `/v1/events` NDJSON body
//! parsing. Reported as elements (messages) per second. `*_direct` is what
//! the sources run (`syslog_line_to_record`: the direct RFC 5424 encoder when
//! it applies, the `Event` path otherwise).
//!
//! The stage breakdown also times the reference implementations the fast
//! paths replaced (`parse_loose`: `syslog_loose` only; `encode_serde`:
//! `serde_json::to_vec`), so one run shows before and after.
//!
//! Each benchmark runs twice: with wall time (`wall/…`) and with the
//! thread's CPU time (`cpu/…`, `CLOCK_THREAD_CPUTIME_ID`), which is the
//! per-core cost even on a machine busy with other work.

use chrono_tz::Tz;
use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::parse::syslog::parse_syslog_loose;
use siem_relay::parse::{
    normalize_syslog, parse_events_body, parse_events_records, parse_syslog, syslog_line_to_event,
    syslog_line_to_record, Origin,
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

const PLAIN_5424: &[u8] = b"<34>1 2026-11-23T14:56:08.123Z web-01.example.com sshd 4242 LOGIN [meta@32473 user=\"alice\" method=\"password\"] Accepted password for alice from 10.0.0.7 port 52311 ssh2";
const JSON_5424: &[u8] = br#"<86>1 2026-11-23T14:56:08.123Z idp-01 auth 77 AUDIT - {"event_id":"e-1","action":"user.login","outcome":"failure","tenant_id":"acme","user_id":"u-123","user_email":"alice@example.com","ip":"203.0.113.9","user_agent":"Mozilla/5.0","session_id":"s-9","reason":"bad password"}"#;
const BENCH_5424: &[u8] = br#"<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq="7" ts_ns="8"][origin@32473 ip="10.1.2.3" software="e2e"] {"seq":7,"ts_ns":8,"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}"#;
const RFC3164: &[u8] = b"<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice from 10.0.0.7 port 52311 ssh2";
/// RFC 3164 as rsyslog forwards it (`RSYSLOG_ForwardFormat`): an RFC 3339 timestamp.
const RFC3164_FORWARDED: &[u8] = b"<38>2026-11-23T14:56:08.123456+01:00 web-01 sshd[4242]: Accepted password for alice from 10.0.0.7 port 52311 ssh2";

fn syslog<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let mut g = c.benchmark_group(format!("{prefix}/syslog_parse_normalize_encode"));
    g.throughput(Throughput::Elements(1));
    for (name, line) in [
        ("rfc5424_plain", PLAIN_5424),
        ("rfc5424_json", JSON_5424),
        ("rfc5424_e2e_line", BENCH_5424),
        ("rfc3164", RFC3164),
        ("rfc3164_forwarded", RFC3164_FORWARDED),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| syslog_line_to_event(black_box(line), NOW, Tz::UTC, &ORIGIN).encode())
        });
        // What the sources run: the direct RFC 5424 encoder when it applies.
        g.bench_function(format!("{name}_direct"), |b| {
            b.iter(|| syslog_line_to_record(black_box(line), NOW, Tz::UTC, &ORIGIN))
        });
    }
    g.finish();
}

/// Where the time of plain RFC 5424 goes: parse alone, parse + normalise,
/// and `Event::encode` alone.
fn breakdown<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let mut g = c.benchmark_group(format!("{prefix}/rfc5424_plain_stages"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| parse_syslog(black_box(PLAIN_5424), NOW, Tz::UTC))
    });
    g.bench_function("parse_loose", |b| {
        b.iter(|| parse_syslog_loose(black_box(PLAIN_5424), NOW, Tz::UTC))
    });
    g.bench_function("parse_normalize", |b| {
        b.iter(|| {
            normalize_syslog(
                parse_syslog(black_box(PLAIN_5424), NOW, Tz::UTC),
                NOW,
                &ORIGIN,
            )
        })
    });
    let ev = syslog_line_to_event(PLAIN_5424, NOW, Tz::UTC, &ORIGIN);
    g.bench_function("encode", |b| b.iter(|| black_box(&ev).encode()));
    g.bench_function("encode_serde", |b| {
        b.iter(|| serde_json::to_vec(black_box(&ev)).expect("serialises"))
    });
    g.finish();
}

fn ndjson<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let line = r#"{"action":"user.login","outcome":"success","tenant_id":"acme","actor":{"type":"user","id":"u-1","email":"a@example.com"},"source_ip":"198.51.100.4","metadata":{"mfa":true}}"#;
    let n = 1000;
    let body = format!("{line}\n").repeat(n);
    let mut g = c.benchmark_group(format!("{prefix}/http_body"));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("ndjson_1000", |b| {
        b.iter(|| parse_events_body(black_box(body.as_bytes()), NOW, &ORIGIN).map(|v| v.len()))
    });
    // parse + normalise + encode: the general path and what the source runs
    g.bench_function("ndjson_1000_encoded", |b| {
        b.iter(|| {
            parse_events_body(black_box(body.as_bytes()), NOW, &ORIGIN)
                .map(|v| v.iter().map(|e| e.encode().body().len()).sum::<usize>())
        })
    });
    g.bench_function("ndjson_1000_direct", |b| {
        b.iter(|| parse_events_records(black_box(body.as_bytes()), NOW, &ORIGIN).map(|v| v.len()))
    });
    g.finish();
}

fn wall(c: &mut Criterion) {
    syslog(c, "wall");
    ndjson(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    syslog(c, "cpu");
    breakdown(c, "cpu");
    ndjson(c, "cpu");
}

criterion_group!(wall_benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_benches, cpu_benches);
