//! Plugin-wide settings: the plugin's environment, set with
//! `docker plugin set NAME KEY=VALUE` while the plugin is disabled.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::defaults::LogOptDefaults;
use crate::config::options::{DEFAULT_SECRETS_DIR, OptionContext};
use crate::config::units::{format_duration, format_size, parse_duration, parse_size, shorten};
use crate::files::UserFiles;

/// Loki's default `max_line_size` (256KB), the longest entry sent by default.
pub const DEFAULT_MAX_LINE_SIZE: usize = 256_000;
/// Default plugin-wide bound on lines held in memory (`TOTAL_BUFFER_SIZE`).
pub const DEFAULT_TOTAL_BUFFER_SIZE: usize = 256 * 1024 * 1024;
/// Inside the plugin's propagated mount, beside the FIFOs, so attachment
/// records and journals survive a crash and `docker plugin upgrade` as the
/// FIFOs do.
pub const DEFAULT_DATA_DIR: &str = "/run/docker/logging/.loki-logdriver";
/// Where config.json's opt-in `docker-api` mount puts the Docker API socket.
/// `DOCKER_SOCKET` is empty by default: no API access, no API call.
pub const DOCKER_API_MOUNT: &str = "/var/run/docker.sock";

/// Plugin-wide settings, from the plugin's environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `host` label.
    pub hostname: String,
    /// Bound on all containers' queued lines together.
    pub total_buffer_size: usize,
    /// Longer lines are sent as several entries of at most this size.
    pub max_line_size: usize,
    /// How long shutdown keeps trying to deliver buffered lines.
    pub shutdown_grace: Duration,
    /// Where attachment records (`attached/`) and journals (`journal/`)
    /// live; `None` keeps neither (no re-attach, no `docker logs`).
    pub data_dir: Option<PathBuf>,
    /// Bound on all local copies together.
    pub local_store_size: u64,
    /// How often the local store is checked against its bound and against
    /// the containers that still exist.
    pub store_gc_interval: Duration,
    /// Docker's API socket, to learn which containers were removed; `None`
    /// (the default) makes no API call.
    pub docker_socket: Option<PathBuf>,
    /// Without the Docker API: journals of containers that stopped writing
    /// this long ago (and are delivered) are deleted. `None`: kept until
    /// `LOCAL_STORE_SIZE` needs the room.
    pub local_store_max_age: Option<Duration>,
    /// `ENDPOINT_IDLE`: an endpoint no container uses any more keeps its
    /// client and connections this long, then lets them go.
    pub endpoint_idle: Duration,
    /// `METRICS_ADDR`: where the Prometheus endpoint listens; `None`: off.
    pub metrics_addr: Option<std::net::SocketAddr>,
    // --- credentials and log-opt defaults ---
    /// `LOG_OPTS`: log-opts under every container's own.
    pub log_opts: LogOptDefaults,
    /// `SECRETS_DIR`: where the `secrets` mount puts credential files.
    pub secrets_dir: PathBuf,
    /// Reads the files stage configurations name, from the plugin or the
    /// secrets mount (remembering them: one geoip database for all).
    pub files: Arc<dyn crate::process::Loader>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            hostname: "localhost".into(),
            total_buffer_size: DEFAULT_TOTAL_BUFFER_SIZE,
            max_line_size: DEFAULT_MAX_LINE_SIZE,
            shutdown_grace: Duration::from_secs(5),
            data_dir: None,
            local_store_size: DEFAULT_LOCAL_STORE_SIZE,
            store_gc_interval: Duration::from_secs(60),
            docker_socket: None,
            local_store_max_age: Some(DEFAULT_LOCAL_STORE_MAX_AGE),
            endpoint_idle: DEFAULT_ENDPOINT_IDLE,
            metrics_addr: None,
            log_opts: LogOptDefaults::default(),
            secrets_dir: PathBuf::from(DEFAULT_SECRETS_DIR),
            files: Arc::new(UserFiles::new(PathBuf::from(DEFAULT_SECRETS_DIR))),
        }
    }
}

/// How long an unused endpoint keeps its connections (`ENDPOINT_IDLE`).
pub const DEFAULT_ENDPOINT_IDLE: Duration = Duration::from_secs(60);
/// Bounds of `ENDPOINT_IDLE`: from a second to an hour.
pub const MIN_ENDPOINT_IDLE: Duration = Duration::from_secs(1);
pub const MAX_ENDPOINT_IDLE: Duration = Duration::from_secs(60 * 60);

