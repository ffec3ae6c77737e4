//! Reading a stage's configuration as Grafana's `mapstructure.Decode`
//! reads it, but strictly: a key the stage does not know is an error here
//! (Grafana ignores it, so a typo such as `expresions:` silently does
//! nothing; the README lists this difference).
//!
//! mapstructure's rules kept: field names match case-insensitively; a
//! string field takes only a string (a YAML `200` or `true` is refused),
//! numbers take numbers (integers truncate from floats), booleans take
//! booleans. Stages that Grafana decodes with `WeakDecode` (multiline,
//! limit, ...) use [`Fields::weak`], which also converts between strings,
//! numbers and booleans as mapstructure's weak mode does.

#![allow(dead_code)] // readers for the stages still being written

use super::yaml::{Node, Resolved, Scalar, scalar_text};

/// A stage's config mapping, read field by field; [`Fields::finish`]
/// refuses the keys nobody read.
pub struct Fields<'a> {
    entries: Vec<(&'a str, &'a Node)>,
    used: Vec<bool>,
    weak: bool,
}

impl<'a> Fields<'a> {
    /// The config of a stage: a mapping, or null/absent (all defaults).
    pub fn new(node: &'a Node) -> Result<Fields<'a>, String> {
        let entries = match node {
            Node::Map(entries) => entries
                .iter()
                .map(|(k, v)| {
                    scalar_text(k)
                        .map(|k| (k, v))
                        .ok_or_else(|| "a configuration key must be a string".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
            n if n.is_null() => Vec::new(),
            other => {
                return Err(format!(
                    "expected a mapping of settings, got {}",
                    other.kind()
                ));
            }
        };
        let used = vec![false; entries.len()];
        Ok(Fields {
            entries,
            used,
            weak: false,
        })
    }

    /// Converts scalars between kinds as mapstructure's `WeakDecode` does.
    pub fn weak(mut self) -> Self {
        self.weak = true;
        self
    }

    /// The node of `key` (exact name first, then case-insensitively).
    pub fn node(&mut self, key: &str) -> Option<&'a Node> {
        let at = self
            .entries
            .iter()
            .position(|(k, _)| *k == key)
            .or_else(|| {
                self.entries
                    .iter()
                    .position(|(k, _)| k.eq_ignore_ascii_case(key))
            })?;
        self.used[at] = true;
        let node = self.entries[at].1;
        // mapstructure leaves a field alone for a nil value.
        (!node.is_null()).then_some(node)
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| to_string(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| to_bool(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    pub fn f64(&mut self, key: &str) -> Result<Option<f64>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| to_f64(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    pub fn i64(&mut self, key: &str) -> Result<Option<i64>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| to_i64(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    pub fn u64(&mut self, key: &str) -> Result<Option<u64>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| {
                to_i64(n, weak)
                    .and_then(|i| match u64::try_from(i) {
                        Ok(u) => Ok(u),
                        // mapstructure's weak mode wraps a negative number.
                        Err(_) if weak => Ok(i as u64),
                        Err(_) => Err(format!("cannot parse '{i}', it overflows uint")),
                    })
                    .or_else(|e| match n {
                        Node::Scalar(Scalar {
                            value: Resolved::Uint(u),
                            ..
                        }) => Ok(*u),
                        _ => Err(e),
                    })
                    .map_err(|e| field_error(key, &e))
            })
            .transpose()
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| string_list(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    /// A mapping of string keys to strings (`None` for a null value).
    pub fn string_map(&mut self, key: &str) -> Result<Option<StringMap>, String> {
        let weak = self.weak;
        self.node(key)
            .map(|n| string_map(n, weak).map_err(|e| field_error(key, &e)))
            .transpose()
    }

    /// Refuses the keys that were not read.
    pub fn finish(self) -> Result<(), String> {
        let unknown: Vec<&str> = self
            .entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((k, _), _)| *k)
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => Err(format!("unknown setting '{one}'")),
            many => Err(format!("unknown settings '{}'", many.join("', '"))),
        }
    }
}

/// Keys and values of a string mapping, in document order.
pub type StringMap = Vec<(String, Option<String>)>;

fn field_error(key: &str, error: &str) -> String {
    format!("'{key}' {error}")
}

fn scalar(node: &Node) -> Result<&Scalar, String> {
    match node {
        Node::Scalar(s) => Ok(s),
        other => Err(format!("expected a single value, got {}", other.kind())),
    }
}

/// mapstructure's string decoding (weak: booleans as "1"/"0", numbers as text).
pub fn to_string(node: &Node, weak: bool) -> Result<String, String> {
    let s = scalar(node)?;
    match (&s.value, weak) {
        (Resolved::Str, _) => Ok(s.text.clone()),
        (Resolved::Null, _) => Ok(String::new()),
        (Resolved::Bool(b), true) => Ok(if *b { "1" } else { "0" }.to_string()),
        (Resolved::Int(i), true) => Ok(i.to_string()),
        (Resolved::Uint(u), true) => Ok(u.to_string()),
        (Resolved::Float(f), true) => Ok(super::entry::format_float(*f)),
        _ => Err(format!(
            "expected a string, got {} ({})",
            node.kind(),
            s.text
        )),
    }
}

fn to_bool(node: &Node, weak: bool) -> Result<bool, String> {
    let s = scalar(node)?;
    match (&s.value, weak) {
        (Resolved::Bool(b), _) => Ok(*b),
        (Resolved::Int(i), true) => Ok(*i != 0),
        (Resolved::Float(f), true) => Ok(*f != 0.0),
        (Resolved::Str, true) => match s.text.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            "" => Ok(false),
            _ => Err(format!("cannot parse '{}' as bool", s.text)),
        },
        _ => Err(format!(
            "expected true or false, got {} ({})",
            node.kind(),
            s.text
        )),
    }
}

fn to_f64(node: &Node, weak: bool) -> Result<f64, String> {
    let s = scalar(node)?;
    match (&s.value, weak) {
        (Resolved::Int(i), _) => Ok(*i as f64),
        (Resolved::Uint(u), _) => Ok(*u as f64),
        (Resolved::Float(f), _) => Ok(*f),
        (Resolved::Bool(b), true) => Ok(f64::from(u8::from(*b))),
        // mapstructure's weak mode reads an empty string as zero.
        (Resolved::Str, true) if s.text.is_empty() => Ok(0.0),
        (Resolved::Str, true) => go_parse_int(&s.text)
            .map(|i| i as f64)
            .or_else(|| s.text.replace('_', "").parse().ok())
            .ok_or_else(|| format!("cannot parse '{}' as float", s.text)),
        _ => Err(format!(
            "expected a number, got {} ({})",
            node.kind(),
            s.text
        )),
    }
}

fn to_i64(node: &Node, weak: bool) -> Result<i64, String> {
    let s = scalar(node)?;
    match (&s.value, weak) {
        (Resolved::Int(i), _) => Ok(*i),
        (Resolved::Uint(u), _) => Ok(*u as i64),
        (Resolved::Float(f), _) => Ok(*f as i64),
        (Resolved::Bool(b), true) => Ok(i64::from(*b)),
        (Resolved::Str, true) if s.text.is_empty() => Ok(0),
        (Resolved::Str, true) => {
            go_parse_int(&s.text).ok_or_else(|| format!("cannot parse '{}' as int", s.text))
        }
        _ => Err(format!(
            "expected a whole number, got {} ({})",
            node.kind(),
            s.text
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: a sign, then decimal, `0x` hex,
/// `0o` or leading-`0` octal, or `0b` binary, with `_` between digits.
fn go_parse_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.is_empty()
        || digits.starts_with('_') && !prefixed
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let magnitude = u64::from_str_radix(&clean, radix).ok()?;
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return None;
        }
        Some((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

pub fn string_list(node: &Node, weak: bool) -> Result<Vec<String>, String> {
    match node {
        Node::Seq(items) => items.iter().map(|i| to_string(i, weak)).collect(),
        // mapstructure's weak mode lifts a single value into a list.
        Node::Scalar(_) if weak => Ok(vec![to_string(node, weak)?]),
        other => Err(format!("expected a list, got {}", other.kind())),
    }
}

pub fn string_map(node: &Node, weak: bool) -> Result<StringMap, String> {
    match node {
        Node::Map(entries) => entries
            .iter()
            .map(|(k, v)| {
                let key = to_string(k, weak)?;
                let value = if v.is_null() {
                    None
                } else {
                    Some(to_string(v, weak)?)
                };
                Ok((key, value))
            })
            .collect(),
        n if n.is_null() => Ok(Vec::new()),
        other => Err(format!("expected a mapping, got {}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    #[test]
    fn strict_like_mapstructure_and_stricter_on_unknown_keys() {
        let node = parse("Source: msg\nexpressions: {a: b}\nlimit: 3\n").unwrap();
        let mut f = Fields::new(&node).unwrap();
        assert_eq!(f.string("source").unwrap().as_deref(), Some("msg"));
        assert_eq!(f.string_map("expressions").unwrap().unwrap().len(), 1);
        assert!(f.string("limit").unwrap_err().contains("expected a string"));
        assert!(f.finish().is_ok());

        let node = parse("expresions: {a: b}\n").unwrap();
        let f = Fields::new(&node).unwrap();
        assert_eq!(f.finish().unwrap_err(), "unknown setting 'expresions'");
    }

    #[test]
    fn weak_mode_converts_scalars() {
        let node = parse("max_lines: '5'\nflag: 1\nname: 12\n").unwrap();
        let mut f = Fields::new(&node).unwrap().weak();
        assert_eq!(f.u64("max_lines").unwrap(), Some(5));
        assert_eq!(f.bool("flag").unwrap(), Some(true));
        assert_eq!(f.string("name").unwrap().as_deref(), Some("12"));
        assert!(f.finish().is_ok());
    }
}
