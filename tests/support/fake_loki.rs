//! A Loki test double: a real HTTP server that decodes pushes the way Loki
//! does (raw-snappy protobuf per `push.proto`, or JSON), rejects what Loki
//! rejects with Loki's status and text, stores what Loki stores (the valid
//! streams of a push with a bad one; one copy of an exact duplicate), and can
//! be told to fail: every push, or as over the tenant's or a stream's rate
//! limit. It behaves like Loki 3.7.6, or like 2.7.5 ([`Flavor`]).
//! `tests/real_loki.rs` measures each of these behaviours on the real ones.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
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

/// Loki 3's default `max_line_size` (256KB = 262,144 bytes; a longer line is
/// refused with a 400). Loki 2.7.5's default is 0: no limit.
pub const LOKI_MAX_LINE_SIZE: usize = 262_144;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub timestamp_ns: i128,
    pub line: Vec<u8>,
    /// Structured metadata (`EntryAdapter` field 3): kept like Loki 3,
    /// dropped without a word like Loki 2.7.5 ([`Flavor::Loki2`]).
    pub metadata: Vec<(String, String)>,
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
    /// Refuse every push as over the tenant's ingestion rate (this many
    /// bytes a second): 429 with Loki's message for that push, nothing stored.
    TenantRateLimited(u64),
}

/// Which Loki the fake behaves like where 3.7.6 and 2.7.5 differ (each
/// difference was measured on the real ones by `tests/real_loki.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Loki 3.7.6: empty label sets accepted (Loki adds `service_name`),
    /// at most 15 label names, lines up to 262,144 bytes, structured
    /// metadata kept, label sets in messages sorted with `service_name`.
    #[default]
    Loki3,
    /// Loki 2.7.5: empty label sets refused, at most 30 label names, no
    /// line limit, structured metadata in protobuf silently dropped (in JSON
    /// a 400), label sets in messages as pushed, only the last error told.
    Loki2,
}

/// What the answer to a push with a rate-limited stream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAnswer {
    /// 429 whenever a stream of the push was refused (the others are stored).
    Always,
    /// As real Loki's ingester does: only the LAST stream of the push
    /// decides the answer. A push whose refused stream is followed by an
    /// accepted one is answered 204, though the refused entries are dropped.
    LastStream,
}

/// Streams whose labels include all of `selector` are refused as over
/// Loki's per-stream rate limit.
#[derive(Debug, Clone)]
struct StreamLimit {
    selector: Vec<(String, String)>,
    answer: LimitAnswer,
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

#[derive(Debug, Clone, Default)]
struct Behaviour {
    flavor: Flavor,
    stream_limits: Vec<StreamLimit>,
    retry_after: Option<String>,
    /// The `Authorization` header a push must carry, as an authenticating
    /// proxy in front of Loki checks it; others are answered 401.
    authorization: Option<String>,
}

struct State {
    mode: Mutex<Mode>,
    behaviour: Mutex<Behaviour>,
    streams: Mutex<BTreeMap<Labels, StoredStream>>,
    requests: Mutex<Vec<Received>>,
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
            behaviour: Mutex::new(Behaviour::default()),
            streams: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(Vec::new()),
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

    /// Behave like Loki 3.7.6 (the default) or like Loki 2.7.5.
    pub fn set_flavor(&self, flavor: Flavor) {
        self.state.behaviour.lock().unwrap().flavor = flavor;
    }

    /// Refuses the streams whose labels include all of `selector` as over
    /// Loki's per-stream rate limit: their entries are not stored, the
    /// answer is a 429 with Loki's message naming the stream (see
    /// [`LimitAnswer`]); the other streams of the push are stored.
    pub fn rate_limit_streams(&self, selector: &[(&str, &str)], answer: LimitAnswer) {
        self.state
            .behaviour
            .lock()
            .unwrap()
            .stream_limits
            .push(StreamLimit {
                selector: selector
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                answer,
            });
    }

