//! The real `siem-relay` binary: `--version`, `--help`, `validate` (the
//! default config, every example, configs with errors), `test-destination`
//! against local HTTP servers, `run` with SIGTERM and SIGHUP, and the
//! `buffer verify` / `buffer salvage` commands around a damaged ring.

mod delivery_support;

use delivery_support::{reply, serve};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_siem-relay");

fn relay(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SIEM_RELAY_LOG", "warn")
        .env_remove("MISSING_VAR_FOR_CLI_TEST")
        .output()
        .expect("siem-relay runs")
}

/// What `validate` prints for a config file of `config`, which it must
/// refuse.
fn validate_fails(config: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success(), "validate accepted:\n{config}");
    text(&o)
}

/// Each of `keys` (key path, line) is in `validate`'s output `out`.
fn reported_at(out: &str, keys: &[(&str, usize)]) {
    for (key, line) in keys {
        let want = format!("{key} (line {line}): ");
        assert!(out.contains(&want), "no `{want}` in:\n{out}");
    }
}

/// `validate`'s output `out` is one error, at `key` (line `line`), that
/// says `words`.
fn only_error(out: &str, key: &str, line: usize, words: &str) {
    reported_at(out, &[(key, line)]);
    assert!(out.contains(words), "no `{words}` in:\n{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

// ------------------------------------------------------------- basics

#[test]
fn version_and_help() {
    let o = relay(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("siem-relay {}", env!("CARGO_PKG_VERSION"))
    );
    let o = relay(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in ["run", "validate", "test-destination", "buffer"] {
        assert!(help.contains(cmd), "--help lacks `{cmd}`:\n{help}");
    }
    let o = relay(&["no-such-command"]);
    assert!(!o.status.success());
}

#[test]
fn default_config_validates() {
    let cfg = repo("config/siem-relay.toml");
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK"), "{}", text(&o));
}

#[test]
fn every_example_validates() {
    let kinds = [
        "splunk_hec",
        "elasticsearch",
        "datadog",
        "sentinel",
        "sumo_logic",
        "syslog",
        "http",
        "file",
        "stdout",
        "blackhole",
    ];
    let dir = repo("config/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("config/examples exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for k in kinds {
        assert!(
            files.iter().any(|f| f.ends_with(format!("{k}.toml"))),
            "no example for `{k}`"
        );
    }
    for f in &files {
        let body = std::fs::read_to_string(f).unwrap();
        let kind = f.file_stem().unwrap().to_str().unwrap();
        assert!(
            body.contains(&format!("type = \"{kind}\"")),
            "{} does not configure a `{kind}` destination",
            f.display()
        );
        assert!(body.contains("type = \"syslog_tcp\"") && body.contains("127.0.0.1"));
        // the `http` body template's placeholder is `{{events}}`, as validate wants
        assert!(
            !body.replace("{{events}}", "").contains("{events}"),
            "{} shows `{{events}}` with single braces",
            f.display()
        );
        // secrets come from the environment, without which they must still validate
        let mut cmd = Command::new(BIN);
        for v in [
            "SPLUNK_HEC_TOKEN",
            "SPLUNK_HEC_URL",
            "ES_API_KEY",
            "ES_URL",
            "DD_API_KEY",
            "AZURE_CLIENT_SECRET",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "SUMO_CODE",
            "HOOK_KEY",
            "HOOK_URL",
        ] {
            cmd.env_remove(v);
        }
        let o = cmd
            .args(["validate", "--config", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", f.display(), text(&o));
    }
}

/// The `http` example's commented-out body template validates when put in
/// place of `body = "json_array"`.
#[test]
fn the_http_examples_body_template_validates() {
    let example = std::fs::read_to_string(repo("config/examples/http.toml")).unwrap();
    let template = example
        .lines()
        .find_map(|l| l.strip_prefix("# body = "))
        .expect("http.toml shows a body template")
        .split("   #")
        .next()
        .unwrap()
        .trim();
    assert!(template.contains("{{events}}"), "{template}");
    let chosen = example
        .lines()
        .find(|l| l.starts_with("body = \"json_array\""))
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("http.toml");
    std::fs::write(&cfg, example.replace(chosen, &format!("body = {template}"))).unwrap();
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "body = {template}: {}", text(&o));
}

#[test]
fn validate_refuses_a_dead_letter_path_under_a_regular_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notadir"), "").unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        "[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:5514\"\n\n\
         [destinations.hook]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1/hook\"\n\
         dead_letter = \"notadir/hook.ndjson\"\n",
    )
    .unwrap();
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    only_error(
        &text(&o),
        "destinations.hook.dead_letter",
        8,
        "notadir is not a directory",
    );
}

/// Two `file` destinations writing one file (spelled `o.ndjson` and
/// `./o.ndjson`), a dead-letter file that is a `file` destination's
/// output, an output that is another's rotated file (`x.ndjson.2`), and a
/// file inside the relay's own state: refused, each at the key of the
/// later writer. Dead-letter files may be shared (each line names its
/// destination).
#[test]
fn validate_refuses_two_destinations_writing_one_file() {
    let out = validate_fails(
        "data_dir = \"data\"\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:5514\"\n\n\
         [destinations.a]\ntype = \"file\"\npath = \"o.ndjson\"\ndead_letter = \"dl.ndjson\"\n\n\
         [destinations.b]\ntype = \"file\"\npath = \"./o.ndjson\"\ndead_letter = \"dl.ndjson\"\n\n\
         [destinations.c]\ntype = \"file\"\npath = \"sub/../c.ndjson\"\nbatch_size = 10\n\n\
         [destinations.hook]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1/hook\"\n\
         dead_letter = \"c.ndjson\"\n\n\
         [destinations.x]\ntype = \"file\"\npath = \"x.ndjson\"\nkeep_files = 3\n\n\
         [destinations.y]\ntype = \"file\"\npath = \"x.ndjson.2\"\n\n\
         [destinations.z]\ntype = \"file\"\npath = \"data/buffer/segment-00000.dat\"\n",
    );
    reported_at(
        &out,
        &[
            ("destinations.b.path", 13),
            ("destinations.hook.dead_letter", 24),
            ("destinations.y.path", 33),
            ("destinations.z.path", 37),
        ],
    );
    assert!(
        out.contains("is also written by destinations.a.path"),
        "{out}"
    );
    assert!(
        out.contains("is also written by destinations.c.path"),
        "{out}"
    );
    assert!(
        out.contains("is also written by destinations.x.path"),
        "{out}"
    );
    assert!(out.contains("inside the relay's own state"), "{out}");
    assert_eq!(out.matches("is also written by").count(), 3, "{out}");
}

// ------------------------------------------------------- invalid configs

const BAD: &str = r#"data_dir = "data"

[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:5514"

[destinations.x]
type = "file"
path = "out.ndjson"
batch_size = 0

[destinations.y]
type = "nosuch"

[destinations.z]
type = "splunk_hec"
endpoint = "http://127.0.0.1:1"
token = "t"
retry = { max_attempts = "x" }
"#;

fn expect_bad_messages(out: &str) {
    for (needle, line) in [
        ("destinations.x.batch_size", 10),
        ("destinations.y.type", 13),
        ("destinations.z.retry.max_attempts", 19),
    ] {
        let l = out
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no error for `{needle}` in:\n{out}"));
        assert!(l.contains(&format!("(line {line})")), "{l}");
    }
    assert!(out.contains("must be at least 1"), "{out}");
    assert!(out.contains("unknown destination type `nosuch`"), "{out}");
}

#[test]
fn validate_prints_every_error_with_key_path_and_line() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("bad.toml");
    std::fs::write(&cfg, BAD).unwrap();
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    expect_bad_messages(&text(&o));
    assert!(!text(&o).contains("MISSING_VAR"));

    // an unset variable is named with the key that uses it, and does not
    // hide the other errors
    let cfg2 = d.path().join("env.toml");
    std::fs::write(&cfg2, with_missing_var()).unwrap();
    let o = relay(&["validate", "--config", cfg2.to_str().unwrap()]);
    assert!(!o.status.success());
    let out = text(&o);
    expect_bad_messages(&out);
    expect_missing_var(&out);
}

/// What `run` would fail on at bind time, `validate` says first: an
/// address that is no host:port, and listeners of one transport that
/// overlap (the same port, one of them on all addresses; the admin API too).
#[test]
fn validate_checks_listener_addresses_and_their_overlaps() {
    let out = validate_fails(
        "[sources.a]\ntype = \"syslog_tcp\"\naddress = \"nonsense\"\n\n\
         [sources.b]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:99999\"\n\n\
         [sources.c]\ntype = \"syslog_tcp\"\naddress = \"0.0.0.0:6601\"\n\n\
         [sources.d]\ntype = \"http\"\naddress = \"127.0.0.1:6601\"\n\n\
         [sources.e]\ntype = \"syslog_udp\"\naddress = \"127.0.0.1:6601\"\n\n\
         [api]\naddress = \"127.0.0.1:6601\"\n\n\
         [destinations.f]\ntype = \"file\"\npath = \"out.ndjson\"\n",
    );
    for (key, says) in [
        ("sources.a.address (line 3)", "not a host:port address"),
        ("sources.b.address (line 7)", "not a host:port address"),
        ("sources.d.address (line 15)", "overlaps sources.c's"),
        ("api.address (line 22)", "overlaps sources.c's"),
        // an API without tokens would answer 401 to everything
        ("api.tokens (line 21)", "at least one token is required"),
    ] {
        let l = out
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no error for `{key}` in:\n{out}"));
        assert!(l.contains(says), "{l}");
    }
    // UDP and TCP do not clash
    assert!(!out.contains("sources.e.address"), "{out}");
}

/// A top-level key in error (`[buffer]`, `[api]`, one unknown) does not
/// hide the sections' errors: all are listed at once.
#[test]
fn validate_lists_section_errors_behind_a_top_level_one() {
    let out = validate_fails(
        "colour = \"blue\"\n\n[buffer]\nfsync = \"sometimes\"\n\n\
         [api]\naddress = 5\n\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\nadress = \"127.0.0.1:1\"\n\n\
         [destinations.archive]\ntype = \"fil\"\n",
    );
    for key in [
        "colour",
        "buffer.fsync (line 4)",
        "api.address (line 7)",
        "sources.tcp.adress (line 11)",
        "destinations.archive.type (line 14)",
    ] {
        assert!(out.contains(key), "no error for `{key}` in:\n{out}");
    }
}

/// Every bad key of one section is listed, not only the first serde or a
/// module's check stops at (in the common keys and the format's own), and
/// every missing TLS file of a section; a key left out to find the others
/// is not reported again as missing.
#[test]
fn validate_lists_every_bad_key_of_a_section_and_every_missing_file() {
    let out = validate_fails(
        "[sources.tls]\ntype = \"syslog_tls\"\naddress = \"127.0.0.1:0\"\n\
         cert = \"nope.pem\"\nkey = \"nope.key\"\nclient_ca = \"nope-ca.pem\"\n\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\n\
         max_connections = \"many\"\nidle_timeout = \"soon\"\nidle = 5\n\n\
         [destinations.hook]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1/\"\n\
         batch_size = 0\nbatchsize = 10\nconcurrency = 100\n\
         filter = { min_severity = \"loud\", categorys = [\"SECURITY\"] }\n\
         timeout = \"never\"\nbodie = \"ndjson\"\n\n\
         [destinations.central]\ntype = \"syslog\"\naddress = \"127.0.0.1:6514\"\n\
         ca = \"no-ca.pem\"\ncert = \"no-cert.pem\"\nkey = \"no-key.pem\"\n",
    );
    reported_at(
        &out,
        &[
            ("sources.tls.cert", 4),
            ("sources.tls.key", 5),
            ("sources.tls.client_ca", 6),
            ("sources.tcp.max_connections", 11),
            ("sources.tcp.idle_timeout", 12),
            ("sources.tcp.idle", 13),
            ("destinations.hook.batch_size", 18),
            ("destinations.hook.batchsize", 19),
            ("destinations.hook.concurrency", 20),
            ("destinations.hook.filter.min_severity", 21),
            ("destinations.hook.filter.categorys", 21),
            ("destinations.hook.timeout", 22),
            ("destinations.hook.bodie", 23),
            ("destinations.central.ca", 28),
            ("destinations.central.cert", 29),
            ("destinations.central.key", 30),
        ],
    );
    assert!(out.contains("nope-ca.pem does not exist"), "{out}");
    assert!(!out.contains("missing field"), "{out}");
    // in the file's order within each section
    let lines: Vec<usize> = out
        .lines()
        .filter(|l| l.contains("destinations.hook."))
        .filter_map(|l| l.split("(line ").nth(1)?.split(')').next()?.parse().ok())
        .collect();
    assert!(lines.is_sorted(), "{out}");
}

/// A required key with a bad value (`cert = 5`) is reported, and the rest
/// of its section is still checked: its other bad keys and missing files.
#[test]
fn validate_checks_the_rest_of_a_section_after_a_bad_required_key() {
    let out = validate_fails(
        "[sources.tls]\ntype = \"syslog_tls\"\naddress = \"127.0.0.1:0\"\n\
         cert = 5\nkey = \"nope.key\"\nmax_connections = \"many\"\nidle = 5\n\n\
         [destinations.out]\ntype = \"file\"\npath = \"out.ndjson\"\n",
    );
    reported_at(
        &out,
        &[
            ("sources.tls.cert", 4),
            ("sources.tls.key", 5),
            ("sources.tls.max_connections", 6),
            ("sources.tls.idle", 7),
        ],
    );
    assert!(out.contains("nope.key does not exist"), "{out}");
    assert!(!out.contains("missing field"), "{out}");
    // the bad value once, and nothing about the stand-in read in its place
    assert_eq!(out.matches("sources.tls.cert").count(), 1, "{out}");
}

fn with_missing_var() -> String {
    BAD.replace("token = \"t\"", "token = \"${MISSING_VAR_FOR_CLI_TEST}\"")
}

fn expect_missing_var(out: &str) {
    let l = out
        .lines()
        .find(|l| l.contains("MISSING_VAR_FOR_CLI_TEST"))
        .unwrap_or_else(|| panic!("variable not named:\n{out}"));
    assert!(
        l.contains("destinations.z.token") && l.contains("(line 18)") && l.contains("not set"),
        "{l}"
    );
    // the empty stand-in for the variable causes no second error on that key
    assert_eq!(out.matches("destinations.z.token").count(), 1, "{out}");
}

/// Every bad key of `[buffer]` is listed (not only the first), and all
/// errors come in the file's order.
#[test]
fn validate_lists_every_bad_buffer_key_in_the_files_order() {
    let out = validate_fails(
        "[destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\nbatch_sise = 5\n\n\
         [buffer]\nmax_bytes = \"lots\"\nsegment_bytes = 12\nfsync = \"sometimes\"\n",
    );
    let keys: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|k| k.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "destinations.f.batch_sise",
            "buffer.max_bytes",
            "buffer.segment_bytes",
            "buffer.fsync"
        ],
        "{out}"
    );
    assert!(out.contains("did you mean `batch_size`?"), "{out}");
}

/// A `segment_bytes` out of range is reported at its own key, with the
/// range, not as a `max_bytes` too small for it.
#[test]
fn validate_names_a_segment_size_out_of_range_at_its_key() {
    let out = validate_fails(
        "[destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\n\n\
         [buffer]\nsegment_bytes = \"8GiB\"\n",
    );
    only_error(
        &out,
        "buffer.segment_bytes",
        6,
        "must be between 64KiB and 4GiB (is 8GiB)",
    );
    assert!(!out.contains("max_bytes"), "{out}");
}

/// An HTTP source's `max_body_bytes` over its (default) `queue_bytes` is
/// reported at `max_body_bytes`, with the limit it passed.
#[test]
fn validate_names_a_body_limit_over_the_queue_at_its_key() {
    let out = validate_fails(
        "[sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\n\
         max_body_bytes = \"1GB\"\n\n\
         [destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\n",
    );
    only_error(
        &out,
        "sources.web.max_body_bytes",
        4,
        "must be at most queue_bytes (32MiB, its default)",
    );
    assert!(!out.contains("queue_bytes (line"), "{out}");
}

/// A mistyped source `type` is reported once, with the type meant, and
/// its address is not said to overlap another source's.
#[test]
fn validate_reports_a_mistyped_source_type_alone() {
    let out = validate_fails(
        "[sources.a]\ntype = \"tpc\"\naddress = \"127.0.0.1:6602\"\n\n\
         [sources.b]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:6602\"\n\n\
         [destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\n",
    );
    only_error(&out, "sources.a.type", 2, "did you mean `syslog_tcp`?");
    assert!(!out.contains("overlaps"), "{out}");
}

/// Behind another error, `validate` still reads `${VAR:-default}` as its
/// default, and an unset variable in an array is reported once, at its line.
#[test]
fn validate_reads_variables_with_defaults_behind_other_errors() {
    let out = validate_fails(
        r#"[buffer]
fsync = "sometimes"

[sources.web]
type = "http"
address = "127.0.0.1:0"
tokens = ["${SIEM_RELAY_CLI_TEST_UNSET:-fallback}"]

[sources.web2]
type = "http"
address = "127.0.0.1:0"
tokens = ["${SIEM_RELAY_CLI_TEST_UNSET}"]

[destinations.splunk]
type = "splunk_hec"
endpoint = "${SIEM_RELAY_CLI_TEST_UNSET:-https://hec.example:8088}"
token = "t"
"#,
    );
    reported_at(&out, &[("buffer.fsync", 2), ("sources.web2.tokens[0]", 12)]);
    assert!(
        out.contains("`SIEM_RELAY_CLI_TEST_UNSET` is not set"),
        "{out}"
    );
    // the defaults were read: no error about an empty token or a bad URL
    assert!(!out.contains("sources.web.tokens"), "{out}");
    assert!(!out.contains("destinations.splunk"), "{out}");
    // the unset one is reported once, not again as an empty list
    assert_eq!(out.matches("sources.web2.tokens").count(), 1, "{out}");
}

#[test]
fn run_refuses_an_invalid_config_with_the_same_messages() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("bad.toml");
    std::fs::write(&cfg, with_missing_var()).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("SIEM_RELAY_LOG", "warn")
        .env_remove("MISSING_VAR_FOR_CLI_TEST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let o = child.wait_with_output().unwrap();
    assert!(!status.success());
    expect_bad_messages(&text(&o));
    expect_missing_var(&text(&o));
    assert!(!d.path().join("data").exists(), "nothing started");
}

// ---------------------------------------------------- test-destination

#[test]
fn test_destination_reports_success_and_the_servers_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ok = rt.block_on(serve(|_, _| reply(200, "{}")));
    let denied = rt.block_on(serve(|_, _| {
        reply(403, r#"{"error":"API key revoked for this workspace"}"#)
    }));
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:5514\"\n\n\
             [destinations.good]\ntype = \"http\"\nendpoint = \"{}/hook\"\n\n\
             [destinations.bad]\ntype = \"http\"\nendpoint = \"{}/hook\"\n",
            ok.url, denied.url
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let o = relay(&["test-destination", "good", "--config", c]);
    assert!(o.status.success(), "{}", text(&o));
    // HTTP sinks say "test event accepted by URL", others "connected to TARGET"
    let out = text(&o);
    assert!(
        out.contains(&format!("connected to {}", ok.url))
            || out.contains(&format!("test event accepted by {}", ok.url)),
        "{out}"
    );
    let seen = ok.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].body_str().contains("relay.test"));

    let o = relay(&["test-destination", "bad", "--config", c]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("API key revoked for this workspace") && out.contains("403"),
        "{out}"
    );
    let o = relay(&["test-destination", "nope", "--config", c]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no destination `nope`"), "{}", text(&o));
}

/// A busy HEC (503, code 9) fails the test at once, and the output says
/// what Splunk answered without claiming a retry: `test-destination` (and
/// the API's test, which prints the same message) sends once. It said
/// "Splunk is busy or failing; retrying" and exited.
#[test]
fn test_destination_against_a_busy_hec_claims_no_retry() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hec = rt.block_on(serve(|s, _| {
        if s.path.starts_with("/services/collector/health") {
            reply(200, r#"{"text":"HEC is healthy","code":17}"#)
        } else {
            reply(503, r#"{"text":"Server is busy","code":9}"#)
        }
    }));
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:5514\"\n\n\
             [destinations.hec]\ntype = \"splunk_hec\"\nendpoint = \"{}\"\ntoken = \"t\"\n",
            hec.url
        ),
    )
    .unwrap();
    let o = relay(&["test-destination", "hec", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("hec: FAILED: ")
            && out.contains(
                r#"Splunk HEC answered 503 code 9 "Server is busy": Splunk is busy or failing"#
            ),
        "{out}"
    );
    assert!(!out.to_lowercase().contains("retry"), "{out}");
    let events = hec
        .requests()
        .iter()
        .filter(|r| r.path == "/services/collector/event")
        .count();
    assert_eq!(events, 1, "one probe, no retry");
}

// ------------------------------------------------------------ run

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("siem-relay did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `siem-relay run`, killed if a test fails midway.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(cfg: &Path, port: u16) -> Running {
        let log = unique(cfg.to_path_buf());
        let child = Command::new(BIN)
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("SIEM_RELAY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let r = Running { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "relay not listening on {port}:\n{}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
    /// SIGTERM and the exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let s = wait_exit(&mut self.child, Duration::from_secs(15));
        (s, self.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(p: PathBuf) -> PathBuf {
    let mut n = 0;
    loop {
        let c = p.with_extension(format!("{n}.log"));
        if !c.exists() {
            return c;
        }
        n += 1;
    }
}

fn send_lines(port: u16, from: usize, to: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = String::new();
    for i in from..to {
        buf.push_str(&format!(
            "<134>1 2024-05-01T10:00:00.000Z host-1 app - - - msg-{i:05} {}\n",
            "x".repeat(150)
        ));
    }
    s.write_all(buf.as_bytes()).unwrap();
    s.flush().unwrap();
}

/// The `msg-NNNNN` numbers in an NDJSON output file, in order.
fn messages(path: &Path) -> Vec<usize> {
    let Ok(t) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    // the relay may be writing the last line right now: only whole lines count
    let whole = &t[..t.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("NDJSON line");
            let m = v["message"].as_str()?.strip_prefix("msg-")?;
            m.get(..5)?.parse().ok()
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn config(port: u16, dests: &str) -> String {
    format!(
        "data_dir = \"data\"\nshutdown_grace = \"3s\"\n\n[buffer]\nmax_bytes = \"1MiB\"\n\
         segment_bytes = \"64KiB\"\nfsync = \"50ms\"\n\n\
         [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         max_message_bytes = \"8KiB\"\n\n{dests}"
    )
}

fn file_dest(name: &str) -> String {
    format!(
        "[destinations.{name}]\ntype = \"file\"\npath = \"out/{name}.ndjson\"\n\
         batch_size = 100\nbatch_timeout = \"50ms\"\n\n"
    )
}

/// A source that cannot stop (its appends wait for a ring a `block`
/// destination holds, the destination down) is left behind at shutdown,
/// and the log says how much it had read and not stored: that is lost
/// with it, and nothing else said so.
#[test]
fn a_source_left_behind_at_shutdown_says_what_it_held() {
    let d = tempfile::tempdir().unwrap();
    let (port, down) = (free_port(), free_port());
    let cfg = d.path().join("relay.toml");
    let dests = format!(
        "[destinations.down]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:{down}/x\"\n\
         when_full = \"block\"\nretry = {{ initial_backoff = \"50ms\", max_backoff = \"100ms\" }}\n"
    );
    std::fs::write(&cfg, config(port, &dests)).unwrap();
    let r = Running::start(&cfg, port);
    // 3 MB for a ring of 1 MiB: the sender blocks once the source holds its queue
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let line = format!(
            "<134>1 2024-05-01T10:00:00.000Z h app - - - {}\n",
            "x".repeat(250)
        );
        for _ in 0..10_000 {
            if s.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, log) = r.terminate();
    let warning = log
        .lines()
        .find(|l| l.contains("source did not stop within 5s"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    let held: u64 = warning
        .split("queued_bytes=")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queued_bytes: {warning}"));
    assert!(held > 0, "{warning}");
}

#[test]
fn run_receives_over_tcp_and_sigterm_exits_cleanly_with_everything_written() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("archive"))).unwrap();
    let r = Running::start(&cfg, port);
    const N: usize = 500;
    send_lines(port, 0, N);
    let out = d.path().join("out/archive.ndjson");
    wait_for("all lines in the file", Duration::from_secs(10), || {
        messages(&out).len() >= N
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "exit {status:?}:\n{log}");
    // batches may land out of order (concurrency 2), each event exactly once
    let mut got = messages(&out);
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "all, exactly once");
    assert!(log.contains("shutdown complete"), "{log}");
}

/// `GET path` on `port` with a bearer token: the status line and body.
fn http_get(port: u16, path: &str, token: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A Sumo Logic collector redirected to another deployment: its `Location`
/// holds the collector code, the secret, which then reaches neither the
/// log, nor the dead-letter reason, nor `last_error` (which a viewer reads).
#[test]
fn a_redirect_leaks_the_sumo_logic_secret_nowhere() {
    use sha2::Digest;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moved = rt.block_on(serve(|_, _| {
        reply(308, "").with_header(
            "location",
            "https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhSECRET",
        )
    }));
    let d = tempfile::tempdir().unwrap();
    let (port, api) = (free_port(), free_port());
    let cfg = d.path().join("relay.toml");
    let dests = format!(
        "[destinations.sumo]\ntype = \"sumo_logic\"\n\
         endpoint = \"{}/receiver/v1/http/ZaVnC4dhSECRET\"\nbatch_timeout = \"50ms\"\n\n\
         [api]\naddress = \"127.0.0.1:{api}\"\n\
         tokens = [{{ name = \"v\", role = \"viewer\", token_sha256 = \"{}\" }}]\n",
        moved.url,
        hex::encode(sha2::Sha256::digest(b"viewtok"))
    );
    std::fs::write(&cfg, config(port, &dests)).unwrap();
    let r = Running::start(&cfg, port);
    send_lines(port, 0, 1);
    let dl = d.path().join("data/dead_letter/sumo.ndjson");
    wait_for("the dead letter", Duration::from_secs(10), || {
        std::fs::read_to_string(&dl).is_ok_and(|t| t.ends_with('\n'))
    });
    let status = http_get(api, "/api/v1/destinations/sumo/status", "viewtok");
    let (exit, log) = r.terminate();
    assert!(exit.success(), "{log}");
    let dead = std::fs::read_to_string(&dl).unwrap();
    for (place, text) in [("log", &log), ("dead letters", &dead), ("status", &status)] {
        assert!(
            text.contains("answered 308 redirecting to https://endpoint4.collection.us2.sumologic.com/[path redacted]"),
            "{place}: {text}"
        );
        assert!(
            !text.contains("SECRET"),
            "the secret is in the {place}: {text}"
        );
    }
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

/// A dead-letter file that cannot be written (its folder became a regular
/// file after the start): the warning says the events were not
/// dead-lettered and where they are, instead of "dead-lettered".
#[test]
fn a_failed_dead_letter_write_is_not_reported_as_dead_lettered() {
    use sha2::Digest;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refusing = rt.block_on(serve(|_, _| reply(400, r#"{"error":"bad payload"}"#)));
    let d = tempfile::tempdir().unwrap();
    let (port, api) = (free_port(), free_port());
    let cfg = d.path().join("relay.toml");
    let dests = format!(
        "[destinations.hook]\ntype = \"http\"\nendpoint = \"{}/hook\"\n\
         batch_timeout = \"50ms\"\ndead_letter = \"dl/hook.ndjson\"\n\n\
         [api]\naddress = \"127.0.0.1:{api}\"\n\
         tokens = [{{ name = \"v\", role = \"viewer\", token_sha256 = \"{}\" }}]\n",
        refusing.url,
        hex::encode(sha2::Sha256::digest(b"viewtok"))
    );
    std::fs::write(&cfg, config(port, &dests)).unwrap();
    let r = Running::start(&cfg, port);
    std::fs::write(d.path().join("dl"), "a file where the folder should be").unwrap();
    send_lines(port, 0, 1);
    wait_for("the rejection", Duration::from_secs(10), || {
        r.log().contains("batch rejected")
    });
    // counted, in the status and the metrics
    let status = http_get(api, "/api/v1/destinations/hook/status", "viewtok");
    assert!(
        status.contains(r#""rejected":1,"dead_letter_failed":1"#),
        "{status}"
    );
    let metrics = http_get(api, "/metrics", "viewtok");
    assert!(
        metrics
            .contains("siem_relay_destination_dead_letter_failed_total{destination=\"hook\"} 1\n"),
        "{metrics}"
    );
    let (exit, log) = r.terminate();
    assert!(exit.success(), "{log}");
    assert!(log.contains("cannot write dead letters"), "{log}");
    assert!(log.contains("msg-00000"), "the event is in the log: {log}");
    let warning = log.lines().find(|l| l.contains("batch rejected")).unwrap();
    assert!(
        warning.contains("NOT dead-lettered: the dead-letter write failed"),
        "{warning}"
    );
}

#[test]
fn sighup_adds_a_destination_and_the_first_keeps_receiving() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("first"))).unwrap();
    let r = Running::start(&cfg, port);
    let first = d.path().join("out/first.ndjson");
    let second = d.path().join("out/second.ndjson");
    send_lines(port, 0, 100);
    wait_for("first 100", Duration::from_secs(10), || {
        messages(&first).len() >= 100
    });
    std::fs::write(
        &cfg,
        config(port, &(file_dest("first") + &file_dest("second"))),
    )
    .unwrap();
    r.signal(libc::SIGHUP);
    wait_for("reload", Duration::from_secs(10), || {
        r.log().contains("configuration reloaded")
    });
    send_lines(port, 100, 200);
    wait_for("after reload", Duration::from_secs(10), || {
        messages(&first).len() >= 200
            && messages(&second).iter().filter(|&&m| m >= 100).count() >= 100
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(
        messages(&first),
        (0..200).collect::<Vec<_>>(),
        "no loss, no duplicates"
    );
    let got = messages(&second);
    let after: Vec<usize> = got.iter().copied().filter(|&m| m >= 100).collect();
    assert_eq!(after, (100..200).collect::<Vec<_>>());
    // a new destination starts at the oldest retained record: nothing twice
    let mut sorted = got.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len());
}

/// A `[buffer]` change needs a restart: every reload says so until then,
/// not only the first (the running ring is what a reload compares with,
/// not the file the last reload read).
#[test]
fn sighup_warns_of_a_buffer_change_at_every_reload_until_a_restart() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("first"))).unwrap();
    let r = Running::start(&cfg, port);
    let bigger = config(port, &file_dest("first")).replace("\"1MiB\"", "\"2MiB\"");
    std::fs::write(&cfg, bigger).unwrap();
    const WARNING: &str = "take effect at the next restart";
    for reloads in 1..=2 {
        r.signal(libc::SIGHUP);
        wait_for("reload", Duration::from_secs(10), || {
            r.log().matches("configuration reloaded").count() >= reloads
        });
        assert_eq!(r.log().matches(WARNING).count(), reloads, "{}", r.log());
    }
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
}

/// An `[api]` address change needs a restart: every reload says so until
/// then, as for `[buffer]`, and the API stays where it listens, while the
/// same reloads put its new tokens in force at once.
#[test]
fn sighup_applies_api_tokens_and_warns_of_an_api_address_change_at_every_reload() {
    use sha2::Digest;
    let d = tempfile::tempdir().unwrap();
    let (port, api, other) = (free_port(), free_port(), free_port());
    let cfg = d.path().join("relay.toml");
    let with_api = |address: u16, token: &str| {
        let api = format!(
            "[api]\naddress = \"127.0.0.1:{address}\"\n\
             tokens = [{{ name = \"v\", role = \"viewer\", token_sha256 = \"{}\" }}]\n",
            hex::encode(sha2::Sha256::digest(token.as_bytes()))
        );
        config(port, &format!("{}{api}", file_dest("first")))
    };
    std::fs::write(&cfg, with_api(api, "tok-1")).unwrap();
    let r = Running::start(&cfg, port);
    std::fs::write(&cfg, with_api(other, "tok-2")).unwrap();
    const WARNING: &str = "[api] address changes take effect at the next restart";
    for reloads in 1..=2 {
        r.signal(libc::SIGHUP);
        wait_for("reload", Duration::from_secs(10), || {
            r.log().matches("configuration reloaded").count() >= reloads
        });
        assert_eq!(r.log().matches(WARNING).count(), reloads, "{}", r.log());
    }
    let path = "/api/v1/destinations";
    assert!(http_get(api, path, "tok-2").starts_with("HTTP/1.1 200"));
    assert!(http_get(api, path, "tok-1").starts_with("HTTP/1.1 401"));
    assert!(TcpStream::connect(("127.0.0.1", other)).is_err());
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
}

/// A reload whose changed source cannot start (its new address is taken)
/// is refused as a whole: the source runs on as it was, and a destination
/// the same reload would have added is not started.
#[test]
fn sighup_whose_source_cannot_bind_keeps_the_running_source() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("first"))).unwrap();
    let r = Running::start(&cfg, port);
    let first = d.path().join("out/first.ndjson");
    send_lines(port, 0, 50);
    wait_for("first 50", Duration::from_secs(10), || {
        messages(&first).len() >= 50
    });
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        config(taken_port, &(file_dest("first") + &file_dest("second"))),
    )
    .unwrap();
    r.signal(libc::SIGHUP);
    wait_for("refusal", Duration::from_secs(10), || {
        r.log().contains("reload refused")
    });
    assert!(r.log().contains("Address already in use"), "{}", r.log());
    // still listening where it was, and delivering
    send_lines(port, 50, 100);
    wait_for("after the refused reload", Duration::from_secs(10), || {
        messages(&first).len() >= 100
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(messages(&first), (0..100).collect::<Vec<_>>());
    assert!(
        !d.path().join("out/second.ndjson").exists(),
        "the refused reload started a destination"
    );
    drop(taken);
}

/// A startup error names its cause once (the library's messages carry their
/// cause's text, which printing the whole chain repeated three times).
#[test]
fn a_startup_error_says_its_cause_once() {
    let d = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("first"))).unwrap();
    let out = relay(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line.matches("Address already in use").count(), 1, "{line}");
    assert!(
        line.contains(&format!("sources.tcp: cannot bind 127.0.0.1:{port}")),
        "{line}"
    );
}

// -------------------------------------------------------------- buffer

#[test]
fn buffer_verify_detects_damage_relay_repairs_and_salvage_reappends() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("archive"))).unwrap();
    let c = cfg.to_str().unwrap();
    let out = d.path().join("out/archive.ndjson");
    const N: usize = 600;
    let r = Running::start(&cfg, port);
    send_lines(port, 0, N);
    wait_for("all lines", Duration::from_secs(10), || {
        messages(&out).len() >= N
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");

    // clean
    let o = relay(&["buffer", "verify", "--config", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = text(&o);
    assert!(report.contains(&format!("records: {N}")), "{report}");
    assert!(report.contains("state: clean"), "{report}");
    let o = relay(&["buffer", "verify", "--json", "--config", c]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let segs = j["segments"].as_array().unwrap();
    assert!(segs.len() >= 3, "{j}");
    let victim = segs[1]["file"].as_str().unwrap().to_string();
    let victim_records = segs[1]["records"].as_u64().unwrap();
    let first_seq = segs[1]["first_seq"].as_u64().unwrap() as usize;
    assert!(victim_records > 0);

    // one byte of the segment header: the segment becomes unreadable
    let path = d.path().join("data/buffer").join(&victim);
    let mut b = std::fs::read(&path).unwrap();
    b[3] ^= 0xFF;
    std::fs::write(&path, &b).unwrap();
    let o = relay(&["buffer", "verify", "--config", c]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("UNREADABLE"), "{}", text(&o));

    // restart: the relay repairs (quarantines) and says so in the stream
    let r = Running::start(&cfg, port);
    wait_for("quarantine notice", Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("relay.buffer.quarantine"))
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    let o = relay(&["buffer", "verify", "--config", c]);
    assert!(
        text(&o).contains("1 quarantined file(s) awaiting `siem-relay buffer salvage`")
            && !text(&o).contains("UNREADABLE"),
        "{}",
        text(&o)
    );

    // salvage re-appends the quarantined segment's valid records
    let o = relay(&["buffer", "salvage", "--config", c]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("salvaged {victim_records} records")),
        "{}",
        text(&o)
    );
    let before = messages(&out).len();
    let r = Running::start(&cfg, port);
    wait_for(
        "salvaged records delivered",
        Duration::from_secs(10),
        || messages(&out).len() >= before + victim_records as usize,
    );
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    let mut again: Vec<usize> = messages(&out)[before..].to_vec();
    again.sort_unstable();
    // the segment held records first_seq.. (seq = line number: one event per line, from 0)
    let expected: Vec<usize> = (first_seq..first_seq + victim_records as usize).collect();
    assert_eq!(again, expected);
    let o = relay(&["buffer", "salvage", "--config", c]);
    assert!(text(&o).contains("nothing to salvage"), "{}", text(&o));
}

/// A damaged record is reported as a line of its own: the segment, where
/// the damage is and what is wrong, not as a tuple of numbers.
#[test]
fn buffer_verify_reports_a_damaged_record_in_words() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config(port, &file_dest("archive"))).unwrap();
    let c = cfg.to_str().unwrap();
    let out = d.path().join("out/archive.ndjson");
    let r = Running::start(&cfg, port);
    send_lines(port, 0, 50);
    wait_for("all lines", Duration::from_secs(10), || {
        messages(&out).len() >= 50
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    let o = relay(&["buffer", "verify", "--json", "--config", c]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let victim = j["segments"][0]["file"].as_str().unwrap().to_string();

    // a byte of the first record's body (after the 64-byte segment header
    // and the record's 44-byte header): its checksum fails
    let path = d.path().join("data/buffer").join(&victim);
    let mut b = std::fs::read(&path).unwrap();
    b[64 + 44 + 10] ^= 0xFF;
    std::fs::write(&path, &b).unwrap();
    let o = relay(&["buffer", "verify", "--config", c]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let report = text(&o);
    let line = report
        .lines()
        .find(|l| l.contains("DAMAGE"))
        .unwrap_or_else(|| panic!("no damage line: {report}"));
    let want = format!("  DAMAGE {victim} at offset 64: ");
    assert!(line.starts_with(&want), "{report}");
    assert!(
        line.ends_with("bytes unreadable (bad checksum or not a record): 1 record lost"),
        "{report}"
    );
    assert!(!report.contains("[("), "no Rust tuple: {report}");
}

#[test]
fn sigterm_with_a_stalled_destination_exits_within_grace_and_delivers_after_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = Arc::new(AtomicBool::new(false));
    let u2 = up.clone();
    let srv = rt.block_on(serve(move |_, _| {
        if u2.load(Ordering::SeqCst) {
            reply(200, "{}")
        } else {
            delivery_support::Answer::Hang
        }
    }));
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        config(
            port,
            &format!(
                "[destinations.hook]\ntype = \"http\"\nendpoint = \"{}/in\"\nbody = \"ndjson\"\n\
                 batch_size = 20\nbatch_timeout = \"50ms\"\n\
                 retry = {{ initial_backoff = \"50ms\", max_backoff = \"200ms\" }}\n",
                srv.url
            ),
        )
        .replace("shutdown_grace = \"3s\"", "shutdown_grace = \"1s\""),
    )
    .unwrap();
    let r = Running::start(&cfg, port);
    send_lines(port, 0, 50);
    wait_for("a send in flight", Duration::from_secs(10), || {
        !srv.requests().is_empty()
    });
    let t = Instant::now();
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?} with a 1 s grace",
        t.elapsed()
    );
    assert!(srv.accepted_ids().is_empty());
    // the server recovers; the restarted relay delivers what was not acknowledged
    up.store(true, Ordering::SeqCst);
    srv.release_hung();
    let accepted = || -> Vec<usize> {
        let mut v: Vec<usize> = srv
            .requests()
            .iter()
            .filter(|s| s.ok())
            .flat_map(|s| delivery_support::documents(&s.body))
            .filter_map(|doc| doc["message"].as_str()?.get(4..9)?.parse().ok())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let r = Running::start(&cfg, port);
    wait_for("all 50 after restart", Duration::from_secs(10), || {
        accepted().len() >= 50
    });
    let (status, log) = r.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(accepted(), (0..50).collect::<Vec<_>>());
}

/// A negative, NaN or overflowing duration or size is a config error at its
/// key, not a panic: `Duration::from_secs_f64` panicked on them, and
/// `validate`, `run` and a reload of a running relay died with a backtrace.
#[test]
fn negative_and_nan_numbers_are_config_errors_not_panics() {
    const OUT: &str = "\n[destinations.out]\ntype = \"stdout\"\n";
    for (value, words) in [
        ("-3", "not a number of seconds from 0 up"),
        ("nan", "not a number of seconds from 0 up"),
        ("1e30", "is too large"),
        ("\"-3s\"", "invalid duration"),
    ] {
        let out = validate_fails(&format!(
            "[sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\ntokens = []\nrequest_timeout = {value}\n{OUT}"
        ));
        only_error(&out, "sources.web.request_timeout", 5, words);
    }
    let out = validate_fails(&format!("shutdown_grace = -1\n{OUT}"));
    only_error(
        &out,
        "shutdown_grace",
        1,
        "not a number of seconds from 0 up",
    );
    let out = validate_fails(&format!("[buffer]\nsegment_bytes = -1\n{OUT}"));
    only_error(
        &out,
        "buffer.segment_bytes",
        2,
        "not a whole number of bytes",
    );
}

/// A token of `[api]` in error is left out to read on; the list it leaves
/// empty is not reported as empty too (it was, when an unset variable
/// elsewhere sent `validate` down its second pass).
#[test]
fn a_bad_api_token_is_one_error_not_two() {
    let out = validate_fails(
        "[sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\ntokens = [\"${SIEM_RELAY_TEST_UNSET_VAR}\"]\n\
         [destinations.f]\ntype = \"stdout\"\n\
         [api]\naddress = \"127.0.0.1:0\"\n\
         tokens = [{ name = \"ops\", role = \"superuser\", token_sha256 = \"95a5dc0de15f45cf10c5662881adfc71ee884fce40c281ffe30ad6c1de7b849e\" }]\n",
    );
    reported_at(
        &out,
        &[("sources.web.tokens[0]", 4), ("api.tokens[0].role", 9)],
    );
    assert!(!out.contains("at least one token"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// A checkpoint that cannot be written (here a folder stands where its
/// temporary file goes) is logged once, not at every 100 ms tick, while
/// delivery goes on: the log said it ten times a second. (The repeats are
/// summarised once a minute, longer than a test waits.)
#[test]
fn a_failing_checkpoint_write_is_logged_once_while_delivery_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    let dest = "[destinations.archive]\ntype = \"file\"\npath = \"out/archive.ndjson\"\n\
                batch_size = 1\nbatch_timeout = \"1ms\"\n";
    std::fs::write(&cfg, config(port, dest)).unwrap();
    std::fs::create_dir_all(d.path().join("data/buffer/cursors/archive.json.tmp")).unwrap();
    let r = Running::start(&cfg, port);
    let out = d.path().join("out/archive.ndjson");
    // events over two seconds: a checkpoint is due after each batch
    for i in 0..20 {
        send_lines(port, i * 10, i * 10 + 10);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("all lines in the file", Duration::from_secs(10), || {
        messages(&out).len() >= 200
    });
    let log = r.log();
    let failures = log
        .lines()
        .filter(|l| l.contains("writing checkpoint failed"))
        .collect::<Vec<_>>();
    assert_eq!(failures.len(), 1, "{log}");
    assert!(failures[0].contains("Is a directory"), "{}", failures[0]);
}

/// A command line that does not parse exits 64 (EX_USAGE), never 2, which
/// `buffer verify` reserves for a damaged ring (clap's 2 made `buffer
/// verify` without `--config` look like damage to a monitor); `--help` and
/// `--version` are answers and exit 0.
#[test]
fn usage_errors_exit_64_not_the_damaged_ring_code() {
    for args in [
        &["buffer", "verify"][..],
        &["buffer", "verify", "--config", "relay.toml", "--bogus"],
        &["buffer", "salvage"],
        &["buffer"],
        &["validate"],
        &["test-destination", "--config", "relay.toml"],
        &["run", "--config"],
        &["no-such-command"],
        &[],
    ] {
        let o = relay(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", text(&o));
        // said on stderr, as any error
        assert!(
            o.stdout.is_empty() && !o.stderr.is_empty(),
            "{args:?}: {}",
            text(&o)
        );
    }
    for args in [
        &["--help"][..],
        &["buffer", "verify", "--help"],
        &["--version"],
    ] {
        let o = relay(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(!o.stdout.is_empty(), "{args:?}");
    }
}

/// `buffer verify` gives each segment's sequence numbers as its summary
/// gives the oldest and newest, inclusive (`seq 1000–1099`), and as the
/// JSON's `first_seq` and `last_seq`. The segment lines were half-open
/// (`seq 1000..1100`) under a summary whose newest was 1099.
#[test]
fn buffer_verify_gives_segment_sequence_numbers_inclusive() {
    use siem_relay::buffer::{Ring, RingSettings};
    use siem_relay::event::{Event, Severity};
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let (ring, _) = Ring::open(RingSettings {
        dir: data.join("buffer"),
        max_bytes: 512 << 10,
        segment_bytes: 64 << 10,
        max_age: Duration::ZERO,
        fsync: siem_relay::config::FsyncPolicy::Never,
    })
    .unwrap();
    let events: Vec<_> = (0..1000)
        .map(|i| {
            let mut e = Event::new("SYSTEM", Some("test.event".into()), Severity::Info);
            e.message = Some(format!("event {i} {}", "x".repeat(200)));
            e.encode()
        })
        .collect();
    ring.append(&events).unwrap();
    ring.close().unwrap();
    drop(ring);
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n\n[buffer]\nmax_bytes = \"512KiB\"\nsegment_bytes = \"64KiB\"\n\n\
             [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:1\"\nmax_message_bytes = \"8KiB\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let o = relay(&["buffer", "verify", "--json", "--config", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let segs = j["segments"].as_array().unwrap();
    assert!(segs.len() >= 3, "{j}");
    let o = relay(&["buffer", "verify", "--config", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = text(&o);
    assert!(
        report.contains("oldest seq: 0  newest seq: 999"),
        "{report}"
    );
    for s in segs {
        let line = format!(
            "{} id {} seq {}–{} records {}",
            s["file"].as_str().unwrap(),
            s["id"],
            s["first_seq"],
            s["last_seq"],
            s["records"]
        );
        assert!(report.contains(&line), "no `{line}` in:\n{report}");
    }
    assert_eq!(segs.last().unwrap()["last_seq"], 999);
    assert!(!report.contains(".."), "{report}");
}
