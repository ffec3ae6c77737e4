//! Lanes and endpoint state, in-process on paused time: a scripted Loki
//! answers each push from what it holds.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use hyper::StatusCode;
use prost::Message;

use super::*;
use crate::assemble::Assembler;
use crate::config::labels::StreamLabels;
use crate::journal::{Journal, JournalConfig, Store, StoreSettings};
use crate::proto::logdriver::LogEntry;
use crate::proto::logproto::LabelPairAdapter;
use crate::proto::logproto::PushRequest;
use crate::ship::policy::FailKind;

/// What the scripted Loki answers for a push, given the container names in it.
type Script = Box<dyn Fn(&[String], Instant) -> PushResult + Send + Sync>;

/// Loki's per-stream rate limit, per container stream: a token bucket of
/// line bytes. Loki 3.7.6 refuses a stream's entries whole when they are
/// more than the bucket holds (measured with 256KB/512KB: a 1 MiB push,
/// "total ignored: 1024 out of 1024", every time); Loki 2.7.5 takes entries
/// one by one while the bucket lasts and ignores the rest.
struct StreamLimit {
    rate: f64,
    burst: f64,
    whole: bool,
    buckets: BTreeMap<String, (f64, Instant)>,
}

impl StreamLimit {
    /// Which of a stream's entries (by line length) are over the limit now.
    fn refuse(&mut self, stream: &str, lengths: &[usize], now: Instant) -> Vec<bool> {
        let (rate, burst) = (self.rate, self.burst);
        let (tokens, at) = self
            .buckets
            .entry(stream.to_string())
            .or_insert((burst, now));
        *tokens = (*tokens + rate * now.saturating_duration_since(*at).as_secs_f64()).min(burst);
        *at = now;
        if self.whole {
            let total: usize = lengths.iter().sum();
            if total as f64 > *tokens {
                return vec![true; lengths.len()];
            }
            *tokens -= total as f64;
            return vec![false; lengths.len()];
        }
        lengths
            .iter()
            .map(|&len| {
                if len as f64 > *tokens {
                    true
                } else {
                    *tokens -= len as f64;
                    false
                }
            })
            .collect()
    }
}

/// A Loki double that records what it accepts, per container, in order.
struct ScriptedLoki {
    /// Per-stream rate limits, applied before the script.
    limit: Mutex<Option<StreamLimit>>,
    script: Mutex<Script>,
    accepted: Mutex<BTreeMap<String, Vec<String>>>,
    pushes: Mutex<Vec<(Instant, Vec<String>)>>,
    /// Answer as a Loki 3 with `allow_structured_metadata: false`: 400 for
    /// the streams that carry metadata (the others are stored).
    refuse_metadata: std::sync::atomic::AtomicBool,
    /// Entries received with structured metadata, and without.
    with_metadata: std::sync::atomic::AtomicUsize,
    without_metadata: std::sync::atomic::AtomicUsize,
    /// Answer as a Loki whose tenant has `unordered_writes: false`: a
    /// stream's entries older than its newest are refused (400), except
    /// an exact duplicate of the newest.
    ordered: std::sync::atomic::AtomicBool,
    newest: Mutex<BTreeMap<String, (i64, Bytes)>>,
    /// Time an entry adds to the answer, as Loki's CPU does (on top of
    /// 10 ms a push).
    per_entry: Mutex<Duration>,
    /// Pushes refused as out of order.
    out_of_order: std::sync::atomic::AtomicUsize,
    /// Pushes being answered, and the most at once, per container.
    open: Mutex<BTreeMap<String, usize>>,
    most_at_once: Mutex<BTreeMap<String, usize>>,
    /// Per container, how often its last open push was answered (Loki
    /// then had none of its lines to work on).
    emptied: Mutex<BTreeMap<String, usize>>,
    /// A push takes 0–6 ms longer (by the highest line number it carries),
    /// as pushes side by side seldom end together in a real Loki.
    stagger: std::sync::atomic::AtomicBool,
    /// Answer 500 to a push of more than one entry whose lines all come
    /// before a line some push has carried: the first half of a pair
    /// (its second half came beside it), and every retry of it. Lines are
    /// `numbered`; an entry of several lines counts by its last.
    fail_behind: std::sync::atomic::AtomicBool,
    furthest: std::sync::atomic::AtomicUsize,
}

impl ScriptedLoki {
    fn new(script: Script) -> Arc<ScriptedLoki> {
        Arc::new(ScriptedLoki {
            limit: Mutex::new(None),
            script: Mutex::new(script),
            accepted: Mutex::default(),
            pushes: Mutex::default(),
            refuse_metadata: Default::default(),
            with_metadata: Default::default(),
            without_metadata: Default::default(),
            ordered: Default::default(),
            per_entry: Mutex::default(),
            newest: Mutex::default(),
            out_of_order: Default::default(),
            open: Mutex::default(),
            most_at_once: Mutex::default(),
            emptied: Mutex::default(),
            stagger: Default::default(),
            fail_behind: Default::default(),
            furthest: Default::default(),
        })
    }

    fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    fn accepted(&self, container: &str) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .get(container)
            .cloned()
            .unwrap_or_default()
    }

    fn pushes(&self) -> Vec<(Instant, Vec<String>)> {
        self.pushes.lock().unwrap().clone()
    }

    fn emptied(&self, container: &str) -> usize {
        self.emptied
            .lock()
            .unwrap()
            .get(container)
            .copied()
            .unwrap_or(0)
    }

    fn most_at_once(&self, container: &str) -> usize {
        self.most_at_once
            .lock()
            .unwrap()
            .get(container)
            .copied()
            .unwrap_or(0)
    }

    /// As an ordered Loki does: the first stream with an entry older than
    /// the newest it holds, refused in Loki's words; else the newest moves.
    fn out_of_order(&self, request: &PushRequest) -> Option<PushResult> {
        let mut newest = self.newest.lock().unwrap();
        for stream in &request.streams {
            let mut top = newest.get(&stream.labels).cloned();
            for entry in &stream.entries {
                let ts = entry.timestamp.unwrap_or_default();
                let ns = ts.seconds * 1_000_000_000 + i64::from(ts.nanos);
                match &top {
                    Some((t, line)) if ns == *t && *line == entry.line => continue,
                    Some((t, _)) if ns < *t => {
                        self.out_of_order.fetch_add(1, Ordering::Relaxed);
                        return Some(answer(
                            400,
                            &format!(
                                "entry with timestamp {} ignored, reason: 'entry out of order' for stream: {},\ntotal ignored: {} out of {}",
                                go_time(ns),
                                stream.labels,
                                stream.entries.len(),
                                stream.entries.len()
                            ),
                        ));
                    }
                    _ => top = Some((ns, entry.line.clone())),
                }
            }
        }
        for stream in &request.streams {
            if let Some(entry) = stream.entries.last() {
                let ts = entry.timestamp.unwrap_or_default();
                let ns = ts.seconds * 1_000_000_000 + i64::from(ts.nanos);
                let top = newest
                    .entry(stream.labels.clone())
                    .or_insert((ns, entry.line.clone()));
                if ns >= top.0 {
                    *top = (ns, entry.line.clone());
                }
            }
        }
        None
    }
}

/// The highest line number a push carries (`numbered` lines).
fn reach(request: &PushRequest) -> usize {
    (request.streams.iter())
        .flat_map(|s| &s.entries)
        .filter_map(|e| std::str::from_utf8(&e.line).ok())
        .flat_map(str::lines)
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn container_of(labels: &str) -> String {
    let start = labels.find("container_name=\"").unwrap() + 16;
    labels[start..start + labels[start..].find('"').unwrap()].to_string()
}

impl Pusher for ScriptedLoki {
    fn push(
        &self,
        body: Bytes,
        _timeout: Duration,
        _tenant: Option<Arc<str>>,
    ) -> super::super::client::BoxFuture<'_, PushResult> {
        Box::pin(async move {
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            let request = PushRequest::decode(raw.as_slice()).unwrap();
            let mut containers: Vec<String> = request
                .streams
                .iter()
                .map(|s| container_of(&s.labels))
                .collect();
            containers.dedup();
            let now = Instant::now();
            self.pushes.lock().unwrap().push((now, containers.clone()));
            for name in &containers {
                let mut open = self.open.lock().unwrap();
                let n = open.entry(name.clone()).or_default();
                *n += 1;
                let mut most = self.most_at_once.lock().unwrap();
                let most = most.entry(name.clone()).or_default();
                *most = (*most).max(*n);
            }
            let result = self.answer(request, &containers, now, _timeout).await;
            for name in &containers {
                let mut open = self.open.lock().unwrap();
                let n = open.entry(name.clone()).or_default();
                *n -= 1;
                if *n == 0 {
                    *self
                        .emptied
                        .lock()
                        .unwrap()
                        .entry(name.clone())
                        .or_default() += 1;
                }
            }
            result
        })
    }
}

