//! `file`: canonical events as NDJSON, one per line, with size-based
//! rotation (`events.ndjson` → `events.ndjson.1` → … `.N`, oldest removed).

use super::batch::Batch;
use super::sink::{Delivery, Sink};
use super::BuildContext;
use crate::config::{table_into, ByteSize, ConfigError};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    path: PathBuf,
    /// Rotate when the file would grow past this (0 = never).
    #[serde(default = "default_rotate")]
    rotate_bytes: ByteSize,
    /// Rotated files kept.
    #[serde(default = "default_keep")]
    keep_files: usize,
    /// fsync after every batch (an acknowledged batch survives a power cut).
    #[serde(default)]
    fsync: bool,
}

fn default_rotate() -> ByteSize {
    ByteSize(100 << 20)
}
fn default_keep() -> usize {
    5
}

struct Open {
    file: File,
    /// The length of the whole lines written: where the next batch goes.
    len: u64,
    /// A failed write left bytes past `len` that truncating could not remove yet.
    torn: bool,
}

/// The NDJSON file sink.
pub struct FileSink {
    path: PathBuf,
    rotate_bytes: u64,
    keep: usize,
    fsync: bool,
    open: Mutex<Option<Open>>,
    ndjson: Ndjson,
}

/// Builds a `file` destination.
pub fn build(table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let s: Settings = table_into(&table, &ctx.path())?;
    let path = ctx.resolve(&s.path);
    if path.is_dir() {
        return Err(ConfigError::new(
            format!("{}.path", ctx.path()),
            format!("{} is a directory", path.display()),
        ));
    }
    Ok(Arc::new(FileSink {
        path,
        rotate_bytes: s.rotate_bytes.0,
        keep: s.keep_files.max(1),
        fsync: s.fsync,
        open: Mutex::new(None),
        ndjson: Ndjson::default(),
    }))
}

/// `path.n`, the `n`th rotated file of `path`.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    p.into()
}

/// The files a `file` destination with settings `table` writes: its
/// `path` and, when it rotates, `path.1` … `path.<keep_files>`; `None`
/// when the settings do not read (their errors are `build`'s to report).
pub fn files_written(table: &toml::Table, ctx: &BuildContext) -> Option<Vec<PathBuf>> {
    /// The keys that name files, read from a section that has all its
    /// keys (the common ones too).
    #[derive(Deserialize)]
    struct Files {
        path: PathBuf,
        #[serde(default = "default_rotate")]
        rotate_bytes: ByteSize,
        #[serde(default = "default_keep")]
        keep_files: usize,
    }
    let s: Files = table_into(table, &ctx.path()).ok()?;
    let path = ctx.resolve(&s.path);
    let rotations = match s.rotate_bytes.0 {
        0 => 0,
        _ => s.keep_files.max(1),
    };
    let mut files: Vec<PathBuf> = (1..=rotations).map(|n| rotated(&path, n)).collect();
    files.insert(0, path);
    Some(files)
}

impl FileSink {
    fn rotated(&self, n: usize) -> PathBuf {
        rotated(&self.path, n)
    }

