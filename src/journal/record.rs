//! The journal's on-disk format: segments of self-checking records.
//!
//! A record is one FIFO frame's `LogEntry`, as the daemon sent it, in an
//! envelope that makes it checkable from both ends (moby's `local` driver
//! frames its records with the length before and after; we add the record's
//! sequence number and a checksum):
//!
//! ```text
//!  u32 len | u32 crc32c(seq ‖ payload) | u64 seq | payload (len bytes) | u32 len
//! ```
//!
//! The writer puts all the frames of one FIFO read into one record, a
//! *chunk* (the top bit of both length words set), numbered by its first
//! frame: one envelope, checksum and write per read instead of per line.
//! Its payload is the frames, each as a varint `len << 2 | kind` and `len`
//! bytes: kind 0 and 1 are a frame of the daemon's shape without its first
//! eight bytes (`0a 06 "stdout"`, `0a 06 "stderr"`), kind 2 a frame as it
//! came, kind 3 a frame of the daemon's shape whose timestamp is kept as
//! the difference to the previous one in the chunk ([`TIMED_KIND`]).
//! Versions before kind 3 read a chunk that has one as damaged from there.
//! Readers hand out the frames of a chunk one by one, as records of
//! consecutive sequence numbers, exactly as they were in the FIFO; records
//! of one frame (earlier versions, and frames too large for a chunk) are
//! read as before.
//!
//! A torn tail (a write cut short by a crash) fails its checksum or suffix
//! and is truncated when the segment is opened; a reader can walk backwards
//! from any record end by its suffix. A segment is a file named by the
//! sequence number of its first record, `<seq>.log`, starting with
//! [`SEGMENT_MAGIC`]; a delivered segment kept for `docker logs` is
//! compressed (snappy frames) into `<seq>.sz`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::frame::MAX_FRAME;
use crate::line::Seq;

/// The first bytes of every segment: format name and version.
pub const SEGMENT_MAGIC: &[u8; 8] = b"LKJRNL\x00\x01";
/// Bytes of a record around its payload.
pub const ENVELOPE: usize = 4 + 4 + 8 + 4;
const HEADER: usize = 16;
/// Set in both length words of a chunk record.
const CHUNK_FLAG: u32 = 1 << 31;
/// A chunk is closed before its payload passes this; a larger frame gets a
/// record of its own. Every record stays within `MAX_FRAME` and the envelope.
pub const MAX_CHUNK: usize = 256 * 1024;
/// The first bytes of a frame of each daemon-shaped kind.
const SHAPES: [&[u8; 8]; 2] = [b"\x0a\x06stdout", b"\x0a\x06stderr"];
const RAW_KIND: u64 = 2;
/// A daemon-shaped frame whose `time_nano` (the field that follows the
/// stream's name) is stored as the difference to the time of the chunk's
/// previous frame of this kind (0 for the first): a varint of
/// `zigzag(difference) << 1 | shape`, then the rest of the frame. Nine
/// bytes of nanoseconds become two or three.
const TIMED_KIND: u64 = 3;
/// `time_nano`'s key (field 2, varint).
const TIME_KEY: u8 = 0x10;

/// Appends one record to `out`.
pub fn encode(seq: Seq, payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_be_bytes();
    let seq_bytes = seq.to_be_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
    out.extend_from_slice(&len);
}

/// Where [`ChunkBuilder::push`] put a frame: the payload's bytes from
/// offset `payload_at` to its end are in the buffer of records unchanged,
/// from offset `records_at` on. A frame's line field (followed only by the
/// partial-line fields) is among them, so a line can point there instead
/// of into the buffer the frame was read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbatim {
    pub payload_at: usize,
    pub records_at: usize,
}

impl Verbatim {
    /// Where the `len` bytes at offset `at` of a payload of `payload_len`
    /// bytes are in the records, if they are among those copied unchanged.
    pub fn in_records(&self, at: usize, len: usize, payload_len: usize) -> Option<Range<usize>> {
        let start = self.records_at + at.checked_sub(self.payload_at)?;
        (at + len <= payload_len).then_some(start..start + len)
    }
}

/// Builds chunk records (see the module's doc) in a buffer of records.
#[derive(Debug)]
pub struct ChunkBuilder {
    /// Where the open chunk's envelope starts in the buffer.
    open: Option<usize>,
    /// The time of the open chunk's last [`TIMED_KIND`] frame.
    last_time: u64,
    /// A chunk is closed before its payload passes this (at most
    /// [`MAX_CHUNK`]); a frame over half of it gets a record of its own.
    limit: usize,
}

