//! Syslog message parsing (RFC 5424 and RFC 3164): the hand-written fast
//! paths ([`rfc5424`](super::rfc5424), [`rfc3164`](super::rfc3164)) for the
//! common shapes, `syslog_loose` for everything else.
//!
//! The result, [`SyslogMessage`], keeps the header fields, the numeric
//! facility and severity codes, the structured data (SD-ID → param → value)
//! and the MSG with a leading UTF-8 BOM removed. RFC 3164 timestamps carry no
//! year: the year is chosen so that the timestamp lies nearest to the receive
//! time; timestamps without a zone are read in the configured default zone
//! (its UTC offset at the receive time).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use syslog_loose::{parse_message_with_year_exact_tz, IncompleteDate, ProcId, Variant};

/// A parsed syslog message. `parsed` is false when the input was not syslog
/// (then only `msg` is set, to the whole input).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyslogMessage {
    pub parsed: bool,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    /// 1 for RFC 5424; `None` for RFC 3164.
    pub version: Option<u32>,
    /// Event time in milliseconds since the epoch, when the message had one.
    pub timestamp_ms: Option<i64>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
    pub procid: Option<String>,
    pub msgid: Option<String>,
    /// SD-ID → (param name → value).
    pub structured_data: Map<String, Value>,
    pub msg: String,
}

/// Parses one syslog message received at `received_ms`. Never fails: input
/// that is not syslog comes back with `parsed == false` and the text in `msg`
/// (invalid UTF-8 replaced).
pub fn parse_syslog(input: &[u8], received_ms: i64, tz: Tz) -> SyslogMessage {
    let text = input_text(input);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    if let Some(m) = crate::parse::rfc5424::parse(text) {
        return m.to_message();
    }
    if let Some(m) = crate::parse::rfc3164::parse(text, received_ms, tz) {
        return m.to_message();
    }
    parse_text_loose(text, received_ms, tz)
}

/// [`parse_syslog`] without the RFC 5424 and 3164 fast paths: `syslog_loose` only. The
/// reference the fast path is tested and benchmarked against.
pub fn parse_syslog_loose(input: &[u8], received_ms: i64, tz: Tz) -> SyslogMessage {
    let text = input_text(input);
    parse_text_loose(text.trim_end_matches(['\n', '\r', '\0']), received_ms, tz)
}

fn input_text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    // Validating first is much faster than lossy conversion on valid input.
    match std::str::from_utf8(input) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(input),
    }
}

/// The receive time as wall-clock time in the default zone `tz`: what
/// RFC 3164 timestamps (no year, no zone) are read against.
pub(crate) fn received_local(received_ms: i64, tz: Tz) -> DateTime<FixedOffset> {
    let received = DateTime::<Utc>::from_timestamp_millis(received_ms).unwrap_or_default();
    let offset = tz.offset_from_utc_datetime(&received.naive_utc()).fix();
    received.with_timezone(&offset)
}

thread_local! {
    /// The zone's UTC offset at the last local minute an event time fell
    /// in: the zone lookup once per minute of event time, not once a line
    /// (zones change offset on whole minutes).
    static LOCAL_MINUTE: std::cell::Cell<Option<(Tz, i64, i32)>> =
        const { std::cell::Cell::new(None) };
}

/// The UTC offset, in seconds, of wall-clock time `local_s` (seconds since
/// the epoch, read as if in UTC) in `tz`: the one in force at that time, not
/// at the receive time (a June 3164 timestamp received in December is in
/// summer time). The earlier of two in a repeated hour; `fallback` in a
/// skipped one.
pub(crate) fn offset_at_local(tz: Tz, local_s: i64, fallback: i32) -> i32 {
    let minute = local_s.div_euclid(60);
    if let Some((z, m, offset)) = LOCAL_MINUTE.get() {
        if z == tz && m == minute {
            return offset;
        }
    }
    let offset = DateTime::<Utc>::from_timestamp(minute * 60, 0)
        .and_then(|t| tz.from_local_datetime(&t.naive_utc()).earliest())
        .map_or(fallback, |t| t.offset().fix().local_minus_utc());
    LOCAL_MINUTE.set(Some((tz, minute, offset)));
    offset
}

