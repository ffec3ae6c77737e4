//! What delivery takes from a container: its journal's lines, through its
//! pipeline stages when it has any, as batches for its endpoint.
//!
//! ```text
//!  journal ──take──▶ lines ──(no stages)──────────────────────▶ Batch::Lines
//!     ▲                 └──▶ entries ─▶ process::Pipeline ─▶ ready ─▶ Batch::Entries
//!     └──────────settle: counts, cursor (not past what the stages hold)──┘
//! ```
//!
//! The endpoint sees batches, labels and lengths; it never learns what a
//! stage is. A batch of processed entries has one tenant (a `tenant` stage
//! may give entries their own), so a push carries one `X-Scope-OrgID`.
//!
//! Every journal line is counted once: sent, dropped, filtered by a stage,
//! or held by the stages (pending). The cursor stays before the first line
//! the stages still hold, so after a crash those lines are read again and
//! the stages, deciding by the entries' own timestamps, cut the same
//! multiline blocks.
//!
//! **Parts.** A batch goes to Loki whole, or in parts when Loki takes less
//! at once (a stream over its per-stream burst, a push too large for a
//! proxy: see [`crate::ship::pace`]). [`Feed::cut`] makes the part to push
//! next, from the first item not yet settled: lines of a plain batch, or
//! entries of a processed one, alike. [`Feed::settle`] settles that part
//! and hands the batch back while parts remain; its lines are counted in
//! the batch (sent, dropped by reason) and reach the container's counters,
//! and the journal, with the last part, or (a batch of plain lines) as
//! soon as every line before them is settled too ([`Journal::ack_front`]:
//! the batch then drops its front and counts from there). A plain batch
//! with a backlog behind it also takes its next part from the journal
//! while a part is out ([`Feed::extend`]), so it rolls on instead of
//! ending. So every journal line is still counted once, and the journal's
//! cursor (moved only past lines settled with every line before them, and
//! never past what the stages hold) never passes a line Loki has not
//! taken: after a crash mid-batch, what was not settled goes again, and
//! Loki keeps one copy of what it already had. A refused part whose first
//! entries Loki stored all the same (Loki 2) counts them as sent
//! ([`Feed::took_first`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::config::labels::StreamLabels;
use crate::journal::{Journal, Settled, Taken};
use crate::line::{Line, Seq, Source, for_loki};
use crate::observe::{DropReason, Drops};
use crate::process::entry::seed_of;
use crate::process::{Context, Entry, Extracted, Held, Labels, Origin, Pipeline, Value};
use crate::proto::logproto::LabelPairAdapter;
use crate::ship::encode::PushBuilder;
use crate::ship::policy;

/// The reason lines of a container that relabelling drops are counted
/// under.
pub const RELABEL_REASON: &str = "relabel_config";

/// The longest line [`Feed::probe`] sends again: the longer the line, the
/// likelier Loki closed its block right after it.
pub const PROBE_LINE: usize = 1024;

/// Nanoseconds since the Unix epoch, as the stages' clock.
pub type Clock = fn() -> i64;

/// The wall clock.
pub fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A container's lines on their way to its endpoint.
pub struct Feed {
    pub journal: Arc<Journal>,
    pub labels: StreamLabels,
    /// Loki 3 structured metadata for every entry of this container.
    pub metadata: Vec<LabelPairAdapter>,
    stages: Option<Stages>,
}

/// A container's pipeline and what it holds.
struct Stages {
    pipeline: Pipeline,
    /// Relabelling dropped the container: every line is filtered.
    dropped: bool,
    /// Per source: the labels entries start with, and the extracted map's
    /// seed made from them.
    bases: [(Labels, Arc<BTreeMap<String, Value>>); 2],
    /// Processed entries waiting for a push.
    ready: VecDeque<Entry>,
    /// The held lines last added to the container's counters.
    counted: i64,
    /// The stages were flushed after the input ended: what they still
    /// hold waits for a time (`tick`), not for input.
    flushed: bool,
    /// Its stages keep metric series (a `metrics` stage): published after
    /// each batch.
    has_metrics: bool,
    clock: Clock,
}

