//! Log-opts maps through `ContainerConfig::from_log_opts` and
//! `clamp_to_ranges`, with keys biased towards the known options, values
//! biased towards durations, sizes, counts and booleans, and `loki-url` /
//! `loki-proxy-url` built with credentials; plus `key=value` lines of text
//! before the first NUL byte (the seeds are real log-opts). A config that validates then
//! gets its labels made for an arbitrary container.
//!
//! Invariants:
//! - nothing panics;
//! - a password from a URL's userinfo never appears in an error message,
//!   nor in the URLs kept in the config, unless the same text is also in
//!   the input as a non-secret (another key or value, or the part of the
//!   URL after its last `@`);
//! - `clamp_to_ranges` is idempotent, and leaves every numeric option that
//!   parses (and is not 0) within its range; it changes only numeric options.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::labels::{StreamLabels, container_labels};
use loki_logdriver::config::options::{
    ContainerConfig, KNOWN_OPTIONS, RANGES, Range, clamp_to_ranges, redact_url,
};
use loki_logdriver::config::units::{parse_duration, parse_size};
use loki_logdriver::line::Source;
use loki_logdriver::protocol::ContainerInfo;

const OTHER_KEYS: &[&str] = &[
    "loki-pipeline-stages",
    "loki-pipeline-stage-file",
    "loki-relabel-config",
    "loki-url ",
    "LOKI-URL",
    "",
];
const DURATION_UNITS: &[&str] = &["ns", "us", "µs", "ms", "s", "m", "h", "", "d", "S"];
const SIZE_UNITS: &[&str] = &["", "k", "m", "g", "t", "p", "KB", "MiB", "gb", "b", "x"];
const BOOLS: &[&str] = &["true", "false", "1", "0", "t", "F", "TRUE", "yes", ""];
const SCHEMES: &[&str] = &[
    "http://",
    "https://",
    "",
    "//",
    "ftp://",
    "http:/",
    "HTTP://",
    "http:\\\\",
];

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Other(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Raw(String),
    Duration {
        number: u64,
        fraction: Option<u16>,
        unit: u8,
        more: Option<(u32, u8)>,
    },
    Size {
        number: u64,
        fraction: Option<u16>,
        unit: u8,
    },
    Count(i64),
    Bool(u8),
    Template(Vec<TemplatePart>),
}

#[derive(Debug, Arbitrary)]
enum TemplatePart {
    Text(String),
    Field(u8),
    Raw(String),
}

const FIELDS: &[&str] = &[
    "{{.Name}}",
    "{{.ImageName}}",
    "{{.ID}}",
    "{{.FullID}}",
    "{{.ImageID}}",
    "{{.ImageFullID}}",
    "{{.DaemonName}}",
    "{{.Hostname}}",
    "{{ .Nope }}",
    "{{",
    "}}",
    "=",
    ",",
];

impl Value {
    fn render(&self) -> String {
        let pick = |list: &[&str], i: u8| list[i as usize % list.len()].to_string();
        match self {
            Value::Raw(s) => s.clone(),
            Value::Duration {
                number,
                fraction,
                unit,
                more,
            } => {
                let mut s = number.to_string();
                if let Some(f) = fraction {
                    s += &format!(".{f}");
                }
                s += &pick(DURATION_UNITS, *unit);
                if let Some((n, u)) = more {
                    s += &format!("{n}{}", pick(DURATION_UNITS, *u));
                }
                s
            }
            Value::Size {
                number,
                fraction,
                unit,
            } => {
                let mut s = number.to_string();
                if let Some(f) = fraction {
                    s += &format!(".{f}");
                }
                s + &pick(SIZE_UNITS, *unit)
            }
            Value::Count(n) => n.to_string(),
            Value::Bool(i) => pick(BOOLS, *i),
            Value::Template(parts) => parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(t) => t.clone(),
                    TemplatePart::Field(i) => pick(FIELDS, *i),
                    TemplatePart::Raw(r) => r.clone(),
                })
                .collect(),
        }
    }
}

/// A URL with userinfo: `scheme user:password@host:port/path`.
#[derive(Debug, Arbitrary)]
struct Url {
    scheme: u8,
    user: String,
    /// `None`: `user@host`.
    password: Option<String>,
    host: String,
    port: Option<String>,
    path: String,
    /// Spaces around it (trimmed by the parser).
    padded: bool,
}

