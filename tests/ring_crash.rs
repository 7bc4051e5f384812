//! Crash safety: a child process appends under `fsync = always` and reports
//! each acknowledged append; the test kills it with SIGKILL mid-stream, then
//! reopens the ring. Every acknowledged record must be there, in order, once.
//! The child is this same test binary, re-executed with an environment flag.

use siem_relay::buffer::{Ring, RingSettings, WhenFull};
use siem_relay::config::FsyncPolicy;
use siem_relay::event::{Event, Severity};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "SIEM_RELAY_CRASH_CHILD_DIR";

fn settings(dir: &Path) -> RingSettings {
    RingSettings {
        dir: dir.to_path_buf(),
        max_bytes: 4 << 20,
        segment_bytes: 256 << 10,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Always,
    }
}

fn payload(n: u64) -> String {
    format!("crash-test {n} {}", "p".repeat((n % 200) as usize))
}

/// The child: appends forever, one line on stdout per acknowledged append.
fn child(dir: &str) {
    let (ring, _) = Ring::open(settings(Path::new(dir))).unwrap();
    // a cursor that never reads, under drop_oldest, keeps the ring wrapping
    let _c = ring.cursor("idle", WhenFull::DropOldest).unwrap();
    let out = std::io::stdout();
    for n in 0u64.. {
        let mut e = Event::new("SYSTEM", Some("crash.test".into()), Severity::Info);
        e.message = Some(payload(n));
        let r = ring.append(&[e.encode()]).unwrap();
        let mut o = out.lock();
        writeln!(o, "{} {}", r.start, n).unwrap();
        o.flush().unwrap();
    }
}

#[test]
fn sigkill_mid_write_loses_no_acknowledged_record() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut proc = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_mid_write_loses_no_acknowledged_record",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, d.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
        let mut acked: Vec<(u64, u64)> = Vec::new();
        let target = 1500 + round * 700;
        while acked.len() < target {
            let line = lines.next().expect("child ended early").unwrap();
            let mut it = line.split(' ');
            match (
                it.next().and_then(|s| s.parse().ok()),
                it.next().and_then(|s| s.parse().ok()),
            ) {
                (Some(seq), Some(n)) => acked.push((seq, n)),
                _ => continue, // test harness chatter
            }
        }
        // SIGKILL while the child is still appending
        sigkill(proc.id());
        let _ = proc.wait();

        let (ring, report) = Ring::open(settings(d.path())).unwrap();
        assert!(report.quarantined.is_empty(), "round {round}: {report:?}");
        let mut c = ring
            .cursor(&format!("check{round}"), WhenFull::DropOldest)
            .unwrap();
        let mut got = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        while c.read(10_000, 64 << 20, &mut out).is_some() {}
        let mut last = None;
        for r in &out {
            if let Some(prev) = last {
                assert!(r.seq > prev, "records in order");
            }
            last = Some(r.seq);
            let e = Event::decode(r.body()).unwrap();
            if e.action.as_deref() == Some("crash.test") {
                assert!(
                    got.insert(r.seq, e.message.unwrap()).is_none(),
                    "seq {} twice",
                    r.seq
                );
            }
        }
        // every acknowledged record still retained by the ring is there, with its payload
        let oldest = out.first().map(|r| r.seq).unwrap_or(0);
        let mut checked = 0;
        for (seq, n) in &acked {
            if *seq >= oldest {
                assert_eq!(
                    got.get(seq),
                    Some(&payload(*n)),
                    "round {round}: acknowledged seq {seq} missing"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 1000,
            "round {round}: too few records checked ({checked})"
        );
        drop(c);
        drop(ring);
    }
}

fn sigkill(pid: u32) {
    let st = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
