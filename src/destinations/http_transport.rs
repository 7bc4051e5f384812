//! The shared HTTP transport: one rustls-backed client per destination, gzip,
//! timeouts, and the small [`HttpFormat`] trait each HTTP wire format
//! implements (build the request for a batch, classify the answer).
//!
//! [`HttpSink`] turns any [`HttpFormat`] into a [`Sink`]: it sends the
//! requests a format builds for a batch one after the other, bisects a request
//! the server refuses as too large (413), refreshes credentials once on 401
//! when the format keeps a token, runs the format's post-acceptance `confirm`
//! (e.g. Splunk indexer acknowledgement), and merges the answers into one
//! [`Delivery`] with indices into the batch.
//!
//! [`HttpSettings`] are the keys every HTTP destination shares (`endpoint`,
//! `ca`, `timeout`, `compression`, `headers`), peeled off the table before a
//! format reads its own keys.

use super::batch::Batch;
use super::settings::peel;
use super::sink::{Delivery, Sink, TestOutcome};
use super::BuildContext;
use crate::config::{table_into, ConfigError, HumanDuration};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// One HTTP request built from (part of) a batch.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Uncompressed body; the transport gzips it when the destination asks.
    pub body: Bytes,
    /// Indices into the batch's events that this request carries.
    pub indices: Vec<usize>,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a format makes of a batch: the requests to send, and the events it
/// refuses up front (e.g. a single entry above the vendor's size limit), with
/// the reason. Every batch index appears in exactly one of the two.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    pub requests: Vec<EncodedRequest>,
    pub rejected: Vec<(usize, String)>,
}

/// A wire format over HTTP.
pub trait HttpFormat: Send + Sync + 'static {
    /// Builds the requests for a batch (several when the vendor limits a
    /// request's size or entry count).
    fn encode(&self, batch: &Batch) -> Encoded;

    /// Classifies the answer to `req`. Indices in a `Partial` are positions
    /// within `req.indices` (the transport maps them back to the batch).
    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery;

    /// The `Authorization` value for the next request, when the format
    /// obtains it at run time (OAuth tokens).
    fn authorize<'a>(
        &'a self,
        _client: &'a HttpClient,
    ) -> BoxFuture<'a, Result<Option<HeaderValue>, AuthFailure>> {
        Box::pin(async { Ok(None) })
    }

    /// Called when the server answered 401: drop cached credentials. Returns
    /// true when one immediate retry with fresh credentials makes sense.
    fn invalidate(&self) -> bool {
        false
    }

    /// Runs after `classify` said `Delivered`, e.g. to wait for an indexer
    /// acknowledgement. Its answer replaces `Delivered` (indices as in `classify`).
    fn confirm<'a>(
        &'a self,
        _client: &'a HttpClient,
        _req: &'a EncodedRequest,
        _resp: &'a HttpResponse,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async { Delivery::Delivered })
    }

    /// A health check for `test-destination`, run before the probe event:
    /// `Some(Ok(message))`, `Some(Err(problem))`, or `None` when the vendor has none.
    fn health<'a>(
        &'a self,
        _client: &'a HttpClient,
    ) -> BoxFuture<'a, Option<Result<String, String>>> {
        Box::pin(async { None })
    }
}

/// `compression = "gzip" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    None,
}

/// The keys every HTTP destination shares.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Validated `http://` or `https://` URL, as written.
    pub endpoint: Option<String>,
    /// Private CA file (PEM), resolved against the config file's folder.
    pub ca: Option<PathBuf>,
    pub timeout: Duration,
    pub compression: Compression,
    /// The gzip level: 1 (fastest, the default) to 9 (smallest).
    pub compression_level: u32,
    /// Extra headers sent with every request (`headers = { "X-Key" = "…" }`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSettings {
    endpoint: Option<String>,
    ca: Option<PathBuf>,
    timeout: Option<HumanDuration>,
    compression: Option<Compression>,
    compression_level: Option<u32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

