//! Every log-opt, once: its name, kind and range, default, whether it is a
//! credential, whether Docker acts on it itself, and its README line.
//! Validation ([`super::options`]), `LOG_OPTS` ([`super::defaults`]), the
//! clamping of recorded options at re-attach and the README's option table
//! all read this list; a test keeps the README in step with it
//! (`UPDATE_README=1 cargo test --lib readme_option_table` rewrites it).

use std::time::Duration;

use super::units::{format_duration, format_size};

// The ranges of the numeric options (see "Why these ranges" in the README).

/// A push that has not been answered in 10 minutes never will be; Loki's
/// own server timeouts are far shorter.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Loki wants fresh lines: its default `reject_old_samples_max_age` and
/// out-of-order window assume seconds of batching, not hours.
pub const MAX_BATCH_WAIT: Duration = Duration::from_secs(60);
/// Below a millisecond a "backoff" is a busy loop against a failing Loki.
pub const MIN_MIN_BACKOFF: Duration = Duration::from_millis(1);
/// A wait of an hour between two retries is already "Loki is gone".
pub const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// With the default 5 min max backoff this is about 35 days of retrying:
/// "forever" in practice, while the count stays a small integer.
pub const MAX_RETRIES: u32 = 10_000;
/// An uncompressed batch beyond 16 MiB is far over Loki's default per-tenant
/// ingestion burst (6 MB) and would be refused with 429 forever; it is also
/// held in memory once more while it is being sent.
pub const MAX_BATCH_SIZE: u64 = 16 << 20;
/// One container's queue; the plugin-wide `TOTAL_BUFFER_SIZE` bounds all of
/// them together anyway.
pub const MAX_BUFFER_SIZE: u64 = 1 << 30;
/// Below 64 KiB the local copy would be renamed, and a compression thread
/// started, every few lines. Docker's own drivers accept smaller values;
/// for this plugin they are refused.
pub const MIN_MAX_SIZE: u64 = 64 << 10;
/// `docker logs --tail` reads a compressed segment from its start, so one
/// segment must stay small enough for that to be quick.
pub const MAX_MAX_SIZE: u64 = 1 << 30;
/// Files per container kept for `docker logs`: any positive number, as
/// json-file and Grafana's driver take it (larger values are kept as this
/// one). The disk is bounded apart, by `loki-journal-size` per container
/// and `LOCAL_STORE_SIZE` overall.
pub const MAX_MAX_FILE: u32 = u32::MAX;
/// A journal smaller than a few segments could not hold an outage's lines.
pub const MIN_JOURNAL_SIZE: u64 = 1 << 20;
/// Up to 1 PiB: far beyond any disk (`LOCAL_STORE_SIZE` bounds all journals).
pub const MAX_JOURNAL_SIZE: u64 = 1 << 50;
/// Pushes in flight to one endpoint: a small bound, Loki's ingesters
/// serialize a stream's appends anyway.
pub const MAX_IN_FLIGHT: u32 = 64;

/// What a value is, and for numbers their range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Go duration in `[min, max]`.
    Duration(Duration, Duration),
    /// A size with Docker's units in `[min, max]` bytes.
    Size(u64, u64),
    /// A whole number in `[min, max]`.
    Count(u32, u32),
    /// Anything else: its parser in [`super::options`] checks it.
    Value,
}

/// One log-opt.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    /// As the README shows it.
    pub default: &'static str,
    /// Limits the README shows besides a numeric range.
    pub limits: &'static str,
    /// It holds or names a credential: a `LOG_OPTS` default goes only with
    /// the defaults' own `loki-url`.
    pub credential: bool,
    /// Docker acts on it before the plugin sees a line: accepted per
    /// container, refused as a `LOG_OPTS` default (it would change nothing).
    pub dockers_own: bool,
    /// Shown in the README row of the option before it.
    pub with_previous: bool,
    /// The README's meaning column.
    pub meaning: &'static str,
}

