//! What stays on disk, run on the maintenance thread (and by the store's
//! periodic collector):
//!
//! - the cursor is written after delivery moved it, and with it the end of
//!   what was written (so records lost from the end are found after a
//!   restart);
//! - a closed segment that is delivered and outside `docker logs` retention
//!   (`max-file` segments of `max-size`; none with `no-file`) is deleted; one
//!   that is delivered but still retained is compressed;
//! - the container's disk bound (`loki-journal-size`) and the store's
//!   (`LOCAL_STORE_SIZE`) hold at write time: before a writer appends, the
//!   oldest closed segments go, delivered or not, and if no room can be
//!   made the lines go to Loki from memory only. Lines that had not been
//!   delivered are counted as dropped (`journal_full`): those that had left
//!   memory when delivery finds them missing, those still in memory if a
//!   memory bound makes them leave.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use prost::Message;

use super::layout::{CURSOR_AHEAD_SLACK, Segment, format_cursor, parse_cursor, parse_cursor_end};
use super::record::{self, ForwardReader, SegmentFile, SegmentReader, list_segments};
use super::{CURSOR_FILE, Journal, KEEP_MARKER, META_FILE, Store, write_atomically};
use crate::line::{Seq, Source};
use crate::observe::{ContainerCounters, DropReason};
use crate::proto::logdriver::LogEntry;
use crate::protocol::short_id;

/// Writes the cursor if delivery moved it, or more was written, since it
/// was last written.
pub(super) fn persist_cursor(journal: &Journal) {
    let Some(dir) = &journal.dir else { return };
    if journal.disk_off.is_some() {
        return;
    }
    // The cursor is read under the turn: whoever writes last writes the
    // newest.
    let _turn = journal
        .cursor_writing
        .lock()
        .expect("journal lock poisoned");
    let end = journal.files.lock().expect("journal lock poisoned").end;
    let dirty = journal.cursor_dirty.swap(false, Ordering::AcqRel);
    if !dirty && end == journal.end_persisted.load(Ordering::Acquire) {
        return;
    }
    let cursor = journal.cursor();
    // Lines may be delivered from memory before their records are written:
    // the end said is never before the cursor.
    let said = end.max(cursor[0]).max(cursor[1]);
    match write_atomically(
        &dir.join(CURSOR_FILE),
        format_cursor(cursor, said).as_bytes(),
    ) {
        Ok(()) => journal.end_persisted.store(end, Ordering::Release),
        Err(err) => {
            if dirty {
                journal.cursor_dirty.store(true, Ordering::Release);
            }
            journal.warn_disk("writing the delivery cursor failed", &err);
        }
    }
}

