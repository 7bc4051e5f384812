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
use crate::event::json_writer;
use hmac::{Hmac, Mac};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
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
    /// HMAC-SHA256 already keyed with `hash_key` (empty when nothing is
    /// hashed); cloned per hashed value instead of re-deriving the key pads.
    mac: Hmac<Sha256>,
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
        let key: &[u8] = match (&settings.hash_key, settings.hash_fields.is_empty()) {
            (Some(k), _) if !k.is_empty() => k.as_bytes(),
            (_, false) => {
                return Err(ConfigError::new(
                    format!("{path}.hash_key"),
                    "required (and not empty) when hash_fields is set",
                ))
            }
            (_, true) => &[],
        };
        // HMAC takes keys of any length, so this cannot fail; an empty key is
        // only used when no field is hashed.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
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
        Ok(Some(Redactor { root, mac }))
    }

    /// Returns `body` (a JSON object) with the configured fields dropped or
    /// hashed, as compact JSON.
    ///
    /// The body is read once, straight from the slice: keys without escapes
    /// are borrowed and written back as they are (a JSON string without a
    /// backslash has nothing serde_json would escape), values are borrowed
    /// raw. Only objects on a redacted path are read again, as their own
    /// (small) raw text.
    pub fn apply(&self, body: &[u8]) -> Result<Vec<u8>, RedactError> {
        let mut out = Vec::with_capacity(body.len());
        let mut de = serde_json::Deserializer::from_slice(body);
        ObjectSeed {
            r: self,
            node: &self.root,
            out: &mut out,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(out)
    }

    /// Writes the object `raw` (valid JSON text of an object) with `node`'s
    /// rules applied.
    fn write_object(&self, node: &Node, raw: &str, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut de = serde_json::Deserializer::from_str(raw);
        ObjectSeed { r: self, node, out }.deserialize(&mut de)?;
        de.end()
    }

    /// Writes one field (`"key":value`, preceded by `,` unless `first`).
    fn write_field(
        &self,
        node: &Node,
        key: &Key<'_>,
        value: &RawValue,
        first: &mut bool,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let child = node.child(key.as_str());
        if matches!(child, Some(Child::Leaf(Action::Drop))) {
            return Ok(());
        }
        if !*first {
            out.push(b',');
        }
        *first = false;
        match key {
            // No escape in the input: nothing to escape in the output either
            // (serde_json's parser rejects raw control characters in strings).
            Key::Borrowed(k) => {
                out.push(b'"');
                out.extend_from_slice(k.as_bytes());
                out.push(b'"');
            }
            Key::Owned(k) => json_writer::string(out, k),
        }
        out.push(b':');
        match child {
            Some(Child::Leaf(_)) => self.write_hashed(value, out)?,
            Some(Child::Inner(inner)) if value.get().starts_with('{') => {
                self.write_object(inner, value.get(), out)?
            }
            _ => out.extend_from_slice(value.get().as_bytes()),
        }
        Ok(())
    }

    fn write_hashed(&self, value: &RawValue, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let text = value.get();
        if text == "null" {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        let input: Cow<'_, str> = match text.strip_prefix('"') {
            // A valid JSON string without a backslash: its text is between
            // the quotes.
            Some(inner) if !text.contains('\\') => {
                Cow::Borrowed(inner.strip_suffix('"').unwrap_or(inner))
            }
            Some(_) => Cow::Owned(serde_json::from_str::<String>(text)?),
            None => Cow::Borrowed(text),
        };
        self.hash_into(input.as_bytes(), out);
        Ok(())
    }

    /// Writes `"hex(HMAC-SHA256(key, data))"`.
    fn hash_into(&self, data: &[u8], out: &mut Vec<u8>) {
        let mut mac = self.mac.clone();
        mac.update(data);
        let mut hex = [0u8; 64];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut hex)
            .unwrap_or_else(|_| unreachable!("32 bytes are 64 hex digits"));
        out.push(b'"');
        out.extend_from_slice(&hex);
        out.push(b'"');
    }

    /// `hex(HMAC-SHA256(key, data))`.
    #[cfg(test)]
    fn hash(&self, data: &[u8]) -> String {
        let mut out = Vec::new();
        self.hash_into(data, &mut out);
        String::from_utf8(out[1..out.len() - 1].to_vec()).expect("hex")
    }
}

