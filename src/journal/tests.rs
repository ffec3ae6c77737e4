//! The journal on its own: intake, memory bound, read-back, cursor,
//! retention and `docker logs`.

use std::time::Duration;

use prost::Message;

use super::*;
use crate::assemble::Assembler;
use crate::frame::{Frame, FrameDecoder};
use crate::line::{Line, Source};
use crate::observe::{DropReason, Drops};
use crate::proto::logdriver::{LogEntry, PartialLogEntryMetadata};

fn config() -> JournalConfig {
    JournalConfig {
        max_size: Some(1 << 20),
        max_file: 5,
        no_file: false,
        keep_file: false,
        disk_limit: 1 << 30,
        memory_limit: 1 << 20,
        journaled_memory: usize::MAX,
        max_line: 256_000,
    }
}

fn settings() -> StoreSettings {
    StoreSettings {
        disk_limit: 1 << 30,
        max_age: None,
        memory_limit: 64 << 20,
        max_readers: 4,
    }
}

/// A store with [`settings`] on the temporary directory `dir`.
fn disk_store(dir: &tempfile::TempDir) -> Arc<Store> {
    Store::new(Some(dir.path().to_path_buf()), settings())
}

/// Drops the store's open journals without closing them, as a kill -9
/// would leave them.
fn crash(store: &Store) {
    store.open.lock().unwrap().clear();
}

fn entry(source: &str, ts: i64, text: &str) -> LogEntry {
    LogEntry {
        source: source.into(),
        time_nano: ts,
        line: Bytes::copy_from_slice(text.as_bytes()),
        ..LogEntry::default()
    }
}

/// Frame `ordinal` of a line the daemon cut into partial frames: 16 `x`s
/// on stdout, the last frame if `last`.
fn part(ordinal: i32, last: bool) -> LogEntry {
    LogEntry {
        partial: true,
        partial_log_metadata: Some(PartialLogEntryMetadata {
            last,
            id: "p".into(),
            ordinal,
        }),
        ..entry("stdout", 1, &"x".repeat(16))
    }
}

/// Feeds entries through an intake as a FIFO reader does.
fn feed(journal: &Journal, entries: Vec<LogEntry>) {
    feed_with(
        &mut Assembler::new(journal.config().max_line),
        journal,
        entries,
    );
}

fn feed_with(assembler: &mut Assembler, journal: &Journal, entries: Vec<LogEntry>) {
    let mut intake = journal.intake();
    let mut lines = Vec::new();
    for entry in entries {
        let payload = entry.encode_to_vec();
        let seq = intake.record(&payload);
        assembler.push(entry, seq, &mut lines).unwrap();
    }
    intake.commit(lines, assembler.joining_since(), None);
}

fn numbered(range: std::ops::Range<usize>) -> Vec<LogEntry> {
    range
        .map(|i| entry("stdout", i as i64, &format!("line {i:06}")))
        .collect()
}

/// The numbers of lines made by [`numbered`], in the order given.
fn numbers_of(lines: &[Line]) -> Vec<usize> {
    texts(lines)
        .iter()
        .map(|t| t[5..].parse().unwrap())
        .collect()
}

fn texts(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect()
}

/// A memory bound of 20 of [`numbered`]'s lines: more wait on disk.
fn small_memory() -> JournalConfig {
    JournalConfig {
        memory_limit: 20 * (11 + crate::line::LINE_OVERHEAD),
        ..config()
    }
}

/// Lines of 64 bytes at most, and a memory share of one such line: the
/// pieces of a long line leave memory as soon as more comes.
fn one_piece_share() -> JournalConfig {
    JournalConfig {
        max_line: 64,
        journaled_memory: 64 + crate::line::LINE_OVERHEAD,
        ..config()
    }
}

/// A journal (of [`one_piece_share`]) whose stdout line is still being
/// read, with two pieces of 64 bytes out of memory and on disk: nine
/// frames of [`part`], then a line on stderr that passes the bound. The
/// assembler goes on with the line.
fn line_unfinished_on_disk(store: &Store, id: &str) -> (Arc<Journal>, Assembler) {
    let journal = open(store, id, one_piece_share());
    let mut assembler = Assembler::new(64);
    let frames = (1..=9).map(|i| part(i, false)).collect();
    feed_with(&mut assembler, &journal, frames);
    settle(&journal);
    feed_with(
        &mut assembler,
        &journal,
        vec![entry("stderr", 2, "on stderr")],
    );
    settle(&journal);
    (journal, assembler)
}

/// Every one of the `lines` the journal received was sent: none dropped,
/// none pending.
fn assert_all_sent(journal: &Journal, lines: u64) {
    let counters = &journal.counters;
    assert_eq!(counters.received.load(Ordering::Relaxed), lines);
    assert_eq!(counters.sent.load(Ordering::Relaxed), lines);
    assert_eq!(counters.dropped_total(), 0);
    assert_eq!(counters.pending(), 0);
}

/// The lines of `lines` from stdout.
fn stdout_of(lines: &[Line]) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l.source == Source::Stdout)
        .cloned()
        .collect()
}

/// Feeds lines `0..100 * chunks` of [`numbered`], 100 to an intake.
fn feed_chunks(journal: &Journal, chunks: usize) {
    for chunk in 0..chunks {
        feed(journal, numbered(chunk * 100..chunk * 100 + 100));
    }
}

/// Waits until the writer has written everything queued.
fn settle(journal: &Journal) {
    for _ in 0..500 {
        if !journal.queue.lock().unwrap().scheduled {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the writer did not finish");
}

fn open(store: &Store, id: &str, config: JournalConfig) -> Arc<Journal> {
    store
        .open(id, id, config, Arc::default(), Some(b"{}"))
        .unwrap()
}

/// Takes and acknowledges everything pending; returns the lines in order.
async fn deliver_all(journal: &Arc<Journal>) -> Vec<Line> {
    let mut all = Vec::new();
    for _ in 0..10_000 {
        match journal.take(64 * 1024).await {
            Some(taken) => {
                all.extend(taken.lines.iter().cloned());
                journal.ack(taken, Outcome::Sent);
            }
            None if journal.is_drained() => return all,
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    panic!("delivery never drained");
}

#[tokio::test]
async fn lines_go_to_memory_and_records_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "aaa", config());
    feed(&journal, numbered(0..100));
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(delivered.len(), 100);
    assert_eq!(texts(&delivered)[99], "line 000099");
    let counters = &journal.counters;
    assert_eq!(counters.received.load(Ordering::Relaxed), 100);
    assert_eq!(counters.sent.load(Ordering::Relaxed), 100);
    assert_eq!(counters.pending(), 0);
    assert_eq!(
        journal.cursor(),
        [100, 100],
        "a quiet stderr does not pin the cursor"
    );
    let segments = record::list_segments(&dir.path().join("aaa"));
    assert_eq!(segments.len(), 1);
}

#[tokio::test]
async fn past_the_memory_bound_lines_wait_on_disk_and_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "bbb", small_memory());
    feed_chunks(&journal, 50);
    settle(&journal);
    assert!(journal.queued_bytes() <= 21 * (11 + crate::line::LINE_OVERHEAD));
    assert!(journal.counters.backlog_lines.load(Ordering::Relaxed) > 4000);
    assert_eq!(
        numbers_of(&deliver_all(&journal).await),
        (0..5000).collect::<Vec<_>>(),
        "all, once, in order"
    );
    assert_eq!(journal.counters.dropped_total(), 0);
    assert_eq!(journal.counters.pending(), 0);
}

/// Issue 16: a batch read back from disk stops before the line that would
/// take it past its size, as a batch from memory does. It used to take
/// that line too; the push cut it off and sent it alone: every other push
/// to Loki was a single line.
#[tokio::test]
async fn batches_read_back_from_disk_stay_within_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "sized", small_memory());
    feed_chunks(&journal, 20);
    settle(&journal);
    assert!(journal.counters.backlog_lines.load(Ordering::Relaxed) > 1900);
    // 11-byte lines and 9 more bytes each (as metadata would count): 5
    // lines make 100 bytes, and a sixth would go past the size.
    let (size, per_line) = (110, 9);
    let (mut all, mut batches) = (Vec::new(), Vec::new());
    while let Some(taken) = journal.take_with(size, per_line).await {
        batches.push(taken.lines.len());
        let bytes: usize = taken.lines.iter().map(|l| l.bytes.len() + per_line).sum();
        assert!(bytes <= size, "a batch of {bytes} bytes, over {size}");
        all.extend(taken.lines.iter().cloned());
        journal.ack(taken, Outcome::Sent);
    }
    assert_eq!(numbers_of(&all), (0..2000).collect::<Vec<_>>());
    let full = batches.iter().filter(|&&n| n == 5).count();
    assert!(
        full >= batches.len() - 2,
        "batches of 5 lines, not 6 and 1: {batches:?}"
    );
}

