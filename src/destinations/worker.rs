//! The one delivery loop every destination runs: read claimed ranges from its
//! cursor, filter and redact, gather batches (`batch_size`, `batch_bytes`,
//! `batch_timeout`, `send_when_quiet`), keep up to `concurrency` sends in flight, retry with
//! backoff and jitter (honouring `Retry-After`), dead-letter permanent
//! rejects, acknowledge, checkpoint, and keep the status counters.

use super::backoff;
use super::batch::{Batch, BatchEvent};
use super::dead_letter::DeadLetter;
use super::filter::Filter;
use super::redact::Redactor;
use super::settings::CommonSettings;
use super::sink::{Delivery, SendWatch, Sink};
use super::status::DestinationStatus;
use super::throttle::Throttle;
use crate::buffer::{Acker, Cursor, Ring};
use crate::sources::log_limit::{Admit, LogLimiter, SystemClock};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A built destination: its settings, its sink, and what the loop needs around it.
pub struct Destination {
    pub name: String,
    pub kind: String,
    pub common: CommonSettings,
    pub sink: Arc<dyn Sink>,
    pub filter: Filter,
    pub redactor: Option<Redactor>,
    pub dead_letter: DeadLetter,
    pub status: Arc<DestinationStatus>,
    /// The server's `Retry-After`, held for every batch of this destination.
    pub throttle: Arc<Throttle>,
    /// Its type and the settings its wire format was built from (all but
    /// the common keys: endpoint, credentials, …), as text: a reload that
    /// leaves them alone keeps [`throttle`](Self::throttle)'s wait.
    pub wire_settings: String,
}

/// How often acknowledgements are applied (the durable position moves, the
/// ring's space is released, the status is updated) and a checkpoint is
/// considered.
const COMMIT_EVERY: Duration = Duration::from_millis(100);

/// A checkpoint is written once this many records were acknowledged since
/// the last one, and otherwise at least every [`CHECKPOINT_AT_LEAST_EVERY`]
/// while any were: a crash re-sends at most about this many records, or
/// [`COMMIT_EVERY`]'s worth at high rates. Each write waits for two device
/// flushes (file and folder). Written every [`COMMIT_EVERY`] regardless, at
/// 5k events/s they were a fifth of the relay's CPU (1.1–1.4 µs per event
/// of 5.0–5.8, e2e bench `--rate 5000`), and ten flushes a second per
/// destination wear the flash of a small appliance.
const CHECKPOINT_RECORDS: u64 = 10_000;

/// See [`CHECKPOINT_RECORDS`].
const CHECKPOINT_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// A failing checkpoint write (a full disk, a folder made read-only) is
/// logged once, then summarised once a window with how often it failed:
/// tried every [`COMMIT_EVERY`], it wrote ten `error` lines a second.
const CHECKPOINT_ERROR_WINDOW: Duration = Duration::from_secs(60);

/// The fewest acknowledged records that make a checkpoint due, the last one
/// written `since` ago (0: any change, including the dropped count).
fn checkpoint_threshold(since: Duration) -> u64 {
    if since >= CHECKPOINT_AT_LEAST_EVERY {
        0
    } else {
        CHECKPOINT_RECORDS
    }
}

/// A gathering batch is topped up at most this often. Woken for each batch
/// instead, a destination that keeps up at 1M events/s woke every 0.5 ms
/// and cost 3% more CPU per event (e2e tcp_syslog, 6 alternating runs:
/// 1.56 against 1.51 µs); waking every 5 ms, it reads several batches a
/// time. Slower inputs take longer than this to fill a batch anyway, and
/// then the loop sleeps on until the record that fills it.
const GATHER_MIN: Duration = Duration::from_millis(5);

/// A batch being gathered.
#[derive(Default)]
struct Pending {
    events: Vec<BatchEvent>,
    /// With a `redact`: the same events as the ring holds them, before the
    /// redaction (see [`Stored`]); empty without one.
    originals: Vec<BatchEvent>,
    bytes: usize,
    ranges: Vec<Range<u64>>,
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self) -> (Batch, Stored, Vec<Range<u64>>) {
        self.bytes = 0;
        self.since = None;
        let originals = std::mem::take(&mut self.originals);
        (
            Batch::new(std::mem::take(&mut self.events)),
            Stored((!originals.is_empty()).then(|| Batch::new(originals))),
            std::mem::take(&mut self.ranges),
        )
    }
}

