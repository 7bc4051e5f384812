//! `datadog`: Datadog logs intake v2.
//!
//! Verified against Datadog's "Send logs" API reference
//! (<https://docs.datadoghq.com/api/latest/logs/send-logs/>):
//! `POST https://http-intake.logs.<site>/api/v2/logs` with `DD-API-KEY`, a
//! JSON array of log items (`ddsource`, `ddtags`, `hostname`, `message`,
//! `service`); per request at most 5 MB uncompressed, 1000 entries, and 1 MB
//! per log (larger logs are *truncated* with a 2xx); gzip recommended
//! (`Content-Encoding: gzip`); answers 202 accepted, 400 bad payload, 401
//! missing key, 403 invalid key, 408 timeout, 413 above 5 MB, 429 throttled,
//! 5xx retry later.
//!
//! `message` carries the canonical event JSON *as a string*: the reference
//! types `message` as a string, and Datadog's log pipeline parses a
//! JSON-formatted message into attributes (its `timestamp` becomes the log
//! date), so facets work while the payload stays within the documented schema.
//!
//! Batches are split to honour the limits; an event above 1 MB is refused
//! (dead-lettered intact, with the reason) instead of being truncated by the
//! intake. 401/403 are rejected, not retried: every retry would fail the same
//! way until the key is fixed, and retrying forever would stall this
//! destination and, under `when_full = "drop_oldest"`, lose the events
//! unrecorded, while dead letters keep them for replay and show the problem.
//! (`endpoint`, when set, replaces `https://http-intake.logs.<site>`; one
//! that already ends with `/api/v2/logs`, the documented intake URL, is
//! used as it is.)

use super::http_transport::{
    body_excerpt, client_for, default_classify, local_hostname, origin_of, posts, secret_header,
    Compression, Encoded, EncodedRequest, Framing, HttpFormat, HttpResponse, HttpSettings,
    HttpSink, Limits, OwnHeader, Packer,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use crate::event::json_writer;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::sync::Arc;

/// Datadog's documented limits (decimal MB, the conservative reading).
const LIMITS: Limits = Limits {
    max_entries: 1000,
    max_bytes: 5_000_000,
    max_entry_bytes: 1_000_000,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    api_key: String,
    #[serde(default = "default_site")]
    site: String,
    #[serde(default = "default_name")]
    ddsource: String,
    #[serde(default = "default_name")]
    service: String,
    /// Comma-separated `key:value` tags.
    ddtags: Option<String>,
    /// Default: this machine's host name.
    hostname: Option<String>,
}

fn default_site() -> String {
    "datadoghq.com".into()
}
fn default_name() -> String {
    "siem-relay".into()
}

/// The Datadog logs wire format.
#[derive(Debug)]
pub struct Datadog {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `{"ddsource":…,"ddtags":…,"hostname":…,"service":…,"message":`
    prefix: String,
}

impl Datadog {
    /// One log item: the prefix, the record body as a JSON string (invalid
    /// UTF-8 replaced by U+FFFD, as `String::from_utf8_lossy` does), `}`.
    /// The body is JSON text, a quote every few bytes: written by
    /// [`json_writer::string_dense`], and checked as UTF-8 by simdutf8
    /// (`from_utf8_lossy` checked it a byte at a time).
    fn entry(&self, body: &[u8], out: &mut Vec<u8>) {
        out.reserve(self.prefix.len() + body.len() + body.len() / 4 + 16);
        out.extend_from_slice(self.prefix.as_bytes());
        match simdutf8::basic::from_utf8(body) {
            Ok(text) => json_writer::string_dense(out, text),
            Err(_) => json_writer::string_dense(out, &String::from_utf8_lossy(body)),
        }
        out.push(b'}');
    }
}

impl HttpFormat for Datadog {
    fn encode(&self, batch: &Batch) -> Encoded {
        let mut packer = Packer::new(Framing::JsonArray, LIMITS);
        let mut entry = Vec::new();
        for (i, ev) in batch.events.iter().enumerate() {
            entry.clear();
            self.entry(ev.body(), &mut entry);
            packer.push(i, &entry, |n, _| {
                format!(
                    "event is {n} bytes as a Datadog log, above the per-log limit of {} bytes \
                     (Datadog would truncate it); kept whole in the dead letters instead",
                    LIMITS.max_entry_bytes
                )
            });
        }
        let (bodies, rejected) = packer.finish();
        let requests = posts(&self.url, &self.headers, bodies);
        Encoded { requests, rejected }
    }

    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        let body = body_excerpt(&resp.body);
        match resp.status {
            200..=299 => Delivery::Delivered,
            400 => Delivery::rejected(format!("Datadog refused the payload (400): {body}")),
            401 => Delivery::rejected(format!(
                "Datadog answered 401 (API key missing): set `api_key`; events are dead-lettered until then ({body})"
            )),
            403 => Delivery::rejected(format!(
                "Datadog answered 403 (API key invalid for this site): check `api_key` and `site`; \
                 events are dead-lettered until then ({body})"
            )),
            // not halved further (a single event): requests are packed
            // within the 5 MB, so a 413 is seldom Datadog's, and the
            // reason says what the request was
            413 => Delivery::rejected(super::http_transport::refused_as_too_large(
                "Datadog",
                req,
                resp,
                Some(LIMITS.max_bytes),
            )),
            _ => default_classify("Datadog", resp),
        }
    }
}

