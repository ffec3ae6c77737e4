//! End-to-end against a real Docker engine: the plugin is built, created and
//! enabled as a managed plugin; containers log through it to the fake Loki
//! listening on the host network. Scenarios run in order; everything they
//! create carries the label `loki-e2e` and is removed at the end.
//!
//! Without a reachable daemon the suite says so loudly and skips; with
//! `CI=true` a missing daemon is a failure. `tests/e2e-setup` prepares one.
//!
//! `E2E_ENGINE` chooses the engine (see `ENGINES`): `20.10` (Debian's
//! dockerd), `29` (Docker Engine 29 from `../shared/real/docker-29`), `all`
//! (each in turn, in its own run of this binary, then a summary side by side),
//! or unset: whatever `docker` answers, except with `CI=true` and
//! `../shared/real/docker-29` present, where it means `all`.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use serde::{Deserialize, Serialize};
use support::docker::{cli, cli_at, peak_rss_mb};
use support::fake_loki::{Entry, FakeLoki, Mode};

const PLUGIN: &str = "loki-e2e:latest";
const IMAGE: &str = "loki-e2e-busybox:latest";
const LABEL: &str = "loki-e2e";
const REGISTRY: &str = "127.0.0.1:5000";
/// The host directory behind the plugin's `secrets` mount during the suite:
/// one per engine, since `E2E_ENGINE=all` runs the engines side by side and
/// each run's cleanup deletes its directory (a plugin whose bind-mounted
/// directory was deleted and made again would not see the new files).
fn secrets_dir() -> PathBuf {
    let engine: String = daemon_socket()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    PathBuf::from(format!("/tmp/loki-e2e-secrets{engine}"))
}
/// The password in it, for the credentials scenario.
const E2E_PASSWORD: &str = "e2e-Pa55-from-the-secrets-mount";

type Outcome = Result<(), String>;
type Scenario = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;

struct Ctx {
    docker: Docker,
    loki: FakeLoki,
    root: PathBuf,
    /// The engine chosen with `E2E_ENGINE`; `None`: whatever `docker` answers.
    engine: Option<&'static Engine>,
}

fn ensure(condition: bool, message: impl Into<String>) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(message.into())
    }
}

/// Prints a figure a scenario measured, and keeps it for the summary at the end.
macro_rules! note {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("    {line}");
        NOTES.lock().unwrap().push(line);
    }};
}

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        (
            "run_with_log_driver_ships_stdout_and_stderr_with_labels",
            |c| Box::pin(run_with_log_driver(c)),
        ),
        (
            "bad_log_opt_fails_docker_run_with_the_plugins_message",
            |c| Box::pin(bad_log_opt(c)),
        ),
        (
            "nothing_lost_when_a_container_prints_200000_lines_and_exits",
            |c| Box::pin(nothing_lost_at_exit(c)),
        ),
        (
            "fifty_containers_at_once_all_arrive_with_bounded_memory",
            |c| Box::pin(many_containers(c)),
        ),
        ("compose_logging_section_sets_project_and_service", |c| {
            Box::pin(compose_project(c))
        }),
        ("docker_logs_shows_all_tail_and_since", |c| {
            Box::pin(docker_logs_tail_since(c))
        }),
        ("docker_logs_follow_keeps_streaming_for_60s", |c| {
            Box::pin(docker_logs_follow(c))
        }),
        ("docker_rm_removes_the_local_copy_unless_keep_file", |c| {
            Box::pin(removal_of_copies(c))
        }),
        ("no_deadlock_when_loki_is_unreachable", |c| {
            Box::pin(no_deadlock(c))
        }),
        (
            "credentials_from_the_secrets_mount_defaults_from_log_opts_no_capabilities",
            |c| Box::pin(credentials_and_least_privilege(c)),
        ),
        ("lifecycle_disable_upgrade_and_crash", |c| {
            Box::pin(lifecycle(c))
        }),
        (
            "no_line_lost_when_the_plugin_is_killed_and_upgraded_during_a_burst",
            |c| Box::pin(kill_and_upgrade_during_a_burst(c)),
        ),
        (
            "docker_logs_follow_reads_every_rotated_segment_of_a_burst",
            |c| Box::pin(follow_a_burst_across_rotations(c)),
        ),
        ("docker_logs_tail_reads_the_end_of_a_300_mb_log", |c| {
            Box::pin(tail_of_a_large_log(c))
        }),
        (
            "pipeline_stages_a_stack_trace_is_one_entry_relabelled_from_a_stage_file",
            |c| Box::pin(pipeline_stages(c)),
        ),
        ("multiline_with_loki_down_docker_stop_stays_fast", |c| {
            Box::pin(multiline_loki_down(c))
        }),
        (
            "plugin_killed_in_the_middle_of_a_multiline_block_same_entries",
            |c| Box::pin(multiline_kill(c)),
        ),
        ("daemon_default_log_driver_ships_logs_without_flags", |c| {
            Box::pin(daemon_defaults(c))
        }),
        (
            "a_container_restarted_by_its_policy_has_each_runs_long_line_whole",
            |c| Box::pin(restarted_by_policy(c)),
        ),
    ]
}

fn main() {
    let code = match selection() {
        Err(err) => {
            println!("e2e: {err}");
            println!("e2e: 0 passed, 1 failed");
            1
        }
        Ok(Selection::All) => run_each_engine(),
        Ok(Selection::One(engine)) => {
            // SAFETY: no other thread exists yet. bollard, the docker CLI and
            // docker-compose all follow DOCKER_HOST.
            unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{}", engine.socket)) };
            run_on(Some(engine))
        }
        Ok(Selection::Default) => run_on(None),
    };
    std::process::exit(code);
}

fn run_on(engine: Option<&'static Engine>) -> i32 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run_suite(engine))
}

// ---- Engines: which daemon the suite talks to ------------------------------

/// A Docker engine the suite can run on.
struct Engine {
    /// The value of `E2E_ENGINE` that selects it.
    name: &'static str,
    /// Its API socket; the suite sets `DOCKER_HOST` to it.
    socket: &'static str,
    /// Its version starts with this; checked, so that a run never says it
    /// tested an engine it did not.
    version: &'static str,
    /// Pid file of the running dockerd. `daemon_defaults` starts its second
    /// dockerd from the same binary, with that directory first in PATH.
    pidfile: &'static str,
}

/// The oldest supported engine (Debian 12's docker.io), then what users run
/// (`../shared/real/docker-29 start`: own data root /var/lib/docker29, exec
/// root /run/docker29, containerd 2 and runc 1.4 beside its dockerd).
static ENGINES: [Engine; 2] = [
    Engine {
        name: "20.10",
        socket: "/var/run/docker.sock",
        version: "20.10.",
        pidfile: "/var/run/docker.pid",
    },
    Engine {
        name: "29",
        socket: "/run/docker29.sock",
        version: "29.",
        pidfile: "/run/docker29/dockerd.pid",
    },
];

enum Selection {
    One(&'static Engine),
    /// Each engine in turn.
    All,
    /// Whatever `docker` answers (DOCKER_HOST or the default socket), unchecked.
    Default,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn selection() -> Result<Selection, String> {
    let docker29 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real/docker-29");
    match std::env::var("E2E_ENGINE").unwrap_or_default().as_str() {
        "" if in_ci() && docker29.exists() => Ok(Selection::All),
        "" => Ok(Selection::Default),
        "all" => Ok(Selection::All),
        name => ENGINES
            .iter()
            .find(|e| e.name == name)
            .map(Selection::One)
            .ok_or_else(|| format!("E2E_ENGINE={name}: use 20.10, 29 or all")),
    }
}

/// The unix socket of the daemon under test, as a plugin inside it must see it.
fn daemon_socket() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into())
}

