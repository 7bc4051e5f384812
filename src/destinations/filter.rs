//! A destination's `filter = { … }`: which events it gets.
//!
//! [`Filter::accepts`] runs once per event per destination, so it decides on
//! the record header first (category code, severity, tenant hash) and reads
//! the JSON body only when a body-level rule exists, into a borrowed view of
//! the few fields it needs.
//!
//! Rules (all must pass; an empty list means "all"):
//!
//! - `categories`: names must be upper case (`[A-Z][A-Z0-9_]*`, else a config
//!   error). Known names (`SECURITY`, …, see [`Category`]) are matched on the
//!   header code; other upper-case names (custom categories) are allowed and
//!   matched on the body's `category` when the header code is 0 ("other").
//! - `min_severity` or `severities` (not both): on the header severity.
//!   Unknown severity names are config errors.
//! - `tenants`: the header tenant hash rejects most events without parsing;
//!   a matching hash is confirmed against the body's `tenant_id`, so a CRC32C
//!   collision can never send one tenant's events to another's destination.
//! - `exclude_users`: exact match on `actor.id`, `actor.email` or
//!   `actor.service_account`.
//! - `exclude_paths`: globs on `resource.path` (`*` stops at `/`, `**` crosses it).
//! - `actions` / `exclude_actions`: globs on `action` (`*` crosses `.`). With
//!   `actions` set, an event without an action is left out.
//!
//! A body that is not valid JSON cannot be judged by body rules: those rules
//! are skipped and the header rules alone decide, so such an event is kept
//! rather than lost silently (the relay itself only writes valid bodies).
//!
//! Body rules read a canonical body (as `json_writer` writes it: compact,
//! fixed top-level key order) only up to the last field they need, by hand,
//! and stop before the large `metadata`/`syslog`/`source` objects; so in
//! such a body, damage after that point is not noticed. Any other body is
//! parsed whole by serde_json, as before.

use crate::config::ConfigError;
use crate::destinations::settings::FilterSettings;
use crate::event::{tenant_hash, Category, RecordMeta, Severity};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashSet;

/// A compiled filter. Cheap to share; `accepts` takes `&self`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Bit `code` set for each known category code kept; `None` = all categories.
    category_mask: Option<u16>,
    /// Custom (unknown) category names kept, matched on the body.
    custom_categories: Vec<String>,
    /// Bit `severity as u8` set for each kept severity; `None` = all.
    severity_mask: Option<u8>,
    /// Tenant hashes and ids kept; empty = all tenants.
    tenant_hashes: HashSet<u32>,
    tenants: HashSet<String>,
    exclude_users: HashSet<String>,
    exclude_paths: Option<GlobSet>,
    actions: Option<GlobSet>,
    exclude_actions: Option<GlobSet>,
}

/// The few body fields the body rules read, borrowed when unescaped.
#[derive(Debug, Default, Deserialize)]
struct BodyView<'a> {
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    actor: Option<ActorView<'a>>,
    #[serde(borrow, default)]
    resource: Option<ResourceView<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct ActorView<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service_account: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct ResourceView<'a> {
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
}

impl Filter {
    /// Compiles `settings`. `path` is the filter's key path
    /// (`destinations.NAME.filter`), used in error messages.
    pub fn new(settings: &FilterSettings, path: &str) -> Result<Filter, ConfigError> {
        let (category_mask, custom_categories) = compile_categories(&settings.categories, path)?;
        let severity_mask = compile_severities(settings, path)?;
        let tenants: HashSet<String> = settings.tenants.iter().cloned().collect();
        Ok(Filter {
            category_mask,
            custom_categories,
            severity_mask,
            tenant_hashes: tenants.iter().map(|t| tenant_hash(t)).collect(),
            tenants,
            exclude_users: settings.exclude_users.iter().cloned().collect(),
            exclude_paths: compile_globs(&settings.exclude_paths, true, path, "exclude_paths")?,
            actions: compile_globs(&settings.actions, false, path, "actions")?,
            exclude_actions: compile_globs(
                &settings.exclude_actions,
                false,
                path,
                "exclude_actions",
            )?,
        })
    }