/// A batch's events as the ring holds them, before this destination's
/// redaction, index for index (`None`: the destination redacts nothing,
/// so they are the batch's own). The dead-letter file keeps these: a line
/// is replayed to every destination, and with the redacted copy every one
/// of them got the pseudonymised event, and the redacting one hashed its
/// fields twice.
struct Stored(Option<Batch>);

impl Stored {
    /// Event `i` of `batch` as stored.
    fn get<'a>(&'a self, batch: &'a Batch, i: usize) -> Option<&'a BatchEvent> {
        match &self.0 {
            Some(originals) => originals.events.get(i),
            None => batch.events.get(i),
        }
    }

    /// Every event of `batch` as stored.
    fn all<'a>(&'a self, batch: &'a Batch) -> &'a [BatchEvent] {
        match &self.0 {
            Some(originals) => &originals.events,
            None => &batch.events,
        }
    }

    /// Follows [`Batch::subset`].
    fn subset(&mut self, indices: &[usize]) {
        if let Some(o) = &mut self.0 {
            *o = o.subset(indices);
        }
    }

    /// Follows [`Batch::detach`].
    fn detach(&mut self) {
        if let Some(o) = &mut self.0 {
            o.detach();
        }
    }
}

/// Runs `dest` from `cursor` until `stop` turns true; then waits up to
/// `grace` for in-flight sends, checkpoints and closes the sink. Ranges whose
/// sends did not finish stay unacknowledged and are delivered after restart.
pub async fn run(
    dest: Arc<Destination>,
    mut cursor: Cursor,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let acker = cursor.acker();
    let mut tasks: JoinSet<Option<Abandoned>> = JoinSet::new();
    // at the grace's end: every batch still sending or waiting gives up
    let (abandon, abandon_rx) = watch::channel(false);
    let mut pending = Pending::default();
    let mut raw = Vec::new();
    let mut last_commit = Instant::now();
    let mut last_checkpoint = Instant::now();
    let errors = LogLimiter::new(CHECKPOINT_ERROR_WINDOW, Arc::new(SystemClock));
    // when the last batch left for its send
    let mut last_sent: Option<Instant> = None;
    let c = &dest.common;
    tracing::info!(destination = %dest.name, kind = %dest.kind, target = %dest.sink.target(), "destination started");
    loop {
        if *stop.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        // ingest waits for this `block` destination: release what it
        // acknowledged now, not at the next commit tick
        let held_up = cursor.holds_up_ingest() && {
            cursor.apply_acks();
            cursor.holds_up_ingest()
        };
        let mut read_any = false;
        if tasks.len() < c.concurrency && pending.events.len() < c.batch_size {
            raw.clear();
            let room = c.batch_size - pending.events.len();
            if let Some(r) = cursor.read(
                room,
                c.batch_bytes.0 as usize - pending.bytes.min(c.batch_bytes.0 as usize - 1),
                &mut raw,
            ) {
                read_any = true;
                pending.ranges.push(r);
                pending.since.get_or_insert_with(Instant::now);
                prepare(&dest, &mut raw, &mut pending);
            }
        }
        let full =
            pending.events.len() >= c.batch_size || pending.bytes >= c.batch_bytes.0 as usize;
        let timed_out = pending
            .since
            .is_some_and(|t| t.elapsed() >= c.batch_timeout.0);
        let only_filtered = pending.events.is_empty() && !pending.ranges.is_empty();
        let quiet = c.send_when_quiet
            && quiet_enough(last_sent, c.batch_timeout.0)
            && !pending.events.is_empty()
            && cursor.read_position() >= cursor.ring().next_seq();
        // the ring is full and waits for this destination: the records
        // that would fill the batch cannot come until it sends
        let unblock = held_up && !pending.events.is_empty();
        if tasks.len() < c.concurrency && (full || timed_out || only_filtered || quiet || unblock) {
            let (batch, stored, ranges) = pending.take();
            if batch.is_empty() {
                ranges.into_iter().for_each(|r| acker.ack(r));
            } else {
                last_sent = Some(Instant::now());
                dest.status.in_flight.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(deliver(
                    dest.clone(),
                    batch,
                    stored,
                    ranges,
                    acker.clone(),
                    Stopping {
                        stop: stop.clone(),
                        abandon: abandon_rx.clone(),
                        grace,
                    },
                ));
            }
            continue;
        }
        // ingest waits for this `block` destination's checkpoint (the ring
        // reuses only what checkpoints say was acknowledged): write it now
        let wanted = cursor.checkpoint_wanted();
        if wanted || last_commit.elapsed() >= COMMIT_EVERY {
            let min_records = match wanted {
                true => 0,
                false => checkpoint_threshold(last_checkpoint.elapsed()),
            };
            if commit_off_thread(&dest, &mut cursor, min_records, &errors).await {
                last_checkpoint = Instant::now();
            }
            for s in errors.due() {
                tracing::error!(destination = %dest.name, failures = s.suppressed, seconds = s.over.as_secs(),
                    error = %s.last, "writing checkpoint failed again and again (a crash now sends again what was delivered since the last one)");
            }
            last_commit = Instant::now();
        }
        if read_any && !full && tasks.len() < c.concurrency {
            continue; // more may be there right away
        }
        // nothing to do right now: wait for data, a finished send, the batch timeout or stop
        let wait = pending
            .since
            .map(|t| c.batch_timeout.0.saturating_sub(t.elapsed()))
            .unwrap_or(COMMIT_EVERY)
            .min(COMMIT_EVERY);
        let ring = cursor.ring().clone();
        // the record to wake for: the next one, or the one that fills the
        // gathering batch (not every append: see `records_to_fill`)
        let wake_for =
            cursor.read_position() + records_to_fill(pending.events.len(), pending.bytes, c) - 1;
        let not_before = (!pending.events.is_empty()).then(|| Instant::now() + GATHER_MIN);
        tokio::select! {
            _ = stop.changed() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = wait_for_record(&ring, wake_for, not_before, wait), if tasks.len() < c.concurrency => {}
            _ = tokio::time::sleep(wait), if tasks.len() >= c.concurrency => {}
            _ = cursor.held_up() => {}
        }
    }
    // drain in-flight sends within the grace period
    let deadline = tokio::time::Instant::now() + grace;
    let mut abandoned = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(Some(a)))) => abandoned.push(a),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(destination = %dest.name, in_flight = tasks.len(),
                    "grace period over: unfinished batches will be sent again after restart");
                // they give up at once, their sends dropped, and hand
                // their batches back
                let _ = abandon.send(true);
                while let Ok(Some(r)) = tokio::time::timeout(ABANDON_WAIT, tasks.join_next()).await
                {
                    abandoned.extend(r.ok().flatten());
                }
                tasks.abort_all();
                break;
            }
        }
    }
    keep_reused(&dest, cursor.ring().oldest_seq(), abandoned, &acker);
    commit(&dest, &mut cursor);
    dest.sink.close().await;
    tracing::info!(destination = %dest.name, "destination stopped");
}

