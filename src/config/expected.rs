//! Serde names the Rust type it wanted when a value is not a table
//! (`invalid type: string "SECURITY", expected struct FilterSettings`):
//! the config errors say what the file should hold instead, a table, with
//! an example for the keys that have one.

/// `message`, an error of the value at `path` (a dotted key path such as
/// `destinations.siem.filter`), with serde's `expected struct NAME` put in
/// the file's terms. Other messages are returned as they are.
pub fn in_file_terms(message: &str, path: &str) -> String {
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
}
