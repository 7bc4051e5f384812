//! JSON on the direct path: the values of a JSON MSG or HTTP object (from
//! the borrowed scanner or simd-json), how their members override the
//! canonical fields, and how they are written into the record body.

use super::*;

/// The MSG text to try as a JSON object (as `normalize` does: after a BOM,
/// trimmed, starting with `{`).
pub(super) fn json_candidate(msg: &str) -> Option<&str> {
    let body = strip_bom(msg).trim();
    body.starts_with('{').then_some(body)
}

/// A value of a JSON MSG or HTTP object: a node of simd-json's tree, or
/// what the scanner ([`json_msg`]) read, which leaves nested objects and
/// arrays as text until they are used.
#[derive(Clone, Copy)]
pub(super) enum Json<'v> {
    Simd(&'v BorrowedValue<'v>),
    Scanned(json_msg::Value<'v>),
}

/// An object member: the (decoded) key and its value.
pub(super) type Member<'v> = (Cow<'v, str>, Json<'v>);

impl<'v> Json<'v> {
    /// A string's text.
    fn as_str(self) -> Option<Cow<'v, str>> {
        match self {
            Json::Simd(BorrowedValue::String(s)) => Some(Cow::Borrowed(s.as_ref())),
            Json::Scanned(json_msg::Value::Str(s)) => Some(s.decoded()),
            _ => None,
        }
    }

    /// A string, or a number as text (`normalize`'s `text`).
    fn text(self) -> Option<Cow<'v, str>> {
        match self {
            Json::Simd(BorrowedValue::Static(n)) => number(n).map(|n| Cow::Owned(n.to_string())),
            // The scanner's integers are written as serde_json prints them.
            Json::Scanned(json_msg::Value::Int(n)) => Some(Cow::Borrowed(n)),
            _ => self.as_str(),
        }
    }

    /// A scalar as the `serde_json::Value` the general path would hold.
    fn scalar(self) -> Option<Value> {
        match self {
            Json::Simd(v) => scalar(v),
            Json::Scanned(json_msg::Value::Object(_) | json_msg::Value::Array(_)) => None,
            Json::Scanned(_) => self.to_serde(),
        }
    }

    /// The `serde_json::Value` the general path holds; `None` for an object
    /// with a repeated key (which one wins depends on the map).
    fn to_serde(self) -> Option<Value> {
        let v = match self {
            Json::Simd(v) => return to_serde(v),
            Json::Scanned(v) => v,
        };
        Some(match v {
            json_msg::Value::Null => Value::Null,
            json_msg::Value::True => Value::Bool(true),
            json_msg::Value::False => Value::Bool(false),
            json_msg::Value::Int(n) => Value::Number(int_number(n)?),
            json_msg::Value::Str(s) => Value::String(s.decoded().into_owned()),
            json_msg::Value::Array(_) => Value::Array(
                self.items()?
                    .into_iter()
                    .map(Json::to_serde)
                    .collect::<Option<_>>()?,
            ),
            json_msg::Value::Object(_) => {
                let mut m = serde_json::Map::new();
                for (k, v) in self.members()? {
                    if m.insert(k.into_owned(), v.to_serde()?).is_some() {
                        return None;
                    }
                }
                Value::Object(m)
            }
        })
    }

    fn is_null(self) -> bool {
        matches!(
            self,
            Json::Simd(BorrowedValue::Static(StaticNode::Null))
                | Json::Scanned(json_msg::Value::Null)
        )
    }

    /// Whether no object in the value has a key twice (what
    /// [`Json::to_serde`] checks, without building the value).
    fn unique_keys(self) -> bool {
        if let Some(mut members) = self.members() {
            return sort_unique(&mut members) && members.iter().all(|(_, v)| v.unique_keys());
        }
        match self.items() {
            Some(items) => items.iter().all(|v| v.unique_keys()),
            None => true,
        }
    }

    /// An object's members, in the order written (`None`: not an object).
    fn members(self) -> Option<Vec<Member<'v>>> {
        match self {
            Json::Simd(BorrowedValue::Object(obj)) => Some(simd_members(obj)),
            Json::Scanned(json_msg::Value::Object(text)) => scanned_members(text),
            _ => None,
        }
    }

    /// An array's items (`None`: not an array).
    fn items(self) -> Option<Vec<Json<'v>>> {
        match self {
            Json::Simd(BorrowedValue::Array(items)) => Some(items.iter().map(Json::Simd).collect()),
            Json::Scanned(json_msg::Value::Array(text)) => {
                let mut items = Vec::new();
                json_msg::array(text, |v| items.push(Json::Scanned(v)))?;
                Some(items)
            }
            _ => None,
        }
    }
}

