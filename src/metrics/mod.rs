//! The Prometheus endpoint (`METRICS_ADDR`): at each scrape a collector
//! reads the counters the stages keep ([`crate::observe`]) and the state of
//! the store and the shipper, and renders them in the OpenMetrics text
//! format. Nothing is counted here, and nothing is reset by a scrape.
//!
//! Containers are labelled `container_name`, `container_id` (12
//! characters), `compose_project` and `compose_service` (empty when
//! absent); a container whose journal closed is no longer shown, and its
//! counts live on in the plugin-wide totals. Endpoints are labelled with
//! their push URL without credentials, query or fragment; endpoints that
//! differ only in other options (tenant, TLS, batching) are added together.

mod http;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::driver::Driver;
use crate::observe::{ContainerCounters, DropReason, EndpointCounters, LATENCY_BUCKETS, PushClass};
use crate::protocol::short_id;

pub use http::{Limits, MetricsServer};

/// Every metric name starts with this (and `_`).
pub const PREFIX: &str = "loki_logdriver";

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Lines counted per container and, plugin-wide, for all containers since
/// the plugin started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    pub received: u64,
    pub recovered: u64,
    pub sent: u64,
    pub dropped: [u64; DropReason::ALL.len()],
    /// Lines the container's pipeline stages or relabelling dropped on purpose.
    pub filtered: u64,
    pub invalid_frames: u64,
    pub journal_misses: u64,
    pub read_back: u64,
    pub journal_written_bytes: u64,
}

impl LineCounts {
    pub fn of(counters: &ContainerCounters) -> LineCounts {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        LineCounts {
            received: get(&counters.received),
            recovered: get(&counters.recovered),
            sent: get(&counters.sent),
            dropped: DropReason::ALL.map(|r| counters.dropped(r)),
            filtered: counters.filtered_total(),
            invalid_frames: get(&counters.invalid_frames),
            journal_misses: get(&counters.journal_misses),
            read_back: get(&counters.read_back),
            journal_written_bytes: get(&counters.journal_bytes_written),
        }
    }

    fn add(&mut self, other: &LineCounts) {
        self.received += other.received;
        self.recovered += other.recovered;
        self.sent += other.sent;
        for (a, b) in self.dropped.iter_mut().zip(other.dropped) {
            *a += b;
        }
        self.filtered += other.filtered;
        self.invalid_frames += other.invalid_frames;
        self.journal_misses += other.journal_misses;
        self.read_back += other.read_back;
        self.journal_written_bytes += other.journal_written_bytes;
    }

    /// Each count the larger of the two.
    fn max(&self, other: &LineCounts) -> LineCounts {
        let mut out = *self;
        out.received = out.received.max(other.received);
        out.recovered = out.recovered.max(other.recovered);
        out.sent = out.sent.max(other.sent);
        for (a, b) in out.dropped.iter_mut().zip(other.dropped) {
            *a = (*a).max(b);
        }
        out.filtered = out.filtered.max(other.filtered);
        out.invalid_frames = out.invalid_frames.max(other.invalid_frames);
        out.journal_misses = out.journal_misses.max(other.journal_misses);
        out.read_back = out.read_back.max(other.read_back);
        out.journal_written_bytes = out.journal_written_bytes.max(other.journal_written_bytes);
        out
    }
}

/// One open container journal, as scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSample {
    pub name: String,
    pub short_id: String,
    pub compose_project: String,
    pub compose_service: String,
    pub lines: LineCounts,
    /// Lines filtered by the stages, by the reason they name.
    pub filtered: Vec<(String, u64)>,
    /// Bytes of lines waiting in memory (not in flight).
    pub memory_bytes: u64,
    /// Bytes of the journal on disk.
    pub journal_bytes: u64,
    /// `loki-journal-size`.
    pub journal_limit_bytes: u64,
    /// Lines neither delivered nor given up.
    pub pending_lines: u64,
    /// Age of the oldest line not yet delivered; 0 when none.
    pub oldest_pending_age_seconds: f64,
    /// Why the container's new lines go to memory only although the plugin
    /// keeps a data directory (its journal cannot be written), if they do.
    pub journal_unavailable: Option<&'static str>,
}

