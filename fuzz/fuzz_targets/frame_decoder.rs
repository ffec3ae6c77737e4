//! The FIFO frame decoder on arbitrary bytes, fed in arbitrary chunks, from
//! the stream's start (`new`) and from inside a frame (`resyncing`), read
//! into `read_buffer_exact` as the reader does (and the whole input at once
//! through `extend` or `read_buffer_exact`).
//!
//! Invariants:
//! - it never panics, and every `Some` consumes at least one byte (a caller
//!   looping on `next` always ends);
//! - every input byte is in a returned frame's wire bytes, in a `Skipped`
//!   run, or still buffered: sum(wire) + sum(skipped) + buffered == input;
//! - `read_buffer_exact(n)` has room for `n` more bytes;
//! - the frames found do not depend on how the input was split;
//! - a valid frame with the daemon's shape appended after the garbage is
//!   never skipped: it is returned, or inside a frame that decoded, or still
//!   buffered (a length claimed before it is waiting for more bytes).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::frame::{Frame, FrameDecoder, encode_frame};
use loki_logdriver::proto::logdriver::{LogEntry, PartialLogEntryMetadata};

/// The frame appended after the garbage.
#[derive(Debug, Arbitrary)]
struct Tail {
    stderr: bool,
    time_nano: i64,
    line: Vec<u8>,
    partial: Option<(bool, String, i32)>,
}

impl Tail {
    fn entry(self) -> LogEntry {
        LogEntry {
            source: if self.stderr { "stderr" } else { "stdout" }.into(),
            time_nano: self.time_nano,
            line: Bytes::from(self.line),
            partial: self.partial.is_some(),
            partial_log_metadata: self
                .partial
                .map(|(last, id, ordinal)| PartialLogEntryMetadata { last, id, ordinal }),
            ..LogEntry::default()
        }
    }
}

/// What one decoder made of the whole input.
#[derive(Debug, Default)]
struct Decoded {
    /// Stream offset and wire bytes of each frame found.
    frames: Vec<(usize, Bytes)>,
    /// Stream offset and length of each skipped run.
    skipped: Vec<(usize, usize)>,
    /// Offset of the first byte not consumed (= where the buffer starts).
    consumed: usize,
    buffered: usize,
}

fn decode(mut decoder: FrameDecoder, input: &[u8], chunks: &[usize], exact: bool) -> Decoded {
    let mut out = Decoded::default();
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().cycle();
    while fed < input.len() {
        let size = sizes
            .next()
            .unwrap_or(input.len())
            .clamp(1, input.len() - fed);
        if exact {
            // Sized to the carried-over bytes and this read, as in ingest.
            let buf = decoder.read_buffer_exact(size);
            assert!(
                buf.capacity() - buf.len() >= size,
                "no room for {size} bytes"
            );
            buf.extend_from_slice(&input[fed..fed + size]);
        } else {
            decoder.extend(&input[fed..fed + size]);
        }
        fed += size;
        while let Some(frame) = decoder.next() {
            match frame {
                Frame::Entry { wire, entry } => {
                    assert!(wire.len() >= 4, "a frame without its length prefix");
                    let len = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
                    assert_eq!(len + 4, wire.len(), "wire bytes are not one frame");
                    assert_eq!(
                        &input[out.consumed..out.consumed + wire.len()],
                        &wire[..],
                        "wire bytes are not the input's"
                    );
                    let _ = entry;
                    out.consumed += wire.len();
                    out.frames.push((out.consumed - wire.len(), wire));
                }
                Frame::Skipped { bytes, reason } => {
                    assert!(bytes > 0, "an empty skip ({reason}) would loop forever");
                    out.skipped.push((out.consumed, bytes));
                    out.consumed += bytes;
                }
            }
            assert!(out.consumed <= fed, "consumed more than was fed");
        }
    }
    out.buffered = decoder.buffered_bytes();
    assert_eq!(
        out.consumed + out.buffered,
        input.len(),
        "bytes lost or counted twice: frames+skipped {} + buffered {} != input {}",
        out.consumed,
        out.buffered,
        input.len()
    );
    out
}

/// `exact`: chunks are read into `read_buffer_exact`, as the reader does;
/// otherwise they are handed to `extend`.
fn check(resyncing: bool, exact: bool, input: &[u8], chunks: &[usize], appended_at: Option<usize>) {
    let make = || {
        if resyncing {
            FrameDecoder::resyncing()
        } else {
            FrameDecoder::new()
        }
    };
    let split = decode(make(), input, chunks, true);
    let whole = decode(make(), input, &[input.len()], exact);
    let offsets = |d: &Decoded| d.frames.iter().map(|(at, _)| *at).collect::<Vec<_>>();
    assert_eq!(
        offsets(&split),
        offsets(&whole),
        "the frames found depend on the read sizes (resyncing={resyncing})"
    );
    assert_eq!(split.buffered, whole.buffered);
    if let Some(at) = appended_at {
        for d in [&split, &whole] {
            for &(start, len) in &d.skipped {
                assert!(
                    !(start <= at && at < start + len),
                    "the valid frame at {at} was skipped in a run {start}..{} (resyncing={resyncing})",
                    start + len
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(flags) = u.arbitrary::<u8>() else {
        return;
    };
    // Chunk sizes: from 1 byte to a few KiB.
    let chunks: Vec<usize> = (0..(flags & 7) + 1)
        .map(|_| u.int_in_range(1..=4200usize).unwrap_or(1))
        .collect();
    let tail = if flags & 8 != 0 {
        u.arbitrary::<Tail>().ok()
    } else {
        None
    };
    let garbage = u.take_rest();
    let mut input = garbage.to_vec();
    let appended_at = tail.map(|tail| {
        input.extend_from_slice(&encode_frame(&tail.entry()));
        garbage.len()
    });
    for resyncing in [false, true] {
        check(resyncing, flags & 16 != 0, &input, &chunks, appended_at);
    }
});
