//! STRUCTURED-DATA on the direct path: whether a line's SD text is already
//! canonical (then it is copied as it is), and the rendering when it is not.

use super::*;

/// Whether the line's STRUCTURED-DATA `text`, whose items in line order are
/// `sd` (sorted, no repeats) as [`scan_sd`] read them, is already exactly
/// what [`render_structured_data`] writes for them. The scanner admits only
/// SD-NAME bytes in names, so a name is copied as it is when it has at most
/// 32 of them (a backslash in a name included); a value is copied as it is
/// when it holds no `\\` (nothing to unescape) and no `]` (nothing to
/// escape: an unescaped `"` ends it), which the scanner reported as
/// `plain`. The rendering puts nothing between the items but what the
/// scanner read there, so the lengths agree too.
pub(super) fn sd_is_canonical(text: &str, sd: &[SdItem<'_>], plain: bool) -> bool {
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
pub(super) fn sd_name_bytes(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(sd_name_byte)
}

/// STRUCTURED-DATA as the `syslog` destination writes it from the body's
/// `structured_data` map (for the record's syslog hint), from the same
/// sorted element markers and params `write_structured_data` writes.
pub(super) fn render_structured_data(o: &mut Vec<u8>, sd: &[SdItem<'_>]) {
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
pub(super) fn sd_id_order(a: &str, b: &str) -> std::cmp::Ordering {
    if std::ptr::eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        key_order(a, b)
    }
}

pub(super) fn param_name<'a>(item: &SdItem<'a>) -> Option<&'a str> {
    item.1.map(|(name, _)| name)
}

/// `{"ID":{"NAME":"VALUE",…},…}` without the outer braces, from the sorted
/// element markers and params.
pub(super) fn write_structured_data(o: &mut Vec<u8>, sd: &[SdItem<'_>]) {
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
pub(super) fn sd_value_contents(o: &mut Vec<u8>, raw: &str) {
    match first_escape(raw) {
        None => o.extend_from_slice(raw.as_bytes()),
        // the first byte to escape is not a backslash, so none is before it
        Some(first) if !raw.as_bytes()[first..].contains(&b'\\') => escaped_from(o, raw, first),
        Some(_) => string_contents(o, &unescape_param(raw)),
    }
}
