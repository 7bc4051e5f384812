//! Serde names the Rust type it wanted when a value is not a table
//! (`invalid type: string "SECURITY", expected struct FilterSettings`) or
//! not a number (`invalid type: string "lots", expected usize`): the
//! config errors say what the file should hold instead, a table, with an
//! example for the keys that have one, or a whole number and its range.

/// `message`, an error of the value at `path` (a dotted key path such as
/// `destinations.siem.filter`), with serde's `expected struct NAME` and
/// `expected u32` (any of Rust's number types) put in the file's terms.
/// Other messages are returned as they are.
pub fn in_file_terms(message: &str, path: &str) -> String {
    a_number(&a_struct(message, path))
}

/// What a number of each of Rust's types is, in the file's terms.
const NUMBERS: [(&str, &str); 14] = [
    ("u8", "a whole number from 0 to 255"),
    ("u16", "a whole number from 0 to 65535"),
    ("u32", "a whole number from 0 to 4294967295"),
    ("u64", "a whole number, 0 or more"),
    ("u128", "a whole number, 0 or more"),
    ("usize", "a whole number, 0 or more"),
    ("i8", "a whole number from -128 to 127"),
    ("i16", "a whole number from -32768 to 32767"),
    ("i32", "a whole number from -2147483648 to 2147483647"),
    ("i64", "a whole number"),
    ("i128", "a whole number"),
    ("isize", "a whole number"),
    ("f32", "a number"),
    ("f64", "a number"),
];

/// `message` with each `expected TYPE` of a number type (`expected usize`)
/// put in words (`expected a whole number, 0 or more`).
fn a_number(message: &str) -> String {
    const MARK: &str = "expected ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        out.push_str(&rest[..at + MARK.len()]);
        match NUMBERS.iter().find(|(name, _)| *name == &after[..end]) {
            Some((_, words)) => out.push_str(words),
            None => out.push_str(&after[..end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `message` with serde's `expected struct NAME` put in the file's terms.
fn a_struct(message: &str, path: &str) -> String {
    const MARK: &str = "expected struct ";
    let Some(at) = message.find(MARK) else {
        return message.to_string();
    };
    let after = &message[at + MARK.len()..];
    let name_end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    // the key's own name: `tokens[0]` is an element of `tokens`
    let key = path.rsplit('.').next().unwrap_or_default();
    let key = key.split('[').next().unwrap_or_default();
    format!(
        "{}expected {}{}",
        &message[..at],
        a_table(key, !path.contains('.')),
        &after[name_end..]
    )
}

/// What a table at `key` looks like; `top` for a key at the top of the
/// file (a `[key]` section).
fn a_table(key: &str, top: bool) -> String {
    let example = match key {
        "filter" => Some(r#"filter = { categories = ["SECURITY"] }"#),
        "redact" => Some(r#"redact = { drop_fields = ["actor.email"] }"#),
        "retry" => Some(r#"retry = { max_attempts = 5, max_backoff = "1m" }"#),
        "tokens" => Some(r#"tokens = [{ name = "ops", role = "admin", token_sha256 = "…" }]"#),
        _ => None,
    };
    match (example, key.is_empty()) {
        (Some(e), _) => format!("a table such as `{e}`"),
        (None, true) => "a table".to_string(),
        (None, false) if top => format!("a table (a `[{key}]` section)"),
        (None, false) => format!("a table (`{key} = {{ … }}`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_is_a_table_with_an_example() {
        assert_eq!(
            in_file_terms(
                r#"invalid type: string "SECURITY", expected struct FilterSettings"#,
                "destinations.s.filter"
            ),
            r#"invalid type: string "SECURITY", expected a table such as `filter = { categories = ["SECURITY"] }`"#
        );
        assert_eq!(
            in_file_terms(
                "invalid type: integer `5`, expected struct BufferConfig",
                "buffer"
            ),
            "invalid type: integer `5`, expected a table (a `[buffer]` section)"
        );
        assert_eq!(
            in_file_terms(
                "invalid type: string \"x\", expected struct ApiToken",
                "api.tokens[1]"
            ),
            "invalid type: string \"x\", expected a table such as \
             `tokens = [{ name = \"ops\", role = \"admin\", token_sha256 = \"…\" }]`"
        );
        assert_eq!(
            in_file_terms(
                "invalid type: integer `1`, expected struct Inner",
                "a.b.inner"
            ),
            "invalid type: integer `1`, expected a table (`inner = { … }`)"
        );
        assert_eq!(
            in_file_terms("must be at least 1", "x.y"),
            "must be at least 1"
        );
    }

    #[test]
    fn a_number_type_is_put_in_words() {
        assert_eq!(
            in_file_terms(
                r#"invalid type: string "lots", expected usize"#,
                "d.s.batch_size"
            ),
            r#"invalid type: string "lots", expected a whole number, 0 or more"#
        );
        assert_eq!(
            in_file_terms("invalid value: integer `70000`, expected u16", "x.port"),
            "invalid value: integer `70000`, expected a whole number from 0 to 65535"
        );
        assert_eq!(
            in_file_terms("invalid value: integer `-1`, expected u32", "x"),
            "invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            in_file_terms("invalid type: string \"x\", expected f64", "x"),
            "invalid type: string \"x\", expected a number"
        );
        // only whole type names: not a word that begins like one
        for kept in [
            "invalid type: integer `1`, expected u8s",
            "invalid type: integer `1`, expected a string",
            "expected usize_or_so, or u32x",
            "expected ",
        ] {
            assert_eq!(in_file_terms(kept, "x"), kept);
        }
    }
}
