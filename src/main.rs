//! The `siem-relay` command: parses the command line, sets up logging, and
//! hands over to the library. The only place errors become `anyhow`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use siem_relay::app;
use siem_relay::buffer;
use siem_relay::config::Config;
use siem_relay::destinations::{registry, Batch, BatchEvent, CommonSettings};
use siem_relay::event::{Event, Severity};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Opt-in (`--features mimalloc`): measured without a clear CPU gain and with
/// several times the resident memory (benches/HISTORY.md), so glibc's is the default.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "siem-relay",
    version,
    about = "Receive syslog and JSON events, keep them in a memory-mapped ring on disk, deliver them to several SIEMs at once."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file; prints every error with its key path and line.
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Send one synthetic `relay.test` event to a destination and print the outcome.
    TestDestination {
        /// The destination's name (`[destinations.NAME]`).
        name: String,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Inspect or repair the ring buffer (run these while the relay is stopped).
    Buffer {
        #[command(subcommand)]
        action: BufferAction,
    },
}

#[derive(Subcommand)]
enum BufferAction {
    /// Report segments, records, oldest/newest sequence numbers and damage, changing nothing.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-append the valid records of quarantined segments to the ring.
    Salvage {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// The exit code of a command line that does not parse (EX_USAGE of
/// sysexits.h): clap's own, 2, is `buffer verify`'s "damaged".
const USAGE_ERROR: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are answers, on stdout, not errors
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(USAGE_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The log level when `SIEM_RELAY_LOG` is not set. rustls warns once per
/// connection of a client's oddities (an IP address sent as SNI, which the
/// handshake then ignores) with no rate limit: a scanner would flood the
/// log. The `syslog_tls` source logs failed handshakes itself, rate-limited.
const DEFAULT_LOG: &str = "info,rustls=error";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIEM_RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

/// The ingest runtime: sources, parse tasks, the admin API.
///
/// A connection hands each large read to a parse task of its own
/// (`sources::parse_ahead`). With tokio's LIFO slot a task spawned by a
/// worker goes to that worker's slot, which the other worker cannot steal,
/// so one busy connection's parsing stayed on the core that reads it more
/// than it should. Without the slot, spawned parse tasks are stealable:
/// tcp_syslog +1 to +4% events/s in 5 of 5 alternating A/B pairs
/// (`benches/HISTORY.md`).
/// The setting needs `--cfg tokio_unstable` (`.cargo/config.toml`); a build
/// without it keeps the slot.
fn runtime() -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("siem-relay");
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build().context("starting the async runtime")
}

fn load(path: &Path) -> Result<Config> {
    app::load_config(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run { config } => {
            let config = load(&config)?;
            runtime()?.block_on(app::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { config } => validate(&config),
        Command::TestDestination { name, config } => test_destination(&name, &config),
        Command::Buffer {
            action: BufferAction::Verify { config, json },
        } => verify(&config, json),
        Command::Buffer {
            action: BufferAction::Salvage { config },
        } => {
            let config = load(&config)?;
            let (ring, report, done) =
                buffer::open_and_salvage(app::ring_settings(&config), &configured(&config))?;
            println!(
                "ring: {} records, {} quarantined on open",
                report.records(),
                report.quarantined.len()
            );
            for s in &done {
                println!("salvaged {} records from {}", s.records, s.file.display());
            }
            if done.is_empty() {
                println!("nothing to salvage");
            }
            ring.close()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The config file's destinations, as `buffer salvage` tells of them.
fn configured(config: &Config) -> Vec<buffer::ConfiguredDestination> {
    config
        .destinations
        .iter()
        .map(|d| buffer::ConfiguredDestination {
            name: d.name.clone(),
            // (the config is validated: a bad `enabled` did not get here)
            enabled: CommonSettings::peel_from(&mut d.table.clone(), &d.path())
                .map_or(true, |c| c.enabled),
        })
        .collect()
}

fn validate(path: &Path) -> Result<ExitCode> {
    match app::load_config(path) {
        Ok(config) => {
            println!(
                "{}: OK ({} sources, {} destinations)",
                path.display(),
                config.sources.len(),
                config.destinations.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(app::AppError::Config(errors)) => {
            for e in &errors.0 {
                eprintln!("{}: {e}", path.display());
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn test_destination(name: &str, path: &Path) -> Result<ExitCode> {
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some(section) = config.destinations.iter().find(|d| d.name == name) else {
        let known: Vec<_> = config
            .destinations
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        bail!(
            "no destination `{name}` in {} (known: {})",
            path.display(),
            known.join(", ")
        );
    };
    let dest = registry::build(section, &config.base_dir, &config.data_path())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ev = Event::new("SYSTEM", Some("relay.test".into()), Severity::Info);
    ev.message = Some(format!("siem-relay test event for destination `{name}`"));
    ev.source = Some(siem_relay::event::SourceInfo {
        listener: "test-destination".into(),
        address: None,
    });
    let enc = ev.encode();
    let meta = enc.meta;
    let mut body = enc.into_body();
    if let Some(r) = &dest.redactor {
        body = r
            .apply(&body)
            .map_err(|e| anyhow::anyhow!("redaction: {e}"))?;
    }
    let probe = Batch::new(vec![BatchEvent::new(0, meta, body.into())]);
    let outcome = runtime()?.block_on(async {
        let o = dest.sink.test(&probe).await;
        dest.sink.close().await;
        o
    });
    if outcome.ok {
        println!("{name}: {}", outcome.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{name}: FAILED: {}", outcome.message);
        Ok(ExitCode::FAILURE)
    }
}

fn verify(path: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let dir = app::buffer_dir(&config);
    if !dir.exists() {
        emit(&format!("{}: no ring yet\n", dir.display()));
        return Ok(ExitCode::SUCCESS);
    }
    let report = buffer::inspect(&dir)?;
    // written at once, so that `verify | head` ends quietly (see `emit`)
    let mut out = String::new();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "ring {}", dir.display())?;
        writeln!(
            out,
            "  segments: {}  records: {}  oldest seq: {}  newest seq: {}",
            report.segments.len(),
            report.records(),
            report
                .oldest_seq()
                .map(|s| s.to_string())
                .unwrap_or("-".into()),
            report
                .newest_seq()
                .map(|s| s.to_string())
                .unwrap_or("-".into())
        )?;
        for s in &report.segments {
            let when = |ms: Option<i64>| {
                ms.map(siem_relay::event::format_rfc3339_millis)
                    .unwrap_or("-".into())
            };
            writeln!(
                out,
                "  {} id {} seq {} records {} bytes {} oldest {} newest {}{}",
                s.file,
                s.id,
                // inclusive, as the summary's oldest and newest seq
                s.last_seq
                    .map(|l| format!("{}–{l}", s.first_seq))
                    .unwrap_or("-".into()),
                s.records,
                s.bytes_used,
                when(s.oldest_ms),
                when(s.newest_ms),
                if s.torn_tail_bytes > 0 {
                    format!(" TORN TAIL {} bytes", s.torn_tail_bytes)
                } else {
                    String::new()
                }
            )?;
            for (&(offset, bytes, _), lost) in s.damage.iter().zip(report.lost_in(s)) {
                // numbers skipped whose records `buffer salvage` brought back are no damage
                if bytes > 0 || lost > 0 {
                    writeln!(out, "  {}", damage_line(&s.file, offset, bytes, lost))?;
                }
            }
        }
        for q in &report.quarantined {
            writeln!(
                out,
                "  UNREADABLE {}: {} ({} valid records inside)",
                q.file, q.reason, q.salvageable_records
            )?;
        }
        if report.lost_between_segments > 0 {
            writeln!(
                out,
                "  {} records missing between segments",
                report.lost_between_segments
            )?;
        }
        let pending = buffer::recovery::quarantined_files(&dir);
        if !pending.is_empty() {
            writeln!(
                out,
                "  {} quarantined file(s) awaiting `siem-relay buffer salvage`",
                pending.len()
            )?;
        }
        writeln!(
            out,
            "  state: {}",
            if report.is_clean() {
                "clean"
            } else if report.has_new_damage() {
                "DAMAGED (the relay repairs this on start)"
            } else {
                "damage already reported by the relay at an earlier start (its records are lost; nothing new)"
            }
        )?;
    }
    emit(&out);
    // damage the relay already reported is no news to a monitor
    Ok(if report.has_new_damage() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// One damaged region of a segment, as `buffer verify` reports it: where it
/// is and what is wrong (unreadable bytes, or a gap in the sequence numbers
/// between two valid records).
fn damage_line(file: &str, offset: usize, bytes: usize, lost: u64) -> String {
    let records = if lost == 1 { "record" } else { "records" };
    let what = if bytes == 0 {
        format!("sequence numbers jump: {lost} {records} missing")
    } else {
        format!("{bytes} bytes unreadable (bad checksum or not a record): {lost} {records} lost")
    };
    format!("DAMAGE {file} at offset {offset}: {what}")
}

/// Writes a command's report to stdout: a reader that went away (`| head`)
/// ends it quietly instead of a panic (`println!` panics on a closed pipe).
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("error: writing the report: {e}"),
        Ok(()) => {}
    }
}

/// An error and its causes, each said once: the library's messages often
/// carry their cause's text already (`cannot bind X: Address already in
/// use`), which `{:#}` would repeat.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}
