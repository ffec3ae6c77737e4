//! A drain-only log-driver plugin, for `make bench` (`benches/engine.rs`):
//! it answers the LogDriver protocol and reads every FIFO to its end,
//! dropping the bytes: no frames decoded, no journal, no Loki. What it costs
//! the daemon and the container (exit time) and itself (CPU, memory) is
//! that of the simplest plugin, measured in the same run. It is not a floor:
//! its blocking reads wake it at each of the daemon's writes, which the
//! plugin avoids (it reads a busy FIFO once a millisecond), so the plugin
//! now costs the daemon and itself less.
//!
//! A separate binary rather than a mode of the plugin, so that the product
//! carries no switch that silently drops logs. Only std, serde_json and
//! libc; one thread per connection and per FIFO, blocking reads of 128 KiB.
//!
//! Run as the plugin's entrypoint: `drain_plugin [--socket PATH]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut socket = String::from("/run/docker/plugins/loki.sock");
    while let Some(arg) = args.next() {
        if arg == "--socket" {
            socket = args.next().expect("--socket needs a path");
        }
    }
    let _ = std::fs::remove_file(&socket);
    if let Some(parent) = std::path::Path::new(&socket).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let listener = UnixListener::bind(&socket).expect("bind the plugin socket");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}

/// Serves HTTP/1.1 requests on one connection (keep-alive), each with a
/// Content-Length body.
fn serve(stream: UnixStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the connection"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = answer(&path, &body);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(path: &str, body: &[u8]) -> String {
    match path {
        "/Plugin.Activate" => r#"{"Implements":["LogDriver"]}"#.into(),
        "/LogDriver.Capabilities" => r#"{"Cap":{"ReadLogs":false}}"#.into(),
        "/LogDriver.StartLogging" => {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            match request["File"].as_str() {
                Some(fifo) => {
                    let fifo = fifo.to_string();
                    std::thread::spawn(move || drain(&fifo));
                    "{}".into()
                }
                None => r#"{"Err":"no File"}"#.into(),
            }
        }
        _ => "{}".into(),
    }
}

/// Reads a FIFO until the daemon closes it, dropping what it reads.
fn drain(path: &str) {
    let Ok(mut fifo) = std::fs::File::open(path) else {
        return;
    };
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        match fifo.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
