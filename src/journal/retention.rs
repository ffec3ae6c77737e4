//! What stays on disk, run on the maintenance thread (and by the store's
//! periodic collector):
//!
//! - the cursor is written after delivery moved it;
//! - a closed segment that is delivered and outside `docker logs` retention
//!   (`max-file` segments of `max-size`; none with `no-file`) is deleted; one
//!   that is delivered but still retained is compressed;
//! - past the container's disk bound (`loki-journal-size`) or the store's
//!   (`LOCAL_STORE_SIZE`), the oldest closed segments go first, delivered or
//!   not; lines that had not been delivered are counted as dropped.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use prost::Message;

use super::record::{ForwardReader, SegmentFile, list_segments};
use super::writer::{Segment, format_cursor, parse_cursor};
use super::{CURSOR_FILE, Journal, KEEP_MARKER, META_FILE, Store, write_atomically};
use crate::line::{Seq, Source};
use crate::observe::{ContainerCounters, DropReason};
use crate::proto::logdriver::LogEntry;
use crate::protocol::short_id;

/// Writes the cursor if delivery moved it since it was last written.
pub(super) fn persist_cursor(journal: &Journal) {
    let Some(dir) = &journal.dir else { return };
    if !journal.cursor_dirty.swap(false, Ordering::AcqRel) {
        return;
    }
    let cursor = journal.cursor();
    if let Err(err) = write_atomically(&dir.join(CURSOR_FILE), format_cursor(cursor).as_bytes()) {
        journal.cursor_dirty.store(true, Ordering::Release);
        journal.warn_disk("writing the delivery cursor failed", &err);
    }
}

/// Applies the container's retention and disk bound.
pub(super) fn apply(journal: &Journal) {
    let Some(dir) = &journal.dir else { return };
    let _one_pass = journal.retention.lock().expect("journal lock poisoned");
    let pinned = journal.oldest_pin();
    if journal.config().no_file && !journal.may_grow() && journal.is_drained() && pinned.is_none() {
        // Nothing is kept for docker logs, and everything was delivered.
        journal
            .files
            .lock()
            .expect("journal lock poisoned")
            .forget_all();
        if let Err(err) = fs::remove_dir_all(dir)
            && err.kind() != io::ErrorKind::NotFound
        {
            journal.warn_disk("deleting a delivered no-file journal failed", &err);
        }
        return;
    }
    let segments = journal.segments();
    if segments.len() < 2 {
        return;
    }
    let delivered_to = journal.cursor().into_iter().min().unwrap_or(0);
    let config = journal.config();
    let retained = match (config.no_file, config.max_size) {
        (true, _) => 0,
        (false, None) => usize::MAX,
        (false, Some(_)) => config.max_file as usize,
    };
    let closed = segments.len() - 1;
    for (i, segment) in segments[..closed].iter().enumerate() {
        let delivered = segment.end_seq.is_some_and(|end| end <= delivered_to);
        let being_read = pinned.is_some_and(|p| segment.end_seq.is_none_or(|end| end > p));
        if !delivered || being_read {
            continue;
        }
        let in_retention = segments.len() - i <= retained;
        if !in_retention {
            remove(journal, dir, segment, None);
        } else if !segment.compressed
            && let Err(err) = compress(journal, dir, segment)
        {
            journal.warn_disk(
                "compressing a delivered journal segment failed; kept as is",
                &err,
            );
        }
    }
    let mut total = journal.disk_bytes();
    if total > config.disk_limit {
        for segment in journal.segments().iter().rev().skip(1).rev() {
            if total <= config.disk_limit {
                break;
            }
            total -= segment.bytes;
            remove(journal, dir, segment, Some("loki-journal-size"));
        }
    }
}

/// Deletes a segment. With `bound` (its name), it goes because that disk
/// bound was reached: what it held that was not delivered is counted as
/// dropped.
fn remove(journal: &Journal, dir: &Path, segment: &Segment, bound: Option<&str>) {
    let tracked = journal
        .segments()
        .iter()
        .any(|s| s.first_seq == segment.first_seq);
    if !tracked {
        return; // another pass deleted it
    }
    let path = segment.path(dir);
    let end = segment.end_seq.unwrap_or(Seq::MAX);
    let (lost, old) = match bound {
        Some(_) => undelivered_in(journal, &path, segment.compressed, end),
        None => (0, 0),
    };
    if let Err(err) = fs::remove_file(&path)
        && err.kind() != io::ErrorKind::NotFound
    {
        journal.warn_disk("deleting a journal segment failed", &err);
        return;
    }
    journal
        .files
        .lock()
        .expect("journal lock poisoned")
        .segments
        .retain(|s| s.first_seq != segment.first_seq);
    if lost + old > 0 {
        tracing::warn!(
            container = %journal.name,
            lines = lost + old,
            segment = %path.display(),
            "journal over {}: deleted the oldest segment before its lines were delivered",
            bound.unwrap_or_default()
        );
    } else if let Some(bound) = bound {
        tracing::info!(container = %journal.name, segment = %path.display(), "journal over {bound}: deleted the oldest delivered segment");
    }
}

