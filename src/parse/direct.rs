//! The direct path from parsed input to a record body, for the two hot
//! inputs: well-formed RFC 5424 lines and JSON objects over HTTP.
//!
//! [`encode`] writes the same body and header fields as
//! `normalize_syslog(parsed.to_message(), ..).encode()` for a line the
//! [`rfc5424`](super::rfc5424) fast path parsed, and [`encode_json_object`]
//! the same as `normalize_json(obj, ..).encode()`, but straight from the
//! borrowed parse: no intermediate [`Event`](crate::event::Event), no
//! `String` per field, no JSON maps for the structured data or for a JSON
//! MSG. A JSON MSG is read by the borrowed scanner [`json_msg`] (no copy,
//! no value tree), or, for what the scanner leaves (floats, odd escapes, deep
//! nesting, invalid JSON), with simd-json into a borrowed value. The profile
//! of the end-to-end bench showed the intermediate event's allocations, maps
//! and re-serialisation as the largest cost of ingest.
//!
//! It returns `None` for what it leaves to the general path, which then
//! decides exactly as before:
//! - an SD-ID or an SD param named twice (the merge rules);
//! - a JSON object with a key twice (at any depth), where which one wins
//!   depends on map internals.
//!
//! Differential property tests hold both paths to the same bytes.

use super::json_msg;
use super::normalize::{category_for_facility, json_severity, json_time_ms, str_time_ms, Origin};
use super::rfc5424::{procid_string, scan_sd, unescape_param, Rfc5424};
use super::spare::SpareVec;
use super::syslog::strip_bom;
use crate::event::buffers;
use crate::event::json_writer::{
    escaped_from, first_escape, str_fields, string, string_contents, uint,
    value as write_serde_value, ACTOR_FIELDS, RESOURCE_FIELDS,
};
use crate::event::record::FLAG_CANONICAL;
use crate::event::rfc5424_fields::{push_sd_name, push_sd_value, sd_name_byte, MAX_SD_NAME};
use crate::event::syslog_hint::{self, SyslogFields};
use crate::event::{
    push_rfc3339_millis, tenant_hash, write_event_id_bytes_at, Actor, Category, EncodedEvent,
    RecordMeta, Resource, Severity, EVENT_ID_LEN,
};
use serde_json::{Number, Value};
use simd_json::{BorrowedValue, StaticNode};
use std::borrow::Cow;
use std::ops::Range;

/// `,"key":"value"`, `key` a literal: everything before the value's
/// contents is one constant, so one fixed-size copy.
macro_rules! field {
    ($o:expr, $key:literal, $value:expr) => {{
        let o: &mut Vec<u8> = $o;
        o.extend_from_slice(concat!(",\"", $key, "\":\"").as_bytes());
        string_contents(o, $value);
        o.push(b'"');
    }};
}

/// [`field!`] when the value is there.
macro_rules! opt_field {
    ($o:expr, $key:literal, $value:expr) => {{
        if let Some(v) = $value {
            field!($o, $key, v);
        }
    }};
}

thread_local! {
    /// simd-json's parse buffers, reused across messages (they would be
    /// allocated per call otherwise).
    static JSON_BUFFERS: std::cell::RefCell<simd_json::Buffers> =
        std::cell::RefCell::new(simd_json::Buffers::new(1024));
    /// The allocations of the last line's SD items and JSON members.
    static SPARE_SD: SpareVec<SdItem<'static>> = const { SpareVec::new() };
    static SPARE_MEMBERS: SpareVec<Member<'static>> = const { SpareVec::new() };
}

/// An SD element marker (`None`) or one of its params (name, raw value).
type SdItem<'a> = (&'a str, Option<(&'a str, &'a str)>);

/// The canonical fields a JSON MSG sets (what `normalize::apply_json` does
/// for the keys this path handles).
#[derive(Default)]
struct Overrides<'v> {
    event_id: Option<Cow<'v, str>>,
    timestamp_ms: Option<i64>,
    tenant_id: Option<Cow<'v, str>>,
    category: Option<Cow<'v, str>>,
    action: Option<Cow<'v, str>>,
    severity: Option<Severity>,
    outcome: Option<Cow<'v, str>>,
    actor: Option<Fields<'v>>,
    resource: Option<Fields<'v>>,
    source_ip: Option<Cow<'v, str>>,
    user_agent: Option<Cow<'v, str>>,
    session_id: Option<Cow<'v, str>>,
    message: Option<Cow<'v, str>>,
    /// Keys kept as metadata, sorted, with their values.
    metadata: Vec<Member<'v>>,
    /// A `metadata` object was given (even an empty one makes `"metadata":{}`).
    metadata_object: bool,
}

/// The members' list goes back to this thread's spare, on every path.
impl Drop for Overrides<'_> {
    fn drop(&mut self) {
        SPARE_MEMBERS.with(|s| s.keep(std::mem::take(&mut self.metadata)));
    }
}

/// The record of `p` received at `received_ms` from `origin`, or `None` when
/// the general path must build it (see the module doc).
pub fn encode(p: &Rfc5424<'_>, received_ms: i64, origin: &Origin<'_>) -> Option<EncodedEvent> {
    let mut sd: Vec<SdItem<'_>> = Vec::with_capacity(8);
    if !p.structured_data.is_empty() {
        scan_sd(p.structured_data, 0, |id, param| sd.push((id, param)))?;
    }
    encode_parsed(p, sd, received_ms, origin)
}

/// Parses an RFC 5424 line (CR/LF/NUL already stripped) and writes its
/// record on the direct path, collecting the SD items while the parser
/// validates them (one scan instead of two). `Err(Some(p))`: parsed, but
/// the general path must build it; `Err(None)`: not a line the RFC 5424
/// fast path parses.
pub fn line_to_record<'a>(
    text: &'a str,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Result<EncodedEvent, Option<Rfc5424<'a>>> {
    let mut sd: Vec<SdItem<'a>> = SPARE_SD.with(|s| s.take(8));
    let Some(p) = super::rfc5424::parse_with_sd(text, |id, param| sd.push((id, param))) else {
        SPARE_SD.with(|s| s.keep(sd));
        return Err(None);
    };
    encode_parsed(&p, sd, received_ms, origin).ok_or(Some(p))
}

