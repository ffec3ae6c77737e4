//! `structured_metadata` (and its old name `non_indexed_labels`): like
//! `labels`, but into the entry's Loki 3 structured metadata. A label of
//! the same name and value moves out of the labels (that is how a
//! high-cardinality label such as a trace ID is kept off the index).

use super::super::yaml::Node;
use super::super::{EachEntry, Entry};
use super::labels::{field_value, label_pairs};

#[derive(Debug, Clone)]
pub struct StructuredMetadata {
    pairs: Vec<(String, String)>,
}

impl StructuredMetadata {
    pub fn new(config: &Node) -> Result<StructuredMetadata, String> {
        Ok(StructuredMetadata {
            pairs: label_pairs(config)?,
        })
    }
}

impl EachEntry for StructuredMetadata {
    const NAME: &'static str = "structured_metadata";

    fn apply(&self, entry: &mut Entry) {
        // Source field -> the value taken, as Grafana keys it.
        let mut taken: Vec<(&str, String)> = Vec::new();
        for (name, source) in &self.pairs {
            if let Some(value) = field_value(entry, source) {
                let value = value.into_owned();
                entry.metadata.push((name.clone(), value.clone()));
                taken.retain(|(s, _)| s != source);
                taken.push((source, value));
            }
        }
        for (name, source) in &self.pairs {
            if taken.iter().any(|(s, _)| s == source) {
                continue;
            }
            if let Some(value) = entry.labels.get(source).cloned() {
                entry.metadata.push((name.clone(), value.clone()));
                taken.push((source, value));
            }
        }
        for (source, value) in taken {
            if entry.labels.get(source) == Some(&value) {
                entry.remove_label(source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, run};

    #[test]
    fn fields_become_metadata_and_leave_the_labels() {
        let out = run(
            r#"[{"regex":{"expression":"trace=(?P<trace>\\w+)"}},{"labels":{"trace":""}},{"structured_metadata":{"trace_id":"trace","app":""}}]"#,
            &["trace=abc"],
        );
        let e = &out[0];
        assert!(e.metadata.contains(&("trace_id".into(), "abc".into())));
        assert!(e.metadata.contains(&("app".into(), "web".into())));
        assert_eq!(label(e, "trace"), None, "moved out of the labels");
        assert_eq!(label(e, "app"), None, "same value as the label: moved");
    }
}