/// Lines handed to the endpoint; given back with [`Feed::settle`] or
/// [`Feed::abandon`]. It goes to Loki whole, or in parts when Loki takes
/// less at once ([`Feed::cut`]), up to two of them in pushes at once
/// ([`Batch::launch`]). `part` is the part being built into a push, or
/// whose push was answered ([`Batch::focus`]); what the batch answers
/// (its lines, bytes, streams) is of that part. Items before `done` are
/// settled, and counted in `sent` and `drops` until the last part ends
/// the batch or the journal finishes them ([`Feed::ack_front`]).
pub struct Batch {
    taken: Option<Taken>,
    content: Content,
    done: usize,
    part: std::ops::Range<usize>,
    /// Parts after `done` that are in a push (`Some(push)`) or settled
    /// already (`None`: a later part answered before an earlier one), by
    /// position.
    out: Vec<(std::ops::Range<usize>, Option<u64>)>,
    /// Lines of the settled parts that Loki took.
    sent: u64,
    /// Lines of the settled parts given up, by reason.
    drops: Drops,
}

enum Content {
    /// The journal's lines as they are, under the container's labels.
    Lines,
    /// Entries the stages made; all of one tenant.
    Entries {
        entries: Vec<Entry>,
        tenant: Option<String>,
        filtered: BTreeMap<Arc<str>, u64>,
    },
}

impl Batch {
    fn new(taken: Option<Taken>, content: Content) -> Batch {
        let mut batch = Batch {
            taken,
            content,
            done: 0,
            part: 0..0,
            out: Vec::new(),
            sent: 0,
            drops: Drops::default(),
        };
        batch.part = 0..batch.items();
        batch
    }

    /// The part just made goes in push `push`.
    pub fn launch(&mut self, push: u64) {
        if self.part.is_empty() {
            return;
        }
        let at = self
            .out
            .partition_point(|(range, _)| range.start < self.part.start);
        self.out.insert(at, (self.part.clone(), Some(push)));
    }

    /// Push `push` was answered: its part is the one the batch is about
    /// (settled by [`Feed::settle`], or left to go again).
    pub fn focus(&mut self, push: u64) {
        self.part = match self.out.iter().find(|(_, p)| *p == Some(push)) {
            Some((range, _)) => range.clone(),
            None => self.done..self.done,
        };
    }

    /// Push `push` is over: its part, unless settled, goes again.
    pub fn release(&mut self, push: u64) {
        self.out.retain(|(_, p)| *p != Some(push));
    }

    /// Whether the part is the oldest not settled: no earlier part of the
    /// batch waits to go again or is in a push.
    pub fn is_oldest_part(&self) -> bool {
        self.part.start == self.done
    }

    /// Items neither settled nor in a push.
    pub fn unsent_items(&self) -> usize {
        let out: usize = self.out.iter().map(|(range, _)| range.len()).sum();
        self.items() - self.done - out
    }

    /// Whether some item is neither settled nor in a push.
    pub fn has_unsent(&self) -> bool {
        !self.gap().is_empty()
    }

    /// The first items after `done` neither settled nor in a push.
    fn gap(&self) -> std::ops::Range<usize> {
        let mut start = self.done;
        for (range, _) in &self.out {
            if range.start > start {
                return start..range.start;
            }
            start = start.max(range.end);
        }
        start..self.items()
    }

    /// Marks the items of `range` settled and moves `done` past every
    /// settled item at its front.
    fn mark_settled(&mut self, range: std::ops::Range<usize>) {
        if let Some(out) = self.out.iter_mut().find(|(r, _)| *r == range) {
            out.1 = None;
        } else if !range.is_empty() {
            let at = self.out.partition_point(|(r, _)| r.start < range.start);
            self.out.insert(at, (range.clone(), None));
        }
        if range.start == self.done {
            self.done = self.done.max(range.end);
        }
        while let Some(((range, None), _)) = self.out.split_first()
            && range.start <= self.done
        {
            self.done = self.done.max(range.end);
            self.out.remove(0);
        }
        self.out.retain(|(r, _)| r.end > self.done);
    }

