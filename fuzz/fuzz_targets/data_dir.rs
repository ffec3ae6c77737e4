//! A whole data directory, damaged between two runs of the plugin.
//!
//! Run 1 is written as the plugin writes it: for each of up to three
//! stopped containers, a journal of numbered lines in segments (those
//! delivered compressed, as retention leaves them), its cursor (with the
//! end of what was written) and its `container.json`, and an attachment
//! record of a container that ended while the plugin was away. Then the
//! input damages it: truncations, zero fills, flipped bits, bytes written
//! over (from a seeded generator, so no CRC can be forged), deletions, and
//! entries replaced by FIFOs, directories, `/dev/zero` or symlinks out of
//! the data directory (to a file, and to a journal of sentinel lines).
//! Run 2 is the real `Driver` over it (`reattach`), delivering to an
//! in-process Loki, then `docker logs` of every container.
//!
//! Invariants:
//! - the plugin serves: run 2 delivers everything it will within a time
//!   limit (no stall, no hang in `open`), and every `docker logs` answer
//!   ends;
//! - no read outside the data directory: no sentinel line reaches Loki or
//!   `docker logs`, and the files outside are unchanged;
//! - memory is bounded: the memory budget holds, and the process grows by
//!   less than 256 MiB;
//! - every line is delivered or counted as lost with a reason: received +
//!   recovered = sent + dropped (plugin-wide), and for every container
//!   whose directory and cursor were not touched, each undelivered line of
//!   run 1 is in Loki or counted among the dropped.
#![no_main]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::defaults::LogOptDefaults;
use loki_logdriver::config::settings::Settings;
use loki_logdriver::driver::Driver;
use loki_logdriver::journal::record::{SEGMENT_MAGIC, SegmentFile, encode};
use loki_logdriver::observe::DropReason;
use loki_logdriver::proto::logdriver::LogEntry;
use loki_logdriver::proto::logproto::PushRequest;
use loki_logdriver::protocol::ReadLogsRequest;
use loki_logdriver::ship::Shipper;
use loki_logdriver::ship::client::{BoxFuture, Pusher};
use loki_logdriver::ship::policy::PushResult;
use prost::Message;

const URL: &str = "http://fuzz.invalid/loki/api/v1/push";
const SENTINEL: &str = "SENTINEL-outside-the-data-dir";

#[derive(Debug, Arbitrary)]
struct Container {
    /// 1 to 4 segments.
    segments: u8,
    /// 1 to 40 records each.
    per_segment: u8,
    /// Records delivered by run 1 (its cursor).
    delivered: u8,
    /// Every n-th line goes to stderr (0: none).
    stderr_every: u8,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Truncate(u16),
    ZeroFill,
    Flip { at: u16, bits: u8 },
    Overwrite { at: u16, len: u16, seed: u64 },
    Append { len: u16, seed: u64 },
    Delete,
    Fifo,
    Directory,
    DevZero,
    LinkToOutsideFile,
    LinkToOutsideJournal,
    CursorText(CursorText),
}

#[derive(Debug, Arbitrary)]
enum CursorText {
    Empty,
    Beyond,
    Behind,
    Garbage(u64),
}

#[derive(Debug, Arbitrary)]
struct Damage {
    target: u8,
    op: Op,
}

#[derive(Debug)]
struct Input {
    containers: Vec<Container>,
    damage: Vec<Damage>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Input> {
        let n = u.int_in_range(1..=3)?;
        let containers = (0..n)
            .map(|_| Container::arbitrary(u))
            .collect::<arbitrary::Result<_>>()?;
        let d = u.int_in_range(0..=6)?;
        let damage = (0..d)
            .map(|_| Damage::arbitrary(u))
            .collect::<arbitrary::Result<_>>()?;
        Ok(Input { containers, damage })
    }
}

/// Loki, in-process: the lines of every push.
#[derive(Default)]
struct Loki {
    lines: Mutex<Vec<String>>,
}

struct Client(Arc<Loki>);

