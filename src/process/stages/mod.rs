//! The stages, one file each, and the table that builds them by name.
//! Every stage Grafana's driver accepts is here (its 26 names); those that
//! cannot work in a log-driver plugin are refused with the reason.

mod cri;
mod decolorize;
mod docker;
mod drop;
mod eventlogmessage;
mod geoip;
mod json;
mod labeldrop;
mod labels;
mod limit;
mod logfmt;
mod matcher;
pub mod metrics;
mod multiline;
mod output;
mod pack;
mod regex;
mod replace;
mod sampling;
mod static_labels;
mod structured_metadata;
mod template;
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
        "replace" => Box::new(replace::Replace::new(config)?),
        "template" => Box::new(template::TemplateStage::new(config)?),
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
        "docker" => Box::new(docker::Docker::new(config)?),
        "cri" => Box::new(cri::Cri::new(config)?),
        "logfmt" => Box::new(logfmt::Logfmt::new(config)?),
        "drop" => Box::new(drop::Drop::new(config)?),
        "sampling" => Box::new(sampling::Sampling::new(config)?),
        "limit" => Box::new(limit::Limit::new(config)?),
        "pack" => Box::new(pack::Pack::new(config)?),
        "decolorize" => Box::new(decolorize::Decolorize::new(config)?),
        "eventlogmessage" => Box::new(eventlogmessage::EventLogMessage::new(config)?),
        "geoip" => Box::new(geoip::GeoIp::new(config, budget.loader)?),
        "metrics" => Box::new(metrics::Metrics::new(config)?),
        "timestamp" => Box::new(timestamp::Timestamp::new(config)?),
        known if NAMES.contains(&known) => {
            return Err(format!("the {known} stage is not built yet"));
        }
        unknown => return Err(format!("Unknown stage type: {unknown}")),
    })
}

pub use super::goduration::parse as go_duration;

/// Runs `lines` through the stages `yaml` once, then appends what they
/// still hold (`testing::run` hands the entries to `flush` as already
/// released ones, so they go through every stage a second time: wrong for
/// a stage that is not idempotent, such as `pack`).
#[cfg(test)]
pub(crate) fn run_once(yaml: &str, lines: &[&str]) -> Vec<super::Entry> {
    use super::testing::entry;
    let mut pipeline = super::Pipeline::parse_inline(yaml, &super::NoFiles).unwrap();
    let mut entries: Vec<super::Entry> = lines.iter().map(|l| entry(l)).collect();
    let mut cx = super::Context::new(1_700_000_000_000_000_000);
    pipeline.run(&mut entries, &mut cx);
    let mut rest = Vec::new();
    pipeline.flush(&mut rest, &mut cx);
    entries.extend(rest);
    entries
}
