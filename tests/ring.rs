//! Ring buffer behaviour on real files: append and read, wrap-around under
//! both `when_full` policies, checkpoints across restarts, and recovery from
//! torn tails and damaged segments.

use siem_relay::buffer::{AppendError, ReadRecord, Ring, RingSettings, WhenFull};
use siem_relay::config::FsyncPolicy;
use siem_relay::event::{EncodedEvent, Event, Severity};
use std::path::Path;
use std::time::Duration;

fn settings(dir: &Path, max: u64, seg: u64) -> RingSettings {
    RingSettings {
        dir: dir.to_path_buf(),
        max_bytes: max,
        segment_bytes: seg,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Never,
    }
}

fn ev(n: u64) -> EncodedEvent {
    let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
    e.message = Some(format!("event number {n} {}", "x".repeat(200)));
    e.encode()
}

fn msg_of(r: &ReadRecord) -> String {
    Event::decode(r.body()).unwrap().message.unwrap_or_default()
}

fn read_all(c: &mut siem_relay::buffer::Cursor) -> Vec<ReadRecord> {
    let mut out = Vec::new();
    let acker = c.acker();
    while let Some(r) = c.read(1000, 1 << 20, &mut out) {
        acker.ack(r);
    }
    c.commit().unwrap();
    out
}

/// Writes events `0..n` into a fresh ring of 512 KiB in 64 KiB segments in
/// `dir`, flushed, and closes it.
fn write_closed_ring(dir: &Path, n: u64) {
    let (ring, _) = Ring::open(settings(dir, 512 << 10, 64 << 10)).unwrap();
    ring.append(&(0..n).map(ev).collect::<Vec<_>>()).unwrap();
    ring.close().unwrap();
}

#[test]
fn append_then_read_in_order() {
    let d = tempfile::tempdir().unwrap();
    let (ring, rep) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
    assert!(rep.is_clean());
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    let r = ring.append(&(0..100).map(ev).collect::<Vec<_>>()).unwrap();
    assert_eq!(r, 0..100);
    let got = read_all(&mut c);
    assert_eq!(got.len(), 100);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert!(msg_of(r).starts_with(&format!("event number {i} ")));
    }
    assert_eq!(c.lag(), 0);
    assert_eq!(c.dropped(), 0);
}

#[test]
fn second_process_cannot_open_the_same_ring() {
    let d = tempfile::tempdir().unwrap();
    let (_ring, _) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
    let e = Ring::open(settings(d.path(), 1 << 20, 256 << 10))
        .err()
        .unwrap();
    assert!(e.to_string().contains("in use"), "{e}");
    // an operator's `rm LOCK` ("a stale lock file") does not let one in:
    // the directory itself is locked too (two relays appended over each
    // other's acknowledged records)
    std::fs::remove_file(d.path().join("LOCK")).unwrap();
    let e = Ring::open(settings(d.path(), 1 << 20, 256 << 10))
        .err()
        .expect("still locked");
    assert!(e.to_string().contains("in use"), "{e}");
}

