//! What a push's outcome means, as pure functions: the verdict on an
//! answer, the streams Loki blames in it, `Retry-After`, and the backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use hyper::StatusCode;

/// What one push attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Loki answered; `body` is the start of its answer.
    Answered {
        status: StatusCode,
        body: String,
        retry_after: Option<Duration>,
    },
    /// No answer.
    Failed { reason: String, kind: FailKind },
}

/// Why there was no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// Loki could not be reached at all: DNS, connection refused, TLS.
    Unreachable,
    /// No answer within `loki-timeout`.
    Timeout,
    /// The connection broke during the exchange (reset, closed before an
    /// answer), or what came back was not HTTP: a network fault, judged
    /// like [`FailKind::Unreachable`].
    Interrupted,
}

/// What to do with the lines of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Loki answered 260: the tenant's ingestion is blocked and Loki
    /// dropped the lines (they count as dropped, `blocked`).
    Blocked,
    /// Loki, or a gateway in front of it, refuses every push for now: 401
    /// and 403 (an expired or rotated credential), 404 (a gateway during a
    /// deploy). Like [`Verdict::Unavailable`], the endpoint waits as a
    /// whole and the lines wait in the journal: it costs disk, not lines.
    Refused {
        retry_after: Option<Duration>,
    },
    /// Loki will never take them (4xx other than 429, or a permanent 5xx
    /// such as 501). `blamed`: the streams Loki named, if it named any.
    Rejected {
        blamed: Vec<Labels>,
    },
    /// The push is too large for Loki or a proxy in front of it (413): it
    /// is sent again in smaller pushes.
    TooLarge,
    /// Rate limited (429): with streams named, only they are over their
    /// limit; with none, the tenant as a whole is.
    RateLimited {
        blamed: Vec<Labels>,
        retry_after: Option<Duration>,
    },
    /// Loki failed on this push (500, a timeout): worth retrying, and
    /// counted against `loki-retries`.
    Failed {
        retry_after: Option<Duration>,
    },
    /// Loki is unreachable or says it is unavailable (connection errors,
    /// 502, 503, 504 from Loki or a proxy in front of it): the endpoint
    /// waits as a whole, and no attempt is counted.
    Unavailable {
        retry_after: Option<Duration>,
    },
}

/// A label set as Loki prints it in answers.
pub type Labels = BTreeMap<String, String>;

/// The verdict on a push result.
pub fn judge(result: &PushResult) -> Verdict {
    match result {
        // A reset or an answer that is not HTTP says nothing about these
        // lines: a Loki process or a proxy died, or something else
        // listens there. Like an unreachable Loki, it never counts
        // against `loki-retries`.
        PushResult::Failed {
            kind: FailKind::Unreachable | FailKind::Interrupted,
            ..
        } => Verdict::Unavailable { retry_after: None },
        PushResult::Failed {
            kind: FailKind::Timeout,
            ..
        } => Verdict::Failed { retry_after: None },
        PushResult::Answered {
            status,
            body,
            retry_after,
        } => {
            let retry_after = *retry_after;
            match status.as_u16() {
                260 => Verdict::Blocked,
                200..=299 => Verdict::Delivered,
                401 | 403 | 404 => Verdict::Refused { retry_after },
                413 => Verdict::TooLarge,
                429 => Verdict::RateLimited {
                    blamed: blamed_streams(body),
                    retry_after,
                },
                502..=504 => Verdict::Unavailable { retry_after },
                500 => Verdict::Failed { retry_after },
                _ => Verdict::Rejected {
                    blamed: blamed_streams(body),
                },
            }
        }
    }
}

/// Whether Loki refused a push because it carried structured metadata that
/// it does not take: a Loki 3 with `allow_structured_metadata: false` (or a
/// schema before v13) answers 400 `stream '{...}' includes structured
/// metadata, but this feature is disallowed. Please see
/// `limits_config.allow_structured_metadata` ...`. (Loki 2.7.5 answers 204
/// to protobuf pushes with metadata and drops the metadata.)
pub fn refuses_structured_metadata(result: &PushResult) -> bool {
    let PushResult::Answered { status, body, .. } = result else {
        return false;
    };
    let lower = body.to_ascii_lowercase();
    status.as_u16() == 400
        && lower.contains("structured metadata")
        && ["disallowed", "not allowed", "disabled", "not enabled"]
            .iter()
            .any(|word| lower.contains(word))
}

