//! Building a push: lines grouped into streams by label set, encoded as
//! Loki's protobuf `PushRequest` and compressed with raw snappy.
//!
//! Entries are written straight into each stream's protobuf bytes as lines
//! are added, the lane's structured metadata encoded once per lane: no
//! message structs, no copy of the metadata per entry. The bytes are exactly
//! what prost would encode for the same `PushRequest` (a test checks).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::config::labels::{StreamLabels, render};
use crate::line::{Line, for_loki};
use crate::process::{Entry, TENANT_LABEL};
use crate::proto::logproto::{LabelPairAdapter, PushRequest};

/// What an entry adds to its line and metadata on the wire, at most: its
/// field key and length, the timestamp message, the line's key and length.
const ENTRY_FRAMING: usize = 32;

/// Buffers of pushes being built, kept for the next push: a megabyte
/// buffer freed goes back to the system (the allocator's thresholds keep
/// the plugin small), and the next push touched fresh pages again, a page
/// fault each (two thirds of the faults of a 200,000-line run). Few are
/// kept, and none once pushes stop ([`release_spare_buffers`]).
mod spare {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// At most this many buffers, each at most [`LARGEST`], are kept.
    const KEPT: usize = 2;
    const LARGEST: usize = 8 << 20;

    static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    static USED: AtomicBool = AtomicBool::new(false);

    /// An empty buffer, with the room an earlier push left in it.
    pub fn take() -> Vec<u8> {
        USED.store(true, Ordering::Relaxed);
        SPARE
            .lock()
            .map_or_else(|_| Vec::new(), |mut spare| spare.pop().unwrap_or_default())
    }

    /// Keeps `buffer` for a later push, if there is room for it.
    pub fn give_back(mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > LARGEST {
            return;
        }
        buffer.clear();
        if let Ok(mut spare) = SPARE.lock()
            && spare.len() < KEPT
        {
            spare.push(buffer);
        }
    }

    /// Frees the kept buffers if no push was built since the last call.
    pub fn release_if_unused() {
        if !USED.swap(false, Ordering::Relaxed)
            && let Ok(mut spare) = SPARE.lock()
        {
            *spare = Vec::new();
        }
    }
}

/// Frees the buffers kept for pushes if none was built since the last
/// call: called every few seconds, it gives an idle plugin's memory back.
pub fn release_spare_buffers() {
    spare::release_if_unused();
}

/// A push being put together from several lanes' lines.
#[derive(Default)]
pub struct PushBuilder {
    streams: Vec<Stream>,
    index: HashMap<Arc<str>, usize>,
    lines: usize,
}

/// One stream of the push: its labels and its entries, already encoded as
/// `StreamAdapter` field 2.
struct Stream {
    labels: Arc<str>,
    /// [`Stream::room`] bytes left for the stream's header, then the
    /// entries: a push of one stream (the usual one) is compressed from
    /// here, not copied into a second megabyte buffer first.
    entries: Vec<u8>,
    line_bytes: usize,
}

impl Stream {
    fn new(labels: Arc<str>) -> Stream {
        let mut entries = spare::take();
        entries.resize(Stream::room(&labels), 0);
        Stream {
            labels,
            entries,
            line_bytes: 0,
        }
    }

    /// The most its header can take: `PushRequest` field 1 (key, length)
    /// and `StreamAdapter` field 1 (key, length, labels).
    fn room(labels: &str) -> usize {
        2 * (1 + 10) + labels.len()
    }

    /// The encoded entries.
    fn encoded_entries(&self) -> &[u8] {
        &self.entries[Stream::room(&self.labels)..]
    }

    /// `StreamAdapter`'s encoded length.
    fn len(&self) -> usize {
        let labels = match self.labels.len() {
            0 => 0,
            n => length_delimited_len(1, n),
        };
        labels + self.encoded_entries().len()
    }

    /// Its header: `PushRequest` field 1's key and length, and the labels.
    fn header(&self, out: &mut Vec<u8>) {
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(self.len() as u64, out);
        if !self.labels.is_empty() {
            encode_key(1, WireType::LengthDelimited, out);
            encode_varint(self.labels.len() as u64, out);
            out.extend_from_slice(self.labels.as_bytes());
        }
    }
}

impl PushBuilder {
    /// Adds one lane's lines under its labels, each entry with `metadata`
    /// (Loki 3 structured metadata; empty for none).
    pub fn add(&mut self, labels: &StreamLabels, lines: &[Line], metadata: &[LabelPairAdapter]) {
        let encoded_metadata = encode_metadata(metadata);
        // Room for each source's entries at once: growing a megabyte push
        // by doubling copies it and touches fresh pages several times.
        let mut room = [0usize; 2];
        for line in lines {
            room[line.source as usize] += line.bytes.len() + encoded_metadata.len() + ENTRY_FRAMING;
        }
        let mut index_by_source = [None; 2];
        for line in lines {
            let index = *index_by_source[line.source as usize].get_or_insert_with(|| {
                let rendered = labels.for_source(line.source);
                let index = *self.index.entry(rendered.clone()).or_insert_with(|| {
                    self.streams.push(Stream::new(rendered.clone()));
                    self.streams.len() - 1
                });
                self.streams[index]
                    .entries
                    .reserve(room[line.source as usize]);
                index
            });
            let stream = &mut self.streams[index];
            stream.line_bytes += line.bytes.len();
            let text = for_loki(&line.bytes);
            encode_entry(
                line.timestamp_ns,
                &text,
                &encoded_metadata,
                &[],
                &mut stream.entries,
            );
        }
        self.lines += lines.len();
    }

