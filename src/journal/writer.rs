//! Writing journals, off the async runtime: a few writer threads append
//! queued records to segment files, and one maintenance thread writes
//! cursors and applies retention. A journal is handed to a writer thread as
//! a whole, so its records are appended in order.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::layout::{CURSOR_AHEAD_SLACK, Segment, parse_cursor, parse_cursor_end};
use super::record::{self, BackwardReader, ENVELOPE, SEGMENT_MAGIC, SegmentFile};
use super::{CURSOR_FILE, Journal, WRITER_QUEUE_LIMIT, retention};
use crate::line::Seq;
use crate::observe::ContainerCounters;

/// Writer threads shared by all journals.
const WRITERS: usize = 2;

/// How a FIFO reader learns that what it read is on disk: the FIFO byte
/// offset up to which every frame is written. Until then the reader leaves
/// those bytes in the FIFO, where they survive a crash of the plugin.
#[derive(Debug, Default)]
pub struct IntakeAck {
    pub persisted: AtomicU64,
    pub notify: Notify,
}

/// Records for the writer, and whom to tell when they are written.
pub(super) struct Chunk {
    pub first_seq: Seq,
    pub end_seq: Seq,
    /// Shared with the lines of these records while they are in memory.
    pub records: bytes::Bytes,
    pub ack: Option<(Arc<IntakeAck>, u64)>,
}

/// A journal's segments and the file being appended to.
#[derive(Default)]
pub(super) struct Files {
    pub segments: Vec<Segment>,
    current: Option<File>,
    /// The next record number after what was written to disk (a lower
    /// bound): kept in the cursor file, so records lost from the end of
    /// the journal are found and counted after a restart.
    pub end: Seq,
    /// Bytes this process appended to segments (their headers included),
    /// for the store's count of bytes on disk.
    appended: u64,
}

/// What opening a journal found that is not as the plugin left it; the
/// journal warns once with it (see [`super::Journal::warn_recovery`]).
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// Entries under segment names that are not read, and why.
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// Damage found in the last segment, repaired or worked around.
    pub notes: Vec<String>,
    /// Why the cursor file was not used (delivery starts again from the
    /// oldest segment; Loki keeps one copy of what it gets twice).
    pub cursor_problem: Option<String>,
    /// Records the cursor file says were written that are not on disk.
    pub missing_at_end: u64,
    /// Why the last segment cannot be appended to, if it cannot.
    pub unwritable: Option<io::Error>,
}

impl Recovery {
    pub fn is_clean(&self) -> bool {
        self.skipped.is_empty()
            && self.notes.is_empty()
            && self.cursor_problem.is_none()
            && self.missing_at_end == 0
    }
}

/// The most records the end of a journal can lose (a whole segment of
/// 1 GiB of the smallest frames): a cursor file that says more is damaged.
/// (A frame in a chunk record takes at least one byte.)
const MAX_MISSING_AT_END: u64 = record::MAX_SEGMENT_FILE;
/// A cursor file is a line of four numbers.
const MAX_CURSOR_FILE: u64 = 256;

