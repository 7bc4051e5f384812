//! `splunk_hec`: Splunk HTTP Event Collector.
//!
//! Verified against Splunk's "Format events for HTTP Event Collector"
//! (<https://help.splunk.com/splunk-enterprise/get-data-in/collect-http-event-data/format-events-for-http-event-collector>)
//! and "HTTP Event Collector REST API endpoints"
//! (<https://help.splunk.com/en/splunk-enterprise/get-data-in/collect-http-event-data/http-event-collector-rest-api-endpoints>):
//! `POST /services/collector/event` with `Authorization: Splunk <token>`, a
//! body of "stacked" JSON event objects `{"time": <epoch s.ms>, "host",
//! "source", "sourcetype", "index", "event"}` (`time` left out for an event
//! time before 1970 or after 2038-01-19T03:14:07Z, which HEC refuses or
//! cannot index: Splunk then takes the receive time, see `HEC_TIME_MS`); `/services/collector/ack`
//! queries indexing status for a request channel
//! (`X-Splunk-Request-Channel: <GUID>`); `/services/collector/health/1.0`
//! answers 200 healthy, 400 invalid token, 503 queues full. Error answers
//! carry `{"text": …, "code": N}` (codes 0–14, HEC status-code table).
//!
//! The canonical event JSON is spliced as `event`, so searches see its fields
//! (`event.action`, `event.actor.id`, …) without re-serialising. With
//! `ack = true` a batch counts as delivered only once the indexers
//! acknowledge it; until `ack_timeout` it is retried (at-least-once).

use super::http_transport::{
    body_excerpt, client_for, default_classify, local_hostname, not_the_documented_success,
    origin_of, retry_after, secret_header, Compression, Encoded, EncodedRequest, Framing,
    HttpClient, HttpFormat, HttpResponse, HttpSettings, HttpSink, Limits, OwnHeader, Packer,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError, HumanDuration};
use crate::event::json_writer;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNEL: HeaderName = HeaderName::from_static("x-splunk-request-channel");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    token: String,
    /// `host` of every event (default: this machine's host name).
    host: Option<String>,
    #[serde(default = "default_source")]
    source: String,
    #[serde(default = "default_sourcetype")]
    sourcetype: String,
    index: Option<String>,
    /// Wait for indexer acknowledgement before counting a batch delivered.
    #[serde(default)]
    ack: bool,
    ack_timeout: Option<HumanDuration>,
    ack_interval: Option<HumanDuration>,
}

fn default_source() -> String {
    "siem-relay".into()
}
fn default_sourcetype() -> String {
    "siem-relay:audit".into()
}

#[derive(Debug, Clone, Copy)]
struct AckSettings {
    timeout: Duration,
    interval: Duration,
}

/// The HEC wire format.
#[derive(Debug)]
pub struct SplunkHec {
    event_url: String,
    ack_url: String,
    health_url: String,
    auth: HeaderValue,
    channel: HeaderValue,
    /// `,"host":…,"source":…,"sourcetype":…[,"index":…],"event":` (JSON-escaped
    /// once; it starts with the `,`, left out when there is no `time`).
    envelope: String,
    ack: Option<AckSettings>,
    /// Batches accepted without an `ackId` under `ack = true`: when the
    /// last warning of them was written, and how many came since.
    unconfirmed: std::sync::Mutex<(Option<Instant>, u64)>,
}

/// At most one warning this often about batches accepted without an ackId.
const UNCONFIRMED_WARN_EVERY: Duration = Duration::from_secs(60);

