//! `buffer salvage`: re-appends the valid records found in quarantined
//! segment files to the ring (as new records, so destinations receive them),
//! then moves each file to `quarantine/salvaged/`.
//!
//! It runs with the relay stopped, so no destination holds its place in
//! the ring: salvage holds them instead, with a `block` cursor at each
//! checkpoint and at the oldest record for each enabled destination of the
//! config without one (at the oldest record when there is neither), and
//! appends each file's records whole or not at all. A ring without room
//! for them refuses: wrapped over, it destroyed records no destination had
//! received, with nothing said. The refusal ([`SalvageError::NoRoom`])
//! names every destination whose records are in the way, by what it is
//! (enabled, disabled, not in the config file) and what frees them.
//!
//! What it brought back is said in the stream (a `relay.buffer.salvage`
//! event a file) and is no loss: the sequence numbers the records had are
//! noted ([`recovery::SALVAGED_FILE`]), so the gap their segment left is
//! not reported as damage, now or at a later start. The damage the
//! salvage's own open found ([`open_and_salvage`]) is reported less what it
//! brought back: a segment it quarantined and salvaged whole is no loss.

use super::checkpoint;
use super::recovery::{self, quarantined_files, salvageable, Quarantined, RecoveryReport};
use super::ring::{io_err, AppendError, BufferError, Ring, RingSettings, WhenFull};
use super::Cursor;
use crate::event::{EncodedEvent, Event, Severity};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What a salvage run did with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Salvaged {
    pub file: PathBuf,
    pub records: u64,
}

/// A destination of the config file, as salvage needs to know it: whose
/// records it holds, and what a refusal tells the operator to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredDestination {
    pub name: String,
    pub enabled: bool,
}

/// Why salvage holds records of the ring (a refusal names each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An enabled destination of the config file: from its checkpoint, or
    /// (`checkpoint: None`) from the oldest record, where it starts.
    Enabled {
        name: String,
        checkpoint: Option<u64>,
    },
    /// A destination configured with `enabled = false` that has a
    /// checkpoint: it has not received what lies above it.
    Disabled { name: String, checkpoint: u64 },
    /// A checkpoint of no destination in the config file: an admin API
    /// destination's, or one removed while the relay was stopped.
    Unconfigured { name: String, checkpoint: u64 },
    /// No destination has a checkpoint (nor is one enabled in the config):
    /// every record of the ring is still to be delivered.
    Everything,
}

impl Holder {
    /// The destination's name (none for [`Holder::Everything`]).
    pub fn name(&self) -> Option<&str> {
        match self {
            Holder::Enabled { name, .. }
            | Holder::Disabled { name, .. }
            | Holder::Unconfigured { name, .. } => Some(name),
            Holder::Everything => None,
        }
    }
}

/// Why `buffer salvage` stopped.
#[derive(Debug, Error)]
pub enum SalvageError {
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// The ring has no room for a file's records without overwriting
    /// records that `holders` have not received.
    #[error("{} stays in quarantine, none of its {records} records appended: the ring has no room for them without overwriting records not yet delivered to {}. {}",
        file.display(), HolderList(holders), Advice { holders, cursors: cursors.as_path() })]
    NoRoom {
        file: PathBuf,
        records: usize,
        holders: Vec<Holder>,
        /// The ring's `cursors` folder, for the checkpoint files named.
        cursors: PathBuf,
    },
    /// The append of a file's records failed for another reason.
    #[error("{} stays in quarantine, none of its {records} records appended: {source}", file.display())]
    Append {
        file: PathBuf,
        records: usize,
        source: AppendError,
    },
}

/// `holders`, as a refusal lists them.
struct HolderList<'a>(&'a [Holder]);

impl fmt::Display for HolderList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == self.0.len() { " and " } else { ", " })?;
            }
            match h {
                Holder::Enabled {
                    name,
                    checkpoint: Some(seq),
                } => write!(f, "`{name}` (its checkpoint is at record {seq})")?,
                Holder::Enabled {
                    name,
                    checkpoint: None,
                } => write!(
                    f,
                    "`{name}` (no checkpoint yet: it starts at the ring's oldest record)"
                )?,
                Holder::Disabled { name, checkpoint } => write!(
                    f,
                    "`{name}` (disabled, `enabled = false`; its checkpoint is at record {checkpoint})"
                )?,
                Holder::Unconfigured { name, checkpoint } => write!(
                    f,
                    "`{name}` (not in the config file: an admin API destination, or one removed \
                     while the relay was stopped; its checkpoint is at record {checkpoint})"
                )?,
                Holder::Everything => f.write_str(
                    "any destination (none has a checkpoint: every record of the ring is still \
                     to be delivered)",
                )?,
            }
        }
        Ok(())
    }
}