/// [`encode`] with the SD items of `p` already collected, in line order.
fn encode_parsed(
    p: &Rfc5424<'_>,
    mut sd: Vec<SdItem<'_>>,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Option<EncodedEvent> {
    let order = |a: &SdItem<'_>, b: &SdItem<'_>| {
        sd_id_order(a.0, b.0).then_with(|| match (param_name(a), param_name(b)) {
            (Some(x), Some(y)) => key_order(x, y),
            (x, y) => x.cmp(&y),
        })
    };
    // strictly ascending already (so nothing repeats): the line's own order
    let in_order = sd.is_sorted_by(|a, b| order(a, b).is_lt());
    if !in_order {
        sd.sort_unstable_by(order);
        let repeated = sd
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && param_name(&w[0]) == param_name(&w[1]));
        if repeated {
            return None;
        }
    }

    let mut json_bytes;
    let json_value;
    let mut ov = Overrides::default();
    let json_msg = match json_candidate(p.msg) {
        Some(text) => match scanned_members(text) {
            Some(members) => {
                apply_json(&mut ov, members)?;
                true
            }
            None => {
                json_bytes = text.as_bytes().to_vec();
                json_value = parse_borrowed(&mut json_bytes);
                match &json_value {
                    Some(BorrowedValue::Object(obj)) => {
                        apply_json(&mut ov, simd_members(obj))?;
                        true
                    }
                    _ => false,
                }
            }
        },
        None => false,
    };

    let message: Option<&str> = if json_msg {
        ov.message.as_deref()
    } else {
        Some(p.msg)
    };
    let defaults = Defaults {
        category: category_for_facility(Some(p.facility)),
        severity: Severity::from_syslog(p.severity),
        timestamp_ms: p.timestamp_ms.unwrap_or(received_ms),
    };
    // the body repeats a JSON MSG's fields and SD values with JSON quoting;
    // the hint after it the header fields and the SD (one allocation for both)
    let header_len = [p.hostname, p.app_name, p.msgid].map(|f| f.map_or(0, str::len));
    let capacity = 384
        + 2 * (p.msg.len() + p.structured_data.len())
        + (48 + p.structured_data.len() + header_len.iter().sum::<usize>());
    let procid = p.procid.map(procid_string);
    let (mut record, message_at) = write_record(
        &ov,
        &defaults,
        received_ms,
        origin,
        message,
        capacity,
        |o| {
            o.extend_from_slice(b",\"syslog\":{\"facility\":");
            uint(o, p.facility.into());
            o.extend_from_slice(b",\"severity\":");
            uint(o, p.severity.into());
            o.extend_from_slice(b",\"version\":");
            uint(o, p.version.into());
            opt_field!(o, "hostname", p.hostname);
            opt_field!(o, "app_name", p.app_name);
            opt_field!(o, "procid", procid.as_deref());
            opt_field!(o, "msgid", p.msgid);
            if !sd.is_empty() {
                o.extend_from_slice(b",\"structured_data\":{");
                write_structured_data(o, &sd);
                o.push(b'}');
            }
            o.push(b'}');
        },
    )?;
    if origin.syslog_hint {
        let fields = SyslogFields {
            facility: p.facility,
            severity: p.severity,
            hostname: p.hostname,
            app_name: p.app_name,
            procid: procid.as_deref(),
            msgid: p.msgid,
            message: message_at,
            // header_token admits PRINTUSASCII only; procid_string adds digits and '-'
            printable: true,
        };
        record.write_hint(|o| {
            syslog_hint::write(o, &fields, |o| {
                if in_order && sd_is_canonical(p.structured_data, &sd, p.sd_plain) {
                    o.extend_from_slice(p.structured_data.as_bytes());
                } else {
                    render_structured_data(o, &sd);
                }
            })
        });
    }
    SPARE_SD.with(|s| s.keep(sd));
    Some(record)
}

/// The record of one JSON object from the HTTP source (what
/// `normalize_json(obj, ..).encode()` writes), or `None` when the general
/// path must build it (see the module doc).
pub fn encode_json_object(
    obj: &simd_json::borrowed::Object<'_>,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Option<EncodedEvent> {
    encode_members(simd_members(obj), received_ms, origin)
}

/// [`encode_json_object`] for the text of one JSON object (an NDJSON line):
/// read by the scanner when it can, else parsed with simd-json (in
/// `scratch`). `None`: not a JSON object, or the general path must build it.
pub fn encode_json_text(
    text: &[u8],
    scratch: &mut Vec<u8>,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Option<EncodedEvent> {
    if let Some(members) = simdutf8::basic::from_utf8(text)
        .ok()
        .and_then(scanned_members)
    {
        return encode_members(members, received_ms, origin);
    }
    scratch.clear();
    scratch.extend_from_slice(text);
    let BorrowedValue::Object(obj) = parse_borrowed(scratch)? else {
        return None;
    };
    encode_json_object(&obj, received_ms, origin)
}

/// The record of an HTTP JSON object with these members.
fn encode_members(
    members: Vec<Member<'_>>,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Option<EncodedEvent> {
    let mut ov = Overrides::default();
    apply_json(&mut ov, members)?;
    let defaults = Defaults {
        category: "SYSTEM",
        severity: Severity::Info,
        timestamp_ms: received_ms,
    };
    let message = ov.message.as_deref();
    write_record(&ov, &defaults, received_ms, origin, message, 400, |_| {}).map(|(r, _)| r)
}

/// Parses `text` as JSON into a borrowed value (strings point into `bytes`,
/// which gets the unescaped text), reusing this thread's parse buffers.
pub fn parse_borrowed<'b>(bytes: &'b mut [u8]) -> Option<BorrowedValue<'b>> {
    JSON_BUFFERS.with_borrow_mut(|buffers| {
        simd_json::value::borrowed::to_value_with_buffers(bytes, buffers).ok()
    })
}

/// What an event is before its JSON sets anything.
struct Defaults<'a> {
    category: &'a str,
    severity: Severity,
    timestamp_ms: i64,
}

