//! The Loki label set of a container: defaults, `labels`/`env` attributes,
//! `loki-external-labels` and `tag`, rendered once per source into Loki's
//! `{name="value", ...}` form so no line pays for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::options::{ContainerConfig, ServiceName};
use crate::line::Source;
use crate::protocol::ContainerInfo;

/// Docker labels that compose and swarm set, and the Loki label each becomes.
const WELL_KNOWN_LABELS: &[(&str, &str)] = &[
    ("com.docker.compose.project", "compose_project"),
    ("com.docker.compose.service", "compose_service"),
    ("com.docker.stack.namespace", "swarm_stack"),
    ("com.docker.swarm.service.name", "swarm_service"),
];

pub use crate::process::entry::is_valid_label_name;

/// Makes a container label or env name usable as a Loki label name: `.` and
/// `-` (and any other character Loki refuses) become `_`, as in Grafana's
/// driver, and a leading digit gets a `_` prefix.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Docker labels `service_name` comes from by default, in order: a
/// compose container groups by its compose service, a swarm task by its
/// service (whose name has the stack in front), so replicas and re-created
/// containers are one service in Loki 3 and Grafana's Logs Drilldown.
const SERVICE_NAME_LABELS: &[&str] = &[
    "com.docker.compose.service",
    "com.docker.swarm.service.name",
];

/// The `service_name` label of a container (`loki-service-name`), if any.
pub fn service_name(
    config: &ContainerConfig,
    info: &ContainerInfo,
    hostname: &str,
) -> Option<String> {
    let name = match &config.service_name {
        ServiceName::Off => return None,
        ServiceName::Template(template) => template.render(info, hostname),
        ServiceName::ComposeOrSwarm => SERVICE_NAME_LABELS
            .iter()
            .find_map(|l| info.labels.as_ref()?.get(*l))?
            .clone(),
    };
    (!name.is_empty()).then_some(name)
}

