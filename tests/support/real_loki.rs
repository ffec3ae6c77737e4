//! Real Grafana Loki servers (3.7.6 and 2.7.5) for tests, started with the
//! shared `real/loki` script on free ports in 3400-3499, and a small client
//! for the push API and the query API (`query_range`, `query`).
//!
//! Two Lokis per version are shared by the tests of a process, started on
//! first use: [`shared`] (the script's raised limits) and [`shared_limited`]
//! (`auth_enabled: true` and Loki's own limits). Tests keep apart by unique
//! label values and tenants. Shared Lokis stop when the test process exits,
//! a [`RealLoki`] of one test's own when it is dropped; one left behind by a
//! killed run is stopped by the next run (see [`sweep_orphans`]).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use loki_logdriver::proto::logproto::PushRequest;

use super::push::{Answer, http_request, now_ns};

/// `../shared` next to the crate: the real servers and fixtures.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");

/// Ports this suite may use (other engineers use other ranges). Loki's gRPC
/// port is the HTTP port + 6000, as the script sets it.
const PORTS: std::ops::Range<u16> = 3400..3500;

/// [`PORTS`], or `REAL_LOKI_PORTS=FIRST-LAST` (inclusive) where several
/// people share a machine and each has a range of their own.
pub fn ports() -> std::ops::Range<u16> {
    static RANGE: std::sync::OnceLock<std::ops::Range<u16>> = std::sync::OnceLock::new();
    RANGE
        .get_or_init(|| {
            let Ok(text) = std::env::var("REAL_LOKI_PORTS") else {
                return PORTS;
            };
            let parsed = text
                .split_once('-')
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                })
                .filter(|(a, b)| a <= b && *b < u16::MAX - GRPC_OFFSET);
            match parsed {
                Some((first, last)) => first..last + 1,
                None => panic!("REAL_LOKI_PORTS={text:?}: expected FIRST-LAST, as 3500-3549"),
            }
        })
        .clone()
}
const GRPC_OFFSET: u16 = 6000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V3,
    V2,
}

impl Version {
    pub const ALL: [Version; 2] = [Version::V3, Version::V2];

    pub fn major(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V2 => "2",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::V3 => "3.7.6",
            Version::V2 => "2.7.5",
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Loki {}", self.name())
    }
}

fn script() -> PathBuf {
    Path::new(SHARED).join("real/loki")
}

fn state_root() -> PathBuf {
    std::env::var_os("REAL_STATE").map_or_else(|| PathBuf::from("/tmp/real-loki"), PathBuf::from)
}

fn binary(version: Version) -> PathBuf {
    let cache = std::env::var_os("REAL_CACHE").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/real-bin"),
        PathBuf::from,
    );
    cache.join(format!("loki-{}", version.name()))
}

/// `Ok` when the script and both Loki binaries are there, else what is missing.
pub fn availability() -> Result<(), String> {
    let mut missing = Vec::new();
    if !script().is_file() {
        missing.push(script());
    }
    for version in Version::ALL {
        let xz = Path::new(SHARED).join(format!("real/bin/loki-{}.xz", version.name()));
        if !xz.is_file() {
            missing.push(xz);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing {missing:?}"))
    }
}

/// True when the test must be skipped because there is no real Loki. Says so
/// loudly (on the real stderr, past the test harness's capture) the first
/// time; with `CI=true` a missing Loki fails the test instead.
pub fn skip_without_loki() -> bool {
    let Err(why) = availability() else {
        return false;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("real_loki: no real Loki ({why}) and CI=true: the real-Loki tests must run in CI");
    }
    static BANNER: Once = Once::new();
    BANNER.call_once(|| {
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! real_loki: NO REAL LOKI BINARIES ({why}).\n\
             !! The real-Loki tests did NOT run; they pass as skipped.\n\
             !! They need ../shared/real (loki script and bin/loki-*.xz).\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
    });
    true
}

/// Loki's own limits, or the script's raised ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    Raised,
    /// `--default-limits`: per stream 3 MB/s (burst 15 MB), per tenant 4 MB/s (burst 6 MB).
    Default,
}

