//! `buffer salvage` and what the stream says afterwards, on real files: a
//! ring written, a segment damaged, the real binary's `buffer salvage`, then
//! the ring opened as `run` opens it and the events appended read back.
//! Records the salvage brought back are no loss: no `relay.buffer.quarantine`
//! or `relay.buffer.damage` event says they are (QA: both were appended by
//! the salvage for a segment it had quarantined and salvaged whole, and a
//! SIEM counted 143 records lost), while what is really lost is still said.

use siem_relay::buffer::{
    inspect, segment, ReadRecord, RecoveryReport, Ring, RingSettings, WhenFull,
};
use siem_relay::config::FsyncPolicy;
use siem_relay::event::{EncodedEvent, Event, Severity};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_siem-relay");
const EVENTS: u64 = 1000;

/// The ring of the config [`salvage_cli`] writes: `data/buffer` in `dir`.
fn ring_dir(dir: &Path) -> PathBuf {
    dir.join("data").join("buffer")
}

fn settings(dir: &Path) -> RingSettings {
    RingSettings {
        dir: ring_dir(dir),
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

/// Writes events `0..EVENTS` into a fresh ring in `dir` and closes it.
fn write_closed_ring(dir: &Path) {
    let (ring, _) = Ring::open(settings(dir)).unwrap();
    ring.append(&(0..EVENTS).map(ev).collect::<Vec<_>>())
        .unwrap();
    ring.close().unwrap();
}

/// Changes byte `at` of the ring's segment file `file`.
fn flip(dir: &Path, file: &str, at: usize) {
    let path = ring_dir(dir).join(file);
    let mut b = std::fs::read(&path).unwrap();
    b[at] ^= 0x55;
    std::fs::write(&path, &b).unwrap();
}

/// Runs `siem-relay buffer salvage` on the ring in `dir`; returns its output.
fn salvage_cli(dir: &Path) -> String {
    let cfg = dir.join("relay.toml");
    let config = format!(
        "data_dir = {:?}\n\n[buffer]\nmax_bytes = \"512KiB\"\nsegment_bytes = \"64KiB\"\n\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:1\"\nmax_message_bytes = \"8KiB\"\n\n\
         [destinations.archive]\ntype = \"file\"\npath = \"out/archive.ndjson\"\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&cfg, config).unwrap();
    let o = Command::new(BIN)
        .args(["buffer", "salvage", "--config", cfg.to_str().unwrap()])
        .env("SIEM_RELAY_LOG", "warn")
        .output()
        .expect("siem-relay runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

/// Opens the ring as `run` does and reads every record in it (its queued
/// notices written first, as a run's first append writes them).
fn open_as_run(dir: &Path) -> (RecoveryReport, Vec<Event>) {
    let (ring, rep) = Ring::open(settings(dir)).unwrap();
    let mut c = ring.cursor("reader", WhenFull::DropOldest).unwrap();
    ring.append(&[]).unwrap();
    let mut got: Vec<ReadRecord> = Vec::new();
    let acker = c.acker();
    while let Some(r) = c.read(1000, 1 << 20, &mut got) {
        acker.ack(r);
    }
    drop(c);
    // the reader's checkpoint is not the test's to leave behind
    ring.forget_cursor("reader").unwrap();
    ring.close().unwrap();
    let events = got
        .iter()
        .map(|r| Event::decode(r.body()).unwrap())
        .collect();
    (rep, events)
}

fn with_action<'a>(events: &'a [Event], action: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.action.as_deref() == Some(action))
        .collect()
}

/// The actions of the events that are not test events, in order.
fn actions(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e.action.as_deref())
        .filter(|&a| a != "test.event")
        .collect()
}

fn metadata_u64(e: &Event, key: &str) -> u64 {
    e.metadata.as_ref().unwrap()[key].as_u64().unwrap()
}

/// The test events the stream holds, by number.
fn numbers(events: &[Event]) -> BTreeSet<u64> {
    events
        .iter()
        .filter_map(|e| e.message.as_deref()?.strip_prefix("event number "))
        .map(|m| m.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The item's case: the ring is damaged while the relay is stopped and the
/// operator salvages before starting it. The salvage's own open quarantines
/// the segment, and the salvage brings all of its records back: the stream
/// gets one `relay.buffer.salvage` event, no quarantine or damage report,
/// and `buffer verify` finds nothing missing.
#[test]
fn a_segment_salvaged_whole_is_reported_as_salvaged_not_lost() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments[1].clone();
    flip(d.path(), &victim.file, 8);

    let out = salvage_cli(d.path());
    assert!(
        out.contains(&format!("salvaged {} records", victim.records)),
        "{out}"
    );
    let (rep, events) = open_as_run(d.path());
    assert!(!rep.has_new_damage(), "{rep:?}");
    assert_eq!(rep.damaged_records(), 0, "{rep:?}");
    assert_eq!(
        numbers(&events),
        (0..EVENTS).collect(),
        "every record is there"
    );
    assert!(with_action(&events, "relay.buffer.quarantine").is_empty());
    assert!(with_action(&events, "relay.buffer.damage").is_empty());
    let salvaged = with_action(&events, "relay.buffer.salvage");
    assert_eq!(salvaged.len(), 1);
    assert_eq!(metadata_u64(salvaged[0], "records"), victim.records);
    let msg = salvaged[0].message.as_deref().unwrap();
    assert!(
        msg.contains(&format!("{} valid records", victim.records))
            && msg.contains(&victim.file)
            && msg.contains("quarantine/salvaged/"),
        "{msg}"
    );
    // nothing left to report at the next start either, nor for `verify`
    let (rep, again) = open_as_run(d.path());
    assert!(rep.notices().is_empty(), "{rep:?}");
    assert_eq!(again.len(), events.len());
    let v = inspect(&ring_dir(d.path())).unwrap();
    assert_eq!(v.lost_between_segments, 0, "{v:?}");
    assert!(v.is_clean(), "{v:?}");
}

/// A salvage that brings back all but one record of its segment: the one
/// record lost is reported as damage (one record), the rest as salvaged.
#[test]
fn a_partial_salvage_reports_only_the_records_really_lost() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments[1].clone();
    flip(d.path(), &victim.file, 8);
    flip(d.path(), &victim.file, 2000);

    let out = salvage_cli(d.path());
    assert!(
        out.contains(&format!("salvaged {} records", victim.records - 1)),
        "{out}"
    );
    let (rep, events) = open_as_run(d.path());
    assert!(!rep.has_new_damage(), "reported by the salvage: {rep:?}");
    assert_eq!(numbers(&events).len() as u64, EVENTS - 1);
    assert!(with_action(&events, "relay.buffer.quarantine").is_empty());
    let damage = with_action(&events, "relay.buffer.damage");
    assert_eq!(damage.len(), 1);
    assert_eq!(metadata_u64(damage[0], "damaged_records"), 1);
    let salvaged = with_action(&events, "relay.buffer.salvage");
    assert_eq!(salvaged.len(), 1);
    assert_eq!(metadata_u64(salvaged[0], "records"), victim.records - 1);
    let v = inspect(&ring_dir(d.path())).unwrap();
    assert_eq!(v.lost_between_segments, 1, "{v:?}");
    assert!(!v.has_new_damage(), "{v:?}");
}

/// Without a salvage, the relay's start reports the quarantine and the
/// records it took out of the ring; a salvage afterwards adds what it
/// brought back, and no report of new loss.
#[test]
fn a_quarantine_the_relay_reported_stays_reported_and_the_salvage_adds_its_own() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments[1].clone();
    flip(d.path(), &victim.file, 8);

    let (rep, events) = open_as_run(d.path());
    assert_eq!(rep.quarantined.len(), 1);
    assert_eq!(with_action(&events, "relay.buffer.quarantine").len(), 1);
    let damage = with_action(&events, "relay.buffer.damage");
    assert_eq!(damage.len(), 1);
    assert_eq!(metadata_u64(damage[0], "damaged_records"), victim.records);

    let out = salvage_cli(d.path());
    assert!(
        out.contains(&format!("salvaged {} records", victim.records)),
        "{out}"
    );
    let (rep, after) = open_as_run(d.path());
    assert!(rep.notices().is_empty(), "{rep:?}");
    let new = &after[events.len()..];
    assert_eq!(numbers(new).len() as u64, victim.records);
    assert!(with_action(new, "relay.buffer.quarantine").is_empty());
    assert!(with_action(new, "relay.buffer.damage").is_empty());
    assert_eq!(with_action(new, "relay.buffer.salvage").len(), 1);
    assert!(inspect(&ring_dir(d.path())).unwrap().is_clean());
}

/// The newest segment quarantined and salvaged: its records' numbers are
/// skipped inside the segment the relay goes on writing (or between it and
/// the next), which is no loss either, at any later start. (50 more events:
/// the ring keeps them all.)
#[test]
fn the_newest_segment_salvaged_leaves_no_loss_behind() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments.last().unwrap().clone();
    flip(d.path(), &victim.file, 8);

    salvage_cli(d.path());
    let (ring, rep) = Ring::open(settings(d.path())).unwrap();
    assert!(!rep.has_new_damage(), "{rep:?}");
    ring.append(&(EVENTS..EVENTS + 50).map(ev).collect::<Vec<_>>())
        .unwrap();
    ring.close().unwrap();
    drop(ring);
    let (rep, events) = open_as_run(d.path());
    assert!(rep.notices().is_empty(), "{rep:?}");
    assert_eq!(rep.damaged_records(), 0, "{rep:?}");
    assert_eq!(numbers(&events), (0..EVENTS + 50).collect());
    assert!(with_action(&events, "relay.buffer.damage").is_empty());
    assert!(with_action(&events, "relay.buffer.quarantine").is_empty());
    assert_eq!(with_action(&events, "relay.buffer.salvage").len(), 1);
}

