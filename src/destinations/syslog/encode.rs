//! The `syslog` destination's messages: RFC 5424 headers, STRUCTURED-DATA
//! and MSG from a ring record (its syslog hint, the fast body scanner in
//! [`super::view`], or the serde reader it is checked against), and the
//! octet-counted frames of RFC 6587/5425.

use super::settings::Format;
use super::view::{self, Fallback, JsonStr, Scratch};
use crate::destinations::BatchEvent;
use crate::event::rfc5424_fields::{
    push_header_field, push_sd_name, push_sd_value, MAX_APP_NAME, MAX_HOSTNAME, MAX_MSGID,
    MAX_PROCID,
};
use crate::event::syslog_hint::{HintHeader, HintMessage, SyslogHint};
use crate::event::{json_writer, push_rfc3339_millis};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// How `format = "syslog"` reads record bodies. The relay always uses
/// [`BodyReader::Hint`]; [`BodyReader::Scanner`] and [`BodyReader::Serde`]
/// are what it is checked against, reachable for benchmarks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyReader {
    /// The record's syslog hint (`event::syslog_hint`) when it has one,
    /// else [`BodyReader::Scanner`] (same output either way).
    #[default]
    Hint,
    /// The allocation-free scanner, falling back to serde for any body it
    /// does not fully handle (same output either way).
    Scanner,
    /// Always the serde reader.
    Serde,
}

/// Which reader produced a message (tests check that the scanner is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoded {
    /// `format = "json"`: the body is spliced unread.
    Unread,
    /// The record's syslog hint gave the fields; the body was not read.
    Hinted,
    /// The scanner read the body.
    Fast,
    /// The serde reader did: why the scanner declined, or `None` when asked for serde.
    Reference(Option<Fallback>),
}

/// How RFC 5424 header fields are filled in.
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    pub(super) format: Format,
    pub(super) facility: u8,
    pub(super) hostname: String,
    pub(super) app_name: String,
    pub(super) max_udp_bytes: usize,
}

/// `MSG-LEN SP SYSLOG-MSG` (RFC 6587 §3.4.1, RFC 5425 §4.3).
#[cfg(test)]
pub(super) fn frame_octet_counted(msg: &[u8], out: &mut Vec<u8>) {
    push_octet_counted(out, |o| o.extend_from_slice(msg));
}

/// Appends `MSG-LEN SP MSG` (RFC 6587 §3.4.1) with the message written by
/// `write` straight into `out`: room for a 3-digit length (a message of
/// 100 to 999 bytes, the usual size) is left in front of it, and only a
/// message of another length is moved to fit its length.
pub(super) fn push_octet_counted(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(b"000 ");
    let msg_at = out.len();
    write(out);
    let len = out.len() - msg_at;
    if (100..=999).contains(&len) {
        out[start] = b'0' + (len / 100) as u8;
        out[start + 1] = b'0' + (len / 10 % 10) as u8;
        out[start + 2] = b'0' + (len % 10) as u8;
    } else {
        let mut prefix = Vec::with_capacity(24);
        json_writer::uint(&mut prefix, len as u64);
        prefix.push(b' ');
        out.splice(start..msg_at, prefix);
    }
}

/// The largest `n <= max` that does not split a UTF-8 sequence of `bytes`.
pub(super) fn utf8_floor(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut n = max;
    // A continuation byte (0b10xx_xxxx) at `n` means `n` is inside a character.
    while n > 0 && bytes[n] & 0xC0 == 0x80 {
        n -= 1;
    }
    n
}

/// The body fields `format = "syslog"` reads: the serde reference reader
/// (`view` is the fast one, and falls back to this).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SyslogView<'a> {
    #[serde(borrow, default)]
    syslog: Option<SyslogPart<'a>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SyslogPart<'a> {
    #[serde(default)]
    facility: Option<u8>,
    #[serde(default)]
    severity: Option<u8>,
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    procid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msgid: Option<Cow<'a, str>>,
    /// SD-ID → param → value, borrowed from the body (sorted, as the canonical map is).
    #[serde(borrow, default)]
    structured_data: SdMap<'a>,
}

type SdMap<'a> = BTreeMap<Cow<'a, str>, BTreeMap<Cow<'a, str>, SdValue<'a>>>;

/// An SD param's values: one, or those of a param given more than once
/// (an array in the canonical event, written as the param repeated).
/// Borrowed when plain JSON strings, otherwise the text of the scalar
/// (numbers, booleans) so nothing is refused.
#[derive(Debug)]
pub(super) struct SdValue<'a>(Vec<Cow<'a, str>>);

/// One scalar SD param value (see [`SdValue`]).
struct SdScalar<'a>(Cow<'a, str>);

