//! The TOML configuration file: loading, `${ENV}` interpolation, and the
//! top-level typed settings (`data_dir`, `[buffer]`, `[api]`).
//!
//! Sources and destinations are kept here as raw tables tagged with their
//! `type`; each source or destination module deserialises its own typed
//! settings from them (see [`SectionConfig::settings`]), so adding a wire
//! format never touches this module. Every error carries the key path of the
//! offending value, e.g. `destinations.splunk.batch_size`.

mod expected;
mod interpolate;
mod keypath;
mod spans;
mod suggest;
mod units;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

pub use interpolate::interpolate_env;
pub use keypath::quote_key;
pub use suggest::{closest, closest_type, did_you_mean};
pub use units::{parse_duration, parse_size, ByteSize, HumanDuration};

/// One configuration problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ConfigError {
    /// Dotted key path (`destinations.splunk.batch_size`); empty for file-level errors.
    pub path: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
    /// The key path whose default value the error holds against (`sources.h.queue_bytes`
    /// in "`max_body_bytes` must be at most queue_bytes (32MiB, its default)"):
    /// the error holds only while the section leaves that key out, so
    /// [`every_error`] does not list it once it left the key out itself.
    pub against_default_of: Option<String>,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            line: None,
            message: message.into(),
            against_default_of: None,
        }
    }

    /// This error with `path` as the key whose default it holds against
    /// (see [`against_default_of`](Self::against_default_of)).
    pub fn against_default_of(mut self, path: impl Into<String>) -> Self {
        self.against_default_of = Some(path.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (p, Some(l)) if !p.is_empty() => write!(f, "{p} (line {l}): {}", self.message),
            (p, None) if !p.is_empty() => write!(f, "{p}: {}", self.message),
            (_, Some(l)) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// All problems found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// When the ring is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every append is on disk before it returns.
    Always,
    /// A background flush at this interval.
    Interval(Duration),
    /// Left to the kernel.
    Never,
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A word or an interval, or a number of seconds as other durations.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(units::HumanDuration),
        }
        let s = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Seconds(secs) => return Ok(FsyncPolicy::Interval(secs.0)),
        };
        match s.as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => parse_duration(other)
                .map(FsyncPolicy::Interval)
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "expected \"always\", \"never\" or an interval like \"100ms\": {e}"
                    ))
                }),
        }
    }
}

/// `[buffer]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    pub max_bytes: ByteSize,
    pub segment_bytes: ByteSize,
    pub max_age: HumanDuration,
    pub fsync: FsyncPolicy,
}

/// The sizes a ring segment may have (`[buffer] segment_bytes`).
pub const SEGMENT_BYTES: RangeInclusive<u64> = 64 << 10..=1 << 32;

/// The most segments a ring may hold (`max_bytes / segment_bytes`):
/// 2^29, so 20 TB of the smallest segments (64 KiB: 305 million) fit:
/// `max_bytes` is at most 32 TiB, 32 PiB and 2 EiB with segments of 64 KiB,
/// 64 MiB (the default) and 4 GiB. Past it, a `max_bytes` is no ring size
/// but a typo, which `run` turned into an out-of-memory kill.
pub const MAX_SEGMENTS: u64 = 1 << 29;

