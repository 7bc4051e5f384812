//! From a `[destinations.NAME]` section to a running [`Destination`]: the
//! table of wire formats by `type`, the common settings, filter, redaction
//! and dead-letter file.

use super::dead_letter::DeadLetter;
use super::filter::Filter;
use super::http_transport::HTTP_KEYS;
use super::redact::Redactor;
use super::settings::{CommonSettings, COMMON_KEYS};
use super::sink::Sink;
use super::worker::Destination;
use super::{
    blackhole, datadog, elasticsearch, file, http, sentinel, splunk_hec, stdout, sumo_logic,
    syslog, BuildContext,
};
use crate::config::{closest, closest_type, did_you_mean, ConfigError, SectionConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Builder = fn(toml::Table, &BuildContext) -> Result<Arc<dyn Sink>, ConfigError>;

/// The keys a format takes that its own settings do not list: those it
/// peels off its table before it reads the rest (the HTTP formats' shared
/// keys), for the list of an unknown key's error.
type SharedKeys = &'static [&'static str];

const HTTP: SharedKeys = &HTTP_KEYS;

/// The wire formats, by `type`, and the shared keys each takes.
const KINDS: &[(&str, Builder, SharedKeys)] = &[
    ("file", file::build, &[]),
    ("stdout", stdout::build, &[]),
    ("blackhole", blackhole::build, &[]),
    ("splunk_hec", splunk_hec::build, HTTP),
    ("elasticsearch", elasticsearch::build, HTTP),
    ("datadog", datadog::build, HTTP),
    ("sentinel", sentinel::build, HTTP),
    ("sumo_logic", sumo_logic::build, HTTP),
    ("http", http::build, HTTP),
    ("syslog", syslog::build, &[]),
];

/// Stream-like outputs whose lines should keep ring order: one batch in
/// flight unless `concurrency` is set.
const ORDERED: [&str; 3] = ["file", "stdout", "syslog"];

/// Outputs whose batches leave promptly unless told otherwise: after
/// [`STREAM_BATCH_TIMEOUT`] (`batch_timeout`), and at once after a quiet
/// spell (`send_when_quiet`). A write to a stream costs a syscall, not a
/// request a SIEM answers and may rate-limit, so at low rates their events
/// leave within milliseconds, as rsyslog and syslog-ng forward them,
/// instead of waiting up to the other destinations' 1 s for company. At
/// high rates their batches fill (`batch_size`) first. Not `file`: an
/// archive written in larger pieces, and with `fsync = true` one flush a
/// batch.
const PROMPT: [&str; 2] = ["stdout", "syslog"];

/// The default `batch_timeout` of the [`PROMPT`] outputs.
pub const STREAM_BATCH_TIMEOUT: Duration = Duration::from_millis(10);

/// The common keys whose default depends on the kind, as the section
/// would set them: what the section does set wins.
fn kind_defaults(kind: &str) -> Vec<(&'static str, toml::Value)> {
    let mut defaults = Vec::new();
    if ORDERED.contains(&kind) {
        defaults.push(("concurrency", 1.into()));
    }
    if PROMPT.contains(&kind) {
        let timeout = format!("{}ms", STREAM_BATCH_TIMEOUT.as_millis());
        defaults.push(("batch_timeout", timeout.into()));
        defaults.push(("send_when_quiet", true.into()));
    }
    defaults
}

/// The `type` names this build knows.
pub fn kinds() -> Vec<&'static str> {
    KINDS.iter().map(|(k, _, _)| *k).collect()
}

/// The keys naming files a wire format reads once, when it is built: the
/// TLS files (`ca` of the HTTP formats and of `syslog`, `cert` and `key`
/// of `syslog`). No other format takes these keys.
const FILES_READ: [&str; 3] = ["ca", "cert", "key"];

/// The files a destination reads when it is built ([`FILES_READ`]),
/// resolved: a reload restarts a destination whose files' contents changed
/// (a renewed client certificate, a CA bundle), since its section alone
/// does not say so.
pub fn files_read(section: &SectionConfig, base_dir: &Path) -> Vec<std::path::PathBuf> {
    FILES_READ
        .iter()
        .filter_map(|key| section.table.get(*key)?.as_str())
        .map(|p| base_dir.join(p))
        .collect()
}

