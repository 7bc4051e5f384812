//! The canonical event: the one shape every input is normalised into and every
//! destination encodes from (see DESIGN.md, "Canonical event").
//!
//! An [`Event`] is serialised once, as compact JSON, into the body of a ring
//! record ([`record`]); destinations splice that body into their wire format
//! instead of serialising again.

pub mod buffers;
pub(crate) mod json_text;
pub mod record;
pub mod rfc5424_fields;
mod severity;
pub mod syslog_hint;
mod time;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use record::{Record, RecordError, RecordMeta, HEADER_LEN};
pub use severity::{Category, Severity};
pub use time::{format_rfc3339_millis, now_millis, parse_rfc3339_millis, push_rfc3339_millis};

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

thread_local! {
    /// The (millisecond, random part) of this thread's last ULID.
    static LAST_ULID: std::cell::Cell<(u64, u128)> = const { std::cell::Cell::new((0, 0)) };
}

/// `evt_` followed by a fresh ULID: 48-bit millisecond time and 80 random
/// bits. Like the ULID spec's monotonic generator, ids made by one thread in
/// the same millisecond take the previous random part plus one (so they are
/// distinct and ordered), and a new millisecond draws fresh random bits from
/// the thread-local CSPRNG: one draw per millisecond instead of per id.
pub fn new_event_id() -> String {
    let mut buf = [0u8; EVENT_ID_LEN];
    String::from(write_event_id(&mut buf))
}

/// Length of an [`new_event_id`] id: `evt_` and 26 ULID characters.
pub const EVENT_ID_LEN: usize = 4 + ulid::ULID_LEN;

/// [`new_event_id`] written into `buf`, without allocating.
pub fn write_event_id(buf: &mut [u8; EVENT_ID_LEN]) -> &str {
    // Every byte is `evt_` or from the Crockford alphabet, so this cannot
    // fail; the check is what a safe `&str` costs (about 100 instructions).
    std::str::from_utf8(write_event_id_bytes(buf)).expect("ASCII event id")
}

/// [`write_event_id`] as bytes, without the UTF-8 check: all ASCII
/// (`evt_` and Crockford base32), nothing a JSON string needs escaped.
pub fn write_event_id_bytes(buf: &mut [u8; EVENT_ID_LEN]) -> &[u8] {
    write_event_id_bytes_at(now_millis(), buf)
}

/// [`write_event_id_bytes`] for an event stamped `ms` (its receive time),
/// which the caller has already read from the clock: ingest reads it once
/// per read of a connection, not once per event. An `ms` below this thread's
/// last id's time (a read parsed after a later one) takes that later time,
/// so the thread's ids stay distinct and increasing.
pub fn write_event_id_bytes_at(ms: i64, buf: &mut [u8; EVENT_ID_LEN]) -> &[u8] {
    const RAND_MAX: u128 = (1 << 80) - 1;
    let (last_ms, last_random) = LAST_ULID.get();
    let ms = u64::try_from(ms).unwrap_or(0).max(last_ms);
    let random = if ms == last_ms && last_random < RAND_MAX {
        last_random + 1
    } else {
        fresh_random()
    };
    LAST_ULID.set((ms, random));
    buf[..4].copy_from_slice(b"evt_");
    encode_ulid(ms, random, &mut buf[4..]);
    buf
}

/// 80 fresh random bits: once a millisecond, out of line.
#[cold]
#[inline(never)]
fn fresh_random() -> u128 {
    rand::random::<u128>() & ((1 << 80) - 1)
}

/// Crockford base32 (the ULID alphabet), two characters per 10-bit value.
const ULID_PAIRS: [[u8; 2]; 1024] = {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut t = [[0u8; 2]; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = [ALPHABET[i >> 5], ALPHABET[i & 31]];
        i += 1;
    }
    t
};

