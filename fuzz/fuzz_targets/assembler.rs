//! Sequences of `LogEntry`s (full lines, partial pieces with arbitrary
//! metadata, unknown sources) through the partial-line `Assembler`, live
//! and replaying, with a small maximum line size.
//!
//! Invariants:
//! - it never panics; an unknown source is an error that emits nothing;
//! - no line is longer than the maximum (at least 4);
//! - per source, acknowledgements never go backwards and never pass the
//!   records pushed so far;
//! - live: per source, the emitted bytes, concatenated, are exactly the
//!   pushed bytes, concatenated (nothing lost, duplicated or reordered);
//! - replaying: the same, except that whole pieces continuing a line that
//!   began before the replay (ordinal > 1) may be left out.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::assemble::Assembler;
use loki_logdriver::line::{Line, Source};
use loki_logdriver::proto::logdriver::{LogEntry, PartialLogEntryMetadata};

#[derive(Debug, Arbitrary)]
enum SourceChoice {
    Stdout,
    Stderr,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Meta {
    /// A few ids, so pieces of a line meet each other.
    id: u8,
    ordinal: i32,
    last: bool,
}

#[derive(Debug, Arbitrary)]
struct Piece {
    source: SourceChoice,
    time_nano: i64,
    partial: bool,
    meta: Option<Meta>,
    line: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    replaying: bool,
    max_line: u8,
    first_seq: u32,
    pieces: Vec<Piece>,
}

fn source_of(piece: &Piece) -> Option<Source> {
    match &piece.source {
        SourceChoice::Stdout => Some(Source::Stdout),
        SourceChoice::Stderr => Some(Source::Stderr),
        SourceChoice::Other(s) => Source::parse(s),
    }
}

/// Whether `out` is `pieces` concatenated, some whole pieces left out
/// (only those for which `optional` is true).
fn is_concat_with_skips(out: &[u8], pieces: &[(&[u8], bool)]) -> bool {
    // reachable[p]: a prefix of the pieces seen so far can make out[..p].
    let mut reachable = vec![false; out.len() + 1];
    reachable[0] = true;
    for (bytes, optional) in pieces {
        let mut next = vec![false; out.len() + 1];
        for p in 0..=out.len() {
            if !reachable[p] {
                continue;
            }
            if *optional {
                next[p] = true;
            }
            if out[p..].starts_with(bytes) {
                next[p + bytes.len()] = true;
            }
        }
        reachable = next;
    }
    reachable[out.len()]
}

fuzz_target!(|input: Input| {
    let max_line = input.max_line as usize % 64;
    let mut assembler = if input.replaying {
        Assembler::replaying(max_line)
    } else {
        Assembler::new(max_line)
    };
    let limit = max_line.max(4);
    let first = u64::from(input.first_seq);
    let mut out: Vec<Line> = Vec::new();
    let mut pushed: [Vec<(&[u8], bool)>; 2] = [Vec::new(), Vec::new()];
    let mut seq = first;
    for piece in &input.pieces {
        let entry = LogEntry {
            source: match &piece.source {
                SourceChoice::Stdout => "stdout".into(),
                SourceChoice::Stderr => "stderr".into(),
                SourceChoice::Other(s) => s.clone(),
            },
            time_nano: piece.time_nano,
            line: Bytes::copy_from_slice(&piece.line),
            partial: piece.partial,
            partial_log_metadata: piece.meta.as_ref().map(|m| PartialLogEntryMetadata {
                last: m.last,
                id: format!("id{}", m.id % 4),
                ordinal: m.ordinal,
            }),
            ..LogEntry::default()
        };
        let before = out.len();
        let result = assembler.push(entry, seq, &mut out);
        match source_of(piece) {
            Some(source) => {
                assert!(result.is_ok(), "{result:?}");
                // A continuation piece may be skipped by a replay.
                let continuation =
                    piece.partial && piece.meta.as_ref().is_some_and(|m| m.ordinal > 1);
                pushed[source as usize].push((&piece.line, input.replaying && continuation));
            }
            None => {
                assert!(result.is_err(), "unknown source accepted");
                assert_eq!(out.len(), before, "an unknown source emitted lines");
            }
        }
        seq += 1;
        for line in &out[before..] {
            assert!(
                line.ack <= seq,
                "ack {} beyond the records pushed ({seq})",
                line.ack
            );
        }
    }
    assembler.flush(&mut out);
    assert!(!assembler.is_joining(Source::Stdout) && !assembler.is_joining(Source::Stderr));

    for source in Source::ALL {
        let lines: Vec<&Line> = out.iter().filter(|l| l.source == source).collect();
        let mut last_ack = first;
        for line in &lines {
            assert!(
                line.bytes.len() <= limit,
                "a line of {} bytes, maximum {limit}",
                line.bytes.len()
            );
            assert!(
                line.ack >= last_ack,
                "{source:?} acks went back from {last_ack} to {}",
                line.ack
            );
            last_ack = line.ack;
        }
        let emitted: Vec<u8> = lines.iter().flat_map(|l| l.bytes.iter().copied()).collect();
        let pieces = &pushed[source as usize];
        if input.replaying {
            assert!(
                is_concat_with_skips(&emitted, pieces),
                "{source:?}: replayed bytes are not the pushed bytes with whole continuation pieces left out"
            );
        } else {
            let expected: Vec<u8> = pieces.iter().flat_map(|(b, _)| b.iter().copied()).collect();
            assert_eq!(
                emitted, expected,
                "{source:?}: bytes lost, duplicated or reordered"
            );
        }
    }
});
