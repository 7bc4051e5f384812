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
    // the common case: already a valid field, copied whole
    if s.len() <= max && s.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        out.extend_from_slice(s.as_bytes());
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

/// Whether `b` may stand in an SD-NAME.
pub(crate) const fn sd_name_byte(b: u8) -> bool {
    matches!(b, b'!'..=b'~') && !matches!(b, b'=' | b']' | b'"')
}

/// An SD-ID or PARAM-NAME: PRINTUSASCII except `=`, SP, `]`, `"`; at most 32.
pub fn push_sd_name(out: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        out.push(b'_');
        return;
    }
    if s.len() <= MAX_SD_NAME && s.bytes().all(sd_name_byte) {
        out.extend_from_slice(s.as_bytes());
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
    let b = s.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'"', b'\\', b']', b) {
        out.extend_from_slice(&b[start..i]);
        out.push(b'\\');
        start = i;
    }
    out.extend_from_slice(&b[start..]);
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

    /// The copy-whole fast paths agree with the per-character rules.
    #[test]
    fn fast_paths_match_the_character_rules() {
        let slow_field = |s: &str, max: usize| -> Vec<u8> {
            if s.is_empty() {
                return b"-".to_vec();
            }
            s.chars()
                .take(max)
                .map(|c| {
                    if ('!'..='~').contains(&c) {
                        c as u8
                    } else {
                        b'_'
                    }
                })
                .collect()
        };
        let slow_name = |s: &str| -> Vec<u8> {
            if s.is_empty() {
                return b"_".to_vec();
            }
            s.chars()
                .take(MAX_SD_NAME)
                .map(|c| match c {
                    '=' | ']' | '"' => b'_',
                    c if ('!'..='~').contains(&c) => c as u8,
                    _ => b'_',
                })
                .collect()
        };
        let slow_value = |s: &str| -> Vec<u8> {
            let mut o = Vec::new();
            for b in s.bytes() {
                if matches!(b, b'"' | b'\\' | b']') {
                    o.push(b'\\');
                }
                o.push(b);
            }
            o
        };
        let samples = [
            "",
            "a",
            "host-01",
            "a b",
            "é",
            "x=y",
            "a]b",
            "q\"",
            "\\",
            "~!",
            "\u{7f}",
            "0123456789012345678901234567890123456789",
            "abcdefghijabcdefghijabcdefghijab",
            "abcdefghijabcdefghijabcdefghijabc",
            "]]\"\"\\\\end",
        ];
        let generated: Vec<String> = {
            use proptest::strategy::{Strategy, ValueTree};
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strat = proptest::string::string_regex("[ -~é\u{7f}]{0,40}").unwrap();
            (0..2000)
                .map(|_| strat.new_tree(&mut runner).unwrap().current())
                .collect()
        };
        for s in samples
            .iter()
            .copied()
            .chain(generated.iter().map(String::as_str))
        {
            for max in [1, 5, 32, 48, 255] {
                let mut o = Vec::new();
                push_header_field(&mut o, s, max);
                assert_eq!(o, slow_field(s, max), "{s:?} {max}");
            }
            let mut o = Vec::new();
            push_sd_name(&mut o, s);
            assert_eq!(o, slow_name(s), "{s:?}");
            let mut o = Vec::new();
            push_sd_value(&mut o, s);
            assert_eq!(o, slow_value(s), "{s:?}");
        }
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
