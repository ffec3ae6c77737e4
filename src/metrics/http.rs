//! The HTTP side of the metrics endpoint: `GET /metrics` on a TCP address.
//!
//! It must never cost the plugin more than a scrape does: connections
//! served at once are bounded (more are closed at once, unread), each
//! serves one request whose headers must arrive within a time limit, the
//! whole exchange has a time limit, request bodies are never read, and
//! headers must fit in a small buffer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::observe::Throttle;

/// Bounds of the metrics server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed at once.
    pub connections: usize,
    /// From accept to the end of the request headers.
    pub header_timeout: Duration,
    /// From accept to the end of the answer.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 16,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// hyper's read buffer per connection: request headers must fit (its minimum).
const MAX_READ_BUFFER: usize = 8 << 10;

/// A running metrics server; [`MetricsServer::stop`] ends it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `addr` and answers scrapes with `registry`.
    pub async fn start(
        addr: SocketAddr,
        registry: Registry,
        limits: Limits,
    ) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Arc::new(registry), limits, stopped));
        Ok(MetricsServer { addr, stop, task })
    }

    /// The address it listens on (the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes the connections being served.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    // Dropped on return: every connection still open is closed.
    let mut connections = JoinSet::new();
    let mut busy_log = Throttle::default();
    let mut error_log = Throttle::default();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                if let Some(suppressed) = error_log.allow(Instant::now()) {
                    tracing::warn!(error = %err, similar_suppressed = suppressed, "accepting a metrics connection failed");
                }
                // At the fd limit accept fails at once: do not spin.
                tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if let Some(suppressed) = busy_log.allow(Instant::now()) {
                tracing::warn!(
                    max_connections = limits.connections,
                    similar_suppressed = suppressed,
                    "metrics connection closed: all slots taken"
                );
            }
            drop(stream);
            continue;
        };
        let registry = registry.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(
                limits.connection_timeout,
                serve_connection(stream, registry, limits.header_timeout),
            )
            .await;
        });
    }
}

async fn serve_connection(stream: TcpStream, registry: Arc<Registry>, header_timeout: Duration) {
    let service = service_fn(move |request| {
        let registry = registry.clone();
        async move { Ok::<_, Infallible>(answer(request, registry).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .max_buf_size(MAX_READ_BUFFER);
    if let Err(err) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %err, "metrics connection ended with an error");
    }
}

/// Answers one request; its body is never read.
async fn answer(request: Request<Incoming>, registry: Arc<Registry>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // A journal's size is read under its file lock: off the runtime.
    let text = match tokio::task::spawn_blocking(move || super::render(&registry)).await {
        Ok(Ok(text)) => text,
        _ => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics could not be collected\n",
            );
        }
    };
    // hyper sends no body in answer to HEAD.
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(super::CONTENT_TYPE),
    );
    response
}
