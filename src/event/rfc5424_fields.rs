//! How RFC 5424 header fields and STRUCTURED-DATA are written out: one
//! definition shared by the `syslog` destination, which rebuilds messages
//! from record bodies, and the [`syslog_hint`](super::syslog_hint) ingest
//! leaves in the record so the destination need not read the body.
//!
//! RFC 5424 §6 (<https://www.rfc-editor.org/rfc/rfc5424>): header fields
//! are PRINTUSASCII with length limits, SD-NAMEs exclude `=`, SP, `]` and
//! `"`, and a PARAM-VALUE escapes `"`, `\` and `]` (§6.3.3).

pub const MAX_HOSTNAME: usize = 255;
pub const MAX_APP_NAME: usize = 48;
pub const MAX_PROCID: usize = 128;
pub const MAX_MSGID: usize = 32;
pub const MAX_SD_NAME: usize = 32;

/// A header field: PRINTUSASCII only (others become `_`), at most `max`
/// characters, `-` (NILVALUE) when empty.
pub fn push_header_field(out: &mut Vec<u8>, s: &str, max: usize) {
    if s.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(s.chars().take(max).map(|c| {
        if ('!'..='~').contains(&c) {
            c as u8
        } else {
            b'_'
        }
    }));
}

/// An SD-ID or PARAM-NAME: PRINTUSASCII except `=`, SP, `]`, `"`; at most 32.
pub fn push_sd_name(out: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        out.push(b'_');
        return;
    }
    out.extend(s.chars().take(MAX_SD_NAME).map(|c| match c {
        '=' | ']' | '"' => b'_',
        c if ('!'..='~').contains(&c) => c as u8,
        _ => b'_',
    }));
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
pub fn push_sd_value(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_sanitised() {
        let mut out = Vec::new();
        push_header_field(&mut out, "a b\u{e9}c", 255);
        assert_eq!(out, b"a_b_c");
        out.clear();
        push_header_field(&mut out, "", 10);
        assert_eq!(out, b"-");
        out.clear();
        push_header_field(&mut out, &"x".repeat(40), MAX_MSGID);
        assert_eq!(out.len(), 32);
    }

    #[test]
    fn sd_names_and_values() {
        let mut out = Vec::new();
        push_sd_name(&mut out, "a=b c]\"d");
        assert_eq!(out, b"a_b_c__d");
        out.clear();
        push_sd_name(&mut out, "");
        assert_eq!(out, b"_");
        out.clear();
        push_sd_value(&mut out, "x\"y\\z]w");
        assert_eq!(out, b"x\\\"y\\\\z\\]w");
    }
}
