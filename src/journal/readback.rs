//! Reading lines back from disk for delivery: what a read covers
//! ([`DiskPlan`]), which lines it collects ([`Collected`]: a long line only
//! once it ends within the read), and records an earlier run lost ([`Gaps`]).

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use prost::Message;

use super::Journal;
use super::record::{SegmentFile, SegmentReader};
use super::tail::{Tail, record_pos};
use crate::assemble::Assembler;
use crate::line::{Line, Seq, Source};
use crate::observe::{ContainerCounters, DropReason};
use crate::proto::logdriver::LogEntry;

/// What a read back from disk should cover.
#[derive(Debug, Clone)]
pub(super) struct DiskPlan {
    pub(super) from: [Seq; 2],
    pub(super) upto: [Seq; 2],
    pub(super) sources: [bool; 2],
    pub(super) hint: Option<record_pos::Pos>,
    pub(super) session_start: Seq,
    pub(super) max_bytes: usize,
    /// Bytes each line counts besides its own (see [`Journal::take_with`]).
    pub(super) per_line: usize,
    /// Records of an earlier run before this were looked for already.
    pub(super) gaps_from: Seq,
    /// Per source: the writer is done with every record before `upto`
    /// (written, or its write failed). A line that starts before `upto`
    /// ends there, so one that is not whole on disk never will be: what
    /// there is of it is delivered. Else it is read again once the writer
    /// has written more.
    pub(super) whole: [bool; 2],
    /// Per source: pieces of the line that starts at `from` that were
    /// taken from memory already (see `Tail::taken_pieces`): not again.
    pub(super) skip_pieces: [u32; 2],
    /// Per source: the first record of a line an earlier run was joining
    /// and this run's reader took over (see `Tail::taken_over`).
    pub(super) taken_over: [Option<Seq>; 2],
}

impl DiskPlan {
    /// Whether an earlier run read `line` (cut when record `at` was
    /// joined): a whole line that ends before this run's first record,
    /// except the one this run's reader took over and ended; or a piece
    /// cut at a record before it. A piece is acknowledged at its line's
    /// first record, and this run's reader cuts the rest of a line it took
    /// over: those are its own.
    fn read_by_earlier_run(&self, line: &Line, at: Seq) -> bool {
        match line.piece {
            true => at < self.session_start,
            false => {
                let taken_over = self.taken_over[line.source as usize];
                line.is_before(self.session_start) && taken_over.is_none_or(|f| line.ack <= f)
            }
        }
    }
}

pub(super) struct ReadBack {
    pub(super) lines: Vec<Line>,
    pub(super) advance: [Seq; 2],
    pub(super) hint: Option<record_pos::Pos>,
    pub(super) recovered: u64,
    /// Records of an earlier run that were missing or undecodable.
    corrupt: u64,
    /// How far records of an earlier run were looked for.
    gaps_counted_to: Option<Seq>,
    /// Per source, lines read that this run had received.
    fresh: [u64; 2],
    /// A segment could not be read.
    unreadable: bool,
    /// A long line was left for a later read: its end was not on disk yet.
    pub(super) cut: bool,
}

/// The lines a read back collects. A long line counts only once it ends
/// within the read (at or before `upto`): the pieces of a line whose end
/// is not on disk yet, or is beyond `upto`, are left, and the line is read
/// again, whole, from its first record. Were they delivered, the next read
/// would start inside the line and skip its end as belonging to a line
/// already delivered.
struct Collected {
    lines: Vec<Line>,
    /// Bytes of `lines`, each line counting `per_line` more.
    bytes: usize,
    per_line: usize,
    /// Lines an earlier run received (see `ReadBack::recovered`).
    recovered: u64,
    /// Per source, lines this run received (see `ReadBack::fresh`).
    fresh: [u64; 2],
    /// Per source: a line whose pieces were read and whose end was not yet.
    open: [Option<OpenLine>; 2],
    /// Per source: the first record of a line left for a later read.
    cut: [Option<Seq>; 2],
    /// Per source: where delivery stands, and how many pieces of the line
    /// that starts there it took from memory already (see `DiskPlan`).
    from: [Seq; 2],
    skip_pieces: [u32; 2],
}

/// See [`Collected::open`].
struct OpenLine {
    first: Seq,
    /// Where its pieces are in [`Collected::lines`], each with whether an
    /// earlier run received it.
    pieces: Vec<(usize, bool)>,
}

impl Collected {
    fn new(plan: &DiskPlan) -> Collected {
        Collected {
            lines: Vec::new(),
            bytes: 0,
            per_line: plan.per_line,
            recovered: 0,
            fresh: [0; 2],
            open: [None, None],
            cut: [None; 2],
            from: plan.from,
            skip_pieces: plan.skip_pieces,
        }
    }

