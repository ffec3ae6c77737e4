//! Log-opts: from the string map Docker passes in `Info.Config` to a validated
//! [`ContainerConfig`]. Names, meanings and defaults follow Grafana's
//! `loki-docker-driver`; every error names the option and the bad value.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::config::table::{self, Kind};
pub use crate::config::table::{
    MAX_BACKOFF, MAX_BATCH_SIZE, MAX_BATCH_WAIT, MAX_BUFFER_SIZE, MAX_IN_FLIGHT, MAX_JOURNAL_SIZE,
    MAX_MAX_FILE, MAX_MAX_SIZE, MAX_RETRIES, MAX_TIMEOUT, MIN_JOURNAL_SIZE, MIN_MAX_SIZE,
    MIN_MIN_BACKOFF,
};
use crate::config::template::Template;
use crate::config::units::{
    format_duration, format_size, parse_bool, parse_duration, parse_size, shorten,
};
use crate::process::entry::is_valid_label_name;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(1);
pub const DEFAULT_BATCH_SIZE: usize = 1024 * 1024;
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_RETRIES: u32 = 10;
/// Per-container bound on lines waiting for Loki (`loki-buffer-size`).
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024 * 1024;
/// Without `loki-buffer-size`, lines the journal holds leave memory past
/// this: delivery reads them back from disk, so a Loki that lags costs the
/// plugin disk reads, not 16 MB of memory per container.
pub const DEFAULT_JOURNALED_MEMORY: usize = 1024 * 1024;
/// Rotation of the local copy, as Docker's `local` driver: 20 MB x 5 files.
pub const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const DEFAULT_MAX_FILE: u32 = 5;
/// Pushes to one endpoint in flight at once (`loki-max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Per-container bound on the journal on disk (`loki-journal-size`).
pub const DEFAULT_JOURNAL_SIZE: u64 = 1024 * 1024 * 1024;

// Bounds of every numeric log-opt. A value outside them is refused at
// StartLogging with a message naming the option, the value and the bound:
// past them a value is a typo or an attack, and accepting it would overflow
// time arithmetic, exhaust memory or make the plugin spin. The README's
// options table shows them; the reasons are in the comments.

/// Loki refuses tenant IDs longer than 150 bytes.
pub const MAX_TENANT_ID_LEN: usize = 150;
/// Where the plugin's `secrets` mount puts the host directory of credential
/// files that `loki-password-file` and `loki-bearer-token-file` name.
pub const DEFAULT_SECRETS_DIR: &str = "/run/secrets/loki";
/// Extra headers per endpoint (`loki-headers`).
pub const MAX_HEADERS: usize = 64;
/// Structured metadata names per entry (`loki-structured-metadata`): Loki 3's
/// default `max_structured_metadata_entries_count`.
pub const MAX_METADATA: usize = 128;
/// The default `loki-structured-metadata`: the full container ID, which
/// would make a new stream per container as a label.
pub const DEFAULT_STRUCTURED_METADATA: &str = "container_id={{.FullID}}";
/// Longest value quoted in an error message.
const MAX_SHOWN_VALUE: usize = 200;

fn range_of(key: &str) -> Kind {
    table::spec(key)
        .map(|s| s.kind)
        .filter(|k| *k != Kind::Value)
        .expect("every numeric option has a range")
}

/// Parses a count strictly: ASCII digits only (no sign, no spaces inside).
fn parse_count(value: &str) -> Option<u32> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `max-file` as json-file reads it (Go's `strconv.Atoi`, at least 1): any
/// positive number that fits an `int64`, kept as at most `u32::MAX`
/// segments, which no disk bound would ever let exist.
fn parse_max_file(value: &str) -> Option<u32> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    (n >= 1).then(|| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Log-opts recorded by an earlier run of the plugin, with every numeric
/// value that parses but lies outside its range moved to the nearest bound.
/// For re-attaching after an upgrade: refusing the options a running
/// container was started with (a `max-size=20k` an older version accepted)
/// would leave its FIFO unread and the container blocked. Returns the
/// options and one message per value changed. Values that do not parse at
/// all are left as they are, for validation to refuse.
pub fn clamp_to_ranges(opts: &HashMap<String, String>) -> (HashMap<String, String>, Vec<String>) {
    let mut clamped = opts.clone();
    let mut changes = Vec::new();
    for (key, range) in table::ranges() {
        let Some(value) = opts.get(key) else {
            continue;
        };
        let bound = match range {
            Kind::Value => None,
            Kind::Duration(min, max) => parse_duration(value)
                .ok()
                .filter(|d| *d < min || *d > max)
                .map(|d| format_duration(d.clamp(min, max))),
            Kind::Size(min, max) => parse_size(value)
                .ok()
                .filter(|n| *n != 0 && (*n < min || *n > max))
                .map(|n| format_size(n.clamp(min, max))),
            Kind::Count(min, max) => parse_count(value)
                .filter(|n| *n < min || *n > max)
                .map(|n| n.clamp(min, max).to_string()),
        };
        if let Some(bound) = bound {
            changes.push(format!(
                "{key}={:?} is out of range; using {bound}",
                shorten(value, MAX_SHOWN_VALUE)
            ));
            clamped.insert(key.to_string(), bound);
        }
    }
    // Clamping may make the backoffs cross: keep min <= max.
    let backoff = |key: &str| clamped.get(key).and_then(|v| parse_duration(v).ok());
    if let (Some(min), Some(max)) = (backoff("loki-min-backoff"), backoff("loki-max-backoff"))
        && min > max
        && !changes.is_empty()
    {
        clamped.insert("loki-min-backoff".into(), format_duration(max));
    }
    (clamped, changes)
}

/// Largest `loki-pipeline-stage-file` read.
pub const MAX_STAGE_FILE_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("unknown log-opt '{key}'{}; known log-opts: {}", crate::config::hints::unknown_option(key), table::names().collect::<Vec<_>>().join(", "))]
    Unknown { key: String },
    #[error(
        "log-opt '{key}' is required (for example --log-opt {key}=http://loki:3100/loki/api/v1/push, or for every container: docker plugin set loki LOG_OPTS='{{\"{key}\":\"http://loki:3100/loki/api/v1/push\"}}')"
    )]
    Missing { key: &'static str },
    #[error("log-opts {keys}: {reason}")]
    Conflict { keys: String, reason: String },
    #[error("invalid log-opt {key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> OptionError {
    OptionError::Invalid {
        key: key.into(),
        value: shorten(value, MAX_SHOWN_VALUE),
        reason: reason.into(),
    }
}

/// The error for an option whose value may be a secret: the value is never
/// shown, only `reason` (which must not quote it either).
fn invalid_secret(key: &str, reason: impl Into<String>) -> OptionError {
    OptionError::Invalid {
        key: key.into(),
        value: "<redacted>".into(),
        reason: reason.into(),
    }
}

fn conflict(keys: &[&str], reason: impl Into<String>) -> OptionError {
    OptionError::Conflict {
        keys: keys.join(" and "),
        reason: reason.into(),
    }
}

/// Checks that `value` (parsed from the option `key`) lies in `[min, max]`.
fn in_range<T: PartialOrd>(
    key: &str,
    raw: Option<&str>,
    value: T,
    min: T,
    max: T,
    show: impl Fn(&T) -> String,
) -> Result<T, OptionError> {
    if value < min || value > max {
        let raw = raw.map_or_else(|| show(&value), str::to_string);
        return Err(invalid(
            key,
            &raw,
            format!("must be between {} and {}", show(&min), show(&max)),
        ));
    }
    Ok(value)
}

