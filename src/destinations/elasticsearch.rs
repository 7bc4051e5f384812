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
//! Each event is a `create` with `_id` = its `event_id`, so a batch re-sent
//! after a crash or a partial failure answers 409 for the documents already
//! there: counted as delivered (at-least-once without duplicates). Only items
//! failed with 429/5xx are retried; other item failures (mapping errors) are
//! dead-lettered with Elasticsearch's reason. The index name comes from the
//! event time (`index = "siem-relay-%Y.%m.%d"`, strftime); with
//! `data_stream = true`, `index` names a data stream and each document gets
//! the `@timestamp` data streams require.

use super::http_transport::{
    basic_auth, body_excerpt, default_classify, is_retryable_status, origin_of, pack, posts,
    secret_header, Compression, Encoded, EncodedRequest, Framing, HttpFormat, HttpResponse,
    HttpSettings, HttpSink, Limits,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use crate::event::format_rfc3339_millis;
use chrono::format::{Item, StrftimeItems};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
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

#[derive(Debug, Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<serde_json::Map<String, serde_json::Value>>,
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

    /// One item of `items[]`: delivered (`None`), retry, or reject with the reason.
    fn item_fate(item: &serde_json::Map<String, serde_json::Value>) -> ItemFate {
        let Some(result) = item.values().next() else {
            return ItemFate::Retry;
        };
        let status = result.get("status").and_then(|s| s.as_u64()).unwrap_or(0) as u16;
        // 409 on `create`: the document (same event_id) is already there.
        if (200..300).contains(&status) || status == 409 {
            return ItemFate::Ok;
        }
        if status == 0 || is_retryable_status(status) {
            return ItemFate::Retry;
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
        ItemFate::Reject(format!(
            "Elasticsearch refused the document ({status} {kind}): {reason}"
        ))
    }
}

enum ItemFate {
    Ok,
    Retry,
    Reject(String),
}

impl HttpFormat for Elasticsearch {
    fn encode(&self, batch: &Batch) -> Encoded {
        let entries = batch
            .events
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                let index = self.index_for(ev.meta.timestamp_ms);
                let id = serde_json::from_slice::<IdOnly>(&ev.body)
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
                match (self.data_stream, ev.body.first()) {
                    (true, Some(b'{')) => {
                        let ts = format_rfc3339_millis(ev.meta.timestamp_ms);
                        line.extend_from_slice(format!("{{\"@timestamp\":\"{ts}\"").as_bytes());
                        if ev.body.len() > 2 {
                            line.push(b',');
                        }
                        line.extend_from_slice(&ev.body[1..]);
                    }
                    _ => line.extend_from_slice(&ev.body),
                }
                (i, line)
            })
            .collect();
        // `http.max_content_length` (100 MB by default) is far above a batch; a 413 is bisected.
        let (bodies, rejected) = pack(entries, Framing::Lines, Limits::NONE, |_| String::new());
        let requests = posts(&self.url, &self.headers, bodies);
        Encoded { requests, rejected }
    }

    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        if resp.status == 413 {
            return Delivery::rejected(format!(
                "Elasticsearch answered 413: a single document is larger than http.max_content_length; \
                 raise it or drop fields with `redact` ({})",
                body_excerpt(&resp.body)
            ));
        }
        if !(200..300).contains(&resp.status) {
            return default_classify("Elasticsearch", resp);
        }
        let answer: BulkAnswer = match serde_json::from_slice(&resp.body) {
            Ok(a) => a,
            Err(e) => {
                return Delivery::retry(format!(
                    "unreadable bulk answer ({e}): {}",
                    body_excerpt(&resp.body)
                ))
            }
        };
        if !answer.errors {
            return Delivery::Delivered;
        }
        if answer.items.len() != req.indices.len() {
            return Delivery::retry(format!(
                "bulk answer has {} items for {} documents",
                answer.items.len(),
                req.indices.len()
            ));
        }
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        for (p, item) in answer.items.iter().enumerate() {
            match Self::item_fate(item) {
                ItemFate::Ok => {}
                ItemFate::Retry => retry.push(p),
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
        }
    }
}

/// Builds an `elasticsearch` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::None)?;
    let endpoint = http.require_base(ctx)?.to_string();
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
    if let Some(a) = auth {
        headers.push((http::header::AUTHORIZATION, a));
    }
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
    Ok(Arc::new(HttpSink::new(
        format,
        &http,
        origin_of(&endpoint),
        ctx,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn data_streams_get_a_timestamp_and_create_actions() {
        use crate::destinations::BatchEvent;
        use crate::event::{Event, Severity};
        let mut ev = Event::new("SECURITY", None, Severity::Info);
        ev.event_id = "evt_1".into();
        ev.set_timestamp_ms(1_700_000_000_123);
        let enc = ev.encode();
        let body = String::from_utf8(enc.body.clone()).unwrap();
        let batch = Batch::new(vec![BatchEvent {
            seq: 1,
            meta: enc.meta,
            body: enc.body.into(),
        }]);
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
