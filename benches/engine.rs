//! The plugin on a real Docker engine, with the journal on, against a real
//! Loki 3.7.6 (`../shared/real/loki`; the fake Loki when it is not there):
//! the figures the project's targets are stated in. Printed, never asserted
//! (timings on a shared 2-core machine vary). Each figure is taken beside
//! json-file, the drain-only plugin (`examples/drain_plugin.rs`: reads FIFOs
//! and drops the bytes, the simplest plugin) and Grafana's driver
//! 3.7.6 (`../shared/real/grafana-driver`), in the same run.
//!
//! - 200,000 lines of 100 bytes from one container, three rounds: how long
//!   until the container exits and its ratio to json-file's; each plugin's
//!   CPU per line and peak memory; how long after the exit the last line is
//!   in Loki; the journal's disk bytes written per byte of log.
//! - The same with 2,000 lines of 16,000 bytes: MB/s until exit.
//! - 20 containers writing 20,000 lines each at once: the same figures.
//! - 100 idle containers attached: the plugin's memory.
//! - Pipeline stages: the 200,000-line run plain, with a `json` + `labels`
//!   pipeline and with a `multiline` pipeline, through this plugin and
//!   through Grafana's driver with the same stages: exit time, CPU per line
//!   and the ratio between them.
//!
//! Without a Docker engine it says so and does nothing. Run with `make
//! bench`; `BENCH_ONLY=one|big|many|stages|idle` runs one part, and
//! `BENCH_OPTS="k=v k=v"` adds `--log-opt`s to this plugin's containers (to
//! compare settings). To compare two builds: `BENCH_ALSO=DIR` builds the
//! checkout in `DIR` (another worktree of this repository) and runs it as
//! "other build" beside this one, in the same rounds against the same Loki;
//! `BENCH_ROUNDS=N` sets the rounds of the 200,000-line run (3), of the
//! 16 KB-line run (1) and of the 20-container run (1), and
//! `BENCH_QUICK=1` leaves out the drain plugin and Grafana's driver;
//! `BENCH_TRACE=1` lists each push answered after a container's exit (when
//! it was sent and answered, its bytes); `BENCH_LOKI=paused` stops the real
//! Loki while the containers run and continues it at their exit, to show
//! the exit without Loki's share of the cores. Each run prints how long the
//! machine's cores were busy while the containers ran, and how much of it
//! was the real Loki's.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::docker::{
    build_plugin_dir, cli, cpu_time, dir_bytes, find_process, journal_root, peak_rss_mb,
    plugin_pid, reset_peak_rss, rss_mb, storage_written,
};
use support::fake_loki::FakeLoki;
use support::real_loki::{Limits, RealLoki, Version};

const PLUGIN: &str = "loki-bench:latest";
const DRAIN: &str = "loki-bench-drain:latest";
/// The build `BENCH_ALSO` names.
const ALSO: &str = "loki-bench-also:latest";
const IMAGE: &str = "loki-e2e-busybox:latest";
const LABEL: &str = "loki-bench";
const LINES: usize = 200_000;
/// 99 characters and the newline: 100-byte lines.
const TEXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmno";
/// The 16 KB-line run: lines of this many bytes (the newline included)...
const BIG_LINE: usize = 16_000;
/// ...this many of them (32 MB).
const BIG_LINES: usize = 2_000;

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
    for plugin in [PLUGIN, DRAIN, ALSO] {
        let _ = cli(&["plugin", "disable", "-f", plugin]);
        let _ = cli(&["plugin", "rm", "-f", plugin]);
    }
}

/// A log driver the bench measures, with its process (none for json-file).
#[derive(Clone)]
struct Driver {
    who: &'static str,
    /// `--log-driver` and its `--log-opt`s.
    args: Vec<String>,
    pid: Option<u32>,
    /// Whether its lines go to Loki (not json-file's, not the drain's).
    to_loki: bool,
}

