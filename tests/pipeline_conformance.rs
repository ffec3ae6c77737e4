//! Conformance of the plugin's pipeline stages and relabelling with
//! Grafana's own code: every case under `tests/conformance/` is run through
//! the plugin's dry run (`loki-logdriver pipeline`) and through the oracle,
//! `../shared/real/pipeline-oracle` (Grafana's `clients/pkg/logentry/stages`
//! and Prometheus relabelling, v3.7.6, called as its Docker driver calls
//! them), with the same options and the same entries on stdin; the two must
//! agree on acceptance (exit status 0, 2 refused, 3 relabelling drops the
//! container) and on the entries pushed: labels, line, timestamp and
//! structured metadata, in order within each stream.
//!
//! Cases are YAML files, one per stage (or topic), each a list of:
//!
//! ```yaml
//! - name: what-it-shows            # unique within the file
//!   stages: |                      # loki-pipeline-stages, verbatim
//!     - json: {expressions: {level: ""}}
//!   stage_file: |                  # or: the contents of a loki-pipeline-stage-file
//!   relabel: |                     # loki-relabel-config, verbatim
//!   labels: {container_name: app}  # the container's labels (default app/h), or a JSON string
//!   lines: [...]                   # entries on stdout, timestamps 1 s apart from BASE_TS
//!   entries:                       # or entries in full; `ts` absent: as for lines,
//!     - {line: x, source: stderr, ts: "", sleep_ms: 50}   # `ts: ""`: now
//!   repeat: {count: 500, line: "n={i}"}  # or generated lines
//!   plain: true                    # stdin is plain text (timestamps are now)
//!   exit: 2                        # what Grafana does: 0 (default), 2 refuses, 3 drops
//!   sampled: {rate: 0.5, reference: "..."}  # statistical comparison, below
//!   min_ms: 300                    # Grafana's run must take at least this long (limit)
//!   order: any                     # entries of a stream may come in any order (below)
//!   exit_only: true                # only acceptance is compared (Grafana's output is
//!                                  # not the same from one run to the next)
//! ```
//!
//! `$DIR` in a configuration is the directory of the files the suite writes
//! first: the MaxMind databases of the geoip cases (`mod mmdb`).
//!
//! `exit` is checked against the oracle: a case that does not do what its
//! author meant fails as a broken case, so that no case tests less than it
//! seems to.
//!
//! Timestamps: entries given a `ts` must come out with identical ones; an
//! entry without one gets "now" on each side, so a timestamp within a run's
//! wall-clock span is compared as `<now>` (a stage that sets the time to now,
//! `pack`'s `ingest_timestamp`, shows as `<now>` on both sides).
//!
//! Randomness and rates: `sampling` keeps each entry with probability
//! `rate`, from a random source, so no two runs agree entry by entry.
//! A `sampled` case also runs its `reference` stages (the same pipeline
//! without the sampling stage) through the oracle, and each side must give
//! an in-order subsequence of the reference, of a size within 5 standard
//! deviations of the binomial mean, whose kept/dropped pattern has a number
//! of switches within bounds of an independent draw (so "keep the first
//! half", or "every other line", fail). `rate` 0 and 1 (and the default 0)
//! are exact. `limit` is wall-clock: its cases are built so that timing has
//! a wide margin (a burst then a rate far below the run's speed, so exactly
//! the burst passes; waits long enough to refill a bucket), compared
//! exactly; `min_ms` checks that Grafana's blocking mode does hold entries
//! back for that long, so that the case exercises it (the dry run does not
//! show when the plugin would send what a stage holds back: it hands it on
//! at the end of its input, so for our side only the entries are compared).
//!
//! Order: Grafana runs each stage in a goroutine. Its `multiline` stage
//! hands on each stream's blocks from that stream's goroutine, so only the
//! order within a stream is compared; its `match` stage hands on the entries
//! it does not select at once and the others after its nested stages, so the
//! order within a stream varies from run to run when some entries are
//! selected and some not: with a `match` stage, entries that are the same
//! but in another order within a stream count as the same. So they do in a
//! case marked `order: any` (a multiline stage whose streams a later stage
//! merges: Grafana flushes each stream's block from its own goroutine).
//!
//! Deliberate differences are listed in [`DELIBERATE`] with the reason; they
//! are reported but do not fail the suite. Everything else that differs
//! fails it, and every difference is printed with its configuration, input
//! and both outputs (on stderr, past the test harness's capture, and into
//! `target/tmp/conformance-report.txt`), then a summary:
//! `conformance: N cases, M differ (...)`.
//!
//! Without the oracle the suite is skipped with a note (a failure when
//! `CI=true`); `CONFORMANCE_ORACLE=path` names it when it is elsewhere.
//! `CONFORMANCE_CASES=text` runs only the cases whose name contains `text`;
//! `CONFORMANCE_THREADS=n` sets the parallelism (default 2);
//! `CONFORMANCE_PLUGIN=path` compares another build of the plugin (another
//! branch's) instead of this one's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use yaml_rust2::{Yaml, YamlLoader};

