//! A log line as the stages pass it on: plain data, no I/O.

/// The stream a line was written to; also its `source` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Stdout = 0,
    Stderr = 1,
}

impl Source {
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

/// One whole log line, without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub timestamp_ns: i64,
    pub source: Source,
    /// As printed; valid UTF-8 once [`prepare_for_loki`] has run.
    pub bytes: Vec<u8>,
}
