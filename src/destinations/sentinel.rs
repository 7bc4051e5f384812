//! `sentinel`: Microsoft Sentinel through the Azure Monitor Logs Ingestion API.
//!
//! Verified against "Logs Ingestion API in Azure Monitor"
//! (<https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview>),
//! its REST reference (Ingestion – Upload, api-version 2023-01-01) and the
//! service limits (<https://learn.microsoft.com/azure/azure-monitor/service-limits#logs-ingestion-api>):
//! `POST {endpoint}/dataCollectionRules/{dcrImmutableId}/streams/{stream}?api-version=2023-01-01`,
//! `Authorization: Bearer <token>` for scope `https://monitor.azure.com/.default`
//! (client-credentials flow at `{authority}/{tenant}/oauth2/v2.0/token`),
//! `Content-Type: application/json`, optional `Content-Encoding: gzip`, a body
//! that is a JSON **array** of records (a bare object is answered 204 but
//! ingests nothing), at most 1 MB per call; 204 on success, 403 when the
//! principal lacks the "Monitoring Metrics Publisher" role on the DCR, 413 too
//! large, 429/503 with `Retry-After`.
//!
//! Columns: every record is the canonical event with its fields at the top
//! level (`event_id`, `category`, `action`, `severity`, `actor`, `resource`,
//! … — nested objects become `dynamic` columns) plus `TimeGenerated`, the event
//! time in RFC 3339, which every Log Analytics table requires. Splicing the
//! canonical JSON keeps the stream declaration of the DCR equal to the
//! documented event schema, so a DCR transformation (or none, for a
//! `Custom-…_CL` table with those columns) maps it without relay changes.
//!
//! The token is cached until 5 minutes before `expires_in` and refreshed at
//! once when the API answers 401 (one retry with a fresh token).

