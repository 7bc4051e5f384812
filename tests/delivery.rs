//! The shared delivery loop end to end: events appended to a real ring are
//! read through a destination's cursor by `worker::run`, filtered, redacted,
//! encoded by the destination's wire format and sent to scripted local HTTP
//! servers (real sockets on 127.0.0.1) that record every request. Each test
//! asserts what reached the server, the status counters, the dead-letter
//! file and the checkpoint.

mod delivery_support;

use delivery_support::*;
use hmac::{Hmac, Mac};
use siem_relay::buffer::Ring;
use siem_relay::destinations::Destination;
use siem_relay::event::{Actor, Event, Resource, Severity};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

fn ev(i: usize) -> Event {
    let mut e = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
    e.event_id = format!("evt_{i:04}");
    e.message = Some(format!("login {i} failed"));
    e
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("evt_{i:04}")).collect()
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

/// Fast retries, small batches, one send at a time unless a test says otherwise.
const LOOP: &str = "batch_size = 10\nbatch_timeout = \"20ms\"\nconcurrency = 1\n\
                    retry = { initial_backoff = \"30ms\", max_backoff = \"200ms\" }\n";

/// After the loop stopped: a fresh cursor of the same name finds nothing
/// left, i.e. everything was acknowledged and checkpointed.
fn assert_checkpoint_at_end(ring: &Ring, name: &str) {
    let mut c = ring
        .cursor(name, Default::default())
        .expect("cursor reopens");
    let mut out = Vec::new();
    let r = c.read(1000, 1 << 20, &mut out);
    assert!(
        r.is_none(),
        "cursor `{name}` resumes at {r:?} with {} unacknowledged events",
        out.len()
    );
    assert_eq!(c.lag(), 0);
}

