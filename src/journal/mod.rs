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

mod layout;
mod legacy;
mod read;
pub mod record;
mod retention;
mod space;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The clock of batch waits: tokio's, so tests can pause it.
type WaitClock = tokio::time::Instant;

use bytes::Bytes;
use prost::Message;
use tokio::sync::{Notify, watch};

use crate::assemble::Assembler;
use crate::line::{Line, Seq, Source};
use crate::observe::{ContainerCounters, DropReason, Drops, Throttle};
use crate::proto::logdriver::LogEntry;
use record::{SegmentFile, SegmentReader};

pub use legacy::migrate as migrate_legacy;
pub use read::{ReadError, ReadRequest};
pub use space::{DiskSpace, free_space_margin};
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

/// A line in memory, and whether its record was handed to the writer.
#[derive(Debug)]
struct Held {
    line: Line,
    journaled: bool,
    /// Every record of the intake that brought this line is before it: once
    /// the writer has written up to here, the line is on disk (or its
    /// write failed, and `journaled` was cleared first).
    records_end: Seq,
    /// Its record was on disk, and a disk bound deleted it: should the
    /// line leave memory, it is lost (`journal_full`).
    deleted: bool,
}

/// The delivery side of a journal: what is in memory and how far delivery got.
struct Tail {
    lines: VecDeque<Held>,
    /// Cost of `lines`.
    bytes: usize,
    /// Per source: every line that starts before it has been delivered or
    /// given up. Persisted.
    cursor: [Seq; 2],
    /// Per source: every line that starts before it has been handed to
    /// delivery (in flight or done).
    taken: [Seq; 2],
    /// Per source: lines acknowledged up to here left memory; delivery
    /// reads them back from disk.
    evicted_to: [Seq; 2],
    in_flight: bool,
    /// Where the last read from disk stopped, to continue from there.
    disk_hint: Option<record_pos::Pos>,
    /// Records before this were written by an earlier run of the plugin.
    session_start: Seq,
    /// Lines wait since then (for `loki-batch-wait`).
    pending_since: Option<WaitClock>,
    /// Per source: lines in `lines`.
    held: [usize; 2],
    /// Per source: every line that starts before it has been emitted by
    /// the FIFO readers (into memory, or skipped as blank). With nothing of
    /// a source waiting, its cursor may move here, so a source that goes
    /// quiet does not pin old segments.
    emitted_to: [Seq; 2],
    eviction_warning: Throttle,
    /// Per source: lines of this run that left memory for the disk and
    /// that delivery has not read back yet. What is left of them when
    /// delivery has read everything up to `evicted_to` was not found on
    /// disk: lost, for `lost_reason`.
    backlog: [u64; 2],
    /// Why lines that left memory may be missing from disk: a disk bound
    /// deleted segments (`journal_full`), their write failed (a full disk:
    /// `memory_full`), or a segment could not be read (`journal_corrupt`).
    lost_reason: Option<DropReason>,
    /// Records of an earlier run before this were looked for by delivery:
    /// those missing were counted (`journal_corrupt`).
    gaps_counted_to: Seq,
    /// Per source: the first record of a long line whose pieces left
    /// memory while the FIFO reader was still joining it. Its further
    /// pieces go straight to disk as they come, so memory never holds part
    /// of a line that delivery reads back; once its last piece is in,
    /// `evicted_to` moves past the line and delivery reads it whole.
    unfinished_on_disk: [Option<Seq>; 2],
    /// Per source: pieces of the line that starts at `taken` handed to
    /// delivery from memory while the rest of the line was still to come.
    /// Should the rest leave memory, a read back from `taken` skips them.
    taken_pieces: [u32; 2],
    /// Per source: the first record of a line an earlier run was joining,
    /// which this run's reader took over and ends: the lines it emits are
    /// this run's, though their records may all be the earlier run's.
    taken_over: [Option<Seq>; 2],
}

impl Tail {
    /// Per source: whether lines that left memory wait on disk for delivery.
    fn disk_backlog(&self) -> [bool; 2] {
        [0, 1].map(|s| self.taken[s] < self.evicted_to[s])
    }

    fn has_disk_backlog(&self) -> bool {
        self.disk_backlog().contains(&true)
    }

    /// Moves source `s`'s delivery on to `to`: past the line whose pieces
    /// `taken_pieces` counts, if it moves at all.
    fn move_taken(&mut self, s: usize, to: Seq) {
        if to > self.taken[s] {
            self.taken[s] = to;
            self.taken_pieces[s] = 0;
        }
    }

    /// Whether every line of `group` (see [`Tail::front_line`]) is on
    /// disk, with records before `written` written.
    fn all_on_disk(&self, group: &[usize], written: Seq) -> bool {
        group.iter().all(|&i| {
            let held = &self.lines[i];
            held.journaled && !held.deleted && held.records_end <= written
        })
    }

    /// A line of a source whose long line left memory unfinished (see
    /// `unfinished_on_disk`) follows its pieces to disk, not into memory:
    /// the rest of that line, or, if its last piece was blank and not held,
    /// the lines after it. Returns None for a line that is held as usual,
    /// else whether it waits on disk (false: its record is not in the
    /// journal, and it is lost).
    fn follow_to_disk(&mut self, line: &Line, journaled: bool) -> Option<bool> {
        let s = line.source as usize;
        self.unfinished_on_disk[s]?;
        self.evicted_to[s] = self.evicted_to[s].max(line.ack);
        self.unfinished_on_disk[s] = line.piece.then_some(line.ack);
        if journaled {
            self.backlog[s] += 1;
        }
        Some(journaled)
    }

    /// Ends the long lines that left memory unfinished and that the FIFO
    /// reader is no longer joining (`emitted`), though no last piece
    /// followed them: it was blank, and such lines are not held. Delivery
    /// reads them back up to where the reader got; no later line of their
    /// source is in memory.
    /// Returns whether one ended.
    fn end_unfinished(&mut self, emitted: [Seq; 2]) -> bool {
        let mut ended = false;
        for (s, emitted) in emitted.into_iter().enumerate() {
            if self.unfinished_on_disk[s].is_some_and(|first| emitted > first) {
                self.evicted_to[s] = self.evicted_to[s].max(emitted);
                self.unfinished_on_disk[s] = None;
                ended = true;
            }
        }
        ended
    }

    /// Puts in `group` where in `lines` the oldest line is: the front, and
    /// the pieces that must leave memory with it. A piece of a long line is
    /// acknowledged at the line's first record, its last piece at its end:
    /// they all go, up to the last piece if that is in memory. Pieces of a
    /// line that starts where a whole front line ends share that line's
    /// acknowledgement, and go with it too. Delivery reads back from disk
    /// every line of a source acknowledged up to `evicted_to`, so none of
    /// those may stay in memory.
    fn front_line(&self, group: &mut Vec<usize>) {
        group.clear();
        let Some(front) = self.lines.front() else {
            return;
        };
        let (source, ack) = (front.line.source, front.line.ack);
        group.push(0);
        let mut unfinished = front.line.piece;
        for (i, held) in self.lines.iter().enumerate().skip(1) {
            if held.line.source != source {
                continue;
            }
            if !unfinished && held.line.ack != ack {
                break;
            }
            group.push(i);
            unfinished = held.line.piece;
        }
    }
}

mod record_pos {
    use crate::line::Seq;

    /// A position in a raw segment: the record `seq` starts at `offset`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Pos {
        pub segment: Seq,
        pub offset: u64,
        pub seq: Seq,
    }
}

/// Moves source `s`'s cursor to `advance`, but not past `hold`; with
/// nothing of it left waiting, on to what its reader emitted.
fn move_source_cursor(tail: &mut Tail, s: usize, advance: Seq, hold: Seq) {
    tail.cursor[s] = tail.cursor[s].max(advance.min(hold));
    let idle = tail.held[s] == 0
        && tail.taken[s] >= tail.evicted_to[s]
        && tail.unfinished_on_disk[s].is_none();
    if idle {
        let emitted = tail.emitted_to[s];
        tail.move_taken(s, emitted);
        tail.cursor[s] = tail.cursor[s].max(tail.emitted_to[s].min(hold));
    }
}

