//! The admin API (`[api]`): an axum server for operators and dashboards.
//!
//! | route | token | what |
//! |---|---|---|
//! | `GET /health` | none | `{"status", "next_seq", "destinations": {name: {healthy, consecutive_failures}}}`; `healthy`: the destination's last attempt succeeded; 503 only when a destination has more than [`HEALTH_FAILURE_THRESHOLD`] consecutive failed attempts |
//! | `GET /metrics` | viewer | Prometheus text (see [`metrics`]) |
//! | `GET /api/v1/destinations` | viewer | name, type, target and status of each destination |
//! | `GET /api/v1/destinations/{id}/status` | viewer | one destination |
//! | `POST /api/v1/destinations/{id}/test` | admin | send a `relay.test` event; `{ok, message}` |
//! | `GET /api/v1/events` | viewer | query the retained ring (see [`events`]) |
//! | `POST /api/v1/destinations`, `PUT`/`DELETE /api/v1/destinations/{id}` | admin | manage API-created destinations (see [`crud`]) |
//!
//! `/metrics` asks for a token because it names every destination and its
//! state; Prometheus sends one with `authorization: {credentials: …}`.
//! Tokens and roles: [`auth`]. Errors answer `{"error": "..."}` ([`error`]).
//! Admin actions are appended to the ring as `ADMIN` events ([`audit`]).
//!
//! The API reaches the relay through [`Backend`] (implemented by the app),
//! held weakly so the server never keeps a stopped relay alive.

pub mod audit;
pub mod auth;
pub mod crud;
pub mod destinations;
pub mod error;
pub mod events;
pub mod metrics;
pub mod secrets;
pub mod store;

use crate::buffer::Ring;
use crate::config::{ApiConfig, ApiToken, SectionConfig};
use crate::destinations::Destination;
use auth::{Tokens, Viewer};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use error::ApiError;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use store::Store;
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `/health` answers 503 when a destination has more consecutive failed
/// attempts than this.
pub const HEALTH_FAILURE_THRESHOLD: u64 = 5;

/// The admin API's connection limits (see [`crate::http_server`]): a few
/// operators and scrapers, never a crowd.
const API_LIMITS: crate::http_server::Limits = crate::http_server::Limits {
    max_connections: 256,
    header_timeout: Duration::from_secs(30),
};

/// What the API needs from the running relay.
pub trait Backend: Send + Sync + 'static {
    fn ring(&self) -> &Ring;
    /// The running destinations, by name.
    fn destinations(&self) -> BoxFuture<'_, BTreeMap<String, Arc<Destination>>>;
    /// The destinations configured with `enabled = false` (built, not
    /// running), by name.
    fn disabled_destinations(&self) -> BTreeMap<String, Arc<Destination>>;
    /// The relay's data directory (the API keeps its store under `api/`).
    fn data_dir(&self) -> PathBuf;
    /// Whether `name` is a destination of the config file (read-only here).
    fn in_config_file(&self, name: &str) -> bool;
    /// Builds `section` and starts it, replacing a running destination of
    /// that name (kept running when the build fails). Errors say why.
    fn put_destination(&self, section: SectionConfig) -> BoxFuture<'_, Result<(), String>>;
    /// Stops and forgets an API-managed destination.
    fn delete_destination<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
}

/// Shared by every handler.
pub struct ApiState {
    backend: Weak<dyn Backend>,
    /// Replaced whole at a reload ([`ApiServer::set_tokens`]).
    tokens: RwLock<Tokens>,
    metrics: PrometheusHandle,
    store: Arc<Store>,
}

impl ApiState {
    /// The relay, unless it is gone (shutting down).
    pub fn backend(&self) -> Result<Arc<dyn Backend>, ApiError> {
        self.backend.upgrade().ok_or(ApiError::Unavailable)
    }

    /// Who sent `parts`, by the tokens in force now.
    fn authenticate(&self, parts: &Parts) -> Result<auth::Principal, ApiError> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        auth::authenticate(parts, &tokens)
    }
}

