//! The Go template engine and the `template` and `replace` stages against
//! Grafana's own code: the `pipeline-oracle` (Grafana's stages as its
//! Docker driver 3.7.6 runs them, `../shared/real/pipeline-oracle`) and the
//! plugin's dry run (`loki-logdriver pipeline`, called in-process) get the
//! same arguments and entries; their outputs must be identical.
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
use std::path::PathBuf;
use std::process::{Command, Stdio};

use loki_logdriver::dryrun;
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

fn oracle(path: &PathBuf, stages: &str, stdin: &str) -> Run {
    let mut child = Command::new(path)
        .arg("-stages")
        .arg(stages)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to the oracle");
    let out = child.wait_with_output().expect("oracle output");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        refusal: refusal(&String::from_utf8_lossy(&out.stderr)),
    }
}

fn plugin(stages: &str, stdin: &str) -> Run {
    let args = vec!["-stages".to_string(), stages.to_string()];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = dryrun::run(&args, stdin.as_bytes(), &mut stdout, &mut stderr);
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        refusal: refusal(&String::from_utf8_lossy(&stderr)),
    }
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

fn compare_batch(oracle_bin: &PathBuf, cases: &[(usize, &str)], diffs: &mut Vec<String>) {
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