impl BufferConfig {
    /// What is wrong with the ring's sizes: a `segment_bytes` out of
    /// [`SEGMENT_BYTES`], or else a `max_bytes` that holds fewer than two
    /// segments or more than [`MAX_SEGMENTS`] (only a segment size in
    /// range is held against it: one out of range is `segment_bytes`' fault
    /// alone).
    fn size_error(&self) -> Option<ConfigError> {
        let segment = self.segment_bytes.0;
        if !SEGMENT_BYTES.contains(&segment) {
            return Some(ConfigError::new(
                "buffer.segment_bytes",
                format!(
                    "must be between {} and {} (is {})",
                    ByteSize(*SEGMENT_BYTES.start()),
                    ByteSize(*SEGMENT_BYTES.end()),
                    self.segment_bytes
                ),
            ));
        }
        let segments = self.max_bytes.0 / segment;
        if segments < 2 {
            return Some(ConfigError::new(
                "buffer.max_bytes",
                format!(
                    "must hold at least two segments (2 × buffer.segment_bytes = {})",
                    ByteSize(2 * segment)
                ),
            ));
        }
        (segments > MAX_SEGMENTS).then(|| {
            ConfigError::new(
                "buffer.max_bytes",
                format!(
                    "must hold at most {MAX_SEGMENTS} segments: at most {} with buffer.segment_bytes = {} (is {})",
                    ByteSize(MAX_SEGMENTS * segment),
                    self.segment_bytes,
                    self.max_bytes
                ),
            )
        })
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: ByteSize(1 << 30),
            segment_bytes: ByteSize(64 << 20),
            max_age: HumanDuration(Duration::from_secs(30 * 60)),
            fsync: FsyncPolicy::Interval(Duration::from_millis(100)),
        }
    }
}

/// One bearer token of the admin API: its name, role, and the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    pub role: ApiRole,
    pub token_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    Admin,
    Viewer,
}

impl ApiToken {
    /// Every problem of `[api]`'s `tokens`, each token checked on its own
    /// (see [`every_error`]), and the tokens without one. A token in error
    /// no longer hides the others' errors: the whole list was left out at
    /// its first.
    fn read_all(tokens: &[toml::Value]) -> (Vec<ApiToken>, Vec<ConfigError>) {
        let mut good = Vec::new();
        let mut errors = Vec::new();
        for (i, value) in tokens.iter().enumerate() {
            let Some(table) = value.as_table() else {
                errors.push(ConfigError::new(
                    format!("api.tokens[{i}]"),
                    "must be a table: { name = …, role = …, token_sha256 = … }",
                ));
                continue;
            };
            // checked as a section `api.tokens`, its errors then put at
            // the element (`tokens[0]` is no key name, to quote)
            let token = SectionConfig {
                section: "api",
                name: "tokens".to_string(),
                kind: String::new(),
                table: table.clone(),
            };
            let mut found = every_error(&token, |t| {
                t.settings::<ApiToken>()
                    .map_err(|e| vec![e])?
                    .check(&t.path())
            });
            for e in &mut found {
                if let Some(rest) = e.path.strip_prefix("api.tokens") {
                    e.path = format!("api.tokens[{i}]{rest}");
                }
            }
            match found.is_empty() {
                true => good.extend(token.settings::<ApiToken>().ok()),
                false => errors.extend(found),
            }
        }
        (good, errors)
    }

    /// What is wrong with a token read whole, at `path` (`api.tokens[0]`).
    fn check(&self, path: &str) -> Result<(), Vec<ConfigError>> {
        match self.token_sha256.len() == 64 && hex::decode(&self.token_sha256).is_ok() {
            true => Ok(()),
            false => Err(vec![ConfigError::new(
                format!("{path}.token_sha256"),
                "must be 64 hex digits (sha256 of the token)",
            )]),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub address: String,
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

/// A `[sources.NAME]` or `[destinations.NAME]` section: its name, its `type`,
/// and the rest of its keys for the module of that type to read.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionConfig {
    /// `sources` or `destinations`.
    pub section: &'static str,
    pub name: String,
    pub kind: String,
    /// The section's keys without `type`, after `${ENV}` interpolation.
    pub table: toml::Table,
}

impl SectionConfig {
    /// `sources.NAME` / `destinations.NAME`, NAME quoted when it is no
    /// TOML bare key (`destinations."siem.prod"`, see [`quote_key`]).
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, quote_key(&self.name))
    }

    /// Deserialises the whole table (minus `type`) into `T`, mapping errors to
    /// this section's key path.
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        table_into(&self.table, &self.path())
    }
}

/// Removes `keys` from `table` and returns them as their own table (a
/// section's keys read by one part, the rest by another).
pub fn peel(table: &mut toml::Table, keys: &[&str]) -> toml::Table {
    let mut out = toml::Table::new();
    for k in keys {
        if let Some(v) = table.remove(*k) {
            out.insert((*k).to_string(), v);
        }
    }
    out
}

