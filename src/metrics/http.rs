//! The HTTP side of the metrics endpoint: `GET /metrics` on a TCP address.
//!
//! It must never cost the plugin more than a scrape does: connections
//! served at once are bounded, each serves one request whose headers must
//! arrive within a time limit, the whole exchange has a time limit,
//! request bodies are never read, and headers must fit in a small buffer.
//! When every slot is taken, a new connection whose whole request arrives
//! within 100 ms (a scraper sends it at once) takes the slot of the oldest
//! connection whose request has not arrived, which is closed: idle or
//! half-open connections cannot keep scrapes out. Other new connections
//! are closed unread (at once past 64 of them waiting).

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
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::watch;
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
    // Dropped on return: every connection still open is closed.
    let mut connections = JoinSet::new();
    let slots = Arc::new(Slots::default());
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
        let slot = Arc::new(Slot::new(has_request_head(&stream)));
        let claimed = slots.claim(&slot, limits.connections);
        if !claimed && slots.waiting.load(Ordering::Acquire) >= MAX_WAITING {
            if let Some(suppressed) = busy_log.allow(Instant::now()) {
                tracing::warn!(
                    max_connections = limits.connections,
                    similar_suppressed = suppressed,
                    "metrics connection closed: all slots taken"
                );
            }
            drop(stream);
            continue;
        }
        let (registry, slots) = (registry.clone(), slots.clone());
        connections.spawn(async move {
            if !claimed {
                // Every slot is taken: a connection whose request comes
                // within a moment may still take an idle one's.
                slots.waiting.fetch_add(1, Ordering::AcqRel);
                let arrived = request_arrives(&stream, WAIT_FOR_REQUEST).await;
                slots.waiting.fetch_sub(1, Ordering::AcqRel);
                slot.requested.store(arrived, Ordering::Release);
                if !arrived || !slots.claim(&slot, limits.connections) {
                    return;
                }
            }
            let _finished = Finished(&slot);
            tokio::select! {
                _ = slot.evict.notified() => {}
                _ = tokio::time::timeout(
                    limits.connection_timeout,
                    serve_connection(stream, registry, limits.header_timeout, &slot.requested),
                ) => {}
            }
        });
    }
}

/// New connections that wait for their request while every slot is taken.
const MAX_WAITING: usize = 64;
/// How long such a connection's request may take to arrive.
const WAIT_FOR_REQUEST: Duration = Duration::from_millis(100);

/// The connections being served, oldest first.
#[derive(Default)]
struct Slots {
    served: std::sync::Mutex<VecDeque<Arc<Slot>>>,
    /// Connections waiting for their request to claim a slot.
    waiting: std::sync::atomic::AtomicUsize,
}

impl Slots {
    /// Takes a slot for `slot`: a free one, or, when `slot`'s request has
    /// arrived, the one of the oldest connection still waiting for its
    /// request (which is closed). False when there is none.
    fn claim(&self, slot: &Arc<Slot>, limit: usize) -> bool {
        let mut served = self.served.lock().expect("metrics slots poisoned");
        served.retain(|s| !s.finished.load(Ordering::Acquire));
        if served.len() >= limit {
            if !slot.requested.load(Ordering::Acquire) {
                return false;
            }
            let Some(idle) = served
                .iter()
                .position(|s| !s.requested.load(Ordering::Acquire))
            else {
                return false;
            };
            if let Some(idle) = served.remove(idle) {
                idle.evict.notify_one();
            }
        }
        served.push_back(slot.clone());
        true
    }
}

/// One connection: whether its request arrived, and how to close it.
struct Slot {
    requested: AtomicBool,
    evict: tokio::sync::Notify,
    finished: AtomicBool,
}

impl Slot {
    fn new(requested: bool) -> Slot {
        Slot {
            requested: AtomicBool::new(requested),
            evict: tokio::sync::Notify::new(),
            finished: AtomicBool::new(false),
        }
    }
}

/// Marks a slot free when its connection's task ends (or is dropped).
struct Finished<'a>(&'a Slot);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
    }
}

/// Whether the whole request head arrives on `stream` within `limit`.
async fn request_arrives(stream: &TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if has_request_head(stream) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a whole request head (up to the blank line) is waiting on a
/// new connection, read without taking it from the socket.
fn has_request_head(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; MAX_READ_BUFFER];
    // SAFETY: recv into a buffer we own, of its length; MSG_PEEK leaves
    // the bytes in the socket and MSG_DONTWAIT never blocks.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0 && buf[..n as usize].windows(4).any(|w| w == b"\r\n\r\n")
}

async fn serve_connection(
    stream: TcpStream,
    registry: Arc<Registry>,
    header_timeout: Duration,
    requested: &AtomicBool,
) {
    let service = service_fn(move |request| {
        requested.store(true, Ordering::Release);
        let registry = registry.clone();
        async move { Ok::<_, Infallible>(answer(request, registry).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .max_buf_size(MAX_READ_BUFFER);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    // hyper's header timeout starts with the first byte: a connection
    // that sends nothing is closed here.
    let ended = tokio::select! {
        ended = &mut connection => Some(ended),
        _ = tokio::time::sleep(header_timeout) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None if !requested.load(Ordering::Acquire) => return,
        None => connection.await,
    };
    if let Err(err) = ended {
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