const HTTP_KEYS: [&str; 6] = [
    "endpoint",
    "ca",
    "timeout",
    "compression",
    "compression_level",
    "headers",
];

/// The gzip level when none is set: the fastest (see [`gzip`]).
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

impl HttpSettings {
    /// Takes the shared HTTP keys out of `table` and validates them.
    /// `default_compression` is the format's default (gzip where the vendor recommends it).
    pub fn peel_from(
        table: &mut toml::Table,
        ctx: &BuildContext,
        default_compression: Compression,
    ) -> Result<HttpSettings, ConfigError> {
        let path = ctx.path();
        let raw: RawHttpSettings = table_into(&peel(table, &HTTP_KEYS), &path)?;
        let endpoint = raw
            .endpoint
            .map(|e| {
                validate_endpoint(&e).map_err(|m| ConfigError::new(format!("{path}.endpoint"), m))
            })
            .transpose()?;
        let mut headers = Vec::with_capacity(raw.headers.len());
        for (k, v) in raw.headers {
            let key_path = format!("{path}.headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ConfigError::new(&key_path, "not a valid HTTP header name"))?;
            headers.push((
                name,
                secret_header(&v).map_err(|m| ConfigError::new(&key_path, m))?,
            ));
        }
        let timeout = raw.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(30));
        if timeout.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.timeout"),
                "must be more than 0",
            ));
        }
        let compression_level = raw.compression_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        if !(1..=9).contains(&compression_level) {
            return Err(ConfigError::new(
                format!("{path}.compression_level"),
                "must be 1 (fastest) to 9 (smallest)",
            ));
        }
        Ok(HttpSettings {
            endpoint,
            ca: raw.ca.map(|p| ctx.resolve(&p)),
            timeout,
            compression: raw.compression.unwrap_or(default_compression),
            compression_level,
            headers,
        })
    }

    /// The endpoint as written, for formats where it is required and used
    /// as the full URL (a trailing `/` may matter to the server).
    pub fn require_endpoint(&self, ctx: &BuildContext) -> Result<&str, ConfigError> {
        self.endpoint.as_deref().ok_or_else(|| {
            ConfigError::new(
                format!("{}.endpoint", ctx.path()),
                "required (an http:// or https:// URL)",
            )
        })
    }

    /// The endpoint without a trailing `/`, for formats that append the vendor's path.
    pub fn require_base(&self, ctx: &BuildContext) -> Result<&str, ConfigError> {
        self.require_endpoint(ctx).map(|e| e.trim_end_matches('/'))
    }
}

/// Checks that `s` is an absolute `http://` or `https://` URL with a host;
/// returns it trimmed of surrounding whitespace.
pub fn validate_endpoint(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(s.trim().to_string())
}

/// `scheme://host[:port]` of a URL: what status and messages may show
/// (never the path, query or user info, which can carry secrets).
pub fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// A header value holding a secret: validated and marked sensitive (hidden
/// from `Debug` output and HPACK-indexing).
pub fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| "contains characters not allowed in an HTTP header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Basic base64(user:password)`.
pub fn basic_auth(username: &str, password: &str) -> Result<HeaderValue, String> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    secret_header(&format!("Basic {token}"))
}

/// This machine's host name (for `host`/`hostname` fields), or `siem-relay`.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "siem-relay".into())
}

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

/// How entries are joined into one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `[a,b,c]`
    JsonArray,
    /// `a\nb\nc\n`
    Lines,
}

/// A vendor's per-request limits (bytes are uncompressed body bytes).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// Largest single entry.
    pub max_entry_bytes: usize,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_entries: usize::MAX,
        max_bytes: usize::MAX,
        max_entry_bytes: usize::MAX,
    };
}

/// One packed body and the batch indices of its entries.
pub type Packed = (Bytes, Vec<usize>);

