//! Checking a whole configuration: every source and destination section is
//! handed to its module, and every problem is collected (not just the first).

use crate::buffer::checkpoint;
use crate::config::{every_error, Config, ConfigError, SectionConfig};
use crate::destinations::{file, registry, BuildContext};
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
    in_file_order(records_fit(config));
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
        // (each token's own errors are the config's: see `ApiToken`)
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

/// The syslog sources whose largest message would make a record larger
/// than a segment of `config.buffer.segment_bytes` holds (see
/// [`record_fit`](crate::sources::record_fit)): each such record would be
/// dropped at the append. None when the segment size is itself in error.
pub fn records_fit(config: &Config) -> Vec<ConfigError> {
    let segment = config.buffer.segment_bytes.0;
    if !crate::config::SEGMENT_BYTES.contains(&segment) {
        return Vec::new();
    }
    config
        .sources
        .iter()
        .filter_map(|s| crate::sources::record_fit::misfit(s, segment))
        .collect()
}

/// Files two destinations would both write: a `file` destination's output
/// (or one of its rotated files, `path.1` …) that is another's output or
/// dead-letter file. Both writers would interleave their lines and rotate
/// each other's files. (Dead-letter files may be shared: each line names
/// its destination.)
fn shared_files(config: &Config) -> Vec<ConfigError> {
    let sections: Vec<&SectionConfig> = config.destinations.iter().collect();
    let mut errors = files_in_conflict(&config.base_dir, &config.data_path(), &sections);
    if config.api.is_some() {
        errors.extend(stored_checkpoint_clashes(config, &sections));
    }
    errors
}

/// The file's destinations whose checkpoint file is that of a destination
/// the admin API stored under another name (`x.1` in the file, `x_1` made
/// by `POST`): at start the file's would run on the API's checkpoint, take
/// its position and skip every record the ring holds, and the API's would
/// not start. A stored name the file defines itself is the file's (the
/// API's settings are dropped at start). Reloads and the API's `POST` see
/// the running API destinations instead (see [`files_in_conflict`]).
fn stored_checkpoint_clashes(config: &Config, sections: &[&SectionConfig]) -> Vec<ConfigError> {
    let data_dir = config.data_path();
    let cursors = data_dir.join("buffer").join("cursors");
    let stored = crate::api::store::stored_names(&data_dir);
    let mut errors = Vec::new();
    for d in sections {
        let file = checkpoint::path_for(&cursors, &d.name);
        let clash = stored
            .iter()
            .filter(|s| !sections.iter().any(|d| d.name == **s))
            .find(|s| checkpoint::path_for(&cursors, s) == file);
        if let Some(api) = clash {
            errors.push(ConfigError::new(
                d.path(),
                format!(
                    "destinations `{api}` and `{}` would share the checkpoint file {}: each would take the other's position in the ring (and skip its events); `{api}` is a destination the admin API stored ({}): rename `{}` so that the two differ in more than characters outside A-Z, a-z, 0-9, `_` and `-`, or delete `{api}` through the API first",
                    d.name,
                    file.display(),
                    data_dir.join("api").join("destinations.json").display(),
                    d.name
                ),
            ));
        }
    }
    errors
}

/// [`shared_files`] of `sections`, each error at the key of the later of
/// two writers; also a file inside the relay's own state (`data_dir`'s
/// `buffer` and `api` folders: the ring, checkpoints, the API's store),
/// which a rotation would rename away; and two destinations whose names
/// make one checkpoint file (at the later one's section).
pub fn files_in_conflict(
    base_dir: &Path,
    data_dir: &Path,
    sections: &[&SectionConfig],
) -> Vec<ConfigError> {
    let state = [data_dir.join("buffer"), data_dir.join("api")].map(|d| same_file_key(&d));
    // each with its key and the index of its section
    let mut outputs: Vec<(Vec<PathBuf>, String, usize)> = Vec::new();
    let mut dead_letters: Vec<(PathBuf, String, usize)> = Vec::new();
    let mut errors = Vec::new();
    for (i, d) in sections.iter().enumerate() {
        let key = |k: &str| format!("{}.{k}", d.path());
        let ctx = BuildContext {
            name: d.name.clone(),
            base_dir: base_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
        };
        let written = match d.kind.as_str() {
            "file" => file::files_written(&d.table, &ctx),
            _ => None,
        };
        if let Some(files) = written {
            let files: Vec<PathBuf> = files.iter().map(|f| same_file_key(f)).collect();
            outputs.push((files, key("path"), i));
        }
        let dead_letter = match d.table.get("dead_letter").and_then(|v| v.as_str()) {
            Some(p) => ctx.resolve(Path::new(p)),
            None => data_dir
                .join("dead_letter")
                .join(format!("{}.ndjson", d.name)),
        };
        dead_letters.push((same_file_key(&dead_letter), key("dead_letter"), i));
    }
    let clash = |file: &Path, at: &str, other: &str| {
        ConfigError::new(
            at.to_string(),
            format!(
                "{} (or a file a `file` destination rotates it to) is also written by {other}: the two would interleave their lines and rotate each other's files",
                file.display()
            ),
        )
    };
    for (n, (files, key, _)) in outputs.iter().enumerate() {
        let earlier = outputs[..n]
            .iter()
            .find(|(other, _, _)| other.iter().any(|f| files.contains(f)));
        if let Some((_, other, _)) = earlier {
            errors.push(clash(&files[0], key, other));
        }
    }
    // an output and a dead-letter file: reported at the later section's key
    for (files, out_key, i) in &outputs {
        for (file, dl_key, j) in dead_letters.iter().filter(|(f, _, _)| files.contains(f)) {
            match j > i {
                true => errors.push(clash(file, dl_key, out_key)),
                false => errors.push(clash(file, out_key, dl_key)),
            }
        }
    }
    // checkpoint files: the ring names a cursor's file after its
    // destination with the characters a file name cannot hold replaced
    // (`siem.prod` and `siem_prod` both make `siem_prod.json`); two
    // destinations of one file would each take the other's position
    let cursors = data_dir.join("buffer").join("cursors");
    let mut checkpoints: Vec<(PathBuf, &str)> = Vec::new();
    for d in sections {
        let file = checkpoint::path_for(&cursors, &d.name);
        match checkpoints.iter().find(|(f, _)| *f == file) {
            Some((_, other)) => errors.push(ConfigError::new(
                d.path(),
                format!(
                    "destinations `{other}` and `{}` would share the checkpoint file {}: each would take the other's position in the ring (and skip its events); rename one so that the two differ in more than characters outside A-Z, a-z, 0-9, `_` and `-`",
                    d.name,
                    file.display()
                ),
            )),
            None => checkpoints.push((file, &d.name)),
        }
    }
    let all = outputs
        .iter()
        .flat_map(|(files, key, _)| files.iter().map(move |f| (f, key)))
        .chain(dead_letters.iter().map(|(f, key, _)| (f, key)));
    let mut in_state: Vec<&String> = Vec::new();
    for (file, key) in all {
        if state.iter().any(|dir| file.starts_with(dir)) && !in_state.contains(&key) {
            in_state.push(key);
            errors.push(ConfigError::new(
                key.clone(),
                format!(
                    "{} is inside the relay's own state ({} or {}): writing or rotating it would damage the ring, its checkpoints or the API's store",
                    file.display(),
                    state[0].display(),
                    state[1].display()
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
