//! Cisco's syslog headers (IOS, IOS-XE, NX-OS, ASA), which are neither
//! RFC 3164 nor RFC 5424.
//!
//! Cisco devices write a message counter, an optional origin host, and a
//! timestamp that ends in a colon (with a marker before it and a zone
//! after it), then the message's mnemonic:
//!
//! ```text
//! <189>52: *Mar  1 00:07:01.315 UTC: %SYS-5-CONFIG_I: Configured from console
//! <189>36: router1: Mar  1 18:46:11: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up
//! <189>: 2026 Dec  8 10:00:00 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up
//! <166>Dec 08 2026 10:00:00 asa1 : %ASA-6-302013: Built outbound TCP connection
//! <166>%ASA-6-302013: Built outbound TCP connection
//! ```
//!
//! `syslog_loose` refuses most of these (the whole line was kept as a parse
//! error, with the receive time) and misreads the others (`UTC` or `CET`
//! taken as the APP-NAME, `%ASA-6-302013` as the HOSTNAME). [`parse`]
//! reads them when the header is followed by a `%FACILITY-SEVERITY-MNEMONIC:`
//! (a `-` and a digit 0–7 between dashes in a `%` word ending in `:`), the
//! anchor that tells a Cisco line from any other; everything else is left
//! to the general path, as before.
//!
//! What each part becomes:
//! - the counter (`52:`): `structured_data.meta.sequenceId`, the place
//!   RFC 5424 §7.3.1 gives an originator's message counter; NX-OS's empty
//!   one (`: `) is skipped;
//! - the origin host (`router1:`, ASA's `asa1 :`): `hostname`;
//! - the timestamp: `Mmm dd hh:mm:ss`, with an optional year after the day
//!   (`Dec 08 2026 10:00:00`) or before the month (NX-OS), optional
//!   fractional seconds (milliseconds kept), the `*` (clock not set) or `.`
//!   (clock no longer in sync) marker dropped. A zone of `UTC`, `GMT`, `UT`
//!   or `Z` is UTC; any other abbreviation (`CET`, `EST`: ambiguous across
//!   the world) is read in the default zone, as a time without one is; a
//!   time without a year gets the year nearest to the receive time, as in
//!   RFC 3164. No timestamp: the receive time;
//! - the message: from the `%` on, mnemonic included, as the device wrote
//!   it (SIEMs' Cisco parsers read the mnemonic from the message); no
//!   APP-NAME.

use super::rfc5424::digits;
use super::syslog::{nearest_year, offset_at_local, received_local, SyslogMessage};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// The message of a Cisco line (already stripped of trailing CR/LF/NUL),
/// received at `received_ms` with default zone `tz`; `None` when `text` is
/// not one, or its date does not exist.
pub(crate) fn parse(text: &str, received_ms: i64, tz: Tz) -> Option<SyslogMessage> {
    let text = text.trim_end();
    let b = text.as_bytes();
    let (pri, mut i) = super::rfc5424::pri(b)?;
    // the counter: digits and `: `, or NX-OS's bare `: `
    let mut sequence = None;
    let counter_end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[counter_end..].starts_with(b": ") {
        if counter_end > i {
            sequence = Some(&text[i..counter_end]);
        }
        i = counter_end + 2;
    }
    // the origin host: a name and `: ` before the time or the mnemonic
    let mut hostname = None;
    let host_end = i + b[i..].iter().take_while(|&&c| is_host_byte(c)).count();
    if host_end > i && b[host_end..].starts_with(b": ") && month(b, i).is_none() {
        hostname = Some(&text[i..host_end]);
        i = host_end + 2;
    }
    let mut timestamp_ms = None;
    if b.get(i) != Some(&b'%') {
        if matches!(b.get(i), Some(b'*' | b'.')) {
            i += 1;
        }
        let (time, end) = timestamp(b, i)?;
        i = end;
        // the zone, then `: `; or (ASA) the host, then ` : `
        let mut zone = tz;
        if b.get(i) == Some(&b' ') {
            let word_end = i + 1 + b[i + 1..].iter().take_while(|&&c| is_host_byte(c)).count();
            let word = &text[i + 1..word_end];
            if b[word_end..].starts_with(b": ") && word.bytes().all(|c| c.is_ascii_alphabetic()) {
                if ["UTC", "GMT", "UT", "Z"]
                    .iter()
                    .any(|z| word.eq_ignore_ascii_case(z))
                {
                    zone = Tz::UTC;
                }
            } else if b[word_end..].starts_with(b" : ") && hostname.is_none() && !word.is_empty() {
                hostname = Some(word);
            } else {
                return None;
            }
            i = word_end;
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
        }
        if !b[i..].starts_with(b": ") {
            return None;
        }
        i += 2;
        timestamp_ms = Some(time.epoch_ms(received_ms, zone)?);
    }
    let msg = &text[i..];
    if !is_mnemonic(msg) {
        return None;
    }
    let mut structured_data = Map::new();
    if let Some(n) = sequence {
        let mut meta = Map::new();
        meta.insert("sequenceId".into(), Value::String(n.into()));
        structured_data.insert("meta".into(), Value::Object(meta));
    }
    Some(SyslogMessage {
        parsed: true,
        facility: Some((pri >> 3) as u8),
        severity: Some((pri & 7) as u8),
        version: None,
        timestamp_ms,
        hostname: hostname.map(str::to_string),
        app_name: None,
        procid: None,
        msgid: None,
        structured_data,
        msg: msg.to_string(),
    })
}