    /// True when the filter keeps every event (no rule set).
    pub fn is_pass_all(&self) -> bool {
        self.category_mask.is_none()
            && self.severity_mask.is_none()
            && self.tenants.is_empty()
            && !self.has_body_rules()
    }

    /// Whether the event with header `meta` and JSON `body` passes.
    pub fn accepts(&self, meta: &RecordMeta, body: &[u8]) -> bool {
        if !self.header_accepts(meta) {
            return false;
        }
        let needs_category = self.needs_body_category(meta);
        if !needs_category && !self.has_body_rules() && self.tenants.is_empty() {
            return true;
        }
        match self.body_view(body, needs_category) {
            Some(view) => self.body_accepts(&view, needs_category),
            // Unparseable body: body rules cannot judge it; keep it (see module doc).
            None => true,
        }
    }

    /// The body fields the rules read: from the leading fields of a
    /// canonical body when it is one ([`scan_view`]), else by serde_json
    /// over the whole body; `None` when the body is not valid JSON.
    fn body_view<'b>(&self, body: &'b [u8], needs_category: bool) -> Option<BodyView<'b>> {
        let mut last = 0;
        if !self.tenants.is_empty() {
            last = RANK_TENANT;
        }
        if needs_category {
            last = RANK_CATEGORY;
        }
        if self.actions.is_some() || self.exclude_actions.is_some() {
            last = RANK_ACTION;
        }
        if !self.exclude_users.is_empty() {
            last = RANK_ACTOR;
        }
        if self.exclude_paths.is_some() {
            last = RANK_RESOURCE;
        }
        scan_view(body, last).or_else(|| serde_json::from_slice(body).ok())
    }

    /// The previous decision path (serde_json over the whole body), the
    /// reference for the differential tests.
    #[cfg(test)]
    fn accepts_reference(&self, meta: &RecordMeta, body: &[u8]) -> bool {
        if !self.header_accepts(meta) {
            return false;
        }
        let needs_category = self.needs_body_category(meta);
        if !needs_category && !self.has_body_rules() && self.tenants.is_empty() {
            return true;
        }
        match serde_json::from_slice::<BodyView<'_>>(body) {
            Ok(view) => self.body_accepts(&view, needs_category),
            Err(_) => true,
        }
    }

    fn has_body_rules(&self) -> bool {
        !self.exclude_users.is_empty()
            || self.exclude_paths.is_some()
            || self.actions.is_some()
            || self.exclude_actions.is_some()
    }

    /// Header-only rules; a custom-category event (code 0) passes here when
    /// custom categories are configured, and is judged on its body later.
    fn header_accepts(&self, meta: &RecordMeta) -> bool {
        if let Some(mask) = self.category_mask {
            let known = meta.category != 0 && mask & (1u16 << (meta.category & 15)) != 0;
            let maybe_custom = meta.category == 0 && !self.custom_categories.is_empty();
            if !known && !maybe_custom {
                return false;
            }
        }
        if let Some(mask) = self.severity_mask {
            if mask & (1u8 << (meta.severity as u8)) == 0 {
                return false;
            }
        }
        if !self.tenant_hashes.is_empty() && !self.tenant_hashes.contains(&meta.tenant_hash) {
            return false;
        }
        true
    }

    fn needs_body_category(&self, meta: &RecordMeta) -> bool {
        self.category_mask.is_some() && meta.category == 0
    }

    fn body_accepts(&self, view: &BodyView<'_>, check_category: bool) -> bool {
        if check_category {
            let cat = view.category.as_deref().unwrap_or("");
            if !self.custom_categories.iter().any(|c| c == cat) {
                return false;
            }
        }
        if !self.tenants.is_empty() {
            match view.tenant_id.as_deref() {
                Some(t) if self.tenants.contains(t) => {}
                _ => return false,
            }
        }
        if self.is_excluded_user(view.actor.as_ref()) {
            return false;
        }
        if let (Some(set), Some(p)) = (&self.exclude_paths, resource_path(view)) {
            if set.is_match(p) {
                return false;
            }
        }
        self.action_accepts(view.action.as_deref())
    }

    fn is_excluded_user(&self, actor: Option<&ActorView<'_>>) -> bool {
        let Some(a) = actor else { return false };
        if self.exclude_users.is_empty() {
            return false;
        }
        [&a.id, &a.email, &a.service_account]
            .into_iter()
            .flatten()
            .any(|v| self.exclude_users.contains(v.as_ref()))
    }

    fn action_accepts(&self, action: Option<&str>) -> bool {
        if let Some(keep) = &self.actions {
            match action {
                Some(a) if keep.is_match(a) => {}
                _ => return false,
            }
        }
        match (&self.exclude_actions, action) {
            (Some(drop), Some(a)) => !drop.is_match(a),
            _ => true,
        }
    }
}

