//! The hand-written compact JSON writer behind [`Event::encode`]. It writes
//! the same bytes as `serde_json::to_vec(&event)` (same field order, skip
//! rules and string escaping; numbers and other non-string JSON values in
//! `metadata`/`structured_data` are written by serde_json itself), without
//! going through serde's generic machinery. Its string and value writers
//! are shared with the direct RFC 5424 encoder (`parse::direct`).

use super::json_text::special_mask;
use super::{Actor, Event, Resource, SourceInfo, SyslogFields};
use serde_json::{Map, Value};

/// serde_json's escape table: 0 = as is; otherwise the escape letter
/// (`u` means `\u00XX`).
const UU: u8 = b'u';
const __: u8 = 0;
static ESCAPE: [u8; 256] = {
    let mut t = [__; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = UU;
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// The position of the first byte of `b` at or after `from` that needs
/// escaping: 8 bytes at a time ([`special_mask`]: the bytes [`ESCAPE`]
/// escapes are the bytes that end a run in a JSON string), then the last 8 bytes
/// as one word when they all lie at or after `from` (the bytes it shares
/// with the words before were found clean, and the mask cannot flag
/// clean bytes below its lowest flagged one), else the rest byte by byte.
#[inline]
fn next_escape(b: &[u8], from: usize) -> Option<usize> {
    let word = |at: usize| {
        let chunk: [u8; 8] = b[at..at + 8].try_into().expect("8 bytes");
        special_mask(u64::from_le_bytes(chunk))
    };
    let mut i = from;
    while i + 8 <= b.len() {
        let m = word(i);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i == b.len() {
        return None;
    }
    match b.len().checked_sub(8) {
        Some(at) if at >= from => {
            let m = word(at);
            (m != 0).then(|| at + (m.trailing_zeros() / 8) as usize)
        }
        _ => b[i..]
            .iter()
            .position(|&c| ESCAPE[c as usize] != 0)
            .map(|p| i + p),
    }
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it. Most
/// strings need no escaping and are copied whole.
#[inline(always)]
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    string_contents(out, s);
    out.push(b'"');
}

/// What [`string`] writes between the quotes (for callers that write
/// a quote together with a constant before or after it).
#[inline(always)]
pub(crate) fn string_contents(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    match first_escape(s) {
        None => out.extend_from_slice(b),
        Some(first) => escaped_from(out, s, first),
    }
}

/// Where the first byte of `s` that a JSON string must escape is.
#[inline(always)]
pub(crate) fn first_escape(s: &str) -> Option<usize> {
    next_escape(s.as_bytes(), 0)
}

/// [`string_contents`] of `s` whose first byte to escape is at `first`
/// (as [`first_escape`] found).
pub(crate) fn escaped_from(out: &mut Vec<u8>, s: &str, first: usize) {
    escaped(out, s.as_bytes(), first)
}

/// The body of a string whose first byte to escape is `b[first]`: the
/// runs between bytes that need escaping are copied whole.
#[inline(never)]
fn escaped(out: &mut Vec<u8>, b: &[u8], first: usize) {
    let mut start = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        out.extend_from_slice(&b[start..i]);
        let c = b[i];
        match ESCAPE[c as usize] {
            UU => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 0xf) as usize],
                ]);
            }
            esc => out.extend_from_slice(&[b'\\', esc]),
        }
        start = i + 1;
        next = next_escape(b, start);
    }
    out.extend_from_slice(&b[start..]);
}

