//! The ring's append path: one writer at a time encodes a batch's records
//! into its staging buffer, writes them with one `pwrite` per segment
//! touched, and publishes them (see the parent module for the order and
//! the all-or-nothing rule). Appends that find the writer busy queue and
//! are run by the holder ([`Ring::append_owned`]).

use super::*;

impl Ring {
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
    pub(super) fn append_holding(
        &self,
        mut w: std::sync::MutexGuard<'_, Writer>,
        events: &[EncodedEvent],
        sizes: &[usize],
    ) -> Result<Range<u64>, AppendError> {
        let (r, synced) = self.append_locked(&mut w, events, sizes);
        drop(w);
        let r = self.after_append(events, sizes, r, synced);
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
            let failed: Vec<(Arc<Segment>, String)> = flushes
                .into_iter()
                .filter_map(|synced| {
                    let seg = synced.0.clone();
                    self.flush_synced(synced)
                        .err()
                        .map(|e| (seg, e.to_string()))
                })
                .collect();
            for (q, r, synced) in done {
                // an append whose range did not reach the disk is not durable
                let failed_flush = synced.and_then(|(seg, _, _)| {
                    failed
                        .iter()
                        .find(|f| Arc::ptr_eq(&f.0, &seg))
                        .map(|f| f.1.clone())
                });
                let r = match (r, failed_flush) {
                    (Ok(_), Some(e)) => Err(AppendError::NotDurable(e)),
                    (r, _) => r,
                };
                let r = self.after_append(&q.events, &q.sizes, r, None);
                // the waiter may be gone (its task dropped): nothing to tell
                let _ = q.done.send((q.events, r));
            }
        }
    }

    /// The flush of an append's range under `fsync = always`. On failure
    /// the records stay published (a destination may have sent them), but
    /// the append is reported [`AppendError::NotDurable`].
    pub(super) fn flush_synced(&self, (seg, from, to): Synced) -> io::Result<()> {
        #[cfg(test)]
        self.inner
            .counters
            .append_flushes
            .fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        if self.inner.counters.fail_flushes.load(Ordering::Relaxed) {
            return Err(io::Error::other("injected flush failure"));
        }
        seg.flush_range(from, to - from).inspect_err(|e| {
            tracing::error!(error = %e, "flushing appended records to disk failed (fsync = always)");
        })
    }

    /// Each record's length, or why one cannot be stored.
    pub(super) fn record_sizes(&self, events: &[EncodedEvent]) -> Result<Vec<usize>, AppendError> {
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
    pub(super) fn append_locked(
        &self,
        w: &mut Writer,
        events: &[EncodedEvent],
        sizes: &[usize],
    ) -> (Result<Range<u64>, AppendError>, Option<Synced>) {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return (Err(AppendError::Closed), None);
        }
        let rolls = rolls_needed(w.off, sizes, w.active.seg.len(), inner.seg_size);
        if rolls > 0 {
            if let Err(e) = self.can_take_segments(rolls) {
                if matches!(e, AppendError::Full(_)) {
                    inner.counters.full_refusals.fetch_add(1, Ordering::Relaxed);
                }
                return (Err(e), None);
            }
        }
        let mut taken = Vec::new();
        let written: io::Result<(u64, usize)> = (|| {
            for e in events {
                self.write_record(w, e)?;
            }
            let end = w.next_seq;
            let notice_bytes = self.write_notices(w, &mut taken)?;
            self.flush_stage(w)?;
            Ok((end, notice_bytes))
        })();
        let end = match written {
            Ok((end, notice_bytes)) => {
                // the ring's own records (overflow and damage reports)
                inner.counters.add_appended(taken.len(), notice_bytes);
                self.notices_written(w, taken.len());
                end
            }
            Err(e) => {
                self.abort(w, taken);
                tracing::error!(error = %e, "buffer write failed; the append is refused");
                return (Err(AppendError::Io(e.to_string())), None);
            }
        };
        let start = end - events.len() as u64;
        let (synced, sealed) = self.publish(w);
        match sealed {
            Ok(()) => (Ok(start..end), synced),
            Err(e) => (Err(AppendError::NotDurable(e.to_string())), synced),
        }
    }

    /// After a successful append, with the writer lock free: the flush under
    /// `fsync = always`, the counters, and waking the readers.
    pub(super) fn after_append(
        &self,
        events: &[EncodedEvent],
        sizes: &[usize],
        mut r: Result<Range<u64>, AppendError>,
        synced: Option<Synced>,
    ) -> Result<Range<u64>, AppendError> {
        if r.as_ref().is_err_and(|e| !e.appended()) {
            return r;
        }
        if let Some(synced) = synced {
            if let Err(e) = self.flush_synced(synced) {
                if r.is_ok() {
                    r = Err(AppendError::NotDurable(e.to_string()));
                }
            }
        }
        self.inner
            .counters
            .add_appended(events.len(), sizes.iter().sum());
        self.wake_data_waiters();
        r
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

    /// Encodes a record into the staging buffer, rolling first (after
    /// writing what is staged for the old segment) when it does not fit.
    pub(super) fn write_record(&self, w: &mut Writer, e: &EncodedEvent) -> io::Result<()> {
        let len = e.record_len();
        // the active segment's own size: one from before a `segment_bytes`
        // change is filled to its end (its successors have the new size)
        if w.off + len > w.active.seg.len() {
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
    pub(super) fn flush_stage(&self, w: &mut Writer) -> io::Result<()> {
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
    /// append fails). Returns the bytes of their records.
    pub(super) fn write_notices(
        &self,
        w: &mut Writer,
        taken: &mut Vec<Event>,
    ) -> io::Result<usize> {
        let mut bytes = 0;
        while let Some(ev) = w.notices.pop_front() {
            let enc = ev.encode();
            let len = enc.record_len();
            if len > self.inner.seg_size - DATA_START {
                tracing::error!(len, "dropping a notice larger than a segment");
                continue;
            }
            if w.off + len > w.active.seg.len() && self.can_take_segments(1).is_err() {
                w.notices.push_front(ev);
                break;
            }
            taken.push(ev);
            self.write_record(w, &enc)?;
            bytes += len;
        }
        Ok(bytes)
    }

    /// After `n` queued notices were written (and are published with
    /// the records): those of them kept on disk until now are no longer.
    pub(super) fn notices_written(&self, w: &mut Writer, n: usize) {
        if w.pending_saved == 0 || n == 0 {
            return;
        }
        w.pending_saved = w.pending_saved.saturating_sub(n).min(w.notices.len());
        let rest: Vec<Event> = w.notices.iter().take(w.pending_saved).cloned().collect();
        if let Err(e) = super::recovery::save_pending(&self.inner.settings.dir, &rest) {
            tracing::warn!(error = %e, "cannot note the ring's reports as written (the next start writes them again)");
        }
    }

    /// Undoes a failed append: nothing of it is published; the writer goes
    /// back to the active segment's published end (zeroing, best effort, what
    /// it wrote past the published ends so recovery cannot bring it back);
    /// segments it rolled away from are sealed at their published end; the
    /// notices it had taken are queued again.
    pub(super) fn abort(&self, w: &mut Writer, taken: Vec<Event>) {
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
    /// Publishes what the writer wrote. Under `fsync = always` it flushes
    /// the segments the append rolled away from (the second value: the
    /// first failure) and returns the active segment's range to flush once
    /// the writer lock is free.
    pub(super) fn publish(&self, w: &mut Writer) -> (Option<Synced>, io::Result<()>) {
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
            let mut sealed = Ok(());
            for (seg, a, b) in std::mem::take(&mut w.dirty_sealed) {
                if let Err(e) = seg.flush_range(a, b - a) {
                    tracing::error!(error = %e, "flushing a filled segment to disk failed (fsync = always)");
                    sealed = sealed.and(Err(e));
                }
            }
            let r = (w.active.seg.clone(), w.dirty_from, w.off);
            w.dirty_from = w.off;
            (Some(r), sealed)
        } else {
            (None, Ok(()))
        }
    }
}

/// Capacity the staging buffer keeps between appends.
pub(super) const STAGE_KEEP: usize = 4 << 20;

/// How many new segments appending records of `sizes` from offset `off` of
/// an active segment of `active_len` bytes takes, new ones of `seg_size`.
pub(super) fn rolls_needed(
    mut off: usize,
    sizes: &[usize],
    active_len: usize,
    seg_size: usize,
) -> usize {
    let mut rolls = 0;
    let mut capacity = active_len;
    for &s in sizes {
        if off + s > capacity {
            rolls += 1;
            off = DATA_START;
            capacity = seg_size;
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
pub(super) fn write_padded(seg: &Segment, off: usize, buf: &mut Vec<u8>) -> io::Result<()> {
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
pub(super) fn zero_tail(seg: &Segment, from: usize, to: usize, scratch: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_are_counted() {
        assert_eq!(rolls_needed(DATA_START, &[100, 100], 1000, 1000), 0);
        assert_eq!(rolls_needed(900, &[100, 100], 1000, 1000), 1);
        assert_eq!(rolls_needed(DATA_START, &[600, 600, 600], 1000, 1000), 2);
        // an active segment from before a `segment_bytes` change: its own size
        assert_eq!(rolls_needed(400, &[100, 100], 500, 1000), 1);
        assert_eq!(rolls_needed(400, &[600, 600, 600], 500, 1000), 3);
        assert_eq!(rolls_needed(400, &[100, 100], 4000, 1000), 0);
    }
}
