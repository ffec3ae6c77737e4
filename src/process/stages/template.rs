//! `template`: sets a field to the output of a Go template (`text/template`
//! with sprig's functions and Grafana's extras, [`gotemplate`]) run over
//! the extracted fields, the source field as `.Value` and the line as
//! `.Entry`. An empty output deletes the field; a failed execution leaves
//! it as it was.
//!
//! [`gotemplate`]: super::super::gotemplate

use std::sync::Arc;

use super::super::fields::Fields;
use super::super::gotemplate::{Data, Template};
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, Value};

/// Grafana's name for the templates its stages parse.
pub const TEMPLATE_NAME: &str = "pipeline_template";

#[derive(Debug, Clone)]
pub struct TemplateStage {
    source: String,
    template: Arc<Template>,
}

impl TemplateStage {
    pub fn new(config: &Node) -> Result<TemplateStage, String> {
        let mut f = Fields::new(config)?;
        let source = f.string("source")?.unwrap_or_default();
        let template = f.string("template")?.unwrap_or_default();
        f.finish()?;
        if source.is_empty() {
            return Err("template source value is required".into());
        }
        let template = Template::parse(TEMPLATE_NAME, &template).map_err(|e| e.to_string())?;
        Ok(TemplateStage {
            source,
            template: Arc::new(template),
        })
    }
}

impl EachEntry for TemplateStage {
    const NAME: &'static str = "template";