/// [`string`] for text in which escapes are dense, such as JSON text
/// written as a JSON string (Datadog's `message`): a quote every few
/// bytes makes [`escaped`]'s copy of the runs between escapes cost a
/// call each. Eight bytes at a time: a word with no `"` or `\` is copied
/// whole; in one with some, each is preceded by a backslash, the word's
/// bytes going out in fixed 8-byte stores that the next store partly
/// overwrites (into a stack buffer, copied out once per [`DENSE_CHUNK`]
/// bytes). The byte-at-a-time version of this (a backslash written before
/// every byte and kept only before `"` and `\`) carried its write position
/// from byte to byte: a third of the relay's CPU in the e2e bench's TCP →
/// Datadog, 0.83 µs per event of the `encoders` bench's Datadog batch. A
/// string holding a control character (none in JSON text) is written by
/// [`string`].
pub(crate) fn string_dense(out: &mut Vec<u8>, s: &str) {
    let start = out.len();
    let b = s.as_bytes();
    out.reserve(b.len() + b.len() / 4 + 2);
    out.push(b'"');
    // room for a chunk with every byte escaped, and for the last 8-byte
    // store of it, which may reach 7 bytes past what it keeps
    let mut buf = [0u8; 2 * DENSE_CHUNK + 8];
    for chunk in b.chunks(DENSE_CHUNK) {
        let mut j = 0;
        let mut words = chunk.chunks_exact(8);
        for word in &mut words {
            let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if control_bytes(w) != 0 {
                out.truncate(start);
                return string(out, s);
            }
            let mut quotes = zero_bytes(w ^ (EVERY_BYTE * u64::from(b'"')))
                | zero_bytes(w ^ (EVERY_BYTE * u64::from(b'\\')));
            // the word from byte `from` on, stored at `j`; a quote or
            // backslash at `k` ends the bytes kept at `k` with a
            // backslash after them, and the next store starts at it
            let mut from = 0;
            loop {
                let rest = (w >> (8 * from)).to_le_bytes();
                buf[j..j + 8].copy_from_slice(&rest);
                if quotes == 0 {
                    j += 8 - from;
                    break;
                }
                let k = (quotes.trailing_zeros() / 8) as usize;
                j += k - from;
                buf[j] = b'\\';
                j += 1;
                from = k;
                quotes &= quotes - 1;
            }
        }
        for &c in words.remainder() {
            if c < 0x20 {
                out.truncate(start);
                return string(out, s);
            }
            if c == b'"' || c == b'\\' {
                buf[j] = b'\\';
                j += 1;
            }
            buf[j] = c;
            j += 1;
        }
        out.extend_from_slice(&buf[..j]);
    }
    out.push(b'"');
}

/// The bytes [`string_dense`] copies out at a time.
const DENSE_CHUNK: usize = 128;

/// 0x01 in every byte.
const EVERY_BYTE: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `w` that is 0, exactly (no carry crosses
/// bytes: each byte's low seven bits plus 0x7f stay below 0x100).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = EVERY_BYTE * 0x7f;
    !(((w & LOW7) + LOW7) | w) & (EVERY_BYTE * 0x80)
}

/// The high bit of each byte of `w` below 0x20, exactly (as in [`zero_bytes`]:
/// a byte's low seven bits plus 0x60 stay below 0x100).
#[inline(always)]
fn control_bytes(w: u64) -> u64 {
    const LOW7: u64 = EVERY_BYTE * 0x7f;
    !(((w & LOW7) + EVERY_BYTE * 0x60) | w) & (EVERY_BYTE * 0x80)
}

/// Writes `,"key":` (or `"key":` for the first field of an object).
/// Keys here are fixed identifiers that need no escaping.
#[inline(always)]
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

#[inline(always)]
fn opt_str(out: &mut Vec<u8>, first: &mut bool, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        key(out, first, k);
        string(out, v);
    }
}

pub(crate) fn uint(out: &mut Vec<u8>, n: u64) {
    // one and two digits (facility, severity, version): no copy loop
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub(crate) fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => string(out, s),
        Value::Object(m) => map(out, m),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item);
            }
            out.push(b']');
        }
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(_) => serde_json::to_writer(&mut *out, v).expect("a JSON number serialises"),
    }
}

fn map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

/// The members of an `actor` and a `resource` object, in the order
/// they are written.
pub(crate) const ACTOR_FIELDS: [&str; 4] = ["type", "id", "email", "service_account"];
pub(crate) const RESOURCE_FIELDS: [&str; 4] = ["type", "id", "name", "path"];

/// An object of string members `names`, those without a value left out.
pub(crate) fn str_fields(out: &mut Vec<u8>, names: [&str; 4], values: [Option<&str>; 4]) {
    let mut first = true;
    out.push(b'{');
    for (k, v) in names.into_iter().zip(values) {
        if let Some(v) = v {
            key(out, &mut first, k);
            string(out, v);
        }
    }
    out.push(b'}');
}

