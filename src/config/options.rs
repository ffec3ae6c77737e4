//! Log-opts: from the string map Docker passes in `Info.Config` to a validated
//! [`ContainerConfig`]. Names, meanings and defaults follow Grafana's
//! `loki-docker-driver`; every error names the option and the bad value.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::config::labels::is_valid_label_name;
use crate::config::template::Template;
use crate::config::units::{parse_bool, parse_duration, parse_size};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(1);
pub const DEFAULT_BATCH_SIZE: usize = 1024 * 1024;
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_RETRIES: u32 = 10;
/// Per-container bound on lines waiting for Loki (`loki-buffer-size`).
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024 * 1024;
/// Rotation of the local copy, as Docker's `local` driver: 20 MB x 5 files.
pub const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const DEFAULT_MAX_FILE: u32 = 5;
/// Pushes to one endpoint in flight at once (`loki-max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Per-container bound on the journal on disk (`loki-journal-size`).
pub const DEFAULT_JOURNAL_SIZE: u64 = 1024 * 1024 * 1024;

/// Every log-opt this plugin accepts, in the order `--help`-style errors list them.
pub const KNOWN_OPTIONS: &[&str] = &[
    "loki-url",
    "loki-external-labels",
    "loki-timeout",
    "loki-batch-wait",
    "loki-batch-size",
    "loki-min-backoff",
    "loki-max-backoff",
    "loki-retries",
    "loki-tenant-id",
    "loki-buffer-size",
    "loki-journal-size",
    "loki-max-in-flight",
    "loki-drop-rate-limited-batches",
    "loki-tls-ca-file",
    "loki-tls-cert-file",
    "loki-tls-key-file",
    "loki-tls-server-name",
    "loki-tls-insecure-skip-verify",
    "loki-proxy-url",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
    "max-buffer-size",
    "no-file",
    "keep-file",
    "max-size",
    "max-file",
    // Docker merges its local-cache settings into every plugin's options.
    "cache-disabled",
    "cache-max-size",
    "cache-max-file",
    "cache-compress",
];

/// Options of Grafana's driver that this version refuses rather than ignores.
const NOT_SUPPORTED_YET: &[&str] = &[
    "loki-pipeline-stages",
    "loki-pipeline-stage-file",
    "loki-relabel-config",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("unknown log-opt '{key}'; known log-opts: {}", KNOWN_OPTIONS.join(", "))]
    Unknown { key: String },
    #[error("log-opt '{key}' is not supported yet by this plugin")]
    NotSupportedYet { key: String },
    #[error(
        "log-opt '{key}' is required (for example --log-opt {key}=http://loki:3100/loki/api/v1/push)"
    )]
    Missing { key: &'static str },
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
        value: value.into(),
        reason: reason.into(),
    }
}

/// Credentials for Loki, taken from `loki-url`; never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
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
    pub auth: Option<BasicAuth>,
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
    pub buffer_size: usize,
    /// `loki-journal-size`: bound on this container's journal on disk.
    pub journal_size: u64,
    pub local_copy: LocalCopyOptions,
}

impl ContainerConfig {
    /// Validates a container's log-opts.
    pub fn from_log_opts(opts: &HashMap<String, String>) -> Result<ContainerConfig, OptionError> {
        let mut keys: Vec<&String> = opts.keys().collect();
        keys.sort();
        for key in keys {
            if NOT_SUPPORTED_YET.contains(&key.as_str()) {
                return Err(OptionError::NotSupportedYet { key: key.clone() });
            }
            if !KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(OptionError::Unknown { key: key.clone() });
            }
        }
        let get = |key: &str| opts.get(key).map(String::as_str);

        let raw_url = get("loki-url").ok_or(OptionError::Missing { key: "loki-url" })?;
        let (url, auth) = parse_loki_url("loki-url", raw_url)?;

