//! Property tests: random appends, reads, acknowledgements, commits,
//! wrap-arounds and restarts against a simple in-memory model, and random
//! byte corruption of segment files against recovery.

use proptest::prelude::*;
use siem_relay::buffer::{Cursor, ReadRecord, Ring, RingSettings, WhenFull};
use siem_relay::config::FsyncPolicy;
use siem_relay::event::{Event, Severity};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

fn settings(dir: &Path) -> RingSettings {
    RingSettings {
        dir: dir.to_path_buf(),
        max_bytes: 256 << 10,
        segment_bytes: 64 << 10,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Never,
    }
}

fn body(n: u64, pad: usize) -> Vec<u8> {
    let mut e = Event::new("SYSTEM", Some("model.event".into()), Severity::Info);
    e.event_id = format!("evt_{n}");
    e.message = Some("m".repeat(pad));
    e.encode().into_body()
}

#[derive(Debug, Clone)]
enum Op {
    Append { count: usize, pad: usize },
    Read { cursor: usize, max: usize },
    Ack { cursor: usize, which: usize },
    Commit { cursor: usize },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..60, 50usize..900).prop_map(|(count, pad)| Op::Append { count, pad }),
        3 => (0usize..2, 1usize..200).prop_map(|(cursor, max)| Op::Read { cursor, max }),
        3 => (0usize..2, 0usize..4).prop_map(|(cursor, which)| Op::Ack { cursor, which }),
        2 => (0usize..2).prop_map(|cursor| Op::Commit { cursor }),
        1 => Just(Op::Restart),
    ]
}

/// What the test knows about one cursor.
struct Model {
    policy: WhenFull,
    /// Claimed, unacknowledged ranges.
    claimed: VecDeque<Range<u64>>,
    /// Next sequence number the cursor must return (or skip only with a counted drop).
    next: u64,
    /// Durable position as of the last commit.
    durable: u64,
    /// The cursor's drop counter as of its previous read.
    dropped_seen: u64,
}

struct World {
    ring: Ring,
    cursors: Vec<Cursor>,
    models: Vec<Model>,
    /// seq → body of every event the test appended.
    appended: BTreeMap<u64, Vec<u8>>,
}

const NAMES: [&str; 2] = ["blocky", "droppy"];
const POLICIES: [WhenFull; 2] = [WhenFull::Block, WhenFull::DropOldest];

fn open(dir: &Path) -> (Ring, Vec<Cursor>) {
    let (ring, report) = Ring::open(settings(dir)).unwrap();
    assert!(report.quarantined.is_empty());
    let cursors = (0..2)
        .map(|i| ring.cursor(NAMES[i], POLICIES[i]).unwrap())
        .collect();
    (ring, cursors)
}

fn check_read(
    w: &World,
    i: usize,
    out: &[ReadRecord],
    range: &Range<u64>,
    dropped_before: u64,
    dropped_after: u64,
    m_next: u64,
) {
    assert!(
        range.start >= m_next,
        "cursor {} went back: {range:?} < {m_next}",
        NAMES[i]
    );
    let skipped_at_start = range.start - m_next;
    let mut expect = range.start;
    let mut gaps = skipped_at_start;
    for r in out {
        assert!(
            r.seq >= expect && r.seq < range.end,
            "record {} outside claimed {range:?}",
            r.seq
        );
        gaps += r.seq - expect;
        expect = r.seq + 1;
        match w.appended.get(&r.seq) {
            Some(b) => assert_eq!(r.body(), &b[..], "seq {} body differs", r.seq),
            None => assert!(
                String::from_utf8_lossy(r.body()).contains("relay.buffer"),
                "unknown record {}",
                r.seq
            ),
        }
    }
    gaps += range.end - expect;
    if POLICIES[i] == WhenFull::Block {
        assert_eq!(gaps, 0, "block cursor skipped records");
    } else {
        assert_eq!(
            gaps,
            dropped_after - dropped_before,
            "every skipped record is a counted drop"
        );
    }
}

