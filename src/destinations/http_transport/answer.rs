//! Reading a server's answer: `Retry-After`, a printable body excerpt,
//! which statuses are worth retrying, and the default classification.

use super::settings::origin_of;
use super::{EncodedRequest, HttpResponse};
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

/// A short, printable excerpt of a response body for reasons and logs;
/// `empty body` (or `blank body`, only white space) when it says nothing,
/// so that `answered 500: empty body` does not end at its colon.
pub fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let s = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > MAX {
        format!("{s}…")
    } else if body.is_empty() {
        "empty body".into()
    } else if s.is_empty() {
        "blank body".into()
    } else {
        s
    }
}

/// A request's size, for reasons: `1 event, 525 bytes uncompressed` (its
/// body as the format built it, before any gzip).
pub fn request_size(req: &EncodedRequest) -> String {
    let n = req.indices.len();
    format!(
        "{n} event{}, {} bytes uncompressed",
        if n == 1 { "" } else { "s" },
        req.body.len()
    )
}

/// The reason for a 413 the transport halves no further (a request of a
/// single event): the request's size and, against `limit` (the vendor's
/// documented request limit in bytes, when it has one), whether it was
/// above it, or below it and so refused by another limit on the way (a
/// proxy's). The size shows what was refused; a reason that claimed the
/// vendor's limit for an event of 500 bytes sent the operator looking in
/// the wrong place.
pub fn refused_as_too_large(
    what: &str,
    req: &EncodedRequest,
    resp: &HttpResponse,
    limit: Option<usize>,
) -> String {
    let against = match limit {
        Some(l) if req.body.len() > l => format!(": above {what}'s documented limit of {l} bytes"),
        Some(l) => format!(
            ": below {what}'s documented limit of {l} bytes, so a smaller limit on the way \
             refused it (a proxy's?)"
        ),
        None => String::new(),
    };
    format!(
        "{what} answered 413 (payload too large) to a request of {}{against} ({})",
        request_size(req),
        body_excerpt(&resp.body)
    )
}

/// Whether a status is worth retrying: 408, 429 and 5xx except 501.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501)
}

/// A 3xx answer: redirects are not followed (a redirected POST would
/// lose its body, or its `Authorization` on the way to another host, and a
/// `GET` answered 200 would pass for a delivery), so the batch is rejected
/// with where the server points.
///
/// `hide_path`: the format's URL is itself a secret (a Sumo Logic collector
/// code, a webhook's token), and so is a `Location` that names the URL at
/// another address: it is shown as `target` is, its origin and
/// `/[path redacted]` (resolved against `url`, the request's, when relative).
pub fn redirected(target: &str, url: &str, resp: &HttpResponse, hide_path: bool) -> Delivery {
    let location = resp
        .headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let to = match location {
        None => "no Location".to_string(),
        Some(loc) if hide_path => redacted_location(url, loc),
        Some(loc) => loc.to_string(),
    };
    Delivery::Rejected {
        reason: format!(
            "{target} answered {} redirecting to {to}: redirects are not followed; \
             set the destination's address to where the events should go",
            resp.status
        ),
    }
}

/// `loc` (absolute, or relative to `url`) as its origin and
/// `/[path redacted]`: never its path, query, fragment or user info.
fn redacted_location(url: &str, loc: &str) -> String {
    let resolved = reqwest::Url::parse(url)
        .and_then(|base| base.join(loc.trim()))
        .or_else(|_| reqwest::Url::parse(loc.trim()));
    match resolved {
        Ok(u) if u.path() == "/" && u.query().is_none() && u.fragment().is_none() => {
            format!("{}/", origin_of(u.as_str()))
        }
        Ok(u) => format!("{}/[path redacted]", origin_of(u.as_str())),
        Err(_) => "[a Location redacted: not a URL]".to_string(),
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

/// A 2xx answer that is not the success answer the vendor documents
/// (`expected`, as `204 No Content`): a failed attempt, retried, whose
/// reason shows what came back (status, `Content-Type`, the body's first
/// bytes) and `hint`, where to look. Any 2xx counted as delivered, so a
/// web server's welcome page or an empty 200 from something that is not
/// the vendor's API took the events, which were lost.
pub fn not_the_documented_success(
    what: &str,
    expected: &str,
    resp: &HttpResponse,
    hint: &str,
) -> Delivery {
    let content_type = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    let body = body_excerpt(&resp.body);
    Delivery::retry(format!(
        "{what} answers {expected} on success; got {}{content_type}: {body} — {hint}",
        resp.status
    ))
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
    fn a_secret_urls_redirect_names_only_the_origin_of_its_location() {
        let r = |loc: &str| HttpResponse {
            status: 308,
            headers: [(http::header::LOCATION, HeaderValue::from_str(loc).unwrap())]
                .into_iter()
                .collect(),
            body: Bytes::new(),
        };
        let url = "https://c.example/receiver/v1/http/SECRET";
        let reason = |loc: &str, hide: bool| match redirected("t", url, &r(loc), hide) {
            Delivery::Rejected { reason } => reason,
            other => panic!("{other:?}"),
        };
        for (loc, shown) in [
            (
                "https://u:p@e4.example:8443/receiver/v1/http/SECRET",
                "https://e4.example:8443/[path redacted]",
            ),
            (
                "/receiver/v1/http/SECRET",
                "https://c.example/[path redacted]",
            ),
            (
                "https://e4.example/?token=SECRET",
                "https://e4.example/[path redacted]",
            ),
            (
                "https://e4.example/#SECRET",
                "https://e4.example/[path redacted]",
            ),
            ("https://e4.example", "https://e4.example/"),
        ] {
            let got = reason(loc, true);
            assert!(
                got.contains(&format!("redirecting to {shown}: ")),
                "{loc}: {got}"
            );
            assert!(
                !got.contains("SECRET") && !got.contains("u:p"),
                "{loc}: {got}"
            );
        }
        // other formats show the Location as the server wrote it
        assert!(reason("/moved", false).contains("redirecting to /moved: "));
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