        let duration = |key: &str, default: Duration| -> Result<Duration, OptionError> {
            get(key).map_or(Ok(default), |v| {
                parse_duration(v).map_err(|r| invalid(key, v, r))
            })
        };
        let size = |key: &str, default: u64| -> Result<u64, OptionError> {
            match get(key) {
                None => Ok(default),
                Some(v) => match parse_size(v) {
                    Ok(0) => Err(invalid(key, v, "must be greater than zero")),
                    Ok(n) => Ok(n),
                    Err(r) => Err(invalid(key, v, r)),
                },
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
        if timeout.is_zero() {
            return Err(invalid(
                "loki-timeout",
                get("loki-timeout").unwrap_or(""),
                "must be greater than zero",
            ));
        }
        let min_backoff = duration("loki-min-backoff", DEFAULT_MIN_BACKOFF)?;
        let max_backoff = duration("loki-max-backoff", DEFAULT_MAX_BACKOFF)?;
        if min_backoff > max_backoff {
            return Err(invalid(
                "loki-min-backoff",
                get("loki-min-backoff").unwrap_or("500ms"),
                format!("must not exceed loki-max-backoff ({max_backoff:?})"),
            ));
        }
        let retries = match get("loki-retries") {
            None => DEFAULT_RETRIES,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid("loki-retries", v, "expected a whole number >= 0"))?,
        };
        let tenant_id = match get("loki-tenant-id") {
            Some(v) if v.is_empty() || v.chars().any(|c| c.is_control()) => {
                return Err(invalid(
                    "loki-tenant-id",
                    v,
                    "must be a non-empty header value without control characters",
                ));
            }
            other => other.map(str::to_string),
        };
        let (proxy_url, proxy_auth) = match get("loki-proxy-url") {
            Some(v) => {
                let (url, auth) = parse_loki_url("loki-proxy-url", v)?;
                (Some(url), auth)
            }
            None => (None, None),
        };
        let path = |key: &str| get(key).map(PathBuf::from);
        let tls = TlsOptions {
            ca_file: path("loki-tls-ca-file"),
            cert_file: path("loki-tls-cert-file"),
            key_file: path("loki-tls-key-file"),
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
            tenant_id,
            timeout,
            batch_wait: duration("loki-batch-wait", DEFAULT_BATCH_WAIT)?,
            batch_size: size("loki-batch-size", DEFAULT_BATCH_SIZE as u64)? as usize,
            min_backoff,
            max_backoff,
            retries,
            tls,
            max_in_flight: match get("loki-max-in-flight") {
                None => DEFAULT_MAX_IN_FLIGHT,
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => n,
                    _ => {
                        return Err(invalid(
                            "loki-max-in-flight",
                            v,
                            "expected a whole number from 1 to 64",
                        ));
                    }
                },
            },
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
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(invalid("max-file", v, "expected a whole number >= 1")),
            },
        };

        Ok(ContainerConfig {
            endpoint,
            external_labels: parse_external_labels(get("loki-external-labels").unwrap_or(""))?,
            labels: comma_list(get("labels")),
            labels_regex: regex("labels-regex")?,
            env: comma_list(get("env")),
            env_regex: regex("env-regex")?,
            tag: get("tag")
                .map(|v| Template::parse(v).map_err(|r| invalid("tag", v, r)))
                .transpose()?,
            buffer_size: size("loki-buffer-size", DEFAULT_BUFFER_SIZE as u64)? as usize,
            journal_size: size("loki-journal-size", DEFAULT_JOURNAL_SIZE)?,
            local_copy: LocalCopyOptions {
                no_file: boolean("no-file")?,
                keep_file: boolean("keep-file")?,
                max_size,
                max_file,
            },
        })
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

fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `name=template,name2=template2`.
fn parse_external_labels(value: &str) -> Result<Vec<(String, Template)>, OptionError> {
    const KEY: &str = "loki-external-labels";
    let mut labels = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, template) = pair
            .split_once('=')
            .ok_or_else(|| invalid(KEY, value, format!("{pair:?} is not name=value")))?;
        let name = name.trim();
        if !is_valid_label_name(name) {
            return Err(invalid(
                KEY,
                value,
                format!(
                    "{name:?} is not a valid Loki label name (letters, digits and _, not starting with a digit)"
                ),
            ));
        }
        let template = Template::parse(template.trim()).map_err(|r| invalid(KEY, value, r))?;
        labels.push((name.to_string(), template));
    }
    Ok(labels)
}

/// Splits a Loki URL into a loggable URL and its credentials.
fn parse_loki_url(key: &str, raw: &str) -> Result<(String, Option<BasicAuth>), OptionError> {
    let mut url =
        url::Url::parse(raw).map_err(|e| invalid(key, &redact_url(raw), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            &redact_url(raw),
            "must be an http:// or https:// URL",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, &redact_url(raw), "has no host"));
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
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url.to_string(), auth))
}

/// Hides the password of a URL that may not even parse, for error messages.
pub fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_string();
    };
    let authority_end = raw[scheme_end..]
        .find('/')
        .map_or(raw.len(), |i| scheme_end + i);
    match raw[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &raw[scheme_end..scheme_end + at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{}:<redacted>{}",
                &raw[..scheme_end],
                user,
                &raw[scheme_end + at..]
            )
        }
        None => raw.to_string(),
    }
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
        let auth = config.endpoint.auth.clone().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("bob", "s@cret")
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
    fn pipeline_and_relabel_are_not_supported_yet() {
        for key in [
            "loki-pipeline-stages",
            "loki-pipeline-stage-file",
            "loki-relabel-config",
        ] {
            let err = parse(&[(key, "x")]).unwrap_err();
            assert!(err.to_string().contains("not supported yet"), "{err}");
        }
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
        assert_eq!(redact_url("http://u:p@h:1/x"), "http://u:<redacted>@h:1/x");
        assert_eq!(redact_url("http://h/x@y"), "http://h/x@y");
        assert_eq!(redact_url("garbage"), "garbage");
    }
}
