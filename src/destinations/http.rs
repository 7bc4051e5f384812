//! `http`: any HTTP endpoint (webhooks, collectors without a dedicated format).
//!
//! No vendor document applies; the body shapes follow the common conventions
//! of JSON over HTTP (RFC 8259 arrays, `application/json`) and NDJSON
//! (<https://github.com/ndjson/ndjson-spec>, `application/x-ndjson`).
//!
//! - `body = "json_array"` (default): `[event, event, …]`
//! - `body = "ndjson"`: one event per line
//! - `body = "single"`: one request per event, the event as the body
//! - any other string is a template that must contain `{{events}}`, replaced
//!   by the JSON array of the batch, e.g. `{"records": {{events}} }`.
//!
//! `method` defaults to POST; auth is `bearer_token`, `basic = { username,
//! password }`, or any custom header in `headers`. The default classification
//! applies: 2xx delivered, 408/429/5xx (except 501) retried after
//! `Retry-After`, other statuses rejected.

use super::http_transport::{
    basic_auth, client_for, default_classify, origin_of, secret_header, Compression, Encoded,
    EncodedRequest, Framing, HttpFormat, HttpResponse, HttpSettings, HttpSink, Limits, OwnHeader,
    Packer,
};
use super::{Batch, BuildContext, Delivery, Sink};
use crate::config::{table_into, ConfigError};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use std::sync::Arc;

const PLACEHOLDER: &str = "{{events}}";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_method")]
    method: String,
    #[serde(default = "default_body")]
    body: String,
    /// Overrides the body shape's `Content-Type`.
    content_type: Option<String>,
    bearer_token: Option<String>,
    basic: Option<BasicAuth>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_body() -> String {
    "json_array".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    JsonArray,
    Ndjson,
    Single,
    /// Text before and after `{{events}}`.
    Template(String, String),
}

/// The generic HTTP wire format.
pub struct Http {
    url: String,
    method: Method,
    shape: Shape,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Http {
    fn request(&self, body: Bytes, indices: Vec<usize>) -> EncodedRequest {
        EncodedRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body,
            indices,
        }
    }
}

impl HttpFormat for Http {
    fn encode(&self, batch: &Batch) -> Encoded {
        if self.shape == Shape::Single {
            let requests = batch
                .events
                .iter()
                .enumerate()
                .map(|(i, ev)| self.request(ev.body_bytes(), vec![i]))
                .collect();
            return Encoded {
                requests,
                rejected: Vec::new(),
            };
        }
        let framing = if self.shape == Shape::Ndjson {
            Framing::Lines
        } else {
            Framing::JsonArray
        };
        let mut packer = Packer::new(framing, Limits::NONE);
        for (i, ev) in batch.events.iter().enumerate() {
            packer.push(i, ev.body(), |_, _| String::new());
        }
        let (bodies, rejected) = packer.finish();
        let requests = bodies
            .into_iter()
            .map(|(body, indices)| {
                let body = match &self.shape {
                    Shape::Template(pre, post) => {
                        let mut b = Vec::with_capacity(pre.len() + body.len() + post.len());
                        b.extend_from_slice(pre.as_bytes());
                        b.extend_from_slice(&body);
                        b.extend_from_slice(post.as_bytes());
                        Bytes::from(b)
                    }
                    _ => body,
                };
                self.request(body, indices)
            })
            .collect();
        Encoded { requests, rejected }
    }

    fn classify(&self, _req: &EncodedRequest, resp: &HttpResponse) -> Delivery {
        default_classify("the endpoint", resp)
    }

    /// A webhook's URL often holds its token (in the path or the query).
    fn url_is_secret(&self) -> bool {
        true
    }
}

/// Builds an `http` destination from its table (common keys removed).
pub fn build(mut table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let path = ctx.path();
    let http = HttpSettings::peel_from(&mut table, ctx, Compression::None)?;
    let s: Settings = table_into(&table, &path)?;
    let method = Method::from_bytes(s.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| ConfigError::new(format!("{path}.method"), "not a valid HTTP method"))?;
    let shape = match s.body.as_str() {
        "json_array" => Shape::JsonArray,
        "ndjson" => Shape::Ndjson,
        "single" => Shape::Single,
        t => match t.split_once(PLACEHOLDER) {
            Some((pre, post)) if !post.contains(PLACEHOLDER) => {
                Shape::Template(pre.into(), post.into())
            }
            _ => return Err(ConfigError::new(
                format!("{path}.body"),
                "\"json_array\", \"ndjson\", \"single\", or a template containing {{events}} once",
            )),
        },
    };
    let content_type = match (&s.content_type, &shape) {
        (Some(ct), _) => HeaderValue::from_str(ct).map_err(|_| {
            ConfigError::new(format!("{path}.content_type"), "not a valid header value")
        })?,
        (None, Shape::Ndjson) => HeaderValue::from_static("application/x-ndjson"),
        (None, _) => HeaderValue::from_static("application/json"),
    };
    let mut headers = vec![(http::header::CONTENT_TYPE, content_type)];
    let mut own = vec![OwnHeader {
        name: "content-type",
        key: Some("`content_type`"),
    }];
    match (&s.bearer_token, &s.basic) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.basic"),
                "set either bearer_token or basic, not both",
            ))
        }
        (Some(t), None) => headers.push((
            http::header::AUTHORIZATION,
            secret_header(&format!("Bearer {}", t.trim()))
                .map_err(|m| ConfigError::new(format!("{path}.bearer_token"), m))?,
        )),
        (None, Some(b)) => headers.push((
            http::header::AUTHORIZATION,
            basic_auth(&b.username, &b.password)
                .map_err(|m| ConfigError::new(format!("{path}.basic"), m))?,
        )),
        (None, None) => {}
    }
    if s.bearer_token.is_some() || s.basic.is_some() {
        own.push(OwnHeader {
            name: "authorization",
            key: Some(match s.bearer_token {
                Some(_) => "`bearer_token`",
                None => "`basic`",
            }),
        });
    }
    http.refuse_own_headers(ctx, &own)?;
    // the endpoint last: a bad one (left out to check the rest) does not
    // hide the section's other errors behind its `required`
    let client = client_for(&http, ctx)?;
    let endpoint = http.require_endpoint(ctx)?.to_string();
    let format = Http {
        url: endpoint.clone(),
        method,
        shape,
        headers,
    };
    Ok(Arc::new(HttpSink::with_client(
        format,
        client,
        origin_of(&endpoint),
    )))
}