/// The newest segment quarantined by a start of the relay, which then
/// writes on in the segment before it (room was left there by a record too
/// large for it): the numbers the quarantined records had are skipped
/// inside that segment. Once the salvage brought them back, that jump is
/// no loss either (a later start counted it as damaged records).
#[test]
fn numbers_skipped_inside_a_segment_are_no_loss_once_salvaged() {
    let big = |n: u64| {
        let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
        e.message = Some(format!("event number {n} {}", "x".repeat(25 << 10)));
        e.encode()
    };
    let d = tempfile::tempdir().unwrap();
    {
        // two large records in the first segment, the third in the second
        // with small ones after it
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        ring.append(&(0..3).map(big).collect::<Vec<_>>()).unwrap();
        ring.append(&(3..23).map(ev).collect::<Vec<_>>()).unwrap();
        ring.close().unwrap();
    }
    let before = inspect(&ring_dir(d.path())).unwrap();
    assert_eq!(before.segments.len(), 2, "{before:?}");
    assert_eq!(before.segments[0].records, 2, "{before:?}");
    let victim = before.segments[1].clone();
    flip(d.path(), &victim.file, 8);

    // a start quarantines it (and says so) and writes on in the first segment
    let (ring, rep) = Ring::open(settings(d.path())).unwrap();
    assert_eq!(rep.quarantined.len(), 1);
    let mut c = ring.cursor("reader", WhenFull::DropOldest).unwrap();
    ring.append(&(100..110).map(ev).collect::<Vec<_>>())
        .unwrap();
    let mut got = Vec::new();
    while c.read(1000, 1 << 20, &mut got).is_some() {}
    drop(c);
    ring.forget_cursor("reader").unwrap();
    ring.close().unwrap();
    drop(ring);
    let events: Vec<Event> = got
        .iter()
        .map(|r| Event::decode(r.body()).unwrap())
        .collect();
    assert_eq!(with_action(&events, "relay.buffer.quarantine").len(), 1);
    // the loss, said by the start that quarantined (and by no later one)
    let damage = with_action(&events, "relay.buffer.damage");
    assert_eq!(damage.len(), 1);
    assert_eq!(metadata_u64(damage[0], "damaged_records"), victim.records);
    let v = inspect(&ring_dir(d.path())).unwrap();
    assert_eq!(v.segments[0].damage.len(), 1, "a jump inside: {v:?}");
    assert_eq!(v.damaged_records(), victim.records, "{v:?}");
    assert!(!v.has_new_damage(), "{v:?}");

    salvage_cli(d.path());
    let (rep, events) = open_as_run(d.path());
    assert!(rep.notices().is_empty(), "{rep:?}");
    assert_eq!(rep.damaged_records(), 0, "{rep:?}");
    // only the start's report of it: the salvage adds no damage
    assert_eq!(with_action(&events, "relay.buffer.damage").len(), 1);
    assert_eq!(with_action(&events, "relay.buffer.salvage").len(), 1);
    let mut want: BTreeSet<u64> = (0..23).collect();
    want.extend(100..110);
    assert_eq!(numbers(&events), want);
    assert!(inspect(&ring_dir(d.path())).unwrap().is_clean());
}

