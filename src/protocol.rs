//! The LogDriver protocol's messages, as the daemon encodes them (Go field
//! names, no JSON tags; see `shared/docs/logdriver-protocol.md`). Plain data:
//! the HTTP server decodes them, the driver and the stages read them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Largest request body the plugin accepts (a StartLogging request with
/// its options); a recorded request on disk is bounded by it too.
pub const MAX_REQUEST_BODY: usize = 4 << 20;

/// `Info` of StartLogging and ReadLogs: what the daemon says about a
/// container. Go marshals nil collections as `null`, hence the `Option`s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ContainerInfo {
    /// The log-opts, unfiltered (`--log-opt` or the daemon's `log-opts`).
    #[serde(rename = "Config", default)]
    pub config: Option<HashMap<String, String>>,
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
    /// With a leading `/`, as the daemon stores it.
    #[serde(rename = "ContainerName", default)]
    pub container_name: String,
    #[serde(rename = "ContainerEntrypoint", default)]
    pub entrypoint: String,
    #[serde(rename = "ContainerArgs", default)]
    pub args: Option<Vec<String>>,
    #[serde(rename = "ContainerImageID", default)]
    pub image_id: String,
    /// The image as given to `docker run`.
    #[serde(rename = "ContainerImageName", default)]
    pub image_name: String,
    #[serde(rename = "ContainerCreated", default)]
    pub created: String,
    /// `KEY=VALUE` strings; may hold secrets, so never logged.
    #[serde(rename = "ContainerEnv", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "ContainerLabels", default)]
    pub labels: Option<HashMap<String, String>>,
    #[serde(rename = "LogPath", default)]
    pub log_path: String,
    #[serde(rename = "DaemonName", default)]
    pub daemon_name: String,
}

impl ContainerInfo {
    /// The container name without the daemon's leading `/`.
    pub fn name(&self) -> &str {
        self.container_name
            .strip_prefix('/')
            .unwrap_or(&self.container_name)
    }

    /// The first 12 characters of the container ID, for log lines.
    pub fn short_id(&self) -> &str {
        short_id(&self.container_id)
    }
}

/// The first 12 characters of a container ID, as `docker ps` shows it (the
/// whole ID if cutting there would split a character).
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StartLoggingRequest {
    #[serde(rename = "File")]
    pub file: String,
    #[serde(rename = "Info")]
    pub info: ContainerInfo,
}

/// ReadLogs: the daemon sends the logger's `Info` and `Config` (not
/// `ReadConfig`, as Docker's docs say).
#[derive(Debug, Clone, Deserialize)]
pub struct ReadLogsRequest {
    #[serde(rename = "Info")]
    pub info: ContainerInfo,
    #[serde(rename = "Config")]
    pub config: ReadConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReadConfig {
    /// RFC 3339; Go's zero time when unset.
    #[serde(rename = "Since", default)]
    pub since: String,
    #[serde(rename = "Until", default)]
    pub until: String,
    /// Lines from the end; -1 for all.
    #[serde(rename = "Tail", default = "all_lines")]
    pub tail: i64,
    #[serde(rename = "Follow", default)]
    pub follow: bool,
}

fn all_lines() -> i64 {
    -1
}

#[derive(Debug, Deserialize)]
pub struct StopLoggingRequest {
    #[serde(rename = "File")]
    pub file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_recorded_start_logging_body() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/start-logging.http");
        let body = raw
            .split("\r\n\r\n")
            .nth(1)
            .or_else(|| raw.split("\n\n").nth(1))
            .unwrap();
        let request: StartLoggingRequest = serde_json::from_str(body).unwrap();
        assert!(request.file.starts_with("/run/docker/logging/"));
        assert_eq!(request.info.name(), "fixture-app");
        assert_eq!(request.info.image_name, "localbusybox");
        assert_eq!(
            request.info.labels.unwrap()["com.docker.compose.service"],
            "web"
        );
        assert_eq!(request.info.config.unwrap()["labels"], "tier");
    }

    #[test]
    fn null_collections_are_accepted() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/start-logging-no-opts.http");
        let body = &raw[raw.find('{').unwrap()..];
        let request: StartLoggingRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.info.env, None);
        assert_eq!(request.info.config, Some(HashMap::new()));
    }

    #[test]
    fn short_id_never_splits_a_character() {
        let info = |id: &str| ContainerInfo {
            container_id: id.into(),
            ..ContainerInfo::default()
        };
        assert_eq!(info("e11059f72dbaf86cedf4a9").short_id(), "e11059f72dba");
        assert_eq!(info("abc").short_id(), "abc");
        assert_eq!(info("ééééééé").short_id(), "éééééé");
        // Byte 12 falls inside a character: the whole ID is kept instead of panicking.
        assert_eq!(info("aéééééé").short_id(), "aéééééé");
    }

    #[test]
    fn decodes_the_recorded_read_logs_bodies() {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/read-logs-tail.http");
        let tail: ReadLogsRequest = serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        assert_eq!((tail.config.tail, tail.config.follow), (5, false));
        assert_eq!(tail.config.since, "2026-01-01T00:00:00Z");
        assert_eq!(tail.info.name(), "fixture-app");
        let raw = include_str!("../../shared/fixtures/daemon-20.10/read-logs-follow.http");
        let follow: ReadLogsRequest = serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        assert_eq!((follow.config.tail, follow.config.follow), (-1, true));
        assert_eq!(follow.config.until, "0001-01-01T00:00:00Z");
    }
}
