//! Batch encoders of every destination: a batch of 1000 relayed syslog
//! events (the e2e bench's line, parsed, normalised and encoded as the ring
//! holds them) turned into each destination's wire bytes, without sending.
//!
//! Sinks are built from their settings tables as the config loader does, and
//! encoded through `Sink::encode_only` (HTTP formats: request bodies before
//! gzip; syslog: the octet-counted TCP frames). For `syslog` with
//! `format = "syslog"` three readers run side by side: what the relay uses
//! (`syslog`: the record's syslog hint), the body scanner that reads the
//! JSON when there is no hint (`syslog_scanner`), and the serde reference
//! reader (`syslog_serde`).
//!
//! Measured in CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`),
//! which stays meaningful on a machine busy with other work. `elements/…`
//! reports events per CPU-second (ns per event = 1e9 / that), `bytes/…` the
//! wire bytes produced per CPU-second.

use chrono_tz::Tz;
use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::destinations::syslog::{BodyReader, SyslogSink};
use siem_relay::destinations::{
    datadog, elasticsearch, http, sentinel, splunk_hec, sumo_logic, syslog, Batch, BatchEvent,
    BuildContext, Sink,
};
use siem_relay::parse::{syslog_line_to_record, Origin};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

const EVENTS: u64 = 1000;
const ORIGIN: Origin = Origin {
    listener: "bench_tcp",
    address: Some("127.0.0.1:51514"),
    syslog_hint: true,
};
const RECEIVED_MS: i64 = 1_795_428_000_000;

/// The e2e bench's syslog line for event `seq`.
fn line(seq: u64) -> String {
    let ts_ns = 1_795_428_000_000_000_000 + seq * 1_000;
    format!(
        "<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH \
         [bench@32473 seq=\"{seq}\" ts_ns=\"{ts_ns}\"][origin@32473 ip=\"10.1.2.3\" software=\"e2e\"] \
         {{\"seq\":{seq},\"ts_ns\":{ts_ns},\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\
         \"outcome\":\"success\",\"user\":\"alice\"}}"
    )
}

fn batch() -> Batch {
    Batch::new(
        (0..EVENTS)
            .map(|seq| {
                // what ingest writes to the ring: body and syslog hint
                let enc =
                    syslog_line_to_record(line(seq).as_bytes(), RECEIVED_MS, Tz::UTC, &ORIGIN);
                assert!(
                    !enc.hint().is_empty(),
                    "the direct path leaves a syslog hint"
                );
                BatchEvent::with_hint(seq, enc.meta, enc.body(), enc.hint())
            })
            .collect(),
    )
}

fn ctx(name: &str) -> BuildContext {
    BuildContext {
        name: name.into(),
        base_dir: PathBuf::from("/nonexistent"),
        data_dir: PathBuf::from("/nonexistent"),
    }
}

fn table(src: &str) -> toml::Table {
    toml::from_str(src).expect("settings toml")
}

type Builder =
    fn(toml::Table, &BuildContext) -> Result<Arc<dyn Sink>, siem_relay::config::ConfigError>;

/// Every destination with a batch encoder, as (bench name, build, settings).
fn sinks() -> Vec<(&'static str, Arc<dyn Sink>)> {
    let specs: [(&str, Builder, &str); 9] = [
        (
            "splunk_hec",
            splunk_hec::build,
            "endpoint = \"https://splunk.example:8088\"\ntoken = \"t\"\nhost = \"relay-01\"",
        ),
        (
            "elasticsearch",
            elasticsearch::build,
            "endpoint = \"https://es.example:9200\"",
        ),
        (
            "datadog",
            datadog::build,
            "api_key = \"k\"\nhostname = \"relay-01\"",
        ),
        (
            "sentinel",
            sentinel::build,
            "endpoint = \"https://dce.example.ingest.monitor.azure.com\"\n\
             dcr_immutable_id = \"dcr-1\"\nstream = \"Custom-Siem\"\ntenant_id = \"t\"\n\
             client_id = \"c\"\nclient_secret = \"s\"",
        ),
        (
            "sumo_logic",
            sumo_logic::build,
            "endpoint = \"https://collectors.example/receiver/v1/http/XYZ\"",
        ),
        (
            "http_json_array",
            http::build,
            "endpoint = \"https://hook.example/in\"\nbody = \"json_array\"",
        ),
        (
            "http_ndjson",
            http::build,
            "endpoint = \"https://hook.example/in\"\nbody = \"ndjson\"",
        ),
        (
            "syslog",
            syslog::build,
            "address = \"127.0.0.1:514\"\nmode = \"tcp\"\nformat = \"syslog\"",
        ),
        (
            "syslog_json",
            syslog::build,
            "address = \"127.0.0.1:514\"\nmode = \"tcp\"\nformat = \"json\"",
        ),
    ];
    specs
        .into_iter()
        .map(|(name, build, src)| {
            let sink = build(table(src), &ctx(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, sink)
        })
        .collect()
}

/// `format = "syslog"`, to run with a chosen body reader.
fn syslog_serde() -> SyslogSink {
    SyslogSink::new(
        table("address = \"127.0.0.1:514\"\nmode = \"tcp\"\nformat = \"syslog\""),
        &ctx("syslog_serde"),
    )
    .expect("syslog settings")
}

fn encoders<M: Measurement>(c: &mut Criterion<M>) {
    let batch = batch();
    let sinks = sinks();
    let serde = syslog_serde();
    let fast = sinks
        .iter()
        .find(|(n, _)| *n == "syslog")
        .and_then(|(_, s)| s.encode_only(&batch));
    let hinted = serde.encode_frames(&batch, BodyReader::Hint);
    assert_eq!(fast, Some(hinted.len()));
    for reader in [BodyReader::Scanner, BodyReader::Serde] {
        assert!(
            serde.encode_frames(&batch, reader) == hinted,
            "the hint, the scanner and the serde reader write the same frames"
        );
    }
    for in_bytes in [false, true] {
        let unit = if in_bytes { "bytes" } else { "elements" };
        let mut g = c.benchmark_group(format!("{unit}/encode_1000"));
        for (name, sink) in &sinks {
            let bytes = sink.encode_only(&batch).expect("sink has an encoder") as u64;
            g.throughput(if in_bytes {
                Throughput::Bytes(bytes)
            } else {
                Throughput::Elements(EVENTS)
            });
            g.bench_function(*name, |b| b.iter(|| sink.encode_only(black_box(&batch))));
            if *name == "syslog" {
                for (row, reader) in [
                    ("syslog_scanner", BodyReader::Scanner),
                    ("syslog_serde", BodyReader::Serde),
                ] {
                    g.bench_function(row, |b| {
                        b.iter(|| serde.encode_frames(black_box(&batch), reader).len())
                    });
                }
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = encoders
}
criterion_main!(benches);