/// What [`SdScalar`] and [`SdValue`] read of a scalar.
struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ScalarVisitor<'a> {
    type Value = Cow<'a, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SdScalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(std::marker::PhantomData))
            .map(SdScalar)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SdValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = SdValue<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean, or an array of them")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(SdValue(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ScalarVisitor(self.0).visit_str(v).map(|v| SdValue(vec![v]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                ScalarVisitor(self.0).visit_u64(v).map(|v| SdValue(vec![v]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                ScalarVisitor(self.0).visit_i64(v).map(|v| SdValue(vec![v]))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                ScalarVisitor(self.0).visit_f64(v).map(|v| SdValue(vec![v]))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                ScalarVisitor(self.0)
                    .visit_bool(v)
                    .map(|v| SdValue(vec![v]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(SdScalar(v)) = seq.next_element()? {
                    values.push(v);
                }
                Ok(SdValue(values))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Encoder {
    /// Appends the RFC 5424 message for `ev` to `out`.
    pub(super) fn encode(
        &self,
        ev: &BatchEvent,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Decoded {
        self.encode_with(ev, out, scratch, BodyReader::Hint)
    }

    /// [`Encoder::encode`] with a chosen body reader; says which one ran.
    pub(super) fn encode_with(
        &self,
        ev: &BatchEvent,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        reader: BodyReader,
    ) -> Decoded {
        let why = match (self.format, reader) {
            (Format::Json, _) => {
                self.encode_json(ev, out);
                return Decoded::Unread;
            }
            (Format::Syslog, BodyReader::Serde) => None,
            (Format::Syslog, BodyReader::Hint)
                if !ev.hint().is_empty() && self.encode_hinted(ev, out) =>
            {
                return Decoded::Hinted;
            }
            (Format::Syslog, BodyReader::Hint | BodyReader::Scanner) => {
                match view::scan(ev.body(), scratch) {
                    Ok(v) => {
                        self.encode_fast(ev, &v, scratch, out);
                        return Decoded::Fast;
                    }
                    Err(why) => Some(why),
                }
            }
        };
        self.encode_reference(ev, out);
        Decoded::Reference(why)
    }

    /// `format = "syslog"` through the serde reader.
    pub(super) fn encode_reference(&self, ev: &BatchEvent, out: &mut Vec<u8>) {
        // A body that does not parse is sent as in `json` format: nothing is lost.
        match serde_json::from_slice::<SyslogView<'_>>(ev.body()) {
            Ok(v) => self.encode_syslog(ev, &v, out),
            Err(_) => self.encode_json(ev, out),
        }
    }

    /// `format = "syslog"` from what the scanner read: the same output as
    /// `encode_syslog` with the serde view of the same body.
    pub(super) fn encode_fast(
        &self,
        ev: &BatchEvent,
        v: &view::View<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) {
        let facility = v.facility.filter(|f| *f <= 23).unwrap_or(self.facility);
        let severity = v
            .severity
            .filter(|s| *s <= 7)
            .unwrap_or_else(|| ev.meta.severity.syslog_code());
        let pri = u16::from(facility) * 8 + u16::from(severity);
        push_pri_timestamp(out, pri, ev);
        let text = &mut scratch.text;
        let host = match v.hostname {
            Some(h) => h.resolve(text),
            None => &self.hostname,
        };
        push_header_field(out, host, MAX_HOSTNAME);
        out.push(b' ');
        let app = match v.app_name {
            Some(a) => a.resolve(text),
            None => &self.app_name,
        };
        push_header_field(out, app, MAX_APP_NAME);
        out.push(b' ');
        push_header_field(out, v.procid.map_or("-", |p| p.resolve(text)), MAX_PROCID);
        out.push(b' ');
        push_header_field(out, v.msgid.map_or("-", |m| m.resolve(text)), MAX_MSGID);
        out.push(b' ');
        if scratch.sd.is_empty() {
            out.push(b'-');
        } else {
            out.extend_from_slice(&scratch.sd);
        }
        match v.message.filter(|_| v.from_syslog) {
            Some(m) if !m.is_empty() => {
                out.push(b' ');
                m.write_to(out);
            }
            Some(_) => {}
            // Not from syslog (its `message` one field of many), or a JSON
            // MSG read into fields: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
    }

    /// `format = "syslog"` from the record's syslog hint, without reading
    /// the body: the same output as `encode_fast` (property-tested).
    /// False, with nothing written, for a hint that does not parse.
    pub(super) fn encode_hinted(&self, ev: &BatchEvent, out: &mut Vec<u8>) -> bool {
        let Some(h) = SyslogHint::parse(ev.hint(), ev.body()) else {
            return false;
        };
        let pri = u16::from(h.facility) * 8 + u16::from(h.severity);
        match h.header {
            // the line as it came, MSG and all
            HintHeader::Original(line) => {
                out.extend_from_slice(line);
                return true;
            }
            // a body without syslog fields: what `encode_fast` writes for
            // one is the `json` format's message
            HintHeader::NotSyslog => {
                self.encode_json(ev, out);
                return true;
            }
            // the whole rest of the header in one copy
            HintHeader::Rendered(run) => {
                push_pri_timestamp(out, pri, ev);
                out.extend_from_slice(run);
            }
            HintHeader::Fields {
                hostname,
                app_name,
                procid,
                msgid,
                structured_data,
            } => {
                push_pri_timestamp(out, pri, ev);
                match hostname {
                    Some(v) => out.extend_from_slice(v),
                    None => push_header_field(out, &self.hostname, MAX_HOSTNAME),
                }
                out.push(b' ');
                match app_name {
                    Some(v) => out.extend_from_slice(v),
                    None => push_header_field(out, &self.app_name, MAX_APP_NAME),
                }
                out.push(b' ');
                out.extend_from_slice(procid.unwrap_or(b"-"));
                out.push(b' ');
                out.extend_from_slice(msgid.unwrap_or(b"-"));
                out.push(b' ');
                if structured_data.is_empty() {
                    out.push(b'-');
                } else {
                    out.extend_from_slice(structured_data);
                }
            }
        }
        match h.message {
            Some(HintMessage::Body(m)) if !m.is_empty() => {
                out.push(b' ');
                JsonStr::from_contents(m).write_to(out);
            }
            Some(HintMessage::Raw(m)) => push_msg(out, m),
            Some(HintMessage::Body(_)) => {}
            // Not from syslog: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
        true
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - JSON`.
    pub(super) fn encode_json(&self, ev: &BatchEvent, out: &mut Vec<u8>) {
        let pri = u16::from(self.facility) * 8 + u16::from(ev.meta.severity.syslog_code());
        self.header(out, pri, ev, &self.hostname, &self.app_name, "-", "-");
        out.extend_from_slice(b" -");
        push_msg(out, ev.body());
    }

    pub(super) fn encode_syslog(&self, ev: &BatchEvent, v: &SyslogView<'_>, out: &mut Vec<u8>) {
        let empty = SyslogPart::default();
        let s = v.syslog.as_ref().unwrap_or(&empty);
        let facility = s.facility.filter(|f| *f <= 23).unwrap_or(self.facility);
        let severity = s
            .severity
            .filter(|s| *s <= 7)
            .unwrap_or_else(|| ev.meta.severity.syslog_code());
        let pri = u16::from(facility) * 8 + u16::from(severity);
        let host = s.hostname.as_deref().unwrap_or(&self.hostname);
        let app = s.app_name.as_deref().unwrap_or(&self.app_name);
        let procid = s.procid.as_deref().unwrap_or("-");
        let msgid = s.msgid.as_deref().unwrap_or("-");
        self.header(out, pri, ev, host, app, procid, msgid);
        out.push(b' ');
        write_structured_data(&s.structured_data, out);
        match v.message.as_ref().filter(|_| v.syslog.is_some()) {
            Some(m) => push_msg(out, m.as_bytes()),
            // Not from syslog (its `message` one field of many), or a JSON
            // MSG read into fields: the event itself is the message.
            None => push_msg(out, ev.body()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn header(
        &self,
        out: &mut Vec<u8>,
        pri: u16,
        ev: &BatchEvent,
        host: &str,
        app: &str,
        procid: &str,
        msgid: &str,
    ) {
        push_pri_timestamp(out, pri, ev);
        push_header_field(out, host, MAX_HOSTNAME);
        out.push(b' ');
        push_header_field(out, app, MAX_APP_NAME);
        out.push(b' ');
        push_header_field(out, procid, MAX_PROCID);
        out.push(b' ');
        push_header_field(out, msgid, MAX_MSGID);
    }
}

/// `<PRI>1 TIMESTAMP ` (VERSION 1).
pub(super) fn push_pri_timestamp(out: &mut Vec<u8>, pri: u16, ev: &BatchEvent) {
    out.push(b'<');
    json_writer::uint(out, pri.into());
    out.extend_from_slice(b">1 ");
    push_rfc3339_millis(out, ev.meta.timestamp_ms);
    out.push(b' ');
}

/// `[SP MSG]`: nothing for an empty message.
pub(super) fn push_msg(out: &mut Vec<u8>, msg: &[u8]) {
    if !msg.is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg);
    }
}

/// STRUCTURED-DATA from the canonical `syslog.structured_data` map, or `-`.
pub(super) fn write_structured_data(sd: &SdMap<'_>, out: &mut Vec<u8>) {
    if sd.is_empty() {
        out.push(b'-');
        return;
    }
    for (id, params) in sd {
        out.push(b'[');
        push_sd_name(out, id);
        // a param given more than once: each value, in order
        for (name, value) in params
            .iter()
            .flat_map(|(n, v)| v.0.iter().map(move |v| (n, v)))
        {
            out.push(b' ');
            push_sd_name(out, name);
            out.extend_from_slice(b"=\"");
            push_sd_value(out, value);
            out.push(b'"');
        }
        out.push(b']');
    }
}

/// This machine's host name (Linux), or `-` when unknown.
pub(super) fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, Severity, SyslogFields};
    use serde_json::{json, Value};

    fn encoder(format: Format) -> Encoder {
        Encoder {
            format,
            facility: 16,
            hostname: "relay".into(),
            app_name: "siem-relay".into(),
            max_udp_bytes: 2048,
        }
    }

    fn batch_event(ev: &Event) -> BatchEvent {
        let enc = ev.encode();
        BatchEvent::new(1, enc.meta, enc.into_body().into())
    }

    fn encode(e: &Encoder, ev: &BatchEvent) -> String {
        let mut out = Vec::new();
        e.encode(ev, &mut out, &mut Scratch::default());
        String::from_utf8(out).expect("utf8")
    }

    /// The message through the scanner (with its fallback) and through the
    /// serde reference alone, and which reader the first one used.
    fn both_readers(e: &Encoder, ev: &BatchEvent) -> (Vec<u8>, Vec<u8>, Decoded) {
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        let used = e.encode_with(ev, &mut fast, &mut scratch, BodyReader::Scanner);
        let forced = e.encode_with(ev, &mut reference, &mut scratch, BodyReader::Serde);
        assert_eq!(forced, Decoded::Reference(None));
        (fast, reference, used)
    }

    /// The record ingest writes for `line` (with its syslog hint).
    fn record(line: &str) -> crate::event::EncodedEvent {
        let origin = crate::parse::Origin {
            listener: "tcp_in",
            address: None,
            syslog_hint: true,
        };
        crate::parse::syslog_line_to_record(
            line.as_bytes(),
            1_790_000_000_000,
            chrono_tz::Tz::UTC,
            &origin,
        )
    }

    /// What the relay writes for `line` (as ingest records it, with its
    /// syslog hint), what it must write, and which reader the first one
    /// used. What it must write: with a kind 3 hint the line itself; with a
    /// JSON MSG kept as it came, what the body says with that MSG as its
    /// `message`; else what it writes from the body alone.
    fn hinted_and_expected(e: &Encoder, line: &str) -> (Vec<u8>, Vec<u8>, Decoded, bool) {
        let origin = crate::parse::Origin {
            listener: "tcp_in",
            address: Some("10.0.0.1:514"),
            syslog_hint: true,
        };
        let rec = crate::parse::syslog_line_to_record(
            line.as_bytes(),
            1_790_000_000_000,
            chrono_tz::Tz::UTC,
            &origin,
        );
        let has_hint = !rec.hint().is_empty();
        let with = BatchEvent::with_hint(1, rec.meta, rec.body(), rec.hint());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        let used = e.encode_with(&with, &mut a, &mut scratch, BodyReader::Hint);
        let hint = SyslogHint::parse(rec.hint(), rec.body());
        let line = line.trim_end().as_bytes();
        let body = match hint {
            Some(SyslogHint {
                header: HintHeader::Original(original),
                ..
            }) => {
                // the line, but for a BOM before its MSG
                let text = std::str::from_utf8(line).unwrap();
                let msg = crate::parse::rfc5424::parse(text).unwrap().msg;
                let head = &text[..text.len() - msg.len()];
                let head = head.trim_end().strip_suffix('\u{feff}').unwrap_or(head);
                let sent = [head, msg].concat();
                assert_eq!(original, sent.as_bytes(), "kind 3 holds the line");
                return (a, sent.into_bytes(), used, has_hint);
            }
            Some(SyslogHint {
                message: Some(HintMessage::Raw(raw)),
                ..
            }) => {
                assert!(line.ends_with(raw), "a raw MSG is the line's own");
                let mut v: Value = serde_json::from_slice(rec.body()).unwrap();
                v["message"] = std::str::from_utf8(raw).unwrap().into();
                serde_json::to_vec(&v).unwrap()
            }
            _ => rec.body().to_vec(),
        };
        let without = BatchEvent::new(1, rec.meta, body.into());
        e.encode_with(&without, &mut b, &mut scratch, BodyReader::Serde);
        (a, b, used, has_hint)
    }

    #[test]
    fn the_syslog_hint_writes_the_line_or_what_the_body_says() {
        let e = encoder(Format::Syslog);
        let mut kinds = std::collections::BTreeSet::new();
        for line in [
            r#"<86>1 2026-11-23T10:00:00.123456Z host app 4242 AUTH [b@1 seq="1" x="a\"b\]c\\d"][a@1] {"seq":1,"user":"alice"}"#,
            r#"<13>1 - - - - - - plain "text" with \ and é"#,
            r#"<13>1 - h a 0042 m [x@1 a=""] {"message":"from \"json\"","k":1}"#,
            r#"<13>1 - h a p m - {"message":""}"#,
            "<13>1 - h a p m -",
            // the sender's offset and microseconds, a JSON MSG as written
            "<13>1 - h a p m - \u{feff}with a BOM",
            "<13>1 - h a p m - \u{feff}  with a BOM and spaces",
            r#"<134>1 2026-12-06T10:00:00.123456+02:00 h1 app 123 ID47 [ex@32473 a="1"] {"user":"bob",  "n":1}"#,
            // RFC 3164 lines are hinted too (no version, MSGID or SD)
            "<38>Nov 23 14:56:08 web-01 sshd[0042]: Accepted password for alice",
            r#"<86>Sep 21 14:00:00 idp auth: {"message":"from \"json\"","k":1}"#,
        ] {
            let (hinted, body_only, used, has_hint) = hinted_and_expected(&e, line);
            assert!(has_hint, "{line}");
            assert_eq!(used, Decoded::Hinted, "{line}");
            let rec = record(line);
            kinds.insert(rec.hint()[0]);
            assert_eq!(
                String::from_utf8_lossy(&hinted),
                String::from_utf8_lossy(&body_only),
                "{line}"
            );
        }
        // every hint kind: fields one by one (no hostname), rendered (RFC
        // 3164), the line as it came
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    /// The generated lines must mostly carry hints, or the property test
    /// below proves little.
    #[test]
    fn generated_lines_mostly_carry_a_syslog_hint() {
        let rfc5424 = hinted_of_500(crate::parse::direct::tests::line());
        assert!(rfc5424 > 250, "{rfc5424} of 500 RFC 5424 lines with a hint");
        let rfc3164 = hinted_of_500(crate::parse::rfc3164::tests::line());
        assert!(rfc3164 > 200, "{rfc3164} of 500 RFC 3164 lines with a hint");
    }

    /// How many of 500 lines of `lines` carried a hint; each line's output
    /// must be the same with and without it.
    fn hinted_of_500(lines: impl proptest::strategy::Strategy<Value = String>) -> usize {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let e = encoder(Format::Syslog);
        let mut hinted = 0;
        for _ in 0..500 {
            let line = lines.new_tree(&mut runner).unwrap().current();
            let (a, b, used, has_hint) = hinted_and_expected(&e, &line);
            assert_eq!(a, b, "{line}");
            if has_hint {
                assert_eq!(used, Decoded::Hinted, "{line}");
                hinted += 1;
            }
        }
        hinted
    }

    /// serde_json's RawValue token as an SD param name or a metadata key:
    /// `Event::decode` cannot read such a body back (serde_json reads an
    /// object with that first key as a raw value), but the destination's
    /// views are no `Value`s, so every reader writes the syslog message.
    #[test]
    fn serde_json_s_raw_value_token_is_an_ordinary_key_here() {
        let e = encoder(Format::Syslog);
        let line = r#"<13>1 - h app - - [a $serde_json::private::RawValue="<x"] {"metadata":{"x":{"$serde_json::private::RawValue":"y"}},"message":"m"}"#;
        let rec = record(line);
        assert!(crate::event::Event::decode(rec.body()).is_err());
        let ev = BatchEvent::new(1, rec.meta, rec.body().to_vec().into());
        let (fast, reference, used) = both_readers(&e, &ev);
        assert_eq!(used, Decoded::Fast);
        assert_eq!(fast, reference);
        let out = String::from_utf8(reference).unwrap();
        assert!(
            out.contains(r#"[a $serde_json::private::RawValue="<x"] m"#),
            "{out}"
        );
    }

    #[test]
    fn a_hint_that_does_not_parse_falls_back_to_the_body() {
        let e = encoder(Format::Syslog);
        let origin = crate::parse::Origin {
            listener: "tcp_in",
            address: None,
            syslog_hint: true,
        };
        let rec = crate::parse::syslog_line_to_record(
            br#"<13>1 - h a p m [x@1 a="1"] hello"#,
            1_790_000_000_000,
            chrono_tz::Tz::UTC,
            &origin,
        );
        let mut hint = rec.hint().to_vec();
        hint[0] = 0xFF;
        let ev = BatchEvent::with_hint(1, rec.meta, rec.body(), &hint);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let used = e.encode_with(&ev, &mut a, &mut Scratch::default(), BodyReader::Hint);
        assert_eq!(used, Decoded::Fast);
        e.encode_with(&ev, &mut b, &mut Scratch::default(), BodyReader::Serde);
        assert_eq!(a, b);
        assert!(a.ends_with(br#" h a p m [x@1 a="1"] hello"#));
    }

    fn raw_event(body: &[u8]) -> BatchEvent {
        let mut ev = Event::new("SYSTEM", None, Severity::Notice);
        ev.set_timestamp_ms(1_700_000_000_123);
        let mut be = batch_event(&ev);
        be.set_body(bytes::Bytes::copy_from_slice(body));
        be
    }

    /// Bodies the canonical writer never produces: the same bytes out of
    /// both readers, and the scanner hands each to serde (or reads it, for
    /// the `Fast` ones).
    #[test]
    fn unusual_bodies_encode_like_the_reference() {
        use Fallback::*;
        let fast = Decoded::Fast;
        let serde = |why| Decoded::Reference(Some(why));
        let cases: &[(&str, Decoded)] = &[
            (r#"{}"#, fast),
            (r#"{"syslog":{}}"#, fast),
            (
                r#"{"syslog":{"hostname":"h","structured_data":{}},"message":""}"#,
                fast,
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{}}},"message":"m"}"#,
                fast,
            ),
            (r#"{"message":"a\ud83d\ude00b\u00e9\/\u0007\"\\"}"#, fast),
            (
                r#"{"message":"m","syslog":{"msgid":"i\"d","hostname":"h\u00e9 st","facility":23,"severity":7}}"#,
                fast,
            ),
            (r#"{"syslog":{"facility":24,"severity":8}}"#, fast),
            (r#"{"syslog":{"facility":0,"severity":255}}"#, fast),
            (
                r#"{"syslog":{"structured_data":{"a":{"b":true,"f":false,"n":18446744073709551615,"z":0}}}}"#,
                fast,
            ),
            (
                r#"{"syslog":{"version":1,"version":2},"message":"m"}"#,
                fast,
            ),
            (r#"{"metadata":{"k":1,"k":2},"message":"m"}"#, fast),
            (
                r#"{"metadata":{"n":1e999,"b":-0.5E+3,"c":[],"d":{},"e":[null,true]},"message":"m"}"#,
                fast,
            ),
            (r#" {"message":"m"}"#, serde(NotObject)),
            (r#"{"message":"m"} "#, serde(Syntax)),
            (
                r#"{"message" : "m", "syslog" : {"hostname" : "h"}}"#,
                serde(Syntax),
            ),
            ("{\n\"message\":\"m\"\n}", serde(Syntax)),
            (r#"{"message":"m"}x"#, serde(Syntax)),
            (r#"{"message":"m",}"#, serde(Syntax)),
            (r#"{"syslog":{"hostname":"h""#, serde(Syntax)),
            (r#"{"message":"m"#, serde(Syntax)),
            (r#"{"message":"\ud800"}"#, serde(Syntax)),
            (r#"{"message":"\udc00x"}"#, serde(Syntax)),
            (r#"{"metadata":"\ud800","message":"m"}"#, serde(Syntax)),
            (r#"{"message":"\x"}"#, serde(Syntax)),
            (r#"{"message":"\u12"}"#, serde(Syntax)),
            ("{\"message\":\"a\tb\"}", serde(Syntax)),
            (r#"{"metadata":{"n":01},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":{"n":+1},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":{"n":.5},"message":"m"}"#, serde(Syntax)),
            (r#"{"metadata":tru,"message":"m"}"#, serde(Syntax)),
            (r#"[{"hostname":"h"},"m"]"#, serde(NotObject)),
            (r#""text""#, serde(NotObject)),
            (r#"null"#, serde(NotObject)),
            ("", serde(NotObject)),
            (r#"{"message":"a","message":"b"}"#, serde(DuplicateField)),
            (r#"{"syslog":{},"syslog":{}}"#, serde(DuplicateField)),
            (
                r#"{"syslog":{"procid":"1","procid":"2"}}"#,
                serde(DuplicateField),
            ),
            (
                r#"{"syslog":{"facility":1,"facility":2}}"#,
                serde(DuplicateField),
            ),
            (
                r#"{"syslog":{"structured_data":{},"structured_data":{}}}"#,
                serde(DuplicateField),
            ),
            (r#"{"mess\u0061ge":"m"}"#, serde(EscapedKey)),
            (r#"{"syslog":{"h\u006fstname":"x"}}"#, serde(EscapedKey)),
            (r#"{"message":null}"#, serde(Unsupported)),
            (r#"{"message":5}"#, serde(Unsupported)),
            (r#"{"message":["m"]}"#, serde(Unsupported)),
            (r#"{"syslog":null,"message":"m"}"#, serde(NotObject)),
            (r#"{"syslog":["h"],"message":"m"}"#, serde(NotObject)),
            (r#"{"syslog":{"facility":300}}"#, serde(Unsupported)),
            (r#"{"syslog":{"facility":-1}}"#, serde(Unsupported)),
            (r#"{"syslog":{"severity":2.0}}"#, serde(Unsupported)),
            (r#"{"syslog":{"severity":null}}"#, serde(Unsupported)),
            (r#"{"syslog":{"hostname":7}}"#, serde(Unsupported)),
            (
                r#"{"syslog":{"hostname":null},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":1.5,"m":-3,"z":0}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":1e2}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":-0}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":18446744073709551616}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":null}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"n":{}}}}}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":"v"}}}"#,
                serde(Unsupported),
            ),
            (r#"{"syslog":{"structured_data":[]}}"#, serde(Unsupported)),
            (
                r#"{"syslog":{"structured_data":null},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"b":{"x":"1"},"a":{"y":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"p":"1","p":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"x":"1"},"a":{"y":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"a":{"q":"1","p":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"x":{"a#":"1","a\"b":"2"}}},"message":"m"}"#,
                serde(Unsorted),
            ),
            (
                r#"{"syslog":{"structured_data":{"x":{"a\"b":"1","a#":"2"}}},"message":"m"}"#,
                fast,
            ),
            // a param given more than once: repeated, in order
            (
                r#"{"syslog":{"structured_data":{"origin":{"ip":["10.0.0.1","10.0.0.2"],"software":"x"}}},"message":"m"}"#,
                fast,
            ),
            (
                r#"{"syslog":{"structured_data":{"origin":{"ip":[]}}},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"origin":{"ip":[1,"a"]}}},"message":"m"}"#,
                serde(Unsupported),
            ),
            (
                r#"{"syslog":{"structured_data":{"origin":{"ip":["a" "b"]}}},"message":"m"}"#,
                serde(Syntax),
            ),
        ];
        let e = encoder(Format::Syslog);
        for (body, path) in cases {
            let (fast, reference, used) = both_readers(&e, &raw_event(body.as_bytes()));
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&reference),
                "{body}"
            );
            assert_eq!(fast, reference, "{body}");
            assert_eq!(used, *path, "{body}");
        }
        let deep = format!(
            "{{\"metadata\":{}{},\"message\":\"m\"}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let invalid = b"{\"metadata\":\"\xff\",\"message\":\"m\"}";
        for (body, why) in [(deep.as_bytes(), TooDeep), (&invalid[..], NotUtf8)] {
            let (fast, reference, used) = both_readers(&e, &raw_event(body));
            assert_eq!(fast, reference);
            assert_eq!(used, serde(why));
        }
    }

    #[test]
    fn relayed_syslog_takes_the_fast_path() {
        use crate::parse::{syslog_line_to_event, Origin};
        let origin = Origin {
            listener: "t",
            address: Some("10.1.2.3:514"),
            syslog_hint: true,
        };
        let e = encoder(Format::Syslog);
        for line in [
            &br#"<86>1 2026-11-23T10:00:00.000000Z bench-host-01 siem-bench 4242 AUTH [bench@32473 seq="1" ts_ns="2"][origin@32473 ip="10.1.2.3" software="e2e"] {"seq":1,"ts_ns":2,"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}"#[..],
            br#"<34>1 2026-11-23T14:56:08.123Z web-01 sshd 4242 LOGIN [meta@32473 user="al\"i\\ce" m="a\]b"][a x="1"] Accepted password for alice"#,
            b"<38>Nov 23 14:56:08 web-01 sshd[4242]: Accepted password for alice",
            b"<13>1 - - - - - -",
            b"not syslog at all \x01\xff",
        ] {
            let ev = syslog_line_to_event(line, 1_790_000_000_000, chrono_tz::Tz::UTC, &origin);
            let (fast, reference, used) = both_readers(&e, &batch_event(&ev));
            assert_eq!(fast, reference);
            assert_eq!(used, Decoded::Fast, "{}", String::from_utf8_lossy(line));
        }
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        let ev = syslog_line_to_event(b"<13>1 - h a - - - m", 0, chrono_tz::Tz::UTC, &origin);
        assert_eq!(
            e.encode(&batch_event(&ev), &mut out, &mut scratch),
            Decoded::Fast
        );
        assert_eq!(
            encoder(Format::Json).encode(&batch_event(&ev), &mut out, &mut scratch),
            Decoded::Unread
        );
    }

    /// Differential tests: random canonical events encode to the same bytes
    /// through the scanner and through the serde reference, the scanner (not
    /// its fallback) reads every body it is meant to, and damaged bodies
    /// still come out as the reference makes them.
    mod scanner_matches_serde {
        use super::*;
        use proptest::option::of;
        use proptest::prelude::*;
        use serde_json::Map;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "(?s).{0,12}",
                "[ -~]{0,40}",
                "[\"\\\\\\]=\\x00-\\x1f\\x7f\u{80}\u{e9}\u{2028}\u{fffd}\u{1F600} a]{0,10}",
                Just(String::new()),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            crate::event::tests::encode_matches_serde::json_value_of(text)
        }

        /// SD param values: mostly strings, as syslog input gives them.
        fn sd_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                8 => text().prop_map(Value::String),
                1 => any::<bool>().prop_map(Value::Bool),
                1 => any::<u64>().prop_map(Value::from),
                1 => (0u64..1000).prop_map(Value::from),
                1 => any::<i64>().prop_map(Value::from),
                1 => any::<f64>().prop_map(Value::from),
                1 => Just(Value::Null),
                // a param given more than once
                2 => prop::collection::vec(text().prop_map(Value::String), 0..4)
                    .prop_map(Value::Array),
                1 => prop::collection::vec(any::<bool>().prop_map(Value::Bool), 1..3)
                    .prop_map(Value::Array),
            ]
        }

        fn structured_data() -> impl Strategy<Value = Map<String, Value>> {
            let element = prop_oneof![
                9 => prop::collection::vec((text(), sd_value()), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                1 => json_value(),
            ];
            prop::collection::vec((text(), element), 0..4).prop_map(|kv| kv.into_iter().collect())
        }

        fn syslog() -> impl Strategy<Value = SyslogFields> {
            (
                (
                    of(prop_oneof![0u8..24, 20u8..=30, any::<u8>()]),
                    of(prop_oneof![0u8..8, 5u8..=12, any::<u8>()]),
                ),
                of(any::<u32>()),
                (of(text()), of(text()), of(text()), of(text())),
                structured_data(),
            )
                .prop_map(|((facility, severity), version, (h, a, p, m), sd)| {
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
                (
                    prop::sample::select(Severity::ALL.to_vec()),
                    -100_000_000_000_000i64..300_000_000_000_000,
                    of(text()),
                    of(text()),
                ),
                (
                    of(syslog()),
                    of(text()),
                    of(prop::collection::vec((text(), json_value()), 0..4)),
                    any::<bool>(),
                ),
            )
                .prop_map(
                    |((severity, ms, tenant, action), (syslog, message, metadata, parse_error))| {
                        let mut ev = Event::new("SECURITY", action, severity);
                        ev.set_timestamp_ms(ms);
                        ev.tenant_id = tenant;
                        ev.syslog = syslog;
                        ev.message = message;
                        ev.metadata = metadata.map(|kv| kv.into_iter().collect());
                        ev.parse_error = parse_error;
                        ev.source = Some(crate::event::SourceInfo {
                            listener: "l".into(),
                            address: Some("10.0.0.1:514".into()),
                        });
                        ev
                    },
                )
        }

        /// Whether the scanner reads this event's body itself: SD elements
        /// are objects of strings, booleans and unsigned integers.
        fn scanner_reads(ev: &Event) -> bool {
            ev.syslog.as_ref().is_none_or(|s| {
                s.structured_data.values().all(|el| match el {
                    Value::Object(params) => params.values().all(|v| match v {
                        Value::String(_) | Value::Bool(_) => true,
                        Value::Number(n) => n.is_u64(),
                        // a param given more than once: strings only
                        Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
                        _ => false,
                    }),
                    _ => false,
                })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn same_bytes_as_the_serde_reader(ev in event()) {
                let be = batch_event(&ev);
                let e = encoder(Format::Syslog);
                let (fast, reference, used) = both_readers(&e, &be);
                prop_assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&reference)
                );
                prop_assert_eq!(&fast, &reference);
                if scanner_reads(&ev) {
                    prop_assert_eq!(used, Decoded::Fast);
                } else {
                    prop_assert!(matches!(used, Decoded::Reference(Some(_))), "{:?}", used);
                }
            }

            #[test]
            fn damaged_bodies_encode_like_the_reference(
                ev in event(),
                at in any::<prop::sample::Index>(),
                damage in prop::sample::select(vec![
                    &b""[..], b" ", b"\n", b",", b"}", b"]", b"\"", b"\\", b"\xff", b"0", b"{",
                ]),
                cut in any::<bool>(),
            ) {
                let be = batch_event(&ev);
                let i = at.index(be.body().len() + 1);
                let mut body = be.body()[..i].to_vec();
                body.extend_from_slice(damage);
                if !cut {
                    body.extend_from_slice(&be.body()[i..]);
                }
                let (fast, reference, _) =
                    both_readers(&encoder(Format::Syslog), &raw_event(&body));
                prop_assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&reference)
                );
                prop_assert_eq!(fast, reference);
            }

            /// A JSON object from the HTTP source carries the kind 4 hint,
            /// and the destination writes from it what both body readers
            /// write from its body.
            #[test]
            fn an_http_event_s_hint_gives_the_bytes_its_body_gives(
                object in crate::parse::direct::tests::json_object(),
            ) {
                let origin = crate::parse::Origin {
                    listener: "http_in",
                    address: Some("10.0.0.1:40000"),
                    syslog_hint: true,
                };
                let Some(rec) = crate::parse::direct::encode_json_text(
                    object.as_bytes(),
                    &mut Vec::new(),
                    1_790_000_000_000,
                    &origin,
                ) else {
                    return Ok(());
                };
                prop_assert_eq!(rec.hint(), &[crate::event::syslog_hint::KIND_NOT_SYSLOG][..]);
                let e = encoder(Format::Syslog);
                let mut scratch = Scratch::default();
                let with = BatchEvent::with_hint(1, rec.meta, rec.body(), rec.hint());
                let mut hinted = Vec::new();
                let used = e.encode_with(&with, &mut hinted, &mut scratch, BodyReader::Hint);
                prop_assert_eq!(used, Decoded::Hinted);
                let without = BatchEvent::new(1, rec.meta, rec.body().to_vec().into());
                for reader in [BodyReader::Scanner, BodyReader::Serde] {
                    let mut from_body = Vec::new();
                    e.encode_with(&without, &mut from_body, &mut scratch, reader);
                    prop_assert_eq!(
                        String::from_utf8_lossy(&hinted),
                        String::from_utf8_lossy(&from_body)
                    );
                }
            }

            #[test]
            fn the_syslog_hint_gives_the_line_or_the_bytes_the_body_gives(
                line in crate::parse::direct::tests::line(),
            ) {
                let (hinted, body_only, used, has_hint) =
                    hinted_and_expected(&encoder(Format::Syslog), &line);
                prop_assert_eq!(
                    String::from_utf8_lossy(&hinted),
                    String::from_utf8_lossy(&body_only)
                );
                prop_assert_eq!(hinted, body_only);
                prop_assert_eq!(used == Decoded::Hinted, has_hint);
            }
        }
    }

    #[test]
    fn json_format_splices_the_body() {
        let mut ev = Event::new("SECURITY", Some("user.login".into()), Severity::Warning);
        ev.set_timestamp_ms(1_700_000_000_123);
        let be = batch_event(&ev);
        let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
        // local0 (16) * 8 + warning (4) = 132
        assert_eq!(
            encode(&encoder(Format::Json), &be),
            format!("<132>1 2023-11-14T22:13:20.123Z relay siem-relay - - - {body}")
        );
    }

    /// `format = "json"`: the relay writes a message of its own about the
    /// event, so its header is the destination's (facility, hostname,
    /// app name) for syslog events too; their own facility and host stay
    /// in the MSG's `syslog` object.
    #[test]
    fn json_format_header_is_the_destinations_for_syslog_events_too() {
        let mut ev = Event::new("AUTHENTICATION", None, Severity::Warning);
        ev.set_timestamp_ms(1_700_000_000_123);
        ev.syslog = Some(SyslogFields {
            facility: Some(4),
            severity: Some(4),
            hostname: Some("fw-1".into()),
            ..Default::default()
        });
        let be = batch_event(&ev);
        let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
        assert!(body.contains(r#""facility":4"#), "{body}");
        assert_eq!(
            encode(&encoder(Format::Json), &be),
            format!("<132>1 2023-11-14T22:13:20.123Z relay siem-relay - - - {body}")
        );
    }

    #[test]
    fn syslog_format_rebuilds_fields_and_escapes_sd() {
        let mut ev = Event::new("SYSTEM", None, Severity::Info);
        ev.set_timestamp_ms(0);
        let mut sd = serde_json::Map::new();
        sd.insert(
            "exampleSDID@32473".into(),
            json!({"iut": "3", "eventSource": "Ap\"p]li\\cation", "n": 5}),
        );
        ev.syslog = Some(SyslogFields {
            facility: Some(4),
            severity: Some(2),
            version: Some(1),
            hostname: Some("mymachine.example.com".into()),
            app_name: Some("su".into()),
            procid: Some("123".into()),
            msgid: Some("ID47".into()),
            structured_data: sd,
        });
        ev.message = Some("'su root' failed for lonvick on /dev/pts/8".into());
        assert_eq!(
            encode(&encoder(Format::Syslog), &batch_event(&ev)),
            "<34>1 1970-01-01T00:00:00.000Z mymachine.example.com su 123 ID47 \
             [exampleSDID@32473 eventSource=\"Ap\\\"p\\]li\\\\cation\" iut=\"3\" n=\"5\"] \
             'su root' failed for lonvick on /dev/pts/8"
        );
    }

    /// A param given more than once (an array in the event) goes out
    /// repeated, its values in order: only the last had been kept.
    #[test]
    fn syslog_format_repeats_a_param_given_more_than_once() {
        let line = r#"<13>1 2026-12-07T10:00:00Z h a p  m [origin ip="10.0.0.1" ip="10.0.0.2"] m"#;
        let rec = crate::parse::syslog_line_to_record(
            line.as_bytes(),
            0,
            chrono_tz::Tz::UTC,
            &crate::parse::Origin {
                listener: "t",
                address: None,
                syslog_hint: true,
            },
        );
        let ev = Event::decode(rec.body()).unwrap();
        assert_eq!(
            encode(&encoder(Format::Syslog), &batch_event(&ev)),
            "<13>1 2026-12-07T10:00:00.000Z h a p m [origin ip=\"10.0.0.1\" ip=\"10.0.0.2\"] m"
        );
    }

    #[test]
    fn syslog_format_without_syslog_fields_falls_back() {
        let mut ev = Event::new("ADMIN", None, Severity::Error);
        ev.set_timestamp_ms(0);
        let be = batch_event(&ev);
        let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
        assert_eq!(
            encode(&encoder(Format::Syslog), &be),
            format!("<131>1 1970-01-01T00:00:00.000Z relay siem-relay - - - {body}")
        );
        let mut garbage = be;
        garbage.set_body(bytes::Bytes::from_static(b"{oops"));
        assert!(encode(&encoder(Format::Syslog), &garbage).ends_with(" - - - {oops"));
        // an event from HTTP with a `message` among its fields: the whole
        // event is the MSG, not its `message` alone (nor nothing, when empty)
        for message in ["m1", ""] {
            let mut ev = Event::new("ADMIN", Some("a.b".into()), Severity::Error);
            ev.set_timestamp_ms(0);
            ev.message = Some(message.into());
            let be = batch_event(&ev);
            let body = std::str::from_utf8(be.body()).expect("utf8").to_string();
            let want = format!("<131>1 1970-01-01T00:00:00.000Z relay siem-relay - - - {body}");
            assert_eq!(encode(&encoder(Format::Syslog), &be), want, "fast path");
            let mut out = Vec::new();
            encoder(Format::Syslog).encode_reference(&be, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "reference");
        }
    }

    #[test]
    fn octet_counting_frame() {
        let mut out = Vec::new();
        frame_octet_counted("<13>1 - - - - - - h\u{e9}".as_bytes(), &mut out);
        assert_eq!(out, "21 <13>1 - - - - - - h\u{e9}".as_bytes());
        // every length around the in-place 3-digit case, after earlier frames
        for len in [0, 1, 9, 10, 99, 100, 101, 555, 999, 1000, 1001, 12345] {
            let msg = vec![b'x'; len];
            let mut out = b"7 earlier".to_vec();
            frame_octet_counted(&msg, &mut out);
            let mut want = b"7 earlier".to_vec();
            want.extend_from_slice(format!("{len} ").as_bytes());
            want.extend_from_slice(&msg);
            assert_eq!(out, want, "{len}");
        }
    }
    #[test]
    fn udp_truncation_respects_utf8() {
        let s = "ab\u{e9}\u{1F600}".as_bytes(); // 2 + 2 + 4 bytes
        assert_eq!(utf8_floor(s, 100), 8);
        assert_eq!(utf8_floor(s, 3), 2);
        assert_eq!(utf8_floor(s, 4), 4);
        assert_eq!(utf8_floor(s, 7), 4);
    }
}
