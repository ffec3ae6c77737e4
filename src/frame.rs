//! The FIFO's framing: each frame is a 4-byte big-endian length followed by
//! a protobuf `LogEntry`. The same codec reads the daemon's FIFO and writes
//! ReadLogs answers.
//!
//! A reader can land inside a frame (a plugin that restarted while an older
//! version had read half a frame) or meet a corrupt length. It then finds
//! the next frame by its shape: every frame the daemon writes starts with
//! its length and `0a 06 "stdout"` or `0a 06 "stderr"` (field 1, the
//! source, always comes first). Bytes skipped that way are reported, and no
//! more is skipped than needed to reach a frame that decodes.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;

use crate::proto::logdriver::LogEntry;

/// Bytes requested from a reader per read.
pub const READ_CHUNK: usize = 128 * 1024;
/// Largest frame accepted. The daemon writes at most ~16.5 KiB (it splits
/// lines at 16 KiB); larger lengths are corruption unless the frame has the
/// daemon's shape.
pub const MAX_FRAME: usize = 1 << 20;
/// The largest frame the daemon writes: a 16 KiB line and its metadata.
const DAEMON_MAX_FRAME: usize = 16 * 1024 + 1024;
/// Length prefix plus the shape bytes `0a 06 "stdout"`.
const SHAPE_LEN: usize = 4 + 8;

/// What the decoder found next in the byte stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A frame that decoded: its wire bytes (length prefix included) and entry.
    Entry { wire: Bytes, entry: LogEntry },
    /// Bytes that are not a frame, skipped to reach the next one.
    Skipped { bytes: usize, reason: &'static str },
}

/// Splits a byte stream into frames. `next` returns `None` when more bytes
/// are needed.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// The buffer starts where a frame is expected (the stream's start, or
    /// right after a frame that decoded). Out of sync, only a frame with the
    /// daemon's shape is believed.
    in_sync: bool,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            in_sync: true,
        }
    }

    /// A decoder that may start inside a frame (re-attaching to a FIFO).
    pub fn resyncing() -> FrameDecoder {
        FrameDecoder {
            in_sync: false,
            ..FrameDecoder::new()
        }
    }

    /// Appends bytes read elsewhere (a file, a socket) to be decoded.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.read_buffer_exact(bytes.len()).extend_from_slice(bytes);
    }

    /// The buffer to read `additional` bytes into. Decoded lines share the
    /// buffer they were read into (unless the journal points them into its
    /// records), so a new one is sized to what it will hold (the unfinished
    /// frame carried over, and this read): a line read alone keeps a few
    /// hundred bytes alive, not a whole chunk.
    pub fn read_buffer_exact(&mut self, additional: usize) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < additional {
            let mut fresh = BytesMut::with_capacity(self.buf.len() + additional);
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
        &mut self.buf
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Discards what is buffered (a truncated frame at EOF); returns its size.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        n
    }

    /// The next frame or skipped run; `None` when more bytes are needed.
    #[allow(clippy::should_implement_trait)] // `None` means "not yet", not "never"
    pub fn next(&mut self) -> Option<Frame> {
        if self.buf.is_empty() {
            // Every frame read is out: let go of the buffer, which only
            // the frames' lines may still need.
            self.buf = BytesMut::new();
        }
        if self.buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        let shaped = has_shape(&self.buf, 0);
        let believable = if self.in_sync {
            len <= DAEMON_MAX_FRAME || (len <= MAX_FRAME && shaped != Some(false))
        } else {
            len <= MAX_FRAME && shaped == Some(true)
        };
        if !believable {
            if !self.in_sync && shaped.is_none() {
                return None; // too few bytes to judge the shape yet
            }
            return Some(self.resync(1, "not a frame"));
        }
        if self.buf.len() < 4 + len {
            return None;
        }
        let wire = self.buf.split_to(4 + len).freeze();
        match LogEntry::decode(wire.slice(4..)) {
            Ok(entry) => {
                self.in_sync = true;
                Some(Frame::Entry { wire, entry })
            }
            Err(_) => {
                // Put the bytes back and look for a frame inside them.
                let mut rest = BytesMut::from(&wire[..]);
                rest.extend_from_slice(&self.buf);
                self.buf = rest;
                Some(self.resync(1, "undecodable frame"))
            }
        }
    }

    /// Skips to the next position (at or after `from`) that has a frame's
    /// shape, or to the last bytes that might begin one.
    fn resync(&mut self, from: usize, reason: &'static str) -> Frame {
        self.in_sync = false;
        let mut at = from;
        while at + SHAPE_LEN <= self.buf.len() {
            let len = u32::from_be_bytes([
                self.buf[at],
                self.buf[at + 1],
                self.buf[at + 2],
                self.buf[at + 3],
            ]) as usize;
            if len <= MAX_FRAME && has_shape(&self.buf, at) == Some(true) {
                break;
            }
            at += 1;
        }
        let skip = at
            .min(self.buf.len().saturating_sub(SHAPE_LEN - 1))
            .max(from.min(self.buf.len()));
        self.buf.advance(skip);
        Frame::Skipped {
            bytes: skip,
            reason,
        }
    }
}

/// Whether the frame starting at `at` begins like the daemon's frames;
/// `None` if too few bytes are there to tell.
fn has_shape(buf: &[u8], at: usize) -> Option<bool> {
    let body = buf.get(at + 4..at + SHAPE_LEN)?;
    Some(body == b"\x0a\x06stdout" || body == b"\x0a\x06stderr")
}

