//! `metrics`: counters, gauges and histograms from extracted fields, one
//! series per label set of the entries, as Grafana's stage keeps them
//! (named `promtail_custom_<name>` unless `prefix` is given; `source`
//! defaults to the metric's name; a series untouched for
//! `max_idle_duration`, default 5m, goes away). The stage changes no
//! entry. [`Stage::metrics`] reports the series as [`Sample`]s, which the
//! plugin's Prometheus endpoint serves.
//!
//! Where Grafana's would crash the plugin or serve nothing, this one says
//! so at build or skips the value: buckets not in increasing order and
//! metric names Prometheus' text format cannot carry are refused; a
//! negative value for a counter's `add` is skipped (Grafana panics); a
//! histogram series leaves out a label named `le` (Grafana panics).
//! Bounds Grafana does not have: at most [`MAX_METRICS`] metrics in a
//! stage and [`MAX_BUCKETS`] buckets in a histogram, and a stage keeps at
//! most [`MAX_CELLS`] values (a counter or gauge series is one, a
//! histogram series one per bucket plus one): past that, values for new
//! label sets are not recorded until idle series go away.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::fields::Fields;
use super::super::yaml::{Node, Resolved, Scalar};
use super::super::{Context, Entry, Stage, Value};
use super::go_duration;

/// Most metrics one stage defines.
pub const MAX_METRICS: usize = 1_000;
/// Most buckets one histogram has.
pub const MAX_BUCKETS: usize = 1_000;
/// Most values (series, histogram buckets) one stage keeps, per container.
pub const MAX_CELLS: usize = 1_000_000;
const DEFAULT_PREFIX: &str = "promtail_custom_";
const DEFAULT_IDLE_SEC: i64 = 5 * 60;
/// Prometheus' default buckets.
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One series, as the Prometheus endpoint serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full name, prefix included.
    pub name: Arc<str>,
    pub help: Arc<str>,
    /// Label pairs, sorted by name.
    pub labels: Vec<(String, String)>,
    pub value: Measure,
}

/// What kind of metric a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    Counter(f64),
    Gauge(f64),
    Histogram(Histogram),
}

