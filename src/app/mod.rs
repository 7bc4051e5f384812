//! Wiring and lifecycle: opens the ring, starts destinations (each with its
//! cursor and loop) and sources, serves the admin API, and handles SIGTERM
//! (drain and checkpoint) and SIGHUP (reload destinations and sources).

mod delivery;
mod ingest;
pub mod memory;
mod validate;

use delivery::DeliveryRuntime;
pub use ingest::RingIngest;
pub use validate::validate;

use crate::buffer::{RecoveryReport, Ring, RingSettings};
use crate::config::{ApiConfig, Config, ConfigErrors, SectionConfig};
use crate::destinations::throttle::Throttle;
use crate::destinations::{registry, worker, Destination};
use crate::sources::{self, RunningSource, SourceContext};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the relay could not start or reload.
#[derive(Debug, Error)]
pub enum AppError {
    #[error("invalid configuration:\n{0}")]
    Config(ConfigErrors),
    #[error("buffer: {0}")]
    Buffer(#[from] crate::buffer::BufferError),
    #[error("{0}")]
    Source(#[from] sources::SourceError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Api(#[from] crate::api::ApiStartError),
}

/// The ring's settings from the config.
pub fn ring_settings(config: &Config) -> RingSettings {
    RingSettings {
        dir: config.data_path().join("buffer"),
        max_bytes: config.buffer.max_bytes.0,
        segment_bytes: config.buffer.segment_bytes.0,
        max_age: config.buffer.max_age.0,
        fsync: config.buffer.fsync,
    }
}

/// Loads and fully validates a config file.
pub fn load_config(path: &std::path::Path) -> Result<Config, AppError> {
    let config = Config::load(path)
        .map_err(|e| AppError::Config(in_file_order(beyond_env_errors(path, e))))?;
    let errors = validate(&config);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(AppError::Config(in_file_order(ConfigErrors(errors))))
    }
}

/// The errors in the order of their lines (those without one last).
fn in_file_order(mut errors: ConfigErrors) -> ConfigErrors {
    errors.0.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    errors
}

/// An unset `${VAR}` or a top-level key in error (`[buffer]`, `[api]`)
/// stops parsing before the sections are checked; check them anyway
/// (unset variables as written, keys in error as their defaults) so every
/// problem is reported at once. Errors at, under or above (an array
/// holding an item) a key already in error are left out.
fn beyond_env_errors(path: &std::path::Path, mut errors: ConfigErrors) -> ConfigErrors {
    let Ok(text) = std::fs::read_to_string(path) else {
        return errors;
    };
    let more = match Config::parse_lenient(&text, path) {
        Some((config, mut errors)) => {
            errors.extend(validate(&config));
            errors
        }
        None => Vec::new(),
    };
    for e in more {
        // against every error kept so far, this pass's too: a token whose
        // role is wrong was left out to read on, which left the list empty
        let covered = errors.0.iter().map(|k| &k.path).any(|k| {
            !k.is_empty()
                && (e.path == *k
                    || e.path.starts_with(&format!("{k}."))
                    || k.starts_with(&format!("{}[", e.path)))
        });
        if !covered && !errors.0.contains(&e) {
            errors.0.push(e);
        }
    }
    errors
}

struct RunningDestination {
    section: SectionConfig,
    /// The contents of the files it read when built
    /// ([`registry::files_read`]; `None`: unreadable).
    files: FileContents,
    dest: Arc<Destination>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The contents of files, in order (`None` for one that cannot be read).
type FileContents = Vec<Option<Vec<u8>>>;

/// The contents of `files` now.
fn file_contents(files: &[PathBuf]) -> FileContents {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

struct RunningSrc {
    section: SectionConfig,
    stop: watch::Sender<bool>,
    source: RunningSource,
}

/// The running relay.
pub struct Relay {
    config: Mutex<Config>,
    ring: Ring,
    recovery: RecoveryReport,
    destinations: tokio::sync::Mutex<BTreeMap<String, RunningDestination>>,
    sources: tokio::sync::Mutex<BTreeMap<String, RunningSrc>>,
    api: Mutex<Option<crate::api::ApiServer>>,
    /// Destinations created through the admin API (kept across reloads).
    managed: Mutex<BTreeMap<String, SectionConfig>>,
    /// Where the destination loops run (see [`delivery`]).
    delivery: DeliveryRuntime,
    /// Whether a running destination reads syslog hints; the sources'
    /// [`RingIngest`] leaves them out of the records while none does.
    syslog_hints: Arc<AtomicBool>,
    /// The task that trims the heap once the relay goes quiet ([`memory`]).
    idle_trim: Mutex<Option<JoinHandle<()>>>,
    /// Stopped destinations' `Retry-After` waits, by name, with the wire
    /// settings they were for: restarted by a reload that changed only its
    /// common settings (batching, retries, filter…), a destination goes on
    /// waiting instead of calling the server at once; a new endpoint or
    /// credentials end the wait.
    throttles: Mutex<BTreeMap<String, (String, Arc<Throttle>)>>,
    /// The destinations configured with `enabled = false`, as built (they
    /// do not run): the API lists them, their counters at zero.
    disabled: Mutex<BTreeMap<String, Arc<Destination>>>,
}

impl Relay {
    /// Opens the ring and starts every destination and source.
    pub async fn start(config: Config) -> Result<Arc<Relay>, AppError> {
        let (ring, recovery) = Ring::open(ring_settings(&config))?;
        log_recovery(&recovery);
        let relay = Arc::new(Relay {
            config: Mutex::new(config.clone()),
            ring,
            recovery,
            destinations: Default::default(),
            sources: Default::default(),
            api: Mutex::new(None),
            managed: Default::default(),
            delivery: DeliveryRuntime::start()?,
            syslog_hints: Arc::new(AtomicBool::new(false)),
            idle_trim: Mutex::new(None),
            throttles: Default::default(),
            disabled: Default::default(),
        });
        for d in config.destinations.iter() {
            relay.start_destination(&config, d).await?;
        }
        relay.start_api(&config).await?;
        relay.forget_removed_destinations(&config).await;
        for s in config.sources.iter() {
            relay.start_source(&config, s).await?;
        }
        if memory::SUPPORTED {
            let trim = tokio::spawn(idle_trim(Arc::downgrade(&relay)));
            *relay.idle_trim.lock().unwrap() = Some(trim);
        }
        Ok(relay)
    }

    /// What the relay has done so far, as one count that moves while it
    /// works: records appended, and batches sent or failed.
    async fn activity(&self) -> u64 {
        let sent: u64 = self
            .destinations
            .lock()
            .await
            .values()
            .map(|d| {
                let s = &d.dest.status;
                s.sent_batches.load(Ordering::Relaxed) + s.failure_count.load(Ordering::Relaxed)
            })
            .sum();
        self.ring.next_seq().wrapping_add(sent)
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Starts the admin API when `[api]` is configured (after the config's
    /// destinations, so stored API-managed ones cannot shadow them; before
    /// the sources, so their metrics go to the Prometheus recorder it installs).
    async fn start_api(self: &Arc<Self>, config: &Config) -> Result<(), AppError> {
        if let Some(api) = &config.api {
            let backend: std::sync::Weak<dyn crate::api::Backend> = Arc::downgrade(self) as _;
            let server = crate::api::ApiServer::start(api, backend).await?;
            *self.api.lock().unwrap() = Some(server);
        }
        Ok(())
    }

    /// Where the admin API listens, when it runs.
    pub fn api_address(&self) -> Option<std::net::SocketAddr> {
        self.api.lock().unwrap().as_ref().map(|s| s.local_addr())
    }

    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Bound addresses of the sources, by name.
    pub async fn source_addresses(&self) -> BTreeMap<String, std::net::SocketAddr> {
        self.sources
            .lock()
            .await
            .iter()
            .map(|(k, v)| (k.clone(), v.source.local_addr))
            .collect()
    }

    /// The running destinations, by name.
    pub async fn destinations(&self) -> BTreeMap<String, Arc<Destination>> {
        self.destinations
            .lock()
            .await
            .iter()
            .map(|(k, v)| (k.clone(), v.dest.clone()))
            .collect()
    }

    async fn start_destination(
        &self,
        config: &Config,
        section: &SectionConfig,
    ) -> Result<(), AppError> {
        // read before the build: a file changed in between restarts it
        // again at the next reload, never leaves it on older contents
        let files = file_contents(&registry::files_read(section, &config.base_dir));
        let mut dest = registry::build(section, &config.base_dir, &config.data_path())
            .map_err(|e| AppError::Config(ConfigErrors(vec![e])))?;
        let held = self.throttles.lock().unwrap().remove(&section.name);
        if let Some((wire, throttle)) = held {
            if wire == dest.wire_settings {
                dest.throttle = throttle;
            }
        }
        if !dest.common.enabled {
            tracing::info!(destination = %section.name, "destination disabled");
            self.disabled
                .lock()
                .unwrap()
                .insert(section.name.clone(), Arc::new(dest));
            return Ok(());
        }
        self.disabled.lock().unwrap().remove(&section.name);
        let cursor = self.ring.cursor(&section.name, dest.common.when_full)?;
        let dest = Arc::new(dest);
        let (stop, stop_rx) = watch::channel(false);
        let task = self.delivery.spawn(worker::run(
            dest.clone(),
            cursor,
            stop_rx,
            config.shutdown_grace,
        ));
        self.destinations.lock().await.insert(
            section.name.clone(),
            RunningDestination {
                section: section.clone(),
                files,
                dest,
                stop,
                task,
            },
        );
        self.note_syslog_hints().await;
        Ok(())
    }

    /// At start: deletes the checkpoints of destinations that are neither
    /// in the config file (enabled or not) nor among the admin API's, i.e.
    /// removed while the relay was stopped, as a reload deletes them. The
    /// API's are the ones in its store, started or not: a stored one that
    /// could not start (its CA file missing, say) keeps its place for when
    /// it is fixed.
    async fn forget_removed_destinations(&self, config: &Config) {
        let mut kept: Vec<String> = self.managed.lock().unwrap().keys().cloned().collect();
        let store = self.api.lock().unwrap().as_ref().map(|a| a.store());
        if let Some(store) = store {
            kept.extend(store.lock().await.keys().cloned());
        }
        let names: Vec<&str> = config
            .destinations
            .iter()
            .map(|d| d.name.as_str())
            .chain(kept.iter().map(String::as_str))
            .collect();
        match self.ring.forget_cursors_except(&names) {
            Ok(gone) => {
                for file in gone {
                    tracing::info!(checkpoint = %file.display(), "deleted the checkpoint of a destination no longer configured (one given its name later starts at the oldest record)");
                }
            }
            Err(e) => {
                tracing::error!("the checkpoints of removed destinations could not be deleted: {e}")
            }
        }
    }

    /// Deletes the checkpoint of destination `name`, stopped for good
    /// ([`Ring::forget_cursor`]). A checkpoint left behind is only logged:
    /// the destination is gone either way.
    fn forget_destination(&self, name: &str) {
        self.throttles.lock().unwrap().remove(name);
        if let Err(e) = self.ring.forget_cursor(name) {
            tracing::error!(destination = %name, "the checkpoint of a removed destination could not be deleted (a new destination of this name would start where it stopped): {e}");
        }
    }

    async fn stop_destination(&self, name: &str) {
        self.disabled.lock().unwrap().remove(name);
        let running = self.destinations.lock().await.remove(name);
        if let Some(r) = running {
            let _ = r.stop.send(true);
            let _ = r.task.await;
            let held = (r.dest.wire_settings.clone(), r.dest.throttle.clone());
            self.throttles
                .lock()
                .unwrap()
                .insert(name.to_string(), held);
            self.note_syslog_hints().await;
        }
    }

    /// Tells ingest whether syslog hints are wanted: they are while a
    /// running destination reads them.
    async fn note_syslog_hints(&self) {
        let wanted = self
            .destinations
            .lock()
            .await
            .values()
            .any(|d| d.dest.sink.reads_syslog_hint());
        self.syslog_hints.store(wanted, Ordering::Relaxed);
    }

    /// Whether ingest writes syslog hints now (see [`RingIngest`]).
    pub fn writes_syslog_hints(&self) -> bool {
        self.syslog_hints.load(Ordering::Relaxed)
    }

    async fn start_source(&self, config: &Config, section: &SectionConfig) -> Result<(), AppError> {
        let (stop, stop_rx) = watch::channel(false);
        let tz = config.timezone.parse().unwrap_or(chrono_tz::UTC);
        let ctx = SourceContext {
            ingest: Arc::new(RingIngest {
                ring: self.ring.clone(),
                syslog_hints: self.syslog_hints.clone(),
            }),
            shutdown: stop_rx,
            timezone: tz,
            base_dir: config.base_dir.clone(),
        };
        let source = sources::start(section, ctx).await?;
        tracing::info!(source = %section.name, kind = %section.kind, address = %source.local_addr, "source listening");
        self.sources.lock().await.insert(
            section.name.clone(),
            RunningSrc {
                section: section.clone(),
                stop,
                source,
            },
        );
        Ok(())
    }

    async fn stop_source(&self, name: &str) {
        let running = self.sources.lock().await.remove(name);
        if let Some(r) = running {
            let _ = r.stop.send(true);
            if tokio::time::timeout(Duration::from_secs(5), r.source.task)
                .await
                .is_err()
            {
                // what it read and had not put in the ring goes with it:
                // say how much (the gauge that showed it goes with the process)
                let queued_bytes = sources::queued_bytes(name);
                tracing::warn!(source = name, queued_bytes,
                    "source did not stop within 5s: what its connections read and had not put in the ring is lost, unless its senders send it again (an HTTP request in progress is answered 503)");
            }
        }
    }

    /// Re-reads the config file: destinations and sources that were added,
    /// removed or changed are started/stopped; unchanged ones keep running
    /// untouched. A config with errors is refused and nothing changes.
    pub async fn reload(&self) -> Result<(), AppError> {
        let path = self.config.lock().unwrap().file.clone();
        let mut new = load_config(&path)?;
        // a name the file now defines is the file's: the API's destination
        // of that name stops, and leaves the API's set once the reload is
        // done (the API may no longer change or delete it, and when the
        // file gives the name up it is gone, not started again from the
        // API's store)
        let shadowed: Vec<String> = {
            let managed = self.managed.lock().unwrap();
            let mut shadowed = Vec::new();
            for (name, section) in managed.iter() {
                if new.destinations.iter().any(|d| &d.name == name) {
                    shadowed.push(name.clone());
                } else {
                    new.destinations.push(section.clone());
                }
            }
            shadowed
        };
        let old = self.config.lock().unwrap().clone();
        // the ring was opened at start with the running [buffer] and
        // data_dir: they stay in force (and stay what the next reload
        // compares with) until a restart
        if new.buffer != old.buffer || new.data_dir != old.data_dir {
            tracing::warn!("[buffer] and data_dir changes take effect at the next restart; the running ones stay in force");
        }
        new.buffer = old.buffer.clone();
        new.data_dir = old.data_dir.clone();
        // the sources' messages against the running ring's segments
        // (`validate` held them against the file's)
        let misfits = validate::records_fit(&new);
        if !misfits.is_empty() {
            return Err(AppError::Config(ConfigErrors(misfits)));
        }
        // the file's destinations and the API's together: no file of two
        // (`validate` saw the file's alone)
        let all: Vec<&SectionConfig> = new.destinations.iter().collect();
        let conflicts = validate::files_in_conflict(&new.base_dir, &new.data_path(), &all);
        if !conflicts.is_empty() {
            return Err(AppError::Config(ConfigErrors(conflicts)));
        }
        // sources first, all or nothing: one that cannot start (its
        // address taken) puts back the ones this reload stopped, before any
        // destination changed (a new destination starts at the ring's oldest
        // record, so starting it after the sources misses nothing)
        let running: Vec<(String, SectionConfig)> = self
            .sources
            .lock()
            .await
            .iter()
            .map(|(k, v)| (k.clone(), v.section.clone()))
            .collect();
        // kept `syslog_tls` sources whose files changed (a renewed
        // certificate at the same path): their new server configurations,
        // made before anything changes, so a file that makes none refuses
        // the reload as `validate` would; put in use once the sources are
        let mut renewals = Vec::new();
        for (name, r) in self.sources.lock().await.iter() {
            let kept = new.sources.contains(&r.section);
            let Some(tls) = r.source.tls.as_ref().filter(|_| kept) else {
                continue;
            };
            match tls.renewed() {
                Ok(Some(renewed)) => renewals.push((name.clone(), tls.clone(), renewed)),
                Ok(None) => {}
                Err(e) => return Err(AppError::Config(ConfigErrors(vec![e]))),
            }
        }
        let mut stopped = Vec::new();
        for (name, section) in &running {
            if !new.sources.contains(section) {
                self.stop_source(name).await;
                stopped.push(section.clone());
            }
        }
        let mut started: Vec<String> = Vec::new();
        for s in &new.sources {
            if self.sources.lock().await.contains_key(&s.name) {
                continue;
            }
            if let Err(e) = self.start_source(&new, s).await {
                for name in &started {
                    self.stop_source(name).await;
                }
                for section in &stopped {
                    if let Err(e) = self.start_source(&old, section).await {
                        tracing::error!(source = %section.name, "reload: the source could not be restarted as it was: {e}");
                    }
                }
                return Err(e);
            }
            started.push(s.name.clone());
        }
        for (name, tls, renewed) in renewals {
            tls.renew(renewed);
            tracing::info!(source = %name, "reload: TLS files changed: new connections get the new certificate (open ones keep theirs)");
        }
        // destinations: a running one is kept only if its section is
        // unchanged, and so are the contents of the files it read (its TLS
        // files: a renewed client certificate needs a new connection)
        let running: Vec<(String, SectionConfig, bool)> = self
            .destinations
            .lock()
            .await
            .iter()
            .map(|(k, v)| {
                let files = registry::files_read(&v.section, &new.base_dir);
                let changed = file_contents(&files) != v.files;
                (k.clone(), v.section.clone(), changed)
            })
            .collect();
        for (name, section, files_changed) in &running {
            let kept = new.destinations.contains(section);
            if kept && *files_changed {
                tracing::info!(destination = %name, "reload: its TLS files changed: restarting");
            }
            if !kept || *files_changed {
                tracing::info!(destination = %name, "reload: stopping");
                self.stop_destination(name).await;
                // removed, or an API destination the file's replaces: a
                // destination of that name is a new one, from the oldest
                // record (a changed one goes on from its checkpoint)
                if shadowed.contains(name) || !new.destinations.iter().any(|d| &d.name == name) {
                    self.forget_destination(name);
                }
            }
        }
        for d in &new.destinations {
            if !self.destinations.lock().await.contains_key(&d.name) {
                tracing::info!(destination = %d.name, "reload: starting");
                self.start_destination(&new, d).await?;
            }
        }
        // a disabled destination the file no longer has is gone
        self.disabled
            .lock()
            .unwrap()
            .retain(|name, _| new.destinations.iter().any(|d| &d.name == name));
        self.give_to_the_file(&shadowed).await;
        self.reload_api(old.api.as_ref(), &mut new.api);
        *self.config.lock().unwrap() = new;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Applies a reloaded `[api]` to the running server: its tokens at once
    /// (a removed or demoted token must lose its rights now, not at a
    /// restart; a file without `[api]` leaves the running server none).
    /// What needs a new listener (another `address`, `[api]` added or
    /// removed) takes effect at the next restart: a warning says so at
    /// every reload until then, as for `[buffer]`, and `new` keeps the
    /// running listener's settings for the next reload to compare with.
    /// (Moving the listener live would leave the API on neither address
    /// when the new one cannot be bound, with no way to say so but a log.)
    fn reload_api(&self, old: Option<&ApiConfig>, new: &mut Option<ApiConfig>) {
        let Some(old) = old else {
            if new.take().is_some() {
                tracing::warn!("[api] is new: the admin API starts at the next restart");
            }
            return;
        };
        let file = new.take();
        let tokens = file.as_ref().map_or(&[][..], |a| &a.tokens[..]);
        if let Some(server) = self.api.lock().unwrap().as_ref() {
            if let Err(e) = server.set_tokens(tokens) {
                tracing::error!("reload: the admin API keeps its running tokens: {e}");
            }
        }
        match &file {
            None => {
                tracing::warn!(address = %old.address, "[api] was removed: the admin API accepts no token now and stops listening at the next restart")
            }
            Some(f) if f.address != old.address => {
                tracing::warn!(running = %old.address, configured = %f.address, "[api] address changes take effect at the next restart; the admin API keeps listening where it does (its tokens are reloaded)")
            }
            Some(_) => {}
        }
        *new = Some(ApiConfig {
            address: old.address.clone(),
            tokens: tokens.to_vec(),
        });
    }

    /// Drops API-managed destinations whose names the config file took
    /// over from the API's set and its store.
    async fn give_to_the_file(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        {
            let mut managed = self.managed.lock().unwrap();
            for name in names {
                managed.remove(name);
                tracing::warn!(destination = %name, "reload: the config file now defines this API-managed destination; the file's replaces it and the API's settings are dropped");
            }
        }
        let store = self.api.lock().unwrap().as_ref().map(|a| a.store());
        if let Some(store) = store {
            if let Err(e) = store.forget(names).await {
                tracing::error!("reload: API-managed destinations the config file took over could not be dropped from the store: {e}");
            }
        }
    }

    /// Stops intake, lets destinations finish in-flight batches within the
    /// grace period, checkpoints and flushes the ring.
    pub async fn shutdown(&self) -> Result<(), AppError> {
        if let Some(trim) = self.idle_trim.lock().unwrap().take() {
            trim.abort();
        }
        let api = self.api.lock().unwrap().take();
        if let Some(api) = api {
            api.stop().await;
        }
        let names: Vec<String> = self.sources.lock().await.keys().cloned().collect();
        for n in names {
            self.stop_source(&n).await;
        }
        self.ring.close()?;
        let names: Vec<String> = self.destinations.lock().await.keys().cloned().collect();
        let stops: Vec<_> = names.iter().map(|n| self.stop_destination(n)).collect();
        futures::future::join_all(stops).await;
        self.ring.sync()?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

impl crate::api::Backend for Relay {
    fn ring(&self) -> &Ring {
        &self.ring
    }
    fn destinations(&self) -> futures::future::BoxFuture<'_, BTreeMap<String, Arc<Destination>>> {
        Box::pin(Relay::destinations(self))
    }
    fn disabled_destinations(&self) -> BTreeMap<String, Arc<Destination>> {
        self.disabled.lock().unwrap().clone()
    }
    fn data_dir(&self) -> PathBuf {
        self.config.lock().unwrap().data_path()
    }
    fn in_config_file(&self, name: &str) -> bool {
        let in_config = self
            .config
            .lock()
            .unwrap()
            .destinations
            .iter()
            .any(|d| d.name == name);
        in_config && !self.managed.lock().unwrap().contains_key(name)
    }
    fn put_destination(
        &self,
        section: SectionConfig,
    ) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let config = self.config.lock().unwrap().clone();
            // build once first, so a bad change leaves the running one alone
            registry::build(&section, &config.base_dir, &config.data_path())
                .map_err(|e| e.to_string())?;
            // no file of another destination's, or of the relay's own state
            let managed: Vec<SectionConfig> =
                self.managed.lock().unwrap().values().cloned().collect();
            let mut others: Vec<&SectionConfig> = config.destinations.iter().collect();
            for m in &managed {
                if !others.iter().any(|d| d.name == m.name) {
                    others.push(m);
                }
            }
            others.retain(|d| d.name != section.name);
            others.push(&section);
            let own = format!("{}.", section.path());
            let conflicts =
                validate::files_in_conflict(&config.base_dir, &config.data_path(), &others);
            let own_error = |e: &crate::config::ConfigError| {
                e.path == section.path() || e.path.starts_with(&own)
            };
            if let Some(e) = conflicts.into_iter().find(own_error) {
                return Err(e.to_string());
            }
            self.stop_destination(&section.name).await;
            self.start_destination(&config, &section)
                .await
                .map_err(|e| e.to_string())?;
            self.managed
                .lock()
                .unwrap()
                .insert(section.name.clone(), section);
            Ok(())
        })
    }
    fn delete_destination<'a>(&'a self, name: &'a str) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            self.managed.lock().unwrap().remove(name);
            self.stop_destination(name).await;
            self.forget_destination(name);
        })
    }
}

fn log_recovery(r: &RecoveryReport) {
    tracing::info!(
        segments = r.segments.len(),
        records = r.records(),
        next_seq = r.next_seq,
        "ring opened"
    );
    if let Some((checkpoint, end)) = r.checkpoint_ahead {
        tracing::warn!(checkpoint_seq = checkpoint, ring_end_seq = end,
            "a destination's checkpoint is ahead of the ring's last record: the records below it count as delivered (right after a crash that lost the ring's tail after they were acknowledged; wrong if a checkpoint file was changed or copied from another relay)");
    }
    for q in &r.quarantined {
        tracing::error!(file = %q.file, reason = %q.reason, moved_to = %q.moved_to, salvageable = q.salvageable_records,
            "segment quarantined");
    }
    let (damaged, torn) = r.new_damage();
    if damaged > 0 || torn > 0 {
        tracing::warn!(
            torn_tail_bytes = torn,
            damaged_records = damaged,
            "ring damage repaired"
        );
    }
    if r.damaged_records() > damaged {
        tracing::info!(
            damaged_records = r.damaged_records() - damaged,
            "ring holds damage reported at an earlier start"
        );
    }
}

/// Trims the heap once per quiet spell (see [`memory`]) until the relay is
/// dropped or shut down.
async fn idle_trim(relay: std::sync::Weak<Relay>) {
    let mut idle = {
        let Some(r) = relay.upgrade() else { return };
        memory::IdleTrim::new(r.activity().await, std::time::Instant::now())
    };
    let mut tick = tokio::time::interval(memory::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(r) = relay.upgrade() else { return };
        let activity = r.activity().await;
        drop(r);
        if idle.observe(activity, std::time::Instant::now()) {
            let Ok((before, after)) = tokio::task::spawn_blocking(memory::trim).await else {
                return;
            };
            let released = before.zip(after).map_or(0, |(b, a)| b.saturating_sub(a));
            metrics::counter!("siem_relay_memory_trims_total").increment(1);
            metrics::counter!("siem_relay_memory_trimmed_bytes_total").increment(released);
            tracing::debug!(
                resident_before = before,
                resident_after = after,
                "relay quiet: free heap memory returned to the system"
            );
        }
    }
}

/// Runs the relay until SIGTERM or SIGINT; SIGHUP reloads.
pub async fn run(config: Config) -> Result<(), AppError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let relay = Relay::start(config).await?;
    tracing::info!("siem-relay running");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Err(e) = relay.reload().await {
                    tracing::error!("reload refused, configuration unchanged: {e}");
                }
            }
        }
    }
    tracing::info!("shutting down");
    relay.shutdown().await
}

/// Where the data dir's buffer lives (for the `buffer` commands).
pub fn buffer_dir(config: &Config) -> PathBuf {
    ring_settings(config).dir
}