/// Lines handed to delivery; given back with [`Journal::ack`].
#[derive(Debug)]
pub struct Taken {
    pub lines: Vec<Line>,
    /// Per source, where these lines start: every line before it was
    /// handed to delivery earlier.
    from: [Seq; 2],
    /// Where the cursor moves once these lines are done.
    advance: [Seq; 2],
    /// Memory these lines hold until they are done.
    cost: usize,
    /// Where in `lines` the lines are that were only in memory when taken
    /// (their record was not written) from a journal on disk: lost if the
    /// batch is given back at a shutdown. None for a journal in memory
    /// only, where every line is.
    unjournaled: Vec<u32>,
}

impl Taken {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of the lines.
    pub fn bytes(&self) -> usize {
        self.lines.iter().map(|l| l.bytes.len()).sum()
    }

    /// Per source, the position before the first of these lines.
    pub fn from(&self) -> [Seq; 2] {
        self.from
    }
}

/// How delivery ended for lines the pipeline stages processed (see
/// [`Journal::settle`]).
#[derive(Debug)]
pub struct Settled<'a> {
    /// Lines Loki took.
    pub sent: u64,
    /// Lines given up, by reason.
    pub dropped: Drops,
    /// Lines the stages dropped on purpose, by reason.
    pub filtered: &'a std::collections::BTreeMap<std::sync::Arc<str>, u64>,
    /// Per source: the cursor may not pass this, because the stages still
    /// hold lines from there on (`Seq::MAX`: nothing held).
    pub hold: [Seq; 2],
}