    /// Adds entries the pipeline stages made, each under its own labels
    /// (without the tenant, which goes in the request's header, and
    /// without empty values, which Loki treats as absent), with the
    /// container's `metadata` and the entry's own.
    pub fn add_entries(&mut self, entries: &[Entry], metadata: &[LabelPairAdapter]) {
        let encoded_metadata = encode_metadata(metadata);
        let mut own = Vec::new();
        // Entries share label sets (the stages intern them): render each
        // shared set once. The entries keep the sets alive meanwhile, so an
        // address stands for one set.
        let mut rendered_at: HashMap<*const std::collections::BTreeMap<String, String>, usize> =
            HashMap::new();
        for entry in entries {
            let key = Arc::as_ptr(&entry.labels);
            let index = match rendered_at.get(&key) {
                Some(&index) => index,
                None => {
                    let rendered: Arc<str> = Arc::from(push_labels(&entry.labels));
                    let index = *self.index.entry(rendered.clone()).or_insert_with(|| {
                        self.streams.push(Stream::new(rendered));
                        self.streams.len() - 1
                    });
                    rendered_at.insert(key, index);
                    index
                }
            };
            own.clear();
            for (name, value) in &entry.metadata {
                let pair = LabelPairAdapter {
                    name: name.clone(),
                    value: value.clone(),
                };
                encode_key(3, WireType::LengthDelimited, &mut own);
                encode_varint(pair.encoded_len() as u64, &mut own);
                pair.encode_raw(&mut own);
            }
            let stream = &mut self.streams[index];
            stream.line_bytes += entry.line.len();
            encode_entry(
                entry.timestamp,
                entry.line.as_bytes(),
                &encoded_metadata,
                &own,
                &mut stream.entries,
            );
        }
        self.lines += entries.len();
    }

    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Encodes the push, the stream with the most bytes last: Loki reports
    /// a per-stream rate limit only for the last stream of a push (for the
    /// others it answers 204 and drops what is over the limit), and the
    /// largest stream is the one most likely over it.
    pub fn encode(mut self) -> Bytes {
        self.streams.sort_by_key(|s| s.line_bytes);
        let mut header = Vec::new();
        let body = if let [stream] = self.streams.as_mut_slice() {
            // The header goes in the room before the entries.
            stream.header(&mut header);
            let start = Stream::room(&stream.labels) - header.len();
            stream.entries[start..start + header.len()].copy_from_slice(&header);
            compress(&stream.entries[start..])
        } else {
            let total: usize = self
                .streams
                .iter()
                .map(|s| length_delimited_len(1, s.len()))
                .sum();
            let mut protobuf = spare::take();
            protobuf.reserve(total);
            for stream in &self.streams {
                stream.header(&mut protobuf);
                protobuf.extend_from_slice(stream.encoded_entries());
            }
            let body = compress(&protobuf);
            spare::give_back(protobuf);
            body
        };
        for stream in self.streams.drain(..) {
            spare::give_back(stream.entries);
        }
        body
    }
}

/// Loki's `{name="value", ...}` for the labels an entry is pushed under.
pub fn push_labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.contains_key(TENANT_LABEL) || labels.values().any(String::is_empty) {
        let kept: std::collections::BTreeMap<String, String> = labels
            .iter()
            .filter(|(k, v)| k.as_str() != TENANT_LABEL && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return render(&kept);
    }
    render(labels)
}

/// Structured metadata pairs as `EntryAdapter` field 3, encoded once.
fn encode_metadata(metadata: &[LabelPairAdapter]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for pair in metadata {
        encode_key(3, WireType::LengthDelimited, &mut encoded);
        encode_varint(pair.encoded_len() as u64, &mut encoded);
        pair.encode_raw(&mut encoded);
    }
    encoded
}

/// Appends one `EntryAdapter` as field 2 of a `StreamAdapter`: timestamp,
/// the line (valid UTF-8), the container's metadata, the entry's own.
fn encode_entry(timestamp_ns: i64, text: &[u8], metadata: &[u8], own: &[u8], out: &mut Vec<u8>) {
    let seconds = timestamp_ns.div_euclid(1_000_000_000);
    let nanos = timestamp_ns.rem_euclid(1_000_000_000) as u64;
    let timestamp_len = varint_field_len(1, seconds as u64) + varint_field_len(2, nanos);
    let line_len = match text.len() {
        0 => 0,
        n => length_delimited_len(2, n),
    };
    let entry_len = length_delimited_len(1, timestamp_len) + line_len + metadata.len() + own.len();
    out.reserve(length_delimited_len(2, entry_len));
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(entry_len as u64, out);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(timestamp_len as u64, out);
    for (tag, value) in [(1, seconds as u64), (2, nanos)] {
        if value != 0 {
            encode_key(tag, WireType::Varint, out);
            encode_varint(value, out);
        }
    }
    if !text.is_empty() {
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(text.len() as u64, out);
        out.extend_from_slice(text);
    }
    out.extend_from_slice(metadata);
    out.extend_from_slice(own);
}

