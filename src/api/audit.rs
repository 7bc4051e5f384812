//! Admin actions as `ADMIN` events in the stream: every action taken through
//! the API is appended to the ring, with the token's name as the actor, so
//! it reaches the SIEMs like any other event.

use super::auth::Principal;
use crate::buffer::Ring;
use crate::event::{Actor, Event, Resource, Severity, SourceInfo};
use std::net::SocketAddr;
use std::time::Duration;

/// How long an audit append may wait for room in the ring.
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What an admin did.
pub struct AdminAction<'a> {
    /// `destination.test`, …
    pub action: &'a str,
    pub principal: &'a Principal,
    pub peer: Option<SocketAddr>,
    /// The destination (or other object) acted on.
    pub resource_kind: &'a str,
    pub resource_name: &'a str,
    pub ok: bool,
    pub message: &'a str,
}

/// The `ADMIN` event describing `a`.
pub fn event(a: &AdminAction) -> Event {
    let severity = if a.ok {
        Severity::Notice
    } else {
        Severity::Warning
    };
    let mut ev = Event::new("ADMIN", Some(a.action.to_string()), severity);
    ev.outcome = Some(if a.ok { "success" } else { "failure" }.to_string());
    ev.actor = Some(Actor {
        kind: Some("api_token".into()),
        id: Some(a.principal.name.clone()),
        ..Default::default()
    });
    ev.resource = Some(Resource {
        kind: Some(a.resource_kind.to_string()),
        id: Some(a.resource_name.to_string()),
        name: Some(a.resource_name.to_string()),
        path: None,
    });
    ev.source_ip = a.peer.map(|p| p.ip().to_string());
    ev.message = Some(a.message.to_string());
    ev.source = Some(SourceInfo {
        listener: "api".into(),
        address: a.peer.map(|p| p.to_string()),
    });
    ev
}

/// Appends the audit event; a failure is logged (the action already happened).
pub async fn record(ring: &Ring, a: &AdminAction<'_>) {
    let enc = event(a).encode();
    match tokio::time::timeout(APPEND_TIMEOUT, ring.append_owned(vec![enc])).await {
        Ok((_, Ok(_))) => {}
        Ok((_, Err(e))) => tracing::error!(action = a.action, "audit event not recorded: {e}"),
        Err(_) => tracing::error!(
            action = a.action,
            "audit event not recorded: ring full for {APPEND_TIMEOUT:?}"
        ),
    }
}
