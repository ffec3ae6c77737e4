//! `limit`: at most `rate` entries a second, `burst` at once (a token
//! bucket computed exactly as Go's `golang.org/x/time/rate` computes it).
//!
//! - `drop: true`: an entry over the limit is dropped, counted as filtered
//!   under `ratelimit_drop_stage`. With `by_label_name`, each value of that
//!   label has its own bucket (entries without the label pass), at most
//!   `max_distinct_labels` of them recently used (at least 10000), and the
//!   drops per value are reported as
//!   `logentry_dropped_lines_by_label_total{label_name, label_value}`.
//! - `drop: false` (the default): Grafana's stage blocks until the entry's
//!   turn. This one never blocks: an entry over the limit waits in the
//!   stage's own queue with the time its turn comes, the stage is full
//!   ([`Stage::is_full`]) while anything waits, so delivery stops feeding
//!   it, and [`Stage::tick`] releases the entries whose time has come
//!   ([`Stage::next_tick`] says when). The turns are the ones Go's
//!   `Limiter.Wait` would give.
//!
//! The clock is the one the pipeline is given (`Context::now`), never a
//! real one. The bucket lives in memory: after a restart it starts full
//! again, as Grafana's does, so a replay is not limited the way the first
//! run was (the entries are the same; only when they go out differs, or,
//! with `drop: true`, which ones are dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{Context, Entry, Held, Stage};
use super::metrics::{Measure, Sample};

const REASON: &str = "ratelimit_drop_stage";
/// Grafana raises a smaller `max_distinct_labels` to this.
const MIN_DISTINCT_LABELS: i64 = 10_000;
/// Most buckets by label value kept (twice this at a generation's end);
/// Grafana has no bound.
const MAX_DISTINCT_LABELS: i64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct Limit {
    rate: f64,
    burst: i64,
    drop: bool,
    by_label: Option<ByLabel>,
    bucket: Bucket,
    /// Entries waiting for their turn (`drop: false`), with that turn.
    queue: VecDeque<(i64, Entry)>,
    reason: Arc<str>,
}

/// Go's `rate.Limiter` state.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// `None`: Go's zero time, long enough ago to fill the bucket.
    last: Option<i64>,
}

impl Bucket {
    /// `rate.NewLimiter`: full.
    fn full(burst: i64) -> Bucket {
        Bucket {
            tokens: burst as f64,
            last: None,
        }
    }
}

/// Buckets per label value, in two generations as Loki's `GenerationalMap`.
#[derive(Debug, Clone)]
struct ByLabel {
    name: String,
    max: usize,
    newgen: HashMap<String, Bucket>,
    oldgen: HashMap<String, Bucket>,
    /// Drops per label value since the last generation change (Grafana
    /// resets the counter then).
    dropped: BTreeMap<String, u64>,
}

impl Limit {
    pub fn new(config: &Node) -> Result<Limit, String> {
        let mut f = Fields::new(config)?.weak();
        let rate = f.f64("rate")?.unwrap_or(0.0);
        let burst = f.i64("burst")?.unwrap_or(0);
        let drop = f.bool("drop")?.unwrap_or(false);
        let by_label_name = f.string("by_label_name")?.unwrap_or_default();
        let max_distinct = f.i64("max_distinct_labels")?.unwrap_or(0);
        f.finish()?;
        if rate <= 0.0 || burst <= 0 {
            return Err("limit stage failed to parse rate or burst".into());
        }
        if !by_label_name.is_empty() && !drop {
            return Err("When ratelimiting by label, drop must be true".into());
        }
        if max_distinct > MAX_DISTINCT_LABELS {
            return Err(format!(
                "max_distinct_labels {max_distinct} is more than {MAX_DISTINCT_LABELS} (each is a rate limiter kept in memory)"
            ));
        }
        let by_label = (!by_label_name.is_empty()).then(|| ByLabel {
            name: by_label_name,
            max: max_distinct.max(MIN_DISTINCT_LABELS) as usize,
            newgen: HashMap::new(),
            oldgen: HashMap::new(),
            dropped: BTreeMap::new(),
        });
        Ok(Limit {
            rate,
            burst,
            drop,
            by_label,
            bucket: Bucket::full(burst),
            queue: VecDeque::new(),
            reason: Arc::from(REASON),
        })
    }

    /// Whether the entry may pass now; drops it (counted) if not.
    fn admit(&mut self, entry: &Entry, cx: &mut Context) -> bool {
        let (rate, burst) = (self.rate, self.burst);
        if let Some(by) = &mut self.by_label {
            let Some(value) = entry.labels.get(&by.name) else {
                return true;
            };
            if by.bucket(value, burst).allow(rate, burst, cx.now) {
                return true;
            }
            *by.dropped.entry(value.clone()).or_default() += 1;
            cx.filter(entry, &self.reason);
            return false;
        }
        if self.bucket.allow(rate, burst, cx.now) {
            return true;
        }
        cx.filter(entry, &self.reason);
        false
    }
}