    fn apply(&self, entry: &mut Entry) {
        // Grafana: every field getString can convert (null cannot), the
        // source's value again as Value, the line as Entry. (Its map order
        // is random, so a field named Value loses or wins against the
        // source by chance there; the source always wins here.)
        let mut data = Data::new();
        let mut value = None;
        for (key, v) in entry.extracted.iter() {
            if let Some(s) = v.to_go_string() {
                data.insert(key, &s);
                if key == self.source {
                    value = Some(s);
                }
            }
        }
        if let Some(v) = value {
            data.insert("Value", &v);
        }
        data.insert("Entry", &entry.line);
        match self.template.execute_data(&data) {
            Err(_) => {}
            Ok(out) if out.is_empty() => entry.extracted.remove(&self.source),
            Ok(out) => entry
                .extracted
                .insert(self.source.clone(), Value::String(out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};
    use super::super::run_once;

    fn field(out: &[super::Entry], name: &str) -> Option<String> {
        out[0].extracted.get_string(name).map(|s| s.into_owned())
    }

    /// Grafana's TestPipeline_Template.
    #[test]
    fn grafana_pipeline_example() {
        let yaml = r#"
- json:
    expressions:
      app:  app
      level: level
- template:
    source: app
    template: '{{ .Value | ToUpper }} doki'
- template:
    source: level
    template: '{{ if eq .Value "WARN" }}{{ Replace .Value "WARN" "OK" -1 }}{{ else }}{{ .Value }}{{ end }}'
- template:
    source: nonexistent
    template: "TEST"
- labels:
    app: ''
    level: ''
    type: nonexistent
"#;
        let line = r#"{"time":"2012-11-01T22:08:41+00:00","app":"loki","component":["parser","type"],"level":"WARN","nested":{"child":"value"},"message":"this is a log line"}"#;
        let out = run_once(yaml, &[line]);
        let labels = &out[0].labels;
        assert_eq!(labels["app"], "LOKI doki");
        assert_eq!(labels["level"], "OK");
        assert_eq!(labels["type"], "TEST");
    }

    /// Grafana's TestTemplateStage_Process cases, over fields a json
    /// stage sets.
    #[test]
    fn grafana_process_cases() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            // (fields as JSON, source, template, the source's value after)
            (
                r#"{"some":"value"}"#,
                "some",
                "{{ .Value }} appended",
                Some("value appended"),
            ),
            (
                r#"{"notmissing":"value"}"#,
                "missing",
                "newval",
                Some("newval"),
            ),
            (
                r#"{"level":"warn","app":"loki","message":"warn for app loki","module":"test"}"#,
                "message",
                "{{.Value}} in module {{.module}}",
                Some("warn for app loki in module test"),
            ),
            (
                r#"{"level":"warn","app":"loki"}"#,
                "missing",
                "{{ .level }} for app {{ .app | ToUpper }}",
                Some("warn for app LOKI"),
            ),
            (
                r#"{"level":"warn","app":"loki","message":"warn for app loki"}"#,
                "message",
                "{{.Value}} in module {{.module}}",
                Some("warn for app loki in module <no value>"),
            ),
            (
                r#"{"level":"Warning","testval":null}"#,
                "level",
                r#"{{ Replace .Value "Warning" "warn" 1 }}"#,
                Some("warn"),
            ),
            (
                r#"{"testval":"Value"}"#,
                "testval",
                "{{ .Value | ToLower }}",
                Some("value"),
            ),
            (
                r#"{"testval":"Value"}"#,
                "testval",
                "{{ add 7 3 }}",
                Some("10"),
            ),
            (
                r#"{"testval":"Value"}"#,
                "testval",
                "{{ ToLower .Value }}",
                Some("value"),
            ),
            ("{}", "testval", "{{ .Value | ToLower }}", None),
            (
                r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
                "testval",
                r#"{{ Replace .Value " " "_" -1 | ToLower }}"#,
                Some("some_silly_value_with_lots_of_spaces"),
            ),
            (
                r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
                "testval",
                r#"{{ regexReplaceAll "(Silly)" .Value "${1}foo"  }}"#,
                Some("Some Sillyfoo Value With Lots Of Spaces"),
            ),
            (
                r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
                "testval",
                r#"{{ regexReplaceAll "\\K" .Value "${1}foo"  }}"#,
                Some("Some Silly Value With Lots Of Spaces"),
            ),
            (
                r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
                "testval",
                r#"{{ regexReplaceAll "( |Of)" .Value "_"  }}"#,
                Some("Some_Silly_Value_With_Lots___Spaces"),
            ),
            (
                r#"{"testval":"!!!!!WOOOOO!!!!!"}"#,
                "testval",
                r#"{{ Trim .Value "!" }}"#,
                Some("WOOOOO"),
            ),
            (r#"{"testval":"WOOOOO"}"#, "testval", "", None),
            ("{}", "testval", "", None),
            (
                r#"{"testval":"this is PII data"}"#,
                "testval",
                r#"{{ Sha2Hash .Value "salt" }}"#,
                Some("5526fd6f8ad457279cf8ff06453c6cb61bf479fa826e3b099caa6c846f9376f2"),
            ),
            (
                r#"{"testval":"this is PII data"}"#,
                "testval",
                r#"{{ Hash .Value "salt" }}"#,
                Some("0807ea24e992127128b38e4930f7155013786a4999c73a25910318a793847658"),
            ),
        ];
        for (fields, source, template, want) in cases {
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(fields).unwrap();
            let expressions: serde_json::Map<_, _> = object
                .keys()
                .map(|k| (k.clone(), serde_json::Value::String(k.clone())))
                .collect();
            let mut stages = Vec::new();
            if !expressions.is_empty() {
                stages.push(serde_json::json!({"json": {"expressions": expressions}}));
            }
            stages.push(serde_json::json!({"template": {"source": source, "template": template}}));
            let yaml = serde_json::Value::Array(stages).to_string();
            let out = run(&yaml, &[fields]);
            assert_eq!(field(&out, source).as_deref(), *want, "{template}");
        }
    }

    #[test]
    fn configs_refused_as_grafana_refuses_them() {
        assert!(refused("[{template: }]").contains("template source value is required"));
        assert!(refused("[{template: {template: x}}]").contains("source value is required"));
        assert!(
            refused("[{template: {source: x, template: '{{ foo }}'}}]")
                .contains(r#"template: pipeline_template:1: function "foo" not defined"#)
        );
        assert!(refused("[{template: {source: x, template: 5}}]").contains("'template'"));
        assert!(refused("[{template: {source: x, templte: y}}]").contains("unknown setting"));
    }

    #[test]
    fn the_line_and_numbers_are_strings_in_the_template() {
        let out = run(
            r#"[{"json":{"expressions":{"n":"n","b":"b","z":"z"}}},
                {"template":{"source":"t","template":"{{ .Entry | len }} {{ .n }} {{ .b }} {{ .z }} {{ typeOf .n }}"}}]"#,
            &[r#"{"n":1.5e3,"b":true,"z":null}"#],
        );
        assert_eq!(
            field(&out, "t").as_deref(),
            Some("29 1500 true <no value> string")
        );
    }
}