    /// The items (by position) that are settled: those before `done`, and
    /// those of parts settled ahead of an earlier one.
    fn settled_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let ahead = (self.out.iter())
            .filter(|(_, push)| push.is_none())
            .map(|(range, _)| range.clone());
        std::iter::once(0..self.done).chain(ahead).collect()
    }

    /// Parts settled ahead of an earlier one that is not settled yet.
    fn settled_ahead(&self) -> usize {
        self.out.iter().filter(|(_, push)| push.is_none()).count()
    }

    /// The settled items at the front are gone (the journal finished
    /// them): positions count from the first item left.
    fn rebase(&mut self) {
        let n = self.done;
        let shift = |r: &std::ops::Range<usize>| r.start.saturating_sub(n)..r.end.saturating_sub(n);
        self.part = shift(&self.part);
        for (range, _) in &mut self.out {
            *range = shift(range);
        }
        self.done = 0;
        self.sent = 0;
        self.drops = Drops::default();
    }

    /// Lines or entries in the whole batch.
    fn items(&self) -> usize {
        match &self.content {
            Content::Lines => self.taken.as_ref().map_or(0, Taken::len),
            Content::Entries { entries, .. } => entries.len(),
        }
    }

    /// The lines of the part being pushed.
    fn part_lines(&self) -> &[Line] {
        self.taken
            .as_ref()
            .map_or(&[][..], |t| &t.lines[self.part.clone()])
    }

    /// The entries of the part being pushed.
    fn part_entries(&self) -> &[Entry] {
        match &self.content {
            Content::Lines => &[],
            Content::Entries { entries, .. } => &entries[self.part.clone()],
        }
    }

    /// Bytes of item `i` as pushed (its line).
    fn item_bytes(&self, i: usize) -> usize {
        match &self.content {
            Content::Lines => self.taken.as_ref().map_or(0, |t| t.lines[i].bytes.len()),
            Content::Entries { entries, .. } => entries[i].line.len(),
        }
    }

    /// Journal lines items `range` stand for.
    fn lines_of(&self, range: std::ops::Range<usize>) -> u64 {
        match &self.content {
            Content::Lines => range.len() as u64,
            Content::Entries { entries, .. } => entries[range]
                .iter()
                .map(|e| u64::from(e.origin.lines))
                .sum(),
        }
    }

    /// Entries to push in this part (none: the batch only settles what the
    /// stages did).
    pub fn len(&self) -> usize {
        self.part.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of this part's lines as pushed.
    pub fn bytes(&self) -> usize {
        self.part.clone().map(|i| self.item_bytes(i)).sum()
    }

    /// Bytes of the lines not yet settled, this part included.
    pub fn remaining_bytes(&self) -> usize {
        self.bytes_from_done_but(|push| push.is_none())
    }

    /// Bytes of the lines neither settled nor in a push: what a push could
    /// take of this batch.
    pub fn unsent_bytes(&self) -> usize {
        self.bytes_from_done_but(|_| true)
    }

    /// Bytes of the items from `done` on, but for the parts of `out`
    /// (settled ahead: `None`; in a push: `Some`) that `skip` picks.
    fn bytes_from_done_but(&self, skip: impl Fn(Option<u64>) -> bool) -> usize {
        let skipped: usize = (self.out.iter())
            .filter(|(_, push)| skip(*push))
            .flat_map(|(range, _)| range.clone())
            .map(|i| self.item_bytes(i))
            .sum();
        (self.done..self.items())
            .map(|i| self.item_bytes(i))
            .sum::<usize>()
            - skipped
    }

    /// Bytes of the structured metadata the stages set, as encoded.
    fn own_metadata_bytes(&self) -> usize {
        self.part_entries()
            .iter()
            .flat_map(|e| &e.metadata)
            .map(|(n, v)| n.len() + v.len() + 8)
            .sum()
    }

    /// The tenant a `tenant` stage chose for these entries.
    pub fn tenant(&self) -> Option<&str> {
        match &self.content {
            Content::Lines => None,
            Content::Entries { tenant, .. } => tenant.as_deref(),
        }
    }

    /// Whether any entry of this part carries structured metadata of its own.
    pub fn has_own_metadata(&self) -> bool {
        self.part_entries().iter().any(|e| !e.metadata.is_empty())
    }

    /// The timestamps of this part's items, in push order.
    fn part_timestamps(&self) -> Vec<i64> {
        match &self.content {
            Content::Lines => self.part_lines().iter().map(|l| l.timestamp_ns).collect(),
            Content::Entries { .. } => self.part_entries().iter().map(|e| e.timestamp).collect(),
        }
    }
}