/// One POST to `url` with `headers` per packed body (what most formats send).
pub fn posts(
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    bodies: Vec<Packed>,
) -> Vec<EncodedRequest> {
    bodies
        .into_iter()
        .map(|(body, indices)| EncodedRequest {
            method: Method::POST,
            url: url.to_string(),
            headers: headers.to_vec(),
            body,
            indices,
        })
        .collect()
}

/// Packs pre-encoded entries (batch index, bytes) into bodies within
/// `limits`, in order. An entry too large to ever fit is refused with
/// `too_large(entry_len)` as the reason instead of being sent. For tests:
/// the destinations push each entry into a [`Packer`] as they write it.
#[cfg(test)]
pub fn pack(
    entries: Vec<(usize, Vec<u8>)>,
    framing: Framing,
    limits: Limits,
    too_large: impl Fn(usize) -> String,
) -> (Vec<Packed>, Vec<(usize, String)>) {
    let mut packer = Packer::new(framing, limits);
    for (i, entry) in entries {
        packer.push(i, &entry, &too_large);
    }
    packer.finish()
}

/// `pack` (the tests' all-at-once form) one entry at a time, for formats that encode each entry into a
/// reused scratch buffer (or pass the record body through) instead of
/// allocating a `Vec` per entry. Same bodies, same refusals.
#[derive(Debug)]
pub struct Packer {
    framing: Framing,
    limits: Limits,
    out: Vec<Packed>,
    rejected: Vec<(usize, String)>,
    body: Vec<u8>,
    idx: Vec<usize>,
}

impl Packer {
    pub fn new(framing: Framing, limits: Limits) -> Self {
        Packer {
            framing,
            limits,
            out: Vec::new(),
            rejected: Vec::new(),
            body: Vec::new(),
            idx: Vec::new(),
        }
    }

    fn open_close_sep(&self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self.framing {
            Framing::JsonArray => (b"[", b"]", b","),
            Framing::Lines => (b"", b"", b"\n"),
        }
    }

    fn flush(&mut self) {
        if self.idx.is_empty() {
            return;
        }
        let (_, close, _) = self.open_close_sep();
        if self.framing == Framing::Lines {
            self.body.push(b'\n');
        }
        self.body.extend_from_slice(close);
        self.out.push((
            Bytes::from(std::mem::take(&mut self.body)),
            std::mem::take(&mut self.idx),
        ));
    }

    /// Adds entry `i` (or refuses it with `too_large(entry.len())`).
    pub fn push(&mut self, i: usize, entry: &[u8], too_large: impl Fn(usize) -> String) {
        let (open, close, sep) = self.open_close_sep();
        let frame = open.len() + close.len();
        let alone = frame + entry.len() + sep.len();
        if entry.len() > self.limits.max_entry_bytes || alone > self.limits.max_bytes {
            self.rejected.push((i, too_large(entry.len())));
            return;
        }
        let grown = self.body.len() + sep.len() + entry.len() + close.len() + 1;
        if !self.idx.is_empty()
            && (self.idx.len() >= self.limits.max_entries || grown > self.limits.max_bytes)
        {
            self.flush();
        }
        if self.idx.is_empty() {
            self.body.extend_from_slice(open);
        } else {
            self.body.extend_from_slice(sep);
        }
        self.body.extend_from_slice(entry);
        self.idx.push(i);
    }

    /// The packed bodies and the refused entries.
    pub fn finish(mut self) -> (Vec<Packed>, Vec<(usize, String)>) {
        self.flush();
        (self.out, self.rejected)
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The error and its causes, without the URL.
    #[error("request failed: {0}")]
    Request(String),
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("compressing the body failed: {0}")]
    Compress(std::io::Error),
    #[error("credentials: {0}")]
    Auth(AuthFailure),
}

/// Why a format could not obtain the credentials for a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthFailure {
    /// The credentials were refused (a wrong secret, tenant or scope):
    /// retrying cannot help, the batch is rejected as a 401 would be.
    #[error("{0}")]
    Refused(String),
    /// The credentials could not be obtained now (the token endpoint
    /// unreachable, throttled or failing); `after` from its `Retry-After`.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        after: Option<Duration>,
    },
}