impl Pusher for Client {
    fn push(
        &self,
        body: Bytes,
        _timeout: Duration,
        _tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult> {
        let loki = self.0.clone();
        Box::pin(async move {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&body)
                .expect("the plugin's push is snappy");
            let request = PushRequest::decode(raw.as_slice()).expect("the plugin's push decodes");
            let mut lines = loki.lines.lock().unwrap();
            for stream in request.streams {
                for entry in stream.entries {
                    lines.push(String::from_utf8_lossy(&entry.line).into_owned());
                }
            }
            PushResult::Answered {
                status: hyper::StatusCode::NO_CONTENT,
                body: String::new(),
                retry_after: None,
            }
        })
    }
}

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The scratch directory: `outside/` (made once) and one `data-N/` per input.
fn scratch() -> &'static Path {
    SCRATCH.get_or_init(|| {
        let base = match std::env::var_os("FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("data-dir-fuzz-{}", std::process::id()));
        let outside = dir.join("outside");
        std::fs::create_dir_all(outside.join("journal")).expect("a scratch directory");
        std::fs::write(outside.join("file"), format!("{SENTINEL}\n")).unwrap();
        let lines: Vec<String> = (0..5).map(|n| format!("{SENTINEL}-{n}")).collect();
        write_segment(&outside.join("journal"), 0, &lines, 0, 0, false);
        write_cursor(&outside.join("journal"), [0, 0], 5);
        // SAFETY: registers a function of no arguments to run at exit.
        unsafe { libc::atexit(remove_scratch) };
        dir
    })
}

fn entry(text: &str, stderr: bool) -> Vec<u8> {
    LogEntry {
        source: if stderr { "stderr" } else { "stdout" }.into(),
        time_nano: 1_700_000_000_000_000_000,
        line: Bytes::copy_from_slice(text.as_bytes()),
        ..LogEntry::default()
    }
    .encode_to_vec()
}

/// A segment of `lines`, the first numbered `first`.
fn write_segment(
    dir: &Path,
    first: u64,
    lines: &[String],
    stderr_every: u8,
    offset: usize,
    compressed: bool,
) {
    let mut bytes = SEGMENT_MAGIC.to_vec();
    for (i, text) in lines.iter().enumerate() {
        let n = offset + i;
        let stderr = stderr_every > 0 && n.is_multiple_of(stderr_every as usize);
        encode(first + i as u64, &entry(text, stderr), &mut bytes);
    }
    let path = SegmentFile::raw(dir, first);
    if compressed {
        let file = std::fs::File::create(path.with_extension("sz")).unwrap();
        let mut encoder = snap::write::FrameEncoder::new(file);
        encoder.write_all(&bytes).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

fn write_cursor(dir: &Path, cursor: [u64; 2], end: u64) {
    std::fs::write(
        dir.join("cursor"),
        format!("v1 {} {} {end}\n", cursor[0], cursor[1]),
    )
    .unwrap();
}

fn request(id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "File": format!("/nonexistent/fifo-{id}"),
        "Info": {
            "Config": { "loki-url": URL, "loki-batch-wait": "1ms" },
            "ContainerID": id,
            "ContainerName": format!("/{name}"),
            "ContainerImageName": "fuzz",
        }
    })
}

/// A run 1 container: its ID, its lines, and the ones not delivered.
struct Written {
    id: String,
    undelivered: Vec<String>,
}

fn run_one(data: &Path, containers: &[Container]) -> Vec<Written> {
    let journals = data.join("journal");
    let attached = data.join("attached");
    std::fs::create_dir_all(&attached).unwrap();
    let mut written = Vec::new();
    for (c, spec) in containers.iter().enumerate() {
        let id = format!("c{c}");
        let dir = journals.join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let segments = 1 + spec.segments as usize % 4;
        let per = 1 + spec.per_segment as usize % 40;
        let total = segments * per;
        let delivered = (spec.delivered as usize % (total + 1)) as u64;
        let lines: Vec<String> = (0..total).map(|n| format!("c{c}-line-{n:04}")).collect();
        for s in 0..segments {
            let first = (s * per) as u64;
            // Delivered and closed: compressed, as retention leaves it.
            let compressed = s + 1 < segments && first + per as u64 <= delivered;
            write_segment(
                &dir,
                first,
                &lines[s * per..(s + 1) * per],
                spec.stderr_every,
                s * per,
                compressed,
            );
        }
        write_cursor(&dir, [delivered; 2], total as u64);
        std::fs::write(
            dir.join("container.json"),
            request(&id, &format!("name{c}")).to_string(),
        )
        .unwrap();
        if c == 0 {
            // Ended while the plugin was away: its record is still there.
            std::fs::write(
                attached.join(format!("fifo-{id}-00000000.json")),
                request(&id, &format!("name{c}")).to_string(),
            )
            .unwrap();
        }
        written.push(Written {
            id,
            undelivered: lines[delivered as usize..].to_vec(),
        });
    }
    written
}