impl Driver {
    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

/// Where the lines go: a real Loki 3.7.6 (behind a relay that clocks its
/// answers), else the fake Loki.
enum Sink {
    Real(RealLoki, Relay),
    Fake(FakeLoki),
}

/// A TCP relay in front of the real Loki that notes when Loki last
/// answered a push. The time of the last line is taken from it, so that
/// the bench need not query Loki every few milliseconds while lines
/// arrive: those queries compete with ingestion for the same cores, and
/// made the last line look 0.4 s later than it was.
struct Relay {
    addr: std::net::SocketAddr,
    last_answer: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
    /// Every push with `BENCH_TRACE=1` or `all`: when its first byte
    /// came, its bytes, when Loki answered.
    pushes: std::sync::Arc<std::sync::Mutex<Vec<Push>>>,
    /// `BENCH_TRACE=all`: list the pushes before the exit too.
    trace_all: bool,
}

/// One push through the relay.
#[derive(Clone, Copy)]
struct Push {
    sent: Instant,
    bytes: usize,
    answered: Instant,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let last_answer = std::sync::Arc::new(std::sync::Mutex::new(None));
        let pushes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let clock = last_answer.clone();
        let log = pushes.clone();
        let trace_mode = std::env::var("BENCH_TRACE").unwrap_or_default();
        let trace_all = trace_mode == "all";
        let trace = trace_all || trace_mode == "1";
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (clock, log) = (clock.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(loki) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    // Without these, Nagle's algorithm holds the last
                    // segment of a body for the peer's delayed ACK (40 ms a
                    // push).
                    let _ = (client.set_nodelay(true), loki.set_nodelay(true));
                    let (mut from_client, mut to_loki) = (client.into_split(), loki.into_split());
                    // The push being sent on this connection: its first byte, its bytes.
                    let open = std::sync::Arc::new(std::sync::Mutex::new(None::<(Instant, usize)>));
                    let sending = open.clone();
                    let requests = tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = from_client.0.read(&mut buf).await {
                            if n == 0 || to_loki.1.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let mut push = sending.lock().unwrap();
                            let (_, bytes) = push.get_or_insert((Instant::now(), 0));
                            *bytes += n;
                        }
                        let _ = to_loki.1.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = to_loki.0.read(&mut buf).await {
                        if n == 0 || from_client.1.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let now = Instant::now();
                        *clock.lock().unwrap() = Some(now);
                        if let Some((sent, bytes)) = open.lock().unwrap().take()
                            && trace
                        {
                            log.lock().unwrap().push(Push {
                                sent,
                                bytes,
                                answered: now,
                            });
                        }
                    }
                    requests.abort();
                });
            }
        });
        Relay {
            addr,
            last_answer,
            pushes,
            trace_all,
        }
    }

    /// The pushes answered before `since` (how many, their bytes) and
    /// those answered after it, taken out of the trace.
    fn pushes_since(&self, since: Instant) -> ((usize, usize), Vec<Push>) {
        let mut all = std::mem::take(&mut *self.pushes.lock().unwrap());
        all.sort_by_key(|p| p.sent);
        let (before, after): (Vec<Push>, Vec<Push>) = all
            .into_iter()
            .partition(|p| p.answered < since && !self.trace_all);
        let bytes = before.iter().map(|p| p.bytes).sum();
        ((before.len(), bytes), after)
    }

    fn last_answer(&self) -> Option<Instant> {
        *self.last_answer.lock().unwrap()
    }
}

impl Sink {
    async fn start() -> Sink {
        match support::real_loki::availability() {
            Ok(()) => {
                let loki = RealLoki::start(Version::V3, Limits::Raised);
                let upstream = loki
                    .push_url()
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("the real Loki's address");
                let relay = Relay::start(upstream).await;
                Sink::Real(loki, relay)
            }
            Err(why) => {
                println!("bench engine: no real Loki ({why}); the fake Loki instead");
                Sink::Fake(FakeLoki::start().await)
            }
        }
    }

