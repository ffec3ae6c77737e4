//! The LogQL stream selector with line filters that Grafana's `match` stage uses
//! (clients/pkg/logentry/logql and stages/match.go, Loki v3.7.6), in Rust.
//!
//! `{name="v", name!="v", name=~"re", name!~"re"} |= "text" != "text" |~ "re" !~ "re"`
//!
//! * Parsing follows Loki's own small grammar exactly: Go's `text/scanner` lexer (Go
//!   identifiers, numbers and char/raw literals are all label *names*; comments are
//!   skipped; only `"..."` strings are values, decoded as `strconv.Unquote`), the goyacc
//!   tables of expr.y, and the same error messages and positions.
//! * Label matchers are Prometheus `labels.Matcher`s: a missing label is the empty string;
//!   `=~`/`!~` run Prometheus' FastRegexMatcher (anchored, `(?s)`), shortcuts included.
//! * Line filters: `|=` contains, `!=` does not contain, `|~` / `!~` an unanchored Go
//!   regexp. All filters must pass.
//! * Regexes use Go's RE2 syntax, parsed by a port of Go's `regexp/syntax` (so Go's
//!   accept/refuse and messages) and run by Rust's `regex` crate after translation.

mod lexer;
mod parser;
mod promregex;

use parser::MatchType;
pub use promregex::FastRegexMatcher;

/// What every match-stage selector error starts with (stages.ErrSelectorSyntax).
pub const ERR_SELECTOR_SYNTAX: &str = "invalid selector syntax for match stage";

#[derive(Debug)]
enum ValueMatch {
    Equal(Vec<u8>),
    NotEqual(Vec<u8>),
    Regexp(FastRegexMatcher),
    NotRegexp(FastRegexMatcher),
}

#[derive(Debug)]
struct LabelMatcher {
    name: String,
    value: ValueMatch,
}

#[derive(Debug)]
enum Needle {
    Str(String),
    /// Not UTF-8 (octal or `\x` escapes): compared as bytes.
    Bytes(Vec<u8>),
}

impl Needle {
    fn new(b: Vec<u8>) -> Needle {
        match String::from_utf8(b) {
            Ok(s) => Needle::Str(s),
            Err(e) => Needle::Bytes(e.into_bytes()),
        }
    }

    fn found_in(&self, line: &str) -> bool {
        match self {
            Needle::Str(s) => line.contains(s.as_str()),
            Needle::Bytes(b) => line.as_bytes().windows(b.len()).any(|w| w == b.as_slice()),
        }
    }
}

#[derive(Debug)]
enum LineFilter {
    Contains(Needle),
    NotContains(Needle),
    Regexp(regex::Regex),
    NotRegexp(regex::Regex),
}

/// A parsed, compiled match-stage selector. Immutable; `Send + Sync`.
#[derive(Debug)]
pub struct Selector {
    matchers: Vec<LabelMatcher>,
    filters: Vec<LineFilter>,
}

impl Selector {
    /// Parses a match-stage selector as Grafana does; the error says what is wrong, in
    /// Grafana's words ("invalid selector syntax for match stage: parse error at line 1,
    /// col 7: syntax error: unexpected $end, expecting } or ,").
    pub fn parse(text: &str) -> Result<Selector, String> {
        if text.is_empty() {
            return Err("selector statement required for match stage".to_string());
        }
        let mut compiled: Vec<LabelMatcher> = Vec::new();
        let mut check = |m: &parser::RawMatcher| -> Result<(), String> {
            let value = match m.ty {
                MatchType::Equal => ValueMatch::Equal(m.value.clone()),
                MatchType::NotEqual => ValueMatch::NotEqual(m.value.clone()),
                MatchType::Regexp => ValueMatch::Regexp(FastRegexMatcher::new(&m.value)?),
                MatchType::NotRegexp => ValueMatch::NotRegexp(FastRegexMatcher::new(&m.value)?),
            };
            compiled.push(LabelMatcher {
                name: m.name.clone(),
                value,
            });
            Ok(())
        };
        let expr = match parser::parse(text, &mut check) {
            Ok(e) => e,
            Err(parser::ParseFailure::Syntax(msg)) | Err(parser::ParseFailure::Matcher(msg)) => {
                return Err(format!("{ERR_SELECTOR_SYNTAX}: {msg}"));
            }
        };
        // The grammar reduces each matcher once, in order.
        debug_assert_eq!(compiled.len(), expr.matchers.len());

        // Filter(): the last filter compiles first, so its error is the one reported.
        let mut filters: Vec<Option<LineFilter>> = Vec::with_capacity(expr.filters.len());
        filters.resize_with(expr.filters.len(), || None);
        for (i, f) in expr.filters.iter().enumerate().rev() {
            let compiled = match f.ty {
                MatchType::Equal => LineFilter::Contains(Needle::new(f.value.clone())),
                MatchType::NotEqual => LineFilter::NotContains(Needle::new(f.value.clone())),
                MatchType::Regexp | MatchType::NotRegexp => {
                    let re = super::goregex::syntax::compile_go(&f.value)
                        .map_err(|e| format!("error parsing pipeline: {e}"))?;
                    if f.ty == MatchType::Regexp {
                        LineFilter::Regexp(re)
                    } else {
                        LineFilter::NotRegexp(re)
                    }
                }
            };
            filters[i] = Some(compiled);
        }
        Ok(Selector {
            matchers: compiled,
            filters: filters.into_iter().flatten().collect(),
        })
    }

