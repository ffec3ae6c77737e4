//! `static_labels`: fixed labels on every entry.

use super::super::fields::string_map;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry};

#[derive(Debug, Clone)]
pub struct StaticLabels {
    pairs: Vec<(String, String)>,
}

impl StaticLabels {
    pub fn new(config: &Node) -> Result<StaticLabels, String> {
        if config.is_null() {
            return Err("static_labels stage config cannot be empty".into());
        }
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
        Ok(StaticLabels { pairs })
    }
}

impl EachEntry for StaticLabels {
    const NAME: &'static str = "static_labels";

    fn apply(&self, entry: &mut Entry) {
        for (name, value) in &self.pairs {
            entry.set_label(name, value);
        }
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