/// Default age after which a stopped container's journal goes, when the
/// plugin cannot ask Docker which containers were removed.
pub const DEFAULT_LOCAL_STORE_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Up to ten years.
pub const MAX_LOCAL_STORE_MAX_AGE: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Default bound on all local copies together (`LOCAL_STORE_SIZE`).
pub const DEFAULT_LOCAL_STORE_SIZE: u64 = 2 * 1024 * 1024 * 1024;

// Bounds of the numeric settings; the README's settings table shows them.

/// Below 1 MiB a single 1 MiB line could not even be queued.
pub const MIN_TOTAL_BUFFER_SIZE: u64 = 1 << 20;
/// Memory for lines waiting for Loki, all containers together.
pub const MAX_TOTAL_BUFFER_SIZE: u64 = 64 << 30;
/// Below 1 KiB a line would become hundreds of Loki entries.
pub const MIN_MAX_LINE_SIZE: u64 = 1 << 10;
/// A line being joined from 16 KiB partials is held whole up to this size,
/// per container and stream.
pub const MAX_MAX_LINE_SIZE: u64 = 16 << 20;
/// dockerd stops a plugin with SIGKILL 10 s after SIGTERM anyway; 5 min
/// leaves room for a manual `kill -TERM` while never overflowing a deadline.
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(5 * 60);
/// Up to 1 PiB of local copies: far beyond any disk, far below overflow.
pub const MAX_LOCAL_STORE_SIZE: u64 = 1 << 50;
/// More often than 10 times a second the collector would busy the disk.
pub const MIN_STORE_GC_INTERVAL: Duration = Duration::from_millis(100);
/// Removed containers' copies should go within a day.
pub const MAX_STORE_GC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a size setting and checks it against its bounds.
fn size_setting(name: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    let shown = shorten(value, 100);
    let size = parse_size(value).map_err(|e| format!("{name}={shown:?}: {e}"))?;
    if size < min || size > max {
        return Err(format!(
            "{name}={shown:?}: must be between {} and {}",
            format_size(min),
            format_size(max)
        ));
    }
    Ok(size)
}

/// Parses a duration setting and checks it against its bounds.
fn duration_setting(
    name: &str,
    value: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let shown = shorten(value, 100);
    let duration = parse_duration(value).map_err(|e| format!("{name}={shown:?}: {e}"))?;
    if duration < min || duration > max {
        return Err(format!(
            "{name}={shown:?}: must be between {} and {}",
            format_duration(min),
            format_duration(max)
        ));
    }
    Ok(duration)
}

/// Parses `METRICS_ADDR`: an IP address and a port other than 0
/// (`127.0.0.1:9387`, `[::1]:9387`).
fn metrics_addr_setting(value: &str) -> Result<std::net::SocketAddr, String> {
    let shown = shorten(value, 100);
    let addr: std::net::SocketAddr = value.trim().parse().map_err(|_| {
        format!(
            "METRICS_ADDR={shown:?}: must be an IP address and a port, like 127.0.0.1:9387 or [::1]:9387 (empty: no metrics)"
        )
    })?;
    if addr.port() == 0 {
        return Err(format!(
            "METRICS_ADDR={shown:?}: the port must be between 1 and 65535"
        ));
    }
    Ok(addr)
}

fn to_usize(name: &str, value: u64) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{name}={value}: too large for this machine"))
}

