//! `docker`: Grafana's fixed sub-pipeline for Docker's json-file lines
//! (`{"log":"...","stream":"stderr","time":"..."}`): `json` (output: log,
//! stream, timestamp: time), `labels` (stream), `timestamp` (from
//! `timestamp`, RFC3339Nano, a failure taking the stream's last timestamp
//! plus 1ns) and `output` (output). It takes no settings (Grafana ignores
//! any; here an unknown key is refused like everywhere else).
//!
//! The timestamp step is [`GoTime`], shared with `cri`: Go's
//! `time.Parse(time.RFC3339Nano, ...)` and the `timestamp` stage's default
//! `action_on_failure: fudge`, written here so these two stages do not
//! depend on the configurable `timestamp` stage. A time outside what a
//! nanosecond timestamp holds (before 1677, after 2262) counts as a
//! failure.

use std::collections::BTreeMap;

use super::super::fields::Fields;
use super::super::yaml::{self, Node};
use super::super::{Budget, Context, Entry, Labels, NoFiles, Stage};

/// Label sets whose last timestamp the fudge remembers (Grafana's LRU).
const MAX_LAST_KNOWN: usize = 10_000;

/// Builds one of the stages a fixed sub-pipeline is made of.
pub(super) fn part(name: &str, yaml_text: &str) -> Result<Box<dyn Stage>, String> {
    let config = yaml::parse(yaml_text)?;
    super::build(name, &config, &mut Budget::new(&NoFiles))
        .map_err(|e| format!("the built-in {name} step: {e}"))
}

#[derive(Debug)]
pub struct Docker {
    json: Box<dyn Stage>,
    labels: Box<dyn Stage>,
    time: GoTime,
    output: Box<dyn Stage>,
}

impl Docker {
    pub fn new(config: &Node) -> Result<Docker, String> {
        Fields::new(config)?.finish()?;
        Ok(Docker {
            json: part(
                "json",
                r#"{"expressions":{"output":"log","stream":"stream","timestamp":"time"}}"#,
            )?,
            labels: part("labels", r#"{"stream":null}"#)?,
            time: GoTime::new("timestamp"),
            output: part("output", r#"{"source":"output"}"#)?,
        })
    }
}

impl Stage for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        self.json.run(entries, cx);
        self.labels.run(entries, cx);
        self.time.run(entries);
        self.output.run(entries, cx);
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(Docker {
            json: self.json.fresh(),
            labels: self.labels.fresh(),
            time: GoTime::new(&self.time.source),
            output: self.output.fresh(),
        })
    }
}

/// The timestamp step of `docker` and `cri`: RFC3339Nano from a field,
/// and on failure the label set's last timestamp plus 1ns (if it has one).
#[derive(Debug, Clone)]
pub(super) struct GoTime {
    source: String,
    /// Per label set: its last timestamp and when it was last used.
    last_known: BTreeMap<Labels, (i64, u64)>,
    uses: u64,
}

impl GoTime {
    pub(super) fn new(source: &str) -> GoTime {
        GoTime {
            source: source.to_string(),
            last_known: BTreeMap::new(),
            uses: 0,
        }
    }

    pub(super) fn run(&mut self, entries: &mut [Entry]) {
        for entry in entries {
            self.apply(entry);
        }
    }

    fn apply(&mut self, entry: &mut Entry) {
        self.uses += 1;
        let parsed = entry
            .extracted
            .get_string(&self.source)
            .and_then(|s| parse_rfc3339_nano(&s));
        let ts = match parsed {
            Some(ts) => ts,
            None => match self.last_known.get_mut(&entry.labels) {
                Some((last, used)) => {
                    *used = self.uses;
                    last.saturating_add(1)
                }
                None => return,
            },
        };
        entry.timestamp = ts;
        if !self.last_known.contains_key(&entry.labels) && self.last_known.len() >= MAX_LAST_KNOWN {
            let oldest = self
                .last_known
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.last_known.remove(&oldest);
            }
        }
        self.last_known
            .insert(entry.labels.clone(), (ts, self.uses));
    }
}

