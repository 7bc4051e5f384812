//! The direct path from parsed input to a record body, for the hot inputs:
//! well-formed RFC 5424 and RFC 3164 lines, and JSON objects over HTTP.
//!
//! [`encode`] writes the same body and header fields as
//! `normalize_syslog(parsed.to_message(), ..).encode()` for a line the
//! [`rfc5424`](super::rfc5424) fast path parsed, [`encode_rfc3164`] the same
//! for a line the [`rfc3164`](super::rfc3164) one parsed, and [`encode_json_object`]
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
//!
//! The parts: this file writes the record; [`sd`] renders STRUCTURED-DATA
//! (or finds it canonical already); [`json`] reads JSON values and applies
//! their members to the canonical fields.

use super::json_msg;
use super::normalize::{category_for_facility, json_severity, json_time_ms, str_time_ms, Origin};
use super::rfc3164::Rfc3164;
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

mod json;
mod sd;

use json::*;
use sd::*;

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
    encode_parsed(&Line::from(p), sd, received_ms, origin)
}

/// Parses an RFC 5424 line (CR/LF/NUL already stripped) and writes its
/// record on the direct path, collecting the SD items while the parser
/// validates them (one scan instead of two). `Err(Some(p))`: parsed, but
/// the general path must build it; `Err(None)`: not a line the RFC 5424
/// fast path parses.
// The parsed line goes back by value (the caller builds the general path's
// event from it): boxing it would allocate per line the general path takes.
#[allow(clippy::result_large_err)]
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
    encode_parsed(&Line::from(&p), sd, received_ms, origin).ok_or(Some(p))
}

/// The record of an RFC 3164 line the [`rfc3164`](super::rfc3164) fast path
/// parsed (what `normalize_syslog(p.to_message(), ..).encode()` writes), or
/// `None` when the general path must build it (see the module doc).
pub fn encode_rfc3164(
    p: &Rfc3164<'_>,
    received_ms: i64,
    origin: &Origin<'_>,
) -> Option<EncodedEvent> {
    encode_parsed(&Line::from(p), Vec::new(), received_ms, origin)
}

/// What a record is written from: a parsed syslog line's header and MSG.
struct Line<'a> {
    facility: u8,
    severity: u8,
    /// `None` for RFC 3164.
    version: Option<u32>,
    timestamp_ms: Option<i64>,
    hostname: Option<&'a str>,
    app_name: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    /// As in [`Rfc5424`]: the validated elements, `""` for none.
    structured_data: &'a str,
    sd_plain: bool,
    msg: &'a str,
    /// The RFC 5424 line as received (`None` for RFC 3164, which goes out
    /// rebuilt as RFC 5424).
    original: Option<&'a str>,
}

impl<'a> From<&Rfc5424<'a>> for Line<'a> {
    fn from(p: &Rfc5424<'a>) -> Self {
        Line {
            facility: p.facility,
            severity: p.severity,
            version: Some(p.version),
            timestamp_ms: p.timestamp_ms,
            hostname: p.hostname,
            app_name: p.app_name,
            procid: p.procid,
            msgid: p.msgid,
            structured_data: p.structured_data,
            sd_plain: p.sd_plain,
            msg: p.msg,
            original: Some(p.line),
        }
    }
}

impl<'a> From<&Rfc3164<'a>> for Line<'a> {
    fn from(p: &Rfc3164<'a>) -> Self {
        Line {
            facility: p.facility,
            severity: p.severity,
            version: None,
            timestamp_ms: Some(p.timestamp_ms),
            hostname: p.hostname,
            app_name: p.app_name,
            procid: p.procid,
            msgid: None,
            structured_data: "",
            sd_plain: true,
            msg: p.msg,
            original: None,
        }
    }
}