/// Top-level keys in the order `json_writer` writes them (canonical bodies).
/// Returns a key's rank in that order, `None` for any other key.
fn canonical_rank(key: &[u8]) -> Option<u8> {
    Some(match key {
        b"event_id" => 0,
        b"timestamp" => 1,
        b"received_at" => 2,
        b"tenant_id" => RANK_TENANT,
        b"category" => RANK_CATEGORY,
        b"action" => RANK_ACTION,
        b"severity" => 6,
        b"outcome" => 7,
        b"actor" => RANK_ACTOR,
        b"resource" => RANK_RESOURCE,
        b"source_ip" => 10,
        b"user_agent" => 11,
        b"session_id" => 12,
        b"metadata" => 13,
        b"syslog" => 14,
        b"source" => 15,
        b"message" => 16,
        b"parse_error" => 17,
        _ => return None,
    })
}

/// Ranks of the fields `json_writer` always writes (`event_id`, `timestamp`,
/// `received_at`, `category`, `severity`), as a bit mask.
const MANDATORY: u32 = 1 << 0 | 1 << 1 | 1 << 2 | 1 << RANK_CATEGORY | 1 << 6;
const RANK_TENANT: u8 = 3;
const RANK_CATEGORY: u8 = 4;
const RANK_ACTION: u8 = 5;
const RANK_ACTOR: u8 = 8;
const RANK_RESOURCE: u8 = 9;

/// Reads the [`BodyView`] of a canonical body (compact, top-level keys
/// unescaped, known and in `json_writer` order, the always-written ones
/// present) up to the last field the rules need (rank `last`), and stops
/// there: the large `metadata`, `syslog` and `source` objects that follow
/// are not read. `None` when the body does not look canonical; the caller
/// then parses it with serde_json.
fn scan_view(body: &[u8], last: u8) -> Option<BodyView<'_>> {
    let mut s = Scan { b: body, i: 0 };
    s.eat(b'{')?;
    let mut view = BodyView::default();
    let mut next_rank = 0u8;
    let mut seen = 0u32;
    loop {
        let key = s.plain_key()?;
        s.eat(b':')?;
        let rank = canonical_rank(key)?;
        if rank < next_rank {
            // Out of order or repeated: not canonical.
            return None;
        }
        if rank > last {
            // Canonical order, and every field the writer always writes
            // before this one was there: nothing the rules read comes after.
            let before = (1u32 << rank) - 1;
            return (MANDATORY & before & !seen == 0).then_some(view);
        }
        next_rank = rank + 1;
        seen |= 1 << rank;
        match rank {
            RANK_TENANT => view.tenant_id = s.opt_string()?,
            RANK_CATEGORY => view.category = s.opt_string()?,
            RANK_ACTION => view.action = s.opt_string()?,
            RANK_ACTOR => view.actor = s.opt_object()?,
            RANK_RESOURCE => view.resource = s.opt_object()?,
            _ => s.skip_value()?,
        }
        match s.bump()? {
            b',' => {}
            b'}' => {
                // The whole body was read: only whitespace may follow, as
                // for serde_json.
                return s.b[s.i..]
                    .iter()
                    .all(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
                    .then_some(view);
            }
            _ => return None,
        }
    }
}

