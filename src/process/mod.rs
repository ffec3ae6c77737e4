//! Pipeline stages and relabelling, as Grafana's driver runs them
//! (`loki-pipeline-stages`, `loki-pipeline-stage-file`,
//! `loki-relabel-config`). Pure: no I/O, no clock but the one it is given,
//! so delivery, a replay after a crash and the dry run (`loki-logdriver
//! pipeline`) all get the same entries from the same lines.
//!
//! ```text
//!  journal lines ─▶ Entry (labels + source, line, timestamp; extracted
//!                   map seeded with the labels)
//!                     │
//!                     ▼
//!                  stage 1 ─▶ stage 2 ─▶ … ─▶ stage n ─▶ entries to push
//!                  (each stage takes the entries in order; it may change,
//!                   drop (counted as filtered), hold (multiline, limit) or
//!                   release what it held on a tick or at the end)
//! ```
//!
//! Relabelling runs once per container, on its labels, before any line
//! ([`relabel`]). Each stage is a file in [`stages`]; the parsers they need
//! sit beside them ([`yaml`], and the stage-config reader `fields`).
//!
//! An entry remembers which journal lines it stands for ([`Origin`]), so
//! delivery counts every line exactly once (sent, dropped, filtered or
//! still held) and never moves the journal cursor past a line a stage
//! still holds: after a crash the held lines are read again and the
//! stages decide the same (multiline ends a block by the entries' own
//! timestamps, not only by a live timer).

pub mod entry;
mod fields;
mod goduration;
mod gojson;
pub mod goregex;
pub mod gotemplate;
pub mod gotime;
pub mod relabel;
pub mod selector;
pub mod stages;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use entry::{Entry, Extracted, Labels, Origin, TENANT_LABEL, Value};
pub use stages::metrics::{Histogram, Kind, Measure, Sample};

use crate::line::Seq;
use yaml::Node;

/// Most stages in one pipeline, nested ones included.
pub const MAX_STAGES: usize = 1000;
/// Deepest nesting of `match` stages.
pub const MAX_NESTING: usize = 16;

/// What the stages are given besides entries: the wall clock (for
/// multiline's idle timer, `limit`, `drop older_than`), and where they
/// count what they filter out.
#[derive(Debug)]
pub struct Context {
    /// Nanoseconds since the Unix epoch.
    pub now: i64,
    /// Lines were read that have not reached the stages yet: an idle timer
    /// must not end a block now (the next line may belong to it).
    pub input_waiting: bool,
    filtered: BTreeMap<Arc<str>, u64>,
}

impl Context {
    pub fn new(now: i64) -> Context {
        Context {
            now,
            input_waiting: false,
            filtered: BTreeMap::new(),
        }
    }

    /// Counts an entry a stage drops on purpose, under `reason` (a
    /// stage's `drop_counter_reason`).
    pub fn filter(&mut self, entry: &Entry, reason: &Arc<str>) {
        *self.filtered.entry(reason.clone()).or_default() += u64::from(entry.origin.lines);
    }

    /// Lines filtered since the last call, by reason.
    pub fn take_filtered(&mut self) -> BTreeMap<Arc<str>, u64> {
        std::mem::take(&mut self.filtered)
    }
}

/// Lines a pipeline holds (a multiline block being built, entries a
/// `limit` stage makes wait), and the cursor positions they pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub lines: u64,
    pub hold: [Seq; 2],
}

impl Default for Held {
    fn default() -> Held {
        Held {
            lines: 0,
            hold: [Seq::MAX; 2],
        }
    }
}

impl Held {
    pub fn add(&mut self, origin: &Origin) {
        self.lines += u64::from(origin.lines);
        for s in 0..2 {
            self.hold[s] = self.hold[s].min(origin.hold[s]);
        }
    }
}

/// One stage of a pipeline. A stage object holds its configuration and,
/// for the stateful ones, its state; [`Stage::fresh`] gives a copy with
/// the configuration and no state, for each container.
pub trait Stage: Send + Sync + fmt::Debug {
    fn name(&self) -> &'static str;

    /// Takes `entries` in order and leaves in their place what comes out.
    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context);

    /// Appends to `out` what it holds that is due at `cx.now`.
    fn tick(&mut self, _out: &mut Vec<Entry>, _cx: &mut Context) {}

    /// The input ended: appends to `out` what it holds for more input (a
    /// multiline block). What waits for a time (a `limit` stage's entries)
    /// goes on waiting, and `tick` releases it.
    fn flush(&mut self, _out: &mut Vec<Entry>, _cx: &mut Context) {}

    /// When (wall clock, ns) `tick` would release something.
    fn next_tick(&self) -> Option<i64> {
        None
    }

    /// Adds what it holds.
    fn held(&self, _held: &mut Held) {}

    /// Whether it holds so much that no more input should come yet.
    fn is_full(&self) -> bool {
        false
    }

    /// Appends the metric series it keeps (a `metrics` stage; `limit`'s
    /// drops by label), as they stand at `now` (wall clock, ns): the
    /// plugin's Prometheus endpoint serves them.
    fn metrics(&self, _now: i64, _out: &mut Vec<Sample>) {}

    fn fresh(&self) -> Box<dyn Stage>;
}

/// A stateless stage that changes entries one at a time.
pub trait EachEntry: Send + Sync + fmt::Debug + Clone + 'static {
    const NAME: &'static str;
    fn apply(&self, entry: &mut Entry);
}

