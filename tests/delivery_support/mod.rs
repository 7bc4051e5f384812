//! Helpers of the end-to-end delivery tests: a scripted, recording HTTP server
//! on 127.0.0.1 (real sockets, hyper) that can also stall, and the wiring of
//! a real ring, a cursor and the shared delivery loop (`worker::run`).
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use siem_relay::buffer::{Ring, RingSettings};
use siem_relay::config::{FsyncPolicy, SectionConfig};
use siem_relay::destinations::{registry, worker, Destination};
use siem_relay::event::Event;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One request as the server saw it, and what it answered (0 = no answer: stalled).
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    /// The body after undoing `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    pub status: u16,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// Every `event_id` in the body, in order (also inside JSON strings, e.g.
    /// Datadog's `message`).
    pub fn event_ids(&self) -> Vec<String> {
        if self.header("content-type") == Some("application/x-www-form-urlencoded") {
            return Vec::new(); // e.g. an OAuth token request
        }
        event_ids(&self.body)
    }
}

/// What the server does with a request.
pub enum Answer {
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answers while the server is stalled (answers 503 once released,
    /// long after any client timeout).
    Hang,
}

pub fn reply(status: u16, body: &str) -> Answer {
    Answer::Reply {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
    }
}

impl Answer {
    pub fn with_header(mut self, k: &'static str, v: &str) -> Self {
        if let Answer::Reply { headers, .. } = &mut self {
            headers.push((k, v.into()));
        }
        self
    }
}

type Responder = Arc<dyn Fn(&Seen, usize) -> Answer + Send + Sync>;

pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: watch::Sender<bool>,
}

impl Server {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    /// Requests to `path` only.
    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.path == path)
            .collect()
    }
    /// Event ids of every request answered 2xx, with repetitions.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|s| s.ok())
            .flat_map(|s| s.event_ids())
            .collect()
    }
    /// Lets hung requests finish (with 503).
    pub fn release_hung(&self) {
        let _ = self.release.send(true);
    }
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    responder: Responder,
    mut release: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let raw = body.collect().await?.to_bytes().to_vec();
    let gz = parts
        .headers
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = if gz {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    } else {
        raw
    };
    let mut s = Seen {
        at: Instant::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body,
        status: 0,
    };
    // the responder runs under the lock so `n` and the recorded order agree
    let answer = {
        let mut g = seen.lock().unwrap();
        let n = g.len();
        let a = responder(&s, n);
        if let Answer::Reply { status, .. } = &a {
            s.status = *status;
        }
        g.push(s);
        a
    };
    match answer {
        Answer::Reply {
            status,
            headers,
            body,
        } => {
            let mut resp = Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
        }
        Answer::Hang => {
            let _ = tokio::time::timeout(Duration::from_secs(30), release.wait_for(|r| *r)).await;
            Ok(Response::builder()
                .status(503)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap())
        }
    }
}

/// A plain-HTTP server on 127.0.0.1 answering the n-th request (0-based) with `f`.
pub async fn serve(f: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Server {
    let responder: Responder = Arc::new(f);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (release, release_rx) = watch::channel(false);
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, responder, rel) = (s2.clone(), responder.clone(), release_rx.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    handle(req, seen.clone(), responder.clone(), rel.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Server {
        url: format!("http://127.0.0.1:{}", addr.port()),
        seen,
        release,
    }
}

/// Every `event_id` string found in a body: JSON documents (concatenated or
/// one a line), walked recursively, strings that hold JSON objects included.
pub fn event_ids(body: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(id)) = m.get("event_id") {
                    out.push(id.clone());
                }
                for (k, x) in m {
                    if k != "event_id" {
                        walk(x, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::String(s) if s.starts_with('{') => {
                if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s) {
                    walk(&inner, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
        walk(&v.expect("JSON body"), &mut out);
    }
    out
}

/// Every JSON document of a body (concatenated, NDJSON or an array's items),
/// with JSON-in-string `message`s left as they are.
pub fn documents(body: &[u8]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
        match v.expect("JSON body") {
            serde_json::Value::Array(a) => out.extend(a),
            other => out.push(other),
        }
    }
    out
}

/// Count of each id.
pub fn counts(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

// ------------------------------------------------------------------ the loop

pub fn open_ring(dir: &Path) -> Ring {
    open_ring_of(dir, 8 << 20, 1 << 20)
}

/// A ring of `max_bytes` in segments of `segment_bytes` in `dir`.
pub fn open_ring_of(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Ring {
    Ring::open(RingSettings {
        dir: dir.to_path_buf(),
        max_bytes,
        segment_bytes,
        max_age: Duration::ZERO,
        fsync: FsyncPolicy::Never,
    })
    .expect("ring opens")
    .0
}

pub fn append(ring: &Ring, events: &[Event]) {
    let enc: Vec<_> = events.iter().map(|e| e.encode()).collect();
    ring.append(&enc).expect("append");
}

/// Builds `[destinations.NAME]` of `kind` from TOML through the registry.
pub fn destination(name: &str, kind: &str, toml_text: &str, data_dir: &Path) -> Arc<Destination> {
    let table: toml::Table = toml::from_str(toml_text).expect("test TOML");
    let section = SectionConfig {
        section: "destinations",
        name: name.into(),
        kind: kind.into(),
        table,
    };
    Arc::new(registry::build(&section, data_dir, data_dir).expect("destination builds"))
}

/// A running delivery loop.
pub struct Running {
    pub dest: Arc<Destination>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Sets the stop flag and waits (bounded) for the loop to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("loop stops within 10 s")
            .expect("loop did not panic");
    }
}

/// Opens the destination's cursor on `ring` and runs `worker::run`.
pub fn start(ring: &Ring, dest: Arc<Destination>) -> Running {
    start_with_grace(ring, dest, Duration::from_secs(2))
}

pub fn start_with_grace(ring: &Ring, dest: Arc<Destination>, grace: Duration) -> Running {
    let cursor = ring
        .cursor(&dest.name, dest.common.when_full)
        .expect("cursor");
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(worker::run(dest.clone(), cursor, stop_rx, grace));
    Running { dest, stop, task }
}

/// Waits until `cond` holds; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the destination has nothing in flight and its lag is 0.
pub async fn wait_drained(d: &Destination, timeout: Duration) {
    wait_until(&format!("{} drained", d.name), timeout, || {
        d.status.lag.load(Ordering::Relaxed) == 0 && d.status.in_flight.load(Ordering::Relaxed) == 0
    })
    .await;
}

/// The dead-letter lines of a destination.
pub fn dead_letters(d: &Destination) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(d.dead_letter.path()) {
        Ok(t) => t
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead-letter line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}
