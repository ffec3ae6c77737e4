//! What to do instead, for the options people get wrong: a refused option
//! name that is a common mistake gets the right one, and `labels`/`env`
//! items written as `name=value` get a word on what those options mean.
//! Pure: the driver logs the warnings, the option errors embed the hints.

use crate::config::table;

/// Option names that copied READMEs and other drivers use, and the option
/// of this plugin that does that job.
const MISNAMED: &[(&str, &str)] = &[
    ("loki-labels", "loki-external-labels"),
    ("loki-label", "loki-external-labels"),
    ("loki-external-label", "loki-external-labels"),
    ("loki-extra-labels", "loki-external-labels"),
    ("loki-static-labels", "loki-external-labels"),
    ("external-labels", "loki-external-labels"),
    ("loki-endpoint", "loki-url"),
    ("loki-address", "loki-url"),
    ("loki-push-url", "loki-url"),
    ("url", "loki-url"),
    ("loki-tenant", "loki-tenant-id"),
    ("loki-org-id", "loki-tenant-id"),
    ("tenant-id", "loki-tenant-id"),
    ("loki-token", "loki-bearer-token"),
];

/// For the refusal of the unknown option `key`: `": did you mean ...?"`
/// naming the option that does what it was likely meant for, or `""`.
pub fn unknown_option(key: &str) -> String {
    match suggestion(key) {
        Some("loki-external-labels") => ": did you mean loki-external-labels? \
             (loki-external-labels=job=web,env=prod adds labels to every stream of the \
             container; `labels` takes names of container labels whose values become Loki labels)"
            .to_string(),
        Some(option) => format!(": did you mean {option}?"),
        None => String::new(),
    }
}

/// The known option `key` was most likely meant as.
fn suggestion(key: &str) -> Option<&'static str> {
    let lower = key.trim().to_ascii_lowercase().replace('_', "-");
    if let Some((_, option)) = MISNAMED.iter().find(|(wrong, _)| *wrong == lower) {
        return Some(option);
    }
    // A typo, or underscores for dashes: the one known option within two edits.
    let mut close = table::names().filter(|known| edit_distance(&lower, known) <= 2);
    match (close.next(), close.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Levenshtein distance over bytes (option names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Warnings for a container's `labels` and `env` items that contain `=`:
/// Docker's `labels` (and `env`) take names, whose values the container
/// has; an item `app=web` names a label no container has, so nothing is
/// added, silently. One message per item, meant to be logged once when the
/// container starts.
pub fn attribute_warnings(labels: &[String], env: &[String]) -> Vec<String> {
    let labels = labels.iter().filter(|item| item.contains('=')).map(|item| {
        let name = item.split('=').next().unwrap_or_default();
        format!(
            "log-opt labels={item:?} adds nothing: Docker's `labels` option takes the names of \
             container labels (comma-separated), and adds each label the container has with its \
             value; it does not set labels. To add {item} to every stream, use \
             loki-external-labels={item}; to copy a container label, set it on the container \
             (docker run --label {item}, or compose `labels:`) and name it: labels={name}"
        )
    });
    let env = env.iter().filter(|item| item.contains('=')).map(|item| {
        let name = item.split('=').next().unwrap_or_default();
        format!(
            "log-opt env={item:?} adds nothing: Docker's `env` option, like `labels`, takes \
             names (of the container's environment variables), and adds each variable the \
             container has with its value; it does not set them. To add {item} to every stream, \
             use loki-external-labels={item}; to copy a variable, set it on the container \
             (docker run -e {item}) and name it: env={name}"
        )
    });
    labels.chain(env).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::ContainerConfig;
    use std::collections::HashMap;

    fn attribute_warnings_of(config: &ContainerConfig) -> Vec<String> {
        attribute_warnings(&config.labels, &config.env)
    }

    fn config(opts: &[(&str, &str)]) -> ContainerConfig {
        let mut map: HashMap<String, String> = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("loki-url".into(), "http://l/loki/api/v1/push".into());
        ContainerConfig::from_log_opts(&map).unwrap()
    }

    #[test]
    fn loki_labels_is_refused_naming_loki_external_labels() {
        let mut opts = HashMap::new();
        opts.insert(
            "loki-url".to_string(),
            "http://l/loki/api/v1/push".to_string(),
        );
        opts.insert("loki-labels".to_string(), "job=web".to_string());
        let err = ContainerConfig::from_log_opts(&opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown log-opt 'loki-labels': did you mean loki-external-labels?"),
            "{err}"
        );
        assert!(err.contains("known log-opts: loki-url"), "{err}");
    }

    #[test]
    fn common_mistakes_and_typos_get_the_right_name() {
        assert_eq!(suggestion("loki_labels"), Some("loki-external-labels"));
        assert_eq!(suggestion("LOKI-TENANT"), Some("loki-tenant-id"));
        assert_eq!(suggestion("loki_url"), Some("loki-url"));
        assert_eq!(suggestion("loki-batch-sise"), Some("loki-batch-size"));
        assert_eq!(suggestion("loki-retrys"), Some("loki-retries"));
        assert_eq!(suggestion("something-else"), None);
        // Two known options as close (max-file, max-size): no guess.
        assert_eq!(suggestion("max-fiz"), None);
        assert_eq!(unknown_option("something-else"), "");
        assert_eq!(
            unknown_option("loki-tenant"),
            ": did you mean loki-tenant-id?"
        );
    }

    #[test]
    fn labels_and_env_items_with_a_value_are_explained() {
        let warnings = attribute_warnings_of(&config(&[
            ("labels", "app=web,tier"),
            ("env", "STAGE=prod,HOME"),
        ]));
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with(
                "log-opt labels=\"app=web\" adds nothing: Docker's `labels` option takes the names of container labels"
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].contains("use loki-external-labels=app=web")
                && warnings[0].contains("docker run --label app=web")
                && warnings[0].ends_with("labels=app"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with("log-opt env=\"STAGE=prod\" adds nothing")
                && warnings[1].contains("loki-external-labels=STAGE=prod")
                && warnings[1].ends_with("env=STAGE"),
            "{}",
            warnings[1]
        );
        assert!(
            attribute_warnings_of(&config(&[("labels", "app,tier"), ("env", "HOME")])).is_empty()
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