/// A `drop_oldest` destination's batch in flight while the ring reuses its
/// records: they stay in its `lag` (not yet delivered, not dropped) until
/// acknowledged, so appended = lag + dropped + read-and-acknowledged holds
/// throughout. They were in neither (100 records in no counter in a
/// tester's run).
#[test]
fn records_of_a_batch_in_flight_that_the_ring_reused_stay_in_lag() {
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path(), 256 << 10, 64 << 10)).unwrap();
    let mut c = ring.cursor("slow", WhenFull::DropOldest).unwrap();
    ring.append(&(0..50).map(ev).collect::<Vec<_>>()).unwrap();
    let mut batch = Vec::new();
    let claimed = c.read(50, 1 << 20, &mut batch).expect("a batch");
    assert_eq!(claimed, 0..50);
    assert_eq!(c.lag(), 50, "claimed, not acknowledged");
    // the ring wraps past the batch while it is "sent"
    for chunk in 0..20u64 {
        ring.append(
            &(0..100)
                .map(|i| ev(1000 + chunk * 100 + i))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    let oldest = ring.oldest_seq();
    assert!(
        oldest > 50,
        "the batch's records were reused (oldest {oldest})"
    );
    c.commit().unwrap();
    let unread = ring.next_seq() - oldest;
    assert_eq!(c.lag(), unread + 50, "the batch in flight is still lag");
    assert_eq!(
        c.lag() + c.dropped(),
        ring.next_seq(),
        "every record in one counter"
    );
    // delivered: no longer lag
    c.acker().ack(claimed);
    c.commit().unwrap();
    assert_eq!(c.lag(), unread);
    assert_eq!(c.lag() + c.dropped() + 50, ring.next_seq());
}

#[test]
fn wrap_around_fast_gets_all_stalled_drop_oldest_counts_exactly() {
    let d = tempfile::tempdir().unwrap();
    // 4 segments of 64KiB: ~250 events each of ~300 bytes; write 5000
    let (ring, _) = Ring::open(settings(d.path(), 256 << 10, 64 << 10)).unwrap();
    let mut fast = ring.cursor("fast", WhenFull::DropOldest).unwrap();
    let mut stalled = ring.cursor("stalled", WhenFull::DropOldest).unwrap();
    let mut fast_all = Vec::new();
    let mut written = 0u64;
    for chunk in 0..50 {
        let batch: Vec<_> = (0..100).map(|i| ev(chunk * 100 + i)).collect();
        ring.append(&batch).unwrap();
        written += 100;
        fast_all.extend(read_all(&mut fast));
    }
    let fast_seen: Vec<_> = fast_all
        .iter()
        .filter(|r| msg_of(r).starts_with("event number"))
        .cloned()
        .collect();
    assert_eq!(
        fast_seen.len() as u64,
        written,
        "fast destination must receive everything"
    );
    for (i, r) in fast_seen.iter().enumerate() {
        assert!(msg_of(r).starts_with(&format!("event number {i} ")));
    }
    // its lag counts the records still in the ring, not those already reused
    let retained = ring.next_seq() - ring.oldest_seq();
    assert!(retained < written);
    assert_eq!(stalled.lag(), retained);
    // the stalled one now reads what is left: dropped + delivered + overflow notices == all records
    let rest = read_all(&mut stalled);
    let notices = rest
        .iter()
        .filter(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.overflow"))
        .count() as u64;
    let events = rest.len() as u64 - notices;
    let dropped = stalled.dropped();
    assert!(dropped > 0);
    assert_eq!(
        ring.next_seq(),
        dropped + rest.len() as u64,
        "every record is either read or counted as dropped"
    );
    assert!(events < written);
    // the overflow events name the destination and the count, and sum to the drop count
    let mut reported = 0;
    fast_all.extend(read_all(&mut fast));
    for r in fast_all {
        let e = Event::decode(r.body()).unwrap();
        if e.action.as_deref() == Some("relay.buffer.overflow")
            && e.metadata.as_ref().unwrap()["destination"] == "stalled"
        {
            let md = e.metadata.unwrap();
            reported += md["dropped"].as_u64().unwrap();
            assert_eq!(md["dropped_total"], reported, "each carries the sum so far");
        }
    }
    assert_eq!(
        reported, dropped,
        "overflow events report the exact drop count"
    );
    // the stalled destination reads only the reports the ring kept (it
    // reused the others while the destination lagged): the last one it
    // reads tells the whole loss
    let totals: Vec<u64> = rest
        .iter()
        .filter_map(|r| Event::decode(r.body()).ok())
        .filter(|e| e.action.as_deref() == Some("relay.buffer.overflow"))
        .map(|e| e.metadata.unwrap()["dropped_total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals.last(), Some(&dropped), "{totals:?}");
    assert_eq!(fast.dropped(), 0);
    // the reports are appended records too: the counter tells them all
    // (it left them out: 12,000 appended for a `next_seq` of 12,080)
    let stats = ring.stats();
    assert!(ring.next_seq() > written, "reports were appended");
    assert_eq!(stats.appended, ring.next_seq(), "{stats:?}");
}

#[test]
fn block_policy_refuses_appends_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path(), 256 << 10, 64 << 10)).unwrap();
    let mut fast = ring.cursor("fast", WhenFull::DropOldest).unwrap();
    let mut blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
    let mut n = 0u64;
    let full = loop {
        match ring.append(&[ev(n)]) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 10_000, "ring never filled");
    };
    assert_eq!(full, AppendError::Full("blocked".into()));
    // the append side waits: a blocking append times out while nobody reads
    assert!(matches!(
        ring.append_blocking(&[ev(n)], Duration::from_millis(100)),
        Err(AppendError::Full(_))
    ));
    // a reader in another thread drains; the blocked append then goes through
    let got_fast = read_all(&mut fast).len() as u64;
    assert_eq!(got_fast, n);
    let ring2 = ring.clone();
    let waiter =
        std::thread::spawn(move || ring2.append_blocking(&[ev(999_999)], Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(100));
    let mut got = read_all(&mut blocked);
    assert!(waiter.join().unwrap().is_ok());
    got.extend(read_all(&mut blocked));
    assert_eq!(got.len() as u64, n + 1);
    assert_eq!(blocked.dropped(), 0);
    for (i, r) in got.iter().take(n as usize).enumerate() {
        assert!(msg_of(r).starts_with(&format!("event number {i} ")));
    }
}

#[test]
fn restart_resumes_each_cursor_from_its_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    {
        let (ring, _) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
        let mut a = ring.cursor("a", WhenFull::DropOldest).unwrap();
        let mut b = ring.cursor("b", WhenFull::DropOldest).unwrap();
        ring.append(&(0..300).map(ev).collect::<Vec<_>>()).unwrap();
        let mut out = Vec::new();
        // a: acknowledges 100, claims 50 more without acknowledging them
        let r1 = a.read(100, 1 << 20, &mut out).unwrap();
        let _r2 = a.read(50, 1 << 20, &mut out).unwrap();
        a.acker().ack(r1);
        a.commit().unwrap();
        // b: acknowledges a later range first (out of order): durable must not move past the gap
        let r1 = b.read(10, 1 << 20, &mut out).unwrap();
        let r2 = b.read(10, 1 << 20, &mut out).unwrap();
        b.acker().ack(r2);
        assert_eq!(b.commit().unwrap(), 0);
        b.acker().ack(r1);
        assert_eq!(b.commit().unwrap(), 20);
        ring.sync().unwrap();
    }
    let (ring, rep) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
    assert_eq!(rep.records(), 300);
    let mut a = ring.cursor("a", WhenFull::DropOldest).unwrap();
    let mut b = ring.cursor("b", WhenFull::DropOldest).unwrap();
    let ga = read_all(&mut a);
    assert_eq!(
        ga.first().unwrap().seq,
        100,
        "a resumes at its first unacknowledged record"
    );
    assert_eq!(ga.len(), 200);
    let gb = read_all(&mut b);
    assert_eq!(gb.first().unwrap().seq, 20);
    assert_eq!(gb.len(), 280);
    // new appends continue the sequence
    assert_eq!(ring.append(&[ev(300)]).unwrap(), 300..301);
}

