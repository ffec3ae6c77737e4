//! Reading a container's FIFO into its journal, without ever waiting for
//! the network or the disk.
//!
//! The daemon holds the FIFO open read-write, so EOF comes only when it
//! closes its end (after StopLogging has been answered).
//!
//! Bytes leave the FIFO only once they are safe. The reader copies what the
//! FIFO holds with `tee(2)` (which leaves it there), decodes the frames,
//! hands their lines to memory and their records to the journal's writer,
//! and removes the bytes from the FIFO when the writer reports them on disk.
//! Killed in between, the plugin loses nothing: the kernel still holds the
//! bytes, and the next process reads them (skipping the frames its journal
//! already has). The reader never waits for the writer: while the writer is
//! behind it keeps reading, and if the disk falls far behind (half the pipe
//! unconfirmed, or a second without progress) it removes the bytes anyway
//! and the lines stay safe in memory only. Where `tee` is not available it
//! reads the FIFO plainly.
//!
//! Nothing but EOF ends a reader: every failure falls back to something
//! that still reads. Without its thread's private pipe (EMFILE on a thread
//! that had none yet) a step reads plainly and the next one tries `tee`
//! again; without `/dev/null` read bytes are read out and thrown away; a
//! FIFO epoll cannot watch is looked at every 5 ms; any other error is
//! logged (at most every 10 s) and the FIFO looked at again 100 ms later.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::assemble::Assembler;
use crate::frame::{Frame, FrameDecoder, READ_CHUNK};
use crate::journal::record::payload_hash;
use crate::journal::{IntakeAck, Journal, ResumePoint};
use crate::observe::{ContainerCounters, Throttle};

/// The FIFO's size is raised to this when the kernel allows (more room for
/// lines while the plugin restarts); it stays at the default otherwise.
const FIFO_SIZE: usize = 1 << 20;
/// Bytes read but not yet on disk older than this are removed from the FIFO
/// anyway: the disk is stalled, and the daemon must not wait for it.
const MAX_UNCONFIRMED_AGE: Duration = Duration::from_secs(1);
/// After a step that found less than [`COALESCE_BELOW`] new bytes, the
/// reader waits this long before it looks at the FIFO again, so that a
/// writer that the reader keeps up with costs one wakeup (of the reader,
/// the journal's writer and delivery) per millisecond, not per line. The
/// daemon never waits for it: filling even the default 64 KiB pipe in a
/// millisecond takes 64 MB/s, and the FIFO is raised to 1 MiB. Meanwhile
/// the FIFO is out of epoll ([`Watch::Resting`]).
const COALESCE: Duration = Duration::from_millis(1);
/// See [`COALESCE`].
const COALESCE_BELOW: u64 = 32 * 1024;
/// On a graceful stop, how long to wait for the writer and for a frame
/// that was started to finish.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How a FIFO reader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The daemon closed its end: every line has been read.
    Eof,
    /// The plugin is shutting down; the FIFO may still hold lines.
    Stopped,
}

/// Opens a log FIFO for reading, as the daemon's plugins do (`O_RDONLY`;
/// the daemon already holds a writer, so this never blocks).
pub fn open_fifo(path: &str) -> io::Result<OwnedFd> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.file_type().is_fifo() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a FIFO"));
    }
    // SAFETY: fcntl on a file descriptor we own; failure is harmless.
    unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            FIFO_SIZE as libc::c_int,
        )
    };
    Ok(file.into())
}

/// Hashes of the payloads of a journal's newest records: after a restart,
/// the FIFO may still hold frames that were written but not yet removed.
pub type RecentRecords = HashSet<u64>;

/// How a reader learns that its FIFO has something to read.
enum Watch {
    /// Through the runtime's epoll (shared only so that waiting on it does
    /// not borrow the reader).
    Epoll(Arc<AsyncFd<RawFd>>),
    /// Out of epoll while the reader pauses between two steps of a busy
    /// FIFO ([`COALESCE`]). Registered, the FIFO would wake a runtime thread
    /// at every write of the daemon (a pipe watched by epoll wakes it at
    /// each write, empty or not), only for it to find the reader pausing:
    /// that was most of the plugin's context switches.
    Resting,
    /// The FIFO could not be registered with epoll: looked at every
    /// [`POLL_EVERY`] instead, so it is still read.
    Poll,
}

/// How often a FIFO that epoll cannot watch is looked at.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// After an unexpected error reading a FIFO, the reader tries again after
/// this pause (never treating the FIFO as closed: only EOF ends a reader).
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One FIFO's reader.
pub struct Reader {
    /// Declared before `fifo`, so that it is dropped (out of epoll) before
    /// the descriptor closes.
    watch: Watch,
    fifo: OwnedFd,
    journal: Arc<Journal>,
    assembler: Assembler,
    decoder: FrameDecoder,
    ack: Arc<IntakeAck>,
    /// FIFO bytes read into the decoder.
    seen: u64,
    /// FIFO bytes removed from the FIFO.
    consumed: u64,
    /// End of the newest frames handed to the writer (they need its ack).
    queued_end: u64,
    /// Bytes up to here need no ack once everything before is removed
    /// (skipped garbage, duplicates, lines the writer could not take).
    free_end: u64,
    /// Since when bytes wait for the writer's ack.
    unconfirmed_since: Option<Instant>,
    /// The FIFO is read with `tee`; false: plainly.
    protected: bool,
    /// Bytes the reader may leave unconfirmed in the FIFO.
    high_water: usize,
    /// After a restart: frames still in the FIFO that the journal has.
    recent: Option<RecentRecords>,
    frame_warning: Throttle,
    error_warning: Throttle,
}

