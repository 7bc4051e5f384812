//! The ring's slot numbers with no file yet, kept as runs (`from..to`), not
//! one entry a slot: a ring's `max_bytes / segment_bytes` may allow far
//! more segments than it has files, and recovery listed every slot number
//! up to that count (a `max_bytes` of 16000000TiB ran the relay out of
//! memory). The memory is one run per hole between the files on disk.
//!
//! It is a stack: [`pop`](UnopenedSlots::pop) takes the slot
//! [`last`](UnopenedSlots::last) names, the lowest of the runs recovery
//! found first, and a slot [`push`](UnopenedSlots::push)ed back is the next
//! one taken.

use std::ops::Range;

/// Slot numbers with no file, taken from the last run, each run from its start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct UnopenedSlots {
    /// Non-empty, disjoint runs; the last one is taken first.
    runs: Vec<Range<usize>>,
    len: usize,
}

impl UnopenedSlots {
    /// The slots of `0..slots` not in `present` (any order, duplicates and
    /// numbers past `slots` allowed), lowest taken first.
    pub(crate) fn missing(slots: usize, present: impl IntoIterator<Item = usize>) -> Self {
        let mut present: Vec<usize> = present.into_iter().filter(|&s| s < slots).collect();
        present.sort_unstable();
        present.dedup();
        let mut runs = Vec::with_capacity(present.len() + 1);
        let mut from = 0;
        for p in present.into_iter().chain(std::iter::once(slots)) {
            if p > from {
                runs.push(from..p);
            }
            from = p + 1;
        }
        runs.reverse();
        let len = runs.iter().map(|r| r.len()).sum();
        UnopenedSlots { runs, len }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot [`pop`](Self::pop) would take.
    pub(crate) fn last(&self) -> Option<usize> {
        self.runs.last().map(|r| r.start)
    }

    pub(crate) fn pop(&mut self) -> Option<usize> {
        let run = self.runs.last_mut()?;
        let slot = run.start;
        run.start += 1;
        if run.start == run.end {
            self.runs.pop();
        }
        self.len -= 1;
        Some(slot)
    }

    /// [`pop`](Self::pop) when `take`.
    pub(crate) fn pop_if(&mut self, take: bool) -> Option<usize> {
        take.then(|| self.pop()).flatten()
    }

    /// Puts `slot` (not in the list) back: it is the next one taken.
    pub(crate) fn push(&mut self, slot: usize) {
        match self.runs.last_mut() {
            Some(run) if run.start == slot + 1 => run.start = slot,
            _ => self.runs.push(slot..slot + 1),
        }
        self.len += 1;
    }

    /// Takes `slot` out of the list; false when it was not in it.
    pub(crate) fn remove(&mut self, slot: usize) -> bool {
        let Some(i) = self.runs.iter().position(|r| r.contains(&slot)) else {
            return false;
        };
        let run = self.runs[i].clone();
        // the part above is taken after the part below, as before
        let parts = [slot + 1..run.end, run.start..slot];
        self.runs
            .splice(i..=i, parts.into_iter().filter(|r| !r.is_empty()));
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut UnopenedSlots) -> Vec<usize> {
        std::iter::from_fn(|| s.pop()).collect()
    }

    #[test]
    fn the_missing_slots_are_taken_lowest_first() {
        let mut s = UnopenedSlots::missing(10, [3, 4, 7, 12, 3]);
        assert_eq!(s.len(), 7);
        assert_eq!(s.last(), Some(0));
        assert_eq!(drain(&mut s), [0, 1, 2, 5, 6, 8, 9]);
        assert!(s.is_empty());
        assert_eq!(s.pop(), None);
    }

    #[test]
    fn a_slot_pushed_back_is_taken_next_and_removal_keeps_the_order() {
        let mut s = UnopenedSlots::missing(8, [2]);
        assert_eq!(s.pop(), Some(0));
        s.push(0);
        s.push(2);
        assert_eq!(s.last(), Some(2));
        assert_eq!(s.len(), 8);
        assert!(s.remove(4));
        assert!(!s.remove(4));
        assert!(!s.remove(9));
        assert_eq!(s.pop_if(false), None);
        assert_eq!(drain(&mut s), [2, 0, 1, 3, 5, 6, 7]);
    }

    /// A ring allowed 2^29 segments with two files on disk: two runs, not
    /// 2^29 numbers.
    #[test]
    fn memory_is_one_run_per_hole_not_one_entry_per_slot() {
        let s = UnopenedSlots::missing(1 << 29, [0, 1]);
        assert_eq!(s.len(), (1 << 29) - 2);
        assert_eq!(s.runs.len(), 1);
        assert!(s.runs.capacity() <= 3);
    }
}
