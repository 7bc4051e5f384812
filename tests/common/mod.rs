//! Test helpers: a recording HTTP(S) server on 127.0.0.1 (real sockets, hyper),
//! a private CA made with rcgen, and batch builders.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use siem_relay::destinations::{Batch, BatchEvent, BuildContext};
use siem_relay::event::{Event, Severity};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    /// The body as sent (possibly gzip).
    pub raw: Vec<u8>,
    /// The body after undoing `Content-Encoding: gzip`.
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// What the server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
    }
}

impl Reply {
    pub fn with_header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.into()));
        self
    }
}

/// Answers the n-th request (0-based, counted over all requests).
pub type Responder = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

pub struct TestServer {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    responder: Responder,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let raw = body.collect().await?.to_bytes().to_vec();
    let gz = parts
        .headers
        .get("content-encoding")
        .map(|v| v == "gzip")
        .unwrap_or(false);
    let body = if gz {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    } else {
        raw.clone()
    };
    let s = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        raw,
        body,
    };
    let n = {
        let mut g = seen.lock().unwrap();
        g.push(s.clone());
        g.len() - 1
    };
    let r = responder(&s, n);
    let mut resp = Response::builder().status(r.status);
    for (k, v) in r.headers {
        resp = resp.header(k, v);
    }
    Ok(resp.body(Full::new(Bytes::from(r.body))).unwrap())
}

/// A plain-HTTP server on 127.0.0.1.
pub async fn serve(
    responder: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> TestServer {
    start(Arc::new(responder), None).await
}

/// An HTTPS server on 127.0.0.1 with a certificate from `ca`.
pub async fn serve_tls(
    ca: &TestCa,
    responder: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> TestServer {
    start(Arc::new(responder), Some(ca.acceptor())).await
}

async fn start(responder: Responder, tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, r2) = (seen.clone(), responder.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, responder, tls) = (s2.clone(), r2.clone(), tls.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, seen.clone(), responder.clone()));
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    TestServer {
        url: format!("{scheme}://127.0.0.1:{}", addr.port()),
        seen,
    }
}

/// A private CA and a server certificate for 127.0.0.1 it signed.
pub struct TestCa {
    pub ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "siem-relay test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls_pki_types::CertificateDer::from(
                    self.cert_der.clone(),
                )],
                rustls_pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    }
}

/// Event time of every test event: 2023-11-14T22:13:20.123Z.
pub const T0: i64 = 1_700_000_000_123;

/// A canonical event with a message that needs JSON escaping.
pub fn event(i: usize) -> Event {
    let mut ev = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
    ev.event_id = format!("evt_test_{i}");
    ev.set_timestamp_ms(T0);
    ev.set_received_ms(T0 + 5);
    ev.message = Some(format!("login \"{i}\"\nfailed"));
    ev
}

pub fn batch_of(events: Vec<Event>) -> Batch {
    Batch::new(
        events
            .into_iter()
            .enumerate()
            .map(|(i, ev)| {
                let enc = ev.encode();
                BatchEvent::new(i as u64 + 1, enc.meta, Bytes::from(enc.into_body()))
            })
            .collect(),
    )
}

pub fn batch(n: usize) -> Batch {
    batch_of((0..n).map(event).collect())
}

pub fn ctx(name: &str) -> BuildContext {
    BuildContext {
        name: name.into(),
        base_dir: PathBuf::from("."),
        data_dir: PathBuf::from("data"),
    }
}

pub fn table(s: &str) -> toml::Table {
    toml::from_str(s).expect("test TOML")
}

pub fn body_of(b: &Batch, i: usize) -> &str {
    std::str::from_utf8(b.events[i].body()).unwrap()
}