/// A running destination writes its checkpoint only once enough records
/// were acknowledged since the last one (`min_records`), or on any change
/// when asked with 0 (its at-least-every-second write, and at stop). The
/// acknowledgements are applied either way: the ring's space follows them.
#[test]
fn a_checkpoint_is_due_once_enough_records_were_acknowledged() {
    use siem_relay::buffer::checkpoint;
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
    let mut a = ring.cursor("a", WhenFull::DropOldest).unwrap();
    ring.append(&(0..100).map(ev).collect::<Vec<_>>()).unwrap();
    let mut out = Vec::new();
    let r = a.read(5, 1 << 20, &mut out).unwrap();
    a.acker().ack(r);
    assert!(a.checkpoint_due(10).is_none(), "5 of 10 acknowledged");
    assert_eq!(
        a.lag(),
        95,
        "the acknowledgements were applied all the same"
    );
    let r = a.read(5, 1 << 20, &mut out).unwrap();
    a.acker().ack(r);
    let write = a.checkpoint_due(10).expect("10 of 10 acknowledged");
    write.write().unwrap();
    a.checkpoint_written(write);
    let path = checkpoint::path_for(&d.path().join("cursors"), "a");
    assert_eq!(checkpoint::load(&path).unwrap().map(|c| c.seq), Some(10));
    assert!(a.checkpoint_due(0).is_none(), "nothing new");
    let r = a.read(1, 1 << 20, &mut out).unwrap();
    a.acker().ack(r);
    assert!(a.checkpoint_due(10).is_none());
    let write = a.checkpoint_due(0).expect("any change, with 0");
    assert_eq!(write.checkpoint().seq, 11);
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let seg_file = d.path().join("segment-00000.dat");
    let end;
    {
        let (ring, _) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
        ring.append(&(0..10).map(ev).collect::<Vec<_>>()).unwrap();
        ring.sync().unwrap();
        let rep = siem_relay::buffer::inspect(d.path()).unwrap();
        end = rep.segments[0].bytes_used;
    }
    // simulate a torn write: the last record's final bytes never reached the disk
    let mut bytes = std::fs::read(&seg_file).unwrap();
    for b in &mut bytes[end - 40..end] {
        *b = 0;
    }
    std::fs::write(&seg_file, &bytes).unwrap();
    let (ring, rep) = Ring::open(settings(d.path(), 1 << 20, 256 << 10)).unwrap();
    assert_eq!(rep.records(), 9);
    assert!(rep.torn_tail_bytes() > 0);
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    // the damage notice goes in with the first append after the cursors are open
    ring.append(&[ev(10)]).unwrap();
    let got = read_all(&mut c);
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert_eq!(&seqs[..9], &(0..9).collect::<Vec<_>>()[..]);
    // the torn record is gone (its sequence number is not reused) and a damage notice was appended
    assert!(got[9..]
        .iter()
        .any(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.damage")));
}

#[test]
fn unreadable_segment_is_quarantined_and_the_rest_salvaged() {
    let d = tempfile::tempdir().unwrap();
    {
        let (ring, _) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
        for i in 0..10 {
            ring.append(&(0..100).map(|j| ev(i * 100 + j)).collect::<Vec<_>>())
                .unwrap();
        }
        ring.sync().unwrap();
    }
    let before = siem_relay::buffer::inspect(d.path()).unwrap();
    assert!(before.segments.len() >= 3);
    // smash the header of the second segment and a record in the middle of the third
    let second = d.path().join(&before.segments[1].file);
    let mut b = std::fs::read(&second).unwrap();
    b[0..8].copy_from_slice(b"GARBAGE!");
    std::fs::write(&second, &b).unwrap();
    let third = d.path().join(&before.segments[2].file);
    let mut b = std::fs::read(&third).unwrap();
    b[1000] ^= 0x55;
    std::fs::write(&third, &b).unwrap();

    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.quarantined.len(), 1);
    assert!(rep.quarantined[0].salvageable_records > 0);
    assert!(d.path().join("quarantine").read_dir().unwrap().count() == 1);
    let lost_in_third: u64 = rep
        .segments
        .iter()
        .flat_map(|s| s.damage.iter())
        .map(|d| d.2)
        .sum();
    assert_eq!(
        lost_in_third, 1,
        "one damaged record skipped, its neighbours kept"
    );
    assert_eq!(
        rep.damaged_records(),
        1 + before.segments[1].records,
        "plus the quarantined segment's records"
    );
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    // the relay goes on: appends work, and the quarantine notice goes in with the first one
    ring.append(&[ev(5000)]).unwrap();
    let got = read_all(&mut c);
    let events = got
        .iter()
        .filter(|r| msg_of(r).starts_with("event number"))
        .count() as u64;
    assert_eq!(events, 1000 - before.segments[1].records - 1 + 1);
    let bodies: String = got
        .iter()
        .map(|r| String::from_utf8_lossy(r.body()).into_owned())
        .collect();
    assert!(bodies.contains("relay.buffer.quarantine"));
}

#[tokio::test]
async fn async_append_waits_for_a_blocked_destination() {
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path(), 128 << 10, 64 << 10)).unwrap();
    let mut blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
    let mut n = 0;
    while ring.append(&[ev(n)]).is_ok() {
        n += 1;
    }
    let r2 = ring.clone();
    let task = tokio::spawn(async move { r2.append_owned(vec![ev(1_000_000)]).await.1 });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !task.is_finished(),
        "append must wait while the block destination lags"
    );
    let got = read_all(&mut blocked);
    assert_eq!(got.len() as u64, n);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn recovery_notice_never_evicts_a_block_destinations_data() {
    let d = tempfile::tempdir().unwrap();
    {
        let (ring, _) = Ring::open(settings(d.path(), 192 << 10, 64 << 10)).unwrap();
        let _blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
        let mut n = 0;
        while ring.append(&[ev(n)]).is_ok() {
            n += 1;
        }
        ring.sync().unwrap();
    }
    // damage a record in the middle of the second segment: reopening has a
    // notice to append, and the active segment has no room left for it
    let rep = siem_relay::buffer::inspect(d.path()).unwrap();
    let p = d.path().join(&rep.segments[1].file);
    let mut b = std::fs::read(&p).unwrap();
    b[5000] ^= 0xff;
    std::fs::write(&p, &b).unwrap();
    let (ring, rep) = Ring::open(settings(d.path(), 192 << 10, 64 << 10)).unwrap();
    assert!(!rep.notices().is_empty());
    let mut blocked = ring.cursor("blocked", WhenFull::Block).unwrap();
    assert_eq!(
        blocked.read_position(),
        0,
        "nothing of the block destination was evicted"
    );
    let got = read_all(&mut blocked);
    assert_eq!(got.first().unwrap().seq, 0);
    assert_eq!(blocked.dropped(), 0);
    // the notice goes in once there is room
    assert!(ring.append(&[ev(1)]).is_ok());
    let got = read_all(&mut blocked);
    assert!(got
        .iter()
        .any(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.damage")));
}

#[test]
fn a_segment_overlapping_an_earlier_one_is_quarantined() {
    use siem_relay::buffer::segment::SegmentHeader;
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 600);
    let before = siem_relay::buffer::inspect(d.path()).unwrap();
    assert!(before.segments.len() >= 3);
    // a valid-looking header whose sequence numbers go back to 0
    let p = d.path().join(&before.segments[2].file);
    let mut b = std::fs::read(&p).unwrap();
    let h = SegmentHeader {
        id: before.segments[2].id,
        first_seq: 0,
        created_ms: 0,
    };
    b[..64].copy_from_slice(&h.encode());
    std::fs::write(&p, &b).unwrap();
    let v = siem_relay::buffer::inspect(d.path()).unwrap();
    assert_eq!(v.quarantined.len(), 1);
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.quarantined.len(), 1);
    assert!(rep.quarantined[0].reason.contains("overlap"));
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    let got = read_all(&mut c);
    assert!(
        got.windows(2).all(|w| w[1].seq > w[0].seq),
        "a reader never goes backwards"
    );
}