impl Reader {
    /// A reader for a FIFO just handed over by StartLogging, or (`resume`)
    /// one found again after a restart. It always reads: without a private
    /// pipe for `tee` it reads plainly, and a FIFO that epoll cannot watch
    /// is looked at every few milliseconds.
    pub fn new(
        fifo: OwnedFd,
        journal: Arc<Journal>,
        max_line: usize,
        resume: Option<ResumePoint>,
    ) -> Reader {
        let mut assembler = Assembler::new(max_line);
        let recent = resume.map(|resume| {
            // Lines the earlier run was joining: the pieces still to come
            // join them.
            journal.take_over(resume.unfinished, &mut assembler);
            resume.recent
        });
        let fd = fifo.as_raw_fd();
        let fifo_size = pipe_size(fd);
        // The private pipe `tee` copies into; without one, the FIFO is read plainly.
        let private = private_pipe(|p| Ok(p.capacity)).ok();
        let protected = journal.writes_to_disk() && private.is_some();
        // Opened now, while descriptors are likely free (bytes are removed
        // from the FIFO into it).
        let _ = dev_null();
        let watch = match watch_fifo(fd) {
            Ok(watched) => Watch::Epoll(Arc::new(watched)),
            Err(err) => {
                tracing::warn!(container = %journal.name, error = %err, "cannot watch the log FIFO with epoll: looking at it every 5 ms instead");
                Watch::Poll
            }
        };
        Reader {
            watch,
            fifo,
            assembler,
            decoder: if recent.is_some() {
                FrameDecoder::resyncing()
            } else {
                FrameDecoder::new()
            },
            journal,
            ack: Arc::new(IntakeAck::default()),
            seen: 0,
            consumed: 0,
            queued_end: 0,
            free_end: 0,
            unconfirmed_since: None,
            protected,
            high_water: fifo_size.min(private.unwrap_or(0)) / 2,
            recent,
            frame_warning: Throttle::default(),
            error_warning: Throttle::default(),
        }
    }

