//! Spare allocations for the per-line lists of the direct path.
//!
//! The direct encoder collects a line's SD items and its JSON MSG's members
//! into vectors that borrow from the line, so a list cannot outlive its
//! line, but its allocation can: [`SpareVec`] keeps one emptied vector per
//! thread and hands its allocation to the next line. That saves an
//! allocation and a free per list per event (glibc's `malloc`/`free` were
//! ~6% of the relay's ingest samples; most frees happen on another thread
//! than the allocation, past glibc's per-thread cache).
//!
//! Moving an empty `Vec<T>` to a `Vec<U>` whose elements differ from `T`
//! only in lifetimes goes through [`recycle`]: the standard library's
//! in-place collect keeps the allocation when the layouts match, in safe
//! code (and allocates a new one, still correct, if they ever did not).

use std::cell::Cell;

/// An empty `Vec<U>` with `v`'s allocation when `T` and `U` have the same
/// size and alignment; `v`'s elements are dropped.
pub(crate) fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

/// The largest spare kept, in elements (a line with more SD params or JSON
/// members than this allocates its own list).
pub(crate) const MAX_KEPT: usize = 256;

/// One spare, empty vector of a thread (a `thread_local!` holds it).
pub(crate) struct SpareVec<T>(Cell<Vec<T>>);

impl<T> SpareVec<T> {
    pub(crate) const fn new() -> Self {
        SpareVec(Cell::new(Vec::new()))
    }

    /// An empty vector: the spare one, or a new one of `capacity` when
    /// there is none (another list of this thread has it).
    pub(crate) fn take<U>(&self, capacity: usize) -> Vec<U> {
        let v = self.0.take();
        if v.capacity() == 0 {
            return Vec::with_capacity(capacity);
        }
        recycle(v)
    }

    /// Keeps `v`'s allocation (emptied) for the next [`take`](Self::take),
    /// unless the spare held is at least as large or `v` holds more than
    /// [`MAX_KEPT`] elements (one huge line does not pin its list's memory
    /// on the thread for good).
    pub(crate) fn keep<U>(&self, v: Vec<U>) {
        let held = self.0.take();
        let larger = v.capacity() > held.capacity() && v.capacity() <= MAX_KEPT;
        self.0.set(if larger { recycle(v) } else { held });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_keeps_the_allocation() {
        let text = String::from("borrowed");
        let mut v: Vec<(&str, Option<(&str, &str)>)> = Vec::with_capacity(8);
        v.push((&text, None));
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        let w: Vec<(&'static str, Option<(&'static str, &'static str)>)> = recycle(v);
        assert!(w.is_empty());
        assert_eq!((w.as_ptr() as usize, w.capacity()), (ptr, cap));
    }

    #[test]
    fn a_spare_is_handed_out_once_and_the_larger_one_is_kept() {
        let spare: SpareVec<u64> = SpareVec::new();
        let first: Vec<u64> = spare.take(4);
        assert_eq!(first.capacity(), 4);
        let mut big: Vec<u64> = Vec::with_capacity(64);
        big.extend([1, 2, 3]);
        let big_ptr = big.as_ptr() as usize;
        spare.keep(big);
        spare.keep(first); // smaller: dropped, the larger stays
        let again: Vec<u64> = spare.take(4);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr() as usize, big_ptr);
        assert_eq!(again.capacity(), 64);
        // taken: none spare now, so a new one
        let other: Vec<u64> = spare.take(2);
        assert_ne!(other.as_ptr() as usize, big_ptr);
        assert_eq!(other.capacity(), 2);
        // a list of a huge line is not kept
        spare.keep(Vec::<u64>::with_capacity(MAX_KEPT + 1));
        assert_eq!(spare.take::<u64>(3).capacity(), 3);
    }
}
