//! Destination changes (admin): `POST /api/v1/destinations` (body: `name`,
//! `type` and the settings of a `[destinations.NAME]` section as JSON; 201),
//! `PUT /api/v1/destinations/{id}` (body: `type` and settings; replaces the
//! destination, its cursor position kept), `DELETE /api/v1/destinations/{id}`
//! (204).
//!
//! The body is read as JSON whatever its `Content-Type` says (`curl -d`
//! sends `application/x-www-form-urlencoded`): an answer about a missing
//! header would say nothing about the body, which is what can be wrong.
//!
//! Only destinations created through the API can be changed through it;
//! the config file's are read-only here (409). A new destination starts
//! from the oldest retained record. Settings are checked by building the
//! destination before anything changes (400 with the reason); secrets are
//! stored encrypted ([`super::store`]) and answered as `<redacted>`. A PUT
//! may send a secret back as `<redacted>` to keep the stored one; where
//! nothing is stored (a POST) the placeholder is refused (400). Each
//! change is recorded as a `destination.create|update|delete` ADMIN event.

use super::audit::{self, AdminAction};
use super::auth::{Admin, Principal};
use super::error::ApiError;
use super::secrets;
use super::store::StoredDestination;
use super::ApiState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// A managed destination as answered.
#[derive(Debug, Serialize)]
pub struct ManagedInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Settings with secrets redacted.
    pub settings: Map<String, Value>,
}

fn managed_info(name: &str, d: &StoredDestination) -> ManagedInfo {
    ManagedInfo {
        name: name.to_string(),
        kind: d.kind.clone(),
        settings: d.redacted(),
    }
}

/// Names become file names (cursor checkpoints): keep them plain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads a request body as JSON, whatever its `Content-Type`.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| ApiError::Body(e.status(), e.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::Body(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// Splits a request body into name (if given), type and settings. The
/// settings are the body's other members (the flat form), or the members
/// of its `settings` object: the form the API answers
/// (`{"name", "type", "settings": {…}}`), so an answer sent back as it was
/// is read as its settings, `<redacted>` secrets included. (Read flat, its
/// secrets sat under `settings.` and none matched the stored ones.) A body
/// with both forms is refused: which one is meant cannot be told.
fn parse_body(value: Value) -> Result<(Option<String>, StoredDestination), ApiError> {
    let Value::Object(mut settings) = value else {
        return Err(ApiError::Invalid("the body must be a JSON object".into()));
    };
    let name = match settings.remove("name") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::Invalid("`name` must be a string".into())),
    };
    let kind = match settings.remove("type") {
        Some(Value::String(s)) => s,
        _ => return Err(ApiError::Invalid("`type` (a string) is required".into())),
    };
    let settings = match settings.remove("settings") {
        None => settings,
        Some(Value::Object(nested)) if settings.is_empty() => nested,
        Some(Value::Object(_)) => {
            let flat: Vec<String> = settings.keys().map(|k| format!("`{k}`")).collect();
            return Err(ApiError::Invalid(format!(
                "the body has `settings` and settings beside it ({}): send them all in \
                 `settings`, or all beside `name` and `type`",
                flat.join(", ")
            )));
        }
        Some(_) => {
            return Err(ApiError::Invalid(
                "`settings` must be an object of the destination's settings".into(),
            ))
        }
    };
    Ok((name, StoredDestination { kind, settings }))
}

async fn record(state: &ApiState, who: &Principal, peer: SocketAddr, action: &str, name: &str) {
    if let Ok(backend) = state.backend() {
        let a = AdminAction {
            action,
            principal: who,
            peer: Some(peer),
            resource_kind: "destination",
            resource_name: name,
            ok: true,
            message: action,
        };
        audit::record(backend.ring(), &a).await;
    }
}

/// Whether a change creates a destination or replaces a stored one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
}

