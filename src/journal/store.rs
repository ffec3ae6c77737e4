//! All journals together: where they live, the memory and disk bounds
//! they share, the writer and maintenance threads.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::tail::Tail;
use super::{
    DiskOff, DiskSpace, Journal, JournalConfig, KEEP_MARKER, MAX_META_FILE, META_FILE,
    MemoryBudget, Queue, retention, segment_limit, write_atomically, writer,
};
use crate::observe::{ContainerCounters, Throttle};

/// All journals: where they live, the memory bound they share, the writer
/// and maintenance threads.
pub struct Store {
    /// Itself, for the journals (they make room under its disk bound).
    me: Weak<Store>,
    pub(super) root: Option<PathBuf>,
    /// The free space journals leave on the root's filesystem.
    space: Arc<DiskSpace>,
    budget: Arc<MemoryBudget>,
    pool: Arc<writer::Pool>,
    pub(super) open: Mutex<HashMap<String, Weak<Journal>>>,
    /// ReadLogs requests being served, bounded.
    pub(super) readers: Arc<tokio::sync::Semaphore>,
    pub(super) settings: StoreSettings,
    /// The counts of journals that closed (see [`Store::retired`]).
    pub(super) retired: Arc<ContainerCounters>,
    /// Bytes of all journals on disk, as the writers keep `LOCAL_STORE_SIZE`
    /// at write time (see `retention`); `None` until first needed.
    pub(crate) disk_used: Mutex<Option<u64>>,
}

/// Plugin-wide settings of the store.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `LOCAL_STORE_SIZE`: bound on all journals on disk together.
    pub disk_limit: u64,
    /// `LOCAL_STORE_MAX_AGE`: journals of containers that stopped writing
    /// this long ago, delivered, and not kept, are deleted. `None`: kept.
    pub max_age: Option<Duration>,
    /// `TOTAL_BUFFER_SIZE`.
    pub memory_limit: usize,
    /// Concurrent `docker logs` requests served; more are refused.
    pub max_readers: usize,
}

impl Store {
    /// A store under `root` (`DATA_DIR/journal`), or memory only with `None`.
    pub fn new(root: Option<PathBuf>, settings: StoreSettings) -> Arc<Store> {
        Arc::new_cyclic(|me| Store {
            me: me.clone(),
            disk_used: Mutex::new(None),
            space: Arc::new(DiskSpace::new(root.clone().unwrap_or_default())),
            root,
            budget: MemoryBudget::new(settings.memory_limit),
            pool: writer::Pool::start(),
            open: Mutex::new(HashMap::new()),
            readers: Arc::new(tokio::sync::Semaphore::new(settings.max_readers)),
            settings,
            retired: Arc::default(),
        })
    }