pub(crate) fn actor(out: &mut Vec<u8>, a: &Actor) {
    let values = [&a.kind, &a.id, &a.email, &a.service_account].map(|v| v.as_deref());
    str_fields(out, ACTOR_FIELDS, values);
}

pub(crate) fn resource(out: &mut Vec<u8>, r: &Resource) {
    let values = [&r.kind, &r.id, &r.name, &r.path].map(|v| v.as_deref());
    str_fields(out, RESOURCE_FIELDS, values);
}

fn syslog(out: &mut Vec<u8>, s: &SyslogFields) {
    let mut first = true;
    out.push(b'{');
    if let Some(n) = s.facility {
        key(out, &mut first, "facility");
        uint(out, n.into());
    }
    if let Some(n) = s.severity {
        key(out, &mut first, "severity");
        uint(out, n.into());
    }
    if let Some(n) = s.version {
        key(out, &mut first, "version");
        uint(out, n.into());
    }
    opt_str(out, &mut first, "hostname", &s.hostname);
    opt_str(out, &mut first, "app_name", &s.app_name);
    opt_str(out, &mut first, "procid", &s.procid);
    opt_str(out, &mut first, "msgid", &s.msgid);
    if !s.structured_data.is_empty() {
        key(out, &mut first, "structured_data");
        map(out, &s.structured_data);
    }
    out.push(b'}');
}

fn source(out: &mut Vec<u8>, s: &SourceInfo) {
    let mut first = true;
    out.push(b'{');
    key(out, &mut first, "listener");
    string(out, &s.listener);
    opt_str(out, &mut first, "address", &s.address);
    out.push(b'}');
}

/// A size guess that avoids regrowing for typical events.
fn capacity_hint(ev: &Event) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 16);
    let mut n = 200
        + ev.event_id.len()
        + ev.category.len()
        + opt(&ev.tenant_id)
        + opt(&ev.action)
        + opt(&ev.outcome)
        + opt(&ev.source_ip)
        + opt(&ev.user_agent)
        + opt(&ev.session_id)
        + opt(&ev.message);
    if let Some(s) = &ev.syslog {
        n += 160 + opt(&s.hostname) + opt(&s.app_name) + opt(&s.procid) + opt(&s.msgid);
        n += s.structured_data.len() * 64;
    }
    if let Some(m) = &ev.metadata {
        n += m.len() * 48;
    }
    n
}

pub(super) fn event(ev: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity_hint(ev));
    let out = &mut out;
    let mut first = true;
    let first = &mut first;
    out.push(b'{');
    key(out, first, "event_id");
    string(out, &ev.event_id);
    key(out, first, "timestamp");
    string(out, &ev.timestamp);
    key(out, first, "received_at");
    string(out, &ev.received_at);
    opt_str(out, first, "tenant_id", &ev.tenant_id);
    key(out, first, "category");
    string(out, &ev.category);
    opt_str(out, first, "action", &ev.action);
    key(out, first, "severity");
    string(out, ev.severity.as_str());
    opt_str(out, first, "outcome", &ev.outcome);
    if let Some(a) = &ev.actor {
        key(out, first, "actor");
        actor(out, a);
    }
    if let Some(r) = &ev.resource {
        key(out, first, "resource");
        resource(out, r);
    }
    opt_str(out, first, "source_ip", &ev.source_ip);
    opt_str(out, first, "user_agent", &ev.user_agent);
    opt_str(out, first, "session_id", &ev.session_id);
    if let Some(m) = &ev.metadata {
        key(out, first, "metadata");
        map(out, m);
    }
    if let Some(s) = &ev.syslog {
        key(out, first, "syslog");
        syslog(out, s);
    }
    if let Some(s) = &ev.source {
        key(out, first, "source");
        source(out, s);
    }
    opt_str(out, first, "message", &ev.message);
    if ev.parse_error {
        key(out, first, "parse_error");
        out.extend_from_slice(b"true");
    }
    out.push(b'}');
    std::mem::take(out)
}