/// Whether Loki refused entries for coming after a newer one of their
/// stream: a 400 saying `entry out of order` (a tenant with
/// `unordered_writes` off).
pub fn refuses_out_of_order(result: &PushResult) -> bool {
    let PushResult::Answered { status, body, .. } = result else {
        return false;
    };
    status.as_u16() == 400 && body.to_ascii_lowercase().contains("entry out of order")
}

/// The metrics class of a push result.
pub fn class(result: &PushResult) -> crate::observe::PushClass {
    use crate::observe::PushClass;
    match result {
        PushResult::Answered { status, .. } => match status.as_u16() {
            200..=299 => PushClass::Success,
            429 => PushClass::RateLimited,
            400..=499 => PushClass::ClientError,
            _ => PushClass::ServerError,
        },
        PushResult::Failed {
            kind: FailKind::Unreachable,
            ..
        } => PushClass::Unreachable,
        PushResult::Failed {
            kind: FailKind::Interrupted,
            ..
        } => PushClass::Reset,
        PushResult::Failed {
            kind: FailKind::Timeout,
            ..
        } => PushClass::Timeout,
    }
}

/// The label sets Loki names in an answer (`stream '{a="1", b="2"}'`).
pub fn blamed_streams(body: &str) -> Vec<Labels> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('{') {
        let candidate = &rest[open..];
        match parse_labels(candidate) {
            Some((labels, used)) => {
                if !labels.is_empty() && !found.contains(&labels) {
                    found.push(labels);
                }
                rest = &candidate[used..];
            }
            None => rest = &candidate[1..],
        }
    }
    found
}

/// Parses `{name="value", ...}` at the start of `text`; returns the labels
/// and the bytes used.
fn parse_labels(text: &str) -> Option<(Labels, usize)> {
    let mut labels = Labels::new();
    let bytes = text.as_bytes();
    let mut i = 1;
    loop {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if bytes.get(i) == Some(&b'}') {
            return Some((labels, i + 1));
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start || bytes.get(i) != Some(&b'=') || bytes.get(i + 1) != Some(&b'"') {
            return None;
        }
        let name = text[start..i].to_string();
        i += 2;
        let mut value = String::new();
        loop {
            let c = text[i..].chars().next()?;
            i += c.len_utf8();
            match c {
                '"' => break,
                '\\' => {
                    let escaped = text[i..].chars().next()?;
                    i += escaped.len_utf8();
                    value.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                }
                c => value.push(c),
            }
        }
        labels.insert(name, value);
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Some((labels, i + 1)),
            _ => return None,
        }
    }
}

/// How many of a refused stream's `lines` Loki did not store. Loki keeps
/// the valid entries of a stream it answers 400 for, so not every line of
/// a blamed stream is lost: for a line over its `max_line_size`, the lines
/// longer than that; when Loki 3 counts the errors (`2 errors like: ...`),
/// that many; otherwise, all of them.
pub fn refused_lines(body: &str, lengths: &[usize]) -> u64 {
    let total = lengths.len() as u64;
    let lower = body.to_ascii_lowercase();
    if let Some(limit) = number_after(&lower, "max entry size '") {
        return lengths.iter().filter(|&&len| len as u64 > limit).count() as u64;
    }
    let counted: u64 = lower
        .match_indices(" errors like:")
        .filter_map(|(at, _)| {
            let digits: String = lower[..at]
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            digits.parse::<u64>().ok()
        })
        // Saturating: Loki's counts are small, but an answer is not trusted.
        .fold(0, u64::saturating_add);
    if counted > 0 {
        return counted.min(total);
    }
    // Loki's ingester lists the entries it ignored and counts them:
    // `total ignored: 3 out of 4` (for each stream it names).
    let ignored: u64 = lower
        .match_indices("total ignored: ")
        .filter_map(|(at, marker)| number_after(&lower[at..], marker))
        .fold(0, u64::saturating_add);
    if ignored > 0 {
        ignored.min(total)
    } else {
        total
    }
}

