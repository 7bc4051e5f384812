//! `blackhole`: accepts and discards every batch (benchmarks, and measuring
//! the relay without a destination's cost). Counts what it swallowed.

use super::batch::Batch;
use super::sink::{Delivery, Sink};
use super::BuildContext;
use crate::config::{table_into, ConfigError};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

/// Discards batches.
#[derive(Default)]
pub struct BlackholeSink {
    pub events: AtomicU64,
    pub bytes: AtomicU64,
}

/// Builds a `blackhole` destination.
pub fn build(table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let _: Settings = table_into(&table, &ctx.path())?;
    Ok(Arc::new(BlackholeSink::default()))
}

impl Sink for BlackholeSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        self.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.bytes
            .fetch_add(batch.body_bytes() as u64, Ordering::Relaxed);
        Box::pin(async { Delivery::Delivered })
    }

    fn target(&self) -> String {
        "blackhole".into()
    }
}