/// How long the batches given up at the grace's end have to hand
/// themselves back (they only drop a send or a wait and return).
const ABANDON_WAIT: Duration = Duration::from_secs(1);

/// A batch given up at a stop, handed back by its task.
struct Abandoned {
    batch: Batch,
    stored: Stored,
    ranges: Vec<Range<u64>>,
}

/// What a batch's task watches of its destination's stop.
struct Stopping {
    /// The destination stops: see [`wait_for_attempt`].
    stop: watch::Receiver<bool>,
    /// The grace is over: give up now, in the middle of a send too.
    abandon: watch::Receiver<bool>,
    /// The destination's `shutdown_grace`.
    grace: Duration,
}

/// Batches given up at a stop whose records the ring already reused (a
/// `drop_oldest` destination behind a full ring keeps retrying a batch
/// from memory while the ring moves on): their only copy is that memory,
/// and the restart resumes past them. They go to the dead letters, counted
/// as `rejected`, and their ranges are acknowledged; the events of a batch
/// still in the ring are sent again after the restart, as any unfinished
/// batch. They were lost, in no counter (60 events in a tester's run).
fn keep_reused(dest: &Destination, oldest: u64, abandoned: Vec<Abandoned>, acker: &Acker) {
    const WHY: &str = "not delivered when the destination stopped, and the ring had \
                       already reused its record (kept here, not sent after the restart)";
    for a in abandoned {
        let items: Vec<_> = a
            .stored
            .all(&a.batch)
            .iter()
            .filter(|e| e.seq < oldest)
            .map(|e| (e, WHY))
            .collect();
        if items.is_empty() {
            continue;
        }
        let written = write_dead_letters(dest, &items);
        dest.status
            .rejected
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        tracing::warn!(destination = %dest.name, events = items.len(),
            "a batch given up at the stop had only its copy in memory: the ring reused its records; {}",
            dead_lettered(written));
        for r in a.ranges.into_iter().filter(|r| r.end <= oldest) {
            acker.ack(r);
        }
    }
}

