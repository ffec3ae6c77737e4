//! The local copy behind `docker logs`: each container's lines exactly as
//! printed, in its own directory under the store root.
//!
//! Files use the FIFO's own framing (4-byte big-endian length + `LogEntry`),
//! so [`FrameDecoder`] reads them back. `current.log` is appended to; at
//! `max-size` it is renamed `<seq>.log` and compressed in the background to
//! `<seq>.sz` (snappy frames). At most `max-file` files are kept, the current
//! one included, as Docker's `local` driver does. A `keep` file in the
//! directory marks `keep-file=true`.
//!
//! Writing happens in the FIFO reader, like json-file writes in the daemon;
//! it never waits for Loki, and Loki delivery never waits for it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;

use crate::config::options::LocalCopyOptions;
use crate::frame::FrameDecoder;
use crate::line::Line;
use crate::proto::logdriver::LogEntry;

const CURRENT: &str = "current.log";
const KEEP_MARKER: &str = "keep";
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// All containers' local copies.
pub struct LocalStore {
    root: PathBuf,
    open: Mutex<HashMap<String, Weak<ContainerLog>>>,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A container's directory. IDs are hex; anything else is refused so a
    /// request cannot name a path outside the store.
    fn dir_of(&self, container_id: &str) -> io::Result<PathBuf> {
        if container_id.is_empty() || !container_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid container ID {container_id:?}"),
            ));
        }
        Ok(self.root.join(container_id))
    }

    /// Opens a container's copy for writing; one per container however many
    /// FIFOs write to it (a restarted container's old and new FIFO).
    pub fn open_for_writing(
        &self,
        container_id: &str,
        options: &LocalCopyOptions,
    ) -> io::Result<Arc<ContainerLog>> {
        let mut open = self.open.lock().expect("store lock poisoned");
        let log = match open.get(container_id).and_then(Weak::upgrade) {
            Some(log) => log,
            None => {
                let log = Arc::new(ContainerLog::create(self.dir_of(container_id)?, options)?);
                open.insert(container_id.to_string(), Arc::downgrade(&log));
                log
            }
        };
        if options.keep_file {
            File::create(log.dir.join(KEEP_MARKER))?;
        }
        log.writers.fetch_add(1, Ordering::AcqRel);
        Ok(log)
    }

    /// The copy being written for this container, if any.
    pub fn live(&self, container_id: &str) -> Option<Arc<ContainerLog>> {
        self.open
            .lock()
            .expect("store lock poisoned")
            .get(container_id)
            .and_then(Weak::upgrade)
    }

    /// Starts streaming a container's lines into `tx`, on a thread of its own.
    pub fn read(
        &self,
        container_id: &str,
        request: ReadRequest,
        tx: mpsc::Sender<Bytes>,
    ) -> io::Result<()> {
        let dir = self.dir_of(container_id)?;
        if !dir.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no local copy of this container's logs",
            ));
        }
        let live = self.live(container_id);
        std::thread::Builder::new()
            .name("read-logs".into())
            .spawn(move || stream(&dir, live.as_deref(), &request, &tx))?;
        Ok(())
    }

    /// Container IDs with a directory in the store.
    pub fn stored_containers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Deletes the copy of a container that no longer exists, unless it is
    /// being written or was started with `keep-file=true`.
    pub fn remove_unless_kept(&self, container_id: &str) -> io::Result<bool> {
        let dir = self.dir_of(container_id)?;
        if self.live(container_id).is_some() || dir.join(KEEP_MARKER).exists() {
            return Ok(false);
        }
        std::fs::remove_dir_all(dir)?;
        Ok(true)
    }

    /// Keeps the whole store under `cap` bytes by deleting the oldest files
    /// that no container is writing. Returns the bytes freed.
    pub fn enforce_cap(&self, cap: u64) -> u64 {
        let mut files = Vec::new();
        let mut total = 0u64;
        for id in self.stored_containers() {
            let dir = self.root.join(&id);
            let writing = self.live(&id).is_some();
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                total += meta.len();
                let name = entry.file_name();
                let in_use = writing && name == CURRENT;
                if meta.is_file() && name != KEEP_MARKER && !in_use {
                    files.push((meta.mtime(), meta.len(), entry.path()));
                }
            }
        }
        files.sort();
        let mut freed = 0;
        for (_, len, path) in files {
            if total - freed <= cap {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::warn!(file = %path.display(), bytes = len, cap, "local log store over its cap: removed the oldest file");
                freed += len;
            }
        }
        for id in self.stored_containers() {
            let dir = self.root.join(&id);
            let empty = std::fs::read_dir(&dir)
                .map(|mut e| e.all(|f| f.is_ok_and(|f| f.file_name() == KEEP_MARKER)));
            if empty.unwrap_or(false) && self.live(&id).is_none() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        freed
    }
}

