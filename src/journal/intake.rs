//! A FIFO reader's turn at a journal: frames get sequence numbers in
//! order, their records go to the writer, their lines to memory.

use std::sync::{Arc, MutexGuard};

use bytes::Bytes;

use super::{IntakeAck, Journal, record, writer};
use crate::line::{Line, Seq};
use crate::observe::ContainerCounters;

/// A FIFO reader's turn at a journal: frames get sequence numbers in order,
/// their records go to the writer, their lines to memory.
pub struct Intake<'a> {
    journal: &'a Journal,
    next: MutexGuard<'a, Seq>,
    records: Vec<u8>,
    chunk: record::ChunkBuilder,
    first: Option<Seq>,
    /// The frames recorded, in order, so that their lines can point into
    /// `records` (see [`point_into_records`]).
    recorded: Vec<Recorded>,
}

/// A frame in an intake's records: where its payload was read, and where
/// its bytes went.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    seq: Seq,
    /// The payload's address and length where it was read: only compared
    /// with a line's address, never read through.
    payload: (usize, usize),
    verbatim: record::Verbatim,
}

impl Intake<'_> {
    /// Sizes the buffer of records for about `bytes` of frames to come
    /// (one allocation per FIFO read, not a growing one). What is left of
    /// it is given back at [`Intake::commit`]: the lines keep the buffer.
    pub fn reserve(&mut self, bytes: usize) {
        if self.journal.writes_to_disk() {
            self.records.reserve(bytes + record::ENVELOPE);
            // One entry per frame: a frame of a 100-byte line takes some 130.
            self.recorded.reserve(bytes / 128);
        }
    }

    /// Numbers one frame (its protobuf payload) and records it for the
    /// journal, in the chunk of this intake's frames.
    pub fn record(&mut self, payload: &[u8]) -> Seq {
        let seq = *self.next;
        *self.next += 1;
        self.first.get_or_insert(seq);
        if self.journal.writes_to_disk() {
            let verbatim = self.chunk.push(seq, payload, &mut self.records);
            self.recorded.push(Recorded {
                seq,
                payload: (payload.as_ptr() as usize, payload.len()),
                verbatim,
            });
        }
        seq
    }

    /// Hands the records to the writer and the lines to memory. `joining`
    /// is, per source, the first record of a line the reader is still
    /// joining. With `ack`, the writer reports when the records are on disk
    /// (up to FIFO offset `fifo_end`). Returns whether the records were
    /// queued for the writer (false: the journal is off or the writer is
    /// too far behind).
    pub fn commit(
        mut self,
        lines: Vec<Line>,
        joining: [Option<Seq>; 2],
        ack: Option<(&Arc<IntakeAck>, u64)>,
    ) -> bool {
        self.chunk.finish(&mut self.records);
        let journal = self.journal;
        let mut lines: Vec<Line> = lines.into_iter().filter(|l| !l.is_blank()).collect();
        let next = *self.next;
        let emitted = joining.map(|j| j.unwrap_or(next));
        let to_disk = self.first.filter(|_| journal.writes_to_disk());
        // The lines keep the buffer as long as they are in memory: not its
        // spare room too (records are some 15% smaller than the frames read,
        // and a frame of its own record 16 bytes larger). Shrinking in place
        // moves nothing.
        if self.records.capacity() - self.records.len() > self.records.len() / 16 {
            self.records.shrink_to_fit();
        }
        let records = Bytes::from(std::mem::take(&mut self.records));
        if to_disk.is_some() {
            point_into_records(&mut lines, &self.recorded, &records);
        }
        // The lines are held before their records go to the writer: were it
        // the other way round, a write that failed at once would find no
        // line to mark as not on disk, and they would leave memory as if
        // they were.
        let count = lines.len() as u64;
        // An intake with no records brings the rest of a line the FIFO
        // ended inside: its records came with earlier intakes.
        let rest_of_line = self.first.is_none() && journal.writes_to_disk();
        if to_disk.is_some() {
            // Lines held may leave memory at once, before their records are
            // queued: delivery must not take the writer for done with them
            // (`submit` counts the intake out as it queues them).
            journal
                .queue
                .lock()
                .expect("journal lock poisoned")
                .incoming += 1;
        }
        journal.hold(lines, to_disk.is_some() || rest_of_line, emitted, next);
        let queued = match to_disk {
            Some(first) => {
                let chunk = writer::Chunk {
                    first_seq: first,
                    end_seq: next,
                    records,
                    ack: ack.map(|(a, end)| (a.clone(), end)),
                };
                let queued = journal.pool.submit(journal, chunk);
                if !queued {
                    journal.mark_unjournaled(first, next);
                    journal.wake();
                }
                queued
            }
            None if rest_of_line => false,
            None => {
                if journal.is_on_disk() || journal.misses_disk {
                    ContainerCounters::add(&journal.counters.journal_misses, count);
                }
                false
            }
        };
        drop(self.next);
        queued
    }
}

/// Makes the lines of frames just recorded point into their records, not
/// into the buffers the frames were read into: a line not yet on disk is
/// then held once, not twice (as a line, and as a record waiting for the
/// writer), and the read buffer goes once its frames are decoded.
///
/// A line's frame is found by its `ack`: the frame's `seq + 1` for a whole
/// line, the frame's `seq` for a piece cut from a long one. A line joined
/// from partial frames is a copy and is in no frame: it stays as it is.
/// The addresses are only compared, and a line moves only where its bytes
/// are found unchanged: that check is what makes this safe (a payload
/// recorded from a buffer that is gone may share an address with a newer
/// one), not a mere precaution.
fn point_into_records(lines: &mut [Line], recorded: &[Recorded], records: &Bytes) {
    let Some(first) = recorded.first().map(|r| r.seq) else {
        return;
    };
    for line in lines.iter_mut() {
        let (at, len) = (line.bytes.as_ptr() as usize, line.bytes.len());
        let range = [line.ack.wrapping_sub(1), line.ack]
            .into_iter()
            .filter_map(|seq| {
                let frame = recorded.get(usize::try_from(seq.wrapping_sub(first)).ok()?)?;
                (frame.seq == seq).then_some(frame)
            })
            .find_map(|frame| {
                let (payload, payload_len) = frame.payload;
                frame
                    .verbatim
                    .in_records(at.checked_sub(payload)?, len, payload_len)
            });
        let Some(range) = range else { continue };
        if records.get(range.clone()) == Some(&line.bytes[..]) {
            line.bytes = records.slice(range);
        }
    }
}

impl Journal {
    /// Starts an intake: sequence numbers are assigned in order while the
    /// guard is held.
    pub fn intake(&self) -> Intake<'_> {
        Intake {
            journal: self,
            next: self.intake.lock().expect("journal lock poisoned"),
            records: Vec::new(),
            // A quarter of a segment at most, so segments are cut near
            // their size.
            chunk: record::ChunkBuilder::with_limit(
                usize::try_from(self.segment_limit() / 4).unwrap_or(usize::MAX),
            ),
            first: None,
            recorded: Vec::new(),
        }
    }
}
