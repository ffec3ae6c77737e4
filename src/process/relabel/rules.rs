//! Prometheus' relabelling actions (to be replaced by the full
//! implementation).

use std::collections::BTreeMap;

/// One `relabel_config`, as written (defaults applied by [`Relabeler::new`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub target_label: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}

/// Validated rules.
#[derive(Debug, Clone)]
pub struct Relabeler {
    configs: Vec<RelabelConfig>,
}

impl Relabeler {
    pub fn new(configs: Vec<RelabelConfig>) -> Result<Relabeler, String> {
        if !configs.is_empty() {
            return Err("relabelling is not built yet".into());
        }
        Ok(Relabeler { configs })
    }

    /// Applies the rules; false when they drop the label set.
    pub fn apply(&self, _labels: &mut BTreeMap<String, String>) -> bool {
        let _ = &self.configs;
        true
    }
}