fn parse_text_loose(text: &str, received_ms: i64, tz: Tz) -> SyslogMessage {
    // Cisco's headers, which syslog_loose refuses or misreads
    if let Some(m) = super::cisco::parse(text, received_ms, tz) {
        return m;
    }
    let received = DateTime::<Utc>::from_timestamp_millis(received_ms).unwrap_or_default();
    let local_received = received_local(received_ms, tz);
    let offset = *local_received.offset();
    // a year-less timestamp (RFC 3164) carries no zone either: syslog_loose
    // reads it at the receive time's offset, put right below
    let yearless = std::cell::Cell::new(false);
    let get_year = |date: IncompleteDate| {
        yearless.set(true);
        nearest_year(date, local_received)
    };
    // syslog_loose needs a timestamp; RFC 5424 allows NILVALUE ("-").
    let nil_filled = fill_nil_timestamp(text, received);
    // headers it misreads, in a shape it reads (see `header_repair`)
    let repaired = match nil_filled {
        None => super::header_repair::repair(text, tz),
        Some(_) => None,
    };
    let input = nil_filled
        .as_deref()
        .or(repaired.as_ref().map(|r| r.text.as_str()))
        .unwrap_or(text);
    match parse_message_with_year_exact_tz(input, get_year, Some(offset), Variant::Either) {
        Ok(mut m) if m.facility.is_some() && !sd_dropped(&m, input) => {
            if matches!(m.protocol, syslog_loose::Protocol::RFC3164) {
                keep_3164_msg(&mut m, input);
            }
            let mut out = from_loose(m);
            if nil_filled.is_some() {
                out.timestamp_ms = None;
            }
            if yearless.get() {
                // back to its wall-clock time, then read at its own date's offset
                let received_offset = offset.local_minus_utc();
                out.timestamp_ms = out.timestamp_ms.map(|t| {
                    let local_ms = t + i64::from(received_offset) * 1000;
                    let at = offset_at_local(tz, local_ms.div_euclid(1000), received_offset);
                    local_ms - i64::from(at) * 1000
                });
            }
            if let Some(r) = &repaired {
                out.timestamp_ms = out.timestamp_ms.map(|t| t + r.add_ms);
                if r.wall_clock {
                    out.timestamp_ms = out.timestamp_ms.map(|t| wall_clock_in(t, tz));
                }
                if r.tag_as_host && out.app_name.is_none() {
                    tag_from_hostname(&mut out);
                }
            }
            // a time past the year 9999 in UTC (`9999-12-31T23:59:59-01:00`)
            // has no RFC 3339 form: the line is kept whole, as one whose
            // TIMESTAMP does not parse (a year-less one takes the receive
            // time's year, whatever the clock says, as on the fast path)
            if !yearless.get()
                && out
                    .timestamp_ms
                    .is_some_and(|t| !crate::event::in_rfc3339_range(t))
            {
                return not_parsed(text);
            }
            out
        }
        _ => not_parsed(text),
    }
}

/// A line that did not parse: kept whole, with its PRI's facility and
/// severity when it starts with one that can be read (RFC 3164 §4.3.2: a
/// valid PRI, then no valid TIMESTAMP, and the relay keeps the PRI and
/// reads the rest as content). Without them an `auth.crit` line that did
/// not parse was a `notice` and slipped past `min_severity` filters.
fn not_parsed(text: &str) -> SyslogMessage {
    let pri = crate::parse::rfc5424::pri(text.as_bytes()).map(|(p, _)| p);
    SyslogMessage {
        facility: pri.map(|p| (p >> 3) as u8),
        severity: pri.map(|p| (p & 7) as u8),
        msg: text.to_string(),
        ..Default::default()
    }
}

/// `ms`, a wall-clock time read as if in UTC, as that wall-clock time in
/// `tz` (the earlier of two in a repeated hour, unchanged in a skipped one).
fn wall_clock_in(ms: i64, tz: Tz) -> i64 {
    ms - i64::from(offset_at_local(tz, ms.div_euclid(1000), 0)) * 1000
}

