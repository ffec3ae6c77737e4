//! `match`: entries whose labels (and, with line filters, lines) match a
//! LogQL selector go through nested `stages` (`action: keep`, the
//! default), or are dropped (`action: drop`, counted under
//! `drop_counter_reason`, default `match_stage`). Others pass unchanged.

use std::sync::Arc;

use super::super::fields::Fields;
use super::super::selector::Selector;
use super::super::yaml::Node;
use super::super::{Budget, Context, Entry, Held, MAX_NESTING, Pipeline, Stage};

#[derive(Debug)]
pub struct Matcher {
    selector: Arc<Selector>,
    /// `None`: drop what matches.
    nested: Option<Pipeline>,
    reason: Arc<str>,
}

impl Matcher {
    pub fn new(config: &Node, budget: &mut Budget) -> Result<Matcher, String> {
        if config.is_null() {
            return Err("match stage config cannot be empty".into());
        }
        let mut f = Fields::new(config)?;
        let pipeline_name = f.string("pipeline_name")?;
        let selector = f.string("selector")?.unwrap_or_default();
        let stages = f.node("stages");
        let action = f.string("action")?.unwrap_or_default();
        let reason = f.string("drop_counter_reason")?;
        f.finish()?;
        if pipeline_name.as_deref() == Some("") {
            return Err(
                "match stage pipeline name can be omitted but cannot be an empty string".into(),
            );
        }
        if selector.is_empty() {
            return Err("selector statement required for match stage".into());
        }
        let has_stages = match stages {
            None => false,
            Some(Node::Seq(items)) => !items.is_empty(),
            Some(_) => true,
        };
        let keep = match action.as_str() {
            "" | "keep" => true,
            "drop" => false,
            _ => return Err("match stage action should be 'keep' or 'drop'".into()),
        };
        if keep && !has_stages {
            return Err(
                "match stage requires at least one additional stage to be defined in '- stages'"
                    .into(),
            );
        }
        if !keep && has_stages {
            return Err("match stage configured to drop entries cannot contains stages".into());
        }
        let selector = Selector::parse(&selector)?;
        let nested = match (keep, stages) {
            (true, Some(list)) => {
                budget.depth += 1;
                if budget.depth > MAX_NESTING {
                    return Err(format!("match stages nested deeper than {MAX_NESTING}"));
                }
                let nested = Pipeline::from_list(list, budget).map_err(|e| {
                    format!("match stage failed to create pipeline from config: {e}")
                })?;
                budget.depth -= 1;
                Some(nested.nested())
            }
            _ => None,
        };
        Ok(Matcher {
            selector: Arc::new(selector),
            nested,
            reason: Arc::from(
                reason
                    .filter(|r| !r.is_empty())
                    .as_deref()
                    .unwrap_or("match_stage"),
            ),
        })
    }

    fn matches(&self, entry: &Entry) -> bool {
        self.selector
            .matches_labels(|name| entry.labels.get(name).map(String::as_str))
            && self.selector.matches_line(&entry.line)
    }
}

