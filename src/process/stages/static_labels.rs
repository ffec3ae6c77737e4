//! `static_labels`: fixed labels on every entry.

use super::super::entry::Transitions;
use super::super::fields::string_map;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage};

#[derive(Debug, Clone)]
pub struct StaticLabels {
    pairs: Vec<(String, String)>,
    transitions: Transitions,
}

impl StaticLabels {
    pub fn new(config: &Node) -> Result<StaticLabels, String> {
        // A null config sets nothing (mapstructure leaves Grafana's map
        // empty, not nil).
        let mut pairs = Vec::new();
        for (name, value) in string_map(config, false)? {
            // Prometheus' UTF-8 rules: any non-empty valid UTF-8 name.
            if name.is_empty() {
                return Err(format!("invalid label name: {name}"));
            }
            // A null or empty value sets nothing, as in Grafana's driver.
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                pairs.push((name, value));
            }
        }
        Ok(StaticLabels {
            pairs,
            transitions: Transitions::default(),
        })
    }
}

impl Stage for StaticLabels {
    fn name(&self) -> &'static str {
        "static_labels"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, _cx: &mut Context) {
        let pairs = &self.pairs;
        for entry in entries.iter_mut() {
            self.transitions.apply(&mut entry.labels, &[], |labels| {
                for (name, value) in pairs {
                    labels.insert(name.clone(), value.clone());
                }
            });
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(StaticLabels {
            pairs: self.pairs.clone(),
            transitions: Transitions::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused, run};

    #[test]
    fn fixed_labels() {
        let out = run("[{static_labels: {env: prod, empty: '', none: }}]", &["x"]);
        assert_eq!(label(&out[0], "env"), Some("prod"));
        assert_eq!(label(&out[0], "empty"), None);
        assert!(refused("[{static_labels: {code: 200}}]").contains("expected a string"));
    }
}
