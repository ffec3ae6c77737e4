//! The Loki client: encodes a batch as Loki's protobuf `PushRequest` with raw
//! snappy, POSTs it with keep-alive connections (plain, TLS, or through an
//! HTTP CONNECT proxy), and decides what an answer means.
//!
//! Nothing here reads a FIFO or waits on one; the batcher calls it.

use std::error::Error as _;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use rustls::pki_types::ServerName;

use crate::config::options::{BasicAuth, EndpointConfig, redact_url};
use crate::proto::logproto::PushRequest;
use crate::tls_files::{TlsMaterial, client_config};

/// Bytes of Loki's answer kept for the log.
const MAX_ANSWER_BYTES: usize = 1024;

/// Encodes a push request as Loki expects it: protobuf, then raw snappy.
pub fn encode_push(request: &PushRequest) -> Bytes {
    let protobuf = request.encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&protobuf)
        .expect("snappy accepts any input below 4 GiB");
    Bytes::from(compressed)
}

/// What one push attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Loki answered; `body` is the start of its answer.
    Answered { status: StatusCode, body: String },
    /// No answer: connection refused, reset, TLS failure or timeout.
    Failed(String),
}

/// What to do with a batch after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Worth another attempt after a backoff: 429, 5xx, no answer.
    Retry,
    /// Loki will never accept it (other 4xx): drop and count.
    Drop,
}

/// The retry policy, as a pure function of the outcome.
pub fn decide(result: &PushResult) -> Decision {
    match result {
        PushResult::Answered { status, .. } if status.is_success() => Decision::Delivered,
        PushResult::Answered { status, .. }
            if *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() =>
        {
            Decision::Retry
        }
        PushResult::Answered { .. } => Decision::Drop,
        PushResult::Failed(_) => Decision::Retry,
    }
}

/// The waits between attempts: exponential from `min` doubling up to `max`,
/// with jitter, never outside `[min, max]`; `retries` waits at most.
pub fn backoff_delays(
    min: Duration,
    max: Duration,
    retries: u32,
) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(retries as usize)
        .build()
        .map(move |delay| delay.clamp(min, max))
}

type Direct = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Proxied = Client<HttpsConnector<Tunnel<HttpConnector>>, Full<Bytes>>;

enum Transport {
    Direct(Direct),
    Proxied(Proxied),
}

/// A connection pool and the fixed parts of every push request to one endpoint.
pub struct LokiClient {
    transport: Transport,
    uri: Uri,
    authorization: Option<HeaderValue>,
    tenant: Option<HeaderValue>,
}

impl LokiClient {
    /// Builds the client from TLS files already read (see
    /// [`crate::tls_files::load_tls`]). Opens no connection, so a container
    /// starts even while Loki is down.
    pub fn new(config: &EndpointConfig, tls: &TlsMaterial) -> Result<LokiClient, String> {
        // The URLs come without credentials from the options; redacted
        // again here so no future caller can make an error echo a password.
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e| format!("loki-url {}: {e}", redact_url(&config.url)))?;
        let authorization = config.auth.as_ref().map(basic_auth);
        let tenant = config
            .tenant_id
            .as_deref()
            .map(|t| {
                HeaderValue::from_str(t)
                    .map_err(|_| format!("loki-tenant-id {t:?} is not a valid header value"))
            })
            .transpose()?;

        let tls = client_config(tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let https = match &config.tls.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| format!("loki-tls-server-name {name:?}: {e}"))?;
                https.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            None => https,
        }
        .enable_http1();
        let pool = Client::builder(TokioExecutor::new());
        let transport = match &config.proxy_url {
            None => Transport::Direct(pool.build(https.wrap_connector(http))),
            Some(proxy) => {
                let proxy_uri: Uri = proxy
                    .parse()
                    .map_err(|e| format!("loki-proxy-url {}: {e}", redact_url(proxy)))?;
                let mut tunnel = Tunnel::new(proxy_uri, http);
                if let Some(auth) = &config.proxy_auth {
                    tunnel = tunnel.with_auth(basic_auth(auth));
                }
                Transport::Proxied(pool.build(https.wrap_connector(tunnel)))
            }
        };
        Ok(LokiClient {
            transport,
            uri,
            authorization,
            tenant,
        })
    }

    /// Sends one encoded batch; `timeout` bounds the whole exchange.
    pub async fn push(&self, body: Bytes, timeout: Duration) -> PushResult {
        let mut request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(USER_AGENT, crate::USER_AGENT)
            .body(Full::new(body))
            .expect("request parts are valid");
        let headers = request.headers_mut();
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(tenant) = &self.tenant {
            headers.insert("X-Scope-OrgID", tenant.clone());
        }
        let exchange = async {
            let response = match &self.transport {
                Transport::Direct(client) => client.request(request).await,
                Transport::Proxied(client) => client.request(request).await,
            }
            .map_err(|e| describe(&e))?;
            let status = response.status();
            let body = match Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let end = body.len().min(MAX_ANSWER_BYTES);
            Ok::<_, String>((
                status,
                String::from_utf8_lossy(&body[..end]).trim().to_string(),
            ))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((status, body))) => PushResult::Answered { status, body },
            Ok(Err(reason)) => PushResult::Failed(reason),
            Err(_) => PushResult::Failed(format!("no answer within {timeout:?} (loki-timeout)")),
        }
    }
}

/// A `Basic` credentials header, marked sensitive so it is never printed.
fn basic_auth(auth: &BasicAuth) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", auth.username, auth.password));
    let mut value =
        HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// An error and its causes on one line. Errors from the client never carry
/// the URL, so no credentials can appear here.
fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::logproto::{EntryAdapter, StreamAdapter};

    fn answered(code: u16) -> PushResult {
        PushResult::Answered {
            status: StatusCode::from_u16(code).unwrap(),
            body: String::new(),
        }
    }

    #[test]
    fn retry_decisions() {
        assert_eq!(decide(&answered(204)), Decision::Delivered);
        assert_eq!(decide(&answered(200)), Decision::Delivered);
        assert_eq!(decide(&answered(429)), Decision::Retry);
        assert_eq!(decide(&answered(500)), Decision::Retry);
        assert_eq!(decide(&answered(503)), Decision::Retry);
        assert_eq!(decide(&answered(400)), Decision::Drop);
        assert_eq!(decide(&answered(401)), Decision::Drop);
        assert_eq!(decide(&answered(413)), Decision::Drop);
        assert_eq!(
            decide(&PushResult::Failed("connection refused".into())),
            Decision::Retry
        );
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(5));
        for _ in 0..50 {
            let delays: Vec<_> = backoff_delays(min, max, 10).collect();
            assert_eq!(delays.len(), 10);
            assert!(delays.iter().all(|d| *d >= min && *d <= max), "{delays:?}");
            assert_eq!(*delays.last().unwrap(), max);
        }
        let first: Vec<_> = backoff_delays(min, Duration::from_secs(300), 3).collect();
        assert!(
            first[0] < Duration::from_secs(1) && first[2] >= Duration::from_secs(2),
            "{first:?}"
        );
        assert_eq!(backoff_delays(min, max, 0).count(), 0);
    }

    #[test]
    fn encoding_is_raw_snappy_protobuf() {
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{a="b"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 2,
                    }),
                    line: b"hello".to_vec(),
                    structured_metadata: vec![],
                }],
                hash: 0,
            }],
        };
        let body = encode_push(&request);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(PushRequest::decode(raw.as_slice()).unwrap(), request);
    }
}