/// Whether a destination with `send_when_quiet` whose last batch left at
/// `last_sent` (`None`: none yet) may send a partial batch at once, with
/// nothing more in the ring to add to it: when that was `batch_timeout`
/// ago or more. A batch gathers company only while the one before it is
/// recent, as Nagle's algorithm holds back only behind unacknowledged
/// data: an event after a quiet spell leaves at once (at 5k events/s in
/// bursts, the e2e bench's p50 latency fell from 12 ms to 1), while a
/// steady flow still goes out at most once per `batch_timeout` unless
/// batches fill.
fn quiet_enough(last_sent: Option<Instant>, batch_timeout: Duration) -> bool {
    last_sent.is_none_or(|t| t.elapsed() >= batch_timeout)
}

/// Waits up to `wait` for record `seq` ([`Ring::wait_for_data`]), but
/// returns no earlier than `not_before`.
async fn wait_for_record(ring: &Ring, seq: u64, not_before: Option<Instant>, wait: Duration) {
    let deadline = Instant::now() + wait;
    if let Some(t) = not_before {
        tokio::time::sleep_until(t.min(deadline).into()).await;
    }
    ring.wait_for_data(seq, deadline.saturating_duration_since(Instant::now()))
        .await;
}

/// How many more records a gathering batch of `n` records and `bytes` bytes
/// needs, at least: 1 when it is empty (the first record starts its
/// `batch_timeout`), else what fills `batch_size`, or `batch_bytes` at the
/// batch's mean record size. The loop
/// sleeps until that many are appended, the timeout or its 100 ms tick.
/// Woken on every append instead, a destination read a few records per
/// append at moderate rates and the wake-ups cost more than the reading
/// (10–12% of the relay's CPU per event at 50k/s); polled every 5 ms
/// instead, it woke 200 times a second however slow the input.
fn records_to_fill(n: usize, bytes: usize, c: &CommonSettings) -> u64 {
    if n == 0 {
        return 1;
    }
    let by_count = c.batch_size.saturating_sub(n);
    let mean = (bytes / n).max(1);
    let by_bytes = (c.batch_bytes.0 as usize)
        .saturating_sub(bytes)
        .div_ceil(mean);
    by_count.min(by_bytes).max(1) as u64
}

