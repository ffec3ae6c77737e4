//! The plugin binary against a hostile user: absurd log-opts, TLS options
//! naming devices and FIFOs, malformed ReadLogs times, passwords that break
//! URLs, and clients of the socket that stall or exhaust file descriptors.
//! Whatever they do, the plugin answers a clear error, keeps serving every
//! other container, stays within bounded memory, and exits on SIGTERM.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::fake_daemon::{Fifo, Plugin, line, numbered, start_request};
use support::fake_loki::FakeLoki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const URL: &str = "http://127.0.0.1:9/loki/api/v1/push";

/// StartLogging with `opts`; returns the error text and how long it took.
async fn refused(plugin: &Plugin, fifo: &Fifo, opts: &[(&str, &str)]) -> (String, Duration) {
    let started = Instant::now();
    let answer = plugin.start_logging(&start_request(&fifo.path, opts)).await;
    let took = started.elapsed();
    let err = answer["Err"]
        .as_str()
        .unwrap_or_else(|| panic!("{opts:?} was accepted: {answer}"))
        .to_string();
    (err, took)
}

async fn assert_serving(plugin: &Plugin) {
    let (status, caps) = plugin.call("/LogDriver.Capabilities", "").await;
    assert_eq!(status, 200, "{caps}");
}

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Each of these was accepted, then overflowed `Instant + Duration` (an
/// abort under `panic = "abort"`), or rotated the local copy per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_log_opts_are_refused_and_the_plugin_keeps_serving() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let cases = [
        ("loki-batch-wait", "5000000000000000h", "out of range"),
        ("loki-batch-wait", "2562047h", "between 0s and 1m"),
        ("loki-timeout", "2562047h", "between 1ms and 10m"),
        ("loki-min-backoff", "100000h", "between 1ms and 1h"),
        ("loki-max-backoff", "2562047h", "between 1ms and 1h"),
        ("loki-retries", "99999999999", "from 0 to 10000"),
        ("loki-batch-size", "8191p", "between 1 and 16m"),
        ("loki-buffer-size", "1t", "between 1 and 1g"),
        ("max-size", "1", "between 64k and 1g"),
        ("max-file", "92233720368547758070", "greater than zero"),
    ];
    for (key, value, reason) in cases {
        let (err, _) = refused(&plugin, &fifo, &[("loki-url", URL), (key, value)]).await;
        assert!(
            err.contains(key) && err.contains(value) && err.contains(reason),
            "{key}={value}: {err}"
        );
    }
    // Still serving, and still shipping lines for a sane container.
    assert_serving(&plugin).await;
    let mut good = Fifo::create();
    let url = loki.url();
    let answer = plugin
        .start_logging(&start_request(
            &good.path,
            &[("loki-url", url.as_str()), ("loki-batch-wait", "1m")],
        ))
        .await;
    assert_eq!(answer, serde_json::json!({}));
    good.write_entry(&line("stdout", "still here"));
    plugin.stop_logging(&good.path).await;
    good.close();
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
}

/// A plugin setting past its bound stops the plugin at start with a clear
/// message (it never serves with it), instead of aborting at SIGTERM.
#[test]
fn an_absurd_plugin_setting_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loki-logdriver"))
        .args(["--socket", "/nonexistent/loki.sock"])
        .env("SHUTDOWN_GRACE", "5000000000000000h")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SHUTDOWN_GRACE") && stderr.contains("out of range"),
        "{stderr}"
    );
}