/// The members of a simd-json object.
pub(super) fn simd_members<'v>(obj: &'v simd_json::borrowed::Object<'v>) -> Vec<Member<'v>> {
    obj.iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_ref()), Json::Simd(v)))
        .collect()
}

/// The members of the JSON object `text` as the scanner reads them; `None`
/// for what it leaves to simd-json.
pub(super) fn scanned_members(text: &str) -> Option<Vec<Member<'_>>> {
    let mut members = SPARE_MEMBERS.with(|s| s.take(16));
    if json_msg::object(text, |k, v| members.push((k.decoded(), Json::Scanned(v)))).is_none() {
        SPARE_MEMBERS.with(|s| s.keep(members));
        return None;
    }
    Some(members)
}

/// Sorts `members` by key, as a `serde_json::Map` iterates; false when a
/// key is repeated (which one wins depends on the map: the general path's).
pub(super) fn sort_unique(members: &mut [Member<'_>]) -> bool {
    members.sort_unstable_by(|a, b| key_order(&a.0, &b.0));
    !members.windows(2).any(|w| w[0].0 == w[1].0)
}

/// `a.cmp(b)`, deciding keys that differ in their first byte (most do)
/// without a `memcmp` call.
#[inline]
pub(super) fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Applies the members of a JSON MSG or object in the order
/// `normalize::apply_json` does (sorted, as a `serde_json::Map` iterates);
/// the ones it does not take become `ov.metadata`. `None`: leave it to the
/// general path.
pub(super) fn apply_json<'v>(ov: &mut Overrides<'v>, mut members: Vec<Member<'v>>) -> Option<()> {
    if !sort_unique(&mut members) {
        return None;
    }
    // The members of a `metadata` object, sorted.
    let mut inner = Vec::new();
    // Members not taken move to the front, in order.
    let mut kept = 0;
    for i in 0..members.len() {
        if !apply_field(ov, &members[i].0, members[i].1, &mut inner)? {
            members.swap(kept, i);
            kept += 1;
        }
    }
    members.truncate(kept);
    ov.metadata = members;
    if !inner.is_empty() {
        // The general path inserts into one map in key order, the `metadata`
        // object's members when it reaches the key "metadata": for a key both
        // at the top level and in that object the later insert wins, so the
        // inner one below "metadata" and the top-level one above.
        ov.metadata.append(&mut inner);
        ov.metadata.sort_by(|a, b| key_order(&a.0, &b.0)); // stable: top level first
        ov.metadata.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            if *later.0 < *"metadata" {
                std::mem::swap(later, earlier);
            }
            true
        });
    }
    Some(())
}

