//! The shared HTTP transport: one rustls-backed client per destination, gzip,
//! timeouts, and the small [`HttpFormat`] trait each HTTP wire format
//! implements (build the request for a batch, classify the answer).
//!
//! [`HttpSink`] turns any [`HttpFormat`] into a [`Sink`](crate::destinations::sink::Sink): it sends the
//! requests a format builds for a batch one after the other, bisects a request
//! the server refuses as too large (413), refreshes credentials once on 401
//! when the format keeps a token, runs the format's post-acceptance `confirm`
//! (e.g. Splunk indexer acknowledgement), and merges the answers into one
//! [`Delivery`] with indices into the batch.
//!
//! [`HttpSettings`] are the keys every HTTP destination shares (`endpoint`,
//! `ca`, `timeout`, `compression`, `headers`), peeled off the table before a
//! format reads its own keys.
//!
//! The parts: [`settings`] (the shared keys), [`client`] (the client and
//! its errors), [`pack`] (entries into bodies within a vendor's limits),
//! [`answer`] (reading a server's answer), [`outcome`] (merging the answers
//! of a batch's requests) and [`sink`] (the loop that sends them).

mod answer;
mod client;
mod outcome;
mod pack;
mod settings;
mod sink;

pub use answer::{
    body_excerpt, default_classify, is_retryable_status, not_the_documented_success, redirected,
    refused_as_too_large, request_size, retry_after,
};
pub use client::{gzip, AuthFailure, ClientError, HttpClient, TransportError};
#[cfg(test)]
pub use pack::pack;
pub use pack::{posts, Framing, Limits, Packed, Packer};
pub use settings::{
    basic_auth, local_hostname, origin_of, secret_header, validate_endpoint, Compression,
    HttpSettings, OwnHeader, DEFAULT_GZIP_LEVEL, HTTP_KEYS,
};
pub use sink::{client_for, HttpSink};

use super::batch::Batch;
use super::sink::Delivery;
use bytes::Bytes;
use futures::future::BoxFuture;
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

/// What a format makes of a batch: the requests to send, and the events it
/// refuses up front (e.g. a single entry above the vendor's size limit), with
/// the reason. Every batch index appears in exactly one of the two.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    pub requests: Vec<EncodedRequest>,
    pub rejected: Vec<(usize, String)>,
}

/// A wire format over HTTP.
pub trait HttpFormat: Send + Sync + 'static {
    /// Builds the requests for a batch (several when the vendor limits a
    /// request's size or entry count).
    fn encode(&self, batch: &Batch) -> Encoded;

    /// Classifies the answer to `req`. Indices in a `Partial` are positions
    /// within `req.indices` (the transport maps them back to the batch).
    fn classify(&self, req: &EncodedRequest, resp: &HttpResponse) -> Delivery;

    /// The `Authorization` value for the next request, when the format
    /// obtains it at run time (OAuth tokens).
    fn authorize<'a>(
        &'a self,
        _client: &'a HttpClient,
    ) -> BoxFuture<'a, Result<Option<HeaderValue>, AuthFailure>> {
        Box::pin(async { Ok(None) })
    }

    /// Called when the server answered 401: drop cached credentials. Returns
    /// true when one immediate retry with fresh credentials makes sense.
    fn invalidate(&self) -> bool {
        false
    }

    /// Runs after `classify` said `Delivered`, e.g. to wait for an indexer
    /// acknowledgement. Its answer replaces `Delivered` (indices as in `classify`).
    fn confirm<'a>(
        &'a self,
        _client: &'a HttpClient,
        _req: &'a EncodedRequest,
        _resp: &'a HttpResponse,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async { Delivery::Delivered })
    }

    /// Whether the request URL is itself a secret (a Sumo Logic collector
    /// code, a webhook token): a redirect's `Location` is then shown with
    /// its path redacted, as the destination's target is (see [`redirected`]).
    fn url_is_secret(&self) -> bool {
        false
    }

    /// A health check for `test-destination`, run before the probe event:
    /// `Some(Ok(message))`, `Some(Err(problem))`, or `None` when the vendor has none.
    fn health<'a>(
        &'a self,
        _client: &'a HttpClient,
    ) -> BoxFuture<'a, Option<Result<String, String>>> {
        Box::pin(async { None })
    }
}
