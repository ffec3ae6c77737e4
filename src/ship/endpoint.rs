//! One Loki endpoint's delivery: lanes, pushes, and the endpoint's state.
//!
//! Each container is a lane: its lines go out oldest first, with at most
//! one batch of it in flight, in one push, or in parts. A push combines
//! several lanes' lines (up to `loki-batch-size`), and up to
//! `loki-max-in-flight` pushes are out at once, so a slow or retried push
//! does not hold the others. A lane with a backlog pushes each full batch
//! in two halves at once where Loki takes a stream's lines out of order
//! (see [`Order`], and how it is learnt without risking a line), and
//! keeps two halves out while the backlog lasts: when one is delivered,
//! the batch finishes its front and takes the next half from the journal.
//!
//! When a push of several lanes is refused (429, 5xx, 400) or times out,
//! each lane is retried alone, at once: the lanes Loki accepts go through,
//! and only a lane still refused backs off, on its own, honouring
//! `Retry-After`. Loki's answers name the streams at fault; those lanes are
//! the ones that back off (or, for a 400, lose those lines).
//!
//! A lane whose stream is over Loki's per-stream limit (a 429 naming it)
//! does not back off: it learns the part size and the pace Loki takes
//! ([`super::pace`]), pushes its batch in parts of that size
//! ([`crate::feed::Feed::cut`]) and waits between them only as the pace
//! requires, without counting failures. A push too large for Loki or a
//! proxy (413) makes every push of the endpoint smaller.
//!
//! A Loki that does not take structured metadata (a Loki 3 with
//! `allow_structured_metadata: false`) answers 400 for the streams that
//! carry it: the endpoint then sends those lines again at once without it,
//! and never sends metadata again (logged once). Nothing is dropped or
//! counted as a failure. (Loki 2 stores protobuf pushes with metadata and
//! drops the metadata, so nothing is needed there.)
//!
//! Loki being unreachable (connection errors, 502–504, timeouts while no
//! push succeeds), or refusing every push (401, 403, 404: a credential, a
//! tenant, a gateway), is a state of the endpoint, not of its lanes: one
//! probe at a time, at most [`PROBE_MAX`] apart, and every lane resumes the
//! moment a push goes through. Nothing is given up meanwhile: the lines
//! wait in the journal. `loki-retries` counts only answers that blame the
//! lines themselves (429, 500, a lane's own timeouts).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use super::client::Pusher;
use super::encode::PushBuilder;
use super::pace::{Pace, Refusal};
use super::policy::{self, FailKind, Labels, PushResult, Verdict};
use crate::config::options::EndpointConfig;
use crate::feed::{Batch, Feed};
use crate::observe::{DropReason, EndpointCounters, Throttle};
use crate::protocol::short_id;

/// Longest wait between two probes of an unreachable Loki, so a backlog
/// starts draining within seconds of its return.
pub const PROBE_MAX: Duration = Duration::from_secs(2);

/// `None` while running; `Some(deadline)` once the plugin is shutting down.
pub type DrainSignal = watch::Receiver<Option<Instant>>;

/// A container's place at an endpoint.
pub struct Lane {
    /// Its lines, labels and metadata, through its stages if it has any.
    pub feed: Feed,
    /// The lines being delivered (in flight, or waiting to be retried).
    batch: Option<Batch>,
    /// The pushes this lane's batch is in: one, or two when a backlog goes
    /// in two parts at once (see [`Order`]).
    pushes: Vec<u64>,
    /// Retry alone: a shared push failed, and this lane's part of the
    /// blame is not known yet.
    solo: bool,
    /// Failures of the current batch counted against `loki-retries`.
    failures: u32,
    not_before: Option<Instant>,
    /// The last counted failure was a 429.
    rate_limited: bool,
    /// What Loki's per-stream limit lets this lane send, learned from its
    /// answers.
    pace: Pace,
}

impl Lane {
    pub fn new(feed: Feed) -> Lane {
        Lane {
            feed,
            batch: None,
            pushes: Vec::new(),
            solo: false,
            failures: 0,
            not_before: None,
            rate_limited: false,
            pace: Pace::default(),
        }
    }

    /// When the lane's next part may go, as its pace allows.
    fn paced_until(&self, now: Instant, part: usize) -> Instant {
        if !self.pace.is_limited() {
            return now;
        }
        let bytes = self.pace.part_size(part).min(self.waiting_bytes().max(1));
        self.pace.ready_at(bytes, now)
    }

    fn name(&self) -> &str {
        self.feed.name()
    }

    /// Whether Loki blames one of the streams this lane's batch is in.
    fn is_blamed(&self, blamed: &[Labels]) -> bool {
        match &self.batch {
            Some(batch) => self
                .feed
                .streams(batch)
                .iter()
                .any(|(set, _)| policy::is_blamed(set, blamed)),
            None => false,
        }
    }

    /// Bytes waiting for a push, for filling one.
    fn waiting_bytes(&self) -> usize {
        self.batch
            .as_ref()
            .map_or(self.feed.queued_bytes(), Batch::unsent_bytes)
    }

