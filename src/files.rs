//! Reading files that users' options name, safely: only a regular file,
//! bounded in size, never blocking on a FIFO or a device. Credentials and
//! TLS material (`ship::secrets`, `ship::tls`) are read this way, and so
//! are a `loki-pipeline-stage-file` and a `geoip` stage's database
//! ([`UserFiles`]).
//!
//! The plugin's own data directory is untrusted too (a failing disk, a
//! power loss, an operator's script): its files are opened with the
//! helpers at the end of this module ([`open_data_file`],
//! [`read_data_file`], [`create_data_file`], [`ensure_data_dir`]), which
//! never follow a symlink, never block in `open()`, and accept only
//! regular files and real directories.
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
use std::os::fd::AsRawFd;
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

/// Why an entry of the data directory is not used, for its warning:
/// `None` for a regular file. Looks at the entry itself, not at what a
/// symlink points to.
pub fn not_a_data_file(meta: &Metadata) -> Option<&'static str> {
    if meta.file_type().is_symlink() {
        Some("is a symbolic link, not a regular file (links are not followed)")
    } else {
        not_regular(meta)
    }
}

fn data_file_error(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// Opens a file of the data directory for reading: never through a
/// symlink (`O_NOFOLLOW`), never waiting on a FIFO (`O_NONBLOCK`), and only
/// a regular file, as checked on what was opened. Blocking (a disk read).
pub fn open_data_file(path: &Path) -> std::io::Result<File> {
    open_data_file_with(path, File::options().read(true))
}

/// [`open_data_file`] for reading and appending (a journal's last segment).
pub fn open_data_file_for_append(path: &Path) -> std::io::Result<File> {
    open_data_file_with(path, File::options().read(true).append(true))
}

/// [`open_data_file`] for writing in place (repairing a header).
pub fn open_data_file_for_write(path: &Path) -> std::io::Result<File> {
    open_data_file_with(path, File::options().write(true))
}

fn open_data_file_with(path: &Path, options: &mut std::fs::OpenOptions) -> std::io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => {
                data_file_error("is a symbolic link, not a regular file (links are not followed)")
            }
            Some(libc::ENXIO) => data_file_error("is a FIFO or a socket, not a regular file"),
            _ => err,
        })?;
    let meta = file.metadata()?;
    if let Some(why) = not_regular(&meta) {
        return Err(data_file_error(why));
    }
    // A regular file never blocks; reads go on as for any file.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// Reads a file of the data directory of at most `max` bytes (see
/// [`open_data_file`]); a larger one is an error, and nothing past `max`
/// is read.
pub fn read_data_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = open_data_file(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(data_file_error(&format!(
            "is {len} bytes, more than the {max} such a file has"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(data_file_error(&format!(
            "grew past the {max} bytes such a file has"
        )));
    }
    Ok(bytes)
}

/// Creates a new file of the data directory (mode 0600), failing if
/// anything is there already, a symlink included.
pub fn create_data_file(path: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Makes sure `path` is a real directory of the data directory, creating
/// it (and its parents) if missing. A symlink, file or device there is an
/// error, and is left as it is.
pub fn ensure_data_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) => Err(data_file_error(
            not_a_data_file(&meta)
                .map(|why| why.replace("regular file", "directory"))
                .as_deref()
                .unwrap_or("is a regular file, not a directory"),
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path)?;
            // Created by us or by a racing creator: check what is there.
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(data_file_error("is not a directory")),
                Err(err) => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

/// Whether `path` is a real directory (not a symlink to one).
pub fn is_data_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
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
    fn data_files_are_regular_files_never_links_fifos_or_devices() {
        let dir = tempfile::tempdir().unwrap();
        let regular = dir.path().join("cursor");
        std::fs::write(&regular, b"v1 0 0\n").unwrap();
        assert_eq!(read_data_file(&regular, 100).unwrap(), b"v1 0 0\n");
        assert!(
            read_data_file(&regular, 3)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&regular, &link).unwrap();
        let err = open_data_file(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let err = open_data_file(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        let err = open_data_file_for_append(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let err = open_data_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        assert!(open_data_file(dir.path()).is_err());
        assert!(
            create_data_file(&regular).is_err(),
            "never over what is there"
        );
        assert!(create_data_file(&link).is_err());
        assert!(create_data_file(&dir.path().join("new")).is_ok());
        assert!(ensure_data_dir(&dir.path().join("a/b")).is_ok());
        std::os::unix::fs::symlink(dir.path(), dir.path().join("dirlink")).unwrap();
        assert!(ensure_data_dir(&dir.path().join("dirlink")).is_err());
        assert!(!is_data_dir(&dir.path().join("dirlink")));
    }

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
