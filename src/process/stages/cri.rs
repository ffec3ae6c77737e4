//! `cri`: Grafana's fixed sub-pipeline for CRI log lines
//! (`2019-01-01T01:00:00.000000001Z stderr P part of a line`): `regex`
//! (time, stream, flags, content), `labels` (stream), `timestamp` (time,
//! RFC3339Nano, fudged on failure), `output` (content), then the
//! joining of partial lines: a `P` line waits, per label set, for the
//! lines that follow until an `F` line of the same label set ends it.
//!
//! - `max_partial_lines` (default 100): when that many label sets have a
//!   line waiting, a new `P` line first hands all of them on as they are
//!   (in the order they started; Grafana's order is a Go map's) and then
//!   waits alone.
//! - `max_partial_line_size` with `max_partial_line_size_truncate`: a
//!   waiting line is cut to that many bytes (at a character boundary
//!   here: Go may cut a UTF-8 character in two).
//! - The waiting lines never hold more than [`MAX_HELD`] bytes together
//!   here: a part that would pass that first hands on what waits, as they
//!   are (Grafana's grow without bound).
//! - At the end of the input, lines still waiting are handed on (Grafana's
//!   driver loses them), so every line is accounted for.
//!
//! The joined entry is the last part's (its timestamp, labels and fields)
//! and stands for all the journal lines joined.

use std::collections::BTreeMap;

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{Context, Entry, Held, Labels, Stage};
use super::docker::part;

const DEFAULT_MAX_PARTIAL_LINES: i64 = 100;
/// Most bytes the waiting lines of one stage hold together.
pub const MAX_HELD: usize = 16 << 20;

#[derive(Debug)]
pub struct Cri {
    regex: Box<dyn Stage>,
    labels: Box<dyn Stage>,
    time: Box<dyn Stage>,
    content: Box<dyn Stage>,
    tags: Box<dyn Stage>,
    max_partial_lines: i64,
    /// Cut waiting lines to this many bytes.
    truncate: Option<u64>,
    /// Per label set: the line waiting, and when it started waiting.
    partial: BTreeMap<Labels, (u64, Entry)>,
    started: u64,
    /// Bytes of the waiting lines, and their bound.
    held_bytes: usize,
    max_held: usize,
}