/// One endpoint URL, as scraped (endpoints with the same URL added together).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSample {
    /// Without credentials, query or fragment.
    pub url: String,
    pub pushes: [u64; PushClass::ALL.len()],
    /// Pushes per latency bucket (not cumulative), the last one +Inf.
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub latency_sum_seconds: f64,
    pub retries: u64,
    pub lanes: u64,
    pub lanes_backing_off: u64,
    pub in_flight: u64,
    pub up: bool,
}

impl EndpointSample {
    pub fn of(counters: &EndpointCounters) -> EndpointSample {
        let (cumulative, sum) = counters.latency();
        let mut latency_buckets = [0; LATENCY_BUCKETS.len() + 1];
        let mut below = 0;
        for (bucket, total) in latency_buckets.iter_mut().zip(cumulative) {
            *bucket = total.saturating_sub(below);
            below = total;
        }
        let gauge = |v: &std::sync::atomic::AtomicI64| v.load(Ordering::Relaxed).max(0) as u64;
        EndpointSample {
            url: endpoint_label(&counters.url),
            pushes: PushClass::ALL.map(|c| counters.pushes(c)),
            latency_buckets,
            latency_sum_seconds: sum,
            retries: counters.retries.load(Ordering::Relaxed),
            lanes: gauge(&counters.lanes),
            lanes_backing_off: gauge(&counters.lanes_backing_off),
            in_flight: gauge(&counters.in_flight),
            up: counters.up.load(Ordering::Relaxed),
        }
    }

    fn add(&mut self, other: &EndpointSample) {
        for (a, b) in self.pushes.iter_mut().zip(other.pushes) {
            *a += b;
        }
        for (a, b) in self.latency_buckets.iter_mut().zip(other.latency_buckets) {
            *a += b;
        }
        self.latency_sum_seconds += other.latency_sum_seconds;
        self.retries += other.retries;
        self.lanes += other.lanes;
        self.lanes_backing_off += other.lanes_backing_off;
        self.in_flight += other.in_flight;
        self.up &= other.up;
    }
}

/// The `endpoint` label: the push URL (already without credentials)
/// without its query and fragment, which could carry a token.
pub fn endpoint_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => crate::config::options::redact_url(url),
    }
}

/// Plugin-wide values, as scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSample {
    /// All containers since the plugin started, open or closed.
    pub lines: LineCounts,
    pub memory_budget_bytes: u64,
    pub memory_budget_used_bytes: u64,
    pub open_fifos: u64,
    pub journals_open: u64,
    pub endpoints: u64,
}

/// Everything a scrape shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub containers: Vec<ContainerSample>,
    pub endpoints: Vec<EndpointSample>,
    pub plugin: PluginSample,
}