/// Applies one member as `normalize::apply_field` does; whether it was
/// taken (false: it belongs in metadata). A `metadata` object's members go
/// to `inner`. `None`: leave the event to the general path.
pub(super) fn apply_field<'v>(
    ov: &mut Overrides<'v>,
    key: &str,
    value: Json<'v>,
    inner: &mut Vec<Member<'v>>,
) -> Option<bool> {
    Some(match key {
        // as `normalize::apply_field`: a blank id is no id
        "event_id" => match value.text() {
            Some(t) if t.trim().is_empty() => true,
            t => set(&mut ov.event_id, t),
        },
        // a string read where it lies; other scalars as the general path reads them
        "timestamp" => set(
            &mut ov.timestamp_ms,
            match value.as_str() {
                Some(s) => str_time_ms(&s),
                None => value.scalar().as_ref().and_then(json_time_ms),
            },
        ),
        "tenant_id" => set(&mut ov.tenant_id, value.text()),
        "action" => set(&mut ov.action, value.text()),
        "outcome" => set(&mut ov.outcome, value.text()),
        "category" => set(&mut ov.category, value.as_str().map(ascii_uppercase)),
        "severity" => set(
            &mut ov.severity,
            match value.as_str() {
                Some(s) => s.parse().ok(),
                None => value.scalar().as_ref().and_then(json_severity),
            },
        ),
        "source_ip" | "ip" => set(&mut ov.source_ip, value.text()),
        "user_agent" => set(&mut ov.user_agent, value.text()),
        "session_id" => set(&mut ov.session_id, value.text()),
        "message" => set(&mut ov.message, value.text()),
        "actor" => {
            let from_serde = |a: Actor| [a.kind, a.id, a.email, a.service_account].map(owned);
            match struct_value(value, ACTOR_FIELDS, from_serde)? {
                Some(a) => {
                    merge_fields(actor(ov), a);
                    true
                }
                None => false,
            }
        }
        "resource" => {
            let from_serde = |r: Resource| [r.kind, r.id, r.name, r.path].map(owned);
            match struct_value(value, RESOURCE_FIELDS, from_serde)? {
                Some(r) => {
                    merge_fields(resource(ov), r);
                    true
                }
                None => false,
            }
        }
        "user_id" => set_text(ov, value, |o| &mut actor(o)[ACTOR_ID]),
        "user_email" => set_text(ov, value, |o| &mut actor(o)[ACTOR_EMAIL]),
        "service_account" => set_text(ov, value, |o| &mut actor(o)[ACTOR_SERVICE_ACCOUNT]),
        "resource_path" => set_text(ov, value, |o| &mut resource(o)[RESOURCE_PATH]),
        "metadata" => match value.members() {
            Some(mut members) => {
                if !sort_unique(&mut members) {
                    return None;
                }
                *inner = members;
                ov.metadata_object = true;
                true
            }
            None => false,
        },
        _ => false,
    })
}

/// An `actor` or `resource` value as `normalize::apply_actor` /
/// `apply_resource` read it (`Some(None)`: not taken, it goes to metadata
/// whole; `None`: the general path decides). An object is read with
/// [`object_fields`], without building a `serde_json::Value`: its text
/// fields `names`, in `T`'s order, borrowed from the input where they hold
/// no escape; any other value as `serde_json::from_value::<T>` reads the
/// `serde_json::Value` the general path holds.
pub(super) fn struct_value<'v, T: serde::de::DeserializeOwned>(
    value: Json<'v>,
    names: [&str; 4],
    from_serde: fn(T) -> Fields<'static>,
) -> Option<Option<Fields<'v>>> {
    match value.members() {
        Some(members) => object_fields(members, names),
        None => Some(
            serde_json::from_value::<T>(value.to_serde()?)
                .ok()
                .map(from_serde),
        ),
    }
}

/// The fields `names` of an object as `normalize::struct_members` reads
/// them: a string, or a number as its text (`null` is an absent field);
/// `None` for a repeated key at any depth, a key not in `names` or a field
/// that is no text (a bool, an object, an array): the general path keeps
/// those in `metadata`.
pub(super) fn object_fields<'v>(
    mut members: Vec<Member<'v>>,
    names: [&str; 4],
) -> Option<Option<Fields<'v>>> {
    if !sort_unique(&mut members) || !members.iter().all(|(_, v)| v.unique_keys()) {
        return None;
    }
    let mut fields = [None, None, None, None];
    for (key, v) in members {
        // a member the schema has no field for goes to metadata: the
        // general path places it
        let i = names.iter().position(|n| *n == key)?;
        fields[i] = match v.text() {
            Some(s) => Some(s),
            None if v.is_null() => None,
            None => return None,
        };
    }
    Some(Some(fields))
}

