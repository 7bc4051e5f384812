//! Parse throughput: syslog parse + normalise + `Event::encode` for RFC 5424
//! (plain and with a JSON MSG) and RFC 3164, and `/v1/events` NDJSON body
//! parsing. Reported as elements (messages) per second on one core.

use chrono_tz::Tz;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::parse::{parse_events_body, syslog_line_to_event, Origin};

const ORIGIN: Origin = Origin {
    listener: "bench",
    address: Some("10.1.2.3:51514"),
};
const NOW: i64 = 1_790_000_000_000;

const PLAIN_5424: &[u8] = b"<34>1 2026-11-23T14:56:08.123Z web-01.example.com sshd 4242 LOGIN [meta@32473 user=\"alice\" method=\"password\"] Accepted password for alice from 10.0.0.7 port 52311 ssh2";
const JSON_5424: &[u8] = br#"<86>1 2026-11-23T14:56:08.123Z idp-01 auth 77 AUDIT - {"event_id":"e-1","action":"user.login","outcome":"failure","tenant_id":"acme","user_id":"u-123","user_email":"alice@example.com","ip":"203.0.113.9","user_agent":"Mozilla/5.0","session_id":"s-9","reason":"bad password"}"#;
const RFC3164: &[u8] = b"<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice from 10.0.0.7 port 52311 ssh2";

fn syslog(c: &mut Criterion) {
    let mut g = c.benchmark_group("syslog_parse_normalize_encode");
    g.throughput(Throughput::Elements(1));
    for (name, line) in [
        ("rfc5424_plain", PLAIN_5424),
        ("rfc5424_json", JSON_5424),
        ("rfc3164", RFC3164),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| syslog_line_to_event(black_box(line), NOW, Tz::UTC, &ORIGIN).encode())
        });
    }
    g.finish();
}

fn ndjson(c: &mut Criterion) {
    let line = r#"{"action":"user.login","outcome":"success","tenant_id":"acme","actor":{"type":"user","id":"u-1","email":"a@example.com"},"source_ip":"198.51.100.4","metadata":{"mfa":true}}"#;
    let n = 1000;
    let body = format!("{line}\n").repeat(n);
    let mut g = c.benchmark_group("http_body");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("ndjson_1000", |b| {
        b.iter(|| parse_events_body(black_box(body.as_bytes()), NOW, &ORIGIN).map(|v| v.len()))
    });
    g.finish();
}

criterion_group!(benches, syslog, ndjson);
criterion_main!(benches);
