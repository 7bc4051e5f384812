//! Gives the heap's free memory back to the system once the relay goes
//! quiet after a burst.
//!
//! A burst leaves the allocator holding what its threads freed: glibc keeps
//! each thread's arena at its high-water mark (and raises its own trim
//! threshold after large frees), so a relay that took 500k events in a few
//! seconds stayed ~5 MiB above its idle size for as long as it ran
//! (`benches/memory/idle.sh`). On an appliance that idles between bursts
//! that memory is better given back.
//!
//! [`IdleTrim`] watches an activity count (records appended plus batches
//! sent or failed) once a second. When it has not moved for
//! [`IDLE_AFTER`], and has moved since the last trim, [`trim`] runs once:
//! `malloc_trim(0)`, which returns the free pages of every arena. A busy
//! relay never trims; a quiet one trims once per quiet spell.

use std::time::{Duration, Instant};

/// Whether this build can trim: glibc's allocator on Linux (not the
/// `mimalloc` build, nor musl, whose allocators keep no such reserve).
pub const SUPPORTED: bool = cfg!(all(
    target_os = "linux",
    target_env = "gnu",
    not(feature = "mimalloc")
));

/// How long the activity count must stand still before a trim.
pub const IDLE_AFTER: Duration = Duration::from_secs(5);
/// How often the activity count is looked at.
pub const TICK: Duration = Duration::from_secs(1);

/// Decides when the relay has gone quiet (see the module doc).
#[derive(Debug)]
pub struct IdleTrim {
    last_activity: u64,
    quiet_since: Instant,
    /// Something happened since the last trim (or since start).
    armed: bool,
}

impl IdleTrim {
    /// Starts watching at `now`; a relay that stays quiet from its start
    /// trims once, [`IDLE_AFTER`] later (start-up's own garbage).
    pub fn new(activity: u64, now: Instant) -> IdleTrim {
        IdleTrim {
            last_activity: activity,
            quiet_since: now,
            armed: true,
        }
    }

    /// Takes the activity count at `now`; true when a trim is due.
    pub fn observe(&mut self, activity: u64, now: Instant) -> bool {
        if activity != self.last_activity {
            self.last_activity = activity;
            self.quiet_since = now;
            self.armed = true;
            return false;
        }
        if self.armed && now.saturating_duration_since(self.quiet_since) >= IDLE_AFTER {
            self.armed = false;
            return true;
        }
        false
    }
}

/// Returns the allocator's free memory to the system; the resident set
/// before and after, in bytes (`None` where `/proc/self/status` cannot be
/// read). A no-op but for the reading where not [`SUPPORTED`].
pub fn trim() -> (Option<u64>, Option<u64>) {
    let before = resident_bytes();
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: the relay's one FFI call outside the ring and the CRC:
    // malloc_trim takes no pointers, and glibc locks each arena while it
    // walks it, so other threads may allocate and free meanwhile.
    unsafe {
        libc::malloc_trim(0);
    }
    (before, resident_bytes())
}

/// The process's resident set in bytes (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_per_quiet_spell() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut idle = IdleTrim::new(0, t0);
        // quiet from the start: one trim after IDLE_AFTER, then none
        assert!(!idle.observe(0, s(4)));
        assert!(idle.observe(0, s(5)));
        assert!(!idle.observe(0, s(6)));
        assert!(!idle.observe(0, s(60)));
        // a burst: nothing while the count moves
        for t in 61..70 {
            assert!(!idle.observe(t * 100, s(t)), "busy at {t}s");
        }
        // quiet again: the clock starts at the last move (69 s)
        assert!(!idle.observe(6900, s(73)));
        assert!(idle.observe(6900, s(74)));
        assert!(!idle.observe(6900, s(75)));
    }

    #[test]
    fn a_single_event_rearms() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut idle = IdleTrim::new(7, t0);
        assert!(idle.observe(7, s(5)));
        assert!(!idle.observe(8, s(6)));
        assert!(!idle.observe(8, s(10)));
        assert!(idle.observe(8, s(11)));
    }

    // trim() itself is tested in tests/memory_trim.rs, a process of its
    // own: it measures the process's resident set, which other tests move.
}
