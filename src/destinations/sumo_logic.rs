//! `sumo_logic`: a Sumo Logic hosted collector's HTTP Logs and Metrics Source.
//!
//! Verified against Sumo Logic's "HTTP Logs and Metrics Source" and "Upload
//! Logs to an HTTP Source" pages
//! (<https://help.sumologic.com/docs/send-data/hosted-collectors/http-source/logs-metrics/>,
//! `…/logs-metrics/upload-logs/`): `POST` to the source's unique URL
//! (`…/receiver/v1/http/<UniqueHTTPCollectorCode>`: the URL *is* the secret),
//! one log per line, at most 1 MB of uncompressed data per request
//! (100 KB–1 MB recommended), `Content-Encoding: gzip` accepted, metadata
//! headers `X-Sumo-Category`, `X-Sumo-Name`, `X-Sumo-Host` and
//! `X-Sumo-Fields: k=v,k2=v2`; answers 200 ok, 401 bad URL/token, 408
//! (accepted but timed out), 429 throttled, 503/504 server trouble.
//!
//! The URL never appears in status or logs: [`build`] sets the target to the
//! collector's origin with the path redacted, transport errors are
//! stripped of their URL, and a redirect's `Location` (a redirect to another
//! deployment names the same collector code) is shown by its origin alone.

use super::http_transport::{
    body_excerpt, client_for, default_classify, origin_of, posts, Compression, Encoded,
    EncodedRequest, Framing, HttpFormat, HttpResponse, HttpSettings, HttpSink, Limits, OwnHeader,
    Packer,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// "You may send batched requests up to but not exceeding 1MB of uncompressed data."
const LIMITS: Limits = Limits {
    max_entries: usize::MAX,
    max_bytes: 1_000_000,
    max_entry_bytes: 1_000_000,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    category: Option<String>,
    name: Option<String>,
    host: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

/// The Sumo Logic HTTP source wire format.
pub struct SumoLogic {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpFormat for SumoLogic {
    fn encode(&self, batch: &Batch) -> Encoded {
        let mut packer = Packer::new(Framing::Lines, LIMITS);
        for (i, ev) in batch.events.iter().enumerate() {
            packer.push(i, ev.body(), |n, request| {
                format!(
                    "event makes a request of {request} bytes alone (its {n} bytes and a \
                     newline), above the HTTP source's limit of {} bytes per request",
                    LIMITS.max_bytes
                )
            });
        }
        let (bodies, rejected) = packer.finish();
        let requests = posts(&self.url, &self.headers, bodies);
        Encoded { requests, rejected }
    }

    fn classify(&self, _req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        match resp.status {
            401 => Delivery::rejected(format!(
                "Sumo Logic answered 401: the HTTP source URL is not valid (regenerated or deleted \
                 source?); update `endpoint` ({})",
                body_excerpt(&resp.body)
            )),
            _ => default_classify("Sumo Logic", resp),
        }
    }

    /// The source URL is the secret.
    fn url_is_secret(&self) -> bool {
        true
    }
}

fn header(path: &str, key: &str, v: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(v).map_err(|_| {
        ConfigError::new(
            format!("{path}.{key}"),
            "contains characters not allowed in an HTTP header",
        )
    })
}

/// Builds a `sumo_logic` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::Gzip)?;
    let s: Settings = table_into(&table, &path)?;
    let mut headers = vec![(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    )];
    let mut own = vec![OwnHeader {
        name: "content-type",
        key: None,
    }];
    for (name, key, v) in [
        ("x-sumo-category", "`category`", &s.category),
        ("x-sumo-name", "`name`", &s.name),
        ("x-sumo-host", "`host`", &s.host),
    ] {
        if let Some(v) = v {
            let k = key.trim_matches('`');
            headers.push((HeaderName::from_static(name), header(&path, k, v)?));
            own.push(OwnHeader {
                name,
                key: Some(key),
            });
        }
    }
    if !s.fields.is_empty() {
        let mut parts = Vec::with_capacity(s.fields.len());
        for (k, v) in &s.fields {
            if k.is_empty() || k.contains([',', '=']) || v.contains([',', '=']) {
                return Err(ConfigError::new(
                    format!("{path}.fields.{k}"),
                    "field names must be non-empty and names and values may not contain ',' or '='",
                ));
            }
            parts.push(format!("{k}={v}"));
        }
        headers.push((
            HeaderName::from_static("x-sumo-fields"),
            header(&path, "fields", &parts.join(","))?,
        ));
        own.push(OwnHeader {
            name: "x-sumo-fields",
            key: Some("`fields`"),
        });
    }
    http.refuse_own_headers(ctx, &own)?;
    // the endpoint last: a bad one (left out to check the rest) does not
    // hide the section's other errors behind its `required`
    let client = client_for(&http, ctx)?;
    let endpoint = http.require_endpoint(ctx)?.to_string();
    let target = format!("{}/[path redacted]", origin_of(&endpoint));
    Ok(Arc::new(HttpSink::with_client(
        SumoLogic {
            url: endpoint,
            headers,
        },
        client,
        target,
    )))
}