/// Deserialises a TOML table into `T`; errors name `path` plus the field serde points at.
pub fn table_into<T: DeserializeOwned>(table: &toml::Table, path: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let msg = e.inner().message().trim().to_string();
        let mut key = written_path(e.path());
        if key == "?" {
            key.clear();
        }
        // A missing field's error points at its parent; add the field to the path.
        if let Some(f) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            key = if key.is_empty() {
                f.to_string()
            } else {
                format!("{key}.{f}")
            };
        }
        let full = match (path.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => path.to_string(),
            (false, false) => format!("{path}.{key}"),
        };
        let msg = expected::in_file_terms(&msg, &full);
        ConfigError::new(full, msg)
    })
}

/// `path` as the config's errors write key paths: its keys joined by `.`,
/// each quoted when it is no TOML bare key (serde's own `Display` joins
/// them as they are: `destinations.a.b` for the key `a.b`).
fn written_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let key = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } => quote_key(key),
            Segment::Enum { variant } => quote_key(variant),
            Segment::Unknown => "?".into(),
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&key);
    }
    out
}

/// Every problem `check` finds in `section`, not only the first (serde
/// stops at a section's first bad key, and a module's checks at their
/// first failure): after errors at keys of the section, `check` runs again
/// without those keys (a bad value, an unknown key), until it passes or
/// finds nothing more it can leave out. An error at a key it left out, or
/// under one (`missing field`, `cert` "required when key is set"), follows
/// from leaving the key out and is not listed. A required key left out
/// (its `missing field`) is read as a stand-in of its type instead
/// (`STAND_INS`, tried in turn until one is not of the wrong type), so
/// that the rest of the section is still checked: otherwise its `missing
/// field` would stop serde before the section's other keys and the
/// module's checks (such as a TLS section's missing files). What the
/// stand-in itself gets wrong is at its key, and is not listed either. Nor
/// is an error that holds against the default of a key left out (see
/// [`ConfigError::against_default_of`]): the section sets that key, so
/// its default is not in effect; the error's own key is left out then
/// (unlisted) to check the rest. An unknown key with a suggestion
/// (`endpont`, "did you mean `endpoint`?") counts as the key suggested,
/// when the section does not have that one: its `missing field` or
/// "required" is the mistyped key's, and is not listed either.
pub fn every_error(
    section: &SectionConfig,
    mut check: impl FnMut(&SectionConfig) -> Result<(), Vec<ConfigError>>,
) -> Vec<ConfigError> {
    // each round leaves out at least one key: a section has fewer than this
    const MAX_ROUNDS: usize = 64;
    let mut section = section.clone();
    let path = section.path();
    let mut found: Vec<ConfigError> = Vec::new();
    let mut left_out: Vec<Vec<String>> = Vec::new();
    // required keys left out, and the stand-in each is read as
    let mut stood_in: Vec<(Vec<String>, usize)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let Err(errors) = check(&section) else { break };
        let mut progress = false;
        for e in errors {
            let key = key_at_fault(&e, &path);
            let against_left_out = e
                .against_default_of
                .as_ref()
                .and_then(|d| key_at_fault(&ConfigError::new(d.clone(), ""), &path))
                .is_some_and(|d| left_out.iter().any(|out| d.starts_with(out)));
            if against_left_out {
                if let Some(k) = key.filter(|k| !left_out.contains(k)) {
                    if remove_key(&mut section.table, &k) {
                        left_out.push(k);
                        progress = true;
                    }
                }
                continue;
            }
            let follows = key
                .as_ref()
                .is_some_and(|k| left_out.iter().any(|out| k.starts_with(out)));
            if follows {
                if let Some(k) = key.filter(|k| left_out.contains(k)) {
                    progress |= stand_in(&mut section.table, &k, &e, &mut stood_in);
                }
                continue;
            }
            if found.contains(&e) {
                continue;
            }
            if let Some(meant) = key.as_deref().and_then(|k| meant_key(&e, k)) {
                if !holds_key(&section.table, &meant) && !left_out.contains(&meant) {
                    left_out.push(meant);
                }
            }
            found.push(e);
            if let Some(k) = key {
                if remove_key(&mut section.table, &k) {
                    left_out.push(k);
                    progress = true;
                }
            }
        }
        if !progress {
            break;
        }
    }
    found
}

