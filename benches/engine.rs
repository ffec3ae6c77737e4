//! The plugin on a real Docker engine, with the journal on, against the
//! fake Loki: the figures the project's targets are stated in. Printed,
//! never asserted (timings on a shared 2-core machine vary).
//!
//! - 200,000 lines of 100 bytes from one container: how long until the
//!   container exits, next to json-file in the same run; the plugin's CPU
//!   per line, its peak memory, and the journal's disk bytes per line.
//! - 20 containers writing 10,000 lines each at once: CPU per line, pushes.
//! - 100 idle containers attached: the plugin's memory.
//! - Pipeline stages: the 200,000-line run plain, with a `json` + `labels`
//!   pipeline and with a `multiline` pipeline, through this plugin and
//!   through Grafana's driver 3.7.6 (`../shared/real/grafana-driver`) with
//!   the same stages: exit time, CPU per line and the ratio between them.
//!
//! Without a Docker engine it says so and does nothing. Run with `make bench`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::{
    build_plugin_dir, cli, cpu_time, dir_bytes, journal_root, peak_rss_mb, plugin_pid,
    reset_peak_rss, rss_mb, storage_written,
};
use support::fake_loki::FakeLoki;

const PLUGIN: &str = "loki-bench:latest";
const IMAGE: &str = "loki-e2e-busybox:latest";
const LABEL: &str = "loki-bench";
const LINES: usize = 200_000;
/// 99 characters and the newline: 100-byte lines.
const TEXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmno";

fn main() {
    if cli(&["version"]).is_err() || cli(&["image", "inspect", IMAGE]).is_err() {
        eprintln!(
            "\n!! bench engine: no Docker engine with {IMAGE} (run tests/e2e-setup); skipped\n"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(bench());
    cleanup();
    if let Err(err) = result {
        eprintln!("bench engine failed: {err}");
        std::process::exit(1);
    }
}

fn cleanup() {
    if let Ok(ids) = cli(&["ps", "-aq", "--filter", &format!("label={LABEL}")]) {
        for id in ids.lines() {
            let _ = cli(&["rm", "-f", id]);
        }
    }
    let _ = cli(&["plugin", "disable", "-f", PLUGIN]);
    let _ = cli(&["plugin", "rm", "-f", PLUGIN]);
}

async fn bench() -> Result<(), String> {
    cleanup();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = build_plugin_dir(&root, "bench", "bench")?;
    cli(&["plugin", "create", PLUGIN, dir.to_str().unwrap()])?;
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    let pid = plugin_pid("bench-bench")?;
    let loki = FakeLoki::start().await;
    let version = cli(&["version", "-f", "{{.Server.Version}}"])?;
    println!("bench engine: Docker {version}, plugin pid {pid}");

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "one" {
        one_container(&loki, pid).await?;
    }
    if only.is_empty() || only == "many" {
        many_at_once(&loki, pid).await?;
    }
    if only.is_empty() || only == "stages" {
        stages(&loki, pid).await?;
    }
    if only.is_empty() || only == "idle" {
        idle_containers(&loki, pid)?;
    }
    Ok(())
}

/// Grafana's driver 3.7.6 as a managed plugin, and its process.
fn grafana_driver(root: &std::path::Path) -> Result<(String, u32), String> {
    let script = root.join("../shared/real/grafana-driver");
    let out = Command::new(&script)
        .arg("install")
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "grafana-driver install: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for entry in std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"/bin/docker-driver") {
            return Ok((format!("{name}:latest"), pid));
        }
    }
    Err("Grafana's driver is enabled but its process was not found".into())
}

