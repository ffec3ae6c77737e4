//! `multiline`: joins the lines of a block (a stack trace) into one entry.
//! A block starts at a line matching `firstline` and takes the following
//! lines of the same stream until the next first line, `max_lines`, or
//! `max_wait_time` without a line. Lines of a stream before its first
//! first line pass alone. Each stream (label set) has its own block.
//!
//! The end of a block is decided from the entries' own timestamps: a line
//! more than `max_wait_time` after the block's last one ends the block
//! before joining, exactly as Grafana's idle timer would have. A replay
//! after a crash therefore cuts the same blocks. The live timer
//! ([`Stage::tick`]) ends a block only once `max_wait_time` has passed
//! since both its last line's timestamp and the moment that line was
//! processed, so lines replayed after a restart are not cut off from the
//! lines still waiting in the FIFO.
//!
//! As in Grafana's driver, the block keeps its first line's timestamp,
//! labels and extracted map (not its structured metadata); a block cut by
//! `max_lines` or the timer continues under the same first line.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;

use super::super::fields::Fields;
use super::super::goregex;
use super::super::yaml::Node;
use super::super::{Context, Entry, Held, Origin, Stage};
use super::go_duration;

const DEFAULT_MAX_LINES: u64 = 128;
const DEFAULT_MAX_WAIT_NS: i64 = 3_000_000_000;

#[derive(Debug, Clone)]
pub struct Multiline {
    firstline: Regex,
    max_lines: u64,
    max_wait: i64,
    /// Per label set: its block.
    streams: BTreeMap<Arc<BTreeMap<String, String>>, Block>,
}

#[derive(Debug, Clone)]
struct Block {
    /// The entry whose line started the block (timestamp, labels, fields).
    start: Entry,
    buffer: String,
    lines: u64,
    /// The journal lines joined so far.
    origin: Option<Origin>,
    last_ts: i64,
    last_seen: i64,
}

impl Multiline {
    pub fn new(config: &Node) -> Result<Multiline, String> {
        let mut f = Fields::new(config)?.weak();
        let firstline = f.string("firstline")?;
        let max_lines = f.u64("max_lines")?;
        let max_wait = f.string("max_wait_time")?;
        f.finish()?;
        let Some(firstline) = firstline else {
            return Err("multiline stage config must define `firstline` regular expression".into());
        };
        let firstline = goregex::compile(&firstline)
            .map_err(|e| format!("multiline stage first line regex compilation error: {e}"))?;
        let max_wait = match max_wait {
            None => DEFAULT_MAX_WAIT_NS,
            Some(text) => go_duration(&text)
                .map_err(|e| format!("multiline stage `max_wait_time` parse error: {e}"))?,
        };
        Ok(Multiline {
            firstline,
            max_lines: max_lines.unwrap_or(DEFAULT_MAX_LINES),
            max_wait,
            streams: BTreeMap::new(),
        })
    }

    fn push(&mut self, entry: Entry, now: i64, out: &mut Vec<Entry>) {
        let first = self.firstline.is_match(&entry.line);
        let block = match self.streams.get_mut(&entry.labels) {
            Some(block) => block,
            None if !first => {
                out.push(entry);
                return;
            }
            None => self.streams.entry(entry.labels.clone()).or_insert(Block {
                start: entry.clone(),
                buffer: String::new(),
                lines: 0,
                origin: None,
                last_ts: entry.timestamp,
                last_seen: now,
            }),
        };
        if !block.buffer.is_empty() && entry.timestamp.saturating_sub(block.last_ts) > self.max_wait
        {
            flush(block, out);
        }
        if first {
            flush(block, out);
        }
        if !block.buffer.is_empty() {
            block.buffer.push('\n');
        }
        block.buffer.push_str(&entry.line);
        block.lines += 1;
        block.last_ts = entry.timestamp;
        block.last_seen = now;
        match &mut block.origin {
            Some(origin) => origin.absorb(&entry.origin),
            None => block.origin = Some(entry.origin),
        }
        if first {
            block.start = entry;
        }
        if block.lines == self.max_lines {
            flush(block, out);
        }
    }

    fn due(&self, block: &Block) -> i64 {
        block
            .last_ts
            .max(block.last_seen)
            .saturating_add(self.max_wait)
    }
}

/// Hands on the block's lines as one entry, and empties it.
fn flush(block: &mut Block, out: &mut Vec<Entry>) {
    let Some(origin) = block.origin.take() else {
        return;
    };
    out.push(Entry {
        labels: block.start.labels.clone(),
        extracted: block.start.extracted.clone(),
        line: std::mem::take(&mut block.buffer),
        timestamp: block.start.timestamp,
        metadata: Vec::new(),
        origin,
    });
    block.lines = 0;
}