/// Go's `time.Parse(time.RFC3339Nano, s)` as nanoseconds since the epoch:
/// its lenient general parser (a one-digit hour, `,` before the fraction,
/// any number of fraction digits, offsets up to 24:60), `None` where Go
/// fails or the time does not fit.
pub(super) fn parse_rfc3339_nano(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let num = |from: usize, len: usize| -> i64 {
        b[from..from + len]
            .iter()
            .fold(0, |n, d| n * 10 + i64::from(d - b'0'))
    };
    // 2006-01-02T
    if !(0..4).all(digit) || b.get(4) != Some(&b'-') {
        return None;
    }
    let year = num(0, 4);
    if !(digit(5) && digit(6)) || b.get(7) != Some(&b'-') || !(digit(8) && digit(9)) {
        return None;
    }
    let (month, day) = (num(5, 2), num(8, 2));
    if !(1..=12).contains(&month) || !(0..=31).contains(&day) || b.get(10) != Some(&b'T') {
        return None;
    }
    // 15 (one or two digits):04:05
    let mut at = 11;
    if !digit(at) {
        return None;
    }
    let hour_len = if digit(at + 1) { 2 } else { 1 };
    let hour = num(at, hour_len);
    at += hour_len;
    if hour >= 24 || b.get(at) != Some(&b':') || !(digit(at + 1) && digit(at + 2)) {
        return None;
    }
    let minute = num(at + 1, 2);
    at += 3;
    if minute >= 60 || b.get(at) != Some(&b':') || !(digit(at + 1) && digit(at + 2)) {
        return None;
    }
    let second = num(at + 1, 2);
    at += 3;
    if second >= 60 {
        return None;
    }
    // .999999999 (optional; `,` too; digits past nine are cut)
    let mut nanos = 0;
    if matches!(b.get(at), Some(b'.' | b',')) && digit(at + 1) {
        let mut end = at + 1;
        while digit(end) {
            end += 1;
        }
        let kept = (end - at - 1).min(9);
        nanos = num(at + 1, kept) * 10i64.pow(9 - kept as u32);
        at = end;
    }
    // Z07:00
    let offset = match b.get(at) {
        Some(b'Z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            if b.len() < at + 6 || b[at + 3] != b':' {
                return None;
            }
            if !(digit(at + 1) && digit(at + 2) && digit(at + 4) && digit(at + 5)) {
                return None;
            }
            let (h, m) = (num(at + 1, 2), num(at + 4, 2));
            if h > 24 || m > 60 {
                return None;
            }
            at += 6;
            let offset = (h * 60 + m) * 60;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if at != b.len() || day < 1 || day > days_in(month, year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused};
    use super::super::run_once;
    use super::parse_rfc3339_nano;

    #[test]
    fn go_rfc3339_nano() {
        let base = 1_556_590_361_000_000_000; // 2019-04-30T02:12:41Z
        assert_eq!(parse_rfc3339_nano("2019-04-30T02:12:41Z"), Some(base));
        assert_eq!(
            parse_rfc3339_nano("2019-04-30T02:12:41.8443515Z"),
            Some(base + 844_351_500)
        );
        assert_eq!(
            parse_rfc3339_nano("2019-04-30T02:12:41,1234567891Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(parse_rfc3339_nano("2019-04-30T04:42:41+02:30"), Some(base));
        assert_eq!(parse_rfc3339_nano("2019-04-30T2:12:41Z"), Some(base));
        assert_eq!(parse_rfc3339_nano("1970-01-01T00:00:00Z"), Some(0));
        assert!(parse_rfc3339_nano("2024-02-29T00:00:00Z").is_some());
        for bad in [
            "2023-02-29T00:00:00Z",
            "2019-04-30T24:00:00Z",
            "2019-04-30T02:60:00Z",
            "2019-04-30T02:12:60Z",
            "2019-04-30 02:12:41Z",
            "2019-04-30T02:12:41",
            "2019-04-30T02:12:41.Z",
            "2019-04-30T02:12:41+0200",
            "2019-04-30T02:12:41Zx",
            "2019-4-30T02:12:41Z",
            "9999-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_rfc3339_nano(bad), None, "{bad}");
        }
    }

    #[test]
    fn any_time_parses_without_panicking() {
        let base = "2019-04-30T02:12:41.123+02:00".as_bytes();
        let alphabet = b"0123456789-T:.,Z+ z";
        let mut seed: u64 = 11;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut text = base.to_vec();
            let cut = (seed >> 40) as usize % (text.len() + 1);
            text.truncate(cut);
            for _ in 0..(seed % 4) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % (text.len() + 1);
                text.insert(at, alphabet[(seed >> 20) as usize % alphabet.len()]);
            }
            if let Ok(text) = std::str::from_utf8(&text) {
                let _ = parse_rfc3339_nano(text);
            }
        }
        assert_eq!(parse_rfc3339_nano("é"), None);
    }

    #[test]
    fn docker_json_lines() {
        let out = run_once(
            "[{docker: }]",
            &[
                r#"{"log":"hello\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
                r#"{"log":"again","stream":"stderr","time":"bad"}"#,
                "plain",
            ],
        );
        assert_eq!(out[0].line, "hello\n");
        assert_eq!(label(&out[0], "stream"), Some("stderr"));
        assert_eq!(out[0].timestamp, 1_556_590_361_844_351_500);
        assert_eq!(
            out[1].timestamp, 1_556_590_361_844_351_501,
            "a bad time: the stream's last plus 1ns"
        );
        assert_eq!(out[2].line, "plain");
        assert_eq!(out[2].timestamp, 1_700_000_000_000_000_000);
        assert!(refused("[{docker: {x: 1}}]").contains("unknown setting"));
    }
}