/// `/dev/zero` ate memory, `/dev/urandom` spun a worker, and two requests
/// naming a FIFO without a writer froze the plugin (SIGTERM ignored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_naming_devices_fifos_or_huge_files_are_refused_quickly() {
    let mut plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let dir = tempfile::tempdir().unwrap();
    let ca_fifo = dir.path().join("ca.fifo");
    mkfifo(&ca_fifo);
    let big = dir.path().join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(10 << 20)
        .unwrap();
    let https = "https://127.0.0.1:9/loki/api/v1/push";
    let paths: [(&str, &str); 5] = [
        ("/dev/zero", "character device"),
        ("/dev/urandom", "character device"),
        (ca_fifo.to_str().unwrap(), "FIFO"),
        (dir.path().to_str().unwrap(), "directory"),
        (big.to_str().unwrap(), "10485760 bytes"),
    ];
    let pki = support::tls::TestPki::new("loki.test");
    let good_cert = pki.client_cert_file.to_str().unwrap();
    for (path, what) in paths {
        for key in [
            "loki-tls-ca-file",
            "loki-tls-cert-file",
            "loki-tls-key-file",
        ] {
            let mut opts = vec![("loki-url", https), (key, path)];
            match key {
                "loki-tls-cert-file" => opts.push(("loki-tls-key-file", "/nonexistent/key.pem")),
                "loki-tls-key-file" => opts.push(("loki-tls-cert-file", good_cert)),
                _ => {}
            }
            let (err, took) = refused(&plugin, &fifo, &opts).await;
            assert!(
                err.contains(key) && err.contains(path) && err.contains(what),
                "{key}={path}: {err}"
            );
            assert!(took < Duration::from_secs(5), "{key}={path} took {took:?}");
        }
    }

    // Two containers naming that FIFO at once, and Capabilities answered meanwhile.
    let opts = [
        ("loki-url", https),
        ("loki-tls-ca-file", ca_fifo.to_str().unwrap()),
    ];
    let other = Fifo::create();
    let request = start_request(&fifo.path, &opts);
    let mut other_request = start_request(&other.path, &opts);
    other_request["Info"]["ContainerID"] = "0ther".into();
    let started = Instant::now();
    let (a, b, caps) = tokio::join!(
        plugin.start_logging(&request),
        plugin.start_logging(&other_request),
        plugin.call("/LogDriver.Capabilities", ""),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(caps.0, 200);
    for answer in [a, b] {
        assert!(answer["Err"].as_str().unwrap().contains("FIFO"), "{answer}");
    }
    let stopping = Instant::now();
    let status = tokio::task::block_in_place(|| plugin.terminate());
    assert!(status.success(), "{status}");
    assert!(stopping.elapsed() < Duration::from_secs(8));
}

/// The hand-written parser panicked on a non-ASCII fraction, and wrapped
/// years past 2262 into the past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_logs_times_are_parsed_safely() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let url = loki.url();
    let request = start_request(&fifo.path, &[("loki-url", url.as_str())]);
    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    for n in 0..5 {
        fifo.write_entry(&line("stdout", &numbered(n, 20)));
    }
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(5, Duration::from_secs(10)).await;

    let config = |since: &str, until: &str| serde_json::json!({ "Since": since, "Until": until, "Tail": -1, "Follow": false });
    let zero = "0001-01-01T00:00:00Z";
    for bad in [
        "2026-01-01T00:00:00.٣Z",
        "2026-01-01T00:00:00.5é5Z",
        "2026-01-01T00:00:00",
        "not a time",
    ] {
        for cfg in [config(bad, zero), config(zero, bad)] {
            let (status, answer) = plugin.read_logs(&request, cfg).await.err().unwrap();
            let err = answer["Err"].as_str().unwrap();
            assert_ne!(status, 200);
            assert!(err.contains("invalid time"), "{bad}: {err}");
        }
    }
    let far = "9999-12-31T23:59:59.999999999Z";
    let all = plugin.read_all_logs(&request, config(zero, far)).await;
    assert_eq!(all.len(), 5, "an Until in 9999 selects every line");
    let none = plugin.read_all_logs(&request, config(far, zero)).await;
    assert!(none.is_empty(), "a Since in 9999 selects no line");
    let early = "1600-01-01T00:00:00Z";
    assert_eq!(
        plugin
            .read_all_logs(&request, config(early, zero))
            .await
            .len(),
        5
    );
    assert!(
        plugin
            .read_all_logs(&request, config(zero, early))
            .await
            .is_empty()
    );
    assert_serving(&plugin).await;
}

/// `http://user:pa/ss@host/...` failed to parse and was echoed whole in the
/// error `docker run` prints and dockerd logs.
#[tokio::test]
async fn a_url_that_does_not_parse_never_shows_its_password() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let secret = "pa/ss-Zq7#x?y@z";
    let cases = [
        (
            "loki-url",
            format!("http://user:{secret}@host/loki/api/v1/push"),
        ),
        (
            "loki-url",
            format!("user:{secret}@host:3100/loki/api/v1/push"),
        ),
        ("loki-url", format!("http://user:{secret}@host:99999/push")),
        (
            "loki-proxy-url",
            format!("http://proxy:{secret}@proxy:3128"),
        ),
    ];
    for (key, value) in &cases {
        let mut opts = vec![(*key, value.as_str())];
        if *key == "loki-proxy-url" {
            opts.push(("loki-url", URL));
        }
        let (err, _) = refused(&plugin, &fifo, &opts).await;
        assert!(err.contains(key) && err.contains("<redacted>"), "{err}");
        for part in ["pa/ss", "Zq7", "x?y"] {
            assert!(!err.contains(part), "{key}={value}: {err}");
        }
    }
    let log = plugin.log();
    assert!(!log.contains("Zq7"), "{log}");
}

