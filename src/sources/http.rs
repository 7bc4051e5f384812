//! `http`: JSON events over HTTP (axum).
//!
//! - `POST /v1/events`: a JSON object, an array of objects, or NDJSON;
//!   `Content-Encoding: gzip` accepted; `Authorization: Bearer <token>`.
//!   200 `{"accepted": N}` once the whole request is in the ring; 400
//!   `{"error", "line", "offset"}` for a malformed body (nothing appended);
//!   413 over `max_body_bytes` (also after decompression); 503 with
//!   `Retry-After` when the ring is full, or when the requests in progress
//!   hold all of `queue_bytes` for longer than [`BUDGET_WAIT`].
//! - `POST /services/collector/event` and `/services/collector`: Splunk HEC
//!   envelopes, `Authorization: Splunk <token>` (Bearer accepted too), HEC
//!   answers (`{"text":"Success","code":0}`); the query's `host`, `source`,
//!   `sourcetype`, `index` and `time` for envelopes that set none
//!   ([`parse_hec_body_with`]).
//! - `POST /services/collector/raw`: Splunk HEC raw, one event a line
//!   ([`parse_hec_raw`]), the query's `host`, `source`, `sourcetype` and
//!   `index` in each event's `metadata`, its `time` the time of the events
//!   without one of their own; a channel (query or
//!   `X-Splunk-Request-Channel`) is accepted, never required (no indexer
//!   acknowledgement here).
//! - `POST /services/collector/ack`: 400 `{"text":"ACK is disabled","code":14}`,
//!   Splunk's answer with indexer acknowledgement off.
//! - `GET /health`.
//!
//! With no `tokens` configured, requests need no authorisation.
//!
//! Served by [`crate::http_server`]: at most `max_connections` connections
//! (more are closed at once, counted as `max_connections`), a request's
//! headers within `request_timeout`, and its body within `request_timeout`
//! too (408, counted as `body_timeout`), so idle or trickling clients
//! cannot hold the source's connections or its `queue_bytes`.

use super::log_limit::Warnings;
use super::metrics::SourceMetrics;
use super::read_budget::{Held, ReadBudget};
use super::{resolve, shutdown_signal, Ingest, IngestError, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigError, HumanDuration, SectionConfig};
use crate::event::{buffers, now_millis, syslog_hint, EncodedEvent, Event};
use crate::http_server::{serve, ConnObserver, Limits};
use crate::parse::{
    parse_events_records, parse_hec_body_with, parse_hec_raw_records, BodyError, Origin,
};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// `[sources.NAME]` with `type = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub address: String,
    /// Accepted tokens (`Bearer` on `/v1/events`, `Splunk` or `Bearer` on HEC paths).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Largest request body, before and after decompression (default 10MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: ByteSize,
    /// Request bodies being read, parsed and appended, all requests
    /// together, as sent (default 32MiB): a request takes its
    /// `Content-Length` (or, without one, `max_body_bytes`) before its body
    /// is read, waits up to [`BUDGET_WAIT`] for it, and is answered 503
    /// with `Retry-After` when it cannot have it.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: ByteSize,
    /// Connections at once (default 1024); more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a request's headers may take to arrive, and then its body
    /// (default 30s each; also how long a kept-alive connection may idle).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
}

