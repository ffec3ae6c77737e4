//! The plugin's HTTP handling, in process: the real server
//! (`server::serve` with a real `Driver`) on a unix socket, started once;
//! each input is written as raw bytes to a new connection, whose write side
//! is closed when the request looks cut short (or was not answered soon),
//! and the answer read with a time limit.
//!
//! Invariants:
//! - nothing in the process panics (libfuzzer-sys aborts on any panic, in
//!   any thread);
//! - every connection is answered or closed within `ANSWER_LIMIT`, and an
//!   answer starts with an HTTP/1.x status line;
//! - a normal Capabilities request is answered after every input.
//!
//! Safety of the host: the server runs in threads whose root directory is
//! an empty scratch directory (`unshare(CLONE_FS)` + `chroot`, so root is
//! needed), so no path a StartLogging body names can be a real FIFO or
//! file: every StartLogging is refused ("cannot open the log FIFO"), no
//! reader starts, and no Loki client is made (the shipper refuses anyway).
//! DATA_DIR is `/data` in there; it holds one journal, of the fixtures'
//! container, so that ReadLogs has lines to serve.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::config::settings::Settings;
use loki_logdriver::driver::Driver;
use loki_logdriver::journal::record::{SEGMENT_MAGIC, SegmentFile, encode};
use loki_logdriver::proto::logdriver::{LogEntry, PartialLogEntryMetadata};
use loki_logdriver::ship::Shipper;
use prost::Message;

/// Longest wait for an answer (or the close) after the request was sent.
/// The server's own limits (header and body timeouts) are 10 s, but with
/// the write side closed it never needs to wait for them.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);
/// The container of the fixtures' ReadLogs requests.
const FIXTURE_ID: &str = "e11059f72dbaf86cedf4a9364df4dc582a3a913fe3b4dfa0dbfcdce7b146fcb0";
const CAPABILITIES: &[u8] =
    b"POST /LogDriver.Capabilities HTTP/1.1\r\nHost: \r\nContent-Length: 0\r\n\r\n";

/// The socket's path outside the server's root.
fn socket() -> &'static Path {
    static SOCKET: OnceLock<PathBuf> = OnceLock::new();
    SOCKET.get_or_init(start_server)
}

fn entry(source: &str, ts: i64, line: &[u8], partial: Option<(&str, i32, bool)>) -> LogEntry {
    LogEntry {
        source: source.into(),
        time_nano: ts,
        line: Bytes::copy_from_slice(line),
        partial: partial.is_some(),
        partial_log_metadata: partial.map(|(id, ordinal, last)| PartialLogEntryMetadata {
            last,
            id: id.into(),
            ordinal,
        }),
        ..LogEntry::default()
    }
}

/// A journal for the fixtures' container: a few lines around 2026-01-01.
fn write_fixture_journal(data: &Path) {
    let dir = data.join("journal").join(FIXTURE_ID);
    std::fs::create_dir_all(&dir).expect("journal directory");
    let base = 1_767_225_600_000_000_000i64; // 2026-01-01T00:00:00Z
    let entries = [
        entry("stdout", base - 1_000, b"before 2026", None),
        entry("stderr", base, b"to stderr", None),
        entry("stdout", base + 1, b"", None),
        entry("stdout", base + 2, b"  \t", None),
        entry(
            "stdout",
            base + 3,
            "h\u{e9}llo \u{65e5}\u{672c}".as_bytes(),
            None,
        ),
        entry("stdout", base + 4, b"\xff\xfe invalid", None),
        entry("stdout", base + 5, &[b'x'; 3000], Some(("p1", 1, false))),
        entry("stderr", base + 6, b"interleaved", None),
        entry("stdout", base + 5, &[b'y'; 3000], Some(("p1", 2, true))),
        entry(
            "stdout",
            base + 7,
            b"tail-without-newline",
            Some(("p2", 1, false)),
        ),
    ];
    let mut bytes = SEGMENT_MAGIC.to_vec();
    for (i, e) in entries.iter().enumerate() {
        encode(1 + i as u64, &e.encode_to_vec(), &mut bytes);
    }
    std::fs::write(SegmentFile::raw(&dir, 1), bytes).expect("journal segment");
}

/// The server's root directory, outside it.
static ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Removes the server's root when the fuzzer exits (not after a crash).
extern "C" fn remove_root() {
    if let Some(root) = ROOT.get() {
        let _ = std::fs::remove_dir_all(root);
    }
}