fn run(ops: Vec<Op>) {
    let d = tempfile::tempdir().unwrap();
    let (ring, cursors) = open(d.path());
    let mut w = World {
        ring,
        cursors,
        models: (0..2)
            .map(|i| Model {
                policy: POLICIES[i],
                claimed: VecDeque::new(),
                next: 0,
                durable: 0,
                dropped_seen: 0,
            })
            .collect(),
        appended: BTreeMap::new(),
    };
    let mut n = 0u64;
    for op in ops {
        match op {
            Op::Append { count, pad } => {
                let bodies: Vec<Vec<u8>> = (0..count).map(|k| body(n + k as u64, pad)).collect();
                let events: Vec<_> = bodies
                    .iter()
                    .map(|b| {
                        siem_relay::event::EncodedEvent::new(
                            Event::decode(b).unwrap().meta(),
                            b.clone(),
                        )
                    })
                    .collect();
                let before = w.ring.next_seq();
                match w.ring.append(&events) {
                    Ok(r) => {
                        assert_eq!(r.end - r.start, count as u64);
                        for (k, b) in bodies.into_iter().enumerate() {
                            w.appended.insert(r.start + k as u64, b);
                        }
                        n += count as u64;
                    }
                    Err(e) => {
                        assert!(
                            matches!(e, siem_relay::buffer::AppendError::Full(ref who) if who == "blocky"),
                            "{e}"
                        );
                        assert_eq!(w.ring.next_seq(), before, "a refused append writes nothing");
                    }
                }
            }
            Op::Read { cursor, max } => {
                let dropped_before = w.models[cursor].dropped_seen;
                let mut out = Vec::new();
                if let Some(range) = w.cursors[cursor].read(max, 1 << 20, &mut out) {
                    let dropped_after = w.cursors[cursor].dropped();
                    check_read(
                        &w,
                        cursor,
                        &out,
                        &range,
                        dropped_before,
                        dropped_after,
                        w.models[cursor].next,
                    );
                    w.models[cursor].next = range.end;
                    w.models[cursor].dropped_seen = dropped_after;
                    w.models[cursor].claimed.push_back(range);
                }
            }
            Op::Ack { cursor, which } => {
                let m = &mut w.models[cursor];
                if !m.claimed.is_empty() {
                    let r = m.claimed.remove(which % m.claimed.len()).unwrap();
                    w.cursors[cursor].acker().ack(r);
                }
            }
            Op::Commit { cursor } => {
                let durable = w.cursors[cursor].commit().unwrap();
                let m = &mut w.models[cursor];
                let expect = m
                    .claimed
                    .iter()
                    .map(|r| r.start)
                    .min()
                    .unwrap_or(w.cursors[cursor].read_position());
                assert_eq!(durable, expect, "durable = first unacknowledged claim");
                assert!(durable >= m.durable, "durable never moves back");
                m.durable = durable;
            }
            Op::Restart => {
                let durables: Vec<u64> = w.models.iter().map(|m| m.durable).collect();
                w.cursors.clear();
                drop(std::mem::replace(
                    &mut w.ring,
                    Ring::open(settings(&d.path().join("unused"))).unwrap().0,
                ));
                let (ring, cursors) = open(d.path());
                w.ring = ring;
                w.cursors = cursors;
                for (i, m) in w.models.iter_mut().enumerate() {
                    m.claimed.clear();
                    let pos = w.cursors[i].read_position();
                    if m.policy == WhenFull::Block {
                        // resumes exactly at its checkpoint: nothing acknowledged is lost
                        assert_eq!(pos, durables[i], "block cursor resumes at its checkpoint");
                    } else {
                        assert!(pos >= durables[i]);
                    }
                    m.next = pos;
                    m.dropped_seen = w.cursors[i].dropped();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ring_and_cursors_match_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }

    #[test]
    fn random_corruption_never_panics_or_yields_bad_records(
        flips in proptest::collection::vec((0usize..4, 0usize..(64 << 10), any::<u8>()), 1..40),
        count in 100usize..700,
    ) {
        let d = tempfile::tempdir().unwrap();
        let mut appended = BTreeMap::new();
        {
            let (ring, _) = Ring::open(settings(d.path())).unwrap();
            for k in 0..count as u64 {
                let b = body(k, (k % 300) as usize);
                let r = ring.append(&[siem_relay::event::EncodedEvent::new(Event::decode(&b).unwrap().meta(), b.clone())]).unwrap();
                appended.insert(r.start, b);
            }
            ring.sync().unwrap();
        }
        for (slot, off, x) in flips {
            let p = d.path().join(format!("segment-{slot:05}.dat"));
            if let Ok(mut bytes) = std::fs::read(&p) {
                let off = off % bytes.len();
                bytes[off] ^= x.max(1);
                std::fs::write(&p, &bytes).unwrap();
            }
        }
        let report = siem_relay::buffer::inspect(d.path()).unwrap();
        let (ring, _) = Ring::open(settings(d.path())).unwrap();
        let mut c = ring.cursor("reader", WhenFull::DropOldest).unwrap();
        let mut out = Vec::new();
        while c.read(1000, 1 << 20, &mut out).is_some() {}
        let mut last = None;
        let mut ours = 0u64;
        for r in &out {
            prop_assert!(last.is_none_or(|l| r.seq > l));
            last = Some(r.seq);
            match appended.get(&r.seq) {
                Some(b) => { prop_assert_eq!(r.body(), &b[..]); ours += 1; }
                None => prop_assert!(String::from_utf8_lossy(r.body()).contains("relay.buffer")),
            }
        }
        // what verify counted before the repair is what the reader got back
        prop_assert_eq!(ours, report.records());
        ring.append(&[siem_relay::event::EncodedEvent::new(Event::decode(&body(0, 1)).unwrap().meta(), body(0, 1))]).unwrap();
    }
}
