//! Key paths as errors write them (`destinations."siem.prod".batch_size`,
//! `api.tokens[1].role`): a key that is not a TOML bare key (a name with a
//! dot, a space, …) is quoted as TOML quotes it, so that the path names one
//! key, and the path is read back into its keys.

use std::borrow::Cow;

/// `key` as one part of a key path: as it is when it is a TOML bare key
/// (`A-Z a-z 0-9 _ -`, not empty), else as a TOML basic string (`"a.b"`).
pub fn quote_key(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// One key of a path, with the array indices that follow it (`tokens[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub key: String,
    pub indices: Vec<usize>,
}

/// The keys of a dotted key path (quoted keys unquoted), each with its
/// array indices. An index that is no number is left out.
pub fn split(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut chars = path.chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('u') => {
                            let hex: String = chars.by_ref().take(4).collect();
                            key.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                        }
                        Some(c) => key.push(c),
                        None => {}
                    },
                    c => key.push(c),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == '.' || c == '[' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut indices = Vec::new();
        while chars.peek() == Some(&'[') {
            chars.next();
            let index: String = chars.by_ref().take_while(|&c| c != ']').collect();
            indices.extend(index.parse::<usize>().ok());
        }
        if chars.peek() == Some(&'.') {
            chars.next();
        }
        segments.push(Segment { key, indices });
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_no_bare_key_is_quoted_and_read_back() {
        assert_eq!(quote_key("siem_prod-2"), "siem_prod-2");
        assert_eq!(quote_key("a.b"), "\"a.b\"");
        assert_eq!(quote_key("siem prod"), "\"siem prod\"");
        assert_eq!(quote_key(""), "\"\"");
        assert_eq!(quote_key("say \"hi\"\\"), r#""say \"hi\"\\""#);
        let keys = |p: &str| -> Vec<String> { split(p).into_iter().map(|s| s.key).collect() };
        assert_eq!(
            keys("destinations.\"a.b\".bogus"),
            ["destinations", "a.b", "bogus"]
        );
        assert_eq!(keys(r#"x."say \"hi\"\\".y"#), ["x", "say \"hi\"\\", "y"]);
        assert_eq!(keys("x.\"\\u0007\""), ["x", "\u{7}"]);
        for name in ["a.b", "siem prod", "tab\there", "q\"uote", "", "ok"] {
            let path = format!("destinations.{}.type", quote_key(name));
            assert_eq!(keys(&path), ["destinations", name, "type"], "{path}");
        }
        let s = split("api.tokens[1][2].role");
        assert_eq!(s[1].key, "tokens");
        assert_eq!(s[1].indices, [1, 2]);
        assert_eq!(s[2].key, "role");
        assert_eq!(split("\"a[0].b\"[3]")[0].indices, [3]);
        assert_eq!(split("\"a[0].b\"[3]")[0].key, "a[0].b");
        assert!(split("").is_empty());
    }
}
