//! A destination's cursor: where it reads in the ring, which claimed ranges
//! its workers have acknowledged, and the durable checkpoint.
//!
//! The destination's reader claims consecutive sequence ranges with
//! [`Cursor::read`]; workers acknowledge them in any order through an
//! [`Acker`] (a lock-free queue, shareable across tasks). [`Cursor::commit`]
//! moves the durable position only over contiguously acknowledged ranges and
//! writes the checkpoint, so a restart resumes at the first unacknowledged
//! record: duplicates are possible (the unacknowledged window), loss is not.

use super::checkpoint::{self, Checkpoint};
use super::ring::{Ring, WhenFull};
use super::segment::{prefetch, DATA_START};
use crate::event::{Record, RecordError, RecordMeta};
use bytes::Bytes;
use crossbeam::queue::SegQueue;
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A record read out of the ring: its body and hint, one after the other,
/// in one slice of the segment's map (no copy, and one reference count to
/// move per record, not two: a fan-out to N destinations takes N). While
/// the slice is alive the ring does not rewrite that segment (see
/// [`Segment::share`](super::segment::Segment::share)).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    pub seq: u64,
    pub meta: RecordMeta,
    /// The body (`..body_len`) and then the hint.
    data: Bytes,
    body_len: usize,
}

impl ReadRecord {
    /// A record without a hint.
    pub fn new(seq: u64, meta: RecordMeta, body: Bytes) -> Self {
        ReadRecord {
            seq,
            meta,
            body_len: body.len(),
            data: body,
        }
    }

    /// A record with `body` and `hint` copied into a buffer of its own
    /// (tests, tools; the ring hands out slices of its map instead).
    pub fn with_hint(seq: u64, meta: RecordMeta, body: &[u8], hint: &[u8]) -> Self {
        let mut data = Vec::with_capacity(body.len() + hint.len());
        data.extend_from_slice(body);
        data.extend_from_slice(hint);
        ReadRecord {
            seq,
            meta,
            data: data.into(),
            body_len: body.len(),
        }
    }

    /// A record whose body is `buf[at..at + body_len]` and whose hint the
    /// `hint_len` bytes after it (a slice of `buf`, no copy).
    #[inline]
    pub fn in_buffer(
        seq: u64,
        meta: RecordMeta,
        buf: &Bytes,
        at: usize,
        body_len: usize,
        hint_len: usize,
    ) -> Self {
        ReadRecord {
            seq,
            meta,
            data: buf.slice(at..at + body_len + hint_len),
            body_len,
        }
    }

    /// The canonical event as compact JSON.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.data[..self.body_len]
    }

    /// The record's hint (empty: none).
    #[inline]
    pub fn hint(&self) -> &[u8] {
        &self.data[self.body_len..]
    }

    /// The body as shared bytes (no copy).
    pub fn body_bytes(&self) -> Bytes {
        self.data.slice(..self.body_len)
    }

    /// The body and the hint after it, as one slice of bytes.
    pub fn body_and_hint(&self) -> &[u8] {
        &self.data
    }

    /// Replaces the body (after redaction): the hint, made for the old
    /// body, goes with it.
    pub fn set_body(&mut self, body: Bytes) {
        self.body_len = body.len();
        self.data = body;
    }
}

/// A read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadPos {
    pub seg_id: u64,
    pub off: usize,
    /// Sequence number of the next record to read (all below are claimed).
    pub next_seq: u64,
}

/// The part of a cursor the ring sees (for reuse decisions and drops).
#[derive(Debug)]
pub(crate) struct CursorShared {
    pub name: String,
    pub policy: WhenFull,
    pub pos: Mutex<ReadPos>,
    /// Durable position: every record below is acknowledged (or dropped).
    pub acked: AtomicU64,
    pub dropped: AtomicU64,
    /// See [`Checkpoint::skipped_to`]; moved with `pos` locked, as
    /// `dropped` is, so a checkpoint reads the two as one.
    pub skipped_to: AtomicU64,
    pub closed: AtomicBool,
    /// A `block` cursor's acknowledged position an append waits for (0:
    /// none yet): the ring is full and this cursor holds its oldest
    /// segment. See [`Cursor::holds_up_ingest`].
    pub wanted: AtomicU64,
    /// Woken when an append is refused for this cursor.
    pub wanted_notify: tokio::sync::Notify,
    /// The checkpoint file, and what it holds. Locked while it is written:
    /// the destination's task and the ring both write it (see
    /// [`CursorShared::persist_through`]), never at once and never back.
    path: PathBuf,
    on_disk: Mutex<Checkpoint>,
    /// `on_disk.seq`, or where the cursor started when it has no file yet:
    /// records below it are acknowledged on disk.
    stored_seq: AtomicU64,
}

