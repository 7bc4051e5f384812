//! Opening a ring after whatever happened to it: every segment's records are
//! validated (CRC32C, sequence order); a torn tail is cut; damaged records are
//! skipped and the valid ones around them kept; a segment whose header cannot
//! be read is moved to `quarantine/` and reported, never crash-looped on.
//! [`inspect`] does the same reading without changing anything (`buffer verify`).
//!
//! Damage stays on disk until its segment is reused, so every start finds
//! it again: each piece is named ([`RecoveryReport::damage_items`]) and the
//! names already reported are kept in [`REPORTED_DAMAGE_FILE`], so that a
//! SECURITY notice (and `buffer verify`'s exit status) speaks only of new
//! damage.
//!
//! Records that `buffer salvage` brought back from a quarantined segment
//! are in the ring again (as new records), so the sequence numbers they had
//! are not lost: [`SALVAGED_FILE`] keeps those numbers, and the gaps and
//! jumps they fill count as no damage.
//!
//! The newest segment quarantined leaves no gap yet: the numbers its
//! records had are skipped where the relay writes on
//! ([`RecoveryReport::skipped`]). They are reported lost at once, and
//! noted by number (a `seqs FROM TO` line among the reported damage), so
//! the jump or gap that later starts find there is no news.
//!
//! The SECURITY events a start queues go into the ring with its first
//! append; until then they are kept in [`PENDING_NOTICES_FILE`], and a
//! start that finds the file (the one before stopped first) queues them
//! again.

use super::checkpoint;
use super::ring::{io_err, BufferError, SegInfo, Table, UnopenedSlots, Writer};
use super::scan::{scan, Damage, ScanReport};
use super::segment::{parse_slot_file_name, Segment, SegmentHeader, DATA_START};
use crate::event::{now_millis, Event, Severity};
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one segment held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentReport {
    pub file: String,
    pub id: u64,
    pub first_seq: u64,
    pub records: u64,
    pub last_seq: Option<u64>,
    pub bytes_used: usize,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    pub damage: Vec<(usize, usize, u64)>,
    /// For each `damage` entry, the sequence number of the valid record
    /// after it: the numbers lost are the entry's count just below it.
    #[serde(skip)]
    pub damage_seq_after: Vec<u64>,
    pub torn_tail_bytes: usize,
    /// Sequence number of the torn record (skipped, never reused).
    pub torn_seq: Option<u64>,
}

/// A segment file moved aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub file: String,
    pub moved_to: String,
    pub reason: String,
    pub bytes: u64,
    /// Valid records still found inside (recoverable with `buffer salvage`).
    pub salvageable_records: u64,
}

/// What opening (or inspecting) the ring found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    pub segments: Vec<SegmentReport>,
    pub quarantined: Vec<Quarantined>,
    /// Records lost between segments (sequence gaps).
    pub lost_between_segments: u64,
    pub next_seq: u64,
    /// The [`DamageItem::key`]s an earlier start already reported.
    pub reported_before: BTreeSet<String>,
    /// A destination's checkpoint above the ring's last record: (the
    /// checkpoint's sequence number, the ring's end). The records below it
    /// count as delivered, which is right after a crash that lost the
    /// ring's tail after they were acknowledged, and wrong for a checkpoint
    /// file that was changed: either way, it is said.
    pub checkpoint_ahead: Option<(u64, u64)>,
    /// Sequence numbers (`from..to` runs, sorted, disjoint) of the records
    /// `buffer salvage` re-appended from quarantined segments
    /// ([`SALVAGED_FILE`]): not lost where they leave a gap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub salvaged: Vec<(u64, u64)>,
    /// Sequence numbers `from..to` that the segments this open quarantined
    /// held past the last record left in the ring: given to no record
    /// again, lost (less those salvaged), and reported now, as the gap
    /// they leave is found only once the ring writes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<(u64, u64)>,
}