/// Why an HTTP client could not be built.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {source}")]
    CaRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA file {0} holds no usable PEM certificate")]
    CaEmpty(PathBuf),
    #[error("CA file {path}: {message}")]
    CaInvalid { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Largest response body read (bulk answers for big batches are a few MB).
const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// One destination's HTTP client: rustls with the ring provider, the
/// webpki roots plus an optional private CA, a timeout, gzip, extra headers.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
    /// The gzip level of request bodies; `None`: sent as they are.
    gzip: Option<u32>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn load_ca(path: &Path, roots: &mut rustls::RootCertStore) -> Result<(), ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::CaRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| ClientError::CaInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| ClientError::CaInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(ClientError::CaEmpty(path.to_path_buf()));
    }
    Ok(())
}

impl HttpClient {
    /// Builds the client for `settings`.
    pub fn new(settings: &HttpSettings) -> Result<HttpClient, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &settings.ca {
            load_ca(ca, &mut roots)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // a 3xx is an answer (see [`redirected`]), never followed
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(HttpClient {
            client,
            timeout: settings.timeout,
            gzip: (settings.compression == Compression::Gzip).then_some(settings.compression_level),
            headers: settings.headers.clone(),
        })
    }

    /// Sends a batch request: gzip when configured, the destination's extra
    /// headers, then `auth` as `Authorization`.
    pub async fn execute(
        &self,
        req: &EncodedRequest,
        auth: Option<&HeaderValue>,
    ) -> Result<HttpResponse, TransportError> {
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            headers.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(a) = auth {
            headers.insert(http::header::AUTHORIZATION, a.clone());
        }
        let body = if let Some(level) = self.gzip {
            headers.insert(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
            gzip(&req.body, level).map_err(TransportError::Compress)?
        } else {
            req.body.clone()
        };
        self.raw(req.method.clone(), &req.url, headers, body).await
    }

    /// Sends a side request (token, ack poll, health) as given: no gzip, no extra headers.
    /// A request to the destination's own server besides the batches (the
    /// HEC acknowledgement poll and health check): [`raw`](Self::raw) with
    /// the destination's extra `headers` (a gateway's key) added where
    /// `headers` does not set them. Requests to other hosts (a token
    /// endpoint) use `raw`, and never carry them.
    pub async fn to_destination(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        for (k, v) in &self.headers {
            if !headers.contains_key(k) {
                headers.insert(k.clone(), v.clone());
            }
        }
        self.raw(method, url, headers, body).await
    }

    /// One request as given: only `headers`, never the destination's extra ones.
    pub async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout(self.timeout)
            } else {
                // Never the URL: it may carry a secret (Sumo Logic).
                TransportError::Request(error_chain(&e.without_url()))
            }
        };
        let mut resp = self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(map_err)?;
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TransportError::BodyTooLarge(MAX_RESPONSE_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

/// `error: cause: cause`, each level once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A request body as sent with `compression = "gzip"` at `level` (1–9;
/// [`DEFAULT_GZIP_LEVEL`] is the fastest, see the `encoders` bench's `gzip`
/// rows).
///
/// The deflate is zlib-rs's (flate2's `zlib-rs` backend, pure Rust): on
/// a batch of varied canonical events it compressed and inflated about
/// twice as fast as miniz_oxide, flate2's default, at level 1, and its
/// level 2 made smaller bodies than miniz_oxide's level 1 in the same time
/// (README, `compression_level`).
pub fn gzip(data: &[u8], level: u32) -> std::io::Result<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data)?;
    Ok(Bytes::from(enc.finish()?))
}

/// What became of one batch index while the requests of a send are answered.
#[derive(Debug, Clone)]
enum Fate {
    Pending,
    Delivered,
    Retry,
    Rejected(String),
}