impl<T: EachEntry> Stage for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn run(&mut self, entries: &mut Vec<Entry>, _cx: &mut Context) {
        for entry in entries.iter_mut() {
            self.apply(entry);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

/// A list of stages: a container's pipeline, or the nested one of a
/// `match` stage.
#[derive(Debug, Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    /// A `match` stage's pipeline: like Grafana's, it seeds each entry's
    /// extracted map with the entry's labels as they are when it enters.
    nested: bool,
}

/// Reads a file a stage's configuration names (a `geoip` database): the
/// caller decides where files may come from (the secrets mount) and how
/// large they may be, and reads them off the async runtime.
pub trait Loader: Send + Sync + fmt::Debug {
    /// The file's bytes, refused if larger than `max_bytes`.
    fn read(&self, path: &str, max_bytes: u64) -> Result<Arc<Vec<u8>>, String>;
}

/// A [`Loader`] for configurations that may name no file.
#[derive(Debug, Default)]
pub struct NoFiles;

impl Loader for NoFiles {
    fn read(&self, path: &str, _max_bytes: u64) -> Result<Arc<Vec<u8>>, String> {
        Err(format!("cannot read {path:?}: no files may be read here"))
    }
}

/// What building one configuration's stages has used so far (stages,
/// nested ones included, and how deep `match` stages nest), and where it
/// reads files from.
pub struct Budget<'a> {
    pub stages: usize,
    pub depth: usize,
    pub loader: &'a dyn Loader,
}

impl<'a> Budget<'a> {
    pub fn new(loader: &'a dyn Loader) -> Budget<'a> {
        Budget {
            stages: 0,
            depth: 0,
            loader,
        }
    }
}

impl Pipeline {
    /// `loki-pipeline-stages`: a YAML (or JSON) list of stages.
    pub fn parse_inline(text: &str, loader: &dyn Loader) -> Result<Pipeline, String> {
        let node = yaml::parse(text)?;
        if node.is_null() {
            return Ok(Pipeline::default());
        }
        Pipeline::from_list(&node, &mut Budget::new(loader))
    }

    /// The contents of a `loki-pipeline-stage-file`: YAML with the stages
    /// under a top-level `pipeline_stages:` key.
    pub fn parse_file(text: &str, loader: &dyn Loader) -> Result<Pipeline, String> {
        let node = yaml::parse(text)?;
        let mut top = fields::Fields::new(&node)
            .map_err(|e| format!("{e}: the file holds the stages under a pipeline_stages: key"))?;
        let stages = top.node("pipeline_stages").cloned();
        top.finish()
            .map_err(|e| format!("{e} (the file holds pipeline_stages:)"))?;
        match stages {
            Some(list) => Pipeline::from_list(&list, &mut Budget::new(loader)),
            None => Ok(Pipeline::default()),
        }
    }

    /// Builds the stages of a list; each item is a mapping of exactly one
    /// key, the stage's name, to its configuration.
    pub fn from_list(node: &Node, budget: &mut Budget) -> Result<Pipeline, String> {
        let Node::Seq(items) = node else {
            return Err(format!(
                "expected a list of stages (- json: ...), got {}",
                node.kind()
            ));
        };
        let mut stages = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Node::Map(entries) = item else {
                return Err(format!(
                    "stage {}: each stage is a mapping of its name to its settings (must end with a `:`), got {}",
                    i + 1,
                    item.kind()
                ));
            };
            if entries.len() > 1 {
                return Err(format!(
                    "stage {}: a pipeline stage must contain only one key, got {}",
                    i + 1,
                    entries.len()
                ));
            }
            for (key, config) in entries {
                let Some(name) = key.as_str() else {
                    return Err(format!("stage {}: the stage name must be a string", i + 1));
                };
                budget.stages += 1;
                if budget.stages > MAX_STAGES {
                    return Err(format!("more than {MAX_STAGES} stages"));
                }
                let stage = stages::build(name, config, budget)
                    .map_err(|e| format!("invalid {name} stage config: {e}"))?;
                stages.push(stage);
            }
        }
        Ok(Pipeline {
            stages,
            nested: false,
        })
    }

    /// This pipeline as a `match` stage's.
    pub fn nested(mut self) -> Pipeline {
        self.nested = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stages' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// A copy with every stage's configuration and none of its state.
    pub fn fresh(&self) -> Pipeline {
        Pipeline {
            stages: self.stages.iter().map(|s| s.fresh()).collect(),
            nested: self.nested,
        }
    }

    /// Runs entries through every stage.
    pub fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        if self.nested {
            for entry in entries.iter_mut() {
                for (name, value) in entry.labels.iter() {
                    entry
                        .extracted
                        .insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        for stage in &mut self.stages {
            if entries.is_empty() {
                return;
            }
            stage.run(entries, cx);
        }
    }

    /// Releases what is due: what a stage releases goes through the
    /// stages after it.
    pub fn tick(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        for stage in &mut self.stages {
            if !out.is_empty() {
                stage.run(out, cx);
            }
            stage.tick(out, cx);
        }
    }

    /// Releases everything held, in stage order.
    pub fn flush(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        for stage in &mut self.stages {
            if !out.is_empty() {
                stage.run(out, cx);
            }
            stage.flush(out, cx);
        }
    }

    pub fn next_tick(&self) -> Option<i64> {
        self.stages.iter().filter_map(|s| s.next_tick()).min()
    }

    pub fn held(&self, held: &mut Held) {
        for stage in &self.stages {
            stage.held(held);
        }
    }

    pub fn is_full(&self) -> bool {
        self.stages.iter().any(|s| s.is_full())
    }

    /// The metric series its stages keep, as they stand at `now`.
    pub fn metrics(&self, now: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        self.metrics_into(now, &mut out);
        out
    }

    /// Appends the metric series its stages keep (for a stage that holds a
    /// pipeline, such as `match`).
    pub fn metrics_into(&self, now: i64, out: &mut Vec<Sample>) {
        for stage in &self.stages {
            stage.metrics(now, out);
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
