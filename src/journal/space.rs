//! The free space journals leave on their filesystem.
//!
//! The data directory is usually on the disk dockerd and every container
//! write to. Whatever `LOCAL_STORE_SIZE` says, journals never write into
//! the last [`free_space_margin`] of that filesystem: a record that would
//! leave less space available (`statvfs`'s `f_bavail`: what an unprivileged
//! process may still use, so root's reserve is kept too) is not written, and
//! its lines go to Loki from memory only (a journal miss, counted). Writing
//! resumes once retention or the store's bound frees space.
//!
//! `statvfs` is looked at most every [`RECHECK`]; in between, the bytes
//! queued for writing are taken off the last reading.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one reading of `statvfs` is used.
pub const RECHECK: Duration = Duration::from_millis(100);

/// The margin journals leave free on a filesystem of `total` bytes: 5% of
/// it, at most 1 GiB.
pub fn free_space_margin(total: u64) -> u64 {
    (total / 20).min(1 << 30)
}

/// A store's view of its filesystem.
pub struct DiskSpace {
    root: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes that may still be written before the margin.
    room: u64,
    /// When `statvfs` was last read; `None`: never.
    checked: Option<Instant>,
    /// Tests: the filesystem's size and free space, instead of `statvfs`.
    pretended: bool,
}

impl DiskSpace {
    pub fn new(root: PathBuf) -> DiskSpace {
        DiskSpace {
            root,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether `bytes` more may be written; if so, they are taken off the
    /// room left.
    pub fn take(&self, bytes: usize) -> bool {
        let mut state = self.state.lock().expect("disk space lock poisoned");
        let stale = state.checked.is_none_or(|at| at.elapsed() >= RECHECK);
        if stale && !state.pretended {
            state.checked = Some(Instant::now());
            match room(&self.root) {
                Ok(room) => state.room = room,
                // A filesystem that cannot say: the disk bounds still hold.
                Err(_) => state.room = u64::MAX,
            }
        }
        let bytes = bytes as u64;
        if state.room < bytes {
            return false;
        }
        state.room -= bytes;
        true
    }

    /// Tests: a filesystem of `total` bytes with `available` free, that
    /// changes only by what the journals write.
    pub fn pretend(&self, total: u64, available: u64) {
        let mut state = self.state.lock().expect("disk space lock poisoned");
        state.pretended = true;
        state.room = available.saturating_sub(free_space_margin(total));
    }
}

/// Bytes that may be written under `path` before the margin.
fn room(path: &Path) -> io::Result<u64> {
    let (total, available) = statvfs(path)?;
    Ok(available.saturating_sub(free_space_margin(total)))
}

/// The size of the filesystem holding `path`, and what an unprivileged
/// process may still write to it.
fn statvfs(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    // The store's root may not exist yet: ask about the nearest parent.
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(path);
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a zeroed statvfs is a valid out-parameter.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let block = stats.f_frsize as u64;
    Ok((
        (stats.f_blocks as u64).saturating_mul(block),
        (stats.f_bavail as u64).saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_5_percent_up_to_1_gib() {
        assert_eq!(free_space_margin(32 << 20), (32 << 20) / 20);
        assert_eq!(free_space_margin(1 << 40), 1 << 30);
    }

    #[test]
    fn statvfs_reads_this_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let (total, available) = statvfs(&dir.path().join("not/yet")).unwrap();
        assert!(total > 0 && available <= total);
    }

    #[test]
    fn writes_are_taken_off_the_room_until_it_is_used() {
        let space = DiskSpace::new(PathBuf::from("/"));
        space.pretend(100_000_000, 5_000_100);
        assert!(space.take(60));
        assert!(!space.take(60), "past the margin");
        assert!(space.take(40));
    }
}
