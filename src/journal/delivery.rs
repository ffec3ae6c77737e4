//! Delivery's side of a journal: taking batches (from memory, or read
//! back from disk), acknowledging them, and moving the cursor.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::readback::DiskPlan;
use super::tail::{Tail, move_source_cursor};
use super::{Journal, WaitClock};
use crate::line::{Line, Seq};
use crate::observe::{ContainerCounters, DropReason, Drops};

/// Lines handed to delivery; given back with [`Journal::ack`].
#[derive(Debug)]
pub struct Taken {
    pub lines: Vec<Line>,
    /// Per source, where these lines start: every line before it was
    /// handed to delivery earlier.
    from: [Seq; 2],
    /// Where the cursor moves once these lines are done.
    advance: [Seq; 2],
    /// Memory these lines hold until they are done.
    cost: usize,
    /// Where in `lines` the lines are that were only in memory when taken
    /// (their record was not written) from a journal on disk: lost if the
    /// batch is given back at a shutdown. None for a journal in memory
    /// only, where every line is.
    pub(super) unjournaled: Vec<u32>,
}

impl Taken {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of the lines.
    pub fn bytes(&self) -> usize {
        self.lines.iter().map(|l| l.bytes.len()).sum()
    }

    /// Per source, the position before the first of these lines.
    pub fn from(&self) -> [Seq; 2] {
        self.from
    }
}

/// How delivery ended for lines the pipeline stages processed (see
/// [`Journal::settle`]).
#[derive(Debug)]
pub struct Settled<'a> {
    /// Lines Loki took.
    pub sent: u64,
    /// Lines given up, by reason.
    pub dropped: Drops,
    /// Lines the stages dropped on purpose, by reason.
    pub filtered: &'a std::collections::BTreeMap<std::sync::Arc<str>, u64>,
    /// Per source: the cursor may not pass this, because the stages still
    /// hold lines from there on (`Seq::MAX`: nothing held).
    pub hold: [Seq; 2],
}

/// How delivery ended for taken lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Dropped(DropReason),
}

impl Journal {
    /// Whether lines that left memory, or that an earlier run left
    /// undelivered, wait on disk for delivery. They have waited already:
    /// delivery takes them without a batch wait.
    pub fn has_disk_backlog(&self) -> bool {
        self.tail().has_disk_backlog()
    }

    /// Whether lines wait for delivery (in memory or on disk), and since
    /// when. A disk backlog nothing in memory dates (what an earlier run
    /// left, found after a restart) waits from when it is first looked at:
    /// a fixed time, so the lane becomes due.
    pub fn pending_since(&self) -> Option<WaitClock> {
        let mut tail = self.tail();
        if tail.in_flight {
            return None;
        }
        if tail.has_disk_backlog() {
            return Some(*tail.pending_since.get_or_insert_with(WaitClock::now));
        }
        if tail.lines.is_empty() {
            // Nothing waits: the next line starts a new batch wait.
            tail.pending_since = None;
            None
        } else {
            tail.pending_since
        }
    }

    /// Whether every line received has been handed to delivery (it may be
    /// in flight still).
    pub fn is_caught_up(&self) -> bool {
        let tail = self.tail();
        tail.lines.is_empty() && !tail.has_disk_backlog()
    }

    /// Whether everything this journal received has been delivered or given up.
    pub fn is_drained(&self) -> bool {
        let tail = self.tail();
        !tail.in_flight && tail.lines.is_empty() && !tail.has_disk_backlog()
    }

    /// Takes the next lines for delivery: up to `max_bytes` of line bytes
    /// (at least one line), oldest first, read back from disk when they
    /// left memory. `None` when nothing waits or a batch is already out.
    pub async fn take(self: &Arc<Self>, max_bytes: usize) -> Option<Taken> {
        self.take_with(max_bytes, 0).await
    }

