//! The plugin binary between a fake daemon and a fake Loki: what a Docker
//! user would see arrive in Loki, and what the daemon would see of the plugin.

mod support;

use std::time::{Duration, Instant};

use loki_logdriver::proto::logdriver::LogEntry;
use support::fake_daemon::{
    Fifo, Plugin, fixture_body, line, now_ns, number_of, numbered, partials,
    recorded_start_request, start_request, summary_field,
};
use support::fake_loki::{FakeLoki, Mode};

const SECRET_PASSWORD: &str = "s3cr3t-Pa55w0rd";

fn url_with_credentials(loki: &FakeLoki) -> String {
    loki.url()
        .replace("http://", &format!("http://alice:{SECRET_PASSWORD}@"))
}

#[tokio::test]
async fn recorded_container_arrives_with_its_labels_and_whole_lines() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let credentials = loki.url().replace("http://", "http://user:pass@");
    let mut request = recorded_start_request(&fifo.path, &credentials);
    request["Info"]["Config"]["loki-tenant-id"] = "team-a".into();

    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    fifo.write_bytes(
        &std::fs::read(format!(
            "{}/daemon-20.10/start-logging.fifo.bin",
            support::fake_daemon::FIXTURES
        ))
        .unwrap(),
    );
    assert_eq!(plugin.stop_logging(&fifo.path).await, serde_json::json!({}));
    fifo.close();
    loki.wait_for_entries(8, Duration::from_secs(10)).await;
    plugin
        .wait_for_log("logging finished", Duration::from_secs(5))
        .await;

    let streams = loki.streams();
    assert_eq!(
        streams.len(),
        2,
        "one stream per source: {:?}",
        streams.keys()
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let stdout_labels = streams.keys().find(|l| l["source"] == "stdout").unwrap();
    let expected: Vec<(&str, &str)> = vec![
        ("APP_ENV", "prod"),
        ("compose_project", "shop"),
        ("compose_service", "web"),
        ("container_name", "fixture-app"),
        ("host", &hostname),
        ("image", "localbusybox"),
        ("image_name", "localbusybox"),
        ("job", "docker"),
        // Compose containers group by their service in Loki 3.
        ("service_name", "web"),
        ("source", "stdout"),
        ("tier", "frontend"),
    ];
    let actual: Vec<(&str, &str)> = stdout_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(actual, expected);

    let stdout: Vec<String> = loki
        .entries_matching(&[("source", "stdout")])
        .iter()
        .map(|e| e.text())
        .collect();
    let stderr: Vec<String> = loki
        .entries_matching(&[("source", "stderr")])
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(stderr, ["first line to stderr"]);
    // The full container ID rides along as structured metadata, not a label.
    let full_id = request["Info"]["ContainerID"].as_str().unwrap().to_string();
    for entry in loki.entries_matching(&[]) {
        assert_eq!(
            entry.metadata,
            [("container_id".to_string(), full_id.clone())]
        );
    }
    assert_eq!(
        stdout,
        [
            "first line to stdout".to_string(),
            "héllo wörld 日本".to_string(),
            "\u{fffd}\u{fffd} invalid utf8".to_string(),
            "a".repeat(40_000),
            "b".repeat(16_384),
            "line\twith\ttabs and \"quotes\" and \\backslash".to_string(),
            "tail-without-newline".to_string(),
        ]
    );

    let push = &loki.requests()[0];
    let header = |name: &str| {
        push.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("x-scope-orgid"), "team-a");
    assert_eq!(
        header("authorization"),
        "Basic dXNlcjpwYXNz",
        "user:pass as basic auth"
    );
    assert!(
        header("user-agent").starts_with("loki-logdriver/"),
        "{}",
        header("user-agent")
    );

    let log = plugin.log();
    for secret in ["user:pass", "hunter2", "SECRET_TOKEN", "dXNlcjpwYXNz"] {
        assert!(!log.contains(secret), "plugin log leaks {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn protocol_answers_are_json_and_errors_are_clear() {
    let plugin = Plugin::start(&[]);
    let (status, caps) = plugin.call("/LogDriver.Capabilities", "").await;
    assert_eq!(
        (status, caps),
        (200, serde_json::json!({"Cap": {"ReadLogs": true}}))
    );
    let (_, activate) = plugin.call("/Plugin.Activate", "").await;
    assert_eq!(activate, serde_json::json!({"Implements": ["LogDriver"]}));

    let (status, answer) = plugin.call("/LogDriver.StartLogging", "{not json").await;
    assert_eq!(status, 400);
    assert!(
        answer["Err"].as_str().unwrap().contains("cannot parse"),
        "{answer}"
    );
    let (status, answer) = plugin.call("/LogDriver.Nope", "{}").await;
    assert_eq!(status, 404);
    assert!(answer["Err"].as_str().unwrap().contains("/LogDriver.Nope"));

    let unknown = plugin
        .stop_logging(std::path::Path::new("/run/docker/logging/unknown"))
        .await;
    assert_eq!(
        unknown,
        serde_json::json!({}),
        "StopLogging for an unknown file is never an error"
    );
    let (status, still_serving) = plugin.call("/LogDriver.Capabilities", "").await;
    assert_eq!(status, 200, "{still_serving}");
}

#[tokio::test]
async fn bad_log_opts_are_refused_with_a_message_naming_them() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let url = "http://alice:s3cr3t-Pa55w0rd@127.0.0.1:9/loki/api/v1/push";
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("loki-url", url), ("loki-batch-sise", "10")],
            vec!["unknown log-opt 'loki-batch-sise'", "loki-batch-size"],
        ),
        (
            vec![("loki-url", url), ("loki-timeout", "ten")],
            vec!["loki-timeout", "\"ten\""],
        ),
        (
            vec![("loki-url", url), ("loki-buffer-size", "16q")],
            vec!["loki-buffer-size", "\"16q\""],
        ),
        (
            vec![("loki-url", "ftp://alice:s3cr3t-Pa55w0rd@loki/push")],
            vec!["loki-url", "http"],
        ),
        (
            vec![("loki-url", url), ("loki-external-labels", "bad-name=x")],
            vec!["loki-external-labels", "bad-name"],
        ),
        (
            vec![("loki-url", url), ("loki-pipeline-stages", "- json: {}")],
            vec![
                "loki-pipeline-stages",
                "json stage",
                "JMES expression is required",
            ],
        ),
        (
            vec![("loki-url", url), ("loki-pipeline-stages", "- jsno: {}")],
            vec!["loki-pipeline-stages", "Unknown stage type: jsno"],
        ),
        (
            vec![("loki-url", url), ("loki-relabel-config", "- actoin: drop")],
            vec!["loki-relabel-config", "actoin"],
        ),
        (vec![], vec!["loki-url", "required"]),
    ];
    for (opts, expected) in cases {
        let answer = plugin
            .start_logging(&start_request(&fifo.path, &opts))
            .await;
        let err = answer["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("{opts:?} accepted: {answer}"));
        for needle in expected {
            assert!(err.contains(needle), "{opts:?}: {err:?} lacks {needle:?}");
        }
        assert!(
            !err.contains(SECRET_PASSWORD),
            "error leaks the password: {err}"
        );
    }
    assert!(!plugin.log().contains(SECRET_PASSWORD));
}