fn default_max_connections() -> usize {
    1024
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_max_body() -> ByteSize {
    ByteSize(10 << 20)
}

fn default_queue_bytes() -> ByteSize {
    ByteSize(32 << 20)
}

/// The largest `queue_bytes`.
const MAX_QUEUE_BYTES: u64 = 4 << 30;

/// How long a request waits for its share of `queue_bytes`.
const BUDGET_WAIT: Duration = Duration::from_secs(1);

impl Settings {
    pub fn from_section(section: &SectionConfig) -> Result<Self, ConfigError> {
        let s: Settings = section.settings()?;
        if s.queue_bytes.0 > MAX_QUEUE_BYTES {
            return Err(ConfigError::new(
                format!("{}.queue_bytes", section.path()),
                format!("must be at most {}", ByteSize(MAX_QUEUE_BYTES)),
            ));
        }
        if s.max_body_bytes.0 == 0 {
            return Err(ConfigError::new(
                format!("{}.max_body_bytes", section.path()),
                "must be at least 1B (0 would refuse every request as too large)",
            ));
        }
        if s.max_body_bytes > s.queue_bytes {
            return Err(s.body_over_queue(section));
        }
        if s.max_connections == 0 {
            return Err(ConfigError::new(
                format!("{}.max_connections", section.path()),
                "must be at least 1",
            ));
        }
        if s.request_timeout.0 < Duration::from_millis(100) {
            return Err(ConfigError::new(
                format!("{}.request_timeout", section.path()),
                "must be at least 100ms",
            ));
        }
        if s.tokens.iter().any(|t| t.is_empty()) {
            return Err(ConfigError::new(
                format!("{}.tokens", section.path()),
                "tokens must not be empty (is an environment variable unset?)",
            ));
        }
        Ok(s)
    }

    /// A body larger than `queue_bytes` could never be read: the fault of
    /// `max_body_bytes` when the section sets it and leaves `queue_bytes`
    /// at its default, else of `queue_bytes`, each error naming the other's
    /// value as its limit.
    fn body_over_queue(&self, section: &SectionConfig) -> ConfigError {
        let path = section.path();
        let set = |key: &str| section.table.contains_key(key);
        if set("max_body_bytes") && !set("queue_bytes") {
            return ConfigError::new(
                format!("{path}.max_body_bytes"),
                format!(
                    "must be at most queue_bytes ({}, its default), which holds the bodies being read",
                    self.queue_bytes
                ),
            )
            .against_default_of(format!("{path}.queue_bytes"));
        }
        let default = match set("max_body_bytes") {
            true => "",
            false => ", its default",
        };
        let e = ConfigError::new(
            format!("{path}.queue_bytes"),
            format!(
                "must be at least max_body_bytes ({}{default}), to hold a body that large",
                self.max_body_bytes
            ),
        );
        match set("max_body_bytes") {
            true => e,
            false => e.against_default_of(format!("{path}.max_body_bytes")),
        }
    }
}

struct AppState {
    name: String,
    tokens: Vec<String>,
    max_body: usize,
    /// How long a request body may take to arrive.
    body_timeout: Duration,
    /// What the requests in progress may hold (`queue_bytes`).
    budget: Arc<ReadBudget>,
    ingest: Arc<dyn Ingest>,
    /// The zone of syslog timestamps without one (raw HEC lines).
    tz: Tz,
    metrics: SourceMetrics,
    /// Bodies refused for what the answer does not tell in full (not gzip,
    /// cut short: HEC answers Splunk's words), logged a few at a time.
    warnings: Warnings,
    /// Permits for large bodies, held from their parse on tokio's blocking
    /// pool until their records are in the ring: one per CPU. It bounds
    /// the cores they take and the parsed records they hold, which are 2-4×
    /// their body and not in `queue_bytes` (without it, 50 concurrent 8 MiB
    /// uploads peaked at ~235 MiB anon RSS instead of ~120).
    large: Arc<Semaphore>,
}

/// A body at least this long is gunzipped and parsed on tokio's blocking
/// pool instead of the runtime worker that read it: parsing runs at about
/// 1 µs per event, so a 10 MiB body would hold that worker ~40 ms, and every
/// other connection queued on it (TCP, TLS and HTTP alike) would wait.
/// Below it, the hop to another thread (tens of µs) costs more than it saves.
const OFFLOAD_BYTES: usize = 256 << 10;
/// The same for a gzip body, counted compressed (it inflates ~5-10×).
const OFFLOAD_GZIP_BYTES: usize = 32 << 10;

/// Which endpoint family a request is for (they differ in auth scheme and answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Events,
    /// HEC envelopes (`/services/collector/event`).
    Hec,
    /// HEC raw text (`/services/collector/raw`).
    HecRaw,
}

impl Api {
    /// Splunk's auth schemes and answers.
    fn is_hec(self) -> bool {
        matches!(self, Api::Hec | Api::HecRaw)
    }
}

