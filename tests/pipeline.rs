//! Pipeline stages and relabelling on the delivery path: the plugin binary
//! between a fake daemon and a fake Loki. What a user would see: a stack
//! trace as one entry, labels from JSON fields, raw lines in `docker logs`,
//! the same entries after a crash in the middle of a block, nothing held
//! back at exit, and every line counted.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::fake_daemon::{Fifo, Plugin, now_ns, read_config, start_request};
use support::fake_loki::{Entry, FakeLoki, Labels};

use loki_logdriver::proto::logdriver::LogEntry;

const MS: i64 = 1_000_000;

fn at(source: &str, text: &str, ts: i64) -> LogEntry {
    LogEntry {
        source: source.into(),
        time_nano: ts,
        line: bytes::Bytes::copy_from_slice(text.as_bytes()),
        ..LogEntry::default()
    }
}

/// A Java service's output: a request log, two stack traces, a request log.
fn java_lines(base: i64, tag: &str) -> Vec<LogEntry> {
    let lines = [
        format!("2024-05-01 10:00:00.000 INFO  {tag} started"),
        format!("2024-05-01 10:00:01.000 ERROR {tag} request failed"),
        "java.lang.IllegalStateException: pool exhausted".to_string(),
        "\tat com.example.Pool.take(Pool.java:42)".to_string(),
        "\tat com.example.Handler.run(Handler.java:7)".to_string(),
        "Caused by: java.net.SocketTimeoutException: read timed out".to_string(),
        "\t... 12 more".to_string(),
        format!("2024-05-01 10:00:02.000 WARN  {tag} retrying"),
        "\tat com.example.Retry.again(Retry.java:3)".to_string(),
        format!("2024-05-01 10:00:03.000 INFO  {tag} done"),
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| at("stdout", l, base + i as i64 * MS))
        .collect()
}

const MULTILINE: &str =
    r#"[{"multiline":{"firstline":"^\\d{4}-\\d{2}-\\d{2}","max_wait_time":"1s"}}]"#;

/// Distinct entries per stream, as Loki keeps them (exact duplicates once).
fn distinct(loki: &FakeLoki) -> BTreeSet<(Labels, i128, String)> {
    loki.streams()
        .into_iter()
        .flat_map(|(labels, entries)| {
            entries
                .into_iter()
                .map(move |e: Entry| (labels.clone(), e.timestamp_ns, e.text()))
        })
        .collect()
}

