//! Whether a syslog source's largest message makes a record a ring segment
//! can hold: one that cannot is dropped at the append (`too_large`), so a
//! config that lets such messages in is refused instead.
//!
//! The worst case, from the record encoder: a record is its header, the
//! canonical JSON body and the syslog hint. Each byte of the message can
//! take six bytes of the body (a control byte becomes `\u00XX`; an invalid
//! UTF-8 byte becomes U+FFFD, three) and one more in the hint, which is at
//! most the raw line itself (kind 3), so a message of `n` bytes makes at
//! most `7 n` bytes of both. The rest of the body is bounded: the event's
//! id, times, severity, category, `parse_error`, `metadata.truncated`, the
//! syslog fields' names, and `source`: the listener's name (escaped, six
//! bytes a byte at most) and the peer's address.

use crate::buffer::segment::DATA_START;
use crate::config::{ByteSize, ConfigError, SectionConfig};
use crate::event::HEADER_LEN;

/// Bytes of body and hint one byte of a message can make, at most.
pub const PER_BYTE: u64 = 7;

/// Bytes of the body that do not come from the message or the listener's
/// name, at most (measured: under 400; see the tests).
pub const FIXED: u64 = 1024;

/// The largest datagram a `syslog_udp` source receives.
pub const MAX_DATAGRAM: u64 = 64 << 10;

/// The largest record a message of `message_bytes` bytes makes in a source
/// named `listener`.
pub fn largest_record(message_bytes: u64, listener: &str) -> u64 {
    HEADER_LEN as u64 + FIXED + 6 * listener.len() as u64 + PER_BYTE * message_bytes
}

/// The largest record a segment of `segment_bytes` holds.
pub fn segment_room(segment_bytes: u64) -> u64 {
    segment_bytes.saturating_sub(DATA_START as u64)
}

/// The largest message whose record a segment of `segment_bytes` holds
/// (0: none).
pub fn largest_message(segment_bytes: u64, listener: &str) -> u64 {
    segment_room(segment_bytes).saturating_sub(largest_record(0, listener)) / PER_BYTE
}

/// The smallest segment that holds the record of any message of
/// `message_bytes`, in whole KiB.
pub fn segment_needed(message_bytes: u64, listener: &str) -> u64 {
    (largest_record(message_bytes, listener) + DATA_START as u64).div_ceil(1024) * 1024
}