/// Applies the container's retention and disk bound.
pub(super) fn apply(journal: &Journal) {
    let Some(dir) = &journal.dir else { return };
    if journal.disk_off.is_some() {
        return; // nothing can be written or deleted
    }
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

/// Deletes a segment; returns the bytes freed. With `bound` (its name), it
/// goes because that disk bound was reached: what it held that was not
/// delivered is lost. Lines of an earlier run are counted now; lines of
/// this run that had left memory are counted when delivery finds them
/// missing, and those still in memory if a memory bound makes them leave.
fn remove(journal: &Journal, dir: &Path, segment: &Segment, bound: Option<&str>) -> u64 {
    let tracked = journal
        .segments()
        .iter()
        .any(|s| s.first_seq == segment.first_seq);
    if !tracked {
        return 0; // another pass deleted it
    }
    let path = segment.path(dir);
    let end = segment.end_seq.unwrap_or(Seq::MAX);
    let old = match bound {
        Some(_) => earlier_run_undelivered(journal, &path, segment, end),
        None => 0,
    };
    if let Err(err) = fs::remove_file(&path)
        && err.kind() != io::ErrorKind::NotFound
    {
        journal.warn_disk("deleting a journal segment failed", &err);
        return 0;
    }
    journal
        .files
        .lock()
        .expect("journal lock poisoned")
        .segments
        .retain(|s| s.first_seq != segment.first_seq);
    if let Some(store) = journal.store.upgrade() {
        store.disk_released(segment.bytes);
    }
    let Some(bound) = bound else {
        return segment.bytes;
    };
    let mut tail = journal.tail();
    let delivered = tail.cursor.iter().all(|&c| c >= end);
    for held in tail.lines.iter_mut() {
        if held.journaled && held.line.is_before(end) {
            held.journaled = false;
            held.deleted = true;
        }
    }
    for s in 0..2 {
        let to = end.min(tail.evicted_to[s]);
        tail.move_taken(s, to);
    }
    tail.disk_hint = None;
    tail.lost_reason = Some(DropReason::JournalFull);
    tail.gaps_counted_to = tail.gaps_counted_to.max(end.min(tail.session_start));
    journal.reconcile_backlog(&mut tail);
    let warn = !delivered
        && tail
            .eviction_warning
            .allow(std::time::Instant::now())
            .is_some();
    drop(tail);
    if old > 0 {
        ContainerCounters::add(&journal.counters.recovered, old);
        journal.counters.drop_lines(DropReason::JournalFull, old);
    }
    if delivered {
        tracing::info!(container = %journal.name, segment = %path.display(), "journal over {bound}: deleted the oldest delivered segment");
    } else if warn {
        tracing::warn!(
            container = %journal.name,
            segment = %path.display(),
            dropped_total = journal.counters.dropped(DropReason::JournalFull),
            "journal over {bound}: deleted the oldest segment before its lines were delivered; they are counted as dropped (journal_full)"
        );
    }
    segment.bytes
}

/// Counts the lines of an earlier run in a segment that delivery has not
/// taken (this run's are accounted for as delivery comes to them).
fn earlier_run_undelivered(journal: &Journal, path: &Path, segment: &Segment, end: Seq) -> u64 {
    let (taken, upto, session_start) = {
        let tail = journal.tail();
        (tail.taken, tail.evicted_to, tail.session_start)
    };
    let from = taken.into_iter().min().unwrap_or(0);
    if segment.first_seq >= session_start || end <= from {
        return 0;
    }
    let file = SegmentFile {
        first_seq: segment.first_seq,
        path: path.to_path_buf(),
        compressed: segment.compressed,
    };
    let mut old = 0;
    if let Ok(mut reader) = ForwardReader::open(&file) {
        while let Ok(Some(record)) = reader.next() {
            if record.seq >= session_start {
                break;
            }
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
                old += 1;
            }
        }
    }
    old
}

