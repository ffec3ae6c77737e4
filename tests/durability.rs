//! Nothing lost across crashes and long outages: the plugin binary between
//! a fake daemon and a fake Loki. Timings are printed; assertions are about
//! lines (all there, once, in order) and about the daemon never waiting.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::fake_daemon::{Fifo, Plugin, number_of, numbered, partials, start_request};
use support::fake_loki::{FakeLoki, Mode};

/// Numbers of the lines in Loki, in order of arrival per stream.
fn numbers_in_loki(loki: &FakeLoki) -> Vec<usize> {
    loki.entries_matching(&[])
        .iter()
        .map(|e| number_of(&e.text()))
        .collect()
}

fn assert_all_once_in_order(numbers: &[usize], count: usize) {
    let expected: Vec<usize> = (0..count).collect();
    if numbers != expected {
        let seen: std::collections::HashSet<usize> = numbers.iter().copied().collect();
        let missing: Vec<usize> = (0..count).filter(|n| !seen.contains(n)).collect();
        panic!(
            "{} lines in Loki for {count} written; missing {:?}...; first out of order at {:?}",
            numbers.len(),
            &missing[..missing.len().min(20)],
            numbers.windows(2).position(|w| w[1] != w[0] + 1)
        );
    }
}

/// The daemon's side: writes `count` lines of `len` bytes as its copier
/// does (16 KiB partial frames), `per_second` of them; returns the longest
/// time one write blocked.
fn spawn_writer(
    mut fifo: Fifo,
    count: usize,
    len: usize,
    per_second: usize,
) -> std::thread::JoinHandle<(Fifo, Duration)> {
    std::thread::spawn(move || {
        let mut longest = Duration::ZERO;
        let started = Instant::now();
        for n in 0..count {
            let text = numbered(n, len);
            for frame in partials("stdout", text.as_bytes(), &format!("{n:064}")) {
                longest = longest.max(fifo.write_entry(&frame));
            }
            let due = started + Duration::from_secs_f64((n + 1) as f64 / per_second as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (fifo, longest)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kills_during_a_flow_of_20000_byte_lines_lose_nothing() {
    const COUNT: usize = 3_000;
    let loki = FakeLoki::start().await;
    let mut plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    let request = start_request(
        &path,
        &[("loki-url", url.as_str()), ("loki-batch-wait", "100ms")],
    );
    plugin.start_logging(&request).await;
    // 200 lines a second: 15 s of writing, three kills in the middle of it.
    let writer = spawn_writer(fifo, COUNT, 20_000, 200);
    // Killed processes are kept (the first one owns the data directory).
    let mut killed = Vec::new();
    for kill in 1..=3 {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let at = numbers_in_loki(&loki).len();
        plugin.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let next = plugin.restart_from(&[]);
        killed.push(std::mem::replace(&mut plugin, next));
        eprintln!("kill {kill}: the plugin died with {at} lines in Loki; restarted");
    }
    let (mut fifo, _) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    plugin.stop_logging(&path).await;
    fifo.close();
    loki.wait_for_entries(COUNT, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let numbers = numbers_in_loki(&loki);
    assert_all_once_in_order(&numbers, COUNT);
    assert!(
        loki.entries_matching(&[])
            .iter()
            .all(|e| e.line.len() == 20_000),
        "every line arrived whole"
    );

    // docker logs has every line too, once.
    let logged = plugin
        .read_all_logs(&request, support::fake_daemon::read_config(-1, false))
        .await;
    let numbers: Vec<usize> = logged
        .iter()
        .map(|e| number_of(&String::from_utf8_lossy(&e.line)))
        .collect();
    assert_all_once_in_order(&numbers, COUNT);
    let log = plugin.log();
    assert!(log.contains("resumed=true"), "{log}");
}

/// Seconds Loki is away (half refusing connections, half not answering);
/// `LOKI_OUTAGE_SECONDS=600` gives the 10-minute run (`make soak`).
fn outage() -> Duration {
    let seconds = std::env::var("LOKI_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_costs_disk_not_lines_and_the_backlog_drains_within_a_minute() {
    const RATE: usize = 2_000;
    let outage = outage();
    let count = RATE * outage.as_secs() as usize;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    plugin
        .start_logging(&start_request(&path, &[("loki-url", url.as_str())]))
        .await;
    let rss = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (rss, pid) = (rss.clone(), plugin.pid());
        tokio::spawn(async move {
            loop {
                let kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                            })
                    })
                    .unwrap_or(0);
                rss.lock().unwrap().push(kib);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let writer = spawn_writer(fifo, count, 100, RATE);
    // Refusing connections for the first half, then accepting but never
    // answering for the second.
    tokio::time::sleep(outage / 2).await;
    loki.set_mode(Mode::Hang);
    loki.accept_connections().await;
    let (mut fifo, longest) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(loki.entry_count(), 0, "Loki took nothing while away");
    let back = Instant::now();
    loki.set_mode(Mode::Accept);
    plugin.stop_logging(&path).await;
    fifo.close();
    loki.wait_for_entries(count, Duration::from_secs(120)).await;
    let drained = back.elapsed();
    sampler.abort();
    let samples = rss.lock().unwrap().clone();
    let peak_mb = *samples.iter().max().unwrap_or(&0) as f64 / 1024.0;
    let half = samples.len() / 2;
    let first_half = *samples[..half.max(1)].iter().max().unwrap_or(&0) as f64 / 1024.0;
    eprintln!(
        "outage of {:?} at {RATE} lines/s: {count} lines; longest FIFO write {longest:?}; \
         plugin RSS peak {peak_mb:.1} MB (first half {first_half:.1} MB); backlog in Loki {:.1} s after its return",
        outage,
        drained.as_secs_f64()
    );
    assert_all_once_in_order(&numbers_in_loki(&loki), count);
    // Blocking would be seconds (the writer waits for Loki); on 2 shared
    // cores running both tests of this file at once, scheduling alone
    // has delayed the reader by 100 ms.
    assert!(
        longest < Duration::from_millis(250),
        "a FIFO write stalled for {longest:?}"
    );
    assert!(
        drained < Duration::from_secs(60),
        "the backlog took {drained:?}"
    );
    let log = plugin.log();
    assert!(
        !log.contains("dropped_memory_full=") || log.contains("dropped_memory_full=0"),
        "{log}"
    );
}

/// Issue 15: a container writes 2,000 lines while Loki is down, then stays
/// quiet (a service between bursts); the plugin is killed and restarted
/// while Loki is still down; then Loki comes back. The backlog is on disk
/// only, and the container's FIFO is read again: it must be in Loki within
/// 5 s of Loki answering (it never was: a disk backlog with nothing new in
/// memory never became due).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_containers_backlog_is_in_loki_within_5_s_of_its_return_after_a_restart() {
    const COUNT: usize = 2_000;
    let loki = FakeLoki::start_refusing().await;
    let mut plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    plugin
        .start_logging(&start_request(&path, &[("loki-url", url.as_str())]))
        .await;
    for n in 0..COUNT {
        fifo.write_entry(&support::fake_daemon::line("stdout", &numbered(n, 100)));
    }
    // On disk: the FIFO is empty again once the journal has every line.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fifo.unread() > 0 {
        assert!(
            Instant::now() < deadline,
            "the lines never reached the disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plugin.kill();
    let restarted = plugin.restart_from(&[]);
    let _killed = std::mem::replace(&mut plugin, restarted);
    plugin
        .wait_for_log("resumed=true", Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(loki.entry_count(), 0, "Loki is still down");
    loki.accept_connections().await;
    let back = Instant::now();
    loki.wait_for_entries(COUNT, Duration::from_secs(60)).await;
    let took = back.elapsed();
    eprintln!(
        "a quiet container's backlog of {COUNT} lines, after a restart: in Loki {took:?} after it answered"
    );
    assert_all_once_in_order(&numbers_in_loki(&loki), COUNT);
    assert!(took <= Duration::from_secs(5), "took {took:?}");
    drop(fifo);
}

/// A tmpfs of `mb` MB mounted on a fresh directory (root only), unmounted
/// when dropped; `None` (and a loud note) where mounting is not allowed.
struct SmallFilesystem {
    dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(mb: u64) -> Option<SmallFilesystem> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "\n!! durability: cannot mount a {mb} MB tmpfs (not root?): the disk-full test did NOT run\n"
            );
            return None;
        }
        Some(SmallFilesystem { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// (size, available) as statvfs says.
    fn space(&self) -> (u64, u64) {
        fs_space(self.path())
    }
}

/// (size, available) of the filesystem holding `path`, as statvfs says.
fn fs_space(path: &std::path::Path) -> (u64, u64) {
    let path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a zeroed statvfs is a valid out-parameter.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stats) }, 0);
    let block = stats.f_frsize as u64;
    (stats.f_blocks as u64 * block, stats.f_bavail as u64 * block)
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Issue 15: the data directory is a 32 MB filesystem and Loki is down
/// while a container writes `DISK_FULL_LINES` lines of 100 bytes (default
/// 300,000; 1,000,000 for the full run, about 95 MB), 50,000 a second; meanwhile another
/// program fills the filesystem up for a while, so that journal writes
/// fail (ENOSPC). The container is never slowed, the journal never eats
/// into the filesystem's margin on its own, and once Loki is back every
/// line is accounted for: received = sent + dropped (by reason), exactly,
/// and what was sent is in Loki.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_costs_lines_only_counted() {
    let count: usize = std::env::var("DISK_FULL_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let Some(fs) = SmallFilesystem::mount(32) else {
        return;
    };
    let (size, _) = fs.space();
    let margin = size / 20;
    let loki = FakeLoki::start_refusing().await;
    let plugin = Plugin::start_with_data_dir(&[], fs.path().join("data"));
    let fifo = Fifo::create();
    let path = fifo.path.clone();
    let url = loki.url();
    plugin
        .start_logging(&start_request(&path, &[("loki-url", url.as_str())]))
        .await;
    let writer = spawn_writer(fifo, count, 100, 50_000);
    // Close to the margin, another program fills the filesystem for half
    // a second: the plugin's writes meet ENOSPC.
    let data = fs.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs.space().1 > margin + (4 << 20) && !writer.is_finished() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filler = fs.path().join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::remove_file(&filler).unwrap();
    // Then the journal fills the filesystem again, up to its margin, while
    // the container goes on writing.
    let mut lowest = u64::MAX;
    while !writer.is_finished() {
        lowest = lowest.min(fs.space().1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    lowest = lowest.min(fs.space().1);
    let (mut fifo, longest) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert!(data.exists());
    loki.accept_connections().await;
    plugin.stop_logging(&path).await;
    fifo.close();
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(120))
        .await;
    let field = |key: &str| {
        support::fake_daemon::summary_field(&log, "fixture-app", key)
            .unwrap_or_else(|| panic!("no {key} in {log}"))
    };
    let dropped = support::fake_daemon::summary_line(&log, "container=fixture-app ")
        .map(support::fake_daemon::summary_dropped)
        .unwrap_or_else(|| panic!("no summary in {log}"));
    let (received, sent, pending) = (field("received"), field("sent"), field("pending"));
    let in_loki = loki.entry_count() as u64;
    eprintln!(
        "disk full: {count} lines into a {} MB filesystem (margin {} kB, lowest free seen after the filler {} kB): \
         received {received}, sent {sent}, dropped {dropped} (memory_full {}, journal_full {}), pending {pending}, \
         journal_misses {}, in Loki {in_loki}; writes failed (ENOSPC): {}, lines lost that way: {}; longest FIFO write {longest:?}",
        size >> 20,
        margin >> 10,
        lowest >> 10,
        field("dropped_memory_full"),
        field("dropped_journal_full"),
        field("journal_misses"),
        log.contains("writing the journal failed"),
        log.contains("were not on disk (a write failed)"),
    );
    assert_eq!(received, count as u64);
    assert_eq!(pending, 0);
    assert_eq!(received, sent + dropped, "every line accounted for");
    assert_eq!(sent, in_loki, "what counts as sent is in Loki");
    assert!(
        lowest + (64 << 10) >= margin,
        "the journal stayed out of the margin"
    );
    assert!(
        longest < Duration::from_millis(100),
        "a FIFO write stalled for {longest:?}"
    );
}

/// Writes a stored journal as the plugin leaves it: `records` frames of
/// about `len` bytes in one raw segment, no cursor (nothing delivered), and
/// the container's StartLogging request beside it.
fn stored_journal(
    data: &std::path::Path,
    id: &str,
    request: &serde_json::Value,
    records: usize,
    len: usize,
) {
    use loki_logdriver::journal::record;
    use prost::Message as _;
    let dir = data.join("journal").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = record::SEGMENT_MAGIC.to_vec();
    for seq in 0..records {
        let entry = support::fake_daemon::line("stdout", &numbered(seq, len));
        record::encode(seq as u64, &entry.encode_to_vec(), &mut bytes);
    }
    std::fs::write(record::SegmentFile::raw(&dir, 0), bytes).unwrap();
    std::fs::write(
        dir.join(loki_logdriver::journal::META_FILE),
        request.to_string(),
    )
    .unwrap();
}

/// Issue 15: startup used to re-attach FIFOs and check stored journals one
/// at a time, reading each journal's last segment through, before it
/// served the socket: dockerd waited. With 1,000 stored journals (256 KiB
/// each, undelivered) and 100 FIFOs to re-attach, the plugin answers
/// Capabilities and a new StartLogging within 1 s of starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_with_1000_journals_and_100_fifos_answers_dockerd_within_1_s() {
    let loki = FakeLoki::start_refusing().await;
    let url = loki.url();
    let data = tempfile::tempdir().unwrap();
    let mut fifos = Vec::new();
    for i in 0..1000 {
        let id = format!("{i:064x}");
        let mut request = start_request(
            std::path::Path::new("/nonexistent"),
            &[("loki-url", url.as_str())],
        );
        request["Info"]["ContainerID"] = id.clone().into();
        request["Info"]["ContainerName"] = format!("/c{i}").into();
        if i < 100 {
            let fifo = Fifo::create_named(&format!("{i:064x}"));
            request["File"] = fifo.path.to_string_lossy().into();
            let dir = data.path().join("attached");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{id}.json")), request.to_string()).unwrap();
            fifos.push(fifo);
        }
        stored_journal(data.path(), &id, &request, 1000, 240);
    }
    let started = Instant::now();
    let plugin = Plugin::start_with_data_dir(&[], data.path().to_path_buf());
    let (status, _) = plugin.call("/LogDriver.Capabilities", "").await;
    let capabilities = started.elapsed();
    assert_eq!(status, 200);
    let fresh = Fifo::create_named("fresh");
    let answer = plugin
        .start_logging(&start_request(&fresh.path, &[("loki-url", url.as_str())]))
        .await;
    let start_logging = started.elapsed();
    assert_eq!(answer, serde_json::json!({}));
    eprintln!(
        "startup with 1,000 stored journals (256 KiB each, undelivered) and 100 FIFOs to re-attach: \
         Capabilities answered {capabilities:?} after the start, a new StartLogging {start_logging:?}"
    );
    assert!(capabilities <= Duration::from_secs(1), "{capabilities:?}");
    assert!(start_logging <= Duration::from_secs(1), "{start_logging:?}");
    // Re-attaching goes on beside: every FIFO is read again.
    plugin
        .wait_for_log("resumed=true", Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while plugin.log().matches("resumed=true").count() < 100 {
        assert!(
            Instant::now() < deadline,
            "not every FIFO was re-attached: {} of 100; log:\n{}",
            plugin.log().matches("resumed=true").count(),
            plugin
                .log()
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(fifos);
}