impl Default for ChunkBuilder {
    fn default() -> ChunkBuilder {
        ChunkBuilder::with_limit(MAX_CHUNK)
    }
}

impl ChunkBuilder {
    /// Chunks of at most `limit` bytes (within 64 B and [`MAX_CHUNK`]): a
    /// journal with small segments (`max-size`) keeps them small, so that
    /// its segments are still cut near their size.
    pub fn with_limit(limit: usize) -> ChunkBuilder {
        ChunkBuilder {
            open: None,
            last_time: 0,
            limit: limit.clamp(64, MAX_CHUNK),
        }
    }

    /// Appends frame `seq` (its protobuf payload) to `out`: to the open
    /// chunk, which must have been started by frame `seq - 1`, or to a new one.
    /// Returns where the payload's bytes went (a frame's line is among them).
    pub fn push(&mut self, seq: Seq, payload: &[u8], out: &mut Vec<u8>) -> Verbatim {
        if payload.len() > self.limit / 2 {
            self.finish(out);
            // After its length, CRC and sequence number.
            let records_at = out.len() + HEADER;
            encode(seq, payload, out);
            return Verbatim {
                payload_at: 0,
                records_at,
            };
        }
        if let Some(start) = self.open
            && out.len() - start + payload.len() + 10 > self.limit
        {
            self.finish(out);
        }
        if self.open.is_none() {
            self.open = Some(out.len());
            self.last_time = 0;
            out.extend_from_slice(&[0u8; 8]);
            out.extend_from_slice(&seq.to_be_bytes());
        }
        let (kind, body) = match SHAPES
            .iter()
            .position(|shape| payload.starts_with(&shape[..]))
        {
            Some(kind) => (kind as u64, &payload[8..]),
            None => (RAW_KIND, payload),
        };
        if kind != RAW_KIND
            && let Some((time, rest)) = split_time(body)
        {
            let difference = zigzag(time.wrapping_sub(self.last_time));
            if difference < 1 << 63 {
                self.last_time = time;
                let head = (difference << 1) | kind;
                put_varint(
                    (((varint_len(head) + rest.len()) as u64) << 2) | TIMED_KIND,
                    out,
                );
                put_varint(head, out);
                let verbatim = Verbatim {
                    payload_at: payload.len() - rest.len(),
                    records_at: out.len(),
                };
                out.extend_from_slice(rest);
                return verbatim;
            }
        }
        put_varint(((body.len() as u64) << 2) | kind, out);
        let verbatim = Verbatim {
            payload_at: payload.len() - body.len(),
            records_at: out.len(),
        };
        out.extend_from_slice(body);
        verbatim
    }

    /// Closes the open chunk, if any: its envelope is filled in.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let Some(start) = self.open.take() else {
            return;
        };
        let len = out.len() - start - HEADER;
        let word = (len as u32 | CHUNK_FLAG).to_be_bytes();
        let crc = crc32c::crc32c(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&word);
        out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&word);
    }
}

fn put_varint(value: u64, out: &mut Vec<u8>) {
    let (bytes, n) = varint(value);
    out.extend_from_slice(&bytes[..n]);
}