/// Waits until Loki holds `want` more entries than `before`, or until the
/// count stops growing for 2 s (Grafana's driver loses lines); returns the
/// entries that arrived.
async fn settle(loki: &FakeLoki, before: usize, want: usize) -> usize {
    let mut last = (loki.entry_count(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = loki.entry_count();
        if now >= before + want || Instant::now() > deadline {
            return now - before;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            return now - before;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The 200,000-line run with pipeline stages, this plugin beside Grafana's
/// driver with the same stages.
async fn stages(loki: &FakeLoki, pid: u32) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let grafana = match grafana_driver(&root) {
        Ok(found) => Some(found),
        Err(err) => {
            println!("stages: Grafana's driver unavailable ({err}); this plugin alone");
            None
        }
    };
    let json_line = r#"{"level":"info","msg":"GET /api/v1/items 200 12ms","user":"u-42"}"#;
    let cases: [(&str, Option<&str>, String, usize); 3] = [
        ("plain", None, format!("yes {TEXT}"), LINES),
        (
            "json + labels",
            Some("[{json: {expressions: {level: , msg: }}}, {labels: {level: }}]"),
            format!("yes '{json_line}'"),
            LINES,
        ),
        (
            "multiline",
            Some("[{multiline: {firstline: '^ERROR', max_wait_time: 3s}}]"),
            "yes \"$(printf 'ERROR request failed: pool exhausted, 42 waiting\\n  at com.example.Pool.take(Pool.java:42)')\""
                .to_string(),
            LINES / 2,
        ),
    ];
    let url = format!("loki-url={}", loki.url());
    for (name, stages, source, entries) in &cases {
        let mut cpu_per_line = Vec::new();
        let mut drivers: Vec<(&str, String, u32)> = vec![("this plugin", PLUGIN.to_string(), pid)];
        if let Some((driver, gpid)) = &grafana {
            drivers.push(("Grafana's driver", driver.clone(), *gpid));
        }
        for (who, driver, driver_pid) in &drivers {
            let mut best = f64::MAX;
            for run in 1..=2 {
                let mut args = vec!["--log-driver", driver.as_str(), "--log-opt", &url];
                let stage_opt = stages.map(|s| format!("loki-pipeline-stages={s}"));
                if let Some(opt) = &stage_opt {
                    args.extend(["--log-opt", opt.as_str()]);
                }
                let before = loki.entry_count();
                let cpu_before = cpu_time(*driver_pid);
                reset_peak_rss(*driver_pid);
                let script = format!("{source} | head -n {LINES}");
                let (took, id) = run_script(&args, &script, &format!("bench-stages-{run}"))?;
                let exited = Instant::now();
                let arrived = settle(loki, before, *entries).await;
                let delivered = exited.elapsed();
                tokio::time::sleep(Duration::from_millis(300)).await;
                let cpu = (cpu_time(*driver_pid) - cpu_before).as_secs_f64() * 1e6 / LINES as f64;
                best = best.min(cpu);
                println!(
                    "stages {name}, {who}, run {run}: exited after {:.2} s; {arrived} of {entries} entries in Loki {:.2} s after exit; \
                     CPU {cpu:.2} us/line; peak RSS {:.1} MB",
                    took.as_secs_f64(),
                    delivered.as_secs_f64(),
                    peak_rss_mb(*driver_pid),
                );
                let _ = cli(&["rm", "-f", &id]);
            }
            cpu_per_line.push(best);
        }
        if let [ours, theirs] = cpu_per_line[..] {
            println!(
                "stages {name}: this plugin {ours:.2} us/line, Grafana's driver {theirs:.2} us/line: {:.0}% of Grafana's",
                100.0 * ours / theirs
            );
        }
    }
    if let Some((driver, _)) = grafana {
        let _ = cli(&["plugin", "disable", "-f", &driver]);
    }
    Ok(())
}

/// `docker run` of `script` with the log options `driver`; the wall time
/// until it exited and its ID.
fn run_script(driver: &[&str], script: &str, name: &str) -> Result<(Duration, String), String> {
    let cidfile = std::env::temp_dir().join(format!("{name}.cid"));
    let _ = std::fs::remove_file(&cidfile);
    let mut args = vec![
        "run",
        "--label",
        LABEL,
        "--network",
        "none",
        "--name",
        name,
        "--cidfile",
        cidfile.to_str().unwrap(),
    ];
    args.extend_from_slice(driver);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    let started = Instant::now();
    let status = Command::new("docker")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("docker run {name}: {status}"));
    }
    let id = std::fs::read_to_string(&cidfile).map_err(|e| e.to_string())?;
    Ok((took, id.trim().to_string()))
}

/// `docker run` of a container printing `lines` lines of 100 bytes; returns
/// the wall time until it exited and the container's ID.
fn run_printer(driver: &[&str], lines: usize, name: &str) -> Result<(Duration, String), String> {
    let script = format!("yes {TEXT} | head -n {lines}");
    let cidfile = std::env::temp_dir().join(format!("{name}.cid"));
    let _ = std::fs::remove_file(&cidfile);
    let mut args = vec![
        "run",
        "--label",
        LABEL,
        "--network",
        "none",
        "--name",
        name,
        "--cidfile",
        cidfile.to_str().unwrap(),
    ];
    args.extend_from_slice(driver);
    args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
    let started = Instant::now();
    let status = Command::new("docker")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("docker run {name}: {status}"));
    }
    let id = std::fs::read_to_string(&cidfile).map_err(|e| e.to_string())?;
    Ok((took, id.trim().to_string()))
}