/// The 26 characters of `ulid::Ulid::from_parts(ms, random)`: the 48-bit
/// time as 10 characters (50 bits, the top two 0), then the 80 random bits
/// as 16, most significant first; 13 table lookups instead of 26 shifts of
/// a `u128`.
fn encode_ulid(ms: u64, random: u128, out: &mut [u8]) {
    let out: &mut [u8; ulid::ULID_LEN] = out.try_into().expect("26 bytes");
    let pair = |v: u64| ULID_PAIRS[(v & 1023) as usize];
    let time = ms & ((1 << 48) - 1);
    let hi = (random >> 40) as u64 & ((1 << 40) - 1);
    let lo = random as u64 & ((1 << 40) - 1);
    let pairs = [
        pair(time >> 40),
        pair(time >> 30),
        pair(time >> 20),
        pair(time >> 10),
        pair(time),
        pair(hi >> 30),
        pair(hi >> 20),
        pair(hi >> 10),
        pair(hi),
        pair(lo >> 30),
        pair(lo >> 20),
        pair(lo >> 10),
        pair(lo),
    ];
    for (dst, p) in out.chunks_exact_mut(2).zip(pairs) {
        dst.copy_from_slice(&p);
    }
}

/// The 32-bit tenant hash stored in record headers (CRC32C of the tenant id;
/// never 0, which means "no tenant").
pub fn tenant_hash(tenant: &str) -> u32 {
    crc32c::crc32c(tenant.as_bytes()).max(1)
}

/// The hand-written compact JSON writer behind [`Event::encode`]. It writes
/// the same bytes as `serde_json::to_vec(&event)` (same field order, skip
/// rules and string escaping; numbers and other non-string JSON values in
/// `metadata`/`structured_data` are written by serde_json itself), without
/// going through serde's generic machinery. Its string and value writers
/// are shared with the direct RFC 5424 encoder (`parse::direct`).
pub(crate) mod json_writer {
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
    /// call each. Every byte is written as it comes, after a backslash that
    /// the next byte overwrites unless the byte is `"` or `\` (whose
    /// escapes are themselves after a backslash). A string holding a
    /// control character (none in JSON text) is written by [`string`].
    pub(crate) fn string_dense(out: &mut Vec<u8>, s: &str) {
        /// 1 for the bytes escaped as themselves after a backslash.
        static SELF_ESCAPED: [u8; 256] = {
            let mut t = [0u8; 256];
            t[b'"' as usize] = 1;
            t[b'\\' as usize] = 1;
            t
        };
        const CHUNK: usize = 128;
        let start = out.len();
        let b = s.as_bytes();
        out.reserve(b.len() + b.len() / 4 + 2);
        out.push(b'"');
        let mut buf = [0u8; 2 * CHUNK];
        let mut control = false;
        for chunk in b.chunks(CHUNK) {
            let mut j = 0;
            for &c in chunk {
                // j < 2 * CHUNK throughout: the mask only lets the compiler
                // see that, and drops the bounds checks.
                buf[j % (2 * CHUNK)] = b'\\';
                j += usize::from(SELF_ESCAPED[c as usize]);
                buf[j % (2 * CHUNK)] = c;
                j += 1;
                control |= c < 0x20;
            }
            out.extend_from_slice(&buf[..j]);
        }
        out.push(b'"');
        if control {
            out.truncate(start);
            string(out, s);
        }
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
            Value::Number(_) => {
                serde_json::to_writer(&mut *out, v).expect("a JSON number serialises")
            }
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
            for c in (0u8..0x80).chain([0xc3]) {
                for pos in 0..40 {
                    let mut s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN".to_string();
                    let ch = if c == 0xc3 { '\u{e9}' } else { c as char };
                    s.replace_range(pos..pos + 1, &ch.to_string());
                    let mut ours = Vec::new();
                    json_writer::string(&mut ours, &s);
                    assert_eq!(
                        ours,
                        serde_json::to_vec(&s).unwrap(),
                        "char {c:#x} at {pos}"
                    );
                }
            }
        }