impl Snapshot {
    /// Reads the driver's counters and state. Blocking: a journal's size on
    /// disk is read under its file lock.
    pub fn take(driver: &Driver, now_ns: i64) -> Snapshot {
        let store = driver.store();
        // Held until the end: a journal cannot close (and move its counts
        // to the retired totals) while it is being read.
        let journals = store.journals();
        let retired = LineCounts::of(store.retired());
        let mut plugin_lines = retired;
        let mut containers: Vec<ContainerSample> = journals
            .iter()
            .map(|journal| {
                let counters = &journal.counters;
                let identity = &counters.identity;
                let lines = LineCounts::of(counters);
                plugin_lines.add(&lines);
                let oldest = counters.oldest_pending_ns.load(Ordering::Relaxed);
                ContainerSample {
                    name: if identity.name.is_empty() {
                        journal.name.clone()
                    } else {
                        identity.name.clone()
                    },
                    short_id: short_id(&journal.id).to_string(),
                    compose_project: identity.compose_project.clone(),
                    compose_service: identity.compose_service.clone(),
                    lines,
                    memory_bytes: counters.memory_bytes.load(Ordering::Relaxed) as u64,
                    journal_bytes: journal.disk_bytes(),
                    journal_limit_bytes: journal.config().disk_limit,
                    pending_lines: counters.pending().max(0) as u64,
                    filtered: counters.filtered().into_iter().collect(),
                    oldest_pending_age_seconds: if oldest > 0 {
                        (now_ns.saturating_sub(oldest)).max(0) as f64 / 1e9
                    } else {
                        0.0
                    },
                    journal_unavailable: journal.disk_off().map(|off| off.reason),
                }
            })
            .collect();
        containers.sort_by(|a, b| (&a.name, &a.short_id).cmp(&(&b.name, &b.short_id)));
        let mut endpoints: BTreeMap<String, EndpointSample> = BTreeMap::new();
        for counters in driver.shipper().counters() {
            let sample = EndpointSample::of(&counters);
            match endpoints.get_mut(&sample.url) {
                Some(known) => known.add(&sample),
                None => {
                    endpoints.insert(sample.url.clone(), sample);
                }
            }
        }
        let budget = store.budget();
        Snapshot {
            plugin: PluginSample {
                lines: plugin_lines,
                memory_budget_bytes: budget.limit() as u64,
                memory_budget_used_bytes: budget.used() as u64,
                open_fifos: driver.open_fifos() as u64,
                journals_open: journals.len() as u64,
                endpoints: endpoints.len() as u64,
            },
            containers,
            endpoints: endpoints.into_values().collect(),
        }
    }

    /// Writes the metric families.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let containers = &self.containers;
        let id = |c: &ContainerSample| {
            [
                ("container_name", c.name.clone()),
                ("container_id", c.short_id.clone()),
                ("compose_project", c.compose_project.clone()),
                ("compose_service", c.compose_service.clone()),
            ]
        };
        let per_container = |f: fn(&ContainerSample) -> u64| {
            containers
                .iter()
                .map(move |c| (id(c), f(c)))
                .collect::<Vec<_>>()
        };
        let dropped = |lines: &LineCounts| {
            DropReason::ALL
                .iter()
                .zip(lines.dropped)
                .map(|(reason, n)| ([("reason", reason.as_str())], n))
                .collect::<Vec<_>>()
        };

