//! A destination cursor's durable checkpoint: one small JSON file per cursor,
//! replaced atomically (write temp file, fsync, rename, fsync the folder), so
//! a crash leaves either the old or the new checkpoint, never a torn one.

use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a cursor persists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every record with a smaller sequence number is delivered (or dropped by policy).
    pub seq: u64,
    /// Records dropped for this destination over its life (overflow, age, damage).
    pub dropped: u64,
    /// Where the ring last moved the cursor past records it reused or
    /// expired (also records it had read, a batch in flight among them,
    /// whose checkpoint the ring wrote before reusing them): those below
    /// it that it had not read are in `dropped` already, so a restart that
    /// finds them gone does not count them again. (0 in files written
    /// before it was kept.)
    #[serde(default)]
    pub skipped_to: u64,
}

impl Checkpoint {
    /// The newer of two checkpoints of one cursor, field by field: each
    /// only ever grows.
    pub fn max(self, other: Checkpoint) -> Checkpoint {
        Checkpoint {
            seq: self.seq.max(other.seq),
            dropped: self.dropped.max(other.dropped),
            skipped_to: self.skipped_to.max(other.skipped_to),
        }
    }
}

/// The checkpoint file of cursor `name` in `dir`.
pub fn path_for(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.json", sanitize(name)))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads a checkpoint; `Ok(None)` when there is none. A damaged file is an
/// error the caller reports (and then starts the cursor at the oldest record).
pub fn load(path: &Path) -> io::Result<Option<Checkpoint>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Atomically replaces the checkpoint at `path`.
pub fn store(path: &Path, cp: &Checkpoint) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(cp).map_err(io::Error::other)?)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Deletes the checkpoint at `path` (and makes that durable); false when
/// there was none.
pub fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_load() {
        let d = tempfile::tempdir().unwrap();
        let p = path_for(d.path(), "splunk/main");
        assert!(p.ends_with("splunk_main.json"));
        assert_eq!(load(&p).unwrap(), None);
        store(
            &p,
            &Checkpoint {
                seq: 42,
                dropped: 3,
                skipped_to: 40,
            },
        )
        .unwrap();
        assert_eq!(
            load(&p).unwrap(),
            Some(Checkpoint {
                seq: 42,
                dropped: 3,
                skipped_to: 40,
            })
        );
        // a file of before `skipped_to`
        fs::write(&p, br#"{"seq":7,"dropped":1}"#).unwrap();
        assert_eq!(
            load(&p).unwrap(),
            Some(Checkpoint {
                seq: 7,
                dropped: 1,
                skipped_to: 0,
            })
        );
        fs::write(&p, b"{\"seq\":").unwrap();
        assert!(load(&p).is_err());
    }
}