/// Collects per-event fates and turns them into one [`Delivery`].
struct Outcome {
    fates: Vec<Fate>,
    retry_reason: Option<String>,
    after: Option<Duration>,
}

impl Outcome {
    fn new(n: usize) -> Self {
        Outcome {
            fates: vec![Fate::Pending; n],
            retry_reason: None,
            after: None,
        }
    }

    fn set(&mut self, i: usize, fate: Fate) {
        if let Some(slot) = self.fates.get_mut(i) {
            *slot = fate;
        }
    }

    fn retry(&mut self, indices: &[usize], reason: &str, after: Option<Duration>) {
        for &i in indices {
            self.set(i, Fate::Retry);
        }
        self.retry_reason.get_or_insert_with(|| reason.to_string());
        self.after = self.after.max(after);
    }

    /// Applies a request's delivery (indices relative to `indices`).
    fn apply(&mut self, indices: &[usize], d: Delivery) {
        match d {
            Delivery::Delivered => indices.iter().for_each(|&i| self.set(i, Fate::Delivered)),
            Delivery::Retry { reason, after } => self.retry(indices, &reason, after),
            Delivery::Rejected { reason } => indices
                .iter()
                .for_each(|&i| self.set(i, Fate::Rejected(reason.clone()))),
            Delivery::Partial {
                retry,
                rejected,
                after,
            } => {
                indices.iter().for_each(|&i| self.set(i, Fate::Delivered));
                let retry: Vec<usize> = retry
                    .iter()
                    .filter_map(|&p| indices.get(p).copied())
                    .collect();
                if !retry.is_empty() {
                    self.retry(&retry, "part of the request must be retried", after);
                }
                for (p, reason) in rejected {
                    if let Some(&i) = indices.get(p) {
                        self.set(i, Fate::Rejected(reason));
                    }
                }
            }
        }
    }

    fn into_delivery(self) -> Delivery {
        let n = self.fates.len();
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        let mut pending = false;
        for (i, f) in self.fates.into_iter().enumerate() {
            match f {
                Fate::Delivered => {}
                Fate::Retry => retry.push(i),
                Fate::Pending => {
                    pending = true;
                    retry.push(i)
                }
                Fate::Rejected(r) => rejected.push((i, r)),
            }
        }
        let reason = self.retry_reason.unwrap_or_else(|| {
            if pending {
                "internal: event not covered by any request".into()
            } else {
                "retry".into()
            }
        });
        if retry.is_empty() && rejected.is_empty() {
            Delivery::Delivered
        } else if rejected.is_empty() && retry.len() == n {
            Delivery::Retry {
                reason,
                after: self.after,
            }
        } else if retry.is_empty()
            && rejected.len() == n
            && rejected.iter().all(|r| r.1 == rejected[0].1)
        {
            Delivery::Rejected {
                reason: rejected.swap_remove(0).1,
            }
        } else {
            Delivery::Partial {
                retry,
                rejected,
                after: self.after,
            }
        }
    }
}

/// Any [`HttpFormat`] as a [`Sink`].
pub struct HttpSink<F: HttpFormat> {
    format: F,
    client: HttpClient,
    target: String,
}

/// Upper bound on 413-driven bisections per send (2^12 pieces).
const MAX_SPLIT_DEPTH: u32 = 12;

impl<F: HttpFormat> HttpSink<F> {
    /// `target` is what status shows: it must hold no secret (see [`origin_of`]).
    pub fn new(
        format: F,
        settings: &HttpSettings,
        target: String,
        ctx: &BuildContext,
    ) -> Result<Self, ConfigError> {
        let client = HttpClient::new(settings).map_err(|e| {
            let key = match e {
                ClientError::CaRead { .. }
                | ClientError::CaEmpty(_)
                | ClientError::CaInvalid { .. } => "ca",
                _ => "endpoint",
            };
            ConfigError::new(format!("{}.{key}", ctx.path()), e.to_string())
        })?;
        Ok(HttpSink {
            format,
            client,
            target,
        })
    }

