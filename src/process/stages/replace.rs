//! `replace`: replaces what each capture group of a Go regular expression
//! matched in the line (or a field) by the output of a Go template run with
//! the group's text as `.Value`, and sets each named group's field to the
//! replacement of the text that group matched first.
//!
//! Grafana's `replace.go`, step by step: every match, every group in Go's
//! order; a group nested in one already replaced is not written again (but
//! its template still runs, and still counts for the named fields); the
//! template sees the extracted fields (as a `map[string]string`) and
//! `Value`, not the line. Grafana parses the template for each matching
//! entry and skips the entry when that fails; here it is parsed once, with
//! the same outcome (a template that does not parse leaves every entry as
//! it was, it does not refuse the configuration).
//!
//! One bound Go does not have: when the replaced text and the replacements
//! kept for the named fields grow past [`MAX_REPLACED`] (a large template
//! output for each of many matches), the entry is left as it was, as after
//! a failed execution, instead of taking the plugin's memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::fields::Fields;
use super::super::goregex::Regex;
use super::super::gotemplate::{Data, Template};
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, Value};
use super::template::TEMPLATE_NAME;

/// Most bytes one entry's replacements may build (see the module docs).
pub const MAX_REPLACED: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct Replace {
    regex: Regex,
    source: Option<String>,
    /// The `replace` template, or why Go cannot parse it.
    template: Result<Arc<Template>, String>,
}

impl Replace {
    pub fn new(config: &Node) -> Result<Replace, String> {
        let mut f = Fields::new(config)?;
        let expression = f.string("expression")?.unwrap_or_default();
        let source = f.string("source")?;
        let replace = f.string("replace")?.unwrap_or_default();
        f.finish()?;
        if expression.is_empty() {
            return Err("expression is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source in replace stage".into());
        }
        let regex = Regex::new(&expression)
            .map_err(|e| format!("could not compile regular expression: {e}"))?;
        let template = Template::parse(TEMPLATE_NAME, &replace)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        Ok(Replace {
            regex,
            source,
            template,
        })
    }

    /// Grafana's getReplacedEntry: the input with the groups replaced, and
    /// each group's text mapped to its (last) replacement; `None` when a
    /// template execution fails (or the result outgrows [`MAX_REPLACED`]).
    fn replaced(
        &self,
        template: &Template,
        matches: &[Vec<Option<(usize, usize)>>],
        input: &str,
        data: &mut Data,
    ) -> Option<(String, HashMap<String, String>)> {
        let mut result = String::with_capacity(input.len());
        let mut previous_end = 0;
        let mut captured: HashMap<String, String> = HashMap::new();
        let mut kept = 0;
        for groups in matches {
            for &(start, end) in groups.iter().skip(1).flatten() {
                let text = &input[start..end];
                data.insert("Value", text);
                let out = template.execute_data(data).ok()?;
                kept += out.len();
                if kept + result.len() > MAX_REPLACED {
                    return None;
                }
                if previous_end == 0 || previous_end <= start {
                    result.push_str(&input[previous_end..start]);
                    result.push_str(&out);
                    previous_end = end;
                }
                captured.insert(text.to_string(), out);
            }
        }
        result.push_str(&input[previous_end..]);
        Some((result, captured))
    }
}

impl EachEntry for Replace {
    const NAME: &'static str = "replace";

