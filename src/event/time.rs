//! Millisecond timestamps and their RFC 3339 form.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2026-11-23T14:56:08.123Z`.
pub fn format_rfc3339_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
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
}
