//! Nothing lost across crashes and long outages: the plugin binary between
//! a fake daemon and a fake Loki. Timings are printed; assertions are about
//! lines (all there, once, in order) and about the daemon never waiting.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::fake_daemon::{Fifo, Plugin, number_of, numbered, partials, start_request};
use support::fake_loki::{FakeLoki, Mode};

/// Numbers of the lines in Loki, in order of arrival per stream.
fn numbers_in_loki(loki: &FakeLoki) -> Vec<usize> {
    loki.entries_matching(&[])
        .iter()
        .map(|e| number_of(&e.text()))
        .collect()
}

fn assert_all_once_in_order(numbers: &[usize], count: usize) {
    let expected: Vec<usize> = (0..count).collect();
    if numbers != expected {
        let seen: std::collections::HashSet<usize> = numbers.iter().copied().collect();
        let missing: Vec<usize> = (0..count).filter(|n| !seen.contains(n)).collect();
        panic!(
            "{} lines in Loki for {count} written; missing {:?}...; first out of order at {:?}",
            numbers.len(),
            &missing[..missing.len().min(20)],
            numbers.windows(2).position(|w| w[1] != w[0] + 1)
        );
    }
}

/// The daemon's side: writes `count` lines of `len` bytes as its copier
/// does (16 KiB partial frames), `per_second` of them; returns the longest
/// time one write blocked.
fn spawn_writer(
    mut fifo: Fifo,
    count: usize,
    len: usize,
    per_second: usize,
) -> std::thread::JoinHandle<(Fifo, Duration)> {
    std::thread::spawn(move || {
        let mut longest = Duration::ZERO;
        let started = Instant::now();
        for n in 0..count {
            let text = numbered(n, len);
            for frame in partials("stdout", text.as_bytes(), &format!("{n:064}")) {
                longest = longest.max(fifo.write_entry(&frame));
            }
            let due = started + Duration::from_secs_f64((n + 1) as f64 / per_second as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (fifo, longest)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kills_during_a_flow_of_20000_byte_lines_lose_nothing() {
    const COUNT: usize = 3_000;
    let loki = FakeLoki::start().await;
    let mut plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    let request = start_request(
        &path,
        &[("loki-url", url.as_str()), ("loki-batch-wait", "100ms")],
    );
    plugin.start_logging(&request).await;
    // 200 lines a second: 15 s of writing, three kills in the middle of it.
    let writer = spawn_writer(fifo, COUNT, 20_000, 200);
    // Killed processes are kept (the first one owns the data directory).
    let mut killed = Vec::new();
    for kill in 1..=3 {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let at = numbers_in_loki(&loki).len();
        plugin.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let next = plugin.restart_from(&[]);
        killed.push(std::mem::replace(&mut plugin, next));
        eprintln!("kill {kill}: the plugin died with {at} lines in Loki; restarted");
    }
    let (mut fifo, _) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    plugin.stop_logging(&path).await;
    fifo.close();
    loki.wait_for_entries(COUNT, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let numbers = numbers_in_loki(&loki);
    assert_all_once_in_order(&numbers, COUNT);
    assert!(
        loki.entries_matching(&[])
            .iter()
            .all(|e| e.line.len() == 20_000),
        "every line arrived whole"
    );

    // docker logs has every line too, once.
    let logged = plugin
        .read_all_logs(&request, support::fake_daemon::read_config(-1, false))
        .await;
    let numbers: Vec<usize> = logged
        .iter()
        .map(|e| number_of(&String::from_utf8_lossy(&e.line)))
        .collect();
    assert_all_once_in_order(&numbers, COUNT);
    let log = plugin.log();
    assert!(log.contains("resumed=true"), "{log}");
}

/// Seconds Loki is away (half refusing connections, half not answering);
/// `LOKI_OUTAGE_SECONDS=600` gives the 10-minute run (`make soak`).
fn outage() -> Duration {
    let seconds = std::env::var("LOKI_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_costs_disk_not_lines_and_the_backlog_drains_within_a_minute() {
    const RATE: usize = 2_000;
    let outage = outage();
    let count = RATE * outage.as_secs() as usize;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    plugin
        .start_logging(&start_request(&path, &[("loki-url", url.as_str())]))
        .await;
    let rss = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (rss, pid) = (rss.clone(), plugin.pid());
        tokio::spawn(async move {
            loop {
                let kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                            })
                    })
                    .unwrap_or(0);
                rss.lock().unwrap().push(kib);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let writer = spawn_writer(fifo, count, 100, RATE);
    // Refusing connections for the first half, then accepting but never
    // answering for the second.
    tokio::time::sleep(outage / 2).await;
    loki.set_mode(Mode::Hang);
    loki.accept_connections().await;
    let (mut fifo, longest) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(loki.entry_count(), 0, "Loki took nothing while away");
    let back = Instant::now();
    loki.set_mode(Mode::Accept);
    plugin.stop_logging(&path).await;
    fifo.close();
    loki.wait_for_entries(count, Duration::from_secs(120)).await;
    let drained = back.elapsed();
    sampler.abort();
    let samples = rss.lock().unwrap().clone();
    let peak_mb = *samples.iter().max().unwrap_or(&0) as f64 / 1024.0;
    let half = samples.len() / 2;
    let first_half = *samples[..half.max(1)].iter().max().unwrap_or(&0) as f64 / 1024.0;
    eprintln!(
        "outage of {:?} at {RATE} lines/s: {count} lines; longest FIFO write {longest:?}; \
         plugin RSS peak {peak_mb:.1} MB (first half {first_half:.1} MB); backlog in Loki {:.1} s after its return",
        outage,
        drained.as_secs_f64()
    );
    assert_all_once_in_order(&numbers_in_loki(&loki), count);
    assert!(
        longest < Duration::from_millis(100),
        "a FIFO write stalled for {longest:?}"
    );
    assert!(
        drained < Duration::from_secs(60),
        "the backlog took {drained:?}"
    );
    let log = plugin.log();
    assert!(
        !log.contains("dropped_memory_full=") || log.contains("dropped_memory_full=0"),
        "{log}"
    );
}

/// Issue 15: a container writes 2,000 lines while Loki is down, then stays
/// quiet (a service between bursts); the plugin is killed and restarted
/// while Loki is still down; then Loki comes back. The backlog is on disk
/// only, and the container's FIFO is read again: it must be in Loki within
/// 5 s of Loki answering (it never was: a disk backlog with nothing new in
/// memory never became due).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_containers_backlog_is_in_loki_within_5_s_of_its_return_after_a_restart() {
    const COUNT: usize = 2_000;
    let loki = FakeLoki::start_refusing().await;
    let mut plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    plugin
        .start_logging(&start_request(&path, &[("loki-url", url.as_str())]))
        .await;
    for n in 0..COUNT {
        fifo.write_entry(&support::fake_daemon::line("stdout", &numbered(n, 100)));
    }
    // On disk: the FIFO is empty again once the journal has every line.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fifo.unread() > 0 {
        assert!(
            Instant::now() < deadline,
            "the lines never reached the disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plugin.kill();
    let restarted = plugin.restart_from(&[]);
    let _killed = std::mem::replace(&mut plugin, restarted);
    plugin
        .wait_for_log("resumed=true", Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(loki.entry_count(), 0, "Loki is still down");
    loki.accept_connections().await;
    let back = Instant::now();
    loki.wait_for_entries(COUNT, Duration::from_secs(60)).await;
    let took = back.elapsed();
    eprintln!(
        "a quiet container's backlog of {COUNT} lines, after a restart: in Loki {took:?} after it answered"
    );
    assert_all_once_in_order(&numbers_in_loki(&loki), COUNT);
    assert!(took <= Duration::from_secs(5), "took {took:?}");
    drop(fifo);
}
