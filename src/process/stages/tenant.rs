//! `tenant`: the entry's Loki tenant (`X-Scope-OrgID`), from a label, an
//! extracted field or a fixed value. Delivery pushes each tenant's entries
//! apart.

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, TENANT_LABEL};

#[derive(Debug, Clone)]
enum From {
    Label(String),
    Field(String),
    Value(String),
}

#[derive(Debug, Clone)]
pub struct Tenant {
    from: From,
}

impl Tenant {
    pub fn new(config: &Node) -> Result<Tenant, String> {
        let mut f = Fields::new(config)?;
        let label = f.string("label")?.unwrap_or_default();
        let source = f.string("source")?.unwrap_or_default();
        let value = f.string("value")?.unwrap_or_default();
        f.finish()?;
        let set = [&label, &source, &value]
            .iter()
            .filter(|s| !s.is_empty())
            .count();
        let from = match set {
            0 => return Err("label, source or value config are required".into()),
            1 if !source.is_empty() => From::Field(source),
            1 if !label.is_empty() => From::Label(label),
            1 => From::Value(value),
            _ => {
                return Err("label, source and value are mutually exclusive: you should set source, value or label but not all".into());
            }
        };
        Ok(Tenant { from })
    }
}

impl EachEntry for Tenant {
    const NAME: &'static str = "tenant";

    fn apply(&self, entry: &mut Entry) {
        let tenant = match &self.from {
            From::Field(field) => entry.extracted.get_string(field).map(|s| s.into_owned()),
            From::Label(label) => entry.labels.get(label).cloned(),
            From::Value(value) => Some(value.clone()),
        };
        if let Some(tenant) = tenant.filter(|t| !t.is_empty()) {
            entry.set_label(TENANT_LABEL, &tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    #[test]
    fn the_tenant_comes_from_a_field_a_label_or_a_value() {
        let out = run(
            r#"[{"regex":{"expression":"org=(?P<org>\\w+)"}},{"tenant":{"source":"org"}}]"#,
            &["org=acme", "none"],
        );
        assert_eq!(out[0].tenant(), Some("acme"));
        assert_eq!(out[1].tenant(), None);
        assert_eq!(
            run("[{tenant: {label: app}}]", &["x"])[0].tenant(),
            Some("web")
        );
        assert!(refused("[{tenant: {}}]").contains("required"));
        assert!(refused("[{tenant: {label: a, value: b}}]").contains("mutually exclusive"));
    }
}
