//! `stdout`: canonical events as NDJSON on standard output (for containers
//! and for watching the stream by hand).

use super::batch::Batch;
use super::file::ndjson;
use super::sink::{Delivery, Sink};
use super::BuildContext;
use crate::config::{table_into, ConfigError};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

/// Writes batches to standard output, one write per batch.
pub struct StdoutSink;

/// Builds a `stdout` destination.
pub fn build(table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let _: Settings = table_into(&table, &ctx.path())?;
    Ok(Arc::new(StdoutSink))
}

impl Sink for StdoutSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let buf = ndjson(batch);
            let mut out = std::io::stdout().lock();
            match out.write_all(&buf).and_then(|_| out.flush()) {
                Ok(()) => Delivery::Delivered,
                Err(e) => Delivery::retry(format!("writing to stdout: {e}")),
            }
        })
    }

    fn target(&self) -> String {
        "stdout".into()
    }
}
