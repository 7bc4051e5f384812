//! The ring: a bounded set of segment files, one writer appending records,
//! and the table of live segments the cursors read from.
//!
//! Appends are serialised by one mutex. A source's async append that finds
//! it held does not wait for it: it queues its batch, and the append
//! holding the lock appends the queued batches, one after another and each
//! whole, before it lets go ([`Ring::append_owned`]). The writer encodes an append's
//! records into its staging buffer and writes them with one positioned write
//! (`pwrite`) per segment touched, then publishes them: it stores the new
//! ends (Release) only after the write returned, so a reader that sees an end
//! sees the bytes below it (readers read the same page cache through the map).
//! When the active segment is full the writer rolls to a free slot
//! or reuses the oldest segment. Reuse asks every cursor: a `drop_oldest`
//! cursor still in that segment jumps past it (the drop is counted and a
//! `relay.buffer.overflow` SECURITY event is appended); a `block` cursor that
//! has not acknowledged it makes the append fail with [`AppendError::Full`]
//! before anything is written, so callers see backpressure. A segment that
//! a destination's batch still holds records of (a lease, see
//! [`Segment::share`](super::segment::Segment::share)) is never rewritten:
//! its slot gets a new file and the old one lives, unlinked, until the
//! batch drops it.
//!
//! All or nothing: a failed write publishes nothing of the append and returns
//! [`AppendError::Io`]. The writer goes back to its last published position
//! and (best effort) zeroes what it had written past it, so neither readers
//! nor recovery after a crash see part of a failed batch. If the failed append
//! had already rolled to a new segment, the writer stays there: the sequence
//! numbers of the batch are then skipped, never reused (the new segment's
//! header names its first one).
//!
//! Crash ordering: a segment is reused by writing its new header (new id,
//! new `first_seq`; flushed first unless `fsync = never` or the header on the
//! device is all zeros: a new file, or one the maintenance thread cleared
//! and flushed ahead of the roll, which recovery ignores) before any record;
//! stale records left in it carry older sequence numbers and fail the scan's
//! "current lap" test, so a crash between any two steps leaves a ring that
//! recovery reads correctly. Writes are padded with zeros to the file
//! system's block size: a write covering a block only partly makes the kernel
//! read (or zero) the block first when it is not cached, which a wrapped ring
//! would otherwise pay on every block; zeros past the last record read as a
//! clean end to recovery.
//!
//! Durability: `fsync = always` makes each append's range durable with
//! `fdatasync` before returning ([`Segment::flush_range`]); `interval` does it
//! from the maintenance thread; `never` leaves it to the kernel. A `kill -9`
//! loses nothing published under any policy: a returned `pwrite` is in the
//! page cache, which outlives the process.
//!
//! The parts: this file holds the ring's state and opening, cursors and
//! stats; [`append`] the append path; [`segments`] rolling, reuse, expiry
//! and the maintenance thread.

mod append;
mod segments;
mod slots;

pub(crate) use segments::overflow_notice;
pub(crate) use slots::UnopenedSlots;

use super::checkpoint;
use super::cursor::{Cursor, CursorShared, ReadPos};
use super::recovery::{self, RecoveryReport};
use super::segment::{Segment, SegmentHeader, DATA_START};
use crate::config::{FsyncPolicy, MAX_SEGMENTS, SEGMENT_BYTES};
use crate::event::{self, now_millis, EncodedEvent, Event, Severity, HEADER_LEN};
use crate::sources::log_limit::{LogLimiter, SystemClock};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;
use thiserror::Error;

/// What happens when the ring must reuse a segment a destination has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The cursor jumps past the lost records; drops are counted and reported.
    #[default]
    DropOldest,
    /// Appends wait until this destination catches up.
    Block,
}

/// How the ring is laid out and flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    /// Records older than this are expired from the ring (drop_oldest cursors
    /// behind them jump, counted). Zero disables.
    pub max_age: Duration,
    pub fsync: FsyncPolicy,
}

/// Errors opening or managing the ring.
#[derive(Debug, Error)]
pub enum BufferError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("data directory {0} is in use by another siem-relay process")]
    Locked(PathBuf),
    #[error("a cursor named `{0}` is already open")]
    CursorExists(String),
    #[error("invalid ring settings: {0}")]
    Settings(String),
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BufferError {
    let context = context.into();
    move |source| BufferError::Io { context, source }
}

/// Why an append did not happen. Nothing of the batch was published in any case.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AppendError {
    #[error("buffer full: destination `{0}` (when_full = block) has not caught up")]
    Full(String),
    #[error("record of {len} bytes does not fit a segment (max {max})")]
    TooLarge { len: usize, max: usize },
    /// The batch needs more segments than the ring has besides the one
    /// being written: it can never be appended whole, however long it
    /// waits (split it: each record fits a segment).
    #[error("the batch is larger than the whole buffer can take at once")]
    LargerThanRing,
    #[error("buffer is closed")]
    Closed,
    #[error("writing to the buffer failed: {0}")]
    Io(String),
    /// Under `fsync = always`: the records are in the ring (destinations
    /// may read them), but flushing them to disk failed, so the append is
    /// not durable and must not be acknowledged as such.
    #[error("appended, but flushing it to disk failed (fsync = always): {0}")]
    NotDurable(String),
}

impl AppendError {
    /// Whether the records are in the ring all the same.
    pub fn appended(&self) -> bool {
        matches!(self, AppendError::NotDurable(_))
    }
}

/// A live segment and what the writer has published in it.
#[derive(Debug)]
pub(crate) struct SegInfo {
    pub seg: Arc<Segment>,
    pub id: u64,
    pub first_seq: u64,
    /// Offset past the last published record (readers read below it).
    pub end_off: AtomicUsize,
    /// Sequence number after the last record written. Writer-side
    /// bookkeeping (read under the writer lock): for a segment rolled away
    /// from during an append it already counts that append's records.
    pub end_seq: AtomicU64,
    /// Newest receive time in the segment (for `max_age`).
    pub last_ms: AtomicI64,
    /// No more records will be written to it.
    pub sealed: AtomicBool,
    /// Offset below which a reader of this process has checked every
    /// record's checksum, reading them one after another from the first:
    /// the other cursors decode those records without checking again, so a
    /// fan-out to N destinations checks each record once, not N times. It
    /// never passes a record that failed its check.
    pub verified_off: AtomicUsize,
}

impl SegInfo {
    pub(crate) fn new(
        seg: Arc<Segment>,
        h: SegmentHeader,
        end_off: usize,
        end_seq: u64,
        last_ms: i64,
    ) -> Arc<SegInfo> {
        Arc::new(SegInfo {
            seg,
            id: h.id,
            first_seq: h.first_seq,
            end_off: AtomicUsize::new(end_off),
            end_seq: AtomicU64::new(end_seq),
            last_ms: AtomicI64::new(last_ms),
            sealed: AtomicBool::new(false),
            verified_off: AtomicUsize::new(DATA_START),
        })
    }
}

/// Live segments, oldest first, and unused files.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub segs: VecDeque<Arc<SegInfo>>,
    /// Opened segment files not in use (expired), ready for reuse.
    pub free: Vec<Arc<Segment>>,
    /// Slot numbers with no file yet.
    pub unopened: slots::UnopenedSlots,
    /// When a new segment last could not be created for lack of space on
    /// the file system: until one can (the maintenance thread tries now and
    /// then), the unopened slots do not count, and the ring is full at the
    /// size it has.
    pub no_space: Option<std::time::Instant>,
    /// When the maintenance thread last failed to create a segment for
    /// another reason (a read-only or failing folder): it tries again
    /// [`segments::SEGMENT_RETRY`] later, not at every tick.
    pub spare_failed: Option<std::time::Instant>,
}

impl Table {
    /// How many segments a roll may take without reusing the oldest: free
    /// or unopened slots (not these while the file system has no space),
    /// but never more live segments than `slots` (a ring whose `max_bytes`
    /// was lowered has more; see `shrink_to_slots`).
    pub fn fresh_available(&self, slots: usize) -> usize {
        let unopened = if self.no_space.is_some() {
            0
        } else {
            self.unopened.len()
        };
        (self.free.len() + unopened).min(slots.saturating_sub(self.segs.len()))
    }
}

impl Table {
    pub(crate) fn find(&self, id: u64) -> Option<(usize, &Arc<SegInfo>)> {
        let front = self.segs.front()?.id;
        // ids are consecutive except across recovery gaps: try the direct index first
        let guess = id.checked_sub(front).map(|g| g as usize);
        if let Some(s) = guess.and_then(|g| self.segs.get(g)).filter(|s| s.id == id) {
            return Some((guess.unwrap_or(0), s));
        }
        self.segs.iter().enumerate().find(|(_, s)| s.id == id)
    }
}

