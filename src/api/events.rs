//! `GET /api/v1/events`: query the retained ring without touching any
//! destination's cursor.
//!
//! Filters (all optional, combined with AND):
//! `from` / `to` (RFC 3339; `from ≤ timestamp < to`, on the event time),
//! `action` (exact, or a glob such as `user.*`), `category` (case-insensitive),
//! `min_severity`, `actor` (equals actor id, email or service_account),
//! `resource` (equals resource id, name or path), `tenant` (equals `tenant_id`).
//! `limit` (default 100, at most 1000) and `cursor` page through the results.
//!
//! The answer is `{"events": [...], "next_cursor": "...", "has_more": bool}`:
//! pass `next_cursor` back as `cursor` for the next page. `has_more` is false
//! when the page reached the newest record, its last event among them
//! (polling later with the same cursor returns events appended since). One
//! request examines at most
//! [`SCAN_BUDGET`] records; when the budget runs out the page may be short
//! with `has_more` true. Time, severity, category and tenant are checked on
//! the record header; only records that pass are parsed.

use super::auth::Viewer;
use super::error::ApiError;
use super::ApiState;
use crate::buffer::query::Visit;
use crate::buffer::Ring;
use crate::event::{
    parse_rfc3339_millis, tenant_hash, Actor, Category, RecordMeta, Resource, Severity,
};
use axum::extract::{RawQuery, State};
use axum::Json;
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Records one request examines at most.
pub const SCAN_BUDGET: usize = 200_000;
/// Records examined per hold of the ring's table lock.
const CHUNK: usize = 4096;

/// A parsed `/api/v1/events` query.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub action: Option<GlobMatcher>,
    /// Upper case; with its header code (0 when not a well-known category).
    pub category: Option<(String, u8)>,
    pub min_severity: Option<Severity>,
    pub actor: Option<String>,
    pub resource: Option<String>,
    pub tenant: Option<(String, u32)>,
    pub limit: usize,
    pub cursor: u64,
    /// Whether the query named a cursor (a first page starts at the oldest
    /// record and skips nothing).
    pub cursor_given: bool,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadQuery(msg.into())
}

fn time(name: &str, v: &str) -> Result<i64, ApiError> {
    parse_rfc3339_millis(v).ok_or_else(|| {
        // an offset's `+`, sent unencoded, arrives as a space
        let hint = match v.contains(' ') {
            true => " (a `+` in a URL query must be sent as `%2B`)",
            false => "",
        };
        bad(format!(
            "`{name}` must be an RFC 3339 time, got `{v}`{hint}"
        ))
    })
}

impl EventQuery {
    /// Parses a query string; unknown parameters are refused.
    pub fn parse(query: &str) -> Result<EventQuery, ApiError> {
        let mut q = EventQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v = v.trim();
            match k.as_ref() {
                "from" => q.from_ms = Some(time("from", v)?),
                "to" => q.to_ms = Some(time("to", v)?),
                "action" => {
                    let g = Glob::new(v).map_err(|e| bad(format!("`action`: {e}")))?;
                    q.action = Some(g.compile_matcher());
                }
                "category" => {
                    let c = v.to_ascii_uppercase();
                    let code = Category::code_of(&c);
                    q.category = Some((c, code));
                }
                // a name, or a syslog code 0..=7 as ingest takes them
                "min_severity" => {
                    q.min_severity = Some(match v.parse::<u8>() {
                        Ok(code @ 0..=7) => Severity::from_syslog(code),
                        Ok(_) => {
                            return Err(bad("`min_severity` as a number is a syslog code, 0..=7"))
                        }
                        Err(_) => v.parse().map_err(|e: String| bad(e))?,
                    })
                }
                "actor" => q.actor = Some(v.to_string()),
                "resource" => q.resource = Some(v.to_string()),
                "tenant" => q.tenant = Some((v.to_string(), tenant_hash(v))),
                "limit" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| bad(format!("`limit` must be a number, got `{v}`")))?;
                    if n == 0 || n > MAX_LIMIT {
                        return Err(bad(format!("`limit` must be 1..={MAX_LIMIT}")));
                    }
                    q.limit = n;
                }
                "cursor" => {
                    q.cursor = v
                        .parse()
                        .map_err(|_| bad("`cursor` is not one this API returned"))?;
                    q.cursor_given = true;
                }
                other => return Err(bad(format!("unknown parameter `{other}`"))),
            }
        }
        Ok(q)
    }

    /// The checks that need only the record header.
    pub fn header_matches(&self, m: &RecordMeta) -> bool {
        self.from_ms.is_none_or(|f| m.timestamp_ms >= f)
            && self.to_ms.is_none_or(|t| m.timestamp_ms < t)
            && self.min_severity.is_none_or(|s| m.severity >= s)
            && self
                .category
                .as_ref()
                .is_none_or(|(_, code)| m.category == *code)
            && self
                .tenant
                .as_ref()
                .is_none_or(|(_, h)| m.tenant_hash == *h)
    }

    /// The checks that need the body (and the ones a header hash cannot settle).
    fn body_matches(&self, e: &Filterable) -> bool {
        self.action
            .as_ref()
            .is_none_or(|g| e.action.as_deref().is_some_and(|a| g.is_match(a)))
            && self
                .category
                .as_ref()
                .is_none_or(|(c, _)| e.category.eq_ignore_ascii_case(c))
            && self
                .tenant
                .as_ref()
                .is_none_or(|(t, _)| e.tenant_id.as_deref() == Some(t.as_str()))
            && self.actor.as_deref().is_none_or(|a| {
                e.actor.as_ref().is_some_and(|x| {
                    [&x.id, &x.email, &x.service_account]
                        .iter()
                        .any(|f| f.as_deref() == Some(a))
                })
            })
            && self.resource.as_deref().is_none_or(|r| {
                e.resource.as_ref().is_some_and(|x| {
                    [&x.id, &x.name, &x.path]
                        .iter()
                        .any(|f| f.as_deref() == Some(r))
                })
            })
    }
}

