//! `elasticsearch`: the `_bulk` API of Elasticsearch and OpenSearch.
//!
//! Verified against Elastic's "Bulk API" reference
//! (<https://www.elastic.co/guide/en/elasticsearch/reference/7.1/docs-bulk.html>):
//! `POST /_bulk` with `Content-Type: application/x-ndjson`, an NDJSON body of
//! `action_and_meta_data\n source\n` pairs whose final line ends with `\n`;
//! `create` fails when a document with the same `_id` exists; the answer is
//! 200 with `"errors": true` and one entry per action in `items[]`, in request
//! order, each with its own `status` and `error`. Authentication per Elastic's
//! "Authentication" page: `Authorization: ApiKey <base64(id:key)>` or Basic.
//! OpenSearch's bulk API (docs.opensearch.org) takes the same body.
//!
//! Each event is a `create` with `_id` = its `event_id` (one longer than the
//! 512 bytes an `_id` may have, which the HTTP source accepts, as
//! `sha256:` and its hex SHA-256: [`bulk_id`]), so a batch re-sent
//! after a crash or a partial failure answers 409 for the documents already
//! there: counted as delivered (at-least-once without duplicates). Only items
//! failed with 429/5xx are retried; other item failures (mapping errors) are
//! dead-lettered with Elasticsearch's reason. The index name comes from the
//! event time (`index = "siem-relay-%Y.%m.%d"`, strftime); with
//! `data_stream = true`, `index` names a data stream and each document gets
//! the `@timestamp` data streams require.

use super::http_transport::{
    basic_auth, body_excerpt, client_for, default_classify, is_retryable_status, origin_of, posts,
    secret_header, Compression, Encoded, EncodedRequest, Framing, HttpFormat, HttpResponse,
    HttpSettings, HttpSink, Limits, OwnHeader, Packer,
};
use super::syslog::view as syslog_view;
use super::{Batch, BatchEvent, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use crate::event::record::FLAG_CANONICAL;
use crate::event::{json_writer, push_rfc3339_millis, RecordMeta};
use chrono::format::{Fixed, Item, Numeric, StrftimeItems};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Index name, strftime-style date pattern on the event time allowed.
    index: Option<String>,
    /// `index` names a data stream (no date pattern; `@timestamp` added).
    #[serde(default)]
    data_stream: bool,
    api_key: Option<String>,
    username: Option<String>,
    password: Option<String>,
    /// Ingest pipeline to run on every document.
    pipeline: Option<String>,
}

/// The `_bulk` wire format.
#[derive(Debug)]
pub struct Elasticsearch {
    url: String,
    index: String,
    /// The index holds `%` date specifiers.
    dated: bool,
    data_stream: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
}

/// A bulk answer's top-level `errors` flag and how many `items` it lists,
/// read without building the items (they are skipped, not kept: building
/// a map per item of a successful answer cost more than encoding the
/// batch). A 200 delivers the batch only with one item per document and
/// `"errors": false`: `{}` or `{"errors":false,"items":[]}` for two
/// documents confirms none of them (a proxy's or a stub's answer), and was
/// taken as their delivery.
#[derive(Debug, Deserialize)]
struct BulkSummary {
    #[serde(default)]
    errors: Option<bool>,
    #[serde(default)]
    items: Option<ItemCount>,
}

/// The length of a JSON array, its elements skipped.
#[derive(Debug)]
struct ItemCount(usize);

