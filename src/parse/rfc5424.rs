//! A hand-written RFC 5424 fast path.
//!
//! [`parse`] reads the common, well-formed shape of an RFC 5424 line byte by
//! byte, borrowing every field from the input:
//!
//! ```text
//! <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP] MSG
//! ```
//!
//! It accepts only a strict subset of what `syslog_loose` accepts, and for that
//! subset it yields exactly what `syslog_loose` would (see the differential
//! tests). Anything else (RFC 3164, several spaces between header fields,
//! non-ASCII header fields, leap seconds, lowercase `t`/`z`, odd structured
//! data, …) returns `None` and the caller falls back to `syslog_loose`, so
//! behaviour for unusual input is unchanged.
//!
//! Mirrored `syslog_loose` 0.21 quirks: PROCID that parses as an `i32` is
//! re-printed (`0042` → `42`); spaces and tabs between SD and MSG are dropped;
//! only the first run of adjacent SD elements is SD (`[a x="1"] [b]` leaves
//! `[b]` in MSG); repeated SD-IDs merge, a repeated param name keeps the last
//! value. Not mirrored: in SD param values only `\"`, `\\` and `\]` are
//! escapes (RFC 5424 §6.3.3), and a backslash before any other character is
//! kept (syslog_loose turns `\n` into a newline); the general path unescapes
//! syslog_loose's values as this one does.

use crate::parse::syslog::{strip_bom, SyslogMessage};
use serde_json::{Map, Value};

/// An RFC 5424 message, borrowed from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc5424<'a> {
    pub facility: u8,
    pub severity: u8,
    pub version: u32,
    /// `None` for the NILVALUE timestamp.
    pub timestamp_ms: Option<i64>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// The structured data elements, validated (`""` for NILVALUE).
    pub structured_data: &'a str,
    /// No SD-PARAM value holds a backslash or a `]`: each value means
    /// exactly the bytes written, and is written back the same way.
    pub sd_plain: bool,
    /// MSG, with a leading BOM removed.
    pub msg: &'a str,
    /// The whole line as parsed (trailing whitespace trimmed), PRI to MSG:
    /// what the `syslog` destination forwards as it came (`syslog_hint`).
    pub line: &'a str,
}

/// Parses `text` (already stripped of trailing CR/LF/NUL) when it is a
/// well-formed RFC 5424 line the fast path understands; `None` otherwise.
pub fn parse(text: &str) -> Option<Rfc5424<'_>> {
    parse_with_sd(text, |_, _| {})
}

/// [`parse`], also calling `on_sd` for each SD element (`None`) and each of
/// its params (name, raw value) as the structured data is validated, in
/// order: callers that need them save a second scan. On `None` some calls
/// may already have been made.
pub fn parse_with_sd<'a>(
    text: &'a str,
    on_sd: impl FnMut(&'a str, Option<(&'a str, &'a str)>),
) -> Option<Rfc5424<'a>> {
    // syslog_loose trims (Unicode) whitespace at both ends; the fast path
    // requires the line to start with '<', so only the end can change.
    let text = text.trim_end();
    let b = text.as_bytes();
    let (pri, mut i) = pri(b)?;
    let (version, j) = small_number(b, i)?;
    i = space(b, j)?;
    // TIMESTAMP
    let timestamp_ms = if b.get(i) == Some(&b'-') {
        i += 1;
        None
    } else {
        let (ms, j) = timestamp(b, i)?;
        i = j;
        Some(ms)
    };
    i = space(b, i)?;
    let (hostname, j) = header_token(text, i)?;
    i = space(b, j)?;
    let (app_name, j) = header_token(text, i)?;
    i = space(b, j)?;
    let (procid, j) = header_token(text, i)?;
    i = space(b, j)?;
    let (msgid, j) = header_token(text, i)?;
    i = space(b, j)?;
    // STRUCTURED-DATA
    let sd_start = i;
    let (structured_data, sd_plain) = match b.get(i)? {
        b'-' => {
            i += 1;
            ("", true)
        }
        b'[' => {
            let (end, plain) = scan_sd_plain(text, i, on_sd)?;
            i = end;
            (&text[sd_start..i], plain)
        }
        _ => return None,
    };
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    Some(Rfc5424 {
        facility: (pri >> 3) as u8,
        severity: (pri & 7) as u8,
        version,
        timestamp_ms,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        sd_plain,
        msg: strip_bom(&text[i..]),
        line: text,
    })
}

