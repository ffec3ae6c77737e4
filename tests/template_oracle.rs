//! The Go template engine and the `template` and `replace` stages against
//! Grafana's own code: the `pipeline-oracle` (Grafana's stages as its
//! Docker driver 3.7.6 runs them, `../shared/real/pipeline-oracle`) and the
//! plugin's dry run (`loki-logdriver pipeline`) get the same arguments and
//! entries; their outputs must be identical.
//!
//! * `engine_cases`: every template of `template_cases/engine.rs` over the
//!   lines below. Each template is one stage of a batch (a `json` stage,
//!   then per case a `template` stage seeding the field `out_N` with the
//!   line and one running the case with source `out_N`, then a `pack` of
//!   all `out_N`), so a few oracle runs cover hundreds of templates. A
//!   template the engine refuses runs alone (Go must refuse it too, with
//!   the same message); a batch Go refuses is split until the culprit is
//!   found; a case that differs in a batch is run again alone (see
//!   `compare_batch`).
//! * `stage_cases`: the stages' configurations (every key, refusals) and
//!   every case of Grafana's template_test.go and replace_test.go.
//!
//! Without the oracle the tests are skipped with a note, except under
//! `CI=true`, where that is a failure.

#[path = "template_cases/engine.rs"]
mod engine;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use loki_logdriver::process::gotemplate::Template;

/// Cases per oracle run.
const BATCH: usize = 60;

const LINES: &[&str] = &[
    "hello World",
    r#"{"level":"info","n":5,"msg":"user logged in"}"#,
    "ERROR 2024-03-05T10:11:12Z something failed: code=500 path=/api/v1",
    "  spaced   text\twith tab  ",
    "ünïcödé 日本語 😀 mixed",
    r#"{"level":"warn","n":-3.5,"msg":"<b>&\"quoted\"</b>"}"#,
    "12345",
];

fn oracle_path() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/real/pipeline-oracle");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing (required with CI=true)",
        path.display()
    );
    eprintln!(
        "NOTE: {} is missing; the comparison with Grafana's code is skipped",
        path.display()
    );
    None
}

#[derive(Debug, PartialEq)]
struct Run {
    status: i32,
    stdout: String,
    /// The reason for a refusal, without the runner's own prefix.
    refusal: String,
}

fn refusal(stderr: &str) -> String {
    // "pipeline-oracle: invalid X stage config: ..." and "loki-logdriver
    // pipeline: loki-pipeline-stages: invalid X stage config: ...".
    match stderr.find("invalid ") {
        Some(at) => stderr[at..].trim_end().to_string(),
        None => stderr.trim_end().to_string(),
    }
}

fn entries(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| serde_json::json!({"line": l, "ts": "2026-01-01T00:00:00Z"}).to_string() + "\n")
        .collect()
}

/// Runs `program args -stages STAGES` with `stdin`.
fn spawn(program: &Path, args: &[&str], stages: &str, stdin: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .arg("-stages")
        .arg(stages)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    // A refusal ends the program before it reads its input: a write may
    // then fail, which says nothing. (The input is small: no deadlock.)
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("output");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        refusal: refusal(&String::from_utf8_lossy(&out.stderr)),
    }
}

fn oracle(path: &Path, stages: &str, stdin: &str) -> Run {
    spawn(path, &[], stages, stdin)
}

/// The plugin's dry run: `loki-logdriver pipeline -stages ...`.
fn plugin(stages: &str, stdin: &str) -> Run {
    let bin = Path::new(env!("CARGO_BIN_EXE_loki-logdriver"));
    spawn(bin, &["pipeline"], stages, stdin)
}

// ---------------------------------------------------------------- engine

fn batch_stages(cases: &[(usize, &str)]) -> String {
    let mut stages = vec![serde_json::json!(
        {"json": {"expressions": {"level": "level", "n": "n", "msg": "msg"}}}
    )];
    let mut fields = Vec::new();
    for (i, template) in cases {
        let out = format!("out_{i}");
        stages.push(serde_json::json!({"template": {"source": out, "template": "{{ .Entry }}"}}));
        stages.push(serde_json::json!({"template": {"source": out, "template": template}}));
        fields.push(out);
    }
    stages.push(serde_json::json!({"pack": {"labels": fields}}));
    serde_json::Value::Array(stages).to_string()
}