    fn push_url(&self) -> String {
        match self {
            Sink::Real(_, relay) => format!("http://{}/loki/api/v1/push", relay.addr),
            Sink::Fake(loki) => loki.url(),
        }
    }

    /// The real Loki's process (none for the fake Loki, which runs in this
    /// process).
    fn loki_pid(&self) -> Option<u32> {
        let Sink::Real(loki, _) = self else {
            return None;
        };
        let pid = std::fs::read_to_string(loki.dir().join("loki.pid")).ok()?;
        pid.trim().parse().ok()
    }

    /// The CPU the real Loki has used so far.
    fn cpu(&self) -> Option<Duration> {
        self.loki_pid().map(cpu_time)
    }

    /// With `BENCH_LOKI=paused`: stops the real Loki (`SIGSTOP`) while the
    /// containers run (`paused`), and continues it at their exit, to show
    /// the exit without Loki's share of the cores. Pushes wait meanwhile;
    /// nothing else changes.
    fn pause(&self, paused: bool) {
        if std::env::var("BENCH_LOKI").is_ok_and(|v| v == "paused")
            && let Some(pid) = self.loki_pid()
        {
            let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) with a pid and a signal; no memory is shared.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Sink::Real(..) => "real Loki 3.7.6",
            Sink::Fake(_) => "the fake Loki",
        }
    }

    /// Entries Loki holds of the containers named `names`.
    async fn count(&self, names: &[String]) -> usize {
        match self {
            Sink::Real(loki, _) => {
                let selector = format!(r#"{{container_name=~"{}"}}"#, names.join("|"));
                loki.count(&selector, None).await as usize
            }
            Sink::Fake(loki) => names
                .iter()
                .map(|n| loki.entries_matching(&[("container_name", n)]).len())
                .sum(),
        }
    }

    /// Waits until Loki holds `want` entries of `names`, or until the count
    /// stops growing for 3 s (Grafana's driver loses lines); returns the
    /// entries that arrived and when the last of them arrived. The fake
    /// Loki is asked every 20 ms, and the time is when a count first shows
    /// it. The real Loki is asked only once no push has been answered for
    /// 200 ms (a count is a query over every line, and competes with
    /// ingestion for the cores), and the time is when Loki answered the
    /// last push before the count.
    async fn settle(&self, names: &[String], want: usize) -> (usize, Instant) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let quiet = Duration::from_millis(200);
        let mut last = (0, Instant::now());
        loop {
            let arrived = match self {
                Sink::Real(_, relay) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match relay.last_answer() {
                        Some(t) if t.elapsed() < quiet && Instant::now() < deadline => continue,
                        answer => answer,
                    }
                }
                Sink::Fake(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    None
                }
            };
            let now = self.count(names).await;
            if now != last.0 {
                last = (now, arrived.unwrap_or_else(Instant::now));
            }
            if last.0 >= want || Instant::now() > deadline {
                return last;
            }
            if last.1.elapsed() > Duration::from_secs(3) {
                return last;
            }
        }
    }
}

