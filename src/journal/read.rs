//! `docker logs` from a container's journal: every segment in order, lines
//! joined and with their newline restored, framed as the daemon expects.
//!
//! `--tail N` walks the newest segments backwards from their end, so it
//! never reads (or holds) the whole journal. `-f` is woken by the writer
//! when records reach the disk, and moves on to each new segment in order.
//! Files are read in bounded steps on blocking threads; a request holds at
//! most one read block and one line being joined. The number of requests
//! served at once is bounded; more get a clear error.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::record::{BackwardReader, SegmentFile, SegmentReader, list_segments};
use super::{Journal, Store, with_newline};
use crate::assemble::Assembler;
use crate::frame::encode_frame;
use crate::line::{Line, Source};
use crate::proto::logdriver::LogEntry;

/// Bytes of records read per step on a blocking thread.
const STEP_BYTES: usize = 256 * 1024;

/// What `docker logs` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRequest {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Lines from the end; `None` for all.
    pub tail: Option<usize>,
    pub follow: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("this plugin has no journal of this container's logs")]
    NotFound,
    #[error(
        "too many docker logs requests at once ({0} are being served); try again when one ends"
    )]
    Busy(usize),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Store {
    /// Streams a container's lines as FIFO frames into the returned channel.
    pub fn read_logs(
        self: &Arc<Self>,
        id: &str,
        request: ReadRequest,
        max_line: usize,
    ) -> Result<mpsc::Receiver<Bytes>, ReadError> {
        let dir = self.dir_of(id)?.ok_or(ReadError::NotFound)?;
        // A real directory: a link out of the data directory is not read.
        if !crate::files::is_data_dir(&dir) {
            return Err(ReadError::NotFound);
        }
        let permit = self
            .readers
            .clone()
            .try_acquire_owned()
            .map_err(|_| ReadError::Busy(self.settings.max_readers))?;
        let live = self.get(id);
        // Registered now, before the segments are listed: none goes meanwhile.
        let pin = live.as_ref().map(|j| j.pin());
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(serve(dir, live, pin, request, max_line, tx, permit));
        Ok(rx)
    }
}

/// Where reading is: a segment and what has been read from it.
struct Position {
    segments: Vec<SegmentFile>,
    index: usize,
    reader: Option<SegmentReader>,
    /// Where to open the current raw segment (from a tail walk).
    start_offset: u64,
    /// Lines still to skip (a tail walk may start a little early).
    skip: usize,
    assembler: Assembler,
    /// Past `until`: nothing more is sent.
    done: bool,
}

async fn serve(
    dir: PathBuf,
    live: Option<Arc<Journal>>,
    pin: Option<Arc<std::sync::atomic::AtomicU64>>,
    request: ReadRequest,
    max_line: usize,
    tx: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let mut written = live.as_ref().map(|j| j.written.subscribe());
    let start = {
        let dir = dir.clone();
        let tail = request.tail;
        tokio::task::spawn_blocking(move || start_position(&dir, tail, max_line)).await
    };
    let Ok(mut position) = start else { return };
    loop {
        if let (Some(pin), Some(segment)) = (&pin, position.segments.get(position.index)) {
            pin.store(segment.first_seq, std::sync::atomic::Ordering::Release);
        }
        if let Some(w) = written.as_mut() {
            w.mark_unchanged();
        }
        // Checked before reading: what is written by now is read in this step.
        let growing = request.follow && live.as_ref().is_some_and(|j| j.may_grow());
        let step = {
            let dir = dir.clone();
            let request = request.clone();
            tokio::task::spawn_blocking(move || {
                let frames = read_step(&dir, &mut position, &request, growing);
                (position, frames)
            })
            .await
        };
        let Ok((next, frames)) = step else { return };
        position = next;
        let caught_up = frames.is_empty();
        for frame in frames {
            if tx.send(frame).await.is_err() {
                return; // the client went away
            }
        }
        if position.done {
            return;
        }
        if !caught_up {
            continue;
        }
        let Some(w) = written.as_mut().filter(|_| growing) else {
            return;
        };
        // Wait for the writer (or the client leaving, or the FIFO's end).
        tokio::select! {
            changed = w.changed() => if changed.is_err() { return },
            _ = tx.closed() => return,
        }
    }
}