impl<'de> Deserialize<'de> for ItemCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = ItemCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of bulk items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ItemCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ItemCount(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

/// A bulk answer with `"errors": true`: its items, one per action.
#[derive(Debug, Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    items: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Why Elasticsearch would refuse `name` as an index or data stream name
/// (lower case; none of `\\ / * ? " < > | , # :` or a space; not starting
/// with `-`, `_` or `+`; not `.` or `..`; at most 255 bytes).
fn index_name_problem(name: &str) -> Result<(), String> {
    if let Some(c) = name.chars().find(|c| c.is_uppercase()) {
        return Err(format!("index names are lower case (`{c}` in `{name}`)"));
    }
    if let Some(c) = name.chars().find(|c| "\\/*?\"<>|, #:".contains(*c)) {
        return Err(format!("`{c}` is not allowed in an index name (`{name}`)"));
    }
    if name.starts_with(['-', '_', '+']) || name == "." || name == ".." {
        return Err(format!(
            "`{name}` cannot be an index name (starts with -, _ or +, or is . or ..)"
        ));
    }
    if name.len() > 255 {
        return Err(format!(
            "index names are at most 255 bytes (`{name}` has {})",
            name.len()
        ));
    }
    Ok(())
}

/// Why Elasticsearch would refuse a name the strftime pattern `index` gives
/// for some event time: tried at every hour of days and months of one and
/// two digits, with minutes and seconds of both, as space padding (`%e`,
/// `%l`, `%_M`) appears only for some of them (at 1970-01-01 00:00 alone,
/// `%l` gave `12`, and ` 7` at 07:00 went to Elasticsearch, which refused
/// every event of those hours).
fn dated_index_problem(index: &str) -> Result<(), String> {
    use chrono::TimeZone;
    for (month, day) in [(1, 1), (5, 9), (10, 10), (12, 31)] {
        for hour in 0..24 {
            for (minute, second) in [(0, 0), (5, 7), (30, 45)] {
                let Some(t) = chrono::Utc
                    .with_ymd_and_hms(2026, month, day, hour, minute, second)
                    .single()
                else {
                    continue;
                };
                let name = t.format(index).to_string().to_lowercase();
                index_name_problem(&name).map_err(|why| {
                    format!("{why}, for an event at {}", t.format("%Y-%m-%d %H:%M:%S"))
                })?;
            }
        }
    }
    Ok(())
}

impl Elasticsearch {
    fn index_for(&self, ts_ms: i64) -> String {
        if !self.dated {
            return self.index.clone();
        }
        match chrono::DateTime::from_timestamp_millis(ts_ms) {
            // Validated at build: no error items, so formatting cannot fail.
            Some(t) => t.format(&self.index).to_string().to_lowercase(),
            None => self.index.replace('%', "_").to_lowercase(),
        }
    }

    /// One item of `items[]`: delivered, retry or reject, with the reason
    /// (its status and error type, as `(429 es_rejected_execution_exception)`).
    fn item_fate(item: &serde_json::Map<String, serde_json::Value>) -> ItemFate {
        let Some(result) = item.values().next() else {
            return ItemFate::Retry("Elasticsearch answered an empty bulk item".into());
        };
        let status = result.get("status").and_then(|s| s.as_u64()).unwrap_or(0) as u16;
        // 409 on `create`: the document (same event_id) is already there.
        if (200..300).contains(&status) || status == 409 {
            return ItemFate::Ok;
        }
        let err = result.get("error");
        let kind = err
            .and_then(|e| e.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("error");
        let reason = err
            .and_then(|e| e.get("reason"))
            .and_then(|t| t.as_str())
            .unwrap_or("no reason given");
        if status == 0 || is_retryable_status(status) {
            return ItemFate::Retry(format!(
                "Elasticsearch could not take the document yet ({status} {kind}): {reason}"
            ));
        }
        ItemFate::Reject(format!(
            "Elasticsearch refused the document ({status} {kind}): {reason}"
        ))
    }
}

/// The `_index` value of the last event encoded, as a JSON string, so a
/// batch formats its date pattern once per key instead of once per event.
/// The key is the event's UTC day when the pattern holds only date
/// specifiers (the name is the same all day), its millisecond otherwise.
struct IndexCache<'a> {
    es: &'a Elasticsearch,
    per_day: bool,
    last: Option<(i64, Vec<u8>)>,
}

impl<'a> IndexCache<'a> {
    fn new(es: &'a Elasticsearch) -> Self {
        IndexCache {
            es,
            per_day: es.dated && date_only(&es.index),
            last: None,
        }
    }

    /// `index_for(ts_ms)` as a JSON string.
    fn json(&mut self, ts_ms: i64) -> &[u8] {
        let key = match (self.es.dated, self.per_day) {
            (false, _) => 0,
            (true, true) => ts_ms.div_euclid(86_400_000),
            (true, false) => ts_ms,
        };
        if !matches!(&self.last, Some((k, _)) if *k == key) {
            let mut v = Vec::new();
            json_writer::string(&mut v, &self.es.index_for(ts_ms));
            self.last = Some((key, v));
        }
        &self.last.as_ref().expect("just filled").1
    }
}

/// Whether a (valid) strftime pattern names only parts of the date, so its
/// formatting is the same for every millisecond of a UTC day. (Chrono's
/// validity range is whole days, so out-of-range times are too.)
fn date_only(pattern: &str) -> bool {
    StrftimeItems::new(pattern).all(|item| match item {
        Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_) => true,
        Item::Numeric(n, _) => matches!(
            n,
            Numeric::Year
                | Numeric::YearDiv100
                | Numeric::YearMod100
                | Numeric::IsoYear
                | Numeric::IsoYearDiv100
                | Numeric::IsoYearMod100
                | Numeric::Month
                | Numeric::Day
                | Numeric::WeekFromSun
                | Numeric::WeekFromMon
                | Numeric::IsoWeek
                | Numeric::NumDaysFromSun
                | Numeric::WeekdayFromMon
                | Numeric::Ordinal
        ),
        Item::Fixed(f) => matches!(
            f,
            Fixed::ShortMonthName
                | Fixed::LongMonthName
                | Fixed::ShortWeekdayName
                | Fixed::LongWeekdayName
        ),
        _ => false,
    })
}

