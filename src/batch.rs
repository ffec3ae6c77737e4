//! Batching: one batcher per Loki endpoint gathers lines from every container
//! that pushes there, groups them into streams by label set, and sends a batch
//! when `loki-batch-size` bytes are waiting, when `loki-batch-wait` has passed,
//! or at once when a container has stopped or the plugin is shutting down.
//!
//! One batch is in flight per endpoint, so each stream's entries reach Loki in
//! order. While a batch is retried, readers keep filling their bounded queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::buffer::{ContainerBuffer, Throttle};
use crate::config::options::EndpointConfig;
use crate::line::Line;
use crate::loki::{Decision, LokiClient, PushResult, backoff_delays, decide, encode_push};
use crate::proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};

/// `None` while running; `Some(deadline)` once the plugin is shutting down.
pub type DrainSignal = watch::Receiver<Option<Instant>>;

/// One encoded batch and the lines it holds per container, for accounting.
struct Batch {
    body: Bytes,
    lines: u64,
    per_container: Vec<(Arc<ContainerBuffer>, u64)>,
}

/// A Loki endpoint: its client, its containers and its batcher's wake-up.
pub struct Endpoint {
    config: EndpointConfig,
    client: LokiClient,
    containers: Mutex<Vec<Arc<ContainerBuffer>>>,
    wake: Arc<Notify>,
    /// Dropped batches are logged once per interval, not once per batch;
    /// the per-container summaries carry the exact counts.
    drop_warning: Mutex<Throttle>,
    retry_warning: Mutex<Throttle>,
}

