//! `buffer salvage`: re-appends the valid records found in quarantined
//! segment files to the ring (as new records, so destinations receive them),
//! then moves each file to `quarantine/salvaged/`.
//!
//! It runs with the relay stopped, so no destination holds its place in
//! the ring: salvage holds them instead, with a `block` cursor at each
//! destination's checkpoint (at the oldest record when there is none), and
//! appends each file's records whole or not at all. A ring without room
//! for them refuses: wrapped over, it destroyed records no destination had
//! received, with nothing said.

use super::checkpoint;
use super::recovery::{quarantined_files, salvageable};
use super::ring::{io_err, BufferError, Ring, WhenFull};
use super::Cursor;
use crate::event::EncodedEvent;
use serde::Serialize;
use std::path::PathBuf;

/// What a salvage run did with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Salvaged {
    pub file: PathBuf,
    pub records: u64,
}

/// Holds, while salvage appends, the records no destination has
/// acknowledged: a `block` cursor at each checkpoint in the ring's
/// `cursors` folder, or at the oldest record when there is none (then
/// every record is still to be delivered).
fn hold_undelivered(ring: &Ring) -> Result<Vec<Cursor>, BufferError> {
    let dir = ring.settings().dir.join("cursors");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
                .filter(|n| checkpoint::path_for(&dir, n).exists())
                .collect()
        })
        .unwrap_or_default();
    // never committed: the checkpoints stay as they are
    let mut held = Vec::new();
    for name in &names {
        held.push(ring.cursor(name, WhenFull::Block)?);
    }
    if held.is_empty() {
        held.push(ring.cursor("salvage: all records", WhenFull::Block)?);
    }
    Ok(held)
}

/// Salvages every quarantined file of `ring`.
pub fn salvage(ring: &Ring) -> Result<Vec<Salvaged>, BufferError> {
    let dir = ring.settings().dir.clone();
    let done_dir = dir.join("quarantine").join("salvaged");
    let _held = hold_undelivered(ring)?;
    let mut out = Vec::new();
    for file in quarantined_files(&dir) {
        let data = std::fs::read(&file).map_err(io_err(format!("reading {}", file.display())))?;
        let mut events = Vec::new();
        salvageable(&data, |r| {
            events.push(EncodedEvent::with_hint(r.meta, r.body.to_vec(), r.hint))
        });
        if let Err(e) = ring.append(&events) {
            return Err(BufferError::Settings(format!(
                "{} stays in quarantine, none of its {} records appended: {e}. The ring has \
                 no room for them without overwriting records a destination has not \
                 received: start the relay to deliver those first, or raise `max_bytes`, \
                 then salvage again",
                file.display(),
                events.len()
            )));
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