impl ScriptedLoki {
    async fn answer(
        &self,
        request: PushRequest,
        containers: &[String],
        now: Instant,
        _timeout: Duration,
    ) -> PushResult {
        {
            let carrying: Vec<String> = request
                .streams
                .iter()
                .filter(|s| s.entries.iter().any(|e| !e.structured_metadata.is_empty()))
                .map(|s| s.labels.clone())
                .collect();
            for stream in &request.streams {
                for entry in &stream.entries {
                    let counter = match entry.structured_metadata.is_empty() {
                        true => &self.without_metadata,
                        false => &self.with_metadata,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(limit) = self.limit.lock().unwrap().as_mut() {
                return self.limited(limit, request, now);
            }
            let result = match carrying.first() {
                Some(labels) if self.refuse_metadata.load(Ordering::Relaxed) => answer(
                    400,
                    &format!(
                        "stream '{labels}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it"
                    ),
                ),
                _ => (self.script.lock().unwrap())(containers, now),
            };
            let reach = reach(&request);
            self.furthest.fetch_max(reach, Ordering::Relaxed);
            let entries: usize = request.streams.iter().map(|s| s.entries.len()).sum();
            if let PushResult::Failed {
                kind: FailKind::Timeout,
                ..
            } = result
            {
                tokio::time::sleep(_timeout).await; // a Loki that does not answer
            } else {
                let per_entry = *self.per_entry.lock().unwrap();
                let stagger = match self.stagger.load(Ordering::Relaxed) {
                    true => Duration::from_millis(reach as u64 % 7),
                    false => Duration::ZERO,
                };
                let took = Duration::from_millis(10) + per_entry * entries as u32 + stagger;
                tokio::time::sleep(took).await;
            }
            if self.fail_behind.load(Ordering::Relaxed)
                && entries > 1
                && reach < self.furthest.load(Ordering::Relaxed)
            {
                return answer(500, "ingester busy");
            }
            if self.ordered.load(Ordering::Relaxed)
                && let Some(refused) = self.out_of_order(&request)
            {
                return refused;
            }
            let refused = match &result {
                PushResult::Answered { status, body, .. } if status.as_u16() == 400 => {
                    let mut refused: Vec<String> = policy::blamed_streams(body)
                        .iter()
                        .map(|b| b["container_name"].clone())
                        .collect();
                    if policy::refuses_structured_metadata(&result) {
                        refused.extend(carrying.iter().map(|l| container_of(l)));
                    }
                    refused
                }
                PushResult::Answered { status, .. } if status.is_success() => vec![],
                _ => return result,
            };
            // Like Loki: the valid streams of a push are stored, and an
            // exact duplicate of an entry is kept once.
            let mut accepted = self.accepted.lock().unwrap();
            for stream in request.streams {
                let name = container_of(&stream.labels);
                if refused.contains(&name) {
                    continue;
                }
                let kept = accepted.entry(name).or_default();
                for entry in &stream.entries {
                    let line = String::from_utf8_lossy(&entry.line).into_owned();
                    if !kept.contains(&line) {
                        kept.push(line);
                    }
                }
            }
            result
        }
    }
}

impl ScriptedLoki {
    /// Answers as Loki's ingester does with per-stream limits: stores what
    /// is within them, and answers 429 for the last stream refused, listing
    /// (up to 10) ignored entries and counting them.
    fn limited(&self, limit: &mut StreamLimit, request: PushRequest, now: Instant) -> PushResult {
        let mut body = None;
        let mut accepted = self.accepted.lock().unwrap();
        for stream in request.streams {
            let name = container_of(&stream.labels);
            let lengths: Vec<usize> = stream.entries.iter().map(|e| e.line.len()).collect();
            let refused = limit.refuse(&stream.labels, &lengths, now);
            let kept = accepted.entry(name).or_default();
            let mut text = String::new();
            let mut ignored = 0;
            for (entry, refused) in stream.entries.iter().zip(&refused) {
                if *refused {
                    ignored += 1;
                    if ignored <= 10 {
                        let ts = entry.timestamp.unwrap_or_default();
                        text += &format!(
                            "entry with timestamp {} ignored, reason: 'Per stream rate limit exceeded (limit: {}KB/sec) while attempting to ingest for stream '{}' totaling {}B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased',\n",
                            go_time(ts.seconds * 1_000_000_000 + i64::from(ts.nanos)),
                            limit.rate as usize / 1024,
                            stream.labels,
                            entry.line.len()
                        );
                    }
                    continue;
                }
                let line = String::from_utf8_lossy(&entry.line).into_owned();
                if !kept.contains(&line) {
                    kept.push(line);
                }
            }
            if ignored > 0 {
                text += &format!(
                    "user 'fake', total ignored: {ignored} out of {} for stream: {}",
                    refused.len(),
                    stream.labels
                );
                body = Some(text);
            }
        }
        match body {
            Some(body) => answer(429, &body),
            None => ok(),
        }
    }
}

fn ok() -> PushResult {
    answer(204, "")
}

/// A push Loki never answered (the client's timeout).
fn no_answer() -> PushResult {
    PushResult::Failed {
        reason: "no answer".into(),
        kind: FailKind::Timeout,
    }
}

/// A time as Go's `time.Time.String()` prints it in UTC, as Loki does.
fn go_time(ns: i64) -> String {
    let stamp = jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap();
    let fraction = format!("{:09}", ns.rem_euclid(1_000_000_000));
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!(
        "{}{dot}{fraction} +0000 UTC",
        stamp.strftime("%Y-%m-%d %H:%M:%S")
    )
}

fn answer(code: u16, body: &str) -> PushResult {
    PushResult::Answered {
        status: StatusCode::from_u16(code).unwrap(),
        body: body.into(),
        retry_after: None,
    }
}

fn rate_limited(container: &str) -> PushResult {
    answer(
        429,
        &format!(
            "Per stream rate limit exceeded (limit: 3MB/sec) while attempting to ingest for stream '{{container_name=\"{container}\", source=\"stdout\"}}' totaling 100B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased"
        ),
    )
}

fn endpoint_config() -> EndpointConfig {
    crate::config::options::ContainerConfig::from_log_opts(
        &[("loki-url", "http://loki:3100/loki/api/v1/push")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap()
    .endpoint
}

struct Setup {
    endpoint: Endpoint,
    store: Arc<Store>,
    drain: watch::Sender<Option<Instant>>,
}

fn setup(config: EndpointConfig, loki: &Arc<ScriptedLoki>) -> Setup {
    let store = Store::new(
        None,
        StoreSettings {
            disk_limit: 1 << 30,
            max_age: None,
            memory_limit: 1 << 30,
            max_readers: 1,
        },
    );
    let drain = watch::channel(None).0;
    let endpoint = Endpoint::new(
        config,
        loki.clone(),
        drain.subscribe(),
        Arc::new(EndpointCounters::new("http://loki".into())),
    );
    Setup {
        endpoint,
        store,
        drain,
    }
}

impl Setup {
    fn lane(&mut self, name: &str) -> Arc<Journal> {
        self.lane_with_metadata(name, &[])
    }

    /// A lane whose lines go through the pipeline `stages` (YAML).
    fn processed_lane(&mut self, name: &str, stages: &str) -> Arc<Journal> {
        let journal = self.journal(name);
        let labels = container_labels(name);
        let pipeline =
            crate::process::Pipeline::parse_inline(stages, &crate::process::NoFiles).unwrap();
        self.endpoint.attach(Lane::new(Feed::processed(
            journal.clone(),
            labels,
            Vec::new(),
            pipeline,
            false,
        )));
        journal
    }

    /// A memory-only journal with its reader attached and its lane claimed.
    fn journal(&mut self, name: &str) -> Arc<Journal> {
        let config = JournalConfig {
            max_size: None,
            max_file: 1,
            no_file: true,
            keep_file: false,
            disk_limit: 1 << 30,
            memory_limit: 1 << 30,
            journaled_memory: usize::MAX,
            max_line: 256_000,
        };
        let journal = self
            .store
            .open(name, name, config, Arc::default(), None)
            .unwrap();
        journal.attach_reader();
        assert!(journal.claim_lane(), "the journal needs a lane");
        journal
    }

    fn lane_with_metadata(&mut self, name: &str, metadata: &[(&str, &str)]) -> Arc<Journal> {
        let journal = self.journal(name);
        let labels = container_labels(name);
        let metadata = metadata
            .iter()
            .map(|(name, value)| LabelPairAdapter {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect();
        self.endpoint
            .attach(Lane::new(Feed::plain(journal.clone(), labels, metadata)));
        journal
    }
}

/// The labels of a container's stream: its name.
fn container_labels(name: &str) -> StreamLabels {
    StreamLabels::new(&BTreeMap::from([(
        "container_name".to_string(),
        name.to_string(),
    )]))
}

/// Writes lines as a FIFO reader would, each with a timestamp of its own.
fn write(journal: &Journal, texts: impl IntoIterator<Item = String>) {
    static CLOCK: std::sync::atomic::AtomicI64 =
        std::sync::atomic::AtomicI64::new(1_700_000_000_000_000_000);
    let mut assembler = Assembler::new(256_000);
    let mut intake = journal.intake();
    let mut lines = Vec::new();
    for text in texts {
        let entry = LogEntry {
            source: "stdout".into(),
            time_nano: CLOCK.fetch_add(1_000, Ordering::Relaxed),
            line: Bytes::from(text),
            ..LogEntry::default()
        };
        let seq = intake.record(&entry.encode_to_vec());
        assembler.push(entry, seq, &mut lines).unwrap();
    }
    intake.commit(lines, [None, None], None);
}

fn numbered(name: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{name} {i}")).collect()
}

/// Runs the endpoint for `duration` of (paused) time.
async fn run_for(setup: &mut Setup, duration: Duration) {
    let (_tx, mut rx) = mpsc::unbounded_channel();
    let _ = tokio::time::timeout(
        duration,
        setup.endpoint.run(&mut rx, Duration::from_secs(3600)),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_lane_refused_for_minutes_does_not_hold_back_another() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "busy") {
            rate_limited("busy")
        } else {
            ok()
        }
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let busy = setup.lane("busy");
    let quiet = setup.lane("quiet");
    write(&busy, numbered("busy", 0..100));
    write(&quiet, numbered("quiet", 0..10));
    let start = Instant::now();
    run_for(&mut setup, Duration::from_millis(1500)).await;
    assert_eq!(
        loki.accepted("quiet"),
        numbered("quiet", 0..10),
        "within one batch wait"
    );
    let first = loki
        .pushes()
        .into_iter()
        .find(|(_, c)| c == &["quiet"])
        .unwrap()
        .0;
    assert!(
        first - start <= Duration::from_millis(1100),
        "{:?}",
        first - start
    );

    // Minutes of refusals: more quiet lines keep flowing meanwhile.
    for round in 1..6 {
        write(&quiet, numbered("quiet", round * 10..round * 10 + 10));
        run_for(&mut setup, Duration::from_secs(30)).await;
        assert_eq!(loki.accepted("quiet").len(), round * 10 + 10);
    }
    assert!(loki.accepted("busy").is_empty());
    // Loki accepts again: the refused lane's lines arrive, in order.
    loki.set(Box::new(|_, _| ok()));
    run_for(&mut setup, Duration::from_secs(310)).await;
    assert_eq!(loki.accepted("busy"), numbered("busy", 0..100));
    assert_eq!(
        busy.counters.dropped_total(),
        0,
        "retried within loki-retries"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_push_that_fails_is_retried_lane_by_lane() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "bad") {
            answer(500, "internal error")
        } else {
            ok()
        }
    }));
    let mut config = endpoint_config();
    config.min_backoff = Duration::from_secs(10);
    let mut setup = setup(config, &loki);
    let bad = setup.lane("bad");
    let good = setup.lane("good");
    write(&bad, numbered("bad", 0..5));
    write(&good, numbered("good", 0..5));
    run_for(&mut setup, Duration::from_millis(1200)).await;
    let pushes = loki.pushes();
    assert_eq!(pushes[0].1.len(), 2, "the first push combines both lanes");
    assert_eq!(loki.accepted("good"), numbered("good", 0..5));
    assert!(
        pushes[1].0 - pushes[0].0 <= Duration::from_millis(20) && pushes[1].1.len() == 1,
        "each lane retried alone at once: {pushes:?}"
    );
    // Only the bad lane waits, and it counts against loki-retries.
    assert!(setup.endpoint.lanes.iter().any(|l| l.not_before.is_some()));
    assert_eq!(setup.endpoint.counters.retries.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_loki_costs_no_lines_and_is_probed_every_two_seconds() {
    let loki = ScriptedLoki::new(Box::new(|_, _| PushResult::Failed {
        reason: "connection refused".into(),
        kind: FailKind::Unreachable,
    }));
    let mut config = endpoint_config();
    config.retries = 1;
    let mut setup = setup(config, &loki);
    let a = setup.lane("a");
    let b = setup.lane("b");
    write(&a, numbered("a", 0..10));
    write(&b, numbered("b", 0..10));
    run_for(&mut setup, Duration::from_secs(600)).await;
    let pushes = loki.pushes();
    let gaps: Vec<Duration> = pushes.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // Each probe waits at most PROBE_MAX after the last one failed (the
    // scripted Loki takes 10 ms to answer).
    let slack = Duration::from_millis(20);
    assert!(gaps.iter().all(|g| *g <= PROBE_MAX + slack), "{gaps:?}");
    assert!(
        pushes.iter().skip(1).all(|(_, c)| c.len() == 1),
        "after the first push, one probe at a time"
    );
    assert_eq!(a.counters.dropped_total() + b.counters.dropped_total(), 0);
    assert!(!setup.endpoint.counters.up.load(Ordering::Relaxed));
    // It answers again: every lane resumes at once.
    let back = Instant::now();
    loki.set(Box::new(|_, _| ok()));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(loki.accepted("a").len() + loki.accepted("b").len(), 20);
    let last = loki.pushes().last().unwrap().0;
    assert!(last - back <= PROBE_MAX + Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let loki = ScriptedLoki::new(Box::new(|_, _| PushResult::Answered {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: String::new(),
        retry_after: Some(Duration::from_secs(30)),
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..3));
    run_for(&mut setup, Duration::from_secs(70)).await;
    let pushes = loki.pushes();
    let gaps: Vec<Duration> = pushes.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| *g >= Duration::from_secs(30)),
        "{gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_400_drops_only_the_blamed_lane_and_counts_the_rest_as_sent() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "bad") {
            answer(
                400,
                "entry for stream '{container_name=\"bad\", source=\"stdout\"}' has timestamp too old",
            )
        } else {
            ok()
        }
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let bad = setup.lane("bad");
    let good = setup.lane("good");
    write(&bad, numbered("bad", 0..4));
    write(&good, numbered("good", 0..6));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(bad.counters.dropped(DropReason::Rejected), 4);
    assert_eq!(good.counters.sent.load(Ordering::Relaxed), 6);
    assert_eq!(
        good.counters.dropped_total(),
        0,
        "stored lines are not dropped"
    );
    assert_eq!(loki.accepted("good"), numbered("good", 0..6));
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_and_a_501_is_not_retried() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "failing") {
            answer(500, "boom")
        } else {
            answer(501, "not implemented")
        }
    }));
    let mut config = endpoint_config();
    config.retries = 2;
    config.min_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_secs(1);
    let mut setup = setup(config, &loki);
    let failing = setup.lane("failing");
    write(&failing, numbered("failing", 0..3));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert_eq!(failing.counters.dropped(DropReason::RetriesExhausted), 3);
    assert_eq!(loki.pushes().len(), 3, "the first attempt and 2 retries");
    let other = setup.lane("other");
    write(&other, numbered("other", 0..2));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert_eq!(other.counters.dropped(DropReason::Rejected), 2);
    assert_eq!(loki.pushes().len(), 4, "a 501 is not retried");
}

#[tokio::test(start_paused = true)]
async fn rate_limited_batches_can_be_dropped_as_promtail_does() {
    let loki = ScriptedLoki::new(Box::new(|_, _| rate_limited("a")));
    let mut config = endpoint_config();
    config.drop_rate_limited = true;
    let mut setup = setup(config, &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..7));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(a.counters.dropped(DropReason::RateLimited), 7);
    assert_eq!(loki.pushes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_against_a_lane_only_while_others_get_through() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "slow") {
            no_answer()
        } else {
            ok()
        }
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let slow = setup.lane("slow");
    let fast = setup.lane("fast");
    write(&slow, numbered("slow", 0..3));
    // The fast container keeps logging while the slow one's pushes hang.
    for second in 0..60 {
        write(&fast, numbered("fast", second * 2..second * 2 + 2));
        run_for(&mut setup, Duration::from_secs(1)).await;
    }
    run_for(&mut setup, Duration::from_secs(2)).await;
    assert_eq!(
        loki.accepted("fast").len(),
        120,
        "the fast lane was not held back"
    );
    assert!(
        setup.endpoint.counters.retries.load(Ordering::Relaxed) >= 1,
        "the slow lane's own timeouts count against loki-retries"
    );
    assert!(loki.accepted("slow").is_empty());

    // When every push times out, it is the endpoint that is down.
    loki.set(Box::new(|_, _| no_answer()));
    write(&fast, numbered("fast", 200..202));
    run_for(&mut setup, Duration::from_secs(30)).await;
    assert!(!setup.endpoint.counters.up.load(Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn pushes_overlap_up_to_the_in_flight_bound() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    let mut config = endpoint_config();
    config.batch_size = 100;
    config.max_in_flight = 3;
    let mut setup = setup(config, &loki);
    let lanes: Vec<_> = (0..6).map(|i| setup.lane(&format!("c{i}"))).collect();
    for (i, lane) in lanes.iter().enumerate() {
        write(lane, numbered(&format!("c{i}"), 0..20));
    }
    run_for(&mut setup, Duration::from_secs(2)).await;
    for i in 0..6 {
        assert_eq!(loki.accepted(&format!("c{i}")).len(), 20);
    }
    let first_at = loki.pushes()[0].0;
    let together = loki.pushes().iter().filter(|(t, _)| *t == first_at).count();
    assert_eq!(together, 3, "three pushes start at once, no more");
}

/// A Loki whose answer takes longer the more entries a push has (so two
/// halves at once are faster than one push), answering `script`.
fn loki_by_entries(script: Script) -> Arc<ScriptedLoki> {
    let loki = ScriptedLoki::new(script);
    *loki.per_entry.lock().unwrap() = Duration::from_micros(200);
    loki
}

/// Batches of 1,000 bytes: a few thousand short lines are a backlog.
fn small_batches() -> EndpointConfig {
    let mut config = endpoint_config();
    config.batch_size = 1000;
    config
}

/// Answers 500 to the pushes numbered `failing` (from 1), 204 to others.
fn failing_pushes(failing: &'static [usize]) -> Script {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    Box::new(
        move |_, _| match failing.contains(&(calls.fetch_add(1, Ordering::Relaxed) + 1)) {
            true => answer(500, "ingester busy"),
            false => ok(),
        },
    )
}

/// What Loki holds of `numbered(name, ..)` lines, by number.
fn in_number_order(loki: &ScriptedLoki, name: &str) -> Vec<String> {
    let mut accepted = loki.accepted(name);
    accepted.sort_by_key(|l| l[name.len() + 1..].parse::<usize>().unwrap());
    accepted
}

/// A container's backlog goes in two pushes at once where Loki takes a
/// stream's lines out of order (the default since Loki 2.4): first a probe
/// (one delivered line again, which Loki keeps once), then halves of each
/// batch side by side. Every line arrives once and is counted once, and
/// the cursor passes a batch only when both halves are in.
#[tokio::test(start_paused = true)]
async fn a_backlog_goes_in_two_pushes_at_once_where_loki_takes_lines_out_of_order() {
    let loki = loki_by_entries(Box::new(|_, _| ok()));
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..2000)); // 12,890 bytes: 13 batches
    run_for(&mut setup, Duration::from_secs(5)).await;
    let accepted = in_number_order(&loki, "a");
    assert_eq!(accepted, numbered("a", 0..2000), "every line, once");
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 2000);
    assert_eq!(a.counters.dropped_total(), 0);
    assert!(a.is_drained(), "the cursor passed every line");
    assert_eq!(setup.endpoint.order, Order::Unordered);
    assert_eq!(loki.most_at_once("a"), 2, "two pushes at once, no more");
    // With one push at a time the same lines take longer.
    let one = loki_by_entries(Box::new(|_, _| ok()));
    let mut config = small_batches();
    config.max_in_flight = 1;
    let mut single = self::setup(config, &one);
    let b = single.lane("a");
    write(&b, numbered("a", 0..2000));
    let overlapped = loki.pushes().last().unwrap().0 - loki.pushes()[0].0;
    run_for(&mut single, Duration::from_secs(5)).await;
    assert_eq!(one.most_at_once("a"), 1);
    let serial = one.pushes().last().unwrap().0 - one.pushes()[0].0;
    assert!(
        overlapped < serial,
        "{overlapped:?} at once, {serial:?} one at a time"
    );
}