/// Every log-opt this plugin accepts, in the README's order.
pub const OPTIONS: &[Spec] = &[
    Spec {
        name: "loki-url",
        kind: Kind::Value,
        default: "required, unless `LOG_OPTS` has it",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Push URL, `http(s)://[user:password@]host[:port]/loki/api/v1/push`. Credentials become basic auth and are never logged. Percent-encode `/ ? # @ %` and spaces in them (`%2F %3F %23 %40 %25 %20`). Prefer the options below: a URL with a password shows in `docker inspect`.",
    },
    Spec {
        name: "loki-username",
        kind: Kind::Value,
        default: "none",
        limits: "no `:`",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "Basic auth user name (alone: an empty password, as `https://TOKEN@host`).",
    },
    Spec {
        name: "loki-password",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "Basic auth password, with `loki-username`. Shows in `docker inspect` and compose files: prefer `loki-password-file`.",
    },
    Spec {
        name: "loki-password-file",
        kind: Kind::Value,
        default: "none",
        limits: "a file of the secrets mount, ≤ 64 KiB",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "File holding the password (see [Credentials](#credentials-and-the-secrets-mount)).",
    },
    Spec {
        name: "loki-bearer-token",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "Sent as `Authorization: Bearer …` (Grafana Cloud access policy tokens, OAuth proxies).",
    },
    Spec {
        name: "loki-bearer-token-file",
        kind: Kind::Value,
        default: "none",
        limits: "a file of the secrets mount, ≤ 64 KiB",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "File holding the bearer token; re-read when it changes.",
    },
    Spec {
        name: "loki-headers",
        kind: Kind::Value,
        default: "none",
        limits: "≤ 64",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "Extra headers of every push, `Name=value,Name2=value2` (values without commas). `Authorization`, `Proxy-Authorization`, `X-Scope-OrgID`, `Host`, `Content-*`, and hop-by-hop headers are refused: other options or the plugin set them. Values are never logged, but show in `docker inspect`.",
    },
    Spec {
        name: "loki-structured-metadata",
        kind: Kind::Value,
        default: "`container_id={{.FullID}}`",
        limits: "≤ 128 names",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Loki 3 structured metadata of every entry, `name=template,...` like `loki-external-labels`; names are label names; empty values are left out. `\"\"` sends none. See [Structured metadata](#structured-metadata-and-service_name).",
    },
    Spec {
        name: "loki-service-name",
        kind: Kind::Value,
        default: "compose or swarm service",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Template for the `service_name` label. By default the compose service (`com.docker.compose.service`), else the swarm service (`com.docker.swarm.service.name`), else none. `\"\"` sends none.",
    },
    Spec {
        name: "loki-external-labels",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "`name=value,...` added to the default labels; values are Docker log templates (`{{.Name}}`, `{{.ID}}`, `{{.FullID}}`, `{{.ImageName}}`, `{{.ImageID}}`, `{{.ImageFullID}}`, `{{.Command}}`, `{{.DaemonName}}`, `{{.Hostname}}`, and container labels with `{{index .ContainerLabels \"name\"}}`).",
    },
    Spec {
        name: "loki-timeout",
        kind: Kind::Duration(Duration::from_millis(1), MAX_TIMEOUT),
        default: "`10s`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Time limit of one push request (Go duration).",
    },
    Spec {
        name: "loki-batch-wait",
        kind: Kind::Duration(Duration::ZERO, MAX_BATCH_WAIT),
        default: "`1s`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Longest time a line waits for its batch.",
    },
    Spec {
        name: "loki-batch-size",
        kind: Kind::Size(1, MAX_BATCH_SIZE),
        default: "`1048576`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Bytes of lines that make a batch be sent at once. Structured metadata counts too (it goes with every entry), so a push of short lines stays as small as without it.",
    },
    Spec {
        name: "loki-min-backoff",
        kind: Kind::Duration(MIN_MIN_BACKOFF, MAX_BACKOFF),
        default: "`500ms`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "First wait before a retry.",
    },
    Spec {
        name: "loki-max-backoff",
        kind: Kind::Duration(MIN_MIN_BACKOFF, MAX_BACKOFF),
        default: "`5m`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Longest wait between retries.",
    },
    Spec {
        name: "loki-retries",
        kind: Kind::Count(0, MAX_RETRIES),
        default: "`10`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Retries of a container's lines that Loki blamed (429, 500, a timeout of that container's own push), after the first attempt; then they are dropped and counted. `0` sends once. An unreachable Loki, a connection reset, an answer that is not HTTP, 502, 503 and 504 never count: the lines wait in the journal (see [below](#what-happens-when-things-go-wrong)).",
    },
    Spec {
        name: "loki-tenant-id",
        kind: Kind::Value,
        default: "none",
        limits: "≤ 150 bytes",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Sent as `X-Scope-OrgID`. May be a template (`team-{{index .ContainerLabels \"team\"}}`): rendered per container; a value that renders empty or too long fails the start.",
    },
    Spec {
        name: "loki-buffer-size",
        kind: Kind::Size(1, MAX_BUFFER_SIZE),
        default: "`16m`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Bound on this container's lines held in memory. Past it the oldest leave memory; they stay in the journal and are read back from disk for delivery. Dropped (`memory_full`) only when the journal does not have them (`DATA_DIR` empty, or a disk behind by 8 MiB). **Unset**, lines already written to the journal leave memory past 1 MiB, so a Loki that lags costs the plugin disk reads rather than 16 MB per container (the 200,000-line run peaks at 12–15 MB instead of 31–38 MB); lines not on disk (`DATA_DIR` empty, a full disk) are still kept up to 16 MiB. Set, it is the bound for every line.",
    },
    Spec {
        name: "loki-journal-size",
        kind: Kind::Size(MIN_JOURNAL_SIZE, MAX_JOURNAL_SIZE),
        default: "`1g`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Bound on this container's journal on disk, held as lines are written: the oldest closed segments go first, delivered or not, and undelivered lines in them are counted as dropped (`journal_full`). Segments are closed at an eighth of it at most, so it holds without waiting for a segment to fill. `LOCAL_STORE_SIZE` bounds all journals together.",
    },
    Spec {
        name: "loki-max-in-flight",
        kind: Kind::Count(1, MAX_IN_FLIGHT),
        default: "`4`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Pushes in flight at once to this endpoint (containers with the same URL and options share one). A slow or retried push does not hold the others. A container with a backlog has up to two of them, where Loki takes a stream's lines out of order (see [What happens when things go wrong](#what-happens-when-things-go-wrong)); `1` sends one push at a time.",
    },
    Spec {
        name: "loki-drop-rate-limited-batches",
        kind: Kind::Value,
        default: "`false`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Grafana's behaviour for 429: drop the refused lines at once (counted `rate_limited`) instead of retrying them.",
    },
    Spec {
        name: "loki-tls-ca-file",
        kind: Kind::Value,
        default: "system + bundled roots",
        limits: "regular file ≤ 1 MiB",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "PEM CA bundle to trust instead.",
    },
    Spec {
        name: "loki-tls-cert-file",
        kind: Kind::Value,
        default: "none",
        limits: "regular files ≤ 1 MiB",
        credential: true,
        dockers_own: false,
        with_previous: false,
        meaning: "Client certificate and key (PEM), for mTLS.",
    },
    Spec {
        name: "loki-tls-key-file",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: true,
        dockers_own: false,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "loki-tls-server-name",
        kind: Kind::Value,
        default: "URL host",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Name sent as SNI and checked in the server certificate.",
    },
    Spec {
        name: "loki-tls-insecure-skip-verify",
        kind: Kind::Value,
        default: "`false`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Accept any server certificate.",
    },
    Spec {
        name: "loki-proxy-url",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "HTTP proxy, used with CONNECT (`http://[user:pass@]proxy:3128`).",
    },
    Spec {
        name: "labels",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Container labels (by name, or matching the regex) to add as Loki labels.",
    },
    Spec {
        name: "labels-regex",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "env",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Environment variables (by name, or matching the regex) to add as Loki labels.",
    },
    Spec {
        name: "env-regex",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "tag",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Docker log template; its value becomes the `tag` label.",
    },
    Spec {
        name: "mode",
        kind: Kind::Value,
        default: "Docker's",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: false,
        meaning: "Docker's own options for its ring buffer in front of the plugin; accepted.",
    },
    Spec {
        name: "max-buffer-size",
        kind: Kind::Size(1, u64::MAX),
        default: "",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "no-file",
        kind: Kind::Value,
        default: "`false`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Keep nothing for `docker logs`: journal segments are deleted as soon as they are delivered, and `docker logs` answers a clear error. Lines still go through the journal, so they survive crashes and outages.",
    },
    Spec {
        name: "keep-file",
        kind: Kind::Value,
        default: "`false`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Keep the journal after the container is removed (by default it goes with the container, not at stop).",
    },
    Spec {
        name: "max-size",
        kind: Kind::Size(MIN_MAX_SIZE, MAX_MAX_SIZE),
        default: "`20m`",
        limits: "or `-1`",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Size of a journal segment: the current one is closed at this size. `-1`: `docker logs` keeps everything (up to `loki-journal-size`); segments are then cut at 64 MiB so delivered ones can still go.",
    },
    Spec {
        name: "max-file",
        kind: Kind::Count(1, MAX_MAX_FILE),
        default: "`5`",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Segments kept for `docker logs`, the current one included: delivered lines beyond `max-size` × `max-file` are deleted. Undelivered lines are kept beyond it, up to `loki-journal-size`. Any positive number is taken, as json-file and Grafana's driver take it; the disk stays bounded apart by `loki-journal-size` per container and `LOCAL_STORE_SIZE` overall, so a large `max-file` keeps `docker logs` history up to those bounds, no further.",
    },
    Spec {
        name: "cache-disabled",
        kind: Kind::Value,
        default: "Docker's",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: false,
        meaning: "Settings of dockerd's own log cache; accepted.",
    },
    Spec {
        name: "cache-max-size",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "cache-max-file",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "cache-compress",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: true,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "loki-pipeline-stages",
        kind: Kind::Value,
        default: "none",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: false,
        meaning: "Grafana's pipeline stages and relabelling: see [Pipeline stages and relabelling](#pipeline-stages-and-relabelling).",
    },
    Spec {
        name: "loki-pipeline-stage-file",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: true,
        meaning: "",
    },
    Spec {
        name: "loki-relabel-config",
        kind: Kind::Value,
        default: "",
        limits: "",
        credential: false,
        dockers_own: false,
        with_previous: true,
        meaning: "",
    },
];

/// The option `name`.
pub fn spec(name: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|s| s.name == name)
}