/// Binds the listener and serves until shutdown.
pub async fn start(
    name: &str,
    settings: Settings,
    ctx: SourceContext,
) -> Result<(SocketAddr, JoinHandle<()>), SourceError> {
    let addr = resolve(name, &settings.address)?;
    let bind_err = |source| SourceError::Bind {
        name: name.to_string(),
        address: settings.address.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let metrics = SourceMetrics::new(name);
    let state = Arc::new(AppState {
        name: name.to_string(),
        tokens: settings.tokens,
        max_body: settings.max_body_bytes.0 as usize,
        body_timeout: settings.request_timeout.0,
        budget: ReadBudget::new(settings.queue_bytes.0 as usize, metrics.clone()),
        ingest: ctx.ingest.clone(),
        tz: ctx.timezone,
        metrics,
        warnings: Warnings::new(name, warning_text),
        large: Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
    });
    let observer = Arc::new(Connections(state.metrics.clone()));
    let app = router(state.clone());
    let shutdown = shutdown_signal(ctx.shutdown);
    tracing::info!(source = name, address = %local, "listening (http)");
    let limits = Limits {
        max_connections: settings.max_connections,
        header_timeout: settings.request_timeout.0,
    };
    let task = tokio::spawn(async move {
        let served = serve(listener, app, limits, shutdown, observer);
        state.warnings.summarising(served).await
    });
    Ok((local, task))
}

/// What the warnings of a `reason` say.
fn warning_text(reason: &str) -> &'static str {
    match reason {
        "bad_gzip" => "request refused: its Content-Encoding says gzip, its body is not gzip",
        "incomplete_body" => "request refused: its body ended before all of it came",
        _ => "request refused",
    }
}

/// The source's connection counters.
struct Connections(SourceMetrics);

impl ConnObserver for Connections {
    fn opened(&self) {
        self.0.connection_opened();
    }
    fn closed(&self) {
        self.0.connection_closed();
    }
    fn refused(&self) {
        self.0.connection_error("max_connections");
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(events))
        .route("/services/collector/event", post(hec))
        .route("/services/collector/event/1.0", post(hec))
        .route("/services/collector", post(hec))
        .route("/services/collector/raw", post(hec))
        .route("/services/collector/raw/1.0", post(hec))
        // what HEC clients (and the `splunk_hec` destination's test) ask
        .route("/services/collector/health", get(hec_health))
        .route("/services/collector/health/1.0", get(hec_health))
        // a client with indexer acknowledgement on polls here: Splunk's
        // answer when it is off (no `ackId` is ever given out)
        .route("/services/collector/ack", post(hec_ack))
        .route("/services/collector/ack/1.0", post(hec_ack))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(state)
}

async fn events(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&st, Api::Events, peer, &headers, body, RawParams::default()).await
}

/// Splunk's answer of a healthy HEC (no token needed).
async fn hec_health() -> Response {
    hec_answer(StatusCode::OK, "HEC is healthy", 17, None)
}

async fn hec_ack() -> Response {
    hec_answer(StatusCode::BAD_REQUEST, "ACK is disabled", 14, None)
}

/// The HEC paths: envelopes, or raw text on the `/raw` ones, each with
/// what the query gives its events.
async fn hec(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: MatchedPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let api = if path.as_str().starts_with("/services/collector/raw") {
        Api::HecRaw
    } else {
        Api::Hec
    };
    let params = raw_params(query.as_deref().unwrap_or(""));
    handle(&st, api, peer, &headers, body, params).await
}

/// What a HEC request's query gives its events (raw lines and envelopes).
#[derive(Default)]
struct RawParams {
    /// `host`, `source`, `sourcetype`, `index`: to each event's `metadata`.
    meta: Map<String, Value>,
    /// `time`: the time of the events without one of their own.
    time: Option<String>,
}

/// What Splunk takes from a HEC request's query: `host`, `source`,
/// `sourcetype`, `index` (the first of each, when not empty) and `time`
/// (the first, checked by [`parse_hec_raw`] and [`parse_hec_body_with`]).
/// Anything else (`channel`, which only indexer acknowledgement uses) is
/// ignored.
fn raw_params(query: &str) -> RawParams {
    let mut raw = RawParams::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if matches!(&*k, "host" | "source" | "sourcetype" | "index") && !v.is_empty() {
            raw.meta
                .entry(k.into_owned())
                .or_insert_with(|| Value::String(v.into_owned()));
        } else if k == "time" && raw.time.is_none() {
            raw.time = Some(v.into_owned());
        }
    }
    raw
}

