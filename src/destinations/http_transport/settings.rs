//! The keys every HTTP destination shares (`endpoint`, `ca`, `timeout`,
//! `compression`, `compression_level`, `headers`), and the small helpers
//! for URLs and secret header values the formats use.

use crate::config::{table_into, ConfigError, HumanDuration};
use crate::destinations::settings::peel;
use crate::destinations::BuildContext;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `compression = "gzip" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    None,
}

/// The keys every HTTP destination shares.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Validated `http://` or `https://` URL, as written.
    pub endpoint: Option<String>,
    /// Private CA file (PEM), resolved against the config file's folder.
    pub ca: Option<PathBuf>,
    pub timeout: Duration,
    pub compression: Compression,
    /// The gzip level: 1 (fastest, the default) to 9 (smallest).
    pub compression_level: u32,
    /// Extra headers sent with every request (`headers = { "X-Key" = "…" }`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The names of [`headers`](Self::headers) as written, index for index
    /// (an error names the key as the file has it).
    pub header_keys: Vec<String>,
}

/// Headers the transport computes for every request, and what sets them:
/// one in `headers` replaced the computed one (`Content-Length = "5"` cut
/// each body to 5 bytes on the wire, and the events counted as sent).
const COMPUTED_HEADERS: [(&str, &str); 9] = [
    (
        "content-length",
        "the relay frames each request body itself",
    ),
    (
        "transfer-encoding",
        "the relay frames each request body itself",
    ),
    ("host", "it is the host of `endpoint`"),
    (
        "connection",
        "the relay's HTTP client manages its connections",
    ),
    (
        "keep-alive",
        "the relay's HTTP client manages its connections",
    ),
    ("te", "the relay's HTTP client manages its connections"),
    ("trailer", "the relay's HTTP client manages its connections"),
    ("upgrade", "the relay's HTTP client manages its connections"),
    ("content-encoding", "set `compression` instead"),
];

/// A header a format sets on its requests, and what sets it: the key to
/// use instead (`"`api_key`"`), or `None` when the format always sends its
/// own value (the `Content-Type` its API takes).
pub struct OwnHeader {
    pub name: &'static str,
    pub key: Option<&'static str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSettings {
    endpoint: Option<String>,
    ca: Option<PathBuf>,
    timeout: Option<HumanDuration>,
    compression: Option<Compression>,
    compression_level: Option<u32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The keys every HTTP destination takes, peeled off its table before its
/// format reads the rest (so the format's `unknown field` error does not
/// list them: the registry adds them).
pub const HTTP_KEYS: [&str; 6] = [
    "endpoint",
    "ca",
    "timeout",
    "compression",
    "compression_level",
    "headers",
];

/// The gzip level when none is set: the fastest (see [`gzip`](super::gzip)).
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

impl HttpSettings {
    /// Takes the shared HTTP keys out of `table` and validates them.
    /// `default_compression` is the format's default (gzip where the vendor recommends it).
    pub fn peel_from(
        table: &mut toml::Table,
        ctx: &BuildContext,
        default_compression: Compression,
    ) -> Result<HttpSettings, ConfigError> {
        let path = ctx.path();
        let raw: RawHttpSettings = table_into(&peel(table, &HTTP_KEYS), &path)?;
        let endpoint = raw
            .endpoint
            .map(|e| {
                validate_endpoint(&e).map_err(|m| ConfigError::new(format!("{path}.endpoint"), m))
            })
            .transpose()?;
        let mut headers = Vec::with_capacity(raw.headers.len());
        let mut header_keys = Vec::with_capacity(raw.headers.len());
        for (k, v) in raw.headers {
            let key_path = format!("{path}.headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ConfigError::new(&key_path, "not a valid HTTP header name"))?;
            if let Some((_, why)) = COMPUTED_HEADERS.iter().find(|(n, _)| *n == name.as_str()) {
                return Err(ConfigError::new(
                    &key_path,
                    format!("`{k}` is computed for each request and cannot be set here: {why}"),
                ));
            }
            headers.push((
                name,
                secret_header(&v).map_err(|m| ConfigError::new(&key_path, m))?,
            ));
            header_keys.push(k);
        }
        let timeout = raw.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(30));
        if timeout.is_zero() {
            return Err(ConfigError::new(
                format!("{path}.timeout"),
                "must be more than 0",
            ));
        }
        let compression_level = raw.compression_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        if !(1..=9).contains(&compression_level) {
            return Err(ConfigError::new(
                format!("{path}.compression_level"),
                "must be 1 (fastest) to 9 (smallest)",
            ));
        }
        Ok(HttpSettings {
            endpoint,
            ca: raw.ca.map(|p| ctx.resolve(&p)),
            timeout,
            compression: raw.compression.unwrap_or(default_compression),
            compression_level,
            headers,
            header_keys,
        })
    }