/// Issue 16: without `loki-buffer-size`, lines the journal holds leave
/// memory past a smaller share (`journaled_memory`), once written: delivery
/// reads them back, and none is dropped.
#[tokio::test]
async fn written_lines_leave_memory_past_their_share_and_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let line = 11 + crate::line::LINE_OVERHEAD;
    let journal = open(
        &store,
        "share",
        JournalConfig {
            journaled_memory: 20 * line,
            ..config()
        },
    );
    for chunk in 0..50 {
        feed(&journal, numbered(chunk * 100..chunk * 100 + 100));
        settle(&journal);
    }
    // The last 100 were not written yet when they came: they stay.
    assert!(
        journal.queued_bytes() <= 120 * line,
        "{}",
        journal.queued_bytes()
    );
    assert!(journal.counters.backlog_lines.load(Ordering::Relaxed) > 4000);
    assert_eq!(
        numbers_of(&deliver_all(&journal).await),
        (0..5000).collect::<Vec<_>>(),
        "all, once, in order"
    );
    assert_eq!(journal.counters.dropped_total(), 0);
    assert_eq!(journal.counters.pending(), 0);
}

/// Issue 16: many containers each under their own share still leave
/// their written lines past a plugin-wide share (`JOURNALED_TOTAL`), the
/// largest holders first; every line comes back, none is dropped.
#[tokio::test]
async fn written_lines_of_many_journals_leave_memory_past_the_plugin_wide_share() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = JournalConfig {
        memory_limit: 64 << 20,
        ..config()
    };
    let journals: Vec<_> = (0..3)
        .map(|i| open(&store, &format!("many{i}"), config.clone()))
        .collect();
    let text = "x".repeat(1000);
    for chunk in 0..80 {
        for journal in &journals {
            let entries = (0..100)
                .map(|i| entry("stdout", (chunk * 100 + i) as i64, &text))
                .collect();
            feed(journal, entries);
            settle(journal);
        }
    }
    let waiting: usize = journals.iter().map(|j| j.queued_bytes()).sum();
    // Within the share, but for the lines too new to have been written.
    assert!(waiting <= JOURNALED_TOTAL + 300 * 1100, "{waiting}");
    for journal in &journals {
        assert!(journal.counters.backlog_lines.load(Ordering::Relaxed) > 0);
        assert_eq!(deliver_all(journal).await.len(), 8000);
        assert_eq!(
            journal.counters.dropped_total(),
            0,
            "{}",
            journal.counters.summary()
        );
    }
}

/// Issue 16: the share applies only to lines on disk. Without a data
/// directory, or when their writes fail (a full disk), lines stay in
/// memory up to `loki-buffer-size`: the share never drops one.
#[tokio::test]
async fn lines_not_on_disk_stay_in_memory_past_the_journaled_share() {
    let dir = tempfile::tempdir().unwrap();
    let line = 11 + crate::line::LINE_OVERHEAD;
    let shared = JournalConfig {
        journaled_memory: 20 * line,
        ..config()
    };
    let memory_only = Store::new(None, settings());
    let on_disk = disk_store(&dir);
    let full = open(&on_disk, "full", shared.clone());
    *full.write_hook.lock().unwrap() = Some(disk_full_after(0));
    for journal in [open(&memory_only, "memory", shared), full] {
        for chunk in 0..50 {
            feed(&journal, numbered(chunk * 100..chunk * 100 + 100));
            settle(&journal);
        }
        assert_eq!(
            journal.queued_bytes(),
            5000 * line,
            "{}",
            journal.counters.summary()
        );
        assert_eq!(deliver_all(&journal).await.len(), 5000);
        assert_eq!(
            journal.counters.dropped_total(),
            0,
            "{}",
            journal.counters.summary()
        );
        assert_eq!(journal.counters.pending(), 0);
    }
}

#[tokio::test]
async fn without_a_data_directory_the_memory_bound_drops_the_oldest() {
    let store = Store::new(None, settings());
    let small = JournalConfig {
        memory_limit: 10 * (11 + crate::line::LINE_OVERHEAD),
        ..config()
    };
    let journal = open(&store, "ccc", small);
    feed(&journal, numbered(0..100));
    let delivered = deliver_all(&journal).await;
    assert_eq!(delivered.len(), 10);
    assert_eq!(texts(&delivered)[0], "line 000090");
    assert_eq!(journal.counters.dropped(DropReason::MemoryFull), 90);
    assert_eq!(journal.counters.pending(), 0);
}

#[tokio::test]
async fn the_plugin_wide_bound_takes_from_the_journal_holding_the_most() {
    let store = Store::new(
        None,
        StoreSettings {
            memory_limit: 100 * (11 + crate::line::LINE_OVERHEAD),
            ..settings()
        },
    );
    let quiet = open(&store, "quiet", config());
    let noisy = open(&store, "noisy", config());
    feed(&quiet, numbered(0..20));
    for chunk in 0..10 {
        feed(&noisy, numbered(chunk * 50..chunk * 50 + 50));
    }
    assert_eq!(
        deliver_all(&quiet).await.len(),
        20,
        "the quiet one keeps all"
    );
    assert!(noisy.counters.dropped(DropReason::MemoryFull) > 0);
}

#[tokio::test]
async fn a_restarted_journal_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, "ddd", config());
        feed(&journal, numbered(0..10));
        settle(&journal);
        let taken = journal.take(5 * 11).await.unwrap();
        assert_eq!(taken.len(), 5);
        journal.ack(taken, Outcome::Sent);
        retention::persist_cursor(&journal);
        // Lines 5..10 were never delivered: the plugin "crashes" here.
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "ddd", config());
    feed(&journal, numbered(10..12));
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    let texts = texts(&delivered);
    assert_eq!(texts.first().unwrap(), "line 000005");
    assert_eq!(texts.len(), 7, "5 recovered and 2 new: {texts:?}");
    assert_eq!(journal.counters.recovered.load(Ordering::Relaxed), 5);
    assert_eq!(journal.counters.received.load(Ordering::Relaxed), 2);
}

/// A batch that rolls on (a backlog keeping two pushes out): more lines
/// join it while it is out, and the lines at its front are finished as
/// they are delivered. The cursor moves past those only: after a crash,
/// the lines still out are read again, and the finished ones are not.
#[tokio::test]
async fn a_rolling_batch_finishes_its_front_and_a_crash_resends_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, "roll", small_memory());
        feed_chunks(&journal, 10);
        settle(&journal);
        assert!(journal.has_disk_backlog());
        // 11-byte lines: 10 to a batch of 110 bytes.
        let mut taken = journal.take(110).await.unwrap();
        assert_eq!(numbers_of(&taken.lines), (0..10).collect::<Vec<_>>());
        assert!(journal.take(110).await.is_none(), "one batch out at a time");
        assert!(journal.take_more(&mut taken, 110, 0).await);
        assert_eq!(numbers_of(&taken.lines), (0..20).collect::<Vec<_>>());
        let in_flight = || journal.counters.in_flight_lines.load(Ordering::Relaxed);
        assert_eq!(in_flight(), 20);
        assert!(journal.ack_front(&mut taken, 10, &Drops::default()));
        assert_eq!(numbers_of(&taken.lines), (10..20).collect::<Vec<_>>());
        assert_eq!(journal.counters.sent.load(Ordering::Relaxed), 10);
        assert_eq!(in_flight(), 10);
        assert!(journal.take_more(&mut taken, 110, 0).await);
        assert_eq!(numbers_of(&taken.lines), (10..30).collect::<Vec<_>>());
        // Two of the next ten were refused by Loki.
        let mut drops = Drops::default();
        drops.add(DropReason::Rejected, 2);
        assert!(journal.ack_front(&mut taken, 10, &drops));
        assert_eq!(journal.counters.sent.load(Ordering::Relaxed), 18);
        assert_eq!(journal.counters.dropped_total(), 2);
        assert_eq!(numbers_of(&taken.lines), (20..30).collect::<Vec<_>>());
        retention::persist_cursor(&journal);
        // Lines 20..30 are out, never delivered: the plugin "crashes".
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "roll", config());
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        numbers_of(&delivered),
        (20..1000).collect::<Vec<_>>(),
        "the lines out again, the finished ones not"
    );
}

/// A rolling batch moves a quiet source's cursor (stderr, which wrote
/// nothing) as a batch that ends does, so retention can delete what Loki
/// has; and the age of the oldest line waiting follows the roll.
#[tokio::test]
async fn a_rolling_batch_moves_a_quiet_sources_cursor_as_an_ending_batch_does() {
    let store = Store::new(None, settings());
    let rolled = store.open_in_memory("rolled", "rolled", config(), Arc::default());
    let ended = store.open_in_memory("ended", "ended", config(), Arc::default());
    for journal in [&rolled, &ended] {
        feed(journal, numbered(0..100));
    }
    let taken = ended.take(110).await.unwrap();
    ended.ack(taken, Outcome::Sent);
    let mut taken = rolled.take(110).await.unwrap();
    assert!(rolled.take_more(&mut taken, 110, 0).await);
    assert!(rolled.ack_front(&mut taken, 10, &Drops::default()));
    assert_eq!(rolled.delivery_cursor(), ended.delivery_cursor());
    let oldest = |j: &Journal| j.counters.oldest_pending_ns.load(Ordering::Relaxed);
    assert_eq!(oldest(&rolled), 20, "lines 10..20 are out; line 20 waits");
    assert_eq!(oldest(&ended), 10);
}