/// A backlog keeps Loki busy: when one of a container's two pushes is
/// answered, the next part goes at once, taken from the journal while the
/// other push is still out; the batch finishes its front as parts are
/// delivered instead of waiting for both halves and then reading the next
/// batch. Loki runs out of the container's lines only before the halves
/// start (the first batch, then the probe of [`Order`]) and at the end.
#[tokio::test(start_paused = true)]
async fn a_backlog_keeps_two_pushes_out_until_it_is_gone() {
    let loki = loki_by_entries(Box::new(|_, _| ok()));
    loki.stagger.store(true, Ordering::Relaxed);
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..2000)); // 13 batches of 1,000 bytes
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(in_number_order(&loki, "a"), numbered("a", 0..2000));
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 2000);
    assert_eq!(a.counters.pending(), 0);
    assert!(a.is_drained(), "the cursor passed every line");
    let pushes = loki.pushes().len();
    assert!(pushes > 20, "{pushes} pushes");
    assert_eq!(loki.most_at_once("a"), 2, "two pushes at once, no more");
    assert_eq!(
        loki.emptied("a"),
        3,
        "Loki had none of the lines to work on after the first batch, the probe and the last part"
    );
}

/// A half that Loki does not answer while the next ones are delivered
/// ahead of it (from the review of the rolling batch): the batch stops
/// taking more until that half is settled, so one container's batch never
/// holds more than about two pushes of lines. It grew to the whole
/// backlog (19,674 lines) when it took more beside a part settled ahead.
#[tokio::test(start_paused = true)]
async fn a_stuck_half_does_not_let_the_batch_grow() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let loki = loki_by_entries(Box::new(move |_, _| {
        if calls.fetch_add(1, Ordering::Relaxed) + 1 == 4 {
            no_answer()
        } else {
            ok()
        }
    }));
    let mut setup = setup(small_batches(), &loki);
    setup.endpoint.order = Order::Unordered;
    let a = setup.lane("a");
    write(&a, numbered("a", 0..20_000));
    let mut most = 0;
    for _ in 0..100 {
        run_for(&mut setup, Duration::from_millis(100)).await;
        most = most.max(a.counters.in_flight_lines.load(Ordering::Relaxed));
    }
    assert!(most <= 400, "one batch held {most} lines");
    run_for(&mut setup, Duration::from_secs(60)).await;
    assert_eq!(in_number_order(&loki, "a"), numbered("a", 0..20_000));
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 20_000);
}