/// Why the API server could not start.
#[derive(Debug, Error)]
pub enum ApiStartError {
    #[error("api tokens: {0}")]
    Tokens(String),
    #[error("the relay stopped before the API started")]
    RelayGone,
    #[error("api destination store: {0}")]
    Store(#[from] store::StoreError),
    #[error("api address {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The running server.
pub struct ApiServer {
    local_addr: SocketAddr,
    store: Arc<Store>,
    state: Arc<ApiState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Starts the stored API-managed destinations, binds `[api].address`
    /// and serves until [`ApiServer::stop`].
    pub async fn start(
        config: &ApiConfig,
        backend: Weak<dyn Backend>,
    ) -> Result<ApiServer, ApiStartError> {
        let tokens = Tokens::new(&config.tokens).map_err(ApiStartError::Tokens)?;
        let metrics = metrics::install_recorder();
        let relay = backend.upgrade().ok_or(ApiStartError::RelayGone)?;
        let store = Arc::new(Store::open(&relay.data_dir())?);
        start_stored(&*relay, &store).await;
        drop(relay);
        let state = Arc::new(ApiState {
            backend,
            tokens: RwLock::new(tokens),
            metrics,
            store: store.clone(),
        });
        let listener = tokio::net::TcpListener::bind(&config.address)
            .await
            .map_err(|source| ApiStartError::Bind {
                address: config.address.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ApiStartError::Bind {
                address: config.address.clone(),
                source,
            })?;
        let (stop, stopped) = oneshot::channel();
        let stopping = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(crate::http_server::serve(
            listener,
            router(state.clone()),
            API_LIMITS,
            stopping,
            Arc::new(()),
        ));
        tracing::info!(address = %local_addr, "admin API listening");
        Ok(ApiServer {
            local_addr,
            store,
            state,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Puts `tokens` in force for every request from now on (a reload: a
    /// removed or demoted token must not keep its rights until a restart).
    /// Digests that do not decode leave the running tokens as they are.
    pub fn set_tokens(&self, tokens: &[ApiToken]) -> Result<(), ApiStartError> {
        let tokens = Tokens::new(tokens).map_err(ApiStartError::Tokens)?;
        *self.state.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
        Ok(())
    }

    /// The API-managed destinations' store.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Stops accepting, lets requests in progress finish (up to 5 s).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Starts the stored destinations; a name the config file now defines is
/// the file's (its API settings are dropped from the store, as at a reload
/// that gives the name to the file), and one that no longer builds is
/// logged and skipped.
async fn start_stored(backend: &dyn Backend, store: &Store) {
    let running = backend.destinations().await;
    let shadowed: Vec<String> = store
        .lock()
        .await
        .keys()
        .filter(|name| running.contains_key(*name) || backend.in_config_file(name))
        .cloned()
        .collect();
    match store.forget(&shadowed).await {
        Ok(names) => {
            for name in names {
                tracing::warn!(destination = %name, "the config file defines this API-managed destination; the file's runs and the API's settings are dropped");
            }
        }
        Err(e) => {
            tracing::error!("API-managed destinations the config file defines could not be dropped from the store: {e}")
        }
    }
    for (name, d) in store.lock().await.iter() {
        if shadowed.contains(name) {
            continue;
        }
        let started = match d.section(name) {
            Ok(section) => backend.put_destination(section).await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            tracing::error!(destination = %name, "API-managed destination not started: {e}");
        }
    }
}

/// Every route.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_handler))
        .route(
            "/api/v1/destinations",
            get(destinations::list).post(crud::create),
        )
        .route(
            "/api/v1/destinations/:id",
            put(crud::update).delete(crud::delete),
        )
        .route("/api/v1/destinations/:id/status", get(destinations::status))
        .route("/api/v1/destinations/:id/test", post(destinations::test))
        .route("/api/v1/events", get(events::handler))
        .fallback(|uri: Uri| async move { ApiError::NoRoute(uri.path().to_string()) })
        // a JSON `{"error"}` body too, as every other refusal
        .method_not_allowed_fallback(|method: axum::http::Method, uri: Uri| async move {
            ApiError::NoMethod(method.to_string(), uri.path().to_string())
        })
        .with_state(state)
}

#[derive(Serialize)]
struct DestinationHealth {
    healthy: bool,
    consecutive_failures: u64,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    next_seq: u64,
    destinations: BTreeMap<String, DestinationHealth>,
}

/// `GET /health` (no token).
async fn health(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let backend = state.backend()?;
    let mut failing = false;
    let destinations = backend
        .destinations()
        .await
        .into_iter()
        .map(|(name, d)| {
            let s = d.status.snapshot();
            failing |= s.consecutive_failures > HEALTH_FAILURE_THRESHOLD;
            let h = DestinationHealth {
                healthy: s.healthy,
                consecutive_failures: s.consecutive_failures,
            };
            (name, h)
        })
        .collect();
    let body = Health {
        status: if failing { "unhealthy" } else { "ok" },
        next_seq: backend.ring().next_seq(),
        destinations,
    };
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, Json(body)).into_response())
}

/// `GET /metrics` (viewer).
async fn metrics_handler(
    Viewer(_): Viewer,
    State(state): State<Arc<ApiState>>,
) -> Result<Response, ApiError> {
    let backend = state.backend()?;
    let stats = backend.ring().stats();
    let dests = backend.destinations().await;
    let snaps: Vec<_> = dests
        .iter()
        .map(|(n, d)| {
            let last = d
                .status
                .last_successful_batch_at
                .load(std::sync::atomic::Ordering::Relaxed);
            (n.as_str(), d.status.snapshot(), (last > 0).then_some(last))
        })
        .collect();
    let rows: Vec<metrics::DestinationRow> = snaps.iter().map(|(n, s, l)| (*n, s, *l)).collect();
    let text = metrics::render(&state.metrics, &stats, &rows);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
