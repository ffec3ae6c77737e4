//! `labeldrop` and `labelallow`: remove the listed labels, or all but them.

use super::super::fields::string_list;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry};

#[derive(Debug, Clone)]
pub struct LabelDrop {
    names: Vec<String>,
}

impl LabelDrop {
    pub fn new(config: &Node) -> Result<LabelDrop, String> {
        let names = if config.is_null() {
            Vec::new()
        } else {
            string_list(config, false)?
        };
        if names.is_empty() {
            return Err("labeldrop stage config cannot be empty".into());
        }
        Ok(LabelDrop { names })
    }
}

impl EachEntry for LabelDrop {
    const NAME: &'static str = "labeldrop";

    fn apply(&self, entry: &mut Entry) {
        for name in &self.names {
            entry.remove_label(name);
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabelAllow {
    names: Vec<String>,
}

impl LabelAllow {
    pub fn new(config: &Node) -> Result<LabelAllow, String> {
        let names = if config.is_null() {
            Vec::new()
        } else {
            string_list(config, false)?
        };
        if names.is_empty() {
            return Err("labelallow stage config cannot be empty".into());
        }
        Ok(LabelAllow { names })
    }
}

impl EachEntry for LabelAllow {
    const NAME: &'static str = "labelallow";

    fn apply(&self, entry: &mut Entry) {
        if entry.labels.keys().any(|k| !self.names.contains(k)) {
            entry.labels_mut().retain(|k, _| self.names.contains(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused, run};

    #[test]
    fn drop_and_allow() {
        let out = run("[{labeldrop: [app]}]", &["x"]);
        assert_eq!(label(&out[0], "app"), None);
        assert_eq!(label(&out[0], "source"), Some("stdout"));
        let out = run("[{labelallow: [app]}]", &["x"]);
        assert_eq!(out[0].labels.len(), 1);
        assert!(refused("[{labeldrop: []}]").contains("cannot be empty"));
        assert!(refused("[{labelallow: }]").contains("cannot be empty"));
    }
}
