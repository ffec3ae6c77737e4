//! The plugin's HTTP server: the LogDriver protocol on a unix socket, as the
//! daemon speaks it (see `shared/docs/logdriver-protocol.md`).
//!
//! Every answer is a JSON object; errors carry `{"Err":"..."}`. Validation
//! errors are answered with status 200 so the daemon shows the message as is
//! (`error creating logger: <Err>`); bodies that cannot be parsed get 400.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::driver::Driver;
use crate::protocol::{ReadLogsRequest, StartLoggingRequest, StopLoggingRequest};

/// Largest request body accepted; a StartLogging request is about 1 KiB.
const MAX_REQUEST_BODY: usize = 1 << 20;

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

/// Serves the protocol on `listener` until `shutdown` completes; then stops
/// accepting and returns. Connections already open finish their request.
pub async fn serve(
    listener: UnixListener,
    driver: Arc<Driver>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a plugin API connection failed");
                    continue;
                }
            },
        };
        let driver = driver.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let driver = driver.clone();
                async move { Ok::<_, Infallible>(handle(req, &driver).await) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "plugin API connection ended with an error");
            }
        });
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

async fn handle(req: Request<Incoming>, driver: &Arc<Driver>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path}: only POST is supported"),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{path}: reading the request body: {err}"),
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
}
