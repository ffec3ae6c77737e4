//! The memory tail: the lines a journal holds for delivery, in order,
//! and how they leave memory past a bound (evicted: read back from disk
//! later) or follow a long line's pieces to disk.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Journal, WaitClock};
use crate::line::{Line, Seq};
use crate::observe::{ContainerCounters, DropReason, Throttle};

/// A line in memory, and whether its record was handed to the writer.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) line: Line,
    pub(super) journaled: bool,
    /// Every record of the intake that brought this line is before it: once
    /// the writer has written up to here, the line is on disk (or its
    /// write failed, and `journaled` was cleared first).
    pub(super) records_end: Seq,
    /// Its record was on disk, and a disk bound deleted it: should the
    /// line leave memory, it is lost (`journal_full`).
    pub(super) deleted: bool,
}

/// The delivery side of a journal: what is in memory and how far delivery got.
pub(super) struct Tail {
    pub(super) lines: VecDeque<Held>,
    /// Cost of `lines`.
    pub(super) bytes: usize,
    /// Per source: every line that starts before it has been delivered or
    /// given up. Persisted.
    pub(super) cursor: [Seq; 2],
    /// Per source: every line that starts before it has been handed to
    /// delivery (in flight or done).
    pub(super) taken: [Seq; 2],
    /// Per source: lines acknowledged up to here left memory; delivery
    /// reads them back from disk.
    pub(super) evicted_to: [Seq; 2],
    pub(super) in_flight: bool,
    /// Where the last read from disk stopped, to continue from there.
    pub(super) disk_hint: Option<record_pos::Pos>,
    /// Records before this were written by an earlier run of the plugin.
    pub(super) session_start: Seq,
    /// Lines wait since then (for `loki-batch-wait`).
    pub(super) pending_since: Option<WaitClock>,
    /// Per source: lines in `lines`.
    pub(super) held: [usize; 2],
    /// Per source: every line that starts before it has been emitted by
    /// the FIFO readers (into memory, or skipped as blank). With nothing of
    /// a source waiting, its cursor may move here, so a source that goes
    /// quiet does not pin old segments.
    pub(super) emitted_to: [Seq; 2],
    pub(super) eviction_warning: Throttle,
    /// Per source: lines of this run that left memory for the disk and
    /// that delivery has not read back yet. What is left of them when
    /// delivery has read everything up to `evicted_to` was not found on
    /// disk: lost, for `lost_reason`.
    pub(super) backlog: [u64; 2],
    /// Why lines that left memory may be missing from disk: a disk bound
    /// deleted segments (`journal_full`), their write failed (a full disk:
    /// `memory_full`), or a segment could not be read (`journal_corrupt`).
    pub(super) lost_reason: Option<DropReason>,
    /// Records of an earlier run before this were looked for by delivery:
    /// those missing were counted (`journal_corrupt`).
    pub(super) gaps_counted_to: Seq,
    /// Per source: the first record of a long line whose pieces left
    /// memory while the FIFO reader was still joining it. Its further
    /// pieces go straight to disk as they come, so memory never holds part
    /// of a line that delivery reads back; once its last piece is in,
    /// `evicted_to` moves past the line and delivery reads it whole.
    pub(super) unfinished_on_disk: [Option<Seq>; 2],
    /// Per source: pieces of the line that starts at `taken` handed to
    /// delivery from memory while the rest of the line was still to come.
    /// Should the rest leave memory, a read back from `taken` skips them.
    pub(super) taken_pieces: [u32; 2],
    /// Per source: the first record of a line an earlier run was joining,
    /// which this run's reader took over and ends: the lines it emits are
    /// this run's, though their records may all be the earlier run's.
    pub(super) taken_over: [Option<Seq>; 2],
}

impl Tail {
    /// Per source: whether lines that left memory wait on disk for delivery.
    pub(super) fn disk_backlog(&self) -> [bool; 2] {
        [0, 1].map(|s| self.taken[s] < self.evicted_to[s])
    }

    pub(super) fn has_disk_backlog(&self) -> bool {
        self.disk_backlog().contains(&true)
    }

    /// Moves source `s`'s delivery on to `to`: past the line whose pieces
    /// `taken_pieces` counts, if it moves at all.
    pub(super) fn move_taken(&mut self, s: usize, to: Seq) {
        if to > self.taken[s] {
            self.taken[s] = to;
            self.taken_pieces[s] = 0;
        }
    }

    /// Whether every line of `group` (see [`Tail::front_line`]) is on
    /// disk, with records before `written` written.
    fn all_on_disk(&self, group: &[usize], written: Seq) -> bool {
        group.iter().all(|&i| {
            let held = &self.lines[i];
            held.journaled && !held.deleted && held.records_end <= written
        })
    }