/// Differences we keep on purpose: (case name, why). A case listed here may
/// differ without failing the suite; a listed case that agrees is reported
/// so the entry can go.
const DELIBERATE: &[(&str, &str)] = &[
    // Unknown keys in a stage's config: Grafana's mapstructure.Decode
    // ignores them (a typo silently does nothing); the plugin refuses them
    // (src/process/fields.rs, Fields::finish; the README lists it).
    ("cri/unknown-key", UNKNOWN_KEY),
    ("decolorize/config-with-a-key", UNKNOWN_KEY),
    ("docker/config-with-a-key", UNKNOWN_KEY),
    ("drop/unknown-key", UNKNOWN_KEY),
    ("eventlogmessage/unknown-key", UNKNOWN_KEY),
    ("geoip/unknown-key-beside-valid", UNKNOWN_KEY),
    ("json/unknown-key-beside-valid", UNKNOWN_KEY),
    ("limit/unknown-key", UNKNOWN_KEY),
    ("logfmt/unknown-key-beside-valid", UNKNOWN_KEY),
    ("match/unknown-key", UNKNOWN_KEY),
    ("metrics/unknown-key", UNKNOWN_KEY),
    ("metrics/unknown-key-in-config", UNKNOWN_KEY),
    ("multiline/unknown-key", UNKNOWN_KEY),
    ("pack/unknown-key", UNKNOWN_KEY),
    ("regex/unknown-key", UNKNOWN_KEY),
    ("replace/unknown-key", UNKNOWN_KEY),
    ("sampling/unknown-key", UNKNOWN_KEY),
    ("wild/promtail-docker-sd-stage-with-key", UNKNOWN_KEY),
    // Configs with which Grafana's driver starts and then does nothing for
    // every line are refused (src/process/stages/geoip.rs, module doc).
    ("geoip/no-source-does-nothing", GEOIP_NOTHING),
    ("geoip/db-type-country-does-nothing", GEOIP_NOTHING),
    ("geoip/db-type-capitalised", GEOIP_NOTHING),
    ("geoip/db-type-city-on-asn-database", GEOIP_NOTHING),
    ("geoip/db-type-asn-on-city-database", GEOIP_NOTHING),
    // Where Grafana's driver would crash or serve nothing
    // (src/process/stages/metrics.rs, module doc).
    (
        "metrics/counter-negative-add-panics-in-grafana",
        "Grafana's counter panics on a negative add (the plugin process dies); ours skips the value",
    ),
    (
        "metrics/invalid-metric-name-accepted",
        "a metric name Prometheus' text format cannot carry is refused at build, not served broken",
    ),
    (
        "metrics/invalid-prefix-accepted",
        "a metric name Prometheus' text format cannot carry is refused at build, not served broken",
    ),
    // Replay after a crash decides as the first run did.
    (
        "multiline/timestamps-far-apart-arriving-together",
        "a block also ends when a line's own timestamp is max_wait_time after the last one, so a \
         replay cuts the same blocks (src/process/stages/multiline.rs, module doc); Docker stamps \
         lines as it reads them, so live the two agree",
    ),
    (
        "cri/partial-held-at-end-is-not-sent",
        "partial lines still waiting at the end are handed on, not lost, so every line is \
         accounted for (src/process/stages/cri.rs, module doc)",
    ),
    // A stage that takes no settings gets an empty mapping or nothing: a
    // list or a text is refused like an unknown key.
    ("decolorize/config-a-list", NO_SETTINGS),
    ("decolorize/config-a-string", NO_SETTINGS),
    ("docker/config-a-list", NO_SETTINGS),
    // Timestamps outside what Loki can store.
    (
        "timestamp/custom-layouts",
        "a parsed time before 1677 or after 2262 is clamped to that range (an entry's time is \
         nanoseconds in 64 bits); Loki refuses such entries either way (too old, too new)",
    ),
    (
        "timestamp/unix-formats",
        "a parsed time before 1677 or after 2262 is clamped to that range (an entry's time is \
         nanoseconds in 64 bits); Loki refuses such entries either way (too old, too new)",
    ),
    // Bounds Grafana does not have.
    (
        "pipeline/match-nesting-17",
        "match stages nest at most MAX_NESTING (16) deep (src/process/mod.rs)",
    ),
];

const UNKNOWN_KEY: &str =
    "an unknown key in a stage config is refused, not ignored (src/process/fields.rs)";
const NO_SETTINGS: &str =
    "a stage without settings takes an empty mapping or nothing; a list or text is refused";
const GEOIP_NOTHING: &str = "a geoip config that would look nothing up for any line is refused (src/process/stages/geoip.rs)";

/// The first default timestamp; entry `i` of a case gets `BASE_TS + i s`.
const BASE_TS_NS: i64 = 1_710_072_000_123_456_789; // 2024-03-10T12:00:00.123456789Z
/// A run that takes longer is killed (the case differs, or is broken).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Case {
    /// The file it comes from: the stage it is about.
    group: String,
    /// `group/name`.
    name: String,
    stages: Option<String>,
    stage_file: Option<String>,
    relabel: Option<String>,
    labels: Option<String>,
    plain: bool,
    stdin: String,
    exit: i32,
    sampled: Option<Sampled>,
    min_ms: Option<u64>,
    /// Compare each stream's entries regardless of their order.
    any_order: bool,
    /// Compare acceptance only: Grafana's entries vary from run to run.
    exit_only: bool,
}

#[derive(Debug, Clone)]
struct Sampled {
    rate: f64,
    /// The same pipeline without its sampling stage.
    reference: String,
}

// ---------------------------------------------------------------- cases

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn load_cases() -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .map_err(|e| format!("{}: {e}", cases_dir().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let group = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{group}: {e}"))?;
        let docs = YamlLoader::load_from_str(&text).map_err(|e| format!("{group}.yaml: {e}"))?;
        let Some(Yaml::Array(items)) = docs.into_iter().next() else {
            return Err(format!("{group}.yaml: expected a list of cases"));
        };
        for (i, item) in items.iter().enumerate() {
            let case = parse_case(&group, item)
                .map_err(|e| format!("{group}.yaml case {}: {e}", i + 1))?;
            if !names.insert(case.name.clone()) {
                return Err(format!("two cases named {}", case.name));
            }
            cases.push(case);
        }
    }
    Ok(cases)
}

