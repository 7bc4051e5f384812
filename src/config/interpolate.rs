//! `${VAR}` interpolation in every string value of the config (secrets stay
//! out of the file); `${VAR:-default}` gives a default. `$${` escapes a literal `${`. A missing variable is an
//! error that names it and the key it was used in.

use super::ConfigError;

/// Replaces `${VAR}` in all strings of `table`, recursively. `path` is the
/// dotted key path of `table`; errors are pushed to `errors`.
pub fn interpolate_env(
    table: &mut toml::Table,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    for (k, v) in table.iter_mut() {
        let k = super::quote_key(k);
        let p = if path.is_empty() {
            k.into_owned()
        } else {
            format!("{path}.{k}")
        };
        interpolate_value(v, &p, env, errors);
    }
}

fn interpolate_value(
    v: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match v {
        toml::Value::String(s) => match interpolate_str(s, env) {
            Ok(Some(new)) => *s = new,
            Ok(None) => {}
            Err(msg) => errors.push(ConfigError::new(path, msg)),
        },
        toml::Value::Array(a) => {
            for (i, item) in a.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), env, errors);
            }
        }
        toml::Value::Table(t) => interpolate_env(t, path, env, errors),
        _ => {}
    }
}

/// Returns `Ok(None)` when `s` has nothing to replace.
fn interpolate_str(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    if !s.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{s}`"))?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&body[..end], None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name `{name}`"));
            }
            let val = match (env(name), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(format!("environment variable `{name}` is not set")),
            };
            out.push_str(&val);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "A").then(|| "x".to_string())
    }

    #[test]
    fn replaces_and_escapes() {
        assert_eq!(
            interpolate_str("a${A}b${A}", &env).unwrap().unwrap(),
            "axbx"
        );
        assert_eq!(interpolate_str("$${A}", &env).unwrap().unwrap(), "${A}");
        assert_eq!(interpolate_str("cost $5", &env).unwrap(), None);
        assert!(interpolate_str("${B}", &env).unwrap_err().contains("`B`"));
        assert!(interpolate_str("${A", &env).is_err());
        assert_eq!(
            interpolate_str("${B:-dflt}", &env).unwrap().unwrap(),
            "dflt"
        );
        assert_eq!(interpolate_str("${A:-dflt}", &env).unwrap().unwrap(), "x");
    }
}
