//! Scanning a segment's bytes for valid records: the heart of recovery,
//! `buffer verify` and `buffer salvage`. Pure (bytes in, findings out), so it
//! is fuzzed directly.
//!
//! Records of the current lap have strictly increasing sequence numbers
//! starting at the header's `first_seq`. The scan walks them; where a record
//! fails its checksum it looks for the next valid record of the current lap
//! (resynchronises) and reports the damage, so one bad record costs only
//! itself. Valid records with a sequence number below the expected one are
//! leftovers of an earlier lap in a reused segment: they mark the end.

use crate::event::{Record, RecordError};

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Valid records of the current lap.
    pub records: u64,
    /// Sequence number of the last valid record.
    pub last_seq: Option<u64>,
    /// First valid record's sequence number.
    pub first_seq: Option<u64>,
    /// Offset just past the last valid record (where appends continue).
    pub end: usize,
    /// Regions skipped between valid records: (offset, bytes, sequence numbers lost).
    pub damage: Vec<Damage>,
    /// Bytes of a partly written record after the last valid one (cut).
    pub torn_tail_bytes: usize,
    /// Sequence number the torn record claimed, when its header is readable
    /// (never given to another record).
    pub torn_seq: Option<u64>,
}

/// A damaged region found between valid records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub offset: usize,
    pub bytes: usize,
    /// Sequence numbers missing across the region.
    pub lost_records: u64,
    /// Sequence number of the valid record after the region: the numbers
    /// missing are the `lost_records` just below it.
    pub seq_after: u64,
}

