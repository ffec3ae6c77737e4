//! The Prometheus endpoint of the plugin binary (`METRICS_ADDR`): a scenario
//! through the fake daemon and fake Lokis, then a scrape whose counters and
//! labels must tell what happened.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::fake_daemon::{Fifo, Plugin, line, numbered, start_request};
use support::fake_loki::{FakeLoki, Mode};
use support::scrape::{free_port, http_get, scrape, scrape_until};

const PASSWORD: &str = "s3cr3t-Pa55w0rd";
const TENANT: &str = "tenant-7f3a";

/// A StartLogging request for a container of its own.
fn container(
    fifo: &Fifo,
    id_char: char,
    name: &str,
    compose: Option<(&str, &str)>,
    opts: &[(&str, &str)],
) -> serde_json::Value {
    let mut request = start_request(&fifo.path, opts);
    request["Info"]["ContainerID"] = id_char.to_string().repeat(64).into();
    request["Info"]["ContainerName"] = format!("/{name}").into();
    request["Info"]["ContainerLabels"] = match compose {
        Some((project, service)) => serde_json::json!({
            "com.docker.compose.project": project,
            "com.docker.compose.service": service,
        }),
        None => serde_json::json!({}),
    };
    request
}

const FAST: [(&str, &str); 3] = [
    ("loki-batch-wait", "50ms"),
    ("loki-min-backoff", "50ms"),
    ("loki-max-backoff", "200ms"),
];

