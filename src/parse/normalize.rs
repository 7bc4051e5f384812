//! Normalisation: builds the canonical [`Event`] from a parsed syslog message
//! or a JSON object.
//!
//! Syslog without explicit fields gets its severity from the PRI severity and
//! its category from the PRI facility:
//!
//! | facility (code)                                  | category         |
//! |--------------------------------------------------|------------------|
//! | auth (4), authpriv (10)                          | `AUTHENTICATION` |
//! | audit (13), alert (14)  ("log audit/log alert")  | `SECURITY`       |
//! | every other facility, and no PRI at all          | `SYSTEM`         |
//!
//! A syslog line that `syslog_loose` cannot parse is kept whole in
//! `message` with `parse_error = true`: with its PRI's severity, category
//! and `syslog.facility`/`severity` when it starts with a PRI that can be
//! read, else severity `notice` (RFC 3164's default PRI 13).
//!
//! A MSG that is a JSON object (after an optional BOM) is parsed with
//! simd-json and mapped onto the canonical fields by [`apply_json`]; the flat
//! forms `user_id`, `user_email`, `service_account` (→ `actor`),
//! `resource_path` (→ `resource.path`) and `ip` (→ `source_ip`) are accepted
//! too, and every other key lands in `metadata`.

use crate::event::json_writer::{ACTOR_FIELDS, RESOURCE_FIELDS};
use crate::event::{
    format_rfc3339_millis, new_event_id, parse_rfc3339_millis, Actor, EncodedEvent, Event,
    Resource, Severity, SourceInfo, SyslogFields,
};
use crate::parse::syslog::{parse_syslog, strip_bom, SyslogMessage};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// Which listener took the input and from which peer, and what its record
/// must carry besides the body.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub listener: &'a str,
    pub address: Option<&'a str>,
    /// Whether a syslog line's record stores the syslog hint
    /// (`event::syslog_hint`). Only a `syslog` destination with
    /// `format = "syslog"` reads it; without one running it is ~17% of the
    /// record's bytes and ~4% of the parse for nobody. A record without a
    /// hint is still rendered right (from its body), only slower.
    pub syslog_hint: bool,
}

impl Origin<'_> {
    fn source_info(&self) -> SourceInfo {
        SourceInfo {
            listener: self.listener.to_string(),
            address: self.address.map(str::to_string),
        }
    }
}

/// Category of a syslog facility code (see the module table).
pub fn category_for_facility(facility: Option<u8>) -> &'static str {
    match facility {
        Some(4) | Some(10) => "AUTHENTICATION",
        Some(13) | Some(14) => "SECURITY",
        _ => "SYSTEM",
    }
}

/// Parses and normalises one syslog message.
pub fn syslog_line_to_event(input: &[u8], received_ms: i64, tz: Tz, origin: &Origin) -> Event {
    normalize_syslog(parse_syslog(input, received_ms, tz), received_ms, origin)
}

/// [`syslog_line_to_event`]`(..).encode()`: the same record, written
/// directly from the parse for well-formed RFC 5424 and RFC 3164 lines
/// ([`crate::parse::direct`]), through the [`Event`] otherwise.
pub fn syslog_line_to_record(
    input: &[u8],
    received_ms: i64,
    tz: Tz,
    origin: &Origin,
) -> EncodedEvent {
    // simdutf8 (SIMD; the same answer as `std::str::from_utf8`): std's
    // check was ~380 instructions of a ~290-byte line, ~3% of its parse
    match simdutf8::basic::from_utf8(input) {
        Ok(text) => syslog_text_to_record(text, received_ms, tz, origin),
        Err(_) => syslog_line_to_event(input, received_ms, tz, origin).encode(),
    }
}

/// [`syslog_line_to_record`] of a line already known to be UTF-8 (a
/// source that checked a whole read at once).
pub fn syslog_text_to_record(
    text: &str,
    received_ms: i64,
    tz: Tz,
    origin: &Origin,
) -> EncodedEvent {
    let line = text.trim_end_matches(['\n', '\r', '\0']);
    match crate::parse::direct::line_to_record(line, received_ms, origin) {
        Ok(record) => record,
        Err(Some(p)) => normalize_syslog(p.to_message(), received_ms, origin).encode(),
        Err(None) => match crate::parse::rfc3164::parse(line, received_ms, tz) {
            Some(p) => crate::parse::direct::encode_rfc3164(&p, received_ms, origin)
                .unwrap_or_else(|| normalize_syslog(p.to_message(), received_ms, origin).encode()),
            None => syslog_line_to_event(text.as_bytes(), received_ms, tz, origin).encode(),
        },
    }
}

