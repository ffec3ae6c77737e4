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
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use super::policy::{FailKind, PushResult};
use crate::config::options::{BasicAuth, EndpointConfig, redact_url};
use crate::ship::secrets::{self, Credentials, SecretFingerprint};
use crate::ship::tls::{
    self, TlsFingerprint, TlsMaterial, client_config, fingerprint as tls_fingerprint, load_tls,
};

/// Bytes of Loki's answer kept for the log.
const MAX_ANSWER_BYTES: usize = 1024;
/// Idle keep-alive connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Sends one encoded push and reports what happened.
pub trait Pusher: Send + Sync + 'static {
    /// Sends one encoded push; `tenant`, when set, replaces the endpoint's
    /// `X-Scope-OrgID` (a `tenant` pipeline stage chose it).
    fn push(
        &self,
        body: Bytes,
        timeout: Duration,
        tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult>;
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
    /// `loki-headers`, marked sensitive (a value may be an API key).
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl LokiClient {
    /// Builds the client from TLS files and credentials already read (see
    /// [`crate::ship::tls::load_tls`], [`crate::ship::secrets::load`]). Opens
    /// no connection, so a container starts even while Loki is down.
    pub fn new(
        config: &EndpointConfig,
        tls: &TlsMaterial,
        credentials: &Credentials,
    ) -> Result<LokiClient, String> {
        // The URLs come without credentials from the options; redacted
        // again here so no future caller can make an error echo a password.
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e| format!("loki-url {}: {e}", redact_url(&config.url)))?;
        let authorization = credentials.authorization.clone();
        let headers = config
            .headers
            .0
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("loki-headers: {name} is not a valid header name"))?;
                let mut value = HeaderValue::from_str(value)
                    .map_err(|_| format!("loki-headers: the value of {name} is not valid"))?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, String>>()?;
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
            headers,
        })
    }

    /// Sends one encoded push; `timeout` bounds the whole exchange.
    pub async fn send(&self, body: Bytes, timeout: Duration, tenant: Option<&str>) -> PushResult {
        let tenant = match tenant {
            None => self.tenant.clone(),
            Some(t) => match HeaderValue::from_str(t) {
                Ok(value) => Some(value),
                Err(_) => {
                    return PushResult::Answered {
                        status: hyper::StatusCode::BAD_REQUEST,
                        body: format!(
                            "the tenant stage chose a tenant ID that is not a valid header value: {:?}",
                            crate::config::units::shorten(t, 64)
                        ),
                        retry_after: None,
                    };
                }
            },
        };
        let mut request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(USER_AGENT, crate::USER_AGENT)
            .body(Full::new(body))
            .expect("request parts are valid");
        let headers = request.headers_mut();
        // Given ones first: none may replace what follows (options refuse
        // those names), but they may replace User-Agent.
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(tenant) = tenant {
            headers.insert("X-Scope-OrgID", tenant);
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
    fn push(
        &self,
        body: Bytes,
        timeout: Duration,
        tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult> {
        Box::pin(async move { self.send(body, timeout, tenant.as_deref()).await })
    }
}

/// How often the TLS and credential files of an endpoint are looked at for
/// a renewal.
const TLS_RECHECK: Duration = Duration::from_secs(30);
/// After a 401 or 403, the credential file is looked at again at once, but
/// not more often than this.
const CREDENTIALS_RECHECK: Duration = Duration::from_secs(1);

/// The stamps of the files a client was built from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stamps {
    tls: TlsFingerprint,
    secret: SecretFingerprint,
}

/// A [`LokiClient`] that is rebuilt when its TLS or credential files change
/// on disk (certificate renewal, token rotation), looked at every
/// [`TLS_RECHECK`] at most, and at once when Loki answers 401 or 403: a
/// push refused because the token just rotated is sent again with the new
/// one instead of being dropped.
pub struct ReloadingClient {
    config: EndpointConfig,
    current: std::sync::Mutex<(Arc<LokiClient>, Stamps)>,
    checked: std::sync::Mutex<std::time::Instant>,
    /// When a 401 or 403 last made it look.
    forced: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ReloadingClient {
    /// Reads the TLS and credential files (off the runtime, bounded) and
    /// builds the client.
    pub async fn new(config: &EndpointConfig) -> Result<ReloadingClient, String> {
        let (client, stamps) = ReloadingClient::build(config).await?;
        Ok(ReloadingClient {
            config: config.clone(),
            current: std::sync::Mutex::new((Arc::new(client), stamps)),
            checked: std::sync::Mutex::new(std::time::Instant::now()),
            forced: std::sync::Mutex::new(None),
        })
    }

    async fn build(config: &EndpointConfig) -> Result<(LokiClient, Stamps), String> {
        let tls = load_tls(&config.tls).await?;
        let credentials = secrets::load(config.auth.as_ref()).await?;
        let client = LokiClient::new(config, &tls, &credentials)?;
        let stamps = Stamps {
            tls: *tls.fingerprint(),
            secret: credentials.fingerprint,
        };
        Ok((client, stamps))
    }

    fn client(&self) -> Arc<LokiClient> {
        self.current.lock().expect("client lock poisoned").0.clone()
    }

    /// The stamps of the files now; `None` when there are none or one
    /// cannot be looked at (keep the current client).
    async fn stamps_now(&self) -> Option<Stamps> {
        let watch_tls = tls::has_files(&self.config.tls);
        let watch_secret = secrets::has_file(self.config.auth.as_ref());
        if !watch_tls && !watch_secret {
            return None;
        }
        let tls = match watch_tls {
            true => tls_fingerprint(&self.config.tls).await?,
            false => TlsFingerprint::default(),
        };
        let secret = match watch_secret {
            true => secrets::fingerprint(self.config.auth.as_ref()).await?,
            false => SecretFingerprint::default(),
        };
        Some(Stamps { tls, secret })
    }

    /// Rebuilds the client if its files changed since they were read:
    /// looks every [`TLS_RECHECK`] at most, or (`forced`, after a 401 or
    /// 403) every [`CREDENTIALS_RECHECK`]. True when it was rebuilt.
    async fn refresh(&self, forced: bool) -> bool {
        let now = std::time::Instant::now();
        {
            let mut checked = self.checked.lock().expect("client lock poisoned");
            if forced {
                let mut last = self.forced.lock().expect("client lock poisoned");
                if last.is_some_and(|t| t.elapsed() < CREDENTIALS_RECHECK) {
                    return false;
                }
                *last = Some(now);
            } else if checked.elapsed() < TLS_RECHECK {
                return false;
            }
            *checked = now;
        }
        let Some(now) = self.stamps_now().await else {
            return false;
        };
        if now == self.current.lock().expect("client lock poisoned").1 {
            return false;
        }
        match ReloadingClient::build(&self.config).await {
            Ok((client, stamps)) => {
                tracing::info!(endpoint = %self.config.url, "TLS or credential files changed: using the new ones");
                *self.current.lock().expect("client lock poisoned") = (Arc::new(client), stamps);
                true
            }
            Err(err) => {
                tracing::warn!(endpoint = %self.config.url, error = %err, "TLS or credential files changed but cannot be used; keeping the previous ones");
                false
            }
        }
    }
}

impl Pusher for ReloadingClient {
    fn push(
        &self,
        body: Bytes,
        timeout: Duration,
        tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult> {
        Box::pin(async move {
            self.refresh(false).await;
            let started = std::time::Instant::now();
            let result = self
                .client()
                .send(body.clone(), timeout, tenant.as_deref())
                .await;
            let refused = matches!(&result, PushResult::Answered { status, .. }
                if matches!(status.as_u16(), 401 | 403));
            if refused && secrets::has_file(self.config.auth.as_ref()) && self.refresh(true).await {
                let left = timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1));
                return self.client().send(body, left, tenant.as_deref()).await;
            }
            result
        })
    }
}

/// A `Basic` credentials header (of `loki-proxy-url`), marked sensitive so
/// it is never printed.
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

/// How long a lookup of `loki-url`'s host is remembered: containers started
/// together with the same URL share one lookup, each getting its warning.
const LOOKUP_REMEMBERED: Duration = Duration::from_secs(10);
/// A lookup that takes longer than this counts as failed.
const LOOKUP_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Looks up the host of an endpoint's `loki-url` from the plugin, off the
/// caller (StartLogging answers at once), and logs a warning naming
/// `container` when it does not resolve: the plugin runs in the host's
/// network namespace, where the names of compose services and containers
/// do not resolve, and says what to use instead. Called once per container
/// start, so the warning comes once per container, not at every retry.
/// Nothing is looked up for an IP address or behind `loki-proxy-url` (the
/// proxy resolves the name).
pub fn check_host_resolves(config: &EndpointConfig, container: &str) {
    if config.proxy_url.is_some() {
        return;
    }
    let Ok(url) = url::Url::parse(&config.url) else {
        return;
    };
    let Some(url::Host::Domain(host)) = url.host() else {
        return;
    };
    let (host, port) = (host.to_string(), url.port_or_known_default().unwrap_or(80));
    let (container, example) = (container.to_string(), reachable_example(&url));
    tokio::spawn(async move {
        if let Err(error) = lookup_remembered(&host, port).await {
            tracing::warn!(
                container = %container,
                "{}",
                unresolvable_hint(&host, port, &error, &example)
            );
        }
    });
}

/// The warning for a `loki-url` host that does not resolve.
pub fn unresolvable_hint(host: &str, port: u16, error: &str, example: &str) -> String {
    format!(
        "loki-url host {host:?} does not resolve from the plugin ({error}). The plugin runs in \
         the host's network namespace, not in a container network: compose service and container \
         names do not resolve there. Use an address the host can reach, such as a port Loki \
         publishes on the host (compose: ports: [\"{port}:3100\"] on the Loki service), with \
         loki-url={example}. Lines wait in the journal until Loki is reachable."
    )
}

/// `url` with its host replaced by 127.0.0.1: what a Loki published on the
/// host answers at.
fn reachable_example(url: &url::Url) -> String {
    let mut example = url.clone();
    let _ = example.set_host(Some("127.0.0.1"));
    example.to_string()
}

/// Resolves `host`, or says why not, remembering the outcome for
/// [`LOOKUP_REMEMBERED`].
async fn lookup_remembered(host: &str, port: u16) -> Result<(), String> {
    type Remembered =
        std::collections::HashMap<(String, u16), (std::time::Instant, Result<(), String>)>;
    static RECENT: std::sync::Mutex<Option<Remembered>> = std::sync::Mutex::new(None);
    let key = (host.to_string(), port);
    {
        let mut recent = RECENT.lock().expect("lookup cache poisoned");
        let recent = recent.get_or_insert_with(Default::default);
        recent.retain(|_, (at, _)| at.elapsed() < LOOKUP_REMEMBERED);
        if let Some((_, outcome)) = recent.get(&key) {
            return outcome.clone();
        }
    }
    let lookup = tokio::time::timeout(LOOKUP_TIME_LIMIT, tokio::net::lookup_host((host, port)));
    let outcome = match lookup.await {
        Ok(Ok(addresses)) => match addresses.count() {
            0 => Err("no address".to_string()),
            _ => Ok(()),
        },
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {LOOKUP_TIME_LIMIT:?}")),
    };
    RECENT
        .lock()
        .expect("lookup cache poisoned")
        .get_or_insert_with(Default::default)
        .insert(key, (std::time::Instant::now(), outcome.clone()));
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_says_where_the_plugin_runs_and_what_to_use() {
        let url = url::Url::parse("http://loki:3100/loki/api/v1/push").unwrap();
        let hint = unresolvable_hint(
            "loki",
            3100,
            "failed to lookup address information: Name or service not known",
            &reachable_example(&url),
        );
        assert!(
            hint.starts_with(
                "loki-url host \"loki\" does not resolve from the plugin (failed to lookup"
            ),
            "{hint}"
        );
        assert!(hint.contains("host's network namespace"), "{hint}");
        assert!(
            hint.contains("ports: [\"3100:3100\"]")
                && hint.contains("loki-url=http://127.0.0.1:3100/loki/api/v1/push."),
            "{hint}"
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_told_and_remembered() {
        let error = lookup_remembered("loki.invalid", 3100).await.unwrap_err();
        assert!(!error.is_empty());
        assert_eq!(lookup_remembered("loki.invalid", 3100).await, Err(error));
        assert_eq!(lookup_remembered("localhost", 3100).await, Ok(()));
    }
}