/// `{"text": …, "code": N, "ackId": N}`.
#[derive(Debug, Deserialize)]
struct HecAnswer {
    text: Option<String>,
    code: Option<i64>,
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
    /// The request's event (0-based) Splunk could not take.
    #[serde(rename = "invalid-event-number")]
    invalid_event: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct AckAnswer {
    acks: HashMap<String, bool>,
}

/// The event times (epoch milliseconds) HEC takes as `time`: none before
/// 1970, as HEC refuses a negative `time` with code 6 (Invalid data format),
/// which dead-lettered an event every other destination delivers; and none
/// after 2038-01-19T03:14:07.999Z, since Splunk keeps `_time` as 32-bit
/// epoch seconds ("events after 2038 cannot be indexed", Splunk's
/// "Configure timestamp recognition",
/// <https://docs.splunk.com/Documentation/Splunk/9.0.4/Data/Configuretimestamprecognition>).
/// An event time outside leaves `time` out of the envelope: Splunk then
/// uses the time it receives the event, and the event's own `timestamp`
/// is still in its JSON.
const HEC_TIME_MS: std::ops::RangeInclusive<i64> = 0..=(i32::MAX as i64) * 1000 + 999;

/// Writes `time` in epoch seconds with milliseconds (`1433188255.500`;
/// before 1970, `-0.001` for a millisecond before).
fn push_epoch_secs(out: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        out.push(b'-');
    }
    let ms = ms.unsigned_abs();
    json_writer::uint(out, ms / 1000);
    let frac = (ms % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl SplunkHec {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, self.auth.clone());
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.ack.is_some() {
            h.insert(CHANNEL, self.channel.clone());
        }
        h
    }

    /// Polls `/services/collector/ack` every `ack.interval` until `ack_id`
    /// is acknowledged or the timeout has passed, the last poll at the
    /// timeout itself.
    async fn wait_for_ack(&self, client: &HttpClient, ack_id: u64, ack: AckSettings) -> Delivery {
        let deadline = Instant::now() + ack.timeout;
        let body = Bytes::from(format!("{{\"acks\":[{ack_id}]}}"));
        loop {
            let last = match client
                .to_destination(Method::POST, &self.ack_url, self.headers(), body.clone())
                .await
            {
                Ok(resp) if resp.status == 200 => {
                    match serde_json::from_slice::<AckAnswer>(&resp.body) {
                        Ok(a) if a.acks.get(&ack_id.to_string()) == Some(&true) => {
                            return Delivery::Delivered
                        }
                        Ok(_) => "not yet indexed".to_string(),
                        Err(_) => format!("unreadable ack answer: {}", body_excerpt(&resp.body)),
                    }
                }
                Ok(resp) => format!(
                    "ack query answered {}: {}",
                    resp.status,
                    body_excerpt(&resp.body)
                ),
                Err(e) => format!("ack query failed: {e}"),
            };
            // the last poll is at the deadline: an ack that comes in the
            // last interval is not missed (which sent the batch twice)
            let now = Instant::now();
            if now >= deadline {
                return Delivery::retry(format!(
                    "Splunk HEC did not acknowledge indexing of ackId {ack_id} within {:?} ({last})",
                    ack.timeout
                ));
            }
            tokio::time::sleep(ack.interval.min(deadline - now)).await;
        }
    }
}