    /// A line of a source whose long line left memory unfinished (see
    /// `unfinished_on_disk`) follows its pieces to disk, not into memory:
    /// the rest of that line, or, if its last piece was blank and not held,
    /// the lines after it. Returns None for a line that is held as usual,
    /// else whether it waits on disk (false: its record is not in the
    /// journal, and it is lost).
    fn follow_to_disk(&mut self, line: &Line, journaled: bool) -> Option<bool> {
        let s = line.source as usize;
        self.unfinished_on_disk[s]?;
        self.evicted_to[s] = self.evicted_to[s].max(line.ack);
        self.unfinished_on_disk[s] = line.piece.then_some(line.ack);
        if journaled {
            self.backlog[s] += 1;
        }
        Some(journaled)
    }

    /// Ends the long lines that left memory unfinished and that the FIFO
    /// reader is no longer joining (`emitted`), though no last piece
    /// followed them: it was blank, and such lines are not held. Delivery
    /// reads them back up to where the reader got; no later line of their
    /// source is in memory.
    /// Returns whether one ended.
    fn end_unfinished(&mut self, emitted: [Seq; 2]) -> bool {
        let mut ended = false;
        for (s, emitted) in emitted.into_iter().enumerate() {
            if self.unfinished_on_disk[s].is_some_and(|first| emitted > first) {
                self.evicted_to[s] = self.evicted_to[s].max(emitted);
                self.unfinished_on_disk[s] = None;
                ended = true;
            }
        }
        ended
    }

    /// Puts in `group` where in `lines` the oldest line is: the front, and
    /// the pieces that must leave memory with it. A piece of a long line is
    /// acknowledged at the line's first record, its last piece at its end:
    /// they all go, up to the last piece if that is in memory. Pieces of a
    /// line that starts where a whole front line ends share that line's
    /// acknowledgement, and go with it too. Delivery reads back from disk
    /// every line of a source acknowledged up to `evicted_to`, so none of
    /// those may stay in memory.
    fn front_line(&self, group: &mut Vec<usize>) {
        group.clear();
        let Some(front) = self.lines.front() else {
            return;
        };
        let (source, ack) = (front.line.source, front.line.ack);
        group.push(0);
        let mut unfinished = front.line.piece;
        for (i, held) in self.lines.iter().enumerate().skip(1) {
            if held.line.source != source {
                continue;
            }
            if !unfinished && held.line.ack != ack {
                break;
            }
            group.push(i);
            unfinished = held.line.piece;
        }
    }
}

pub(super) mod record_pos {
    use crate::line::Seq;

    /// A position in a raw segment: the record `seq` starts at `offset`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Pos {
        pub segment: Seq,
        pub offset: u64,
        pub seq: Seq,
    }
}

/// Moves source `s`'s cursor to `advance`, but not past `hold`; with
/// nothing of it left waiting, on to what its reader emitted.
pub(super) fn move_source_cursor(tail: &mut Tail, s: usize, advance: Seq, hold: Seq) {
    tail.cursor[s] = tail.cursor[s].max(advance.min(hold));
    let idle = tail.held[s] == 0
        && tail.taken[s] >= tail.evicted_to[s]
        && tail.unfinished_on_disk[s].is_none();
    if idle {
        let emitted = tail.emitted_to[s];
        tail.move_taken(s, emitted);
        tail.cursor[s] = tail.cursor[s].max(tail.emitted_to[s].min(hold));
    }
}

impl Journal {
    /// Adds lines for Loki to memory, evicting the oldest past a bound.
    /// `journaled`: their records were queued for the writer, with them or
    /// (the rest of a line flushed at EOF) before.
    /// `emitted` is how far the FIFO reader has turned records into lines.
    pub(super) fn hold(
        &self,
        mut lines: Vec<Line>,
        journaled: bool,
        emitted: [Seq; 2],
        records_end: Seq,
    ) {
        let count = lines.len() as u64;
        let mut added = 0;
        let (mut followed, mut lost, mut ended) = (0u64, 0u64, false);
        let in_memory = {
            let mut tail = self.tail();
            for (to, emitted) in tail.emitted_to.iter_mut().zip(emitted) {
                *to = (*to).max(emitted);
            }
            if tail.unfinished_on_disk != [None; 2] {
                lines.retain(|line| match tail.follow_to_disk(line, journaled) {
                    None => true,
                    Some(true) => {
                        followed += 1;
                        false
                    }
                    Some(false) => {
                        lost += 1;
                        false
                    }
                });
                ended = tail.end_unfinished(emitted);
            }
            if lines.is_empty() {
                drop(tail);
                ContainerCounters::add(&self.counters.received, count);
                self.count_followed(followed, lost);
                if ended {
                    self.wake();
                }
                return;
            }
            if tail.pending_since.is_none() {
                tail.pending_since = Some(WaitClock::now());
            }
            if tail.lines.is_empty() && !tail.in_flight {
                self.counters
                    .oldest_pending_ns
                    .store(lines[0].timestamp_ns, Ordering::Relaxed);
            }
            for line in lines {
                added += line.cost();
                tail.held[line.source as usize] += 1;
                tail.lines.push_back(Held {
                    line,
                    journaled,
                    records_end,
                    deleted: false,
                });
            }
            tail.bytes += added;
            self.counters
                .memory_bytes
                .store(tail.bytes, Ordering::Relaxed);
            tail.bytes
        };
        ContainerCounters::add(&self.counters.received, count);
        self.count_followed(followed, lost);
        self.counters
            .memory_lines
            .fetch_add((count - followed - lost) as i64, Ordering::Relaxed);
        self.budget.add(added);
        if in_memory > self.config.memory_limit {
            let excess = self.queued_bytes().saturating_sub(self.config.memory_limit);
            self.evict(excess, "container memory bound (loki-buffer-size)", false);
        } else if in_memory > self.config.journaled_memory && self.writes_to_disk() {
            let excess = self
                .queued_bytes()
                .saturating_sub(self.config.journaled_memory);
            self.evict(excess, "journaled lines' share of memory", true);
        }
        self.budget.enforce();
        self.wake();
    }

