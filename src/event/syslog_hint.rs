//! The syslog hint: what the `syslog` destination (`format = "syslog"`)
//! rebuilds an RFC 5424 message from, written by ingest into the record
//! next to the body, so the destination need not read the body's JSON.
//!
//! Ingest parsed these fields a moment earlier and writes them into the
//! body; here it also keeps them the way the destination renders them. The
//! destination otherwise scans the whole body for `syslog.*` and `message`
//! and renders the STRUCTURED-DATA from JSON, once per syslog destination:
//! the largest cost of a syslog-to-syslog relay after ingest itself.
//!
//! Kinds 1 and 2 are a cache, never the event: they hold nothing the body
//! does not, a reader that ignores them (or a hint that does not parse)
//! gets the same output from the body, and property tests hold the
//! destination's output with and without them to the same bytes. Kind 3
//! holds the RFC 5424 line as it came, which the body does not: the
//! timestamp as written (sub-millisecond digits, the sender's UTC offset)
//! and a JSON MSG as written (the body holds the fields read from it). A
//! relay forwards what it received, so the destination sends that line;
//! without the hint (a record written while no such destination ran, or
//! one over [`MAX_HINT_LEN`](super::record::MAX_HINT_LEN)) it rebuilds the
//! message from the body as before. Whoever changes a body (redaction)
//! drops its hint, so a redacted event is always rebuilt from what is left.
//!
//! ```text
//! size  field
//! 1     kind (1: RFC 5424 fields)
//! 1     facility (0..=23)
//! 1     severity (0..=7)
//! 1     present: bit 0 hostname, 1 app_name, 2 procid, 3 msgid, 4 message,
//!       5 raw message
//! …     each present header field in that order: u8 length, then the
//!       field as `rfc5424_fields::push_header_field` writes it
//! 4+4   with `message`: u32 offset and u32 length (little-endian) of the
//!       contents of the body's top-level `message` JSON string (between
//!       its quotes, escapes as written)
//! 4+…   with a raw message instead (a JSON MSG read into fields): u32
//!       length (little-endian), then the MSG as received
//! …     the rest: STRUCTURED-DATA as the destination writes it (empty: none)
//! ```
//!
//! When the event has both a hostname and an app name (nothing of the
//! destination's own then goes into the header), ingest writes kind 2
//! instead: the same four bytes, the message's offset and length when
//! present bit 4 says so, and then the rest of the header as the destination
//! writes it after the timestamp, in one run: `HOSTNAME SP APP-NAME SP
//! PROCID SP MSGID SP STRUCTURED-DATA` (`-` for each one absent). The
//! destination copies that run whole instead of five fields one by one: it
//! does this once per syslog destination and event. Kind 1 is still read
//! (records written before kind 2 existed).
//!
//! Kind 3, for an RFC 5424 line with a hostname and an app name (the same
//! four bytes, then the line itself, PRI to MSG, as it was parsed: trailing
//! whitespace trimmed, and without a BOM before the MSG, which the
//! destination never sends): the destination sends the line whole. Kinds 1
//! and 2 are still written for RFC 3164 lines and for lines without a
//! hostname or app name (where the destination's own go in).
//!
//! Kind 4, one byte, for an event that is not from syslog (a JSON object
//! from the HTTP source): the destination writes what it writes from such
//! a body (its own facility, host name and app name, the event's severity,
//! `-` for PROCID, MSGID and STRUCTURED-DATA, and the event itself as the
//! MSG) without reading the body first. Reading it to find no syslog fields
//! was ~9,900 instructions an event, once per syslog destination (the
//! `encoders` bench's `syslog_scanner` row: 60 times the hinted line).

use super::rfc5424_fields::{push_header_field, MAX_APP_NAME, MAX_HOSTNAME, MAX_MSGID, MAX_PROCID};
use std::ops::Range;