impl CursorShared {
    pub(crate) fn new(
        name: &str,
        policy: WhenFull,
        pos: ReadPos,
        path: PathBuf,
        on_disk: Checkpoint,
        dropped: u64,
    ) -> Self {
        CursorShared {
            name: name.to_string(),
            policy,
            acked: AtomicU64::new(pos.next_seq),
            dropped: AtomicU64::new(dropped),
            skipped_to: AtomicU64::new(on_disk.skipped_to.max(pos.next_seq)),
            pos: Mutex::new(pos),
            closed: AtomicBool::new(false),
            wanted: AtomicU64::new(0),
            wanted_notify: tokio::sync::Notify::new(),
            path,
            stored_seq: AtomicU64::new(on_disk.seq.max(pos.next_seq)),
            on_disk: Mutex::new(on_disk),
        }
    }

    /// An append was refused until this (`block`) cursor acknowledges every
    /// record below `seq`: the cursor's destination is told
    /// ([`Cursor::holds_up_ingest`], [`Cursor::held_up`]).
    pub(crate) fn want(&self, seq: u64) {
        self.wanted.fetch_max(seq, Ordering::AcqRel);
        self.wanted_notify.notify_one();
    }

    /// Every record below this is acknowledged, and so its checkpoint on
    /// disk says: the ring may reuse them without a crash taking them for
    /// lost. (Reusing what was acknowledged only in memory made a restart
    /// after `kill -9` report as lost up to a checkpoint interval of
    /// delivered records, even for `block` destinations.)
    pub(crate) fn released(&self) -> u64 {
        self.acked
            .load(Ordering::Acquire)
            .min(self.stored_seq.load(Ordering::Acquire))
    }

    /// Whether the ring may reuse every record below `end` for this
    /// cursor: acknowledged, and on disk so ([`CursorShared::persist_through`]
    /// writes the checkpoint first when only that is missing).
    pub(crate) fn releases_through(&self, end: u64) -> bool {
        self.persist_through(end) && self.released() >= end
    }

    /// The checkpoint as of now (`seq`: the acknowledged position applied).
    fn current(&self, seq: u64) -> Checkpoint {
        let _pos = self.pos.lock().unwrap(); // `dropped` and `skipped_to` move together under it
        Checkpoint {
            seq,
            dropped: self.dropped.load(Ordering::Relaxed),
            skipped_to: self.skipped_to.load(Ordering::Acquire),
        }
    }

    /// Writes `cp`, merged with what is on disk (each field only grows),
    /// unless that holds it already. `Ok(true)` when written.
    fn store(&self, cp: Checkpoint) -> io::Result<bool> {
        let mut on_disk = self.on_disk.lock().unwrap();
        let merged = cp.max(*on_disk);
        if merged == *on_disk {
            return Ok(false);
        }
        checkpoint::store(&self.path, &merged)?;
        *on_disk = merged;
        self.stored_seq.fetch_max(merged.seq, Ordering::AcqRel);
        Ok(true)
    }

    /// For the ring, as it reuses records below `end` this cursor claimed
    /// (read, whether its batch was acknowledged since or is still in
    /// flight), with `skipped_to` already moved to `end` or past: writes
    /// the checkpoint unless the one on disk covers them (its `seq` or
    /// its `skipped_to` at `end` or past). Otherwise a restart after a
    /// crash finds the checkpoint older than the ring and counts those
    /// records as lost, though they were sent (under `drop_oldest` the
    /// ring reuses a batch in flight and the cursor acknowledges it
    /// later). Records the cursor never read cost no write: dropped and
    /// counted in memory only, they are counted again, once, from the
    /// older checkpoint at a restart.
    pub(crate) fn persist_reused(&self, end: u64) {
        let on_disk = *self.on_disk.lock().unwrap();
        if on_disk.seq.max(on_disk.skipped_to) >= end {
            return;
        }
        let cp = self.current(self.acked.load(Ordering::Acquire));
        debug_assert!(cp.skipped_to >= end);
        if let Err(e) = self.store(cp) {
            tracing::error!(destination = %self.name, error = %e,
                "writing the checkpoint before the ring reuses records the destination read failed (a crash now may report them lost)");
        }
    }

