//! The ring's segments over time: rolling to the next one when the active
//! segment is full, reusing the oldest (asking the cursors first), giving a
//! slot a new file while a batch still holds the old one, expiry by age,
//! and the maintenance thread that flushes, expires and prepares the next
//! segment ahead of the writer.

use super::append::write_padded;
use super::*;
use crate::buffer::segment::is_out_of_space;
use crate::sources::log_limit::Admit;
use std::time::Instant;

/// How long the maintenance thread waits before it tries again to create
/// a segment it could not (README: "tries again every 5 s").
pub(super) const SEGMENT_RETRY: Duration = Duration::from_secs(5);

/// A failure to create a segment (other than for lack of space) is logged
/// once, then once a window with the number of failures.
pub(super) const SPARE_ERROR_WINDOW: Duration = Duration::from_secs(60);

/// How long a ring out of space waits before it tries to create a segment again.
#[cfg(not(test))]
pub(super) const NO_SPACE_RETRY: Duration = SEGMENT_RETRY;
#[cfg(test)]
pub(super) const NO_SPACE_RETRY: Duration = Duration::from_millis(20);

impl Ring {
    /// Checks that `n` more segments can be taken (free or reusable) without
    /// violating a `block` cursor. `Err` names the cursor that holds them.
    pub(super) fn can_take_segments(&self, n: usize) -> Result<(), AppendError> {
        let t = self.inner.table.read().unwrap();
        let available = t.fresh_available(self.inner.slots);
        if n <= available {
            return Ok(());
        }
        let reuse = n - available;
        // the active segment can never be reused by its own append
        if reuse >= t.segs.len() {
            return Err(if t.no_space.is_some() {
                AppendError::Full("(no space left on the file system for the buffer)".into())
            } else {
                AppendError::LargerThanRing
            });
        }
        let cursors = self.inner.cursors.lock().unwrap();
        let needed_end = t.segs[reuse - 1].end_seq.load(Ordering::Acquire);
        for c in cursors.iter().filter(|c| c.policy == WhenFull::Block) {
            if !c.releases_through(needed_end) {
                c.want(needed_end);
                return Err(AppendError::Full(c.name.clone()));
            }
        }
        Ok(())
    }