/// What a required key left out is read as, in the order tried: a value of
/// each TOML type serde can be asked for.
const STAND_INS: [fn() -> toml::Value; 5] = [
    || toml::Value::String(String::new()),
    || toml::Value::Integer(0),
    || toml::Value::Boolean(false),
    || toml::Value::Array(Vec::new()),
    || toml::Value::Table(toml::Table::new()),
];

/// Gives `key`, a key left out, a stand-in when `e` says the section
/// requires it (`missing field`), or the next one when `e` says its
/// stand-in is of the wrong type (`invalid type`). False when there is
/// nothing (more) to try: a key out of stand-ins is left out again.
fn stand_in(
    table: &mut toml::Table,
    key: &[String],
    e: &ConfigError,
    stood_in: &mut Vec<(Vec<String>, usize)>,
) -> bool {
    let next = match stood_in.iter_mut().find(|(k, _)| k == key) {
        None if e.message.starts_with("missing field") => {
            stood_in.push((key.to_vec(), 0));
            0
        }
        Some((_, tried)) if e.message.starts_with("invalid type") && *tried < STAND_INS.len() => {
            *tried += 1;
            *tried
        }
        _ => return false,
    };
    match STAND_INS.get(next) {
        Some(value) => insert_key(table, key, value()),
        None => {
            remove_key(table, key);
            false
        }
    }
}

/// Sets `key` in `table` (the tables above it must be there). False when
/// they are not.
fn insert_key(table: &mut toml::Table, key: &[String], value: toml::Value) -> bool {
    match key {
        [] => false,
        [last] => {
            table.insert(last.clone(), value);
            true
        }
        [first, rest @ ..] => match table.get_mut(first) {
            Some(toml::Value::Table(inner)) => insert_key(inner, rest, value),
            _ => false,
        },
    }
}

/// The key (as its path in the section's table) an error of the section at
/// `path` is about: its key path, or the key an `unknown field` names.
/// (`path` empty: the whole file's.)
fn key_at_fault(e: &ConfigError, path: &str) -> Option<Vec<String>> {
    let rest = match e.path.strip_prefix(path)? {
        rest if path.is_empty() || rest.is_empty() => rest,
        rest => rest.strip_prefix('.')?,
    };
    let mut key: Vec<String> = keypath::split(rest)
        .into_iter()
        .map(|s| s.key)
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(unknown) = e
        .message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        if key.last().map(String::as_str) != Some(unknown) {
            key.push(unknown.to_string());
        }
    }
    (!key.is_empty()).then_some(key)
}

/// The key an error at the unknown `key` suggests instead (its message
/// ends in "did you mean `NAME`?"): `NAME` beside it.
fn meant_key(e: &ConfigError, key: &[String]) -> Option<Vec<String>> {
    let unknown = e.message.strip_prefix("unknown field `")?;
    let name = unknown.strip_suffix("`?")?.rsplit_once("did you mean `")?.1;
    let (_, above) = key.split_last()?;
    Some(above.iter().cloned().chain([name.to_string()]).collect())
}

/// Whether `table` holds `key`.
fn holds_key(table: &toml::Table, key: &[String]) -> bool {
    match key {
        [] => false,
        [last] => table.contains_key(last),
        [first, rest @ ..] => match table.get(first) {
            Some(toml::Value::Table(inner)) => holds_key(inner, rest),
            _ => false,
        },
    }
}