/// What frees the records `holders` hold, as a refusal advises it.
struct Advice<'a> {
    holders: &'a [Holder],
    cursors: &'a Path,
}

impl fmt::Display for Advice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let of = |kind: fn(&Holder) -> bool| -> Vec<&str> {
            self.holders
                .iter()
                .filter(|h| kind(h))
                .filter_map(Holder::name)
                .collect()
        };
        let quoted = |names: &[&str]| -> String {
            let v: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            v.join(", ")
        };
        let files = |names: &[&str]| -> String {
            let v: Vec<String> = names
                .iter()
                .map(|n| checkpoint::path_for(self.cursors, n).display().to_string())
                .collect();
            v.join(", ")
        };
        let one = |names: &[&str], it: &'static str, they: &'static str| match names.len() {
            1 => it,
            _ => they,
        };
        let mut ways = Vec::new();
        let enabled = of(|h| matches!(h, Holder::Enabled { .. }));
        if !enabled.is_empty() {
            ways.push(format!(
                "start the relay so that {} {} them first",
                quoted(&enabled),
                one(&enabled, "delivers", "deliver")
            ));
        } else if self.holders.contains(&Holder::Everything) {
            ways.push("start the relay so that its destinations deliver them first".into());
        }
        let disabled = of(|h| matches!(h, Holder::Disabled { .. }));
        if !disabled.is_empty() {
            ways.push(format!(
                "enable {} ({} then {} them) or remove {} from the config (the relay's next \
                 start deletes {} checkpoint, {})",
                quoted(&disabled),
                one(&disabled, "it", "they"),
                one(&disabled, "receives", "receive"),
                one(&disabled, "it", "them"),
                one(&disabled, "its", "their"),
                files(&disabled)
            ));
        }
        let unconfigured = of(|h| matches!(h, Holder::Unconfigured { .. }));
        if !unconfigured.is_empty() {
            ways.push(format!(
                "start the relay (it delivers them to {} if {}, and otherwise deletes {} \
                 checkpoint, {})",
                quoted(&unconfigured),
                one(
                    &unconfigured,
                    "it is an admin API destination",
                    "they are admin API destinations"
                ),
                one(&unconfigured, "its", "their"),
                files(&unconfigured)
            ));
        }
        ways.push("raise `max_bytes`".into());
        let last = ways.pop().unwrap_or_default();
        if ways.is_empty() {
            write!(f, "To make room: {last}")?;
        } else {
            write!(f, "To make room: {}; or {last}", ways.join("; "))?;
        }
        f.write_str(". Then salvage again")
    }
}

/// Holds, while salvage appends, the records no destination has
/// acknowledged: a `block` cursor at each checkpoint in the ring's
/// `cursors` folder (whatever the destination's `when_full`, and whether
/// it is enabled or not), and at the oldest record for each enabled
/// destination of `configured` without one (it starts there). With none of
/// those, at the oldest record: every record is still to be delivered. A
/// disabled destination without a checkpoint holds nothing: the running
/// relay does not hold the ring for it either, and it starts at the oldest
/// record once enabled.
fn hold_undelivered(
    ring: &Ring,
    configured: &[ConfiguredDestination],
) -> Result<Vec<(Cursor, Holder)>, BufferError> {
    let dir = ring.settings().dir.join("cursors");
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
                .filter(|n| checkpoint::path_for(&dir, n).exists())
                .collect()
        })
        .unwrap_or_default();
    stems.sort();
    let mut held = Vec::new();
    // never committed: the checkpoints stay as they are
    for stem in &stems {
        let file = checkpoint::path_for(&dir, stem);
        let of = configured
            .iter()
            .find(|d| checkpoint::path_for(&dir, &d.name) == file);
        let name = of.map_or(stem.as_str(), |d| d.name.as_str());
        let cursor = ring.cursor(name, WhenFull::Block)?;
        let checkpoint = cursor.read_position();
        let name = name.to_string();
        let holder = match of {
            Some(d) if d.enabled => Holder::Enabled {
                name,
                checkpoint: Some(checkpoint),
            },
            Some(_) => Holder::Disabled { name, checkpoint },
            None => Holder::Unconfigured { name, checkpoint },
        };
        held.push((cursor, holder));
    }
    for d in configured.iter().filter(|d| d.enabled) {
        if !checkpoint::path_for(&dir, &d.name).exists() {
            let cursor = ring.cursor(&d.name, WhenFull::Block)?;
            let holder = Holder::Enabled {
                name: d.name.clone(),
                checkpoint: None,
            };
            held.push((cursor, holder));
        }
    }
    if held.is_empty() {
        let cursor = ring.cursor("salvage: all records", WhenFull::Block)?;
        held.push((cursor, Holder::Everything));
    }
    Ok(held)
}