    fn apply(&self, entry: &mut Entry) {
        let input = match &self.source {
            None => entry.line.clone(),
            Some(source) => match entry.extracted.get_string(source) {
                Some(v) => v.into_owned(),
                None => return,
            },
        };
        let matches = self.regex.find_all_submatch_index(&input);
        let Some(first) = matches.first() else {
            return;
        };
        let Ok(template) = &self.template else {
            return;
        };
        let mut data = Data::string_map();
        for (key, v) in entry.extracted.iter() {
            if let Some(s) = v.to_go_string() {
                data.insert(key, &s);
            }
        }
        let Some((result, captured)) = self.replaced(template, &matches, &input, &mut data) else {
            return;
        };
        // Go's FindStringSubmatch: the first match, "" for a group that
        // took no part in it.
        let first: Vec<&str> = first
            .iter()
            .map(|g| g.map_or("", |(a, b)| &input[a..b]))
            .collect();
        match &self.source {
            Some(source) => entry
                .extracted
                .insert(source.clone(), Value::String(result)),
            None => entry.line = result,
        }
        for (i, name) in self.regex.names().iter().enumerate().skip(1) {
            if name.is_empty() {
                continue;
            }
            if let Some(v) = first.get(i).and_then(|text| captured.get(*text)) {
                entry
                    .extracted
                    .insert(name.clone(), Value::String(v.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    const LINE: &str = r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#;
    const UPPER: &str = r#"11.11.11.11 - FRANK [25/JAN/2000:14:00:01 -0500] "GET /1986.JS HTTP/1.1" HttpStatusOk 932 "-" "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6""#;
    const TEMPLATE: &str = r#"'{{ if eq .Value "200" }}{{ Replace .Value "200" "HttpStatusOk" -1 }}{{ else }}{{ .Value | ToUpper }}{{ end }}'"#;

    fn fields(out: &super::Entry) -> Vec<(String, String)> {
        out.extracted
            .iter()
            .filter(|(k, _)| !["app", "source"].contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    /// Grafana's TestPipeline_Replace.
    #[test]
    fn grafana_pipeline_cases() {
        let out = run(
            r#"[{replace: {expression: "11.11.11.11 - (\\S+) .*", replace: "dummy"}}]"#,
            &[LINE],
        );
        assert_eq!(
            out[0].line,
            LINE.replace("frank [25/Jan/2000:14:00:01 -0500] \"GET /1986.js HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6\"", "dummy [25/Jan/2000:14:00:01 -0500] \"GET /1986.js HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6\"")
        );
        assert!(fields(&out[0]).is_empty());

        let json_line = r#"{"time":"2019-01-01T01:00:00.000000001Z", "level": "info", "msg": "11.11.11.11 - \"POST /loki/api/push/ HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6\""}"#;
        let out = run(
            r#"[{json: {expressions: {level: , msg: }}},
                {replace: {expression: "\\S+ - \"POST (\\S+) .*", source: msg, replace: "/loki/api/v1/push/"}}]"#,
            &[json_line],
        );
        assert_eq!(out[0].line, json_line);
        assert_eq!(
            fields(&out[0]),
            pairs(&[
                ("level", "info"),
                (
                    "msg",
                    r#"11.11.11.11 - "POST /loki/api/v1/push/ HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#
                ),
            ])
        );

        let named = format!(
            r#"[{{replace: {{expression: "^(?P<ip>\\S+) (?P<identd>\\S+) (?P<user>\\S+) \\[(?P<timestamp>[\\w:/]+\\s[+\\-]\\d{{4}})\\] \"(?P<action>\\S+)\\s?(?P<path>\\S+)?\\s?(?P<protocol>\\S+)?\" (?P<status>\\d{{3}}|-) (\\d+|-)\\s?\"?(?P<referer>[^\"]*)\"?\\s?\"?(?P<useragent>[^\"]*)?\"?$", replace: {TEMPLATE}}}}}]"#
        );
        let out = run(&named, &[LINE]);
        assert_eq!(out[0].line, UPPER);
        let named_fields = [
            ("ip", "11.11.11.11"),
            ("identd", "-"),
            ("user", "FRANK"),
            ("timestamp", "25/JAN/2000:14:00:01 -0500"),
            ("action", "GET"),
            ("path", "/1986.JS"),
            ("protocol", "HTTP/1.1"),
            ("status", "HttpStatusOk"),
            ("referer", "-"),
            (
                "useragent",
                "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6",
            ),
        ];
        assert_eq!(fields(&out[0]), pairs(&named_fields));

        let nested = format!(
            r#"[{{replace: {{expression: "(?P<ip_user>^(?P<ip>\\S+) (?P<identd>\\S+) (?P<user>\\S+)) \\[(?P<timestamp>[\\w:/]+\\s[+\\-]\\d{{4}})\\] \"(?P<action_path>(?P<action>\\S+)\\s?(?P<path>\\S+)?)\\s?(?P<protocol>\\S+)?\" (?P<status>\\d{{3}}|-) (\\d+|-)\\s?\"?(?P<referer>[^\"]*)\"?\\s?\"?(?P<useragent>[^\"]*)?\"?$", replace: {TEMPLATE}}}}}]"#
        );
        let out = run(&nested, &[LINE]);
        assert_eq!(out[0].line, UPPER);
        let mut want = named_fields.to_vec();
        want.push(("ip_user", "11.11.11.11 - FRANK"));
        want.push(("action_path", "GET /1986.JS"));
        assert_eq!(fields(&out[0]), pairs(&want));

        let unnamed = format!(
            r#"[{{replace: {{expression: "^(\\S+) (\\S+) (\\S+) \\[([\\w:/]+\\s[+\\-]\\d{{4}})\\] \"(\\S+)\\s?(\\S+)?\\s?(\\S+)?\" (\\d{{3}}|-) (\\d+|-)\\s?\"?([^\"]*)\"?\\s?\"?([^\"]*)?\"?$", replace: {TEMPLATE}}}}}]"#
        );
        let out = run(&unnamed, &[LINE]);
        assert_eq!(out[0].line, UPPER);
        assert!(fields(&out[0]).is_empty());

        let out = run(
            r#"[{replace: {expression: "11.11.11.11 - (\\S+\\s)", replace: ''}}]"#,
            &[LINE],
        );
        assert_eq!(out[0].line, LINE.replacen("frank ", "", 1));

        let out = run(
            "[{replace: {expression: '(a|b|c)', replace: ''}}]",
            &["abc"],
        );
        assert_eq!(out[0].line, "");
    }

    /// Grafana's TestReplaceConfig_validate.
    #[test]
    fn configs_refused_as_grafana_refuses_them() {
        assert!(refused("[{replace: }]").contains("expression is required"));
        assert!(refused("[{replace: {}}]").contains("expression is required"));
        assert!(
            refused("[{replace: {expression: '(?P<ts[0-9]+).*', replace: test}}]").contains(
                "could not compile regular expression: error parsing regexp: invalid named capture: `(?P<ts[0-9]+).*`"
            )
        );
        assert!(
            refused("[{replace: {expression: '(?P<ts>[0-9]+).*', source: ''}}]")
                .contains("empty source in replace stage")
        );
        assert!(refused("[{replace: {expression: x, replce: y}}]").contains("unknown setting"));
        run(
            "[{replace: {expression: '(?P<ts>[0-9]+).*', replace: test}}]",
            &["x"],
        );
        run(
            "[{replace: {expression: '(?P<ts>[0-9]+).*', source: log, replace: test}}]",
            &["x"],
        );
    }

    #[test]
    fn a_template_go_cannot_parse_leaves_entries_alone() {
        let out = run(
            "[{replace: {expression: '(b)', replace: '{{ foo }}'}}]",
            &["abc"],
        );
        assert_eq!(out[0].line, "abc");
    }

    #[test]
    fn templates_see_fields_as_strings_and_no_entry() {
        let out = run(
            r#"[{replace: {expression: '(?P<w>b)', replace: '[{{ .app }}|{{ .Entry }}|{{ .Value }}|{{ printf "%T" . }}]'}}]"#,
            &["abc"],
        );
        assert_eq!(out[0].line, "a[web|<no value>|b|map[string]string]c");
        assert_eq!(
            out[0].extracted.get_string("w").as_deref(),
            Some("[web|<no value>|b|map[string]string]")
        );
    }

    #[test]
    fn replacements_are_bounded() {
        let line = "abcdefghijklmnopqrstu";
        let out = run(
            r#"[{replace: {expression: '(.)', replace: '{{ repeat 1000000 "x" }}'}}]"#,
            &[line],
        );
        assert_eq!(out[0].line, line, "21 MB of replacements: left alone");
        let out = run(
            r#"[{replace: {expression: '(.)', replace: '{{ repeat 100000 "x" }}'}}]"#,
            &[line],
        );
        assert_eq!(out[0].line.len(), 21 * 100_000);
    }

    #[test]
    fn empty_matches_and_named_groups_that_did_not_take_part() {
        // Empty matches: after a match, none at its end (Go's rule).
        let out = run("[{replace: {expression: '(x*)', replace: '-'}}]", &["axb"]);
        assert_eq!(out[0].line, "-a-b-");
        // A named group absent from the first match takes the replacement
        // of the empty text, when another group captured it.
        let out = run(
            "[{replace: {expression: '(?P<a>a)|(?P<e>)', replace: '<{{ .Value }}>'}}]",
            &["ab"],
        );
        assert_eq!(out[0].line, "<a>b<>");
        assert_eq!(out[0].extracted.get_string("a").as_deref(), Some("<a>"));
        assert_eq!(out[0].extracted.get_string("e").as_deref(), Some("<>"));
    }
}