impl Feed {
    /// Lines go as they are, under `labels`.
    pub fn plain(
        journal: Arc<Journal>,
        labels: StreamLabels,
        metadata: Vec<LabelPairAdapter>,
    ) -> Feed {
        Feed {
            journal,
            labels,
            metadata,
            stages: None,
        }
    }

    /// Lines go through `pipeline` first; with `dropped` (relabelling
    /// dropped the container) none goes to Loki, each counted as filtered.
    pub fn processed(
        journal: Arc<Journal>,
        labels: StreamLabels,
        metadata: Vec<LabelPairAdapter>,
        pipeline: Pipeline,
        dropped: bool,
    ) -> Feed {
        let base = |source: Source| {
            let set = labels.label_set(source).clone();
            let seed = seed_of(&set);
            (Arc::new(set), seed)
        };
        let bases = [base(Source::Stdout), base(Source::Stderr)];
        Feed {
            journal,
            labels,
            metadata,
            stages: Some(Stages {
                dropped,
                bases,
                has_metrics: pipeline_has_metrics(&pipeline),
                pipeline,
                ready: VecDeque::new(),
                counted: 0,
                flushed: false,
                clock: wall_clock,
            }),
        }
    }

    /// Uses `clock` as the stages' clock (tests on paused time).
    pub fn with_clock(mut self, clock: Clock) -> Feed {
        if let Some(stages) = &mut self.stages {
            stages.clock = clock;
        }
        self
    }

    pub fn name(&self) -> &str {
        &self.journal.name
    }

    /// Bytes the container's structured metadata adds to each entry.
    pub fn metadata_bytes(&self) -> usize {
        self.metadata
            .iter()
            .map(|pair| pair.name.len() + pair.value.len() + 8)
            .sum()
    }

    /// Bytes waiting for delivery (for filling a push).
    pub fn queued_bytes(&self) -> usize {
        let ready = self
            .stages
            .as_ref()
            .map_or(0, |s| s.ready.iter().map(|e| e.line.len()).sum::<usize>());
        self.journal.queued_bytes() + ready
    }

    /// When, seen from `now`, the stages have something to hand on without
    /// new lines: processed entries waiting, a multiline block whose idle
    /// time is up, everything once the container's FIFO has ended. `now`
    /// itself when that is already so.
    pub fn next_release(&self, now: Instant) -> Option<Instant> {
        let stages = self.stages.as_ref()?;
        if !stages.ready.is_empty() || (self.input_ended() && !stages.flushed && stages.holds()) {
            return Some(now);
        }
        let tick = stages.pipeline.next_tick()?;
        let wait = tick.saturating_sub((stages.clock)());
        Some(now + Duration::from_nanos(u64::try_from(wait).unwrap_or(0)))
    }

    /// No more lines will come: the FIFO ended (not a plugin shutdown,
    /// after which a restart goes on reading) and all were taken.
    fn input_ended(&self) -> bool {
        !self.journal.is_live() && !self.journal.is_paused() && self.journal.is_drained()
    }

    /// Whether everything is delivered or given up and no reader feeds the
    /// journal any more; then the lane is released. At a plugin shutdown
    /// what the stages hold stays in the journal for the next start.
    pub fn is_done(&self) -> bool {
        let holds = self.stages.as_ref().is_some_and(Stages::holds);
        (!holds || self.journal.is_paused()) && self.journal.release_lane_if_done()
    }

