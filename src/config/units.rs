//! Human units in the config file: sizes (`"64MiB"`, `"1GB"`, `1048576`) and
//! durations (`"100ms"`, `"30m"`, `"1h30m"`, or a number of seconds).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// The units a size is shown in, largest first: the binary ones, then the
/// decimal ones (`1GB` stays `1GB`).
const SHOWN_UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

/// As a config file would write it (`64MiB`, `1GB`, `1500B`): in the
/// largest unit that divides it, which [`parse_size`] reads back.
impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        match SHOWN_UNITS
            .iter()
            .find(|(_, unit)| n >= *unit && n.is_multiple_of(*unit))
        {
            Some((name, unit)) => write!(f, "{}{name}", n / unit),
            None => write!(f, "{n}B"),
        }
    }
}

/// A duration written for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

/// Parses `"64MiB"`, `"1.5GB"`, `"512k"`, `"100"` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        u => {
            return Err(format!(
                "unknown size unit `{u}` in `{s}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    // whole numbers exactly (an f64 holds 53 bits), fractions through f64;
    // either refused, never capped, past the largest u64
    let bytes = match num.parse::<u64>() {
        Ok(n) => n.checked_mul(mult),
        Err(_) if num.bytes().all(|b| b.is_ascii_digit()) && !num.is_empty() => None,
        Err(_) => {
            let n: f64 = num.parse().map_err(|_| format!("invalid size `{s}`"))?;
            let bytes = n * mult as f64;
            (bytes < TWO_TO_64).then_some(bytes as u64)
        }
    };
    bytes.ok_or_else(|| too_large_size(s))
}

/// 2^64, the first whole number a u64 cannot hold (`u64::MAX as f64`
/// rounds up to it).
const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;

fn too_large_size(s: &str) -> String {
    format!("size `{s}` is too large (at most {} bytes)", u64::MAX)
}

/// Parses `"100ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`, `"1.5s"`, `"10"` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return seconds(secs).ok_or_else(|| out_of_range(s));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return Err(format!("invalid duration `{s}`"));
        }
        let n: f64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("invalid duration `{s}`"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let secs = match unit {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            "" => {
                return Err(format!(
                    "missing unit in duration `{s}` (use ms, s, m, h, d)"
                ))
            }
            u => return Err(format!("unknown duration unit `{u}` in `{s}`")),
        };
        total = seconds(secs)
            .and_then(|d| total.checked_add(d))
            .filter(|d| *d <= MAX_DURATION)
            .ok_or_else(|| out_of_range(s))?;
    }
    Ok(total)
}

/// The longest duration a setting may have: 100 years of 365 days. Far
/// longer than any timeout or age means, and short enough that every use
/// stays in range (a deadline `Instant::now() + d` panics past the clock's
/// range; `max_age` in milliseconds is an i64).
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// `secs` seconds as a duration; `None` for a negative number, NaN, or one
/// longer than [`MAX_DURATION`] (`Duration::from_secs_f64` panicked on the
/// first two and on one past `Duration::MAX`).
fn seconds(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
}