/// Whether an RFC 5424 line's STRUCTURED-DATA, as syslog_loose read it,
/// starts with `[` but is not in the strict form `[ID( NAME="VALUE")*]…`:
/// syslog_loose skips an element it cannot read (an unquoted value, a
/// quote never closed) without a word, also after elements it read
/// (`[a@1 x="1"][b@1 y=v]` kept only `a@1`), and reads names with spaces
/// or quotes in them (`[ex@1 a b="v"]`: param `a b`). Such a line is kept
/// whole as a parse error instead, as one whose element has no closing
/// `]` already was.
fn sd_dropped(m: &syslog_loose::Message<&str>, input: &str) -> bool {
    if !matches!(m.protocol, syslog_loose::Protocol::RFC5424(_)) {
        return false;
    }
    let start = match m.structured_data.first() {
        // the first element's `[`, right before its SD-ID
        Some(el) => offset_in(input, el.id).and_then(|i| i.checked_sub(1)),
        // past PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID and MSGID
        None => (0..6).try_fold(0, |at, _| Some(at + input[at..].find(' ')? + 1)),
    };
    start.is_some_and(|s| {
        input[s..].starts_with('[') && super::rfc5424::scan_sd(input, s, |_, _| {}).is_none()
    })
}

/// RFC 3164 has no STRUCTURED-DATA, but syslog_loose reads a MSG that
/// starts with strict SD elements (`[12345.678] …`, `[INFO] …`,
/// `[x@1 a="b"] …`) or with `-` as SD, and leaves the rest as the MSG. The
/// MSG goes back to what the line holds after the TAG (and its `:` and
/// blanks), SD text and all, and the line has no SD.
fn keep_3164_msg<'a>(m: &mut syslog_loose::Message<&'a str>, input: &'a str) {
    let structured = std::mem::take(&mut m.structured_data);
    // where syslog_loose's MSG starts and ends: a slice of `input`
    let Some(msg_start) = offset_in(input, m.msg) else {
        return;
    };
    let msg_end = msg_start + m.msg.len();
    let sd_start = match structured.first() {
        // the first element's `[`, right before its SD-ID
        Some(el) => offset_in(input, el.id).and_then(|i| i.checked_sub(1)),
        // a `-` read as NILVALUE SD, after the TAG
        None => header_end_3164(m, input).map(|h| {
            let b = input.as_bytes();
            let mut i = skip_blanks(b, h);
            if b.get(i) == Some(&b':') {
                i = skip_blanks(b, i + 1);
            }
            i
        }),
    };
    if let Some(s) = sd_start {
        let head = input.as_bytes().get(s);
        if s < msg_start && matches!(head, Some(b'[' | b'-')) {
            m.msg = &input[s..msg_end];
        }
    }
}

/// Where the TAG (or, without one, the HOSTNAME) of an RFC 3164 line that
/// syslog_loose read ends in `input`; `None` when it read neither (a `-`
/// for either).
fn header_end_3164(m: &syslog_loose::Message<&str>, input: &str) -> Option<usize> {
    if let Some(app) = m.appname {
        let end = offset_in(input, app)? + app.len();
        if m.procid.is_none() {
            return Some(end);
        }
        // `app[pid]`: the TAG ends at the first `]` after the APP-NAME
        return Some(end + input[end..].find(']')? + 1);
    }
    let host = m.hostname?;
    Some(offset_in(input, host)? + host.len())
}

/// The offset of `part`, a slice of `text`, in `text`.
fn offset_in(text: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (start + part.len() <= text.len() && text.is_char_boundary(start)).then_some(start)
}

/// Past the spaces and tabs at `b[i..]` (nom's `space0`).
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

fn from_loose(m: syslog_loose::Message<&str>) -> SyslogMessage {
    SyslogMessage {
        parsed: true,
        facility: m.facility.map(|f| f as u8),
        severity: m.severity.map(|s| s as u8),
        version: match m.protocol {
            syslog_loose::Protocol::RFC5424(v) => Some(v),
            syslog_loose::Protocol::RFC3164 => None,
        },
        timestamp_ms: m.timestamp.map(|t| t.timestamp_millis()),
        hostname: m.hostname.map(str::to_string),
        app_name: m.appname.map(str::to_string),
        procid: m.procid.map(|p| match p {
            ProcId::PID(n) => n.to_string(),
            ProcId::Name(s) => s.to_string(),
        }),
        msgid: m.msgid.map(str::to_string),
        structured_data: structured_data(&m.structured_data),
        msg: strip_bom(m.msg).to_string(),
    }
}

