//! `docker`: Grafana's fixed sub-pipeline for Docker's json-file lines
//! (`{"log":"...","stream":"stderr","time":"..."}`): `json` (output: log,
//! stream, timestamp: time), `labels` (stream), `timestamp` (from
//! `timestamp`, RFC3339Nano, a failure taking the stream's last timestamp
//! plus 1ns) and `output` (output), built from those stages. It takes no
//! settings (Grafana ignores any; here an unknown key is refused like
//! everywhere else).

use super::super::fields::Fields;
use super::super::yaml::{self, Node};
use super::super::{Budget, Context, Entry, NoFiles, Stage};

/// Builds one of the stages a fixed sub-pipeline is made of.
pub(super) fn part(name: &str, yaml_text: &str) -> Result<Box<dyn Stage>, String> {
    let config = yaml::parse(yaml_text)?;
    super::build(name, &config, &mut Budget::new(&NoFiles))
        .map_err(|e| format!("the built-in {name} step: {e}"))
}

#[derive(Debug)]
pub struct Docker {
    json: Box<dyn Stage>,
    labels: Box<dyn Stage>,
    time: Box<dyn Stage>,
    output: Box<dyn Stage>,
}

impl Docker {
    pub fn new(config: &Node) -> Result<Docker, String> {
        Fields::new(config)?.finish()?;
        Ok(Docker {
            json: part(
                "json",
                r#"{"expressions":{"output":"log","stream":"stream","timestamp":"time"}}"#,
            )?,
            labels: part("labels", r#"{"stream":null}"#)?,
            time: part(
                "timestamp",
                r#"{"source":"timestamp","format":"RFC3339Nano"}"#,
            )?,
            output: part("output", r#"{"source":"output"}"#)?,
        })
    }
}

impl Stage for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        self.json.run(entries, cx);
        self.labels.run(entries, cx);
        self.time.run(entries, cx);
        self.output.run(entries, cx);
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Docker {
            json: self.json.fresh(),
            labels: self.labels.fresh(),
            time: self.time.fresh(),
            output: self.output.fresh(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused};
    use super::super::run_once;

    #[test]
    fn docker_json_lines() {
        let out = run_once(
            "[{docker: }]",
            &[
                r#"{"log":"hello\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
                r#"{"log":"again","stream":"stderr","time":"bad"}"#,
                "plain",
            ],
        );
        assert_eq!(out[0].line, "hello\n");
        assert_eq!(label(&out[0], "stream"), Some("stderr"));
        assert_eq!(out[0].timestamp, 1_556_590_361_844_351_500);
        assert_eq!(
            out[1].timestamp, 1_556_590_361_844_351_501,
            "a bad time: the stream's last plus 1ns"
        );
        assert_eq!(out[2].line, "plain");
        assert_eq!(out[2].timestamp, 1_700_000_000_000_000_000);
        assert!(refused("[{docker: {x: 1}}]").contains("unknown setting"));
    }
}
