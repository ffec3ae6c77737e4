//! Log-opts maps through `ContainerConfig::from_log_opts` and
//! `clamp_to_ranges`, with keys biased towards the known options, values
//! biased towards durations, sizes, counts, booleans, templates and
//! `loki-headers` lists, and `loki-url` / `loki-proxy-url` built with
//! credentials; plus `key=value` lines of text before the first NUL byte
//! (the seeds are real log-opts). A config that validates then gets its
//! tenant, labels and structured metadata made for an arbitrary container.
//! Optionally plugin-wide defaults too (`LOG_OPTS`, a JSON object built the
//! same way) through `LogOptDefaults::parse` and `apply`.
//!
//! Invariants:
//! - nothing panics;
//! - no credential appears in an error message (of the log-opts or of
//!   `LOG_OPTS`), nor in a valid config's `Debug` form: the user and
//!   password of a URL's userinfo, `loki-username`, `loki-password`,
//!   `loki-bearer-token`, the values of `loki-headers`. Unless the same text
//!   is also in the input as a non-secret (a key, another value, the part of
//!   a URL after its last `@`, a header name) or is the message's own text
//!   (it still shows when the credential is replaced);
//! - the defaults never override a container's own option, and their
//!   credentials never go with a container's other `loki-url`;
//! - `clamp_to_ranges` is idempotent, and leaves every numeric option that
//!   parses (and is not 0) within its range; it changes only numeric options.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::defaults::LogOptDefaults;
use loki_logdriver::config::table::{self, Kind as Range, OPTIONS};
use loki_logdriver::config::labels::{StreamLabels, container_labels, structured_metadata};
use loki_logdriver::config::options::{
    ContainerConfig, OptionContext, clamp_to_ranges, redact_url,
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
    /// `loki-headers`: `Name=value` entries.
    Headers(Vec<(HeaderName, String)>),
}

#[derive(Debug, Arbitrary)]
enum HeaderName {
    Common(u8),
    Raw(String),
}