/// A running real Loki. Dropping it stops it.
pub struct RealLoki {
    pub version: Version,
    pub port: u16,
    /// Set on the shared instances, which stop at process exit instead.
    shared: bool,
}

/// Started by this process and not yet stopped: stopped at exit.
static RUNNING: Mutex<Vec<u16>> = Mutex::new(Vec::new());

extern "C" fn stop_all_at_exit() {
    let ports = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    let stopping: Vec<_> = ports
        .into_iter()
        .map(|port| std::thread::spawn(move || stop_port(port)))
        .collect();
    for stop in stopping {
        let _ = stop.join();
    }
}

fn register(port: u16) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(stop_all_at_exit) };
    });
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(port);
}

fn stop_port(port: u16) {
    let _ = Command::new(script())
        .args(["stop", "3", &port.to_string()])
        .stdout(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(state_root().join(port.to_string()));
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Stops Lokis in our port range whose owning test process is gone (a run
/// that was killed before it could stop them).
fn sweep_orphans() {
    for port in ports() {
        let dir = state_root().join(port.to_string());
        let (Some(owner), Some(loki)) = (
            read_pid(&dir.join("owner")),
            read_pid(&dir.join("loki.pid")),
        ) else {
            continue;
        };
        if !pid_alive(owner) && pid_alive(loki) {
            eprintln!("real_loki: stopping Loki on :{port} left behind by test process {owner}");
            stop_port(port);
        }
    }
}

fn port_free(port: u16) -> bool {
    let bind = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let dir = state_root().join(port.to_string());
    let running = read_pid(&dir.join("loki.pid")).is_some_and(pid_alive);
    !running && bind(port) && bind(port + GRPC_OFFSET)
}

/// A port of our range that no one uses, never the same twice in a process.
fn free_port() -> u16 {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep_orphans);
    // Start at a different place per process, so that two runs rarely race.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % 50) as u16 * 2 + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let range = ports();
    for _ in 0..range.len() {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % range.len() as u16;
        let port = range.start + offset;
        if port_free(port) {
            return port;
        }
    }
    panic!("real_loki: no free port in {range:?}");
}

impl RealLoki {
    /// A handle on a Loki 3 that something else runs and stops (a member of
    /// `scripts/loki-ring`): queries and pushes as to the others; dropping
    /// it leaves the Loki running.
    pub fn at(port: u16) -> RealLoki {
        RealLoki {
            version: Version::V3,
            port,
            shared: true,
        }
    }

    /// Starts a Loki with the script (blocking: several seconds).
    pub fn start(version: Version, limits: Limits) -> RealLoki {
        let port = free_port();
        let dir = state_root().join(port.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let mut command = Command::new(script());
        command.args(["start", version.major(), &port.to_string()]);
        if limits == Limits::Default {
            command.arg("--default-limits");
        }
        let output = command.output().expect("run real/loki");
        register(port);
        let _ = std::fs::write(dir.join("owner"), std::process::id().to_string());
        assert!(
            output.status.success(),
            "{version} did not start on :{port}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        RealLoki {
            version,
            port,
            shared: false,
        }
    }

    /// Starts a Loki whose configuration is the one the script wrote for
    /// `template` (a running Loki of the same version) with each `(from, to)`
    /// text replaced, moved to a new port and directory, with `files`
    /// (`(name, text)`) written into that directory first. `{dir}` in a
    /// replacement or a file stands for the new directory. The script offers
    /// no such switches, so this starts the binary the script unpacked, as the
    /// script does, and records its pid where the script's `stop` finds it.
    pub fn start_derived(
        template: &RealLoki,
        edits: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> RealLoki {
        let version = template.version;
        let port = free_port();
        let dir = state_root().join(port.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old_dir = state_root().join(template.port.to_string());
        let mut config = std::fs::read_to_string(old_dir.join("config.yaml"))
            .expect("the template Loki's config");
        let new_dir = dir.to_str().unwrap();
        for (from, to) in edits {
            assert!(
                config.contains(from),
                "{version} config has no {from:?}:\n{config}"
            );
            config = config.replace(from, &to.replace("{dir}", new_dir));
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text.replace("{dir}", new_dir)).unwrap();
        }
        let config = config
            .replace(old_dir.to_str().unwrap(), dir.to_str().unwrap())
            .replace(
                &format!("http_listen_port: {}", template.port),
                &format!("http_listen_port: {port}"),
            )
            .replace(
                &format!("grpc_listen_port: {}", template.port + GRPC_OFFSET),
                &format!("grpc_listen_port: {}", port + GRPC_OFFSET),
            );
        std::fs::write(dir.join("config.yaml"), &config).unwrap();
        let log = std::fs::File::create(dir.join("loki.log")).unwrap();
        let mut command = Command::new(binary(version));
        command
            .arg(format!(
                "-config.file={}",
                dir.join("config.yaml").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // Its own process group, as the script's setsid: a Ctrl-C meant for
        // the tests does not reach it; it is stopped by port like the others.
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
        let child = command.spawn().expect("start the Loki binary");
        std::fs::write(dir.join("loki.pid"), child.id().to_string()).unwrap();
        std::fs::write(dir.join("owner"), std::process::id().to_string()).unwrap();
        register(port);
        // Reap it when it exits, so that the stop script sees it gone.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        let loki = RealLoki {
            version,
            port,
            shared: false,
        };
        loki.wait_ready_blocking(Duration::from_secs(60));
        loki
    }

    fn wait_ready_blocking(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read as _;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = write!(stream, "GET /ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir().join("loki.log")).unwrap_or_default();
                panic!("{} on :{} not ready; log:\n{log}", self.version, self.port);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn dir(&self) -> PathBuf {
        state_root().join(self.port.to_string())
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push_url(&self) -> String {
        format!("{}/loki/api/v1/push", self.base_url())
    }

    /// Stops it now (also done on drop).
    pub fn stop(&self) {
        stop_port(self.port);
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != self.port);
    }

    /// Sends a raw HTTP request to this Loki.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Answer {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        http_request(addr, method, path_and_query, headers, body).await
    }

    /// Pushes `request` as the plugin does (raw-snappy protobuf), with
    /// `X-Scope-OrgID: tenant` when given.
    pub async fn push(&self, request: &PushRequest, tenant: Option<&str>) -> Answer {
        self.push_body(loki_logdriver::ship::encode::encode_push(request), tenant)
            .await
    }

    pub async fn push_body(&self, body: Bytes, tenant: Option<&str>) -> Answer {
        let mut headers = vec![("Content-Type", "application/x-protobuf")];
        if let Some(tenant) = tenant {
            headers.push(("X-Scope-OrgID", tenant));
        }
        self.request("POST", "/loki/api/v1/push", &headers, body)
            .await
    }

    async fn get_json(
        &self,
        path: &str,
        params: &[(&str, String)],
        tenant: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = tenant.map(|t| ("X-Scope-OrgID", t)).into_iter().collect();
        self.get(path, params, &headers).await
    }

    /// `GET path?params` (form-encoded) with `headers`.
    pub async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        self.request("GET", &format!("{path}?{query}"), headers, Bytes::new())
            .await
    }

    /// The `params` of a `query_range` over the last hour, forward.
    pub fn range_params(query: &str) -> Vec<(&'static str, String)> {
        let now = now_ns();
        vec![
            ("query", query.to_string()),
            ("start", (now - 3_600 * 1_000_000_000).to_string()),
            ("end", (now + 600 * 1_000_000_000).to_string()),
            ("limit", "100000".to_string()),
            ("direction", "forward".to_string()),
        ]
    }

    /// All entries of the streams matching `query` in the last hour, oldest
    /// first, as Loki's query API returns them.
    pub async fn query_range(
        &self,
        query: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Stream>, Answer> {
        let now = now_ns();
        self.query_between(
            query,
            tenant,
            now - 3_600 * 1_000_000_000,
            now + 600 * 1_000_000_000,
        )
        .await
    }

    /// All entries of the streams matching `query` between `start` and `end`
    /// (nanoseconds since the epoch), oldest first.
    pub async fn query_between(
        &self,
        query: &str,
        tenant: Option<&str>,
        start: i128,
        end: i128,
    ) -> Result<Vec<Stream>, Answer> {
        let params = [
            ("query", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("limit", "100000".to_string()),
            ("direction", "forward".to_string()),
        ];
        let answer = self
            .get_json("/loki/api/v1/query_range", &params, tenant)
            .await;
        if answer.status != 200 {
            return Err(answer);
        }
        let json: serde_json::Value =
            serde_json::from_str(&answer.body).expect("query answer is JSON");
        assert_eq!(
            json["data"]["resultType"], "streams",
            "{query}: {}",
            answer.body
        );
        let mut streams: Vec<Stream> = json["data"]["result"]
            .as_array()
            .expect("result array")
            .iter()
            .map(|s| Stream {
                labels: s["stream"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                entries: s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| {
                        let fields = pair.as_array().unwrap();
                        QueriedEntry {
                            timestamp_ns: fields[0].as_str().unwrap().parse().unwrap(),
                            line: fields[1].as_str().unwrap().to_string(),
                            metadata: fields.get(2).cloned(),
                        }
                    })
                    .collect(),
            })
            .collect();
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    /// The entries (all streams together, in time order) matching `query`.
    pub async fn entries(&self, query: &str, tenant: Option<&str>) -> Vec<QueriedEntry> {
        let streams = self
            .query_range(query, tenant)
            .await
            .unwrap_or_else(|a| panic!("{}: {query}: {a:?}", self.version));
        let mut all: Vec<QueriedEntry> = streams.into_iter().flat_map(|s| s.entries).collect();
        all.sort_by_key(|e| e.timestamp_ns);
        all
    }

    /// An instant query; returns the raw JSON answer.
    pub async fn query(
        &self,
        query: &str,
        tenant: Option<&str>,
    ) -> Result<serde_json::Value, Answer> {
        let params = [("query", query.to_string()), ("time", now_ns().to_string())];
        let answer = self.get_json("/loki/api/v1/query", &params, tenant).await;
        if answer.status != 200 {
            return Err(answer);
        }
        Ok(serde_json::from_str(&answer.body).expect("query answer is JSON"))
    }

    /// `sum(count_over_time(SELECTOR[1h]))` now: the number of entries stored
    /// in the last hour (0 when there are none).
    pub async fn count(&self, selector: &str, tenant: Option<&str>) -> u64 {
        let query = format!("sum(count_over_time({selector}[1h]))");
        let json = self
            .query(&query, tenant)
            .await
            .unwrap_or_else(|a| panic!("{}: {query}: {a:?}", self.version));
        json["data"]["result"]
            .as_array()
            .and_then(|r| r.first())
            .map_or(0, |sample| {
                sample["value"][1].as_str().unwrap().parse().unwrap()
            })
    }

    /// Polls until `count(selector)` is at least `want` (or `timeout`); returns the last count.
    pub async fn wait_for_count(
        &self,
        selector: &str,
        tenant: Option<&str>,
        want: u64,
        timeout: Duration,
    ) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.count(selector, tenant).await;
            if count >= want || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls until at least `want` entries match `query` (or `timeout`); returns them.
    pub async fn wait_for_entries(
        &self,
        query: &str,
        tenant: Option<&str>,
        want: usize,
        timeout: Duration,
    ) -> Vec<QueriedEntry> {
        let deadline = Instant::now() + timeout;
        loop {
            let entries = self.entries(query, tenant).await;
            if entries.len() >= want || Instant::now() > deadline {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /flush`: the ingester cuts and flushes its chunks to storage.
    pub async fn flush(&self) -> Answer {
        self.request("POST", "/flush", &[], Bytes::new()).await
    }

    /// Flushes, then waits until the ingester holds no stream of `tenant` in
    /// memory: every chunk of that tenant is in storage, and a push that
    /// follows starts a new stream. Returns how many chunks were flushed
    /// meanwhile (all tenants; other tests share the Loki).
    pub async fn flush_and_wait(&self, tenant: &str) -> u64 {
        let before = self.chunks_flushed().await;
        let answer = self.flush().await;
        assert_eq!(
            answer.status, 204,
            "{}: POST /flush: {answer}",
            self.version
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.memory_streams(tenant).await > 0 {
            assert!(
                Instant::now() < deadline,
                "{}: tenant {tenant} still has streams in the ingester 60 s after POST /flush",
                self.version
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.chunks_flushed().await - before
    }

    /// `loki_ingester_memory_streams{tenant="…"}`: 0 once the tenant's
    /// streams have all left the ingester.
    pub async fn memory_streams(&self, tenant: &str) -> u64 {
        let metrics = self.request("GET", "/metrics", &[], Bytes::new()).await;
        let series = format!("loki_ingester_memory_streams{{tenant=\"{tenant}\"}} ");
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }

    /// `loki_ingester_chunks_flushed_total`, all reasons.
    async fn chunks_flushed(&self) -> u64 {
        let metrics = self.request("GET", "/metrics", &[], Bytes::new()).await;
        metrics
            .body
            .lines()
            .filter(|l| l.starts_with("loki_ingester_chunks_flushed_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl Drop for RealLoki {
    fn drop(&mut self) {
        if !self.shared {
            self.stop();
        }
    }
}

/// The Loki of `version` with raised limits that every test of this process
/// shares; started on first use, stopped when the process exits.
pub async fn shared(version: Version) -> &'static RealLoki {
    static V3: tokio::sync::OnceCell<RealLoki> = tokio::sync::OnceCell::const_new();
    static V2: tokio::sync::OnceCell<RealLoki> = tokio::sync::OnceCell::const_new();
    let cell = match version {
        Version::V3 => &V3,
        Version::V2 => &V2,
    };
    cell.get_or_init(|| async move {
        let started = Instant::now();
        let mut loki =
            tokio::task::spawn_blocking(move || RealLoki::start(version, Limits::Raised))
                .await
                .unwrap();
        loki.shared = true;
        println!(
            "{version}: shared instance on :{} ready in {:.1?}",
            loki.port,
            started.elapsed()
        );
        loki
    })
    .await
}

/// The tenant of [`shared_limited`] whose own ingestion limit is raised, so
/// that it meets the per-stream limit before the per-tenant one.
pub const STREAM_LIMIT_TENANT: &str = "stream-limit";

/// The Loki of `version` with `auth_enabled: true` and Loki's own default
/// limits (what `--default-limits` gives: per stream 3 MB/s, burst 15 MB;
/// per tenant 4 MB/s, burst 6 MB), shared by the tests of this process.
///
/// With those limits a single stream can never reach its own limit: the
/// tenant's (burst 6 MB) refuses first, and Loki 3 also splits a fast stream
/// into `__stream_shard__` streams. So one tenant, [`STREAM_LIMIT_TENANT`],
/// has a per-tenant override (runtime config) raising its tenant limit and
/// turning stream sharding off: its streams meet the per-stream limit.
pub async fn shared_limited(version: Version) -> &'static RealLoki {
    static V3: tokio::sync::OnceCell<RealLoki> = tokio::sync::OnceCell::const_new();
    static V2: tokio::sync::OnceCell<RealLoki> = tokio::sync::OnceCell::const_new();
    let cell = match version {
        Version::V3 => &V3,
        Version::V2 => &V2,
    };
    cell.get_or_init(|| async move {
        let template = shared(version).await;
        let started = Instant::now();
        let overrides = format!(
            "overrides:\n  {STREAM_LIMIT_TENANT}:\n    ingestion_rate_mb: 1024\n    \
             ingestion_burst_size_mb: 1024\n    shard_streams:\n      enabled: false\n"
        );
        let mut loki = tokio::task::spawn_blocking(move || {
            RealLoki::start_derived(
                template,
                &[
                    ("auth_enabled: false", "auth_enabled: true"),
                    (
                        "ingestion_rate_mb: 1024, ingestion_burst_size_mb: 1024, \
                         per_stream_rate_limit: 512MB, per_stream_rate_limit_burst: 1024MB, ",
                        "",
                    ),
                    (
                        "analytics: {reporting_enabled: false}",
                        "analytics: {reporting_enabled: false}\nruntime_config: {file: {dir}/overrides.yaml}",
                    ),
                ],
                &[("overrides.yaml", &overrides)],
            )
        })
        .await
        .unwrap();
        loki.shared = true;
        println!(
            "{version}: shared instance with auth and Loki's default limits on :{} ready in {:.1?}",
            loki.port,
            started.elapsed()
        );
        loki
    })
    .await
}

/// One stream of a query answer.
#[derive(Debug, Clone)]
pub struct Stream {
    pub labels: BTreeMap<String, String>,
    pub entries: Vec<QueriedEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueriedEntry {
    pub timestamp_ns: i128,
    pub line: String,
    /// The third element of a value, when Loki sends one (structured metadata).
    pub metadata: Option<serde_json::Value>,
}

/// A label value no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU16 = AtomicU16::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        now_ns() % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Polls `check` until it returns `Some` or `timeout` passes (then `None`).
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A push body seen by [`AnswerDroppingProxy`], and Loki's status when the
/// answer was passed back (`None`: dropped).
pub type ProxiedPush = (Bytes, Option<u16>);

/// A proxy in front of a Loki that forwards every request and passes the
/// answer back, except that it closes the connection instead of answering
/// the first `drop_answers` pushes: Loki has stored them, the client sees
/// no answer and sends the same batch again.
pub struct AnswerDroppingProxy {
    addr: std::net::SocketAddr,
    pushes: Arc<Mutex<Vec<ProxiedPush>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AnswerDroppingProxy {
    pub async fn start(loki: &'static RealLoki, drop_answers: usize) -> AnswerDroppingProxy {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pushes: Arc<Mutex<Vec<ProxiedPush>>> = Arc::default();
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(drop_answers));
        let seen = pushes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, left) = (seen.clone(), left.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (seen, left) = (seen.clone(), left.clone());
                        async move {
                            let headers: Vec<(String, String)> = req
                                .headers()
                                .iter()
                                .filter(|(k, _)| {
                                    matches!(
                                        k.as_str(),
                                        "content-type" | "x-scope-orgid" | "user-agent"
                                    )
                                })
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let path = req.uri().path().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map_err(std::io::Error::other)?
                                .to_bytes();
                            let headers: Vec<(&str, &str)> = headers
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect();
                            let answer = loki.request("POST", &path, &headers, body.clone()).await;
                            let dropped = left
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                            seen.lock()
                                .unwrap()
                                .push((body, (!dropped).then_some(answer.status)));
                            if dropped {
                                // An error from the service closes the connection unanswered.
                                return Err(std::io::Error::other("answer dropped by the proxy"));
                            }
                            let mut response = hyper::Response::builder().status(answer.status);
                            for (k, v) in &answer.headers {
                                if !matches!(k.as_str(), "content-length" | "transfer-encoding") {
                                    response = response.header(k, v);
                                }
                            }
                            Ok::<_, std::io::Error>(
                                response.body(Full::new(Bytes::from(answer.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        AnswerDroppingProxy { addr, pushes, task }
    }

    pub fn push_url(&self) -> String {
        format!("http://{}/loki/api/v1/push", self.addr)
    }

    /// Every push body seen, with Loki's status when it was passed back
    /// (`None`: the answer was dropped).
    pub fn pushes(&self) -> Vec<ProxiedPush> {
        self.pushes.lock().unwrap().clone()
    }
}

impl Drop for AnswerDroppingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