/// `value` as a protobuf varint: its bytes, and how many of them there are.
fn varint(mut value: u64) -> ([u8; 10], usize) {
    let (mut bytes, mut n) = ([0u8; 10], 0);
    while value >= 0x80 {
        bytes[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    bytes[n] = value as u8;
    (bytes, n + 1)
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A daemon-shaped frame's body (after the stream's name) that starts with
/// `time_nano`, as its time and what follows it; `None` if it does not, or
/// if its varint is not the one the time encodes to (longer than needed,
/// or with bits beyond 64): it could not be written back alike.
fn split_time(body: &[u8]) -> Option<(u64, &[u8])> {
    if body.first() != Some(&TIME_KEY) {
        return None;
    }
    let mut at = 1;
    let time = get_varint(body, &mut at)?;
    let (again, n) = varint(time);
    (again[..n] == body[1..at]).then(|| (time, &body[at..]))
}

fn zigzag(difference: u64) -> u64 {
    let signed = difference as i64;
    ((signed << 1) ^ (signed >> 63)) as u64
}

fn unzigzag(value: u64) -> u64 {
    ((value >> 1) as i64 ^ -((value & 1) as i64)) as u64
}

fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// A record's length word: the payload's length and whether it is a chunk.
fn length_word(word: u32) -> (usize, bool) {
    ((word & !CHUNK_FLAG) as usize, word & CHUNK_FLAG != 0)
}

/// The sequence number of the record at the start of `record` (a whole
/// record, as in a writer's buffer) and its total size.
pub fn peek(record: &[u8]) -> (Seq, usize) {
    let (len, _) = length_word(u32::from_be_bytes(record[0..4].try_into().unwrap()));
    let seq = u64::from_be_bytes(record[8..16].try_into().unwrap());
    (seq, len + ENVELOPE)
}

/// The frames of a chunk record, as records; those before damage, if any
/// (a chunk that checks out is damaged only if it was made so).
fn expand(seq: Seq, payload: &Bytes) -> Vec<Record> {
    let mut frames = Vec::new();
    let mut sizes = Vec::new();
    let mut at = 0;
    let mut total = 0;
    while at < payload.len() {
        let Some(word) = get_varint(payload, &mut at) else {
            break;
        };
        let (len, kind) = ((word >> 2) as usize, word & 3);
        if len > payload.len() - at {
            break;
        }
        sizes.push((at, len, kind));
        total += len
            + match kind {
                RAW_KIND => 0,
                TIMED_KIND => 8 + 1 + 10,
                _ => 8,
            };
        at += len;
    }
    // One buffer for the frames that need their first bytes back.
    let mut rebuilt = BytesMut::with_capacity(total);
    let mut last_time = 0u64;
    for (i, (at, len, kind)) in sizes.into_iter().enumerate() {
        let body = &payload[at..at + len];
        let frame = match kind {
            RAW_KIND => payload.slice(at..at + len),
            TIMED_KIND => {
                let mut after = 0;
                let Some(head) = get_varint(body, &mut after) else {
                    break;
                };
                last_time = last_time.wrapping_add(unzigzag(head >> 1));
                rebuilt.extend_from_slice(&SHAPES[(head & 1) as usize][..]);
                rebuilt.extend_from_slice(&[TIME_KEY]);
                let (time, n) = varint(last_time);
                rebuilt.extend_from_slice(&time[..n]);
                rebuilt.extend_from_slice(&body[after..]);
                rebuilt.split().freeze()
            }
            _ => {
                rebuilt.extend_from_slice(&SHAPES[kind as usize][..]);
                rebuilt.extend_from_slice(body);
                rebuilt.split().freeze()
            }
        };
        frames.push(Record {
            seq: seq + i as u64,
            payload: frame,
        });
    }
    frames
}

/// A hash that recognizes a frame's payload (they carry nanosecond
/// timestamps, so two different frames practically never hash alike).
pub fn payload_hash(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    pub payload: Bytes,
}

/// Why bytes at some position are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A whole, valid record of this many bytes.
    Valid(usize),
    /// Too few bytes to tell (a record may still be being written).
    Short,
    Invalid,
}

fn check(buf: &[u8]) -> Check {
    if buf.len() < HEADER {
        return Check::Short;
    }
    let word = u32::from_be_bytes(buf[0..4].try_into().unwrap());
    let (len, _) = length_word(word);
    if len > MAX_FRAME {
        return Check::Invalid;
    }
    let total = len + ENVELOPE;
    if buf.len() < total {
        return Check::Short;
    }
    let crc = u32::from_be_bytes(buf[4..8].try_into().unwrap());
    let suffix = u32::from_be_bytes(buf[total - 4..total].try_into().unwrap());
    if suffix != word || crc32c::crc32c(&buf[8..HEADER + len]) != crc {
        return Check::Invalid;
    }
    Check::Valid(total)
}

/// The frames of the valid record at the start of `buf`: itself, or a
/// chunk's frames.
fn parse(buf: &Bytes, total: usize) -> Vec<Record> {
    let seq = u64::from_be_bytes(buf[8..16].try_into().unwrap());
    let payload = buf.slice(HEADER..total - 4);
    let (_, chunk) = length_word(u32::from_be_bytes(buf[0..4].try_into().unwrap()));
    if chunk {
        expand(seq, &payload)
    } else {
        vec![Record { seq, payload }]
    }
}

/// A segment's file name, `<first seq>.log` or `.sz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub first_seq: Seq,
    pub path: PathBuf,
    pub compressed: bool,
}

impl SegmentFile {
    pub fn raw(dir: &Path, first_seq: Seq) -> PathBuf {
        dir.join(format!("{first_seq:020}.log"))
    }

    pub fn parse(path: PathBuf) -> Option<SegmentFile> {
        let name = path.file_name()?.to_str()?;
        let (seq, compressed) = match (name.strip_suffix(".log"), name.strip_suffix(".sz")) {
            (Some(seq), _) => (seq, false),
            (None, Some(seq)) => (seq, true),
            _ => return None,
        };
        if seq.len() != 20 {
            return None;
        }
        Some(SegmentFile {
            first_seq: seq.parse().ok()?,
            path,
            compressed,
        })
    }
}