/// Builds the canonical event of a parsed syslog message.
pub fn normalize_syslog(m: SyslogMessage, received_ms: i64, origin: &Origin) -> Event {
    let severity = m
        .severity
        .map(Severity::from_syslog)
        .unwrap_or(Severity::Notice);
    let timestamp_ms = m.timestamp_ms.unwrap_or(received_ms);
    let mut ev = event_at(
        category_for_facility(m.facility),
        severity,
        timestamp_ms,
        received_ms,
        origin,
    );
    if !m.parsed {
        ev.parse_error = true;
        ev.message = Some(m.msg);
        // the PRI of a line that did not parse, when it had one
        if m.facility.is_some() {
            ev.syslog = Some(SyslogFields {
                facility: m.facility,
                severity: m.severity,
                ..Default::default()
            });
        }
        return ev;
    }
    ev.syslog = Some(SyslogFields {
        facility: m.facility,
        severity: m.severity,
        version: m.version,
        hostname: m.hostname,
        app_name: m.app_name,
        procid: m.procid,
        msgid: m.msgid,
        structured_data: m.structured_data,
    });
    match json_object(&m.msg) {
        Some(obj) => apply_json(&mut ev, obj),
        None => ev.message = Some(m.msg),
    }
    ev
}

/// Builds the canonical event of a JSON object (HTTP input).
pub fn normalize_json(obj: Map<String, Value>, received_ms: i64, origin: &Origin) -> Event {
    let mut ev = blank_event("SYSTEM", Severity::Info, received_ms, origin);
    apply_json(&mut ev, obj);
    ev
}

/// An event with a fresh id, stamped `received_ms`, and nothing else set.
pub fn blank_event(category: &str, severity: Severity, received_ms: i64, origin: &Origin) -> Event {
    event_at(category, severity, received_ms, received_ms, origin)
}

/// [`blank_event`] with its own event time (each time formatted once).
fn event_at(
    category: &str,
    severity: Severity,
    timestamp_ms: i64,
    received_ms: i64,
    origin: &Origin,
) -> Event {
    let received_at = format_rfc3339_millis(received_ms);
    let timestamp = if timestamp_ms == received_ms {
        received_at.clone()
    } else {
        format_rfc3339_millis(timestamp_ms)
    };
    Event {
        event_id: new_event_id(),
        timestamp,
        received_at,
        tenant_id: None,
        category: category.to_string(),
        action: None,
        severity,
        outcome: None,
        actor: None,
        resource: None,
        source_ip: None,
        user_agent: None,
        session_id: None,
        metadata: None,
        syslog: None,
        source: Some(origin.source_info()),
        message: None,
        parse_error: false,
        timestamp_ms,
        received_ms,
    }
}

/// The MSG as a JSON object, if it is one.
fn json_object(msg: &str) -> Option<Map<String, Value>> {
    let body = strip_bom(msg).trim();
    if !body.starts_with('{') {
        return None;
    }
    // not JSON to us (a lone surrogate, nesting too deep; see
    // `json_text::refused`): kept as text
    if crate::event::json_text::refused(body.as_bytes()) {
        return None;
    }
    let mut bytes = body.as_bytes().to_vec();
    simd_json::serde::from_slice::<Map<String, Value>>(&mut bytes).ok()
}

/// Maps a JSON object onto the canonical fields of `ev`; unknown keys (and
/// known keys with an unusable value) go to `metadata`.
pub fn apply_json(ev: &mut Event, obj: Map<String, Value>) {
    for (key, value) in obj {
        if let Some((key, value)) = apply_field(ev, key, value) {
            metadata(ev).insert(key, value);
        }
    }
}

