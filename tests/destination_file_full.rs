//! The `file` destination when the disk refuses a write midway (a full
//! disk; here the process's file size limit, which fails the same way: the
//! kernel writes what fits, then refuses the rest). The retry must write the
//! batch whole after the last whole line: no torn line glued to the next
//! batch, no line twice.
//!
//! Its own test binary: the size limit applies to the whole process.

mod common;

use common::*;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{SigSet, Signal};
use siem_relay::destinations::{file, BuildContext, Delivery};

#[test]
fn a_write_the_disk_refuses_midway_is_cut_off_and_the_retry_writes_it_whole() {
    // the limit's signal would end the process; blocked, the write fails
    // with EFBIG instead (threads started later inherit the mask)
    SigSet::from(Signal::SIGXFSZ).thread_block().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    let ctx = BuildContext {
        name: "archive".into(),
        base_dir: dir.path().to_path_buf(),
        data_dir: dir.path().to_path_buf(),
    };
    let sink = file::build(
        table(&format!(
            "path = {:?}\nfsync = false\n",
            path.to_str().unwrap()
        )),
        &ctx,
    )
    .unwrap();
    let first = batch_of((0..10).map(event).collect());
    let second = batch_of((10..40).map(event).collect());
    let first_bytes = first.body_bytes() + first.len();

    rt.block_on(async {
        assert_eq!(sink.send(&first).await, Delivery::Delivered);
        let (_, hard) = getrlimit(Resource::RLIMIT_FSIZE).unwrap();
        // room for a part of the second batch only
        setrlimit(Resource::RLIMIT_FSIZE, first_bytes as u64 + 700, hard).unwrap();
        let refused = sink.send(&second).await;
        setrlimit(Resource::RLIMIT_FSIZE, hard, hard).unwrap();
        assert!(
            matches!(&refused, Delivery::Retry { reason, .. } if reason.contains("File too large")),
            "{refused:?}"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            first_bytes as u64,
            "the part of the batch that got in is cut off"
        );
        assert_eq!(sink.send(&second).await, Delivery::Delivered);
    });

    let text = std::fs::read_to_string(&path).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("every line whole JSON");
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("evt_test_{i}")).collect();
    assert_eq!(ids, expected, "each event once, in order");
}
