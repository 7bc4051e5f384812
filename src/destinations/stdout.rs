//! `stdout`: canonical events as NDJSON on standard output (for containers
//! and for watching the stream by hand).

use super::batch::Batch;
use super::file::Ndjson;
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
pub struct StdoutSink {
    ndjson: Ndjson,
}

/// Builds a `stdout` destination.
pub fn build(table: toml::Table, ctx: &BuildContext) -> Result<Arc<dyn Sink>, ConfigError> {
    let _: Settings = table_into(&table, &ctx.path())?;
    Ok(Arc::new(StdoutSink {
        ndjson: Ndjson::default(),
    }))
}

impl Sink for StdoutSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let written = self.ndjson.write(batch, |buf| {
                let mut out = std::io::stdout().lock();
                out.write_all(buf).and_then(|_| out.flush())
            });
            match written {
                Ok(()) => Delivery::Delivered,
                Err(e) => Delivery::retry(format!("writing to stdout: {e}")),
            }
        })
    }

    fn target(&self) -> String {
        "stdout".into()
    }
}
