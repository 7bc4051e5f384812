//! The canonical event: the one shape every input is normalised into and every
//! destination encodes from (see DESIGN.md, "Canonical event").
//!
//! An [`Event`] is serialised once, as compact JSON, into the body of a ring
//! record ([`record`]); destinations splice that body into their wire format
//! instead of serialising again.

pub mod buffers;
pub mod crc32c;
mod id;
pub(crate) mod json_text;
pub(crate) mod json_writer;
pub mod record;
pub mod rfc5424_fields;
mod severity;
pub mod syslog_hint;
mod time;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use id::{
    new_event_id, write_event_id, write_event_id_bytes, write_event_id_bytes_at, EVENT_ID_LEN,
};
pub use record::{Record, RecordError, RecordMeta, HEADER_LEN};
pub use severity::{Category, Severity};
pub use time::{
    format_rfc3339_millis, in_rfc3339_range, now_millis, parse_rfc3339_millis, push_rfc3339_millis,
    EARLIEST_MS, LATEST_MS,
};

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

impl Actor {
    /// Takes the fields `newer` sets; keeps the others.
    pub fn merge(&mut self, newer: Actor) {
        self.kind = newer.kind.or(self.kind.take());
        self.id = newer.id.or(self.id.take());
        self.email = newer.email.or(self.email.take());
        self.service_account = newer.service_account.or(self.service_account.take());
    }
}

impl Resource {
    /// Takes the fields `newer` sets; keeps the others.
    pub fn merge(&mut self, newer: Resource) {
        self.kind = newer.kind.or(self.kind.take());
        self.id = newer.id.or(self.id.take());
        self.name = newer.name.or(self.name.take());
        self.path = newer.path.or(self.path.take());
    }
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
        let body = json_writer::event(self);
        let mut meta = self.meta();
        meta.flags |= record::FLAG_CANONICAL;
        EncodedEvent::new(meta, body)
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
/// header fields filters need, the compact JSON body and the record's hint
/// (empty: none; see [`syslog_hint`]). Body and hint share one allocation
/// (the hint follows the body), as they follow each other in the record:
/// one allocation and one free per event on the ingest path, not two.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub meta: RecordMeta,
    /// The body, then the hint.
    bytes: Vec<u8>,
    body_len: usize,
}

impl EncodedEvent {
    /// An event without a hint.
    pub fn new(meta: RecordMeta, body: Vec<u8>) -> Self {
        EncodedEvent {
            meta,
            body_len: body.len(),
            bytes: body,
        }
    }

    /// An event with a hint.
    pub fn with_hint(meta: RecordMeta, body: Vec<u8>, hint: &[u8]) -> Self {
        let mut ev = EncodedEvent::new(meta, body);
        ev.write_hint(|out| out.extend_from_slice(hint));
        ev
    }

    /// The buffer holding body and hint (to reuse: [`buffers`]).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The compact JSON body.
    pub fn body(&self) -> &[u8] {
        &self.bytes[..self.body_len]
    }

    /// The hint (empty: none).
    pub fn hint(&self) -> &[u8] {
        &self.bytes[self.body_len..]
    }

    /// Replaces the hint with what `write` appends to the (emptied) vector
    /// it is given; `write` must only append.
    pub fn write_hint(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.bytes.truncate(self.body_len);
        write(&mut self.bytes);
        assert!(
            self.bytes.len() >= self.body_len,
            "a hint writer only appends"
        );
    }

    /// The body, without the hint.
    pub fn into_body(mut self) -> Vec<u8> {
        self.bytes.truncate(self.body_len);
        self.bytes
    }

    /// The length of its record in the ring.
    pub fn record_len(&self) -> usize {
        record::record_len(self.body(), self.hint())
    }
}

/// The 32-bit tenant hash stored in record headers (CRC32C of the tenant id;
/// never 0, which means "no tenant").
pub fn tenant_hash(tenant: &str) -> u32 {
    self::crc32c::crc32c(tenant.as_bytes()).max(1)
}