use super::http_transport::{
    body_excerpt, client_for, default_classify, is_retryable_status, not_the_documented_success,
    origin_of, posts, retry_after, secret_header, AuthFailure, Compression, Encoded,
    EncodedRequest, Framing, HttpClient, HttpFormat, HttpResponse, HttpSettings, HttpSink, Limits,
    OwnHeader, Packer,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use crate::event::push_rfc3339_millis;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// 1 MB per call (decimal: the conservative reading of the documented
/// limit), a call of exactly 1,000,000 bytes included.
const LIMITS: Limits = Limits {
    max_entries: usize::MAX,
    max_bytes: 1_000_000,
    max_entry_bytes: 1_000_000,
};

/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    dcr_immutable_id: String,
    stream: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    #[serde(default = "default_authority")]
    authority: String,
    #[serde(default = "default_scope")]
    scope: String,
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_scope() -> String {
    "https://monitor.azure.com/.default".into()
}

#[derive(Debug, Clone)]
struct Token {
    header: HeaderValue,
    renew_at: Instant,
}

/// The Logs Ingestion wire format with its OAuth2 token cache (no `Debug`:
/// it holds the client secret).
pub struct Sentinel {
    url: String,
    token_url: String,
    /// `client_id=…&client_secret=…&grant_type=client_credentials&scope=…`
    token_form: String,
    /// The cached token (short critical sections only).
    token: std::sync::Mutex<Option<Token>>,
    /// Serialises token requests so concurrent sends fetch one token, not several.
    fetching: Mutex<()>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// A number, or a string on some endpoints.
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

impl Sentinel {
    /// A token from the Microsoft identity platform. Its 400 and 401
    /// (`invalid_client`, an unknown tenant, a bad scope) are
    /// [`AuthFailure::Refused`]; 429 and 5xx, and no answer, are
    /// [`AuthFailure::Unavailable`].
    async fn fetch_token(&self, client: &HttpClient) -> Result<Token, AuthFailure> {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let resp = client
            .raw(
                Method::POST,
                &self.token_url,
                h,
                Bytes::from(self.token_form.clone()),
            )
            .await
            .map_err(|e| AuthFailure::Unavailable {
                reason: format!(
                    "token request to {} failed: {e}",
                    origin_of(&self.token_url)
                ),
                after: None,
            })?;
        if resp.status != 200 {
            let detail = match serde_json::from_slice::<TokenError>(&resp.body) {
                Ok(e) => format!(
                    "{}: {}",
                    e.error.unwrap_or_default(),
                    e.error_description.unwrap_or_default()
                ),
                Err(_) => body_excerpt(&resp.body),
            };
            // a busy or unavailable endpoint says nothing of the credentials
            // (and a retry is the loop's to tell: `test-destination` makes none)
            let advice = if is_retryable_status(resp.status) {
                "busy or unavailable, not a refusal of the credentials"
            } else {
                "check tenant_id, client_id, client_secret and scope"
            };
            let reason = format!(
                "token endpoint answered {} ({detail}); {advice}",
                resp.status
            );
            return Err(if is_retryable_status(resp.status) {
                AuthFailure::Unavailable {
                    reason,
                    after: retry_after(&resp.headers),
                }
            } else {
                AuthFailure::Refused(reason)
            });
        }
        let unavailable = |reason: String| AuthFailure::Unavailable {
            reason,
            after: None,
        };
        let answer: TokenAnswer = serde_json::from_slice(&resp.body)
            .map_err(|e| unavailable(format!("unreadable token answer: {e}")))?;
        let secs = match answer.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let header = secret_header(&format!("Bearer {}", answer.access_token))
            .map_err(|m| unavailable(format!("token unusable as a header: {m}")))?;
        Ok(Token {
            header,
            renew_at: Instant::now() + Duration::from_secs(secs).saturating_sub(TOKEN_MARGIN),
        })
    }

    fn cached_token(&self) -> Option<HeaderValue> {
        let cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .filter(|t| Instant::now() < t.renew_at)
            .map(|t| t.header.clone())
    }

    fn azure_error(resp: &HttpResponse) -> String {
        let v: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
        let msg = v.as_ref().and_then(|v| v.get("error")).map(|e| {
            format!(
                "{}: {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or(""),
                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
            )
        });
        msg.unwrap_or_else(|| body_excerpt(&resp.body))
    }
}

/// One record: the body with `"TimeGenerated":"<event time>"` spliced in
/// as its first field.
fn push_row(out: &mut Vec<u8>, timestamp_ms: i64, body: &[u8]) {
    out.reserve(body.len() + 48);
    out.extend_from_slice(b"{\"TimeGenerated\":\"");
    push_rfc3339_millis(out, timestamp_ms);
    out.push(b'"');
    if body.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(body.get(1..).unwrap_or(b"}"));
}

impl HttpFormat for Sentinel {
    fn encode(&self, batch: &Batch) -> Encoded {
        let mut packer = Packer::new(Framing::JsonArray, LIMITS);
        let mut row = Vec::new();
        for (i, ev) in batch.events.iter().enumerate() {
            row.clear();
            push_row(&mut row, ev.meta.timestamp_ms, ev.body());
            packer.push(i, &row, |n, call| {
                format!(
                    "event makes a call of {call} bytes alone (a record of {n} bytes in the \
                     array's brackets), above the Logs Ingestion API's limit of {} bytes per call",
                    LIMITS.max_bytes
                )
            });
        }
        let (bodies, rejected) = packer.finish();
        let json = [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        let requests = posts(&self.url, &json, bodies);
        Encoded { requests, rejected }
    }

    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        match resp.status {
            204 => Delivery::Delivered,
            // the Logs Ingestion API answers 204 on success and nothing
            // else: another 2xx comes from something that is not it
            200..=299 => not_the_documented_success(
                "the Logs Ingestion API",
                "204 No Content",
                resp,
                "is `endpoint` the data collection endpoint (or the DCR's logs ingestion endpoint)?",
            ),
            401 => Delivery::rejected(format!(
                "Azure Monitor refused a fresh token (401 {}): check `scope` (sovereign clouds use \
                 monitor.azure.us / monitor.azure.cn) and tenant_id",
                Self::azure_error(resp)
            )),
            403 => Delivery::rejected(format!(
                "Azure Monitor answered 403 ({}): the app registration needs the \"Monitoring Metrics \
                 Publisher\" role on the data collection rule",
                Self::azure_error(resp)
            )),
            404 => Delivery::rejected(format!(
                "Azure Monitor answered 404 ({}): check endpoint, dcr_immutable_id and stream",
                Self::azure_error(resp)
            )),
            413 => Delivery::rejected(super::http_transport::refused_as_too_large(
                "Azure Monitor",
                req,
                resp,
                Some(LIMITS.max_bytes),
            )),
            400 => Delivery::rejected(format!(
                "Azure Monitor refused the records (400 {})",
                Self::azure_error(resp)
            )),
            _ => default_classify("Azure Monitor", resp),
        }
    }

    fn authorize<'a>(
        &'a self,
        client: &'a HttpClient,
    ) -> BoxFuture<'a, Result<Option<HeaderValue>, AuthFailure>> {
        Box::pin(async move {
            if let Some(h) = self.cached_token() {
                return Ok(Some(h));
            }
            let _fetching = self.fetching.lock().await;
            // Another send may have fetched one while this one waited.
            if let Some(h) = self.cached_token() {
                return Ok(Some(h));
            }
            let token = self.fetch_token(client).await?;
            let header = token.header.clone();
            *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
            Ok(Some(header))
        })
    }

    fn invalidate(&self) -> bool {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        true
    }
}

