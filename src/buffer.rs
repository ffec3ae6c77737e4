//! Bounded memory between the FIFO reader and the batcher.
//!
//! Each container has its own queue, bounded by `loki-buffer-size`; all
//! queues together are bounded by the plugin-wide [`MemoryBudget`]. When a
//! bound is reached, the container that is writing drops its *oldest* lines,
//! counts them and logs a rate-limited warning. The reader never waits.
//!
//! A line costs its bytes plus [`LINE_OVERHEAD`]. The batch being sent (at
//! most `loki-batch-size` per endpoint) is no longer in any queue and is not
//! counted here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::labels::StreamLabels;
use crate::line::Line;

/// Memory a queued line costs beyond its bytes.
pub const LINE_OVERHEAD: usize = std::mem::size_of::<Line>();
/// Shortest time between two warnings of the same kind.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

fn cost(line: &Line) -> usize {
    line.bytes.len() + LINE_OVERHEAD
}

/// The plugin-wide bound, shared by every container's queue.
#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn exceeded(&self) -> bool {
        self.used() > self.limit
    }
}

/// Allows one message per interval and counts the ones it held back.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(suppressed since the last message)` when a message may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Per-container counters; every line read ends up in exactly one of
/// `sent`, `dropped_full`, `dropped_undeliverable`, or is still queued.
#[derive(Debug, Default)]
pub struct ContainerStats {
    /// Lines read from the FIFO (after joining partials, without blank lines).
    pub received: AtomicU64,
    /// Lines Loki accepted.
    pub sent: AtomicU64,
    /// Lines dropped because a memory bound was reached (the oldest first).
    pub dropped_full: AtomicU64,
    /// Lines dropped because Loki refused them or retries ran out.
    pub dropped_undeliverable: AtomicU64,
    /// Frames that could not be decoded and were skipped.
    pub invalid_frames: AtomicU64,
}