/// Checks that StartLogging succeeded.
fn started(answer: serde_json::Value) {
    let err = answer["Err"].as_str().unwrap_or("");
    assert!(err.is_empty(), "StartLogging refused: {err}");
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_trace_is_one_entry_and_docker_logs_shows_the_raw_lines() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "100ms"),
            ("loki-pipeline-stages", MULTILINE),
        ],
    );
    started(plugin.start_logging(&request).await);
    let lines = java_lines(now_ns(), "api");
    for line in &lines {
        fifo.write_entry(line);
    }
    // The last block ends by the idle timer (1 s), while the container runs.
    let ok = tokio::time::timeout(Duration::from_secs(10), async {
        while loki.entry_count() < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "{} entries; log:\n{}",
        loki.entry_count(),
        plugin.log()
    );
    let texts: Vec<String> = loki.entries_matching(&[]).iter().map(Entry::text).collect();
    assert_eq!(texts.len(), 4, "{texts:#?}");
    assert!(texts[1].starts_with(
        "2024-05-01 10:00:01.000 ERROR api request failed\njava.lang.IllegalStateException"
    ));
    assert!(texts[1].ends_with("\t... 12 more"), "{}", texts[1]);
    assert_eq!(texts[1].lines().count(), 6);
    assert_eq!(texts[2].lines().count(), 2);
    // Each block keeps its first line's timestamp.
    let stamps: Vec<i128> = loki
        .entries_matching(&[])
        .iter()
        .map(|e| e.timestamp_ns)
        .collect();
    assert_eq!(stamps[1], lines[1].time_nano as i128);

    // docker logs: the lines as the container wrote them.
    let logged = plugin.read_all_logs(&request, read_config(-1, false)).await;
    assert_eq!(logged.len(), lines.len());
    assert_eq!(logged[2].line.trim_ascii_end(), lines[2].line.as_ref());

    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    let summary = plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;
    assert!(
        summary.contains("received=10")
            && summary.contains("sent=10")
            && summary.contains("pending=0"),
        "every line counted once, the joined ones as sent: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_fields_become_labels_and_structured_metadata() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let stages = r#"
- json:
    expressions:
      level:
      trace: trace_id
      msg: message
- labels:
    level:
- structured_metadata:
    trace:
- output:
    source: msg
"#;
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "100ms"),
            ("loki-pipeline-stages", stages),
        ],
    );
    started(plugin.start_logging(&request).await);
    for (i, (level, trace)) in [("info", "a1"), ("error", "b2"), ("info", "c3")]
        .iter()
        .enumerate()
    {
        let line = format!(r#"{{"level":"{level}","trace_id":"{trace}","message":"m{i}"}}"#);
        fifo.write_entry(&at("stdout", &line, now_ns()));
    }
    fifo.write_entry(&at("stderr", "not json", now_ns()));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(4, Duration::from_secs(10)).await;
    let info = loki.entries_matching(&[("level", "info")]);
    assert_eq!(info.len(), 2);
    assert_eq!(info[0].text(), "m0");
    assert!(info[0].metadata.contains(&("trace".into(), "a1".into())));
    let error = loki.entries_matching(&[("level", "error")]);
    assert_eq!(error[0].text(), "m1");
    let plain = loki.entries_matching(&[("source", "stderr")]);
    assert_eq!(plain[0].text(), "not json");
    assert!(
        !loki.streams().keys().any(|l| l.contains_key("trace")),
        "metadata, not a label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_renames_and_drops_labels_or_the_whole_container() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let url = loki.url();
    let rules = r#"
- source_labels: [container_name]
  target_label: app
- action: labeldrop
  regex: host|image_name
"#;
    let mut kept = Fifo::create();
    let request = start_request(
        &kept.path,
        &[("loki-url", url.as_str()), ("loki-relabel-config", rules)],
    );
    started(plugin.start_logging(&request).await);
    kept.write_entry(&at("stdout", "hello", now_ns()));
    plugin.stop_logging(&kept.path).await;
    kept.close();
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    let labels: Vec<Labels> = loki.streams().into_keys().collect();
    assert_eq!(labels.len(), 1);
    assert!(
        labels[0].contains_key("app") && !labels[0].contains_key("host"),
        "{labels:?}"
    );
    assert!(!labels[0].contains_key("image_name"), "{labels:?}");

    // A rule that drops the container: nothing goes to Loki, every line is
    // counted as filtered, and docker logs still has them.
    let mut dropped = Fifo::create_named("dropped");
    let drop_rules = "- source_labels: [source_that_is_absent]\n  regex: yes\n  action: keep\n";
    let mut request = start_request(
        &dropped.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-relabel-config", drop_rules),
        ],
    );
    request["Info"]["ContainerID"] = "d".repeat(64).into();
    request["Info"]["ContainerName"] = "/dropped".into();
    started(plugin.start_logging(&request).await);
    for i in 0..5 {
        dropped.write_entry(&at("stdout", &format!("secret {i}"), now_ns()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged = plugin.read_all_logs(&request, read_config(-1, false)).await;
    assert_eq!(logged.len(), 5, "docker logs works");
    plugin.stop_logging(&dropped.path).await;
    dropped.close();
    let summary = plugin
        .wait_for_log("filtered_relabel_config=5", Duration::from_secs(10))
        .await;
    assert!(summary.contains("sent=0"), "{summary}");
    assert_eq!(loki.entry_count(), 1, "nothing of the dropped container");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_flushes_a_pending_block_at_once() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let stages = r#"[{"multiline":{"firstline":"^start","max_wait_time":"1h"}}]"#;
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "100ms"),
            ("loki-pipeline-stages", stages),
        ],
    );
    started(plugin.start_logging(&request).await);
    fifo.write_entry(&at("stdout", "start of a block", now_ns()));
    fifo.write_entry(&at("stdout", "  and its end", now_ns()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(loki.entry_count(), 0, "held for its hour");
    let started = std::time::Instant::now();
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(1, Duration::from_secs(5)).await;
    eprintln!("block delivered {:?} after StopLogging", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        loki.entries_matching(&[])[0].text(),
        "start of a block\n  and its end"
    );
}

/// Writes the Java output of several "requests" with a gap after each, so
/// the idle timer ends the last block of each.
fn write_requests(fifo: &mut Fifo, base: i64, from: usize, to: usize) {
    for r in from..to {
        for line in java_lines(base + r as i64 * 2_000 * MS, &format!("r{r}")) {
            fifo.write_entry(&line);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_block_gives_the_same_entries() {
    // What a run without a crash delivers: the dry run of the same stages
    // over the same lines.
    let base = now_ns() - 3_600_000 * MS;
    let mut expected_lines = Vec::new();
    for r in 0..6 {
        for line in java_lines(base + r as i64 * 2_000 * MS, &format!("r{r}")) {
            expected_lines.push(line);
        }
    }

    let loki = FakeLoki::start().await;
    let mut plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "50ms"),
            ("loki-pipeline-stages", MULTILINE),
        ],
    );
    started(plugin.start_logging(&request).await);
    write_requests(&mut fifo, base, 0, 3);
    // Half a stack trace of request 3, then the plugin dies.
    let partial = java_lines(base + 3 * 2_000 * MS, "r3");
    for line in &partial[..4] {
        fifo.write_entry(line);
    }
    wait_until(
        "the first requests delivered",
        Duration::from_secs(10),
        || loki.entry_count() >= 11,
    )
    .await;
    plugin.kill();
    let plugin2 = plugin.restart_from(&[]);
    for line in &partial[4..] {
        fifo.write_entry(line);
    }
    write_requests(&mut fifo, base, 4, 6);
    plugin2.stop_logging(&fifo.path).await;
    fifo.close();
    wait_until("all 24 entries", Duration::from_secs(20), || {
        distinct(&loki).len() >= 24
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The same entries as a run without the crash.
    let texts: Vec<String> = distinct(&loki).into_iter().map(|(_, _, t)| t).collect();
    let mut want: Vec<String> = Vec::new();
    let mut block: Option<String> = None;
    for line in &expected_lines {
        let text = String::from_utf8_lossy(&line.line).into_owned();
        if text.starts_with("2024-") {
            if let Some(b) = block.take() {
                want.push(b);
            }
            block = Some(text);
        } else if let Some(b) = &mut block {
            b.push('\n');
            b.push_str(&text);
        }
    }
    want.extend(block);
    let mut got = texts.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the crash changed what reached Loki");
    drop(plugin);
}

/// `limit` with `drop: false` makes lines wait for their turn in the
/// journal: the container's writes never wait, and every line arrives at
/// the rate asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_limit_never_slows_the_fifo_and_loses_nothing() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "50ms"),
            (
                "loki-pipeline-stages",
                "[{limit: {rate: 100, burst: 20, drop: false}}]",
            ),
        ],
    );
    started(plugin.start_logging(&request).await);
    let mut longest = Duration::ZERO;
    let began = std::time::Instant::now();
    for n in 0..300 {
        longest = longest.max(fifo.write_entry(&at("stdout", &format!("line {n}"), now_ns())));
    }
    let written = began.elapsed();
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(300, Duration::from_secs(20)).await;
    let took = began.elapsed();
    eprintln!(
        "300 lines written in {written:?} (longest write {longest:?}); all in Loki after {took:?}"
    );
    assert!(
        longest < Duration::from_millis(200),
        "a write waited {longest:?}"
    );
    assert!(
        took >= Duration::from_millis(2_500),
        "100 a second after a burst of 20: {took:?}"
    );
    let texts: Vec<String> = loki.entries_matching(&[]).iter().map(Entry::text).collect();
    let expected: Vec<String> = (0..300).map(|n| format!("line {n}")).collect();
    assert_eq!(texts, expected, "every line, in order");
    let summary = plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;
    assert!(
        summary.contains("sent=300") && summary.contains("pending=0"),
        "{summary}"
    );
}

/// A `tenant` stage sends each tenant's entries in pushes of their own,
/// with its `X-Scope-OrgID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_stage_sends_each_tenants_entries_with_its_own_header() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let stages = r#"[{"json":{"expressions":{"org":""}}},{"tenant":{"source":"org"}}]"#;
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-tenant-id", "default-org"),
            ("loki-batch-wait", "100ms"),
            ("loki-pipeline-stages", stages),
        ],
    );
    started(plugin.start_logging(&request).await);
    for (i, org) in ["acme", "globex", "acme", "", "globex"].iter().enumerate() {
        let line = if org.is_empty() {
            format!("plain line {i}")
        } else {
            format!(r#"{{"org":"{org}","n":{i}}}"#)
        };
        fifo.write_entry(&at("stdout", &line, now_ns()));
    }
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(5, Duration::from_secs(10)).await;
    let mut by_tenant: std::collections::BTreeMap<String, usize> = Default::default();
    for request in loki.requests() {
        let tenant = request
            .headers
            .get("x-scope-orgid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        *by_tenant.entry(tenant).or_default() += 1;
    }
    assert_eq!(
        by_tenant.keys().cloned().collect::<Vec<_>>(),
        ["acme", "default-org", "globex"],
        "each tenant in pushes of its own"
    );
    assert!(
        !loki
            .streams()
            .keys()
            .any(|l| l.contains_key("__tenant_id__")),
        "the tenant is a header, not a label"
    );
}

/// Loki rate-limits the stream a stage made (level="error"): that
/// container's lines back off and arrive later; nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_by_a_stage_is_blamed_and_retried() {
    let loki = FakeLoki::start().await;
    loki.rate_limit_streams(
        &[("level", "error")],
        support::fake_loki::LimitAnswer::Always,
    );
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let stages = r#"[{"json":{"expressions":{"level":""}}},{"labels":{"level":""}}]"#;
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "50ms"),
            ("loki-min-backoff", "100ms"),
            ("loki-max-backoff", "200ms"),
            ("loki-pipeline-stages", stages),
        ],
    );
    started(plugin.start_logging(&request).await);
    for level in ["info", "error", "info", "error"] {
        fifo.write_entry(&at(
            "stdout",
            &format!(r#"{{"level":"{level}"}}"#),
            now_ns(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        loki.entries_matching(&[("level", "error")]).len(),
        0,
        "refused so far"
    );
    loki.clear_rate_limits();
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(4, Duration::from_secs(10)).await;
    assert_eq!(loki.entries_matching(&[("level", "error")]).len(), 2);
    let summary = plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;
    assert!(
        summary.contains("sent=4") && summary.contains("dropped_rate_limited=0"),
        "{summary}"
    );
}