#[cfg(test)]
pub(crate) mod tests {
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
        let back = Event::decode(enc.body()).unwrap();
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
        let v: Value = serde_json::from_slice(ev.encode().body()).unwrap();
        assert_eq!(v["actor"]["type"], "user");
        assert_eq!(v["severity"], "info");
        assert!(v.get("parse_error").is_none());
        assert!(v["event_id"].as_str().unwrap().starts_with("evt_"));
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    pub(crate) mod encode_matches_serde {
        use super::super::*;
        use proptest::option::of;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "(?s).{0,12}",
                "[\\x00-\\x7f]{0,12}",
                "[\"\\\\\\x00-\\x1f\\x7f\u{80}\u{2028}\u{fffd}a]{0,8}",
            ]
        }

        fn opt_text() -> impl Strategy<Value = Option<String>> {
            of(text())
        }

        fn json_value() -> impl Strategy<Value = Value> {
            json_value_of(text)
        }

        /// Any JSON value (three levels deep at most) whose strings and keys
        /// come from `text` (also the `syslog` destination's generator).
        pub(crate) fn json_value_of<S: Strategy<Value = String> + 'static>(
            text: fn() -> S,
        ) -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                text().prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((text(), inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn json_map() -> impl Strategy<Value = Map<String, Value>> {
            prop::collection::vec((text(), json_value()), 0..4)
                .prop_map(|kv| kv.into_iter().collect())
        }

        fn actor() -> impl Strategy<Value = Actor> {
            (opt_text(), opt_text(), opt_text(), opt_text()).prop_map(|(kind, id, email, sa)| {
                Actor {
                    kind,
                    id,
                    email,
                    service_account: sa,
                }
            })
        }

        fn resource() -> impl Strategy<Value = Resource> {
            (opt_text(), opt_text(), opt_text(), opt_text()).prop_map(|(kind, id, name, path)| {
                Resource {
                    kind,
                    id,
                    name,
                    path,
                }
            })
        }

        fn syslog() -> impl Strategy<Value = SyslogFields> {
            (
                of(any::<u8>()),
                of(any::<u8>()),
                of(any::<u32>()),
                (opt_text(), opt_text(), opt_text(), opt_text()),
                json_map(),
            )
                .prop_map(|(facility, severity, version, (h, a, p, m), sd)| {
                    SyslogFields {
                        facility,
                        severity,
                        version,
                        hostname: h,
                        app_name: a,
                        procid: p,
                        msgid: m,
                        structured_data: sd,
                    }
                })
        }

        fn event() -> impl Strategy<Value = Event> {
            (
                (text(), text(), text(), opt_text(), text(), opt_text()),
                (
                    prop::sample::select(Severity::ALL.to_vec()),
                    opt_text(),
                    of(actor()),
                    of(resource()),
                ),
                (opt_text(), opt_text(), opt_text(), of(json_map())),
                (
                    of(syslog()),
                    of((text(), opt_text())),
                    opt_text(),
                    any::<bool>(),
                ),
            )
                .prop_map(
                    |(
                        (event_id, timestamp, received_at, tenant_id, category, action),
                        (severity, outcome, actor, resource),
                        (source_ip, user_agent, session_id, metadata),
                        (syslog, source, message, parse_error),
                    )| Event {
                        event_id,
                        timestamp,
                        received_at,
                        tenant_id,
                        category,
                        action,
                        severity,
                        outcome,
                        actor,
                        resource,
                        source_ip,
                        user_agent,
                        session_id,
                        metadata,
                        syslog,
                        source: source.map(|(listener, address)| SourceInfo { listener, address }),
                        message,
                        parse_error,
                        timestamp_ms: 0,
                        received_ms: 0,
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn encode_is_byte_identical_to_serde_json(ev in event()) {
                let ours = ev.encode().into_body();
                let serde = serde_json::to_vec(&ev).unwrap();
                prop_assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&serde)
                );
                prop_assert_eq!(ours, serde);
            }

            #[test]
            fn string_escaping_matches_serde_json(s in "(?s).{0,40}") {
                let mut ours = Vec::new();
                json_writer::string(&mut ours, &s);
                prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
            }
        }

        proptest! {
            #[test]
            fn long_ascii_escaping_matches_serde_json(
                s in "[a-z\"\\\\\\x00-\\x1f\\x7f\u{e9}\u{2028}]{0,64}"
            ) {
                let mut ours = Vec::new();
                json_writer::string(&mut ours, &s);
                prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
            }

            /// Dense escapes, across the 128-byte chunks; one string in
            /// about eight holds a control character (the other path).
            #[test]
            fn dense_string_escaping_matches_serde_json(
                s in "[a-z{}:,\"\\\\\u{e9}\u{1F600}]{0,600}",
                control in proptest::option::weighted(0.125, (0usize..600, 0u8..0x20)),
            ) {
                let mut s = s;
                if let Some((at, c)) = control {
                    let at = (0..=at.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.insert(at, c as char);
                }
                let mut ours = b"prefix".to_vec();
                json_writer::string_dense(&mut ours, &s);
                let mut want = b"prefix".to_vec();
                want.extend(serde_json::to_vec(&s).unwrap());
                prop_assert_eq!(ours, want);
            }
        }

        #[test]
        fn escapes_at_every_position_of_a_long_string() {
            // 0xc3: 'é'; 0xc2: '¢' (its second byte, 0xa2, is a quote's with the high bit)
            for c in (0u8..0x80).chain([0xc3, 0xc2]) {
                for pos in 0..40 {
                    let mut s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN".to_string();
                    let ch = match c {
                        0xc3 => '\u{e9}',
                        0xc2 => '\u{a2}',
                        c => c as char,
                    };
                    s.replace_range(pos..pos + 1, &ch.to_string());
                    let want = serde_json::to_vec(&s).unwrap();
                    let mut ours = Vec::new();
                    json_writer::string(&mut ours, &s);
                    assert_eq!(ours, want, "char {c:#x} at {pos}");
                    let mut dense = Vec::new();
                    json_writer::string_dense(&mut dense, &s);
                    assert_eq!(dense, want, "dense: char {c:#x} at {pos}");
                }
            }
        }

        #[test]
        fn escape_pairs_at_every_position_of_short_strings() {
            for len in 1..20 {
                for a in 0..len {
                    for b in a..len {
                        for (x, y) in [
                            ('"', '\n'),
                            ('\u{1}', '\\'),
                            ('\u{1f}', '\u{1f}'),
                            ('"', '\\'),
                            ('\\', '"'),
                            ('!', '#'),
                        ] {
                            let mut s: Vec<char> = "é".chars().cycle().take(len).collect();
                            s[a] = x;
                            s[b] = y;
                            let s: String = s.into_iter().collect();
                            let want = serde_json::to_vec(&s).unwrap();
                            let mut ours = Vec::new();
                            json_writer::string(&mut ours, &s);
                            assert_eq!(ours, want, "{s:?}");
                            let mut dense = Vec::new();
                            json_writer::string_dense(&mut dense, &s);
                            assert_eq!(dense, want, "dense: {s:?}");
                        }
                    }
                }
            }
        }

        #[test]
        fn appends_after_what_the_buffer_holds_at_every_length() {
            for len in 0..40 {
                for tail in ["", "\"", "\u{1}x", "é"] {
                    let s: String =
                        "abcdefghij".chars().cycle().take(len).collect::<String>() + tail;
                    let mut ours = b"{\"k\":".to_vec();
                    json_writer::string(&mut ours, &s);
                    let mut want = b"{\"k\":".to_vec();
                    want.extend_from_slice(&serde_json::to_vec(&s).unwrap());
                    assert_eq!(
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&want)
                    );
                }
            }
        }

        #[test]
        fn every_byte_escapes_like_serde_json() {
            for c in 0u8..0x80 {
                let s = String::from(c as char);
                let mut ours = Vec::new();
                json_writer::string(&mut ours, &s);
                assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "char {c:#x}");
            }
        }
    }

    #[test]
    fn an_encoded_event_keeps_body_and_hint_apart_in_one_buffer() {
        let meta = Event::new("SYSTEM", None, Severity::Info).meta();
        let mut e = EncodedEvent::new(meta, b"{\"a\":1}".to_vec());
        assert_eq!((e.body(), e.hint()), (&b"{\"a\":1}"[..], &b""[..]));
        e.write_hint(|h| h.extend_from_slice(b"\x01first"));
        assert_eq!(e.hint(), b"\x01first");
        e.write_hint(|h| h.extend_from_slice(b"\x01new"));
        assert_eq!((e.body(), e.hint()), (&b"{\"a\":1}"[..], &b"\x01new"[..]));
        assert_eq!(e.record_len(), HEADER_LEN + 7 + 4);
        assert_eq!(
            e,
            EncodedEvent::with_hint(meta, b"{\"a\":1}".to_vec(), b"\x01new")
        );
        assert_eq!(e.into_body(), b"{\"a\":1}");
    }
}
