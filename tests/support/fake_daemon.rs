//! A fake Docker daemon: creates FIFOs and holds them read-write as dockerd
//! does, calls the plugin over its unix socket with the recorded request
//! bodies, and writes length-prefixed `LogEntry` frames.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use loki_logdriver::proto::logdriver::{LogEntry, PartialLogEntryMetadata};
use prost::Message;
use tokio::net::UnixStream;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures");

/// The body of a recorded HTTP request.
pub fn fixture_body(name: &str) -> String {
    let raw = std::fs::read_to_string(format!("{FIXTURES}/daemon-20.10/{name}")).expect("fixture");
    raw.split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .expect("headers end")
        .1
        .to_string()
}

/// The recorded StartLogging request as dockerd sent it (its own log-opts),
/// pointed at `fifo` and at `loki_url` instead of the recording's Loki.
pub fn recorded_start_request(fifo: &Path, loki_url: &str) -> serde_json::Value {
    let mut request: serde_json::Value =
        serde_json::from_str(&fixture_body("start-logging.http")).unwrap();
    request["File"] = fifo.to_string_lossy().into();
    request["Info"]["Config"]["loki-url"] = loki_url.into();
    request
}

/// The recorded StartLogging request, pointed at `fifo` and with `opts`
/// replacing its log-opts.
pub fn start_request<V: AsRef<str>>(fifo: &Path, opts: &[(&str, V)]) -> serde_json::Value {
    let mut request: serde_json::Value =
        serde_json::from_str(&fixture_body("start-logging.http")).unwrap();
    request["File"] = fifo.to_string_lossy().into();
    request["Info"]["Config"] = opts
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_ref())))
        .collect();
    request
}

/// A running plugin binary with its log (stdout) captured.
pub struct Plugin {
    child: Child,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// The plugin binary, run through `LOKI_TEST_RUNNER` when set: tests of
/// another architecture run it under qemu (`make test-arm64`), as cargo runs
/// the test binary itself through the target's runner.
fn plugin_command() -> Command {
    let binary = env!("CARGO_BIN_EXE_loki-logdriver");
    match std::env::var_os("LOKI_TEST_RUNNER").filter(|r| !r.is_empty()) {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

impl Plugin {
    pub fn start(env: &[(&str, &str)]) -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Plugin::start_with_data(env, dir, data_dir, None)
    }

    /// Starts a second plugin process that shares this one's data directory.
    pub fn restart_from(&self, env: &[(&str, &str)]) -> Plugin {
        Plugin::start_with_data(
            env,
            tempfile::tempdir().unwrap(),
            self.data_dir.clone(),
            None,
        )
    }

    /// Starts a plugin over an existing data directory (as after a crash).
    pub fn start_with_data_dir(env: &[(&str, &str)], data_dir: PathBuf) -> Plugin {
        Plugin::start_with_data(env, tempfile::tempdir().unwrap(), data_dir, None)
    }

    /// Starts a plugin that may have at most `limit` open files.
    pub fn start_with_fd_limit(env: &[(&str, &str)], limit: u64) -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Plugin::start_with_data(env, dir, data_dir, Some(limit))
    }

    fn start_with_data(
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
        data_dir: PathBuf,
        fd_limit: Option<u64>,
    ) -> Plugin {
        let socket = dir.path().join("plugins/loki.sock");
        let mut command = plugin_command();
        command
            .arg("--socket")
            .arg(&socket)
            .env("DATA_DIR", &data_dir)
            .env("DOCKER_SOCKET", dir.path().join("no-docker.sock"))
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        if let Some(limit) = fd_limit {
            use std::os::unix::process::CommandExt;
            // rlim_t is 32 bits on armv7 (`make test-armv7`).
            let limit = libc::rlim_t::try_from(limit).unwrap_or(libc::RLIM_INFINITY);
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("start plugin binary");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "plugin did not listen; log:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Plugin {
            child,
            socket,
            data_dir,
            log,
            _dir: dir,
        }
    }

    /// POSTs `body` to `path` over the plugin socket, as the daemon does.
    async fn post(&self, path: &str, body: String) -> hyper::Response<hyper::body::Incoming> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .expect("connect plugin socket");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::post(path)
            .header("Host", "plugin.moby.localhost")
            .header("Accept", "application/vnd.docker.plugins.v1.2+json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        sender.send_request(request).await.expect("plugin answered")
    }

    /// POSTs `body` to `path`; returns the status and the JSON answer.
    pub async fn call(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let response = self.post(path, body.to_string()).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{path} answered non-JSON {:?}: {e}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    pub async fn start_logging(&self, request: &serde_json::Value) -> serde_json::Value {
        let (status, answer) = self
            .call("/LogDriver.StartLogging", &request.to_string())
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    pub async fn stop_logging(&self, fifo: &Path) -> serde_json::Value {
        let body = serde_json::json!({ "File": fifo }).to_string();
        self.call("/LogDriver.StopLogging", &body).await.1
    }

    /// Calls ReadLogs for the container of `start` (a StartLogging request);
    /// returns the streaming body, or the status and error answer.
    pub async fn read_logs(
        &self,
        start: &serde_json::Value,
        config: serde_json::Value,
    ) -> Result<LogStream, (u16, serde_json::Value)> {
        let body = serde_json::json!({ "Info": start["Info"], "Config": config }).to_string();
        let response = self.post("/LogDriver.ReadLogs", body).await;
        let status = response.status().as_u16();
        if status != 200 {
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            return Err((status, serde_json::from_slice(&bytes).unwrap_or_default()));
        }
        Ok(LogStream {
            body: response.into_body(),
            decoder: loki_logdriver::frame::FrameDecoder::new(),
        })
    }

    /// All entries of a non-following ReadLogs.
    pub async fn read_all_logs(
        &self,
        start: &serde_json::Value,
        config: serde_json::Value,
    ) -> Vec<LogEntry> {
        let mut stream = self
            .read_logs(start, config)
            .await
            .unwrap_or_else(|e| panic!("ReadLogs failed: {e:?}"));
        let mut all = Vec::new();
        while let Some(entry) = stream.next(Duration::from_secs(10)).await {
            all.push(entry);
        }
        all
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The plugin's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the plugin's log contains `needle`; returns the log.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "plugin log never contained {needle:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A ReadLogs answer, decoded as the daemon decodes it.
pub struct LogStream {
    body: hyper::body::Incoming,
    decoder: loki_logdriver::frame::FrameDecoder,
}

impl LogStream {
    /// The next entry; `None` at the end of the stream. Panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<LogEntry> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.decoder.next() {
                Some(loki_logdriver::frame::Frame::Entry { entry, .. }) => return Some(entry),
                Some(skipped) => panic!("ReadLogs sent bytes that are not a frame: {skipped:?}"),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.body.frame())
                .await
                .expect("ReadLogs stream stalled")?;
            if let Ok(data) = frame.expect("ReadLogs body").into_data() {
                self.decoder.extend(&data);
            }
        }
    }
}

/// ReadLogs settings as the daemon sends them.
pub fn read_config(tail: i64, follow: bool) -> serde_json::Value {
    serde_json::json!({ "Since": "0001-01-01T00:00:00Z", "Until": "0001-01-01T00:00:00Z", "Tail": tail, "Follow": follow })
}

/// A log FIFO held read-write, as dockerd holds it.
pub struct Fifo {
    pub path: PathBuf,
    file: Option<std::fs::File>,
    _dir: tempfile::TempDir,
}

impl Fifo {
    pub fn create() -> Fifo {
        Fifo::create_named("4f1e0c8a9b2d7e3f5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f")
    }

    /// A FIFO with another name (attachment records are named after it).
    pub fn create_named(name: &str) -> Fifo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o700) }, 0, "mkfifo");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        Fifo {
            path,
            file: Some(file),
            _dir: dir,
        }
    }

    /// Writes raw bytes; returns how long the write blocked.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Duration {
        let start = Instant::now();
        self.file
            .as_mut()
            .expect("FIFO is open")
            .write_all(bytes)
            .unwrap();
        start.elapsed()
    }

    pub fn write_entry(&mut self, entry: &LogEntry) -> Duration {
        self.write_bytes(&frame(entry))
    }

    /// Closes the daemon's end: the plugin sees EOF.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Bytes written and not yet taken out of the FIFO by the plugin (it
    /// takes them once they are in its journal).
    pub fn unread(&self) -> usize {
        let mut left: libc::c_int = 0;
        let fd = std::os::fd::AsRawFd::as_raw_fd(self.file.as_ref().expect("FIFO is open"));
        // SAFETY: FIONREAD on a descriptor we own writes one int.
        unsafe { libc::ioctl(fd, libc::FIONREAD, &mut left) };
        left.max(0) as usize
    }

    /// A handle for a writer thread.
    pub fn take_file(&mut self) -> std::fs::File {
        self.file.take().expect("FIFO is open")
    }
}