/// A host name's bytes: letters, digits, `.`, `-`, `_`.
fn is_host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')
}

/// `%FACILITY-SEVERITY-MNEMONIC:` at the start of `msg`: a `%` word (no
/// spaces) ending in `:`, with a severity digit 0–7 between two dashes.
fn is_mnemonic(msg: &str) -> bool {
    let Some(word) = msg.strip_prefix('%') else {
        return false;
    };
    let Some(end) = word.find(':') else {
        return false;
    };
    let word = &word[..end];
    let mut parts = word.split('-');
    let fine = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    parts.clone().count() >= 3
        && parts.clone().all(fine)
        && parts.next().is_some()
        && parts.any(|p| matches!(p.as_bytes(), [b'0'..=b'7']))
}

/// A Cisco timestamp as written: the year when it has one, and the
/// wall-clock time.
struct Time {
    year: Option<i32>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

impl Time {
    /// Milliseconds since the epoch, the wall-clock time read in `zone`; a
    /// year-less time gets the year nearest to the receive time there.
    /// `None` for a date or time that does not exist.
    fn epoch_ms(&self, received_ms: i64, zone: Tz) -> Option<i64> {
        let received = received_local(received_ms, zone);
        let date = (self.month, self.day, self.hour, self.minute, self.second);
        let year = self.year.unwrap_or_else(|| nearest_year(date, received));
        let local = NaiveDate::from_ymd_opt(year, self.month, self.day)?
            .and_hms_opt(self.hour, self.minute, self.second)?
            .and_utc()
            .timestamp();
        let offset = offset_at_local(zone, local, received.offset().local_minus_utc());
        Some((local - i64::from(offset)) * 1000 + i64::from(self.millis))
    }
}

/// The three-letter month at `b[i..]`, in any case (as RFC 3164's reader
/// takes it), followed by a space.
fn month(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i + 3) != Some(&b' ') {
        return None;
    }
    super::rfc3164::month(&b[i..i + 3])
}