/// Bytes from a seed: damage the input chooses but cannot aim at a CRC.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Everything damage may aim at, in a stable order.
fn targets(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["journal", "attached"] {
        let Ok(entries) = std::fs::read_dir(data.join(sub)) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() && !path.is_symlink() {
                let mut inner: Vec<PathBuf> = std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                inner.sort();
                out.extend(inner);
            }
            out.push(path);
        }
    }
    out
}

/// Applies one damage; returns the path it touched.
fn apply(data: &Path, damage: &Damage) -> Option<PathBuf> {
    let targets = targets(data);
    if targets.is_empty() {
        return None;
    }
    let path = targets[damage.target as usize % targets.len()].clone();
    let outside = scratch().join("outside");
    let replace = |path: &Path| {
        if path.is_dir() && !path.is_symlink() {
            let _ = std::fs::remove_dir_all(path);
        } else {
            let _ = std::fs::remove_file(path);
        }
    };
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    let open = || std::fs::OpenOptions::new().write(true).open(&path);
    match &damage.op {
        Op::Truncate(len) if regular => {
            let _ = open().and_then(|f| f.set_len(*len as u64));
        }
        Op::ZeroFill if regular => {
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            let _ = std::fs::write(&path, vec![0u8; len as usize]);
        }
        Op::Flip { at, bits } if regular => {
            if let Ok(mut bytes) = std::fs::read(&path)
                && !bytes.is_empty()
            {
                let at = *at as usize % bytes.len();
                bytes[at] ^= bits | 1;
                let _ = std::fs::write(&path, bytes);
            }
        }
        Op::Overwrite { at, len, seed } if regular => {
            if let Ok(mut bytes) = std::fs::read(&path)
                && !bytes.is_empty()
            {
                let at = *at as usize % bytes.len();
                let len = (*len as usize % 4096).min(bytes.len() - at);
                bytes[at..at + len].copy_from_slice(&noise(*seed, len));
                let _ = std::fs::write(&path, bytes);
            }
        }
        Op::Append { len, seed } if regular => {
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&noise(*seed, *len as usize % 8192)));
        }
        Op::Delete => replace(&path),
        Op::Fifo => {
            replace(&path);
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        }
        Op::Directory => {
            replace(&path);
            let _ = std::fs::create_dir(&path);
        }
        Op::DevZero => {
            replace(&path);
            let _ = std::os::unix::fs::symlink("/dev/zero", &path);
        }
        Op::LinkToOutsideFile => {
            replace(&path);
            let _ = std::os::unix::fs::symlink(outside.join("file"), &path);
        }
        Op::LinkToOutsideJournal => {
            replace(&path);
            let target = if path.extension().is_some() {
                SegmentFile::raw(&outside.join("journal"), 0)
            } else {
                outside.join("journal")
            };
            let _ = std::os::unix::fs::symlink(target, &path);
        }
        Op::CursorText(text) => {
            replace(&path);
            let text = match text {
                CursorText::Empty => String::new(),
                CursorText::Beyond => "v1 999999999 999999999\n".into(),
                CursorText::Behind => "v1 0 0 0\n".into(),
                CursorText::Garbage(seed) => String::from_utf8_lossy(&noise(*seed, 40)).into(),
            };
            let _ = std::fs::write(&path, text);
        }
        _ => return None,
    }
    Some(path)
}

