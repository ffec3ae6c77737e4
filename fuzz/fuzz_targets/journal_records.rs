//! Journal segment files: the segment magic, then pieces that are valid
//! records, raw bytes, or flipped bits, read with `ForwardReader` (raw
//! and snappy-compressed), `BackwardReader` and `valid_end`.
//!
//! Invariants:
//! - nothing panics and nothing loops forever: each reader returns at most
//!   one record per `ENVELOPE` bytes of file;
//! - forward reading accounts for every byte: records + skipped + pending
//!   == file length - magic, and `offset + pending == file length`;
//! - `valid_end` is at most the file length, and at least the magic;
//! - a file of only valid records (no raw bytes, no flipped bits) reads back
//!   exactly those records forward and backward, skips nothing, and its
//!   `valid_end` is its length;
//! - a compressed copy of the file reads the same records as the raw file.
#![no_main]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use loki_logdriver::journal::record::{
    BackwardReader, ENVELOPE, Record, SEGMENT_MAGIC, SegmentFile, SegmentReader, encode, valid_end,
};

#[derive(Debug, Arbitrary)]
enum Piece {
    Record {
        seq: u64,
        payload: Vec<u8>,
    },
    Raw(Vec<u8>),
    /// Flips a bit of what was written so far.
    Flip {
        at: u16,
        bit: u8,
    },
    /// Cuts what was written so far short by this many bytes.
    Cut(u8),
}

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Removes the scratch directory when the fuzzer exits (not after a crash).
extern "C" fn remove_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn dir() -> &'static Path {
    DIR.get_or_init(|| {
        // Memory-backed if possible: a disk makes each input cost milliseconds.
        let base = match std::env::var_os("FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("journal-records-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        // SAFETY: registers a function of no arguments to run at exit.
        unsafe { libc::atexit(remove_dir) };
        dir
    })
}

fn read_forward(mut reader: SegmentReader, len: u64) -> (Vec<Record>, SegmentReader) {
    let mut records = Vec::new();
    while let Some(record) = reader.next().expect("reading a file") {
        records.push(record);
        assert!(
            records.len() as u64 <= len / ENVELOPE as u64 + 1,
            "more records than the file can hold: a loop"
        );
    }
    (records, reader)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    // Either structured pieces or, when the first byte says so, raw bytes.
    let raw_mode = u.arbitrary::<u8>().map_or(true, |b| b & 1 == 0);
    let mut bytes = SEGMENT_MAGIC.to_vec();
    let mut expected = Vec::new();
    let mut clean = true;
    if raw_mode {
        bytes.extend_from_slice(u.take_rest());
        clean = false;
    } else {
        let Ok(pieces) = u.arbitrary::<Vec<Piece>>() else {
            return;
        };
        for piece in pieces {
            match piece {
                Piece::Record { seq, payload } => {
                    encode(seq, &payload, &mut bytes);
                    expected.push((seq, payload));
                }
                Piece::Raw(raw) => {
                    clean &= raw.is_empty();
                    bytes.extend_from_slice(&raw);
                }
                Piece::Flip { at, bit } => {
                    let at = SEGMENT_MAGIC.len() + at as usize;
                    if at < bytes.len() {
                        bytes[at] ^= 1 << (bit % 8);
                        clean = false;
                    }
                }
                Piece::Cut(n) => {
                    let keep = bytes
                        .len()
                        .saturating_sub(n as usize)
                        .max(SEGMENT_MAGIC.len());
                    clean &= keep == bytes.len();
                    bytes.truncate(keep);
                }
            }
        }
    }
    let len = bytes.len() as u64;
    let path = SegmentFile::raw(dir(), 1);
    std::fs::write(&path, &bytes).expect("writing the segment");

    // Forward, from the start.
    let reader = SegmentReader::open_at(&path, 0).expect("opening");
    let (forward, reader) = read_forward(reader, len);
    let record_bytes: u64 = forward
        .iter()
        .map(|r| (r.payload.len() + ENVELOPE) as u64)
        .sum();
    assert_eq!(
        record_bytes + reader.skipped + reader.pending_bytes() as u64,
        len - SEGMENT_MAGIC.len() as u64,
        "bytes lost or counted twice"
    );
    assert_eq!(reader.offset() + reader.pending_bytes() as u64, len);

    // valid_end.
    let end = valid_end(&path).expect("valid_end");
    assert!(end <= len, "valid_end {end} past the file's {len} bytes");
    assert!(
        end >= SEGMENT_MAGIC.len() as u64,
        "valid_end {end} inside the magic"
    );

    // Backward, from valid_end and from the file's end.
    let mut backward = Vec::new();
    for from in [end, len] {
        let mut back = BackwardReader::open(&path, from).expect("opening");
        let mut records = Vec::new();
        while let Some(record) = back.prev().expect("reading backwards") {
            records.push(record);
            assert!(
                records.len() as u64 <= len / ENVELOPE as u64 + 1,
                "more records than the file can hold: a loop"
            );
        }
        assert!(back.offset >= SEGMENT_MAGIC.len() as u64 && back.offset <= from);
        backward.push(records);
    }

    if clean {
        let seqs: Vec<(u64, &[u8])> = forward.iter().map(|r| (r.seq, &r.payload[..])).collect();
        let want: Vec<(u64, &[u8])> = expected.iter().map(|(s, p)| (*s, &p[..])).collect();
        assert_eq!(seqs, want, "valid records not read back");
        assert_eq!(reader.skipped, 0);
        assert_eq!(end, len, "valid_end cut valid records");
        let mut back = backward[1].clone();
        back.reverse();
        assert_eq!(back, forward, "backward reading differs");
    }

    // The same bytes compressed, as a delivered segment is kept.
    let sz = path.with_extension("sz");
    {
        let mut encoder = snap::write::FrameEncoder::new(std::fs::File::create(&sz).unwrap());
        encoder.write_all(&bytes).unwrap();
    }
    let segment = SegmentFile::parse(sz.clone()).expect("a segment name");
    let reader = SegmentReader::open(&segment).expect("opening the compressed copy");
    let (compressed, _) = read_forward(reader, len);
    assert_eq!(compressed, forward, "the compressed copy reads differently");

    // Arbitrary bytes as a compressed segment: an error or records, no panic.
    std::fs::write(&sz, &bytes[SEGMENT_MAGIC.len()..]).unwrap();
    if let Ok(reader) = SegmentReader::open(&segment) {
        let mut reader = reader;
        let mut n = 0u64;
        while let Ok(Some(_)) = reader.next() {
            n += 1;
            assert!(n <= len, "a loop on a corrupt compressed segment");
        }
    }
});