/// A crash between creating a new segment file and sizing it leaves an
/// empty (or all-zero, short) file: a slot never used, not damage. It is
/// neither quarantined nor reported, and the ring goes on using the slot.
#[test]
fn a_segment_file_cut_short_while_being_created_is_a_free_slot() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 50);
    let used = siem_relay::buffer::inspect(d.path())
        .unwrap()
        .segments
        .len();
    std::fs::write(d.path().join("segment-00005.dat"), b"").unwrap();
    std::fs::write(d.path().join("segment-00006.dat"), [0u8; 10]).unwrap();
    assert!(siem_relay::buffer::inspect(d.path())
        .unwrap()
        .quarantined
        .is_empty());
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert!(rep.quarantined.is_empty(), "{rep:?}");
    assert_eq!(rep.segments.len(), used);
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    // enough to fill every slot, the two short ones included
    for i in 0..10 {
        ring.append(&(0..100).map(|j| ev(1000 + i * 100 + j)).collect::<Vec<_>>())
            .unwrap();
    }
    assert!(!read_all(&mut c).is_empty());
    // a short file with data in it is still damage
    drop(c);
    drop(ring);
    let seg = d.path().join("segment-00007.dat");
    let len = std::fs::metadata(&seg).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0);
    std::fs::write(&seg, b"SIEMSEG").unwrap();
    let (_ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.quarantined.len(), 1, "{rep:?}");
}

