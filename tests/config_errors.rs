//! `siem-relay validate` (and `run`) on configs with several errors: each
//! is listed, at its own line, and nothing is listed that the file does
//! not hold (a default not in effect); sizes and durations too large are
//! errors, and a syslog source whose messages cannot fit a ring segment
//! is refused.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const BIN: &str = env!("CARGO_BIN_EXE_siem-relay");

fn relay(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SIEM_RELAY_LOG", "warn")
        .output()
        .expect("siem-relay runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `validate`'s output for a file of `config`, and whether it passed.
fn validate(config: &str) -> (bool, String) {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = relay(&["validate", "--config", cfg.to_str().unwrap()]);
    (o.status.success(), text(&o))
}

fn validate_fails(config: &str) -> String {
    let (ok, out) = validate(config);
    assert!(!ok, "validate accepted:\n{config}\n{out}");
    out
}

/// `out`'s errors as (key path, line), in the order printed.
fn errors(out: &str) -> Vec<(String, usize)> {
    out.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(".toml: ")?;
            let (key, rest) = rest.split_once(" (line ")?;
            let line = rest.split(')').next()?.parse().ok()?;
            Some((key.to_string(), line))
        })
        .collect()
}

fn at(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|(k, l)| (k.to_string(), *l)).collect()
}

/// A bad `endpoint` of an HTTP destination is listed with the section's
/// other bad keys: it was left out to check the rest, and its `required`
/// then ended the checks (only the endpoint was reported; the other keys
/// once it was fixed). So for every type with an endpoint, and for a
/// missing CA file and Datadog's `site` and `api_key`.
#[test]
fn a_bad_endpoint_does_not_hide_the_other_bad_keys_of_its_section() {
    let required = [
        ("http", ""),
        ("sumo_logic", ""),
        ("elasticsearch", ""),
        ("splunk_hec", "token = \"t\"\n"),
        (
            "sentinel",
            "dcr_immutable_id = \"d\"\nstream = \"s\"\ntenant_id = \"t\"\n\
             client_id = \"c\"\nclient_secret = \"x\"\nscope = \"sc\"\n",
        ),
        ("datadog", "api_key = \"k\"\n"),
    ];
    for (kind, keys) in required {
        let out = validate_fails(&format!(
            "data_dir = \"data\"\n[destinations.h]\ntype = \"{kind}\"\nendpoint = \"ftp://x\"\n\
             batch_size = \"ten\"\nbatch_sise = 3\nbogus = 1\nca = \"missing-ca.pem\"\n{keys}"
        ));
        assert_eq!(
            errors(&out),
            at(&[
                ("destinations.h.endpoint", 4),
                ("destinations.h.batch_size", 5),
                ("destinations.h.batch_sise", 6),
                ("destinations.h.bogus", 7),
                ("destinations.h.ca", 8),
            ]),
            "{kind}:\n{out}"
        );
        assert!(out.contains("must start with http:// or https://"), "{out}");
        assert!(!out.contains("required"), "{out}");
    }
    // Datadog's site, and an empty api_key, with an unknown key
    let out = validate_fails(
        "[destinations.dd]\ntype = \"datadog\"\napi_key = \"\"\nsite = \"a/b\"\nbogus = 1\n",
    );
    assert_eq!(
        errors(&out),
        at(&[
            ("destinations.dd.api_key", 3),
            ("destinations.dd.site", 4),
            ("destinations.dd.bogus", 5),
        ]),
        "{out}"
    );
    // a missing endpoint is still reported, after the rest
    let out = validate_fails("[destinations.h]\ntype = \"http\"\nbogus = 1\n");
    assert_eq!(
        errors(&out),
        at(&[("destinations.h.endpoint", 1), ("destinations.h.bogus", 3)]),
        "{out}"
    );
}

