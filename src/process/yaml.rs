//! YAML text as Grafana's driver reads it: `gopkg.in/yaml.v2`.
//!
//! A document becomes a [`Node`] tree whose plain scalars are resolved as
//! yaml.v2 resolves them (YAML 1.1: `yes`/`on` are booleans, `0777` is
//! octal, `~` is null), keeping the text as written, because Grafana decodes
//! the same value two ways: yaml.v2 into a typed field takes any scalar's
//! text as a string (relabel configs), while mapstructure (stage configs)
//! wants the resolved type. Anchors, aliases and `<<` merge keys work.
//!
//! The text comes from users' options: parsing is bounded in depth and in
//! the nodes an expansion of aliases may produce, so a "billion laughs"
//! document is refused instead of filling memory. yaml-rust2 does the
//! scanning; this file only builds the tree and resolves scalars.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may produce, aliases expanded.
pub const MAX_NODES: usize = 200_000;

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Keys in document order (yaml.v2 decodes into Go maps; order does not
    /// matter to the stages, but it makes messages and tests stable).
    Map(Vec<(Node, Node)>),
}

/// A scalar: its text as written and what yaml.v2 resolves it to.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub value: Resolved,
}

/// What a scalar is, after yaml.v2's resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX` (yaml.v2 gives a `uint64`).
    Uint(u64),
    Float(f64),
    Str,
}

impl Node {
    pub fn null() -> Node {
        Node::Scalar(Scalar {
            text: String::new(),
            value: Resolved::Null,
        })
    }

    pub fn string(text: &str) -> Node {
        Node::Scalar(Scalar {
            text: text.to_string(),
            value: Resolved::Str,
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(
            self,
            Node::Scalar(Scalar {
                value: Resolved::Null,
                ..
            })
        )
    }

    /// The text of a scalar that resolves to a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(Scalar {
                text,
                value: Resolved::Str,
            }) => Some(text),
            _ => None,
        }
    }

    /// What kind of value this is, in Go's words, for messages
    /// ("expected a string, got a sequence").
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Scalar(s) => match s.value {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) | Resolved::Uint(_) => "an integer",
                Resolved::Float(_) => "a number",
                Resolved::Str => "a string",
            },
        }
    }

    /// The value of `key` in a mapping whose keys are strings.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| scalar_text(k) == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The text of any scalar (yaml.v2 map keys are compared by value; for the
/// string keys of configs that is the text).
pub fn scalar_text(node: &Node) -> Option<&str> {
    match node {
        Node::Scalar(s) => Some(&s.text),
        _ => None,
    }
}

/// Parses one YAML document (an empty text is null). Errors carry the line.
///
/// Where yaml-rust2 (YAML 1.2) and yaml.v2 (YAML 1.1) read text apart, this
/// reads as yaml.v2: a byte-order mark is skipped, only the first document
/// counts, `\'` is an escape in a double-quoted scalar and `\/` is not.
pub fn parse(text: &str) -> Result<Node, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match parse_v12(text) {
        Err(e) if e.contains("unknown escape character") => match unescape_quotes(text) {
            Some(fixed) => parse_v12(&fixed),
            None => Err(e),
        },
        // yaml.v2 takes a tab as the space after a `:`.
        Err(e)
            if e.contains("must be followed by a valid YAML whitespace")
                && text.contains(":\t") =>
        {
            parse_v12(&text.replace(":\t", ": "))
        }
        other => other,
    }
}

fn parse_v12(text: &str) -> Result<Node, String> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
        nodes: 0,
        quoted: Vec::new(),
    };
    let mut root = None;
    loop {
        let (event, mark) = builder.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => {}
            // yaml.v2 reads the first document only.
            Event::DocumentEnd if root.is_some() => break,
            Event::DocumentEnd => {}
            Event::StreamEnd => break,
            other => root = Some(builder.node(other, mark, 0)?),
        }
    }
    if text.contains("\\/") {
        refuse_slash_escapes(text, &builder.quoted)?;
    }
    Ok(root.unwrap_or_else(Node::null))
}

