//! HTTP body parsing: JSON events (`POST /v1/events`), Splunk HEC event
//! envelopes (`POST /services/collector/event`) and HEC raw text
//! (`POST /services/collector/raw`, [`parse_hec_raw`]).
//!
//! `/v1/events` takes a JSON object, a JSON array of objects, or NDJSON (one
//! object a line), parsed with simd-json. A HEC body is one or more
//! concatenated ("stacked") envelopes `{"event": …, "time": …, "host": …,
//! "source": …, "sourcetype": …, "index": …, "fields": {…}}`. Errors name the
//! 1-based line and the byte offset where the problem is, and a body with any
//! error yields no events at all.

use crate::event::{EncodedEvent, Event, Severity};
use crate::parse::direct;
use crate::parse::normalize::{apply_json, blank_event, normalize_json, normalize_syslog, Origin};
use crate::parse::syslog::parse_syslog;
use serde_json::{Map, Value};
use simd_json::BorrowedValue;
use thiserror::Error;

/// Why a body was rejected; `line` is 1-based, `offset` a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("empty body")]
    Empty,
    /// JSON that does not parse; in a HEC body, `event` is the 0-based
    /// number of the envelope it is in (Splunk's `invalid-event-number`).
    #[error("invalid JSON at line {line}, byte {offset}: {message}")]
    Syntax {
        line: usize,
        offset: usize,
        message: String,
        event: Option<usize>,
    },
    /// A value that is not an object where one must be; in a HEC body,
    /// `event` is its 0-based number among the envelopes.
    #[error("expected a JSON object at line {line}, byte {offset}")]
    NotAnObject {
        line: usize,
        offset: usize,
        event: Option<usize>,
    },
    /// `event` (0-based: Splunk's `invalid-event-number`) has no `event`.
    #[error("HEC event field is required (line {line}, byte {offset})")]
    HecEventMissing {
        line: usize,
        offset: usize,
        event: usize,
    },
    #[error("HEC event field cannot be blank (line {line}, byte {offset})")]
    HecEventBlank {
        line: usize,
        offset: usize,
        event: usize,
    },
    /// A `time` that is not epoch time: not a number or a string of one,
    /// negative, NaN or infinite.
    #[error("HEC time is not epoch time (line {line}, byte {offset})")]
    HecInvalidTime {
        line: usize,
        offset: usize,
        event: usize,
    },
    /// A HEC request's `time` query parameter that is not epoch time (as
    /// [`BodyError::HecInvalidTime`]): the request's time, so its first
    /// event is named.
    #[error("HEC request's time `{0}` is not epoch time")]
    HecQueryTime(String),
}

impl BodyError {
    /// (line, offset) of the problem, when it has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            BodyError::Empty | BodyError::HecQueryTime(_) => None,
            BodyError::Syntax { line, offset, .. }
            | BodyError::NotAnObject { line, offset, .. }
            | BodyError::HecEventMissing { line, offset, .. }
            | BodyError::HecEventBlank { line, offset, .. }
            | BodyError::HecInvalidTime { line, offset, .. } => Some((*line, *offset)),
        }
    }

    /// The 0-based number of the HEC event at fault (Splunk's
    /// `invalid-event-number`), when the problem is one event's (a HEC
    /// envelope that does not parse included).
    pub fn hec_event_number(&self) -> Option<usize> {
        match self {
            BodyError::HecEventMissing { event, .. }
            | BodyError::HecEventBlank { event, .. }
            | BodyError::HecInvalidTime { event, .. } => Some(*event),
            BodyError::Syntax { event, .. } | BodyError::NotAnObject { event, .. } => *event,
            BodyError::HecQueryTime(_) => Some(0),
            _ => None,
        }
    }
}

/// Parses a `/v1/events` body into canonical events.
pub fn parse_events_body(
    body: &[u8],
    received_ms: i64,
    origin: &Origin,
) -> Result<Vec<Event>, BodyError> {
    let objects = parse_objects(body)?;
    Ok(objects
        .into_iter()
        .map(|o| normalize_json(o, received_ms, origin))
        .collect())
}

/// [`parse_events_body`] with each event encoded: the same records, written
/// directly from a borrowed parse when every object allows it
/// ([`crate::parse::direct`]), through the [`Event`]s otherwise.
pub fn parse_events_records(
    body: &[u8],
    received_ms: i64,
    origin: &Origin,
) -> Result<Vec<EncodedEvent>, BodyError> {
    if let Some(records) = direct_records(body, received_ms, origin) {
        return Ok(records);
    }
    let events = parse_events_body(body, received_ms, origin)?;
    Ok(events.iter().map(Event::encode).collect())
}

/// The direct path of [`parse_events_records`]; `None` for anything it
/// leaves to the general path (including every malformed body, whose error
/// the general path reports).
fn direct_records(body: &[u8], received_ms: i64, origin: &Origin) -> Option<Vec<EncodedEvent>> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut scratch = Vec::new();
    if body[start] == b'{' && looks_like_ndjson(body, start) {
        let mut out = Vec::new();
        for (_, line) in ndjson_lines(body) {
            out.push(direct::encode_json_text(
                line,
                &mut scratch,
                received_ms,
                origin,
            )?);
        }
        return Some(out);
    }
    scratch.extend_from_slice(body);
    let value = direct::parse_borrowed(&mut scratch)?;
    let records = match &value {
        BorrowedValue::Object(obj) => {
            Some(vec![direct::encode_json_object(obj, received_ms, origin)?])
        }
        BorrowedValue::Array(items) => items
            .iter()
            .map(|item| match item {
                BorrowedValue::Object(obj) => direct::encode_json_object(obj, received_ms, origin),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    records
}

/// The JSON objects of a body: one object, an array of objects, or NDJSON.
pub fn parse_objects(body: &[u8]) -> Result<Vec<Map<String, Value>>, BodyError> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(BodyError::Empty)?;
    if body[start] == b'{' && looks_like_ndjson(body, start) {
        return parse_ndjson(body);
    }
    let value = parse_value(body, 0, body)?;
    match value {
        Value::Object(o) => Ok(vec![o]),
        Value::Array(items) => array_objects(items, body, start),
        _ => Err(not_object(body, start, None)),
    }
}

/// The lines of an NDJSON body that are not blank, each with the byte
/// offset where it starts: the pieces of `body.split(|b| *b == b'\n')`
/// (a `\r` before the `\n` stays on its line) other than those all ASCII
/// whitespace, found with memchr rather than byte by byte.
fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    std::iter::from_fn(move || loop {
        let end = ends.next()?;
        let line = &body[start..end];
        let line_start = start;
        start = end + 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Some((line_start, line));
        }
    })
}