/// Credentials in a URL (`loki-url`, `loki-proxy-url`); never printed, not
/// even the user name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token is sometimes passed as the user name (`https://TOKEN@host`).
        f.debug_struct("BasicAuth")
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A credential: inline in a log-opt, or in a file of the secrets directory
/// (read when the endpoint starts, and again when the file changes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Secret {
    Inline(String),
    File {
        /// The option that names the file, for errors.
        option: &'static str,
        path: PathBuf,
        /// The secrets directory the file must stay in, symlinks resolved.
        dir: PathBuf,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("<redacted>"),
            // A path is not a secret; the file's content is.
            Secret::File { path, .. } => write!(f, "File({path:?})"),
        }
    }
}

/// How the plugin proves itself to Loki: the `Authorization` header.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// From `loki-url` credentials, or `loki-username` with `loki-password`
    /// or `loki-password-file`.
    Basic { username: String, password: Secret },
    /// `loki-bearer-token` or `loki-bearer-token-file`.
    Bearer(Secret),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { password, .. } => f
                .debug_struct("Basic")
                .field("username", &"<redacted>")
                .field("password", password)
                .finish(),
            Auth::Bearer(token) => f.debug_tuple("Bearer").field(token).finish(),
        }
    }
}

/// `loki-headers`: extra headers of every push. Their values may be
/// secrets (API keys), so only the names are ever printed.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(pub Vec<(String, String)>);

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What validating log-opts needs besides the options themselves.
#[derive(Debug, Clone)]
pub struct OptionContext {
    /// Files named by `loki-password-file` and `loki-bearer-token-file`
    /// must lie under it (the plugin's `secrets` mount).
    pub secrets_dir: PathBuf,
    /// Reads the files stage configurations name (a stage file, a geoip
    /// database); the only I/O options validation does.
    pub files: Arc<dyn crate::process::Loader>,
}

impl Default for OptionContext {
    fn default() -> OptionContext {
        OptionContext {
            secrets_dir: PathBuf::from(DEFAULT_SECRETS_DIR),
            files: Arc::new(crate::process::NoFiles),
        }
    }
}

/// The `service_name` label (`loki-service-name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceName {
    /// The compose service (`com.docker.compose.service`), else the swarm
    /// service (`com.docker.swarm.service.name`), else none (Loki 3 then
    /// derives it from `container_name`).
    ComposeOrSwarm,
    /// `loki-service-name=""`: none.
    Off,
    Template(Template),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Everything that decides how lines reach one Loki. Containers whose
/// endpoint configs are equal share one batcher and its connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointConfig {
    /// The push URL with any credentials removed: safe to log.
    pub url: String,
    pub auth: Option<Auth>,
    /// `loki-headers`, in the order given.
    pub headers: Headers,
    /// `X-Scope-OrgID`; rendered for the container when it is a template
    /// (see [`ContainerConfig::resolve`]).
    pub tenant_id: Option<String>,
    pub timeout: Duration,
    pub batch_wait: Duration,
    pub batch_size: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Retries after the first attempt; 0 sends each batch once.
    pub retries: u32,
    pub tls: TlsOptions,
    /// Pushes in flight at once.
    pub max_in_flight: usize,
    /// Drop a batch Loki rate-limits (429) instead of retrying it, as
    /// Promtail's `drop_rate_limited_batches` does.
    pub drop_rate_limited: bool,
    /// `loki-proxy-url` with any credentials removed: safe to log.
    pub proxy_url: Option<String>,
    pub proxy_auth: Option<BasicAuth>,
}

/// Settings of the local copy behind `docker logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopyOptions {
    /// Keep no local copy; `docker logs` then answers an error.
    pub no_file: bool,
    /// Keep the copy after the container is removed.
    pub keep_file: bool,
    /// Size at which the current file is rotated; `None` means unlimited (`-1`).
    pub max_size: Option<u64>,
    /// Files kept, the current one included.
    pub max_file: u32,
}

/// A container's validated log-opts.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub endpoint: EndpointConfig,
    /// `loki-external-labels`, added to (not replacing) the default labels.
    pub external_labels: Vec<(String, Template)>,
    pub labels: Vec<String>,
    pub labels_regex: Option<Regex>,
    pub env: Vec<String>,
    pub env_regex: Option<Regex>,
    pub tag: Option<Template>,
    /// `loki-tenant-id` when it is a template: its text and the template,
    /// rendered by [`ContainerConfig::resolve`].
    pub tenant_template: Option<(String, Template)>,
    /// `loki-structured-metadata`: Loki 3 structured metadata of every entry.
    pub structured_metadata: Vec<(String, Template)>,
    /// `loki-service-name`.
    pub service_name: ServiceName,
    /// `loki-pipeline-stages` or `loki-pipeline-stage-file`: each container
    /// runs a fresh copy ([`crate::process::Pipeline::fresh`]).
    pub pipeline: Option<Arc<crate::process::Pipeline>>,
    /// `loki-relabel-config`.
    pub relabel: Option<Arc<crate::process::relabel::Relabeler>>,
    pub buffer_size: usize,
    /// Bound on this container's lines in memory that the journal also
    /// holds: `loki-buffer-size` when set, else
    /// [`DEFAULT_JOURNALED_MEMORY`].
    pub journaled_memory: usize,
    /// `loki-journal-size`: bound on this container's journal on disk.
    pub journal_size: u64,
    pub local_copy: LocalCopyOptions,
}

impl ContainerConfig {
    /// Validates a container's log-opts, with the default secrets directory.
    pub fn from_log_opts(opts: &HashMap<String, String>) -> Result<ContainerConfig, OptionError> {
        ContainerConfig::from_log_opts_in(opts, &OptionContext::default())
    }