/// A container name no earlier run used (Loki keeps what earlier runs sent).
fn unique(kind: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bench-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn bench() -> Result<(), String> {
    cleanup();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = build_plugin_dir(&root, "bench", "bench")?;
    cli(&["plugin", "create", PLUGIN, dir.to_str().unwrap()])?;
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    let pid = plugin_pid("bench-bench")?;
    let loki = Sink::start().await;
    let version = cli(&["version", "-f", "{{.Server.Version}}"])?;
    println!(
        "bench engine: Docker {version}, {}, plugin pid {pid}",
        loki.describe()
    );
    let url = format!("loki-url={}", loki.push_url());
    let mut ours = Driver {
        who: "this plugin",
        args: vec![
            "--log-driver".into(),
            PLUGIN.into(),
            "--log-opt".into(),
            url.clone(),
        ],
        pid: Some(pid),
        to_loki: true,
    };
    for opt in std::env::var("BENCH_OPTS")
        .unwrap_or_default()
        .split_whitespace()
    {
        println!("bench engine: this plugin with --log-opt {opt}");
        ours.args.extend(["--log-opt".into(), opt.into()]);
    }
    let json = Driver {
        who: "json-file",
        args: vec!["--log-driver".into(), "json-file".into()],
        pid: None,
        to_loki: false,
    };
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let also = match std::env::var("BENCH_ALSO") {
        Ok(other) => Some(other_build(Path::new(&other), &ours.args[2..])?),
        Err(_) => None,
    };
    let drain = match drain_plugin(&root, &dir) {
        _ if quick => None,
        Ok(pid) => Some(Driver {
            who: "drain plugin",
            args: vec!["--log-driver".into(), DRAIN.into()],
            pid: Some(pid),
            to_loki: false,
        }),
        Err(err) => {
            println!("bench engine: no drain plugin ({err})");
            None
        }
    };
    let grafana = match grafana_driver(&root) {
        _ if quick => None,
        Ok((name, gpid)) => Some(Driver {
            who: "Grafana's driver",
            args: vec!["--log-driver".into(), name, "--log-opt".into(), url.clone()],
            pid: Some(gpid),
            to_loki: true,
        }),
        Err(err) => {
            println!("bench engine: Grafana's driver unavailable ({err})");
            None
        }
    };
    let mut drivers = vec![json.clone()];
    drivers.extend(drain.clone());
    drivers.push(ours.clone());
    drivers.extend(also);
    drivers.extend(grafana.clone());

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let rounds: Option<usize> = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok());
    if only.is_empty() || only == "one" {
        let script = format!("yes {TEXT} | head -n {LINES}");
        for round in 1..=rounds.unwrap_or(3) {
            one_run(&loki, &drivers, round, &script, LINES, 100).await?;
        }
    }
    if only.is_empty() || only == "big" {
        let script = format!(
            "yes \"$(head -c {} /dev/zero | tr '\\0' x)\" | head -n {BIG_LINES}",
            BIG_LINE - 1
        );
        for round in 1..=rounds.unwrap_or(1) {
            one_run(&loki, &drivers, round, &script, BIG_LINES, BIG_LINE).await?;
        }
    }
    if only.is_empty() || only == "many" {
        for round in 1..=rounds.unwrap_or(1) {
            many_at_once(&loki, &drivers, round).await?;
        }
    }
    if only.is_empty() || only == "stages" {
        stages(&loki, &ours, grafana.as_ref()).await?;
    }
    if only.is_empty() || only == "idle" {
        idle_containers(&url, pid)?;
    }
    if let Some(grafana) = grafana {
        let _ = cli(&["plugin", "disable", "-f", &grafana.args[1]]);
    }
    Ok(())
}

/// Another checkout of this repository (`BENCH_ALSO`), built, created and
/// enabled as a plugin beside this one, with this plugin's `--log-opt`s.
fn other_build(checkout: &Path, opts: &[String]) -> Result<Driver, String> {
    // Its own target directory: the same crate from two checkouts in one
    // would leave one binary for both.
    let dir = checkout.join("build").join("also");
    let status = Command::new(checkout.join("rootfs-build"))
        .arg(&dir)
        .env("BUILD_ID", format!("also-also-{}", std::process::id()))
        .env("CARGO_TARGET_DIR", checkout.join("target"))
        .current_dir(checkout)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "rootfs-build of {} failed: {status}",
            checkout.display()
        ));
    }
    cli(&["plugin", "create", ALSO, dir.to_str().unwrap()])?;
    cli(&["plugin", "enable", "--timeout", "0", ALSO])?;
    let pid = plugin_pid("also")?;
    println!("bench engine: other build from {}", checkout.display());
    let mut args = vec!["--log-driver".to_string(), ALSO.to_string()];
    args.extend(opts.iter().cloned());
    Ok(Driver {
        who: "other build",
        args,
        pid: Some(pid),
        to_loki: true,
    })
}