impl ByLabel {
    /// Loki's `GenerationalMap.GetOrCreate`.
    fn bucket(&mut self, value: &str, burst: i64) -> &mut Bucket {
        if !self.newgen.contains_key(value) {
            let bucket = self
                .oldgen
                .get(value)
                .copied()
                .unwrap_or(Bucket::full(burst));
            self.newgen.insert(value.to_string(), bucket);
            if self.newgen.len() >= self.max {
                self.oldgen = std::mem::take(&mut self.newgen);
                self.dropped.clear();
                // The bucket just made moved to the old generation: Go
                // returns the same limiter, so use it there.
                return self
                    .oldgen
                    .entry(value.to_string())
                    .or_insert(Bucket::full(burst));
            }
        }
        self.newgen
            .entry(value.to_string())
            .or_insert(Bucket::full(burst))
    }
}

/// `time.Duration.Seconds()`.
fn seconds(ns: i64) -> f64 {
    let sec = ns / 1_000_000_000;
    let nsec = ns % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

impl Bucket {
    /// `advance`: the tokens at `now`.
    fn advance(&self, rate: f64, burst: i64, now: i64) -> f64 {
        let elapsed = match self.last {
            None => i64::MAX,
            Some(last) => now.saturating_sub(last.min(now)),
        };
        let delta = if rate <= 0.0 {
            0.0
        } else {
            seconds(elapsed) * rate
        };
        let tokens = self.tokens + delta;
        let burst = burst as f64;
        if tokens > burst { burst } else { tokens }
    }

    /// How long until `-tokens` tokens accumulate (`durationFromTokens`).
    fn wait(rate: f64, tokens: f64) -> i64 {
        if tokens >= 0.0 || tokens.is_nan() {
            return 0;
        }
        if rate <= 0.0 {
            return i64::MAX;
        }
        let duration = (-tokens / rate) * 1e9;
        if duration > i64::MAX as f64 {
            i64::MAX
        } else {
            duration as i64
        }
    }

    /// `Limiter.Allow` at `now`.
    fn allow(&mut self, rate: f64, burst: i64, now: i64) -> bool {
        if rate == f64::MAX {
            return true;
        }
        let tokens = self.advance(rate, burst, now) - 1.0;
        if Bucket::wait(rate, tokens) > 0 || burst < 1 {
            return false;
        }
        self.last = Some(now);
        self.tokens = tokens;
        true
    }

    /// `Limiter.Wait`'s reservation at `now`: when the entry may go.
    fn reserve(&mut self, rate: f64, burst: i64, now: i64) -> i64 {
        if rate == f64::MAX {
            return now;
        }
        let tokens = self.advance(rate, burst, now) - 1.0;
        let wait = Bucket::wait(rate, tokens);
        self.last = Some(now);
        self.tokens = tokens;
        now.saturating_add(wait)
    }
}

impl Stage for Limit {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        if self.drop {
            entries.retain(|entry| self.admit(entry, cx));
            return;
        }
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            let at = self.bucket.reserve(self.rate, self.burst, cx.now);
            if at <= cx.now && self.queue.is_empty() {
                out.push(entry);
            } else {
                self.queue.push_back((at, entry));
            }
        }
        *entries = out;
    }

    fn tick(&mut self, out: &mut Vec<Entry>, cx: &mut Context) {
        while let Some((at, _)) = self.queue.front() {
            if *at > cx.now {
                break;
            }
            if let Some((_, entry)) = self.queue.pop_front() {
                out.push(entry);
            }
        }
    }

    // No flush: what waits here waits for its time, not for more input.
    // At the end of the input it is still released at the rate (by
    // `tick`), as Grafana's `Wait` lets it through after Stop.

    fn next_tick(&self) -> Option<i64> {
        self.queue.front().map(|(at, _)| *at)
    }

    fn held(&self, held: &mut Held) {
        for (_, entry) in &self.queue {
            held.add(&entry.origin);
        }
    }

    fn is_full(&self) -> bool {
        !self.queue.is_empty()
    }

    fn metrics(&self, _now: i64, out: &mut Vec<Sample>) {
        let Some(by) = &self.by_label else {
            return;
        };
        let name: Arc<str> = Arc::from("logentry_dropped_lines_by_label_total");
        let help: Arc<str> =
            Arc::from("A count of all log lines dropped as a result of a pipeline stage");
        for (value, count) in &by.dropped {
            out.push(Sample {
                name: name.clone(),
                help: help.clone(),
                labels: vec![
                    ("label_name".to_string(), by.name.clone()),
                    ("label_value".to_string(), value.clone()),
                ],
                value: Measure::Counter(*count as f64),
            });
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        let mut fresh = self.clone();
        fresh.bucket = Bucket::full(self.burst);
        fresh.queue.clear();
        if let Some(by) = &mut fresh.by_label {
            by.newgen.clear();
            by.oldgen.clear();
            by.dropped.clear();
        }
        Box::new(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, entry_with, refused};
    use super::super::super::{Context, Held, NoFiles, Pipeline};

    const S: i64 = 1_000_000_000;

    fn pipeline(yaml: &str) -> Pipeline {
        Pipeline::parse_inline(yaml, &NoFiles).unwrap()
    }

    #[test]
    fn drop_mode_lets_the_burst_through_then_the_rate() {
        let mut p = pipeline("[{limit: {rate: 2, burst: 3, drop: true}}]");
        let mut cx = Context::new(100 * S);
        let mut e: Vec<_> = (0..5).map(|i| entry(&i.to_string())).collect();
        p.run(&mut e, &mut cx);
        assert_eq!(e.len(), 3, "the burst");
        assert_eq!(cx.take_filtered().get("ratelimit_drop_stage"), Some(&2));
        // Half a second later: one more token.
        let mut cx = Context::new(100 * S + S / 2);
        let mut e: Vec<_> = (0..3).map(|i| entry(&i.to_string())).collect();
        p.run(&mut e, &mut cx);
        assert_eq!(e.len(), 1);
        assert!(!p.is_full());
    }

    #[test]
    fn wait_mode_queues_and_releases_on_the_clock() {
        let mut p = pipeline("[{limit: {rate: 10, burst: 2}}]");
        let now = 100 * S;
        let mut cx = Context::new(now);
        let mut e: Vec<_> = (0..5).map(|i| entry(&i.to_string())).collect();
        p.run(&mut e, &mut cx);
        let lines: Vec<_> = e.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["0", "1"]);
        assert!(p.is_full(), "holding: no more input");
        let mut held = Held::default();
        p.held(&mut held);
        assert_eq!(held.lines, 3);
        assert_eq!(p.next_tick(), Some(now + S / 10));
        let mut out = Vec::new();
        p.tick(&mut out, &mut Context::new(now + S / 10 - 1));
        assert!(out.is_empty());
        p.tick(&mut out, &mut Context::new(now + 2 * S / 10));
        let lines: Vec<_> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["2", "3"]);
        assert_eq!(p.next_tick(), Some(now + 3 * S / 10));
        // The end of the input does not skip the wait.
        let mut flushed = Vec::new();
        p.flush(&mut flushed, &mut Context::new(0));
        assert!(flushed.is_empty());
        p.tick(&mut flushed, &mut Context::new(now + 3 * S / 10));
        assert_eq!(flushed.len(), 1);
        assert!(!p.is_full() && p.next_tick().is_none());
        assert!(Context::new(0).take_filtered().is_empty());
    }

    #[test]
    fn by_label_each_value_has_its_bucket() {
        let mut p = pipeline(
            "[{limit: {rate: 1, burst: 1, drop: true, by_label_name: app, max_distinct_labels: 5}}]",
        );
        let mut e = vec![
            entry_with("a", &[("app", "a")]),
            entry_with("a2", &[("app", "a")]),
            entry_with("b", &[("app", "b")]),
            entry_with("none", &[("other", "x")]),
            entry_with("none2", &[("other", "x")]),
        ];
        let mut cx = Context::new(100 * S);
        p.run(&mut e, &mut cx);
        let lines: Vec<_> = e.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["a", "b", "none", "none2"]);
        let samples = p.metrics(0);
        assert_eq!(samples.len(), 1);
        assert_eq!(
            samples[0].name.as_ref(),
            "logentry_dropped_lines_by_label_total"
        );
        assert_eq!(
            samples[0].labels,
            [
                ("label_name".to_string(), "app".to_string()),
                ("label_value".to_string(), "a".to_string())
            ]
        );
    }

    #[test]
    fn configs() {
        assert_eq!(
            refused("[{limit: {rate: 1}}]"),
            "invalid limit stage config: limit stage failed to parse rate or burst"
        );
        assert!(refused("[{limit: {burst: 1}}]").contains("rate or burst"));
        assert!(
            refused("[{limit: {rate: 1, burst: 1, by_label_name: a}}]")
                .contains("drop must be true")
        );
        assert!(
            refused("[{limit: {rate: 1, burst: 1, drop: true, by_label_name: a, max_distinct_labels: 1e12}}]")
                .contains("max_distinct_labels")
        );
        assert!(
            refused("[{limit: {rate: 1, burst: 1, drop_counter_reason: x}}]")
                .contains("unknown setting")
        );
        assert!(
            Pipeline::parse_inline(
                "[{limit: {rate: '1.5', burst: '3', drop: 'true'}}]",
                &NoFiles
            )
            .is_ok()
        );
    }
}