/// Frames one entry: length prefix and protobuf.
pub fn encode_frame(entry: &LogEntry) -> Bytes {
    let len = entry.encoded_len();
    let mut out = Vec::with_capacity(len + 4);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    entry.encode(&mut out).expect("a Vec grows as needed");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> LogEntry {
        LogEntry {
            source: "stdout".into(),
            time_nano: 7,
            line: Bytes::copy_from_slice(line.as_bytes()),
            ..LogEntry::default()
        }
    }

    /// Lines of the frames found, and the total of skipped bytes.
    fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> (Vec<String>, usize) {
        decoder.extend(bytes);
        let (mut lines, mut skipped) = (Vec::new(), 0);
        while let Some(frame) = decoder.next() {
            match frame {
                Frame::Entry { entry, .. } => {
                    lines.push(String::from_utf8_lossy(&entry.line).into_owned())
                }
                Frame::Skipped { bytes, .. } => skipped += bytes,
            }
        }
        (lines, skipped)
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let bytes = [encode_frame(&entry("one")), encode_frame(&entry("two"))].concat();
        let mut decoder = FrameDecoder::new();
        let mut lines = Vec::new();
        for chunk in bytes.chunks(3) {
            lines.extend(decode_all(&mut decoder, chunk).0);
        }
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn the_wire_bytes_are_the_frame_as_read() {
        let bytes = encode_frame(&entry("one"));
        let mut decoder = FrameDecoder::new();
        decoder.extend(&bytes);
        let Some(Frame::Entry { wire, .. }) = decoder.next() else {
            panic!("no frame")
        };
        assert_eq!(wire, bytes);
    }

    #[test]
    fn an_undecodable_frame_costs_only_its_own_bytes() {
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        let bytes = [&garbage[..], &encode_frame(&entry("after"))].concat();
        let (lines, skipped) = decode_all(&mut FrameDecoder::new(), &bytes);
        assert_eq!(lines, ["after"]);
        assert_eq!(skipped, garbage.len());
    }

    #[test]
    fn a_garbage_length_does_not_swallow_later_frames() {
        // A corrupt length of ~4 GiB, then good frames: only the 4 bytes go.
        let good: Vec<u8> = (0..100)
            .flat_map(|i| encode_frame(&entry(&format!("line {i}"))).to_vec())
            .collect();
        let bytes = [&[0xff, 0xff, 0xff, 0xfe][..], &good].concat();
        let (lines, skipped) = decode_all(&mut FrameDecoder::new(), &bytes);
        assert_eq!(lines.len(), 100);
        assert_eq!(skipped, 4);
    }

    #[test]
    fn a_reader_starting_mid_frame_finds_the_next_frame_by_its_shape() {
        let long = "x".repeat(10_000);
        let first = encode_frame(&entry(&long));
        let rest: Vec<u8> = (0..5)
            .flat_map(|i| encode_frame(&entry(&format!("next {i}"))).to_vec())
            .collect();
        // Start 3,000 bytes into the first frame, as after a restart.
        let bytes = [&first[3000..], &rest[..]].concat();
        for chunk_size in [1, 7, 4096, bytes.len()] {
            let mut decoder = FrameDecoder::resyncing();
            let (mut lines, mut skipped) = (Vec::new(), 0);
            for chunk in bytes.chunks(chunk_size) {
                let (l, s) = decode_all(&mut decoder, chunk);
                lines.extend(l);
                skipped += s;
            }
            assert_eq!(
                lines,
                (0..5).map(|i| format!("next {i}")).collect::<Vec<_>>()
            );
            assert_eq!(skipped, first.len() - 3000, "chunks of {chunk_size}");
        }
    }

    #[test]
    fn a_line_containing_a_frame_shape_is_not_mistaken_for_one() {
        // Inside a well-formed stream, frame lengths are trusted.
        let tricky = encode_frame(&entry("\0\0\0\x10\x0a\x06stdout inside"));
        let bytes = [&tricky[..], &encode_frame(&entry("after"))].concat();
        let (lines, skipped) = decode_all(&mut FrameDecoder::new(), &bytes);
        assert_eq!(lines.len(), 2);
        assert_eq!(skipped, 0);
    }

    #[test]
    fn an_oversized_length_is_skipped_without_buffering() {
        let mut decoder = FrameDecoder::new();
        let len = (MAX_FRAME + 10) as u32;
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend(vec![0u8; 200_000]);
        bytes.extend_from_slice(&encode_frame(&entry("resync")));
        let (lines, skipped) = decode_all(&mut decoder, &bytes);
        assert_eq!(lines, ["resync"]);
        assert_eq!(skipped, 200_004);
    }

    #[test]
    fn a_truncated_frame_stays_buffered() {
        let bytes = encode_frame(&entry("cut short"));
        let mut decoder = FrameDecoder::new();
        assert!(
            decode_all(&mut decoder, &bytes[..bytes.len() - 2])
                .0
                .is_empty()
        );
        assert_eq!(decoder.discard_buffered(), bytes.len() - 2);
    }

    #[test]
    fn recorded_fifo_decodes_into_thirteen_frames() {
        let bytes = include_bytes!("../../shared/fixtures/daemon-20.10/start-logging.fifo.bin");
        let (lines, skipped) = decode_all(&mut FrameDecoder::new(), bytes);
        assert_eq!((lines.len(), skipped), (13, 0));
        // The same stream found again from any starting point.
        let (lines, _) = decode_all(&mut FrameDecoder::resyncing(), &bytes[5..]);
        assert_eq!(lines.len(), 12);
    }
}
