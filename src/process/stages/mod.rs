//! The stages, one file each, and the table that builds them by name.
//! Every stage Grafana's driver accepts is here (its 26 names); those that
//! cannot work in a log-driver plugin are refused with the reason.

mod json;
mod labeldrop;
mod labels;
mod matcher;
mod multiline;
mod output;
mod regex;
mod static_labels;
mod structured_metadata;
mod tenant;
mod timestamp;

use super::yaml::Node;
use super::{Budget, Stage};

/// Every stage name Grafana's driver knows, in its documentation's order.
pub const NAMES: &[&str] = &[
    "docker",
    "cri",
    "regex",
    "json",
    "logfmt",
    "replace",
    "template",
    "labels",
    "labeldrop",
    "labelallow",
    "static_labels",
    "structured_metadata",
    "non_indexed_labels",
    "timestamp",
    "output",
    "match",
    "tenant",
    "drop",
    "sampling",
    "limit",
    "multiline",
    "pack",
    "decolorize",
    "metrics",
    "geoip",
    "eventlogmessage",
];

/// Builds the stage `name` from its configuration.
pub fn build(name: &str, config: &Node, budget: &mut Budget) -> Result<Box<dyn Stage>, String> {
    Ok(match name {
        "match" => Box::new(matcher::Matcher::new(config, budget)?),
        "json" => Box::new(json::Json::new(config)?),
        "regex" => Box::new(regex::RegexStage::new(config)?),
        "labels" => Box::new(labels::Labels::new(config)?),
        "labeldrop" => Box::new(labeldrop::LabelDrop::new(config)?),
        "labelallow" => Box::new(labeldrop::LabelAllow::new(config)?),
        "static_labels" => Box::new(static_labels::StaticLabels::new(config)?),
        "structured_metadata" | "non_indexed_labels" => {
            Box::new(structured_metadata::StructuredMetadata::new(config)?)
        }
        "output" => Box::new(output::Output::new(config)?),
        "tenant" => Box::new(tenant::Tenant::new(config)?),
        "multiline" => Box::new(multiline::Multiline::new(config)?),
        "timestamp" => Box::new(timestamp::Timestamp::new(config)?),
        known if NAMES.contains(&known) => {
            return Err(format!("the {known} stage is not built yet"));
        }
        unknown => return Err(format!("Unknown stage type: {unknown}")),
    })
}

pub use super::goduration::parse as go_duration;