/// The body fields the filters read.
#[derive(Deserialize)]
struct Filterable {
    #[serde(default)]
    category: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    actor: Option<Actor>,
    #[serde(default)]
    resource: Option<Resource>,
}

/// One page of results.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Canonical events, as stored.
    pub events: Vec<Box<RawValue>>,
    pub next_cursor: String,
    pub has_more: bool,
    /// Records between the cursor and the oldest the ring still holds:
    /// the ring reused them before this page was asked for (absent when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Runs a query over the ring (blocking: call it off the async threads).
pub fn run(ring: &Ring, q: &EventQuery) -> Page {
    let mut events = Vec::new();
    let skipped = match q.cursor_given {
        true => ring.oldest_seq().saturating_sub(q.cursor),
        false => 0,
    };
    let mut from = q.cursor;
    let mut budget = SCAN_BUDGET;
    loop {
        let want = q.limit - events.len();
        let mut candidates: Vec<Vec<u8>> = Vec::new();
        let end = ring.scan_from(from, CHUNK.min(budget), |_, meta, body| {
            if q.header_matches(meta) {
                candidates.push(body.to_vec());
                if candidates.len() >= want {
                    return Visit::Stop;
                }
            }
            Visit::Continue
        });
        budget -= end.visited;
        from = end.next_seq;
        for body in candidates {
            let keep =
                serde_json::from_slice::<Filterable>(&body).is_ok_and(|e| q.body_matches(&e));
            if keep {
                if let Ok(raw) = String::from_utf8(body)
                    .map_err(|_| ())
                    .and_then(|s| RawValue::from_string(s).map_err(|_| ()))
                {
                    events.push(raw);
                }
            }
        }
        if end.at_end || events.len() >= q.limit || budget == 0 {
            // a scan stopped at its page's last record may have taken the
            // ring's newest: then nothing more is there yet either
            let has_more = !end.at_end && from < ring.next_seq();
            return Page {
                events,
                next_cursor: from.to_string(),
                has_more,
                skipped,
            };
        }
    }
}

