//! Plugin-wide defaults for log-opts (the `LOG_OPTS` setting): a JSON
//! object of log-opt to value, set once with `docker plugin set`, under
//! every container's own log-opts (a container's value wins).
//!
//! Credentials in the defaults belong to the default `loki-url`: a
//! container that sends to another URL gets none of them, so a log-opt in
//! a compose file cannot make the plugin send the host's Loki credentials
//! somewhere else.

use std::collections::{BTreeMap, HashMap};

use crate::config::options::{ContainerConfig, OptionContext};
use crate::config::table::{self, is_credential, is_dockers_own};

/// A placeholder URL to validate defaults that have none.
const PLACEHOLDER_URL: &str = "http://loki.invalid/loki/api/v1/push";

/// Validated plugin-wide log-opt defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptDefaults {
    opts: BTreeMap<String, String>,
}

impl LogOptDefaults {
    /// Parses and validates `LOG_OPTS`. An error names the setting and the
    /// option, and never quotes a credential (`LOG_OPTS` may hold one).
    pub fn parse(text: &str, context: &OptionContext) -> Result<LogOptDefaults, String> {
        let fail = |why: String| format!("LOG_OPTS: {why}");
        if text.trim().is_empty() {
            return Ok(LogOptDefaults::default());
        }
        // serde_json's errors name a line and column, never the text.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            fail(format!(
                "not a JSON object of log-opt to value ({e}); for example {{\"loki-url\":\"http://loki:3100/loki/api/v1/push\"}}"
            ))
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(fail(
                "not a JSON object of log-opt to value; for example {\"loki-url\":\"http://loki:3100/loki/api/v1/push\"}"
                    .into(),
            ));
        };
        let mut opts = BTreeMap::new();
        for (key, value) in object {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(fail(format!(
                        "the value of {key:?} must be a string (log-opts are strings)"
                    )));
                }
            };
            if is_dockers_own(&key) {
                return Err(fail(format!(
                    "{key:?} is Docker's own log-opt: Docker acts on it before the plugin; set it in daemon.json's log-opts or per container"
                )));
            }
            if table::spec(&key).is_none() {
                // Let validation name it (unknown, or not supported yet).
                let probe = HashMap::from([
                    ("loki-url".to_string(), PLACEHOLDER_URL.to_string()),
                    (key.clone(), String::new()),
                ]);
                let err = ContainerConfig::from_log_opts_in(&probe, context)
                    .err()
                    .map_or_else(|| format!("unknown log-opt {key:?}"), |e| e.to_string());
                return Err(fail(err));
            }
            opts.insert(key, value);
        }
        if !opts.contains_key("loki-url")
            && let Some(key) = opts.keys().find(|k| is_credential(k))
        {
            return Err(fail(format!(
                "{key} is set but loki-url is not: credentials in LOG_OPTS go only to the loki-url of LOG_OPTS"
            )));
        }
        let mut probe: HashMap<String, String> = opts.clone().into_iter().collect();
        probe
            .entry("loki-url".into())
            .or_insert_with(|| PLACEHOLDER_URL.into());
        ContainerConfig::from_log_opts_in(&probe, context).map_err(|e| fail(e.to_string()))?;
        Ok(LogOptDefaults { opts })
    }

    pub fn is_empty(&self) -> bool {
        self.opts.is_empty()
    }

    /// The names of the defaults set (for the start-up log: never values).
    pub fn names(&self) -> Vec<&str> {
        self.opts.keys().map(String::as_str).collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts.get(key).map(String::as_str)
    }

    /// A container's log-opts over the defaults: the container's value wins.
    /// Credentials of the defaults are left out when the container sends
    /// to another `loki-url`.
    pub fn apply(&self, container: &HashMap<String, String>) -> HashMap<String, String> {
        if self.opts.is_empty() {
            return container.clone();
        }
        let elsewhere = container
            .get("loki-url")
            .is_some_and(|url| self.opts.get("loki-url") != Some(url));
        let mut merged: HashMap<String, String> = self
            .opts
            .iter()
            .filter(|(k, _)| !(elsewhere && is_credential(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(container.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LogOptDefaults, String> {
        LogOptDefaults::parse(text, &OptionContext::default())
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const URL: &str = "http://loki:3100/loki/api/v1/push";

    #[test]
    fn defaults_apply_under_the_containers_own_options() {
        let defaults = parse(&format!(
            r#"{{"loki-url": "{URL}", "loki-tenant-id": "team-a", "loki-batch-wait": "2s",
                "loki-retries": 3, "keep-file": true, "loki-external-labels": "env=prod"}}"#
        ))
        .unwrap();
        assert_eq!(
            defaults.names(),
            [
                "keep-file",
                "loki-batch-wait",
                "loki-external-labels",
                "loki-retries",
                "loki-tenant-id",
                "loki-url"
            ]
        );
        let merged = defaults.apply(&map(&[
            ("loki-batch-wait", "100ms"),
            ("mode", "non-blocking"),
        ]));
        assert_eq!(merged["loki-url"], URL, "loki-url need not be repeated");
        assert_eq!(merged["loki-batch-wait"], "100ms", "the container wins");
        assert_eq!(merged["loki-retries"], "3");
        assert_eq!(merged["keep-file"], "true");
        assert_eq!(
            merged["mode"], "non-blocking",
            "Docker's options pass through"
        );
        let config = ContainerConfig::from_log_opts(&merged).unwrap();
        assert_eq!(config.endpoint.tenant_id.as_deref(), Some("team-a"));
        assert!(config.local_copy.keep_file);
        let empty = LogOptDefaults::default();
        assert_eq!(empty.apply(&map(&[("a", "b")])), map(&[("a", "b")]));
    }

    #[test]
    fn credentials_of_the_defaults_go_only_to_their_url() {
        let defaults = parse(&format!(
            r#"{{"loki-url": "{URL}", "loki-username": "bob", "loki-password-file": "/run/secrets/loki/pw",
                "loki-headers": "X-Key=k", "loki-tenant-id": "t"}}"#
        ))
        .unwrap();
        let same = defaults.apply(&map(&[("loki-url", URL)]));
        assert_eq!(same["loki-username"], "bob");
        let other = defaults.apply(&map(&[("loki-url", "http://elsewhere/loki/api/v1/push")]));
        for key in ["loki-username", "loki-password-file", "loki-headers"] {
            assert!(!other.contains_key(key), "{key} follows another URL");
        }
        assert_eq!(other["loki-tenant-id"], "t", "not a credential");
        // The container's own credentials with another URL are its own.
        let own = defaults.apply(&map(&[
            ("loki-url", "http://elsewhere/loki/api/v1/push"),
            ("loki-bearer-token", "x"),
        ]));
        assert!(ContainerConfig::from_log_opts(&own).is_ok());
        // With the defaults' URL, giving other credentials too is a conflict.
        let both = defaults.apply(&map(&[("loki-bearer-token", "x")]));
        assert!(ContainerConfig::from_log_opts(&both).is_err());
    }

    #[test]
    fn bad_defaults_are_refused_by_setting_and_option_without_secrets() {
        let cases = [
            ("not json", "not a JSON object"),
            ("[1, 2]", "not a JSON object"),
            (r#"{"loki-batch-wait": {"x": 1}}"#, "must be a string"),
            (
                r#"{"loki-batch-sise": "1"}"#,
                "unknown log-opt 'loki-batch-sise'",
            ),
            (
                r#"{"loki-pipeline-stages": "x"}"#,
                "expected a list of stages",
            ),
            (r#"{"mode": "non-blocking"}"#, "Docker's own"),
            (r#"{"max-buffer-size": "4m"}"#, "Docker's own"),
            (r#"{"cache-disabled": "true"}"#, "Docker's own"),
            (r#"{"loki-batch-wait": "2562047h"}"#, "between 0s and 1m"),
            (
                r#"{"loki-username": "bob", "loki-password": "Sup3rS3cret"}"#,
                "loki-url is not",
            ),
            (
                r#"{"loki-url": "http://loki/loki/api/v1/push", "loki-password": "Sup3rS3cret"}"#,
                "loki-username",
            ),
            (
                r#"{"loki-url": "http://bob:Sup3rS3cret@loki/x", "loki-bearer-token": "Sup3rS3cret"}"#,
                "loki-url carries credentials",
            ),
            (r#"{"loki-url": "ftp://bob:Sup3rS3cret@loki/x"}"#, "http"),
            (
                r#"{"loki-url": "http://loki/x", "loki-bearer-token-file": "/etc/shadow"}"#,
                "secrets directory",
            ),
        ];
        for (text, reason) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.starts_with("LOG_OPTS: ") && err.contains(reason),
                "{text}: {err}"
            );
            assert!(!err.contains("Sup3r"), "{text}: {err}");
        }
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  ").unwrap().is_empty());
        assert!(parse("{}").unwrap().is_empty());
        // Without loki-url the defaults are fine: containers give their own.
        assert!(parse(r#"{"loki-batch-wait": "2s"}"#).is_ok());
    }
}
