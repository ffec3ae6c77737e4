//! Entry assembly: turns decoded `LogEntry` frames into whole lines.
//!
//! The daemon cuts lines longer than 16 KiB into partial frames that share an
//! `id` and the first piece's timestamp; the last piece has `last=true` and may
//! be empty. At EOF an unterminated remainder arrives with `last=false` and
//! nothing after it, so [`Assembler::flush`] emits whatever is pending.
//!
//! Lines come out exactly as the container printed them (the local copy for
//! `docker logs` keeps them so), except that lines longer than the maximum
//! line size are cut into consecutive pieces of at most that size, at
//! character boundaries, so Loki does not reject them and memory stays bounded.
//!
//! [`prepare_for_loki`] then drops whitespace-only lines and replaces each
//! invalid UTF-8 sequence with U+FFFD: Loki's query API returns JSON strings,
//! which would show the same replacement characters, and a valid line is
//! accepted by every Loki version and every push format.

use crate::line::{Line, Source};
use crate::proto::logdriver::LogEntry;

/// Drops whitespace-only lines and makes every line valid UTF-8. Valid lines
/// (nearly all) are neither copied nor reallocated.
pub fn prepare_for_loki(lines: &mut Vec<Line>) {
    lines.retain(|line| !line.bytes.iter().all(u8::is_ascii_whitespace));
    for line in lines.iter_mut() {
        if std::str::from_utf8(&line.bytes).is_err() {
            line.bytes = String::from_utf8_lossy(&line.bytes)
                .into_owned()
                .into_bytes();
        }
    }
}

/// A line still being joined from partial frames.
#[derive(Debug)]
struct Partial {
    id: String,
    timestamp_ns: i64,
    bytes: Vec<u8>,
}

/// Joins partial frames, one pending line per source: stdout and stderr are
/// copied by separate daemon goroutines, so their pieces may interleave.
#[derive(Debug)]
pub struct Assembler {
    pending: [Option<Partial>; 2],
    max_line: usize,
}

impl Assembler {
    pub fn new(max_line: usize) -> Assembler {
        Assembler {
            pending: [None, None],
            max_line: max_line.max(4),
        }
    }

    /// Takes one decoded frame; appends completed lines to `out`. The entry's
    /// line buffer is moved out, not copied. Errors name what was wrong.
    pub fn push(&mut self, entry: &mut LogEntry, out: &mut Vec<Line>) -> Result<(), String> {
        let source = Source::parse(&entry.source)
            .ok_or_else(|| format!("unknown source {:?}", entry.source))?;
        let bytes = std::mem::take(&mut entry.line);
        let meta = entry
            .partial_log_metadata
            .as_ref()
            .filter(|_| entry.partial);
        let Some(meta) = meta else {
            self.flush_source(source, out);
            self.emit(entry.time_nano, source, bytes, out);
            return Ok(());
        };
        let slot = &mut self.pending[source as usize];
        if slot.as_ref().is_some_and(|p| p.id != meta.id) {
            self.flush_source(source, out);
        }
        let slot = &mut self.pending[source as usize];
        match slot {
            Some(partial) => partial.bytes.extend_from_slice(&bytes),
            None => {
                *slot = Some(Partial {
                    id: meta.id.clone(),
                    timestamp_ns: entry.time_nano,
                    bytes,
                });
            }
        }
        let last = meta.last;
        self.emit_full_pieces(source, out);
        if last {
            self.flush_source(source, out);
        }
        Ok(())
    }

    /// Emits every unfinished line (at EOF or when logging stops).
    pub fn flush(&mut self, out: &mut Vec<Line>) {
        self.flush_source(Source::Stdout, out);
        self.flush_source(Source::Stderr, out);
    }

    fn flush_source(&mut self, source: Source, out: &mut Vec<Line>) {
        if let Some(partial) = self.pending[source as usize].take() {
            self.emit(partial.timestamp_ns, source, partial.bytes, out);
        }
    }

    /// Keeps a pending line under the maximum size by emitting its full pieces.
    fn emit_full_pieces(&mut self, source: Source, out: &mut Vec<Line>) {
        let max_line = self.max_line;
        while let Some(partial) = self.pending[source as usize].as_mut() {
            if partial.bytes.len() <= max_line {
                break;
            }
            let cut = char_boundary(&partial.bytes, max_line);
            let rest = partial.bytes.split_off(cut);
            let piece = std::mem::replace(&mut partial.bytes, rest);
            let timestamp_ns = partial.timestamp_ns;
            self.emit(timestamp_ns, source, piece, out);
        }
    }

    fn emit(&self, timestamp_ns: i64, source: Source, bytes: Vec<u8>, out: &mut Vec<Line>) {
        if bytes.len() <= self.max_line {
            out.push(Line {
                timestamp_ns,
                source,
                bytes,
            });
            return;
        }
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let cut = char_boundary(rest, self.max_line);
            out.push(Line {
                timestamp_ns,
                source,
                bytes: rest[..cut].to_vec(),
            });
            rest = &rest[cut..];
        }
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
            line: line.to_vec(),
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

    fn run(entries: Vec<LogEntry>, max_line: usize) -> Vec<Line> {
        let mut assembler = Assembler::new(max_line);
        let mut out = Vec::new();
        for mut entry in entries {
            assembler.push(&mut entry, &mut out).unwrap();
        }
        assembler.flush(&mut out);
        out
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8(l.bytes.clone()).unwrap())
            .collect()
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
        let bytes: Vec<&[u8]> = lines.iter().map(|l| l.bytes.as_slice()).collect();
        assert_eq!(bytes, [&b""[..], b"   \t", b"\xff\xfe x"]);
    }

    #[test]
    fn loki_gets_no_blank_lines_and_valid_utf8() {
        let mut lines = run(
            vec![
                full("stdout", 1, b""),
                full("stdout", 2, b"   \t"),
                full("stdout", 3, b" x "),
                full("stdout", 4, b"\xff\xfe invalid utf8"),
            ],
            100,
        );
        prepare_for_loki(&mut lines);
        assert_eq!(texts(&lines), [" x ", "\u{fffd}\u{fffd} invalid utf8"]);
        assert!(lines.iter().all(|l| std::str::from_utf8(&l.bytes).is_ok()));
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
    }

    #[test]
    fn unknown_source_is_an_error() {
        let mut assembler = Assembler::new(100);
        let err = assembler
            .push(&mut full("stdin", 1, b"x"), &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("stdin"));
    }
}
