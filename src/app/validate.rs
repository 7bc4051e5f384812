//! Checking a whole configuration: every source and destination section is
//! handed to its module, and every problem is collected (not just the first).

use crate::config::{every_error, Config, ConfigError};
use crate::destinations::registry;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};

/// All problems of `config`, each with its key path.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let text = std::fs::read_to_string(&config.file).ok();
    // a section's errors in the order of their lines in the file
    let mut in_file_order = |mut section: Vec<ConfigError>| {
        for e in &mut section {
            if e.line.is_none() {
                e.line = text
                    .as_deref()
                    .and_then(|t| crate::config::key_line(t, &e.path));
            }
        }
        section.sort_by_key(|e| e.line);
        errors.extend(section);
    };
    for s in &config.sources {
        in_file_order(crate::sources::every_error_in(s, &config.base_dir));
    }
    let data_dir = config.data_path();
    for d in &config.destinations {
        in_file_order(every_error(d, |d| {
            registry::build(d, &config.base_dir, &data_dir)
                .map(drop)
                .map_err(|e| vec![e])
        }));
    }
    errors.extend(shared_files(config));
    // every listener's address is a host:port, and no two listeners of a
    // transport share a port on overlapping addresses (0.0.0.0 overlaps
    // all); a source of an unknown type is no listener (its transport is
    // unknown too: its type's error says enough)
    let mut listeners: Vec<(&str, SocketAddr, String)> = Vec::new();
    let api = config
        .api
        .as_ref()
        .map(|a| ("tcp", "api.address".to_string(), a.address.as_str()));
    let known = config
        .sources
        .iter()
        .filter(|s| crate::sources::KINDS.contains(&s.kind.as_str()));
    let sources = known.filter_map(|s| {
        let addr = s.table.get("address")?.as_str()?;
        let proto = if s.kind == "syslog_udp" { "udp" } else { "tcp" };
        Some((proto, format!("{}.address", s.path()), addr))
    });
    for (proto, path, addr) in sources.chain(api) {
        let resolved = addr.to_socket_addrs().map(|mut a| a.next());
        let sa = match resolved {
            Ok(Some(sa)) => sa,
            Ok(None) => {
                errors.push(ConfigError::new(path, format!("{addr} names no address")));
                continue;
            }
            Err(e) => {
                errors.push(ConfigError::new(
                    path,
                    format!("`{addr}` is not a host:port address: {e}"),
                ));
                continue;
            }
        };
        let clash = listeners.iter().find(|(p, other, _)| {
            *p == proto
                && other.port() == sa.port()
                && sa.port() != 0
                && (other.ip() == sa.ip()
                    || other.ip().is_unspecified()
                    || sa.ip().is_unspecified())
        });
        match clash {
            Some((_, _, other)) => errors.push(ConfigError::new(
                path,
                format!("{proto} address {addr} overlaps {other}'s"),
            )),
            None => listeners.push((proto, sa, path.trim_end_matches(".address").to_string())),
        }
    }
    if let Some(api) = &config.api {
        // (the HTTP source's empty list means no authentication; the API
        // has no such mode: it would answer 401 to all but /health)
        if api.tokens.is_empty() {
            errors.push(ConfigError::new(
                "api.tokens",
                "at least one token is required (every route but /health needs one)",
            ));
        }
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
            e.line = text
                .as_deref()
                .and_then(|t| crate::config::key_line(t, &e.path));
        }
    }
    errors
}

/// Files two destinations would both write: a `file` destination's output
/// that is another's output or dead-letter file. Both writers would
/// interleave their lines and rotate each other's files. (Dead-letter
/// files may be shared: each line names its destination.)
fn shared_files(config: &Config) -> Vec<ConfigError> {
    let resolve = |p: &str| same_file_key(&config.base_dir.join(p));
    let mut outputs: Vec<(PathBuf, String)> = Vec::new();
    let mut dead_letters: Vec<(PathBuf, String)> = Vec::new();
    for d in &config.destinations {
        let key = |k: &str| format!("{}.{k}", d.path());
        if d.kind == "file" {
            if let Some(p) = d.table.get("path").and_then(|v| v.as_str()) {
                outputs.push((resolve(p), key("path")));
            }
        }
        let dead_letter = match d.table.get("dead_letter").and_then(|v| v.as_str()) {
            Some(p) => resolve(p),
            None => same_file_key(
                &config
                    .data_path()
                    .join("dead_letter")
                    .join(format!("{}.ndjson", d.name)),
            ),
        };
        dead_letters.push((dead_letter, key("dead_letter")));
    }
    let mut errors = Vec::new();
    for (i, (file, key)) in outputs.iter().enumerate() {
        let earlier = outputs[..i].iter().find(|(f, _)| f == file);
        let dead_letter = dead_letters.iter().find(|(f, _)| f == file);
        if let Some((_, other)) = earlier.or(dead_letter) {
            errors.push(ConfigError::new(
                key.clone(),
                format!(
                    "{} is also written by {other}: the two would interleave their lines and rotate each other's files",
                    file.display()
                ),
            ));
        }
    }
    errors
}

/// `p` as one name per file: `.` and `..` taken out, and the folder's
/// symbolic links resolved where it exists (`out/../o.ndjson`,
/// `./o.ndjson` and `o.ndjson` are the same file).
fn same_file_key(p: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            c => lexical.push(c),
        }
    }
    match (lexical.parent(), lexical.file_name()) {
        (Some(dir), Some(name)) => dir.canonicalize().map(|d| d.join(name)).unwrap_or(lexical),
        _ => lexical,
    }
}