        #[test]
        fn escape_pairs_at_every_position_of_short_strings() {
            for len in 1..20 {
                for a in 0..len {
                    for b in a..len {
                        for (x, y) in [('"', '\n'), ('\u{1}', '\\'), ('\u{1f}', '\u{1f}')] {
                            let mut s: Vec<char> = "é".chars().cycle().take(len).collect();
                            s[a] = x;
                            s[b] = y;
                            let s: String = s.into_iter().collect();
                            let mut ours = Vec::new();
                            json_writer::string(&mut ours, &s);
                            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
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

    proptest::proptest! {
        /// The table encoder writes what the ulid crate writes.
        #[test]
        fn ulid_encoding_matches_ulid_crate(
            ms in proptest::prelude::any::<u64>(),
            random in proptest::prelude::any::<u128>(),
        ) {
            let random = random & ((1 << 80) - 1);
            let mut ours = [0u8; ulid::ULID_LEN];
            encode_ulid(ms, random, &mut ours);
            let theirs = ulid::Ulid::from_parts(ms, random).to_string();
            proptest::prop_assert_eq!(&ours[..], theirs.as_bytes());
        }
    }

    #[test]
    fn ulid_encoding_edges() {
        for (ms, random) in [
            (0, 0),
            ((1 << 48) - 1, (1 << 80) - 1),
            (u64::MAX, (1 << 80) - 1),
            (1 << 47, 1 << 79),
            (1_790_000_000_000, 0x0123_4567_89ab_cdef_0123),
        ] {
            let mut ours = [0u8; ulid::ULID_LEN];
            encode_ulid(ms, random, &mut ours);
            assert_eq!(
                &ours[..],
                ulid::Ulid::from_parts(ms, random).to_string().as_bytes()
            );
        }
    }

    #[test]
    fn event_ids_are_crockford_base32_and_monotonic() {
        const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut parts: Vec<(u64, u128)> = Vec::new();
        for i in 0..20_000 {
            let mut buf = [0u8; EVENT_ID_LEN];
            let id: &[u8] = if i % 2 == 0 {
                write_event_id(&mut buf).as_bytes()
            } else {
                write_event_id_bytes(&mut buf)
            };
            assert_eq!(id.len(), 30);
            assert_eq!(&id[..4], b"evt_");
            assert!(id[4..].iter().all(|c| CROCKFORD.contains(c)), "{id:?}");
            // The first character holds the top 3 of 50 time bits (48 used).
            assert!(id[4] <= b'7', "{id:?}");
            let u = ulid::Ulid::from_string(std::str::from_utf8(&id[4..]).unwrap()).unwrap();
            parts.push((u.timestamp_ms(), u.random()));
        }
        for w in parts.windows(2) {
            let ((pms, prandom), (ms, random)) = (w[0], w[1]);
            assert!((ms, random) > (pms, prandom), "{w:?}");
            if ms == pms {
                // within a millisecond: the previous random part plus one
                assert_eq!(random, prandom + 1, "{w:?}");
            }
        }
        // Several milliseconds passed, each with fresh random bits.
        let firsts: Vec<u128> = parts
            .windows(2)
            .filter(|w| w[0].0 != w[1].0)
            .map(|w| w[1].1)
            .collect();
        let distinct: std::collections::HashSet<&u128> = firsts.iter().collect();
        assert_eq!(distinct.len(), firsts.len());
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

    #[test]
    fn an_event_id_takes_the_given_time_and_never_goes_back() {
        let time_of = |ms: i64| {
            let mut buf = [0u8; EVENT_ID_LEN];
            let id = write_event_id_bytes_at(ms, &mut buf);
            let u = ulid::Ulid::from_string(std::str::from_utf8(&id[4..]).unwrap()).unwrap();
            (u.timestamp_ms(), u.random())
        };
        // On a thread of its own, so no earlier id of this thread is later.
        std::thread::spawn(move || {
            let t = 1_795_000_000_000;
            assert_eq!(time_of(t).0, t as u64);
            let (ms, r) = time_of(t + 5);
            assert_eq!(ms, t as u64 + 5);
            // a read parsed after a later one: the later time, the next id
            assert_eq!(time_of(t + 2), (ms, r + 1));
            assert_eq!(time_of(t + 9).0, t as u64 + 9);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn event_ids_are_unique_and_well_formed() {
        let ids: Vec<String> = (0..10_000).map(|_| new_event_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids[..10] {
            assert_eq!(id.len(), 30);
            let ulid = ulid::Ulid::from_string(&id[4..]).unwrap();
            let age = now_millis() - ulid.timestamp_ms() as i64;
            assert!((0..60_000).contains(&age), "ULID time is now: {id}");
        }
        // Within one thread, ids are strictly increasing (monotonic ULIDs).
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // Other threads draw their own random parts.
        let other: Vec<String> =
            std::thread::spawn(|| (0..10_000).map(|_| new_event_id()).collect())
                .join()
                .unwrap();
        let all: std::collections::HashSet<&String> = ids.iter().chain(&other).collect();
        assert_eq!(all.len(), 20_000);
    }
}