/// Each `[api]` token is checked on its own: an unknown key in one hid
/// the other tokens' errors (the whole list was left out), and errors
/// in elements were reported at the array's first line.
#[test]
fn every_api_tokens_errors_are_listed_at_their_own_lines() {
    let out = validate_fails(
        "[api]\naddress = \"127.0.0.1:21060\"\ntokens = [\n\
         \x20 { name = \"ops\", role = \"admin\", token_sha256 = \"abc\" },\n\
         \x20 { name = \"v\", role = \"viewer\", token_sha256 = \"zz\" },\n\
         \x20 { name = \"x\", role = \"admin\", token_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\", extra = 1 },\n\
         ]\n[destinations.f]\ntype = \"stdout\"\n",
    );
    assert_eq!(
        errors(&out),
        at(&[
            ("api.tokens[0].token_sha256", 4),
            ("api.tokens[1].token_sha256", 5),
            ("api.tokens[2].extra", 6),
        ]),
        "{out}"
    );
    assert!(!out.contains("at least one token"), "{out}");
    // a bad role and a bad hash in one token, an unknown key in another;
    // the good one is no error
    let out = validate_fails(
        "[destinations.f]\ntype = \"stdout\"\n[api]\naddress = \"127.0.0.1:21061\"\n\
         [[api.tokens]]\nname = \"a\"\nrole = \"boss\"\ntoken_sha256 = \"00\"\n\
         [[api.tokens]]\nname = \"b\"\nrole = \"viewer\"\ntoken_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n\
         [[api.tokens]]\nname = \"c\"\nrole = \"viewer\"\ntoken_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\nextra = 2\n",
    );
    assert_eq!(
        errors(&out),
        at(&[("api.tokens[0].role", 7), ("api.tokens[2].extra", 17)]),
        "{out}"
    );
}

/// A size past 2^64 - 1 bytes was capped at u64::MAX and passed (then
/// `run` allocated for that ring until it was killed); a duration past
/// 100 years was taken and overflowed where it was used.
#[test]
fn sizes_and_durations_too_large_are_errors_at_their_keys() {
    let out = validate_fails(
        "shutdown_grace = \"99999999999d\"\n[buffer]\nmax_bytes = \"99999999999GiB\"\n\
         max_age = 9223372036854775807\n\
         [sources.t]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\nqueue_bytes = \"99999999999999999999\"\n\
         [destinations.f]\ntype = \"stdout\"\n",
    );
    assert_eq!(
        errors(&out),
        at(&[
            ("shutdown_grace", 1),
            ("buffer.max_bytes", 3),
            ("buffer.max_age", 4),
            ("sources.t.queue_bytes", 8),
        ]),
        "{out}"
    );
    assert_eq!(out.matches("too large").count(), 4, "{out}");
    // `run` refuses it the same way, before allocating anything
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        "[buffer]\nmax_bytes = \"99999999999GiB\"\n[destinations.f]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let o = relay(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("buffer.max_bytes (line 2)"),
        "{}",
        text(&o)
    );
}

/// A `max_body_bytes` above a `queue_bytes` the section sets is
/// `queue_bytes`' fault alone: the error that blames queue_bytes' default
/// (not in effect) was printed first.
#[test]
fn a_body_limit_over_a_set_queue_blames_no_default() {
    let out = validate_fails(
        "[sources.h]\ntype=\"http\"\naddress=\"127.0.0.1:21031\"\nmax_body_bytes=\"64MiB\"\n\
         queue_bytes=\"1MiB\"\nmax_connections = 0\n[destinations.f]\ntype = \"stdout\"\n",
    );
    assert_eq!(
        errors(&out),
        at(&[
            ("sources.h.queue_bytes", 5),
            ("sources.h.max_connections", 6)
        ]),
        "{out}"
    );
    assert!(
        out.contains("must be at least max_body_bytes (64MiB)"),
        "{out}"
    );
    assert!(!out.contains("its default"), "{out}");
    // and the other way round: a bad max_body_bytes, a queue set
    let out = validate_fails(
        "[sources.h]\ntype=\"http\"\naddress=\"127.0.0.1:21031\"\nmax_body_bytes=\"lots\"\n\
         queue_bytes=\"1MiB\"\n[destinations.f]\ntype = \"stdout\"\n",
    );
    assert_eq!(
        errors(&out),
        at(&[("sources.h.max_body_bytes", 4)]),
        "{out}"
    );
}