const HEADER_NAMES: &[&str] = &[
    "X-Api-Key",
    "X-Custom",
    "Authorization",
    "X-Scope-OrgID",
    "Content-Type",
    "x-api-key",
];

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
            Value::Headers(entries) => entries
                .iter()
                .map(|(name, value)| {
                    let name = match name {
                        HeaderName::Common(i) => pick(HEADER_NAMES, *i),
                        HeaderName::Raw(r) => r.clone(),
                    };
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join(","),
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
    defaults: Option<Defaults>,
}

/// `LOG_OPTS`: its `loki-url` and other options.
#[derive(Debug, Arbitrary)]
struct Defaults {
    url: Option<Url>,
    opts: Vec<(Key, Value)>,
}

fn key_name(key: &Key) -> String {
    match key {
        Key::Known(i) => OPTIONS[*i as usize % OPTIONS.len()].name.to_string(),
        Key::Other(i) => OTHER_KEYS[*i as usize % OTHER_KEYS.len()].to_string(),
        Key::Raw(s) => s.clone(),
    }
}

/// A URL with credentials put in an option: the option, the URL as given,
/// and its user and password.
type UrlSecrets = Vec<(&'static str, String, Vec<String>)>;

/// Puts the structured URLs into `opts`.
fn add_urls(
    opts: &mut HashMap<String, String>,
    urls: [(&'static str, &Option<Url>); 2],
) -> UrlSecrets {
    let mut secrets = Vec::new();
    for (key, url) in urls {
        if let Some(url) = url {
            let raw = url.render();
            opts.insert(key.to_string(), raw.clone());
            let mut parts = vec![url.user.clone()];
            parts.extend(url.password.clone());
            secrets.push((key, raw, parts));
        }
    }
    secrets
}

/// Options whose whole value is a credential.
const SECRET_OPTIONS: &[&str] = &["loki-username", "loki-password", "loki-bearer-token"];

/// The credentials in `opts`: (option, secret text).
fn secrets_in(opts: &HashMap<String, String>, urls: &UrlSecrets) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (key, raw, parts) in urls {
        // Another URL given as text may have replaced it.
        if opts.get(*key) == Some(raw) {
            found.extend(parts.iter().map(|p| (key.to_string(), p.clone())));
        }
    }
    for key in SECRET_OPTIONS {
        if let Some(value) = opts.get(*key) {
            found.push((key.to_string(), value.clone()));
        }
    }
    if let Some(value) = opts.get("loki-headers") {
        for entry in value.split(',') {
            if let Some((_, header_value)) = entry.trim().split_once('=') {
                found.push(("loki-headers".into(), header_value.trim().to_string()));
            }
        }
    }
    found
}

/// What of an option's value is not a credential.
fn public(key: &str, value: &str, urls: &UrlSecrets) -> String {
    if urls.iter().any(|(k, raw, _)| *k == key && raw == value) {
        redact_url(value)
    } else if SECRET_OPTIONS.contains(&key) {
        String::new()
    } else if key == "loki-headers" {
        value
            .split(',')
            .map(|entry| entry.split_once('=').map_or(entry, |(name, _)| name))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        value.to_string()
    }
}

/// Asserts that no credential of `opts` shows in `shown` (what `show`
/// makes of `opts`), but as public text of the input or the message's own.
fn check_secrets(
    what: &str,
    opts: &HashMap<String, String>,
    urls: &UrlSecrets,
    shown: &str,
    show: impl Fn(&HashMap<String, String>) -> String,
) {
    for (key, secret) in secrets_in(opts, urls) {
        // Short ones are common words of the messages themselves.
        if secret.chars().count() < 4 {
            continue;
        }
        let escaped = secret.escape_debug().to_string();
        let needles = [secret.as_str(), escaped.as_str()];
        if !needles.iter().any(|n| shown.contains(n)) {
            continue;
        }
        let elsewhere = opts.iter().any(|(k, v)| {
            let p = public(k, v, urls);
            [k.clone(), format!("{k:?}"), p.clone(), format!("{p:?}")]
                .iter()
                .any(|text| needles.iter().any(|n| text.contains(n)))
        });
        let fixed_text = table::names().collect::<Vec<_>>().join(", ").contains(&secret) || {
            let mut other = opts.clone();
            let replaced = opts[&key].replace(&secret, &"Z".repeat(secret.len()));
            other.insert(key.clone(), replaced);
            let shown = show(&other);
            needles.iter().any(|n| shown.contains(n))
        };
        assert!(
            elsewhere || fixed_text,
            "{what}: the credential {secret:?} of {key}={:?} is shown: {shown}",
            opts[&key]
        );
    }
}

/// An error, or a valid config's `Debug` form.
fn show_config(opts: &HashMap<String, String>) -> String {
    match ContainerConfig::from_log_opts(opts) {
        Err(err) => err.to_string(),
        Ok(config) => format!("{config:?}"),
    }
}

/// `LOG_OPTS` as set with `docker plugin set`: a JSON object.
fn log_opts_json(opts: &HashMap<String, String>) -> String {
    serde_json::to_string(&opts.iter().collect::<BTreeMap<_, _>>()).expect("JSON")
}

fn show_defaults(opts: &HashMap<String, String>) -> String {
    LogOptDefaults::parse(&log_opts_json(opts), &OptionContext::default())
        .err()
        .unwrap_or_default()
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
        opts.insert(key_name(key), value.render());
    }
    let urls = add_urls(
        &mut opts,
        [("loki-url", &input.url), ("loki-proxy-url", &input.proxy)],
    );

    let result = ContainerConfig::from_log_opts(&opts);
    let shown = match &result {
        Err(err) => err.to_string(),
        Ok(config) => format!("{config:?}"),
    };
    check_secrets("log-opts", &opts, &urls, &shown, show_config);

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
        let _ = structured_metadata(config, &info, "fuzzhost");
        let _ = config.clone().resolve(&info, "fuzzhost");
    }

    if let Some(Defaults { url, opts: entries }) = &input.defaults {
        let mut defaults: HashMap<String, String> = entries
            .iter()
            .map(|(key, value)| (key_name(key), value.render()))
            .collect();
        let urls = add_urls(
            &mut defaults,
            [("loki-url", url), ("loki-proxy-url", &None)],
        );
        match LogOptDefaults::parse(&log_opts_json(&defaults), &OptionContext::default()) {
            Err(err) => check_secrets("LOG_OPTS", &defaults, &urls, &err, show_defaults),
            Ok(parsed) => {
                let merged = parsed.apply(&opts);
                for (key, value) in &opts {
                    assert_eq!(merged.get(key), Some(value), "a default overrode {key}");
                }
                let elsewhere = opts
                    .get("loki-url")
                    .is_some_and(|u| parsed.get("loki-url") != Some(u.as_str()));
                for key in OPTIONS.iter().filter(|s| s.credential).map(|s| s.name) {
                    if elsewhere {
                        assert_eq!(
                            merged.get(key),
                            opts.get(key),
                            "the default {key} goes with another loki-url"
                        );
                    } else if !opts.contains_key(key) {
                        assert_eq!(merged.get(key).map(String::as_str), parsed.get(key));
                    }
                }
                let _ = ContainerConfig::from_log_opts(&merged);
            }
        }
    }

    let (clamped, changes) = clamp_to_ranges(&opts);
    for (key, value) in &opts {
        if !table::ranges().any(|(k, _)| k == key) {
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
    for (key, range) in table::ranges() {
        let Some(value) = clamped.get(key) else {
            continue;
        };
        match range {
            Range::Value => {}
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
