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

use super::checkpoint;
use super::cursor::{Cursor, CursorShared, ReadPos};
use super::recovery::{self, RecoveryReport};
use super::segment::{Segment, SegmentHeader, DATA_START};
use crate::config::FsyncPolicy;
use crate::event::{self, now_millis, EncodedEvent, Event, Severity, HEADER_LEN};
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
    #[error("buffer is closed")]
    Closed,
    #[error("writing to the buffer failed: {0}")]
    Io(String),
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
    pub unopened: Vec<usize>,
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
    pub space_notify: tokio::sync::Notify,
    pub space_cv: (Mutex<()>, Condvar),
    pub closed: AtomicBool,
    pub counters: Counters,
    pub cursor_dir: PathBuf,
    /// The maintenance thread. When the last handle drops, it is woken and
    /// joined, so it ends with the ring instead of after its tick (up to a
    /// second later).
    maintenance: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: File,
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
}

impl Ring {
    /// Opens (or creates) the ring in `settings.dir`, recovering what a crash
    /// left: torn tails are cut, damaged records skipped, unreadable segments
    /// quarantined; all of it is in the report, and appended as SECURITY
    /// events with the first append (open the cursors before appending).
    pub fn open(settings: RingSettings) -> Result<(Ring, RecoveryReport), BufferError> {
        if settings.segment_bytes < 64 * 1024 || settings.segment_bytes > (1 << 32) {
            return Err(BufferError::Settings(
                "segment_bytes must be between 64KiB and 4GiB".into(),
            ));
        }
        let slots = (settings.max_bytes / settings.segment_bytes) as usize;
        if slots < 2 {
            return Err(BufferError::Settings(
                "max_bytes must hold at least two segments".into(),
            ));
        }
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
            space_notify: tokio::sync::Notify::new(),
            space_cv: (Mutex::new(()), Condvar::new()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            cursor_dir,
            maintenance: Default::default(),
            _lock: lock,
        });
        let ring = Ring { inner };
        // Queued, not written now: they go in with the first append, once the
        // destinations have opened their cursors (a `block` cursor not yet
        // open could otherwise lose the segment the notice would reuse).
        ring.inner
            .writer
            .lock()
            .unwrap()
            .notices
            .extend(report.notices());
        ring.start_maintenance();
        Ok((ring, report))
    }

    /// The settings the ring was opened with.
    pub fn settings(&self) -> &RingSettings {
        &self.inner.settings
    }

    /// Appends all of `events` or none, without waiting. Returns their
    /// sequence numbers. Under `fsync = always` they are on disk on return.
    /// Waits for the writer lock if another append holds it (see
    /// [`append_owned`](Self::append_owned) for an append that does not).
    pub fn append(&self, events: &[EncodedEvent]) -> Result<Range<u64>, AppendError> {
        let sizes = self.record_sizes(events)?;
        self.append_holding(self.inner.writer.lock().unwrap(), events, &sizes)
    }

    /// An append by the holder of the writer lock `w`: the append, the
    /// flush and counters once the lock is free, then the queued appends.
    fn append_holding(
        &self,
        mut w: std::sync::MutexGuard<'_, Writer>,
        events: &[EncodedEvent],
        sizes: &[usize],
    ) -> Result<Range<u64>, AppendError> {
        let (r, synced) = self.append_locked(&mut w, events, sizes);
        drop(w);
        self.after_append(events, sizes, &r, synced);
        self.run_queued();
        r
    }

    /// Appends all of `events` or none, waiting (asynchronously) while a
    /// `block` destination holds the oldest segment (`Closed` if the ring
    /// closes meanwhile), and without waiting for the writer lock: if another append holds it, the batch is queued and whoever holds the
    /// lock appends it before letting go ([`run_queued`](Self::run_queued)),
    /// while this task waits without blocking its thread. Returns the
    /// events with the result (the caller reuses their buffers).
    ///
    /// Sixteen connections' appenders on two worker threads made the
    /// writer lock the relay's contention point: an append holds it for
    /// ~70 µs (encoding ~220 records and their `pwrite`), and a thread that
    /// waited for it slept in the kernel, ~0.5 ms per wait on average (the
    /// holder is often preempted by other processes on a 2-core machine),
    /// instead of parsing other connections' reads.
    ///
    /// Needs a Tokio runtime with its time driver (a queued append looks
    /// again every millisecond in case the holder was not an append).
    pub async fn append_owned(&self, mut events: Vec<EncodedEvent>) -> OwnedAppend {
        loop {
            let notified = self.inner.space_notify.notified();
            let (back, r) = self.try_append_owned(events).await;
            match r {
                Err(AppendError::Full(_)) => {
                    events = back;
                    let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
                }
                r => return (back, r),
            }
        }
    }

    /// [`append_owned`](Self::append_owned) without waiting for space: a
    /// ring held by a `block` destination refuses at once with
    /// [`AppendError::Full`], as [`append`](Self::append) does. It waits
    /// only for its turn at the writer, without blocking its thread.
    pub async fn try_append_owned(&self, events: Vec<EncodedEvent>) -> OwnedAppend {
        let sizes = match self.record_sizes(&events) {
            Ok(sizes) => sizes,
            Err(e) => return (events, Err(e)),
        };
        if let Ok(w) = self.inner.writer.try_lock() {
            let r = self.append_holding(w, &events, &sizes);
            return (events, r);
        }
        let (done, mut result) = tokio::sync::oneshot::channel();
        {
            let mut queued = self.inner.queued.lock().unwrap();
            queued.push(Queued {
                events,
                sizes,
                done,
            });
            self.inner.queued_len.store(queued.len(), Ordering::Release);
        }
        // The holder runs the queue after it lets go of the lock; if it
        // already looked, this does (or the next holder).
        self.run_queued();
        loop {
            // A holder that is not an append (cursor open, maintenance)
            // does not look at the queue: look again now and then.
            match tokio::time::timeout(QUEUED_RECHECK, &mut result).await {
                Ok(Ok(done)) => return done,
                Ok(Err(_)) => {
                    // the holder panicked while appending it (a bug)
                    return (
                        Vec::new(),
                        Err(AppendError::Io("the append was abandoned".into())),
                    );
                }
                Err(_) => self.run_queued(),
            }
        }
    }

    /// Appends the queued batches ([`append_owned`](Self::append_owned)) if
    /// the writer lock is free, until the queue is empty; returns at once
    /// when another thread holds the lock (it runs the queue after).
    pub(crate) fn run_queued(&self) {
        let inner = &self.inner;
        while inner.queued_len.load(Ordering::Acquire) != 0 {
            let Ok(mut w) = inner.writer.try_lock() else {
                return;
            };
            let batches = {
                let mut queued = inner.queued.lock().unwrap();
                inner.queued_len.store(0, Ordering::Release);
                std::mem::take(&mut *queued)
            };
            inner
                .counters
                .queued_appends
                .fetch_add(batches.len() as u64, Ordering::Relaxed);
            let done: Vec<_> = batches
                .into_iter()
                .map(|q| {
                    let (r, synced) = self.append_locked(&mut w, &q.events, &q.sizes);
                    (q, r, synced)
                })
                .collect();
            drop(w);
            // under `fsync = always`, one flush per segment for all of them
            // (a group commit) before any is reported appended
            let mut flushes: Vec<Synced> = Vec::new();
            for (seg, from, to) in done.iter().filter_map(|(_, _, synced)| synced.clone()) {
                match flushes.iter_mut().find(|f| Arc::ptr_eq(&f.0, &seg)) {
                    Some(f) => (f.1, f.2) = (f.1.min(from), f.2.max(to)),
                    None => flushes.push((seg, from, to)),
                }
            }
            for synced in flushes {
                self.flush_synced(synced);
            }
            for (q, r, _) in done {
                self.after_append(&q.events, &q.sizes, &r, None);
                // the waiter may be gone (its task dropped): nothing to tell
                let _ = q.done.send((q.events, r));
            }
        }
    }

    /// The flush of an append's range under `fsync = always`.
    fn flush_synced(&self, (seg, from, to): Synced) {
        #[cfg(test)]
        self.inner
            .counters
            .append_flushes
            .fetch_add(1, Ordering::Relaxed);
        if let Err(e) = seg.flush_range(from, to - from) {
            // the records are published (a destination may have sent them):
            // the append stands, but the failure must not pass silently
            tracing::error!(error = %e, "flushing appended records to disk failed (fsync = always)");
        }
    }

    /// Each record's length, or why one cannot be stored.
    fn record_sizes(&self, events: &[EncodedEvent]) -> Result<Vec<usize>, AppendError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(AppendError::Closed);
        }
        let max = self.inner.seg_size - DATA_START;
        // allocated once at its size (a `collect` into a `Result` grows it)
        let mut sizes = Vec::with_capacity(events.len());
        for e in events {
            let len = e.record_len();
            if len > max || len - HEADER_LEN > event::record::MAX_BODY_LEN {
                return Err(AppendError::TooLarge {
                    len,
                    max: max.min(event::record::MAX_BODY_LEN + HEADER_LEN),
                });
            }
            sizes.push(len);
        }
        Ok(sizes)
    }

    /// The append under the writer lock: written and published, or nothing
    /// (see the module doc). Also returns the range to flush under
    /// `fsync = always`, done by [`after_append`](Self::after_append)
    /// once the lock is free.
    fn append_locked(
        &self,
        w: &mut Writer,
        events: &[EncodedEvent],
        sizes: &[usize],
    ) -> (Result<Range<u64>, AppendError>, Option<Synced>) {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return (Err(AppendError::Closed), None);
        }
        let rolls = rolls_needed(w.off, sizes, inner.seg_size);
        if rolls > 0 {
            if let Err(holder) = self.can_take_segments(rolls) {
                inner.counters.full_refusals.fetch_add(1, Ordering::Relaxed);
                return (Err(AppendError::Full(holder)), None);
            }
        }
        let mut taken = Vec::new();
        let written: io::Result<u64> = (|| {
            for e in events {
                self.write_record(w, e)?;
            }
            let end = w.next_seq;
            self.write_notices(w, &mut taken)?;
            self.flush_stage(w)?;
            Ok(end)
        })();
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                self.abort(w, taken);
                tracing::error!(error = %e, "buffer write failed; the append is refused");
                return (Err(AppendError::Io(e.to_string())), None);
            }
        };
        let start = end - events.len() as u64;
        let synced = self.publish(w);
        (Ok(start..end), synced)
    }

    /// After a successful append, with the writer lock free: the flush under
    /// `fsync = always`, the counters, and waking the readers.
    fn after_append(
        &self,
        events: &[EncodedEvent],
        sizes: &[usize],
        r: &Result<Range<u64>, AppendError>,
        synced: Option<Synced>,
    ) {
        if r.is_err() {
            return;
        }
        if let Some(synced) = synced {
            self.flush_synced(synced);
        }
        let inner = &self.inner;
        inner
            .counters
            .appended
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        inner
            .counters
            .appended_bytes
            .fetch_add(sizes.iter().sum::<usize>() as u64, Ordering::Relaxed);
        inner.data_notify.notify_waiters();
    }

    /// Appends, waiting up to `timeout` while a `block` destination holds the
    /// oldest segment (for synchronous callers).
    pub fn append_blocking(
        &self,
        events: &[EncodedEvent],
        timeout: Duration,
    ) -> Result<Range<u64>, AppendError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.append(events) {
                Err(AppendError::Full(h)) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return Err(AppendError::Full(h));
                    }
                    let (m, cv) = &self.inner.space_cv;
                    let g = m.lock().unwrap();
                    let _ = cv
                        .wait_timeout(g, (deadline - now).min(Duration::from_millis(50)))
                        .unwrap();
                }
                other => return other,
            }
        }
    }

    /// Opens the cursor of destination `name`, resuming from its checkpoint
    /// (or from the oldest retained record when it has none).
    pub fn cursor(&self, name: &str, policy: WhenFull) -> Result<Cursor, BufferError> {
        let path = checkpoint::path_for(&self.inner.cursor_dir, name);
        let (cp, damaged) = match checkpoint::load(&path) {
            Ok(cp) => (cp, false),
            Err(_) => (None, true),
        };
        let mut cursors = self.inner.cursors.lock().unwrap();
        if cursors.iter().any(|c| c.name == name) {
            return Err(BufferError::CursorExists(name.to_string()));
        }
        let table = self.inner.table.read().unwrap();
        let (pos, lost) = self.seek(&table, cp.map(|c| c.seq));
        let dropped = cp.map(|c| c.dropped).unwrap_or(0) + lost;
        let shared = Arc::new(CursorShared::new(name, policy, pos, dropped));
        cursors.push(shared.clone());
        drop(table);
        drop(cursors);
        if lost > 0 || damaged {
            let reason = if damaged {
                "checkpoint unreadable"
            } else {
                "checkpoint older than the ring"
            };
            let mut w = self.inner.writer.lock().unwrap();
            w.notices.push_back(overflow_notice(name, lost, reason));
        }
        Ok(Cursor::new(
            self.clone(),
            shared,
            path,
            cp.unwrap_or_default(),
        ))
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

    /// Waits until records past `seq` are published, or `timeout` passes.
    pub async fn wait_for_data(&self, seq: u64, timeout: Duration) {
        let notified = self.inner.data_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.next_seq() > seq || self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
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
        for (seg, a, b) in sealed {
            seg.flush_range(a, b - a)?;
        }
        active.flush_range(from, to.saturating_sub(from))
    }

    /// Stops accepting appends, flushes, and wakes every waiter. Cursors stay
    /// readable so destinations can drain.
    pub fn close(&self) -> io::Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.data_notify.notify_waiters();
        self.inner.space_notify.notify_waiters();
        self.inner.space_cv.1.notify_all();
        self.sync()
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

    /// Checks that `n` more segments can be taken (free or reusable) without
    /// violating a `block` cursor. `Err` names the cursor that holds them.
    fn can_take_segments(&self, n: usize) -> Result<(), String> {
        let t = self.inner.table.read().unwrap();
        let available = t.free.len() + t.unopened.len();
        if n <= available {
            return Ok(());
        }
        let reuse = n - available;
        // the active segment can never be reused by its own append
        if reuse >= t.segs.len() {
            return Err("(batch larger than the ring)".into());
        }
        let cursors = self.inner.cursors.lock().unwrap();
        let needed_end = t.segs[reuse - 1].end_seq.load(Ordering::Acquire);
        for c in cursors.iter().filter(|c| c.policy == WhenFull::Block) {
            if c.acked.load(Ordering::Acquire) < needed_end {
                return Err(c.name.clone());
            }
        }
        Ok(())
    }

    /// Encodes a record into the staging buffer, rolling first (after
    /// writing what is staged for the old segment) when it does not fit.
    fn write_record(&self, w: &mut Writer, e: &EncodedEvent) -> io::Result<()> {
        let len = e.record_len();
        if w.off + len > self.inner.seg_size {
            self.flush_stage(w)?;
            self.roll(w)?;
        }
        let seq = w.next_seq;
        event::record::encode_append(&mut w.stage, seq, &e.meta, e.body(), e.hint());
        w.off += len;
        w.next_seq += 1;
        w.active
            .last_ms
            .fetch_max(e.meta.received_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Writes what is staged for the active segment (one `pwrite`).
    fn flush_stage(&self, w: &mut Writer) -> io::Result<()> {
        if w.stage.is_empty() {
            return Ok(());
        }
        debug_assert_eq!(w.stage_off + w.stage.len(), w.off);
        write_padded(&w.active.seg, w.stage_off, &mut w.stage)?;
        w.stage.clear();
        // a huge batch does not pin its size in memory for good
        w.stage.shrink_to(STAGE_KEEP);
        w.stage_off = w.off;
        Ok(())
    }

    /// Appends queued notices; a notice that does not fit now waits for the
    /// next append. The notices written are moved to `taken` (put back if the
    /// append fails).
    fn write_notices(&self, w: &mut Writer, taken: &mut Vec<Event>) -> io::Result<()> {
        while let Some(ev) = w.notices.pop_front() {
            let enc = ev.encode();
            let len = enc.record_len();
            if len > self.inner.seg_size - DATA_START {
                tracing::error!(len, "dropping a notice larger than a segment");
                continue;
            }
            if w.off + len > self.inner.seg_size && self.can_take_segments(1).is_err() {
                w.notices.push_front(ev);
                break;
            }
            taken.push(ev);
            self.write_record(w, &enc)?;
        }
        Ok(())
    }

    /// Undoes a failed append: nothing of it is published; the writer goes
    /// back to the active segment's published end (zeroing, best effort, what
    /// it wrote past the published ends so recovery cannot bring it back);
    /// segments it rolled away from are sealed at their published end; the
    /// notices it had taken are queued again.
    fn abort(&self, w: &mut Writer, taken: Vec<Event>) {
        let sealing = std::mem::take(&mut w.sealing);
        for s in &sealing {
            let from = s.info.end_off.load(Ordering::Acquire);
            zero_tail(&s.info.seg, from, s.end_off, &mut w.stage);
            s.info.end_seq.store(s.prev_end_seq, Ordering::Release);
        }
        if !sealing.is_empty() {
            // under the table lock: no reader sees `sealed` with a stale end
            let _t = self.inner.table.write().unwrap();
            for s in &sealing {
                s.info.sealed.store(true, Ordering::Release);
            }
        }
        let published = w.active.end_off.load(Ordering::Acquire);
        let written_to = w.off.max(w.stage_off + w.stage.len());
        zero_tail(&w.active.seg, published, written_to, &mut w.stage);
        w.stage.clear();
        w.off = published;
        w.stage_off = published;
        w.next_seq = w.active.end_seq.load(Ordering::Acquire);
        w.dirty_from = w.dirty_from.min(published);
        for ev in taken.into_iter().rev() {
            w.notices.push_front(ev);
        }
    }

    /// Makes written records visible to readers; returns the range to flush
    /// under `fsync = always`. Everything staged must have been written.
    fn publish(&self, w: &mut Writer) -> Option<Synced> {
        debug_assert!(w.stage.is_empty());
        let sealing = std::mem::take(&mut w.sealing);
        if !sealing.is_empty() {
            // Under the table lock, which readers hold while they read: a
            // reader never sees `sealed` with the end from before it, which
            // would make it move on past the segment's last records.
            let _t = self.inner.table.write().unwrap();
            for s in &sealing {
                s.info.end_off.store(s.end_off, Ordering::Release);
                s.info.sealed.store(true, Ordering::Release);
            }
        }
        w.active.end_off.store(w.off, Ordering::Release);
        w.active.end_seq.store(w.next_seq, Ordering::Release);
        self.inner.committed.store(w.next_seq, Ordering::Release);
        if self.inner.settings.fsync == FsyncPolicy::Always {
            for (seg, a, b) in std::mem::take(&mut w.dirty_sealed) {
                let _ = seg.flush_range(a, b - a);
            }
            let r = (w.active.seg.clone(), w.dirty_from, w.off);
            w.dirty_from = w.off;
            Some(r)
        } else {
            None
        }
    }

    /// Starts a new segment in a free slot or in the oldest segment, its
    /// header written. The old one is sealed by the next `publish` (with the
    /// records this append wrote into it), or at its published end by `abort`.
    /// Everything staged must have been written. On error the writer is still
    /// in the old segment.
    fn roll(&self, w: &mut Writer) -> io::Result<()> {
        debug_assert!(w.stage.is_empty());
        let inner = &self.inner;
        let old = w.active.clone();
        let mut t = inner.table.write().unwrap();
        let seg = if let Some(seg) = t.free.pop() {
            seg
        } else if let Some(slot) = t.unopened.pop() {
            match Segment::open(&inner.settings.dir, slot, inner.seg_size) {
                Ok(seg) => Arc::new(seg),
                Err(e) => {
                    t.unopened.push(slot);
                    return Err(e);
                }
            }
        } else {
            let oldest = t
                .segs
                .pop_front()
                .ok_or_else(|| io::Error::other("no segment to reuse"))?;
            let next = t.segs.front().cloned().unwrap_or_else(|| old.clone());
            self.evict(w, &oldest, &next, "buffer full");
            oldest.seg.clone()
        };
        // A segment of another size (segment_bytes changed) gets a new file,
        // and so does one a destination's batch still holds records of (a
        // lease: it was evicted unacknowledged, or acknowledged a moment
        // before the batch was dropped): its old file lives on, unlinked,
        // until the batch lets go, and is never overwritten under it.
        let seg = if seg.len() != inner.seg_size || seg.is_leased() {
            self.replace_file(seg, &mut t)?
        } else {
            seg
        };
        let h = SegmentHeader {
            id: w.next_id,
            first_seq: w.next_seq,
            created_ms: now_millis(),
        };
        // a zero header on the device: the new one need not be flushed first
        let header_clear = seg.take_header_clear();
        w.stage.extend_from_slice(&h.encode());
        let written = write_padded(&seg, 0, &mut w.stage);
        w.stage.clear();
        if let Err(e) = written {
            t.free.push(seg);
            return Err(e);
        }
        if inner.settings.fsync != FsyncPolicy::Never && !header_clear {
            #[cfg(test)]
            inner
                .counters
                .header_flushes
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = seg.flush_range(0, DATA_START) {
                tracing::error!(error = %e, "flushing a segment header failed");
            }
        }
        w.next_id += 1;
        // the old segment: sealed by `publish`; its end_seq (writer-side) now
        w.sealing.push(Sealing {
            info: old.clone(),
            end_off: w.off,
            prev_end_seq: old.end_seq.load(Ordering::Acquire),
        });
        old.end_seq.store(w.next_seq, Ordering::Release);
        // (nothing flushes under `fsync = never`: the list would only grow,
        // holding every old segment it names)
        if w.off > w.dirty_from && inner.settings.fsync != FsyncPolicy::Never {
            w.dirty_sealed.push((old.seg.clone(), w.dirty_from, w.off));
        }
        let info = SegInfo::new(seg, h, DATA_START, w.next_seq, 0);
        t.segs.push_back(info.clone());
        w.active = info;
        w.off = DATA_START;
        w.stage_off = DATA_START;
        w.dirty_from = DATA_START;
        Ok(())
    }

    /// Replaces `old`'s file by a new one in the same slot (unlinking the
    /// old file: whoever still holds `old` keeps reading it). On error the
    /// slot is left unopened, to be opened by a later roll.
    fn replace_file(&self, old: Arc<Segment>, t: &mut Table) -> io::Result<Arc<Segment>> {
        let inner = &self.inner;
        let slot = old.slot;
        let path = old.path().to_path_buf();
        if old.is_leased() {
            inner
                .counters
                .leased_replacements
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                slot,
                "segment still held by a batch: reusing its slot with a new file"
            );
        }
        drop(old);
        let _ = std::fs::remove_file(&path);
        match Segment::open(&inner.settings.dir, slot, inner.seg_size) {
            Ok(seg) => Ok(Arc::new(seg)),
            Err(e) => {
                t.unopened.push(slot);
                Err(e)
            }
        }
    }

    /// Moves every cursor still in `gone` to the start of `next`, counting
    /// what it had not read. Caller holds the writer lock and the table write lock.
    fn evict(&self, w: &mut Writer, gone: &SegInfo, next: &SegInfo, reason: &str) {
        let cursors = self.inner.cursors.lock().unwrap();
        for c in cursors.iter() {
            let mut pos = c.pos.lock().unwrap();
            if pos.seg_id <= gone.id {
                let lost = next.first_seq.saturating_sub(pos.next_seq);
                *pos = ReadPos {
                    seg_id: next.id,
                    off: DATA_START,
                    next_seq: next.first_seq.max(pos.next_seq),
                };
                if lost > 0 {
                    c.dropped.fetch_add(lost, Ordering::Relaxed);
                    w.notices.push_back(overflow_notice(&c.name, lost, reason));
                }
            }
        }
    }

    /// Expires sealed segments whose newest record is older than `max_age`.
    fn expire_old(&self) {
        let max_age = self.inner.settings.max_age;
        if max_age.is_zero() {
            return;
        }
        let cutoff = now_millis() - max_age.as_millis() as i64;
        let mut w = self.inner.writer.lock().unwrap();
        loop {
            let mut t = self.inner.table.write().unwrap();
            let Some(oldest) = t.segs.front().cloned() else {
                break;
            };
            if !oldest.sealed.load(Ordering::Acquire)
                || oldest.last_ms.load(Ordering::Relaxed) >= cutoff
                || t.segs.len() < 2
            {
                break;
            }
            let end = oldest.end_seq.load(Ordering::Acquire);
            let blocked = self
                .inner
                .cursors
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.policy == WhenFull::Block && c.acked.load(Ordering::Acquire) < end);
            if blocked {
                break;
            }
            t.segs.pop_front();
            let next = t.segs.front().cloned().expect("checked len");
            self.evict(&mut w, &oldest, &next, "max_age exceeded");
            // forget the header so recovery does not bring the expired records back
            if let Err(e) = oldest.seg.clear_header() {
                tracing::error!(error = %e, "clearing an expired segment's header failed");
            }
            t.free.push(oldest.seg.clone());
        }
        if !w.notices.is_empty() {
            let mut taken = Vec::new();
            let written = self
                .write_notices(&mut w, &mut taken)
                .and_then(|()| self.flush_stage(&mut w));
            if let Err(e) = written {
                self.abort(&mut w, taken);
                tracing::error!(error = %e, "writing buffer notices failed");
                return;
            }
            let synced = self.publish(&mut w);
            drop(w);
            if let Some((seg, a, b)) = synced {
                let _ = seg.flush_range(a, b - a);
            }
            self.inner.data_notify.notify_waiters();
        }
    }

    /// Keeps one segment ready for the writer's next roll: when none is
    /// free, takes the oldest segment out of the ring if every destination
    /// has acknowledged all of it (so nothing is dropped), and clears its
    /// header with a device flush here. The roll that takes it then writes
    /// the new header without a flush of its own, instead of flushing on the
    /// append path (tens of milliseconds on a busy disk, with the ring
    /// locked and a runtime worker blocked). Only what the next roll would
    /// overwrite leaves early: the ring keeps one segment less of delivered
    /// history.
    fn recycle_oldest(&self) {
        let inner = &self.inner;
        let seg = {
            let mut w = inner.writer.lock().unwrap();
            let mut t = inner.table.write().unwrap();
            if !t.free.is_empty() || !t.unopened.is_empty() || t.segs.len() < 2 {
                return;
            }
            let oldest = t.segs[0].clone();
            if !oldest.sealed.load(Ordering::Acquire) || oldest.seg.len() != inner.seg_size {
                return;
            }
            let end = oldest.end_seq.load(Ordering::Acquire);
            let acked = inner
                .cursors
                .lock()
                .unwrap()
                .iter()
                .all(|c| c.acked.load(Ordering::Acquire) >= end);
            if !acked {
                return;
            }
            t.segs.pop_front();
            let next = t.segs.front().cloned().expect("checked len");
            // moves any cursor left at its very end; drops nothing (all acknowledged)
            self.evict(&mut w, &oldest, &next, "recycled");
            oldest.seg.clone()
        };
        if let Err(e) = seg.clear_header() {
            tracing::warn!(slot = seg.slot, error = %e, "clearing a segment header for reuse failed");
        }
        // with a failed clear the roll flushes the header it writes, as for any other
        inner.table.write().unwrap().free.push(seg);
    }

    /// Opens the next never-used slot file ahead of the writer, so a roll
    /// does not create, size and map a file in the append path. The slot
    /// stays available to the writer meanwhile: it is handed over only if
    /// the writer has not opened it itself.
    fn prepare_spare(&self) {
        let slot = {
            let t = self.inner.table.read().unwrap();
            if !t.free.is_empty() {
                return;
            }
            match t.unopened.last() {
                Some(&s) => s,
                None => return,
            }
        };
        let seg = match Segment::open(&self.inner.settings.dir, slot, self.inner.seg_size) {
            Ok(seg) => seg,
            Err(e) => {
                tracing::warn!(slot, error = %e, "cannot prepare the next segment");
                return;
            }
        };
        let mut t = self.inner.table.write().unwrap();
        if let Some(i) = t.unopened.iter().position(|&s| s == slot) {
            t.unopened.remove(i);
            t.free.push(Arc::new(seg));
        }
    }

    /// Background thread: periodic fsync (interval policy), expiry, and
    /// preparing the next segment.
    fn start_maintenance(&self) {
        let weak = Arc::downgrade(&self.inner);
        let tick = match self.inner.settings.fsync {
            FsyncPolicy::Interval(d) => d.clamp(Duration::from_millis(1), Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        let flush = matches!(self.inner.settings.fsync, FsyncPolicy::Interval(_));
        // without flushes a roll costs no device flush to save
        let recycle = self.inner.settings.fsync != FsyncPolicy::Never;
        let thread = std::thread::Builder::new()
            .name("ring-maintenance".into())
            .spawn(move || loop {
                // woken early when the ring is dropped (or spuriously: one
                // round of maintenance early does no harm)
                std::thread::park_timeout(tick);
                let Some(inner) = weak.upgrade() else { return };
                let ring = Ring { inner };
                if ring.is_closed() {
                    return;
                }
                if flush {
                    if let Err(e) = ring.sync() {
                        tracing::error!(error = %e, "ring fsync failed");
                    }
                }
                ring.expire_old();
                ring.prepare_spare();
                if recycle {
                    ring.recycle_oldest();
                }
            })
            .expect("spawn ring maintenance thread");
        *self.inner.maintenance.lock().unwrap() = Some(thread);
    }
}

/// Capacity the staging buffer keeps between appends.
const STAGE_KEEP: usize = 4 << 20;

/// How many new segments appending records of `sizes` from offset `off` takes.
fn rolls_needed(mut off: usize, sizes: &[usize], seg_size: usize) -> usize {
    let mut rolls = 0;
    for &s in sizes {
        if off + s > seg_size {
            rolls += 1;
            off = DATA_START;
        }
        off += s;
    }
    rolls
}

/// Writes `buf` at `off` of `seg`, first padding it with zeros up to the next
/// multiple of the segment's I/O block (or the segment's end), so the write
/// never covers a block only partly at its end. (Its start is where the
/// previous write ended: that block is in the page cache already.) Bytes past
/// the last record are unpublished and read as a clean end. `buf` is
/// truncated back to its length after.
fn write_padded(seg: &Segment, off: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    let len = buf.len();
    let end = off + len;
    let padded = end.next_multiple_of(seg.io_block()).min(seg.len());
    buf.resize(padded - off, 0);
    let r = seg.write_at(off, buf);
    buf.truncate(len);
    r
}

/// Best effort after a failed write: zeroes `[from, to)` of `seg` (bytes past
/// its published end) so recovery does not find records of a refused append.
fn zero_tail(seg: &Segment, from: usize, to: usize, scratch: &mut Vec<u8>) {
    if to <= from {
        return;
    }
    scratch.clear();
    scratch.resize(to - from, 0);
    if let Err(e) = seg.write_at(from, scratch) {
        tracing::warn!(error = %e, "cannot clear the unpublished tail of a failed append");
    }
    scratch.clear();
}

/// The SECURITY event that reports records a destination lost.
pub(crate) fn overflow_notice(destination: &str, dropped: u64, reason: &str) -> Event {
    let mut ev = Event::new(
        "SECURITY",
        Some("relay.buffer.overflow".into()),
        Severity::Warning,
    );
    ev.outcome = Some("failure".into());
    let mut md = serde_json::Map::new();
    md.insert("destination".into(), destination.into());
    md.insert("dropped".into(), dropped.into());
    md.insert("reason".into(), reason.into());
    ev.metadata = Some(md);
    ev.message = Some(format!(
        "destination `{destination}` lost {dropped} events: {reason}"
    ));
    ev.source = Some(crate::event::SourceInfo {
        listener: "relay".into(),
        address: None,
    });
    ev
}

/// Takes an exclusive advisory lock on the data directory.
fn lock_dir(dir: &Path) -> Result<File, BufferError> {
    let path = dir.join("LOCK");
    let f = File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(BufferError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io_err(format!("locking {}", path.display()))(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_are_counted() {
        assert_eq!(rolls_needed(DATA_START, &[100, 100], 1000), 0);
        assert_eq!(rolls_needed(900, &[100, 100], 1000), 1);
        assert_eq!(rolls_needed(DATA_START, &[600, 600, 600], 1000), 2);
    }

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
