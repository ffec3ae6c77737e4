//! Chunk records: the frames of one FIFO read in one record, daemon-shaped
//! frames without the stream's name, their timestamps as differences.
//!
//! Invariant: whatever the frames (daemon-shaped or not, any timestamps,
//! varints of any length, cut anywhere) and the chunk size, reading the
//! segment back gives every frame, byte for byte, with consecutive
//! sequence numbers, and skips nothing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::journal::record::{ChunkBuilder, SEGMENT_MAGIC, SegmentFile, SegmentReader};

#[derive(Debug, Arbitrary)]
enum Frame {
    /// A frame as the daemon writes it: stream, then `time_nano`, then the rest.
    Daemon {
        stderr: bool,
        time: Option<u64>,
        rest: Vec<u8>,
    },
    /// Any bytes.
    Raw(Vec<u8>),
}

fn bytes_of(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Daemon { stderr, time, rest } => {
            let mut out = b"\x0a\x06".to_vec();
            out.extend_from_slice(if *stderr { b"stderr" } else { b"stdout" });
            if let Some(time) = time {
                out.push(0x10);
                let mut value = *time;
                while value >= 0x80 {
                    out.push((value as u8) | 0x80);
                    value >>= 7;
                }
                out.push(value as u8);
            }
            out.extend_from_slice(rest);
            out
        }
        Frame::Raw(raw) => raw.clone(),
    }
}

fuzz_target!(|input: (u16, u32, Vec<Frame>)| {
    let (limit, first, frames) = input;
    let frames: Vec<Vec<u8>> = frames.iter().map(bytes_of).collect();
    let mut bytes = SEGMENT_MAGIC.to_vec();
    let mut chunk = ChunkBuilder::with_limit(limit as usize * 8);
    let mut verbatim = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        verbatim.push(chunk.push(u64::from(first) + i as u64, frame, &mut bytes));
    }
    chunk.finish(&mut bytes);
    // What push says went unchanged into the records did, and stays so.
    for (frame, at) in frames.iter().zip(&verbatim) {
        let tail = &frame[at.payload_at..];
        let range = at.in_records(at.payload_at, tail.len(), frame.len());
        assert_eq!(&bytes[range.expect("the copied part")], tail);
    }
    let dir = std::env::temp_dir().join(format!("journal-chunks-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = SegmentFile::raw(&dir, 1);
    std::fs::write(&path, &bytes).expect("writing the segment");
    let mut reader = SegmentReader::open_at(&path, 0).expect("opening");
    let mut read = Vec::new();
    while let Some(record) = reader.next().expect("reading") {
        read.push((record.seq, record.payload.to_vec()));
        assert!(read.len() <= frames.len(), "more frames than were written");
    }
    let want: Vec<(u64, Vec<u8>)> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (u64::from(first) + i as u64, f))
        .collect();
    assert_eq!(read, want, "frames not read back as written");
    assert_eq!(reader.skipped, 0);
});