    /// Validates a container's log-opts.
    pub fn from_log_opts_in(
        opts: &HashMap<String, String>,
        context: &OptionContext,
    ) -> Result<ContainerConfig, OptionError> {
        let mut keys: Vec<&String> = opts.keys().collect();
        keys.sort();
        for key in keys {
            if table::spec(key).is_none() {
                return Err(OptionError::Unknown { key: key.clone() });
            }
        }
        let get = |key: &str| opts.get(key).map(String::as_str);

        let raw_url = get("loki-url").ok_or(OptionError::Missing { key: "loki-url" })?;
        let (url, url_auth) = parse_loki_url("loki-url", raw_url)?;
        let auth = credentials(&get, url_auth, context)?;
        let headers = parse_headers(get("loki-headers"))?;

        let duration = |key: &str, default: Duration| -> Result<Duration, OptionError> {
            let Kind::Duration(min, max) = range_of(key) else {
                unreachable!("{key} is a duration");
            };
            let value = match get(key) {
                None => return Ok(default),
                Some(v) => parse_duration(v).map_err(|r| invalid(key, v, r))?,
            };
            in_range(key, get(key), value, min, max, |d| format_duration(*d))
        };
        let size = |key: &str, default: u64| -> Result<u64, OptionError> {
            let Kind::Size(min, max) = range_of(key) else {
                unreachable!("{key} is a size");
            };
            let value = match get(key) {
                None => return Ok(default),
                Some(v) => match parse_size(v) {
                    Ok(0) => return Err(invalid(key, v, "must be greater than zero")),
                    Ok(n) => n,
                    Err(r) => return Err(invalid(key, v, r)),
                },
            };
            in_range(key, get(key), value, min, max, |n| format_size(*n))
        };
        let count = |key: &str, default: u32| -> Result<u32, OptionError> {
            let Kind::Count(min, max) = range_of(key) else {
                unreachable!("{key} is a count");
            };
            let Some(v) = get(key) else {
                return Ok(default);
            };
            match parse_count(v) {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(invalid(
                    key,
                    v,
                    format!("expected a whole number from {min} to {max}"),
                )),
            }
        };
        let boolean = |key: &str| -> Result<bool, OptionError> {
            get(key).map_or(Ok(false), |v| parse_bool(v).map_err(|r| invalid(key, v, r)))
        };
        let regex = |key: &str| -> Result<Option<Regex>, OptionError> {
            get(key)
                .map(|v| Regex::new(v).map_err(|e| invalid(key, v, e.to_string())))
                .transpose()
        };

        let timeout = duration("loki-timeout", DEFAULT_TIMEOUT)?;
        let batch_wait = duration("loki-batch-wait", DEFAULT_BATCH_WAIT)?;
        let min_backoff = duration("loki-min-backoff", DEFAULT_MIN_BACKOFF)?;
        let max_backoff = duration("loki-max-backoff", DEFAULT_MAX_BACKOFF)?;
        if min_backoff > max_backoff {
            return Err(invalid(
                "loki-min-backoff",
                get("loki-min-backoff").unwrap_or("500ms"),
                format!(
                    "must not exceed loki-max-backoff ({})",
                    format_duration(max_backoff)
                ),
            ));
        }
        let retries = count("loki-retries", DEFAULT_RETRIES)?;
        let (tenant_id, tenant_template) = match get("loki-tenant-id") {
            None => (None, None),
            Some(v) => {
                let template = Template::parse(v).map_err(|r| invalid("loki-tenant-id", v, r))?;
                match template.literal() {
                    Some(literal) => {
                        check_tenant(&literal).map_err(|r| invalid("loki-tenant-id", v, r))?;
                        (Some(literal), None)
                    }
                    None => (None, Some((v.to_string(), template))),
                }
            }
        };
        let (proxy_url, proxy_auth) = match get("loki-proxy-url") {
            Some(v) => {
                let (url, auth) = parse_loki_url("loki-proxy-url", v)?;
                (Some(url), auth)
            }
            None => (None, None),
        };
        let path = |key: &str| -> Result<Option<PathBuf>, OptionError> {
            match get(key) {
                None => Ok(None),
                Some(v) if v.is_empty() || v.contains('\0') => {
                    Err(invalid(key, v, "expected the path of a PEM file"))
                }
                Some(v) => Ok(Some(PathBuf::from(v))),
            }
        };
        let tls = TlsOptions {
            ca_file: path("loki-tls-ca-file")?,
            cert_file: path("loki-tls-cert-file")?,
            key_file: path("loki-tls-key-file")?,
            server_name: get("loki-tls-server-name").map(str::to_string),
            insecure_skip_verify: boolean("loki-tls-insecure-skip-verify")?,
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            let key = if tls.cert_file.is_some() {
                "loki-tls-cert-file"
            } else {
                "loki-tls-key-file"
            };
            return Err(invalid(
                key,
                get(key).unwrap_or(""),
                "loki-tls-cert-file and loki-tls-key-file go together",
            ));
        }

        let endpoint = EndpointConfig {
            url,
            auth,
            headers,
            tenant_id,
            timeout,
            batch_wait,
            batch_size: to_usize(
                "loki-batch-size",
                size("loki-batch-size", DEFAULT_BATCH_SIZE as u64)?,
            )?,
            min_backoff,
            max_backoff,
            retries,
            tls,
            max_in_flight: count("loki-max-in-flight", DEFAULT_MAX_IN_FLIGHT as u32)? as usize,
            drop_rate_limited: boolean("loki-drop-rate-limited-batches")?,
            proxy_url,
            proxy_auth,
        };

        match get("mode") {
            None | Some("" | "blocking" | "non-blocking") => {}
            Some(v) => return Err(invalid("mode", v, "expected blocking or non-blocking")),
        }
        size("max-buffer-size", 1)?;
        let max_size = match get("max-size") {
            Some("-1") => None,
            _ => Some(size("max-size", DEFAULT_MAX_SIZE)?),
        };
        let max_file = match get("max-file") {
            None => DEFAULT_MAX_FILE,
            Some(v) => parse_max_file(v).ok_or_else(|| {
                invalid("max-file", v, "expected a whole number greater than zero")
            })?,
        };

        let mut config = ContainerConfig {
            endpoint,
            external_labels: parse_templates(
                "loki-external-labels",
                get("loki-external-labels").unwrap_or(""),
            )?,
            labels: comma_list(get("labels")),
            labels_regex: regex("labels-regex")?,
            env: comma_list(get("env")),
            env_regex: regex("env-regex")?,
            tag: get("tag")
                .map(|v| Template::parse(v).map_err(|r| invalid("tag", v, r)))
                .transpose()?,
            tenant_template,
            structured_metadata: parse_templates(
                "loki-structured-metadata",
                get("loki-structured-metadata").unwrap_or(DEFAULT_STRUCTURED_METADATA),
            )?,
            service_name: match get("loki-service-name") {
                None => ServiceName::ComposeOrSwarm,
                Some("") => ServiceName::Off,
                Some(v) => ServiceName::Template(
                    Template::parse(v).map_err(|r| invalid("loki-service-name", v, r))?,
                ),
            },
            pipeline: pipeline(&get, context)?,
            relabel: match get("loki-relabel-config") {
                None => None,
                Some(v) => Some(Arc::new(
                    crate::process::relabel::parse(v)
                        .map_err(|e| invalid("loki-relabel-config", v, e))?,
                )),
            },
            buffer_size: to_usize(
                "loki-buffer-size",
                size("loki-buffer-size", DEFAULT_BUFFER_SIZE as u64)?,
            )?,
            journaled_memory: DEFAULT_JOURNALED_MEMORY,
            journal_size: size("loki-journal-size", DEFAULT_JOURNAL_SIZE)?,
            local_copy: LocalCopyOptions {
                no_file: boolean("no-file")?,
                keep_file: boolean("keep-file")?,
                max_size,
                max_file,
            },
        };
        // A `loki-buffer-size` that is set bounds every line alike.
        if get("loki-buffer-size").is_some() {
            config.journaled_memory = config.buffer_size;
        }
        Ok(config)
    }

    /// Renders what depends on the container (a templated `loki-tenant-id`)
    /// into the endpoint, so that the endpoint identifies one Loki tenant.
    pub fn resolve(
        mut self,
        info: &crate::protocol::ContainerInfo,
        hostname: &str,
    ) -> Result<ContainerConfig, OptionError> {
        if let Some((text, template)) = self.tenant_template.take() {
            let tenant = template.render(info, hostname);
            check_tenant(&tenant).map_err(|r| {
                invalid(
                    "loki-tenant-id",
                    &text,
                    format!(
                        "renders to {:?} for this container, which {r}",
                        shorten(&tenant, MAX_SHOWN_VALUE)
                    ),
                )
            })?;
            self.endpoint.tenant_id = Some(tenant);
        }
        Ok(self)
    }

    /// Whether the env variable `name` becomes a label (`env` / `env-regex`).
    pub fn wants_env(&self, name: &str) -> bool {
        self.env.iter().any(|e| e == name)
            || self.env_regex.as_ref().is_some_and(|r| r.is_match(name))
    }

