//! `docker logs` through the plugin: the journal is written as lines are
//! read and served by ReadLogs with tail, since, until and follow; its
//! segments are rotated, compressed and bounded, and survive a restart.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loki_logdriver::proto::logdriver::LogEntry;
use support::fake_daemon::{
    FIXTURES, Fifo, Plugin, line, numbered, read_config, recorded_start_request, start_request,
};
use support::fake_docker_api::FakeDockerApi;
use support::fake_loki::FakeLoki;

const CONTAINER_ID: &str = "e11059f72dbaf86cedf4a9364df4dc582a3a913fe3b4dfa0dbfcdce7b146fcb0";

fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

fn store_dir(plugin: &Plugin, id: &str) -> PathBuf {
    plugin.data_dir.join("journal").join(id)
}

/// The journal's segment files: raw (`.log`) and compressed (`.sz`).
fn segments_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.ends_with(".log") || n.ends_with(".sz"))
        .collect()
}

/// Starts logging with `opts` (plus a Loki URL), writes `entries`, stops.
async fn log_and_stop(
    plugin: &Plugin,
    loki: &FakeLoki,
    opts: &[(&str, &str)],
    entries: &[LogEntry],
) -> serde_json::Value {
    let mut fifo = Fifo::create();
    let url = loki.url();
    let mut all = vec![("loki-url", url.as_str())];
    all.extend_from_slice(opts);
    let request = start_request(&fifo.path, &all);
    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    for entry in entries {
        fifo.write_entry(entry);
    }
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    plugin
        .wait_for_log(&format!("sent={}", entries.len()), Duration::from_secs(10))
        .await;
    request
}

