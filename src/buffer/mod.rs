//! The memory-mapped ring buffer on disk: every accepted event is written
//! once, and each destination reads it through its own [`Cursor`].
//!
//! - [`segment`]: one segment file, written with `pwrite`, read through a
//!   read-only shared map, with a prefetch hint for readers walking it (all
//!   the project's `unsafe` but one call: the records' CRC32C in
//!   `event::crc32c`, gated on the CPU features it needs).
//! - [`scan`]: finding valid records in a segment's bytes (recovery, verify, salvage).
//! - [`ring`]: the writer, the segment table, reuse under `when_full`, fsync.
//! - [`cursor`]: a destination's read position, its acknowledgements and checkpoint.
//! - [`recovery`]: opening a ring after a crash, quarantining what cannot be read.
//! - [`checkpoint`]: atomically replaced cursor files.

pub mod checkpoint;
pub mod cursor;
pub mod query;
pub mod recovery;
pub mod ring;
pub mod salvage;
pub mod scan;
pub mod segment;

pub use cursor::{Acker, CheckpointWrite, Cursor, ReadRecord};
pub use recovery::{inspect, RecoveryReport};
pub use ring::{AppendError, BufferError, OwnedAppend, Ring, RingSettings, RingStats, WhenFull};
pub use salvage::{
    open_and_salvage, salvage, ConfiguredDestination, Holder, SalvageError, Salvaged,
};
