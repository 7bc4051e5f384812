//! A destination's `filter = { … }`: which events it gets.
//!
//! [`Filter::accepts`] runs once per event per destination, so it decides on
//! the record header first (category code, severity, tenant hash) and parses
//! the JSON body only when a body-level rule exists, with a borrowed view of
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
        match serde_json::from_slice::<BodyView<'_>>(body) {
            Ok(view) => self.body_accepts(&view, needs_category),
            // Unparseable body: body rules cannot judge it; keep it (see module doc).
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
        f.accepts(&enc.meta, &enc.body)
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
        assert!(!f.accepts(&meta, &enc.body));
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
}