    /// Whether the container label `name` becomes a label (`labels` / `labels-regex`).
    pub fn wants_label(&self, name: &str) -> bool {
        self.labels.iter().any(|l| l == name)
            || self.labels_regex.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The pipeline of `loki-pipeline-stages` or `loki-pipeline-stage-file`
/// (not both, as in Grafana's driver); `None` without stages.
fn pipeline<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    context: &OptionContext,
) -> Result<Option<Arc<crate::process::Pipeline>>, OptionError> {
    use crate::process::Pipeline;
    let parsed = match (get("loki-pipeline-stages"), get("loki-pipeline-stage-file")) {
        (Some(_), Some(_)) => {
            return Err(conflict(
                &["loki-pipeline-stages", "loki-pipeline-stage-file"],
                "only one of them can be set",
            ));
        }
        (Some(text), None) => Pipeline::parse_inline(text, context.files.as_ref())
            .map_err(|e| invalid("loki-pipeline-stages", text, e))?,
        (None, Some(path)) => {
            let key = "loki-pipeline-stage-file";
            let bytes = context
                .files
                .read(path, MAX_STAGE_FILE_SIZE)
                .map_err(|e| invalid(key, path, format!("cannot read it: {e}")))?;
            let text =
                std::str::from_utf8(&bytes).map_err(|_| invalid(key, path, "is not UTF-8 text"))?;
            Pipeline::parse_file(text, context.files.as_ref()).map_err(|e| invalid(key, path, e))?
        }
        (None, None) => return Ok(None),
    };
    Ok((!parsed.is_empty()).then(|| Arc::new(parsed)))
}

/// A size that was range-checked; only a 16-bit target could refuse it.
fn to_usize(key: &str, value: u64) -> Result<usize, OptionError> {
    usize::try_from(value)
        .map_err(|_| invalid(key, &value.to_string(), "too large for this machine"))
}

fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What Loki accepts as a tenant ID (`X-Scope-OrgID`), or why not.
fn check_tenant(value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().any(|c| c.is_control()) {
        return Err("must be a non-empty header value without control characters".into());
    }
    if value.len() > MAX_TENANT_ID_LEN {
        return Err(format!(
            "must be at most {MAX_TENANT_ID_LEN} bytes (Loki's limit)"
        ));
    }
    Ok(())
}

/// Basic or bearer credentials from `loki-url`, `loki-username`,
/// `loki-password(-file)` and `loki-bearer-token(-file)`: at most one way,
/// since Loki gets one `Authorization` header. No error shows a value.
fn credentials<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    url_auth: Option<BasicAuth>,
    context: &OptionContext,
) -> Result<Option<Auth>, OptionError> {
    let username = get("loki-username");
    let password = secret_option(get, "loki-password", "loki-password-file", context)?;
    let bearer = secret_option(get, "loki-bearer-token", "loki-bearer-token-file", context)?;
    let password_key = || {
        if get("loki-password").is_some() {
            "loki-password"
        } else {
            "loki-password-file"
        }
    };
    let bearer_key = || {
        if get("loki-bearer-token").is_some() {
            "loki-bearer-token"
        } else {
            "loki-bearer-token-file"
        }
    };
    if let Some(username) = username
        && (username.contains(':') || username.chars().any(char::is_control))
    {
        return Err(invalid_secret(
            "loki-username",
            "must not contain ':' or control characters (basic auth)",
        ));
    }
    if password.is_some() && username.is_none() {
        return Err(conflict(
            &[password_key(), "loki-username"],
            "a password needs loki-username (basic auth)",
        ));
    }
    let basic = username.map(|username| Auth::Basic {
        username: username.to_string(),
        password: password.unwrap_or(Secret::Inline(String::new())),
    });
    if url_auth.is_some() && (basic.is_some() || bearer.is_some()) {
        let other = if basic.is_some() {
            "loki-username"
        } else {
            bearer_key()
        };
        return Err(conflict(
            &["loki-url", other],
            "loki-url carries credentials (user:password@) and they are given again; use one or the other",
        ));
    }
    if basic.is_some() && bearer.is_some() {
        return Err(conflict(
            &["loki-username", bearer_key()],
            "basic auth and a bearer token cannot both be sent: Loki gets one Authorization header",
        ));
    }
    Ok(url_auth
        .map(|a| Auth::Basic {
            username: a.username,
            password: Secret::Inline(a.password),
        })
        .or(basic)
        .or(bearer.map(Auth::Bearer)))
}

/// A credential given inline (`inline`) or in a file (`file`), not both.
fn secret_option<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    inline: &'static str,
    file: &'static str,
    context: &OptionContext,
) -> Result<Option<Secret>, OptionError> {
    match (get(inline), get(file)) {
        (Some(_), Some(_)) => Err(conflict(
            &[inline, file],
            "give the value or a file that holds it, not both",
        )),
        (Some(value), None) => {
            if value.is_empty() {
                return Err(invalid_secret(
                    inline,
                    "is empty (an unset variable in a compose file?)",
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(invalid_secret(
                    inline,
                    "must not contain control characters (it goes into an HTTP header)",
                ));
            }
            Ok(Some(Secret::Inline(value.to_string())))
        }
        (None, Some(path)) => secret_file(file, path, &context.secrets_dir).map(Some),
        (None, None) => Ok(None),
    }
}

/// A file option's path: absolute, without `.` or `..`, inside `dir`.
/// Symlinks are followed when the file is read, and must stay in `dir` too.
fn secret_file(key: &'static str, value: &str, dir: &Path) -> Result<Secret, OptionError> {
    let path = Path::new(value);
    let inside = path.is_absolute()
        && !value.contains('\0')
        && !value.split('/').any(|part| part == "." || part == "..")
        && path.starts_with(dir)
        && path != dir;
    if !inside {
        return Err(invalid(
            key,
            value,
            format!(
                "must be a file in the plugin's secrets directory {}, the host directory set with `docker plugin set loki secrets.source=/etc/loki-secrets` (for example {}/password)",
                dir.display(),
                dir.display()
            ),
        ));
    }
    Ok(Secret::File {
        option: key,
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
    })
}

/// Headers the plugin sets itself, or that another option sets, or that
/// the HTTP client manages: `loki-headers` may not set them.
fn refused_header(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "authorization" => {
            "use loki-username with loki-password(-file), or loki-bearer-token(-file)"
        }
        "proxy-authorization" => "put the proxy's credentials in loki-proxy-url",
        "x-scope-orgid" => "use loki-tenant-id",
        "host" => "the plugin sets it from loki-url",
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te"
        | "trailer" | "upgrade" | "expect" => "the HTTP client manages it",
        _ if lower.starts_with("content-") => "the plugin sets it for its protobuf pushes",
        _ => return None,
    })
}

