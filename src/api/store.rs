//! Destinations created through the API, persisted in
//! `<data_dir>/api/destinations.json` (mode 0600, replaced atomically) with
//! their secrets sealed ([`super::secrets`]). Destinations of the config file
//! are never stored here; the file stays the operator's.

use super::secrets::{self, SecretError, SecretKey};
use crate::config::SectionConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::sync::{Mutex, MutexGuard};

/// One API-managed destination: its type and settings (plain in memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDestination {
    #[serde(rename = "type")]
    pub kind: String,
    pub settings: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    destinations: BTreeMap<String, StoredDestination>,
}

/// The names of the destinations stored under `data_dir`, read without
/// opening the store (no key made, no secret decrypted): for the config
/// check, which must not change the data folder. Empty when there is no
/// store, or it cannot be read (starting the API then says why).
pub fn stored_names(data_dir: &Path) -> Vec<String> {
    #[derive(Deserialize)]
    struct Names {
        destinations: BTreeMap<String, serde::de::IgnoredAny>,
    }
    std::fs::read(data_dir.join("api").join("destinations.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Names>(&bytes).ok())
        .map(|n| n.destinations.into_keys().collect())
        .unwrap_or_default()
}

/// Errors reading or writing the store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a destination store: {source}")]
    Format {
        path: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Secret(#[from] SecretError),
}

/// The persisted API-managed destinations. Lock it for the whole of a
/// create/update/delete so concurrent changes apply one at a time.
pub struct Store {
    path: PathBuf,
    key: SecretKey,
    entries: Mutex<BTreeMap<String, StoredDestination>>,
}

pub type Entries<'a> = MutexGuard<'a, BTreeMap<String, StoredDestination>>;

impl Store {
    /// Opens (or starts) the store under `data_dir`, decrypting its secrets.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let dir = data_dir.join("api");
        let key = SecretKey::load_or_create(&dir.join("secret.key"))?;
        let path = dir.join("destinations.json");
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut entries = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: StoreFile =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Format {
                        path: path.display().to_string(),
                        source,
                    })?;
                f.destinations
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        // written before some of these counted as secrets (an `http`
        // endpoint): sealed again below, not left in plain text until a change
        let plain = entries
            .values()
            .any(|d| secrets::any_plain(&d.kind, &d.settings));
        for d in entries.values_mut() {
            secrets::open(&key, &d.kind, &mut d.settings)?;
        }
        let store = Store {
            path,
            key,
            entries: Mutex::new(BTreeMap::new()),
        };
        if plain {
            if let Err(e) = store.persist(&entries) {
                tracing::warn!("the API's destination store holds secrets in plain text and could not be rewritten sealed: {e}");
            }
        }
        *store.entries.try_lock().expect("a new store is not locked") = entries;
        Ok(store)
    }

    pub async fn lock(&self) -> Entries<'_> {
        self.entries.lock().await
    }

    /// Writes `entries` with their secrets sealed (temporary file, fsync, rename).
    pub fn persist(&self, entries: &BTreeMap<String, StoredDestination>) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut sealed = entries.clone();
        for d in sealed.values_mut() {
            secrets::seal(&self.key, &d.kind, &mut d.settings);
        }
        let file = StoreFile {
            version: 1,
            destinations: sealed,
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("the store serialises");
        let tmp = self.path.with_extension("json.tmp");
        let mut f = secrets::private_file(&tmp).map_err(io)?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

impl Store {
    /// Drops `names` from the store (the config file defines them now: the
    /// file's are the ones that run, and the API's settings must not come
    /// back when the file gives a name up). Returns the names it held.
    pub async fn forget(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let mut entries = self.lock().await;
        let mut removed = Vec::new();
        for name in names {
            if let Some(old) = entries.remove(name) {
                removed.push((name.clone(), old));
            }
        }
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(e) = self.persist(&entries) {
            entries.extend(removed);
            return Err(e);
        }
        Ok(removed.into_iter().map(|(name, _)| name).collect())
    }
}

impl StoredDestination {
    /// The `[destinations.NAME]` section this stands for.
    pub fn section(&self, name: &str) -> Result<SectionConfig, String> {
        let table: toml::Table = serde_json::from_value(Value::Object(self.settings.clone()))
            .map_err(|e| format!("settings cannot be expressed as config: {e}"))?;
        Ok(SectionConfig {
            section: "destinations",
            name: name.to_string(),
            kind: self.kind.clone(),
            table,
        })
    }

    /// The settings with secrets shown as `<redacted>`.
    pub fn redacted(&self) -> Map<String, Value> {
        let mut s = self.settings.clone();
        secrets::redact(&self.kind, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written when an `http` endpoint was not yet a secret.
    #[tokio::test]
    async fn a_plain_secret_of_an_older_store_is_sealed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("api")).unwrap();
        let file = dir.path().join("api/destinations.json");
        let old = r#"{"version":1,"destinations":{"hook":{"type":"http","settings":{"endpoint":"https://h/services/T0/SECRET2"}}}}"#;
        std::fs::write(&file, old).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let endpoint = store.lock().await["hook"].settings["endpoint"].clone();
        assert_eq!(endpoint, "https://h/services/T0/SECRET2");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("SECRET2") && text.contains("$enc"), "{text}");
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.lock().await["hook"].settings["endpoint"], endpoint);
    }

    #[tokio::test]
    async fn persists_sealed_and_reopens_plain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = StoredDestination {
            kind: "splunk_hec".into(),
            settings: serde_json::from_str(
                r#"{"endpoint":"http://h:8088","token":"hec-secret-1"}"#,
            )
            .unwrap(),
        };
        {
            let mut e = store.lock().await;
            e.insert("splunk".into(), d.clone());
            store.persist(&e).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("api/destinations.json")).unwrap();
        assert!(!text.contains("hec-secret-1"), "{text}");
        assert!(text.contains("http://h:8088"));
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.lock().await.get("splunk"), Some(&d));
        let forgotten = again.forget(&["splunk".into(), "other".into()]).await;
        assert_eq!(forgotten.unwrap(), ["splunk"]);
        assert!(Store::open(dir.path()).unwrap().lock().await.is_empty());
        let s = d.section("splunk").unwrap();
        assert_eq!(s.table["token"].as_str(), Some("hec-secret-1"));
        assert_eq!(d.redacted()["token"], secrets::REDACTED);
    }
}