/// With the smallest segments, a syslog_tcp source's default
/// `max_message_bytes` lets in messages whose records no segment holds
/// (each dropped as `too_large`): refused, with the largest value that
/// fits and the segment size needed; that value passes. A `syslog_udp`
/// source (datagrams up to 64 KiB) is refused too.
#[test]
fn a_syslog_source_whose_messages_cannot_fit_a_segment_is_refused() {
    let config = |source: &str| {
        format!(
            "[buffer]\nmax_bytes = \"1MiB\"\nsegment_bytes = \"64KiB\"\n\
             [sources.s]\n{source}\n[destinations.f]\ntype = \"stdout\"\n"
        )
    };
    let tcp = "type = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\noversize = \"truncate\"";
    let out = validate_fails(&config(tcp));
    assert_eq!(
        errors(&out),
        at(&[("sources.s.max_message_bytes", 4)]),
        "{out}"
    );
    assert!(
        out.contains("max_message_bytes (64KiB, its default)")
            && out.contains("buffer.segment_bytes (64KiB)"),
        "{out}"
    );
    let fits: u64 = out
        .split("lower max_message_bytes to at most ")
        .nth(1)
        .and_then(|r| r.split(" or raise").next())
        .and_then(|n| siem_relay::config::parse_size(n).ok())
        .unwrap_or_else(|| panic!("no largest value in {out}"));
    assert!(
        out.contains("raise buffer.segment_bytes to at least "),
        "{out}"
    );
    let (ok, out) = validate(&config(&format!("{tcp}\nmax_message_bytes = {fits}")));
    assert!(ok, "{out}");
    let out = validate_fails(&config(&format!("{tcp}\nmax_message_bytes = {}", fits + 1)));
    assert_eq!(
        errors(&out),
        at(&[("sources.s.max_message_bytes", 8)]),
        "{out}"
    );
    // TLS as TCP (its files are checked as well)
    let out = validate_fails(&config(
        "type = \"syslog_tls\"\naddress = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"k.pem\"",
    ));
    assert!(
        out.contains("sources.s.max_message_bytes (line 4)"),
        "{out}"
    );
    // UDP: a datagram of 64 KiB
    let out = validate_fails(&config("type = \"syslog_udp\"\naddress = \"127.0.0.1:0\""));
    assert_eq!(errors(&out), at(&[("sources.s", 4)]), "{out}");
    assert!(out.contains("a datagram of up to 64KiB"), "{out}");
    assert!(
        out.contains("raise buffer.segment_bytes to at least "),
        "{out}"
    );
    // with 1 MiB segments both pass
    let (ok, out) = validate(
        &config(tcp)
            .replace("\"64KiB\"", "\"1MiB\"")
            .replace("\"1MiB\"\nsegment", "\"4MiB\"\nsegment"),
    );
    assert!(ok, "{out}");
}