fn opts<'a>(url: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut opts = vec![("loki-url", url)];
    opts.extend(FAST);
    opts.extend(more);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_tells_what_happened_to_every_container_and_endpoint() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(5))
        .await;

    // Nothing yet: the plugin-wide families are there, at zero.
    let empty = scrape(addr).await;
    assert_eq!(empty.get("loki_logdriver_open_fifos", &[]), 0.0);
    assert_eq!(
        empty.get("loki_logdriver_plugin_lines_received_total", &[]),
        0.0
    );
    assert_eq!(
        empty.get(
            "loki_logdriver_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(http_get(addr, "/").await.0, 404);

    // A: 100 lines, all delivered, through a URL with credentials and a tenant.
    let loki_a = FakeLoki::start().await;
    let url_a = loki_a
        .url()
        .replace("http://", &format!("http://alice:{PASSWORD}@"));
    let mut fifo_a = Fifo::create_named("fifo-a");
    plugin
        .start_logging(&container(
            &fifo_a,
            'a',
            "metrics-a",
            Some(("shop", "api")),
            &opts(&url_a, &[("loki-tenant-id", TENANT)]),
        ))
        .await;
    for n in 0..100 {
        fifo_a.write_entry(&line("stdout", &numbered(n, 40)));
    }
    loki_a.wait_for_entries(100, Duration::from_secs(10)).await;

    // B: its Loki refuses 10 lines (400), fails 20 with a 500 (retried),
    // then takes them.
    let loki_b = FakeLoki::start().await;
    loki_b.set_mode(Mode::Fail(400, "entry has timestamp too old".into()));
    let url_b = loki_b.url();
    let mut fifo_b = Fifo::create_named("fifo-b");
    plugin
        .start_logging(&container(
            &fifo_b,
            'b',
            "metrics-b",
            None,
            &opts(&url_b, &[("loki-retries", "1000")]),
        ))
        .await;
    let b = [("container_name", "metrics-b")];
    for n in 0..10 {
        fifo_b.write_entry(&line("stdout", &numbered(n, 40)));
    }
    scrape_until(addr, "B's 10 refused lines", Duration::from_secs(10), |s| {
        s.value(
            "loki_logdriver_lines_dropped_total",
            &[b[0], ("reason", "rejected")],
        ) == Some(10.0)
    })
    .await;
    loki_b.set_mode(Mode::Fail(500, "ingester busy".into()));
    for n in 10..30 {
        fifo_b.write_entry(&line("stdout", &numbered(n, 40)));
    }
    let endpoint_b = [("endpoint", url_b.as_str())];
    scrape_until(addr, "a retry at B", Duration::from_secs(10), |s| {
        s.value("loki_logdriver_retries_total", &endpoint_b)
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    loki_b.set_mode(Mode::Accept);
    loki_b.wait_for_entries(20, Duration::from_secs(10)).await;

    // C: its Loki's port is closed.
    let url_c = format!("http://127.0.0.1:{}/loki/api/v1/push", free_port());
    let mut fifo_c = Fifo::create_named("fifo-c");
    plugin
        .start_logging(&container(
            &fifo_c,
            'c',
            "metrics-c",
            None,
            &opts(&url_c, &[]),
        ))
        .await;
    for n in 0..5 {
        fifo_c.write_entry(&line("stderr", &numbered(n, 40)));
    }
    let endpoint_c = [("endpoint", url_c.as_str())];
    let s = scrape_until(
        addr,
        "C's endpoint down and B's lines all sent",
        Duration::from_secs(10),
        |s| {
            s.value("loki_logdriver_endpoint_up", &endpoint_c) == Some(0.0)
                && s.value("loki_logdriver_lines_sent_total", &b) == Some(20.0)
                && s.value("loki_logdriver_pending_lines", &b) == Some(0.0)
                && s.value(
                    "loki_logdriver_pending_lines",
                    &[("container_name", "metrics-a")],
                ) == Some(0.0)
        },
    )
    .await;

    // No credential, tenant or query anywhere.
    for secret in [PASSWORD, "alice", TENANT] {
        assert!(!s.text.contains(secret), "{secret} in\n{}", s.text);
    }

    // A.
    let a = [
        ("container_name", "metrics-a"),
        ("container_id", "aaaaaaaaaaaa"),
        ("compose_project", "shop"),
        ("compose_service", "api"),
    ];
    assert_eq!(s.get("loki_logdriver_lines_received_total", &a), 100.0);
    assert_eq!(s.get("loki_logdriver_lines_sent_total", &a), 100.0);
    for reason in [
        "memory_full",
        "journal_full",
        "rejected",
        "rate_limited",
        "retries_exhausted",
        "shutdown",
    ] {
        assert_eq!(
            s.get(
                "loki_logdriver_lines_dropped_total",
                &[a[0], ("reason", reason)]
            ),
            0.0
        );
    }
    assert_eq!(s.get("loki_logdriver_oldest_pending_age_seconds", &a), 0.0);
    assert!(s.get("loki_logdriver_journal_bytes", &a) > 100.0 * 40.0);
    assert!(s.get("loki_logdriver_journal_limit_bytes", &a) > 0.0);
    let endpoint_a = loki_a.url();
    let endpoint_a = [("endpoint", endpoint_a.as_str())];
    let pushes_a = s.get(
        "loki_logdriver_pushes_total",
        &[endpoint_a[0], ("status", "2xx")],
    );
    assert!(pushes_a >= 1.0);
    assert_eq!(
        s.get("loki_logdriver_push_duration_seconds_count", &endpoint_a),
        pushes_a,
        "one latency per push"
    );
    assert_eq!(
        s.get(
            "loki_logdriver_push_duration_seconds_bucket",
            &[endpoint_a[0], ("le", "+Inf")]
        ),
        pushes_a
    );
    assert_eq!(s.get("loki_logdriver_endpoint_up", &endpoint_a), 1.0);
    assert_eq!(s.get("loki_logdriver_lanes", &endpoint_a), 1.0);

    // B.
    assert_eq!(s.get("loki_logdriver_lines_received_total", &b), 30.0);
    assert_eq!(
        s.get(
            "loki_logdriver_lines_dropped_total",
            &[b[0], ("reason", "rejected")]
        ),
        10.0
    );
    assert_eq!(
        s.get(
            "loki_logdriver_lines_dropped_total",
            &[b[0], ("reason", "retries_exhausted")]
        ),
        0.0
    );
    assert_eq!(
        s.get(
            "loki_logdriver_lines_received_total",
            &[
                b[0],
                ("container_id", "bbbbbbbbbbbb"),
                ("compose_service", "")
            ]
        ),
        30.0,
        "no compose label: empty"
    );
    for status in ["2xx", "4xx", "5xx"] {
        assert!(
            s.get(
                "loki_logdriver_pushes_total",
                &[endpoint_b[0], ("status", status)]
            ) >= 1.0,
            "{status}"
        );
    }
    assert_eq!(
        s.get(
            "loki_logdriver_pushes_total",
            &[endpoint_b[0], ("status", "unreachable")]
        ),
        0.0
    );
    assert!(s.get("loki_logdriver_retries_total", &endpoint_b) >= 1.0);
    assert_eq!(s.get("loki_logdriver_endpoint_up", &endpoint_b), 1.0);

    // C: nothing lost, all waiting, Loki down.
    let c = [("container_name", "metrics-c")];
    assert_eq!(s.get("loki_logdriver_lines_received_total", &c), 5.0);
    assert_eq!(s.get("loki_logdriver_lines_sent_total", &c), 0.0);
    assert_eq!(s.get("loki_logdriver_pending_lines", &c), 5.0);
    let age = s.get("loki_logdriver_oldest_pending_age_seconds", &c);
    assert!(age > 0.0 && age < 60.0, "{age}");
    assert!(
        s.get(
            "loki_logdriver_pushes_total",
            &[endpoint_c[0], ("status", "unreachable")]
        ) >= 1.0
    );
    assert_eq!(
        s.get("loki_logdriver_retries_total", &endpoint_c),
        0.0,
        "an unreachable Loki is probed, no lane retries"
    );
    assert_eq!(s.get("loki_logdriver_lanes", &endpoint_c), 1.0);

    // The plugin as a whole.
    assert_eq!(s.get("loki_logdriver_open_fifos", &[]), 3.0);
    assert_eq!(s.get("loki_logdriver_journals_open", &[]), 3.0);
    assert_eq!(s.get("loki_logdriver_endpoints", &[]), 3.0);
    assert_eq!(
        s.get("loki_logdriver_plugin_lines_received_total", &[]),
        135.0
    );
    assert_eq!(s.get("loki_logdriver_plugin_lines_sent_total", &[]), 120.0);
    assert_eq!(
        s.get(
            "loki_logdriver_plugin_lines_dropped_total",
            &[("reason", "rejected")]
        ),
        10.0
    );
    assert_eq!(
        s.get("loki_logdriver_memory_budget_bytes", &[]),
        (256u64 << 20) as f64
    );
    assert!(s.get("loki_logdriver_memory_budget_used_bytes", &[]) > 0.0);

    // A's container ends: its series go, the plugin-wide totals keep its lines.
    plugin.stop_logging(&fifo_a.path).await;
    fifo_a.close();
    // The reader forgets the FIFO after removing its attachment record (a
    // file), which may come after the series go: both are waited for.
    let s = scrape_until(
        addr,
        "A's series and FIFO gone",
        Duration::from_secs(10),
        |s| {
            s.matching("loki_logdriver_lines_received_total", &[a[0]])
                .next()
                .is_none()
                && s.get("loki_logdriver_open_fifos", &[]) == 2.0
        },
    )
    .await;
    assert!(!s.text.contains("metrics-a"), "{}", s.text);
    assert_eq!(s.get("loki_logdriver_open_fifos", &[]), 2.0);
    assert_eq!(s.get("loki_logdriver_journals_open", &[]), 2.0);
    assert_eq!(
        s.get("loki_logdriver_plugin_lines_received_total", &[]),
        135.0
    );
    assert_eq!(s.get("loki_logdriver_plugin_lines_sent_total", &[]), 120.0);
    fifo_b.close();
    fifo_c.close();
}

#[tokio::test]
async fn metrics_that_cannot_listen_leave_the_plugin_running() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr)]);
    plugin
        .wait_for_log("cannot serve metrics", Duration::from_secs(5))
        .await;
    let (status, caps) = plugin.call("/LogDriver.Capabilities", "").await;
    assert_eq!(status, 200, "{caps}");
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let plugin = Plugin::start(&[]);
    let (status, _) = plugin.call("/LogDriver.Capabilities", "").await;
    assert_eq!(status, 200);
    assert!(!plugin.log().contains("Prometheus"), "{}", plugin.log());
}