    /// The journals open now (metrics).
    pub fn journals(&self) -> Vec<Arc<Journal>> {
        self.open
            .lock()
            .expect("store lock poisoned")
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// The counts of every journal that closed since the plugin started:
    /// with the open journals' counters, plugin-wide totals that never go
    /// down (metrics).
    pub fn retired(&self) -> &ContainerCounters {
        &self.retired
    }

    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// The free space journals leave on their filesystem.
    pub fn space(&self) -> &Arc<DiskSpace> {
        &self.space
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// A container's directory. IDs are hex; anything else is refused so a
    /// request cannot name a path outside the store.
    pub(super) fn dir_of(&self, id: &str) -> io::Result<Option<PathBuf>> {
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid container ID {id:?}"),
            ));
        }
        Ok(self.root.as_ref().map(|root| root.join(id)))
    }

    /// The journal of a container that is open now.
    pub fn get(&self, id: &str) -> Option<Arc<Journal>> {
        self.open
            .lock()
            .expect("store lock poisoned")
            .get(id)
            .and_then(Weak::upgrade)
    }

    /// Opens (or returns the open) journal of a container. Blocking: it
    /// creates directories and checks the last segment for a torn tail.
    /// `meta` (the container's StartLogging request) is stored beside it.
    ///
    /// It fails only for an invalid ID: a journal whose directory cannot
    /// be written is opened for reading (what an earlier run left is
    /// delivered) and its new lines go to memory only; one that cannot be
    /// read at all is kept in memory only. Either is said in a warning and
    /// in [`Journal::disk_off`]. Damage found on disk is warned about once.
    pub fn open(
        &self,
        id: &str,
        name: &str,
        config: JournalConfig,
        counters: Arc<ContainerCounters>,
        meta: Option<&[u8]>,
    ) -> io::Result<Arc<Journal>> {
        let dir = self.dir_of(id)?;
        Ok(self.open_at(id, dir, name, config, counters, meta))
    }

    /// A journal kept in memory only, whatever its ID: for a FIFO that must
    /// be read though its record names no valid container (a record
    /// damaged on disk).
    pub fn open_in_memory(
        &self,
        id: &str,
        name: &str,
        config: JournalConfig,
        counters: Arc<ContainerCounters>,
    ) -> Arc<Journal> {
        self.open_at(id, None, name, config, counters, None)
    }

    fn open_at(
        &self,
        id: &str,
        dir: Option<PathBuf>,
        name: &str,
        config: JournalConfig,
        counters: Arc<ContainerCounters>,
        meta: Option<&[u8]>,
    ) -> Arc<Journal> {
        let mut open = self.open.lock().expect("store lock poisoned");
        if let Some(journal) = open.get(id).and_then(Weak::upgrade) {
            if journal.writes_to_disk()
                && let Some(dir) = &journal.dir
                && let Err(err) = prepare_dir(dir, meta, config.keep_file)
            {
                journal.warn_disk(
                    "cannot record the container's options beside its journal",
                    &err,
                );
            }
            return journal;
        }
        let mut recovery = writer::Recovery::default();
        let mut disk_off = None;
        let (dir, files, next_seq, cursor) = match dir {
            Some(dir) => {
                let meta_before = fs::symlink_metadata(dir.join(META_FILE)).map_or(0, |m| m.len());
                let prepared = prepare_dir(&dir, meta, config.keep_file);
                if prepared.is_ok()
                    && let Some(meta) = meta
                {
                    self.disk_added((meta.len() as u64).saturating_sub(meta_before));
                }
                // A full disk may have room again soon: only a directory
                // that cannot be written at all turns writing off.
                disk_off = prepared
                    .err()
                    .filter(|e| !matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
                    .map(|e| DiskOff::of(&e));
                match writer::Files::open(&dir, disk_off.is_none()) {
                    Ok((files, next_seq, cursor, found)) => {
                        recovery = found;
                        if disk_off.is_none()
                            && let Some(err) = &recovery.unwritable
                            && err.raw_os_error() == Some(libc::EROFS)
                        {
                            disk_off = Some(DiskOff::of(err));
                        }
                        (Some(dir), files, next_seq, cursor)
                    }
                    Err(err) => {
                        disk_off.get_or_insert_with(|| DiskOff::of(&err));
                        tracing::warn!(container = %name, dir = %dir.display(), error = %err, "cannot read this container's journal; its lines go to Loki from memory only");
                        (None, writer::Files::default(), 0, None)
                    }
                }
            }
            None => (None, writer::Files::default(), 0, None),
        };
        if let (Some(off), Some(dir)) = (&disk_off, &dir) {
            tracing::warn!(
                container = %name,
                dir = %dir.display(),
                reason = off.reason,
                error = %off.error,
                "cannot write this container's journal: its new lines go to Loki from memory only (docker logs shows what is on disk); the attachment record is kept for the next start"
            );
        }
        let cursor = cursor.unwrap_or([files.first_seq().unwrap_or(next_seq); 2]);
        let cursor = cursor.map(|c| c.min(next_seq));
        let gaps_counted_to = cursor
            .iter()
            .copied()
            .filter(|&c| c < next_seq)
            .min()
            .unwrap_or(next_seq);
        counters.retire_to(self.retired.clone());
        let journal = Arc::new_cyclic(|me| Journal {
            me: me.clone(),
            id: id.to_string(),
            name: name.to_string(),
            misses_disk: dir.is_none() && self.root.is_some(),
            dir,
            segment_limit: segment_limit(&config, self.settings.disk_limit),
            config,
            counters,
            budget: self.budget.clone(),
            intake: Mutex::new(next_seq),
            tail: Mutex::new(Tail {
                lines: VecDeque::new(),
                bytes: 0,
                cursor,
                taken: cursor,
                // What an earlier run left undelivered is read back from disk.
                evicted_to: [next_seq; 2],
                in_flight: false,
                disk_hint: None,
                session_start: next_seq,
                pending_since: None,
                held: [0; 2],
                emitted_to: [next_seq; 2],
                eviction_warning: Throttle::default(),
                backlog: [0; 2],
                lost_reason: None,
                gaps_counted_to,
                unfinished_on_disk: [None; 2],
                taken_pieces: [0; 2],
                taken_over: [None; 2],
            }),
            queue: Mutex::new(Queue {
                chunks: VecDeque::new(),
                bytes: 0,
                scheduled: false,
                incoming: 0,
            }),
            end_persisted: std::sync::atomic::AtomicU64::new(files.end),
            writing: Mutex::new(()),
            files: Mutex::new(files),
            written: watch::channel(next_seq).0,
            wake: Mutex::new(None),
            readers: AtomicUsize::new(0),
            last_reader: Mutex::new(None),
            has_lane: Mutex::new(false),
            paused: AtomicBool::new(false),
            cursor_dirty: AtomicBool::new(false),
            cursor_writing: Mutex::new(()),
            retention: Mutex::new(()),
            pins: Mutex::new(Vec::new()),
            pool: self.pool.clone(),
            space: self.space.clone(),
            disk_warning: Mutex::new(Throttle::default()),
            disk_off,
            store: self.me.clone(),
            #[cfg(test)]
            write_hook: Mutex::new(None),
        });
        if !recovery.is_clean() {
            journal.warn_recovery(&recovery);
        }
        self.budget.register(&journal);
        open.retain(|_, j| j.strong_count() > 0);
        open.insert(id.to_string(), Arc::downgrade(&journal));
        journal
    }

    /// Container IDs with a journal on disk: real directories with a
    /// container's name (never a link; other entries are warned about once
    /// by [`Store::warn_strangers`]).
    pub fn stored(&self) -> Vec<String> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        if !crate::files::is_data_dir(root) {
            return Vec::new();
        }
        fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|id| self.dir_of(id).is_ok())
            .collect()
    }

    /// Warns once about what the journal directory holds that is not a
    /// journal: a symlink, a file, a FIFO, a device (blocking; at start).
    pub fn warn_strangers(&self) {
        let Some(root) = &self.root else { return };
        if let Ok(meta) = fs::symlink_metadata(root)
            && !meta.is_dir()
        {
            tracing::warn!(dir = %root.display(), "the journal directory is not a directory (links are not followed): no journal is kept on disk");
            return;
        }
        for entry in fs::read_dir(root).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                continue;
            }
            let why = crate::files::not_a_data_file(&meta).unwrap_or("is a file, not a journal");
            tracing::warn!(entry = %path.display(), "the journal directory holds an entry that {why}; not read");
        }
    }

    /// The stored StartLogging request of a container's journal: a
    /// regular file of bounded size, never through a link.
    pub fn meta(&self, id: &str) -> io::Result<Vec<u8>> {
        let dir = self
            .dir_of(id)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no data directory"))?;
        crate::files::read_data_file(&dir.join(META_FILE), MAX_META_FILE)
    }

    /// Whether a stored journal may hold lines not yet delivered, or
    /// damage to look at (blocking).
    pub fn has_undelivered(&self, id: &str) -> bool {
        let Ok(Some(dir)) = self.dir_of(id) else {
            return false;
        };
        retention::undelivered(&dir)
    }

    /// Writes every dirty cursor and waits for the writer to finish what it
    /// has queued (at shutdown; blocking).
    pub fn flush(&self) {
        for journal in self.journals() {
            journal.write_queued();
            retention::persist_cursor(&journal);
        }
    }
}

/// Makes a container's journal directory ready to be written: a real
/// directory (a link or anything else there is replaced), the container's
/// options beside it, and the `keep-file` marker.
fn prepare_dir(dir: &Path, meta: Option<&[u8]>, keep: bool) -> io::Result<()> {
    if let Some(root) = dir.parent() {
        crate::files::ensure_data_dir(root)?;
    }
    if let Ok(found) = fs::symlink_metadata(dir)
        && !found.is_dir()
    {
        tracing::warn!(dir = %dir.display(), "a journal's place holds something that {}; replacing it with a directory", crate::files::not_a_data_file(&found).unwrap_or("is not a directory"));
        fs::remove_file(dir)?;
    }
    crate::files::ensure_data_dir(dir)?;
    if let Some(meta) = meta {
        write_atomically(&dir.join(META_FILE), meta)?;
    }
    if keep {
        match crate::files::create_data_file(&dir.join(KEEP_MARKER)) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
