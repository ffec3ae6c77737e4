//! Loki's answers (bodies and `Retry-After` values) through the functions
//! that read them: `blamed_streams`, `refused_lines`, `parse_retry_after`,
//! `refuses_structured_metadata`, and the verdict and metrics class of a
//! whole answer.
//!
//! Input: 8 bytes (status u16, "now" u32 seconds, how many lines were sent,
//! a seed for their lengths), then the answer's text; each line of the
//! text is also tried as a `Retry-After` value.
//!
//! Invariants: nothing panics; the blamed label sets are distinct and
//! non-empty; at most the lines sent are counted as refused; a
//! `Retry-After` of plain seconds is that many seconds; only a 400 is a
//! refusal of structured metadata.
#![no_main]

use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::ship::policy::{
    PushResult, blamed_streams, class, is_blamed, judge, parse_retry_after, refused_lines,
    refuses_structured_metadata,
};

fuzz_target!(|data: &[u8]| {
    let Some((head, text)) = data.split_first_chunk::<8>() else {
        return;
    };
    let status = u16::from_be_bytes([head[0], head[1]]);
    let now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::from(u32::from_be_bytes([
            head[2], head[3], head[4], head[5],
        ])));
    // Lengths around Loki's 256 KB line limit and small ones.
    let lengths: Vec<usize> = (0..head[6] as usize)
        .map(|i| ((i * 7919) ^ (head[7] as usize * 104_729)) % 600_000)
        .collect();
    let body = String::from_utf8_lossy(text);

    let blamed = blamed_streams(&body);
    for (i, labels) in blamed.iter().enumerate() {
        assert!(!labels.is_empty(), "an empty label set blamed");
        assert!(!blamed[..i].contains(labels), "a label set blamed twice");
        assert!(is_blamed(labels, &blamed));
    }
    let refused = refused_lines(&body, &lengths);
    assert!(
        refused <= lengths.len() as u64,
        "{refused} lines refused of {}",
        lengths.len()
    );
    let mut retry_after = None;
    for value in std::iter::once(&*body).chain(body.lines()) {
        let parsed = parse_retry_after(value, now);
        if let Ok(seconds) = value.trim().parse::<u64>() {
            assert_eq!(parsed, Some(Duration::from_secs(seconds)), "{value:?}");
        }
        retry_after = retry_after.or(parsed);
    }
    if let Ok(status) = StatusCode::from_u16(status) {
        let answer = PushResult::Answered {
            status,
            body: body.into_owned(),
            retry_after,
        };
        let _ = judge(&answer);
        let _ = class(&answer);
        if refuses_structured_metadata(&answer) {
            assert_eq!(
                status.as_u16(),
                400,
                "a refusal of metadata that is not a 400"
            );
        }
    }
});