/// A slot whose header was cleared for reuse keeps its old records behind
/// the header. Found by the `ring_recovery` fuzz target: with no other
/// segment and no checkpoint, recovery started a segment there at sequence
/// 0, its scan took the stale records for new ones, and a reader got them
/// (and then new records numbered below them).
#[test]
fn records_behind_a_cleared_header_are_never_read_as_new() {
    use siem_relay::buffer::segment::DATA_START;
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 50);
    let seg = d.path().join("segment-00000.dat");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[..DATA_START].fill(0); // what the maintenance thread's clear does
    std::fs::write(&seg, &bytes).unwrap();
    let offline = siem_relay::buffer::inspect(d.path()).unwrap();
    assert_eq!(offline.records(), 0);
    assert!(offline.next_seq >= 50, "{offline:?}");

    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert!(rep.next_seq >= 50, "{rep:?}");
    assert_eq!(rep.records(), 0, "{rep:?}");
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    assert!(read_all(&mut c).is_empty(), "stale records read as new");
    let new = ring.append(&[ev(7)]).unwrap();
    assert!(new.start >= 50, "{new:?} reuses a stale record's number");
    let got = read_all(&mut c);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, new.start);
    assert!(msg_of(&got[0]).starts_with("event number 7 "));
}

/// Many tasks on several threads append at once, with a thread appending
/// the blocking way among them: every batch is stored once, in one piece,
/// whether it was appended by its own task or by the one holding the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_each_stored_once_and_in_one_piece() {
    let d = tempfile::tempdir().unwrap();
    let (ring, _) = Ring::open(settings(d.path(), 64 << 20, 1 << 20)).unwrap();
    let mut cursor = ring.cursor("c", WhenFull::DropOldest).unwrap();
    const TASKS: u64 = 24;
    const BATCHES: u64 = 40;
    const SIZE: u64 = 25;
    let batch = |t: u64, b: u64| {
        let first = (t * BATCHES + b) * SIZE;
        (first..first + SIZE).map(ev).collect::<Vec<_>>()
    };
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let ring = ring.clone();
        tasks.push(tokio::spawn(async move {
            let mut ranges = Vec::new();
            for b in 0..BATCHES {
                let (back, r) = ring.append_owned(batch(t, b)).await;
                assert_eq!(back.len() as u64, SIZE);
                ranges.push((t * BATCHES + b, r.unwrap()));
            }
            ranges
        }));
    }
    let blocking = {
        let ring = ring.clone();
        std::thread::spawn(move || {
            (0..BATCHES)
                .map(|b| (TASKS * BATCHES + b, ring.append(&batch(TASKS, b)).unwrap()))
                .collect::<Vec<_>>()
        })
    };
    let mut ranges = blocking.join().unwrap();
    for t in tasks {
        ranges.extend(t.await.unwrap());
    }
    let got = read_all(&mut cursor);
    let total = (TASKS + 1) * BATCHES * SIZE;
    assert_eq!(got.len() as u64, total);
    let first_seq = got[0].seq;
    for (id, r) in ranges {
        assert_eq!(r.end - r.start, SIZE, "batch {id} in one piece");
        let numbers: Vec<u64> = r
            .map(|s| {
                let msg = msg_of(&got[(s - first_seq) as usize]);
                msg.split(' ').nth(2).unwrap().parse().unwrap()
            })
            .collect();
        let want: Vec<u64> = (id * SIZE..(id + 1) * SIZE).collect();
        assert_eq!(numbers, want, "batch {id}");
    }
    assert!(
        ring.stats().queued_appends > 0,
        "with 25 appenders on 4 threads some must have found the writer busy"
    );
}