    /// Reads until EOF or `stop`, never waiting for anything but the FIFO.
    /// The caller has attached the reader to the journal
    /// ([`Journal::attach_reader`]); it is detached at the end.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> ReadEnd {
        if matches!(self.watch, Watch::Poll) {
            return self.run_polling(stop).await;
        }
        let mut pause: Option<tokio::time::Instant> = None;
        // When to look at the FIFO again without waiting for it to become
        // readable (see `Recheck`).
        let mut recheck = Recheck::default();
        let end = loop {
            let fifo = if pause.is_some() {
                self.rest();
                None
            } else {
                self.watched()
            };
            if fifo.is_none() && pause.is_none() && recheck.at.is_none() {
                // Epoll would not take it back: look at it by itself.
                recheck.at = Some(tokio::time::Instant::now() + POLL_EVERY);
            }
            let guard = tokio::select! {
                biased;
                _ = stop.wait_for(|stopping| *stopping) => break ReadEnd::Stopped,
                _ = sleep_until(pause), if pause.is_some() => {
                    pause = None;
                    continue;
                }
                _ = self.ack.notify.notified() => {
                    if let Err(err) = self.consume_confirmed() {
                        self.warn_failed(&err);
                    }
                    // Room was made: a writer blocked in one long write(2)
                    // fills it without making the FIFO readable again.
                    recheck.now();
                    continue;
                }
                _ = tokio::time::sleep(MAX_UNCONFIRMED_AGE), if self.unconfirmed_since.is_some() => {
                    self.consume_stale();
                    recheck.now();
                    continue;
                }
                _ = sleep_until(recheck.at), if recheck.at.is_some() && pause.is_none() => {
                    recheck.at = None;
                    None
                }
                guard = readable(fifo.as_deref()), if fifo.is_some() && pause.is_none() => match guard {
                    Ok(guard) => Some(guard),
                    // Only when the runtime shuts down: the FIFO goes on,
                    // and the next process reads it.
                    Err(err) => { self.warn_failed(&err); break ReadEnd::Stopped }
                },
            };
            let seen = self.seen;
            let pumped = self.pump();
            if matches!(pumped, Ok(Pump::Data)) {
                // There may be more, and after a step that came from a
                // recheck the FIFO's readiness says nothing: look again.
                recheck.reset();
                recheck.now();
            }
            match pumped {
                Ok(Pump::Data) if self.seen - seen < COALESCE_BELOW => {
                    pause = Some(tokio::time::Instant::now() + COALESCE);
                }
                // Let the other tasks run after every step: a task this one
                // woke (the container's delivery) waits in this worker's
                // LIFO slot, where no other worker can take it, so running
                // through tokio's budget (128 steps, 16 MiB) would fill
                // memory before the first push starts.
                Ok(Pump::Data) => tokio::task::yield_now().await,
                Ok(Pump::NothingNew) => {
                    if let Some(mut guard) = guard {
                        guard.clear_ready();
                    }
                    if self.holds_unconsumed() {
                        recheck.later();
                    }
                }
                Ok(Pump::Eof) => break ReadEnd::Eof,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(mut guard) = guard {
                        guard.clear_ready();
                    }
                    if self.holds_unconsumed() {
                        recheck.later();
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // Only EOF closes a FIFO: look again in a moment.
                    self.warn_failed(&err);
                    pause = Some(tokio::time::Instant::now() + ERROR_PAUSE);
                }
            }
        };
        self.end(end).await
    }

    /// Takes the FIFO out of epoll for a pause (see [`Watch::Resting`]).
    fn rest(&mut self) {
        if matches!(self.watch, Watch::Epoll(_)) {
            self.watch = Watch::Resting;
        }
    }

    /// The FIFO in epoll, registered again after a pause; `None` if epoll
    /// does not take it back (the reader then looks at it by itself).
    fn watched(&mut self) -> Option<Arc<AsyncFd<RawFd>>> {
        if matches!(self.watch, Watch::Resting) {
            match watch_fifo(self.fifo.as_raw_fd()) {
                Ok(watched) => self.watch = Watch::Epoll(Arc::new(watched)),
                Err(err) => {
                    self.warn_failed(&err);
                    return None;
                }
            }
        }
        match &self.watch {
            Watch::Epoll(fifo) => Some(fifo.clone()),
            Watch::Resting | Watch::Poll => None,
        }
    }

    /// [`Reader::run`] for a FIFO epoll cannot watch: it is looked at every
    /// [`POLL_EVERY`].
    async fn run_polling(mut self, mut stop: watch::Receiver<bool>) -> ReadEnd {
        let end = 'reading: loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopping| *stopping) => break ReadEnd::Stopped,
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            self.consume_stale();
            // What is there now, a bounded number of steps at a time.
            for _ in 0..64 {
                match self.pump() {
                    Ok(Pump::Data) => continue,
                    Ok(Pump::Eof) => break 'reading ReadEnd::Eof,
                    Ok(Pump::NothingNew) => break,
                    Err(err)
                        if matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) =>
                    {
                        break;
                    }
                    Err(err) => {
                        self.warn_failed(&err);
                        break;
                    }
                }
            }
        };
        self.end(end).await
    }

    /// Finishes reading (at EOF or stop) and detaches from the journal.
    async fn end(mut self, end: ReadEnd) -> ReadEnd {
        match end {
            ReadEnd::Eof => self.finish_at_eof(),
            ReadEnd::Stopped => self.finish_at_stop().await,
        }
        self.journal.detach_reader(end == ReadEnd::Stopped);
        end
    }

    /// Reads what is new in the FIFO and passes it on.
    fn pump(&mut self) -> io::Result<Pump> {
        self.consume_confirmed()?;
        let new = if self.protected {
            match self.peek_new() {
                Ok(new) => new,
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    // No tee on this FIFO: read it plainly from now on,
                    // once what was read is out of it.
                    self.consume_to(self.seen)?;
                    self.protected = false;
                    return Ok(Pump::Data);
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Err(err);
                }
                Err(err) => {
                    // No private pipe on this thread (EMFILE on a thread
                    // that had none yet), or tee failed otherwise: this step
                    // reads plainly; the next one tries tee again.
                    if let Some(suppressed) = self.error_warning.allow(Instant::now()) {
                        tracing::warn!(container = %self.journal.name, error = %err, similar_suppressed = suppressed, "cannot copy the log FIFO with tee; reading it plainly meanwhile (lines reach the journal a moment after they leave the FIFO)");
                    }
                    self.consume_to(self.seen)?;
                    self.read_plain()?
                }
            }
        } else {
            self.read_plain()?
        };
        match new {
            New::Bytes => {
                self.process();
                if self.seen - self.consumed > self.high_water as u64 {
                    // The writer is far behind: the daemon must not wait for it.
                    self.consume_to(self.seen)?;
                }
                Ok(Pump::Data)
            }
            New::Nothing => {
                if hung_up(self.fifo.as_raw_fd())
                    && self.all_frames_confirmed()
                    && self.seen > self.consumed
                {
                    // The writer left; what remains is an unfinished frame.
                    // Look again at once: the FIFO is now empty, so EOF.
                    self.consume_to(self.seen)?;
                    return Ok(Pump::Data);
                }
                Ok(Pump::NothingNew)
            }
            New::Eof => Ok(Pump::Eof),
        }
    }

    /// Copies what the FIFO holds beyond what was already read (`tee`).
    fn peek_new(&mut self) -> io::Result<New> {
        let fifo = self.fifo.as_raw_fd();
        let already = (self.seen - self.consumed) as usize;
        private_pipe(|pipe| {
            // SAFETY: tee between two pipe descriptors we own.
            let n = unsafe { libc::tee(fifo, pipe.write, 1 << 30, libc::SPLICE_F_NONBLOCK) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n == 0 {
                return Ok(New::Eof);
            }
            if n <= already {
                pipe.discard(n)?;
                return Ok(New::Nothing);
            }
            pipe.discard(already)?;
            // A bounded step: what is beyond stays in the FIFO for the next.
            let fresh = (n - already).min(READ_CHUNK);
            let buf = self.decoder.read_buffer_exact(fresh);
            pipe.read_exact_into(buf, fresh)?;
            pipe.discard(n - already - fresh)?;
            self.seen += fresh as u64;
            Ok(New::Bytes)
        })
    }

    /// Reads the FIFO plainly (bytes leave it at once).
    fn read_plain(&mut self) -> io::Result<New> {
        let fifo = self.fifo.as_raw_fd();
        let mut available: libc::c_int = 0;
        // SAFETY: FIONREAD on our own descriptor writes one int.
        unsafe { libc::ioctl(fifo, libc::FIONREAD, &mut available) };
        let want = (available.max(1) as usize).min(READ_CHUNK);
        let buf = self.decoder.read_buffer_exact(want);
        let spare = buf.spare_capacity_mut();
        let want = spare.len().min(want);
        // SAFETY: reading into the uninitialized spare capacity, then
        // exposing only the bytes the kernel wrote.
        let n = unsafe { libc::read(fifo, spare.as_mut_ptr().cast(), want) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(New::Eof);
        }
        // SAFETY: `n` bytes were written by read(2).
        unsafe { buf.set_len(buf.len() + n as usize) };
        self.seen += n as u64;
        self.consumed = self.seen;
        Ok(New::Bytes)
    }

    /// Decodes the complete frames read so far and hands them on.
    fn process(&mut self) {
        let mut intake = self.journal.intake();
        let buffered = self.decoder.buffered_bytes();
        intake.reserve(buffered);
        let mut lines = Vec::with_capacity(buffered / 64);
        while let Some(frame) = self.decoder.next() {
            match frame {
                Frame::Entry { wire, entry } => {
                    let payload = &wire[4..];
                    if let Some(recent) = &self.recent {
                        if recent.contains(&payload_hash(payload)) {
                            ContainerCounters::add(&self.journal.counters.duplicates_skipped, 1);
                            continue;
                        }
                        self.recent = None; // past the frames read before the restart
                    }
                    let seq = intake.record(payload);
                    if let Err(reason) = self.assembler.push(entry, seq, &mut lines) {
                        count_invalid(&self.journal, &mut self.frame_warning, 0, &reason);
                    }
                }
                Frame::Skipped { bytes, reason } => {
                    count_invalid(&self.journal, &mut self.frame_warning, bytes, reason)
                }
            }
        }
        let complete_end = self.seen - self.decoder.buffered_bytes() as u64;
        let joining = self.assembler.joining_since();
        let queued = intake.commit(lines, joining, Some((&self.ack, complete_end)));
        if queued {
            self.queued_end = complete_end;
            self.unconfirmed_since.get_or_insert_with(Instant::now);
        } else {
            // Nothing for the writer to confirm (or it could not take it).
            self.free_end = complete_end;
        }
    }

    /// Removes from the FIFO what the writer has put on disk.
    fn consume_confirmed(&mut self) -> io::Result<()> {
        let persisted = self.ack.persisted.load(Ordering::Acquire);
        let target = if persisted >= self.queued_end {
            self.unconfirmed_since = None;
            persisted.max(self.free_end)
        } else {
            persisted
        };
        self.consume_to(target.min(self.seen))
    }

    /// The writer made no progress for a while: remove what was read anyway.
    fn consume_stale(&mut self) {
        if self
            .unconfirmed_since
            .is_some_and(|since| since.elapsed() >= MAX_UNCONFIRMED_AGE)
        {
            self.unconfirmed_since = None;
            if let Err(err) = self.consume_to(self.seen) {
                self.warn_failed(&err);
            }
        }
    }

    /// Whether bytes read are still in the FIFO (waiting for the writer
    /// thread's confirmation). The kernel wakes a FIFO's reader in the
    /// middle of one `write(2)` only when the FIFO was empty: a writer
    /// blocked in a long write fills the room these bytes leave without
    /// making the FIFO readable again, so the reader must look by itself.
    fn holds_unconsumed(&self) -> bool {
        self.protected && self.seen > self.consumed
    }

    fn all_frames_confirmed(&self) -> bool {
        self.ack.persisted.load(Ordering::Acquire) >= self.queued_end
    }

    /// Removes FIFO bytes up to stream offset `to`.
    fn consume_to(&mut self, to: u64) -> io::Result<()> {
        if !self.protected || to <= self.consumed {
            return Ok(());
        }
        let mut left = (to - self.consumed) as usize;
        while left > 0 {
            let n = match discard_some(self.fifo.as_raw_fd(), left) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if n == 0 {
                break;
            }
            left -= n;
            self.consumed += n as u64;
        }
        Ok(())
    }

    /// At EOF: an unfinished frame is reported, an unfinished line delivered.
    fn finish_at_eof(&mut self) {
        let truncated = self.decoder.discard_buffered();
        if truncated > 0 {
            count_invalid(
                &self.journal,
                &mut self.frame_warning,
                truncated,
                "truncated frame at EOF",
            );
        }
        let mut lines = Vec::new();
        self.assembler.flush(&mut lines);
        let intake = self.journal.intake();
        intake.commit(lines, [None, None], None);
    }

    /// On a plugin stop: what is on disk leaves the FIFO, the rest stays
    /// there for the next process. A frame that had to be read out of the
    /// FIFO (the disk was behind) is finished first.
    async fn finish_at_stop(&mut self) {
        let deadline = Instant::now() + STOP_GRACE;
        let fifo = self.watched();
        while Instant::now() < deadline {
            let read_out_partially =
                self.consumed > self.seen - self.decoder.buffered_bytes() as u64;
            if self.all_frames_confirmed() && !read_out_partially {
                break;
            }
            match &fifo {
                Some(fifo) => {
                    if read_out_partially
                        && let Ok(guard) =
                            tokio::time::timeout(Duration::from_millis(50), fifo.readable()).await
                        && let Ok(mut guard) = guard
                        && matches!(self.pump(), Ok(Pump::NothingNew))
                    {
                        guard.clear_ready();
                    }
                }
                None if read_out_partially => {
                    tokio::time::sleep(POLL_EVERY).await;
                    let _ = self.pump();
                }
                None => {}
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(50), self.ack.notify.notified()).await;
        }
        let _ = self.consume_confirmed();
        // Lines held by the assembler are in the FIFO's unread bytes or the
        // journal; nothing to flush.
    }

    fn warn_failed(&mut self, err: &io::Error) {
        if let Some(suppressed) = self.error_warning.allow(Instant::now()) {
            tracing::warn!(container = %self.journal.name, error = %err, similar_suppressed = suppressed, "reading the log FIFO failed; reading on (only the daemon closing it ends it)");
        }
    }
}