fn with_id(mut request: serde_json::Value, id: &str) -> serde_json::Value {
    request["Info"]["ContainerID"] = id.into();
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_logs_returns_the_recorded_container_as_printed() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let request = recorded_start_request(&fifo.path, &loki.url());
    plugin.start_logging(&request).await;
    let recorded =
        std::fs::read(format!("{FIXTURES}/daemon-20.10/start-logging.fifo.bin")).unwrap();
    fifo.write_bytes(&recorded);
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    plugin
        .wait_for_log("logging finished", Duration::from_secs(10))
        .await;

    let entries = plugin.read_all_logs(&request, read_config(-1, false)).await;
    let lines: Vec<&[u8]> = entries.iter().map(|e| &e.line[..]).collect();
    let a_line = [vec![b'a'; 40_000], b"\n".to_vec()].concat();
    let b_line = [vec![b'b'; 16_384], b"\n".to_vec()].concat();
    let expected: Vec<&[u8]> = vec![
        b"first line to stderr\n",
        b"first line to stdout\n",
        b"\n",
        b"   \n",
        "héllo wörld 日本\n".as_bytes(),
        b"\xff\xfe invalid utf8\n",
        &a_line,
        &b_line,
        b"line\twith\ttabs and \"quotes\" and \\backslash\n",
        b"tail-without-newline\n",
    ];
    assert_eq!(
        lines, expected,
        "every line as printed, partials joined, newline restored"
    );
    assert_eq!(entries[0].source, "stderr");
    assert!(entries[1..].iter().all(|e| e.source == "stdout"));
    // Each line keeps the daemon's timestamp (a joined line, its first piece's).
    let mut decoder = loki_logdriver::frame::FrameDecoder::new();
    decoder.extend(&recorded);
    let mut original = Vec::new();
    while let Some(frame) = decoder.next() {
        let loki_logdriver::frame::Frame::Entry { entry, .. } = frame else {
            panic!("the recording holds only frames");
        };
        if original.last() != Some(&entry.time_nano) {
            original.push(entry.time_nano);
        }
    }
    let served: Vec<i64> = entries.iter().map(|e| e.time_nano).collect();
    assert_eq!(served, original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_since_and_until_select_lines() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let base = 1_767_225_600_000_000_000i64; // 2026-01-01T00:00:00Z
    let entries: Vec<LogEntry> = (0..20)
        .map(|n| LogEntry {
            time_nano: base + n * 60_000_000_000,
            ..line("stdout", &numbered(n as usize, 20))
        })
        .collect();
    let request = log_and_stop(&plugin, &loki, &[], &entries).await;

    let tail = plugin.read_all_logs(&request, read_config(5, false)).await;
    assert_eq!(
        texts(&tail),
        (15..20)
            .map(|n| format!("{}\n", numbered(n, 20)))
            .collect::<Vec<_>>()
    );
    let none = plugin.read_all_logs(&request, read_config(0, false)).await;
    assert!(none.is_empty(), "--tail 0 shows nothing");

    let window = serde_json::json!({
        "Since": "2026-01-01T00:05:00Z", "Until": "2026-01-01T01:07:30+01:00", "Tail": -1, "Follow": false
    });
    let selected = plugin.read_all_logs(&request, window).await;
    assert_eq!(
        texts(&selected),
        (5..=7)
            .map(|n| format!("{}\n", numbered(n, 20)))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_new_lines_until_the_container_stops() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let request = start_request(&fifo.path, &[("loki-url", &loki.url())]);
    plugin.start_logging(&request).await;
    fifo.write_entry(&line("stdout", "before follow"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut stream = plugin
        .read_logs(&request, read_config(-1, true))
        .await
        .unwrap();
    assert_eq!(
        texts(&[stream.next(Duration::from_secs(5)).await.unwrap()]),
        ["before follow\n"]
    );
    for n in 0..3 {
        fifo.write_entry(&line("stderr", &format!("live {n}")));
        let entry = stream.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            (texts(std::slice::from_ref(&entry)), entry.source.as_str()),
            (vec![format!("live {n}\n")], "stderr")
        );
    }
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    assert!(
        stream.next(Duration::from_secs(5)).await.is_none(),
        "the stream ends when the container stops"
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_compresses_and_bounds_the_copy() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    // 64k is the smallest max-size the plugin accepts.
    let entries: Vec<LogEntry> = (0..6_000)
        .map(|n| line("stdout", &numbered(n, 100)))
        .collect();
    let request = log_and_stop(
        &plugin,
        &loki,
        &[("max-size", "64k"), ("max-file", "3")],
        &entries,
    )
    .await;
    let dir = store_dir(&plugin, CONTAINER_ID);
    wait_until(
        "delivered segments are compressed, the oldest deleted",
        || {
            let names = segments_in(&dir);
            names.iter().filter(|n| n.ends_with(".sz")).count() == 2
                && names.iter().filter(|n| n.ends_with(".log")).count() == 1
        },
    )
    .await;
    let total: u64 = segments_in(&dir)
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum();
    assert!(
        total < 3 * 64 * 1024,
        "max-size x max-file bounds the copy: {total} bytes in {:?}",
        files_in(&dir)
    );

    let kept = plugin.read_all_logs(&request, read_config(-1, false)).await;
    let numbers: Vec<usize> = texts(&kept)
        .iter()
        .map(|t| t[5..11].parse().unwrap())
        .collect();
    assert!(
        numbers.len() > 600 && numbers.len() < 2_200,
        "{} lines kept",
        numbers.len()
    );
    let expected: Vec<usize> = (6_000 - numbers.len()..6_000).collect();
    assert_eq!(
        numbers, expected,
        "the newest lines, in order, across compressed files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_file_is_skipped_and_the_rest_served() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let entries: Vec<LogEntry> = (0..2_000)
        .map(|n| line("stdout", &numbered(n, 100)))
        .collect();
    let request = log_and_stop(
        &plugin,
        &loki,
        &[("max-size", "64k"), ("max-file", "4")],
        &entries,
    )
    .await;
    let dir = store_dir(&plugin, CONTAINER_ID);
    wait_until("three compressed segments", || {
        segments_in(&dir)
            .iter()
            .filter(|n| n.ends_with(".sz"))
            .count()
            == 3
    })
    .await;
    let oldest = segments_in(&dir)
        .into_iter()
        .find(|n| n.ends_with(".sz"))
        .unwrap();
    std::fs::write(dir.join(&oldest), b"this is not snappy").unwrap();
    let newest = segments_in(&dir)
        .into_iter()
        .rfind(|n| n.ends_with(".log"))
        .unwrap();
    let current = dir.join(newest);
    let mut bytes = std::fs::read(&current).unwrap();
    assert!(
        bytes.len() > 125,
        "the newest segment holds whole lines to truncate"
    );
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&current, bytes).unwrap();

    let kept = plugin.read_all_logs(&request, read_config(-1, false)).await;
    let numbers: Vec<usize> = texts(&kept)
        .iter()
        .map(|t| t[5..11].parse().unwrap())
        .collect();
    assert!(!numbers.is_empty());
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "the readable files are contiguous"
    );
    // The journal keeps the frames of one FIFO read in one record (at most
    // a quarter of a segment, 16 KiB here: about 140 of these lines): the
    // truncated record's lines are skipped, the rest served.
    let last = *numbers.last().unwrap();
    assert!(
        (1_999 - 16 * 1024 / 100..1_999).contains(&last),
        "the truncated last record is skipped, the rest served: the last line served is {last}"
    );
    plugin
        .wait_for_log(
            "skipping an unreadable journal segment",
            Duration::from_secs(2),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_keeps_nothing_and_docker_logs_says_so() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let request = log_and_stop(
        &plugin,
        &loki,
        &[("no-file", "true")],
        &[line("stdout", "only in loki")],
    )
    .await;
    let (status, answer) = match plugin.read_logs(&request, read_config(-1, false)).await {
        Err(failure) => failure,
        Ok(_) => panic!("ReadLogs answered for a no-file container"),
    };
    assert_eq!(status, 404);
    assert!(
        answer["Err"].as_str().unwrap().contains("no-file=true"),
        "{answer}"
    );
    wait_until("the delivered journal is gone", || {
        !store_dir(&plugin, CONTAINER_ID).exists()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_removed_containers_go_unless_kept() {
    let loki = FakeLoki::start().await;
    let api = FakeDockerApi::start(&["aaaa", "bbbb", "cccc"]);
    let socket = api.path().to_string_lossy().into_owned();
    let plugin = Plugin::start(&[("DOCKER_SOCKET", &socket), ("STORE_GC_INTERVAL", "200ms")]);
    let mut requests = Vec::new();
    for (id, opts) in [
        ("aaaa", vec![]),
        ("bbbb", vec![("keep-file", "true")]),
        ("cccc", vec![]),
    ] {
        let mut fifo = Fifo::create();
        let url = loki.url();
        let mut all = vec![("loki-url", url.as_str())];
        all.extend(opts);
        let request = with_id(start_request(&fifo.path, &all), id);
        plugin.start_logging(&request).await;
        fifo.write_entry(&line("stdout", &format!("from {id}")));
        plugin.stop_logging(&fifo.path).await;
        fifo.close();
        requests.push(request);
    }
    loki.wait_for_entries(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for id in ["aaaa", "bbbb", "cccc"] {
        assert!(
            store_dir(&plugin, id).exists(),
            "{id}: a stopped container's logs stay readable"
        );
    }
    api.set_existing(&["cccc"]);
    wait_until("aaaa's copy is removed", || {
        !store_dir(&plugin, "aaaa").exists()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        store_dir(&plugin, "bbbb").exists(),
        "keep-file=true keeps it"
    );
    assert!(
        store_dir(&plugin, "cccc").exists(),
        "an existing container keeps it"
    );
    assert_eq!(
        texts(
            &plugin
                .read_all_logs(&requests[1], read_config(-1, false))
                .await
        ),
        ["from bbbb\n"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_store_stays_under_its_cap() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[("LOCAL_STORE_SIZE", "60k"), ("STORE_GC_INTERVAL", "200ms")]);
    for id in ["aaaa", "bbbb", "cccc"] {
        let mut fifo = Fifo::create();
        let request = with_id(
            start_request(
                &fifo.path,
                &[("loki-url", loki.url().as_str()), ("max-size", "64k")],
            ),
            id,
        );
        plugin.start_logging(&request).await;
        for n in 0..700 {
            fifo.write_entry(&line("stdout", &noise(n, 100)));
        }
        plugin.stop_logging(&fifo.path).await;
        fifo.close();
    }
    loki.wait_for_entries(2_100, Duration::from_secs(10)).await;
    let store = plugin.data_dir.join("journal");
    let size = || -> u64 {
        walk(&store)
            .iter()
            .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    wait_until("the store is under 60k", || size() <= 60 * 1024).await;
    plugin
        .wait_for_log("over LOCAL_STORE_SIZE", Duration::from_secs(2))
        .await;
}

/// A line that snappy cannot shrink: pseudo-random printable characters.
fn noise(seed: usize, len: usize) -> String {
    let mut state = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (b'!' + (state % 94) as u8) as char
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_survives_a_plugin_restart() {
    let loki = FakeLoki::start().await;
    let mut plugin = Plugin::start(&[]);
    let request = log_and_stop(
        &plugin,
        &loki,
        &[],
        &[line("stdout", "kept across restarts")],
    )
    .await;
    plugin.kill();
    let restarted = plugin.restart_from(&[]);
    assert_eq!(
        texts(
            &restarted
                .read_all_logs(&request, read_config(-1, false))
                .await
        ),
        ["kept across restarts\n"]
    );
}