/// What is outside the data directory, to check nothing changed it.
fn outside_state() -> Vec<(PathBuf, Vec<u8>)> {
    let outside = scratch().join("outside");
    let mut out = vec![(
        outside.join("file"),
        std::fs::read(outside.join("file")).unwrap(),
    )];
    for entry in std::fs::read_dir(outside.join("journal"))
        .unwrap()
        .flatten()
    {
        out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
    }
    out.sort();
    out
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

static INPUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fuzz_target!(|input: Input| {
    if std::env::var_os("FUZZ_SHOW_INPUT").is_some() {
        eprintln!("{input:#?}");
    }
    let n = INPUTS.fetch_add(1, Ordering::Relaxed);
    let data = scratch().join(format!("data-{n}"));
    let outside_before = outside_state();
    let written = run_one(&data, &input.containers);
    // Containers whose directory or cursor the damage touched: their losses
    // cannot all be known (a journal gone whole, a cursor that lies).
    let mut untouchable = BTreeSet::new();
    let show = std::env::var_os("FUZZ_SHOW_INPUT").is_some();
    for damage in &input.damage {
        let applied = apply(&data, damage);
        if show {
            eprintln!("{:?} on {applied:?}", damage.op);
        }
        if let Some(path) = applied {
            for w in &written {
                let dir = data.join("journal").join(&w.id);
                if path == dir || path == dir.join("cursor") {
                    untouchable.insert(w.id.clone());
                }
            }
        }
    }
    let rss_before = rss_kib();

    let loki = Arc::new(Loki::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let served: Vec<String> = runtime.block_on(async {
        let settings = Settings {
            data_dir: Some(data.clone()),
            docker_socket: None,
            log_opts: LogOptDefaults::parse(
                &serde_json::json!({ "loki-url": URL }).to_string(),
                &Settings::default().option_context(),
            )
            .unwrap(),
            ..Settings::default()
        };
        let memory_limit = settings.total_buffer_size;
        let client = loki.clone();
        let shipper = Shipper::new(Box::new(move |_config| {
            let client = client.clone();
            Box::pin(async move { Ok(Arc::new(Client(client)) as Arc<dyn Pusher>) })
        }));
        let driver = Driver::with_shipper(settings, shipper);
        tokio::time::timeout(Duration::from_secs(10), driver.reattach())
            .await
            .expect("the plugin starts over the damaged directory within 10 s");
        // Every lane done: its journal is released.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !driver.store().journals().is_empty() {
            assert!(
                driver.store().budget().used() <= memory_limit + (1 << 20),
                "the memory budget holds"
            );
            if Instant::now() >= deadline {
                let open: Vec<String> = driver
                    .store()
                    .journals()
                    .iter()
                    .map(|j| {
                        format!(
                            "{}: drained {} live {} disk {}: {}",
                            j.id,
                            j.is_drained(),
                            j.is_live(),
                            j.disk_bytes(),
                            j.counters.summary()
                        )
                    })
                    .collect();
                panic!("delivery stalled over the damaged directory: {open:#?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // docker logs of every container ends.
        let mut served = Vec::new();
        for w in &written {
            let read = serde_json::json!({
                "Info": { "ContainerID": w.id, "ContainerName": "/x", "Config": {} },
                "Config": { "Since": "0001-01-01T00:00:00Z", "Until": "0001-01-01T00:00:00Z", "Tail": -1, "Follow": false },
            });
            let read: ReadLogsRequest = serde_json::from_value(read).unwrap();
            if let Ok(mut rx) = driver.read_logs(read) {
                let mut decoder = loki_logdriver::frame::FrameDecoder::new();
                loop {
                    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                        Ok(Some(bytes)) => decoder.extend(&bytes),
                        Ok(None) => break,
                        Err(_) => panic!("docker logs of {} never ended", w.id),
                    }
                    while let Some(frame) = decoder.next() {
                        if let loki_logdriver::frame::Frame::Entry { entry, .. } = frame {
                            served.push(String::from_utf8_lossy(&entry.line).into_owned());
                        }
                    }
                }
            }
        }
        // Plugin-wide, every line read is accounted for.
        let totals = driver.store().retired();
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let dropped: u64 = DropReason::ALL.iter().map(|r| totals.dropped(*r)).sum();
        assert_eq!(
            get(&totals.received) + get(&totals.recovered),
            get(&totals.sent) + dropped + totals.filtered_total(),
            "lines read = sent + dropped: {}",
            totals.summary()
        );
        let in_loki: BTreeSet<String> = loki.lines.lock().unwrap().iter().cloned().collect();
        let missing: usize = written
            .iter()
            .filter(|w| !untouchable.contains(&w.id))
            .map(|w| w.undelivered.iter().filter(|l| !in_loki.contains(*l)).count())
            .sum();
        assert!(
            missing as u64 <= dropped,
            "{missing} undelivered lines neither in Loki nor counted as dropped ({})",
            totals.summary()
        );
        served
    });
    drop(runtime);
    for line in loki.lines.lock().unwrap().iter().chain(&served) {
        assert!(
            !line.contains(SENTINEL),
            "a line from outside the data directory: {line}"
        );
    }
    assert_eq!(
        outside_state(),
        outside_before,
        "files outside the data directory changed"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 256 * 1024, "the process grew by {grown} KiB");
    let _ = std::fs::remove_dir_all(&data);
});
