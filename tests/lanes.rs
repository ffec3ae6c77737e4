//! One container's trouble never holds back another's lines: the plugin
//! binary between a fake daemon and a fake Loki that refuses one container.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::fake_daemon::{Fifo, Plugin, line, number_of, numbered, start_request};
use support::fake_loki::{FakeLoki, LimitAnswer};

/// Seconds Loki refuses the busy container (`LOKI_REFUSAL_SECONDS=180` for
/// the 3-minute run, `make soak`).
fn refusal() -> Duration {
    let seconds = std::env::var("LOKI_REFUSAL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_container_is_delivered_while_loki_refuses_a_busy_one() {
    let refusal = refusal();
    let loki = FakeLoki::start().await;
    loki.rate_limit_streams(&[("container_name", "busy")], LimitAnswer::Always);
    let plugin = Plugin::start(&[]);
    let url = loki.url();
    let (busy_fifo, quiet_fifo) = (Fifo::create(), Fifo::create());
    let mut busy_request = start_request(
        &busy_fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-max-backoff", "5s"),
            ("loki-retries", "1000"),
        ],
    );
    busy_request["Info"]["ContainerName"] = "/busy".into();
    busy_request["Info"]["ContainerID"] = "b05y".into();
    let mut quiet_request = start_request(&quiet_fifo.path, &[("loki-url", url.as_str())]);
    quiet_request["Info"]["ContainerName"] = "/quiet".into();
    quiet_request["Info"]["ContainerID"] = "9u1e7".into();
    plugin.start_logging(&busy_request).await;
    plugin.start_logging(&quiet_request).await;
    let (busy_path, quiet_path) = (busy_fifo.path.clone(), quiet_fifo.path.clone());

    // Arrival time of each quiet line, as Loki saw it.
    let arrived: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let watcher = {
        let (arrived, loki_entries) = (arrived.clone(), Arc::new(loki));
        let loki = loki_entries.clone();
        let task = tokio::spawn(async move {
            loop {
                let now = Instant::now();
                for entry in loki.entries_matching(&[("container_name", "quiet")]) {
                    arrived
                        .lock()
                        .unwrap()
                        .entry(number_of(&entry.text()))
                        .or_insert(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (task, loki_entries)
    };
    let loki = watcher.1.clone();

    // The busy container writes 500 lines a second, the quiet one 5.
    let busy_count = 500 * refusal.as_secs() as usize;
    let busy = std::thread::spawn(move || {
        let mut fifo = busy_fifo;
        let (mut longest, started) = (Duration::ZERO, Instant::now());
        for n in 0..busy_count {
            longest = longest.max(fifo.write_entry(&line("stdout", &numbered(n, 100))));
            let due = started + Duration::from_secs_f64((n + 1) as f64 / 500.0);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (fifo, longest)
    });
    let mut written = HashMap::new();
    let mut quiet_fifo = quiet_fifo;
    let quiet_count = 5 * refusal.as_secs() as usize;
    for n in 0..quiet_count {
        written.insert(n, Instant::now());
        quiet_fifo.write_entry(&line("stdout", &numbered(n, 50)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut busy_fifo, longest) = tokio::task::spawn_blocking(move || busy.join().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        loki.entries_matching(&[("container_name", "busy")])
            .is_empty(),
        "Loki refused the busy container throughout"
    );
    let lags: Vec<Duration> = {
        let arrived = arrived.lock().unwrap();
        (0..quiet_count)
            .map(|n| {
                arrived.get(&n).map_or(Duration::MAX, |at| {
                    at.saturating_duration_since(written[&n])
                })
            })
            .collect()
    };
    let worst = lags.iter().max().copied().unwrap_or_default();
    eprintln!(
        "Loki refused the busy container for {refusal:?}: {quiet_count} quiet lines, slowest in Loki after {worst:?}; \
         the busy container's longest FIFO write {longest:?}"
    );
    assert!(
        worst <= Duration::from_secs(2),
        "quiet lines waited up to {worst:?}"
    );
    assert!(
        longest < Duration::from_millis(100),
        "the busy FIFO stalled for {longest:?}"
    );

    // Loki takes the busy container again: its lines arrive, in order.
    loki.clear_rate_limits();
    plugin.stop_logging(&busy_path).await;
    plugin.stop_logging(&quiet_path).await;
    busy_fifo.close();
    quiet_fifo.close();
    let deadline = Instant::now() + Duration::from_secs(60);
    while loki.entries_matching(&[("container_name", "busy")]).len() < busy_count {
        assert!(
            Instant::now() < deadline,
            "the busy container's lines did not all arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let busy: Vec<usize> = loki
        .entries_matching(&[("container_name", "busy")])
        .iter()
        .map(|e| number_of(&e.text()))
        .collect();
    assert_eq!(
        busy,
        (0..busy_count).collect::<Vec<_>>(),
        "all, once, in order"
    );
    watcher.0.abort();
}
