//! The fast reader behind the `syslog` destination's `format = "syslog"`: one
//! pass over a ring record body (the compact canonical JSON that
//! `Event::encode` writes) that picks out exactly what the RFC 5424 message
//! is rebuilt from — `syslog.facility`, `syslog.severity`,
//! `syslog.hostname`, `syslog.app_name`, `syslog.procid`, `syslog.msgid`,
//! `syslog.structured_data` and the top-level `message` — without building
//! maps or allocating. Strings stay borrowed from the body; the few that
//! hold JSON escapes are unescaped into a reusable [`Scratch`] buffer when
//! written. STRUCTURED-DATA is rendered into the scratch while it is read.
//!
//! The serde reader in `encode.rs` (`SyslogView`) stays the reference. This
//! scanner accepts only a strict subset of JSON on which it is certain to
//! agree with it byte for byte, and answers [`Fallback`] for everything else
//! so the caller runs the reference instead: a body that is not UTF-8,
//! whitespace anywhere, trailing bytes, truncation, invalid escapes or lone
//! surrogates, a known field twice (serde refuses the body), an escaped key
//! at the top level or in `syslog`, `null` or a wrong type in a field it
//! reads, SD param values other than strings, booleans and unsigned
//! integers (serde prints floats its own way), SD-IDs or param names not in
//! strictly ascending order (the reference sorts them and keeps the last of
//! duplicates; the canonical writer's `serde_json::Map` is already sorted),
//! and nesting deeper than [`MAX_DEPTH`].

use crate::event::json_text::{self, unescape};
use crate::event::rfc5424_fields::{push_sd_name, push_sd_value};
use std::cmp::Ordering;

/// Deepest nesting of skipped values (e.g. in `metadata`) the scanner follows.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why the scanner handed a body to the serde reference reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// The body is not UTF-8.
    NotUtf8,
    /// Not the compact JSON the canonical writer produces: whitespace,
    /// trailing bytes, truncation, a bad escape or number, a lone surrogate.
    Syntax,
    /// The body or `syslog` is not a JSON object.
    NotObject,
    /// A field the reference reads appears twice.
    DuplicateField,
    /// A top-level or `syslog` key written with escapes.
    EscapedKey,
    /// A value of a type or form the scanner leaves to serde (`null`, a
    /// non-string `message`, a float or negative SD value, facility > 255…).
    Unsupported,
    /// SD-IDs or param names not in strictly ascending order.
    Unsorted,
    /// Skipped values nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Reusable buffers for [`scan`]: one per batch, not per event.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The rendered STRUCTURED-DATA of the last scanned body (empty: none).
    pub(crate) sd: Vec<u8>,
    /// An unescaped string.
    pub(crate) text: String,
    /// A second unescaped string (comparing keys that hold escapes).
    other: String,
}

/// The contents of a JSON string as written in the body (between the
/// quotes, escapes not yet decoded). Only made by the scanner, so always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// The contents of a JSON string the relay wrote (a record's
    /// `message`, located by its syslog hint). Decoding is total: an
    /// escape it would not accept decodes to U+FFFD.
    pub(crate) fn from_contents(raw: &'a str) -> JsonStr<'a> {
        JsonStr {
            raw,
            escaped: raw.as_bytes().contains(&b'\\'),
        }
    }

    /// Whether the decoded string is empty (an escape never decodes to nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The decoded string: borrowed from the body, or unescaped into `buf`.
    pub(crate) fn resolve<'s>(&self, buf: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        if !self.escaped {
            return self.raw;
        }
        buf.clear();
        unescape(self.raw, |piece| buf.push_str(piece));
        buf
    }

    /// The decoded string: borrowed from the body unless it holds escapes.
    pub(crate) fn decoded(&self) -> std::borrow::Cow<'a, str> {
        if !self.escaped {
            return std::borrow::Cow::Borrowed(self.raw);
        }
        let mut s = String::with_capacity(self.raw.len());
        unescape(self.raw, |piece| s.push_str(piece));
        std::borrow::Cow::Owned(s)
    }

    /// Appends the decoded string's UTF-8 bytes to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        if self.escaped {
            unescape(self.raw, |piece| out.extend_from_slice(piece.as_bytes()));
        } else {
            out.extend_from_slice(self.raw.as_bytes());
        }
    }
}