/// The drain-only plugin (`examples/drain_plugin.rs`) built static, in a
/// copy of this plugin's directory, created and enabled; its process.
fn drain_plugin(root: &Path, plugin_dir: &Path) -> Result<u32, String> {
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| e.to_string())?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV names no host")?;
    // The flags rootfs-build uses, so the dependencies built for the plugin are reused.
    let flags = format!(
        "{} -C target-feature=+crt-static",
        std::env::var("RUSTFLAGS").unwrap_or_default()
    );
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked", "--target", &host])
        .args(["--example", "drain_plugin"])
        .env("RUSTFLAGS", flags)
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the drain plugin: {status}"));
    }
    let target_dir =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), PathBuf::from);
    let binary = target_dir.join(&host).join("release/examples/drain_plugin");
    let dir = plugin_dir.with_file_name("bench-drain");
    let _ = std::fs::remove_dir_all(&dir);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(plugin_dir)
        .arg(&dir)
        .status()
        .map_err(|e| e.to_string())?;
    if !copied.success() {
        return Err("copying the plugin directory failed".into());
    }
    let rootfs = dir.join("rootfs");
    std::fs::copy(&binary, rootfs.join("bin/loki-logdriver"))
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    std::fs::write(
        rootfs.join("VERSION"),
        format!("drain-plugin 0 amd64 drain-bench-{}\n", std::process::id()),
    )
    .map_err(|e| e.to_string())?;
    cli(&["plugin", "create", DRAIN, dir.to_str().unwrap()])?;
    cli(&["plugin", "enable", "--timeout", "0", DRAIN])?;
    plugin_pid("drain")
}

/// Grafana's driver 3.7.6 as a managed plugin, and its process.
fn grafana_driver(root: &Path) -> Result<(String, u32), String> {
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
    let pid = find_process(|_, cmdline| cmdline.starts_with(b"/bin/docker-driver"))
        .ok_or("Grafana's driver is enabled but its process was not found")?;
    Ok((format!("{name}:latest"), pid))
}

/// What one driver's run cost.
struct Cost {
    cpu: Duration,
    peak_mb: f64,
    written: u64,
}

/// How long the machine's cores had been busy, and the real Loki's
/// share, at one moment: what a run cost beside the driver's own process.
/// Loki ingests on the same cores as the containers and dockerd, and
/// json-file has no such work beside it.
struct Busy {
    machine: Duration,
    loki: Option<Duration>,
}

impl Busy {
    fn now(loki: &Sink) -> Busy {
        Busy {
            machine: machine_busy(),
            loki: loki.cpu(),
        }
    }

    /// ", cores busy 1.52 s while it ran, Loki 0.45 s of it".
    fn since(&self, loki: &Sink) -> String {
        let now = Busy::now(loki);
        let seconds =
            |later: Duration, earlier: Duration| later.saturating_sub(earlier).as_secs_f64();
        let mut text = format!(
            ", cores busy {:.2} s while it ran",
            seconds(now.machine, self.machine)
        );
        if let (Some(before), Some(after)) = (self.loki, now.loki) {
            text += &format!(", Loki {:.2} s of it", seconds(after, before));
        }
        text
    }
}

/// The time all cores have spent busy since boot (`/proc/stat`: user,
/// nice, system, irq and softirq; not idle, iowait or a hypervisor's steal).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(busy * 1_000_000_000 / per_second.max(1))
}

fn measure_start(driver: &Driver) -> Option<(Duration, u64)> {
    driver.pid.map(|pid| {
        reset_peak_rss(pid);
        (cpu_time(pid), storage_written(pid))
    })
}

