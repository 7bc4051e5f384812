//! One destination's HTTP client (rustls with the ring provider, the
//! webpki roots plus an optional private CA), gzip of request bodies, and
//! why a request got no answer.

use super::settings::{Compression, HttpSettings};
use super::{EncodedRequest, HttpResponse};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why a request got no HTTP answer.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The error and its causes, without the URL.
    #[error("request failed: {0}")]
    Request(String),
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("compressing the body failed: {0}")]
    Compress(std::io::Error),
    #[error("credentials: {0}")]
    Auth(AuthFailure),
}

/// Why a format could not obtain the credentials for a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthFailure {
    /// The credentials were refused (a wrong secret, tenant or scope):
    /// retrying cannot help, the batch is rejected as a 401 would be.
    #[error("{0}")]
    Refused(String),
    /// The credentials could not be obtained now (the token endpoint
    /// unreachable, throttled or failing); `after` from its `Retry-After`.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        after: Option<Duration>,
    },
}

/// Why an HTTP client could not be built.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {source}")]
    CaRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA file {0} holds no usable PEM certificate")]
    CaEmpty(PathBuf),
    #[error("CA file {path}: {message}")]
    CaInvalid { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Largest response body read (bulk answers for big batches are a few MB).
const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// One destination's HTTP client: rustls with the ring provider, the
/// webpki roots plus an optional private CA, a timeout, gzip, extra headers.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
    /// The gzip level of request bodies; `None`: sent as they are.
    gzip: Option<u32>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn load_ca(path: &Path, roots: &mut rustls::RootCertStore) -> Result<(), ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::CaRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| ClientError::CaInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| ClientError::CaInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(ClientError::CaEmpty(path.to_path_buf()));
    }
    Ok(())
}

impl HttpClient {
    /// Builds the client for `settings`.
    pub fn new(settings: &HttpSettings) -> Result<HttpClient, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &settings.ca {
            load_ca(ca, &mut roots)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // a 3xx is an answer (see [`redirected`]), never followed
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(HttpClient {
            client,
            timeout: settings.timeout,
            gzip: (settings.compression == Compression::Gzip).then_some(settings.compression_level),
            headers: settings.headers.clone(),
        })
    }

    /// Sends a batch request: gzip when configured, the destination's extra
    /// headers, then `auth` as `Authorization`.
    pub async fn execute(
        &self,
        req: &EncodedRequest,
        auth: Option<&HeaderValue>,
    ) -> Result<HttpResponse, TransportError> {
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            headers.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(a) = auth {
            headers.insert(http::header::AUTHORIZATION, a.clone());
        }
        let body = if let Some(level) = self.gzip {
            headers.insert(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
            gzip(&req.body, level).map_err(TransportError::Compress)?
        } else {
            req.body.clone()
        };
        self.raw(req.method.clone(), &req.url, headers, body).await
    }

    /// Sends a side request (token, ack poll, health) as given: no gzip, no extra headers.
    /// A request to the destination's own server besides the batches (the
    /// HEC acknowledgement poll and health check): [`raw`](Self::raw) with
    /// the destination's extra `headers` (a gateway's key) added where
    /// `headers` does not set them. Requests to other hosts (a token
    /// endpoint) use `raw`, and never carry them.
    pub async fn to_destination(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        for (k, v) in &self.headers {
            if !headers.contains_key(k) {
                headers.insert(k.clone(), v.clone());
            }
        }
        self.raw(method, url, headers, body).await
    }

    /// One request as given: only `headers`, never the destination's extra ones.
    pub async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout(self.timeout)
            } else {
                // Never the URL: it may carry a secret (Sumo Logic).
                TransportError::Request(error_chain(&e.without_url()))
            }
        };
        let mut resp = self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(map_err)?;
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TransportError::BodyTooLarge(MAX_RESPONSE_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

/// `error: cause: cause`, each level once; a failed TLS handshake's cause
/// in words ([`tls_problem`](crate::destinations::tls_problem)), not in
/// rustls's type names.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(words) = crate::destinations::tls_problem::of_error(s) {
            out.push_str(": ");
            out.push_str(&words);
            break;
        }
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A request body as sent with `compression = "gzip"` at `level` (1–9;
/// [`DEFAULT_GZIP_LEVEL`](super::DEFAULT_GZIP_LEVEL) is the fastest, see the `encoders` bench's `gzip`
/// rows).
///
/// The deflate is zlib-rs's (flate2's `zlib-rs` backend, pure Rust): on
/// a batch of varied canonical events it compressed and inflated about
/// twice as fast as miniz_oxide, flate2's default, at level 1, and its
/// level 2 made smaller bodies than miniz_oxide's level 1 in the same time
/// (README, `compression_level`).
pub fn gzip(data: &[u8], level: u32) -> std::io::Result<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data)?;
    Ok(Bytes::from(enc.finish()?))
}
