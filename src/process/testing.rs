//! Builders for the stages' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::entry::{Entry, Extracted, Origin, seed_of};
use super::{Context, Pipeline};
use crate::line::Source;

/// An entry of `line` with labels `{app="web", source="stdout"}`.
pub fn entry(line: &str) -> Entry {
    entry_with(line, &[("app", "web"), ("source", "stdout")])
}

pub fn entry_with(line: &str, labels: &[(&str, &str)]) -> Entry {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Entry {
        extracted: Extracted::seeded(seed_of(&labels)),
        labels: Arc::new(labels),
        line: line.to_string(),
        timestamp: 1_700_000_000_000_000_000,
        metadata: Vec::new(),
        origin: Origin::line(Source::Stdout, 0),
    }
}

/// Runs `lines` through the stages `yaml` and flushes what they hold.
pub fn run(yaml: &str, lines: &[&str]) -> Vec<Entry> {
    let mut pipeline = Pipeline::parse_inline(yaml, &super::NoFiles).unwrap();
    let mut entries: Vec<Entry> = lines.iter().map(|l| entry(l)).collect();
    let mut cx = Context::new(1_700_000_000_000_000_000);
    pipeline.run(&mut entries, &mut cx);
    let mut held = Vec::new();
    pipeline.flush(&mut held, &mut cx);
    entries.append(&mut held);
    entries
}

/// The error building the stages `yaml` gives.
pub fn refused(yaml: &str) -> String {
    Pipeline::parse_inline(yaml, &super::NoFiles).unwrap_err()
}

pub fn label<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry.labels.get(name).map(String::as_str)
}