/// Builds a destination from its section. Errors name the key.
pub fn build(
    section: &SectionConfig,
    base_dir: &Path,
    data_dir: &Path,
) -> Result<Destination, ConfigError> {
    let path = section.path();
    let (builder, shared) = KINDS
        .iter()
        .find(|(k, _, _)| *k == section.kind)
        .map(|(_, b, shared)| (*b, *shared))
        .ok_or_else(|| {
            ConfigError::new(
                format!("{path}.type"),
                format!(
                    "unknown destination type `{}` (known: {}){}",
                    section.kind,
                    kinds().join(", "),
                    did_you_mean(closest_type(&section.kind, kinds()))
                ),
            )
        })?;
    let mut table = section.table.clone();
    for (key, value) in kind_defaults(&section.kind) {
        table.entry(key).or_insert(value);
    }
    let common = CommonSettings::peel_from(&mut table, &path)?;
    let filter = Filter::new(&common.filter, &format!("{path}.filter"))?;
    let redactor = Redactor::new(&common.redact, &format!("{path}.redact"))?;
    let ctx = BuildContext {
        name: section.name.clone(),
        base_dir: base_dir.to_path_buf(),
        data_dir: data_dir.to_path_buf(),
    };
    // what the wire format was given (endpoint, credentials, …), as text
    let wire_settings = format!("{}\n{table}", section.kind);
    let sink = builder(table, &ctx).map_err(|e| suggest_key(e, &path, shared))?;
    let dl_path = match &common.dead_letter {
        Some(p) => {
            let p = ctx.resolve(p);
            check_dead_letter_path(&p)
                .map_err(|m| ConfigError::new(format!("{path}.dead_letter"), m))?;
            p
        }
        None => data_dir
            .join("dead_letter")
            .join(format!("{}.ndjson", section.name)),
    };
    Ok(Destination {
        name: section.name.clone(),
        kind: section.kind.clone(),
        dead_letter: DeadLetter::new(dl_path, &section.name),
        common,
        sink,
        filter,
        redactor,
        status: Default::default(),
        throttle: Default::default(),
        wire_settings,
    })
}