/// `docker plugin set` arguments that opt in to the Docker API: the
/// plugin's mount of the API socket pointed at `socket`, the socket of the
/// daemon the plugin runs in, and `DOCKER_SOCKET` set to where that mount
/// lands (the `docker_rm` scenario needs it). By default config.json binds
/// `/dev/null` there and `DOCKER_SOCKET` is empty: no API access.
fn docker_api_mount_settings(root: &Path, socket: &str) -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(root.join("config.json")).map_err(|e| e.to_string())?;
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).map_err(|e| format!("config.json: {e}"))?;
    let mounts = manifest["mounts"].as_array().cloned().unwrap_or_default();
    let mut settings: Vec<String> = mounts
        .iter()
        .filter(|m| m["destination"] == "/var/run/docker.sock")
        .filter(|m| {
            m["settable"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == "source"))
        })
        .filter_map(|m| m["name"].as_str())
        .map(|name| format!("{name}.source={socket}"))
        .collect();
    let has_setting = manifest["env"]
        .as_array()
        .is_some_and(|env| env.iter().any(|e| e["name"] == "DOCKER_SOCKET"));
    if !settings.is_empty() && has_setting {
        settings.push("DOCKER_SOCKET=/var/run/docker.sock".into());
    }
    Ok(settings)
}

/// `docker plugin set` arguments for the credentials scenario: the
/// `secrets` mount on [`secrets_dir`] (holding [`E2E_PASSWORD`]) and plugin-wide
/// log-opt defaults with `loki_url`. None when config.json has no such mount.
fn credential_settings(root: &Path, loki_url: &str) -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(root.join("config.json")).map_err(|e| e.to_string())?;
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).map_err(|e| format!("config.json: {e}"))?;
    let has_mount = manifest["mounts"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["name"] == "secrets"));
    if !has_mount {
        return Ok(Vec::new());
    }
    use std::os::unix::fs::PermissionsExt;
    let secrets = secrets_dir();
    std::fs::create_dir_all(&secrets).map_err(|e| format!("{}: {e}", secrets.display()))?;
    let password = secrets.join("password");
    std::fs::write(&password, format!("{E2E_PASSWORD}\n")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let defaults = serde_json::json!({
        "loki-url": loki_url,
        "loki-external-labels": "defaults=log_opts",
    });
    Ok(vec![
        format!("secrets.source={}", secrets.display()),
        format!("LOG_OPTS={defaults}"),
    ])
}

/// A dockerd of the engine under test, for a second daemon: the running
/// daemon's own binary, with its directory first in PATH, so that the
/// containerd it starts, the shim and runc are that engine's too (Docker 29
/// puts a time namespace in every spec, which Debian's runc 1.1 cannot run).
/// Without `E2E_ENGINE`, `dockerd` from PATH.
fn engine_dockerd(engine: Option<&Engine>) -> Result<Command, String> {
    let Some(engine) = engine else {
        return Ok(Command::new("dockerd"));
    };
    let pid = std::fs::read_to_string(engine.pidfile).map_err(|e| {
        format!(
            "{}: {e} (is the {} engine running?)",
            engine.pidfile, engine.name
        )
    })?;
    let exe = std::fs::read_link(format!("/proc/{}/exe", pid.trim()))
        .map_err(|e| format!("dockerd of {}: {e}", engine.pidfile))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let path = std::env::var("PATH").unwrap_or_default();
    let mut command = Command::new(&exe);
    command.env("PATH", format!("{}:{path}", dir.display()));
    Ok(command)
}

// ---- One run on one engine, and the summary ---------------------------------

/// What one engine's run gave; the run of each engine writes it to
/// `E2E_SUMMARY` for the side-by-side summary.
#[derive(Serialize, Deserialize)]
struct Summary {
    engine: String,
    version: String,
    passed: usize,
    failed: usize,
    skipped: usize,
    seconds: f64,
    /// (name, "ok" or "FAILED", seconds)
    scenarios: Vec<(String, String, f64)>,
    notes: Vec<String>,
}

impl Summary {
    fn new(engine: Option<&Engine>) -> Summary {
        Summary {
            engine: engine.map_or("default", |e| e.name).into(),
            version: "?".into(),
            passed: 0,
            failed: 0,
            skipped: 0,
            seconds: 0.0,
            scenarios: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Prints the closing lines, and hands the summary to the run of all engines.
    fn finish(mut self, started: Instant) -> i32 {
        self.seconds = started.elapsed().as_secs_f64();
        self.notes = NOTES.lock().unwrap().clone();
        print_summaries(std::slice::from_ref(&self));
        if let Ok(path) = std::env::var("E2E_SUMMARY") {
            let _ = std::fs::write(path, serde_json::to_string(&self).unwrap_or_default());
        }
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        println!(
            "\ne2e: {} passed, {} failed{skipped}",
            self.passed, self.failed
        );
        i32::from(self.failed > 0)
    }
}

fn print_summaries(summaries: &[Summary]) {
    let width = scenarios().iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    println!("\ne2e summary");
    let mut header = format!("  {:width$}", "Docker engine");
    for s in summaries {
        header += &format!("  {:>24}", format!("{} ({})", s.version, s.engine));
    }
    println!("{header}");
    for (name, _) in scenarios() {
        let mut line = format!("  {name:width$}");
        for s in summaries {
            let cell = s
                .scenarios
                .iter()
                .find(|(n, _, _)| n == name)
                .map_or("-".to_string(), |(_, result, took)| {
                    format!("{result} {took:.1}s")
                });
            line += &format!("  {cell:>24}");
        }
        println!("{line}");
    }
    let mut totals = format!("  {:width$}", "passed / failed / skipped, time");
    for s in summaries {
        let cell = format!("{}/{}/{}, {:.0}s", s.passed, s.failed, s.skipped, s.seconds);
        totals += &format!("  {cell:>24}");
    }
    println!("{totals}");
    for s in summaries {
        for note in &s.notes {
            println!("  {}: {note}", s.version);
        }
    }
}

/// `E2E_ENGINE=all`: this binary once per engine, each with its own
/// DOCKER_HOST, then their summaries side by side.
fn run_each_engine() -> i32 {
    let dir = tempfile::tempdir().expect("temporary directory");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut summaries = Vec::new();
    for engine in &ENGINES {
        println!(
            "\n===== e2e on Docker {0} (E2E_ENGINE={0}) =====",
            engine.name
        );
        let file = dir.path().join(engine.name);
        let status = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env("E2E_ENGINE", engine.name)
            .env("E2E_SUMMARY", &file)
            .status();
        let summary = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| serde_json::from_str::<Summary>(&s).ok())
            .unwrap_or_else(|| {
                println!(
                    "e2e: the run on {} ended without a summary: {status:?}",
                    engine.name
                );
                let mut failed = Summary::new(Some(engine));
                failed.failed = 1;
                failed
            });
        summaries.push(summary);
    }
    print_summaries(&summaries);
    let (passed, failed, skipped) = summaries.iter().fold((0, 0, 0), |(p, f, s), x| {
        (p + x.passed, f + x.failed, s + x.skipped)
    });
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    println!("\ne2e: {passed} passed, {failed} failed{skipped}");
    i32::from(failed > 0)
}

async fn run_suite(engine: Option<&'static Engine>) -> i32 {
    let started = Instant::now();
    let mut summary = Summary::new(engine);
    let docker = match connect().await {
        Ok(docker) => docker,
        Err(err) => {
            eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!("!! e2e: NO DOCKER DAEMON ({err}).");
            eprintln!("!! The real-Docker tests did NOT run. Run tests/e2e-setup.");
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
            if in_ci() {
                summary.failed = 1;
            } else {
                summary.skipped = scenarios().len();
            }
            return summary.finish(started);
        }
    };
    summary.version = docker
        .version()
        .await
        .map(|v| v.version.unwrap_or_default())
        .unwrap_or_default();
    println!(
        "e2e: Docker engine {} at {}",
        summary.version,
        daemon_socket()
    );
    if let Some(engine) = engine.filter(|e| !summary.version.starts_with(e.version)) {
        println!(
            "e2e: E2E_ENGINE={} wants Docker {}*, but {} answers {}",
            engine.name,
            engine.version,
            daemon_socket(),
            summary.version
        );
        summary.failed = 1;
        return summary.finish(started);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    cleanup(&docker).await;
    let loki = FakeLoki::start().await;
    if let Err(err) = install_plugin(&root, &loki.url()) {
        println!("e2e: cannot install the plugin: {err}");
        summary.failed = 1;
        return summary.finish(started);
    }
    let ctx = Ctx {
        docker,
        loki,
        root,
        engine,
    };
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (name, scenario) in scenarios() {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let scenario_started = Instant::now();
        let outcome = scenario(&ctx).await;
        let took = scenario_started.elapsed().as_secs_f64();
        let result = match outcome {
            Ok(()) => {
                summary.passed += 1;
                println!("test {name} ... ok ({took:.1}s)");
                "ok"
            }
            Err(err) => {
                summary.failed += 1;
                println!("test {name} ... FAILED ({took:.1}s)\n    {err}");
                "FAILED"
            }
        };
        summary.scenarios.push((name.into(), result.into(), took));
        remove_containers(&ctx.docker).await;
    }
    cleanup(&ctx.docker).await;
    summary.finish(started)
}

async fn connect() -> Result<Docker, String> {
    let docker = Docker::connect_with_local_defaults().map_err(|e| e.to_string())?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| e.to_string())?;
    docker.ping().await.map_err(|e| e.to_string())?;
    Ok(docker)
}

/// Runs the docker CLI; `Ok(stdout)` or `Err(stderr)`.
/// Builds a plugin directory with a VERSION file naming this run.
fn build_plugin_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    support::docker::build_plugin_dir(root, "e2e", name)
}