/// An object key: borrowed from the input when it has no escape.
enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one JSON object and writes it, redacted by `node`, to `out` as it
/// goes (no per-object field list).
struct ObjectSeed<'r, 'o> {
    r: &'r Redactor,
    node: &'r Node,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            self.r
                .write_field(self.node, &k, v, &mut first, self.out)
                .map_err(de::Error::custom)?;
        }
        self.out.push(b'}');
        Ok(())
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

/// The previous implementation, kept as the byte-for-byte reference for the
/// differential tests (two full parses, every key copied and re-escaped
/// through serde_json, the HMAC re-keyed per value).
#[cfg(test)]
mod reference {
    use super::{Action, Child, Node};
    use hmac::{Hmac, Mac};
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::Deserialize;
    use serde_json::value::RawValue;
    use sha2::Sha256;
    use std::borrow::Cow;
    use std::fmt;

    pub(super) fn apply(root: &Node, key: &[u8], body: &[u8]) -> serde_json::Result<Vec<u8>> {
        let raw: &RawValue = serde_json::from_slice(body)?;
        let mut out = Vec::with_capacity(body.len());
        write_object(root, key, raw, &mut out)?;
        Ok(out)
    }

    fn write_object(
        node: &Node,
        key: &[u8],
        raw: &RawValue,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let Ordered(fields) = serde_json::from_str(raw.get())?;
        out.push(b'{');
        let mut first = true;
        for (k, value) in fields {
            let child = node.child(&k);
            if matches!(child, Some(Child::Leaf(Action::Drop))) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, k.as_ref())?;
            out.push(b':');
            match child {
                Some(Child::Leaf(_)) => write_hashed(key, value, out)?,
                Some(Child::Inner(inner)) if value.get().starts_with('{') => {
                    write_object(inner, key, value, out)?
                }
                _ => out.extend_from_slice(value.get().as_bytes()),
            }
        }
        out.push(b'}');
        Ok(())
    }

    fn write_hashed(key: &[u8], value: &RawValue, out: &mut Vec<u8>) -> serde_json::Result<()> {
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
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(input.as_bytes());
        out.push(b'"');
        out.extend_from_slice(hex::encode(mac.finalize().into_bytes()).as_bytes());
        out.push(b'"');
        Ok(())
    }

    /// A JSON object read as its fields in order, values left raw.
    pub(super) struct Ordered<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

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
}

#[cfg(test)]
mod tests {
    use super::reference::Ordered;
    use super::*;
    use crate::event::{Actor, Event, Severity, SyslogFields};
    use proptest::prelude::*;
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
        ev.encode().into_body()
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

    /// Keys for generated bodies and paths: plain, needing escapes,
    /// non-ASCII, and the names the sample paths use.
    const KEYS: &[&str] = &[
        "actor", "email", "id", "n", "x", "a\"b", "café", "\u{7}", "a/b", "\\", " ", "😀",
        "metadata", "syslog", "origin",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "1.50",
        "1e5",
        "-12.5E-3",
        "42",
        "123456789012345678901",
    ];
    const STRINGS: &[&str] = &[
        "",
        "bob@example.com",
        "café",
        "a\"b\\c",
        "tab\there\n",
        "\u{1f}\u{7f}",
        "\u{2028}",
        "😀 emoji",
        "/path/to",
        "\u{0}",
    ];

    /// A JSON value as a tree, rendered to text with varied escapes and
    /// whitespace by [`render`].
    #[derive(Debug, Clone)]
    enum J {
        Null,
        Bool(bool),
        Num(usize),
        Str(usize),
        Arr(Vec<J>),
        Obj(Vec<(usize, J)>),
    }