fn start_server() -> PathBuf {
    // Writing to a connection the server closed must be an error, not a
    // signal: libFuzzer's main does not ignore SIGPIPE as Rust's does.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let base = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let root = PathBuf::from(base).join(format!("plugin-http-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("scratch root");
    ROOT.set(root.clone()).expect("one server per process");
    // SAFETY: registers a function of no arguments to run at exit.
    unsafe { libc::atexit(remove_root) };
    write_fixture_journal(&root.join("data"));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let jail = root.clone();
    std::thread::spawn(move || {
        // This thread, and every thread it starts (the runtime's workers and
        // blocking threads, the journal's writer), see only `jail`.
        let jailed = std::ffi::CString::new(jail.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: unshare, chroot and chdir with valid NUL-terminated paths;
        // CLONE_FS only gives this thread its own root and working directory.
        let failed = unsafe {
            libc::unshare(libc::CLONE_FS) != 0
                || libc::chroot(jailed.as_ptr()) != 0
                || libc::chdir(c"/".as_ptr()) != 0
        };
        if failed {
            let err = std::io::Error::last_os_error();
            let _ = ready_tx.send(Err(format!(
                "cannot confine the server to {} ({err}); plugin_http needs root (chroot) so that \
                 no path a request names can be a real FIFO",
                jail.display()
            )));
            return;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let listener = loki_logdriver::server::bind(Path::new("/plugin.sock")).expect("bind");
            let settings = Settings {
                data_dir: Some(PathBuf::from("/data")),
                docker_socket: None,
                ..Settings::default()
            };
            let shipper = Shipper::new(Box::new(|_config| {
                Box::pin(async { Err("the fuzzer connects to no Loki".to_string()) })
            }));
            let driver = Driver::with_shipper(settings, shipper);
            let _ = ready_tx.send(Ok(()));
            loki_logdriver::server::serve(listener, driver, std::future::pending()).await;
        });
    });
    match ready_rx.recv() {
        Ok(Ok(())) => root.join("plugin.sock"),
        Ok(Err(message)) => panic!("{message}"),
        Err(_) => panic!("the server thread ended before it was ready"),
    }
}

/// How long to wait for an answer before closing the write side, by how
/// complete the request looks.
fn grace(request: &[u8]) -> Duration {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(request) {
        // Headers cut short: the server would wait for the rest.
        Ok(httparse::Status::Partial) => Duration::ZERO,
        Ok(httparse::Status::Complete(head)) => {
            let header = |name: &str| {
                parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
            };
            if header("transfer-encoding").is_some() {
                return Duration::from_millis(250); // a chunked body may be whole
            }
            match header("content-length").map(|v| v.parse::<usize>()) {
                None => Duration::from_secs(1),
                Some(Ok(len)) if head.saturating_add(len) <= request.len() => {
                    Duration::from_secs(1)
                }
                Some(Ok(_)) => Duration::ZERO, // the body is cut short
                Some(Err(_)) => Duration::from_millis(250),
            }
        }
        // Malformed: answered 400 at once.
        Err(_) => Duration::from_millis(250),
    }
}

/// Sends `request` and reads the answer until the server closes; panics
/// past `ANSWER_LIMIT`. A request that looks whole is answered before the
/// write side is closed (hyper drops a request whose client half-closed);
/// one cut short gets its write side closed at once, so the server sees
/// its end instead of waiting for its own time limits.
fn exchange(request: &[u8], what: &str) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket()).expect("connecting to the plugin");
    let start = Instant::now();
    stream.set_write_timeout(Some(ANSWER_LIMIT)).unwrap();
    // The server may answer and close before reading everything: then
    // writing fails, which is fine.
    let _ = stream.write_all(request);
    let grace = grace(request);
    let mut write_open = true;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let elapsed = start.elapsed();
        if write_open && answer.is_empty() && elapsed >= grace {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            write_open = false;
        }
        let left = ANSWER_LIMIT.saturating_sub(elapsed);
        assert!(
            !left.is_zero(),
            "{what}: no answer and no close within {ANSWER_LIMIT:?} ({} bytes so far: {:?})",
            answer.len(),
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
        let wait = if write_open && answer.is_empty() {
            left.min(grace.saturating_sub(elapsed))
                .max(Duration::from_millis(1))
        } else {
            left
        };
        stream.set_read_timeout(Some(wait)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Reset by a server that closed with unread bytes: closed.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{what}: reading the answer: {e}"),
        }
    }
    answer
}

fuzz_target!(|data: &[u8]| {
    let answer = exchange(data, "the fuzzed request");
    // To see what the server made of an input being replayed.
    if std::env::var_os("FUZZ_SHOW_ANSWERS").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&answer).escape_debug());
    }
    if !answer.is_empty() {
        assert!(
            // HTTP/1.0 requests get HTTP/1.0 answers.
            answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
            "an answer that is not HTTP: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
    }
    let capabilities = exchange(CAPABILITIES, "Capabilities after the fuzzed request");
    let text = String::from_utf8_lossy(&capabilities);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains(r#"{"Cap":{"ReadLogs":true}}"#),
        "Capabilities no longer answered: {text:?}"
    );
});
