//! The runtime the destination loops run on, apart from the one that runs
//! the sources and the admin API.
//!
//! Why apart: an ingest task wakes the destinations after every append. On
//! tokio's multi-thread scheduler a task woken from a worker thread goes to
//! that thread's LIFO slot, which other workers cannot steal, so each
//! destination loop kept running on the thread of the connection that woke
//! it and a 2-core machine did ingest and delivery on one core (measured with
//! the e2e bench: one thread at ~95%, the other idle). A wake that crosses
//! runtimes goes through the delivery runtime's own queue instead, and its
//! idle workers pick it up.

use std::future::Future;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// Owns the delivery runtime; shuts it down without blocking when dropped
/// (dropping a runtime the normal way is not allowed inside async code).
pub struct DeliveryRuntime {
    rt: Option<Runtime>,
}

impl DeliveryRuntime {
    /// Starts the runtime with one worker per core.
    pub fn start() -> std::io::Result<Self> {
        let rt = Builder::new_multi_thread()
            .enable_all()
            .thread_name("siem-delivery")
            .build()?;
        Ok(DeliveryRuntime { rt: Some(rt) })
    }

    /// Runs `fut` on the delivery runtime.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt
            .as_ref()
            .expect("the delivery runtime lives as long as its owner")
            .spawn(fut)
    }
}

impl Drop for DeliveryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_delivery_threads_and_drop_inside_async_code_is_fine() {
        let rt = DeliveryRuntime::start().unwrap();
        let name = rt
            .spawn(async { std::thread::current().name().map(str::to_string) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("siem-delivery"));
        drop(rt); // would panic if the runtime were dropped normally here
    }
}
