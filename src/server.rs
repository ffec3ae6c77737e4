//! The plugin's HTTP server: the LogDriver protocol on a unix socket, as the
//! daemon speaks it (see `shared/docs/logdriver-protocol.md`).
//!
//! Every answer is a JSON object; errors carry `{"Err":"..."}`. Validation
//! errors are answered with status 200 so the daemon shows the message as is
//! (`error creating logger: <Err>`); bodies that cannot be parsed get 400.
//!
//! No client of the socket can exhaust it: each connection serves one
//! request, whose headers must arrive within [`HEADER_TIMEOUT`] of accept
//! and whose body within [`BODY_TIMEOUT`] more; connections served at once,
//! connections waiting, and bytes of request bodies held are all bounded
//! (see the constants). Failed accepts (the fd limit) back off and are
//! logged at a bounded rate. Response bodies, such as `docker logs -f`, are
//! never cut.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};

use crate::driver::Driver;
use crate::observe::Throttle;
use crate::protocol::{ReadLogsRequest, StartLoggingRequest, StopLoggingRequest};

// Limits of the plugin API. The daemon's requests are small and few: a
// StartLogging body is 1-10 KiB (more with a large environment or many
// labels), the others are smaller. Anything far beyond that is refused
// before it can cost memory or a task for long.

/// Connections served at once. Beyond this, new connections wait (without
/// being read) for a free slot within their header time limit.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections that may wait for a slot; past this they get 503 at once.
pub const MAX_WAITING_CONNECTIONS: usize = 1024;
/// From accept to the end of the request headers, waiting for a slot
/// included. Each connection serves one request (no keep-alive), so an idle
/// daemon connection is never cut: there is none.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole request body must arrive within this, once the headers have.
/// Response bodies (`docker logs -f`) have no time limit.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
pub use crate::protocol::MAX_REQUEST_BODY;
/// Bodies up to this size are read by every connection at once; a larger
/// body must first take one of [`MAX_LARGE_BODIES`] slots. Memory for bodies
/// is thus bounded by 128 × 64 KiB + 4 × 4 MiB = 24 MiB.
pub const SMALL_BODY: usize = 64 << 10;
/// Large bodies being read at once.
pub const MAX_LARGE_BODIES: usize = 4;
/// hyper's read buffer per connection (headers must fit in it).
const MAX_READ_BUFFER: usize = 64 << 10;
/// Longest and shortest wait after a failed accept (EMFILE, ENFILE, ENOMEM).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(1);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The body of a ReadLogs answer: FIFO-framed entries as the store reads
/// them. Dropped when the client goes away, which stops the reader.
pub struct LogStream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for LogStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

type Body = Either<Full<Bytes>, LogStream>;

/// Answers Capabilities: `docker logs` is served from the local copy.
fn capabilities() -> serde_json::Value {
    serde_json::json!({ "Cap": { "ReadLogs": true } })
}

/// Failed accepts: at the fd limit, accept fails at once for as long as
/// the limit lasts, so each failure waits, 1 ms doubling to 1 s, and the
/// failures are logged once per interval with a count.
#[derive(Debug, Default)]
struct AcceptBackoff {
    delay: Option<Duration>,
    failures: u64,
    log: Throttle,
}

impl AcceptBackoff {
    /// Records a failure; returns how long to wait before accepting again.
    fn failed(&mut self, err: &std::io::Error, now: Instant) -> Duration {
        let delay = self.delay.map_or(ACCEPT_BACKOFF_MIN, |d| {
            d.saturating_mul(2).min(ACCEPT_BACKOFF_MAX)
        });
        self.delay = Some(delay);
        self.failures = self.failures.saturating_add(1);
        if let Some(suppressed) = self.log.allow(now) {
            tracing::warn!(error = %err, retry_in = ?delay, similar_suppressed = suppressed,
                "accepting a plugin API connection failed");
        }
        delay
    }

    /// Records a success: the next failure starts over at the shortest wait.
    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failures = self.failures,
                "accepting plugin API connections again"
            );
        }
        self.delay = None;
        self.failures = 0;
        self.log = Throttle::default();
    }
}