        counter(
            encoder,
            "lines_received",
            "Lines read from the container's FIFO by this process (blank lines excluded).",
            per_container(|c| c.lines.received),
        )?;
        counter(
            encoder,
            "lines_recovered",
            "Lines an earlier run of the plugin left undelivered in the journal, read back for delivery.",
            per_container(|c| c.lines.recovered),
        )?;
        counter(
            encoder,
            "lines_sent",
            "Lines Loki accepted.",
            per_container(|c| c.lines.sent),
        )?;
        counter(
            encoder,
            "lines_dropped",
            "Lines given up, by reason.",
            containers
                .iter()
                .flat_map(|c| {
                    dropped(&c.lines)
                        .into_iter()
                        .map(move |(reason, n)| ((id(c), reason), n))
                })
                .collect(),
        )?;
        counter(
            encoder,
            "lines_filtered",
            "Lines the container's own pipeline stages (drop, match action: drop, sampling, limit...) or relabelling dropped on purpose, by the reason the stage names (drop_counter_reason).",
            containers
                .iter()
                .flat_map(|c| {
                    c.filtered
                        .iter()
                        .map(move |(reason, n)| ((id(c), [("reason", reason.clone())]), *n))
                })
                .collect(),
        )?;
        counter(
            encoder,
            "invalid_frames",
            "FIFO frames that could not be decoded and were skipped.",
            per_container(|c| c.lines.invalid_frames),
        )?;
        counter(
            encoder,
            "journal_misses",
            "Lines that could not be written to the journal (disk behind or failing); they still go to Loki from memory.",
            per_container(|c| c.lines.journal_misses),
        )?;
        counter(
            encoder,
            "lines_read_back",
            "Lines delivery read back from the journal on disk because a memory bound made them leave memory.",
            per_container(|c| c.lines.read_back),
        )?;
        counter(
            encoder,
            "journal_written_bytes",
            "Bytes appended to the container's journal.",
            per_container(|c| c.lines.journal_written_bytes),
        )?;
        gauge(
            encoder,
            "memory",
            Some(Unit::Bytes),
            "Bytes of the container's lines waiting in memory (lines in a push not included).",
            per_container(|c| c.memory_bytes),
        )?;
        gauge(
            encoder,
            "journal",
            Some(Unit::Bytes),
            "Bytes of the container's journal on disk (undelivered lines and the copy for docker logs).",
            per_container(|c| c.journal_bytes),
        )?;
        gauge(
            encoder,
            "journal_limit",
            Some(Unit::Bytes),
            "Bound on the container's journal on disk (loki-journal-size); past it the oldest segments go, delivered or not.",
            per_container(|c| c.journal_limit_bytes),
        )?;
        gauge(
            encoder,
            "pending_lines",
            None,
            "Lines neither delivered nor given up: in memory, in flight, or waiting on disk.",
            per_container(|c| c.pending_lines),
        )?;
        gauge(
            encoder,
            "journal_unavailable",
            None,
            "1 while the container's journal cannot be written (reason: read_only, permission_denied, not_a_directory, no_space, io_error): its new lines go to Loki from memory only.",
            containers
                .iter()
                .filter_map(|c| {
                    c.journal_unavailable
                        .map(|reason| ((id(c), [("reason", reason)]), 1))
                })
                .collect(),
        )?;
        gauge_f64(
            encoder,
            "oldest_pending_age",
            Some(Unit::Seconds),
            "Age of the oldest line in memory not yet delivered (by its timestamp); 0 when none.",
            containers
                .iter()
                .map(|c| (id(c), c.oldest_pending_age_seconds))
                .collect(),
        )?;

        let endpoints = &self.endpoints;
        let url = |e: &EndpointSample| [("endpoint", e.url.clone())];
        let per_endpoint = |f: fn(&EndpointSample) -> u64| {
            endpoints
                .iter()
                .map(move |e| (url(e), f(e)))
                .collect::<Vec<_>>()
        };
        counter(
            encoder,
            "pushes",
            "Push requests to Loki, by outcome (2xx, 429, 4xx, 5xx, unreachable, timeout, reset).",
            endpoints
                .iter()
                .flat_map(|e| {
                    PushClass::ALL
                        .iter()
                        .zip(e.pushes)
                        .map(move |(class, n)| ((url(e), [("status", class.as_str())]), n))
                })
                .collect(),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "push_duration",
                "Time from sending a push to Loki's answer (or the failure).",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for e in endpoints {
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(e.latency_buckets)
                    .collect();
                let count = e.latency_buckets.iter().sum();
                let labels = url(e);
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(e.latency_sum_seconds, count, &buckets, None)?;
            }
        }
        counter(
            encoder,
            "retries",
            "Failed pushes of a container's lines that will be retried (counted against loki-retries).",
            per_endpoint(|e| e.retries),
        )?;
        gauge(
            encoder,
            "lanes",
            None,
            "Containers delivering to the endpoint.",
            per_endpoint(|e| e.lanes),
        )?;
        gauge(
            encoder,
            "lanes_backing_off",
            None,
            "Containers waiting out a backoff before their next push.",
            per_endpoint(|e| e.lanes_backing_off),
        )?;
        gauge(
            encoder,
            "pushes_in_flight",
            None,
            "Pushes sent and not yet answered.",
            per_endpoint(|e| e.in_flight),
        )?;
        gauge(
            encoder,
            "endpoint_up",
            None,
            "1 while Loki answers, 0 while it is unreachable, failing or timing out as a whole.",
            per_endpoint(|e| u64::from(e.up)),
        )?;

