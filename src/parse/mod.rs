//! Parsing and normalising: bytes in, canonical events out, no I/O.
