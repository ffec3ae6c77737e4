//! A Loki test double: a real HTTP server that decodes pushes the way Loki
//! does (raw-snappy protobuf per `push.proto`, or JSON), rejects what Loki
//! rejects with a 400, records entries per stream, and can be told to fail.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use loki_logdriver::proto::logproto::PushRequest;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Loki's default `max_line_size`.
pub const LOKI_MAX_LINE_SIZE: usize = 256_000;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub timestamp_ns: i128,
    pub line: Vec<u8>,
}

impl Entry {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }
}

/// How the fake answers pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Answer every push with this status and body, recording nothing.
    Fail(u16, String),
    /// Accept the connection and the request, never answer.
    Hang,
}

/// What one push request looked like.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: hyper::HeaderMap,
    pub status: u16,
    /// Label sets of the streams in the request.
    pub streams: Vec<Labels>,
    /// Whether the client presented a TLS certificate.
    pub client_certificate: bool,
}

struct State {
    mode: Mutex<Mode>,
    streams: Mutex<BTreeMap<Labels, Vec<Entry>>>,
    requests: Mutex<Vec<Received>>,
    max_line_size: usize,
}

pub struct FakeLoki {
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl FakeLoki {
    pub async fn start() -> FakeLoki {
        FakeLoki::start_with(None).await
    }

    /// Serves HTTPS with this TLS configuration.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> FakeLoki {
        FakeLoki::start_with(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> FakeLoki {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Loki");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Accept),
            streams: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(Vec::new()),
            max_line_size: LOKI_MAX_LINE_SIZE,
        });
        let fake = FakeLoki {
            addr,
            tls,
            state,
            server: Mutex::new(None),
        };
        fake.serve(listener);
        fake
    }