    /// Whether the label matchers accept the labels (`get` returns a label's value;
    /// missing = None, which matches as the empty string).
    pub fn matches_labels<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers.iter().all(|m| {
            let v = get(&m.name).unwrap_or("");
            match &m.value {
                ValueMatch::Equal(want) => v.as_bytes() == want.as_slice(),
                ValueMatch::NotEqual(want) => v.as_bytes() != want.as_slice(),
                ValueMatch::Regexp(re) => re.matches(v),
                ValueMatch::NotRegexp(re) => !re.matches(v),
            }
        })
    }

    /// Whether the line filters (if any) accept the line.
    pub fn matches_line(&self, line: &str) -> bool {
        self.filters.iter().all(|f| match f {
            LineFilter::Contains(n) => n.found_in(line),
            LineFilter::NotContains(n) => !n.found_in(line),
            LineFilter::Regexp(re) => re.is_match(line),
            LineFilter::NotRegexp(re) => !re.is_match(line),
        })
    }

    /// Whether the selector has line filters.
    pub fn has_line_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    /// The label names the matchers look at, in order (duplicates kept).
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.matchers.iter().map(|m| m.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        Selector::parse(s)
            .err()
            .unwrap_or_else(|| panic!("{s} accepted"))
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ml(s: &Selector, l: &HashMap<String, String>) -> bool {
        s.matches_labels(|n| l.get(n).map(|v| v.as_str()))
    }

    #[test]
    fn send_sync() {
        fn is<T: Send + Sync>() {}
        is::<Selector>();
    }

    #[test]
    fn matchers() {
        let l = labels(&[("app", "web"), ("env", "prod")]);
        assert!(ml(&sel(r#"{app="web"}"#), &l));
        assert!(!ml(&sel(r#"{app!="web"}"#), &l));
        assert!(ml(&sel(r#"{app=~"w.*"}"#), &l));
        assert!(!ml(&sel(r#"{app=~"w"}"#), &l));
        assert!(ml(&sel(r#"{app!~"x.*", env="prod"}"#), &l));
        assert!(ml(&sel(r#"{missing=""}"#), &l));
        assert!(ml(&sel(r#"{missing=~".*"}"#), &l));
        assert!(!ml(&sel(r#"{missing=~".+"}"#), &l));
        assert!(ml(&sel(r#"{123=""}"#), &l));
        assert!(ml(&sel(r#"{'a'=""}"#), &l));
    }

    #[test]
    fn filters() {
        let s = sel(r#"{a=""} |= "foo" != "bar" |~ "b.z" !~ "^x""#);
        assert!(s.has_line_filters());
        assert!(s.matches_line("foo baz"));
        assert!(!s.matches_line("foo bar baz"));
        assert!(!s.matches_line("xfoo baz"));
        assert!(!sel(r#"{a=""}"#).has_line_filters());
        assert!(sel(r#"{a=""} |= "\xc3""#).matches_line("é"));
        assert!(sel(r#"{a=""} |= "\u00e9""#).matches_line("é"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err(r#"{a="b""#),
            "invalid selector syntax for match stage: parse error at line 1, col 7: syntax error: unexpected $end, expecting } or ,"
        );
        assert_eq!(
            err(r#"{a.b=""}"#),
            "invalid selector syntax for match stage: parse error at line 1, col 3: syntax error: unexpected ., expecting = or != or =~ or !~"
        );
        assert_eq!(
            err(r#"{a=""} /* c "#),
            "invalid selector syntax for match stage: parse error at line 1, col 8: comment not terminated"
        );
        assert_eq!(
            err(r#"{a="\q"}"#),
            "invalid selector syntax for match stage: parse error at line 1, col 4: invalid char escape"
        );
        assert_eq!(
            err(r#"{0x="a"}"#),
            "invalid selector syntax for match stage: parse error at line 1, col 2: hexadecimal literal has no digits"
        );
        assert_eq!(
            err("{a=\"b\"} |= `x`"),
            "invalid selector syntax for match stage: parse error at line 1, col 12: syntax error: unexpected IDENTIFIER, expecting STRING"
        );
        assert!(err(r#"{a=~"("}"#).contains("missing closing )"));
        assert!(
            err(r#"{a=""} |~ "(""#).starts_with("error parsing pipeline: error parsing regexp")
        );
    }
}