/// Without a data directory lines are never on disk, and none can be
/// given back to it at a shutdown: the front of a rolling batch is
/// finished all the same.
#[tokio::test]
async fn a_batch_of_memory_only_lines_finishes_its_front_where_nothing_is_on_disk() {
    let store = Store::new(None, settings());
    let journal = store.open_in_memory("mem", "mem", config(), Arc::default());
    feed(&journal, numbered(0..30));
    let mut taken = journal.take(110).await.unwrap();
    assert!(journal.take_more(&mut taken, 110, 0).await);
    assert!(journal.ack_front(&mut taken, 10, &Drops::default()));
    assert_eq!(numbers_of(&taken.lines), (10..20).collect::<Vec<_>>());
    journal.ack(taken, Outcome::Sent);
    assert_eq!(journal.counters.sent.load(Ordering::Relaxed), 20);
}

#[tokio::test]
async fn a_long_line_cut_at_the_crash_is_recovered_whole_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, "eee", config());
        // The first two pieces reach the journal; the plugin dies before the third.
        feed(&journal, vec![part(1, false), part(2, false)]);
        settle(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "eee", config());
    let delivered = deliver_all(&journal).await;
    assert_eq!(texts(&delivered), ["x".repeat(32)]);
}

/// A line longer than the maximum goes in pieces, each acknowledged at
/// the line's first record. When that record is the first of a run and
/// the pieces are read back from disk, they are this run's lines: not
/// recovered from an earlier run, and not missing from this one.
#[tokio::test]
async fn pieces_of_a_long_line_at_a_runs_first_record_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_line: 64,
        ..small_memory()
    };
    {
        let store = disk_store(&dir);
        let journal = open(&store, "fff", config.clone());
        feed(&journal, numbered(0..5));
        settle(&journal);
        deliver_all(&journal).await;
        retention::persist_cursor(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "fff", config);
    // This run's first record is a line of three pieces; the lines after
    // it push the pieces out of memory, so they are read back from disk.
    feed(&journal, vec![entry("stdout", 9, &"x".repeat(150))]);
    feed_chunks(&journal, 5);
    settle(&journal);
    assert!(journal.has_disk_backlog());
    let delivered = deliver_all(&journal).await;
    assert_eq!(texts(&delivered)[..3].concat(), "x".repeat(150));
    assert_eq!(delivered.len(), 3 + 500);
    let counters = &journal.counters;
    assert_eq!(counters.recovered.load(Ordering::Relaxed), 0);
    assert_eq!(counters.dropped(DropReason::JournalCorrupt), 0);
    assert_eq!(counters.received.load(Ordering::Relaxed), 503);
    assert_eq!(counters.sent.load(Ordering::Relaxed), 503);
}

/// Every piece of a long line leaves memory with its first: also the last
/// piece, which is acknowledged at the line's end, not at its start. Were
/// it left behind, delivery would take it from memory and find nothing to
/// read back before it: the other pieces would be stranded on disk.
#[tokio::test]
async fn a_long_line_leaves_memory_whole_with_its_last_piece() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = JournalConfig {
        max_line: 64,
        // Room for the three full pieces: the bound is passed by the
        // line after, and freeing those pieces is enough.
        journaled_memory: 3 * (64 + crate::line::LINE_OVERHEAD),
        ..config()
    };
    let journal = open(&store, "whole", config);
    // 200 bytes: pieces of 64, 64, 64 and 8, held together until written.
    feed(&journal, vec![entry("stdout", 1, &"x".repeat(200))]);
    settle(&journal);
    feed(&journal, numbered(0..1));
    settle(&journal);
    assert!(journal.has_disk_backlog(), "the long line waits on disk");
    let delivered = deliver_all(&journal).await;
    let lengths: Vec<usize> = delivered.iter().map(|l| l.bytes.len()).collect();
    assert_eq!(lengths, [64, 64, 64, 8, 11]);
    assert_eq!(texts(&delivered)[..4].concat(), "x".repeat(200));
    assert_all_sent(&journal, 5);
}

/// The pieces of a line still being read leave memory; the pieces that
/// come after them go to disk too, and delivery reads the whole line back
/// once its last piece is in, in order, before the lines after it.
#[tokio::test]
async fn pieces_of_a_line_still_being_read_leave_memory_and_the_rest_follow_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let (journal, mut assembler) = line_unfinished_on_disk(&store, "unfinished");
    assert!(
        !journal.has_disk_backlog(),
        "nothing to read back before the line ends"
    );
    // More pieces, then the last, and a line after the long one.
    feed_with(
        &mut assembler,
        &journal,
        (10..=30).map(|i| part(i, false)).collect(),
    );
    let mut after = (31..=32).map(|i| part(i, i == 32)).collect::<Vec<_>>();
    after.extend(numbered(0..1));
    feed_with(&mut assembler, &journal, after);
    settle(&journal);
    assert!(journal.has_disk_backlog(), "the whole line waits on disk");
    let delivered = deliver_all(&journal).await;
    let stdout = stdout_of(&delivered);
    let texts = texts(&stdout);
    let lengths: Vec<usize> = texts.iter().map(String::len).collect();
    assert_eq!(
        lengths,
        [64, 64, 64, 64, 64, 64, 64, 64, 11],
        "8 pieces, then the line after"
    );
    assert_eq!(
        texts[..8].concat(),
        "x".repeat(32 * 16),
        "the long line, whole, in order"
    );
    assert_eq!(texts[8], "line 000000");
    assert_eq!(delivered.len(), 10, "and the line on stderr");
    assert_all_sent(&journal, 10);
}

/// A long line that left memory unfinished ends with a blank last piece,
/// which is not held: the line is still read back whole, up to where the
/// reader got, and the lines after it come after it.
#[tokio::test]
async fn a_long_line_on_disk_whose_last_piece_is_blank_is_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = one_piece_share();
    let journal = open(&store, "blank", config.clone());
    let frame = |ordinal: i32, last: bool, text: &str| LogEntry {
        line: Bytes::copy_from_slice(text.as_bytes()),
        ..part(ordinal, last)
    };
    let mut assembler = Assembler::new(config.max_line);
    // 128 bytes: a piece of 64 out, 64 joined still.
    feed_with(
        &mut assembler,
        &journal,
        vec![frame(1, false, &"x".repeat(128))],
    );
    settle(&journal);
    feed_with(
        &mut assembler,
        &journal,
        vec![entry("stderr", 2, "on stderr")],
    );
    settle(&journal);
    // The second piece, and a last piece of two spaces.
    feed_with(&mut assembler, &journal, vec![frame(2, true, "  ")]);
    settle(&journal);
    assert!(
        journal.has_disk_backlog(),
        "the line ended: it waits on disk"
    );
    feed(&journal, numbered(0..1));
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    let stdout = stdout_of(&delivered);
    assert_eq!(
        texts(&stdout),
        ["x".repeat(64), "x".repeat(64), "line 000000".into()]
    );
    assert_eq!(delivered.len(), 4, "and the line on stderr");
    assert_all_sent(&journal, 4);
}

/// While a line's pieces wait on disk for its end, lines of the other
/// source are read back from disk and delivered: the pieces are not taken
/// for lines missing from disk meanwhile.
#[tokio::test]
async fn pieces_waiting_for_their_line_to_end_are_not_counted_missing_by_the_other_sources_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let (journal, mut assembler) = line_unfinished_on_disk(&store, "other");
    for i in 0..5 {
        let line = entry("stderr", 3 + i, &format!("stderr {i}"));
        feed_with(&mut assembler, &journal, vec![line]);
        settle(&journal);
    }
    let taken = journal.take(64 * 1024).await.expect("stderr lines");
    assert!(taken.lines.iter().all(|l| l.source == Source::Stderr));
    let mut delivered = taken.lines.clone();
    journal.ack(taken, Outcome::Sent);
    assert_eq!(journal.counters.dropped_total(), 0);
    let frames = (10..=12).map(|i| part(i, i == 12)).collect();
    feed_with(&mut assembler, &journal, frames);
    settle(&journal);
    delivered.extend(deliver_all(&journal).await);
    assert_eq!(texts(&stdout_of(&delivered)).concat(), "x".repeat(12 * 16));
    assert_all_sent(&journal, 3 + 1 + 5);
    assert_eq!(gauges(&journal), (0, 0, 0));
}

