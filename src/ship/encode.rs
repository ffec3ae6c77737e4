//! Building a push: lines grouped into streams by label set, encoded as
//! Loki's protobuf `PushRequest` and compressed with raw snappy.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use crate::config::labels::StreamLabels;
use crate::line::{Line, for_loki};
use crate::proto::logproto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

/// A push being put together from several lanes' lines.
#[derive(Default)]
pub struct PushBuilder {
    streams: Vec<StreamAdapter>,
    index: HashMap<Arc<str>, usize>,
    lines: usize,
}

impl PushBuilder {
    /// Adds one lane's lines under its labels, each entry with `metadata`
    /// (Loki 3 structured metadata; empty for none).
    pub fn add(&mut self, labels: &StreamLabels, lines: &[Line], metadata: &[LabelPairAdapter]) {
        let mut index_by_source = [None; 2];
        for line in lines {
            let index = *index_by_source[line.source as usize].get_or_insert_with(|| {
                let rendered = labels.for_source(line.source);
                *self.index.entry(rendered.clone()).or_insert_with(|| {
                    self.streams.push(StreamAdapter {
                        labels: rendered.to_string(),
                        entries: Vec::new(),
                        hash: 0,
                    });
                    self.streams.len() - 1
                })
            });
            self.streams[index].entries.push(EntryAdapter {
                timestamp: Some(prost_types::Timestamp {
                    seconds: line.timestamp_ns.div_euclid(1_000_000_000),
                    nanos: line.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                }),
                line: for_loki(&line.bytes),
                structured_metadata: metadata.to_vec(),
            });
        }
        self.lines += lines.len();
    }

    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Encodes the push, the stream with the most bytes last: Loki reports
    /// a per-stream rate limit only for the last stream of a push (for the
    /// others it answers 204 and drops what is over the limit), and the
    /// largest stream is the one most likely over it.
    pub fn encode(mut self) -> Bytes {
        self.streams
            .sort_by_key(|s| s.entries.iter().map(|e| e.line.len()).sum::<usize>());
        encode_push(&PushRequest {
            streams: self.streams,
        })
    }
}

/// Encodes a push request as Loki expects it: protobuf, then raw snappy.
pub fn encode_push(request: &PushRequest) -> Bytes {
    let protobuf = request.encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&protobuf)
        .expect("snappy accepts any input below 4 GiB");
    Bytes::from(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::Source;
    use std::collections::BTreeMap;

    #[test]
    fn encoding_is_raw_snappy_protobuf_with_one_stream_per_label_set() {
        let labels = StreamLabels::new(&BTreeMap::from([("a".to_string(), "b".to_string())]));
        let line = |source, text: &'static [u8]| Line {
            timestamp_ns: 1_000_000_002,
            source,
            bytes: Bytes::from_static(text),
            ack: 0,
        };
        let mut push = PushBuilder::default();
        push.add(
            &labels,
            &[
                line(Source::Stdout, b"hello"),
                line(Source::Stderr, b"\xff oops"),
            ],
            &[],
        );
        push.add(&labels, &[line(Source::Stdout, b"again")], &[]);
        assert_eq!(push.lines(), 3);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&push.encode())
            .unwrap();
        let request = PushRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.streams.len(), 2);
        assert_eq!(request.streams[1].labels, r#"{a="b", source="stdout"}"#);
        assert_eq!(
            request.streams[1].entries.len(),
            2,
            "the largest stream last"
        );
        let entry = &request.streams[0].entries[0];
        assert_eq!(
            &entry.line[..],
            "\u{fffd} oops".as_bytes(),
            "valid UTF-8 for Loki"
        );
        assert_eq!(
            entry.timestamp,
            Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 2
            })
        );
    }
}
