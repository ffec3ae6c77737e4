//! The times of a ReadLogs request (`Since`, `Until`), as the daemon sends
//! them: Go's `time.Time` marshalled as RFC 3339 with up to nanoseconds, and
//! Go's zero time `0001-01-01T00:00:00Z` for "not set".
//!
//! Parsing is jiff's (its RFC 3339 / ISO 8601 grammar, without time zone
//! names); this module only maps the result onto the local copy's
//! clock, `i64` nanoseconds since the Unix epoch, which spans 1677-09-21 to
//! 2262-04-11. A valid time outside that span saturates at its end, so a
//! `Since` in the year 9999 selects no line and an `Until` in 9999 selects
//! every line. Malformed input is an error, never a panic.

use jiff::civil::{Date, DateTime, Time};
use jiff::fmt::temporal::Pieces;
use jiff::tz::Offset;

use crate::config::units::shorten;

/// Parses a ReadLogs `Since` or `Until`. `Ok(None)` means no bound (empty,
/// or Go's zero time); `Ok(Some(ns))` is nanoseconds since the Unix epoch,
/// saturated at the ends of `i64`.
pub fn parse_time(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        format!(
            "invalid time {:?}: {why}; expected RFC 3339, like 2026-01-02T15:04:05.999999999Z",
            shorten(text, 64)
        )
    };
    let pieces = Pieces::parse(text).map_err(|e| bad(&shorten(&e.to_string(), 200)))?;
    if pieces.time_zone_annotation().is_some() {
        return Err(bad("a time zone name is not RFC 3339"));
    }
    let time = pieces.time().ok_or_else(|| bad("no time of day"))?;
    let offset = pieces
        .to_numeric_offset()
        .ok_or_else(|| bad("no UTC offset (Z or ±hh:mm)"))?;
    let date = pieces.date();
    if date == Date::constant(1, 1, 1) && time == Time::midnight() && offset == Offset::UTC {
        return Ok(None);
    }
    // i64 nanoseconds end in April 2262 and begin in September 1677; with
    // an offset of at most ±26 h, any year strictly between is exact below.
    if date.year() > 2262 {
        return Ok(Some(i64::MAX));
    }
    if date.year() < 1678 {
        return Ok(Some(i64::MIN));
    }
    let timestamp = offset
        .to_timestamp(DateTime::from_parts(date, time))
        .map_err(|e| bad(&shorten(&e.to_string(), 200)))?;
    let nanos = timestamp.as_nanosecond();
    Ok(Some(i64::try_from(nanos).unwrap_or(if nanos < 0 {
        i64::MIN
    } else {
        i64::MAX
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_times_the_daemon_sends() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), Ok(None));
        assert_eq!(parse_time(""), Ok(None));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(Some(0)));
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            Ok(Some(1_767_225_600_000_000_000))
        );
        assert_eq!(
            parse_time("2026-01-01T01:00:00+01:00"),
            Ok(Some(1_767_225_600_000_000_000))
        );
        assert_eq!(
            parse_time("2026-11-21T11:02:40.924915331Z"),
            Ok(Some(1_795_258_960_924_915_331))
        );
        assert_eq!(
            parse_time("2000-02-29T12:00:00.5-03:30"),
            Ok(Some(951_838_200_500_000_000))
        );
        assert_eq!(
            parse_time("1969-12-31T23:59:59.999999999Z"),
            Ok(Some(-1)),
            "before the epoch"
        );
    }

    #[test]
    fn times_outside_i64_nanoseconds_saturate() {
        assert_eq!(
            parse_time("9999-12-31T23:59:59.999999999Z"),
            Ok(Some(i64::MAX))
        );
        assert_eq!(parse_time("2262-04-12T00:00:00Z"), Ok(Some(i64::MAX)));
        assert_eq!(
            parse_time("2262-04-11T23:47:16.854775807Z"),
            Ok(Some(i64::MAX)),
            "the last representable nanosecond"
        );
        assert_eq!(
            parse_time("2262-04-11T23:47:16.854775806Z"),
            Ok(Some(i64::MAX - 1))
        );
        assert_eq!(parse_time("1677-01-01T00:00:00Z"), Ok(Some(i64::MIN)));
        assert_eq!(
            parse_time("0001-01-01T00:00:00.000000001Z"),
            Ok(Some(i64::MIN))
        );
        assert_eq!(parse_time("0001-01-01T00:00:01Z"), Ok(Some(i64::MIN)));
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let alphabet = [
            "2026",
            "0001",
            "9999",
            "-",
            "01",
            "12",
            "31",
            "T",
            "t",
            " ",
            ":",
            "00",
            "59",
            "60",
            ".",
            "999999999",
            "Z",
            "z",
            "+",
            "99",
            "[",
            "]",
            "UTC",
            "é",
            "٣",
            "\u{0}",
        ];
        for text in crate::config::units::tests::arbitrary_strings(&alphabet, 50_000) {
            let _ = parse_time(&text);
        }
    }

    #[test]
    fn malformed_times_are_errors_never_panics() {
        for bad in [
            "yesterday",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.٣Z",
            "2026-01-01T00:00:00.5é5Z",
            "2026-01-01T00:00:00.ZZ",
            "2026-01-01T00:00:00,,Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:01Z",
            "2026-01-01T00:00:00+99:00",
            "2026-01-01T00:00:00.1234567890123Z",
            "10000-01-01T00:00:00Z",
            "+99999-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "9223372036854775807-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z\u{0}",
            "é",
            "T",
            "Z",
            "-",
            "2026-01-01T00:00:00Z[Europe/Paris]x",
        ] {
            let result = parse_time(bad);
            assert!(result.is_err(), "{bad:?} gave {result:?}");
            let err = result.unwrap_err();
            assert!(err.contains("invalid time"), "{err}");
        }
        let huge = "2".repeat(1 << 20);
        let err = parse_time(&huge).unwrap_err();
        assert!(err.len() < 600, "{} bytes", err.len());
    }
}