enum ItemFate {
    Ok,
    Retry(String),
    Reject(String),
}

impl Elasticsearch {
    /// The `event_id` of a record body, as serde reads it (`None` when the
    /// body is not a JSON object or has no string `event_id`). A canonical
    /// body (`meta.flags`) starts with it: read there when it holds no
    /// escape. Otherwise the strict scanner of the `syslog` destination where
    /// it is sure to agree, and serde (`IdOnly`) for the rest. (The whole
    /// body's scan was 17% of the relay's CPU in the e2e `tcp_elastic`.)
    fn event_id<'b>(meta: &RecordMeta, body: &'b [u8]) -> Option<Cow<'b, str>> {
        if meta.flags & FLAG_CANONICAL != 0 {
            if let Some(id) = canonical_event_id(body) {
                return Some(Cow::Borrowed(id));
            }
        }
        match syslog_view::event_id(body) {
            Ok(id) => id.map(|id| id.decoded()),
            Err(_) => serde_json::from_slice::<IdOnly>(body)
                .ok()
                .and_then(|d| d.event_id),
        }
    }

    /// One bulk action and its document, without the final newline:
    /// `{"create":{"_id":…,"_index":…}}\n<document>` (the keys in the
    /// sorted order `serde_json::Map` writes them).
    fn line(&self, ev: &BatchEvent, index: &mut IndexCache<'_>, out: &mut Vec<u8>) {
        out.reserve(ev.body().len() + 96);
        out.extend_from_slice(b"{\"create\":{");
        if let Some(id) = Self::event_id(&ev.meta, ev.body()) {
            out.extend_from_slice(b"\"_id\":");
            json_writer::string(out, &bulk_id(&id));
            out.push(b',');
        }
        out.extend_from_slice(b"\"_index\":");
        out.extend_from_slice(index.json(ev.meta.timestamp_ms));
        out.extend_from_slice(b"}}\n");
        match (self.data_stream, ev.body().first()) {
            (true, Some(b'{')) => {
                out.extend_from_slice(b"{\"@timestamp\":\"");
                push_rfc3339_millis(out, ev.meta.timestamp_ms);
                out.push(b'"');
                if ev.body().len() > 2 {
                    out.push(b',');
                }
                out.extend_from_slice(&ev.body()[1..]);
            }
            _ => out.extend_from_slice(ev.body()),
        }
    }
}