/// `[YYYY ]Mmm dd [YYYY ]hh:mm:ss[.fraction]` at `b[i..]` (the day padded
/// with a space or a zero, or one digit), and where it ends.
fn timestamp(b: &[u8], mut i: usize) -> Option<(Time, usize)> {
    let mut year = None;
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        year = Some(digits(b, i, 4)? as i32);
        i += 5;
    }
    let month = month(b, i)?;
    i += 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let (day, mut i) = match b.get(i + 1) {
        Some(b' ') => (digits(b, i, 1)?, i + 2),
        _ => (digits(b, i, 2)?, i + 3),
    };
    if b.get(i - 1) != Some(&b' ') {
        return None;
    }
    if year.is_none() && b.get(i + 4) == Some(&b' ') {
        year = Some(digits(b, i, 4)? as i32);
        i += 5;
    }
    let hour = digits(b, i, 2)?;
    let colon = |j: usize| (b.get(j) == Some(&b':')).then_some(());
    colon(i + 2)?;
    let minute = digits(b, i + 3, 2)?;
    colon(i + 5)?;
    let second = digits(b, i + 6, 2)?;
    i += 8;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        for k in 0..3 {
            let d = if k < n {
                u32::from(b[i + 1 + k] - b'0')
            } else {
                0
            };
            millis = millis * 10 + d;
        }
        i += 1 + n;
    }
    let time = Time {
        year,
        month,
        day,
        hour,
        minute,
        second,
        millis,
    };
    Some((time, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    /// 2026-12-08T00:36:48Z, the receive time of every line below.
    const RECEIVED: i64 = 1_796_690_208_000;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn read(line: &str) -> SyslogMessage {
        parse(line, RECEIVED, Tz::UTC).unwrap_or_else(|| panic!("not read: {line}"))
    }

    fn sequence(m: &SyslogMessage) -> Option<&str> {
        m.structured_data.get("meta")?.get("sequenceId")?.as_str()
    }

    #[test]
    fn the_received_constant_is_what_it_says() {
        assert_eq!(RECEIVED, ms("2026-12-08T00:36:48Z"));
    }

    #[test]
    fn ios_counter_marker_fraction_and_zone() {
        let m = read("<189>52: *Mar  1 00:07:01.315 UTC: %SYS-5-CONFIG_I: Configured from console");
        assert!(m.parsed);
        assert_eq!((m.facility, m.severity), (Some(23), Some(5)));
        // March is nearer to December 2026 in 2027 than in 2026
        assert_eq!(m.timestamp_ms, Some(ms("2027-03-01T00:07:01.315Z")));
        assert_eq!(sequence(&m), Some("52"));
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, None);
        assert_eq!(m.msg, "%SYS-5-CONFIG_I: Configured from console");
    }

    #[test]
    fn origin_host_and_a_time_without_zone_in_the_default_zone() {
        let line = "<189>36: router1: Dec  7 18:46:11: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up";
        let m = parse(line, RECEIVED, Tz::Europe__Paris).unwrap();
        assert_eq!(m.hostname.as_deref(), Some("router1"));
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-07T18:46:11+01:00")));
        assert_eq!(sequence(&m), Some("36"));
        assert_eq!(
            m.msg,
            "%LINK-3-UPDOWN: Interface Gi0/1, changed state to up"
        );
        // a zone other than UTC is read in the default zone too
        let cet = "<189>Dec  7 18:46:11.5 CET: %LINK-3-UPDOWN: up";
        let m = parse(cet, RECEIVED, Tz::Europe__Paris).unwrap();
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-07T18:46:11.500+01:00")));
        assert_eq!(m.app_name, None);
        // and GMT is UTC whatever the default zone
        let gmt = "<189>Dec  7 18:46:11 GMT: %LINK-3-UPDOWN: up";
        let m = parse(gmt, RECEIVED, Tz::Europe__Paris).unwrap();
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-07T18:46:11Z")));
    }

    #[test]
    fn nx_os_year_first_and_an_empty_counter() {
        let m =
            read("<189>: 2026 Dec  8 10:00:00 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up");
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-08T10:00:00Z")));
        assert_eq!(sequence(&m), None);
        assert!(m.structured_data.is_empty());
        assert_eq!(m.msg, "%ETHPORT-5-IF_UP: Interface Ethernet1/1 is up");
    }

    #[test]
    fn asa_with_and_without_a_timestamp() {
        let m =
            read("<166>Dec 08 2026 10:00:00 asa1 : %ASA-6-302013: Built outbound TCP connection");
        assert_eq!((m.facility, m.severity), (Some(20), Some(6)));
        assert_eq!(m.hostname.as_deref(), Some("asa1"));
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-08T10:00:00Z")));
        assert_eq!(m.msg, "%ASA-6-302013: Built outbound TCP connection");
        let m = read("<166>Dec 08 2026 10:00:00: %ASA-6-302013: Built");
        assert_eq!(m.hostname, None);
        assert_eq!(m.timestamp_ms, Some(ms("2026-12-08T10:00:00Z")));
        // no timestamp at all: the receive time is the caller's
        let m = read("<166>%ASA-6-302013: Built");
        assert_eq!(m.timestamp_ms, None);
        assert_eq!(m.msg, "%ASA-6-302013: Built");
    }

    #[test]
    fn lines_that_are_not_cisco_are_left_alone() {
        for line in [
            // RFC 3164 with a hostname and a `%` TAG: the general path reads it
            "<189>Mar  1 18:46:11 router1 %SYS-5-CONFIG_I: x",
            "<13>Dec  7 18:46:11 host sshd[12]: Accepted",
            "<13>Dec  7 18:46:11 sshd[12]: Accepted",
            "<165>1 2026-12-08T00:00:00Z h a - - - %SYS-5-X: y",
            // no mnemonic after the header
            "<189>52: *Mar  1 00:07:01.315 UTC: Configured",
            "<189>52: *Mar  1 00:07:01.315 UTC: %SYS: Configured",
            "<189>52: *Mar  1 00:07:01.315 UTC: %SYS-9-X: Configured",
            "<189>52: *Mar  1 00:07:01.315 UTC: %SYS-5-CONFIG I: x",
            // a date that does not exist, a bad time
            "<189>52: Feb 30 00:07:01: %SYS-5-CONFIG_I: x",
            "<189>52: Feb 3 25:07:01: %SYS-5-CONFIG_I: x",
            "<189>52: Feb 3 00:07:01.: %SYS-5-CONFIG_I: x",
            // no PRI
            "52: *Mar  1 00:07:01.315 UTC: %SYS-5-CONFIG_I: x",
            // a zone that is not a word, a time with no `:` after it
            "<189>Mar  1 00:07:01 U2C: %SYS-5-CONFIG_I: x",
            "<189>Mar  1 00:07:01 %SYS-5-CONFIG_I: x",
        ] {
            assert!(parse(line, RECEIVED, Tz::UTC).is_none(), "{line}");
        }
    }

    #[test]
    fn the_general_path_reads_cisco_lines_through_this_one() {
        let line = "<189>52: *Mar  1 00:07:01.315 UTC: %SYS-5-CONFIG_I: Configured";
        let m = crate::parse::parse_syslog(line.as_bytes(), RECEIVED, Tz::UTC);
        assert!(m.parsed, "{m:?}");
        assert_eq!(m.timestamp_ms, Some(ms("2027-03-01T00:07:01.315Z")));
        assert_eq!(m.msg, "%SYS-5-CONFIG_I: Configured");
        // the zone is not an APP-NAME any more
        let line = "<189>Mar  1 18:46:11 UTC: %SYS-5-CONFIG_I: Configured";
        let m = crate::parse::parse_syslog(line.as_bytes(), RECEIVED, Tz::UTC);
        assert_eq!(m.app_name, None);
        assert_eq!(m.msg, "%SYS-5-CONFIG_I: Configured");
    }
}