/// Counts a frame that could not be used and the bytes skipped for it.
fn count_invalid(journal: &Journal, warning: &mut Throttle, bytes: usize, reason: &str) {
    let counters = &journal.counters;
    ContainerCounters::add(&counters.invalid_frames, 1);
    ContainerCounters::add(&counters.skipped_bytes, bytes as u64);
    let total = counters.invalid_frames.load(Ordering::Relaxed);
    if let Some(suppressed) = warning.allow(Instant::now()) {
        tracing::warn!(
            container = %journal.name,
            invalid_frames = total,
            skipped_bytes = bytes,
            similar_suppressed = suppressed,
            reason,
            "skipped bytes of the log FIFO that were not a frame"
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Pump {
    Data,
    NothingNew,
    Eof,
}

#[derive(Debug, PartialEq, Eq)]
enum New {
    Bytes,
    Nothing,
    Eof,
}

/// Whether the FIFO's writer has gone (POLLHUP).
fn hung_up(fd: RawFd) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
    n > 0 && pollfd.revents & libc::POLLHUP != 0
}

fn pipe_size(fd: RawFd) -> usize {
    // SAFETY: fcntl query on a descriptor we own.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    if size > 0 { size as usize } else { 64 * 1024 }
}

/// `/dev/null`, where bytes leave a pipe; `None` while it cannot be opened
/// (at the fd limit), and tried again the next time.
fn dev_null() -> Option<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Some(fd.as_raw_fd());
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")
        .ok()?;
    Some(NULL.get_or_init(|| file.into()).as_raw_fd())
}

/// Removes up to `n` bytes from the pipe `fd` (non-blocking): spliced into
/// `/dev/null`, or, without it, read and thrown away. Returns how many.
fn discard_some(fd: RawFd, n: usize) -> io::Result<usize> {
    let moved = match dev_null() {
        // SAFETY: splice from a pipe we own into /dev/null.
        Some(null) => unsafe {
            libc::splice(
                fd,
                std::ptr::null_mut(),
                null,
                std::ptr::null_mut(),
                n,
                libc::SPLICE_F_NONBLOCK,
            )
        },
        None => {
            let mut scratch = [0u8; 16 * 1024];
            let want = n.min(scratch.len());
            // SAFETY: reading at most `want` bytes into our buffer.
            unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), want) }
        }
    };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(moved as usize)
}