    /// Starts with its port closed: connections are refused until `accept_connections`.
    pub async fn start_refusing() -> FakeLoki {
        let fake = FakeLoki::start().await;
        fake.refuse_connections();
        fake
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let tls = self.tls.clone();
        let task = tokio::spawn(async move {
            // Dropping this task (on abort) closes the listener and every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = |client_certificate: bool| {
                        service_fn(move |req| {
                            let state = state.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    handle(req, &state, client_certificate).await,
                                )
                            }
                        })
                    };
                    let http = http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http
                                .serve_connection(TokioIo::new(stream), service(false))
                                .await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let client_certificate =
                                stream.get_ref().1.peer_certificates().is_some();
                            let _ = http
                                .serve_connection(TokioIo::new(stream), service(client_certificate))
                                .await;
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap() = Some(task);
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/loki/api/v1/push", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Closes the port and every open connection: connections are refused.
    pub fn refuse_connections(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Opens the port again, on the same address.
    pub async fn accept_connections(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("cannot rebind fake Loki on {}: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    pub fn streams(&self) -> BTreeMap<Labels, Vec<Entry>> {
        self.state.streams.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn entry_count(&self) -> usize {
        self.state
            .streams
            .lock()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Entries of the streams whose labels include all of `selector`.
    pub fn entries_matching(&self, selector: &[(&str, &str)]) -> Vec<Entry> {
        self.streams()
            .into_iter()
            .filter(|(labels, _)| {
                selector
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .flat_map(|(_, entries)| entries)
            .collect()
    }

    /// Waits until at least `count` entries arrived; panics with what did arrive.
    pub async fn wait_for_entries(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.entry_count() < count {
            if Instant::now() > deadline {
                panic!(
                    "fake Loki got {} entries, expected {count} within {timeout:?}",
                    self.entry_count()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeLoki {
    fn drop(&mut self) {
        self.refuse_connections();
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &State,
    client_certificate: bool,
) -> Response<Full<Bytes>> {
    let mode = state.mode.lock().unwrap().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(400, "cannot read body"),
    };
    let record = |status: u16, streams: Vec<Labels>| {
        state.requests.lock().unwrap().push(Received {
            headers: headers.clone(),
            status,
            streams,
            client_certificate,
        });
    };
    match mode {
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Fail(status, text) => {
            record(status, Vec::new());
            return reply(status, &text);
        }
        Mode::Accept => {}
    }
    if path != "/loki/api/v1/push" {
        return reply(404, "404 page not found");
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let decoded = decode_push(&header("content-type"), &header("content-encoding"), &body)
        .and_then(|streams| validate(&streams, state.max_line_size).map(|()| streams));
    match decoded {
        Ok(streams) => {
            record(
                204,
                streams.iter().map(|(labels, _)| labels.clone()).collect(),
            );
            let mut stored = state.streams.lock().unwrap();
            for (labels, entries) in streams {
                stored.entry(labels).or_default().extend(entries);
            }
            reply(204, "")
        }
        Err(reason) => {
            record(400, Vec::new());
            reply(400, &reason)
        }
    }
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Decodes a push body as Loki does: JSON when the content type says so,
/// otherwise raw-snappy protobuf.
pub fn decode_push(
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
) -> Result<Vec<(Labels, Vec<Entry>)>, String> {
    if content_type.starts_with("application/json") {
        return decode_json(body);
    }
    if !matches!(content_encoding, "" | "snappy") {
        return Err(format!(
            "unsupported content encoding {content_encoding:?} for protobuf"
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let request = PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
    request
        .streams
        .into_iter()
        .map(|stream| {
            let labels = parse_labels(&stream.labels)?;
            let entries = stream
                .entries
                .into_iter()
                .map(|e| {
                    let ts = e.timestamp.ok_or("entry without timestamp")?;
                    Ok(Entry {
                        timestamp_ns: ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128,
                        line: e.line.to_vec(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((labels, entries))
        })
        .collect()
}

fn decode_json(body: &[u8]) -> Result<Vec<(Labels, Vec<Entry>)>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("json: {e}"))?;
    let streams = value["streams"]
        .as_array()
        .ok_or("json: no streams array")?;
    streams
        .iter()
        .map(|stream| {
            let labels: Labels = stream["stream"]
                .as_object()
                .ok_or("json: stream without a stream object")?
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        v.as_str()
                            .ok_or("json: label value is not a string")?
                            .to_string(),
                    ))
                })
                .collect::<Result<_, String>>()?;
            for name in labels.keys() {
                check_label_name(name)?;
            }
            let entries = stream["values"]
                .as_array()
                .ok_or("json: stream without values")?
                .iter()
                .map(|pair| {
                    let ts: i128 = pair[0]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .ok_or("json: bad timestamp")?;
                    let line = pair[1].as_str().ok_or("json: line is not a string")?;
                    Ok(Entry {
                        timestamp_ns: ts,
                        line: line.as_bytes().to_vec(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((labels, entries))
        })
        .collect()
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid label name {name:?}"))
    }
}

/// Parses a label string such as `{a="1", b="x\"y"}` strictly, as Loki does.
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let err = |what: &str| format!("error parsing labels {text:?}: {what}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("not enclosed in {}"))?;
    let mut labels = Labels::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        check_label_name(&name).map_err(|e| err(&e))?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(err("expected =\""));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(err("unterminated value")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    other => return Err(err(&format!("bad escape {other:?}"))),
                },
                Some(c) => value.push(c),
            }
        }
        if labels.insert(name.clone(), value).is_some() {
            return Err(err(&format!("duplicate label name {name:?}")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => return Err(err(&format!("unexpected {c:?}"))),
        }
    }
    Ok(labels)
}

/// Loki's per-stream checks.
fn validate(streams: &[(Labels, Vec<Entry>)], max_line_size: usize) -> Result<(), String> {
    for (labels, entries) in streams {
        if labels.is_empty() {
            return Err("error at least one label pair is required per stream".into());
        }
        for entry in entries {
            if entry.line.len() > max_line_size {
                return Err(format!(
                    "Max entry size '{max_line_size}' bytes exceeded for stream '{labels:?}' while adding an entry with length '{}' bytes",
                    entry.line.len()
                ));
            }
        }
    }
    Ok(())
}
