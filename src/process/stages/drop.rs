//! `drop`: drops the entries that meet every condition given (counted as
//! filtered under `drop_counter_reason`, default `drop_stage`):
//! `longer_than` (bytes), `older_than` (timestamp before now minus it),
//! `source` (these fields are all present), `expression` / `value` (the
//! line, or the `source` fields' values joined by `separator`, match the
//! regex / equal the value).
//!
//! `older_than` compares with the wall clock the pipeline is given, so a
//! line replayed after a crash may be older than it was the first time.

use std::sync::Arc;

use regex::Regex;

use super::super::fields::Fields;
use super::super::goregex;
use super::super::yaml::{Node, Resolved, Scalar};
use super::super::{Context, Entry, Stage};
use super::go_duration;

const DEFAULT_REASON: &str = "drop_stage";

#[derive(Debug, Clone)]
pub struct Drop {
    source: Option<Vec<String>>,
    separator: String,
    regex: Option<Regex>,
    older_than: Option<i64>,
    longer_than: Option<u64>,
    reason: Arc<str>,
}

impl Drop {
    pub fn new(config: &Node) -> Result<Drop, String> {
        let mut f = Fields::new(config)?.weak();
        let reason = f.string("drop_counter_reason")?;
        let source = f.node("source");
        let value = f.string("value")?;
        let separator = f.string("separator")?;
        let expression = f.string("expression")?;
        let older_than = f.string("older_than")?;
        let longer_than = f.string("longer_than")?;
        f.finish()?;
        if source.is_none() && expression.is_none() && older_than.is_none() && longer_than.is_none()
        {
            return Err("drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`".into());
        }
        let source = source.map(source_list).transpose()?;
        let reason = reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REASON.to_string());
        let older_than = older_than
            .map(|text| {
                go_duration(&text).map_err(|e| {
                    format!(
                        "drop stage invalid duration, {text} cannot be converted to a duration: {e}"
                    )
                })
            })
            .transpose()?;
        if value.is_some() && source.is_none() {
            return Err("drop stage config must contain `source` if `value` is specified".into());
        }
        if value.is_some() && expression.is_some() {
            return Err("drop stage config error, `value` and `expression` cannot both be defined at the same time.".into());
        }
        // Grafana turns `value` into the regex `^QuoteMeta(value)$`.
        let regex = match (&expression, &value) {
            (Some(expression), _) => Some(goregex::compile(expression)),
            (None, Some(value)) => Some(goregex::compile(&format!("^{}$", quote_meta(value)))),
            (None, None) => None,
        }
        .transpose()
        .map_err(|e| format!("drop stage regex compilation error: {e}"))?;
        let longer_than = longer_than
            .map(|text| {
                byte_size(&text)
                    .map_err(|e| format!("drop stage failed to parse longer_than to bytes: {e}"))
            })
            .transpose()?;
        Ok(Drop {
            source,
            separator: separator.unwrap_or_else(|| ";".to_string()),
            regex,
            older_than,
            longer_than,
            reason: Arc::from(reason),
        })
    }

    fn should_drop(&self, entry: &Entry, now: i64) -> bool {
        if let Some(limit) = self.longer_than {
            // Go compares with `int(limit)`: past i64::MAX it is negative.
            let longer = i64::try_from(limit).map_or(true, |l| entry.line.len() as u64 > l as u64);
            if !longer {
                return false;
            }
        }
        if let Some(age) = self.older_than {
            if entry.timestamp >= now.saturating_sub(age) {
                return false;
            }
        }
        match (&self.source, &self.regex) {
            (Some(source), None) => {
                if !source.iter().all(|s| entry.extracted.contains(s)) {
                    return false;
                }
            }
            (None, Some(regex)) => {
                if !regex.is_match(&entry.line) {
                    return false;
                }
            }
            (Some(source), Some(regex)) => {
                let mut values = Vec::new();
                for s in source {
                    if let Some(value) = entry.extracted.get(s) {
                        match value.to_go_string() {
                            Some(v) => values.push(v),
                            None => return false,
                        }
                    }
                }
                if !regex.is_match(&values.join(&self.separator)) {
                    return false;
                }
            }
            (None, None) => {}
        }
        true
    }
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `source`: a field name or a list of them.
fn source_list(node: &Node) -> Result<Vec<String>, String> {
    const INVALID: &str = "drop stage source invalid type should be string or list of strings";
    let string = |n: &Node| match n {
        Node::Scalar(Scalar {
            text,
            value: Resolved::Str,
        }) => Ok(text.clone()),
        _ => Err(INVALID.to_string()),
    };
    match node {
        Node::Seq(items) => items.iter().map(string).collect(),
        other => Ok(vec![string(other)?]),
    }
}

