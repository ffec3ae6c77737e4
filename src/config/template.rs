//! Docker's log-tag templates (`{{.Name}}`, `{{.ImageName}}`, ...), as used by
//! `loki-external-labels` and `tag`.
//!
//! Only field references are supported, and Go's `index` on the container's
//! labels (`{{index .ContainerLabels "com.docker.compose.project"}}`), not
//! other Go template functions or pipelines; anything else is refused when
//! the container starts, so a typo never silently becomes a literal label
//! value.

use crate::protocol::ContainerInfo;

/// A parsed template: literal text and container fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
    /// `{{index .ContainerLabels "name"}}`: a container label, empty when absent.
    Label(String),
}

/// The fields and methods of Docker's `logger.Info` that render to a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Container ID, first 12 characters.
    Id,
    FullId,
    /// Container name without the leading `/`.
    Name,
    ImageName,
    /// Image ID without `sha256:`, first 12 characters.
    ImageId,
    ImageFullId,
    /// Entrypoint and arguments joined by spaces.
    Command,
    DaemonName,
    Hostname,
    ContainerName,
    ContainerEntrypoint,
    ContainerCreated,
}

const FIELDS: &[(&str, Field)] = &[
    ("ID", Field::Id),
    ("FullID", Field::FullId),
    ("ContainerID", Field::FullId),
    ("Name", Field::Name),
    ("ImageName", Field::ImageName),
    ("ContainerImageName", Field::ImageName),
    ("ImageID", Field::ImageId),
    ("ImageFullID", Field::ImageFullId),
    ("ContainerImageID", Field::ImageFullId),
    ("Command", Field::Command),
    ("DaemonName", Field::DaemonName),
    ("Hostname", Field::Hostname),
    ("ContainerName", Field::ContainerName),
    ("ContainerEntrypoint", Field::ContainerEntrypoint),
    ("ContainerCreated", Field::ContainerCreated),
];

impl Template {
    /// Parses a template, refusing unknown fields and unsupported syntax.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "unclosed '{{' in template".to_string())?;
            let action = after[..close].trim();
            if let Some(label) = index_of_labels(action)? {
                parts.push(Part::Label(label));
                rest = &after[close + 2..];
                continue;
            }
            let name = action
                .strip_prefix('.')
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()));
            let Some(name) = name else {
                return Err(format!(
                    "unsupported template action '{{{{{action}}}}}': only fields such as {{{{.Name}}}} are supported"
                ));
            };
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    let known: Vec<_> = FIELDS.iter().map(|(n, _)| format!(".{n}")).collect();
                    format!(
                        "unknown template field '.{name}' (known: {}, and index .ContainerLabels \"name\")",
                        known.join(", ")
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The text of a template without fields: the same for every container.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(_) | Part::Label(_) => return None,
            }
        }
        Some(out)
    }

    /// Renders the template for one container.
    pub fn render(&self, info: &ContainerInfo, hostname: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&field_value(*field, info, hostname)),
                Part::Label(name) => {
                    if let Some(value) = info.labels.as_ref().and_then(|l| l.get(name)) {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// `index .ContainerLabels "name"` (a Go string: double-quoted with
/// backslash escapes, or back-quoted): `Some(name)`. `None` for an action
/// that is not `index`; an error for an `index` that is not of this form.
fn index_of_labels(action: &str) -> Result<Option<String>, String> {
    let Some(args) = action
        .strip_prefix("index")
        .filter(|a| a.starts_with(char::is_whitespace))
    else {
        return Ok(None);
    };
    let malformed = || {
        format!(
            "unsupported template action '{{{{{action}}}}}': index takes .ContainerLabels and a quoted label name, as in {{{{index .ContainerLabels \"com.docker.compose.service\"}}}}"
        )
    };
    let args = args
        .trim_start()
        .strip_prefix(".ContainerLabels")
        .filter(|a| a.starts_with(char::is_whitespace))
        .ok_or_else(malformed)?
        .trim();
    let name = if let Some(raw) = args.strip_prefix('`') {
        raw.strip_suffix('`')
            .filter(|n| !n.contains('`'))
            .map(str::to_string)
    } else if let Some(quoted) = args.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('"' | '\\')) => name.push(escaped),
                    Some('n') => name.push('\n'),
                    Some('t') => name.push('\t'),
                    _ => return Err(malformed()),
                },
                c => name.push(c),
            }
        }
        (closed && chars.as_str().is_empty()).then_some(name)
    } else {
        None
    };
    name.map(Some).ok_or_else(malformed)
}