    /// The format (for tests and status).
    pub fn format(&self) -> &F {
        &self.format
    }

    /// Sends one request with the format's credentials, refreshing them once on 401.
    async fn exchange(&self, req: &EncodedRequest) -> Result<HttpResponse, TransportError> {
        let auth = self
            .format
            .authorize(&self.client)
            .await
            .map_err(TransportError::Auth)?;
        let resp = self.client.execute(req, auth.as_ref()).await?;
        if resp.status == 401 && self.format.invalidate() {
            let auth = self
                .format
                .authorize(&self.client)
                .await
                .map_err(TransportError::Auth)?;
            return self.client.execute(req, auth.as_ref()).await;
        }
        Ok(resp)
    }

    /// Re-encodes the events at `indices` (batch positions) as their own batch.
    fn encode_subset(
        &self,
        batch: &Batch,
        indices: &[usize],
        outcome: &mut Outcome,
    ) -> Vec<EncodedRequest> {
        let enc = self.format.encode(&batch.subset(indices));
        for (p, reason) in enc.rejected {
            if let Some(&i) = indices.get(p) {
                outcome.set(i, Fate::Rejected(reason));
            }
        }
        enc.requests
            .into_iter()
            .map(|mut r| {
                r.indices = r
                    .indices
                    .iter()
                    .filter_map(|&p| indices.get(p).copied())
                    .collect();
                r
            })
            .collect()
    }

    async fn deliver(&self, batch: &Batch) -> Delivery {
        if batch.is_empty() {
            return Delivery::Delivered;
        }
        let mut outcome = Outcome::new(batch.len());
        let enc = self.format.encode(batch);
        for (i, reason) in enc.rejected {
            outcome.set(i, Fate::Rejected(reason));
        }
        let mut queue: VecDeque<(EncodedRequest, u32)> =
            enc.requests.into_iter().map(|r| (r, 0)).collect();
        while let Some((req, depth)) = queue.pop_front() {
            let resp = match self.exchange(&req).await {
                Ok(r) => r,
                Err(e) => {
                    let reason = format!("{}: {e}", self.target);
                    // The same would happen to the rest: refused credentials
                    // reject them all, anything else retries them all
                    // (don't hammer a server that is unreachable).
                    let rest = std::iter::once(req).chain(queue.drain(..).map(|(r, _)| r));
                    for r in rest {
                        match &e {
                            TransportError::Auth(AuthFailure::Refused(_)) => outcome.apply(
                                &r.indices,
                                Delivery::Rejected {
                                    reason: reason.clone(),
                                },
                            ),
                            TransportError::Auth(AuthFailure::Unavailable { after, .. }) => {
                                outcome.retry(&r.indices, &reason, *after)
                            }
                            _ => outcome.retry(&r.indices, &reason, None),
                        }
                    }
                    break;
                }
            };
            if resp.status == 413 && req.indices.len() > 1 && depth < MAX_SPLIT_DEPTH {
                let (a, b) = req.indices.split_at(req.indices.len() / 2);
                for half in [b, a] {
                    for r in self
                        .encode_subset(batch, half, &mut outcome)
                        .into_iter()
                        .rev()
                    {
                        queue.push_front((r, depth + 1));
                    }
                }
                continue;
            }
            let mut d = if (300..400).contains(&resp.status) {
                redirected(&self.target, &resp)
            } else {
                self.format.classify(&req, &resp)
            };
            if d == Delivery::Delivered {
                d = self.format.confirm(&self.client, &req, &resp).await;
            }
            let whole_retry = matches!(d, Delivery::Retry { .. });
            outcome.apply(&req.indices, d.clone());
            if let (true, Delivery::Retry { reason, after }) = (whole_retry, &d) {
                // Throttled or failing: the remaining requests would fare the same.
                for (r, _) in queue.drain(..) {
                    outcome.retry(&r.indices, reason, *after);
                }
            }
        }
        outcome.into_delivery()
    }
}