/// The largest file a segment can be: `max-size` is at most 1 GiB, and a
/// segment is closed before the record that would pass it, unless that
/// record is alone. A larger file under a segment's name is not read.
pub const MAX_SEGMENT_FILE: u64 = (1 << 30) + 2 * MAX_FRAME as u64;

/// What a journal directory holds under segment names.
#[derive(Debug, Default)]
pub struct Scan {
    /// The segments, oldest first. A segment found both raw and compressed
    /// (compression is between its rename and the raw file's removal, or
    /// was interrupted) is listed once, raw.
    pub segments: Vec<SegmentFile>,
    /// Entries named like segments that are not read: symlinks, FIFOs,
    /// devices, directories, files larger than any segment; and why.
    pub skipped: Vec<(SegmentFile, &'static str)>,
}

/// Lists a journal directory's segments without opening or following
/// anything (see [`Scan`]).
pub fn scan(dir: &Path) -> Scan {
    let mut out = Scan::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(segment) = SegmentFile::parse(entry.path()) else {
            continue;
        };
        // The entry itself: a symlink is not followed.
        match entry.metadata() {
            Ok(meta) => match crate::files::not_a_data_file(&meta) {
                None if meta.len() > MAX_SEGMENT_FILE => out
                    .skipped
                    .push((segment, "is larger than any journal segment can be")),
                None => out.segments.push(segment),
                Some(why) => out.skipped.push((segment, why)),
            },
            Err(_) => continue, // gone meanwhile
        }
    }
    out.segments.sort_by_key(|s| (s.first_seq, s.compressed));
    out.segments.dedup_by_key(|s| s.first_seq);
    out.skipped.sort_by_key(|(s, _)| s.first_seq);
    out
}

/// The segments in a journal directory, oldest first (see [`scan`]).
pub fn list_segments(dir: &Path) -> Vec<SegmentFile> {
    scan(dir).segments
}

/// Deletes the compressed twin of a raw segment left by a compression that
/// was interrupted (only the journal's owner calls this, when opening it).
/// Only regular files are deleted.
pub fn remove_interrupted_compressions(dir: &Path) {
    for segment in list_segments(dir).iter().filter(|s| !s.compressed) {
        for twin in [
            segment.path.with_extension("sz"),
            segment.path.with_extension("sz.tmp"),
        ] {
            if std::fs::symlink_metadata(&twin).is_ok_and(|m| m.is_file()) {
                let _ = std::fs::remove_file(twin);
            }
        }
    }
}

/// Reads records forward from a raw segment, skipping (and counting) bytes
/// that are not records. Stops at the end of what has been written; call
/// again after more was appended.
pub struct ForwardReader<R> {
    source: R,
    buf: BytesMut,
    /// File offset of `buf[0]`.
    offset: u64,
    /// Frames of the last chunk read not yet returned, and where it starts.
    pending: std::collections::VecDeque<Record>,
    pending_start: u64,
    /// Bytes skipped because they were not records.
    pub skipped: u64,
    eof: bool,
}

const BLOCK: usize = 64 * 1024;

/// A reader of either kind of segment.
pub type SegmentReader = ForwardReader<Box<dyn Read + Send>>;

impl SegmentReader {
    /// Opens a segment, raw or compressed, from its start. Only a regular
    /// file is opened, never through a symlink. A raw segment whose first
    /// bytes are damaged is read all the same: its records check
    /// themselves.
    pub fn open(segment: &SegmentFile) -> io::Result<SegmentReader> {
        if !segment.compressed {
            return SegmentReader::open_at(&segment.path, 0);
        }
        let file = crate::files::open_data_file(&segment.path)?;
        // A segment was at most this large before it was compressed: a
        // file that expands beyond is not one (nor read further).
        let mut source: Box<dyn Read + Send> =
            Box::new(snap::read::FrameDecoder::new(file).take(MAX_SEGMENT_FILE));
        let mut magic = [0u8; 8];
        source.read_exact(&mut magic)?;
        if &magic != SEGMENT_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a journal segment",
            ));
        }
        Ok(ForwardReader::new(source, magic.len() as u64))
    }

    /// Opens a raw segment at a record boundary `offset` (0: its first record).
    pub fn open_at(path: &Path, offset: u64) -> io::Result<SegmentReader> {
        let mut file = crate::files::open_data_file(path)?;
        let offset = offset.max(SEGMENT_MAGIC.len() as u64);
        file.seek(SeekFrom::Start(offset))?;
        Ok(ForwardReader::new(Box::new(file), offset))
    }
}

