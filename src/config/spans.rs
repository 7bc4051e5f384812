//! The line of a key path from the TOML parser's spans: a path through an
//! array element (`api.tokens[2].role`), for which a text search finds only
//! the array's own key, and a path through a quoted key
//! (`destinations."siem.prod".bogus`), which a search for `[a.b]` headers
//! cannot find; also where each section starts, for the file's order.

use super::keypath::{self, Segment};
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

/// The 1-based line of the deepest key of `path` (`a.b[2].c`,
/// `destinations."siem.prod".batch_size`) that `text` holds and the parser
/// knows the start of: a value's line, or a table's header; `None` for
/// text the spans cannot be read from, or a path none of whose keys is in
/// it with a start.
pub fn path_line(text: &str, path: &str) -> Option<usize> {
    let start = Spans::parse(text)?.start_of(&keypath::split(path))?;
    Some(text[..start.min(text.len())].matches('\n').count() + 1)
}

/// The spans of a TOML text's tables and arrays, read once.
pub struct Spans(BTreeMap<String, Node>);

impl Spans {
    /// `None` for text that is no TOML.
    pub fn parse(text: &str) -> Option<Spans> {
        match toml::from_str::<Inner>(text).ok()?.0 {
            Kind::Table(top) => Some(Spans(top)),
            _ => None,
        }
    }

    /// Where the deepest key of `path` the text holds starts (its value,
    /// or its table's header), when the parser knows.
    pub fn start_of(&self, path: &[Segment]) -> Option<usize> {
        let mut table = &self.0;
        let mut found: Option<usize> = None;
        'walk: for segment in path {
            let Some(mut node) = table.get(&segment.key) else {
                break;
            };
            found = node.start.or(found);
            for &i in &segment.indices {
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
        found
    }

    /// Where the value at `path` itself starts in the text: its table's
    /// header, or for a table without one (`[a.b.c]` makes `a.b` one), its
    /// first key's; `None` when the text does not hold it.
    pub fn start_of_whole(&self, path: &[Segment]) -> Option<usize> {
        let (last, above) = path.split_last()?;
        let mut table = &self.0;
        for segment in above {
            match table.get(&segment.key).map(|n| &n.kind) {
                Some(Kind::Table(inner)) if segment.indices.is_empty() => table = inner,
                _ => return None,
            }
        }
        if !last.indices.is_empty() {
            return None;
        }
        table.get(&last.key).and_then(Node::first_start)
    }
}

impl Node {
    /// Where this node starts, or the first of its keys or items does.
    fn first_start(&self) -> Option<usize> {
        let inside = match &self.kind {
            Kind::Table(t) => t.values().filter_map(Node::first_start).min(),
            Kind::Array(items) => items.iter().filter_map(Node::first_start).min(),
            Kind::Leaf => None,
        };
        self.start.or(inside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_found_at_its_own_line() {
        let text = "[api]\naddress = \"x\"\ntokens = [\n  { name = \"a\" },\n\n  { name = \"b\", role = 1 },\n]\n\
                    [[destinations.d.rules]]\nx = 1\n[[destinations.d.rules]]\ny = 2\nz = 3\n";
        assert_eq!(path_line(text, "api.tokens[0].name"), Some(4));
        assert_eq!(path_line(text, "api.tokens[1].role"), Some(6));
        // a key the element does not have: the element's line
        assert_eq!(path_line(text, "api.tokens[1].token_sha256"), Some(6));
        assert_eq!(path_line(text, "destinations.d.rules[1].z"), Some(12));
        assert_eq!(path_line(text, "api.address"), Some(2));
        assert_eq!(path_line(text, "api.tokens[7].name"), Some(3));
        assert_eq!(path_line("not = [toml", "a[0]"), None);
    }

    /// A quoted key (a name with a dot) is one key: its section's line,
    /// and its keys' lines, are found.
    #[test]
    fn a_quoted_key_is_found_at_its_own_line() {
        let text = "data_dir = \"data\"\n[destinations.x]\ntype = \"e\"\n\
                    [destinations.\"a.b\"]\ntype = \"file\"\npath = \"o\"\nbogus = 1\n\
                    [destinations . 'siem prod']\ntype = \"x\"\n";
        assert_eq!(path_line(text, "destinations.\"a.b\".bogus"), Some(7));
        assert_eq!(path_line(text, "destinations.\"a.b\".type"), Some(5));
        // a key the section does not have: the section's header
        assert_eq!(
            path_line(text, "destinations.\"a.b\".rotate_bytes"),
            Some(4)
        );
        assert_eq!(path_line(text, "destinations.\"siem prod\""), Some(8));
        assert_eq!(path_line(text, "destinations.x.type"), Some(3));
        assert_eq!(path_line(text, "nothing.here"), None);
        let spans = Spans::parse(text).unwrap();
        let start = |p: &str| spans.start_of(&keypath::split(p));
        assert!(start("destinations.x") < start("destinations.\"a.b\""));
        assert!(start("destinations.\"a.b\"") < start("destinations.\"siem prod\""));
        let whole = |t: &str, p: &str| Spans::parse(t).unwrap().start_of_whole(&keypath::split(p));
        assert_eq!(
            whole(text, "destinations.\"a.b\""),
            text.find("[destinations.\"a.b\"]")
        );
        assert_eq!(whole(text, "destinations.\"a.b\".nope"), None);
        assert_eq!(whole(text, "nope.x"), None);
        // a section with no header of its own: its first key's start
        let t = "[d.y.filter]\nq = 1\n[d.x]\nz = 2\n";
        assert_eq!(whole(t, "d.y"), Some(0));
        assert!(whole(t, "d.x") > whole(t, "d.y"));
    }
}