/// A container's structured metadata (`loki-structured-metadata`), names
/// with empty values left out.
pub fn structured_metadata(
    config: &ContainerConfig,
    info: &ContainerInfo,
    hostname: &str,
) -> Vec<(String, String)> {
    config
        .structured_metadata
        .iter()
        .map(|(name, template)| (name.clone(), template.render(info, hostname)))
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// A container's labels without `source`, in name order.
pub fn container_labels(
    config: &ContainerConfig,
    info: &ContainerInfo,
    hostname: &str,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("container_name".to_string(), info.name().to_string());
    labels.insert("image_name".to_string(), info.image_name.clone());
    labels.insert("host".to_string(), hostname.to_string());
    let container_labels = info.labels.as_ref();
    for (docker_label, loki_label) in WELL_KNOWN_LABELS {
        if let Some(value) = container_labels.and_then(|l| l.get(*docker_label)) {
            labels.insert(loki_label.to_string(), value.clone());
        }
    }
    if let Some(name) = service_name(config, info, hostname) {
        labels.insert("service_name".to_string(), name);
    }
    for (name, value) in container_labels.into_iter().flatten() {
        if config.wants_label(name) {
            labels.insert(sanitize_label_name(name), value.clone());
        }
    }
    for entry in info.env.iter().flatten() {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        if config.wants_env(name) {
            labels.insert(sanitize_label_name(name), value.to_string());
        }
    }
    for (name, template) in &config.external_labels {
        labels.insert(name.clone(), template.render(info, hostname));
    }
    if let Some(tag) = &config.tag {
        labels.insert("tag".to_string(), tag.render(info, hostname));
    }
    labels.retain(|_, value| !value.is_empty());
    labels
}

/// Loki 3's default bound on the label names of a stream
/// (`limits_config.max_label_names_per_series`; `source` counts).
pub const LOKI_MAX_LABEL_NAMES: usize = 15;
/// Loki 2's default for the same limit: no Loki with its defaults takes
/// more label names than this.
pub const LOKI2_MAX_LABEL_NAMES: usize = 30;
/// Loki's default bound on a label value (`max_label_value_length`).
pub const LOKI_MAX_LABEL_VALUE: usize = 2048;
/// Loki's default bound on a label name (`max_label_name_length`).
pub const LOKI_MAX_LABEL_NAME: usize = 1024;

/// The label names of a container's streams, `source` included.
fn label_names(labels: &BTreeMap<String, String>) -> usize {
    labels.len() + usize::from(!labels.contains_key("source"))
}

fn some_names(labels: &BTreeMap<String, String>) -> String {
    let some: Vec<&str> = labels.keys().take(5).map(String::as_str).collect();
    some.join(", ")
}

/// Why Loki 3 with its default limits would refuse every line of a
/// container with these labels, where Loki 2's defaults, or a raised
/// `max_label_names_per_series`, take them: a warning at start, not a
/// refusal (Grafana's driver starts such a container too).
pub fn warned_by_loki(labels: &BTreeMap<String, String>) -> Option<String> {
    let names = label_names(labels);
    (names > LOKI_MAX_LABEL_NAMES && names <= LOKI2_MAX_LABEL_NAMES).then(|| {
        format!(
            "this container's streams have {names} label names ({}, ...; source included), more than the {LOKI_MAX_LABEL_NAMES} Loki 3 accepts by default (max_label_names_per_series; Loki 2 takes {LOKI2_MAX_LABEL_NAMES}): a Loki that keeps that default refuses every line, counted as dropped (rejected); select fewer with labels, labels-regex, env, env-regex or loki-external-labels",
            some_names(labels)
        )
    })
}

/// Why every Loki with its default limits would refuse every line of a
/// container with these labels (as [`container_labels`] makes them,
/// without `source`), if it would.
pub fn refused_by_loki(labels: &BTreeMap<String, String>) -> Option<String> {
    use crate::config::units::shorten;
    let names = label_names(labels);
    if names > LOKI2_MAX_LABEL_NAMES {
        return Some(format!(
            "this container's streams would have {names} label names ({}, ...; source included), more than any Loki accepts by default ({LOKI_MAX_LABEL_NAMES} in Loki 3, {LOKI2_MAX_LABEL_NAMES} in Loki 2: max_label_names_per_series): Loki would refuse every line; select fewer with labels, labels-regex, env, env-regex or loki-external-labels",
            some_names(labels)
        ));
    }
    for (name, value) in labels {
        if name.len() > LOKI_MAX_LABEL_NAME {
            return Some(format!(
                "label name {:?} is {} bytes, more than the {LOKI_MAX_LABEL_NAME} Loki accepts (max_label_name_length): Loki would refuse every line",
                shorten(name, 64),
                name.len()
            ));
        }
        if value.len() > LOKI_MAX_LABEL_VALUE {
            return Some(format!(
                "label {}: its value is {} bytes, more than the {LOKI_MAX_LABEL_VALUE} Loki accepts (max_label_value_length): Loki would refuse every line; leave it out, or make it structured metadata",
                shorten(name, 64),
                value.len()
            ));
        }
    }
    None
}

/// Container labels and environment variables that become the same Loki
/// label name once made valid (`ü1` and `é1` both become `_1`): only one
/// value could be kept. Each collision as a message.
pub fn name_collisions(config: &ContainerConfig, info: &ContainerInfo) -> Vec<String> {
    use crate::config::units::shorten;
    let mut seen: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
    let mut found = Vec::new();
    let labels = info
        .labels
        .iter()
        .flatten()
        .map(|(name, _)| name.as_str())
        .filter(|name| config.wants_label(name))
        .map(|name| ("container label", name.to_string()));
    let env = info
        .env
        .iter()
        .flatten()
        .map(|entry| entry.split_once('=').map_or(entry.as_str(), |(k, _)| k))
        .filter(|name| config.wants_env(name))
        .map(|name| ("environment variable", name.to_string()));
    for (kind, name) in labels.chain(env) {
        let loki = sanitize_label_name(&name);
        match seen.get(&loki) {
            Some((other_kind, other)) if *other != name => found.push(format!(
                "{other_kind} {:?} and {kind} {:?} both become the Loki label {loki:?}: only one value could be sent; leave one out (labels, labels-regex, env, env-regex)",
                shorten(other, 64),
                shorten(&name, 64)
            )),
            Some(_) => {}
            None => {
                seen.insert(loki, (kind, name));
            }
        }
    }
    found
}

/// The label sets of one container, one per source, and their rendering.
#[derive(Debug, Clone)]
pub struct StreamLabels {
    sets: [BTreeMap<String, String>; 2],
    rendered: [Arc<str>; 2],
}

impl StreamLabels {
    pub fn new(labels: &BTreeMap<String, String>) -> StreamLabels {
        let with_source = |source: Source| {
            let mut all = labels.clone();
            all.insert("source".to_string(), source.as_str().to_string());
            all
        };
        let sets = [with_source(Source::Stdout), with_source(Source::Stderr)];
        let rendered = [Arc::from(render(&sets[0])), Arc::from(render(&sets[1]))];
        StreamLabels { sets, rendered }
    }

    /// Loki's `{name="value", ...}` form.
    pub fn for_source(&self, source: Source) -> &Arc<str> {
        &self.rendered[source as usize]
    }

    pub fn label_set(&self, source: Source) -> &BTreeMap<String, String> {
        &self.sets[source as usize]
    }
}

/// Renders labels the way Loki prints them: `{a="1", b="x\"y"}`.
pub fn render(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fixture_info() -> ContainerInfo {
        let raw = include_str!("../../../shared/fixtures/daemon-20.10/start-logging.http");
        let request: crate::protocol::StartLoggingRequest =
            serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        request.info
    }

    fn labels_for(info: &ContainerInfo) -> BTreeMap<String, String> {
        let config = ContainerConfig::from_log_opts(info.config.as_ref().unwrap()).unwrap();
        container_labels(&config, info, "vm1")
    }

    #[test]
    fn label_sets_loki_refuses_and_names_that_collide_are_found() {
        let mut info = fixture_info();
        let mut labels = labels_for(&info);
        assert_eq!(refused_by_loki(&labels), None);
        labels.insert("big".into(), "x".repeat(LOKI_MAX_LABEL_VALUE + 1));
        assert!(refused_by_loki(&labels).unwrap().contains("2048"));
        labels.remove("big");
        for i in 0..12 {
            labels.insert(format!("l{i}"), "v".into());
        }
        assert_eq!(refused_by_loki(&labels), None, "Loki 2 takes 16 to 30");
        assert!(
            warned_by_loki(&labels)
                .unwrap()
                .contains("15 Loki 3 accepts")
        );
        for i in 12..40 {
            labels.insert(format!("l{i}"), "v".into());
        }
        assert!(refused_by_loki(&labels).unwrap().contains("30 in Loki 2"));
        assert_eq!(warned_by_loki(&labels), None);

        info.labels = Some(
            [("ü1", "a"), ("é1", "b"), ("tier", "c")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let mut opts = info.config.clone().unwrap();
        opts.insert("labels".into(), "ü1,é1,tier".into());
        let config = ContainerConfig::from_log_opts(&opts).unwrap();
        let collisions = name_collisions(&config, &info);
        assert_eq!(collisions.len(), 1, "{collisions:?}");
        assert!(collisions[0].contains("\"_1\""), "{collisions:?}");
        opts.insert("labels".into(), "ü1,tier".into());
        let config = ContainerConfig::from_log_opts(&opts).unwrap();
        assert!(name_collisions(&config, &info).is_empty());
    }

    #[test]
    fn fixture_container_gets_defaults_attributes_and_external_labels() {
        let labels = labels_for(&fixture_info());
        let expected: BTreeMap<String, String> = [
            ("container_name", "fixture-app"),
            ("image_name", "localbusybox"),
            ("host", "vm1"),
            ("compose_project", "shop"),
            ("compose_service", "web"),
            ("service_name", "web"),
            ("tier", "frontend"),
            ("APP_ENV", "prod"),
            ("job", "docker"),
            ("image", "localbusybox"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, expected);
    }

    #[test]
    fn external_labels_add_to_the_defaults() {
        let mut info = fixture_info();
        info.config = Some(HashMap::from([
            (
                "loki-url".to_string(),
                "http://l/loki/api/v1/push".to_string(),
            ),
            ("loki-external-labels".to_string(), "job=x".to_string()),
        ]));
        let labels = labels_for(&info);
        assert_eq!(labels["container_name"], "fixture-app");
        assert_eq!(labels["job"], "x");
    }

    #[test]
    fn swarm_labels_and_sanitized_names() {
        let mut info = fixture_info();
        info.labels = Some(HashMap::from([
            ("com.docker.stack.namespace".to_string(), "prod".to_string()),
            (
                "com.docker.swarm.service.name".to_string(),
                "prod_api".to_string(),
            ),
            ("org.example-team".to_string(), "core".to_string()),
        ]));
        info.env = Some(vec!["my-var.x=1".into(), "SECRET_TOKEN=hunter2".into()]);
        info.config = Some(HashMap::from([
            (
                "loki-url".to_string(),
                "http://l/loki/api/v1/push".to_string(),
            ),
            ("labels-regex".to_string(), "^org\\.".to_string()),
            ("env".to_string(), "my-var.x".to_string()),
            ("tag".to_string(), "{{.Name}}/{{.ID}}".to_string()),
        ]));
        let labels = labels_for(&info);
        assert_eq!(labels["swarm_stack"], "prod");
        assert_eq!(labels["swarm_service"], "prod_api");
        assert_eq!(labels["org_example_team"], "core");
        assert_eq!(labels["my_var_x"], "1");
        assert_eq!(labels["tag"], "fixture-app/e11059f72dba");
        assert!(!labels.values().any(|v| v == "hunter2"));
        assert!(!labels.contains_key("compose_project"));
    }

    #[test]
    fn service_name_groups_compose_and_swarm_replicas_unless_told_otherwise() {
        let mut info = fixture_info();
        assert_eq!(labels_for(&info)["service_name"], "web", "compose service");
        let swarm = |info: &mut ContainerInfo| {
            info.labels = Some(HashMap::from([(
                "com.docker.swarm.service.name".to_string(),
                "prod_api".to_string(),
            )]));
        };
        swarm(&mut info);
        assert_eq!(
            labels_for(&info)["service_name"],
            "prod_api",
            "swarm service"
        );
        info.labels = None;
        assert!(
            !labels_for(&info).contains_key("service_name"),
            "plain container"
        );
        swarm(&mut info);
        let with = |info: &mut ContainerInfo, opts: &[(&str, &str)]| {
            let mut config: HashMap<String, String> = opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            config.insert("loki-url".into(), "http://l/loki/api/v1/push".into());
            info.config = Some(config);
        };
        with(&mut info, &[("loki-service-name", "")]);
        assert!(!labels_for(&info).contains_key("service_name"), "off");
        with(&mut info, &[("loki-service-name", "{{.Name}}")]);
        assert_eq!(labels_for(&info)["service_name"], "fixture-app");
        with(
            &mut info,
            &[("loki-external-labels", "service_name=override")],
        );
        assert_eq!(labels_for(&info)["service_name"], "override");
    }

    #[test]
    fn structured_metadata_is_the_full_id_by_default() {
        let info = fixture_info();
        let config = ContainerConfig::from_log_opts(info.config.as_ref().unwrap()).unwrap();
        assert_eq!(
            structured_metadata(&config, &info, "vm1"),
            [("container_id".to_string(), info.container_id.clone())]
        );
        let mut opts = info.config.clone().unwrap();
        opts.insert(
            "loki-structured-metadata".into(),
            r#"id={{.FullID}},absent={{index .ContainerLabels "nope"}},host={{.Hostname}}"#.into(),
        );
        let config = ContainerConfig::from_log_opts(&opts).unwrap();
        let names: Vec<String> = structured_metadata(&config, &info, "vm1")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["id", "host"], "empty values left out");
    }

    #[test]
    fn names_are_checked_and_sanitized() {
        assert!(is_valid_label_name("_a1") && is_valid_label_name("container_name"));
        assert!(
            !is_valid_label_name("1a") && !is_valid_label_name("a-b") && !is_valid_label_name("")
        );
        assert_eq!(sanitize_label_name("com.docker-x"), "com_docker_x");
        assert_eq!(sanitize_label_name("9lives"), "_9lives");
    }

    #[test]
    fn rendering_quotes_and_sorts() {
        let labels: BTreeMap<_, _> = [("b", "x\"y\\z\n"), ("a", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(render(&labels), r#"{a="1", b="x\"y\\z\n"}"#);
        let streams = StreamLabels::new(&labels);
        assert!(
            streams
                .for_source(Source::Stderr)
                .ends_with(r#"source="stderr"}"#)
        );
        assert!(
            streams
                .for_source(Source::Stdout)
                .contains(r#"source="stdout""#)
        );
    }
}
