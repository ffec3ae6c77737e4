//! The LogDriver protocol: HTTP/1.1 on a unix socket, as the daemon speaks it
//! (see `shared/docs/logdriver-protocol.md`).
//!
//! Every answer is a JSON object; errors carry `{"Err":"..."}`. Validation
//! errors are answered with status 200 so the daemon shows the message as is
//! (`error creating logger: <Err>`); bodies that cannot be parsed get 400.

use std::collections::HashMap;
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
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::driver::Driver;

/// Largest request body accepted; a StartLogging request is about 1 KiB.
const MAX_REQUEST_BODY: usize = 1 << 20;

/// `Info` of StartLogging and ReadLogs: what the daemon says about a
/// container. Go marshals nil collections as `null`, hence the `Option`s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ContainerInfo {
    /// The log-opts, unfiltered (`--log-opt` or the daemon's `log-opts`).
    #[serde(rename = "Config", default)]
    pub config: Option<HashMap<String, String>>,
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
    /// With a leading `/`, as the daemon stores it.
    #[serde(rename = "ContainerName", default)]
    pub container_name: String,
    #[serde(rename = "ContainerEntrypoint", default)]
    pub entrypoint: String,
    #[serde(rename = "ContainerArgs", default)]
    pub args: Option<Vec<String>>,
    #[serde(rename = "ContainerImageID", default)]
    pub image_id: String,
    /// The image as given to `docker run`.
    #[serde(rename = "ContainerImageName", default)]
    pub image_name: String,
    #[serde(rename = "ContainerCreated", default)]
    pub created: String,
    /// `KEY=VALUE` strings; may hold secrets, so never logged.
    #[serde(rename = "ContainerEnv", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "ContainerLabels", default)]
    pub labels: Option<HashMap<String, String>>,
    #[serde(rename = "LogPath", default)]
    pub log_path: String,
    #[serde(rename = "DaemonName", default)]
    pub daemon_name: String,
}

impl ContainerInfo {
    /// The container name without the daemon's leading `/`.
    pub fn name(&self) -> &str {
        self.container_name
            .strip_prefix('/')
            .unwrap_or(&self.container_name)
    }

    /// The first 12 characters of the container ID, for log lines.
    pub fn short_id(&self) -> &str {
        self.container_id.get(..12).unwrap_or(&self.container_id)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StartLoggingRequest {
    #[serde(rename = "File")]
    pub file: String,
    #[serde(rename = "Info")]
    pub info: ContainerInfo,
}

/// ReadLogs: the daemon sends the logger's `Info` and `Config` (not
/// `ReadConfig`, as Docker's docs say).
#[derive(Debug, Clone, Deserialize)]
pub struct ReadLogsRequest {
    #[serde(rename = "Info")]
    pub info: ContainerInfo,
    #[serde(rename = "Config")]
    pub config: ReadConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReadConfig {
    /// RFC 3339; Go's zero time when unset.
    #[serde(rename = "Since", default)]
    pub since: String,
    #[serde(rename = "Until", default)]
    pub until: String,
    /// Lines from the end; -1 for all.
    #[serde(rename = "Tail", default = "all_lines")]
    pub tail: i64,
    #[serde(rename = "Follow", default)]
    pub follow: bool,
}

fn all_lines() -> i64 {
    -1
}

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

#[derive(Debug, Deserialize)]
struct StopLoggingRequest {
    #[serde(rename = "File")]
    file: String,
}

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
            Ok(request) => match driver.start_logging(request) {
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
    fn decodes_the_recorded_start_logging_body() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/start-logging.http");
        let body = raw
            .split("\r\n\r\n")
            .nth(1)
            .or_else(|| raw.split("\n\n").nth(1))
            .unwrap();
        let request: StartLoggingRequest = serde_json::from_str(body).unwrap();
        assert!(request.file.starts_with("/run/docker/logging/"));
        assert_eq!(request.info.name(), "fixture-app");
        assert_eq!(request.info.image_name, "localbusybox");
        assert_eq!(
            request.info.labels.unwrap()["com.docker.compose.service"],
            "web"
        );
        assert_eq!(request.info.config.unwrap()["labels"], "tier");
    }

    #[test]
    fn null_collections_are_accepted() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/start-logging-no-opts.http");
        let body = &raw[raw.find('{').unwrap()..];
        let request: StartLoggingRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.info.env, None);
        assert_eq!(request.info.config, Some(HashMap::new()));
    }

    #[test]
    fn short_id_never_splits_a_character() {
        let info = |id: &str| ContainerInfo {
            container_id: id.into(),
            ..ContainerInfo::default()
        };
        assert_eq!(info("e11059f72dbaf86cedf4a9").short_id(), "e11059f72dba");
        assert_eq!(info("abc").short_id(), "abc");
        assert_eq!(info("ééééééé").short_id(), "éééééé");
        // Byte 12 falls inside a character: the whole ID is kept instead of panicking.
        assert_eq!(info("aéééééé").short_id(), "aéééééé");
    }

    #[test]
    fn decodes_the_recorded_read_logs_bodies() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/read-logs-tail.http");
        let tail: ReadLogsRequest = serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        assert_eq!((tail.config.tail, tail.config.follow), (5, false));
        assert_eq!(tail.config.since, "2026-01-01T00:00:00Z");
        assert_eq!(tail.info.name(), "fixture-app");
        let raw = include_str!("../../shared/fixtures/daemon-20.10/read-logs-follow.http");
        let follow: ReadLogsRequest = serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        assert_eq!((follow.config.tail, follow.config.follow), (-1, true));
        assert_eq!(follow.config.until, "0001-01-01T00:00:00Z");
    }

    #[test]
    fn capabilities_have_the_daemons_shape() {
        assert_eq!(capabilities()["Cap"]["ReadLogs"], serde_json::json!(true));
    }
}
