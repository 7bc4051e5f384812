//! Exponential backoff with full jitter, capped, honouring a server's
//! `Retry-After` when it asks for longer.

use super::settings::RetrySettings;
use rand::Rng;
use std::time::Duration;

/// The wait before attempt `attempt + 1` (attempt counts from 1).
pub fn delay(retry: &RetrySettings, attempt: u32, server_after: Option<Duration>) -> Duration {
    let base =
        retry.initial_backoff.0.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = base.min(retry.max_backoff.0.as_secs_f64());
    // "equal jitter": half fixed, half random, so waits never collapse to zero
    let jittered = capped / 2.0 + rand::thread_rng().gen_range(0.0..=capped / 2.0);
    let d = Duration::from_secs_f64(jittered);
    match server_after {
        Some(a) if a > d => a.min(Duration::from_secs(3600)),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let r = RetrySettings {
            initial_backoff: HumanDuration(Duration::from_millis(100)),
            max_backoff: HumanDuration(Duration::from_secs(2)),
            max_attempts: 0,
        };
        for _ in 0..100 {
            let d1 = delay(&r, 1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d10 = delay(&r, 10, None);
            assert!(
                d10 >= Duration::from_secs(1) && d10 <= Duration::from_secs(2),
                "{d10:?}"
            );
        }
        assert_eq!(
            delay(&r, 1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