/// Writes the canonical body (field order and skip rules of
/// `Event::encode`); `syslog` writes the `,"syslog":{…}` member, if any.
/// Also returns where the `message` string's contents are in the body.
/// `None` when a metadata value needs the general path.
fn write_record(
    ov: &Overrides<'_>,
    defaults: &Defaults<'_>,
    received_ms: i64,
    origin: &Origin<'_>,
    message: Option<&str>,
    capacity: usize,
    syslog: impl FnOnce(&mut Vec<u8>),
) -> Option<(EncodedEvent, Option<Range<usize>>)> {
    let severity = ov.severity.unwrap_or(defaults.severity);
    let category: &str = ov.category.as_deref().unwrap_or(defaults.category);
    let timestamp_ms = ov.timestamp_ms.unwrap_or(defaults.timestamp_ms);

    let mut out = buffers::take(capacity);
    let o = &mut out;
    o.extend_from_slice(b"{\"event_id\":\"");
    match &ov.event_id {
        Some(id) => string_contents(o, id),
        None => {
            let mut buf = [0u8; EVENT_ID_LEN];
            // `evt_` and Crockford base32: nothing to escape
            o.extend_from_slice(write_event_id_bytes_at(received_ms, &mut buf));
        }
    }
    o.extend_from_slice(b"\",\"timestamp\":\"");
    push_rfc3339_millis(o, timestamp_ms);
    o.extend_from_slice(b"\",\"received_at\":\"");
    push_rfc3339_millis(o, received_ms);
    o.push(b'"');
    opt_field!(o, "tenant_id", ov.tenant_id.as_deref());
    field!(o, "category", category);
    opt_field!(o, "action", ov.action.as_deref());
    field!(o, "severity", severity.as_str());
    opt_field!(o, "outcome", ov.outcome.as_deref());
    if let Some(a) = &ov.actor {
        o.extend_from_slice(b",\"actor\":");
        write_fields(o, ACTOR_FIELDS, a);
    }
    if let Some(r) = &ov.resource {
        o.extend_from_slice(b",\"resource\":");
        write_fields(o, RESOURCE_FIELDS, r);
    }
    opt_field!(o, "source_ip", ov.source_ip.as_deref());
    opt_field!(o, "user_agent", ov.user_agent.as_deref());
    opt_field!(o, "session_id", ov.session_id.as_deref());
    if ov.metadata_object || !ov.metadata.is_empty() {
        o.extend_from_slice(b",\"metadata\":");
        write_members(o, &ov.metadata)?;
    }
    syslog(o);
    o.extend_from_slice(b",\"source\":{\"listener\":\"");
    string_contents(o, origin.listener);
    o.push(b'"');
    opt_field!(o, "address", origin.address);
    o.push(b'}');
    let message_at = message.map(|m| {
        // the contents: after `,"message":"`, before the closing quote
        let start = o.len() + br#","message":""#.len();
        field!(o, "message", m);
        start..o.len() - 1
    });
    o.push(b'}');

    let meta = RecordMeta {
        timestamp_ms,
        received_ms,
        severity,
        category: Category::code_of(category),
        tenant_hash: ov.tenant_id.as_deref().map(tenant_hash).unwrap_or(0),
        flags: FLAG_CANONICAL,
    };
    Some((EncodedEvent::new(meta, out), message_at))
}

/// Whether the line's STRUCTURED-DATA `text`, whose items in line order are
/// `sd` (sorted, no repeats) as [`scan_sd`] read them, is already exactly
/// what [`render_structured_data`] writes for them. The scanner admits only
/// SD-NAME bytes in names, so a name is copied as it is when it has at most
/// 32 of them (a backslash in a name included); a value is copied as it is
/// when it holds no `\\` (nothing to unescape) and no `]` (nothing to
/// escape: an unescaped `"` ends it), which the scanner reported as
/// `plain`. The rendering puts nothing between the items but what the
/// scanner read there, so the lengths agree too.
fn sd_is_canonical(text: &str, sd: &[SdItem<'_>], plain: bool) -> bool {
    if !plain {
        return false;
    }
    let mut len = 0;
    for (id, param) in sd {
        match param {
            None => {
                debug_assert!(sd_name_bytes(id));
                if id.len() > MAX_SD_NAME {
                    return false;
                }
                len += id.len() + 2; // `[ID]`
            }
            Some((name, raw)) => {
                debug_assert!(sd_name_bytes(name));
                if name.len() > MAX_SD_NAME {
                    return false;
                }
                len += name.len() + raw.len() + 4; // ` NAME="VALUE"`
            }
        }
    }
    len == text.len()
}

/// Whether `n` is non-empty and holds only SD-NAME bytes (what the scanner
/// admits).
fn sd_name_bytes(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(sd_name_byte)
}

/// STRUCTURED-DATA as the `syslog` destination writes it from the body's
/// `structured_data` map (for the record's syslog hint), from the same
/// sorted element markers and params `write_structured_data` writes.
fn render_structured_data(o: &mut Vec<u8>, sd: &[SdItem<'_>]) {
    for (i, (id, param)) in sd.iter().enumerate() {
        match param {
            None => {
                if i > 0 {
                    o.push(b']');
                }
                o.push(b'[');
                push_sd_name(o, id);
            }
            Some((name, raw)) => {
                o.push(b' ');
                push_sd_name(o, name);
                o.extend_from_slice(b"=\"");
                if raw.as_bytes().contains(&b'\\') {
                    push_sd_value(o, &unescape_param(raw));
                } else {
                    push_sd_value(o, raw);
                }
                o.push(b'"');
            }
        }
    }
    if !sd.is_empty() {
        o.push(b']');
    }
}

/// [`key_order`] for SD-IDs: the items of one element hold the very same
/// slice of the line, equal without comparing their bytes.
#[inline]
fn sd_id_order(a: &str, b: &str) -> std::cmp::Ordering {
    if std::ptr::eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        key_order(a, b)
    }
}

fn param_name<'a>(item: &SdItem<'a>) -> Option<&'a str> {
    item.1.map(|(name, _)| name)
}