impl Settings {
    /// Reads the settings from the plugin's environment (`docker plugin set`).
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from `lookup` (`None`: not set). Every value is
    /// range-checked; an error names the setting, its value and the bounds.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut settings = Settings {
            hostname: hostname(),
            ..Settings::default()
        };
        if let Some(v) = var("TOTAL_BUFFER_SIZE") {
            let size = size_setting(
                "TOTAL_BUFFER_SIZE",
                &v,
                MIN_TOTAL_BUFFER_SIZE,
                MAX_TOTAL_BUFFER_SIZE,
            )?;
            settings.total_buffer_size = to_usize("TOTAL_BUFFER_SIZE", size)?;
        }
        if let Some(v) = var("MAX_LINE_SIZE") {
            let size = size_setting("MAX_LINE_SIZE", &v, MIN_MAX_LINE_SIZE, MAX_MAX_LINE_SIZE)?;
            settings.max_line_size = to_usize("MAX_LINE_SIZE", size)?;
        }
        if let Some(v) = var("SHUTDOWN_GRACE") {
            settings.shutdown_grace =
                duration_setting("SHUTDOWN_GRACE", &v, Duration::ZERO, MAX_SHUTDOWN_GRACE)?;
        }
        if let Some(v) = var("LOCAL_STORE_SIZE") {
            settings.local_store_size =
                size_setting("LOCAL_STORE_SIZE", &v, 0, MAX_LOCAL_STORE_SIZE)?;
        }
        if let Some(v) = var("STORE_GC_INTERVAL") {
            settings.store_gc_interval = duration_setting(
                "STORE_GC_INTERVAL",
                &v,
                MIN_STORE_GC_INTERVAL,
                MAX_STORE_GC_INTERVAL,
            )?;
        }
        if let Some(v) = var("LOCAL_STORE_MAX_AGE") {
            let age = duration_setting(
                "LOCAL_STORE_MAX_AGE",
                &v,
                Duration::ZERO,
                MAX_LOCAL_STORE_MAX_AGE,
            )?;
            settings.local_store_max_age = (!age.is_zero()).then_some(age);
        }
        if let Some(v) = var("ENDPOINT_IDLE") {
            settings.endpoint_idle =
                duration_setting("ENDPOINT_IDLE", &v, MIN_ENDPOINT_IDLE, MAX_ENDPOINT_IDLE)?;
        }
        if let Some(v) = var("METRICS_ADDR") {
            settings.metrics_addr = Some(metrics_addr_setting(&v)?);
        }
        settings.data_dir = match lookup("DATA_DIR") {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_DATA_DIR)),
        };
        settings.docker_socket = var("DOCKER_SOCKET").map(PathBuf::from);
        // --- credentials and log-opt defaults ---
        if let Some(dir) = var("SECRETS_DIR") {
            settings.secrets_dir = PathBuf::from(dir);
            settings.files = Arc::new(UserFiles::new(settings.secrets_dir.clone()));
        }
        if let Some(text) = var("LOG_OPTS") {
            settings.log_opts = LogOptDefaults::parse(&text, &settings.option_context())?;
        }
        Ok(settings)
    }

    /// What validating a container's log-opts needs from the settings.
    pub fn option_context(&self) -> OptionContext {
        OptionContext {
            secrets_dir: self.secrets_dir.clone(),
            files: self.files.clone(),
        }
    }

    /// A container's log-opts with the plugin-wide defaults (`LOG_OPTS`)
    /// under them.
    pub fn log_opts_for(
        &self,
        container: &std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        self.log_opts.apply(container)
    }
}