/// Loki's `flagext.ByteSize` (c2h5oh/datasize on the text upper-cased):
/// digits, then an optional unit, powers of 1024.
pub fn byte_size(text: &str) -> Result<u64, String> {
    let upper = text.to_uppercase();
    let syntax = || format!("strconv.UnmarshalText: parsing {upper:?}: invalid syntax");
    let range = || format!("strconv.UnmarshalText: parsing {upper:?}: value out of range");
    let digits = upper.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(syntax());
    }
    let mut value: u64 = 0;
    for b in upper[..digits].bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(range)?;
    }
    let unit = upper[digits..].trim().to_lowercase();
    let shift = match unit.as_str() {
        "" | "b" | "byte" => 0,
        "k" | "kb" | "kilo" | "kilobyte" | "kilobytes" => 10,
        "m" | "mb" | "mega" | "megabyte" | "megabytes" => 20,
        "g" | "gb" | "giga" | "gigabyte" | "gigabytes" => 30,
        "t" | "tb" | "tera" | "terabyte" | "terabytes" => 40,
        "p" | "pb" | "peta" | "petabyte" | "petabytes" => 50,
        "e" | "eb" => 60,
        _ => return Err(syntax()),
    };
    value.checked_mul(1u64 << shift).ok_or_else(range)
}

impl Stage for Drop {
    fn name(&self) -> &'static str {
        "drop"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        entries.retain(|entry| {
            if self.should_drop(entry, cx.now) {
                cx.filter(entry, &self.reason);
                return false;
            }
            true
        });
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, refused};
    use super::super::super::{Context, NoFiles, Pipeline};
    use super::super::run_once as run;
    use super::byte_size;

    fn kept(yaml: &str, lines: &[&str]) -> Vec<String> {
        run(yaml, lines).into_iter().map(|e| e.line).collect()
    }

    #[test]
    fn expression_value_and_source() {
        assert_eq!(
            kept("[{drop: {expression: debug}}]", &["a debug line", "info"]),
            ["info"]
        );
        let regex = r#"{"regex":{"expression":"(?P<level>\\w+) (?P<app>\\w+)?"}}"#;
        assert_eq!(
            kept(
                &format!(r#"[{regex},{{"drop":{{"source":"level","value":"debug"}}}}]"#),
                &["debug x", "debugging x", "info x"]
            ),
            ["debugging x", "info x"]
        );
        assert_eq!(
            kept(
                &format!(
                    r#"[{regex},{{"drop":{{"source":["level","app"],"separator":"/","expression":"^debug/web$"}}}}]"#
                ),
                &["debug web", "debug db"]
            ),
            ["debug db"]
        );
        // A source alone: dropped when every field is there (labels count).
        assert_eq!(
            kept(
                r#"[{"drop":{"source":["app","source"]}}]"#,
                &["has both labels"]
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            kept(r#"[{"drop":{"source":["app","nope"]}}]"#, &["x"]),
            ["x"]
        );
    }

    #[test]
    fn length_and_age() {
        assert_eq!(
            kept("[{drop: {longer_than: 4}}]", &["12345", "1234"]),
            ["1234"]
        );
        assert_eq!(
            kept(
                "[{drop: {longer_than: 1kb, expression: x}}]",
                &[&"x".repeat(1025), &"y".repeat(1025), "x"]
            ),
            [&"y".repeat(1025), "x"]
        );
        let mut p = Pipeline::parse_inline("[{drop: {older_than: 1h}}]", &NoFiles).unwrap();
        let now = 10_000_000_000_000;
        let mut e = vec![entry("old"), entry("new")];
        e[0].timestamp = now - 3_600_000_000_001;
        e[1].timestamp = now - 3_600_000_000_000;
        let mut cx = Context::new(now);
        p.run(&mut e, &mut cx);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, "new");
        assert_eq!(cx.take_filtered().get("drop_stage"), Some(&1));
    }

    #[test]
    fn the_reason_is_counted() {
        let mut p = Pipeline::parse_inline(
            "[{drop: {expression: x, drop_counter_reason: noisy}}]",
            &NoFiles,
        )
        .unwrap();
        let mut e = vec![entry("x"), entry("x"), entry("y")];
        let mut cx = Context::new(0);
        p.run(&mut e, &mut cx);
        assert_eq!(cx.take_filtered().get("noisy"), Some(&2));
    }

    #[test]
    fn sizes_as_loki_reads_them() {
        assert_eq!(byte_size("10"), Ok(10));
        assert_eq!(byte_size("1kb"), Ok(1024));
        assert_eq!(byte_size("2 MB"), Ok(2 << 20));
        assert_eq!(byte_size("1Kb"), Ok(1024));
        assert!(byte_size("1.5kb").is_err());
        assert!(byte_size("kb").is_err());
        assert!(byte_size("100000000000000000000").is_err());
        assert!(byte_size("20EB").is_err());
    }

    #[test]
    fn configs() {
        assert!(refused("[{drop: {}}]").contains("must contain at least one of"));
        assert!(refused("[{drop: {value: x}}]").contains("must contain at least one of"));
        assert!(refused("[{drop: {value: x, longer_than: 1}}]").contains("must contain `source`"));
        assert!(refused("[{drop: {source: a, value: x, expression: y}}]").contains("cannot both"));
        assert!(refused("[{drop: {expression: '('}}]").contains("regex compilation error"));
        assert!(refused("[{drop: {older_than: 5}}]").contains("invalid duration"));
        assert!(refused("[{drop: {longer_than: 5x}}]").contains("longer_than to bytes"));
        assert!(refused("[{drop: {source: [1]}}]").contains("source invalid type"));
        assert!(refused("[{drop: {source: {a: b}}}]").contains("source invalid type"));
        assert!(refused("[{drop: {source: a, valeu: x}}]").contains("unknown setting"));
    }
}