    /// Lifts every [`FakeLoki::rate_limit_streams`].
    pub fn clear_rate_limits(&self) {
        self.state.behaviour.lock().unwrap().stream_limits.clear();
    }

    /// Sends `Retry-After: value` with every 429. Real Loki (3.7.6 and
    /// 2.7.5) never sends one; this is for testing a client that honours it.
    pub fn set_retry_after(&self, value: Option<&str>) {
        self.state.behaviour.lock().unwrap().retry_after = value.map(str::to_string);
    }

    /// Answers 401 to pushes without this `Authorization` header (`None`:
    /// no check), as an authenticating gateway in front of Loki does.
    pub fn require_authorization(&self, value: Option<&str>) {
        self.state.behaviour.lock().unwrap().authorization = value.map(str::to_string);
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

    /// Each stream's entries as a Loki query returns them: by timestamp,
    /// those with the same timestamp as they arrived. (Loki takes a
    /// stream's lines out of order, and the plugin sends a backlog in two
    /// pushes at once where it does.)
    pub fn streams(&self) -> BTreeMap<Labels, Vec<Entry>> {
        self.state
            .streams
            .lock()
            .unwrap()
            .iter()
            .map(|(labels, stream)| {
                let mut entries = stream.entries.clone();
                entries.sort_by_key(|e| e.timestamp_ns);
                (labels.clone(), entries)
            })
            .collect()
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
            .map(|stream| stream.entries.len())
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
    let behaviour = state.behaviour.lock().unwrap().clone();
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
        Mode::Accept | Mode::TenantRateLimited(_) => {}
    }
    if let Some(required) = &behaviour.authorization
        && headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(required.as_str())
    {
        record(401, Vec::new());
        return reply(401, "invalid credentials");
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
    // Without authentication Loki files everything under the tenant "fake".
    let tenant = match header("x-scope-orgid") {
        t if t.is_empty() => "fake".to_string(),
        t => t,
    };
    let outcome = push(
        state,
        &behaviour,
        &mode,
        &tenant,
        &header("content-type"),
        &header("content-encoding"),
        &body,
    );
    record(outcome.status, outcome.streams);
    let mut response = reply(outcome.status, &outcome.body);
    if outcome.status == 429
        && let Some(value) = &behaviour.retry_after
    {
        response
            .headers_mut()
            .insert("retry-after", value.parse().expect("a header value"));
    }
    response
}

/// A push's answer and the label sets it carried.
struct Outcome {
    status: u16,
    body: String,
    streams: Vec<Labels>,
}

/// Handles a push as Loki does, in Loki's order: decode; parse every label
/// set (one unparsable set refuses the whole push); the tenant's rate limit
/// (the whole push); per stream validation (a bad stream or a too long
/// entry is left out, the rest goes on); per-stream rate limits; storage,
/// where an exact duplicate (same stream, timestamp and line) is dropped.
/// A per-stream 429 is answered before the validation 400, as Loki's
/// distributor does.
fn push(
    state: &State,
    behaviour: &Behaviour,
    mode: &Mode,
    tenant: &str,
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
) -> Outcome {
    let flavor = behaviour.flavor;
    // Go's http.Error ends every error body with a newline.
    let answer = |status: u16, text: String, streams: Vec<Labels>| Outcome {
        status,
        body: format!("{text}\n"),
        streams,
    };
    let raw = match decode_raw(content_type, content_encoding, body, flavor) {
        Ok(raw) => raw,
        Err(reason) => return answer(400, reason, Vec::new()),
    };
    let mut parsed = Vec::new();
    for stream in raw {
        match parse_label_pairs(&stream.labels) {
            Ok(pairs) => parsed.push((pairs, stream.entries)),
            Err(reason) => {
                let text = match flavor {
                    Flavor::Loki3 => format!("couldn't parse labels: {reason}"),
                    Flavor::Loki2 => reason,
                };
                return answer(400, text, Vec::new());
            }
        }
    }
    let label_sets: Vec<Labels> = parsed
        .iter()
        .map(|(pairs, _)| pairs.iter().cloned().collect())
        .collect();
    if let Mode::TenantRateLimited(limit) = mode {
        let lines = parsed.iter().map(|(_, entries)| entries.len()).sum();
        let bytes = parsed
            .iter()
            .flat_map(|(_, entries)| entries)
            .map(|e| e.line.len())
            .sum();
        let text = tenant_rate_limit_message(flavor, tenant, *limit, lines, bytes);
        return answer(429, text, label_sets);
    }

    let mut invalid = Vec::new();
    let mut valid = Vec::new();
    for (pairs, entries) in parsed {
        let shown = labels_as_loki_shows(flavor, &pairs);
        if let Err(reason) = validate_labels(flavor, &pairs, &shown) {
            invalid.push(reason);
            continue;
        }
        let mut kept = Vec::new();
        for mut entry in entries {
            if let Some(max) = max_line_size(flavor)
                && entry.line.len() > max
            {
                invalid.push(format!(
                    "max entry size '{max}' bytes exceeded for stream '{shown}' while adding an entry with length '{}' bytes",
                    entry.line.len()
                ));
                continue;
            }
            if flavor == Flavor::Loki2 {
                entry.metadata.clear();
            }
            kept.push(entry);
        }
        valid.push((pairs, shown, kept));
    }

    let mut refused_always = None;
    let mut last_stream_refused = None;
    {
        let mut stored = state.streams.lock().unwrap();
        for (pairs, shown, entries) in valid {
            let labels: Labels = pairs.into_iter().collect();
            let limit = behaviour
                .stream_limits
                .iter()
                .find(|limit| limit.selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
            match limit {
                Some(limit) if !entries.is_empty() => {
                    let refused: Vec<(i128, usize)> = entries
                        .iter()
                        .map(|e| (e.timestamp_ns, e.line.len()))
                        .collect();
                    let text =
                        stream_rate_limit_message(flavor, tenant, &shown, &refused, entries.len());
                    if limit.answer == LimitAnswer::Always {
                        refused_always = Some(text.clone());
                    }
                    last_stream_refused = Some(text);
                }
                _ => {
                    if !entries.is_empty() {
                        stored.entry(labels).or_default().append(entries);
                    }
                    last_stream_refused = None;
                }
            }
        }
    }
    if let Some(text) = refused_always.or(last_stream_refused) {
        return answer(429, text, label_sets);
    }
    if !invalid.is_empty() {
        return answer(400, loki_errors(flavor, &invalid), label_sets);
    }
    Outcome {
        status: 204,
        body: String::new(),
        streams: label_sets,
    }
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The entries of one stream, with an index that finds exact duplicates.
#[derive(Debug, Default)]
struct StoredStream {
    entries: Vec<Entry>,
    by_time: HashMap<i128, Vec<usize>>,
}

impl StoredStream {
    /// Appends the entries that are not already stored: Loki drops an entry
    /// with the same timestamp and line as one of its stream (as long as
    /// that one is still in the ingester's memory; the fake never flushes).
    fn append(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            let same_time = self.by_time.entry(entry.timestamp_ns).or_default();
            if same_time
                .iter()
                .any(|&i| self.entries[i].line == entry.line)
            {
                continue;
            }
            same_time.push(self.entries.len());
            self.entries.push(entry);
        }
    }
}

/// One stream of a push as sent: its label string and its entries.
struct RawStream {
    labels: String,
    entries: Vec<Entry>,
}

/// Decodes a push body as Loki does: JSON when the content type says so,
/// otherwise raw-snappy protobuf.
pub fn decode_push(
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
) -> Result<Vec<(Labels, Vec<Entry>)>, String> {
    decode_raw(content_type, content_encoding, body, Flavor::Loki3)?
        .into_iter()
        .map(|stream| Ok((parse_labels(&stream.labels)?, stream.entries)))
        .collect()
}

fn decode_raw(
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
    flavor: Flavor,
) -> Result<Vec<RawStream>, String> {
    if content_type.starts_with("application/json") {
        return decode_json(body, flavor);
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
            let entries = stream
                .entries
                .into_iter()
                .map(|e| {
                    let ts = e.timestamp.ok_or("entry without timestamp")?;
                    Ok(Entry {
                        timestamp_ns: ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128,
                        line: e.line.to_vec(),
                        metadata: e
                            .structured_metadata
                            .into_iter()
                            .map(|pair| (pair.name, pair.value))
                            .collect(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(RawStream {
                labels: stream.labels,
                entries,
            })
        })
        .collect()
}

fn decode_json(body: &[u8], flavor: Flavor) -> Result<Vec<RawStream>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("json: {e}"))?;
    let streams = value["streams"]
        .as_array()
        .ok_or("json: no streams array")?;
    streams
        .iter()
        .map(|stream| {
            let labels: Vec<(String, String)> = stream["stream"]
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
            let entries = stream["values"]
                .as_array()
                .ok_or("json: stream without values")?
                .iter()
                .map(|value| {
                    let ts: i128 = value[0]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .ok_or("json: bad timestamp")?;
                    let line = value[1].as_str().ok_or("json: line is not a string")?;
                    let metadata = match value.get(2) {
                        None => Vec::new(),
                        // Loki 2.7.5's JSON decoder knows only [timestamp, line].
                        Some(_) if flavor == Flavor::Loki2 => {
                            return Err("loghttp.PushRequest.Streams: []*loghttp.Stream: \
                                 unmarshalerDecoder: a value has a third element \
                                 (structured metadata), which Loki 2.7.5 cannot decode"
                                .to_string());
                        }
                        Some(object) => object
                            .as_object()
                            .ok_or("json: structured metadata is not an object")?
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect(),
                    };
                    Ok(Entry {
                        timestamp_ns: ts,
                        line: line.as_bytes().to_vec(),
                        metadata,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(RawStream {
                labels: render_labels(&labels),
                entries,
            })
        })
        .collect()
}

/// `{a="x", b="y"}`, values quoted as Go's `strconv.Quote` does for text.
fn render_labels(pairs: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Parses a label string such as `{a="1", b="x\"y"}` strictly, as Loki does.
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for (name, value) in parse_label_pairs(text)? {
        if labels.insert(name.clone(), value).is_some() {
            return Err(format!("duplicate label name {name:?}"));
        }
    }
    Ok(labels)
}

/// The label pairs of a label string, in their order. Errors read like
/// Loki's (Prometheus' parser): `1:5: parse error: unexpected character
/// inside braces: '-'` for `{bad-name="x"}`. An empty string is the empty set.
fn parse_label_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let err = |at: usize, what: String| format!("1:{}: parse error: {what}", at + 1);
    let skip_space = |mut at: usize| {
        while at < chars.len() && chars[at].is_whitespace() {
            at += 1;
        }
        at
    };
    let mut at = skip_space(0);
    if at == chars.len() {
        return Ok(Vec::new());
    }
    if chars[at] != '{' {
        return Err(err(at, format!("unexpected character: '{}'", chars[at])));
    }
    at += 1;
    let mut pairs = Vec::new();
    loop {
        at = skip_space(at);
        match chars.get(at) {
            None => return Err(err(at, "unexpected end of input inside braces".into())),
            Some('}') => {
                at += 1;
                break;
            }
            Some(&c) if !(c.is_ascii_alphabetic() || c == '_') => {
                return Err(err(
                    at,
                    format!("unexpected character inside braces: '{c}'"),
                ));
            }
            Some(_) => {}
        }
        let start = at;
        while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_') {
            at += 1;
        }
        let name: String = chars[start..at].iter().collect();
        at = skip_space(at);
        match chars.get(at) {
            Some('=') => at += 1,
            Some(&c) if !matches!(c, ',' | '}' | '!' | '~' | '"') => {
                return Err(err(
                    at,
                    format!("unexpected character inside braces: '{c}'"),
                ));
            }
            _ => {
                return Err(err(
                    at,
                    format!("unexpected end of label matcher after {name:?}, expected \"=\""),
                ));
            }
        }
        at = skip_space(at);
        if chars.get(at) != Some(&'"') {
            return Err(err(at, "expected a quoted label value".into()));
        }
        at += 1;
        let mut value = String::new();
        loop {
            match chars.get(at) {
                None => return Err(err(at, "unterminated quoted string".into())),
                Some('"') => {
                    at += 1;
                    break;
                }
                Some('\\') => {
                    let escaped = match chars.get(at + 1) {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('\\') => '\\',
                        Some('"') => '"',
                        other => {
                            return Err(err(at, format!("unknown escape sequence {other:?}")));
                        }
                    };
                    value.push(escaped);
                    at += 2;
                }
                Some(&c) => {
                    value.push(c);
                    at += 1;
                }
            }
        }
        pairs.push((name, value));
        at = skip_space(at);
        match chars.get(at) {
            Some(',') => at += 1,
            Some('}') => {}
            Some(&c) => {
                return Err(err(
                    at,
                    format!("unexpected character inside braces: '{c}'"),
                ));
            }
            None => return Err(err(at, "unexpected end of input inside braces".into())),
        }
    }
    at = skip_space(at);
    if let Some(&c) = chars.get(at) {
        return Err(err(at, format!("unexpected character after labels: '{c}'")));
    }
    Ok(pairs)
}

/// The labels Loki 3 derives `service_name` from, in order (its default
/// `discover_service_name`); `unknown_service` when none is there.
const SERVICE_NAME_SOURCES: [&str; 13] = [
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// The label pairs as the flavor sees them: Loki 3 adds `service_name` and
/// sorts by name; Loki 2.7.5 keeps them as pushed.
fn labels_as_loki_sees(flavor: Flavor, pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = pairs.to_vec();
    if flavor == Flavor::Loki3 {
        if !pairs.iter().any(|(name, _)| name == "service_name") {
            let service = SERVICE_NAME_SOURCES
                .iter()
                .find_map(|source| {
                    pairs
                        .iter()
                        .find(|(name, value)| name == source && !value.is_empty())
                })
                .map_or("unknown_service".to_string(), |(_, value)| value.clone());
            pairs.push(("service_name".into(), service));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
    }
    pairs
}

/// The label set as Loki writes it in its messages.
pub fn labels_as_loki_shows(flavor: Flavor, pairs: &[(String, String)]) -> String {
    render_labels(&labels_as_loki_sees(flavor, pairs))
}

/// Loki's per stream label checks (its default limits), in Loki's order.
fn validate_labels(flavor: Flavor, pushed: &[(String, String)], shown: &str) -> Result<(), String> {
    let pairs = labels_as_loki_sees(flavor, pushed);
    if pairs.is_empty() {
        return Err("error at least one label pair is required per stream".into());
    }
    let (count, limit) = match flavor {
        // Loki 3 does not count the service_name it may have added.
        Flavor::Loki3 => (pairs.len() - 1, 15),
        Flavor::Loki2 => (pairs.len(), 30),
    };
    if count > limit {
        return Err(format!(
            "entry for stream '{shown}' has {count} label names; limit {limit}"
        ));
    }
    let mut last = "";
    for (name, value) in &pairs {
        if name.len() > 1024 {
            return Err(format!(
                "stream '{shown}' has label name too long: '{name}'"
            ));
        }
        if value.len() > 2048 {
            return Err(format!(
                "stream '{shown}' has label value too long: '{value}'"
            ));
        }
        if name == last {
            return Err(format!(
                "stream '{shown}' has duplicate label name: '{name}'"
            ));
        }
        last = name;
    }
    Ok(())
}

fn max_line_size(flavor: Flavor) -> Option<usize> {
    match flavor {
        Flavor::Loki3 => Some(LOKI_MAX_LINE_SIZE),
        Flavor::Loki2 => None,
    }
}

/// The 400 body for a push with invalid streams: Loki 3 tells every error,
/// `N errors like: ...` per distinct message when there are several (in an
/// order that varies, a Go map's; here the order of first occurrence);
/// Loki 2.7.5 tells only the last one.
fn loki_errors(flavor: Flavor, errors: &[String]) -> String {
    match flavor {
        Flavor::Loki2 => errors.last().cloned().unwrap_or_default(),
        Flavor::Loki3 if errors.len() == 1 => errors[0].clone(),
        Flavor::Loki3 => {
            let mut distinct: Vec<(&String, usize)> = Vec::new();
            for error in errors {
                match distinct.iter_mut().find(|(seen, _)| *seen == error) {
                    Some((_, count)) => *count += 1,
                    None => distinct.push((error, 1)),
                }
            }
            distinct
                .iter()
                .map(|(error, count)| format!("{count} errors like: {error}"))
                .collect::<Vec<_>>()
                .join("; ")
        }
    }
}

/// Loki's 429 text for a push over the tenant's ingestion rate.
pub fn tenant_rate_limit_message(
    flavor: Flavor,
    tenant: &str,
    limit_bytes_per_sec: u64,
    lines: usize,
    bytes: usize,
) -> String {
    let first = match flavor {
        Flavor::Loki3 => "ingestion",
        Flavor::Loki2 => "Ingestion",
    };
    format!(
        "{first} rate limit exceeded for user {tenant} (limit: {limit_bytes_per_sec} bytes/sec) \
         while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume \
         or contact your Loki administrator to see if the limit can be increased"
    )
}

/// Loki's 429 text for entries refused by the per-stream rate limit (its
/// default, 3MB/sec): the first ten refused entries (`(timestamp, line
/// length)`), then the total.
pub fn stream_rate_limit_message(
    flavor: Flavor,
    tenant: &str,
    shown_labels: &str,
    refused: &[(i128, usize)],
    total: usize,
) -> String {
    let mut text = String::new();
    for (timestamp_ns, len) in refused.iter().take(10) {
        let reason = format!(
            "Per stream rate limit exceeded (limit: 3MB/sec) while attempting to ingest for \
             stream '{shown_labels}' totaling {}, consider splitting a stream via additional \
             labels or contact your Loki administrator to see if the limit can be increased",
            go_byte_size(*len as u64)
        );
        let when = go_time(*timestamp_ns);
        match flavor {
            Flavor::Loki3 => {
                text += &format!("entry with timestamp {when} ignored, reason: '{reason}',\n")
            }
            Flavor::Loki2 => {
                text += &format!(
                    "entry with timestamp {when} ignored, reason: '{reason}' for stream: {shown_labels},\n"
                )
            }
        }
    }
    match flavor {
        Flavor::Loki3 => {
            text += &format!(
                "user '{tenant}', total ignored: {} out of {total} for stream: {shown_labels}",
                refused.len()
            )
        }
        Flavor::Loki2 => text += &format!("total ignored: {} out of {total}", refused.len()),
    }
    text
}

/// A time as Go's `time.Time.String()` prints it in UTC:
/// `2026-11-21 16:31:23.13044381 +0000 UTC` (trailing zeros of the fraction cut).
pub fn go_time(timestamp_ns: i128) -> String {
    let seconds = timestamp_ns.div_euclid(1_000_000_000) as i64;
    let nanos = timestamp_ns.rem_euclid(1_000_000_000) as u32;
    let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs_of_day / 3_600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// A size as Loki's `flagext.ByteSize` prints it: in the largest binary unit
/// that divides it exactly (`3MB`, `10000B`).
fn go_byte_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".into();
    }
    for (unit, size) in [
        ("EB", 1u64 << 60),
        ("PB", 1 << 50),
        ("TB", 1 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
    ] {
        if bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}
