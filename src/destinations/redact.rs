//! A destination's `redact = { … }`: fields removed or pseudonymised before
//! the event is encoded for that destination.
//!
//! - `drop_fields`: dotted paths (`metadata`, `actor.email`,
//!   `syslog.structured_data.origin`) removed from the event.
//! - `hash_fields`: dotted paths whose values are replaced by
//!   `hex(HMAC-SHA256(hash_key, value))`: stable for one key (a SIEM can still
//!   correlate), different across keys, not reversible without the key. A
//!   string is hashed as its (unescaped) text, any other value except `null`
//!   as its JSON text (`42`, `true`, `{"a":1}`); `null` stays `null`.
//!
//! A path that is both dropped and hashed is dropped; a path under a dropped
//! or hashed parent is covered by the parent's rule. Paths that are absent from an event are ignored.
//!
//! The body is not rebuilt through a `serde_json::Map` (sorted, since the
//! crate does not enable serde_json's `preserve_order`): objects on a
//! redacted path are read as ordered `(key, raw value)` pairs, so key order is
//! kept and every untouched value is copied byte for byte.

use crate::config::ConfigError;
use crate::destinations::settings::RedactSettings;
use hmac::{Hmac, Mac};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;
use std::borrow::Cow;
use std::fmt;
use thiserror::Error;

/// Why a body could not be redacted.
#[derive(Debug, Error)]
pub enum RedactError {
    #[error("event body is not a JSON object: {0}")]
    InvalidJson(#[from] serde_json::Error),
}

/// What to do at a path's last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Hash,
}

/// One level of the path tree: per key, either an action or deeper paths.
#[derive(Debug, Clone, Default)]
struct Node {
    children: Vec<(String, Child)>,
}

#[derive(Debug, Clone)]
enum Child {
    Leaf(Action),
    Inner(Node),
}

/// A compiled redaction.
#[derive(Clone)]
pub struct Redactor {
    root: Node,
    key: Vec<u8>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("root", &self.root)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Redactor {
    /// Compiles `settings`; `None` when there is nothing to do. `path` is the
    /// redact key path (`destinations.NAME.redact`).
    pub fn new(settings: &RedactSettings, path: &str) -> Result<Option<Redactor>, ConfigError> {
        if settings.drop_fields.is_empty() && settings.hash_fields.is_empty() {
            return Ok(None);
        }
        let key = match (&settings.hash_key, settings.hash_fields.is_empty()) {
            (Some(k), _) if !k.is_empty() => k.as_bytes().to_vec(),
            (_, false) => {
                return Err(ConfigError::new(
                    format!("{path}.hash_key"),
                    "required (and not empty) when hash_fields is set",
                ))
            }
            (_, true) => Vec::new(),
        };
        let mut root = Node::default();
        // Hashes first, so a drop of the same or a parent path replaces them.
        for (i, f) in settings.hash_fields.iter().enumerate() {
            let segs = split_path(f, &format!("{path}.hash_fields[{i}]"))?;
            root.insert(&segs, Action::Hash);
        }
        for (i, f) in settings.drop_fields.iter().enumerate() {
            let segs = split_path(f, &format!("{path}.drop_fields[{i}]"))?;
            root.insert(&segs, Action::Drop);
        }
        Ok(Some(Redactor { root, key }))
    }

    /// Returns `body` (a JSON object) with the configured fields dropped or
    /// hashed, as compact JSON.
    pub fn apply(&self, body: &[u8]) -> Result<Vec<u8>, RedactError> {
        let raw: &RawValue = serde_json::from_slice(body)?;
        let mut out = Vec::with_capacity(body.len());
        self.write_object(&self.root, raw, &mut out)?;
        Ok(out)
    }

    /// Writes the object `raw` with `node`'s rules applied.
    fn write_object(
        &self,
        node: &Node,
        raw: &RawValue,
        out: &mut Vec<u8>,
    ) -> Result<(), RedactError> {
        let Ordered(fields) = serde_json::from_str(raw.get())?;
        out.push(b'{');
        let mut first = true;
        for (key, value) in fields {
            let child = node.child(&key);
            if matches!(child, Some(Child::Leaf(Action::Drop))) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, key.as_ref())?;
            out.push(b':');
            match child {
                Some(Child::Leaf(_)) => self.write_hashed(value, out)?,
                Some(Child::Inner(inner)) if value.get().starts_with('{') => {
                    self.write_object(inner, value, out)?
                }
                _ => out.extend_from_slice(value.get().as_bytes()),
            }
        }
        out.push(b'}');
        Ok(())
    }