/// What [`scan`] found: the fields `encode_syslog` reads. `None` is an
/// absent field; STRUCTURED-DATA is in [`Scratch::sd`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View<'a> {
    pub(crate) facility: Option<u8>,
    pub(crate) severity: Option<u8>,
    pub(crate) hostname: Option<JsonStr<'a>>,
    pub(crate) app_name: Option<JsonStr<'a>>,
    pub(crate) procid: Option<JsonStr<'a>>,
    pub(crate) msgid: Option<JsonStr<'a>>,
    pub(crate) message: Option<JsonStr<'a>>,
    /// The body has a `syslog` object: the event came from syslog, and
    /// its `message` is the MSG.
    pub(crate) from_syslog: bool,
}

/// Reads `body`, renders its STRUCTURED-DATA into `scratch.sd` and returns
/// the other fields, or says why the reference reader must do it.
pub(crate) fn scan<'a>(body: &'a [u8], scratch: &mut Scratch) -> Result<View<'a>, Fallback> {
    scratch.sd.clear();
    let text = std::str::from_utf8(body).map_err(|_| Fallback::NotUtf8)?;
    let mut s = Scanner { s: text, i: 0 };
    let mut view = View::default();
    let (mut seen_syslog, mut seen_message) = (false, false);
    if s.peek() != Some(b'{') {
        return Err(Fallback::NotObject);
    }
    s.i += 1;
    if !s.eat(b'}') {
        loop {
            let key = s.key()?;
            if key.escaped {
                return Err(Fallback::EscapedKey);
            }
            match key.raw {
                "syslog" => {
                    if std::mem::replace(&mut seen_syslog, true) {
                        return Err(Fallback::DuplicateField);
                    }
                    s.syslog_part(&mut view, scratch)?;
                    view.from_syslog = true;
                }
                "message" => {
                    if std::mem::replace(&mut seen_message, true) {
                        return Err(Fallback::DuplicateField);
                    }
                    view.message = Some(s.string_value()?);
                }
                _ => s.skip_value(0)?,
            }
            if !s.next_member()? {
                break;
            }
        }
    }
    if s.i != s.s.len() {
        return Err(Fallback::Syntax);
    }
    Ok(view)
}

/// The top-level `event_id` string of `body` (`None`: absent), read by the
/// same strict scanner (the `elasticsearch` destination's `_id`). Answers
/// [`Fallback`] whenever serde might disagree: for a body serde refuses,
/// a `null` or non-string `event_id`, `event_id` twice, an escaped key.
pub(crate) fn event_id(body: &[u8]) -> Result<Option<JsonStr<'_>>, Fallback> {
    let text = std::str::from_utf8(body).map_err(|_| Fallback::NotUtf8)?;
    let mut s = Scanner { s: text, i: 0 };
    let mut id = None;
    if !s.eat(b'{') {
        return Err(Fallback::NotObject);
    }
    if !s.eat(b'}') {
        loop {
            let key = s.key()?;
            if key.escaped {
                return Err(Fallback::EscapedKey);
            }
            if key.raw == "event_id" {
                if id.is_some() {
                    return Err(Fallback::DuplicateField);
                }
                id = Some(s.string_value()?);
            } else {
                s.skip_value(0)?;
            }
            if !s.next_member()? {
                break;
            }
        }
    }
    if s.i != s.s.len() {
        return Err(Fallback::Syntax);
    }
    Ok(id)
}

/// Strictly ascending by decoded bytes, as the reference's `BTreeMap` orders keys.
fn ascending(prev: Option<JsonStr<'_>>, next: JsonStr<'_>, scratch: &mut Scratch) -> bool {
    let Some(prev) = prev else {
        return true;
    };
    let order = if prev.escaped || next.escaped {
        let a = prev.resolve(&mut scratch.text);
        let b = next.resolve(&mut scratch.other);
        a.cmp(b)
    } else {
        prev.raw.cmp(next.raw)
    };
    order == Ordering::Less
}

