//! `eventlogmessage`: splits a Windows event log message (`Key: value`
//! lines separated by `\r\n`) from the field `source` (default `message`)
//! into fields. An invalid key is sanitised (or skipped with
//! `drop_invalid_labels`); a key that is already a field gets the suffix
//! `_extracted` unless `overwrite_existing`.
//!
//! Grafana drops an entry whose source field is null without counting it;
//! here it is counted as filtered under `eventlogmessage_invalid_source`,
//! so every line is accounted for.

use std::sync::Arc;

use super::super::entry::is_valid_label_name;
use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage, Value};

const DEFAULT_SOURCE: &str = "message";

#[derive(Debug, Clone)]
pub struct EventLogMessage {
    source: String,
    drop_invalid_labels: bool,
    overwrite_existing: bool,
    reason: Arc<str>,
}

impl EventLogMessage {
    pub fn new(config: &Node) -> Result<EventLogMessage, String> {
        let mut f = Fields::new(config)?;
        let source = f.string("source")?;
        let drop_invalid_labels = f.bool("drop_invalid_labels")?.unwrap_or(false);
        let overwrite_existing = f.bool("overwrite_existing")?.unwrap_or(false);
        f.finish()?;
        if let Some(source) = &source {
            if !is_valid_label_name(source) {
                return Err(format!("invalid label name: {source}"));
            }
        }
        Ok(EventLogMessage {
            source: source.unwrap_or_else(|| DEFAULT_SOURCE.to_string()),
            drop_invalid_labels,
            overwrite_existing,
            reason: Arc::from("eventlogmessage_invalid_source"),
        })
    }

    /// Sets the fields; false when the source is null (Grafana drops it).
    fn process(&self, entry: &mut Entry) -> bool {
        let Some(value) = entry.extracted.get(&self.source) else {
            return true;
        };
        let Some(message) = value.to_go_string().map(|s| s.into_owned()) else {
            return false;
        };
        for line in message.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let mut key = if is_valid_label_name(key) {
                key.to_string()
            } else if self.drop_invalid_labels {
                continue;
            } else {
                sanitize_full_label_name(key)
            };
            if entry.extracted.contains(&key) && !self.overwrite_existing {
                key.push_str("_extracted");
            }
            entry
                .extracted
                .insert(key, Value::String(value.trim().to_string()));
        }
        true
    }
}

/// Grafana's `SanitizeFullLabelName`: every character that may not stand
/// in a label name becomes `_` (a digit may not come first).
pub fn sanitize_full_label_name(input: &str) -> String {
    if input.is_empty() {
        return "_".into();
    }
    input
        .char_indices()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() || c == '_' || (c.is_ascii_digit() && i > 0) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Stage for EventLogMessage {
    fn name(&self) -> &'static str {
        "eventlogmessage"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        entries.retain_mut(|entry| {
            if self.process(entry) {
                return true;
            }
            cx.filter(entry, &self.reason);
            false
        });
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::refused;
    use super::super::run_once as run;
    use super::sanitize_full_label_name;

    const JSON: &str = r#"{"json":{"expressions":{"message":""}}}"#;

    #[test]
    fn message_lines_become_fields() {
        let out = run(
            &format!(r#"[{JSON},{{"eventlogmessage":{{}}}}]"#),
            &[
                r#"{"message":"Account Name: bob\r\nLogon-Type:  3 \r\n9lives: x\r\nno colon\r\napp: mine\r\nmessage: inner"}"#,
            ],
        );
        let x = &out[0].extracted;
        assert_eq!(x.get_string("Account_Name").as_deref(), Some("bob"));
        assert_eq!(x.get_string("Logon_Type").as_deref(), Some("3"));
        assert_eq!(x.get_string("_lives").as_deref(), Some("x"));
        assert_eq!(x.get_string("app").as_deref(), Some("web"), "a label");
        assert_eq!(x.get_string("app_extracted").as_deref(), Some("mine"));
        assert_eq!(x.get_string("message_extracted").as_deref(), Some("inner"));
    }

    #[test]
    fn options() {
        let out = run(
            &format!(
                r#"[{JSON},{{"eventlogmessage":{{"drop_invalid_labels":true,"overwrite_existing":true}}}}]"#
            ),
            &[r#"{"message":"Bad Key: 1\r\napp: mine"}"#],
        );
        let x = &out[0].extracted;
        assert!(!x.contains("Bad_Key"));
        assert_eq!(x.get_string("app").as_deref(), Some("mine"));
        // A null source (json sets null for a missing key): dropped, as
        // Grafana drops it; no source field at all: kept.
        let out = run(
            &format!(r#"[{JSON},{{"eventlogmessage":null}}]"#),
            &[r#"{"message":null}"#, "{}", "not json"],
        );
        assert_eq!(out.len(), 1);
        assert!(refused("[{eventlogmessage: {source: bad-name}}]").contains("invalid label name"));
        assert!(refused("[{eventlogmessage: {drop_invalid_labels: 1}}]").contains("true or false"));
        assert_eq!(sanitize_full_label_name(""), "_");
        assert_eq!(sanitize_full_label_name("é1-a"), "_1_a");
    }
}