/// A start of the relay quarantines the newest segment (no salvage): the
/// loss is reported once, by that start, as a middle segment's is (one
/// `relay.buffer.quarantine` and one `relay.buffer.damage` event with its
/// records). The numbers those records had are skipped where the relay
/// writes on, which later starts found as a jump (or gap) and reported as
/// damaged records again.
#[test]
fn the_newest_segment_quarantined_is_reported_lost_once_across_starts() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments.last().unwrap().clone();
    flip(d.path(), &victim.file, 8);

    let (rep, first) = open_as_run(d.path());
    assert_eq!(rep.quarantined.len(), 1, "{rep:?}");
    assert_eq!(with_action(&first, "relay.buffer.quarantine").len(), 1);
    let damage = with_action(&first, "relay.buffer.damage");
    assert_eq!(damage.len(), 1, "{:?}", actions(&first));
    assert_eq!(metadata_u64(damage[0], "damaged_records"), victim.records);
    // a start that writes on, over the numbers skipped, then two more
    {
        let (ring, rep) = Ring::open(settings(d.path())).unwrap();
        assert!(!rep.has_new_damage(), "{rep:?}");
        ring.append(&(EVENTS..EVENTS + 50).map(ev).collect::<Vec<_>>())
            .unwrap();
        ring.close().unwrap();
    }
    for _ in 0..2 {
        let (rep, all) = open_as_run(d.path());
        assert!(!rep.has_new_damage(), "{rep:?}");
        assert!(rep.notices().is_empty(), "{rep:?}");
        assert_eq!(with_action(&all, "relay.buffer.quarantine").len(), 1);
        assert_eq!(with_action(&all, "relay.buffer.damage").len(), 1);
        assert_eq!(rep.damaged_records(), victim.records, "still lost: {rep:?}");
    }
    // `buffer verify`: damage reported before, nothing new
    let v = inspect(&ring_dir(d.path())).unwrap();
    assert_eq!(v.damaged_records(), victim.records, "{v:?}");
    assert!(!v.has_new_damage(), "{v:?}");
}

