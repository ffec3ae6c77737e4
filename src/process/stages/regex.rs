//! `regex`: matches the line (or a field) and sets a field per named group.

use super::super::fields::Fields;
use super::super::goregex::Regex;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, Value};

#[derive(Debug, Clone)]
pub struct RegexStage {
    regex: Regex,
    source: Option<String>,
}

impl RegexStage {
    pub fn new(config: &Node) -> Result<RegexStage, String> {
        if config.is_null() {
            return Err("empty regex stage configuration".into());
        }
        let mut f = Fields::new(config)?;
        let expression = f.string("expression")?.unwrap_or_default();
        let source = f.string("source")?;
        f.finish()?;
        if expression.is_empty() {
            return Err("expression is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let regex = Regex::new(&expression)
            .map_err(|e| format!("could not compile regular expression: {e}"))?;
        Ok(RegexStage { regex, source })
    }
}

impl EachEntry for RegexStage {
    const NAME: &'static str = "regex";

    fn apply(&self, entry: &mut Entry) {
        let input = match &self.source {
            None => std::borrow::Cow::Borrowed(entry.line.as_str()),
            Some(source) => match entry.extracted.get_string(source) {
                Some(v) => std::borrow::Cow::Owned(v.into_owned()),
                None => return,
            },
        };
        let Some(groups) = self.regex.find_submatch(&input) else {
            return;
        };
        let found: Vec<(String, String)> = self
            .regex
            .names()
            .iter()
            .zip(groups)
            .skip(1)
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect();
        for (name, value) in found {
            entry.extracted.insert(name, Value::String(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    #[test]
    fn named_groups_become_fields() {
        let out = run(
            r#"[{"regex":{"expression":"^(?P<ip>\\S+) (?P<opt>x)?"}},{"regex":{"source":"ip","expression":"^(?P<first>\\d+)"}}]"#,
            &["10.0.0.1 rest"],
        );
        let x = &out[0].extracted;
        assert_eq!(x.get_string("ip").as_deref(), Some("10.0.0.1"));
        assert_eq!(
            x.get_string("opt").as_deref(),
            Some(""),
            "an unmatched group is empty, as in Go"
        );
        assert_eq!(x.get_string("first").as_deref(), Some("10"));
        assert!(refused("[{regex: {expression: '('}}]").contains("could not compile"));
        assert!(refused("[{regex: {}}]").contains("expression is required"));
        // Deep nesting is refused, never a stack overflow (on a test
        // thread's 2 MiB stack, in a debug build).
        let deep = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
        let yaml = format!("[{{regex: {{expression: '{deep}'}}}}]");
        assert!(refused(&yaml).contains("nest"), "{}", refused(&yaml));
        let under = format!("{}(?P<x>a){}", "(".repeat(250), ")".repeat(250));
        let yaml = format!("[{{regex: {{expression: '{under}'}}}}]");
        assert_eq!(
            super::super::super::testing::run(&yaml, &["a"])[0]
                .extracted
                .get_string("x")
                .as_deref(),
            Some("a")
        );
    }
}