impl Files {
    /// Opens a journal directory: lists its segments (only regular files,
    /// never through a link), repairs the last one (a torn tail, a damaged
    /// header) when `writable`, and reads the cursor. Returns the files,
    /// the next sequence number, the cursor (if one was written and is
    /// believable) and what was found damaged.
    pub fn open(
        dir: &Path,
        writable: bool,
    ) -> io::Result<(Files, Seq, Option<[Seq; 2]>, Recovery)> {
        let mut recovery = Recovery::default();
        if !crate::files::is_data_dir(dir) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the journal directory is not a directory (links are not followed)",
            ));
        }
        if writable {
            record::remove_interrupted_compressions(dir);
        }
        let scan = record::scan(dir);
        recovery.skipped = scan
            .skipped
            .iter()
            .map(|(s, why)| (s.path.clone(), *why))
            .collect();
        let mut found: Vec<SegmentFile> = Vec::with_capacity(scan.segments.len());
        let mut segments: Vec<Segment> = Vec::with_capacity(scan.segments.len());
        for file in scan.segments {
            // The entry itself (a link was left out by the scan).
            let Ok(meta) = fs::symlink_metadata(&file.path) else {
                continue;
            };
            segments.push(Segment {
                first_seq: file.first_seq,
                end_seq: None,
                bytes: meta.len(),
                compressed: file.compressed,
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
            found.push(file);
        }
        let mut next_seq = 0;
        let mut current = None;
        if let Some(last) = segments.last_mut() {
            let file = found.last().expect("one file per segment");
            if last.compressed {
                // Compression happens only to closed segments, and closing
                // one creates the next: this one was completed before a crash.
                next_seq = match last_seq_compressed(file) {
                    Ok(seq) => seq.map_or(last.first_seq, |s| s + 1),
                    Err(err) => {
                        recovery.notes.push(format!(
                            "the last segment {} cannot be read ({err})",
                            file.path.display()
                        ));
                        last.first_seq + 1
                    }
                };
            } else {
                let path = &file.path;
                let opened = if writable {
                    crate::files::open_data_file_for_append(path)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::ReadOnlyFilesystem,
                        "read only",
                    ))
                };
                match opened {
                    Ok(mut handle) => {
                        let end = repair_last(path, &mut handle, last.bytes, &mut recovery)?;
                        last.bytes = end;
                        next_seq = last_seq_raw(&handle, end)?.map_or(last.first_seq, |s| s + 1);
                        current = Some(handle);
                    }
                    Err(err) => {
                        if writable {
                            recovery.unwritable = Some(err);
                        }
                        // Read what is there, change nothing.
                        match crate::files::open_data_file(path) {
                            Ok(mut handle) => {
                                let end = record::valid_end_of(&mut handle)?;
                                next_seq =
                                    last_seq_raw(&handle, end)?.map_or(last.first_seq, |s| s + 1);
                            }
                            Err(err) => {
                                recovery.notes.push(format!(
                                    "the last segment {} cannot be read ({err})",
                                    path.display()
                                ));
                                next_seq = last.first_seq + 1;
                            }
                        }
                    }
                }
            }
        }
        let found_end = next_seq;
        let firsts: Vec<Seq> = segments.iter().map(|s| s.first_seq).collect();
        let last_index = segments.len().saturating_sub(1);
        for (i, segment) in segments.iter_mut().enumerate() {
            segment.end_seq = if i < last_index {
                Some(firsts[i + 1])
            } else if segment.compressed {
                Some(found_end)
            } else {
                None
            };
        }
        // Never reuse the number of anything under a segment's name.
        if let Some((skipped, _)) = scan.skipped.last() {
            next_seq = next_seq.max(skipped.first_seq + 1);
        }
        let (mut cursor, mut recorded_end) = (None, None);
        match crate::files::read_data_file(&dir.join(CURSOR_FILE), MAX_CURSOR_FILE) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match parse_cursor(&text) {
                    Some(c) => {
                        cursor = Some(c);
                        recorded_end = parse_cursor_end(&text);
                    }
                    None => recovery.cursor_problem = Some("it does not parse".into()),
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => recovery.cursor_problem = Some(err.to_string()),
        }
        if let Some(end) = recorded_end {
            if end > found_end.saturating_add(MAX_MISSING_AT_END) {
                recovery.cursor_problem = Some(format!(
                    "it says {end} records were written, far beyond the {found_end} found"
                ));
                cursor = None;
            } else if end > found_end {
                // Records delivered from memory before they were written
                // (and lost to a crash) are not missing for delivery.
                let delivered = cursor.map_or(0, |c| c[0].min(c[1]));
                recovery.missing_at_end = end.saturating_sub(found_end.max(delivered));
                next_seq = next_seq.max(end);
            }
        }
        // A cursor of a version that did not record the end may be a little
        // ahead of what a crash left on disk (lines go to Loki before their
        // records are written); far ahead, it is damaged.
        let slack = if recorded_end.is_none() {
            CURSOR_AHEAD_SLACK
        } else {
            0
        };
        if let Some(c) = cursor
            && c.iter().any(|&c| c > next_seq.saturating_add(slack))
        {
            recovery.cursor_problem = Some(format!(
                "it is beyond the end of the journal ({} and {}, for {next_seq} records)",
                c[0], c[1]
            ));
            cursor = None;
        }
        Ok((
            Files {
                segments,
                current,
                end: next_seq,
                appended: 0,
            },
            next_seq,
            cursor,
            recovery,
        ))
    }

    pub fn first_seq(&self) -> Option<Seq> {
        self.segments.first().map(|s| s.first_seq)
    }

    /// Forgets every segment (their directory is being deleted).
    pub fn forget_all(&mut self) {
        self.segments.clear();
        self.current = None;
    }

    /// Starts a new segment whose first record is `seq`. Nothing that is
    /// there already is written over (a symlink, a planted file): the
    /// records then go to memory only, and the next chunk tries again.
    fn start_segment(&mut self, dir: &Path, seq: Seq) -> io::Result<()> {
        self.current = None;
        crate::files::ensure_data_dir(dir)?;
        let path = SegmentFile::raw(dir, seq);
        let mut file = crate::files::create_data_file(&path)?;
        if let Err(err) = file.write_all(SEGMENT_MAGIC) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        if let Some(last) = self.segments.last_mut() {
            last.end_seq = Some(seq);
        }
        self.appended += SEGMENT_MAGIC.len() as u64;
        self.segments.push(Segment {
            first_seq: seq,
            end_seq: None,
            bytes: SEGMENT_MAGIC.len() as u64,
            compressed: false,
            modified: SystemTime::now(),
        });
        self.current = Some(file);
        Ok(())
    }
}