/// Why `section`'s largest message would not fit a segment of
/// `segment_bytes` (`syslog_tcp` and `syslog_tls`: their
/// `max_message_bytes`; `syslog_udp`: a datagram of 64 KiB). `None` when
/// it fits, or when the section's settings are in error (reported by
/// themselves).
pub fn misfit(section: &SectionConfig, segment_bytes: u64) -> Option<ConfigError> {
    let name = section.name.as_str();
    let segment = ByteSize(segment_bytes);
    match section.kind.as_str() {
        "syslog_tcp" | "syslog_tls" => {
            let max = match section.kind.as_str() {
                "syslog_tcp" => {
                    super::tcp::Settings::from_section(section)
                        .ok()?
                        .max_message_bytes
                }
                _ => {
                    super::tls::Settings::from_section(section)
                        .ok()?
                        .stream
                        .max_message_bytes
                }
            };
            if largest_record(max.0, name) <= segment_room(segment_bytes) {
                return None;
            }
            let fits = largest_message(segment_bytes, name);
            let default = match section.table.contains_key("max_message_bytes") {
                true => "",
                false => ", its default",
            };
            Some(ConfigError::new(
                format!("{}.max_message_bytes", section.path()),
                format!(
                    "a message of max_message_bytes ({max}{default}) can make a record of up to {} \
                     bytes, more than a segment of buffer.segment_bytes ({segment}) holds: \
                     lower max_message_bytes to at most {} or raise buffer.segment_bytes to at \
                     least {}",
                    largest_record(max.0, name),
                    ByteSize(fits),
                    ByteSize(segment_needed(max.0, name)),
                ),
            ))
        }
        "syslog_udp" => {
            super::udp::Settings::from_section(section).ok()?;
            if largest_record(MAX_DATAGRAM, name) <= segment_room(segment_bytes) {
                return None;
            }
            Some(ConfigError::new(
                section.path(),
                format!(
                    "a datagram of up to 64KiB can make a record of up to {} bytes, more than \
                     a segment of buffer.segment_bytes ({segment}) holds: raise \
                     buffer.segment_bytes to at least {}",
                    largest_record(MAX_DATAGRAM, name),
                    ByteSize(segment_needed(MAX_DATAGRAM, name)),
                ),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{syslog_line_to_record, Origin};

    const SEGMENT: u64 = 64 << 10;
    const LISTENER: &str = "edge-syslog";

    /// Lines of exactly `n` bytes that make the largest records: control
    /// bytes (six bytes each in the body) behind an RFC 5424 header that
    /// keeps the line as its hint, in structured data, in header fields,
    /// without a header (a parse error), invalid UTF-8, JSON quoting, a
    /// JSON MSG whose numbers are written longer, an RFC 3164 line.
    fn worst_lines(n: usize) -> Vec<(&'static str, Vec<u8>)> {
        let fill = |head: &[u8], byte: u8, tail: &[u8]| {
            let mut line = head.to_vec();
            line.resize(n - tail.len(), byte);
            line.extend_from_slice(tail);
            assert_eq!(line.len(), n);
            line
        };
        let json_msg = {
            let mut line = b"<13>1 2024-05-01T10:00:00.000000+00:00 h a 1 m - {\"a\":[".to_vec();
            while line.len() + 5 + 3 <= n {
                line.extend_from_slice(b"9E15,");
            }
            line.resize(n - 2, b'1');
            line.extend_from_slice(b"]}");
            line
        };
        vec![
            (
                "5424 message",
                fill(
                    b"<13>1 2024-05-01T10:00:00.000000+00:00 host app 1 m - ",
                    1,
                    b"",
                ),
            ),
            (
                "5424 structured data",
                fill(
                    b"<13>1 2024-05-01T10:00:00Z host app 1 m [x@1 k=\"",
                    1,
                    b"\"] a",
                ),
            ),
            ("5424 hostname", fill(b"<13>1 - ", 1, b" app - - - m")),
            ("no header", fill(b"", 1, b"")),
            ("PRI only", fill(b"<13>", 1, b"")),
            ("invalid UTF-8", fill(b"<13>1 - host app - - - ", 0xff, b"")),
            ("quotes", fill(b"<13>1 - host app - - - ", b'"', b"")),
            ("3164", fill(b"<13>May  1 10:00:00 host app[1]: ", 1, b"")),
            ("JSON MSG numbers", json_msg),
        ]
    }

    /// The worst-case lines of exactly the largest `max_message_bytes` a
    /// 64 KiB segment is allowed, kept whole, with and without hints, or
    /// as a truncated frame (`metadata.truncated`), each make a record
    /// the segment holds, within [`largest_record`]. One byte more is
    /// refused, and `FIXED` bounds what the body holds besides.
    #[test]
    fn the_worst_line_of_the_largest_message_allowed_fits_a_segment() {
        let n = largest_message(SEGMENT, LISTENER);
        assert!(largest_record(n, LISTENER) <= segment_room(SEGMENT));
        assert!(largest_record(n + 1, LISTENER) > segment_room(SEGMENT));
        let address = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:65535";
        let tz = chrono_tz::UTC;
        let mut fixed_seen = 0;
        for (what, line) in worst_lines(n as usize) {
            for hints in [true, false] {
                let origin = Origin {
                    listener: LISTENER,
                    address: Some(address),
                    syslog_hint: hints,
                };
                for truncated in [false, true] {
                    let record = match truncated {
                        false => syslog_line_to_record(&line, i64::MAX / 2, tz, &origin),
                        true => super::super::stream::frame_record(
                            &line,
                            true,
                            i64::MAX / 2,
                            tz,
                            &origin,
                        ),
                    };
                    let len = record.record_len() as u64;
                    assert!(
                        len <= largest_record(n, LISTENER) && len <= segment_room(SEGMENT),
                        "{what} (hints {hints}, truncated {truncated}): {len} bytes"
                    );
                    // what the record holds besides the message's 7 n
                    let outside = (len as i64 - HEADER_LEN as i64 - 7 * n as i64).max(0);
                    fixed_seen = fixed_seen.max(outside);
                }
            }
            // through UDP as any datagram
            let origin = Origin {
                listener: LISTENER,
                address: Some(address),
                syslog_hint: true,
            };
            let len = syslog_line_to_record(&line, 0, tz, &origin).record_len() as u64;
            assert!(len <= largest_record(n, LISTENER), "{what}: {len}");
        }
        assert!(fixed_seen < FIXED as i64, "{fixed_seen}");
        // the message's control bytes make the record: near the bound
        let line = &worst_lines(n as usize)[0].1;
        let origin = Origin {
            listener: LISTENER,
            address: None,
            syslog_hint: true,
        };
        let len = syslog_line_to_record(line, 0, tz, &origin).record_len() as u64;
        assert!(len > largest_record(n, LISTENER) - FIXED - 512, "{len}");
    }

    /// The shortest fixed part: an empty message in a source whose name
    /// is all control bytes (a quoted TOML key).
    #[test]
    fn a_listener_name_is_counted_escaped() {
        let name = "\u{1}".repeat(100);
        let origin = Origin {
            listener: &name,
            address: None,
            syslog_hint: true,
        };
        let len = syslog_line_to_record(b"<13>1 - h a - - - x", 0, chrono_tz::UTC, &origin)
            .record_len() as u64;
        assert!(len <= largest_record(1, &name), "{len}");
        assert!(len > 600, "{len}");
    }
}
