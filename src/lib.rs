//! A Docker log-driver plugin that ships container logs to Grafana Loki.
//!
//! A log line travels through one module per stage; dependencies point
//! down the page:
//!
//! ```text
//!  dockerd ─HTTP─▶ server ─▶ driver         requests; wires the stages for each container
//!                               │            (attachments: FIFOs to find again after a restart)
//!  dockerd ─FIFO─▶ ingest ─▶ journal ──────────────▶ ReadLogs (`docker logs`: raw lines)
//!                  tee, frame,  │ memory tail, segments on disk,
//!                  assemble     │ delivery cursor, retention
//!                               ▼
//!                             feed ─▶ process: relabel (once) + pipeline stages (per entry)
//!                               │      (pure: entries in, entries out, counted)
//!                               ▼ batches: entries, labels, metadata, tenant
//!                             ship: endpoint ─▶ lanes ─▶ pushes ─▶ client (trait) ─▶ Loki
//!
//!  config: one table of log-opts (table), their parsing, settings, templates, labels
//!  observe: counters per container and endpoint (received = sent + dropped +
//!           filtered + pending), read by log summaries and metrics
//!  metrics: the Prometheus endpoint (METRICS_ADDR), with the stages' own series
//!  files: bounded, non-blocking reads of files users name (TLS, secrets, stage files)
//!  dryrun: `loki-logdriver pipeline`, the stages over entries on stdin
//!  bottom: line (plain types), frame (FIFO framing), assemble (partials), protocol, proto
//! ```
//!
//! The FIFO reader never waits for the network, the disk or a stage: lines
//! go to memory at once and to the journal through a writer thread; bytes
//! leave the FIFO once on disk, so a killed plugin loses nothing. Delivery
//! reads from memory, or from the journal when lines had to leave memory,
//! runs the container's stages over them and never moves the journal's
//! cursor past a line a stage still holds.

pub mod assemble;
pub mod attachments;
pub mod config;
pub mod docker_api;
pub mod driver;
pub mod dryrun;
pub mod feed;
pub mod files;
pub mod frame;
pub mod ingest;
pub mod journal;
pub mod line;
pub mod metrics;
pub mod observe;
pub mod privileges;
pub mod process;
pub mod proto;
pub mod protocol;
pub mod server;
pub mod ship;

/// The name and version sent as `User-Agent` and printed by `--version`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Serves the plugin on `listener` until `shutdown` completes, then delivers
/// what is pending for the grace period and returns. `main` and the tests
/// both call this.
pub async fn run(
    listener: tokio::net::UnixListener,
    settings: config::settings::Settings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let metrics_addr = settings.metrics_addr;
    let driver = driver::Driver::new(settings);
    let metrics = match metrics_addr {
        Some(addr) => start_metrics(addr, &driver).await,
        None => None,
    };
    // Re-attaching runs beside the server: dockerd is answered at once.
    driver.start();
    server::serve(listener, driver.clone(), shutdown).await;
    driver.shutdown().await;
    if let Some(metrics) = metrics {
        metrics.stop().await;
    }
}

/// Serves the metrics on `addr`. Logging does not depend on metrics: when
/// the address cannot be bound, the plugin runs without them.
async fn start_metrics(
    addr: std::net::SocketAddr,
    driver: &std::sync::Arc<driver::Driver>,
) -> Option<metrics::MetricsServer> {
    let registry = metrics::registry_with_stages(metrics::DriverCollector::new(driver.clone()));
    match metrics::MetricsServer::start(addr, registry, metrics::Limits::default()).await {
        Ok(server) => {
            tracing::info!(addr = %server.addr(), "serving Prometheus metrics on /metrics");
            Some(server)
        }
        Err(err) => {
            tracing::error!(addr = %addr, error = %err, "cannot serve metrics (METRICS_ADDR); the plugin runs without them");
            None
        }
    }
}
