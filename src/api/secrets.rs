//! Secrets of API-managed destinations, encrypted at rest.
//!
//! A settings value is a secret when its key is one of [`SECRET_KEYS`], or
//! when it is any value under `headers` (API keys travel in headers), or
//! the `endpoint` of a type in [`SECRET_ENDPOINT_KINDS`]. Secrets
//! are stored as `{"$enc": "<base64 of nonce ‖ ChaCha20-Poly1305 ciphertext>"}`
//! with a 256-bit key kept in `<data_dir>/api/secret.key` (created on first
//! use, mode 0600), and shown as `"<redacted>"` whenever settings are
//! returned.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;
use thiserror::Error;

/// Keys whose values are secrets, wherever they appear.
pub const SECRET_KEYS: [&str; 11] = [
    "hash_key",
    "token",
    "bearer_token",
    "access_token",
    "api_key",
    "client_secret",
    "password",
    "secret",
    "key_password",
    "authorization",
    "shared_key",
];

/// Types whose `endpoint` is a secret, whatever it looks like: a Sumo
/// Logic source URL's path is its token, and an `http` webhook's URL often
/// holds one, in the path (Slack's, Teams') as often as in the query, so a
/// rule on the URL's shape would miss some. Their status shows only the
/// endpoint's origin for the same reason (`url_is_secret`).
pub const SECRET_ENDPOINT_KINDS: [&str; 2] = ["sumo_logic", "http"];

/// What stands in for a secret in answers.
pub const REDACTED: &str = "<redacted>";

const ENC: &str = "$enc";

/// Errors of the secret store.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("secret key file {0} must hold exactly 32 bytes")]
    KeyLength(String),
    #[error("a stored secret cannot be decrypted (wrong key or damaged store)")]
    Decrypt,
}

/// The at-rest encryption key.
pub struct SecretKey(LessSafeKey);

impl SecretKey {
    /// Loads the key file, creating it (32 random bytes, mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, SecretError> {
        let err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut f = private_file(path).map_err(err)?;
                f.write_all(&key).and_then(|_| f.sync_all()).map_err(err)?;
                key
            }
            Err(e) => return Err(err(e)),
        };
        Self::from_bytes(&bytes).ok_or_else(|| SecretError::KeyLength(path.display().to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<SecretKey> {
        if bytes.len() != 32 {
            return None;
        }
        UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .ok()
            .map(|k| SecretKey(LessSafeKey::new(k)))
    }

    fn encrypt(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut buf = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .expect("ChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        B64.encode(out)
    }

    fn decrypt(&self, sealed: &str) -> Result<String, SecretError> {
        let raw = B64.decode(sealed).map_err(|_| SecretError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Decrypt)?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Decrypt)
    }
}

/// Opens `path` for writing, created with mode 0600.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str())
}

/// Applies `f` to every secret string (or sealed secret) in the settings
/// of a destination of type `kind` (recursively), with its path of keys
/// (`headers.X-API-Key`); for the [`SECRET_ENDPOINT_KINDS`] its `endpoint`
/// is one too.
fn walk(kind: &str, settings: &mut Map<String, Value>, f: &mut dyn FnMut(&str, &mut Value)) {
    let endpoint = SECRET_ENDPOINT_KINDS.contains(&kind);
    walk_in(settings, "", false, endpoint, f)
}

fn walk_in(
    settings: &mut Map<String, Value>,
    prefix: &str,
    under_headers: bool,
    secret_endpoint: bool,
    f: &mut dyn FnMut(&str, &mut Value),
) {
    for (k, v) in settings.iter_mut() {
        let secret = under_headers || is_secret_key(k) || (secret_endpoint && k == "endpoint");
        let path = match prefix {
            "" => k.clone(),
            _ => format!("{prefix}.{k}"),
        };
        match v {
            Value::Object(m) if m.contains_key(ENC) => f(&path, v),
            Value::Object(m) => walk_in(m, &path, secret || k == "headers", false, f),
            Value::String(_) if secret => f(&path, v),
            _ => {}
        }
    }
}

