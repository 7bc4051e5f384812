//! A borrowed scanner for the JSON objects found in syslog MSGs (and NDJSON
//! lines): one pass over the text that yields the object's members without
//! copying the text or building a value tree. Strings stay borrowed (escapes
//! are decoded only when a string is used), and nested objects and arrays
//! are validated and kept as their text, read again only if they are used.
//!
//! The direct encoder ([`super::direct`]) otherwise parses a MSG with
//! simd-json into a `BorrowedValue`, and the general path with simd-json
//! into a `serde_json::Map`. This scanner only accepts JSON on which it is
//! certain to agree with both, and answers `None` for everything else, so
//! the caller parses with simd-json as before:
//! - a number that is not an integer as serde_json would print it (a
//!   fraction or exponent, `-0`) or that is out of the `i64`/`u64` range;
//! - a control character in a string, an invalid escape, or a lone
//!   surrogate (`\uD800` alone);
//! - nesting deeper than [`MAX_DEPTH`];
//! - anything but whitespace after the object, and every syntax error.
//!
//! Duplicate keys are accepted here; callers decide (the direct encoder
//! leaves them to the general path).

use crate::event::json_text;
use std::borrow::Cow;

/// Deepest nesting of objects and arrays inside the top-level object.
pub const MAX_DEPTH: usize = 32;

/// The contents of a JSON string as written (between the quotes, escapes
/// not yet decoded). Only made by the scanner, so always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a str,
    escaped: Escapes,
}

/// Whether a [`Str`] holds escapes. Word-sized for the reason [`Value`]'s
/// tag is: a one-byte flag (and its padding) was written as pieces and read
/// back as a word when the member moved on, a store-forwarding stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
enum Escapes {
    No,
    Yes,
}