/// The first half of a batch fails while the second goes through: the
/// second is settled ahead, the first goes again (alone, after its
/// backoff), and the batch ends, its lines counted once, only then.
#[tokio::test(start_paused = true)]
async fn a_first_half_that_fails_goes_again_and_the_batch_waits_for_it() {
    // Push 1 is a whole batch, 2 the probe (the lane waits for its
    // answer), then halves: 3 and 4. Push 3 fails.
    let loki = loki_by_entries(failing_pushes(&[3]));
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..2000));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert!(loki.pushes().len() > 4);
    let accepted = in_number_order(&loki, "a");
    assert_eq!(accepted, numbered("a", 0..2000), "every line, once");
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 2000);
    assert_eq!(a.counters.dropped_total(), 0);
    assert_eq!(setup.endpoint.counters.retries.load(Ordering::Relaxed), 1);
    assert!(a.is_drained());
    let pushes = loki.pushes();
    assert_eq!(pushes[2].0, pushes[3].0, "pushes 3 and 4 went at once");
    assert!(pushes[1].0 < pushes[2].0, "the lane waited for the probe");
    assert!(
        pushes[4].0 - pushes[2].0 >= Duration::from_millis(500),
        "the second half, delivered, did not cancel the first's backoff"
    );
}

/// Both halves of a batch fail at once: one failure of the lane, not two
/// (with `loki-retries=1` neither is given up), and both go again.
#[tokio::test(start_paused = true)]
async fn two_halves_that_fail_together_count_one_failure() {
    let loki = loki_by_entries(failing_pushes(&[3, 4]));
    let mut config = small_batches();
    config.retries = 1;
    let mut setup = setup(config, &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..2000));
    run_for(&mut setup, Duration::from_secs(10)).await;
    let pushes = loki.pushes();
    assert_eq!(pushes[2].0, pushes[3].0, "pushes 3 and 4 went at once");
    let accepted = in_number_order(&loki, "a");
    assert_eq!(accepted, numbered("a", 0..2000), "every line, once");
    assert_eq!(a.counters.dropped_total(), 0, "nothing given up");
    assert_eq!(setup.endpoint.counters.retries.load(Ordering::Relaxed), 1);
}