fn structured_data(elements: &[syslog_loose::StructuredElement<&str>]) -> Map<String, Value> {
    let mut out = Map::new();
    for el in elements {
        let entry = out
            .entry(el.id.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(params) = entry {
            // not `el.params()`, which also turns `\n` into a newline
            for (name, raw) in &el.params {
                let value = super::rfc5424::unescape_param(raw);
                super::rfc5424::add_param(params, name, value);
            }
        }
    }
    out
}

/// A BSD line without a hostname: what syslog_loose read as the hostname
/// is the TAG, `app` or `app[pid]`.
fn tag_from_hostname(out: &mut SyslogMessage) {
    let Some(tag) = out.hostname.take() else {
        return;
    };
    let tag = tag.trim_end_matches(':');
    match tag.split_once('[') {
        Some((app, pid)) => {
            out.app_name = Some(app.to_string());
            let pid = pid.trim_end_matches(']');
            out.procid = Some(match pid.parse::<i32>() {
                Ok(n) => n.to_string(),
                Err(_) => pid.to_string(),
            });
        }
        None => out.app_name = Some(tag.to_string()),
    }
}

/// For an RFC 5424 header with a NILVALUE timestamp (`<PRI>1 - HOST …`),
/// the same text with the receive time in its place.
fn fill_nil_timestamp(text: &str, received: DateTime<Utc>) -> Option<String> {
    let rest = text.strip_prefix('<')?;
    let pri_end = rest.find('>')?;
    let after_pri = &rest[pri_end + 1..];
    let version_len = after_pri.bytes().take_while(u8::is_ascii_digit).count();
    if version_len == 0 || !after_pri[version_len..].starts_with(" - ") {
        return None;
    }
    let split = 1 + pri_end + 1 + version_len + 1;
    let stamp = received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Some(format!("{}{stamp}{}", &text[..split], &text[split + 1..]))
}

/// Removes a leading UTF-8 byte order mark (RFC 5424 MSG-UTF8), and the
/// white space after it: a MSG is read without the white space around it
/// (as `syslog_loose` trims it), with a BOM or without.
pub fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').map_or(s, str::trim_start)
}

