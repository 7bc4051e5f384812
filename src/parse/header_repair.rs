//! Headers senders write that `syslog_loose` misreads, put in a shape it
//! reads, before the general path hands the line to it.
//!
//! - RFC 3164 with fractional seconds (`Dec  5 10:00:00.123`): the fraction
//!   is taken out and added back to the parsed time (syslog_loose would
//!   lose the hostname and tag into the MSG).
//! - RFC 3164 with the year first (`2026 Dec  5 10:00:00`), moved after
//!   the day, where syslog_loose reads it (otherwise a parse error). With a
//!   year, before the day or after it, syslog_loose reads the time as UTC:
//!   it is read in the default zone, as a time without one is.
//! - RFC 3164 without a hostname (`Dec  5 10:00:00 sshd[12]: msg`): the
//!   token after the time ending in `:` is the TAG (syslog_loose would take
//!   it for the hostname and lose the APP-NAME).
//! - Tabs between the header's fields, as spaces.
//! - RFC 5424 with a timestamp without a zone (`2026-12-05T10:00:00`),
//!   which the RFC forbids but senders write: read in the default zone, as
//!   an RFC 3164 time is (otherwise a parse error).

use chrono::{NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// What a repair changed, to finish after syslog_loose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Repaired {
    /// The line to give syslog_loose.
    pub text: String,
    /// Milliseconds to add to the time it reads (a fraction taken out).
    pub add_ms: i64,
    /// No hostname: the TAG syslog_loose will read as the hostname.
    pub tag_as_host: bool,
    /// An RFC 3164 time with a year: syslog_loose reads it as UTC, not in
    /// the default zone as a time without one; the time it reads is the
    /// zone's wall clock.
    pub wall_clock: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The repaired line, or `None` when it needs none (or is none of these).
pub(crate) fn repair(text: &str, tz: Tz) -> Option<Repaired> {
    let pri_end = text.strip_prefix('<')?.find('>')? + 2;
    let (head, rest) = text.split_at(pri_end);
    if let Some(r) = rfc5424_without_zone(head, rest, tz) {
        return Some(r);
    }
    rfc3164(head, rest)
}

/// `1 YYYY-MM-DDThh:mm:ss[.frac] ` with no zone: the zone's offset inserted.
fn rfc5424_without_zone(head: &str, rest: &str, tz: Tz) -> Option<Repaired> {
    let after_version = rest.strip_prefix("1 ")?;
    let stamp_len = after_version.find(' ')?;
    let stamp = &after_version[..stamp_len];
    let b = stamp.as_bytes();
    if b.len() < 19
        || b[10] != b'T'
        || stamp.ends_with(['Z', 'z'])
        || b[19..].iter().any(|c| matches!(c, b'+' | b'-'))
    {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let offset = tz.offset_from_local_datetime(&naive).earliest()?.fix();
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let zone = format!(
        "{sign}{:02}:{:02}",
        secs.abs() / 3600,
        secs.abs() % 3600 / 60
    );
    Some(Repaired {
        text: format!("{head}1 {stamp}{zone}{}", &after_version[stamp_len..]),
        ..Default::default()
    })
}

/// The BSD repairs; `None` when the line is not BSD or needs none.
fn rfc3164(head: &str, rest: &str) -> Option<Repaired> {
    let mut r = Repaired::default();
    let mut changed = false;
    // an optional year first, then `Mmm dd hh:mm:ss`
    let (year, rest) = match rest.split_once(' ') {
        Some((y, after)) if y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()) => {
            changed = true;
            (Some(y), after)
        }
        _ => (None, rest),
    };
    let month = rest.get(..3)?;
    if !MONTHS.contains(&month.to_ascii_lowercase().as_str()) || !rest[3..].starts_with(' ') {
        return None;
    }
    let after_month = rest[3..].trim_start_matches(' ');
    let (day, after_day) = after_month.split_once(' ')?;
    if day.is_empty() || day.len() > 2 || !day.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let after_day = after_day.trim_start_matches(' ');
    // a year after the day is syslog_loose's own form: keep it
    let (year_after, after_day) = match after_day.split_once(' ') {
        Some((y, after))
            if year.is_none() && y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()) =>
        {
            (Some(y), after)
        }
        _ => (None, after_day),
    };
    let time = after_day.get(..8)?;
    let t = time.as_bytes();
    if !(t[2] == b':' && t[5] == b':' && time.bytes().filter(u8::is_ascii_digit).count() == 6) {
        return None;
    }
    let mut after_time = &after_day[8..];
    if let Some(frac) = after_time.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let ms: String = frac[..n].chars().chain("00".chars()).take(3).collect();
        r.add_ms = ms.parse().ok()?;
        after_time = &frac[n..];
        changed = true;
    }
    let colon = if after_time.starts_with(':') { ":" } else { "" };
    let after_time = &after_time[colon.len()..];
    // the header's fields: tabs as spaces, up to the TAG's colon
    let body = after_time.trim_start_matches([' ', '\t']);
    let lead = &after_time[..after_time.len() - body.len()];
    if lead.is_empty() {
        return None;
    }
    let (fields, msg) = header_fields(body);
    let fields_spaced = fields.replace('\t', " ");
    changed |= fields_spaced != fields || lead.contains('\t');
    // no hostname: the first field is the TAG (`sshd:`, `sshd[12]:`)
    if !fields_spaced.contains(' ') && fields_spaced.ends_with(':') && is_tag(&fields_spaced) {
        r.tag_as_host = true;
        changed = true;
    }
    if year.or(year_after).is_some() {
        r.wall_clock = true;
        changed = true;
    }
    if !changed {
        return None;
    }
    let year = year
        .or(year_after)
        .map(|y| format!(" {y}"))
        .unwrap_or_default();
    r.text = format!("{head}{month} {day}{year} {time}{colon} {fields_spaced}{msg}");
    Some(r)
}