/// [`encode`] with the SD items of `p` already collected, in line order.
fn encode_parsed(
    p: &Line<'_>,
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
            if let Some(version) = p.version {
                o.extend_from_slice(b",\"version\":");
                uint(o, version.into());
            }
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
            // a JSON MSG goes out as it came; the body holds its fields
            raw_message: json_msg.then_some(p.msg),
            // header_token admits PRINTUSASCII only; procid_string adds digits and '-'
            printable: true,
        };
        record.write_hint(|o| {
            // an RFC 5424 line goes out as it came (what the hint holds
            // when it can), else rebuilt from its fields
            if let Some(line) = p.original {
                // as it came but for a BOM before the MSG: no MSG goes out
                // with one (most SIEM parsers keep it as text), nor the
                // white space after it, which the MSG is read without
                let head = &line[..line.len() - p.msg.len()];
                let head = head.trim_end().strip_suffix('\u{feff}').unwrap_or(head);
                if syslog_hint::write_original(o, &fields, head, p.msg) {
                    return;
                }
            }
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
    let (mut record, _) = write_record(&ov, &defaults, received_ms, origin, message, 400, |_| {})?;
    if origin.syslog_hint {
        record.write_hint(syslog_hint::write_not_syslog);
    }
    Some(record)
}

/// Parses `text` as JSON into a borrowed value (strings point into `bytes`,
/// which gets the unescaped text), reusing this thread's parse buffers.
pub fn parse_borrowed<'b>(bytes: &'b mut [u8]) -> Option<BorrowedValue<'b>> {
    // as the general path: a lone surrogate is not JSON to us, and simd-json
    // builds values recursively (deep nesting is the general path's to refuse)
    if crate::event::json_text::refused(bytes) {
        return None;
    }
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
            // `evt_` and Crockford base32: nothing to escape. Written in
            // place: copied from a stack buffer, its 2-byte stores stalled
            // the 16-byte loads of the copy (2% of ingest).
            let at = o.len();
            o.resize(at + EVENT_ID_LEN, 0);
            let id: &mut [u8; EVENT_ID_LEN] = (&mut o[at..]).try_into().expect("just resized");
            write_event_id_bytes_at(received_ms, id);
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

    /// The same body (but for the event id) and header fields; `input` is
    /// the line or object both were made from.
    fn same_record(
        ours: &EncodedEvent,
        reference: &EncodedEvent,
        input: &str,
    ) -> Result<(), TestCaseError> {
        let (a, b) = (mask_id(ours.body()), mask_id(reference.body()));
        prop_assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "input: {}",
            input
        );
        prop_assert_eq!(ours.meta, reference.meta, "input: {}", input);
        Ok(())
    }

    fn check(line: &str) -> Result<bool, TestCaseError> {
        let Some((direct, general)) = both(line) else {
            return Ok(false);
        };
        let Some(direct) = direct else {
            return Ok(false);
        };
        same_record(&direct, &general, line)?;
        // the one-scan entry point the sources use writes the same record
        let one_scan = line_to_record(line, RECEIVED, &ORIGIN);
        let one_scan = one_scan.as_ref().map_err(|_| "refused").cloned();
        prop_assert!(one_scan.is_ok(), "line_to_record refused: {}", line);
        let one_scan = one_scan.unwrap();
        prop_assert_eq!(
            mask_id(one_scan.body()),
            mask_id(direct.body()),
            "line: {}",
            line
        );
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
            // a blank id is no id: the generated one stays
            "<13>1 - host app - - - {\"event_id\":\"\",\"action\":\"x\"}",
            "<13>1 - host app - - - {\"event_id\":\"  \",\"action\":\"x\"}",
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

    pub(crate) fn json_object() -> impl Strategy<Value = String> {
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
        same_record(&direct, &general[0].encode(), text)?;
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
            r#"{"actor":{"type":null,"id":"u"},"resource":{"name":5},"user_id":"v"}"#
        )
        .unwrap());
        // a member the schema has no field for: the general path keeps it in metadata
        assert!(!check_object(
            r#"{"actor":{"type":null,"id":"u","x":{"y":[1,{"z":2}]}},"user_id":"v"}"#
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

    /// A number in an `actor` or `resource` member is its text, as a flat
    /// `user_id` is, on the direct path too (HTTP objects, JSON MSGs
    /// scanned or read by simd-json): the whole object went to `metadata`,
    /// past `redact` and the filters. A member that is no text (a bool, an
    /// object, an array) is left to the general path, which keeps it in
    /// `metadata.actor` / `metadata.resource`.
    #[test]
    fn numbers_in_actor_and_resource_members_are_their_text() {
        let decoded = |rec: &EncodedEvent| crate::event::Event::decode(rec.body()).unwrap();
        let object = r#"{"actor":{"type":7,"id":1001,"email":"a@b","service_account":-3},"resource":{"type":1.5,"id":42,"name":0,"path":"/secret/p"}}"#;
        assert!(check_object(object).unwrap(), "not on the direct path");
        let floats = r#"{"actor":{"id":1001.5e3,"email":"a@b"},"resource":{"id":-0.25}}"#;
        assert!(check_object(floats).unwrap(), "not on the direct path");
        for (text, id, rid) in [(object, "1001", "42"), (floats, "1001500.0", "-0.25")] {
            let recs =
                crate::parse::parse_events_records(text.as_bytes(), RECEIVED, &ORIGIN).unwrap();
            let ev = decoded(&recs[0]);
            assert_eq!(ev.metadata, None, "{text}");
            let a = ev.actor.unwrap();
            assert_eq!(
                (a.id.as_deref(), a.email.as_deref()),
                (Some(id), Some("a@b"))
            );
            assert_eq!(ev.resource.unwrap().id.as_deref(), Some(rid));
        }
        let ev = decoded(
            &crate::parse::parse_events_records(object.as_bytes(), RECEIVED, &ORIGIN).unwrap()[0],
        );
        let (a, r) = (ev.actor.unwrap(), ev.resource.unwrap());
        assert_eq!(
            [a.kind, a.service_account, r.kind, r.name, r.path].map(|v| v.unwrap()),
            ["7", "-3", "1.5", "0", "/secret/p"]
        );
        // a JSON MSG: the scanner's integers, and simd-json's floats
        for msg in [
            r#"{"actor":{"id":1001,"email":"a@b"},"resource":{"id":42}}"#,
            r#"{"actor":{"id":1001,"email":"a@b"},"resource":{"id":42},"f":0.5}"#,
        ] {
            let line = format!("<13>1 - h app - - - {msg}");
            assert!(check(&line).unwrap(), "not on the direct path: {line}");
            let ev = decoded(&line_to_record(&line, RECEIVED, &ORIGIN).unwrap());
            assert_eq!(ev.actor.unwrap().id.as_deref(), Some("1001"), "{line}");
            assert_eq!(ev.resource.unwrap().id.as_deref(), Some("42"), "{line}");
        }
        // a member that is no text: the general path, the same record
        for text in [
            r#"{"actor":{"id":true,"email":"a@b"}}"#,
            r#"{"resource":{"id":[1],"path":"/p"}}"#,
            r#"{"actor":{"id":{"n":1},"email":"a@b"}}"#,
        ] {
            assert!(!check_object(text).unwrap(), "{text}");
        }
    }

    /// Both paths for one RFC 3164 line: whether the direct one took it.
    /// The reference is the parsed message (the fast path's is checked
    /// against `syslog_loose` in `rfc3164`) and the `Event`.
    fn check_3164(line: &str, received_ms: i64, tz: chrono_tz::Tz) -> Result<bool, TestCaseError> {
        use crate::parse::syslog::parse_syslog;
        let general = normalize_syslog(
            parse_syslog(line.as_bytes(), received_ms, tz),
            received_ms,
            &ORIGIN,
        )
        .encode();
        // what the sources run
        let record = crate::parse::syslog_line_to_record(line.as_bytes(), received_ms, tz, &ORIGIN);
        same_record(&record, &general, line)?;
        let direct = crate::parse::rfc3164::parse(line, received_ms, tz)
            .and_then(|p| encode_rfc3164(&p, received_ms, &ORIGIN));
        // the direct record is the one with a hint
        prop_assert_eq!(
            direct.is_some(),
            !record.hint().is_empty(),
            "line: {}",
            line
        );
        Ok(direct.is_some())
    }

    #[test]
    fn rfc3164_lines_take_the_direct_path_with_the_same_records() {
        let utc = chrono_tz::Tz::UTC;
        for line in [
            "<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice",
            "<13>Nov  3 01:02:03 10.0.0.1 kernel: eth0 up",
            r#"<86>Sep 21 14:00:00 idp auth[77]: {"action":"user.login","user_id":"u-1","tenant_id":"acme"}"#,
            "<13>Sep 21 14:00:00 h a[1]b: \"quoted\" \\ é",
            // RFC 3164 has no SD: a bracketed or dashed MSG start is MSG
            "<13>Dec  7 10:12:14 host1 kernel: [12345.678] R2 kernel uptime",
            "<11>Dec  7 10:12:14 web1 myapp[77]: [INFO] R3 service started",
            "<13>Sep 21 14:00:00 h app: [x a=\"1\"] y",
            "<13>Sep 21 14:00:00 h app: [error][client 1.2.3.4] x",
            "<13>Sep 21 14:00:00 h app: - a dash",
        ] {
            assert!(check_3164(line, RECEIVED, utc).unwrap(), "{line}");
        }
        // the general path still reads what the fast path leaves
        for line in [
            "<13>Sep 21 2026 14:00:00 h app: x",
            "<13>Sep 21 2026 14:00:00 h app: [x a=\"1\"] y",
        ] {
            assert!(!check_3164(line, RECEIVED, utc).unwrap(), "{line}");
        }
    }

    /// The generator must mostly exercise the direct path.
    #[test]
    fn generated_rfc3164_lines_mostly_take_the_direct_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut direct = 0;
        for _ in 0..1000 {
            let line = crate::parse::rfc3164::tests::line()
                .new_tree(&mut runner)
                .unwrap()
                .current();
            direct += usize::from(check_3164(&line, RECEIVED, chrono_tz::Tz::UTC).unwrap());
        }
        assert!(direct > 400, "{direct} of 1000 on the direct path");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn direct_path_writes_the_same_record_as_the_event_path(line in line()) {
            check(&line)?;
        }

        #[test]
        fn direct_rfc3164_path_writes_the_same_record_as_the_event_path(
            line in crate::parse::rfc3164::tests::line(),
            zone in crate::parse::rfc3164::tests::zone(),
            received_s in 1_600_000_000i64..1_900_000_000,
        ) {
            check_3164(&line, received_s * 1000 + 7, zone)?;
        }

        #[test]
        fn direct_json_object_writes_the_same_record_as_the_event_path(text in json_object()) {
            check_object(&text)?;
        }
    }
}