/// Per case, its field in each output line (`None`: deleted).
fn case_outputs(run: &Run, cases: &[(usize, &str)]) -> BTreeMap<usize, Vec<Option<String>>> {
    let mut per_case: BTreeMap<usize, Vec<Option<String>>> = BTreeMap::new();
    for line in run.stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("an output line is JSON");
        let packed: serde_json::Value =
            serde_json::from_str(entry["line"].as_str().unwrap_or_default())
                .expect("a packed line is JSON");
        for (i, _) in cases {
            let v = packed
                .get(format!("out_{i}"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            per_case.entry(*i).or_default().push(v);
        }
    }
    per_case
}

fn compare_batch(oracle_bin: &Path, cases: &[(usize, &str)], diffs: &mut Vec<String>) {
    let stages = batch_stages(cases);
    let stdin = entries(LINES);
    let (o, p) = (oracle(oracle_bin, &stages, &stdin), plugin(&stages, &stdin));
    if o.status == 2 && cases.len() > 1 {
        let (a, b) = cases.split_at(cases.len() / 2);
        compare_batch(oracle_bin, a, diffs);
        compare_batch(oracle_bin, b, diffs);
        return;
    }
    if o.status != p.status {
        diffs.push(format!(
            "template {:?}: oracle exit {} ({}), plugin exit {} ({})",
            cases[0].1, o.status, o.refusal, p.status, p.refusal
        ));
        return;
    }
    let (o, p) = (case_outputs(&o, cases), case_outputs(&p, cases));
    for (i, template) in cases {
        if o.get(i) != p.get(i) && cases.len() > 1 {
            // A template printing the whole dot also sees the fields of
            // the cases before it; one of those may hold bytes that are not
            // UTF-8, which Go keeps and the plugin cannot (its fields are
            // Rust strings). Alone, it sees only its own field.
            compare_batch(oracle_bin, &[(*i, template)], diffs);
        } else if o.get(i) != p.get(i) {
            diffs.push(format!(
                "template {template:?}\n  oracle: {:?}\n  plugin: {:?}",
                o.get(i),
                p.get(i)
            ));
        }
    }
}

#[test]
fn engine_cases() {
    let Some(oracle_bin) = oracle_path() else {
        return;
    };
    let started = std::time::Instant::now();
    let cases: Vec<(usize, &str)> = engine::CASES.iter().copied().enumerate().collect();
    assert!(cases.len() >= 400);
    let (accepted, refused): (Vec<_>, Vec<_>) = cases
        .iter()
        .partition(|(_, t)| Template::parse("pipeline_template", t).is_ok());
    let mut diffs = Vec::new();
    for chunk in accepted.chunks(BATCH) {
        compare_batch(&oracle_bin, chunk, &mut diffs);
    }
    for (_, template) in &refused {
        let stages =
            serde_json::json!([{"template": {"source": "out", "template": template}}]).to_string();
        let (o, p) = (oracle(&oracle_bin, &stages, ""), plugin(&stages, ""));
        if o != p {
            diffs.push(format!(
                "template {template:?} refused\n  oracle: {o:?}\n  plugin: {p:?}"
            ));
        }
    }
    eprintln!(
        "{} templates ({} refused) x {} lines: {} differ ({:?})",
        cases.len(),
        refused.len(),
        LINES.len(),
        diffs.len(),
        started.elapsed()
    );
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

// ---------------------------------------------------------------- stages

/// How a refusal must compare: `Exact`ly (Grafana's own message), or by
/// exit status only where the plugin words it its own way (mapstructure's
/// type errors) or is stricter (unknown keys: the plugin refuses them).
#[derive(Clone, Copy, PartialEq)]
enum Refusal {
    Exact,
    Status,
    PluginOnly,
}

struct StageCase {
    name: &'static str,
    stages: String,
    lines: Vec<String>,
    refusal: Refusal,
}

fn case(name: &'static str, stages: &str, lines: &[&str]) -> StageCase {
    StageCase {
        name,
        stages: stages.to_string(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        refusal: Refusal::Exact,
    }
}

fn typed(mut c: StageCase, refusal: Refusal) -> StageCase {
    c.refusal = refusal;
    c
}

/// `json` setting each key of `fields` (a JSON object) from the line,
/// `stage`, then `pack` of `keys`: the line shows what the fields became.
fn around(fields: &str, stage: serde_json::Value, keys: &[&str]) -> String {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(fields).expect("fields are a JSON object");
    let mut stages = Vec::new();
    if !object.is_empty() {
        let expressions: serde_json::Map<String, serde_json::Value> = object
            .keys()
            .map(|k| (k.clone(), serde_json::Value::String(k.clone())))
            .collect();
        stages.push(serde_json::json!({"json": {"expressions": expressions}}));
    }
    stages.push(stage);
    stages.push(serde_json::json!({"pack": {"labels": keys, "ingest_timestamp": false}}));
    serde_json::Value::Array(stages).to_string()
}

/// The output lines as JSON values, a packed line decoded too: Go writes a
/// byte that is not UTF-8 as `\ufffd`, the plugin (whose fields are Rust
/// strings, where that byte already is U+FFFD) writes the character.
fn decoded(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("an output line is JSON");
            let packed = v["line"]
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .filter(serde_json::Value::is_object);
            if let Some(p) = packed {
                v["line"] = p;
            }
            v
        })
        .collect()
}

const TEMPLATE_YAML: &str = r#"
- json:
    expressions:
      app:  app
      level: level
- template:
    source: app
    template: '{{ .Value | ToUpper }} doki'
- template:
    source: level
    template: '{{ if eq .Value "WARN" }}{{ Replace .Value "WARN" "OK" -1 }}{{ else }}{{ .Value }}{{ end }}'
- template:
    source: nonexistent
    template: "TEST"
- labels:
    app: ''
    level: ''
    type: nonexistent
"#;

const TEMPLATE_LINE: &str = "\n{\n\t\"time\":\"2012-11-01T22:08:41+00:00\",\n\t\"app\":\"loki\",\n\t\"component\": [\"parser\",\"type\"],\n\t\"level\" : \"WARN\",\n\t\"nested\" : {\"child\":\"value\"},\n\t\"message\" : \"this is a log line\"\n}\n";
const TEMPLATE_LINE_MISSING_KEY: &str = "\n{\n\t\"time\":\"2012-11-01T22:08:41+00:00\",\n\t\"component\": [\"parser\",\"type\"],\n\t\"level\" : \"WARN\",\n\t\"nested\" : {\"child\":\"value\"},\n\t\"message\" : \"this is a log line\"\n}\n";

const REPLACE_LINE: &str = r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#;
const REPLACE_JSON_LINE: &str = r#"{"time":"2019-01-01T01:00:00.000000001Z", "level": "info", "msg": "11.11.11.11 - \"POST /loki/api/push/ HTTP/1.1\" 200 932 \"-\" \"Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6\""}"#;
const REPLACE_TEMPLATE: &str = r#"{{ if eq .Value "200" }}{{ Replace .Value "200" "HttpStatusOk" -1 }}{{ else }}{{ .Value | ToUpper }}{{ end }}"#;
const NAMED: &[&str] = &[
    "ip",
    "identd",
    "user",
    "timestamp",
    "action",
    "path",
    "protocol",
    "status",
    "referer",
    "useragent",
    "ip_user",
    "action_path",
];

fn template_cases() -> Vec<StageCase> {
    let mut cases = vec![
        case("TestPipeline_Template", TEMPLATE_YAML, &[TEMPLATE_LINE]),
        case(
            "TestPipelineWithMissingKey_Template",
            TEMPLATE_YAML,
            &[TEMPLATE_LINE_MISSING_KEY],
        ),
    ];
    // TestTemplateStage_Process: (fields, source, template).
    let process: &[(&str, &str, &str)] = &[
        (r#"{"some":"value"}"#, "some", "{{ .Value }} appended"),
        (r#"{"notmissing":"value"}"#, "missing", "newval"),
        (
            r#"{"level":"warn","app":"loki","message":"warn for app loki","module":"test"}"#,
            "message",
            "{{.Value}} in module {{.module}}",
        ),
        (
            r#"{"level":"warn","app":"loki"}"#,
            "missing",
            "{{ .level }} for app {{ .app | ToUpper }}",
        ),
        (
            r#"{"level":"warn","app":"loki","message":"warn for app loki"}"#,
            "message",
            "{{.Value}} in module {{.module}}",
        ),
        (
            r#"{"level":"Warning","testval":null}"#,
            "level",
            r#"{{ Replace .Value "Warning" "warn" 1 }}"#,
        ),
        (
            r#"{"testval":"Value"}"#,
            "testval",
            "{{ .Value | ToLower }}",
        ),
        (r#"{"testval":"Value"}"#, "testval", "{{ add 7 3 }}"),
        (r#"{"testval":"Value"}"#, "testval", "{{ ToLower .Value }}"),
        ("{}", "testval", "{{ .Value | ToLower }}"),
        (
            r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
            "testval",
            r#"{{ Replace .Value " " "_" -1 | ToLower }}"#,
        ),
        (
            r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
            "testval",
            r#"{{ regexReplaceAll "(Silly)" .Value "${1}foo"  }}"#,
        ),
        (
            r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
            "testval",
            r#"{{ regexReplaceAll "\\K" .Value "${1}foo"  }}"#,
        ),
        (
            r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
            "testval",
            r#"{{ regexReplaceAll "( |Of)" .Value "_"  }}"#,
        ),
        (
            r#"{"testval":"Some Silly Value With Lots Of Spaces"}"#,
            "testval",
            r#"{{ regexReplaceAll "\\K" .Value "err"  }}"#,
        ),
        (
            r#"{"testval":"!!!!!WOOOOO!!!!!"}"#,
            "testval",
            r#"{{ Trim .Value "!" }}"#,
        ),
        (r#"{"testval":"WOOOOO"}"#, "testval", ""),
        ("{}", "testval", ""),
        (
            r#"{"testval":"this is PII data"}"#,
            "testval",
            r#"{{ Sha2Hash .Value "salt" }}"#,
        ),
        (
            r#"{"testval":"this is PII data"}"#,
            "testval",
            r#"{{ Hash .Value "salt" }}"#,
        ),
        // Beyond Grafana's tests: what the dot holds.
        (r#"{"n":1.5e3,"b":false,"z":null}"#, "n", "{{ . }}"),
        // (A field named Value beside the source: Go's map order decides
        // which one .Value is, by chance; not compared.)
        (r#"{"Entry":"own"}"#, "Entry", "{{ .Value }}|{{ .Entry }}"),
        (r#"{"s":"é"}"#, "s", "{{ substr 0 1 .Value }}"),
        (r#"{"s":"x"}"#, "s", r#"{{ fail "no" }}"#),
        (
            r#"{"s":"x"}"#,
            "s",
            "{{ .container_name }}-{{ .source }}-{{ keys . | sortAlpha }}",
        ),
    ];
    for (fields, source, template) in process {
        let mut keys: Vec<&str> = vec![source];
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(fields).unwrap();
        keys.extend(object.keys().map(String::as_str).filter(|k| k != source));
        let stage = serde_json::json!({"template": {"source": source, "template": template}});
        let stages = around(fields, stage, &keys);
        cases.push(StageCase {
            name: "TestTemplateStage_Process",
            stages,
            lines: vec![fields.to_string()],
            refusal: Refusal::Exact,
        });
    }
    // Every key, and refusals (TestTemplateValidation and more).
    let line = &["hello"];
    cases.extend([
        case("template: null", r#"[{"template": null}]"#, line),
        case("template: {}", r#"[{"template": {}}]"#, line),
        case("no source", r#"[{"template": {"template": "x"}}]"#, line),
        case("empty source", r#"[{"template": {"source": "", "template": "x"}}]"#, line),
        case(
            "no template",
            r#"[{"template": {"source": "container_name"}}, {"labels": {"container_name": ""}}]"#,
            line,
        ),
        case(
            "null template",
            r#"[{"template": {"source": "host", "template": null}}, {"labels": {"host": ""}}]"#,
            line,
        ),
        case(
            "keys in any case",
            r#"[{"template": {"SOURCE": "x", "Template": "{{ .Entry }}!"}}, {"output": {"source": "x"}}]"#,
            line,
        ),
        case(
            "template that does not parse",
            r#"[{"template": {"source": "x", "template": "{{ foo }}"}}]"#,
            line,
        ),
        case(
            "template that does not parse (unclosed)",
            r#"[{"template": {"source": "x", "template": "{{ if .Value }}"}}]"#,
            line,
        ),
        typed(
            case("number as template", r#"[{"template": {"source": "x", "template": 5}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("list as source", r#"[{"template": {"source": ["x"], "template": "y"}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("bool as source", r#"[{"template": {"source": true, "template": "y"}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("string as config", r#"[{"template": "x"}]"#, line),
            Refusal::Status,
        ),
        typed(
            case(
                "unknown key",
                r#"[{"template": {"source": "x", "template": "y", "sourc": "z"}}]"#,
                line,
            ),
            Refusal::PluginOnly,
        ),
        case(
            "the line as it is then",
            r#"[{"template": {"source": "x", "template": "{{ .Entry | upper }}"}}, {"output": {"source": "x"}}, {"template": {"source": "y", "template": "{{ .Entry }}/{{ .x }}"}}, {"output": {"source": "y"}}]"#,
            &["abc", "x é 😀"],
        ),
    ]);
    cases
}

fn replace_cases() -> Vec<StageCase> {
    let named = r#"^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\] "(?P<action>\S+)\s?(?P<path>\S+)?\s?(?P<protocol>\S+)?" (?P<status>\d{3}|-) (\d+|-)\s?"?(?P<referer>[^"]*)"?\s?"?(?P<useragent>[^"]*)?"?$"#;
    let nested = r#"(?P<ip_user>^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+)) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\] "(?P<action_path>(?P<action>\S+)\s?(?P<path>\S+)?)\s?(?P<protocol>\S+)?" (?P<status>\d{3}|-) (\d+|-)\s?"?(?P<referer>[^"]*)"?\s?"?(?P<useragent>[^"]*)?"?$"#;
    let unnamed = r#"^(\S+) (\S+) (\S+) \[([\w:/]+\s[+\-]\d{4})\] "(\S+)\s?(\S+)?\s?(\S+)?" (\d{3}|-) (\d+|-)\s?"?([^"]*)"?\s?"?([^"]*)?"?$"#;
    let replace = |config: serde_json::Value, keys: &[&str]| {
        let mut stages = vec![serde_json::json!({"replace": config})];
        if !keys.is_empty() {
            // Show the fields, then put the line back.
            stages.push(
                serde_json::json!({"template": {"source": "line", "template": "{{ .Entry }}"}}),
            );
            stages.push(serde_json::json!({"pack": {"labels": keys, "ingest_timestamp": false}}));
        }
        serde_json::Value::Array(stages).to_string()
    };
    let line = &[REPLACE_LINE];
    let mut cases = vec![
        // TestPipeline_Replace.
        case(
            "without source",
            &replace(
                serde_json::json!({"expression": r"11.11.11.11 - (\S+) .*", "replace": "dummy"}),
                &[],
            ),
            line,
        ),
        case(
            "multi stage with source",
            &around(
                r#"{"level":"","msg":""}"#,
                serde_json::json!({"replace": {"expression": r#"\S+ - "POST (\S+) .*"#, "source": "msg", "replace": "/loki/api/v1/push/"}}),
                &["level", "msg"],
            ),
            &[REPLACE_JSON_LINE],
        ),
        case(
            "named groups with template",
            &replace(
                serde_json::json!({"expression": named, "replace": REPLACE_TEMPLATE}),
                NAMED,
            ),
            line,
        ),
        case(
            "named groups with template, line",
            &replace(
                serde_json::json!({"expression": named, "replace": REPLACE_TEMPLATE}),
                &[],
            ),
            line,
        ),
        case(
            "nested groups with template",
            &replace(
                serde_json::json!({"expression": nested, "replace": REPLACE_TEMPLATE}),
                NAMED,
            ),
            line,
        ),
        case(
            "nested groups with template, line",
            &replace(
                serde_json::json!({"expression": nested, "replace": REPLACE_TEMPLATE}),
                &[],
            ),
            line,
        ),
        case(
            "unnamed groups with template",
            &replace(
                serde_json::json!({"expression": unnamed, "replace": REPLACE_TEMPLATE}),
                &[],
            ),
            line,
        ),
        case(
            "empty replace",
            &replace(
                serde_json::json!({"expression": r"11.11.11.11 - (\S+\s)", "replace": ""}),
                &[],
            ),
            line,
        ),
        case(
            "adjacent capture groups",
            &replace(
                serde_json::json!({"expression": "(a|b|c)", "replace": ""}),
                &[],
            ),
            &["abc"],
        ),
        // TestReplaceConfig_validate.
        case("empty config", r#"[{"replace": null}]"#, line),
        case("missing expression", r#"[{"replace": {}}]"#, line),
        case(
            "invalid expression",
            r#"[{"replace": {"expression": "(?P<ts[0-9]+).*", "replace": "test"}}]"#,
            line,
        ),
        case(
            "empty source",
            r#"[{"replace": {"expression": "(?P<ts>[0-9]+).*", "source": ""}}]"#,
            line,
        ),
        case(
            "valid without source",
            r#"[{"replace": {"expression": "(?P<ts>[0-9]+).*", "replace": "test"}}]"#,
            line,
        ),
        case(
            "valid with source",
            r#"[{"replace": {"expression": "(?P<ts>[0-9]+).*", "source": "log", "replace": "test"}}]"#,
            line,
        ),
    ];
    // Every key; sources; templates; matches.
    let short = &["a1b22c333", "no digits", "x é 😀 42"];
    cases.extend([
        case(
            "no replace key",
            r#"[{"replace": {"expression": "(\\d+)"}}]"#,
            short,
        ),
        case(
            "null replace",
            r#"[{"replace": {"expression": "(\\d+)", "replace": null}}]"#,
            short,
        ),
        case(
            "keys in any case",
            r#"[{"replace": {"EXPRESSION": "(\\d+)", "Replace": "<{{ .Value }}>"}}]"#,
            short,
        ),
        case(
            "no group",
            r#"[{"replace": {"expression": "\\d+", "replace": "N"}}]"#,
            short,
        ),
        case(
            "every match",
            r#"[{"replace": {"expression": "(\\d)(\\d)?", "replace": "<{{ .Value }}>"}}]"#,
            short,
        ),
        case(
            "empty matches",
            r#"[{"replace": {"expression": "(x*)", "replace": "-"}}]"#,
            &["axb", "", "xx"],
        ),
        case(
            "a group that took no part",
            &replace(
                serde_json::json!({"expression": "(?P<a>a)|(?P<e>)", "replace": "<{{ .Value }}>"}),
                &["a", "e"],
            ),
            &["ab", "b", "aa"],
        ),
        case(
            "the same text in two groups",
            &replace(
                serde_json::json!({"expression": "(?P<x>\\w+)-(?P<y>\\w+)", "replace": "{{ .Value | upper }}{{ len .Value }}"}),
                &["x", "y"],
            ),
            &["ab-ab cd-ef", "ab-abc"],
        ),
        case(
            "template fields: map[string]string, no Entry",
            &around(
                r#"{"n":5,"b":true,"z":null,"s":"str"}"#,
                serde_json::json!({"replace": {"expression": "(\\d)", "source": "n", "replace": "{{ .n }}|{{ .b }}|{{ .z }}|{{ .s }}|{{ .Entry }}|{{ .container_name }}|{{ printf \"%T\" . }}|{{ .Value }}"}}),
                &["n"],
            ),
            &[r#"{"n":5,"b":true,"z":null,"s":"str"}"#],
        ),
        case(
            "keys of map[string]string",
            r#"[{"replace": {"expression": "(b)", "replace": "{{ keys . }}"}}]"#,
            &["abc"],
        ),
        case(
            "source missing or null",
            &around(
                r#"{"z":null}"#,
                serde_json::json!({"replace": {"expression": "(.*)", "source": "z", "replace": "set"}}),
                &["z"],
            ),
            &[r#"{"z":null}"#, "{}"],
        ),
        case(
            "source from a label",
            r#"[{"replace": {"expression": "(p)", "source": "container_name", "replace": "P"}}, {"labels": {"container_name": ""}}]"#,
            &["x"],
        ),
        case(
            "template that fails to execute",
            r#"[{"replace": {"expression": "(\\d)", "replace": "{{ fail \"no\" }}"}}]"#,
            short,
        ),
        case(
            "template that does not parse",
            r#"[{"replace": {"expression": "(\\d)", "replace": "{{ foo }}"}}]"#,
            short,
        ),
        case(
            "template failing on a later match",
            r#"[{"replace": {"expression": "(\\d+)", "replace": "{{ if eq .Value \"22\" }}{{ fail \"x\" }}{{ end }}ok"}}]"#,
            short,
        ),
        case(
            "non-ASCII and invalid UTF-8 out",
            r#"[{"replace": {"expression": "(é)", "replace": "{{ substr 0 1 .Value }}|{{ .Value | upper }}"}}]"#,
            short,
        ),
        typed(
            case("number as expression", r#"[{"replace": {"expression": 5}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("number as replace", r#"[{"replace": {"expression": "a", "replace": 5}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("number as source", r#"[{"replace": {"expression": "a", "source": 5}}]"#, line),
            Refusal::Status,
        ),
        typed(
            case("unknown key", r#"[{"replace": {"expression": "a", "replac": "b"}}]"#, line),
            Refusal::PluginOnly,
        ),
        case(
            "regexp Go refuses",
            r#"[{"replace": {"expression": "a**"}}]"#,
            line,
        ),
        case(
            "regexp Go accepts and Rust would not",
            r#"[{"replace": {"expression": "(?P<n>a{,2})\\Q.\\E", "replace": "[{{ .Value }}]"}}]"#,
            &["a{,2}.", "aa."],
        ),
    ]);
    cases
}

#[test]
fn stage_cases() {
    let Some(oracle_bin) = oracle_path() else {
        return;
    };
    let started = std::time::Instant::now();
    let mut diffs = Vec::new();
    let cases: Vec<StageCase> = template_cases()
        .into_iter()
        .chain(replace_cases())
        .collect();
    for c in &cases {
        let lines: Vec<&str> = c.lines.iter().map(String::as_str).collect();
        let stdin = entries(&lines);
        let (o, p) = (
            oracle(&oracle_bin, &c.stages, &stdin),
            plugin(&c.stages, &stdin),
        );
        let same = match c.refusal {
            Refusal::Exact => {
                (o.status, &o.refusal, decoded(&o.stdout))
                    == (p.status, &p.refusal, decoded(&p.stdout))
            }
            Refusal::Status => o.status == 2 && p.status == 2,
            Refusal::PluginOnly => o.status == 0 && p.status == 2,
        };
        if !same {
            diffs.push(format!(
                "{}: {}\n  oracle: {o:?}\n  plugin: {p:?}",
                c.name, c.stages
            ));
        }
    }
    eprintln!(
        "{} stage cases: {} differ ({:?})",
        cases.len(),
        diffs.len(),
        started.elapsed()
    );
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