/// Every distinct endpoint used to keep its client and an idle connection
/// forever (2,000 URLs: +298 MB, +2,000 fds after all stopped). Now an
/// endpoint no container uses goes after `ENDPOINT_IDLE`, and so do the
/// containers' journals once delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_containers_are_released_once_unused() {
    const CONTAINERS: usize = 200;
    let loki = FakeLoki::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr.to_string()), ("ENDPOINT_IDLE", "1s")]);
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", plugin.pid())).map_or(0, |d| d.count());
    let (fds_before, rss_before) = (fds(), plugin.rss_kib());
    for i in 0..CONTAINERS {
        let mut fifo = Fifo::create();
        // A URL of its own: an endpoint of its own.
        let url = format!("{}?container={i}", loki.url());
        let mut request = start_request(&fifo.path, &[("loki-url", url.as_str())]);
        request["Info"]["ContainerID"] = format!("{i:064}").into();
        plugin.start_logging(&request).await;
        fifo.write_entry(&line("stdout", &format!("from {i}")));
        plugin.stop_logging(&fifo.path).await;
        fifo.close();
    }
    loki.wait_for_entries(CONTAINERS, Duration::from_secs(30))
        .await;
    let busy = scrape(addr).await;
    let peak_endpoints = busy.value("loki_logdriver_endpoints", &[]).unwrap_or(0.0);
    let released = scrape_until(
        addr,
        "every endpoint released",
        Duration::from_secs(20),
        |s| {
            s.value("loki_logdriver_endpoints", &[]) == Some(0.0)
                && s.value("loki_logdriver_journals_open", &[]) == Some(0.0)
                && s.value("loki_logdriver_open_fifos", &[]) == Some(0.0)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_after, rss_after) = (fds(), plugin.rss_kib());
    eprintln!(
        "{CONTAINERS} containers, each its own endpoint: {peak_endpoints} endpoints at the end of the run, then 0; \
         fds {fds_before} before, {fds_after} after; RSS {:.1} MB before, {:.1} MB after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    assert_eq!(
        released.value("loki_logdriver_plugin_lines_sent_total", &[]),
        Some(CONTAINERS as f64)
    );
    // What stays is per runtime thread, not per endpoint or container:
    // each thread that ran a reader keeps its private tee pipe (2 fds), and
    // the plugin keeps /dev/null open. 200 endpoints leaking would be 200+.
    assert!(
        fds_after <= fds_before + 8,
        "fds {fds_before} -> {fds_after}: {:?}",
        std::fs::read_dir(format!("/proc/{}/fd", plugin.pid())).map(|d| d
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .collect::<Vec<_>>())
    );
    assert!(
        rss_after < rss_before + 30 * 1024,
        "RSS {rss_before} kB -> {rss_after} kB"
    );
}

