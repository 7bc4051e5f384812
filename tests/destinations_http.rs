//! The HTTP destinations against local servers on 127.0.0.1: exact requests
//! (method, path, query, headers, body bytes) and the vendors' documented
//! error answers mapped to the right `Delivery`.

mod common;

use common::*;
use siem_relay::destinations::{
    datadog, elasticsearch, http as generic, sentinel, splunk_hec, sumo_logic, Delivery, Sink,
};
use std::time::Duration;

fn json(v: &str) -> String {
    serde_json::Value::String(v.into()).to_string()
}

// ---------------------------------------------------------------- Splunk HEC

fn hec_envelope(b: &siem_relay::destinations::Batch, i: usize) -> String {
    format!(
        "{{\"time\":1700000000.123,\"host\":\"relay-1\",\"source\":\"siem-relay\",\"sourcetype\":\"siem-relay:audit\",\"index\":\"security\",\"event\":{}}}",
        body_of(b, i)
    )
}

#[tokio::test]
async fn splunk_hec_sends_stacked_events() {
    let srv = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}/\"\ntoken = \"abc-123\"\nhost = \"relay-1\"\nindex = \"security\"\n",
            srv.url
        )),
        &ctx("splunk"),
    )
    .unwrap();
    let b = batch(2);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/collector/event");
    assert_eq!(r.query, None);
    assert_eq!(r.header("authorization"), Some("Splunk abc-123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("x-splunk-request-channel"), None);
    assert_eq!(
        r.body_str(),
        format!("{}\n{}\n", hec_envelope(&b, 0), hec_envelope(&b, 1))
    );
    assert_eq!(sink.target(), srv.url);
}

/// HEC refuses a negative `time` (code 6: the event was dead-lettered while
/// other destinations delivered it) and cannot index one after 2038 (32-bit
/// `_time`): for such an event time the envelope has no `time`, so Splunk
/// takes the receive time; the event's own `timestamp` stays in its JSON.
#[tokio::test]
async fn splunk_hec_leaves_out_a_time_splunk_refuses() {
    let srv = serve(|_, _| reply(200, r#"{"text":"Success","code":0}"#)).await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nhost = \"relay-1\"\n",
            srv.url
        )),
        &ctx("splunk"),
    )
    .unwrap();
    // (event time in ms, the `time` sent)
    let cases: [(i64, Option<&str>); 8] = [
        (-315_619_200_000, None),    // 1960-01-01
        (-62_135_596_800_000, None), // 0001-01-01
        (-1, None),
        (0, Some("0.000")),
        (1_700_000_000_123, Some("1700000000.123")),
        (2_147_483_647_999, Some("2147483647.999")), // 2038-01-19T03:14:07.999Z
        (2_147_483_648_000, None),
        (253_402_300_799_999, None), // 9999-12-31T23:59:59.999Z
    ];
    let b = batch_of(
        cases
            .iter()
            .enumerate()
            .map(|(i, &(ms, _))| {
                let mut ev = event(i);
                ev.set_timestamp_ms(ms);
                ev
            })
            .collect(),
    );
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let want: String = cases
        .iter()
        .enumerate()
        .map(|(i, &(_, time))| {
            let time = time.map(|t| format!("\"time\":{t},")).unwrap_or_default();
            format!(
                "{{{time}\"host\":\"relay-1\",\"source\":\"siem-relay\",\"sourcetype\":\"siem-relay:audit\",\"event\":{}}}\n",
                body_of(&b, i)
            )
        })
        .collect();
    assert_eq!(reqs[0].body_str(), want);
    // every line is JSON, and the event keeps its own timestamp
    for (line, (ms, _)) in reqs[0].body_str().lines().zip(cases) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["event"]["timestamp"].is_string(), "{line}");
        assert_eq!(
            v.get("time").is_some(),
            (0..=2_147_483_647_999).contains(&ms)
        );
    }
}