    fn write_hashed(&self, value: &RawValue, out: &mut Vec<u8>) -> Result<(), RedactError> {
        let text = value.get();
        if text == "null" {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        let input: Cow<'_, str> = if text.starts_with('"') {
            Cow::Owned(serde_json::from_str::<String>(text)?)
        } else {
            Cow::Borrowed(text)
        };
        out.push(b'"');
        out.extend_from_slice(self.hash(input.as_bytes()).as_bytes());
        out.push(b'"');
        Ok(())
    }

    /// `hex(HMAC-SHA256(key, data))`.
    fn hash(&self, data: &[u8]) -> String {
        // HMAC takes keys of any length, so this cannot fail; an empty key is
        // only used when no field is hashed.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

impl Node {
    fn child(&self, key: &str) -> Option<&Child> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, c)| c)
    }

    fn insert(&mut self, segs: &[&str], action: Action) {
        let Some((head, rest)) = segs.split_first() else {
            return;
        };
        let idx = match self.children.iter().position(|(k, _)| k == head) {
            Some(i) => i,
            None => {
                self.children
                    .push(((*head).to_string(), Child::Inner(Node::default())));
                self.children.len() - 1
            }
        };
        let slot = &mut self.children[idx].1;
        if rest.is_empty() {
            // The later rule wins; drops are inserted after hashes.
            *slot = Child::Leaf(action);
            return;
        }
        match slot {
            // A hashed or dropped parent already covers everything under it.
            Child::Leaf(_) => {}
            Child::Inner(n) => n.insert(rest, action),
        }
    }
}

fn split_path<'a>(p: &'a str, key: &str) -> Result<Vec<&'a str>, ConfigError> {
    let segs: Vec<&str> = p.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(ConfigError::new(
            key,
            format!("`{p}` is not a dotted field path like `actor.email`"),
        ));
    }
    Ok(segs)
}

