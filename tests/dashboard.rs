//! The Grafana dashboard and the Prometheus alerting rules in `monitoring/`,
//! checked against the plugin itself: every metric either one uses must be
//! in the plugin binary's real `/metrics` output, with the labels and label
//! values the queries select and group by; the rules file must be the
//! README's alerts word for word, pass `promtool check rules`, and fire on
//! made-up series when it should (`promtool test rules`).
//!
//! promtool comes with Debian's `prometheus` package (`.ci/run` installs
//! it). Without it the promtool test says so loudly and passes; with
//! `CI=true` a missing promtool is a failure.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{Value, json};
use support::fake_daemon::{Fifo, Plugin, line, numbered, start_request};
use support::fake_loki::FakeLoki;
use support::scrape::{Scrape, free_port, scrape};

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring")
        .join(file)
}

const DASHBOARD: &str = "loki-logdriver-dashboard.json";
const ALERTS: &str = "loki-logdriver-alerts.yml";
const ALERTS_TEST: &str = "loki-logdriver-alerts.test.yml";

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

fn dashboard() -> Value {
    let text = std::fs::read_to_string(monitoring(DASHBOARD)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// `(where, PromQL)` of every query of the dashboard: panel targets and the
/// template variables' `label_values(...)`.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            queries.push((format!("panel {:?}", panel["title"]), expr.to_string()));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let query = variable["query"]["query"].as_str().unwrap();
            queries.push((format!("variable {}", variable["name"]), query.to_string()));
        }
    }
    queries
}

/// `(where, PromQL)` of every rule of the rules file: its `expr:` lines.
fn rule_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(monitoring(ALERTS)).unwrap();
    let alert = Regex::new(r"^\s*- alert:\s*(\S+)").unwrap();
    let expr = Regex::new(r"^\s*expr:\s*(.+)$").unwrap();
    let mut name = String::new();
    let mut queries = Vec::new();
    for line in text.lines() {
        if let Some(m) = alert.captures(line) {
            name = m[1].to_string();
        } else if let Some(m) = expr.captures(line) {
            queries.push((format!("alert {name}"), m[1].to_string()));
        }
    }
    queries
}

/// A metric a query selects, with its `{label op "value"}` matchers.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