pub fn frame(entry: &LogEntry) -> Vec<u8> {
    let body = entry.encode_to_vec();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

pub fn line(source: &str, text: &str) -> LogEntry {
    LogEntry {
        source: source.into(),
        time_nano: now_ns(),
        line: bytes::Bytes::copy_from_slice(text.as_bytes()),
        ..LogEntry::default()
    }
}

/// Splits `text` into the daemon's 16 KiB partial frames.
pub fn partials(source: &str, text: &[u8], id: &str) -> Vec<LogEntry> {
    let ts = now_ns();
    let chunks: Vec<&[u8]> = text.chunks(16 * 1024).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| LogEntry {
            source: source.into(),
            time_nano: ts,
            line: bytes::Bytes::copy_from_slice(chunk),
            partial: true,
            partial_log_metadata: Some(PartialLogEntryMetadata {
                last: i + 1 == chunks.len(),
                id: id.into(),
                ordinal: i as i32 + 1,
            }),
            ..LogEntry::default()
        })
        .collect()
}

/// A numbered line padded to `len` bytes: `line 000042 xxxx...`.
pub fn numbered(n: usize, len: usize) -> String {
    let mut text = format!("line {n:06} ");
    while text.len() < len {
        text.push('x');
    }
    text
}

/// Parses the number back out of a [`numbered`] line.
pub fn number_of(text: &str) -> usize {
    // Six digits or more (a soak run numbers past 999,999).
    text[5..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {:?}", &text[..text.len().min(40)]))
}

/// Extracts `key=value` from the plugin's summary log line for a container.
pub fn summary_field(log: &str, container: &str, key: &str) -> Option<u64> {
    summary_line(log, &format!("container={container} "))?
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{key}=")))?
        .parse()
        .ok()
}

/// The last `logging finished` summary line in `log` that holds `marker`
/// (`container=NAME ` or `id=SHORT_ID `).
pub fn summary_line<'a>(log: &'a str, marker: &str) -> Option<&'a str> {
    log.lines()
        .rfind(|l| l.contains(marker) && l.contains("received="))
}

/// The lines a summary line counts as dropped, every `dropped_<reason>`
/// together: reasons added later are counted too.
pub fn summary_dropped(line: &str) -> u64 {
    line.split_whitespace()
        .filter_map(|word| word.strip_prefix("dropped_")?.split_once('='))
        .filter_map(|(_, n)| {
            n.trim_matches(|c: char| !c.is_ascii_digit())
                .parse::<u64>()
                .ok()
        })
        .sum()
}