impl HttpFormat for SplunkHec {
    fn encode(&self, batch: &Batch) -> Encoded {
        // HEC takes any number of stacked objects; a 413 is bisected by the transport.
        let mut packer = Packer::new(Framing::Lines, Limits::NONE);
        let mut e = Vec::new();
        for (i, ev) in batch.events.iter().enumerate() {
            e.clear();
            let ts = ev.meta.timestamp_ms;
            if HEC_TIME_MS.contains(&ts) {
                e.extend_from_slice(b"{\"time\":");
                push_epoch_secs(&mut e, ts);
                e.extend_from_slice(self.envelope.as_bytes());
            } else {
                // a `time` HEC refuses (or cannot index): none, see `HEC_TIME_MS`
                e.push(b'{');
                e.extend_from_slice(&self.envelope.as_bytes()[1..]);
            }
            e.extend_from_slice(ev.body());
            e.push(b'}');
            packer.push(i, &e, |_, _| String::new());
        }
        let (bodies, rejected) = packer.finish();
        let requests = bodies
            .into_iter()
            .map(|(body, indices)| EncodedRequest {
                method: Method::POST,
                url: self.event_url.clone(),
                headers: self
                    .headers()
                    .into_iter()
                    .filter_map(|(k, v)| Some((k?, v)))
                    .collect(),
                body,
                indices,
            })
            .collect();
        Encoded { requests, rejected }
    }

    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        let answer: Option<HecAnswer> = serde_json::from_slice(&resp.body).ok();
        let code = answer.as_ref().and_then(|a| a.code);
        let invalid = answer.as_ref().and_then(|a| a.invalid_event);
        if resp.status == 200 && code == Some(0) {
            return Delivery::Delivered;
        }
        // HEC answers success as 200 `{"text":"Success","code":0}`: another
        // 2xx, or one without its code (an empty body, a web page), is not
        // the HEC's, and counted as delivered it lost the batch
        if (200..300).contains(&resp.status) && code.is_none_or(|c| c == 0) {
            return not_the_documented_success(
                "Splunk HEC",
                r#"200 {"text":"Success","code":0}"#,
                resp,
                "is `endpoint` the HTTP Event Collector's (port 8088 by default)?",
            );
        }
        let Some(code) = code else {
            return default_classify("Splunk HEC", resp);
        };
        let text = answer.and_then(|a| a.text).unwrap_or_default();
        let why = |hint: &str| {
            format!(
                "Splunk HEC answered {} code {code} \"{text}\": {hint}",
                resp.status
            )
        };
        match code {
            1 => Delivery::rejected(why("the HEC token is disabled; enable it in Splunk")),
            2 | 3 => Delivery::rejected(why("check `token` (sent as `Authorization: Splunk <token>`)")),
            4 => Delivery::rejected(why("the HEC token is not known to Splunk; check `token`")),
            // one event's data: HEC discards the whole request, so the
            // others go again without it (not to the dead letters with it)
            6 | 12 | 13 if invalid.is_some_and(|n| n < req.indices.len()) && req.indices.len() > 1 => {
                let n = invalid.expect("checked");
                Delivery::Partial {
                    retry: (0..req.indices.len()).filter(|&i| i != n).collect(),
                    rejected: vec![(n, why("Splunk refused this event's data"))],
                    after: None,
                    // not judged: sent again without the refused event
                    retry_reason: None,
                }
            }
            5 | 6 | 12 | 13 => Delivery::rejected(why("Splunk refused the event data")),
            7 => Delivery::rejected(why("the token may not write to `index`; allow the index on the token or change `index`")),
            10 | 11 => Delivery::rejected(why("request channel refused; check that the token's indexer acknowledgement matches `ack`")),
            14 => Delivery::rejected(why("indexer acknowledgement is disabled on this token: set `ack = false` or enable it")),
            // (a retry is the loop's to tell: `test-destination` makes none)
            8 | 9 => Delivery::Retry {
                reason: why("Splunk is busy or failing"),
                after: retry_after(&resp.headers),
            },
            _ => default_classify("Splunk HEC", resp),
        }
    }

    fn confirm<'a>(
        &'a self,
        client: &'a HttpClient,
        _req: &'a EncodedRequest,
        resp: &'a HttpResponse,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let Some(ack) = self.ack else {
                return Delivery::Delivered;
            };
            let ack_id = serde_json::from_slice::<HecAnswer>(&resp.body)
                .ok()
                .and_then(|a| a.ack_id);
            match ack_id {
                Some(id) => self.wait_for_ack(client, id, ack).await,
                None => {
                    // Accepted (200, code 0) but with no ackId: the token
                    // has indexer acknowledgement off, so indexing cannot
                    // be confirmed, and sending again would only store the
                    // batch twice. It counts as delivered on the 200, as
                    // with `ack = false`; said at most once a minute.
                    let mut u = self.unconfirmed.lock().unwrap();
                    u.1 += 1;
                    if u.0.is_none_or(|t| t.elapsed() >= UNCONFIRMED_WARN_EVERY) {
                        tracing::warn!(
                            batches = u.1,
                            "Splunk HEC accepted batches without an ackId although ack = true: \
                             they count as delivered on Splunk's 200, unconfirmed; enable indexer \
                             acknowledgement on the token (or set ack = false)"
                        );
                        *u = (Some(Instant::now()), 0);
                    }
                    Delivery::Delivered
                }
            }
        })
    }

    fn health<'a>(
        &'a self,
        client: &'a HttpClient,
    ) -> BoxFuture<'a, Option<Result<String, String>>> {
        Box::pin(async move {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, self.auth.clone());
            let answer = match client
                .to_destination(Method::GET, &self.health_url, h, Bytes::new())
                .await
            {
                Ok(r) => r,
                Err(e) => return Some(Err(format!("HEC health check failed: {e}"))),
            };
            Some(match answer.status {
                200 => Ok("HEC is healthy".to_string()),
                400 => Err("HEC health check: invalid token".to_string()),
                503 => Err("HEC is unhealthy: queues are full".to_string()),
                s => Err(format!(
                    "HEC health check answered {s}: {}",
                    body_excerpt(&answer.body)
                )),
            })
        })
    }
}

