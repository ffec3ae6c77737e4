//! Against a replicated Loki: three real Loki 3.7.6 processes in one ring
//! (memberlist, `replication_factor: 3`, `scripts/loki-ring`), behind a
//! round-robin front as a user's load balancer would be. While a container
//! logs 2,000 lines a second, the member that a push is going to is killed
//! (`kill -9`) with that push in flight (the front holds it until the member
//! is dead, then closes the connection unanswered), and, with it still dead,
//! the member the plugin then talks to is restarted: Loki then has one
//! ingester of the two a push needs and answers 500 until the restarted one
//! is back. Every line must be in Loki, and the plugin's metrics must tell
//! the broken push and the 5xx it went through. It prints the lines, the
//! times and the pushes retried (`--nocapture`).
//!
//! The plugin runs as its binary, with the fake daemon writing the FIFO; no
//! Docker engine is needed. Without the Loki binaries the test says so
//! loudly and passes; with `CI=true` a missing Loki is a failure.

mod support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_daemon::{Fifo, Plugin, frame, line, number_of, numbered, start_request};
use support::loki_ring::{FrontStats, LokiRing, MEMBERS, RoundRobin};
use support::real_loki::{skip_without_loki, unique};
use support::scrape::{free_port, scrape};

/// Lines a second, and for how long.
const RATE: u64 = 2_000;
const LOGGING: Duration = Duration::from_secs(40);
/// When a member is killed, and when another is restarted (stopped, then
/// started again, which takes 10 to 20 s).
const KILL_AT: Duration = Duration::from_secs(8);
const RESTART_AT: Duration = Duration::from_secs(16);