fn ts_text(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .unwrap()
        .to_string()
}

fn string_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_case(group: &str, item: &Yaml) -> Result<Case, String> {
    let Yaml::Hash(map) = item else {
        return Err("a case is a mapping".into());
    };
    const KEYS: &[&str] = &[
        "name",
        "stages",
        "stage_file",
        "relabel",
        "labels",
        "lines",
        "entries",
        "repeat",
        "plain",
        "exit",
        "sampled",
        "min_ms",
        "order",
        "exit_only",
        "note",
    ];
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !KEYS.contains(&key) {
            return Err(format!("unknown case key {key:?}"));
        }
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match &item[key] {
            Yaml::BadValue => Ok(None),
            y => string_of(y)
                .map(Some)
                .ok_or_else(|| format!("{key}: expected a string")),
        }
    };
    let name = text("name")?.ok_or("a case needs a name")?;
    let labels = match &item["labels"] {
        Yaml::BadValue => None,
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let (Some(k), Some(v)) = (string_of(k), string_of(v)) else {
                    return Err("labels: expected strings".into());
                };
                m.insert(k, serde_json::Value::String(v));
            }
            Some(serde_json::Value::Object(m).to_string())
        }
        y => Some(string_of(y).ok_or("labels: a mapping or a JSON string")?),
    };
    let plain = item["plain"].as_bool().unwrap_or(false);
    let mut stdin = String::new();
    let mut n: i64 = 0;
    let mut entry =
        |line: &str, ts: Option<String>, source: &str, sleep_ms: i64, stdin: &mut String| {
            if plain {
                stdin.push_str(line);
                stdin.push('\n');
                return;
            }
            let ts = ts.unwrap_or_else(|| ts_text(BASE_TS_NS + n * 1_000_000_000));
            n += 1;
            let mut o = serde_json::json!({"line": line, "ts": ts, "source": source});
            if sleep_ms > 0 {
                o["sleep_ms"] = sleep_ms.into();
            }
            stdin.push_str(&o.to_string());
            stdin.push('\n');
        };
    if let Yaml::Array(lines) = &item["lines"] {
        for l in lines {
            let l = string_of(l).ok_or("lines: expected strings")?;
            entry(&l, None, "stdout", 0, &mut stdin);
        }
    }
    if let Yaml::Array(entries) = &item["entries"] {
        for e in entries {
            let Yaml::Hash(h) = e else {
                return Err("entries: expected mappings".into());
            };
            for key in h.keys() {
                let key = key.as_str().unwrap_or("?");
                if !["line", "ts", "source", "sleep_ms"].contains(&key) {
                    return Err(format!("entries: unknown key {key:?}"));
                }
            }
            let line = string_of(&e["line"]).unwrap_or_default();
            let ts = string_of(&e["ts"]);
            let source = string_of(&e["source"]).unwrap_or_else(|| "stdout".into());
            let sleep = e["sleep_ms"].as_i64().unwrap_or(0);
            entry(&line, ts, &source, sleep, &mut stdin);
        }
    }
    if let Yaml::Hash(_) = &item["repeat"] {
        let count = item["repeat"]["count"].as_i64().ok_or("repeat: count")?;
        let template = string_of(&item["repeat"]["line"]).ok_or("repeat: line")?;
        for i in 0..count {
            let line = template.replace("{i}", &i.to_string());
            entry(&line, None, "stdout", 0, &mut stdin);
        }
    }
    let sampled = match &item["sampled"] {
        Yaml::BadValue => None,
        s => Some(Sampled {
            rate: s["rate"].as_f64().ok_or("sampled: rate")?,
            reference: string_of(&s["reference"]).ok_or("sampled: reference")?,
        }),
    };
    Ok(Case {
        group: group.to_string(),
        name: format!("{group}/{name}"),
        stages: text("stages")?,
        stage_file: text("stage_file")?,
        relabel: text("relabel")?,
        labels,
        plain,
        stdin,
        exit: item["exit"].as_i64().unwrap_or(0) as i32,
        sampled,
        min_ms: item["min_ms"].as_i64().map(|v| v as u64),
        any_order: match string_of(&item["order"]).as_deref() {
            None => false,
            Some("any") => true,
            Some(other) => return Err(format!("order: {other:?} (only `any`)")),
        },
        exit_only: item["exit_only"].as_bool().unwrap_or(false),
    })
}

// ---------------------------------------------------------------- runs

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// Wall clock (ns since the epoch) at the start and end of the run.
    span: (i64, i64),
    elapsed: Duration,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn run(program: &Path, args: &[String], stdin: &str) -> Run {
    let started = Instant::now();
    let start = now_ns();
    // Go's Local is UTC in the plugin's container; both sides get the same.
    let mut child = match Command::new(program)
        .env("TZ", "UTC")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: -1,
                stdout: String::new(),
                stderr: format!("cannot start {}: {e}", program.display()),
                span: (start, now_ns()),
                elapsed: started.elapsed(),
            };
        }
    };
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                timed_out = true;
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n(killed after {RUN_TIMEOUT:?})"));
    }
    Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout,
        stderr,
        span: (start, now_ns()),
        elapsed: started.elapsed(),
    }
}

struct Tools {
    oracle: PathBuf,
    plugin: PathBuf,
    dir: tempfile::TempDir,
}