/// What bounds the server's memory and tasks, shared by its connections.
struct Limits {
    connections: Arc<Semaphore>,
    waiting: AtomicUsize,
    large_bodies: Semaphore,
    busy_log: std::sync::Mutex<Throttle>,
}

/// Serves the protocol on `listener` until `shutdown` completes; then stops
/// accepting and returns. Connections already open finish their request.
pub async fn serve(
    listener: UnixListener,
    driver: Arc<Driver>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let limits = Arc::new(Limits {
        connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        waiting: AtomicUsize::new(0),
        large_bodies: Semaphore::new(MAX_LARGE_BODIES),
        busy_log: std::sync::Mutex::new(Throttle::default()),
    });
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(err) => {
                    let delay = backoff.failed(&err, Instant::now());
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            },
        };
        let accepted_at = Instant::now();
        let permit = match limits.connections.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if limits.waiting.load(Ordering::Acquire) >= MAX_WAITING_CONNECTIONS => {
                refuse_busy(&stream, &limits);
                continue;
            }
            Err(_) => None,
        };
        if permit.is_none() {
            limits.waiting.fetch_add(1, Ordering::AcqRel);
        }
        let (driver, limits) = (driver.clone(), limits.clone());
        tokio::spawn(async move {
            let permit = match permit {
                Some(permit) => permit,
                None => {
                    let waited = tokio::time::timeout(
                        HEADER_TIMEOUT,
                        limits.connections.clone().acquire_owned(),
                    )
                    .await;
                    limits.waiting.fetch_sub(1, Ordering::AcqRel);
                    match waited {
                        Ok(Ok(permit)) => permit,
                        _ => return refuse_busy(&stream, &limits),
                    }
                }
            };
            let _permit = permit;
            // The header deadline counts from accept, so connections that
            // waited for a slot cannot hold it for another full period.
            let left = HEADER_TIMEOUT.saturating_sub(accepted_at.elapsed());
            if left.is_zero() {
                return refuse_busy(&stream, &limits);
            }
            serve_connection(stream, driver, limits, left).await;
        });
    }
}

async fn serve_connection(
    stream: UnixStream,
    driver: Arc<Driver>,
    limits: Arc<Limits>,
    header_timeout: Duration,
) {
    let service = service_fn(move |req| {
        let (driver, limits) = (driver.clone(), limits.clone());
        async move { Ok::<_, Infallible>(handle(req, &driver, &limits).await) }
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
        tracing::debug!(error = %err, "plugin API connection ended with an error");
    }
}

/// Answers 503 without reading the request, then closes. Used when every
/// slot stays taken; never waits (the answer fits in the socket buffer).
fn refuse_busy(stream: &UnixStream, limits: &Limits) {
    let body = serde_json::json!({ "Err": format!(
        "the log plugin is busy: {MAX_CONNECTIONS} API connections are being served; try again"
    ) })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
    let allowed = limits
        .busy_log
        .lock()
        .expect("throttle lock poisoned")
        .allow(Instant::now());
    if let Some(suppressed) = allowed {
        tracing::warn!(
            max_connections = MAX_CONNECTIONS,
            similar_suppressed = suppressed,
            "plugin API connection refused: all slots taken"
        );
    }
}

/// Binds the unix socket, creating its directory and replacing a stale socket
/// left by an earlier run.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    UnixListener::bind(path)
}

/// Why a request body was not read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Read(hyper::Error),
    Closed,
}

