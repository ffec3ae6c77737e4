//! What the plugin counts. Each event is counted once, where it happens;
//! the log summaries and the metrics endpoint read the same counters.
//!
//! Every line read is accounted for:
//! `received + recovered = sent + dropped (by reason) + filtered (by the
//! reason a stage names) + pending`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::protocol::ContainerInfo;

/// Why lines were given up. Each reason is its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Memory bound reached while the line was not in the journal (the
    /// journal is off, or the disk was behind).
    MemoryFull,
    /// The journal's disk bound (per container or plugin-wide) was reached:
    /// the oldest segment went before it was delivered.
    JournalFull,
    /// Loki answered 4xx other than 429: it will never take these lines.
    Rejected,
    /// Loki kept answering 429 until `loki-retries` ran out, or the
    /// container asked to drop rate-limited batches.
    RateLimited,
    /// Loki kept failing (5xx, timeouts) until `loki-retries` ran out.
    RetriesExhausted,
    /// The plugin stopped with lines that were only in memory.
    Shutdown,
    /// Lines the journal on disk held but that cannot be read back: a
    /// damaged segment, a segment replaced by something that is not one,
    /// records missing from its end (a disk failure, a power loss, a
    /// script in the data directory).
    JournalCorrupt,
    /// Loki answered 260: the tenant's ingestion is blocked, and Loki
    /// dropped the lines (its `blocked_ingestion_status_code`).
    Blocked,
    /// Loki refused lines older than its out-of-order window allows
    /// ("entry too far behind": about an hour behind the newest line of
    /// their stream), as a replay of an old backlog meets.
    TooFarBehind,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::MemoryFull,
        DropReason::JournalFull,
        DropReason::Rejected,
        DropReason::RateLimited,
        DropReason::RetriesExhausted,
        DropReason::Shutdown,
        DropReason::JournalCorrupt,
        DropReason::Blocked,
        DropReason::TooFarBehind,
    ];

    /// The name used in log summaries and as the metrics `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MemoryFull => "memory_full",
            DropReason::JournalFull => "journal_full",
            DropReason::Rejected => "rejected",
            DropReason::RateLimited => "rate_limited",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Shutdown => "shutdown",
            DropReason::JournalCorrupt => "journal_corrupt",
            DropReason::Blocked => "blocked",
            DropReason::TooFarBehind => "too_far_behind",
        }
    }
}

/// Lines given up, by reason: what became of a batch's lines, part by
/// part, until the batch is done and they are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops([u64; DropReason::ALL.len()]);

impl Drops {
    pub fn add(&mut self, reason: DropReason, n: u64) {
        self.0[reason as usize] += n;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// One container's counters.
#[derive(Debug, Default)]
pub struct ContainerCounters {
    /// Lines read from the FIFO by this process (blank lines, which Loki
    /// never gets, are not counted).
    pub received: AtomicU64,
    /// Lines found in the journal that an earlier run of the plugin had not
    /// delivered (after a crash, restart or upgrade).
    pub recovered: AtomicU64,
    /// Lines Loki accepted.
    pub sent: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// Lines the container's own pipeline stages or relabelling dropped on
    /// purpose, by the reason the stage names (`drop_counter_reason`).
    filtered: Mutex<BTreeMap<String, u64>>,
    /// Frames that could not be decoded.
    pub invalid_frames: AtomicU64,
    /// FIFO bytes skipped to find the next frame.
    pub skipped_bytes: AtomicU64,
    /// Lines that could not be written to the journal (disk behind or
    /// failing); they still go to Loki from memory.
    pub journal_misses: AtomicU64,
    /// Frames found both in the journal and still in the FIFO after a
    /// restart, and read only once.
    pub duplicates_skipped: AtomicU64,
    /// Bytes appended to the journal.
    pub journal_bytes_written: AtomicU64,
    /// Lines delivery read back from the journal because they had left
    /// memory (a memory bound was reached). Many: memory is too small for
    /// how far delivery is behind.
    pub read_back: AtomicU64,
    /// Bytes of lines waiting in memory (not in flight).
    pub memory_bytes: AtomicUsize,
    /// Journaled lines that left memory and wait on disk for delivery.
    pub backlog_lines: AtomicI64,
    /// Lines waiting in memory.
    pub memory_lines: AtomicI64,
    /// Lines handed to a push that has not finished.
    pub in_flight_lines: AtomicI64,
    /// Lines the pipeline stages hold (a multiline block being built,
    /// entries a `limit` stage makes wait, entries processed and waiting
    /// for the next push).
    pub held_lines: AtomicI64,
    /// Timestamp (ns) of the oldest line not yet delivered; 0 when none.
    pub oldest_pending_ns: AtomicI64,
    /// Who the container is (the metrics labels).
    pub identity: ContainerIdentity,
    /// The series of the container's `metrics` pipeline stages, as they
    /// stood after its last batch (served on `METRICS_ADDR`).
    pub stage_metrics: Mutex<Vec<crate::process::Sample>>,
    /// Where these counts go when the counters are dropped (the container's
    /// journal closed), so plugin-wide totals never go down.
    retire_to: OnceLock<Arc<ContainerCounters>>,
}

/// A container as the metrics name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerIdentity {
    /// Without the leading `/`.
    pub name: String,
    /// The first 12 characters of the ID.
    pub short_id: String,
    /// `com.docker.compose.project` / `.service`; empty when absent.
    pub compose_project: String,
    pub compose_service: String,
}

impl ContainerIdentity {
    pub fn of(info: &ContainerInfo) -> ContainerIdentity {
        let label = |key: &str| {
            info.labels
                .as_ref()
                .and_then(|labels| labels.get(key))
                .cloned()
                .unwrap_or_default()
        };
        ContainerIdentity {
            name: info.name().to_string(),
            short_id: info.short_id().to_string(),
            compose_project: label("com.docker.compose.project"),
            compose_service: label("com.docker.compose.service"),
        }
    }
}

impl ContainerCounters {
    /// Counters of the container `info` describes.
    pub fn of_container(info: &ContainerInfo) -> ContainerCounters {
        let mut counters = ContainerCounters::default();
        counters.identity = ContainerIdentity::of(info);
        counters
    }

