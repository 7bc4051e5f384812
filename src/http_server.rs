//! The HTTP/1.1 connection loop of the relay's HTTP listeners (the `http`
//! source and the admin API), in place of `axum::serve`, which sets no
//! limits: an edge relay's HTTP port is open to whatever reaches it.
//!
//! - **A connection cap.** A connection over [`Limits::max_connections`]
//!   is closed at once (and reported), so a flood of idle connections
//!   cannot take the process's file descriptors.
//! - **A time limit on a request's headers.** A client that sends them a
//!   byte at a time, or connects and says nothing (also between requests
//!   on a kept-alive connection), is closed after
//!   [`Limits::header_timeout`]. The handlers limit the time a body takes.
//! - **Half-closed clients are answered.** A request followed by the
//!   client's FIN is served and answered like any other.
//! - **A graceful stop.** Requests in progress finish (for up to
//!   [`STOP_GRACE`]), idle connections close.
//! - **`Connection: close` when the connection closes.** An answer given
//!   before the request's body was read to its end (413, 408, a body cut
//!   short, a refusal before the body: 401, 415, 503, 404…) leaves the
//!   rest of the body unread on the connection, so hyper closes it after
//!   the answer; the answer says so (RFC 9112 §9.6), so a keep-alive
//!   client opens a new connection for its next request instead of
//!   writing it to a closed one. ([`ReadToEnd`])

use axum::extract::ConnectInfo;
use axum::Router;
use http::header::CONNECTION;
use http::HeaderValue;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long a stop waits for requests in progress before closing their connections.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What the loop tells about connections (the `http` source counts them).
pub trait ConnObserver: Send + Sync + 'static {
    fn opened(&self) {}
    fn closed(&self) {}
    /// A connection over the cap, closed at once.
    fn refused(&self) {}
}

/// Observes nothing.
impl ConnObserver for () {}

/// Serves `app` on `listener` until `stop` resolves, then lets the
/// requests in progress finish (at most [`STOP_GRACE`]). Handlers see the
/// peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
    observer: Arc<dyn ConnObserver>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // out of file descriptors, say: try again shortly
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            observer.refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        observer.opened();
        let (app, observer, mut closing) = (app.clone(), observer.clone(), closing_rx.clone());
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let (req, read) = ReadToEnd::wrap(req);
                let answer = app.clone().oneshot(req);
                async move {
                    let mut response = answer.await?;
                    if !read.load(Ordering::Acquire) {
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                // a client may shut down its side once its request is sent
                // (`nc -N`, scripts): the end of its input is not the client
                // gone. Without this, hyper closed the connection and dropped
                // the request in progress, unanswered and unstored.
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { closing.wait_for(|c| *c).await.map(drop) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            observer.closed();
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "HTTP requests still running after {STOP_GRACE:?}: their connections are closed"
        );
        // dropping the set aborts them; the observer is told for each
        for _ in 0..conns.len() {
            observer.closed();
        }
    }
}

/// A request body that tells whether it was read to its end. hyper keeps
/// a connection open after an answer only when the request's body was read
/// to its end (or what is left of it is already in its buffer): otherwise
/// it closes the connection, but only after writing an answer that did not
/// say so. [`serve`] adds `Connection: close` to an answer given while the
/// body was not read to its end, and hyper then closes the connection
/// whatever is buffered: always, not only when the rest had not come yet.
struct ReadToEnd {
    inner: Incoming,
    ended: Arc<AtomicBool>,
}

impl ReadToEnd {
    /// The request with its body wrapped, and the flag set once the body
    /// ended (at once for a body known to be empty).
    fn wrap(req: hyper::Request<Incoming>) -> (hyper::Request<axum::body::Body>, Arc<AtomicBool>) {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let req = req.map(|inner| {
            flag.store(inner.is_end_stream(), Ordering::Release);
            axum::body::Body::new(ReadToEnd { inner, ended: flag })
        });
        (req, ended)
    }
}

impl Body for ReadToEnd {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None))
            || (matches!(polled, Poll::Ready(Some(Ok(_)))) && self.inner.is_end_stream())
        {
            self.ended.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