impl ContainerStats {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Queue {
    lines: VecDeque<Line>,
    bytes: usize,
    drop_warning: Throttle,
    frame_warning: Throttle,
}

/// One container's queue of lines waiting for its endpoint's batcher.
pub struct ContainerBuffer {
    name: String,
    id: String,
    labels: StreamLabels,
    limit: usize,
    budget: Arc<MemoryBudget>,
    queue: Mutex<Queue>,
    /// Mirror of `queue.bytes` so the batcher can look without locking.
    queued_bytes: AtomicUsize,
    /// Set once the reader has pushed its last line.
    closed: AtomicBool,
    /// Set when the reader stopped for a plugin shutdown rather than at EOF:
    /// the FIFO may hold more, for the next plugin process to read.
    interrupted: AtomicBool,
    /// Wakes the endpoint's batcher.
    wake: Arc<Notify>,
    /// The batcher is woken early when this many bytes are queued.
    batch_size: usize,
    pub stats: ContainerStats,
}

impl ContainerBuffer {
    pub fn new(
        name: String,
        id: String,
        labels: StreamLabels,
        limit: usize,
        budget: Arc<MemoryBudget>,
        wake: Arc<Notify>,
        batch_size: usize,
    ) -> ContainerBuffer {
        ContainerBuffer {
            name,
            id,
            labels,
            limit,
            budget,
            queue: Mutex::new(Queue {
                lines: VecDeque::new(),
                bytes: 0,
                drop_warning: Throttle::default(),
                frame_warning: Throttle::default(),
            }),
            queued_bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            wake,
            batch_size,
            stats: ContainerStats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn labels(&self) -> &StreamLabels {
        &self.labels
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Appends the lines (draining `lines`), dropping this container's oldest
    /// lines while a bound is exceeded. The newest line is always kept.
    pub fn push(&self, lines: &mut Vec<Line>) {
        if lines.is_empty() {
            return;
        }
        let received = lines.len() as u64;
        let mut dropped = 0u64;
        let mut warn = None;
        let (was_empty, queued) = {
            let mut queue = self.queue.lock().expect("buffer lock poisoned");
            let was_empty = queue.lines.is_empty();
            let mut added = 0;
            for line in lines.drain(..) {
                added += cost(&line);
                queue.lines.push_back(line);
            }
            queue.bytes += added;
            self.budget.used.fetch_add(added, Ordering::Relaxed);
            while queue.lines.len() > 1 && (queue.bytes > self.limit || self.budget.exceeded()) {
                let oldest = queue.lines.pop_front().expect("queue has lines");
                queue.bytes -= cost(&oldest);
                self.budget.used.fetch_sub(cost(&oldest), Ordering::Relaxed);
                dropped += 1;
            }
            if dropped > 0 {
                warn = queue.drop_warning.allow(Instant::now());
            }
            self.queued_bytes.store(queue.bytes, Ordering::Release);
            (was_empty, queue.bytes)
        };
        self.stats.received.fetch_add(received, Ordering::Relaxed);
        if dropped > 0 {
            let total = self
                .stats
                .dropped_full
                .fetch_add(dropped, Ordering::Relaxed)
                + dropped;
            if warn.is_some() {
                tracing::warn!(
                    container = %self.name,
                    id = %self.id,
                    dropped_total = total,
                    buffer_limit = self.limit,
                    plugin_buffered = self.budget.used(),
                    "buffer full while Loki is behind: dropping the oldest lines"
                );
            }
        }
        if was_empty || queued >= self.batch_size {
            self.wake.notify_one();
        }
    }

    /// Moves lines from the front into `out` while their line bytes fit in
    /// `max_bytes`; with `at_least_one`, the first line is taken regardless.
    /// Returns the line bytes taken.
    pub fn take(&self, max_bytes: usize, at_least_one: bool, out: &mut Vec<Line>) -> usize {
        let mut queue = self.queue.lock().expect("buffer lock poisoned");
        let mut taken = 0;
        let mut freed = 0;
        while let Some(front) = queue.lines.front() {
            let first = taken == 0 && at_least_one;
            if !first && taken + front.bytes.len() > max_bytes {
                break;
            }
            let line = queue.lines.pop_front().expect("front exists");
            taken += line.bytes.len();
            freed += cost(&line);
            out.push(line);
        }
        queue.bytes -= freed;
        self.budget.used.fetch_sub(freed, Ordering::Relaxed);
        self.queued_bytes.store(queue.bytes, Ordering::Release);
        taken
    }

    /// Counts a skipped frame and logs it (rate-limited).
    pub fn count_invalid_frame(&self, reason: &str) {
        let total = self.stats.invalid_frames.fetch_add(1, Ordering::Relaxed) + 1;
        let allowed = self
            .queue
            .lock()
            .expect("buffer lock poisoned")
            .frame_warning
            .allow(Instant::now());
        if allowed.is_some() {
            tracing::warn!(container = %self.name, id = %self.id, invalid_frames = total, reason, "skipped a log frame that could not be decoded");
        }
    }

    /// Marks the end of input: the batcher sends what is left without waiting.
    /// `at_eof` is false when the plugin stopped reading before the FIFO ended.
    pub fn close(&self, at_eof: bool) {
        self.interrupted.store(!at_eof, Ordering::Relaxed);
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closed and nothing left to send.
    pub fn is_finished(&self) -> bool {
        self.is_closed() && self.queued_bytes() == 0
    }

    /// Counts lines of a batch as dropped after Loki refused them or retries ran out.
    pub fn count_undeliverable(&self, lines: u64) {
        self.stats
            .dropped_undeliverable
            .fetch_add(lines, Ordering::Relaxed);
    }

    pub fn count_sent(&self, lines: u64) {
        self.stats.sent.fetch_add(lines, Ordering::Relaxed);
    }

    /// Logs the container's account of its lines when the batcher lets it go.
    pub fn log_finished(&self) {
        if self.interrupted.load(Ordering::Relaxed) {
            self.log_summary("reading paused by plugin shutdown (resumes on restart)");
        } else {
            self.log_summary("logging finished");
        }
    }

    /// Logs the container's account of its lines.
    pub fn log_summary(&self, what: &str) {
        let s = &self.stats;
        let queued = self.queue.lock().expect("buffer lock poisoned").lines.len();
        let get = ContainerStats::get;
        let dropped = get(&s.dropped_full) + get(&s.dropped_undeliverable) + queued as u64;
        let summary = format!(
            "{what}: container={} id={} received={} sent={} dropped_buffer_full={} dropped_undeliverable={} undelivered_at_exit={} invalid_frames={}",
            self.name,
            self.id,
            get(&s.received),
            get(&s.sent),
            get(&s.dropped_full),
            get(&s.dropped_undeliverable),
            queued,
            get(&s.invalid_frames),
        );
        if dropped > 0 || get(&s.invalid_frames) > 0 {
            tracing::warn!("{summary}");
        } else {
            tracing::info!("{summary}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::Source;
    use std::collections::BTreeMap;

    fn buffer(limit: usize, budget: &Arc<MemoryBudget>) -> ContainerBuffer {
        let labels = StreamLabels::new(&BTreeMap::from([("a".to_string(), "b".to_string())]));
        ContainerBuffer::new(
            "c".into(),
            "id".into(),
            labels,
            limit,
            budget.clone(),
            Arc::new(Notify::new()),
            1 << 20,
        )
    }

    fn lines(range: std::ops::Range<u32>) -> Vec<Line> {
        range
            .map(|i| Line {
                timestamp_ns: i as i64,
                source: Source::Stdout,
                bytes: format!("{i:08}").into_bytes(),
            })
            .collect()
    }

    fn drain(buffer: &ContainerBuffer) -> Vec<i64> {
        let mut out = Vec::new();
        buffer.take(usize::MAX, true, &mut out);
        out.iter().map(|l| l.timestamp_ns).collect()
    }

    #[test]
    fn the_oldest_lines_are_dropped_and_counted() {
        let budget = Arc::new(MemoryBudget::new(usize::MAX));
        let buffer = buffer(10 * (8 + LINE_OVERHEAD), &budget);
        buffer.push(&mut lines(0..25));
        assert_eq!(drain(&buffer), (15..25).collect::<Vec<_>>());
        assert_eq!(buffer.stats.dropped_full.load(Ordering::Relaxed), 15);
        assert_eq!(buffer.stats.received.load(Ordering::Relaxed), 25);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_plugin_wide_budget_bounds_all_containers() {
        let budget = Arc::new(MemoryBudget::new(12 * (8 + LINE_OVERHEAD)));
        let (a, b) = (buffer(usize::MAX, &budget), buffer(usize::MAX, &budget));
        a.push(&mut lines(0..10));
        b.push(&mut lines(100..110));
        assert!(budget.used() <= 12 * (8 + LINE_OVERHEAD));
        assert_eq!(drain(&a).len(), 10);
        assert_eq!(drain(&b), (108..110).collect::<Vec<_>>());
        assert_eq!(b.stats.dropped_full.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_line_larger_than_the_bound_is_still_kept() {
        let budget = Arc::new(MemoryBudget::new(usize::MAX));
        let buffer = buffer(4, &budget);
        buffer.push(&mut lines(0..1));
        assert_eq!(drain(&buffer), [0]);
    }

    #[test]
    fn take_respects_the_batch_size() {
        let budget = Arc::new(MemoryBudget::new(usize::MAX));
        let buffer = buffer(usize::MAX, &budget);
        buffer.push(&mut lines(0..10));
        let mut out = Vec::new();
        assert_eq!(buffer.take(20, false, &mut out), 16);
        assert_eq!(out.len(), 2);
        out.clear();
        assert_eq!(
            buffer.take(3, true, &mut out),
            8,
            "the first line goes even if larger"
        );
        out.clear();
        assert_eq!(buffer.take(3, false, &mut out), 0);
        assert_eq!(buffer.queued_bytes(), 7 * (8 + LINE_OVERHEAD));
    }

    #[test]
    fn throttle_allows_one_message_per_interval() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        assert_eq!(throttle.allow(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(2)), None);
        assert_eq!(
            throttle.allow(start + WARN_INTERVAL + Duration::from_secs(1)),
            Some(2)
        );
    }
}
