//! Reading JSON string text byte by byte: where a run of plain bytes ends,
//! how long a valid escape is, and what it decodes to. Shared by the two
//! hand-written JSON scanners — `parse::json_msg` (JSON MSGs and NDJSON at
//! ingest) and `destinations::syslog::view` (record bodies for the syslog
//! destination) — so that they agree with each other and with RFC 8259.

/// The high bit of each byte of `w` (little-endian) that is below 0x20, a
/// quote or a backslash (the bytes that end a run inside a JSON string).
/// Exact for the lowest such byte (higher ones can be false hits), so
/// `trailing_zeros() / 8` is the position of the first.
#[inline]
pub(crate) fn special_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (below_space | quote | backslash) & HIGH
}

/// The position of the first quote, backslash or control byte of `b` at or
/// after `from` (8 bytes at a time, the last few one by one), or `b.len()`.
#[inline]
pub(crate) fn run_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let m = special_mask(u64::from_le_bytes(*chunk));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..=0x1F) {
        i += 1;
    }
    i
}

/// The length of the escape at `b[i]` (a backslash), or `None` for an
/// invalid escape or a lone surrogate.
pub(crate) fn escape_len(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => match hex4(b, i + 2)? {
            0xD800..=0xDBFF => {
                let low = (b.get(i + 6..i + 8)? == b"\\u")
                    .then(|| hex4(b, i + 8))
                    .flatten()?;
                (0xDC00..=0xDFFF).contains(&low).then_some(12)
            }
            0xDC00..=0xDFFF => None,
            _ => Some(6),
        },
        _ => None,
    }
}

/// Calls `f` with the pieces of the decoded string: unescaped runs borrowed
/// from `raw`, and each escape decoded. Meant for text [`escape_len`]
/// validated; anything malformed decodes to U+FFFD, never panics.
pub(crate) fn unescape(raw: &str, mut f: impl FnMut(&str)) {
    let b = raw.as_bytes();
    let mut start = 0;
    let mut buf = [0u8; 4];
    while let Some(at) = raw.get(start..).and_then(|r| r.find('\\')) {
        let i = start + at;
        f(&raw[start..i]);
        let (c, len) = decode_escape(b, i);
        f(c.encode_utf8(&mut buf));
        start = i + len;
    }
    f(raw.get(start..).unwrap_or_default());
}

/// The character of the escape at `b[i]` (a backslash) and its length.
fn decode_escape(b: &[u8], i: usize) -> (char, usize) {
    let simple = match b.get(i + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let hi = hex4(b, i + 2).unwrap_or(0xFFFD);
            if !(0xD800..0xDC00).contains(&hi) {
                return (char::from_u32(hi).unwrap_or('\u{FFFD}'), 6);
            }
            let lo = hex4(b, i + 8).unwrap_or(0xDC00);
            let c = (0x1_0000 + ((hi - 0xD800) << 10)).wrapping_add(lo.wrapping_sub(0xDC00));
            return (char::from_u32(c).unwrap_or('\u{FFFD}'), 12);
        }
        _ => '\u{FFFD}',
    };
    (simple, 2)
}

/// Where `text` (JSON) has a `\u` escape of a lone surrogate, if anywhere.
/// JSON parsers disagree on them (simd-json turns a lone high one into
/// U+0000 and refuses a lone low one): the parsing paths refuse both.
pub(crate) fn lone_surrogate_at(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', text.get(i..)?) {
        let at = i + k;
        let surrogate = text.get(at + 1) == Some(&b'u')
            && hex4(text, at + 2).is_some_and(|cp| (0xD800..=0xDFFF).contains(&cp));
        match escape_len(text, at) {
            None if surrogate => return Some(at),
            n => i = at + n.unwrap_or(2),
        }
    }
    None
}

/// How deep JSON this relay takes in may nest. The parsers on the ingest
/// paths (simd-json's values, serde's visitors) recurse once per level, and
/// a body of `[` five thousand deep overflowed the thread's stack: the
/// whole relay aborted on one 10 KB request. Half of serde_json's own limit
/// (128), because an event's JSON sits a level or two deeper in its record
/// (under `metadata`) and every record must stay readable by the
/// destinations' JSON readers; no SIEM indexes that deep anyway
/// (Elasticsearch's default mapping depth limit is 20).
pub(crate) const MAX_NESTING: usize = 64;

