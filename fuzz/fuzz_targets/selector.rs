//! A `match` stage's LogQL selector with line filters.
//!
//! Invariants: parsing never panics or hangs; an error is a bounded message
//! naming the selector syntax; a selector that parses matches any labels and
//! line without panicking, and gives the same answer twice.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::process::selector::Selector;

#[derive(Debug, Arbitrary)]
struct Input {
    selector: String,
    labels: Vec<(String, String)>,
    line: String,
}

fuzz_target!(|input: Input| {
    let selector = match Selector::parse(&input.selector) {
        Ok(s) => s,
        Err(err) => {
            assert!(err.len() < 20_000, "an error of {} bytes", err.len());
            return;
        }
    };
    let get = |name: &str| {
        input
            .labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let first = selector.matches_labels(get) && selector.matches_line(&input.line);
    let second = selector.matches_labels(get) && selector.matches_line(&input.line);
    assert_eq!(first, second);
});
