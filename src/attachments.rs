//! Attachment records: which FIFOs the plugin reads, so a restarted plugin
//! finds them again (the daemon re-sends nothing after a crash, a restart
//! or `docker plugin upgrade`). One JSON file per FIFO under
//! `DATA_DIR/attached/`, written atomically, removed only once the FIFO
//! reached its end.
//!
//! A record holds the StartLogging request with the container's
//! environment cut down to the variables that become labels, so no other
//! secret of the container is written down.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::options::ContainerConfig;
use crate::journal::write_atomically;
use crate::protocol::StartLoggingRequest;

/// The records under one directory.
#[derive(Debug, Clone)]
pub struct Attachments {
    dir: PathBuf,
}

impl Attachments {
    pub fn new(dir: PathBuf) -> Attachments {
        Attachments { dir }
    }

    /// The record of a FIFO: its file name (the daemon's random ID) and a
    /// hash of its whole path, so FIFOs of the same name never share one.
    pub fn path(&self, fifo: &str) -> Option<PathBuf> {
        let name = Path::new(fifo).file_name()?.to_string_lossy().into_owned();
        let hash = crate::journal::record::payload_hash(fifo.as_bytes()) as u32;
        Some(self.dir.join(format!("{name}-{hash:08x}.json")))
    }

    /// Records an attachment (blocking).
    pub fn save(&self, request: &StartLoggingRequest) -> io::Result<()> {
        let Some(path) = self.path(&request.file) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no FIFO name"));
        };
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(request).expect("a request serializes");
        write_atomically(&path, &bytes)
    }

    /// Forgets an attachment whose FIFO ended (blocking).
    pub fn remove(&self, fifo: &str) {
        if let Some(path) = self.path(fifo) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Every record and the file it is in (an older version named them
    /// differently), with the files that cannot be read reported apart.
    pub fn load(&self) -> (Vec<(PathBuf, StartLoggingRequest)>, Vec<PathBuf>) {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<StartLoggingRequest>(&bytes).ok())
            {
                Some(request) => found.push((path, request)),
                None => unreadable.push(path),
            }
        }
        (found, unreadable)
    }
}

/// The request as it may be written down: the environment cut down to the
/// variables that become labels.
pub fn redacted(
    request: &StartLoggingRequest,
    config: Option<&ContainerConfig>,
) -> StartLoggingRequest {
    let mut record = request.clone();
    if let Some(env) = record.info.env.as_mut() {
        env.retain(|kv| {
            let name = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            config.is_some_and(|c| c.wants_env(name))
        });
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fifo: &str) -> StartLoggingRequest {
        let raw = include_str!("../../shared/fixtures/daemon-20.10/start-logging.http");
        let mut request: StartLoggingRequest =
            serde_json::from_str(&raw[raw.find('{').unwrap()..]).unwrap();
        request.file = fifo.into();
        request
    }

    #[test]
    fn records_round_trip_and_unreadable_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let records = Attachments::new(dir.path().join("attached"));
        records.save(&request("/run/docker/logging/aaa")).unwrap();
        records.save(&request("/run/docker/logging/bbb")).unwrap();
        // Same FIFO name, another directory: its own record.
        records.save(&request("/elsewhere/aaa")).unwrap();
        std::fs::write(dir.path().join("attached/ccc.json"), b"{torn").unwrap();
        let (found, unreadable) = records.load();
        assert_eq!(found.len(), 3);
        assert_eq!(unreadable.len(), 1);
        records.remove("/run/docker/logging/aaa");
        assert_eq!(records.load().0.len(), 2);
    }

    #[test]
    fn only_label_variables_of_the_environment_are_written_down() {
        let request = request("/run/docker/logging/aaa");
        let config = ContainerConfig::from_log_opts(request.info.config.as_ref().unwrap()).unwrap();
        let record = redacted(&request, Some(&config));
        let env = record.info.env.unwrap();
        assert!(env.iter().any(|kv| kv.starts_with("APP_ENV=")));
        assert!(!env.iter().any(|kv| kv.contains("hunter2")), "{env:?}");
        assert!(redacted(&request, None).info.env.unwrap().is_empty());
    }
}