/// Percent-encodes a URL path segment.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Builds a `sentinel` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::None)?;
    let s: Settings = table_into(&table, &path)?;
    let authority = super::http_transport::validate_endpoint(&s.authority)
        .map_err(|m| ConfigError::new(format!("{path}.authority"), m))?
        .trim_end_matches('/')
        .to_string();
    // (after the keys with defaults: an empty one's stand-in is empty too,
    // which ends the checks)
    for (key, v) in [
        ("dcr_immutable_id", &s.dcr_immutable_id),
        ("stream", &s.stream),
        ("tenant_id", &s.tenant_id),
        ("client_id", &s.client_id),
        ("client_secret", &s.client_secret),
        ("scope", &s.scope),
    ] {
        if v.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{path}.{key}"),
                "must not be empty",
            ));
        }
    }
    let token_form = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", s.client_id.trim())
        .append_pair("client_secret", &s.client_secret)
        .append_pair("grant_type", "client_credentials")
        .append_pair("scope", s.scope.trim())
        .finish();
    http.refuse_own_headers(
        ctx,
        &[
            OwnHeader {
                name: "authorization",
                key: Some(
                    "`tenant_id`, `client_id` and `client_secret` (the OAuth token they get)",
                ),
            },
            OwnHeader {
                name: "content-type",
                key: None,
            },
        ],
    )?;
    // the endpoint last: a bad one (left out to check the rest) does not
    // hide the section's other errors behind its `required`
    let client = client_for(&http, ctx)?;
    let endpoint = http.require_base(ctx)?.to_string();
    let format = Sentinel {
        url: format!(
            "{endpoint}/dataCollectionRules/{}/streams/{}?api-version=2023-01-01",
            path_segment(s.dcr_immutable_id.trim()),
            path_segment(s.stream.trim())
        ),
        token_url: format!(
            "{authority}/{}/oauth2/v2.0/token",
            path_segment(s.tenant_id.trim())
        ),
        token_form,
        token: std::sync::Mutex::new(None),
        fetching: Mutex::new(()),
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
    use crate::event::format_rfc3339_millis;

    /// The row before it was written without `format!` and a `String` timestamp.
    fn reference_row(timestamp_ms: i64, body: &[u8]) -> Vec<u8> {
        let ts = format_rfc3339_millis(timestamp_ms);
        let mut row = Vec::with_capacity(body.len() + 48);
        row.extend_from_slice(format!("{{\"TimeGenerated\":\"{ts}\"").as_bytes());
        if body.len() > 2 {
            row.push(b',');
        }
        row.extend_from_slice(body.get(1..).unwrap_or(b"}"));
        row
    }

    #[test]
    fn rows_match_the_reference() {
        let day = 86_400_000i64;
        let times = [
            1_709_683_199_999,
            1_709_683_200_000,
            0,
            -1,
            -day - 1,
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000,
            i64::MAX,
            i64::MIN,
        ];
        let bodies: [&[u8]; 7] = [
            b"",
            b"{",
            b"{}",
            b"{\"a\":1}",
            br#"{"event_id":"caf\u00e9","m":"\"\\"}"#,
            b"[1,2]",
            &[b'{', 0xff, b'}'],
        ];
        for &t in &times {
            for body in bodies {
                let mut got = Vec::new();
                push_row(&mut got, t, body);
                assert_eq!(got, reference_row(t, body), "{t} {body:?}");
            }
        }
    }
}