/// Makes the last raw segment appendable: its header rewritten if damaged,
/// a torn tail cut off. Returns where its valid records end.
fn repair_last(path: &Path, file: &mut File, len: u64, recovery: &mut Recovery) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let magic = SEGMENT_MAGIC.len() as u64;
    let damaged = len >= magic && !record::has_magic(file)?;
    if damaged {
        // Not through `file`: with O_APPEND, pwrite appends.
        crate::files::open_data_file_for_write(path)?.write_all_at(SEGMENT_MAGIC, 0)?;
        recovery.notes.push(format!(
            "the header of the last segment {} was damaged; rewritten",
            path.display()
        ));
    }
    let end = record::valid_end_of(file)?;
    if end < magic {
        if len > 0 {
            recovery.notes.push(format!(
                "the last segment {} held no journal data ({len} bytes); started again",
                path.display()
            ));
        }
        file.set_len(0)?;
        file.write_all(SEGMENT_MAGIC)?;
        return Ok(magic);
    }
    if end < len {
        if damaged || len - end > 2 * (crate::frame::MAX_FRAME + ENVELOPE) as u64 {
            // More than a write cut short by a crash.
            recovery.notes.push(format!(
                "{} bytes at the end of the last segment {} were not records; cut off",
                len - end,
                path.display()
            ));
        } else {
            tracing::warn!(
                segment = %path.display(),
                cut = len - end,
                "journal: cut a torn record (a write interrupted by a crash) off the end"
            );
        }
        file.set_len(end)?;
    }
    Ok(end.max(magic))
}

/// The last valid record of a raw segment whose records end at `end`.
fn last_seq_raw(file: &File, end: u64) -> io::Result<Option<Seq>> {
    let mut reader = BackwardReader::of(file.try_clone()?)?;
    reader.offset = end;
    if let Some(record) = reader.prev()? {
        return Ok(Some(record.seq));
    }
    // The walk back stopped at damage: read forward.
    let copy = file.try_clone()?;
    let mut reader = record::ForwardReader::from_file(copy)?;
    let mut last = None;
    while let Some(record) = reader.next()? {
        if reader.offset() > end {
            break;
        }
        last = Some(record.seq);
    }
    Ok(last)
}