/// Counts the lines in a segment that delivery has not taken, and moves
/// delivery past them. Returns (lines this run received, lines an earlier
/// run left).
fn undelivered_in(journal: &Journal, path: &Path, compressed: bool, end: Seq) -> (u64, u64) {
    let (taken, upto, session_start) = {
        let tail = journal.tail();
        (tail.taken, tail.evicted_to, tail.session_start)
    };
    let file = SegmentFile {
        first_seq: 0,
        path: path.to_path_buf(),
        compressed,
    };
    let (mut lost, mut old) = (0, 0);
    if let Ok(mut reader) = ForwardReader::open(&file) {
        while let Ok(Some(record)) = reader.next() {
            let Ok(entry) = LogEntry::decode(record.payload) else {
                continue;
            };
            let Some(source) = Source::parse(&entry.source) else {
                continue;
            };
            let s = source as usize;
            let ends_line =
                !entry.partial || entry.partial_log_metadata.as_ref().is_some_and(|m| m.last);
            if ends_line
                && record.seq >= taken[s]
                && record.seq < upto[s]
                && !entry.line.iter().all(u8::is_ascii_whitespace)
            {
                if record.seq < session_start {
                    old += 1;
                } else {
                    lost += 1;
                }
            }
        }
    }
    let mut tail = journal.tail();
    for s in 0..2 {
        tail.taken[s] = tail.taken[s].max(end.min(tail.evicted_to[s]));
    }
    tail.disk_hint = None;
    // Counted with the tail locked, as delivery's reads are: the disk
    // backlog stays exact (see `Journal::settle_backlog`).
    let counters = &journal.counters;
    ContainerCounters::add(&counters.recovered, old);
    counters
        .backlog_lines
        .fetch_sub(lost as i64, Ordering::Relaxed);
    counters.drop_lines(DropReason::JournalFull, lost + old);
    (lost, old)
}

/// Compresses a delivered segment kept for `docker logs`.
fn compress(journal: &Journal, dir: &Path, segment: &Segment) -> io::Result<()> {
    let raw = segment.path(dir);
    let target = raw.with_extension("sz");
    let partial = raw.with_extension("sz.tmp");
    let mut input = File::open(&raw)?;
    let mut encoder = snap::write::FrameEncoder::new(File::create(&partial)?);
    io::copy(&mut input, &mut encoder)?;
    let file = encoder.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    fs::rename(&partial, &target)?;
    fs::remove_file(&raw)?;
    let mut files = journal.files.lock().expect("journal lock poisoned");
    if let Some(s) = files
        .segments
        .iter_mut()
        .find(|s| s.first_seq == segment.first_seq)
    {
        s.compressed = true;
        s.bytes = bytes;
    }
    Ok(())
}

/// Whether a journal directory holds lines its cursor has not passed. Only
/// the last record is read (backwards, from the end of the last segment),
/// so a check costs one small read whatever the segment's size.
pub(super) fn undelivered(dir: &Path) -> bool {
    let Some(last) = list_segments(dir).into_iter().next_back() else {
        return false;
    };
    let last_seq = if last.compressed {
        // Compressed only once delivered; read through (rare, small).
        let Ok(mut reader) = ForwardReader::open(&last) else {
            return false;
        };
        let mut last_seq = None;
        while let Ok(Some(record)) = reader.next() {
            last_seq = Some(record.seq);
        }
        last_seq
    } else {
        let Ok(end) = super::record::valid_end(&last.path) else {
            return false;
        };
        super::record::BackwardReader::open(&last.path, end)
            .and_then(|mut reader| reader.prev())
            .ok()
            .flatten()
            .map(|record| record.seq)
    };
    let Some(last_seq) = last_seq else {
        return false;
    };
    let cursor = fs::read_to_string(dir.join(CURSOR_FILE))
        .ok()
        .and_then(|t| parse_cursor(&t));
    cursor.is_none_or(|c| c.iter().any(|&s| s <= last_seq))
}