fn measure_end(driver: &Driver, start: Option<(Duration, u64)>) -> Option<Cost> {
    let (pid, (cpu, written)) = (driver.pid?, start?);
    Some(Cost {
        cpu: cpu_time(pid).saturating_sub(cpu),
        peak_mb: peak_rss_mb(pid),
        written: storage_written(pid).saturating_sub(written),
    })
}

/// One container printing `lines` lines of `size` bytes, through each
/// driver in turn.
async fn one_run(
    loki: &Sink,
    drivers: &[Driver],
    round: usize,
    script: &str,
    lines: usize,
    size: usize,
) -> Result<(), String> {
    let mut json_took = None;
    let log_bytes = (lines * size) as f64;
    for driver in drivers {
        let name = unique("one");
        let start = measure_start(driver);
        let busy = Busy::now(loki);
        loki.pause(true);
        let ran = run_script(&driver.args(), script, &name);
        loki.pause(false);
        let (took, id) = ran?;
        let exited = Instant::now();
        let busy = busy.since(loki);
        let mut line = format!(
            "{lines} lines of {size} B, round {round}, {}: exited after {:.2} s",
            driver.who,
            took.as_secs_f64()
        );
        line += &ratio_to_json(took, &mut json_took);
        line += &format!(", {:.1} MB/s", log_bytes / 1e6 / took.as_secs_f64());
        line += &busy;
        let names = [name];
        let cost = delivery_and_cost(loki, driver, &names, lines, exited, start, &mut line).await;
        if let Some(cost) = cost
            && driver.args.get(1).is_some_and(|d| d == PLUGIN)
        {
            let kept = journal_root(PLUGIN).map_or(0, |r| dir_bytes(&r.join(&id)));
            line += &format!(
                "; disk {:.2} B written per byte of log, {:.2} kept",
                cost.written as f64 / log_bytes,
                kept as f64 / log_bytes
            );
        }
        println!("{line}");
        let _ = cli(&["rm", "-f", &id]);
    }
    Ok(())
}

/// " (1.07 x json-file)" for every driver after the first, json-file,
/// whose time `json_took` keeps.
fn ratio_to_json(took: Duration, json_took: &mut Option<Duration>) -> String {
    match json_took {
        None => {
            *json_took = Some(took);
            String::new()
        }
        Some(json) => format!(
            " ({:.2} x json-file)",
            took.as_secs_f64() / json.as_secs_f64()
        ),
    }
}