    /// The next batch: up to `max_bytes` of lines (at least one), each line
    /// counting `per_line` more (what goes with every entry).
    pub async fn take(&mut self, max_bytes: usize, per_line: usize) -> Option<Batch> {
        let max_bytes = max_bytes.max(1);
        let Some(stages) = &mut self.stages else {
            let taken = self.journal.take_with(max_bytes, per_line).await?;
            return Some(Batch::new(Some(taken), Content::Lines));
        };
        let mut cx = Context::new((stages.clock)());
        let mut taken = None;
        if stages.ready.is_empty() && !stages.pipeline.is_full() {
            taken = self.journal.take_with(max_bytes, per_line).await;
        }
        if let Some(lines) = &taken {
            let mut entries = stages.entries_of(lines);
            if stages.dropped {
                let reason: Arc<str> = Arc::from(RELABEL_REASON);
                for entry in &entries {
                    cx.filter(entry, &reason);
                }
                entries.clear();
            }
            stages.pipeline.run(&mut entries, &mut cx);
            stages.keep(entries);
        }
        // Idle timers act only once every line read so far has gone
        // through (cx.input_waiting), so a line that is merely waiting is
        // never cut off from its block; rate limits release meanwhile.
        let caught_up = self.journal.is_caught_up();
        cx.input_waiting = !caught_up;
        let mut released = Vec::new();
        if caught_up && !self.journal.is_live() && !self.journal.is_paused() {
            stages.pipeline.flush(&mut released, &mut cx);
            stages.flushed = true;
        }
        // Apart: what a tick releases goes through the stages after the
        // one releasing it, and flushed entries went through them already.
        let mut due = Vec::new();
        stages.pipeline.tick(&mut due, &mut cx);
        released.append(&mut due);
        stages.keep(released);
        if stages.has_metrics {
            *self
                .journal
                .counters
                .stage_metrics
                .lock()
                .expect("counters lock poisoned") = stages.pipeline.metrics(cx.now);
        }
        let filtered = cx.take_filtered();
        let entries = stages.cut(max_bytes, per_line);
        tracing::debug!(
            container = %self.journal.name,
            taken = taken.as_ref().map_or(0, Taken::len),
            entries = entries.len(),
            ready = stages.ready.len(),
            drained = self.journal.is_drained(),
            "stages ran"
        );
        if entries.is_empty() && taken.is_none() && filtered.is_empty() {
            return None;
        }
        let tenant = entries.first().and_then(|e| e.tenant().map(str::to_string));
        Some(Batch::new(
            taken,
            Content::Entries {
                entries,
                tenant,
                filtered,
            },
        ))
    }

    /// Makes the part of `batch` to push next: from the first item not yet
    /// settled, as many as fit in `max_bytes` (at least one), each counting
    /// `per_line` more.
    pub fn cut(&self, batch: &mut Batch, max_bytes: usize, per_line: usize) {
        let gap = batch.gap();
        let (mut end, mut bytes) = (gap.start, 0usize);
        while end < gap.end {
            let size = batch.item_bytes(end) + per_line;
            if end > gap.start && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            end += 1;
        }
        batch.part = gap.start..end;
    }

    /// Adds the batch's entries to a push (`metadata`: whether this
    /// endpoint takes structured metadata).
    pub fn encode(&self, batch: &Batch, push: &mut PushBuilder, metadata: bool) {
        let container: &[LabelPairAdapter] = if metadata { &self.metadata } else { &[] };
        match &batch.content {
            Content::Lines => push.add(&self.labels, batch.part_lines(), container),
            Content::Entries { .. } => {
                let entries = batch.part_entries();
                if metadata {
                    push.add_entries(entries, container);
                } else {
                    let bare: Vec<Entry> = entries
                        .iter()
                        .map(|e| Entry {
                            metadata: Vec::new(),
                            ..e.clone()
                        })
                        .collect();
                    push.add_entries(&bare, container);
                }
            }
        }
    }

    /// A push of one item of the part Loki just took, again: the one
    /// before the part's last item, when it is of the same stream, has an
    /// earlier timestamp and at most [`PROBE_LINE`] bytes (see
    /// [`crate::ship::endpoint`]'s `Order`). `None` when the part has no
    /// such item, or goes to a tenant of its own.
    pub fn probe(&self, batch: &Batch, metadata: bool) -> Option<Bytes> {
        if batch.tenant().is_some() {
            return None;
        }
        let container: &[LabelPairAdapter] = if metadata { &self.metadata } else { &[] };
        let mut push = PushBuilder::default();
        match &batch.content {
            Content::Lines => {
                let [.., older, last] = batch.part_lines() else {
                    return None;
                };
                let fits = older.source == last.source
                    && older.timestamp_ns < last.timestamp_ns
                    && older.bytes.len() <= PROBE_LINE;
                if !fits {
                    return None;
                }
                push.add(&self.labels, std::slice::from_ref(older), container);
            }
            Content::Entries { .. } => {
                let [.., older, last] = batch.part_entries() else {
                    return None;
                };
                let fits = Arc::ptr_eq(&older.labels, &last.labels)
                    && older.timestamp < last.timestamp
                    && older.line.len() <= PROBE_LINE;
                if !fits {
                    return None;
                }
                let mut again = older.clone();
                if !metadata {
                    again.metadata.clear();
                }
                push.add_entries(&[again], container);
            }
        }
        Some(push.encode())
    }