struct Writer {
    file: File,
    size: u64,
    next_seq: u64,
    scratch: Vec<u8>,
    entry: LogEntry,
}

impl Writer {
    fn write_scratch(&mut self) -> io::Result<()> {
        self.file.write_all(&self.scratch)?;
        self.size += self.scratch.len() as u64;
        self.scratch.clear();
        Ok(())
    }
}

/// One container's copy, open for appending.
pub struct ContainerLog {
    dir: PathBuf,
    max_size: Option<u64>,
    max_file: u32,
    writer: Mutex<Writer>,
    /// FIFO readers still writing here; followers stop when it reaches 0.
    writers: AtomicUsize,
}

impl ContainerLog {
    fn create(dir: PathBuf, options: &LocalCopyOptions) -> io::Result<ContainerLog> {
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        let next_seq = rotated_files(&dir).last().map_or(1, |(seq, _)| seq + 1);
        Ok(ContainerLog {
            dir,
            max_size: options.max_size,
            max_file: options.max_file.max(1),
            writer: Mutex::new(Writer {
                file,
                size,
                next_seq,
                scratch: Vec::new(),
                entry: LogEntry::default(),
            }),
            writers: AtomicUsize::new(0),
        })
    }

    /// Appends lines, rotating as soon as a line brings the file to `max-size`.
    pub fn append(&self, lines: &mut [Line]) -> io::Result<()> {
        let mut guard = self.writer.lock().expect("writer lock poisoned");
        let writer = &mut *guard;
        writer.scratch.clear();
        for line in lines.iter_mut() {
            let entry = &mut writer.entry;
            if entry.source != line.source.as_str() {
                entry.source.clear();
                entry.source.push_str(line.source.as_str());
            }
            entry.time_nano = line.timestamp_ns;
            // Moved in and back out: the line is encoded without a copy.
            entry.line = std::mem::take(&mut line.bytes);
            writer
                .scratch
                .extend_from_slice(&(entry.encoded_len() as u32).to_be_bytes());
            entry
                .encode(&mut writer.scratch)
                .expect("a Vec grows as needed");
            line.bytes = std::mem::take(&mut entry.line);
            if self
                .max_size
                .is_some_and(|max| writer.size + writer.scratch.len() as u64 >= max)
            {
                writer.write_scratch()?;
                self.rotate(writer)?;
            }
        }
        writer.write_scratch()
    }

    fn rotate(&self, writer: &mut Writer) -> io::Result<()> {
        let current = self.dir.join(CURRENT);
        if self.max_file == 1 {
            writer.file.set_len(0)?;
            writer.size = 0;
            return Ok(());
        }
        let rotated = self.dir.join(format!("{:010}.log", writer.next_seq));
        std::fs::rename(&current, &rotated)?;
        writer.next_seq += 1;
        writer.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current)?;
        writer.size = 0;
        let dir = self.dir.clone();
        let keep = self.max_file as usize - 1;
        std::thread::spawn(move || {
            if let Err(err) = compress(&rotated) {
                tracing::warn!(file = %rotated.display(), error = %err, "compressing a rotated log file failed; kept uncompressed");
            }
            prune(&dir, keep);
        });
        Ok(())
    }

    /// A FIFO reader is done writing here.
    pub fn detach(&self) {
        self.writers.fetch_sub(1, Ordering::AcqRel);
    }

    fn is_writing(&self) -> bool {
        self.writers.load(Ordering::Acquire) > 0
    }
}