/// Appends to `line` when the last of `want` lines of the containers
/// `names` was in Loki (for a driver that sends there) and what the
/// driver's process spent (for a plugin), `lines` lines in all.
async fn delivery_and_cost(
    loki: &Sink,
    driver: &Driver,
    names: &[String],
    want: usize,
    exited: Instant,
    start: Option<(Duration, u64)>,
    line: &mut String,
) -> Option<Cost> {
    if driver.to_loki {
        let (arrived, at) = loki.settle(names, want).await;
        *line += &format!(
            "; {arrived} of {want} in Loki, the last {:.2} s after exit",
            at.saturating_duration_since(exited).as_secs_f64()
        );
        if let Sink::Real(_, relay) = loki {
            // With BENCH_TRACE=1: the pushes still out at the exit and
            // after it, in ms from the exit.
            let ms = |t: Instant| {
                if t >= exited {
                    t.duration_since(exited).as_millis() as i64
                } else {
                    -(exited.duration_since(t).as_millis() as i64)
                }
            };
            let ((before, bytes), after) = relay.pushes_since(exited);
            if before + after.len() > 0 {
                *line += &format!(
                    "\n    {before} pushes ({bytes} B) answered before the exit, {} after",
                    after.len()
                );
            }
            for push in after {
                *line += &format!(
                    "\n    push {:>6} B sent {:>5} ms, answered {:>5} ms",
                    push.bytes,
                    ms(push.sent),
                    ms(push.answered)
                );
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cost = measure_end(driver, start)?;
    *line += &format!(
        "; CPU {:.2} us/line; peak RSS {:.1} MB",
        cost.cpu.as_secs_f64() * 1e6 / want as f64,
        cost.peak_mb
    );
    Some(cost)
}

/// 20 containers printing 20,000 lines each at once, through each driver.
async fn many_at_once(loki: &Sink, drivers: &[Driver], round: usize) -> Result<(), String> {
    const CONTAINERS: usize = 20;
    const EACH: usize = 20_000;
    let total = CONTAINERS * EACH;
    let mut json_took = None;
    for driver in drivers {
        let names: Vec<String> = (0..CONTAINERS).map(|_| unique("many")).collect();
        let start = measure_start(driver);
        let busy = Busy::now(loki);
        loki.pause(true);
        let started = Instant::now();
        let runners: Vec<_> = names
            .iter()
            .map(|name| {
                let (args, name) = (driver.args.clone(), name.clone());
                std::thread::spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    run_script(&args, &format!("yes {TEXT} | head -n {EACH}"), &name)
                })
            })
            .collect();
        let ran: Result<Vec<String>, String> = runners
            .into_iter()
            .map(|runner| Ok(runner.join().map_err(|_| "a runner panicked")??.1))
            .collect();
        let took = started.elapsed();
        loki.pause(false);
        let ids = ran?;
        let exited = Instant::now();
        let busy = busy.since(loki);
        let mut line = format!(
            "{CONTAINERS} containers x {EACH} lines at once, round {round}, {}: all exited after {:.2} s",
            driver.who,
            took.as_secs_f64()
        );
        line += &ratio_to_json(took, &mut json_took);
        line += &busy;
        delivery_and_cost(loki, driver, &names, total, exited, start, &mut line).await;
        println!("{line}");
        for id in ids {
            let _ = cli(&["rm", "-f", &id]);
        }
    }
    Ok(())
}

/// The 200,000-line run with pipeline stages, this plugin beside Grafana's
/// driver with the same stages.
async fn stages(loki: &Sink, ours: &Driver, grafana: Option<&Driver>) -> Result<(), String> {
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
    let mut drivers = vec![ours];
    drivers.extend(grafana);
    for (name, stages, source, entries) in &cases {
        let mut cpu_per_line = Vec::new();
        for driver in &drivers {
            let mut best = f64::MAX;
            for run in 1..=2 {
                let mut args = driver.args();
                let stage_opt = stages.map(|s| format!("loki-pipeline-stages={s}"));
                if let Some(opt) = &stage_opt {
                    args.extend(["--log-opt", opt.as_str()]);
                }
                let container = unique("stages");
                let start = measure_start(driver);
                let script = format!("{source} | head -n {LINES}");
                let (took, id) = run_script(&args, &script, &container)?;
                let exited = Instant::now();
                // A multiline pipeline labels nothing new; json + labels adds `level`.
                let (arrived, at) = loki
                    .settle(std::slice::from_ref(&container), *entries)
                    .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let cost = measure_end(driver, start).ok_or("a plugin has a process")?;
                let cpu = cost.cpu.as_secs_f64() * 1e6 / LINES as f64;
                best = best.min(cpu);
                println!(
                    "stages {name}, {}, run {run}: exited after {:.2} s; {arrived} of {entries} entries in Loki, the last {:.2} s after exit; \
                     CPU {cpu:.2} us/line; peak RSS {:.1} MB",
                    driver.who,
                    took.as_secs_f64(),
                    at.saturating_duration_since(exited).as_secs_f64(),
                    cost.peak_mb,
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
    let _ = std::fs::remove_file(&cidfile);
    Ok((took, id.trim().to_string()))
}

fn idle_containers(url: &str, pid: u32) -> Result<(), String> {
    const CONTAINERS: usize = 100;
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
            url,
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