/// True when the first line holds a complete JSON object and more follows.
fn looks_like_ndjson(body: &[u8], start: usize) -> bool {
    let Some(nl) = memchr::memchr(b'\n', &body[start..]) else {
        return false;
    };
    let first = &body[start..start + nl];
    let more = body[start + nl..].iter().any(|b| !b.is_ascii_whitespace());
    more && !crate::event::json_text::refused(first)
        && simd_json::serde::from_slice::<serde::de::IgnoredAny>(&mut first.to_vec()).is_ok()
}

fn parse_ndjson(body: &[u8]) -> Result<Vec<Map<String, Value>>, BodyError> {
    let mut out = Vec::new();
    for (line_start, line) in ndjson_lines(body) {
        match parse_value(line, line_start, body)? {
            Value::Object(o) => out.push(o),
            _ => return Err(not_object(body, line_start, None)),
        }
    }
    Ok(out)
}

/// The objects of the array that starts at `start` in `body`; an element
/// that is not one is reported where it starts.
fn array_objects(
    items: Vec<Value>,
    body: &[u8],
    start: usize,
) -> Result<Vec<Map<String, Value>>, BodyError> {
    items
        .into_iter()
        .enumerate()
        .map(|(n, v)| match v {
            Value::Object(o) => Ok(o),
            _ => Err(not_object(body, element_start(body, start, n), None)),
        })
        .collect()
}

/// Where element `n` (from 0) of the array whose `[` is the first bracket
/// from `start` in `body` (JSON that parsed) begins: after the `[`, or the
/// array's own `n`th comma, and the whitespace that follows. (Only an
/// error looks for it: a body that is fine is never scanned again.)
fn element_start(body: &[u8], start: usize, n: usize) -> usize {
    let mut depth = 0usize;
    let mut commas = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (at, &b) in body.iter().enumerate().skip(start) {
        if in_string {
            (in_string, escaped) = (escaped || b != b'"', !escaped && b == b'\\');
            continue;
        }
        let element_follows = match b {
            b'"' => {
                in_string = true;
                false
            }
            b'[' | b'{' => {
                depth += 1;
                depth == 1 && n == 0
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                false
            }
            b',' if depth == 1 => {
                commas += 1;
                commas == n
            }
            _ => false,
        };
        if element_follows {
            return skip_ws(body, at + 1);
        }
    }
    start
}

/// Parses `slice` (which starts at `base` in `body`) with simd-json.
fn parse_value(slice: &[u8], base: usize, body: &[u8]) -> Result<Value, BodyError> {
    if let Some(at) = crate::event::json_text::too_deep_at(slice) {
        return Err(too_deep(body, base + at, None));
    }
    if let Some(at) = crate::event::json_text::lone_surrogate_at(slice) {
        let offset = (base + at).min(body.len());
        return Err(BodyError::Syntax {
            line: line_of(body, offset),
            offset,
            message: "a \\u escape of a lone UTF-16 surrogate".into(),
            event: None,
        });
    }
    let mut scratch = slice.to_vec();
    simd_json::serde::from_slice::<Value>(&mut scratch).map_err(|e| {
        let (at, message) = located(slice, &e);
        let offset = (base + at).min(body.len());
        BodyError::Syntax {
            line: line_of(body, offset),
            offset,
            message,
            event: None,
        }
    })
}

/// JSON that nests too deep ([`MAX_NESTING`](crate::event::json_text::MAX_NESTING)),
/// refused at `offset` in `body`, the bracket that goes one level too far
/// (in HEC envelope `event`, if one).
fn too_deep(body: &[u8], offset: usize, event: Option<usize>) -> BodyError {
    let offset = offset.min(body.len());
    BodyError::Syntax {
        line: line_of(body, offset),
        offset,
        message: format!(
            "nested more than {} levels deep",
            crate::event::json_text::MAX_NESTING
        ),
        event,
    }
}

/// Where in `slice` simd-json's error `e` is, and what it is. simd-json
/// reports some errors where its pass happened to be, not where the fault
/// is: a fault inside a string (an unterminated one, a bad escape) at 0 or
/// at some string's start, a structure it cannot follow (`{"b":}`, a
/// trailing comma) only as an internal error. serde_json, reading `slice`
/// again (the error path only), says where those are. The words are
/// simd-json's where its error names the fault (an invalid escape, a
/// number), else serde_json's (a string the input ends in, `expected
/// value`), but never "trailing characters": a second value or a byte
/// order mark, which this relay's own words explain better.
fn located(slice: &[u8], e: &simd_json::Error) -> (usize, String) {
    use simd_json::ErrorType as E;
    if let (E::InvalidUtf8, Err(bad)) = (e.error(), std::str::from_utf8(slice)) {
        // simd-json checks the whole input first and says 0 (and serde_json
        // skipping the value does not look inside strings): the bad byte
        return (bad.valid_up_to(), json_error_text(e.error()));
    }
    let Some(s) = serde_json::from_slice::<serde::de::IgnoredAny>(slice).err() else {
        return (e.index(), json_error_text(e.error()));
    };
    let words = serde_error_text(&s);
    let message = match fault_text(e.error()) {
        _ if words.starts_with("trailing characters") => json_error_text(e.error()),
        Some(ours) => ours,
        None => words,
    };
    let misplaced = e.index() == 0
        || matches!(
            e.error(),
            E::InternalError(_)
                | E::UnterminatedString
                | E::InvalidEscape
                | E::InvalidUnicodeEscape
                | E::InvalidUnicodeCodepoint
        );
    let at = if misplaced {
        serde_error_offset(slice, &s)
    } else {
        e.index()
    };
    (at, message)
}

/// serde_json's words for an error, without its line and column (those
/// count from the start of the value read, not of the body).
fn serde_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((words, _)) => words.to_string(),
        None => text,
    }
}

/// A parse error in words (simd-json's error types only have `Debug`).
fn json_error_text(e: &simd_json::ErrorType) -> String {
    use simd_json::ErrorType as E;
    match e {
        // simd-json's structural pass: a second value, a byte order mark,
        // or anything else after or around the value
        E::TrailingData | E::InternalError(_) => {
            "not one JSON value (something before or after it, such as a second value or a byte order mark)".into()
        }
        other => fault_text(other).unwrap_or_else(|| format!("invalid JSON ({other:?})")),
    }
}

/// The words for an error whose type names the fault; `None` for the
/// generic ones (`Syntax`, the structural pass's), whose words are better
/// taken from serde_json.
fn fault_text(e: &simd_json::ErrorType) -> Option<String> {
    use simd_json::ErrorType as E;
    Some(match e {
        E::Eof => "the JSON ends too early".into(),
        E::UnterminatedString => "a string is not terminated".into(),
        E::InvalidEscape | E::InvalidUnicodeEscape => "an invalid escape in a string".into(),
        E::InvalidUnicodeCodepoint => "an escape of an invalid Unicode code point".into(),
        E::InvalidUtf8 => "invalid UTF-8".into(),
        // simd-json also refuses valid JSON numbers it cannot hold
        E::InvalidNumber | E::InvalidExponent => {
            "an invalid number, or one out of range (integers from -2^63 to 2^64-1, others up to about 1.8e308)".into()
        }
        E::ExpectedObjectColon => "a ':' was expected after a key".into(),
        E::ExpectedMapComma | E::ExpectedArrayComma => "a ',' was expected".into(),
        E::ExpectedObjectKey | E::KeyMustBeAString => "a key (a string) was expected".into(),
        _ => return None,
    })
}

