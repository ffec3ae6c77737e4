//! The driver in-process: real FIFOs and journals, a counting Loki behind
//! the `Pusher` trait, real time.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use prost::Message;

use super::*;
use crate::proto::logdriver::LogEntry;
use crate::proto::logproto::PushRequest;
use crate::ship::client::{BoxFuture, Pusher};
use crate::ship::policy::PushResult;

/// A Loki that takes every push and counts the entries it stores: like
/// Loki's ingester, it keeps an exact duplicate (same stream, timestamp
/// and line) once, so the line the plugin sends again to learn whether
/// Loki takes lines out of order (a backlogged lane) is not counted twice.
#[derive(Default)]
struct CountingLoki {
    stored: std::sync::Mutex<std::collections::HashSet<(String, i64, i32, Bytes)>>,
}

impl CountingLoki {
    /// Entries stored so far.
    fn entries(&self) -> usize {
        self.stored.lock().unwrap().len()
    }
}

impl Pusher for CountingLoki {
    fn push(
        &self,
        body: Bytes,
        _timeout: Duration,
        _tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult> {
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = PushRequest::decode(raw.as_slice()).unwrap();
        let mut stored = self.stored.lock().unwrap();
        for stream in request.streams {
            for entry in stream.entries {
                let time = entry.timestamp.unwrap_or_default();
                stored.insert((stream.labels.clone(), time.seconds, time.nanos, entry.line));
            }
        }
        drop(stored);
        Box::pin(async {
            PushResult::Answered {
                status: hyper::StatusCode::NO_CONTENT,
                body: String::new(),
                retry_after: None,
            }
        })
    }
}

/// A shipper to `loki` whose client cannot be made the first `failures`
/// times (a TLS file slow to read, too many file reads waiting).
fn shipper(loki: &Arc<CountingLoki>, failures: usize) -> Arc<Shipper> {
    let loki = loki.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    Shipper::new(Box::new(move |_| {
        let loki = loki.clone();
        let call = calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if call < failures {
                Err("reading the TLS files timed out".to_string())
            } else {
                Ok(loki as Arc<dyn Pusher>)
            }
        })
    }))
}

/// A FIFO held read-write, as dockerd holds it.
fn fifo(dir: &Path, name: &str) -> (String, std::fs::File) {
    let path = dir.join(name);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path.to_str().unwrap().to_string(), file)
}

fn request(file: &str, id: &str) -> StartLoggingRequest {
    StartLoggingRequest {
        file: file.into(),
        info: ContainerInfo {
            config: Some(
                [(
                    "loki-url".to_string(),
                    "http://loki:3100/loki/api/v1/push".to_string(),
                )]
                .into_iter()
                .collect(),
            ),
            container_id: id.into(),
            container_name: format!("/{id}"),
            ..ContainerInfo::default()
        },
    }
}

fn write_lines(fifo: &mut std::fs::File, range: std::ops::Range<usize>) {
    for i in range {
        let entry = LogEntry {
            source: "stdout".into(),
            time_nano: 1_700_000_000_000_000_000 + i as i64,
            line: Bytes::from(format!("line {i} {}", "x".repeat(200))),
            ..LogEntry::default()
        };
        fifo.write_all(&crate::frame::encode_frame(&entry)).unwrap();
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings(data_dir: &Path) -> Settings {
    Settings {
        data_dir: Some(data_dir.to_path_buf()),
        ..Settings::default()
    }
}

/// Issue 15: a client that cannot be made at re-attach (a TLS file slow to
/// read) used to leave the container without a lane for the life of the
/// process; its FIFO was read, nothing went to Loki. Now the lane is
/// attached again, with a backoff, until it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_client_error_at_reattach_gets_a_lane_later() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut daemon) = fifo(dir.path(), "fifo-a");
    Attachments::new(dir.path().join("attached"))
        .save(&request(&path, "aaaa"))
        .unwrap();
    let loki = Arc::new(CountingLoki::default());
    let driver = Driver::with_shipper(settings(dir.path()), shipper(&loki, 2));
    driver.reattach().await;
    write_lines(&mut daemon, 0..100);
    wait_for("the lines in Loki", Duration::from_secs(20), || {
        loki.entries() == 100
    })
    .await;
    driver.shutdown().await;
}

/// Issue 15: a journal that cannot be opened at re-attach (here its
/// directory is a file; ENOSPC does the same) used to leave the FIFO
/// unread, and the container blocked once the pipe was full. Now the FIFO
/// is read into memory only, and its lines still go to Loki.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_opened_still_has_its_fifo_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut daemon) = fifo(dir.path(), "fifo-b");
    Attachments::new(dir.path().join("attached"))
        .save(&request(&path, "bbbb"))
        .unwrap();
    std::fs::create_dir_all(dir.path().join("journal")).unwrap();
    std::fs::write(dir.path().join("journal/bbbb"), b"not a directory").unwrap();
    let loki = Arc::new(CountingLoki::default());
    let driver = Driver::with_shipper(settings(dir.path()), shipper(&loki, 0));
    driver.reattach().await;
    assert_eq!(driver.open_fifos(), 1, "the FIFO is read");
    // 3 MB: more than the pipe holds, so an unread FIFO would block here.
    let writer = std::thread::spawn(move || {
        write_lines(&mut daemon, 0..15_000);
        daemon
    });
    wait_for("the lines in Loki", Duration::from_secs(30), || {
        loki.entries() == 15_000
    })
    .await;
    let _daemon = writer.join().unwrap();
    // A container started now, with the same trouble, is not refused.
    let (path, mut daemon) = fifo(dir.path(), "fifo-c");
    std::fs::write(dir.path().join("journal/cccc"), b"not a directory").unwrap();
    driver
        .start_logging(request(&path, "cccc"))
        .await
        .expect("StartLogging");
    write_lines(&mut daemon, 0..10);
    wait_for("the new container's lines", Duration::from_secs(10), || {
        loki.entries() == 15_010
    })
    .await;
    driver.shutdown().await;
}