    fn tree() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            (0..NUMBERS.len()).prop_map(J::Num),
            (0..STRINGS.len()).prop_map(J::Str),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
                proptest::collection::vec((0..KEYS.len(), inner), 0..6).prop_map(J::Obj),
            ]
        })
    }

    /// Tiny deterministic generator for rendering choices.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn ws(out: &mut String, rng: &mut Rng) {
        match rng.next(8) {
            0 => out.push(' '),
            1 => out.push_str("\n "),
            _ => {}
        }
    }

    fn render_str(out: &mut String, s: &str, rng: &mut Rng) {
        out.push('"');
        for c in s.chars() {
            let must = c == '"' || c == '\\' || (c as u32) < 0x20;
            let short = match c {
                '"' => Some('"'),
                '\\' => Some('\\'),
                '\n' => Some('n'),
                '\t' => Some('t'),
                '/' => Some('/'),
                _ => None,
            };
            if !must && rng.next(4) != 0 {
                out.push(c);
            } else if let (Some(e), 0) = (short, rng.next(2)) {
                out.push('\\');
                out.push(e);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let hex = format!("{u:04x}");
                    out.push_str("\\u");
                    if rng.next(2) == 0 {
                        out.push_str(&hex.to_uppercase());
                    } else {
                        out.push_str(&hex);
                    }
                }
            }
        }
        out.push('"');
    }

    fn render(out: &mut String, j: &J, rng: &mut Rng) {
        ws(out, rng);
        match j {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(i) => out.push_str(NUMBERS[*i]),
            J::Str(i) => render_str(out, STRINGS[*i], rng),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(out, item, rng);
                }
                ws(out, rng);
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(out, rng);
                    render_str(out, KEYS[*k], rng);
                    ws(out, rng);
                    out.push(':');
                    render(out, v, rng);
                }
                ws(out, rng);
                out.push('}');
            }
        }
        ws(out, rng);
    }

    fn path() -> impl Strategy<Value = String> {
        proptest::collection::vec(0..KEYS.len(), 1..4)
            .prop_map(|segs| segs.iter().map(|&i| KEYS[i]).collect::<Vec<_>>().join("."))
    }

    /// New output == reference output (both `None` when both fail).
    fn same_as_reference(r: &Redactor, body: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        (
            r.apply(body).ok(),
            reference::apply(&r.root, b"k3y", body).ok(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The new writer produces exactly the bytes of the old one, and
        /// fails exactly when it failed.
        #[test]
        fn same_bytes_as_reference(
            fields in proptest::collection::vec((0..KEYS.len(), tree()), 0..10),
            drops in proptest::collection::vec(path(), 0..3),
            hashes in proptest::collection::vec(path(), 0..3),
            seed in any::<u64>(),
            cut in any::<u8>(),
        ) {
            prop_assume!(!drops.is_empty() || !hashes.is_empty());
            let settings = RedactSettings {
                drop_fields: drops,
                hash_fields: hashes,
                hash_key: Some("k3y".into()),
            };
            let r = Redactor::new(&settings, P).expect("valid").expect("something");
            let mut text = String::new();
            render(&mut text, &J::Obj(fields), &mut Rng(seed));
            let cut_at = text.len() * usize::from(cut) / 255;
            // Truncated (mostly invalid, some not UTF-8) bodies must fail alike.
            for body in [text.as_bytes(), &text.as_bytes()[..cut_at]] {
                let (new, old) = same_as_reference(&r, body);
                prop_assert_eq!(new, old, "body {}", String::from_utf8_lossy(body));
            }
        }
    }

    #[test]
    fn same_bytes_as_reference_on_tricky_bodies() {
        let r = redactor(
            r#"drop_fields = ["a\"b", "x.caf\u00e9"]
hash_fields = ["actor.email", "n", "\u00e9"]
hash_key = "k3y""#,
        );
        for body in [
            r#"{"a\"b":1,"x":{"caf\u00e9":2,"y":[1, {"z":"\ud83d\ude00"}]},"n":1.50}"#,
            r#"{"actor":{"email":"b\u00f6b\/x","id":"i"},"\u00e9":{"k":[]},"n":-0}"#,
            r#" { "actor" : { "email" : null } , "n" : "a\"b" , "m":"\u2028" } "#,
            r#"{"x":{"\u0007\t":true},"actor":[1,2],"n":{"o":1e5}}"#,
            r#"{"actor":{"email":"plain"},"n":"\u00e9"}"#,
            r#"{"dup":1,"dup":2,"n":"\u0000"}"#,
            r#"{}"#,
            r#"[1]"#,
            r#"{"a":1} x"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            let (new, old) = same_as_reference(&r, body.as_bytes());
            assert_eq!(new, old, "{body}");
        }
        assert!(same_as_reference(&r, br#"{"n":"x"}"#).0.is_some());
        // Invalid UTF-8 is refused by both.
        let bad = b"{\"a\xff\":1}";
        assert_eq!(same_as_reference(&r, bad), (None, None));
        // The sample event, every field dropped or hashed in turn.
        let body = sample();
        for k in keys(&body) {
            for rule in ["drop_fields", "hash_fields"] {
                let r = redactor(&format!("{rule} = [\"{k}\", \"actor.email\", \"syslog.structured_data.origin\"]\nhash_key = \"k3y\""));
                let (new, old) = same_as_reference(&r, &body);
                assert!(new.is_some());
                assert_eq!(new, old, "{rule} {k}");
            }
        }
    }
}