fn selectors(query: &str) -> Vec<Selector> {
    let selector = Regex::new(r"\b(loki_logdriver_[a-z0-9_]+)\b(\{[^}]*\})?").unwrap();
    let matcher = Regex::new(r#"(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)""#).unwrap();
    selector
        .captures_iter(query)
        .map(|c| Selector {
            metric: c[1].to_string(),
            matchers: c.get(2).map_or(Vec::new(), |m| {
                matcher
                    .captures_iter(m.as_str())
                    .map(|m| (m[1].to_string(), m[2].to_string(), m[3].to_string()))
                    .collect()
            }),
        })
        .collect()
}

/// Labels a query groups or matches by: `by (...)`, `without (...)`,
/// `on (...)`, `ignoring (...)`, and the label of `label_values(..., label)`.
fn grouping_labels(query: &str) -> Vec<String> {
    let grouping = Regex::new(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)").unwrap();
    let label_values = Regex::new(r"label_values\(.*,\s*(\w+)\s*\)").unwrap();
    let mut labels: Vec<String> = grouping
        .captures_iter(query)
        .flat_map(|c| {
            c[1].split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    labels.extend(label_values.captures_iter(query).map(|c| c[1].to_string()));
    labels
}

/// Label names and values of each sample name in a scrape.
fn served(scrape: &Scrape) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut served: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for sample in &scrape.samples {
        let labels = served.entry(sample.name.clone()).or_default();
        for (name, value) in &sample.labels {
            labels
                .entry(name.clone())
                .or_default()
                .insert(value.clone());
        }
    }
    served
}

/// What is wrong with `query` against what the plugin serves, if anything.
fn check_query(
    place: &str,
    query: &str,
    served: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
) -> Vec<String> {
    let literal = Regex::new(r"^[\w|]+$").unwrap();
    let mut problems = Vec::new();
    let selectors = selectors(query);
    if selectors.is_empty() {
        problems.push(format!("{place}: no loki_logdriver_ metric in {query:?}"));
    }
    let mut labels_of_query: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
    for selector in &selectors {
        let Some(labels) = served.get(&selector.metric) else {
            problems.push(format!(
                "{place}: {} is not in the plugin's /metrics",
                selector.metric
            ));
            continue;
        };
        labels_of_query.extend(labels.keys().map(String::as_str));
        for (label, op, value) in &selector.matchers {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            let Some(values) = labels.get(label) else {
                problems.push(format!(
                    "{place}: {} has no label {label} (it has {:?})",
                    selector.metric,
                    labels.keys().collect::<Vec<_>>()
                ));
                continue;
            };
            // Literal values (not a template variable or a pattern) must be served.
            if (op == "=" || op == "=~") && literal.is_match(value) {
                for alternative in value.split('|') {
                    if !values.contains(alternative) {
                        problems.push(format!(
                            "{place}: {}{{{label}}} is never {alternative:?} (served: {values:?})",
                            selector.metric
                        ));
                    }
                }
            }
        }
    }
    for label in grouping_labels(query) {
        if !labels_of_query.contains(label.as_str()) {
            problems.push(format!(
                "{place}: groups by {label}, which none of its metrics has: {query:?}"
            ));
        }
    }
    problems
}

/// A scrape of the plugin binary with a compose container attached that has
/// sent lines through a fake Loki: every family has its series.
async fn scrape_of_a_working_plugin() -> Scrape {
    let loki = FakeLoki::start().await;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &metrics.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(10))
        .await;
    let mut fifo = Fifo::create();
    // A stage that drops lines 0 to 9: the filtered counter has a series.
    let stages = r#"[{"match":{"selector":"{source=\"stdout\"} |= \"line 00000\"","action":"drop","drop_counter_reason":"noise"}}]"#;
    let mut request = start_request(
        &fifo.path,
        &[
            ("loki-url", loki.url().as_str()),
            ("loki-batch-wait", "50ms"),
            ("loki-pipeline-stages", stages),
        ],
    );
    request["Info"]["ContainerName"] = "/shop-web-1".into();
    request["Info"]["ContainerLabels"] = json!({
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
    });
    assert_eq!(plugin.start_logging(&request).await, json!({}));
    for n in 0..100 {
        fifo.write_entry(&line("stdout", &numbered(n, 80)));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = scrape(metrics).await;
        if scrape.sum("loki_logdriver_lines_sent_total", &[]) >= 90.0
            && scrape.sum("loki_logdriver_lines_filtered_total", &[]) >= 10.0
        {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "90 lines not sent and 10 filtered:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_use_is_served_by_the_plugin() {
    let scrape = scrape_of_a_working_plugin().await;
    let served = served(&scrape);
    let dashboard = dashboard();
    let queries: Vec<(String, String)> = dashboard_queries(&dashboard)
        .into_iter()
        .chain(rule_queries())
        .collect();
    let problems: Vec<String> = queries
        .iter()
        .flat_map(|(place, query)| check_query(place, query, &served))
        .collect();
    let used: BTreeSet<String> = queries
        .iter()
        .flat_map(|(_, q)| selectors(q).into_iter().map(|s| s.metric))
        .collect();
    println!(
        "dashboard: {} queries of the dashboard and the alerts use {} metrics, checked against a scrape of {} series",
        queries.len(),
        used.len(),
        scrape.samples.len()
    );
    assert!(
        problems.is_empty(),
        "{}\n\nthe scrape:\n{}",
        problems.join("\n"),
        scrape.text
    );
    // What the dashboard is for shows on it.
    for (what, metric) in [
        ("lines in", "loki_logdriver_plugin_lines_received_total"),
        ("lines sent", "loki_logdriver_plugin_lines_sent_total"),
        (
            "dropped by reason",
            "loki_logdriver_plugin_lines_dropped_total",
        ),
        ("backlog per container", "loki_logdriver_pending_lines"),
        (
            "lag per container",
            "loki_logdriver_oldest_pending_age_seconds",
        ),
        ("journal disk use", "loki_logdriver_journal_bytes"),
        ("pushes by status", "loki_logdriver_pushes_total"),
    ] {
        assert!(
            used.contains(metric),
            "the dashboard shows no {what} ({metric})"
        );
    }
}

#[test]
fn the_check_finds_what_the_plugin_does_not_serve() {
    let scrape = Scrape::parse(
        "loki_logdriver_pushes_total{endpoint=\"e\",status=\"2xx\"} 1\n\
         loki_logdriver_pushes_total{endpoint=\"e\",status=\"5xx\"} 0\n"
            .to_string(),
    );
    let served = served(&scrape);
    let ok = r#"sum by (status, instance) (rate(loki_logdriver_pushes_total{status=~"2xx|5xx", endpoint=~"$endpoint"}[5m]))"#;
    assert_eq!(check_query("ok", ok, &served), Vec::<String>::new());
    let bad = [
        r#"rate(loki_logdriver_pushes{status="2xx"}[5m])"#,
        r#"rate(loki_logdriver_pushes_total{code="2xx"}[5m])"#,
        r#"rate(loki_logdriver_pushes_total{status=~"2xx|503"}[5m])"#,
        r#"sum by (reason) (rate(loki_logdriver_pushes_total[5m]))"#,
    ];
    for query in bad {
        assert_eq!(
            check_query("bad", query, &served).len(),
            1,
            "{query}: {:?}",
            check_query("bad", query, &served)
        );
    }
}

#[test]
fn the_dashboard_is_well_formed() {
    let dashboard = dashboard();
    let panels = panels(&dashboard);
    let ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "panel ids are unique: {ids:?}");
    let variables: BTreeSet<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let reference = Regex::new(r"\$(\w+)").unwrap();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap();
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title}: {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title}: a description says what it shows"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            for used in reference.captures_iter(expr) {
                let name = &used[1];
                assert!(
                    name.starts_with("__") || variables.contains(name),
                    "{title}: ${name} is not a variable of the dashboard"
                );
            }
        }
    }
}

