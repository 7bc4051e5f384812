//! A hand-written RFC 3164 (BSD syslog) fast path.
//!
//! Firewalls, switches and most Unix daemons still send the BSD format. The
//! general path reads it with `syslog_loose`'s parser combinators and builds
//! owned strings for every field; [`parse`] reads the common shape byte by
//! byte and borrows every field from the input:
//!
//! ```text
//! <PRI>Mmm dd hh:mm:ss[:] SP HOSTNAME SP TAG[PID] [SP] [:] [SP] MSG
//! <PRI>YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm) SP HOSTNAME SP TAG[PID] …
//! ```
//!
//! The second is what rsyslog's and syslog-ng's forwarding formats write
//! (`RSYSLOG_ForwardFormat`); its timestamp is read by the RFC 5424 fast
//! path's reader.
//!
//! It accepts only a strict subset of what `syslog_loose` accepts, and for
//! that subset yields exactly what `syslog_loose` (with the year and zone
//! rules of [`super::syslog`]) would: see the differential tests. Anything
//! else returns `None` and the caller falls back to `syslog_loose` (after
//! [`super::header_repair`] for the shapes it misreads), so
//! unusual input is read exactly as before: a timestamp with a year or
//! fractional seconds, no hostname or no tag, a hostname
//! ending in `:`, tabs, several spaces, non-ASCII header fields, and dates
//! that do not exist.
//!
//! RFC 3164 has no STRUCTURED-DATA: a MSG that starts with `[` or `-`
//! (`[12345.678] …`, `[INFO] …`, `- …`) is MSG, as written. `syslog_loose`
//! reads such a start as SD; [`super::syslog`] puts it back in its MSG, so
//! both paths agree.
//!
//! A HOSTNAME or TAG of `-` is none (as RFC 5424's NILVALUE), and this path
//! reads such lines rather than `syslog_loose`: after a TAG of `-` it lost
//! the HOSTNAME and a MSG's leading `-` (`h - -x` became MSG `x`, no host).
//!
//! Mirrored `syslog_loose` 0.21 behaviour: the month is read in any case
//! (`NOV`); the day may be padded with a second space (`Nov  3`); a colon
//! right after the seconds is skipped; a TAG of the form `app[pid]` splits
//! into APP-NAME and PROCID, any other TAG is the APP-NAME whole; a PROCID
//! that parses as an `i32` is re-printed (`0042` → `42`); spaces, one colon
//! and spaces after the TAG are dropped; the line is trimmed at the end.

use super::rfc5424::{self, days_from_civil, days_in_month, digits, pri, procid_string};
use super::syslog::{nearest_year, offset_at_local, received_local, strip_bom, SyslogMessage};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde_json::Map;
use std::cell::Cell;
use syslog_loose::IncompleteDate;

/// An RFC 3164 message, borrowed from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3164<'a> {
    pub facility: u8,
    pub severity: u8,
    /// Event time in milliseconds since the epoch: the year nearest to the
    /// receive time, the wall-clock time read in the default zone.
    pub timestamp_ms: i64,
    /// `None` for a HOSTNAME of `-`.
    pub hostname: Option<&'a str>,
    /// `None` for a TAG of `-`.
    pub app_name: Option<&'a str>,
    /// As written between the brackets (see [`procid_string`]).
    pub procid: Option<&'a str>,
    /// MSG, with a leading BOM removed.
    pub msg: &'a str,
}