/// A cursor over the (UTF-8) body.
struct Scanner<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    /// Consumes `c` if it is next.
    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// `"key":`
    fn key(&mut self) -> Result<JsonStr<'a>, Fallback> {
        if !self.eat(b'"') {
            return Err(Fallback::Syntax);
        }
        let key = self.string()?;
        if !self.eat(b':') {
            return Err(Fallback::Syntax);
        }
        Ok(key)
    }

    /// After a member: true on `,`, false on `}`.
    fn next_member(&mut self) -> Result<bool, Fallback> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(b'}') => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(Fallback::Syntax),
        }
    }

    /// A string value (anything else is left to serde).
    fn string_value(&mut self) -> Result<JsonStr<'a>, Fallback> {
        if !self.eat(b'"') {
            return Err(Fallback::Unsupported);
        }
        self.string()
    }

    /// The rest of a string whose opening quote was consumed.
    fn string(&mut self) -> Result<JsonStr<'a>, Fallback> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = json_text::run_end(b, i);
            match b.get(i) {
                None => return Err(Fallback::Syntax),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += json_text::escape_len(b, i).ok_or(Fallback::Syntax)?;
                }
                Some(c) if *c < 0x20 => return Err(Fallback::Syntax),
                Some(_) => i += 1,
            }
        }
        let raw = self.s.get(start..i).ok_or(Fallback::Syntax)?;
        self.i = i + 1;
        Ok(JsonStr { raw, escaped })
    }

    /// A JSON number (RFC 8259 grammar), as written.
    fn number(&mut self) -> Result<&'a str, Fallback> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return Err(Fallback::Syntax),
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return Err(Fallback::Syntax);
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return Err(Fallback::Syntax);
            }
        }
        self.i = i;
        self.s.get(start..i).ok_or(Fallback::Syntax)
    }

    /// `true`, `false` or `null`, whose first letter is next.
    fn literal(&mut self, word: &str) -> Result<(), Fallback> {
        let rest = self.s.as_bytes().get(self.i..).unwrap_or_default();
        if rest.starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Fallback::Syntax)
        }
    }

    /// Validates and steps over any value (serde ignores these fields).
    fn skip_value(&mut self, depth: usize) -> Result<(), Fallback> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string().map(|_| ())
            }
            Some(b'{') | Some(b'[') if depth >= MAX_DEPTH => Err(Fallback::TooDeep),
            Some(b'{') => {
                self.i += 1;
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    self.key()?;
                    self.skip_value(depth + 1)?;
                    if !self.next_member()? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                if self.eat(b']') {
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Fallback::Syntax),
                    }
                }
            }
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => Err(Fallback::Syntax),
        }
    }

    /// `facility` / `severity`: an integer 0..=255 (serde's `u8`).
    fn u8_value(&mut self) -> Result<u8, Fallback> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(Fallback::Unsupported);
        }
        self.number()?.parse().map_err(|_| Fallback::Unsupported)
    }

    /// The `syslog` object.
    fn syslog_part(&mut self, view: &mut View<'a>, scratch: &mut Scratch) -> Result<(), Fallback> {
        if !self.eat(b'{') {
            return Err(Fallback::NotObject);
        }
        if self.eat(b'}') {
            return Ok(());
        }
        let mut seen_sd = false;
        loop {
            let key = self.key()?;
            if key.escaped {
                return Err(Fallback::EscapedKey);
            }
            let slot = match key.raw {
                "facility" => Some(&mut view.facility),
                "severity" => Some(&mut view.severity),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.replace(self.u8_value()?).is_some() {
                    return Err(Fallback::DuplicateField);
                }
            } else {
                let slot = match key.raw {
                    "hostname" => Some(&mut view.hostname),
                    "app_name" => Some(&mut view.app_name),
                    "procid" => Some(&mut view.procid),
                    "msgid" => Some(&mut view.msgid),
                    _ => None,
                };
                if let Some(slot) = slot {
                    if slot.replace(self.string_value()?).is_some() {
                        return Err(Fallback::DuplicateField);
                    }
                } else if key.raw == "structured_data" {
                    if std::mem::replace(&mut seen_sd, true) {
                        return Err(Fallback::DuplicateField);
                    }
                    self.structured_data(scratch)?;
                } else {
                    self.skip_value(1)?;
                }
            }
            if !self.next_member()? {
                return Ok(());
            }
        }
    }

    /// `structured_data`: `{SD-ID: {PARAM: value}}`, rendered into `scratch.sd`.
    fn structured_data(&mut self, scratch: &mut Scratch) -> Result<(), Fallback> {
        if !self.eat(b'{') {
            return Err(Fallback::Unsupported);
        }
        if self.eat(b'}') {
            return Ok(());
        }
        let mut prev_id = None;
        loop {
            let id = self.key()?;
            if !ascending(prev_id, id, scratch) {
                return Err(Fallback::Unsorted);
            }
            prev_id = Some(id);
            if !self.eat(b'{') {
                return Err(Fallback::Unsupported);
            }
            scratch.sd.push(b'[');
            push_sd_name(&mut scratch.sd, id.resolve(&mut scratch.text));
            if !self.eat(b'}') {
                self.sd_params(scratch)?;
            }
            scratch.sd.push(b']');
            if !self.next_member()? {
                return Ok(());
            }
        }
    }

    /// The params of one SD element, after its `{`, through its `}`.
    fn sd_params(&mut self, scratch: &mut Scratch) -> Result<(), Fallback> {
        let mut prev = None;
        loop {
            let name = self.key()?;
            if !ascending(prev, name, scratch) {
                return Err(Fallback::Unsorted);
            }
            prev = Some(name);
            // a param given more than once: an array of strings, written
            // as the param repeated (others are left to serde)
            if self.peek() == Some(b'[') {
                self.i += 1;
                loop {
                    if !self.eat(b'"') {
                        return Err(Fallback::Unsupported);
                    }
                    let v = self.string()?;
                    scratch.sd.push(b' ');
                    push_sd_name(&mut scratch.sd, name.resolve(&mut scratch.text));
                    scratch.sd.extend_from_slice(b"=\"");
                    push_sd_value(&mut scratch.sd, v.resolve(&mut scratch.text));
                    scratch.sd.push(b'"');
                    if self.eat(b']') {
                        break;
                    }
                    if !self.eat(b',') {
                        return Err(Fallback::Syntax);
                    }
                }
                if !self.next_member()? {
                    return Ok(());
                }
                continue;
            }
            scratch.sd.push(b' ');
            push_sd_name(&mut scratch.sd, name.resolve(&mut scratch.text));
            scratch.sd.extend_from_slice(b"=\"");
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    let v = self.string()?;
                    push_sd_value(&mut scratch.sd, v.resolve(&mut scratch.text));
                }
                Some(b't') => {
                    self.literal("true")?;
                    scratch.sd.extend_from_slice(b"true");
                }
                Some(b'f') => {
                    self.literal("false")?;
                    scratch.sd.extend_from_slice(b"false");
                }
                // serde's `u64` prints as written; negatives and floats are left to it.
                Some(b'0'..=b'9') => {
                    let n = self.number()?;
                    if n.parse::<u64>().is_err() {
                        return Err(Fallback::Unsupported);
                    }
                    scratch.sd.extend_from_slice(n.as_bytes());
                }
                _ => return Err(Fallback::Unsupported),
            }
            scratch.sd.push(b'"');
            if !self.next_member()? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_str(body: &str) -> Result<(View<'_>, String), Fallback> {
        let mut scratch = Scratch::default();
        let v = scan(body.as_bytes(), &mut scratch)?;
        Ok((v, String::from_utf8(scratch.sd).expect("utf8")))
    }

    fn decoded(raw: &str) -> String {
        let mut s = String::new();
        unescape(raw, |p| s.push_str(p));
        s
    }

    #[test]
    fn unescapes_like_serde() {
        for raw in [
            "",
            "plain",
            r#"a\"b\\c\/d\be\ff\ng\rh\ti"#,
            r"\u0000\u001f\u00e9\u2028\uFFFD",
            r"x\ud83d\ude00y\uD83D\uDE00",
            r"caf\u00e9 \u20ac",
        ] {
            let serde: String = serde_json::from_str(&format!("\"{raw}\"")).expect("valid");
            assert_eq!(decoded(raw), serde, "{raw}");
            let mut s = Scanner {
                s: &format!("{raw}\""),
                i: 0,
            };
            let j = s.string().expect("valid");
            assert_eq!(j.escaped, raw.contains('\\'));
            let mut buf = String::new();
            assert_eq!(j.resolve(&mut buf), serde);
        }
    }

    #[test]
    fn finds_every_escape_at_every_position() {
        for c in (0u8..0x20).chain([b'"', b'\\', b'a', 0x7f]) {
            for pos in 0..24 {
                let mut s: Vec<char> = "abcdefghijklmnopqrstu\u{e9}vwx".chars().collect();
                s[pos] = char::from(c);
                let s: String = s.into_iter().collect();
                let body =
                    serde_json::to_vec(&serde_json::json!({ "message": s, "x": 1 })).expect("json");
                let mut scratch = Scratch::default();
                let v = scan(&body, &mut scratch).expect("fast path");
                let mut out = Vec::new();
                v.message.expect("message").write_to(&mut out);
                assert_eq!(out, s.as_bytes(), "byte {c:#x} at {pos}");
            }
        }
    }

    #[test]
    fn reads_a_canonical_body() {
        let (v, sd) = scan_str(
            r#"{"event_id":"e","metadata":{"a":[1,-2.5e3,true,null,{"b":"c"}],"d":{}},"syslog":{"facility":4,"severity":2,"version":1,"hostname":"h","app_name":"a\"pp","procid":"1","msgid":"m","structured_data":{"a@1":{"n":7,"t":true,"x":"v]"},"b@1":{}}},"message":"hi"}"#,
        )
        .expect("fast path");
        assert_eq!(v.facility, Some(4));
        assert_eq!(v.severity, Some(2));
        let mut buf = String::new();
        assert_eq!(v.app_name.expect("app").resolve(&mut buf), "a\"pp");
        assert_eq!(v.message.map(|m| m.raw), Some("hi"));
        assert_eq!(sd, r#"[a@1 n="7" t="true" x="v\]"][b@1]"#);
    }

    #[test]
    fn hands_everything_unusual_to_serde() {
        use Fallback::*;
        for (body, why) in [
            (&b"\xff"[..], NotUtf8),
            (b"", NotObject),
            (b"[]", NotObject),
            (b" {}", NotObject),
            (b"{} ", Syntax),
            (b"{ }", Syntax),
            (b"{\"a\":1 }", Syntax),
            (b"{\"a\":01}", Syntax),
            (b"{\"a\":1.}", Syntax),
            (b"{\"a\":\"x", Syntax),
            (b"{\"a\":\"\\x\"}", Syntax),
            (b"{\"a\":\"\\ud800\"}", Syntax),
            (b"{\"a\":\"\\udc00\"}", Syntax),
            (b"{\"a\":\"\\ud800\\u0041\"}", Syntax),
            (b"{\"a\":\"\t\"}", Syntax),
            (b"{\"a\":nul}", Syntax),
            (b"{\"message\":\"a\",\"message\":\"b\"}", DuplicateField),
            (b"{\"syslog\":{},\"syslog\":{}}", DuplicateField),
            (
                b"{\"syslog\":{\"msgid\":\"a\",\"msgid\":\"b\"}}",
                DuplicateField,
            ),
            (b"{\"mess\\u0061ge\":\"m\"}", EscapedKey),
            (b"{\"message\":null}", Unsupported),
            (b"{\"message\":5}", Unsupported),
            (b"{\"syslog\":null}", NotObject),
            (b"{\"syslog\":{\"facility\":256}}", Unsupported),
            (b"{\"syslog\":{\"facility\":-1}}", Unsupported),
            (b"{\"syslog\":{\"facility\":1.0}}", Unsupported),
            (b"{\"syslog\":{\"hostname\":null}}", Unsupported),
            (
                b"{\"syslog\":{\"structured_data\":{\"a\":{\"p\":1.5}}}}",
                Unsupported,
            ),
            (
                b"{\"syslog\":{\"structured_data\":{\"a\":{\"p\":-1}}}}",
                Unsupported,
            ),
            (
                b"{\"syslog\":{\"structured_data\":{\"a\":{\"p\":null}}}}",
                Unsupported,
            ),
            (
                b"{\"syslog\":{\"structured_data\":{\"b\":{},\"a\":{}}}}",
                Unsorted,
            ),
            (
                b"{\"syslog\":{\"structured_data\":{\"a\":{\"p\":\"1\",\"p\":\"2\"}}}}",
                Unsorted,
            ),
        ] {
            let mut scratch = Scratch::default();
            assert_eq!(
                scan(body, &mut scratch).err(),
                Some(why),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = format!("{{\"m\":{}{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(scan_str(&deep).err(), Some(Fallback::TooDeep));
    }

    #[test]
    fn escaped_keys_are_ordered_by_their_decoded_bytes() {
        // `a"b` < `a#` decoded, although `\` > `#` as written.
        let (_, sd) = scan_str(r#"{"syslog":{"structured_data":{"x":{"a\"b":"1","a#":"2"}}}}"#)
            .expect("sorted once decoded");
        assert_eq!(sd, r#"[x a_b="1" a#="2"]"#);
        assert_eq!(
            scan_str(r#"{"syslog":{"structured_data":{"x":{"a#":"1","a\"b":"2"}}}}"#).err(),
            Some(Fallback::Unsorted)
        );
    }
}