#[tokio::test]
async fn splunk_hec_invalid_token_is_rejected_and_busy_is_retried() {
    let srv = serve(|_, n| match n {
        0 => reply(403, r#"{"text":"Invalid token","code":4}"#),
        _ => reply(503, r#"{"text":"Server is busy","code":9}"#).with_header("retry-after", "3"),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!("endpoint = \"{}\"\ntoken = \"bad\"\n", srv.url)),
        &ctx("s"),
    )
    .unwrap();
    match sink.send(&batch(2)).await {
        Delivery::Rejected { reason } => assert!(
            reason.contains("Invalid token") && reason.contains("code 4"),
            "{reason}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
    match sink.send(&batch(2)).await {
        Delivery::Retry { reason, after } => {
            assert!(reason.contains("Server is busy"), "{reason}");
            assert_eq!(after, Some(Duration::from_secs(3)));
        }
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// HEC refuses a request for one bad event (code 6 with its number) and
/// takes none of it: that event goes to the dead letters, the others again.
#[tokio::test]
async fn splunk_hec_invalid_event_is_rejected_alone_and_the_rest_resent() {
    let srv = serve(|_, _| {
        reply(
            400,
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
        )
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!("endpoint = \"{}\"\ntoken = \"t\"\n", srv.url)),
        &ctx("s"),
    )
    .unwrap();
    match sink.send(&batch(3)).await {
        Delivery::Partial {
            retry,
            rejected,
            after,
            ..
        } => {
            assert_eq!(retry, vec![0, 2]);
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(rejected[0].1.contains("code 6"), "{}", rejected[0].1);
            assert_eq!(after, None);
        }
        other => panic!("expected Partial, got {other:?}"),
    }
    // one event alone: rejected as a whole
    assert!(matches!(
        sink.send(&batch(1)).await,
        Delivery::Rejected { .. }
    ));
}

#[tokio::test]
async fn splunk_hec_waits_for_indexer_acknowledgement() {
    let srv = serve(|s, n| match s.path.as_str() {
        "/services/collector/event" => reply(200, r#"{"text":"Success","code":0,"ackId":7}"#),
        "/services/collector/ack" if n < 3 => reply(200, r#"{"acks":{"7":false}}"#),
        "/services/collector/ack" => reply(200, r#"{"acks":{"7":true}}"#),
        _ => reply(404, "{}"),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nack = true\nack_interval = \"20ms\"\n\
             headers = {{ x-gateway-key = \"g1\" }}\n",
            srv.url
        )),
        &ctx("s"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(1)).await, Delivery::Delivered);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    let channel = reqs[0]
        .header("x-splunk-request-channel")
        .expect("channel header")
        .to_string();
    assert!(uuid::Uuid::parse_str(&channel).is_ok(), "{channel}");
    for ack in &reqs[1..] {
        assert_eq!(ack.method, "POST");
        assert_eq!(ack.path, "/services/collector/ack");
        assert_eq!(
            ack.query.as_deref(),
            Some(format!("channel={channel}").as_str())
        );
        assert_eq!(
            ack.header("x-splunk-request-channel"),
            Some(channel.as_str())
        );
        assert_eq!(ack.header("authorization"), Some("Splunk t"));
        // a gateway in front of HEC that wants its key wants it here too
        assert_eq!(ack.header("x-gateway-key"), Some("g1"));
        assert_eq!(ack.body_str(), r#"{"acks":[7]}"#);
    }
}

#[tokio::test]
async fn splunk_hec_unacknowledged_batch_is_retried() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/services/collector/event" => reply(200, r#"{"text":"Success","code":0,"ackId":1}"#),
        _ => reply(200, r#"{"acks":{"1":false}}"#),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nack = true\nack_interval = \"20ms\"\nack_timeout = \"150ms\"\n",
            srv.url
        )),
        &ctx("s"),
    )
    .unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Retry { reason, .. } => assert!(reason.contains("ackId 1"), "{reason}"),
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// A token with indexer acknowledgement off answers 200 without an
/// `ackId`: the batch counts as delivered on that 200 (sending it again
/// would store it twice), with no poll for an ack no one will give.
#[tokio::test]
async fn splunk_hec_batch_without_an_ack_id_counts_as_delivered_unpolled() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/services/collector/event" => reply(200, r#"{"text":"Success","code":0}"#),
        _ => reply(400, r#"{"text":"ACK is disabled","code":14}"#),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nack = true\nack_interval = \"20ms\"\n",
            srv.url
        )),
        &ctx("s"),
    )
    .unwrap();
    for _ in 0..2 {
        assert!(matches!(sink.send(&batch(1)).await, Delivery::Delivered));
    }
    let paths: Vec<String> = srv.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/services/collector/event"; 2]);
}

/// The last poll is at `ack_timeout`: an ack that comes in the last
/// interval is seen (the polls stopped one interval early, and the batch,
/// indexed meanwhile, was sent again).
#[tokio::test]
async fn splunk_hec_polls_for_the_ack_until_the_timeout_itself() {
    let srv = serve(|s, n| match s.path.as_str() {
        "/services/collector/event" => reply(200, r#"{"text":"Success","code":0,"ackId":3}"#),
        // polls at 0, 100 and 200 ms say no; the one at 300 ms says yes
        "/services/collector/ack" if n < 4 => reply(200, r#"{"acks":{"3":false}}"#),
        _ => reply(200, r#"{"acks":{"3":true}}"#),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!(
            "endpoint = \"{}\"\ntoken = \"t\"\nack = true\nack_interval = \"100ms\"\nack_timeout = \"300ms\"\n",
            srv.url
        )),
        &ctx("s"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(1)).await, Delivery::Delivered);
    assert_eq!(srv.requests().len(), 5);
}

#[tokio::test]
async fn splunk_hec_test_connection_checks_health_then_sends_a_probe() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/services/collector/health/1.0" => reply(200, r#"{"text":"HEC is healthy","code":17}"#),
        _ => reply(200, r#"{"text":"Success","code":0}"#),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!("endpoint = \"{}\"\ntoken = \"t\"\n", srv.url)),
        &ctx("s"),
    )
    .unwrap();
    let outcome = sink.test(&batch(1)).await;
    assert!(outcome.ok, "{outcome:?}");
    let reqs = srv.requests();
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/services/collector/health/1.0")
    );
    assert_eq!(reqs[0].header("authorization"), Some("Splunk t"));
    assert_eq!(reqs[1].path, "/services/collector/event");

    let bad = serve(|_, _| reply(400, r#"{"text":"Invalid token","code":4}"#)).await;
    let sink = splunk_hec::build(
        table(&format!("endpoint = \"{}\"\ntoken = \"t\"\n", bad.url)),
        &ctx("s"),
    )
    .unwrap();
    let outcome = sink.test(&batch(1)).await;
    assert!(
        !outcome.ok && outcome.message.contains("invalid token"),
        "{outcome:?}"
    );
    assert_eq!(
        bad.requests().len(),
        1,
        "no probe after a failed health check"
    );
}

// ------------------------------------------------------------- Elasticsearch

fn bulk_pair(b: &siem_relay::destinations::Batch, i: usize) -> String {
    format!(
        "{{\"create\":{{\"_id\":\"evt_test_{i}\",\"_index\":\"siem-relay-2023.11.14\"}}}}\n{}\n",
        body_of(b, i)
    )
}

/// `_id` is at most 512 bytes (Elasticsearch, OpenSearch ≥ 2.9): a longer
/// `event_id` (the HTTP source takes 600 bytes) was sent as it was and every
/// such event refused. It is sent as `sha256:` and its hex SHA-256 instead,
/// the same at every send (a re-send answers 409, not a second document);
/// 512 bytes are sent as they are.
#[tokio::test]
async fn elasticsearch_sends_a_long_event_id_as_its_sha256() {
    use sha2::{Digest, Sha256};
    let srv = serve(|_, _| {
        let item = r#"{"create":{"status":201}}"#;
        reply(
            200,
            &format!(r#"{{"took":1,"errors":false,"items":[{item},{item},{item}]}}"#),
        )
    })
    .await;
    let sink =
        elasticsearch::build(table(&format!("endpoint = \"{}\"\n", srv.url)), &ctx("es")).unwrap();
    let long = "é".repeat(300); // 600 bytes
    let exact = "x".repeat(512);
    let ids = [long.clone(), format!("{long}2"), exact.clone()];
    let b = batch_of(
        ids.iter()
            .map(|id| {
                let mut ev = event(0);
                ev.event_id = id.clone();
                ev
            })
            .collect(),
    );
    for _ in 0..2 {
        assert_eq!(sink.send(&b).await, Delivery::Delivered);
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    let hashed = |id: &str| format!("sha256:{}", hex::encode(Sha256::digest(id.as_bytes())));
    let want: String = [hashed(&ids[0]), hashed(&ids[1]), exact]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "{{\"create\":{{\"_id\":\"{id}\",\"_index\":\"siem-relay-2023.11.14\"}}}}\n{}\n",
                body_of(&b, i)
            )
        })
        .collect();
    for r in &reqs {
        assert_eq!(r.body_str(), want);
    }
    for line in reqs[0].body_str().lines().step_by(2) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["create"]["_id"].as_str().unwrap().len() <= 512, "{line}");
    }
}

#[tokio::test]
async fn elasticsearch_bulk_over_tls_with_private_ca_and_mixed_item_failures() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.ca_pem).unwrap();
    let srv = serve_tls(&ca, |_, _| {
        reply(
            200,
            r#"{"took":3,"errors":true,"items":[
              {"create":{"_index":"siem-relay-2023.11.14","_id":"evt_test_0","status":201,"result":"created"}},
              {"create":{"_index":"siem-relay-2023.11.14","_id":"evt_test_1","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
              {"create":{"_index":"siem-relay-2023.11.14","_id":"evt_test_2","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [actor] of type [keyword]"}}},
              {"create":{"_index":"siem-relay-2023.11.14","_id":"evt_test_3","status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}}},
              {"create":{"_index":"siem-relay-2023.11.14","_id":"evt_test_4","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
            ]}"#,
        )
    })
    .await;
    assert!(srv.url.starts_with("https://127.0.0.1:"));
    let sink = elasticsearch::build(
        table(&format!(
            "endpoint = \"{}\"\nca = \"{}\"\napi_key = \"aWQ6a2V5\"\n",
            srv.url,
            ca_path.display()
        )),
        &ctx("es"),
    )
    .unwrap();
    let b = batch(5);
    match sink.send(&b).await {
        Delivery::Partial {
            retry,
            rejected,
            after,
            ..
        } => {
            assert_eq!(retry, vec![1, 4]);
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 2);
            assert!(
                rejected[0].1.contains("mapper_parsing_exception")
                    && rejected[0].1.contains("failed to parse field"),
                "{}",
                rejected[0].1
            );
            assert_eq!(after, None);
        }
        other => panic!("expected Partial, got {other:?}"),
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/_bulk", None)
    );
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("authorization"), Some("ApiKey aWQ6a2V5"));
    let expected: String = (0..5).map(|i| bulk_pair(&b, i)).collect();
    assert_eq!(r.body_str(), expected);
    assert!(r.body_str().ends_with('\n'));
}

#[tokio::test]
async fn elasticsearch_without_the_private_ca_cannot_connect() {
    let ca = TestCa::new();
    let srv = serve_tls(&ca, |_, _| reply(200, r#"{"errors":false,"items":[]}"#)).await;
    let sink =
        elasticsearch::build(table(&format!("endpoint = \"{}\"\n", srv.url)), &ctx("es")).unwrap();
    match sink.send(&batch(1)).await {
        // in words, as the `syslog` destination says it (it was rustls's
        // `invalid peer certificate: UnknownIssuer`)
        Delivery::Retry { reason, .. } => {
            assert!(
                reason.contains("the server's certificate is not signed by a CA in `ca`"),
                "{reason}"
            );
            assert!(!reason.contains("UnknownIssuer"), "{reason}");
        }
        other => panic!("expected Retry, got {other:?}"),
    }
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn elasticsearch_request_level_answers_and_413_bisection() {
    // 413 whenever a request carries more than one document.
    let srv = serve(|s, _| {
        let docs = s.body_str().lines().count() / 2;
        if docs > 1 {
            reply(413, "")
        } else {
            reply(
                200,
                r#"{"errors":false,"items":[{"create":{"status":201}}]}"#,
            )
        }
    })
    .await;
    let sink = elasticsearch::build(
        table(&format!(
            "endpoint = \"{}\"\nusername = \"elastic\"\npassword = \"pw\"\nindex = \"audit\"\n",
            srv.url
        )),
        &ctx("es"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(3)).await, Delivery::Delivered);
    let reqs = srv.requests();
    // [0,1,2] → 413; [0] ok; [1,2] → 413; [1] ok; [2] ok
    assert_eq!(reqs.len(), 5);
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Basic ZWxhc3RpYzpwdw==")
    );
    assert!(reqs[1]
        .body_str()
        .starts_with("{\"create\":{\"_id\":\"evt_test_0\",\"_index\":\"audit\"}}\n"));

    let one = serve(|_, _| reply(413, "")).await;
    let sink =
        elasticsearch::build(table(&format!("endpoint = \"{}\"\n", one.url)), &ctx("es")).unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Rejected { reason } => assert!(
            reason.contains("413") && reason.contains("max_content_length"),
            "{reason}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }

    let busy = serve(|_, _| reply(429, r#"{"error":"too many requests"}"#)).await;
    let sink =
        elasticsearch::build(table(&format!("endpoint = \"{}\"\n", busy.url)), &ctx("es")).unwrap();
    assert!(matches!(sink.send(&batch(2)).await, Delivery::Retry { .. }));
    let bad = serve(|_, _| reply(400, r#"{"error":"bad"}"#)).await;
    let sink =
        elasticsearch::build(table(&format!("endpoint = \"{}\"\n", bad.url)), &ctx("es")).unwrap();
    assert!(matches!(
        sink.send(&batch(2)).await,
        Delivery::Rejected { .. }
    ));
}

#[test]
fn elasticsearch_config_errors_name_the_key() {
    let e = elasticsearch::build(table("endpoint = \"ftp://x\"\n"), &ctx("es"))
        .err()
        .unwrap();
    assert_eq!(e.path, "destinations.es.endpoint");
    let e = elasticsearch::build(
        table("endpoint = \"http://x\"\nindex = \"a-%Q\"\n"),
        &ctx("es"),
    )
    .err()
    .unwrap();
    assert_eq!(e.path, "destinations.es.index");
    let e = elasticsearch::build(
        table("endpoint = \"http://x\"\napi_key = \"k\"\nusername = \"u\"\n"),
        &ctx("es"),
    )
    .err()
    .unwrap();
    assert_eq!(e.path, "destinations.es.api_key");
    let e = elasticsearch::build(table("endpoint = \"http://x\"\nindx = \"a\"\n"), &ctx("es"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("indx"), "{e}");
    let e = elasticsearch::build(
        table("endpoint = \"http://x\"\nca = \"/nonexistent/ca.pem\"\n"),
        &ctx("es"),
    )
    .err()
    .unwrap();
    assert_eq!(e.path, "destinations.es.ca");
    // names the server would refuse for every document
    for (index, says) in [
        ("SIEM", "lower case"),
        ("siem events", "not allowed"),
        ("_siem", "cannot be an index name"),
        ("siem-%Y/%m", "not allowed"),
        // Elasticsearch 7 and later refuse a colon
        ("siem:audit", "not allowed"),
        ("siem-%T", "not allowed"),
        // space-padded only at some hours: ` 7` at 07:00, `12` at midnight
        ("siem-%l", "for an event at 2026-01-01 01:00:00"),
        ("siem-%_H", "for an event at 2026-01-01 00:00:00"),
        ("siem-%_M", "for an event at 2026-01-01 00:00:00"),
    ] {
        let e = elasticsearch::build(
            table(&format!("endpoint = \"http://x\"\nindex = \"{index}\"\n")),
            &ctx("es"),
        )
        .err()
        .unwrap_or_else(|| panic!("{index} accepted"));
        assert_eq!(e.path, "destinations.es.index", "{index}");
        assert!(e.message.contains(says), "{index}: {e}");
    }
    // a dated name is lowercased when formatted: month names are fine, and
    // so are the padded fields that pad with zeros or not at all
    for index in [
        "siem-%B-%Y",
        "siem-%Y.%m.%d.%H-%M-%S",
        "siem-%-l-%-e-%p",
        "siem-%y%j-%I",
    ] {
        elasticsearch::build(
            table(&format!("endpoint = \"http://x\"\nindex = \"{index}\"\n")),
            &ctx("es"),
        )
        .unwrap_or_else(|e| panic!("{index}: {e}"));
    }
}

// ------------------------------------------------------------------- Datadog

#[tokio::test]
async fn datadog_sends_gzipped_json_array_with_message_string() {
    let srv = serve(|_, _| reply(202, "{}")).await;
    let sink = datadog::build(
        table(&format!(
            "endpoint = \"{}\"\napi_key = \"dd-key\"\nddtags = \"env:test,team:sec\"\nhostname = \"relay-1\"\n",
            srv.url
        )),
        &ctx("dd"),
    )
    .unwrap();
    let b = batch(2);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
        ("POST", "/api/v2/logs", None)
    );
    assert_eq!(r.header("dd-api-key"), Some("dd-key"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_ne!(r.raw, r.body, "body is compressed on the wire");
    let item = |i| {
        format!(
            "{{\"ddsource\":\"siem-relay\",\"ddtags\":\"env:test,team:sec\",\"hostname\":\"relay-1\",\"service\":\"siem-relay\",\"message\":{}}}",
            json(body_of(&b, i))
        )
    };
    assert_eq!(r.body_str(), format!("[{},{}]", item(0), item(1)));
    // The message is the canonical event, intact.
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let msg: serde_json::Value = serde_json::from_str(v[1]["message"].as_str().unwrap()).unwrap();
    assert_eq!(msg["event_id"], "evt_test_1");
}

#[tokio::test]
async fn datadog_splits_2500_events_into_three_requests() {
    let srv = serve(|_, _| reply(202, "{}")).await;
    let sink = datadog::build(
        table(&format!("endpoint = \"{}\"\napi_key = \"k\"\n", srv.url)),
        &ctx("dd"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(2500)).await, Delivery::Delivered);
    let counts: Vec<usize> = srv
        .requests()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(counts, vec![1000, 1000, 500]);
}

#[tokio::test]
async fn datadog_throttling_honours_retry_after_and_errors_map() {
    let srv = serve(|_, n| match n {
        0 => reply(429, "{}").with_header("retry-after", "7"),
        1 => reply(403, r#"{"errors":["Forbidden"]}"#),
        2 => reply(400, r#"{"errors":["bad"]}"#),
        _ => reply(500, "oops"),
    })
    .await;
    let sink = datadog::build(
        table(&format!("endpoint = \"{}\"\napi_key = \"k\"\n", srv.url)),
        &ctx("dd"),
    )
    .unwrap();
    assert_eq!(
        sink.send(&batch(2)).await,
        Delivery::Retry {
            reason: "Datadog answered 429: {}".to_string(),
            after: Some(Duration::from_secs(7))
        }
    );
    match sink.send(&batch(2)).await {
        Delivery::Rejected { reason } => assert!(
            reason.contains("403") && reason.contains("api_key"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sink.send(&batch(2)).await,
        Delivery::Rejected { .. }
    ));
    assert!(matches!(
        sink.send(&batch(2)).await,
        Delivery::Retry { after: None, .. }
    ));
}

#[tokio::test]
async fn datadog_413_splits_then_rejects_a_single_entry() {
    let srv = serve(|s, _| {
        let n = serde_json::from_slice::<Vec<serde_json::Value>>(&s.body)
            .unwrap()
            .len();
        if n > 2 {
            reply(413, "")
        } else {
            reply(202, "{}")
        }
    })
    .await;
    let sink = datadog::build(
        table(&format!("endpoint = \"{}\"\napi_key = \"k\"\n", srv.url)),
        &ctx("dd"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(4)).await, Delivery::Delivered);
    let counts: Vec<usize> = srv
        .requests()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(counts, vec![4, 2, 2]);

    let always = serve(|_, _| reply(413, "")).await;
    let sink = datadog::build(
        table(&format!("endpoint = \"{}\"\napi_key = \"k\"\n", always.url)),
        &ctx("dd"),
    )
    .unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Rejected { reason } => assert!(reason.contains("413"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// `endpoint` is a base URL to which the intake path is appended, or the
/// full intake URL Datadog documents (`…/api/v2/logs`), used as it is.
#[tokio::test]
async fn datadog_endpoint_may_be_a_base_or_the_full_intake_url() {
    let srv = serve(|_, _| reply(202, "{}")).await;
    for (endpoint, path) in [
        ("", "/api/v2/logs"),
        ("/", "/api/v2/logs"),
        ("/api/v2/logs", "/api/v2/logs"),
        ("/api/v2/logs/", "/api/v2/logs"),
        ("/proxy/dd", "/proxy/dd/api/v2/logs"),
        ("/proxy/api/v2/logs", "/proxy/api/v2/logs"),
    ] {
        let sink = datadog::build(
            table(&format!(
                "endpoint = \"{}{endpoint}\"\napi_key = \"k\"\n",
                srv.url
            )),
            &ctx("dd"),
        )
        .unwrap();
        assert_eq!(sink.send(&batch(1)).await, Delivery::Delivered);
        let r = srv.requests().pop().unwrap();
        assert_eq!(r.path, path, "endpoint {endpoint:?}");
        assert_eq!(r.query, None, "endpoint {endpoint:?}");
    }
}

#[tokio::test]
async fn datadog_rejects_entries_above_one_megabyte() {
    let srv = serve(|_, _| reply(202, "{}")).await;
    let sink = datadog::build(
        table(&format!("endpoint = \"{}\"\napi_key = \"k\"\n", srv.url)),
        &ctx("dd"),
    )
    .unwrap();
    let mut big = event(1);
    big.message = Some("x".repeat(1_100_000));
    let b = batch_of(vec![event(0), big, event(2)]);
    match sink.send(&b).await {
        Delivery::Partial {
            retry, rejected, ..
        } => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(
                rejected[0].1.contains("limit of 1000000 bytes"),
                "{}",
                rejected[0].1
            );
        }
        other => panic!("{other:?}"),
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let sent: Vec<serde_json::Value> = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(sent.len(), 2);
}

// ------------------------------------------------------------------ Sentinel

fn sentinel_config(url: &str) -> String {
    format!(
        "endpoint = \"{url}\"\nauthority = \"{url}\"\ndcr_immutable_id = \"dcr-0123\"\nstream = \"Custom-SiemRelay_CL\"\n\
         tenant_id = \"tenant-1\"\nclient_id = \"client-1\"\nclient_secret = \"s3cr&t\"\n"
    )
}

fn token_reply(s: &Seen, count: usize) -> Reply {
    assert_eq!(s.method, "POST");
    reply(
        200,
        &format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"tok-{count}"}}"#),
    )
}

#[tokio::test]
async fn sentinel_refreshes_the_token_on_401_and_sends_an_array() {
    let tokens = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t2 = tokens.clone();
    let srv = serve(move |s, _| {
        if s.path == "/tenant-1/oauth2/v2.0/token" {
            let n = t2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return token_reply(s, n);
        }
        match s.header("authorization") {
            Some("Bearer tok-2") => reply(204, ""),
            _ => reply(
                401,
                r#"{"error":{"code":"InvalidToken","message":"token expired"}}"#,
            ),
        }
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&srv.url)), &ctx("sentinel")).unwrap();
    let b = batch(1);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let reqs = srv.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    let ingest = "/dataCollectionRules/dcr-0123/streams/Custom-SiemRelay_CL";
    assert_eq!(
        paths,
        vec![
            "/tenant-1/oauth2/v2.0/token",
            ingest,
            "/tenant-1/oauth2/v2.0/token",
            ingest
        ]
    );
    assert_eq!(
        reqs[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        reqs[0].body_str(),
        "client_id=client-1&client_secret=s3cr%26t&grant_type=client_credentials&scope=https%3A%2F%2Fmonitor.azure.com%2F.default"
    );
    let r = &reqs[3];
    assert_eq!(r.method, "POST");
    assert_eq!(r.query.as_deref(), Some("api-version=2023-01-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer tok-2"));
    let body = body_of(&b, 0);
    assert_eq!(
        r.body_str(),
        format!(
            "[{{\"TimeGenerated\":\"2023-11-14T22:13:20.123Z\",{}]",
            &body[1..]
        )
    );
    // The token is cached: the next batch needs no token request.
    assert_eq!(sink.send(&batch(2)).await, Delivery::Delivered);
    assert_eq!(tokens.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(srv.requests().len(), 5);
}

/// The Logs Ingestion API answers 204 on success, and HEC 200 with
/// `{"text":"Success","code":0}`: any other 2xx (a web server's welcome
/// page, an empty 200) is not theirs and delivers nothing. Each is a
/// retry whose reason shows what came back and where to look; they were
/// counted as delivered and the events lost.
#[tokio::test]
async fn sentinel_and_hec_take_only_their_documented_success_answer() {
    let page = "<html><head><title>Welcome to nginx!</title></head></html>";
    let srv = serve(move |s, n| {
        if s.path == "/tenant-1/oauth2/v2.0/token" {
            return token_reply(s, n);
        }
        match n {
            1 => Reply {
                status: 200,
                headers: vec![("content-type", "text/html".into())],
                body: page.into(),
            },
            2 => reply(200, ""),
            _ => reply(204, ""),
        }
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&srv.url)), &ctx("sentinel")).unwrap();
    let b = batch(2);
    match sink.send(&b).await {
        Delivery::Retry { reason, .. } => assert!(
            reason.contains("answers 204 No Content on success; got 200 text/html: <html>")
                && reason.contains("Welcome to nginx!")
                && reason.contains("data collection endpoint"),
            "{reason}"
        ),
        other => panic!("expected Retry, got {other:?}"),
    }
    match sink.send(&b).await {
        Delivery::Retry { reason, .. } => {
            assert!(
                reason.contains("got 200 application/json: empty body"),
                "{reason}"
            )
        }
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(sink.send(&b).await, Delivery::Delivered);

    let hec = serve(|_, n| match n {
        0 => reply(200, ""),
        1 => reply(201, r#"{"text":"Success","code":0}"#),
        2 => Reply {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: "<html>ok</html>".into(),
        },
        _ => reply(200, r#"{"text":"Success","code":0}"#),
    })
    .await;
    let sink = splunk_hec::build(
        table(&format!("endpoint = \"{}\"\ntoken = \"t\"\n", hec.url)),
        &ctx("splunk"),
    )
    .unwrap();
    for got in [
        "200 application/json: empty body",
        "201 application/json: {\"text\"",
        "200 text/html: <html>ok</html>",
    ] {
        match sink.send(&b).await {
            Delivery::Retry { reason, .. } => assert!(
                reason.contains(r#"Splunk HEC answers 200 {"text":"Success","code":0} on success"#)
                    && reason.contains(got)
                    && reason.contains("HTTP Event Collector"),
                "{reason}"
            ),
            other => panic!("expected Retry, got {other:?}"),
        }
    }
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    assert_eq!(hec.requests().len(), 4);
}

#[tokio::test]
async fn sentinel_splits_at_one_megabyte_and_maps_403() {
    let srv = serve(|s, n| {
        if s.path.ends_with("/token") {
            return token_reply(s, n);
        }
        reply(204, "")
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&srv.url)), &ctx("sentinel")).unwrap();
    let events: Vec<_> = (0..7)
        .map(|i| {
            let mut e = event(i);
            e.message = Some("m".repeat(300_000));
            e
        })
        .collect();
    assert_eq!(sink.send(&batch_of(events)).await, Delivery::Delivered);
    let ingests: Vec<Seen> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("dataCollectionRules"))
        .collect();
    assert!(ingests.len() >= 3, "{}", ingests.len());
    let mut total = 0;
    for r in &ingests {
        assert!(r.body.len() <= 1_000_000, "{}", r.body.len());
        total += serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
            .unwrap()
            .len();
    }
    assert_eq!(total, 7);

    let denied = serve(|s, n| {
        if s.path.ends_with("/token") {
            return token_reply(s, n);
        }
        reply(403, r#"{"error":{"code":"OperationFailed","message":"The authentication token provided does not have access to ingest data for the data collection rule"}}"#)
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&denied.url)), &ctx("sentinel")).unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Rejected { reason } => {
            assert!(
                reason.contains("Monitoring Metrics Publisher")
                    && reason.contains("does not have access"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// The 1 MB per call is inclusive, as Datadog's and Sumo Logic's limits
/// are: a record whose call is exactly 1,000,000 bytes is sent; one byte
/// more is dead-lettered with the size of the call it would make.
#[tokio::test]
async fn sentinel_sends_a_call_of_exactly_one_megabyte() {
    let srv = serve(|s, n| {
        if s.path.ends_with("/token") {
            return token_reply(s, n);
        }
        reply(204, "")
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&srv.url)), &ctx("sentinel")).unwrap();
    assert_one_megabyte_is_the_limit(
        &*sink,
        &srv,
        "a call of 1000001 bytes alone (a record of 999999 bytes",
        "limit of 1000000 bytes per call",
    )
    .await;
}

#[tokio::test]
async fn sumo_logic_sends_a_request_of_exactly_one_megabyte() {
    let srv = serve(|_, _| reply(200, "")).await;
    let sink = sumo_logic::build(
        table(&format!("endpoint = \"{}/r\"\n", srv.url)),
        &ctx("sumo"),
    )
    .unwrap();
    assert_one_megabyte_is_the_limit(
        &*sink,
        &srv,
        "a request of 1000001 bytes alone (its 1000000 bytes",
        "limit of 1000000 bytes per request",
    )
    .await;
}

/// An event that makes a body of exactly 1,000,000 bytes is sent; one a
/// byte larger is refused with a reason holding both `says`.
async fn assert_one_megabyte_is_the_limit(
    sink: &dyn Sink,
    srv: &TestServer,
    says: &str,
    also: &str,
) {
    let sized = |len: usize| {
        let mut e = event(1);
        e.message = Some("m".repeat(len));
        batch_of(vec![e])
    };
    assert_eq!(sink.send(&sized(10)).await, Delivery::Delivered);
    let small = srv.requests().pop().unwrap().body.len();
    let exact = 10 + 1_000_000 - small;
    assert_eq!(sink.send(&sized(exact)).await, Delivery::Delivered);
    assert_eq!(srv.requests().pop().unwrap().body.len(), 1_000_000);
    match sink.send(&sized(exact + 1)).await {
        Delivery::Rejected { reason } => {
            assert!(reason.contains(says) && reason.contains(also), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sentinel_throttling_is_retried_and_refused_credentials_rejected() {
    let srv = serve(|s, n| {
        if s.path.ends_with("/token") {
            return token_reply(s, n);
        }
        reply(429, "").with_header("retry-after", "12")
    })
    .await;
    let sink = sentinel::build(table(&sentinel_config(&srv.url)), &ctx("sentinel")).unwrap();
    assert!(
        matches!(sink.send(&batch(1)).await, Delivery::Retry { after: Some(d), .. } if d == Duration::from_secs(12))
    );

    // a wrong secret (401) or tenant (400): retrying cannot help, as with a
    // 401 from the API itself the batch is rejected (to the dead letters)
    for (status, answer) in [
        (
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
        ),
        (
            400,
            r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#,
        ),
    ] {
        let no_token = serve(move |_, _| reply(status, answer)).await;
        let sink =
            sentinel::build(table(&sentinel_config(&no_token.url)), &ctx("sentinel")).unwrap();
        match sink.send(&batch(3)).await {
            Delivery::Rejected { reason } => {
                assert!(
                    reason.contains(&format!("answered {status}"))
                        && reason.contains("AADSTS")
                        && reason.contains("check tenant_id")
                        && !reason.contains("s3cr"),
                    "{reason}"
                )
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(
            no_token.requests().len(),
            1,
            "one token request, no data request"
        );
    }
    // a throttled or failing token endpoint: retried, after its Retry-After
    let throttled = serve(|_, _| reply(429, "").with_header("retry-after", "7")).await;
    let sink = sentinel::build(table(&sentinel_config(&throttled.url)), &ctx("sentinel")).unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Retry { reason, after } => {
            assert!(reason.contains("answered 429"), "{reason}");
            // no advice about credentials the endpoint did not question
            assert!(!reason.contains("client_secret"), "{reason}");
            assert_eq!(after, Some(Duration::from_secs(7)));
        }
        other => panic!("{other:?}"),
    }
}

/// A 3xx is not followed (reqwest would turn the POST into a bodiless GET,
/// and its 200 would pass for a delivery): the batch is rejected with
/// where the server points, on every HTTP destination.
#[tokio::test]
async fn redirects_are_not_followed_and_reject_the_batch() {
    for status in [301u16, 302, 307, 308] {
        let srv = serve(move |s, _| {
            if s.path == "/moved" {
                reply(200, r#"{"text":"Success","code":0}"#)
            } else {
                reply(status, "").with_header("location", "/moved")
            }
        })
        .await;
        let sink = splunk_hec::build(
            table(&format!("endpoint = \"{}\"\ntoken = \"t\"\n", srv.url)),
            &ctx("s"),
        )
        .unwrap();
        match sink.send(&batch(2)).await {
            Delivery::Rejected { reason } => assert!(
                reason.contains(&format!("answered {status} redirecting to /moved")),
                "{reason}"
            ),
            other => panic!("{status}: expected Rejected, got {other:?}"),
        }
        assert!(
            srv.requests().iter().all(|r| r.path != "/moved"),
            "{status}: the redirect was followed"
        );
    }
}

/// A redirect of a destination whose URL is the secret (Sumo Logic's
/// collector code, a webhook's token) names where it points only by origin,
/// as the destination's target does: the `Location` carries the same secret.
#[tokio::test]
async fn a_redirect_does_not_leak_a_secret_url() {
    for location in [
        "https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/ZaVnSECRET",
        "/receiver/v1/http/ZaVnSECRET",
        "https://hooks.example.com/services/T0/B0/ZaVnSECRET?token=ZaVnSECRET",
    ] {
        let srv = serve(move |_, _| reply(308, "").with_header("location", location)).await;
        let url = format!("{}/receiver/v1/http/ZaVnSECRET", srv.url);
        let sumo =
            sumo_logic::build(table(&format!("endpoint = \"{url}\"\n")), &ctx("sumo")).unwrap();
        let hook = generic::build(table(&format!("endpoint = \"{url}\"\n")), &ctx("hook")).unwrap();
        for sink in [sumo, hook] {
            match sink.send(&batch(1)).await {
                Delivery::Rejected { reason } => {
                    assert!(
                        reason.contains("answered 308 redirecting to http")
                            && reason.contains("/[path redacted]: ")
                            && !reason.contains("SECRET"),
                        "{location}: {reason}"
                    )
                }
                other => panic!("{location}: {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------- Sumo Logic

#[tokio::test]
async fn sumo_logic_sends_gzipped_ndjson_with_metadata_headers() {
    let srv = serve(|_, n| match n {
        0 => reply(200, ""),
        1 => reply(503, "unavailable"),
        _ => reply(401, "unauthorized"),
    })
    .await;
    let url = format!("{}/receiver/v1/http/SECRETCODE123", srv.url);
    let sink = sumo_logic::build(
        table(&format!(
            "endpoint = \"{url}\"\ncategory = \"security/relay\"\nname = \"siem-relay\"\nhost = \"relay-1\"\nfields = {{ env = \"prod\", team = \"sec\" }}\n"
        )),
        &ctx("sumo"),
    )
    .unwrap();
    assert!(!sink.target().contains("SECRETCODE"), "{}", sink.target());
    let b = batch(2);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let r = &srv.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/receiver/v1/http/SECRETCODE123")
    );
    assert_eq!(r.header("x-sumo-category"), Some("security/relay"));
    assert_eq!(r.header("x-sumo-name"), Some("siem-relay"));
    assert_eq!(r.header("x-sumo-host"), Some("relay-1"));
    assert_eq!(r.header("x-sumo-fields"), Some("env=prod,team=sec"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(
        r.body_str(),
        format!("{}\n{}\n", body_of(&b, 0), body_of(&b, 1))
    );

    match sink.send(&b).await {
        Delivery::Retry { reason, .. } => assert!(
            reason.contains("503") && !reason.contains("SECRETCODE"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(sink.send(&b).await, Delivery::Rejected { .. }));
}

/// `compression_level` sets the gzip level of request bodies: 9 makes a
/// smaller body of the same batch than the default (1), both inflate to the
/// same bytes, and the gzip header's XFL byte says which (RFC 1952: 4 =
/// fastest, 2 = maximum compression). A level outside 1–9 is refused.
#[tokio::test]
async fn compression_level_sets_the_gzip_level_of_request_bodies() {
    let srv = serve(|_, _| reply(200, "")).await;
    let b = batch(200);
    let mut raw = Vec::new();
    for level in ["", "compression_level = 9\n"] {
        let sink = sumo_logic::build(
            table(&format!("endpoint = \"{}/r\"\n{level}", srv.url)),
            &ctx("sumo"),
        )
        .unwrap();
        assert_eq!(sink.send(&b).await, Delivery::Delivered);
        let r = srv.requests().pop().unwrap();
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let expected: String = (0..200).map(|i| format!("{}\n", body_of(&b, i))).collect();
        assert_eq!(r.body_str(), expected);
        raw.push(r.raw);
    }
    let (fast, best) = (&raw[0], &raw[1]);
    assert_eq!((fast[8], best[8]), (4, 2), "gzip XFL bytes");
    assert!(best.len() < fast.len(), "{} !< {}", best.len(), fast.len());

    for bad in ["0", "10", "-1", "\"6\""] {
        let err = sumo_logic::build(
            table(&format!(
                "endpoint = \"{}/r\"\ncompression_level = {bad}\n",
                srv.url
            )),
            &ctx("sumo"),
        )
        .err()
        .unwrap_or_else(|| panic!("compression_level = {bad} was accepted"))
        .to_string();
        assert!(err.contains("compression_level"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn sumo_logic_connection_errors_do_not_leak_the_url() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let sink = sumo_logic::build(
        table(&format!("endpoint = \"http://127.0.0.1:{port}/receiver/v1/http/SECRETCODE\"\ntimeout = \"2s\"\n")),
        &ctx("sumo"),
    )
    .unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Retry { reason, .. } => assert!(!reason.contains("SECRETCODE"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// -------------------------------------------------------------- generic http

#[tokio::test]
async fn http_template_wraps_the_json_array() {
    let srv = serve(|_, _| reply(200, "")).await;
    let sink = generic::build(
        table(&format!(
            "endpoint = \"{}/audit\"\nmethod = \"put\"\nbody = '{{\"records\": {{{{events}}}} }}'\nbearer_token = \"tkn\"\nheaders = {{ \"X-API-Key\" = \"k1\" }}\n",
            srv.url
        )),
        &ctx("hook"),
    )
    .unwrap();
    let b = batch(2);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let r = &srv.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/audit"));
    assert_eq!(r.header("authorization"), Some("Bearer tkn"));
    assert_eq!(r.header("x-api-key"), Some("k1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body_str(),
        format!("{{\"records\": [{},{}] }}", body_of(&b, 0), body_of(&b, 1))
    );
}

#[tokio::test]
async fn http_single_sends_one_request_per_event_and_merges_answers() {
    let srv = serve(|_, n| {
        if n == 1 {
            reply(422, "nope")
        } else {
            reply(201, "")
        }
    })
    .await;
    let sink = generic::build(
        table(&format!(
            "endpoint = \"{}/e\"\nbody = \"single\"\nbasic = {{ username = \"u\", password = \"p\" }}\ncompression = \"gzip\"\n",
            srv.url
        )),
        &ctx("hook"),
    )
    .unwrap();
    let b = batch(3);
    match sink.send(&b).await {
        Delivery::Partial {
            retry, rejected, ..
        } => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(rejected[0].1.contains("422"));
        }
        other => panic!("{other:?}"),
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("authorization"), Some("Basic dTpw"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.body_str(), body_of(&b, i));
    }
}

#[tokio::test]
async fn http_ndjson_and_bad_templates() {
    let srv = serve(|_, _| reply(200, "")).await;
    let sink = generic::build(
        table(&format!("endpoint = \"{}\"\nbody = \"ndjson\"\n", srv.url)),
        &ctx("hook"),
    )
    .unwrap();
    let b = batch(2);
    assert_eq!(sink.send(&b).await, Delivery::Delivered);
    let r = &srv.requests()[0];
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        r.body_str(),
        format!("{}\n{}\n", body_of(&b, 0), body_of(&b, 1))
    );
    let e = generic::build(
        table("endpoint = \"http://x\"\nbody = \"{\\\"a\\\": 1}\"\n"),
        &ctx("hook"),
    )
    .err()
    .unwrap();
    assert_eq!(e.path, "destinations.hook.body");
}

/// A header in `headers` that the transport computes (framing, host,
/// connection, compression) or that the destination sets from its own keys
/// is refused, whatever its case, at the key, naming what to set instead:
/// it replaced the computed one (`Content-Length = "5"` cut the body to 5
/// bytes on the wire and the event counted as sent; a `DD-API-KEY` there
/// replaced `api_key`). A header the destination does not set with this
/// configuration (an `Authorization` of its own scheme, without
/// `bearer_token`) is still sent, as any other.
#[tokio::test]
async fn headers_the_relay_sets_itself_are_refused_in_headers() {
    type Build = fn(
        toml::Table,
        &siem_relay::destinations::BuildContext,
    ) -> Result<std::sync::Arc<dyn Sink>, siem_relay::config::ConfigError>;
    let url = "http://127.0.0.1:9";
    let sentinel_keys =
        "authority = \"http://127.0.0.1:9\"\ndcr_immutable_id = \"d\"\nstream = \"s\"\n\
                         tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\n";
    let cases: Vec<(Build, String, &str, &[&str])> = vec![
        (
            generic::build,
            String::new(),
            "Content-Length",
            &["computed for each request", "frames each request body"],
        ),
        (
            generic::build,
            String::new(),
            "transfer-encoding",
            &["computed for each request"],
        ),
        (generic::build, String::new(), "HOST", &["`endpoint`"]),
        (
            generic::build,
            String::new(),
            "Connection",
            &["manages its connections"],
        ),
        (
            generic::build,
            "compression = \"gzip\"\n".into(),
            "Content-Encoding",
            &["`compression`"],
        ),
        (
            generic::build,
            String::new(),
            "content-type",
            &["set from `content_type`"],
        ),
        (
            generic::build,
            "bearer_token = \"b\"\n".into(),
            "Authorization",
            &["set from `bearer_token`"],
        ),
        (
            generic::build,
            "basic = { username = \"u\", password = \"p\" }\n".into(),
            "authorization",
            &["set from `basic`"],
        ),
        (
            datadog::build,
            "api_key = \"k\"\n".into(),
            "DD-API-KEY",
            &["set from `api_key`"],
        ),
        (
            datadog::build,
            "api_key = \"k\"\n".into(),
            "Content-Type",
            &["set by this destination type itself"],
        ),
        (
            elasticsearch::build,
            "api_key = \"k\"\n".into(),
            "Authorization",
            &["set from `api_key`"],
        ),
        (
            elasticsearch::build,
            "username = \"u\"\npassword = \"p\"\n".into(),
            "Authorization",
            &["`username` and `password`"],
        ),
        (
            elasticsearch::build,
            String::new(),
            "Content-Length",
            &["computed"],
        ),
        (
            splunk_hec::build,
            "token = \"t\"\n".into(),
            "Authorization",
            &["set from `token`"],
        ),
        (
            splunk_hec::build,
            "token = \"t\"\nack = true\n".into(),
            "X-Splunk-Request-Channel",
            &["set by this destination type itself"],
        ),
        (
            sentinel::build,
            sentinel_keys.into(),
            "Authorization",
            &["`client_id` and `client_secret`"],
        ),
        (
            sumo_logic::build,
            "category = \"c\"\n".into(),
            "X-Sumo-Category",
            &["set from `category`"],
        ),
        (
            sumo_logic::build,
            "fields = { a = \"b\" }\n".into(),
            "x-sumo-fields",
            &["set from `fields`"],
        ),
    ];
    for (build, keys, header, says) in cases {
        let text = format!("endpoint = \"{url}\"\n{keys}headers = {{ \"{header}\" = \"5\" }}\n");
        let e = match build(table(&text), &ctx("d")) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        };
        assert_eq!(e.path, format!("destinations.d.headers.{header}"), "{text}");
        for s in says {
            assert!(
                e.message.contains(s) && e.message.contains(&format!("`{header}`")),
                "{text}: {}",
                e.message
            );
        }
    }

    // not set by the destination with these keys: sent as given
    let srv = serve(|_, _| reply(200, "")).await;
    let sink = generic::build(
        table(&format!(
            "endpoint = \"{}\"\nheaders = {{ \"Authorization\" = \"GenieKey abc\", \"X-Sumo-Category\" = \"c\" }}\n",
            srv.url
        )),
        &ctx("h"),
    )
    .unwrap();
    assert_eq!(sink.send(&batch(1)).await, Delivery::Delivered);
    let r = &srv.requests()[0];
    assert_eq!(r.header("authorization"), Some("GenieKey abc"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    for (build, keys) in [
        (elasticsearch::build as Build, ""),
        (splunk_hec::build, "token = \"t\"\n"),
    ] {
        let text = format!(
            "endpoint = \"{url}\"\n{keys}headers = {{ \"X-Splunk-Request-Channel\" = \"c\", \"X-Gateway-Key\" = \"g\" }}\n"
        );
        assert!(build(table(&text), &ctx("d")).is_ok(), "{text}");
    }
    let text = format!("endpoint = \"{url}\"\nheaders = {{ \"Authorization\" = \"Bearer x\" }}\n");
    assert!(elasticsearch::build(table(&text), &ctx("d")).is_ok());
    let text = format!("endpoint = \"{url}\"\nheaders = {{ \"X-Sumo-Category\" = \"c\" }}\n");
    assert!(sumo_logic::build(table(&text), &ctx("d")).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried() {
    let srv = serve(|_, _| {
        std::thread::sleep(Duration::from_millis(800));
        reply(200, "")
    })
    .await;
    let sink = generic::build(
        table(&format!(
            "endpoint = \"{}\"\ntimeout = \"150ms\"\n",
            srv.url
        )),
        &ctx("hook"),
    )
    .unwrap();
    match sink.send(&batch(1)).await {
        Delivery::Retry { reason, after } => {
            assert!(reason.contains("timed out"), "{reason}");
            assert_eq!(after, None);
        }
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// A server's error answered with an empty body is said to be one
/// (`answered 500: empty body`), in the reason the status, the dead
/// letter and `test-destination` show: they ended at the colon.
#[tokio::test]
async fn an_error_answered_with_an_empty_body_says_so() {
    for (status, blank) in [(500u16, ""), (401, ""), (503, " \r\n ")] {
        let srv = serve(move |_, _| reply(status, blank)).await;
        let sink = generic::build(
            table(&format!("endpoint = \"{}/hook\"\n", srv.url)),
            &ctx("hook"),
        )
        .unwrap();
        let reason = match sink.send(&batch(1)).await {
            Delivery::Retry { reason, .. } | Delivery::Rejected { reason } => reason,
            other => panic!("{status}: expected a failure, got {other:?}"),
        };
        let want = if blank.is_empty() {
            "empty body"
        } else {
            "blank body"
        };
        assert!(
            reason.ends_with(&format!("answered {status}: {want}")),
            "{status}: {reason}"
        );
        let test = sink.test(&batch(1)).await;
        assert!(!test.ok);
        assert!(
            test.message.contains(&format!("answered {status}: {want}")),
            "{status}: {}",
            test.message
        );
    }
}
