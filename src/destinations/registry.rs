//! From a `[destinations.NAME]` section to a running [`Destination`]: the
//! table of wire formats by `type`, the common settings, filter, redaction
//! and dead-letter file.

use super::dead_letter::DeadLetter;
use super::filter::Filter;
use super::redact::Redactor;
use super::settings::CommonSettings;
use super::sink::Sink;
use super::worker::Destination;
use super::{
    blackhole, datadog, elasticsearch, file, http, sentinel, splunk_hec, stdout, sumo_logic,
    syslog, BuildContext,
};
use crate::config::{ConfigError, SectionConfig};
use std::path::Path;
use std::sync::Arc;

type Builder = fn(toml::Table, &BuildContext) -> Result<Arc<dyn Sink>, ConfigError>;

/// The wire formats, by `type`.
const KINDS: &[(&str, Builder)] = &[
    ("file", file::build),
    ("stdout", stdout::build),
    ("blackhole", blackhole::build),
    ("splunk_hec", splunk_hec::build),
    ("elasticsearch", elasticsearch::build),
    ("datadog", datadog::build),
    ("sentinel", sentinel::build),
    ("sumo_logic", sumo_logic::build),
    ("http", http::build),
    ("syslog", syslog::build),
];

/// Stream-like outputs whose lines should keep ring order: one batch in
/// flight unless `concurrency` is set.
const ORDERED: [&str; 3] = ["file", "stdout", "syslog"];

/// The `type` names this build knows.
pub fn kinds() -> Vec<&'static str> {
    KINDS.iter().map(|(k, _)| *k).collect()
}

/// Builds a destination from its section. Errors name the key.
pub fn build(
    section: &SectionConfig,
    base_dir: &Path,
    data_dir: &Path,
) -> Result<Destination, ConfigError> {
    let path = section.path();
    let builder = KINDS
        .iter()
        .find(|(k, _)| *k == section.kind)
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            ConfigError::new(
                format!("{path}.type"),
                format!(
                    "unknown destination type `{}` (known: {})",
                    section.kind,
                    kinds().join(", ")
                ),
            )
        })?;
    let mut table = section.table.clone();
    let explicit_concurrency = table.contains_key("concurrency");
    let mut common = CommonSettings::peel_from(&mut table, &path)?;
    if ORDERED.contains(&section.kind.as_str()) && !explicit_concurrency {
        common.concurrency = 1;
    }
    let filter = Filter::new(&common.filter, &format!("{path}.filter"))?;
    let redactor = Redactor::new(&common.redact, &format!("{path}.redact"))?;
    let ctx = BuildContext {
        name: section.name.clone(),
        base_dir: base_dir.to_path_buf(),
        data_dir: data_dir.to_path_buf(),
    };
    let sink = builder(table, &ctx)?;
    let dl_path = match &common.dead_letter {
        Some(p) => ctx.resolve(p),
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
    })
}