/// Parses `text` (already stripped of trailing CR/LF/NUL), received at
/// `received_ms` with default zone `tz`, when it is a BSD syslog line of the
/// shape this fast path reads; `None` otherwise.
pub fn parse(text: &str, received_ms: i64, tz: Tz) -> Option<Rfc3164<'_>> {
    // syslog_loose trims (Unicode) whitespace at both ends; the fast path
    // requires the line to start with '<', so only the end can change.
    let text = text.trim_end();
    let b = text.as_bytes();
    let (pri, i) = pri(b)?;
    // TIMESTAMP: RFC 3339 (what rsyslog's and syslog-ng's forwarding
    // formats write), or the BSD form without a year
    let (timestamp, mut i) = match b.get(i)? {
        b'0'..=b'9' => {
            let (ms, j) = rfc5424::timestamp(b, i)?;
            (Timestamp::Absolute(ms), j)
        }
        _ => bsd_timestamp(b, i)?,
    };
    // HOSTNAME: printable ASCII, not ending in ':'; `-` is none
    i = space(b, i)?;
    let host_end = token_end(b, i, |_| true);
    let hostname = &text[i..host_end];
    let host_ok = !hostname.is_empty() && !hostname.ends_with(':');
    if !host_ok || b.get(host_end) != Some(&b' ') {
        return None;
    }
    // TAG: printable ASCII up to ':' or a space; `-` is none
    i = host_end + 1;
    let tag_end = token_end(b, i, |c| c != b':');
    let tag = &text[i..tag_end];
    if tag.is_empty() || !matches!(b.get(tag_end), None | Some(b':' | b' ')) {
        return None;
    }
    let (app_name, procid) = split_tag(tag)?;
    // what separates the header from MSG
    i = skip_blanks(b, tag_end);
    if b.get(i) == Some(&b':') {
        i = skip_blanks(b, i + 1);
    }
    let timestamp_ms = match timestamp {
        Timestamp::Absolute(ms) => ms,
        Timestamp::NoYear(date) => event_time_ms(date, received_ms, tz)?,
    };
    Some(Rfc3164 {
        facility: (pri >> 3) as u8,
        severity: (pri & 7) as u8,
        timestamp_ms,
        hostname: (hostname != "-").then_some(hostname),
        app_name: (app_name != "-").then_some(app_name),
        procid,
        msg: strip_bom(&text[i..]),
    })
}

impl Rfc3164<'_> {
    /// The owned [`SyslogMessage`] (what `syslog_loose` parsing yields).
    pub fn to_message(&self) -> SyslogMessage {
        SyslogMessage {
            parsed: true,
            facility: Some(self.facility),
            severity: Some(self.severity),
            version: None,
            timestamp_ms: Some(self.timestamp_ms),
            hostname: self.hostname.map(str::to_string),
            app_name: self.app_name.map(str::to_string),
            procid: self.procid.map(|p| procid_string(p).into_owned()),
            msgid: None,
            structured_data: Map::new(),
            msg: self.msg.to_string(),
        }
    }
}

/// A 3164 TIMESTAMP as written.
enum Timestamp {
    /// RFC 3339, with its zone: epoch milliseconds.
    Absolute(i64),
    /// `Mmm dd hh:mm:ss`: the year and zone come from the receive time.
    NoYear(IncompleteDate),
}

/// `Mmm dd hh:mm:ss` at `b[i..]`: the month in any case, one or two spaces,
/// a day of one or two digits, and a colon right after the seconds skipped.
fn bsd_timestamp(b: &[u8], i: usize) -> Option<(Timestamp, usize)> {
    let month = month(b.get(i..i + 3)?)?;
    let mut i = space(b, i + 3)?;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let (day, i) = match (b.get(i), b.get(i + 1)) {
        (Some(d @ b'0'..=b'9'), Some(b' ')) => (u32::from(d - b'0'), i + 1),
        _ => (digits(b, i, 2)?, i + 2),
    };
    let i = space(b, i)?;
    let hour = digits(b, i, 2)?;
    let minute = colon_digits(b, i + 2)?;
    let second = colon_digits(b, i + 5)?;
    let mut i = i + 8;
    if b.get(i) == Some(&b':') {
        i += 1;
    }
    Some((Timestamp::NoYear((month, day, hour, minute, second)), i))
}

