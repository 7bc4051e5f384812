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
//!
//! What it brought back is said in the stream (a `relay.buffer.salvage`
//! event a file) and is no loss: the sequence numbers the records had are
//! noted ([`recovery::SALVAGED_FILE`]), so the gap their segment left is
//! not reported as damage, now or at a later start. The damage the
//! salvage's own open found ([`open_and_salvage`]) is reported less what it
//! brought back: a segment it quarantined and salvaged whole is no loss.

use super::checkpoint;
use super::recovery::{self, quarantined_files, salvageable, Quarantined, RecoveryReport};
use super::ring::{io_err, BufferError, Ring, RingSettings, WhenFull};
use super::Cursor;
use crate::event::{EncodedEvent, Event, Severity};
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    salvage_reporting(ring, None)
}

/// Opens the ring in `settings.dir` (repairing it, as `run` does) and
/// salvages every quarantined file: `buffer salvage`. What the open found
/// is reported less what the salvage brought back. Returns the ring, what
/// its open found, and what was salvaged.
pub fn open_and_salvage(
    settings: RingSettings,
) -> Result<(Ring, RecoveryReport, Vec<Salvaged>), BufferError> {
    let (ring, mut report) = Ring::open_unreported(settings)?;
    let done = salvage_reporting(&ring, Some(&mut report))?;
    Ok((ring, report, done))
}

/// Salvages every quarantined file of `ring`; with `opened` (what opening
/// `ring` found, not reported yet), reports that too, less what the salvage
/// brought back. The notices are written before the records no destination
/// has received stop being held, whether the salvage succeeded or not.
fn salvage_reporting(
    ring: &Ring,
    opened: Option<&mut RecoveryReport>,
) -> Result<Vec<Salvaged>, BufferError> {
    let held = match hold_undelivered(ring) {
        Ok(held) => held,
        Err(e) => {
            // nothing salvaged: what the open found is reported as it is
            if let Some(report) = opened {
                ring.report_recovery(report, report.notices());
            }
            return Err(e);
        }
    };
    let mut done = Vec::new();
    let result = salvage_files(ring, opened.as_deref(), &mut done);
    if let Some(report) = opened {
        report.salvaged = recovery::load_salvaged(&ring.settings().dir);
        let files: Vec<PathBuf> = done.iter().map(|s| s.file.clone()).collect();
        ring.report_recovery(report, report.notices_after_salvage(&files));
    }
    // an append of no events writes the queued notices
    if let Err(e) = ring.append(&[]) {
        tracing::error!(error = %e, "writing the salvage's notices to the ring failed");
    }
    drop(held);
    let synced = ring.sync().map_err(io_err("syncing ring"));
    result.and(synced).map(|()| done)
}

fn salvage_files(
    ring: &Ring,
    opened: Option<&RecoveryReport>,
    out: &mut Vec<Salvaged>,
) -> Result<(), BufferError> {
    let dir = ring.settings().dir.clone();
    let done_dir = dir.join("quarantine").join("salvaged");
    for file in quarantined_files(&dir) {
        let data = std::fs::read(&file).map_err(io_err(format!("reading {}", file.display())))?;
        let mut events = Vec::new();
        // the sequence numbers the records had, as runs
        let mut runs: Vec<(u64, u64)> = Vec::new();
        salvageable(&data, |r| {
            events.push(EncodedEvent::with_hint(r.meta, r.body.to_vec(), r.hint));
            match runs.last_mut() {
                Some((_, to)) if *to == r.seq => *to = r.seq.saturating_add(1),
                _ => runs.push((r.seq, r.seq.saturating_add(1))),
            }
        });
        let appended = ring.append(&events).map_err(|e| {
            BufferError::Settings(format!(
                "{} stays in quarantine, none of its {} records appended: {e}. The ring has \
                 no room for them without overwriting records a destination has not \
                 received: start the relay to deliver those first, or raise `max_bytes`, \
                 then salvage again",
                file.display(),
                events.len()
            ))
        })?;
        if let Err(e) = recovery::add_salvaged(&dir, &runs, ring.oldest_seq()) {
            tracing::warn!(error = %e, file = %file.display(),
                "cannot note the salvaged records' sequence numbers (the gap they filled is reported as lost at the next start)");
        }
        std::fs::create_dir_all(&done_dir).map_err(io_err("creating quarantine/salvaged"))?;
        let name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let moved_to = done_dir.join(name);
        std::fs::rename(&file, &moved_to).map_err(io_err(format!("moving {}", file.display())))?;
        let quarantine = opened.and_then(|r| {
            r.quarantined
                .iter()
                .find(|q| Path::new(&q.moved_to) == file)
        });
        ring.queue_notice(salvage_notice(
            &file, &moved_to, quarantine, &runs, appended,
        ));
        out.push(Salvaged {
            file,
            records: events.len() as u64,
        });
    }
    Ok(())
}

/// The SECURITY event saying what the salvage of `file` brought back:
/// the records that had the numbers `runs` are now `appended`.
/// `quarantine` is the quarantine of the same run's open, when it was one.
fn salvage_notice(
    file: &Path,
    moved_to: &Path,
    quarantine: Option<&Quarantined>,
    runs: &[(u64, u64)],
    appended: std::ops::Range<u64>,
) -> Event {
    let records = appended.end - appended.start;
    let mut ev = Event::new(
        "SECURITY",
        Some("relay.buffer.salvage".into()),
        Severity::Notice,
    );
    ev.outcome = Some("success".into());
    let was: Vec<String> = runs
        .iter()
        .map(|&(a, b)| match b - a {
            1 => a.to_string(),
            _ => format!("{a}..{}", b - 1),
        })
        .collect();
    let what = match quarantine {
        Some(q) => format!("segment {} (quarantined: {})", q.file, q.reason),
        None => format!("quarantined file {}", file.display()),
    };
    ev.message = Some(if records == 0 {
        format!(
            "buffer salvage found no valid record in {what}; the file is now {}",
            moved_to.display()
        )
    } else {
        format!(
            "buffer salvage re-appended the {records} valid records of {what} as new records \
             {}..{} (they had sequence numbers {}); the file is now {}",
            appended.start,
            appended.end - 1,
            was.join(", "),
            moved_to.display()
        )
    });
    let mut md = serde_json::Map::new();
    md.insert("file".into(), file.display().to_string().into());
    md.insert("moved_to".into(), moved_to.display().to_string().into());
    md.insert("records".into(), records.into());
    md.insert("first_seq".into(), appended.start.into());
    md.insert(
        "original_seqs".into(),
        runs.iter()
            .map(|&(a, b)| serde_json::json!([a, b - 1]))
            .collect::<Vec<_>>()
            .into(),
    );
    if let Some(q) = quarantine {
        md.insert("segment".into(), q.file.clone().into());
        md.insert("reason".into(), q.reason.clone().into());
    }
    ev.metadata = Some(md);
    ev
}