/// The file in the ring's folder naming the damage already reported, one
/// [`DamageItem::key`] a line.
pub const REPORTED_DAMAGE_FILE: &str = "damage-reported";

/// The file in the ring's folder naming the sequence numbers of the
/// records `buffer salvage` re-appended, one `from to` run a line (`to`
/// not included).
pub const SALVAGED_FILE: &str = "salvaged-seqs";

/// The salvaged runs of sequence numbers (none when the file is missing;
/// lines that do not parse are ignored), sorted and merged.
pub fn load_salvaged(dir: &Path) -> Vec<(u64, u64)> {
    let runs = std::fs::read_to_string(dir.join(SALVAGED_FILE))
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    let (a, b) = l.split_once(' ')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    merge_runs(runs)
}

/// Adds `runs` to [`SALVAGED_FILE`] (written whole, then renamed into
/// place), dropping the runs that end at or below `oldest`: numbers the
/// ring no longer holds can leave no gap.
pub fn add_salvaged(dir: &Path, runs: &[(u64, u64)], oldest: u64) -> std::io::Result<()> {
    let mut all = load_salvaged(dir);
    all.extend_from_slice(runs);
    let all: Vec<(u64, u64)> = merge_runs(all)
        .into_iter()
        .filter(|&(_, to)| to > oldest)
        .collect();
    let path = dir.join(SALVAGED_FILE);
    let tmp = dir.join(format!("{SALVAGED_FILE}.tmp"));
    let text: String = all.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Sorts `runs` and merges those that touch or overlap; empty ones go.
pub fn merge_runs(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.retain(|(a, b)| a < b);
    runs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for (a, b) in runs {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The file in the ring's folder holding the SECURITY events a start
/// queued and no append has written yet, one encoded event a line.
pub const PENDING_NOTICES_FILE: &str = "notices-pending";

/// The events in [`PENDING_NOTICES_FILE`] (none when it is missing; lines
/// that do not decode are left out).
pub fn load_pending(dir: &Path) -> Vec<Event> {
    std::fs::read(dir.join(PENDING_NOTICES_FILE))
        .map(|t| {
            t.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| Event::decode(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `events` to [`PENDING_NOTICES_FILE`] (whole, then renamed into
/// place, and flushed: they are reports of loss); none removes it.
pub fn save_pending(dir: &Path, events: &[Event]) -> std::io::Result<()> {
    let path = dir.join(PENDING_NOTICES_FILE);
    if events.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = dir.join(format!("{PENDING_NOTICES_FILE}.tmp"));
    let mut text = Vec::new();
    for ev in events {
        text.extend_from_slice(ev.encode().body());
        text.push(b'\n');
    }
    let file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut &file, &text)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

/// How many of the numbers `from..to` the (disjoint) `runs` hold.
fn salvaged_within(runs: &[(u64, u64)], from: u64, to: u64) -> u64 {
    runs.iter()
        .map(|&(a, b)| b.min(to).saturating_sub(a.max(from)))
        .sum()
}

/// The `seqs FROM TO` runs among reported damage keys, sorted and merged.
fn reported_seqs(keys: &BTreeSet<String>) -> Vec<(u64, u64)> {
    let runs = keys
        .iter()
        .filter_map(|k| {
            let (a, b) = k.strip_prefix(SEQS_KEY)?.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    merge_runs(runs)
}

/// One piece of damage recovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageItem {
    /// Names it across starts: its segment's id and where it is.
    pub key: String,
    pub records: u64,
    pub torn_bytes: usize,
    /// The sequence numbers it skips, `from..to` (none for a torn tail).
    pub seqs: (u64, u64),
}

/// The key of [`RecoveryReport::skipped`]'s damage item: it names the
/// numbers, as the gap they leave later has a key of its own.
const SEQS_KEY: &str = "seqs ";

/// The damage keys an earlier start reported (none when the file is missing or unreadable).
pub fn load_reported(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(REPORTED_DAMAGE_FILE))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Records `keys` as reported (written whole, then renamed into place).
pub fn save_reported(dir: &Path, keys: &BTreeSet<String>) -> std::io::Result<()> {
    let path = dir.join(REPORTED_DAMAGE_FILE);
    if keys.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = dir.join(format!("{REPORTED_DAMAGE_FILE}.tmp"));
    let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

impl RecoveryReport {
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }
    pub fn torn_tail_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.torn_tail_bytes).sum()
    }
    /// Records lost: damaged or missing in a segment, or between segments
    /// (less those `buffer salvage` brought back).
    pub fn damaged_records(&self) -> u64 {
        self.damage_items().iter().map(|d| d.records).sum()
    }
    /// Every piece of damage in the live segments: damaged records, torn
    /// tails, and sequence gaps between segments; and the numbers the
    /// segments quarantined now held past the ring's last record
    /// ([`skipped`](Self::skipped)). A piece's records are those lost: the
    /// numbers it skips less those salvaged (its key stays what it was
    /// before the salvage).
    pub fn damage_items(&self) -> Vec<DamageItem> {
        let mut out = Vec::new();
        for s in &self.segments {
            for (i, ((off, len, n), lost)) in s.damage.iter().zip(self.lost_in(s)).enumerate() {
                let after = s.damage_seq_after.get(i).copied();
                out.push(DamageItem {
                    key: format!("damage {} {off} {len} {n}", s.id),
                    records: lost,
                    torn_bytes: 0,
                    seqs: after.map_or((0, 0), |a| (a.saturating_sub(*n), a)),
                });
            }
            if s.torn_tail_bytes > 0 {
                out.push(DamageItem {
                    key: format!("torn {} {}", s.id, s.torn_tail_bytes),
                    records: 0,
                    torn_bytes: s.torn_tail_bytes,
                    seqs: (0, 0),
                });
            }
        }
        for w in self.segments.windows(2) {
            if let Some(l) = w[0].last_seq {
                let lost = gap_lost(l, w[1].first_seq, &self.salvaged);
                if lost > 0 {
                    out.push(DamageItem {
                        key: format!("gap {} {}", w[0].id, w[1].id),
                        records: lost,
                        torn_bytes: 0,
                        seqs: (l.saturating_add(1), w[1].first_seq),
                    });
                }
            }
        }
        if let Some((from, to)) = self.skipped {
            out.push(DamageItem {
                key: format!("{SEQS_KEY}{from} {to}"),
                records: (to - from) - salvaged_within(&self.salvaged, from, to),
                torn_bytes: 0,
                seqs: (from, to),
            });
        }
        out
    }

    /// For each of `segment`'s [`damage`](SegmentReport::damage) entries,
    /// the records lost: the numbers it skips less those salvaged.
    pub fn lost_in<'a>(&'a self, segment: &'a SegmentReport) -> impl Iterator<Item = u64> + 'a {
        segment.damage.iter().enumerate().map(|(i, &(_, _, n))| {
            let back = segment.damage_seq_after.get(i).map_or(0, |&after| {
                salvaged_within(&self.salvaged, after.saturating_sub(n), after)
            });
            n - back
        })
    }

    /// The numbers an earlier start reported lost by number (the
    /// [`skipped`](Self::skipped) of its open), sorted and merged.
    pub fn reported_seqs(&self) -> Vec<(u64, u64)> {
        reported_seqs(&self.reported_before)
    }

    /// The damage an earlier start did not report: records, torn bytes.
    /// A gap after a segment whose torn tail an earlier start reported is
    /// that tear, cut: the torn record's number is not reused, so the cut
    /// leaves the gap (it was reported a second time, as lost records).
    /// Numbers an earlier start reported by number (the newest segment
    /// quarantined) are not news in the jump or gap they leave.
    pub fn new_damage(&self) -> (u64, usize) {
        let reported_tear = |segment: &str| {
            let torn = format!("torn {segment} ");
            self.reported_before.iter().any(|k| k.starts_with(&torn))
        };
        let known = merge_runs([self.salvaged.clone(), self.reported_seqs()].concat());
        self.damage_items()
            .iter()
            .filter(|d| !self.reported_before.contains(&d.key))
            .filter(|d| match d.key.strip_prefix("gap ") {
                Some(ids) => !ids.split(' ').next().is_some_and(reported_tear),
                None => true,
            })
            .map(|d| match d.seqs {
                (from, to) if from < to => {
                    let records = (to - from) - salvaged_within(&known, from, to);
                    (records.min(d.records), d.torn_bytes)
                }
                _ => (d.records, d.torn_bytes),
            })
            .fold((0, 0), |(r, t), (dr, dt)| (r + dr, t + dt))
    }

    /// What to keep in [`REPORTED_DAMAGE_FILE`] once this open's damage is
    /// reported: the key of every piece of damage, and the numbers earlier
    /// starts reported by number that the ring may still show as a gap
    /// (above its oldest record).
    pub fn reported_keys(&self) -> BTreeSet<String> {
        let oldest = self.oldest_seq().unwrap_or(0);
        let mut keys: BTreeSet<String> = self.damage_items().into_iter().map(|d| d.key).collect();
        keys.extend(
            self.reported_seqs()
                .into_iter()
                .filter(|&(_, to)| to > oldest)
                .map(|(from, to)| format!("{SEQS_KEY}{from} {to}")),
        );
        keys
    }

    /// Whether there is anything not reported before: a quarantined
    /// segment or new damage.
    pub fn has_new_damage(&self) -> bool {
        !self.quarantined.is_empty() || self.new_damage() != (0, 0)
    }

    /// True when nothing was cut, skipped or quarantined.
    pub fn is_clean(&self) -> bool {
        self.quarantined.is_empty() && self.torn_tail_bytes() == 0 && self.damaged_records() == 0
    }
    pub fn oldest_seq(&self) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| s.records > 0)
            .map(|s| s.first_seq)
    }
    pub fn newest_seq(&self) -> Option<u64> {
        self.segments.iter().filter_map(|s| s.last_seq).max()
    }

    /// SECURITY events describing damage found, appended to the stream on open.
    pub fn notices(&self) -> Vec<Event> {
        self.notices_after_salvage(&[])
    }

    /// [`notices`](Self::notices) once `buffer salvage` has re-appended
    /// the records of `salvaged` (quarantined files, moved since to
    /// `quarantine/salvaged/`): a file quarantined by this open and salvaged
    /// is no quarantine to report (the salvage reports what it brought
    /// back), and the records it brought back are no damage (with
    /// [`salvaged`](RecoveryReport::salvaged) updated).
    pub fn notices_after_salvage(&self, salvaged: &[PathBuf]) -> Vec<Event> {
        let mut out = Vec::new();
        let was_salvaged = |q: &Quarantined| {
            salvaged
                .iter()
                .any(|f| f.as_path() == Path::new(&q.moved_to))
        };
        for q in self.quarantined.iter().filter(|q| !was_salvaged(q)) {
            let mut ev = Event::new(
                "SECURITY",
                Some("relay.buffer.quarantine".into()),
                Severity::Error,
            );
            ev.outcome = Some("failure".into());
            ev.message = Some(format!(
                "segment {} quarantined ({}): {} bytes moved to {}, {} valid records inside (run `siem-relay buffer salvage`)",
                q.file, q.reason, q.bytes, q.moved_to, q.salvageable_records
            ));
            ev.metadata = Some(json_map(&[
                ("file", q.file.clone().into()),
                ("reason", q.reason.clone().into()),
                ("bytes", q.bytes.into()),
                ("salvageable_records", q.salvageable_records.into()),
            ]));
            out.push(ev);
        }
        // what an earlier start reported is not news
        let (damaged, torn) = self.new_damage();
        if damaged > 0 || torn > 0 {
            let mut ev = Event::new(
                "SECURITY",
                Some("relay.buffer.damage".into()),
                Severity::Warning,
            );
            ev.message = Some(format!(
                "ring recovery skipped {damaged} damaged records and cut {torn} bytes of torn tail"
            ));
            ev.metadata = Some(json_map(&[
                ("damaged_records", damaged.into()),
                ("torn_tail_bytes", (torn as u64).into()),
            ]));
            out.push(ev);
        }
        out
    }
}

fn json_map(kv: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    kv.iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

pub(crate) struct Recovered {
    pub table: Table,
    pub writer: Writer,
    pub report: RecoveryReport,
    pub committed: u64,
}

fn list_slots(dir: &Path) -> Result<Vec<usize>, BufferError> {
    let mut slots = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))? {
        let entry = entry.map_err(io_err("reading data dir"))?;
        if let Some(slot) = entry.file_name().to_str().and_then(parse_slot_file_name) {
            slots.push(slot);
        }
    }
    slots.sort_unstable();
    Ok(slots)
}

fn segment_report(file: String, h: &SegmentHeader, data: &[u8]) -> SegmentReport {
    let mut oldest = None;
    let mut newest = None;
    let rep: ScanReport = scan(data, DATA_START, h.first_seq, |_, r| {
        oldest.get_or_insert(r.meta.received_ms);
        newest = Some(r.meta.received_ms);
    });
    SegmentReport {
        file,
        id: h.id,
        first_seq: h.first_seq,
        records: rep.records,
        last_seq: rep.last_seq,
        bytes_used: rep.end,
        oldest_ms: oldest,
        newest_ms: newest,
        damage: rep
            .damage
            .iter()
            .map(|d: &Damage| (d.offset, d.bytes, d.lost_records))
            .collect(),
        damage_seq_after: rep.damage.iter().map(|d| d.seq_after).collect(),
        torn_tail_bytes: rep.torn_tail_bytes,
        torn_seq: rep.torn_seq,
    }
}

/// Counts the valid records anywhere in `data` (for quarantined files).
pub fn salvageable(data: &[u8], mut each: impl FnMut(&crate::event::Record<'_>)) -> u64 {
    // start at the first valid record: scanning from DATA_START expecting seq 0
    // treated a first record with a higher seq as damage and skipped it
    match super::scan::resync(data, DATA_START.min(data.len()), 0) {
        Some((off, first)) => scan(data, off, first.seq, |_, r| each(r)).records,
        None => 0,
    }
}

/// Reads the ring in `dir` without changing it.
pub fn inspect(dir: &Path) -> Result<RecoveryReport, BufferError> {
    let mut report = RecoveryReport::default();
    let mut found: Vec<(SegmentHeader, SegmentReport)> = Vec::new();
    let mut free_high = 0u64;
    for slot in list_slots(dir)? {
        let name = super::segment::slot_file_name(slot);
        let data = std::fs::read(dir.join(&name)).map_err(io_err(format!("reading {name}")))?;
        match SegmentHeader::decode(&data) {
            Ok(Some(h)) => found.push((h, segment_report(name, &h, &data))),
            Ok(None) => free_high = free_high.max(stale_high(&data)),
            Err(reason) => report.quarantined.push(Quarantined {
                file: name,
                moved_to: String::new(),
                reason: reason.into(),
                bytes: data.len() as u64,
                salvageable_records: salvageable(&data, |_| {}),
            }),
        }
    }
    found.sort_by_key(|(h, _)| h.id);
    for (_, r) in drop_overlapping(&mut found, |(h, r)| (h.first_seq, end_seq(h, r))) {
        report.quarantined.push(Quarantined {
            file: r.file,
            moved_to: String::new(),
            reason: OVERLAP.into(),
            bytes: r.bytes_used as u64,
            salvageable_records: r.records,
        });
    }
    report.segments = found.into_iter().map(|(_, r)| r).collect();
    report.salvaged = load_salvaged(dir);
    report.lost_between_segments = gaps(&report.segments, &report.salvaged);
    report.reported_before = load_reported(dir);
    let reported_high = report.reported_seqs().last().map_or(0, |r| r.1);
    report.next_seq = report
        .segments
        .last()
        .map(|s| {
            s.last_seq
                .map(|l| l.saturating_add(1))
                .unwrap_or(s.first_seq)
        })
        .unwrap_or(0)
        .max(free_high)
        .max(reported_high);
    Ok(report)
}

/// One past the highest sequence number of the records left in a free
/// slot's file (a header cleared for reuse keeps the records behind it).
/// Recovery gives out no number below it: a segment started in that slot
/// scans from its start, and only `first_seq` above every stale record tells
/// them apart from its own ("current lap"); the ring's other segments and
/// the checkpoints usually make it so already, a ring found with nothing
/// else would otherwise start at 0 and read the stale records as new.
fn stale_high(data: &[u8]) -> u64 {
    let mut high = 0u64;
    salvageable(data, |r| high = high.max(r.seq.saturating_add(1)));
    high
}

const OVERLAP: &str = "sequence numbers overlap an earlier segment (damaged header)";

fn end_seq(h: &SegmentHeader, r: &SegmentReport) -> u64 {
    r.last_seq
        .map(|l| l.saturating_add(1))
        .unwrap_or(h.first_seq)
}

/// Removes (and returns) segments, in id order, whose sequence numbers do not
/// come after every earlier segment's: only a damaged header makes that
/// happen, and reading them would make cursors go backwards.
fn drop_overlapping<T>(segs: &mut Vec<T>, range: impl Fn(&T) -> (u64, u64)) -> Vec<T> {
    let mut kept = Vec::with_capacity(segs.len());
    let mut dropped = Vec::new();
    let mut high = 0u64;
    for s in segs.drain(..) {
        let (first, end) = range(&s);
        if first < high {
            dropped.push(s);
        } else {
            high = end.max(first);
            kept.push(s);
        }
    }
    *segs = kept;
    dropped
}

/// Records lost between a segment whose last record is `last` and the next
/// one, starting at `next_first`: the numbers between, less those salvaged.
fn gap_lost(last: u64, next_first: u64, salvaged: &[(u64, u64)]) -> u64 {
    let from = last.saturating_add(1);
    let missing = next_first.saturating_sub(from);
    missing - salvaged_within(salvaged, from, from + missing)
}

fn gaps(segs: &[SegmentReport], salvaged: &[(u64, u64)]) -> u64 {
    segs.windows(2)
        .map(|w| match w[0].last_seq {
            Some(l) => gap_lost(l, w[1].first_seq, salvaged),
            None => 0,
        })
        .sum()
}

/// Opens every segment file in `dir` and rebuilds the ring's state.
pub(crate) fn recover(
    dir: &Path,
    cursor_dir: &Path,
    seg_size: usize,
    slots: usize,
) -> Result<Recovered, BufferError> {
    let mut report = RecoveryReport::default();
    let qdir = dir.join("quarantine");
    let mut live: Vec<(Arc<Segment>, SegmentHeader, SegmentReport)> = Vec::new();
    let mut free: Vec<Arc<Segment>> = Vec::new();
    let existing = list_slots(dir)?;
    // sequence numbers seen in quarantined segments are never given out again
    let mut quarantined_high = 0u64;
    // and the lowest of them (what a ring with nothing else lost starts at)
    let mut quarantined_low = u64::MAX;
    // nor those of records left in free slots (see `stale_high`)
    let mut free_high = 0u64;
    for &slot in &existing {
        let seg = Segment::open_existing(dir, slot).map_err(io_err(format!(
            "opening {}",
            dir.join(super::segment::slot_file_name(slot)).display()
        )))?;
        let name = super::segment::slot_file_name(slot);
        let header = seg.header();
        match header {
            Ok(Some(h)) => {
                let rep = segment_report(name, &h, seg.bytes(0, seg.len()));
                live.push((Arc::new(seg), h, rep));
            }
            Ok(None) => {
                free_high = free_high.max(stale_high(seg.bytes(0, seg.len())));
                free.push(Arc::new(seg));
            }
            Err(reason) => {
                let salvage = salvageable(seg.bytes(0, seg.len()), |r| {
                    quarantined_high = quarantined_high.max(r.seq.saturating_add(1));
                    quarantined_low = quarantined_low.min(r.seq);
                });
                let bytes = seg.len() as u64;
                drop(seg);
                std::fs::create_dir_all(&qdir).map_err(io_err("creating quarantine folder"))?;
                let to = qdir.join(format!("{name}.{}", now_millis()));
                std::fs::rename(dir.join(&name), &to)
                    .map_err(io_err(format!("quarantining {name}")))?;
                tracing::error!(file = %name, reason, moved_to = %to.display(), "segment quarantined");
                report.quarantined.push(Quarantined {
                    file: name,
                    moved_to: to.display().to_string(),
                    reason: reason.into(),
                    bytes,
                    salvageable_records: salvage,
                });
            }
        }
    }
    live.sort_by_key(|(_, h, _)| h.id);
    for (seg, h, rep) in drop_overlapping(&mut live, |(_, h, r)| (h.first_seq, end_seq(h, r))) {
        quarantined_high = quarantined_high.max(end_seq(&h, &rep));
        let name = rep.file.clone();
        let bytes = seg.len() as u64;
        let salvage = salvageable(seg.bytes(0, seg.len()), |_| {});
        drop(seg);
        std::fs::create_dir_all(&qdir).map_err(io_err("creating quarantine folder"))?;
        let to = qdir.join(format!("{name}.{}", now_millis()));
        std::fs::rename(dir.join(&name), &to).map_err(io_err(format!("quarantining {name}")))?;
        report.quarantined.push(Quarantined {
            file: name,
            moved_to: to.display().to_string(),
            reason: OVERLAP.into(),
            bytes,
            salvageable_records: salvage,
        });
    }
    // free files of another size are not reused as they are
    free.retain(|s| {
        if s.len() == seg_size {
            true
        } else {
            let _ = std::fs::remove_file(s.path());
            false
        }
    });
    // runs of slot numbers: as many as the holes between the files, not
    // one entry for each segment `max_bytes` allows
    let present = live
        .iter()
        .map(|l| l.0.slot)
        .chain(free.iter().map(|s| s.slot));
    let mut unopened = UnopenedSlots::missing(slots, present);

    let ckpt_max = max_checkpoint(cursor_dir);
    let scanned_next = live.last().map(|(_, h, r)| end_seq(h, r)).unwrap_or(0);
    // a torn record may have been seen by a destination: its number is not reused
    let torn_next = live
        .iter()
        .filter_map(|(_, _, r)| r.torn_seq.map(|s| s.saturating_add(1)))
        .max()
        .unwrap_or(0);
    let live_end = scanned_next.max(torn_next);
    // where the numbers skipped start: after the ring's last record, or at
    // the lowest quarantined one when no segment is left
    let skipped_from = if live.is_empty() {
        quarantined_low.max(live_end)
    } else {
        live_end
    };
    // numbers an earlier start reported lost by number (see `skipped`) are
    // not given out again, also when it stopped before writing past them
    let reported_before = load_reported(dir);
    let reported_high = reported_seqs(&reported_before).last().map_or(0, |r| r.1);
    let found_next = live_end
        .max(quarantined_high)
        .max(free_high)
        .max(reported_high);
    let mut next_seq = found_next.max(ckpt_max);
    let mut next_id = live
        .last()
        .map(|(_, h, _)| h.id.saturating_add(1))
        .unwrap_or(1);

    // the newest segment becomes the active one; with none, start one
    if live.is_empty() {
        let seg = match free.pop() {
            Some(s) => s,
            None => {
                let slot = unopened
                    .pop()
                    .ok_or_else(|| BufferError::Settings("no slot for a segment".into()))?;
                Arc::new(Segment::open(dir, slot, seg_size).map_err(io_err(format!(
                    "creating {}",
                    dir.join(super::segment::slot_file_name(slot)).display()
                )))?)
            }
        };
        let h = SegmentHeader {
            id: next_id,
            first_seq: next_seq,
            created_ms: now_millis(),
        };
        seg.write_header(&h)
            .and_then(|()| seg.flush_range(0, DATA_START))
            .map_err(io_err("writing segment header"))?;
        next_id += 1;
        let rep = segment_report(
            super::segment::slot_file_name(seg.slot),
            &h,
            seg.bytes(0, seg.len()),
        );
        live.push((seg, h, rep));
    } else if let Some((seg, h, rep)) = live.last_mut() {
        if rep.records == 0 && h.first_seq != next_seq {
            // an empty active segment restarts at the right sequence number
            h.first_seq = next_seq;
            seg.write_header(h)
                .and_then(|()| seg.flush_range(0, DATA_START))
                .map_err(io_err("writing segment header"))?;
            rep.first_seq = next_seq;
        }
    }
    next_seq = next_seq.max(live.last().map(|l| l.1.first_seq).unwrap_or(0));

    let mut segs = VecDeque::new();
    for (seg, h, rep) in &live {
        let end_seq = end_seq(h, rep);
        let info = SegInfo::new(
            seg.clone(),
            *h,
            rep.bytes_used.max(DATA_START),
            end_seq,
            rep.newest_ms.unwrap_or(0),
        );
        info.sealed.store(true, Ordering::Release);
        segs.push_back(info);
    }
    let active = segs.back().cloned().expect("at least one segment");
    active.sealed.store(false, Ordering::Release);
    active.end_seq.store(next_seq, Ordering::Release);
    let off = active.end_off.load(Ordering::Acquire);

    report.segments = live.into_iter().map(|(_, _, r)| r).collect();
    report.salvaged = load_salvaged(dir);
    report.lost_between_segments = gaps(&report.segments, &report.salvaged);
    report.next_seq = next_seq;
    report.reported_before = reported_before;
    // the newest segments quarantined: their numbers are skipped where the
    // ring writes on, a jump or gap found only later (a middle segment's
    // gap is found now)
    report.skipped = (quarantined_high > skipped_from).then_some((skipped_from, quarantined_high));
    report.checkpoint_ahead = (ckpt_max > found_next).then_some((ckpt_max, found_next));
    if report.has_new_damage() {
        tracing::warn!(
            quarantined = report.quarantined.len(),
            damaged_records = report.damaged_records(),
            torn_tail_bytes = report.torn_tail_bytes(),
            "ring recovered with damage"
        );
    }
    let writer = Writer::new(active, off, next_seq, next_id);
    Ok(Recovered {
        table: Table {
            segs,
            free,
            unopened,
            no_space: None,
            spare_failed: None,
        },
        writer,
        report,
        committed: next_seq,
    })
}

/// The highest sequence number any cursor checkpoint names (sequence numbers
/// never go back below what a destination has acknowledged).
fn max_checkpoint(cursor_dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(cursor_dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| checkpoint::load(&p).ok().flatten())
        .map(|c| c.seq)
        .max()
        .unwrap_or(0)
}

/// Files in the quarantine folder not yet salvaged.
pub fn quarantined_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir.join("quarantine")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}