fn not_object(body: &[u8], offset: usize, event: Option<usize>) -> BodyError {
    BodyError::NotAnObject {
        line: line_of(body, offset),
        offset,
        event,
    }
}

/// 1-based line number of a byte offset.
fn line_of(body: &[u8], offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &body[..offset.min(body.len())]).count()
}

/// Parses a Splunk HEC event body (stacked envelopes) into canonical events.
pub fn parse_hec_body(
    body: &[u8],
    received_ms: i64,
    origin: &Origin,
) -> Result<Vec<Event>, BodyError> {
    parse_hec_body_with(body, received_ms, &Map::new(), None, origin)
}

/// [`parse_hec_body`] with what the request's query gives its envelopes,
/// as Splunk takes it: `meta` (the query's `host`, `source`, `sourcetype`,
/// `index`) for each envelope that does not set the key itself, and `time`
/// (epoch time, read as an envelope's `time`) for each envelope without a
/// `time` of its own (or with `null`). A `time` that is not epoch time →
/// [`BodyError::HecQueryTime`], no event at all; an empty body is
/// [`BodyError::Empty`] whatever the query says.
pub fn parse_hec_body_with(
    body: &[u8],
    received_ms: i64,
    meta: &Map<String, Value>,
    time: Option<&str>,
    origin: &Origin,
) -> Result<Vec<Event>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let query = Query {
        meta,
        time_ms: query_time_ms(time)?,
    };
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut out = Vec::new();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Ok(out),
            // the envelope that does not parse is the one after those read
            Some(Err(e)) => return Err(hec_syntax(body, start, &e, out.len())),
            Some(Ok(Value::Object(env))) => {
                let end = stream.byte_offset();
                if let Some(at) = crate::event::json_text::too_deep_at(&body[start..end]) {
                    return Err(too_deep(body, start + at, Some(out.len())));
                }
                let at = Envelope {
                    body,
                    start,
                    number: out.len(),
                };
                out.push(hec_event(env, received_ms, &query, origin, at)?)
            }
            // as Splunk, with the value's number among the envelopes
            Some(Ok(_)) => return Err(not_object(body, skip_ws(body, start), Some(out.len()))),
        }
    }
}

fn skip_ws(body: &[u8], from: usize) -> usize {
    from + body[from..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// The byte offset in `body` of serde_json's error `e` in it (serde_json
/// gives a line and a column of the whole input).
fn serde_error_offset(body: &[u8], e: &serde_json::Error) -> usize {
    let line_start = body
        .split(|b| *b == b'\n')
        .take(e.line().max(1) - 1)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    line_start + e.column().saturating_sub(1)
}

/// A HEC body's syntax error, in the envelope numbered `event` from 0.
fn hec_syntax(body: &[u8], start: usize, e: &serde_json::Error, event: usize) -> BodyError {
    let offset = serde_error_offset(body, e).max(start).min(body.len());
    BodyError::Syntax {
        line: e.line().max(1),
        offset,
        message: e.to_string(),
        event: Some(event),
    }
}

/// Where an envelope is: in which body, from which byte, and its 0-based
/// number in the request.
#[derive(Clone, Copy)]
struct Envelope<'a> {
    body: &'a [u8],
    start: usize,
    number: usize,
}

/// What a HEC request's query gives each of its envelopes (see
/// [`parse_hec_body_with`]).
struct Query<'a> {
    meta: &'a Map<String, Value>,
    time_ms: Option<i64>,
}

/// A request's `time` query parameter in milliseconds, or why it is refused.
fn query_time_ms(time: Option<&str>) -> Result<Option<i64>, BodyError> {
    time.map(|t| {
        hec_time_ms(&Value::String(t.to_string()))
            .flatten()
            .ok_or_else(|| BodyError::HecQueryTime(t.to_string()))
    })
    .transpose()
}

/// Maps one HEC envelope onto a canonical event.
fn hec_event(
    mut env: Map<String, Value>,
    received_ms: i64,
    query: &Query,
    origin: &Origin,
    at: Envelope,
) -> Result<Event, BodyError> {
    let offset = skip_ws(at.body, at.start);
    let line = line_of(at.body, offset);
    let event_number = at.number;
    let event = env.remove("event").ok_or(BodyError::HecEventMissing {
        line,
        offset,
        event: event_number,
    })?;
    let blank = BodyError::HecEventBlank {
        line,
        offset,
        event: event_number,
    };
    let time = match env.remove("time") {
        None => None,
        Some(t) => Some(hec_time_ms(&t).ok_or(BodyError::HecInvalidTime {
            line,
            offset,
            event: event_number,
        })?),
    };
    let mut ev = blank_event("SYSTEM", Severity::Info, received_ms, origin);
    match event {
        Value::Object(obj) => apply_json(&mut ev, obj),
        Value::String(s) if s.trim().is_empty() => return Err(blank),
        Value::String(s) => ev.message = Some(s),
        Value::Null => return Err(blank),
        other => ev.message = Some(other.to_string()),
    }
    if let Some(ms) = time.flatten().or(query.time_ms) {
        ev.set_timestamp_ms(ms);
    }
    for (k, v) in query.meta {
        env.entry(k.clone()).or_insert_with(|| v.clone());
    }
    apply_hec_meta(&mut ev, env);
    Ok(ev)
}