impl Tools {
    /// `$DIR` in a configuration: the directory of the generated files
    /// (the MaxMind databases of the geoip cases).
    fn expand(&self, text: &str) -> String {
        text.replace("$DIR", &self.dir.path().display().to_string())
    }

    fn args(&self, case: &Case, stages: Option<&str>) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(s) = stages.or(case.stages.as_deref()) {
            args.push("-stages".to_string());
            args.push(self.expand(s));
        }
        if let Some(content) = &case.stage_file {
            let path = self
                .dir
                .path()
                .join(format!("{}.yaml", case.name.replace('/', "__")));
            std::fs::write(&path, self.expand(content)).unwrap();
            args.push("-stage-file".to_string());
            args.push(path.display().to_string());
        }
        if let Some(r) = &case.relabel {
            args.push("-relabel".to_string());
            args.push(r.clone());
        }
        if let Some(l) = &case.labels {
            args.push("-labels".to_string());
            args.push(l.clone());
        }
        if case.plain {
            args.push("-plain".to_string());
        }
        args
    }

    fn oracle(&self, case: &Case, stages: Option<&str>) -> Run {
        run(&self.oracle, &self.args(case, stages), &case.stdin)
    }

    fn plugin(&self, case: &Case) -> Run {
        let mut args = vec!["pipeline".to_string()];
        args.extend(self.args(case, None));
        run(&self.plugin, &args, &case.stdin)
    }
}

// ---------------------------------------------------------------- outputs

#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    ts: String,
    line: String,
    metadata: BTreeMap<String, String>,
}

/// Entries by stream (label set), each stream in order.
type Streams = BTreeMap<String, Vec<Out>>;

fn string_map(v: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    match v {
        serde_json::Value::Null => Ok(BTreeMap::new()),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!("{k}: not a string: {other}")),
            })
            .collect(),
        other => Err(format!("not an object: {other}")),
    }
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn streams_of(run: &Run) -> Result<Streams, String> {
    let mut streams = Streams::new();
    for (i, line) in run.stdout.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("output line {}: {e}: {line}", i + 1))?;
        let labels = string_map(&v["labels"]).map_err(|e| format!("labels: {e}"))?;
        let metadata =
            string_map(&v["structured_metadata"]).map_err(|e| format!("metadata: {e}"))?;
        let ts = v["ts"].as_str().ok_or("no ts")?.to_string();
        let ts = match ts.parse::<jiff::Timestamp>() {
            Ok(t) => {
                let ns = t.as_nanosecond() as i64;
                // "now" on each side: within the run's span (with a margin).
                if ns >= run.span.0 - 1_000_000_000 && ns <= run.span.1 + 1_000_000_000 {
                    "<now>".to_string()
                } else {
                    ts
                }
            }
            Err(_) => ts,
        };
        let out = Out {
            ts,
            line: v["line"].as_str().ok_or("no line")?.to_string(),
            metadata,
        };
        streams.entry(label_text(&labels)).or_default().push(out);
    }
    Ok(streams)
}

fn show_run(run: &Run) -> String {
    let mut s = format!("exit {} after {} ms", run.code, run.elapsed.as_millis());
    if run.code != 0 {
        let _ = write!(s, ": {}", run.stderr.trim());
        if run.stdout.is_empty() {
            return s;
        }
    }
    match streams_of(run) {
        Err(e) => {
            let _ = write!(
                s,
                "\n    unreadable output ({e}):\n{}",
                clip(&run.stdout, 40)
            );
        }
        Ok(streams) => {
            for (labels, entries) in &streams {
                let _ = write!(s, "\n    stream {labels}: {} entries", entries.len());
                for (i, e) in entries.iter().enumerate() {
                    if i == 30 {
                        let _ = write!(s, "\n      ... ({} more)", entries.len() - 30);
                        break;
                    }
                    let _ = write!(s, "\n      {} {:?}", e.ts, e.line);
                    if !e.metadata.is_empty() {
                        let _ = write!(s, " metadata {}", label_text(&e.metadata));
                    }
                }
            }
        }
    }
    s
}

fn clip(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut s: String = all
        .iter()
        .take(lines)
        .map(|l| format!("      {l}\n"))
        .collect();
    if all.len() > lines {
        let _ = writeln!(s, "      ... ({} more lines)", all.len() - lines);
    }
    s
}

// ---------------------------------------------------------------- verdicts

enum Verdict {
    Same,
    /// The plugin does otherwise: why.
    Differ(String),
    /// The case does not test what it says (Grafana does not do what the
    /// case expects of it): fix the case.
    Broken(String),
}

struct Outcome {
    case: Case,
    verdict: Verdict,
    oracle: Run,
    plugin: Run,
    notes: String,
}