/// Why `s` is no duration: too large (past [`MAX_DURATION`], alone or as
/// a sum of parts), or not a number from 0 up.
fn out_of_range(s: &str) -> String {
    let t = s.trim();
    let negative_or_nan = t.starts_with('-') || t.to_ascii_lowercase().contains("nan");
    match negative_or_nan {
        true => format!("duration `{s}` is not a number of seconds from 0 up"),
        false => format!("duration `{s}` is too large (at most 36500d, 100 years)"),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Int(u64),
    Float(f64),
    Str(String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => Ok(ByteSize(n)),
            // a negative integer lands here too (it is no u64)
            NumOrStr::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < TWO_TO_64 => {
                Ok(ByteSize(f as u64))
            }
            NumOrStr::Float(f) if f >= TWO_TO_64 => Err(serde::de::Error::custom(format!(
                "size {f} is too large (at most {} bytes)",
                u64::MAX
            ))),
            NumOrStr::Float(f) => Err(serde::de::Error::custom(format!(
                "size {f} is not a whole number of bytes from 0 up"
            ))),
            NumOrStr::Str(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => Some(Duration::from_secs(n))
                .filter(|d| *d <= MAX_DURATION)
                .map(HumanDuration)
                .ok_or_else(|| serde::de::Error::custom(out_of_range(&n.to_string()))),
            // a negative integer lands here too (it is no u64)
            NumOrStr::Float(f) => seconds(f)
                .map(HumanDuration)
                .ok_or_else(|| serde::de::Error::custom(out_of_range(&f.to_string()))),
            NumOrStr::Str(s) => parse_duration(&s)
                .map(HumanDuration)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5kb").unwrap(), 1500);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn a_size_is_shown_as_written_and_reads_back() {
        for (n, shown) in [
            (64 << 20, "64MiB"),
            (1 << 32, "4GiB"),
            (1_000_000_000, "1GB"),
            (1536, "1536B"),
            (1500, "1500B"),
            (3 << 10, "3KiB"),
            (0, "0B"),
        ] {
            assert_eq!(ByteSize(n).to_string(), shown);
            assert_eq!(parse_size(shown), Ok(n));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("ms").is_err());
    }

    /// Negative, NaN and overflowing values are config errors: they made
    /// `Duration::from_secs_f64` panic, which took `validate`, `run` and a
    /// reload (SIGHUP) of a running relay down with a backtrace.
    #[test]
    fn out_of_range_values_are_errors_not_panics() {
        for s in ["-3", "nan", "inf", "1e30", "-1s", "99999999999999999999d"] {
            let e = parse_duration(s).expect_err(s);
            assert!(e.contains(s), "{e}");
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            d: Option<HumanDuration>,
            n: Option<ByteSize>,
        }
        let read = |text: &str| toml::from_str::<T>(text).map_err(|e| e.to_string());
        for text in ["d = -3", "d = -0.5", "d = nan"] {
            let e = read(text).expect_err(text);
            assert!(
                e.contains("not a number of seconds from 0 up"),
                "{text}: {e}"
            );
        }
        for text in ["d = 1e30", "d = inf"] {
            let e = read(text).expect_err(text);
            assert!(e.contains("is too large"), "{text}: {e}");
        }
        for text in ["n = -5", "n = -1", "n = 1.5", "n = nan"] {
            let e = read(text).expect_err(text);
            assert!(e.contains("not a whole number of bytes"), "{text}: {e}");
        }
        for text in ["n = 1e300", "n = inf", "n = 18446744073709551616.0"] {
            let e = read(text).expect_err(text);
            assert!(e.contains("is too large"), "{text}: {e}");
        }
        assert_eq!(
            read("d = 2.5").unwrap().d,
            Some(HumanDuration(Duration::from_millis(2500)))
        );
        assert_eq!(read("n = 1e6").unwrap().n, Some(ByteSize(1_000_000)));
        assert_eq!(read("n = 0").unwrap().n, Some(ByteSize(0)));
    }

    /// A size past 2^64 - 1 bytes is refused as too large: it was capped
    /// at u64::MAX (`max_bytes = "99999999999GiB"` passed `validate`, and
    /// `run` then allocated for that ring until it was killed).
    #[test]
    fn a_size_too_large_for_64_bits_is_an_error_not_capped() {
        for s in [
            "99999999999GiB",
            "16777216TiB",
            "18446744073709551616",
            "99999999999999999999",
            "18446744073709551615KB",
            "20000000000000000000.5",
            "16777216.5TiB",
        ] {
            let e = parse_size(s).expect_err(s);
            assert!(e.contains("is too large") && e.contains(s), "{e}");
        }
        // the largest whole sizes, exactly (through f64 they were rounded)
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
        assert_eq!(parse_size("9007199254740993"), Ok(9_007_199_254_740_993));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            max_bytes: ByteSize,
        }
        let e = crate::config::table_into::<T>(
            &toml::from_str("max_bytes = \"99999999999GiB\"").unwrap(),
            "buffer",
        )
        .unwrap_err();
        assert_eq!(e.path, "buffer.max_bytes");
        assert!(e.message.contains("too large"), "{e}");
    }

    /// A duration past 100 years is refused as too large, as one, as a
    /// sum of parts, or as a number of seconds: such a value was taken,
    /// and a deadline `Instant::now() + d` panicked, or `max_age` in
    /// milliseconds wrapped around an i64 and expired every record.
    #[test]
    fn a_duration_past_the_longest_is_an_error() {
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("3153600000"), Ok(MAX_DURATION));
        for s in ["36501d", "36500d1s", "200000000000d", "3153600001", "1e30"] {
            let e = parse_duration(s).expect_err(s);
            assert!(e.contains("is too large") && e.contains(s), "{e}");
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            d: HumanDuration,
        }
        for text in ["d = 3153600001", "d = 9223372036854775807", "d = 3.2e9"] {
            let e = toml::from_str::<T>(text).expect_err(text).to_string();
            assert!(e.contains("is too large"), "{text}: {e}");
        }
        assert_eq!(
            toml::from_str::<T>("d = 3153600000").unwrap().d,
            HumanDuration(MAX_DURATION)
        );
    }
}