    /// Bytes the batch takes in a push beyond its lines (metadata).
    pub fn overhead(&self, batch: &Batch, per_line: usize) -> usize {
        per_line * batch.len() + batch.own_metadata_bytes()
    }

    /// The batch's streams as Loki names them (label sets), each with the
    /// lengths of its lines as Loki sees them, for matching Loki's blame.
    pub fn streams(&self, batch: &Batch) -> Vec<(policy::Labels, Vec<usize>)> {
        match &batch.content {
            Content::Lines => {
                let lines = batch.part_lines();
                Source::ALL
                    .iter()
                    .filter_map(|&source| {
                        let lengths: Vec<usize> = lines
                            .iter()
                            .filter(|l| l.source == source)
                            .map(|l| for_loki(&l.bytes).len())
                            .collect();
                        (!lengths.is_empty())
                            .then(|| (self.labels.label_set(source).clone(), lengths))
                    })
                    .collect()
            }
            Content::Entries { .. } => {
                let entries = batch.part_entries();
                let (streams, of_entry) = entry_streams(entries);
                let mut lengths: Vec<Vec<usize>> = vec![Vec::new(); streams.len()];
                for (entry, &stream) in entries.iter().zip(&of_entry) {
                    lengths[stream].push(entry.line.len());
                }
                streams.into_iter().zip(lengths).collect()
            }
        }
    }

    /// Ends the part being pushed: `lost` says, for each stream and the
    /// lengths of its lines, how many entries Loki did not take; their
    /// lines count as dropped for `reason`, the others as sent. Returns
    /// the batch while parts remain; the last part ends the batch, and its
    /// lines are counted (and the journal's cursor moves) then, or earlier
    /// for a front of plain lines settled whole ([`Feed::ack_front`]).
    pub fn settle(
        &mut self,
        mut batch: Batch,
        lost: impl Fn(&policy::Labels, &[usize]) -> u64,
        reason: DropReason,
    ) -> Option<Batch> {
        let streams = self.streams(&batch);
        let (sent, dropped) = match &batch.content {
            Content::Lines => {
                let dropped: u64 = streams
                    .iter()
                    .map(|(set, lengths)| lost(set, lengths).min(lengths.len() as u64))
                    .sum();
                (batch.len() as u64 - dropped, dropped)
            }
            Content::Entries { .. } => {
                // Loki says how many entries of a stream it refused; count
                // the lines of that many of its entries.
                let entries = batch.part_entries();
                let (sets, of_entry) = entry_streams(entries);
                let mut refused: Vec<u64> = sets
                    .iter()
                    .zip(&streams)
                    .map(|(_, (set, lengths))| lost(set, lengths).min(lengths.len() as u64))
                    .collect();
                let (mut sent, mut dropped) = (0u64, 0u64);
                for (entry, &stream) in entries.iter().zip(&of_entry) {
                    let lines = u64::from(entry.origin.lines);
                    if refused[stream] > 0 {
                        refused[stream] -= 1;
                        dropped += lines;
                    } else {
                        sent += lines;
                    }
                }
                (sent, dropped)
            }
        };
        batch.sent += sent;
        batch.drops.add(reason, dropped);
        batch.mark_settled(batch.part.clone());
        if batch.done < batch.items() {
            self.ack_front(&mut batch);
            return Some(batch);
        }
        self.finish(batch);
        None
    }

    /// Lets the journal finish the lines at the front of a batch that
    /// parts remain of, once every line settled is at the front (no later
    /// part settled ahead of an earlier one): counted, the cursor past
    /// them, their memory let go. A batch of the stages' entries finishes
    /// whole.
    fn ack_front(&mut self, batch: &mut Batch) {
        let ahead = batch.settled_ahead() > 0;
        let (Content::Lines, Some(taken), false) = (&batch.content, &mut batch.taken, ahead) else {
            return;
        };
        if self.journal.ack_front(taken, batch.done, &batch.drops) {
            batch.rebase();
        }
    }