/// Loki stops taking structured metadata while both halves of a batch
/// carry it: both are sent again without it, none dropped.
#[tokio::test(start_paused = true)]
async fn both_halves_refused_for_their_metadata_go_again_without_it() {
    let loki = loki_by_entries(Box::new(|_, _| ok()));
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane_with_metadata("a", &[("container_id", "01234567")]);
    write(&a, numbered("a", 0..1000));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(setup.endpoint.order, Order::Unordered);
    loki.refuse_metadata.store(true, Ordering::Relaxed);
    write(&a, numbered("a", 1000..3000));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert_eq!(loki.most_at_once("a"), 2);
    let accepted = in_number_order(&loki, "a");
    assert_eq!(accepted, numbered("a", 0..3000), "every line, once");
    assert_eq!(a.counters.dropped_total(), 0, "nothing dropped");
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 3000);
}

/// Lines over 1 KiB are never sent again as the probe (the longer the
/// line, the likelier Loki closed its block right after it, and would keep
/// a second copy): the endpoint does not learn, and pushes one at a time.
#[tokio::test(start_paused = true)]
async fn long_lines_are_not_probed_with() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    let mut config = endpoint_config();
    config.batch_size = 10_000;
    let mut setup = setup(config, &loki);
    let a = setup.lane("a");
    write(&a, sized("a", 0..50, 2000));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(loki.accepted("a").len(), 50);
    assert_eq!(setup.endpoint.order, Order::Unknown);
    assert_eq!(loki.most_at_once("a"), 1);
    assert_eq!(
        loki.with_metadata.load(Ordering::Relaxed) + loki.without_metadata.load(Ordering::Relaxed),
        50,
        "no line twice"
    );
}

/// A Loki whose tenant takes lines only in order (`unordered_writes:
/// false`) refuses the probe (a line it has already): the endpoint learns
/// it, and a container's pushes go one at a time. Nothing is lost.
#[tokio::test(start_paused = true)]
async fn a_loki_that_takes_lines_only_in_order_gets_one_push_of_a_container_at_a_time() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    loki.ordered.store(true, Ordering::Relaxed);
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..400));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(loki.accepted("a"), numbered("a", 0..400), "in order, once");
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 400);
    assert_eq!(a.counters.dropped_total(), 0, "nothing lost");
    assert_eq!(setup.endpoint.order, Order::Ordered);
    assert_eq!(
        loki.out_of_order.load(Ordering::Relaxed),
        1,
        "only the probe was out of order"
    );
    // Once known, a refusal is not asked again, and no lane overlaps.
    write(&a, numbered("a", 400..800));
    run_for(&mut setup, Duration::from_secs(30)).await;
    assert_eq!(loki.accepted("a"), numbered("a", 0..800));
    assert_eq!(loki.out_of_order.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn at_the_shutdown_deadline_what_is_left_is_given_back() {
    let loki = ScriptedLoki::new(Box::new(|_, _| PushResult::Failed {
        reason: "connection refused".into(),
        kind: FailKind::Unreachable,
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..5));
    a.detach_reader(false);
    shut_down(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(
        a.counters.dropped(DropReason::Shutdown),
        5,
        "memory only: lost, and counted"
    );
}

/// A Loki 3 with structured metadata disallowed: the lines are sent again
/// at once without it, nothing is dropped or counted as a failure, and no
/// metadata is sent to that endpoint any more. A lane without metadata in
/// the same push was stored by Loki and is not sent twice.
#[tokio::test(start_paused = true)]
async fn a_loki_that_refuses_structured_metadata_gets_the_lines_without_it() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    loki.refuse_metadata.store(true, Ordering::Relaxed);
    let mut setup = setup(endpoint_config(), &loki);
    let with = setup.lane_with_metadata("with", &[("container_id", "0123abcd")]);
    let plain = setup.lane("plain");
    write(&with, numbered("with", 0..5));
    write(&plain, numbered("plain", 0..3));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(loki.accepted("with"), numbered("with", 0..5));
    assert_eq!(loki.accepted("plain"), numbered("plain", 0..3));
    let pushes = loki.pushes();
    assert_eq!(
        pushes.len(),
        2,
        "the refused push and its resend: {pushes:?}"
    );
    assert!(
        pushes[1].0 - pushes[0].0 <= Duration::from_millis(20),
        "resent at once"
    );
    assert_eq!(pushes[1].1, ["with"], "the stored lane is not sent again");
    for lane in [&with, &plain] {
        assert_eq!(lane.counters.dropped_total(), 0);
    }
    assert_eq!(setup.endpoint.counters.retries.load(Ordering::Relaxed), 0);
    // From now on, no metadata to this endpoint.
    write(&with, numbered("with", 5..10));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(loki.accepted("with"), numbered("with", 0..10));
    assert_eq!(loki.pushes().len(), 3);
    assert_eq!(
        loki.with_metadata.load(Ordering::Relaxed),
        5,
        "only the first try"
    );
    assert_eq!(loki.without_metadata.load(Ordering::Relaxed), 3 + 5 + 5);
}

/// A Loki that takes metadata gets it on every entry of the lane.
#[tokio::test(start_paused = true)]
async fn structured_metadata_rides_on_every_entry() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    let mut setup = setup(endpoint_config(), &loki);
    let with = setup.lane_with_metadata("with", &[("container_id", "0123abcd")]);
    write(&with, numbered("with", 0..4));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(loki.accepted("with").len(), 4);
    assert_eq!(loki.with_metadata.load(Ordering::Relaxed), 4);
    assert_eq!(loki.without_metadata.load(Ordering::Relaxed), 0);
}

/// Structured metadata counts towards `loki-batch-size`: short lines with
/// metadata make several pushes where they alone would make one, so a
/// push stays about as large as the batch size says.
#[tokio::test(start_paused = true)]
async fn structured_metadata_counts_towards_the_batch_size() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    let mut config = endpoint_config();
    config.batch_size = 1000;
    let mut setup = setup(config, &loki);
    // 20 bytes of metadata + 8 of framing per entry.
    let with = setup.lane_with_metadata("with", &[("container_id", "01234567")]);
    let plain = setup.lane("plain");
    write(&with, numbered("with", 0..100)); // 6-7 bytes a line
    write(&plain, numbered("plain", 0..100));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(loki.accepted("with").len(), 100);
    assert_eq!(loki.accepted("plain").len(), 100);
    let pushes_of = |name: &str| {
        loki.pushes()
            .iter()
            .filter(|(_, c)| c.iter().any(|n| n == name))
            .count()
    };
    // 100 × (7 + 28) bytes in batches of 1000: at least 4 pushes.
    assert!(pushes_of("with") >= 4, "{:?}", loki.pushes());
    // Every entry carries it (one line may go twice: the probe of `Order`).
    assert!(loki.with_metadata.load(Ordering::Relaxed) >= 100);
    assert_eq!(loki.without_metadata.load(Ordering::Relaxed), 100);
    assert!(pushes_of("plain") <= 2, "{:?}", loki.pushes());
}