/// Delivery reads a long line back while the writer is still writing its
/// end: what is on disk stops inside the line. Its pieces are not taken
/// then; the line is read again, whole, once the writer has written it.
/// (Taking them would move delivery inside the line, and the read after
/// would skip the line's end as part of a line already delivered.)
#[tokio::test]
async fn a_long_line_whose_end_is_not_written_yet_is_read_back_once_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let (journal, mut assembler) = line_unfinished_on_disk(&store, "slow");
    // The writer writes one more chunk of the line, then stalls on the one
    // with its end.
    let gate = Arc::new((Mutex::new((1usize, false)), std::sync::Condvar::new()));
    let hook_gate = gate.clone();
    *journal.write_hook.lock().unwrap() = Some(Arc::new(move |_| {
        let (lock, opened) = &*hook_gate;
        let mut state = lock.lock().unwrap();
        if state.0 > 0 {
            state.0 -= 1;
            return Ok(());
        }
        while !state.1 {
            state = opened.wait(state).unwrap();
        }
        Ok(())
    }));
    feed_with(
        &mut assembler,
        &journal,
        (10..=20).map(|i| part(i, false)).collect(),
    );
    settle(&journal);
    feed_with(
        &mut assembler,
        &journal,
        (21..=32).map(|i| part(i, i == 32)).collect(),
    );
    assert!(
        journal.has_disk_backlog(),
        "the line ended: it waits on disk"
    );
    let mut early = Vec::new();
    for _ in 0..3 {
        if let Some(taken) = journal.take(64 * 1024).await {
            early.extend(taken.lines.iter().cloned());
            journal.ack(taken, Outcome::Sent);
        }
    }
    assert!(
        early.iter().all(|l| l.source == Source::Stderr),
        "no piece is taken before the line's end is on disk"
    );
    {
        let (lock, opened) = &*gate;
        lock.lock().unwrap().1 = true;
        opened.notify_all();
    }
    settle(&journal);
    let mut delivered = early;
    delivered.extend(deliver_all(&journal).await);
    let stdout = stdout_of(&delivered);
    assert_eq!(
        texts(&stdout).concat(),
        "x".repeat(32 * 16),
        "the line, whole, in order"
    );
    assert_eq!(stdout.len(), 8);
    assert_all_sent(&journal, 9);
}

/// The pieces of a long line leave memory after the reader has emitted
/// its blank last piece (not held): the line is read back all the same,
/// and delivery does not pass it.
#[tokio::test]
async fn a_long_line_whose_blank_last_piece_was_read_before_it_left_memory_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "blank2", one_piece_share());
    // One record: pieces of 64 and 64, then a last piece of two spaces.
    feed(
        &journal,
        vec![entry("stdout", 1, &format!("{}  ", "x".repeat(128)))],
    );
    settle(&journal);
    feed(&journal, vec![entry("stderr", 2, "on stderr")]);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(delivered.len(), 3, "two pieces and the line on stderr");
    assert_eq!(journal.counters.pending(), 0);
    assert_eq!(journal.counters.sent.load(Ordering::Relaxed), 3);
}

/// A batch takes the first piece of a long line from memory; the rest of
/// the line then leaves memory. The read back skips the piece delivered:
/// each piece goes once.
#[tokio::test]
async fn pieces_taken_before_the_rest_of_their_line_left_memory_are_not_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "partly", one_piece_share());
    feed(&journal, vec![entry("stdout", 1, &"x".repeat(200))]);
    settle(&journal);
    let first = journal.take(1).await.expect("a batch");
    assert_eq!(first.lines.len(), 1, "room for one piece");
    feed(&journal, numbered(0..1));
    settle(&journal);
    let mut delivered = first.lines.clone();
    journal.ack(first, Outcome::Sent);
    delivered.extend(deliver_all(&journal).await);
    let lengths: Vec<usize> = delivered.iter().map(|l| l.bytes.len()).collect();
    assert_eq!(lengths, [64, 64, 64, 8, 11], "each piece once");
    assert_eq!(texts(&delivered)[..4].concat(), "x".repeat(200));
    let counters = &journal.counters;
    assert_eq!(counters.sent.load(Ordering::Relaxed), 5);
    assert_eq!(counters.received.load(Ordering::Relaxed), 5);
    assert_eq!(counters.backlog_lines.load(Ordering::Relaxed), 0);
}

/// The FIFO ends inside a long line whose pieces left memory: the rest of
/// the line (flushed at EOF, with no record of its own) is on disk too and
/// is delivered from there, whole.
#[tokio::test]
async fn a_fifo_that_ends_inside_a_line_on_disk_delivers_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let (journal, mut assembler) = line_unfinished_on_disk(&store, "eof");
    // EOF, as the FIFO reader ends.
    let mut lines = Vec::new();
    assembler.flush(&mut lines);
    journal.intake().commit(lines, [None, None], None);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    let stdout = stdout_of(&delivered);
    assert_eq!(
        texts(&stdout).concat(),
        "x".repeat(9 * 16),
        "the whole line"
    );
    assert_eq!(journal.counters.dropped_total(), 0);
    assert_eq!(journal.counters.pending(), 0);
}

/// The write of a long line's end fails after its pieces left memory.
/// However delivery looks, what is on disk of the line is delivered and
/// the rest counted: nothing waits for an end that will not come.
#[tokio::test]
async fn a_long_line_whose_end_could_not_be_written_is_delivered_as_far_as_it_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let (journal, mut assembler) = line_unfinished_on_disk(&store, "stall");
    *journal.write_hook.lock().unwrap() = Some(disk_full_after(0));
    feed_with(
        &mut assembler,
        &journal,
        (10..=12).map(|i| part(i, i == 12)).collect(),
    );
    settle(&journal);
    assert!(journal.has_disk_backlog());
    // Delivery looks while the writer, having failed the write and woken
    // delivery, still counts as busy.
    journal.queue.lock().unwrap().scheduled = true;
    let taken = journal.take(64 * 1024).await;
    journal.queue.lock().unwrap().scheduled = false;
    let mut delivered = Vec::new();
    if let Some(taken) = taken {
        delivered.extend(taken.lines.iter().cloned());
        journal.ack(taken, Outcome::Sent);
    }
    delivered.extend(deliver_all(&journal).await);
    let stdout = stdout_of(&delivered);
    assert_eq!(
        texts(&stdout).concat(),
        "x".repeat(9 * 16),
        "what is on disk"
    );
    let counters = &journal.counters;
    assert_eq!(counters.pending(), 0);
    assert_eq!(
        counters.received.load(Ordering::Relaxed),
        counters.sent.load(Ordering::Relaxed) + counters.dropped_total()
    );
}

/// The gauges of lines in memory, on disk waiting, and out for delivery.
fn gauges(journal: &Journal) -> (i64, i64, i64) {
    let counters = &journal.counters;
    (
        counters.memory_lines.load(Ordering::Relaxed),
        counters.backlog_lines.load(Ordering::Relaxed),
        counters.in_flight_lines.load(Ordering::Relaxed),
    )
}

/// A frame of the partial stdout line of [`part`], with `text`.
fn frame_of(ordinal: i32, last: bool, text: &str) -> LogEntry {
    LogEntry {
        line: Bytes::copy_from_slice(text.as_bytes()),
        ..part(ordinal, last)
    }
}

/// The FIFO ends inside a long line whose pieces are all in memory: the
/// rest, flushed with no record of its own, has its records on disk. When
/// the container's memory bound takes the line, it goes to disk with its
/// pieces, and is sent once, not also counted as dropped.
#[tokio::test]
async fn the_rest_of_a_line_flushed_at_eof_is_on_disk_like_its_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = JournalConfig {
        max_line: 64,
        // Two pieces of 64 and the rest (16) fit; one more line does not.
        memory_limit: 144 + 3 * crate::line::LINE_OVERHEAD + 4,
        ..config()
    };
    let journal = open(&store, "eofrest", config);
    let mut assembler = Assembler::new(64);
    feed_with(
        &mut assembler,
        &journal,
        (1..=9).map(|i| part(i, false)).collect(),
    );
    settle(&journal);
    let mut rest = Vec::new();
    assembler.flush(&mut rest);
    journal.intake().commit(rest, [None, None], None);
    feed(&journal, vec![entry("stderr", 2, "on stderr")]);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(texts(&stdout_of(&delivered)).concat(), "x".repeat(9 * 16));
    assert_all_sent(&journal, 4);
    assert_eq!(journal.counters.journal_misses.load(Ordering::Relaxed), 0);
    assert_eq!(gauges(&journal), (0, 0, 0));
}

/// An earlier run stopped inside a long line, with a full piece of it cut
/// from what it wrote. This run's reader takes the line over: that piece
/// is read back from disk, and the rest of the line follows it there, so
/// the line arrives whole and each piece once, however delivery meets it.
async fn a_line_taken_over_with_a_piece_cut(
    id: &str,
    config: JournalConfig,
) -> (tempfile::TempDir, Arc<Store>, Arc<Journal>, Assembler) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, id, config.clone());
        // "before", then 80 bytes of the line: a piece of 64 cut.
        let mut entries = vec![entry("stdout", 0, "before")];
        entries.extend((1..=5).map(|o| frame_of(o, false, &"a".repeat(16))));
        feed(&journal, entries);
        settle(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, id, config);
    let resume = journal.resume_point(1 << 20);
    assert_eq!(resume.unfinished.len(), 5);
    let mut assembler = Assembler::new(64);
    journal.take_over(resume.unfinished, &mut assembler);
    (dir, store, journal, assembler)
}