        let plugin = &self.plugin;
        plain_counter(
            encoder,
            "plugin_lines_received",
            "Lines received, all containers since the plugin started (containers that are gone included).",
            plugin.lines.received,
        )?;
        plain_counter(
            encoder,
            "plugin_lines_recovered",
            "Lines recovered from journals, all containers since the plugin started.",
            plugin.lines.recovered,
        )?;
        plain_counter(
            encoder,
            "plugin_lines_sent",
            "Lines Loki accepted, all containers since the plugin started.",
            plugin.lines.sent,
        )?;
        counter(
            encoder,
            "plugin_lines_dropped",
            "Lines given up, by reason, all containers since the plugin started.",
            dropped(&plugin.lines),
        )?;
        plain_counter(
            encoder,
            "plugin_lines_filtered",
            "Lines dropped on purpose by pipeline stages or relabelling, all containers since the plugin started.",
            plugin.lines.filtered,
        )?;
        plain_counter(
            encoder,
            "plugin_invalid_frames",
            "FIFO frames skipped, all containers since the plugin started.",
            plugin.lines.invalid_frames,
        )?;
        plain_counter(
            encoder,
            "plugin_journal_misses",
            "Lines not written to the journal, all containers since the plugin started.",
            plugin.lines.journal_misses,
        )?;
        plain_counter(
            encoder,
            "plugin_lines_read_back",
            "Lines read back from disk for delivery, all containers since the plugin started.",
            plugin.lines.read_back,
        )?;
        plain_counter(
            encoder,
            "plugin_journal_written_bytes",
            "Bytes appended to journals, all containers since the plugin started.",
            plugin.lines.journal_written_bytes,
        )?;
        plain_gauge(
            encoder,
            "memory_budget",
            Some(Unit::Bytes),
            "Bound on lines held in memory, all containers together (TOTAL_BUFFER_SIZE).",
            plugin.memory_budget_bytes,
        )?;
        plain_gauge(
            encoder,
            "memory_budget_used",
            Some(Unit::Bytes),
            "Bytes of lines held in memory, all containers together.",
            plugin.memory_budget_used_bytes,
        )?;
        plain_gauge(
            encoder,
            "open_fifos",
            None,
            "Container FIFOs being read.",
            plugin.open_fifos,
        )?;
        plain_gauge(
            encoder,
            "journals_open",
            None,
            "Container journals open (being written or delivered).",
            plugin.journals_open,
        )?;
        plain_gauge(
            encoder,
            "endpoints",
            None,
            "Loki endpoints (push URLs) with a running delivery task.",
            plugin.endpoints,
        )?;
        gauge(
            encoder,
            "build_info",
            None,
            "The plugin's version; always 1.",
            vec![(
                [
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("arch", std::env::consts::ARCH),
                ],
                1,
            )],
        )?;
        Ok(())
    }
}

fn counter<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: Vec<(L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in &samples {
        family
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

fn plain_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn plain_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    unit: Option<Unit>,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?
        .encode_gauge(&value)
}

fn gauge<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    unit: Option<Unit>,
    help: &str,
    samples: Vec<(L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, value) in &samples {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

fn gauge_f64<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    unit: Option<Unit>,
    help: &str,
    samples: Vec<(L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, value) in &samples {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// Reads the driver at each scrape.
pub struct DriverCollector {
    driver: Arc<Driver>,
    /// The plugin-wide totals last shown: a journal that is closing is
    /// briefly in neither the open journals nor the retired totals, and a
    /// counter must never go down.
    shown: Mutex<LineCounts>,
}

impl std::fmt::Debug for DriverCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverCollector").finish_non_exhaustive()
    }
}

impl DriverCollector {
    pub fn new(driver: Arc<Driver>) -> DriverCollector {
        DriverCollector {
            driver,
            shown: Mutex::default(),
        }
    }

    /// A snapshot whose plugin-wide totals never go below the last one's.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::take(&self.driver, now_ns());
        let mut shown = self.shown.lock().expect("metrics lock poisoned");
        *shown = shown.max(&snapshot.plugin.lines);
        snapshot.plugin.lines = *shown;
        snapshot
    }
}

