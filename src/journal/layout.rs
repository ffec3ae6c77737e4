//! What a journal directory holds, as data: its segments and its cursor
//! file's text. The writer, retention and the legacy migration all read
//! and write these; none of them owns them.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::record::SegmentFile;
use crate::line::Seq;

/// A segment on disk.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub first_seq: Seq,
    /// First record of the next segment; `None` for the one being written.
    pub end_seq: Option<Seq>,
    pub bytes: u64,
    pub compressed: bool,
    /// Last write, for age-based retention.
    pub modified: SystemTime,
}

impl Segment {
    pub fn path(&self, dir: &Path) -> PathBuf {
        let raw = SegmentFile::raw(dir, self.first_seq);
        if self.compressed {
            raw.with_extension("sz")
        } else {
            raw
        }
    }
}

/// How far a cursor without a recorded end may be ahead of the journal's
/// end and still be believed: the records the writer may have had queued
/// (8 MiB of them) when the plugin was killed.
pub(super) const CURSOR_AHEAD_SLACK: u64 = 1 << 20;

/// A cursor file: `v1 <stdout> <stderr> [<end>]`.
pub(super) fn parse_cursor(text: &str) -> Option<[Seq; 2]> {
    let mut words = text.split_whitespace();
    if words.next()? != "v1" {
        return None;
    }
    Some([words.next()?.parse().ok()?, words.next()?.parse().ok()?])
}

/// The fourth number of a cursor file, if there is one: the next record
/// number after what was written to disk. (Versions that wrote three
/// numbers read the first three of four.)
pub(super) fn parse_cursor_end(text: &str) -> Option<Seq> {
    text.split_whitespace().nth(3)?.parse().ok()
}

pub(super) fn format_cursor(cursor: [Seq; 2], end: Seq) -> String {
    format!("v1 {} {} {end}\n", cursor[0], cursor[1])
}