#[tokio::test]
async fn a_line_taken_over_after_a_restart_arrives_whole_with_the_piece_cut_before() {
    let config = JournalConfig {
        max_line: 64,
        ..config()
    };
    let (_dir, _store, journal, mut assembler) =
        a_line_taken_over_with_a_piece_cut("over", config).await;
    let frames = (6..=9)
        .map(|o| frame_of(o, o == 9, &"b".repeat(16)))
        .collect();
    feed_with(&mut assembler, &journal, frames);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        texts(&delivered).concat(),
        format!("before{}{}", "a".repeat(80), "b".repeat(64)),
        "the whole line, after the line before it"
    );
    assert_eq!(gauges(&journal), (0, 0, 0));
}

#[tokio::test]
async fn a_line_taken_over_after_a_restart_is_sent_once_when_delivery_meets_it_midway() {
    let config = JournalConfig {
        max_line: 64,
        journaled_memory: 64 + crate::line::LINE_OVERHEAD,
        ..config()
    };
    let (_dir, _store, journal, mut assembler) =
        a_line_taken_over_with_a_piece_cut("midway", config).await;
    let frames = (6..=9)
        .map(|o| frame_of(o, false, &"b".repeat(16)))
        .collect();
    feed_with(&mut assembler, &journal, frames);
    settle(&journal);
    let mut delivered = Vec::new();
    for max_bytes in [64 * 1024, 1] {
        if let Some(taken) = journal.take(max_bytes).await {
            delivered.extend(taken.lines.iter().cloned());
            journal.ack(taken, Outcome::Sent);
        }
    }
    let frames = (10..=12)
        .map(|o| frame_of(o, o == 12, &"c".repeat(16)))
        .collect();
    feed_with(&mut assembler, &journal, frames);
    settle(&journal);
    feed(&journal, vec![entry("stderr", 2, "on stderr")]);
    settle(&journal);
    delivered.extend(deliver_all(&journal).await);
    assert_eq!(
        texts(&stdout_of(&delivered)).concat(),
        format!(
            "before{}{}{}",
            "a".repeat(80),
            "b".repeat(64),
            "c".repeat(48)
        ),
        "each piece once, none missing"
    );
    assert_eq!(gauges(&journal), (0, 0, 0));
}

/// Sent, counted as received by this run or as recovered from an earlier
/// one, none dropped, and the gauges back at 0.
fn assert_all_sent_or_recovered(journal: &Journal) {
    let counters = &journal.counters;
    let received = counters.received.load(Ordering::Relaxed);
    let recovered = counters.recovered.load(Ordering::Relaxed);
    assert_eq!(counters.dropped_total(), 0, "{}", counters.summary());
    assert_eq!(received + recovered, counters.sent.load(Ordering::Relaxed));
    assert_eq!(gauges(journal), (0, 0, 0));
}

/// A line taken over after a restart that ends with no frame of this run
/// (the FIFO ends at once): this run's reader ends it, so it is this run's
/// line, not recovered, and it is not also counted missing.
#[tokio::test]
async fn a_line_taken_over_and_ended_at_eof_at_once_is_counted_once() {
    let config = JournalConfig {
        max_line: 64,
        ..config()
    };
    let (_dir, _store, journal, mut assembler) =
        a_line_taken_over_with_a_piece_cut("overeof", config).await;
    let mut rest = Vec::new();
    assembler.flush(&mut rest);
    journal.intake().commit(rest, [None, None], None);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        texts(&delivered).concat(),
        format!("before{}", "a".repeat(80))
    );
    assert_all_sent_or_recovered(&journal);
}

/// The same, the line ended by a new line of its source.
#[tokio::test]
async fn a_line_taken_over_and_ended_by_a_new_line_is_counted_once() {
    let config = JournalConfig {
        max_line: 64,
        ..config()
    };
    let (_dir, _store, journal, mut assembler) =
        a_line_taken_over_with_a_piece_cut("overnew", config).await;
    feed_with(&mut assembler, &journal, vec![entry("stdout", 9, "after")]);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        texts(&delivered).concat(),
        format!("before{}after", "a".repeat(80))
    );
    assert_all_sent_or_recovered(&journal);
}

/// A line taken over with no piece cut, ended at EOF at once, and then
/// moved to disk by the memory bound: read back, it is this run's line.
#[tokio::test]
async fn a_short_line_taken_over_ended_and_read_back_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_line: 64,
        memory_limit: 40 + 2 * crate::line::LINE_OVERHEAD + 4,
        ..config()
    };
    {
        let store = disk_store(&dir);
        let journal = open(&store, "overshort", config.clone());
        let mut entries = vec![entry("stdout", 0, "before")];
        entries.extend((1..=2).map(|o| frame_of(o, false, &"a".repeat(16))));
        feed(&journal, entries);
        settle(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "overshort", config);
    let resume = journal.resume_point(1 << 20);
    assert_eq!(resume.unfinished.len(), 2);
    let mut assembler = Assembler::new(64);
    journal.take_over(resume.unfinished, &mut assembler);
    let mut rest = Vec::new();
    assembler.flush(&mut rest);
    journal.intake().commit(rest, [None, None], None);
    // A line on stderr pushes the rest to disk.
    feed(&journal, vec![entry("stderr", 5, &"e".repeat(40))]);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        texts(&stdout_of(&delivered)).concat(),
        format!("before{}", "a".repeat(32))
    );
    assert_all_sent_or_recovered(&journal);
}

/// A journal that cannot be written now (its `container.json` is a
/// directory) takes a line over with a piece cut: that piece is held in
/// memory, and the rest of the line joins it there, none dropped.
#[tokio::test]
async fn a_line_taken_over_by_a_journal_that_cannot_be_written_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_line: 64,
        ..config()
    };
    {
        let store = disk_store(&dir);
        let journal = open(&store, "overoff", config.clone());
        let mut entries = vec![entry("stdout", 0, "before")];
        entries.extend((1..=5).map(|o| frame_of(o, false, &"a".repeat(16))));
        feed(&journal, entries);
        settle(&journal);
        crash(&store);
    }
    let meta = dir.path().join("overoff").join(META_FILE);
    std::fs::remove_file(&meta).unwrap();
    std::fs::create_dir_all(meta.join("x")).unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "overoff", config);
    assert!(journal.is_on_disk() && !journal.writes_to_disk());
    let resume = journal.resume_point(1 << 20);
    let mut assembler = Assembler::new(64);
    journal.take_over(resume.unfinished, &mut assembler);
    let frames = (6..=9)
        .map(|o| frame_of(o, o == 9, &"b".repeat(16)))
        .collect();
    feed_with(&mut assembler, &journal, frames);
    let delivered = deliver_all(&journal).await;
    assert_eq!(
        texts(&delivered).concat(),
        format!("before{}{}", "a".repeat(80), "b".repeat(64))
    );
    assert_all_sent_or_recovered(&journal);
}

/// A line of three frames leaves memory past the container's bound before
/// the writer has written its last frame: delivery reads back what is on
/// disk, stops before that line, and reads it whole once it is written.
/// (Moving delivery to where the writer got, inside the line, made the next
/// read skip its last frame as part of a line already delivered: the line
/// was counted missing from disk.)
#[tokio::test]
async fn a_line_whose_last_frame_is_not_written_yet_is_read_back_once_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = JournalConfig {
        memory_limit: 100 + crate::line::LINE_OVERHEAD,
        ..config()
    };
    let journal = open(&store, "frames", config);
    let mut assembler = Assembler::new(256_000);
    feed_with(
        &mut assembler,
        &journal,
        vec![part(1, false), part(2, false)],
    );
    settle(&journal);
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let hook_gate = gate.clone();
    *journal.write_hook.lock().unwrap() = Some(Arc::new(move |_| {
        let (lock, opened) = &*hook_gate;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        Ok(())
    }));
    let more = vec![part(3, true), entry("stderr", 2, &"e".repeat(60))];
    feed_with(&mut assembler, &journal, more);
    assert!(journal.has_disk_backlog(), "the line left memory");
    let mut early = Vec::new();
    if let Some(taken) = journal.take(64 * 1024).await {
        early.extend(taken.lines.iter().cloned());
        journal.ack(taken, Outcome::Sent);
    }
    assert!(
        stdout_of(&early).is_empty(),
        "nothing of the line before it is on disk"
    );
    assert_eq!(journal.counters.dropped_total(), 0);
    {
        let (lock, opened) = &*gate;
        *lock.lock().unwrap() = true;
        opened.notify_all();
    }
    settle(&journal);
    let mut delivered = early;
    delivered.extend(deliver_all(&journal).await);
    assert_eq!(texts(&stdout_of(&delivered)), ["x".repeat(48)]);
    assert_all_sent(&journal, 2);
    assert_eq!(gauges(&journal), (0, 0, 0));
}