/// `segment_bytes` changed between runs, up or down: the active segment
/// from before is filled to its own end, the next ones have the new size,
/// and every record, old and new, is read once, in order. (Raising it
/// once made the writer take the old, smaller segment for a new one's
/// size: a panic, and appends answered but lost.)
#[test]
fn segment_bytes_changed_between_runs_keeps_every_record() {
    for (before, after) in [(64u64 << 10, 128u64 << 10), (128 << 10, 64 << 10)] {
        let d = tempfile::tempdir().unwrap();
        {
            let (ring, _) = Ring::open(settings(d.path(), 1 << 20, before)).unwrap();
            let mut c = ring.cursor("a", WhenFull::Block).unwrap();
            // the active segment part full
            ring.append(&(0..300).map(ev).collect::<Vec<_>>()).unwrap();
            assert_eq!(read_all(&mut c).len(), 300);
            ring.append(&(300..350).map(ev).collect::<Vec<_>>())
                .unwrap();
            ring.close().unwrap();
        }
        let (ring, rep) = Ring::open(settings(d.path(), 1 << 20, after)).unwrap();
        assert!(rep.is_clean(), "{before} → {after}: {rep:?}");
        let mut c = ring.cursor("a", WhenFull::Block).unwrap();
        // across the old active segment's end, and a few new segments
        for chunk in 0..10u64 {
            let from = 350 + chunk * 100;
            let r = ring
                .append(&(from..from + 100).map(ev).collect::<Vec<_>>())
                .unwrap();
            assert_eq!(r.end - r.start, 100);
            let got = read_all(&mut c);
            let first = if chunk == 0 { 300 } else { from };
            let want: Vec<String> = (first..from + 100)
                .map(|i| format!("event number {i} "))
                .collect();
            assert_eq!(got.len(), want.len(), "{before} → {after}, chunk {chunk}");
            for (r, w) in got.iter().zip(&want) {
                assert!(
                    msg_of(r).starts_with(w),
                    "{before} → {after}: {}",
                    msg_of(r)
                );
            }
        }
        ring.close().unwrap();
        drop((c, ring));
        let (_, rep) = Ring::open(settings(d.path(), 1 << 20, after)).unwrap();
        assert!(rep.is_clean(), "{before} → {after}, reopened: {rep:?}");
    }
}

