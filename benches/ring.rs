//! Ring buffer throughput: append and read of ~300-byte canonical events,
//! with the default `fsync` interval (100ms), and appends from sixteen
//! tasks at once. Reports records/s and bytes/s. Also the records'
//! checksum (`record_checksum`) against the crate it replaced.
//!
//! `cargo bench --bench ring`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use siem_relay::buffer::{Ring, RingSettings, WhenFull};
use siem_relay::config::FsyncPolicy;
use siem_relay::event::{EncodedEvent, Event, Severity};
use std::time::Duration;

/// A canonical event whose record is about 300 bytes.
fn event(n: u64) -> EncodedEvent {
    let mut e = Event::new(
        "AUTHENTICATION",
        Some("user.login".into()),
        Severity::Warning,
    );
    e.outcome = Some("failure".into());
    e.source_ip = Some("10.1.2.3".into());
    e.message = Some(format!("login failed for user {n:08}"));
    e.encode()
}

fn settings(dir: &std::path::Path) -> RingSettings {
    RingSettings {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 30,
        segment_bytes: 64 << 20,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Interval(Duration::from_millis(100)),
    }
}

const BATCH: usize = 256;

fn append(c: &mut Criterion) {
    append_with(
        c,
        "ring_append",
        FsyncPolicy::Interval(Duration::from_millis(100)),
    );
    // the same without the periodic msync: the ring's own CPU cost, apart from
    // what the kernel's writeback of dirty pages to this machine's disk costs
    append_with(c, "ring_append_fsync_never", FsyncPolicy::Never);
}

fn append_with(c: &mut Criterion, group: &str, fsync: FsyncPolicy) {
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(RingSettings {
        fsync,
        ..settings(d.path())
    })
    .unwrap();
    // a destination that keeps up, so the ring wraps with drop_oldest and never blocks
    let _cursor = ring.cursor("bench", WhenFull::DropOldest).unwrap();
    let batch: Vec<EncodedEvent> = (0..BATCH as u64).map(event).collect();
    let bytes: usize = batch.iter().map(|e| e.record_len()).sum();
    eprintln!("record size ≈ {} bytes", bytes / BATCH);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("batch_of_256_bytes", |b| {
        b.iter(|| ring.append(&batch).unwrap())
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("batch_of_256_records", |b| {
        b.iter(|| ring.append(&batch).unwrap())
    });
    g.finish();
}

/// Sixteen tasks on a 2-thread runtime, as sixteen connections' appenders:
/// each encodes a batch of 256 events (the stand-in for parsing a read),
/// then appends it, 8 times. `blocking` appends with [`Ring::append`],
/// which sleeps on the writer lock while another append holds it;
/// `queued` with [`Ring::append_owned`], which hands the batch to the
/// holder and lets the thread run the other tasks meanwhile.
fn append_contended(c: &mut Criterion) {
    const TASKS: u64 = 16;
    const ROUNDS: u64 = 8;
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path())).unwrap();
    let _cursor = ring.cursor("bench", WhenFull::DropOldest).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = |queued: bool| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let ring = ring.clone();
                    tokio::spawn(async move {
                        for r in 0..ROUNDS {
                            let first = (t * ROUNDS + r) * BATCH as u64;
                            let batch: Vec<EncodedEvent> =
                                (first..first + BATCH as u64).map(event).collect();
                            if queued {
                                ring.append_owned(batch).await.1.unwrap();
                            } else {
                                ring.append(&batch).unwrap();
                            }
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let mut g = c.benchmark_group("ring_append_16_tasks");
    g.throughput(Throughput::Elements(TASKS * ROUNDS * BATCH as u64));
    g.bench_function("blocking", |b| b.iter(|| run(false)));
    g.bench_function("queued", |b| b.iter(|| run(true)));
    g.finish();
}

fn read(c: &mut Criterion) {
    let batch: Vec<EncodedEvent> = (0..BATCH as u64).map(event).collect();
    let bytes: usize = batch.iter().map(|e| e.record_len()).sum();
    const ROUNDS: usize = 400; // ~100k records, ~30 MB
    let mut g = c.benchmark_group("ring_read");
    g.throughput(Throughput::Bytes((bytes * ROUNDS) as u64));
    g.sample_size(10);
    g.bench_function("100k_records_in_batches_of_1000", |b| {
        b.iter_batched(
            || {
                // setup (not timed): a ring holding 100k fresh records, and a cursor at its start
                let d = tempfile::tempdir().unwrap();
                let (ring, _) = Ring::open(settings(d.path())).unwrap();
                let cursor = ring.cursor("reader", WhenFull::DropOldest).unwrap();
                for _ in 0..ROUNDS {
                    ring.append(&batch).unwrap();
                }
                (d, ring, cursor)
            },
            |(_d, _ring, mut cursor)| {
                let mut out = Vec::with_capacity(1000);
                let mut total = 0;
                loop {
                    out.clear();
                    if cursor.read(1000, 1 << 20, &mut out).is_none() {
                        break;
                    }
                    total += out.len();
                }
                assert_eq!(total, BATCH * ROUNDS);
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Start-up: reopening a ring whose 64 MiB active segment holds 1,000
/// records and zeros after them. Recovery reads the records, then searches
/// the rest of the segment for any newer valid record (a torn write can
/// leave one behind a damaged one).
fn reopen(c: &mut Criterion) {
    let d = tempfile::tempdir().unwrap();
    {
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let batch: Vec<EncodedEvent> = (0..1000).map(event).collect();
        ring.append(&batch).unwrap();
        ring.close().unwrap();
    }
    let mut g = c.benchmark_group("ring_open");
    g.sample_size(10);
    g.bench_function("reopen_64mib_segment_with_1000_records", |b| {
        b.iter(|| {
            let (ring, report) = Ring::open(settings(d.path())).unwrap();
            assert_eq!(
                ring.next_seq() - ring.stats().oldest_seq,
                1000,
                "{report:?}"
            );
        })
    });
    g.finish();
}

/// The records' checksum (`siem_relay::event::crc32c`: three `crc32`
/// streams side by side) against the `crc32c` crate it replaced on the
/// record path, at a short record, the e2e bench's (~700 bytes), a long
/// one and a batch-sized buffer.
fn checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_checksum");
    for n in [300usize, 700, 1500, 8192] {
        let data: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8).collect();
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(format!("three_streams_{n}"), |b| {
            b.iter(|| siem_relay::event::crc32c::crc32c(std::hint::black_box(&data)))
        });
        g.bench_function(format!("crc32c_crate_{n}"), |b| {
            b.iter(|| crc32c::crc32c(std::hint::black_box(&data)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = checksum, append, append_contended, read, reopen
}
criterion_main!(benches);