/// Lines a container's own stages drop on purpose are counted as filtered,
/// by the reason the stage names, and the account still adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_the_stages_drop_are_counted_as_filtered_by_reason() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(5))
        .await;
    let loki = FakeLoki::start().await;
    let url = loki.url();
    let mut fifo = Fifo::create();
    let stages = r#"[{"match":{"selector":"{source=\"stderr\"}","action":"drop","drop_counter_reason":"noise"}}]"#;
    let request = container(
        &fifo,
        'f',
        "filtering",
        None,
        &opts(&url, &[("loki-pipeline-stages", stages)]),
    );
    plugin.start_logging(&request).await;
    for i in 0..10 {
        let source = if i % 2 == 0 { "stdout" } else { "stderr" };
        fifo.write_entry(&support::fake_daemon::line(source, &format!("line {i}")));
    }
    loki.wait_for_entries(5, Duration::from_secs(10)).await;
    let id = [
        ("container_name", "filtering"),
        ("container_id", "ffffffffffff"),
        ("compose_project", ""),
        ("compose_service", ""),
    ];
    let scrape = scrape_until(
        addr,
        "5 lines filtered as noise",
        Duration::from_secs(10),
        |s| {
            s.get(
                "loki_logdriver_lines_filtered_total",
                &[id.as_slice(), &[("reason", "noise")]].concat(),
            ) == 5.0
        },
    )
    .await;
    assert_eq!(scrape.get("loki_logdriver_lines_sent_total", &id), 5.0);
    assert_eq!(scrape.get("loki_logdriver_lines_received_total", &id), 10.0);
    assert_eq!(scrape.get("loki_logdriver_pending_lines", &id), 0.0);
    assert_eq!(
        scrape.get("loki_logdriver_plugin_lines_filtered_total", &[]),
        5.0
    );
}

/// A `metrics` pipeline stage's series are served (Grafana's driver
/// registers them and never serves them), with the container's labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_stage_is_served_with_the_containers_labels() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(5))
        .await;
    let loki = FakeLoki::start().await;
    let url = loki.url();
    let mut fifo = Fifo::create();
    let stages = r#"
- regex:
    expression: "level=(?P<level>\\w+)"
- metrics:
    errors_total:
      type: Counter
      description: "error lines"
      source: level
      config:
        value: error
        action: inc
"#;
    let request = container(
        &fifo,
        'm',
        "measured",
        None,
        &opts(&url, &[("loki-pipeline-stages", stages)]),
    );
    plugin.start_logging(&request).await;
    for level in ["info", "error", "error", "warn", "error"] {
        fifo.write_entry(&support::fake_daemon::line(
            "stdout",
            &format!("level={level}"),
        ));
    }
    loki.wait_for_entries(5, Duration::from_secs(10)).await;
    let labels = [
        ("container_id", "mmmmmmmmmmmm"),
        ("container_name", "measured"),
    ];
    let scrape = scrape_until(addr, "3 errors counted", Duration::from_secs(10), |s| {
        s.text.contains("promtail_custom_errors_total")
            && s.get("promtail_custom_errors_total", &labels) == 3.0
    })
    .await;
    assert!(
        scrape
            .text
            .contains("# HELP promtail_custom_errors error lines"),
        "{}",
        scrape.text
    );
}