/// A start that quarantines (the newest segment) and stops before its
/// first append: the reports it queued were never written, and the next
/// start, which finds the segment already in `quarantine/`, had nothing to
/// say. They go in with the next start's first append, once, and that
/// start gives the skipped numbers to no record.
#[test]
fn reports_queued_by_a_start_that_never_appended_go_in_at_the_next_start() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path());
    let before = inspect(&ring_dir(d.path())).unwrap();
    let victim = before.segments.last().unwrap().clone();
    let victim_last = victim.last_seq.unwrap();
    flip(d.path(), &victim.file, 8);
    {
        // as a `run` stopped before anything came in
        let (ring, rep) = Ring::open(settings(d.path())).unwrap();
        assert_eq!(rep.quarantined.len(), 1, "{rep:?}");
        let _c = ring.cursor("reader", WhenFull::DropOldest).unwrap();
        ring.close().unwrap();
    }
    let (_, events) = open_as_run(d.path());
    let quarantine = with_action(&events, "relay.buffer.quarantine");
    assert_eq!(quarantine.len(), 1, "{:?}", actions(&events));
    assert_eq!(
        metadata_u64(quarantine[0], "salvageable_records"),
        victim.records
    );
    let damage = with_action(&events, "relay.buffer.damage");
    assert_eq!(damage.len(), 1, "{:?}", actions(&events));
    assert_eq!(metadata_u64(damage[0], "damaged_records"), victim.records);
    // written once: a third start has nothing to add
    let (rep, again) = open_as_run(d.path());
    assert!(rep.notices().is_empty(), "{rep:?}");
    assert_eq!(again.len(), events.len());
    // and the quarantined records' numbers were given to no other record
    let ring = Ring::open(settings(d.path())).unwrap().0;
    let seqs = ring.append(&[ev(EVENTS)]).unwrap();
    assert!(seqs.start > victim_last, "{seqs:?} after {victim_last}");
    ring.close().unwrap();
}

