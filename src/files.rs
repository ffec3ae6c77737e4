//! Reading files that users' options name, safely: only a regular file,
//! bounded in size, never blocking on a FIFO or a device. Credentials and
//! TLS material (`ship::secrets`, `ship::tls`) are read this way, and so
//! are a `loki-pipeline-stage-file` and a `geoip` stage's database
//! ([`UserFiles`]).
//!
//! For stage files and databases, a path is
//! looked for inside the plugin, then under the settable read-only
//! `secrets` mount (so users can keep the file on the host: a relative
//! path is taken under the mount; an absolute one that the plugin does not
//! have is looked up there by its file name). Reading follows the rules of
//! [`crate::ship::tls`]: only a regular file, bounded in size, never a link
//! out of the mount. Blocking: call it off the async runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use crate::process::Loader;

/// Reads files for stage configurations, remembering what it read (a
/// geoip database is read once for every container that names it).
#[derive(Debug)]
pub struct UserFiles {
    secrets_dir: PathBuf,
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

/// A file as read, and the stamp it had.
type Cached = (FileStamp, Arc<Vec<u8>>);

impl UserFiles {
    pub fn new(secrets_dir: PathBuf) -> UserFiles {
        UserFiles {
            secrets_dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Where `path` may be, in the order looked at.
    fn candidates(&self, path: &Path) -> Vec<(PathBuf, bool)> {
        let mut out = Vec::new();
        if path.is_absolute() {
            out.push((path.to_path_buf(), false));
            if let Some(name) = path.file_name() {
                out.push((self.secrets_dir.join(name), true));
            }
        } else {
            out.push((self.secrets_dir.join(path), true));
        }
        out
    }
}

impl Loader for UserFiles {
    fn read(&self, path: &str, max_bytes: u64) -> Result<Arc<Vec<u8>>, String> {
        if path.is_empty() || path.contains('\0') {
            return Err("expected the path of a file".into());
        }
        let mut last = None;
        for (candidate, in_secrets) in self.candidates(Path::new(path)) {
            if !candidate.exists() {
                continue;
            }
            let real = if in_secrets {
                let real_dir =
                    std::fs::canonicalize(&self.secrets_dir).map_err(|e| e.to_string())?;
                let real = std::fs::canonicalize(&candidate).map_err(|e| e.to_string())?;
                if !real.starts_with(&real_dir) {
                    last = Some(format!(
                        "{} leads out of the secrets mount {} (through a symlink)",
                        candidate.display(),
                        self.secrets_dir.display()
                    ));
                    continue;
                }
                real
            } else {
                candidate
            };
            let stamp = std::fs::metadata(&real)
                .map(|m| FileStamp::of(&m))
                .map_err(|e| e.to_string())?;
            if let Some((seen, bytes)) = self.cache.lock().expect("files lock poisoned").get(&real)
                && *seen == stamp
                && bytes.len() as u64 <= max_bytes
            {
                return Ok(bytes.clone());
            }
            let (bytes, stamp) = read_regular_file("file", &real, max_bytes)?;
            let bytes = Arc::new(bytes);
            let mut cache = self.cache.lock().expect("files lock poisoned");
            if cache.len() > 64 {
                cache.clear();
            }
            cache.insert(real, (stamp, bytes.clone()));
            return Ok(bytes);
        }
        Err(last.unwrap_or_else(|| {
            format!(
                "{path:?} is neither in the plugin nor in its secrets mount {} (set the mount's source: docker plugin set loki secrets.source=/host/dir)",
                self.secrets_dir.display()
            )
        }))
    }
}

/// Where a file was when it was read: a change of any field means it was
/// replaced or rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    pub fn of(meta: &Metadata) -> FileStamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

pub(crate) fn file_error(option: &str, path: &Path, why: &str) -> String {
    format!("{option} {:?}: {why}", shorten(&path.to_string_lossy()))
}

/// What a file that is not a regular file is, for the error.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("is a directory, not a regular file")
    } else if kind.is_fifo() {
        Some("is a FIFO (named pipe), not a regular file")
    } else if kind.is_char_device() {
        Some("is a character device, not a regular file")
    } else if kind.is_block_device() {
        Some("is a block device, not a regular file")
    } else if kind.is_socket() {
        Some("is a socket, not a regular file")
    } else {
        Some("is not a regular file")
    }
}

/// Reads a regular file of at most `max` bytes. Blocking: call it off the
/// runtime (see [`run_off_runtime`]). Errors name the option and the path,
/// never the content.
pub(crate) fn read_regular_file(
    option: &str,
    path: &Path,
    max: u64,
) -> Result<(Vec<u8>, FileStamp), String> {
    let fail = |why: &str| file_error(option, path, why);
    let too_large = |len: u64| {
        fail(&format!(
            "is {len} bytes, more than the {max} bytes ({}) such a file may have",
            format_size(max)
        ))
    };
    // Look before opening: opening a device or a FIFO can itself have effects.
    let meta = std::fs::metadata(path).map_err(|e| fail(&e.to_string()))?;
    if let Some(why) = not_regular(&meta) {
        return Err(fail(why));
    }
    // O_NONBLOCK: should a FIFO be swapped in now, the open still returns.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(&e.to_string()))?;
    // Check what was opened, not what the path named a moment ago.
    let meta = file.metadata().map_err(|e| fail(&e.to_string()))?;
    if let Some(why) = not_regular(&meta) {
        return Err(fail(why));
    }
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok((bytes, FileStamp::of(&meta)))
}

/// A path for a message: at most 200 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// A size for a message, in the largest whole binary unit.
fn format_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_in_the_plugin_or_under_the_secrets_mount() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("stages.yml"), "pipeline_stages: []\n").unwrap();
        let files = UserFiles::new(secrets.clone());
        assert!(files.read("stages.yml", 100).is_ok());
        assert!(
            files.read("/etc/promtail/stages.yml", 100).is_ok(),
            "by its name under the mount"
        );
        assert!(
            files
                .read("stages.yml", 5)
                .unwrap_err()
                .contains("more than")
        );
        assert!(
            files
                .read("missing.yml", 100)
                .unwrap_err()
                .contains("secrets mount")
        );
        std::os::unix::fs::symlink("/etc/hostname", secrets.join("out.yml")).unwrap();
        assert!(
            files
                .read("out.yml", 100)
                .unwrap_err()
                .contains("leads out")
        );
    }
}
