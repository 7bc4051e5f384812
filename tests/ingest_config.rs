//! Source settings validation (key-path errors, unknown keys and types,
//! missing certificate files) and bind errors returned instead of panics.

mod ingest_support;

use ingest_support::{start, Collector};
use siem_relay::config::SectionConfig;
use siem_relay::sources::{self, SourceContext, SourceError};
use std::path::Path;
use std::sync::Arc;

fn section(kind: &str, toml_text: &str) -> SectionConfig {
    SectionConfig {
        section: "sources",
        name: "s".into(),
        kind: kind.into(),
        table: toml::from_str(toml_text).expect("toml"),
    }
}

/// The error `validate` gives for `toml_text` of `kind`, checked to name `key`.
fn refused(kind: &str, toml_text: &str, key: &str) -> siem_relay::config::ConfigError {
    let err = sources::validate(&section(kind, toml_text)).unwrap_err();
    assert_eq!(err.path, format!("sources.s.{key}"), "{err}");
    err
}

#[test]
fn validation_names_the_offending_key() {
    let err = refused(
        "syslog_tcp",
        "address = \"127.0.0.1:1\"\nbogus = 1",
        "bogus",
    );
    assert!(err.message.contains("bogus"), "{err}");
    refused(
        "syslog_tcp",
        "address = \"x\"\noversize = \"explode\"",
        "oversize",
    );
    refused("syslog_udp", "sockets = 2", "address");
    refused(
        "syslog_udp",
        "address = \"127.0.0.1:1\"\nreceive_nice = -21",
        "receive_nice",
    );
    refused("carrier_pigeon", "address = \"x\"", "type");
    refused("http", "address = \"x\"\ntokens = [\"\"]", "tokens");
    refused(
        "syslog_tls",
        "cert = \"/nonexistent/server.pem\"\nkey = \"/nonexistent/server.key\"",
        "cert",
    );
    let err = refused(
        "syslog_tcp",
        "address = \"x\"\nqueue_bytes = \"4KiB\"",
        "queue_bytes",
    );
    assert!(err.message.contains("64KiB"), "{err}");
    let err = refused(
        "http",
        "address = \"x\"\nmax_body_bytes = \"2MiB\"\nqueue_bytes = \"1MiB\"",
        "queue_bytes",
    );
    assert!(err.message.contains("max_body_bytes"), "{err}");
    // zero would close every connection at once
    let err = refused(
        "syslog_tcp",
        "address = \"x\"\nidle_timeout = \"0s\"",
        "idle_timeout",
    );
    assert!(err.message.contains("100ms"), "{err}");
    sources::validate(&section("syslog_tcp", "address = \"127.0.0.1:5514\"\nmax_message_bytes = \"8KiB\"\nidle_timeout = \"30s\"\noversize = \"skip\"")).expect("valid");
}

#[tokio::test]
async fn bind_conflict_is_an_error_not_a_panic() {
    let first = start(
        "tcp",
        "syslog_tcp",
        r#"address = "127.0.0.1:0""#,
        Path::new("."),
    )
    .await;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let ctx = SourceContext {
        ingest: Arc::new(Collector::default()),
        shutdown: rx,
        timezone: chrono_tz::Tz::UTC,
        base_dir: ".".into(),
    };
    let addr = format!("address = \"127.0.0.1:{}\"", first.port());
    let err = sources::start(&section("syslog_tcp", &addr), ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Bind { .. }), "{err}");
    first.stop().await;
}
