//! Millisecond timestamps and their RFC 3339 form.

use chrono::{DateTime, SecondsFormat, Utc};
use std::cell::Cell;

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

/// The last millisecond an event's time may be: 9999-12-31T23:59:59.999Z,
/// the last an RFC 3339 timestamp (four-digit years) can write. An epoch
/// time past it is no time this relay takes.
pub const LATEST_MS: i64 = MAX_FAST_MS;

/// The first millisecond an event's time may be: 0000-01-01T00:00:00.000Z,
/// the first an RFC 3339 timestamp can write.
pub const EARLIEST_MS: i64 = MIN_FAST_MS;

/// Whether `ms` is a time an event may have ([`EARLIEST_MS`]..=[`LATEST_MS`]):
/// one whose UTC form an RFC 3339 timestamp can write. A time written with
/// an offset can be past it (`9999-12-31T23:59:59-01:00` is the year 10000
/// in UTC, written `+10000-…`, which no RFC 3339 reader takes).
pub fn in_rfc3339_range(ms: i64) -> bool {
    (EARLIEST_MS..=LATEST_MS).contains(&ms)
}

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
    let mut buf = [0u8; 24];
    if write_rfc3339_millis(ms, &mut buf) {
        out.extend_from_slice(&buf);
    } else {
        out.extend_from_slice(format_rfc3339_millis(ms).as_bytes());
    }
}