/// Builds a `splunk_hec` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::None)?;
    let s: Settings = table_into(&table, &path)?;
    let host = s.host.unwrap_or_else(local_hostname);
    let mut envelope = format!(
        ",\"host\":{},\"source\":{},\"sourcetype\":{}",
        json_str(&host),
        json_str(&s.source),
        json_str(&s.sourcetype)
    );
    if let Some(index) = &s.index {
        envelope.push_str(&format!(",\"index\":{}", json_str(index)));
    }
    envelope.push_str(",\"event\":");
    let ack = s.ack.then(|| AckSettings {
        timeout: s
            .ack_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(60)),
        interval: s
            .ack_interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(1)),
    });
    if let Some(a) = ack {
        if a.interval.is_zero() || a.interval > a.timeout {
            return Err(ConfigError::new(
                format!("{path}.ack_interval"),
                "must be more than 0 and at most ack_timeout",
            ));
        }
    }
    // (after the keys with defaults: an empty token's stand-in is empty
    // too, which ends the checks)
    if s.token.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{path}.token"),
            "must not be empty",
        ));
    }
    let auth = secret_header(&format!("Splunk {}", s.token.trim()))
        .map_err(|m| ConfigError::new(format!("{path}.token"), m))?;
    let mut own = vec![
        OwnHeader {
            name: "authorization",
            key: Some("`token`"),
        },
        OwnHeader {
            name: "content-type",
            key: None,
        },
    ];
    if ack.is_some() {
        own.push(OwnHeader {
            name: "x-splunk-request-channel",
            key: None,
        });
    }
    http.refuse_own_headers(ctx, &own)?;
    // the endpoint last: a bad one (left out to check the rest) does not
    // hide the section's other errors behind its `required`
    let client = client_for(&http, ctx)?;
    let endpoint = http.require_base(ctx)?.to_string();
    let channel = uuid::Uuid::new_v4().to_string();
    let format = SplunkHec {
        event_url: format!("{endpoint}/services/collector/event"),
        ack_url: format!("{endpoint}/services/collector/ack?channel={channel}"),
        health_url: format!("{endpoint}/services/collector/health/1.0"),
        auth,
        channel: HeaderValue::from_str(&channel)
            .map_err(|e| ConfigError::new(&path, e.to_string()))?,
        envelope,
        ack,
        unconfirmed: Default::default(),
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

    #[test]
    fn epoch_seconds_keep_milliseconds() {
        let secs = |ms: i64| {
            let mut out = Vec::new();
            push_epoch_secs(&mut out, ms);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(secs(1_433_188_255_500), "1433188255.500");
        assert_eq!(secs(1_433_188_255_001), "1433188255.001");
        assert_eq!(secs(5), "0.005");
        assert_eq!(secs(0), "0.000");
        assert_eq!(secs(-1), "-0.001");
        assert_eq!(secs(-1_500), "-1.500");
        assert_eq!(secs(i64::MIN), "-9223372036854775.808");
        assert_eq!(secs(i64::MAX), "9223372036854775.807");
        // the same number a JSON reader gets from the milliseconds
        for ms in [-86_400_001i64, -999, 999, 1_764_878_400_123] {
            let v: f64 = secs(ms).parse().unwrap();
            assert!((v * 1000.0 - ms as f64).abs() < 0.5, "{ms}");
        }
    }
}