/// A histogram's state: cumulative counts per upper bound (the `+Inf`
/// bucket is `count`), the sum and the count of observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Sample {
    pub fn kind(&self) -> Kind {
        match self.value {
            Measure::Counter(_) => Kind::Counter,
            Measure::Gauge(_) => Kind::Gauge,
            Measure::Histogram(_) => Kind::Histogram,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CounterAction {
    Inc,
    Add,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GaugeAction {
    Set,
    Inc,
    Dec,
    Add,
    Sub,
}

#[derive(Debug, Clone)]
enum Config {
    Counter {
        match_all: bool,
        count_bytes: bool,
        action: CounterAction,
    },
    Gauge(GaugeAction),
    Histogram(Arc<[f64]>),
}

/// One configured metric and its series.
#[derive(Debug, Clone)]
struct Metric {
    name: Arc<str>,
    help: Arc<str>,
    source: String,
    value: Option<String>,
    max_idle_sec: i64,
    config: Config,
    series: BTreeMap<Vec<(String, String)>, Series>,
}

/// A series' state, kept as Prometheus' Go client keeps it.
#[derive(Debug, Clone)]
struct Series {
    last_mod_sec: i64,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// Go's counter sums whole increments apart from fractional ones.
    Counter {
        float: f64,
        int: u64,
    },
    Gauge(f64),
    /// Counts per bucket (not cumulative), the last one `+Inf`.
    Histogram {
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Metrics {
    metrics: Vec<Metric>,
    /// Values kept, against [`MAX_CELLS`].
    cells: usize,
    /// When (s) series are next looked at for expiry.
    next_prune_sec: i64,
}

impl Metrics {
    pub fn new(config: &Node) -> Result<Metrics, String> {
        let entries = match config {
            Node::Map(entries) => entries.as_slice(),
            // Grafana decodes into an empty map: no metrics.
            n if n.is_null() => &[],
            other => {
                return Err(format!(
                    "expected a mapping of metrics, got {}",
                    other.kind()
                ));
            }
        };
        struct Raw<'a> {
            name: String,
            kind: String,
            help: String,
            source: String,
            prefix: String,
            idle: i64,
            config: Option<&'a Node>,
        }
        if entries.len() > MAX_METRICS {
            return Err(format!(
                "{} metrics in one stage: at most {MAX_METRICS}",
                entries.len()
            ));
        }
        let mut raws = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                return Err("a metric's name must be a string".into());
            };
            let mut f = Fields::new(value).map_err(|e| format!("metric {name}: {e}"))?;
            let kind = f.string("type")?.unwrap_or_default().to_lowercase();
            let help = f.string("description")?.unwrap_or_default();
            let source = f.string("source")?;
            let prefix = f.string("prefix")?.unwrap_or_default();
            let idle = f.string("max_idle_duration")?;
            let config = f.node("config");
            f.finish().map_err(|e| format!("metric {name}: {e}"))?;
            if !matches!(kind.as_str(), "counter" | "gauge" | "histogram") {
                return Err(format!(
                    "invalid metric type '{kind}', metric type must be one of 'counter', 'gauge', or 'histogram'"
                ));
            }
            let idle = match idle {
                None => DEFAULT_IDLE_SEC,
                Some(text) => {
                    let ns = go_duration(&text).map_err(|e| {
                        format!("max_idle_duration could not be parsed as a time.Duration: '{e}'")
                    })?;
                    if ns < 1_000_000_000 {
                        return Err("max_idle_duration less than 1s not allowed".into());
                    }
                    ns / 1_000_000_000
                }
            };
            raws.push(Raw {
                source: source.unwrap_or_else(|| name.to_string()),
                name: name.to_string(),
                kind,
                help,
                prefix,
                idle,
                config,
            });
        }
        let mut metrics = Vec::new();
        for raw in raws {
            let prefix = if raw.prefix.is_empty() {
                DEFAULT_PREFIX
            } else {
                &raw.prefix
            };
            let full = format!("{prefix}{}", raw.name);
            if !is_metric_name(&full) {
                return Err(format!(
                    "metric {}: {full:?} is not a valid Prometheus metric name (letters, digits, _ and :, not starting with a digit)",
                    raw.name
                ));
            }
            let null = Node::null();
            let node = raw.config.unwrap_or(&null);
            let (config, value) = match raw.kind.as_str() {
                "counter" => counter_config(node)?,
                "gauge" => gauge_config(node)?,
                _ => histogram_config(node)?,
            };
            metrics.push(Metric {
                name: Arc::from(full),
                help: Arc::from(raw.help),
                source: raw.source,
                value,
                max_idle_sec: raw.idle,
                config,
                series: BTreeMap::new(),
            });
        }
        Ok(Metrics {
            metrics,
            cells: 0,
            next_prune_sec: i64::MIN,
        })
    }
}

/// Prometheus' classic metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn counter_config(node: &Node) -> Result<(Config, Option<String>), String> {
    let mut f = Fields::new(node)?;
    let match_all = f.bool("match_all")?;
    let count_bytes = f.bool("count_entry_bytes")?;
    let value = f.string("value")?;
    let action = f.string("action")?.unwrap_or_default();
    f.finish()?;
    if action.is_empty() {
        return Err("counter action must be defined as either `inc` or `add`".into());
    }
    let action = match action.to_lowercase().as_str() {
        "inc" => CounterAction::Inc,
        "add" => CounterAction::Add,
        other => {
            return Err(format!(
                "action {other} is not valid, action must be either `inc` or `add`"
            ));
        }
    };
    let match_all = match_all == Some(true);
    let count_bytes = count_bytes == Some(true);
    if match_all && value.is_some() {
        return Err(
            "`match_all: true` cannot be combined with `value`, please remove `match_all` or `value`"
                .into(),
        );
    }
    if count_bytes && !match_all {
        return Err("`count_entry_bytes: true` can only be set with `match_all: true`".into());
    }
    if count_bytes && action != CounterAction::Add {
        return Err("`count_entry_bytes: true` can only be used with `action: add`".into());
    }
    Ok((
        Config::Counter {
            match_all,
            count_bytes,
            action,
        },
        value,
    ))
}

fn gauge_config(node: &Node) -> Result<(Config, Option<String>), String> {
    let mut f = Fields::new(node)?;
    let value = f.string("value")?;
    let action = f.string("action")?.unwrap_or_default();
    f.finish()?;
    if action.is_empty() {
        return Err("gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`".into());
    }
    let action = match action.to_lowercase().as_str() {
        "set" => GaugeAction::Set,
        "inc" => GaugeAction::Inc,
        "dec" => GaugeAction::Dec,
        "add" => GaugeAction::Add,
        "sub" => GaugeAction::Sub,
        other => {
            return Err(format!(
                "action {other} is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`"
            ));
        }
    };
    Ok((Config::Gauge(action), value))
}

fn histogram_config(node: &Node) -> Result<(Config, Option<String>), String> {
    let mut f = Fields::new(node)?;
    let value = f.string("value")?;
    let buckets = match f.node("buckets") {
        None => Vec::new(),
        Some(Node::Seq(items)) => items
            .iter()
            .map(bucket_bound)
            .collect::<Result<Vec<f64>, String>>()?,
        Some(other) => {
            return Err(format!("'buckets' expected a list, got {}", other.kind()));
        }
    };
    f.finish()?;
    if buckets.len() > MAX_BUCKETS {
        return Err(format!(
            "{} histogram buckets: at most {MAX_BUCKETS}",
            buckets.len()
        ));
    }
    let mut buckets = if buckets.is_empty() {
        DEFAULT_BUCKETS.to_vec()
    } else {
        buckets
    };
    for pair in buckets.windows(2) {
        if pair[0].partial_cmp(&pair[1]) != Some(std::cmp::Ordering::Less) {
            return Err(format!(
                "histogram buckets must be in increasing order: {} >= {}",
                pair[0], pair[1]
            ));
        }
    }
    if buckets.iter().any(|b| b.is_nan()) {
        return Err("histogram buckets must be numbers (NaN given)".into());
    }
    // The +Inf bucket is implicit.
    if buckets.last() == Some(&f64::INFINITY) {
        buckets.pop();
    }
    Ok((Config::Histogram(Arc::from(buckets)), value))
}

/// A bucket bound as mapstructure decodes a `float64`: any number.
fn bucket_bound(node: &Node) -> Result<f64, String> {
    match node {
        Node::Scalar(Scalar {
            value: Resolved::Int(i),
            ..
        }) => Ok(*i as f64),
        Node::Scalar(Scalar {
            value: Resolved::Uint(u),
            ..
        }) => Ok(*u as f64),
        Node::Scalar(Scalar {
            value: Resolved::Float(f),
            ..
        }) => Ok(*f),
        other => Err(format!("'buckets' expected numbers, got {}", other.kind())),
    }
}

/// Grafana's `getFloat`: numbers, booleans (1/0), and strings that are a
/// Go float or a Go duration (in seconds).
fn get_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => Some(*n),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => go_parse_float(s).or_else(|| {
            let ns = go_duration(s).ok()?;
            Some(seconds(ns))
        }),
        Value::Null => None,
    }
}