/// How delivery ended for taken lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Dropped(DropReason),
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

    /// Where a FIFO found again after a restart picks up (blocking): the
    /// hashes of the newest records, about `max_bytes` of them (the FIFO may
    /// still hold those frames), and per source the frames of a line the
    /// earlier run was still joining when it stopped.
    ///
    /// The reader takes such a line over, so that the pieces still in the
    /// FIFO join it: delivery reads the earlier run's lines of that source
    /// back from disk only up to the line's first record, and the cursor
    /// does not pass it until the reader has emitted the whole line. Call
    /// it before delivery starts reading this journal.
    pub fn resume_point(&self, max_bytes: u64) -> ResumePoint {
        let mut point = ResumePoint::default();
        let Some(dir) = &self.dir else { return point };
        let mut budget = max_bytes;
        // Per source: None while unknown; then the frames of its unfinished
        // line, newest first (empty: none, or its start is not on disk).
        let mut groups: [Option<Vec<(Seq, LogEntry)>>; 2] = [None, None];
        let mut group_bytes = 0usize;
        'segments: for segment in self.segments().iter().rev() {
            if segment.compressed {
                break;
            }
            let Ok(mut reader) = record::BackwardReader::open(&segment.path(dir), segment.bytes)
            else {
                break;
            };
            while let Ok(Some(record)) = reader.prev() {
                if budget > 0 {
                    point.recent.insert(record::payload_hash(&record.payload));
                    budget =
                        budget.saturating_sub((record.payload.len() + record::ENVELOPE) as u64);
                }
                // A source not seen in the window has no line to take over;
                // one being collected is followed to its first piece.
                let searching = |g: &Option<Vec<_>>| match g {
                    None => budget > 0,
                    Some(frames) => !group_done(frames),
                };
                if !groups.iter().any(searching) {
                    if budget == 0 {
                        break 'segments;
                    }
                    continue;
                }
                let Ok(entry) = LogEntry::decode(record.payload.clone()) else {
                    continue;
                };
                let Some(source) = Source::parse(&entry.source) else {
                    continue;
                };
                let group = &mut groups[source as usize];
                if !searching(group) {
                    continue;
                }
                match group {
                    // The newest frame of this source: a line is unfinished
                    // if it is a piece that is not the last.
                    None => {
                        let unfinished = entry
                            .partial_log_metadata
                            .as_ref()
                            .is_some_and(|m| entry.partial && !m.last);
                        *group = Some(Vec::new());
                        if unfinished {
                            group_bytes += entry.line.len();
                            group.as_mut().unwrap().push((record.seq, entry));
                        }
                    }
                    Some(frames) => {
                        let same = entry.partial
                            && entry.partial_log_metadata.as_ref().map(|m| &m.id)
                                == frames[0].1.partial_log_metadata.as_ref().map(|m| &m.id);
                        group_bytes += entry.line.len();
                        if !same || group_bytes > MAX_TAKEN_OVER {
                            frames.clear(); // its start is not here: left as it is
                        } else {
                            frames.push((record.seq, entry));
                        }
                    }
                }
            }
        }
        let mut tail = self.tail();
        for (s, group) in groups.into_iter().enumerate() {
            let Some(mut frames) = group else { continue };
            if frames.last().is_none_or(|(_, e)| ordinal(e) != Some(1)) {
                continue;
            }
            let first = frames.last().map(|(seq, _)| *seq).unwrap();
            if tail.in_flight || tail.taken[s] > first || first >= tail.session_start {
                continue;
            }
            tail.evicted_to[s] = tail.evicted_to[s].min(first);
            tail.emitted_to[s] = tail.emitted_to[s].min(first);
            frames.reverse();
            point.unfinished.extend(frames);
        }
        point.unfinished.sort_by_key(|(seq, _)| *seq);
        point
    }

    /// Feeds `assembler` the frames of the lines an earlier run was still
    /// joining (see [`Journal::resume_point`]), so that the pieces still in
    /// the FIFO join them. The full pieces of such a line cut from those
    /// frames are on disk, and delivery reads them back from there: the
    /// rest of the line follows them to disk (as when pieces of a line
    /// leave memory while it is read), to be read back whole once it ends.
    /// A journal that cannot be written now holds those pieces in memory
    /// instead, as read back.
    pub fn take_over(&self, unfinished: Vec<(Seq, LogEntry)>, assembler: &mut Assembler) {
        let mut cut = Vec::new();
        let mut taken_over = [None; 2];
        for (seq, entry) in unfinished {
            if let Some(source) = Source::parse(&entry.source) {
                taken_over[source as usize].get_or_insert(seq);
            }
            let _ = assembler.push(entry, seq, &mut cut);
        }
        cut.retain(|line| line.piece && !line.is_blank());
        let mut tail = self.tail();
        tail.taken_over = taken_over;
        if self.writes_to_disk() {
            for piece in &cut {
                tail.unfinished_on_disk[piece.source as usize] = Some(piece.ack);
            }
            return;
        }
        let (count, cost) = (cut.len(), cut.iter().map(Line::cost).sum::<usize>());
        for line in cut {
            tail.held[line.source as usize] += 1;
            let records_end = tail.session_start;
            tail.lines.push_back(Held {
                line,
                journaled: false,
                records_end,
                deleted: false,
            });
        }
        tail.bytes += cost;
        tail.pending_since.get_or_insert_with(WaitClock::now);
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        drop(tail);
        ContainerCounters::add(&self.counters.recovered, count as u64);
        self.counters
            .memory_lines
            .fetch_add(count as i64, Ordering::Relaxed);
        self.budget.add(cost);
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

    /// Starts an intake: sequence numbers are assigned in order while the
    /// guard is held.
    pub fn intake(&self) -> Intake<'_> {
        Intake {
            journal: self,
            next: self.intake.lock().expect("journal lock poisoned"),
            records: Vec::new(),
            // A quarter of a segment at most, so segments are cut near
            // their size.
            chunk: record::ChunkBuilder::with_limit(
                usize::try_from(self.segment_limit() / 4).unwrap_or(usize::MAX),
            ),
            first: None,
            recorded: Vec::new(),
        }
    }

    /// Adds lines for Loki to memory, evicting the oldest past a bound.
    /// `journaled`: their records were queued for the writer, with them or
    /// (the rest of a line flushed at EOF) before.
    /// `emitted` is how far the FIFO reader has turned records into lines.
    fn hold(&self, mut lines: Vec<Line>, journaled: bool, emitted: [Seq; 2], records_end: Seq) {
        let count = lines.len() as u64;
        let mut added = 0;
        let (mut followed, mut lost, mut ended) = (0u64, 0u64, false);
        let in_memory = {
            let mut tail = self.tail();
            for (to, emitted) in tail.emitted_to.iter_mut().zip(emitted) {
                *to = (*to).max(emitted);
            }
            if tail.unfinished_on_disk != [None; 2] {
                lines.retain(|line| match tail.follow_to_disk(line, journaled) {
                    None => true,
                    Some(true) => {
                        followed += 1;
                        false
                    }
                    Some(false) => {
                        lost += 1;
                        false
                    }
                });
                ended = tail.end_unfinished(emitted);
            }
            if lines.is_empty() {
                drop(tail);
                ContainerCounters::add(&self.counters.received, count);
                self.count_followed(followed, lost);
                if ended {
                    self.wake();
                }
                return;
            }
            if tail.pending_since.is_none() {
                tail.pending_since = Some(WaitClock::now());
            }
            if tail.lines.is_empty() && !tail.in_flight {
                self.counters
                    .oldest_pending_ns
                    .store(lines[0].timestamp_ns, Ordering::Relaxed);
            }
            for line in lines {
                added += line.cost();
                tail.held[line.source as usize] += 1;
                tail.lines.push_back(Held {
                    line,
                    journaled,
                    records_end,
                    deleted: false,
                });
            }
            tail.bytes += added;
            self.counters
                .memory_bytes
                .store(tail.bytes, Ordering::Relaxed);
            tail.bytes
        };
        ContainerCounters::add(&self.counters.received, count);
        self.count_followed(followed, lost);
        self.counters
            .memory_lines
            .fetch_add((count - followed - lost) as i64, Ordering::Relaxed);
        self.budget.add(added);
        if in_memory > self.config.memory_limit {
            let excess = self.queued_bytes().saturating_sub(self.config.memory_limit);
            self.evict(excess, "container memory bound (loki-buffer-size)", false);
        } else if in_memory > self.config.journaled_memory && self.writes_to_disk() {
            let excess = self
                .queued_bytes()
                .saturating_sub(self.config.journaled_memory);
            self.evict(excess, "journaled lines' share of memory", true);
        }
        self.budget.enforce();
        self.wake();
    }

    /// Counts lines received that went straight to disk after the pieces
    /// of their long line (see `Tail::follow_to_disk`), `followed`, and
    /// those that would have but were not in the journal, `lost`.
    fn count_followed(&self, followed: u64, lost: u64) {
        self.counters
            .backlog_lines
            .fetch_add(followed as i64, Ordering::Relaxed);
        self.counters.drop_lines(DropReason::MemoryFull, lost);
        if followed + lost > 0 {
            self.wake();
        }
    }

    /// Moves at least `bytes` of the oldest waiting lines out of memory;
    /// journaled lines wait on disk, the others are dropped and counted.
    /// With `only_journaled`, it stops before the first line (or piece of
    /// a long line) the journal does not hold: nothing is dropped. A long
    /// line leaves with all its pieces in memory; if it is still being
    /// read, the pieces to come go straight to disk (`Tail::follow_to_disk`),
    /// so once queued for the writer: should that write fail, they are
    /// counted as lost when delivery comes to them.
    /// Returns the bytes freed.
    fn evict(&self, bytes: usize, why: &str, only_journaled: bool) -> usize {
        let mut tail = self.tail();
        let mut freed = 0;
        let (mut to_disk, mut lost, mut deleted) = (0u64, 0u64, 0u64);
        let on_disk = self.writes_to_disk();
        let mut leave = |held: &Held, tail: &mut Tail| {
            if held.journaled && on_disk {
                to_disk += 1;
                tail.backlog[held.line.source as usize] += 1;
            } else if held.deleted {
                deleted += 1;
            } else {
                lost += 1;
            }
        };
        let written = match only_journaled {
            true => *self.written.borrow(),
            false => Seq::MAX,
        };
        let mut group = Vec::new();
        while freed < bytes && tail.lines.len() > 1 {
            // The oldest line leaves with every piece of it in memory, so
            // memory never holds part of a line that delivery reads from disk.
            tail.front_line(&mut group);
            if only_journaled && !(on_disk && tail.all_on_disk(&group, written)) {
                break;
            }
            let last = &tail.lines[*group.last().expect("the front is in it")].line;
            let (s, unfinished) = (last.source as usize, last.piece.then_some(last.ack));
            for &i in group.iter().rev() {
                let held = tail.lines.remove(i).expect("index in range");
                tail.held[s] -= 1;
                freed += held.line.cost();
                leave(&held, &mut tail);
                if on_disk {
                    tail.evicted_to[s] = tail.evicted_to[s].max(held.line.ack);
                }
            }
            match unfinished {
                Some(first) if on_disk && tail.emitted_to[s] <= first => {
                    // The reader is still joining that line: the rest of
                    // it follows its pieces to disk (see `Journal::hold`).
                    tail.unfinished_on_disk[s] = Some(first);
                }
                Some(_) if on_disk => {
                    // The reader is past it: its last piece was blank, and
                    // not held. Nothing of the source after it is in memory.
                    tail.evicted_to[s] = tail.evicted_to[s].max(tail.emitted_to[s]);
                }
                _ => {}
            }
        }
        tail.bytes -= freed;
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        // The backlog changes with the tail, so that delivery, which reads
        // it back, can tell lines that never reached the disk (see
        // `reconcile_backlog`).
        let moved = (to_disk + lost + deleted) as i64;
        self.counters
            .memory_lines
            .fetch_sub(moved, Ordering::Relaxed);
        self.counters
            .backlog_lines
            .fetch_add(to_disk as i64, Ordering::Relaxed);
        self.counters.drop_lines(DropReason::MemoryFull, lost);
        self.counters.drop_lines(DropReason::JournalFull, deleted);
        let warn = lost > 0 && tail.eviction_warning.allow(Instant::now()).is_some();
        drop(tail);
        self.budget.sub(freed);
        if warn {
            tracing::warn!(
                container = %self.name,
                dropped_total = self.counters.dropped(DropReason::MemoryFull),
                reason = why,
                "memory bound reached while these lines were not in the journal: dropped the oldest"
            );
        }
        freed
    }

    /// Whether lines that left memory, or that an earlier run left
    /// undelivered, wait on disk for delivery. They have waited already:
    /// delivery takes them without a batch wait.
    pub fn has_disk_backlog(&self) -> bool {
        self.tail().has_disk_backlog()
    }

    /// Whether lines wait for delivery (in memory or on disk), and since
    /// when. A disk backlog nothing in memory dates (what an earlier run
    /// left, found after a restart) waits from when it is first looked at:
    /// a fixed time, so the lane becomes due.
    pub fn pending_since(&self) -> Option<WaitClock> {
        let mut tail = self.tail();
        if tail.in_flight {
            return None;
        }
        if tail.has_disk_backlog() {
            return Some(*tail.pending_since.get_or_insert_with(WaitClock::now));
        }
        if tail.lines.is_empty() {
            // Nothing waits: the next line starts a new batch wait.
            tail.pending_since = None;
            None
        } else {
            tail.pending_since
        }
    }

    /// Whether every line received has been handed to delivery (it may be
    /// in flight still).
    pub fn is_caught_up(&self) -> bool {
        let tail = self.tail();
        tail.lines.is_empty() && !tail.has_disk_backlog()
    }

    /// Whether everything this journal received has been delivered or given up.
    pub fn is_drained(&self) -> bool {
        let tail = self.tail();
        !tail.in_flight && tail.lines.is_empty() && !tail.has_disk_backlog()
    }

    /// Takes the next lines for delivery: up to `max_bytes` of line bytes
    /// (at least one line), oldest first, read back from disk when they
    /// left memory. `None` when nothing waits or a batch is already out.
    pub async fn take(self: &Arc<Self>, max_bytes: usize) -> Option<Taken> {
        self.take_with(max_bytes, 0).await
    }

    /// [`Journal::take`], each line counting `per_line` bytes more than its
    /// own (what goes with every entry of a push, such as structured
    /// metadata), so a batch stays within `max_bytes` as sent.
    pub async fn take_with(self: &Arc<Self>, max_bytes: usize, per_line: usize) -> Option<Taken> {
        self.take_next(max_bytes, per_line, false).await
    }

    /// Adds the next lines to `taken`, which is out for delivery still:
    /// up to `max_bytes` more (at least one line), as [`Journal::take_with`]
    /// takes them. A container with a backlog keeps Loki busy this way: a
    /// part of its batch goes while another is in a push, and the batch
    /// rolls on ([`Journal::ack_front`]) instead of ending. False when
    /// nothing more was added.
    pub async fn take_more(
        self: &Arc<Self>,
        taken: &mut Taken,
        max_bytes: usize,
        per_line: usize,
    ) -> bool {
        debug_assert!(self.tail().in_flight, "take_more with no batch out");
        let Some(more) = self.take_next(max_bytes, per_line, true).await else {
            return false;
        };
        for s in 0..2 {
            taken.advance[s] = taken.advance[s].max(more.advance[s]);
        }
        taken.cost += more.cost;
        let at = taken.lines.len() as u32;
        taken
            .unjournaled
            .extend(more.unjournaled.iter().map(|i| i + at));
        let added = !more.lines.is_empty();
        taken.lines.extend(more.lines);
        added
    }

    /// The next lines after what was taken; `more`: the batch taken before
    /// is out still, and these lines join it (see [`Journal::take_more`]).
    async fn take_next(
        self: &Arc<Self>,
        max_bytes: usize,
        per_line: usize,
        more: bool,
    ) -> Option<Taken> {
        let plan = {
            let mut tail = self.tail();
            if tail.in_flight != more {
                return None;
            }
            let from_disk = tail.disk_backlog();
            if from_disk == [false; 2] {
                return self.take_from_memory(&mut tail, max_bytes, per_line);
            }
            let room = self.budget.batch_room();
            if self.budget.must_wait(room, 1) {
                self.budget.wait_for_room(self);
                return None;
            }
            // Never read past what the writer has written: a record still
            // queued would look missing. With nothing queued, every record
            // of a line that left memory is written, or never will be (its
            // write failed, or the writer could not take it).
            let writer_busy = {
                let queue = self.queue.lock().expect("journal lock poisoned");
                queue.scheduled || queue.incoming > 0
            };
            let written = match writer_busy {
                true => *self.written.borrow(),
                false => Seq::MAX,
            };
            let upto = tail.evicted_to.map(|e| e.min(written));
            if (0..2).all(|s| tail.taken[s] >= upto[s]) {
                return None; // the writer wakes delivery when it catches up
            }
            tail.in_flight = true;
            DiskPlan {
                from: tail.taken,
                upto,
                sources: from_disk,
                hint: tail.disk_hint,
                whole: [0, 1].map(|s| tail.evicted_to[s] <= written),
                skip_pieces: tail.taken_pieces,
                taken_over: tail.taken_over,
                session_start: tail.session_start,
                max_bytes: max_bytes.min(room.max(1)),
                per_line,
                gaps_from: tail.gaps_counted_to,
            }
        };
        let journal = self.clone();
        let from = plan.from;
        let read = tokio::task::spawn_blocking(move || journal.read_back(&plan)).await;
        let read = match read {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                self.warn_disk(
                    "reading undelivered lines back from the journal failed",
                    &err,
                );
                self.tail().in_flight = more;
                return None;
            }
            Err(_) => {
                self.tail().in_flight = more;
                return None;
            }
        };
        let cost: usize = read.lines.iter().map(Line::cost).sum();
        let n = read.lines.len() as u64;
        let mut tail = self.tail();
        for s in 0..2 {
            tail.move_taken(s, read.advance[s]);
        }
        tail.disk_hint = read.hint;
        self.counters
            .backlog_lines
            .fetch_sub((n - read.recovered) as i64, Ordering::Relaxed);
        self.account_read_back(&mut tail, &read);
        if !tail.has_disk_backlog() && tail.lines.is_empty() {
            // Done with the disk: the next line starts a new batch wait.
            tail.pending_since = None;
        }
        // A long line left for a later read: the writer wakes delivery
        // once it has written more.
        let look_again = !read.cut;
        if read.lines.is_empty() && more {
            // Nothing was left on disk in that range: the batch out moves
            // the cursor past it once it is done.
            drop(tail);
            if look_again {
                self.wake();
            }
            return Some(Taken {
                lines: Vec::new(),
                from,
                advance: read.advance,
                cost: 0,
                unjournaled: Vec::new(),
            });
        }
        if read.lines.is_empty() {
            // Nothing was left on disk in that range (deleted or never written).
            tail.in_flight = false;
            for s in 0..2 {
                tail.cursor[s] = tail.cursor[s].max(read.advance[s]);
            }
            self.cursor_dirty.store(true, Ordering::Release);
            drop(tail);
            // More to read, or (done with the disk) a lane with nothing
            // left to deliver must be looked at again to be let go.
            if look_again {
                self.wake();
            }
            return None;
        }
        ContainerCounters::add(&self.counters.recovered, read.recovered);
        self.counters
            .in_flight_lines
            .fetch_add(n as i64, Ordering::Relaxed);
        drop(tail);
        self.budget.add(cost);
        self.budget.start_batch(cost);
        // Room for the lines read back: lines waiting in memory leave for disk.
        self.budget.enforce();
        ContainerCounters::add(&self.counters.read_back, n - read.recovered);
        Some(Taken {
            lines: read.lines,
            from,
            advance: read.advance,
            cost,
            unjournaled: Vec::new(),
        })
    }

    fn take_from_memory(
        &self,
        tail: &mut Tail,
        max_bytes: usize,
        per_line: usize,
    ) -> Option<Taken> {
        let first = tail.lines.front()?.line.cost();
        let room = self.budget.batch_room();
        if self.budget.must_wait(room, first) {
            self.budget.wait_for_room(self);
            return None;
        }
        let mut lines = Vec::new();
        let (mut bytes, mut cost, mut unjournaled) = (0usize, 0usize, Vec::new());
        let on_disk = self.is_on_disk();
        let from = tail.taken;
        let mut advance = tail.taken;
        let mut pieces = tail.taken_pieces;
        while let Some(front) = tail.lines.front() {
            let more = !lines.is_empty()
                && (bytes + front.line.bytes.len() + per_line > max_bytes
                    || cost + front.line.cost() > room);
            if more {
                break;
            }
            let held = tail.lines.pop_front().expect("front exists");
            bytes += held.line.bytes.len() + per_line;
            cost += held.line.cost();
            if !held.journaled && on_disk {
                unjournaled.push(lines.len() as u32);
            }
            let s = held.line.source as usize;
            tail.held[s] -= 1;
            if held.line.ack > advance[s] || !held.line.piece {
                pieces[s] = 0;
            }
            pieces[s] += u32::from(held.line.piece);
            advance[s] = advance[s].max(held.line.ack);
            lines.push(held.line);
        }
        tail.bytes -= cost;
        tail.taken = advance;
        tail.taken_pieces = pieces;
        tail.in_flight = true;
        self.budget.start_batch(cost);
        if tail.lines.capacity() > 1024 && tail.lines.len() < tail.lines.capacity() / 4 {
            // A burst is over: give its memory back.
            let keep = tail.lines.len() * 2;
            tail.lines.shrink_to(keep);
        }
        if tail.lines.is_empty() {
            // Lines that stay keep their original wait: they are due sooner.
            tail.pending_since = None;
        }
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        let n = lines.len() as i64;
        self.counters.memory_lines.fetch_sub(n, Ordering::Relaxed);
        self.counters
            .in_flight_lines
            .fetch_add(n, Ordering::Relaxed);
        Some(Taken {
            lines,
            from,
            advance,
            cost,
            unjournaled,
        })
    }

    /// Finishes taken lines: delivered or given up, they are done and the
    /// cursor moves past them.
    pub fn ack(&self, taken: Taken, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.ack_counted(taken, 0, DropReason::Rejected),
            Outcome::Dropped(reason) => {
                let n = taken.lines.len() as u64;
                self.ack_counted(taken, n, reason)
            }
        }
    }

    /// Finishes taken lines of which `dropped` were given up for `reason`
    /// and the others delivered (Loki may store some lines of a push it
    /// answers with an error).
    pub fn ack_counted(&self, taken: Taken, dropped: u64, reason: DropReason) {
        let mut drops = Drops::default();
        drops.add(reason, dropped.min(taken.lines.len() as u64));
        self.ack_dropped(taken, &drops);
    }

    /// Finishes taken lines of which `drops` were given up (by reason) and
    /// the others delivered (a batch pushed in parts).
    pub fn ack_dropped(&self, taken: Taken, drops: &Drops) {
        let n = taken.lines.len() as u64;
        ContainerCounters::add(&self.counters.sent, n.saturating_sub(drops.total()));
        self.counters.drop_all(drops);
        self.finish(taken, true, [Seq::MAX; 2]);
    }

    /// Whether [`Journal::ack_front`] may finish lines at the front of
    /// `taken`: each of them is on disk, or none ever is (a journal in
    /// memory only keeps no positions, see [`Taken::unjournaled`]).
    pub fn may_ack_front(&self, taken: &Taken) -> bool {
        taken.unjournaled.is_empty()
    }

    /// Finishes the first `n` lines of `taken`, which stays out for
    /// delivery: `drops` of them were given up (by reason), the others
    /// delivered. The cursor moves past them (so a restart does not send
    /// them again) and their memory is let go. Not where some lines of a
    /// journal on disk are only in memory (see [`Journal::may_ack_front`]):
    /// those have to be told apart if the batch is given back at a
    /// shutdown, so they finish with the whole batch. False (and nothing
    /// done) then.
    pub fn ack_front(&self, taken: &mut Taken, n: usize, drops: &Drops) -> bool {
        let n = n.min(taken.lines.len());
        if n == 0 || !self.may_ack_front(taken) {
            return false;
        }
        let mut advance = taken.from;
        let mut cost = 0;
        for line in taken.lines.drain(..n) {
            let s = line.source as usize;
            advance[s] = advance[s].max(line.ack);
            cost += line.cost();
        }
        taken.from = advance;
        taken.cost -= cost;
        ContainerCounters::add(
            &self.counters.sent,
            (n as u64).saturating_sub(drops.total()),
        );
        self.counters.drop_all(drops);
        self.counters
            .in_flight_lines
            .fetch_sub(n as i64, Ordering::Relaxed);
        self.budget.sub(cost);
        self.budget.end_batch(cost);
        let mut out = [false; 2];
        for line in &taken.lines {
            out[line.source as usize] = true;
        }
        let mut tail = self.tail();
        for s in 0..2 {
            if out[s] {
                // Not past the lines still out.
                tail.cursor[s] = tail.cursor[s].max(advance[s]);
                continue;
            }
            // A source with nothing left in the batch moves as it would
            // when the batch ends (a quiet one on to what its reader
            // emitted), so retention does not keep what Loki has.
            move_source_cursor(&mut tail, s, taken.advance[s], Seq::MAX);
        }
        let oldest = tail.lines.front().map_or(0, |h| h.line.timestamp_ns);
        self.counters
            .oldest_pending_ns
            .store(oldest, Ordering::Relaxed);
        self.cursor_dirty.store(true, Ordering::Release);
        drop(tail);
        if self.is_on_disk() {
            self.pool.maintain(self);
        }
        true
    }

    /// Finishes a batch the pipeline stages made: `taken` (the lines it
    /// took from the journal, if it took any) is done, and the counts say
    /// what became of the lines; the stages may hold some still, which
    /// `settled.hold` keeps the cursor before, so that a restart reads
    /// them again.
    pub fn settle(&self, taken: Option<Taken>, settled: Settled<'_>) {
        ContainerCounters::add(&self.counters.sent, settled.sent);
        self.counters.drop_all(&settled.dropped);
        for (reason, n) in settled.filtered {
            self.counters.filter_lines(reason, *n);
        }
        match taken {
            Some(taken) => self.finish(taken, true, settled.hold),
            None => {
                let mut tail = self.tail();
                let advance = tail.taken;
                self.move_cursor(&mut tail, advance, settled.hold);
                drop(tail);
                if self.is_on_disk() {
                    self.pool.maintain(self);
                }
                self.wake();
            }
        }
    }

    /// Moves the cursor to `advance`, but not past `hold`; a source with
    /// nothing left waiting moves on to what its readers emitted.
    fn move_cursor(&self, tail: &mut Tail, advance: [Seq; 2], hold: [Seq; 2]) {
        for s in 0..2 {
            move_source_cursor(tail, s, advance[s], hold[s]);
        }
        self.cursor_dirty.store(true, Ordering::Release);
    }

    /// Gives up on a batch without an outcome (the plugin is stopping).
    /// What parts of it settled (`settled`: sent, dropped, and filtered by
    /// the stages) is counted so, and `given_back` lines have no outcome:
    /// lost (counted `shutdown`) if only in memory, else left on disk for
    /// the next run (pending). `settled_lines` says which lines of `taken`
    /// (by position) settled, where the caller knows: then the lines given
    /// back that were only in memory when they were taken are lost.
    /// Otherwise (the stages' entries, which do not map to lines one to
    /// one) as many as `taken` had only in memory, at most `given_back`.
    /// A line whose write fails after it was taken is not known here: it
    /// counts as pending, and the next run finds its record missing. The
    /// cursor does not move.
    pub fn abandon(
        &self,
        taken: Option<Taken>,
        settled: Settled<'_>,
        given_back: u64,
        settled_lines: Option<&[std::ops::Range<usize>]>,
    ) {
        ContainerCounters::add(&self.counters.sent, settled.sent);
        self.counters.drop_all(&settled.dropped);
        for (reason, n) in settled.filtered {
            self.counters.filter_lines(reason, *n);
        }
        let lost = match (&taken, settled_lines) {
            _ if !self.is_on_disk() => given_back,
            (Some(taken), Some(settled)) => (taken.unjournaled.iter())
                .filter(|&&at| !settled.iter().any(|r| r.contains(&(at as usize))))
                .count() as u64,
            (Some(taken), None) => taken.unjournaled.len() as u64,
            (None, _) => 0,
        }
        .min(given_back);
        self.counters.drop_lines(DropReason::Shutdown, lost);
        self.counters
            .backlog_lines
            .fetch_add((given_back - lost) as i64, Ordering::Relaxed);
        if let Some(taken) = taken {
            self.finish(taken, false, settled.hold);
        }
    }

    fn finish(&self, taken: Taken, done: bool, hold: [Seq; 2]) {
        self.budget.sub(taken.cost);
        self.budget.end_batch(taken.cost);
        self.counters
            .in_flight_lines
            .fetch_sub(taken.lines.len() as i64, Ordering::Relaxed);
        let mut tail = self.tail();
        tail.in_flight = false;
        if done {
            self.move_cursor(&mut tail, taken.advance, hold);
        }
        let oldest = tail.lines.front().map_or(0, |h| h.line.timestamp_ns);
        self.counters
            .oldest_pending_ns
            .store(oldest, Ordering::Relaxed);
        drop(tail);
        if done && self.is_on_disk() {
            self.pool.maintain(self);
        }
        self.wake();
    }

    /// Reads lines back from disk for delivery (on a blocking thread). A
    /// segment that cannot be read is skipped (with a warning): its lines
    /// are counted as lost, never waited for.
    fn read_back(&self, plan: &DiskPlan) -> io::Result<ReadBack> {
        let dir = self
            .dir
            .as_ref()
            .expect("read_back needs a journal on disk");
        let segments = self.segments();
        let start = (0..2)
            .filter(|&s| plan.sources[s])
            .map(|s| plan.from[s])
            .min()
            .expect("some source reads from disk");
        let mut assembler = Assembler::replaying(self.config.max_line);
        let mut out = Vec::new();
        let mut read = Collected::new(plan);
        let mut done = [!plan.sources[0], !plan.sources[1]];
        let mut next_seq = start;
        let mut hint = None;
        let mut stopped_early = false;
        // Records of an earlier run that should be there and are not
        // (this run's are accounted for when they leave memory).
        let mut gaps = Gaps::new(plan, start);
        let mut unreadable = false;
        // The segment holding `start` (or the first one after it, if it went).
        let first = segments
            .iter()
            .rposition(|s| s.first_seq <= start)
            .unwrap_or(0);
        'segments: for segment in segments.iter().skip(first) {
            let file = SegmentFile {
                first_seq: segment.first_seq,
                path: segment.path(dir),
                compressed: segment.compressed,
            };
            let resume = plan.hint.filter(|h| {
                h.segment == segment.first_seq && h.seq <= start && !segment.compressed
            });
            let opened = match resume {
                Some(h) => SegmentReader::open_at(&file.path, h.offset),
                None => SegmentReader::open(&file),
            }
            .or_else(|err| {
                // Compressed meanwhile (it was delivered after all): read that.
                let twin = SegmentFile {
                    path: file.path.with_extension("sz"),
                    compressed: true,
                    ..file.clone()
                };
                if file.compressed || err.kind() != io::ErrorKind::NotFound {
                    Err(err)
                } else {
                    SegmentReader::open(&twin)
                }
            });
            let mut reader = match opened {
                Ok(reader) => reader,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    self.warn_unreadable(&file.path, &err);
                    unreadable = true;
                    continue;
                }
            };
            loop {
                // Where this record can be found again (its chunk's start).
                let at = reader.offset();
                let record = match reader.next() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(err) => {
                        // What is after the damage in this segment is lost.
                        self.warn_unreadable(&file.path, &err);
                        unreadable = true;
                        break;
                    }
                };
                if record.seq < start {
                    continue;
                }
                gaps.found(record.seq);
                next_seq = record.seq + 1;
                let Ok(entry) = LogEntry::decode(record.payload) else {
                    gaps.undecodable(record.seq);
                    continue;
                };
                let Some(source) = Source::parse(&entry.source) else {
                    gaps.undecodable(record.seq);
                    continue;
                };
                let s = source as usize;
                if done[s] || record.seq < plan.from[s] {
                    continue;
                }
                let whole = !assembler.is_joining(source);
                // Where the lines that come out start: the line joined so
                // far, then this record.
                let mut starts = assembler.joining_since();
                let _ = assembler.push(entry, record.seq, &mut out);
                let joining = Source::ALL
                    .iter()
                    .any(|&src| !done[src as usize] && assembler.is_joining(src));
                if let [line] = out.as_slice()
                    && whole
                    && !joining
                    && !read.lines.is_empty()
                    && line.ack <= plan.upto[s]
                    && !line.is_blank()
                    && read.bytes + line.bytes.len() + plan.per_line > plan.max_bytes
                {
                    // A line of this record alone that would take the
                    // batch past its size: left for the next read, which
                    // starts at this record (a batch one line over its
                    // size would be cut, and that line pushed alone).
                    out.clear();
                    if !segment.compressed {
                        hint = Some(record_pos::Pos {
                            segment: segment.first_seq,
                            offset: at,
                            seq: record.seq,
                        });
                    }
                    next_seq = record.seq;
                    stopped_early = true;
                    break 'segments;
                }
                for line in out.drain(..) {
                    let s = line.source as usize;
                    let start = match line.piece {
                        true => line.ack,
                        false => starts[s].take().unwrap_or(record.seq),
                    };
                    if done[s] {
                        continue;
                    }
                    let earlier = plan.read_by_earlier_run(&line, record.seq);
                    if !read.add(line, start, earlier, plan.upto[s]) {
                        done[s] = true; // from here on, this source is in memory
                    }
                }
                let joining = Source::ALL
                    .iter()
                    .any(|&src| !done[src as usize] && assembler.is_joining(src));
                if done.iter().all(|d| *d) || (read.bytes >= plan.max_bytes && !joining) {
                    if !segment.compressed {
                        hint = Some(record_pos::Pos {
                            segment: segment.first_seq,
                            offset: reader.offset(),
                            seq: next_seq,
                        });
                    }
                    stopped_early = true;
                    break 'segments;
                }
            }
        }
        let reached_end = hint.is_none();
        if reached_end {
            // The end of what is on disk. A line still joined here whose
            // records are all written (or failed) ends here: what an earlier
            // run wrote when it stopped, a FIFO that ended inside a line, a
            // line whose end could not be written. It is delivered as it is
            // (the rest, if any, counted when delivery has read past it).
            let mut starts = assembler.joining_since();
            for source in Source::ALL {
                let s = source as usize;
                if !done[s] && plan.whole[s] {
                    assembler.flush_source(source, &mut out);
                }
            }
            for line in out.drain(..) {
                // Beyond `upto`: a line the FIFO reader took over.
                let s = line.source as usize;
                let start = starts[s].take().unwrap_or(next_seq);
                let earlier = plan.read_by_earlier_run(&line, next_seq);
                if !done[s] && !read.add(line, start, earlier, plan.upto[s]) {
                    done[s] = true;
                }
            }
        }
        for (s, joining) in assembler.joining_since().into_iter().enumerate() {
            // A line whose end was not written yet: it is read again,
            // whole, once it is (delivery does not move inside it).
            read.leave_open(s);
            if let Some(start) = joining.filter(|_| !done[s]) {
                read.cut_at(s, start, plan.upto[s]);
            }
        }
        if !stopped_early {
            // Up to the end of what the earlier run wrote.
            gaps.end_at(
                plan.session_start
                    .min(plan.upto.into_iter().max().unwrap_or(0)),
            );
        }
        let mut advance = plan.from;
        for s in 0..2 {
            if !plan.sources[s] {
                continue;
            }
            advance[s] = if done[s] || reached_end {
                plan.upto[s]
            } else {
                next_seq.min(plan.upto[s])
            };
            if let Some(first) = read.cut[s] {
                advance[s] = advance[s].min(first);
            }
            advance[s] = advance[s].max(plan.from[s]);
        }
        Ok(ReadBack {
            advance,
            hint,
            recovered: read.recovered,
            corrupt: gaps.missing,
            gaps_counted_to: gaps.counted_to(),
            fresh: read.fresh,
            unreadable,
            cut: read.cut != [None; 2],
            lines: read.lines,
        })
    }

    /// Accounts for a read back from disk (under the tail lock): records of
    /// an earlier run found missing are counted as lost, and a source whose
    /// delivery read everything that left memory counts what was not found.
    fn account_read_back(&self, tail: &mut Tail, read: &ReadBack) {
        if read.corrupt > 0 {
            ContainerCounters::add(&self.counters.recovered, read.corrupt);
            self.counters
                .drop_lines(DropReason::JournalCorrupt, read.corrupt);
        }
        if read.corrupt > 0 && tail.eviction_warning.allow(Instant::now()).is_some() {
            tracing::warn!(
                container = %self.name,
                lines = read.corrupt,
                dropped_total = self.counters.dropped(DropReason::JournalCorrupt),
                "journal: lines an earlier run wrote are missing or damaged on disk; counted as dropped (journal_corrupt)"
            );
        }
        if let Some(to) = read.gaps_counted_to {
            tail.gaps_counted_to = tail.gaps_counted_to.max(to);
        }
        if read.unreadable {
            tail.lost_reason.get_or_insert(DropReason::JournalCorrupt);
        }
        for s in 0..2 {
            tail.backlog[s] = tail.backlog[s].saturating_sub(read.fresh[s]);
        }
        self.reconcile_backlog(tail);
    }

    /// For each source whose delivery has taken everything up to where
    /// lines left memory: the lines that left memory and were not read
    /// back were not on disk any more (a disk bound deleted their segment,
    /// or it could not be read). They are counted as dropped.
    fn reconcile_backlog(&self, tail: &mut Tail) {
        for s in 0..2 {
            // A line still being read whose pieces wait on disk counts in
            // the backlog, beyond `evicted_to` until it ends.
            let following = tail.unfinished_on_disk[s].is_some();
            if tail.taken[s] < tail.evicted_to[s] || tail.backlog[s] == 0 || following {
                continue;
            }
            let lost = std::mem::take(&mut tail.backlog[s]);
            let reason = tail.lost_reason.unwrap_or(DropReason::JournalCorrupt);
            self.counters
                .backlog_lines
                .fetch_sub(lost as i64, Ordering::Relaxed);
            self.counters.drop_lines(reason, lost);
            if reason == DropReason::MemoryFull {
                // Their write failed: out of memory and not in the journal.
                ContainerCounters::add(&self.counters.journal_misses, lost);
            }
            if tail.eviction_warning.allow(Instant::now()).is_some() {
                tracing::warn!(
                    container = %self.name,
                    lines = lost,
                    reason = reason.as_str(),
                    "lines that had left memory for the journal were no longer on disk when delivery came to them; counted as dropped"
                );
            }
        }
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

/// See [`Journal::resume_point`].
#[derive(Debug, Default)]
pub struct ResumePoint {
    /// Hashes of the payloads of the newest records.
    pub recent: std::collections::HashSet<u64>,
    /// The frames of lines an earlier run was still joining, oldest first,
    /// for the FIFO reader's assembler.
    pub unfinished: Vec<(Seq, LogEntry)>,
}

/// Bytes of an unfinished line that a re-attached reader takes over; a
/// longer one is delivered as the earlier run left it, and its rest apart.
const MAX_TAKEN_OVER: usize = 32 * 1024 * 1024;

fn ordinal(entry: &LogEntry) -> Option<i32> {
    entry.partial_log_metadata.as_ref().map(|m| m.ordinal)
}

/// Whether the backward walk of [`Journal::resume_point`] is done with a
/// source: no unfinished line, or its first piece found.
fn group_done(frames: &[(Seq, LogEntry)]) -> bool {
    frames.last().is_none_or(|(_, e)| ordinal(e) == Some(1))
}

/// What a read back from disk should cover.
#[derive(Debug, Clone)]
struct DiskPlan {
    from: [Seq; 2],
    upto: [Seq; 2],
    sources: [bool; 2],
    hint: Option<record_pos::Pos>,
    session_start: Seq,
    max_bytes: usize,
    /// Bytes each line counts besides its own (see [`Journal::take_with`]).
    per_line: usize,
    /// Records of an earlier run before this were looked for already.
    gaps_from: Seq,
    /// Per source: the writer is done with every record before `upto`
    /// (written, or its write failed). A line that starts before `upto`
    /// ends there, so one that is not whole on disk never will be: what
    /// there is of it is delivered. Else it is read again once the writer
    /// has written more.
    whole: [bool; 2],
    /// Per source: pieces of the line that starts at `from` that were
    /// taken from memory already (see `Tail::taken_pieces`): not again.
    skip_pieces: [u32; 2],
    /// Per source: the first record of a line an earlier run was joining
    /// and this run's reader took over (see `Tail::taken_over`).
    taken_over: [Option<Seq>; 2],
}

impl DiskPlan {
    /// Whether an earlier run read `line` (cut when record `at` was
    /// joined): a whole line that ends before this run's first record,
    /// except the one this run's reader took over and ended; or a piece
    /// cut at a record before it. A piece is acknowledged at its line's
    /// first record, and this run's reader cuts the rest of a line it took
    /// over: those are its own.
    fn read_by_earlier_run(&self, line: &Line, at: Seq) -> bool {
        match line.piece {
            true => at < self.session_start,
            false => {
                let taken_over = self.taken_over[line.source as usize];
                line.is_before(self.session_start) && taken_over.is_none_or(|f| line.ack <= f)
            }
        }
    }
}

struct ReadBack {
    lines: Vec<Line>,
    advance: [Seq; 2],
    hint: Option<record_pos::Pos>,
    recovered: u64,
    /// Records of an earlier run that were missing or undecodable.
    corrupt: u64,
    /// How far records of an earlier run were looked for.
    gaps_counted_to: Option<Seq>,
    /// Per source, lines read that this run had received.
    fresh: [u64; 2],
    /// A segment could not be read.
    unreadable: bool,
    /// A long line was left for a later read: its end was not on disk yet.
    cut: bool,
}

/// The lines a read back collects. A long line counts only once it ends
/// within the read (at or before `upto`): the pieces of a line whose end
/// is not on disk yet, or is beyond `upto`, are left, and the line is read
/// again, whole, from its first record. Were they delivered, the next read
/// would start inside the line and skip its end as belonging to a line
/// already delivered.
struct Collected {
    lines: Vec<Line>,
    /// Bytes of `lines`, each line counting `per_line` more.
    bytes: usize,
    per_line: usize,
    /// Lines an earlier run received (see `ReadBack::recovered`).
    recovered: u64,
    /// Per source, lines this run received (see `ReadBack::fresh`).
    fresh: [u64; 2],
    /// Per source: a line whose pieces were read and whose end was not yet.
    open: [Option<OpenLine>; 2],
    /// Per source: the first record of a line left for a later read.
    cut: [Option<Seq>; 2],
    /// Per source: where delivery stands, and how many pieces of the line
    /// that starts there it took from memory already (see `DiskPlan`).
    from: [Seq; 2],
    skip_pieces: [u32; 2],
}

/// See [`Collected::open`].
struct OpenLine {
    first: Seq,
    /// Where its pieces are in [`Collected::lines`], each with whether an
    /// earlier run received it.
    pieces: Vec<(usize, bool)>,
}

impl Collected {
    fn new(plan: &DiskPlan) -> Collected {
        Collected {
            lines: Vec::new(),
            bytes: 0,
            per_line: plan.per_line,
            recovered: 0,
            fresh: [0; 2],
            open: [None, None],
            cut: [None; 2],
            from: plan.from,
            skip_pieces: plan.skip_pieces,
        }
    }

    /// Takes a line read back; `earlier`: an earlier run received it.
    /// False when the line is not before `upto`, where lines of its source
    /// are in memory: it, and the rest of its source, are not taken.
    /// `start`: the line's first record. A line that starts before `upto`
    /// and ends after it (`upto` is where the writer got) is read again
    /// from its start once it is written.
    fn add(&mut self, line: Line, start: Seq, earlier: bool, upto: Seq) -> bool {
        let s = line.source as usize;
        if !line.is_before(upto) {
            self.leave_open(s);
            self.cut_at(s, start, upto);
            return false;
        }
        let at = self.lines.len();
        // Blank lines are not delivered, nor pieces taken from memory
        // before the rest of their line left it.
        let skip = line.piece && line.ack == self.from[s] && self.skip_pieces[s] > 0;
        let keep = !line.is_blank() && !skip;
        if skip && !line.is_blank() {
            self.skip_pieces[s] -= 1;
        }
        if line.piece {
            let open = self.open[s].get_or_insert_with(|| OpenLine {
                first: line.ack,
                pieces: Vec::new(),
            });
            if keep {
                open.pieces.push((at, earlier));
            }
        } else {
            self.open[s] = None; // its last piece: the line is whole
        }
        if keep {
            self.bytes += line.bytes.len() + self.per_line;
            self.recovered += u64::from(earlier);
            self.fresh[s] += u64::from(!earlier);
            self.lines.push(line);
        }
        true
    }

    /// Delivery of source `s` stays before `start`, a line that did not
    /// end within the read, if it starts before `upto`.
    fn cut_at(&mut self, s: usize, start: Seq, upto: Seq) {
        if start < upto {
            self.cut_before(s, start);
        }
    }

    /// Delivery of source `s` stays at or before `first`.
    fn cut_before(&mut self, s: usize, first: Seq) {
        self.cut[s] = Some(self.cut[s].map_or(first, |cut| cut.min(first)));
    }

    /// Takes back the pieces of source `s`'s open line: it is read again
    /// from its first record.
    fn leave_open(&mut self, s: usize) {
        let Some(OpenLine { first, pieces }) = self.open[s].take() else {
            return;
        };
        self.cut_before(s, first);
        for &(at, earlier) in pieces.iter().rev() {
            let line = self.lines.remove(at);
            self.bytes -= line.bytes.len() + self.per_line;
            self.recovered -= u64::from(earlier);
            self.fresh[s] -= u64::from(!earlier);
        }
        // The other source's pieces after those moved.
        if let Some(other) = &mut self.open[1 - s] {
            for (at, _) in other.pieces.iter_mut() {
                *at -= pieces.iter().filter(|(removed, _)| removed < at).count();
            }
        }
    }
}

/// Records an earlier run wrote that a read back expected and did not
/// find. Records are numbered without gaps within a run, except where the
/// disk could not keep up (the lines were then in memory, and are lost if
/// that run did not deliver them before it ended): every number the read
/// passes without a record is a line lost. Only counted where no read
/// looked before (`gaps_from`), and only from where the read started.
struct Gaps {
    /// The next record number expected; `None`: not counting.
    expect: Option<Seq>,
    from: Seq,
    until: Seq,
    missing: u64,
}

impl Gaps {
    fn new(plan: &DiskPlan, start: Seq) -> Gaps {
        Gaps {
            // A read that starts past what was looked at would leave a
            // stretch unlooked at: it counts nothing.
            expect: (start <= plan.gaps_from).then_some(start),
            from: plan.gaps_from,
            until: plan.session_start,
            missing: 0,
        }
    }

    /// The next record found is `seq` (or the end of the read).
    fn found(&mut self, seq: Seq) {
        let Some(expect) = self.expect else { return };
        let (lo, hi) = (expect.max(self.from), seq.min(self.until));
        if hi > lo {
            self.missing += hi - lo;
        }
        self.expect = Some(expect.max(seq + 1));
    }

    /// The read went through everything before `end`.
    fn end_at(&mut self, end: Seq) {
        let Some(expect) = self.expect else { return };
        let (lo, hi) = (expect.max(self.from), end.min(self.until));
        if hi > lo {
            self.missing += hi - lo;
        }
        self.expect = Some(expect.max(end));
    }

    /// The record `seq` was there but cannot be decoded.
    fn undecodable(&mut self, seq: Seq) {
        if self.expect.is_some() && seq >= self.from && seq < self.until {
            self.missing += 1;
        }
    }

    fn counted_to(&self) -> Option<Seq> {
        self.expect
    }
}

/// A FIFO reader's turn at a journal: frames get sequence numbers in order,
/// their records go to the writer, their lines to memory.
pub struct Intake<'a> {
    journal: &'a Journal,
    next: MutexGuard<'a, Seq>,
    records: Vec<u8>,
    chunk: record::ChunkBuilder,
    first: Option<Seq>,
    /// The frames recorded, in order, so that their lines can point into
    /// `records` (see [`point_into_records`]).
    recorded: Vec<Recorded>,
}