impl Stage for Matcher {
    fn name(&self) -> &'static str {
        "match"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            if !self.matches(&entry) {
                out.push(entry);
                continue;
            }
            match &mut self.nested {
                None => cx.filter(&entry, &self.reason),
                Some(nested) => {
                    // One at a time, so each stream keeps its order.
                    let mut one = vec![entry];
                    nested.run(&mut one, cx);
                    out.append(&mut one);
                }
            }
        }
        *entries = out;
    }

    fn tick(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        if let Some(nested) = &mut self.nested {
            nested.tick(out, cx);
        }
    }

    fn flush(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        if let Some(nested) = &mut self.nested {
            nested.flush(out, cx);
        }
    }

    fn next_tick(&self) -> Option<i64> {
        self.nested.as_ref().and_then(Pipeline::next_tick)
    }

    fn held(&self, held: &mut Held) {
        if let Some(nested) = &self.nested {
            nested.held(held);
        }
    }

    fn is_full(&self) -> bool {
        self.nested.as_ref().is_some_and(Pipeline::is_full)
    }

    fn metrics(&self, now: i64, out: &mut Vec<super::metrics::Sample>) {
        if let Some(nested) = &self.nested {
            nested.metrics_into(now, out);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Matcher {
            selector: self.selector.clone(),
            nested: self.nested.as_ref().map(Pipeline::fresh),
            reason: self.reason.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry_with, label, refused, run};
    use super::super::super::{Context, NoFiles, Pipeline};

    #[test]
    fn nested_metrics_are_reported() {
        let stages = r#"[{"match":{"selector":"{app=\"web\"}","stages":[{"metrics":{"n":{"type":"counter","config":{"match_all":true,"action":"inc"}}}}]}}]"#;
        let mut p = Pipeline::parse_inline(stages, &NoFiles).unwrap();
        let mut e = vec![
            entry_with("x", &[("app", "web")]),
            entry_with("y", &[("app", "db")]),
        ];
        p.run(&mut e, &mut Context::new(0));
        let samples = p.metrics(0);
        assert_eq!(samples.len(), 1);
        assert_eq!(
            samples[0].value,
            super::super::metrics::Measure::Counter(1.0)
        );
    }

    #[test]
    fn keep_runs_nested_stages_on_what_matches() {
        let stages = r#"[{"match":{"selector":"{app=\"web\"} |= \"level\"","stages":[{"regex":{"expression":"level=(?P<level>\\w+)"}},{"labels":{"level":""}}]}}]"#;
        let out = run(stages, &["level=warn x", "no level here", "plain"]);
        assert_eq!(label(&out[0], "level"), Some("warn"));
        assert_eq!(
            label(&out[1], "level"),
            None,
            "matched, but the regex did not"
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn drop_counts_what_it_drops() {
        let mut p = Pipeline::parse_inline(
            r#"[{"match":{"selector":"{source=\"stderr\"}","action":"drop","drop_counter_reason":"noise"}}]"#,
            &NoFiles,
        )
        .unwrap();
        let mut entries = vec![
            entry_with("a", &[("source", "stdout")]),
            entry_with("b", &[("source", "stderr")]),
        ];
        let mut cx = Context::new(0);
        p.run(&mut entries, &mut cx);
        assert_eq!(entries.len(), 1);
        assert_eq!(cx.take_filtered().get("noise"), Some(&1));
    }

    #[test]
    fn nested_stages_see_the_labels_as_they_are_now() {
        let stages = r#"[{"static_labels":{"team":"a"}},{"match":{"selector":"{team=\"a\"}","stages":[{"template":{"source":"t","template":"x"}}]}}]"#;
        // The template stage may not exist yet: this checks only the reseed.
        if let Ok(mut p) = Pipeline::parse_inline(stages, &NoFiles) {
            let mut e = vec![entry_with("l", &[("app", "web")])];
            p.run(&mut e, &mut Context::new(0));
            assert_eq!(e[0].extracted.get_string("team").as_deref(), Some("a"));
        }
    }

    #[test]
    fn configs() {
        assert!(refused("[{match: {selector: '{a=\"b\"}'}}]").contains("requires at least one"));
        assert!(
            refused("[{match: {selector: '{a=\"b\"}', action: drop, stages: [{labeldrop: [a]}]}}]")
                .contains("cannot contains stages")
        );
        assert!(
            refused("[{match: {selector: '{a=}', action: drop}}]")
                .contains("invalid selector syntax")
        );
        assert!(
            refused("[{match: {selector: '{a=\"b\"}', action: maybe}}]")
                .contains("'keep' or 'drop'")
        );
        assert!(
            refused("[{match: {selector: '{a=\"b\"}', action: drop, pipeline_name: ''}}]")
                .contains("pipeline name")
        );
        let mut deep = String::from("[{labeldrop: [x]}]");
        for _ in 0..20 {
            deep = format!("[{{match: {{selector: '{{a=\"b\"}}', stages: {deep}}}}}]");
        }
        assert!(refused(&deep).contains("nested deeper"));
    }
}