/// Reads up to a step of records and returns the frames to send; empty
/// when everything written so far has been read.
/// Unless the journal is `growing`, a line still being joined at the end
/// (printed without a newline before the container stopped) is sent too.
fn read_step(
    dir: &Path,
    position: &mut Position,
    request: &ReadRequest,
    growing: bool,
) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut lines = Vec::new();
    let mut read = 0usize;
    if let Some(reader) = position.reader.as_mut() {
        reader.rearm(); // the writer may have added to the file since
    }
    loop {
        if position.reader.is_none() {
            if position.index >= position.segments.len() {
                let newer = newer_segments(dir, &position.segments);
                if newer.is_empty() {
                    if !growing {
                        position.assembler.flush(&mut lines);
                        emit(&mut lines, position, request, &mut frames);
                    }
                    return frames;
                }
                position.segments.extend(newer);
            }
            let segment = &position.segments[position.index];
            let opened = if segment.compressed {
                SegmentReader::open(segment)
            } else {
                SegmentReader::open_at(&segment.path, position.start_offset).or_else(|err| {
                    // Compressed meanwhile: read the compressed twin.
                    let twin = SegmentFile {
                        path: segment.path.with_extension("sz"),
                        compressed: true,
                        ..segment.clone()
                    };
                    SegmentReader::open(&twin).map_err(|_| err)
                })
            };
            position.start_offset = 0;
            match opened {
                Ok(reader) => position.reader = Some(reader),
                Err(err) => {
                    if err.kind() != io::ErrorKind::NotFound {
                        tracing::warn!(segment = %segment.path.display(), error = %err, "skipping an unreadable journal segment");
                    }
                    position.index += 1;
                    continue;
                }
            }
        }
        let reader = position.reader.as_mut().expect("opened above");
        let skipped = reader.skipped;
        let next = reader.next();
        // Damaged bytes skipped count towards the step too, so a client
        // that left is noticed between steps.
        read += (reader.skipped - skipped) as usize;
        match next {
            Ok(Some(record)) => {
                read += record.payload.len();
                if let Ok(entry) = LogEntry::decode(record.payload) {
                    let _ = position.assembler.push(entry, record.seq, &mut lines);
                }
            }
            Ok(None) => {
                if reader.skipped > 0 {
                    tracing::warn!(segment = %position.segments[position.index].path.display(), skipped_bytes = reader.skipped, "skipped corrupt bytes in a journal segment");
                }
                // A newer segment means this one is finished; else wait here.
                let newer = newer_segments(dir, &position.segments);
                let last = position.index + 1 >= position.segments.len();
                if last && newer.is_empty() {
                    if !growing {
                        position.assembler.flush(&mut lines);
                    }
                    emit(&mut lines, position, request, &mut frames);
                    return frames;
                }
                position.segments.extend(newer);
                position.reader = None;
                position.index += 1;
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading a journal segment failed");
                position.reader = None;
                position.index += 1;
            }
        }
        emit(&mut lines, position, request, &mut frames);
        if position.done || read >= STEP_BYTES {
            return frames;
        }
    }
}

/// Segments created after the ones already listed.
fn newer_segments(dir: &Path, known: &[SegmentFile]) -> Vec<SegmentFile> {
    let last = known.last().map(|s| s.first_seq);
    list_segments(dir)
        .into_iter()
        .filter(|s| last.is_none_or(|l| s.first_seq > l))
        .collect()
}