impl Cri {
    pub fn new(config: &Node) -> Result<Cri, String> {
        let mut f = Fields::new(config)?.weak();
        let max_partial_lines = f.i64("max_partial_lines")?.unwrap_or(0);
        let size = f.u64("max_partial_line_size")?.unwrap_or(0);
        let truncate = f.bool("max_partial_line_size_truncate")?.unwrap_or(false);
        f.finish()?;
        Ok(Cri {
            regex: part(
                "regex",
                r#"{"expression":"^(?s)(?P<time>\\S+?) (?P<stream>stdout|stderr) (?P<flags>\\S+?) (?P<content>.*)$"}"#,
            )?,
            labels: part("labels", r#"{"stream":null}"#)?,
            time: part("timestamp", r#"{"source":"time","format":"RFC3339Nano"}"#)?,
            content: part("output", r#"{"source":"content"}"#)?,
            tags: part("output", r#"{"source":"tags"}"#)?,
            max_partial_lines: if max_partial_lines == 0 {
                DEFAULT_MAX_PARTIAL_LINES
            } else {
                max_partial_lines
            },
            truncate: truncate.then_some(size),
            partial: BTreeMap::new(),
            started: 0,
            held_bytes: 0,
            max_held: MAX_HELD,
        })
    }

    fn cut(&self, entry: &mut Entry) {
        if let Some(size) = self.truncate {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if entry.line.len() > size {
                let mut at = size;
                while !entry.line.is_char_boundary(at) {
                    at -= 1;
                }
                entry.line.truncate(at);
            }
        }
    }

    /// Joins `entry` after what waits for its label set.
    fn join(&mut self, entry: &mut Entry, out: &mut Vec<Entry>) {
        if let Some((_, prev)) = self.partial.remove(&entry.labels) {
            self.held_bytes = self.held_bytes.saturating_sub(prev.line.len());
            if prev.line.len().saturating_add(entry.line.len()) > self.max_held {
                out.push(prev);
            } else {
                entry.line.insert_str(0, &prev.line);
                entry.origin.absorb(&prev.origin);
            }
        }
    }

    fn push(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        let partial = entry.extracted.get("flags").and_then(|v| v.as_str()) == Some("P");
        if !partial {
            if self.partial.contains_key(&entry.labels) {
                self.join(&mut entry, out);
                self.cut(&mut entry);
            }
            out.push(entry);
            return;
        }
        let mut started = None;
        if self.partial.len() as i64 >= self.max_partial_lines {
            self.flush_into(out);
        } else {
            started = self.partial.get(&entry.labels).map(|(s, _)| *s);
            self.join(&mut entry, out);
        }
        self.cut(&mut entry);
        if self.held_bytes.saturating_add(entry.line.len()) > self.max_held {
            self.flush_into(out);
            started = None;
        }
        let started = started.unwrap_or_else(|| {
            self.started += 1;
            self.started
        });
        self.held_bytes += entry.line.len();
        self.partial.insert(entry.labels.clone(), (started, entry));
    }

    /// Hands on every waiting line, in the order they started.
    fn flush_into(&mut self, out: &mut Vec<Entry>) {
        self.held_bytes = 0;
        let mut waiting: Vec<(u64, Entry)> =
            std::mem::take(&mut self.partial).into_values().collect();
        waiting.sort_by_key(|(started, _)| *started);
        out.extend(waiting.into_iter().map(|(_, e)| e));
    }
}

impl Stage for Cri {
    fn name(&self) -> &'static str {
        "cri"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        self.regex.run(entries, cx);
        self.labels.run(entries, cx);
        self.time.run(entries, cx);
        self.content.run(entries, cx);
        self.tags.run(entries, cx);
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            self.push(entry, &mut out);
        }
        *entries = out;
    }

    fn flush(&mut self, out: &mut Vec<Entry>, _cx: &mut Context) {
        self.flush_into(out);
    }

    fn held(&self, held: &mut Held) {
        for (_, entry) in self.partial.values() {
            held.add(&entry.origin);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Cri {
            regex: self.regex.fresh(),
            labels: self.labels.fresh(),
            time: self.time.fresh(),
            content: self.content.fresh(),
            tags: self.tags.fresh(),
            max_partial_lines: self.max_partial_lines,
            truncate: self.truncate,
            partial: BTreeMap::new(),
            started: 0,
            held_bytes: 0,
            max_held: MAX_HELD,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, label, refused};
    use super::super::super::{Context, Held, NoFiles, Pipeline};
    use super::super::run_once;

    fn lines(yaml: &str, input: &[&str]) -> Vec<String> {
        run_once(yaml, input).into_iter().map(|e| e.line).collect()
    }

    const T: &str = "2019-01-01T01:00:00.000000001Z";

    #[test]
    fn partial_lines_are_joined_per_stream() {
        let input = [
            format!("{T} stderr P part1 "),
            format!("{T} stdout F full"),
            format!("{T} stderr P part2 "),
            "2019-01-01T01:00:00.000000004Z stderr F end".to_string(),
            "not cri".to_string(),
        ];
        let input: Vec<&str> = input.iter().map(String::as_str).collect();
        let out = run_once("[{cri: {}}]", &input);
        let got: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(got, ["full", "part1 part2 end", "not cri"]);
        assert_eq!(label(&out[1], "stream"), Some("stderr"));
        assert_eq!(out[1].timestamp, 1_546_304_400_000_000_004);
        assert_eq!(
            out[1].origin.lines, 3,
            "the joined entry stands for 3 lines"
        );
    }

    #[test]
    fn waiting_lines_are_held_and_flushed_at_the_end() {
        let mut p = Pipeline::parse_inline("[{cri: }]", &NoFiles).unwrap();
        let mut e = vec![entry(&format!("{T} stdout P dangling"))];
        let mut cx = Context::new(0);
        p.run(&mut e, &mut cx);
        assert!(e.is_empty());
        let mut held = Held::default();
        p.held(&mut held);
        assert_eq!(held.lines, 1);
        let mut out = Vec::new();
        p.flush(&mut out, &mut cx);
        assert_eq!(out[0].line, "dangling");
    }

    #[test]
    fn max_partial_lines_hands_on_what_waits() {
        let out = lines(
            "[{cri: {max_partial_lines: 1}}]",
            &[
                &format!("{T} stdout P a"),
                &format!("{T} stderr P b"),
                &format!("{T} stdout P c"),
                &format!("{T} stdout F d"),
            ],
        );
        assert_eq!(out, ["a", "b", "cd"]);
    }

    #[test]
    fn waiting_lines_are_bounded() {
        use super::super::super::Stage;
        let config = super::super::super::yaml::parse("{}").unwrap();
        let mut cri = super::Cri::new(&config).unwrap();
        cri.max_held = 10;
        let mut e = vec![
            entry(&format!("{T} stdout P 123456")),
            entry(&format!("{T} stderr P abcdef")),
            entry(&format!("{T} stderr F end")),
        ];
        cri.run(&mut e, &mut Context::new(0));
        let got: Vec<&str> = e.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            got,
            ["123456", "abcdefend"],
            "the stdout part was handed on alone"
        );
        assert_eq!(cri.held_bytes, 0);
    }

    #[test]
    fn truncation() {
        let out = lines(
            "[{cri: {max_partial_line_size: 5, max_partial_line_size_truncate: true}}]",
            &[
                &format!("{T} stdout P abc"),
                &format!("{T} stdout P déf"),
                &format!("{T} stdout F ghi"),
                &format!("{T} stdout F long line"),
            ],
        );
        assert_eq!(
            out,
            ["abcdg", "long line"],
            "waiting lines are cut (at a character boundary), an F line alone is not"
        );
        assert!(
            refused("[{cri: {max_partial_line_size: 256KB}}]").contains("max_partial_line_size")
        );
        assert!(refused("[{cri: {foo: 1}}]").contains("unknown setting"));
    }
}