impl Rfc5424<'_> {
    /// The owned [`SyslogMessage`] (what `syslog_loose` parsing yields).
    pub fn to_message(&self) -> SyslogMessage {
        SyslogMessage {
            parsed: true,
            facility: Some(self.facility),
            severity: Some(self.severity),
            version: Some(self.version),
            timestamp_ms: self.timestamp_ms,
            hostname: self.hostname.map(str::to_string),
            app_name: self.app_name.map(str::to_string),
            procid: self.procid.map(|p| procid_string(p).into_owned()),
            msgid: self.msgid.map(str::to_string),
            structured_data: self.structured_data_map(),
            msg: self.msg.to_string(),
        }
    }

    /// SD-ID → (param name → value), values unescaped.
    pub fn structured_data_map(&self) -> Map<String, Value> {
        let mut out = Map::new();
        if self.structured_data.is_empty() {
            return out;
        }
        // Params are collected per element, then the element is added (or
        // merged into an earlier one with the same SD-ID, its params added
        // to the earlier one's).
        fn flush(out: &mut Map<String, Value>, id: &str, params: Map<String, Value>) {
            match out.get_mut(id) {
                Some(Value::Object(existing)) => {
                    for (name, value) in params {
                        match value {
                            Value::Array(values) => values
                                .into_iter()
                                .for_each(|v| add_value(existing, &name, v)),
                            v => add_value(existing, &name, v),
                        }
                    }
                }
                _ => {
                    out.insert(id.to_string(), Value::Object(params));
                }
            }
        }
        let mut current: Option<(&str, Map<String, Value>)> = None;
        scan_sd(self.structured_data, 0, |id, param| match param {
            None => {
                if let Some((id, params)) = current.replace((id, Map::new())) {
                    flush(&mut out, id, params);
                }
            }
            Some((name, raw)) => {
                if let Some((_, params)) = current.as_mut() {
                    add_param(params, name, unescape_param(raw));
                }
            }
        });
        if let Some((id, params)) = current {
            flush(&mut out, id, params);
        }
        out
    }
}

/// PROCID as `syslog_loose` reports it: re-printed when it is an `i32`.
pub(crate) fn procid_string(s: &str) -> std::borrow::Cow<'_, str> {
    let canonical_digits = s.len() <= 9
        && s.bytes().all(|c| c.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    if canonical_digits {
        return s.into();
    }
    match s.parse::<i32>() {
        Ok(n) => n.to_string().into(),
        Err(_) => s.into(),
    }
}

/// `<PRI>` at the start of `b` with 1-3 digits and a known facility (PRI
/// <= 191): PRI and where what follows starts.
pub(crate) fn pri(b: &[u8]) -> Option<(u32, usize)> {
    if b.first() != Some(&b'<') {
        return None;
    }
    let (pri, i) = small_number(b, 1)?;
    if pri > 191 || b.get(i) != Some(&b'>') {
        return None;
    }
    Some((pri, i + 1))
}

/// 1-3 ASCII digits at `b[i..]`.
fn small_number(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        if j - i == 3 {
            return None;
        }
        n = n * 10 + u32::from(b[j] - b'0');
        j += 1;
    }
    (j > i).then_some((n, j))
}

/// Exactly one space at `b[i]` (several, or a tab, go to the slow path).
fn space(b: &[u8], i: usize) -> Option<usize> {
    (b.get(i) == Some(&b' ')).then_some(i + 1)
}

/// A header field: printable US-ASCII up to the next byte; `-` is NILVALUE.
/// A field ending in ':' is left to the slow path.
fn header_token(text: &str, i: usize) -> Option<(Option<&str>, usize)> {
    let b = text.as_bytes();
    let mut j = i;
    while j < b.len() && (0x21..=0x7e).contains(&b[j]) {
        j += 1;
    }
    if j == i || b[j - 1] == b':' {
        return None;
    }
    let tok = &text[i..j];
    Some(((tok != "-").then_some(tok), j))
}