/// Reads a request body of at most [`MAX_REQUEST_BODY`] bytes; past
/// [`SMALL_BODY`] bytes it first takes a large-body slot.
async fn read_body(mut body: Incoming, large_bodies: &Semaphore) -> Result<Bytes, BodyError> {
    if body
        .size_hint()
        .exact()
        .is_some_and(|len| len > MAX_REQUEST_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut collected = BytesMut::new();
    let mut large_slot = None;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
            continue;
        };
        let total = collected.len().saturating_add(data.len());
        if total > MAX_REQUEST_BODY {
            return Err(BodyError::TooLarge);
        }
        if total > SMALL_BODY && large_slot.is_none() {
            large_slot = Some(
                large_bodies
                    .acquire()
                    .await
                    .map_err(|_| BodyError::Closed)?,
            );
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

async fn handle(req: Request<Incoming>, driver: &Arc<Driver>, limits: &Limits) -> Response<Body> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path}: only POST is supported"),
        );
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BODY as u64) {
        return too_large(&path);
    }
    let read = tokio::time::timeout(
        BODY_TIMEOUT,
        read_body(req.into_body(), &limits.large_bodies),
    );
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(&path),
        Ok(Err(BodyError::Read(err))) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{path}: reading the request body: {err}"),
            );
        }
        Ok(Err(BodyError::Closed)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{path}: the plugin is shutting down"),
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "{path}: the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            );
        }
    };
    match path.as_str() {
        "/Plugin.Activate" => ok(serde_json::json!({ "Implements": ["LogDriver"] })),
        "/LogDriver.Capabilities" => ok(capabilities()),
        "/LogDriver.StartLogging" => match serde_json::from_slice::<StartLoggingRequest>(&body) {
            Ok(request) => match driver.start_logging(request).await {
                Ok(()) => ok(serde_json::json!({})),
                Err(err) => error(StatusCode::OK, err.to_string()),
            },
            Err(err) => unparseable(&path, &err),
        },
        "/LogDriver.StopLogging" => match serde_json::from_slice::<StopLoggingRequest>(&body) {
            Ok(request) => {
                driver.stop_logging(&request.file);
                ok(serde_json::json!({}))
            }
            Err(err) => unparseable(&path, &err),
        },
        "/LogDriver.ReadLogs" => match serde_json::from_slice::<ReadLogsRequest>(&body) {
            Ok(request) => match driver.read_logs(request) {
                Ok(lines) => Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "application/x-json-stream")
                    .body(Either::Right(LogStream(lines)))
                    .expect("static response parts are valid"),
                Err(message) => error(StatusCode::NOT_FOUND, message),
            },
            Err(err) => unparseable(&path, &err),
        },
        _ => error(StatusCode::NOT_FOUND, format!("unknown endpoint {path}")),
    }
}

fn too_large(path: &str) -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{path}: the request body is larger than {MAX_REQUEST_BODY} bytes"),
    )
}

fn unparseable(path: &str, err: &serde_json::Error) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        format!("{path}: cannot parse the request body: {err}"),
    )
}

fn ok(value: serde_json::Value) -> Response<Body> {
    json_response(StatusCode::OK, &value)
}

fn error(status: StatusCode, message: String) -> Response<Body> {
    json_response(status, &serde_json::json!({ "Err": message }))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/vnd.docker.plugins.v1+json")
        .body(Either::Left(Full::new(Bytes::from(value.to_string()))))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_have_the_daemons_shape() {
        assert_eq!(capabilities()["Cap"]["ReadLogs"], serde_json::json!(true));
    }

    #[test]
    fn accept_failures_back_off_exponentially_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let err = std::io::Error::from_raw_os_error(libc::EMFILE);
        let now = Instant::now();
        let delays: Vec<Duration> = (0..14).map(|_| backoff.failed(&err, now)).collect();
        assert_eq!(delays[0], Duration::from_millis(1));
        assert_eq!(delays[1], Duration::from_millis(2));
        assert_eq!(delays[9], Duration::from_millis(512));
        assert_eq!(delays[10], ACCEPT_BACKOFF_MAX);
        assert_eq!(delays[13], ACCEPT_BACKOFF_MAX);
        assert_eq!(backoff.failures, 14);
        assert_eq!(
            backoff.log.suppressed(),
            13,
            "one line logged, 13 held back"
        );
        backoff.succeeded();
        assert_eq!(backoff.failed(&err, now), Duration::from_millis(1));
        // A day of failures stays at the longest wait, never overflows.
        for _ in 0..100_000 {
            backoff.failed(&err, now);
        }
        assert_eq!(backoff.delay, Some(ACCEPT_BACKOFF_MAX));
    }

    #[test]
    fn the_limits_bound_request_memory() {
        let bodies =
            MAX_CONNECTIONS * (SMALL_BODY + MAX_READ_BUFFER) + MAX_LARGE_BODIES * MAX_REQUEST_BODY;
        assert!(bodies <= 40 << 20, "{bodies} bytes");
    }
}
