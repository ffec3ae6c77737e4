//! Attachment records: which FIFOs the plugin reads, so a restarted plugin
//! finds them again (the daemon re-sends nothing after a crash, a restart
//! or `docker plugin upgrade`). One JSON file per FIFO under
//! `DATA_DIR/attached/`, written atomically, removed only once the FIFO
//! reached its end.
//!
//! A record holds the StartLogging request with the container's
//! environment cut down to the variables that become labels, so no other
//! secret of the container is written down. It keeps the container's
//! credentials (to re-attach after a crash, the plugin needs them), so it
//! is mode 0600 and goes when the FIFO ends. Nothing that outlives the
//! container holds one: the copy beside its journal (`container.json`) is
//! [`without_credentials`].
//!
//! Records are read like every file of the data directory: only regular
//! files of bounded size, never through a link (see [`crate::files`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::config::options::ContainerConfig;
use crate::journal::write_atomically;
use crate::protocol::StartLoggingRequest;

/// A record that cannot be used, and why.
pub type Unusable = (PathBuf, String);

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
        crate::files::ensure_data_dir(&self.dir)?;
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
    /// differently), with the files that cannot be used reported apart
    /// with the reason (not a regular file, too large, not a request).
    /// Blocking; never waits on a FIFO or reads a device.
    pub fn load(&self) -> (Vec<(PathBuf, StartLoggingRequest)>, Vec<Unusable>) {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        if !crate::files::is_data_dir(&self.dir) {
            if std::fs::symlink_metadata(&self.dir).is_ok() {
                unreadable.push((
                    self.dir.clone(),
                    "is not a directory (links are not followed)".to_string(),
                ));
            }
            return (found, unreadable);
        }
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let read = crate::files::read_data_file(&path, crate::journal::MAX_META_FILE)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<StartLoggingRequest>(&bytes)
                        .map_err(|_| "is not a StartLogging request".to_string())
                });
            match read {
                Ok(request) => found.push((path, request)),
                Err(why) => unreadable.push((path, why)),
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

/// Log-opts that hold a credential's value, dropped from a copy that
/// outlives the container. (`loki-password-file` and
/// `loki-bearer-token-file` name files of the secrets mount: kept.)
const CREDENTIAL_OPTIONS: &[&str] = &["loki-password", "loki-bearer-token", "loki-headers"];

/// The request as it may outlive the container (`container.json`): no
/// credential. URLs lose their user information, inline passwords,
/// tokens and header values go, and so does a `loki-username` without a
/// `loki-password-file` (alone, it may be a token). Lines delivered from
/// it after a restart go without those credentials.
pub fn without_credentials(request: &StartLoggingRequest) -> StartLoggingRequest {
    let mut record = request.clone();
    if let Some(opts) = record.info.config.as_mut() {
        opts.retain(|key, _| !CREDENTIAL_OPTIONS.contains(&key.as_str()));
        if !opts.contains_key("loki-password-file") {
            opts.remove("loki-username");
        }
        for key in ["loki-url", "loki-proxy-url"] {
            if let Some(value) = opts.get(key) {
                match without_userinfo(value) {
                    Some(clean) => {
                        opts.insert(key.to_string(), clean);
                    }
                    None => {
                        opts.remove(key);
                    }
                }
            }
        }
    }
    record
}

/// A URL without `user:password@`; `None` if it cannot be told apart.
fn without_userinfo(url: &str) -> Option<String> {
    if !url.contains('@') {
        return Some(url.to_string());
    }
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_username("").ok()?;
    parsed.set_password(None).ok()?;
    Some(parsed.to_string())
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
    fn the_copy_beside_the_journal_holds_no_credential() {
        let mut request = request("/run/docker/logging/aaa");
        let opts = request.info.config.as_mut().unwrap();
        opts.insert(
            "loki-url".into(),
            "https://u:UrlSecret@logs.example.com/loki/api/v1/push".into(),
        );
        opts.insert("loki-password".into(), "OptSecret".into());
        opts.insert("loki-username".into(), "TokenAsUser".into());
        opts.insert("loki-bearer-token".into(), "BearerSecret".into());
        opts.insert("loki-headers".into(), "X-Key=HeaderSecret".into());
        opts.insert(
            "loki-proxy-url".into(),
            "http://p:ProxySecret@proxy:3128".into(),
        );
        let text = serde_json::to_string(&without_credentials(&request)).unwrap();
        for secret in [
            "UrlSecret",
            "OptSecret",
            "TokenAsUser",
            "BearerSecret",
            "HeaderSecret",
            "ProxySecret",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("https://logs.example.com/loki/api/v1/push"),
            "{text}"
        );
        assert!(text.contains("http://proxy:3128"), "{text}");
        // A user name beside a password file is a reference: kept.
        let opts = request.info.config.as_mut().unwrap();
        opts.insert(
            "loki-password-file".into(),
            "/run/secrets/loki/password".into(),
        );
        let text = serde_json::to_string(&without_credentials(&request)).unwrap();
        assert!(text.contains("TokenAsUser") && text.contains("/run/secrets/loki/password"));
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