    /// Counts lines received that went straight to disk after the pieces
    /// of their long line (see `Tail::follow_to_disk`), `followed`, and
    /// those that would have but were not in the journal, `lost`.
    fn count_followed(&self, followed: u64, lost: u64) {
        self.counters
            .backlog_lines
            .fetch_add(followed as i64, Ordering::Relaxed);
        self.counters.drop_lines(DropReason::MemoryFull, lost);
        if followed + lost > 0 {
            self.wake();
        }
    }

    /// Moves at least `bytes` of the oldest waiting lines out of memory;
    /// journaled lines wait on disk, the others are dropped and counted.
    /// With `only_journaled`, it stops before the first line (or piece of
    /// a long line) the journal does not hold: nothing is dropped. A long
    /// line leaves with all its pieces in memory; if it is still being
    /// read, the pieces to come go straight to disk (`Tail::follow_to_disk`),
    /// so once queued for the writer: should that write fail, they are
    /// counted as lost when delivery comes to them.
    /// Returns the bytes freed.
    pub(super) fn evict(&self, bytes: usize, why: &str, only_journaled: bool) -> usize {
        let mut tail = self.tail();
        let mut freed = 0;
        let (mut to_disk, mut lost, mut deleted) = (0u64, 0u64, 0u64);
        let on_disk = self.writes_to_disk();
        let mut leave = |held: &Held, tail: &mut Tail| {
            if held.journaled && on_disk {
                to_disk += 1;
                tail.backlog[held.line.source as usize] += 1;
            } else if held.deleted {
                deleted += 1;
            } else {
                lost += 1;
            }
        };
        let written = match only_journaled {
            true => *self.written.borrow(),
            false => Seq::MAX,
        };
        let mut group = Vec::new();
        while freed < bytes && tail.lines.len() > 1 {
            // The oldest line leaves with every piece of it in memory, so
            // memory never holds part of a line that delivery reads from disk.
            tail.front_line(&mut group);
            if only_journaled && !(on_disk && tail.all_on_disk(&group, written)) {
                break;
            }
            let last = &tail.lines[*group.last().expect("the front is in it")].line;
            let (s, unfinished) = (last.source as usize, last.piece.then_some(last.ack));
            for &i in group.iter().rev() {
                let held = tail.lines.remove(i).expect("index in range");
                tail.held[s] -= 1;
                freed += held.line.cost();
                leave(&held, &mut tail);
                if on_disk {
                    tail.evicted_to[s] = tail.evicted_to[s].max(held.line.ack);
                }
            }
            match unfinished {
                Some(first) if on_disk && tail.emitted_to[s] <= first => {
                    // The reader is still joining that line: the rest of
                    // it follows its pieces to disk (see `Journal::hold`).
                    tail.unfinished_on_disk[s] = Some(first);
                }
                Some(_) if on_disk => {
                    // The reader is past it: its last piece was blank, and
                    // not held. Nothing of the source after it is in memory.
                    tail.evicted_to[s] = tail.evicted_to[s].max(tail.emitted_to[s]);
                }
                _ => {}
            }
        }
        tail.bytes -= freed;
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        // The backlog changes with the tail, so that delivery, which reads
        // it back, can tell lines that never reached the disk (see
        // `reconcile_backlog`).
        let moved = (to_disk + lost + deleted) as i64;
        self.counters
            .memory_lines
            .fetch_sub(moved, Ordering::Relaxed);
        self.counters
            .backlog_lines
            .fetch_add(to_disk as i64, Ordering::Relaxed);
        self.counters.drop_lines(DropReason::MemoryFull, lost);
        self.counters.drop_lines(DropReason::JournalFull, deleted);
        let warn = lost > 0 && tail.eviction_warning.allow(Instant::now()).is_some();
        drop(tail);
        self.budget.sub(freed);
        if warn {
            tracing::warn!(
                container = %self.name,
                dropped_total = self.counters.dropped(DropReason::MemoryFull),
                reason = why,
                "memory bound reached while these lines were not in the journal: dropped the oldest"
            );
        }
        freed
    }
}