/// Whether a secret is stored in plain text (a store written before its
/// key or its type's endpoint was counted as a secret).
pub fn any_plain(kind: &str, settings: &Map<String, Value>) -> bool {
    let mut plain = false;
    walk(kind, &mut settings.clone(), &mut |_, v| {
        plain |= v.is_string()
    });
    plain
}

/// Replaces every secret with its encrypted form.
pub fn seal(key: &SecretKey, kind: &str, settings: &mut Map<String, Value>) {
    walk(kind, settings, &mut |_, v| {
        if let Value::String(s) = v {
            *v = serde_json::json!({ ENC: key.encrypt(s) });
        }
    });
}

/// Replaces every encrypted secret with its plain value.
pub fn open(
    key: &SecretKey,
    kind: &str,
    settings: &mut Map<String, Value>,
) -> Result<(), SecretError> {
    let mut result = Ok(());
    walk(kind, settings, &mut |_, v| {
        let sealed = v.get(ENC).and_then(Value::as_str).map(str::to_string);
        if let Some(sealed) = sealed {
            match key.decrypt(&sealed) {
                Ok(plain) => *v = Value::String(plain),
                Err(e) => result = Err(e),
            }
        }
    });
    result
}

/// Replaces every secret with [`REDACTED`] (for answers).
pub fn redact(kind: &str, settings: &mut Map<String, Value>) {
    walk(kind, settings, &mut |_, v| {
        *v = Value::String(REDACTED.into())
    });
}