#[test]
fn the_rules_file_is_the_readme_alerts() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("**Alerts.**").expect("README has Alerts");
    let block_start = readme[start..].find("```yaml\n").unwrap() + start + "```yaml\n".len();
    let block_end = readme[block_start..].find("```").unwrap() + block_start;
    let block = &readme[block_start..block_end];
    let rules = std::fs::read_to_string(monitoring(ALERTS)).unwrap();
    let (header, body) = rules.split_at(rules.find("groups:").unwrap());
    assert!(
        header.lines().all(|l| l.starts_with('#')),
        "only comments before groups:"
    );
    assert_eq!(body, block, "{ALERTS} and the README's alerts differ");
}

/// promtool, or why the test cannot run.
fn promtool() -> Option<&'static str> {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return Some("promtool");
    }
    let why = "promtool not found (Debian: apt-get install --no-install-recommends prometheus)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}, and CI=true: the rules must be checked in CI"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !! dashboard: {why}.\n\
         !! promtool check rules / test rules did NOT run.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

#[test]
fn promtool_checks_the_rules_and_they_fire_when_they_should() {
    let Some(promtool) = promtool() else {
        return;
    };
    for args in [["check", "rules", ALERTS], ["test", "rules", ALERTS_TEST]] {
        let output = Command::new(promtool)
            .args(args)
            .current_dir(monitoring(""))
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("dashboard: promtool {}: {}", args.join(" "), said.trim());
        assert!(output.status.success(), "promtool {args:?}:\n{said}");
        assert!(said.contains("SUCCESS"), "{said}");
    }
}