/// The reason the lines Loki refused in a 400 are dropped for: every reason
/// Loki gives is "entry too far behind" (a replay older than its
/// out-of-order window, about an hour behind the newest line of the
/// stream): `too_far_behind`; anything else: `rejected`.
pub fn refusal_reason(body: &str) -> crate::observe::DropReason {
    use crate::observe::DropReason;
    let lower = body.to_ascii_lowercase();
    if !lower.contains("too far behind") {
        return DropReason::Rejected;
    }
    // Each reason Loki lists: `ignored, reason: '...'` per entry (the
    // ingester), `N errors like: ...` per group (the distributor).
    let reasons: Vec<&str> = lower
        .split("reason: '")
        .skip(1)
        .chain(lower.split(" errors like: ").skip(1))
        .collect();
    if reasons
        .iter()
        .all(|r| r.starts_with("entry too far behind"))
    {
        DropReason::TooFarBehind
    } else {
        DropReason::Rejected
    }
}

/// The number right after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The per-stream rate Loki states in a 429, in bytes a second: `Per
/// stream rate limit exceeded (limit: 256KB/sec)` (Loki prints its limits
/// in base-2 units: 256KB is 262,144 bytes).
pub fn stream_rate(body: &str) -> Option<f64> {
    let lower = body.to_ascii_lowercase();
    let marker = "stream rate limit exceeded (limit: ";
    let at = lower.find(marker)? + marker.len();
    let rest = &lower[at..];
    let end = rest.find("/sec")?;
    let text = rest[..end].trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok()?;
    let unit = match text[split..].trim() {
        "" | "b" | "bytes" => 1u64,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    Some(number * unit as f64).filter(|r| r.is_finite() && *r > 0.0)
}

/// Loki's count of the entries of a stream it ignored: `total ignored: 3
/// out of 4` (ignored, total).
pub fn ignored(body: &str) -> Option<(u64, u64)> {
    let lower = body.to_ascii_lowercase();
    let marker = "total ignored: ";
    let at = lower.find(marker)? + marker.len();
    let ignored = number_after(&lower[at - marker.len()..], marker)?;
    let of = number_after(&lower[at..], " out of ")?;
    Some((ignored, of))
}

/// The timestamp (ns since the epoch) of the first entry Loki lists as
/// ignored: `entry with timestamp 2026-12-06 13:51:07.236002957 +0000 UTC
/// ignored` (Go's `time.Time.String()`).
pub fn first_ignored(body: &str) -> Option<i64> {
    let marker = "entry with timestamp ";
    let at = body.find(marker)? + marker.len();
    let rest = &body[at..];
    let end = rest.find(" ignored")?;
    parse_go_time(&rest[..end])
}

/// Parses Go's `2006-01-02 15:04:05.999999999 -0700 MST`.
fn parse_go_time(text: &str) -> Option<i64> {
    let mut words = text.split(' ');
    let (date, time, offset) = (words.next()?, words.next()?, words.next()?);
    let mut ymd = date.splitn(3, '-');
    let year: i16 = ymd.next()?.parse().ok()?;
    let month: i8 = ymd.next()?.parse().ok()?;
    let day: i8 = ymd.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = clock.splitn(3, ':');
    let hour: i8 = hms.next()?.parse().ok()?;
    let minute: i8 = hms.next()?.parse().ok()?;
    let second: i8 = hms.next()?.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = offset.get(1..5)?;
    let offset_seconds =
        sign * (digits[..2].parse::<i32>().ok()? * 3600 + digits[2..].parse::<i32>().ok()? * 60);
    let civil = jiff::civil::DateTime::new(year, month, day, hour, minute, second, nanos).ok()?;
    let offset = jiff::tz::Offset::from_seconds(offset_seconds).ok()?;
    let stamp = offset.to_timestamp(civil).ok()?;
    i64::try_from(stamp.as_nanosecond()).ok()
}

/// Whether Loki's blamed set is this stream: every label the plugin sent
/// is there with its value (Loki may add some, such as `service_name`).
pub fn is_blamed(stream: &Labels, blamed: &[Labels]) -> bool {
    blamed
        .iter()
        .any(|b| stream.iter().all(|(k, v)| b.get(k) == Some(v)))
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// Exponential backoff with jitter between `min` and `max`: the wait
/// before retry `n` (1-based), never outside `[min, max]`, and at least
/// what Loki asked for with `Retry-After` (up to `max`).
pub fn backoff(min: Duration, max: Duration, n: u32, retry_after: Option<Duration>) -> Duration {
    let delay = ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(n.max(1) as usize)
        .build()
        .take(n.max(1) as usize)
        .last()
        .unwrap_or(min)
        .clamp(min, max);
    match retry_after {
        Some(asked) => delay.max(asked.min(max)),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: u16, body: &str) -> PushResult {
        PushResult::Answered {
            status: StatusCode::from_u16(code).unwrap(),
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&answered(204, "")), Verdict::Delivered);
        assert!(matches!(
            judge(&answered(429, "")),
            Verdict::RateLimited { .. }
        ));
        assert_eq!(
            judge(&answered(500, "")),
            Verdict::Failed { retry_after: None }
        );
        for code in [502, 503, 504] {
            assert!(
                matches!(judge(&answered(code, "")), Verdict::Unavailable { .. }),
                "{code}"
            );
        }
        assert_eq!(judge(&answered(260, "blocked")), Verdict::Blocked);
        for code in [401, 403, 404] {
            assert!(
                matches!(judge(&answered(code, "")), Verdict::Refused { .. }),
                "{code}"
            );
        }
        assert_eq!(judge(&answered(413, "")), Verdict::TooLarge);
        for code in [400, 422, 501, 505] {
            assert!(
                matches!(judge(&answered(code, "")), Verdict::Rejected { .. }),
                "{code}"
            );
        }
        let unreachable = PushResult::Failed {
            reason: "connection refused".into(),
            kind: FailKind::Unreachable,
        };
        assert!(matches!(judge(&unreachable), Verdict::Unavailable { .. }));
        let reset = PushResult::Failed {
            reason: "connection reset by peer".into(),
            kind: FailKind::Interrupted,
        };
        assert!(matches!(judge(&reset), Verdict::Unavailable { .. }));
        let timeout = PushResult::Failed {
            reason: "no answer".into(),
            kind: FailKind::Timeout,
        };
        assert!(matches!(judge(&timeout), Verdict::Failed { .. }));
    }

    #[test]
    fn each_failure_has_its_metrics_status() {
        use crate::observe::PushClass;
        let failed = |kind| PushResult::Failed {
            reason: String::new(),
            kind,
        };
        assert_eq!(
            class(&failed(FailKind::Unreachable)),
            PushClass::Unreachable
        );
        assert_eq!(class(&failed(FailKind::Timeout)), PushClass::Timeout);
        assert_eq!(class(&failed(FailKind::Interrupted)), PushClass::Reset);
        assert_eq!(class(&answered(503, "")).as_str(), "5xx");
        assert_eq!(class(&answered(204, "")).as_str(), "2xx");
    }

    #[test]
    fn the_streams_loki_blames_are_found_in_its_answers() {
        let per_stream = "Per stream rate limit exceeded (limit: 3MB/sec) while attempting to ingest for stream '{container_name=\"busy\", service_name=\"busy\", source=\"stdout\"}' totaling 4096B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased";
        let blamed = blamed_streams(per_stream);
        assert_eq!(blamed.len(), 1);
        let ours: Labels = [("container_name", "busy"), ("source", "stdout")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            is_blamed(&ours, &blamed),
            "Loki's added labels do not hide us"
        );
        let mut other = ours.clone();
        other.insert("source".into(), "stderr".into());
        assert!(!is_blamed(&other, &blamed));
        let tenant = "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '100' lines totaling '12345' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased";
        assert!(blamed_streams(tenant).is_empty());
        let escaped = r#"entry for stream '{a="x\"y", b="1"}' has timestamp too old"#;
        assert_eq!(blamed_streams(escaped)[0]["a"], "x\"y");
        assert!(blamed_streams("{not labels} {}").is_empty());
    }

    #[test]
    fn a_refusal_of_structured_metadata_is_recognised() {
        let loki3 = "stream '{job=\"a\", service_name=\"a\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it";
        assert!(refuses_structured_metadata(&answered(400, loki3)));
        assert_eq!(blamed_streams(loki3)[0]["job"], "a");
        assert!(!refuses_structured_metadata(&answered(429, loki3)));
        assert!(!refuses_structured_metadata(&answered(
            400,
            "entry for stream '{a=\"b\"}' has timestamp too old"
        )));
    }

    #[test]
    fn only_the_lines_loki_refused_count_as_refused() {
        let too_long = "max entry size '262144' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '300000' bytes";
        assert_eq!(refused_lines(too_long, &[30, 300_000, 30]), 1);
        let counted = "2 errors like: entry for stream '{a=\"b\"}' has timestamp too old; 1 errors like: entry for stream '{a=\"b\"}' has timestamp too new";
        assert_eq!(refused_lines(counted, &[1; 10]), 3);
        let ingester = "entry with timestamp 2026-12-06 11:53:58.2 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-12-06T11:53:58Z, oldest acceptable timestamp is: 2026-12-06T12:53:58Z',\nuser 'fake', total ignored: 3 out of 4 for stream: {a=\"b\"}";
        assert_eq!(refused_lines(ingester, &[1; 4]), 3);
        let whole = "stream '{a=\"b\"}' has duplicate label name: 'a'";
        assert_eq!(refused_lines(whole, &[1; 4]), 4);
    }

    #[test]
    fn the_per_stream_rate_and_the_ignored_entries_are_read_from_the_answer() {
        // Loki 3.7.6 with per_stream_rate_limit: 256KB, as measured.
        let loki3 = "entry with timestamp 2026-12-06 13:51:07.236002957 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 256KB/sec) while attempting to ingest for stream '{job=\"t1\", service_name=\"t1\"}' totaling 1KB, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased',\nuser 'fake', total ignored: 1024 out of 1024 for stream: {job=\"t1\", service_name=\"t1\"}\n";
        assert_eq!(stream_rate(loki3), Some(262_144.0));
        assert_eq!(ignored(loki3), Some((1024, 1024)));
        assert_eq!(first_ignored(loki3), Some(1_796_565_067_236_002_957));
        let loki2 = "entry with timestamp 2026-12-06 13:51:43.0464967 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 3MB/sec) while attempting ...' for stream: {job=\"t2\"},\ntotal ignored: 512 out of 1024\n";
        assert_eq!(stream_rate(loki2), Some(3.0 * 1048576.0));
        assert_eq!(ignored(loki2), Some((512, 1024)));
        assert_eq!(first_ignored(loki2), Some(1_796_565_103_046_496_700));
        assert_eq!(
            parse_go_time("2026-12-06 14:51:43 +0100 CET"),
            Some(1_796_565_103_000_000_000)
        );
        let tenant = "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '100' lines totaling '12345' bytes";
        assert_eq!(stream_rate(tenant), None);
        assert_eq!(
            stream_rate("Per stream rate limit exceeded (limit: lots/sec)"),
            None
        );
    }

    #[test]
    fn lines_too_far_behind_have_their_own_reason() {
        use crate::observe::DropReason;
        let loki3 = "entry with timestamp 2026-12-06 11:53:58.200896926 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-12-06T11:53:58Z, oldest acceptable timestamp is: 2026-12-06T12:53:58Z',\nuser 'fake', total ignored: 3 out of 4 for stream: {job=\"old1\", service_name=\"old1\"}\n";
        let loki2 = "entry with timestamp 2026-12-06 11:53:58.734659137 +0000 UTC ignored, reason: 'entry too far behind, oldest acceptable timestamp is: 2026-12-06T12:53:58Z' for stream: {job=\"old2\"},\ntotal ignored: 3 out of 4\n";
        assert_eq!(refusal_reason(loki3), DropReason::TooFarBehind);
        assert_eq!(refusal_reason(loki2), DropReason::TooFarBehind);
        let mixed = "entry with timestamp x ignored, reason: 'entry too far behind, ...',\nentry with timestamp y ignored, reason: 'line too long',\ntotal ignored: 2 out of 2";
        assert_eq!(refusal_reason(mixed), DropReason::Rejected);
        assert_eq!(
            refusal_reason("entry for stream '{a=\"b\"}' has timestamp too old"),
            DropReason::Rejected
        );
    }

    /// Found by fuzzing (fuzz/ loki_answers): counts that add up past
    /// u64::MAX overflowed (a panic with overflow checks; without them a
    /// wrapped, too small count of refused lines).
    #[test]
    fn huge_error_counts_do_not_overflow() {
        let fuzzed = "14762209770020916738 errors like:11111111111111100001 errors like:";
        assert_eq!(refused_lines(fuzzed, &[1; 3]), 3);
        let body = "18446744073709551615 errors like: x; 1 errors like: y";
        assert_eq!(refused_lines(body, &[1; 3]), 3);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_stays_in_bounds_and_honours_retry_after() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(5));
        for _ in 0..50 {
            for n in 1..12 {
                let d = backoff(min, max, n, None);
                assert!(d >= min && d <= max, "{n}: {d:?}");
            }
            assert!(backoff(min, max, 1, None) < Duration::from_secs(1));
            assert_eq!(backoff(min, max, 20, None), max);
        }
        assert_eq!(
            backoff(min, max, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(min, max, 1, Some(Duration::from_secs(3600))), max);
    }
}