/// A running `siem-relay run`, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A SIGHUP reload holds the sources against the running ring's
/// segments, which a `segment_bytes` change leaves in force until a
/// restart: a file whose own larger segments let the default
/// `max_message_bytes` in is refused while 64 KiB segments run (it was
/// applied, and messages past 9 KiB were dropped as `too_large`).
#[test]
fn a_reload_holds_syslog_messages_against_the_running_segments() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    let config = |segment: &str, source: &str| {
        format!(
            "data_dir = \"data\"\n[buffer]\nmax_bytes = \"4MiB\"\nsegment_bytes = \"{segment}\"\n\
             [sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\n{source}\n\
             [destinations.f]\ntype = \"file\"\npath = \"out.ndjson\"\n"
        )
    };
    std::fs::write(&cfg, config("64KiB", "max_message_bytes = \"8KiB\"")).unwrap();
    let log = d.path().join("relay.log");
    let relay = Running(
        Command::new(BIN)
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("SIEM_RELAY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "not listening:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // valid on its own (1 MiB segments), not with the running 64 KiB ones
    std::fs::write(&cfg, config("1MiB", "")).unwrap();
    let (ok, out) = validate(&std::fs::read_to_string(&cfg).unwrap());
    assert!(ok, "{out}");
    let hup = Command::new("kill")
        .args(["-HUP", &relay.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read_log().contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = read_log();
    assert!(
        text.contains("sources.tcp.max_message_bytes")
            && text.contains("buffer.segment_bytes (64KiB)"),
        "{text}"
    );
    assert!(!text.contains("reload: stopping"), "{text}");
}

/// `relay` with `args`, its address space limited to `limit_kib` (as
/// `ulimit -v`): a relay that tries to allocate past it fails at once
/// instead of taking the machine's memory.
fn limited_relay(limit_kib: u64, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {limit_kib} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .env("SIEM_RELAY_LOG", "info");
    c
}

/// A `max_bytes` that fits 64 bits but allows absurdly many segments
/// (16000000TiB of 64 MiB segments: 2.6e11) passed `validate`, and `run`
/// ran out of memory listing a slot for each. It is an error at its key
/// that names the largest `max_bytes` the segment size allows (2^29
/// segments), and that value passes.
#[test]
fn a_max_bytes_of_too_many_segments_is_an_error_naming_the_largest_allowed() {
    let out = validate_fails(
        "[buffer]\nmax_bytes = \"16000000TiB\"\n[destinations.f]\ntype = \"stdout\"\n",
    );
    assert_eq!(errors(&out), at(&[("buffer.max_bytes", 2)]), "{out}");
    assert!(
        out.contains("must hold at most 536870912 segments: at most 32768TiB with buffer.segment_bytes = 64MiB (is 16000000TiB)"),
        "{out}"
    );
    let small = |max: &str| {
        format!(
            "[buffer]\nmax_bytes = \"{max}\"\nsegment_bytes = \"64KiB\"\n\
             [destinations.f]\ntype = \"stdout\"\n"
        )
    };
    let out = validate_fails(&small("33TiB"));
    assert!(
        out.contains("at most 32TiB with buffer.segment_bytes = 64KiB"),
        "{out}"
    );
    let (ok, out) = validate(&small("32TiB"));
    assert!(ok, "{out}");
    // `run` refuses it the same way (and, limited to 1 GiB, did not get
    // that far: it failed to allocate the slots)
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        "[buffer]\nmax_bytes = \"16000000TiB\"\n[destinations.f]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let o = limited_relay(1 << 20, &["run", "--config", cfg.to_str().unwrap()])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("buffer.max_bytes (line 2)") && text(&o).contains("at most 32768TiB"),
        "{}",
        text(&o)
    );
}

/// The largest ring allowed with the smallest segments (2^29 slots of
/// 64 KiB) starts, runs and stops in a 1 GiB address space: recovery's
/// memory follows the segment files on disk, not the slots `max_bytes`
/// allows (it listed every slot number: 4 GiB).
#[test]
fn a_ring_of_the_most_segments_starts_in_little_memory() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = d.path().join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"data\"\n[buffer]\nmax_bytes = \"32TiB\"\nsegment_bytes = \"64KiB\"\n\
             [sources.h]\ntype = \"http\"\naddress = \"127.0.0.1:{port}\"\n\
             [destinations.f]\ntype = \"file\"\npath = \"out.ndjson\"\n"
        ),
    )
    .unwrap();
    let log = d.path().join("relay.log");
    let mut relay = Running(
        limited_relay(1 << 20, &["run", "--config", cfg.to_str().unwrap()])
            .current_dir(d.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            relay.0.try_wait().unwrap().is_none(),
            "the relay ended:\n{}",
            read_log()
        );
        assert!(Instant::now() < deadline, "not listening:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(relay.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = relay.0.wait().unwrap();
    assert!(status.success(), "{status}:\n{}", read_log());
}

/// Two destinations whose names differ only in characters a checkpoint
/// file name cannot hold (`siem.prod`, `siem_prod`) would share one
/// checkpoint file (`buffer/cursors/siem_prod.json`): each took the
/// other's position and skipped its events. `validate` and `run` refuse
/// them, naming both destinations and the file, at the later one in the
/// file (it was the later one by name: `siem prod` came first).
#[test]
fn destinations_of_one_checkpoint_file_are_refused() {
    let config = "data_dir = \"data\"\n\
                  [sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\n\
                  [destinations.\"siem.prod\"]\ntype = \"file\"\npath = \"out/prod.ndjson\"\n\
                  [destinations.siem_prod]\ntype = \"file\"\npath = \"out/prod2.ndjson\"\n\
                  [destinations.\"siem prod\"]\ntype = \"blackhole\"\n";
    let out = validate_fails(config);
    // an error at each later one in the file, naming the first
    for (later, at_line) in [
        ("siem_prod", "destinations.siem_prod (line 8)"),
        ("siem prod", "destinations.\"siem prod\" (line 11)"),
    ] {
        assert!(
            out.contains(&format!(
                "{at_line}: destinations `siem.prod` and `{later}` would share the checkpoint file"
            )),
            "{later}:\n{out}"
        );
    }
    assert!(!out.contains("destinations.\"siem.prod\""), "{out}");
    assert_eq!(
        out.matches("data/buffer/cursors/siem_prod.json").count(),
        2,
        "{out}"
    );
    // names that make distinct files pass
    let (ok, out) = validate(
        &config
            .replace("siem_prod", "siem_prod2")
            .replace("siem prod", "siem-prod"),
    );
    assert!(ok, "{out}");
    // `run` refuses it before it starts anything
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("relay.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("SIEM_RELAY_LOG", "warn")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .contains("destinations `siem.prod` and `siem_prod` would share the checkpoint file"),
        "{}",
        text(&o)
    );
}

/// An unknown key of a destination lists the keys it takes: its format's
/// and those every destination takes (`batch_size`, `filter`, …), which
/// the list left out.
#[test]
fn an_unknown_destination_key_lists_the_keys_every_destination_takes() {
    let out = validate_fails(
        "[destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\nbatch_sise = 5\n\
         [destinations.b]\ntype = \"blackhole\"\nfiltr = {}\n",
    );
    let common = "`enabled`, `batch_size`, `batch_bytes`, `batch_timeout`, `send_when_quiet`, \
                  `concurrency`, `when_full`, `filter`, `redact`, `retry`, `dead_letter`";
    assert!(
        out.contains(&format!(
            "destinations.f.batch_sise (line 4): unknown field `batch_sise`, expected one of \
             `path`, `rotate_bytes`, `keep_files`, `fsync`, {common}; did you mean `batch_size`?"
        )),
        "{out}"
    );
    // a format with no keys of its own
    assert!(
        out.contains(&format!(
            "destinations.b.filtr (line 7): unknown field `filtr`, expected one of {common}; \
             did you mean `filter`?"
        )),
        "{out}"
    );
}

/// A setting that must be a table, given as something else, says so in
/// the file's terms (it named a Rust type: `expected struct FilterSettings`).
#[test]
fn a_setting_that_must_be_a_table_says_so_without_a_rust_type() {
    let out = validate_fails(
        "[destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\nfilter = \"SECURITY\"\n\
         redact = \"actor.email\"\nretry = 3\n",
    );
    for expected in [
        "destinations.f.filter (line 4): invalid type: string \"SECURITY\", expected a table such as `filter = { categories = [\"SECURITY\"] }`",
        "destinations.f.redact (line 5): invalid type: string \"actor.email\", expected a table such as `redact = { drop_fields = [\"actor.email\"] }`",
        "destinations.f.retry (line 6): invalid type: integer `3`, expected a table such as `retry = { max_attempts = 5, max_backoff = \"1m\" }`",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    assert!(!out.contains("struct"), "{out}");
    let out = validate_fails(
        "buffer = 5\n[api]\naddress = \"127.0.0.1:0\"\ntokens = [\"secret\"]\n\
         [destinations.f]\ntype = \"stdout\"\n",
    );
    assert!(
        out.contains(
            "buffer (line 1): invalid type: integer `5`, expected a table (a `[buffer]` section)"
        ),
        "{out}"
    );
    // (an `[api]` token's own message says what it must be)
    assert!(
        out.contains("api.tokens[0] (line 4): must be a table"),
        "{out}"
    );
    assert!(!out.contains("struct"), "{out}");
}

/// An unknown key of an HTTP destination lists the keys every HTTP
/// destination shares (`endpoint`, `ca`, `timeout`, `compression`,
/// `compression_level`, `headers`) and suggests them: they were missing
/// from the list, so `endpont` got no "did you mean `endpoint`?".
#[test]
fn an_unknown_http_destination_key_lists_and_suggests_the_shared_http_keys() {
    let out = validate_fails(
        "[destinations.s]\ntype = \"splunk_hec\"\nendpoint = \"http://127.0.0.1:21010\"\n\
         token = \"x\"\ncompresion = \"gzip\"\n\
         [destinations.h]\ntype = \"http\"\nendpont = \"http://127.0.0.1:21010/\"\n",
    );
    let http = "`endpoint`, `ca`, `timeout`, `compression`, `compression_level`, `headers`";
    let common = "`enabled`, `batch_size`, `batch_bytes`, `batch_timeout`, `send_when_quiet`, \
                  `concurrency`, `when_full`, `filter`, `redact`, `retry`, `dead_letter`";
    assert!(
        out.contains(&format!(
            "destinations.h.endpont (line 8): unknown field `endpont`, expected one of \
             `method`, `body`, `content_type`, `bearer_token`, `basic`, {http}, {common}; \
             did you mean `endpoint`?"
        )),
        "{out}"
    );
    assert!(
        out.contains("destinations.s.compresion (line 5): unknown field `compresion`")
            && out.contains(&format!("{http}, {common}; did you mean `compression`?")),
        "{out}"
    );
    // the key it meant is not also "required": the mistyped key is it
    assert_eq!(
        errors(&out),
        at(&[
            ("destinations.s.compresion", 5),
            ("destinations.h.endpont", 8)
        ]),
        "{out}"
    );
    // every HTTP type, each shared key
    let required = [
        ("http", "endpoint = \"http://127.0.0.1:1\"\n"),
        ("sumo_logic", "endpoint = \"http://127.0.0.1:1\"\n"),
        ("elasticsearch", "endpoint = \"http://127.0.0.1:1\"\n"),
        (
            "splunk_hec",
            "endpoint = \"http://127.0.0.1:1\"\ntoken = \"t\"\n",
        ),
        (
            "sentinel",
            "endpoint = \"http://127.0.0.1:1\"\ndcr_immutable_id = \"d\"\nstream = \"s\"\n\
             tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\nscope = \"sc\"\n",
        ),
        ("datadog", "api_key = \"k\"\n"),
    ];
    for (kind, keys) in required {
        for (typo, meant) in [
            ("timout = \"5s\"", "timeout"),
            ("header = {}", "headers"),
            ("compresion = \"gzip\"", "compression"),
            ("compression_levl = 3", "compression_level"),
            ("cas = \"ca.pem\"", "ca"),
        ] {
            let out = validate_fails(&format!(
                "[destinations.d]\ntype = \"{kind}\"\n{keys}{typo}\n"
            ));
            let lines: Vec<&str> = out.lines().filter(|l| l.contains(".toml: ")).collect();
            assert_eq!(lines.len(), 1, "{kind} {typo}:\n{out}");
            assert!(
                lines[0].contains(&format!("{http}, {common}; did you mean `{meant}`?")),
                "{kind} {typo}:\n{out}"
            );
        }
    }
    // a required key of another format, mistyped: its `missing field` is
    // not listed either, and the rest of the section is still checked
    let out = validate_fails(
        "[destinations.f]\ntype = \"file\"\npth = \"x.ndjson\"\nbatch_size = 5\nbogus = 1\n",
    );
    assert_eq!(
        errors(&out),
        at(&[("destinations.f.pth", 3), ("destinations.f.bogus", 5)]),
        "{out}"
    );
    assert!(out.contains("did you mean `path`?"), "{out}");
}

/// A destination named with a dot (`[destinations."a.b"]`) is one key: its
/// errors name it quoted, as TOML does, at their lines and in the file's
/// order (they were `destinations.a.b.bogus`, without a line, after all
/// the others).
#[test]
fn a_quoted_destination_name_keeps_its_errors_lines_and_order() {
    let out = validate_fails(
        "data_dir = \"data\"\n[destinations.x]\ntype = \"elasticsearh\"\n\
         [destinations.\"a.b\"]\ntype = \"file\"\npath = \"o.ndjson\"\nbogus = 1\n\
         [destinations.z]\ntype = \"Splunk_HEC\"\n\
         [destinations.\"c d\"]\ntype = \"file\"\npath = \"p.ndjson\"\nbatch_size = \"x\"\n\
         [sources.\"in.tcp\"]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\nbogus = 2\n",
    );
    assert_eq!(
        errors(&out),
        at(&[
            ("destinations.x.type", 3),
            ("destinations.\"a.b\".bogus", 7),
            ("destinations.z.type", 9),
            ("destinations.\"c d\".batch_size", 13),
            ("sources.\"in.tcp\".bogus", 17),
        ]),
        "{out}"
    );
    assert!(
        out.contains("destinations.\"a.b\".bogus (line 7): unknown field `bogus`"),
        "{out}"
    );
}

/// A mistyped `type` in another letter case, or one that is a word or the
/// start of a known type's name (`splunk`, `elastic`, `sumo`), gets that
/// type suggested: only types within two edits did.
#[test]
fn a_type_in_another_case_or_a_word_of_it_gets_it_suggested() {
    let mut config = String::new();
    let dests = [
        ("Splunk_HEC", "splunk_hec"),
        ("splunk", "splunk_hec"),
        ("SPLUNK", "splunk_hec"),
        ("elastic", "elasticsearch"),
        ("sumo", "sumo_logic"),
        ("File", "file"),
    ];
    for (i, (kind, _)) in dests.iter().enumerate() {
        config.push_str(&format!("[destinations.d{i}]\ntype = \"{kind}\"\n"));
    }
    let srcs = [
        ("SYSLOG_TCP", "syslog_tcp"),
        ("Http", "http"),
        ("UDP", "syslog_udp"),
    ];
    for (i, (kind, _)) in srcs.iter().enumerate() {
        config.push_str(&format!(
            "[sources.s{i}]\ntype = \"{kind}\"\naddress = \"127.0.0.1:0\"\n"
        ));
    }
    let out = validate_fails(&config);
    for (i, (kind, meant)) in dests.iter().enumerate() {
        assert!(
            out.contains(&format!(
                "destinations.d{i}.type (line {}): unknown destination type `{kind}`",
                2 * i + 2
            )) && out
                .lines()
                .any(|l| l.contains(&format!("destinations.d{i}.type"))
                    && l.ends_with(&format!("; did you mean `{meant}`?"))),
            "{kind}:\n{out}"
        );
    }
    for (i, (kind, meant)) in srcs.iter().enumerate() {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("sources.s{i}.type"))
                    && l.contains(&format!("unknown source type `{kind}`"))
                    && l.ends_with(&format!("; did you mean `{meant}`?"))),
            "{kind}:\n{out}"
        );
    }
}

/// A number setting given something else says what it takes in words
/// (it named the Rust type: `expected usize`), for every such key.
#[test]
fn a_number_setting_says_so_without_a_rust_type() {
    let out = validate_fails(
        "[sources.t]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:0\"\nmax_connections = \"many\"\n\
         [destinations.f]\ntype = \"file\"\npath = \"x.ndjson\"\nbatch_size = \"lots\"\n\
         concurrency = -1\nretry = { max_attempts = 1.5 }\n\
         [destinations.h]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1\"\n\
         compression_level = \"max\"\n",
    );
    for expected in [
        "sources.t.max_connections (line 4): invalid type: string \"many\", expected a whole number, 0 or more",
        "destinations.f.batch_size (line 8): invalid type: string \"lots\", expected a whole number, 0 or more",
        "destinations.f.concurrency (line 9): invalid value: integer `-1`, expected a whole number, 0 or more",
        "destinations.f.retry.max_attempts (line 10): invalid type: floating point `1.5`, expected a whole number from 0 to 4294967295",
        "destinations.h.compression_level (line 14): invalid type: string \"max\", expected a whole number from 0 to 4294967295",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    for rust in ["usize", "u32", "u64"] {
        assert!(!out.contains(rust), "{rust}:\n{out}");
    }
}
