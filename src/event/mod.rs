//! The canonical event: the one shape every input is normalised into and every
//! destination encodes from (see DESIGN.md, "Canonical event").
//!
//! An [`Event`] is serialised once, as compact JSON, into the body of a ring
//! record ([`record`]); destinations splice that body into their wire format
//! instead of serialising again.

pub mod record;
mod severity;
mod time;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use record::{Record, RecordError, RecordMeta, HEADER_LEN};
pub use severity::{Category, Severity};
pub use time::{format_rfc3339_millis, now_millis, parse_rfc3339_millis};

/// Who did it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// What it was done to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The syslog header fields of an event that came in as syslog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyslogFields {
    /// Facility code from PRI (0..=23).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<u8>,
    /// Severity code from PRI (0..=7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgid: Option<String>,
    /// SD-ID → (param name → value).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub structured_data: Map<String, Value>,
}

/// Which configured source took the event, and from whom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub listener: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The canonical event. Field order is the serialised order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    /// Event time, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// When the relay accepted it, RFC 3339 UTC with milliseconds.
    pub received_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parse_error: bool,
    /// Event time in milliseconds since the Unix epoch (not serialised; mirrors `timestamp`).
    #[serde(skip)]
    pub timestamp_ms: i64,
    /// Receive time in milliseconds since the Unix epoch (not serialised; mirrors `received_at`).
    #[serde(skip)]
    pub received_ms: i64,
}

impl Event {
    /// A new event with a fresh `evt_<ULID>` id, stamped now, with the given
    /// category, action and severity. Other fields start empty.
    pub fn new(category: impl Into<String>, action: Option<String>, severity: Severity) -> Self {
        let now = now_millis();
        Event {
            event_id: new_event_id(),
            timestamp: format_rfc3339_millis(now),
            received_at: format_rfc3339_millis(now),
            tenant_id: None,
            category: category.into(),
            action,
            severity,
            outcome: None,
            actor: None,
            resource: None,
            source_ip: None,
            user_agent: None,
            session_id: None,
            metadata: None,
            syslog: None,
            source: None,
            message: None,
            parse_error: false,
            timestamp_ms: now,
            received_ms: now,
        }
    }

    /// Sets the event time (both the string and the millisecond mirror).
    pub fn set_timestamp_ms(&mut self, ms: i64) {
        self.timestamp_ms = ms;
        self.timestamp = format_rfc3339_millis(ms);
    }

    /// Sets the receive time (both the string and the millisecond mirror).
    pub fn set_received_ms(&mut self, ms: i64) {
        self.received_ms = ms;
        self.received_at = format_rfc3339_millis(ms);
    }

    /// The filterable header fields of this event's record.
    pub fn meta(&self) -> RecordMeta {
        RecordMeta {
            timestamp_ms: self.timestamp_ms,
            received_ms: self.received_ms,
            severity: self.severity,
            category: Category::code_of(&self.category),
            tenant_hash: self.tenant_id.as_deref().map(tenant_hash).unwrap_or(0),
            flags: if self.parse_error {
                record::FLAG_PARSE_ERROR
            } else {
                0
            },
        }
    }

    /// Serialises this event into a ready-to-append record body.
    pub fn encode(&self) -> EncodedEvent {
        let body = serde_json::to_vec(self).expect("Event serialises to JSON");
        EncodedEvent {
            meta: self.meta(),
            body,
        }
    }

    /// Parses a record body back into an event (the `*_ms` mirrors are
    /// restored from the strings).
    pub fn decode(body: &[u8]) -> Result<Event, serde_json::Error> {
        let mut ev: Event = serde_json::from_slice(body)?;
        ev.timestamp_ms = parse_rfc3339_millis(&ev.timestamp).unwrap_or(0);
        ev.received_ms = parse_rfc3339_millis(&ev.received_at).unwrap_or(0);
        Ok(ev)
    }
}

/// An event serialised and ready for [`crate::buffer::Ring::append`]: the
/// header fields filters need and the compact JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub meta: RecordMeta,
    pub body: Vec<u8>,
}

/// `evt_` followed by a fresh ULID.
pub fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

/// The 32-bit tenant hash stored in record headers (CRC32C of the tenant id;
/// never 0, which means "no tenant").
pub fn tenant_hash(tenant: &str) -> u32 {
    crc32c::crc32c(tenant.as_bytes()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json() {
        let mut ev = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
        ev.tenant_id = Some("acme".into());
        ev.actor = Some(Actor {
            id: Some("u1".into()),
            ..Default::default()
        });
        let enc = ev.encode();
        let back = Event::decode(&enc.body).unwrap();
        assert_eq!(back, ev);
        assert_eq!(enc.meta.category, Category::Security as u8);
        assert_eq!(enc.meta.tenant_hash, tenant_hash("acme"));
    }

    #[test]
    fn serialised_shape_uses_contract_names() {
        let mut ev = Event::new("ADMIN", None, Severity::Info);
        ev.actor = Some(Actor {
            kind: Some("user".into()),
            ..Default::default()
        });
        let v: Value = serde_json::from_slice(&ev.encode().body).unwrap();
        assert_eq!(v["actor"]["type"], "user");
        assert_eq!(v["severity"], "info");
        assert!(v.get("parse_error").is_none());
        assert!(v["event_id"].as_str().unwrap().starts_with("evt_"));
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