    /// [`Journal::take`], each line counting `per_line` bytes more than its
    /// own (what goes with every entry of a push, such as structured
    /// metadata), so a batch stays within `max_bytes` as sent.
    pub async fn take_with(self: &Arc<Self>, max_bytes: usize, per_line: usize) -> Option<Taken> {
        self.take_next(max_bytes, per_line, false).await
    }

    /// Adds the next lines to `taken`, which is out for delivery still:
    /// up to `max_bytes` more (at least one line), as [`Journal::take_with`]
    /// takes them. A container with a backlog keeps Loki busy this way: a
    /// part of its batch goes while another is in a push, and the batch
    /// rolls on ([`Journal::ack_front`]) instead of ending. False when
    /// nothing more was added.
    pub async fn take_more(
        self: &Arc<Self>,
        taken: &mut Taken,
        max_bytes: usize,
        per_line: usize,
    ) -> bool {
        debug_assert!(self.tail().in_flight, "take_more with no batch out");
        let Some(more) = self.take_next(max_bytes, per_line, true).await else {
            return false;
        };
        for s in 0..2 {
            taken.advance[s] = taken.advance[s].max(more.advance[s]);
        }
        taken.cost += more.cost;
        let at = taken.lines.len() as u32;
        taken
            .unjournaled
            .extend(more.unjournaled.iter().map(|i| i + at));
        let added = !more.lines.is_empty();
        taken.lines.extend(more.lines);
        added
    }