/// Where a PUT sends back settings as answered: every secret that is
/// exactly [`REDACTED`] takes the value `stored` (the destination's type
/// and settings before the change) holds at the same place, so the
/// placeholder never becomes the secret. A placeholder with nothing stored
/// to keep (a POST, or a secret the destination did not have) is an error
/// naming it: sending `<redacted>` to a server as a token fails far from
/// the cause.
pub fn keep_stored(
    kind: &str,
    settings: &mut Map<String, Value>,
    stored: Option<(&str, &Map<String, Value>)>,
) -> Result<(), String> {
    let mut kept = std::collections::BTreeMap::new();
    if let Some((stored_kind, stored_settings)) = stored {
        let mut copy = stored_settings.clone();
        walk(stored_kind, &mut copy, &mut |path, v| {
            kept.insert(path.to_string(), v.clone());
        });
    }
    let mut missing = Vec::new();
    walk(kind, settings, &mut |path, v| {
        if v.as_str() == Some(REDACTED) {
            match kept.get(path) {
                Some(old) => *v = old.clone(),
                None => missing.push(format!("`{path}`")),
            }
        }
    });
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} is \"{REDACTED}\", the placeholder answers show for a secret, and this \
         destination has no stored secret there to keep: send the secret itself",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Map<String, Value> {
        serde_json::from_str(
            r#"{"endpoint":"https://x","token":"s3cret","headers":{"X-API-Key":"k1"},"nested":{"client_secret":"c"},"batch_size":5}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_redaction_hash_key_and_a_sumo_or_http_endpoint_are_secrets() {
        let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let mut s: Map<String, Value> = serde_json::from_str(
            r#"{"endpoint":"https://collectors.example/receiver/v1/http/TOKEN1","redact":{"hash_fields":["actor.id"],"hash_key":"HASHKEY1"}}"#,
        )
        .unwrap();
        let plain = s.clone();
        seal(&key, "sumo_logic", &mut s);
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            !text.contains("TOKEN1") && !text.contains("HASHKEY1"),
            "{text}"
        );
        assert!(text.contains("actor.id"), "{text}");
        let mut shown = s.clone();
        redact("sumo_logic", &mut shown);
        assert_eq!(shown["endpoint"], REDACTED);
        assert_eq!(shown["redact"]["hash_key"], REDACTED);
        open(&key, "sumo_logic", &mut s).unwrap();
        assert_eq!(s, plain);
        // an http webhook's endpoint is one too; another type's is not
        let hook = r#"{"endpoint":"https://hooks.example/services/T0/SECRET1"}"#;
        let mut http: Map<String, Value> = serde_json::from_str(hook).unwrap();
        assert!(any_plain("http", &http));
        seal(&key, "http", &mut http);
        assert!(
            !http["endpoint"].to_string().contains("SECRET1"),
            "{http:?}"
        );
        assert!(!any_plain("http", &http));
        let mut shown = http.clone();
        redact("http", &mut shown);
        assert_eq!(shown["endpoint"], REDACTED);
        let mut hec: Map<String, Value> = serde_json::from_str(hook).unwrap();
        seal(&key, "splunk_hec", &mut hec);
        assert_eq!(hec["endpoint"], "https://hooks.example/services/T0/SECRET1");
        assert!(!any_plain("splunk_hec", &hec));
    }

    #[test]
    fn seal_hides_every_secret_and_open_restores_them() {
        let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let mut s = settings();
        seal(&key, "splunk_hec", &mut s);
        let text = serde_json::to_string(&s).unwrap();
        // as JSON strings: a bare "k1" turns up in random base64 now and then (~3% of runs)
        for secret in ["\"s3cret\"", "\"k1\"", "\"c\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("https://x"));
        open(&key, "splunk_hec", &mut s).unwrap();
        assert_eq!(s, settings());
        let other = SecretKey::from_bytes(&[8u8; 32]).unwrap();
        let mut s2 = settings();
        seal(&key, "splunk_hec", &mut s2);
        assert!(matches!(
            open(&other, "splunk_hec", &mut s2),
            Err(SecretError::Decrypt)
        ));
    }

    #[test]
    fn redact_replaces_secrets_only() {
        let mut s = settings();
        redact("splunk_hec", &mut s);
        assert_eq!(s["token"], REDACTED);
        assert_eq!(s["headers"]["X-API-Key"], REDACTED);
        assert_eq!(s["nested"]["client_secret"], REDACTED);
        assert_eq!(s["endpoint"], "https://x");
        assert_eq!(s["batch_size"], 5);
    }

    #[test]
    fn a_placeholder_keeps_the_stored_secret_or_is_refused() {
        let stored = settings();
        let mut put: Map<String, Value> = serde_json::from_str(
            r#"{"endpoint":"https://x","token":"<redacted>","headers":{"X-API-Key":"<redacted>"},"batch_size":9}"#,
        )
        .unwrap();
        keep_stored("http", &mut put, Some(("http", &stored))).unwrap();
        assert_eq!(put["token"], "s3cret");
        assert_eq!(put["headers"]["X-API-Key"], "k1");
        assert_eq!(put["batch_size"], 9);
        // a new secret replaces the stored one; not a secret: kept as sent
        let mut put: Map<String, Value> =
            serde_json::from_str(r#"{"token":"new","username":"<redacted>"}"#).unwrap();
        keep_stored("http", &mut put, Some(("http", &stored))).unwrap();
        assert_eq!(
            (put["token"].as_str(), put["username"].as_str()),
            (Some("new"), Some(REDACTED))
        );
        // nothing stored there (a POST, or a secret the destination lacks)
        let mut post: Map<String, Value> =
            serde_json::from_str(r#"{"bearer_token":"<redacted>"}"#).unwrap();
        let e = keep_stored("http", &mut post.clone(), None).unwrap_err();
        assert!(
            e.contains("`bearer_token`") && e.contains("send the secret itself"),
            "{e}"
        );
        assert!(keep_stored("http", &mut post, Some(("http", &stored))).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api/secret.key");
        let k1 = SecretKey::load_or_create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = k1.encrypt("x");
        let k2 = SecretKey::load_or_create(&p).unwrap();
        assert_eq!(k2.decrypt(&sealed).unwrap(), "x");
    }
}