    /// Refuses, in `headers`, a header the format sets itself (`own`,
    /// those it sends with this configuration): the one in `headers` would
    /// replace it (a `DD-API-KEY` there replaced `api_key`, an
    /// `Authorization` the `bearer_token`). Header names are compared
    /// without regard to case.
    pub fn refuse_own_headers(
        &self,
        ctx: &BuildContext,
        own: &[OwnHeader],
    ) -> Result<(), ConfigError> {
        for ((name, _), k) in self.headers.iter().zip(&self.header_keys) {
            let Some(o) = own
                .iter()
                .find(|o| name.as_str().eq_ignore_ascii_case(o.name))
            else {
                continue;
            };
            let why = match o.key {
                Some(key) => format!(
                    "`{k}` is set from {key} for this destination and cannot be replaced here"
                ),
                None => format!(
                    "`{k}` is set by this destination type itself (its API takes only its own) \
                     and cannot be replaced here"
                ),
            };
            return Err(ConfigError::new(format!("{}.headers.{k}", ctx.path()), why));
        }
        Ok(())
    }

    /// The endpoint as written, for formats where it is required and used
    /// as the full URL (a trailing `/` may matter to the server). A format
    /// asks for it after its other checks: a bad endpoint is left out by
    /// [`every_error`](crate::config::every_error) to check the rest, and
    /// its `required` here would end the checks before them.
    pub fn require_endpoint(&self, ctx: &BuildContext) -> Result<&str, ConfigError> {
        self.endpoint.as_deref().ok_or_else(|| {
            ConfigError::new(
                format!("{}.endpoint", ctx.path()),
                "required (an http:// or https:// URL)",
            )
        })
    }

    /// The endpoint without a trailing `/`, for formats that append the vendor's path.
    pub fn require_base(&self, ctx: &BuildContext) -> Result<&str, ConfigError> {
        self.require_endpoint(ctx).map(|e| e.trim_end_matches('/'))
    }
}

/// Checks that `s` is an absolute `http://` or `https://` URL with a host;
/// returns it trimmed of surrounding whitespace.
pub fn validate_endpoint(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(s.trim().to_string())
}

/// `scheme://host[:port]` of a URL: what status and messages may show
/// (never the path, query or user info, which can carry secrets).
pub fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// A header value holding a secret: validated and marked sensitive (hidden
/// from `Debug` output and HPACK-indexing).
pub fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| "contains characters not allowed in an HTTP header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Basic base64(user:password)`.
pub fn basic_auth(username: &str, password: &str) -> Result<HeaderValue, String> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    secret_header(&format!("Basic {token}"))
}

/// This machine's host name (for `host`/`hostname` fields), or `siem-relay`.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "siem-relay".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_validated_and_origins_hide_paths() {
        assert!(validate_endpoint("ftp://x").is_err());
        assert!(validate_endpoint("nonsense").is_err());
        assert_eq!(
            validate_endpoint(" https://h:8088/ ").unwrap(),
            "https://h:8088/"
        );
        assert_eq!(
            origin_of("https://u:p@h.example:444/receiver/v1/http/SECRET?q=1"),
            "https://h.example:444"
        );
    }
}
