//! The journal: one per container, serving both delivery and `docker logs`.
//!
//! ```text
//!  FIFO reader ──intake──▶ memory tail ──take──▶ delivery (ship) ──ack──▶ cursor
//!        │                     │ evict (bound reached)                     │
//!        └──records──▶ writer thread ──▶ segments on disk ◀──read back─────┘
//!                                           └──▶ ReadLogs (docker logs)
//! ```
//!
//! Every frame read from the FIFO becomes a record with a sequence number
//! ([`Seq`]), appended to the container's segment files by a writer thread
//! (never on the async runtime; if the disk cannot keep up, the line still
//! goes to Loki from memory and the miss is counted). Memory holds only the
//! tail of the journal: when a bound is reached, the oldest lines leave
//! memory but stay on disk, and delivery reads them back, oldest first.
//!
//! Per source (stdout, stderr) a delivery cursor says which lines Loki has
//! taken: every line of that source that starts before the cursor is done.
//! It is written to disk (atomic rename) after each accepted push, so after
//! a crash, restart or upgrade delivery resumes there; lines sent again are
//! exact duplicates, which Loki keeps once.
//!
//! Segments are deleted once delivered and outside `docker logs` retention
//! (`max-size` × `max-file`; at once with `no-file`), and, with the lines
//! they held counted as dropped, when a disk bound is reached.
//!
//! Where each part lives:
//! - `mod.rs`: [`Journal`] itself (its readers and delivery lane), its
//!   settings and the memory bound all journals share ([`MemoryBudget`]);
//! - `intake`: a FIFO reader's frames into records and lines ([`Intake`]);
//! - `tail`: the lines held in memory, and how they leave it (eviction, a
//!   long line's pieces following it to disk);
//! - `delivery`: taking batches and acknowledging them ([`Taken`]), the
//!   cursor;
//! - `readback`: reading lines that left memory back from disk;
//! - `resume`: where a FIFO found again after a restart picks up;
//! - `writer`, `record`, `layout`: records, chunks and segment files on
//!   disk, and the writer and maintenance threads;
//! - `retention`, `space`: deleting segments, the cursor file, free space;
//! - `read`: `docker logs`;
//! - `store`: all journals ([`Store`]) and the bounds they share;
//! - `legacy`: the data directory of older versions.

mod delivery;
mod intake;
mod layout;
mod legacy;
mod read;
mod readback;
pub mod record;
mod resume;
mod retention;
mod space;
mod store;
mod tail;
mod writer;

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The clock of batch waits: tokio's, so tests can pause it.
type WaitClock = tokio::time::Instant;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot, watch};

use crate::line::Seq;
use crate::observe::{ContainerCounters, Throttle};

pub use delivery::{Outcome, Settled, Taken};
pub use intake::Intake;
pub use legacy::migrate as migrate_legacy;
pub use read::{ReadError, ReadRequest};
pub use resume::ResumePoint;
pub use space::{DiskSpace, free_space_margin};
pub use store::{Store, StoreSettings};
use tail::Tail;
pub use writer::IntakeAck;

const CURSOR_FILE: &str = "cursor";
const KEEP_MARKER: &str = "keep";
/// The container's StartLogging request (its options), so that lines left
/// undelivered when its FIFO closed are delivered after a plugin restart.
pub const META_FILE: &str = "container.json";
/// A segment is cut at this size when `max-size=-1` (no `docker logs`
/// rotation), so delivered data can still be deleted in pieces.
const UNLIMITED_SEGMENT: u64 = 64 * 1024 * 1024;
/// Records waiting for the writer, per container; past it, lines go to
/// memory only (a journal miss).
const WRITER_QUEUE_LIMIT: usize = 8 * 1024 * 1024;
/// A journal's share of the memory bound for a batch is at least this (the
/// bound itself still holds: see [`MemoryBudget`]).
const MIN_BATCH_SHARE: usize = 64 * 1024;
/// Lines waiting in memory, all containers together, past which those
/// already written to disk leave memory (see [`MemoryBudget`]).
const JOURNALED_TOTAL: usize = 16 * 1024 * 1024;
/// How long the plugin-wide share waits after an eviction that found no
/// written line to move.
const JOURNALED_RETRY: Duration = Duration::from_millis(50);

