//! Checking a whole configuration: every source and destination section is
//! handed to its module, and every problem is collected (not just the first).

use crate::config::{Config, ConfigError};
use crate::destinations::registry;
use std::collections::HashSet;

/// All problems of `config`, each with its key path.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for s in &config.sources {
        if let Err(e) = crate::sources::validate_in(s, &config.base_dir) {
            errors.push(e);
        }
    }
    let data_dir = config.data_path();
    for d in &config.destinations {
        if let Err(e) = registry::build(d, &config.base_dir, &data_dir) {
            errors.push(e);
        }
    }
    // two listeners of the same transport cannot share an address
    let mut seen = HashSet::new();
    for s in &config.sources {
        if let Some(addr) = s.table.get("address").and_then(|a| a.as_str()) {
            let proto = if s.kind == "syslog_udp" { "udp" } else { "tcp" };
            if !seen.insert((proto, addr.to_string())) {
                errors.push(ConfigError::new(
                    format!("{}.address", s.path()),
                    format!("{proto} address {addr} is used by another source"),
                ));
            }
        }
    }
    if let Some(api) = &config.api {
        for (i, t) in api.tokens.iter().enumerate() {
            if t.token_sha256.len() != 64 || hex::decode(&t.token_sha256).is_err() {
                errors.push(ConfigError::new(
                    format!("api.tokens[{i}].token_sha256"),
                    "must be 64 hex digits (sha256 of the token)",
                ));
            }
        }
    }
    if config.destinations.is_empty() {
        errors.push(ConfigError::new(
            "destinations",
            "at least one destination is required",
        ));
    }
    for e in &mut errors {
        if e.line.is_none() {
            e.line = std::fs::read_to_string(&config.file)
                .ok()
                .and_then(|t| crate::config::key_line(&t, &e.path));
        }
    }
    errors
}