impl<F: HttpFormat> Sink for HttpSink<F> {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(batch))
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn encode_only(&self, batch: &Batch) -> Option<usize> {
        let enc = self.format.encode(batch);
        Some(enc.requests.iter().map(|r| r.body.len()).sum())
    }

    fn test<'a>(&'a self, probe: &'a Batch) -> BoxFuture<'a, TestOutcome> {
        Box::pin(async move {
            let mut healthy = None;
            match self.format.health(&self.client).await {
                Some(Err(problem)) => {
                    return TestOutcome {
                        ok: false,
                        message: format!("{}: {problem}", self.target),
                    }
                }
                Some(Ok(msg)) => healthy = Some(msg),
                None => {}
            }
            let prefix = healthy.map(|m| format!("{m}; ")).unwrap_or_default();
            match self.deliver(probe).await {
                Delivery::Delivered => TestOutcome {
                    ok: true,
                    message: format!("{prefix}test event accepted by {}", self.target),
                },
                Delivery::Retry { reason, .. } | Delivery::Rejected { reason } => TestOutcome {
                    ok: false,
                    message: format!("{prefix}test event not accepted: {reason}"),
                },
                Delivery::Partial { rejected, .. } => TestOutcome {
                    ok: false,
                    message: format!(
                        "{prefix}test event not accepted by {}{}",
                        self.target,
                        rejected
                            .first()
                            .map(|r| format!(": {}", r.1))
                            .unwrap_or_default()
                    ),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pack_respects_limits_and_refuses_giants() {
        let entries: Vec<(usize, Vec<u8>)> = (0..7)
            .map(|i| (i, vec![b'a'; if i == 3 { 50 } else { 4 }]))
            .collect();
        let limits = Limits {
            max_entries: 2,
            max_bytes: 12,
            max_entry_bytes: 10,
        };
        let (bodies, rejected) = pack(entries, Framing::JsonArray, limits, |n| {
            format!("{n} bytes")
        });
        assert_eq!(rejected, vec![(3, "50 bytes".to_string())]);
        let idx: Vec<Vec<usize>> = bodies.iter().map(|b| b.1.clone()).collect();
        assert_eq!(idx, vec![vec![0, 1], vec![2, 4], vec![5, 6]]);
        assert_eq!(&bodies[0].0[..], b"[aaaa,aaaa]");
        for (b, _) in &bodies {
            assert!(b.len() <= 12);
        }
        let (bodies, _) = pack(
            vec![(0, b"x".to_vec()), (1, b"y".to_vec())],
            Framing::Lines,
            Limits::NONE,
            |_| String::new(),
        );
        assert_eq!(&bodies[0].0[..], b"x\ny\n");
    }

    #[test]
    fn outcome_merges_requests() {
        let mut o = Outcome::new(4);
        o.apply(&[0, 1], Delivery::Delivered);
        o.apply(
            &[2, 3],
            Delivery::Partial {
                retry: vec![1],
                rejected: vec![],
                after: Some(Duration::from_secs(2)),
            },
        );
        assert_eq!(
            o.into_delivery(),
            Delivery::Partial {
                retry: vec![3],
                rejected: vec![],
                after: Some(Duration::from_secs(2))
            }
        );
        let mut o = Outcome::new(2);
        o.apply(&[0], Delivery::rejected("bad"));
        o.apply(&[1], Delivery::rejected("bad"));
        assert_eq!(o.into_delivery(), Delivery::rejected("bad"));
    }

    #[test]
    fn endpoints_are_validated_and_origins_hide_paths() {
        assert!(validate_endpoint("ftp://x").is_err());
        assert!(validate_endpoint("nonsense").is_err());
        assert_eq!(
            validate_endpoint(" https://h:8088/ ").unwrap(),
            "https://h:8088/"
        );
        assert_eq!(
            origin_of("https://u:p@h.example:444/receiver/v1/http/SECRET?q=1"),
            "https://h.example:444"
        );
    }
}