    /// Lines wait, or the stages have something to hand on by `now`.
    fn has_waiting(&self, now: Instant) -> bool {
        match &self.batch {
            Some(batch) => batch.has_unsent(),
            None => {
                self.feed.journal.pending_since().is_some()
                    || self.feed.next_release(now).is_some_and(|t| t <= now)
            }
        }
    }

    /// Healthy, unpaced and with nothing of its own to retry: a lane whose
    /// backlog may go in two pushes at once.
    fn is_smooth(&self) -> bool {
        !self.solo && self.failures == 0 && self.not_before.is_none() && !self.pace.is_limited()
    }
}

/// A push in flight: which lanes it carries.
struct InFlight {
    id: u64,
    started: Instant,
    lanes: usize,
    /// Bytes of its lines.
    bytes: usize,
    /// Some entry of it carries structured metadata.
    metadata: bool,
    /// It asks Loki whether it takes a stream's lines out of order.
    probe: bool,
}

/// Whether Loki takes a stream's lines out of order (`unordered_writes`,
/// on by default since Loki 2.4; a tenant may have it off). When it does,
/// a lane with a backlog pushes its batch in two halves at once: Loki
/// spends about 3 µs of CPU on a line, one push at a time keeps one of its
/// cores busy, and a container that exits with a backlog has its last line
/// in Loki sooner.
///
/// The endpoint learns it without risking a line: once a lane with a
/// backlog has a part delivered, it sends one line of that part again,
/// alone, older than the part's last line ([`Feed::probe`]), and the lane
/// waits for the answer. A Loki that takes lines out of order keeps one
/// copy of an exact duplicate while the first is in its ingester's open
/// block (the line before the last is, unless that block was closed right
/// after it: for a line of 100 bytes, about one time in 2,600, and a line
/// over 1 KiB is never the probe); a Loki that does not refuses it as
/// `entry out of order`, and it has the line already. Until the answer,
/// and after a refusal, a lane has one push at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Unknown,
    Unordered,
    Ordered,
}

/// How long an unanswered probe waits before another is sent.
const PROBE_AGAIN: Duration = Duration::from_secs(10);

/// What the endpoint task is told.
pub enum Command {
    Attach(Box<Lane>),
}

/// The endpoint's own state.
struct Health {
    /// Loki is unreachable since then.
    down_since: Option<Instant>,
    /// Failed probes in a row.
    probes: u32,
    next_probe: Instant,
    /// The tenant as a whole is rate limited until then.
    throttled_until: Option<Instant>,
    throttles: u32,
    /// The last push that went through.
    last_success: Option<Instant>,
}

pub struct Endpoint {
    config: EndpointConfig,
    client: Arc<dyn Pusher>,
    lanes: Vec<Lane>,
    /// Where the next push starts looking, so no lane is starved.
    next_lane: usize,
    pushes: JoinSet<(u64, PushResult)>,
    in_flight: Vec<InFlight>,
    next_push: u64,
    health: Health,
    wake: Arc<Notify>,
    drain: DrainSignal,
    pub counters: Arc<EndpointCounters>,
    drop_warning: Throttle,
    retry_warning: Throttle,
    down_warning: Throttle,
    pace_notice: Throttle,
    /// Loki refused structured metadata once: none is sent to it any more.
    no_metadata: bool,
    /// The largest push Loki (or a proxy in front of it) is believed to
    /// take, learned from 413 answers; `loki-batch-size` until one comes.
    max_push: usize,
    order: Order,
    /// When the last probe of [`Order`] went.
    probed_at: Option<Instant>,
}

impl Endpoint {
    pub fn new(
        config: EndpointConfig,
        client: Arc<dyn Pusher>,
        drain: DrainSignal,
        counters: Arc<EndpointCounters>,
    ) -> Endpoint {
        Endpoint {
            config,
            client,
            lanes: Vec::new(),
            next_lane: 0,
            pushes: JoinSet::new(),
            in_flight: Vec::new(),
            next_push: 0,
            health: Health {
                down_since: None,
                probes: 0,
                next_probe: Instant::now(),
                throttled_until: None,
                throttles: 0,
                last_success: None,
            },
            wake: Arc::new(Notify::new()),
            drain,
            counters,
            drop_warning: Throttle::default(),
            retry_warning: Throttle::default(),
            down_warning: Throttle::default(),
            pace_notice: Throttle::default(),
            no_metadata: false,
            max_push: usize::MAX,
            order: Order::Unknown,
            probed_at: None,
        }
    }

    pub fn attach(&mut self, lane: Lane) {
        lane.feed.journal.set_wake(self.wake.clone());
        self.lanes.push(lane);
        self.counters
            .lanes
            .store(self.lanes.len() as i64, Ordering::Relaxed);
    }

    pub fn is_idle(&self) -> bool {
        self.lanes.is_empty() && self.in_flight.is_empty()
    }