/// `d` ASCII digits at `b[i..]`.
pub(crate) fn digits(b: &[u8], i: usize, d: usize) -> Option<u32> {
    let s = b.get(i..i + d)?;
    let mut n = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

thread_local! {
    /// The last `YYYY-MM-DDTHH:MM:SS` [`timestamp`] read on this thread and
    /// its seconds since the epoch (before the offset). The lines of one
    /// sender share their second with the lines around them, so most
    /// timestamps need only this comparison, not the digits' arithmetic and
    /// the calendar. It starts as a valid second, so that it can only
    /// match a timestamp that is one.
    static LAST_SECOND: std::cell::Cell<([u8; 19], i64)> =
        const { std::cell::Cell::new((*b"1970-01-01T00:00:00", 0)) };
}

/// `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM)` at `b[i..]`, to epoch
/// milliseconds (fraction truncated, like chrono's `timestamp_millis`).
pub(crate) fn timestamp(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let second: &[u8; 19] = b.get(i..)?.first_chunk()?;
    let (last, last_secs) = LAST_SECOND.get();
    let local_secs = if *second == last {
        last_secs
    } else {
        let secs = local_seconds(second)?;
        LAST_SECOND.set((*second, secs));
        secs
    };
    let mut j = i + 19;
    let mut frac_ms = 0u32;
    if b.get(j) == Some(&b'.') {
        j += 1;
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            if j - start < 3 {
                frac_ms = frac_ms * 10 + u32::from(b[j] - b'0');
            }
            j += 1;
        }
        let n = j - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let offset_secs: i64 = match *b.get(j)? {
        b'Z' => {
            j += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, j + 1, 2)?;
            let om = digits(b, j + 4, 2)?;
            if b[j + 3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            j += 6;
            let s = i64::from(oh * 3600 + om * 60);
            if sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return None,
    };
    let ms = (local_secs - offset_secs) * 1000 + i64::from(frac_ms);
    // past the year 9999 (or before 0000) in UTC: no time (see `in_rfc3339_range`)
    crate::event::in_rfc3339_range(ms).then_some((ms, j))
}

/// `YYYY-MM-DDTHH:MM:SS`, validated, to seconds since the epoch as if it
/// were UTC.
fn local_seconds(b: &[u8; 19]) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let min = digits(b, 14, 2)?;
    let sec = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + min * 60 + sec))
}

fn is_leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

pub(crate) fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Bytes allowed in an SD-ID or PARAM-NAME on the fast path.
#[inline(always)]
fn sd_name_byte(c: u8) -> bool {
    SD_NAME_BYTES[usize::from(c)]
}

/// [`sd_name_byte`] as a table: one load per byte of a name instead of a
/// range test and four comparisons. The SD-NAME bytes of
/// `rfc5424_fields`, less `[` (the fast path leaves that to the slow one).
static SD_NAME_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = crate::event::rfc5424_fields::sd_name_byte(c as u8) && c as u8 != b'[';
        c += 1;
    }
    t
};

/// Adds param `name`'s `value` to an SD element's params: a string, or,
/// for a param given more than once (RFC 5424 §6.3.3: "An SD-PARAM MAY be
/// repeated", as `origin`'s `ip` is), an array of its values in order.
pub(crate) fn add_param(params: &mut Map<String, Value>, name: &str, value: String) {
    add_value(params, name, Value::String(value));
}

fn add_value(params: &mut Map<String, Value>, name: &str, value: Value) {
    match params.get_mut(name) {
        Some(Value::Array(values)) => values.push(value),
        Some(first) => {
            let first = first.take();
            params.insert(name.to_string(), Value::Array(vec![first, value]));
        }
        None => {
            params.insert(name.to_string(), value);
        }
    }
}

/// Scans adjacent SD elements from `text[i] == '['`, calling `f(id, None)`
/// for each element and `f(id, Some((name, raw_value)))` for each of its
/// params; returns the
/// index after the last `]`. `None` when an element is not in the strict
/// form `[ID( NAME="VALUE")*]`.
pub(crate) fn scan_sd<'a>(
    text: &'a str,
    i: usize,
    f: impl FnMut(&'a str, Option<(&'a str, &'a str)>),
) -> Option<usize> {
    scan_sd_plain(text, i, f).map(|(end, _)| end)
}

