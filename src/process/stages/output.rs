//! `output`: the line becomes an extracted field.

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry};

#[derive(Debug, Clone)]
pub struct Output {
    source: String,
}

impl Output {
    pub fn new(config: &Node) -> Result<Output, String> {
        let mut f = Fields::new(config)?;
        let source = f.string("source")?.unwrap_or_default();
        f.finish()?;
        if source.is_empty() {
            return Err("output source value is required if output is specified".into());
        }
        Ok(Output { source })
    }
}

impl EachEntry for Output {
    const NAME: &'static str = "output";

    fn apply(&self, entry: &mut Entry) {
        if let Some(value) = entry.extracted.get_string(&self.source) {
            entry.line = value.into_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    #[test]
    fn the_line_becomes_a_field() {
        let out = run(
            r#"[{"json":{"expressions":{"m":"msg"}}},{"output":{"source":"m"}}]"#,
            &[r#"{"msg":"hi"}"#, "not json"],
        );
        assert_eq!(out[0].line, "hi");
        assert_eq!(out[1].line, "not json");
        assert!(refused("[{output: {}}]").contains("source value is required"));
    }
}