/// Writes `RATE` numbered lines a second for `LOGGING`, in steps of 10 ms
/// held to the clock; returns how many.
fn write_lines(mut file: std::fs::File) -> usize {
    let per_step = (RATE / 100) as usize;
    let steps = LOGGING.as_millis() as usize / 10;
    let started = Instant::now();
    let mut n = 0;
    let mut chunk = Vec::new();
    for step in 0..steps {
        let due = started + Duration::from_millis(step as u64 * 10);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_step {
            chunk.extend(frame(&line("stdout", &numbered(n, 100))));
            n += 1;
        }
        file.write_all(&chunk).unwrap();
        chunk.clear();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_member_killed_and_another_restarted_while_a_container_logs_loses_nothing() {
    if skip_without_loki() {
        return;
    }
    let t0 = Instant::now();
    let ring = tokio::task::spawn_blocking(LokiRing::start).await.unwrap();
    let ring_up = t0.elapsed();
    let front = RoundRobin::start((0..3).map(|i| ring.http_port(i)).collect()).await;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &metrics.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(10))
        .await;

    let run = unique("ring");
    let mut fifo = Fifo::create();
    let mut request = start_request(
        &fifo.path,
        &[
            ("loki-url", front.push_url()),
            ("loki-external-labels", format!("test_run={run}")),
        ],
    );
    request["Info"]["ContainerName"] = "/ring-writer".into();
    assert_eq!(plugin.start_logging(&request).await, json!({}));

    let started = Instant::now();
    let query_from = support::push::now_ns() - 60_000_000_000;
    let writer = {
        let file = fifo.take_file();
        std::thread::spawn(move || write_lines(file))
    };
    // At KILL_AT, the member that the next push goes to dies with that push
    // in flight; at RESTART_AT, the member that the plugin talks to then is
    // restarted, with the killed one still dead; the third runs throughout.
    let control = ring.control();
    let armed = {
        tokio::time::sleep(KILL_AT.saturating_sub(started.elapsed())).await;
        front.cut_next_request()
    };
    let (killed, go) = tokio::time::timeout(Duration::from_secs(10), armed)
        .await
        .expect("a push within 10 s")
        .unwrap();
    let mut events = vec![format!(
        "{:.1?} member {killed} killed (kill -9) with a push in flight",
        started.elapsed()
    )];
    tokio::task::spawn_blocking(move || control.kill(killed))
        .await
        .unwrap();
    let _ = go.send(());
    tokio::time::sleep(RESTART_AT.saturating_sub(started.elapsed())).await;
    let others: Vec<usize> = (0..MEMBERS).filter(|m| *m != killed).collect();
    let restarted = front.busiest(&others).unwrap_or(others[0]);
    let queried = *others.iter().find(|m| **m != restarted).unwrap();
    events.push(format!(
        "{:.1?} member {restarted} stopped (SIGTERM): one ingester of the two a push needs",
        started.elapsed()
    ));
    let restart = tokio::task::spawn_blocking(move || {
        control.stop_member(restarted);
        control.start_member(restarted);
        started.elapsed()
    });
    let written = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    let logged = started.elapsed();
    let back = restart.await.unwrap();
    events.push(format!("{back:.1?} member {restarted} ready again"));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();

    // Delivered: the summary line says what was sent and dropped.
    let deadline = Instant::now() + Duration::from_secs(180);
    let log = loop {
        let log = plugin.log();
        if support::fake_daemon::summary_field(&log, "ring-writer", "sent").is_some() {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered within 180 s of the last line; plugin log:\n{log}\nmember {queried} log:\n{}",
            ring.log(queried)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivered = started.elapsed();
    let field = |key: &str| support::fake_daemon::summary_field(&log, "ring-writer", key).unwrap();

    // What Loki holds: every number once.
    let loki = ring.member(queried);
    let selector = format!(r#"{{test_run="{run}"}}"#);
    let until = support::push::now_ns() + 60_000_000_000;
    let streams = loki
        .query_between(&selector, None, query_from, until)
        .await
        .unwrap_or_else(|answer| panic!("query to member {queried}: {answer}"));
    let numbers: Vec<usize> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| number_of(&e.line)))
        .collect();
    let unique_numbers: BTreeSet<usize> = numbers.iter().copied().collect();
    let missing: Vec<usize> = (0..written)
        .filter(|n| !unique_numbers.contains(n))
        .collect();

    // Loki keeps an exact duplicate once only while the first copy is in
    // its ingester's head block (about 256 KB of a stream, here one second):
    // lines sent again later (after a 5xx that one ingester had stored, or
    // a timeout) may be stored twice. At least once is the promise.
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<usize> = numbers
        .iter()
        .copied()
        .filter(|n| !seen.insert(*n))
        .collect();
    let scrape = scrape(metrics).await;
    let pushes = |status| scrape.sum("loki_logdriver_pushes_total", &[("status", status)]) as u64;
    let retries = scrape.sum("loki_logdriver_retries_total", &[]) as u64;
    let dropped = scrape.sum("loki_logdriver_plugin_lines_dropped_total", &[]) as u64;
    println!(
        "ring: 3 Loki 3.7.6 members up in {ring_up:.1?}; {written} lines at {RATE}/s for {logged:.1?} \
         through a round-robin front"
    );
    for event in &events {
        println!("ring: {event}");
    }
    println!(
        "ring: all delivered {:.1?} after the last line ({delivered:.1?} from the first); \
         member {queried}, which ran throughout, holds {} of {written} ({} missing, {} twice{})",
        delivered - logged,
        unique_numbers.len(),
        missing.len(),
        twice.len(),
        match (twice.first(), twice.last()) {
            (Some(first), Some(last)) => format!(": lines {first} to {last}, sent again"),
            _ => String::new(),
        }
    );
    println!(
        "ring: pushes 2xx={} 5xx={} reset={} timeout={} unreachable={}; retried {retries}; dropped {dropped}",
        pushes("2xx"),
        pushes("5xx"),
        pushes("reset"),
        pushes("timeout"),
        pushes("unreachable"),
    );
    println!(
        "ring: front: connections per member {:?}, refused {:?}, cut with a push in flight {:?}, broken {:?}",
        FrontStats::snapshot(&front.stats.connections),
        FrontStats::snapshot(&front.stats.refused),
        FrontStats::snapshot(&front.stats.cut),
        FrontStats::snapshot(&front.stats.broken),
    );

    assert_eq!(written as u64, RATE * LOGGING.as_secs());
    assert!(
        missing.is_empty(),
        "{} lines missing from Loki, the first {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(field("sent"), written as u64, "{log}");
    assert_eq!(dropped, 0, "{}", scrape.text);
    // The push cut by the kill is counted as such; the restart left one
    // ingester of the two a push needs: Loki answered 500. The plugin
    // counted both. A 500 is a retry of the container's lines (counted
    // against loki-retries); a reset is the endpoint being unreachable,
    // whose lines wait and go again without counting a retry (README,
    // `loki-retries`): that they all arrived is checked above.
    assert!(
        pushes("reset") >= 1,
        "the cut push not counted:\n{}",
        scrape.text
    );
    assert!(pushes("5xx") > 0, "no 5xx counted:\n{}", scrape.text);
    assert!(
        retries >= pushes("5xx"),
        "every 5xx push of the container is a retry:\n{}",
        scrape.text
    );
}