/// Salvages every quarantined file of `ring`, holding the records that
/// the destinations of `configured` (and every checkpoint) have not received.
pub fn salvage(
    ring: &Ring,
    configured: &[ConfiguredDestination],
) -> Result<Vec<Salvaged>, SalvageError> {
    salvage_reporting(ring, configured, None)
}

/// Opens the ring in `settings.dir` (repairing it, as `run` does) and
/// salvages every quarantined file: `buffer salvage`, for the destinations
/// of the config file `configured`. What the open found is reported less
/// what the salvage brought back. Returns the ring, what its open found,
/// and what was salvaged.
pub fn open_and_salvage(
    settings: RingSettings,
    configured: &[ConfiguredDestination],
) -> Result<(Ring, RecoveryReport, Vec<Salvaged>), SalvageError> {
    let (ring, mut report) = Ring::open_unreported(settings)?;
    let done = salvage_reporting(&ring, configured, Some(&mut report))?;
    Ok((ring, report, done))
}

/// Salvages every quarantined file of `ring`; with `opened` (what opening
/// `ring` found, not reported yet), reports that too, less what the salvage
/// brought back. The notices are written before the records no destination
/// has received stop being held, whether the salvage succeeded or not.
fn salvage_reporting(
    ring: &Ring,
    configured: &[ConfiguredDestination],
    opened: Option<&mut RecoveryReport>,
) -> Result<Vec<Salvaged>, SalvageError> {
    let held = match hold_undelivered(ring, configured) {
        Ok(held) => held,
        Err(e) => {
            // nothing salvaged: what the open found is reported as it is
            if let Some(report) = opened {
                ring.report_recovery(report, report.notices());
            }
            return Err(e.into());
        }
    };
    let mut done = Vec::new();
    let result = salvage_files(ring, &held, opened.as_deref(), &mut done);
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
    let synced = ring
        .sync()
        .map_err(io_err("syncing ring"))
        .map_err(SalvageError::from);
    result.and(synced).map(|()| done)
}

/// Why the append of `events` (the records of `file`) was refused: the
/// holders of the records it would overwrite, all of them, by what they are.
fn refusal(
    ring: &Ring,
    held: &[(Cursor, Holder)],
    file: &Path,
    events: &[EncodedEvent],
    e: AppendError,
) -> SalvageError {
    let names = match e {
        AppendError::Full(_) => ring.holding_back(events),
        _ => Vec::new(),
    };
    let holders: Vec<Holder> = held
        .iter()
        .filter(|(c, _)| names.iter().any(|n| n == c.name()))
        .map(|(_, h)| h.clone())
        .collect();
    if holders.is_empty() {
        return SalvageError::Append {
            file: file.to_path_buf(),
            records: events.len(),
            source: e,
        };
    }
    SalvageError::NoRoom {
        file: file.to_path_buf(),
        records: events.len(),
        holders,
        cursors: ring.settings().dir.join("cursors"),
    }
}

fn salvage_files(
    ring: &Ring,
    held: &[(Cursor, Holder)],
    opened: Option<&RecoveryReport>,
    out: &mut Vec<Salvaged>,
) -> Result<(), SalvageError> {
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
        let appended = ring
            .append(&events)
            .map_err(|e| refusal(ring, held, &file, &events, e))?;
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
