//! The memory-mapped ring buffer on disk.