    /// The names of every `block` cursor that keeps an append of `events`
    /// from taking the segments it needs (none when it would fit, or when no
    /// cursor could free enough: a batch larger than the ring). For a
    /// refusal that names them all: an append's `Full` names the first.
    pub(crate) fn holding_back(&self, events: &[EncodedEvent]) -> Vec<String> {
        let Ok(sizes) = self.record_sizes(events) else {
            return Vec::new();
        };
        let w = self.inner.writer.lock().unwrap();
        let rolls =
            super::append::rolls_needed(w.off, &sizes, w.active.seg.len(), self.inner.seg_size);
        let t = self.inner.table.read().unwrap();
        let reuse = rolls.saturating_sub(t.fresh_available(self.inner.slots));
        if reuse == 0 || reuse >= t.segs.len() {
            return Vec::new();
        }
        let needed_end = t.segs[reuse - 1].end_seq.load(Ordering::Acquire);
        let cursors = self.inner.cursors.lock().unwrap();
        cursors
            .iter()
            .filter(|c| c.policy == WhenFull::Block && !c.releases_through(needed_end))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Starts a new segment in a free slot or in the oldest segment, its
    /// header written. The old one is sealed by the next `publish` (with the
    /// records this append wrote into it), or at its published end by `abort`.
    /// Everything staged must have been written. On error the writer is still
    /// in the old segment.
    pub(super) fn roll(&self, w: &mut Writer) -> io::Result<()> {
        debug_assert!(w.stage.is_empty());
        let inner = &self.inner;
        let old = w.active.clone();
        let mut t = inner.table.write().unwrap();
        self.shrink_to_slots(w, &mut t);
        let fresh = t.fresh_available(inner.slots) > 0;
        // (a slot is taken off its list only when it is used)
        let seg = if let Some(seg) = t.free.pop_if(|_| fresh) {
            seg
        } else if let Some(slot) = t.unopened.pop_if(fresh) {
            match self.open_slot(slot) {
                Ok(seg) => Arc::new(seg),
                Err(e) => {
                    t.unopened.push(slot);
                    self.note_no_space(&mut t, &e);
                    return Err(e);
                }
            }
        } else {
            let oldest = t
                .segs
                .pop_front()
                .ok_or_else(|| io::Error::other("no segment to reuse"))?;
            let next = t.segs.front().cloned().unwrap_or_else(|| old.clone());
            // (`evict` writes the checkpoints that must cover it before it goes)
            let reason = if t.no_space.is_some() {
                "buffer full (no space left on the file system for more segments)"
            } else {
                "buffer full"
            };
            self.evict(w, &oldest, &next, reason);
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

    /// A ring opened with a lower `max_bytes` than its files hold gives
    /// segments back, one a roll, until the segment it is about to take
    /// brings it to its `slots`: free ones first (their files deleted), then
    /// the oldest, as a full ring would reuse it (its records dropped for the
    /// destinations behind, counted and noticed), unless a `block`
    /// destination still needs it.
    fn shrink_to_slots(&self, w: &mut Writer, t: &mut Table) {
        let slots = self.inner.slots;
        while t.segs.len() + t.free.len() > slots {
            let Some(seg) = t.free.pop() else { break };
            let _ = std::fs::remove_file(seg.path());
        }
        // a roll with all slots live reuses the oldest: one more goes
        if t.segs.len() <= slots || t.segs.len() < 3 {
            return;
        }
        let oldest = t.segs[0].clone();
        if self.block_cursor_needs(oldest.end_seq.load(Ordering::Acquire)) {
            return;
        }
        t.segs.pop_front();
        let next = t.segs.front().cloned().expect("checked len");
        self.evict(w, &oldest, &next, "max_bytes lowered");
        // deleted, not cleared: whoever still reads it keeps the unlinked file
        let _ = std::fs::remove_file(oldest.seg.path());
    }

    /// Replaces `old`'s file by a new one in the same slot (unlinking the
    /// old file: whoever still holds `old` keeps reading it). On error the
    /// slot is left unopened, to be opened by a later roll.
    pub(super) fn replace_file(
        &self,
        old: Arc<Segment>,
        t: &mut Table,
    ) -> io::Result<Arc<Segment>> {
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
        match self.open_slot(slot) {
            Ok(seg) => Ok(Arc::new(seg)),
            Err(e) => {
                t.unopened.push(slot);
                self.note_no_space(t, &e);
                Err(e)
            }
        }
    }

    /// Opens (creating) a slot's file at the ring's segment size.
    fn open_slot(&self, slot: usize) -> io::Result<Segment> {
        #[cfg(test)]
        if self.inner.no_space_for_tests.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::StorageFull.into());
        }
        #[cfg(test)]
        if self.inner.read_only_for_tests.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::ReadOnlyFilesystem.into());
        }
        Segment::open(&self.inner.settings.dir, slot, self.inner.seg_size)
    }

    /// After a segment could not be created: when for lack of space, the
    /// ring stops counting on new segments (`Table::no_space`), says so
    /// once, and from then on is full at the size it has: a roll reuses
    /// the oldest segment, as `when_full` lets it, instead of failing
    /// appends while the disk stays full.
    pub(super) fn note_no_space(&self, t: &mut Table, e: &io::Error) {
        if !is_out_of_space(e) {
            return;
        }
        if t.no_space.is_none() {
            let segments = t.segs.len() + t.free.len();
            tracing::error!(
                dir = %self.inner.settings.dir.display(),
                segments,
                max_segments = self.inner.slots,
                bytes = segments * self.inner.seg_size,
                error = %e,
                "the buffer cannot grow: no space for a new segment; it is full at the size it has \
                 (each destination's when_full applies) until space is free"
            );
        }
        t.no_space = Some(Instant::now());
    }

    /// Moves every cursor still in `gone` to the start of `next`, counting
    /// what it had not read, and notes in every cursor's `skipped_to` that
    /// the records below `next` are gone. Before it returns (and so before
    /// the caller rewrites or deletes `gone`), each cursor that had claimed
    /// records below `next` its checkpoint on disk does not cover, whether
    /// acknowledged since or still in flight, writes its checkpoint
    /// ([`CursorShared::persist_reused`]): a restart after a crash would
    /// otherwise count them as lost, though they were sent. Caller holds
    /// the writer lock and the table write lock.
    pub(super) fn evict(&self, w: &mut Writer, gone: &SegInfo, next: &SegInfo, reason: &str) {
        let cursors = self.inner.cursors.lock().unwrap();
        for c in cursors.iter() {
            let mut pos = c.pos.lock().unwrap();
            // what it read since the ring last moved it (or since it
            // opened), of the records that go now
            let claimed = c.skipped_to.load(Ordering::Acquire)..pos.next_seq.min(next.first_seq);
            if pos.seg_id <= gone.id {
                let lost = next.first_seq.saturating_sub(pos.next_seq);
                *pos = ReadPos {
                    seg_id: next.id,
                    off: DATA_START,
                    next_seq: next.first_seq.max(pos.next_seq),
                };
                c.skipped_to.fetch_max(pos.next_seq, Ordering::AcqRel);
                if lost > 0 {
                    let total = c.dropped.fetch_add(lost, Ordering::Relaxed) + lost;
                    w.notices
                        .push_back(overflow_notice(&c.name, lost, total, reason));
                }
            }
            // a cursor already past `gone` may still have batches of it in
            // flight: those records are gone from the ring all the same
            c.skipped_to.fetch_max(next.first_seq, Ordering::AcqRel);
            drop(pos);
            if !claimed.is_empty() {
                c.persist_reused(claimed.end);
            }
        }
    }

    /// Whether a `block` destination has not acknowledged every record
    /// below `end_seq` (so a segment ending there cannot go).
    fn block_cursor_needs(&self, end_seq: u64) -> bool {
        self.inner
            .cursors
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.policy == WhenFull::Block && !c.releases_through(end_seq))
    }

    /// Expires sealed segments whose newest record is older than `max_age`.
    pub(super) fn expire_old(&self) {
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
            if self.block_cursor_needs(oldest.end_seq.load(Ordering::Acquire)) {
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
                .and_then(|bytes| self.flush_stage(&mut w).map(|()| bytes));
            let bytes = match written {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.abort(&mut w, taken);
                    tracing::error!(error = %e, "writing buffer notices failed");
                    return;
                }
            };
            self.inner.counters.add_appended(taken.len(), bytes);
            self.notices_written(&mut w, taken.len());
            // notices have no sender waiting for them: a failed flush is
            // logged (by `publish` and here), the next `sync` tries again
            let (synced, _) = self.publish(&mut w);
            drop(w);
            if let Some((seg, a, b)) = synced {
                if let Err(e) = seg.flush_range(a, b - a) {
                    tracing::error!(error = %e, "flushing buffer notices to disk failed");
                }
            }
            self.wake_data_waiters();
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
    pub(super) fn recycle_oldest(&self) {
        let inner = &self.inner;
        // checkpoints behind the oldest segment's end are written first,
        // without the ring locked (this thread may wait for the disk)
        let oldest_end = {
            let t = inner.table.read().unwrap();
            match t.segs.front() {
                Some(s) if t.free.is_empty() && t.unopened.is_empty() && t.segs.len() >= 2 => {
                    s.end_seq.load(Ordering::Acquire)
                }
                _ => return,
            }
        };
        let cursors: Vec<_> = inner.cursors.lock().unwrap().clone();
        for c in &cursors {
            c.persist_through(oldest_end);
        }
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
                .all(|c| c.released() >= end);
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
    ///
    /// A slot file it cannot create for another reason than space (a
    /// read-only or failing folder) is tried again [`SEGMENT_RETRY`] later,
    /// and logged once, then summarised ([`Ring::summarise_spare_errors`]):
    /// tried and logged at every tick, it filled the log ten times a
    /// second under `fsync = "100ms"`.
    pub(super) fn prepare_spare(&self) {
        let slot = {
            let t = self.inner.table.read().unwrap();
            if t.spare_failed
                .is_some_and(|at| at.elapsed() < SEGMENT_RETRY)
            {
                return;
            }
            let enough = match t.no_space {
                // out of space: look again now and then (free segments or
                // not), not every tick
                Some(at) if at.elapsed() < NO_SPACE_RETRY => true,
                Some(_) => t.segs.len() + t.free.len() >= self.inner.slots,
                // (a ring over its slots after a lower `max_bytes` takes none)
                None => !t.free.is_empty() || t.segs.len() >= self.inner.slots,
            };
            if enough {
                return;
            }
            match t.unopened.last() {
                Some(s) => s,
                None => return,
            }
        };
        #[cfg(test)]
        self.inner
            .counters
            .spare_tries
            .fetch_add(1, Ordering::Relaxed);
        let seg = match self.open_slot(slot) {
            Ok(seg) => seg,
            Err(e) => {
                if is_out_of_space(&e) {
                    self.note_no_space(&mut self.inner.table.write().unwrap(), &e);
                    return;
                }
                self.inner.table.write().unwrap().spare_failed = Some(Instant::now());
                let admitted = self.inner.spare_errors.admit("segment", || e.to_string());
                if let Admit::Log { suppressed } = admitted {
                    self.count_spare_error_line();
                    tracing::warn!(slot, error = %e, suppressed,
                        "cannot prepare the next segment (tried again every {}s; repeats are summarised)",
                        SEGMENT_RETRY.as_secs());
                }
                return;
            }
        };
        let failed_before = self.inner.table.write().unwrap().spare_failed.take();
        if failed_before.is_some() {
            self.summarise_spare_errors(true);
            tracing::info!(slot, "the next segment could be prepared again");
        }
        let mut t = self.inner.table.write().unwrap();
        if t.no_space.take().is_some() {
            tracing::info!(
                dir = %self.inner.settings.dir.display(),
                "the buffer has space for new segments again"
            );
        }
        if t.unopened.remove(slot) {
            t.free.push(Arc::new(seg));
        }
    }

    /// Logs how often creating a segment failed since the last line (the
    /// windows that are over; all of them with `all`).
    pub(super) fn summarise_spare_errors(&self, all: bool) {
        let limiter = &self.inner.spare_errors;
        let summaries = if all { limiter.flush() } else { limiter.due() };
        for s in summaries {
            self.count_spare_error_line();
            tracing::warn!(suppressed = s.suppressed, last_error = %s.last,
                "cannot prepare the next segment: {} more times in the last {}s (not logged one by one)",
                s.suppressed, s.over.as_secs_f64().round());
        }
    }

    fn count_spare_error_line(&self) {
        #[cfg(test)]
        self.inner
            .counters
            .spare_error_lines
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Background thread: periodic fsync (interval policy), expiry, and
    /// preparing the next segment.
    pub(super) fn start_maintenance(&self) {
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
                #[cfg(test)]
                if ring.inner.maintenance_paused.load(Ordering::Relaxed) {
                    continue;
                }
                if flush {
                    if let Err(e) = ring.sync() {
                        tracing::error!(error = %e, "ring fsync failed");
                    }
                }
                ring.expire_old();
                ring.prepare_spare();
                ring.summarise_spare_errors(false);
                if recycle {
                    ring.recycle_oldest();
                }
            })
            .expect("spawn ring maintenance thread");
        *self.inner.maintenance.lock().unwrap() = Some(thread);
    }
}

/// The `relay.buffer.overflow` SECURITY event: `destination` lost `dropped` records
/// for `reason`, `dropped_total` over its life (this loss included). The
/// total is what a SIEM should read: a report is a record like any other,
/// and while its destination is down the ring can reuse it too, so a SIEM
/// may miss some of the reports but never the last one (that loss would
/// bring another report), which carries the sum of all of them.
pub(crate) fn overflow_notice(
    destination: &str,
    dropped: u64,
    dropped_total: u64,
    reason: &str,
) -> Event {
    let mut ev = Event::new(
        "SECURITY",
        Some("relay.buffer.overflow".into()),
        Severity::Warning,
    );
    ev.outcome = Some("failure".into());
    let mut md = serde_json::Map::new();
    md.insert("destination".into(), destination.into());
    md.insert("dropped".into(), dropped.into());
    md.insert("dropped_total".into(), dropped_total.into());
    md.insert("reason".into(), reason.into());
    ev.metadata = Some(md);
    ev.message = Some(format!(
        "destination `{destination}` lost {dropped} events: {reason} ({dropped_total} in all)"
    ));
    ev.source = Some(crate::event::SourceInfo {
        listener: "relay".into(),
        address: None,
    });
    ev
}