/// Where `text` (JSON, or what claims to be) opens its level of nesting
/// `MAX_NESTING + 1`: the offset of that `[` or `{` outside strings, to be
/// refused before a recursive parser sees it. `None` when it nests no
/// deeper (or has a string that never ends, which the parser reports).
/// Most input has fewer brackets than the limit and is counted, not walked.
pub(crate) fn too_deep_at(text: &[u8]) -> Option<usize> {
    if text.iter().filter(|&&b| b == b'[' || b == b'{').count() <= MAX_NESTING {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => {
                // past the string's closing quote, its escapes skipped
                i += 1;
                loop {
                    let at = i + memchr::memchr2(b'"', b'\\', text.get(i..)?)?;
                    i = at + if text[at] == b'\\' { 2 } else { 1 };
                    if text[at] == b'"' {
                        break;
                    }
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the ingest paths refuse `text` as JSON before a parser sees it:
/// a lone surrogate escape ([`lone_surrogate_at`]) or nesting past
/// [`MAX_NESTING`] ([`too_deep_at`]). Where the answer is "kept as text" or
/// "left to the general path", this is the check; where the error must say
/// which and where, call the two.
pub(crate) fn refused(text: &[u8]) -> bool {
    lone_surrogate_at(text).is_some() || too_deep_at(text).is_some()
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?
        .iter()
        .try_fold(0u32, |n, &d| Some(n << 4 | char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_the_limit_is_found_where_it_starts_and_strings_do_not_count() {
        let deep = |n: usize, open: &str, close: &str| open.repeat(n) + &close.repeat(n);
        assert_eq!(too_deep_at(deep(MAX_NESTING, "[", "]").as_bytes()), None);
        assert_eq!(
            too_deep_at(deep(MAX_NESTING + 1, "[", "]").as_bytes()),
            Some(MAX_NESTING)
        );
        let objects = deep(5000, r#"{"a":"#, "}");
        assert_eq!(too_deep_at(objects.as_bytes()), Some(5 * MAX_NESTING));
        // brackets in strings, escaped quotes in them: not nesting
        let quoted = format!(r#"{{"k":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert_eq!(too_deep_at(quoted.as_bytes()), None);
        // many shallow values: more brackets than the limit, none too deep
        let flat = "[1],".repeat(1000);
        assert_eq!(too_deep_at(format!("[{flat}[]]").as_bytes()), None);
        // a string that never ends: left to the parser
        let open = format!(r#"["{}"#, "[".repeat(500));
        assert_eq!(too_deep_at(open.as_bytes()), None);
        // an escape at the very end
        let tail = format!(r#"{}"\"#, "[]".repeat(200));
        assert_eq!(too_deep_at(tail.as_bytes()), None);
    }

    #[test]
    fn lone_surrogates_are_found_and_pairs_and_escaped_backslashes_are_not() {
        let at = |t: &str| lone_surrogate_at(t.as_bytes());
        assert_eq!(at(r#"{"b":"\ud800"}"#), Some(6));
        assert_eq!(at(r#"{"b":"\ud800x"}"#), Some(6));
        assert_eq!(at(r#"{"b":"A\udc00B"}"#), Some(7));
        assert_eq!(at(r#"{"b":"\ud800\ud800"}"#), Some(6));
        assert_eq!(at(r#"{"b":"\ud83d\ude00 \u00e9"}"#), None);
        assert_eq!(
            at(r#"{"b":"\\ud800"}"#),
            None,
            "an escaped backslash, then text"
        );
        assert_eq!(at(r#"{"b":"\"}"#), None);
        assert_eq!(at("x\\"), None);
    }

    #[test]
    fn run_end_finds_the_first_special_byte_at_every_position() {
        for len in 0..24 {
            for at in 0..=len {
                for special in [b'"', b'\\', b'\n', 0u8, 0x1F] {
                    let mut b = vec![b'a'; len];
                    if at < len {
                        b[at] = special;
                    }
                    for from in 0..=at.min(len) {
                        assert_eq!(run_end(&b, from), at, "len {len} at {at} from {from}");
                    }
                }
            }
        }
        assert_eq!(run_end("é€ ~\u{7f}\"".as_bytes(), 0), 8);
    }

    #[test]
    fn escapes() {
        let unescaped = |raw: &str| {
            let mut s = String::new();
            unescape(raw, |p| s.push_str(p));
            s
        };
        assert_eq!(
            unescaped(r#"a\"b\\c\/d\b\f\n\r\t"#),
            "a\"b\\c/d\u{8}\u{c}\n\r\t"
        );
        assert_eq!(unescaped(r"\u00e9\ud83d\ude00"), "é\u{1F600}");
        assert_eq!(escape_len(br"\ud83d\ude00", 0), Some(12));
        assert_eq!(escape_len(br"\ud83d", 0), None);
        assert_eq!(escape_len(br"\ude00", 0), None);
        assert_eq!(escape_len(br"\x", 0), None);
        // malformed text decodes to U+FFFD without panicking
        for raw in [
            r"\",
            r"\u12",
            r"\ud83d\u",
            r"\ud83dxx",
            r"\ud83d\uffff",
            r"\q",
        ] {
            let s = unescaped(raw);
            assert!(
                s.contains('\u{FFFD}') || s.is_empty() || s.len() < raw.len() + 4,
                "{raw:?}"
            );
        }
    }
}