/// `"00"` to `"99"`.
const DIGITS2: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// What [`write_rfc3339_millis`] remembers on each thread. The event time
/// and the receive time of one event usually differ, but each repeats its
/// second from one event to the next; two seconds are kept so the two
/// alternating calls per event both find theirs.
struct Cache {
    /// (second since 0000-01-01, `YYYY-MM-DDTHH:MM:SS.`) of the two seconds
    /// used last.
    seconds: [Cell<(u64, [u8; 20])>; 2],
    /// The slot the next new second replaces: the one not used last.
    victim: Cell<usize>,
    /// (day since 0000-01-01, `YYYY-MM-DDT`) of the last day formatted.
    day: Cell<(u64, [u8; 11])>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            seconds: [Cell::new((u64::MAX, [0; 20])), Cell::new((u64::MAX, [0; 20]))],
            victim: Cell::new(0),
            day: Cell::new((u64::MAX, [0; 11])),
        }
    };
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0000..=9999 (what chrono's
/// `to_rfc3339_opts(Millis, true)` writes); false outside that range.
/// The `YYYY-MM-DDTHH:MM:SS.` part comes from the per-thread [`Cache`]
/// when the second was one of the last two formatted, and its date part
/// when the day was the last one.
fn write_rfc3339_millis(ms: i64, buf: &mut [u8; 24]) -> bool {
    if !(MIN_FAST_MS..=MAX_FAST_MS).contains(&ms) {
        return false;
    }
    // Counted from 0000-01-01T00:00:00.000Z, a whole number of days before
    // the epoch: unsigned, so the divisions are the Euclidean ones.
    let since_0 = (ms - MIN_FAST_MS) as u64;
    let sec = since_0 / 1000;
    let milli = (since_0 % 1000) as usize;
    let prefix = CACHE.with(|c| {
        for (i, slot) in c.seconds.iter().enumerate() {
            let (s, prefix) = slot.get();
            if s == sec {
                c.victim.set(i ^ 1);
                return prefix;
            }
        }
        let prefix = second_prefix(c, sec);
        let v = c.victim.get();
        c.seconds[v].set((sec, prefix));
        c.victim.set(v ^ 1);
        prefix
    });
    buf[..20].copy_from_slice(&prefix);
    buf[20] = b'0' + (milli / 100) as u8;
    buf[21..23].copy_from_slice(&DIGITS2[milli % 100]);
    buf[23] = b'Z';
    true
}

/// `YYYY-MM-DDTHH:MM:SS.` of a second since 0000-01-01 (years 0..=9999).
#[inline(never)]
fn second_prefix(c: &Cache, sec: u64) -> [u8; 20] {
    let day = sec / 86_400;
    let in_day = (sec % 86_400) as u32;
    let (d, date) = c.day.get();
    let date = if d == day {
        date
    } else {
        let date = date_prefix(day);
        c.day.set((day, date));
        date
    };
    let (hh, mm, ss) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    let mut p = [0u8; 20];
    p[..11].copy_from_slice(&date);
    p[11..13].copy_from_slice(&DIGITS2[hh as usize]);
    p[13] = b':';
    p[14..16].copy_from_slice(&DIGITS2[mm as usize]);
    p[16] = b':';
    p[17..19].copy_from_slice(&DIGITS2[ss as usize]);
    p[19] = b'.';
    p
}

/// `YYYY-MM-DDT` of a day since 0000-01-01 (years 0..=9999).
fn date_prefix(day: u64) -> [u8; 11] {
    let (y, m, d) = civil_from_days(day as i64 - 719_528);
    let mut p = [0u8; 11];
    p[..2].copy_from_slice(&DIGITS2[(y / 100) as usize]);
    p[2..4].copy_from_slice(&DIGITS2[(y % 100) as usize]);
    p[4] = b'-';
    p[5..7].copy_from_slice(&DIGITS2[m as usize]);
    p[7] = b'-';
    p[8..10].copy_from_slice(&DIGITS2[d as usize]);
    p[10] = b'T';
    p
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
        .filter(|ms| in_rfc3339_range(*ms))
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

        /// Runs of timestamps that reuse and evict the per-thread caches
        /// (same millisecond, same second, same day, two alternating
        /// streams, jumps anywhere, including outside years 0..=9999).
        #[test]
        fn push_matches_chrono_through_the_caches(
            start in prop_oneof![
                MIN_FAST_MS - 5_000..MIN_FAST_MS + 200_000_000,
                -200_000_000i64..200_000_000,
                1_600_000_000_000i64..1_900_000_000_000,
                MAX_FAST_MS - 200_000_000..MAX_FAST_MS + 5_000,
                any::<i64>(),
            ],
            steps in proptest::collection::vec(
                (0usize..2, prop_oneof![
                    Just(0i64),
                    -3i64..3,
                    -1_500i64..1_500,
                    -90_000_000i64..90_000_000,
                    any::<i64>(),
                ]),
                1..64,
            ),
        ) {
            // two streams, like an event's time and its receive time
            let mut at = [start, start.saturating_add(1_234)];
            let mut out = Vec::new();
            let mut want = Vec::new();
            for (stream, step) in steps {
                let ms = at[stream].saturating_add(step);
                at[stream] = ms;
                push_rfc3339_millis(&mut out, ms);
                want.extend_from_slice(chrono_format(ms).as_bytes());
                prop_assert_eq!(&out, &want, "ms = {}", ms);
                prop_assert_eq!(format_rfc3339_millis(ms), chrono_format(ms));
            }
        }
    }

    #[test]
    fn push_matches_chrono_across_boundaries() {
        let mut starts = vec![
            MIN_FAST_MS,
            MAX_FAST_MS - 2_000,
            -2_000,
            951_782_400_000 - 2_000,   // into 2000-02-29
            951_868_800_000 - 2_000,   // into 2000-03-01
            4_107_542_400_000 - 2_000, // 2100-03-01 (no 2100-02-29)
            1_790_000_000_000,
        ];
        // every month boundary of 2024 and 1900 (a leap year, a non-leap century)
        for y in [1900, 2024] {
            for m in 1..=12 {
                let d = chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap();
                starts.push(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - 1_500);
            }
        }
        for start in starts {
            let mut out = Vec::new();
            let mut want = Vec::new();
            // two interleaved streams a second and a day apart, in steps
            // that cross milliseconds, seconds and days
            for i in 0..3_000i64 {
                for ms in [start + i, start + 86_400_000 + 7 * i] {
                    push_rfc3339_millis(&mut out, ms);
                    want.extend_from_slice(chrono_format(ms).as_bytes());
                }
            }
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(want).unwrap(),
                "start = {start}"
            );
        }
    }
}
