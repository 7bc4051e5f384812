//! A dropped ring ends and joins its maintenance thread (a test binary of
//! its own: it counts the process's threads by name).
//!
//! The thread used to sleep out its tick (a second without interval fsync)
//! before it noticed; the `ring_recovery` fuzz target, which opens a ring
//! per input, had hundreds of them alive and LeakSanitizer reported their
//! stacks at exit.

use siem_relay::buffer::{Ring, RingSettings};
use siem_relay::config::FsyncPolicy;
use std::time::{Duration, Instant};

/// Threads of this process named like the ring's maintenance thread (the
/// kernel keeps 15 bytes of a thread's name).
fn maintenance_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "ring-maintenanc")
        .count()
}

#[test]
fn dropping_a_ring_ends_its_maintenance_thread_at_once() {
    let dirs: Vec<_> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let rings: Vec<Ring> = dirs
        .iter()
        .map(|d| {
            Ring::open(RingSettings {
                dir: d.path().to_path_buf(),
                max_bytes: 4 << 20,
                segment_bytes: 1 << 20,
                max_age: Duration::ZERO,
                fsync: FsyncPolicy::Never, // a tick of one second
            })
            .unwrap()
            .0
        })
        .collect();
    // a new thread names itself once it runs: wait for all eight
    wait_for("8 maintenance threads", || maintenance_threads() == 8);
    drop(rings);
    // joined by the drop; the kernel may list an exiting thread a moment
    // longer, but not for the one-second tick the threads slept out before
    wait_for("no maintenance thread", || maintenance_threads() == 0);
}

/// Polls `done` for up to 400 ms.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_millis(400);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} maintenance threads alive",
            maintenance_threads()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
