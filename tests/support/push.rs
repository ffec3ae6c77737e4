//! Building Loki push requests (`push.proto`) and sending raw HTTP requests:
//! shared by the tests of the real Loki and of the fake one.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use loki_logdriver::proto::logproto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

pub fn entry(timestamp_ns: i128, line: impl Into<Vec<u8>>) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: timestamp_ns.div_euclid(1_000_000_000) as i64,
            nanos: timestamp_ns.rem_euclid(1_000_000_000) as i32,
        }),
        line: bytes::Bytes::from(line.into()),
        structured_metadata: Vec::new(),
    }
}

pub fn entry_with_metadata(
    timestamp_ns: i128,
    line: &str,
    metadata: &[(&str, &str)],
) -> EntryAdapter {
    EntryAdapter {
        structured_metadata: metadata
            .iter()
            .map(|(name, value)| LabelPairAdapter {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        ..entry(timestamp_ns, line)
    }
}

pub fn stream(labels: &str, entries: Vec<EntryAdapter>) -> StreamAdapter {
    StreamAdapter {
        labels: labels.to_string(),
        entries,
        hash: 0,
    }
}

pub fn push_request(streams: Vec<StreamAdapter>) -> PushRequest {
    PushRequest { streams }
}

/// Sends one HTTP/1.1 request to `addr` on a connection of its own.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("Host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{addr} {path_and_query}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// What Loki answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.status, self.body)?;
        if let Some(retry) = self.header("retry-after") {
            write!(f, " Retry-After: {retry}")?;
        }
        Ok(())
    }
}
