//! Throughput of the plugin binary: 200,000 lines of 100 bytes from one
//! container, through the FIFO to a fake Loki. Prints wall time, the plugin's
//! CPU time per line and its peak memory. Run with `make bench`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::fake_daemon::{Fifo, Plugin, frame, line, numbered, start_request};
use support::fake_loki::FakeLoki;

const LINES: usize = 200_000;
const LINE_BYTES: usize = 100;

/// utime + stime of a process, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The runs: a name, the container's extra log-opts, and the text of line `n`.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    fn(usize) -> String,
);

fn cases() -> Vec<Case> {
    vec![
        ("plain", vec![], |n| numbered(n, LINE_BYTES)),
        (
            "json + labels",
            vec![(
                "loki-pipeline-stages",
                "[{json: {expressions: {level: , msg: }}}, {labels: {level: }}]",
            )],
            |n| {
                let level = ["info", "warn", "error", "debug"][n % 4];
                let head = format!(r#"{{"level":"{level}","msg":""#);
                let body = numbered(n, LINE_BYTES - head.len() - 2);
                format!("{head}{body}\"}}")
            },
        ),
        (
            "multiline",
            vec![(
                "loki-pipeline-stages",
                r#"[{multiline: {firstline: '^line \d+0 '}}]"#,
            )],
            |n| numbered(n, LINE_BYTES),
        ),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let filter = std::env::var("BENCH_CASE").unwrap_or_default();
    for (name, extra, text) in cases() {
        if !name.contains(filter.as_str()) {
            continue;
        }
        for run in 1..=2 {
            bench_run(name, &extra, text, run).await;
        }
    }
}

async fn bench_run(name: &str, extra: &[(&str, &str)], text: fn(usize) -> String, run: usize) {
    {
        let loki = FakeLoki::start().await;
        let plugin = Plugin::start(&[("LOG_LEVEL", "info")]);
        let pid = plugin.pid();
        let mut fifo = Fifo::create();
        let url = loki.url();
        let mut opts = vec![("loki-url", url.as_str())];
        opts.extend_from_slice(extra);
        plugin
            .start_logging(&start_request(&fifo.path, &opts))
            .await;
        let frames: Vec<Vec<u8>> = (0..LINES)
            .map(|n| frame(&line("stdout", &text(n))))
            .collect();
        let cpu_before = cpu_time(pid);
        let mut file = fifo.take_file();
        let started = Instant::now();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            for bytes in &frames {
                file.write_all(bytes).unwrap();
            }
            file
        });
        let file = tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        let written = started.elapsed();
        plugin.stop_logging(&fifo.path).await;
        drop(file);
        let expected = if name == "multiline" {
            LINES / 10
        } else {
            LINES
        };
        loki.wait_for_entries(expected, Duration::from_secs(120))
            .await;
        let delivered = started.elapsed();
        let cpu = cpu_time(pid) - cpu_before;
        println!(
            "{name}, run {run}: {LINES} lines of {LINE_BYTES} B: FIFO drained in {:.2} s, all in Loki after {:.2} s, \
             plugin CPU {:.2} us/line, peak RSS {:.1} MB",
            written.as_secs_f64(),
            delivered.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / LINES as f64,
            peak_rss_kib(pid) as f64 / 1024.0,
        );
    }
}
