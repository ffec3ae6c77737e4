//! Docker's log-tag templates (`{{.Name}}`, `{{.ImageName}}`, ...), as used by
//! `loki-external-labels` and `tag`.
//!
//! Only field references are supported, not Go template functions or
//! pipelines; anything else is refused when the container starts, so a typo
//! never silently becomes a literal label value.

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
                        "unknown template field '.{name}' (known: {})",
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

    /// Renders the template for one container.
    pub fn render(&self, info: &ContainerInfo, hostname: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&field_value(*field, info, hostname)),
            }
        }
        out
    }
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