#[tokio::test]
async fn start_logging_is_immediate_while_loki_is_down() {
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let started = Instant::now();
    let answer = plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &loki.url())]))
        .await;
    let took = started.elapsed();
    assert_eq!(answer, serde_json::json!({}));
    assert!(
        took < Duration::from_millis(500),
        "StartLogging took {took:?}"
    );
}

/// Writes `count` numbered lines as the daemon would, from a thread of its
/// own; returns the longest single write.
async fn write_numbered(
    fifo: &mut Fifo,
    count: usize,
    len: usize,
    pace: Option<Duration>,
) -> Duration {
    let mut file = fifo.take_file();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut longest = Duration::ZERO;
        for n in 0..count {
            let bytes = support::fake_daemon::frame(&line("stdout", &numbered(n, len)));
            let start = Instant::now();
            file.write_all(&bytes).unwrap();
            longest = longest.max(start.elapsed());
            if let Some(pace) = pace {
                std::thread::sleep(pace);
            }
        }
        longest
    });
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap()
}

fn assert_all_numbers_once_in_order(loki: &FakeLoki, count: usize) {
    let numbers: Vec<usize> = loki
        .entries_matching(&[("source", "stdout")])
        .iter()
        .map(|e| number_of(&e.text()))
        .collect();
    assert_eq!(numbers.len(), count, "every line exactly once");
    assert!(
        numbers.iter().enumerate().all(|(i, n)| i == *n),
        "lines out of order or missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_logging_answers_at_once_and_all_200000_lines_arrive() {
    const COUNT: usize = 200_000;
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &loki.url())]))
        .await;
    let written = write_numbered(&mut fifo, COUNT, 100, None).await;
    let asked = Instant::now();
    // The daemon keeps its end open until StopLogging has been answered.
    assert_eq!(plugin.stop_logging(&fifo.path).await, serde_json::json!({}));
    let answer_time = asked.elapsed();
    assert!(
        answer_time < Duration::from_millis(200),
        "StopLogging took {answer_time:?}"
    );
    loki.wait_for_entries(COUNT, Duration::from_secs(60)).await;
    assert_all_numbers_once_in_order(&loki, COUNT);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(5))
        .await;
    assert_eq!(
        summary_field(&log, "fixture-app", "sent"),
        Some(COUNT as u64)
    );
    eprintln!("longest FIFO write {written:?}; StopLogging answered in {answer_time:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_refusing_connections_for_30s_never_stalls_the_daemon() {
    const COUNT: usize = 30_000;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let opts = [
        ("loki-url", loki.url()),
        ("loki-min-backoff", "100ms".into()),
        ("loki-max-backoff", "1s".into()),
        ("loki-retries", "100".into()),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    let path = fifo.path.clone();
    // 1,000 lines a second for 30 s while every connection is refused.
    let longest = write_numbered(&mut fifo, COUNT, 100, Some(Duration::from_millis(1))).await;
    assert!(
        longest < Duration::from_millis(100),
        "a FIFO write stalled for {longest:?}"
    );
    assert_eq!(loki.entry_count(), 0);
    loki.accept_connections().await;
    plugin.stop_logging(&path).await;
    loki.wait_for_entries(COUNT, Duration::from_secs(30)).await;
    assert_all_numbers_once_in_order(&loki, COUNT);
    let log = plugin.log();
    assert!(
        log.contains("Loki is unreachable; lines wait in the journal"),
        "the outage is logged:\n{log}"
    );
    eprintln!("longest FIFO write while Loki refused connections: {longest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_a_tiny_memory_bound_lines_wait_in_the_journal_and_none_is_lost() {
    const COUNT: usize = 2_000;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let opts = [
        ("loki-url", loki.url()),
        ("loki-buffer-size", "20k".to_string()),
        ("loki-min-backoff", "50ms".into()),
        ("loki-max-backoff", "200ms".into()),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    let path = fifo.path.clone();
    let longest = write_numbered(&mut fifo, COUNT, 100, None).await;
    loki.accept_connections().await;
    plugin.stop_logging(&path).await;
    drop(fifo);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(20))
        .await;
    assert_all_numbers_once_in_order(&loki, COUNT);
    assert_eq!(
        summary_field(&log, "fixture-app", "sent"),
        Some(COUNT as u64),
        "{log}"
    );
    assert_eq!(
        summary_field(&log, "fixture-app", "dropped_memory_full"),
        Some(0)
    );
    assert!(
        longest < Duration::from_millis(100),
        "a FIFO write stalled for {longest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_journal_a_tiny_buffer_drops_the_oldest_lines_and_counts_them() {
    const COUNT: usize = 2_000;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[("DATA_DIR", "")]);
    let mut fifo = Fifo::create();
    let opts = [
        ("loki-url", loki.url()),
        ("loki-buffer-size", "20k".to_string()),
        ("loki-min-backoff", "50ms".into()),
        ("loki-max-backoff", "200ms".into()),
        ("loki-retries", "1000".into()),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    let path = fifo.path.clone();
    let longest = write_numbered(&mut fifo, COUNT, 100, None).await;
    plugin
        .wait_for_log("dropped the oldest", Duration::from_secs(5))
        .await;
    loki.accept_connections().await;
    plugin.stop_logging(&path).await;
    drop(fifo);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(20))
        .await;

    let dropped = summary_field(&log, "fixture-app", "dropped_memory_full").unwrap();
    let sent = summary_field(&log, "fixture-app", "sent").unwrap();
    let arrived: Vec<usize> = loki
        .entries_matching(&[])
        .iter()
        .map(|e| number_of(&e.text()))
        .collect();
    assert!(dropped > 1000, "dropped {dropped}");
    assert_eq!(sent as usize, arrived.len());
    assert_eq!(
        sent + dropped,
        COUNT as u64,
        "every line is either delivered or counted as dropped"
    );
    let newest: Vec<usize> = (COUNT - 100..COUNT).collect();
    assert_eq!(
        arrived[arrived.len() - 100..],
        newest,
        "the newest lines are kept"
    );
    assert!(
        longest < Duration::from_millis(100),
        "a FIFO write stalled for {longest:?}"
    );
}

async fn wait_for_answer(loki: &FakeLoki, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !loki.requests().iter().any(|r| r.status == status) {
        assert!(Instant::now() < deadline, "no push was answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_429_and_500_are_retried_until_accepted() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Fail(429, "too many requests".into()));
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let opts = [
        ("loki-url", url.as_str()),
        ("loki-min-backoff", "50ms"),
        ("loki-max-backoff", "100ms"),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    for n in 0..10 {
        fifo.write_entry(&line("stdout", &numbered(n, 20)));
    }
    wait_for_answer(&loki, 429).await;
    loki.set_mode(Mode::Fail(500, "internal error".into()));
    wait_for_answer(&loki, 500).await;
    let log = plugin.log();
    assert!(
        log.contains("answer=429 too many requests"),
        "the failure is logged:\n{log}"
    );
    loki.set_mode(Mode::Accept);
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(10, Duration::from_secs(10)).await;
    assert_all_numbers_once_in_order(&loki, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_loki_times_out_and_is_retried() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Hang);
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let opts = [
        ("loki-url", url.as_str()),
        ("loki-timeout", "300ms"),
        ("loki-min-backoff", "50ms"),
        ("loki-max-backoff", "100ms"),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    for n in 0..5 {
        let took = fifo.write_entry(&line("stdout", &numbered(n, 20)));
        assert!(took < Duration::from_millis(100));
    }
    plugin
        .wait_for_log("no answer within", Duration::from_secs(5))
        .await;
    loki.set_mode(Mode::Accept);
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(5, Duration::from_secs(10)).await;
    assert_all_numbers_once_in_order(&loki, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_400_drops_the_batch_counts_it_and_logs_the_answer() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Fail(400, "entry out of order for stream".into()));
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = url_with_credentials(&loki);
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &url)]))
        .await;
    for n in 0..3 {
        fifo.write_entry(&line("stdout", &numbered(n, 20)));
    }
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;
    assert!(
        log.contains("entry out of order for stream"),
        "Loki's answer is logged:\n{log}"
    );
    assert_eq!(
        summary_field(&log, "fixture-app", "dropped_rejected"),
        Some(3)
    );
    assert_eq!(loki.requests().len(), 1, "a 400 is not retried");
    assert!(!log.contains(SECRET_PASSWORD), "password leaked:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_mib_line_arrives_in_pieces_loki_accepts() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &loki.url())]))
        .await;
    let big: Vec<u8> = (0..1 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    for entry in partials("stdout", &big, "0123abcd") {
        fifo.write_entry(&entry);
    }
    fifo.write_entry(&line("stdout", "after the big one"));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(6, Duration::from_secs(10)).await;
    let entries = loki.entries_matching(&[]);
    let sizes: Vec<usize> = entries.iter().map(|e| e.line.len()).collect();
    assert_eq!(sizes, [256_000, 256_000, 256_000, 256_000, 24_576, 17]);
    let joined: Vec<u8> = entries[..5].iter().flat_map(|e| e.line.clone()).collect();
    assert_eq!(joined, big, "the pieces put together are the original line");
    assert!(
        entries[..5]
            .windows(2)
            .all(|w| w[0].timestamp_ns == w[1].timestamp_ns)
    );
}

/// A line of 3 MiB passes the container's memory bound (1 MiB) while it
/// is still being read, with Loki down: its pieces leave memory for the
/// journal and the rest of it follows them there. Loki gets it whole and in
/// order once it is back, with the lines on stderr written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_the_memory_bound_arrives_whole_and_in_order() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Fail(503, "unavailable".into()));
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let options = [("loki-url", loki.url()), ("loki-buffer-size", "1m".into())];
    let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    plugin
        .start_logging(&start_request(&fifo.path, &options))
        .await;
    let big: Vec<u8> = (0..3 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    for (i, entry) in partials("stdout", &big, "0123abcd").iter().enumerate() {
        fifo.write_entry(entry);
        if i % 40 == 39 {
            fifo.write_entry(&line("stderr", &format!("meanwhile {i}")));
        }
    }
    fifo.write_entry(&line("stdout", "after the big one"));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.set_mode(Mode::Accept);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(30))
        .await;
    let entries = loki.entries_matching(&[]);
    let (stderr, stdout): (Vec<_>, Vec<_>) = entries
        .iter()
        .partition(|e| e.line.starts_with(b"meanwhile"));
    assert_eq!(stderr.len(), 4, "the lines on stderr");
    let sizes: Vec<usize> = stdout.iter().map(|e| e.line.len()).collect();
    let mut expected = vec![256_000; 12];
    expected.extend([(3 << 20) - 12 * 256_000, 17]);
    assert_eq!(sizes, expected, "{log}");
    let joined: Vec<u8> = stdout[..13].iter().flat_map(|e| e.line.clone()).collect();
    assert!(
        joined == big,
        "the pieces put together are the original line"
    );
    for key in ["received", "sent"] {
        assert_eq!(
            summary_field(&log, "fixture-app", key),
            Some(18),
            "{key}: {log}"
        );
    }
}

/// A FIFO named with 64 of `digit` (a container's FIFO per run), logged
/// to with `options`.
async fn start_fifo<V: AsRef<str>>(plugin: &Plugin, digit: char, options: &[(&str, V)]) -> Fifo {
    let fifo = Fifo::create_named(&digit.to_string().repeat(64));
    plugin
        .start_logging(&start_request(&fifo.path, options))
        .await;
    fifo
}

/// A container's first FIFO, inside a line of 2 MiB: 1.5 MiB of it
/// written and read, then StopLogging (the container stops). Returns the
/// FIFO, still open, the line, and the frames of its rest.
async fn first_fifo_inside_a_long_line(
    plugin: &Plugin,
    options: &[(&str, &str)],
) -> (Fifo, Vec<u8>, Vec<LogEntry>) {
    let mut fifo = start_fifo(plugin, '0', options).await;
    let long: Vec<u8> = (0..2 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let mut frames = partials("stdout", &long, "f1rstf1rst");
    let rest = frames.split_off(96);
    for entry in &frames {
        fifo.write_entry(entry);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    plugin.stop_logging(&fifo.path).await;
    (fifo, long, rest)
}

/// `docker restart` (or a restart policy) starts logging to a new FIFO of
/// the same container while the plugin may still be reading the old one's
/// last frames. Here the old FIFO holds a long line, past the memory bound
/// with Loki down, whose end comes after the new FIFO's first lines (a long
/// one and a short one): Loki gets each line whole, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_containers_lines_do_not_mix_with_the_old_fifos_last_line() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Fail(503, "unavailable".into()));
    let plugin = Plugin::start(&[]);
    let options = [("loki-url", loki.url()), ("loki-buffer-size", "1m".into())];
    let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut old, old_line, read_after) = first_fifo_inside_a_long_line(&plugin, &options).await;
    let mut new = start_fifo(&plugin, '1', &options).await;
    let new_line: Vec<u8> = (0..600 << 10).map(|i| b'A' + (i % 26) as u8).collect();
    let new_frames = partials("stdout", &new_line, "n3wn3wn3w");
    // The restarted container writes at once (from a thread: the FIFO may
    // fill while the plugin reads the old one to its end).
    let writer = tokio::task::spawn_blocking(move || {
        for entry in &new_frames {
            new.write_entry(entry);
        }
        new.write_entry(&line("stdout", "after the restart"));
        new
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for entry in &read_after {
        old.write_entry(entry);
    }
    old.close();
    let mut new = writer.await.unwrap();
    plugin.stop_logging(&new.path).await;
    new.close();
    loki.set_mode(Mode::Accept);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(30))
        .await;
    let entries = loki.entries_matching(&[]);
    let sizes: Vec<usize> = entries.iter().map(|e| e.line.len()).collect();
    let mut expected = vec![256_000; 8];
    expected.push((2 << 20) - 8 * 256_000);
    expected.extend([256_000, 256_000, (600 << 10) - 2 * 256_000, 17]);
    assert_eq!(sizes, expected, "{log}");
    let joined: Vec<u8> = entries[..9].iter().flat_map(|e| e.line.clone()).collect();
    assert!(joined == old_line, "the old FIFO's line put together");
    let joined: Vec<u8> = entries[9..12].iter().flat_map(|e| e.line.clone()).collect();
    assert!(joined == new_line, "the new FIFO's line put together");
    assert!(!log.contains("earlier FIFO is still being read"), "{log}");
    for key in ["received", "sent"] {
        assert_eq!(
            summary_field(&log, "fixture-app", key),
            Some(13),
            "{key}: {log}"
        );
    }
}

/// A container restarted twice in a row (a restart policy, a crash at
/// start) while the plugin still reads its first FIFO: its three FIFOs are
/// read one after the other, in the order they were started, none waiting
/// for a later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fifos_of_a_container_restarted_twice_are_read_in_turn() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::Fail(503, "unavailable".into()));
    let plugin = Plugin::start(&[]);
    let options = [("loki-url", loki.url()), ("loki-buffer-size", "1m".into())];
    let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut first, long, read_after) = first_fifo_inside_a_long_line(&plugin, &options).await;
    let mut second = start_fifo(&plugin, '1', &options).await;
    second.write_entry(&line("stdout", "the second run"));
    plugin.stop_logging(&second.path).await;
    second.close();
    let mut third = start_fifo(&plugin, '2', &options).await;
    third.write_entry(&line("stdout", "the third run"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for entry in &read_after {
        first.write_entry(entry);
    }
    first.close();
    plugin.stop_logging(&third.path).await;
    third.close();
    loki.set_mode(Mode::Accept);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(30))
        .await;
    let entries = loki.entries_matching(&[]);
    let sizes: Vec<usize> = entries.iter().map(|e| e.line.len()).collect();
    let mut expected = vec![256_000; 8];
    expected.extend([(2 << 20) - 8 * 256_000, 14, 13]);
    assert_eq!(sizes, expected, "{log}");
    let joined: Vec<u8> = entries[..9].iter().flat_map(|e| e.line.clone()).collect();
    assert!(joined == long, "the first FIFO's line put together");
    assert_eq!(entries[9].line, b"the second run");
    assert_eq!(entries[10].line, b"the third run");
    assert!(!log.contains("earlier FIFO is still being read"), "{log}");
}

/// The new FIFO waits for the old one 2 s at most: an old FIFO that never
/// ends (its writer left open) does not hold the restarted container's
/// output for longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_fifo_that_never_ends_holds_a_restarted_container_2_s_at_most() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let options = [("loki-url", loki.url())];
    let mut old = start_fifo(&plugin, '0', &options).await;
    old.write_entry(&line("stdout", "before the restart"));
    let mut new = start_fifo(&plugin, '1', &options).await;
    let started = std::time::Instant::now();
    let writer = tokio::task::spawn_blocking(move || {
        // 4 MB: more than the FIFO holds.
        for n in 0..40_000 {
            new.write_entry(&line("stdout", &numbered(n, 100)));
        }
        new
    });
    let mut new = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the new FIFO is read")
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the container waited {took:?}"
    );
    plugin.stop_logging(&new.path).await;
    new.close();
    loki.wait_for_entries(40_001, Duration::from_secs(30)).await;
    let log = plugin.log();
    assert!(log.contains("earlier FIFO is still being read"), "{log}");
    old.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_skipped_and_counted() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &loki.url())]))
        .await;
    fifo.write_entry(&line("stdout", "before"));
    fifo.write_bytes(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]);
    fifo.write_entry(&line("stdout", "after"));
    fifo.write_bytes(&[0, 0, 0, 50, 1, 2, 3]);
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;
    let lines: Vec<String> = loki
        .entries_matching(&[])
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(lines, ["before", "after"]);
    assert_eq!(
        summary_field(&log, "fixture-app", "invalid_frames"),
        Some(2),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_one_endpoint_share_batches() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let (mut a, mut b) = (Fifo::create(), Fifo::create());
    let url = loki.url();
    let opts = [("loki-url", url.as_str()), ("loki-batch-wait", "300ms")];
    let mut request_b = start_request(&b.path, &opts);
    request_b["Info"]["ContainerName"] = "/other".into();
    request_b["Info"]["ContainerID"] = "0ther0c0ntainer0id".into();
    plugin.start_logging(&start_request(&a.path, &opts)).await;
    plugin.start_logging(&request_b).await;
    a.write_entry(&line("stdout", "from a"));
    b.write_entry(&line("stderr", "from b"));
    loki.wait_for_entries(2, Duration::from_secs(5)).await;
    let requests = loki.requests();
    assert_eq!(requests.len(), 1, "one push carried both containers");
    let names: Vec<&str> = requests[0]
        .streams
        .iter()
        .map(|l| l["container_name"].as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"fixture-app") && names.contains(&"other"));
    for fifo in [&mut a, &mut b] {
        plugin.stop_logging(&fifo.path).await;
        fifo.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_buffered_lines_before_exit() {
    let loki = FakeLoki::start().await;
    let mut plugin = Plugin::start(&[("SHUTDOWN_GRACE", "3s")]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let opts = [("loki-url", url.as_str()), ("loki-batch-wait", "1m")];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    for n in 0..100 {
        fifo.write_entry(&line("stdout", &numbered(n, 50)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(loki.entry_count(), 0, "still waiting for the batch");
    let stopped = Instant::now();
    let status = tokio::task::block_in_place(|| plugin.terminate());
    assert!(status.success(), "{status}");
    assert!(stopped.elapsed() < Duration::from_secs(4));
    assert_all_numbers_once_in_order(&loki, 100);
    let log = plugin.log();
    assert!(log.contains("reading paused by plugin shutdown"), "{log}");
    assert_eq!(summary_field(&log, "fixture-app", "sent"), Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_loki_down_keeps_the_lines_for_the_next_start() {
    let loki = FakeLoki::start_refusing().await;
    let mut plugin = Plugin::start(&[("SHUTDOWN_GRACE", "1s")]);
    let mut fifo = Fifo::create();
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", &loki.url())]))
        .await;
    for n in 0..10 {
        fifo.write_entry(&line("stdout", &numbered(n, 50)));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| plugin.terminate());
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        stopped.elapsed()
    );
    let log = plugin.log();
    assert!(log.contains("delivery paused by plugin shutdown"), "{log}");
    assert_eq!(
        summary_field(&log, "fixture-app", "pending"),
        Some(10),
        "{log}"
    );
    assert_eq!(
        summary_field(&log, "fixture-app", "dropped_shutdown"),
        Some(0)
    );

    // The next start (Loki back) delivers them, and what came meanwhile.
    loki.accept_connections().await;
    for n in 10..20 {
        fifo.write_entry(&line("stdout", &numbered(n, 50)));
    }
    let next = plugin.restart_from(&[]);
    next.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(20, Duration::from_secs(10)).await;
    assert_all_numbers_once_in_order(&loki, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_restarted_plugin_reads_the_fifo_again() {
    let loki = FakeLoki::start().await;
    let mut first = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    plugin_start(&first, &fifo, &loki).await;
    fifo.write_entry(&line("stdout", &numbered(0, 30)));
    loki.wait_for_entries(1, Duration::from_secs(5)).await;
    first.kill();
    // The daemon keeps writing while the plugin is down; the pipe holds the lines.
    for n in 1..50 {
        fifo.write_entry(&line("stdout", &numbered(n, 30)));
    }
    let second = first.restart_from(&[]);
    second
        .wait_for_log("resumed=true", Duration::from_secs(5))
        .await;
    for n in 50..100 {
        fifo.write_entry(&line("stdout", &numbered(n, 30)));
    }
    second.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(100, Duration::from_secs(10)).await;
    assert_all_numbers_once_in_order(&loki, 100);
    assert!(
        !second.log().contains("hunter2"),
        "the state file keeps no unneeded env"
    );
}

async fn plugin_start(plugin: &Plugin, fifo: &Fifo, loki: &FakeLoki) {
    let url = loki.url();
    let opts = [("loki-url", url.as_str()), ("loki-batch-wait", "100ms")];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
}

#[tokio::test]
async fn recorded_start_without_options_is_refused_for_missing_url() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let mut request: serde_json::Value =
        serde_json::from_str(&fixture_body("start-logging-no-opts.http")).unwrap();
    request["File"] = fifo.path.to_string_lossy().into();
    let answer = plugin.start_logging(&request).await;
    assert!(
        answer["Err"]
            .as_str()
            .unwrap()
            .contains("'loki-url' is required"),
        "{answer}"
    );
    let _ = now_ns();
}