    /// The next lines after what was taken; `more`: the batch taken before
    /// is out still, and these lines join it (see [`Journal::take_more`]).
    async fn take_next(
        self: &Arc<Self>,
        max_bytes: usize,
        per_line: usize,
        more: bool,
    ) -> Option<Taken> {
        let plan = {
            let mut tail = self.tail();
            if tail.in_flight != more {
                return None;
            }
            let from_disk = tail.disk_backlog();
            if from_disk == [false; 2] {
                return self.take_from_memory(&mut tail, max_bytes, per_line);
            }
            let room = self.budget.batch_room();
            if self.budget.must_wait(room, 1) {
                self.budget.wait_for_room(self);
                return None;
            }
            // Never read past what the writer has written: a record still
            // queued would look missing. With nothing queued, every record
            // of a line that left memory is written, or never will be (its
            // write failed, or the writer could not take it).
            let writer_busy = {
                let queue = self.queue.lock().expect("journal lock poisoned");
                queue.scheduled || queue.incoming > 0
            };
            let written = match writer_busy {
                true => *self.written.borrow(),
                false => Seq::MAX,
            };
            let upto = tail.evicted_to.map(|e| e.min(written));
            if (0..2).all(|s| tail.taken[s] >= upto[s]) {
                return None; // the writer wakes delivery when it catches up
            }
            tail.in_flight = true;
            DiskPlan {
                from: tail.taken,
                upto,
                sources: from_disk,
                hint: tail.disk_hint,
                whole: [0, 1].map(|s| tail.evicted_to[s] <= written),
                skip_pieces: tail.taken_pieces,
                taken_over: tail.taken_over,
                session_start: tail.session_start,
                max_bytes: max_bytes.min(room.max(1)),
                per_line,
                gaps_from: tail.gaps_counted_to,
            }
        };
        let journal = self.clone();
        let from = plan.from;
        let read = tokio::task::spawn_blocking(move || journal.read_back(&plan)).await;
        let read = match read {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                self.warn_disk(
                    "reading undelivered lines back from the journal failed",
                    &err,
                );
                self.tail().in_flight = more;
                return None;
            }
            Err(_) => {
                self.tail().in_flight = more;
                return None;
            }
        };
        let cost: usize = read.lines.iter().map(Line::cost).sum();
        let n = read.lines.len() as u64;
        let mut tail = self.tail();
        for s in 0..2 {
            tail.move_taken(s, read.advance[s]);
        }
        tail.disk_hint = read.hint;
        self.counters
            .backlog_lines
            .fetch_sub((n - read.recovered) as i64, Ordering::Relaxed);
        self.account_read_back(&mut tail, &read);
        if !tail.has_disk_backlog() && tail.lines.is_empty() {
            // Done with the disk: the next line starts a new batch wait.
            tail.pending_since = None;
        }
        // A long line left for a later read: the writer wakes delivery
        // once it has written more.
        let look_again = !read.cut;
        if read.lines.is_empty() && more {
            // Nothing was left on disk in that range: the batch out moves
            // the cursor past it once it is done.
            drop(tail);
            if look_again {
                self.wake();
            }
            return Some(Taken {
                lines: Vec::new(),
                from,
                advance: read.advance,
                cost: 0,
                unjournaled: Vec::new(),
            });
        }
        if read.lines.is_empty() {
            // Nothing was left on disk in that range (deleted or never written).
            tail.in_flight = false;
            for s in 0..2 {
                tail.cursor[s] = tail.cursor[s].max(read.advance[s]);
            }
            self.cursor_dirty.store(true, Ordering::Release);
            drop(tail);
            // More to read, or (done with the disk) a lane with nothing
            // left to deliver must be looked at again to be let go.
            if look_again {
                self.wake();
            }
            return None;
        }
        ContainerCounters::add(&self.counters.recovered, read.recovered);
        self.counters
            .in_flight_lines
            .fetch_add(n as i64, Ordering::Relaxed);
        drop(tail);
        self.budget.add(cost);
        self.budget.start_batch(cost);
        // Room for the lines read back: lines waiting in memory leave for disk.
        self.budget.enforce();
        ContainerCounters::add(&self.counters.read_back, n - read.recovered);
        Some(Taken {
            lines: read.lines,
            from,
            advance: read.advance,
            cost,
            unjournaled: Vec::new(),
        })
    }

    fn take_from_memory(
        &self,
        tail: &mut Tail,
        max_bytes: usize,
        per_line: usize,
    ) -> Option<Taken> {
        let first = tail.lines.front()?.line.cost();
        let room = self.budget.batch_room();
        if self.budget.must_wait(room, first) {
            self.budget.wait_for_room(self);
            return None;
        }
        let mut lines = Vec::new();
        let (mut bytes, mut cost, mut unjournaled) = (0usize, 0usize, Vec::new());
        let on_disk = self.is_on_disk();
        let from = tail.taken;
        let mut advance = tail.taken;
        let mut pieces = tail.taken_pieces;
        while let Some(front) = tail.lines.front() {
            let more = !lines.is_empty()
                && (bytes + front.line.bytes.len() + per_line > max_bytes
                    || cost + front.line.cost() > room);
            if more {
                break;
            }
            let held = tail.lines.pop_front().expect("front exists");
            bytes += held.line.bytes.len() + per_line;
            cost += held.line.cost();
            if !held.journaled && on_disk {
                unjournaled.push(lines.len() as u32);
            }
            let s = held.line.source as usize;
            tail.held[s] -= 1;
            if held.line.ack > advance[s] || !held.line.piece {
                pieces[s] = 0;
            }
            pieces[s] += u32::from(held.line.piece);
            advance[s] = advance[s].max(held.line.ack);
            lines.push(held.line);
        }
        tail.bytes -= cost;
        tail.taken = advance;
        tail.taken_pieces = pieces;
        tail.in_flight = true;
        self.budget.start_batch(cost);
        if tail.lines.capacity() > 1024 && tail.lines.len() < tail.lines.capacity() / 4 {
            // A burst is over: give its memory back.
            let keep = tail.lines.len() * 2;
            tail.lines.shrink_to(keep);
        }
        if tail.lines.is_empty() {
            // Lines that stay keep their original wait: they are due sooner.
            tail.pending_since = None;
        }
        self.counters
            .memory_bytes
            .store(tail.bytes, Ordering::Relaxed);
        let n = lines.len() as i64;
        self.counters.memory_lines.fetch_sub(n, Ordering::Relaxed);
        self.counters
            .in_flight_lines
            .fetch_add(n, Ordering::Relaxed);
        Some(Taken {
            lines,
            from,
            advance,
            cost,
            unjournaled,
        })
    }

    /// Finishes taken lines: delivered or given up, they are done and the
    /// cursor moves past them.
    pub fn ack(&self, taken: Taken, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.ack_counted(taken, 0, DropReason::Rejected),
            Outcome::Dropped(reason) => {
                let n = taken.lines.len() as u64;
                self.ack_counted(taken, n, reason)
            }
        }
    }

    /// Finishes taken lines of which `dropped` were given up for `reason`
    /// and the others delivered (Loki may store some lines of a push it
    /// answers with an error).
    pub fn ack_counted(&self, taken: Taken, dropped: u64, reason: DropReason) {
        let mut drops = Drops::default();
        drops.add(reason, dropped.min(taken.lines.len() as u64));
        self.ack_dropped(taken, &drops);
    }

    /// Finishes taken lines of which `drops` were given up (by reason) and
    /// the others delivered (a batch pushed in parts).
    pub fn ack_dropped(&self, taken: Taken, drops: &Drops) {
        let n = taken.lines.len() as u64;
        ContainerCounters::add(&self.counters.sent, n.saturating_sub(drops.total()));
        self.counters.drop_all(drops);
        self.finish(taken, true, [Seq::MAX; 2]);
    }

    /// Whether [`Journal::ack_front`] may finish lines at the front of
    /// `taken`: each of them is on disk, or none ever is (a journal in
    /// memory only keeps no positions, see [`Taken::unjournaled`]).
    pub fn may_ack_front(&self, taken: &Taken) -> bool {
        taken.unjournaled.is_empty()
    }

    /// Finishes the first `n` lines of `taken`, which stays out for
    /// delivery: `drops` of them were given up (by reason), the others
    /// delivered. The cursor moves past them (so a restart does not send
    /// them again) and their memory is let go. Not where some lines of a
    /// journal on disk are only in memory (see [`Journal::may_ack_front`]):
    /// those have to be told apart if the batch is given back at a
    /// shutdown, so they finish with the whole batch. False (and nothing
    /// done) then.
    pub fn ack_front(&self, taken: &mut Taken, n: usize, drops: &Drops) -> bool {
        let n = n.min(taken.lines.len());
        if n == 0 || !self.may_ack_front(taken) {
            return false;
        }
        let mut advance = taken.from;
        let mut cost = 0;
        for line in taken.lines.drain(..n) {
            let s = line.source as usize;
            advance[s] = advance[s].max(line.ack);
            cost += line.cost();
        }
        taken.from = advance;
        taken.cost -= cost;
        ContainerCounters::add(
            &self.counters.sent,
            (n as u64).saturating_sub(drops.total()),
        );
        self.counters.drop_all(drops);
        self.counters
            .in_flight_lines
            .fetch_sub(n as i64, Ordering::Relaxed);
        self.budget.sub(cost);
        self.budget.end_batch(cost);
        let mut out = [false; 2];
        for line in &taken.lines {
            out[line.source as usize] = true;
        }
        let mut tail = self.tail();
        for s in 0..2 {
            if out[s] {
                // Not past the lines still out.
                tail.cursor[s] = tail.cursor[s].max(advance[s]);
                continue;
            }
            // A source with nothing left in the batch moves as it would
            // when the batch ends (a quiet one on to what its reader
            // emitted), so retention does not keep what Loki has.
            move_source_cursor(&mut tail, s, taken.advance[s], Seq::MAX);
        }
        let oldest = tail.lines.front().map_or(0, |h| h.line.timestamp_ns);
        self.counters
            .oldest_pending_ns
            .store(oldest, Ordering::Relaxed);
        self.cursor_dirty.store(true, Ordering::Release);
        drop(tail);
        if self.is_on_disk() {
            self.pool.maintain(self);
        }
        true
    }

    /// Finishes a batch the pipeline stages made: `taken` (the lines it
    /// took from the journal, if it took any) is done, and the counts say
    /// what became of the lines; the stages may hold some still, which
    /// `settled.hold` keeps the cursor before, so that a restart reads
    /// them again.
    pub fn settle(&self, taken: Option<Taken>, settled: Settled<'_>) {
        ContainerCounters::add(&self.counters.sent, settled.sent);
        self.counters.drop_all(&settled.dropped);
        for (reason, n) in settled.filtered {
            self.counters.filter_lines(reason, *n);
        }
        match taken {
            Some(taken) => self.finish(taken, true, settled.hold),
            None => {
                let mut tail = self.tail();
                let advance = tail.taken;
                self.move_cursor(&mut tail, advance, settled.hold);
                drop(tail);
                if self.is_on_disk() {
                    self.pool.maintain(self);
                }
                self.wake();
            }
        }
    }

    /// Moves the cursor to `advance`, but not past `hold`; a source with
    /// nothing left waiting moves on to what its readers emitted.
    fn move_cursor(&self, tail: &mut Tail, advance: [Seq; 2], hold: [Seq; 2]) {
        for s in 0..2 {
            move_source_cursor(tail, s, advance[s], hold[s]);
        }
        self.cursor_dirty.store(true, Ordering::Release);
    }

    /// Gives up on a batch without an outcome (the plugin is stopping).
    /// What parts of it settled (`settled`: sent, dropped, and filtered by
    /// the stages) is counted so, and `given_back` lines have no outcome:
    /// lost (counted `shutdown`) if only in memory, else left on disk for
    /// the next run (pending). `settled_lines` says which lines of `taken`
    /// (by position) settled, where the caller knows: then the lines given
    /// back that were only in memory when they were taken are lost.
    /// Otherwise (the stages' entries, which do not map to lines one to
    /// one) as many as `taken` had only in memory, at most `given_back`.
    /// A line whose write fails after it was taken is not known here: it
    /// counts as pending, and the next run finds its record missing. The
    /// cursor does not move.
    pub fn abandon(
        &self,
        taken: Option<Taken>,
        settled: Settled<'_>,
        given_back: u64,
        settled_lines: Option<&[std::ops::Range<usize>]>,
    ) {
        ContainerCounters::add(&self.counters.sent, settled.sent);
        self.counters.drop_all(&settled.dropped);
        for (reason, n) in settled.filtered {
            self.counters.filter_lines(reason, *n);
        }
        let lost = match (&taken, settled_lines) {
            _ if !self.is_on_disk() => given_back,
            (Some(taken), Some(settled)) => (taken.unjournaled.iter())
                .filter(|&&at| !settled.iter().any(|r| r.contains(&(at as usize))))
                .count() as u64,
            (Some(taken), None) => taken.unjournaled.len() as u64,
            (None, _) => 0,
        }
        .min(given_back);
        self.counters.drop_lines(DropReason::Shutdown, lost);
        self.counters
            .backlog_lines
            .fetch_add((given_back - lost) as i64, Ordering::Relaxed);
        if let Some(taken) = taken {
            self.finish(taken, false, settled.hold);
        }
    }

    fn finish(&self, taken: Taken, done: bool, hold: [Seq; 2]) {
        self.budget.sub(taken.cost);
        self.budget.end_batch(taken.cost);
        self.counters
            .in_flight_lines
            .fetch_sub(taken.lines.len() as i64, Ordering::Relaxed);
        let mut tail = self.tail();
        tail.in_flight = false;
        if done {
            self.move_cursor(&mut tail, taken.advance, hold);
        }
        let oldest = tail.lines.front().map_or(0, |h| h.line.timestamp_ns);
        self.counters
            .oldest_pending_ns
            .store(oldest, Ordering::Relaxed);
        drop(tail);
        if done && self.is_on_disk() {
            self.pool.maintain(self);
        }
        self.wake();
    }
}