/// The hint kind with the header fields one by one.
pub const KIND_RFC5424: u8 = 1;
/// The hint kind with the header fields and STRUCTURED-DATA rendered.
pub const KIND_RFC5424_RENDERED: u8 = 2;
/// The hint kind with the RFC 5424 line as it came.
pub const KIND_RFC5424_ORIGINAL: u8 = 3;
/// The hint kind of an event not from syslog (one byte).
pub const KIND_NOT_SYSLOG: u8 = 4;

/// Appends the kind 4 hint: the event is not from syslog (its body has no
/// `syslog` object), so the destination's message is the event itself.
pub fn write_not_syslog(out: &mut Vec<u8>) {
    out.push(KIND_NOT_SYSLOG);
}

const HOSTNAME: u8 = 1;
const APP_NAME: u8 = 2;
const PROCID: u8 = 4;
const MSGID: u8 = 8;
const MESSAGE: u8 = 16;
const RAW_MESSAGE: u8 = 32;
const KNOWN: u8 = HOSTNAME | APP_NAME | PROCID | MSGID | MESSAGE | RAW_MESSAGE;

/// An event's syslog fields as ingest knows them: the same values it writes
/// into the body's `syslog` object and `message`.
#[derive(Debug, Clone, Default)]
pub struct SyslogFields<'a> {
    pub facility: u8,
    pub severity: u8,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// The byte range of the body's top-level `message` string contents.
    pub message: Option<Range<usize>>,
    /// The MSG as received, when the body does not hold it: a JSON MSG
    /// read into fields. Takes the place of `message`.
    pub raw_message: Option<&'a str>,
    /// The writer vouches that every present header field holds only
    /// PRINTUSASCII (the RFC 5424 parser admits nothing else), so a field
    /// within its length limit is copied without checking its bytes.
    pub printable: bool,
}

/// Appends the hint for `f` to `out` (after the body, in an
/// [`EncodedEvent`](super::EncodedEvent));
/// `structured_data` appends the rendered STRUCTURED-DATA, nothing for
/// none. Writes nothing when `f` holds what a hint cannot carry (a facility
/// or severity out of range, a message beyond 4 GiB).
pub fn write(out: &mut Vec<u8>, f: &SyslogFields<'_>, structured_data: impl FnOnce(&mut Vec<u8>)) {
    if f.facility > 23 || f.severity > 7 {
        return;
    }
    let message = match (f.raw_message, &f.message) {
        (Some(raw), _) if u32::try_from(raw.len()).is_ok() => Some(Message::Raw(raw.as_bytes())),
        (Some(_), _) => return,
        (None, Some(r)) => match (u32::try_from(r.start), u32::try_from(r.len())) {
            (Ok(start), Ok(len)) => Some(Message::At(start, len)),
            _ => return,
        },
        (None, None) => None,
    };
    let start = out.len();
    let fields = [
        (f.hostname, HOSTNAME, MAX_HOSTNAME),
        (f.app_name, APP_NAME, MAX_APP_NAME),
        (f.procid, PROCID, MAX_PROCID),
        (f.msgid, MSGID, MAX_MSGID),
    ];
    let mut present = match message {
        Some(Message::At(..)) => MESSAGE,
        Some(Message::Raw(_)) => RAW_MESSAGE,
        None => 0,
    };
    for (value, bit, _) in &fields {
        if value.is_some() {
            present |= bit;
        }
    }
    if f.hostname.is_some() && f.app_name.is_some() {
        out.extend_from_slice(&[KIND_RFC5424_RENDERED, f.facility, f.severity, present]);
        if let Some(m) = message {
            m.write(out);
        }
        for (value, _, max) in fields {
            match value {
                Some(v) => push_field(out, v, max, f.printable),
                None => out.push(b'-'),
            }
            out.push(b' ');
        }
        let sd_at = out.len();
        structured_data(out);
        if out.len() == sd_at {
            out.push(b'-');
        }
        return;
    }
    out.extend_from_slice(&[KIND_RFC5424, f.facility, f.severity, present]);
    for (value, _, max) in fields {
        if let Some(v) = value {
            let len_at = out.len();
            out.push(0);
            push_field(out, v, max, f.printable);
            // at most MAX_HOSTNAME (255) one-byte characters
            out[len_at] = (out.len() - len_at - 1) as u8;
        }
    }
    if let Some(m) = message {
        m.write(out);
    }
    let sd_at = out.len();
    structured_data(out);
    debug_assert!(out.len() >= sd_at && out.len() > start);
}