/// An expired token (401, 403) or a gateway's 404 during a deploy costs
/// time, not lines: the endpoint waits and probes as for an unreachable
/// Loki, nothing is dropped or counted against `loki-retries`, and the
/// lines go once Loki takes them again (issue 15).
#[tokio::test(start_paused = true)]
async fn a_401_403_or_404_keeps_the_lines_until_loki_takes_them() {
    for status in [401, 403, 404] {
        let loki = ScriptedLoki::new(Box::new(move |_, _| answer(status, "no")));
        let mut config = endpoint_config();
        config.retries = 1;
        let mut setup = setup(config, &loki);
        let a = setup.lane("a");
        let b = setup.lane("b");
        write(&a, numbered("a", 0..5));
        write(&b, numbered("b", 0..5));
        run_for(&mut setup, Duration::from_secs(120)).await;
        assert_eq!(
            a.counters.dropped_total() + b.counters.dropped_total(),
            0,
            "{status}"
        );
        assert_eq!(
            setup.endpoint.counters.retries.load(Ordering::Relaxed),
            0,
            "{status}"
        );
        let pushes = loki.pushes();
        let gaps: Vec<Duration> = pushes.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            gaps.iter()
                .all(|g| *g <= PROBE_MAX + Duration::from_millis(20)),
            "{status}: probed every 2 s at most: {gaps:?}"
        );
        assert!(pushes.len() < 120, "{status}: one probe at a time");
        loki.set(Box::new(|_, _| ok()));
        let back = Instant::now();
        run_for(&mut setup, Duration::from_secs(3)).await;
        assert_eq!(loki.accepted("a"), numbered("a", 0..5), "{status}");
        assert_eq!(loki.accepted("b"), numbered("b", 0..5), "{status}");
        assert!(loki.pushes().last().unwrap().0 - back <= PROBE_MAX + Duration::from_millis(50));
        assert_eq!(a.counters.sent.load(Ordering::Relaxed), 5, "{status}");
    }
}

/// Loki's 260 (the tenant's ingestion is blocked: Loki dropped the data)
/// counts the lines as dropped for `blocked`, not as sent (issue 15).
#[tokio::test(start_paused = true)]
async fn a_260_counts_the_lines_as_dropped_not_sent() {
    let loki = ScriptedLoki::new(Box::new(|_, _| {
        answer(260, "ingestion blocked for user fake until 2030-01-01")
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..4));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 0);
    assert_eq!(a.counters.dropped(DropReason::Blocked), 4);
    assert_eq!(loki.pushes().len(), 1, "not retried");
}

/// A replay older than Loki's out-of-order window: Loki stores what it can
/// and says how many it ignored; those count as `too_far_behind`, the rest
/// as sent (issue 15). The answer is Loki 3.7.6's, as measured.
#[tokio::test(start_paused = true)]
async fn lines_too_far_behind_are_counted_with_their_own_reason() {
    let entry = |ts: &str| {
        format!(
            "entry with timestamp {ts} +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-12-06T11:53:58Z, oldest acceptable timestamp is: 2026-12-06T12:53:58Z',\n"
        )
    };
    let body = format!(
        "{}{}{}user 'fake', total ignored: 3 out of 4 for stream: {{container_name=\"old\", service_name=\"old\", source=\"stdout\"}}\n",
        entry("2026-12-06 11:53:58.1"),
        entry("2026-12-06 11:53:58.2"),
        entry("2026-12-06 11:53:58.3"),
    );
    let loki = ScriptedLoki::new(Box::new(move |_, _| answer(400, &body)));
    let mut setup = setup(endpoint_config(), &loki);
    let old = setup.lane("old");
    write(&old, numbered("old", 0..4));
    run_for(&mut setup, Duration::from_secs(3)).await;
    assert_eq!(old.counters.dropped(DropReason::TooFarBehind), 3);
    assert_eq!(old.counters.dropped(DropReason::Rejected), 0);
    assert_eq!(old.counters.sent.load(Ordering::Relaxed), 1);
}

/// A store over `dir` (a journal on disk).
fn disk_store(dir: &std::path::Path) -> Arc<Store> {
    Store::new(
        Some(dir.to_path_buf()),
        StoreSettings {
            disk_limit: 1 << 30,
            max_age: None,
            memory_limit: 1 << 30,
            max_readers: 1,
        },
    )
}

fn disk_config() -> JournalConfig {
    JournalConfig {
        max_size: Some(1 << 20),
        max_file: 5,
        no_file: false,
        keep_file: false,
        disk_limit: 1 << 30,
        memory_limit: 1 << 30,
        journaled_memory: usize::MAX,
        max_line: 256_000,
    }
}

/// Waits (in real time) until the journal's writer has written everything.
fn written(journal: &Journal) {
    for _ in 0..1000 {
        if !journal.may_grow() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the writer did not finish");
}

/// A lane for a journal found on disk after a restart, its FIFO attached
/// again (live), as the driver re-attaches a quiet container.
fn reattached(setup: &mut Setup, store: &Arc<Store>, name: &str) -> Arc<Journal> {
    let journal = store
        .open(name, name, disk_config(), Arc::default(), None)
        .unwrap();
    journal.attach_reader();
    assert!(journal.claim_lane());
    let labels = container_labels(name);
    setup
        .endpoint
        .attach(Lane::new(Feed::plain(journal.clone(), labels, Vec::new())));
    journal
}

/// After a restart with Loki down, a container that stays quiet has its
/// backlog on disk only (nothing new in memory). It must be due like any
/// other: in Loki within a probe and a batch wait of Loki answering, not
/// never (issue 15: `pending_since` answered "now" for a disk backlog).
#[tokio::test(start_paused = true)]
async fn a_quiet_containers_backlog_goes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The earlier run: 2,000 lines written while Loki was down.
        let store = disk_store(dir.path());
        let journal = store
            .open("quiet", "quiet", disk_config(), Arc::default(), None)
            .unwrap();
        write(&journal, numbered("quiet", 0..2000));
        written(&journal);
    }
    let loki = ScriptedLoki::new(Box::new(|_, _| PushResult::Failed {
        reason: "connection refused".into(),
        kind: FailKind::Unreachable,
    }));
    let mut setup = setup(endpoint_config(), &loki);
    let store = disk_store(dir.path());
    let quiet = reattached(&mut setup, &store, "quiet");
    run_for(&mut setup, Duration::from_secs(30)).await;
    assert!(loki.accepted("quiet").is_empty());
    assert!(!loki.pushes().is_empty(), "Loki was probed while down");
    let back = Instant::now();
    loki.set(Box::new(|_, _| ok()));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert_eq!(loki.accepted("quiet"), numbered("quiet", 0..2000));
    let last = loki.pushes().last().unwrap().0;
    assert!(
        last - back <= Duration::from_secs(5),
        "in Loki {:?} after it answered",
        last - back
    );
    assert_eq!(quiet.counters.recovered.load(Ordering::Relaxed), 2000);
    assert_eq!(quiet.counters.pending(), 0);
}

/// Issue 15: under a tenant-wide 429, every lane holds a batch (in flight
/// or waiting out the throttle), and lanes with a disk backlog read theirs
/// back: that memory counts against `TOTAL_BUFFER_SIZE` like the rest, so
/// the plugin stays within it, not at lanes × `loki-batch-size`.
#[tokio::test(start_paused = true)]
async fn memory_stays_within_the_bound_while_every_lane_holds_a_batch() {
    const LIMIT: usize = 256 << 10;
    let dir = tempfile::tempdir().unwrap();
    let loki = ScriptedLoki::new(Box::new(|_, _| {
        answer(
            429,
            "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '100' lines totaling '12345' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
        )
    }));
    let mut config = endpoint_config();
    config.retries = 1000;
    config.max_backoff = Duration::from_secs(2);
    let mut setup = setup(config, &loki);
    setup.store = Store::new(
        Some(dir.path().to_path_buf()),
        StoreSettings {
            disk_limit: 1 << 30,
            max_age: None,
            memory_limit: LIMIT,
            max_readers: 1,
        },
    );
    let mut lanes = Vec::new();
    for i in 0..40 {
        let name = format!("c{i}");
        let journal = setup
            .store
            .open(&name, &name, disk_config(), Arc::default(), None)
            .unwrap();
        journal.attach_reader();
        assert!(journal.claim_lane());
        let labels = container_labels(&name);
        setup
            .endpoint
            .attach(Lane::new(Feed::plain(journal.clone(), labels, Vec::new())));
        lanes.push(journal);
    }
    let budget = setup.store.budget().clone();
    let mut peak = 0;
    for round in 0..60 {
        // 40 lanes × 16 kB a second: over the bound within a second.
        for (i, lane) in lanes.iter().enumerate() {
            write(
                lane,
                (0..100).map(|n| format!("c{i} {round} {n} {}", "x".repeat(140))),
            );
        }
        for _ in 0..10 {
            run_for(&mut setup, Duration::from_millis(100)).await;
            peak = peak.max(budget.used());
        }
    }
    assert!(loki.pushes().len() > 40, "Loki was asked");
    assert!(
        peak <= LIMIT + LIMIT / 10,
        "{peak} bytes in memory for a bound of {LIMIT}"
    );
    for lane in &lanes {
        assert_eq!(
            lane.counters.dropped_total(),
            0,
            "{}",
            lane.counters.summary()
        );
    }
}