    /// Takes a line read back; `earlier`: an earlier run received it.
    /// False when the line is not before `upto`, where lines of its source
    /// are in memory: it, and the rest of its source, are not taken.
    /// `start`: the line's first record. A line that starts before `upto`
    /// and ends after it (`upto` is where the writer got) is read again
    /// from its start once it is written.
    fn add(&mut self, line: Line, start: Seq, earlier: bool, upto: Seq) -> bool {
        let s = line.source as usize;
        if !line.is_before(upto) {
            self.leave_open(s);
            self.cut_at(s, start, upto);
            return false;
        }
        let at = self.lines.len();
        // Blank lines are not delivered, nor pieces taken from memory
        // before the rest of their line left it.
        let skip = line.piece && line.ack == self.from[s] && self.skip_pieces[s] > 0;
        let keep = !line.is_blank() && !skip;
        if skip && !line.is_blank() {
            self.skip_pieces[s] -= 1;
        }
        if line.piece {
            let open = self.open[s].get_or_insert_with(|| OpenLine {
                first: line.ack,
                pieces: Vec::new(),
            });
            if keep {
                open.pieces.push((at, earlier));
            }
        } else {
            self.open[s] = None; // its last piece: the line is whole
        }
        if keep {
            self.bytes += line.bytes.len() + self.per_line;
            self.recovered += u64::from(earlier);
            self.fresh[s] += u64::from(!earlier);
            self.lines.push(line);
        }
        true
    }

    /// Delivery of source `s` stays before `start`, a line that did not
    /// end within the read, if it starts before `upto`.
    fn cut_at(&mut self, s: usize, start: Seq, upto: Seq) {
        if start < upto {
            self.cut_before(s, start);
        }
    }

    /// Delivery of source `s` stays at or before `first`.
    fn cut_before(&mut self, s: usize, first: Seq) {
        self.cut[s] = Some(self.cut[s].map_or(first, |cut| cut.min(first)));
    }

    /// Takes back the pieces of source `s`'s open line: it is read again
    /// from its first record.
    fn leave_open(&mut self, s: usize) {
        let Some(OpenLine { first, pieces }) = self.open[s].take() else {
            return;
        };
        self.cut_before(s, first);
        for &(at, earlier) in pieces.iter().rev() {
            let line = self.lines.remove(at);
            self.bytes -= line.bytes.len() + self.per_line;
            self.recovered -= u64::from(earlier);
            self.fresh[s] -= u64::from(!earlier);
        }
        // The other source's pieces after those moved.
        if let Some(other) = &mut self.open[1 - s] {
            for (at, _) in other.pieces.iter_mut() {
                *at -= pieces.iter().filter(|(removed, _)| removed < at).count();
            }
        }
    }
}

/// Records an earlier run wrote that a read back expected and did not
/// find. Records are numbered without gaps within a run, except where the
/// disk could not keep up (the lines were then in memory, and are lost if
/// that run did not deliver them before it ended): every number the read
/// passes without a record is a line lost. Only counted where no read
/// looked before (`gaps_from`), and only from where the read started.
struct Gaps {
    /// The next record number expected; `None`: not counting.
    expect: Option<Seq>,
    from: Seq,
    until: Seq,
    missing: u64,
}

impl Gaps {
    fn new(plan: &DiskPlan, start: Seq) -> Gaps {
        Gaps {
            // A read that starts past what was looked at would leave a
            // stretch unlooked at: it counts nothing.
            expect: (start <= plan.gaps_from).then_some(start),
            from: plan.gaps_from,
            until: plan.session_start,
            missing: 0,
        }
    }

    /// The next record found is `seq` (or the end of the read).
    fn found(&mut self, seq: Seq) {
        let Some(expect) = self.expect else { return };
        let (lo, hi) = (expect.max(self.from), seq.min(self.until));
        if hi > lo {
            self.missing += hi - lo;
        }
        self.expect = Some(expect.max(seq + 1));
    }

    /// The read went through everything before `end`.
    fn end_at(&mut self, end: Seq) {
        let Some(expect) = self.expect else { return };
        let (lo, hi) = (expect.max(self.from), end.min(self.until));
        if hi > lo {
            self.missing += hi - lo;
        }
        self.expect = Some(expect.max(end));
    }

    /// The record `seq` was there but cannot be decoded.
    fn undecodable(&mut self, seq: Seq) {
        if self.expect.is_some() && seq >= self.from && seq < self.until {
            self.missing += 1;
        }
    }

    fn counted_to(&self) -> Option<Seq> {
        self.expect
    }
}