/// A disk bound deletes the segment just before the one a long line
/// starts: the line's pieces (acknowledged at that segment's first record,
/// where the deleted one ends) are still whole on disk, and are delivered
/// once they leave memory; only the deleted segment's lines are lost.
#[tokio::test]
async fn pieces_of_a_line_that_starts_a_segment_outlive_the_segment_before() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_size: Some(4096),
        max_file: 1,
        disk_limit: 4800,
        max_line: 1000,
        ..config()
    };
    let store = disk_store(&dir);
    let journal = open(&store, "seg", config);
    feed(&journal, numbered(0..100));
    settle(&journal);
    // 3,000 bytes that do not compress: a line of three pieces, which
    // starts the next segment.
    let mut x: u64 = 12345;
    let noise: String = (0..3000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (b'a' + ((x >> 33) % 26) as u8) as char
        })
        .collect();
    feed(&journal, vec![entry("stdout", 99, &noise)]);
    feed(&journal, numbered(100..120));
    settle(&journal);
    retention::apply(&journal);
    let segments = journal.segments();
    assert_eq!(
        segments[0].first_seq, 100,
        "the long line starts the kept segment"
    );
    journal.evict(usize::MAX, "test", false);
    let delivered = deliver_all(&journal).await;
    let pieces = texts(&delivered)
        .into_iter()
        .filter(|l| l.len() >= 1000)
        .collect::<Vec<_>>();
    assert_eq!(
        pieces.concat(),
        noise,
        "the long line, whole on disk, is delivered"
    );
    assert_eq!(journal.counters.dropped(DropReason::JournalFull), 100);
}

/// The write of a chunk that starts with a long line fails: its pieces
/// (acknowledged at the chunk's first record) are only in memory, so they
/// stay there when the lines on disk leave it.
#[tokio::test]
async fn pieces_of_a_chunk_whose_write_failed_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let config = JournalConfig {
        max_line: 64,
        journaled_memory: 10 * (11 + crate::line::LINE_OVERHEAD),
        ..config()
    };
    let journal = open(&store, "wfail", config);
    feed(&journal, numbered(0..10));
    settle(&journal);
    *journal.write_hook.lock().unwrap() = Some(disk_full_after(0));
    feed(&journal, vec![entry("stdout", 99, &"z".repeat(150))]);
    settle(&journal);
    feed(&journal, numbered(10..100));
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    let z: Vec<usize> = texts(&delivered)
        .iter()
        .filter(|l| l.starts_with('z'))
        .map(String::len)
        .collect();
    assert_eq!(z, [64, 64, 22], "the long line, whole");
    assert_eq!(journal.counters.dropped_total(), 0);
}

#[tokio::test]
async fn a_re_attached_reader_finishes_the_line_an_earlier_run_was_joining() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, "jjj", config());
        // Two pieces of a line reach the journal; the plugin dies before
        // the third, which stays in the FIFO.
        feed(
            &journal,
            vec![entry("stdout", 0, "before"), part(1, false), part(2, false)],
        );
        settle(&journal);
        crash(&store);
    }
    {
        let store = disk_store(&dir);
        let journal = open(&store, "jjj", config());
        let resume = journal.resume_point(1 << 20);
        assert_eq!(resume.recent.len(), 3);
        assert_eq!(
            resume
                .unfinished
                .iter()
                .map(|(seq, _)| *seq)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        // The reader takes the line over; the third piece joins it.
        let mut assembler = Assembler::new(journal.config().max_line);
        for (seq, entry) in resume.unfinished {
            assembler.push(entry, seq, &mut Vec::new()).unwrap();
        }
        feed_with(
            &mut assembler,
            &journal,
            vec![part(3, true), entry("stdout", 2, "after")],
        );
        settle(&journal);
        // Delivery reads the earlier run's lines back first: not the line
        // the reader took over.
        let taken = journal.take(64 * 1024).await.unwrap();
        assert_eq!(texts(&taken.lines), ["before"]);
        journal.ack(taken, Outcome::Sent);
        retention::persist_cursor(&journal);
        // Dies again before the joined line is delivered.
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "jjj", config());
    assert!(journal.resume_point(1 << 20).unfinished.is_empty());
    let delivered = deliver_all(&journal).await;
    assert_eq!(texts(&delivered), ["x".repeat(48), "after".to_string()]);
}

/// A line an earlier run left unfinished, taken over by this run's
/// reader, with its pieces read back from disk: the piece cut from the
/// earlier run's records is recovered, the pieces this run's reader cut
/// are its own lines, and none is counted missing.
#[tokio::test]
async fn pieces_of_a_line_taken_over_are_counted_by_the_run_that_cut_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_line: 64,
        ..small_memory()
    };
    {
        let store = disk_store(&dir);
        let journal = open(&store, "tko", config.clone());
        // 80 bytes of the line: a piece of 64 is cut at its fourth part.
        let mut entries = vec![entry("stdout", 0, "before")];
        entries.extend((1..=5).map(|o| part(o, false)));
        feed(&journal, entries);
        settle(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, "tko", config);
    let resume = journal.resume_point(1 << 20);
    assert_eq!(resume.unfinished.len(), 5);
    let mut assembler = Assembler::new(journal.config().max_line);
    for (seq, entry) in resume.unfinished {
        assembler.push(entry, seq, &mut Vec::new()).unwrap();
    }
    // 80 bytes more: this run cuts the second piece, then the last.
    feed_with(
        &mut assembler,
        &journal,
        (6..=10).map(|o| part(o, o == 10)).collect(),
    );
    // Enough lines after it that its pieces leave memory for disk.
    feed_chunks(&journal, 5);
    settle(&journal);
    assert!(journal.has_disk_backlog());
    let delivered = deliver_all(&journal).await;
    let texts = texts(&delivered);
    assert_eq!(texts[0], "before");
    assert_eq!(
        texts[1..4].concat(),
        "x".repeat(160),
        "the line once, in pieces"
    );
    assert_eq!(delivered.len(), 1 + 3 + 500);
    let counters = &journal.counters;
    assert_eq!(counters.dropped(DropReason::JournalCorrupt), 0);
    assert_eq!(counters.received.load(Ordering::Relaxed), 2 + 500);
    assert_eq!(
        counters.recovered.load(Ordering::Relaxed),
        2,
        "\"before\" and the piece cut in the earlier run"
    );
    assert_eq!(counters.sent.load(Ordering::Relaxed), 504);
}

#[tokio::test]
async fn a_torn_record_is_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = disk_store(&dir);
        let journal = open(&store, "fff", config());
        feed(&journal, numbered(0..3));
        settle(&journal);
        crash(&store);
    }
    let segment = &record::list_segments(&dir.path().join("fff"))[0].path;
    let mut bytes = std::fs::read(segment).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3]); // half a record
    std::fs::write(segment, &bytes).unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "fff", config());
    assert_eq!(std::fs::metadata(segment).unwrap().len() as usize, whole);
    feed(&journal, numbered(3..4));
    settle(&journal);
    assert_eq!(deliver_all(&journal).await.len(), 4);
}

#[tokio::test]
async fn delivered_segments_are_compressed_then_deleted_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let rotating = JournalConfig {
        max_size: Some(4096),
        max_file: 3,
        ..config()
    };
    let journal = open(&store, "ggg", rotating);
    for chunk in 0..40 {
        feed(&journal, numbered(chunk * 50..chunk * 50 + 50));
    }
    settle(&journal);
    assert!(record::list_segments(&dir.path().join("ggg")).len() > 5);
    deliver_all(&journal).await;
    retention::apply(&journal);
    let segments = record::list_segments(&dir.path().join("ggg"));
    assert_eq!(segments.len(), 3, "{segments:?}");
    assert!(segments[0].compressed && segments[1].compressed && !segments[2].compressed);
}

#[tokio::test]
async fn undelivered_segments_stay_until_the_disk_bound_and_are_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let bounded = JournalConfig {
        max_size: Some(4096),
        max_file: 1,
        disk_limit: 5 * 4096,
        memory_limit: 10 * (11 + crate::line::LINE_OVERHEAD),
        ..config()
    };
    let journal = open(&store, "hhh", bounded);
    for chunk in 0..40 {
        feed(&journal, numbered(chunk * 50..chunk * 50 + 50));
    }
    settle(&journal);
    retention::apply(&journal);
    assert!(journal.disk_bytes() <= 5 * 4096, "held at write time");
    // Lines that had left memory are counted as delivery comes to them.
    let delivered = deliver_all(&journal).await;
    let dropped = journal.counters.dropped(DropReason::JournalFull);
    assert!(dropped > 0, "the oldest undelivered segments went");
    assert_eq!(journal.counters.pending(), 0);
    assert_eq!(
        delivered.len() as u64 + dropped,
        2000,
        "every line accounted for"
    );
    let first: usize = texts(&delivered)[0][5..].parse().unwrap();
    assert_eq!(first as u64, dropped, "the oldest went first");
}

/// Reads a whole ReadLogs answer.
async fn read_logs(store: &Arc<Store>, id: &str, request: ReadRequest) -> Vec<String> {
    collect(store.read_logs(id, request, 256_000).unwrap()).await
}

/// The lines of a ReadLogs answer, until it ends.
async fn collect(mut rx: tokio::sync::mpsc::Receiver<Bytes>) -> Vec<String> {
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    while let Some(bytes) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
    {
        decoder.extend(&bytes);
        while let Some(crate::frame::Frame::Entry { entry, .. }) = decoder.next() {
            out.push(String::from_utf8_lossy(&entry.line).into_owned());
        }
    }
    out
}