/// Frames completed lines that the request selects.
fn emit(
    lines: &mut Vec<Line>,
    position: &mut Position,
    request: &ReadRequest,
    out: &mut Vec<Bytes>,
) {
    for line in lines.drain(..) {
        if position.done {
            break;
        }
        if position.skip > 0 {
            position.skip -= 1;
            continue;
        }
        if request
            .since_ns
            .is_some_and(|since| line.timestamp_ns < since)
        {
            continue;
        }
        if request
            .until_ns
            .is_some_and(|until| line.timestamp_ns > until)
        {
            position.done = true;
            break;
        }
        out.push(encode_frame(&LogEntry {
            source: line.source.as_str().to_string(),
            time_nano: line.timestamp_ns,
            line: with_newline(&line.bytes),
            ..LogEntry::default()
        }));
    }
}

/// Where to start reading for `tail` lines from the end (all: the start).
fn start_position(dir: &Path, tail: Option<usize>, max_line: usize) -> Position {
    let segments = list_segments(dir);
    let mut position = Position {
        index: 0,
        segments,
        reader: None,
        start_offset: 0,
        skip: 0,
        assembler: Assembler::replaying(max_line),
        done: false,
    };
    let Some(wanted) = tail else {
        return position;
    };
    if wanted == 0 {
        position.index = position.segments.len();
        position.done = true;
        return position;
    }
    let mut counted = 0usize;
    let mut open: HashSet<(Source, String)> = HashSet::new();
    for index in (0..position.segments.len()).rev() {
        let segment = position.segments[index].clone();
        if !segment.compressed
            && let Some((offset, found)) = walk_back(&segment.path, wanted, &mut counted, &mut open)
        {
            position.index = index;
            position.start_offset = offset;
            position.skip = found.saturating_sub(wanted);
            return position;
        }
        if segment.compressed {
            counted += count_line_ends(&segment);
            open.clear();
        }
        if counted >= wanted && open.is_empty() {
            position.index = index;
            position.skip = counted - wanted;
            return position;
        }
    }
    position.skip = 0;
    position
}

/// Walks a raw segment backwards counting line ends. Returns the offset to
/// start at and the lines from there to the end, once `wanted` are found
/// and no line found is missing its start; `None` if the segment's start
/// (or a damaged record) comes first.
fn walk_back(
    path: &Path,
    wanted: usize,
    counted: &mut usize,
    open: &mut HashSet<(Source, String)>,
) -> Option<(u64, usize)> {
    let file = crate::files::open_data_file(path).ok()?;
    let mut reader = BackwardReader::of(file).ok()?;
    while let Ok(Some(record)) = reader.prev() {
        let Ok(entry) = LogEntry::decode(record.payload) else {
            continue;
        };
        let Some(source) = Source::parse(&entry.source) else {
            continue;
        };
        match entry.partial_log_metadata.filter(|_| entry.partial) {
            None => *counted += 1,
            Some(meta) => {
                let key = (source, meta.id);
                if !open.contains(&key) {
                    *counted += 1;
                    if meta.ordinal > 1 {
                        open.insert(key.clone());
                    }
                }
                if meta.ordinal <= 1 {
                    open.remove(&key);
                }
            }
        }
        // Inside a chunk record, on to its first frame: reading starts at
        // a record, and the lines counted meanwhile are skipped.
        if *counted >= wanted && open.is_empty() && reader.at_record_start() {
            return Some((reader.offset, *counted));
        }
    }
    // Reached the segment's start (or damage): count it all and go on.
    None
}

/// Line ends in a segment, read forward (for compressed segments).
fn count_line_ends(segment: &SegmentFile) -> usize {
    let Ok(mut reader) = SegmentReader::open(segment) else {
        return 0;
    };
    let mut count = 0;
    while let Ok(Some(record)) = reader.next() {
        if let Ok(entry) = LogEntry::decode(record.payload) {
            let ends = !entry.partial || entry.partial_log_metadata.is_some_and(|m| m.last);
            count += usize::from(ends);
        }
    }
    count
}