/// `s` in ASCII upper case (borrowed when it already is).
pub(super) fn ascii_uppercase(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().any(|c| c.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else {
        s
    }
}

/// An `actor` or `resource` object's string fields, in the order of
/// [`ACTOR_FIELDS`] or [`RESOURCE_FIELDS`], borrowed from the input where
/// it allows.
pub(super) type Fields<'v> = [Option<Cow<'v, str>>; 4];

/// Where in [`Fields`] the members [`ACTOR_FIELDS`] and [`RESOURCE_FIELDS`]
/// name go that flat keys (`user_id`, `resource_path`, …) also set.
pub(super) const ACTOR_ID: usize = 1;
pub(super) const ACTOR_EMAIL: usize = 2;
pub(super) const ACTOR_SERVICE_ACCOUNT: usize = 3;
pub(super) const RESOURCE_PATH: usize = 3;
const _: () = {
    assert!(matches!(ACTOR_FIELDS[ACTOR_ID].as_bytes(), b"id"));
    assert!(matches!(ACTOR_FIELDS[ACTOR_EMAIL].as_bytes(), b"email"));
    assert!(matches!(
        ACTOR_FIELDS[ACTOR_SERVICE_ACCOUNT].as_bytes(),
        b"service_account"
    ));
    assert!(matches!(RESOURCE_FIELDS[RESOURCE_PATH].as_bytes(), b"path"));
};

pub(super) fn owned(s: Option<String>) -> Option<Cow<'static, str>> {
    s.map(Cow::Owned)
}

/// Takes the fields `newer` sets and keeps the others (`Actor::merge`).
pub(super) fn merge_fields<'v>(into: &mut Fields<'v>, newer: Fields<'v>) {
    for (field, new) in into.iter_mut().zip(newer) {
        if new.is_some() {
            *field = new;
        }
    }
}

/// The object `json_writer::actor` / `resource` writes for these fields.
pub(super) fn write_fields(o: &mut Vec<u8>, names: [&str; 4], fields: &Fields<'_>) {
    str_fields(o, names, fields.each_ref().map(|v| v.as_deref()));
}

/// Sets the field `slot` picks to `value`'s text; whether it had one (else
/// the member stays in metadata, and no `actor`/`resource` object is made).
pub(super) fn set_text<'v>(
    ov: &mut Overrides<'v>,
    value: Json<'v>,
    slot: for<'a> fn(&'a mut Overrides<'v>) -> &'a mut Option<Cow<'v, str>>,
) -> bool {
    value.text().map(|t| *slot(ov) = Some(t)).is_some()
}

pub(super) fn actor<'a, 'v>(ov: &'a mut Overrides<'v>) -> &'a mut Fields<'v> {
    ov.actor.get_or_insert_with(Default::default)
}

pub(super) fn resource<'a, 'v>(ov: &'a mut Overrides<'v>) -> &'a mut Fields<'v> {
    ov.resource.get_or_insert_with(Default::default)
}

/// The `serde_json::Value` the general path holds for `v`; `None` for an
/// object with a repeated key (which one wins depends on the map).
pub(super) fn to_serde(v: &BorrowedValue<'_>) -> Option<Value> {
    Some(match v {
        BorrowedValue::Array(items) => {
            Value::Array(items.iter().map(to_serde).collect::<Option<_>>()?)
        }
        BorrowedValue::Object(obj) => {
            let mut m = serde_json::Map::new();
            for (k, v) in obj.iter() {
                if m.insert(k.to_string(), to_serde(v)?).is_some() {
                    return None;
                }
            }
            Value::Object(m)
        }
        other => scalar(other)?,
    })
}