fn judge(tools: &Tools, case: &Case) -> Outcome {
    let oracle = tools.oracle(case, None);
    let plugin = tools.plugin(case);
    let mut notes = String::new();
    let verdict = (|| {
        // First, that Grafana does what the case says it does.
        if oracle.code != case.exit {
            return Verdict::Broken(format!(
                "Grafana exits {}, the case expects {}",
                oracle.code, case.exit
            ));
        }
        if let Some(min) = case.min_ms {
            if oracle.elapsed < Duration::from_millis(min) {
                return Verdict::Broken(format!(
                    "Grafana took {} ms, the case expects at least {min}",
                    oracle.elapsed.as_millis()
                ));
            }
        }
        let theirs = match oracle.code {
            0 => match streams_of(&oracle) {
                Ok(s) => Some(s),
                Err(e) => return Verdict::Broken(format!("Grafana's output: {e}")),
            },
            _ => None,
        };
        let reference = match (&case.sampled, &theirs) {
            (Some(sampled), Some(theirs)) => {
                let run = tools.oracle(case, Some(&sampled.reference));
                let full = match (run.code, streams_of(&run)) {
                    (0, Ok(full)) => full,
                    (code, r) => {
                        return Verdict::Broken(format!(
                            "the reference pipeline: exit {code}, {:?}",
                            r.err()
                        ));
                    }
                };
                if let Err(e) = sample_check(&full, theirs, sampled.rate, &mut notes) {
                    return Verdict::Broken(format!("Grafana's sample: {e}"));
                }
                Some(full)
            }
            _ => None,
        };
        // Then what we do.
        if plugin.code == 2 && plugin.stderr.contains("not built yet") {
            return Verdict::Differ("the stage is not built yet".into());
        }
        if plugin.code != oracle.code {
            return Verdict::Differ(format!(
                "Grafana exits {}, we exit {}",
                oracle.code, plugin.code
            ));
        }
        let Some(theirs) = theirs else {
            return Verdict::Same;
        };
        if case.exit_only {
            let _ = writeln!(
                notes,
                "entries not compared (Grafana's vary from run to run)"
            );
            return Verdict::Same;
        }
        let ours = match streams_of(&plugin) {
            Ok(s) => s,
            Err(e) => return Verdict::Differ(format!("our output: {e}")),
        };
        if let Some(min) = case.min_ms {
            // The dry run hands on at the end of its input what a stage
            // still holds; when the plugin would send it is not shown, so
            // only the entries are compared (the pacing is limit.rs's own
            // tests' to check).
            let _ = writeln!(
                notes,
                "Grafana took {} ms (at least {min} expected), we {} ms",
                oracle.elapsed.as_millis(),
                plugin.elapsed.as_millis()
            );
        }
        if let (Some(sampled), Some(full)) = (&case.sampled, &reference) {
            return match sample_check(full, &ours, sampled.rate, &mut notes) {
                Ok(()) => Verdict::Same,
                Err(e) => Verdict::Differ(format!("our sample: {e}")),
            };
        }
        if theirs == ours {
            Verdict::Same
        } else if (case.any_order || has_match_stage(case)) && sorted(&theirs) == sorted(&ours) {
            // Grafana's match stage hands on the entries it does not select
            // at once and the selected ones after its nested stages, from
            // different goroutines: their order within a stream is not
            // Grafana's to keep (it varies from run to run), so it is not
            // compared.
            let _ = writeln!(notes, "same entries, in another order");
            Verdict::Same
        } else {
            Verdict::Differ(first_difference(&theirs, &ours))
        }
    })();
    Outcome {
        case: case.clone(),
        verdict,
        oracle,
        plugin,
        notes,
    }
}

fn has_match_stage(case: &Case) -> bool {
    [&case.stages, &case.stage_file].iter().any(|s| {
        s.as_deref()
            .is_some_and(|s| s.contains("match:") || s.contains("\"match\""))
    })
}

fn sorted(streams: &Streams) -> BTreeMap<String, Vec<String>> {
    streams
        .iter()
        .map(|(labels, entries)| {
            let mut v: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
            v.sort();
            (labels.clone(), v)
        })
        .collect()
}

fn first_difference(theirs: &Streams, ours: &Streams) -> String {
    for (labels, t) in theirs {
        let Some(o) = ours.get(labels) else {
            return format!("we have no stream {labels}");
        };
        for (i, (a, b)) in t.iter().zip(o).enumerate() {
            if a != b {
                let what = if a.line != b.line {
                    "line"
                } else if a.ts != b.ts {
                    "timestamp"
                } else {
                    "structured metadata"
                };
                return format!("stream {labels}, entry {}: the {what} differs", i + 1);
            }
        }
        if t.len() != o.len() {
            return format!(
                "stream {labels}: Grafana has {} entries, we have {}",
                t.len(),
                o.len()
            );
        }
    }
    let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    format!("we have streams Grafana does not: {extra:?}")
}