#[tokio::test]
async fn docker_logs_reads_every_segment_and_tail_reads_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let rotating = JournalConfig {
        max_size: Some(4096),
        max_file: 100,
        ..config()
    };
    let journal = open(&store, "iii", rotating);
    for chunk in 0..20 {
        feed(&journal, numbered(chunk * 50..chunk * 50 + 50));
    }
    settle(&journal);
    deliver_all(&journal).await;
    retention::apply(&journal); // compresses the delivered ones
    let all = read_logs(&store, "iii", ReadRequest::default()).await;
    assert_eq!(all.len(), 1000);
    assert_eq!(all[999], "line 000999\n");
    for tail in [1, 5, 70, 999, 1000, 5000] {
        let request = ReadRequest {
            tail: Some(tail),
            ..ReadRequest::default()
        };
        let lines = read_logs(&store, "iii", request).await;
        assert_eq!(lines.len(), tail.min(1000), "--tail {tail}");
        assert_eq!(lines.last().unwrap(), "line 000999\n");
    }
    let window = ReadRequest {
        since_ns: Some(100),
        until_ns: Some(199),
        ..ReadRequest::default()
    };
    assert_eq!(read_logs(&store, "iii", window).await.len(), 100);
}

#[tokio::test]
async fn follow_is_woken_by_the_writer_across_segments_until_the_reader_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let rotating = JournalConfig {
        max_size: Some(1024),
        ..config()
    };
    let journal = open(&store, "jjj", rotating);
    journal.attach_reader();
    let request = ReadRequest {
        follow: true,
        ..ReadRequest::default()
    };
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { read_logs(&store, "jjj", request).await })
    };
    for chunk in 0..30 {
        feed(&journal, numbered(chunk * 10..chunk * 10 + 10));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    journal.detach_reader(false);
    let lines = reader.await.unwrap();
    assert_eq!(lines.len(), 300);
    assert!(record::list_segments(&dir.path().join("jjj")).len() > 3);
}

#[tokio::test]
async fn too_many_readers_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "kkk", config());
    journal.attach_reader();
    let follow = ReadRequest {
        follow: true,
        ..ReadRequest::default()
    };
    let held: Vec<_> = (0..4)
        .map(|_| store.read_logs("kkk", follow.clone(), 256_000).unwrap())
        .collect();
    let err = store.read_logs("kkk", follow, 256_000).unwrap_err();
    assert!(
        err.to_string().contains("too many docker logs requests"),
        "{err}"
    );
    drop(held);
    journal.detach_reader(false);
    assert!(matches!(
        store.read_logs("nope", ReadRequest::default(), 256_000),
        Err(ReadError::NotFound)
    ));
}

#[tokio::test]
async fn a_follower_reads_every_segment_though_delivery_and_retention_race_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let rotating = JournalConfig {
        max_size: Some(2048),
        max_file: 2,
        ..config()
    };
    let journal = open(&store, "lll", rotating);
    journal.attach_reader();
    let follow = ReadRequest {
        follow: true,
        ..ReadRequest::default()
    };
    // The request comes first, as `docker logs -f` would.
    let reader = tokio::spawn(collect(store.read_logs("lll", follow, 256_000).unwrap()));
    for chunk in 0..40 {
        feed(&journal, numbered(chunk * 25..chunk * 25 + 25));
        // Delivered at once: retention would delete all but 2 segments.
        while let Some(taken) = journal.take(1 << 20).await {
            journal.ack(taken, Outcome::Sent);
        }
    }
    settle(&journal);
    journal.detach_reader(false);
    let lines = reader.await.unwrap();
    assert_eq!(lines.len(), 1000, "the follower saw every line");
    retention::apply(&journal);
    let segments = record::list_segments(&dir.path().join("lll"));
    assert_eq!(
        segments.len(),
        2,
        "once it is done, retention applies: {segments:?}"
    );
}

/// A write hook that fails every write (ENOSPC) once `budget` bytes went.
fn disk_full_after(budget: usize) -> WriteHook {
    let left = Mutex::new(budget);
    Arc::new(move |len| {
        let mut left = left.lock().unwrap();
        if len > *left {
            *left = 0;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        *left -= len;
        Ok(())
    })
}

/// Issue 15: the disk fills while lines leave memory for it. A line whose
/// record was only queued when it left memory, and whose write then
/// failed, is in neither place: it must be counted as dropped, so that
/// received = sent + dropped + pending, exactly.
#[tokio::test]
async fn lines_whose_write_failed_after_they_left_memory_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "full", small_memory());
    *journal.write_hook.lock().unwrap() = Some(disk_full_after(20_000));
    feed_chunks(&journal, 50);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    let counters = &journal.counters;
    let received = counters.received.load(Ordering::Relaxed);
    let sent = counters.sent.load(Ordering::Relaxed);
    assert_eq!(received, 5000);
    assert_eq!(sent, delivered.len() as u64);
    assert!(
        counters.dropped(DropReason::MemoryFull) > 0,
        "{}",
        counters.summary()
    );
    assert_eq!(counters.pending(), 0, "{}", counters.summary());
    assert_eq!(
        received,
        sent + counters.dropped_total(),
        "every line accounted for: {}",
        counters.summary()
    );
    // What was delivered is in order, and what is missing is what failed.
    assert!(numbers_of(&delivered).windows(2).all(|w| w[0] < w[1]));
}

/// Issue 15: at shutdown `Store::flush` writes what is queued while a
/// writer thread may be writing the same journal. They must take turns:
/// records interleaved out of order would make the next start reuse
/// sequence numbers.
#[tokio::test]
async fn flush_and_a_writer_thread_never_interleave_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "turns", config());
    // The writer thread stops before its first chunk (so that two more
    // queue up and it takes them together) and before the third.
    let (at_tx, at) = std::sync::mpsc::channel::<usize>();
    let (go, gone) = std::sync::mpsc::channel::<()>();
    let (gone, at_tx) = (Mutex::new(gone), Mutex::new(at_tx));
    let calls = std::sync::atomic::AtomicUsize::new(0);
    *journal.write_hook.lock().unwrap() = Some(Arc::new(move |_| {
        let calls = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if calls == 1 || calls == 3 {
            let _ = at_tx.lock().unwrap().send(calls);
            let _ = gone.lock().unwrap().recv_timeout(Duration::from_secs(5));
        }
        Ok(())
    }));
    feed(&journal, numbered(0..10));
    assert_eq!(at.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    feed(&journal, numbered(10..20));
    feed(&journal, numbered(20..30));
    go.send(()).unwrap();
    assert_eq!(at.recv_timeout(Duration::from_secs(5)).unwrap(), 3);
    // The writer thread holds the third chunk; the plugin stops now.
    feed(&journal, numbered(30..40));
    let flusher = {
        let store = store.clone();
        std::thread::spawn(move || store.flush())
    };
    std::thread::sleep(Duration::from_millis(100));
    go.send(()).unwrap();
    flusher.join().unwrap();
    settle(&journal);
    let segment = &record::list_segments(&dir.path().join("turns"))[0];
    let mut reader = record::ForwardReader::open(segment).unwrap();
    let mut seqs = Vec::new();
    while let Some(record) = reader.next().unwrap() {
        seqs.push(record.seq);
    }
    assert_eq!(seqs, (0..40).collect::<Vec<u64>>(), "records in order");
    drop(journal);
    crash(&store);
    let again = open(&disk_store(&dir), "turns", config());
    assert_eq!(
        *again.intake.lock().unwrap(),
        40,
        "no sequence number reused"
    );
}

/// Issue 15: whatever `LOCAL_STORE_SIZE` says, journals never write into
/// the last part of their filesystem (the margin): past it, lines go to
/// Loki from memory only, counted as journal misses, and nothing is lost
/// that memory can hold.
#[tokio::test]
async fn the_journal_leaves_a_margin_of_the_filesystems_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    // A 100 MB filesystem with 50 kB above its margin (5% of it).
    let margin = free_space_margin(100_000_000);
    assert_eq!(margin, 5_000_000);
    store.space().pretend(100_000_000, margin + 50_000);
    let journal = open(&store, "margin", config());
    feed_chunks(&journal, 50);
    settle(&journal);
    let on_disk = journal.disk_bytes();
    assert!(on_disk <= 50_000, "{on_disk} bytes written past the margin");
    assert!(
        on_disk > 40_000,
        "{on_disk}: the room above the margin is used"
    );
    let counters = &journal.counters;
    let misses = counters.journal_misses.load(Ordering::Relaxed);
    // About 17 bytes a line on disk: 3,000 fit, the rest are misses.
    assert!(misses > 1000, "{misses} journal misses");
    let delivered = deliver_all(&journal).await;
    assert_eq!(delivered.len(), 5000, "memory held what the disk could not");
    assert_eq!(counters.dropped_total(), 0);
    assert_eq!(counters.pending(), 0);
}

/// Issue 15: a journal that goes (its FIFO ended before a lane came, or a
/// lane never came) gives its lines' memory back to the plugin-wide budget.
#[tokio::test]
async fn a_journal_gives_its_memory_back_when_it_goes() {
    let store = Store::new(None, settings());
    let journal = open(&store, "gone", config());
    feed(&journal, numbered(0..100));
    assert!(store.budget().used() > 0);
    drop(journal);
    assert_eq!(store.budget().used(), 0);
}

