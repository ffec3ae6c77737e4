//! Mistakes people make in their options, and what the plugin binary tells
//! them, read from its log and its answers as a user would: a `loki-url`
//! host that does not resolve from the plugin (a compose service name),
//! `labels`/`env` items written as `name=value`, and the `loki-labels`
//! option that copied READMEs use. Warnings come once per container, not
//! at every retry.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_daemon::{Fifo, Plugin, line, numbered, start_request};
use support::fake_loki::FakeLoki;
use support::scrape::{free_port, scrape};

/// A compose-style URL whose host resolves nowhere (`.invalid` is reserved).
const UNRESOLVABLE: &str = "http://loki.invalid:3100/loki/api/v1/push";

fn container(fifo: &Fifo, name: &str, id: char, opts: &[(&str, &str)]) -> serde_json::Value {
    let mut request = start_request(&fifo.path, opts);
    request["Info"]["ContainerName"] = format!("/{name}").into();
    request["Info"]["ContainerID"] = id.to_string().repeat(64).into();
    request
}

/// The lines of the plugin's log that contain every one of `needles`.
fn lines_with<'a>(log: &'a str, needles: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loki_url_host_that_does_not_resolve_is_explained_once_per_container() {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &metrics.to_string())]);
    let opts = [
        ("loki-url", UNRESOLVABLE),
        ("loki-min-backoff", "50ms"),
        ("loki-max-backoff", "200ms"),
        ("loki-batch-wait", "50ms"),
    ];
    let mut web = Fifo::create_named("web");
    let answer = plugin
        .start_logging(&container(&web, "web", 'a', &opts))
        .await;
    assert_eq!(
        answer,
        json!({}),
        "the container starts while Loki is unreachable"
    );
    for n in 0..10 {
        web.write_entry(&line("stdout", &numbered(n, 50)));
    }

    // Pushes keep failing (probes at least every 2 s); the hint came once.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = scrape(metrics).await;
        if scrape.sum("loki_logdriver_pushes_total", &[("status", "unreachable")]) >= 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 3 failed pushes:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut api = Fifo::create_named("api");
    assert_eq!(
        plugin
            .start_logging(&container(&api, "api", 'b', &opts))
            .await,
        json!({})
    );
    api.write_entry(&line("stdout", "hello"));
    plugin
        .wait_for_log("container=api", Duration::from_secs(10))
        .await;
    // More failed pushes for both, then what the log holds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = plugin.log();

    let hint = "loki-url host \"loki.invalid\" does not resolve from the plugin";
    let for_web = lines_with(&log, &[hint, "container=web"]);
    let for_api = lines_with(&log, &[hint, "container=api"]);
    println!(
        "hints: the plugin said, for web:\n  {}",
        for_web.join("\n  ")
    );
    assert_eq!(for_web.len(), 1, "once for web, not per retry:\n{log}");
    assert_eq!(for_api.len(), 1, "once for api too:\n{log}");
    let said = for_web[0];
    assert!(
        said.contains("WARN") && said.contains("the host's network namespace"),
        "{said}"
    );
    assert!(
        said.contains("compose service and container names do not resolve there"),
        "{said}"
    );
    assert!(
        said.contains("such as a port Loki publishes on the host")
            && said.contains("loki-url=http://127.0.0.1:3100/loki/api/v1/push"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_env_items_with_a_value_are_explained_once() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let url = loki.url();
    let mut fifo = Fifo::create_named("shop");
    let request = container(
        &fifo,
        "shop",
        'c',
        &[
            ("loki-url", url.as_str()),
            ("labels", "app=web,tier"),
            ("env", "STAGE=prod"),
            ("loki-batch-wait", "50ms"),
        ],
    );
    assert_eq!(plugin.start_logging(&request).await, json!({}));
    fifo.write_entry(&line("stdout", "still delivered"));
    loki.wait_for_entries(1, Duration::from_secs(10)).await;

    let log = plugin.log();
    let labels = lines_with(
        &log,
        &["log-opt labels=\"app=web\" adds nothing", "container=shop"],
    );
    let env = lines_with(
        &log,
        &["log-opt env=\"STAGE=prod\" adds nothing", "container=shop"],
    );
    println!(
        "hints: the plugin said:\n  {}\n  {}",
        labels.join(""),
        env.join("")
    );
    assert_eq!(labels.len(), 1, "{log}");
    assert_eq!(env.len(), 1, "{log}");
    assert!(
        labels[0].contains("Docker's `labels` option takes the names of container labels")
            && labels[0].contains("use loki-external-labels=app=web")
            && labels[0].contains("labels=app"),
        "{}",
        labels[0]
    );
    assert!(
        env[0].contains("use loki-external-labels=STAGE=prod") && env[0].contains("env=STAGE"),
        "{}",
        env[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_labels_is_refused_naming_loki_external_labels() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create_named("copied");
    let request = container(
        &fifo,
        "copied",
        'd',
        &[
            ("loki-url", "http://127.0.0.1:3100/loki/api/v1/push"),
            ("loki-labels", "job=web"),
        ],
    );
    let answer = plugin.start_logging(&request).await;
    let err = answer["Err"].as_str().unwrap_or_default();
    println!("hints: docker run would print: {err}");
    assert!(
        err.contains("unknown log-opt 'loki-labels': did you mean loki-external-labels?"),
        "{answer}"
    );
    assert!(
        err.contains("loki-external-labels=job=web,env=prod adds labels to every stream"),
        "{answer}"
    );
}