fn field_value(field: Field, info: &ContainerInfo, hostname: &str) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let image_id = info
        .image_id
        .strip_prefix("sha256:")
        .unwrap_or(&info.image_id);
    match field {
        Field::Id => short(&info.container_id),
        Field::FullId => info.container_id.clone(),
        Field::Name => info.name().to_string(),
        Field::ImageName => info.image_name.clone(),
        Field::ImageId => short(image_id),
        Field::ImageFullId => info.image_id.clone(),
        Field::Command => {
            let mut words = vec![info.entrypoint.as_str()];
            words.extend(info.args.iter().flatten().map(String::as_str));
            words.retain(|w| !w.is_empty());
            words.join(" ")
        }
        Field::DaemonName => info.daemon_name.clone(),
        Field::Hostname => hostname.to_string(),
        Field::ContainerName => info.container_name.clone(),
        Field::ContainerEntrypoint => info.entrypoint.clone(),
        Field::ContainerCreated => info.created.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ContainerInfo {
        ContainerInfo {
            container_id: "e11059f72dbaf86cedf4a9364df4dc582a3a913fe3b4dfa0dbfcdce7b146fcb0".into(),
            container_name: "/fixture-app".into(),
            entrypoint: "sh".into(),
            args: Some(vec!["/cmd.sh".into()]),
            image_id: "sha256:cc55c3bfbd5f169a6279713895037a3519b2c0bbe1db8b401d76c22aea320bc8"
                .into(),
            image_name: "localbusybox".into(),
            daemon_name: "docker".into(),
            ..ContainerInfo::default()
        }
    }

    fn render(text: &str) -> String {
        Template::parse(text).unwrap().render(&info(), "vm1")
    }

    #[test]
    fn renders_docker_fields() {
        assert_eq!(render("{{.Name}}"), "fixture-app");
        assert_eq!(render("{{.ID}}"), "e11059f72dba");
        assert_eq!(render("{{.FullID}}").len(), 64);
        assert_eq!(render("{{.ImageName}}"), "localbusybox");
        assert_eq!(render("{{.ImageID}}"), "cc55c3bfbd5f");
        assert_eq!(render("{{.Command}}"), "sh /cmd.sh");
        assert_eq!(render("{{.DaemonName}}"), "docker");
        assert_eq!(render("{{.Hostname}}"), "vm1");
    }

    #[test]
    fn mixes_literals_and_fields() {
        assert_eq!(
            render("app-{{ .Name }}/{{.ID}}!"),
            "app-fixture-app/e11059f72dba!"
        );
        assert_eq!(render("plain"), "plain");
        assert_eq!(render(""), "");
    }

    #[test]
    fn container_labels_by_index() {
        let mut info = info();
        info.labels = Some(
            [
                ("com.docker.compose.service", "web"),
                ("com.docker.compose.project", "shop"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let render = |text: &str| Template::parse(text).unwrap().render(&info, "vm1");
        assert_eq!(
            render(
                r#"{{index .ContainerLabels "com.docker.compose.project"}}-{{ index .ContainerLabels `com.docker.compose.service` }}"#
            ),
            "shop-web"
        );
        assert_eq!(render(r#"x{{index .ContainerLabels "absent"}}y"#), "xy");
        for bad in [
            r#"{{index .ContainerLabels}}"#,
            r#"{{index .ContainerEnv "A"}}"#,
            r#"{{index .ContainerLabels "a" "b"}}"#,
            r#"{{index .ContainerLabels "unclosed}}"#,
            r#"{{index .ContainerLabels a}}"#,
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains("index"), "{bad}: {err}");
        }
        assert_eq!(
            Template::parse("plain").unwrap().literal().as_deref(),
            Some("plain")
        );
        assert_eq!(Template::parse("{{.Name}}").unwrap().literal(), None);
    }

    #[test]
    fn refuses_what_it_cannot_render() {
        let unknown = Template::parse("{{.Nmae}}").unwrap_err();
        assert!(
            unknown.contains(".Nmae") && unknown.contains(".Name"),
            "{unknown}"
        );
        assert!(Template::parse("{{.Name").unwrap_err().contains("unclosed"));
        assert!(
            Template::parse("{{ upper .Name }}")
                .unwrap_err()
                .contains("unsupported")
        );
    }
}
