//! FIFO framing: reads a container's log FIFO and decodes its frames, each a
//! 4-byte big-endian length followed by a protobuf `LogEntry`.
//!
//! The daemon holds the FIFO open read-write, so EOF comes only when it
//! closes its end, after StopLogging has been answered. A frame that cannot be
//! decoded is skipped by its length and counted; the stream goes on.

use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt};

use tokio::sync::watch;

use crate::assemble::{Assembler, prepare_for_loki};
use crate::buffer::{ContainerBuffer, Throttle};
use crate::frame::FrameDecoder;
use crate::line::Line;
use crate::local_copy::ContainerLog;
use crate::proto::logdriver::LogEntry;

/// How a FIFO reader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The daemon closed its end: every line has been read.
    Eof,
    /// The plugin is shutting down; the FIFO may still hold lines.
    Stopped,
}

/// Reads `fifo` until EOF or `stop`, handing whole lines to `buffer`. Never
/// waits for anything but the FIFO itself.
pub async fn read_fifo<R: AsyncRead + Unpin>(
    mut fifo: R,
    mut assembler: Assembler,
    buffer: &ContainerBuffer,
    local_copy: Option<&ContainerLog>,
    mut stop: watch::Receiver<bool>,
) -> ReadEnd {
    let mut sink = LineSink {
        buffer,
        local_copy,
        disk_warning: Throttle::default(),
    };
    let mut decoder = FrameDecoder::new();
    let mut entry = LogEntry::default();
    let mut lines = Vec::with_capacity(256);
    let end = loop {
        let read = tokio::select! {
            biased;
            _ = stop.wait_for(|stopping| *stopping) => break ReadEnd::Stopped,
            read = fifo.read_buf(decoder.read_buffer()) => read,
        };
        match read {
            Ok(0) => break ReadEnd::Eof,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::warn!(container = %buffer.name(), error = %err, "reading the log FIFO failed; treating it as closed");
                break ReadEnd::Eof;
            }
        }
        while let Some(frame) = decoder.next_frame(&mut entry) {
            let result = frame
                .map_err(|e| e.to_string())
                .and_then(|()| assembler.push(&mut entry, &mut lines));
            if let Err(reason) = result {
                buffer.count_invalid_frame(&reason);
            }
        }
        sink.hand_over(&mut lines);
    };
    if end == ReadEnd::Eof && decoder.unfinished_bytes() > 0 {
        buffer.count_invalid_frame(&format!(
            "truncated frame: {} bytes at EOF",
            decoder.unfinished_bytes()
        ));
    }
    assembler.flush(&mut lines);
    sink.hand_over(&mut lines);
    end
}

/// Where whole lines go: the local copy as printed, then Loki's buffer.
struct LineSink<'a> {
    buffer: &'a ContainerBuffer,
    local_copy: Option<&'a ContainerLog>,
    disk_warning: Throttle,
}

impl LineSink<'_> {
    fn hand_over(&mut self, lines: &mut Vec<Line>) {
        if lines.is_empty() {
            return;
        }
        if let Some(Err(err)) = self.local_copy.map(|copy| copy.append(lines))
            && self.disk_warning.allow(Instant::now()).is_some()
        {
            tracing::warn!(container = %self.buffer.name(), error = %err, "writing the local copy for docker logs failed");
        }
        prepare_for_loki(lines);
        self.buffer.push(lines);
    }
}