    /// For the ring, before it reuses records below `end`: when this
    /// cursor has acknowledged them but its checkpoint on disk is behind,
    /// writes the checkpoint now. Normally it is far ahead (written every
    /// 10,000 records or second, and the ring reuses its oldest segment);
    /// with a ring of a few records, or a destination close behind the
    /// ring's oldest record, this write waits for the disk on the append
    /// path. True when the checkpoint covers `end` (or the cursor has not
    /// acknowledged that far, which the caller judges by its policy).
    pub(crate) fn persist_through(&self, end: u64) -> bool {
        if self.stored_seq.load(Ordering::Acquire) >= end {
            return true;
        }
        let acked = self.acked.load(Ordering::Acquire);
        if acked < end {
            return true;
        }
        match self.store(self.current(acked)) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(destination = %self.name, error = %e,
                    "writing the checkpoint before the ring reuses acknowledged records failed (a crash now may report them lost)");
                false
            }
        }
    }
}

/// A cursor's checkpoint to write (see [`Cursor::checkpoint_due`]).
#[derive(Debug)]
pub struct CheckpointWrite {
    shared: Arc<CursorShared>,
    cp: Checkpoint,
}

impl CheckpointWrite {
    /// Replaces the checkpoint file atomically (fsyncs the file and its
    /// directory), unless the ring wrote one as new meanwhile.
    pub fn write(&self) -> io::Result<()> {
        self.shared.store(self.cp).map(|_| ())
    }

    /// What it writes.
    pub fn checkpoint(&self) -> Checkpoint {
        self.cp
    }
}

/// Acknowledges claimed ranges; clone it into every worker.
#[derive(Debug, Clone, Default)]
pub struct Acker {
    queue: Arc<SegQueue<Range<u64>>>,
}

impl Acker {
    /// Marks a range returned by [`Cursor::read`] as done (delivered,
    /// dead-lettered or filtered out).
    pub fn ack(&self, range: Range<u64>) {
        self.queue.push(range);
    }
}

/// A destination's cursor. Owned by the destination's reader task.
pub struct Cursor {
    ring: Ring,
    shared: Arc<CursorShared>,
    /// Claimed ranges in order, with "acknowledged" flags.
    pending: VecDeque<(Range<u64>, bool)>,
    acker: Acker,
}