/// Whether reading a body failed because it passed `max_body_bytes` (and
/// not because the client went away).
fn over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Authorise, read, decompress, parse, append — or answer why not.
async fn handle(
    st: &AppState,
    api: Api,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    raw_params: RawParams,
) -> Response {
    if let Err(why) = authorised(st, api, headers) {
        return refuse(st, api, Reject::Unauthorized(why));
    }
    let _held = match hold_budget(st, headers).await {
        Ok(held) => held,
        Err(r) => return refuse(st, api, r),
    };
    let encoding = match content_encoding(headers) {
        Ok(e) => e,
        Err(r) => return refuse(st, api, r),
    };
    let raw = match tokio::time::timeout(st.body_timeout, axum::body::to_bytes(body, st.max_body))
        .await
    {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) if over_limit(&e) => return refuse(st, api, Reject::TooLarge),
        // the connection ended or broke before the whole body came
        Ok(Err(e)) => {
            st.warnings.warn("incomplete_body", &peer.to_string(), &e);
            return refuse(st, api, Reject::Incomplete(e.to_string()));
        }
        Err(_) => return refuse(st, api, Reject::Timeout(st.body_timeout)),
    };
    let job = ParseJob {
        api,
        raw,
        encoding,
        max_body: st.max_body,
        received_ms: now_millis(),
        syslog_hint: st.ingest.syslog_hints(),
        tz: st.tz,
        raw_params,
    };
    let peer_text = peer.to_string();
    // held until the records are appended (see `AppState::large`)
    let large = if job.offload() {
        Some(
            st.large
                .acquire()
                .await
                .expect("the semaphore is never closed"),
        )
    } else {
        None
    };
    let parsed = if large.is_some() {
        let listener = st.name.clone();
        match tokio::task::spawn_blocking(move || job.run(&listener, &peer_text)).await {
            Ok(parsed) => parsed,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    } else {
        job.run(&st.name, &peer_text)
    };
    let response = match parsed {
        Ok(records) => append(st, api, records).await,
        Err(r) => {
            if let Reject::Gzip(e) = &r {
                st.warnings.warn("bad_gzip", &peer.to_string(), e);
            }
            refuse(st, api, r)
        }
    };
    drop(large);
    response
}

/// A read body to decode and parse, inline or on the blocking pool.
struct ParseJob {
    api: Api,
    raw: Bytes,
    encoding: Encoding,
    max_body: usize,
    received_ms: i64,
    syslog_hint: bool,
    /// The zone of raw HEC syslog lines' timestamps without one.
    tz: Tz,
    /// What a raw HEC request's query gives its events.
    raw_params: RawParams,
}

impl ParseJob {
    /// Whether the work is long enough to leave the runtime's worker (see
    /// [`OFFLOAD_BYTES`]).
    fn offload(&self) -> bool {
        self.raw.len()
            >= match self.encoding {
                Encoding::Identity => OFFLOAD_BYTES,
                Encoding::Gzip => OFFLOAD_GZIP_BYTES,
            }
    }

    /// Gunzips (within `max_body`) and parses the body into records.
    fn run(self, listener: &str, peer: &str) -> Result<Vec<EncodedEvent>, Reject> {
        let mut body = match self.encoding {
            Encoding::Identity => self.raw,
            // nothing at all, gzip or not, is no data (not a gzip stream
            // cut short): the parser answers it as an empty body
            Encoding::Gzip if self.raw.is_empty() => self.raw,
            Encoding::Gzip => gunzip(&self.raw, self.max_body)?,
        };
        // a UTF-8 byte order mark before the JSON (some Windows senders)
        if body.starts_with(b"\xEF\xBB\xBF") {
            body = body.slice(3..);
        }
        let origin = Origin {
            listener,
            address: Some(peer),
            // JSON objects get the one-byte hint of an event not from syslog
            syslog_hint: self.syslog_hint,
        };
        match self.api {
            Api::Events => parse_events_records(&body, self.received_ms, &origin),
            Api::Hec => parse_hec_body_with(
                &body,
                self.received_ms,
                &self.raw_params.meta,
                self.raw_params.time.as_deref(),
                &origin,
            )
            .map(|events| encode_all(&events, self.syslog_hint)),
            Api::HecRaw => parse_hec_raw_records(
                &body,
                self.received_ms,
                self.tz,
                &self.raw_params.meta,
                self.raw_params.time.as_deref(),
                &origin,
            ),
        }
        .map_err(Reject::Malformed)
    }
}

