//! The plugin process: reads its settings, binds the socket, runs until
//! SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use loki_logdriver::config::settings::Settings;

const DEFAULT_SOCKET: &str = "/run/docker/plugins/loki.sock";

const HELP: &str = "\
Docker log-driver plugin that ships container logs to Grafana Loki.

Usage: loki-logdriver [--socket PATH]
       loki-logdriver pipeline [--stages YAML | --stage-file FILE] [--relabel YAML] < entries
       loki-logdriver --version | --help

Options:
  --socket PATH   unix socket to serve the LogDriver protocol on
                  (default /run/docker/plugins/loki.sock)

Commands:
  pipeline        dry run of pipeline stages over entries on stdin: prints what would
                  be pushed to Loki (see loki-logdriver pipeline --help)

Environment (plugin settings, `docker plugin set loki NAME=VALUE`):
  LOG_LEVEL           error, warn, info (default), debug or trace
  TOTAL_BUFFER_SIZE   bound on lines held in memory, all containers (default 256m, 1m-64g)
  MAX_LINE_SIZE       longer lines become several entries (default 256000, 1k-16m)
  SHUTDOWN_GRACE      time to deliver pending lines on shutdown (default 5s, at most 5m)
  ENDPOINT_IDLE       an endpoint no container uses keeps its connections this long (default 60s, 1s-1h)
  DATA_DIR            attached FIFOs (to survive a crash) and the journals of delivery and docker logs
                      (default /run/docker/logging/.loki-logdriver; empty disables both)
  LOCAL_STORE_SIZE    bound on all journals together (default 2g, at most 1p)
  STORE_GC_INTERVAL   how often removed containers' journals are deleted (default 60s, 100ms-24h)
  LOCAL_STORE_MAX_AGE without the Docker API: journals of containers silent this long go (default 168h)
  DOCKER_SOCKET       Docker API socket, to list containers (default empty: no API access)
  LOG_OPTS            JSON object of log-opt defaults for every container (default none)
  SECRETS_DIR         where credential files named by log-opts must be (default /run/secrets/loki)
  METRICS_ADDR        IP:port of the Prometheus endpoint, GET /metrics (default empty: off)

Per-container options are log-opts (--log-opt loki-url=...); see the README.
";

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some("pipeline") {
        let stdin = std::io::stdin().lock();
        let code = loki_logdriver::dryrun::run(
            &all[1..],
            stdin,
            std::io::stdout().lock(),
            std::io::stderr().lock(),
        );
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let mut args = all.into_iter();
    let mut socket = PathBuf::from(DEFAULT_SOCKET);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!("{}", loki_logdriver::USER_AGENT.replace('/', " "));
                return ExitCode::SUCCESS;
            }
            "--socket" => match args.next() {
                Some(path) => socket = PathBuf::from(path),
                None => return usage_error("--socket needs a path"),
            },
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => return usage_error(&message),
    };
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn,rustls=warn"))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        // dockerd records a plugin's stdout at info level and its stderr at error level.
        .with_writer(std::io::stdout)
        .init();

    raise_fd_limit();
    tune_allocator();
    // Before any other thread: capabilities belong to a thread, and the
    // runtime's threads inherit the empty sets.
    match loki_logdriver::privileges::drop_all() {
        Ok(dropped) => tracing::info!(
            bounding_set_dropped = dropped.bounding,
            status = %dropped.status,
            "dropped all capabilities; no_new_privs set"
        ),
        Err(err) => tracing::warn!(error = %err, "could not drop capabilities"),
    }
    give_back_freed_memory();
    if !settings.log_opts.is_empty() {
        tracing::info!(options = ?settings.log_opts.names(), "log-opt defaults from LOG_OPTS");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Options (stage configs: YAML, regexes, templates) are checked on
        // these threads; their parsers are bounded in depth, and this
        // leaves room to spare. Untouched stack costs no memory.
        .thread_stack_size(8 << 20)
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = match loki_logdriver::server::bind(&socket) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(socket = %socket.display(), error = %err, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(socket = %socket.display(), version = loki_logdriver::USER_AGENT, "serving the LogDriver protocol");
        loki_logdriver::run(listener, settings, shutdown_signal()).await;
        let _ = std::fs::remove_file(&socket);
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Raises the soft limit on open files to the hard limit: every container
/// costs a FIFO and a journal segment, and the plugin serves them all.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && limit.rlim_cur < limit.rlim_max
            && {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
            }
    };
    if raised {
        tracing::info!(open_files = limit.rlim_cur, "raised the open-file limit");
    }
}

/// glibc's malloc gives threads arenas of their own (up to 8 per core) and
/// keeps what is freed in them, and after a large block is freed it serves
/// blocks up to that size from the arenas instead of `mmap`: after one
/// burst, a process whose live data is a few MB keeps tens of MB. One
/// arena (with two, each kept its own free blocks: the 200,000-line run
/// peaked 1-5 MB higher more often), and fixed thresholds so large blocks
/// (push bodies) go back to the system when freed and free memory at the
/// arena's top is returned.
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes malloc's parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * 1024);
    }
}

/// What a burst freed stays inside malloc, scattered between blocks still
/// in use, where the trim threshold does not reach it: measured, the
/// plugin kept 14 MB after one 200,000-line run and 21 MB after two,
/// for a few MB of live data. Every 5 s, when more than 2 MiB is free
/// inside malloc, `malloc_trim` gives its pages back (on its own thread:
/// it never delays a FIFO read).
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    let _ = std::thread::Builder::new()
        .name("malloc-trim".into())
        .stack_size(64 << 10)
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                loki_logdriver::ship::encode::release_spare_buffers();
                // SAFETY: both only read and change malloc's own state.
                unsafe {
                    if libc::mallinfo2().fordblks > 2 << 20 {
                        libc::malloc_trim(0);
                    }
                }
            }
        });
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("loki-logdriver: {message}\n\n{HELP}");
    ExitCode::from(2)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
