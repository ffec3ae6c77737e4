//! Entry assembly: turns decoded `LogEntry` frames into whole lines.
//!
//! The daemon cuts lines longer than 16 KiB into partial frames that share an
//! `id` and the first piece's timestamp; the last piece has `last=true` and may
//! be empty. At EOF an unterminated remainder arrives with `last=false` and
//! nothing after it, so [`Assembler::flush`] emits whatever is pending.
//!
//! Lines come out exactly as the container printed them (the journal keeps
//! them so for `docker logs`), except that lines longer than the maximum
//! line size are cut into consecutive pieces of at most that size, at
//! character boundaries, so Loki does not reject them and memory stays bounded.
//!
//! Every frame has a journal position ([`Seq`]); each line carries the
//! position its source's delivery cursor may move to once it is delivered
//! (see [`Line::ack`]). The same assembler reads the FIFO and replays the
//! journal, so both produce the same lines with the same positions.

use bytes::{Bytes, BytesMut};

use crate::line::{Line, Seq, Source};
use crate::proto::logdriver::LogEntry;

/// A line still being joined from partial frames.
#[derive(Debug)]
struct Partial {
    id: String,
    timestamp_ns: i64,
    first_seq: Seq,
    last_seq: Seq,
    bytes: BytesMut,
}

/// Joins partial frames, one pending line per source: stdout and stderr are
/// copied by separate daemon goroutines, so their pieces may interleave.
#[derive(Debug)]
pub struct Assembler {
    pending: [Option<Partial>; 2],
    max_line: usize,
    /// Replaying from a cursor: a continuation piece whose line began before
    /// the replay's start belongs to a line already delivered; skip it.
    skip_orphans: bool,
}

impl Assembler {
    pub fn new(max_line: usize) -> Assembler {
        Assembler {
            pending: [None, None],
            max_line: max_line.max(4),
            skip_orphans: false,
        }
    }

    /// An assembler for reading the journal from a delivery cursor.
    pub fn replaying(max_line: usize) -> Assembler {
        Assembler {
            skip_orphans: true,
            ..Assembler::new(max_line)
        }
    }

    /// Whether a line of `source` is still being joined.
    pub fn is_joining(&self, source: Source) -> bool {
        self.pending[source as usize].is_some()
    }

    /// Per source, the first record of the line still being joined.
    pub fn joining_since(&self) -> [Option<Seq>; 2] {
        [0, 1].map(|s| self.pending[s].as_ref().map(|p| p.first_seq))
    }

    /// Takes one decoded frame, the record `seq`; appends completed lines to
    /// `out`. Errors name what was wrong with the frame.
    pub fn push(&mut self, entry: LogEntry, seq: Seq, out: &mut Vec<Line>) -> Result<(), String> {
        let source = Source::parse(&entry.source)
            .ok_or_else(|| format!("unknown source {:?}", entry.source))?;
        let meta = entry.partial_log_metadata.filter(|_| entry.partial);
        let Some(meta) = meta else {
            self.flush_source(source, out);
            self.emit(entry.time_nano, source, entry.line, seq, seq + 1, out);
            return Ok(());
        };
        let slot = &mut self.pending[source as usize];
        if slot.as_ref().is_some_and(|p| p.id != meta.id) {
            self.flush_source(source, out);
        }
        let slot = &mut self.pending[source as usize];
        match slot {
            Some(partial) => {
                partial.bytes.extend_from_slice(&entry.line);
                partial.last_seq = seq;
            }
            None if self.skip_orphans && meta.ordinal > 1 => return Ok(()),
            None => {
                *slot = Some(Partial {
                    id: meta.id,
                    timestamp_ns: entry.time_nano,
                    first_seq: seq,
                    last_seq: seq,
                    bytes: BytesMut::from(&entry.line[..]),
                });
            }
        }
        self.emit_full_pieces(source, out);
        if meta.last {
            self.flush_source(source, out);
        }
        Ok(())
    }

