//! One segment file of the ring: a fixed-size file, a small checksummed
//! header, then records back to back.
//!
//! Who touches the bytes how:
//! - the ring's one writer writes with positioned writes ([`Segment::write_at`],
//!   `pwrite`), never through memory: past the segment's published end, or
//!   anywhere in a segment no reader is in and no lease holds (recovery,
//!   reuse; expiry clears only the header, which no lease covers);
//! - readers read through a read-only shared map ([`Segment::bytes`]), only
//!   below the published end. On Linux a `MAP_SHARED` map and `pwrite` go
//!   through the same page cache, so a reader sees the written bytes as soon
//!   as the writer has published them (it publishes after `pwrite` returned);
//! - destinations hold read records as [`Segment::share`]d bytes of the map
//!   (no copy) until their batch is done: each such range is a lease, and a
//!   segment with a lease is never rewritten. A ring that must reuse one
//!   (buffer full, records past `max_age`) gives its slot a new file
//!   instead; the old file lives, unlinked, until the last lease drops.
//!
//! This is the only module with `unsafe` (turning the map into slices, and
//! prefetch hints for readers walking it). The
//! ring guarantees the written and the read regions never overlap, and that a
//! segment is never rewritten while a reader is positioned in it or a lease
//! holds it.
//!
//! ```text
//! header (64 bytes): magic "SIEMRSEG" | version u8 | 7 reserved | id u64 |
//!                    first_seq u64 | created_ms i64 | crc32c(0..40) u32 | 20 reserved
//! ```

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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
        let crc = crate::event::crc32c::crc32c(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `Ok(None)` for a never-used (all-zero) header, `Err` for a damaged one.
    /// A file shorter than the header whose bytes are all zero (empty
    /// included) is never-used too: a crash between creating a slot's file
    /// and sizing it leaves one.
    pub fn decode(b: &[u8]) -> Result<Option<SegmentHeader>, &'static str> {
        if b.iter().take(DATA_START).all(|&x| x == 0) {
            return Ok(None);
        }
        if b.len() < DATA_START {
            return Err("segment shorter than its header");
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        if b[8] != SEGMENT_VERSION {
            return Err("unsupported segment version");
        }
        let crc = u32::from_le_bytes(b[40..44].try_into().unwrap());
        if crate::event::crc32c::crc32c(&b[0..40]) != crc {
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

/// A segment file: written with `pwrite`, read through a read-only map.
pub struct Segment {
    /// Index of the file in the ring (`segment-<slot>.dat`).
    pub slot: usize,
    path: PathBuf,
    map: MmapRaw,
    file: File,
    /// The file system's preferred I/O size (`st_blksize`, a power of two).
    io_block: usize,
    /// The header on the device is all zeros (a new file, or one cleared
    /// and flushed for reuse): recovery ignores the whole file until a new
    /// header is durable, so the writer need not flush that header before
    /// its records (see [`Segment::take_header_clear`]).
    header_clear: AtomicBool,
    /// Live [`SegmentLease`]s: batches holding records of this segment
    /// without a copy. A leased segment is never rewritten in place (the
    /// ring replaces its file instead, see [`Segment::is_leased`]).
    leases: AtomicUsize,
    /// Test hook: (writes still to let through, bytes the failing one stores).
    #[cfg(test)]
    inject_failure: std::sync::Mutex<Option<(usize, usize)>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("slot", &self.slot)
            .field("len", &self.len())
            .finish()
    }
}

/// A published range of a segment kept readable by [`Segment::share`]'s
/// [`Bytes`]: it holds the segment (so the map stays) and counts as a lease
/// (so the ring does not rewrite the range).
struct SegmentLease {
    seg: Arc<Segment>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for SegmentLease {
    fn as_ref(&self) -> &[u8] {
        self.seg.bytes(self.off, self.len)
    }
}

impl Drop for SegmentLease {
    fn drop(&mut self) {
        self.seg.leases.fetch_sub(1, Ordering::AcqRel);
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

/// Asks the CPU to bring the cache line holding `bytes[off]` closer (a
/// hint: nothing happens when `off` is out of range or the CPU has no
/// such instruction). Readers walk records by their lengths, each header
/// found only once the one before it is loaded; prefetching the bytes
/// ahead of the walk turns that chain of memory misses into a stream.
#[inline(always)]
pub fn prefetch(bytes: &[u8], off: usize) {
    #[cfg(target_arch = "x86_64")]
    if off < bytes.len() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it never faults, writes, or
        // makes the program read memory, and `off` is inside `bytes`
        // anyway. SSE, which the instruction needs, is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(off).cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, off);
}

/// Allocates the blocks of a file's first `size` bytes, keeping its size.
/// File systems that cannot (`EOPNOTSUPP`) keep the file sparse, as it was.
fn preallocate(file: &File, size: usize) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    match fallocate(file, FallocateFlags::empty(), 0, size as i64) {
        Ok(()) | Err(nix::errno::Errno::EOPNOTSUPP) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Whether `e` says the file system (or the user's quota) has no room.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl Segment {
    /// Opens (creating if needed) the slot's file with exactly `size` bytes and maps it.
    ///
    /// The file's blocks are allocated here ([`preallocate`]), so a full
    /// file system refuses the segment at once, with an error that says so
    /// ([`is_out_of_space`]), instead of failing a write into a hole
    /// halfway through the segment. A new file that cannot have its blocks
    /// is removed again.
    pub fn open(dir: &Path, slot: usize, size: usize) -> io::Result<Segment> {
        let path = dir.join(slot_file_name(slot));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len != size as u64 {
            file.set_len(size as u64)?;
        }
        if let Err(e) = preallocate(&file, size) {
            if len == 0 {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
        let seg = Segment::from_file(slot, path, file)?;
        if len == 0 {
            // a new file reads as zeros, on the device too
            seg.header_clear.store(true, Ordering::Release);
        }
        Ok(seg)
    }

    /// Opens an existing slot file with whatever size it has (recovery: a
    /// file from before a `segment_bytes` change keeps its size until reused).
    pub fn open_existing(dir: &Path, slot: usize) -> io::Result<Segment> {
        let path = dir.join(slot_file_name(slot));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        Segment::from_file(slot, path, file)
    }

    fn from_file(slot: usize, path: PathBuf, file: File) -> io::Result<Segment> {
        let blksize = file.metadata()?.blksize() as usize;
        let io_block = if blksize.is_power_of_two() {
            blksize.clamp(512, 1 << 16)
        } else {
            4096
        };
        let map = MmapOptions::new().map_raw_read_only(&file)?;
        Ok(Segment {
            slot,
            path,
            map,
            file,
            io_block,
            header_clear: AtomicBool::new(false),
            leases: AtomicUsize::new(0),
            #[cfg(test)]
            inject_failure: std::sync::Mutex::new(None),
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

    /// The file system's preferred write granularity. A write that covers a
    /// block only partly makes the kernel read (or zero) that block first
    /// when it is not cached; the writer pads its writes to this size.
    pub fn io_block(&self) -> usize {
        self.io_block
    }

    /// The bytes `[off, off+len)`.
    ///
    /// Callers must only ask for a range no writer is writing: below the
    /// segment's published end, or anything while holding the ring's writer
    /// lock with no reader in this segment and no lease on it (recovery,
    /// reclaim).
    pub fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len()),
            "segment read out of bounds"
        );
        // SAFETY: the range is inside the mapping (checked above) and the
        // mapping lives as long as `self`. The map is read-only, so nothing in
        // this process writes through it; the only writes to the file are the
        // writer's `pwrite`s ([`Segment::write_at`]), and per the contract
        // above none of them touches these bytes while the returned slice is
        // alive: the writer only writes past the published end, and rewrites
        // a segment only when no reader is positioned in it (ring table write
        // lock) and no [`SegmentLease`] is alive (a leased segment is
        // replaced by a new file, never rewritten: `Segment::is_leased`).
        // Readers learn the published end with an Acquire load of a
        // value the writer stored (Release) after its `pwrite` returned, so
        // the written bytes are visible (same page cache, same physical pages).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) }
    }

    /// The published bytes `[off, off+len)` as [`Bytes`] that share the
    /// map instead of copying it: a cursor hands records to destinations
    /// this way. The returned bytes (and every slice of them) hold a lease
    /// on the segment until dropped; the ring does not rewrite a leased
    /// segment. Same contract as [`Segment::bytes`] for the range.
    pub fn share(self: &Arc<Self>, off: usize, len: usize) -> Bytes {
        // bounds checked before the lease exists (a panic here leaks nothing)
        let _ = self.bytes(off, len);
        self.leases.fetch_add(1, Ordering::AcqRel);
        Bytes::from_owner(SegmentLease {
            seg: self.clone(),
            off,
            len,
        })
    }

    /// Whether any bytes handed out by [`Segment::share`] are still alive.
    /// The ring checks this, under its table write lock, before it writes a
    /// new header and records over a segment that left the table; leases
    /// are only taken on segments in the table (under its read lock), so
    /// the answer can only go from yes to no meanwhile.
    pub fn is_leased(&self) -> bool {
        self.leases.load(Ordering::Acquire) > 0
    }

    /// Writes `data` at offset `off` of the file (`pwrite`, all of it or an error).
    ///
    /// Only the ring's single writer (holding the writer lock) calls this, and
    /// only past the segment's published end or on a segment no reader is in.
    /// On error an unknown prefix of `data` may have been written.
    pub fn write_at(&self, off: usize, data: &[u8]) -> io::Result<()> {
        assert!(
            off.checked_add(data.len())
                .is_some_and(|end| end <= self.len()),
            "segment write out of bounds"
        );
        #[cfg(test)]
        {
            let mut inject = self.inject_failure.lock().unwrap();
            match *inject {
                Some((0, n)) => {
                    *inject = None;
                    self.file
                        .write_all_at(&data[..n.min(data.len())], off as u64)?;
                    return Err(io::Error::other("injected write failure"));
                }
                Some((k, n)) => *inject = Some((k - 1, n)),
                None => {}
            }
        }
        self.file.write_all_at(data, off as u64)
    }

    /// Test hook: after `ok` more successful writes, the next
    /// [`Segment::write_at`] stores its first `bytes` bytes and fails.
    #[cfg(test)]
    pub(crate) fn inject_write_failure(&self, ok: usize, bytes: usize) {
        *self.inject_failure.lock().unwrap() = Some((ok, bytes));
    }

    /// Writes the header at the start of the segment.
    pub fn write_header(&self, h: &SegmentHeader) -> io::Result<()> {
        self.write_at(0, &h.encode())
    }

    /// Reads the header.
    pub fn header(&self) -> Result<Option<SegmentHeader>, &'static str> {
        SegmentHeader::decode(self.bytes(0, DATA_START.min(self.len())))
    }

    /// Makes at least `[off, off+len)` durable, waiting for it.
    ///
    /// `fdatasync` of the whole file: it writes back every dirty page of the
    /// file however it was dirtied (here by `pwrite`) plus the metadata needed
    /// to read it back (block allocation), then flushes the device cache. The
    /// range only decides whether there is anything to do: the writer keeps
    /// little else dirty in a segment, so a ranged flush would not be cheaper.
    /// Writes a zero header and flushes it, so that recovery ignores the
    /// file (its records with it) and the next header written need not be
    /// flushed before the records behind it.
    pub fn clear_header(&self) -> io::Result<()> {
        self.header_clear.store(false, Ordering::Release);
        self.write_at(0, &[0u8; DATA_START])?;
        self.flush_range(0, DATA_START)?;
        self.header_clear.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the header on the device was all zeros, forgetting it (the
    /// caller is about to write a header). While a zero header is durable,
    /// recovery skips the file, so records written behind a new header are
    /// either found with that header or not at all: the header need not be
    /// flushed first. Under `fsync = always` the append's own flush covers
    /// the header (it flushes the whole file); under `interval` the next
    /// periodic flush does, before any of those records counts as durable.
    pub fn take_header_clear(&self) -> bool {
        self.header_clear.swap(false, Ordering::AcqRel)
    }

    pub fn flush_range(&self, off: usize, len: usize) -> io::Result<()> {
        let _ = off;
        if len == 0 {
            return Ok(());
        }
        self.file.sync_data()
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
            })
            .unwrap();
            s.write_at(DATA_START, b"hello").unwrap();
            // visible through the map at once (same page cache)
            assert_eq!(s.bytes(DATA_START, 5), b"hello");
            s.flush_range(0, 4096).unwrap();
        }
        let s = Segment::open(dir.path(), 3, 4096).unwrap();
        assert_eq!(s.bytes(DATA_START, 5), b"hello");
        assert_eq!(s.header().unwrap().unwrap().id, 1);
        assert_eq!(parse_slot_file_name(&slot_file_name(3)), Some(3));
    }

    #[test]
    fn shared_bytes_are_the_map_and_count_as_a_lease_until_every_slice_drops() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Segment::open(dir.path(), 0, 4096).unwrap());
        s.write_at(DATA_START, b"hello world").unwrap();
        assert!(!s.is_leased());
        let run = s.share(DATA_START, 11);
        assert_eq!(run.as_ptr(), s.bytes(DATA_START, 1).as_ptr(), "not a copy");
        let word = run.slice(6..11);
        assert!(s.is_leased());
        drop(run);
        assert!(s.is_leased(), "a slice keeps the lease");
        assert_eq!(&word[..], b"world");
        // the bytes outlive every other handle on the segment
        let weak = Arc::downgrade(&s);
        drop(s);
        assert_eq!(&word[..], b"world");
        let s = weak.upgrade().unwrap();
        drop(word);
        assert!(!s.is_leased());
    }

    #[test]
    #[should_panic(expected = "segment read out of bounds")]
    fn sharing_past_the_end_panics_before_taking_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Segment::open(dir.path(), 0, 4096).unwrap());
        let _ = s.share(4000, 100);
    }
}
