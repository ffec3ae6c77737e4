//! `loki-relabel-config`: Prometheus relabelling rules, applied once per
//! container to its labels before any line, as Grafana's driver does.
//! The YAML is read as yaml.v2's `UnmarshalStrict` reads it into
//! Prometheus' `relabel.Config` (unknown keys refused; a string setting
//! takes any scalar's text); the rules themselves are in [`rules`].

mod rules;

pub use rules::{RelabelConfig, Relabeler};

use super::yaml::{self, Node, Resolved, Scalar, scalar_text};

/// Most rules in one configuration.
pub const MAX_RULES: usize = 1000;

/// Parses and validates `loki-relabel-config`.
pub fn parse(text: &str) -> Result<Relabeler, String> {
    let node = yaml::parse(text)?;
    let items = match &node {
        Node::Seq(items) => items.as_slice(),
        n if n.is_null() => &[],
        other => {
            return Err(format!(
                "expected a list of relabel rules, got {}",
                other.kind()
            ));
        }
    };
    if items.len() > MAX_RULES {
        return Err(format!("more than {MAX_RULES} relabel rules"));
    }
    let configs = items
        .iter()
        .enumerate()
        .map(|(i, item)| decode(item).map_err(|e| format!("rule {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Relabeler::new(configs)
}

/// One rule, as yaml.v2 decodes it into `relabel.Config`.
fn decode(node: &Node) -> Result<RelabelConfig, String> {
    let mut config = RelabelConfig::default();
    let entries = match node {
        Node::Map(entries) => entries.as_slice(),
        n if n.is_null() => &[],
        other => return Err(format!("expected a mapping, got {}", other.kind())),
    };
    for (key, value) in entries {
        let key = scalar_text(key).ok_or("a key must be a string")?;
        if value_is_null(value) {
            continue;
        }
        match key {
            "source_labels" => {
                config.source_labels = match value {
                    Node::Seq(items) => items
                        .iter()
                        .map(|i| text_of(i, key))
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!(
                            "source_labels: expected a list, got {}",
                            other.kind()
                        ));
                    }
                }
            }
            "separator" => config.separator = Some(text_of(value, key)?),
            "target_label" => config.target_label = Some(text_of(value, key)?),
            "regex" => config.regex = Some(text_of(value, key)?),
            "replacement" => config.replacement = Some(text_of(value, key)?),
            "action" => config.action = Some(text_of(value, key)?),
            "modulus" => {
                config.modulus = Some(match value {
                    Node::Scalar(Scalar {
                        value: Resolved::Int(i),
                        ..
                    }) if *i >= 0 => *i as u64,
                    Node::Scalar(Scalar {
                        value: Resolved::Uint(u),
                        ..
                    }) => *u,
                    other => {
                        return Err(format!(
                            "modulus: expected a whole number, got {}",
                            other.kind()
                        ));
                    }
                })
            }
            unknown => return Err(format!("field {unknown} not found in type relabel.plain")),
        }
    }
    Ok(config)
}

fn value_is_null(node: &Node) -> bool {
    node.is_null()
}

/// yaml.v2 puts any scalar's text in a string field.
fn text_of(node: &Node, key: &str) -> Result<String, String> {
    match node {
        Node::Scalar(s) => Ok(s.text.clone()),
        other => Err(format!("{key}: expected a string, got {}", other.kind())),
    }
}