/// The records of HEC envelopes' events; with `syslog_hint`, those not
/// from syslog carry the one-byte hint that spares the `syslog`
/// destination reading their bodies ([`syslog_hint::write_not_syslog`]).
/// (Raw lines: [`parse_hec_raw_records`].)
fn encode_all(events: &[Event], syslog_hint: bool) -> Vec<EncodedEvent> {
    events
        .iter()
        .map(|ev| {
            let mut rec = ev.encode();
            if syslog_hint && ev.syslog.is_none() {
                rec.write_hint(syslog_hint::write_not_syslog);
            }
            rec
        })
        .collect()
}

/// Why a request is not authorised (HEC tells the three apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unauthorised {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>` (or `Splunk <token>` on the HEC paths).
    BadScheme,
    /// A token that is not configured.
    WrongToken,
}

fn authorised(st: &AppState, api: Api, headers: &HeaderMap) -> Result<(), Unauthorised> {
    if st.tokens.is_empty() {
        return Ok(());
    }
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Unauthorised::Missing)?
        .to_str()
        .map_err(|_| Unauthorised::BadScheme)?;
    // auth schemes are case-insensitive (RFC 9110 §11.1)
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("Bearer") => t,
        Some((scheme, t)) if api.is_hec() && scheme.eq_ignore_ascii_case("Splunk") => t,
        _ => return Err(Unauthorised::BadScheme),
    };
    let known = st
        .tokens
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()));
    known.then_some(()).ok_or(Unauthorised::WrongToken)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request's share of the source's budget: its `Content-Length`, or
/// `max_body` without one (a larger `Content-Length` is refused at once).
/// Waits up to [`BUDGET_WAIT`] for it; the request is answered 503 with
/// `Retry-After` if it does not come.
async fn hold_budget(st: &AppState, headers: &HeaderMap) -> Result<Held, Reject> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let claim = match length {
        Some(n) if n > st.max_body as u64 => return Err(Reject::TooLarge),
        Some(n) => n as usize,
        None => st.max_body,
    };
    if let Some(held) = st.budget.try_hold(claim) {
        return Ok(held);
    }
    match tokio::time::timeout(BUDGET_WAIT, st.budget.hold(claim)).await {
        Ok(held) => Ok(held),
        Err(_) => Err(Reject::Busy),
    }
}

/// A request body's `Content-Encoding`.
#[derive(Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
}

/// The request's `Content-Encoding` (identity or gzip; others are refused).
fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Reject> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        other => Err(Reject::Encoding(other.to_string())),
    }
}

