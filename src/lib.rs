//! A Docker log-driver plugin that ships container logs to Grafana Loki.
//!
//! A log line travels through one module per stage:
//!
//! ```text
//!  dockerd ──HTTP/unix socket──▶ server       StartLogging / StopLogging / Capabilities
//!                                    │
//!                                    ▼
//!                                 driver      one entry per FIFO: options, labels,
//!                                    │        reader task, endpoint; re-attach state
//!   config: options, template, labels┤        (log-opts → validated config → label sets)
//!                                    ▼
//!  dockerd ──FIFO──▶ fifo ──▶ assemble ─┬──▶ buffer ──▶ batch ──▶ loki ──HTTP──▶ Loki
//!            frames   length-   partial   │    bounded    one       protobuf +
//!                     prefixed  joining   │    per-       batcher   snappy push,
//!                     protobuf            │    container  per       retry with
//!                                         │    queue,     endpoint  backoff
//!                                         │    drop-oldest
//!                                         └──▶ local_copy ◀── ReadLogs (`docker logs`)
//!                                              rotated, compressed files per container
//! ```
//!
//! The FIFO reader never waits for the network: it only appends to its
//! container's bounded [`buffer::ContainerBuffer`]. When Loki is slow or down,
//! the buffer drops its oldest lines (counted) instead of blocking the daemon.

pub mod assemble;
pub mod batch;
pub mod buffer;
pub mod config;
pub mod docker_api;
pub mod driver;
pub mod fifo;
pub mod frame;
pub mod line;
pub mod local_copy;
pub mod loki;
pub mod proto;
pub mod protocol;
pub mod server;
pub mod tls_files;

/// The name and version sent as `User-Agent` and printed by `--version`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Serves the plugin on `listener` until `shutdown` completes, then flushes
/// buffered lines for the grace period and returns. `main` and the tests
/// both call this.
pub async fn run(
    listener: tokio::net::UnixListener,
    settings: config::settings::Settings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let driver = driver::Driver::new(settings);
    driver.reattach().await;
    driver.start_store_gc();
    server::serve(listener, driver.clone(), shutdown).await;
    driver.shutdown().await;
}