/// Whether a raw segment starts with [`SEGMENT_MAGIC`].
pub fn has_magic(file: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == SEGMENT_MAGIC),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(err) => Err(err),
    }
}

impl ForwardReader<File> {
    /// Reads an open raw segment from its first record.
    pub fn from_file(mut file: File) -> io::Result<ForwardReader<File>> {
        let offset = SEGMENT_MAGIC.len() as u64;
        file.seek(SeekFrom::Start(offset))?;
        Ok(ForwardReader::new(file, offset))
    }
}

impl<R: Read> ForwardReader<R> {
    fn new(source: R, offset: u64) -> ForwardReader<R> {
        ForwardReader {
            source,
            buf: BytesMut::new(),
            offset,
            pending: std::collections::VecDeque::new(),
            pending_start: offset,
            skipped: 0,
            eof: false,
        }
    }

    /// File offset just after the last record returned; inside a chunk,
    /// the chunk's start (reading again from there finds the frames that
    /// follow, after those already returned).
    pub fn offset(&self) -> u64 {
        if self.pending.is_empty() {
            self.offset
        } else {
            self.pending_start
        }
    }

    /// The next valid record; `None` at the end of what is written so far.
    #[allow(clippy::should_implement_trait)] // `None` means "not yet", not "never"
    pub fn next(&mut self) -> io::Result<Option<Record>> {
        if let Some(record) = self.pending.pop_front() {
            return Ok(Some(record));
        }
        loop {
            match check(&self.buf) {
                Check::Valid(total) => {
                    let bytes = self.buf.split_to(total).freeze();
                    self.pending_start = self.offset;
                    self.offset += total as u64;
                    self.pending.extend(parse(&bytes, total));
                    if let Some(record) = self.pending.pop_front() {
                        return Ok(Some(record));
                    }
                }
                Check::Invalid => self.skip_to_record(),
                Check::Short if self.eof => {
                    // The end of what is written, unless a record follows:
                    // then these bytes were a corrupt length, not a record
                    // still being written.
                    let found = (1..self.buf.len())
                        .find(|&at| matches!(check(&self.buf[at..]), Check::Valid(_)));
                    match found {
                        Some(at) => self.skip(at),
                        None => return Ok(None),
                    }
                }
                Check::Short => {
                    let before = self.buf.len();
                    self.buf.reserve(BLOCK);
                    let spare = self.buf.spare_capacity_mut();
                    // SAFETY: `read` only writes initialized bytes into the
                    // slice it is given; we only expose the bytes it reports.
                    let spare = unsafe {
                        std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), spare.len())
                    };
                    let n = loop {
                        match self.source.read(spare) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            other => break other?,
                        }
                    };
                    // SAFETY: `n` bytes were just written by `read`.
                    unsafe { self.buf.set_len(before + n) };
                    if n == 0 {
                        self.eof = true;
                        // Looked again later (a follower): the writer may add more.
                    }
                }
            }
        }
    }

    /// Skips to the next position where a record may start.
    fn skip_to_record(&mut self) {
        let mut at = 1;
        while at < self.buf.len() {
            match check(&self.buf[at..]) {
                Check::Valid(_) => break,
                Check::Short if !self.eof => break,
                _ => at += 1,
            }
        }
        self.skip(at.min(self.buf.len()));
    }

    fn skip(&mut self, n: usize) {
        let _ = self.buf.split_to(n);
        self.offset += n as u64;
        self.skipped += n as u64;
    }

    /// Forgets that the end was reached, so `next` reads again (after the
    /// writer appended more).
    pub fn rearm(&mut self) {
        self.eof = false;
    }

    /// Bytes at the end that do not form a record yet.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
}

/// Where the valid records of a raw segment end: the length to truncate a
/// torn tail to. Scans forward; records after a corrupt stretch are kept.
pub fn valid_end(path: &Path) -> io::Result<u64> {
    valid_end_of(&mut crate::files::open_data_file(path)?)
}

/// [`valid_end`] of an open segment.
pub fn valid_end_of(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if len < SEGMENT_MAGIC.len() as u64 {
        return Ok(0);
    }
    // Fast path: the last record checks out from its suffix.
    if let Some(end) = last_record_end(file, len)? {
        return Ok(end);
    }
    file.seek(SeekFrom::Start(SEGMENT_MAGIC.len() as u64))?;
    let copy = file.try_clone()?;
    let mut reader = ForwardReader::new(copy, SEGMENT_MAGIC.len() as u64);
    let mut end = SEGMENT_MAGIC.len() as u64;
    while reader.next()?.is_some() {
        end = reader.offset();
    }
    Ok(end)
}

