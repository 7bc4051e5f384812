//! Parsing and normalising: bytes in, canonical events out, no I/O.
//!
//! - [`framing`]: RFC 6587 TCP framing (octet counting and LF), incremental.
//! - [`syslog`]: RFC 5424 / RFC 3164 parsing into [`syslog::SyslogMessage`].
//! - [`rfc5424`]: the hand-written RFC 5424 fast path [`syslog`] tries first.
//! - [`rfc3164`]: the hand-written RFC 3164 (BSD) fast path it tries next.
//! - [`cisco`]: Cisco's headers (IOS, NX-OS, ASA), read before the general path.
//! - [`normalize`]: builds the canonical [`crate::event::Event`] from a parsed
//!   syslog message or a JSON object.
//! - [`direct`]: writes the record of a well-formed RFC 5424 or RFC 3164
//!   line straight from the fast-path parse (no intermediate `Event`); same bytes.
//! - [`json_msg`]: the borrowed scanner [`direct`] reads JSON MSGs (and
//!   NDJSON lines) with, leaving what it cannot read exactly to simd-json.
//! - [`spare`]: per-thread spare allocations for [`direct`]'s per-line lists.
//! - [`json`]: HTTP bodies (JSON object, array, NDJSON; Splunk HEC envelopes
//!   and raw lines).

mod cisco;
pub mod direct;
pub mod framing;
mod header_repair;
pub mod json;
pub(crate) mod json_msg;
pub mod normalize;
pub mod rfc3164;
pub mod rfc5424;
mod spare;
pub mod syslog;

pub use framing::{
    Frame, FrameRef, Framer, FramerConfig, FramingError, Oversize, Span as FrameSpan,
};
pub use json::{
    parse_events_body, parse_events_records, parse_hec_body, parse_hec_body_with, parse_hec_raw,
    parse_hec_raw_records, BodyError,
};
pub use normalize::{
    normalize_json, normalize_syslog, syslog_line_to_event, syslog_line_to_record,
    syslog_text_to_record, Origin,
};
pub use syslog::{parse_syslog, SyslogMessage};