    /// Whether a batch in a push may take more lines from the journal for
    /// a next part now (see [`Feed::extend`]): it is of the journal's lines
    /// as they are, its front can be finished as it is delivered
    /// ([`Journal::may_ack_front`]), at most one part of it is settled
    /// ahead of an earlier one, each part of it is in a push already, and
    /// at least `part` bytes wait (or whatever waits, once the container's
    /// output has ended).
    pub fn may_extend(&self, batch: &Batch, part: usize) -> bool {
        let (Content::Lines, Some(taken)) = (&batch.content, &batch.taken) else {
            return false;
        };
        // Parts settled ahead of an earlier one still out cannot be
        // finished until it is: one may be (the halves of a pair end in
        // either order), but a batch taking more beside every part settled
        // ahead would grow for as long as that earlier one is out.
        let journal = &self.journal;
        batch.settled_ahead() <= 1
            && journal.may_ack_front(taken)
            && !batch.has_unsent()
            && (journal.has_disk_backlog()
                || journal.queued_bytes() >= part
                || (!journal.is_live() && journal.queued_bytes() > 0))
    }

    /// Adds up to `max_bytes` of the next lines to a batch whose parts are
    /// all in pushes (see [`Feed::may_extend`]), for its next part. False
    /// when none came.
    pub async fn extend(&mut self, batch: &mut Batch, max_bytes: usize, per_line: usize) -> bool {
        let (Content::Lines, Some(taken)) = (&batch.content, &mut batch.taken) else {
            return false;
        };
        self.journal
            .take_more(taken, max_bytes.max(1), per_line)
            .await
    }

    /// Every entry of the part delivered; see [`Feed::settle`].
    pub fn delivered(&mut self, batch: Batch) -> Option<Batch> {
        self.settle(batch, |_, _| 0, DropReason::Rejected)
    }

    /// Loki stored the first `n` items of the part being pushed though it
    /// refused the push (Loki 2 takes a stream's entries while its rate
    /// limit lasts): they count as sent, and the part ends before them.
    pub fn took_first(&mut self, batch: &mut Batch, n: usize) {
        let n = n.min(batch.len().saturating_sub(1));
        let start = batch.part.start;
        batch.sent += batch.lines_of(start..start + n);
        // The rest of the part goes again: out of its push, not settled.
        batch.out.retain(|(range, _)| *range != batch.part);
        batch.mark_settled(start..start + n);
        batch.part = start + n..start + n;
    }

    /// How many items at the start of the part Loki surely stored, given
    /// the timestamp of the first entry it ignored: every one before the
    /// first item with that timestamp (Loki goes through a stream's entries
    /// in order). Only for a part of one stream.
    pub fn stored_before(&self, batch: &Batch, first_ignored_ns: i64) -> Option<usize> {
        if self.streams(batch).len() != 1 {
            return None;
        }
        batch
            .part_timestamps()
            .iter()
            .position(|&t| t == first_ignored_ns)
    }

    /// Counts a batch whose parts are all settled and lets the journal
    /// move its cursor.
    fn finish(&mut self, batch: Batch) {
        match batch.content {
            Content::Lines => {
                if let Some(taken) = batch.taken {
                    self.journal.ack_dropped(taken, &batch.drops);
                }
            }
            Content::Entries { filtered, .. } => {
                let Some(stages) = &mut self.stages else {
                    return;
                };
                let held = stages.held();
                self.journal.settle(
                    batch.taken,
                    Settled {
                        sent: batch.sent,
                        dropped: batch.drops,
                        filtered: &filtered,
                        hold: held.hold,
                    },
                );
                stages.count_held(&self.journal, held.lines);
            }
        }
    }

    /// Gives a batch back without an outcome (the plugin is stopping):
    /// lines in the journal go again after the restart. What parts settled
    /// (an earlier one, or a later half ahead of an earlier) is counted as
    /// such, and every other line the batch stood for is given back once.
    pub fn abandon(&mut self, batch: Batch) {
        let settled = batch.sent + batch.drops.total();
        let no_filter = BTreeMap::new();
        let (given_back, filtered) = match (&batch.content, &mut self.stages) {
            (Content::Entries { filtered, .. }, Some(stages)) => {
                // The lines of this take, and the lines of earlier takes
                // counted held until the batch's entries were cut from
                // them, less what settled, what the stages filtered (an
                // outcome already) and what they still hold.
                let taken = batch.taken.as_ref().map_or(0, |t| t.len() as u64);
                let before = u64::try_from(stages.counted).unwrap_or(0);
                let held = stages.held().lines;
                stages.count_held(&self.journal, held);
                let gone = settled + held + filtered.values().sum::<u64>();
                debug_assert!(taken + before >= gone, "{taken} + {before} < {gone}");
                ((taken + before).saturating_sub(gone), filtered)
            }
            _ => ((batch.items() as u64).saturating_sub(settled), &no_filter),
        };
        // The journal's own lines are the batch's items: which of them
        // settled is known, and so which lines given back are lost.
        let settled_lines = matches!(batch.content, Content::Lines).then(|| batch.settled_ranges());
        self.journal.abandon(
            batch.taken,
            Settled {
                sent: batch.sent,
                dropped: batch.drops,
                filtered,
                hold: [Seq::MAX; 2],
            },
            given_back,
            settled_lines.as_deref(),
        );
    }
}