/// `text` with `\'` in double-quoted scalars made `'` (yaml.v2 takes that
/// escape; YAML 1.2 does not); `None` if there is none.
fn unescape_quotes(text: &str) -> Option<String> {
    if !text.contains("\\'") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' if quoted => match chars.next() {
                Some('\'') => out.push('\''),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// yaml.v2 refuses `\/` in a double-quoted scalar (a YAML 1.2 escape);
/// `starts` are the scalars' first characters.
fn refuse_slash_escapes(text: &str, starts: &[(usize, usize)]) -> Result<(), String> {
    let mut by_char: Vec<usize> = Vec::new();
    for &(index, line) in starts {
        if by_char.is_empty() {
            by_char = text.char_indices().map(|(b, _)| b).collect();
            by_char.push(text.len());
        }
        let Some(&start) = by_char.get(index) else {
            continue;
        };
        let rest = &text[start..];
        let Some(body) = rest.strip_prefix('"') else {
            continue;
        };
        let mut escaped = false;
        for c in body.chars() {
            match (escaped, c) {
                (true, '/') => {
                    return Err(format!(
                        "yaml: line {line}: found unknown escape character while parsing a quoted scalar"
                    ));
                }
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => {}
            }
        }
    }
    Ok(())
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// Anchored nodes by anchor id (yaml-rust2 numbers them from 1).
    anchors: Vec<(usize, Node)>,
    nodes: usize,
    /// Where double-quoted scalars start: character index and line.
    quoted: Vec<(usize, usize)>,
}

impl Builder<'_> {
    fn next(&mut self) -> Result<(Event, Marker), String> {
        self.parser.next_token().map_err(|e| {
            let mark = e.marker();
            format!(
                "yaml: line {}: {}",
                mark.line(),
                e.info().trim_end_matches('.')
            )
        })
    }

    fn count(&mut self, n: usize, mark: Marker) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(at(
                mark,
                &format!("document too large: more than {MAX_NODES} values (aliases expanded)"),
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event, mark: Marker, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(at(mark, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.count(1, mark)?;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                if style == TScalarStyle::DoubleQuoted {
                    self.quoted.push((mark.index(), mark.line()));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                (Node::Scalar(resolve(text, style, tag.as_deref())), anchor)
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| at(mark, "unknown anchor"))?;
                self.count(size(&node), mark)?;
                return Ok(node);
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(event, mark, depth + 1)?);
                }
                (Node::Seq(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                // From `<<` merge keys: explicit keys win over them.
                let mut merged: Vec<(Node, Node)> = Vec::new();
                loop {
                    let (event, kmark) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(event, kmark, depth + 1)?;
                    let (event, vmark) = self.next()?;
                    let value = self.node(event, vmark, depth + 1)?;
                    if scalar_text(&key) == Some("<<") && is_plain_merge(&key) {
                        merge(&mut merged, value).map_err(|e| at(kmark, &e))?;
                        continue;
                    }
                    if entries.iter().any(|(k, _)| same_key(k, &key)) {
                        return Err(at(
                            kmark,
                            &format!(
                                "mapping key {:?} already defined",
                                scalar_text(&key).unwrap_or("?")
                            ),
                        ));
                    }
                    entries.push((key, value));
                }
                for (key, value) in merged {
                    // yaml.v2's strict mode: a key both merged and written
                    // is defined twice.
                    if entries.iter().any(|(k, _)| same_key(k, &key)) {
                        return Err(at(
                            mark,
                            &format!(
                                "mapping key {:?} already defined (also merged with <<)",
                                scalar_text(&key).unwrap_or("?")
                            ),
                        ));
                    }
                    entries.push((key, value));
                }
                (Node::Map(entries), anchor)
            }
            other => return Err(at(mark, &format!("unexpected {other:?}"))),
        };
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        Ok(node)
    }
}

fn at(mark: Marker, message: &str) -> String {
    format!("yaml: line {}: {message}", mark.line())
}

/// Values in a node, itself included.
fn size(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Node::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size(k) + size(v))
                .sum::<usize>()
        }
    }
}

fn is_plain_merge(key: &Node) -> bool {
    matches!(key, Node::Scalar(Scalar { value: Resolved::Str, text }) if text == "<<")
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar(a), Node::Scalar(b)) => a.text == b.text && a.value == b.value,
        _ => false,
    }
}