thread_local! {
    /// The zone's UTC offset and the local year at the last receive second
    /// (a zone's offset changes on whole seconds): the zone lookup and the
    /// calendar once a second, not once a line.
    static RECEIVE_SECOND: Cell<Option<(Tz, i64, i32, i32)>> = const { Cell::new(None) };
}

/// The event time of `date` (no year, wall-clock time in `tz`): the year
/// that puts it nearest to the receive time, as [`nearest_year`] picks it.
/// `None` for a date that does not exist in that year.
fn event_time_ms(date: IncompleteDate, received_ms: i64, tz: Tz) -> Option<i64> {
    let second = received_ms.div_euclid(1000);
    let (offset_s, local_year) = match RECEIVE_SECOND.get() {
        Some((z, s, offset, year)) if z == tz && s == second => (offset, year),
        _ => {
            let local = received_local(received_ms, tz);
            let known = (local.offset().local_minus_utc(), local.year());
            RECEIVE_SECOND.set(Some((tz, second, known.0, known.1)));
            known
        }
    };
    if local_year < 1 {
        // the calendar below counts years from 0; chrono's for the rest
        let local = received_local(received_ms, tz);
        let year = nearest_year(date, local);
        let (month, day, hour, minute, sec) = date;
        let t = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, sec)?;
        let t = t.and_utc().timestamp();
        return Some((t - i64::from(offset_at_local(tz, t, offset_s))) * 1000);
    }
    let now_ms = received_ms + i64::from(offset_s) * 1000;
    // within 180 days in the receive year: the years either side are at
    // least 185 days away, so this one is the nearest
    if let Some(t) = local_seconds(local_year as u32, date) {
        if (t * 1000 - now_ms).abs() <= 180 * 86_400_000 {
            return Some((t - i64::from(offset_at_local(tz, t, offset_s))) * 1000);
        }
    }
    // the candidates in nearest_year's order; the first nearest wins, the
    // distance in whole seconds truncated toward zero, as chrono's is
    let mut best: Option<(i64, i64)> = None;
    for year in [local_year, local_year - 1, local_year + 1] {
        let Some(t) = local_seconds(year as u32, date) else {
            continue;
        };
        let dist = ((t * 1000 - now_ms) / 1000).abs();
        if best.is_none_or(|(_, d)| dist < d) {
            best = Some((t, dist));
        }
    }
    let (t, _) = best?;
    Some((t - i64::from(offset_at_local(tz, t, offset_s))) * 1000)
}

/// Seconds since the epoch of `date` in `year`, read as UTC; `None` when
/// there is no such date or time.
fn local_seconds(year: u32, (month, day, hour, minute, second): IncompleteDate) -> Option<i64> {
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// The month of a three-letter English abbreviation, in any case.
pub(crate) fn month(b: &[u8]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    NAMES
        .iter()
        .position(|n| **n == lower)
        .map(|m| m as u32 + 1)
}

/// Exactly one space at `b[i]`.
fn space(b: &[u8], i: usize) -> Option<usize> {
    (b.get(i) == Some(&b' ')).then_some(i + 1)
}

/// `:` and two digits at `b[i..]`.
fn colon_digits(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i) != Some(&b':') {
        return None;
    }
    digits(b, i + 1, 2)
}

/// The end of the run of printable ASCII at `b[i..]` that `keep` admits.
fn token_end(b: &[u8], i: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut j = i;
    while j < b.len() && (0x21..=0x7e).contains(&b[j]) && keep(b[j]) {
        j += 1;
    }
    j
}

