//! ReadLogs `Since` / `Until` strings through `config::time::parse_time`.
//!
//! Invariants: it never panics; an error is a bounded message that says
//! "invalid time"; a time that is not saturated at an end of i64
//! nanoseconds reads back the same from its RFC 3339 form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::time::parse_time;

fuzz_target!(|text: &str| {
    match parse_time(text) {
        Err(err) => {
            assert!(err.contains("invalid time"), "{err}");
            assert!(
                err.chars().count() < 1500,
                "an error of {} chars",
                err.chars().count()
            );
        }
        Ok(None) | Ok(Some(i64::MIN | i64::MAX)) => {}
        Ok(Some(ns)) => {
            let ts = jiff::Timestamp::from_nanosecond(i128::from(ns)).expect("in jiff's range");
            assert_eq!(
                parse_time(&ts.to_string()),
                Ok(Some(ns)),
                "{text:?} -> {ts}"
            );
        }
    }
});