/// Applies one field; gives it back when it belongs in `metadata`.
fn apply_field(ev: &mut Event, key: String, value: Value) -> Option<(String, Value)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let handled = match key.as_str() {
        // a blank id is no id: the event keeps the one generated for it
        // (an empty `_id` would collide in Elasticsearch and in SIEM dedup)
        "event_id" => match text(&value) {
            Some(s) if s.trim().is_empty() => true,
            s => s.map(|s| ev.event_id = s).is_some(),
        },
        "timestamp" => json_time_ms(&value)
            .map(|ms| ev.set_timestamp_ms(ms))
            .is_some(),
        "tenant_id" => text(&value).map(|s| ev.tenant_id = Some(s)).is_some(),
        "action" => text(&value).map(|s| ev.action = Some(s)).is_some(),
        "outcome" => text(&value).map(|s| ev.outcome = Some(s)).is_some(),
        "category" => value
            .as_str()
            .map(|s| ev.category = s.to_ascii_uppercase())
            .is_some(),
        "severity" => json_severity(&value).map(|s| ev.severity = s).is_some(),
        "source_ip" | "ip" => text(&value).map(|s| ev.source_ip = Some(s)).is_some(),
        "user_agent" => text(&value).map(|s| ev.user_agent = Some(s)).is_some(),
        "session_id" => text(&value).map(|s| ev.session_id = Some(s)).is_some(),
        "message" => text(&value).map(|s| ev.message = Some(s)).is_some(),
        "actor" => match apply_actor(ev, value) {
            Ok(()) => return None,
            Err(value) => return Some((key, value)),
        },
        "resource" => match apply_resource(ev, value) {
            Ok(()) => return None,
            Err(value) => return Some((key, value)),
        },
        "user_id" => text(&value).map(|s| actor(ev).id = Some(s)).is_some(),
        "user_email" => text(&value).map(|s| actor(ev).email = Some(s)).is_some(),
        "service_account" => text(&value)
            .map(|s| actor(ev).service_account = Some(s))
            .is_some(),
        "resource_path" => text(&value).map(|s| resource(ev).path = Some(s)).is_some(),
        "metadata" => match value {
            Value::Object(m) => {
                metadata(ev).extend(m);
                return None;
            }
            _ => false,
        },
        _ => false,
    };
    (!handled).then_some((key, value))
}

fn apply_actor(ev: &mut Event, value: Value) -> Result<(), Value> {
    let a = match value {
        Value::Object(members) => {
            let [kind, id, email, service_account] =
                struct_members(ev, "actor", members, ACTOR_FIELDS);
            Actor {
                kind,
                id,
                email,
                service_account,
            }
        }
        other => serde_json::from_value::<Actor>(other.clone()).map_err(|_| other)?,
    };
    actor(ev).merge(a);
    Ok(())
}

fn apply_resource(ev: &mut Event, value: Value) -> Result<(), Value> {
    let r = match value {
        Value::Object(members) => {
            let [kind, id, name, path] = struct_members(ev, "resource", members, RESOURCE_FIELDS);
            Resource {
                kind,
                id,
                name,
                path,
            }
        }
        other => serde_json::from_value::<Resource>(other.clone()).map_err(|_| other)?,
    };
    resource(ev).merge(r);
    Ok(())
}

/// The fields `names` (in the struct's order) of an `actor` or `resource`
/// object: a string, or a number as its text (as the flat `user_id` takes
/// one: an id sent as `1001` is the id `"1001"`, seen by `redact`, filters
/// and queries); `null` is no value. The members the schema has no field
/// for, and a field's value that is no text (a bool, an object, an array),
/// go to `metadata.<key>` (unknown input lands in metadata: nothing is
/// dropped), merged with what an earlier one put there; the other fields
/// are taken all the same.
fn struct_members(
    ev: &mut Event,
    key: &str,
    members: Map<String, Value>,
    names: [&str; 4],
) -> [Option<String>; 4] {
    let mut fields = [None, None, None, None];
    let mut extra = Map::new();
    for (k, v) in members {
        let Some(i) = names.iter().position(|n| *n == k) else {
            extra.insert(k, v);
            continue;
        };
        match v {
            Value::Null => {}
            v => match owned_text(v) {
                Ok(s) => fields[i] = Some(s),
                Err(v) => {
                    extra.insert(k, v);
                }
            },
        }
    }
    if !extra.is_empty() {
        match metadata(ev)
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(kept) => kept.extend(extra),
            other => *other = Value::Object(extra),
        }
    }
    fields
}

/// A string, or a number as text (what `apply_field` takes as text); the
/// value back when it is neither.
fn owned_text(v: Value) -> Result<String, Value> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        v => Err(v),
    }
}

fn actor(ev: &mut Event) -> &mut Actor {
    ev.actor.get_or_insert_with(Actor::default)
}

