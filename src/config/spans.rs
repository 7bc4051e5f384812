//! The line of a key path that goes through an array element
//! (`api.tokens[2].role`), from the TOML parser's spans: the text search of
//! [`key_line`](super::key_line) finds only the array's own key, the line
//! where the array starts, whichever element is at fault.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

// How `toml` hands a value's span to `toml::Spanned` (serde_spanned's
// names): a struct of these fields, asked for by name. `toml::Spanned`
// itself fails on a table without a span (`[a.b]` makes `a` one), so the
// walk below asks for the span and takes the value without one too.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";

/// A TOML value as its tables and arrays, with where it starts in the
/// text when the parser knows.
struct Node {
    start: Option<usize>,
    kind: Kind,
}

enum Kind {
    Table(BTreeMap<String, Node>),
    Array(Vec<Node>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, &[START, END, VALUE], NodeVisitor { spanned: true })
    }
}

/// A spanned node's value (asking for its span again would repeat).
struct Inner(Kind);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = d.deserialize_any(NodeVisitor { spanned: false })?;
        Ok(Inner(node.kind))
    }
}

/// Reads a node; `spanned`: the map may be the span's (`START` first).
struct NodeVisitor {
    spanned: bool,
}

fn leaf<E>() -> Result<Node, E> {
    Ok(Node {
        start: None,
        kind: Kind::Leaf,
    })
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        leaf()
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        leaf()
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        leaf()
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        leaf()
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        leaf()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node {
            start: None,
            kind: Kind::Array(items),
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut table = BTreeMap::new();
        let mut start = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                START if self.spanned => start = Some(map.next_value::<usize>()?),
                END if self.spanned => {
                    map.next_value::<usize>()?;
                }
                VALUE if self.spanned => {
                    let Inner(kind) = map.next_value()?;
                    return Ok(Node { start, kind });
                }
                _ => {
                    table.insert(key, map.next_value::<Node>()?);
                }
            }
        }
        Ok(Node {
            start: None,
            kind: Kind::Table(table),
        })
    }
}

/// The 1-based line of the deepest value of `path` (`a.b[2].c`) that
/// `text` holds and the parser knows the start of, when the path goes
/// through an array element; `None` for a path without one, or text the
/// spans cannot be read from.
pub fn element_line(text: &str, path: &str) -> Option<usize> {
    if !path.contains('[') {
        return None;
    }
    let top = toml::from_str::<Inner>(text).ok()?;
    let Kind::Table(top) = &top.0 else {
        return None;
    };
    let mut table = top;
    let mut found: Option<usize> = None;
    'walk: for part in path.split('.') {
        let mut steps = part.split('[');
        let key = steps.next().unwrap_or_default();
        let Some(mut node) = table.get(key) else {
            break;
        };
        found = node.start.or(found);
        for index in steps {
            let i: usize = match index.strip_suffix(']').map(str::parse) {
                Some(Ok(i)) => i,
                _ => break 'walk,
            };
            match &node.kind {
                Kind::Array(items) if i < items.len() => node = &items[i],
                _ => break 'walk,
            }
            found = node.start.or(found);
        }
        match &node.kind {
            Kind::Table(inner) => table = inner,
            _ => break,
        }
    }
    let start = found?;
    Some(text[..start.min(text.len())].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_found_at_its_own_line() {
        let text = "[api]\naddress = \"x\"\ntokens = [\n  { name = \"a\" },\n\n  { name = \"b\", role = 1 },\n]\n\
                    [[destinations.d.rules]]\nx = 1\n[[destinations.d.rules]]\ny = 2\nz = 3\n";
        assert_eq!(element_line(text, "api.tokens[0].name"), Some(4));
        assert_eq!(element_line(text, "api.tokens[1].role"), Some(6));
        // a key the element does not have: the element's line
        assert_eq!(element_line(text, "api.tokens[1].token_sha256"), Some(6));
        assert_eq!(element_line(text, "destinations.d.rules[1].z"), Some(12));
        assert_eq!(element_line(text, "api.address"), None);
        assert_eq!(element_line(text, "api.tokens[7].name"), Some(3));
        assert_eq!(element_line("not = [toml", "a[0]"), None);
    }
}