/// `Some(len)` if the record ending at `len` is valid.
fn last_record_end(file: &mut File, len: u64) -> io::Result<Option<u64>> {
    if len < (SEGMENT_MAGIC.len() + ENVELOPE) as u64 {
        return Ok((len == SEGMENT_MAGIC.len() as u64).then_some(len));
    }
    let mut suffix = [0u8; 4];
    file.seek(SeekFrom::Start(len - 4))?;
    file.read_exact(&mut suffix)?;
    let payload = length_word(u32::from_be_bytes(suffix)).0 as u64;
    let total = payload + ENVELOPE as u64;
    if payload > MAX_FRAME as u64 || total > len - SEGMENT_MAGIC.len() as u64 {
        return Ok(None);
    }
    let mut record = vec![0u8; total as usize];
    file.seek(SeekFrom::Start(len - total))?;
    file.read_exact(&mut record)?;
    Ok(matches!(check(&record), Check::Valid(t) if t as u64 == total).then_some(len))
}

/// Walks a raw segment backwards from `end`, record by record. Records that
/// do not check out end the walk (the caller falls back to reading forward).
pub struct BackwardReader {
    file: File,
    /// Start offset of the last record returned (of its chunk, for a frame
    /// of a chunk). Set it only before the first `prev`.
    pub offset: u64,
    /// Frames of the chunk being walked not yet returned, oldest first.
    pending: Vec<Record>,
}

impl BackwardReader {
    pub fn open(path: &Path, end: u64) -> io::Result<BackwardReader> {
        Ok(BackwardReader {
            file: crate::files::open_data_file(path)?,
            offset: end,
            pending: Vec::new(),
        })
    }

    /// Walks an open segment backwards from its end.
    pub fn of(file: File) -> io::Result<BackwardReader> {
        let offset = file.metadata()?.len();
        Ok(BackwardReader {
            file,
            offset,
            pending: Vec::new(),
        })
    }

    /// Whether every frame of the record at `offset` has been returned:
    /// reading forward from `offset` then starts with the last one returned.
    pub fn at_record_start(&self) -> bool {
        self.pending.is_empty()
    }

