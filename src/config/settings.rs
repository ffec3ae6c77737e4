//! Plugin-wide settings: the plugin's environment, set with
//! `docker plugin set NAME KEY=VALUE` while the plugin is disabled.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::units::{parse_duration, parse_size};

/// Loki's default `max_line_size` (256KB), the longest entry sent by default.
pub const DEFAULT_MAX_LINE_SIZE: usize = 256_000;
/// Default plugin-wide bound on lines held in memory (`TOTAL_BUFFER_SIZE`).
pub const DEFAULT_TOTAL_BUFFER_SIZE: usize = 256 * 1024 * 1024;
/// Inside the plugin's propagated mount, beside the FIFOs, so attachment
/// records and journals survive a crash and `docker plugin upgrade` as the
/// FIFOs do.
pub const DEFAULT_DATA_DIR: &str = "/run/docker/logging/.loki-logdriver";
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

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
    /// Where attachment records (`attached/`) and local copies (`logs/`)
    /// live; `None` keeps neither (no re-attach, no `docker logs`).
    pub data_dir: Option<PathBuf>,
    /// Bound on all local copies together.
    pub local_store_size: u64,
    /// How often the local store is checked against its bound and against
    /// the containers that still exist.
    pub store_gc_interval: Duration,
    /// Docker's API socket, to learn which containers were removed.
    pub docker_socket: Option<PathBuf>,
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
        }
    }
}

/// Default bound on all local copies together (`LOCAL_STORE_SIZE`).
pub const DEFAULT_LOCAL_STORE_SIZE: u64 = 2 * 1024 * 1024 * 1024;

impl Settings {
    /// Reads the settings from the plugin's environment (`docker plugin set`).
    pub fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut settings = Settings {
            hostname: hostname(),
            ..Settings::default()
        };
        if let Some(v) = var("TOTAL_BUFFER_SIZE") {
            settings.total_buffer_size =
                parse_size(&v).map_err(|e| format!("TOTAL_BUFFER_SIZE={v:?}: {e}"))? as usize;
        }
        if let Some(v) = var("MAX_LINE_SIZE") {
            settings.max_line_size =
                parse_size(&v).map_err(|e| format!("MAX_LINE_SIZE={v:?}: {e}"))? as usize;
        }
        if let Some(v) = var("SHUTDOWN_GRACE") {
            settings.shutdown_grace =
                parse_duration(&v).map_err(|e| format!("SHUTDOWN_GRACE={v:?}: {e}"))?;
        }
        if let Some(v) = var("LOCAL_STORE_SIZE") {
            settings.local_store_size =
                parse_size(&v).map_err(|e| format!("LOCAL_STORE_SIZE={v:?}: {e}"))?;
        }
        if let Some(v) = var("STORE_GC_INTERVAL") {
            settings.store_gc_interval = parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("STORE_GC_INTERVAL={v:?}: expected a duration above zero")
                })?;
        }
        let path_or_default = |name: &str, default: &str| match std::env::var(name) {
            Ok(path) if path.is_empty() => None,
            Ok(path) => Some(PathBuf::from(path)),
            Err(_) => Some(PathBuf::from(default)),
        };
        settings.data_dir = path_or_default("DATA_DIR", DEFAULT_DATA_DIR);
        settings.docker_socket = path_or_default("DOCKER_SOCKET", DEFAULT_DOCKER_SOCKET);
        Ok(settings)
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