async fn one_container(loki: &FakeLoki, pid: u32) -> Result<(), String> {
    let url = format!("loki-url={}", loki.url());
    let plugin_driver = ["--log-driver", PLUGIN, "--log-opt", &url];
    let json_driver = ["--log-driver", "json-file"];
    let journals = journal_root(PLUGIN)?;
    for run in 1..=3 {
        let (json_took, json_id) = run_printer(&json_driver, LINES, &format!("bench-json-{run}"))?;
        let _ = cli(&["rm", "-f", &json_id]);

        let before = loki.entry_count();
        let cpu_before = cpu_time(pid);
        let written_before = storage_written(pid);
        reset_peak_rss(pid);
        let (took, id) = run_printer(&plugin_driver, LINES, &format!("bench-loki-{run}"))?;
        let exited = Instant::now();
        let deadline = exited + Duration::from_secs(120);
        while loki.entry_count() < before + LINES {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {LINES} lines in Loki",
                    loki.entry_count() - before
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered = exited.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu = cpu_time(pid) - cpu_before;
        let peak = peak_rss_mb(pid);
        let disk = dir_bytes(&journals.join(&id));
        let written = storage_written(pid) - written_before;
        println!(
            "run {run}: {LINES} lines of 100 B from one container: exited after {:.2} s (json-file {:.2} s); \
             all in Loki {:.2} s after exit; plugin CPU {:.2} us/line; peak RSS {:.1} MB; disk {:.0} B/line written, journal {:.0} B/line",
            took.as_secs_f64(),
            json_took.as_secs_f64(),
            delivered.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / LINES as f64,
            peak,
            written as f64 / LINES as f64,
            disk as f64 / LINES as f64,
        );
        let _ = cli(&["rm", "-f", &id]);
    }
    Ok(())
}

async fn many_at_once(loki: &FakeLoki, pid: u32) -> Result<(), String> {
    const CONTAINERS: usize = 20;
    const EACH: usize = 10_000;
    let url = format!("loki-url={}", loki.url());
    let before = loki.entry_count();
    let pushes_before = loki.requests().len();
    let cpu_before = cpu_time(pid);
    reset_peak_rss(pid);
    let started = Instant::now();
    let runners: Vec<_> = (0..CONTAINERS)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                run_printer(
                    &["--log-driver", PLUGIN, "--log-opt", &url],
                    EACH,
                    &format!("bench-many-{i}"),
                )
            })
        })
        .collect();
    for runner in runners {
        runner.join().map_err(|_| "a runner panicked")??;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while loki.entry_count() < before + CONTAINERS * EACH {
        if Instant::now() > deadline {
            return Err("not every line of the 20 containers arrived".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = cpu_time(pid) - cpu_before;
    let pushes = loki.requests().len() - pushes_before;
    let total = CONTAINERS * EACH;
    println!(
        "{CONTAINERS} containers x {EACH} lines at once: all in Loki after {:.2} s; plugin CPU {:.2} us/line; \
         {pushes} pushes ({:.0}/s, {:.0} lines each); peak RSS {:.1} MB",
        took.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total as f64,
        pushes as f64 / took.as_secs_f64(),
        total as f64 / pushes.max(1) as f64,
        peak_rss_mb(pid),
    );
    for i in 0..CONTAINERS {
        let _ = cli(&["rm", "-f", &format!("bench-many-{i}")]);
    }
    Ok(())
}

fn idle_containers(loki: &FakeLoki, pid: u32) -> Result<(), String> {
    const CONTAINERS: usize = 100;
    let url = format!("loki-url={}", loki.url());
    let before = rss_mb(pid);
    for i in 0..CONTAINERS {
        cli(&[
            "run",
            "-d",
            "--label",
            LABEL,
            "--network",
            "none",
            "--name",
            &format!("bench-idle-{i}"),
            "--log-driver",
            PLUGIN,
            "--log-opt",
            &url,
            IMAGE,
            "sleep",
            "600",
        ])?;
    }
    std::thread::sleep(Duration::from_secs(3));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    println!(
        "{CONTAINERS} idle containers attached: plugin RSS {:.1} MB (was {before:.1} MB), {fds} open fds",
        rss_mb(pid)
    );
    Ok(())
}