/// The Docker host's name (the plugin runs in the host's UTS namespace).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_and_valid_values() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.shutdown_grace, Duration::from_secs(5));
        assert_eq!(s.total_buffer_size, DEFAULT_TOTAL_BUFFER_SIZE);
        assert_eq!(
            s.data_dir.as_deref(),
            Some(std::path::Path::new(DEFAULT_DATA_DIR))
        );
        // 64g is the bound; a 32-bit machine (armv7) cannot address it.
        let most = if cfg!(target_pointer_width = "64") {
            "64g"
        } else {
            "3g"
        };
        let s = settings(&[
            ("SHUTDOWN_GRACE", "5m"),
            ("TOTAL_BUFFER_SIZE", most),
            ("MAX_LINE_SIZE", "1k"),
            ("LOCAL_STORE_SIZE", "0"),
            ("STORE_GC_INTERVAL", "100ms"),
            ("DATA_DIR", ""),
        ])
        .unwrap();
        assert_eq!(s.shutdown_grace, MAX_SHUTDOWN_GRACE);
        assert_eq!(s.max_line_size, 1024);
        assert_eq!(s.local_store_size, 0);
        assert_eq!(s.data_dir, None);
    }

    #[test]
    #[cfg(target_pointer_width = "32")]
    fn a_memory_bound_past_the_address_space_is_refused_by_name() {
        let err = settings(&[("TOTAL_BUFFER_SIZE", "64g")]).unwrap_err();
        assert!(
            err.contains("TOTAL_BUFFER_SIZE=68719476736: too large for this machine"),
            "{err}"
        );
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_set() {
        assert_eq!(settings(&[]).unwrap().metrics_addr, None);
        assert_eq!(
            settings(&[("METRICS_ADDR", "")]).unwrap().metrics_addr,
            None
        );
        let s = settings(&[("METRICS_ADDR", "127.0.0.1:9387")]).unwrap();
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9387".parse().unwrap()));
        let s = settings(&[("METRICS_ADDR", "[::]:9387")]).unwrap();
        assert_eq!(s.metrics_addr, Some("[::]:9387".parse().unwrap()));
    }

    #[test]
    fn no_docker_api_by_default_and_log_opt_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.docker_socket, None, "no API access unless asked for");
        assert!(s.log_opts.is_empty());
        assert_eq!(s.secrets_dir, std::path::Path::new(DEFAULT_SECRETS_DIR));
        let s = settings(&[
            ("DOCKER_SOCKET", DOCKER_API_MOUNT),
            ("SECRETS_DIR", "/tmp/secrets"),
            (
                "LOG_OPTS",
                r#"{"loki-url":"http://loki:3100/loki/api/v1/push","loki-bearer-token-file":"/tmp/secrets/token"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(
            s.docker_socket.as_deref(),
            Some(std::path::Path::new(DOCKER_API_MOUNT))
        );
        assert_eq!(
            s.log_opts.get("loki-url"),
            Some("http://loki:3100/loki/api/v1/push")
        );
        let err = settings(&[
            (
                "LOG_OPTS",
                r#"{"loki-bearer-token-file":"/run/secrets/loki/t","loki-url":"http://l/x"}"#,
            ),
            ("SECRETS_DIR", "/tmp/secrets"),
        ])
        .unwrap_err();
        assert!(
            err.contains("LOG_OPTS") && err.contains("/tmp/secrets"),
            "{err}"
        );
        let err = settings(&[("LOG_OPTS", r#"{"loki-batch-wait":"forever"}"#)]).unwrap_err();
        assert!(
            err.contains("LOG_OPTS") && err.contains("loki-batch-wait"),
            "{err}"
        );
    }

    /// A huge `SHUTDOWN_GRACE` overflowed `Instant + Duration` at SIGTERM.
    #[test]
    fn absurd_settings_are_refused_by_name() {
        let cases = [
            ("SHUTDOWN_GRACE", "5000000000000000h", "out of range"),
            ("SHUTDOWN_GRACE", "2562047h", "between 0s and 5m"),
            ("SHUTDOWN_GRACE", "-1s", "negative"),
            ("TOTAL_BUFFER_SIZE", "65g", "between 1m and 64g"),
            ("TOTAL_BUFFER_SIZE", "1k", "between 1m and 64g"),
            ("TOTAL_BUFFER_SIZE", "8192p", "out of range"),
            ("MAX_LINE_SIZE", "0", "between 1k and 16m"),
            ("MAX_LINE_SIZE", "17m", "between 1k and 16m"),
            ("LOCAL_STORE_SIZE", "1025t", "between 0 and 1p"),
            ("STORE_GC_INTERVAL", "0", "between 100ms and 24h"),
            ("STORE_GC_INTERVAL", "1ns", "between 100ms and 24h"),
            ("STORE_GC_INTERVAL", "1000000h", "between 100ms and 24h"),
            ("STORE_GC_INTERVAL", "soon", "STORE_GC_INTERVAL"),
            ("METRICS_ADDR", "localhost:9387", "IP address and a port"),
            ("METRICS_ADDR", "127.0.0.1", "IP address and a port"),
            ("METRICS_ADDR", "127.0.0.1:65536", "IP address and a port"),
            ("METRICS_ADDR", "127.0.0.1:0", "between 1 and 65535"),
            (
                "METRICS_ADDR",
                "http://127.0.0.1:9387",
                "IP address and a port",
            ),
        ];
        for (name, value, reason) in cases {
            let err = settings(&[(name, value)]).unwrap_err();
            assert!(
                err.contains(name) && err.contains(&format!("{value:?}")) && err.contains(reason),
                "{name}={value}: {err}"
            );
        }
        let huge = "9".repeat(1 << 20);
        let err = settings(&[("SHUTDOWN_GRACE", &huge)]).unwrap_err();
        assert!(err.len() < 500, "{} bytes", err.len());
    }
}
