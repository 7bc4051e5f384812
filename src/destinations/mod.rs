//! Destinations: where events go. One file per wire format, each a small
//! [`Sink`] (or [`http_transport::HttpFormat`]) implementation; the shared loop
//! in `worker` does batching, concurrency, retries, dead letters and status
//! for all of them.

pub mod batch;
pub mod http_transport;
pub mod settings;
pub mod sink;

pub use batch::{Batch, BatchEvent};
pub use settings::{CommonSettings, WhenFull};
pub use sink::{Delivery, Sink, TestOutcome};
