//! The Loki client: POSTs encoded pushes with keep-alive connections
//! (plain, TLS, or through an HTTP CONNECT proxy). Behind the [`Pusher`]
//! trait, so delivery is tested in-process without sockets.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use super::policy::{FailKind, PushResult};
use crate::config::options::{BasicAuth, EndpointConfig, redact_url};
use crate::ship::tls::{
    TlsFingerprint, TlsMaterial, client_config, fingerprint as tls_fingerprint, load_tls,
};

/// Bytes of Loki's answer kept for the log.
const MAX_ANSWER_BYTES: usize = 1024;
/// Idle keep-alive connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Sends one encoded push and reports what happened.
pub trait Pusher: Send + Sync + 'static {
    fn push(&self, body: Bytes, timeout: Duration) -> BoxFuture<'_, PushResult>;
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    /// [`crate::ship::tls::load_tls`]). Opens no connection, so a container
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
        let mut pool = Client::builder(TokioExecutor::new());
        pool.pool_idle_timeout(POOL_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new());
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

    /// Sends one encoded push; `timeout` bounds the whole exchange.
    pub async fn send(&self, body: Bytes, timeout: Duration) -> PushResult {
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
            .map_err(|e| {
                let kind = if e.is_connect() {
                    FailKind::Unreachable
                } else {
                    FailKind::Interrupted
                };
                (describe(&e), kind)
            })?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| super::policy::parse_retry_after(v, std::time::SystemTime::now()));
            let body = match Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let end = body.len().min(MAX_ANSWER_BYTES);
            Ok::<_, (String, FailKind)>((
                status,
                String::from_utf8_lossy(&body[..end]).trim().to_string(),
                retry_after,
            ))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((status, body, retry_after))) => PushResult::Answered {
                status,
                body,
                retry_after,
            },
            Ok(Err((reason, kind))) => PushResult::Failed { reason, kind },
            Err(_) => PushResult::Failed {
                reason: format!("no answer within {timeout:?} (loki-timeout)"),
                kind: FailKind::Timeout,
            },
        }
    }
}

impl Pusher for LokiClient {
    fn push(&self, body: Bytes, timeout: Duration) -> BoxFuture<'_, PushResult> {
        Box::pin(self.send(body, timeout))
    }
}

/// How often the TLS files of an endpoint are looked at for a renewal.
const TLS_RECHECK: Duration = Duration::from_secs(30);

/// A [`LokiClient`] that is rebuilt when its TLS files change on disk
/// (certificate renewal), looked at every [`TLS_RECHECK`] at most.
pub struct ReloadingClient {
    config: EndpointConfig,
    current: std::sync::Mutex<(Arc<LokiClient>, TlsFingerprint)>,
    checked: std::sync::Mutex<std::time::Instant>,
}

impl ReloadingClient {
    /// Reads the TLS files (off the runtime, bounded) and builds the client.
    pub async fn new(config: &EndpointConfig) -> Result<ReloadingClient, String> {
        let tls = load_tls(&config.tls).await?;
        let client = LokiClient::new(config, &tls)?;
        Ok(ReloadingClient {
            config: config.clone(),
            current: std::sync::Mutex::new((Arc::new(client), *tls.fingerprint())),
            checked: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }

    fn client(&self) -> Arc<LokiClient> {
        self.current.lock().expect("client lock poisoned").0.clone()
    }

    /// Rebuilds the client if the TLS files changed since they were read.
    async fn refresh(&self) {
        {
            let mut checked = self.checked.lock().expect("client lock poisoned");
            if checked.elapsed() < TLS_RECHECK {
                return;
            }
            *checked = std::time::Instant::now();
        }
        let Some(now) = tls_fingerprint(&self.config.tls).await else {
            return;
        };
        if now == self.current.lock().expect("client lock poisoned").1 {
            return;
        }
        match load_tls(&self.config.tls)
            .await
            .and_then(|tls| Ok((LokiClient::new(&self.config, &tls)?, *tls.fingerprint())))
        {
            Ok((client, stamp)) => {
                tracing::info!(endpoint = %self.config.url, "TLS files changed: using the new certificates");
                *self.current.lock().expect("client lock poisoned") = (Arc::new(client), stamp);
            }
            Err(err) => {
                tracing::warn!(endpoint = %self.config.url, error = %err, "TLS files changed but cannot be used; keeping the previous ones")
            }
        }
    }
}

impl Pusher for ReloadingClient {
    fn push(&self, body: Bytes, timeout: Duration) -> BoxFuture<'_, PushResult> {
        Box::pin(async move {
            self.refresh().await;
            self.client().send(body, timeout).await
        })
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