/// `{"ID":{"NAME":"VALUE",…},…}` without the outer braces, from the sorted
/// element markers and params.
fn write_structured_data(o: &mut Vec<u8>, sd: &[SdItem<'_>]) {
    let mut first_param = true;
    for (i, (id, param)) in sd.iter().enumerate() {
        match param {
            None => {
                if i > 0 {
                    o.extend_from_slice(b"},\"");
                } else {
                    o.push(b'"');
                }
                string_contents(o, id);
                o.extend_from_slice(b"\":{");
                first_param = true;
            }
            Some((name, raw)) => {
                if first_param {
                    o.push(b'"');
                } else {
                    o.extend_from_slice(b",\"");
                }
                first_param = false;
                string_contents(o, name);
                o.extend_from_slice(b"\":\"");
                sd_value_contents(o, raw);
                o.push(b'"');
            }
        }
    }
    o.push(b'}');
}

/// The JSON string contents of an SD-PARAM value as the line wrote it
/// (`raw`, escapes undone). The common value has nothing to escape either
/// way and is copied after one scan.
#[inline(always)]
fn sd_value_contents(o: &mut Vec<u8>, raw: &str) {
    match first_escape(raw) {
        None => o.extend_from_slice(raw.as_bytes()),
        // the first byte to escape is not a backslash, so none is before it
        Some(first) if !raw.as_bytes()[first..].contains(&b'\\') => escaped_from(o, raw, first),
        Some(_) => string_contents(o, &unescape_param(raw)),
    }
}

/// The MSG text to try as a JSON object (as `normalize` does: after a BOM,
/// trimmed, starting with `{`).
fn json_candidate(msg: &str) -> Option<&str> {
    let body = strip_bom(msg).trim();
    body.starts_with('{').then_some(body)
}

/// A value of a JSON MSG or HTTP object: a node of simd-json's tree, or
/// what the scanner ([`json_msg`]) read, which leaves nested objects and
/// arrays as text until they are used.
#[derive(Clone, Copy)]
enum Json<'v> {
    Simd(&'v BorrowedValue<'v>),
    Scanned(json_msg::Value<'v>),
}

/// An object member: the (decoded) key and its value.
type Member<'v> = (Cow<'v, str>, Json<'v>);

impl<'v> Json<'v> {
    /// A string's text.
    fn as_str(self) -> Option<Cow<'v, str>> {
        match self {
            Json::Simd(BorrowedValue::String(s)) => Some(Cow::Borrowed(s.as_ref())),
            Json::Scanned(json_msg::Value::Str(s)) => Some(s.decoded()),
            _ => None,
        }
    }

    /// A string, or a number as text (`normalize`'s `text`).
    fn text(self) -> Option<Cow<'v, str>> {
        match self {
            Json::Simd(BorrowedValue::Static(n)) => number(n).map(|n| Cow::Owned(n.to_string())),
            // The scanner's integers are written as serde_json prints them.
            Json::Scanned(json_msg::Value::Int(n)) => Some(Cow::Borrowed(n)),
            _ => self.as_str(),
        }
    }

    /// A scalar as the `serde_json::Value` the general path would hold.
    fn scalar(self) -> Option<Value> {
        match self {
            Json::Simd(v) => scalar(v),
            Json::Scanned(json_msg::Value::Object(_) | json_msg::Value::Array(_)) => None,
            Json::Scanned(_) => self.to_serde(),
        }
    }

    /// The `serde_json::Value` the general path holds; `None` for an object
    /// with a repeated key (which one wins depends on the map).
    fn to_serde(self) -> Option<Value> {
        let v = match self {
            Json::Simd(v) => return to_serde(v),
            Json::Scanned(v) => v,
        };
        Some(match v {
            json_msg::Value::Null => Value::Null,
            json_msg::Value::Bool(b) => Value::Bool(b),
            json_msg::Value::Int(n) => Value::Number(int_number(n)?),
            json_msg::Value::Str(s) => Value::String(s.decoded().into_owned()),
            json_msg::Value::Array(_) => Value::Array(
                self.items()?
                    .into_iter()
                    .map(Json::to_serde)
                    .collect::<Option<_>>()?,
            ),
            json_msg::Value::Object(_) => {
                let mut m = serde_json::Map::new();
                for (k, v) in self.members()? {
                    if m.insert(k.into_owned(), v.to_serde()?).is_some() {
                        return None;
                    }
                }
                Value::Object(m)
            }
        })
    }

    fn is_null(self) -> bool {
        matches!(
            self,
            Json::Simd(BorrowedValue::Static(StaticNode::Null))
                | Json::Scanned(json_msg::Value::Null)
        )
    }

    /// Whether no object in the value has a key twice (what
    /// [`Json::to_serde`] checks, without building the value).
    fn unique_keys(self) -> bool {
        if let Some(mut members) = self.members() {
            return sort_unique(&mut members) && members.iter().all(|(_, v)| v.unique_keys());
        }
        match self.items() {
            Some(items) => items.iter().all(|v| v.unique_keys()),
            None => true,
        }
    }

    /// An object's members, in the order written (`None`: not an object).
    fn members(self) -> Option<Vec<Member<'v>>> {
        match self {
            Json::Simd(BorrowedValue::Object(obj)) => Some(simd_members(obj)),
            Json::Scanned(json_msg::Value::Object(text)) => scanned_members(text),
            _ => None,
        }
    }

    /// An array's items (`None`: not an array).
    fn items(self) -> Option<Vec<Json<'v>>> {
        match self {
            Json::Simd(BorrowedValue::Array(items)) => Some(items.iter().map(Json::Simd).collect()),
            Json::Scanned(json_msg::Value::Array(text)) => {
                let mut items = Vec::new();
                json_msg::array(text, |v| items.push(Json::Scanned(v)))?;
                Some(items)
            }
            _ => None,
        }
    }
}

/// The members of a simd-json object.
fn simd_members<'v>(obj: &'v simd_json::borrowed::Object<'v>) -> Vec<Member<'v>> {
    obj.iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_ref()), Json::Simd(v)))
        .collect()
}

/// The members of the JSON object `text` as the scanner reads them; `None`
/// for what it leaves to simd-json.
fn scanned_members(text: &str) -> Option<Vec<Member<'_>>> {
    let mut members = SPARE_MEMBERS.with(|s| s.take(16));
    if json_msg::object(text, |k, v| members.push((k.decoded(), Json::Scanned(v)))).is_none() {
        SPARE_MEMBERS.with(|s| s.keep(members));
        return None;
    }
    Some(members)
}

/// Sorts `members` by key, as a `serde_json::Map` iterates; false when a
/// key is repeated (which one wins depends on the map: the general path's).
fn sort_unique(members: &mut [Member<'_>]) -> bool {
    members.sort_unstable_by(|a, b| key_order(&a.0, &b.0));
    !members.windows(2).any(|w| w[0].0 == w[1].0)
}

/// `a.cmp(b)`, deciding keys that differ in their first byte (most do)
/// without a `memcmp` call.
#[inline]
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Applies the members of a JSON MSG or object in the order
/// `normalize::apply_json` does (sorted, as a `serde_json::Map` iterates);
/// the ones it does not take become `ov.metadata`. `None`: leave it to the
/// general path.
fn apply_json<'v>(ov: &mut Overrides<'v>, mut members: Vec<Member<'v>>) -> Option<()> {
    if !sort_unique(&mut members) {
        return None;
    }
    // The members of a `metadata` object, sorted.
    let mut inner = Vec::new();
    // Members not taken move to the front, in order.
    let mut kept = 0;
    for i in 0..members.len() {
        if !apply_field(ov, &members[i].0, members[i].1, &mut inner)? {
            members.swap(kept, i);
            kept += 1;
        }
    }
    members.truncate(kept);
    ov.metadata = members;
    if !inner.is_empty() {
        // The general path inserts into one map in key order, the `metadata`
        // object's members when it reaches the key "metadata": for a key both
        // at the top level and in that object the later insert wins, so the
        // inner one below "metadata" and the top-level one above.
        ov.metadata.append(&mut inner);
        ov.metadata.sort_by(|a, b| key_order(&a.0, &b.0)); // stable: top level first
        ov.metadata.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            if *later.0 < *"metadata" {
                std::mem::swap(later, earlier);
            }
            true
        });
    }
    Some(())
}

