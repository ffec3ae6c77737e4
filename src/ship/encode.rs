//! Building a push: lines grouped into streams by label set, encoded as
//! Loki's protobuf `PushRequest` and compressed with raw snappy.
//!
//! Entries are written straight into each stream's protobuf bytes as lines
//! are added, the lane's structured metadata encoded once per lane: no
//! message structs, no copy of the metadata per entry. Each stream's bytes
//! are compressed a 64 KiB block at a time as they come ([`Snappy`]), so a
//! megabyte push holds a block of protobuf and its compressed bytes, never
//! the whole protobuf. Decompressed, the body is exactly what prost would
//! encode for the same `PushRequest` (a test checks).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::config::labels::{StreamLabels, render};
use crate::line::{Line, for_loki};
use crate::process::{Entry, TENANT_LABEL};
use crate::proto::logproto::{LabelPairAdapter, PushRequest};

/// Buffers of pushes being built (a stream's pending block and its
/// compressed bytes), kept for the next push: a large buffer freed goes
/// back to the system (the allocator's thresholds keep the plugin small),
/// and the next push touched fresh pages again, a page fault each. Few are
/// kept, and none once pushes stop ([`release_spare_buffers`]).
mod spare {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// At most this many buffers, each at most [`LARGEST`], are kept.
    const KEPT: usize = 4;
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
    snappy: Snappy,
}

/// One stream of the push: its labels and its entries (`StreamAdapter`
/// field 2), compressed a block at a time as they are added.
struct Stream {
    labels: Arc<str>,
    /// Encoded entries not compressed yet: less than a block, or the block
    /// being filled by one long line.
    pending: Vec<u8>,
    /// Raw snappy elements of the entries compressed so far.
    compressed: Vec<u8>,
    /// Bytes of the encoded entries, compressed or pending.
    entries_len: usize,
    line_bytes: usize,
}

/// Raw snappy, compressed a block ([`BLOCK`]) at a time. Snappy's
/// elements never refer to bytes before the block they were made from
/// (the format compresses 64 KiB blocks independently), so blocks
/// compressed apart, their elements put one after the other behind the
/// total length, are one valid snappy body. A push never holds its
/// megabyte of protobuf at once: only a block of it, and what it
/// compresses to.
struct Snappy {
    encoder: snap::raw::Encoder,
    scratch: Vec<u8>,
}

impl Default for Snappy {
    fn default() -> Snappy {
        Snappy {
            encoder: snap::raw::Encoder::new(),
            scratch: Vec::new(),
        }
    }
}

/// Snappy's block size.
const BLOCK: usize = 1 << 16;

impl Snappy {
    /// Appends the elements `input` compresses to, without a length header.
    fn append(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for block in input.chunks(BLOCK) {
            self.scratch
                .resize(snap::raw::max_compress_len(block.len()), 0);
            let n = self
                .encoder
                .compress(block, &mut self.scratch)
                .expect("a block is below snappy's limit");
            out.extend_from_slice(&self.scratch[encoded_len_varint(block.len() as u64)..n]);
        }
    }
}

impl Stream {
    fn new(labels: Arc<str>) -> Stream {
        let mut pending = spare::take();
        pending.reserve(2 * BLOCK);
        Stream {
            labels,
            pending,
            compressed: spare::take(),
            entries_len: 0,
            line_bytes: 0,
        }
    }

    /// Compresses the whole blocks of what is pending.
    fn compress_blocks(&mut self, snappy: &mut Snappy) {
        if self.pending.len() < BLOCK {
            return;
        }
        let whole = self.pending.len() / BLOCK * BLOCK;
        snappy.append(&self.pending[..whole], &mut self.compressed);
        self.pending.drain(..whole);
    }

    /// Compresses what is still pending.
    fn finish(&mut self, snappy: &mut Snappy) {
        if !self.pending.is_empty() {
            snappy.append(&self.pending, &mut self.compressed);
            self.pending.clear();
        }
    }

    /// `StreamAdapter`'s encoded length.
    fn len(&self) -> usize {
        let labels = match self.labels.len() {
            0 => 0,
            n => length_delimited_len(1, n),
        };
        labels + self.entries_len
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

    /// Adds one encoded entry's bytes (written by `write`).
    fn push_entry(&mut self, snappy: &mut Snappy, write: impl FnOnce(&mut Vec<u8>)) {
        let before = self.pending.len();
        write(&mut self.pending);
        self.entries_len += self.pending.len() - before;
        self.compress_blocks(snappy);
    }
}

impl PushBuilder {
    /// Adds one lane's lines under its labels, each entry with `metadata`
    /// (Loki 3 structured metadata; empty for none).
    pub fn add(&mut self, labels: &StreamLabels, lines: &[Line], metadata: &[LabelPairAdapter]) {
        let encoded_metadata = encode_metadata(metadata);
        let mut index_by_source = [None; 2];
        for line in lines {
            let index = *index_by_source[line.source as usize].get_or_insert_with(|| {
                let rendered = labels.for_source(line.source);
                *self.index.entry(rendered.clone()).or_insert_with(|| {
                    self.streams.push(Stream::new(rendered.clone()));
                    self.streams.len() - 1
                })
            });
            let stream = &mut self.streams[index];
            stream.line_bytes += line.bytes.len();
            let text = for_loki(&line.bytes);
            stream.push_entry(&mut self.snappy, |out| {
                encode_entry(line.timestamp_ns, &text, &encoded_metadata, &[], out)
            });
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
            stream.push_entry(&mut self.snappy, |out| {
                encode_entry(
                    entry.timestamp,
                    entry.line.as_bytes(),
                    &encoded_metadata,
                    &own,
                    out,
                )
            });
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
        let mut snappy = self.snappy;
        let mut headers = Vec::with_capacity(self.streams.len());
        let (mut total, mut room) = (0usize, 0usize);
        for stream in &mut self.streams {
            stream.finish(&mut snappy);
            let mut header = Vec::new();
            stream.header(&mut header);
            total += header.len() + stream.entries_len;
            room += snap::raw::max_compress_len(header.len()) + stream.compressed.len();
            headers.push(header);
        }
        let mut body = Vec::with_capacity(encoded_len_varint(total as u64) + room);
        encode_varint(total as u64, &mut body);
        for (stream, header) in self.streams.drain(..).zip(&headers) {
            snappy.append(header, &mut body);
            body.extend_from_slice(&stream.compressed);
            spare::give_back(stream.compressed);
            spare::give_back(stream.pending);
        }
        Bytes::from(body)
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
            piece: false,
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
            piece: false,
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

    /// A push compressed a block at a time, blocks apart, decompresses
    /// byte for byte to prost's encoding: with long labels, lengths of
    /// several bytes, entries across block boundaries, a line longer than
    /// a block, and with the buffers of earlier pushes reused.
    #[test]
    fn a_push_of_one_stream_matches_prost() {
        use crate::proto::logproto::{EntryAdapter, StreamAdapter};
        let long = "v".repeat(300);
        let labels = StreamLabels::new(&BTreeMap::from([("job".to_string(), long)]));
        for n in [1usize, 200, 3000, 20_000] {
            let mut lines: Vec<Line> = (0..n)
                .map(|i| Line {
                    timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
                    source: Source::Stdout,
                    bytes: Bytes::from(format!("line {i} {}", "x".repeat(i % 50))),
                    ack: 0,
                    piece: false,
                })
                .collect();
            if n == 200 {
                // Longer than a block, and hard to compress.
                let long: String = (0..300_000u32)
                    .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
                    .collect();
                lines[100].bytes = Bytes::from(long);
            }
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