/// [`scan_sd`], also telling whether no param value holds a backslash or a
/// `]` (see [`Rfc5424::sd_plain`]).
#[inline]
fn scan_sd_plain<'a>(
    text: &'a str,
    mut i: usize,
    mut f: impl FnMut(&'a str, Option<(&'a str, &'a str)>),
) -> Option<(usize, bool)> {
    let b = text.as_bytes();
    let mut plain = true;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let start = i;
        while i < b.len() && sd_name_byte(b[i]) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let id = &text[start..i];
        f(id, None);
        loop {
            match *b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    i += 1;
                    let start = i;
                    while i < b.len() && sd_name_byte(b[i]) {
                        i += 1;
                    }
                    if i == start || b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
                        return None;
                    }
                    let name = &text[start..i];
                    i += 2;
                    let vstart = i;
                    loop {
                        match *b.get(i)? {
                            b'"' => break,
                            b'\\' => {
                                // The escaped character must exist; it may be
                                // multi-byte, whose continuation bytes are
                                // never '"' or '\\'.
                                if i + 1 >= b.len() {
                                    return None;
                                }
                                plain = false;
                                i += 2;
                            }
                            b']' => {
                                plain = false;
                                i += 1;
                            }
                            _ => i += 1,
                        }
                    }
                    f(id, Some((name, &text[vstart..i])));
                    i += 1;
                }
                _ => return None,
            }
        }
    }
    Some((i, plain))
}