impl Collector for DriverCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.snapshot().encode(&mut encoder)
    }
}

/// A fixed snapshot (tests, and rendering without a driver).
#[derive(Debug)]
pub struct FixedCollector(pub Snapshot);

impl Collector for FixedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(&mut encoder)
    }
}

/// A registry with `collector` under the plugin's prefix.
pub fn registry(collector: impl Collector) -> Registry {
    let mut registry = Registry::default();
    registry
        .sub_registry_with_prefix(PREFIX)
        .register_collector(Box::new(collector));
    registry
}

/// [`registry`], and the series of containers' `metrics` pipeline stages
/// under the names their configurations give (Grafana's driver registers
/// them but never serves them).
pub fn registry_with_stages(collector: DriverCollector) -> Registry {
    let stages = StageCollector {
        driver: collector.driver.clone(),
    };
    let mut registry = registry(collector);
    registry.register_collector(Box::new(stages));
    registry
}

/// The `metrics` stages' series of every open container, each with the
/// container's labels added (unless the series has a label of that name).
pub struct StageCollector {
    driver: Arc<Driver>,
}

impl std::fmt::Debug for StageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StageCollector")
    }
}

impl Collector for StageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use crate::process::{Kind, Measure};
        let mut series: Vec<(Vec<(String, String)>, crate::process::Sample)> = Vec::new();
        for journal in self.driver.store().journals() {
            let counters = &journal.counters;
            let samples = counters
                .stage_metrics
                .lock()
                .expect("counters lock poisoned")
                .clone();
            let id = &counters.identity;
            for sample in samples {
                let mut labels = sample.labels.clone();
                for (k, v) in [("container_name", &id.name), ("container_id", &id.short_id)] {
                    if !labels.iter().any(|(n, _)| n == k) {
                        labels.push((k.to_string(), v.clone()));
                    }
                }
                labels.sort();
                series.push((labels, sample));
            }
        }
        series.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let mut i = 0;
        while i < series.len() {
            let name = series[i].1.name.clone();
            let end = i + series[i..]
                .iter()
                .take_while(|(_, s)| s.name == name)
                .count();
            let first = &series[i].1;
            let kind = match first.value {
                Measure::Counter(_) => Kind::Counter,
                Measure::Gauge(_) => Kind::Gauge,
                Measure::Histogram(_) => Kind::Histogram,
            };
            let metric_type = match kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let base = name
                .strip_suffix("_total")
                .filter(|_| kind == Kind::Counter)
                .unwrap_or(&name);
            let mut family = encoder.encode_descriptor(base, &first.help, None, metric_type)?;
            for (labels, sample) in &series[i..end] {
                let mut encoder = family.encode_family(labels)?;
                match &sample.value {
                    Measure::Counter(v) => encoder.encode_counter::<NoLabelSet, _, u64>(v, None)?,
                    Measure::Gauge(v) => encoder.encode_gauge(v)?,
                    Measure::Histogram(h) => {
                        let mut cumulative = Vec::new();
                        let mut previous = 0u64;
                        for (bound, count) in &h.buckets {
                            cumulative.push((*bound, count.saturating_sub(previous)));
                            previous = *count;
                        }
                        encoder.encode_histogram::<NoLabelSet>(h.sum, h.count, &cumulative, None)?
                    }
                }
            }
            i = end;
        }
        Ok(())
    }
}

/// The text a scrape answers.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