/// Parses `loki-headers`: `Name=value,Name2=value2`. Values may be secrets:
/// errors name the header, never a value.
fn parse_headers(value: Option<&str>) -> Result<Headers, OptionError> {
    const KEY: &str = "loki-headers";
    let Some(value) = value else {
        return Ok(Headers::default());
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let entries = value.split(',').map(str::trim).filter(|e| !e.is_empty());
    for (n, entry) in entries.enumerate() {
        let Some((name, header_value)) = entry.split_once('=') else {
            return Err(invalid_secret(
                KEY,
                format!("entry {} is not Name=value", n + 1),
            ));
        };
        let (name, header_value) = (name.trim(), header_value.trim());
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(invalid_secret(
                KEY,
                format!("entry {} does not start with a header name", n + 1),
            ));
        }
        if let Some(why) = refused_header(name) {
            return Err(invalid_secret(
                KEY,
                format!("{name} cannot be set here: {why}"),
            ));
        }
        if header_value.is_empty()
            || !header_value
                .chars()
                .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
        {
            return Err(invalid_secret(
                KEY,
                format!(
                    "the value of {name} must be non-empty printable ASCII (commas cannot be given)"
                ),
            ));
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(invalid_secret(KEY, format!("{name} is given twice")));
        }
        headers.push((name.to_string(), header_value.to_string()));
    }
    if headers.len() > MAX_HEADERS {
        return Err(invalid_secret(
            KEY,
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    Ok(Headers(headers))
}

/// Parses `name=template,name2=template2` (`loki-external-labels`,
/// `loki-structured-metadata`): names as Loki label names.
fn parse_templates(key: &'static str, value: &str) -> Result<Vec<(String, Template)>, OptionError> {
    let mut labels = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, template) = pair
            .split_once('=')
            .ok_or_else(|| invalid(key, value, format!("{pair:?} is not name=value")))?;
        let name = name.trim();
        if !is_valid_label_name(name) {
            return Err(invalid(
                key,
                value,
                format!(
                    "{name:?} is not a valid Loki label name (letters, digits and _, not starting with a digit)"
                ),
            ));
        }
        let template = Template::parse(template.trim()).map_err(|r| invalid(key, value, r))?;
        labels.push((name.to_string(), template));
    }
    if key == "loki-structured-metadata" && labels.len() > MAX_METADATA {
        return Err(invalid(key, value, format!("at most {MAX_METADATA} names")));
    }
    Ok(labels)
}

/// How to write a password that breaks a URL, added to URL errors.
const URL_HINT: &str = "if the user name or password contains / ? # @ % or spaces, percent-encode them (%2F %3F %23 %40 %25 %20)";

/// Splits a Loki URL into a loggable URL and its credentials. Every error
/// is built from [`redact_url`]'s form of the value, never from the value.
fn parse_loki_url(key: &str, raw: &str) -> Result<(String, Option<BasicAuth>), OptionError> {
    let safe = redact_url(raw);
    let fail = |reason: String| invalid(key, &safe, reason);
    // The URL parser silently drops tabs and newlines, even inside a password.
    if raw.chars().any(char::is_control) {
        return Err(fail("contains a control character".into()));
    }
    // url's errors are fixed texts ("invalid port number"), not the input.
    let mut url = url::Url::parse(raw.trim()).map_err(|e| fail(format!("{e}; {URL_HINT}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail("must be an http:// or https:// URL".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail("has no host".into()));
    }
    // A password with an unencoded `/`, `?` or `#` ends the authority early:
    // `http://u:12/ab@host/x` parses as host `u`, port 12, path `/ab@host/x`.
    // An `@` after the host is that mistake, never a real Loki path.
    if url.path().contains('@')
        || url.query().is_some_and(|q| q.contains('@'))
        || url.fragment().is_some_and(|f| f.contains('@'))
    {
        return Err(fail(format!("has an @ after the host; {URL_HINT}")));
    }
    let auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some(BasicAuth {
            username: decode(url.username()),
            password: decode(url.password().unwrap_or("")),
        })
    };
    if url.set_username("").is_err() || url.set_password(None).is_err() {
        return Err(fail("cannot carry credentials".into()));
    }
    Ok((url.to_string(), auth))
}

/// A form of a URL that may not even parse, safe for error messages: if it
/// has an `@` anywhere, everything between the scheme and the last `@` is
/// replaced by `<redacted>`. Since a password may hold `/`, `?`, `#`, `:` or
/// `@`, no attempt is made to find where it ends: whatever precedes the
/// last `@` may be part of it. Without an `@` there are no credentials.
pub fn redact_url(raw: &str) -> String {
    let Some(at) = raw.rfind('@') else {
        return raw.to_string();
    };
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let start = match raw.find("://") {
        Some(i) if i < at && is_scheme(&raw[..i]) => i + 3,
        _ => 0,
    };
    format!("{}<redacted>{}", &raw[..start], &raw[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The user name and inline password of basic auth.
    fn inline_basic(auth: &Option<Auth>) -> Option<(String, String)> {
        match auth {
            Some(Auth::Basic {
                username,
                password: Secret::Inline(password),
            }) => Some((username.clone(), password.clone())),
            _ => None,
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ContainerConfig, OptionError> {
        let mut all = opts(pairs);
        all.entry("loki-url".into())
            .or_insert("http://loki:3100/loki/api/v1/push".into());
        ContainerConfig::from_log_opts(&all)
    }

    #[test]
    fn defaults_match_grafanas_driver() {
        let config = parse(&[]).unwrap();
        let e = &config.endpoint;
        assert_eq!(e.timeout, Duration::from_secs(10));
        assert_eq!(e.batch_wait, Duration::from_secs(1));
        assert_eq!(e.batch_size, 1_048_576);
        assert_eq!(e.min_backoff, Duration::from_millis(500));
        assert_eq!(e.max_backoff, Duration::from_secs(300));
        assert_eq!(e.retries, 10);
        assert_eq!(config.buffer_size, 16 << 20);
        assert_eq!(
            config.journaled_memory,
            1 << 20,
            "lines on disk leave memory sooner unless loki-buffer-size is set"
        );
        assert!(config.external_labels.is_empty());
        assert_eq!(
            config.local_copy,
            LocalCopyOptions {
                no_file: false,
                keep_file: false,
                max_size: Some(20 << 20),
                max_file: 5
            }
        );
    }

    #[test]
    fn credentials_leave_the_url_and_become_basic_auth() {
        let config = parse(&[(
            "loki-url",
            "https://bob:s%40cret@logs.example.com/loki/api/v1/push",
        )])
        .unwrap();
        assert_eq!(
            config.endpoint.url,
            "https://logs.example.com/loki/api/v1/push"
        );
        assert_eq!(
            inline_basic(&config.endpoint.auth),
            Some(("bob".to_string(), "s@cret".to_string()))
        );
        assert!(!format!("{:?}", config.endpoint).contains("s@cret"));
        let proxied = parse(&[("loki-proxy-url", "http://px:Pr0xy%21@proxy:3128")]).unwrap();
        assert_eq!(
            proxied.endpoint.proxy_url.as_deref(),
            Some("http://proxy:3128/")
        );
        assert_eq!(
            proxied.endpoint.proxy_auth.as_ref().unwrap().password,
            "Pr0xy!"
        );
        assert!(!format!("{:?}", proxied.endpoint).contains("Pr0xy"));
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_the_password() {
        let err = parse(&[("loki-url", "ftp://bob:hunter2@loki/push")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("loki-url") && err.contains("http"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse(&[("loki-url", "not a url")]).is_err());
        let missing = ContainerConfig::from_log_opts(&opts(&[])).unwrap_err();
        assert_eq!(missing, OptionError::Missing { key: "loki-url" });
    }

    #[test]
    fn unknown_options_are_refused_with_the_known_list() {
        let err = parse(&[("loki-batch-sise", "10")]).unwrap_err().to_string();
        assert!(
            err.contains("'loki-batch-sise'") && err.contains("loki-batch-size"),
            "{err}"
        );
    }

    #[test]
    fn pipeline_options_are_read_as_grafanas_driver_reads_them() {
        let config = parse(&[(
            "loki-pipeline-stages",
            "- json: {expressions: {level: }}\n- labels: {level: }\n",
        )])
        .unwrap();
        assert_eq!(config.pipeline.unwrap().names(), ["json", "labels"]);
        let config = parse(&[("loki-pipeline-stages", r#"[{"docker":{}}]"#)]);
        assert!(config.is_ok() || config.unwrap_err().to_string().contains("docker"));
        assert!(
            parse(&[("loki-pipeline-stages", "[]")])
                .unwrap()
                .pipeline
                .is_none()
        );
        let both = parse(&[
            ("loki-pipeline-stages", "[]"),
            ("loki-pipeline-stage-file", "/x.yml"),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("only one of them"), "{both}");
        let bad = parse(&[("loki-pipeline-stages", "[{json: {sauce: x}}]")]).unwrap_err();
        assert!(
            bad.to_string().contains("invalid json stage config")
                && bad.to_string().contains("sauce"),
            "{bad}"
        );
        let unknown = parse(&[("loki-pipeline-stages", "[{jsno: {}}]")]).unwrap_err();
        assert!(
            unknown.to_string().contains("Unknown stage type: jsno"),
            "{unknown}"
        );
    }

    #[test]
    fn a_stage_file_is_read_through_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stages.yml"),
            "pipeline_stages:\n  - regex: {expression: '(?P<a>x)'}\n",
        )
        .unwrap();
        let context = OptionContext {
            secrets_dir: dir.path().into(),
            files: Arc::new(crate::files::UserFiles::new(dir.path().into())),
        };
        let with = |file: &str| {
            let mut o = opts(&[("loki-url", "http://loki:3100/loki/api/v1/push")]);
            o.insert("loki-pipeline-stage-file".into(), file.into());
            ContainerConfig::from_log_opts_in(&o, &context)
        };
        assert_eq!(
            with("stages.yml").unwrap().pipeline.unwrap().names(),
            ["regex"]
        );
        let missing = with("nope.yml").unwrap_err().to_string();
        assert!(missing.contains("secrets mount"), "{missing}");
        std::fs::write(dir.path().join("inline.yml"), "- regex: {expression: x}\n").unwrap();
        let inline = with("inline.yml").unwrap_err().to_string();
        assert!(
            inline.contains("pipeline_stages"),
            "the file form has a key: {inline}"
        );
    }

    #[test]
    fn bad_values_name_the_option_and_the_value() {
        let cases = [
            ("loki-timeout", "ten"),
            ("loki-batch-wait", "1 second"),
            ("loki-batch-size", "huge"),
            ("loki-batch-size", "0"),
            ("loki-retries", "-1"),
            ("loki-buffer-size", "16q"),
            ("loki-tls-insecure-skip-verify", "yes"),
            ("mode", "fast"),
            ("max-file", "0"),
            ("labels-regex", "("),
            ("tag", "{{.Nope}}"),
        ];
        for (key, value) in cases {
            let err = parse(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(&format!("{value:?}")),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn min_backoff_may_not_exceed_max() {
        let err = parse(&[("loki-min-backoff", "10s"), ("loki-max-backoff", "1s")]).unwrap_err();
        assert!(err.to_string().contains("loki-max-backoff"), "{err}");
    }

    #[test]
    fn external_labels_are_validated() {
        let config =
            parse(&[("loki-external-labels", "job=docker, image={{.ImageName}}")]).unwrap();
        let names: Vec<_> = config
            .external_labels
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["job", "image"]);
        for bad in ["1job=x", "my-job=x", "job", "job={{.Nope}}"] {
            let err = parse(&[("loki-external-labels", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("loki-external-labels"), "{bad}: {err}");
        }
    }

    #[test]
    fn docker_and_cache_options_are_accepted() {
        let config = parse(&[
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
            ("no-file", "true"),
            ("keep-file", "false"),
            ("max-size", "20m"),
            ("max-file", "5"),
            ("cache-disabled", "false"),
        ])
        .unwrap();
        assert_eq!(
            config.local_copy,
            LocalCopyOptions {
                no_file: true,
                keep_file: false,
                max_size: Some(20 << 20),
                max_file: 5
            }
        );
    }

    #[test]
    fn env_and_label_selection() {
        let config = parse(&[
            ("env", "APP_ENV, REGION"),
            ("labels-regex", "^tier$"),
            ("env-regex", "^OTEL_"),
        ])
        .unwrap();
        assert!(config.wants_env("APP_ENV") && config.wants_env("OTEL_SERVICE"));
        assert!(!config.wants_env("SECRET_TOKEN"));
        assert!(config.wants_label("tier") && !config.wants_label("tiers"));
    }

    #[test]
    fn redaction_handles_unparseable_urls() {
        assert_eq!(redact_url("http://u:p@h:1/x"), "http://<redacted>@h:1/x");
        assert_eq!(
            redact_url("http://user:pa/ss@host/loki/api/v1/push"),
            "http://<redacted>@host/loki/api/v1/push"
        );
        assert_eq!(redact_url("http://h/x@y"), "http://<redacted>@y");
        assert_eq!(redact_url("user:pass@host:3100"), "<redacted>@host:3100");
        assert_eq!(redact_url("user:pa://ss@host"), "<redacted>@host");
        assert_eq!(redact_url("garbage"), "garbage");
        assert_eq!(redact_url("http://host/x"), "http://host/x");
    }

    /// Passwords with every character that can break a URL, and URLs
    /// without a scheme: whatever the parser makes of them, no error, URL
    /// or debug output shows either half of the password.
    #[test]
    fn no_url_error_ever_shows_the_password() {
        let specials = [
            "/",
            "@",
            "#",
            "?",
            ":",
            "%",
            " ",
            "é日本",
            "//",
            "/@",
            "@/",
            "#@",
            "?x=1@",
            "%2",
            "%zz",
            ":@:",
            "\\",
            "\t",
            "\n",
            "\"",
            "[",
            "]",
            "://",
            "/ss@h0st:99/x",
            "",
        ];
        for special in specials {
            let password = format!("S3CR{special}3T9x");
            let secret_parts = ["S3CR", "3T9x"];
            let mut urls = vec![
                format!("http://alice:{password}@loki:3100/loki/api/v1/push"),
                format!("https://alice:{password}@loki/loki/api/v1/push"),
                format!("http://{password}@loki:3100/loki/api/v1/push"),
                format!("http://alice:{password}@loki:3100"),
                format!("alice:{password}@loki:3100/loki/api/v1/push"),
                format!("//alice:{password}@loki:3100/loki/api/v1/push"),
                format!("http:/alice:{password}@loki:3100/loki/api/v1/push"),
                format!("ftp://alice:{password}@loki/push"),
                format!("http://alice:{password}@/push"),
                format!("http://alice:{password}@loki:99999/push"),
                format!("http://alice:{password}@loki/a@b"),
            ];
            urls.push(format!("  {}  ", urls[0]));
            for key in ["loki-url", "loki-proxy-url"] {
                for (i, url) in urls.iter().enumerate() {
                    let mut pairs = vec![(key, url.as_str())];
                    if key == "loki-proxy-url" {
                        pairs.push(("loki-url", "http://loki:3100/loki/api/v1/push"));
                    }
                    let shown = match ContainerConfig::from_log_opts(&opts(&pairs)) {
                        Ok(config) => {
                            let e = &config.endpoint;
                            let auth = if key == "loki-url" {
                                inline_basic(&e.auth)
                            } else {
                                e.proxy_auth
                                    .as_ref()
                                    .map(|a| (a.username.clone(), a.password.clone()))
                            };
                            if i < 2 {
                                let decoded = auth.map(|(_, password)| password);
                                let expected = percent_encoding::percent_decode_str(&password)
                                    .decode_utf8_lossy()
                                    .into_owned();
                                assert_eq!(decoded, Some(expected), "{url}");
                            }
                            format!("{} {:?} {:?}", e.url, e.proxy_url, config.endpoint)
                        }
                        Err(err) => {
                            let err = err.to_string();
                            assert!(err.contains(key), "{url}: {err}");
                            err
                        }
                    };
                    for part in secret_parts {
                        assert!(!shown.contains(part), "{key}={url:?} shows {part}: {shown}");
                    }
                }
            }
        }
    }

    #[test]
    fn no_url_makes_parsing_or_redaction_panic() {
        let alphabet = [
            "http", "https", "://", ":", "/", "//", "@", "#", "?", "%", "%2", "%zz", "[", "]",
            "::1", "user", "S3CR", "host", "99999", "0", " ", "\t", "é", "日", "\\", ".", "xn--",
        ];
        for text in crate::config::units::tests::arbitrary_strings(&alphabet, 20_000) {
            let redacted = redact_url(&text);
            if let Some(at) = text.rfind('@') {
                // Only a scheme may remain before the placeholder.
                let kept = redacted
                    .strip_suffix(&format!("<redacted>{}", &text[at..]))
                    .unwrap_or_else(|| panic!("{text:?} -> {redacted:?}"));
                let scheme = kept.strip_suffix("://").unwrap_or(kept);
                assert!(
                    scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)),
                    "{text:?} -> {redacted:?}"
                );
            }
            if let Err(err) = parse_loki_url("loki-url", &text) {
                let err = err.to_string();
                if text.contains('@') {
                    assert!(err.contains("<redacted>"), "{text:?}: {err}");
                }
            }
        }
    }

    #[test]
    fn a_password_with_a_slash_is_refused_with_a_hint() {
        let err = parse(&[("loki-url", "http://user:pa/ss@host/loki/api/v1/push")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pa/ss") && !err.contains("ss@"), "{err}");
        assert!(
            err.contains("http://<redacted>@host/loki/api/v1/push"),
            "{err}"
        );
        assert!(err.contains("percent-encode"), "{err}");
        // Percent-encoded, the same password works.
        let config = parse(&[("loki-url", "http://user:pa%2Fss@host/loki/api/v1/push")]).unwrap();
        assert_eq!(inline_basic(&config.endpoint.auth).unwrap().1, "pa/ss");
        // A numeric start parses as a port: caught by the @ after the host.
        let err = parse(&[("loki-url", "http://user:1234/ab@host/loki/api/v1/push")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("1234/ab"), "{err}");
    }

    /// Every numeric option has bounds; values past them (which overflowed
    /// `Instant + Duration` or exhausted memory) are refused by name.
    #[test]
    fn absurd_values_are_refused_with_their_bounds() {
        let cases = [
            ("loki-batch-wait", "5000000000000000h", "out of range"),
            ("loki-batch-wait", "2562047h", "between 0s and 1m"),
            ("loki-batch-wait", "61s", "between"),
            ("loki-timeout", "2562047h", "between 1ms and 10m"),
            ("loki-timeout", "0", "between"),
            ("loki-timeout", "10m1s", "between"),
            ("loki-min-backoff", "1000000h", "between 1ms and 1h"),
            ("loki-min-backoff", "0", "between"),
            ("loki-max-backoff", "2562047h", "between 1ms and 1h"),
            ("loki-max-backoff", "1h1ns", "between"),
            ("loki-retries", "10001", "from 0 to 10000"),
            ("loki-retries", "4294967296", "from 0 to 10000"),
            ("loki-retries", "99999999999999999999999", "from 0 to 10000"),
            ("loki-retries", "+5", "whole number"),
            ("loki-batch-size", "17m", "between 1 and 16m"),
            ("loki-batch-size", "8191p", "between"),
            ("loki-batch-size", "8192p", "out of range"),
            ("loki-buffer-size", "2g", "between 1 and 1g"),
            ("max-size", "1", "between 64k and 1g"),
            ("max-size", "63k", "between 64k and 1g"),
            ("max-size", "2g", "between"),
            ("max-size", "0", "greater than zero"),
            ("max-file", "0", "greater than zero"),
            ("loki-tenant-id", &"t".repeat(151), "150 bytes"),
        ];
        for (key, value, reason) in cases {
            let err = parse(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(reason),
                "{key}={value}: {err}"
            );
        }
        // The bounds themselves are accepted.
        let config = parse(&[
            ("loki-batch-wait", "1m"),
            ("loki-timeout", "10m"),
            ("loki-min-backoff", "1ms"),
            ("loki-max-backoff", "1h"),
            ("loki-retries", "10000"),
            ("loki-batch-size", "16m"),
            ("loki-buffer-size", "1g"),
            ("max-size", "64k"),
            ("max-file", "100"),
            ("loki-tenant-id", &"t".repeat(150)),
        ])
        .unwrap();
        assert_eq!(config.endpoint.batch_wait, MAX_BATCH_WAIT);
        assert_eq!(config.local_copy.max_size, Some(MIN_MAX_SIZE));
        assert_eq!(
            parse(&[("loki-batch-wait", "0")])
                .unwrap()
                .endpoint
                .batch_wait,
            Duration::ZERO
        );
        assert_eq!(
            parse(&[("max-size", "-1")]).unwrap().local_copy.max_size,
            None
        );
    }

    /// json-file and Grafana's driver take any positive `max-file`; the
    /// journal's disk bound (`loki-journal-size`, `LOCAL_STORE_SIZE`) is
    /// what limits the disk, not the number of files (issue 15).
    #[test]
    fn max_file_takes_any_positive_number_like_json_file() {
        for (value, kept) in [
            ("101", 101),
            ("1000", 1000),
            ("4294967295", u32::MAX),
            ("4294967296", u32::MAX),
            ("9223372036854775807", u32::MAX),
        ] {
            let config = parse(&[("max-file", value)]).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(config.local_copy.max_file, kept, "{value}");
        }
        for value in ["0", "-1", "9223372036854775808", "1.5", "+3"] {
            assert!(parse(&[("max-file", value)]).is_err(), "{value}");
        }
        // Re-attach keeps a large recorded value as it is.
        let recorded = opts(&[("max-file", "500")]);
        assert!(clamp_to_ranges(&recorded).1.is_empty());
    }

    #[test]
    fn recorded_options_are_clamped_into_range_for_reattach() {
        let recorded = opts(&[
            ("loki-url", "http://loki:3100/loki/api/v1/push"),
            ("max-size", "20k"),
            ("max-file", "500"),
            ("loki-batch-wait", "2562047h"),
            ("loki-min-backoff", "2h"),
            ("loki-max-backoff", "3h"),
            ("loki-retries", "99999999"),
            ("loki-batch-size", "1g"),
            ("loki-timeout", "1h"),
            ("loki-buffer-size", "16m"),
        ]);
        assert!(ContainerConfig::from_log_opts(&recorded).is_err());
        let (clamped, changes) = clamp_to_ranges(&recorded);
        assert_eq!(changes.len(), 7, "{changes:?}");
        assert!(changes[0].contains("loki-timeout=\"1h\"") && changes[0].contains("using 10m"));
        let config = ContainerConfig::from_log_opts(&clamped).unwrap();
        assert_eq!(config.local_copy.max_size, Some(MIN_MAX_SIZE));
        assert_eq!(
            config.local_copy.max_file, 500,
            "any positive max-file is taken"
        );
        assert_eq!(config.endpoint.batch_wait, MAX_BATCH_WAIT);
        assert_eq!(config.endpoint.min_backoff, MAX_BACKOFF);
        assert_eq!(config.endpoint.max_backoff, MAX_BACKOFF);
        assert_eq!(config.endpoint.retries, MAX_RETRIES);
        assert_eq!(config.endpoint.batch_size as u64, MAX_BATCH_SIZE);
        assert_eq!(config.endpoint.timeout, MAX_TIMEOUT);
        assert_eq!(config.buffer_size, 16 << 20, "in range: unchanged");
        assert_eq!(
            config.journaled_memory,
            16 << 20,
            "a loki-buffer-size that is set is the bound for every line"
        );
        // Values that do not parse, and -1, are left alone.
        let odd = opts(&[("loki-batch-wait", "5000000000000000h"), ("max-size", "-1")]);
        let (same, changes) = clamp_to_ranges(&odd);
        assert_eq!((same, changes.len()), (odd, 0));
        // Crossed backoffs are uncrossed.
        let (clamped, _) = clamp_to_ranges(&opts(&[
            ("loki-min-backoff", "2h"),
            ("loki-max-backoff", "30m"),
        ]));
        assert_eq!(clamped["loki-min-backoff"], "30m");
    }

    #[test]
    fn credentials_from_options_and_files_in_the_secrets_directory() {
        let config = parse(&[("loki-username", "bob"), ("loki-password", "pw,with=odd")]).unwrap();
        assert_eq!(
            inline_basic(&config.endpoint.auth),
            Some(("bob".into(), "pw,with=odd".into()))
        );
        let config = parse(&[
            ("loki-username", "bob"),
            ("loki-password-file", "/run/secrets/loki/password"),
        ])
        .unwrap();
        assert_eq!(
            config.endpoint.auth,
            Some(Auth::Basic {
                username: "bob".into(),
                password: Secret::File {
                    option: "loki-password-file",
                    path: "/run/secrets/loki/password".into(),
                    dir: DEFAULT_SECRETS_DIR.into(),
                }
            })
        );
        let config = parse(&[("loki-bearer-token", "t0ken")]).unwrap();
        assert_eq!(
            config.endpoint.auth,
            Some(Auth::Bearer(Secret::Inline("t0ken".into())))
        );
        let config = parse(&[("loki-bearer-token-file", "/run/secrets/loki/sub/token")]).unwrap();
        assert!(matches!(
            config.endpoint.auth,
            Some(Auth::Bearer(Secret::File { .. }))
        ));
        // User name alone, as in https://TOKEN@host.
        let config = parse(&[("loki-username", "12345")]).unwrap();
        assert_eq!(
            inline_basic(&config.endpoint.auth),
            Some(("12345".into(), String::new()))
        );
        // Another secrets directory (the SECRETS_DIR setting).
        let context = OptionContext {
            secrets_dir: "/elsewhere".into(),
            ..OptionContext::default()
        };
        let mut with = opts(&[
            ("loki-url", "http://loki:3100/loki/api/v1/push"),
            ("loki-bearer-token-file", "/elsewhere/token"),
        ]);
        assert!(ContainerConfig::from_log_opts_in(&with, &context).is_ok());
        with.insert(
            "loki-bearer-token-file".into(),
            "/run/secrets/loki/token".into(),
        );
        let err = ContainerConfig::from_log_opts_in(&with, &context).unwrap_err();
        assert!(err.to_string().contains("/elsewhere"), "{err}");
    }

    #[test]
    fn credential_mistakes_are_refused_without_showing_a_secret() {
        const SECRET: &str = "Sup3rS3cret";
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![("loki-password", SECRET)],
                "loki-password and loki-username",
            ),
            (
                vec![
                    ("loki-username", "bob"),
                    ("loki-password", SECRET),
                    ("loki-password-file", "/run/secrets/loki/pw"),
                ],
                "not both",
            ),
            (
                vec![
                    ("loki-bearer-token", SECRET),
                    ("loki-bearer-token-file", "/run/secrets/loki/t"),
                ],
                "not both",
            ),
            (
                vec![
                    ("loki-username", "bob"),
                    ("loki-password", SECRET),
                    ("loki-bearer-token", SECRET),
                ],
                "one Authorization header",
            ),
            (
                vec![
                    ("loki-url", "http://bob:x@loki/loki/api/v1/push"),
                    ("loki-bearer-token", SECRET),
                ],
                "loki-url carries credentials",
            ),
            (
                vec![
                    ("loki-url", "http://bob:x@loki/loki/api/v1/push"),
                    ("loki-username", "bob"),
                ],
                "loki-url carries credentials",
            ),
            (
                vec![("loki-username", "b:ob"), ("loki-password", SECRET)],
                "':'",
            ),
            (
                vec![("loki-username", "bob"), ("loki-password", "")],
                "is empty",
            ),
            (
                vec![("loki-bearer-token", "Sup3r\nS3cret")],
                "control characters",
            ),
            (
                vec![("loki-headers", "X-Key=Sup3r\u{7}S3cret")],
                "printable ASCII",
            ),
            (
                vec![("loki-headers", "X-Key:Sup3rS3cret")],
                "entry 1 is not Name=value",
            ),
            (
                vec![("loki-headers", "Authorization=Bearer Sup3rS3cret")],
                "loki-bearer-token",
            ),
            (
                vec![("loki-headers", "X-Key=Sup3rS3cret,x-key=Sup3rS3cret")],
                "given twice",
            ),
        ];
        for (pairs, reason) in cases {
            let err = parse(&pairs).unwrap_err().to_string();
            assert!(err.contains(reason), "{pairs:?}: {err}");
            assert!(
                !err.contains("Sup3r") && !err.contains("S3cret"),
                "{pairs:?}: {err}"
            );
        }
        for path in [
            "password",
            "/run/secrets/loki",
            "/run/secrets/loki/../../etc/shadow",
            "/run/secrets/loki/./pw",
            "/run/secrets/lokix/pw",
            "/etc/shadow",
            "",
        ] {
            for key in ["loki-password-file", "loki-bearer-token-file"] {
                let mut pairs = vec![(key, path)];
                if key == "loki-password-file" {
                    pairs.push(("loki-username", "bob"));
                }
                let err = parse(&pairs).unwrap_err().to_string();
                assert!(
                    err.contains(key) && err.contains("secrets directory /run/secrets/loki"),
                    "{path}: {err}"
                );
            }
        }
        let config = parse(&[
            ("loki-username", "bob"),
            ("loki-password", SECRET),
            ("loki-headers", "X-Key=Sup3rS3cret"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("Sup3r") && !shown.contains("bob"),
            "{shown}"
        );
        assert!(shown.contains("X-Key"), "header names are shown: {shown}");
    }

    #[test]
    fn headers_are_parsed_and_conflicts_refused() {
        let config = parse(&[(
            "loki-headers",
            " X-Foo = bar , X-Baz=qux quux,User-Agent=me/1",
        )])
        .unwrap();
        let pairs: Vec<(&str, &str)> = config
            .endpoint
            .headers
            .0
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("X-Foo", "bar"),
                ("X-Baz", "qux quux"),
                ("User-Agent", "me/1")
            ]
        );
        for name in [
            "Authorization",
            "proxy-authorization",
            "X-Scope-OrgID",
            "Host",
            "Content-Type",
            "content-encoding",
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
        ] {
            let err = parse(&[("loki-headers", &format!("{name}=x"))])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("loki-headers") && err.contains(name) && err.contains("cannot be set"),
                "{name}: {err}"
            );
        }
        for bad in ["=x", "X Y=z", "X-Foo=", "X-é=1"] {
            assert!(parse(&[("loki-headers", bad)]).is_err(), "{bad}");
        }
        assert!(
            parse(&[("loki-headers", "")])
                .unwrap()
                .endpoint
                .headers
                .0
                .is_empty()
        );
    }

    #[test]
    fn a_tenant_may_be_a_template_rendered_per_container() {
        let info = crate::protocol::ContainerInfo {
            container_name: "/web-1".into(),
            ..Default::default()
        };
        let literal = parse(&[("loki-tenant-id", "team-a")]).unwrap();
        assert_eq!(literal.endpoint.tenant_id.as_deref(), Some("team-a"));
        assert!(literal.tenant_template.is_none());
        let templated = parse(&[("loki-tenant-id", "team-{{.Name}}")]).unwrap();
        assert_eq!(templated.endpoint.tenant_id, None);
        let resolved = templated.resolve(&info, "vm1").unwrap();
        assert_eq!(resolved.endpoint.tenant_id.as_deref(), Some("team-web-1"));
        let empty = parse(&[("loki-tenant-id", r#"{{index .ContainerLabels "team"}}"#)])
            .unwrap()
            .resolve(&info, "vm1")
            .unwrap_err()
            .to_string();
        assert!(
            empty.contains("loki-tenant-id") && empty.contains("renders to \"\""),
            "{empty}"
        );
        assert!(parse(&[("loki-tenant-id", "{{.Nope}}")]).is_err());
    }

    #[test]
    fn structured_metadata_and_service_name() {
        let default = parse(&[]).unwrap();
        let names: Vec<&str> = default
            .structured_metadata
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["container_id"]);
        assert_eq!(default.service_name, ServiceName::ComposeOrSwarm);
        let off = parse(&[("loki-structured-metadata", ""), ("loki-service-name", "")]).unwrap();
        assert!(off.structured_metadata.is_empty());
        assert_eq!(off.service_name, ServiceName::Off);
        let custom = parse(&[
            (
                "loki-structured-metadata",
                "container_id={{.FullID}},image_id={{.ImageFullID}}",
            ),
            ("loki-service-name", "{{.Name}}"),
        ])
        .unwrap();
        assert_eq!(custom.structured_metadata.len(), 2);
        assert!(matches!(custom.service_name, ServiceName::Template(_)));
        for (key, bad) in [
            ("loki-structured-metadata", "container-id={{.ID}}"),
            ("loki-structured-metadata", "id={{.Nope}}"),
            ("loki-service-name", "{{.Nope}}"),
        ] {
            let err = parse(&[(key, bad)]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn huge_values_are_shortened_in_errors() {
        let value = "9".repeat(1 << 20);
        let err = parse(&[("loki-batch-wait", &value)])
            .unwrap_err()
            .to_string();
        assert!(err.len() < 1000, "{} bytes", err.len());
        assert!(
            err.contains("loki-batch-wait") && err.contains("1048576 bytes"),
            "{err}"
        );
    }
}