const KIB: usize = 1024;

/// `count` lines of `len` bytes, numbered.
fn sized(name: &str, range: std::ops::Range<usize>, len: usize) -> Vec<String> {
    range
        .map(|i| {
            format!("{name} {i:06} ")
                .chars()
                .chain(std::iter::repeat('x'))
                .take(len)
                .collect()
        })
        .collect()
}

/// Runs until `done` or `limit` of paused time; returns the time it took.
async fn run_until(setup: &mut Setup, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        run_for(setup, Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// Issue 15: a Loki 3 with a 256KB/512KB per-stream limit refuses a
/// stream's batch whole, every time, when it is larger than the burst: the
/// lines were refused forever, then dropped. The lane splits the batch,
/// learns the size and the pace Loki takes (its answer says the rate),
/// and sends at that pace: 4 MiB written at once are all in Loki in about
/// the time the limit allows, nothing dropped, without backing off.
#[tokio::test(start_paused = true)]
async fn a_stream_over_lokis_burst_is_split_and_paced() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    *loki.limit.lock().unwrap() = Some(StreamLimit {
        rate: (256 * KIB) as f64,
        burst: (512 * KIB) as f64,
        whole: true,
        buckets: BTreeMap::new(),
    });
    let mut setup = setup(endpoint_config(), &loki);
    let busy = setup.lane("busy");
    write(&busy, sized("busy", 0..4096, KIB));
    let took = run_until(&mut setup, Duration::from_secs(120), || {
        loki.accepted("busy").len() == 4096
    })
    .await;
    let accepted = loki.accepted("busy");
    assert!(
        accepted == sized("busy", 0..4096, KIB),
        "all, in order: {} lines in Loki",
        accepted.len()
    );
    // The limit allows (4 MiB - 512 KiB) / 256 KiB/s = 14 s.
    eprintln!("4 MiB through a 256KB/512KB stream limit (Loki 3): {took:?}");
    assert!(
        took <= Duration::from_secs_f64(14.0 * 1.25),
        "took {took:?}"
    );
    assert_eq!(busy.counters.dropped_total(), 0);
    assert_eq!(busy.counters.sent.load(Ordering::Relaxed), 4096);
    assert_eq!(busy.counters.pending(), 0);
    assert_eq!(
        setup.endpoint.counters.retries.load(Ordering::Relaxed),
        0,
        "not counted as failures"
    );
    let refused = setup
        .endpoint
        .counters
        .pushes(crate::observe::PushClass::RateLimited);
    assert!(refused <= 3, "{refused} pushes refused: the lane learned");
}

/// The same through pipeline stages: a batch of processed entries is cut
/// like one of plain lines, every line is counted once, and the journal's
/// cursor never passes a line Loki has not taken.
#[tokio::test(start_paused = true)]
async fn a_batch_of_processed_entries_is_split_too() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    *loki.limit.lock().unwrap() = Some(StreamLimit {
        rate: (256 * KIB) as f64,
        burst: (512 * KIB) as f64,
        whole: true,
        buckets: BTreeMap::new(),
    });
    let mut setup = setup(endpoint_config(), &loki);
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(dir.path());
    let journal = store
        .open("staged", "staged", disk_config(), Arc::default(), None)
        .unwrap();
    journal.attach_reader();
    assert!(journal.claim_lane());
    let labels = container_labels("staged");
    let pipeline = crate::process::Pipeline::parse_inline(
        "- static_labels:\n    stage: one\n",
        &crate::process::NoFiles,
    )
    .unwrap();
    setup.endpoint.attach(Lane::new(
        Feed::processed(journal.clone(), labels, Vec::new(), pipeline, false)
            .with_clock(|| 1_700_000_000_000_000_000),
    ));
    write(&journal, sized("staged", 0..3072, KIB));
    let start = Instant::now();
    while loki.accepted("staged").len() < 3072 && start.elapsed() < Duration::from_secs(120) {
        run_for(&mut setup, Duration::from_millis(250)).await;
        let done = loki.accepted("staged").len() as u64;
        let cursor = journal.delivery_cursor()[0];
        assert!(
            cursor <= done,
            "the cursor ({cursor}) passed a line not delivered ({done})"
        );
    }
    let took = start.elapsed();
    eprintln!("3 MiB of processed entries through a 256KB/512KB stream limit: {took:?}");
    let accepted = loki.accepted("staged");
    assert!(
        accepted == sized("staged", 0..3072, KIB),
        "all, in order: {} lines in Loki",
        accepted.len()
    );
    assert!(
        took <= Duration::from_secs_f64(10.0 * 1.25),
        "took {took:?}"
    );
    let counters = &journal.counters;
    assert_eq!(
        counters.sent.load(Ordering::Relaxed),
        3072,
        "{}",
        counters.summary()
    );
    assert_eq!(counters.dropped_total(), 0);
    assert_eq!(counters.pending(), 0);
}

/// Loki 2.7.5 takes a stream's entries one by one while its limit lasts:
/// each refused push stores a part. The lane must not back off
/// exponentially (nor count failures) while Loki stores part of each push.
#[tokio::test(start_paused = true)]
async fn a_loki_that_stores_part_of_each_push_is_not_backed_off_from() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    *loki.limit.lock().unwrap() = Some(StreamLimit {
        rate: (256 * KIB) as f64,
        burst: (512 * KIB) as f64,
        whole: false,
        buckets: BTreeMap::new(),
    });
    let mut config = endpoint_config();
    config.retries = 3;
    let mut setup = setup(config, &loki);
    let busy = setup.lane("busy");
    write(&busy, sized("busy", 0..4096, KIB));
    let took = run_until(&mut setup, Duration::from_secs(120), || {
        loki.accepted("busy").len() == 4096
    })
    .await;
    assert_eq!(loki.accepted("busy").len(), 4096);
    assert_eq!(
        busy.counters.dropped_total(),
        0,
        "{}",
        busy.counters.summary()
    );
    eprintln!("4 MiB through a 256KB/512KB stream limit (Loki 2): {took:?}");
    assert!(
        took <= Duration::from_secs_f64(14.0 * 1.25),
        "took {took:?}"
    );
    let pushes = loki.pushes();
    let widest = pushes.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(
        widest <= Duration::from_secs(3),
        "a gap of {widest:?} between pushes"
    );
}

/// A push Loki (or a proxy in front of it) finds too large (413) is split,
/// not dropped: the lane learns a part size that goes through.
#[tokio::test(start_paused = true)]
async fn a_413_splits_the_batch_instead_of_dropping_it() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    let mut setup = setup(endpoint_config(), &loki);
    // A proxy that refuses bodies over 64 KiB (compressed; the lines are
    // numbered, so they compress little).
    setup.endpoint.client = Arc::new(SizeLimited {
        inner: loki.clone(),
        max: 64 * KIB,
    });
    let big = setup.lane("big");
    // Lines that do not compress: a pseudo-random hex text each.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let lines: Vec<String> = (0..1024)
        .map(|i| {
            let mut line = format!("big {i:06} ");
            for _ in 0..32 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line += &format!("{state:016x}");
            }
            line
        })
        .collect();
    write(&big, lines.clone());
    let took = run_until(&mut setup, Duration::from_secs(60), || {
        loki.accepted("big").len() == 1024
    })
    .await;
    let accepted = loki.accepted("big");
    assert!(
        accepted == lines,
        "{} of 1024 lines in Loki",
        accepted.len()
    );
    assert_eq!(
        big.counters.dropped_total(),
        0,
        "{}",
        big.counters.summary()
    );
    assert!(took <= Duration::from_secs(5), "took {took:?}");
}