/// A frame in an intake's records: where its payload was read, and where
/// its bytes went.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    seq: Seq,
    /// The payload's address and length where it was read: only compared
    /// with a line's address, never read through.
    payload: (usize, usize),
    verbatim: record::Verbatim,
}

impl Intake<'_> {
    /// Sizes the buffer of records for about `bytes` of frames to come
    /// (one allocation per FIFO read, not a growing one). What is left of
    /// it is given back at [`Intake::commit`]: the lines keep the buffer.
    pub fn reserve(&mut self, bytes: usize) {
        if self.journal.writes_to_disk() {
            self.records.reserve(bytes + record::ENVELOPE);
            // One entry per frame: a frame of a 100-byte line takes some 130.
            self.recorded.reserve(bytes / 128);
        }
    }

    /// Numbers one frame (its protobuf payload) and records it for the
    /// journal, in the chunk of this intake's frames.
    pub fn record(&mut self, payload: &[u8]) -> Seq {
        let seq = *self.next;
        *self.next += 1;
        self.first.get_or_insert(seq);
        if self.journal.writes_to_disk() {
            let verbatim = self.chunk.push(seq, payload, &mut self.records);
            self.recorded.push(Recorded {
                seq,
                payload: (payload.as_ptr() as usize, payload.len()),
                verbatim,
            });
        }
        seq
    }

    /// Hands the records to the writer and the lines to memory. `joining`
    /// is, per source, the first record of a line the reader is still
    /// joining. With `ack`, the writer reports when the records are on disk
    /// (up to FIFO offset `fifo_end`). Returns whether the records were
    /// queued for the writer (false: the journal is off or the writer is
    /// too far behind).
    pub fn commit(
        mut self,
        lines: Vec<Line>,
        joining: [Option<Seq>; 2],
        ack: Option<(&Arc<IntakeAck>, u64)>,
    ) -> bool {
        self.chunk.finish(&mut self.records);
        let journal = self.journal;
        let mut lines: Vec<Line> = lines.into_iter().filter(|l| !l.is_blank()).collect();
        let next = *self.next;
        let emitted = joining.map(|j| j.unwrap_or(next));
        let to_disk = self.first.filter(|_| journal.writes_to_disk());
        // The lines keep the buffer as long as they are in memory: not its
        // spare room too (records are some 15% smaller than the frames read,
        // and a frame of its own record 16 bytes larger). Shrinking in place
        // moves nothing.
        if self.records.capacity() - self.records.len() > self.records.len() / 16 {
            self.records.shrink_to_fit();
        }
        let records = Bytes::from(std::mem::take(&mut self.records));
        if to_disk.is_some() {
            point_into_records(&mut lines, &self.recorded, &records);
        }
        // The lines are held before their records go to the writer: were it
        // the other way round, a write that failed at once would find no
        // line to mark as not on disk, and they would leave memory as if
        // they were.
        let count = lines.len() as u64;
        // An intake with no records brings the rest of a line the FIFO
        // ended inside: its records came with earlier intakes.
        let rest_of_line = self.first.is_none() && journal.writes_to_disk();
        if to_disk.is_some() {
            // Lines held may leave memory at once, before their records are
            // queued: delivery must not take the writer for done with them.
            journal
                .queue
                .lock()
                .expect("journal lock poisoned")
                .incoming += 1;
        }
        journal.hold(lines, to_disk.is_some() || rest_of_line, emitted, next);
        let queued = match to_disk {
            Some(first) => {
                let chunk = writer::Chunk {
                    first_seq: first,
                    end_seq: next,
                    records,
                    ack: ack.map(|(a, end)| (a.clone(), end)),
                };
                let queued = journal.pool.submit(journal, chunk);
                journal
                    .queue
                    .lock()
                    .expect("journal lock poisoned")
                    .incoming -= 1;
                if !queued {
                    journal.mark_unjournaled(first, next);
                    journal.wake();
                }
                queued
            }
            None if rest_of_line => false,
            None => {
                if journal.is_on_disk() || journal.misses_disk {
                    ContainerCounters::add(&journal.counters.journal_misses, count);
                }
                false
            }
        };
        drop(self.next);
        queued
    }
}