/// Splits what follows the time into the header's fields (HOSTNAME and
/// TAG, up to and with the TAG's `:`) and the rest.
fn header_fields(body: &str) -> (&str, &str) {
    let mut fields = 0;
    let mut in_gap = false;
    for (i, c) in body.char_indices() {
        match c {
            ':' => return body.split_at(i + 1),
            ' ' | '\t' if !in_gap => {
                fields += 1;
                in_gap = true;
                if fields == 2 {
                    return body.split_at(i);
                }
            }
            ' ' | '\t' => {}
            _ => in_gap = false,
        }
    }
    (body, "")
}

/// A TAG: `app` or `app[pid]`, followed by `:`.
fn is_tag(s: &str) -> bool {
    let Some(tag) = s.strip_suffix(':') else {
        return false;
    };
    let app = match tag.split_once('[') {
        Some((app, pid)) => match pid.strip_suffix(']') {
            Some(pid) if !pid.is_empty() && !pid.contains(['[', ']']) => app,
            _ => return false,
        },
        None => tag,
    };
    !app.is_empty()
        && app
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Option<Repaired> {
        repair(text, Tz::UTC)
    }

    #[test]
    fn lines_syslog_loose_reads_are_left_alone() {
        for line in [
            "<13>Dec  5 10:00:00 host tag[12]: normal",
            "<13>1 2026-12-05T10:00:00Z h a p m - x",
            "<13>1 2026-12-05T10:00:00.123+01:00 h a p m - x",
            "<13>1 - h a p m - x",
            "not syslog",
            "<13>plain text",
            // a multi-byte character across byte 19 of the stamp
            "<13>1 2026-12-05T10:00:0\u{e9} h a p m - x",
        ] {
            assert_eq!(fixed(line), None, "{line}");
        }
    }

    #[test]
    fn bsd_variants_are_put_in_the_shape_syslog_loose_reads() {
        let r = fixed("<13>Dec  5 10:00:00.123456 host tag: fractional").unwrap();
        assert_eq!(r.text, "<13>Dec 5 10:00:00 host tag: fractional");
        assert_eq!(r.add_ms, 123);
        let r = fixed("<13>Dec  5 10:00:00.5 host tag: half").unwrap();
        assert_eq!(r.add_ms, 500);
        let r = fixed("<13>2026 Dec  5 10:00:00 host tag: year first").unwrap();
        assert_eq!(r.text, "<13>Dec 5 2026 10:00:00 host tag: year first");
        assert!(r.wall_clock);
        // syslog_loose's own form, but its time is read as UTC
        let r = fixed("<13>Dec  5 2026 10:00:00 host tag: year after").unwrap();
        assert_eq!(r.text, "<13>Dec 5 2026 10:00:00 host tag: year after");
        assert!(r.wall_clock);
        let r = fixed("<13>Dec  5 10:00:00 host\ttag:\tmsg\twith tabs").unwrap();
        assert_eq!(r.text, "<13>Dec 5 10:00:00 host tag:\tmsg\twith tabs");
        let r = fixed("<13>Dec  5 10:00:00 sshd[12]: no hostname").unwrap();
        assert!(r.tag_as_host);
        assert_eq!(r.text, "<13>Dec 5 10:00:00 sshd[12]: no hostname");
        let r = fixed("<13>Dec  5 10:00:00 tag: no hostname").unwrap();
        assert!(r.tag_as_host);
        // a hostname and a message with colons: not a TAG alone
        assert_eq!(fixed("<13>Dec  5 10:00:00 host msg: with: colons"), None);
    }

    proptest::proptest! {
        /// Never panics, whatever the line (a slice inside a multi-byte
        /// character once did).
        #[test]
        fn any_line_is_safe(
            head in "<[0-9]{1,3}>",
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("1 ".to_string()),
                    proptest::strategy::Just("2026-12-05T10:00:00".to_string()),
                    proptest::strategy::Just("Dec  5 ".to_string()),
                    proptest::strategy::Just("10:00:00".to_string()),
                    proptest::strategy::Just(".123".to_string()),
                    proptest::strategy::Just("2026 ".to_string()),
                    proptest::strategy::Just("host\ttag: ".to_string()),
                    proptest::strategy::Just("sshd[1]:".to_string()),
                    "\\PC{0,4}",
                    "[ \t:.\\[\\]0-9é€]{0,3}",
                ],
                0..8,
            ),
        ) {
            let line = format!("{head}{}", parts.concat());
            let _ = repair(&line, Tz::UTC);
            let _ = repair(&line, "Europe/Paris".parse().unwrap());
        }
    }

    #[test]
    fn rfc5424_without_a_zone_gets_the_default_zone() {
        let r = repair("<13>1 2026-12-05T10:00:00 h a p m - x", Tz::UTC).unwrap();
        assert_eq!(r.text, "<13>1 2026-12-05T10:00:00+00:00 h a p m - x");
        let r = repair(
            "<13>1 2026-07-05T10:00:00.250 h a p m - x",
            "Europe/Paris".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(r.text, "<13>1 2026-07-05T10:00:00.250+02:00 h a p m - x");
    }
}