fn last_seq_compressed(file: &SegmentFile) -> io::Result<Option<Seq>> {
    let mut reader = record::ForwardReader::open(file)?;
    let mut last = None;
    while let Some(record) = reader.next()? {
        last = Some(record.seq);
    }
    Ok(last)
}

/// The writer and maintenance threads, one set for the whole process.
pub(super) struct Pool {
    writes: Mutex<VecDeque<Arc<Journal>>>,
    writes_ready: Condvar,
    upkeep: Mutex<VecDeque<Arc<Journal>>>,
    upkeep_ready: Condvar,
}

impl Pool {
    pub fn start() -> Arc<Pool> {
        static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
        POOL.get_or_init(|| {
            let pool = Arc::new(Pool {
                writes: Mutex::new(VecDeque::new()),
                writes_ready: Condvar::new(),
                upkeep: Mutex::new(VecDeque::new()),
                upkeep_ready: Condvar::new(),
            });
            for i in 0..WRITERS {
                let pool = pool.clone();
                std::thread::Builder::new()
                    .name(format!("journal-writer-{i}"))
                    .spawn(move || pool.write_loop())
                    .expect("spawn a journal writer thread");
            }
            let upkeep = pool.clone();
            std::thread::Builder::new()
                .name("journal-upkeep".into())
                .spawn(move || upkeep.upkeep_loop())
                .expect("spawn the journal maintenance thread");
            pool
        })
        .clone()
    }

    /// Queues records for a journal's writer; false when its queue is full
    /// or the filesystem is within its free-space margin. The intake that
    /// brings them is no longer `incoming` either way (see `Intake::commit`).
    pub fn submit(&self, journal: &Journal, chunk: Chunk) -> bool {
        let schedule = {
            let mut queue = journal.queue.lock().expect("journal lock poisoned");
            queue.incoming -= 1;
            if queue.bytes + chunk.records.len() > WRITER_QUEUE_LIMIT {
                return false;
            }
            if !journal.space.take(chunk.records.len()) {
                drop(queue);
                journal.warn_disk(
                    "the journal's filesystem is down to its free-space margin (5%, at most 1 GiB): lines go to Loki from memory only until space is freed",
                    &io::Error::from(io::ErrorKind::StorageFull),
                );
                return false;
            }
            queue.bytes += chunk.records.len();
            queue.chunks.push_back(chunk);
            !std::mem::replace(&mut queue.scheduled, true)
        };
        if schedule && let Some(journal) = journal.me() {
            self.writes
                .lock()
                .expect("pool lock poisoned")
                .push_back(journal);
            self.writes_ready.notify_one();
        }
        true
    }

    /// Asks the maintenance thread to write the cursor and apply retention.
    pub fn maintain(&self, journal: &Journal) {
        let Some(journal) = journal.me() else { return };
        let mut upkeep = self.upkeep.lock().expect("pool lock poisoned");
        if !upkeep.iter().any(|j| Arc::ptr_eq(j, &journal)) {
            upkeep.push_back(journal);
            self.upkeep_ready.notify_one();
        }
    }

    fn write_loop(&self) {
        loop {
            let journal = {
                let mut writes = self.writes.lock().expect("pool lock poisoned");
                loop {
                    if let Some(journal) = writes.pop_front() {
                        break journal;
                    }
                    writes = self.writes_ready.wait(writes).expect("pool lock poisoned");
                }
            };
            journal.write_queued();
        }
    }

    fn upkeep_loop(&self) {
        loop {
            let journal = {
                let mut upkeep = self.upkeep.lock().expect("pool lock poisoned");
                loop {
                    if let Some(journal) = upkeep.pop_front() {
                        break journal;
                    }
                    upkeep = self.upkeep_ready.wait(upkeep).expect("pool lock poisoned");
                }
            };
            retention::persist_cursor(&journal);
            retention::apply(&journal);
        }
    }
}