/// `<<: *base` or `<<: [*a, *b]`: keys not already present are added.
fn merge(entries: &mut Vec<(Node, Node)>, value: Node) -> Result<(), String> {
    let maps = match value {
        Node::Map(m) => vec![m],
        Node::Seq(items) => items
            .into_iter()
            .map(|item| match item {
                Node::Map(m) => Ok(m),
                _ => Err("map merge requires map or sequence of maps as the value".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("map merge requires map or sequence of maps as the value".into()),
    };
    for map in maps {
        for (k, v) in map {
            if !entries.iter().any(|(e, _)| same_key(e, &k)) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

/// Resolves a scalar as yaml.v2 does: quoted and block scalars are strings;
/// plain ones may be null, booleans (YAML 1.1 words), integers (with `_`,
/// `0x`, `0b`, leading-zero octal) or floats.
fn resolve(text: String, style: TScalarStyle, tag: Option<&str>) -> Scalar {
    let value = match tag {
        Some("!!str" | "tag:yaml.org,2002:str") => Resolved::Str,
        Some("!!null" | "tag:yaml.org,2002:null") => Resolved::Null,
        _ if style != TScalarStyle::Plain => Resolved::Str,
        _ => resolve_plain(&text),
    };
    Scalar { text, value }
}

fn resolve_plain(text: &str) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Resolved::Str;
    }
    let plain = text.replace('_', "");
    if let Some(int) = parse_int(&plain) {
        return int;
    }
    if is_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str
}

/// yaml.v2's integers: decimal, `0x` hex, `0b` binary, `0` octal, signed.
fn parse_int(text: &str) -> Option<Resolved> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let (radix, body) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        (2, bin)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some(Resolved::Int((magnitude as i64).wrapping_neg()))
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(Resolved::Int(magnitude as i64))
    } else {
        Some(Resolved::Uint(magnitude))
    }
}

/// yaml.v2's float pattern: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Resolved {
        match parse(text).unwrap() {
            Node::Scalar(s) => s.value,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_v2_does() {
        assert_eq!(value("yes"), Resolved::Bool(true));
        assert_eq!(value("Off"), Resolved::Bool(false));
        assert_eq!(value("~"), Resolved::Null);
        assert_eq!(value("0777"), Resolved::Int(0o777));
        assert_eq!(value("0x1F"), Resolved::Int(31));
        assert_eq!(value("1_000"), Resolved::Int(1000));
        assert_eq!(value("-12"), Resolved::Int(-12));
        assert_eq!(value("18446744073709551615"), Resolved::Uint(u64::MAX));
        assert_eq!(value("1.5e3"), Resolved::Float(1500.0));
        assert_eq!(value("3s"), Resolved::Str);
        assert_eq!(value("'yes'"), Resolved::Str);
        assert_eq!(value("\"12\""), Resolved::Str);
        assert_eq!(value("!!str 12"), Resolved::Str);
    }

    #[test]
    fn json_flow_syntax_is_yaml() {
        let node = parse(
            r#"[{"json":{"expressions":{"level":"","msg":"message"}}},{"labels":{"level":null}}]"#,
        )
        .unwrap();
        let Node::Seq(items) = node else { panic!() };
        assert_eq!(items.len(), 2);
        let json = items[0].get("json").unwrap();
        assert_eq!(
            json.get("expressions")
                .unwrap()
                .get("msg")
                .unwrap()
                .as_str(),
            Some("message")
        );
        assert!(
            items[1]
                .get("labels")
                .unwrap()
                .get("level")
                .unwrap()
                .is_null()
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let node = parse("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  c: 3\n").unwrap();
        let other = node.get("other").unwrap();
        assert_eq!(scalar_text(other.get("a").unwrap()), Some("1"));
        assert_eq!(scalar_text(other.get("c").unwrap()), Some("3"));
        // yaml.v2's strict mode: merged and written again is a duplicate.
        assert!(parse("base: &b {a: 1}\nother:\n  <<: *b\n  a: 3\n").is_err());
    }

    #[test]
    fn read_as_yaml_v2_reads() {
        assert_eq!(
            parse("\u{feff}a: 1")
                .unwrap()
                .get("a")
                .and_then(scalar_text),
            Some("1")
        );
        assert_eq!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap()
                .get("a")
                .and_then(scalar_text),
            Some("1")
        );
        assert_eq!(
            parse(r#"a: "it\'s""#)
                .unwrap()
                .get("a")
                .and_then(Node::as_str),
            Some("it's")
        );
        assert!(parse(r#"a: "x\/y""#).is_err());
        assert!(parse("a: 'x\\/y'").is_ok(), "single quotes have no escapes");
    }

    #[test]
    fn a_billion_laughs_is_refused_not_expanded() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse(&doc).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn deep_nesting_and_duplicate_keys_are_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
        assert!(
            parse("a: 1\na: 2\n")
                .unwrap_err()
                .contains("already defined")
        );
        assert!(parse("a: [1\n").is_err());
    }
}