    fn rotate(&self) -> io::Result<()> {
        let _ = std::fs::remove_file(self.rotated(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Opens (creates) the file for appending, at its length on disk.
    fn open_file(&self) -> io::Result<Open> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let len = file.metadata()?.len();
        Ok(Open {
            file,
            len,
            torn: false,
        })
    }

    fn write_batch(&self, buf: &[u8]) -> io::Result<()> {
        let mut guard = self.open.lock().unwrap();
        if guard.is_none() {
            *guard = Some(self.open_file()?);
        }
        let o = guard.as_mut().expect("opened above");
        if o.torn {
            o.file.set_len(o.len)?;
            o.torn = false;
        }
        // against the file's length on disk, also for the first batch after
        // a start (it was let through whatever the file held)
        if self.rotate_bytes > 0 && o.len > 0 && o.len + buf.len() as u64 > self.rotate_bytes {
            *guard = None;
            self.rotate()?;
            *guard = Some(self.open_file()?);
        }
        let o = guard.as_mut().expect("opened above");
        let written = o.file.write_all(buf).and_then(|()| match self.fsync {
            true => o.file.sync_data(),
            false => Ok(()),
        });
        if let Err(e) = written {
            // a full disk can take part of the batch: cut it off, so that
            // the retry writes the batch whole, after the last whole line
            // (not glued to a torn one, and not twice)
            o.torn = o.file.set_len(o.len).is_err();
            return Err(e);
        }
        o.len += buf.len() as u64;
        Ok(())
    }
}

/// A batch's NDJSON lines, written into a buffer kept between batches: a
/// fresh one per batch (~300 KiB for 500 events) went through
/// `mmap`/`munmap` each time and raised glibc's trim threshold, so the
/// relay kept several MiB more at rest after a burst.
#[derive(Default)]
pub struct Ndjson {
    kept: Mutex<Vec<u8>>,
}

impl Ndjson {
    /// Calls `write` with the NDJSON lines of `batch`.
    pub fn write<T>(&self, batch: &Batch, write: impl FnOnce(&[u8]) -> T) -> T {
        // taken, not held: concurrent sends each get a buffer
        let mut buf = std::mem::take(&mut *self.kept.lock().unwrap());
        buf.clear();
        buf.reserve(batch.body_bytes() + batch.len());
        for e in &batch.events {
            buf.extend_from_slice(e.body());
            buf.push(b'\n');
        }
        let result = write(&buf);
        *self.kept.lock().unwrap() = buf;
        result
    }
}

impl Sink for FileSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let written = self.ndjson.write(batch, |buf| {
                tokio::task::block_in_place(|| self.write_batch(buf))
            });
            match written {
                Ok(()) => Delivery::Delivered,
                Err(e) => Delivery::retry(format!("writing {}: {e}", self.path.display())),
            }
        })
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }

    fn close<'a>(&'a self) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(o) = self.open.lock().unwrap().take() {
                let _ = o.file.sync_all();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::BatchEvent;
    use crate::event::{RecordMeta, Severity};

    fn batch(n: usize) -> Batch {
        let meta = RecordMeta {
            timestamp_ms: 0,
            received_ms: 0,
            severity: Severity::Info,
            category: 0,
            tenant_hash: 0,
            flags: 0,
        };
        Batch::new(
            (0..n)
                .map(|i| BatchEvent::new(i as u64, meta, format!("{{\"n\":{i}}}").into()))
                .collect(),
        )
    }

    #[test]
    fn the_kept_ndjson_buffer_holds_only_the_current_batch() {
        let nd = Ndjson::default();
        let first = nd.write(&batch(3), |b| b.to_vec());
        assert_eq!(first, b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
        let second = nd.write(&batch(1), |b| b.to_vec());
        assert_eq!(second, b"{\"n\":0}\n");
        // a nested (concurrent) write gets a buffer of its own
        let (outer, inner) = nd.write(&batch(2), |o| {
            (o.to_vec(), nd.write(&batch(1), |i| i.to_vec()))
        });
        assert_eq!(outer, b"{\"n\":0}\n{\"n\":1}\n");
        assert_eq!(inner, b"{\"n\":0}\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn writes_ndjson_and_rotates() {
        let d = tempfile::tempdir().unwrap();
        let ctx = BuildContext {
            name: "f".into(),
            base_dir: d.path().into(),
            data_dir: d.path().into(),
        };
        let t: toml::Table =
            toml::from_str("path = \"out/e.ndjson\"\nrotate_bytes = 100\nkeep_files = 2\n")
                .unwrap();
        let sink = build(t, &ctx).unwrap();
        for _ in 0..4 {
            assert_eq!(sink.send(&batch(5)).await, Delivery::Delivered); // 5 lines of 8 bytes = 40 bytes
        }
        sink.close().await;
        let cur = std::fs::read_to_string(d.path().join("out/e.ndjson")).unwrap();
        assert_eq!(cur.lines().count(), 10);
        assert_eq!(cur.lines().next().unwrap(), "{\"n\":0}");
        assert!(d.path().join("out/e.ndjson.1").exists());
        assert!(!d.path().join("out/e.ndjson.2").exists());

        // after a restart (a new sink), the first batch is checked against
        // what the file already holds (80 bytes): it rotates first
        let t: toml::Table =
            toml::from_str("path = \"out/e.ndjson\"\nrotate_bytes = 100\nkeep_files = 2\n")
                .unwrap();
        let sink = build(t, &ctx).unwrap();
        assert_eq!(sink.send(&batch(5)).await, Delivery::Delivered);
        sink.close().await;
        let cur = std::fs::read_to_string(d.path().join("out/e.ndjson")).unwrap();
        assert_eq!(cur.len(), 40, "{cur}");
        let prev = std::fs::read_to_string(d.path().join("out/e.ndjson.1")).unwrap();
        assert_eq!(prev.len(), 80);
        assert!(d.path().join("out/e.ndjson.2").exists());
    }

    #[test]
    fn unknown_key_is_named() {
        let d = tempfile::tempdir().unwrap();
        let ctx = BuildContext {
            name: "f".into(),
            base_dir: d.path().into(),
            data_dir: d.path().into(),
        };
        let t: toml::Table = toml::from_str("path = \"x\"\nrotate = 1\n").unwrap();
        assert_eq!(build(t, &ctx).err().unwrap().path, "destinations.f.rotate");
    }
}