fn gunzip(data: &[u8], limit: usize) -> Result<Bytes, Reject> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(data).take(limit as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| Reject::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(Reject::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// Appends all events of a request in one call (refused at once when the
/// ring blocks; waiting for a busy writer without blocking the thread).
///
/// A 503 is a refusal, not a loss: the client keeps the events and is told
/// to retry, so it is counted in `…_connection_errors_total{reason}`
/// (`buffer_full`, `buffer_error`, `shutting_down`, `not_durable`), never
/// in `…_dropped_total`, which counts only events the relay lost: those of
/// a 413 for an event the ring can never hold (`too_large`).
async fn append(st: &AppState, api: Api, encoded: Vec<EncodedEvent>) -> Response {
    if encoded.is_empty() {
        return accepted(api, 0);
    }
    let (encoded, appended) = st.ingest.try_append_owned(encoded).await;
    let response = match appended {
        Ok(()) => {
            st.metrics.accepted(&encoded);
            accepted(api, encoded.len())
        }
        Err(IngestError::Full(retry)) => {
            st.metrics.connection_error("buffer_full");
            reject(api, Reject::Full(retry.as_secs().max(1)))
        }
        Err(IngestError::Closed) => {
            st.metrics.connection_error("shutting_down");
            reject(api, Reject::Unavailable("shutting down".into()))
        }
        Err(IngestError::Failed(e)) => {
            st.metrics.connection_error("buffer_error");
            reject(api, Reject::Unavailable(e))
        }
        // never fits: retrying cannot help
        Err(IngestError::TooLarge(e)) => {
            st.metrics.dropped("too_large", encoded.len() as u64);
            refuse(st, api, Reject::RecordTooLarge(e))
        }
        // in the ring, but not on disk as `fsync = always` promises: not
        // acknowledged (a retry may deliver them twice, never zero times)
        Err(e @ IngestError::NotDurable(_)) => {
            st.metrics.accepted(&encoded);
            st.metrics.connection_error("not_durable");
            reject(api, Reject::Unavailable(e.to_string()))
        }
    };
    buffers::give_back(encoded);
    response
}

fn accepted(api: Api, n: usize) -> Response {
    match api {
        Api::Events => Json(json!({"accepted": n})).into_response(),
        Api::Hec | Api::HecRaw => hec_answer(StatusCode::OK, "Success", 0, None),
    }
}

/// Why a request was refused.
enum Reject {
    Unauthorized(Unauthorised),
    TooLarge,
    Encoding(String),
    Gzip(String),
    Malformed(BodyError),
    Full(u64),
    /// The requests in progress hold all of `queue_bytes`.
    Busy,
    Unavailable(String),
    /// The body did not arrive in time.
    Timeout(Duration),
    /// The body ended (or its connection broke) before all of it came.
    Incomplete(String),
    /// An event larger than the ring's segments can hold.
    RecordTooLarge(String),
}

/// Answers a request refused for what it is or asks, counted in
/// `…_connection_errors_total{reason}` (the ring's refusals are counted
/// by [`append`]).
fn refuse(st: &AppState, api: Api, r: Reject) -> Response {
    let reason = match &r {
        Reject::Unauthorized(_) => Some("unauthorized"),
        Reject::TooLarge => Some("too_large"),
        Reject::Encoding(_) => Some("unsupported_encoding"),
        Reject::Gzip(_) => Some("bad_gzip"),
        Reject::Malformed(_) => Some("bad_request"),
        Reject::Busy => Some("busy"),
        Reject::Timeout(_) => Some("body_timeout"),
        Reject::Incomplete(_) => Some("incomplete_body"),
        Reject::RecordTooLarge(_) => Some("too_large"),
        Reject::Full(_) | Reject::Unavailable(_) => None,
    };
    if let Some(reason) = reason {
        st.metrics.connection_error(reason);
    }
    reject(api, r)
}

fn reject(api: Api, r: Reject) -> Response {
    let (status, text, hec_code) = match &r {
        // Splunk's answers on the HEC paths (codes 2, 3, 4)
        Reject::Unauthorized(why) => match (api.is_hec(), why) {
            (true, Unauthorised::Missing) => {
                (StatusCode::UNAUTHORIZED, "Token is required".to_string(), 2)
            }
            (true, Unauthorised::BadScheme) => (
                StatusCode::UNAUTHORIZED,
                "Invalid authorization".to_string(),
                3,
            ),
            (true, Unauthorised::WrongToken) => {
                (StatusCode::FORBIDDEN, "Invalid token".to_string(), 4)
            }
            (false, _) => (
                StatusCode::UNAUTHORIZED,
                "invalid or missing token".to_string(),
                3,
            ),
        },
        Reject::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large".to_string(),
            6,
        ),
        Reject::Encoding(e) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content encoding `{e}`"),
            6,
        ),
        Reject::Gzip(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid gzip body: {e}"),
            6,
        ),
        // on the HEC paths, Splunk's words for the code
        Reject::Malformed(e) if api.is_hec() => {
            let (code, text) = hec_body_answer(e);
            (StatusCode::BAD_REQUEST, text.to_string(), code)
        }
        Reject::Malformed(e) => (StatusCode::BAD_REQUEST, e.to_string(), 6),
        Reject::Full(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "buffer full, retry later".to_string(),
            9,
        ),
        Reject::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many request bodies in progress, retry later".to_string(),
            9,
        ),
        Reject::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, e.clone(), 8),
        Reject::Timeout(t) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {t:?}"),
            6,
        ),
        Reject::RecordTooLarge(e) => (StatusCode::PAYLOAD_TOO_LARGE, e.clone(), 6),
        Reject::Incomplete(e) => (
            StatusCode::BAD_REQUEST,
            format!("request body incomplete: {e}"),
            6,
        ),
    };
    let mut resp = match (api, &r) {
        // the event at fault, numbered from 0, as Splunk says it
        (Api::Hec | Api::HecRaw, Reject::Malformed(e)) => {
            hec_answer(status, &text, hec_code, e.hec_event_number())
        }
        // Splunk's words for its codes 9 and 8 (the 503's reason is
        // counted in `connection_errors_total{reason}`)
        (Api::Hec | Api::HecRaw, Reject::Full(_) | Reject::Busy) => {
            hec_answer(status, "Server is busy", 9, None)
        }
        (Api::Hec | Api::HecRaw, Reject::Unavailable(_)) => {
            hec_answer(status, "Internal error", 8, None)
        }
        // a body that is not gzip, or did not all come: Splunk's words for
        // its code 6 (the reason is logged and counted in
        // `connection_errors_total{reason}`). 413, 408 and 415, which
        // Splunk's table has no code for, keep their status, code 6 and
        // the relay's own words: "Invalid data format" would tell a
        // client that retries a 408, or splits a batch on a 413, that its
        // data is bad.
        (Api::Hec | Api::HecRaw, Reject::Gzip(_) | Reject::Incomplete(_)) => {
            hec_answer(status, "Invalid data format", 6, None)
        }
        (Api::Hec | Api::HecRaw, _) => hec_answer(status, &text, hec_code, None),
        (Api::Events, Reject::Malformed(e)) => {
            let body = match e.position() {
                Some((line, offset)) => json!({"error": text, "line": line, "offset": offset}),
                None => json!({"error": text}),
            };
            (status, Json(body)).into_response()
        }
        (Api::Events, _) => (status, Json(json!({"error": text}))).into_response(),
    };
    let retry = match r {
        Reject::Full(secs) => Some(secs),
        Reject::Busy => Some(1),
        _ => None,
    };
    if let Some(secs) = retry {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// A HEC answer as Splunk writes it: `text`, `code`, then the number of
/// the event at fault, in this order (a `json!` map sorts its keys).
#[derive(serde::Serialize)]
struct HecAnswer<'a> {
    text: &'a str,
    code: u8,
    #[serde(
        rename = "invalid-event-number",
        skip_serializing_if = "Option::is_none"
    )]
    invalid_event_number: Option<usize>,
}