/// Applies one member as `normalize::apply_field` does; whether it was
/// taken (false: it belongs in metadata). A `metadata` object's members go
/// to `inner`. `None`: leave the event to the general path.
fn apply_field<'v>(
    ov: &mut Overrides<'v>,
    key: &str,
    value: Json<'v>,
    inner: &mut Vec<Member<'v>>,
) -> Option<bool> {
    Some(match key {
        "event_id" => set(&mut ov.event_id, value.text()),
        // a string read where it lies; other scalars as the general path reads them
        "timestamp" => set(
            &mut ov.timestamp_ms,
            match value.as_str() {
                Some(s) => str_time_ms(&s),
                None => value.scalar().as_ref().and_then(json_time_ms),
            },
        ),
        "tenant_id" => set(&mut ov.tenant_id, value.text()),
        "action" => set(&mut ov.action, value.text()),
        "outcome" => set(&mut ov.outcome, value.text()),
        "category" => set(&mut ov.category, value.as_str().map(ascii_uppercase)),
        "severity" => set(
            &mut ov.severity,
            match value.as_str() {
                Some(s) => s.parse().ok(),
                None => value.scalar().as_ref().and_then(json_severity),
            },
        ),
        "source_ip" | "ip" => set(&mut ov.source_ip, value.text()),
        "user_agent" => set(&mut ov.user_agent, value.text()),
        "session_id" => set(&mut ov.session_id, value.text()),
        "message" => set(&mut ov.message, value.text()),
        "actor" => {
            let from_serde = |a: Actor| [a.kind, a.id, a.email, a.service_account].map(owned);
            match struct_value(value, ACTOR_FIELDS, from_serde)? {
                Some(a) => {
                    merge_fields(actor(ov), a);
                    true
                }
                None => false,
            }
        }
        "resource" => {
            let from_serde = |r: Resource| [r.kind, r.id, r.name, r.path].map(owned);
            match struct_value(value, RESOURCE_FIELDS, from_serde)? {
                Some(r) => {
                    merge_fields(resource(ov), r);
                    true
                }
                None => false,
            }
        }
        "user_id" => set_text(ov, value, |o| &mut actor(o)[ACTOR_ID]),
        "user_email" => set_text(ov, value, |o| &mut actor(o)[ACTOR_EMAIL]),
        "service_account" => set_text(ov, value, |o| &mut actor(o)[ACTOR_SERVICE_ACCOUNT]),
        "resource_path" => set_text(ov, value, |o| &mut resource(o)[RESOURCE_PATH]),
        "metadata" => match value.members() {
            Some(mut members) => {
                if !sort_unique(&mut members) {
                    return None;
                }
                *inner = members;
                ov.metadata_object = true;
                true
            }
            None => false,
        },
        _ => false,
    })
}

/// An `actor` or `resource` value as `serde_json::from_value::<T>` reads
/// the `serde_json::Value` the general path holds (`Some(None)`: it fails;
/// `None`: a repeated key, the general path decides). An object is read
/// without building that value: its string fields `names`, in `T`'s order,
/// borrowed from the input where they hold no escape.
fn struct_value<'v, T: serde::de::DeserializeOwned>(
    value: Json<'v>,
    names: [&str; 4],
    from_serde: fn(T) -> Fields<'static>,
) -> Option<Option<Fields<'v>>> {
    match value.members() {
        Some(members) => object_fields(members, names),
        None => Some(
            serde_json::from_value::<T>(value.to_serde()?)
                .ok()
                .map(from_serde),
        ),
    }
}

/// The fields `names` of an object as serde's derived `Deserialize` reads
/// four `Option<String>` fields from a `serde_json::Map`: other keys are
/// ignored and `null` is an absent field; `Some(None)` when a field has
/// another type; `None` for a repeated key at any depth.
fn object_fields<'v>(mut members: Vec<Member<'v>>, names: [&str; 4]) -> Option<Option<Fields<'v>>> {
    if !sort_unique(&mut members) || !members.iter().all(|(_, v)| v.unique_keys()) {
        return None;
    }
    let mut fields = [None, None, None, None];
    for (key, v) in members {
        let Some(i) = names.iter().position(|n| *n == key) else {
            continue;
        };
        fields[i] = match v.as_str() {
            Some(s) => Some(s),
            None if v.is_null() => None,
            None => return Some(None),
        };
    }
    Some(Some(fields))
}

/// `s` in ASCII upper case (borrowed when it already is).
fn ascii_uppercase(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().any(|c| c.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else {
        s
    }
}

/// An `actor` or `resource` object's string fields, in the order of
/// [`ACTOR_FIELDS`] or [`RESOURCE_FIELDS`], borrowed from the input where
/// it allows.
type Fields<'v> = [Option<Cow<'v, str>>; 4];

/// Where in [`Fields`] the members [`ACTOR_FIELDS`] and [`RESOURCE_FIELDS`]
/// name go that flat keys (`user_id`, `resource_path`, …) also set.
const ACTOR_ID: usize = 1;
const ACTOR_EMAIL: usize = 2;
const ACTOR_SERVICE_ACCOUNT: usize = 3;
const RESOURCE_PATH: usize = 3;
const _: () = {
    assert!(matches!(ACTOR_FIELDS[ACTOR_ID].as_bytes(), b"id"));
    assert!(matches!(ACTOR_FIELDS[ACTOR_EMAIL].as_bytes(), b"email"));
    assert!(matches!(
        ACTOR_FIELDS[ACTOR_SERVICE_ACCOUNT].as_bytes(),
        b"service_account"
    ));
    assert!(matches!(RESOURCE_FIELDS[RESOURCE_PATH].as_bytes(), b"path"));
};

fn owned(s: Option<String>) -> Option<Cow<'static, str>> {
    s.map(Cow::Owned)
}

/// Takes the fields `newer` sets and keeps the others (`Actor::merge`).
fn merge_fields<'v>(into: &mut Fields<'v>, newer: Fields<'v>) {
    for (field, new) in into.iter_mut().zip(newer) {
        if new.is_some() {
            *field = new;
        }
    }
}

/// The object `json_writer::actor` / `resource` writes for these fields.
fn write_fields(o: &mut Vec<u8>, names: [&str; 4], fields: &Fields<'_>) {
    str_fields(o, names, fields.each_ref().map(|v| v.as_deref()));
}

/// Sets the field `slot` picks to `value`'s text; whether it had one (else
/// the member stays in metadata, and no `actor`/`resource` object is made).
fn set_text<'v>(
    ov: &mut Overrides<'v>,
    value: Json<'v>,
    slot: for<'a> fn(&'a mut Overrides<'v>) -> &'a mut Option<Cow<'v, str>>,
) -> bool {
    value.text().map(|t| *slot(ov) = Some(t)).is_some()
}

fn actor<'a, 'v>(ov: &'a mut Overrides<'v>) -> &'a mut Fields<'v> {
    ov.actor.get_or_insert_with(Default::default)
}

fn resource<'a, 'v>(ov: &'a mut Overrides<'v>) -> &'a mut Fields<'v> {
    ov.resource.get_or_insert_with(Default::default)
}