/// Rotated files, oldest first: `(seq, path)`, preferring `<seq>.log` while
/// its compressed twin is still being written.
fn rotated_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut by_seq: HashMap<u64, PathBuf> = HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (seq, compressed) = match (name.strip_suffix(".sz"), name.strip_suffix(".log")) {
            (Some(seq), _) => (seq, true),
            (None, Some(seq)) => (seq, false),
            _ => continue,
        };
        let Ok(seq) = seq.parse::<u64>() else {
            continue;
        };
        if !compressed || !by_seq.contains_key(&seq) {
            by_seq.insert(seq, entry.path());
        }
    }
    let mut files: Vec<_> = by_seq.into_iter().collect();
    files.sort();
    files
}

fn compress(path: &Path) -> io::Result<()> {
    let target = path.with_extension("sz");
    let partial = path.with_extension("sz.tmp");
    let mut input = File::open(path)?;
    let mut encoder = snap::write::FrameEncoder::new(File::create(&partial)?);
    io::copy(&mut input, &mut encoder)?;
    encoder
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::rename(&partial, &target)?;
    std::fs::remove_file(path)
}

/// Deletes the oldest rotated files beyond `keep`.
fn prune(dir: &Path, keep: usize) {
    let files = rotated_files(dir);
    for (_, path) in files.iter().take(files.len().saturating_sub(keep)) {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(path.with_extension("log"));
    }
}

/// What `docker logs` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRequest {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Lines from the end; `None` for all.
    pub tail: Option<usize>,
    pub follow: bool,
}

/// One stored line, ready to be framed for the daemon.
struct Stored {
    timestamp_ns: i64,
    source: String,
    line: Vec<u8>,
}

/// Reads the entries of a stored file; `None` if it cannot be read at all.
fn read_file(path: &Path) -> Option<Vec<Stored>> {
    let mut bytes = Vec::new();
    let result = File::open(path).and_then(|mut file| {
        if path.extension().is_some_and(|e| e == "sz") {
            snap::read::FrameDecoder::new(file).read_to_end(&mut bytes)
        } else {
            file.read_to_end(&mut bytes)
        }
    });
    if let Err(err) = result {
        tracing::warn!(file = %path.display(), error = %err, "skipping an unreadable or corrupt local log file");
        return None;
    }
    Some(decode(path, &bytes).0)
}

/// Decodes frames; returns the entries and how many bytes were used up
/// (whole frames, and the bytes of a corrupt length that were skipped).
fn decode(path: &Path, bytes: &[u8]) -> (Vec<Stored>, usize) {
    let mut decoder = FrameDecoder::new();
    decoder.read_buffer().extend_from_slice(bytes);
    let mut entry = LogEntry::default();
    let mut out = Vec::new();
    let mut skipped = 0;
    while let Some(frame) = decoder.next_frame(&mut entry) {
        match frame {
            Ok(()) => out.push(Stored {
                timestamp_ns: entry.time_nano,
                source: std::mem::take(&mut entry.source),
                line: std::mem::take(&mut entry.line),
            }),
            Err(_) => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped, "skipped corrupt entries in a local log file");
    }
    (out, bytes.len() - decoder.buffered_bytes())
}