/// Removes the deepest key of `key` that `table` holds. False when it holds
/// none of it.
fn remove_key(table: &mut toml::Table, key: &[String]) -> bool {
    let Some((first, rest)) = key.split_first() else {
        return false;
    };
    let removed_inside = match table.get_mut(first) {
        None => return false,
        Some(toml::Value::Table(inner)) => remove_key(inner, rest),
        Some(_) => false,
    };
    removed_inside || table.remove(first).is_some()
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the file was read from (relative paths in it resolve against `base_dir`).
    pub file: PathBuf,
    pub base_dir: PathBuf,
    pub data_dir: PathBuf,
    pub buffer: BufferConfig,
    /// How long SIGTERM waits for in-flight batches to finish.
    pub shutdown_grace: Duration,
    /// Default time zone for syslog timestamps without one (IANA name), default UTC.
    pub timezone: String,
    pub sources: Vec<SectionConfig>,
    pub destinations: Vec<SectionConfig>,
    pub api: Option<ApiConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default)]
    buffer: BufferConfig,
    #[serde(default = "default_grace")]
    shutdown_grace: HumanDuration,
    #[serde(default = "default_tz")]
    timezone: String,
    #[serde(default)]
    sources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    destinations: BTreeMap<String, toml::Table>,
    #[serde(default)]
    api: Option<ApiConfig>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_tz() -> String {
    "UTC".into()
}

