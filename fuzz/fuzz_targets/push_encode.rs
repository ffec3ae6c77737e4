//! Pushes built by the hand-written protobuf encoder (`PushBuilder`) from
//! arbitrary lanes: label sets (several lanes may share one), structured
//! metadata, lines of any bytes with any timestamp, on stdout and stderr.
//!
//! Invariants:
//! - nothing panics;
//! - the push is raw snappy, and what it holds is byte for byte what prost
//!   encodes for the same `PushRequest`: one stream per rendered label set
//!   in the order first seen, then ordered by line bytes (stable), each
//!   entry with its line as valid UTF-8 and its lane's metadata;
//! - prost decodes it back, and `lines()` counts every line added.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::labels::StreamLabels;
use loki_logdriver::line::{Line, Source};
use loki_logdriver::proto::logproto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};
use loki_logdriver::ship::encode::PushBuilder;
use prost::Message;

/// A few label names, so that lanes often share a label set.
const NAMES: &[&str] = &["job", "container_name", "a", "service_name"];

#[derive(Debug, Arbitrary)]
struct LaneInput {
    labels: Vec<(u8, String)>,
    metadata: Vec<(String, String)>,
    lines: Vec<LineInput>,
}

#[derive(Debug, Arbitrary)]
struct LineInput {
    stderr: bool,
    time: Time,
    bytes: Vec<u8>,
}

/// Timestamps: around the epoch, at the ends of i64, or anything.
#[derive(Debug, Arbitrary)]
enum Time {
    Small(i32),
    Edge(bool),
    Any(i64),
}

impl Time {
    fn nanos(&self) -> i64 {
        match self {
            Time::Small(n) => i64::from(*n),
            Time::Edge(max) => {
                if *max {
                    i64::MAX
                } else {
                    i64::MIN
                }
            }
            Time::Any(n) => *n,
        }
    }
}

/// What prost would get for the same streams.
struct Expected {
    labels: Arc<str>,
    entries: Vec<EntryAdapter>,
    line_bytes: usize,
}

fuzz_target!(|lanes: Vec<LaneInput>| {
    let mut builder = PushBuilder::default();
    let mut expected: Vec<Expected> = Vec::new();
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut total = 0;
    for lane in &lanes {
        let labels: BTreeMap<String, String> = lane
            .labels
            .iter()
            .map(|(n, v)| (NAMES[*n as usize % NAMES.len()].to_string(), v.clone()))
            .collect();
        let labels = StreamLabels::new(&labels);
        let metadata: Vec<LabelPairAdapter> = lane
            .metadata
            .iter()
            .map(|(name, value)| LabelPairAdapter {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let lines: Vec<Line> = lane
            .lines
            .iter()
            .map(|l| Line {
                timestamp_ns: l.time.nanos(),
                source: if l.stderr {
                    Source::Stderr
                } else {
                    Source::Stdout
                },
                bytes: Bytes::copy_from_slice(&l.bytes),
                ack: 0,
                piece: false,
            })
            .collect();
        for line in &lines {
            let rendered = labels.for_source(line.source);
            let at = *index.entry(rendered.clone()).or_insert_with(|| {
                expected.push(Expected {
                    labels: rendered.clone(),
                    entries: Vec::new(),
                    line_bytes: 0,
                });
                expected.len() - 1
            });
            let stream = &mut expected[at];
            stream.line_bytes += line.bytes.len();
            stream.entries.push(EntryAdapter {
                timestamp: Some(prost_types::Timestamp {
                    seconds: line.timestamp_ns.div_euclid(1_000_000_000),
                    nanos: line.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                }),
                line: Bytes::from(String::from_utf8_lossy(&line.bytes).into_owned()),
                structured_metadata: metadata.clone(),
            });
        }
        builder.add(&labels, &lines, &metadata);
        total += lines.len();
    }
    assert_eq!(builder.lines(), total, "lines() does not count every line");

    let compressed = builder.encode();
    let ours = snap::raw::Decoder::new()
        .decompress_vec(&compressed)
        .expect("the push is raw snappy");
    expected.sort_by_key(|s| s.line_bytes);
    let request = PushRequest {
        streams: expected
            .into_iter()
            .map(|s| StreamAdapter {
                labels: s.labels.to_string(),
                entries: s.entries,
                hash: 0,
            })
            .collect(),
    };
    let theirs = request.encode_to_vec();
    if ours != theirs {
        let decoded = PushRequest::decode(ours.as_slice());
        panic!(
            "the encoding differs from prost's ({} bytes, prost {}); decoded: {decoded:?}",
            ours.len(),
            theirs.len()
        );
    }
    let decoded = PushRequest::decode(ours.as_slice()).expect("prost decodes the push");
    assert_eq!(decoded, request);
});