/// Builds and starts (or replaces) `name` as `dest`, then persists the store.
/// Existence is checked under the store lock, so concurrent changes of one
/// name cannot both pass.
async fn apply(
    state: &ApiState,
    name: &str,
    dest: StoredDestination,
    change: Change,
) -> Result<ManagedInfo, ApiError> {
    let backend = state.backend()?;
    let mut dest = dest;
    let mut entries = state.store.lock().await;
    let previous = entries.get(name).cloned();
    match change {
        Change::Create => {
            if previous.is_some() || backend.destinations().await.contains_key(name) {
                return Err(ApiError::Conflict(format!("destination `{name}` exists")));
            }
        }
        Change::Update if previous.is_none() => {
            return Err(ApiError::NoDestination(name.to_string()))
        }
        Change::Update => {}
    }
    // settings as answered, sent back: `<redacted>` keeps the stored secret
    let stored = previous.as_ref().map(|p| (p.kind.as_str(), &p.settings));
    secrets::keep_stored(&dest.kind, &mut dest.settings, stored).map_err(ApiError::Invalid)?;
    let section = dest.section(name).map_err(ApiError::Invalid)?;
    backend
        .put_destination(section)
        .await
        .map_err(ApiError::Invalid)?;
    entries.insert(name.to_string(), dest.clone());
    if let Err(e) = state.store.persist(&entries) {
        // keep the running set and the store in agreement
        match previous {
            Some(p) => {
                entries.insert(name.to_string(), p.clone());
                if let Ok(s) = p.section(name) {
                    let _ = backend.put_destination(s).await;
                }
            }
            None => {
                entries.remove(name);
                backend.delete_destination(name).await;
            }
        }
        return Err(ApiError::Internal(format!("storing destinations: {e}")));
    }
    Ok(managed_info(name, &dest))
}

/// Refuses changes to destinations of the config file.
fn not_from_file(state: &ApiState, name: &str) -> Result<(), ApiError> {
    if state.backend()?.in_config_file(name) {
        return Err(ApiError::Conflict(format!(
            "destination `{name}` is defined in the config file; change it there"
        )));
    }
    Ok(())
}

/// `POST /api/v1/destinations`.
pub async fn create(
    Admin(who): Admin,
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ManagedInfo>), ApiError> {
    let (name, dest) = parse_body(json_body(body)?)?;
    let name = name.ok_or_else(|| ApiError::Invalid("`name` is required".into()))?;
    if !valid_name(&name) {
        return Err(ApiError::Invalid(
            "`name` must be 1 to 64 letters, digits, `_` or `-`".into(),
        ));
    }
    // a config file's name, running or not (`enabled = false`), is the file's
    not_from_file(&state, &name)?;
    let info = apply(&state, &name, dest, Change::Create).await?;
    record(&state, &who, peer, "destination.create", &name).await;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `PUT /api/v1/destinations/{id}`.
pub async fn update(
    Admin(who): Admin,
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ManagedInfo>, ApiError> {
    not_from_file(&state, &id)?;
    let (name, dest) = parse_body(json_body(body)?)?;
    if name.as_ref().is_some_and(|n| *n != id) {
        return Err(ApiError::Invalid("`name` cannot be changed".into()));
    }
    let info = apply(&state, &id, dest, Change::Update).await?;
    record(&state, &who, peer, "destination.update", &id).await;
    Ok(Json(info))
}

/// `DELETE /api/v1/destinations/{id}`.
pub async fn delete(
    Admin(who): Admin,
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    not_from_file(&state, &id)?;
    let backend = state.backend()?;
    let mut entries = state.store.lock().await;
    let Some(old) = entries.remove(&id) else {
        return Err(ApiError::NoDestination(id));
    };
    if let Err(e) = state.store.persist(&entries) {
        entries.insert(id, old);
        return Err(ApiError::Internal(format!("storing destinations: {e}")));
    }
    backend.delete_destination(&id).await;
    drop(entries);
    record(&state, &who, peer, "destination.delete", &id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_name_checks() {
        let (name, d) =
            parse_body(serde_json::json!({"name": "s1", "type": "file", "path": "/tmp/x"}))
                .unwrap();
        assert_eq!(name.as_deref(), Some("s1"));
        assert_eq!(d.kind, "file");
        assert_eq!(d.settings["path"], "/tmp/x");
        assert!(parse_body(serde_json::json!({"path": "x"})).is_err());
        // the form answers have: settings nested
        let (_, nested) = parse_body(
            serde_json::json!({"name": "s1", "type": "file", "settings": {"path": "/tmp/x"}}),
        )
        .unwrap();
        assert_eq!((nested.kind, nested.settings), (d.kind, d.settings));
        for both in [
            serde_json::json!({"type": "file", "path": "/tmp/x", "settings": {"path": "/tmp/y"}}),
            serde_json::json!({"type": "file", "settings": "path=/tmp/x"}),
        ] {
            assert!(parse_body(both).is_err());
        }
        assert!(parse_body(serde_json::json!([1])).is_err());
        let bad = json_body(Ok(Bytes::from_static(b"name=x"))).unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(
            bad.to_string().starts_with("the body is not valid JSON"),
            "{bad}"
        );
        assert!(valid_name("siem-2_b"));
        for bad in ["", "../x", "a b", "ü"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