impl Config {
    /// Reads and parses a config file, interpolating `${ENV}` from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        Self::parse(&text, path, &|k| std::env::var(k).ok())
    }

    /// Parses config text; `env` looks up variables for `${VAR}`.
    pub fn parse(
        text: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                line,
                message: format!("invalid TOML: {}", e.message()),
                against_default_of: None,
            }])
        })?;
        let mut errors = Vec::new();
        interpolate_env(&mut value, "", env, &mut errors);
        if !errors.is_empty() {
            for e in &mut errors {
                e.line = key_line(text, &e.path);
            }
            return Err(ConfigErrors(errors));
        }
        let (cfg, errors) = Self::from_table(value, text, file);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// [`parse`](Self::parse) as far as it goes: a top-level key in error
    /// (`[buffer]`, `[api]`, an unknown one) is reported and left at its
    /// default, so that the sections are still read, and checked by the
    /// caller, and every problem is listed at once. An unset variable
    /// without a `:-default` is reported and its value left as written.
    /// `None` for text that is no TOML.
    pub fn parse_lenient(text: &str, file: &Path) -> Option<(Config, Vec<ConfigError>)> {
        let mut value: toml::Table = toml::from_str(text).ok()?;
        let mut errors = Vec::new();
        let env = |k: &str| std::env::var(k).ok();
        interpolate_env(&mut value, "", &env, &mut errors);
        for e in &mut errors {
            e.line = key_line(text, &e.path);
        }
        let (cfg, more) = Self::from_table(value, text, file);
        errors.extend(more);
        Some((cfg, errors))
    }

    /// The config in `value`, and every problem found on the way.
    fn from_table(mut value: toml::Table, text: &str, file: &Path) -> (Config, Vec<ConfigError>) {
        let mut errors = Vec::new();
        // `[api]`'s tokens are read one by one, below
        let tokens = match value.get_mut("api").and_then(toml::Value::as_table_mut) {
            Some(api) if api.get("tokens").is_some_and(toml::Value::is_array) => {
                api.remove("tokens")
            }
            _ => None,
        };
        let top: TopLevel = loop {
            match table_into::<TopLevel>(&value, "") {
                Ok(top) => break top,
                Err(mut e) => {
                    e.path = e.path.trim_start_matches('.').to_string();
                    e.line = key_line(text, &e.path);
                    // the key at fault (an unknown one is named in the
                    // message), left out to read the rest: the deepest one
                    // the file has, so a section's other keys are still read
                    let key = key_at_fault(&e, "").unwrap_or_default();
                    errors.push(e);
                    if !remove_key(&mut value, &key) {
                        value.clear();
                    }
                }
            }
        };
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Config {
            file: file.to_path_buf(),
            base_dir,
            data_dir: top.data_dir,
            buffer: top.buffer,
            shutdown_grace: top.shutdown_grace.0,
            timezone: top.timezone,
            sources: Vec::new(),
            destinations: Vec::new(),
            api: top.api,
        };
        if let Some(toml::Value::Array(tokens)) = tokens {
            let (good, bad) = ApiToken::read_all(&tokens);
            errors.extend(bad);
            if let Some(api) = &mut cfg.api {
                api.tokens = good;
            }
        }
        for (section, tables, out) in [
            ("sources", top.sources, &mut cfg.sources),
            ("destinations", top.destinations, &mut cfg.destinations),
        ] {
            for (name, mut table) in tables {
                let kind = match table.remove("type") {
                    Some(toml::Value::String(s)) => s,
                    Some(_) => {
                        errors.push(ConfigError::new(
                            format!("{section}.{}.type", quote_key(&name)),
                            "must be a string",
                        ));
                        continue;
                    }
                    None => {
                        errors.push(ConfigError::new(
                            format!("{section}.{}.type", quote_key(&name)),
                            "missing: every section needs a `type`",
                        ));
                        continue;
                    }
                };
                out.push(SectionConfig {
                    section,
                    name,
                    kind,
                    table,
                });
            }
        }
        // the sections in the file's order (the table's is by name): a
        // clash between two is reported at the later one in the file
        if let Some(spans) = spans::Spans::parse(text) {
            for out in [&mut cfg.sources, &mut cfg.destinations] {
                out.sort_by_cached_key(|s| {
                    let path = keypath::split(&s.path());
                    spans.start_of_whole(&path).unwrap_or(usize::MAX)
                });
            }
        }
        errors.extend(cfg.buffer.size_error());
        if cfg.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(ConfigError::new(
                "timezone",
                format!("unknown time zone `{}`", cfg.timezone),
            ));
        }
        for e in &mut errors {
            if e.line.is_none() {
                e.line = key_line(text, &e.path);
            }
        }
        (cfg, errors)
    }

    /// Resolves a path from the config file against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The data directory, resolved.
    pub fn data_path(&self) -> PathBuf {
        self.resolve(&self.data_dir)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Best-effort line of a dotted key path in config text: from the
/// parser's spans (see [`spans`]: the deepest key of the path the text
/// holds, a value's line or a table's header), else (text the spans
/// cannot be read from, or holding no key of the path) a search for the
/// section header, then the key.
pub fn key_line(text: &str, path: &str) -> Option<usize> {
    if let Some(line) = spans::path_line(text, path) {
        return Some(line);
    }
    let parts: Vec<&str> = path.split('.').collect();
    if parts.is_empty() || parts[0].is_empty() {
        return None;
    }
    for n in (1..=parts.len()).rev() {
        let header = format!("[{}]", parts[..n].join("."));
        if let Some(pos) = text.lines().position(|l| l.trim() == header) {
            if n == parts.len() {
                return Some(pos + 1);
            }
            // (an array item's path names the array's key)
            let key = parts[n].split('[').next().unwrap_or_default();
            for (i, l) in text.lines().enumerate().skip(pos + 1) {
                let t = l.trim_start();
                if t.starts_with('[') {
                    break;
                }
                if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
                    return Some(i + 1);
                }
            }
            return Some(pos + 1);
        }
    }
    let key = parts[0];
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
        })
        .map(|p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/relay/x.toml"), &|k| match k {
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        })
    }

    #[test]
    fn defaults_and_sections() {
        let c = parse(
            "[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:5514\"\n\
             [destinations.out]\ntype = \"file\"\npath = \"out.ndjson\"\n",
        )
        .unwrap();
        assert_eq!(c.buffer, BufferConfig::default());
        assert_eq!(c.sources[0].kind, "syslog_tcp");
        assert_eq!(c.destinations[0].path(), "destinations.out");
        assert!(c.destinations[0].table.get("type").is_none());
        assert_eq!(c.data_path(), PathBuf::from("/etc/relay/data"));
    }

    #[test]
    fn fsync_takes_a_word_an_interval_or_seconds_as_other_durations() {
        let fsync = |v: &str| parse(&format!("[buffer]\nfsync = {v}\n")).map(|c| c.buffer.fsync);
        assert_eq!(fsync("\"always\""), Ok(FsyncPolicy::Always));
        assert_eq!(fsync("\"never\""), Ok(FsyncPolicy::Never));
        let interval = |ms| Ok(FsyncPolicy::Interval(Duration::from_millis(ms)));
        assert_eq!(fsync("\"250ms\""), interval(250));
        assert_eq!(fsync("1"), interval(1000));
        assert_eq!(fsync("0.5"), interval(500));
        let e = fsync("\"sometimes\"").unwrap_err();
        assert_eq!(e.0[0].path, "buffer.fsync");
        assert!(e.0[0].message.contains("\"always\", \"never\""), "{e}");
    }

    #[test]
    fn missing_env_var_is_named() {
        let e =
            parse("[destinations.s]\ntype = \"stdout\"\ntoken = \"${NOPE_VAR}\"\n").unwrap_err();
        assert_eq!(e.0[0].path, "destinations.s.token");
        assert!(e.0[0].message.contains("NOPE_VAR"), "{}", e);
        assert_eq!(e.0[0].line, Some(3));
        let c =
            parse("[destinations.s]\ntype = \"stdout\"\ntoken = \"Bearer ${TOKEN}\"\n").unwrap();
        assert_eq!(
            c.destinations[0].table["token"].as_str(),
            Some("Bearer s3cret")
        );
    }

    #[test]
    fn bad_buffer_key_is_named() {
        let e = parse("[buffer]\nmax_bytes = \"lots\"\n").unwrap_err();
        assert!(e.to_string().contains("max_bytes"), "{e}");
        let e = parse("[buffer]\nsegment_byts = \"1MiB\"\n").unwrap_err();
        assert_eq!(e.0[0].path, "buffer.segment_byts");
        assert_eq!(e.0[0].line, Some(2));
        let e = parse("[buffer]\nfsync = \"sometimes\"\n").unwrap_err();
        assert!(e.to_string().contains("always"), "{e}");
    }

    #[test]
    fn missing_type_and_small_ring() {
        let e = parse("[buffer]\nmax_bytes = \"1MiB\"\nsegment_bytes = \"1MiB\"\n[sources.x]\naddress = \"a\"\n")
            .unwrap_err();
        let paths: Vec<_> = e.0.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"sources.x.type"), "{paths:?}");
        assert!(paths.contains(&"buffer.max_bytes"), "{paths:?}");
    }

    /// A segment size out of range is `segment_bytes`' fault, never a
    /// `max_bytes` too small for it; in range, `max_bytes` must hold two.
    #[test]
    fn a_segment_size_out_of_range_is_its_own_fault() {
        for (size, is) in [("\"8GiB\"", "8GiB"), ("\"5GB\"", "5GB"), ("1024", "1KiB")] {
            let e = parse(&format!("[buffer]\nsegment_bytes = {size}\n")).unwrap_err();
            assert_eq!(paths(&e.0), ["buffer.segment_bytes"], "{e}");
            assert_eq!(e.0[0].line, Some(2));
            let range = format!("must be between 64KiB and 4GiB (is {is})");
            assert_eq!(e.0[0].message, range);
        }
        assert!(parse("[buffer]\nmax_bytes = \"8GiB\"\nsegment_bytes = \"4GiB\"\n").is_ok());
        let e = parse("[buffer]\nmax_bytes = \"6GiB\"\nsegment_bytes = \"4GiB\"\n").unwrap_err();
        assert_eq!(paths(&e.0), ["buffer.max_bytes"], "{e}");
        assert!(e.0[0].message.ends_with("= 8GiB)"), "{e}");
    }

    fn section(text: &str) -> SectionConfig {
        SectionConfig {
            section: "destinations",
            name: "d".into(),
            kind: "test".into(),
            table: toml::from_str(text).unwrap(),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        min: u32,
        #[serde(default)]
        names: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        endpoint: String,
        #[serde(default)]
        batch_size: u32,
        #[serde(default)]
        filter: Option<Inner>,
        #[serde(default)]
        ca: Option<String>,
    }

    /// As a destination module checks: deserialisation, then a check of its own.
    fn check(s: &SectionConfig) -> Result<(), Vec<ConfigError>> {
        let settings: Settings = s.settings().map_err(|e| vec![e])?;
        match settings.ca {
            Some(ca) if ca.starts_with("missing") => Err(vec![ConfigError::new(
                format!("{}.ca", s.path()),
                format!("file {ca} does not exist"),
            )]),
            _ => Ok(()),
        }
    }

    fn paths(errors: &[ConfigError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn every_bad_key_of_a_section_is_listed() {
        let s = section(
            "endpoint = \"http://x\"\nbatch_size = \"many\"\nbatchsize = 5\n\
             filter = { min = -1, names = \"one\", extra = true }\nca = \"missing.pem\"\n",
        );
        let e = every_error(&s, check);
        assert_eq!(
            paths(&e),
            [
                "destinations.d.batch_size",
                "destinations.d.batchsize",
                "destinations.d.filter.extra",
                "destinations.d.filter.min",
                "destinations.d.filter.names",
                "destinations.d.ca",
            ],
            "{e:?}"
        );
        assert!(e[1].message.contains("unknown field `batchsize`"), "{e:?}");
        assert!(e[2].message.contains("unknown field `extra`"), "{e:?}");
        // one at a time, as before
        assert_eq!(check(&s).unwrap_err().len(), 1);
    }

    #[test]
    fn what_follows_from_leaving_a_key_out_is_not_listed() {
        // a bad required key: its `missing field` is not a second error
        let s = section("endpoint = 5\nbatch_size = \"many\"\n");
        let e = every_error(&s, check);
        assert_eq!(
            paths(&e),
            ["destinations.d.batch_size", "destinations.d.endpoint"],
            "{e:?}"
        );
        // a key that really is missing is
        let e = every_error(&section("batch_size = 1\n"), check);
        assert_eq!(paths(&e), ["destinations.d.endpoint"], "{e:?}");
        assert!(every_error(&section("endpoint = \"x\"\n"), check).is_empty());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Listener {
        port: u16,
        names: Vec<String>,
        #[serde(default)]
        ca: Option<String>,
    }

    /// A required key with a bad value is reported, and the section's other
    /// keys are still checked (the key is read as a stand-in of its type).
    #[test]
    fn a_bad_required_key_does_not_hide_the_rest_of_its_section() {
        let s = section("ca = \"missing.pem\"\nendpoint = 5\nfilter = { min = \"low\" }\n");
        let e = every_error(&s, check);
        assert_eq!(
            paths(&e),
            [
                "destinations.d.endpoint",
                "destinations.d.filter.min",
                "destinations.d.ca",
            ],
            "{e:?}"
        );
        assert!(e[0].message.contains("invalid type"), "{e:?}");
        // stand-ins of other types, and a bad key after two bad required ones
        let check_listener = |s: &SectionConfig| -> Result<(), Vec<ConfigError>> {
            let l: Listener = s.settings().map_err(|e| vec![e])?;
            match l.ca {
                Some(ca) => Err(vec![ConfigError::new(
                    format!("{}.ca", s.path()),
                    format!("file {ca} does not exist"),
                )]),
                None => Ok(()),
            }
        };
        let s = section("names = 3\nport = \"high\"\nca = \"missing.pem\"\nextra = 1\n");
        let e = every_error(&s, check_listener);
        let mut got = paths(&e);
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "destinations.d.ca",
                "destinations.d.extra",
                "destinations.d.names",
                "destinations.d.port",
            ],
            "{e:?}"
        );
        assert!(
            !e.iter().any(|e| e.message.contains("missing field")),
            "{e:?}"
        );
    }

    #[test]
    fn toml_syntax_error_has_line() {
        let e = parse("[buffer]\nmax_bytes = = 3\n").unwrap_err();
        assert_eq!(e.0[0].line, Some(2));
    }
}
