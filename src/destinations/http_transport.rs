//! The shared HTTP transport: one rustls-backed client per destination, gzip,
//! timeouts, and the small [`HttpFormat`] trait each HTTP wire format
//! implements (build the request for a batch, classify the answer).

use super::batch::Batch;
use super::sink::Delivery;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// One HTTP request built from (part of) a batch.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Uncompressed body; the transport gzips it when the destination asks.
    pub body: Bytes,
    /// Indices into the batch's events that this request carries.
    pub indices: Vec<usize>,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A wire format over HTTP.
pub trait HttpFormat: Send + Sync + 'static {
    /// Builds the requests for a batch (several when the vendor limits a
    /// request's size or entry count). `Err` rejects the batch for good.
    fn encode(&self, batch: &Batch) -> Result<Vec<EncodedRequest>, String>;

    /// Classifies the answer to `req`. Indices in a `Partial` are positions
    /// within `req.indices` (the transport maps them back to the batch).
    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery;
}