    /// Emits every unfinished line (at EOF, or at the end of a replay).
    pub fn flush(&mut self, out: &mut Vec<Line>) {
        self.flush_source(Source::Stdout, out);
        self.flush_source(Source::Stderr, out);
    }

    /// Emits the unfinished line of `source`, if any.
    pub fn flush_source(&mut self, source: Source, out: &mut Vec<Line>) {
        if let Some(p) = self.pending[source as usize].take() {
            let bytes = p.bytes.freeze();
            self.emit(
                p.timestamp_ns,
                source,
                bytes,
                p.first_seq,
                p.last_seq + 1,
                out,
            );
        }
    }

    /// Keeps a pending line under the maximum size by emitting its full
    /// pieces; they are acknowledged at the line's start (see [`Line::ack`]).
    fn emit_full_pieces(&mut self, source: Source, out: &mut Vec<Line>) {
        let max_line = self.max_line;
        while let Some(partial) = self.pending[source as usize].as_mut() {
            if partial.bytes.len() <= max_line {
                break;
            }
            let cut = char_boundary(&partial.bytes, max_line);
            out.push(Line {
                timestamp_ns: partial.timestamp_ns,
                source,
                bytes: partial.bytes.split_to(cut).freeze(),
                ack: partial.first_seq,
                piece: true,
            });
        }
    }

    /// Emits a whole line, cut into pieces if it is over the maximum: every
    /// piece but the last is acknowledged at `first`, the last at `end`.
    fn emit(
        &self,
        timestamp_ns: i64,
        source: Source,
        mut bytes: Bytes,
        first: Seq,
        end: Seq,
        out: &mut Vec<Line>,
    ) {
        while bytes.len() > self.max_line {
            let cut = char_boundary(&bytes, self.max_line);
            out.push(Line {
                timestamp_ns,
                source,
                bytes: bytes.split_to(cut),
                ack: first,
                piece: true,
            });
        }
        out.push(Line {
            timestamp_ns,
            source,
            bytes,
            ack: end,
            piece: false,
        });
    }
}