    /// The record ending at the current offset, or `None` at the segment's
    /// start or at a record that does not check out.
    pub fn prev(&mut self) -> io::Result<Option<Record>> {
        if let Some(record) = self.pending.pop() {
            return Ok(Some(record));
        }
        let start = SEGMENT_MAGIC.len() as u64;
        if self.offset < start + ENVELOPE as u64 {
            return Ok(None);
        }
        let mut suffix = [0u8; 4];
        self.file.seek(SeekFrom::Start(self.offset - 4))?;
        self.file.read_exact(&mut suffix)?;
        let payload = length_word(u32::from_be_bytes(suffix)).0 as u64;
        let total = payload + ENVELOPE as u64;
        if payload > MAX_FRAME as u64 || total > self.offset - start {
            return Ok(None);
        }
        let mut buf = vec![0u8; total as usize];
        self.file.seek(SeekFrom::Start(self.offset - total))?;
        self.file.read_exact(&mut buf)?;
        match check(&buf) {
            Check::Valid(t) if t as u64 == total => {
                self.offset -= total;
                self.pending = parse(&Bytes::from(buf), total as usize);
                Ok(self.pending.pop())
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn segment(dir: &Path, records: &[(Seq, &[u8])]) -> PathBuf {
        let path = SegmentFile::raw(dir, records.first().map_or(0, |r| r.0));
        let mut bytes = SEGMENT_MAGIC.to_vec();
        for (seq, payload) in records {
            encode(*seq, payload, &mut bytes);
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read_all(path: &Path) -> (Vec<Seq>, u64) {
        let mut reader = SegmentReader::open_at(path, 0).unwrap();
        let mut seqs = Vec::new();
        while let Some(record) = reader.next().unwrap() {
            seqs.push(record.seq);
        }
        (seqs, reader.skipped)
    }

    /// A line of a frame can point into the records: what `push` says
    /// went there unchanged did, for every kind of record, and the
    /// envelopes written after it do not touch it.
    #[test]
    fn push_says_where_each_frame_went_unchanged() {
        let timed = |time: u8, line: &[u8]| {
            let mut frame = b"\x0a\x06stdout\x10".to_vec();
            frame.push(time);
            frame.extend_from_slice(&[0x1a, line.len() as u8]);
            frame.extend_from_slice(line);
            frame
        };
        let untimed = b"\x0a\x06stderr\x1a\x03abc".to_vec();
        let raw = b"\x1a\x03xyz\x0a\x06stdout".to_vec();
        let large = timed(5, &[b'L'; 100]);
        let frames = [timed(1, b"first"), untimed, raw, large, timed(9, b"after")];
        let mut out = Vec::new();
        // Frames over half the limit get a record of their own.
        let mut chunk = ChunkBuilder::with_limit(128);
        let at: Vec<Verbatim> = (frames.iter().enumerate())
            .map(|(i, frame)| chunk.push(i as Seq, frame, &mut out))
            .collect();
        chunk.finish(&mut out);
        for (frame, at) in frames.iter().zip(&at) {
            let tail = &frame[at.payload_at..];
            let range = at.in_records(at.payload_at, tail.len(), frame.len());
            assert_eq!(&out[range.unwrap()], tail);
            assert!(
                tail.ends_with(&frame[frame.len() - 3..]),
                "the line is among them"
            );
        }
        assert_eq!(
            at[3].payload_at, 0,
            "a record of its own keeps the whole payload"
        );
        assert_eq!(at[2].payload_at, 0, "so does a frame of no known shape");
    }

    #[test]
    fn records_read_back_forward_and_backward() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), &[(5, b"five"), (6, b""), (7, &[9u8; 70_000])]);
        assert_eq!(read_all(&path), (vec![5, 6, 7], 0));
        let len = std::fs::metadata(&path).unwrap().len();
        let mut back = BackwardReader::open(&path, len).unwrap();
        let mut seqs = Vec::new();
        while let Some(record) = back.prev().unwrap() {
            seqs.push(record.seq);
        }
        assert_eq!(seqs, [7, 6, 5]);
        assert_eq!(back.offset, SEGMENT_MAGIC.len() as u64);
    }

    #[test]
    fn chunks_read_back_as_the_frames_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = SegmentFile::raw(dir.path(), 3);
        let frames: Vec<Vec<u8>> = vec![
            b"\x0a\x06stdout\x10\x01".to_vec(),
            b"\x0a\x06stderr".to_vec(),
            b"other".to_vec(),
            Vec::new(),
            vec![7u8; MAX_CHUNK / 2 + 1], // too large for a chunk: alone
            b"\x0a\x06stdout after".to_vec(),
        ];
        let mut bytes = SEGMENT_MAGIC.to_vec();
        let mut chunk = ChunkBuilder::default();
        for (i, frame) in frames.iter().enumerate() {
            chunk.push(3 + i as u64, frame, &mut bytes);
        }
        chunk.finish(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = SegmentReader::open_at(&path, 0).unwrap();
        let mut read = Vec::new();
        let mut offsets = Vec::new();
        while let Some(record) = reader.next().unwrap() {
            read.push((record.seq, record.payload.to_vec()));
            offsets.push(reader.offset());
        }
        let want: Vec<(u64, Vec<u8>)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (3 + i as u64, f.clone()))
            .collect();
        assert_eq!(read, want);
        assert_eq!(reader.skipped, 0);
        // Inside a chunk the offset is the chunk's start; after it, its end.
        let magic = SEGMENT_MAGIC.len() as u64;
        assert_eq!(&offsets[..3], &[magic; 3]);
        assert_eq!(offsets[5], bytes.len() as u64);
        assert_eq!(valid_end(&path).unwrap(), bytes.len() as u64);
        let mut back = BackwardReader::open(&path, bytes.len() as u64).unwrap();
        let mut seqs = Vec::new();
        while let Some(record) = back.prev().unwrap() {
            seqs.push(record.seq);
        }
        assert_eq!(seqs, [8, 7, 6, 5, 4, 3]);
        assert!(back.at_record_start());
        assert_eq!(back.offset, magic);
        // A chunk cut short by a crash is a torn tail like any record.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let end = valid_end(&path).unwrap();
        assert!(end < bytes.len() as u64 && end > magic);
    }

    /// Issue 16: a frame's nanosecond timestamp is kept as the difference
    /// to the one before it in the chunk (two or three bytes instead of
    /// nine), and read back exactly as the daemon wrote it, whatever the
    /// times: rising, falling, equal, negative, extreme, absent, or in a
    /// varint longer than needed (kept as it came).
    #[test]
    fn timestamps_are_kept_as_differences_and_read_back_byte_for_byte() {
        fn frame(source: &str, time: Option<u64>, line: &str) -> Vec<u8> {
            let mut frame = vec![0x0a, 0x06];
            frame.extend_from_slice(source.as_bytes());
            if let Some(time) = time {
                frame.push(TIME_KEY);
                put_varint(time, &mut frame);
            }
            frame.push(0x1a);
            put_varint(line.len() as u64, &mut frame);
            frame.extend_from_slice(line.as_bytes());
            frame
        }
        let now = 1_796_595_264_613_080_930u64;
        let mut frames: Vec<Vec<u8>> = (0..100)
            .map(|i| {
                frame(
                    "stdout",
                    Some(now + i * 4_000),
                    "a line of a hundred bytes, or so",
                )
            })
            .collect();
        frames.extend([
            frame("stderr", Some(now - 1), "back in time"),
            frame("stderr", Some(now - 1), "the same time"),
            frame("stdout", Some(-5i64 as u64), "before 1970"),
            frame("stdout", Some(u64::MAX), "the far end"),
            frame("stdout", Some(0x7fff_ffff_ffff_ffff), "i64::MAX"),
            frame("stdout", Some(1 << 63), "i64::MIN"),
            frame("stdout", None, "no time at all"),
            b"\x0a\x06stdout\x10\x81\x00\x1a\x01x".to_vec(), // a longer varint
            b"\x0a\x06stdout\x10".to_vec(),                  // cut in its time
            // Bits beyond 64 in its tenth byte (found by fuzz/journal_chunks).
            b"\x0a\x06stderr\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x31".to_vec(),
            frame("stdout", Some(now), "after all that"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = SegmentFile::raw(dir.path(), 1);
        let mut bytes = SEGMENT_MAGIC.to_vec();
        let mut chunk = ChunkBuilder::default();
        for (i, frame) in frames.iter().enumerate() {
            chunk.push(1 + i as u64, frame, &mut bytes);
        }
        chunk.finish(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = SegmentReader::open_at(&path, 0).unwrap();
        let mut read = Vec::new();
        while let Some(record) = reader.next().unwrap() {
            read.push(record.payload.to_vec());
        }
        assert_eq!(read, frames);
        assert_eq!(reader.skipped, 0);
        let frame_bytes: usize = frames.iter().map(|f| f.len() - 8).sum();
        assert!(
            bytes.len() < frame_bytes - 100 * 5,
            "{} bytes on disk for {frame_bytes} bytes of frames",
            bytes.len()
        );
    }

    #[test]
    fn a_torn_tail_is_found_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), &[(1, b"one"), (2, b"two")]);
        let whole = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of writing a third record.
        let mut third = Vec::new();
        encode(3, b"three, never finished", &mut third);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&third[..third.len() - 6]).unwrap();
        assert_eq!(valid_end(&path).unwrap(), whole);
        assert_eq!(read_all(&path).0, [1, 2]);
    }

    #[test]
    fn a_corrupt_record_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), &[(1, b"one"), (2, b"two"), (3, b"three")]);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = SEGMENT_MAGIC.len() + ENVELOPE + 3 + HEADER;
        bytes[second] ^= 0xff; // a flipped bit in record 2's payload
        std::fs::write(&path, &bytes).unwrap();
        let (seqs, skipped) = read_all(&path);
        assert_eq!(seqs, [1, 3]);
        assert_eq!(skipped, (ENVELOPE + 3) as u64);
        // The walk backwards stops at the damage; forward reading goes past it.
        let len = bytes.len() as u64;
        let mut back = BackwardReader::open(&path, len).unwrap();
        assert_eq!(back.prev().unwrap().unwrap().seq, 3);
        assert_eq!(back.prev().unwrap(), None);
    }

    #[test]
    fn compressed_segments_read_like_raw_ones() {
        let dir = tempfile::tempdir().unwrap();
        let raw = segment(dir.path(), &[(10, b"ten"), (11, b"eleven")]);
        let bytes = std::fs::read(&raw).unwrap();
        let sz = raw.with_extension("sz");
        let compress = || {
            let mut encoder = snap::write::FrameEncoder::new(File::create(&sz).unwrap());
            encoder.write_all(&bytes).unwrap();
        };
        compress();
        let segments = list_segments(dir.path());
        assert_eq!(segments.len(), 1, "the raw twin wins: {segments:?}");
        assert!(
            !segments[0].compressed && sz.exists(),
            "listing deletes nothing"
        );
        remove_interrupted_compressions(dir.path());
        assert!(!sz.exists());
        compress();
        std::fs::remove_file(&raw).unwrap();
        let segments = list_segments(dir.path());
        assert!(segments[0].compressed);
        let mut reader = SegmentReader::open(&segments[0]).unwrap();
        assert_eq!(reader.next().unwrap().unwrap().payload, &b"ten"[..]);
        assert_eq!(reader.next().unwrap().unwrap().seq, 11);
        assert_eq!(reader.next().unwrap(), None);
    }
}
