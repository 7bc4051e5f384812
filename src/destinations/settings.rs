//! Settings every destination shares (batching, concurrency, retry, backpressure,
//! filter, redaction, dead letters), peeled off a destination's table before
//! the wire format reads the rest.

use crate::config::{table_into, ByteSize, ConfigError, HumanDuration};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::buffer::WhenFull;

/// `filter = { … }`: which events this destination gets. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSettings {
    /// Category names (`SECURITY`, …); events of other categories are skipped.
    pub categories: Vec<String>,
    /// Minimum severity (`warning` keeps warning and more severe).
    pub min_severity: Option<String>,
    /// Exact set of severities (alternative to `min_severity`).
    pub severities: Vec<String>,
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Actor id, email or service account to leave out.
    pub exclude_users: Vec<String>,
    /// Globs on `resource.path` to leave out.
    pub exclude_paths: Vec<String>,
    /// Globs on `action` to keep.
    pub actions: Vec<String>,
    /// Globs on `action` to leave out.
    pub exclude_actions: Vec<String>,
}

/// `redact = { … }`: fields removed or pseudonymised before encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactSettings {
    /// Dotted paths to remove (`metadata`, `actor.email`, `source_ip`).
    pub drop_fields: Vec<String>,
    /// Dotted paths whose string values are replaced by a keyed SHA-256 (hex).
    pub hash_fields: Vec<String>,
    /// The key for `hash_fields` (use `${ENV}`); required when `hash_fields` is set.
    pub hash_key: Option<String>,
}

/// `retry = { … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// First backoff.
    pub initial_backoff: HumanDuration,
    /// Backoff ceiling.
    pub max_backoff: HumanDuration,
    /// Give up after this many attempts and dead-letter the batch; 0 = never give up.
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            initial_backoff: HumanDuration(Duration::from_millis(200)),
            max_backoff: HumanDuration(Duration::from_secs(30)),
            max_attempts: 0,
        }
    }
}

/// The shared keys of every `[destinations.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonSettings {
    pub enabled: bool,
    pub batch_size: usize,
    pub batch_bytes: ByteSize,
    pub batch_timeout: HumanDuration,
    /// A partial batch leaves at once, with nothing more in the ring to add
    /// to it, when no batch left for `batch_timeout` (see
    /// `worker::quiet_enough`). Default: on for `syslog` and `stdout`.
    pub send_when_quiet: bool,
    pub concurrency: usize,
    pub when_full: WhenFull,
    pub filter: FilterSettings,
    pub redact: RedactSettings,
    pub retry: RetrySettings,
    /// Dead-letter NDJSON file for permanent rejects (default `<data_dir>/dead_letter/<name>.ndjson`).
    pub dead_letter: Option<PathBuf>,
}

impl Default for CommonSettings {
    fn default() -> Self {
        CommonSettings {
            enabled: true,
            batch_size: 500,
            batch_bytes: ByteSize(1 << 20),
            batch_timeout: HumanDuration(Duration::from_secs(1)),
            send_when_quiet: false,
            concurrency: 2,
            when_full: WhenFull::DropOldest,
            filter: FilterSettings::default(),
            redact: RedactSettings::default(),
            retry: RetrySettings::default(),
            dead_letter: None,
        }
    }
}

pub(super) const COMMON_KEYS: [&str; 11] = [
    "enabled",
    "batch_size",
    "batch_bytes",
    "batch_timeout",
    "send_when_quiet",
    "concurrency",
    "when_full",
    "filter",
    "redact",
    "retry",
    "dead_letter",
];

pub use crate::config::peel;

impl CommonSettings {
    /// Takes the common keys out of a destination's table (leaving the
    /// format's own keys) and validates them. `path` is `destinations.NAME`.
    pub fn peel_from(table: &mut toml::Table, path: &str) -> Result<CommonSettings, ConfigError> {
        let common: CommonSettings = table_into(&peel(table, &COMMON_KEYS), path)?;
        if common.batch_size == 0 {
            return Err(ConfigError::new(
                format!("{path}.batch_size"),
                "must be at least 1",
            ));
        }
        if common.concurrency == 0 || common.concurrency > 64 {
            return Err(ConfigError::new(
                format!("{path}.concurrency"),
                "must be between 1 and 64",
            ));
        }
        if common.batch_bytes.0 < 1024 {
            return Err(ConfigError::new(
                format!("{path}.batch_bytes"),
                "must be at least 1KiB",
            ));
        }
        if !common.redact.hash_fields.is_empty() && common.redact.hash_key.is_none() {
            return Err(ConfigError::new(
                format!("{path}.redact.hash_key"),
                "required when redact.hash_fields is set",
            ));
        }
        Ok(common)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peels_common_keys_and_leaves_the_rest() {
        let mut t: toml::Table = toml::from_str(
            "endpoint = \"http://x\"\nbatch_size = 5\nwhen_full = \"block\"\nfilter = { categories = [\"SECURITY\"] }\n",
        )
        .unwrap();
        let c = CommonSettings::peel_from(&mut t, "destinations.d").unwrap();
        assert_eq!(c.batch_size, 5);
        assert_eq!(c.when_full, WhenFull::Block);
        assert_eq!(c.filter.categories, vec!["SECURITY"]);
        assert_eq!(t.len(), 1);
        assert!(t.contains_key("endpoint"));
    }

    #[test]
    fn errors_name_the_key() {
        let mut t: toml::Table = toml::from_str("batch_size = 0\n").unwrap();
        assert_eq!(
            CommonSettings::peel_from(&mut t, "destinations.d")
                .unwrap_err()
                .path,
            "destinations.d.batch_size"
        );
        let mut t: toml::Table = toml::from_str("when_full = \"explode\"\n").unwrap();
        let e = CommonSettings::peel_from(&mut t, "destinations.d").unwrap_err();
        assert!(e.message.contains("explode"), "{e}");
        let mut t: toml::Table = toml::from_str("filter = { categorys = [] }\n").unwrap();
        let e = CommonSettings::peel_from(&mut t, "destinations.d").unwrap_err();
        assert!(e.to_string().contains("categorys"), "{e}");
    }
}
