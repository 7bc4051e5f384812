//! util-linux `logger` sends RFC 5424 and RFC 3164 messages over UDP and TCP
//! (octet counting and LF framing); every message must arrive with the right
//! header fields, structured data and text.

mod ingest_support;

use ingest_support::{require_program, run, start};
use siem_relay::event::{Event, Severity};
use std::process::Command;
use std::time::Duration;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

fn short_hostname() -> String {
    hostname().split('.').next().unwrap_or_default().to_string()
}

fn logger(port: u16, transport: &[&str], args: &[&str]) {
    require_program("logger", "bsdutils");
    let port = port.to_string();
    run(Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &port])
        .args(transport)
        .args(args));
}

fn rfc5424_args<'a>(msgid: &'a str, text: &'a str) -> Vec<&'a str> {
    vec![
        "--rfc5424",
        "--sd-id",
        "login@32473",
        "--sd-param",
        "user=\"alice\"",
        "--sd-param",
        "method=\"password\"",
        "--msgid",
        msgid,
        "-t",
        "sshd",
        "--id=4242",
        "-p",
        "auth.warning",
        "--",
        text,
    ]
}

fn rfc3164_args(text: &str) -> Vec<&str> {
    vec![
        "--rfc3164",
        "-t",
        "cron",
        "--id=77",
        "-p",
        "cron.err",
        "--",
        text,
    ]
}

fn find<'a>(events: &'a [Event], text: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.message.as_deref() == Some(text))
        .unwrap_or_else(|| panic!("no event with message {text:?} in {events:#?}"))
}

fn assert_5424(ev: &Event, msgid: &str, listener: &str) {
    assert!(!ev.parse_error, "{ev:#?}");
    let sys = ev.syslog.as_ref().expect("syslog fields");
    assert_eq!(sys.version, Some(1));
    assert_eq!(sys.facility, Some(4));
    assert_eq!(sys.severity, Some(4));
    assert_eq!(sys.hostname.as_deref(), Some(hostname().as_str()));
    assert_eq!(sys.app_name.as_deref(), Some("sshd"));
    assert_eq!(sys.procid.as_deref(), Some("4242"));
    assert_eq!(sys.msgid.as_deref(), Some(msgid));
    assert_eq!(sys.structured_data["login@32473"]["user"], "alice");
    assert_eq!(sys.structured_data["login@32473"]["method"], "password");
    assert_eq!(ev.severity, Severity::Warning);
    assert_eq!(ev.category, "AUTHENTICATION");
    let src = ev.source.as_ref().expect("source info");
    assert_eq!(src.listener, listener);
    assert!(src
        .address
        .as_deref()
        .unwrap_or("")
        .starts_with("127.0.0.1:"));
}

fn assert_3164(ev: &Event) {
    assert!(!ev.parse_error, "{ev:#?}");
    let sys = ev.syslog.as_ref().expect("syslog fields");
    assert_eq!(sys.version, None);
    assert_eq!(sys.facility, Some(9));
    assert_eq!(sys.severity, Some(3));
    assert_eq!(sys.hostname.as_deref(), Some(short_hostname().as_str()));
    assert_eq!(sys.app_name.as_deref(), Some("cron"));
    assert_eq!(sys.procid.as_deref(), Some("77"));
    assert_eq!(ev.severity, Severity::Error);
    assert_eq!(ev.category, "SYSTEM");
    let skew = (ev.timestamp_ms - ev.received_ms).abs();
    assert!(
        skew < 120_000,
        "3164 timestamp far from receive time: {ev:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_over_udp() {
    let h = start(
        "udp",
        "syslog_udp",
        r#"address = "127.0.0.1:0""#,
        std::path::Path::new("."),
    )
    .await;
    logger(
        h.port(),
        &["-d"],
        &rfc5424_args("UDP5424", "udp 5424 message"),
    );
    logger(h.port(), &["-d"], &rfc3164_args("udp 3164 message"));
    let evs = h.collector.wait_for_async(2, Duration::from_secs(10)).await;
    assert_5424(find(&evs, "udp 5424 message"), "UDP5424", "udp");
    assert_3164(find(&evs, "udp 3164 message"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_over_tcp_octet_counting_and_lf() {
    let h = start(
        "tcp",
        "syslog_tcp",
        r#"address = "127.0.0.1:0""#,
        std::path::Path::new("."),
    )
    .await;
    logger(
        h.port(),
        &["-T", "--octet-count"],
        &rfc5424_args("OCTET", "tcp octet 5424"),
    );
    logger(h.port(), &["-T"], &rfc5424_args("LF", "tcp lf 5424"));
    logger(
        h.port(),
        &["-T", "--octet-count"],
        &rfc3164_args("tcp octet 3164"),
    );
    logger(h.port(), &["-T"], &rfc3164_args("tcp lf 3164"));
    let evs = h.collector.wait_for_async(4, Duration::from_secs(10)).await;
    assert_eq!(evs.len(), 4, "{evs:#?}");
    assert_5424(find(&evs, "tcp octet 5424"), "OCTET", "tcp");
    assert_5424(find(&evs, "tcp lf 5424"), "LF", "tcp");
    assert_3164(find(&evs, "tcp octet 3164"));
    assert_3164(find(&evs, "tcp lf 3164"));
    h.stop().await;
}
