//! A log line as the stages pass it on: plain data, no I/O.

use bytes::Bytes;

/// The stream a line was written to; also its `source` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Stdout = 0,
    Stderr = 1,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Stdout, Source::Stderr];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stdout => "stdout",
            Source::Stderr => "stderr",
        }
    }

    pub fn parse(value: &str) -> Option<Source> {
        match value {
            "stdout" => Some(Source::Stdout),
            "stderr" => Some(Source::Stderr),
            _ => None,
        }
    }
}

/// A position in a container's journal: the sequence number of a record
/// (one FIFO frame). Numbers only grow; they are never reused.
pub type Seq = u64;

/// One whole log line, without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub timestamp_ns: i64,
    pub source: Source,
    /// As printed (any bytes); [`for_loki`] makes them valid UTF-8.
    pub bytes: Bytes,
    /// Where this source's delivery cursor moves once the line is delivered:
    /// every line of this source that starts before `ack` is then done. For
    /// a whole line that is its last record + 1; for a piece cut from a line
    /// longer than the maximum, it is the line's first record, so a replay
    /// re-sends the whole line rather than losing its rest.
    pub ack: Seq,
    /// A piece cut from a line longer than the maximum, not its last: its
    /// `ack` is the line's first record, not one past its last.
    pub piece: bool,
}

impl Line {
    /// Memory a held line costs: its bytes plus the bookkeeping around them
    /// (the `Line` itself in a queue slot, and the shared buffer's header),
    /// so a million 1-byte lines cannot hide behind a small byte count.
    pub fn cost(&self) -> usize {
        self.bytes.len() + LINE_OVERHEAD
    }

    /// Whether the line is before record `seq`: a whole line whose last
    /// record (`ack - 1`) is, or a piece whose line starts before it
    /// (`ack`). A line that starts at `seq` is not, whole or in pieces: a
    /// run whose first record is `seq` read it, and a segment that ends at
    /// `seq` does not hold its start.
    pub fn is_before(&self, seq: Seq) -> bool {
        match self.piece {
            true => self.ack < seq,
            false => self.ack <= seq,
        }
    }

    /// Whether Loki should get this line: Grafana's driver skips lines that
    /// are empty or only whitespace, and so does this plugin.
    pub fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// Bookkeeping memory per held line beyond its bytes.
pub const LINE_OVERHEAD: usize = std::mem::size_of::<Line>() + 32;

/// The line as Loki gets it: each invalid UTF-8 sequence replaced with
/// U+FFFD. Loki's query API returns JSON strings, which would show the same
/// replacement characters, and a valid line is accepted by every Loki
/// version and push format. Valid lines (nearly all) are not copied.
pub fn for_loki(bytes: &Bytes) -> Bytes {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.clone(),
        Err(_) => Bytes::from(String::from_utf8_lossy(bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_gets_valid_utf8_and_no_copy_of_valid_lines() {
        let valid = Bytes::from_static("héllo".as_bytes());
        assert_eq!(for_loki(&valid).as_ptr(), valid.as_ptr());
        let invalid = Bytes::from_static(b"\xff\xfe x");
        assert_eq!(&for_loki(&invalid)[..], "\u{fffd}\u{fffd} x".as_bytes());
    }

    #[test]
    fn blank_lines_are_recognized() {
        let line = |b: &'static [u8]| Line {
            timestamp_ns: 0,
            source: Source::Stdout,
            bytes: Bytes::from_static(b),
            ack: 0,
            piece: false,
        };
        assert!(line(b"").is_blank() && line(b" \t\r").is_blank());
        assert!(!line(b" x ").is_blank());
        assert!(line(b"x").cost() > 1, "a line costs more than its bytes");
    }
}