impl Endpoint {
    pub fn new(config: EndpointConfig, client: LokiClient) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            config,
            client,
            containers: Mutex::new(Vec::new()),
            wake: Arc::new(Notify::new()),
            drop_warning: Mutex::new(Throttle::default()),
            retry_warning: Mutex::new(Throttle::default()),
        })
    }

    /// The notifier containers use to wake this batcher.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn attach(&self, buffer: Arc<ContainerBuffer>) {
        self.containers
            .lock()
            .expect("endpoint lock poisoned")
            .push(buffer);
        self.wake.notify_one();
    }

    fn containers(&self) -> Vec<Arc<ContainerBuffer>> {
        self.containers
            .lock()
            .expect("endpoint lock poisoned")
            .clone()
    }

    /// Removes containers whose lines are all accounted for, logging their summary.
    fn reap_finished(&self) {
        let mut containers = self.containers.lock().expect("endpoint lock poisoned");
        containers.retain(|c| {
            let finished = c.is_finished();
            if finished {
                c.log_finished();
            }
            !finished
        });
    }

    /// Logs the account of every container with lines still queued.
    pub fn report_unfinished(&self) {
        for container in self.containers() {
            if !container.is_finished() {
                container.log_summary("undelivered at shutdown");
            }
        }
    }

    /// The batcher loop. Returns once draining and every container is done.
    pub async fn run(self: Arc<Self>, mut drain: DrainSignal) {
        let mut window_start: Option<Instant> = None;
        let mut next_container = 0usize;
        loop {
            let draining = drain.borrow().is_some();
            let containers = self.containers();
            let queued: usize = containers.iter().map(|c| c.queued_bytes()).sum();
            if queued == 0 {
                window_start = None;
                self.reap_finished();
                if draining && self.containers().is_empty() {
                    return;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = drain.changed(), if !draining => {}
                    // A draining batcher re-checks its readers, which are finishing.
                    _ = tokio::time::sleep(Duration::from_millis(50)), if draining => {}
                }
                continue;
            }
            let start = *window_start.get_or_insert_with(Instant::now);
            let urgent = draining || containers.iter().any(|c| c.is_closed());
            let full = queued >= self.config.batch_size;
            if !urgent && !full && start.elapsed() < self.config.batch_wait {
                tokio::select! {
                    _ = tokio::time::sleep_until((start + self.config.batch_wait).into()) => {}
                    _ = self.wake.notified() => {}
                    _ = drain.changed() => {}
                }
                continue;
            }
            window_start = Some(Instant::now());
            if let Some(batch) = self.cut_batch(&containers, next_container) {
                self.deliver(batch, &mut drain).await;
            }
            self.reap_finished();
            next_container = next_container.wrapping_add(1);
        }
    }

    /// Takes up to `batch_size` line bytes from the containers, starting with
    /// a different container each time so none is starved, and encodes them.
    fn cut_batch(&self, containers: &[Arc<ContainerBuffer>], first: usize) -> Option<Batch> {
        let mut streams: Vec<StreamAdapter> = Vec::new();
        let mut stream_index: HashMap<Arc<str>, usize> = HashMap::new();
        let mut per_container = Vec::new();
        let mut taken_bytes = 0usize;
        let mut lines: Vec<Line> = Vec::new();
        for i in 0..containers.len() {
            let container = &containers[(first + i) % containers.len()];
            let room = self.config.batch_size.saturating_sub(taken_bytes);
            taken_bytes += container.take(room, taken_bytes == 0, &mut lines);
            if lines.is_empty() {
                continue;
            }
            per_container.push((container.clone(), lines.len() as u64));
            let mut index_by_source = [None; 2];
            for line in lines.drain(..) {
                let index = *index_by_source[line.source as usize].get_or_insert_with(|| {
                    let labels = container.labels().for_source(line.source);
                    *stream_index.entry(labels.clone()).or_insert_with(|| {
                        streams.push(StreamAdapter {
                            labels: labels.to_string(),
                            entries: Vec::new(),
                            hash: 0,
                        });
                        streams.len() - 1
                    })
                });
                streams[index].entries.push(EntryAdapter {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: line.timestamp_ns.div_euclid(1_000_000_000),
                        nanos: line.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                    }),
                    line: line.bytes,
                    structured_metadata: Vec::new(),
                });
            }
            if taken_bytes >= self.config.batch_size {
                break;
            }
        }
        if per_container.is_empty() {
            return None;
        }
        let lines = per_container.iter().map(|(_, n)| n).sum();
        Some(Batch {
            body: encode_push(&PushRequest { streams }),
            lines,
            per_container,
        })
    }

    /// Sends a batch under the retry policy. While running, retries follow
    /// the backoff up to `loki-retries`; while draining, they stop at the deadline.
    async fn deliver(&self, batch: Batch, drain: &mut DrainSignal) {
        let mut delays = backoff_delays(
            self.config.min_backoff,
            self.config.max_backoff,
            self.config.retries,
        );
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let deadline = *drain.borrow();
            let timeout = match deadline {
                Some(deadline) => self
                    .config
                    .timeout
                    .min(deadline.saturating_duration_since(Instant::now())),
                None => self.config.timeout,
            };
            let result = self.client.push(batch.body.clone(), timeout).await;
            match decide(&result) {
                Decision::Delivered => {
                    for (container, lines) in &batch.per_container {
                        container.count_sent(*lines);
                    }
                    return;
                }
                Decision::Drop => {
                    self.warn(
                        &self.drop_warning,
                        &result,
                        &format!("Loki refused a batch; dropping its {} lines", batch.lines),
                    );
                    return self.drop_batch(&batch);
                }
                Decision::Retry => {}
            }
            let delay = delays.next();
            let out_of_time = match (delay, *drain.borrow()) {
                (None, _) => true,
                (Some(delay), Some(deadline)) => Instant::now() + delay >= deadline,
                (Some(_), None) => false,
            };
            if out_of_time {
                let why = if delay.is_none() {
                    "retries exhausted (loki-retries)"
                } else {
                    "shutdown grace period over"
                };
                self.warn(
                    &self.drop_warning,
                    &result,
                    &format!(
                        "giving up on a batch of {} lines after {attempts} attempts: {why}",
                        batch.lines
                    ),
                );
                return self.drop_batch(&batch);
            }
            let delay = delay.expect("checked above");
            self.warn(
                &self.retry_warning,
                &result,
                &format!("push failed; retrying in {delay:?} (attempt {attempts})"),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // Shutdown started: re-plan the remaining attempts against its deadline.
                _ = drain.changed() => {}
            }
        }
    }

    fn drop_batch(&self, batch: &Batch) {
        for (container, lines) in &batch.per_container {
            container.count_undeliverable(*lines);
        }
    }

    fn warn(&self, throttle: &Mutex<Throttle>, result: &PushResult, message: &str) {
        let Some(suppressed) = throttle
            .lock()
            .expect("throttle lock poisoned")
            .allow(Instant::now())
        else {
            return;
        };
        match result {
            PushResult::Answered { status, body } => tracing::warn!(
                endpoint = %self.config.url, status = status.as_u16(), answer = %body, similar_suppressed = suppressed, "{message}"
            ),
            PushResult::Failed(reason) => tracing::warn!(
                endpoint = %self.config.url, error = %reason, similar_suppressed = suppressed, "{message}"
            ),
        }
    }
}