/// Registers a reader's FIFO with the runtime's epoll.
fn watch_fifo(fd: RawFd) -> io::Result<AsyncFd<RawFd>> {
    #[cfg(test)]
    if tests::NO_EPOLL.with(std::cell::Cell::get) {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    // SAFETY: `fd` is the reader's `fifo`, which stays open until the
    // reader is dropped; every AsyncFd is dropped before: the reader's
    // `watch` field comes first, and the clones `run` and `finish_at_stop`
    // take end with them, before the reader ends.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|err| err.into_parts().1)
}

/// Waits until the FIFO is readable; forever without one (a `select!`
/// branch guarded by `fifo.is_some()` never polls it then).
async fn readable(
    fifo: Option<&AsyncFd<RawFd>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, RawFd>> {
    match fifo {
        Some(fifo) => fifo.readable().await,
        None => std::future::pending().await,
    }
}

/// A pipe private to one runtime thread, that `tee` copies the FIFO into.
/// The reader empties it before it yields, so one per thread is enough.
struct PrivatePipe {
    read: RawFd,
    write: RawFd,
    capacity: usize,
    _fds: [OwnedFd; 2],
}

impl PrivatePipe {
    fn new() -> io::Result<PrivatePipe> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned here.
        let owned = unsafe {
            use std::os::fd::FromRawFd;
            [OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])]
        };
        // SAFETY: fcntl on our pipe; failure leaves the default size.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, FIFO_SIZE as libc::c_int) };
        Ok(PrivatePipe {
            read: fds[0],
            write: fds[1],
            capacity: pipe_size(fds[1]),
            _fds: owned,
        })
    }

    /// Drops `n` bytes from the pipe.
    fn discard(&self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let moved = discard_some(self.read, n)?;
            if moved == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            n -= moved;
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (they are in the pipe) into `buf`.
    fn read_exact_into(&self, buf: &mut bytes::BytesMut, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let spare = buf.spare_capacity_mut();
            let want = n.min(spare.len());
            // SAFETY: reading into uninitialized spare capacity; only the
            // bytes read are then exposed.
            let got = unsafe { libc::read(self.read, spare.as_mut_ptr().cast(), want) };
            if got <= 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `got` bytes were written by read(2).
            unsafe { buf.set_len(buf.len() + got as usize) };
            n -= got as usize;
        }
        Ok(())
    }
}

