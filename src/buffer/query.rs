//! Read-only scans over the retained ring, for the admin API's event query.
//!
//! [`Ring::scan_from`] walks published records from a sequence number on,
//! oldest first, without a destination cursor: it claims nothing, moves no
//! checkpoint and never delays reuse beyond the table read lock it holds
//! while it walks (the same lock a cursor read holds). The visitor sees each
//! record's header and body borrowed from the map, so it must be cheap: filter
//! on the header and copy what it keeps; parse bodies after the scan returns.

use super::ring::Ring;
use super::scan::resync;
use super::segment::DATA_START;
use crate::event::{Record, RecordMeta};
use std::sync::atomic::Ordering;

/// What the visitor of [`Ring::scan_from`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Go on with the next record.
    Continue,
    /// Stop after this record.
    Stop,
}

/// Where a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// The sequence number to resume from (one past the last record visited,
    /// or `from` when nothing was visited).
    pub next_seq: u64,
    /// Records visited.
    pub visited: usize,
    /// True when the scan reached the end of the published records.
    pub at_end: bool,
}

impl Ring {
    /// Visits published records with sequence number ≥ `from` (from the
    /// oldest retained one when `from` is older), at most `max_records` of
    /// them. Damaged records are skipped as a cursor skips them.
    pub fn scan_from(
        &self,
        from: u64,
        max_records: usize,
        mut visit: impl FnMut(u64, &RecordMeta, &[u8]) -> Visit,
    ) -> ScanEnd {
        let mut out = ScanEnd {
            next_seq: from,
            visited: 0,
            at_end: true,
        };
        if max_records == 0 {
            out.at_end = false;
            return out;
        }
        let table = self.inner.table.read().unwrap();
        let start = table
            .segs
            .iter()
            .rposition(|s| s.first_seq <= from)
            .unwrap_or(0);
        for seg in table.segs.iter().skip(start) {
            let end = seg.end_off.load(Ordering::Acquire);
            let mut off = DATA_START;
            while off < end {
                let window = seg.seg.bytes(off, end - off);
                // skip older records cheaply (no checksum) while the length is plausible
                if let Some((seq, len)) = Record::peek(window) {
                    if seq < out.next_seq && len <= window.len() {
                        off += len;
                        continue;
                    }
                }
                match Record::decode(window) {
                    Ok(rec) => {
                        off += rec.encoded_len();
                        if rec.seq < out.next_seq {
                            continue;
                        }
                        out.next_seq = rec.seq + 1;
                        out.visited += 1;
                        let more = visit(rec.seq, &rec.meta, rec.body);
                        if more == Visit::Stop || out.visited >= max_records {
                            out.at_end = false;
                            return out;
                        }
                    }
                    Err(_) => match resync(seg.seg.bytes(0, end), off + 1, out.next_seq) {
                        Some((found, _)) => off = found,
                        None => off = end,
                    },
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::RingSettings;
    use crate::config::FsyncPolicy;
    use crate::event::{Event, Severity};
    use std::time::Duration;

    fn ring(dir: &std::path::Path, segment_bytes: u64) -> Ring {
        Ring::open(RingSettings {
            dir: dir.to_path_buf(),
            max_bytes: segment_bytes * 8,
            segment_bytes,
            max_age: Duration::ZERO,
            fsync: FsyncPolicy::Never,
        })
        .unwrap()
        .0
    }

    fn append(r: &Ring, n: usize) {
        for i in 0..n {
            let mut ev = Event::new("SECURITY", Some("x.y".into()), Severity::Info);
            ev.message = Some(format!("m{i}"));
            r.append(&[ev.encode()]).unwrap();
        }
    }

    fn collect(r: &Ring, from: u64, max: usize) -> (Vec<u64>, ScanEnd) {
        let mut seen = vec![];
        let end = r.scan_from(from, max, |seq, _, _| {
            seen.push(seq);
            Visit::Continue
        });
        (seen, end)
    }

    #[test]
    fn pages_through_several_segments_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let r = ring(dir.path(), 64 << 10);
        append(&r, 800);
        assert!(r.stats().segments > 1, "test needs several segments");
        let mut all = vec![];
        let mut from = 0;
        loop {
            let (seen, end) = collect(&r, from, 37);
            all.extend(seen);
            from = end.next_seq;
            if end.at_end {
                break;
            }
        }
        assert_eq!(all, (0..800).collect::<Vec<u64>>());
        assert_eq!(r.next_seq(), 800);
    }

    #[test]
    fn starts_mid_segment_and_stops_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let r = ring(dir.path(), 1 << 20);
        append(&r, 10);
        let (seen, end) = collect(&r, 4, 100);
        assert_eq!(seen, (4..10).collect::<Vec<u64>>());
        assert!(end.at_end);
        assert_eq!(end.next_seq, 10);
        let mut n = 0;
        let end = r.scan_from(2, 100, |_, _, _| {
            n += 1;
            if n == 3 {
                Visit::Stop
            } else {
                Visit::Continue
            }
        });
        assert_eq!((end.next_seq, end.visited, end.at_end), (5, 3, false));
        let (seen, end) = collect(&r, 50, 10);
        assert!(seen.is_empty());
        assert_eq!(end.next_seq, 50);
    }
}