fn plugin_pid() -> Result<u32, String> {
    support::docker::plugin_pid("e2e-e2e")
}

fn install_plugin(root: &Path, loki_url: &str) -> Outcome {
    let dir = build_plugin_dir(root, "e2e-a")?;
    cli(&["plugin", "create", PLUGIN, dir.to_str().unwrap()])?;
    cli(&["plugin", "set", PLUGIN, "STORE_GC_INTERVAL=1s"])?;
    for setting in docker_api_mount_settings(root, &daemon_socket())?
        .into_iter()
        .chain(credential_settings(root, loki_url)?)
    {
        cli(&["plugin", "set", PLUGIN, &setting])?;
    }
    // As `docker plugin install` does: no client timeout, so `docker logs -f` is not cut.
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    Ok(())
}

async fn remove_containers(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    for container in docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
    {
        let id = container.id.unwrap_or_default();
        let _ = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
}

async fn cleanup(docker: &Docker) {
    remove_containers(docker).await;
    let _ = cli(&["plugin", "disable", "-f", PLUGIN]);
    let _ = cli(&["plugin", "rm", "-f", PLUGIN]);
    let _ = std::fs::remove_dir_all(secrets_dir());
}

/// Creates and starts a container logging through the plugin.
async fn run(ctx: &Ctx, name: &str, script: &str, opts: &[(&str, &str)]) -> Result<String, String> {
    let mut config: HashMap<String, String> =
        HashMap::from([("loki-url".to_string(), ctx.loki.url())]);
    config.extend(opts.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run_with_config(ctx, name, script, config).await
}

/// Creates and starts a container logging through the plugin with exactly
/// these log-opts.
async fn run_with_config(
    ctx: &Ctx,
    name: &str,
    script: &str,
    config: HashMap<String, String>,
) -> Result<String, String> {
    run_with_restarts(ctx, name, script, config, None).await
}

/// [`run_with_config`], with a restart policy.
async fn run_with_restarts(
    ctx: &Ctx,
    name: &str,
    script: &str,
    config: HashMap<String, String>,
    restart_policy: Option<RestartPolicy>,
) -> Result<String, String> {
    let body = ContainerCreateBody {
        image: Some(IMAGE.to_string()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        labels: Some(HashMap::from([(LABEL.to_string(), "1".to_string())])),
        host_config: Some(HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: Some(PLUGIN.to_string()),
                config: Some(config),
            }),
            restart_policy,
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let created = ctx
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("create {name}: {e}"))?;
    ctx.docker
        .start_container(&created.id, None)
        .await
        .map_err(|e| format!("start {name}: {e}"))?;
    Ok(created.id)
}

async fn is_running(ctx: &Ctx, id: &str) -> Result<bool, String> {
    let info = ctx
        .docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| e.to_string())?;
    Ok(info.state.and_then(|s| s.running).unwrap_or(false))
}

async fn wait_exit(ctx: &Ctx, id: &str, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    while is_running(ctx, id).await? {
        ensure(
            Instant::now() < deadline,
            format!("container {id} still running after {timeout:?}"),
        )?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn wait_entries(
    loki: &FakeLoki,
    selector: &[(&str, &str)],
    count: usize,
    timeout: Duration,
) -> Result<Vec<Entry>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let entries = loki.entries_matching(selector);
        if entries.len() >= count {
            return Ok(entries);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "Loki has {} entries for {selector:?}, expected {count}",
                entries.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn texts(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(Entry::text).collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn run_with_log_driver(ctx: &Ctx) -> Outcome {
    let id = run(
        ctx,
        "loki-e2e-run",
        "echo to-stdout; echo to-stderr >&2",
        &[],
    )
    .await?;
    wait_exit(ctx, &id, Duration::from_secs(10)).await?;
    let out = wait_entries(
        &ctx.loki,
        &[("container_name", "loki-e2e-run"), ("source", "stdout")],
        1,
        Duration::from_secs(10),
    )
    .await?;
    let err = wait_entries(
        &ctx.loki,
        &[("container_name", "loki-e2e-run"), ("source", "stderr")],
        1,
        Duration::from_secs(10),
    )
    .await?;
    ensure(
        texts(&out) == ["to-stdout"],
        format!("stdout: {:?}", texts(&out)),
    )?;
    ensure(
        texts(&err) == ["to-stderr"],
        format!("stderr: {:?}", texts(&err)),
    )?;
    let streams = ctx.loki.streams();
    let labels = streams
        .keys()
        .find(|l| l.get("container_name").map(String::as_str) == Some("loki-e2e-run"))
        .unwrap();
    ensure(
        labels.get("image_name").map(String::as_str) == Some(IMAGE),
        format!("image_name: {labels:?}"),
    )?;
    ensure(
        labels.get("host") == Some(&hostname()),
        format!("host should be {:?}: {labels:?}", hostname()),
    )?;
    Ok(())
}

async fn bad_log_opt(ctx: &Ctx) -> Outcome {
    let result = run(
        ctx,
        "loki-e2e-badopt",
        "echo never",
        &[("loki-batch-sise", "10")],
    )
    .await;
    let err = result
        .err()
        .ok_or("a container with an unknown log-opt started")?;
    ensure(
        err.contains("unknown log-opt 'loki-batch-sise'") && err.contains("loki-batch-size"),
        format!("message: {err}"),
    )?;
    let cli_err = cli(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--network",
        "none",
        "--log-driver",
        PLUGIN,
        "--log-opt",
        "loki-url=http://127.0.0.1:9/loki/api/v1/push",
        "--log-opt",
        "loki-timeout=ten",
        IMAGE,
        "true",
    ])
    .err()
    .ok_or("docker run accepted loki-timeout=ten")?;
    ensure(
        cli_err.contains("loki-timeout") && cli_err.contains("\"ten\""),
        format!("docker run said: {cli_err}"),
    )
}

async fn nothing_lost_at_exit(ctx: &Ctx) -> Outcome {
    const COUNT: usize = 200_000;
    let id = run(ctx, "loki-e2e-200k", &format!("seq 1 {COUNT}"), &[]).await?;
    wait_exit(ctx, &id, Duration::from_secs(60)).await?;
    let entries = wait_entries(
        &ctx.loki,
        &[("container_name", "loki-e2e-200k")],
        COUNT,
        Duration::from_secs(60),
    )
    .await?;
    let numbers: Vec<usize> = entries
        .iter()
        .map(|e| e.text().parse().unwrap_or(0))
        .collect();
    ensure(numbers.len() == COUNT, format!("{} entries", numbers.len()))?;
    let expected: Vec<usize> = (1..=COUNT).collect();
    ensure(
        numbers == expected,
        "numbers missing, duplicated or out of order",
    )
}

async fn many_containers(ctx: &Ctx) -> Outcome {
    const CONTAINERS: usize = 50;
    const LINES: usize = 1_000;
    let mut ids = Vec::new();
    for i in 0..CONTAINERS {
        let script =
            format!("i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo \"c{i} line $i\"; done");
        ids.push(run(ctx, &format!("loki-e2e-many-{i}"), &script, &[]).await?);
    }
    for id in &ids {
        wait_exit(ctx, id, Duration::from_secs(60)).await?;
    }
    for i in 0..CONTAINERS {
        let name = format!("loki-e2e-many-{i}");
        let entries = wait_entries(
            &ctx.loki,
            &[("container_name", &name)],
            LINES,
            Duration::from_secs(30),
        )
        .await?;
        ensure(
            entries.len() == LINES,
            format!("{name}: {} lines", entries.len()),
        )?;
    }
    let pid = plugin_pid()?;
    let peak = peak_rss_mb(pid);
    note!("plugin peak memory (VmHWM) after {CONTAINERS} containers: {peak:.1} MB");
    ensure(peak < 100.0, format!("plugin peak memory {peak:.1} MB"))
}

async fn compose_project(ctx: &Ctx) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let logging = format!(
        "    logging:\n      driver: {PLUGIN}\n      options:\n        loki-url: {}\n        loki-batch-wait: 200ms\n",
        ctx.loki.url()
    );
    let compose = format!(
        "version: \"2.4\"\nservices:\n  web:\n    image: {IMAGE}\n    network_mode: none\n    labels: [\"{LABEL}\"]\n    command: sh -c 'echo web-one; echo web-two'\n{logging}  worker:\n    image: {IMAGE}\n    network_mode: none\n    labels: [\"{LABEL}\"]\n    command: sh -c 'echo worker-one'\n{logging}"
    );
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(&file, compose).map_err(|e| e.to_string())?;
    let compose_cmd = |args: &[&str]| {
        Command::new("docker-compose")
            .args(["-p", "e2eshop", "-f", file.to_str().unwrap()])
            .args(args)
            .output()
            .map_err(|e| format!("docker-compose: {e}"))
    };
    let up = compose_cmd(&["up", "--no-color"])?;
    let logs = compose_cmd(&["logs", "--no-color"]);
    let down = compose_cmd(&["down"]);
    ensure(
        up.status.success(),
        format!("docker-compose up: {}", String::from_utf8_lossy(&up.stderr)),
    )?;
    drop(down);
    let logs = String::from_utf8_lossy(&logs?.stdout).into_owned();
    for line in ["web-one", "web-two", "worker-one"] {
        ensure(
            logs.contains(line),
            format!("docker-compose logs lacks {line}: {logs}"),
        )?;
    }
    let web = wait_entries(
        &ctx.loki,
        &[("compose_project", "e2eshop"), ("compose_service", "web")],
        2,
        Duration::from_secs(10),
    )
    .await?;
    let worker = wait_entries(
        &ctx.loki,
        &[
            ("compose_project", "e2eshop"),
            ("compose_service", "worker"),
        ],
        1,
        Duration::from_secs(10),
    )
    .await?;
    ensure(
        texts(&web) == ["web-one", "web-two"],
        format!("web: {:?}", texts(&web)),
    )?;
    ensure(
        texts(&worker) == ["worker-one"],
        format!("worker: {:?}", texts(&worker)),
    )
}

/// `docker logs` with its options: (stdout, stderr).
fn docker_logs(args: &[&str]) -> Result<(String, String), String> {
    let output = Command::new("docker")
        .arg("logs")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure(
        output.status.success(),
        format!("docker logs {args:?}: {err}"),
    )?;
    Ok((out, err))
}

async fn docker_logs_tail_since(ctx: &Ctx) -> Outcome {
    let name = "loki-e2e-logs";
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"out $i\"; done; echo 'err line' >&2; sleep 2; \
                  for i in 11 12 13 14 15 16 17 18 19 20; do echo \"out $i\"; done";
    let id = run(ctx, name, script, &[]).await?;
    wait_exit(ctx, &id, Duration::from_secs(20)).await?;
    let numbered = |range: std::ops::RangeInclusive<u32>| {
        range.map(|i| format!("out {i}\n")).collect::<String>()
    };

    let (out, err) = docker_logs(&[name])?;
    ensure(
        out == numbered(1..=20),
        format!("docker logs stdout: {out:?}"),
    )?;
    ensure(err == "err line\n", format!("docker logs stderr: {err:?}"))?;
    let (tail, _) = docker_logs(&["--tail", "5", name])?;
    ensure(tail == numbered(16..=20), format!("--tail 5: {tail:?}"))?;

    let (stamped, _) = docker_logs(&["-t", name])?;
    let since = stamped
        .lines()
        .find(|l| l.ends_with(" out 11"))
        .and_then(|l| l.split_whitespace().next())
        .ok_or("no timestamp for out 11")?
        .to_string();
    let (recent, _) = docker_logs(&["--since", &since, name])?;
    ensure(
        recent == numbered(11..=20),
        format!("--since {since}: {recent:?}"),
    )
}

async fn docker_logs_follow(ctx: &Ctx) -> Outcome {
    let name = "loki-e2e-follow";
    let script = "i=0; while [ $i -lt 80 ]; do echo \"tick $i\"; i=$((i+1)); sleep 1; done";
    run(ctx, name, script, &[]).await?;
    let mut follower = Command::new("docker")
        .args(["logs", "-f", name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = follower.stdout.take().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    tokio::time::sleep(Duration::from_secs(62)).await;
    let still_running = follower.try_wait().map_err(|e| e.to_string())?.is_none();
    let _ = follower.kill();
    let _ = follower.wait();
    let lines = received.lock().unwrap().clone();
    note!(
        "docker logs -f: {} lines in 62 s, still following: {still_running}",
        lines.len()
    );
    ensure(still_running, "docker logs -f ended before 62 s")?;
    ensure(
        lines.len() >= 55,
        format!(
            "docker logs -f delivered only {} lines in 62 s",
            lines.len()
        ),
    )?;
    let expected: Vec<String> = (0..lines.len()).map(|i| format!("tick {i}")).collect();
    ensure(
        lines == expected,
        "docker logs -f lines out of order or missing",
    )
}

/// The host path of a container's journal, inside the plugin's propagated mount.
fn local_copy_dir(container_id: &str) -> Result<PathBuf, String> {
    Ok(support::docker::journal_root(PLUGIN)?.join(container_id))
}

async fn removal_of_copies(ctx: &Ctx) -> Outcome {
    let plain = run(ctx, "loki-e2e-rm-plain", "echo plain", &[]).await?;
    let kept = run(
        ctx,
        "loki-e2e-rm-kept",
        "echo kept",
        &[("keep-file", "true")],
    )
    .await?;
    for id in [&plain, &kept] {
        wait_exit(ctx, id, Duration::from_secs(10)).await?;
    }
    let (plain_dir, kept_dir) = (local_copy_dir(&plain)?, local_copy_dir(&kept)?);
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure(
        plain_dir.exists() && kept_dir.exists(),
        "a stopped container's copy must stay",
    )?;
    ensure(
        docker_logs(&["loki-e2e-rm-plain"])?.0 == "plain\n",
        "docker logs of a stopped container",
    )?;
    for id in [&plain, &kept] {
        ctx.docker
            .remove_container(id, None::<RemoveContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while plain_dir.exists() {
        ensure(
            Instant::now() < deadline,
            format!("{} still exists after docker rm", plain_dir.display()),
        )?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure(
        kept_dir.exists(),
        "keep-file=true must keep the copy after docker rm",
    )?;
    let _ = std::fs::remove_dir_all(&kept_dir);
    Ok(())
}

/// A container writing as fast as it can while Loki is unreachable keeps
/// running, and Docker's stop, inspect and rm stay fast.
async fn no_deadlock(ctx: &Ctx) -> Outcome {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().unwrap().port()
    };
    let hanging = FakeLoki::start().await;
    hanging.set_mode(Mode::Hang);
    let targets = [
        (
            "closed-port",
            format!("http://127.0.0.1:{closed_port}/loki/api/v1/push"),
        ),
        ("never-answers", hanging.url()),
    ];
    for (what, url) in targets {
        let name = format!("loki-e2e-flood-{what}");
        let id = run(
            ctx,
            &name,
            "while :; do echo flooding-the-log-driver-while-loki-is-unreachable-0123456789; done",
            &[("loki-url", &url)],
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure(
            is_running(ctx, &id).await?,
            format!("{what}: the container stopped running"),
        )?;
        let timed = Instant::now();
        ctx.docker
            .stop_container(
                &id,
                Some(StopContainerOptions {
                    t: Some(1),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| format!("{what}: docker stop: {e}"))?;
        let stop = timed.elapsed();
        let timed = Instant::now();
        ctx.docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
        let inspect = timed.elapsed();
        let timed = Instant::now();
        ctx.docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        let remove = timed.elapsed();
        note!(
            "Loki {what}: docker stop -t 1 {stop:.2?}, inspect {inspect:.2?}, rm -f {remove:.2?}"
        );
        ensure(
            stop < Duration::from_secs(5),
            format!("{what}: docker stop took {stop:?}"),
        )?;
        ensure(
            inspect < Duration::from_secs(2),
            format!("{what}: docker inspect took {inspect:?}"),
        )?;
        ensure(
            remove < Duration::from_secs(2),
            format!("{what}: docker rm -f took {remove:?}"),
        )?;
    }
    Ok(())
}

/// Tick numbers that arrived for a container.
fn ticks(loki: &FakeLoki, name: &str) -> Vec<u64> {
    loki.entries_matching(&[("container_name", name)])
        .iter()
        .filter_map(|e| e.text().strip_prefix("tick ").and_then(|n| n.parse().ok()))
        .collect()
}

async fn wait_for_tick_after(
    loki: &FakeLoki,
    name: &str,
    after: u64,
    timeout: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = ticks(loki, name).into_iter().max().unwrap_or(0);
        if last > after {
            return Ok(last);
        }
        ensure(
            Instant::now() < deadline,
            format!("{name}: no tick after {after} within {timeout:?}"),
        )?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Registry(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the plugin as `e2e-NAME` and pushes it to the local registry;
/// returns the registry (running while it lives) and the remote name.
fn push_build(ctx: &Ctx, name: &str) -> Result<(Registry, String), String> {
    let registry = start_registry()?;
    let dir = build_plugin_dir(&ctx.root, &format!("e2e-{name}"))?;
    let remote = format!("{REGISTRY}/loki-e2e:{name}");
    let _ = cli(&["plugin", "rm", "-f", &remote]);
    cli(&["plugin", "create", &remote, dir.to_str().unwrap()])?;
    cli(&["plugin", "push", &remote])?;
    cli(&["plugin", "rm", &remote])?;
    Ok((registry, remote))
}

/// `docker plugin upgrade` as `make upgrade` does it, containers running.
fn upgrade_plugin(remote: &str) -> Outcome {
    cli(&["plugin", "disable", "-f", PLUGIN])?;
    cli(&[
        "plugin",
        "upgrade",
        "--grant-all-permissions",
        "--skip-remote-check",
        PLUGIN,
        remote,
    ])?;
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    Ok(())
}

fn start_registry() -> Result<Registry, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("config.yml");
    let storage = dir.path().join("storage");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {REGISTRY}\nlog:\n  level: error\n",
            storage.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("docker-registry: {e}"))?;
    let registry = Registry(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(REGISTRY).is_err() {
        ensure(
            Instant::now() < deadline,
            "the local registry did not start",
        )?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(registry)
}

async fn lifecycle(ctx: &Ctx) -> Outcome {
    // Disable and enable with no container using the plugin; the lines of a
    // stopped container are still there afterwards.
    let before = run(
        ctx,
        "loki-e2e-before-disable",
        "echo written before disable",
        &[],
    )
    .await?;
    wait_exit(ctx, &before, Duration::from_secs(10)).await?;
    cli(&["plugin", "disable", PLUGIN])?;
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    let (out, _) = docker_logs(&["loki-e2e-before-disable"])?;
    ensure(
        out == "written before disable\n",
        format!("docker logs after disable/enable: {out:?}"),
    )?;

    let name = "loki-e2e-ticker";
    let id = run(
        ctx,
        name,
        "i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.05; done",
        &[("loki-batch-wait", "100ms")],
    )
    .await?;
    wait_for_tick_after(&ctx.loki, name, 5, Duration::from_secs(10)).await?;

    // Disable while in use: Docker refuses.
    let refused = cli(&["plugin", "disable", PLUGIN])
        .err()
        .ok_or("disable succeeded while a container used the plugin")?;
    ensure(
        refused.contains("in use"),
        format!("disable said: {refused}"),
    )?;
    note!("docker plugin disable while in use: {refused}");

    // Upgrade to a new build while the container keeps logging.
    let (_registry, remote) = push_build(ctx, "b")?;
    let before = wait_for_tick_after(&ctx.loki, name, 10, Duration::from_secs(10)).await?;
    upgrade_plugin(&remote)?;
    let version_file = format!("/proc/{}/root/VERSION", plugin_pid()?);
    let running =
        std::fs::read_to_string(&version_file).map_err(|e| format!("{version_file}: {e}"))?;
    ensure(
        running.contains("e2e-e2e-b"),
        format!("the upgraded plugin runs {running:?}"),
    )?;
    let after = wait_for_tick_after(&ctx.loki, name, before + 20, Duration::from_secs(20)).await?;
    let seen = ticks(&ctx.loki, name);
    let missing: Vec<u64> = (0..=after).filter(|n| !seen.contains(n)).collect();
    ensure(
        missing.is_empty(),
        format!("ticks lost across the upgrade: {missing:?}"),
    )?;
    note!("upgrade: ticks 0..={after} all arrived (upgrade began after tick {before})");
    let (out, _) = docker_logs(&[name])?;
    ensure(
        out.starts_with("tick 0\ntick 1\n"),
        format!(
            "docker logs after the upgrade lost the start: {:?}",
            &out[..out.len().min(40)]
        ),
    )?;
    ensure(
        out.contains(&format!("tick {after}\n")),
        "docker logs after the upgrade lacks the newest ticks",
    )?;

    // A crash: Docker restarts the plugin, which finds the FIFO again.
    let old_pid = plugin_pid()?;
    // SAFETY: killing the plugin process, as a crash would.
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_pid = loop {
        match plugin_pid() {
            Ok(pid) if pid != old_pid => break pid,
            _ => {
                ensure(
                    Instant::now() < deadline,
                    "Docker did not restart the crashed plugin",
                )?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let crash_at = ticks(&ctx.loki, name).into_iter().max().unwrap_or(0);
    let resumed =
        wait_for_tick_after(&ctx.loki, name, crash_at + 20, Duration::from_secs(20)).await?;
    let seen = ticks(&ctx.loki, name);
    let lost = (0..=resumed).filter(|n| !seen.contains(n)).count();
    note!(
        "crash: plugin pid {old_pid} killed, restarted as {new_pid}; ticks resumed up to {resumed}, {lost} lost in the killed process's memory"
    );
    ensure(is_running(ctx, &id).await?, "the container stopped")?;
    Ok(())
}

/// Lines of 20,000 bytes (two partial messages each, through the daemon):
/// the plugin is killed, then upgraded, while they flow. Every line is in
/// Loki once and in `docker logs`.
async fn kill_and_upgrade_during_a_burst(ctx: &Ctx) -> Outcome {
    const COUNT: usize = 2_000;
    let name = "loki-e2e-burst";
    let (_registry, remote) = push_build(ctx, "c")?;
    let script = format!(
        "s=$(head -c 19990 /dev/zero | tr '\\0' x); i=0; \
         while [ $i -lt {COUNT} ]; do echo \"$i $s\"; i=$((i+1)); usleep 2000; done"
    );
    let id = run(ctx, name, &script, &[("loki-batch-wait", "200ms")]).await?;
    let count = |ctx: &Ctx| ctx.loki.entries_matching(&[("container_name", name)]).len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(ctx) < 200 {
        ensure(Instant::now() < deadline, "the burst did not start")?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A crash: Docker restarts the plugin.
    let pid = plugin_pid()?;
    // SAFETY: killing the plugin process, as a crash would.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let at_kill = count(ctx);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(ctx) < at_kill + 300 {
        ensure(Instant::now() < deadline, "no line arrived after the kill")?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An upgrade, the container still writing.
    let at_upgrade = count(ctx);
    upgrade_plugin(&remote)?;
    wait_exit(ctx, &id, Duration::from_secs(120)).await?;
    let entries = wait_entries(
        &ctx.loki,
        &[("container_name", name)],
        COUNT,
        Duration::from_secs(60),
    )
    .await?;
    let numbers = |texts: Vec<String>| -> Vec<usize> {
        texts
            .iter()
            .filter_map(|t| t.split(' ').next().and_then(|n| n.parse().ok()))
            .collect()
    };
    let in_loki = numbers(texts(&entries));
    let expected: Vec<usize> = (0..COUNT).collect();
    // "<n> " and 19,990 x: the line as printed.
    let whole = entries
        .iter()
        .all(|e| e.line.len() == e.text().split(' ').next().map_or(0, str::len) + 1 + 19_990);
    ensure(
        in_loki == expected,
        format!(
            "Loki has {} lines; missing {:?}",
            in_loki.len(),
            expected
                .iter()
                .filter(|n| !in_loki.contains(n))
                .take(10)
                .collect::<Vec<_>>()
        ),
    )?;
    ensure(whole, "every line arrived whole")?;
    let (out, _) = docker_logs(&[name])?;
    let logged = numbers(out.lines().map(str::to_string).collect());
    ensure(
        logged == expected,
        format!("docker logs has {} lines", logged.len()),
    )?;
    note!(
        "burst of {COUNT} lines of 20,000 B: killed after {at_kill} in Loki, upgraded after {at_upgrade}; all {COUNT} in Loki and in docker logs, once"
    );
    Ok(())
}

/// `docker logs -f` on a container writing 50,000 lines as fast as it can,
/// with segments of 64 KiB: the follower reads every one in order. The
/// burst starts once the follower is reading (it has seen `ready`), so a
/// follower that starts late on a busy machine does not miss the first
/// segments legitimately (delivered, and past `max-file`).
async fn follow_a_burst_across_rotations(ctx: &Ctx) -> Outcome {
    const COUNT: usize = 50_000;
    let name = "loki-e2e-follow-burst";
    let id = run(
        ctx,
        name,
        &format!(
            "trap 'seq 1 {COUNT}; exit 0' USR1; echo ready; i=0; \
             while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
        ),
        &[("max-size", "64k")],
    )
    .await?;
    let lines = tokio::task::spawn_blocking(move || -> Result<Vec<usize>, String> {
        use std::io::BufRead;
        let mut follower = Command::new("docker")
            .args(["logs", "-f", name])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut lines = std::io::BufReader::new(follower.stdout.take().expect("piped")).lines();
        let first = lines.next().transpose().map_err(|e| e.to_string())?;
        if first.as_deref() != Some("ready") {
            let _ = follower.kill();
            return Err(format!("the follower's first line: {first:?}"));
        }
        let signalled = Command::new("docker")
            .args(["kill", "-s", "USR1", name])
            .output()
            .map_err(|e| e.to_string())?;
        if !signalled.status.success() {
            let _ = follower.kill();
            return Err(format!(
                "docker kill -s USR1: {}",
                String::from_utf8_lossy(&signalled.stderr)
            ));
        }
        let numbers: Vec<usize> = (lines.map_while(Result::ok))
            .filter_map(|l| l.parse().ok())
            .collect();
        let _ = follower.wait();
        Ok(numbers)
    })
    .await
    .map_err(|e| e.to_string())??;
    wait_exit(ctx, &id, Duration::from_secs(60)).await?;
    let segments = std::fs::read_dir(local_copy_dir(&id)?)
        .map(|d| d.count())
        .unwrap_or(0);
    note!(
        "docker logs -f over {COUNT} lines with max-size=64k: {} lines seen ({segments} files kept now)",
        lines.len()
    );
    let seen: std::collections::HashSet<usize> = lines.iter().copied().collect();
    let missing: Vec<usize> = (1..=COUNT).filter(|n| !seen.contains(n)).take(5).collect();
    ensure(
        lines == (1..=COUNT).collect::<Vec<_>>(),
        format!(
            "the follower saw {} lines; first missing {missing:?}",
            lines.len()
        ),
    )
}

/// `docker logs --tail 5` on a 300 MB log kept unrotated (`max-size=-1`):
/// read from the end, with bounded memory. (Loki is unreachable for this
/// container, so the lines stay in the journal only.)
async fn tail_of_a_large_log(ctx: &Ctx) -> Outcome {
    const LINES: usize = 3_000_000;
    let name = "loki-e2e-large";
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/loki/api/v1/push");
    let text = "x".repeat(92);
    let id = run(
        ctx,
        name,
        &format!("yes {text} | head -n {} | cat -n", LINES),
        &[("loki-url", &url), ("max-size", "-1")],
    )
    .await?;
    wait_exit(ctx, &id, Duration::from_secs(300)).await?;
    let bytes = support::docker::dir_bytes(&local_copy_dir(&id)?);
    let pid = plugin_pid()?;
    support::docker::reset_peak_rss(pid);
    let before = support::docker::rss_mb(pid);
    let started = Instant::now();
    let (out, _) = docker_logs(&["--tail", "5", name])?;
    let took = started.elapsed();
    let peak = peak_rss_mb(pid);
    let numbers: Vec<usize> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()))
        .collect();
    note!(
        "docker logs --tail 5 of a {:.0} MB journal: {:.3} s; plugin RSS {before:.1} MB before, peak {peak:.1} MB meanwhile",
        bytes as f64 / 1e6,
        took.as_secs_f64()
    );
    ensure(
        numbers == (LINES - 4..=LINES).collect::<Vec<_>>(),
        format!("--tail 5 gave {out:?}"),
    )
}

/// A container without `loki-url` (it comes from `LOG_OPTS`) and with a
/// password from the `secrets` mount: its lines arrive with basic auth and
/// the defaults' label; the password shows in neither `docker plugin
/// inspect` nor `docker inspect`; the plugin runs without capabilities.
async fn credentials_and_least_privilege(ctx: &Ctx) -> Outcome {
    use base64::Engine as _;
    let name = "loki-e2e-creds";
    let config = HashMap::from([
        ("loki-username".to_string(), "e2e".to_string()),
        (
            "loki-password-file".to_string(),
            "/run/secrets/loki/password".to_string(),
        ),
    ]);
    let id = run_with_config(ctx, name, "echo with credentials", config).await?;
    wait_exit(ctx, &id, Duration::from_secs(10)).await?;
    let entries = wait_entries(
        &ctx.loki,
        &[("container_name", name), ("defaults", "log_opts")],
        1,
        Duration::from_secs(10),
    )
    .await?;
    ensure(
        texts(&entries) == ["with credentials"],
        format!("{:?}", texts(&entries)),
    )?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("e2e:{E2E_PASSWORD}"));
    let authorized = ctx.loki.requests().iter().any(|r| {
        r.streams
            .iter()
            .any(|s| s.get("container_name").map(String::as_str) == Some(name))
            && r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Basic {encoded}").as_str())
    });
    ensure(
        authorized,
        "no push with the password from the secrets mount",
    )?;
    for (what, text) in [
        (
            "docker plugin inspect",
            cli(&["plugin", "inspect", PLUGIN])?,
        ),
        ("docker inspect", cli(&["inspect", name])?),
    ] {
        ensure(
            !text.contains(E2E_PASSWORD) && !text.contains(&encoded),
            format!("{what} shows the password"),
        )?;
    }
    let pid = plugin_pid()?;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())? {
        let status =
            std::fs::read_to_string(task.map_err(|e| e.to_string())?.path().join("status"))
                .map_err(|e| e.to_string())?;
        for line in status.lines() {
            let bad = match line.split_once(':') {
                Some(("CapEff" | "CapPrm" | "CapBnd" | "CapInh" | "CapAmb", v)) => {
                    v.trim() != "0000000000000000"
                }
                Some(("NoNewPrivs", v)) => v.trim() != "1",
                _ => false,
            };
            ensure(!bad, format!("plugin thread of pid {pid}: {line}"))?;
        }
        threads += 1;
    }
    note!("plugin pid {pid}: {threads} threads, every capability set empty, no_new_privs");
    Ok(())
}

/// A bridge for the second dockerd, removed on drop. No traffic goes through
/// it: the test containers have no network.
const BRIDGE: &str = "loki-e2e0";

struct Bridge;

impl Bridge {
    fn create() -> Result<Bridge, String> {
        let ip = |args: &[&str]| -> Outcome {
            let out = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            ensure(
                out.status.success(),
                format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        let _ = ip(&["link", "del", BRIDGE]);
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["addr", "add", "10.213.213.1/24", "dev", BRIDGE])?;
        Ok(Bridge)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
    }
}

/// A dockerd whose default log driver is the plugin, like `daemon.json`'s
/// `"log-driver"` and `"log-opts"`.
async fn daemon_defaults(ctx: &Ctx) -> Outcome {
    let dir = tempfile::Builder::new()
        .prefix("loki-e2e-dockerd")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let socket = dir.path().join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let start = |extra: &[String]| -> Result<std::process::Child, String> {
        let log =
            std::fs::File::create(dir.path().join("dockerd.log")).map_err(|e| e.to_string())?;
        let mut command = engine_dockerd(ctx.engine)?;
        command
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("-H")
            .arg(&host)
            // Its own bridge: `--bridge=none` would delete the host daemon's docker0.
            .args(["--bridge", BRIDGE, "--iptables=false", "--ip-masq=false"])
            // Docker 29 enables ip6tables by default, even with --iptables=false,
            // and would add its chains to the host's ip6tables.
            .arg("--ip6tables=false")
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = command.spawn().map_err(|e| format!("dockerd: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while cli_at(Some(&host), &["version"]).is_err() {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(dir.path().join("dockerd.log")).unwrap_or_default();
                return Err(format!("second dockerd did not start:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(child)
    };
    let stop = |mut child: std::process::Child| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    };
    let plugin_dir = ctx.root.join("build/e2e-a");
    let _bridge = Bridge::create()?;
    let mut daemon = Some(start(&[])?);
    let result = async {
        cli_at(
            Some(&host),
            &["plugin", "create", PLUGIN, plugin_dir.to_str().unwrap()],
        )?;
        for setting in docker_api_mount_settings(&ctx.root, &socket.to_string_lossy())? {
            cli_at(Some(&host), &["plugin", "set", PLUGIN, &setting])?;
        }
        cli_at(Some(&host), &["plugin", "enable", PLUGIN])?;
        let image = Command::new("sh")
            .arg("-c")
            .arg(format!("docker save {IMAGE} | docker -H {host} load"))
            .output()
            .map_err(|e| e.to_string())?;
        ensure(
            image.status.success(),
            format!("image copy: {}", String::from_utf8_lossy(&image.stderr)),
        )?;
        stop(daemon.take().expect("daemon running"));
        daemon = Some(start(&[
            "--log-driver".into(),
            PLUGIN.into(),
            "--log-opt".into(),
            format!("loki-url={}", ctx.loki.url()),
            "--log-opt".into(),
            "loki-external-labels=job=daemon-default".into(),
        ])?);
        cli_at(
            Some(&host),
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--name",
                "loki-e2e-default",
                IMAGE,
                "echo",
                "shipped by default",
            ],
        )?;
        let entries = wait_entries(
            &ctx.loki,
            &[
                ("container_name", "loki-e2e-default"),
                ("job", "daemon-default"),
            ],
            1,
            Duration::from_secs(10),
        )
        .await?;
        ensure(
            texts(&entries) == ["shipped by default"],
            format!("{:?}", texts(&entries)),
        )?;
        let _ = cli_at(Some(&host), &["plugin", "disable", "-f", PLUGIN]);
        let _ = cli_at(Some(&host), &["plugin", "rm", "-f", PLUGIN]);
        Ok(())
    }
    .await;
    if let Some(daemon) = daemon {
        stop(daemon);
    }
    let _ = Command::new("umount").arg("-R").arg(dir.path()).output();
    result
}

/// A Java service's output, as `printf` lines of a busybox script: a
/// request log, a stack trace, a warning with one frame, a request log.
/// A container that fails twice and is restarted by its policy
/// (`on-failure:2`), each run writing a line of 1.7 MB (the numbers 1 to
/// 300,000, run together): three FIFOs of one container, one after the
/// other. Each run's line arrives whole (in pieces of `MAX_LINE_SIZE`, each
/// with the line's timestamp: pieces that are the same bytes would be one
/// entry in Loki), in order, and no run waits for the FIFO of the run
/// before it (the daemon closes it before it starts the next).
async fn restarted_by_policy(ctx: &Ctx) -> Outcome {
    let long: String = (1..=300_000).map(|n: u32| n.to_string()).collect();
    let name = "loki-e2e-restarts";
    let id = run_with_restarts(
        ctx,
        name,
        "seq 1 300000 | tr -d '\\n'; echo; echo run done; exit 1",
        HashMap::from([("loki-url".to_string(), ctx.loki.url())]),
        Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(2),
        }),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let info = ctx
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
        let state = info.state.clone().unwrap_or_default();
        if info.restart_count == Some(2)
            && state.running == Some(false)
            && !state.restarting.unwrap_or(false)
        {
            break state;
        }
        ensure(
            Instant::now() < deadline,
            format!("{name} still running or restarting after 60 s"),
        )?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pieces: Vec<&[u8]> = long.as_bytes().chunks(256_000).collect();
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.extend(pieces.iter().map(|p| p.to_vec()));
        expected.push(b"run done".to_vec());
    }
    let entries = wait_entries(
        &ctx.loki,
        &[("container_name", name)],
        expected.len(),
        Duration::from_secs(30),
    )
    .await?;
    let lines: Vec<Vec<u8>> = entries.iter().map(|e| e.line.clone()).collect();
    let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
    ensure(lines == expected, format!("entry sizes {sizes:?}"))?;
    // The last run, from its start to its exit: writing 2 MB through the
    // FIFO takes milliseconds; waiting for an earlier FIFO would be 2 s.
    let ran = |at: &Option<String>| {
        at.as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| format!("no time in {at:?}"))
    };
    let took = ran(&state.finished_at)?.duration_since(ran(&state.started_at)?);
    ensure(
        took < jiff::SignedDuration::from_millis(1500),
        format!("the last run took {took:?}"),
    )
}

fn java_trace_script(tag: &str) -> String {
    [
        format!("2024-05-01 10:00:00.000 INFO  {tag} started"),
        format!("2024-05-01 10:00:01.000 ERROR {tag} request failed"),
        "java.lang.IllegalStateException: pool exhausted".to_string(),
        "\\tat com.example.Pool.take(Pool.java:42)".to_string(),
        "\\tat com.example.Handler.run(Handler.java:7)".to_string(),
        "Caused by: java.net.SocketTimeoutException: read timed out".to_string(),
        "\\t... 12 more".to_string(),
        format!("2024-05-01 10:00:02.000 WARN  {tag} retrying"),
        "\\tat com.example.Retry.again(Retry.java:3)".to_string(),
        format!("2024-05-01 10:00:03.000 INFO  {tag} done"),
    ]
    .iter()
    .map(|l| format!("printf '%b\\n' '{l}'"))
    .collect::<Vec<_>>()
    .join("; ")
}

/// Pipeline stages from a file the user keeps on the host (the secrets
/// mount): a Java stack trace arrives as one entry, relabelling renames and
/// drops labels, json fields become labels, and `docker logs` shows the
/// lines as the container wrote them.
async fn pipeline_stages(ctx: &Ctx) -> Outcome {
    let stages = "pipeline_stages:\n  - multiline:\n      firstline: '^\\d{4}-\\d{2}-\\d{2}'\n      max_wait_time: 1s\n  - regex:\n      expression: '^\\S+ \\S+ (?P<level>[A-Z]+)'\n  - labels:\n      level:\n";
    std::fs::write(secrets_dir().join("e2e-stages.yml"), stages)
        .map_err(|e| format!("writing the stage file: {e}"))?;
    // The upgrade scenarios before this one leave the plugin running with
    // the manifest's default source for the secrets mount, though `docker
    // plugin inspect` still shows the one set (README: Lifecycle notes);
    // setting it again, as a user would, brings it back.
    cli(&["plugin", "disable", "-f", PLUGIN])?;
    cli(&[
        "plugin",
        "set",
        PLUGIN,
        &format!("secrets.source={}", secrets_dir().display()),
    ])?;
    cli(&["plugin", "enable", "--timeout", "0", PLUGIN])?;
    let relabel = "- source_labels: [container_name]\n  target_label: app\n- action: labeldrop\n  regex: host|image_name\n";
    let name = "loki-e2e-java";
    let script = format!("{}; sleep 3", java_trace_script("api"));
    let id = run(
        ctx,
        name,
        &script,
        &[
            ("loki-pipeline-stage-file", "e2e-stages.yml"),
            ("loki-relabel-config", relabel),
            ("loki-batch-wait", "200ms"),
        ],
    )
    .await?;
    wait_exit(ctx, &id, Duration::from_secs(20)).await?;
    let entries = wait_entries(&ctx.loki, &[("app", name)], 4, Duration::from_secs(10)).await?;
    let got = texts(&entries);
    ensure(got.len() == 4, format!("4 entries, got {got:#?}"))?;
    let trace = got
        .iter()
        .find(|t| t.contains("ERROR api request failed"))
        .ok_or_else(|| format!("no ERROR entry in {got:#?}"))?;
    ensure(
        trace.lines().count() == 6 && trace.ends_with("\t... 12 more"),
        format!("the stack trace is one entry: {trace:?}"),
    )?;
    let errors = ctx
        .loki
        .entries_matching(&[("app", name), ("level", "ERROR")]);
    ensure(
        errors.len() == 1,
        format!("one ERROR entry, got {}", errors.len()),
    )?;
    let streams = ctx.loki.streams();
    let labels: Vec<_> = streams
        .keys()
        .filter(|l| l.get("app").map(String::as_str) == Some(name))
        .collect();
    ensure(
        labels.iter().all(|l| {
            !l.contains_key("host")
                && !l.contains_key("image_name")
                && l.contains_key("container_name")
        }),
        format!("relabelled: {labels:?}"),
    )?;
    let (out, _) = docker_logs(&[name])?;
    ensure(
        out.lines().count() == 10 && out.contains("\tat com.example.Pool.take"),
        format!("docker logs shows the 10 raw lines: {out:?}"),
    )?;
    note!(
        "stage file from the secrets mount: a 6-line stack trace in 1 entry; docker logs: 10 raw lines"
    );
    Ok(())
}

/// `docker stop -t 1` of a container with a multiline pipeline that floods
/// while Loki is unreachable: the FIFO is still read, the stop is fast.
async fn multiline_loki_down(ctx: &Ctx) -> Outcome {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed_port}/loki/api/v1/push");
    let id = run(
        ctx,
        "loki-e2e-multiline-down",
        "while :; do echo '2024-05-01 ERROR boom'; echo '  at a.b(C.java:1)'; echo '  at d.e(F.java:2)'; done",
        &[
            ("loki-url", &url),
            ("loki-pipeline-stages", "[{multiline: {firstline: '^\\d{4}', max_wait_time: 1h}}]"),
        ],
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure(is_running(ctx, &id).await?, "the container stopped running")?;
    let timed = Instant::now();
    ctx.docker
        .stop_container(
            &id,
            Some(StopContainerOptions {
                t: Some(1),
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| format!("docker stop: {e}"))?;
    let stop = timed.elapsed();
    note!("multiline on, Loki down: docker stop -t 1 {stop:.2?}");
    ensure(
        stop < Duration::from_secs(2),
        format!("docker stop took {stop:?}"),
    )
}

/// The plugin is killed while a container is in the middle of a stack
/// trace; Docker restarts it, the container goes on: Loki gets the same
/// entries as without the crash (each block whole, once).
async fn multiline_kill(ctx: &Ctx) -> Outcome {
    let name = "loki-e2e-multiline-kill";
    let mut script = String::new();
    for r in 0..3 {
        script.push_str(&java_trace_script(&format!("r{r}")));
        script.push_str("; sleep 1.5; ");
    }
    // Half of a trace, a pause for the kill, the other half.
    script.push_str("printf '2024-05-01 10:00:01.000 ERROR r3 request failed\\njava.lang.IllegalStateException: pool exhausted\\n'; sleep 4; ");
    script.push_str(
        "printf '\\tat com.example.Pool.take(Pool.java:42)\\n\\t... 12 more\\n'; sleep 1.5; ",
    );
    script.push_str(&java_trace_script("r4"));
    script.push_str("; sleep 2");
    let id = run(
        ctx,
        name,
        &script,
        &[
            ("loki-batch-wait", "100ms"),
            // Longer than the pause in the middle of the block.
            (
                "loki-pipeline-stages",
                "[{multiline: {firstline: '^\\d{4}-', max_wait_time: 10s}}]",
            ),
        ],
    )
    .await?;
    // Three requests of four entries each are in (the third's last one once
    // the fourth began): the fourth is half written.
    wait_entries(
        &ctx.loki,
        &[("container_name", name)],
        12,
        Duration::from_secs(20),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = plugin_pid()?;
    // SAFETY: killing the plugin process, as a crash would.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_exit(ctx, &id, Duration::from_secs(60)).await?;
    let expected = [
        "2024-05-01 10:00:01.000 ERROR r3 request failed\njava.lang.IllegalStateException: pool exhausted\n\tat com.example.Pool.take(Pool.java:42)\n\t... 12 more",
    ];
    let entries = wait_entries(
        &ctx.loki,
        &[("container_name", name)],
        17,
        Duration::from_secs(30),
    )
    .await?;
    let mut distinct: Vec<String> = texts(&entries);
    distinct.sort();
    distinct.dedup();
    ensure(
        distinct.len() == 17,
        format!("17 distinct entries (4 per request, the half-written block once): {distinct:#?}"),
    )?;
    ensure(
        distinct.iter().any(|t| t == expected[0]),
        format!("the block cut by the kill arrived whole: {distinct:#?}"),
    )?;
    ensure(
        !distinct.iter().any(|t| {
            t.starts_with("\tat com.example.Pool.take")
                || t == "java.lang.IllegalStateException: pool exhausted"
        }),
        "no piece of the block arrived alone",
    )?;
    note!(
        "plugin killed in the middle of a stack trace: the block arrived whole, 17 distinct entries as without the crash"
    );
    Ok(())
}
