//! Destinations: where events go. One file per wire format, each a small
//! [`Sink`] (or [`http_transport::HttpFormat`]) implementation; the shared loop
//! in `worker` does batching, concurrency, retries, dead letters and status
//! for all of them.

pub mod backoff;
pub mod batch;
pub mod blackhole;
pub mod datadog;

pub mod dead_letter;
pub mod elasticsearch;
pub mod file;
pub mod filter;
pub mod http;
pub mod http_transport;
pub mod redact;
pub mod registry;
pub mod sentinel;
pub mod settings;
pub mod sink;
pub mod splunk_hec;
pub mod status;
pub mod stdout;
pub mod sumo_logic;
pub mod syslog;
pub mod throttle;
pub(crate) mod tls_problem;

pub mod worker;

pub use batch::{Batch, BatchEvent};
pub use settings::{CommonSettings, WhenFull};
pub use sink::{Delivery, Sink, TestOutcome};
pub use status::{DestinationStatus, StatusSnapshot};
pub use worker::Destination;

use std::path::{Path, PathBuf};

/// What a wire format's `build` function gets besides its own settings table.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The destination's name (`[destinations.NAME]`).
    pub name: String,
    /// Folder of the config file: relative paths (CA files, output files) resolve against it.
    pub base_dir: PathBuf,
    /// The relay's data directory (resolved).
    pub data_dir: PathBuf,
}

impl BuildContext {
    /// `destinations.NAME`, for error key paths (NAME quoted when it is no
    /// TOML bare key, as [`SectionConfig::path`](crate::config::SectionConfig::path)).
    pub fn path(&self) -> String {
        format!("destinations.{}", crate::config::quote_key(&self.name))
    }
    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}