/// Whether `sample` is what sampling `full` at `rate` could give: an
/// in-order subsequence of each stream, of a plausible size and pattern.
fn sample_check(
    full: &Streams,
    sample: &Streams,
    rate: f64,
    notes: &mut String,
) -> Result<(), String> {
    let mut kept_pattern = Vec::new();
    for (labels, entries) in sample {
        let Some(all) = full.get(labels) else {
            return Err(format!("stream {labels} is not in the reference"));
        };
        let mut at = 0;
        let mut pattern = vec![false; all.len()];
        for e in entries {
            while at < all.len() && &all[at] != e {
                at += 1;
            }
            if at == all.len() {
                return Err(format!(
                    "stream {labels}: {:?} is not an in-order entry of the reference",
                    e.line
                ));
            }
            pattern[at] = true;
            at += 1;
        }
        kept_pattern.extend(pattern);
    }
    for (labels, all) in full {
        if !sample.contains_key(labels) {
            kept_pattern.extend(std::iter::repeat_n(false, all.len()));
        }
    }
    let n = kept_pattern.len() as f64;
    let kept = kept_pattern.iter().filter(|k| **k).count() as f64;
    let mean = n * rate;
    let sd = (n * rate * (1.0 - rate)).sqrt();
    let switches = kept_pattern.windows(2).filter(|w| w[0] != w[1]).count() as f64;
    let p = 2.0 * rate * (1.0 - rate);
    let expected_switches = (n - 1.0).max(0.0) * p;
    let _ = writeln!(
        notes,
        "kept {kept} of {n} (expected {mean:.1} ± {sd:.1}), {switches} switches (expected {expected_switches:.1})"
    );
    if (kept - mean).abs() > 5.0 * sd + 1.0 {
        return Err(format!(
            "kept {kept} of {n}: {:.1} standard deviations from {mean:.1}",
            (kept - mean).abs() / sd.max(1e-9)
        ));
    }
    if (switches - expected_switches).abs() > 6.0 * expected_switches.sqrt() + 2.0 {
        return Err(format!(
            "{switches} switches between kept and dropped, an independent draw gives {expected_switches:.1}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- the test

fn loud(message: &str) {
    // Past the test harness's capture: this must be seen.
    let _ = writeln!(std::io::stderr(), "{message}");
}

#[test]
fn pipeline_conformance() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // CONFORMANCE_ORACLE: the oracle elsewhere (a script or the binary).
    let (oracle, present) = match std::env::var_os("CONFORMANCE_ORACLE") {
        Some(path) => {
            let path = PathBuf::from(path);
            let present = path.is_file();
            (path, present)
        }
        None => {
            let script = root.join("../shared/real/pipeline-oracle");
            let packed = root.join("../shared/real/bin/pipeline-oracle-3.7.6.xz");
            let present = script.is_file() && packed.is_file();
            (script, present)
        }
    };
    if !present {
        let message = format!(
            "\n*** pipeline_conformance SKIPPED: the oracle {} is not here, so the plugin's \
             stages were NOT compared with Grafana's. ***\n",
            oracle.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}(CI=true: the oracle must be present)");
        }
        loud(&message);
        return;
    }
    let cases = load_cases().unwrap_or_else(|e| panic!("cases: {e}"));
    for (name, _) in DELIBERATE {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "DELIBERATE names {name}, which is no case"
        );
    }
    let filter = std::env::var("CONFORMANCE_CASES").unwrap_or_default();
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| filter.split(',').any(|f| c.name.contains(f)))
        .collect();
    let mut tools = Tools {
        oracle,
        // CONFORMANCE_PLUGIN: another build of the plugin (another branch's).
        plugin: std::env::var_os("CONFORMANCE_PLUGIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_loki-logdriver"))),
        dir: tempfile::tempdir().unwrap(),
    };
    mmdb::write_all(tools.dir.path());
    // The first run unpacks the oracle: once, before the parallel runs.
    let warm = run(&tools.oracle, &[], "");
    assert_eq!(warm.code, 0, "the oracle does not run: {}", warm.stderr);
    // Then the binary the script unpacked is run directly (as the script
    // would exec it), which saves a shell per run.
    let cache = std::env::var_os("REAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/real-bin")));
    if let Some(bin) = cache.map(|c| c.join("pipeline-oracle-3.7.6")) {
        if run(&bin, &[], "").code == 0 {
            tools.oracle = bin;
        }
    }

    let started = Instant::now();
    let threads: usize = std::env::var("CONFORMANCE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    // Longest cases first, so that no thread is left with one at the end.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(case_cost(&cases[i])));
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&at) = order.get(i) else { break };
                    let outcome = judge(&tools, &cases[at]);
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| a.case.name.cmp(&b.case.name));

    let mut report = String::new();
    let mut per_group: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let (mut differ, mut deliberate, mut broken) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    for o in &outcomes {
        let g = per_group.entry(&o.case.group).or_default();
        g.0 += 1;
        let reason = DELIBERATE
            .iter()
            .find(|(n, _)| *n == o.case.name)
            .map(|(_, r)| *r);
        match &o.verdict {
            Verdict::Same => {
                if reason.is_some() {
                    stale.push(o.case.name.clone());
                }
            }
            Verdict::Differ(why) => {
                differ += 1;
                g.1 += 1;
                match reason {
                    Some(reason) => {
                        deliberate += 1;
                        g.2 += 1;
                        let _ = writeln!(
                            report,
                            "\n=== {} differs (deliberate: {reason}): {why}",
                            o.case.name
                        );
                    }
                    None => {
                        unexpected.push(o.case.name.clone());
                        let _ = writeln!(report, "\n=== {} DIFFERS: {why}", o.case.name);
                    }
                }
                describe(&mut report, o);
            }
            Verdict::Broken(why) => {
                broken += 1;
                let _ = writeln!(report, "\n=== {} is a BROKEN CASE: {why}", o.case.name);
                describe(&mut report, o);
            }
        }
    }
    let _ = writeln!(
        report,
        "\ncases by stage (cases, differ, of which deliberate):"
    );
    for (group, (n, d, k)) in &per_group {
        let _ = writeln!(report, "  {group:<22} {n:>4} {d:>4} {k:>4}");
    }
    for name in &stale {
        let _ = writeln!(
            report,
            "note: {name} is listed as a deliberate difference but agrees now: remove it from DELIBERATE"
        );
    }
    let _ = writeln!(
        report,
        "conformance: {} cases, {differ} differ ({deliberate} deliberate, {} not), {broken} broken cases; {:.1} s",
        outcomes.len(),
        differ - deliberate,
        started.elapsed().as_secs_f64()
    );
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-report.txt");
    if std::fs::write(&saved, &report).is_ok() {
        let _ = writeln!(report, "(this report is also in {})", saved.display());
    }
    loud(&report);
    assert!(
        unexpected.is_empty() && broken == 0,
        "{} cases differ from Grafana's driver and {broken} cases are broken: {unexpected:?}",
        unexpected.len()
    );
}