impl Url {
    fn render(&self) -> String {
        let mut s = SCHEMES[self.scheme as usize % SCHEMES.len()].to_string();
        s += &self.user;
        if let Some(p) = &self.password {
            s += ":";
            s += p;
        }
        s += "@";
        s += &self.host;
        if let Some(port) = &self.port {
            s += ":";
            s += port;
        }
        s += &self.path;
        if self.padded { format!("  {s} ") } else { s }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    url: Option<Url>,
    proxy: Option<Url>,
    opts: Vec<(Key, Value)>,
    container: Container,
}

#[derive(Debug, Arbitrary)]
struct Container {
    id: String,
    name: String,
    image: String,
    labels: Option<HashMap<String, String>>,
    env: Option<Vec<String>>,
}

fuzz_target!(|data: &[u8]| {
    // Text up to the first NUL: `key=value` lines (real log-opts as seeds);
    // the rest: the structured options and URLs.
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let mut opts: HashMap<String, String> = HashMap::new();
    for line in String::from_utf8_lossy(text).split('\n') {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        opts.insert(key.to_string(), value.to_string());
    }
    for (key, value) in &input.opts {
        let key = match key {
            Key::Known(i) => KNOWN_OPTIONS[*i as usize % KNOWN_OPTIONS.len()].to_string(),
            Key::Other(i) => OTHER_KEYS[*i as usize % OTHER_KEYS.len()].to_string(),
            Key::Raw(s) => s.clone(),
        };
        opts.insert(key, value.render());
    }
    // The URLs with credentials, and their passwords.
    let mut secrets: Vec<(&str, String, &str)> = Vec::new();
    for (key, url) in [("loki-url", &input.url), ("loki-proxy-url", &input.proxy)] {
        if let Some(url) = url {
            let raw = url.render();
            opts.insert(key.to_string(), raw.clone());
            if let Some(password) = &url.password {
                secrets.push((key, raw, password));
            }
        }
    }

    let result = ContainerConfig::from_log_opts(&opts);
    let shown = match &result {
        Err(err) => err.to_string(),
        Ok(config) => format!("{} {:?}", config.endpoint.url, config.endpoint.proxy_url),
    };
    for (key, raw, password) in &secrets {
        // Short passwords are common words of the messages themselves.
        if password.chars().count() < 4 || !shown.contains(*password) {
            continue;
        }
        // Still in opts as this raw URL? Another URL may have replaced it.
        if opts.get(*key) != Some(raw) {
            continue;
        }
        let elsewhere = opts.iter().any(|(k, v)| {
            k.contains(*password)
                || format!("{k:?}").contains(*password)
                || if secrets.iter().any(|(sk, sraw, _)| sk == k && sraw == v) {
                    let public = redact_url(v);
                    public.contains(*password) || format!("{public:?}").contains(*password)
                } else {
                    v.contains(*password) || format!("{v:?}").contains(*password)
                }
        });
        // Part of the messages' own text (such as the list of known
        // options): then the same text shows with another password.
        let fixed_text = KNOWN_OPTIONS.join(", ").contains(*password) || {
            let mut other = opts.clone();
            let replaced = raw.replacen(*password, &"Z".repeat(password.len()), 1);
            other.insert(key.to_string(), replaced);
            let shown = match ContainerConfig::from_log_opts(&other) {
                Err(err) => err.to_string(),
                Ok(config) => format!("{} {:?}", config.endpoint.url, config.endpoint.proxy_url),
            };
            shown.contains(*password)
        };
        assert!(
            elsewhere || fixed_text,
            "the password {password:?} of {key}={raw:?} is shown: {shown}"
        );
    }

    if let Ok(config) = &result {
        let c = &input.container;
        let info = ContainerInfo {
            config: Some(opts.clone()),
            container_id: c.id.clone(),
            container_name: c.name.clone(),
            image_name: c.image.clone(),
            labels: c.labels.clone(),
            env: c.env.clone(),
            ..ContainerInfo::default()
        };
        let labels: BTreeMap<String, String> = container_labels(config, &info, "fuzzhost");
        let streams = StreamLabels::new(&labels);
        for source in Source::ALL {
            let _ = streams.for_source(source);
        }
    }

    let (clamped, changes) = clamp_to_ranges(&opts);
    for (key, value) in &opts {
        if !RANGES.iter().any(|(k, _)| k == key) {
            assert_eq!(clamped.get(key), Some(value), "clamping changed {key}");
        }
    }
    assert_eq!(
        clamped.len(),
        opts.len(),
        "clamping added or removed options"
    );
    if changes.is_empty() {
        assert_eq!(clamped, opts, "options changed without a message");
    }
    for (key, range) in RANGES {
        let Some(value) = clamped.get(*key) else {
            continue;
        };
        match *range {
            Range::Duration(min, max) => {
                if let Ok(d) = parse_duration(value) {
                    assert!(min <= d && d <= max, "{key}={value:?} clamped out of range");
                }
            }
            Range::Size(min, max) => {
                if let Ok(n) = parse_size(value) {
                    assert!(
                        n == 0 || (min <= n && n <= max),
                        "{key}={value:?} clamped out of range"
                    );
                }
            }
            Range::Count(min, max) => {
                let digits = value.trim();
                if !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && let Ok(n) = digits.parse::<u32>()
                {
                    assert!(min <= n && n <= max, "{key}={value:?} clamped out of range");
                }
            }
        }
    }
    let (again, more) = clamp_to_ranges(&clamped);
    assert!(more.is_empty(), "clamping is not idempotent: {more:?}");
    assert_eq!(again, clamped);
    let _ = ContainerConfig::from_log_opts(&clamped);
});