/// Frames one line for the daemon, with its newline restored.
fn frame(stored: &Stored) -> Bytes {
    let mut line = Vec::with_capacity(stored.line.len() + 1);
    line.extend_from_slice(&stored.line);
    line.push(b'\n');
    let entry = LogEntry {
        source: stored.source.clone(),
        time_nano: stored.timestamp_ns,
        line,
        ..LogEntry::default()
    };
    let mut out = Vec::with_capacity(entry.encoded_len() + 4);
    out.extend_from_slice(&(entry.encoded_len() as u32).to_be_bytes());
    entry.encode(&mut out).expect("a Vec grows as needed");
    Bytes::from(out)
}

/// Sends what `request` selects; returns false once past `until` or when the
/// client went away.
fn send(stored: &[Stored], request: &ReadRequest, tx: &mpsc::Sender<Bytes>) -> bool {
    for entry in stored {
        if request
            .since_ns
            .is_some_and(|since| entry.timestamp_ns < since)
        {
            continue;
        }
        if request
            .until_ns
            .is_some_and(|until| entry.timestamp_ns > until)
        {
            return false;
        }
        if tx.blocking_send(frame(entry)).is_err() {
            return false;
        }
    }
    true
}

fn stream(
    dir: &Path,
    live: Option<&ContainerLog>,
    request: &ReadRequest,
    tx: &mpsc::Sender<Bytes>,
) {
    let current_path = dir.join(CURRENT);
    let mut current = File::open(&current_path).ok();
    let mut current_bytes = Vec::new();
    if let Some(file) = current.as_mut() {
        let _ = file.read_to_end(&mut current_bytes);
    }
    let (current_entries, consumed) = decode(&current_path, &current_bytes);
    let rotated = rotated_files(dir);
    let keep_going = match request.tail {
        None => {
            let mut going = true;
            for (_, path) in &rotated {
                going = going && read_file(path).is_none_or(|entries| send(&entries, request, tx));
            }
            going && send(&current_entries, request, tx)
        }
        Some(tail) => {
            let mut newest: Vec<Stored> = current_entries;
            for (_, path) in rotated.iter().rev() {
                if newest.len() >= tail {
                    break;
                }
                let mut older = read_file(path).unwrap_or_default();
                older.append(&mut newest);
                newest = older;
            }
            let start = newest.len().saturating_sub(tail);
            send(&newest[start..], request, tx)
        }
    };
    if !keep_going || !request.follow {
        return;
    }
    let Some(mut file) = current else { return };
    let _ = file.seek(SeekFrom::Start(consumed as u64));
    follow(&current_path, file, live, request, tx);
}

/// Sends lines as they are appended, across rotations, until the container's
/// FIFO readers are done or the client goes away.
fn follow(
    path: &Path,
    mut file: File,
    live: Option<&ContainerLog>,
    request: &ReadRequest,
    tx: &mpsc::Sender<Bytes>,
) {
    let mut pending = Vec::new();
    loop {
        let writing = live.is_some_and(ContainerLog::is_writing);
        let mut chunk = Vec::new();
        let _ = file.read_to_end(&mut chunk);
        if !chunk.is_empty() {
            pending.extend_from_slice(&chunk);
            let (entries, consumed) = decode(path, &pending);
            pending.drain(..consumed);
            if !send(&entries, request, tx) {
                return;
            }
            continue;
        }
        let rotated_away =
            std::fs::metadata(path).ok().map(|m| m.ino()) != file.metadata().ok().map(|m| m.ino());
        if rotated_away {
            match File::open(path) {
                Ok(next) => {
                    file = next;
                    pending.clear();
                    continue;
                }
                Err(_) if writing => {}
                Err(_) => return,
            }
        }
        if !writing || tx.is_closed() {
            return;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_length_never_makes_decoding_panic() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(b"garbage after an impossible frame length");
        let (entries, consumed) = decode(Path::new("corrupt"), &bytes);
        assert!(entries.is_empty());
        assert_eq!(
            consumed,
            bytes.len(),
            "skipped bytes are used up, not decoded again"
        );
    }
}
