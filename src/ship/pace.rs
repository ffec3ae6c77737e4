//! What a lane learns of Loki's per-stream rate limit, to send a stream
//! that is over it at the pace Loki takes rather than be refused forever.
//!
//! Loki limits each stream to a rate (`per_stream_rate_limit`) with a burst
//! (`per_stream_rate_limit_burst`), a token bucket of line bytes. Loki 3
//! refuses a stream's entries whole when they are more than its bucket
//! holds: a batch larger than the burst is refused every time (measured on
//! 3.7.6 with 256KB/512KB: a 1 MiB push, "total ignored: 1024 out of
//! 1024", again and again). Loki 2 takes them one by one while the bucket
//! lasts and ignores the rest. Both name the stream and the rate in their
//! 429: `Per stream rate limit exceeded (limit: 256KB/sec) ...`.
//!
//! So on a 429 that blames its stream, a lane learns:
//!
//! - the **part size** Loki takes at once (about its burst): a part larger
//!   than any Loki took is halved and sent again at once (a refused push
//!   costs Loki's bucket nothing), until one goes; the batch is pushed in
//!   parts of that size ([`crate::feed::Feed::cut`]);
//! - the **pace**: the rate Loki states, at [`PACE_SHARE`] of it. The lane
//!   keeps a mirror of Loki's bucket and sends a part when the mirror holds
//!   it, so that Loki takes every part;
//! - with Loki 2, what it stored of a refused part (the entries before the
//!   first one it lists as ignored) counts as sent.
//!
//! None of this counts against `loki-retries` or doubles a backoff: each
//! refusal makes progress. Only a single line larger than Loki takes at
//! once is a failure (retried, then dropped as `rate_limited`). What was
//! learned is forgotten [`PACE_MEMORY`] after the last refusal, once the
//! lane has nothing waiting, so a raised limit is used again.

use std::time::Duration;

use tokio::time::Instant;

/// The share of Loki's stated rate a lane sends at: a margin for the time
/// a push takes to reach Loki.
pub const PACE_SHARE: f64 = 0.97;
/// What a lane learned is forgotten this long after Loki last refused it.
pub const PACE_MEMORY: Duration = Duration::from_secs(300);

/// A lane's knowledge of its streams' limit.
#[derive(Debug, Default)]
pub struct Pace {
    /// The largest part Loki is believed to take at once (its burst).
    cap: Option<usize>,
    /// The largest part Loki took since it last refused one.
    took: usize,
    /// Bytes a second to send at (Loki's rate × [`PACE_SHARE`]).
    rate: Option<f64>,
    /// The mirror of Loki's bucket: bytes it holds at `at`.
    tokens: f64,
    at: Option<Instant>,
    /// The last refusal.
    refused_at: Option<Instant>,
    /// Refusals in a row of parts no larger than Loki took before.
    timing: u32,
}

/// What a refusal means for the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Send again at once, a smaller part.
    Smaller,
    /// Send again when the pace allows.
    Paced,
    /// One line more than Loki takes at once, or no rate to pace by: a
    /// failure, retried with the lane's backoff (then dropped).
    Failed,
}

impl Pace {
    /// Whether the lane paces its pushes.
    pub fn is_limited(&self) -> bool {
        self.cap.is_some() || self.rate.is_some()
    }

    /// The part size to push, at most `max`.
    pub fn part_size(&self, max: usize) -> usize {
        self.cap.map_or(max, |cap| cap.min(max)).max(1)
    }

    /// The bucket's mirror at `now`.
    fn tokens_at(&self, now: Instant) -> f64 {
        let (Some(rate), Some(at)) = (self.rate, self.at) else {
            return f64::INFINITY;
        };
        let full = self.cap.map_or(f64::INFINITY, |cap| cap as f64);
        (self.tokens + rate * now.saturating_duration_since(at).as_secs_f64()).min(full)
    }

    /// When a part of `bytes` may go (now or later).
    pub fn ready_at(&self, bytes: usize, now: Instant) -> Instant {
        let Some(rate) = self.rate else { return now };
        let need = self.cap.map_or(bytes, |cap| bytes.min(cap)) as f64;
        let have = self.tokens_at(now);
        if have >= need {
            return now;
        }
        now + Duration::from_secs_f64((need - have) / rate)
    }

    /// Loki took a part of `bytes`.
    pub fn took(&mut self, bytes: usize, now: Instant) {
        if !self.is_limited() {
            return;
        }
        self.took = self.took.max(bytes);
        self.timing = 0;
        if self.rate.is_some() {
            self.tokens = (self.tokens_at(now) - bytes as f64).max(0.0);
            self.at = Some(now);
        }
        // A part that filled the size (more than half of it: parts are
        // whole lines) went: parts grow again, up to a second at Loki's
        // rate (enough to send at that rate), so that parts made small by
        // refusals that were not about their size do not stay small.
        if let Some(cap) = self.cap
            && bytes.saturating_mul(2) > cap
        {
            let ceiling = self.rate.map_or(usize::MAX, |rate| rate as usize).max(cap);
            self.cap = Some(cap.saturating_mul(2).min(ceiling));
        }
    }