/// `time.Duration.Seconds()`.
fn seconds(ns: i64) -> f64 {
    (ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9
}

/// Go's `strconv.ParseFloat(s, 64)`, `None` where it returns an error
/// (out of range included).
pub fn go_parse_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan" {
        // Go takes no sign before NaN.
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return parse_hex_float(hex).map(|f| sign * f);
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    if f.is_infinite() {
        return None; // Go: value out of range
    }
    Some(sign * f)
}

/// The part of a Go hex float after `0x`: hex digits, an optional point,
/// and the binary exponent Go requires (`1.8p1`).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once('p')?;
    let exponent: i32 = match exponent.strip_prefix('+') {
        Some(e) if !e.starts_with(['+', '-']) => e.parse().ok()?,
        Some(_) => return None,
        None => exponent.parse().ok()?,
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for c in whole.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in fraction.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let f = value * 2f64.powi(exponent);
    (!f.is_infinite()).then_some(f)
}

/// The series' labels: the entry's, less those starting with `__` (and,
/// for a histogram, `le`), as Grafana's `cleanLabels`.
fn series_labels(entry: &Entry, histogram: bool) -> Vec<(String, String)> {
    entry
        .labels
        .iter()
        .filter(|(k, _)| !(k.is_empty() || k.starts_with("__") || (histogram && *k == "le")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Metric {
    /// Values one series of this metric keeps.
    fn cells(&self) -> usize {
        match &self.config {
            Config::Histogram(bounds) => bounds.len() + 1,
            _ => 1,
        }
    }

    fn series(&mut self, entry: &Entry, now_sec: i64, cells: &mut usize) -> Option<&mut Series> {
        let labels = series_labels(entry, matches!(self.config, Config::Histogram(_)));
        if !self.series.contains_key(&labels) {
            let needed = self.cells();
            if cells.saturating_add(needed) > MAX_CELLS {
                return None;
            }
            *cells += needed;
            let state = match &self.config {
                Config::Counter { .. } => State::Counter { float: 0.0, int: 0 },
                Config::Gauge(_) => State::Gauge(0.0),
                Config::Histogram(bounds) => State::Histogram {
                    counts: vec![0; bounds.len() + 1],
                    sum: 0.0,
                    count: 0,
                },
            };
            self.series.insert(
                labels.clone(),
                Series {
                    last_mod_sec: now_sec,
                    state,
                },
            );
        }
        let series = self.series.get_mut(&labels)?;
        series.last_mod_sec = now_sec;
        Some(series)
    }

    fn record(&mut self, entry: &Entry, now_sec: i64, cells: &mut usize) {
        let value: Value;
        let v = match &self.config {
            Config::Counter {
                match_all: true,
                count_bytes,
                ..
            } => {
                value = if *count_bytes {
                    Value::Number(entry.line.len() as f64)
                } else {
                    Value::Null
                };
                &value
            }
            _ => match entry.extracted.get(&self.source) {
                Some(v) => v,
                None => return,
            },
        };
        let matched = match &self.value {
            None => true,
            Some(wanted) => v.to_go_string().is_some_and(|s| s == wanted.as_str()),
        };
        if !matched {
            return;
        }
        let amount = get_float(v);
        match self.config.clone() {
            Config::Counter { action, .. } => {
                let add = match action {
                    CounterAction::Inc => 1.0,
                    CounterAction::Add => match amount {
                        // NaN is added, as Go adds it.
                        Some(a) if a >= 0.0 || a.is_nan() => a,
                        _ => return,
                    },
                };
                if let Some(Series {
                    state: State::Counter { float, int },
                    ..
                }) = self.series(entry, now_sec, cells)
                {
                    let whole = add as u64;
                    if whole as f64 == add {
                        *int = int.wrapping_add(whole);
                    } else {
                        *float += add;
                    }
                }
            }
            Config::Gauge(action) => {
                let amount = match action {
                    GaugeAction::Inc => 1.0,
                    GaugeAction::Dec => -1.0,
                    _ => match amount {
                        Some(a) => a,
                        None => return,
                    },
                };
                if let Some(Series {
                    state: State::Gauge(g),
                    ..
                }) = self.series(entry, now_sec, cells)
                {
                    *g = match action {
                        GaugeAction::Set => amount,
                        GaugeAction::Sub => *g + -amount,
                        _ => *g + amount,
                    };
                }
            }
            Config::Histogram(bounds) => {
                let Some(a) = amount else { return };
                if let Some(Series {
                    state: State::Histogram { counts, sum, count },
                    ..
                }) = self.series(entry, now_sec, cells)
                {
                    let at = bounds.iter().position(|b| *b >= a).unwrap_or(bounds.len());
                    counts[at] += 1;
                    *sum += a;
                    *count += 1;
                }
            }
        }
    }

    fn sample(&self, labels: &[(String, String)], series: &Series) -> Sample {
        let value = match (&series.state, &self.config) {
            (State::Counter { float, int }, _) => Measure::Counter(float + *int as f64),
            (State::Gauge(g), _) => Measure::Gauge(*g),
            (State::Histogram { counts, sum, count }, Config::Histogram(bounds)) => {
                let mut total = 0;
                let buckets = bounds
                    .iter()
                    .zip(counts)
                    .map(|(b, c)| {
                        total += c;
                        (*b, total)
                    })
                    .collect();
                Measure::Histogram(Histogram {
                    buckets,
                    sum: *sum,
                    count: *count,
                })
            }
            (State::Histogram { sum, count, .. }, _) => Measure::Histogram(Histogram {
                buckets: Vec::new(),
                sum: *sum,
                count: *count,
            }),
        };
        Sample {
            name: self.name.clone(),
            help: self.help.clone(),
            labels: labels.to_vec(),
            value,
        }
    }
}

/// Go's `time.Time.Unix()` of a nanosecond timestamp.
fn unix_sec(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

impl Stage for Metrics {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        let now_sec = unix_sec(cx.now);
        if now_sec >= self.next_prune_sec {
            for metric in &mut self.metrics {
                let max = metric.max_idle_sec;
                let before = metric.series.len();
                metric
                    .series
                    .retain(|_, s| now_sec.saturating_sub(s.last_mod_sec) < max);
                self.cells = self
                    .cells
                    .saturating_sub((before - metric.series.len()) * metric.cells());
            }
            self.next_prune_sec = now_sec.saturating_add(1);
        }
        for entry in entries.iter() {
            for metric in &mut self.metrics {
                metric.record(entry, now_sec, &mut self.cells);
            }
        }
    }

    fn metrics(&self, now: i64, out: &mut Vec<Sample>) {
        let now_sec = unix_sec(now);
        for metric in &self.metrics {
            for (labels, series) in &metric.series {
                if now_sec.saturating_sub(series.last_mod_sec) < metric.max_idle_sec {
                    out.push(metric.sample(labels, series));
                }
            }
        }
    }

    fn fresh(&self) -> Box<dyn Stage> {
        let mut fresh = self.clone();
        for metric in &mut fresh.metrics {
            metric.series.clear();
        }
        fresh.cells = 0;
        fresh.next_prune_sec = i64::MIN;
        Box::new(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, entry_with, refused};
    use super::super::super::{Context, NoFiles, Pipeline};
    use super::{Histogram, Kind, Measure, Sample, go_parse_float};

    const S: i64 = 1_000_000_000;

    fn samples(yaml: &str, lines: &[&str], now: i64) -> Vec<Sample> {
        let mut p = Pipeline::parse_inline(yaml, &NoFiles).unwrap();
        let mut e: Vec<_> = lines.iter().map(|l| entry(l)).collect();
        p.run(&mut e, &mut Context::new(now));
        assert_eq!(e.len(), lines.len(), "the stage changes no entry");
        p.metrics(now)
    }

    fn value(s: &Sample) -> f64 {
        match &s.value {
            Measure::Counter(v) | Measure::Gauge(v) => *v,
            Measure::Histogram(h) => h.sum,
        }
    }

    const REGEX: &str = r#"{"regex":{"expression":"^(?P<level>\\w+) (?P<ms>\\S+)"}}"#;

    #[test]
    fn counters() {
        let yaml = format!(
            r#"[{REGEX},{{"metrics":{{
                "lines":{{"type":"Counter","description":"all lines","config":{{"match_all":true,"action":"inc"}}}},
                "bytes":{{"type":"counter","prefix":"my_","config":{{"match_all":true,"count_entry_bytes":true,"action":"add"}}}},
                "errors":{{"type":"counter","source":"level","config":{{"value":"error","action":"inc"}}}},
                "ms_total":{{"type":"counter","source":"ms","config":{{"action":"add"}}}}}}}}]"#
        );
        let out = samples(&yaml, &["error 1.5", "info 250ms", "error -3", "x"], 0);
        let get = |name: &str| {
            out.iter()
                .find(|s| s.name.as_ref() == name)
                .unwrap_or_else(|| panic!("{name} in {out:?}"))
        };
        let lines = get("promtail_custom_lines");
        assert_eq!(value(lines), 4.0);
        assert_eq!(lines.kind(), Kind::Counter);
        assert_eq!(lines.help.as_ref(), "all lines");
        assert_eq!(
            lines.labels,
            [
                ("app".to_string(), "web".to_string()),
                ("source".to_string(), "stdout".to_string())
            ]
        );
        assert_eq!(value(get("my_bytes")), 9.0 + 10.0 + 8.0 + 1.0);
        assert_eq!(value(get("promtail_custom_errors")), 2.0);
        assert_eq!(
            value(get("promtail_custom_ms_total")),
            1.75,
            "1.5 + 250ms; a negative add is skipped"
        );
    }

    #[test]
    fn gauges_and_histograms() {
        let yaml = format!(
            r#"[{REGEX},{{"metrics":{{
                "last":{{"type":"gauge","source":"ms","config":{{"action":"set"}}}},
                "up":{{"type":"gauge","source":"level","config":{{"action":"inc","value":"start"}}}},
                "down":{{"type":"gauge","source":"level","config":{{"action":"Dec"}}}},
                "h":{{"type":"histogram","source":"ms","config":{{"buckets":[1,2,.inf]}}}},
                "d":{{"type":"histogram","source":"ms"}}}}}}]"#
        );
        let out = samples(&yaml, &["start 3", "start 1", "stop 1.5s"], 0);
        let get = |name: &str| out.iter().find(|s| s.name.as_ref() == name).unwrap();
        assert_eq!(value(get("promtail_custom_last")), 1.5);
        assert_eq!(value(get("promtail_custom_up")), 2.0);
        assert_eq!(value(get("promtail_custom_down")), -3.0);
        assert_eq!(
            get("promtail_custom_h").value,
            Measure::Histogram(Histogram {
                buckets: vec![(1.0, 1), (2.0, 2)],
                sum: 5.5,
                count: 3
            })
        );
        let Measure::Histogram(d) = &get("promtail_custom_d").value else {
            panic!()
        };
        assert_eq!(d.buckets.len(), 11, "Prometheus' default buckets");
    }

    /// Grafana's own `TestMetricsPipeline` (metrics_test.go), same config,
    /// lines and expected values.
    #[test]
    fn grafanas_metrics_pipeline_test() {
        let config = "
pipeline_stages:
- json:
    expressions:
      app: app
      payload: payload
- metrics:
    loki_count:
      type: Counter
      description: uhhhhhhh
      prefix: my_promtail_custom_
      source: app
      config:
        value: loki
        action: inc
    bloki_count:
      type: Gauge
      description: blerrrgh
      source: app
      config:
        value: bloki
        action: dec
    total_lines_count:
      type: Counter
      description: nothing to see here...
      config:
        match_all: true
        action: inc
    total_bytes_count:
      type: Counter
      description: nothing to see here...
      config:
        match_all: true
        count_entry_bytes: true
        action: add
    payload_size_bytes:
      type: Histogram
      description: grrrragh
      source: payload
      config:
        buckets: [10, 20]
";
        let line1 = "\n{\n\t\"time\":\"2012-11-01T22:08:41+00:00\",\n\t\"app\":\"loki\",\n    \"payload\": 10,\n\t\"component\": [\"parser\",\"type\"],\n\t\"level\" : \"WARN\"\n}\n";
        let line2 = line1.replace("\"loki\"", "\"bloki\"").replace("10,", "20,");
        let mut p = Pipeline::parse_file(config, &NoFiles).unwrap();
        for line in [line1, line2.as_str()] {
            let mut e = vec![entry_with(line, &[("test", "app")])];
            p.run(&mut e, &mut Context::new(0));
        }
        let got: Vec<(String, String, Measure)> = p
            .metrics(0)
            .into_iter()
            .map(|s| {
                assert_eq!(s.labels, [("test".to_string(), "app".to_string())]);
                (s.name.to_string(), s.help.to_string(), s.value)
            })
            .collect();
        let want = [
            (
                "my_promtail_custom_loki_count",
                "uhhhhhhh",
                Measure::Counter(1.0),
            ),
            (
                "promtail_custom_bloki_count",
                "blerrrgh",
                Measure::Gauge(-1.0),
            ),
            (
                "promtail_custom_total_lines_count",
                "nothing to see here...",
                Measure::Counter(2.0),
            ),
            (
                "promtail_custom_total_bytes_count",
                "nothing to see here...",
                Measure::Counter(255.0),
            ),
            (
                "promtail_custom_payload_size_bytes",
                "grrrragh",
                Measure::Histogram(Histogram {
                    buckets: vec![(10.0, 1), (20.0, 2)],
                    sum: 30.0,
                    count: 2,
                }),
            ),
        ];
        for (name, help, value) in want {
            assert!(
                got.contains(&(name.to_string(), help.to_string(), value.clone())),
                "{name} {value:?} in {got:?}"
            );
        }
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn idle_series_go_away() {
        let yaml = r#"[{"metrics":{"n":{"type":"counter","max_idle_duration":"10s","config":{"match_all":true,"action":"inc"}}}}]"#;
        let mut p = Pipeline::parse_inline(yaml, &NoFiles).unwrap();
        p.run(&mut vec![entry("x")], &mut Context::new(100 * S));
        assert_eq!(p.metrics(109 * S).len(), 1);
        assert_eq!(p.metrics(110 * S).len(), 0);
        assert_eq!(p.fresh().metrics(100 * S).len(), 0, "fresh: no series");
    }

    #[test]
    fn memory_is_bounded() {
        let buckets: Vec<String> = (0..1000).map(|b| b.to_string()).collect();
        let yaml = format!(
            r#"[{{"metrics":{{"h":{{"type":"histogram","source":"app","config":{{"buckets":[{}]}}}}}}}}]"#,
            buckets.join(",")
        );
        let mut p = Pipeline::parse_inline(&yaml, &NoFiles).unwrap();
        let mut e: Vec<_> = (0..1200)
            .map(|i| entry_with("x", &[("app", "1"), ("id", &i.to_string())]))
            .collect();
        p.run(&mut e, &mut Context::new(0));
        assert_eq!(e.len(), 1200);
        assert_eq!(p.metrics(0).len(), super::MAX_CELLS / 1001);
        let many: Vec<String> = (0..1001).map(|b| b.to_string()).collect();
        assert!(
            refused(&format!(
                r#"[{{"metrics":{{"h":{{"type":"histogram","config":{{"buckets":[{}]}}}}}}}}]"#,
                many.join(",")
            ))
            .contains("at most 1000")
        );
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_parse_float("1.5"), Some(1.5));
        assert_eq!(go_parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(go_parse_float("0x1.8p1"), Some(3.0));
        assert_eq!(go_parse_float("1e400"), None);
        assert_eq!(go_parse_float("-nan"), None);
        assert!(go_parse_float("NaN").unwrap().is_nan());
        assert_eq!(go_parse_float("1_0"), None);
        assert_eq!(go_parse_float(" 1"), None);
    }

    #[test]
    fn configs() {
        assert!(Pipeline::parse_inline("[{metrics: }]", &NoFiles).is_ok());
        assert!(
            refused("[{metrics: {a: {type: summary}}}]").contains("invalid metric type 'summary'")
        );
        assert!(refused("[{metrics: {a: {}}}]").contains("invalid metric type ''"));
        assert!(
            refused("[{metrics: {a: {type: counter}}}]").contains("counter action must be defined")
        );
        assert!(
            refused("[{metrics: {a: {type: counter, config: {action: set}}}}]")
                .contains("action set is not valid")
        );
        assert!(
            refused("[{metrics: {a: {type: counter, config: {action: inc, match_all: true, value: x}}}}]")
                .contains("cannot be combined")
        );
        assert!(
            refused(
                "[{metrics: {a: {type: counter, config: {action: add, count_entry_bytes: true}}}}]"
            )
            .contains("only be set with `match_all: true`")
        );
        assert!(
            refused("[{metrics: {a: {type: counter, config: {action: inc, match_all: true, count_entry_bytes: true}}}}]")
                .contains("only be used with `action: add`")
        );
        assert!(
            refused("[{metrics: {a: {type: gauge, config: {}}}}]")
                .contains("gauge action must be defined")
        );
        assert!(
            refused("[{metrics: {a: {type: gauge, config: {action: x}}}}]")
                .contains("action x is not valid")
        );
        assert!(
            refused("[{metrics: {a: {type: histogram, config: {buckets: [2, 1]}}}}]")
                .contains("increasing order")
        );
        assert!(
            refused("[{metrics: {a: {type: histogram, max_idle_duration: 500ms}}}]")
                .contains("less than 1s")
        );
        assert!(
            refused("[{metrics: {a: {type: histogram, max_idle_duration: soon}}}]")
                .contains("could not be parsed")
        );
        assert!(
            refused("[{metrics: {a-b: {type: gauge, config: {action: inc}}}}]")
                .contains("not a valid Prometheus metric name")
        );
        assert!(
            refused("[{metrics: {a: {type: gauge, sauce: x, config: {action: inc}}}}]")
                .contains("unknown setting")
        );
        assert!(
            refused("[{metrics: {a: {type: gauge, config: {action: inc, x: 1}}}}]")
                .contains("unknown setting")
        );
    }
}