/// Damage in a middle segment stays on disk until the segment is reused,
/// and every start finds it again: it is reported (a SECURITY notice, and
/// `buffer verify`'s "new damage") at the first start only.
#[test]
fn damage_is_reported_once_not_at_every_start() {
    let d = tempfile::tempdir().unwrap();
    let s = || settings(d.path(), 1 << 20, 64 << 10);
    {
        let (ring, _) = Ring::open(s()).unwrap();
        ring.append(&(0..600).map(ev).collect::<Vec<_>>()).unwrap();
        ring.sync().unwrap();
    }
    let rep = siem_relay::buffer::inspect(d.path()).unwrap();
    assert!(rep.segments.len() >= 3, "{rep:?}");
    // flip bytes in the middle of the first, full segment
    let first = d.path().join(&rep.segments[0].file);
    let mut bytes = std::fs::read(&first).unwrap();
    for b in &mut bytes[20_000..20_004] {
        *b ^= 0xff;
    }
    std::fs::write(&first, &bytes).unwrap();
    assert!(siem_relay::buffer::inspect(d.path())
        .unwrap()
        .has_new_damage());

    let notices = |ring: &Ring| {
        let mut c = ring.cursor("n", WhenFull::DropOldest).unwrap();
        ring.append(&[ev(9999)]).unwrap();
        let n = read_all(&mut c)
            .iter()
            .filter(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.damage"))
            .count();
        drop(c);
        n
    };
    let damaged;
    {
        let (ring, rep) = Ring::open(s()).unwrap();
        damaged = rep.damaged_records();
        assert!(damaged > 0 && rep.has_new_damage(), "{rep:?}");
        assert_eq!(notices(&ring), 1, "reported at the first start");
    }
    for start in 2..4 {
        let (ring, rep) = Ring::open(s()).unwrap();
        assert_eq!(rep.damaged_records(), damaged, "still on disk");
        assert!(!rep.has_new_damage(), "start {start}: {rep:?}");
        // the cursor resumes past the first start's notice: no new one
        assert_eq!(notices(&ring), 0, "start {start}");
    }
    let rep = siem_relay::buffer::inspect(d.path()).unwrap();
    assert!(!rep.is_clean() && !rep.has_new_damage(), "{rep:?}");
}

/// `max_bytes` lowered between runs: the ring gives segments back as it
/// rolls (free ones first, then the oldest, counted as dropped for the
/// destinations behind) until its files fit the new size, and every record
/// is still read or counted.
#[test]
fn a_lowered_max_bytes_is_applied_as_the_ring_rolls() {
    let d = tempfile::tempdir().unwrap();
    let files = || {
        std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
            .count()
    };
    let mut next = 0u64;
    let read_before;
    {
        let (ring, _) = Ring::open(settings(d.path(), 1 << 20, 64 << 10)).unwrap();
        let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
        while files() < 16 || ring.stats().segments < 16 {
            ring.append(&(next..next + 50).map(ev).collect::<Vec<_>>())
                .unwrap();
            next += 50;
            assert!(next < 100_000);
        }
        // the destination is behind by some records
        let _ = read_all(&mut c);
        read_before = ring.next_seq();
        ring.append(&(next..next + 300).map(ev).collect::<Vec<_>>())
            .unwrap();
        next += 300;
        ring.close().unwrap();
    }
    assert!(files() >= 16);
    let (ring, rep) = Ring::open(settings(d.path(), 256 << 10, 64 << 10)).unwrap();
    assert!(rep.is_clean(), "{rep:?}");
    let mut c = ring.cursor("a", WhenFull::DropOldest).unwrap();
    for _ in 0..40 {
        ring.append(&(next..next + 50).map(ev).collect::<Vec<_>>())
            .unwrap();
        next += 50;
    }
    assert!(files() <= 4, "{} segment files for 4 slots", files());
    let got = read_all(&mut c);
    let notices = got
        .iter()
        .filter(|r| String::from_utf8_lossy(r.body()).contains("relay.buffer.overflow"))
        .count() as u64;
    assert!(c.dropped() > 0);
    assert!(notices > 0);
    assert_eq!(
        ring.next_seq(),
        read_before + c.dropped() + got.len() as u64,
        "every record read before, read now, or counted as dropped"
    );
}

/// A destination's checkpoint above the ring's last record (a crash lost the
/// ring's tail after the records were acknowledged, or the checkpoint file
/// was changed): the records below it count as delivered, and the report
/// says so (it was silent, and a changed checkpoint skipped every record).
#[test]
fn a_checkpoint_ahead_of_the_ring_is_reported() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 100);
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.checkpoint_ahead, None, "no checkpoint: nothing ahead");
    drop(ring);
    std::fs::write(
        d.path().join("cursors/out.json"),
        r#"{"seq":500,"dropped":0,"skipped_to":0}"#,
    )
    .unwrap();
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.checkpoint_ahead, Some((500, 100)));
    assert_eq!(
        ring.next_seq(),
        500,
        "numbers never go back below an acknowledgement"
    );
}