/// The year that puts (month, day, h, m, s) nearest to `received`.
pub(crate) fn nearest_year(date: IncompleteDate, received: DateTime<FixedOffset>) -> i32 {
    let (month, day, hour, min, sec) = date;
    let now = received.naive_local();
    let y = now.year();
    [y, y - 1, y + 1]
        .into_iter()
        .filter_map(|year| {
            let t = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, min, sec)?;
            Some((year, (t - now).num_seconds().abs()))
        })
        .min_by_key(|(_, dist)| *dist)
        .map(|(year, _)| year)
        .unwrap_or(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][meta x=\"a\\\"b\"] \xEF\xBB\xBFAn application event";
        let m = parse_syslog(line, 0, Tz::UTC);
        assert!(m.parsed);
        assert_eq!(m.facility, Some(20));
        assert_eq!(m.severity, Some(5));
        assert_eq!(m.version, Some(1));
        assert_eq!(m.timestamp_ms, Some(ms("2003-10-11T22:14:15.003Z")));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app_name.as_deref(), Some("evntslog"));
        assert_eq!(m.procid.as_deref(), Some("1234"));
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        assert_eq!(m.structured_data["exampleSDID@32473"]["iut"], "3");
        assert_eq!(m.structured_data["meta"]["x"], "a\"b");
        assert_eq!(m.msg, "An application event");
    }

    /// Headers syslog_loose misread (see `header_repair`): each field where
    /// it belongs, the fraction kept, the zone-less RFC 5424 time read in
    /// the default zone.
    #[test]
    fn header_variants_are_read_field_by_field() {
        let recv = ms("2026-12-06T00:00:00Z");
        let read = |l: &str| parse_syslog(l.as_bytes(), recv, Tz::UTC);
        let fields = |m: &SyslogMessage| {
            (
                m.timestamp_ms,
                m.hostname.clone(),
                m.app_name.clone(),
                m.procid.clone(),
                m.msg.clone(),
            )
        };
        let want = |t: &str, h: Option<&str>, a: &str, p: Option<&str>, msg: &str| {
            (
                Some(ms(t)),
                h.map(str::to_string),
                Some(a.to_string()),
                p.map(str::to_string),
                msg.to_string(),
            )
        };
        for (line, expected) in [
            (
                "<13>Dec  5 10:00:00.123 host tag: fractional",
                want(
                    "2026-12-05T10:00:00.123Z",
                    Some("host"),
                    "tag",
                    None,
                    "fractional",
                ),
            ),
            (
                "<13>Dec  5 10:00:00 sshd[0042]: no hostname",
                want(
                    "2026-12-05T10:00:00Z",
                    None,
                    "sshd",
                    Some("42"),
                    "no hostname",
                ),
            ),
            (
                "<13>Dec  5 10:00:00 host\ttag: tab\tin msg",
                want(
                    "2026-12-05T10:00:00Z",
                    Some("host"),
                    "tag",
                    None,
                    "tab\tin msg",
                ),
            ),
            (
                "<13>2025 Dec  5 10:00:00 host tag: year first",
                want(
                    "2025-12-05T10:00:00Z",
                    Some("host"),
                    "tag",
                    None,
                    "year first",
                ),
            ),
        ] {
            let m = read(line);
            assert!(m.parsed, "{line}");
            assert_eq!(fields(&m), expected, "{line}");
        }
        let m = parse_syslog(
            b"<13>1 2026-07-05T10:00:00.250 h a p m - x",
            recv,
            "Europe/Paris".parse().unwrap(),
        );
        assert_eq!(m.timestamp_ms, Some(ms("2026-07-05T08:00:00.250Z")));
        assert_eq!((m.hostname.as_deref(), m.msg.as_str()), (Some("h"), "x"));
    }

    #[test]
    fn rfc3164_year_is_nearest_to_receive_time() {
        // Received on 2 Jan 2026: "Dec 31" belongs to 2025.
        let recv = ms("2026-01-02T00:00:00Z");
        let m = parse_syslog(
            b"<34>Dec 31 23:59:00 host su[99]: 'su root' failed",
            recv,
            Tz::UTC,
        );
        assert!(m.parsed);
        assert_eq!(m.facility, Some(4));
        assert_eq!(m.severity, Some(2));
        assert_eq!(m.version, None);
        assert_eq!(m.timestamp_ms, Some(ms("2025-12-31T23:59:00Z")));
        assert_eq!(m.hostname.as_deref(), Some("host"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.procid.as_deref(), Some("99"));
        assert_eq!(m.msg, "'su root' failed");
        // Received on 31 Dec 2025: "Jan  1" belongs to 2026.
        let recv = ms("2025-12-31T23:00:00Z");
        let m = parse_syslog(b"<13>Jan  1 00:30:00 host app: x", recv, Tz::UTC);
        assert_eq!(m.timestamp_ms, Some(ms("2026-01-01T00:30:00Z")));
    }

    #[test]
    fn rfc3164_uses_default_time_zone() {
        let recv = ms("2026-07-01T12:00:00Z");
        let m = parse_syslog(b"<13>Jul  1 14:00:00 host app: x", recv, Tz::Europe__Berlin);
        assert_eq!(m.timestamp_ms, Some(ms("2026-07-01T12:00:00Z")));
    }

    #[test]
    fn rfc5424_nil_timestamp_and_fields() {
        let m = parse_syslog(b"<13>1 - - - - - - just text", 0, Tz::UTC);
        assert!(m.parsed);
        assert_eq!(m.timestamp_ms, None);
        assert_eq!(m.version, Some(1));
        assert_eq!(m.hostname, None);
        assert_eq!(m.msg, "just text");
        let m = parse_syslog(b"<13>1 - h app - - - kept", 0, Tz::UTC);
        assert_eq!(m.hostname.as_deref(), Some("h"));
        assert_eq!(m.msg, "kept");
    }

    /// An SD element syslog_loose skipped (an unquoted value, a quote never
    /// closed) left no trace but the MSG after it: the line is kept whole,
    /// as a parse error. SD it reads, and `-`, are untouched.
    #[test]
    fn a_malformed_sd_element_keeps_the_line_as_a_parse_error() {
        for line in [
            "<14>1 2026-12-07T06:00:00Z h a 1 m [a@1 x=v] msg",
            "<14>1 2026-12-07T06:00:00Z h a 1 m [a@1 x=\"unterminated] msg",
            "<14>1 - h a 1 m [a@1 x=v] msg",
            // after an element syslog_loose read: the second was dropped
            "<13>1 2026-12-07T10:00:00Z h a p m [a@1 x=\"1\"][b@1 y=v] m",
            "<13>1 2026-12-07T10:00:00Z h a p m [a@1 x=\"1\"][b@1 y=\"v] m",
            // names that are no SD-NAMEs (RFC 5424: no space, `=`, `"` or `]`)
            "<13>1 2026-12-07T10:00:00Z h a p m [ex@1 a b=\"v\"] m",
            "<13>1 2026-12-07T10:00:00Z h a p m [ex@1 k = \"v\"] m",
            "<13>1 2026-12-07T10:00:00Z h a p m [ex@1 k\"x=\"v\"] m",
            "<13>1 2026-12-07T10:00:00Z h a p m [ex 1 k=\"v\"] m",
        ] {
            let m = parse_syslog(line.as_bytes(), 0, Tz::UTC);
            assert!(!m.parsed, "{line}");
            assert_eq!(m.msg, line);
        }
        for (line, msg) in [
            (
                "<14>1 2026-12-07T06:00:00Z h a 1 m [a@1 x=\"v\"] msg",
                "msg",
            ),
            (
                "<14>1 2026-12-07T06:00:00Z h a 1 m - [not sd] msg",
                "[not sd] msg",
            ),
        ] {
            let m = parse_syslog(line.as_bytes(), 0, Tz::UTC);
            assert!(m.parsed, "{line}");
            assert_eq!(m.msg, msg);
        }
    }

    /// An RFC 3164 time with a year, before the day or after it, is read in
    /// the default zone as one without a year is (syslog_loose took it for
    /// UTC).
    #[test]
    fn a_bsd_time_with_a_year_is_read_in_the_default_zone() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let received = ms("2026-12-07T12:00:00Z");
        for line in [
            "<13>Dec  7 01:00:00 h y: a",
            "<13>Dec  7 2026 01:00:00 h y: b",
            "<13>2026 Dec  7 01:00:00 h y: c",
            "<13>Dec  7 2026 01:00:00.250 h y: d",
        ] {
            let m = parse_syslog(line.as_bytes(), received, tz);
            let want = ms("2026-12-07T06:00:00Z") + if line.ends_with('d') { 250 } else { 0 };
            assert_eq!(m.timestamp_ms, Some(want), "{line}");
        }
        let m = parse_syslog(b"<13>Dec  7 2026 01:00:00 h y: utc", received, Tz::UTC);
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-07T01:00:00Z")));
    }

    /// RFC 3164 has no STRUCTURED-DATA: on syslog_loose's path too (the
    /// header shapes the fast path leaves to it), a MSG that starts with
    /// what reads as SD elements, or with `-`, is kept as written.
    #[test]
    fn a_3164_msg_is_never_structured_data() {
        let recv = ms("2026-12-07T12:00:00Z");
        for (line, app, msg) in [
            // no hostname (the TAG is repaired out of it)
            (
                "<13>Dec  7 10:12:14 kernel: [12345.678] R2 kernel uptime",
                Some("kernel"),
                "[12345.678] R2 kernel uptime",
            ),
            (
                "<11>Dec  7 10:12:14 myapp[77]: [INFO] R3 service started",
                Some("myapp"),
                "[INFO] R3 service started",
            ),
            // fractional seconds, a year
            (
                "<13>Dec  7 10:12:14.250 h app: [x@1 a=\"b\"] R4",
                Some("app"),
                "[x@1 a=\"b\"] R4",
            ),
            (
                "<13>Dec  7 2026 10:12:14 h app[1]: [error][client 1.2.3.4] x",
                Some("app"),
                "[error][client 1.2.3.4] x",
            ),
            // no hostname but a TAG, a tab, a `-` host, non-ASCII
            ("<13>Dec  7 10:12:14 h: [INFO] x", Some("h"), "[INFO] x"),
            (
                "<13>Dec  7 10:12:14 h app:\t[INFO]\tx",
                Some("app"),
                "[INFO]\tx",
            ),
            (
                "<13>Dec  7 10:12:14 - app: [INFO] x",
                Some("app"),
                "[INFO] x",
            ),
            (
                "<13>Dec  7 10:12:14 hé app: [INFO] x",
                Some("app"),
                "[INFO] x",
            ),
            // `-`, which syslog_loose reads as NILVALUE SD
            (
                "<13>Dec  7 10:12:14 h app: - a dash",
                Some("app"),
                "- a dash",
            ),
            ("<13>Dec  7 10:12:14 h app[1]: -x", Some("app"), "-x"),
            ("<13>Dec  7 10:12:14 h: - x", Some("h"), "- x"),
            ("<13>Dec  7 10:12:14.5 h app: -", Some("app"), "-"),
        ] {
            for m in [
                parse_syslog(line.as_bytes(), recv, Tz::UTC),
                parse_syslog_loose(line.as_bytes(), recv, Tz::UTC),
            ] {
                assert!(m.parsed, "{line}");
                assert_eq!(m.version, None, "{line}");
                assert_eq!(m.app_name.as_deref(), app, "{line}");
                assert!(m.structured_data.is_empty(), "{line}");
                assert_eq!(m.msg, msg, "{line}");
            }
        }
        // RFC 5424 SD is still SD
        let m = parse_syslog(b"<13>1 - h a - - [INFO] x", recv, Tz::UTC);
        assert_eq!((m.structured_data.len(), m.msg.as_str()), (1, "x"));
    }

    /// RFC 5424 §6.3.3: in an SD param value only `\"`, `\\` and `\]`
    /// are escapes; a backslash before any other character (`\n` of
    /// `C:\new` included) is kept. On both paths.
    #[test]
    fn only_quote_backslash_and_bracket_are_sd_escapes() {
        let line = r#"<13>1 2026-12-07T10:00:00Z h a - - [x@1 path="C:\new\temp" n="a\nb" q="\"\\\]" o="\t\r\b\f\x\u\z\/\N\0\é"] R1"#;
        // the same line with a hostname the fast path leaves to syslog_loose
        let slow_only = line.replace(" h a ", " h\u{e9} a ");
        assert!(crate::parse::rfc5424::parse(&slow_only).is_none());
        for m in [
            parse_syslog(line.as_bytes(), 0, Tz::UTC),
            parse_syslog_loose(line.as_bytes(), 0, Tz::UTC),
            parse_syslog(slow_only.as_bytes(), 0, Tz::UTC),
        ] {
            assert!(m.parsed);
            let p = &m.structured_data["x@1"];
            assert_eq!(p["path"], r"C:\new\temp");
            assert_eq!(p["n"], r"a\nb");
            assert_eq!(p["q"], r#""\]"#);
            assert_eq!(p["o"], r"\t\r\b\f\x\u\z\/\N\0\é");
            assert_eq!(m.msg, "R1");
        }
        // every ASCII character after a backslash but the three escapes
        for c in (0x20u8..0x7f).map(char::from) {
            let want = match c {
                '"' | '\\' | ']' => c.to_string(),
                _ => format!("\\{c}"),
            };
            let line = format!("<13>1 - h a - - [x v=\"\\{c}\"] m");
            for m in [
                parse_syslog(line.as_bytes(), 0, Tz::UTC),
                parse_syslog_loose(line.as_bytes(), 0, Tz::UTC),
            ] {
                assert_eq!(m.structured_data["x"]["v"], want.as_str(), "{line}");
            }
        }
    }

    #[test]
    fn garbage_is_kept_unparsed() {
        let m = parse_syslog(b"hello \xff world", 0, Tz::UTC);
        assert!(!m.parsed);
        assert_eq!(m.msg, "hello \u{fffd} world");
        assert_eq!(m.facility, None);
    }
}