/// Compresses a delivered segment kept for `docker logs`.
/// The compressed copy is written beside the raw one: room for both is
/// taken under `LOCAL_STORE_SIZE` first, or the segment stays raw.
fn compress(journal: &Journal, dir: &Path, segment: &Segment) -> io::Result<()> {
    let raw = segment.path(dir);
    let target = raw.with_extension("sz");
    let partial = raw.with_extension("sz.tmp");
    let store = journal.store.upgrade();
    // Snappy's framing adds a little to what does not compress.
    let room = segment.bytes + segment.bytes / 16 + 64;
    if let Some(store) = &store
        && !store.reserve(room)
    {
        return Ok(()); // kept raw
    }
    let written = (|| {
        let mut input = crate::files::open_data_file(&raw)?;
        if std::fs::symlink_metadata(&partial).is_ok_and(|m| m.is_file()) {
            fs::remove_file(&partial)?;
        }
        let limit = room;
        let output = crate::files::create_data_file(&partial)?;
        let mut encoder = snap::write::FrameEncoder::new(output);
        io::copy(&mut (&mut input).take(segment.bytes), &mut encoder)?;
        let file = encoder.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        if bytes > limit {
            return Err(io::Error::other(
                "the compressed copy is larger than the segment",
            ));
        }
        fs::rename(&partial, &target)?;
        fs::remove_file(&raw)?;
        Ok(bytes)
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(err) => {
            let _ = fs::remove_file(&partial);
            if let Some(store) = &store {
                store.disk_released(room);
            }
            return Err(err);
        }
    };
    if let Some(store) = &store {
        store.disk_released(room + segment.bytes - bytes);
    }
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

/// Whether a journal directory may hold lines its cursor has not passed,
/// or damage that opening it would find (and count): anything under a
/// segment's name that is not a segment, a cursor that cannot be read or
/// says more was written than is there. Reads the last record of the
/// newest segment that has one.
pub(super) fn undelivered(dir: &Path) -> bool {
    let scan = record::scan(dir);
    if !scan.skipped.is_empty() {
        return true;
    }
    let mut end = None;
    for segment in scan.segments.iter().rev() {
        if let Some(seq) = last_record(segment) {
            end = Some(seq + 1);
            break;
        }
    }
    let first = scan.segments.first().map(|s| s.first_seq);
    let (cursor, recorded_end) = match crate::files::read_data_file(&dir.join(CURSOR_FILE), 256) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match parse_cursor(&text) {
                Some(cursor) => (Some(cursor), parse_cursor_end(&text)),
                None => return true,
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => (None, None),
        Err(_) => return true,
    };
    let end = end.max(recorded_end).or(first);
    match (cursor, end) {
        (_, None) => false,
        (None, Some(end)) => first.is_none_or(|first| first < end) || recorded_end.is_some(),
        // Behind the end: lines wait; beyond it: the cursor is damaged
        // (a little beyond is a crash's, without a recorded end).
        (Some(cursor), Some(end)) => {
            let slack = if recorded_end.is_none() {
                CURSOR_AHEAD_SLACK
            } else {
                0
            };
            cursor
                .iter()
                .any(|&c| c < end || c > end.saturating_add(slack))
        }
    }
}

/// The number of the last valid record of a segment.
fn last_record(segment: &SegmentFile) -> Option<Seq> {
    if segment.compressed {
        let mut reader = ForwardReader::open(segment).ok()?;
        let mut last = None;
        while let Ok(Some(record)) = reader.next() {
            last = Some(record.seq);
        }
        return last;
    }
    let mut file = crate::files::open_data_file(&segment.path).ok()?;
    let end = record::valid_end_of(&mut file).ok()?;
    let mut reader = record::BackwardReader::of(file).ok()?;
    reader.offset = end;
    if let Ok(Some(record)) = reader.prev() {
        return Some(record.seq);
    }
    let mut reader = SegmentReader::open(segment).ok()?;
    let mut last = None;
    while let Ok(Some(record)) = reader.next() {
        last = Some(record.seq);
    }
    last
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
    /// written stays). The writers hold the bound as they write (see
    /// [`Journal::make_room`]); this also measures what is on disk again.
    fn enforce_disk_limit(&self, root: &Path) -> u64 {
        let mut files = Vec::new();
        let mut total = 0u64;
        for id in self.stored() {
            let dir = root.join(&id);
            let segments = list_segments(&dir);
            let open = self.get(&id);
            total += small_files(&dir);
            for (i, segment) in segments.iter().enumerate() {
                let Ok(meta) = fs::symlink_metadata(&segment.path) else {
                    continue;
                };
                total += meta.len();
                let newest = i + 1 == segments.len();
                if newest && open.as_ref().is_some_and(|j| j.is_live()) {
                    continue;
                }
                let end = segments.get(i + 1).map(|s| s.first_seq);
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((modified, meta.len(), id.clone(), segment.clone(), end));
            }
        }
        let mut freed = 0;
        if total > self.settings.disk_limit {
            files.sort_by_key(|f| f.0);
            for (_, len, id, segment, end) in files {
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
                            let _one_pass =
                                journal.retention.lock().expect("journal lock poisoned");
                            remove(&journal, dir, &tracked, Some("LOCAL_STORE_SIZE"));
                        }
                    }
                    None => self.remove_unopened(&root.join(&id), &segment, end),
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
        }
        // What the writers keep count of starts again from what was measured.
        *self.disk_used.lock().expect("store lock poisoned") = Some(total.saturating_sub(freed));
        freed
    }

    /// Deletes a segment of a journal no container has open (a stopped
    /// container's, from an earlier run), for `LOCAL_STORE_SIZE`: its
    /// undelivered lines are counted as dropped (`journal_full`) in the
    /// plugin-wide totals, and its cursor moves past them. `end` is the next
    /// segment's first record (`None`: it was the newest).
    fn remove_unopened(&self, dir: &Path, segment: &SegmentFile, end: Option<Seq>) {
        let _no_open = self.open.lock().expect("store lock poisoned");
        let cursor_path = dir.join(CURSOR_FILE);
        let (cursor, recorded_end) = match crate::files::read_data_file(&cursor_path, 256) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                (parse_cursor(&text), parse_cursor_end(&text))
            }
            Err(_) => (None, None),
        };
        let cursor = cursor.unwrap_or([0; 2]);
        let (mut lost, mut last) = (0u64, None);
        if let Ok(mut reader) = ForwardReader::open(segment) {
            while let Ok(Some(record)) = reader.next() {
                last = Some(record.seq);
                let Ok(entry) = LogEntry::decode(record.payload) else {
                    continue;
                };
                let Some(source) = Source::parse(&entry.source) else {
                    continue;
                };
                let ends_line =
                    !entry.partial || entry.partial_log_metadata.as_ref().is_some_and(|m| m.last);
                if ends_line
                    && record.seq >= cursor[source as usize]
                    && !entry.line.iter().all(u8::is_ascii_whitespace)
                {
                    lost += 1;
                }
            }
        }
        let bytes = fs::symlink_metadata(&segment.path).map_or(0, |m| m.len());
        if let Err(err) = fs::remove_file(&segment.path) {
            tracing::warn!(segment = %segment.path.display(), error = %err, "cannot delete a journal segment");
            return;
        }
        self.disk_released(bytes);
        let end = end.or(last.map(|l| l + 1)).unwrap_or(segment.first_seq);
        let moved = cursor.map(|c| c.max(end));
        let said = recorded_end.unwrap_or(0).max(moved[0]).max(moved[1]);
        let _ = write_atomically(&cursor_path, format_cursor(moved, said).as_bytes());
        if lost > 0 {
            ContainerCounters::add(&self.retired.recovered, lost);
            self.retired.drop_lines(DropReason::JournalFull, lost);
        }
        tracing::warn!(
            segment = %segment.path.display(),
            bytes,
            lines = lost,
            limit = self.settings.disk_limit,
            "journal store over LOCAL_STORE_SIZE: deleted the oldest segment (of a stopped container); its undelivered lines are counted as dropped (journal_full)"
        );
    }

    /// Bytes of all journals on disk: segments, cursors, records.
    fn measure_disk(&self) -> u64 {
        let Some(root) = &self.root else { return 0 };
        self.stored()
            .iter()
            .map(|id| {
                let dir = root.join(id);
                small_files(&dir)
                    + list_segments(&dir)
                        .iter()
                        .filter_map(|s| fs::symlink_metadata(&s.path).ok())
                        .map(|m| m.len())
                        .sum::<u64>()
            })
            .sum()
    }

    /// Takes `bytes` under `LOCAL_STORE_SIZE` (less a margin for cursors
    /// and records) if they fit.
    pub(super) fn reserve(&self, bytes: u64) -> bool {
        let limit = self.settings.disk_limit.saturating_sub(SMALL_FILES_MARGIN);
        let mut used = self.disk_used.lock().expect("store lock poisoned");
        let used = used.get_or_insert_with(|| self.measure_disk());
        if used.saturating_add(bytes) > limit {
            return false;
        }
        *used += bytes;
        true
    }

    /// Gives back bytes taken with [`Store::reserve`], or freed on disk.
    pub(super) fn disk_released(&self, bytes: u64) {
        if let Some(used) = self.disk_used.lock().expect("store lock poisoned").as_mut() {
            *used = used.saturating_sub(bytes);
        }
    }

    /// Counts bytes written outside the writers (a container's record).
    pub(super) fn disk_added(&self, bytes: u64) {
        if let Some(used) = self.disk_used.lock().expect("store lock poisoned").as_mut() {
            *used += bytes;
        }
    }

    /// Deletes the oldest closed segment of any journal (never the newest
    /// segment of an open one), for `LOCAL_STORE_SIZE`. False when there is
    /// none.
    fn free_oldest(&self) -> bool {
        let oldest = self
            .journals()
            .into_iter()
            .filter(|j| j.writes_to_disk())
            .filter_map(|j| {
                let segments = j.segments();
                let closed = segments.len().checked_sub(1)?;
                let first = segments[..closed].first()?.clone();
                Some((first.modified, j, first))
            })
            .min_by_key(|(modified, _, _)| *modified);
        if let Some((_, journal, segment)) = oldest {
            let dir = journal
                .dir
                .clone()
                .expect("written journals have a directory");
            let _one_pass = journal.retention.lock().expect("journal lock poisoned");
            return remove(&journal, &dir, &segment, Some("LOCAL_STORE_SIZE")) > 0;
        }
        // Journals no container has open: their oldest segment.
        let Some(root) = &self.root else { return false };
        let mut unopened = Vec::new();
        for id in self.stored() {
            if self.get(&id).is_some() {
                continue;
            }
            let segments = list_segments(&root.join(&id));
            for (i, segment) in segments.iter().enumerate() {
                let Ok(meta) = fs::symlink_metadata(&segment.path) else {
                    continue;
                };
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let end = segments.get(i + 1).map(|s| s.first_seq);
                unopened.push((modified, id.clone(), segment.clone(), end));
            }
        }
        let Some((_, id, segment, end)) = unopened.into_iter().min_by_key(|u| u.0) else {
            return false;
        };
        self.remove_unopened(&root.join(&id), &segment, end);
        true
    }
}