pub(crate) struct Writer {
    pub active: Arc<SegInfo>,
    pub off: usize,
    pub next_seq: u64,
    pub next_id: u64,
    /// Start of the active segment's region not yet flushed.
    pub dirty_from: usize,
    /// Sealed segments' regions not yet flushed.
    pub dirty_sealed: Vec<(Arc<Segment>, usize, usize)>,
    /// SECURITY notices waiting to be appended (overflow, damage).
    pub notices: VecDeque<Event>,
    /// How many of the first `notices` are kept in
    /// [`recovery::PENDING_NOTICES_FILE`] (those recovery reported).
    pub pending_saved: usize,
    /// Encoded records of the current append not yet written, for the
    /// active segment at `stage_off` (reused across appends).
    pub stage: Vec<u8>,
    pub stage_off: usize,
    /// Segments rolled away from during the current append: sealed (and
    /// their last records published) by `publish`.
    pub sealing: Vec<Sealing>,
}

impl Writer {
    pub(crate) fn new(active: Arc<SegInfo>, off: usize, next_seq: u64, next_id: u64) -> Writer {
        Writer {
            active,
            off,
            next_seq,
            next_id,
            dirty_from: off,
            dirty_sealed: Vec::new(),
            notices: VecDeque::new(),
            pending_saved: 0,
            stage: Vec::new(),
            stage_off: off,
            sealing: Vec::new(),
        }
    }
}

/// What [`Ring::append_owned`] gives back: the events (for their buffers)
/// and their sequence numbers, or why they were not appended.
pub type OwnedAppend = (Vec<EncodedEvent>, Result<Range<u64>, AppendError>);

/// A range of a segment to flush after an append (`fsync = always`).
type Synced = (Arc<Segment>, usize, usize);

/// An append queued while another held the writer lock
/// ([`Ring::append_owned`]).
pub(crate) struct Queued {
    events: Vec<EncodedEvent>,
    sizes: Vec<usize>,
    done: tokio::sync::oneshot::Sender<OwnedAppend>,
}

/// How often a queued append looks whether the writer lock is free (when
/// the holder was not an append, which would have run the queue).
const QUEUED_RECHECK: Duration = Duration::from_millis(1);

/// A segment the current append rolled away from.
pub(crate) struct Sealing {
    info: Arc<SegInfo>,
    /// Where its records end once the append is published.
    end_off: usize,
    /// Its `end_seq` before the append (restored if the append fails).
    prev_end_seq: u64,
}

/// Counters of the ring.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appended: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub full_refusals: AtomicU64,
    /// Appends queued because the writer lock was busy, and done by its holder.
    pub queued_appends: AtomicU64,
    /// Segments reused with a new file because a batch still held them.
    pub leased_replacements: AtomicU64,
    /// Device flushes of a new segment's header on the append path.
    #[cfg(test)]
    pub header_flushes: AtomicU64,
    /// Flushes of appended ranges under `fsync = always`.
    #[cfg(test)]
    pub append_flushes: AtomicU64,
    /// Test hook: those flushes fail.
    #[cfg(test)]
    pub fail_flushes: AtomicBool,
    /// The maintenance thread's tries to create a segment ahead of the
    /// writer, and the log lines about those that failed.
    #[cfg(test)]
    pub spare_tries: AtomicU64,
    #[cfg(test)]
    pub spare_error_lines: AtomicU64,
}

