//! `timestamp`: the entry's timestamp from an extracted field, in a named
//! format, a Go reference layout or a Unix form, with `fallback_formats`
//! and a `location`. On failure, `action_on_failure: fudge` (the default)
//! takes the last good timestamp of the same label set plus 1 ns, so
//! entries keep their order; `skip` keeps the time dockerd read the line.
//! The parsing itself is Go's, in [`super::super::gotime`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::super::fields::Fields;
use super::super::gotime::TimestampParser;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage};

/// Label sets whose last good timestamp is remembered (Grafana's LRU size).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Timestamp {
    source: String,
    parser: Arc<TimestampParser>,
    fudge: bool,
    /// Per label set: the last timestamp set, and when it was last used.
    last: HashMap<Arc<BTreeMap<String, String>>, (i64, u64)>,
    uses: u64,
}

impl Timestamp {
    pub fn new(config: &Node) -> Result<Timestamp, String> {
        if config.is_null() {
            return Err("empty timestamp stage configuration".into());
        }
        let mut f = Fields::new(config)?;
        let source = f.string("source")?.unwrap_or_default();
        let format = f.string("format")?.unwrap_or_default();
        let fallbacks = f.strings("fallback_formats")?.unwrap_or_default();
        let location = f.string("location")?;
        let action = f.string("action_on_failure")?;
        f.finish()?;
        if source.is_empty() {
            return Err("timestamp source value is required if timestamp is specified".into());
        }
        let parser = TimestampParser::new(&format, &fallbacks, location.as_deref())?;
        let fudge = match action.as_deref() {
            None | Some("fudge") => true,
            Some("skip") => false,
            Some(_) => return Err("invalid action on failure (must be one of [skip fudge])".into()),
        };
        Ok(Timestamp {
            source,
            parser: Arc::new(parser),
            fudge,
            last: HashMap::new(),
            uses: 0,
        })
    }

    fn apply(&mut self, entry: &mut Entry, now: i64) {
        let parsed = entry
            .extracted
            .get_string(&self.source)
            .and_then(|value| self.parser.parse(&value, now).ok());
        self.uses += 1;
        match parsed {
            Some(ts) => {
                entry.timestamp = ts;
                if self.fudge {
                    self.remember(entry.labels.clone(), ts);
                }
            }
            None if self.fudge => {
                if let Some((last, used)) = self.last.get_mut(&entry.labels) {
                    *last = last.saturating_add(1);
                    *used = self.uses;
                    entry.timestamp = *last;
                }
            }
            None => {}
        }
    }

    fn remember(&mut self, labels: Arc<BTreeMap<String, String>>, ts: i64) {
        if self.last.len() >= MAX_REMEMBERED && !self.last.contains_key(&labels) {
            let oldest = self
                .last
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(labels, (ts, self.uses));
    }
}

impl Stage for Timestamp {
    fn name(&self) -> &'static str {
        "timestamp"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        for entry in entries.iter_mut() {
            self.apply(entry, cx.now);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Timestamp {
            last: HashMap::new(),
            uses: 0,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    #[test]
    fn timestamps_from_fields_with_fudge_and_skip() {
        let stages = r#"[{"regex":{"expression":"^(?P<t>\\S+)"}},{"timestamp":{"source":"t","format":"RFC3339Nano"}}]"#;
        let out = run(
            stages,
            &[
                "2024-03-05T10:11:12.5Z a",
                "garbage b",
                "2024-03-05T10:11:13+01:00 c",
            ],
        );
        assert_eq!(out[0].timestamp, 1_709_633_472_500_000_000);
        assert_eq!(
            out[1].timestamp, 1_709_633_472_500_000_001,
            "fudged: last good + 1ns"
        );
        assert_eq!(out[2].timestamp, 1_709_629_873_000_000_000);
        let skip = r#"[{"regex":{"expression":"^(?P<t>\\S+)"}},{"timestamp":{"source":"t","format":"UnixMs","action_on_failure":"skip"}}]"#;
        let out = run(skip, &["1700000000123 a", "nope b"]);
        assert_eq!(out[0].timestamp, 1_700_000_000_123_000_000);
        assert_eq!(out[1].timestamp, 1_700_000_000_000_000_000, "kept as read");
    }

    #[test]
    fn layouts_and_locations() {
        let stages = r#"[{"regex":{"expression":"^(?P<t>.{23})"}},{"timestamp":{"source":"t","format":"2006-01-02 15:04:05.000","location":"Europe/Paris"}}]"#;
        let out = run(stages, &["2024-07-01 12:00:00.250 x"]);
        assert_eq!(out[0].timestamp, 1_719_828_000_250_000_000);
        assert!(
            refused(r#"[{"timestamp":{"source":"t","format":"RFC3339","location":"Mars/Base"}}]"#)
                .contains("location")
        );
        assert!(refused(r#"[{"timestamp":{"source":"t"}}]"#).contains("format is required"));
        assert!(refused(r#"[{"timestamp":{"format":"RFC3339"}}]"#).contains("source"));
        assert!(
            refused(
                r#"[{"timestamp":{"source":"t","format":"RFC3339","action_on_failure":"explode"}}]"#
            )
            .contains("action on failure")
        );
    }
}