impl Journal {
    /// This journal as an `Arc`, if it is still alive.
    pub(super) fn me(&self) -> Option<Arc<Journal>> {
        self.me.upgrade()
    }

    /// Writes what is queued (on a writer thread, or at shutdown).
    pub(super) fn write_queued(&self) {
        let _turn = self.writing.lock().expect("journal lock poisoned");
        loop {
            let chunks = {
                let mut queue = self.queue.lock().expect("journal lock poisoned");
                if queue.chunks.is_empty() {
                    queue.scheduled = false;
                    return;
                }
                queue.bytes = 0;
                std::mem::take(&mut queue.chunks)
            };
            let mut rotated = false;
            for chunk in chunks {
                // The bounds on disk hold at write time; a new segment's
                // header may come with the records.
                let room = (chunk.records.len() + SEGMENT_MAGIC.len()) as u64;
                let written = if self.make_room(room) {
                    let appended = || self.files.lock().expect("journal lock poisoned").appended;
                    let before = appended();
                    let written = self.write_chunk(&chunk);
                    self.room_used(room, appended() - before);
                    written
                } else {
                    Err(io::Error::other(
                        "no room under loki-journal-size or LOCAL_STORE_SIZE",
                    ))
                };
                match written {
                    Ok(r) => rotated |= r,
                    Err(err) => {
                        self.warn_disk(
                            "writing the journal failed; lines go to Loki from memory only",
                            &err,
                        );
                        self.mark_unjournaled(chunk.first_seq, chunk.end_seq);
                    }
                }
                let _ = self.written.send_replace(chunk.end_seq);
                if let Some((ack, fifo_end)) = &chunk.ack {
                    ack.persisted.fetch_max(*fifo_end, Ordering::AcqRel);
                    ack.notify.notify_one();
                }
            }
            if rotated {
                self.pool.maintain(self);
            }
            if self.has_disk_backlog() {
                self.wake();
            }
        }
    }

    /// Appends a chunk's records, starting a new segment when one is full.
    /// Returns whether a segment was closed.
    fn write_chunk(&self, chunk: &Chunk) -> io::Result<bool> {
        let dir = self.dir.as_ref().expect("writing needs a journal on disk");
        #[cfg(test)]
        {
            let hook = self
                .write_hook
                .lock()
                .expect("journal lock poisoned")
                .clone();
            if let Some(hook) = hook {
                hook(chunk.records.len())?;
            }
        }
        let limit = self.segment_limit();
        let mut files = self.files.lock().expect("journal lock poisoned");
        let mut rotated = false;
        let bytes = &chunk.records;
        let mut run_start = 0;
        let mut at = 0;
        while at < bytes.len() {
            let (seq, total) = record::peek(&bytes[at..]);
            let size = files.segments.last().map_or(0, |s| s.bytes) + (at - run_start) as u64;
            let full = size > SEGMENT_MAGIC.len() as u64 && size + total as u64 > limit;
            if files.current.is_none() || full {
                self.append(&mut files, &bytes[run_start..at])?;
                run_start = at;
                rotated |= files.current.is_some();
                files.start_segment(dir, seq)?;
            }
            at += total;
        }
        self.append(&mut files, &bytes[run_start..])?;
        files.end = files.end.max(chunk.end_seq);
        ContainerCounters::add(&self.counters.journal_bytes_written, bytes.len() as u64);
        Ok(rotated)
    }

    fn append(&self, files: &mut Files, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let file = files.current.as_mut().expect("a segment is open");
        let before = files.segments.last().map_or(0, |s| s.bytes);
        if let Err(err) = file.write_all(bytes) {
            // Leave no half-written record behind for readers to skip.
            let _ = file.set_len(before);
            return Err(err);
        }
        files.appended += bytes.len() as u64;
        let last = files.segments.last_mut().expect("a segment is open");
        last.bytes += bytes.len() as u64;
        last.modified = SystemTime::now();
        Ok(())
    }