/// Makes the lines of frames just recorded point into their records, not
/// into the buffers the frames were read into: a line not yet on disk is
/// then held once, not twice (as a line, and as a record waiting for the
/// writer), and the read buffer goes once its frames are decoded.
///
/// A line's frame is found by its `ack`: the frame's `seq + 1` for a whole
/// line, the frame's `seq` for a piece cut from a long one. A line joined
/// from partial frames is a copy and is in no frame: it stays as it is.
/// The addresses are only compared, and a line moves only where its bytes
/// are found unchanged: that check is what makes this safe (a payload
/// recorded from a buffer that is gone may share an address with a newer
/// one), not a mere precaution.
fn point_into_records(lines: &mut [Line], recorded: &[Recorded], records: &Bytes) {
    let Some(first) = recorded.first().map(|r| r.seq) else {
        return;
    };
    for line in lines.iter_mut() {
        let (at, len) = (line.bytes.as_ptr() as usize, line.bytes.len());
        let range = [line.ack.wrapping_sub(1), line.ack]
            .into_iter()
            .filter_map(|seq| {
                let frame = recorded.get(usize::try_from(seq.wrapping_sub(first)).ok()?)?;
                (frame.seq == seq).then_some(frame)
            })
            .find_map(|frame| {
                let (payload, payload_len) = frame.payload;
                frame
                    .verbatim
                    .in_records(at.checked_sub(payload)?, len, payload_len)
            });
        let Some(range) = range else { continue };
        if records.get(range.clone()) == Some(&line.bytes[..]) {
            line.bytes = records.slice(range);
        }
    }
}

/// All journals: where they live, the memory bound they share, the writer
/// and maintenance threads.
pub struct Store {
    /// Itself, for the journals (they make room under its disk bound).
    me: Weak<Store>,
    root: Option<PathBuf>,
    /// The free space journals leave on the root's filesystem.
    space: Arc<DiskSpace>,
    budget: Arc<MemoryBudget>,
    pool: Arc<writer::Pool>,
    open: Mutex<HashMap<String, Weak<Journal>>>,
    /// ReadLogs requests being served, bounded.
    readers: Arc<tokio::sync::Semaphore>,
    settings: StoreSettings,
    /// The counts of journals that closed (see [`Store::retired`]).
    retired: Arc<ContainerCounters>,
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
    fn dir_of(&self, id: &str) -> io::Result<Option<PathBuf>> {
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

/// Bytes as stored: the line and a newline, for `docker logs`.
pub(crate) fn with_newline(line: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(line);
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