impl<'a> Str<'a> {
    /// The decoded string: borrowed from the text unless it holds escapes.
    #[inline(always)]
    pub fn decoded(self) -> Cow<'a, str> {
        if self.escaped == Escapes::Yes {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

/// `raw` (a string the scanner validated) with its escapes decoded.
#[inline(never)]
fn unescape(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    json_text::unescape(raw, |piece| s.push_str(piece));
    s
}

/// One value. Numbers are integers whose text is exactly what serde_json
/// prints for them; objects and arrays are their (validated) text, from the
/// opening to the closing bracket, to read with [`object`] or [`array()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// A word-sized tag: written as one byte, it was read back as a word
// (moving the value on), which the store buffer cannot forward (a stall per
// member in the profile).
#[repr(u64)]
pub enum Value<'a> {
    Null,
    // Two variants rather than `Bool(bool)`: a one-byte payload made the
    // value's word after the tag a copy of pieces, stalling as above.
    True,
    False,
    /// An integer in `i64::MIN..=u64::MAX`, canonical (no `-0`, no leading
    /// zeros).
    Int(&'a str),
    Str(Str<'a>),
    Object(&'a str),
    Array(&'a str),
}

/// Calls `f` with each member of the object `text` (a JSON object,
/// whitespace around it allowed), in the order written. `None` (after any
/// number of calls) for anything the module doc leaves to simd-json.
pub fn object<'a>(text: &'a str, f: impl FnMut(Str<'a>, Value<'a>)) -> Option<()> {
    let mut s = Scanner {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    if !s.eat(b'{') {
        return None;
    }
    s.members(0, f)?;
    s.ws();
    (s.i == s.b.len()).then_some(())
}

/// Calls `f` with each element of the array `text` (as in [`object`]).
pub fn array<'a>(text: &'a str, f: impl FnMut(Value<'a>)) -> Option<()> {
    let mut s = Scanner {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    if !s.eat(b'[') {
        return None;
    }
    s.elements(0, f)?;
    s.ws();
    (s.i == s.b.len()).then_some(())
}

/// A cursor over the text.
struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Consumes `c` if it is next.
    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// Skips JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Consumes `c` if it is next after any whitespace (compact JSON, the
    /// common case, is tested first).
    #[inline]
    fn eat_ws(&mut self, c: u8) -> bool {
        if self.eat(c) {
            return true;
        }
        self.ws();
        self.eat(c)
    }

    /// The members of an object whose `{` was consumed, through its `}`.
    #[inline]
    fn members(&mut self, depth: usize, mut f: impl FnMut(Str<'a>, Value<'a>)) -> Option<()> {
        if self.eat_ws(b'}') {
            return Some(());
        }
        loop {
            if !self.eat_ws(b'"') {
                return None;
            }
            let key = self.string()?;
            if !self.eat_ws(b':') {
                return None;
            }
            self.ws();
            f(key, self.value(depth)?);
            if self.eat_ws(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// The elements of an array whose `[` was consumed, through its `]`.
    fn elements(&mut self, depth: usize, mut f: impl FnMut(Value<'a>)) -> Option<()> {
        if self.eat_ws(b']') {
            return Some(());
        }
        loop {
            self.ws();
            f(self.value(depth)?);
            if self.eat_ws(b',') {
                continue;
            }
            return self.eat(b']').then_some(());
        }
    }

    /// One value at `depth` (0: a member of the top-level object).
    ///
    /// Inlined into the member loop, so the value comes back in registers:
    /// as a call (it recurses, through containers) its result went through
    /// memory, and the profile showed the load of it stalling. Containers
    /// are read out of line by [`Scanner::container`].
    #[inline(always)]
    fn value(&mut self, depth: usize) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string().map(Value::Str)
            }
            b'{' | b'[' => self.container(depth),
            b't' => self.literal("true", Value::True),
            b'f' => self.literal("false", Value::False),
            b'n' => self.literal("null", Value::Null),
            _ => self.integer(),
        }
    }

    /// An object or array at `depth`, whose opening bracket is next.
    #[inline(never)]
    fn container(&mut self, depth: usize) -> Option<Value<'a>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let start = self.i;
        self.i += 1;
        if self.b[start] == b'{' {
            self.members(depth + 1, |_, _| {})?;
            Some(Value::Object(&self.s[start..self.i]))
        } else {
            self.elements(depth + 1, |_| {})?;
            Some(Value::Array(&self.s[start..self.i]))
        }
    }

    /// `true`, `false` or `null`, whose first letter is next.
    #[inline]
    fn literal(&mut self, word: &str, value: Value<'a>) -> Option<Value<'a>> {
        if !self.b[self.i..].starts_with(word.as_bytes()) {
            return None;
        }
        self.i += word.len();
        Some(value)
    }

    /// An integer in `i64::MIN..=u64::MAX` written as serde_json prints it.
    #[inline]
    fn integer(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        let negative = self.eat(b'-');
        let first = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = self.i - first;
        let canonical = match self.b.get(first) {
            Some(b'0') => digits == 1 && !negative,
            _ => digits > 0,
        };
        // A fraction or exponent makes it a float (printed serde_json's way).
        if !canonical || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        // Every 19-digit magnitude fits a u64, and up to 18 digits fit an
        // i64 too: only a 20-digit one, or a negative one of 19, is read to
        // check the bounds (a value past u64::MAX does not parse).
        if digits > 19 || (negative && digits == 19) {
            let magnitude: u64 = self.s[first..self.i].parse().ok()?;
            if negative && magnitude > 1 << 63 {
                return None;
            }
        }
        Some(Value::Int(&self.s[start..self.i]))
    }

    /// The rest of a string whose opening quote was consumed.
    #[inline(always)]
    fn string(&mut self) -> Option<Str<'a>> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut escaped = Escapes::No;
        loop {
            i = json_text::run_end(b, i);
            match *b.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = Escapes::Yes;
                    i += json_text::escape_len(b, i)?;
                }
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        self.i = i + 1;
        Some(Str {
            raw: &self.s[start..i],
            escaped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Option<Vec<(String, Value<'_>)>> {
        let mut out = Vec::new();
        object(text, |k, v| out.push((k, v)))?;
        Some(
            out.into_iter()
                .map(|(k, v)| (k.decoded().into_owned(), v))
                .collect(),
        )
    }

    #[test]
    fn reads_flat_objects() {
        let m = members(r#" { "a" : 1 , "b":"x\"y\u00e9\ud83d\ude00", "c":[1,{"d":null}],"e":true,"f":-12,"g":{} } "#)
            .unwrap();
        assert_eq!(m[0], ("a".into(), Value::Int("1")));
        let Value::Str(s) = m[1].1 else { panic!() };
        assert_eq!(s.decoded(), "x\"yé😀");
        assert_eq!(m[2].1, Value::Array(r#"[1,{"d":null}]"#));
        assert_eq!(m[3].1, Value::True);
        assert_eq!(m[4].1, Value::Int("-12"));
        assert_eq!(m[5].1, Value::Object("{}"));
        let mut items = Vec::new();
        array(r#"[1,{"d":null}]"#, |v| items.push(v)).unwrap();
        assert_eq!(items, [Value::Int("1"), Value::Object(r#"{"d":null}"#)]);
        assert_eq!(members("{}").unwrap(), []);
        assert!(members(r#"{"a":18446744073709551615,"b":-9223372036854775808}"#).is_some());
        assert!(members(r#"{"a":9999999999999999999,"b":-999999999999999999}"#).is_some());
        assert!(members(r#"{"a":10000000000000000000,"b":-1000000000000000000}"#).is_some());
        for out_of_range in [
            "18446744073709551616",
            "-9223372036854775809",
            "-9999999999999999999",
        ] {
            assert!(
                members(&format!(r#"{{"a":{out_of_range}}}"#)).is_none(),
                "{out_of_range}"
            );
        }
    }

    #[test]
    fn leaves_the_rest_to_simd_json() {
        for text in [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":-9999999999999999999}"#,
            r#"{"a":99999999999999999999}"#,
            r#"{"a":-}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00\udc00"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            r#"["a"]"#,
            r#"{"a":"#,
        ] {
            assert!(members(text).is_none(), "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(members(&deep).is_none());
    }

    use proptest::prelude::*;
    use simd_json::{BorrowedValue, StaticNode};

    /// Whether the scanned value is the one simd-json reads.
    fn same(v: Value<'_>, s: &BorrowedValue<'_>) -> bool {
        match (v, s) {
            (Value::Null, BorrowedValue::Static(StaticNode::Null)) => true,
            (Value::True, BorrowedValue::Static(StaticNode::Bool(b))) => *b,
            (Value::False, BorrowedValue::Static(StaticNode::Bool(b))) => !*b,
            (Value::Int(n), BorrowedValue::Static(StaticNode::U64(u))) => n == u.to_string(),
            (Value::Int(n), BorrowedValue::Static(StaticNode::I64(i))) => n == i.to_string(),
            (Value::Str(a), BorrowedValue::String(b)) => a.decoded() == *b,
            (Value::Array(text), BorrowedValue::Array(items)) => {
                let mut ours = Vec::new();
                array(text, |v| ours.push(v)).is_some()
                    && ours.len() == items.len()
                    && ours.iter().zip(items.iter()).all(|(a, b)| same(*a, b))
            }
            (Value::Object(text), BorrowedValue::Object(obj)) => same_members(text, obj),
            _ => false,
        }
    }

    /// Whether the members the scanner reads in `text` are simd-json's `obj`.
    fn same_members(text: &str, obj: &simd_json::borrowed::Object<'_>) -> bool {
        let mut ours = Vec::new();
        if object(text, |k, v| ours.push((k, v))).is_none() || ours.len() != obj.len() {
            return false;
        }
        ours.iter()
            .zip(obj.iter())
            .all(|((k, v), (sk, sv))| k.decoded() == *sk && same(*v, sv))
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t \r")]
    }

    fn string_literal() -> impl Strategy<Value = String> {
        let valid = prop_oneof![
            "[a-z .:é€😀]{0,6}",
            any::<String>().prop_map(|s| {
                let quoted = serde_json::to_string(&s).unwrap();
                quoted[1..quoted.len() - 1].to_string()
            }),
            Just(r#"\""#.to_string()),
            Just(r#"\\"#.to_string()),
            Just(r#"\/"#.to_string()),
            Just(r#"\b\f\n\r\t"#.to_string()),
            Just(r#"\u00e9\u00C9\u0000\u001f"#.to_string()),
            Just(r#"\ud83d\ude00"#.to_string()),
            Just(r#"\uD83D\uDE00"#.to_string()),
        ];
        let invalid = prop_oneof![
            Just(r#"\ud800"#.to_string()),
            Just(r#"\udc00"#.to_string()),
            Just(r#"\ud800\u0041"#.to_string()),
            Just(r#"\x"#.to_string()),
            Just(r#"\u12"#.to_string()),
            Just("\t".to_string()),
        ];
        let piece = prop_oneof![40 => valid, 1 => invalid];
        prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
    }

    fn number() -> impl Strategy<Value = String> {
        let finite = || any::<f64>().prop_filter("finite", |f| f.is_finite());
        prop_oneof![
            4 => any::<i64>().prop_map(|n| n.to_string()),
            4 => any::<u64>().prop_map(|n| n.to_string()),
            4 => (0u32..1000).prop_map(|n| n.to_string()),
            1 => finite().prop_map(|f| format!("{f:e}")),
            1 => finite().prop_map(|f| f.to_string()),
            1 => prop::sample::select(vec![
                "0",
                "-0",
                "01",
                "-01",
                "1.",
                "-",
                "1e",
                "1E+2",
                "2.5e-3",
                "-9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999999",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["a", "b", "é", r#"k\"q"#, r#"\u00e9"#, r#"a\/b"#])
                .prop_map(|k| format!("\"{k}\"")),
            string_literal(),
        ]
    }

    fn join(items: Vec<String>, open: &str, close: &str, ws: &str) -> String {
        format!("{open}{ws}{}{ws}{close}", items.join(&format!("{ws},{ws}")))
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            3 => string_literal(),
            3 => number(),
            1 => prop::sample::select(vec!["true", "false", "null", "true", "false", "null", "nul"])
                .prop_map(str::to_string),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), ws())
                    .prop_map(|(items, ws)| join(items, "[", "]", ws)),
                (prop::collection::vec((key(), inner), 0..4), ws()).prop_map(|(kv, ws)| {
                    let members = kv.into_iter().map(|(k, v)| format!("{k}{ws}:{ws}{v}"));
                    join(members.collect(), "{", "}", ws)
                }),
            ]
        })
    }

    /// Flat-ish objects like real MSGs, with the odd key twice, whitespace,
    /// trailing bytes or truncation.
    fn object_text() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((key(), value()), 0..8),
            ws(),
            prop::sample::select(vec!["", "", "", "", "", "", "", " ", " x", "}", ","]),
        )
            .prop_map(|(kv, ws, tail)| {
                let members = kv.into_iter().map(|(k, v)| format!("{k}{ws}:{ws}{v}"));
                format!("{}{tail}", join(members.collect(), "{", "}", ws))
            })
    }

    /// Whatever the scanner reads, simd-json reads the same way.
    fn agrees_with_simd_json(text: &str) -> Result<bool, TestCaseError> {
        let mut ours = 0;
        if object(text, |_, _| ours += 1).is_none() {
            return Ok(false);
        }
        let mut bytes = text.as_bytes().to_vec();
        let simd = simd_json::to_borrowed_value(&mut bytes);
        let Ok(BorrowedValue::Object(obj)) = &simd else {
            return Err(TestCaseError::fail(format!(
                "simd-json: {simd:?} for {text}"
            )));
        };
        prop_assert!(same_members(text, obj), "{}", text);
        Ok(true)
    }

    /// The generator must mostly make objects the scanner reads.
    #[test]
    fn generated_objects_are_mostly_scanned() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let scanned = (0..1000)
            .filter(|_| {
                let text = object_text().new_tree(&mut runner).unwrap().current();
                agrees_with_simd_json(&text).unwrap()
            })
            .count();
        assert!(scanned > 300, "{scanned} of 1000 scanned");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn scanner_agrees_with_simd_json(text in object_text()) {
            agrees_with_simd_json(&text)?;
        }
    }
}