/// How one container's journal is kept (from its log-opts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// `max-size`: a segment is closed when it reaches this size; `None`
    /// for `-1` (no rotation for `docker logs`).
    pub max_size: Option<u64>,
    /// `max-file`: segments kept for `docker logs`, the current one included.
    pub max_file: u32,
    /// `no-file`: nothing is kept for `docker logs`; segments go once delivered.
    pub no_file: bool,
    /// `keep-file`: the journal outlives the container.
    pub keep_file: bool,
    /// `loki-journal-size`: bound on this container's journal on disk.
    pub disk_limit: u64,
    /// `loki-buffer-size`: bound on this container's lines in memory.
    pub memory_limit: usize,
    /// Past this, the oldest lines in memory that are in the journal leave
    /// memory (no loss: delivery reads them back). At most `memory_limit`.
    pub journaled_memory: usize,
    /// `MAX_LINE_SIZE`: longer lines become several entries.
    pub max_line: usize,
}

impl JournalConfig {
    fn segment_size(&self) -> u64 {
        self.max_size.unwrap_or(UNLIMITED_SEGMENT).max(1)
    }
}

/// The plugin-wide bound on lines held in memory, shared by every journal.
/// When it is reached, lines leave the journals that hold the most, so a
/// quiet container keeps its lines while a noisy one is over its share.
///
/// Lines handed to delivery (a batch in a push, or waiting out a backoff,
/// or read back from disk) count too, and cannot be made to leave: so the
/// batches together are kept within the bound. A batch takes at most its
/// journal's share of the bound (the bound over the journals sharing it)
/// and what other batches leave free; a journal that finds no room waits
/// until a batch ends. Lines waiting in memory then leave for the journal
/// on disk as the bound requires, and memory stays within it.
///
/// Below the bound, lines waiting in memory that are already written to
/// disk leave past [`JOURNALED_TOTAL`] (the plugin-wide counterpart of a
/// container's `journaled_memory`): nothing is lost, delivery reads them
/// back.
pub struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
    /// `JOURNALED_TOTAL` within `limit`.
    journaled_limit: usize,
    /// When evicting written lines last freed nothing (all were too new):
    /// not tried again for [`JOURNALED_RETRY`], so that commits do not
    /// scan every journal in vain.
    journaled_idle_since: Mutex<Option<Instant>>,
    journals: Mutex<Vec<Weak<Journal>>>,
    /// Bytes of lines in batches (part of `used`).
    batched: AtomicUsize,
    /// Journals that found no room for a batch, woken when a batch ends.
    waiting: Mutex<Vec<Weak<Journal>>>,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            used: AtomicUsize::new(0),
            limit,
            journaled_limit: JOURNALED_TOTAL.min(limit),
            journaled_idle_since: Mutex::new(None),
            journals: Mutex::new(Vec::new()),
            batched: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
        })
    }

    /// Bytes of lines in batches handed to delivery.
    pub fn batched(&self) -> usize {
        self.batched.load(Ordering::Relaxed)
    }

    /// Bytes one journal may take into a batch now: its share of the bound,
    /// within what the other batches leave free.
    fn batch_room(&self) -> usize {
        let sharing = self.journals.lock().expect("budget lock poisoned").len();
        let share = (self.limit / sharing.max(1)).max(MIN_BATCH_SHARE);
        share.min(self.limit.saturating_sub(self.batched()))
    }

    /// Whether a batch must wait for room: there is none, and some batch
    /// holds memory (so one will end and make room).
    fn must_wait(&self, room: usize, first: usize) -> bool {
        first > room && self.batched() > 0
    }

    fn start_batch(&self, cost: usize) {
        self.batched.fetch_add(cost, Ordering::Relaxed);
    }

    /// A batch ended: journals that waited for room look again.
    fn end_batch(&self, cost: usize) {
        self.batched.fetch_sub(cost, Ordering::Relaxed);
        let waiting = std::mem::take(&mut *self.waiting.lock().expect("budget lock poisoned"));
        for journal in waiting.iter().filter_map(Weak::upgrade) {
            journal.wake();
        }
    }

    fn wait_for_room(&self, journal: &Journal) {
        let mut waiting = self.waiting.lock().expect("budget lock poisoned");
        if !waiting.iter().any(|w| std::ptr::eq(w.as_ptr(), journal)) {
            waiting.push(journal.me.clone());
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Moves written lines out of memory, from the journals holding the
    /// most, until those waiting are under `journaled_limit` (with slack).
    fn enforce_journaled(&self) {
        {
            let mut idle = self
                .journaled_idle_since
                .lock()
                .expect("budget lock poisoned");
            if idle.is_some_and(|t| t.elapsed() < JOURNALED_RETRY) {
                return;
            }
            *idle = None;
        }
        let target = self.journaled_limit - self.journaled_limit / 10;
        let mut journals: Vec<Arc<Journal>> = self
            .journals
            .lock()
            .expect("budget lock poisoned")
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        journals.sort_by_key(|j| std::cmp::Reverse(j.queued_bytes()));
        let mut freed = 0;
        for journal in journals {
            let waiting = self.used().saturating_sub(self.batched());
            if waiting <= target {
                return;
            }
            freed += journal.evict(waiting - target, "plugin-wide share of written lines", true);
        }
        if freed == 0 {
            *self
                .journaled_idle_since
                .lock()
                .expect("budget lock poisoned") = Some(Instant::now());
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    fn register(&self, journal: &Arc<Journal>) {
        let mut journals = self.journals.lock().expect("budget lock poisoned");
        journals.retain(|j| j.strong_count() > 0);
        journals.push(Arc::downgrade(journal));
    }

    /// Brings memory under the bound (with some slack, so this runs rarely)
    /// by evicting from the journals holding the most.
    fn enforce(&self) {
        if self.used() <= self.limit {
            if self.used().saturating_sub(self.batched()) > self.journaled_limit {
                self.enforce_journaled();
            }
            return;
        }
        let target = self.limit - self.limit / 10;
        while self.used() > target {
            let largest = {
                let journals = self.journals.lock().expect("budget lock poisoned");
                journals
                    .iter()
                    .filter_map(Weak::upgrade)
                    .max_by_key(|j| j.queued_bytes())
            };
            let Some(journal) = largest else { return };
            let excess = self.used() - target;
            if journal.evict(
                excess,
                "plugin-wide memory bound (TOTAL_BUFFER_SIZE)",
                false,
            ) == 0
            {
                return; // only in-flight lines are left
            }
        }
    }
}

/// Writer-side state: records waiting for the writer thread.
struct Queue {
    chunks: VecDeque<writer::Chunk>,
    bytes: usize,
    scheduled: bool,
    /// Intakes holding their lines, their records not yet queued here
    /// (see `Intake::commit`): the writer is not done with every record.
    incoming: usize,
}

/// One container's journal.
pub struct Journal {
    /// Itself, to hand to the writer threads.
    me: Weak<Journal>,
    pub id: String,
    /// The container's name, for log lines.
    pub name: String,
    /// `None` when the plugin keeps no data directory: memory only.
    dir: Option<PathBuf>,
    /// The plugin keeps a data directory, but this journal could not be
    /// opened there: every line is a journal miss.
    misses_disk: bool,
    config: JournalConfig,
    pub counters: Arc<ContainerCounters>,
    budget: Arc<MemoryBudget>,
    /// Assigns sequence numbers; FIFO readers of the same container (an old
    /// and a new FIFO after a restart) take turns through it.
    intake: Mutex<Seq>,
    tail: Mutex<Tail>,
    queue: Mutex<Queue>,
    /// Held while records are taken from `queue` and written, so that two
    /// threads (a writer thread, and `Store::flush` at shutdown) never
    /// interleave one journal's records.
    writing: Mutex<()>,
    files: Mutex<writer::Files>,
    /// The next record number that is on disk (followers wait on it).
    written: watch::Sender<Seq>,
    /// Wakes delivery when lines arrive.
    wake: Mutex<Option<Arc<Notify>>>,
    /// FIFO readers currently feeding this journal.
    readers: AtomicUsize,
    /// The end of the FIFO reader lined up last (see
    /// [`Journal::line_up_reader`]).
    last_reader: Mutex<Option<oneshot::Receiver<()>>>,
    /// Whether a delivery lane serves this journal. Changed together with
    /// `readers`, so a reader that arrives as a lane leaves gets a new one.
    has_lane: Mutex<bool>,
    /// A reader stopped for the plugin's shutdown (see `detach_reader`).
    paused: AtomicBool,
    /// The cursor changed since it was last written to disk.
    cursor_dirty: AtomicBool,
    /// Held while the cursor file is written, so that two writers (the
    /// upkeep thread, and `Store::flush` at shutdown) neither share its
    /// temporary file nor put an older cursor over a newer one.
    cursor_writing: Mutex<()>,
    /// Held while retention decides on and deletes segments, so two passes
    /// (the maintenance thread, the store's collector) never count one
    /// segment's lines twice.
    retention: Mutex<()>,
    /// Where `docker logs` requests are reading (a record number): the
    /// segments they still need are kept past `docker logs` retention (not
    /// past a disk bound).
    pins: Mutex<Vec<Weak<std::sync::atomic::AtomicU64>>>,
    pool: Arc<writer::Pool>,
    /// The store's view of the filesystem's free space.
    space: Arc<DiskSpace>,
    disk_warning: Mutex<Throttle>,
    /// Why this journal's new lines go to memory only, when its directory
    /// cannot be written (what an earlier run left is still read).
    disk_off: Option<DiskOff>,
    /// The store, for its bound on disk (`LOCAL_STORE_SIZE`).
    store: Weak<Store>,
    /// The end of the journal last written into the cursor file.
    end_persisted: std::sync::atomic::AtomicU64,
    /// See [`segment_limit`].
    segment_limit: u64,
    /// Tests: called before each write with its length; an error stands for
    /// the write failing (a full disk), a sleep for a slow one.
    #[cfg(test)]
    pub(crate) write_hook: Mutex<Option<WriteHook>>,
}

/// See [`Journal::write_hook`].
#[cfg(test)]
pub(crate) type WriteHook = Arc<dyn Fn(usize) -> io::Result<()> + Send + Sync>;

/// Why a journal is not written: the metrics `reason` and the error.
#[derive(Debug, Clone)]
pub struct DiskOff {
    pub reason: &'static str,
    pub error: String,
}

impl DiskOff {
    fn of(err: &io::Error) -> DiskOff {
        let reason = match err.raw_os_error() {
            Some(libc::EROFS) => "read_only",
            Some(libc::EACCES | libc::EPERM) => "permission_denied",
            Some(libc::ENOSPC | libc::EDQUOT) => "no_space",
            Some(libc::ENOTDIR | libc::ELOOP | libc::EISDIR | libc::EEXIST) => "not_a_directory",
            _ if err.kind() == io::ErrorKind::InvalidData => "not_a_directory",
            _ => "io_error",
        };
        DiskOff {
            reason,
            error: err.to_string(),
        }
    }
}

/// Segments are never cut smaller than this for a disk bound.
const MIN_SEGMENT: u64 = 64 * 1024;

/// Where a journal's segment is closed: at `max-size`, and small enough
/// that the disk bounds can be held by deleting closed segments (an eighth
/// of `loki-journal-size`, a sixteenth of `store_limit`, `LOCAL_STORE_SIZE`).
/// Both are fixed for the journal's life, so it is worked out once.
fn segment_limit(config: &JournalConfig, store_limit: u64) -> u64 {
    let own = (config.disk_limit / 8).max(MIN_SEGMENT);
    // A store far smaller than `max-size` still gets closed segments to
    // delete (a few KiB each).
    let store = (store_limit / 16).max(4096);
    config.segment_size().min(own).min(store)
}

impl Journal {
    /// Whether the plugin keeps this journal on disk (to read, at least).
    pub fn is_on_disk(&self) -> bool {
        self.dir.is_some()
    }

    /// Whether this journal's new lines are written to disk; false when
    /// it is kept in memory only, or its directory cannot be written.
    pub fn writes_to_disk(&self) -> bool {
        self.dir.is_some() && self.disk_off.is_none()
    }

    /// Why this journal's new lines go to memory only although the plugin
    /// keeps a data directory, if they do.
    pub fn disk_off(&self) -> Option<&DiskOff> {
        self.disk_off.as_ref()
    }

    /// Where a segment is closed (see [`segment_limit`]).
    pub(super) fn segment_limit(&self) -> u64 {
        self.segment_limit
    }

    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// Bytes of lines waiting in memory (not in flight).
    pub fn queued_bytes(&self) -> usize {
        self.counters.memory_bytes.load(Ordering::Relaxed)
    }

    /// Lets delivery be woken when lines arrive.
    pub fn set_wake(&self, notify: Arc<Notify>) {
        *self.wake.lock().expect("journal lock poisoned") = Some(notify);
    }

    fn wake(&self) {
        if let Some(notify) = self.wake.lock().expect("journal lock poisoned").as_ref() {
            notify.notify_one();
        }
    }

    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().expect("journal lock poisoned")
    }

    /// A FIFO reader starts feeding this journal (before it claims a lane,
    /// so a lane that is finishing sees the reader and stays).
    pub fn attach_reader(&self) {
        let _guard = self.has_lane.lock().expect("journal lock poisoned");
        self.readers.fetch_add(1, Ordering::AcqRel);
    }

    /// Puts a FIFO reader in line behind the one that came before it:
    /// takes `end` (it resolves once the new reader is done, its sender
    /// dropped) and returns the earlier reader's. A restarted container's
    /// new FIFO is read once the old one is read to its end, because the
    /// journal joins a long line from one reader's frames at a time per
    /// source (its memory tail, the lines that follow a long line to disk
    /// and the read back all assume it). The daemon closes the old FIFO's
    /// writer before it starts logging again, so only what the plugin had
    /// not read of it yet is left.
    pub fn line_up_reader(&self, end: oneshot::Receiver<()>) -> Option<oneshot::Receiver<()>> {
        self.last_reader
            .lock()
            .expect("journal lock poisoned")
            .replace(end)
    }

    /// Claims delivery of this journal: true when no lane delivers it yet
    /// (the caller then attaches one), false when one does.
    pub fn claim_lane(&self) -> bool {
        !std::mem::replace(
            &mut *self.has_lane.lock().expect("journal lock poisoned"),
            true,
        )
    }

    /// Gives back a claim whose lane could not be attached.
    pub fn unclaim_lane(&self) {
        *self.has_lane.lock().expect("journal lock poisoned") = false;
    }

    /// Called by the lane: lets it go if nothing feeds the journal any more
    /// and everything is delivered. Returns whether it was let go.
    pub fn release_lane_if_done(&self) -> bool {
        let mut has_lane = self.has_lane.lock().expect("journal lock poisoned");
        let done = !self.is_live() && self.is_drained();
        if done {
            *has_lane = false;
        }
        done
    }

    /// A FIFO reader is done: at EOF, or `paused` by the plugin's shutdown
    /// (the FIFO goes on, and the next process reads it).
    pub fn detach_reader(&self, paused: bool) {
        if paused {
            self.paused.store(true, Ordering::Release);
        }
        self.readers.fetch_sub(1, Ordering::AcqRel);
        self.wake();
        self.written.send_modify(|_| {});
        if self.is_on_disk() {
            self.pool.maintain(self);
        }
    }

    /// A reader's position, kept while the returned handle lives; it starts
    /// at 0 (everything is needed) until the reader stores where it is.
    pub(crate) fn pin(&self) -> Arc<std::sync::atomic::AtomicU64> {
        let pin = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut pins = self.pins.lock().expect("journal lock poisoned");
        pins.retain(|p| p.strong_count() > 0);
        pins.push(Arc::downgrade(&pin));
        pin
    }

    /// The oldest record a `docker logs` request still needs, if any reads.
    fn oldest_pin(&self) -> Option<Seq> {
        self.pins
            .lock()
            .expect("journal lock poisoned")
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.load(Ordering::Acquire))
            .min()
    }

    /// Whether reading stopped for the plugin's shutdown rather than at EOF.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether a FIFO reader still feeds this journal.
    pub fn is_live(&self) -> bool {
        self.readers.load(Ordering::Acquire) > 0
    }

    /// Whether more records may still reach the disk: a FIFO reader feeds
    /// this journal, or the writer has records queued.
    pub fn may_grow(&self) -> bool {
        self.is_live() || self.queue.lock().expect("journal lock poisoned").scheduled
    }

    fn warn_unreadable(&self, path: &Path, err: &io::Error) {
        tracing::warn!(
            container = %self.name,
            segment = %path.display(),
            error = %err,
            "journal: skipping a segment that cannot be read; its lines are counted as dropped (journal_corrupt)"
        );
    }

    /// The segments on disk, oldest first.
    fn segments(&self) -> Vec<layout::Segment> {
        self.files
            .lock()
            .expect("journal lock poisoned")
            .segments
            .clone()
    }

    /// Bytes of this journal on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.files
            .lock()
            .expect("journal lock poisoned")
            .segments
            .iter()
            .map(|s| s.bytes)
            .sum()
    }

    /// Says once what opening this journal found damaged, and what
    /// becomes of it.
    fn warn_recovery(&self, recovery: &writer::Recovery) {
        let dir = self.dir.as_deref().map(Path::display);
        let mut found: Vec<String> = recovery
            .skipped
            .iter()
            .take(8)
            .map(|(path, why)| format!("{} {why}", path.display()))
            .collect();
        if recovery.skipped.len() > 8 {
            found.push(format!(
                "and {} more such entries",
                recovery.skipped.len() - 8
            ));
        }
        found.extend(recovery.notes.iter().cloned());
        if let Some(problem) = &recovery.cursor_problem {
            found.push(format!(
                "the delivery cursor was not used ({problem}): the journal is delivered again from its oldest segment, and Loki keeps one copy"
            ));
        }
        if recovery.missing_at_end > 0 {
            found.push(format!(
                "{} records written at its end are missing",
                recovery.missing_at_end
            ));
        }
        tracing::warn!(
            container = %self.name,
            dir = %dir.map(|d| d.to_string()).unwrap_or_default(),
            "journal damaged while the plugin was away: {}; what is readable is delivered, lines lost are counted as dropped (journal_corrupt)",
            found.join("; ")
        );
    }

    fn warn_disk(&self, what: &str, err: &io::Error) {
        let allowed = self
            .disk_warning
            .lock()
            .expect("journal lock poisoned")
            .allow(Instant::now());
        if let Some(suppressed) = allowed {
            tracing::warn!(container = %self.name, error = %err, similar_suppressed = suppressed, "{what}");
        }
    }

    /// The cursor as delivery last left it.
    fn cursor(&self) -> [Seq; 2] {
        self.tail().cursor
    }

    /// Per source, where delivery's cursor is: every line that starts
    /// before it is delivered or given up.
    pub fn delivery_cursor(&self) -> [Seq; 2] {
        self.cursor()
    }
}

impl Drop for Journal {
    /// The lines still in memory leave the plugin-wide budget with the
    /// journal (one whose lane never came, or whose FIFO ended unread by
    /// delivery): the budget would otherwise stay used for good.
    fn drop(&mut self) {
        let tail = self.tail.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.sub(tail.bytes);
        tail.bytes = 0;
    }
}

/// Writes `path` so that it is either the old or the new content (mode
/// 0600). The file is written anew beside it, never through a link or
/// into a FIFO left there, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    if let Ok(meta) = fs::symlink_metadata(&tmp)
        && !meta.is_dir()
    {
        let _ = fs::remove_file(&tmp);
    }
    let mut file = crate::files::create_data_file(&tmp)?;
    if let Err(err) = file.write_all(bytes) {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    drop(file);
    fs::rename(&tmp, path)
}

/// The largest `container.json` or attachment record read: a StartLogging
/// request is at most 4 MiB.
pub const MAX_META_FILE: u64 = (crate::protocol::MAX_REQUEST_BODY as u64) + (64 << 10);

/// Bytes as stored: the line and a newline, for `docker logs`.
pub(crate) fn with_newline(line: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(line);
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
