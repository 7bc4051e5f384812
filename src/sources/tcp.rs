//! `syslog_tcp`: syslog over plain TCP with RFC 6587 framing (octet counting
//! or LF, detected per frame). The connection handling lives in
//! [`super::stream`] and is shared with `syslog_tls`.

use super::log_limit::Warnings;
use super::metrics::SourceMetrics;
use super::read_budget::ReadBudget;
use super::stream::{accept_loop, warning_text, StreamShared};
use super::tls::LiveTls;
use super::{resolve, SourceContext, SourceError};
use crate::config::{ByteSize, ConfigError, HumanDuration, SectionConfig};
use crate::parse::{FramerConfig, Oversize};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `[sources.NAME]` with `type = "syslog_tcp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub address: String,
    /// Longest accepted message (default 64KiB).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: ByteSize,
    /// `truncate` (default) or `skip` an oversized message.
    #[serde(default)]
    pub oversize: Oversize,
    /// Concurrent connections; excess ones are refused and counted (default 1024).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection silent this long is closed (default 10m).
    #[serde(default = "default_idle")]
    pub idle_timeout: HumanDuration,
    /// Bytes read and not yet in the ring, all connections together
    /// (default 512KiB, eight full reads); past it, connections wait before
    /// parsing what they read and read nothing more. Their parsed records
    /// take about four times as much (each record's buffer is sized for the
    /// worst case of JSON quoting), which is why the default is small: on
    /// the e2e bench 16 busy connections peaked at 8–9 MiB anon RSS with
    /// 512KiB, 15–19 with 2MiB and 23–28 with 8MiB, and with 512KiB the
    /// relay used less CPU per event than with 2MiB in 13 of 14 paired runs
    /// (records appended while still in the cache; BENCHMARKS.md). One
    /// connection holds at most 5 reads (320KiB), so it is not slowed.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: ByteSize,
}

/// Limits shared by `syslog_tcp` and `syslog_tls` (read from their settings).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub max_message_bytes: ByteSize,
    pub oversize: Oversize,
    pub max_connections: usize,
    pub idle_timeout: HumanDuration,
    pub queue_bytes: ByteSize,
}

fn default_max_message() -> ByteSize {
    ByteSize(64 * 1024)
}
fn default_max_connections() -> usize {
    1024
}
fn default_queue_bytes() -> ByteSize {
    ByteSize(512 << 10)
}
fn default_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

impl Settings {
    pub fn from_section(section: &SectionConfig) -> Result<Self, ConfigError> {
        Self::from_table(&section.table, section)
    }

    /// From `table` (a section's keys, or what is left of them after another
    /// source type took its own), with errors named after `section`.
    pub fn from_table(table: &toml::Table, section: &SectionConfig) -> Result<Self, ConfigError> {
        let s: Settings = crate::config::table_into(table, &section.path())?;
        s.stream().check(section)?;
        Ok(s)
    }

    pub fn stream(&self) -> StreamSettings {
        StreamSettings {
            max_message_bytes: self.max_message_bytes,
            oversize: self.oversize,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            queue_bytes: self.queue_bytes,
        }
    }
}

impl StreamSettings {
    /// Range checks serde cannot express.
    pub fn check(&self, section: &SectionConfig) -> Result<(), ConfigError> {
        if self.max_message_bytes.0 == 0 || self.max_message_bytes.0 > 64 << 20 {
            return Err(ConfigError::new(
                format!("{}.max_message_bytes", section.path()),
                "must be between 1 byte and 64MiB",
            ));
        }
        if self.queue_bytes.0 < 64 << 10 || self.queue_bytes.0 > 4 << 30 {
            return Err(ConfigError::new(
                format!("{}.queue_bytes", section.path()),
                "must be between 64KiB and 4GiB",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                format!("{}.max_connections", section.path()),
                "must be at least 1",
            ));
        }
        if self.idle_timeout.0 < std::time::Duration::from_millis(100) {
            return Err(ConfigError::new(
                format!("{}.idle_timeout", section.path()),
                "must be at least 100ms (a connection idle this long is closed)",
            ));
        }
        Ok(())
    }

    pub(crate) fn shared(&self, name: &str, ctx: &SourceContext) -> Arc<StreamShared> {
        let metrics = SourceMetrics::new(name);
        Arc::new(StreamShared {
            name: name.to_string(),
            ingest: ctx.ingest.clone(),
            timezone: ctx.timezone,
            framer: FramerConfig {
                max_message_bytes: self.max_message_bytes.0 as usize,
                oversize: self.oversize,
            },
            idle_timeout: self.idle_timeout.0,
            max_connections: self.max_connections,
            budget: ReadBudget::new(self.queue_bytes.0 as usize, metrics.clone()),
            metrics,
            warnings: Warnings::new(name, warning_text),
        })
    }
}

/// Binds a TCP listener for a stream source.
pub(crate) async fn bind(
    name: &str,
    address: &str,
) -> Result<(TcpListener, SocketAddr), SourceError> {
    let addr = resolve(name, address)?;
    let bind_err = |source| SourceError::Bind {
        name: name.to_string(),
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

/// Starts a stream listener (plain when `tls` is `None`).
pub(crate) async fn start_stream(
    name: &str,
    address: &str,
    stream: &StreamSettings,
    tls: Option<Arc<LiveTls>>,
    ctx: SourceContext,
) -> Result<(SocketAddr, JoinHandle<()>), SourceError> {
    let (listener, local) = bind(name, address).await?;
    let shared = stream.shared(name, &ctx);
    tracing::info!(source = name, address = %local, tls = tls.is_some(), "listening");
    let task = tokio::spawn(accept_loop(listener, shared, tls, ctx.shutdown));
    Ok((local, task))
}

/// Starts a `syslog_tcp` source.
pub async fn start(
    name: &str,
    settings: Settings,
    ctx: SourceContext,
) -> Result<(SocketAddr, JoinHandle<()>), SourceError> {
    start_stream(name, &settings.address, &settings.stream(), None, ctx).await
}