impl HttpFormat for Elasticsearch {
    fn encode(&self, batch: &Batch) -> Encoded {
        let mut packer = Packer::new(Framing::Lines, Limits::NONE);
        let mut index = IndexCache::new(self);
        let mut line = Vec::new();
        for (i, ev) in batch.events.iter().enumerate() {
            line.clear();
            self.line(ev, &mut index, &mut line);
            // `http.max_content_length` (100 MB by default) is far above a batch; a 413 is bisected.
            packer.push(i, &line, |_, _| String::new());
        }
        let (bodies, rejected) = packer.finish();
        let requests = posts(&self.url, &self.headers, bodies);
        Encoded { requests, rejected }
    }

    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        if resp.status == 413 {
            return Delivery::rejected(format!(
                "{}; above the cluster's http.max_content_length (100 MB by default) or a proxy's \
                 body limit: raise it or drop fields with `redact`",
                super::http_transport::refused_as_too_large("Elasticsearch", req, resp, None)
            ));
        }
        if !(200..300).contains(&resp.status) {
            return default_classify("Elasticsearch", resp);
        }
        let unreadable = |e: serde_json::Error| {
            Delivery::retry(format!(
                "unreadable bulk answer ({e}): {}",
                body_excerpt(&resp.body)
            ))
        };
        let summary = match serde_json::from_slice::<BulkSummary>(&resp.body) {
            Ok(s) => s,
            Err(e) => return unreadable(e),
        };
        let docs = req.indices.len();
        let items = summary.items.as_ref().map(|c| c.0);
        if items != Some(docs) {
            // whatever `errors` says: the documents not confirmed one by
            // one may not be there
            return Delivery::retry(format!(
                "Elasticsearch answered {} with {} for {docs} document{}, not one item per \
                 document: none counted as delivered ({})",
                resp.status,
                match items {
                    Some(n) => format!("{n} bulk item{}", if n == 1 { "" } else { "s" }),
                    None => "no `items`".into(),
                },
                if docs == 1 { "" } else { "s" },
                body_excerpt(&resp.body)
            ));
        }
        if summary.errors == Some(false) {
            return Delivery::Delivered;
        }
        // `"errors": true` (or no flag): each item's own status says
        let answer: BulkAnswer = match serde_json::from_slice(&resp.body) {
            Ok(a) => a,
            Err(e) => return unreadable(e),
        };
        let mut retry = Vec::new();
        let mut retry_reason = None;
        let mut rejected = Vec::new();
        for (p, item) in answer.items.iter().enumerate() {
            match Self::item_fate(item) {
                ItemFate::Ok => {}
                ItemFate::Retry(r) => {
                    retry.push(p);
                    // the first one's: `max_attempts`' give-up reason
                    retry_reason.get_or_insert(r);
                }
                ItemFate::Reject(r) => rejected.push((p, r)),
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            return Delivery::Delivered;
        }
        Delivery::Partial {
            retry,
            rejected,
            after: None,
            retry_reason,
        }
    }
}

/// The most bytes an `_id` may have: Elasticsearch refuses a longer one
/// ("id is too long, must be no longer than 512 bytes"), as OpenSearch
/// does since 2.9 (docs.opensearch.org, "Index document").
const MAX_ID_BYTES: usize = 512;

/// The `_id` of an event with `event_id` `id`: the id itself, or for one
/// longer than [`MAX_ID_BYTES`] (the HTTP source takes a 600-byte id, and
/// every such event was refused), `sha256:` and the hex SHA-256 of all of
/// it. The same id gives the same `_id` at every send, so a re-sent event
/// still answers 409 (already there); a long id that starts like another
/// does not share its `_id`, as a cut one would.
fn bulk_id(id: &str) -> Cow<'_, str> {
    if id.len() <= MAX_ID_BYTES {
        return Cow::Borrowed(id);
    }
    Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(id))))
}

