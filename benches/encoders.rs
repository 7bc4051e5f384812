//! Batch encoders of every destination: a batch of 1000 relayed syslog
//! events (the e2e bench's line, parsed, normalised and encoded as the ring
//! holds them) turned into each destination's wire bytes, without sending.
//!
//! Sinks are built from their settings tables as the config loader does, and
//! encoded through `Sink::encode_only` (HTTP formats: request bodies before
//! gzip; syslog: the octet-counted TCP frames). For `syslog` with
//! `format = "syslog"` three readers run side by side: what the relay uses
//! (`syslog`: the record's syslog hint, which holds the line as it came),
//! the body scanner that rebuilds the message from the JSON when there is
//! no hint (`syslog_scanner`; with the canonical event as MSG, as the
//! bench's MSG is JSON), and the serde reference reader (`syslog_serde`).
//!
//! Measured in CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`),
//! which stays meaningful on a machine busy with other work. `elements/…`
//! reports events per CPU-second (ns per event = 1e9 / that), `bytes/…` the
//! wire bytes produced per CPU-second.

use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::destinations::syslog::{BodyReader, SyslogSink};
use siem_relay::destinations::{
    datadog, elasticsearch, http, http_transport, sentinel, splunk_hec, sumo_logic, syslog,
    BuildContext, Sink,
};
use std::sync::Arc;

#[path = "support/cpu_time.rs"]
mod cpu_time;

#[path = "support/relayed.rs"]
mod relayed;
use relayed::{batch, ctx, line, table, EVENTS};

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
    // the hint (kind 3) holds the line as it came: the frames are the lines
    let mut lines = Vec::new();
    for seq in 0..EVENTS {
        let line = line(seq);
        lines.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
    }
    assert!(
        hinted == lines,
        "the hint's frames are the lines as they came"
    );
    // without a hint both body readers rebuild the same message
    assert!(
        serde.encode_frames(&batch, BodyReader::Scanner)
            == serde.encode_frames(&batch, BodyReader::Serde),
        "the scanner and the serde reader write the same frames"
    );
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

/// gzip as the HTTP destinations compress request bodies (Datadog and Sumo
/// Logic by default), and as the HTTP source inflates `Content-Encoding:
/// gzip` bodies: the batch's canonical events as NDJSON, about 700 KB.
fn gzip<M: Measurement>(c: &mut Criterion<M>) {
    use std::io::Read;
    let batch = batch();
    let mut body = Vec::new();
    for ev in &batch.events {
        body.extend_from_slice(ev.body());
        body.push(b'\n');
    }
    let packed = http_transport::gzip(&body, http_transport::DEFAULT_GZIP_LEVEL).expect("gzip");
    let mut g = c.benchmark_group("bytes/gzip_1000");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("compress", |b| {
        b.iter(|| {
            http_transport::gzip(black_box(&body), http_transport::DEFAULT_GZIP_LEVEL)
                .expect("gzip")
                .len()
        })
    });
    g.bench_function("decompress", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(body.len());
            flate2::read::MultiGzDecoder::new(black_box(&packed[..]))
                .read_to_end(&mut out)
                .expect("gunzip");
            out.len()
        })
    });
    g.finish();
    println!(
        "gzip_1000: {} bytes -> {} ({:.1}%)",
        body.len(),
        packed.len(),
        packed.len() as f64 * 100.0 / body.len() as f64
    );
}

criterion_group! {
    name = benches;
    config = relayed::criterion();
    targets = encoders, gzip
}
criterion_main!(benches);
