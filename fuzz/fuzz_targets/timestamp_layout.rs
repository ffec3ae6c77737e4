//! The `timestamp` stage's formats: named formats, Unix forms, Go reference
//! layouts, fallbacks and locations; and Go's `Time.Format`.
//!
//! Invariants: never a panic or a hang for any layout, value, zone name or
//! time; parsing the output of `format` with the same layout (in UTC, for
//! layouts with every field) gives the time back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::process::gotime::{self, TimestampParser};

#[derive(Debug, Arbitrary)]
struct Input {
    format: String,
    fallbacks: Vec<String>,
    location: Option<String>,
    value: String,
    now: i64,
    ts: i64,
}

fuzz_target!(|input: Input| {
    let fallbacks: Vec<&str> = input.fallbacks.iter().take(4).map(String::as_str).collect();
    if let Ok(parser) = TimestampParser::new(&input.format, &fallbacks, input.location.as_deref()) {
        let _ = parser.parse(&input.value, input.now);
    }
    let _ = gotime::format(input.ts, &input.format, &jiff::tz::TimeZone::UTC);
    // RFC 3339 with nanoseconds names every field: a round trip.
    let text = gotime::format(input.ts, gotime::RFC3339_NANO, &jiff::tz::TimeZone::UTC);
    let back = gotime::parse_layout(gotime::RFC3339_NANO, &text, None)
        .map(|t| t.unix_nanos_saturating());
    assert_eq!(back, Ok(input.ts), "{text}");
});
