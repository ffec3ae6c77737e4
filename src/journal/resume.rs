//! Where a FIFO found again after a restart picks up: the newest records
//! (frames the FIFO may still hold) and the lines the earlier run was
//! still joining, which the new reader takes over.

use std::sync::atomic::Ordering;

use prost::Message;

use super::tail::Held;
use super::{Journal, WaitClock, record};
use crate::assemble::Assembler;
use crate::line::{Line, Seq, Source};
use crate::observe::ContainerCounters;
use crate::proto::logdriver::LogEntry;

/// See [`Journal::resume_point`].
#[derive(Debug, Default)]
pub struct ResumePoint {
    /// Hashes of the payloads of the newest records.
    pub recent: std::collections::HashSet<u64>,
    /// The frames of lines an earlier run was still joining, oldest first,
    /// for the FIFO reader's assembler.
    pub unfinished: Vec<(Seq, LogEntry)>,
}

/// Bytes of an unfinished line that a re-attached reader takes over; a
/// longer one is delivered as the earlier run left it, and its rest apart.
const MAX_TAKEN_OVER: usize = 32 * 1024 * 1024;

fn ordinal(entry: &LogEntry) -> Option<i32> {
    entry.partial_log_metadata.as_ref().map(|m| m.ordinal)
}

/// Whether the backward walk of [`Journal::resume_point`] is done with a
/// source: no unfinished line, or its first piece found.
fn group_done(frames: &[(Seq, LogEntry)]) -> bool {
    frames.last().is_none_or(|(_, e)| ordinal(e) == Some(1))
}

impl Journal {
    /// Where a FIFO found again after a restart picks up (blocking): the
    /// hashes of the newest records, about `max_bytes` of them (the FIFO may
    /// still hold those frames), and per source the frames of a line the
    /// earlier run was still joining when it stopped.
    ///
    /// The reader takes such a line over, so that the pieces still in the
    /// FIFO join it: delivery reads the earlier run's lines of that source
    /// back from disk only up to the line's first record, and the cursor
    /// does not pass it until the reader has emitted the whole line. Call
    /// it before delivery starts reading this journal. Only the first call
    /// gets such a line (a container's FIFOs found again share a journal),
    /// and its reader must take it over ([`Journal::take_over`]).
    pub fn resume_point(&self, max_bytes: u64) -> ResumePoint {
        let mut point = ResumePoint::default();
        let Some(dir) = &self.dir else { return point };
        let mut budget = max_bytes;
        // Per source: None while unknown; then the frames of its unfinished
        // line, newest first (empty: none, or its start is not on disk).
        let mut groups: [Option<Vec<(Seq, LogEntry)>>; 2] = [None, None];
        let mut group_bytes = 0usize;
        'segments: for segment in self.segments().iter().rev() {
            if segment.compressed {
                break;
            }
            let Ok(mut reader) = record::BackwardReader::open(&segment.path(dir), segment.bytes)
            else {
                break;
            };
            while let Ok(Some(record)) = reader.prev() {
                if budget > 0 {
                    point.recent.insert(record::payload_hash(&record.payload));
                    budget =
                        budget.saturating_sub((record.payload.len() + record::ENVELOPE) as u64);
                }
                // A source not seen in the window has no line to take over;
                // one being collected is followed to its first piece.
                let searching = |g: &Option<Vec<_>>| match g {
                    None => budget > 0,
                    Some(frames) => !group_done(frames),
                };
                if !groups.iter().any(searching) {
                    if budget == 0 {
                        break 'segments;
                    }
                    continue;
                }
                let Ok(entry) = LogEntry::decode(record.payload.clone()) else {
                    continue;
                };
                let Some(source) = Source::parse(&entry.source) else {
                    continue;
                };
                let group = &mut groups[source as usize];
                if !searching(group) {
                    continue;
                }
                match group {
                    // The newest frame of this source: a line is unfinished
                    // if it is a piece that is not the last.
                    None => {
                        let unfinished = entry
                            .partial_log_metadata
                            .as_ref()
                            .is_some_and(|m| entry.partial && !m.last);
                        *group = Some(Vec::new());
                        if unfinished {
                            group_bytes += entry.line.len();
                            group.as_mut().unwrap().push((record.seq, entry));
                        }
                    }
                    Some(frames) => {
                        let same = entry.partial
                            && entry.partial_log_metadata.as_ref().map(|m| &m.id)
                                == frames[0].1.partial_log_metadata.as_ref().map(|m| &m.id);
                        group_bytes += entry.line.len();
                        if !same || group_bytes > MAX_TAKEN_OVER {
                            frames.clear(); // its start is not here: left as it is
                        } else {
                            frames.push((record.seq, entry));
                        }
                    }
                }
            }
        }
        let mut tail = self.tail();
        for (s, group) in groups.into_iter().enumerate() {
            let Some(mut frames) = group else { continue };
            if frames.last().is_none_or(|(_, e)| ordinal(e) != Some(1)) {
                continue;
            }
            let first = frames.last().map(|(seq, _)| *seq).unwrap();
            // A container's FIFOs found again after a restart share its
            // journal: the first reader to ask takes the line over, and the
            // pieces of it in another FIFO are a line of their own.
            if tail.in_flight
                || tail.taken[s] > first
                || first >= tail.session_start
                || tail.taken_over[s].is_some()
            {
                continue;
            }
            tail.taken_over[s] = Some(first);
            tail.evicted_to[s] = tail.evicted_to[s].min(first);
            tail.emitted_to[s] = tail.emitted_to[s].min(first);
            frames.reverse();
            point.unfinished.extend(frames);
        }
        point.unfinished.sort_by_key(|(seq, _)| *seq);
        point
    }

    /// Feeds `assembler` the frames of the lines an earlier run was still
    /// joining (see [`Journal::resume_point`]), so that the pieces still in
    /// the FIFO join them. The full pieces of such a line cut from those
    /// frames are on disk, and delivery reads them back from there: the
    /// rest of the line follows them to disk (as when pieces of a line
    /// leave memory while it is read), to be read back whole once it ends.
    /// A journal that cannot be written now holds those pieces in memory
    /// instead, as read back.
    pub fn take_over(&self, unfinished: Vec<(Seq, LogEntry)>, assembler: &mut Assembler) {
        let mut cut = Vec::new();
        let mut taken_over = [None; 2];
        for (seq, entry) in unfinished {
            if let Some(source) = Source::parse(&entry.source) {
                taken_over[source as usize].get_or_insert(seq);
            }
            let _ = assembler.push(entry, seq, &mut cut);
        }
        cut.retain(|line| line.piece && !line.is_blank());
        let mut tail = self.tail();
        for (s, first) in taken_over.into_iter().enumerate() {
            if first.is_some() {
                tail.taken_over[s] = first;
            }
        }
        if self.writes_to_disk() {
            for piece in &cut {
                tail.unfinished_on_disk[piece.source as usize] = Some(piece.ack);
            }
            return;
        }
        let (count, cost) = (cut.len(), cut.iter().map(Line::cost).sum::<usize>());
        for line in cut {
            tail.held[line.source as usize] += 1;
            let records_end = tail.session_start;
            tail.lines.push_back(Held {
                line,
                journaled: false,
                records_end,
                deleted: false,
            });
        }
        tail.bytes += cost;
        tail.pending_since.get_or_insert_with(WaitClock::now);
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        drop(tail);
        ContainerCounters::add(&self.counters.recovered, count as u64);
        self.counters
            .memory_lines
            .fetch_add(count as i64, Ordering::Relaxed);
        self.budget.add(cost);
    }
}