/// Runs `f` with this thread's private pipe (created on first use).
fn private_pipe<T>(f: impl FnOnce(&PrivatePipe) -> io::Result<T>) -> io::Result<T> {
    thread_local! {
        // Made on first use; if that fails (EMFILE), tried again next time.
        static PIPE: std::cell::OnceCell<PrivatePipe> = const { std::cell::OnceCell::new() };
    }
    #[cfg(test)]
    if tests::NO_PRIVATE_PIPE.with(std::cell::Cell::get) {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    PIPE.with(|cell| {
        let pipe = match cell.get() {
            Some(pipe) => pipe,
            None => {
                let made = PrivatePipe::new()?;
                cell.get_or_init(|| made)
            }
        };
        let result = f(pipe);
        if result.is_err() {
            // Leave the pipe empty for the next reader on this thread.
            let mut scratch = [0u8; 4096];
            // SAFETY: draining our own nonblocking pipe.
            while unsafe { libc::read(pipe.read, scratch.as_mut_ptr().cast(), scratch.len()) } > 0 {
            }
        }
        result
    })
}

/// When the reader looks at the FIFO again by itself (see
/// [`Reader::holds_unconsumed`]): at once after it made room, then after
/// a pause that grows while nothing new comes, up to [`RECHECK_MAX`].
#[derive(Debug, Default)]
struct Recheck {
    at: Option<tokio::time::Instant>,
    pause: Duration,
}

/// Longest pause between two looks at a FIFO that holds unconfirmed bytes.
const RECHECK_MAX: Duration = Duration::from_millis(50);

impl Recheck {
    fn now(&mut self) {
        self.at = Some(tokio::time::Instant::now());
    }

    fn later(&mut self) {
        self.pause = (self.pause * 2).clamp(COALESCE, RECHECK_MAX);
        self.at = Some(tokio::time::Instant::now() + self.pause);
    }

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }
}