/// A cursor over a body for [`scan_view`]; every method returns `None` on
/// anything it does not expect.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn bump(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.bump()? == c).then_some(())
    }

    /// The index of the closing quote of the string whose opening quote is
    /// just before `self.i`, and whether the string has escapes.
    fn string_end(&self) -> Option<(usize, bool)> {
        let mut i = self.i;
        let mut escaped = false;
        loop {
            i += memchr::memchr2(b'"', b'\\', self.b.get(i..)?)?;
            if self.b[i] == b'"' {
                return Some((i, escaped));
            }
            escaped = true;
            i += 2;
        }
    }

    /// A key without escapes (canonical keys have none).
    fn plain_key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let (end, escaped) = self.string_end()?;
        if escaped {
            return None;
        }
        let key = &self.b[self.i..end];
        self.i = end + 1;
        Some(key)
    }

    /// A string or `null` value (`Some(None)`); `None` for anything else.
    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.b.get(self.i)? {
            b'"' => {
                let start = self.i;
                self.i += 1;
                let (end, escaped) = self.string_end()?;
                self.i = end + 1;
                if escaped {
                    // Rare: let serde_json unescape (and validate) it.
                    let s: String = serde_json::from_slice(&self.b[start..=end]).ok()?;
                    return Some(Some(Cow::Owned(s)));
                }
                let text = &self.b[start + 1..end];
                if text.iter().any(|&c| c < 0x20) {
                    return None;
                }
                Some(Some(Cow::Borrowed(std::str::from_utf8(text).ok()?)))
            }
            b'n' => self.null(),
            _ => None,
        }
    }

    /// An object (read by serde_json) or `null` value; `None` for anything else.
    fn opt_object<T: Deserialize<'a>>(&mut self) -> Option<Option<T>> {
        match self.b.get(self.i)? {
            b'{' => {
                let start = self.i;
                self.skip_value()?;
                Some(Some(serde_json::from_slice(&self.b[start..self.i]).ok()?))
            }
            b'n' => self.null(),
            _ => None,
        }
    }

    fn null<T>(&mut self) -> Option<Option<T>> {
        if self.b.get(self.i..self.i + 4)? == b"null" {
            self.i += 4;
            Some(None)
        } else {
            None
        }
    }

    /// Skips one value by its structure (strings, nesting), without
    /// validating it: values before the last needed field are not checked
    /// the way serde_json would (canonical bodies are valid JSON).
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.bump()? {
                b'"' => {
                    let (end, _) = self.string_end()?;
                    self.i = end + 1;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.checked_sub(1)?,
                b',' | b':' if depth == 0 => return None,
                b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => return None,
                _ if depth == 0 => {
                    // A number or literal: up to the next delimiter.
                    while !matches!(self.b.get(self.i)?, b',' | b'}' | b']') {
                        self.i += 1;
                    }
                    return Some(());
                }
                _ => {}
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

fn resource_path<'v>(view: &'v BodyView<'_>) -> Option<&'v str> {
    view.resource.as_ref()?.path.as_deref()
}

/// Known names → header-code mask; other upper-case names → custom list.
fn compile_categories(
    names: &[String],
    path: &str,
) -> Result<(Option<u16>, Vec<String>), ConfigError> {
    if names.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut mask = 0u16;
    let mut custom = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if !is_upper_case_name(name) {
            return Err(ConfigError::new(
                format!("{path}.categories[{i}]"),
                format!("category `{name}` must be upper case (A-Z, 0-9, _), e.g. `SECURITY`"),
            ));
        }
        match Category::code_of(name) {
            0 => custom.push(name.clone()),
            code => mask |= 1u16 << code,
        }
    }
    Ok((Some(mask), custom))
}

fn is_upper_case_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn compile_severities(settings: &FilterSettings, path: &str) -> Result<Option<u8>, ConfigError> {
    match (&settings.min_severity, settings.severities.is_empty()) {
        (Some(_), false) => Err(ConfigError::new(
            format!("{path}.severities"),
            "set either min_severity or severities, not both",
        )),
        (Some(min), true) => {
            let min = parse_severity(min, &format!("{path}.min_severity"))?;
            Ok(Some(
                Severity::ALL
                    .iter()
                    .filter(|s| **s >= min)
                    .fold(0u8, |m, s| m | (1u8 << (*s as u8))),
            ))
        }
        (None, false) => {
            let mut mask = 0u8;
            for (i, s) in settings.severities.iter().enumerate() {
                mask |= 1u8 << (parse_severity(s, &format!("{path}.severities[{i}]"))? as u8);
            }
            Ok(Some(mask))
        }
        (None, true) => Ok(None),
    }
}

fn parse_severity(s: &str, key: &str) -> Result<Severity, ConfigError> {
    s.parse::<Severity>().map_err(|e| {
        ConfigError::new(
            key,
            format!("{e}; expected one of debug, info, notice, warning, error, critical, alert, emergency"),
        )
    })
}

/// `None` for an empty list. `literal_separator`: `*` does not cross `/`.
fn compile_globs(
    patterns: &[String],
    literal_separator: bool,
    path: &str,
    key: &str,
) -> Result<Option<GlobSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = GlobBuilder::new(p)
            .literal_separator(literal_separator)
            .build()
            .map_err(|e| ConfigError::new(format!("{path}.{key}[{i}]"), e.to_string()))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| ConfigError::new(format!("{path}.{key}"), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Event, Resource};
    use proptest::prelude::*;

    const P: &str = "destinations.x.filter";

    fn filter(toml_src: &str) -> Filter {
        let s: FilterSettings = toml::from_str(toml_src).expect("settings");
        Filter::new(&s, P).expect("filter")
    }

    fn filter_err(toml_src: &str) -> ConfigError {
        let s: FilterSettings = toml::from_str(toml_src).expect("settings");
        Filter::new(&s, P).expect_err("must fail")
    }

    fn event(category: &str, severity: Severity) -> Event {
        Event::new(category, Some("user.login".into()), severity)
    }

    fn accepts(f: &Filter, ev: &Event) -> bool {
        let enc = ev.encode();
        f.accepts(&enc.meta, enc.body())
    }

    #[test]
    fn empty_filter_passes_all() {
        let f = filter("");
        assert!(f.is_pass_all());
        assert!(accepts(&f, &event("SECURITY", Severity::Debug)));
        assert!(f.accepts(&event("X", Severity::Info).meta(), b"not json"));
    }

    #[test]
    fn known_categories_on_header() {
        let f = filter(r#"categories = ["SECURITY", "AUTHENTICATION"]"#);
        assert!(!f.is_pass_all());
        assert!(accepts(&f, &event("SECURITY", Severity::Info)));
        assert!(accepts(&f, &event("AUTHENTICATION", Severity::Info)));
        assert!(!accepts(&f, &event("ADMIN", Severity::Info)));
        assert!(!accepts(&f, &event("CUSTOM", Severity::Info)));
        // Decided on the header alone: the body is not read.
        let meta = event("SECURITY", Severity::Info).meta();
        assert!(f.accepts(&meta, b"garbage"));
    }

    #[test]
    fn custom_categories_on_body() {
        let f = filter(r#"categories = ["BILLING_2", "ADMIN"]"#);
        assert!(accepts(&f, &event("BILLING_2", Severity::Info)));
        assert!(accepts(&f, &event("ADMIN", Severity::Info)));
        assert!(!accepts(&f, &event("BILLING", Severity::Info)));
        assert!(!accepts(&f, &event("SECURITY", Severity::Info)));
    }

    #[test]
    fn lower_case_category_is_a_config_error() {
        let e = filter_err(r#"categories = ["SECURITY", "security"]"#);
        assert_eq!(e.path, "destinations.x.filter.categories[1]");
        assert!(e.message.contains("upper case"), "{e}");
    }

    #[test]
    fn min_severity() {
        let f = filter(r#"min_severity = "warning""#);
        assert!(!accepts(&f, &event("SECURITY", Severity::Notice)));
        assert!(accepts(&f, &event("SECURITY", Severity::Warning)));
        assert!(accepts(&f, &event("SECURITY", Severity::Emergency)));
        let f = filter(r#"min_severity = "warn""#);
        assert!(accepts(&f, &event("SECURITY", Severity::Warning)));
    }

    #[test]
    fn severity_set() {
        let f = filter(r#"severities = ["info", "critical"]"#);
        assert!(accepts(&f, &event("SECURITY", Severity::Info)));
        assert!(accepts(&f, &event("SECURITY", Severity::Critical)));
        assert!(!accepts(&f, &event("SECURITY", Severity::Error)));
    }

    #[test]
    fn severity_errors_name_the_key() {
        let e = filter_err(r#"min_severity = "loud""#);
        assert_eq!(e.path, "destinations.x.filter.min_severity");
        assert!(e.message.contains("loud"), "{e}");
        let e = filter_err(r#"severities = ["info", "nope"]"#);
        assert_eq!(e.path, "destinations.x.filter.severities[1]");
        let e = filter_err("min_severity = \"info\"\nseverities = [\"info\"]");
        assert_eq!(e.path, "destinations.x.filter.severities");
    }

    #[test]
    fn tenants_on_header_confirmed_by_body() {
        let f = filter(r#"tenants = ["acme", "globex"]"#);
        let mut ev = event("SECURITY", Severity::Info);
        assert!(!accepts(&f, &ev), "no tenant");
        ev.tenant_id = Some("acme".into());
        assert!(accepts(&f, &ev));
        ev.tenant_id = Some("initech".into());
        assert!(!accepts(&f, &ev));
        // A header hash that matches but a body that names another tenant
        // (a hash collision, simulated) is refused.
        let enc = ev.encode();
        let mut meta = enc.meta;
        meta.tenant_hash = tenant_hash("acme");
        assert!(!f.accepts(&meta, enc.body()));
    }

    #[test]
    fn exclude_users_on_any_actor_field() {
        let f = filter(r#"exclude_users = ["svc-backup", "bob@example.com", "u-42"]"#);
        let mut ev = event("SECURITY", Severity::Info);
        assert!(accepts(&f, &ev), "no actor");
        for actor in [
            Actor {
                id: Some("u-42".into()),
                ..Default::default()
            },
            Actor {
                email: Some("bob@example.com".into()),
                ..Default::default()
            },
            Actor {
                service_account: Some("svc-backup".into()),
                ..Default::default()
            },
        ] {
            ev.actor = Some(actor);
            assert!(!accepts(&f, &ev), "{:?}", ev.actor);
        }
        ev.actor = Some(Actor {
            id: Some("u-43".into()),
            email: Some("alice@example.com".into()),
            ..Default::default()
        });
        assert!(accepts(&f, &ev));
    }

    #[test]
    fn exclude_paths_globs() {
        let f = filter(r#"exclude_paths = ["/tmp/*", "/var/cache/**"]"#);
        let mut ev = event("FILE_ACCESS", Severity::Info);
        assert!(accepts(&f, &ev), "no resource");
        let with_path = |ev: &mut Event, p: &str| {
            ev.resource = Some(Resource {
                path: Some(p.into()),
                ..Default::default()
            })
        };
        with_path(&mut ev, "/tmp/x");
        assert!(!accepts(&f, &ev));
        with_path(&mut ev, "/tmp/a/b");
        assert!(accepts(&f, &ev), "* does not cross /");
        with_path(&mut ev, "/var/cache/a/b/c");
        assert!(!accepts(&f, &ev));
        with_path(&mut ev, "/etc/passwd");
        assert!(accepts(&f, &ev));
    }

    #[test]
    fn actions_keep_and_exclude() {
        let f = filter(
            "actions = [\"user.*\", \"certificate.issue\"]\nexclude_actions = [\"user.heartbeat\"]",
        );
        let mut ev = event("SECURITY", Severity::Info);
        for (action, kept) in [
            (Some("user.login"), true),
            (Some("user.heartbeat"), false),
            (Some("certificate.issue"), true),
            (Some("certificate.revoke"), false),
            (None, false),
        ] {
            ev.action = action.map(String::from);
            assert_eq!(accepts(&f, &ev), kept, "{action:?}");
        }
        let f = filter(r#"exclude_actions = ["*.read"]"#);
        ev.action = None;
        assert!(accepts(&f, &ev), "no action is not excluded");
        ev.action = Some("file.read".into());
        assert!(!accepts(&f, &ev));
    }

    #[test]
    fn bad_glob_names_the_key() {
        let e = filter_err(r#"exclude_paths = ["/ok/*", "/bad/[x"]"#);
        assert_eq!(e.path, "destinations.x.filter.exclude_paths[1]");
        let e = filter_err(r#"actions = ["{a,b"]"#);
        assert_eq!(e.path, "destinations.x.filter.actions[0]");
    }

    #[test]
    fn unparseable_body_is_kept_when_header_passes() {
        let f = filter("min_severity = \"warning\"\nexclude_users = [\"bob\"]");
        let meta = event("SECURITY", Severity::Error).meta();
        assert!(f.accepts(&meta, b"{not json"));
        let meta = event("SECURITY", Severity::Info).meta();
        assert!(!f.accepts(&meta, b"{not json"), "header rules still apply");
    }

    #[test]
    fn escaped_strings_in_body_match() {
        let f = filter(r#"exclude_users = ["a\"b"]"#);
        let mut ev = event("SECURITY", Severity::Info);
        ev.actor = Some(Actor {
            id: Some("a\"b".into()),
            ..Default::default()
        });
        assert!(!accepts(&f, &ev));
    }

    /// Filters covering every body rule, alone and combined.
    const DIFF_FILTERS: &[&str] = &[
        r#"tenants = ["acme", "glo\"bex"]"#,
        r#"categories = ["BILLING_2", "SECURITY"]"#,
        r#"actions = ["user.*", "caf\u00e9.*"]"#,
        r#"exclude_actions = ["*.read"]"#,
        r#"exclude_users = ["svc-backup", "bob@example.com", "u-4\"2"]"#,
        r#"exclude_paths = ["/tmp/*", "/var/cache/**"]"#,
        "categories = [\"BILLING_2\"]\ntenants = [\"acme\"]\nexclude_users = [\"u-1\"]\nexclude_paths = [\"/tmp/*\"]\nactions = [\"user.*\"]",
    ];

    fn diff_filters() -> Vec<Filter> {
        DIFF_FILTERS.iter().map(|src| filter(src)).collect()
    }

    /// New and reference decisions agree on `body` for every filter, with a
    /// header that passes each filter's header rules.
    fn assert_same(filters: &[Filter], body: &[u8]) {
        for (f, src) in filters.iter().zip(DIFF_FILTERS) {
            for meta in [
                event("SECURITY", Severity::Info).meta(),
                event("BILLING_2", Severity::Info).meta(),
            ] {
                for tenant in ["acme", "glo\"bex"] {
                    let mut meta = meta;
                    meta.tenant_hash = tenant_hash(tenant);
                    assert_eq!(
                        f.accepts(&meta, body),
                        f.accepts_reference(&meta, body),
                        "filter {src:?}, body {}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
        }
    }

    fn pick(options: &[Option<&str>], i: u8) -> Option<String> {
        options[usize::from(i) % options.len()].map(String::from)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Canonical bodies of varied events: same decisions as serde_json.
        #[test]
        fn same_decisions_as_reference(picks in proptest::array::uniform12(any::<u8>())) {
            let strs = [
                None, Some("acme"), Some("glo\"bex"), Some("caf\u{e9}.x"), Some("a\\b\u{1}"),
                Some("user.login"), Some("file.read"), Some("bob@example.com"), Some("u-4\"2"),
                Some("/tmp/x"), Some("/var/cache/a/b"), Some(""), Some("svc-backup"),
                Some("u-1"), Some("😀"),
            ];
            let cats = ["SECURITY", "BILLING_2", "BILLING", "caf\u{e9}"];
            let mut ev = event(cats[usize::from(picks[0]) % cats.len()], Severity::Info);
            ev.action = pick(&strs, picks[1]);
            ev.tenant_id = pick(&strs, picks[2]);
            if picks[3] % 3 != 0 {
                ev.actor = Some(Actor {
                    id: pick(&strs, picks[4]),
                    email: pick(&strs, picks[5]),
                    service_account: pick(&strs, picks[6]),
                    kind: pick(&strs, picks[3]),
                });
            }
            if picks[7] % 3 != 0 {
                ev.resource = Some(Resource {
                    path: pick(&strs, picks[8]),
                    name: pick(&strs, picks[7]),
                    ..Default::default()
                });
            }
            ev.outcome = pick(&strs, picks[9]);
            ev.source_ip = pick(&strs, picks[10]);
            ev.message = pick(&strs, picks[11]);
            let body = ev.encode().into_body();
            assert_same(&diff_filters(), &body);
        }
    }

    #[test]
    fn same_decisions_as_reference_on_unusual_bodies() {
        let filters = diff_filters();
        let mut ev = event("BILLING_2", Severity::Info);
        ev.tenant_id = Some("acme".into());
        ev.actor = Some(Actor {
            id: Some("u-1".into()),
            ..Default::default()
        });
        let canonical = String::from_utf8(ev.encode().into_body()).expect("utf8");
        assert_same(&filters, canonical.as_bytes());
        for body in [
            // Reordered, repeated, unknown or escaped keys, whitespace.
            r#"{"action":"user.login","tenant_id":"acme","category":"BILLING_2"}"#,
            r#"{"tenant_id":"acme","tenant_id":"globex","category":"BILLING_2"}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","category":"X"}"#,
            r#"{"x":1,"tenant_id":"acme","category":"BILLING_2","action":"user.a"}"#,
            r#"{"tenant\u005fid":"acme","category":"BILLING_2"}"#,
            r#"{ "tenant_id":"acme","category":"BILLING_2"}"#,
            r#"{"tenant_id" :"acme","category":"BILLING_2"}"#,
            // Escaped values, null values, wrong types.
            r#"{"tenant_id":"ac\u006de","category":"BILLING\u005f2","action":"user.\"x"}"#,
            r#"{"tenant_id":null,"category":null,"action":null,"actor":null,"resource":null}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","action":7}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","actor":"u-1"}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","actor":{"id":"u-1","id":"u-2"}}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","resource":{"path":"/tmp/x","n":[1,{"a":"}"}]}}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2","actor":{"email":"bob@example.com"} }"#,
            "{\"tenant_id\":\"ac\u{1}me\",\"category\":\"BILLING_2\"}",
            // Whole body read: trailing bytes, truncation, empty.
            r#"{"tenant_id":"acme","category":"BILLING_2"}"#,
            r#"{"tenant_id":"acme","category":"BILLING_2"} "#,
            r#"{"tenant_id":"acme","category":"BILLING_2"}x"#,
            r#"{"tenant_id":"acme","category":"BILLING_2""#,
            r#"{"tenant_id":"acme","categ"#,
            r#"{"event_id":"e\"}","severity":"info","outcome":"ok","tenant_id":"acme"}"#,
            r#"{"event_id":1.5e3,"timestamp":[1,{"a":"]"}],"tenant_id":"acme"}"#,
            r#"{}"#,
            "",
            "not json",
            "[1]",
        ] {
            assert_same(&filters, body.as_bytes());
        }
        // Every truncation of a canonical body.
        for cut in 0..canonical.len() {
            assert_same(&filters, &canonical.as_bytes()[..cut]);
        }
        assert_same(
            &filters,
            b"{\"tenant_id\":\"ac\xffme\",\"category\":\"BILLING_2\"}",
        );
    }

    #[test]
    fn fields_after_the_last_needed_one_are_not_read() {
        // A canonical prefix is judged on its own: damage further on is not
        // seen (serde_json would have refused the body, and the event been
        // kept). The relay only writes valid bodies.
        let f = filter(r#"tenants = ["acme"]"#);
        let mut meta = event("SECURITY", Severity::Info).meta();
        meta.tenant_hash = tenant_hash("acme");
        let body = br#"{"event_id":"e","timestamp":"t","received_at":"r","tenant_id":"globex","category":"SECURITY","metadata":{oops"#;
        assert!(!f.accepts(&meta, body));
        assert!(f.accepts_reference(&meta, body));
    }
}