fn resource(ev: &mut Event) -> &mut Resource {
    ev.resource.get_or_insert_with(Resource::default)
}

fn metadata(ev: &mut Event) -> &mut Map<String, Value> {
    ev.metadata.get_or_insert_with(Map::new)
}

/// A JSON time: RFC 3339 text, or epoch time in seconds (with a fraction),
/// or, as large as only they can be, milliseconds, microseconds or
/// nanoseconds (see [`epoch_ms`]).
pub fn json_time_ms(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => str_time_ms(s),
        Value::Number(n) => n.as_f64().and_then(epoch_ms),
        _ => None,
    }
}

/// [`json_time_ms`] of a JSON string.
pub(crate) fn str_time_ms(s: &str) -> Option<i64> {
    parse_rfc3339_millis(s).or_else(|| s.parse::<f64>().ok().and_then(epoch_ms))
}

/// Epoch time in milliseconds from a number in seconds (with a fraction)
/// or, told apart by size, in milliseconds (from 1e11: 1973 in
/// milliseconds, the year 5138 in seconds), microseconds (from 1e14) or
/// nanoseconds (from 1e17). `None` for a negative, NaN or infinite number,
/// or one past the year 9999 (no RFC 3339 form).
pub(crate) fn epoch_ms(x: f64) -> Option<i64> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let ms = if x >= 1e17 {
        x / 1e6
    } else if x >= 1e14 {
        x / 1e3
    } else if x >= 1e11 {
        x
    } else {
        x * 1000.0
    };
    (ms <= crate::event::LATEST_MS as f64).then_some(ms.round() as i64)
}