impl Stage for Multiline {
    fn name(&self) -> &'static str {
        "multiline"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            self.push(entry, cx.now, &mut out);
        }
        *entries = out;
    }

    fn tick(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        if cx.input_waiting {
            return;
        }
        let due: Vec<_> = self
            .streams
            .iter()
            .filter(|(_, b)| b.origin.is_some() && self.due(b) <= cx.now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(block) = self.streams.get_mut(&key) {
                flush(block, out);
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Entry>, _cx: &mut Context) {
        for block in self.streams.values_mut() {
            flush(block, out);
        }
    }

    fn next_tick(&self) -> Option<i64> {
        self.streams
            .values()
            .filter(|b| b.origin.is_some())
            .map(|b| self.due(b))
            .min()
    }

    fn held(&self, held: &mut Held) {
        for origin in self.streams.values().filter_map(|b| b.origin.as_ref()) {
            held.add(origin);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Multiline {
            streams: BTreeMap::new(),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, refused};
    use super::super::super::{Context, Pipeline};

    const TRACE: &[&str] = &[
        "before",
        "2024-01-01 ERROR boom",
        "java.lang.IllegalStateException: x",
        "\tat a.b(C.java:1)",
        "2024-01-01 INFO next",
    ];

    fn run_at(yaml: &str, lines: &[(&str, i64)]) -> Vec<String> {
        let mut p = Pipeline::parse_inline(yaml, &super::super::super::NoFiles).unwrap();
        let mut out = Vec::new();
        for (line, ts) in lines {
            let mut e = vec![entry(line)];
            e[0].timestamp = *ts;
            let mut cx = Context::new(*ts);
            p.run(&mut e, &mut cx);
            out.extend(e.into_iter().map(|e| e.line));
        }
        let mut rest = Vec::new();
        p.flush(&mut rest, &mut Context::new(0));
        out.extend(rest.into_iter().map(|e| e.line));
        out
    }

    #[test]
    fn a_stack_trace_is_one_entry() {
        let yaml = r#"[{"multiline":{"firstline":"^\\d{4}-"}}]"#;
        let lines: Vec<(&str, i64)> = TRACE.iter().map(|l| (*l, 0)).collect();
        let out = run_at(yaml, &lines);
        assert_eq!(
            out,
            [
                "before",
                "2024-01-01 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.b(C.java:1)",
                "2024-01-01 INFO next"
            ]
        );
    }

    #[test]
    fn a_gap_in_the_timestamps_ends_a_block_as_the_timer_would() {
        let yaml = r#"[{"multiline":{"firstline":"^\\d{4} ","max_wait_time":"1s"}}]"#;
        let s = 1_000_000_000;
        let out = run_at(
            yaml,
            &[("2024 a", 0), ("b", s / 2), ("c", 3 * s), ("d", 3 * s)],
        );
        assert_eq!(
            out,
            ["2024 a\nb", "c\nd"],
            "c continues under the same first line"
        );
    }

    #[test]
    fn max_lines_cuts_a_block() {
        let yaml = r#"[{"multiline":{"firstline":"^x","max_lines":"2"}}]"#;
        let out = run_at(yaml, &[("x1", 0), ("a", 0), ("b", 0), ("x2", 0)]);
        assert_eq!(out, ["x1\na", "b", "x2"]);
    }

    #[test]
    fn the_live_timer_waits_for_the_timestamp_and_the_processing_time() {
        let mut p = Pipeline::parse_inline(
            r#"[{"multiline":{"firstline":"^x","max_wait_time":"1s"}}]"#,
            &super::super::super::NoFiles,
        )
        .unwrap();
        let s = 1_000_000_000;
        let mut e = vec![entry("x")];
        e[0].timestamp = 0;
        p.run(&mut e, &mut Context::new(10 * s));
        assert!(e.is_empty());
        assert_eq!(
            p.next_tick(),
            Some(11 * s),
            "processed late: wait from then"
        );
        let mut out = Vec::new();
        p.tick(&mut out, &mut Context::new(10 * s + 1));
        assert!(out.is_empty());
        p.tick(&mut out, &mut Context::new(11 * s));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn configs() {
        assert!(refused("[{multiline: {}}]").contains("firstline"));
        assert!(refused("[{multiline: {firstline: '('}}]").contains("regex compilation error"));
        assert!(
            refused("[{multiline: {firstline: x, max_wait_time: soon}}]").contains("max_wait_time")
        );
    }
}
