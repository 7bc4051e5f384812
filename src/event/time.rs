//! Millisecond timestamps and their RFC 3339 form.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, now: what
/// `Utc::now().timestamp_millis()` returns (both read `CLOCK_REALTIME`),
/// without chrono's round trip through a calendar date or std's checked
/// `duration_since` (about 150 instructions a call).
pub fn now_millis() -> i64 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_REALTIME) {
        // tv_nsec is in 0..1e9: the sum is the floor, as chrono's
        Ok(t) if t.tv_sec() >= 0 => t.tv_sec() * 1000 + t.tv_nsec() / 1_000_000,
        // before 1970 (or no clock): chrono's behaviour, whatever it is
        _ => Utc::now().timestamp_millis(),
    }
}

/// First and last millisecond that [`write_rfc3339_millis`] formats itself
/// (years 0000 to 9999); chrono formats the rest.
const MIN_FAST_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_FAST_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// `2026-11-23T14:56:08.123Z`.
pub fn format_rfc3339_millis(ms: i64) -> String {
    let mut buf = [0u8; 24];
    if write_rfc3339_millis(ms, &mut buf) {
        // all 24 bytes are ASCII digits and separators: the check cannot fail
        return String::from_utf8(buf.to_vec()).expect("ASCII timestamp");
    }
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Appends [`format_rfc3339_millis`]`(ms)` to `out`, without allocating
/// for years 0000..=9999.
pub fn push_rfc3339_millis(out: &mut Vec<u8>, ms: i64) {
    thread_local! {
        /// The last millisecond formatted on this thread (receive times and
        /// event times repeat from one event to the next).
        static LAST: std::cell::Cell<(i64, [u8; 24])> = const { std::cell::Cell::new((i64::MIN, [0; 24])) };
    }
    let (last_ms, last) = LAST.get();
    if last_ms == ms {
        out.extend_from_slice(&last);
        return;
    }
    let mut buf = [0u8; 24];
    if write_rfc3339_millis(ms, &mut buf) {
        LAST.set((ms, buf));
        out.extend_from_slice(&buf);
    } else {
        out.extend_from_slice(format_rfc3339_millis(ms).as_bytes());
    }
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0000..=9999 (what chrono's
/// `to_rfc3339_opts(Millis, true)` writes); false outside that range.
fn write_rfc3339_millis(ms: i64, buf: &mut [u8; 24]) -> bool {
    if !(MIN_FAST_MS..=MAX_FAST_MS).contains(&ms) {
        return false;
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) as u32;
    let (y, m, d) = civil_from_days(days);
    let secs = in_day / 1000;
    let milli = in_day % 1000;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let two = |buf: &mut [u8; 24], at: usize, v: u32| {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    };
    two(buf, 0, y / 100);
    two(buf, 2, y % 100);
    buf[4] = b'-';
    two(buf, 5, m);
    buf[7] = b'-';
    two(buf, 8, d);
    buf[10] = b'T';
    two(buf, 11, hh);
    buf[13] = b':';
    two(buf, 14, mm);
    buf[16] = b':';
    two(buf, 17, ss);
    buf[19] = b'.';
    buf[20] = b'0' + (milli / 100) as u8;
    two(buf, 21, milli % 100);
    buf[23] = b'Z';
    true
}

/// (year, month, day) of a day count since 1970-01-01, proleptic
/// Gregorian, for non-negative years (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (u32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y as u32, m, d)
}

/// Parses any RFC 3339 timestamp to milliseconds since the epoch.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_format(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    #[test]
    fn now_millis_is_chronos_now() {
        for _ in 0..1000 {
            let before = Utc::now().timestamp_millis();
            let ours = now_millis();
            let after = Utc::now().timestamp_millis();
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
        }
    }

    #[test]
    fn round_trip() {
        let s = format_rfc3339_millis(1_700_000_000_123);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339_millis(&s), Some(1_700_000_000_123));
        assert_eq!(
            parse_rfc3339_millis("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123)
        );
    }

    #[test]
    fn edges_match_chrono() {
        for ms in [
            0,
            -1,
            1,
            -86_400_000,
            951_782_400_000, // 2000-02-29
            MIN_FAST_MS,
            MIN_FAST_MS - 1,
            MAX_FAST_MS,
            MAX_FAST_MS + 1,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(format_rfc3339_millis(ms), chrono_format(ms), "ms = {ms}");
            let mut out = b"<".to_vec();
            push_rfc3339_millis(&mut out, ms);
            assert_eq!(
                out,
                format!("<{}", chrono_format(ms)).as_bytes(),
                "ms = {ms}"
            );
        }
        assert_eq!(
            format_rfc3339_millis(MIN_FAST_MS),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(MAX_FAST_MS),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn fast_format_matches_chrono_in_range(ms in MIN_FAST_MS..=MAX_FAST_MS) {
            prop_assert_eq!(format_rfc3339_millis(ms), chrono_format(ms));
        }

        #[test]
        fn format_matches_chrono_everywhere(ms in any::<i64>()) {
            prop_assert_eq!(format_rfc3339_millis(ms), chrono_format(ms));
        }

        #[test]
        fn format_matches_chrono_near_now(ms in 0i64..4_102_444_800_000) {
            prop_assert_eq!(format_rfc3339_millis(ms), chrono_format(ms));
        }
    }
}