    /// When these counters are dropped, their counts are added to `totals`
    /// (set once; later calls do nothing).
    pub fn retire_to(&self, totals: Arc<ContainerCounters>) {
        let _ = self.retire_to.set(totals);
    }

    /// Adds the monotonic counts of `other` (not the gauges) to these.
    fn absorb(&self, other: &ContainerCounters) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ContainerCounters::add(&self.received, get(&other.received));
        ContainerCounters::add(&self.recovered, get(&other.recovered));
        ContainerCounters::add(&self.sent, get(&other.sent));
        for reason in DropReason::ALL {
            self.drop_lines(reason, other.dropped(reason));
        }
        for (reason, n) in other.filtered() {
            self.filter_lines(&reason, n);
        }
        ContainerCounters::add(&self.invalid_frames, get(&other.invalid_frames));
        ContainerCounters::add(&self.skipped_bytes, get(&other.skipped_bytes));
        ContainerCounters::add(&self.journal_misses, get(&other.journal_misses));
        ContainerCounters::add(&self.duplicates_skipped, get(&other.duplicates_skipped));
        ContainerCounters::add(
            &self.journal_bytes_written,
            get(&other.journal_bytes_written),
        );
        ContainerCounters::add(&self.read_back, get(&other.read_back));
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn drop_lines(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts lines given up, for each reason.
    pub fn drop_all(&self, drops: &Drops) {
        for reason in DropReason::ALL {
            self.drop_lines(reason, drops.get(reason));
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }

    /// Counts lines a stage dropped on purpose.
    pub fn filter_lines(&self, reason: &str, n: u64) {
        if n > 0 {
            let mut filtered = self.filtered.lock().expect("counters lock poisoned");
            match filtered.get_mut(reason) {
                Some(count) => *count += n,
                None => {
                    filtered.insert(reason.to_string(), n);
                }
            }
        }
    }

    /// Lines filtered, by reason.
    pub fn filtered(&self) -> BTreeMap<String, u64> {
        self.filtered
            .lock()
            .expect("counters lock poisoned")
            .clone()
    }

    pub fn filtered_total(&self) -> u64 {
        self.filtered().values().sum()
    }

    /// Lines neither delivered nor given up yet: in memory, in flight, or
    /// on disk (lines recovered from an earlier run are counted once read).
    pub fn pending(&self) -> i64 {
        self.memory_lines.load(Ordering::Relaxed)
            + self.in_flight_lines.load(Ordering::Relaxed)
            + self.backlog_lines.load(Ordering::Relaxed)
            + self.held_lines.load(Ordering::Relaxed)
    }

    /// The one-line account of a container's lines for the plugin log.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut text = format!(
            "received={} recovered={} sent={} pending={}",
            get(&self.received),
            get(&self.recovered),
            get(&self.sent),
            self.pending()
        );
        for reason in DropReason::ALL {
            text.push_str(&format!(
                " dropped_{}={}",
                reason.as_str(),
                self.dropped(reason)
            ));
        }
        let filtered = self.filtered();
        if !filtered.is_empty() {
            text.push_str(&format!(" filtered={}", filtered.values().sum::<u64>()));
            for (reason, n) in filtered {
                text.push_str(&format!(" filtered_{reason}={n}"));
            }
        }
        text.push_str(&format!(
            " invalid_frames={} skipped_bytes={} journal_misses={} duplicates_skipped={} read_back={}",
            get(&self.invalid_frames),
            get(&self.skipped_bytes),
            get(&self.journal_misses),
            get(&self.duplicates_skipped),
            get(&self.read_back),
        ));
        text
    }