/// Answers 413 to bodies over `max` bytes, passes the others on.
struct SizeLimited {
    inner: Arc<ScriptedLoki>,
    max: usize,
}

impl Pusher for SizeLimited {
    fn push(
        &self,
        body: Bytes,
        timeout: Duration,
        tenant: Option<Arc<str>>,
    ) -> super::super::client::BoxFuture<'_, PushResult> {
        if body.len() > self.max {
            return Box::pin(async { answer(413, "413 Request Entity Too Large") });
        }
        self.inner.push(body, timeout, tenant)
    }
}

/// A stream Loki refuses whatever the size of its part (over its limit
/// for as long as the container writes), then takes again: the parts,
/// halved down to one line meanwhile, grow back at once, so the backlog
/// goes in a few pushes, not one line a push.
#[tokio::test(start_paused = true)]
async fn parts_made_small_by_refusals_grow_back() {
    let loki = ScriptedLoki::new(Box::new(|containers, _| {
        if containers.iter().any(|c| c == "busy") {
            rate_limited("busy")
        } else {
            ok()
        }
    }));
    let mut config = endpoint_config();
    config.retries = 1000;
    config.max_backoff = Duration::from_secs(5);
    let mut setup = setup(config, &loki);
    let busy = setup.lane("busy");
    for second in 0..30 {
        write(&busy, sized("busy", second * 500..second * 500 + 500, 100));
        run_for(&mut setup, Duration::from_secs(1)).await;
    }
    assert!(loki.accepted("busy").is_empty());
    let before = loki.pushes().len();
    loki.set(Box::new(|_, _| ok()));
    let took = run_until(&mut setup, Duration::from_secs(300), || {
        loki.accepted("busy").len() == 15_000
    })
    .await;
    let pushes = loki.pushes().len() - before;
    assert_eq!(loki.accepted("busy").len(), 15_000);
    assert!(took <= Duration::from_secs(10), "took {took:?}");
    assert!(pushes < 100, "{pushes} pushes for 1.5 MB");
    assert_eq!(busy.counters.dropped_total(), 0);
}

/// The plugin stops while the first half of a batch still fails and the
/// second half is in Loki: the second half's lines are counted sent, the
/// first half's given back, and every line is counted once (`received =
/// sent + dropped + filtered + pending`), with stages and without.
#[tokio::test(start_paused = true)]
async fn at_shutdown_a_half_delivered_ahead_is_counted_once() {
    let multiline = "- multiline:\n    firstline: '^staged \\d*[02468]$'\n    max_wait_time: 3s\n";
    for stages in [
        Some("- static_labels:\n    stage: one\n"),
        Some(multiline),
        None,
    ] {
        shutdown_with_a_half_delivered_ahead(stages).await;
    }
}

async fn shutdown_with_a_half_delivered_ahead(stages: Option<&str>) {
    let loki = loki_by_entries(Box::new(|_, _| ok()));
    loki.fail_behind.store(true, Ordering::Relaxed);
    let mut setup = setup(small_batches(), &loki);
    let journal = match stages {
        Some(stages) => setup.processed_lane("staged", stages),
        None => setup.lane("staged"),
    };
    write(&journal, numbered("staged", 0..2000));
    run_for(&mut setup, Duration::from_secs(3)).await;
    let pushes = loki.pushes();
    assert!(
        pushes.windows(2).any(|p| p[0].0 == p[1].0),
        "two pushes went at once"
    );
    assert!(
        setup.endpoint.counters.retries.load(Ordering::Relaxed) > 0,
        "the first half was refused"
    );
    journal.detach_reader(false);
    shut_down(&mut setup, Duration::from_secs(3)).await;
    let counters = &journal.counters;
    let in_loki: u64 = (loki.accepted("staged").iter())
        .map(|entry| entry.lines().count() as u64)
        .sum();
    let summary = counters.summary();
    assert_eq!(counters.received.load(Ordering::Relaxed), 2000, "{summary}");
    assert_eq!(counters.sent.load(Ordering::Relaxed), in_loki, "{summary}");
    assert!(counters.dropped(DropReason::Shutdown) > 0, "{summary}");
    assert_eq!(
        counters.sent.load(Ordering::Relaxed)
            + counters.dropped_total()
            + counters.filtered_total()
            + counters.pending().max(0) as u64,
        2000,
        "{summary}"
    );
}

/// The endpoint learned, for its own tenant, that Loki takes lines out of
/// order; a `tenant` stage sends a container's entries to another tenant,
/// which may not: they go one push at a time, while the same stages
/// without the `tenant` stage get two at once.
#[tokio::test(start_paused = true)]
async fn entries_for_another_tenant_go_one_push_at_a_time() {
    let loki = loki_by_entries(Box::new(|_, _| ok()));
    let mut setup = setup(small_batches(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..1000));
    run_for(&mut setup, Duration::from_secs(5)).await;
    assert_eq!(setup.endpoint.order, Order::Unordered);
    let other = setup.processed_lane("other", "- tenant:\n    value: team-b\n");
    let own = setup.processed_lane("own", "- static_labels:\n    stage: one\n");
    write(&other, numbered("other", 0..2000));
    write(&own, numbered("own", 0..2000));
    run_for(&mut setup, Duration::from_secs(10)).await;
    assert_eq!(in_number_order(&loki, "other"), numbered("other", 0..2000));
    assert_eq!(in_number_order(&loki, "own"), numbered("own", 0..2000));
    assert_eq!(
        loki.most_at_once("other"),
        1,
        "another tenant: one at a time"
    );
    assert_eq!(loki.most_at_once("own"), 2, "the endpoint's tenant: two");
}

/// Runs the endpoint until the shutdown deadline, `after` from now.
async fn shut_down(setup: &mut Setup, after: Duration) {
    setup.drain.send_replace(Some(Instant::now() + after));
    let (_tx, mut rx) = mpsc::unbounded_channel();
    tokio::time::timeout(
        after + Duration::from_secs(10),
        setup.endpoint.run(&mut rx, Duration::from_secs(1)),
    )
    .await
    .expect("the endpoint returns at the deadline");
}

/// The plugin stops while Loki refuses a batch whose lines a `drop` stage
/// thinned out: the lines the stage dropped are counted as filtered (the
/// outcome the user asked for), not as lost to the shutdown.
#[tokio::test(start_paused = true)]
async fn at_shutdown_lines_a_stage_dropped_count_as_filtered() {
    let loki = ScriptedLoki::new(Box::new(|_, _| answer(500, "ingester busy")));
    let mut setup = setup(endpoint_config(), &loki);
    let a = setup.processed_lane("a", "- drop:\n    expression: '[05]$'\n");
    write(&a, numbered("a", 0..40));
    run_for(&mut setup, Duration::from_secs(3)).await;
    a.detach_reader(false);
    shut_down(&mut setup, Duration::from_secs(1)).await;
    let counters = &a.counters;
    let summary = counters.summary();
    assert_eq!(counters.filtered_total(), 8, "0, 5, 10, ... 35: {summary}");
    assert_eq!(counters.dropped(DropReason::Shutdown), 32, "{summary}");
    assert_eq!(counters.sent.load(Ordering::Relaxed), 0, "{summary}");
}

/// A push Loki answered just before the shutdown deadline, whose answer
/// the endpoint had not looked at yet, counts as delivered: its lines are
/// `sent`, not lost to the shutdown.
#[tokio::test(start_paused = true)]
async fn a_push_answered_before_the_deadline_counts_as_delivered() {
    let loki = ScriptedLoki::new(Box::new(|_, _| ok()));
    *loki.per_entry.lock().unwrap() = Duration::from_secs(1);
    let mut setup = setup(endpoint_config(), &loki);
    let a = setup.lane("a");
    write(&a, numbered("a", 0..5));
    // The batch wait (1 s) passes and the push starts; Loki takes 5 s.
    run_for(&mut setup, Duration::from_secs(2)).await;
    assert_eq!(loki.pushes().len(), 1);
    assert!(loki.accepted("a").is_empty());
    // Loki answers while the endpoint is not looking.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(loki.accepted("a").len(), 5);
    a.detach_reader(false);
    setup.endpoint.give_up_at_deadline().await;
    let counters = &a.counters;
    let summary = counters.summary();
    assert_eq!(counters.sent.load(Ordering::Relaxed), 5, "{summary}");
    assert_eq!(counters.dropped_total(), 0, "{summary}");
}