/// Past the spaces and tabs at `b[i..]`.
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// APP-NAME and PROCID of a TAG: `app[pid]` splits at the first `[`, with
/// the PROCID up to the first `]`, which must end the TAG; any other TAG is
/// the APP-NAME whole. `None` (the slow path) for an empty APP-NAME.
fn split_tag(tag: &str) -> Option<(&str, Option<&str>)> {
    let Some(open) = tag.bytes().position(|c| c == b'[') else {
        return Some((tag, None));
    };
    let app = &tag[..open];
    let after = &tag[open + 1..];
    match after.bytes().position(|c| c == b']') {
        Some(close) if close > 0 && close + 1 == after.len() => {
            if app.is_empty() {
                return None;
            }
            Some((app, Some(&after[..close])))
        }
        _ => Some((tag, None)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::syslog::parse_syslog_loose;
    use chrono::DateTime;
    use proptest::prelude::*;

    const RECEIVED: i64 = 1_790_000_000_000; // 2026-09-21T14:13:20Z

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    /// The fast path's message for `line` (`None`: it left the line to the
    /// slow path), after checking it against `syslog_loose`'s.
    fn check_at(
        line: &str,
        received_ms: i64,
        tz: Tz,
    ) -> Result<Option<Rfc3164<'_>>, TestCaseError> {
        let Some(fast) = parse(line, received_ms, tz) else {
            return Ok(None);
        };
        // `syslog_loose` misreads a field of `-` (see the module doc): the
        // reference is its reading of the line with the field spelled out
        // as a word, then the field taken away
        let (host_dash, tag_dash) = dashes(line, &fast);
        let mut words = line.to_string();
        for at in [tag_dash, host_dash].into_iter().flatten() {
            words.replace_range(at..at + 1, "N");
        }
        let mut slow = parse_syslog_loose(words.as_bytes(), received_ms, tz);
        for (dash, field) in [
            (host_dash, &mut slow.hostname),
            (tag_dash, &mut slow.app_name),
        ] {
            if dash.is_some() {
                prop_assert_eq!(field.take(), Some("N".to_string()), "line: {:?}", line);
            }
        }
        prop_assert_eq!(fast.to_message(), slow, "line: {:?}", line);
        Ok(Some(fast))
    }

    /// Where the `-` of a HOSTNAME and of a TAG that the fast path read as
    /// none stand in `line`.
    fn dashes(line: &str, m: &Rfc3164<'_>) -> (Option<usize>, Option<usize>) {
        let b = line.as_bytes();
        // after PRI and the timestamp: the first space, then the HOSTNAME
        let close = line.find('>').unwrap();
        let ts_end = if b[close + 1].is_ascii_digit() {
            close + line[close..].find(' ').unwrap()
        } else {
            // `Mmm dd hh:mm:ss` (the day may be padded with a space)
            let time = close + 1 + line[close + 1..].find(':').unwrap() - 2;
            time + line[time..].find(' ').unwrap()
        };
        let host = ts_end + 1;
        let host_dash = (m.hostname.is_none()).then_some(host);
        let tag = host + line[host..].find(' ').unwrap() + 1;
        let tag_dash = (m.app_name.is_none()).then_some(tag);
        for at in [host_dash, tag_dash].into_iter().flatten() {
            assert_eq!(b[at], b'-', "{line}");
        }
        (host_dash, tag_dash)
    }

    fn check(line: &str) -> Option<Rfc3164<'_>> {
        check_at(line, RECEIVED, Tz::UTC).unwrap()
    }

    #[test]
    fn the_common_shapes_are_read_as_syslog_loose_reads_them() {
        let m =
            check("<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice").unwrap();
        assert_eq!((m.facility, m.severity), (4, 6));
        assert_eq!(m.timestamp_ms, ms("2026-11-23T14:56:08Z"));
        assert_eq!(
            (m.hostname, m.app_name, m.procid),
            (Some("web-01"), Some("sshd"), Some("4242"))
        );
        assert_eq!(m.msg, "Accepted password for alice");

        let m = check("<13>Nov  3 01:02:03 10.0.0.1 kernel: eth0 up  ").unwrap();
        assert_eq!(m.timestamp_ms, ms("2026-11-03T01:02:03Z"));
        assert_eq!(
            (m.app_name, m.procid, m.msg),
            (Some("kernel"), None, "eth0 up")
        );

        // no colon: the word after the host is the tag
        let m = check("<13>Sep 21 14:00:00 host some words here").unwrap();
        assert_eq!((m.app_name, m.msg), (Some("some"), "words here"));
        // a colon after the seconds, a lowercase month, a zero-padded PROCID
        let m = check("<189>sep 21 14:00:00: fw01 app[0042] : x").unwrap();
        assert_eq!(
            (m.app_name, m.procid, m.msg),
            (Some("app"), Some("0042"), "x")
        );
        assert_eq!(m.to_message().procid.as_deref(), Some("42"));
        // a TAG that is not app[pid] is the APP-NAME whole
        assert_eq!(
            check("<13>Sep 21 14:00:00 h a[1]b: x").unwrap().app_name,
            Some("a[1]b")
        );
        assert_eq!(
            check("<13>Sep 21 14:00:00 h a[]: x").unwrap().app_name,
            Some("a[]")
        );
        assert_eq!(
            check("<13>Sep 21 14:00:00 h a[1 x").unwrap().app_name,
            Some("a[1")
        );
        // rsyslog's forwarding format: an RFC 3339 timestamp with its zone
        let m = check("<30>2026-12-05T21:40:00.123456+01:00 web-01 nginx[88]: GET /").unwrap();
        assert_eq!(m.timestamp_ms, ms("2026-12-05T20:40:00.123Z"));
        assert_eq!(
            (m.app_name, m.procid, m.msg),
            (Some("nginx"), Some("88"), "GET /")
        );
        // an empty MSG, a BOM
        assert_eq!(check("<13>Sep 21 14:00:00 h app:").unwrap().msg, "");
        assert_eq!(
            check("<13>Sep 21 14:00:00 h app: \u{feff}x").unwrap().msg,
            "x"
        );
        // the white space after a BOM goes with it, as without one
        assert_eq!(
            check("<13>Sep 21 14:00:00 h app: \u{feff} \t x")
                .unwrap()
                .msg,
            "x"
        );
    }

    /// RFC 3164 has no STRUCTURED-DATA: a MSG that starts with what reads
    /// as SD elements (a kernel uptime, a log level, an SD-shaped element)
    /// or with `-` is kept as written, on both paths, with either
    /// timestamp form.
    #[test]
    fn a_bracketed_or_dashed_msg_start_is_msg_not_structured_data() {
        for (line, msg) in [
            (
                "<13>Dec  7 10:12:14 host1 kernel: [12345.678] R2 kernel uptime",
                "[12345.678] R2 kernel uptime",
            ),
            (
                "<11>Dec  7 10:12:14 web1 myapp[77]: [INFO] R3 service started",
                "[INFO] R3 service started",
            ),
            (
                "<13>Dec  7 10:12:14 h app: [x@1 a=\"b\"] R4",
                "[x@1 a=\"b\"] R4",
            ),
            (
                "<13>Dec  7 10:12:14 h app: [error][client 1.2.3.4] x",
                "[error][client 1.2.3.4] x",
            ),
            (
                "<13>Dec  7 10:12:14 h app: [a][b c=\"d\"]  tail  ",
                "[a][b c=\"d\"]  tail",
            ),
            (
                "<13>2026-12-07T10:12:14.5+01:00 h app[9]: [12345.678] iso",
                "[12345.678] iso",
            ),
            (
                "<13>Dec  7 10:12:14 h app [INFO] no colon",
                "[INFO] no colon",
            ),
            ("<13>Dec  7 10:12:14 h app:[INFO]", "[INFO]"),
            ("<13>Dec  7 10:12:14 h app: [INFO]", "[INFO]"),
            ("<13>Dec  7 10:12:14 h app: - a dash", "- a dash"),
            ("<13>Dec  7 10:12:14 h app:-x", "-x"),
            ("<13>Dec  7 10:12:14 h app: -", "-"),
            ("<13>Dec  7 10:12:14 h app: [not sd] x", "[not sd] x"),
        ] {
            let m = check(line).unwrap_or_else(|| panic!("not on the fast path: {line}"));
            assert_eq!(m.msg, msg, "{line}");
            assert!(m.to_message().structured_data.is_empty(), "{line}");
        }
    }

    /// A HOSTNAME or TAG of `-` is none, and the line's other fields and
    /// its MSG are kept whole (`syslog_loose` lost the HOSTNAME after a
    /// TAG of `-`, and a MSG's leading `-`).
    #[test]
    fn a_field_of_a_dash_is_none_and_loses_nothing_else() {
        for (line, host, app, msg) in [
            (
                "<13>Dec  7 10:12:14 - app: -x one",
                None,
                Some("app"),
                "-x one",
            ),
            ("<13>Dec  7 10:12:14 h - -x two", Some("h"), None, "-x two"),
            ("<13>Dec  7 10:12:14 h - x two", Some("h"), None, "x two"),
            ("<13>Dec  7 10:12:14 h -: -x two", Some("h"), None, "-x two"),
            ("<13>Dec  7 10:12:14 - - -x three", None, None, "-x three"),
            (
                "<13>Dec  7 10:12:14 - -[42]: [x] four",
                None,
                None,
                "[x] four",
            ),
        ] {
            let m = check(line).unwrap_or_else(|| panic!("not on the fast path: {line}"));
            assert_eq!((m.hostname, m.app_name, m.msg), (host, app, msg), "{line}");
            let full = crate::parse::syslog::parse_syslog(line.as_bytes(), RECEIVED, Tz::UTC);
            assert_eq!(full.hostname.as_deref(), host, "{line}");
            assert_eq!(full.msg, msg, "{line}");
        }
    }

    #[test]
    fn unusual_lines_are_left_to_the_slow_path() {
        for line in [
            "<13>Sep 21 2026 14:00:00 h app: with a year",
            "<13>Sep 21 14:00:00.123 h app: fractional seconds",
            "<13>2026-09-21t14:00:00z h app: lowercase RFC 3339",
            "<13>2026-09-21T14:00:60Z h app: leap second",
            "<13>Sep 21 14:00:00 app[1]: no hostname",
            "<13>Sep 21 14:00:00 host: no tag",
            "<13>Sep 21 14:00:00  h app: two spaces",
            "<13>Sep 21 14:00:00 h\tapp: a tab",
            "<13>Sep 21 14:00:00 hé app: non-ASCII",
            "<13>Feb 30 14:00:00 h app: no such day",
            "<13>Sep 21 24:00:00 h app: no such hour",
            "<13>Sep 21 14:00:60 h app: leap second",
            "<13>Sep 21 14:00:00 h",
            "<192>Sep 21 14:00:00 h app: unknown facility",
            " <13>Sep 21 14:00:00 h app: leading space",
            "<13>1 2026-09-21T14:00:00Z h app - - - RFC 5424",
        ] {
            assert!(parse(line, RECEIVED, Tz::UTC).is_none(), "{line}");
        }
    }

    /// A time is read at the zone's offset on its own date, not on the
    /// receive date: noon on 15 June in New York is 16:00Z (EDT) when
    /// received in December (EST), and noon on 7 December 17:00Z when
    /// received in June. On both the fast path and syslog_loose's.
    #[test]
    fn a_time_is_read_at_the_offset_of_its_own_date() {
        let tz = Tz::America__New_York;
        for (line, recv, want) in [
            (
                "<13>Jun 15 12:00:00 host tag: x",
                "2026-12-07T10:00:00Z",
                "2026-06-15T16:00:00Z",
            ),
            (
                "<13>Jun 15 12:00:00.250 host tag: x",
                "2026-12-07T10:00:00Z",
                "2026-06-15T16:00:00.250Z",
            ),
            (
                "<13>Dec  7 12:00:00 host tag: x",
                "2026-06-15T10:00:00Z",
                "2026-12-07T17:00:00Z",
            ),
            (
                "<13>Dec  7 10:00:00 host tag: x",
                "2026-12-07T16:00:00Z",
                "2026-12-07T15:00:00Z",
            ),
        ] {
            // the fast path's, checked against syslog_loose's, or (a line
            // it leaves to the slow path) syslog_loose's alone
            let got = match check_at(line, ms(recv), tz).unwrap() {
                Some(m) => m.timestamp_ms,
                None => parse_syslog_loose(line.as_bytes(), ms(recv), tz)
                    .timestamp_ms
                    .unwrap(),
            };
            assert_eq!(got, ms(want), "{line} received {recv}");
        }
        // the slow path alone (a line the fast path leaves to it)
        let slow = parse_syslog_loose(
            b"<13>Jun 15 12:00:00 host: x y",
            ms("2026-12-07T10:00:00Z"),
            tz,
        );
        assert_eq!(slow.timestamp_ms, Some(ms("2026-06-15T16:00:00Z")));
    }

    #[test]
    fn the_year_is_nearest_to_the_receive_time_in_the_default_zone() {
        let recv = ms("2026-01-02T00:00:00Z");
        let m = check_at("<34>Dec 31 23:59:00 host su[99]: x", recv, Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(m.timestamp_ms, ms("2025-12-31T23:59:00Z"));
        let recv = ms("2026-07-01T12:00:00Z");
        let m = check_at("<13>Jul  1 14:00:00 host app: x", recv, Tz::Europe__Berlin)
            .unwrap()
            .unwrap();
        assert_eq!(m.timestamp_ms, ms("2026-07-01T12:00:00Z"));
        // Feb 29 of the nearest leap year
        let recv = ms("2029-01-10T00:00:00Z");
        let m = check_at("<13>Feb 29 10:00:00 host app: x", recv, Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(m.timestamp_ms, ms("2028-02-29T10:00:00Z"));
        // the offset kept for a receive second is the zone's own
        let line = "<13>Jul  1 14:00:00 host app: x";
        let recv = ms("2026-07-01T12:00:00.250Z");
        for tz in [Tz::UTC, Tz::Europe__Berlin, Tz::UTC, Tz::Asia__Kolkata] {
            check_at(line, recv, tz).unwrap().unwrap();
        }
        // years before 1 go through chrono (the integer calendar's are u32)
        let at = |y, mo, d, h| {
            NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        let m = check_at("<13>Dec 31 23:00:00 host app: x", at(-5, 1, 1, 5), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(m.timestamp_ms, at(-6, 12, 31, 23));
        let m = check_at("<13>Dec 31 23:00:00 host app: x", at(1, 1, 1, 5), Tz::UTC)
            .unwrap()
            .unwrap();
        assert_eq!(m.timestamp_ms, at(0, 12, 31, 23));
    }

    const MONTHS: [&str; 13] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "NOV",
    ];

    /// Lines near the fast path's shape, with the variations it must either
    /// read exactly or leave alone.
    pub(crate) fn line() -> impl Strategy<Value = String> {
        let pri = prop_oneof![12 => 0u32..192, 1 => Just(191), 1 => Just(192)];
        let month = prop_oneof![
            8 => prop::sample::select(&MONTHS[..]).prop_map(str::to_string),
            1 => "[a-zA-Z]{3}",
        ];
        let day = prop_oneof![
            (1u32..32).prop_map(|d| format!("{d:2}")),
            (1u32..32).prop_map(|d| format!("{d:02}")),
            (1u32..32).prop_map(|d| d.to_string()),
        ];
        let time = prop_oneof![
            16 => (0u32..24, 0u32..60, 0u32..60).prop_map(|(h, m, s)| format!("{h:02}:{m:02}:{s:02}")),
            1 => (0u32..30, 0u32..70, 0u32..70).prop_map(|(h, m, s)| format!("{h:02}:{m:02}:{s:02}")),
            1 => Just("14:00:00.5".to_string()),
            1 => Just("14:00:00:".to_string()),
            1 => Just("2026 14:00:00".to_string()),
        ];
        let token = prop_oneof![
            16 => "[a-zA-Z0-9._-]{1,12}",
            1 => Just("-".to_string()),
            1 => "[!-~]{1,8}",
            1 => "[a-z]{1,4}[é ]?[a-z]{0,3}",
        ];
        let tag = prop_oneof![
            8 => ("[a-z]{1,8}", "[0-9]{1,6}").prop_map(|(a, p)| format!("{a}[{p}]")),
            3 => "[a-zA-Z0-9_./-]{1,10}",
            1 => "[!-~]{0,3}\\[[!-~]{0,4}\\]?[!-~]{0,2}",
            1 => Just("-".to_string()),
        ];
        let sep = prop_oneof![
            6 => Just(": "),
            1 => Just(":"),
            2 => Just(" "),
            1 => Just(" : "),
            1 => Just("::"),
            1 => Just(":\t"),
            1 => Just(""),
        ];
        let msg = prop_oneof![
            12 => "[ -~]{0,30}",
            // a start syslog_loose reads as SD (elements, `-`): kept as MSG
            2 => prop_oneof![
                "[\\[\\-][ -~]{0,10}",
                "(\\[[a-zA-Z0-9.@]{1,8}( [a-z]{1,2}=\"[a-z\\\\]{0,3}\")?\\]){1,2}[ \\t]{0,2}[ -~]{0,8}",
            ],
            1 => "\u{feff}?[a-zé\\t ]{0,10}[ \\t]{0,2}",
            1 => Just("{\"action\":\"login\",\"user\":\"a\"}".to_string()),
        ];
        let gap = prop_oneof![20 => Just(" "), 1 => Just("  "), 1 => Just("\t")];
        let bsd = (month, day, time).prop_map(|(m, d, t)| format!("{m} {d} {t}"));
        let rfc3339 = (
            2000u32..2040,
            1u32..13,
            prop_oneof![8 => 1u32..29, 1 => 29u32..33],
            (
                0u32..24,
                0u32..60,
                prop_oneof![9 => 0u32..60, 1 => Just(60u32)],
            ),
            prop_oneof![Just(""), Just(".5"), Just(".123456"), Just(".1234567891")],
            prop_oneof![
                Just("Z"),
                Just("+02:00"),
                Just("-05:30"),
                Just("z"),
                Just("+2:00")
            ],
            prop_oneof![8 => Just("T"), 1 => Just("t")],
        )
            .prop_map(|(y, mo, d, (h, mi, s), frac, zone, t)| {
                format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{frac}{zone}")
            });
        let timestamp = prop_oneof![3 => bsd, 1 => rfc3339];
        (pri, timestamp, gap.clone(), token, gap, tag, sep, msg).prop_map(
            |(pri, timestamp, gap1, host, gap2, tag, sep, msg)| {
                format!("<{pri}>{timestamp}{gap1}{host}{gap2}{tag}{sep}{msg}")
            },
        )
    }

    pub(crate) fn zone() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            Tz::UTC,
            Tz::Europe__Berlin,
            Tz::America__New_York,
            Tz::Asia__Kolkata,
            Tz::Australia__Lord_Howe,
        ])
    }

    /// The generator must mostly exercise the fast path, or the
    /// differential test below proves little.
    #[test]
    fn generated_lines_mostly_take_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut fast = 0;
        for _ in 0..1000 {
            let line = line().new_tree(&mut runner).unwrap().current();
            fast += usize::from(parse(&line, RECEIVED, Tz::UTC).is_some());
        }
        assert!(
            (300..900).contains(&fast),
            "{fast} of 1000 on the fast path"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn the_fast_path_reads_what_syslog_loose_reads(
            line in line(),
            zone in zone(),
            received_s in 1_600_000_000i64..1_900_000_000,
        ) {
            check_at(&line, received_s * 1000 + 123, zone)?;
        }
    }
}
