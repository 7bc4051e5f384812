//! rsyslog as a real forwarder: `logger` writes into an rsyslog `imtcp`
//! input, rsyslog forwards with `omfwd` to a `syslog_tcp` source (octet
//! counted and traditional LF framing, RFC 5424 and both of rsyslog's RFC
//! 3164 forwarding formats) and to a `syslog_tls` source (gtls driver with a
//! client certificate, mTLS), and every message arrives with its fields.

mod ingest_support;

use ingest_support::{make_pki, require_file, require_program, run, start, which};
use siem_relay::event::Event;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An rsyslogd child, killed (by its own handle) when dropped.
struct Rsyslogd(Child);

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn config(dir: &Path, pki: &Path, in_port: u16, tcp_port: u16, tls_port: u16) -> String {
    let p = |f: &str| pki.join(f).display().to_string();
    format!(
        r#"
global(workDirectory="{work}"
       DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{in_port}")
action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"
       TCP_Framing="traditional" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"
       TCP_Framing="traditional" template="RSYSLOG_ForwardFormat")
action(type="omfwd" target="127.0.0.1" port="{tcp_port}" protocol="tcp"
       TCP_Framing="traditional" template="RSYSLOG_TraditionalForwardFormat")
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp"
       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost" template="RSYSLOG_SyslogProtocol23Format")
"#,
        work = dir.display(),
        ca = p("ca.pem"),
        cert = p("client.pem"),
        key = p("client.key"),
    )
}

fn start_rsyslogd(dir: &Path, conf: &str, in_port: u16) -> Rsyslogd {
    require_program("rsyslogd", "rsyslog");
    require_file(
        Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
        "rsyslog-gnutls",
    );
    let conf_file = dir.join("rsyslog.conf");
    std::fs::write(&conf_file, conf).expect("write rsyslog.conf");
    let rsyslogd = which("rsyslogd").expect("rsyslogd");
    run(Command::new(&rsyslogd).arg("-N1").arg("-f").arg(&conf_file));
    let child = Command::new(rsyslogd)
        // its BSD timestamps in the relay's default zone
        .env("TZ", "UTC")
        .arg("-n")
        .arg("-f")
        .arg(&conf_file)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rsyslogd");
    let guard = Rsyslogd(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", in_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not open its imtcp port"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

fn logger(port: u16, msgid: &str, text: &str) {
    require_program("logger", "bsdutils");
    run(Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-T",
            "--rfc5424",
        ])
        .args([
            "--msgid",
            msgid,
            "-t",
            "auditd",
            "--id=31337",
            "-p",
            "authpriv.notice",
        ])
        .args(["--sd-id", "relay@32473", "--sd-param", "hop=\"rsyslog\""])
        .args(["--", text]));
}

fn check(ev: &Event, listener: &str) {
    assert!(!ev.parse_error, "{ev:#?}");
    let sys = ev.syslog.as_ref().expect("syslog");
    assert_eq!(sys.app_name.as_deref(), Some("auditd"), "{ev:#?}");
    assert_eq!(sys.procid.as_deref(), Some("31337"));
    assert_eq!((sys.facility, sys.severity), (Some(10), Some(5)));
    assert_eq!(sys.structured_data["relay@32473"]["hop"], "rsyslog");
    assert!(sys.msgid.as_deref().unwrap_or("").starts_with("M"));
    assert_eq!(ev.category, "AUTHENTICATION");
    assert_eq!(ev.source.as_ref().unwrap().listener, listener);
}

/// An RFC 3164 forward of the message `rfc5424` was forwarded as: the
/// same header fields, no MSGID or SD, and the same time (to the second
/// for `Mmm dd hh:mm:ss`).
fn check_3164(ev: &Event, rfc5424: &Event) {
    assert!(!ev.parse_error, "{ev:#?}");
    let sys = ev.syslog.as_ref().expect("syslog");
    let full = rfc5424.syslog.as_ref().expect("syslog");
    assert_eq!(sys.version, None, "{ev:#?}");
    assert_eq!(sys.hostname, full.hostname, "{ev:#?}");
    assert_eq!(sys.app_name.as_deref(), Some("auditd"), "{ev:#?}");
    assert_eq!(sys.procid.as_deref(), Some("31337"));
    assert_eq!((sys.facility, sys.severity), (Some(10), Some(5)));
    assert_eq!((sys.msgid.as_deref(), sys.structured_data.len()), (None, 0));
    assert_eq!(ev.category, "AUTHENTICATION");
    let to_second = rfc5424.timestamp_ms - rfc5424.timestamp_ms.rem_euclid(1000);
    assert!(
        [rfc5424.timestamp_ms, to_second].contains(&ev.timestamp_ms),
        "{ev:#?} against {rfc5424:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_over_tcp_and_tls() {
    let pki = make_pki();
    let tcp = start(
        "tcp",
        "syslog_tcp",
        r#"address = "127.0.0.1:0""#,
        Path::new("."),
    )
    .await;
    let tls_settings = "address = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n";
    let tls = start("tls", "syslog_tls", tls_settings, pki.dir.path()).await;
    let work = tempfile::tempdir().expect("tmp");
    let in_port = free_port();
    let conf = config(work.path(), pki.dir.path(), in_port, tcp.port(), tls.port());
    let daemon = start_rsyslogd(work.path(), &conf, in_port);

    let texts = [
        "first via rsyslog",
        "second via rsyslog",
        "third via rsyslog",
    ];
    for (i, t) in texts.iter().enumerate() {
        logger(in_port, &format!("M{i}"), t);
    }
    let tcp_events = tcp
        .collector
        .wait_for_async(12, Duration::from_secs(20))
        .await;
    let tls_events = tls
        .collector
        .wait_for_async(3, Duration::from_secs(20))
        .await;
    drop(daemon);
    for t in texts {
        let on_tcp: Vec<_> = tcp_events
            .iter()
            .filter(|e| e.message.as_deref() == Some(t))
            .collect();
        assert_eq!(on_tcp.len(), 4, "{t}: {tcp_events:#?}");
        let (rfc5424, rfc3164): (Vec<&&Event>, Vec<&&Event>) = on_tcp
            .iter()
            .partition(|e| e.syslog.as_ref().and_then(|s| s.version) == Some(1));
        assert_eq!((rfc5424.len(), rfc3164.len()), (2, 2), "{t}: {on_tcp:#?}");
        rfc5424.iter().for_each(|e| check(e, "tcp"));
        // RSYSLOG_ForwardFormat keeps the time whole, the traditional one to the second
        let exact = rfc3164
            .iter()
            .filter(|e| e.timestamp_ms == rfc5424[0].timestamp_ms);
        assert!(exact.count() >= 1, "{t}: {on_tcp:#?}");
        rfc3164.iter().for_each(|e| check_3164(e, rfc5424[0]));
        let on_tls: Vec<_> = tls_events
            .iter()
            .filter(|e| e.message.as_deref() == Some(t))
            .collect();
        assert_eq!(on_tls.len(), 1, "{t}: {tls_events:#?}");
        check(on_tls[0], "tls");
    }
    tcp.stop().await;
    tls.stop().await;
}