/// `GET /api/v1/events`.
pub async fn handler(
    Viewer(_): Viewer,
    State(state): State<Arc<ApiState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let q = EventQuery::parse(query.as_deref().unwrap_or(""))?;
    let ring = state.backend()?.ring().clone();
    // a cursor past the newest record would skip every event until the
    // ring caught up with it
    if q.cursor > ring.next_seq() {
        return Err(bad(format!(
            "`cursor` {} is ahead of the ring (its next record is {}): not one this API returned",
            q.cursor,
            ring.next_seq()
        )));
    }
    let page = tokio::task::spawn_blocking(move || run(&ring, &q))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_severity_is_a_syslog_code_and_an_unencoded_plus_is_explained() {
        let q = EventQuery::parse("min_severity=4").unwrap();
        assert_eq!(q.min_severity, Some(Severity::Warning));
        let e = EventQuery::parse("from=2024-01-01T00:00:00+01:00").unwrap_err();
        assert!(e.to_string().contains("%2B"), "{e}");
        assert!(EventQuery::parse("from=2024-01-01T00:00:00%2B01:00").is_ok());
    }

    /// A ring of four 64 KiB segments in `dir`.
    fn small_ring(dir: &std::path::Path) -> Ring {
        Ring::open(crate::buffer::RingSettings {
            dir: dir.to_path_buf(),
            max_bytes: 256 << 10,
            segment_bytes: 64 << 10,
            max_age: std::time::Duration::ZERO,
            fsync: crate::config::FsyncPolicy::Never,
        })
        .unwrap()
        .0
    }

    /// A cursor the ring has moved past (its records reused) says how many
    /// were skipped; a first page, with no cursor, skips nothing.
    #[test]
    fn a_cursor_behind_the_oldest_record_says_what_was_skipped() {
        let d = tempfile::tempdir().unwrap();
        let ring = small_ring(d.path());
        let ev = |i: usize| {
            let mut e = crate::event::Event::new("SYSTEM", Some("x".into()), Severity::Info);
            e.message = Some(format!("{i} {}", "y".repeat(300)));
            e.encode()
        };
        for chunk in 0..40 {
            ring.append(&(0..50).map(|i| ev(chunk * 50 + i)).collect::<Vec<_>>())
                .unwrap();
        }
        let oldest = ring.oldest_seq();
        assert!(oldest > 0);
        let page = run(&ring, &EventQuery::parse("cursor=3&limit=5").unwrap());
        assert_eq!(page.skipped, oldest - 3);
        assert_eq!(page.events.len(), 5);
        let first = run(&ring, &EventQuery::parse("limit=5").unwrap());
        assert_eq!(first.skipped, 0);
        let json = serde_json::to_value(&first).unwrap();
        assert!(json.get("skipped").is_none(), "{json}");
    }

    /// A page whose last event is the ring's newest record says there is
    /// no more (it said `has_more: true`, and the next page was empty).
    #[test]
    fn a_page_that_ends_at_the_newest_record_has_no_more() {
        let d = tempfile::tempdir().unwrap();
        let ring = small_ring(d.path());
        let ev = |category: &str| {
            crate::event::Event::new(category, Some("x".into()), Severity::Info).encode()
        };
        ring.append(&[ev("SYSTEM"), ev("SECURITY"), ev("SYSTEM"), ev("SECURITY")])
            .unwrap();
        let page = |query: &str| run(&ring, &EventQuery::parse(query).unwrap());
        let first = page("cursor=0&limit=2");
        assert_eq!((first.events.len(), first.has_more), (2, true));
        let last = page(&format!("cursor={}&limit=2", first.next_cursor));
        assert_eq!((last.events.len(), last.has_more), (2, false));
        assert_eq!(last.next_cursor, "4");
        // filtered: the second match is the newest record
        let matches = page("category=security&limit=2");
        assert_eq!((matches.events.len(), matches.has_more), (2, false));
        let one = page("category=security&limit=1");
        assert_eq!((one.events.len(), one.has_more), (1, true));
        // and once more is appended, there is more
        ring.append(&[ev("SYSTEM")]).unwrap();
        let again = page(&format!("cursor={}&limit=2", first.next_cursor));
        assert_eq!((again.events.len(), again.has_more), (2, true));
    }

    #[test]
    fn parses_and_validates() {
        let q = EventQuery::parse("from=2024-01-01T00:00:00Z&category=security&min_severity=warning&action=user.*&limit=2&cursor=17").unwrap();
        assert_eq!(q.limit, 2);
        assert_eq!(q.cursor, 17);
        assert_eq!(q.category.as_ref().unwrap().1, Category::Security as u8);
        assert!(q.action.as_ref().unwrap().is_match("user.login"));
        assert!(!q.action.as_ref().unwrap().is_match("file.read"));
        for bad in [
            "limit=0",
            "limit=1001",
            "from=yesterday",
            "min_severity=loud",
            "min_severity=8",
            "colour=red",
            "cursor=abc",
        ] {
            assert!(
                matches!(EventQuery::parse(bad), Err(ApiError::BadQuery(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn header_filter_uses_time_severity_category_tenant() {
        let q = EventQuery::parse(
            "from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&min_severity=warning&tenant=acme",
        )
        .unwrap();
        let t0 = parse_rfc3339_millis("2024-01-01T12:00:00Z").unwrap();
        let m = RecordMeta {
            timestamp_ms: t0,
            received_ms: t0,
            severity: Severity::Error,
            category: 0,
            tenant_hash: tenant_hash("acme"),
            flags: 0,
        };
        assert!(q.header_matches(&m));
        assert!(!q.header_matches(&RecordMeta {
            severity: Severity::Info,
            ..m
        }));
        assert!(!q.header_matches(&RecordMeta {
            timestamp_ms: t0 + 86_400_000,
            ..m
        }));
        assert!(!q.header_matches(&RecordMeta {
            tenant_hash: 0,
            ..m
        }));
    }
}