/// Whether a pipeline has a `metrics` stage, nested ones included.
fn pipeline_has_metrics(pipeline: &Pipeline) -> bool {
    fn has(names: &[&str]) -> bool {
        names.contains(&"metrics") || names.contains(&"match")
    }
    has(&pipeline.names())
}

/// The distinct label sets entries are pushed under, and for each entry
/// the index of its set. Entries share label sets (the stages intern
/// them), so each shared set is looked at once.
fn entry_streams(entries: &[Entry]) -> (Vec<policy::Labels>, Vec<usize>) {
    let mut sets: Vec<policy::Labels> = Vec::new();
    let mut by_address: std::collections::HashMap<*const BTreeMap<String, String>, usize> =
        std::collections::HashMap::new();
    let of_entry = entries
        .iter()
        .map(|entry| {
            *by_address
                .entry(Arc::as_ptr(&entry.labels))
                .or_insert_with(|| {
                    let set = pushed_set(&entry.labels);
                    match sets.iter().position(|s| *s == set) {
                        Some(i) => i,
                        None => {
                            sets.push(set);
                            sets.len() - 1
                        }
                    }
                })
        })
        .collect();
    (sets, of_entry)
}

/// The labels an entry is pushed under, as a map (for blame matching).
fn pushed_set(labels: &BTreeMap<String, String>) -> policy::Labels {
    labels
        .iter()
        .filter(|(k, v)| k.as_str() != crate::process::TENANT_LABEL && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Stages {
    /// Entries for journal lines: each under its source's labels, with the
    /// extracted map seeded from them.
    fn entries_of(&self, taken: &Taken) -> Vec<Entry> {
        let mut before: [Seq; 2] = taken.from();
        taken
            .lines
            .iter()
            .map(|line: &Line| {
                let s = line.source as usize;
                let origin = Origin::line(line.source, before[s]);
                before[s] = before[s].max(line.ack);
                let (labels, seed) = &self.bases[s];
                Entry {
                    labels: labels.clone(),
                    extracted: Extracted::seeded(seed.clone()),
                    line: String::from_utf8_lossy(&line.bytes).into_owned(),
                    timestamp: line.timestamp_ns,
                    metadata: Vec::new(),
                    origin,
                }
            })
            .collect()
    }

    /// Keeps processed entries for the next pushes, without the extracted
    /// fields nobody reads any more.
    fn keep(&mut self, entries: Vec<Entry>) {
        self.ready.extend(entries.into_iter().map(|mut entry| {
            entry.extracted.clear();
            entry
        }));
    }

    /// Lines held: in the stages and processed but not yet taken.
    fn held(&self) -> Held {
        let mut held = Held::default();
        self.pipeline.held(&mut held);
        for entry in &self.ready {
            held.add(&entry.origin);
        }
        held
    }

    fn holds(&self) -> bool {
        self.held().lines > 0
    }

    /// Brings the container's `held_lines` to `now`.
    fn count_held(&mut self, journal: &Journal, now: u64) {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        journal
            .counters
            .held_lines
            .fetch_add(now - self.counted, Ordering::Relaxed);
        self.counted = now;
    }

    /// Takes ready entries for one push: one tenant, up to `max_bytes`.
    fn cut(&mut self, max_bytes: usize, per_line: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let tenant = self.ready.front().map(|e| e.tenant().map(str::to_string));
        while let Some(front) = self.ready.front() {
            if Some(front.tenant().map(str::to_string)) != tenant {
                break;
            }
            let size = front.line.len() + per_line;
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(self.ready.pop_front().expect("front exists"));
        }
        out
    }
}