fn case_cost(case: &Case) -> usize {
    let sleeps: usize = case
        .stdin
        .match_indices("\"sleep_ms\":")
        .map(|(i, m)| {
            case.stdin[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse::<usize>()
                .unwrap_or(0)
        })
        .sum();
    sleeps + case.min_ms.unwrap_or(0) as usize + case.stdin.len() / 1000
}

fn describe(report: &mut String, o: &Outcome) {
    let c = &o.case;
    for (what, value) in [
        ("stages", &c.stages),
        ("stage file", &c.stage_file),
        ("relabel", &c.relabel),
        ("labels", &c.labels),
    ] {
        if let Some(v) = value {
            let _ = writeln!(report, "  {what}:\n{}", clip(v, 60));
        }
    }
    let _ = writeln!(
        report,
        "  input{}:\n{}",
        if c.plain { " (plain)" } else { "" },
        clip(&c.stdin, 25)
    );
    let _ = writeln!(report, "  Grafana: {}", show_run(&o.oracle));
    let _ = writeln!(report, "  ours:    {}", show_run(&o.plugin));
    if !o.notes.is_empty() {
        let _ = writeln!(report, "  sampling: {}", o.notes.trim());
    }
}

/// MaxMind databases for the geoip cases, written by a minimal MaxMind DB
/// writer (search tree of 24-bit records, data section, metadata), so that
/// both sides read the very same bytes.
mod mmdb {
    use std::path::Path;

    /// A value of the data section.
    pub enum V {
        S(&'static str),
        D(f64),
        F(f32),
        U16(u16),
        U32(u32),
        U64(u64),
        B(bool),
        M(Vec<(&'static str, V)>),
        A(Vec<V>),
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        let (base, extended) = if kind > 7 {
            (0, Some(kind - 7))
        } else {
            (kind << 5, None)
        };
        let (first, extra): (u8, Vec<u8>) = if size < 29 {
            (size as u8, vec![])
        } else if size < 285 {
            (29, vec![(size - 29) as u8])
        } else {
            (30, ((size - 285) as u16).to_be_bytes().to_vec())
        };
        out.push(base | first);
        if let Some(e) = extended {
            out.push(e);
        }
        out.extend(extra);
    }

    fn encode(out: &mut Vec<u8>, v: &V) {
        match v {
            V::S(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            V::D(d) => {
                control(out, 3, 8);
                out.extend(d.to_be_bytes());
            }
            V::F(f) => {
                control(out, 15, 4);
                out.extend(f.to_be_bytes());
            }
            V::U16(u) => {
                control(out, 5, 2);
                out.extend(u.to_be_bytes());
            }
            V::U32(u) => {
                let bytes = u.to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                control(out, 6, 4 - skip);
                out.extend(&bytes[skip..]);
            }
            V::U64(u) => {
                control(out, 9, 8);
                out.extend(u.to_be_bytes());
            }
            V::B(b) => control(out, 14, usize::from(*b)),
            V::M(pairs) => {
                control(out, 7, pairs.len());
                for (k, v) in pairs {
                    encode(out, &V::S(k));
                    encode(out, v);
                }
            }
            V::A(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(out, item);
                }
            }
        }
    }

    /// A database of `kind` whose `networks` (address bits, prefix length)
    /// lead to their records.
    fn build(kind: &'static str, ip_version: u16, networks: &[(u128, u32, V)]) -> Vec<u8> {
        let bits = if ip_version == 6 { 128 } else { 32 };
        let mut nodes: Vec<[Option<Result<usize, usize>>; 2]> = vec![[None, None]];
        let mut data = Vec::new();
        for (address, prefix, record) in networks {
            let offset = data.len();
            encode(&mut data, record);
            let mut node = 0;
            for depth in 0..*prefix {
                let bit = ((address >> (bits - 1 - depth)) & 1) as usize;
                if depth + 1 == *prefix {
                    nodes[node][bit] = Some(Err(offset));
                } else {
                    node = match nodes[node][bit] {
                        Some(Ok(next)) => next,
                        _ => {
                            nodes.push([None, None]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Some(Ok(next));
                            next
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for record in node {
                let value = match record {
                    None => count,
                    Some(Ok(next)) => *next,
                    Some(Err(offset)) => count + 16 + offset,
                };
                out.extend(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        encode(
            &mut out,
            &V::M(vec![
                ("binary_format_major_version", V::U16(2)),
                ("binary_format_minor_version", V::U16(0)),
                ("build_epoch", V::U64(1_700_000_000)),
                ("database_type", V::S(kind)),
                ("description", V::M(vec![("en", V::S("conformance"))])),
                ("ip_version", V::U16(ip_version)),
                ("languages", V::A(vec![V::S("en")])),
                ("node_count", V::U32(count as u32)),
                ("record_size", V::U16(24)),
            ]),
        );
        out
    }

    /// `a.b.c.d` as an IPv4-mapped IPv6 address (how Grafana looks it up).
    fn mapped(v4: [u8; 4]) -> u128 {
        (0xffffu128 << 32) | u128::from(u32::from_be_bytes(v4))
    }

    fn names(en: &'static str) -> V {
        V::M(vec![
            ("de", V::S("Name")),
            ("en", V::S(en)),
            ("ja", V::S("名前")),
        ])
    }

    fn city_record() -> V {
        V::M(vec![
            (
                "city",
                V::M(vec![
                    ("geoname_id", V::U32(4393217)),
                    ("names", names("Kansas City")),
                ]),
            ),
            (
                "continent",
                V::M(vec![
                    ("code", V::S("NA")),
                    ("names", names("North America")),
                ]),
            ),
            (
                "country",
                V::M(vec![
                    ("iso_code", V::S("US")),
                    ("names", names("United States")),
                ]),
            ),
            (
                "location",
                V::M(vec![
                    ("accuracy_radius", V::U16(1000)),
                    ("latitude", V::D(39.1027)),
                    ("longitude", V::D(-94.5778)),
                    ("metro_code", V::U16(616)),
                    ("time_zone", V::S("America/Chicago")),
                ]),
            ),
            ("postal", V::M(vec![("code", V::S("64184"))])),
            (
                "subdivisions",
                V::A(vec![
                    V::M(vec![("iso_code", V::S("MO")), ("names", names("Missouri"))]),
                    V::M(vec![("iso_code", V::S("JA")), ("names", names("Jackson"))]),
                ]),
            ),
            ("traits", V::M(vec![("is_anycast", V::B(true))])),
        ])
    }

    fn city(kind: &'static str) -> Vec<u8> {
        build(
            kind,
            6,
            &[
                (mapped([34, 120, 0, 0]), 112, city_record()),
                // Names without English, an empty one, no location longitude.
                (
                    mapped([10, 0, 0, 0]),
                    104,
                    V::M(vec![
                        (
                            "city",
                            V::M(vec![("names", V::M(vec![("de", V::S("Köln"))]))]),
                        ),
                        ("country", V::M(vec![("names", names(""))])),
                        ("location", V::M(vec![("latitude", V::D(50.9))])),
                        ("subdivisions", V::A(vec![])),
                    ]),
                ),
                // Coordinates Go prints with an exponent, and zeros.
                (
                    mapped([10, 1, 0, 0]),
                    112,
                    V::M(vec![
                        ("city", V::M(vec![("names", names("Null Island"))])),
                        (
                            "location",
                            V::M(vec![
                                ("latitude", V::D(0.00001)),
                                ("longitude", V::D(123456789.0)),
                            ]),
                        ),
                        (
                            "subdivisions",
                            V::A(vec![V::M(vec![
                                ("iso_code", V::S("")),
                                ("names", names("Only name")),
                            ])]),
                        ),
                    ]),
                ),
                (
                    mapped([10, 2, 0, 0]),
                    112,
                    V::M(vec![(
                        "location",
                        V::M(vec![("latitude", V::D(-0.0)), ("longitude", V::D(1e21))]),
                    )]),
                ),
                // Unicode names.
                (
                    mapped([10, 3, 0, 0]),
                    112,
                    V::M(vec![
                        ("city", V::M(vec![("names", names("São Paulo"))])),
                        ("country", V::M(vec![("names", names("Brasil \"quoted\""))])),
                    ]),
                ),
                // An IPv6 network.
                (
                    0x2001_0db8u128 << 96,
                    32,
                    V::M(vec![("city", V::M(vec![("names", names("Six"))]))]),
                ),
                // A record whose types do not fit: latitude as a string.
                (
                    mapped([10, 4, 0, 0]),
                    112,
                    V::M(vec![
                        ("city", V::M(vec![("names", names("Typed"))])),
                        (
                            "location",
                            V::M(vec![("latitude", V::S("north")), ("longitude", V::D(1.0))]),
                        ),
                    ]),
                ),
                // A float (not double) coordinate.
                (
                    mapped([10, 5, 0, 0]),
                    112,
                    V::M(vec![(
                        "location",
                        V::M(vec![("latitude", V::F(1.5)), ("longitude", V::D(2.25))]),
                    )]),
                ),
            ],
        )
    }

    fn asn(kind: &'static str) -> Vec<u8> {
        build(
            kind,
            6,
            &[
                (
                    mapped([34, 120, 0, 0]),
                    112,
                    V::M(vec![
                        ("autonomous_system_number", V::U32(396982)),
                        (
                            "autonomous_system_organization",
                            V::S("GOOGLE-CLOUD-PLATFORM"),
                        ),
                    ]),
                ),
                (
                    mapped([10, 0, 0, 0]),
                    104,
                    V::M(vec![
                        ("autonomous_system_number", V::U32(0)),
                        ("autonomous_system_organization", V::S("")),
                    ]),
                ),
                (
                    mapped([10, 1, 0, 0]),
                    112,
                    V::M(vec![("autonomous_system_number", V::U64(4_200_000_000))]),
                ),
                (
                    0x2001_0db8u128 << 96,
                    32,
                    V::M(vec![("autonomous_system_organization", V::S("Six Org"))]),
                ),
            ],
        )
    }

    pub fn write_all(dir: &Path) {
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("city.mmdb", city("GeoIP2-City")),
            ("geolite-city.mmdb", city("GeoLite2-City")),
            ("dbip-city.mmdb", city("DBIP-City-Lite")),
            ("enterprise.mmdb", city("GeoIP2-Enterprise")),
            ("country.mmdb", city("GeoLite2-Country")),
            ("asn.mmdb", asn("GeoLite2-ASN")),
            ("isp.mmdb", asn("GeoIP2-ISP")),
            (
                "v4.mmdb",
                build(
                    "GeoIP2-City",
                    4,
                    &[(
                        34u128 << 24,
                        8,
                        V::M(vec![("city", V::M(vec![("names", names("Four"))]))]),
                    )],
                ),
            ),
            ("odd.mmdb", build("Acme-Odd", 6, &[])),
            ("junk.mmdb", b"not a database".to_vec()),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