    /// Delivers until the plugin drains and every lane is done, or until
    /// `commands` closes with no lane left, or it has been idle for
    /// `idle` (the caller then retires it).
    pub async fn run(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>, idle: Duration) {
        let mut idle_since: Option<Instant> = None;
        loop {
            while let Ok(Command::Attach(lane)) = commands.try_recv() {
                self.attach(*lane);
            }
            self.reap();
            let deadline = *self.drain.borrow();
            if self.is_idle() {
                if deadline.is_some() {
                    return;
                }
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= idle {
                    return;
                }
            } else {
                idle_since = None;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.give_up_at_deadline().await;
                return;
            }
            let timer = self.schedule().await;
            let timer = match (idle_since, timer) {
                (Some(since), t) => Some(t.map_or(since + idle, |t| t.min(since + idle))),
                (None, t) => t,
            };
            let timer = match (deadline, timer) {
                (Some(d), Some(t)) => Some(t.min(d)),
                (d, t) => t.or(d),
            };
            tokio::select! {
                Some(done) = self.pushes.join_next(), if !self.pushes.is_empty() => {
                    if let Ok((id, result)) = done {
                        self.settle(id, result);
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Attach(lane)) => self.attach(*lane),
                    None if self.is_idle() => return,
                    None => {}
                },
                _ = self.wake.notified() => {}
                _ = sleep_until(timer) => {}
                _ = self.drain.changed(), if deadline.is_none() => {}
            }
        }
    }

    /// Lets go of lanes whose lines are all accounted for.
    fn reap(&mut self) {
        let before = self.lanes.len();
        self.lanes.retain(|lane| {
            let done = lane.batch.is_none() && lane.feed.is_done();
            if done {
                let what = if lane.feed.journal.is_paused() {
                    "reading paused by plugin shutdown (resumes on restart)"
                } else {
                    "logging finished"
                };
                log_summary(lane, what);
            }
            !done
        });
        if self.lanes.len() != before {
            self.counters
                .lanes
                .store(self.lanes.len() as i64, Ordering::Relaxed);
        }
    }

    /// Starts the pushes that are due; returns when to look again.
    async fn schedule(&mut self) -> Option<Instant> {
        let deadline = *self.drain.borrow();
        let mut now;
        loop {
            now = Instant::now();
            if self.in_flight.len() >= self.config.max_in_flight {
                break;
            }
            let probing = self.health.down_since.is_some();
            if probing && (!self.in_flight.is_empty() || now < self.health.next_probe) {
                break;
            }
            if self.health.throttled_until.is_some_and(|t| now < t) {
                break;
            }
            let chosen = self.choose(now, deadline.is_some(), probing);
            if chosen.is_empty() {
                break;
            }
            if !self.start_push(chosen, deadline).await {
                break;
            }
        }
        self.next_timer(deadline.is_some(), now)
    }

    /// Lanes for the next push: the first due lane (alone if it must be),
    /// then others with lines waiting, up to the batch size.
    fn choose(&mut self, now: Instant, draining: bool, probing: bool) -> Vec<usize> {
        let n = self.lanes.len();
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        let part = self.push_size();
        for step in 0..n {
            let i = (self.next_lane + step) % n;
            let lane = &mut self.lanes[i];
            let idle = lane.batch.is_none() && lane.feed.journal.is_caught_up();
            lane.pace.forget_if_stale(now, idle);
            let lane = &self.lanes[i];
            if !(lane.pushes.is_empty() || self.may_overlap(lane))
                || lane.not_before.is_some_and(|t| now < t)
                || lane.paced_until(now, part) > now
            {
                continue;
            }
            let due = lane.batch.is_some() || self.is_due(lane, now, draining);
            if chosen.is_empty() {
                if !due {
                    continue;
                }
                chosen.push(i);
                bytes += lane.waiting_bytes();
                if lane.solo || probing {
                    break;
                }
                continue;
            }
            if lane.solo || bytes >= part {
                continue;
            }
            if lane.has_waiting(now) {
                chosen.push(i);
                bytes += lane.waiting_bytes();
            }
        }
        if let Some(&first) = chosen.first() {
            self.next_lane = (first + 1) % n.max(1);
        }
        chosen
    }

    /// Whether `lane`, with a push in flight, may have a second: Loki takes
    /// lines out of order ([`Order`]), the endpoint is well, and the lane
    /// is smooth and has lines in no push yet, or a backlog its batch may
    /// take its next part from ([`Feed::may_extend`]).
    fn may_overlap(&self, lane: &Lane) -> bool {
        self.overlaps()
            && lane.pushes.len() == 1
            && lane.is_smooth()
            && lane.batch.as_ref().is_some_and(|b| {
                b.tenant().is_none()
                    && (b.has_unsent() || lane.feed.may_extend(b, self.push_size() / 2))
            })
    }

    /// Whether lanes may have two pushes at once at this endpoint now.
    fn overlaps(&self) -> bool {
        self.order == Order::Unordered
            && self.config.max_in_flight >= 2
            && self.health.down_since.is_none()
            && self.health.throttles == 0
    }

    fn is_due(&self, lane: &Lane, now: Instant, draining: bool) -> bool {
        if lane.feed.next_release(now).is_some_and(|t| t <= now) {
            return true;
        }
        let journal = &lane.feed.journal;
        let Some(since) = journal.pending_since() else {
            return false;
        };
        draining
            || !journal.is_live()
            || journal.has_disk_backlog()
            || journal.queued_bytes() >= self.config.batch_size
            || now.saturating_duration_since(since) >= self.config.batch_wait
    }

    /// The most a push may carry: `loki-batch-size`, or less once Loki (or
    /// a proxy) refused a larger one (413).
    fn push_size(&self) -> usize {
        self.config.batch_size.min(self.max_push).max(1)
    }