/// Scans `data` from `start`. `expected` is the sequence number the first
/// record should carry (the header's `first_seq`). `on_record` sees each valid
/// record of the lap with its offset.
pub fn scan(
    data: &[u8],
    start: usize,
    expected: u64,
    mut on_record: impl FnMut(usize, &Record<'_>),
) -> ScanReport {
    let mut rep = ScanReport {
        end: start,
        ..Default::default()
    };
    let mut off = start;
    let mut next = expected;
    while off < data.len() {
        match Record::decode(&data[off..]) {
            Ok(rec) if rec.seq == next || (rec.seq > next && rep.records > 0) => {
                if rec.seq > next {
                    // a valid record directly after a valid one but with a gap: sequence hole
                    rep.damage.push(Damage {
                        offset: off,
                        bytes: 0,
                        lost_records: rec.seq - next,
                        seq_after: rec.seq,
                    });
                }
                accept(&mut rep, &mut on_record, off, &rec);
                next = rec.seq.saturating_add(1);
                off += rec.encoded_len();
            }
            other => {
                // Not the record we expect here. Is there a newer valid record further on?
                // a torn record starts with the magic; zeros or stale bytes are a clean end
                let torn = data[off..].starts_with(&crate::event::record::MAGIC)
                    && matches!(
                        other,
                        Err(RecordError::BadChecksum) | Err(RecordError::Truncated { .. })
                    );
                match resync(data, off + 1, next) {
                    Some((found, rec)) => {
                        rep.damage.push(Damage {
                            offset: off,
                            bytes: found - off,
                            lost_records: rec.seq - next,
                            seq_after: rec.seq,
                        });
                        accept(&mut rep, &mut on_record, found, &rec);
                        next = rec.seq.saturating_add(1);
                        off = found + rec.encoded_len();
                    }
                    None => {
                        if torn {
                            rep.torn_tail_bytes = torn_len(&data[off..]);
                            // the record being written when the tail tore
                            // can only be the next one: any other number in
                            // its unchecked header is damage (a garbage
                            // u64::MAX here made recovery overflow; fuzzed)
                            rep.torn_seq = Record::peek(&data[off..])
                                .map(|(seq, _)| seq)
                                .filter(|&s| s == next);
                        }
                        break;
                    }
                }
            }
        }
    }
    rep
}

fn accept(
    rep: &mut ScanReport,
    on_record: &mut impl FnMut(usize, &Record<'_>),
    off: usize,
    rec: &Record<'_>,
) {
    rep.records += 1;
    rep.first_seq.get_or_insert(rec.seq);
    rep.last_seq = Some(rec.seq);
    rep.end = off + rec.encoded_len();
    on_record(off, rec);
}

/// Length claimed by a torn record, bounded by the data.
fn torn_len(rest: &[u8]) -> usize {
    Record::peek(rest)
        .map(|(_, len)| len.min(rest.len()))
        .unwrap_or(crate::event::HEADER_LEN.min(rest.len()))
}

/// Finds the first offset at or after `from` holding a valid record with
/// sequence number ≥ `min_seq`. Valid stale records are skipped whole.
pub(crate) fn resync<'a>(data: &'a [u8], from: usize, min_seq: u64) -> Option<(usize, Record<'a>)> {
    let magic = crate::event::record::MAGIC;
    let mut off = from;
    while off + crate::event::HEADER_LEN <= data.len() {
        // jump to the next magic candidate (memchr's vectorised search: a
        // fresh segment is 64 MiB of zeros, searched at every start)
        off += memchr::memmem::find(&data[off..], &magic)?;
        match Record::decode(&data[off..]) {
            Ok(rec) if rec.seq >= min_seq => return Some((off, rec)),
            Ok(rec) => off += rec.encoded_len(),
            Err(_) => off += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::encode_to_vec;
    use crate::event::{RecordMeta, Severity};

    fn meta() -> RecordMeta {
        RecordMeta {
            timestamp_ms: 1,
            received_ms: 2,
            severity: Severity::Info,
            category: 0,
            tenant_hash: 0,
            flags: 0,
        }
    }

    fn build(seqs: &[u64]) -> (Vec<u8>, Vec<usize>) {
        let mut v = vec![0u8; 16];
        let mut offs = vec![];
        for &s in seqs {
            offs.push(v.len());
            v.extend(encode_to_vec(
                s,
                &meta(),
                format!("{{\"n\":{s}}}").as_bytes(),
            ));
        }
        v.extend(vec![0u8; 100]);
        (v, offs)
    }

    #[test]
    fn clean_segment() {
        let (v, offs) = build(&[10, 11, 12]);
        let mut seen = vec![];
        let r = scan(&v, 16, 10, |_, rec| seen.push(rec.seq));
        assert_eq!(seen, vec![10, 11, 12]);
        assert_eq!(r.records, 3);
        assert!(r.damage.is_empty());
        assert_eq!(r.torn_tail_bytes, 0);
        assert_eq!(r.end, v.len() - 100);
        assert_eq!(offs.len(), 3);
    }

    #[test]
    fn torn_tail_is_cut_and_reported() {
        let (mut v, offs) = build(&[1, 2, 3]);
        // tear the last record: keep its header, zero half its body
        let last = offs[2];
        let len = v.len() - 100 - last;
        for b in &mut v[last + len - 3..last + len] {
            *b = 0;
        }
        let r = scan(&v, 16, 1, |_, _| {});
        assert_eq!(r.records, 2);
        assert_eq!(r.end, last);
        assert_eq!(r.torn_tail_bytes, len);
    }

    #[test]
    fn a_torn_record_counts_as_the_next_only_when_it_is_numbered_as_the_next() {
        // records 1, 2, then a torn one: its header names 3 (the record being
        // written when the tail tore), or a damaged number
        for (torn, want) in [(3, Some(3)), (u64::MAX, None), (7, None), (1, None)] {
            let (mut v, offs) = build(&[1, 2, torn]);
            let last = offs[2];
            let len = v.len() - 100 - last;
            v[last + len - 1] ^= 0xff;
            let r = scan(&v, 16, 1, |_, _| {});
            assert_eq!((r.records, r.torn_tail_bytes), (2, len), "torn {torn}");
            assert_eq!(r.torn_seq, want, "torn {torn}");
        }
    }

    #[test]
    fn damage_in_the_middle_is_skipped() {
        let (mut v, offs) = build(&[5, 6, 7, 8]);
        v[offs[1] + 50] ^= 0xff; // corrupt record 6's body
        let mut seen = vec![];
        let r = scan(&v, 16, 5, |_, rec| seen.push(rec.seq));
        assert_eq!(seen, vec![5, 7, 8]);
        assert_eq!(r.damage.len(), 1);
        assert_eq!(r.damage[0].lost_records, 1);
        assert_eq!(r.damage[0].offset, offs[1]);
    }

    #[test]
    fn stale_records_of_an_earlier_lap_end_the_scan() {
        // current lap 100,101 written over a segment that held 1..=5
        let (old, _) = build(&[1, 2, 3, 4, 5]);
        let (new, _) = build(&[100, 101]);
        let mut v = old.clone();
        let new_len = new.len() - 100;
        v[..new_len].copy_from_slice(&new[..new_len]);
        let r = scan(&v, 16, 100, |_, _| {});
        assert_eq!(r.records, 2);
        assert_eq!(r.last_seq, Some(101));
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(r.end, new_len);
    }
}