/// The intake path, appended to a base URL.
const INTAKE_PATH: &str = "/api/v2/logs";

/// The logs intake URL of `base`: a base URL (a site's, a proxy's) with
/// [`INTAKE_PATH`] appended to its path, or, when its path already ends
/// with it (the full intake URL, as Datadog documents it), `base` as it is.
fn intake_url(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut u) => {
            let path = u.path().trim_end_matches('/').to_string();
            if !path.ends_with(INTAKE_PATH) {
                u.set_path(&format!("{path}{INTAKE_PATH}"));
            }
            u.to_string()
        }
        // validated as a URL already: not reached
        Err(_) => format!("{base}{INTAKE_PATH}"),
    }
}

/// Builds a `datadog` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::Gzip)?;
    let s: Settings = table_into(&table, &path)?;
    let base = match &http.endpoint {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => {
            let site = s.site.trim().trim_start_matches("app.");
            if site.is_empty() || site.contains(['/', ':', ' ']) {
                return Err(ConfigError::new(
                    format!("{path}.site"),
                    "a Datadog site such as \"datadoghq.com\" or \"datadoghq.eu\"",
                ));
            }
            format!("https://http-intake.logs.{site}")
        }
    };
    http.refuse_own_headers(
        ctx,
        &[
            OwnHeader {
                name: "dd-api-key",
                key: Some("`api_key`"),
            },
            OwnHeader {
                name: "content-type",
                key: None,
            },
        ],
    )?;
    let client = client_for(&http, ctx)?;
    // last: an empty api_key's stand-in (once it is left out to check the
    // rest) is empty too, which ends the checks
    if s.api_key.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{path}.api_key"),
            "must not be empty",
        ));
    }
    let key = secret_header(s.api_key.trim())
        .map_err(|m| ConfigError::new(format!("{path}.api_key"), m))?;
    let json = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    let mut prefix = format!("{{\"ddsource\":{}", json(&s.ddsource));
    if let Some(tags) = &s.ddtags {
        prefix.push_str(&format!(",\"ddtags\":{}", json(tags)));
    }
    prefix.push_str(&format!(
        ",\"hostname\":{},\"service\":{},\"message\":",
        json(&s.hostname.unwrap_or_else(local_hostname)),
        json(&s.service)
    ));
    let format = Datadog {
        url: intake_url(&base),
        headers: vec![
            (HeaderName::from_static("dd-api-key"), key),
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        prefix,
    };
    Ok(Arc::new(HttpSink::with_client(
        format,
        client,
        origin_of(&base),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder before it wrote the body straight into the entry: a
    /// `serde_json::Value::String` of a lossy UTF-8 copy, `to_string()`ed.
    fn reference_entry(prefix: &str, body: &[u8]) -> Vec<u8> {
        let message = serde_json::Value::String(String::from_utf8_lossy(body).into_owned());
        let mut e = Vec::new();
        e.extend_from_slice(prefix.as_bytes());
        e.extend_from_slice(message.to_string().as_bytes());
        e.push(b'}');
        e
    }

    fn datadog() -> Datadog {
        Datadog {
            url: String::new(),
            headers: vec![],
            prefix: "{\"ddsource\":\"s\",\"hostname\":\"h\",\"service\":\"s\",\"message\":".into(),
        }
    }

    #[test]
    fn entries_match_the_serde_reference_on_tricky_bodies() {
        let dd = datadog();
        let mut bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"{}".to_vec(),
            br#"{"event_id":"a","message":"quote \" backslash \\ slash / tab\t"}"#.to_vec(),
            "{\"m\":\"caf\u{e9} \u{1F600} \u{2028}\u{2029} \u{7f} \u{fffd}\"}"
                .as_bytes()
                .to_vec(),
            // Raw control bytes, every one of them, and high bytes.
            (0u8..0x20).chain([b'"', b'\\', 0x7f]).collect(),
            // Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate.
            vec![
                b'{', 0x80, b'x', 0xe2, 0x82, b'y', 0xc0, 0xaf, 0xed, 0xa0, 0x80, b'}',
            ],
            vec![0xff; 3],
        ];
        // Long bodies cross the escaper's 8/16-byte fast paths at every offset.
        for n in 0..40 {
            let mut b = vec![b'a'; n];
            b.push(b'"');
            b.extend(vec![b'b'; n % 9]);
            b.push(0x01);
            bodies.push(b);
        }
        for body in bodies {
            let mut got = Vec::new();
            dd.entry(&body, &mut got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&reference_entry(&dd.prefix, &body)),
                "body {body:?}"
            );
            assert_eq!(got, reference_entry(&dd.prefix, &body));
        }
    }

    proptest::proptest! {
        #[test]
        fn entries_match_the_serde_reference_on_any_bytes(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            text in proptest::prelude::any::<String>(),
        ) {
            let dd = datadog();
            for body in [body, text.into_bytes()] {
                let mut got = Vec::new();
                dd.entry(&body, &mut got);
                proptest::prop_assert_eq!(got, reference_entry(&dd.prefix, &body));
            }
        }
    }
}