/// Bytes of a length-delimited field of `len` bytes.
fn length_delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Bytes of a varint field; proto3 leaves out a zero.
fn varint_field_len(tag: u32, value: u64) -> usize {
    match value {
        0 => 0,
        v => key_len(tag) + encoded_len_varint(v),
    }
}

/// Encodes a push request as Loki expects it: protobuf, then raw snappy.
pub fn encode_push(request: &PushRequest) -> Bytes {
    compress(&request.encode_to_vec())
}

fn compress(protobuf: &[u8]) -> Bytes {
    let compressed = snap::raw::Encoder::new()
        .compress_vec(protobuf)
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

    /// The hand-written encoding is byte for byte what prost encodes for
    /// the same request: timestamps before 1970 and at 0, empty and invalid
    /// lines, metadata, streams in order of their line bytes.
    #[test]
    fn encoding_matches_prost() {
        use crate::proto::logproto::{EntryAdapter, StreamAdapter};
        let labels = StreamLabels::new(&BTreeMap::from([("job".to_string(), "x".to_string())]));
        let line = |timestamp_ns, source, text: &'static [u8]| Line {
            timestamp_ns,
            source,
            bytes: Bytes::from_static(text),
            ack: 0,
        };
        let lines = [
            line(
                1_700_000_000_123_456_789,
                Source::Stdout,
                b"a longer line, so stdout goes last",
            ),
            line(0, Source::Stderr, b"at the epoch"),
            line(-1, Source::Stderr, b"before it"),
            line(5, Source::Stdout, b""),
            line(-2_000_000_000, Source::Stdout, b"\xc3\x28 invalid"),
        ];
        let metadata = [
            LabelPairAdapter {
                name: "container_id".into(),
                value: "3f2a".repeat(16),
            },
            LabelPairAdapter {
                name: "empty".into(),
                value: String::new(),
            },
        ];
        for metadata in [&metadata[..], &[]] {
            let mut push = PushBuilder::default();
            push.add(&labels, &lines, metadata);
            let ours = snap::raw::Decoder::new()
                .decompress_vec(&push.encode())
                .unwrap();

            let entry = |l: &Line| EntryAdapter {
                timestamp: Some(prost_types::Timestamp {
                    seconds: l.timestamp_ns.div_euclid(1_000_000_000),
                    nanos: l.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                }),
                line: Bytes::from(String::from_utf8_lossy(&l.bytes).into_owned()),
                structured_metadata: metadata.to_vec(),
            };
            let stream = |source: Source| StreamAdapter {
                labels: labels.for_source(source).to_string(),
                entries: lines
                    .iter()
                    .filter(|l| l.source == source)
                    .map(entry)
                    .collect(),
                hash: 0,
            };
            let expected = PushRequest {
                streams: vec![stream(Source::Stderr), stream(Source::Stdout)],
            }
            .encode_to_vec();
            assert_eq!(ours, expected);
        }
    }

    /// A push of one stream is compressed from the stream's own buffer,
    /// its header written in the room before the entries: still byte for
    /// byte prost's, with long labels and lengths of several bytes, and
    /// with the buffers of earlier pushes reused.
    #[test]
    fn a_push_of_one_stream_matches_prost() {
        use crate::proto::logproto::{EntryAdapter, StreamAdapter};
        let long = "v".repeat(300);
        let labels = StreamLabels::new(&BTreeMap::from([("job".to_string(), long)]));
        for n in [1usize, 200, 3000] {
            let lines: Vec<Line> = (0..n)
                .map(|i| Line {
                    timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
                    source: Source::Stdout,
                    bytes: Bytes::from(format!("line {i} {}", "x".repeat(i % 50))),
                    ack: 0,
                })
                .collect();
            let mut push = PushBuilder::default();
            push.add(&labels, &lines, &[]);
            let ours = snap::raw::Decoder::new()
                .decompress_vec(&push.encode())
                .unwrap();
            let expected = PushRequest {
                streams: vec![StreamAdapter {
                    labels: labels.for_source(Source::Stdout).to_string(),
                    entries: lines
                        .iter()
                        .map(|l| EntryAdapter {
                            timestamp: Some(prost_types::Timestamp {
                                seconds: l.timestamp_ns.div_euclid(1_000_000_000),
                                nanos: l.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                            }),
                            line: l.bytes.clone(),
                            structured_metadata: Vec::new(),
                        })
                        .collect(),
                    hash: 0,
                }],
            }
            .encode_to_vec();
            assert_eq!(ours, expected, "{n} lines");
        }
    }
}
