//! Fuzzes ring recovery with arbitrary segment files on disk: opening never
//! panics, and a reader gets only records whose checksums pass, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::buffer::segment::{SegmentHeader, DATA_START};
use siem_relay::buffer::{Ring, RingSettings, WhenFull};
use siem_relay::config::FsyncPolicy;
use std::time::Duration;

const SEG: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    // up to two segment files; with mode bit 0 a valid header is written first,
    // so the fuzzer reaches the record scanner instead of the quarantine path
    for (slot, chunk) in rest.chunks(SEG - DATA_START).take(2).enumerate() {
        let mut file = vec![0u8; SEG];
        let start = if mode & (1 << slot) != 0 {
            let h = SegmentHeader { id: slot as u64 + 1, first_seq: (mode as u64) * 3 * slot as u64, created_ms: 0 };
            file[..DATA_START].copy_from_slice(&h.encode());
            DATA_START
        } else {
            0
        };
        let n = chunk.len().min(SEG - start);
        file[start..start + n].copy_from_slice(&chunk[..n]);
        std::fs::write(dir.path().join(format!("segment-{slot:05}.dat")), &file).unwrap();
    }
    let settings = RingSettings {
        dir: dir.path().to_path_buf(),
        max_bytes: 4 * SEG as u64,
        segment_bytes: SEG as u64,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Never,
    };
    let report = siem_relay::buffer::inspect(dir.path()).unwrap();
    let (ring, _) = Ring::open(settings).unwrap();
    let mut cursor = ring.cursor("fuzz", WhenFull::DropOldest).unwrap();
    let mut out = Vec::new();
    while cursor.read(10_000, 1 << 30, &mut out).is_some() {}
    let mut last = None;
    for r in &out {
        if let Some(l) = last {
            assert!(r.seq > l);
        }
        last = Some(r.seq);
    }
    assert_eq!(out.len() as u64, report.records());
});
