//! The admin API over real HTTP: a relay started from a config string, with
//! an HTTP source, a file destination and an unreachable HTTP destination;
//! every route, the auth matrix, metrics after real ingest, event queries
//! with every filter and cursor pagination, and test actions as ADMIN events.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use siem_relay::app::Relay;
use siem_relay::config::Config;
use siem_relay::event::{Actor, Event, Resource, Severity};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-token-0123";
const VIEWER: &str = "viewer-token-4567";
const INGEST: &str = "ingest-token";

struct Harness {
    relay: Arc<Relay>,
    api: String,
    ingest: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Starts a relay; `source` names the HTTP source (source metrics are
/// process-wide, so each test uses its own name).
async fn start(source: &str) -> Harness {
    start_in(tempfile::tempdir().unwrap(), source).await
}

/// Starts a relay whose config and data live in `dir`.
async fn start_in(dir: tempfile::TempDir, source: &str) -> Harness {
    let d = dir.path().display();
    let text = format!(
        r#"
data_dir = "{d}/data"
[buffer]
max_bytes = "4MiB"
segment_bytes = "1MiB"
fsync = "never"

[sources.{source}]
type = "http"
address = "127.0.0.1:0"
tokens = ["{INGEST}"]

[destinations.archive]
type = "file"
path = "{d}/out/events.ndjson"
batch_timeout = "20ms"

[destinations.broken]
type = "http"
endpoint = "http://127.0.0.1:1/hook"
filter = {{ categories = ["NETWORK"] }}

[destinations.spare]
type = "file"
path = "{d}/out/spare.ndjson"
enabled = false

[api]
address = "127.0.0.1:0"
tokens = [
  {{ name = "ops", role = "admin", token_sha256 = "{}" }},
  {{ name = "dash", role = "viewer", token_sha256 = "{}" }},
]
"#,
        sha(ADMIN),
        sha(VIEWER)
    );
    // on disk too, for the tests that reload it
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, &text).unwrap();
    let config = Config::parse(&text, &file, &|_| None).unwrap();
    let relay = Relay::start(config).await.unwrap();
    let api = format!("http://{}", relay.api_address().expect("api runs"));
    let ingest = format!(
        "http://{}/v1/events",
        relay.source_addresses().await[source]
    );
    Harness {
        relay,
        api,
        ingest,
        client: client(),
        dir,
    }
}

impl Harness {
    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = self.client.request(method, format!("{}{path}", self.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// Sends `body` as JSON with the admin token.
    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("hook-secret"),
            "a secret was answered: {text}"
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn json(&self, method: Method, path: &str, token: &str) -> Value {
        let (status, body) = self.call(method, path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.json(Method::GET, path, VIEWER).await
    }

    /// Every event of a query, following `next_cursor` until `has_more` is false.
    async fn all_pages(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut out = vec![];
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut path = format!("/api/v1/events?{query}&limit={limit}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await;
            let events = page["events"].as_array().unwrap();
            assert!(events.len() <= limit, "page over the limit: {page}");
            out.extend(events.iter().cloned());
            cursor = Some(page["next_cursor"].as_str().unwrap().to_string());
            if !page["has_more"].as_bool().unwrap() {
                return out;
            }
        }
        panic!("pagination does not end");
    }
}

/// After a PUT that kept a stored secret: an event with `action` reaches
/// `server` with only `auth` as its Authorization, and the store holds no
/// `<redacted>` placeholder.
async fn sends_with_the_stored_secret(
    h: &Harness,
    server: &common::TestServer,
    action: &str,
    auth: &str,
) {
    let mut ev = Event::new("SECURITY", Some(action.into()), Severity::Info);
    ev.message = Some("after the put".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    wait_until("delivery", async || !server.requests().is_empty()).await;
    let sent: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(
        !sent.is_empty() && sent.iter().all(|a| a == auth),
        "{sent:?}"
    );
    let store = std::fs::read_to_string(h.dir.path().join("data/api/destinations.json")).unwrap();
    assert!(!store.contains("<redacted>"), "{store}");
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_on_every_route() {
    let h = start("web_auth").await;
    let viewer_routes = [
        "/metrics",
        "/api/v1/destinations",
        "/api/v1/destinations/archive/status",
        "/api/v1/events",
    ];
    for path in viewer_routes {
        for token in [None, Some("wrong"), Some("")] {
            let (status, body) = h.call(Method::GET, path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {token:?}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains("token"), "{body}");
        }
        for token in [VIEWER, ADMIN] {
            let (status, body) = h.call(Method::GET, path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    }
    // a token in another scheme is not a bearer token
    let resp = h
        .client
        .get(format!("{}/api/v1/destinations", h.api))
        .header("authorization", format!("Basic {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    let test = "/api/v1/destinations/archive/test";
    for token in [None, Some("wrong")] {
        assert_eq!(
            h.call(Method::POST, test, token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body) = h.call(Method::POST, test, Some(VIEWER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("admin"), "{body}");
    assert_eq!(
        h.call(Method::POST, test, Some(ADMIN)).await.0,
        StatusCode::OK
    );

    // /health needs no token
    let (status, body) = h.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert!(v["destinations"]["archive"]["healthy"].is_boolean());
    assert!(v["next_seq"].is_u64());

    // unknown things are JSON 404s
    for path in ["/api/v1/destinations/nope/status", "/api/v1/nothing"] {
        let (status, body) = h.call(Method::GET, path, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    }
    let (status, _) = h
        .call(Method::POST, "/api/v1/destinations/nope/test", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // and a method a route does not take is a JSON 405
    let (status, body) = h
        .call(Method::GET, "/api/v1/destinations/archive", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("GET"), "{v}");
    h.relay.shutdown().await.unwrap();
}

/// The value of one exposition line `name{labels} value` (exact name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// An event larger than a segment can never be stored: 413, not a 503
/// that tells the client to retry for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_larger_than_a_segment_is_refused_with_413() {
    let h = start("web_big").await;
    let big = serde_json::json!({"action": "big", "message": "x".repeat(1_200_000)});
    let resp = h
        .client
        .post(&h.ingest)
        .bearer_auth(INGEST)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&big).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not fit a segment"),
        "{body}"
    );
    h.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_ingest() {
    let h = start("web_metrics").await;
    let n = 25;
    let body: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({"category": "SECURITY", "action": "user.login", "message": format!("m{i}")}))
        .collect();
    let resp = h
        .client
        .post(&h.ingest)
        .bearer_auth(INGEST)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let archive = h.relay.destinations().await["archive"].clone();
    wait_until("archive delivery", async || {
        archive.status.sent.load(Ordering::Relaxed) >= n
    })
    .await;
    let (status, text) = h.call(Method::GET, "/metrics", Some(VIEWER)).await;
    assert_eq!(status, StatusCode::OK);
    let next = sample(&text, "siem_relay_buffer_next_seq").unwrap();
    assert_eq!(next, h.relay.ring().next_seq() as f64, "{text}");
    assert!(next >= n as f64);
    assert_eq!(
        sample(&text, "siem_relay_buffer_appended_total"),
        Some(next)
    );
    assert!(sample(&text, "siem_relay_buffer_appended_bytes_total").unwrap() > 100.0 * n as f64);
    assert!(sample(&text, "siem_relay_buffer_segments").unwrap() >= 1.0);
    assert_eq!(
        sample(&text, "siem_relay_buffer_full_refusals_total"),
        Some(0.0)
    );
    let queued = sample(&text, "siem_relay_buffer_queued_appends_total").unwrap();
    assert_eq!(queued, h.relay.ring().stats().queued_appends as f64);
    assert_eq!(
        sample(
            &text,
            r#"siem_relay_source_events_total{source="web_metrics"}"#
        ),
        Some(n as f64),
        "{text}"
    );
    let sent = sample(
        &text,
        r#"siem_relay_destination_sent_total{destination="archive"}"#,
    )
    .unwrap();
    assert!(sent >= n as f64 && sent <= next, "{sent}");
    assert_eq!(
        sample(
            &text,
            r#"siem_relay_destination_sent_total{destination="broken"}"#
        ),
        Some(0.0)
    );
    let last = sample(
        &text,
        r#"siem_relay_destination_last_successful_batch_timestamp_seconds{destination="archive"}"#,
    )
    .unwrap();
    let now = siem_relay::event::now_millis() as f64 / 1000.0;
    assert!(last > now - 60.0 && last <= now + 1.0, "{last} vs {now}");
    for name in [
        "retried_total",
        "rejected_total",
        "filtered_total",
        "dropped_total",
        "lag",
        "in_flight",
        "failure_count_total",
    ] {
        let series = format!(r#"siem_relay_destination_{name}{{destination="archive"}}"#);
        assert!(sample(&text, &series).is_some(), "{series} missing");
    }
    assert!(text.contains("# TYPE siem_relay_destination_sent_total counter"));
    h.relay.shutdown().await.unwrap();
}

/// Appends `n` known events straight into the ring; event `i` varies every filtered field.
fn known_events(n: usize) -> Vec<Event> {
    let base = siem_relay::event::parse_rfc3339_millis("2024-03-01T00:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let (cat, action) = match i % 3 {
                0 => ("AUTHENTICATION", "user.login"),
                1 => ("SECURITY", "user.password_change"),
                _ => ("CUSTOM_THING", "file.read"),
            };
            let sev = if i % 2 == 0 {
                Severity::Warning
            } else {
                Severity::Info
            };
            let mut ev = Event::new(cat, Some(action.into()), sev);
            ev.set_timestamp_ms(base + i as i64 * 60_000);
            ev.tenant_id = Some(if i % 4 == 0 { "acme" } else { "globex" }.into());
            ev.actor = Some(Actor {
                id: Some(format!("u{}", i % 5)),
                email: Some(format!("user{}@example.com", i % 5)),
                ..Default::default()
            });
            ev.resource = Some(Resource {
                name: Some(format!("doc{}", i % 2)),
                path: Some(format!("/files/{i}")),
                ..Default::default()
            });
            ev.message = Some(format!("known-{i}"));
            ev
        })
        .collect()
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.starts_with("known-"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_query_filters_and_pagination() {
    let h = start("web_events").await;
    let n = 30;
    let evs = known_events(n);
    let enc: Vec<_> = evs.iter().map(Event::encode).collect();
    h.relay.ring().append(&enc).unwrap();
    let expect = |f: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..n)
            .filter(|&i| f(i))
            .map(|i| format!("known-{i}"))
            .collect()
    };

    // limit 2 pages: every event once, in order, nothing missing
    let all = h.all_pages("", 2).await;
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates across pages");
    assert_eq!(messages(&all), expect(&|_| true));

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("category=SECURITY", expect(&|i| i % 3 == 1)),
        ("category=custom_thing", expect(&|i| i % 3 == 2)),
        ("action=user.login", expect(&|i| i % 3 == 0)),
        ("action=user.*", expect(&|i| i % 3 != 2)),
        ("min_severity=warning", expect(&|i| i % 2 == 0)),
        ("tenant=acme", expect(&|i| i % 4 == 0)),
        ("actor=u3", expect(&|i| i % 5 == 3)),
        ("actor=user2%40example.com", expect(&|i| i % 5 == 2)),
        ("resource=doc1", expect(&|i| i % 2 == 1)),
        ("resource=%2Ffiles%2F7", expect(&|i| i == 7)),
        (
            "from=2024-03-01T00:10:00Z&to=2024-03-01T00:20:00Z",
            expect(&|i| (10..20).contains(&i)),
        ),
        (
            "from=2024-03-01T00:00:00%2B00:00&category=AUTHENTICATION&tenant=acme&min_severity=warning",
            expect(&|i| i % 3 == 0 && i % 4 == 0),
        ),
        ("tenant=nobody", vec![]),
    ];
    for (query, want) in cases {
        for limit in [2, 1000] {
            let got = messages(&h.all_pages(query, limit).await);
            assert_eq!(got, want, "query {query} limit {limit}");
        }
    }

    // the default limit is 100 and a page never exceeds it
    let more: Vec<_> = known_events(150).iter().map(Event::encode).collect();
    h.relay.ring().append(&more).unwrap();
    let page = h.get("/api/v1/events").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 100);
    assert_eq!(page["has_more"], true);

    // a cursor at the end is stable: a later poll returns only new events
    let tail = h.get("/api/v1/events?limit=1000&cursor=0").await;
    assert_eq!(tail["has_more"], false);
    let cursor = tail["next_cursor"].as_str().unwrap().to_string();
    let empty = h.get(&format!("/api/v1/events?cursor={cursor}")).await;
    assert!(empty["events"].as_array().unwrap().is_empty());
    let mut late = Event::new("SYSTEM", Some("late.one".into()), Severity::Info);
    late.message = Some("late".into());
    h.relay.ring().append(&[late.encode()]).unwrap();
    let page = h.get(&format!("/api/v1/events?cursor={cursor}")).await;
    let evs = page["events"].as_array().unwrap();
    assert_eq!(evs.len(), 1, "{page}");
    assert_eq!(evs[0]["action"], "late.one");
    // a cursor ahead of the ring (never one the API returned) is refused:
    // it would skip every event until the ring caught up
    let ahead = h.relay.ring().next_seq() + 1000;
    let (status, body) = h
        .call(
            Method::GET,
            &format!("/api/v1/events?cursor={ahead}"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // the query does not disturb destinations: the archive still gets everything
    let archive = h.relay.destinations().await["archive"].clone();
    let total = h.relay.ring().next_seq();
    wait_until("archive catches up", async || {
        archive.status.sent.load(Ordering::Relaxed) >= total
    })
    .await;

    for bad in [
        "limit=0",
        "limit=5000",
        "from=yesterday",
        "min_severity=loud",
        "cursor=xyz",
        "colour=red",
    ] {
        let (status, body) = h
            .call(Method::GET, &format!("/api/v1/events?{bad}"), Some(VIEWER))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    }
    h.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_list_status_and_test_actions_are_audited() {
    let h = start("web_dest").await;
    let list = h.get("/api/v1/destinations").await;
    let list = list.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|d| d["name"].as_str().unwrap()).collect();
    // `spare` is the config file's `enabled = false` one: listed, not running
    assert_eq!(names, ["archive", "broken", "spare"]);
    assert_eq!(
        list.iter()
            .map(|d| d["enabled"].clone())
            .collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(list[0]["type"], "file");
    assert!(list[0]["target"]
        .as_str()
        .unwrap()
        .ends_with("events.ndjson"));
    assert_eq!(list[1]["type"], "http");
    assert!(list[1]["target"].as_str().unwrap().contains("127.0.0.1:1"));
    assert!(list[0]["status"]["sent"].is_u64());

    let status = h.get("/api/v1/destinations/archive/status").await;
    assert_eq!(status["name"], "archive");
    assert!(status["status"]["lag"].is_u64());

    let ok = h
        .json(Method::POST, "/api/v1/destinations/archive/test", ADMIN)
        .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let out = std::fs::read_to_string(h.dir.path().join("out/events.ndjson")).unwrap();
    assert!(out.contains("relay.test"), "{out}");

    let failed = h
        .json(Method::POST, "/api/v1/destinations/broken/test", ADMIN)
        .await;
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{failed}"
    );

    let audit = h
        .all_pages("category=ADMIN&action=destination.test", 10)
        .await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["actor"]["id"], "ops");
    assert_eq!(audit[0]["resource"]["id"], "archive");
    assert_eq!(audit[0]["outcome"], "success");
    assert_eq!(audit[1]["resource"]["id"], "broken");
    assert_eq!(audit[1]["outcome"], "failure");
    // and it is in the stream: the archive delivers it
    wait_until("audit event archived", async || {
        std::fs::read_to_string(h.dir.path().join("out/events.ndjson"))
            .is_ok_and(|s| s.contains("\"destination.test\""))
    })
    .await;
    // a refused viewer action is not an admin action
    assert_eq!(
        h.call(
            Method::POST,
            "/api/v1/destinations/archive/test",
            Some(VIEWER)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(h.all_pages("category=ADMIN", 10).await.len(), 2);
    h.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_above_the_failure_threshold_and_api_stops_on_shutdown() {
    let h = start("web_health").await;
    let archive = h.relay.destinations().await["archive"].clone();
    let threshold = siem_relay::api::HEALTH_FAILURE_THRESHOLD;
    archive
        .status
        .consecutive_failures
        .store(threshold, Ordering::Relaxed);
    let (status, body) = h.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    archive
        .status
        .consecutive_failures
        .store(threshold + 1, Ordering::Relaxed);
    let (status, body) = h.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["destinations"]["archive"]["healthy"], false);
    archive
        .status
        .consecutive_failures
        .store(0, Ordering::Relaxed);
    assert_eq!(h.call(Method::GET, "/health", None).await.0, StatusCode::OK);

    let addr = h.relay.api_address().unwrap();
    h.relay.shutdown().await.unwrap();
    assert!(h.relay.api_address().is_none());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// The `X-API-Key` headers the hook server has seen.
fn keys_seen(server: &common::TestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.header("x-api-key").map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_crud_with_secrets_sealed_at_rest() {
    let hook = common::serve(|_, _| common::reply(200, "{}")).await;
    let h = start("web_crud").await;
    let spec = |key: &str| {
        serde_json::json!({
            "type": "http",
            "endpoint": format!("{}/hook", hook.url),
            "batch_timeout": "20ms",
            "headers": { "X-API-Key": key },
        })
    };
    let mut create = spec("hook-secret-1");
    create["name"] = "hook".into();

    // only admins may change destinations
    for token in [None, Some(VIEWER)] {
        let mut req = h
            .client
            .post(format!("{}/api/v1/destinations", h.api))
            .header("content-type", "application/json")
            .body(create.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.unwrap().status();
        assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN);
    }
    assert!(!h.relay.destinations().await.contains_key("hook"));

    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", create.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["settings"]["headers"]["X-API-Key"], "<redacted>");
    assert_eq!(body["settings"]["batch_timeout"], "20ms");

    // it runs, with the secret: the hook receives the retained events with the key
    let mut ev = Event::new("SECURITY", Some("crud.check".into()), Severity::Info);
    ev.message = Some("via hook".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    wait_until("hook delivery", async || !hook.requests().is_empty()).await;
    assert!(keys_seen(&hook).iter().all(|k| k == "hook-secret-1"));

    let list = h.get("/api/v1/destinations").await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "hook")
        .unwrap()
        .clone();
    assert_eq!(row["managed"], true);
    assert_eq!(row["type"], "http");
    let archive = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "archive")
        .unwrap()
        .clone();
    assert_eq!(archive["managed"], false);

    // sealed at rest
    let store = h.dir.path().join("data/api/destinations.json");
    let text = std::fs::read_to_string(&store).unwrap();
    assert!(!text.contains("hook-secret"), "{text}");
    // the endpoint too: an `http` URL may hold the webhook's token
    assert!(text.contains("$enc") && !text.contains("/hook"), "{text}");

    // refusals
    let cases = [
        (
            Method::POST,
            "/api/v1/destinations",
            create.clone(),
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "archive", "type": "stdout"}),
            StatusCode::CONFLICT,
        ),
        // the file's name even while the file has it disabled
        (
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "spare", "type": "stdout"}),
            StatusCode::CONFLICT,
        ),
        (
            Method::DELETE,
            "/api/v1/destinations/spare",
            Value::Null,
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "x", "type": "no_such_type"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "../x", "type": "stdout"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"type": "stdout"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/destinations/archive",
            serde_json::json!({"type": "stdout"}),
            StatusCode::CONFLICT,
        ),
        (
            Method::PUT,
            "/api/v1/destinations/ghost",
            serde_json::json!({"type": "stdout"}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/destinations/hook",
            serde_json::json!({"type": "http"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/destinations/archive",
            Value::Null,
            StatusCode::CONFLICT,
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, answer) = h.send(method.clone(), path, body.clone()).await;
        assert_eq!(status, want, "{method} {path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // the failed update left the hook running with its old settings
    assert!(h.relay.destinations().await.contains_key("hook"));

    // update: the new key is used from now on
    let (status, body) = h
        .send(
            Method::PUT,
            "/api/v1/destinations/hook",
            spec("hook-secret-2"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ev = Event::new("SECURITY", Some("crud.check".into()), Severity::Info);
    ev.message = Some("after update".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    wait_until("delivery with the new key", async || {
        keys_seen(&hook).iter().any(|k| k == "hook-secret-2")
    })
    .await;

    // survives a restart, secrets decrypted again
    h.relay.shutdown().await.unwrap();
    let Harness { dir, relay, .. } = h;
    drop(relay);
    let h = start_in(dir, "web_crud2").await;
    let dests = h.relay.destinations().await;
    assert!(dests.contains_key("hook"), "{:?}", dests.keys());
    let before = hook.requests().len();
    let mut ev = Event::new("SECURITY", Some("crud.check".into()), Severity::Info);
    ev.message = Some("after restart".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    wait_until("delivery after restart", async || {
        hook.requests().len() > before
    })
    .await;
    assert_eq!(
        keys_seen(&hook).last().map(String::as_str),
        Some("hook-secret-2")
    );

    // delete
    let (status, _) = h
        .send(Method::DELETE, "/api/v1/destinations/hook", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!h.relay.destinations().await.contains_key("hook"));
    let (status, _) = h
        .send(Method::DELETE, "/api/v1/destinations/hook", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // every change is an ADMIN event, by the admin token
    let audit = h.all_pages("category=ADMIN&actor=ops", 2).await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "destination.create",
            "destination.update",
            "destination.delete"
        ]
    );
    assert!(audit.iter().all(|e| e["resource"]["id"] == "hook"));
    h.relay.shutdown().await.unwrap();

    let Harness { dir, relay, .. } = h;
    drop(relay);
    let h = start_in(dir, "web_crud3").await;
    assert!(!h.relay.destinations().await.contains_key("hook"));
    h.relay.shutdown().await.unwrap();
}

/// A destination created through the API whose name the config file then
/// takes over (at a reload, as SIGHUP does) leaves the API's set: the
/// file's runs, the API may neither change nor delete it (409), and once
/// the file drops the name again the destination is gone (at that reload
/// and at the next start), not started again from the API's store, and the
/// API may create the name anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_the_config_file_takes_over_leaves_the_api_for_good() {
    let h = start("web_shadow").await;
    let d = h.dir.path().display().to_string();
    let cfg = h.dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let api_out = h.dir.path().join("out/api.ndjson");
    let file_out = h.dir.path().join("out/file.ndjson");
    let by_api = serde_json::json!({
        "name": "taken",
        "type": "file",
        "path": format!("{d}/out/api.ndjson"),
        "batch_timeout": "20ms",
    });
    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", by_api.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let append = |text: &str| {
        let mut ev = Event::new("SECURITY", Some("shadow.check".into()), Severity::Info);
        ev.message = Some(text.into());
        h.relay.ring().append(&[ev.encode()]).unwrap();
    };
    let holds = |path: &std::path::Path, text: &str| {
        std::fs::read_to_string(path).is_ok_and(|t| t.contains(text))
    };
    append("before the takeover");
    wait_until("the API's destination delivers", async || {
        holds(&api_out, "before the takeover")
    })
    .await;

    // the file takes the name over
    let takeover = format!(
        "{original}\n[destinations.taken]\ntype = \"file\"\n\
         path = \"{d}/out/file.ndjson\"\nbatch_timeout = \"20ms\"\n"
    );
    std::fs::write(&cfg, takeover).unwrap();
    h.relay.reload().await.unwrap();
    append("after the takeover");
    wait_until("the file's destination delivers", async || {
        holds(&file_out, "after the takeover")
    })
    .await;
    // a new destination, from the oldest record: not where the API's
    // one of that name stopped
    assert!(
        holds(&file_out, "before the takeover"),
        "the file's destination skipped what the API's had delivered"
    );
    assert!(
        !holds(&api_out, "after the takeover"),
        "the API's one runs on"
    );
    let list = h.get("/api/v1/destinations").await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "taken")
        .unwrap()
        .clone();
    assert_eq!(row["managed"], false, "{row}");
    for (method, body) in [
        (Method::DELETE, Value::Null),
        (Method::PUT, by_api.clone()),
        (Method::POST, by_api.clone()),
    ] {
        let path = match method {
            Method::POST => "/api/v1/destinations",
            _ => "/api/v1/destinations/taken",
        };
        let (status, answer) = h.send(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method}: {answer}");
    }
    let store = h.dir.path().join("data/api/destinations.json");
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(
        !stored.contains("taken"),
        "still in the API's store: {stored}"
    );

    // the file drops it: gone, not the API's one started again
    std::fs::write(&cfg, &original).unwrap();
    h.relay.reload().await.unwrap();
    assert!(!h.relay.destinations().await.contains_key("taken"));
    for method in [Method::DELETE, Method::PUT] {
        let (status, answer) = h
            .send(method.clone(), "/api/v1/destinations/taken", by_api.clone())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
    }
    h.relay.shutdown().await.unwrap();
    let Harness { dir, relay, .. } = h;
    drop(relay);
    let h = start_in(dir, "web_shadow2").await;
    assert!(!h.relay.destinations().await.contains_key("taken"));

    // the name is free for the API again
    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", by_api.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(h.relay.destinations().await.contains_key("taken"));
    // also from the oldest record, not where the file's one stopped
    wait_until("the new API destination delivers the ring", async || {
        holds(&api_out, "after the takeover")
    })
    .await;
    // deleted and created again: the same
    let (status, _) = h
        .send(Method::DELETE, "/api/v1/destinations/taken", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    std::fs::remove_file(&api_out).unwrap();
    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", by_api.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_until("the re-created destination delivers the ring", async || {
        holds(&api_out, "before the takeover") && holds(&api_out, "after the takeover")
    })
    .await;
    h.relay.shutdown().await.unwrap();
}

/// A relay (`start(source)`) given a `file` destination `name` through
/// the API, then stopped: its folder, and the folder's path as text.
async fn stored_then_stopped(source: &str, name: &str) -> (tempfile::TempDir, String) {
    let h = start(source).await;
    let d = h.dir.path().display().to_string();
    let by_api = serde_json::json!({
        "name": name,
        "type": "file",
        "path": format!("{d}/out/api.ndjson"),
    });
    let (status, body) = h.send(Method::POST, "/api/v1/destinations", by_api).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.relay.shutdown().await.unwrap();
    let Harness { dir, relay, .. } = h;
    drop(relay);
    (dir, d)
}

/// A name the config file took over while the relay was stopped is the
/// file's at the next start: the API's settings are dropped from its store
/// then, so the name stays the file's and is gone once the file drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_file_took_while_stopped_leaves_the_api_store_at_start() {
    let (dir, d) = stored_then_stopped("web_shadow_start", "taken").await;

    // started with a file that defines the name (as `start_in` writes it, plus the section)
    let cfg = dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let text = format!(
        "{original}\n[destinations.taken]\ntype = \"file\"\npath = \"{d}/out/file.ndjson\"\n"
    );
    let config = Config::parse(&text, &cfg, &|_| None).unwrap();
    let relay = Relay::start(config).await.unwrap();
    let stored = std::fs::read_to_string(dir.path().join("data/api/destinations.json")).unwrap();
    assert!(
        !stored.contains("taken"),
        "still in the API's store: {stored}"
    );
    relay.shutdown().await.unwrap();
    drop(relay);
    let h = start_in(dir, "web_shadow_start2").await;
    assert!(!h.relay.destinations().await.contains_key("taken"));
    h.relay.shutdown().await.unwrap();
}

/// A config-file destination added while the relay was stopped whose
/// checkpoint file is a stored API destination's (`x.1` in the file, `x_1`
/// made by `POST`: both `cursors/x_1.json`) is refused by `validate` and
/// `run`, as at a reload. It started on the API destination's checkpoint,
/// took its position and skipped every record the ring held, while the
/// API's was not started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_destination_sharing_a_stored_api_destinations_checkpoint_is_refused_at_start() {
    let (dir, d) = stored_then_stopped("web_stored_clash", "x_1").await;

    let cfg = dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (head, api) = original.split_once("[api]").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{head}[destinations.\"x.1\"]\ntype = \"file\"\npath = \"{d}/out/new.ndjson\"\n\n[api]{api}"
        ),
    )
    .unwrap();
    let err = siem_relay::app::load_config(&cfg)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("destinations `x_1` and `x.1` would share the checkpoint file")
            && err.contains("cursors/x_1.json")
            && err.contains("`x_1` is a destination the admin API stored"),
        "{err}"
    );
    // a file that takes the stored name itself is the file's: no clash
    std::fs::write(
        &cfg,
        format!("{head}[destinations.x_1]\ntype = \"blackhole\"\n\n[api]{api}"),
    )
    .unwrap();
    siem_relay::app::load_config(&cfg).expect("the file's own name");
}

/// A destination removed from the config file while the relay was stopped
/// loses its checkpoint at the next start, as one removed at a reload does:
/// a destination given its name later is new and starts at the oldest
/// record, instead of silently skipping to where the removed one stopped.
/// The configured ones keep theirs (a disabled one too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_removed_while_stopped_starts_anew_when_added_again() {
    let h = start("web_gone").await;
    let d = h.dir.path().display().to_string();
    let cfg = h.dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let out = h.dir.path().join("out/gone.ndjson");
    let with_gone = format!(
        "{original}\n[destinations.gone]\ntype = \"file\"\n\
         path = \"{d}/out/gone.ndjson\"\nbatch_timeout = \"20ms\"\n"
    );
    std::fs::write(&cfg, &with_gone).unwrap();
    h.relay.reload().await.unwrap();
    let mut ev = Event::new("SECURITY", Some("gone.check".into()), Severity::Info);
    ev.message = Some("still in the ring".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    let copies = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_or(0, |t| t.matches("still in the ring").count())
    };
    wait_until("delivered", async || copies(&out) == 1).await;
    h.relay.shutdown().await.unwrap();
    let cursors = h.dir.path().join("data/buffer/cursors");
    assert!(cursors.join("gone.json").exists());
    let Harness { dir, relay, .. } = h;
    drop(relay);
    // started again with the config without it (start_in writes it)
    let h = start_in(dir, "web_gone2").await;
    assert!(
        !cursors.join("gone.json").exists(),
        "its checkpoint is gone"
    );
    assert!(
        cursors.join("archive.json").exists(),
        "the others' are kept"
    );
    // added again: from the oldest record
    std::fs::write(&cfg, &with_gone).unwrap();
    h.relay.reload().await.unwrap();
    wait_until("delivered again", async || copies(&out) == 2).await;
    h.relay.shutdown().await.unwrap();
}

/// A stored API destination that cannot start (its file's path is now a
/// folder) keeps its checkpoint: fixed and put again, it goes on where it
/// stopped instead of sending the ring's records again (its checkpoint was
/// deleted at start with those of removed destinations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_destination_that_cannot_start_keeps_its_place() {
    let h = start("web_broken_stored").await;
    let d = h.dir.path().display().to_string();
    let out = h.dir.path().join("out/stored.ndjson");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let settings = serde_json::json!({
        "name": "stored",
        "type": "file",
        "path": format!("{d}/out/stored.ndjson"),
        "batch_timeout": "20ms",
    });
    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", settings.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut ev = Event::new("SECURITY", Some("stored.check".into()), Severity::Info);
    ev.message = Some("sent once".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    let copies = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_or(0, |t| t.matches("sent once").count())
    };
    wait_until("delivered", async || copies(&out) == 1).await;
    h.relay.shutdown().await.unwrap();
    let checkpoint = h.dir.path().join("data/buffer/cursors/stored.json");
    assert!(checkpoint.exists());
    let Harness { dir, relay, .. } = h;
    drop(relay);
    // its path is a folder now: it cannot start
    let kept = dir.path().join("out/kept.ndjson");
    std::fs::rename(&out, &kept).unwrap();
    std::fs::create_dir(&out).unwrap();
    let h = start_in(dir, "web_broken_stored2").await;
    assert!(!h.relay.destinations().await.contains_key("stored"));
    assert!(checkpoint.exists(), "its checkpoint is kept");
    // fixed and put again: it goes on from its checkpoint
    std::fs::remove_dir(&out).unwrap();
    let (status, body) = h
        .send(Method::PUT, "/api/v1/destinations/stored", settings)
        .await;
    assert!(status.is_success(), "{status} {body}");
    let mut ev = Event::new("SECURITY", Some("stored.check".into()), Severity::Info);
    ev.message = Some("after the fix".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    let holds = |t: &str| std::fs::read_to_string(&out).is_ok_and(|s| s.contains(t));
    wait_until("the new event", async || holds("after the fix")).await;
    assert_eq!(copies(&out), 0, "not sent again");
    h.relay.shutdown().await.unwrap();
}

/// POST and PUT read their body as JSON whatever `Content-Type` says
/// (`curl -d` sends a form type, many clients none): a body that is JSON is
/// taken, and one that is not is refused for what it is, not for a header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_bodies_are_json_whatever_the_content_type() {
    let h = start("web_ctype").await;
    let d = h.dir.path().display().to_string();
    let send = |method: Method, path: &str, ctype: Option<&str>, body: String| {
        let mut req = h
            .client
            .request(method, format!("{}{path}", h.api))
            .bearer_auth(ADMIN)
            .body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let spec = |batch: u64| {
        serde_json::json!({
            "name": "plain", "type": "file",
            "path": format!("{d}/out/plain.ndjson"), "batch_size": batch,
        })
        .to_string()
    };
    let (status, body) = send(Method::POST, "/api/v1/destinations", None, spec(10)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let form = Some("application/x-www-form-urlencoded");
    let (status, body) = send(Method::PUT, "/api/v1/destinations/plain", form, spec(20)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["batch_size"], 20);
    for (ctype, text) in [
        (Some("text/plain"), "name=x"),
        (None, ""),
        (form, "{\"type\":"),
    ] {
        let (status, body) = send(Method::POST, "/api/v1/destinations", ctype, text.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("the body is not valid JSON"), "{error}");
        assert!(!error.to_lowercase().contains("content-type"), "{error}");
    }
    h.relay.shutdown().await.unwrap();
}

/// Settings as the API answers them, sent back with a PUT, keep the stored
/// secrets: `<redacted>` is never stored as one (the destination went on
/// sending `Authorization: Bearer <redacted>`). Where nothing is stored to
/// keep (a POST, a secret the destination lacks) the placeholder is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_secret_sent_back_keeps_the_stored_one() {
    let hook = common::serve(|_, _| common::reply(200, "{}")).await;
    let h = start("web_placeholder").await;
    let create = serde_json::json!({
        "name": "authd", "type": "http", "endpoint": format!("{}/x", hook.url),
        "bearer_token": "hook-secret-real", "batch_timeout": "20ms",
    });
    let (status, body) = h
        .send(Method::POST, "/api/v1/destinations", create.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["settings"]["bearer_token"], "<redacted>");
    let mut answered = body["settings"].clone();
    answered["type"] = "http".into();
    answered["batch_size"] = 7.into();
    let (status, body) = h
        .send(Method::PUT, "/api/v1/destinations/authd", answered)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["batch_size"], 7);
    sends_with_the_stored_secret(&h, &hook, "placeholder.check", "Bearer hook-secret-real").await;

    // nothing stored to keep: refused, naming the field
    let mut post = create.clone();
    post["name"] = "authd2".into();
    post["bearer_token"] = "<redacted>".into();
    let mut put = create.clone();
    put["headers"] = serde_json::json!({ "X-Extra": "<redacted>" });
    for (method, path, body, field) in [
        (Method::POST, "/api/v1/destinations", post, "bearer_token"),
        (
            Method::PUT,
            "/api/v1/destinations/authd",
            put,
            "headers.X-Extra",
        ),
    ] {
        let (status, answer) = h.send(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(field) && error.contains("<redacted>"),
            "{error}"
        );
    }
    assert!(!h.relay.destinations().await.contains_key("authd2"));
    h.relay.shutdown().await.unwrap();
}

/// An answer (`{"name", "type", "settings": {…}}`) sent back with a PUT
/// exactly as it came keeps the stored secret, as the flat form does: it
/// was refused with 400 "settings.token is \"<redacted>\" … no stored secret
/// there to keep", although one was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_sent_back_unchanged_keeps_the_stored_secret() {
    let hec = common::serve(|_, _| common::reply(200, r#"{"text":"Success","code":0}"#)).await;
    let h = start("web_answer_back").await;
    let create = serde_json::json!({
        "name": "apihec", "type": "splunk_hec", "endpoint": hec.url,
        "token": "hook-secret-apitok", "batch_timeout": "20ms",
    });
    let (status, answered) = h.send(Method::POST, "/api/v1/destinations", create).await;
    assert_eq!(status, StatusCode::CREATED, "{answered}");
    assert_eq!(answered["settings"]["token"], "<redacted>");
    let (status, again) = h
        .send(Method::PUT, "/api/v1/destinations/apihec", answered.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, answered);
    // and a change made in the nested form applies
    let mut changed = answered.clone();
    changed["settings"]["batch_size"] = 7.into();
    let (status, body) = h
        .send(Method::PUT, "/api/v1/destinations/apihec", changed)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["batch_size"], 7);
    assert_eq!(body["settings"]["token"], "<redacted>");
    sends_with_the_stored_secret(&h, &hec, "answer.back", "Splunk hook-secret-apitok").await;
    // both forms at once: which is meant cannot be told
    let mut both = answered.clone();
    both["batch_size"] = 3.into();
    let (status, body) = h
        .send(Method::PUT, "/api/v1/destinations/apihec", both)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    h.relay.shutdown().await.unwrap();
}

/// A reload (SIGHUP) applies `[api]`'s tokens to the running server at
/// once: a removed token is refused, a demoted one loses the admin routes,
/// an added one works. An `address` change waits for a restart (the API
/// stays where it listens, its tokens reloaded); a file without `[api]`
/// leaves the running API no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_api_token_changes_at_once() {
    const NEW: &str = "new-admin-token-89";
    let h = start("web_reload_tokens").await;
    let cfg = h.dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (head, api) = original.split_once("[api]").unwrap();
    let tokens = format!(
        "[api]\naddress = \"127.0.0.1:0\"\ntokens = [\n\
         {{ name = \"ops\", role = \"viewer\", token_sha256 = \"{}\" }},\n\
         {{ name = \"new\", role = \"admin\", token_sha256 = \"{}\" }},\n]\n",
        sha(ADMIN),
        sha(NEW)
    );
    assert!(api.contains(&sha(VIEWER)));
    std::fs::write(&cfg, format!("{head}{tokens}")).unwrap();
    h.relay.reload().await.unwrap();
    let test = "/api/v1/destinations/archive/test";
    let list = "/api/v1/destinations";
    let status =
        async |method: Method, path: &str, token: &str| h.call(method, path, Some(token)).await.0;
    assert_eq!(
        status(Method::GET, list, VIEWER).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(Method::GET, list, ADMIN).await, StatusCode::OK);
    assert_eq!(
        status(Method::POST, test, ADMIN).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(Method::POST, test, NEW).await, StatusCode::OK);

    // another address: the API stays where it is, tokens still reloaded
    let addr = h.relay.api_address().unwrap();
    let moved = tokens
        .replace("127.0.0.1:0", "127.0.0.1:1")
        .replace("role = \"viewer\"", "role = \"admin\"");
    std::fs::write(&cfg, format!("{head}{moved}")).unwrap();
    h.relay.reload().await.unwrap();
    assert_eq!(h.relay.api_address(), Some(addr));
    assert_eq!(status(Method::POST, test, ADMIN).await, StatusCode::OK);

    // no [api] any more: no token is taken until the restart stops it
    std::fs::write(&cfg, head).unwrap();
    h.relay.reload().await.unwrap();
    for token in [ADMIN, NEW] {
        assert_eq!(
            status(Method::GET, list, token).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(h.call(Method::GET, "/health", None).await.0, StatusCode::OK);
    // and back: its tokens work again
    std::fs::write(&cfg, &original).unwrap();
    h.relay.reload().await.unwrap();
    assert_eq!(status(Method::GET, list, VIEWER).await, StatusCode::OK);
    h.relay.shutdown().await.unwrap();
}

/// An `http` destination's `endpoint` is a secret, as a `sumo_logic` one's
/// is: a webhook's URL often holds its token. Answered as `<redacted>`,
/// sealed at rest, shown in lists by its origin only, and kept when sent
/// back as `<redacted>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_endpoint_is_a_secret() {
    let hook = common::serve(|_, _| common::reply(200, "{}")).await;
    let h = start("web_http_endpoint").await;
    let create = serde_json::json!({
        "name": "webhook", "type": "http",
        "endpoint": format!("{}/services/T0/hook-secret-path?token=hook-secret-query", hook.url),
        "batch_timeout": "20ms",
    });
    let (status, body) = h.send(Method::POST, "/api/v1/destinations", create).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["settings"]["endpoint"], "<redacted>");
    let store = std::fs::read_to_string(h.dir.path().join("data/api/destinations.json")).unwrap();
    assert!(!store.contains("hook-secret"), "{store}");
    let (status, list) = h
        .call(Method::GET, "/api/v1/destinations", Some(VIEWER))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.contains("hook-secret"), "{list}");

    // sent back as answered: the stored URL is kept
    let mut answered = body["settings"].clone();
    answered["type"] = "http".into();
    answered["batch_size"] = 3.into();
    let (status, body) = h
        .send(Method::PUT, "/api/v1/destinations/webhook", answered)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ev = Event::new("SECURITY", Some("endpoint.check".into()), Severity::Info);
    ev.message = Some("to the webhook".into());
    h.relay.ring().append(&[ev.encode()]).unwrap();
    wait_until("delivery", async || !hook.requests().is_empty()).await;
    for r in hook.requests() {
        assert_eq!(r.path, "/services/T0/hook-secret-path");
        assert_eq!(r.query.as_deref(), Some("token=hook-secret-query"));
    }
    h.relay.shutdown().await.unwrap();
}

/// A destination the API adds or changes may not write another's file (the
/// config file's `archive`, an API destination's, however spelled, or one
/// they rotate to), nor a file of the relay's own state: 400, nothing
/// started. The API took them all (QA: each event three times in the
/// archive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_destinations_may_not_write_another_destinations_file() {
    let h = start("web_files").await;
    let d = h.dir.path().display().to_string();
    let post = |spec: Value| h.send(Method::POST, "/api/v1/destinations", spec);
    for (name, path) in [
        ("dup", format!("{d}/out/events.ndjson")),
        ("dup2", format!("{d}/out/../out/./events.ndjson")),
        ("rotated", format!("{d}/out/events.ndjson.3")),
        ("ring", format!("{d}/data/buffer/segment-00000.dat")),
        ("store", format!("{d}/data/api/destinations.json")),
    ] {
        let (status, body) =
            post(serde_json::json!({"name": name, "type": "file", "path": path})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("is also written by") || error.contains("the relay's own state"),
            "{name}: {error}"
        );
    }
    let (status, body) = post(serde_json::json!({"name": "dl", "type": "blackhole",
        "dead_letter": format!("{d}/out/events.ndjson")}))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // a file of its own is fine; then another may not take it, nor may a PUT
    let own =
        serde_json::json!({"name": "p1", "type": "file", "path": format!("{d}/out/p.ndjson")});
    let (status, body) = post(own).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        serde_json::json!({"name": "p2", "type": "file", "path": format!("{d}/out/p.ndjson")}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = h
        .send(
            Method::PUT,
            "/api/v1/destinations/p1",
            serde_json::json!({"type": "file", "path": format!("{d}/out/events.ndjson")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // p1 may keep its own file on a PUT
    let (status, body) = h
        .send(
            Method::PUT,
            "/api/v1/destinations/p1",
            serde_json::json!({"type": "file", "path": format!("{d}/out/p.ndjson"), "batch_size": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<String> = h
        .get("/api/v1/destinations")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str().map(String::from))
        .collect();
    assert!(names.contains(&"p1".to_string()), "{names:?}");
    for refused in ["dup", "dup2", "rotated", "ring", "store", "dl", "p2"] {
        assert!(
            !names.contains(&refused.to_string()),
            "{refused} runs: {names:?}"
        );
    }
    // nor may the config file take an API destination's file: the reload is refused
    let cfg = h.dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (head, api) = original.split_once("[api]").unwrap();
    let taker = format!("[destinations.taker]\ntype = \"file\"\npath = \"{d}/out/p.ndjson\"\n\n");
    std::fs::write(&cfg, format!("{head}{taker}[api]{api}")).unwrap();
    let err = h.relay.reload().await.expect_err("refused").to_string();
    assert!(err.contains("is also written by"), "{err}");
    assert!(!h.relay.destinations().await.contains_key("taker"));
    h.relay.shutdown().await.unwrap();
}

/// An API destination may not take the checkpoint file of a config-file
/// destination whose name differs only in characters a file name cannot
/// hold (`a.b` and `a_b` both make `cursors/a_b.json`), nor may a reload
/// add such a name next to an API destination: each would take the
/// other's position in the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_destinations_may_not_share_a_checkpoint_file() {
    let h = start("web_checkpoints").await;
    let cfg = h.dir.path().join("relay.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (head, api) = original.split_once("[api]").unwrap();
    let add = |section: &str| {
        std::fs::write(
            &cfg,
            format!("{head}[destinations.\"{section}\"]\ntype = \"blackhole\"\n\n[api]{api}"),
        )
        .unwrap()
    };
    add("siem.prod");
    h.relay.reload().await.unwrap();
    let (status, body) = h
        .send(
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "siem_prod", "type": "blackhole"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("destinations `siem.prod` and `siem_prod` would share the checkpoint file")
            && error.contains("cursors/siem_prod.json"),
        "{error}"
    );
    assert!(!h.relay.destinations().await.contains_key("siem_prod"));
    // the other way round: an API destination, then the file's
    let (status, body) = h
        .send(
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "soc-1_x", "type": "blackhole"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    add("soc-1.x");
    let err = h.relay.reload().await.expect_err("refused").to_string();
    assert!(
        err.contains("`soc-1_x` and `soc-1.x` would share the checkpoint file")
            || err.contains("`soc-1.x` and `soc-1_x` would share the checkpoint file"),
        "{err}"
    );
    assert!(!h.relay.destinations().await.contains_key("soc-1.x"));
    assert!(h.relay.destinations().await.contains_key("siem.prod"));
    h.relay.shutdown().await.unwrap();
}

/// A disabled destination (`enabled = false`), the API's or the config
/// file's, is listed and has a status: `enabled: false`, its counters at
/// zero. The API's answered 201 and then 404 (and took the name: 409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_destinations_are_listed_and_have_a_status() {
    let h = start("web_disabled").await;
    let (status, body) = h
        .send(
            Method::POST,
            "/api/v1/destinations",
            serde_json::json!({"name": "paused", "type": "blackhole", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let list = h.get("/api/v1/destinations").await;
    let row = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
            .clone()
    };
    for (name, kind, managed) in [("paused", "blackhole", true), ("spare", "file", false)] {
        let listed = row(name);
        assert_eq!(listed["enabled"], false, "{listed}");
        assert_eq!(listed["type"], kind, "{listed}");
        assert_eq!(listed["managed"], managed, "{listed}");
        assert_eq!(listed["status"]["sent"], 0, "{listed}");
        let status = h.get(&format!("/api/v1/destinations/{name}/status")).await;
        assert_eq!(status["name"], name, "{status}");
        assert_eq!(status["enabled"], false, "{status}");
        assert_eq!(status["status"]["lag"], 0, "{status}");
    }
    assert!(row("spare")["target"]
        .as_str()
        .unwrap()
        .ends_with("spare.ndjson"));
    assert_eq!(row("archive")["enabled"], true);
    // enabled by a PUT it runs; deleted it is gone
    let (status, body) = h
        .send(
            Method::PUT,
            "/api/v1/destinations/paused",
            serde_json::json!({"type": "blackhole"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let status = h.get("/api/v1/destinations/paused/status").await;
    assert_eq!(status["enabled"], true, "{status}");
    assert!(h.relay.destinations().await.contains_key("paused"));
    let (status, body) = h
        .send(
            Method::PUT,
            "/api/v1/destinations/paused",
            serde_json::json!({"type": "blackhole", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!h.relay.destinations().await.contains_key("paused"));
    assert_eq!(
        h.get("/api/v1/destinations/paused/status").await["enabled"],
        false
    );
    let (status, _) = h
        .call(Method::DELETE, "/api/v1/destinations/paused", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .call(
            Method::GET,
            "/api/v1/destinations/paused/status",
            Some(VIEWER),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // a reload whose file no longer has `spare` drops it from the list
    let cfg = h.dir.path().join("relay.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (head, rest) = text.split_once("[destinations.spare]").unwrap();
    let (_, api) = rest.split_once("[api]").unwrap();
    std::fs::write(&cfg, format!("{head}[api]{api}")).unwrap();
    h.relay.reload().await.unwrap();
    let names: Vec<String> = h
        .get("/api/v1/destinations")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["archive", "broken"]);
    h.relay.shutdown().await.unwrap();
}

/// The API's 400s for a destination's settings say what `validate` says:
/// an unknown key lists the keys every destination takes too, and a
/// setting that must be a table names no Rust type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_setting_errors_list_every_key_and_name_no_rust_type() {
    let h = start("web_setting_errors").await;
    let post = |spec: Value| h.send(Method::POST, "/api/v1/destinations", spec);
    let (status, body) =
        post(serde_json::json!({"name": "n1", "type": "stdout", "batch_sise": 3})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`batch_size`, `batch_bytes`")
            && error.contains("`dead_letter`; did you mean `batch_size`?"),
        "{error}"
    );
    let (status, body) =
        post(serde_json::json!({"name": "n2", "type": "stdout", "filter": "SECURITY"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("expected a table such as `filter = { categories = [\"SECURITY\"] }`")
            && !error.contains("struct"),
        "{error}"
    );
    h.relay.shutdown().await.unwrap();
}

/// A disabled destination is tested as `test-destination` tests it, from
/// its config: the operator's way to check it before enabling it. It was
/// 404 "no destination" while its status was there; it still does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_destination_can_be_tested_before_it_is_enabled() {
    let h = start("web_test_disabled").await;
    let (status, body) = h
        .call(Method::POST, "/api/v1/destinations/spare/test", Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("spare.ndjson"),
        "{answer}"
    );
    let out = std::fs::read_to_string(h.dir.path().join("out/spare.ndjson")).unwrap();
    assert!(out.contains("relay.test"), "{out}");
    assert_eq!(
        h.get("/api/v1/destinations/spare/status").await["enabled"],
        false
    );
    assert!(!h.relay.destinations().await.contains_key("spare"));
    let audit = h
        .all_pages("category=ADMIN&action=destination.test", 10)
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["resource"]["id"], "spare");
    assert_eq!(audit[0]["outcome"], "success");
    h.relay.shutdown().await.unwrap();
}