/// `buffer salvage` into a ring with no room: it refuses, the file stays in
/// quarantine, and no record is overwritten. Run offline, no destination
/// held its records, and it wrapped over records none had received.
#[test]
fn salvage_never_overwrites_records_not_yet_delivered() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 1000);
    let first = siem_relay::buffer::inspect(d.path()).unwrap();
    let second = d.path().join(&first.segments[1].file);
    let mut b = std::fs::read(&second).unwrap();
    b[0..8].copy_from_slice(b"GARBAGE!");
    std::fs::write(&second, &b).unwrap();
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert_eq!(rep.quarantined.len(), 1);
    // new records fill the ring (no destination runs: nothing held it)
    for i in 0..30 {
        ring.append(
            &(0..100)
                .map(|j| ev(10_000 + i * 100 + j))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    let oldest = ring.oldest_seq();
    let e = siem_relay::buffer::salvage(&ring, &[]).expect_err("no room");
    assert!(e.to_string().contains("stays in quarantine"), "{e}");
    assert_eq!(ring.oldest_seq(), oldest, "nothing overwritten");
    assert_eq!(
        siem_relay::buffer::recovery::quarantined_files(d.path()).len(),
        1
    );
}

/// A torn tail is reported once: the start that cuts it reports it, and
/// the gap the cut leaves (the torn record's number is not reused, so the
/// next records start above it) is not news at the next start, nor for
/// `buffer verify` (QA: the same tear reported again as a lost record,
/// with a second `relay.buffer.damage` event, and `verify` said DAMAGED).
#[test]
fn a_cut_torn_tail_is_reported_once() {
    let d = tempfile::tempdir().unwrap();
    write_closed_ring(d.path(), 1000);
    let before = siem_relay::buffer::inspect(d.path()).unwrap();
    let last = before.segments.last().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path().join(&last.file))
        .unwrap();
    file.set_len((last.bytes_used - 20) as u64).unwrap();
    drop(file);
    let (ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert!(rep.has_new_damage(), "the tear is news: {rep:?}");
    ring.append(&(0..10).map(ev).collect::<Vec<_>>()).unwrap();
    ring.close().unwrap();
    drop(ring);
    let (_ring, rep) = Ring::open(settings(d.path(), 512 << 10, 64 << 10)).unwrap();
    assert!(!rep.has_new_damage(), "reported again: {rep:?}");
}