/// Bytes kept under `LOCAL_STORE_SIZE` for the small files the writers do
/// not count as they go: cursors rewritten, their temporary copies.
const SMALL_FILES_MARGIN: u64 = 16 * 1024;

/// Bytes of a journal directory's files that are not segments.
fn small_files(dir: &Path) -> u64 {
    [CURSOR_FILE, META_FILE, KEEP_MARKER]
        .iter()
        .filter_map(|name| fs::symlink_metadata(dir.join(name)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

impl Journal {
    /// Before a writer appends `bytes`: keeps this journal under
    /// `loki-journal-size` and the store under `LOCAL_STORE_SIZE` by
    /// deleting the oldest closed segments now, delivered or not. Returns
    /// whether the bytes may be written; when no room can be made they go
    /// to memory only (a journal miss). The bytes are then counted as the
    /// store's until [`Journal::room_used`] says how many were written.
    pub(super) fn make_room(&self, bytes: u64) -> bool {
        let Some(dir) = &self.dir else { return false };
        let limit = self.config.disk_limit;
        if self.disk_bytes() + bytes > limit {
            let _one_pass = self.retention.lock().expect("journal lock poisoned");
            let segments = self.segments();
            for segment in segments.iter().take(segments.len().saturating_sub(1)) {
                if self.disk_bytes() + bytes <= limit {
                    break;
                }
                remove(self, dir, segment, Some("loki-journal-size"));
            }
            if self.disk_bytes() + bytes > limit {
                self.warn_disk(
                    "journal over loki-journal-size and only the segment being written is left; lines go to Loki from memory only",
                    &io::Error::other("no room"),
                );
                return false;
            }
        }
        let Some(store) = self.store.upgrade() else {
            return true;
        };
        loop {
            if store.reserve(bytes) {
                return true;
            }
            if !store.free_oldest() {
                self.warn_disk(
                    "journal store over LOCAL_STORE_SIZE and only segments being written are left; lines go to Loki from memory only",
                    &io::Error::other("no room"),
                );
                return false;
            }
        }
    }

    /// After a write for which `reserved` bytes were taken: `written` were.
    pub(super) fn room_used(&self, reserved: u64, written: u64) {
        if let Some(store) = self.store.upgrade() {
            store.disk_released(reserved.saturating_sub(written));
        }
    }
}