/// A HEC envelope's `time` in milliseconds: epoch time as a JSON number or
/// a string of one, in seconds (with a fraction), or, as large as only
/// they can be, in milliseconds, microseconds or nanoseconds; `Some(None)`
/// for `null` (no time: the receive time). `None` for anything else (a
/// negative, NaN or infinite number, text that is no number, RFC 3339
/// text, a boolean, an array, an object): Splunk refuses those events with
/// code 6.
fn hec_time_ms(v: &Value) -> Option<Option<i64>> {
    let x = match v {
        Value::Null => return Some(None),
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // past year 9999 (a time of 1e21 is the year 33658): no RFC 3339
    // time, refused as Splunk refuses a time it cannot read
    super::normalize::epoch_ms(x).map(Some)
}

/// Parses a Splunk HEC raw body (`POST /services/collector/raw`) into
/// canonical events: one per line (lines end at `\n`, `\r` or both, as
/// Splunk's default `LINE_BREAKER` `([\r\n]+)` breaks them; lines of
/// whitespace only are skipped). A line that starts with a syslog PRI
/// (`<` and a digit) and parses as syslog is a syslog event (header fields
/// in `syslog`, a JSON MSG mapped as for the syslog sources); every other
/// line is plain text: `message`, severity `info`, category `SYSTEM`, no
/// `parse_error` (as a HEC event that is a string). `meta` (the request's
/// `host`, `source`, `sourcetype`, `index`) goes to each event's `metadata`
/// as a HEC envelope's does. `time` (the request's `time` query parameter:
/// epoch time, read as an envelope's `time`) is the time of each event
/// that has none of its own: a plain line, a syslog line whose header has
/// no timestamp (one that has keeps it, as does a JSON MSG's own
/// `timestamp`). A body with no line → [`BodyError::Empty`]; a `time` that
/// is not epoch time → [`BodyError::HecQueryTime`], no event at all.
pub fn parse_hec_raw(
    body: &[u8],
    received_ms: i64,
    tz: chrono_tz::Tz,
    meta: &Map<String, Value>,
    time: Option<&str>,
    origin: &Origin,
) -> Result<Vec<Event>, BodyError> {
    let mut lines = raw_lines(body).peekable();
    // no data is no data, whatever the query says
    if lines.peek().is_none() {
        return Err(BodyError::Empty);
    }
    let time_ms = query_time_ms(time)?;
    let events: Vec<Event> = lines
        .map(|line| {
            let mut ev = raw_line_event(line, received_ms, time_ms, tz, origin);
            if !meta.is_empty() {
                apply_hec_meta(&mut ev, meta.clone());
            }
            ev
        })
        .collect();
    Ok(events)
}

/// The lines of a raw body that are not blank (see [`parse_hec_raw`]).
fn raw_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n' || *b == b'\r')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// [`parse_hec_raw`] as the ring's records. With `origin.syslog_hint`, a
/// syslog line of a request without query metadata or time (nothing to
/// add to its event) is read as the syslog sources read it, syslog hint and
/// all, so a `format = "syslog"` destination sends an RFC 5424 line byte
/// for byte, as it does one that came over TCP (it rebuilt it from the
/// event: the timestamp in UTC, say); the other events get the hint of an
/// event not from syslog.
pub fn parse_hec_raw_records(
    body: &[u8],
    received_ms: i64,
    tz: chrono_tz::Tz,
    meta: &Map<String, Value>,
    time: Option<&str>,
    origin: &Origin,
) -> Result<Vec<EncodedEvent>, BodyError> {
    let as_sources = origin.syslog_hint && meta.is_empty() && time.is_none();
    let events = parse_hec_raw(body, received_ms, tz, meta, time, origin)?;
    Ok(events
        .iter()
        .zip(raw_lines(body))
        .map(|(ev, line)| match ev.syslog.is_some() {
            true if as_sources => {
                crate::parse::syslog_line_to_record(line, received_ms, tz, origin)
            }
            is_syslog => {
                let mut rec = ev.encode();
                if origin.syslog_hint && !is_syslog {
                    rec.write_hint(crate::event::syslog_hint::write_not_syslog);
                }
                rec
            }
        })
        .collect())
}

/// One line of a raw body (see [`parse_hec_raw`]); `time_ms`, the
/// request's time, for a line without a time of its own.
fn raw_line_event(
    line: &[u8],
    received_ms: i64,
    time_ms: Option<i64>,
    tz: chrono_tz::Tz,
    origin: &Origin,
) -> Event {
    if line.first() == Some(&b'<') && line.get(1).is_some_and(u8::is_ascii_digit) {
        let mut m = parse_syslog(line, received_ms, tz);
        if m.parsed {
            m.timestamp_ms = m.timestamp_ms.or(time_ms);
            return normalize_syslog(m, received_ms, origin);
        }
    }
    let mut ev = blank_event("SYSTEM", Severity::Info, received_ms, origin);
    ev.message = Some(String::from_utf8_lossy(line).into_owned());
    if let Some(ms) = time_ms {
        ev.set_timestamp_ms(ms);
    }
    ev
}

/// `host`, `source`, `sourcetype`, `index` and `fields` go to `metadata`
/// (`fields` merged flat, as Splunk indexes them); an envelope with none of
/// them (or an empty `fields`) adds no `metadata`, not an empty one. The event's own data
/// wins: an envelope value whose key the event's metadata already has
/// (another relay's `source`, say) goes to `metadata.hec.<key>` instead of
/// replacing it (one value a key there: the first the envelope gives).
fn apply_hec_meta(ev: &mut Event, env: Map<String, Value>) {
    let mut pairs = Vec::new();
    for (k, v) in env {
        match (k.as_str(), v) {
            ("fields", Value::Object(fields)) => pairs.extend(fields),
            (_, v) => pairs.push((k, v)),
        }
    }
    if pairs.is_empty() {
        return;
    }
    let md = ev.metadata.get_or_insert_with(Map::new);
    let mut displaced = Map::new();
    for (k, v) in pairs {
        match md.get(&k) {
            None => {
                md.insert(k, v);
            }
            Some(own) if *own == v => {}
            Some(_) => {
                displaced.insert(k, v);
            }
        }
    }
    if !displaced.is_empty() {
        match md.entry("hec").or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(hec) => {
                for (k, v) in displaced {
                    hec.entry(k).or_insert(v);
                }
            }
            // the event has a `hec` of its own: keep both
            other => {
                let own = std::mem::take(other);
                displaced.insert("hec".into(), own);
                *other = Value::Object(displaced);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin = Origin {
        listener: "web",
        address: None,
        syslog_hint: true,
    };

    fn events(body: &str) -> Result<Vec<Event>, BodyError> {
        parse_events_body(body.as_bytes(), 0, &ORIGIN)
    }

    /// The event's own metadata wins over the HEC envelope's; what the
    /// envelope had for the same keys goes to `metadata.hec`, and the
    /// event's other fields stay where they are.
    #[test]
    fn hec_envelope_values_never_replace_the_event_s_own() {
        let body = r#"{"event":{"action":"hec.collide","env":"from-event","metadata":{"k":"from-event-md","host":"evhost"}},"host":"envhost","fields":{"env":"from-fields","host":"fieldhost","k":"from-fields","new":"n"}}"#;
        let evs = parse_hec_body(body.as_bytes(), 0, &ORIGIN).unwrap();
        let md = evs[0].metadata.as_ref().unwrap();
        assert_eq!(md["k"], "from-event-md");
        assert_eq!(md["host"], "evhost");
        assert_eq!(md["env"], "from-event");
        assert_eq!(md["new"], "n");
        assert_eq!(md["hec"]["k"], "from-fields");
        // two envelope values for `host` (the envelope's and `fields`'): the first kept
        assert_eq!(md["hec"]["host"], "envhost");
        assert_eq!(md["hec"]["env"], "from-fields");
    }

    /// simd-json turned a lone high surrogate into U+0000 and refused a
    /// lone low one: both are refused, where they are, on either path.
    /// An envelope with nothing for `metadata` (no `host`, `source`,
    /// `sourcetype`, `index`, or an empty `fields`) adds none: no
    /// `"metadata":{}` in the record, nor in what destinations send.
    #[test]
    fn a_hec_envelope_without_fields_adds_no_empty_metadata() {
        let body =
            br#"{"event":"plain"}{"event":{"action":"a"},"fields":{}}{"event":"x","index":"main"}"#;
        let evs = parse_hec_body(body, 0, &ORIGIN).unwrap();
        assert_eq!(evs[0].metadata, None);
        assert_eq!(evs[1].metadata, None);
        assert_eq!(evs[2].metadata.as_ref().unwrap()["index"], "main");
        for ev in &evs[..2] {
            let record = ev.encode();
            let json = std::str::from_utf8(record.body()).unwrap();
            assert!(!json.contains("metadata"), "{json}");
        }
    }

    #[test]
    fn a_lone_surrogate_is_refused_where_it_is() {
        for (body, at) in [
            (r#"{"b":"\ud800"}"#, 6),
            (r#"{"b":"x\ud800y"}"#, 7),
            (concat!(r#"{"a":1}"#, "\n", r#"{"b":"\udc00"}"#), 14),
        ] {
            for parsed in [
                events(body).map(drop),
                parse_events_records(body.as_bytes(), 0, &ORIGIN).map(drop),
            ] {
                match parsed {
                    Err(BodyError::Syntax {
                        offset, message, ..
                    }) => {
                        assert_eq!(offset, at, "{body}: {message}");
                        assert!(message.contains("surrogate"), "{message}");
                    }
                    other => panic!("{body}: {other:?}"),
                }
            }
        }
        assert!(events(r#"{"b":"\ud83d\ude00"}"#).is_ok());
    }

    #[test]
    fn object_array_and_ndjson() {
        assert_eq!(events(r#"{"action":"a"}"#).unwrap().len(), 1);
        let evs = events("  {\n \"action\": \"pretty\"\n}\n").unwrap();
        assert_eq!(evs[0].action.as_deref(), Some("pretty"));
        let evs = events(r#"[{"action":"a"},{"action":"b"}]"#).unwrap();
        assert_eq!(evs[1].action.as_deref(), Some("b"));
        let evs =
            events("{\"action\":\"a\"}\n\n{\"action\":\"b\"}\r\n{\"action\":\"c\"}\n").unwrap();
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[2].action.as_deref(), Some("c"));
        assert_eq!(evs[0].source.as_ref().unwrap().listener, "web");
    }

    #[test]
    /// Numbers simd-json cannot hold are refused with words that say so
    /// (README: send such IDs as strings); the bounds themselves pass.
    fn numbers_out_of_range_are_refused_in_words() {
        for body in [
            r#"{"order_id":98765432109876543210}"#,
            r#"{"k":-9223372036854775809}"#,
            r#"{"v":1e309}"#,
        ] {
            match events(body).unwrap_err() {
                BodyError::Syntax { message, .. } => {
                    assert!(message.contains("out of range"), "{body}: {message}")
                }
                e => panic!("{body}: {e:?}"),
            }
        }
        for body in [
            r#"{"a":18446744073709551615}"#,
            r#"{"a":-9223372036854775808}"#,
            r#"{"a":1.7e308}"#,
        ] {
            assert_eq!(events(body).unwrap().len(), 1, "{body}");
        }
    }

    #[test]
    fn errors_name_line_and_offset() {
        let body = "{\"a\":1}\n{\"b\":2}\n{\"c\":}\n";
        match events(body).unwrap_err() {
            BodyError::Syntax { line, offset, .. } => {
                assert_eq!(line, 3);
                assert!((16..body.len()).contains(&offset), "offset {offset}");
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(
            events("{\"a\":1}\n[1]\n").unwrap_err(),
            BodyError::NotAnObject {
                line: 2,
                offset: 8,
                event: None
            }
        );
        assert_eq!(events("  \n").unwrap_err(), BodyError::Empty);
        assert!(matches!(
            events("[{\"a\":1}, 3]"),
            Err(BodyError::NotAnObject { .. })
        ));
        assert!(matches!(
            events("{\"a\":"),
            Err(BodyError::Syntax { line: 1, .. })
        ));
    }

    /// A fault inside a string is reported where it is, in words that name
    /// it: simd-json puts an unterminated string and a bad escape at 0 or
    /// at the string's start, and calls the first only "Syntax".
    #[test]
    fn a_fault_in_a_string_is_reported_where_it_is() {
        for (body, line, offset, words) in [
            // a string that runs into the line's end (NDJSON), or the body's
            (
                "{\"a\":1}\n{\"b\":\"abc\n{\"c\":3}\n",
                2,
                16,
                "EOF while parsing a string",
            ),
            (
                "{\"a\":1}\n{\"b\":\"abc}",
                2,
                17,
                "EOF while parsing a string",
            ),
            (
                "[{\"a\":1},\n{\"b\":\"abc}]",
                2,
                20,
                "EOF while parsing a string",
            ),
            // the escape itself, not the string's start
            ("{\"a\":\"x\\q\"}", 1, 8, "an invalid escape in a string"),
        ] {
            match parse_objects(body.as_bytes()).unwrap_err() {
                BodyError::Syntax {
                    line: l,
                    offset: o,
                    message,
                    ..
                } => {
                    assert_eq!((l, o), (line, offset), "{body:?}: {message}");
                    assert!(message.contains(words), "{body:?}: {message}");
                }
                e => panic!("{body:?}: {e:?}"),
            }
        }
        // bytes that are not UTF-8: where the first one is (it said 0)
        let body = b"{\"a\":1}\n{\"action\":\"bad\",\"message\":\"a\xff\xfeb\"}\n";
        match parse_objects(body).unwrap_err() {
            BodyError::Syntax {
                line,
                offset,
                message,
                ..
            } => assert_eq!((line, offset, message.as_str()), (2, 36, "invalid UTF-8")),
            e => panic!("{e:?}"),
        }
    }

    /// An array's element that is not an object, or does not parse, is
    /// reported where it is, not at the start of the body, on either path;
    /// nothing of the body is kept.
    #[test]
    fn a_bad_array_element_is_reported_where_it_is() {
        for (body, line, offset) in [
            (r#"[{"a":1}, 5, {"b":2}]"#, 1, 10),
            (
                "[\n {\"a\":\"x,]\\\"[\"},\n [1, {\"d\":2}],\n {\"b\":2}\n]",
                3,
                20,
            ),
            (r#"[{"a":1},{"b":[1,{"c":2}]},"text"]"#, 1, 27),
            (" [null]", 1, 2),
        ] {
            let want = BodyError::NotAnObject {
                line,
                offset,
                event: None,
            };
            assert_eq!(events(body).unwrap_err(), want, "{body}");
            let records = parse_events_records(body.as_bytes(), 0, &ORIGIN);
            assert_eq!(records.unwrap_err(), want, "{body}");
        }
        // simd-json says only "internal error" for a structure it cannot
        // follow: serde_json's words and place
        for (body, at, words) in [
            (r#"{"b":}"#, 5, "expected value"),
            ("{\"a\":1}\n[1,2,]", 13, "expected value"),
        ] {
            match parse_events_records(body.as_bytes(), 0, &ORIGIN).unwrap_err() {
                BodyError::Syntax {
                    offset, message, ..
                } => {
                    assert_eq!(offset, at, "{body}");
                    assert_eq!(message, words, "{body}");
                }
                e => panic!("{body}: {e:?}"),
            }
        }
        // simd-json's first pass said 0 for these: where serde_json stops
        for (body, at) in [
            (r#"[{"a":1}, {"b":"\x"}, {"c":2}]"#, 17),
            (r#"[{"a":1}, {"b":"x}, {"c":2}]"#, 22),
            (r#"[{"a":1}, tru, {"c":2}]"#, 10),
        ] {
            match parse_events_records(body.as_bytes(), 0, &ORIGIN).unwrap_err() {
                BodyError::Syntax { offset, .. } => assert_eq!(offset, at, "{body}"),
                e => panic!("{body}: {e:?}"),
            }
        }
    }

    /// The byte-by-byte split `ndjson_lines` replaced.
    fn split_lines(body: &[u8]) -> Vec<(usize, &[u8])> {
        let mut out = Vec::new();
        let mut offset = 0;
        for line in body.split(|b| *b == b'\n') {
            let line_start = offset;
            offset += line.len() + 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push((line_start, line));
            }
        }
        out
    }

    /// NDJSON-ish bodies: objects, broken objects, non-objects and every
    /// kind of blank between (CRLF, lone CR, form feed, vertical tab, which
    /// is not ASCII whitespace, and a non-breaking space, which is not ASCII).
    fn ndjson_body() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                Just("{\"action\":\"a\"}"),
                Just("{\"action\":\"b\",\"tenant_id\":\"t\"}"),
                Just("  {\"outcome\":\"failure\"}\t"),
                Just("{\"a\":}"),
                Just("[1]"),
                Just("\n"),
                Just("\r\n"),
                Just("\r"),
                Just(" "),
                Just("\t"),
                Just("\x0c"),
                Just("\x0b"),
                Just("\u{a0}"),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #[test]
        fn ndjson_lines_are_the_non_blank_pieces_of_split(body in ndjson_body()) {
            let ours: Vec<(usize, &[u8])> = ndjson_lines(body.as_bytes()).collect();
            proptest::prop_assert_eq!(ours, split_lines(body.as_bytes()));
        }

        #[test]
        fn line_of_counts_newlines(body in ndjson_body(), at in 0usize..200) {
            let b = body.as_bytes();
            let want = 1 + b[..at.min(b.len())].iter().filter(|c| **c == b'\n').count();
            proptest::prop_assert_eq!(line_of(b, at), want);
        }

        /// The direct path takes a body exactly when the general path does,
        /// with the same events in the same order.
        #[test]
        fn direct_ndjson_matches_the_general_path(body in ndjson_body()) {
            let body = format!("{{\"action\":\"first\"}}\n{body}");
            let general = parse_events_body(body.as_bytes(), 0, &ORIGIN);
            let direct = direct_records(body.as_bytes(), 0, &ORIGIN);
            // the direct path takes every body of objects it is given here
            proptest::prop_assert_eq!(direct.is_some(), general.is_ok());
            let records = parse_events_records(body.as_bytes(), 0, &ORIGIN);
            match (&general, &records) {
                (Ok(evs), Ok(recs)) => {
                    proptest::prop_assert_eq!(evs.len(), recs.len());
                    for (ev, rec) in evs.iter().zip(recs) {
                        let back = Event::decode(rec.body()).unwrap();
                        proptest::prop_assert_eq!(&back.action, &ev.action);
                        proptest::prop_assert_eq!(&back.outcome, &ev.outcome);
                        proptest::prop_assert_eq!(&back.tenant_id, &ev.tenant_id);
                    }
                }
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a, b),
                _ => proptest::prop_assert!(false, "{:?} vs {:?}", general, records.map(|r| r.len())),
            }
        }
    }

    #[test]
    fn ndjson_blank_lines_crlf_and_error_positions() {
        let body = "{\"action\":\"a\"}\r\n \t\r\n\n\x0c\n{\"action\":\"b\"}\r\n{\"action\":\"c\"}";
        let recs = direct_records(body.as_bytes(), 0, &ORIGIN).expect("direct path");
        let actions: Vec<Option<String>> = recs
            .iter()
            .map(|r| Event::decode(r.body()).unwrap().action)
            .collect();
        assert_eq!(
            actions,
            [Some("a".into()), Some("b".into()), Some("c".into())]
        );
        // an error on the last line, which has no newline after it
        let body = "{\"a\":1}\r\n\r\n  \n{\"b\":}";
        match parse_events_records(body.as_bytes(), 0, &ORIGIN).unwrap_err() {
            BodyError::Syntax { line, offset, .. } => {
                assert_eq!(line, 4);
                assert!((17..=body.len()).contains(&offset), "offset {offset}");
            }
            e => panic!("unexpected {e:?}"),
        }
        // a vertical tab is not blank: that line is an error
        assert!(matches!(
            parse_events_records(b"{\"a\":1}\n\x0b\n{\"b\":2}\n", 0, &ORIGIN),
            Err(BodyError::Syntax {
                line: 2,
                offset: 8,
                ..
            })
        ));
        assert_eq!(
            parse_events_records(b"{\"a\":1}\n\r\n[1]\r\n", 0, &ORIGIN).unwrap_err(),
            BodyError::NotAnObject {
                line: 3,
                offset: 10,
                event: None
            }
        );
    }

    #[test]
    fn hec_stacked_envelopes() {
        let body = r#"{"event":{"action":"user.login","user_id":"u1"},"time":1700000000.25,"host":"h1","sourcetype":"st","fields":{"env":"prod"}}
{"event":"plain text","index":"main"}"#;
        let evs = parse_hec_body(body.as_bytes(), 0, &ORIGIN).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].action.as_deref(), Some("user.login"));
        assert_eq!(evs[0].timestamp_ms, 1_700_000_000_250);
        let md = evs[0].metadata.as_ref().unwrap();
        assert_eq!(md["host"], "h1");
        assert_eq!(md["sourcetype"], "st");
        assert_eq!(md["env"], "prod");
        assert_eq!(evs[1].message.as_deref(), Some("plain text"));
        assert_eq!(evs[1].metadata.as_ref().unwrap()["index"], "main");
    }

    #[test]
    fn hec_errors() {
        let err = parse_hec_body(b"{\"event\":\"a\"}\n{\"time\":1}", 0, &ORIGIN).unwrap_err();
        assert_eq!(
            err,
            BodyError::HecEventMissing {
                line: 2,
                offset: 14,
                event: 1
            }
        );
        let err = parse_hec_body(b"{\"event\":\"  \"}", 0, &ORIGIN).unwrap_err();
        assert!(matches!(err, BodyError::HecEventBlank { .. }));
        let err = parse_hec_body(b"{\"event\":\"a\"}\n{\"event\":", 0, &ORIGIN).unwrap_err();
        assert!(matches!(err, BodyError::Syntax { line: 2, .. }), "{err:?}");
    }

    /// A syntax error names its event, from 0, as Splunk's
    /// `invalid-event-number` (the events before it are complete).
    #[test]
    fn hec_syntax_error_names_its_event() {
        for (body, event, line) in [
            (&b"{\"event\":"[..], 0, 1),
            (b"{\"event\":\"a\"}\n{\"event\":\"b\"}{\"event\":", 2, 2),
            (b"{\"event\":\"a\"}\n{\"event\": nope}", 1, 2),
            (b"{\"event\":\"a\"} }", 1, 1),
        ] {
            let err = parse_hec_body(body, 0, &ORIGIN).unwrap_err();
            assert!(
                matches!(err, BodyError::Syntax { line: l, .. } if l == line),
                "{err:?}"
            );
            assert_eq!(
                err.hec_event_number(),
                Some(event),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // a value that is not an envelope: its number too
        for (body, event, line) in [
            (&b"[1]"[..], 0, 1),
            (b"{\"event\":\"a\"}\n\"b\"", 1, 2),
            (b"{\"event\":\"a\"}{\"event\":\"b\"}\n 7", 2, 2),
        ] {
            let err = parse_hec_body(body, 0, &ORIGIN).unwrap_err();
            assert!(
                matches!(err, BodyError::NotAnObject { line: l, .. } if l == line),
                "{err:?}"
            );
            assert_eq!(err.hec_event_number(), Some(event), "{err:?}");
        }
        // not a HEC body: no event number
        let err = events("{\"a\":1}\n{\"b\":}").unwrap_err();
        assert_eq!(err.hec_event_number(), None, "{err:?}");
        let err = events("{\"a\":1}\n[1]").unwrap_err();
        assert_eq!(err.hec_event_number(), None, "{err:?}");
    }

    /// Splunk refuses an event whose `time` is not epoch time (code 6,
    /// naming the event from 0); the request keeps nothing.
    #[test]
    fn hec_time_that_is_not_epoch_time_is_refused() {
        for bad in [
            r#""abc""#,
            r#""""#,
            "-1",
            "-0.5",
            r#""-1700000000""#,
            r#""NaN""#,
            r#""inf""#,
            r#""2023-11-14T22:13:20Z""#,
            "true",
            "[1]",
            r#"{"s":1}"#,
        ] {
            let body =
                format!("{{\"event\":\"ok\",\"time\":1}}\n{{\"event\":\"x\",\"time\":{bad}}}");
            let err = parse_hec_body(body.as_bytes(), 0, &ORIGIN).unwrap_err();
            assert!(
                matches!(
                    err,
                    BodyError::HecInvalidTime {
                        line: 2,
                        event: 1,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert_eq!(err.hec_event_number(), Some(1));
        }
    }

    #[test]
    fn hec_epoch_time_in_seconds_strings_and_finer_units() {
        for (time, want) in [
            ("1700000000", 1_700_000_000_000),
            ("1700000000.25", 1_700_000_000_250),
            (r#""1700000000.5""#, 1_700_000_000_500),
            (r#"" 1700000000 ""#, 1_700_000_000_000),
            ("1.7e9", 1_700_000_000_000),
            ("0", 0),
            ("1700000000123", 1_700_000_000_123),
            ("1700000000123456", 1_700_000_000_123),
            ("1700000000123456789", 1_700_000_000_123),
        ] {
            let body = format!("{{\"event\":\"x\",\"time\":{time}}}");
            let evs = parse_hec_body(body.as_bytes(), 5, &ORIGIN).unwrap();
            assert_eq!(evs[0].timestamp_ms, want, "{time}");
        }
        // `null` is no time: the receive time
        let evs = parse_hec_body(br#"{"event":"x","time":null}"#, 5, &ORIGIN).unwrap();
        assert_eq!(evs[0].timestamp_ms, 5);
    }

    fn raw(body: &[u8], meta: &[(&str, &str)]) -> Result<Vec<Event>, BodyError> {
        let meta = meta
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        parse_hec_raw(body, 1_000, chrono_tz::Tz::UTC, &meta, None, &ORIGIN)
    }

    /// One event a line (`\n`, `\r\n` or a lone `\r`, blank lines
    /// skipped); syslog lines parsed as syslog, the rest plain text.
    /// A raw syslog line of a request without query metadata or time gets
    /// the syslog hint the syslog sources give it: its RFC 5424 line as it
    /// came, for a `format = "syslog"` destination to send byte for byte.
    /// Other lines get the hint of an event not from syslog; a request with
    /// metadata to add builds its syslog events' records from the event.
    #[test]
    fn hec_raw_syslog_lines_keep_their_line_for_the_syslog_destination() {
        use crate::event::syslog_hint::{HintHeader, SyslogHint, KIND_NOT_SYSLOG};
        let line = "<165>1 2026-12-07T10:00:00.5+01:00 rawh rawapp 7 M1 [x@1 k=\"v\"] hello";
        let body = format!("{line}\r\nplain text\n");
        let origin = Origin {
            listener: "raw",
            address: None,
            syslog_hint: true,
        };
        let none = Map::new();
        let records_of = |meta: &Map<String, Value>, origin: &Origin| {
            parse_hec_raw_records(
                body.as_bytes(),
                1_000,
                chrono_tz::Tz::UTC,
                meta,
                None,
                origin,
            )
            .unwrap()
        };
        let records = records_of(&none, &origin);
        assert_eq!(records.len(), 2);
        let hint = SyslogHint::parse(records[0].hint(), records[0].body()).expect("a syslog hint");
        match hint.header {
            HintHeader::Original(l) => assert_eq!(l, line.as_bytes()),
            _ => panic!("not the line as it came"),
        }
        assert_eq!(records[1].hint(), [KIND_NOT_SYSLOG]);
        let ev = Event::decode(records[0].body()).unwrap();
        assert_eq!(ev.syslog.and_then(|s| s.hostname).as_deref(), Some("rawh"));
        // metadata to add: the event's record, without the line
        let mut meta = Map::new();
        meta.insert("index".into(), Value::from("edge"));
        let records = records_of(&meta, &origin);
        assert!(records[0].hint().is_empty());
        let ev = Event::decode(records[0].body()).unwrap();
        assert_eq!(ev.metadata.unwrap()["index"], "edge");
        // no hints wanted: none written
        let origin = Origin {
            syslog_hint: false,
            ..origin
        };
        let records = records_of(&none, &origin);
        assert!(records.iter().all(|r| r.hint().is_empty()));
    }

    #[test]
    fn hec_raw_lines_are_events() {
        let body = b"plain one\r\n\r\n  \n<38>1 2023-11-14T22:13:20Z web sshd 42 - - Accepted key\rthird <not pri>\n<1x> not syslog\n{\"action\":\"a\"}";
        let evs = raw(body, &[]).unwrap();
        let messages: Vec<_> = evs.iter().map(|e| e.message.as_deref()).collect();
        assert_eq!(
            messages,
            [
                Some("plain one"),
                Some("Accepted key"),
                Some("third <not pri>"),
                Some("<1x> not syslog"),
                Some("{\"action\":\"a\"}")
            ]
        );
        let plain = &evs[0];
        assert!(!plain.parse_error && plain.syslog.is_none());
        assert_eq!(
            (plain.severity, plain.category.as_str()),
            (Severity::Info, "SYSTEM")
        );
        assert_eq!(plain.timestamp_ms, 1_000);
        let sys = &evs[1];
        let header = sys.syslog.as_ref().expect("a syslog event");
        assert_eq!(header.hostname.as_deref(), Some("web"));
        assert_eq!(header.app_name.as_deref(), Some("sshd"));
        assert_eq!(sys.category, "AUTHENTICATION");
        assert_eq!(sys.timestamp_ms, 1_700_000_000_000);
        assert!(evs.iter().all(|e| !e.parse_error));
        assert_eq!(raw(b" \r\n\n\t", &[]).unwrap_err(), BodyError::Empty);
        assert_eq!(raw(b"", &[]).unwrap_err(), BodyError::Empty);
    }

    /// The query's `time` is the time of the lines without one of their
    /// own; one that is not epoch time refuses the request (its first event).
    #[test]
    fn hec_query_gives_envelopes_what_they_do_not_set() {
        let mut meta = Map::new();
        meta.insert("host".into(), Value::String("fw1".into()));
        let body = br#"{"event":"a"}{"event":"b","time":5,"host":"h"}{"event":"c","time":null}"#;
        let evs = parse_hec_body_with(body, 1, &meta, Some("7.5"), &ORIGIN).unwrap();
        let got: Vec<(i64, &Value)> = evs
            .iter()
            .map(|e| (e.timestamp_ms, &e.metadata.as_ref().unwrap()["host"]))
            .collect();
        let (fw1, h) = (Value::from("fw1"), Value::from("h"));
        assert_eq!(got, [(7_500, &fw1), (5_000, &h), (7_500, &fw1)]);
        // without a query: as before
        let evs = parse_hec_body(body, 1, &ORIGIN).unwrap();
        assert_eq!(evs[0].timestamp_ms, 1);
        assert!(evs[0]
            .metadata
            .as_ref()
            .is_none_or(|m| m.get("host").is_none()));
        // a bad query time refuses the request; no data is still no data
        let err = parse_hec_body_with(body, 1, &meta, Some("x"), &ORIGIN).unwrap_err();
        assert_eq!(err.hec_event_number(), Some(0), "{err:?}");
        let err = parse_hec_body_with(b" ", 1, &meta, Some("x"), &ORIGIN).unwrap_err();
        assert_eq!(err, BodyError::Empty);
    }

    #[test]
    fn hec_raw_query_time_is_the_time_of_lines_without_their_own() {
        let raw_at = |body: &[u8], time: &str| {
            parse_hec_raw(
                body,
                1_000,
                chrono_tz::Tz::UTC,
                &Map::new(),
                Some(time),
                &ORIGIN,
            )
        };
        let body = b"plain\n<38>1 2023-11-14T22:13:20Z web sshd - - - own\n<38>1 - web sshd - - - none\n\
            <38>Nov 14 22:13:21 web sshd: bsd\n<13>1 - h app - - - {\"timestamp\":\"2023-11-14T22:13:22Z\"}\n\
            {\"timestamp\":\"2023-11-14T22:13:23Z\"}\n<1x> not syslog";
        // without a query time: the receive time (1_000) where a line has none
        let own: Vec<i64> = raw(body, &[])
            .unwrap()
            .iter()
            .map(|e| e.timestamp_ms)
            .collect();
        assert_eq!(
            (own[0], own[1], own[2], own[4], own[5], own[6]),
            (
                1_000,
                1_700_000_000_000,
                1_000,
                1_700_000_002_000,
                1_000,
                1_000
            )
        );
        assert_ne!(own[3], 1_000, "the BSD line has its own time");
        for (time, want) in [
            ("1700000100.25", 1_700_000_100_250),
            (" 1700000100 ", 1_700_000_100_000),
            ("1700000100250", 1_700_000_100_250),
        ] {
            let times: Vec<i64> = raw_at(body, time)
                .unwrap()
                .iter()
                .map(|e| e.timestamp_ms)
                .collect();
            assert_eq!(
                times,
                [want, own[1], want, own[3], own[4], want, want],
                "{time}"
            );
        }
        for bad in [
            "",
            "abc",
            "-1",
            "NaN",
            "inf",
            "2023-11-14T22:13:20Z",
            "null",
        ] {
            let err = raw_at(b"one\ntwo", bad).unwrap_err();
            assert_eq!(err, BodyError::HecQueryTime(bad.into()));
            assert_eq!(err.hec_event_number(), Some(0), "{bad}");
        }
        // no data is no data, whatever the time
        assert_eq!(raw_at(b" \n", "abc").unwrap_err(), BodyError::Empty);
    }

    /// The query's metadata lands as a HEC envelope's: the event's own wins.
    #[test]
    fn hec_raw_query_metadata_never_replaces_the_event_s_own() {
        let body = b"<13>1 - h app - - - {\"action\":\"x\",\"host\":\"own\"}\nplain";
        let evs = raw(body, &[("host", "qhost"), ("sourcetype", "st")]).unwrap();
        let md = evs[0].metadata.as_ref().unwrap();
        assert_eq!(
            (md["host"].as_str(), md["sourcetype"].as_str()),
            (Some("own"), Some("st"))
        );
        assert_eq!(md["hec"]["host"], "qhost");
        let md = evs[1].metadata.as_ref().unwrap();
        assert_eq!(
            (md["host"].as_str(), md["sourcetype"].as_str()),
            (Some("qhost"), Some("st"))
        );
    }
}