/// Sleeps until `at`; forever when there is no `at` (a `select!` branch
/// guarded by `at.is_some()` never polls it then).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalConfig, Store, StoreSettings};
    use crate::proto::logdriver::LogEntry;
    use bytes::Bytes;
    use std::io::Write;

    thread_local! {
        /// Makes this thread's private pipe impossible to create, as at the
        /// fd limit (EMFILE) on a thread that had none yet.
        pub(super) static NO_PRIVATE_PIPE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// Makes registering a FIFO with epoll fail on this thread.
        pub(super) static NO_EPOLL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn fifo(dir: &std::path::Path) -> (String, std::fs::File) {
        let path = dir.join("fifo");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path.to_str().unwrap().to_string(), writer)
    }

    fn frame(text: &str) -> Vec<u8> {
        crate::frame::encode_frame(&LogEntry {
            source: "stdout".into(),
            time_nano: 1,
            line: Bytes::copy_from_slice(text.as_bytes()),
            ..LogEntry::default()
        })
        .to_vec()
    }

    /// The journal `abc` of a store under `dir`, with a reader attached
    /// (the store is returned to be kept: journals hold it weakly).
    fn attached_journal(dir: &std::path::Path) -> (Arc<Store>, Arc<Journal>) {
        let store = store(Some(dir));
        let journal = store
            .open("abc", "abc", config(), Arc::default(), None)
            .unwrap();
        journal.attach_reader();
        (store, journal)
    }

    fn store(dir: Option<&std::path::Path>) -> Arc<Store> {
        Store::new(
            dir.map(|d| d.join("journal")),
            StoreSettings {
                disk_limit: 1 << 30,
                max_age: None,
                memory_limit: 1 << 30,
                max_readers: 4,
            },
        )
    }

    fn config() -> JournalConfig {
        JournalConfig {
            max_size: Some(1 << 20),
            max_file: 5,
            no_file: false,
            keep_file: false,
            disk_limit: 1 << 30,
            memory_limit: 1 << 30,
            journaled_memory: usize::MAX,
            max_line: 256_000,
        }
    }

    #[tokio::test]
    async fn bytes_leave_the_fifo_only_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let (_store, journal) = attached_journal(dir.path());
        let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
        assert!(reader.protected, "tee works on this kernel");
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(reader.run(stop));
        for i in 0..1000 {
            writer.write_all(&frame(&format!("line {i}"))).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while journal.counters.received.load(Ordering::Relaxed) < 1000 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Everything was written to disk, so the FIFO is empty again.
        let mut left = 0i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // SAFETY: FIONREAD on our own descriptor.
            unsafe { libc::ioctl(writer.as_raw_fd(), libc::FIONREAD, &mut left) };
            if left == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(left, 0);
        stop_tx.send_replace(true);
        assert_eq!(task.await.unwrap(), ReadEnd::Stopped);
    }

    #[tokio::test]
    async fn after_a_restart_frames_already_in_the_journal_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let store = store(Some(dir.path()));
        let journal = store
            .open("abc", "abc", config(), Arc::default(), None)
            .unwrap();
        // Frames 0..5 are in the journal and, as if the plugin died before
        // removing them, still in the FIFO; 5..8 are new.
        let mut recent = RecentRecords::new();
        for i in 0..8 {
            let bytes = frame(&format!("line {i}"));
            if i < 5 {
                recent.insert(payload_hash(&bytes[4..]));
            }
            writer.write_all(&bytes).unwrap();
        }
        journal.attach_reader();
        let reader = Reader::new(
            open_fifo(&path).unwrap(),
            journal.clone(),
            256_000,
            Some(ResumePoint {
                recent,
                unfinished: Vec::new(),
            }),
        );
        let (_stop_tx, stop) = watch::channel(false);
        tokio::spawn(reader.run(stop));
        let deadline = Instant::now() + Duration::from_secs(10);
        while journal.counters.received.load(Ordering::Relaxed) < 3 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(journal.counters.received.load(Ordering::Relaxed), 3);
        assert_eq!(
            journal.counters.duplicates_skipped.load(Ordering::Relaxed),
            5
        );
    }

    #[tokio::test]
    async fn eof_ends_the_reader_and_reports_a_truncated_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let store = store(None);
        let journal = store
            .open("abc", "abc", config(), Arc::default(), None)
            .unwrap();
        journal.attach_reader();
        let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
        writer.write_all(&frame("whole")).unwrap();
        writer.write_all(&frame("cut short")[..7]).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(reader.run(stop));
        drop(writer);
        let end = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, ReadEnd::Eof);
        assert_eq!(journal.counters.received.load(Ordering::Relaxed), 1);
        assert_eq!(journal.counters.invalid_frames.load(Ordering::Relaxed), 1);
        assert_eq!(journal.counters.skipped_bytes.load(Ordering::Relaxed), 7);
    }

    /// Waits until the journal received `n` lines; false after 10 s.
    async fn received(journal: &Journal, n: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while journal.counters.received.load(Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Issue 15: a reader that cannot get its thread's private pipe for
    /// `tee` (EMFILE, on a thread that had none yet) reads the FIFO plainly
    /// meanwhile, and uses `tee` again once it can. It used to end as if
    /// the FIFO had closed, leaving the container's stdout unread.
    #[tokio::test]
    async fn without_a_pipe_for_tee_the_fifo_is_read_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let (_store, journal) = attached_journal(dir.path());
        let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
        assert!(reader.protected);
        let (_stop_tx, stop) = watch::channel(false);
        NO_PRIVATE_PIPE.with(|no| no.set(true));
        let task = tokio::spawn(reader.run(stop));
        for i in 0..1000 {
            writer.write_all(&frame(&format!("line {i}"))).unwrap();
        }
        let read = received(&journal, 1000).await;
        assert!(!task.is_finished(), "the reader ended");
        assert!(read, "{}", journal.counters.summary());
        NO_PRIVATE_PIPE.with(|no| no.set(false));
        for i in 1000..2000 {
            writer.write_all(&frame(&format!("line {i}"))).unwrap();
        }
        assert!(received(&journal, 2000).await);
        assert!(!task.is_finished());
        assert_eq!(journal.counters.invalid_frames.load(Ordering::Relaxed), 0);
    }

    /// Issue 15, with a real fd limit: in a child process whose
    /// RLIMIT_NOFILE leaves no descriptor free (as with many containers),
    /// a reader whose journal cannot create its segment keeps reading the
    /// FIFO: the lines go to memory, the daemon never waits. (Opening
    /// /dev/null to remove read bytes used to panic the reader there.)
    #[test]
    fn at_the_fd_limit_the_fifo_is_still_read() {
        if std::env::var_os("INGEST_FD_LIMIT_CHILD").is_some() {
            return at_the_fd_limit_child();
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "ingest::tests::at_the_fd_limit_the_fifo_is_still_read",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("INGEST_FD_LIMIT_CHILD", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{text}");
        assert!(text.contains("child: read 5000 lines"), "{text}");
    }

    fn at_the_fd_limit_child() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (path, writer) = fifo(dir.path());
            let (_store, journal) = attached_journal(dir.path());
            let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
            assert!(reader.protected);
            // The daemon's side, non-blocking so that a reader that stopped
            // shows as a full FIFO instead of a hang.
            let fd = writer.as_raw_fd();
            // SAFETY: fcntl on our own descriptor.
            unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
            // No descriptor left: the limit is what is open now.
            let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
            let limit = libc::rlimit {
                rlim_cur: open,
                rlim_max: open,
            };
            // SAFETY: setrlimit of this (child) process.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            let mut held = Vec::new();
            loop {
                // SAFETY: dup of our own descriptor.
                let dup = unsafe { libc::dup(fd) };
                if dup < 0 {
                    break;
                }
                held.push(dup);
            }
            let (_stop_tx, stop) = watch::channel(false);
            let task = tokio::spawn(reader.run(stop));
            let mut writer = writer;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut i = 0;
            let mut pending = frame(&format!("line {i:05} {}", "x".repeat(400)));
            while i < 5000 {
                match writer.write(&pending) {
                    Ok(n) if n == pending.len() => {
                        i += 1;
                        pending = frame(&format!("line {i:05} {}", "x".repeat(400)));
                    }
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        assert!(
                            Instant::now() < deadline,
                            "the FIFO stayed full: {} lines read; reader ended: {}",
                            journal.counters.received.load(Ordering::Relaxed),
                            task.is_finished()
                        );
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err(err) => panic!("{err}"),
                }
            }
            assert!(
                received(&journal, 5000).await,
                "{}",
                journal.counters.summary()
            );
            assert!(!task.is_finished());
            println!("child: read 5000 lines; {}", journal.counters.summary());
        });
    }

    /// Issue 15: a FIFO that epoll cannot watch (a failed registration)
    /// is still read, every few milliseconds, instead of being left alone.
    #[tokio::test]
    async fn a_fifo_epoll_cannot_watch_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let (_store, journal) = attached_journal(dir.path());
        NO_EPOLL.with(|no| no.set(true));
        let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
        NO_EPOLL.with(|no| no.set(false));
        assert!(matches!(reader.watch, Watch::Poll));
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(reader.run(stop));
        for i in 0..2000 {
            writer.write_all(&frame(&format!("line {i}"))).unwrap();
        }
        assert!(received(&journal, 2000).await);
        stop_tx.send_replace(true);
        assert_eq!(task.await.unwrap(), ReadEnd::Stopped);
    }

    /// A busy FIFO leaves epoll while the reader pauses between two steps
    /// (its writes would wake a runtime thread each). When epoll will not
    /// take it back, the reader still reads it, by itself, and takes it back
    /// into epoll once it can.
    #[tokio::test]
    async fn a_fifo_epoll_will_not_take_back_after_a_pause_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = fifo(dir.path());
        let (_store, journal) = attached_journal(dir.path());
        let reader = Reader::new(open_fifo(&path).unwrap(), journal.clone(), 256_000, None);
        assert!(matches!(reader.watch, Watch::Epoll(_)));
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(reader.run(stop));
        let mut sent = 0;
        for refused in [false, true, false] {
            // The reader runs on this thread: its registrations see this.
            NO_EPOLL.with(|no| no.set(refused));
            for _ in 0..20 {
                // Small steps: each makes the reader pause, out of epoll.
                for _ in 0..10 {
                    writer.write_all(&frame(&format!("line {sent}"))).unwrap();
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            assert!(
                received(&journal, sent).await,
                "epoll refused: {refused}; {}",
                journal.counters.summary()
            );
        }
        stop_tx.send_replace(true);
        assert_eq!(task.await.unwrap(), ReadEnd::Stopped);
    }
}