/// Opens a connection and sends `bytes`, then keeps it open, stalled.
async fn stalled(socket: &Path, bytes: Vec<u8>) -> Option<UnixStream> {
    let mut stream = UnixStream::connect(socket).await.ok()?;
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.write_all(&bytes)).await;
    Some(stream)
}

fn request_head(path: &str, content_length: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

/// 300 clients stall: half in their headers, half 1 MiB into a body. The
/// plugin held every body (320 MB); now its memory stays bounded, a stalled
/// body is answered 408, and a normal request is answered once the
/// stalled ones time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_cannot_exhaust_memory_or_the_server() {
    let plugin = Plugin::start(&[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = plugin.rss_kib();
    let started = Instant::now();

    // One stalled body first: it is served first, so it gets its 408.
    let mut head = request_head("/LogDriver.StartLogging", 100);
    head.extend_from_slice(b"{\"File\":");
    let mut first = stalled(&plugin.socket, head).await.unwrap();

    let mut clients = Vec::new();
    for i in 0..300 {
        let bytes = if i % 2 == 0 {
            b"POST /LogDriver.Capabilities HTTP/1.1\r\nHost: plug".to_vec()
        } else {
            let mut bytes = request_head("/LogDriver.StartLogging", 1 << 20);
            bytes.resize(bytes.len() + (1 << 20) - 1, b'x');
            bytes
        };
        let socket = plugin.socket.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = UnixStream::connect(&socket).await.ok()?;
            // Writes what the socket takes; the rest stays unsent.
            let _ = tokio::time::timeout(Duration::from_secs(30), stream.write_all(&bytes)).await;
            Some(stream)
        }));
    }
    let mut peak = before;
    while started.elapsed() < Duration::from_secs(4) {
        peak = peak.max(plugin.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("plugin RSS: {before} KiB before, {peak} KiB at most with 300 stalled clients");
    assert!(
        peak < before + 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );

    // A normal request gets its answer, after the stalled ones time out.
    let (status, caps) = tokio::time::timeout(
        Duration::from_secs(20),
        plugin.call("/LogDriver.Capabilities", ""),
    )
    .await
    .expect("Capabilities answered");
    assert_eq!(status, 200, "{caps}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut answer))
        .await
        .expect("the stalled body was answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("did not arrive within 10 s"),
        "{answer}"
    );
    for client in clients {
        client.abort();
    }
}

/// At the file-descriptor limit, accept fails at once, again and again: the
/// loop logged ~184,000 lines a second. Now it backs off, logs a line per
/// interval, and serves again once descriptors are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_fd_limit_accept_backs_off_quietly_and_recovers() {
    let plugin = Plugin::start_with_fd_limit(&[], 48);
    let mut held = Vec::new();
    for _ in 0..80 {
        match std::os::unix::net::UnixStream::connect(&plugin.socket) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    plugin
        .wait_for_log(
            "accepting a plugin API connection failed",
            Duration::from_secs(5),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures = plugin
        .log()
        .matches("accepting a plugin API connection failed")
        .count();
    assert!(
        (1..=2).contains(&failures),
        "{failures} accept-error lines in 3 s"
    );
    drop(held);
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        plugin.call("/LogDriver.Capabilities", ""),
    )
    .await
    .expect("served again");
    assert_eq!(status, 200);
    plugin
        .wait_for_log(
            "accepting plugin API connections again",
            Duration::from_secs(5),
        )
        .await;
}

/// Writes an attachment record as the driver does, under another name.
fn write_record(data_dir: &Path, name: &str, request: &serde_json::Value) {
    let dir = data_dir.join("attached");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), request.to_string()).unwrap();
}

