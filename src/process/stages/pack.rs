//! `pack`: wraps the line and the chosen labels or fields into a JSON
//! object, `{"label":"value",...,"_entry":"the line"}` (keys sorted, then
//! `_entry`; strings escaped as Grafana's JSON library escapes them), and
//! removes those labels. With `ingest_timestamp` (the default) the entry's
//! timestamp becomes the time it is processed: the wall clock the
//! pipeline is given.

use std::collections::BTreeMap;

use super::super::fields::Fields;
use super::super::gojson;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage};

#[derive(Debug, Clone)]
pub struct Pack {
    labels: Vec<String>,
    ingest_timestamp: bool,
}

impl Pack {
    pub fn new(config: &Node) -> Result<Pack, String> {
        let mut f = Fields::new(config)?.weak();
        let labels = f.strings("labels")?.unwrap_or_default();
        let ingest_timestamp = f.bool("ingest_timestamp")?.unwrap_or(true);
        f.finish()?;
        Ok(Pack {
            labels,
            ingest_timestamp,
        })
    }

    fn pack(&self, entry: &mut Entry, now: i64) {
        let mut packed: BTreeMap<&str, String> = BTreeMap::new();
        for name in &self.labels {
            if let Some(value) = entry.extracted.get_string(name) {
                packed.insert(name, value.into_owned());
            }
        }
        let mut line = String::with_capacity(entry.line.len() + 16);
        line.push('{');
        for (name, value) in &packed {
            gojson::write_string(&mut line, name);
            line.push(':');
            gojson::write_string(&mut line, value);
            line.push(',');
        }
        line.push_str("\"_entry\":");
        gojson::write_string(&mut line, &entry.line);
        line.push('}');
        let found: Vec<String> = packed.into_keys().map(str::to_string).collect();
        for name in found {
            entry.remove_label(&name);
        }
        entry.line = line;
        if self.ingest_timestamp {
            entry.timestamp = now;
        }
    }
}

impl Stage for Pack {
    fn name(&self) -> &'static str {
        "pack"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        for entry in entries.iter_mut() {
            self.pack(entry, cx.now);
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, label};
    use super::super::super::{Context, NoFiles, Pipeline};
    use super::super::run_once as run;

    #[test]
    fn labels_and_fields_go_into_the_line() {
        let out = run(
            r#"[{"regex":{"expression":"^(?P<level>\\w+)"}},{"pack":{"labels":["level","app","absent"],"ingest_timestamp":false}}]"#,
            &[r#"info <b>"quoted"</b>"#],
        );
        let e = &out[0];
        assert_eq!(
            e.line,
            r#"{"app":"web","level":"info","_entry":"info \u003cb\u003e\"quoted\"\u003c/b\u003e"}"#
        );
        assert_eq!(label(e, "app"), None, "a packed label leaves the labels");
        assert_eq!(label(e, "source"), Some("stdout"));
        assert_eq!(e.timestamp, 1_700_000_000_000_000_000);

        let out = run("[{pack: }]", &["x\ty"]);
        assert_eq!(out[0].line, r#"{"_entry":"x\ty"}"#);
    }

    #[test]
    fn the_timestamp_becomes_the_processing_time() {
        let mut p = Pipeline::parse_inline("[{pack: {labels: [app]}}]", &NoFiles).unwrap();
        let mut e = vec![entry("x")];
        p.run(&mut e, &mut Context::new(42));
        assert_eq!(e[0].timestamp, 42);
        assert!(
            Pipeline::parse_inline(
                "[{pack: {labels: app, ingest_timestamp: 'false'}}]",
                &NoFiles
            )
            .is_ok()
        );
    }
}