/// What one pass of the store's collector did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Journals deleted because their container was removed.
    pub removed: usize,
    /// Journals deleted because nothing was written to them for the age bound.
    pub expired: usize,
    /// Bytes freed to stay under the store's disk bound.
    pub freed: u64,
}

impl Store {
    /// Applies the store-wide bounds (blocking): journals of containers
    /// that are gone (when `existing` lists the containers that still are,
    /// from the Docker API), journals untouched for the age bound, and the
    /// total size bound, oldest segments first. Journals being written and
    /// journals with `keep-file` are only ever trimmed by the size bound.
    pub fn collect(&self, existing: Option<&HashSet<String>>) -> Collected {
        let mut done = Collected::default();
        let Some(root) = self.root.clone() else {
            return done;
        };
        let now = SystemTime::now();
        for id in self.stored() {
            let dir = root.join(&id);
            let open = self.get(&id);
            if open
                .as_ref()
                .is_some_and(|j| j.is_live() || !j.is_drained())
            {
                continue;
            }
            if dir.join(KEEP_MARKER).exists() {
                continue;
            }
            let gone = existing.is_some_and(|ids| !ids.contains(&id));
            let newest = list_segments(&dir)
                .iter()
                .chain(std::iter::once(&SegmentFile {
                    first_seq: 0,
                    path: dir.join(META_FILE),
                    compressed: false,
                }))
                .filter_map(|s| fs::metadata(&s.path).and_then(|m| m.modified()).ok())
                .max();
            let expired = existing.is_none()
                && self.settings.max_age.is_some_and(|age| {
                    newest.is_none_or(|t| now.duration_since(t).is_ok_and(|d| d > age))
                });
            if !(gone || expired) {
                continue;
            }
            if let Some(journal) = open {
                drop(journal);
            }
            match fs::remove_dir_all(&dir) {
                Ok(()) if gone => {
                    done.removed += 1;
                    tracing::info!(id = %short_id(&id), "deleted the journal of a removed container");
                }
                Ok(()) => {
                    done.expired += 1;
                    tracing::info!(id = %short_id(&id), "deleted a journal nothing was written to for LOCAL_STORE_MAX_AGE");
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot delete a journal")
                }
            }
        }
        done.freed = self.enforce_disk_limit(&root);
        done
    }

    /// Keeps all journals together under `LOCAL_STORE_SIZE`, deleting the
    /// oldest closed segments first (the newest segment of a journal being
    /// written stays).
    fn enforce_disk_limit(&self, root: &Path) -> u64 {
        let mut files = Vec::new();
        let mut total = 0u64;
        for id in self.stored() {
            let dir = root.join(&id);
            let segments = list_segments(&dir);
            let open = self.get(&id);
            // The cursor and the container's record count too.
            for other in [CURSOR_FILE, META_FILE] {
                total += fs::metadata(dir.join(other)).map_or(0, |m| m.len());
            }
            for (i, segment) in segments.iter().enumerate() {
                let Ok(meta) = fs::metadata(&segment.path) else {
                    continue;
                };
                total += meta.len();
                let newest = i + 1 == segments.len();
                if newest && open.as_ref().is_some_and(|j| j.is_live()) {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((modified, meta.len(), id.clone(), segment.clone()));
            }
        }
        if total <= self.settings.disk_limit {
            return 0;
        }
        files.sort_by_key(|f| f.0);
        let mut freed = 0;
        for (_, len, id, segment) in files {
            if total - freed <= self.settings.disk_limit {
                break;
            }
            match self.get(&id) {
                Some(journal) => {
                    let tracked = journal
                        .segments()
                        .into_iter()
                        .find(|s| s.first_seq == segment.first_seq);
                    if let (Some(tracked), Some(dir)) = (tracked, &journal.dir) {
                        let _one_pass = journal.retention.lock().expect("journal lock poisoned");
                        remove(&journal, dir, &tracked, Some("LOCAL_STORE_SIZE"));
                    }
                }
                None => {
                    let _ = fs::remove_file(&segment.path);
                    tracing::warn!(
                        segment = %segment.path.display(),
                        bytes = len,
                        limit = self.settings.disk_limit,
                        "journal store over LOCAL_STORE_SIZE: deleted the oldest segment"
                    );
                }
            }
            freed += len;
        }
        for id in self.stored() {
            let dir = root.join(&id);
            if list_segments(&dir).is_empty()
                && self.get(&id).is_none()
                && !dir.join(KEEP_MARKER).exists()
            {
                let _ = fs::remove_dir_all(&dir);
            }
        }
        freed
    }
}