    /// Loki refused a part of `bytes` in `items` lines for its stream's
    /// rate, stating `rate` (bytes a second) if it did; `stored` bytes of
    /// it were stored all the same (Loki 2).
    pub fn refused(
        &mut self,
        bytes: usize,
        items: usize,
        rate: Option<f64>,
        stored: usize,
        now: Instant,
    ) -> Refusal {
        self.refused_at = Some(now);
        if let Some(rate) = rate.filter(|r| *r > 0.0) {
            self.rate = Some(rate * PACE_SHARE);
        }
        let more_than_ever = bytes > self.took.max(stored);
        self.took = self.took.max(stored);
        self.at = Some(now);
        if stored == 0 && more_than_ever && items > 1 {
            // Larger than any part Loki took: its burst is smaller. Loki 3
            // refused it whole, its bucket untouched: try half at once.
            let half = (bytes / 2).max(self.took).max(1);
            self.cap = Some(self.cap.map_or(half, |cap| cap.min(half)));
            self.tokens = half as f64;
            self.timing = 0;
            return Refusal::Smaller;
        }
        self.tokens = 0.0;
        if stored > 0 {
            // Loki 2: it took what its bucket held, and is empty now.
            let cap = stored.max(self.took);
            self.cap = Some(self.cap.map_or(cap, |c| c.max(cap)).min(bytes.max(1)));
            self.timing = 0;
        } else {
            // No larger than Loki took before: its bucket was short. Twice
            // in a row, it may be its limit that changed: the next refusal
            // halves the part again.
            self.timing += 1;
            if self.timing >= 2 {
                self.took = 0;
            }
        }
        if self.rate.is_none() || (items == 1 && more_than_ever && stored == 0) {
            return Refusal::Failed;
        }
        Refusal::Paced
    }

    /// Forgets what was learned when it is old and the lane has caught up.
    pub fn forget_if_stale(&mut self, now: Instant, idle: bool) {
        if idle
            && self
                .refused_at
                .is_some_and(|at| now.saturating_duration_since(at) >= PACE_MEMORY)
        {
            *self = Pace::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    #[tokio::test(start_paused = true)]
    async fn a_refused_batch_is_halved_until_it_goes_then_paced() {
        let mut pace = Pace::default();
        let now = Instant::now();
        assert_eq!(pace.part_size(1024 * KIB), 1024 * KIB);
        let rate = Some((256 * KIB) as f64);
        assert_eq!(
            pace.refused(1024 * KIB, 1024, rate, 0, now),
            Refusal::Smaller
        );
        assert_eq!(pace.part_size(1024 * KIB), 512 * KIB);
        assert_eq!(pace.ready_at(512 * KIB, now), now, "at once");
        pace.took(512 * KIB, now);
        let next = pace.ready_at(512 * KIB, now);
        let wait = (next - now).as_secs_f64();
        assert!((wait - 2.0 / PACE_SHARE).abs() < 0.01, "{wait}");
        // Refused though it went before: only the timing; wait for the bucket.
        assert_eq!(pace.refused(512 * KIB, 512, rate, 0, next), Refusal::Paced);
        assert_eq!(pace.part_size(1024 * KIB), 512 * KIB);
        assert!(pace.ready_at(512 * KIB, next) > next);
    }

    #[tokio::test(start_paused = true)]
    async fn small_parts_grow_again_up_to_a_second_at_lokis_rate() {
        let mut pace = Pace::default();
        let now = Instant::now();
        let rate = Some((256 * KIB) as f64);
        for bytes in [1024 * KIB, 512 * KIB, 256 * KIB, 128 * KIB] {
            assert_eq!(pace.refused(bytes, 64, rate, 0, now), Refusal::Smaller);
        }
        assert_eq!(pace.part_size(usize::MAX), 64 * KIB);
        pace.took(64 * KIB, now);
        assert_eq!(pace.part_size(usize::MAX), 128 * KIB);
        pace.took(128 * KIB, now);
        pace.took(248 * KIB, now);
        let part = pace.part_size(usize::MAX);
        assert!(
            part <= (256.0 * KIB as f64 * PACE_SHARE) as usize + 1,
            "{part}"
        );
        assert!(part > 128 * KIB, "{part}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_lowered_later_is_learned_again() {
        let mut pace = Pace::default();
        let now = Instant::now();
        let rate = Some((256 * KIB) as f64);
        assert_eq!(pace.refused(1024 * KIB, 64, rate, 0, now), Refusal::Smaller);
        pace.took(512 * KIB, now);
        // The burst is now lower than 512 KiB: refused twice as if timing...
        assert_eq!(pace.refused(512 * KIB, 64, rate, 0, now), Refusal::Paced);
        assert_eq!(pace.refused(512 * KIB, 64, rate, 0, now), Refusal::Paced);
        // ...then halved.
        assert_eq!(pace.refused(512 * KIB, 64, rate, 0, now), Refusal::Smaller);
        assert_eq!(pace.part_size(usize::MAX), 256 * KIB);
    }

    #[tokio::test(start_paused = true)]
    async fn loki_2_storing_part_of_a_push_sets_the_part_size() {
        let mut pace = Pace::default();
        let now = Instant::now();
        let rate = Some((256 * KIB) as f64);
        assert_eq!(
            pace.refused(1024 * KIB, 1024, rate, 512 * KIB, now),
            Refusal::Paced
        );
        assert_eq!(pace.part_size(1024 * KIB), 512 * KIB);
        assert!(pace.ready_at(512 * KIB, now) > now);
    }

    #[tokio::test(start_paused = true)]
    async fn one_line_over_the_burst_is_a_failure_and_old_knowledge_goes() {
        let mut pace = Pace::default();
        let now = Instant::now();
        let rate = Some((256 * KIB) as f64);
        assert_eq!(pace.refused(600 * KIB, 1, rate, 0, now), Refusal::Failed);
        assert_eq!(pace.refused(1024, 2, None, 0, now), Refusal::Smaller);
        pace.forget_if_stale(now + PACE_MEMORY, false);
        assert!(pace.is_limited(), "not while the lane has lines waiting");
        pace.forget_if_stale(now + PACE_MEMORY, true);
        assert!(!pace.is_limited());
    }
}
