//! One segment file of the ring: a fixed-size file mapped into memory, a small
//! checksummed header, then records back to back.
//!
//! This is the only module with `unsafe`: the map is shared between the one
//! writer (who appends past the published end) and readers (who only read
//! below it). The ring guarantees the two regions never overlap, and that a
//! segment is never rewritten while a reader is positioned in it.
//!
//! ```text
//! header (64 bytes): magic "SIEMRSEG" | version u8 | 7 reserved | id u64 |
//!                    first_seq u64 | created_ms i64 | crc32c(0..40) u32 | 20 reserved
//! ```

use memmap2::MmapRaw;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const SEGMENT_MAGIC: [u8; 8] = *b"SIEMRSEG";
pub const SEGMENT_VERSION: u8 = 1;
/// Where records start in a segment.
pub const DATA_START: usize = 64;

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Monotonic across the ring's life: orders segments.
    pub id: u64,
    /// Sequence number of the first record written into this segment.
    pub first_seq: u64,
    pub created_ms: i64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; DATA_START] {
        let mut b = [0u8; DATA_START];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8] = SEGMENT_VERSION;
        b[16..24].copy_from_slice(&self.id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `Ok(None)` for a never-used (all-zero) header, `Err` for a damaged one.
    pub fn decode(b: &[u8]) -> Result<Option<SegmentHeader>, &'static str> {
        if b.len() < DATA_START {
            return Err("segment shorter than its header");
        }
        if b[..DATA_START].iter().all(|&x| x == 0) {
            return Ok(None);
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        if b[8] != SEGMENT_VERSION {
            return Err("unsupported segment version");
        }
        let crc = u32::from_le_bytes(b[40..44].try_into().unwrap());
        if crc32c::crc32c(&b[0..40]) != crc {
            return Err("segment header checksum mismatch");
        }
        let rd = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        Ok(Some(SegmentHeader {
            id: rd(16),
            first_seq: rd(24),
            created_ms: rd(32) as i64,
        }))
    }
}

/// A mapped segment file.
pub struct Segment {
    /// Index of the file in the ring (`segment-<slot>.dat`).
    pub slot: usize,
    path: PathBuf,
    map: MmapRaw,
    _file: File,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("slot", &self.slot)
            .field("len", &self.len())
            .finish()
    }
}

/// File name of a slot.
pub fn slot_file_name(slot: usize) -> String {
    format!("segment-{slot:05}.dat")
}

/// Parses a slot number out of a file name made by [`slot_file_name`].
pub fn parse_slot_file_name(name: &str) -> Option<usize> {
    name.strip_prefix("segment-")?
        .strip_suffix(".dat")?
        .parse()
        .ok()
}

impl Segment {
    /// Opens (creating if needed) the slot's file with exactly `size` bytes and maps it.
    pub fn open(dir: &Path, slot: usize, size: usize) -> io::Result<Segment> {
        let path = dir.join(slot_file_name(slot));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.metadata()?.len() != size as u64 {
            file.set_len(size as u64)?;
        }
        let map = MmapRaw::map_raw(&file)?;
        Ok(Segment {
            slot,
            path,
            map,
            _file: file,
        })
    }

    /// Opens an existing slot file with whatever size it has (recovery: a
    /// file from before a `segment_bytes` change keeps its size until reused).
    pub fn open_existing(dir: &Path, slot: usize) -> io::Result<Segment> {
        let path = dir.join(slot_file_name(slot));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let map = MmapRaw::map_raw(&file)?;
        Ok(Segment {
            slot,
            path,
            map,
            _file: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The bytes `[off, off+len)`.
    ///
    /// Callers must only ask for a range no writer is writing: below the
    /// segment's published end, or anything while holding the ring's writer
    /// lock with no reader in this segment (recovery, reclaim).
    pub fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len()),
            "segment read out of bounds"
        );
        // SAFETY: the range is inside the mapping (checked above) and the
        // mapping lives as long as `self`. Per the contract above, no thread
        // writes these bytes while the returned slice is alive: the writer
        // only writes past the published end, and rewrites a segment only
        // when no reader is positioned in it (ring table write lock).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) }
    }

    /// Copies `data` to offset `off`.
    ///
    /// Only the ring's single writer (holding the writer lock) calls this, and
    /// only past the segment's published end or on a segment no reader is in.
    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(
            off.checked_add(data.len())
                .is_some_and(|end| end <= self.len()),
            "segment write out of bounds"
        );
        // SAFETY: in bounds (checked above); the destination bytes are not
        // aliased by any live `&[u8]` from `bytes()` because readers only
        // borrow below the published end and the writer writes at or past
        // it (or on a segment with no reader, under the table write lock).
        // Source and destination cannot overlap: `data` is not in the map's
        // unpublished region.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(off), data.len())
        }
    }

    /// A mutable view of `[off, off+len)` for encoding a record in place.
    ///
    /// Same contract as [`Segment::write`].
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut(&self, off: usize, len: usize) -> &mut [u8] {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len()),
            "segment write out of bounds"
        );
        // SAFETY: in bounds (checked above). Only the single writer holding
        // the ring's writer lock calls this, for bytes at or past the
        // published end (never borrowed by readers) — so this is the only
        // live reference to these bytes until the writer publishes them.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(off), len) }
    }

    /// Writes the header at the start of the segment.
    pub fn write_header(&self, h: &SegmentHeader) {
        self.write(0, &h.encode());
    }

    /// Reads the header.
    pub fn header(&self) -> Result<Option<SegmentHeader>, &'static str> {
        SegmentHeader::decode(self.bytes(0, DATA_START.min(self.len())))
    }

    /// Faults every page of the map in, writable, so appends into this
    /// segment take no page faults (MADV_POPULATE_WRITE; Linux 5.14+).
    pub fn prefault(&self) -> io::Result<()> {
        self.map.advise(memmap2::Advice::PopulateWrite)
    }

    /// Flushes `[off, off+len)` to disk (msync), waiting for it.
    pub fn flush_range(&self, off: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(off, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            id: 9,
            first_seq: 1234,
            created_ms: 5,
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b).unwrap(), Some(h));
        assert_eq!(SegmentHeader::decode(&[0u8; 64]).unwrap(), None);
        b[20] ^= 1;
        assert!(SegmentHeader::decode(&b).is_err());
    }

    #[test]
    fn segment_write_read_persist() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Segment::open(dir.path(), 3, 4096).unwrap();
            s.write_header(&SegmentHeader {
                id: 1,
                first_seq: 0,
                created_ms: 0,
            });
            s.write(DATA_START, b"hello");
            s.flush_range(0, 4096).unwrap();
        }
        let s = Segment::open(dir.path(), 3, 4096).unwrap();
        assert_eq!(s.bytes(DATA_START, 5), b"hello");
        assert_eq!(s.header().unwrap().unwrap().id, 1);
        assert_eq!(parse_slot_file_name(&slot_file_name(3)), Some(3));
    }
}