    /// Whether anything went wrong that an operator should see at warn level.
    pub fn has_losses(&self) -> bool {
        self.dropped_total() > 0
            || self.invalid_frames.load(Ordering::Relaxed) > 0
            || self.journal_misses.load(Ordering::Relaxed) > 0
    }
}

impl Drop for ContainerCounters {
    fn drop(&mut self) {
        if let Some(totals) = self.retire_to.get() {
            totals.absorb(self);
        }
    }
}

/// One Loki endpoint's counters.
#[derive(Debug)]
pub struct EndpointCounters {
    /// The push URL, without credentials.
    pub url: String,
    /// Pushes by outcome, indexed by [`PushClass`].
    pushes: [AtomicU64; PushClass::ALL.len()],
    /// Push latency histogram: counts per bucket of [`LATENCY_BUCKETS`]
    /// (cumulative buckets are computed when read), plus the sum.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    /// Failed attempts that will be retried (counted against `loki-retries`).
    pub retries: AtomicU64,
    /// Lanes (containers) delivering here.
    pub lanes: AtomicI64,
    /// Lanes waiting out their own backoff.
    pub lanes_backing_off: AtomicI64,
    /// Pushes in flight.
    pub in_flight: AtomicI64,
    /// False while Loki is unreachable.
    pub up: std::sync::atomic::AtomicBool,
}

/// Push outcomes, as the metrics `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushClass {
    Success,
    RateLimited,
    ClientError,
    ServerError,
    Unreachable,
    Timeout,
    /// The connection broke during the exchange (reset, or closed before
    /// an answer): a Loki process that died, a load balancer in front.
    Reset,
}

impl PushClass {
    pub const ALL: [PushClass; 7] = [
        PushClass::Success,
        PushClass::RateLimited,
        PushClass::ClientError,
        PushClass::ServerError,
        PushClass::Unreachable,
        PushClass::Timeout,
        PushClass::Reset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PushClass::Success => "2xx",
            PushClass::RateLimited => "429",
            PushClass::ClientError => "4xx",
            PushClass::ServerError => "5xx",
            PushClass::Unreachable => "unreachable",
            PushClass::Timeout => "timeout",
            PushClass::Reset => "reset",
        }
    }
}

/// Upper bounds (seconds) of the push latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl EndpointCounters {
    pub fn new(url: String) -> EndpointCounters {
        EndpointCounters {
            url,
            pushes: Default::default(),
            latency: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            lanes: AtomicI64::new(0),
            lanes_backing_off: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            up: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Counts a push that ended with `class` after `latency`.
    pub fn record_push(&self, class: PushClass, latency: Duration) {
        self.pushes[class as usize].fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn pushes(&self, class: PushClass) -> u64 {
        self.pushes[class as usize].load(Ordering::Relaxed)
    }

    /// Cumulative counts per bucket bound (the last is +Inf), and the sum in seconds.
    pub fn latency(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .latency
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            cumulative,
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Allows one message per interval and counts the ones it held back.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

/// Shortest time between two warnings of the same kind.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new(WARN_INTERVAL)
    }
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last message)` when a message may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Messages held back since the last one logged.
    #[cfg(test)]
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A clock that goes backwards cannot panic.
        assert_eq!(throttle.allow(start), None);
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let counters = ContainerCounters::default();
        counters.drop_lines(DropReason::Rejected, 3);
        counters.drop_lines(DropReason::MemoryFull, 2);
        assert_eq!(counters.dropped(DropReason::Rejected), 3);
        assert_eq!(counters.dropped_total(), 5);
        assert!(counters.summary().contains("dropped_rejected=3"));
        assert!(counters.has_losses());
    }

    #[test]
    fn dropped_counters_add_their_counts_to_the_totals() {
        let totals = Arc::new(ContainerCounters::default());
        let counters = ContainerCounters::default();
        counters.retire_to(totals.clone());
        ContainerCounters::add(&counters.received, 7);
        ContainerCounters::add(&counters.sent, 4);
        counters.drop_lines(DropReason::Rejected, 3);
        counters.memory_lines.store(2, Ordering::Relaxed);
        drop(counters);
        assert_eq!(totals.received.load(Ordering::Relaxed), 7);
        assert_eq!(totals.sent.load(Ordering::Relaxed), 4);
        assert_eq!(totals.dropped(DropReason::Rejected), 3);
        assert_eq!(totals.pending(), 0, "gauges are not added");
    }

    #[test]
    fn identity_comes_from_the_daemon_info() {
        let info = ContainerInfo {
            container_id: "0123456789abcdef".into(),
            container_name: "/web-1".into(),
            labels: Some(
                [("com.docker.compose.service".to_string(), "web".to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..ContainerInfo::default()
        };
        let identity = ContainerCounters::of_container(&info).identity.clone();
        assert_eq!(
            identity,
            ContainerIdentity {
                name: "web-1".into(),
                short_id: "0123456789ab".into(),
                compose_project: String::new(),
                compose_service: "web".into(),
            }
        );
    }
}