impl Counters {
    /// `records` more appended records of `bytes` bytes in all (the
    /// ring's own notices too: `appended_total` matches `next_seq`).
    pub fn add_appended(&self, records: usize, bytes: usize) {
        self.appended.fetch_add(records as u64, Ordering::Relaxed);
        self.appended_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

pub(crate) struct Inner {
    pub settings: RingSettings,
    pub seg_size: usize,
    pub slots: usize,
    pub table: RwLock<Table>,
    pub writer: Mutex<Writer>,
    /// Appends waiting for the writer lock ([`Ring::append_owned`]), and
    /// their number (read without the lock).
    pub queued: Mutex<Vec<Queued>>,
    pub queued_len: AtomicUsize,
    /// Every sequence number below this is published.
    pub committed: AtomicU64,
    pub cursors: Mutex<Vec<Arc<CursorShared>>>,
    pub data_notify: tokio::sync::Notify,
    /// The lowest sequence number a [`Ring::wait_for_data`] waits for
    /// (`u64::MAX`: none): an append notifies only once it publishes it.
    pub data_wake_at: AtomicU64,
    pub space_notify: tokio::sync::Notify,
    pub space_cv: (Mutex<()>, Condvar),
    pub closed: AtomicBool,
    pub counters: Counters,
    pub cursor_dir: PathBuf,
    /// The maintenance thread's failures to create a segment (other than
    /// for lack of space): the first logged, then one summary a window.
    pub spare_errors: LogLimiter<String>,
    /// The maintenance thread. When the last handle drops, it is woken and
    /// joined, so it ends with the ring instead of after its tick (up to a
    /// second later).
    maintenance: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tests that drive the maintenance steps themselves stop the thread's
    /// rounds, which would otherwise run in between on a loaded machine.
    #[cfg(test)]
    pub maintenance_paused: AtomicBool,
    /// Test hook: new segment files fail as on a full file system.
    #[cfg(test)]
    pub no_space_for_tests: AtomicBool,
    /// Test hook: new segment files fail as in a read-only folder.
    #[cfg(test)]
    pub read_only_for_tests: AtomicBool,
    _lock: [File; 2],
}

impl Drop for Inner {
    fn drop(&mut self) {
        let handle = self.maintenance.get_mut().ok().and_then(Option::take);
        if let Some(handle) = handle {
            // The maintenance thread holds no handle while it waits, so it
            // returns as soon as it wakes. It may itself have dropped the
            // last one (it holds one during a round): then the unpark makes
            // its next wait return at once, and it ends without a join.
            handle.thread().unpark();
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// The ring buffer. Cheap to clone; all clones share one ring.
#[derive(Clone)]
pub struct Ring {
    pub(crate) inner: Arc<Inner>,
}

/// A snapshot of the ring's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingStats {
    pub segments: usize,
    pub slots: usize,
    pub oldest_seq: u64,
    pub next_seq: u64,
    pub appended: u64,
    pub appended_bytes: u64,
    pub full_refusals: u64,
    /// Appends that found the writer busy and were done by the append
    /// holding it ([`Ring::append_owned`]).
    pub queued_appends: u64,
    /// Segments whose slot got a new file because a batch still held them.
    pub replaced_segments: u64,
    /// The file system had no space for a new segment (and has had none
    /// since): the ring is full at `segments`, below its `slots`.
    pub no_space: bool,
}

impl Ring {
    /// Opens (or creates) the ring in `settings.dir`, recovering what a crash
    /// left: torn tails are cut, damaged records skipped, unreadable segments
    /// quarantined; all of it is in the report, and appended as SECURITY
    /// events with the first append (open the cursors before appending).
    pub fn open(settings: RingSettings) -> Result<(Ring, RecoveryReport), BufferError> {
        let (ring, report) = Ring::open_unreported(settings)?;
        ring.report_recovery(&report, report.notices());
        Ok((ring, report))
    }

    /// [`open`](Self::open) without reporting what recovery found: the
    /// caller does, with [`report_recovery`](Self::report_recovery)
    /// (`buffer salvage`, which reports it less what it brought back).
    pub(crate) fn open_unreported(
        settings: RingSettings,
    ) -> Result<(Ring, RecoveryReport), BufferError> {
        if !SEGMENT_BYTES.contains(&settings.segment_bytes) {
            return Err(BufferError::Settings(
                "segment_bytes must be between 64KiB and 4GiB".into(),
            ));
        }
        let slots = settings.max_bytes / settings.segment_bytes;
        if slots < 2 {
            return Err(BufferError::Settings(
                "max_bytes must hold at least two segments".into(),
            ));
        }
        if slots > MAX_SEGMENTS {
            return Err(BufferError::Settings(format!(
                "max_bytes must hold at most {MAX_SEGMENTS} segments: at most {} bytes with segment_bytes = {}",
                MAX_SEGMENTS * settings.segment_bytes,
                settings.segment_bytes
            )));
        }
        let slots = slots as usize;
        std::fs::create_dir_all(&settings.dir)
            .map_err(io_err(format!("creating {}", settings.dir.display())))?;
        let lock = lock_dir(&settings.dir)?;
        let cursor_dir = settings.dir.join("cursors");
        std::fs::create_dir_all(&cursor_dir).map_err(io_err("creating cursors folder"))?;
        let seg_size = settings.segment_bytes as usize;
        let rec = recovery::recover(&settings.dir, &cursor_dir, seg_size, slots)?;
        let recovery::Recovered {
            table,
            writer,
            report,
            committed,
        } = rec;
        let inner = Arc::new(Inner {
            settings,
            seg_size,
            slots,
            table: RwLock::new(table),
            writer: Mutex::new(writer),
            queued: Mutex::new(Vec::new()),
            queued_len: AtomicUsize::new(0),
            committed: AtomicU64::new(committed),
            cursors: Mutex::new(Vec::new()),
            data_notify: tokio::sync::Notify::new(),
            data_wake_at: AtomicU64::new(u64::MAX),
            space_notify: tokio::sync::Notify::new(),
            space_cv: (Mutex::new(()), Condvar::new()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            cursor_dir,
            spare_errors: LogLimiter::new(segments::SPARE_ERROR_WINDOW, Arc::new(SystemClock)),
            maintenance: Default::default(),
            #[cfg(test)]
            maintenance_paused: AtomicBool::new(false),
            #[cfg(test)]
            no_space_for_tests: AtomicBool::new(false),
            #[cfg(test)]
            read_only_for_tests: AtomicBool::new(false),
            _lock: lock,
        });
        let ring = Ring { inner };
        ring.start_maintenance();
        Ok((ring, report))
    }

    /// Reports what recovery found (`report`, as SECURITY events
    /// `notices`) and notes its damage as reported, so a later start does
    /// not report it again.
    pub(crate) fn report_recovery(&self, report: &RecoveryReport, notices: Vec<Event>) {
        // Queued, not written now: they go in with the next append, once the
        // destinations have opened their cursors (a `block` cursor not yet
        // open could otherwise lose the segment the notice would reuse).
        // Until then they are kept on disk, with those an earlier start
        // queued and never wrote (it stopped first), ahead of the rest.
        let dir = &self.inner.settings.dir;
        let mut pending = recovery::load_pending(dir);
        pending.extend(notices);
        if let Err(e) = recovery::save_pending(dir, &pending) {
            tracing::warn!(error = %e, "cannot keep the ring's reports until they are written (a stop before the first append loses them)");
        }
        {
            let mut w = self.inner.writer.lock().unwrap();
            w.pending_saved = pending.len();
            for ev in pending.into_iter().rev() {
                w.notices.push_front(ev);
            }
        }
        // the damage found now is reported now (notices, log), not again
        let keys = report.reported_keys();
        if let Err(e) = recovery::save_reported(dir, &keys) {
            tracing::warn!(error = %e, "cannot note the ring damage reported (the next start reports it again)");
        }
    }

    /// Queues a SECURITY notice: it goes in with the next append.
    pub(crate) fn queue_notice(&self, notice: Event) {
        self.inner.writer.lock().unwrap().notices.push_back(notice);
    }

    /// The settings the ring was opened with.
    pub fn settings(&self) -> &RingSettings {
        &self.inner.settings
    }

    /// Opens the cursor of destination `name`, resuming from its checkpoint
    /// (or from the oldest retained record when it has none).
    pub fn cursor(&self, name: &str, policy: WhenFull) -> Result<Cursor, BufferError> {
        let path = checkpoint::path_for(&self.inner.cursor_dir, name);
        let (cp, damaged) = match checkpoint::load(&path) {
            Ok(cp) => (cp, false),
            Err(e) => {
                tracing::error!(destination = %name, error = %e,
                    "the destination's checkpoint cannot be read: it starts at the oldest record in the ring (what it had delivered of those is sent again)");
                (None, true)
            }
        };
        let mut cursors = self.inner.cursors.lock().unwrap();
        if cursors.iter().any(|c| c.name == name) {
            return Err(BufferError::CursorExists(name.to_string()));
        }
        let table = self.inner.table.read().unwrap();
        let (pos, behind) = self.seek(&table, cp.map(|c| c.seq));
        // of the records gone below the oldest, those below `skipped_to`
        // were counted in `dropped` when the ring moved the cursor past them
        let lost = match cp {
            Some(c) => behind.saturating_sub(c.skipped_to.saturating_sub(c.seq)),
            None => 0,
        };
        let dropped = cp.map(|c| c.dropped).unwrap_or(0) + lost;
        let shared = Arc::new(CursorShared::new(
            name,
            policy,
            pos,
            path,
            cp.unwrap_or_default(),
            dropped,
        ));
        cursors.push(shared.clone());
        drop(table);
        drop(cursors);
        if lost > 0 {
            tracing::warn!(destination = %name, lost, dropped_total = dropped,
                "the destination's checkpoint is older than the ring's oldest record: the records between were not delivered and are gone (counted in dropped, reported in the stream)");
        }
        if lost > 0 || damaged {
            let reason = if damaged {
                "checkpoint unreadable (the destination starts at the oldest record)"
            } else {
                "checkpoint older than the ring"
            };
            let mut w = self.inner.writer.lock().unwrap();
            w.notices
                .push_back(overflow_notice(name, lost, dropped, reason));
        }
        Ok(Cursor::new(self.clone(), shared))
    }

    /// Deletes the checkpoint of destination `name`, whose cursor must not
    /// be open: a destination that is removed leaves nothing behind, so a
    /// new destination given its name later starts at the oldest record in
    /// the ring, as any new one does, instead of where the old one stopped
    /// (skipping, silently, what the ring still holds).
    pub fn forget_cursor(&self, name: &str) -> Result<(), BufferError> {
        let cursors = self.inner.cursors.lock().unwrap();
        if cursors.iter().any(|c| c.name == name) {
            return Err(BufferError::CursorExists(name.to_string()));
        }
        let path = checkpoint::path_for(&self.inner.cursor_dir, name);
        checkpoint::remove(&path).map_err(io_err(format!("removing {}", path.display())))?;
        Ok(())
    }

    /// Deletes the checkpoints of every destination not named in `keep`
    /// and without an open cursor: at start, those of destinations removed
    /// while the relay was stopped ([`Ring::forget_cursor`]). Returns the
    /// files deleted.
    pub fn forget_cursors_except(&self, keep: &[&str]) -> Result<Vec<PathBuf>, BufferError> {
        let dir = &self.inner.cursor_dir;
        let open: Vec<String> = self.cursor_names();
        let kept: Vec<PathBuf> = keep
            .iter()
            .copied()
            .chain(open.iter().map(String::as_str))
            .map(|name| checkpoint::path_for(dir, name))
            .collect();
        let listing = || io_err(format!("listing {}", dir.display()));
        let mut gone = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(listing())? {
            let path = entry.map_err(listing())?.path();
            if path.extension().is_some_and(|e| e == "json") && !kept.contains(&path) {
                checkpoint::remove(&path)
                    .map_err(io_err(format!("removing {}", path.display())))?;
                gone.push(path);
            }
        }
        Ok(gone)
    }

    /// Position of the first record with sequence number ≥ `seq` (or the
    /// oldest record when `seq` is `None`), and how many records below the
    /// oldest retained one were lost.
    fn seek(&self, table: &Table, seq: Option<u64>) -> (ReadPos, u64) {
        let oldest = table
            .segs
            .front()
            .expect("ring always has an active segment");
        let committed = self.inner.committed.load(Ordering::Acquire);
        let Some(seq) = seq else {
            return (
                ReadPos {
                    seg_id: oldest.id,
                    off: DATA_START,
                    next_seq: oldest.first_seq,
                },
                0,
            );
        };
        if seq < oldest.first_seq {
            return (
                ReadPos {
                    seg_id: oldest.id,
                    off: DATA_START,
                    next_seq: oldest.first_seq,
                },
                oldest.first_seq - seq,
            );
        }
        if seq >= committed {
            let last = table.segs.back().unwrap();
            let end = last.end_off.load(Ordering::Acquire);
            return (
                ReadPos {
                    seg_id: last.id,
                    off: end,
                    next_seq: seq.max(committed),
                },
                0,
            );
        }
        let idx = table
            .segs
            .iter()
            .rposition(|s| s.first_seq <= seq)
            .unwrap_or(0);
        let s = &table.segs[idx];
        let end = s.end_off.load(Ordering::Acquire);
        let mut off = DATA_START;
        let mut next = s.first_seq;
        while off < end {
            match crate::event::Record::peek(s.seg.bytes(off, end - off)) {
                Some((rs, len)) if rs < seq => {
                    off += len;
                    next = rs + 1;
                }
                Some((rs, _)) => {
                    next = rs;
                    break;
                }
                None => break,
            }
        }
        (
            ReadPos {
                seg_id: s.id,
                off,
                next_seq: next.max(seq),
            },
            0,
        )
    }

    /// Sequence number the next append gets (= records ever appended, across restarts).
    pub fn next_seq(&self) -> u64 {
        self.inner.committed.load(Ordering::Acquire)
    }

    /// The sequence number of the oldest record the ring still holds.
    pub fn oldest_seq(&self) -> u64 {
        let t = self.inner.table.read().unwrap();
        t.segs.front().map(|s| s.first_seq).unwrap_or(0)
    }

    /// Waits until the record numbered `seq` is published (records past
    /// `seq - 1`), the ring closes, or `timeout` passes. Appends wake no one
    /// before that: a destination gathering a batch asks for the record
    /// that fills it, and sleeps through the appends before it.
    pub async fn wait_for_data(&self, seq: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.data_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.inner.data_wake_at.fetch_min(seq, Ordering::SeqCst);
            // pairs with the fence in `wake_data_waiters`: either this sees
            // the record published, or that append sees this threshold
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.next_seq() > seq || self.inner.closed.load(Ordering::Acquire) {
                return;
            }
            // woken for a lower threshold (another waiter's, or a stale
            // one), or by the ring's close: look again
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// After a publish: wakes the waiters of [`Ring::wait_for_data`] once the
    /// lowest threshold among them is published. All of them wake (each
    /// checks its own and, not there yet, waits again); the threshold resets
    /// before the wake, so a waiter that comes meanwhile is woken too.
    pub(super) fn wake_data_waiters(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.next_seq() > self.inner.data_wake_at.load(Ordering::SeqCst) {
            self.inner.data_wake_at.store(u64::MAX, Ordering::SeqCst);
            self.inner.data_notify.notify_waiters();
        }
    }

    /// A snapshot of the ring's counters.
    pub fn stats(&self) -> RingStats {
        let t = self.inner.table.read().unwrap();
        RingStats {
            segments: t.segs.len(),
            slots: self.inner.slots,
            oldest_seq: t.segs.front().map(|s| s.first_seq).unwrap_or(0),
            next_seq: self.next_seq(),
            appended: self.inner.counters.appended.load(Ordering::Relaxed),
            appended_bytes: self.inner.counters.appended_bytes.load(Ordering::Relaxed),
            full_refusals: self.inner.counters.full_refusals.load(Ordering::Relaxed),
            queued_appends: self.inner.counters.queued_appends.load(Ordering::Relaxed),
            replaced_segments: self
                .inner
                .counters
                .leased_replacements
                .load(Ordering::Relaxed),
            no_space: t.no_space.is_some(),
        }
    }

    /// Flushes everything written so far to disk.
    pub fn sync(&self) -> io::Result<()> {
        let (active, from, to, sealed) = {
            let mut w = self.inner.writer.lock().unwrap();
            let r = (
                w.active.seg.clone(),
                w.dirty_from,
                w.off,
                std::mem::take(&mut w.dirty_sealed),
            );
            w.dirty_from = w.off;
            r
        };
        // every range, whatever failed before it: the first error is returned
        let mut result = Ok(());
        for (seg, a, b) in sealed {
            if let Err(e) = seg.flush_range(a, b - a) {
                result = result.and(Err(e));
            }
        }
        result.and(active.flush_range(from, to.saturating_sub(from)))
    }

    /// Stops accepting appends, flushes, and wakes every waiter. Cursors stay
    /// readable so destinations can drain.
    pub fn close(&self) -> io::Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.data_notify.notify_waiters();
        self.inner.space_notify.notify_waiters();
        self.inner.space_cv.1.notify_all();
        self.keep_unwritten_notices();
        self.sync()
    }

    /// Keeps the notices still queued at close in
    /// [`recovery::PENDING_NOTICES_FILE`], for the next start to write: a
    /// salvage's report when its records filled the ring, an overflow
    /// report queued after the last append. They were lost with the
    /// process.
    fn keep_unwritten_notices(&self) {
        let mut w = self.inner.writer.lock().unwrap();
        if w.notices.len() <= w.pending_saved {
            return;
        }
        let all: Vec<Event> = w.notices.iter().cloned().collect();
        match recovery::save_pending(&self.inner.settings.dir, &all) {
            Ok(()) => {
                w.pending_saved = all.len();
                tracing::warn!(
                    notices = all.len(),
                    "the ring's reports not written yet (no room, or no append since) are kept in buffer/{}; the next start writes them",
                    recovery::PENDING_NOTICES_FILE
                );
            }
            Err(e) => {
                tracing::error!(error = %e, notices = all.len(), "cannot keep the ring's reports not written yet: they are lost")
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Names of the open cursors.
    pub fn cursor_names(&self) -> Vec<String> {
        self.inner
            .cursors
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Called by cursors when a `block` cursor's acknowledged position moves.
    pub(crate) fn notify_space(&self) {
        self.inner.space_notify.notify_waiters();
        self.inner.space_cv.1.notify_all();
    }

    pub(crate) fn unregister(&self, shared: &Arc<CursorShared>) {
        self.inner
            .cursors
            .lock()
            .unwrap()
            .retain(|c| !Arc::ptr_eq(c, shared));
        self.notify_space();
    }
}

/// Takes an exclusive advisory lock on the data directory: on its `LOCK`
/// file (what earlier versions locked) and on the directory itself. A lock
/// on the file alone went with the file: an operator who deleted a "stale"
/// `LOCK` let a second relay open the ring, and both appended over each
/// other's records, acknowledged. The directory cannot be deleted while it
/// holds the ring.
fn lock_dir(dir: &Path) -> Result<[File; 2], BufferError> {
    let path = dir.join("LOCK");
    let file = File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
    let folder = File::open(dir).map_err(io_err(format!("opening {}", dir.display())))?;
    for (f, what) in [(&folder, dir), (&file, path.as_path())] {
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(BufferError::Locked(dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err(format!("locking {}", what.display()))(e))
            }
        }
    }
    Ok([file, folder])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> RingSettings {
        RingSettings {
            dir: dir.to_path_buf(),
            max_bytes: 512 << 10,
            segment_bytes: 64 << 10,
            max_age: Duration::ZERO,
            fsync: FsyncPolicy::Never,
        }
    }

    fn ev(n: u64) -> EncodedEvent {
        let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
        e.message = Some(format!("event number {n} {}", "x".repeat(200)));
        e.encode()
    }

    fn evs(r: Range<u64>) -> Vec<EncodedEvent> {
        r.map(ev).collect()
    }

    /// Sequence numbers and message numbers of everything a new cursor reads.
    fn read_all(ring: &Ring, name: &str) -> Vec<(u64, u64)> {
        let mut c = ring.cursor(name, WhenFull::DropOldest).unwrap();
        let mut out = Vec::new();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        out.iter()
            .map(|r| {
                let ev = Event::decode(r.body()).unwrap();
                let msg = ev.message.unwrap_or_default();
                let n = msg.split(' ').nth(2).and_then(|n| n.parse().ok());
                (r.seq, n.unwrap_or(u64::MAX))
            })
            .filter(|&(_, n)| n != u64::MAX) // SECURITY notices
            .collect()
    }

    /// Waits (up to 2 s) until `n` appends are queued for the writer.
    async fn queued(ring: &Ring, n: usize) {
        for _ in 0..2000 {
            if ring.inner.queued_len.load(Ordering::Acquire) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{n} appends never queued");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the writer is the point
    async fn appends_that_find_the_writer_busy_are_done_in_their_order_each_in_one_piece() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        ring.cursor("c", WhenFull::DropOldest).unwrap();
        ring.append(&evs(0..10)).unwrap();
        // another append holds the writer lock
        let busy = ring.inner.writer.lock().unwrap();
        let (r1, r2) = (ring.clone(), ring.clone());
        let first = tokio::spawn(async move { r1.append_owned(evs(100..110)).await });
        queued(&ring, 1).await;
        let second = tokio::spawn(async move { r2.append_owned(evs(200..205)).await });
        queued(&ring, 2).await;
        assert!(!first.is_finished() && !second.is_finished());
        drop(busy);
        // the queue runs when the next append lets go of the lock, or when
        // a waiter looks again: before or after this one, never inside it
        let mine = ring.append(&evs(10..20)).unwrap();
        let (back, r) = first.await.unwrap();
        let first_range = r.unwrap();
        assert_eq!(back.len(), 10, "the events come back for their buffers");
        let second_range = second.await.unwrap().1.unwrap();
        assert_eq!(ring.stats().queued_appends, 2);
        assert_eq!(
            first_range.end, second_range.start,
            "in the order they queued"
        );
        assert_eq!(
            (first_range.end - first_range.start, mine.end - mine.start),
            (10, 10)
        );
        assert!(mine.end <= first_range.start || mine.start >= second_range.end);
        let got = read_all(&ring, "r");
        let number = |seq: u64| got.iter().find(|(s, _)| *s == seq).unwrap().1;
        let read = |r: Range<u64>| r.map(number).collect::<Vec<_>>();
        assert_eq!(read(first_range), (100..110).collect::<Vec<_>>());
        assert_eq!(read(second_range), (200..205).collect::<Vec<_>>());
        assert_eq!(read(mine), (10..20).collect::<Vec<_>>());
        assert_eq!(got.len(), 35);
    }

    /// A waiter sleeps through the appends before the record it waits for
    /// and wakes at that one (a destination gathering a batch waits for the
    /// record that fills it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_wakes_at_the_record_it_waits_for_not_before() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let base = ring.next_seq();
        let r1 = ring.clone();
        let waiter = tokio::spawn(async move {
            r1.wait_for_data(base + 4, Duration::from_secs(30)).await;
            r1.next_seq()
        });
        for n in 0..4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ring.append(&evs(n..n + 1)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "woken before its record");
        ring.append(&evs(4..5)).unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by its record")
            .unwrap();
        assert_eq!(seen, base + 5);
    }

    /// No wake-up is lost between a waiter setting its threshold and an
    /// append passing it: a lost one would leave the waiter asleep through
    /// every later append (nobody else waits here to set a threshold), to
    /// its 20 s timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_wake_up_is_lost_to_a_concurrent_append() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let appender = {
            let (ring, done) = (ring.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !done.load(Ordering::Acquire) {
                    ring.append(&evs(n..n + 1)).unwrap();
                    n += 1;
                    for _ in 0..(n % 7) * 50 {
                        std::hint::spin_loop();
                    }
                }
            })
        };
        for round in 0..2000u64 {
            let target = ring.next_seq() + round % 3;
            let t = std::time::Instant::now();
            ring.wait_for_data(target, Duration::from_secs(20)).await;
            assert!(ring.next_seq() > target, "round {round}: woken early");
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "round {round}: wake-up lost"
            );
        }
        done.store(true, Ordering::Release);
        appender.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the writer is the point
    async fn a_queued_append_is_done_even_when_the_holder_was_not_an_append() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let busy = ring.inner.writer.lock().unwrap();
        let r1 = ring.clone();
        let task = tokio::spawn(async move { r1.append_owned(evs(0..3)).await });
        queued(&ring, 1).await;
        // e.g. the maintenance thread: it lets go without running the queue
        drop(busy);
        let (_, r) = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the waiting append looks again by itself")
            .unwrap();
        assert_eq!(r.unwrap(), 0..3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the writer is the point
    async fn a_queued_append_refused_as_full_waits_for_space_and_keeps_its_place() {
        let d = tempfile::tempdir().unwrap();
        let mut s = settings(d.path());
        s.max_bytes = 128 << 10;
        let (ring, _) = Ring::open(s).unwrap();
        let mut blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
        let mut n = 0;
        while ring.append(&[ev(n)]).is_ok() {
            n += 1;
        }
        let busy = ring.inner.writer.lock().unwrap();
        let r1 = ring.clone();
        let task = tokio::spawn(async move { r1.append_owned(evs(1000..1002)).await });
        queued(&ring, 1).await;
        drop(busy);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !task.is_finished(),
            "it waits while the block destination lags"
        );
        drain_and_ack(&mut blocked);
        let (_, r) = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap(), n..n + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the writer is the point
    async fn queued_appends_under_fsync_always_share_one_flush() {
        let d = tempfile::tempdir().unwrap();
        let mut s = settings(d.path());
        s.fsync = FsyncPolicy::Always;
        let (ring, _) = Ring::open(s).unwrap();
        ring.cursor("c", WhenFull::DropOldest).unwrap();
        ring.append(&evs(0..5)).unwrap();
        let flushes = |ring: &Ring| ring.inner.counters.append_flushes.load(Ordering::Relaxed);
        let before = flushes(&ring);
        let busy = ring.inner.writer.lock().unwrap();
        let tasks: Vec<_> = (0..3u64)
            .map(|i| {
                let r = ring.clone();
                tokio::spawn(async move { r.append_owned(evs(100 * i..100 * i + 5)).await })
            })
            .collect();
        queued(&ring, 3).await;
        drop(busy);
        ring.append(&evs(5..10)).unwrap();
        for t in tasks {
            t.await.unwrap().1.unwrap();
        }
        // one for the append above, one for the three it (or a waiter) ran
        assert_eq!(flushes(&ring) - before, 2);
        assert_eq!(ring.stats().queued_appends, 3);
        assert_eq!(read_all(&ring, "r").len(), 25);
    }

    /// `fsync = always` promises an acknowledged append is on disk: when
    /// the flush fails, the append is reported not durable (the source
    /// answers an error) though its records are in the ring and readable,
    /// directly and through the queue alike.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // holding the writer is the point
    async fn a_failed_flush_under_fsync_always_is_not_reported_durable() {
        let d = tempfile::tempdir().unwrap();
        let mut s = settings(d.path());
        s.fsync = FsyncPolicy::Always;
        let (ring, _) = Ring::open(s).unwrap();
        ring.cursor("c", WhenFull::DropOldest).unwrap();
        assert_eq!(ring.append(&evs(0..5)), Ok(0..5));
        ring.inner
            .counters
            .fail_flushes
            .store(true, Ordering::Relaxed);
        match ring.append(&evs(5..10)) {
            Err(e @ AppendError::NotDurable(_)) => assert!(e.appended(), "{e}"),
            other => panic!("{other:?}"),
        }
        let busy = ring.inner.writer.lock().unwrap();
        let task = {
            let r = ring.clone();
            tokio::spawn(async move { r.append_owned(evs(10..15)).await })
        };
        queued(&ring, 1).await;
        drop(busy);
        ring.run_queued();
        let (_, r) = task.await.unwrap();
        assert!(matches!(r, Err(AppendError::NotDurable(_))), "{r:?}");
        ring.inner
            .counters
            .fail_flushes
            .store(false, Ordering::Relaxed);
        assert_eq!(ring.append(&evs(15..20)), Ok(15..20));
        assert_eq!(read_all(&ring, "r").len(), 20, "all in the ring");
        assert_eq!(ring.stats().appended, 20);
    }

    #[tokio::test]
    async fn try_append_owned_refuses_at_once_when_a_block_destination_holds_the_ring() {
        let d = tempfile::tempdir().unwrap();
        let mut s = settings(d.path());
        s.max_bytes = 128 << 10;
        let (ring, _) = Ring::open(s).unwrap();
        let _blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
        let mut n = 0;
        while ring.append(&[ev(n)]).is_ok() {
            n += 1;
        }
        let (back, r) =
            tokio::time::timeout(Duration::from_secs(1), ring.try_append_owned(evs(0..2)))
                .await
                .expect("no wait for space");
        assert_eq!(r, Err(AppendError::Full("blocked".into())));
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn hints_are_stored_and_read_back_with_their_bodies_across_a_reopen() {
        let d = tempfile::tempdir().unwrap();
        let with_hint = |n: u64| {
            let mut e = ev(n);
            if n.is_multiple_of(2) {
                e.write_hint(|h| h.extend_from_slice(format!("hint {n}").as_bytes()));
            }
            e
        };
        let batch: Vec<_> = (0..400).map(with_hint).collect();
        {
            let (ring, _) = Ring::open(settings(d.path())).unwrap();
            ring.cursor("c", WhenFull::DropOldest).unwrap();
            assert_eq!(ring.append(&batch[..200]).unwrap(), 0..200);
            assert_eq!(ring.append(&batch[200..]).unwrap(), 200..400);
            ring.close().unwrap();
        }
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let mut out = Vec::new();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        let read: Vec<_> = out.iter().filter(|r| r.seq < 400).collect();
        assert_eq!(read.len(), 400);
        for r in read {
            let want = &batch[r.seq as usize];
            assert_eq!(r.body(), want.body(), "seq {}", r.seq);
            assert_eq!(r.hint(), want.hint(), "seq {}", r.seq);
        }
    }

    /// Appends single events, acknowledging nothing, until the ring has used
    /// every slot and the active segment is at least half full (the oldest
    /// is sealed).
    fn fill_every_slot(ring: &Ring, next: &mut u64) {
        loop {
            {
                let w = ring.inner.writer.lock().unwrap();
                let t = ring.inner.table.read().unwrap();
                if t.free.is_empty() && t.unopened.is_empty() && w.off >= ring.inner.seg_size / 2 {
                    return;
                }
            }
            ring.append(&evs(*next..*next + 1)).unwrap();
            *next += 1;
        }
    }

    #[test]
    fn a_full_file_system_stops_the_ring_growing_and_when_full_applies_until_there_is_space() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
        let mut drop = ring.cursor("drop", WhenFull::DropOldest).unwrap();
        // a spare prepared ahead, then the file system is full
        ring.prepare_spare();
        ring.inner.no_space_for_tests.store(true, Ordering::Relaxed);
        let mut next = 0;
        // fill until a roll needs a new file: that append fails, the ring
        // notes it is out of space
        let failed = loop {
            match ring.append(&evs(next..next + 1)) {
                Ok(_) => next += 1,
                Err(e) => break e,
            }
            assert!(next < 10_000, "a roll should have needed a new file");
        };
        assert!(matches!(failed, AppendError::Io(_)), "{failed:?}");
        let stats = ring.stats();
        assert!(stats.no_space, "{stats:?}");
        let segments = stats.segments;
        assert_eq!(segments, 2, "the first segment and the spare");
        assert!(segments < stats.slots);
        // from then on it is full at that size: appends go on, reusing the
        // oldest segment; the drop_oldest destination loses what it had not
        // read, counted and reported
        let per_segment = next as usize / segments;
        for _ in 0..3 * per_segment {
            ring.append(&evs(next..next + 1)).unwrap();
            next += 1;
        }
        assert_eq!(ring.stats().segments, segments);
        let mut out = Vec::new();
        while drop.read(1000, 1 << 20, &mut out).is_some() {}
        let lost = drop.dropped();
        assert!(lost > 0);
        let notice = out
            .iter()
            .find(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.overflow"))
            .expect("an overflow notice");
        assert!(
            String::from_utf8_lossy(notice.body()).contains("no space left on the file system"),
            "{}",
            String::from_utf8_lossy(notice.body())
        );
        // a block destination behind: appends that need its segment wait,
        // saying why
        let _block = ring.cursor("block", WhenFull::Block).unwrap();
        let full = loop {
            match ring.append(&evs(next..next + 1)) {
                Ok(_) => next += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(
            full,
            AppendError::Full("block".into()),
            "the block destination holds the oldest segment"
        );
        // space again: the maintenance finds it (not at once), and the
        // ring grows
        ring.inner
            .no_space_for_tests
            .store(false, Ordering::Relaxed);
        std::thread::sleep(segments::NO_SPACE_RETRY);
        ring.prepare_spare();
        let stats = ring.stats();
        assert!(!stats.no_space, "{stats:?}");
        ring.append(&evs(next..next + 1)).unwrap();
        assert_eq!(ring.stats().segments, segments + 1);
    }

    /// The active (newest) segment.
    fn newest_segment(ring: &Ring) -> Arc<SegInfo> {
        ring.inner
            .table
            .read()
            .unwrap()
            .segs
            .back()
            .unwrap()
            .clone()
    }

    /// Appends single events, acknowledging each, until the ring rolls;
    /// returns the new active segment.
    fn roll_once(ring: &Ring, c: &mut Cursor, next: &mut u64) -> Arc<SegInfo> {
        let newest = || newest_segment(ring);
        let before = newest().id;
        loop {
            ring.append(&evs(*next..*next + 1)).unwrap();
            *next += 1;
            drain_and_ack(c);
            let now = newest();
            if now.id != before {
                return now;
            }
        }
    }

    /// Reads everything `c` has and acknowledges it.
    fn drain_and_ack(c: &mut Cursor) {
        let mut out = Vec::new();
        while let Some(r) = c.read(1000, 1 << 20, &mut out) {
            c.acker().ack(r);
        }
        c.apply_acks();
    }

    fn header_on_disk(ring: &Ring, slot: usize) -> Vec<u8> {
        let path = ring
            .inner
            .settings
            .dir
            .join(super::super::segment::slot_file_name(slot));
        std::fs::read(path).unwrap()[..DATA_START].to_vec()
    }

    /// Files in the ring's folder, unlinked ones still open included
    /// (counted through this process's open file descriptors' targets).
    fn open_segment_files(ring: &Ring) -> (usize, usize) {
        let dir = std::fs::canonicalize(&ring.inner.settings.dir).unwrap();
        let (mut live, mut unlinked) = (0, 0);
        for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if t.starts_with(&*dir.to_string_lossy()) && t.contains("segment-") {
                if t.ends_with(" (deleted)") {
                    unlinked += 1;
                } else {
                    live += 1;
                }
            }
        }
        (live, unlinked)
    }

    #[test]
    fn records_held_by_a_batch_survive_the_reuse_of_their_segment() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let mut next = 0;
        // a batch of the oldest segment's first records, never acknowledged
        ring.append(&evs(0..20)).unwrap();
        next += 20;
        let mut held = Vec::new();
        c.read(20, 1 << 20, &mut held).unwrap();
        let oldest_slot = ring.inner.table.read().unwrap().segs[0].seg.slot;
        assert!(ring.inner.table.read().unwrap().segs[0].seg.is_leased());
        let copies: Vec<(Vec<u8>, Vec<u8>)> = held
            .iter()
            .map(|r| (r.body().to_vec(), r.hint().to_vec()))
            .collect();
        // fill the ring until its oldest segment (the held one) is reused
        fill_every_slot(&ring, &mut next);
        let before = ring
            .inner
            .counters
            .leased_replacements
            .load(Ordering::Relaxed);
        assert_eq!(before, 0);
        let first_id = ring.inner.table.read().unwrap().segs[0].id;
        while ring.inner.table.read().unwrap().segs[0].id == first_id {
            ring.append(&evs(next..next + 1)).unwrap();
            next += 1;
        }
        // one more roll so the reused slot has records over where the held ones were
        let id = newest_segment(&ring).id;
        while newest_segment(&ring).id == id {
            ring.append(&evs(next..next + 1)).unwrap();
            next += 1;
        }
        assert_eq!(
            ring.inner
                .counters
                .leased_replacements
                .load(Ordering::Relaxed),
            1
        );
        for (r, (body, hint)) in held.iter().zip(&copies) {
            assert_eq!(r.body(), &body[..], "seq {} changed under its batch", r.seq);
            assert_eq!(r.hint(), &hint[..]);
            assert!(Event::decode(r.body()).is_ok());
        }
        // the slot's new file holds new records; the old one is open but unlinked
        let (_, unlinked) = open_segment_files(&ring);
        assert_eq!(unlinked, 1);
        let slot_file = d
            .path()
            .join(super::super::segment::slot_file_name(oldest_slot));
        assert!(slot_file.exists());
        drop(held);
        assert_eq!(
            open_segment_files(&ring).1,
            0,
            "the old file goes with the batch"
        );
        // nothing of the held segment comes back after a reopen
        ring.close().unwrap();
        drop((c, ring));
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let seqs: Vec<u64> = read_all(&ring, "again")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert!(seqs.iter().all(|&s| s >= 20), "evicted records came back");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_segment_no_batch_holds_is_reused_in_place() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let mut next = 0;
        fill_every_slot(&ring, &mut next);
        drain_and_ack(&mut c);
        for _ in 0..3 {
            roll_once(&ring, &mut c, &mut next);
        }
        assert_eq!(
            ring.inner
                .counters
                .leased_replacements
                .load(Ordering::Relaxed),
            0
        );
        assert_eq!(open_segment_files(&ring).1, 0);
    }

    #[test]
    fn the_maintenance_recycles_an_acknowledged_segment_so_the_roll_needs_no_flush() {
        let d = tempfile::tempdir().unwrap();
        let s = RingSettings {
            fsync: FsyncPolicy::Always,
            ..settings(d.path())
        };
        let (ring, _) = Ring::open(s.clone()).unwrap();
        // this test runs the maintenance steps itself
        ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
        let mut c = ring.cursor("c", WhenFull::Block).unwrap();
        let mut next = 0;
        // never-used files start with a zero header: their rolls flush nothing
        fill_every_slot(&ring, &mut next);
        assert_eq!(
            ring.inner.counters.header_flushes.load(Ordering::Relaxed),
            0
        );
        // nothing acknowledged: the oldest segment stays
        let oldest = ring.inner.table.read().unwrap().segs[0].clone();
        ring.recycle_oldest();
        assert_eq!(ring.inner.table.read().unwrap().segs[0].id, oldest.id);
        assert!(ring.inner.table.read().unwrap().free.is_empty());
        // all acknowledged: it leaves the ring with its header cleared on disk
        drain_and_ack(&mut c);
        ring.recycle_oldest();
        {
            let t = ring.inner.table.read().unwrap();
            assert_ne!(t.segs[0].id, oldest.id);
            assert_eq!(t.free.len(), 1);
            assert_eq!(t.free[0].slot, oldest.seg.slot);
        }
        assert_eq!(
            header_on_disk(&ring, oldest.seg.slot),
            vec![0u8; DATA_START]
        );
        // the next roll takes it without a header flush; the one after
        // reuses a segment whose old header is still on disk and flushes
        let flushes = |ring: &Ring| ring.inner.counters.header_flushes.load(Ordering::Relaxed);
        assert_eq!(
            roll_once(&ring, &mut c, &mut next).seg.slot,
            oldest.seg.slot
        );
        assert_eq!(flushes(&ring), 0);
        roll_once(&ring, &mut c, &mut next);
        assert_eq!(flushes(&ring), 1);
        drop(c);
        ring.close().unwrap();
        drop(ring);
        // recovery reads the recycled slot's new records and nothing older
        let (ring, rep) = Ring::open(s).unwrap();
        assert!(rep.is_clean(), "{rep:?}");
        assert_eq!(ring.next_seq(), next);
        let got = read_all(&ring, "after");
        let first = got[0].0;
        assert_eq!(got, (first..next).map(|i| (i, i)).collect::<Vec<_>>());
    }

    /// A crash (the ring dropped without its cursors committing) after
    /// the ring reused segments whose records a destination had
    /// acknowledged but not yet checkpointed: the ring writes the
    /// checkpoint before it reuses them, so the restart reports no loss.
    /// (It reported the checkpoint interval's delivered records as lost,
    /// `block` destinations too.)
    #[test]
    fn a_crash_after_acknowledged_records_were_reused_reports_no_loss() {
        for policy in [WhenFull::Block, WhenFull::DropOldest] {
            for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
                let d = tempfile::tempdir().unwrap();
                let s = RingSettings {
                    fsync,
                    ..settings(d.path())
                };
                let (ring, _) = Ring::open(s.clone()).unwrap();
                ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
                let mut c = ring.cursor("c", policy).unwrap();
                let mut next = 0;
                roll_once(&ring, &mut c, &mut next);
                c.commit().unwrap(); // one checkpoint, then none of its own
                for _ in 0..20 {
                    roll_once(&ring, &mut c, &mut next);
                    ring.recycle_oldest();
                }
                let acked = c.apply_acks();
                assert_eq!(acked, next);
                assert!(ring.oldest_seq() > 0, "segments were reused");
                drop(c);
                drop(ring); // no close, no commit: as after kill -9
                let (ring, _) = Ring::open(s).unwrap();
                let c = ring.cursor("c", policy).unwrap();
                assert_eq!(c.dropped(), 0, "{policy:?} {fsync:?}: nothing was lost");
                assert!(
                    c.read_position() >= ring.oldest_seq(),
                    "{policy:?} {fsync:?}"
                );
                assert!(ring.inner.writer.lock().unwrap().notices.is_empty());
            }
        }
    }

    /// A `drop_oldest` destination stuck on a batch: its checkpoint stays
    /// at the batch while the ring drops what comes after, counted. A
    /// restart counts only what was dropped since that checkpoint, not
    /// again what it already holds (the total was counted twice).
    #[test]
    fn a_restart_counts_records_dropped_before_the_checkpoint_once() {
        let d = tempfile::tempdir().unwrap();
        let s = settings(d.path());
        let (ring, _) = Ring::open(s.clone()).unwrap();
        ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
        let mut c = ring.cursor("stuck", WhenFull::DropOldest).unwrap();
        ring.append(&evs(0..10)).unwrap();
        let mut batch = Vec::new();
        let claimed = c.read(10, 1 << 20, &mut batch).unwrap();
        assert_eq!(claimed, 0..10); // never acknowledged
        let mut next = 10;
        let mut keeps = ring.cursor("keeps_up", WhenFull::DropOldest).unwrap();
        for _ in 0..12 {
            roll_once(&ring, &mut keeps, &mut next);
        }
        assert!(c.dropped() > 0);
        c.commit().unwrap(); // seq 0 (the stuck batch), the drops so far
        for _ in 0..12 {
            roll_once(&ring, &mut keeps, &mut next);
        }
        drop(batch);
        drop(c);
        drop(keeps);
        drop(ring);
        let (ring, _) = Ring::open(s).unwrap();
        let c = ring.cursor("stuck", WhenFull::DropOldest).unwrap();
        // every record below the oldest is gone, the stuck batch's 10 were
        // claimed (whether they went out is not known), the rest dropped
        assert_eq!(c.dropped(), ring.oldest_seq() - 10);
    }

    /// A `drop_oldest` destination a little behind a full ring (`block`
    /// destinations keep it full): the ring reuses the segments of a batch
    /// it has in flight, the batch is acknowledged after (or not), and the
    /// relay is killed before the destination's next checkpoint. The
    /// restart counts as lost only the records it never read. (It counted
    /// the batch too, though it was sent: QA, `fwd2 lost=242` after a
    /// `kill -9`, with every event delivered.)
    #[test]
    fn a_crash_after_the_ring_reused_a_batch_in_flight_counts_only_unread_records_lost() {
        for acked_before_crash in [true, false] {
            let d = tempfile::tempdir().unwrap();
            let s = settings(d.path());
            let (ring, _) = Ring::open(s.clone()).unwrap();
            ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
            let mut c = ring.cursor("fwd2", WhenFull::DropOldest).unwrap();
            let mut archive = ring.cursor("archive", WhenFull::Block).unwrap();
            ring.append(&evs(0..5)).unwrap();
            drain_and_ack(&mut c);
            c.commit().unwrap(); // its last checkpoint: seq 5
            let mut next = 5;
            // a batch from the first segment into the second, in flight
            roll_once(&ring, &mut archive, &mut next);
            ring.append(&evs(next..next + 10)).unwrap();
            next += 10;
            let mut batch = Vec::new();
            let claimed = c.read(100_000, 64 << 20, &mut batch).unwrap();
            assert_eq!(claimed, 5..next);
            // the ring wraps past the batch, and then drops (counted) what
            // the destination never read
            while ring.oldest_seq() <= claimed.end {
                roll_once(&ring, &mut archive, &mut next);
            }
            for _ in 0..3 {
                roll_once(&ring, &mut archive, &mut next);
            }
            let unread = ring.oldest_seq() - claimed.end;
            assert_eq!(c.dropped(), unread);
            if acked_before_crash {
                c.acker().ack(claimed.clone());
                assert_eq!(c.apply_acks(), ring.oldest_seq());
            }
            drop(batch);
            drop(c);
            drop(archive);
            drop(ring); // no close, no commit: as after kill -9
            let (ring, _) = Ring::open(s).unwrap();
            let c = ring.cursor("fwd2", WhenFull::DropOldest).unwrap();
            assert_eq!(
                c.dropped(),
                ring.oldest_seq() - claimed.end,
                "acked before the crash: {acked_before_crash}: only the unread records are lost \
                 ({unread} of them before the crash), once"
            );
            assert_eq!(c.read_position(), ring.oldest_seq());
        }
    }

    /// A segment the maintenance thread cannot create for another reason
    /// than space (a read-only folder) is logged once, then summarised,
    /// and tried again every 5 s (README), not at every tick: the log said
    /// it ten times a second, forever.
    #[test]
    fn a_segment_that_cannot_be_created_is_logged_once_and_tried_every_5_s() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        ring.inner.maintenance_paused.store(true, Ordering::Relaxed);
        ring.inner
            .read_only_for_tests
            .store(true, Ordering::Relaxed);
        ring.inner.table.write().unwrap().free.clear();
        let counters = &ring.inner.counters;
        let tries = || counters.spare_tries.load(Ordering::Relaxed);
        let lines = || counters.spare_error_lines.load(Ordering::Relaxed);
        let round = || {
            ring.prepare_spare();
            ring.summarise_spare_errors(false);
        };
        // maintenance ticks (every 100 ms under `fsync = "100ms"`)
        for _ in 0..50 {
            round();
        }
        assert_eq!((tries(), lines()), (1, 1));
        // every 5 s it tries again, counted, not logged one by one
        let five_seconds_pass = || {
            let mut t = ring.inner.table.write().unwrap();
            let at = t.spare_failed.expect("a failure noted");
            t.spare_failed = Some(at.checked_sub(segments::SEGMENT_RETRY).unwrap());
        };
        for _ in 0..11 {
            five_seconds_pass();
            round();
            round();
        }
        assert_eq!((tries(), lines()), (12, 1));
        assert!(ring.inner.table.read().unwrap().free.is_empty());
        // writable again: the segment is made, the failures summarised
        ring.inner
            .read_only_for_tests
            .store(false, Ordering::Relaxed);
        round();
        assert_eq!((tries(), lines()), (12, 1), "not before 5 s");
        five_seconds_pass();
        round();
        assert_eq!((tries(), lines()), (13, 2));
        let t = ring.inner.table.read().unwrap();
        assert_eq!(t.free.len(), 1);
        assert!(t.spare_failed.is_none());
    }

    /// A checkpoint file that cannot be read is logged and noticed, and the
    /// destination starts at the oldest record.
    #[test]
    fn an_unreadable_checkpoint_starts_at_the_oldest_record_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let s = settings(d.path());
        let (ring, _) = Ring::open(s.clone()).unwrap();
        ring.append(&evs(0..5)).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        drain_and_ack(&mut c);
        c.commit().unwrap();
        drop(c);
        ring.close().unwrap();
        drop(ring);
        std::fs::write(d.path().join("cursors/c.json"), b"garbage").unwrap();
        let (ring, _) = Ring::open(s).unwrap();
        let c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        assert_eq!(c.read_position(), 0);
        let notices = &ring.inner.writer.lock().unwrap().notices;
        assert_eq!(notices.len(), 1);
        let message = notices[0].message.as_deref().unwrap_or_default();
        assert!(message.contains("checkpoint unreadable"), "{message}");
    }

    #[test]
    fn a_failed_write_publishes_nothing_and_the_next_append_works() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        assert_eq!(ring.append(&evs(0..3)).unwrap(), 0..3);
        let rec_len = HEADER_LEN + ev(0).body().len();
        // two and a half records of the five reach the file, then the write fails
        let seg = ring.inner.writer.lock().unwrap().active.seg.clone();
        seg.inject_write_failure(0, rec_len * 5 / 2);
        let e = ring.append(&evs(100..105)).unwrap_err();
        assert!(matches!(e, AppendError::Io(_)), "{e:?}");
        assert_eq!(ring.next_seq(), 3, "nothing of the batch is published");
        let mut out = Vec::new();
        assert_eq!(c.read(1000, 1 << 20, &mut out), Some(0..3));
        assert_eq!(c.read(1000, 1 << 20, &mut out), None);
        // the writer is consistent: the next append goes where the failed one would have
        assert_eq!(ring.append(&evs(3..4)).unwrap(), 3..4);
        assert_eq!(c.read(1000, 1 << 20, &mut out), Some(3..4));
        assert_eq!(out.len(), 4);
        drop(c);
        drop(ring);
        // recovery finds exactly what was published, not the failed batch's records
        let (ring, rep) = Ring::open(settings(d.path())).unwrap();
        assert!(rep.is_clean(), "{rep:?}");
        assert_eq!(ring.next_seq(), 4);
        let got = read_all(&ring, "after");
        assert_eq!(got, (0..4).map(|i| (i, i)).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_write_leaves_nothing_for_recovery_to_bring_back() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        ring.append(&evs(0..3)).unwrap();
        let rec_len = HEADER_LEN + ev(0).body().len();
        let seg = ring.inner.writer.lock().unwrap().active.seg.clone();
        seg.inject_write_failure(0, rec_len * 5 / 2);
        ring.append(&evs(100..105)).unwrap_err();
        drop(ring); // a crash here: nothing else is written
        let (ring, rep) = Ring::open(settings(d.path())).unwrap();
        assert_eq!(rep.records(), 3, "{rep:?}");
        assert_eq!(ring.next_seq(), 3);
        assert_eq!(read_all(&ring, "after"), vec![(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn a_failed_write_after_a_roll_skips_its_sequence_numbers() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let rec_len = HEADER_LEN + ev(0).body().len();
        let mut n = 0;
        // fill the first segment until a batch of 10 needs a roll partway
        while ring.inner.writer.lock().unwrap().off + 5 * rec_len < ring.inner.seg_size {
            ring.append(&evs(n..n + 1)).unwrap();
            n += 1;
        }
        ring.prepare_spare();
        let spare = ring
            .inner
            .table
            .read()
            .unwrap()
            .free
            .last()
            .unwrap()
            .clone();
        // the new segment's header is written, its records fail
        spare.inject_write_failure(1, 10);
        let e = ring.append(&evs(1000..1010)).unwrap_err();
        assert!(matches!(e, AppendError::Io(_)), "{e:?}");
        assert_eq!(ring.next_seq(), n);
        let mut out = Vec::new();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        assert_eq!(out.len() as u64, n, "none of the batch is readable");
        // the next append lands in the new segment, past the failed batch's numbers
        let r = ring.append(&evs(n..n + 1)).unwrap();
        assert!(r.start > n, "{r:?}");
        let first_new = ring.inner.writer.lock().unwrap().active.first_seq;
        assert_eq!(r.start, first_new);
        let from = out.len();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        assert_eq!(
            out[from..].iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![r.start]
        );
        drop(c);
        drop(ring);
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        assert_eq!(ring.next_seq(), r.end);
        let mut want: Vec<(u64, u64)> = (0..n).map(|i| (i, i)).collect();
        want.push((r.start, n));
        assert_eq!(read_all(&ring, "after"), want);
    }

    #[test]
    fn pwritten_records_are_read_through_the_map_at_once() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("c", WhenFull::DropOldest).unwrap();
        let mut out = Vec::new();
        // across several rolls and a wrap of the 8 slots
        for i in 0..4000u64 {
            ring.append(&evs(i..i + 1)).unwrap();
            out.clear();
            assert_eq!(c.read(10, 1 << 20, &mut out), Some(i..i + 1));
            let ev = Event::decode(out[0].body()).unwrap();
            assert!(ev
                .message
                .unwrap()
                .starts_with(&format!("event number {i} ")));
        }
        assert!(ring.stats().appended_bytes > 512 << 10, "the ring wrapped");
    }
    /// Seqs of everything `c` reads from where it stands.
    fn drain_seqs(c: &mut Cursor) -> Vec<u64> {
        let mut out = Vec::new();
        while c.read(3, 1 << 20, &mut out).is_some() {}
        out.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn cursors_share_checksum_work_but_never_past_a_damaged_record() {
        use std::os::unix::fs::FileExt;
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut a = ring.cursor("a", WhenFull::DropOldest).unwrap();
        let mut b = ring.cursor("b", WhenFull::DropOldest).unwrap();
        ring.append(&evs(0..10)).unwrap();
        let info = newest_segment(&ring);
        let end = info.end_off.load(Ordering::Acquire);
        // flip a byte in the body of record 4, under the map
        let data = std::fs::read(info.seg.path()).unwrap();
        let mut off = DATA_START;
        for _ in 0..4 {
            off += event::Record::peek(&data[off..]).unwrap().1;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(info.seg.path())
            .unwrap();
        file.write_at(
            &[data[off + HEADER_LEN + 3] ^ 0x20],
            (off + HEADER_LEN + 3) as u64,
        )
        .unwrap();
        let mut want: Vec<u64> = (0..10).collect();
        want.retain(|&s| s != 4);
        assert_eq!(drain_seqs(&mut a), want);
        // a checked records 0..4 once for everyone, and nothing past the damage
        assert_eq!(info.verified_off.load(Ordering::Acquire), off);
        assert_eq!(drain_seqs(&mut b), want, "b skips the damaged record too");
        // the records after the damage are checked by whoever reads them
        ring.append(&evs(10..12)).unwrap();
        assert_eq!(drain_seqs(&mut b), vec![10, 11]);
        assert_eq!(info.verified_off.load(Ordering::Acquire), off);
        assert!(end > off);
    }
}