/// A record with options that abort the plugin made it abort again at
/// every restart. Now such a FIFO is still read into the journal (nothing
/// goes to Loki, and the log says why; a client that cannot be made is
/// tried again later), and the other containers' FIFOs are read and
/// delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attachment_records_cannot_make_the_plugin_crash_loop() {
    let loki = FakeLoki::start().await;
    let data = tempfile::tempdir().unwrap();
    let url = loki.url();
    let (absurd, dev_zero, mut good) = (Fifo::create(), Fifo::create(), Fifo::create());
    let mut absurd_request = start_request(
        &absurd.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "5000000000000000h"),
        ],
    );
    absurd_request["Info"]["ContainerID"] = "aab5urd".into();
    write_record(data.path(), "absurd.json", &absurd_request);
    let mut dev_zero_request = start_request(
        &dev_zero.path,
        &[
            ("loki-url", "https://127.0.0.1:9/loki/api/v1/push"),
            ("loki-tls-ca-file", "/dev/zero"),
        ],
    );
    dev_zero_request["Info"]["ContainerID"] = "dev0".into();
    write_record(data.path(), "dev-zero.json", &dev_zero_request);
    let mut good_request = start_request(
        &good.path,
        &[("loki-url", url.as_str()), ("loki-batch-wait", "100ms")],
    );
    good_request["Info"]["ContainerName"] = "/good".into();
    write_record(data.path(), "good.json", &good_request);
    // Parses, but far out of range: it overflowed the batcher's clock.
    // Recorded by an older version, it is clamped, not refused, so this
    // running container's FIFO is still read.
    let mut clamped = Fifo::create_named("clamped");
    let mut clamped_request = start_request(
        &clamped.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-batch-wait", "2562047h"),
            ("max-size", "1"),
        ],
    );
    clamped_request["Info"]["ContainerName"] = "/clamped".into();
    clamped_request["Info"]["ContainerID"] = "c1a2b3".into();
    write_record(data.path(), "clamped.json", &clamped_request);

    let mut plugin = Plugin::start_with_data_dir(&[], data.path().to_path_buf());
    let later = "delivery to Loki starts once its client can be made";
    let outcomes = |log: &str| {
        log.matches("nothing goes to Loki").count()
            + log.matches(later).count()
            + log.matches("resumed=true").count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while outcomes(&plugin.log()) < 4 {
        assert!(Instant::now() < deadline, "{}", plugin.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = plugin.log();
    assert_eq!(
        (
            log.matches("nothing goes to Loki").count(),
            log.matches(later).count()
        ),
        (1, 1),
        "both unusable records are read into the journal, with the reason:\n{log}"
    );
    assert!(
        log.contains("loki-tls-ca-file") && log.contains("5000000000000000h"),
        "{log}"
    );
    assert_eq!(log.matches("resumed=true").count(), 2, "{log}");
    assert!(
        log.contains("loki-batch-wait=\"2562047h\" is out of range; using 1m"),
        "{log}"
    );
    good.write_entry(&line("stdout", "after the restart"));
    clamped.write_entry(&line("stdout", "clamped, still read"));
    plugin.stop_logging(&clamped.path).await;
    clamped.close();
    loki.wait_for_entries(2, Duration::from_secs(10)).await;
    let mut texts: Vec<String> = loki
        .entries_matching(&[])
        .iter()
        .map(|e| e.text())
        .collect();
    texts.sort();
    assert_eq!(texts, ["after the restart", "clamped, still read"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(plugin.is_running(), "{}", plugin.log());
    assert_serving(&plugin).await;
    let records: Vec<String> = std::fs::read_dir(data.path().join("attached"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        records.len(),
        3,
        "the FIFOs still read stay recorded; the closed one is gone: {records:?}"
    );
}

/// A Loki front that misbehaves, then forwards: while `bad`, it resets
/// every other connection once it has the request, and answers the others
/// with bytes that are not HTTP; then it forwards to `target`.
async fn misbehaving_front(
    target: std::net::SocketAddr,
    bad: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            n += 1;
            let bad = bad.load(std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if !bad {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    return;
                }
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf)).await;
                if n % 2 == 0 {
                    #[allow(deprecated)] // zero linger: a reset, no blocking
                    let _ = client.set_linger(Some(Duration::ZERO));
                    drop(client); // RST
                } else {
                    let _ = client
                        .write_all(b"SSH-2.0-OpenSSH\r\n\r\nnot http at all\r\n")
                        .await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    });
    addr
}

/// Issue 18, item 8. With `loki-retries=3`, connection resets and answers
/// that are not HTTP dropped 1,125 lines as `retries_exhausted`, though an
/// unreachable Loki never counts. A reset or a malformed answer is a
/// network fault: the lines wait, and all arrive once Loki answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_garbage_answers_do_not_count_against_retries() {
    let loki = FakeLoki::start().await;
    let bad = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let front = misbehaving_front(loki.addr(), bad.clone()).await;
    let url = format!("http://{front}/loki/api/v1/push");
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let request = start_request(
        &fifo.path,
        &[
            ("loki-url", url.as_str()),
            ("loki-retries", "3"),
            ("loki-min-backoff", "1ms"),
            ("loki-max-backoff", "20ms"),
            ("loki-batch-wait", "10ms"),
            ("loki-batch-size", "2k"),
        ],
    );
    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    for n in 0..1_000 {
        fifo.write_entry(&line("stdout", &numbered(n, 100)));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    bad.store(false, std::sync::atomic::Ordering::SeqCst);
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    let log = plugin
        .wait_for_log(
            "logging finished: container=fixture-app",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        support::fake_daemon::summary_field(&log, "fixture-app", "dropped_retries_exhausted"),
        Some(0),
        "{log}"
    );
    loki.wait_for_entries(1_000, Duration::from_secs(10)).await;
}

/// GET /metrics with a time limit; whether it was answered 200.
async fn scrape_ok(addr: std::net::SocketAddr) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Issue 18, item 9. 40 half-open connections, opened again as soon as
/// they are closed, held every slot of the metrics server: 59 of 60
/// scrapes failed. Now idle connections give their slot to new ones and
/// a scrape gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_cannot_blind_the_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let plugin = Plugin::start(&[("METRICS_ADDR", &addr.to_string())]);
    plugin
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(10))
        .await;
    let mut attackers = Vec::new();
    for i in 0..40 {
        attackers.push(tokio::spawn(async move {
            loop {
                let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                if i % 2 == 1 {
                    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHo").await;
                }
                // Held until the server closes it; then at once again.
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ok = 0;
    for _ in 0..20 {
        ok += usize::from(scrape_ok(addr).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for attacker in attackers {
        attacker.abort();
    }
    eprintln!("{ok} of 20 scrapes answered beside 40 half-open connections");
    assert!(ok >= 18, "{ok} of 20 scrapes answered");
    assert_serving(&plugin).await;
}

/// Issue 18, item 10. 10,000 labels, or a 1 MB label value, passed
/// StartLogging, and then Loki refused every line; label names that
/// differ only in characters Loki refuses (`ü1`, `é1`) silently became
/// one (`_1`). Now each is refused at start, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_sets_loki_would_refuse_are_refused_at_start() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let start = |labels: serde_json::Value, opts: &[(&str, &str)]| {
        let mut request = start_request(&fifo.path, opts);
        request["Info"]["ContainerLabels"] = labels;
        request
    };
    let many: serde_json::Map<String, serde_json::Value> = (0..10_000)
        .map(|i| (format!("label{i}"), serde_json::Value::from("v")))
        .collect();
    let cases = [
        (
            start(
                many.into(),
                &[("loki-url", URL), ("labels-regex", "^label")],
            ),
            "15",
        ),
        (
            start(
                serde_json::json!({ "big": "x".repeat(1 << 20) }),
                &[("loki-url", URL), ("labels", "big")],
            ),
            "2048",
        ),
        (
            start(
                serde_json::json!({ "ü1": "a", "é1": "b" }),
                &[("loki-url", URL), ("labels", "ü1,é1")],
            ),
            "_1",
        ),
    ];
    for (request, says) in cases {
        let answer = plugin.start_logging(&request).await;
        let err = answer["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("accepted: {answer}"));
        assert!(err.contains(says) && err.len() < 2_000, "{err}");
    }
    assert_serving(&plugin).await;
}

/// Issue 18, item 11. A writer that writes 10 MiB of 500 KiB frames in one
/// blocking `write(2)` was left stuck, with the plugin idle, in 7 of 8
/// rounds: the kernel wakes a FIFO's reader in the middle of one write
/// only when the FIFO was empty, and the reader keeps unconfirmed bytes in
/// it. The reader never waits on a full FIFO because of its own state now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_blocking_write_does_not_deadlock_the_reader() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let url = loki.url();
    for round in 0..8 {
        let mut fifo = Fifo::create_named(&format!("big-{round}"));
        let mut request = start_request(&fifo.path, &[("loki-url", url.as_str())]);
        request["Info"]["ContainerID"] = format!("b{round}").into();
        assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
        // A first flow of small lines, as a busy container writes.
        let mut bytes = Vec::new();
        for n in 0..20_000 {
            bytes.extend(support::fake_daemon::frame(&line(
                "stdout",
                &numbered(n, 100),
            )));
        }
        for n in 0..20 {
            bytes.extend(support::fake_daemon::frame(&line(
                "stdout",
                &numbered(n, 500 << 10),
            )));
        }
        let mut file = fifo.take_file();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            // One write(2) call for all of it, as a blocking writer does.
            let written = file.write(&bytes).unwrap();
            (written, bytes.len(), file)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !writer.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            writer.is_finished(),
            "round {round}: the writer is stuck in write(2)"
        );
        let (written, len, _file) = writer.join().unwrap();
        assert_eq!(written, len);
    }
}