/// Every option's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|s| s.name)
}

/// The numeric options and their ranges.
pub fn ranges() -> impl Iterator<Item = (&'static str, Kind)> {
    OPTIONS
        .iter()
        .filter(|s| s.kind != Kind::Value)
        .map(|s| (s.name, s.kind))
}

/// Whether `name` holds or names a credential.
pub fn is_credential(name: &str) -> bool {
    spec(name).is_some_and(|s| s.credential)
}

/// Whether Docker acts on `name` itself.
pub fn is_dockers_own(name: &str) -> bool {
    spec(name).is_some_and(|s| s.dockers_own)
}

/// A numeric range as the README shows it (`1ms–10m`).
fn range_text(kind: Kind) -> String {
    match kind {
        Kind::Duration(min, max) => format!("{}–{}", short_duration(min), format_duration(max)),
        Kind::Size(min, max) => format!("{}–{}", format_size(min), format_size(max)),
        Kind::Count(min, u32::MAX) => format!("any whole number from {min}"),
        Kind::Count(min, max) => format!("{min}–{max}"),
        Kind::Value => String::new(),
    }
}

fn short_duration(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        format_duration(d)
    }
}

/// The README's option table, rendered from [`OPTIONS`].
pub fn readme_table() -> String {
    let mut out = String::from("| option | default | range | meaning |\n|---|---|---|---|\n");
    let mut i = 0;
    while i < OPTIONS.len() {
        let first = &OPTIONS[i];
        let mut names = vec![format!("`{}`", first.name)];
        let mut j = i + 1;
        while j < OPTIONS.len() && OPTIONS[j].with_previous {
            names.push(format!("`{}`", OPTIONS[j].name));
            j += 1;
        }
        let range = match (range_text(first.kind).as_str(), first.limits) {
            ("", limits) => limits.to_string(),
            (range, "") => range.to_string(),
            (range, limits) => format!("{range} {limits}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            names.join(", "),
            first.default,
            range,
            first.meaning
        ));
        i = j;
    }
    // A blank line ends the table before the marker that follows it.
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table is this list: `UPDATE_README=1` rewrites it.
    #[test]
    fn readme_option_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let begin = "<!-- options table: generated from src/config/table.rs -->\n";
        let end = "<!-- end of options table -->";
        let start = readme
            .find(begin)
            .expect("the README marks its option table")
            + begin.len();
        let stop = start
            + readme[start..]
                .find(end)
                .expect("the table's end is marked");
        let table = readme_table();
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[stop..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert_eq!(
            &readme[start..stop],
            table,
            "the README's option table is out of date: run UPDATE_README=1 cargo test --lib readme_option_table"
        );
    }

    #[test]
    fn every_option_once() {
        let mut seen = std::collections::HashSet::new();
        for spec in OPTIONS {
            assert!(seen.insert(spec.name), "{} twice", spec.name);
            assert!(!spec.with_previous || !spec.meaning.is_empty() || spec.default.is_empty());
        }
        assert!(!OPTIONS[0].with_previous);
    }
}