/// Waits until the counters account for `n` events, then lets at least two
/// checkpoint rounds pass and requires lag 0 and nothing in flight.
async fn settle(d: &siem_relay::destinations::Destination, n: u64) {
    wait_until("every event accounted for", T, || {
        let s = d.status.snapshot();
        s.sent + s.rejected + s.filtered >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    wait_drained(d, T).await;
}

// ------------------------------------------------------------ (a) Splunk HEC

/// A ring in `data_dir/buffer` holding events `0..n`, and a `splunk_hec`
/// destination "splunk" (token `token`, the fast test loop) sending to `url`.
fn hec_with_events(data_dir: &Path, url: &str, token: &str, n: usize) -> (Ring, Arc<Destination>) {
    hec_with_loop(data_dir, url, token, n, LOOP)
}

/// [`hec_with_events`] with the loop settings `settings` (batching, retry).
fn hec_with_loop(
    data_dir: &Path,
    url: &str,
    token: &str,
    n: usize,
    settings: &str,
) -> (Ring, Arc<Destination>) {
    let ring = open_ring(&data_dir.join("buffer"));
    append(&ring, &(0..n).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "splunk",
        "splunk_hec",
        &format!("endpoint = \"{url}\"\ntoken = \"{token}\"\n{settings}"),
        data_dir,
    );
    (ring, dest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_busy_is_retried_and_every_event_delivered_once() {
    let srv = serve(|_, n| match n {
        0 => reply(503, r#"{"text":"Server is busy","code":9}"#),
        _ => reply(200, r#"{"text":"Success","code":0}"#),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = hec_with_events(dir.path(), &srv.url, "tok", 25);
    let run = start(&ring, dest.clone());
    wait_until("25 events accepted", T, || srv.accepted_ids().len() >= 25).await;
    settle(&dest, 25).await;
    run.stop().await;

    let reqs = srv.requests();
    assert!(reqs.iter().all(|r| r.path == "/services/collector/event"
        && r.header("authorization") == Some("Splunk tok")));
    assert_eq!(reqs[0].status, 503);
    let accepted = srv.accepted_ids();
    assert_eq!(accepted.len(), 25, "each event accepted exactly once");
    assert_eq!(set(&accepted), set(&ids(0..25)));
    // duplicates on the wire are exactly the refused first batch
    let all: Vec<String> = reqs.iter().flat_map(|r| r.event_ids()).collect();
    let first = reqs[0].event_ids();
    assert_eq!(first, ids(0..10));
    for (id, c) in counts(&all) {
        let expected = if first.contains(&id) { 2 } else { 1 };
        assert_eq!(c, expected, "{id} sent {c} times");
    }
    let s = dest.status.snapshot();
    assert!(s.retried > 0, "{s:?}");
    assert_eq!((s.sent, s.rejected), (25, 0), "{s:?}");
    assert!(dead_letters(&dest).is_empty());
    assert_checkpoint_at_end(&ring, "splunk");
}

/// Splunk refuses a request for one event's data (code 12 with
/// `invalid-event-number`) and takes nothing of it: each such answer
/// dead-letters one event and the rest goes again at once, without using
/// up `max_attempts` or growing the backoff. Counted as failed attempts,
/// the good events of a batch with three bad ones were dead-lettered as
/// "gave up after 2 attempts", and `/health` turned unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_refusing_single_events_is_progress_not_failed_attempts() {
    const BAD: [&str; 3] = ["evt_0003", "evt_0005", "evt_0008"];
    let srv = serve(|req, _| {
        let ids = req.event_ids();
        match ids.iter().position(|id| BAD.contains(&id.as_str())) {
            Some(n) => reply(
                400,
                &format!(
                    r#"{{"text":"Event field is required","code":12,"invalid-event-number":{n}}}"#
                ),
            ),
            None => reply(200, r#"{"text":"Success","code":0}"#),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // a backoff that would show: two failed attempts take at least 2 s
    let (ring, dest) = hec_with_loop(
        dir.path(),
        &srv.url,
        "tok",
        10,
        "batch_size = 10\nbatch_timeout = \"20ms\"\n\
         retry = { initial_backoff = \"2s\", max_backoff = \"4s\", max_attempts = 2 }\n",
    );
    let started = Instant::now();
    let run = start(&ring, dest.clone());
    settle(&dest, 10).await;
    let took = started.elapsed();
    run.stop().await;

    let good: Vec<String> = ids(0..10)
        .into_iter()
        .filter(|id| !BAD.contains(&id.as_str()))
        .collect();
    assert_eq!(srv.accepted_ids(), good, "each good event once, in order");
    let dead: Vec<String> = dead_letters(&dest)
        .iter()
        .map(|d| d["event"]["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set(&dead),
        set(&BAD.map(String::from)),
        "only the bad events"
    );
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (7, 3), "{s:?}");
    assert_eq!(s.consecutive_failures, 0, "{s:?}");
    // not one failed attempt: none counted, no error told (the merged
    // answer made up a reason, "part of the request must be retried")
    assert_eq!((s.failure_count, &s.last_error), (0, &None), "{s:?}");
    assert!(s.healthy, "{s:?}");
    assert_eq!(srv.requests().len(), 4, "three refusals, one success");
    assert!(
        took < Duration::from_secs(2),
        "waited {took:?} between rounds"
    );
    assert_checkpoint_at_end(&ring, "splunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_invalid_token_is_dead_lettered_acknowledged_not_retried() {
    let srv = serve(|_, _| reply(403, r#"{"text":"Invalid token","code":4}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = hec_with_events(dir.path(), &srv.url, "wrong", 5);
    let run = start(&ring, dest.clone());
    settle(&dest, 5).await;
    // time for a retry to show up if there were one (backoff is 30 ms)
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.stop().await;

    assert_eq!(srv.requests().len(), 1, "a 403 must not be retried");
    let s = dest.status.snapshot();
    assert_eq!((s.rejected, s.sent, s.retried), (5, 0, 0), "{s:?}");
    let dl = dead_letters(&dest);
    assert_eq!(dl.len(), 5);
    assert_eq!(
        dest.dead_letter.path(),
        dir.path().join("dead_letter/splunk.ndjson")
    );
    for (i, line) in dl.iter().enumerate() {
        assert_eq!(line["destination"], "splunk");
        assert_eq!(line["event"]["event_id"], format!("evt_{i:04}"));
        let reason = line["reason"].as_str().unwrap();
        assert!(
            reason.contains("Invalid token") && reason.contains("403"),
            "{reason}"
        );
    }
    assert_checkpoint_at_end(&ring, "splunk");
}

// ------------------------------------------------- (b) Elasticsearch partial

fn bulk_answer(docs: usize, special: &[(usize, u16, &str)]) -> String {
    let items: Vec<serde_json::Value> = (0..docs)
        .map(|i| match special.iter().find(|s| s.0 == i) {
            Some((_, status, kind)) => serde_json::json!({"create": {
                "_index": "siem", "status": status,
                "error": {"type": kind, "reason": format!("{kind} for item {i}")}}}),
            None => serde_json::json!({"create": {"_index": "siem", "status": 201}}),
        })
        .collect();
    serde_json::json!({"took": 3, "errors": !special.is_empty(), "items": items}).to_string()
}

/// A ring in `data_dir/buffer` holding events `0..n`, and an
/// `elasticsearch` destination "es" (index `siem`, the fast test loop)
/// sending to `url`.
fn es_with_events(data_dir: &Path, url: &str, n: usize) -> (Ring, Arc<Destination>) {
    let ring = open_ring(&data_dir.join("buffer"));
    append(&ring, &(0..n).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "es",
        "elasticsearch",
        &format!("endpoint = \"{url}\"\nindex = \"siem\"\n{LOOP}"),
        data_dir,
    );
    (ring, dest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_item_429_resent_alone_item_400_dead_lettered() {
    let srv = serve(|s, n| {
        let docs = s.body_str().lines().count() / 2;
        match n {
            0 => reply(
                200,
                &bulk_answer(
                    docs,
                    &[
                        (3, 429, "es_rejected_execution_exception"),
                        (6, 400, "mapper_parsing_exception"),
                    ],
                ),
            ),
            _ => reply(200, &bulk_answer(docs, &[])),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = es_with_events(dir.path(), &srv.url, 10);
    let run = start(&ring, dest.clone());
    settle(&dest, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.stop().await;

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert!(reqs.iter().all(|r| r.path == "/_bulk"));
    assert_eq!(reqs[0].event_ids(), ids(0..10));
    assert_eq!(
        reqs[1].event_ids(),
        vec!["evt_0003".to_string()],
        "only the 429 item is re-sent"
    );
    // delivered = the 201 items of both requests: all but #6, once each
    let mut delivered: Vec<String> = reqs[0]
        .event_ids()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 6)
        .map(|(_, id)| id)
        .collect();
    delivered.extend(reqs[1].event_ids());
    let mut expected = ids(0..10);
    expected.remove(6);
    assert_eq!(set(&delivered), set(&expected));
    assert_eq!(delivered.len(), 9);

    let dl = dead_letters(&dest);
    assert_eq!(dl.len(), 1, "{dl:#?}");
    assert_eq!(dl[0]["event"]["event_id"], "evt_0006");
    let reason = dl[0]["reason"].as_str().unwrap();
    assert!(reason.contains("mapper_parsing_exception"), "{reason}");
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (9, 1), "{s:?}");
    assert_checkpoint_at_end(&ring, "es");
}

/// Every item refused, each for a reason of its own (Elasticsearch's name
/// the field value): all dead-lettered, and the batch counts as a failure,
/// not as a successful batch, so a mapping conflict that refuses everything
/// shows as unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_batch_with_every_item_refused_is_a_failure_not_a_success() {
    let srv = serve(|s, _| {
        let docs = s.body_str().lines().count() / 2;
        let all: Vec<(usize, u16, &str)> = (0..docs)
            .map(|i| {
                (
                    i,
                    if i % 2 == 0 { 400 } else { 404 },
                    "mapper_parsing_exception",
                )
            })
            .collect();
        reply(200, &bulk_answer(docs, &all))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = es_with_events(dir.path(), &srv.url, 4);
    let run = start(&ring, dest.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dest.status.snapshot().rejected < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            dest.status.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.stop().await;
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.sent_batches, s.rejected), (0, 0, 4), "{s:?}");
    assert_eq!(s.consecutive_failures, 1, "{s:?}");
    assert!(s.last_successful_batch_at.is_none(), "{s:?}");
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains("all 4 events rejected") && last.contains("mapper_parsing_exception"),
        "{last}"
    );
    assert_eq!(dead_letters(&dest).len(), 4);
    assert_checkpoint_at_end(&ring, "es");
}

/// Items answered 429 round after round until `max_attempts` runs out: the
/// give-up reason (dead letters, `last_error`) tells Elasticsearch's status
/// and error type, as a refused item's does. It said only "gave up after 3
/// attempts: part of the request must be retried". The first round takes
/// one document: progress, so three more rounds follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_giving_up_on_429_items_tells_their_error() {
    let srv = serve(|s, n| {
        let docs = s.body_str().lines().count() / 2;
        let busy: Vec<(usize, u16, &str)> = (0..docs)
            .filter(|&i| n > 0 || i > 0)
            .map(|i| (i, 429, "es_rejected_execution_exception"))
            .collect();
        reply(200, &bulk_answer(docs, &busy))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    append(&ring, &(0..4).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "es",
        "elasticsearch",
        &format!(
            "endpoint = \"{}\"\nindex = \"siem\"\nbatch_size = 10\nbatch_timeout = \"20ms\"\n\
             retry = {{ initial_backoff = \"20ms\", max_backoff = \"50ms\", max_attempts = 3 }}\n",
            srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 4).await;
    run.stop().await;
    assert_eq!(
        srv.requests().len(),
        4,
        "one round that took a document, then max_attempts"
    );
    let dl = dead_letters(&dest);
    assert_eq!(dl.len(), 3, "{dl:#?}");
    for l in &dl {
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.contains("gave up after 3 attempts")
                && reason.contains("(429 es_rejected_execution_exception)"),
            "{reason}"
        );
    }
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (1, 3), "{s:?}");
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains("429 es_rejected_execution_exception"),
        "{last}"
    );
    assert_checkpoint_at_end(&ring, "es");
}

/// A 200 whose bulk answer does not confirm each document (`{}`, or
/// `"errors": false` with no items for two documents, or fewer items than
/// documents whatever `errors` says) delivers nothing: each is a failed
/// attempt (counted, `last_error` telling what came back) and the whole
/// batch goes again. `{}` and `{"errors":false,"items":[]}` counted the
/// batch as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_answer_without_an_item_per_document_is_a_failed_attempt() {
    let srv = serve(|s, n| {
        let docs = s.body_str().lines().count() / 2;
        match n {
            0 => reply(200, "{}"),
            1 => reply(200, r#"{"took":1,"errors":false,"items":[]}"#),
            2 => reply(
                200,
                r#"{"took":1,"errors":true,"items":[{"create":{"_id":"x","status":201}}]}"#,
            ),
            _ => reply(200, &bulk_answer(docs, &[])),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = es_with_events(dir.path(), &srv.url, 2);
    let run = start(&ring, dest.clone());
    wait_until("4 requests", T, || srv.requests().len() >= 4).await;
    settle(&dest, 2).await;
    let failed = dest.status.snapshot();
    run.stop().await;
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    for r in &reqs {
        assert_eq!(r.event_ids(), ids(0..2), "the whole batch each time");
    }
    assert_eq!((failed.sent, failed.failure_count), (2, 3), "{failed:?}");
    let last = failed.last_error.unwrap_or_default();
    assert!(
        last.contains("1 bulk item for 2 documents") && last.contains("\"_id\":\"x\""),
        "{last}"
    );
    assert!(dead_letters(&dest).is_empty());
    assert_checkpoint_at_end(&ring, "es");
}

/// A batch sent again in part after an answer that took some of it (an
/// Elasticsearch item failing 429, a `body = "single"` request answered
/// 503 while the others were taken) is a failed attempt as any other: in
/// `failure_count` with `last_error` naming the item's error, a `warn`
/// line once for the batch, and `info` once it is delivered after
/// retrying. It left no log line, `failure_count` 0 and `last_error` null.
/// (`max_attempts` still counts only rounds without progress.)
#[tokio::test]
async fn a_batch_retried_in_part_is_a_failed_attempt_logged_and_counted() {
    let (logs, _guard) = LogLines::capture_at(tracing::Level::INFO);
    let es = serve(|s, n| {
        let docs = s.body_str().lines().count() / 2;
        match n {
            0 => reply(
                200,
                &bulk_answer(docs, &[(1, 429, "es_rejected_execution_exception")]),
            ),
            _ => reply(200, &bulk_answer(docs, &[])),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = es_with_events(dir.path(), &es.url, 3);
    let run = start(&ring, dest.clone());
    settle(&dest, 3).await;
    run.stop().await;
    let reqs = es.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].event_ids(), vec!["evt_0001".to_string()]);
    let s = dest.status.snapshot();
    assert_eq!(
        (s.sent, s.failure_count, s.consecutive_failures),
        (3, 1, 0),
        "{s:?}"
    );
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains("1 events to retry")
            && last.contains("(429 es_rejected_execution_exception)"),
        "{last}"
    );

    let web = serve(|s, n| match (n, s.body_str().contains("evt_0001")) {
        (1, true) => reply(503, "upstream busy"),
        _ => reply(200, ""),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    append(&ring, &(0..3).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "web",
        "http",
        &format!("endpoint = \"{}\"\nbody = \"single\"\n{LOOP}", web.url),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 3).await;
    run.stop().await;
    let sent: Vec<String> = web.requests().iter().flat_map(|r| r.event_ids()).collect();
    assert_eq!(counts(&sent).get("evt_0001"), Some(&2), "{sent:?}");
    let s = dest.status.snapshot();
    assert_eq!(
        (s.sent, s.failure_count, s.consecutive_failures),
        (3, 1, 0),
        "{s:?}"
    );
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains("503") && last.contains("upstream busy"),
        "{last}"
    );

    let text = logs.text();
    let lines = |level: &str, what: &str| {
        text.lines()
            .filter(|l| l.contains(level) && l.contains(what))
            .collect::<Vec<_>>()
    };
    let es_warn = lines("WARN", "destination=es");
    assert_eq!(es_warn.len(), 1, "{text}");
    assert!(
        es_warn[0].contains("delivery failed for part of a batch")
            && es_warn[0].contains("es_rejected_execution_exception"),
        "{text}"
    );
    let web_warn = lines("WARN", "destination=web");
    assert_eq!(web_warn.len(), 1, "{text}");
    assert!(web_warn[0].contains("503"), "{text}");
    for d in ["destination=es", "destination=web"] {
        let delivered: Vec<_> = lines("INFO", d)
            .into_iter()
            .filter(|l| l.contains("delivered after retrying"))
            .collect();
        assert_eq!(delivered.len(), 1, "{d}: {text}");
    }
}

// ------------------------------------------------------ (c) Datadog 429 wait

/// A server that answers its first request 429 with `Retry-After: 2`, and
/// every other one 202.
async fn throttling_once() -> Server {
    serve(|_, n| match n {
        0 => reply(429, r#"{"errors":["rate limited"]}"#).with_header("retry-after", "2"),
        _ => reply(202, "{}"),
    })
    .await
}

/// A ring in `data_dir/buffer` holding events `0..n`, and a `datadog`
/// destination "dd" (API key `k`, loop settings `settings`) sending to `url`.
fn datadog_with_events(
    data_dir: &Path,
    url: &str,
    n: usize,
    settings: &str,
) -> (Ring, Arc<Destination>) {
    let ring = open_ring(&data_dir.join("buffer"));
    append(&ring, &(0..n).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "dd",
        "datadog",
        &format!("endpoint = \"{url}\"\napi_key = \"k\"\n{settings}"),
        data_dir,
    );
    (ring, dest)
}

/// The `warn` lines logged while `f` runs on this thread (a current-thread
/// runtime runs the loop's tasks here too).
struct LogLines(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogLines {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        Self::capture_at(tracing::Level::WARN)
    }
    /// [`capture`](Self::capture) of the lines at `level` and above.
    fn capture_at(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let to = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || Shared(to.clone()))
            .finish();
        (LogLines(buf), tracing::subscriber::set_default(subscriber))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server refusing every request with 413 (a proxy with a small body
/// limit): the transport halves the requests down to single events, and
/// meanwhile each 413 is a failed attempt in the status, logged at `warn`
/// the 1st, 2nd, 4th, … time; the dead-letter reason tells the event's
/// request size and that it was below Datadog's 5 MB, not "above the 5 MB
/// payload limit". It halved 1000 events in 1996 requests over 45 s shown
/// `healthy`, with `failure_count` 0 and nothing logged.
#[tokio::test]
async fn datadog_413_to_everything_is_a_failing_destination_meanwhile() {
    let (logs, _guard) = LogLines::capture();
    // the third request (the first quarter) hangs, to look at the status
    let srv = serve(|_, n| match n {
        2 => Answer::Hang,
        _ => reply(413, "Request Entity Too Large"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    let events: Vec<Event> = (0..8)
        .map(|i| {
            let mut e = ev(i);
            e.message = Some(format!("{i} {}", "x".repeat(450)));
            e
        })
        .collect();
    append(&ring, &events);
    let dest = destination(
        "dd",
        "datadog",
        &format!(
            "endpoint = \"{}\"\napi_key = \"k\"\nbatch_size = 8\nbatch_timeout = \"20ms\"\n\
             retry = {{ initial_backoff = \"20ms\", max_backoff = \"50ms\" }}\n",
            srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    wait_until("the third request", T, || srv.requests().len() >= 3).await;
    let s = dest.status.snapshot();
    assert_eq!((s.failure_count, s.consecutive_failures), (2, 2), "{s:?}");
    assert!(!s.healthy, "{s:?}");
    let last = s.last_error.unwrap_or_default();
    assert!(
        last.contains("answered 413") && last.contains("a request of 4 events, "),
        "{last}"
    );
    let first = srv.requests()[0].body.len();
    let log = logs.text();
    assert!(
        log.contains(&format!(
            "a request of 8 events, {first} bytes uncompressed"
        )) && log.contains("failed_requests=1")
            && log.contains("failed_requests=2")
            && log.contains(" WARN "),
        "{log}"
    );
    srv.release_hung(); // 503: those 2 events go again, then 413 to all
    settle(&dest, 8).await;
    run.stop().await;

    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (0, 8), "{s:?}");
    assert!(!s.healthy && s.failure_count > 8, "{s:?}");
    let dl = dead_letters(&dest);
    assert_eq!(dl.len(), 8);
    for (l, r) in dl.iter().zip(
        srv.requests()
            .iter()
            .filter(|r| r.event_ids().len() == 1 && r.status == 413),
    ) {
        let reason = l["reason"].as_str().unwrap();
        let size = format!("a request of 1 event, {} bytes uncompressed", r.body.len());
        assert!(
            reason.contains("Datadog answered 413")
                && reason.contains(&size)
                && reason.contains("below Datadog's documented limit of 5000000 bytes")
                && !reason.contains("above"),
            "{reason} ({size})"
        );
    }
    assert!(logs.text().contains("failed_requests=4"), "{}", logs.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_429_retry_after_is_honoured() {
    let srv = throttling_once().await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = datadog_with_events(dir.path(), &srv.url, 3, LOOP);
    let run = start(&ring, dest.clone());
    wait_until("second attempt", T, || srv.requests().len() >= 2).await;
    settle(&dest, 3).await;
    run.stop().await;

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("dd-api-key"), Some("k"));
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "waited only {waited:?} after Retry-After: 2"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(set(&srv.accepted_ids()), set(&ids(0..3)));
    assert_eq!(srv.accepted_ids().len(), 3);
    assert!(dest.status.snapshot().retried > 0);
}

/// A `Retry-After` holds every batch of the destination, not only the one
/// it answered: with `concurrency = 2` the free send slot does not send the
/// batches that arrive meanwhile (it sent them at once before: a throttled
/// SIEM saw requests all through the wait it had asked for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_holds_every_batch_of_the_destination() {
    let srv = throttling_once().await;
    let dir = tempfile::tempdir().unwrap();
    let two_slots = LOOP.replace("concurrency = 1", "concurrency = 2");
    let (ring, dest) = datadog_with_events(dir.path(), &srv.url, 10, &two_slots);
    let run = start(&ring, dest.clone());
    wait_until("the first batch answered", T, || !srv.requests().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // five more batches while the first one waits, and a slot free for them
    append(&ring, &(10..60).map(ev).collect::<Vec<_>>());
    wait_until("60 events accepted", T, || srv.accepted_ids().len() >= 60).await;
    settle(&dest, 60).await;
    run.stop().await;

    let reqs = srv.requests();
    assert_eq!(reqs[0].status, 429);
    for r in &reqs[1..] {
        let after = r.at - reqs[0].at;
        assert!(
            after >= Duration::from_secs(2),
            "a request {after:?} after the 429 that asked for 2 s ({:?})",
            r.event_ids().first()
        );
    }
    assert_eq!(srv.accepted_ids().len(), 60);
    assert_eq!(set(&srv.accepted_ids()), set(&ids(0..60)));
}

/// A relay with a `syslog_tcp` source and a `datadog` destination at the
/// server `srv` (endpoint path and `batch_size` of `before`) gets one
/// event, whose first send the server answers with its `Retry-After`; the
/// config is then reloaded with `after`. Returns once the event was sent
/// again, with the requests the server saw.
async fn reload_after_a_retry_after(
    srv: &Server,
    before: (&str, usize),
    after: (&str, usize),
) -> Vec<Seen> {
    use siem_relay::app::{load_config, Relay};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let config = |(path, batch_size): (&str, usize)| {
        format!(
            "data_dir = \"{d}/data\"\n[buffer]\nmax_bytes = \"4MiB\"\nsegment_bytes = \"1MiB\"\n\
             [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\n\
             [destinations.dd]\ntype = \"datadog\"\nendpoint = \"{url}{path}\"\napi_key = \"k\"\n\
             batch_size = {batch_size}\nbatch_timeout = \"20ms\"\n",
            d = dir.path().display(),
            url = srv.url
        )
    };
    std::fs::write(&file, config(before)).unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];
    let mut s = std::net::TcpStream::connect(source).unwrap();
    s.write_all(b"<86>1 2026-12-07T10:00:00Z host app - LOGIN - evt_0001 refused\n")
        .unwrap();
    wait_until("the first request", T, || !srv.requests().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(&file, config(after)).unwrap();
    relay.reload().await.unwrap();
    wait_until("sent again", T, || srv.requests().len() >= 2).await;
    relay.shutdown().await.unwrap();
    srv.requests()
}

/// A reload that restarts a destination (a setting changed, same server)
/// keeps the server's `Retry-After`: the restarted destination sends the
/// unacknowledged batch again only when the wait is over, not at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_servers_retry_after() {
    let srv = serve(|_, n| match n {
        0 => reply(429, r#"{"errors":["rate limited"]}"#).with_header("retry-after", "3"),
        _ => reply(202, "{}"),
    })
    .await;
    let reqs = reload_after_a_retry_after(&srv, ("", 10), ("", 20)).await;
    assert_eq!(reqs[0].status, 429);
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_secs(3),
        "sent again {waited:?} after a Retry-After of 3 s"
    );
    assert!(
        reqs[1].body_str().contains("evt_0001"),
        "{}",
        reqs[1].body_str()
    );
}

// ------------------------------------------------- (d) Sentinel token refresh

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_401_refreshes_the_token_and_delivers() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let t2 = tokens.clone();
    let srv = serve(move |s, _| {
        if s.path == "/tenant-1/oauth2/v2.0/token" {
            let k = t2.fetch_add(1, Ordering::SeqCst) + 1;
            return reply(
                200,
                &format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"tok-{k}"}}"#),
            );
        }
        match s.header("authorization") {
            Some("Bearer tok-1") => reply(
                401,
                r#"{"error":{"code":"InvalidToken","message":"token expired"}}"#,
            ),
            Some("Bearer tok-2") => reply(204, ""),
            _ => reply(403, r#"{"error":{"code":"Forbidden","message":"?"}}"#),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    append(&ring, &(0..4).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "sentinel",
        "sentinel",
        &format!(
            "endpoint = \"{url}\"\nauthority = \"{url}\"\ndcr_immutable_id = \"dcr-1\"\n\
             stream = \"Custom-SiemRelay_CL\"\ntenant_id = \"tenant-1\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\n{LOOP}",
            url = srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 4).await;
    run.stop().await;

    let ingest: Vec<Seen> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/dataCollectionRules/"))
        .collect();
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        2,
        "token fetched, then refreshed"
    );
    assert_eq!(ingest.len(), 2, "{ingest:#?}");
    assert_eq!(ingest[0].status, 401);
    assert_eq!(ingest[1].header("authorization"), Some("Bearer tok-2"));
    assert_eq!(
        ingest[1].path,
        "/dataCollectionRules/dcr-1/streams/Custom-SiemRelay_CL"
    );
    assert_eq!(srv.accepted_ids(), ids(0..4));
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (4, 0), "{s:?}");
}

// ---------------------------------------------------------- (e) Sumo retry

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sumo_503_is_retried_then_delivered() {
    let srv = serve(|_, n| match n {
        0 => reply(503, "Service Unavailable"),
        _ => reply(200, ""),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    append(&ring, &(0..6).map(ev).collect::<Vec<_>>());
    let dest = destination(
        "sumo",
        "sumo_logic",
        &format!(
            "endpoint = \"{}/receiver/v1/http/SECRETCODE\"\ncategory = \"security/relay\"\n{LOOP}",
            srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 6).await;
    run.stop().await;
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].status, 503);
    assert_eq!(reqs[1].path, "/receiver/v1/http/SECRETCODE");
    assert_eq!(reqs[1].header("x-sumo-category"), Some("security/relay"));
    assert_eq!(reqs[0].event_ids(), reqs[1].event_ids());
    assert_eq!(srv.accepted_ids(), ids(0..6));
    let s = dest.status.snapshot();
    assert!(s.retried > 0 && s.sent == 6, "{s:?}");
}

// ------------------------------------------------- (f) filter and redaction

fn hmac_hex(key: &str, v: &str) -> String {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    m.update(v.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_events_never_reach_the_server_and_redaction_applies() {
    let srv = serve(|_, _| reply(200, "{}")).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    let base = |id: &str, email: &str| {
        let mut e = Event::new("SECURITY", Some("user.login".into()), Severity::Error);
        e.event_id = id.into();
        e.tenant_id = Some("acme".into());
        e.actor = Some(Actor {
            kind: Some("user".into()),
            id: Some("u1".into()),
            email: Some(email.into()),
            service_account: None,
        });
        e.resource = Some(Resource {
            kind: Some("file".into()),
            path: Some("/srv/data/report.pdf".into()),
            ..Default::default()
        });
        e.source_ip = Some("203.0.113.7".into());
        let mut m = serde_json::Map::new();
        m.insert("secret".into(), "s3cr3t".into());
        e.metadata = Some(m);
        e
    };
    let mut events = vec![
        base("keep_1", "alice@example.com"),
        base("keep_2", "alice@example.com"),
        base("keep_3", "bob@example.com"),
    ];
    let mut cat = base("drop_category", "a@x");
    cat.category = "SYSTEM".into();
    let mut sev = base("drop_severity", "a@x");
    sev.severity = Severity::Info;
    let mut tenant = base("drop_tenant", "a@x");
    tenant.tenant_id = Some("other".into());
    let mut no_tenant = base("drop_no_tenant", "a@x");
    no_tenant.tenant_id = None;
    let mut user = base("drop_user", "a@x");
    user.actor.as_mut().unwrap().id = Some("svc-backup".into());
    let mut path = base("drop_path", "a@x");
    path.resource.as_mut().unwrap().path = Some("/tmp/scratch/x".into());
    let mut action = base("drop_action", "a@x");
    action.action = Some("config.change".into());
    let dropped = [cat, sev, tenant, no_tenant, user, path, action];
    let n_dropped = dropped.len();
    // interleave so filtered events sit inside batches
    events.splice(1..1, dropped);
    append(&ring, &events);

    let dest = destination(
        "hook",
        "http",
        &format!(
            "endpoint = \"{}/ingest\"\nbody = \"json_array\"\n{LOOP}\
             filter = {{ categories = [\"SECURITY\", \"AUTHENTICATION\"], min_severity = \"warning\", \
             tenants = [\"acme\"], exclude_users = [\"svc-backup\"], exclude_paths = [\"/tmp/**\"], \
             actions = [\"user.*\"] }}\n\
             redact = {{ drop_fields = [\"source_ip\", \"metadata\"], hash_fields = [\"actor.email\"], \
             hash_key = \"k1\" }}\n",
            srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, events.len() as u64).await;
    run.stop().await;

    let reqs = srv.requests();
    let got: Vec<String> = reqs.iter().flat_map(|r| r.event_ids()).collect();
    assert_eq!(got, vec!["keep_1", "keep_2", "keep_3"]);
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.filtered), (3, n_dropped as u64), "{s:?}");
    let docs: Vec<serde_json::Value> = reqs.iter().flat_map(|r| documents(&r.body)).collect();
    for raw in reqs.iter().map(|r| r.body_str()) {
        assert!(!raw.contains("203.0.113.7") && !raw.contains("s3cr3t"));
        assert!(!raw.contains("alice@example.com") && !raw.contains("bob@example.com"));
    }
    for d in &docs {
        assert!(
            d.get("source_ip").is_none() && d.get("metadata").is_none(),
            "{d}"
        );
        assert_eq!(d["actor"]["id"], "u1", "untouched fields stay");
    }
    let alice = hmac_hex("k1", "alice@example.com");
    assert_eq!(docs[0]["actor"]["email"], alice);
    assert_eq!(docs[1]["actor"]["email"], alice, "stable across events");
    assert_eq!(docs[2]["actor"]["email"], hmac_hex("k1", "bob@example.com"));
    assert_ne!(alice, hmac_hex("k2", "alice@example.com"));
    assert_checkpoint_at_end(&ring, "hook");
}

/// The event of the README's example: what `redact` below drops or hashes.
fn secret_event(i: usize) -> Event {
    let mut e = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
    e.event_id = format!("e{i}");
    e.actor = Some(Actor {
        id: Some("alice".into()),
        ..Default::default()
    });
    e.source_ip = Some("10.0.0.1".into());
    let mut m = serde_json::Map::new();
    m.insert("secret".into(), "s".into());
    m.insert("keep".into(), "k".into());
    e.metadata = Some(m);
    e
}

/// A dead-letter line holds the event as the ring holds it, not the copy
/// this destination's `redact` made: the README replays a line with
/// `jq -c .event | curl … /v1/events` to every destination, and with the
/// redacted copy every one got `actor.id` pseudonymised, the redacting one
/// hashed it twice, and what `drop_fields` dropped was gone for good. For
/// each way to the dead letters: a whole batch refused (401), single items
/// refused (Elasticsearch, also after part of the batch went again), and
/// `max_attempts` given up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_hold_the_event_as_stored_before_redaction() {
    const REDACT: &str = "redact = { drop_fields = [\"source_ip\", \"metadata.secret\"], \
                          hash_fields = [\"actor.id\"], hash_key = \"k1\" }\n";
    let unauthorized = serve(|_, _| reply(401, r#"{"error":"unauthorized"}"#)).await;
    // the first bulk request: #1 to retry (429), #2 refused; then the
    // retried #1 refused
    let items = serve(|s, n| {
        let docs = s.body_str().lines().count() / 2;
        match n {
            0 => reply(
                200,
                &bulk_answer(
                    docs,
                    &[
                        (1, 429, "es_rejected_execution_exception"),
                        (2, 400, "mapper_parsing_exception"),
                    ],
                ),
            ),
            _ => reply(
                200,
                &bulk_answer(docs, &[(0, 400, "strict_dynamic_mapping_exception")]),
            ),
        }
    })
    .await;
    let busy = serve(|_, _| reply(503, "busy")).await;
    let cases = [
        ("hook", "http", format!("endpoint = \"{}/hook\"\n", unauthorized.url), vec![0, 1, 2], "401"),
        ("es", "elasticsearch", format!("endpoint = \"{}\"\nindex = \"siem\"\n", items.url),
            vec![2, 1], "_exception"),
        ("given_up", "http",
            format!("endpoint = \"{}/hook\"\nretry = {{ initial_backoff = \"20ms\", max_attempts = 2 }}\n", busy.url),
            vec![0, 1, 2], "gave up after 2 attempts"),
    ];
    for (name, kind, settings, dead, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ring = open_ring(&dir.path().join("buffer"));
        let events: Vec<Event> = (0..3).map(secret_event).collect();
        append(&ring, &events);
        let dest = destination(
            name,
            kind,
            &format!("{settings}batch_size = 10\nbatch_timeout = \"20ms\"\n{REDACT}"),
            dir.path(),
        );
        let run = start(&ring, dest.clone());
        settle(&dest, 3).await;
        run.stop().await;

        let dl = dead_letters(&dest);
        let got: Vec<&serde_json::Value> = dl.iter().map(|l| &l["event"]).collect();
        let stored: Vec<serde_json::Value> = dead
            .iter()
            .map(|&i| serde_json::from_slice(&events[i].encode().into_body()).unwrap())
            .collect();
        assert_eq!(got, stored.iter().collect::<Vec<_>>(), "{name}: {dl:#?}");
        for l in &dl {
            assert_eq!(l["event"]["actor"]["id"], "alice", "{name}");
            assert_eq!(l["event"]["source_ip"], "10.0.0.1", "{name}");
            assert_eq!(l["event"]["metadata"]["secret"], "s", "{name}");
            assert!(l["reason"].as_str().unwrap().contains(why), "{name}: {l}");
        }
        // what was sent was redacted all the same
        let srv = match name {
            "hook" => &unauthorized,
            "es" => &items,
            _ => &busy,
        };
        for r in srv.requests() {
            let body = r.body_str();
            assert!(
                !body.contains("alice")
                    && !body.contains("10.0.0.1")
                    && body.contains(&hmac_hex("k1", "alice")),
                "{name}: {body}"
            );
        }
    }
}

/// Records of syslog lines carry a syslog hint (the RFC 5424 fields, ready
/// to send) next to the body. A redacted body must not be sent through a
/// stale hint: what redaction replaced never leaves, and the message is
/// rebuilt from the redacted body. The hostname is 64 characters, as long
/// as its HMAC, so the redacted body keeps every offset the hint holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_applies_to_syslog_messages_rebuilt_from_hinted_records() {
    use siem_relay::parse::{syslog_line_to_record, Origin};
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let deadline = Instant::now() + T;
        while !String::from_utf8_lossy(&buf).contains("msg two") && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), s.read_buf(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                _ => {}
            }
        }
        String::from_utf8(buf).unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    let origin = Origin {
        listener: "tcp_in",
        address: Some("10.0.0.1:514"),
        syslog_hint: true,
    };
    let host = format!("secret-host-{}", "x".repeat(52));
    assert_eq!(host.len(), hmac_hex("k1", &host).len());
    let records: Vec<_> = [
        format!(r#"<13>1 2026-11-23T10:00:00Z {host} app1 42 ID1 [x@1 a="b"] msg one"#),
        format!(r#"<14>1 2026-11-23T10:00:01Z {host} app2 43 ID2 - {{"message":"msg two"}}"#),
    ]
    .iter()
    .map(|l| syslog_line_to_record(l.as_bytes(), 1_790_000_000_000, chrono_tz::Tz::UTC, &origin))
    .collect();
    assert!(
        records.iter().all(|r| !r.hint().is_empty()),
        "ingest leaves hints"
    );
    ring.append(&records).expect("append");

    let dest = destination(
        "siem",
        "syslog",
        &format!(
            "address = \"{addr}\"\nmode = \"tcp\"\nformat = \"syslog\"\n{LOOP}\
             redact = {{ hash_fields = [\"syslog.hostname\"], hash_key = \"k1\" }}\n"
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 2).await;
    let got = reader.await.unwrap();
    run.stop().await;

    let hashed = hmac_hex("k1", &host);
    assert!(!got.contains("secret-host"), "{got}");
    assert!(
        got.contains(&format!(" {hashed} app1 42 ID1 [x@1 a=\"b\"] msg one")),
        "{got}"
    );
    assert!(
        got.contains(&format!(" {hashed} app2 43 ID2 - msg two")),
        "{got}"
    );
    assert_eq!(dest.status.snapshot().sent, 2);
}

// ------------------------------------------------ (g) per-tenant sharding

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tenant_does_not_hold_back_the_other() {
    let a_down = Arc::new(AtomicBool::new(true));
    let a2 = a_down.clone();
    let srv_a = serve(move |_, _| {
        if a2.load(Ordering::SeqCst) {
            Answer::Hang
        } else {
            reply(200, r#"{"text":"Success","code":0}"#)
        }
    })
    .await;
    let srv_b = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    let mut a_ids = Vec::new();
    let mut b_ids = Vec::new();
    let events: Vec<Event> = (0..60)
        .map(|i| {
            let mut e = ev(i);
            let t = if i % 2 == 0 { "tenant-a" } else { "tenant-b" };
            e.tenant_id = Some(t.into());
            if i % 2 == 0 { &mut a_ids } else { &mut b_ids }.push(e.event_id.clone());
            e
        })
        .collect();
    append(&ring, &events);
    let cfg = |url: &str, tok: &str, tenant: &str| {
        format!(
            "endpoint = \"{url}\"\ntoken = \"{tok}\"\ntimeout = \"300ms\"\n{LOOP}\
             filter = {{ tenants = [\"{tenant}\"] }}\n"
        )
    };
    let da = destination(
        "siem_a",
        "splunk_hec",
        &cfg(&srv_a.url, "tok-a", "tenant-a"),
        dir.path(),
    );
    let db = destination(
        "siem_b",
        "splunk_hec",
        &cfg(&srv_b.url, "tok-b", "tenant-b"),
        dir.path(),
    );
    let t0 = Instant::now();
    let ra = start(&ring, da.clone());
    let rb = start(&ring, db.clone());
    wait_until(
        "B's 30 events while A stalls",
        Duration::from_secs(3),
        || srv_b.accepted_ids().len() >= 30,
    )
    .await;
    let b_time = t0.elapsed();
    wait_until("A tried", T, || !srv_a.requests().is_empty()).await;
    assert!(srv_a.accepted_ids().is_empty(), "A is stalled");
    assert_eq!(srv_b.accepted_ids(), b_ids, "B: all, in order, once");
    assert!(srv_b
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Splunk tok-b")));
    // A recovers
    a_down.store(false, Ordering::SeqCst);
    srv_a.release_hung();
    wait_until("A's 30 events after recovery", T, || {
        set(&srv_a.accepted_ids()).len() >= 30
    })
    .await;
    settle(&da, 60).await;
    settle(&db, 60).await;
    ra.stop().await;
    rb.stop().await;
    assert_eq!(set(&srv_a.accepted_ids()), set(&a_ids));
    assert!(srv_a
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Splunk tok-a")));
    assert!(da.status.snapshot().retried > 0);
    assert_eq!(db.status.snapshot().retried, 0);
    assert!(b_time < Duration::from_secs(3), "{b_time:?}");
}

// --------------------------------------------------------- (h) max_attempts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_gives_up_and_dead_letters() {
    let srv = serve(|_, _| reply(503, r#"{"text":"Server is busy","code":9}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = hec_with_loop(
        dir.path(),
        &srv.url,
        "t",
        4,
        "batch_size = 10\nbatch_timeout = \"20ms\"\n\
         retry = { initial_backoff = \"20ms\", max_backoff = \"50ms\", max_attempts = 3 }\n",
    );
    let run = start(&ring, dest.clone());
    settle(&dest, 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.stop().await;
    assert_eq!(srv.requests().len(), 3, "exactly max_attempts sends");
    let dl = dead_letters(&dest);
    assert_eq!(dl.len(), 4);
    for l in &dl {
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.contains("gave up after 3 attempts") && reason.contains("Server is busy"),
            "{reason}"
        );
    }
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (0, 4), "{s:?}");
    assert_checkpoint_at_end(&ring, "splunk");
}

// ------------------------------------------------------------ (i) restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint_at_least_once() {
    const N: usize = 200;
    const BATCH: usize = 10;
    const CONC: usize = 2;
    // First run: the batch of events 60..70 and every batch from event 120 on
    // hang (never answered); the others succeed. With two sends in flight the
    // loop stalls once both slots hang, having had batches 70..120 accepted
    // *after* the unacknowledged 60..70: the checkpoint must stay at 60.
    // Second run: everything succeeds.
    let restarted = Arc::new(AtomicBool::new(false));
    let r2 = restarted.clone();
    let srv = serve(move |s, _| {
        let first = s
            .event_ids()
            .first()
            .map(|id| id[4..].parse::<usize>().unwrap());
        let hang = matches!(first, Some(60) | Some(120..));
        if hang && !r2.load(Ordering::SeqCst) {
            Answer::Hang
        } else {
            reply(200, "{}")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let buf = dir.path().join("buffer");
    let cfg = format!(
        "endpoint = \"{}/in\"\nbody = \"ndjson\"\ntimeout = \"5s\"\nbatch_size = {BATCH}\n\
         batch_timeout = \"20ms\"\nconcurrency = {CONC}\n\
         retry = {{ initial_backoff = \"30ms\", max_backoff = \"100ms\" }}\n",
        srv.url
    );
    let mut expected_first: Vec<String> = ids(0..60);
    expected_first.extend(ids(70..120));
    {
        let ring = open_ring(&buf);
        append(&ring, &(0..N).map(ev).collect::<Vec<_>>());
        let dest = destination("hook", "http", &cfg, dir.path());
        let run = start_with_grace(&ring, dest.clone(), Duration::from_millis(100));
        wait_until("stall reached", T, || {
            srv.requests().iter().filter(|r| r.status == 0).count() >= CONC
                && set(&srv.accepted_ids()).len() >= expected_first.len()
        })
        .await;
        run.stop().await;
        ring.close().unwrap();
    }
    let first_run = srv.accepted_ids();
    assert_eq!(set(&first_run), set(&expected_first), "stopped mid-stream");
    assert_eq!(first_run.len(), expected_first.len());
    // restart: same ring dir, new ring, new cursor of the same name; server healthy
    restarted.store(true, Ordering::SeqCst);
    srv.release_hung();
    let ring = open_ring(&buf);
    let dest = destination("hook", "http", &cfg, dir.path());
    let run = start(&ring, dest.clone());
    wait_until("every event delivered at least once", T, || {
        set(&srv.accepted_ids()).len() >= N
    })
    .await;
    settle(&dest, (N - 60) as u64).await;
    run.stop().await;
    let all = srv.accepted_ids();
    assert_eq!(set(&all), set(&ids(0..N)), "none lost");
    // the second run resumed at the checkpoint (60) and sent each event once
    let second = &all[first_run.len()..];
    // (two sends in flight: batches may arrive in any order)
    assert_eq!(
        set(second),
        set(&ids(60..N)),
        "resumed at the first unacknowledged event"
    );
    assert_eq!(second.len(), N - 60, "each once");
    // duplicates: exactly the events acknowledged out of order behind the
    // unacknowledged batch, never anything below the checkpoint
    let dups = counts(&all)
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(id, c)| {
            assert_eq!(c, 2, "{id}");
            id
        })
        .collect::<Vec<_>>();
    assert_eq!(dups, ids(70..120));
    assert_checkpoint_at_end(&ring, "hook");
}

/// The running loop checkpoints while it runs (on tokio's blocking pool),
/// not only at stop: with few events, within about a second.
/// A stop while one batch hangs and the batches after it were delivered:
/// the hung batch, failing by its timeout after the stop, is tried again
/// within the grace, and the checkpoint goes past every event. It was
/// given up at that first failure, the checkpoint stayed before it, and
/// the restart sent again every batch delivered after it (800 duplicates
/// in a tester's run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_retries_a_failing_batch_within_the_grace_when_later_ones_went_through() {
    const N: usize = 60;
    let hung_once = Arc::new(AtomicBool::new(false));
    let h = hung_once.clone();
    let srv = serve(move |s, _| {
        let first = s.event_ids().first().cloned();
        if first.as_deref() == Some("evt_0010") && !h.swap(true, Ordering::SeqCst) {
            Answer::Hang
        } else {
            reply(200, "{}")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    append(&ring, &(0..N).map(ev).collect::<Vec<_>>());
    let cfg = format!(
        "endpoint = \"{}/in\"\nbody = \"ndjson\"\ntimeout = \"1s\"\nbatch_size = 10\n\
         batch_timeout = \"20ms\"\nconcurrency = 2\n\
         retry = {{ initial_backoff = \"30ms\", max_backoff = \"100ms\" }}\n",
        srv.url
    );
    let dest = destination("hook", "http", &cfg, dir.path());
    let run = start_with_grace(&ring, dest.clone(), Duration::from_secs(5));
    let mut others = ids(0..10);
    others.extend(ids(20..N));
    wait_until("every batch but the hung one delivered", T, || {
        set(&srv.accepted_ids()) == set(&others)
    })
    .await;
    // stopped while the batch of 10..20 still waits for its answer
    assert!(hung_once.load(Ordering::SeqCst));
    run.stop().await;
    let accepted = srv.accepted_ids();
    assert_eq!(
        set(&accepted),
        set(&ids(0..N)),
        "the hung batch went through"
    );
    assert_eq!(accepted.len(), N, "each once");
    assert_checkpoint_at_end(&ring, "hook");
}

/// A stop while a destination delivers nothing (every answer a 503) does
/// not wait out the grace retrying: giving its batches up costs no
/// duplicates, as none after them were acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_gives_up_at_once_on_a_destination_that_delivers_nothing() {
    let srv = serve(|_, _| reply(503, r#"{"text":"Server is busy","code":9}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = hec_with_events(dir.path(), &srv.url, "tok", 30);
    let run = start_with_grace(&ring, dest.clone(), Duration::from_secs(8));
    wait_until("a few failed attempts", T, || srv.requests().len() >= 3).await;
    let stopping = Instant::now();
    run.stop().await;
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(4), "the stop took {took:?}");
    assert!(srv.accepted_ids().is_empty());
}

/// A `drop_oldest` destination retries a batch (every answer a 500) while
/// the ring, full, reuses the batch's records: the batch's only copy is in
/// memory. While it runs, those records stay in `lag`; at the stop, the
/// batch goes to the dead letters (counted as `rejected`), since the
/// restart resumes past the reused records. It was lost, in no counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_keeps_a_batch_whose_records_the_ring_reused_in_the_dead_letters() {
    let srv = serve(|_, _| reply(500, "{}")).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring_of(&dir.path().join("buffer"), 256 << 10, 64 << 10);
    append(&ring, &(0..10).map(ev).collect::<Vec<_>>());
    let cfg = format!("endpoint = \"{}/in\"\nbody = \"ndjson\"\n{LOOP}", srv.url);
    let dest = destination("hook", "http", &cfg, dir.path());
    let run = start_with_grace(&ring, dest.clone(), Duration::from_secs(2));
    // failed and waiting to be retried (its bytes copied out of the ring)
    wait_until("the batch fails", T, || dest.status.snapshot().retried > 0).await;
    // the ring wraps past the batch while it is retried
    for chunk in 0..40 {
        append(
            &ring,
            &(0..100)
                .map(|i| ev(1000 + chunk * 100 + i))
                .collect::<Vec<_>>(),
        );
    }
    assert!(ring.oldest_seq() > 10, "the batch's records were reused");
    wait_until("the counters account for every record", T, || {
        let s = dest.status.snapshot();
        s.lag + s.dropped + s.sent + s.rejected == ring.next_seq()
    })
    .await;
    run.stop().await;
    let kept: Vec<String> = dead_letters(&dest)
        .iter()
        .map(|d| {
            let reason = d["reason"].as_str().unwrap();
            assert!(reason.contains("ring had already reused"), "{reason}");
            d["event"]["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kept, ids(0..10), "the batch, from memory");
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected), (0, 10), "{s:?}");
    assert_eq!(
        s.lag + s.dropped + s.rejected,
        ring.next_seq(),
        "every record in one counter: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_is_written_while_the_destination_runs() {
    use siem_relay::buffer::checkpoint;
    let srv = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = hec_with_events(dir.path(), &srv.url, "tok", 25);
    let run = start(&ring, dest.clone());
    settle(&dest, 25).await;
    let path = checkpoint::path_for(&dir.path().join("buffer").join("cursors"), "splunk");
    wait_until("checkpoint at 25 on disk", T, || {
        checkpoint::load(&path).ok().flatten().map(|c| c.seq) == Some(25)
    })
    .await;
    // more events, still running: the file follows
    append(&ring, &(25..40).map(ev).collect::<Vec<_>>());
    settle(&dest, 40).await;
    wait_until("checkpoint at 40 on disk", T, || {
        checkpoint::load(&path).ok().flatten().map(|c| c.seq) == Some(40)
    })
    .await;
    run.stop().await;
    assert_eq!(srv.accepted_ids().len(), 40);
    assert_checkpoint_at_end(&ring, "splunk");
}

/// A HEC server that accepts everything, and a ring with a `splunk_hec`
/// destination that gathers batches of 10 for up to 30 s, one in flight,
/// with the `extra` keys (the folder holds the ring).
async fn gathering_hec(extra: &str) -> (Server, tempfile::TempDir, Ring, Arc<Destination>) {
    let srv = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = open_ring(&dir.path().join("buffer"));
    let keys = format!(
        "endpoint = \"{}\"\ntoken = \"t\"\nbatch_size = 10\nbatch_timeout = \"30s\"\nconcurrency = 1\n{extra}",
        srv.url
    );
    let dest = destination("splunk", "splunk_hec", &keys, dir.path());
    (srv, dir, ring, dest)
}

/// A batch that fills up while it is being gathered leaves promptly, long
/// before its `batch_timeout`: the loop tops a partial batch up from the
/// ring every few milliseconds (instead of on every append) and must not
/// wait for anything slower. Five batches, each filled one event at a
/// time; a loop that only looked again every 100 ms (its checkpoint tick)
/// would pass all five with a chance of about 8%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_fills_while_gathering_leaves_promptly() {
    let (srv, _dir, ring, dest) = gathering_hec("").await;
    let run = start(&ring, dest.clone());
    let mut slowest = Duration::ZERO;
    for batch in 0..5 {
        for i in batch * 10..batch * 10 + 10 {
            append(&ring, &[ev(i)]);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let full = Instant::now() - Duration::from_millis(2);
        while srv.requests().len() < batch + 1 {
            assert!(full.elapsed() < T, "batch {batch} never arrived");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        slowest = slowest.max(full.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(60),
        "the slowest full batch arrived {slowest:?} after its last event"
    );
    run.stop().await;
    assert_eq!(srv.accepted_ids(), ids(0..50));
}

/// A destination that sent nothing for `batch_timeout` sends what it has
/// at once instead of gathering: an event after a quiet spell leaves
/// without waiting for company, as Nagle's algorithm holds back only behind
/// data in flight. Behind a recent batch, a partial one still gathers until
/// it fills or its own `batch_timeout` (30 s here) runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_quiet_spell_a_partial_batch_leaves_at_once() {
    let (srv, _dir, ring, dest) = gathering_hec("send_when_quiet = true\n").await;
    let run = start(&ring, dest.clone());
    append(&ring, &[ev(0), ev(1)]);
    // well before its 30 s
    wait_until("the first batch", T, || srv.requests().len() == 1).await;
    // right behind that batch: these wait for company
    append(&ring, &[ev(2)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&ring, &[ev(3)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        srv.requests().len(),
        1,
        "a batch behind a recent one left alone"
    );
    // until they fill the batch
    append(&ring, &(4..12).map(ev).collect::<Vec<_>>());
    wait_until("the full batch", T, || srv.requests().len() == 2).await;
    run.stop().await;
    let sizes: Vec<usize> = srv.requests().iter().map(|r| r.event_ids().len()).collect();
    assert_eq!(sizes, [2, 10]);
    assert_eq!(srv.accepted_ids(), ids(0..12));
}

/// A `block` destination whose batch is larger than the whole ring: with
/// the ring full, the records that would fill its batch cannot be appended
/// until it sends, so it sends what it holds as soon as an append waits for
/// it. Before, it waited for `batch_timeout` (30 s here) per batch, and
/// ingest crawled at one segment per timeout. Ten rings' worth of events
/// go through, every one once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_destination_larger_batch_than_the_ring_does_not_stall_ingest() {
    let srv = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::open(siem_relay::buffer::RingSettings {
        dir: dir.path().join("buffer"),
        max_bytes: 256 << 10,
        segment_bytes: 64 << 10,
        max_age: Duration::ZERO,
        fsync: siem_relay::config::FsyncPolicy::Never,
    })
    .expect("ring opens")
    .0;
    let dest = destination(
        "splunk",
        "splunk_hec",
        &format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nwhen_full = \"block\"\n\
             batch_size = 5000\nbatch_timeout = \"30s\"\nconcurrency = 1\n",
            srv.url
        ),
        dir.path(),
    );
    let run = start(&ring, dest.clone());
    let n = 12_000; // about 2.6 MiB of records: ten times the ring
    let writer = ring.clone();
    let appends = tokio::spawn(async move {
        for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
            let enc = chunk.iter().map(|&i| ev(i).encode()).collect();
            let (_, r) = writer.append_owned(enc).await;
            r.expect("append");
        }
    });
    tokio::time::timeout(Duration::from_secs(20), appends)
        .await
        .expect("ingest kept going (it stalled behind the block destination)")
        .unwrap();
    assert!(
        ring.stats().full_refusals > 0,
        "the ring was full: the destination held ingest up"
    );
    // all but what the ring still holds has gone, each once, in order (the
    // rest is a batch that rightly waits for its 30 s now)
    let ring_holds = 1500; // records of ~190 bytes in 256 KiB
    wait_until("all but the ring's last records", T, || {
        srv.accepted_ids().len() >= n - ring_holds
    })
    .await;
    run.stop().await;
    let got = srv.accepted_ids();
    assert_eq!(got, ids(0..got.len()));
    assert_eq!(dest.status.snapshot().dropped, 0);
}

/// A reload that gives the destination another endpoint (here another
/// path on the same server: a webhook's token is often in its path) ends
/// the wait that the old endpoint's server asked for. It was kept for the
/// same scheme, host and port, up to an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_another_endpoint_ends_the_retry_after() {
    let srv = serve(|_, n| match n {
        0 => reply(429, r#"{"errors":["rate limited"]}"#).with_header("retry-after", "60"),
        _ => reply(202, "{}"),
    })
    .await;
    let reqs = reload_after_a_retry_after(&srv, ("/a", 500), ("/b", 500)).await;
    assert_eq!(reqs[0].path, "/a/api/v2/logs");
    assert_eq!(reqs[1].path, "/b/api/v2/logs");
    assert!(reqs[1].at - reqs[0].at < Duration::from_secs(5));
}

/// An HTTP request larger than the whole ring, with a `block` destination
/// that keeps up: its events go in as the destination makes room, and the
/// client gets its 200 the first time. Refused at once when the ring
/// filled, it was answered 503 with its first part stored, and every
/// retry stored that part again (QA: 1125 lines for 375 distinct events
/// after three tries; it could never succeed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_larger_than_a_blocking_ring_goes_in_whole() {
    use siem_relay::app::{load_config, Relay};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{d}/data\"\n[buffer]\nmax_bytes = \"256KiB\"\nsegment_bytes = \"64KiB\"\n\
             [sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\ntokens = []\n\
             max_body_bytes = \"8MiB\"\n\
             [destinations.out]\ntype = \"file\"\npath = \"{d}/out/events.ndjson\"\n\
             when_full = \"block\"\nbatch_timeout = \"20ms\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let web = relay.source_addresses().await["web"];
    const N: usize = 3000;
    let body: String = (0..N)
        .map(|i| {
            format!(
                "{{\"action\":\"big.request\",\"user_id\":\"u{i:05}\",\"metadata\":{{\"pad\":\"{}\"}}}}\n",
                "x".repeat(120)
            )
        })
        .collect();
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(web).await.unwrap();
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        let mut got = String::new();
        tokio::time::timeout(T, s.read_to_string(&mut got))
            .await
            .expect("answered")
            .unwrap();
        got
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"accepted":3000}"#), "{answer}");
    let out = dir.path().join("out/events.ndjson");
    let user_ids = || -> Vec<String> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let at = l
                    .find("\"u0")
                    .or_else(|| l.find("\"u1"))
                    .or_else(|| l.find("\"u2"))?;
                l.get(at + 1..at + 7).map(str::to_string)
            })
            .collect()
    };
    wait_until("every event in the file", T, || user_ids().len() >= N).await;
    relay.shutdown().await.unwrap();
    let ids = user_ids();
    let expected: BTreeSet<String> = (0..N).map(|i| format!("u{i:05}")).collect();
    assert_eq!(ids.len(), N, "each event once");
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), expected);
}

/// After a 413 split, a retryable answer (503) to one half no longer
/// sends the whole batch again: the other half goes at once, and the next
/// round sends only the half that failed, at its halved size. Every retry
/// sent the whole batch the server had refused as too large and walked
/// the halving again, the other half waiting behind the failing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_413_split_only_the_failed_half_is_sent_again() {
    let busy = Arc::new(AtomicUsize::new(0));
    let b2 = busy.clone();
    let srv = serve(move |s, _| {
        let docs = s.body_str().lines().count() / 2;
        if docs > 2 {
            return reply(413, "too large");
        }
        if s.event_ids().contains(&"evt_0000".to_string()) && b2.fetch_add(1, Ordering::SeqCst) < 2
        {
            return reply(503, "busy");
        }
        reply(200, &bulk_answer(docs, &[]))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (ring, dest) = es_with_events(dir.path(), &srv.url, 4);
    let run = start(&ring, dest.clone());
    settle(&dest, 4).await;
    run.stop().await;
    let reqs = srv.requests();
    let sent: Vec<Vec<String>> = reqs.iter().map(|r| r.event_ids()).collect();
    assert_eq!(
        sent,
        vec![ids(0..4), ids(0..2), ids(2..4), ids(0..2), ids(0..2)],
        "the 413 once, the other half at once, then the failed half alone"
    );
    let s = dest.status.snapshot();
    assert_eq!((s.sent, s.rejected, s.failure_count), (4, 0, 3), "{s:?}");
    assert!(dead_letters(&dest).is_empty());
    assert_checkpoint_at_end(&ring, "es");
}
