//! The FIFO's framing: each frame is a 4-byte big-endian length followed by
//! a protobuf `LogEntry`. The same codec reads the daemon's FIFO and writes
//! ReadLogs answers.

use bytes::{Buf, BytesMut};
use prost::Message;

use crate::proto::logdriver::LogEntry;

/// Bytes requested from the FIFO per read (the kernel pipe holds 64 KiB).
const READ_CHUNK: usize = 128 * 1024;
/// Frames are at most ~16.5 KiB (the daemon splits lines at 16 KiB); larger
/// lengths mean corruption, and their bytes are discarded rather than buffered.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("undecodable frame of {len} bytes: {reason}")]
    Undecodable { len: usize, reason: String },
    #[error("frame length {len} exceeds {MAX_FRAME} bytes; skipping it")]
    Oversized { len: usize },
}

/// Splits a byte stream into frames. `Ok(None)`-style contract: `next_frame`
/// returns `None` when more bytes are needed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// Bytes of an oversized frame still to be discarded.
    skipping: usize,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::with_capacity(READ_CHUNK),
            skipping: 0,
        }
    }

    /// The buffer to read into, with room for one more chunk.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.buf.reserve(READ_CHUNK);
        &mut self.buf
    }

    /// Decodes the next complete frame into `entry` (reusing its buffers).
    pub fn next_frame(&mut self, entry: &mut LogEntry) -> Option<Result<(), FrameError>> {
        if self.skipping > 0 {
            let n = self.skipping.min(self.buf.len());
            self.buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return None;
            }
        }
        if self.buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME {
            self.buf.advance(4);
            self.skipping = len;
            return Some(Err(FrameError::Oversized { len }));
        }
        if self.buf.len() < 4 + len {
            return None;
        }
        entry.clear();
        let result = entry
            .merge(&self.buf[4..4 + len])
            .map_err(|err| FrameError::Undecodable {
                len,
                reason: err.to_string(),
            });
        self.buf.advance(4 + len);
        Some(result)
    }

    /// Bytes of a frame that was started but not finished (a truncated frame at EOF).
    pub fn unfinished_bytes(&self) -> usize {
        self.buf.len() + self.skipping
    }

    /// Bytes held for a frame not yet complete (not counting bytes still to skip).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entry: &LogEntry) -> Vec<u8> {
        let body = entry.encode_to_vec();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn entry(line: &str) -> LogEntry {
        LogEntry {
            source: "stdout".into(),
            time_nano: 7,
            line: line.as_bytes().to_vec(),
            ..LogEntry::default()
        }
    }

    fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        decoder.read_buffer().extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut entry = LogEntry::default();
        while let Some(result) = decoder.next_frame(&mut entry) {
            out.push(result.map(|()| std::mem::take(&mut entry.line)));
        }
        out
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let bytes = [frame(&entry("one")), frame(&entry("two"))].concat();
        let mut decoder = FrameDecoder::new();
        let mut lines = Vec::new();
        for chunk in bytes.chunks(3) {
            lines.extend(decode_all(&mut decoder, chunk));
        }
        assert_eq!(lines, [Ok(b"one".to_vec()), Ok(b"two".to_vec())]);
        assert_eq!(decoder.unfinished_bytes(), 0);
    }

    #[test]
    fn an_undecodable_frame_is_skipped_by_its_length() {
        let bytes = [vec![0, 0, 0, 3, 0xff, 0xff, 0xff], frame(&entry("after"))].concat();
        let results = decode_all(&mut FrameDecoder::new(), &bytes);
        assert!(matches!(
            results[0],
            Err(FrameError::Undecodable { len: 3, .. })
        ));
        assert_eq!(results[1], Ok(b"after".to_vec()));
    }

    #[test]
    fn an_oversized_length_is_skipped_without_buffering() {
        let len = (MAX_FRAME + 10) as u32;
        let mut decoder = FrameDecoder::new();
        let first = decode_all(&mut decoder, &len.to_be_bytes());
        assert_eq!(
            first,
            [Err(FrameError::Oversized {
                len: MAX_FRAME + 10
            })]
        );
        assert!(decode_all(&mut decoder, &vec![0u8; MAX_FRAME]).is_empty());
        assert!(
            decoder.buf.len() < READ_CHUNK * 2,
            "skipped bytes must not accumulate"
        );
        let rest = [vec![0u8; 10], frame(&entry("resync"))].concat();
        assert_eq!(decode_all(&mut decoder, &rest), [Ok(b"resync".to_vec())]);
    }

    #[test]
    fn a_truncated_frame_is_reported() {
        let bytes = frame(&entry("cut short"));
        let mut decoder = FrameDecoder::new();
        assert!(decode_all(&mut decoder, &bytes[..bytes.len() - 2]).is_empty());
        assert_eq!(decoder.unfinished_bytes(), bytes.len() - 2);
    }

    #[test]
    fn recorded_fifo_decodes_into_thirteen_frames() {
        let bytes = include_bytes!("../../shared/fixtures/daemon-20.10/start-logging.fifo.bin");
        let results = decode_all(&mut FrameDecoder::new(), bytes);
        assert_eq!(results.len(), 13);
        assert!(results.iter().all(Result::is_ok));
    }
}