/// An SD param value as RFC 5424 §6.3.3 reads it: `\"`, `\\` and `\]`
/// lose the backslash, a backslash before any other character is kept
/// (`C:\new` stays `C:\new`; syslog_loose's `params()` turns `\n` into
/// a newline, which the general path no longer uses).
pub(crate) fn unescape_param(raw: &str) -> String {
    if !raw.as_bytes().contains(&b'\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut escaped = false;
    for c in raw.chars() {
        if c == '\\' && !escaped {
            escaped = true;
        } else if escaped && c != '"' && c != ']' && c != '\\' {
            escaped = false;
            out.push('\\');
            out.push(c);
        } else {
            escaped = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::normalize::{normalize_syslog, Origin};
    use crate::parse::syslog::{parse_syslog, parse_syslog_loose};
    use chrono_tz::Tz;
    use proptest::prelude::*;

    const RECEIVED: i64 = 1_790_000_000_000;
    const ORIGIN: Origin = Origin {
        listener: "t",
        address: Some("10.0.0.1:1"),
        syslog_hint: true,
    };

    /// Fast path vs syslog_loose: same message, and same canonical event
    /// (apart from the generated event_id). Returns whether the fast path
    /// took the line.
    fn check_same(line: &str) -> Result<bool, TestCaseError> {
        let text = line.trim_end_matches(['\n', '\r', '\0']);
        let loose = parse_syslog_loose(line.as_bytes(), RECEIVED, Tz::UTC);
        let Some(fast) = parse(text) else {
            // Not taken: parse_syslog must be exactly the loose path.
            prop_assert_eq!(parse_syslog(line.as_bytes(), RECEIVED, Tz::UTC), loose);
            return Ok(false);
        };
        let fast = fast.to_message();
        prop_assert_eq!(&fast, &loose, "line: {:?}", line);
        let mut a = normalize_syslog(fast, RECEIVED, &ORIGIN);
        let b = normalize_syslog(loose, RECEIVED, &ORIGIN);
        a.event_id.clone_from(&b.event_id);
        prop_assert_eq!(a.encode().into_body(), b.encode().into_body());
        prop_assert_eq!(a, b);
        Ok(true)
    }

    /// The remembered second is used only for the same 19 bytes: the same
    /// second with another fraction or offset, the next second, and an
    /// invalid one after a valid one all read as chrono reads them.
    #[test]
    fn timestamps_sharing_a_second_read_as_chrono_reads_them() {
        let cases = [
            "2024-02-29T12:00:00Z",
            "2024-02-29T12:00:00.5Z",
            "2024-02-29T12:00:00.123456+01:30",
            "2024-02-29T12:00:01-07:00",
            "2024-02-29T12:00:00Z",
            "2024-02-29T12:00:0xZ",
            "2024-02-30T12:00:00Z",
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:00.001-00:01",
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0Z",
            "2024-02-29T12:00:00",
            "2024-02-29T12:00:00Z",
        ];
        for round in 0..2 {
            for ts in cases {
                let want = chrono::DateTime::parse_from_rfc3339(ts)
                    .ok()
                    .map(|t| (t.timestamp_millis(), ts.len()));
                assert_eq!(
                    super::timestamp(ts.as_bytes(), 0),
                    want,
                    "{ts:?} round {round}"
                );
            }
        }
    }

    #[test]
    fn the_sd_name_table_admits_printable_ascii_but_the_four_delimiters() {
        for c in 0..=255u8 {
            let want = (0x21..=0x7e).contains(&c) && !matches!(c, b'=' | b']' | b'"' | b'[');
            assert_eq!(sd_name_byte(c), want, "{c:#x}");
        }
    }

    #[test]
    fn corpus_matches_syslog_loose() {
        let taken = [
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][meta x=\"a\\\"b\"] \u{feff}An application event",
            "<34>1 2026-11-23T14:56:08.123Z web-01.example.com sshd 4242 LOGIN [meta@32473 user=\"alice\" method=\"password\"] Accepted password for alice from 10.0.0.7 port 52311 ssh2",
            "<13>1 - - - - - - just text",
            "<13>1 - h app - - - kept",
            "<14>1 - - probe - - - ready",
            "<13>1 - - - - - - h\u{e9}",
            "<38>1 2023-11-14T22:13:20Z h sshd 1 - - Accepted password",
            "<84>1 2023-11-14T22:13:20Z h sudo - - - x",
            "<105>1 2023-11-14T22:13:20Z h auditd - - - x",
            "<14>1 2023-11-14T22:13:20Z h app - - - \u{feff}",
            "<14>1 2023-11-14T22:13:20Z h app - - - \u{feff}{\"action\":\"a.b\"}",
            "<132>1 2023-11-14T22:13:20.123Z relay siem-relay - - - body",
            "<131>1 1970-01-01T00:00:00.000Z relay siem-relay - - - body",
            "<0>1 1985-04-12T23:20:50.52Z h a p m - x",
            "<191>1 1985-04-12T23:20:50.52-07:00 h a p m - x",
            "<13>1 1969-12-31T23:59:59.999999999+23:59 h a p m - x",
            "<13>1 0001-01-01T00:00:00-00:00 h a p m - x",
            "<13>1 2024-02-29T12:00:00Z h a 0042 m - x",
            "<13>1 2024-02-29T12:00:00Z h a +7 m - x",
            "<13>1 2024-02-29T12:00:00Z h a -7 m - x",
            "<13>1 2024-02-29T12:00:00Z h a 99999999999 m - x",
            "<13>1 2024-02-29T12:00:00Z h a 2147483647 m - x",
            "<13>1 2024-02-29T12:00:00Z h::1 a:b p m - x",
            "<13>1 2024-02-29T12:00:00Z h a p m [x] [y] after",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"1\"][x a=\"2\" b=\"\"][y]x",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"q\\n\\t\\\\\\]\\\"]\"] m",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"\\\u{e9}\"] m",
            "<13>1 2024-02-29T12:00:00Z h a p m -",
            "<13>1 2024-02-29T12:00:00Z h a p m -\t\t msg  \t",
            "<13>1 2024-02-29T12:00:00Z h a p m -msg",
            "<13>01 2024-02-29T12:00:00Z h a p m - x\r\n",
            "<013>999 2024-02-29T12:00:00Z h a p m - x\n\0",
            "<13>1 - h a p m - {\"a\":1}",
        ];
        for line in taken {
            assert!(check_same(line).unwrap(), "fast path did not take {line:?}");
        }
        // Shapes the fast path leaves to syslog_loose; the result must still
        // be syslog_loose's.
        let slow = [
            "<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password",
            "<13>1 hello",
            "<34>1 ",
            "<13>1  2024-02-29T12:00:00Z h a p m - x",
            "<13>1 2024-02-29T12:00:00Z  h a p m - x",
            "<13>1 2024-02-29T12:00:00Z\th a p m - x",
            "<13>1 2024-02-29t12:00:00z h a p m - x",
            "<13>1 2024-02-30T12:00:00Z h a p m - x",
            "<13>1 2024-02-29T23:59:60Z h a p m - x",
            "<13>1 2024-02-29T12:00:00.1234567891Z h a p m - x",
            "<13>1 2024-02-29T12:00:00+24:00 h a p m - x",
            "<13>1 2024-02-29T12:00:00 h a p m - x",
            "<13>1 2024-02-29T12:00:00Z h: a p m - x",
            "<13>1 2024-02-29T12:00:00Z h\u{e9} a p m - x",
            "<13>1 2024-02-29T12:00:00Z h a p m",
            "<13>1 2024-02-29T12:00:00Z h a p m x",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"1\" ] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=1] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"1\"",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a=\"1\\\"] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [x a b=\"1\"] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [x  a=\"1\"] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [=x] y",
            "<13>1 2024-02-29T12:00:00Z h a p m [] y",
            "<192>1 2024-02-29T12:00:00Z h a p m - x",
            "<1913>1 2024-02-29T12:00:00Z h a p m - x",
            "<13>1000 2024-02-29T12:00:00Z h a p m - x",
            " <13>1 2024-02-29T12:00:00Z h a p m - x",
            "hello world",
            "",
        ];
        for line in slow {
            assert!(!check_same(line).unwrap(), "fast path took {line:?}");
        }
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("-".to_string()),
            4 => "[!-~]{0,15}[!-9;-~]",
        ]
    }

    fn procid() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-".to_string()),
            "[0-9]{1,12}",
            "[+-][0-9]{1,10}",
            "[!-~]{0,8}[!-9;-~]",
        ]
    }

    fn timestamp() -> impl Strategy<Value = String> {
        let frac = prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"];
        let offset = prop_oneof![Just("Z".to_string()), "[+-]([01][0-9]|2[0-3]):[0-5][0-9]"];
        prop_oneof![
            1 => Just("-".to_string()),
            6 => (0u32..=9999, 1u32..=12, 1u32..=31, 0u32..24, 0u32..60, 0u32..60, frac, offset)
                .prop_map(|(y, mo, d, h, mi, s, f, o)| {
                    let d = d.min(days_in_month(y, mo));
                    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{o}")
                }),
        ]
    }

    fn sd_name() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => prop::sample::select(vec!["a", "b", "meta@1", "x"]).prop_map(str::to_string),
            3 => "[!#-<>-Z^-~]{1,10}",
        ]
    }

    fn sd_value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            6 => "[^\"\\\\]{1,6}",
            1 => Just("\\\"".to_string()),
            1 => Just("\\\\".to_string()),
            1 => Just("\\]".to_string()),
            1 => Just("\\n".to_string()),
            1 => Just("\\t".to_string()),
            1 => Just("\\\u{e9}".to_string()),
            1 => Just("]".to_string()),
            1 => Just("[".to_string()),
        ];
        prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
    }

    fn structured_data() -> impl Strategy<Value = String> {
        let element = (
            sd_name(),
            prop::collection::vec((sd_name(), sd_value()), 0..4),
        )
            .prop_map(|(id, params)| {
                let mut s = format!("[{id}");
                for (n, v) in params {
                    s.push_str(&format!(" {n}=\"{v}\""));
                }
                s.push(']');
                s
            });
        prop_oneof![
            1 => Just("-".to_string()),
            3 => prop::collection::vec(element, 1..4).prop_map(|v| v.concat()),
        ]
    }

    fn msg() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            " \\PC{0,40}",
            " \u{feff}\\PC{0,20}",
            // (a `[` right after the SD would start another SD element: not a valid MSG)
            "[ \t]{0,3}[^ \t\\[]\\PC{0,20}[ \t\r\n]{0,3}",
            " \\{\"[a-z_]{1,8}\":\"[a-z]{0,5}\"\\}",
        ]
    }

    fn line() -> impl Strategy<Value = String> {
        (
            0u32..=191,
            1u32..=3,
            timestamp(),
            (token(), token(), procid(), token()),
            structured_data(),
            msg(),
        )
            .prop_map(|(pri, v, ts, (h, a, p, m), sd, msg)| {
                format!("<{pri}>{v} {ts} {h} {a} {p} {m} {sd}{msg}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn valid_lines_take_fast_path_and_match_syslog_loose(line in line()) {
            prop_assert!(check_same(&line)?, "fast path did not take {:?}", line);
        }

        /// Random damage to valid lines: whatever the fast path still takes
        /// must match syslog_loose.
        #[test]
        fn damaged_lines_match_syslog_loose(
            line in line(),
            at in any::<prop::sample::Index>(),
            junk in prop_oneof![Just(""), Just(" "), Just("\t"), Just("\""), Just("\\"), Just("]"), Just("["), Just("="), Just(":"), Just("-"), Just("\u{a0}"), Just("\u{2028}")],
            cut in any::<bool>(),
        ) {
            let mut at = at.index(line.len() + 1);
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            let damaged = if cut {
                format!("{}{junk}", &line[..at])
            } else {
                format!("{}{junk}{}", &line[..at], &line[at..])
            };
            check_same(&damaged)?;
        }
    }
}