fn hec_answer(status: StatusCode, text: &str, code: u8, event: Option<usize>) -> Response {
    let answer = HecAnswer {
        text,
        code,
        invalid_event_number: event,
    };
    (status, Json(answer)).into_response()
}

/// Splunk's HEC code and text for a body problem (its HEC error table).
fn hec_body_answer(e: &BodyError) -> (u8, &'static str) {
    match e {
        BodyError::Empty => (5, "No data"),
        BodyError::HecEventMissing { .. } => (12, "Event field is required"),
        BodyError::HecEventBlank { .. } => (13, "Event field cannot be blank"),
        _ => (6, "Invalid data format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(len: usize, encoding: Encoding) -> ParseJob {
        ParseJob {
            api: Api::Events,
            raw: Bytes::from(vec![b' '; len]),
            encoding,
            max_body: 10 << 20,
            received_ms: 0,
            syslog_hint: false,
            tz: Tz::UTC,
            raw_params: RawParams::default(),
        }
    }

    fn settings_error(keys: &str) -> ConfigError {
        let section = SectionConfig {
            section: "sources",
            name: "web".into(),
            kind: "http".into(),
            table: toml::from_str(&format!("address = \"127.0.0.1:0\"\n{keys}")).unwrap(),
        };
        Settings::from_section(&section).expect_err("refused")
    }

    /// A `max_body_bytes` larger than the default `queue_bytes` is its own
    /// fault, with `queue_bytes` as its limit; a `queue_bytes` set below
    /// `max_body_bytes` (set or default) is `queue_bytes`' fault.
    #[test]
    fn a_body_limit_over_the_queue_is_reported_at_the_key_set() {
        let e = settings_error("max_body_bytes = \"1GB\"");
        assert_eq!(e.path, "sources.web.max_body_bytes");
        assert_eq!(
            e.message,
            "must be at most queue_bytes (32MiB, its default), which holds the bodies being read"
        );
        // both set: the queue is to hold the bodies
        let e = settings_error("max_body_bytes = \"1GB\"\nqueue_bytes = \"512MiB\"");
        assert_eq!(e.path, "sources.web.queue_bytes");
        assert!(
            e.message
                .starts_with("must be at least max_body_bytes (1GB),"),
            "{e}"
        );
        let e = settings_error("queue_bytes = \"1MiB\"");
        assert_eq!(e.path, "sources.web.queue_bytes");
        assert!(e
            .message
            .starts_with("must be at least max_body_bytes (10MiB, its default)"));
        let e = settings_error("max_body_bytes = \"1GB\"\nqueue_bytes = \"5GiB\"");
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("sources.web.queue_bytes", "must be at most 4GiB")
        );
        let e = settings_error("max_body_bytes = 0");
        assert_eq!(e.path, "sources.web.max_body_bytes");
        assert!(e.message.starts_with("must be at least 1B"), "{e}");
        let e = settings_error("max_body_bytes = -5");
        assert!(e.message.contains("not a whole number of bytes"), "{e}");
    }

    #[test]
    fn large_bodies_and_smaller_gzip_ones_leave_the_worker() {
        assert!(!job(OFFLOAD_BYTES - 1, Encoding::Identity).offload());
        assert!(job(OFFLOAD_BYTES, Encoding::Identity).offload());
        assert!(!job(OFFLOAD_GZIP_BYTES - 1, Encoding::Gzip).offload());
        assert!(job(OFFLOAD_GZIP_BYTES, Encoding::Gzip).offload());
    }

    /// Every API's records, parsed as the source parses them with syslog
    /// hints asked for: those of events not from syslog carry the one-byte
    /// hint, a raw syslog line's do not (its syslog fields are in the
    /// body), and the `syslog` destination writes the same frames from the
    /// hints as from the bodies alone.
    #[test]
    fn events_not_from_syslog_carry_the_hint_and_go_out_as_from_their_bodies() {
        use crate::destinations::syslog::{BodyReader, SyslogSink};
        use crate::destinations::{Batch, BatchEvent, BuildContext};
        let bodies: [(Api, &[u8], usize); 3] = [
            (
                Api::Events,
                br#"{"action":"a.one","message":"hi","metadata":{"syslog":{"severity":1}}}
{"category":"SECURITY","severity":"critical","actor":{"id":"u1"}}"#,
                2,
            ),
            (
                Api::Hec,
                br#"{"event":{"action":"h.one","message":"x"},"host":"h1","sourcetype":"st"}{"event":"plain text","time":1700000000.5}"#,
                2,
            ),
            (
                Api::HecRaw,
                b"<34>1 2026-11-23T14:56:08.123Z web-01 sshd 42 LOGIN - hello\nnot syslog at all\n<13>Nov 23 14:56:08 h app: bsd line\n",
                1,
            ),
        ];
        let table =
            toml::from_str("address = \"127.0.0.1:514\"\nmode = \"tcp\"\nformat = \"syslog\"")
                .unwrap();
        let ctx = BuildContext {
            name: "t".into(),
            base_dir: ".".into(),
            data_dir: "data".into(),
        };
        let sink = SyslogSink::new(table, &ctx).unwrap();
        for (api, body, not_syslog) in bodies {
            let job = ParseJob {
                api,
                raw: Bytes::from_static(body),
                syslog_hint: true,
                ..job(0, Encoding::Identity)
            };
            let Ok(records) = job.run("http", "10.0.0.9:4000") else {
                panic!("{api:?}: refused");
            };
            let hinted = records
                .iter()
                .filter(|r| r.hint() == [syslog_hint::KIND_NOT_SYSLOG]);
            assert_eq!(hinted.count(), not_syslog, "{api:?}");
            let batch = Batch::new(
                records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| BatchEvent::with_hint(i as u64, r.meta, r.body(), r.hint()))
                    .collect(),
            );
            let from_hints = sink.encode_frames(&batch, BodyReader::Hint);
            for reader in [BodyReader::Scanner, BodyReader::Serde] {
                assert_eq!(
                    String::from_utf8_lossy(&from_hints),
                    String::from_utf8_lossy(&sink.encode_frames(&batch, reader)),
                    "{api:?}"
                );
            }
        }
    }
}