/// Issue 15: the backlog check of a stored journal reads its last record
/// only, and tells delivered from undelivered.
#[tokio::test]
async fn a_stored_journal_is_checked_for_a_backlog_from_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(&store, "ccc", config());
    feed(&journal, numbered(0..1000));
    settle(&journal);
    assert!(store.has_undelivered("ccc"));
    deliver_all(&journal).await;
    retention::persist_cursor(&journal);
    assert!(!store.has_undelivered("ccc"));
}

/// A line's bytes are kept once: once its frame is recorded for the
/// writer, the line points into the record, and the buffer the frame was
/// read into is let go at once (it used to stay as long as the line, so a
/// line not yet on disk was held twice while the writer caught up).
#[tokio::test]
async fn lines_point_into_their_records_and_the_read_buffer_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = disk_store(&dir);
    let journal = open(
        &store,
        "aaa",
        JournalConfig {
            max_line: 64,
            ..config()
        },
    );
    let partial = |text: &str, ordinal, last| LogEntry {
        partial: true,
        partial_log_metadata: Some(PartialLogEntryMetadata {
            last,
            id: "p".into(),
            ordinal,
        }),
        ..entry("stderr", 7, text)
    };
    let mut entries = numbered(0..300);
    entries.push(entry("stdout", 0, "a line without a time")); // no time field
    entries.push(entry("stdout", 9, &"x".repeat(150))); // cut in three pieces
    entries.push(partial("joined ", 1, false));
    entries.push(partial("from two frames", 2, true));
    let mut wire = Vec::new();
    for e in &entries {
        wire.extend_from_slice(&crate::frame::encode_frame(e));
    }
    let mut decoder = FrameDecoder::new();
    decoder
        .read_buffer_exact(wire.len())
        .extend_from_slice(&wire);
    let mut assembler = Assembler::new(64);
    let mut intake = journal.intake();
    let mut lines = Vec::new();
    let mut read_buffer = None;
    while let Some(Frame::Entry { wire, entry }) = decoder.next() {
        read_buffer.get_or_insert_with(|| wire.clone());
        let seq = intake.record(&wire[4..]);
        assembler.push(entry, seq, &mut lines).unwrap();
    }
    intake.commit(lines, assembler.joining_since(), None);
    assert!(
        read_buffer.unwrap().is_unique(),
        "a line in memory still holds the buffer its frame was read into"
    );
    settle(&journal);
    let texts = texts(&deliver_all(&journal).await);
    assert_eq!(texts.len(), 300 + 1 + 3 + 1);
    assert_eq!(texts[299], "line 000299");
    assert_eq!(texts[300], "a line without a time");
    assert_eq!(texts[301..304].concat(), "x".repeat(150));
    assert_eq!(texts[304], "joined from two frames");
}

/// The plugin stops with a batch out, part of which Loki has. Of the
/// lines given back, those whose write had failed are lost (counted
/// `shutdown`) and those on disk wait for the next start (pending),
/// whichever of them Loki had: it was a bound before (as many lost as the
/// batch had only in memory), which counted lines on disk as lost when
/// Loki had taken the others.
#[tokio::test]
async fn at_shutdown_the_lines_given_back_are_lost_only_if_not_on_disk() {
    let no_filter = std::collections::BTreeMap::new();
    let settled = |sent| Settled {
        sent,
        dropped: Drops::default(),
        filtered: &no_filter,
        hold: [Seq::MAX; 2],
    };
    // Loki has the 10 lines only in memory, then the 20 on disk.
    for (loki_has, lost) in [(0..10, 0), (10..30, 10)] {
        let dir = tempfile::tempdir().unwrap();
        let store = disk_store(&dir);
        let journal = open(&store, "giveback", config());
        *journal.write_hook.lock().unwrap() = Some(disk_full_after(0));
        feed(&journal, numbered(0..10));
        settle(&journal);
        *journal.write_hook.lock().unwrap() = None;
        feed(&journal, numbered(10..30));
        settle(&journal);
        let taken = journal.take(1 << 20).await.expect("lines wait");
        assert_eq!(taken.len(), 30);
        let sent = loki_has.len() as u64;
        journal.abandon(Some(taken), settled(sent), 30 - sent, Some(&[loki_has]));
        let counters = &journal.counters;
        let summary = counters.summary();
        assert_eq!(counters.dropped(DropReason::Shutdown), lost, "{summary}");
        assert_eq!(counters.pending(), (30 - sent - lost) as i64, "{summary}");
        assert_eq!(counters.sent.load(Ordering::Relaxed), sent, "{summary}");
        assert_eq!(counters.received.load(Ordering::Relaxed), 30, "{summary}");
    }
}

/// In a journal kept in memory only every line is only in memory, and a
/// batch keeps no positions of them: one that rolls on (more lines taken,
/// its front finished as delivered) holds no more than its lines.
#[tokio::test]
async fn a_rolling_batch_of_a_journal_in_memory_only_keeps_no_positions() {
    let store = Store::new(None, settings());
    let journal = open(&store, "rolling", config());
    feed(&journal, numbered(0..10));
    let mut taken = journal.take(1 << 20).await.expect("lines wait");
    for round in 1..=20 {
        feed(&journal, numbered(round * 10..round * 10 + 10));
        assert!(journal.take_more(&mut taken, 1 << 20, 0).await);
        assert!(journal.ack_front(&mut taken, 10, &Drops::default()));
    }
    assert_eq!(taken.len(), 10);
    assert!(taken.unjournaled.is_empty(), "{:?}", taken.unjournaled);
}

/// A partial frame of the long line `id` (as the daemon marks them).
fn frame_in(id: &str, ordinal: i32, last: bool, text: &str) -> LogEntry {
    LogEntry {
        partial_log_metadata: Some(PartialLogEntryMetadata {
            last,
            id: id.into(),
            ordinal,
        }),
        ..frame_of(ordinal, last, text)
    }
}

/// The plugin restarts while two FIFOs of a container are attached (a
/// restart of the container, the old reader in the middle of a long line
/// of 64 `a`s), and finds both again, the old FIFO first or not: the
/// lines delivered once each reader has read what its FIFO still held.
async fn two_fifos_found_again(id: &str, old_first: bool) -> (Arc<Journal>, Vec<Line>) {
    let dir = tempfile::tempdir().unwrap();
    let a = |o: i32, last: bool| frame_in("a", o, last, &"a".repeat(16));
    {
        let store = disk_store(&dir);
        let journal = open(&store, id, config());
        let (mut old, mut new) = (Assembler::new(256_000), Assembler::new(256_000));
        feed_with(&mut new, &journal, vec![entry("stdout", 5, "new 1")]);
        feed_with(
            &mut old,
            &journal,
            vec![a(1, false), a(2, false), a(3, false)],
        );
        settle(&journal);
        crash(&store);
    }
    let store = disk_store(&dir);
    let journal = open(&store, id, config());
    let (mut old, mut new) = (Assembler::new(256_000), Assembler::new(256_000));
    let found = match old_first {
        true => [&mut old, &mut new],
        false => [&mut new, &mut old],
    };
    for assembler in found {
        let resume = journal.resume_point(1 << 20);
        journal.take_over(resume.unfinished, assembler);
    }
    feed_with(&mut old, &journal, vec![a(4, true)]);
    feed_with(&mut new, &journal, vec![entry("stdout", 6, "new 2")]);
    settle(&journal);
    let delivered = deliver_all(&journal).await;
    (journal, delivered)
}

/// The lines of `delivered` with the long line's `a`s in them.
fn long_line_parts(delivered: &[Line]) -> Vec<String> {
    texts(&stdout_of(delivered))
        .into_iter()
        .filter(|t| t.contains('a'))
        .collect()
}

/// Only the first re-attach takes the line over: found first, the old
/// FIFO's reader joins its last piece, and the line is delivered once,
/// whole. (Both readers took it over, and the other reader's next line
/// flushed its copy: the line's start went twice.)
#[tokio::test]
async fn only_one_of_two_re_attached_readers_takes_over_the_line_left_unfinished() {
    let (journal, delivered) = two_fifos_found_again("bothresume", true).await;
    let long = long_line_parts(&delivered);
    assert_eq!(long, ["a".repeat(64)], "{:?}", texts(&delivered));
    assert_all_sent_or_recovered(&journal);
}

/// The new FIFO found first: its reader takes the line over, and the new
/// FIFO's next line ends it where it was; the old FIFO's last piece is a
/// line of its own. Cut, but every byte once, and counted.
#[tokio::test]
async fn a_line_taken_over_by_the_wrong_fifo_is_cut_but_never_sent_twice() {
    let (journal, delivered) = two_fifos_found_again("wrongresume", false).await;
    let long = long_line_parts(&delivered).concat();
    assert_eq!(long, "a".repeat(64), "{:?}", texts(&delivered));
    assert_all_sent_or_recovered(&journal);
}