impl Cursor {
    pub(crate) fn new(ring: Ring, shared: Arc<CursorShared>) -> Cursor {
        Cursor {
            ring,
            shared,
            pending: VecDeque::new(),
            acker: Acker::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn policy(&self) -> WhenFull {
        self.shared.policy
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// A handle for workers to acknowledge ranges.
    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// Claims the next records: up to `max_records` and about `max_bytes` of
    /// bodies (at least one record if any is there), appended to `out`.
    /// Returns the claimed sequence range (it may include sequence numbers
    /// with no record, e.g. across damage), or `None` when caught up.
    pub fn read(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<ReadRecord>,
    ) -> Option<Range<u64>> {
        let table = self.ring.inner.table.read().unwrap();
        let mut pos = self.shared.pos.lock().unwrap();
        let start = pos.next_seq;
        let first = out.len();
        let mut bytes = 0usize;
        while out.len() - first < max_records && (out.len() == first || bytes < max_bytes) {
            let Some((idx, seg)) = table.find(pos.seg_id) else {
                // our segment was expired under us: continue at the oldest one
                let oldest = table.segs.front().expect("ring has an active segment");
                *pos = ReadPos {
                    seg_id: oldest.id,
                    off: DATA_START,
                    next_seq: pos.next_seq.max(oldest.first_seq),
                };
                continue;
            };
            let end = seg.end_off.load(Ordering::Acquire);
            if pos.off < end {
                let published = seg.seg.bytes(0, end);
                let verified = seg.verified_off.load(Ordering::Acquire);
                let run_start = pos.off;
                // the common case: consecutive valid records in this segment,
                // each a slice of one lease on the published bytes (no copy).
                // Pushed as they are decoded: noted first and made into
                // records after the run, each record's header fields were
                // copied twice, the second copy stalling on the first.
                let run = seg.seg.share(run_start, end - run_start);
                let mut prefetched = pos.off & !(CACHE_LINE - 1);
                while pos.off < end
                    && out.len() - first < max_records
                    && (out.len() == first || bytes < max_bytes)
                {
                    // keep the lines up to PREFETCH_AHEAD past this record on their way
                    let ahead = (pos.off + PREFETCH_AHEAD).min(end);
                    while prefetched < ahead {
                        prefetch(published, prefetched);
                        prefetched += CACHE_LINE;
                    }
                    let Ok(rec) = decode_at(published, pos.off, verified) else {
                        break;
                    };
                    let at = rec.body.as_ptr() as usize - published.as_ptr() as usize - run_start;
                    let (body_len, hint_len) = (rec.body.len(), rec.hint.len());
                    out.push(ReadRecord::in_buffer(
                        rec.seq, rec.meta, &run, at, body_len, hint_len,
                    ));
                    bytes += body_len + hint_len;
                    pos.off += rec.encoded_len();
                    pos.next_seq = rec.seq + 1;
                }
                drop(run);
                // a run that began inside the checked prefix extends it
                if run_start <= verified && pos.off > verified {
                    seg.verified_off.fetch_max(pos.off, Ordering::AcqRel);
                }
                if pos.off >= end || out.len() - first >= max_records || bytes >= max_bytes {
                    continue;
                }
                match Record::decode(&published[pos.off..]) {
                    Ok(_) => {}
                    Err(e) => {
                        // damage recovery skipped (or disk damage since): go on at the next valid record
                        let window = seg.seg.bytes(0, end);
                        match super::scan::resync(window, pos.off + 1, pos.next_seq) {
                            Some((found, rec)) => {
                                tracing::warn!(cursor = %self.shared.name, segment = seg.id, offset = pos.off,
                                    error = %e, skipped_records = rec.seq - pos.next_seq, "skipping damaged record");
                                pos.off = found;
                            }
                            None => pos.off = end,
                        }
                    }
                }
                continue;
            }
            if seg.sealed.load(Ordering::Acquire) {
                if let Some(next) = table.segs.get(idx + 1) {
                    *pos = ReadPos {
                        seg_id: next.id,
                        off: DATA_START,
                        next_seq: pos.next_seq.max(next.first_seq),
                    };
                    continue;
                }
            }
            break;
        }
        let end_seq = pos.next_seq;
        drop(pos);
        drop(table);
        if end_seq == start {
            debug_assert_eq!(out.len(), first);
            return None;
        }
        self.pending.push_back((start..end_seq, false));
        Some(start..end_seq)
    }

    /// True when this is a `block` cursor and an append waits for it to
    /// acknowledge records it has not yet acknowledged (applied: see
    /// [`Cursor::apply_acks`]). Its destination should then send what it
    /// holds rather than wait for a batch to fill: the ring cannot take
    /// the records that would fill it. With a ring of a few small segments,
    /// smaller than one batch, a destination that waited sent one batch per
    /// `batch_timeout` and ingest crawled at one segment per second.
    pub fn holds_up_ingest(&self) -> bool {
        self.shared.policy == WhenFull::Block
            && self.shared.wanted.load(Ordering::Acquire) > self.shared.released()
    }

    /// Completes when an append is refused for this `block` cursor (at once
    /// if one was since the last call); never for other cursors.
    pub async fn held_up(&self) {
        if self.shared.policy == WhenFull::Block {
            self.shared.wanted_notify.notified().await
        } else {
            std::future::pending().await
        }
    }

    /// Sequence number of the next record this cursor would read.
    pub fn read_position(&self) -> u64 {
        self.shared.pos.lock().unwrap().next_seq
    }

    /// Applies acknowledgements and returns the durable position (every
    /// record below it is done). Does not write the checkpoint.
    pub fn apply_acks(&mut self) -> u64 {
        while let Some(r) = self.acker.queue.pop() {
            if let Some(p) = self.pending.iter_mut().find(|(p, _)| p.start == r.start) {
                debug_assert_eq!(p.0, r, "acks must name exactly a claimed range");
                p.1 = true;
            }
        }
        while self.pending.front().is_some_and(|(_, done)| *done) {
            self.pending.pop_front();
        }
        let durable = match self.pending.front() {
            Some((r, _)) => r.start,
            None => self.read_position(),
        };
        let before = self.shared.acked.swap(durable, Ordering::AcqRel);
        if durable != before && self.shared.policy == WhenFull::Block {
            self.ring.notify_space();
        }
        durable
    }

    /// Applies acknowledgements and, when the durable position moved, writes
    /// the checkpoint atomically.
    pub fn commit(&mut self) -> io::Result<u64> {
        let due = self.checkpoint_due(0); // applies the acks
        let durable = self.shared.acked.load(Ordering::Acquire);
        if let Some(write) = due {
            write.write()?;
            self.checkpoint_written(write);
        }
        Ok(durable)
    }

    /// The checkpoint to write now (acknowledgements applied), or `None`
    /// when the stored one is current or, with `min_records` above 0, when
    /// fewer than `min_records` records were acknowledged since it. For a
    /// caller that writes it elsewhere (off an async worker thread: the
    /// write waits for the disk) and then reports it with
    /// [`Cursor::checkpoint_written`]. Writes of one cursor must not
    /// overlap: each is the newer one.
    pub fn checkpoint_due(&mut self, min_records: u64) -> Option<CheckpointWrite> {
        let durable = self.apply_acks();
        let cp = self.shared.current(durable);
        let stored = *self.shared.on_disk.lock().unwrap();
        let moved = durable.saturating_sub(stored.seq);
        (cp.max(stored) != stored && moved >= min_records).then(|| CheckpointWrite {
            shared: self.shared.clone(),
            cp,
        })
    }

    /// `write` (from [`Cursor::checkpoint_due`]) is on disk. A `block`
    /// cursor's ingest may wait for it (see [`CursorShared::released`]).
    pub fn checkpoint_written(&mut self, _write: CheckpointWrite) {
        if self.shared.policy == WhenFull::Block {
            self.ring.notify_space();
        }
    }

    /// True when the ring waits to reuse records this cursor acknowledged
    /// but its checkpoint does not yet say so: write it now, not at the
    /// next interval.
    pub fn checkpoint_wanted(&self) -> bool {
        let wanted = self.shared.wanted.load(Ordering::Acquire);
        self.shared.policy == WhenFull::Block
            && wanted > self.shared.stored_seq.load(Ordering::Acquire)
            && wanted <= self.shared.acked.load(Ordering::Acquire)
    }

    /// Claimed ranges not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending.iter().filter(|(_, d)| !d).count()
    }

    /// Records published but not yet acknowledged by this destination.
    pub fn lag(&self) -> u64 {
        // records the ring already reused are lost to this destination
        // (counted in `dropped` once it moves on), no longer waiting for it
        let oldest = self.ring.oldest_seq();
        let from = self.shared.acked.load(Ordering::Acquire).max(oldest);
        // but for those of a batch in flight: the ring reuses them under
        // `drop_oldest` while the batch is sent from memory, and they are
        // neither dropped nor delivered yet (they were in no counter)
        let in_flight_reused: u64 = self
            .pending
            .iter()
            .filter(|(_, done)| !done)
            .map(|(r, _)| r.end.min(oldest).saturating_sub(r.start))
            .sum();
        self.ring.next_seq().saturating_sub(from) + in_flight_reused
    }

    /// Records this destination lost (overflow, expiry, damage), over its life.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// How far ahead of its position a reader prefetches the segment's bytes:
/// a few records, so the header it needs next (and the body and hint its
/// destination reads) is in cache when it gets there.
const PREFETCH_AHEAD: usize = 4096;
const CACHE_LINE: usize = 64;

/// The record at `off` of a segment's published bytes, its checksum checked
/// unless it lies wholly below `verified` (see `SegInfo::verified_off`).
#[inline]
fn decode_at(published: &[u8], off: usize, verified: usize) -> Result<Record<'_>, RecordError> {
    let buf = &published[off..];
    if off < verified {
        match Record::decode_verified(buf) {
            Ok(rec) if off + rec.encoded_len() <= verified => return Ok(rec),
            _ => {}
        }
    }
    Record::decode(buf)
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.ring.unregister(&self.shared);
    }
}