/// Filters and redacts read records, then moves them into the pending
/// batch. Records are kept or dropped in place and moved once, in bulk:
/// moving them one by one through the filter cost more than the filter
/// (a store-forwarding stall per record, once per destination).
fn prepare(dest: &Destination, records: &mut Vec<BatchEvent>, pending: &mut Pending) {
    records.retain_mut(|r| {
        if !dest.filter.accepts(&r.meta, r.body()) && !reports_own_loss(&dest.name, r) {
            dest.status.filtered.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if let Some(red) = &dest.redactor {
            match red.apply(r.body()) {
                Ok(b) => {
                    // the ring's copy, for the dead letters (see `Stored`)
                    pending.originals.push(r.clone());
                    r.set_body(b.into());
                }
                Err(e) => {
                    // never send an event whose redaction failed: it may carry what must not leave
                    let reason = format!("redaction failed: {e}");
                    write_dead_letters(dest, &[(&*r, reason.as_str())]);
                    dest.status.rejected.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
        pending.bytes += r.body().len();
        true
    });
    pending.events.append(records);
}

/// [`commit`] with the checkpoint written on tokio's blocking pool: the
/// write waits for two device flushes (file and directory), and blocking
/// this worker thread meanwhile stalled every other task on it (the other
/// destinations' loops and sends; on the e2e bench's fan-out to five, p50
/// latency 310-720 ms instead of 95-190). This loop waits for the write, so
/// one cursor's writes stay in order. Only a checkpoint that
/// [`Cursor::checkpoint_due`] finds due for `min_records`; true when one
/// was written.
/// A `relay.buffer.overflow` report of this destination's own loss, which
/// passes its filter: a filter that keeps only some events (`actions =
/// ["load.*"]`) hid every report of the events it lost, and README
/// promises the last report always reaches the SIEM. Checked only for
/// SECURITY records the filter refused.
fn reports_own_loss(name: &str, r: &BatchEvent) -> bool {
    if r.meta.category_name() != Some("SECURITY") {
        return false;
    }
    let body = r.body();
    let has = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
    let quoted = serde_json::to_string(name).unwrap_or_default();
    has(br#""action":"relay.buffer.overflow""#)
        && has(format!(r#""destination":{quoted}"#).as_bytes())
}

async fn commit_off_thread(
    dest: &Destination,
    cursor: &mut Cursor,
    min_records: u64,
    errors: &LogLimiter<String>,
) -> bool {
    let mut written = false;
    if let Some(write) = cursor.checkpoint_due(min_records) {
        match tokio::task::spawn_blocking(move || write.write().map(|()| write)).await {
            Ok(Ok(write)) => {
                cursor.checkpoint_written(write);
                written = true;
            }
            Ok(Err(e)) => {
                if let Admit::Log { .. } = errors.admit("checkpoint", || e.to_string()) {
                    tracing::error!(destination = %dest.name, error = %e, "writing checkpoint failed")
                }
            }
            Err(e) => {
                tracing::error!(destination = %dest.name, error = %e, "checkpoint write task failed")
            }
        }
    }
    update_status(dest, cursor);
    written
}

/// Writes the checkpoint here (at the end, when nothing else waits for this thread).
fn commit(dest: &Destination, cursor: &mut Cursor) {
    if let Err(e) = cursor.commit() {
        tracing::error!(destination = %dest.name, error = %e, "writing checkpoint failed");
    }
    update_status(dest, cursor);
}

fn update_status(dest: &Destination, cursor: &Cursor) {
    dest.status.lag.store(cursor.lag(), Ordering::Relaxed);
    dest.status
        .dropped
        .store(cursor.dropped(), Ordering::Relaxed);
}

/// Writes refused events to the dead-letter file; false when that failed
/// (each event is then in an `error` line of the log instead).
fn write_dead_letters(dest: &Destination, items: &[(&BatchEvent, &str)]) -> bool {
    if items.is_empty() {
        return true;
    }
    // the write ends with an fsync: off the runtime's few worker threads'
    // duty meanwhile, so other destinations' batches go on
    let write = || dest.dead_letter.write(items.iter().copied());
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let written = match multi_thread {
        true => tokio::task::block_in_place(write),
        false => write(),
    };
    if let Err(e) = written {
        dest.status
            .dead_letter_failed
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        // the events stay counted as rejected and are logged in full: not silent
        tracing::error!(destination = %dest.name, file = %dest.dead_letter.path().display(), error = %e,
            count = items.len(), "cannot write dead letters");
        for (ev, reason) in items {
            tracing::error!(destination = %dest.name, seq = ev.seq, reason, event = %String::from_utf8_lossy(ev.body()),
                "rejected event (dead-letter file unavailable)");
        }
        return false;
    }
    true
}

/// How a `warn` line ends for events just rejected: where they went.
fn dead_lettered(written: bool) -> &'static str {
    if written {
        "dead-lettered"
    } else {
        "NOT dead-lettered: the dead-letter write failed, the events are in the error lines above"
    }
}

/// What a send that left events to send again did.
#[derive(Clone, Copy)]
enum Round {
    /// Nothing of the batch was taken or judged: a failed attempt.
    Failed,
    /// Some events were accepted or refused for good; `at_once`: the rest
    /// was not judged and may go again without waiting; `failed`: the
    /// server answered that the rest failed (Elasticsearch's items failing
    /// 429/5xx, a request of several answered 503), a failed attempt of
    /// theirs, counted and logged as one (though not in `max_attempts`).
    Progressed { at_once: bool, failed: bool },
}

/// The failures a sink reports during one send of a batch (a 413 it
/// answers by halving the request): each is a failed attempt in the status
/// (`failure_count`, `consecutive_failures`, `last_error`), and logged as
/// the loop's own failed attempts are, the 1st, 2nd, 4th, 8th, … at
/// `warn` and the others at `debug`. Halving 1000 events down to single
/// ones took 1996 requests and 45 s against a slow server refusing
/// everything, all shown healthy and not logged.
struct SendFailures<'a> {
    dest: &'a Destination,
    events: usize,
    count: AtomicU32,
}

impl SendWatch for SendFailures<'_> {
    fn failed_attempt(&self, reason: &str) {
        self.dest.status.record_failure(reason);
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(destination = %self.dest.name, failed_requests = n, events = self.events,
                %reason, "delivery failed; sending again in parts");
        } else {
            tracing::debug!(destination = %self.dest.name, failed_requests = n, %reason,
                "request refused; sending again in parts");
        }
    }
}

/// The `info` line of a batch (`events` of it taken) delivered after
/// `failures` failed attempts; none after none.
fn delivered_after_retrying(dest: &Destination, attempt: u32, failures: u32, events: usize) {
    if failures > 0 {
        tracing::info!(destination = %dest.name, attempt, failed_attempts = failures,
            events, "delivered after retrying");
    }
}

/// Waits until `until` for a failed batch's next attempt. `false` when
/// the destination stops first (`stop`) and the attempt is not worth
/// waiting for: it would start after `grace`, or no other batch of the
/// destination was delivered since this one left (`batches_before`
/// delivered then). A batch given up is sent again after the restart, and
/// so is every batch acknowledged after it (the checkpoint moves only over
/// contiguously acknowledged ranges): one stuck batch given up at its
/// first failure while later ones went through sent them all again (800
/// duplicates in a tester's run), although the grace left time to retry.
/// A destination that delivers nothing stops at once.
async fn wait_for_attempt(
    dest: &Destination,
    until: Instant,
    stopping: &mut Stopping,
    batches_before: u64,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(until.into()) => return true,
        _ = stopping.stop.wait_for(|s| *s) => {}
    }
    let others_delivered = dest.status.sent_batches.load(Ordering::Relaxed) > batches_before;
    if !others_delivered || until > Instant::now() + stopping.grace {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(until.into()) => true,
        _ = stopping.abandon.wait_for(|a| *a) => false,
    }
}

/// Sends one batch until it is delivered, rejected, or the relay stops
/// (see [`wait_for_attempt`] for a stop while it fails); events refused go
/// to the dead letters as `stored`. A batch given up at a stop is handed
/// back (see [`keep_reused`]).
async fn deliver(
    dest: Arc<Destination>,
    mut batch: Batch,
    mut stored: Stored,
    ranges: Vec<Range<u64>>,
    acker: Acker,
    mut stopping: Stopping,
) -> Option<Abandoned> {
    let status = &dest.status;
    let batches_before = status.sent_batches.load(Ordering::Relaxed);
    let retry = dest.common.retry;
    let mut attempt: u32 = 0;
    // failed attempts of this batch, with progress or without: a batch
    // delivered after any is logged at `info`, and the first failure of
    // a part of it at `warn`
    let mut failures: u32 = 0;
    let mut detached = false;
    let done = loop {
        attempt += 1;
        // the server asked this destination (maybe another of its batches)
        // to wait: no batch of it calls before then
        if let Some(until) = dest.throttle.until() {
            if !detached {
                batch.detach();
                stored.detach();
                detached = true;
            }
            if !wait_for_attempt(&dest, until, &mut stopping, batches_before).await {
                break false;
            }
        }
        let watch = SendFailures {
            dest: &dest,
            events: batch.len(),
            count: AtomicU32::new(0),
        };
        let sent = tokio::select! {
            d = dest.sink.send_watched(&batch, &watch) => d,
            _ = stopping.abandon.wait_for(|a| *a) => break false,
        };
        let (after, reason, round) = match sent {
            Delivery::Delivered => {
                status.record_success(batch.len() as u64);
                delivered_after_retrying(&dest, attempt, failures, batch.len());
                break true;
            }
            Delivery::Rejected { reason } => {
                status.record_failure(&reason);
                status
                    .rejected
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let items: Vec<_> = stored
                    .all(&batch)
                    .iter()
                    .map(|e| (e, reason.as_str()))
                    .collect();
                let written = write_dead_letters(&dest, &items);
                tracing::warn!(destination = %dest.name, events = batch.len(), %reason,
                    "batch rejected; {}", dead_lettered(written));
                break true;
            }
            Delivery::Partial {
                retry: again,
                rejected,
                after,
                retry_reason,
            } => {
                let items: Vec<_> = rejected
                    .iter()
                    .filter_map(|(i, r)| stored.get(&batch, *i).map(|e| (e, r.as_str())))
                    .collect();
                let written = write_dead_letters(&dest, &items);
                status
                    .rejected
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                let accepted = batch.len() - again.len() - rejected.len();
                if let Some((_, first)) = rejected.first() {
                    tracing::warn!(destination = %dest.name, rejected = rejected.len(), accepted, retrying = again.len(),
                        first_reason = %first, "events rejected; {}", dead_lettered(written));
                }
                if again.is_empty() {
                    match rejected.first() {
                        // the server took none of them: a failing batch, not a success
                        Some((_, first)) if accepted == 0 => status.record_failure(&format!(
                            "all {} events rejected, the first: {first}",
                            rejected.len()
                        )),
                        _ => {
                            status.record_success(accepted as u64);
                            delivered_after_retrying(&dest, attempt, failures, accepted);
                        }
                    }
                    break true;
                }
                status.sent.fetch_add(accepted as u64, Ordering::Relaxed);
                batch = batch.subset(&again);
                stored.subset(&again);
                let round = match (accepted, rejected.is_empty()) {
                    (0, true) => Round::Failed,
                    // refused as a whole for the events just dead-lettered
                    // (Splunk HEC's code 6/12/13): the others were not judged
                    (0, false) => Round::Progressed {
                        at_once: after.is_none(),
                        failed: retry_reason.is_some(),
                    },
                    _ => Round::Progressed {
                        at_once: false,
                        failed: retry_reason.is_some(),
                    },
                };
                // the server's reason, for `last_error` and the give-up reason
                let reason = match retry_reason {
                    Some(r) => format!("{} events to retry: {r}", again.len()),
                    None => format!("{} events to retry", again.len()),
                };
                (after, reason, round)
            }
            Delivery::Retry { reason, after } => (after, reason, Round::Failed),
        };
        if let Round::Progressed { .. } = round {
            // the server took or judged some of the batch: not a failed
            // attempt of the rest. `max_attempts` counts rounds in a row
            // without progress, and the backoff starts over: counted as
            // failures, a HEC batch with a few bad events gave up on the
            // good ones after `max_attempts` of them, and without a limit
            // it crawled at `max_backoff` per bad event while `/health`
            // called the destination unhealthy.
            attempt = 0;
        }
        let failed = match round {
            Round::Failed => true,
            Round::Progressed { failed, .. } => failed,
        };
        if failed {
            // the events sent again failed at the server (with progress:
            // an item's 429, a request's 503): `last_error` tells why, and
            // `/health` shows it, as for a batch that failed as a whole
            status.record_failure(&reason);
            failures += 1;
        }
        if retry.max_attempts > 0 && attempt >= retry.max_attempts {
            let why = format!("gave up after {attempt} attempts: {reason}");
            status
                .rejected
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let items: Vec<_> = stored
                .all(&batch)
                .iter()
                .map(|e| (e, why.as_str()))
                .collect();
            let written = write_dead_letters(&dest, &items);
            tracing::warn!(destination = %dest.name, events = batch.len(), reason = %why,
                "batch given up; {}", dead_lettered(written));
            break true;
        }
        status
            .retried
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !detached {
            // it waits: hold its bytes, not the ring's segments (see `Batch::detach`)
            batch.detach();
            stored.detach();
            detached = true;
        }
        let wait = match round {
            Round::Progressed { at_once: true, .. } => Duration::ZERO,
            _ => backoff::delay(&retry, attempt.max(1), after),
        };
        if after.is_some() && dest.throttle.hold_until(Instant::now() + wait) {
            tracing::info!(destination = %dest.name, wait_ms = wait.as_millis() as u64,
                "the server asked to wait (Retry-After): every batch of this destination waits");
        }
        if let Round::Progressed { failed, .. } = round {
            if failed && failures == 1 {
                // the batch's first failure (warned once per batch: each
                // round that takes some events starts `attempt` over)
                tracing::warn!(destination = %dest.name, events = batch.len(), %reason,
                    wait_ms = wait.as_millis() as u64, "delivery failed for part of a batch; retrying it");
            } else {
                tracing::debug!(destination = %dest.name, events = batch.len(), %reason, wait_ms = wait.as_millis() as u64, "sending the rest of a batch again");
            }
        } else if attempt.is_power_of_two() {
            // the first failure, then ever more rarely: 2, 4, 8, … attempts
            tracing::warn!(destination = %dest.name, attempt, events = batch.len(), %reason, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
        } else {
            tracing::debug!(destination = %dest.name, attempt, %reason, wait_ms = wait.as_millis() as u64, "retrying batch");
        }
        let until = Instant::now() + wait;
        if !wait_for_attempt(&dest, until, &mut stopping, batches_before).await {
            break false;
        }
    };
    status.in_flight.fetch_sub(1, Ordering::Relaxed);
    if done {
        ranges.into_iter().for_each(|r| acker.ack(r));
        return None;
    }
    Some(Abandoned {
        batch,
        stored,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_waits_for_enough_records_for_at_most_a_second() {
        assert_eq!(checkpoint_threshold(Duration::ZERO), CHECKPOINT_RECORDS);
        assert_eq!(
            checkpoint_threshold(CHECKPOINT_AT_LEAST_EVERY - Duration::from_millis(1)),
            CHECKPOINT_RECORDS
        );
        assert_eq!(checkpoint_threshold(CHECKPOINT_AT_LEAST_EVERY), 0);
        assert!(COMMIT_EVERY < CHECKPOINT_AT_LEAST_EVERY);
    }

    /// A destination's own overflow reports pass its filter; others'
    /// reports and other SECURITY events do not get past it this way.
    #[test]
    fn own_loss_reports_are_told_apart() {
        use crate::event::{Event, Severity};
        let record = |ev: Event| {
            let meta = ev.meta();
            BatchEvent::new(1, meta, bytes::Bytes::from(ev.encode().into_body()))
        };
        let own = record(crate::buffer::ring::overflow_notice(
            "siem \"a\"",
            5,
            9,
            "buffer full",
        ));
        assert!(reports_own_loss("siem \"a\"", &own));
        assert!(!reports_own_loss("siem", &own));
        let other = record(crate::buffer::ring::overflow_notice(
            "b",
            5,
            9,
            "buffer full",
        ));
        assert!(!reports_own_loss("siem \"a\"", &other));
        let mut plain = Event::new(
            "SECURITY",
            Some("relay.buffer.damage".into()),
            Severity::Warning,
        );
        plain.message = Some("destination siem".into());
        assert!(!reports_own_loss("siem", &record(plain)));
    }

    #[test]
    fn a_gathering_batch_waits_for_the_records_that_fill_it() {
        let c = CommonSettings::default(); // 500 records, 1 MiB
        assert_eq!(records_to_fill(0, 0, &c), 1, "empty: the first record");
        assert_eq!(records_to_fill(100, 30_000, &c), 400, "by count");
        // 100 records of 8 KiB: 128 fill the megabyte
        assert_eq!(records_to_fill(100, 100 << 13, &c), 28, "by bytes");
        assert_eq!(records_to_fill(100, 1 << 20, &c), 1, "at least one");
        assert_eq!(records_to_fill(500, 1000, &c), 1);
    }
}
