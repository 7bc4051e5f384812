//! Reading a server's answer: `Retry-After`, a printable body excerpt,
//! which statuses are worth retrying, and the default classification.

use super::HttpResponse;
use crate::destinations::sink::Delivery;
use http::HeaderMap;
use std::time::Duration;

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::Utc::now();
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A short, printable excerpt of a response body for reasons and logs.
pub fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let s = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > MAX {
        format!("{s}…")
    } else {
        s
    }
}

/// Whether a status is worth retrying: 408, 429 and 5xx except 501.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501)
}

/// A 3xx answer: redirects are not followed (a redirected POST would
/// lose its body, or its `Authorization` on the way to another host, and a
/// `GET` answered 200 would pass for a delivery), so the batch is rejected
/// with where the server points.
pub fn redirected(target: &str, resp: &HttpResponse) -> Delivery {
    let to = resp
        .headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no Location");
    Delivery::Rejected {
        reason: format!(
            "{target} answered {} redirecting to {to}: redirects are not followed; \
             set the destination's address to where the events should go",
            resp.status
        ),
    }
}

/// The default classification: 2xx delivered; 408/429/5xx (except 501) retry
/// after `Retry-After`; any other status rejected. `what` names the vendor in reasons.
pub fn default_classify(what: &str, resp: &HttpResponse) -> Delivery {
    let status = resp.status;
    if (200..300).contains(&status) {
        return Delivery::Delivered;
    }
    let reason = format!("{what} answered {status}: {}", body_excerpt(&resp.body));
    if is_retryable_status(status) {
        Delivery::Retry {
            reason,
            after: retry_after(&resp.headers),
        }
    } else {
        Delivery::Rejected { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::HeaderValue;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(120);
        let date = later.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(&date).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn default_classification() {
        let r = |status| HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        };
        assert_eq!(default_classify("x", &r(204)), Delivery::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(default_classify("x", &r(s)), Delivery::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 413, 501] {
            assert!(
                matches!(default_classify("x", &r(s)), Delivery::Rejected { .. }),
                "{s}"
            );
        }
    }
}