/// A dead-letter file must be a file, in a folder that is one or can be
/// made: the first write creates the missing folders, and a path under a
/// regular file would fail only then, with the events left in the log.
/// (Permissions are not checked: `validate` may run as another user.)
fn check_dead_letter_path(p: &Path) -> Result<(), String> {
    if p.is_dir() {
        return Err(format!("{} is a directory", p.display()));
    }
    for dir in p.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(format!(
                    "{} is not a directory, so {} cannot be created",
                    dir.display(),
                    p.display()
                ))
            }
            // missing, or under a file (which an ancestor will show)
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue
            }
            // unreadable (permissions): the first write will tell
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// An `unknown field` error of a format's keys, with the closest known
/// key suggested. At the section's own level (`path` is
/// `destinations.NAME`) the known keys are the format's (which serde's
/// message lists), the `shared` ones it takes (the HTTP formats'
/// `endpoint`, `ca`, …) and those every destination takes (which it does
/// not list: they were taken out before the format read the rest): the
/// message lists them all. A key unknown in a table below (`tls`) keeps
/// its list.
fn suggest_key(mut e: ConfigError, path: &str, shared: SharedKeys) -> ConfigError {
    let Some(rest) = e.message.strip_prefix("unknown field `") else {
        return e;
    };
    let unknown = rest.split('`').next().unwrap_or_default().to_string();
    let mut known: Vec<String> = rest
        .split_once("expected")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if e.path == format!("{path}.{}", crate::config::quote_key(&unknown)) {
        for k in shared.iter().chain(&COMMON_KEYS) {
            if !known.iter().any(|n| n == k) {
                known.push(k.to_string());
            }
        }
        let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        e.message = format!(
            "unknown field `{unknown}`, expected one of {}",
            listed.join(", ")
        );
    }
    let hint = did_you_mean(closest(&unknown, known.iter().map(String::as_str)));
    e.message.push_str(&hint);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_path_under_a_file_or_at_a_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("notadir"), "").unwrap();
        std::fs::create_dir(d.path().join("adir")).unwrap();
        let build_with = |dl: &str| {
            let section = SectionConfig {
                section: "destinations",
                name: "d".into(),
                kind: "blackhole".into(),
                table: toml::from_str(&format!("dead_letter = \"{dl}\"")).unwrap(),
            };
            build(&section, d.path(), d.path())
                .err()
                .map(|e| e.to_string())
        };
        for bad in ["notadir/x.ndjson", "notadir/deeper/x.ndjson", "adir"] {
            let e = build_with(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.contains("destinations.d.dead_letter"), "{bad}: {e}");
            assert!(e.contains("directory"), "{bad}: {e}");
        }
        for good in ["adir/x.ndjson", "new/deeper/x.ndjson", "x.ndjson"] {
            assert_eq!(build_with(good), None, "{good}");
        }
    }

    #[test]
    fn a_mistyped_key_gets_the_closest_known_one_suggested() {
        let section = |keys: &str| SectionConfig {
            section: "destinations",
            name: "d".into(),
            kind: "file".into(),
            table: toml::from_str(&format!("path = \"out.ndjson\"\n{keys}")).unwrap(),
        };
        let err = |keys: &str| {
            build(&section(keys), Path::new("/tmp"), Path::new("/tmp"))
                .err()
                .expect("refused")
                .message
        };
        // a key every destination takes
        let m = err("batch_sise = 5");
        assert!(m.starts_with("unknown field `batch_sise`"), "{m}");
        assert!(m.ends_with("did you mean `batch_size`?"), "{m}");
        // the format's own
        assert!(err("rotate_byte = 5").ends_with("did you mean `rotate_bytes`?"));
        // nothing close: no guess
        assert!(!err("colour = 5").contains("did you mean"));
    }

    #[test]
    fn a_mistyped_type_gets_the_closest_known_one_suggested() {
        let section = SectionConfig {
            section: "destinations",
            name: "d".into(),
            kind: "splunk_hce".into(),
            table: toml::Table::new(),
        };
        let e = build(&section, Path::new("/tmp"), Path::new("/tmp"))
            .err()
            .expect("refused");
        assert_eq!(e.path, "destinations.d.type");
        assert!(
            e.message.ends_with("; did you mean `splunk_hec`?"),
            "{}",
            e.message
        );
    }

    fn built(kind: &str, keys: &str) -> Destination {
        let d = tempfile::tempdir().unwrap();
        let table: toml::Table = toml::from_str(keys).unwrap();
        let section = SectionConfig {
            section: "destinations",
            name: "d".into(),
            kind: kind.into(),
            table,
        };
        build(&section, d.path(), d.path()).unwrap()
    }

    #[test]
    fn stream_outputs_send_promptly_unless_told_otherwise() {
        let syslog = "address = \"127.0.0.1:1\"\nmode = \"tcp\"\n";
        let file = "path = \"out.ndjson\"\n";
        let hec = "endpoint = \"http://127.0.0.1:1\"\ntoken = \"t\"\n";
        let timeout = |d: &Destination| d.common.batch_timeout.0;
        assert_eq!(timeout(&built("syslog", syslog)), STREAM_BATCH_TIMEOUT);
        assert_eq!(timeout(&built("stdout", "")), STREAM_BATCH_TIMEOUT);
        // an archive and the SIEMs' APIs gather for up to a second
        let second = Duration::from_secs(1);
        assert_eq!(timeout(&built("file", file)), second);
        assert_eq!(timeout(&built("splunk_hec", hec)), second);
        // what the section says wins, for every kind
        let set = |keys: &str| format!("{keys}batch_timeout = \"2s\"\n");
        assert_eq!(timeout(&built("syslog", &set(syslog))), 2 * second);
        assert_eq!(timeout(&built("file", &set(file))), 2 * second);
        // the prompt ones send at once after a quiet spell
        let quiet = |d: &Destination| d.common.send_when_quiet;
        assert!(quiet(&built("syslog", syslog)) && quiet(&built("stdout", "")));
        assert!(!quiet(&built("file", file)) && !quiet(&built("splunk_hec", hec)));
        let on = format!("{hec}send_when_quiet = true\n");
        assert!(quiet(&built("splunk_hec", &on)));
        let off = format!("{syslog}send_when_quiet = false\n");
        assert!(!quiet(&built("syslog", &off)));
        // the ordered ones keep one batch in flight, the others two
        assert_eq!(built("syslog", syslog).common.concurrency, 1);
        assert_eq!(built("file", file).common.concurrency, 1);
        assert_eq!(built("splunk_hec", hec).common.concurrency, 2);
        let two = format!("{syslog}concurrency = 2\n");
        assert_eq!(built("syslog", &two).common.concurrency, 2);
    }
}
