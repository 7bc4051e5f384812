//! The batch the destination benches work on: 1000 of the e2e bench's
//! syslog lines, parsed, normalised and encoded as the ring holds them.

use super::cpu_time::ThreadCpuTime;
use chrono_tz::Tz;
use criterion::Criterion;
use siem_relay::destinations::{Batch, BatchEvent, BuildContext};
use siem_relay::parse::{syslog_line_to_record, Origin};
use std::path::PathBuf;
use std::time::Duration;

pub const EVENTS: u64 = 1000;
pub const ORIGIN: Origin = Origin {
    listener: "bench_tcp",
    address: Some("127.0.0.1:51514"),
    syslog_hint: true,
};
pub const RECEIVED_MS: i64 = 1_795_428_000_000;

/// The e2e bench's syslog line for event `seq`.
pub fn line(seq: u64) -> String {
    let ts_ns = 1_795_428_000_000_000_000 + seq * 1_000;
    format!(
        "<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH \
         [bench@32473 seq=\"{seq}\" ts_ns=\"{ts_ns}\"][origin@32473 ip=\"10.1.2.3\" software=\"e2e\"] \
         {{\"seq\":{seq},\"ts_ns\":{ts_ns},\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\
         \"outcome\":\"success\",\"user\":\"alice\"}}"
    )
}

pub fn batch() -> Batch {
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

pub fn ctx(name: &str) -> BuildContext {
    BuildContext {
        name: name.into(),
        base_dir: PathBuf::from("/nonexistent"),
        data_dir: PathBuf::from("/nonexistent"),
    }
}

pub fn table(src: &str) -> toml::Table {
    toml::from_str(src).expect("settings toml")
}

/// The criterion settings of the batch benches: CPU time of the
/// benchmarking thread, 30 samples of about 3 s.
pub fn criterion() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}