    /// Takes the chosen lanes' lines and sends them. False if none had any.
    /// A push carries one tenant: a lane whose batch has another (a
    /// `tenant` stage chose it) keeps it for a later push.
    async fn start_push(&mut self, chosen: Vec<usize>, deadline: Option<Instant>) -> bool {
        let mut builder = PushBuilder::default();
        let mut lanes = Vec::new();
        let mut room = self.push_size();
        let mut metadata = false;
        let mut tenant: Option<Option<String>> = None;
        let overlaps = self.overlaps();
        for i in chosen {
            let lane = &mut self.lanes[i];
            let second = !lane.pushes.is_empty();
            let smooth = lane.is_smooth();
            // Metadata goes with every entry: it counts towards the batch
            // size, so that a push of short lines stays as small as before
            // (Loki's gRPC messages are bounded, 4 MB by default).
            let per_line = match self.no_metadata {
                true => 0,
                false => lane.feed.metadata_bytes(),
            };
            // A part no larger than the push has room for, nor than
            // Loki takes of this lane's streams at once.
            let limit = lane.pace.part_size(room.max(1));
            if lane.batch.is_none() {
                lane.batch = lane.feed.take(limit, per_line).await;
            }
            let Some(batch) = &mut lane.batch else {
                continue;
            };
            // A backlog keeps two parts in pushes: while one is out, the
            // batch takes the next part from the journal, and its front
            // is finished as its parts are delivered.
            if second && overlaps && lane.feed.may_extend(batch, limit / 2) {
                lane.feed.extend(batch, limit / 2, per_line).await;
            }
            // A full batch (a backlog) goes in two halves at once, where
            // Loki takes them out of order; the second half is cut when
            // the lane is chosen again.
            let halves = overlaps
                && !second
                && smooth
                && batch.tenant().is_none()
                && batch.unsent_bytes() + per_line * batch.unsent_items() >= limit / 4 * 3;
            lane.feed
                .cut(batch, if halves { limit / 2 } else { limit }, per_line);
            if second && batch.is_empty() {
                continue;
            }
            if batch.is_empty() {
                // The stages filtered or held every line: nothing to push.
                let batch = lane.batch.take().expect("checked");
                lane.batch = lane.feed.delivered(batch);
                continue;
            }
            let batch = &*batch;
            let batch_tenant = batch.tenant().map(str::to_string);
            if tenant.as_ref().is_some_and(|t| *t != batch_tenant) {
                continue;
            }
            tenant = Some(batch_tenant);
            room = room.saturating_sub(batch.bytes() + lane.feed.overhead(batch, per_line));
            metadata |=
                !self.no_metadata && (!lane.feed.metadata.is_empty() || batch.has_own_metadata());
            lane.feed.encode(batch, &mut builder, !self.no_metadata);
            lanes.push(i);
        }
        if lanes.is_empty() {
            return false;
        }
        let id = self.next_push;
        self.next_push += 1;
        for &i in &lanes {
            let lane = &mut self.lanes[i];
            lane.pushes.push(id);
            if let Some(batch) = &mut lane.batch {
                batch.launch(id);
            }
        }
        let timeout = match deadline {
            Some(d) => self
                .config
                .timeout
                .min(d.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1)),
            None => self.config.timeout,
        };
        let flight = InFlight {
            id,
            started: Instant::now(),
            lanes: lanes.len(),
            bytes: self.push_size().saturating_sub(room),
            metadata,
            probe: false,
        };
        let tenant: Option<Arc<str>> = tenant.flatten().map(Arc::from);
        self.send(flight, builder.encode(), timeout, tenant);
        true
    }

    /// Sends a push and keeps it in flight until [`Endpoint::settle`].
    fn send(&mut self, flight: InFlight, body: Bytes, timeout: Duration, tenant: Option<Arc<str>>) {
        let (id, client) = (flight.id, self.client.clone());
        self.in_flight.push(flight);
        self.counters
            .in_flight
            .store(self.in_flight.len() as i64, Ordering::Relaxed);
        self.pushes.spawn(async move {
            let result = client.push(body, timeout, tenant).await;
            (id, result)
        });
    }

    /// When something becomes due: a lane's batch wait or backoff, a probe,
    /// the end of a tenant throttle. `now` is the time the lanes were last
    /// chosen at: a lane held back then until a time that has passed since
    /// (its pace, microseconds away) is woken at once, not forgotten.
    fn next_timer(&self, draining: bool, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        // Only future times: a lane that is ready but held back (in-flight
        // bound, throttle, probe) is woken by what holds it.
        let mut consider = |t: Instant| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        let probe_candidate = self.lanes.iter().any(|l| {
            l.pushes.is_empty() && l.not_before.is_none_or(|t| t <= now) && l.has_waiting(now)
        });
        if self.health.down_since.is_some() && self.in_flight.is_empty() && probe_candidate {
            consider(self.health.next_probe);
        }
        if let Some(t) = self.health.throttled_until {
            consider(t);
        }
        if draining {
            return next;
        }
        let part = self.push_size();
        for lane in &self.lanes {
            if !lane.pushes.is_empty() {
                continue;
            }
            if let Some(t) = lane.not_before {
                consider(t);
                continue;
            }
            if lane.has_waiting(now) {
                let paced = lane.paced_until(now, part);
                if paced > now {
                    consider(paced);
                    continue;
                }
            }
            if let Some(since) = lane.feed.journal.pending_since() {
                consider(since + self.config.batch_wait);
            }
            if let Some(t) = lane.feed.next_release(now) {
                consider(t.max(now + Duration::from_millis(1)));
            }
        }
        next
    }

    /// Acts on a push's outcome.
    fn settle(&mut self, id: u64, result: PushResult) {
        let Some(pos) = self.in_flight.iter().position(|p| p.id == id) else {
            return;
        };
        let push = self.in_flight.swap_remove(pos);
        self.counters
            .in_flight
            .store(self.in_flight.len() as i64, Ordering::Relaxed);
        self.counters
            .record_push(policy::class(&result), push.started.elapsed());
        tracing::debug!(
            endpoint = %self.config.url,
            push = id,
            lanes = push.lanes,
            bytes = push.bytes,
            took = ?push.started.elapsed(),
            answer = %match &result {
                PushResult::Answered { status, .. } => status.as_u16().to_string(),
                PushResult::Failed { reason, .. } => reason.clone(),
            },
            "push answered"
        );
        if push.probe {
            for lane in &mut self.lanes {
                lane.pushes.retain(|&p| p != id);
            }
            self.learn_order(&result);
            return;
        }
        let lanes: Vec<usize> = (0..self.lanes.len())
            .filter(|&i| self.lanes[i].pushes.contains(&id))
            .collect();
        for &i in &lanes {
            let lane = &mut self.lanes[i];
            lane.pushes.retain(|&p| p != id);
            if let Some(batch) = &mut lane.batch {
                batch.focus(id);
            }
        }
        self.judge(push, result, lanes.clone());
        // A part not settled goes again.
        for i in lanes {
            if let Some(batch) = &mut self.lanes[i].batch {
                batch.release(id);
            }
        }
    }

    /// Acts on Loki's answer for the lanes of a push, each lane's batch
    /// focused on its part of that push.
    fn judge(&mut self, push: InFlight, result: PushResult, lanes: Vec<usize>) {
        if self.order == Order::Unordered && policy::refuses_out_of_order(&result) {
            self.order = Order::Ordered;
            tracing::warn!(
                endpoint = %self.config.url,
                "Loki refused lines as out of order (unordered_writes is off for this tenant now): one push of a container at a time from now on"
            );
        }
        // Also once metadata is off: the other half of a batch may have
        // carried it, refused by the same answer.
        if push.metadata && policy::refuses_structured_metadata(&result) {
            self.without_metadata(&lanes, &result);
            return;
        }
        let now = Instant::now();
        let mut verdict = policy::judge(&result);
        let nothing_went_through = self.health.last_success.is_none_or(|t| t < push.started);
        if let PushResult::Failed {
            kind: FailKind::Timeout,
            ..
        } = result
            && nothing_went_through
        {
            // Timeouts for every lane: Loki as a whole is not answering.
            verdict = Verdict::Unavailable { retry_after: None };
        }
        let shared = push.lanes > 1;
        match verdict {
            Verdict::Delivered => {
                self.health.last_success = Some(now);
                self.health.throttles = 0;
                self.come_back(now);
                self.probe_order(&lanes);
                for i in lanes {
                    self.delivered(i);
                }
            }
            Verdict::Blocked => {
                // Loki answers, but dropped the lines (260): counted, not sent.
                self.health.last_success = Some(now);
                self.come_back(now);
                self.warn_drop(
                    &result,
                    "Loki blocks this tenant's ingestion (260) and dropped the lines",
                );
                for i in lanes {
                    self.finish(i, |_, lengths| lengths.len() as u64, DropReason::Blocked);
                }
            }
            Verdict::Unavailable { retry_after } | Verdict::Refused { retry_after } => {
                let refused = matches!(verdict, Verdict::Refused { .. });
                self.health.down_since.get_or_insert(now);
                self.counters.up.store(false, Ordering::Relaxed);
                self.health.probes += 1;
                let max = PROBE_MAX
                    .min(self.config.max_backoff)
                    .max(self.config.min_backoff);
                let wait = policy::backoff(
                    self.config.min_backoff,
                    max,
                    self.health.probes,
                    retry_after,
                );
                self.health.next_probe = now + wait;
                if let Some(suppressed) = self.down_warning.allow(now.into_std()) {
                    let what = match refused {
                        true => {
                            "Loki (or a gateway in front of it) refuses every push: check the credentials, the tenant and the URL; lines wait in the journal and delivery resumes when it takes them"
                        }
                        false => {
                            "Loki is unreachable; lines wait in the journal and delivery resumes when it answers"
                        }
                    };
                    tracing::warn!(
                        endpoint = %self.config.url,
                        error = %describe(&result),
                        similar_suppressed = suppressed,
                        "{what}"
                    );
                }
            }
            Verdict::Rejected { blamed } => {
                if shared {
                    self.retry_alone(&lanes);
                } else {
                    self.warn_drop(&result, "Loki refused lines; dropping them");
                    let body = match &result {
                        PushResult::Answered { body, .. } => body.as_str(),
                        PushResult::Failed { .. } => "",
                    };
                    let reason = policy::refusal_reason(body);
                    for i in lanes {
                        let refused = |set: &Labels, lengths: &[usize]| {
                            if blamed.is_empty() || policy::is_blamed(set, &blamed) {
                                policy::refused_lines(body, lengths)
                            } else {
                                0
                            }
                        };
                        self.finish(i, refused, reason);
                    }
                }
            }
            Verdict::RateLimited {
                blamed,
                retry_after,
            } => {
                if blamed.is_empty() {
                    // The tenant as a whole: the endpoint slows down.
                    self.health.throttles += 1;
                    let wait = policy::backoff(
                        self.config.min_backoff,
                        self.config.max_backoff,
                        self.health.throttles,
                        retry_after,
                    );
                    self.health.throttled_until = Some(now + wait);
                    for i in lanes {
                        self.fail(i, true, retry_after, &result);
                    }
                } else {
                    let body = match &result {
                        PushResult::Answered { body, .. } => body.as_str(),
                        PushResult::Failed { .. } => "",
                    };
                    for i in lanes {
                        let at_fault = self.lanes[i].is_blamed(&blamed);
                        if at_fault {
                            self.over_stream_limit(i, body, retry_after, &result);
                        } else {
                            // Not this lane's fault: again at once, alone.
                            self.lanes[i].solo = true;
                        }
                    }
                }
            }
            Verdict::Failed { retry_after } => {
                if shared {
                    self.retry_alone(&lanes);
                } else {
                    for i in lanes {
                        self.fail(i, false, retry_after, &result);
                    }
                }
            }
            Verdict::TooLarge => {
                self.health.last_success = Some(now);
                if shared {
                    self.retry_alone(&lanes);
                } else {
                    for i in lanes {
                        self.too_large(i, &result);
                    }
                }
            }
        }
        self.counters.lanes_backing_off.store(
            self.lanes.iter().filter(|l| l.not_before.is_some()).count() as i64,
            Ordering::Relaxed,
        );
    }

    /// Sends the probe of [`Order`] once a lane with a backlog (where two
    /// pushes at once would help) has a part delivered: one line of that
    /// part again. At most one at a time, [`PROBE_AGAIN`] apart.
    fn probe_order(&mut self, lanes: &[usize]) {
        let now = Instant::now();
        let asked = self.probed_at.is_some_and(|t| now < t + PROBE_AGAIN);
        let draining = self.drain.borrow().is_some();
        if self.order != Order::Unknown || asked || draining || self.config.max_in_flight < 2 {
            return;
        }
        let part = self.push_size();
        let probe = lanes.iter().find_map(|&i| {
            let lane = &self.lanes[i];
            let journal = &lane.feed.journal;
            let backlog = journal.has_disk_backlog() || lane.feed.queued_bytes() >= part;
            let batch = lane.batch.as_ref()?;
            backlog
                .then(|| lane.feed.probe(batch, !self.no_metadata))
                .flatten()
                .map(|body| (i, body))
        });
        let Some((lane, body)) = probe else {
            return;
        };
        let id = self.next_push;
        self.next_push += 1;
        self.probed_at = Some(now);
        // The lane's next push waits for the answer: it could make Loki
        // close the block that holds the line, and a line in a closed block
        // is not found again as a duplicate.
        self.lanes[lane].pushes.push(id);
        let flight = InFlight {
            id,
            started: now,
            lanes: 0,
            bytes: 0,
            metadata: false,
            probe: true,
        };
        self.send(flight, body, self.config.timeout, None);
    }

    /// Loki's answer to the probe of [`Order`]: anything but a success or
    /// an `entry out of order` leaves it unknown, to be asked again.
    fn learn_order(&mut self, result: &PushResult) {
        let PushResult::Answered { status, .. } = result else {
            return;
        };
        // Not 260: a tenant whose ingestion is blocked stores nothing.
        if matches!(status.as_u16(), 200 | 204) {
            self.order = Order::Unordered;
            tracing::info!(
                endpoint = %self.config.url,
                "Loki takes a stream's lines out of order: a container's backlog goes in two pushes at once"
            );
        } else if policy::refuses_out_of_order(result) {
            self.order = Order::Ordered;
            tracing::info!(
                endpoint = %self.config.url,
                "Loki takes a stream's lines only in order (unordered_writes is off): one push of a container at a time"
            );
        }
    }

    /// A push went through: if the endpoint was down, every lane resumes.
    fn come_back(&mut self, now: Instant) {
        if let Some(since) = self.health.down_since.take() {
            tracing::info!(endpoint = %self.config.url, down_for = ?now.saturating_duration_since(since), "Loki takes pushes again; delivering what waited");
            self.health.probes = 0;
            self.counters.up.store(true, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Loki refused the structured metadata of a push: from now on none is
    /// sent, and the lanes that carried some send the same lines again at
    /// once (no failure counted). Lanes without metadata were judged by
    /// Loki on their own: their lines count as Loki's answer says.
    fn without_metadata(&mut self, lanes: &[usize], result: &PushResult) {
        if !self.no_metadata {
            tracing::warn!(
                endpoint = %self.config.url,
                answer = %describe(result),
                "Loki does not take structured metadata (allow_structured_metadata is off): sending the lines again without it, and from now on none to this endpoint"
            );
        }
        self.no_metadata = true;
        let body = match result {
            PushResult::Answered { body, .. } => body.clone(),
            PushResult::Failed { .. } => String::new(),
        };
        let blamed = policy::blamed_streams(&body);
        for &i in lanes {
            let lane = &self.lanes[i];
            let carried = !lane.feed.metadata.is_empty()
                || lane.batch.as_ref().is_some_and(Batch::has_own_metadata);
            if !carried {
                let refused = |set: &Labels, lengths: &[usize]| {
                    if policy::is_blamed(set, &blamed) {
                        policy::refused_lines(&body, lengths)
                    } else {
                        0
                    }
                };
                self.finish(i, refused, DropReason::Rejected);
            }
        }
        self.wake.notify_one();
    }

    fn retry_alone(&mut self, lanes: &[usize]) {
        for &i in lanes {
            self.lanes[i].solo = true;
        }
    }

    /// A counted failure of a lane's batch: back off, or give up when
    /// `loki-retries` is used up (or at once for a 429 with
    /// `loki-drop-rate-limited-batches`).
    fn fail(
        &mut self,
        i: usize,
        rate_limited: bool,
        retry_after: Option<Duration>,
        result: &PushResult,
    ) {
        let config = &self.config;
        let lane = &mut self.lanes[i];
        if lane.not_before.is_some_and(|t| Instant::now() < t) {
            // The other half of the batch failed already and the lane backs
            // off: one failure a round, and this half waits with it.
            return;
        }
        lane.failures += 1;
        lane.rate_limited = rate_limited;
        lane.solo = true;
        let give_up = (rate_limited && config.drop_rate_limited) || lane.failures > config.retries;
        if give_up {
            let reason = if rate_limited {
                DropReason::RateLimited
            } else {
                DropReason::RetriesExhausted
            };
            let lines = lane.batch.as_ref().map_or(0, Batch::len);
            let name = lane.name().to_string();
            let failures = lane.failures;
            self.warn_drop(
                result,
                &format!(
                    "giving up on {lines} lines of container {name} after {failures} failed attempts ({})",
                    reason.as_str()
                ),
            );
            self.finish(i, |_, lengths| lengths.len() as u64, reason);
            return;
        }
        let wait = policy::backoff(
            config.min_backoff,
            config.max_backoff,
            lane.failures,
            retry_after,
        );
        lane.not_before = Some(Instant::now() + wait);
        let (name, failures) = (lane.name().to_string(), lane.failures);
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.retry_warning.allow(std::time::Instant::now()) {
            tracing::warn!(
                endpoint = %self.config.url,
                container = %name,
                attempt = failures,
                retry_in = ?wait,
                answer = %describe(result),
                similar_suppressed = suppressed,
                "Loki did not take a container's lines; that container retries alone"
            );
        }
    }

    /// Ends the part a lane pushed, every line of it delivered; the lane
    /// keeps the rest of its batch, if there is more.
    fn delivered(&mut self, i: usize) {
        if let Some(bytes) = self.part_bytes(i) {
            self.lanes[i].pace.took(bytes, Instant::now());
        }
        if let Some(batch) = self.end_batch(i) {
            let lane = &mut self.lanes[i];
            lane.batch = lane.feed.delivered(batch);
        }
    }

    /// Ends the part a lane pushed. `lost` says, for a stream's label set
    /// and the lengths of its lines (as Loki sees them), how many Loki did
    /// not take; they count as dropped for `reason`, the others as
    /// delivered. The lane keeps the rest of its batch, if there is more.
    fn finish(&mut self, i: usize, lost: impl Fn(&Labels, &[usize]) -> u64, reason: DropReason) {
        let Some(batch) = self.end_batch(i) else {
            return;
        };
        let lane = &mut self.lanes[i];
        lane.batch = lane.feed.settle(batch, lost, reason);
    }

    /// Bytes of a lane's part as Loki's per-stream limit counts them: the
    /// lines and their structured metadata (Loki 3 counts both: measured,
    /// 512 lines of 1 KiB went through a 512KB burst, with 76 bytes of
    /// metadata each they did not).
    fn part_bytes(&self, i: usize) -> Option<usize> {
        let lane = &self.lanes[i];
        let batch = lane.batch.as_ref()?;
        let per_line = match self.no_metadata {
            true => 0,
            false => lane.feed.metadata_bytes(),
        };
        Some(batch.bytes() + lane.feed.overhead(batch, per_line))
    }

    /// Loki refused a lane's part for its stream's rate limit (a 429 that
    /// names the stream). The lane learns the part size and pace Loki
    /// takes (see [`super::pace`]) and sends again accordingly; only a
    /// single line over Loki's burst counts as a failure.
    fn over_stream_limit(
        &mut self,
        i: usize,
        body: &str,
        retry_after: Option<Duration>,
        result: &PushResult,
    ) {
        if self.config.drop_rate_limited {
            self.fail(i, true, retry_after, result);
            return;
        }
        let now = Instant::now();
        let Some(bytes) = self.part_bytes(i) else {
            return;
        };
        let lane = &mut self.lanes[i];
        let Some(batch) = lane.batch.as_mut() else {
            return;
        };
        let items = batch.len();
        // Loki 2 stored the entries before the first it lists as ignored.
        let stored = policy::first_ignored(body)
            .and_then(|ts| lane.feed.stored_before(batch, ts))
            .unwrap_or(0);
        let before = batch.remaining_bytes();
        let line_bytes = batch.bytes().max(1);
        if stored > 0 {
            lane.feed.took_first(batch, stored);
        }
        // What Loki took of the part, found above or counted: "total
        // ignored: 512 out of 1024" (then the bucket is empty, not small).
        let counted = policy::ignored(body)
            .filter(|&(ignored, of)| ignored < of && of > 0)
            .map_or(0, |(ignored, of)| {
                (bytes as f64 * (of - ignored) as f64 / of as f64) as usize
            });
        // Scaled as the part's bytes are (metadata included).
        let prefix = (before - batch.remaining_bytes()) * bytes / line_bytes;
        let stored_bytes = prefix.max(counted);
        let rate = policy::stream_rate(body);
        let refusal = lane.pace.refused(bytes, items, rate, stored_bytes, now);
        lane.solo = true;
        if refusal == Refusal::Failed {
            self.fail(i, true, retry_after, result);
            return;
        }
        if let Some(wait) = retry_after {
            lane.not_before = Some(now + wait.min(self.config.max_backoff));
        }
        let name = lane.name().to_string();
        let part = lane.pace.part_size(self.config.batch_size);
        if let Some(suppressed) = self.pace_notice.allow(now.into_std()) {
            tracing::info!(
                endpoint = %self.config.url,
                container = %name,
                refused_bytes = bytes,
                stored_lines = stored,
                part_bytes = part,
                rate_bytes_per_second = rate.map(|r| r as u64),
                similar_suppressed = suppressed,
                "Loki limits this container's stream: its lines go in parts of this size, at the rate Loki states"
            );
        }
    }

    /// Loki (or a proxy in front of it) found a lane's push too large
    /// (413): pushes get smaller, and the part goes again at once. A single
    /// line too large is dropped (`rejected`).
    fn too_large(&mut self, i: usize, result: &PushResult) {
        let Some(batch) = &self.lanes[i].batch else {
            return;
        };
        let (bytes, items) = (batch.bytes(), batch.len());
        if items <= 1 {
            self.warn_drop(
                result,
                "Loki refused a line as too large (413); dropping it",
            );
            self.finish(i, |_, lengths| lengths.len() as u64, DropReason::Rejected);
            return;
        }
        self.max_push = self.max_push.min((bytes / 2).max(1));
        self.lanes[i].solo = true;
        if let Some(suppressed) = self.drop_warning.allow(std::time::Instant::now()) {
            tracing::warn!(
                endpoint = %self.config.url,
                answer = %describe(result),
                push_bytes = self.max_push,
                similar_suppressed = suppressed,
                "Loki (or a proxy in front of it) refused a push as too large (413): pushes are made smaller; nothing is dropped"
            );
        }
    }

    /// Clears a lane's retry state and takes its batch.
    /// A half settled ahead of an earlier one that failed leaves the
    /// lane's retry state to that one.
    fn end_batch(&mut self, i: usize) -> Option<Batch> {
        let lane = &mut self.lanes[i];
        if lane.batch.as_ref().is_none_or(Batch::is_oldest_part) {
            lane.failures = 0;
            lane.solo = false;
            lane.not_before = None;
            lane.rate_limited = false;
        }
        lane.batch.take()
    }

    /// The shutdown grace period is over: what was not delivered stays in
    /// the journal (or, if only in memory, is counted as lost).
    async fn give_up_at_deadline(&mut self) {
        self.pushes.abort_all();
        while let Some(done) = self.pushes.join_next().await {
            // A push answered before the deadline counts as the answer says.
            if let Ok((id, result)) = done {
                self.settle(id, result);
            }
        }
        self.in_flight.clear();
        for lane in &mut self.lanes {
            lane.pushes.clear();
            if let Some(batch) = lane.batch.take() {
                lane.feed.abandon(batch);
            }
            log_summary(
                lane,
                "delivery paused by plugin shutdown (what is pending stays in the journal for the next start)",
            );
        }
    }

    fn warn_drop(&mut self, result: &PushResult, message: &str) {
        if let Some(suppressed) = self.drop_warning.allow(std::time::Instant::now()) {
            tracing::warn!(
                endpoint = %self.config.url,
                answer = %describe(result),
                similar_suppressed = suppressed,
                "{message}"
            );
        }
    }
}

/// Logs a container's account of its lines.
fn log_summary(lane: &Lane, what: &str) {
    let journal = &lane.feed.journal;
    let summary = format!(
        "{what}: container={} id={} {}",
        journal.name,
        short_id(&journal.id),
        journal.counters.summary()
    );
    if journal.counters.has_losses() {
        tracing::warn!("{summary}");
    } else {
        tracing::info!("{summary}");
    }
}

/// Loki's answer or the error, for a log line.
fn describe(result: &PushResult) -> String {
    match result {
        PushResult::Answered { status, body, .. } => format!("{} {body}", status.as_u16()),
        PushResult::Failed { reason, .. } => reason.clone(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
