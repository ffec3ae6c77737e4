//! `loki-logdriver pipeline`: a dry run of pipeline stages and relabelling.
//! Reads entries on stdin and prints what the plugin would push for them:
//! labels, line, timestamp and structured metadata, one JSON object a
//! line, in the format of Grafana's own reference runner (so the two can be
//! compared line for line). Users try their `loki-pipeline-stages` here
//! before they deploy them.
//!
//! ```text
//! loki-logdriver pipeline [--stages YAML | --stage-file FILE] [--relabel YAML]
//!                         [--labels JSON] [--plain] < entries
//! ```
//!
//! Input, one JSON object a line: `{"line": "...", "ts": RFC 3339 (empty:
//! now), "source": "stdout"|"stderr", "sleep_ms": N}` (`sleep_ms` waits
//! before the entry, as time passes for multiline's idle timer); with
//! `--plain`, plain text lines. Output: `{"ts", "labels", "line",
//! "structured_metadata"}`; a `tenant` stage's choice shows as the label
//! `__tenant_id__`. Exit status 2: the plugin would refuse these options
//! (the reason on stderr); 3: relabelling drops the container.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::feed::wall_clock;
use crate::files::UserFiles;
use crate::line::Source;
use crate::process::entry::seed_of;
use crate::process::gotime;
use crate::process::{Context, Entry, Extracted, Loader, Origin, Pipeline, relabel};

pub const HELP: &str = "\
Dry run of pipeline stages: prints what would be pushed to Loki for entries on stdin.