/// The `event_id` at the start of a canonical body (`{"event_id":"…"`),
/// when it has no escape (`None`: read the body in full).
fn canonical_event_id(body: &[u8]) -> Option<&str> {
    let rest = body.strip_prefix(br#"{"event_id":""#)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// Builds an `elasticsearch` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::None)?;
    let s: Settings = table_into(&table, &path)?;
    let index = s.index.unwrap_or_else(|| {
        if s.data_stream {
            "logs-siem_relay-default".into()
        } else {
            "siem-relay-%Y.%m.%d".into()
        }
    });
    let dated = index.contains('%');
    if s.data_stream && dated {
        return Err(ConfigError::new(
            format!("{path}.index"),
            "a data stream name takes no date pattern (data streams roll over by themselves)",
        ));
    }
    if index.is_empty() || StrftimeItems::new(&index).any(|i| matches!(i, Item::Error)) {
        return Err(ConfigError::new(
            format!("{path}.index"),
            "not a valid index name or strftime pattern (e.g. \"siem-relay-%Y.%m.%d\")",
        ));
    }
    // what the server would refuse for every document, refused here (a
    // dated name is lowercased when formatted, so only its other rules apply)
    let checked = match dated {
        true => dated_index_problem(&index),
        false => index_name_problem(&index),
    };
    if let Err(why) = checked {
        return Err(ConfigError::new(format!("{path}.index"), why));
    }
    let mut headers = vec![(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    )];
    let auth = match (&s.api_key, &s.username, &s.password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.api_key"),
                "set either api_key or username/password, not both",
            ))
        }
        (Some(key), None, None) => Some(
            secret_header(&format!("ApiKey {key}"))
                .map_err(|m| ConfigError::new(format!("{path}.api_key"), m))?,
        ),
        (None, Some(u), Some(p)) => {
            Some(basic_auth(u, p).map_err(|m| ConfigError::new(format!("{path}.password"), m))?)
        }
        (None, Some(_), None) => {
            return Err(ConfigError::new(
                format!("{path}.password"),
                "required with username",
            ))
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.username"),
                "required with password",
            ))
        }
        (None, None, None) => None,
    };
    let mut own = vec![OwnHeader {
        name: "content-type",
        key: None,
    }];
    if let Some(a) = auth {
        headers.push((http::header::AUTHORIZATION, a));
        own.push(OwnHeader {
            name: "authorization",
            key: Some(match s.api_key {
                Some(_) => "`api_key`",
                None => "`username` and `password`",
            }),
        });
    }
    http.refuse_own_headers(ctx, &own)?;
    // the endpoint last: a bad one (left out to check the rest) does not
    // hide the section's other errors behind its `required`
    let client = client_for(&http, ctx)?;
    let endpoint = http.require_base(ctx)?.to_string();
    let mut url = format!("{endpoint}/_bulk");
    if let Some(p) = &s.pipeline {
        url.push_str("?pipeline=");
        url.extend(form_urlencoded::byte_serialize(p.as_bytes()));
    }
    let format = Elasticsearch {
        url,
        index,
        dated,
        data_stream: s.data_stream,
        headers,
    };
    Ok(Arc::new(HttpSink::with_client(
        format,
        client,
        origin_of(&endpoint),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};

    #[test]
    fn dated_index_uses_event_time_in_utc() {
        let es = Elasticsearch {
            url: String::new(),
            index: "Siem-Relay-%Y.%m.%d".into(),
            dated: true,
            data_stream: false,
            headers: vec![],
        };
        // 2024-03-05T23:59:59.999Z
        assert_eq!(es.index_for(1_709_683_199_999), "siem-relay-2024.03.05");
    }

    /// The encoder before it cached the index name and wrote the action
    /// line by hand: a `serde_json::json!` action and a formatted index per
    /// event.
    fn reference_encode(es: &Elasticsearch, batch: &Batch) -> Vec<Vec<u8>> {
        use crate::destinations::http_transport::pack;
        use crate::event::format_rfc3339_millis;
        let entries = batch
            .events
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                let index = es.index_for(ev.meta.timestamp_ms);
                let id = serde_json::from_slice::<IdOnly>(ev.body())
                    .ok()
                    .and_then(|d| d.event_id);
                let mut action = serde_json::Map::new();
                action.insert("_index".into(), index.into());
                if let Some(id) = id {
                    action.insert("_id".into(), id.into_owned().into());
                }
                let mut line = serde_json::json!({ "create": action })
                    .to_string()
                    .into_bytes();
                line.push(b'\n');
                match (es.data_stream, ev.body().first()) {
                    (true, Some(b'{')) => {
                        let ts = format_rfc3339_millis(ev.meta.timestamp_ms);
                        line.extend_from_slice(format!("{{\"@timestamp\":\"{ts}\"").as_bytes());
                        if ev.body().len() > 2 {
                            line.push(b',');
                        }
                        line.extend_from_slice(&ev.body()[1..]);
                    }
                    _ => line.extend_from_slice(ev.body()),
                }
                (i, line)
            })
            .collect();
        let (bodies, _) = pack(entries, Framing::Lines, Limits::NONE, |_, _| String::new());
        bodies.into_iter().map(|(b, _)| b.to_vec()).collect()
    }

    fn tricky_batch() -> Batch {
        use crate::destinations::BatchEvent;
        use crate::event::{Event, Severity};
        let day = 86_400_000i64;
        // 2024-03-05T23:59:59.999Z and neighbours; the epoch; before it;
        // an hour boundary; chrono's range and beyond it.
        let midnight = 1_709_683_200_000i64;
        let times = [
            midnight - 1,
            midnight,
            midnight - 1,
            midnight + 3_600_000 - 1,
            midnight + 3_600_000,
            midnight + day,
            midnight + day,
            0,
            -1,
            -day,
            -day - 1,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000,
            8_210_266_876_799_999,
            8_210_266_876_800_000,
            i64::MAX,
            i64::MIN,
        ];
        let ids = [
            "evt_1",
            "",
            "quote \" backslash \\ \u{1} tab\t caf\u{e9} \u{1F600} \u{2028} \u{7f}",
        ];
        let mut events = Vec::new();
        for (n, &t) in times.iter().enumerate() {
            let mut ev = Event::new("SECURITY", None, Severity::Info);
            ev.event_id = ids[n % ids.len()].into();
            ev.set_timestamp_ms(t.clamp(-8_000_000_000_000_000, 8_000_000_000_000_000));
            let mut enc = ev.encode();
            enc.meta.timestamp_ms = t;
            events.push(enc);
        }
        let mut bodies: Vec<Vec<u8>> = events.iter().map(|e| e.body().to_vec()).collect();
        // the bodies below are not the canonical writers': their records say so
        let mut meta = events[0].meta;
        meta.flags &= !FLAG_CANONICAL;
        let extra: [&[u8]; 19] = [
            br#"{"event_id":"esc\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","x":[1,-2.5e3,true,false,null,{}]}"#,
            br#"{"event_id":"lone \ud800"}"#,
            br#"{"event_id":"a"}trailing"#,
            br#"{"event_id":"a"} "#,
            br#"{"event_id":"a","x":01}"#,
            br#"{"event\u005fid":"escaped key"}"#,
            br#"{"a":{"event_id":"nested"},"event_id":"top"}"#,
            &[b'{', b'"', b'e', b'v', b'e', b'n', b't', b'_', b'i', b'd', b'"', b':', b'"', 0xc3, 0x28, b'"', b'}'],
            b"",
            b"{}",
            b"{",
            b"not json",
            br#"{"event_id":null}"#,
            br#"{"event_id":7}"#,
            br#"{"event_id":"a","event_id":"b"}"#,
            br#"{"x":1,"event_id":"late\u00e9\n"}"#,
            br#" { "event_id" : "spaced" } "#,
            br#"["event_id"]"#,
            &[b'{', b'"', 0xff, b'"', b':', b'1', b'}'],
        ];
        bodies.extend(extra.iter().map(|b| b.to_vec()));
        let mut out: Vec<BatchEvent> = Vec::new();
        for (seq, body) in bodies.into_iter().enumerate() {
            let m = match events.get(seq) {
                Some(e) => e.meta,
                None => meta,
            };
            out.push(BatchEvent::new(seq as u64, m, body.into()));
        }
        Batch::new(out)
    }

    #[test]
    fn encoder_matches_the_reference_on_tricky_events() {
        let batch = tricky_batch();
        for (index, dated, data_stream) in [
            ("siem-relay-%Y.%m.%d", true, false),
            ("Siem-%B-%a-%j-%G-W%V-%u-%%-%y", true, false),
            ("hourly-%Y.%m.%d.%H", true, false),
            ("per-second-%s-%f", true, false),
            ("zone-%Y-%Z-%z", true, false),
            ("Plain-Index", false, false),
            ("logs-siem_relay-default", false, true),
        ] {
            let es = Elasticsearch {
                url: "http://x/_bulk".into(),
                index: index.into(),
                dated,
                data_stream,
                headers: vec![],
            };
            let got: Vec<Vec<u8>> = es
                .encode(&batch)
                .requests
                .iter()
                .map(|r| r.body.to_vec())
                .collect();
            let want = reference_encode(&es, &batch);
            assert_eq!(
                String::from_utf8_lossy(&got.concat()),
                String::from_utf8_lossy(&want.concat()),
                "index {index}"
            );
            assert_eq!(got, want, "index {index}");
        }
    }

    proptest::proptest! {
        /// The scanner and serde read the same `_id` from any body.
        #[test]
        fn event_ids_match_serde(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            id in proptest::prelude::any::<String>(),
            rest in "(,\"[a-z_]{1,9}\":(\"[a-z\\\\\"]{0,4}\"|-?[0-9]{1,3}|\\[\\]|\\{\\}|null|true))*",
        ) {
            let canonical = format!(
                "{{\"event_id\":{}{rest}}}",
                serde_json::Value::String(id)
            );
            let meta = Event::new("SYSTEM", None, Severity::Info).meta();
            proptest::prop_assert_eq!(meta.flags & FLAG_CANONICAL, 0);
            for b in [body, canonical.into_bytes()] {
                let want = serde_json::from_slice::<IdOnly>(&b).ok().and_then(|d| d.event_id);
                proptest::prop_assert_eq!(Elasticsearch::event_id(&meta, &b), want);
            }
        }

        /// Records of both canonical writers carry the flag, and the `_id`
        /// read from their start is serde's, escapes or not.
        #[test]
        fn canonical_records_give_serde_s_id_from_their_start(
            id in proptest::prelude::any::<String>(),
            action in proptest::option::of("[a-z.\"\\\\]{0,6}"),
        ) {
            let mut ev = Event::new("SYSTEM", action.clone(), Severity::Info);
            ev.event_id = id.clone();
            let general = ev.encode();
            let line = format!(
                "<14>1 2024-02-29T12:00:00Z h app - - - {}",
                serde_json::json!({ "event_id": id, "action": action })
            );
            let origin = crate::parse::normalize::Origin { listener: "l", address: None, syslog_hint: true };
            let Ok(direct) = crate::parse::direct::line_to_record(&line, 1, &origin) else {
                panic!("the direct encoder takes {line:?}");
            };
            for (enc, parsed) in [(general, false), (direct, true)] {
                proptest::prop_assert_ne!(enc.meta.flags & FLAG_CANONICAL, 0);
                let want = serde_json::from_slice::<IdOnly>(enc.body())
                    .ok()
                    .and_then(|d| d.event_id);
                if parsed && id.trim().is_empty() {
                    // a blank id in the input is no id: one is generated
                    proptest::prop_assert!(want.as_deref().is_some_and(|w| w.starts_with("evt_")));
                } else {
                    proptest::prop_assert_eq!(&want.as_deref(), &Some(id.as_str()));
                }
                proptest::prop_assert_eq!(Elasticsearch::event_id(&enc.meta, enc.body()), want);
            }
        }
    }

    #[test]
    fn only_date_patterns_are_cached_per_day() {
        assert!(date_only("siem-relay-%Y.%m.%d"));
        assert!(date_only("x-%B-%a-%j-%G-W%V-%u-%%-%y-%e"));
        for p in [
            "%H", "%Y-%I", "%M", "%S", "%s", "%f", "%p", "%Z", "%z", "%T", "%c", "%+",
        ] {
            assert!(!date_only(p), "{p}");
        }
    }

    #[test]
    fn data_streams_get_a_timestamp_and_create_actions() {
        use crate::destinations::BatchEvent;
        use crate::event::{Event, Severity};
        let mut ev = Event::new("SECURITY", None, Severity::Info);
        ev.event_id = "evt_1".into();
        ev.set_timestamp_ms(1_700_000_000_123);
        let enc = ev.encode();
        let body = String::from_utf8(enc.body().to_vec()).unwrap();
        let batch = Batch::new(vec![BatchEvent::new(1, enc.meta, enc.into_body().into())]);
        let es = Elasticsearch {
            url: "http://x/_bulk".into(),
            index: "logs-siem_relay-default".into(),
            dated: false,
            data_stream: true,
            headers: vec![],
        };
        let enc = es.encode(&batch);
        assert_eq!(enc.requests.len(), 1);
        assert_eq!(
            std::str::from_utf8(&enc.requests[0].body).unwrap(),
            format!(
                "{{\"create\":{{\"_id\":\"evt_1\",\"_index\":\"logs-siem_relay-default\"}}}}\n\
                 {{\"@timestamp\":\"2023-11-14T22:13:20.123Z\",{}\n",
                &body[1..]
            )
        );
    }
}