    /// Lines whose records could not be written are only in memory now:
    /// those the intake of records `first..end` brought (a piece of a long
    /// line among them, whose `ack` is its line's first record).
    pub(super) fn mark_unjournaled(&self, first: Seq, end: Seq) {
        let mut tail = self.tail();
        let mut lines = 0;
        for held in tail.lines.iter_mut() {
            if held.records_end > first && held.records_end <= end && held.journaled {
                held.journaled = false;
                lines += 1;
            }
        }
        // Lines of the chunk that had left memory already are missing on
        // disk: delivery counts them when it comes to them.
        tail.lost_reason
            .get_or_insert(crate::observe::DropReason::MemoryFull);
        drop(tail);
        ContainerCounters::add(&self.counters.journal_misses, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::format_cursor;
    use super::*;

    /// A journal of `records` in one segment, and a cursor file of `cursor`.
    fn journal(records: u64, cursor: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = SEGMENT_MAGIC.to_vec();
        for seq in 0..records {
            record::encode(seq, b"payload", &mut bytes);
        }
        fs::write(SegmentFile::raw(dir.path(), 0), bytes).unwrap();
        fs::write(dir.path().join(CURSOR_FILE), cursor).unwrap();
        dir
    }

    #[test]
    fn opening_a_damaged_journal_finds_what_is_missing_and_what_to_distrust() {
        // The cursor recorded 10 records written; 6 are there.
        let dir = journal(6, "v1 2 2 10\n");
        let (_, next, cursor, recovery) = Files::open(dir.path(), true).unwrap();
        assert_eq!((next, cursor), (10, Some([2, 2])), "numbers are not reused");
        assert_eq!(recovery.missing_at_end, 4);
        // Delivered from memory before a crash lost their records: not missing.
        let dir = journal(6, "v1 10 10 10\n");
        let (_, _, cursor, recovery) = Files::open(dir.path(), true).unwrap();
        assert_eq!((cursor, recovery.missing_at_end), (Some([10, 10]), 0));
        assert!(recovery.is_clean());
        // A cursor of an older version a little ahead is a crash's; far
        // ahead, or not parsing, it is not used.
        let dir = journal(6, "v1 9 9\n");
        assert_eq!(Files::open(dir.path(), true).unwrap().2, Some([9, 9]));
        for text in ["v1 99999999 99999999\n", "garbage", ""] {
            let dir = journal(6, text);
            let (_, _, cursor, recovery) = Files::open(dir.path(), true).unwrap();
            assert_eq!(cursor, None, "{text:?}");
            assert!(recovery.cursor_problem.is_some(), "{text:?}");
        }
        // A zero-filled last segment: a header again, nothing read from it.
        let dir = journal(6, "v1 0 0 6\n");
        let path = SegmentFile::raw(dir.path(), 0);
        let len = fs::metadata(&path).unwrap().len();
        fs::write(&path, vec![0u8; len as usize]).unwrap();
        let (files, next, _, recovery) = Files::open(dir.path(), true).unwrap();
        assert_eq!((next, recovery.missing_at_end), (6, 6));
        assert_eq!(files.segments[0].bytes, SEGMENT_MAGIC.len() as u64);
        assert_eq!(&fs::read(&path).unwrap()[..], SEGMENT_MAGIC);
    }

    #[test]
    fn cursor_text_round_trips() {
        assert_eq!(parse_cursor(&format_cursor([3, 9], 12)), Some([3, 9]));
        assert_eq!(parse_cursor_end(&format_cursor([3, 9], 12)), Some(12));
        assert_eq!(parse_cursor_end("v1 3 9\n"), None);
        assert_eq!(parse_cursor("v2 1 2"), None);
        assert_eq!(parse_cursor("v1 1"), None);
        assert_eq!(parse_cursor(""), None);
    }
}