/// The largest cut at or below `max` that does not split a UTF-8 sequence
/// (at least 1 byte, so progress is guaranteed).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut cut = max;
    while cut > max.saturating_sub(3) && cut > 1 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::DEFAULT_MAX_LINE_SIZE;
    use crate::proto::logdriver::PartialLogEntryMetadata;

    fn full(source: &str, ts: i64, line: &[u8]) -> LogEntry {
        LogEntry {
            source: source.into(),
            time_nano: ts,
            line: Bytes::copy_from_slice(line),
            ..LogEntry::default()
        }
    }

    fn part(source: &str, ts: i64, line: &[u8], id: &str, ordinal: i32, last: bool) -> LogEntry {
        LogEntry {
            partial: true,
            partial_log_metadata: Some(PartialLogEntryMetadata {
                last,
                id: id.into(),
                ordinal,
            }),
            ..full(source, ts, line)
        }
    }

    /// Runs entries through an assembler; record i has seq 100 + i.
    fn run_with(mut assembler: Assembler, entries: Vec<LogEntry>) -> Vec<Line> {
        let mut out = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            assembler.push(entry, 100 + i as u64, &mut out).unwrap();
        }
        assembler.flush(&mut out);
        out
    }

    fn run(entries: Vec<LogEntry>, max_line: usize) -> Vec<Line> {
        run_with(Assembler::new(max_line), entries)
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8(l.bytes.to_vec()).unwrap())
            .collect()
    }

    fn acks(lines: &[Line]) -> Vec<Seq> {
        lines.iter().map(|l| l.ack).collect()
    }

    #[test]
    fn joins_partials_with_the_first_timestamp() {
        let lines = run(
            vec![
                part("stdout", 10, b"aaa", "x", 1, false),
                part("stdout", 10, b"bbb", "x", 2, false),
                part("stdout", 10, b"cc", "x", 3, true),
            ],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(texts(&lines), ["aaabbbcc"]);
        assert_eq!(lines[0].timestamp_ns, 10);
        assert_eq!(acks(&lines), [103], "acknowledged after its last record");
    }

    #[test]
    fn an_empty_last_piece_ends_the_line() {
        let lines = run(
            vec![
                part("stdout", 1, b"16k", "y", 1, false),
                part("stdout", 1, b"", "y", 2, true),
                full("stdout", 2, b"next"),
            ],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(texts(&lines), ["16k", "next"]);
        assert_eq!(acks(&lines), [102, 103]);
    }

    #[test]
    fn interleaved_sources_are_joined_separately() {
        let lines = run(
            vec![
                part("stdout", 1, b"out-", "o", 1, false),
                full("stderr", 2, b"err line"),
                part("stderr", 3, b"err-", "e", 1, false),
                part("stdout", 1, b"end", "o", 2, true),
                part("stderr", 3, b"end", "e", 2, true),
            ],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(texts(&lines), ["err line", "out-end", "err-end"]);
        assert_eq!(lines[1].source, Source::Stdout);
        assert_eq!(acks(&lines), [102, 104, 105]);
    }

    #[test]
    fn unfinished_line_is_flushed_at_the_end() {
        let lines = run(
            vec![part("stdout", 5, b"tail-without-newline", "t", 1, false)],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(texts(&lines), ["tail-without-newline"]);
    }

    #[test]
    fn a_new_id_flushes_the_previous_group() {
        let lines = run(
            vec![
                part("stdout", 1, b"lost-end", "a", 1, false),
                part("stdout", 2, b"b", "b", 1, true),
            ],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(texts(&lines), ["lost-end", "b"]);
    }

    #[test]
    fn lines_come_out_as_printed() {
        let lines = run(
            vec![
                full("stdout", 1, b""),
                full("stdout", 2, b"   \t"),
                full("stdout", 3, b"\xff\xfe x"),
            ],
            100,
        );
        let bytes: Vec<&[u8]> = lines.iter().map(|l| &l.bytes[..]).collect();
        assert_eq!(bytes, [&b""[..], b"   \t", b"\xff\xfe x"]);
    }

    #[test]
    fn long_lines_are_cut_at_the_maximum_on_char_boundaries() {
        let lines = run(vec![full("stdout", 1, "aé".repeat(6).as_bytes())], 8);
        let texts = texts(&lines);
        assert!(texts.iter().all(|t| t.len() <= 8), "{texts:?}");
        assert_eq!(texts.concat(), "aé".repeat(6));
        let joined = run(
            vec![
                part("stdout", 1, &[b'x'; 10], "p", 1, false),
                part("stdout", 1, &[b'y'; 10], "p", 2, true),
            ],
            8,
        );
        assert_eq!(
            joined.iter().map(|l| l.bytes.len()).collect::<Vec<_>>(),
            [8, 8, 4]
        );
        // Pieces are acknowledged at the line's start, the last at its end.
        assert_eq!(acks(&joined), [100, 100, 102]);
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_one_piece() {
        let lines = run(
            vec![
                part("stdout", 1, &[b'x'; 8], "p", 1, false),
                part("stdout", 1, b"", "p", 2, true),
            ],
            8,
        );
        assert_eq!(texts(&lines), ["xxxxxxxx"]);
        assert_eq!(acks(&lines), [102]);
    }

    #[test]
    fn a_replay_skips_the_rest_of_a_line_delivered_before_its_start() {
        let lines = run_with(
            Assembler::replaying(DEFAULT_MAX_LINE_SIZE),
            vec![
                part("stdout", 1, b"end of an old line", "old", 3, true),
                full("stdout", 2, b"next"),
            ],
        );
        assert_eq!(texts(&lines), ["next"]);
        let live = run(
            vec![part("stdout", 1, b"end of an old line", "old", 3, true)],
            DEFAULT_MAX_LINE_SIZE,
        );
        assert_eq!(
            texts(&live),
            ["end of an old line"],
            "live reading keeps it"
        );
    }

    #[test]
    fn unknown_source_is_an_error() {
        let mut assembler = Assembler::new(100);
        let err = assembler
            .push(full("stdin", 1, b"x"), 0, &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("stdin"));
    }
}