Usage: loki-logdriver pipeline [--stages YAML | --stage-file FILE] [--relabel YAML]
                               [--labels JSON] [--plain] < entries

  --stages YAML      the value of loki-pipeline-stages (a YAML or JSON list of stages)
  --stage-file FILE  the file of loki-pipeline-stage-file (stages under pipeline_stages:)
  --relabel YAML     the value of loki-relabel-config
  --labels JSON      the container's labels before relabelling
                     (default {\"container_name\":\"app\",\"host\":\"h\"})
  --plain            stdin is plain text, one line per entry (source stdout)

stdin (without --plain), one JSON object a line:
  {\"line\": \"...\", \"ts\": \"2024-01-02T03:04:05Z\" (empty: now), \"source\": \"stdout\"|\"stderr\",
   \"sleep_ms\": N (wait before this entry: multiline's max_wait_time is a timer)}
stdout, one JSON object a line: {\"ts\", \"labels\", \"line\", \"structured_metadata\"}
Exit status: 2 when the plugin would refuse these options, 3 when relabelling drops the container.
";

#[derive(Debug, Default)]
struct Args {
    stages: Option<String>,
    stage_file: Option<String>,
    relabel: Option<String>,
    labels: Option<String>,
    plain: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = arg.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match name {
            "help" | "h" => return Ok(None),
            "stages" => out.stages = Some(value()?),
            "stage-file" => out.stage_file = Some(value()?),
            "relabel" => out.relabel = Some(value()?),
            "labels" => out.labels = Some(value()?),
            "plain" => out.plain = true,
            "v" => {}
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    Ok(Some(out))
}

#[derive(serde::Deserialize)]
struct Input {
    #[serde(default)]
    line: String,
    #[serde(default)]
    ts: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(serde::Serialize)]
struct Output<'a> {
    ts: String,
    labels: &'a BTreeMap<String, String>,
    line: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    structured_metadata: BTreeMap<&'a str, &'a str>,
}

/// Runs the dry run; returns the exit status.
pub fn run(
    args: &[String],
    stdin: impl BufRead,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> i32 {
    let fail = |stderr: &mut dyn Write, code: i32, message: &str| {
        let _ = writeln!(stderr, "loki-logdriver pipeline: {message}");
        code
    };
    let args = match parse_args(args) {
        Ok(Some(args)) => args,
        Ok(None) => {
            let _ = stdout.write_all(HELP.as_bytes());
            return 0;
        }
        Err(e) => return fail(&mut stderr, 2, &e),
    };
    let mut labels: BTreeMap<String, String> = match &args.labels {
        None => [("container_name", "app"), ("host", "h")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Some(text) => match serde_json::from_str(text) {
            Ok(labels) => labels,
            Err(e) => return fail(&mut stderr, 2, &format!("--labels: {e}")),
        },
    };
    if let Some(text) = &args.relabel {
        match relabel::parse(text) {
            Ok(rules) => {
                if !rules.apply(&mut labels) {
                    return fail(&mut stderr, 3, "relabelling drops the container");
                }
            }
            Err(e) => return fail(&mut stderr, 2, &format!("loki-relabel-config: {e}")),
        }
    }
    let here = std::env::current_dir().unwrap_or_default();
    let files = UserFiles::new(here);
    let pipeline = match (&args.stages, &args.stage_file) {
        (Some(_), Some(_)) => {
            return fail(
                &mut stderr,
                2,
                "only one of loki-pipeline-stage-file or loki-pipeline-stages can be configured",
            );
        }
        (Some(text), None) => {
            Pipeline::parse_inline(text, &files).map_err(|e| format!("loki-pipeline-stages: {e}"))
        }
        (None, Some(path)) => files
            .read(path, crate::config::options::MAX_STAGE_FILE_SIZE)
            .and_then(|bytes| {
                String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8 text".to_string())
            })
            .and_then(|text| Pipeline::parse_file(&text, &files))
            .map_err(|e| format!("loki-pipeline-stage-file {path}: {e}")),
        (None, None) => Pipeline::parse_inline("", &files).map_err(|e| e.to_string()),
    };
    let mut pipeline = match pipeline {
        Ok(p) => p,
        Err(e) => return fail(&mut stderr, 2, &e),
    };
    let bases: Vec<(Arc<BTreeMap<String, String>>, _)> = Source::ALL
        .iter()
        .map(|s| {
            let mut set = labels.clone();
            set.insert("source".into(), s.as_str().into());
            let seed = seed_of(&set);
            (Arc::new(set), seed)
        })
        .collect();
    let print = |entries: Vec<Entry>, stdout: &mut dyn Write| -> std::io::Result<()> {
        for entry in entries {
            let output = Output {
                ts: gotime::format(
                    entry.timestamp,
                    gotime::RFC3339_NANO,
                    &jiff::tz::TimeZone::UTC,
                ),
                labels: &entry.labels,
                line: &entry.line,
                structured_metadata: entry
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            };
            serde_json::to_writer(&mut *stdout, &output)?;
            stdout.write_all(b"\n")?;
        }
        stdout.flush()
    };
    for (n, line) in stdin.lines().enumerate() {
        let Ok(line) = line else { break };
        let input = if args.plain {
            Input {
                line,
                ts: String::new(),
                source: "stdout".into(),
                sleep_ms: 0,
            }
        } else {
            match serde_json::from_str::<Input>(&line) {
                Ok(input) => input,
                Err(e) => return fail(&mut stderr, 2, &format!("stdin line {}: {e}", n + 1)),
            }
        };
        if input.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(input.sleep_ms.min(60_000)));
        }
        let now = wall_clock();
        let mut cx = Context::new(now);
        // Time passed: what the stages' timers release goes first.
        let mut due = Vec::new();
        pipeline.tick(&mut due, &mut cx);
        if print(due, &mut stdout).is_err() {
            return 1;
        }
        let timestamp = if input.ts.is_empty() {
            now
        } else {
            match gotime::parse_layout(gotime::RFC3339_NANO, &input.ts, None) {
                Ok(t) => t.unix_nanos_saturating(),
                Err(e) => return fail(&mut stderr, 2, &format!("stdin ts: {e}")),
            }
        };
        // As the plugin: whitespace-only lines never reach the stages.
        if input.line.chars().all(char::is_whitespace) {
            continue;
        }
        let source = Source::parse(&input.source).unwrap_or(Source::Stdout);
        let (set, seed) = &bases[source as usize];
        let mut entries = vec![Entry {
            labels: set.clone(),
            extracted: Extracted::seeded(seed.clone()),
            line: input.line,
            timestamp,
            metadata: Vec::new(),
            origin: Origin::line(source, 0),
        }];
        pipeline.run(&mut entries, &mut cx);
        if print(entries, &mut stdout).is_err() {
            return 1;
        }
    }
    let mut rest = Vec::new();
    pipeline.flush(&mut rest, &mut Context::new(wall_clock()));
    if print(rest, &mut stdout).is_err() {
        return 1;
    }
    // What waits for a time (a `limit` stage) comes out at its time, as
    // Grafana's driver lets it through after Stop.
    while let Some(at) = pipeline.next_tick() {
        let wait = at.saturating_sub(wall_clock());
        if wait > 0 {
            std::thread::sleep(std::time::Duration::from_nanos(
                wait.min(60_000_000_000) as u64
            ));
        }
        let mut due = Vec::new();
        pipeline.tick(&mut due, &mut Context::new(wall_clock()));
        if print(due, &mut stdout).is_err() {
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dry(args: &[&str], input: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, input.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn prints_what_would_be_pushed() {
        let (code, out, _) = dry(
            &[
                "-stages",
                r#"[{"json":{"expressions":{"level":""}}},{"labels":{"level":""}}]"#,
            ],
            "{\"line\":\"{\\\"level\\\":\\\"warn\\\"}\",\"ts\":\"2024-01-02T03:04:05.5Z\"}\n",
        );
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["ts"], "2024-01-02T03:04:05.5Z");
        assert_eq!(v["labels"]["level"], "warn");
        assert_eq!(v["labels"]["source"], "stdout");
        assert_eq!(v["labels"]["container_name"], "app");
    }

    #[test]
    fn refusals_exit_2_with_the_reason() {
        let (code, _, err) = dry(&["--stages", "[{jsno: {}}]"], "");
        assert_eq!(code, 2);
        assert!(err.contains("Unknown stage type: jsno"), "{err}");
        let (code, _, err) = dry(&["--stages", "[]", "--stage-file", "x"], "");
        assert_eq!(code, 2);
        assert!(err.contains("only one"), "{err}");
    }

    #[test]
    fn plain_input_and_multiline_flush_at_the_end() {
        let (code, out, _) = dry(
            &["--plain", "--stages", "[{multiline: {firstline: '^\\d'}}]"],
            "1 start\n  more\n",
        );
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["line"], "1 start\n  more");
    }
}