/// Where a hint's message is.
enum Message<'a> {
    /// Offset and length of the body's `message` string contents.
    At(u32, u32),
    /// The MSG itself (at most `u32::MAX` bytes).
    Raw(&'a [u8]),
}

impl Message<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Message::At(at, len) => {
                out.extend_from_slice(&at.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            Message::Raw(bytes) => {
                out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

/// Appends a kind 3 hint for the RFC 5424 line that `f` was read from,
/// `head` (PRI to the MSG) then `msg`, when `f` has a hostname and an app
/// name and the line fits in a hint; false, with nothing written, otherwise
/// (then [`write()`] is the hint).
pub fn write_original(out: &mut Vec<u8>, f: &SyslogFields<'_>, head: &str, msg: &str) -> bool {
    let fits = 4 + head.len() + msg.len() <= super::record::MAX_HINT_LEN;
    let named = f.hostname.is_some() && f.app_name.is_some();
    if f.facility > 23 || f.severity > 7 || !named || !fits || !head.starts_with('<') {
        return false;
    }
    out.extend_from_slice(&[KIND_RFC5424_ORIGINAL, f.facility, f.severity, 0]);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(msg.as_bytes());
    true
}

/// A header field as `push_header_field` writes it; copied whole when the
/// writer vouched for its bytes (`printable`) and it fits.
#[inline]
fn push_field(out: &mut Vec<u8>, v: &str, max: usize, printable: bool) {
    if printable && !v.is_empty() && v.len() <= max {
        debug_assert!(v.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{v:?}");
        out.extend_from_slice(v.as_bytes());
    } else {
        push_header_field(out, v, max);
    }
}

/// A hint read back, with the message found in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogHint<'a> {
    pub facility: u8,
    pub severity: u8,
    /// The header after the timestamp.
    pub header: HintHeader<'a>,
    /// The MSG to send (`None`: the event is not from syslog, or kind 3).
    pub message: Option<HintMessage<'a>>,
}

/// A hint's MSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintMessage<'a> {
    /// The body's `message` JSON string contents (escapes as written).
    Body(&'a str),
    /// The MSG as received (a JSON MSG, whose fields the body holds).
    Raw(&'a [u8]),
}

/// The header fields and STRUCTURED-DATA of a hint, as its kind holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintHeader<'a> {
    /// Kind 1: each field as it goes on the wire (`None`: absent from the
    /// event, the destination fills in its own or `-`).
    Fields {
        hostname: Option<&'a [u8]>,
        app_name: Option<&'a [u8]>,
        procid: Option<&'a [u8]>,
        msgid: Option<&'a [u8]>,
        /// The rendered STRUCTURED-DATA (empty: none).
        structured_data: &'a [u8],
    },
    /// Kind 2: `HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA`
    /// as it goes on the wire.
    Rendered(&'a [u8]),
    /// Kind 3: the whole message, PRI to MSG, as it came (`message` is
    /// `None`: it is in the line).
    Original(&'a [u8]),
    /// Kind 4: not from syslog; the destination's own header fields, the
    /// event's severity and the event as MSG (`facility` and `severity`
    /// of the hint are 0 and unused).
    NotSyslog,
}

impl<'a> SyslogHint<'a> {
    /// Reads `hint` against the record's `body`; `None` for anything but a
    /// well-formed hint of this kind whose message lies inside a JSON
    /// string of the body.
    pub fn parse(hint: &'a [u8], body: &'a [u8]) -> Option<SyslogHint<'a>> {
        if hint == [KIND_NOT_SYSLOG] {
            return Some(SyslogHint {
                facility: 0,
                severity: 0,
                header: HintHeader::NotSyslog,
                message: None,
            });
        }
        let (&[kind, facility, severity, present], mut rest) = hint.split_first_chunk::<4>()?;
        if facility > 23 || severity > 7 || present & !KNOWN != 0 {
            return None;
        }
        if kind == KIND_RFC5424_ORIGINAL {
            // `<PRI>1 ` at least; the PRI is the hint's own
            if present != 0 || rest.len() < 6 || rest[0] != b'<' {
                return None;
            }
            return Some(SyslogHint {
                facility,
                severity,
                header: HintHeader::Original(rest),
                message: None,
            });
        }
        if kind == KIND_RFC5424_RENDERED {
            let message = message_at(present, &mut rest, body)?;
            // at least the four separators and `-` for the SD
            if rest.len() < 9 {
                return None;
            }
            return Some(SyslogHint {
                facility,
                severity,
                header: HintHeader::Rendered(rest),
                message,
            });
        }
        if kind != KIND_RFC5424 {
            return None;
        }
        let mut field = |bit: u8| -> Option<Option<&'a [u8]>> {
            if present & bit == 0 {
                return Some(None);
            }
            let (&len, tail) = rest.split_first()?;
            let (value, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            Some(Some(value))
        };
        let hostname = field(HOSTNAME)?;
        let app_name = field(APP_NAME)?;
        let procid = field(PROCID)?;
        let msgid = field(MSGID)?;
        let message = message_at(present, &mut rest, body)?;
        Some(SyslogHint {
            facility,
            severity,
            header: HintHeader::Fields {
                hostname,
                app_name,
                procid,
                msgid,
                structured_data: rest,
            },
            message,
        })
    }
}

/// Reads the message's offset and length off the front of `rest` when
/// `present` says they are there; `Some(None)`: no message; `None`: a
/// message that is not the contents of a JSON string in `body`.
#[inline]
fn message_at<'a>(
    present: u8,
    rest: &mut &'a [u8],
    body: &'a [u8],
) -> Option<Option<HintMessage<'a>>> {
    if present & (MESSAGE | RAW_MESSAGE) == (MESSAGE | RAW_MESSAGE) {
        return None;
    }
    if present & RAW_MESSAGE != 0 {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let (raw, tail) = tail.split_at_checked(len)?;
        *rest = tail;
        return Some(Some(HintMessage::Raw(raw)));
    }
    if present & MESSAGE == 0 {
        return Some(None);
    }
    let (at, tail) = rest.split_first_chunk::<4>()?;
    let (len, tail) = tail.split_first_chunk::<4>()?;
    *rest = tail;
    let at = usize::try_from(u32::from_le_bytes(*at)).ok()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let end = at.checked_add(len)?;
    if at == 0 || body.get(at - 1) != Some(&b'"') || body.get(end) != Some(&b'"') {
        return None;
    }
    Some(Some(HintMessage::Body(
        std::str::from_utf8(&body[at..end]).ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let body = br#"{"a":1,"message":"hi \"there\""}"#;
        let at = body.iter().position(|&b| b == b'h').unwrap();
        let fields = SyslogFields {
            facility: 4,
            severity: 6,
            hostname: Some("host 1"),
            app_name: None,
            procid: Some("42"),
            msgid: Some(""),
            message: Some(at..body.len() - 2),
            raw_message: None,
            printable: false,
        };
        let mut hint = Vec::new();
        write(&mut hint, &fields, |o| o.extend_from_slice(b"[x a=\"1\"]"));
        let h = SyslogHint::parse(&hint, body).unwrap();
        assert_eq!(
            h,
            SyslogHint {
                facility: 4,
                severity: 6,
                header: HintHeader::Fields {
                    hostname: Some(b"host_1"),
                    app_name: None,
                    procid: Some(b"42"),
                    msgid: Some(b"-"),
                    structured_data: b"[x a=\"1\"]",
                },
                message: Some(HintMessage::Body(r#"hi \"there\""#)),
            }
        );
        // every truncation is refused or reads as less structured data
        for cut in 0..hint.len() {
            if let Some(h) = SyslogHint::parse(&hint[..cut], body) {
                let HintHeader::Fields {
                    structured_data, ..
                } = h.header
                else {
                    panic!("kind 1 read as {h:?}");
                };
                assert!(structured_data.len() < 9, "cut {cut}");
            }
        }
    }

    #[test]
    fn with_hostname_and_app_name_the_header_is_rendered_in_one_run() {
        let body = br#"{"a":1,"message":"hi"}"#;
        let at = body.iter().position(|&b| b == b'h').unwrap();
        let fields = |procid, msgid, message: Option<Range<usize>>| SyslogFields {
            facility: 4,
            severity: 6,
            hostname: Some("host 1"),
            app_name: Some("app"),
            procid,
            msgid,
            message,
            raw_message: None,
            printable: false,
        };
        let mut hint = Vec::new();
        write(
            &mut hint,
            &fields(Some("42"), None, Some(at..at + 2)),
            |o| o.extend_from_slice(b"[x a=\"1\"]"),
        );
        assert_eq!(hint[0], KIND_RFC5424_RENDERED);
        let h = SyslogHint::parse(&hint, body).unwrap();
        assert_eq!(
            h,
            SyslogHint {
                facility: 4,
                severity: 6,
                header: HintHeader::Rendered(b"host_1 app 42 - [x a=\"1\"]"),
                message: Some(HintMessage::Body("hi")),
            }
        );
        // no SD, an empty MSGID, no message
        let mut hint = Vec::new();
        write(&mut hint, &fields(None, Some(""), None), |_| {});
        let h = SyslogHint::parse(&hint, body).unwrap();
        assert_eq!(h.header, HintHeader::Rendered(b"host_1 app - - -"));
        assert_eq!(h.message, None);
        // too short to hold the four separators and the SD's place
        assert_eq!(SyslogHint::parse(&hint[..12], body), None);
    }

    #[test]
    fn printable_fields_are_written_as_the_checked_ones_are() {
        let long = "h".repeat(MAX_HOSTNAME + 1);
        for hostname in [Some("host-1"), Some(""), Some(long.as_str()), None] {
            for msgid in [Some("ID47"), Some(&"m".repeat(MAX_MSGID + 3)[..]), None] {
                let fields = |printable| SyslogFields {
                    facility: 1,
                    severity: 2,
                    hostname,
                    app_name: Some("app"),
                    procid: Some("-5"),
                    msgid,
                    message: None,
                    raw_message: None,
                    printable,
                };
                let (mut checked, mut trusted) = (Vec::new(), Vec::new());
                write(&mut checked, &fields(false), |o| o.push(b'x'));
                write(&mut trusted, &fields(true), |o| o.push(b'x'));
                assert_eq!(checked, trusted, "{hostname:?} {msgid:?}");
                assert!(SyslogHint::parse(&trusted, b"{}").is_some());
            }
        }
    }

    #[test]
    fn what_a_hint_cannot_carry_writes_nothing() {
        let mut hint = Vec::new();
        let f = SyslogFields {
            facility: 24,
            ..SyslogFields::default()
        };
        write(&mut hint, &f, |o| o.push(b'x'));
        assert!(hint.is_empty());
    }

    #[test]
    fn a_message_outside_a_body_string_is_refused() {
        let body = br#"{"message":"abc"}"#;
        for range in [0..3, 12..15, 11..14, 12..20, 13..14] {
            let mut hint = Vec::new();
            let f = SyslogFields {
                message: Some(range.clone()),
                ..SyslogFields::default()
            };
            write(&mut hint, &f, |_| {});
            let ok = SyslogHint::parse(&hint, body).is_some();
            assert_eq!(ok, range == (12..15), "{range:?}");
        }
        let mut hint = Vec::new();
        write(&mut hint, &SyslogFields::default(), |_| {});
        hint[0] = 9;
        assert_eq!(SyslogHint::parse(&hint, body), None);
    }
}