/// A JSON object read as its fields in order, values left raw.
struct Ordered<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Ordered<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    fields.push((k, v));
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Event, Severity, SyslogFields};
    use serde_json::{json, Value};

    const P: &str = "destinations.x.redact";

    fn redactor(src: &str) -> Redactor {
        let s: RedactSettings = toml::from_str(src).expect("settings");
        Redactor::new(&s, P)
            .expect("valid")
            .expect("something to do")
    }

    fn sample() -> Vec<u8> {
        let mut ev = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
        ev.actor = Some(Actor {
            id: Some("u-1".into()),
            email: Some("bob@example.com".into()),
            ..Default::default()
        });
        ev.source_ip = Some("10.0.0.1".into());
        let mut meta = serde_json::Map::new();
        meta.insert("z".into(), json!(1));
        meta.insert("a".into(), json!({"n": 2.50}));
        ev.metadata = Some(meta);
        let mut sd = serde_json::Map::new();
        sd.insert("origin".into(), json!({"ip": "10.0.0.9"}));
        sd.insert("meta".into(), json!({"seq": "7"}));
        ev.syslog = Some(SyslogFields {
            facility: Some(4),
            structured_data: sd,
            ..Default::default()
        });
        ev.encode().body
    }

    fn keys(body: &[u8]) -> Vec<String> {
        // Top-level key order, read without a Map.
        let Ordered(f) = serde_json::from_slice(body).expect("object");
        f.into_iter().map(|(k, _)| k.into_owned()).collect()
    }

    #[test]
    fn nothing_to_do_is_none() {
        assert!(Redactor::new(&RedactSettings::default(), P)
            .expect("ok")
            .is_none());
    }

    #[test]
    fn drops_fields_and_keeps_order() {
        let r = redactor(
            r#"drop_fields = ["metadata", "actor.email", "source_ip", "syslog.structured_data.origin", "no.such.field"]"#,
        );
        let body = sample();
        let out = r.apply(&body).expect("redacted");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert!(v.get("metadata").is_none());
        assert!(v.get("source_ip").is_none());
        assert!(v["actor"].get("email").is_none());
        assert_eq!(v["actor"]["id"], "u-1");
        assert!(v["syslog"]["structured_data"].get("origin").is_none());
        assert_eq!(v["syslog"]["structured_data"]["meta"]["seq"], "7");
        let mut expected = keys(&body);
        expected.retain(|k| k != "metadata" && k != "source_ip");
        assert_eq!(keys(&out), expected);
        assert!(!out.contains(&b' '), "compact");
    }

    #[test]
    fn untouched_values_are_byte_identical() {
        let body = br#"{"b":{"x":1.50,"y":"caf\u00e9"},"a":[1, 2],"actor":{"email":"e","id":"i"}}"#;
        let r = redactor(r#"drop_fields = ["actor.email"]"#);
        let out = r.apply(body).expect("redacted");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"b":{"x":1.50,"y":"caf\u00e9"},"a":[1, 2],"actor":{"id":"i"}}"#
        );
    }

    #[test]
    fn hashes_are_stable_keyed_and_hex() {
        let r1 = redactor("hash_fields = [\"actor.email\", \"n\"]\nhash_key = \"k1\"");
        let r2 = redactor("hash_fields = [\"actor.email\", \"n\"]\nhash_key = \"k2\"");
        let body = br#"{"actor":{"email":"bob@example.com","id":"u"},"n":42,"z":null}"#;
        let a: Value = serde_json::from_slice(&r1.apply(body).expect("ok")).expect("json");
        let b: Value = serde_json::from_slice(&r1.apply(body).expect("ok")).expect("json");
        let c: Value = serde_json::from_slice(&r2.apply(body).expect("ok")).expect("json");
        assert_eq!(a, b, "stable across calls");
        let h = a["actor"]["email"].as_str().expect("string");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, c["actor"]["email"].as_str().expect("string"), "keyed");
        assert_eq!(a["actor"]["id"], "u");
        // Numbers are hashed from their JSON text.
        assert_eq!(a["n"].as_str().expect("hashed"), r1.hash(b"42"));
        // Known HMAC-SHA256 value: key "k1", message "bob@example.com".
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"k1").expect("key");
        mac.update(b"bob@example.com");
        assert_eq!(h, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn escaped_strings_are_hashed_unescaped() {
        let r = redactor("hash_fields = [\"u\"]\nhash_key = \"k\"");
        let a = r.apply(br#"{"u":"caf\u00e9"}"#).expect("ok");
        let b = r.apply("{\"u\":\"café\"}".as_bytes()).expect("ok");
        assert_eq!(a, b);
    }

    #[test]
    fn drop_wins_over_hash() {
        let r = redactor(
            "hash_fields = [\"actor.email\"]\ndrop_fields = [\"actor\"]\nhash_key = \"k\"",
        );
        let out = r.apply(br#"{"actor":{"email":"e"},"x":1}"#).expect("ok");
        assert_eq!(out, br#"{"x":1}"#);
    }

    #[test]
    fn config_errors_name_the_key() {
        let s: RedactSettings = toml::from_str(r#"hash_fields = ["a"]"#).expect("settings");
        assert_eq!(
            Redactor::new(&s, P).expect_err("no key").path,
            "destinations.x.redact.hash_key"
        );
        let s: RedactSettings = toml::from_str(r#"drop_fields = ["a", "b..c"]"#).expect("settings");
        assert_eq!(
            Redactor::new(&s, P).expect_err("bad path").path,
            "destinations.x.redact.drop_fields[1]"
        );
    }

    #[test]
    fn non_object_body_is_an_error() {
        let r = redactor(r#"drop_fields = ["a"]"#);
        assert!(r.apply(b"[1,2]").is_err());
        assert!(r.apply(b"{oops").is_err());
    }
}
