//! `labels`: sets labels from extracted fields (`level:` takes the field of
//! the same name, `level: lvl` the field `lvl`). Also the reading of label
//! configs that `structured_metadata` shares.

use super::super::entry::Transitions;
use super::super::entry::is_valid_label_name;
use super::super::fields::{StringMap, string_map};
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage};

#[derive(Debug, Clone)]
pub struct Labels {
    /// Label name and the extracted field it comes from.
    pub(super) pairs: Vec<(String, String)>,
    transitions: Transitions,
}

impl Labels {
    pub fn new(config: &Node) -> Result<Labels, String> {
        Ok(Labels {
            pairs: label_pairs(config)?,
            transitions: Transitions::default(),
        })
    }
}

/// A mapping of label names (legacy ASCII rules) to source fields, an
/// empty source meaning the field of the same name.
/// A null config (`- labels:`) is no labels: mapstructure leaves Grafana's
/// map empty, not nil, so its emptiness check passes.
pub(super) fn label_pairs(config: &Node) -> Result<Vec<(String, String)>, String> {
    if config.is_null() {
        return Ok(Vec::new());
    }
    let map: StringMap = string_map(config, false)?;
    map.into_iter()
        .map(|(name, source)| {
            if !is_valid_label_name(&name) {
                return Err(format!("invalid label name: {name}"));
            }
            let source = source
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| name.clone());
            Ok((name, source))
        })
        .collect()
}

/// The value a label takes from the field `source`, if it has one that is
/// a valid label value (a string form, valid UTF-8: always so here).
pub(super) fn field_value<'a>(entry: &'a Entry, source: &str) -> Option<std::borrow::Cow<'a, str>> {
    entry.extracted.get_string(source)
}

impl Stage for Labels {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, _cx: &mut Context) {
        for entry in entries.iter_mut() {
            let extracted = &entry.extracted;
            let values: Vec<_> = self
                .pairs
                .iter()
                .map(|(_, source)| extracted.get_string(source))
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let key: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            let pairs = &self.pairs;
            self.transitions.apply(&mut entry.labels, &key, |labels| {
                for ((name, _), value) in pairs.iter().zip(&key) {
                    if let Some(value) = value {
                        labels.insert(name.clone(), value.to_string());
                    }
                }
            });
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Labels {
            pairs: self.pairs.clone(),
            transitions: Transitions::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused, run};

    #[test]
    fn fields_become_labels() {
        let out = run(
            r#"[{"regex":{"expression":"level=(?P<level>\\w+) code=(?P<c>\\d+)"}},{"labels":{"level":null,"code":"c","absent":""}}]"#,
            &["level=warn code=503"],
        );
        assert_eq!(label(&out[0], "level"), Some("warn"));
        assert_eq!(label(&out[0], "code"), Some("503"));
        assert_eq!(label(&out[0], "absent"), None);
    }

    #[test]
    fn invalid_label_names_and_empty_configs_are_refused() {
        assert!(refused("[{labels: {bad-name: x}}]").contains("invalid label name: bad-name"));
        assert!(
            super::super::super::testing::run("[{labels: }]", &["x"]).len() == 1,
            "null is no labels, as in Grafana"
        );
        assert!(refused("[{labels: [a]}]").contains("expected a mapping"));
    }
}