impl Journal {
    /// Reads lines back from disk for delivery (on a blocking thread). A
    /// segment that cannot be read is skipped (with a warning): its lines
    /// are counted as lost, never waited for.
    pub(super) fn read_back(&self, plan: &DiskPlan) -> io::Result<ReadBack> {
        let dir = self
            .dir
            .as_ref()
            .expect("read_back needs a journal on disk");
        let segments = self.segments();
        let start = (0..2)
            .filter(|&s| plan.sources[s])
            .map(|s| plan.from[s])
            .min()
            .expect("some source reads from disk");
        let mut assembler = Assembler::replaying(self.config.max_line);
        let mut out = Vec::new();
        let mut read = Collected::new(plan);
        let mut done = [!plan.sources[0], !plan.sources[1]];
        let mut next_seq = start;
        let mut hint = None;
        let mut stopped_early = false;
        // Records of an earlier run that should be there and are not
        // (this run's are accounted for when they leave memory).
        let mut gaps = Gaps::new(plan, start);
        let mut unreadable = false;
        // The segment holding `start` (or the first one after it, if it went).
        let first = segments
            .iter()
            .rposition(|s| s.first_seq <= start)
            .unwrap_or(0);
        'segments: for segment in segments.iter().skip(first) {
            let file = SegmentFile {
                first_seq: segment.first_seq,
                path: segment.path(dir),
                compressed: segment.compressed,
            };
            let resume = plan.hint.filter(|h| {
                h.segment == segment.first_seq && h.seq <= start && !segment.compressed
            });
            let opened = match resume {
                Some(h) => SegmentReader::open_at(&file.path, h.offset),
                None => SegmentReader::open(&file),
            }
            .or_else(|err| {
                // Compressed meanwhile (it was delivered after all): read that.
                let twin = SegmentFile {
                    path: file.path.with_extension("sz"),
                    compressed: true,
                    ..file.clone()
                };
                if file.compressed || err.kind() != io::ErrorKind::NotFound {
                    Err(err)
                } else {
                    SegmentReader::open(&twin)
                }
            });
            let mut reader = match opened {
                Ok(reader) => reader,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    self.warn_unreadable(&file.path, &err);
                    unreadable = true;
                    continue;
                }
            };
            loop {
                // Where this record can be found again (its chunk's start).
                let at = reader.offset();
                let record = match reader.next() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(err) => {
                        // What is after the damage in this segment is lost.
                        self.warn_unreadable(&file.path, &err);
                        unreadable = true;
                        break;
                    }
                };
                if record.seq < start {
                    continue;
                }
                gaps.found(record.seq);
                next_seq = record.seq + 1;
                let Ok(entry) = LogEntry::decode(record.payload) else {
                    gaps.undecodable(record.seq);
                    continue;
                };
                let Some(source) = Source::parse(&entry.source) else {
                    gaps.undecodable(record.seq);
                    continue;
                };
                let s = source as usize;
                if done[s] || record.seq < plan.from[s] {
                    continue;
                }
                let whole = !assembler.is_joining(source);
                // Where the lines that come out start: the line joined so
                // far, then this record.
                let mut starts = assembler.joining_since();
                let _ = assembler.push(entry, record.seq, &mut out);
                let joining = Source::ALL
                    .iter()
                    .any(|&src| !done[src as usize] && assembler.is_joining(src));
                if let [line] = out.as_slice()
                    && whole
                    && !joining
                    && !read.lines.is_empty()
                    && line.ack <= plan.upto[s]
                    && !line.is_blank()
                    && read.bytes + line.bytes.len() + plan.per_line > plan.max_bytes
                {
                    // A line of this record alone that would take the
                    // batch past its size: left for the next read, which
                    // starts at this record (a batch one line over its
                    // size would be cut, and that line pushed alone).
                    out.clear();
                    if !segment.compressed {
                        hint = Some(record_pos::Pos {
                            segment: segment.first_seq,
                            offset: at,
                            seq: record.seq,
                        });
                    }
                    next_seq = record.seq;
                    stopped_early = true;
                    break 'segments;
                }
                for line in out.drain(..) {
                    let s = line.source as usize;
                    let start = match line.piece {
                        true => line.ack,
                        false => starts[s].take().unwrap_or(record.seq),
                    };
                    if done[s] {
                        continue;
                    }
                    let earlier = plan.read_by_earlier_run(&line, record.seq);
                    if !read.add(line, start, earlier, plan.upto[s]) {
                        done[s] = true; // from here on, this source is in memory
                    }
                }
                let joining = Source::ALL
                    .iter()
                    .any(|&src| !done[src as usize] && assembler.is_joining(src));
                if done.iter().all(|d| *d) || (read.bytes >= plan.max_bytes && !joining) {
                    if !segment.compressed {
                        hint = Some(record_pos::Pos {
                            segment: segment.first_seq,
                            offset: reader.offset(),
                            seq: next_seq,
                        });
                    }
                    stopped_early = true;
                    break 'segments;
                }
            }
        }
        let reached_end = hint.is_none();
        if reached_end {
            // The end of what is on disk. A line still joined here whose
            // records are all written (or failed) ends here: what an earlier
            // run wrote when it stopped, a FIFO that ended inside a line, a
            // line whose end could not be written. It is delivered as it is
            // (the rest, if any, counted when delivery has read past it).
            let mut starts = assembler.joining_since();
            for source in Source::ALL {
                let s = source as usize;
                if !done[s] && plan.whole[s] {
                    assembler.flush_source(source, &mut out);
                }
            }
            for line in out.drain(..) {
                // Beyond `upto`: a line the FIFO reader took over.
                let s = line.source as usize;
                let start = starts[s].take().unwrap_or(next_seq);
                let earlier = plan.read_by_earlier_run(&line, next_seq);
                if !done[s] && !read.add(line, start, earlier, plan.upto[s]) {
                    done[s] = true;
                }
            }
        }
        for (s, joining) in assembler.joining_since().into_iter().enumerate() {
            // A line whose end was not written yet: it is read again,
            // whole, once it is (delivery does not move inside it).
            read.leave_open(s);
            if let Some(start) = joining.filter(|_| !done[s]) {
                read.cut_at(s, start, plan.upto[s]);
            }
        }
        if !stopped_early {
            // Up to the end of what the earlier run wrote.
            gaps.end_at(
                plan.session_start
                    .min(plan.upto.into_iter().max().unwrap_or(0)),
            );
        }
        let mut advance = plan.from;
        for s in 0..2 {
            if !plan.sources[s] {
                continue;
            }
            advance[s] = if done[s] || reached_end {
                plan.upto[s]
            } else {
                next_seq.min(plan.upto[s])
            };
            if let Some(first) = read.cut[s] {
                advance[s] = advance[s].min(first);
            }
            advance[s] = advance[s].max(plan.from[s]);
        }
        Ok(ReadBack {
            advance,
            hint,
            recovered: read.recovered,
            corrupt: gaps.missing,
            gaps_counted_to: gaps.counted_to(),
            fresh: read.fresh,
            unreadable,
            cut: read.cut != [None; 2],
            lines: read.lines,
        })
    }

    /// Accounts for a read back from disk (under the tail lock): records of
    /// an earlier run found missing are counted as lost, and a source whose
    /// delivery read everything that left memory counts what was not found.
    pub(super) fn account_read_back(&self, tail: &mut Tail, read: &ReadBack) {
        if read.corrupt > 0 {
            ContainerCounters::add(&self.counters.recovered, read.corrupt);
            self.counters
                .drop_lines(DropReason::JournalCorrupt, read.corrupt);
        }
        if read.corrupt > 0 && tail.eviction_warning.allow(Instant::now()).is_some() {
            tracing::warn!(
                container = %self.name,
                lines = read.corrupt,
                dropped_total = self.counters.dropped(DropReason::JournalCorrupt),
                "journal: lines an earlier run wrote are missing or damaged on disk; counted as dropped (journal_corrupt)"
            );
        }
        if let Some(to) = read.gaps_counted_to {
            tail.gaps_counted_to = tail.gaps_counted_to.max(to);
        }
        if read.unreadable {
            tail.lost_reason.get_or_insert(DropReason::JournalCorrupt);
        }
        for s in 0..2 {
            tail.backlog[s] = tail.backlog[s].saturating_sub(read.fresh[s]);
        }
        self.reconcile_backlog(tail);
    }

    /// For each source whose delivery has taken everything up to where
    /// lines left memory: the lines that left memory and were not read
    /// back were not on disk any more (a disk bound deleted their segment,
    /// or it could not be read). They are counted as dropped.
    pub(super) fn reconcile_backlog(&self, tail: &mut Tail) {
        for s in 0..2 {
            // A line still being read whose pieces wait on disk counts in
            // the backlog, beyond `evicted_to` until it ends.
            let following = tail.unfinished_on_disk[s].is_some();
            if tail.taken[s] < tail.evicted_to[s] || tail.backlog[s] == 0 || following {
                continue;
            }
            let lost = std::mem::take(&mut tail.backlog[s]);
            let reason = tail.lost_reason.unwrap_or(DropReason::JournalCorrupt);
            self.counters
                .backlog_lines
                .fetch_sub(lost as i64, Ordering::Relaxed);
            self.counters.drop_lines(reason, lost);
            if reason == DropReason::MemoryFull {
                // Their write failed: out of memory and not in the journal.
                ContainerCounters::add(&self.counters.journal_misses, lost);
            }
            if tail.eviction_warning.allow(Instant::now()).is_some() {
                tracing::warn!(
                    container = %self.name,
                    lines = lost,
                    reason = reason.as_str(),
                    "lines that had left memory for the journal were no longer on disk when delivery came to them; counted as dropped"
                );
            }
        }
    }
}
