//! The dead-letter file: events a destination refused for good, one NDJSON
//! line each with the reason, so nothing is dropped silently.

use super::batch::BatchEvent;
use serde_json::value::RawValue;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends refused events to a file.
#[derive(Debug)]
pub struct DeadLetter {
    path: PathBuf,
    destination: String,
    file: Mutex<Option<File>>,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    dead_lettered_at: String,
    destination: &'a str,
    reason: &'a str,
    seq: u64,
    event: &'a RawValue,
}

impl DeadLetter {
    pub fn new(path: PathBuf, destination: &str) -> Self {
        DeadLetter {
            path,
            destination: destination.to_string(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the events with their reasons and syncs the file.
    pub fn write<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a BatchEvent, &'a str)>,
    ) -> io::Result<usize> {
        let now = crate::event::format_rfc3339_millis(crate::event::now_millis());
        let mut buf = Vec::new();
        let mut n = 0;
        for (ev, reason) in items {
            let fallback;
            let event: &RawValue = match std::str::from_utf8(ev.body())
                .ok()
                .and_then(|s| serde_json::from_str(s).ok())
            {
                Some(raw) => raw,
                None => {
                    fallback = serde_json::value::to_raw_value(&String::from_utf8_lossy(ev.body()))
                        .map_err(io::Error::other)?;
                    &fallback
                }
            };
            let line = Line {
                dead_lettered_at: now.clone(),
                destination: &self.destination,
                reason,
                seq: ev.seq,
                event,
            };
            serde_json::to_writer(&mut buf, &line).map_err(io::Error::other)?;
            buf.push(b'\n');
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let mut guard = self.file.lock().unwrap();
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let f = guard.as_mut().expect("opened above");
        f.write_all(&buf)?;
        f.sync_data()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RecordMeta, Severity};

    #[test]
    fn writes_ndjson_with_reason() {
        let d = tempfile::tempdir().unwrap();
        let dl = DeadLetter::new(d.path().join("dl/x.ndjson"), "x");
        let meta = RecordMeta {
            timestamp_ms: 0,
            received_ms: 0,
            severity: Severity::Info,
            category: 0,
            tenant_hash: 0,
            flags: 0,
        };
        let a = BatchEvent::new(1, meta, bytes::Bytes::from_static(b"{\"a\":1}"));
        let b = BatchEvent::new(2, meta, bytes::Bytes::from_static(b"not json"));
        assert_eq!(dl.write([(&a, "bad index"), (&b, "mapper")]).unwrap(), 2);
        let text = std::fs::read_to_string(d.path().join("dl/x.ndjson")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"]["a"], 1);
        assert_eq!(lines[0]["reason"], "bad index");
        assert_eq!(lines[1]["event"], "not json");
        assert_eq!(lines[1]["seq"], 2);
    }
}
