//! `buffer salvage`: re-appends the valid records found in quarantined
//! segment files to the ring (as new records, so destinations receive them),
//! then moves each file to `quarantine/salvaged/`.

use super::recovery::{quarantined_files, salvageable};
use super::ring::{io_err, BufferError, Ring};
use crate::event::EncodedEvent;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// What a salvage run did with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Salvaged {
    pub file: PathBuf,
    pub records: u64,
}

/// Salvages every quarantined file of `ring`.
pub fn salvage(ring: &Ring) -> Result<Vec<Salvaged>, BufferError> {
    let dir = ring.settings().dir.clone();
    let done_dir = dir.join("quarantine").join("salvaged");
    let mut out = Vec::new();
    for file in quarantined_files(&dir) {
        let data = std::fs::read(&file).map_err(io_err(format!("reading {}", file.display())))?;
        let mut events = Vec::new();
        salvageable(&data, |r| {
            events.push(EncodedEvent::with_hint(r.meta, r.body.to_vec(), r.hint))
        });
        for chunk in events.chunks(256) {
            ring.append_blocking(chunk, Duration::from_secs(30))
                .map_err(|e| BufferError::Settings(format!("appending salvaged records: {e}")))?;
        }
        std::fs::create_dir_all(&done_dir).map_err(io_err("creating quarantine/salvaged"))?;
        let name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
        std::fs::rename(&file, done_dir.join(name))
            .map_err(io_err(format!("moving {}", file.display())))?;
        out.push(Salvaged {
            file,
            records: events.len() as u64,
        });
    }
    ring.sync().map_err(io_err("syncing ring"))?;
    Ok(out)
}