/// A salvage whose records fill the ring to its last segment has no room
/// left for its `relay.buffer.salvage` report: the report is kept in
/// `buffer/notices-pending` when the ring closes, and the next start
/// writes it (QA: it was lost, and the salvage still exited 0).
#[test]
fn a_salvage_that_fills_the_ring_keeps_its_report_for_the_next_start() {
    let d = tempfile::tempdir().unwrap();
    // events of one size, exactly as many as the ring's segments hold
    let one = |n: u64| {
        let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
        e.message = Some(format!("event number {n:05} {}", "x".repeat(200)));
        e.encode()
    };
    let s = settings(d.path());
    let len = one(0).record_len() as u64;
    let per_segment = (s.segment_bytes - segment::DATA_START as u64) / len;
    let total = s.max_bytes / s.segment_bytes * per_segment;
    let (ring, _) = Ring::open(s).unwrap();
    ring.append(&(0..total).map(one).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(ring.oldest_seq(), 0, "every event is in the ring");
    ring.close().unwrap();
    drop(ring);

    flip(d.path(), "segment-00001.dat", 8);
    let out = salvage_cli(d.path());
    assert!(
        out.contains(&format!("salvaged {per_segment} records")),
        "{out}"
    );
    assert!(
        ring_dir(d.path()).join("notices-pending").exists(),
        "the report that did not fit is kept: {out}"
    );

    let (_, events) = open_as_run(d.path());
    let salvage = with_action(&events, "relay.buffer.salvage");
    assert_eq!(salvage.len(), 1, "{:?}", actions(&events));
    assert_eq!(metadata_u64(salvage[0], "records"), per_segment);
    assert!(!ring_dir(d.path()).join("notices-pending").exists());
}

/// Fills the ring in `dir` past its size (its oldest records reused), puts
/// a copy of one of its segments in quarantine, and writes a config with a
/// disabled `bh` (whose checkpoint is at the record `bh_at` picks of the
/// oldest and the next) and an enabled `down` that has none. Returns the
/// config file.
fn full_ring_and_two_destinations(dir: &Path, bh_at: impl Fn(u64, u64) -> u64) -> PathBuf {
    let (ring, _) = Ring::open(settings(dir)).unwrap();
    for i in 0..4 {
        ring.append(&(i * 1000..(i + 1) * 1000).map(ev).collect::<Vec<_>>())
            .unwrap();
    }
    let oldest = ring.oldest_seq();
    assert!(oldest > 0, "the ring wrapped");
    let next = ring.next_seq();
    ring.close().unwrap();
    drop(ring);
    let buffer = ring_dir(dir);
    let segment = inspect(&buffer).unwrap().segments[2].file.clone();
    std::fs::create_dir_all(buffer.join("quarantine")).unwrap();
    std::fs::copy(
        buffer.join(&segment),
        buffer.join("quarantine").join(format!("{segment}.copy")),
    )
    .unwrap();
    std::fs::create_dir_all(buffer.join("cursors")).unwrap();
    std::fs::write(
        buffer.join("cursors/bh.json"),
        format!(
            r#"{{"seq":{},"dropped":0,"skipped_to":0}}"#,
            bh_at(oldest, next)
        ),
    )
    .unwrap();
    let cfg = dir.join("relay.toml");
    let config = format!(
        "data_dir = {:?}\n\n[buffer]\nmax_bytes = \"512KiB\"\nsegment_bytes = \"64KiB\"\n\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:1\"\nmax_message_bytes = \"8KiB\"\n\n\
         [destinations.bh]\ntype = \"blackhole\"\nenabled = false\n\n\
         [destinations.down]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1/\"\nwhen_full = \"block\"\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&cfg, config).unwrap();
    cfg
}

/// Runs `siem-relay buffer salvage` with `cfg`: its exit code and output.
fn salvage_with(cfg: &Path) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .args(["buffer", "salvage", "--config", cfg.to_str().unwrap()])
        .env("SIEM_RELAY_LOG", "warn")
        .output()
        .expect("siem-relay runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// A salvage refused for want of room names every destination whose
/// records are in the way, by what it is and what frees them (QA: it named
/// `bh`, a disabled `drop_oldest` destination, as `when_full = block`,
/// behind "invalid ring settings", and not `down`, the enabled one that
/// had received nothing).
#[test]
fn a_refused_salvage_names_each_destination_in_the_way_by_what_it_is() {
    let d = tempfile::tempdir().unwrap();
    let cfg = full_ring_and_two_destinations(d.path(), |oldest, _| oldest);
    let (code, out) = salvage_with(&cfg);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("stays in quarantine"), "{out}");
    assert!(!out.contains("invalid ring settings"), "{out}");
    assert!(!out.contains("when_full"), "{out}");
    assert!(
        out.contains("`down` (no checkpoint yet: it starts at the ring's oldest record)"),
        "{out}"
    );
    assert!(
        out.contains("`bh` (disabled, `enabled = false`; its checkpoint is at record"),
        "{out}"
    );
    assert!(
        out.contains("start the relay so that `down` delivers them first"),
        "{out}"
    );
    assert!(
        out.contains("enable `bh` (it then receives them) or remove it from the config"),
        "{out}"
    );
    assert_eq!(
        siem_relay::buffer::recovery::quarantined_files(&ring_dir(d.path())).len(),
        1
    );
}

/// An enabled destination without a checkpoint has received nothing: the
/// salvage holds the whole ring for it (it starts at the oldest record),
/// however far another destination's checkpoint is. It held only the
/// checkpoints there were, and wrapped over the records `down` had not
/// received as soon as `bh`'s was at the newest record.
#[test]
fn a_salvage_holds_the_records_of_an_enabled_destination_without_a_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let cfg = full_ring_and_two_destinations(d.path(), |_, next| next);
    let oldest = inspect(&ring_dir(d.path())).unwrap().oldest_seq();
    let (code, out) = salvage_with(&cfg);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("`down` (no checkpoint yet"), "{out}");
    assert!(!out.contains("`bh`"), "bh has received everything: {out}");
    assert_eq!(
        inspect(&ring_dir(d.path())).unwrap().oldest_seq(),
        oldest,
        "nothing overwritten"
    );
}
