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
    pub records: Vec<u8>,
    pub ack: Option<(Arc<IntakeAck>, u64)>,
}

/// A segment on disk.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub first_seq: Seq,
    /// First record of the next segment; `None` for the one being written.
    pub end_seq: Option<Seq>,
    pub bytes: u64,
    pub compressed: bool,
    /// Last write, for age-based retention.
    pub modified: SystemTime,
}

impl Segment {
    pub fn path(&self, dir: &Path) -> PathBuf {
        let raw = SegmentFile::raw(dir, self.first_seq);
        if self.compressed {
            raw.with_extension("sz")
        } else {
            raw
        }
    }
}

/// A journal's segments and the file being appended to.
#[derive(Default)]
pub(super) struct Files {
    pub segments: Vec<Segment>,
    current: Option<File>,
}

impl Files {
    /// Opens a journal directory: lists its segments, cuts a torn tail off
    /// the last one, and reads the cursor. Returns the files, the next
    /// sequence number and the cursor (if one was written).
    pub fn open(dir: &Path) -> io::Result<(Files, Seq, Option<[Seq; 2]>)> {
        record::remove_interrupted_compressions(dir);
        let found = record::list_segments(dir);
        let mut segments: Vec<Segment> = Vec::with_capacity(found.len());
        for (i, file) in found.iter().enumerate() {
            let meta = fs::metadata(&file.path)?;
            segments.push(Segment {
                first_seq: file.first_seq,
                end_seq: found.get(i + 1).map(|next| next.first_seq),
                bytes: meta.len(),
                compressed: file.compressed,
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        let mut next_seq = 0;
        let mut current = None;
        if let Some(last) = segments.last_mut() {
            if last.compressed {
                // Compression happens only to closed segments, and closing
                // one creates the next: this one was completed before a crash.
                next_seq =
                    last_seq_compressed(&found[found.len() - 1])?.map_or(last.first_seq, |s| s + 1);
                last.end_seq = Some(next_seq);
            } else {
                let path = SegmentFile::raw(dir, last.first_seq);
                let end = record::valid_end(&path)?;
                let mut file = fs::OpenOptions::new().read(true).append(true).open(&path)?;
                if end < SEGMENT_MAGIC.len() as u64 {
                    file.set_len(0)?;
                    file.write_all(SEGMENT_MAGIC)?;
                } else if end < last.bytes {
                    tracing::warn!(
                        segment = %path.display(),
                        cut = last.bytes - end,
                        "journal: cut a torn record (a write interrupted by a crash) off the end"
                    );
                    file.set_len(end)?;
                }
                last.bytes = end.max(SEGMENT_MAGIC.len() as u64);
                next_seq = BackwardReader::open(&path, last.bytes)?
                    .prev()?
                    .map_or(last.first_seq, |r| r.seq + 1);
                current = Some(file);
            }
        }
        let cursor = fs::read_to_string(dir.join(CURSOR_FILE))
            .ok()
            .and_then(|text| parse_cursor(&text));
        Ok((Files { segments, current }, next_seq, cursor))
    }

    pub fn first_seq(&self) -> Option<Seq> {
        self.segments.first().map(|s| s.first_seq)
    }

    /// Forgets every segment (their directory is being deleted).
    pub fn forget_all(&mut self) {
        self.segments.clear();
        self.current = None;
    }

    /// Starts a new segment whose first record is `seq`.
    fn start_segment(&mut self, dir: &Path, seq: Seq) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        if let Some(last) = self.segments.last_mut() {
            last.end_seq = Some(seq);
        }
        let path = SegmentFile::raw(dir, seq);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.write_all(SEGMENT_MAGIC)?;
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

fn last_seq_compressed(file: &SegmentFile) -> io::Result<Option<Seq>> {
    let mut reader = record::ForwardReader::open(file)?;
    let mut last = None;
    while let Some(record) = reader.next()? {
        last = Some(record.seq);
    }
    Ok(last)
}

pub(super) fn parse_cursor(text: &str) -> Option<[Seq; 2]> {
    let mut words = text.split_whitespace();
    if words.next()? != "v1" {
        return None;
    }
    Some([words.next()?.parse().ok()?, words.next()?.parse().ok()?])
}

pub(super) fn format_cursor(cursor: [Seq; 2]) -> String {
    format!("v1 {} {}\n", cursor[0], cursor[1])
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
    /// or the filesystem is within its free-space margin.
    pub fn submit(&self, journal: &Journal, chunk: Chunk) -> bool {
        let schedule = {
            let mut queue = journal.queue.lock().expect("journal lock poisoned");
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
                match self.write_chunk(&chunk) {
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
        let limit = self.config.segment_size();
        let mut files = self.files.lock().expect("journal lock poisoned");
        let mut rotated = false;
        let bytes = &chunk.records;
        let mut run_start = 0;
        let mut at = 0;
        while at < bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let total = len + ENVELOPE;
            let seq = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
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
        let last = files.segments.last_mut().expect("a segment is open");
        last.bytes += bytes.len() as u64;
        last.modified = SystemTime::now();
        Ok(())
    }

    /// Lines whose records could not be written are only in memory now.
    fn mark_unjournaled(&self, first: Seq, end: Seq) {
        let mut tail = self.tail();
        let mut lines = 0;
        for held in tail.lines.iter_mut() {
            if held.line.ack > first && held.line.ack <= end && held.journaled {
                held.journaled = false;
                lines += 1;
            }
        }
        drop(tail);
        ContainerCounters::add(&self.counters.journal_misses, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_round_trips() {
        assert_eq!(parse_cursor(&format_cursor([3, 9])), Some([3, 9]));
        assert_eq!(parse_cursor("v2 1 2"), None);
        assert_eq!(parse_cursor("v1 1"), None);
        assert_eq!(parse_cursor(""), None);
    }
}