/// Stores `v` when there is one; whether there was.
pub(super) fn set<T>(slot: &mut Option<T>, v: Option<T>) -> bool {
    match v {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

/// A scalar as the `serde_json::Value` the general path would hold.
pub(super) fn scalar(v: &BorrowedValue<'_>) -> Option<Value> {
    match v {
        BorrowedValue::String(s) => Some(Value::String(s.to_string())),
        BorrowedValue::Static(StaticNode::Bool(b)) => Some(Value::Bool(*b)),
        BorrowedValue::Static(StaticNode::Null) => Some(Value::Null),
        BorrowedValue::Static(n) => number(n).map(Value::Number),
        _ => None,
    }
}

pub(super) fn number(n: &StaticNode) -> Option<Number> {
    match *n {
        StaticNode::I64(i) => Some(Number::from(i)),
        StaticNode::U64(u) => Some(Number::from(u)),
        StaticNode::F64(f) => Number::from_f64(f),
        _ => None,
    }
}

/// The number of a scanned integer, as simd-json reads it: `u64` when not
/// negative, else `i64`.
pub(super) fn int_number(n: &str) -> Option<Number> {
    match n.parse::<u64>() {
        Ok(u) => Some(Number::from(u)),
        Err(_) => n.parse::<i64>().ok().map(Number::from),
    }
}

/// Writes a metadata value as the canonical writer writes the
/// `serde_json::Value` the general path would hold (object keys sorted).
/// `None` for an object with a repeated key.
pub(super) fn write_value(o: &mut Vec<u8>, v: &Json<'_>) -> Option<()> {
    match *v {
        Json::Simd(BorrowedValue::Array(_)) | Json::Scanned(json_msg::Value::Array(_)) => {
            o.push(b'[');
            for (i, item) in v.items()?.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                write_value(o, item)?;
            }
            o.push(b']');
        }
        Json::Simd(BorrowedValue::Object(obj)) => write_object(o, simd_members(obj))?,
        Json::Scanned(json_msg::Value::Object(text)) => write_object(o, scanned_members(text)?)?,
        Json::Simd(BorrowedValue::String(s)) => string(o, s),
        Json::Simd(BorrowedValue::Static(StaticNode::U64(u))) => uint(o, *u),
        Json::Simd(BorrowedValue::Static(n)) => match n {
            StaticNode::Null => o.extend_from_slice(b"null"),
            StaticNode::Bool(true) => o.extend_from_slice(b"true"),
            StaticNode::Bool(false) => o.extend_from_slice(b"false"),
            n => write_serde_value(o, &Value::Number(number(n)?)),
        },
        Json::Scanned(json_msg::Value::Str(s)) => string(o, &s.decoded()),
        Json::Scanned(json_msg::Value::Null) => o.extend_from_slice(b"null"),
        Json::Scanned(json_msg::Value::True) => o.extend_from_slice(b"true"),
        Json::Scanned(json_msg::Value::False) => o.extend_from_slice(b"false"),
        Json::Scanned(json_msg::Value::Int(n)) => o.extend_from_slice(n.as_bytes()),
    }
    Some(())
}

/// `{"key":value,…}` with the keys sorted; `None` for a repeated key.
pub(super) fn write_object(o: &mut Vec<u8>, mut members: Vec<Member<'_>>) -> Option<()> {
    if !sort_unique(&mut members) {
        return None;
    }
    write_members(o, &members)
}

/// `{"key":value,…}` for members already in order.
pub(super) fn write_members(o: &mut Vec<u8>, members: &[Member<'_>]) -> Option<()> {
    o.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            o.extend_from_slice(b",\"");
        } else {
            o.push(b'"');
        }
        string_contents(o, k);
        o.extend_from_slice(b"\":");
        // the common scalars here, sparing the recursive writer's frame
        match v {
            Json::Scanned(json_msg::Value::Int(n)) => o.extend_from_slice(n.as_bytes()),
            Json::Scanned(json_msg::Value::Str(s)) => string(o, &s.decoded()),
            _ => write_value(o, v)?,
        }
    }
    o.push(b'}');
    Some(())
}
