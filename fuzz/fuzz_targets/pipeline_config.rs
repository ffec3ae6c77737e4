//! Users' `loki-pipeline-stages`, `loki-pipeline-stage-file` and
//! `loki-relabel-config` text, then a few lines through what they build.
//!
//! Invariants: building never panics or hangs (libFuzzer's timeout); an
//! error is a bounded message; a pipeline that builds processes lines,
//! ticks and flushes without panicking, and every line is accounted for:
//! what comes out plus what was filtered plus what it still holds is what
//! went in.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::line::Source;
use loki_logdriver::process::entry::seed_of;
use loki_logdriver::process::{
    Context, Entry, Extracted, Held, NoFiles, Origin, Pipeline, relabel,
};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    file_form: bool,
    relabel: Option<String>,
    lines: Vec<(String, i32)>,
}

fuzz_target!(|input: Input| {
    if let Some(rules) = &input.relabel {
        match relabel::parse(rules) {
            Ok(rules) => {
                let mut labels: BTreeMap<String, String> =
                    [("container_name".to_string(), "app".to_string())].into();
                let _ = rules.apply(&mut labels);
            }
            Err(err) => assert!(err.len() < 10_000, "an error of {} bytes", err.len()),
        }
    }
    let built = if input.file_form {
        Pipeline::parse_file(&input.text, &NoFiles)
    } else {
        Pipeline::parse_inline(&input.text, &NoFiles)
    };
    let mut pipeline = match built {
        Ok(p) => p.fresh(),
        Err(err) => {
            assert!(err.len() < 10_000, "an error of {} bytes", err.len());
            return;
        }
    };
    let labels: BTreeMap<String, String> = [
        ("container_name".to_string(), "app".to_string()),
        ("source".to_string(), "stdout".to_string()),
    ]
    .into();
    let seed = seed_of(&labels);
    let labels = Arc::new(labels);
    let mut now = 1_700_000_000_000_000_000i64;
    let mut went_in = 0u64;
    let mut came_out = 0u64;
    let mut filtered = 0u64;
    for (i, (line, step)) in input.lines.iter().take(64).enumerate() {
        now = now.saturating_add(i64::from(*step) * 1_000_000);
        let mut entries = vec![Entry {
            labels: labels.clone(),
            extracted: Extracted::seeded(seed.clone()),
            line: line.chars().take(4096).collect(),
            timestamp: now,
            metadata: Vec::new(),
            origin: Origin::line(Source::Stdout, i as u64),
        }];
        went_in += 1;
        let mut cx = Context::new(now);
        pipeline.run(&mut entries, &mut cx);
        let mut due = Vec::new();
        pipeline.tick(&mut due, &mut cx);
        entries.append(&mut due);
        came_out += entries.iter().map(|e| u64::from(e.origin.lines)).sum::<u64>();
        filtered += cx.take_filtered().values().sum::<u64>();
    }
    let mut held = Held::default();
    pipeline.held(&mut held);
    let mut rest = Vec::new();
    let mut cx = Context::new(now);
    pipeline.flush(&mut rest, &mut cx);
    let flushed: u64 = rest.iter().map(|e| u64::from(e.origin.lines)).sum();
    let flush_filtered: u64 = cx.take_filtered().values().sum();
    assert_eq!(
        came_out + filtered + held.lines,
        went_in,
        "lines out {came_out} + filtered {filtered} + held {} != in {went_in}",
        held.lines
    );
    assert_eq!(flushed + flush_filtered, held.lines, "a flush hands on what was held");
});