pub(crate) fn json_severity(v: &Value) -> Option<Severity> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n
            .as_u64()
            .filter(|c| *c <= 7)
            .map(|c| Severity::from_syslog(c as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORIGIN: Origin = Origin {
        listener: "tcp",
        address: Some("10.0.0.1:5000"),
        syslog_hint: true,
    };

    fn line(s: &str) -> Event {
        syslog_line_to_event(s.as_bytes(), 1_700_000_000_000, Tz::UTC, &ORIGIN)
    }

    /// The event of `s` on both paths the sources may take: through the
    /// `Event`, and decoded from the record (written directly where it can).
    fn both_paths(s: &str) -> [Event; 2] {
        let rec = syslog_line_to_record(s.as_bytes(), 1_700_000_000_000, Tz::UTC, &ORIGIN);
        [line(s), Event::decode(rec.body()).unwrap()]
    }

    #[test]
    fn facility_maps_to_category_and_pri_to_severity() {
        let ev = line("<38>1 2023-11-14T22:13:20Z h sshd 1 - - Accepted password");
        assert_eq!(ev.category, "AUTHENTICATION");
        assert_eq!(ev.severity, Severity::Info);
        let ev = line("<84>1 2023-11-14T22:13:20Z h sudo - - - x"); // authpriv.warning
        assert_eq!(ev.category, "AUTHENTICATION");
        assert_eq!(ev.severity, Severity::Warning);
        let ev = line("<105>1 2023-11-14T22:13:20Z h auditd - - - x"); // audit.alert
        assert_eq!(ev.category, "SECURITY");
        assert_eq!(ev.severity, Severity::Alert);
        let ev = line("<14>1 2023-11-14T22:13:20Z h app - - - x");
        assert_eq!(ev.category, "SYSTEM");
        assert_eq!(ev.source.as_ref().unwrap().listener, "tcp");
        assert_eq!(ev.source.unwrap().address.as_deref(), Some("10.0.0.1:5000"));
    }

    #[test]
    fn unknown_actor_and_resource_members_land_in_metadata() {
        let ev = line(concat!(
            "<14>1 2023-11-14T22:13:20Z h app - - - ",
            r#"{"actor":{"id":"a","extra":"z"},"resource":{"id":"r","colour":"blue","tags":[1]},"action":"x"}"#
        ));
        assert_eq!(ev.actor.as_ref().unwrap().id.as_deref(), Some("a"));
        assert_eq!(ev.resource.as_ref().unwrap().id.as_deref(), Some("r"));
        let m = ev.metadata.expect("metadata");
        assert_eq!(m["actor"], serde_json::json!({"extra": "z"}));
        assert_eq!(
            m["resource"],
            serde_json::json!({"colour": "blue", "tags": [1]})
        );
        // only known members: nothing in metadata
        let ev = line(r#"<14>1 - h app - - - {"actor":{"id":"a","type":"user"}}"#);
        assert!(ev.metadata.is_none(), "{:?}", ev.metadata);
    }

    /// A number in an `actor` or `resource` member is its text, as the flat
    /// `user_id` takes one (the whole object went to `metadata`, past
    /// `redact` and the filters); `null` is no value; a member that is no
    /// text (a bool, an object, an array) goes to `metadata.<key>` alone,
    /// and the others are taken.
    #[test]
    fn numbers_in_actor_and_resource_members_are_their_text() {
        let json = r#"{"actor":{"type":7,"id":1001,"email":"a@b","service_account":2.5},"resource":{"type":1,"id":42,"name":-3,"path":"/secret/p"}}"#;
        let Value::Object(obj) = serde_json::from_str::<Value>(json).unwrap() else {
            unreachable!()
        };
        for ev in [
            normalize_json(obj, 0, &ORIGIN),
            line(&format!("<14>1 - h app - - - {json}")),
        ] {
            assert!(ev.metadata.is_none(), "{:?}", ev.metadata);
            assert_eq!(
                ev.actor,
                Some(Actor {
                    kind: Some("7".into()),
                    id: Some("1001".into()),
                    email: Some("a@b".into()),
                    service_account: Some("2.5".into()),
                })
            );
            assert_eq!(
                ev.resource,
                Some(Resource {
                    kind: Some("1".into()),
                    id: Some("42".into()),
                    name: Some("-3".into()),
                    path: Some("/secret/p".into()),
                })
            );
        }
        // the same as the flat keys
        let nested = line(r#"<14>1 - h app - - - {"actor":{"id":1001},"resource":{"path":5}}"#);
        let flat = line(r#"<14>1 - h app - - - {"user_id":1001,"resource_path":5}"#);
        assert_eq!((nested.actor, nested.resource), (flat.actor, flat.resource));
        // no text: that member alone in metadata
        let ev = line(concat!(
            "<14>1 - h app - - - ",
            r#"{"actor":{"id":true,"email":"a@b","type":null,"x":1},"resource":{"id":[1],"name":{"n":2},"path":"/p"}}"#
        ));
        let a = ev.actor.unwrap();
        assert_eq!(
            (a.id, a.email.as_deref(), a.kind),
            (None, Some("a@b"), None)
        );
        let r = ev.resource.unwrap();
        assert_eq!((r.id, r.name, r.path.as_deref()), (None, None, Some("/p")));
        let m = ev.metadata.unwrap();
        assert_eq!(m["actor"], json!({"id": true, "x": 1}));
        assert_eq!(m["resource"], json!({"id": [1], "name": {"n": 2}}));
        // not an object: kept whole, as before
        let ev = line(r#"<14>1 - h app - - - {"actor":1001,"resource":"r"}"#);
        assert_eq!((ev.actor, ev.resource), (None, None));
        assert_eq!(
            Value::Object(ev.metadata.unwrap()),
            json!({"actor": 1001, "resource": "r"})
        );
    }

    #[test]
    fn a_blank_event_id_is_no_id() {
        for blank in ["\"\"", "\"   \""] {
            let ev = line(&format!(
                "<14>1 2023-11-14T22:13:20Z h app - - - {{\"event_id\":{blank},\"action\":\"x\"}}"
            ));
            assert!(ev.event_id.starts_with("evt_"), "{blank}: {}", ev.event_id);
            assert!(ev.metadata.is_none(), "{blank}: {:?}", ev.metadata);
        }
    }

    /// A MSG is read without the white space around it, after a BOM too
    /// (`\u{feff}  hello` was `  hello`, and `hello` without the BOM).
    #[test]
    fn white_space_after_a_bom_is_not_message() {
        for text in [
            "<14>1 2023-11-14T22:13:20Z h app - - - \u{feff}  hello there ",
            "<14>1 2023-11-14T22:13:20Z h app - - -   hello there",
            "<14>Nov 14 22:13:20 h app: \u{feff}\t hello there",
            "<14>Nov 14 22:13:20 h app:   hello there",
        ] {
            for ev in both_paths(text) {
                assert_eq!(ev.message.as_deref(), Some("hello there"), "{text:?}");
            }
        }
    }

    #[test]
    fn json_msg_fills_canonical_fields() {
        let ev = line(concat!(
            "<14>1 2023-11-14T22:13:20Z h app - - - \u{feff}",
            r#"{"event_id":"e1","timestamp":"2024-01-01T00:00:00Z","tenant_id":"acme","action":"user.login","#,
            r#""outcome":"failure","category":"security","severity":"error","user_id":"u1","user_email":"a@b","#,
            r#""resource_path":"/etc/passwd","ip":"1.2.3.4","user_agent":"curl","session_id":"s","extra":{"k":1},"metadata":{"m":2}}"#
        ));
        assert!(!ev.parse_error);
        assert_eq!(ev.event_id, "e1");
        assert_eq!(ev.timestamp, "2024-01-01T00:00:00.000Z");
        assert_eq!(ev.tenant_id.as_deref(), Some("acme"));
        assert_eq!(ev.action.as_deref(), Some("user.login"));
        assert_eq!(ev.outcome.as_deref(), Some("failure"));
        assert_eq!(ev.category, "SECURITY");
        assert_eq!(ev.severity, Severity::Error);
        let actor = ev.actor.unwrap();
        assert_eq!(actor.id.as_deref(), Some("u1"));
        assert_eq!(actor.email.as_deref(), Some("a@b"));
        assert_eq!(ev.resource.unwrap().path.as_deref(), Some("/etc/passwd"));
        assert_eq!(ev.source_ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(ev.user_agent.as_deref(), Some("curl"));
        assert_eq!(ev.session_id.as_deref(), Some("s"));
        let md = ev.metadata.unwrap();
        assert_eq!(md["extra"], json!({"k": 1}));
        assert_eq!(md["m"], 2);
        assert_eq!(ev.message, None);
    }

    #[test]
    fn unparseable_input_is_kept_with_parse_error() {
        let ev = syslog_line_to_event(b"\xff\xfe garbage", 5_000, Tz::UTC, &ORIGIN);
        assert!(ev.parse_error);
        assert_eq!(ev.message.as_deref(), Some("\u{fffd}\u{fffd} garbage"));
        assert_eq!(ev.timestamp_ms, 5_000);
        assert!(ev.syslog.is_none());
    }

    /// A time whose UTC form is past the year 9999 (or before 0000) has no
    /// RFC 3339 form: it was written `+10000-01-01T00:59:59.000Z`. A syslog
    /// line with one is kept whole as a parse error (with its PRI); a JSON
    /// `timestamp` with one is no time (the receive time), kept in
    /// `metadata`, on the event and the record paths alike.
    #[test]
    fn a_time_past_the_year_9999_in_utc_is_no_time() {
        for text in [
            "<13>1 9999-12-31T23:59:59-01:00 h a p m - x",
            "<13>1 0000-01-01T00:00:00+01:00 h a p m - y",
            "<13>9999-12-31T23:59:59-01:00 h app: rsyslog's forwarding format",
            // the general path (syslog_loose): two spaces after the time
            "<13>1 9999-12-31T23:59:59-01:00  h a p m - z",
        ] {
            for ev in both_paths(text) {
                assert!(ev.parse_error, "{text}");
                assert_eq!(ev.message.as_deref(), Some(text));
                assert_eq!(ev.timestamp_ms, 1_700_000_000_000, "{text}");
            }
        }
        // the last millisecond of 9999 is a time
        let ev = line("<13>1 9999-12-31T23:59:59.999Z h a p m - x");
        assert!(!ev.parse_error);
        assert_eq!(ev.timestamp.as_str(), "9999-12-31T23:59:59.999Z");
        for value in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00"] {
            let body = format!(r#"{{"action":"a","timestamp":"{value}"}}"#);
            let origin = Origin {
                listener: "http",
                address: None,
                syslog_hint: false,
            };
            let events =
                crate::parse::parse_events_body(body.as_bytes(), 1_700_000_000_000, &origin)
                    .unwrap();
            let records =
                crate::parse::parse_events_records(body.as_bytes(), 1_700_000_000_000, &origin)
                    .unwrap();
            for ev in [events[0].clone(), Event::decode(records[0].body()).unwrap()] {
                assert_eq!(ev.timestamp_ms, 1_700_000_000_000, "{value}");
                assert_eq!(ev.metadata.as_ref().unwrap()["timestamp"], json!(value));
            }
        }
    }

    /// A repeated SD-PARAM keeps every value, in order, as an array (RFC
    /// 5424 §6.3.3; `origin`'s `ip` is the standard case): only the last
    /// was kept. A repeated SD-ID merges its params the same way.
    #[test]
    fn a_repeated_sd_param_keeps_every_value() {
        for text in [
            r#"<13>1 2026-12-07T10:00:00Z h a p m [origin ip="10.0.0.1" ip="10.0.0.2" software="x"] m"#,
            r#"<13>1 2026-12-07T10:00:00Z h a p m [origin ip="10.0.0.1" software="x"][origin ip="10.0.0.2"] m"#,
            // the general path (syslog_loose): two spaces before MSGID
            r#"<13>1 2026-12-07T10:00:00Z h a p  m [origin ip="10.0.0.1" ip="10.0.0.2" software="x"] m"#,
        ] {
            for ev in both_paths(text) {
                assert!(!ev.parse_error, "{text}");
                let sd = &ev.syslog.as_ref().unwrap().structured_data;
                assert_eq!(
                    serde_json::Value::Object(sd.clone()),
                    json!({"origin": {"ip": ["10.0.0.1", "10.0.0.2"], "software": "x"}}),
                    "{text}"
                );
            }
        }
        let three = line(r#"<13>1 - h a p m [x a="1"][x a="2" a="3"] m"#);
        assert_eq!(
            three.syslog.unwrap().structured_data["x"],
            json!({"a": ["1", "2", "3"]})
        );
    }

    /// A line that does not parse keeps its PRI (RFC 3164 §4.3.2): an
    /// `auth.crit` line was a `notice` and slipped past severity filters.
    #[test]
    fn a_line_that_does_not_parse_keeps_its_pri() {
        for (text, severity, category) in [
            ("<34>plain text", Severity::Critical, "AUTHENTICATION"),
            (
                // a Cisco header without the mnemonic that marks one
                "<187>123: *Mar  1 18:46:11.123: LINK-3-UPDOWN: down",
                Severity::Error,
                "SYSTEM",
            ),
            // STRUCTURED-DATA not well formed: kept whole, with its PRI
            (
                "<110>1 2026-12-07T10:00:00Z h a p m [a@1 x=v] m",
                Severity::Info,
                "SECURITY",
            ),
        ] {
            let pri: u8 = text[1..text.find('>').unwrap()].parse().unwrap();
            for ev in both_paths(text) {
                assert!(ev.parse_error, "{text}");
                assert_eq!(ev.message.as_deref(), Some(text));
                assert_eq!(
                    (ev.severity, ev.category.as_str()),
                    (severity, category),
                    "{text}"
                );
                let sys = ev.syslog.as_ref().unwrap();
                assert_eq!(
                    (sys.facility, sys.severity),
                    (Some(pri >> 3), Some(pri & 7))
                );
                assert_eq!(sys.hostname, None);
            }
        }
        // no PRI, or one out of range: no syslog fields, `notice`
        for text in ["plain text", "<192>plain", "<13 x"] {
            let ev = line(text);
            assert!(ev.parse_error && ev.syslog.is_none(), "{text}");
            assert_eq!(ev.severity, Severity::Notice, "{text}");
        }
    }

    /// Cisco's headers are read (they were kept whole as parse errors):
    /// the counter in `structured_data.meta.sequenceId`, the time, the
    /// origin host, the message from the mnemonic on.
    #[test]
    fn a_cisco_line_is_read_by_both_paths() {
        let text = "<187>123: rtr-1: *Nov 14 22:13:20.250 UTC: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down";
        for ev in both_paths(text) {
            assert!(!ev.parse_error, "{ev:?}");
            assert_eq!(ev.timestamp_ms, 1_700_000_000_250);
            assert_eq!(ev.severity, Severity::Error);
            assert_eq!(
                ev.message.as_deref(),
                Some("%LINK-3-UPDOWN: Interface Gi0/1, changed state to down")
            );
            let sys = ev.syslog.as_ref().unwrap();
            assert_eq!(sys.hostname.as_deref(), Some("rtr-1"));
            assert_eq!(sys.app_name, None);
            assert_eq!(
                serde_json::Value::Object(sys.structured_data.clone()),
                serde_json::json!({"meta": {"sequenceId": "123"}})
            );
        }
    }

    #[test]
    fn the_record_path_takes_exactly_the_valid_utf8_lines_directly() {
        // The direct path needs the line as text (checked with simdutf8);
        // a line that is not UTF-8 takes the general, lossy path.
        let record_message = |line: &[u8]| {
            let rec = syslog_line_to_record(line, 5_000, Tz::UTC, &ORIGIN);
            (
                !rec.hint().is_empty(),
                Event::decode(rec.body()).unwrap().message,
            )
        };
        // long enough for the SIMD check's wide path, one 2-, 3-, 4-byte character each
        let valid = format!("<13>1 - h a p m - {}é€😀 end", "x".repeat(200));
        assert_eq!(
            record_message(valid.as_bytes()),
            (true, Some(format!("{}é€😀 end", "x".repeat(200))))
        );
        for bad in [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98"] {
            let mut line = valid.clone().into_bytes();
            let at = line.len() - 4;
            line.splice(at..at, bad.iter().copied());
            let (hinted, message) = record_message(&line);
            assert!(!hinted, "not the direct path: {bad:?}");
            assert!(message.unwrap().contains('\u{fffd}'), "{bad:?}");
        }
    }

    #[test]
    fn nested_actor_and_resource_and_numbers() {
        let obj = json!({
            "actor": {"type": "user", "id": "u", "service_account": "sa"},
            "resource": {"type": "file", "name": "n"},
            "severity": 3,
            "timestamp": 1_700_000_000.5,
            "outcome": {"weird": true}
        });
        let Value::Object(obj) = obj else {
            unreachable!()
        };
        let ev = normalize_json(obj, 0, &ORIGIN);
        assert_eq!(ev.actor.as_ref().unwrap().kind.as_deref(), Some("user"));
        assert_eq!(ev.actor.unwrap().service_account.as_deref(), Some("sa"));
        assert_eq!(ev.resource.unwrap().name.as_deref(), Some("n"));
        assert_eq!(ev.severity, Severity::Error);
        assert_eq!(ev.timestamp_ms, 1_700_000_000_500);
        assert_eq!(ev.metadata.unwrap()["outcome"], json!({"weird": true}));
    }
}

#[cfg(test)]
mod time_tests {
    use super::*;
    use serde_json::json;

    /// An epoch time past 9999-12-31 has no RFC 3339 form: no time (it was
    /// taken up to 1e15 ms, the year 33658, and written `+33658-…`).
    #[test]
    fn epoch_times_past_the_year_9999_are_no_times() {
        // the last millisecond of 9999, in nanoseconds (seconds stop at
        // 1e11, the year 5138); a millisecond later is past the year 9999
        assert_eq!(
            json_time_ms(&json!(253_402_300_799_999e6)),
            Some(253_402_300_799_999)
        );
        assert_eq!(json_time_ms(&json!(253_402_300_800_000e6)), None);
        assert_eq!(json_time_ms(&json!(1e30)), None);
        assert_eq!(json_time_ms(&json!("1e30")), None);
        assert_eq!(json_time_ms(&json!(1_700_000_000)), Some(1_700_000_000_000));
    }

    /// Epoch time in milliseconds, microseconds and nanoseconds is told
    /// apart by its size, as on the HEC endpoint (it was read as
    /// milliseconds past the year 9999, so no time: the receive time).
    #[test]
    fn epoch_times_in_finer_units_are_read_by_their_size() {
        let ms = 1_700_000_000_123i64;
        assert_eq!(json_time_ms(&json!(1_700_000_000.123)), Some(ms));
        assert_eq!(json_time_ms(&json!(ms)), Some(ms));
        assert_eq!(json_time_ms(&json!(ms * 1000 + 456)), Some(ms));
        assert_eq!(json_time_ms(&json!(ms * 1_000_000 + 456_789)), Some(ms));
        assert_eq!(json_time_ms(&json!("1700000000123456")), Some(ms));
        // the edges: 1e11 is milliseconds (1973), 1e14 microseconds (1973),
        // 1e17 nanoseconds (1973)
        assert_eq!(
            json_time_ms(&json!(99_999_999_999i64)),
            Some(99_999_999_999_000)
        );
        assert_eq!(
            json_time_ms(&json!(100_000_000_000i64)),
            Some(100_000_000_000)
        );
        assert_eq!(
            json_time_ms(&json!(100_000_000_000_000i64)),
            Some(100_000_000_000)
        );
        assert_eq!(
            json_time_ms(&json!(100_000_000_000_000_000i64)),
            Some(100_000_000_000)
        );
        assert_eq!(json_time_ms(&json!(-1)), None);
    }
}