/// The `serde_json::Value` the general path holds for `v`; `None` for an
/// object with a repeated key (which one wins depends on the map).
fn to_serde(v: &BorrowedValue<'_>) -> Option<Value> {
    Some(match v {
        BorrowedValue::Array(items) => {
            Value::Array(items.iter().map(to_serde).collect::<Option<_>>()?)
        }
        BorrowedValue::Object(obj) => {
            let mut m = serde_json::Map::new();
            for (k, v) in obj.iter() {
                if m.insert(k.to_string(), to_serde(v)?).is_some() {
                    return None;
                }
            }
            Value::Object(m)
        }
        other => scalar(other)?,
    })
}

/// Stores `v` when there is one; whether there was.
fn set<T>(slot: &mut Option<T>, v: Option<T>) -> bool {
    match v {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

/// A scalar as the `serde_json::Value` the general path would hold.
fn scalar(v: &BorrowedValue<'_>) -> Option<Value> {
    match v {
        BorrowedValue::String(s) => Some(Value::String(s.to_string())),
        BorrowedValue::Static(StaticNode::Bool(b)) => Some(Value::Bool(*b)),
        BorrowedValue::Static(StaticNode::Null) => Some(Value::Null),
        BorrowedValue::Static(n) => number(n).map(Value::Number),
        _ => None,
    }
}

fn number(n: &StaticNode) -> Option<Number> {
    match *n {
        StaticNode::I64(i) => Some(Number::from(i)),
        StaticNode::U64(u) => Some(Number::from(u)),
        StaticNode::F64(f) => Number::from_f64(f),
        _ => None,
    }
}

/// The number of a scanned integer, as simd-json reads it: `u64` when not
/// negative, else `i64`.
fn int_number(n: &str) -> Option<Number> {
    match n.parse::<u64>() {
        Ok(u) => Some(Number::from(u)),
        Err(_) => n.parse::<i64>().ok().map(Number::from),
    }
}

/// Writes a metadata value as the canonical writer writes the
/// `serde_json::Value` the general path would hold (object keys sorted).
/// `None` for an object with a repeated key.
fn write_value(o: &mut Vec<u8>, v: &Json<'_>) -> Option<()> {
    match *v {
        Json::Simd(BorrowedValue::Array(_)) | Json::Scanned(json_msg::Value::Array(_)) => {
            o.push(b'[');
            for (i, item) in v.items()?.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                write_value(o, item)?;
            }
            o.push(b']');
        }
        Json::Simd(BorrowedValue::Object(obj)) => write_object(o, simd_members(obj))?,
        Json::Scanned(json_msg::Value::Object(text)) => write_object(o, scanned_members(text)?)?,
        Json::Simd(BorrowedValue::String(s)) => string(o, s),
        Json::Simd(BorrowedValue::Static(StaticNode::U64(u))) => uint(o, *u),
        Json::Simd(BorrowedValue::Static(n)) => match n {
            StaticNode::Null => o.extend_from_slice(b"null"),
            StaticNode::Bool(true) => o.extend_from_slice(b"true"),
            StaticNode::Bool(false) => o.extend_from_slice(b"false"),
            n => write_serde_value(o, &Value::Number(number(n)?)),
        },
        Json::Scanned(json_msg::Value::Str(s)) => string(o, &s.decoded()),
        Json::Scanned(json_msg::Value::Null) => o.extend_from_slice(b"null"),
        Json::Scanned(json_msg::Value::Bool(true)) => o.extend_from_slice(b"true"),
        Json::Scanned(json_msg::Value::Bool(false)) => o.extend_from_slice(b"false"),
        Json::Scanned(json_msg::Value::Int(n)) => o.extend_from_slice(n.as_bytes()),
    }
    Some(())
}

/// `{"key":value,…}` with the keys sorted; `None` for a repeated key.
fn write_object(o: &mut Vec<u8>, mut members: Vec<Member<'_>>) -> Option<()> {
    if !sort_unique(&mut members) {
        return None;
    }
    write_members(o, &members)
}

/// `{"key":value,…}` for members already in order.
fn write_members(o: &mut Vec<u8>, members: &[Member<'_>]) -> Option<()> {
    o.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            o.extend_from_slice(b",\"");
        } else {
            o.push(b'"');
        }
        string_contents(o, k);
        o.extend_from_slice(b"\":");
        // the common scalars here, sparing the recursive writer's frame
        match v {
            Json::Scanned(json_msg::Value::Int(n)) => o.extend_from_slice(n.as_bytes()),
            Json::Scanned(json_msg::Value::Str(s)) => string(o, &s.decoded()),
            _ => write_value(o, v)?,
        }
    }
    o.push(b'}');
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::normalize::normalize_syslog;
    use crate::parse::rfc5424;
    use proptest::prelude::*;

    const RECEIVED: i64 = 1_790_000_000_000;
    const ORIGIN: Origin = Origin {
        listener: "tcp_in",
        address: Some("10.0.0.1:514"),
        syslog_hint: true,
    };

    /// Masks a generated `evt_<ULID>` id (the two paths draw different ones).
    fn mask_id(body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        let prefix = b"{\"event_id\":\"evt_";
        if b.starts_with(prefix) && b.get(prefix.len() + 26) == Some(&b'"') {
            b[prefix.len()..prefix.len() + 26].fill(b'X');
        }
        b
    }

    /// Both paths for one line: (direct, general). `None` when the line is
    /// not on the RFC 5424 fast path at all.
    fn both(line: &str) -> Option<(Option<EncodedEvent>, EncodedEvent)> {
        let p = rfc5424::parse(line)?;
        let general = normalize_syslog(p.to_message(), RECEIVED, &ORIGIN).encode();
        Some((encode(&p, RECEIVED, &ORIGIN), general))
    }

    fn check(line: &str) -> Result<bool, TestCaseError> {
        let Some((direct, general)) = both(line) else {
            return Ok(false);
        };
        let Some(direct) = direct else {
            return Ok(false);
        };
        let (a, b) = (mask_id(direct.body()), mask_id(general.body()));
        prop_assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "line: {}",
            line
        );
        prop_assert_eq!(direct.meta, general.meta, "line: {}", line);
        // the one-scan entry point the sources use writes the same record
        let one_scan = line_to_record(line, RECEIVED, &ORIGIN);
        let one_scan = one_scan.as_ref().map_err(|_| "refused").cloned();
        prop_assert!(one_scan.is_ok(), "line_to_record refused: {}", line);
        let one_scan = one_scan.unwrap();
        prop_assert_eq!(mask_id(one_scan.body()), a, "line: {}", line);
        prop_assert_eq!(one_scan.hint(), direct.hint(), "line: {}", line);
        prop_assert_eq!(one_scan.meta, direct.meta, "line: {}", line);
        Ok(true)
    }

    #[test]
    fn without_syslog_hint_the_record_has_the_same_body_and_no_hint() {
        let line = "<86>1 2026-12-05T04:00:00.123Z host app 42 LOGIN \
                    [origin@32473 ip=\"10.1.2.3\"] user alice logged in";
        let with = line_to_record(line, RECEIVED, &ORIGIN).unwrap();
        let origin = Origin {
            syslog_hint: false,
            ..ORIGIN
        };
        let without = line_to_record(line, RECEIVED, &origin).unwrap();
        assert!(!with.hint().is_empty());
        assert!(without.hint().is_empty());
        assert_eq!(mask_id(with.body()), mask_id(without.body()));
        assert!(without.record_len() < with.record_len());
    }

    #[test]
    fn only_sd_the_rendering_keeps_byte_for_byte_is_copied() {
        let canonical = |text: &str| {
            let line = format!("<13>1 - - - - - {text} msg");
            let mut sd = Vec::new();
            let p = super::super::rfc5424::parse_with_sd(&line, |id, param| sd.push((id, param)))
                .unwrap();
            assert_eq!(p.structured_data, text);
            sd_is_canonical(p.structured_data, &sd, p.sd_plain)
        };
        assert!(canonical(r#"[a@1 x="1" y="two words"][b z="é"]"#));
        assert!(canonical("[a]"));
        // a value with a `]` (escaped or not) or any escape renders
        assert!(!canonical(r#"[a x="1]2"]"#));
        assert!(!canonical(r#"[a x="1\]2"]"#));
        assert!(!canonical(r#"[a x="q\"u"]"#));
        assert!(!canonical(r#"[a x="\n"]"#));
        // a name beyond 32 characters is cut by the rendering
        assert!(!canonical(&format!("[{} x=\"1\"]", "n".repeat(33))));
        assert!(canonical(&format!("[{} x=\"1\"]", "n".repeat(32))));
        // a backslash in a name is kept by the rendering
        assert!(canonical(r#"[a\b x="1"]"#));
    }

    const BENCH_LINE: &str = "<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq=\"7\" ts_ns=\"8\"][origin@32473 ip=\"10.1.2.3\" software=\"e2e\"] {\"seq\":7,\"ts_ns\":8,\"action\":\"user.login\",\"category\":\"AUTHENTICATION\",\"outcome\":\"success\",\"user\":\"alice\"}";

    #[test]
    fn common_lines_take_the_direct_path_with_the_same_bytes() {
        for line in [
            BENCH_LINE,
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
            "<13>1 - - - - - -",
            "<13>1 - host app 0042 - [a x=\"q\\\"u\\\\o\\]t\\n\\e\"] \u{feff}{\"message\":\"hi\",\"severity\":3,\"timestamp\":1700000000,\"n\":1.5e3,\"z\":[1,{\"b\":2,\"a\":null}],\"ip\":\"1.2.3.4\",\"source_ip\":\"5.6.7.8\"}",
            "<13>1 - host app - - - {\"category\":5,\"severity\":\"loud\",\"event_id\":42,\"tenant_id\":\"acme\"}",
            "<13>1 - host app - - - {not json",
            "<13>1 - host app - - - [\"array\"]",
        ] {
            assert!(check(line).unwrap(), "not on the direct path: {line}");
        }
    }

    #[test]
    fn merges_are_left_to_the_general_path() {
        for line in [
            "<13>1 - h a - - [x a=\"1\"][x b=\"2\"] m",
            "<13>1 - h a - - [x a=\"1\" a=\"2\"] m",
            "<13>1 - h a - - - {\"actor\":{\"id\":\"u\",\"id\":\"v\"}}",
            "<13>1 - h a - - - {\"a\":1,\"a\":2}",
            "<13>1 - h a - - - {\"a\":{\"b\":1,\"b\":2}}",
        ] {
            let (direct, _) = both(line).expect("fast-path line");
            assert!(direct.is_none(), "took the direct path: {line}");
        }
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![Just("-".to_string()), "[!-~&&[^ ]]{1,12}"]
    }

    fn sd_value() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                "[a-z0-9 .:]{0,6}",
                Just("\\\"".to_string()),
                Just("\\]".to_string()),
                Just("]".to_string()),
                Just("\\\\".to_string()),
                Just("\\n".to_string()),
                Just("\\e".to_string()),
                Just("é€".to_string()),
            ],
            0..4,
        )
        .prop_map(|v| v.concat())
    }

    fn structured_data() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("a"),
            Just("b"),
            Just("x@1"),
            Just("seq"),
            Just("a\\b"),
            Just("name-longer-than-thirty-two-chars@1")
        ];
        let param = (name.clone(), sd_value()).prop_map(|(n, v)| format!(" {n}=\"{v}\""));
        let element = (name, prop::collection::vec(param, 0..3))
            .prop_map(|(id, ps)| format!("[{id}{}]", ps.concat()));
        prop_oneof![
            Just("-".to_string()),
            prop::collection::vec(element, 1..3).prop_map(|e| e.concat())
        ]
    }

    fn json_scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"info\"".to_string()),
            Just("\"2026-11-23T10:00:00.5+01:00\"".to_string()),
            Just("\"auth\"".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..8).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            Just("1700000000123".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
            // what the MSG scanner decodes itself, and what it leaves
            Just(r#""a\/b\u00e9\u00C9\ud83d\ude00 \"q\" \\ \t""#.to_string()),
            Just(r#""lone \ud800 surrogate""#.to_string()),
            Just("-0".to_string()),
            Just("1E5".to_string()),
            Just("0.5".to_string()),
            Just("-9223372036854775808".to_string()),
            Just("18446744073709551615".to_string()),
            Just("18446744073709551616".to_string()),
        ]
    }

    fn json_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("event_id"),
            Just("timestamp"),
            Just("tenant_id"),
            Just("category"),
            Just("action"),
            Just("severity"),
            Just("outcome"),
            Just("source_ip"),
            Just("ip"),
            Just("user_agent"),
            Just("session_id"),
            Just("message"),
            Just("actor"),
            Just("metadata"),
            Just("resource"),
            Just("user_id"),
            Just("user_email"),
            Just("service_account"),
            Just("resource_path"),
            Just("type"),
            Just("id"),
            Just("email"),
            Just("name"),
            Just("path"),
            Just("user"),
            Just("seq"),
            Just("k\\\"q"),
            Just("é"),
        ]
        .prop_map(str::to_string)
    }

    fn json_value() -> impl Strategy<Value = String> {
        json_scalar().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((json_key(), inner), 0..3).prop_map(|kv| {
                    let body: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    fn msg() -> impl Strategy<Value = String> {
        let object = || {
            prop::collection::vec((json_key(), json_value()), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            })
        };
        prop_oneof![
            "[ -~é]{0,30}",
            object(),
            object().prop_map(|o| format!("\u{feff}  {o}  ")),
            object().prop_map(|o| format!("{o} trailing")),
            object().prop_map(|o| o.replace("\":", "\" :\n ").replace(",\"", " ,\t\"")),
        ]
    }

    /// RFC 5424 lines, most of them on the direct path (also used by the
    /// `syslog` destination's syslog-hint tests).
    pub(crate) fn line() -> impl Strategy<Value = String> {
        (
            0u32..=191,
            prop_oneof![
                Just("-".to_string()),
                Just("2026-11-23T10:00:00.123456Z".to_string()),
                Just("2003-08-24T05:14:15.000003-07:00".to_string()),
            ],
            token(),
            token(),
            prop_oneof![token(), Just("0042".to_string())],
            token(),
            structured_data(),
            msg(),
        )
            .prop_map(|(pri, ts, host, app, procid, msgid, sd, msg)| {
                format!("<{pri}>1 {ts} {host} {app} {procid} {msgid} {sd} {msg}")
            })
    }

    /// The generator must mostly exercise the direct path, JSON MSGs
    /// included, or the differential test below proves little.
    #[test]
    fn generated_lines_mostly_take_the_direct_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut direct, mut direct_json) = (0, 0);
        for _ in 0..1000 {
            let line = line().new_tree(&mut runner).unwrap().current();
            if check(&line).unwrap() {
                direct += 1;
                direct_json += usize::from(line.contains("\":"));
            }
        }
        assert!(direct > 500, "{direct} of 1000 on the direct path");
        assert!(direct_json > 200, "{direct_json} of 1000 with a JSON MSG");
    }

    fn json_object() -> impl Strategy<Value = String> {
        prop::collection::vec((json_key(), json_value()), 0..7).prop_map(|kv| {
            let body: Vec<String> = kv
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    /// Both paths for one HTTP JSON object: whether the direct one took it.
    fn check_object(text: &str) -> Result<bool, TestCaseError> {
        let general = crate::parse::parse_events_body(text.as_bytes(), RECEIVED, &ORIGIN);
        let mut bytes = text.as_bytes().to_vec();
        let direct = match parse_borrowed(&mut bytes) {
            Some(BorrowedValue::Object(obj)) => encode_json_object(&obj, RECEIVED, &ORIGIN),
            _ => None,
        };
        // The NDJSON line path: the scanner first, simd-json for what it leaves.
        let scanned = encode_json_text(text.as_bytes(), &mut Vec::new(), RECEIVED, &ORIGIN);
        prop_assert_eq!(scanned.is_some(), direct.is_some(), "object: {}", text);
        let (Some(direct), Some(scanned)) = (direct, scanned) else {
            return Ok(false);
        };
        prop_assert_eq!(
            mask_id(direct.body()),
            mask_id(scanned.body()),
            "object: {}",
            text
        );
        prop_assert_eq!(direct.meta, scanned.meta, "object: {}", text);
        let general = general.expect("the general path parses what simd-json parses");
        prop_assert_eq!(general.len(), 1);
        let general = general[0].encode();
        let (a, b) = (mask_id(direct.body()), mask_id(general.body()));
        prop_assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "object: {}",
            text
        );
        prop_assert_eq!(direct.meta, general.meta, "object: {}", text);
        Ok(true)
    }

    #[test]
    fn http_bodies_take_the_direct_path_with_the_same_records() {
        let e2e = r#"{"seq":7,"ts_ns":8,"timestamp":"2026-11-23T10:00:00.000000Z","action":"user.login","category":"AUTHENTICATION","severity":"info","outcome":"success","actor":{"type":"user","id":"u-1234","email":"alice@example.com"},"source_ip":"10.1.2.3","metadata_x":{"bench":"e2e"}}"#;
        assert!(check_object(e2e).unwrap());
        assert!(check_object("{}").unwrap());
        assert!(check_object(r#"{"metadata":{"k":1,"a":[1]},"k":2,"z":3,"a":0}"#).unwrap());
        assert!(check_object(r#"{"metadata":5}"#).unwrap());
        // a field given twice: the same one wins on both paths, whichever comes first
        for text in [
            r#"{"user_id":"v","actor":{"id":"u","email":"e\u0041"}}"#,
            r#"{"actor":{"id":"u","type":"user"},"user_id":"v","user_email":"x@y","service_account":"sa"}"#,
            r#"{"resource":{"path":"/a","type":"f"},"resource_path":"/b"}"#,
            r#"{"resource_path":"/b","resource":{"path":"/a\n","id":null}}"#,
            // not text: kept in metadata, and no actor or resource object made
            r#"{"user_id":{"a":1},"resource_path":[1],"service_account":null}"#,
        ] {
            assert!(check_object(text).unwrap(), "{text}");
        }
        // actor/resource objects read field by field; arrays through serde
        assert!(check_object(
            r#"{"actor":{"type":null,"id":"u","x":{"y":[1,{"z":2}]}},"resource":{"name":5},"user_id":"v"}"#
        )
        .unwrap());
        assert!(
            check_object(r#"{"actor":["user","u-1"],"resource":["f","r",null,"/p",1]}"#).unwrap()
        );
        assert!(!check_object(r#"{"actor":{"x":{"y":1,"y":2}}}"#).unwrap());
        assert!(!check_object(r#"{"resource":{"id":"a","id":"b"}}"#).unwrap());
        assert!(!check_object(r#"{"metadata":{"k":1,"k":2}}"#).unwrap());
        // whole bodies: NDJSON, array, single object; and a malformed one
        for body in [
            format!("{e2e}\n{e2e}\n\n{{\"message\":\"x\"}}\n"),
            format!("[{e2e},{{\"a\":1}}]"),
            format!("  {e2e}  "),
        ] {
            let direct =
                crate::parse::parse_events_records(body.as_bytes(), RECEIVED, &ORIGIN).unwrap();
            let general: Vec<_> =
                crate::parse::parse_events_body(body.as_bytes(), RECEIVED, &ORIGIN)
                    .unwrap()
                    .iter()
                    .map(|e| e.encode())
                    .collect();
            assert_eq!(direct.len(), general.len());
            for (d, g) in direct.iter().zip(&general) {
                assert_eq!(mask_id(d.body()), mask_id(g.body()));
                assert_eq!(d.meta, g.meta);
            }
        }
        let bad = "{\"a\":1}\n{\"b\":\n";
        assert_eq!(
            crate::parse::parse_events_records(bad.as_bytes(), RECEIVED, &ORIGIN),
            crate::parse::parse_events_body(bad.as_bytes(), RECEIVED, &ORIGIN)
                .map(|evs| evs.iter().map(|e| e.encode()).collect())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn direct_path_writes_the_same_record_as_the_event_path(line in line()) {
            check(&line)?;
        }

        #[test]
        fn direct_json_object_writes_the_same_record_as_the_event_path(text in json_object()) {
            check_object(&text)?;
        }
    }
}
