//! Destination routes: `GET /api/v1/destinations` (name, type, target and
//! status of each, the disabled ones too: `enabled: false`, counters at
//! zero), `GET /api/v1/destinations/{id}/status`, and
//! `POST /api/v1/destinations/{id}/test` (admin: sends one synthetic
//! `relay.test` event through the destination's sink, a disabled one's too,
//! answers `{ok, message}`, and records a `destination.test` ADMIN event).

use super::audit::{self, AdminAction};
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::ApiState;
use crate::destinations::{Batch, BatchEvent, Destination, StatusSnapshot};
use crate::event::{Event, Severity, SourceInfo};
use axum::extract::{ConnectInfo, Path, State};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a test send may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One destination as listed.
#[derive(Debug, Serialize)]
pub struct DestinationInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    /// Created through the API (changeable through it) rather than the config file.
    pub managed: bool,
    /// False for a destination configured with `enabled = false`: it does
    /// not run, and its status counters are zero.
    pub enabled: bool,
    pub status: StatusSnapshot,
}

fn info(d: &Destination, managed: bool) -> DestinationInfo {
    DestinationInfo {
        name: d.name.clone(),
        kind: d.kind.clone(),
        target: d.sink.target(),
        managed,
        enabled: d.common.enabled,
        status: d.status.snapshot(),
    }
}

/// The running destinations and the disabled ones, by name.
async fn configured(state: &ApiState) -> Result<BTreeMap<String, Arc<Destination>>, ApiError> {
    let backend = state.backend()?;
    let mut all = backend.disabled_destinations();
    all.extend(backend.destinations().await);
    Ok(all)
}

/// `GET /api/v1/destinations`.
pub async fn list(
    Viewer(_): Viewer,
    State(state): State<Arc<ApiState>>,
) -> Result<Json<Vec<DestinationInfo>>, ApiError> {
    let all = configured(&state).await?;
    let stored = state.store.lock().await;
    Ok(Json(
        all.values()
            .map(|d| info(d, stored.contains_key(&d.name)))
            .collect(),
    ))
}

/// `GET /api/v1/destinations/{id}/status`.
pub async fn status(
    Viewer(_): Viewer,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<DestinationInfo>, ApiError> {
    let d = configured(&state)
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::NoDestination(id.clone()))?;
    let managed = state.store.lock().await.contains_key(&id);
    Ok(Json(info(&d, managed)))
}

/// The answer of a test.
#[derive(Debug, Serialize)]
pub struct TestAnswer {
    pub ok: bool,
    pub message: String,
}

/// The one-event batch a test sends (redacted like real traffic).
fn probe(d: &Destination) -> Result<Batch, ApiError> {
    let mut ev = Event::new("SYSTEM", Some("relay.test".into()), Severity::Info);
    ev.message = Some(format!(
        "siem-relay test event for destination `{}`",
        d.name
    ));
    ev.source = Some(SourceInfo {
        listener: "api".into(),
        address: None,
    });
    let enc = ev.encode();
    let meta = enc.meta;
    let body = match &d.redactor {
        Some(r) => r
            .apply(enc.body())
            .map_err(|e| ApiError::Internal(format!("redaction: {e}")))?,
        None => enc.into_body(),
    };
    Ok(Batch::new(vec![BatchEvent::new(0, meta, body.into())]))
}

/// `POST /api/v1/destinations/{id}/test`.
pub async fn test(
    Admin(who): Admin,
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Json<TestAnswer>, ApiError> {
    // a disabled one too, as `test-destination` does: the way to check it
    // before enabling it
    let dest = configured(&state)
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::NoDestination(id.clone()))?;
    let batch = probe(&dest)?;
    let (ok, message) = match tokio::time::timeout(TEST_TIMEOUT, dest.sink.test(&batch)).await {
        Ok(o) => (o.ok, o.message),
        Err(_) => (false, format!("no answer within {TEST_TIMEOUT:?}")),
    };
    if !dest.common.enabled {
        // it does not run: the test's connection or file is not kept open
        dest.sink.close().await;
    }
    let action = AdminAction {
        action: "destination.test",
        principal: &who,
        peer: Some(peer),
        resource_kind: "destination",
        resource_name: &id,
        ok,
        message: &message,
    };
    audit::record(state.backend()?.ring(), &action).await;
    Ok(Json(TestAnswer { ok, message }))
}
