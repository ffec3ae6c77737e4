//! The Loki test double decodes what Grafana's own driver pushes and rejects
//! what Loki rejects, so it cannot hide a bug in the plugin.

mod support;

use std::time::Duration;

use support::fake_loki::{FakeLoki, Mode, decode_push, parse_labels};

fn recorded_push(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let raw = std::fs::read(format!(
        "{}/loki-push/{name}",
        support::fake_daemon::FIXTURES
    ))
    .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn decodes_grafanas_recorded_pushes() {
    let mut all = Vec::new();
    for name in ["official-driver-push-1.http", "official-driver-push-2.http"] {
        let (headers, body) = recorded_push(name);
        assert_eq!(header(&headers, "x-scope-orgid"), "team-a");
        let streams = decode_push(header(&headers, "content-type"), "", &body).expect(name);
        all.extend(streams);
    }
    let lines_of = |source: &str| -> Vec<Vec<u8>> {
        all.iter()
            .filter(|(labels, _)| labels["source"] == source)
            .flat_map(|(_, entries)| entries.iter().map(|e| e.line.clone()))
            .collect()
    };
    let stdout = lines_of("stdout");
    let stderr = lines_of("stderr");
    assert!(stdout.iter().any(|l| l == b"first line to stdout"));
    assert!(stderr.iter().any(|l| l == b"first line to stderr"));
    assert!(
        stdout.iter().any(|l| l == b"\xff\xfe invalid utf8"),
        "raw invalid UTF-8 must decode"
    );
    let pieces: Vec<usize> = stdout
        .iter()
        .filter(|l| l.first() == Some(&b'a'))
        .map(Vec::len)
        .collect();
    assert_eq!(
        pieces,
        [16384, 16384, 7232],
        "Grafana's driver ships a 40,000-byte line in three entries"
    );
    let (labels, _) = &all[0];
    assert_eq!(labels["compose_project"], "shop");
    assert!(labels.contains_key("container_name") && labels.contains_key("host"));
}

#[test]
fn label_strings_are_parsed_strictly() {
    let labels = parse_labels(r#"{a="1", b_2="x\"y\\z", c=""}"#).unwrap();
    assert_eq!(labels["b_2"], "x\"y\\z");
    for bad in [
        r#"{1a="x"}"#,
        r#"{a-b="x"}"#,
        r#"{a="x", a="y"}"#,
        r#"a="x""#,
        r#"{a=x}"#,
        r#"{a="x"#,
    ] {
        assert!(parse_labels(bad).is_err(), "{bad} must be rejected");
    }
}

async fn push_json(loki: &FakeLoki, body: serde_json::Value) -> u16 {
    let stream = tokio::net::TcpStream::connect(loki.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::post("/loki/api/v1/push")
        .header("Host", "loki")
        .header("Content-Type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    sender
        .send_request(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn rejects_what_loki_rejects() {
    let loki = FakeLoki::start().await;
    let ok = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["1700000000000000000","hello"]]}]});
    assert_eq!(push_json(&loki, ok).await, 204);
    let no_labels = serde_json::json!({"streams":[{"stream":{},"values":[["1","x"]]}]});
    assert_eq!(push_json(&loki, no_labels).await, 400);
    let bad_name =
        serde_json::json!({"streams":[{"stream":{"bad-name":"x"},"values":[["1","x"]]}]});
    assert_eq!(push_json(&loki, bad_name).await, 400);
    let long = "y".repeat(support::fake_loki::LOKI_MAX_LINE_SIZE + 1);
    let too_long = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["1", long]]}]});
    assert_eq!(push_json(&loki, too_long).await, 400);
    assert_eq!(loki.entry_count(), 1, "rejected pushes are not recorded");
    assert_eq!(loki.entries_matching(&[("job", "x")])[0].text(), "hello");
}

#[tokio::test]
async fn can_be_scripted_to_fail_and_recover() {
    let loki = FakeLoki::start().await;
    let body = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["1","a"]]}]});
    loki.set_mode(Mode::Fail(429, "slow down".into()));
    assert_eq!(push_json(&loki, body.clone()).await, 429);
    loki.refuse_connections();
    assert!(
        tokio::net::TcpStream::connect(loki.addr()).await.is_err(),
        "port must refuse"
    );
    loki.accept_connections().await;
    loki.set_mode(Mode::Hang);
    let hung =
        tokio::time::timeout(Duration::from_millis(300), push_json(&loki, body.clone())).await;
    assert!(hung.is_err(), "a hanging Loki never answers");
    loki.set_mode(Mode::Accept);
    assert_eq!(push_json(&loki, body).await, 204);
}
