//! The Loki test double decodes what Grafana's own driver pushes and rejects
//! what Loki rejects, so it cannot hide a bug in the plugin.

mod support;

use std::time::Duration;

use loki_logdriver::proto::logproto::{EntryAdapter, PushRequest};
use support::fake_loki::{FakeLoki, Flavor, LimitAnswer, Mode, decode_push, go_time, parse_labels};
use support::push::{Answer, entry, entry_with_metadata, http_request, push_request, stream};

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

// Each test below pins a behaviour measured on real Loki 3.7.6 and 2.7.5 by
// `tests/real_loki.rs` (named in the test's doc), which also sends the same
// pushes to this fake and asserts the same answers.

async fn push(loki: &FakeLoki, request: &PushRequest) -> Answer {
    push_as(loki, request, None).await
}

async fn push_as(loki: &FakeLoki, request: &PushRequest, tenant: Option<&str>) -> Answer {
    let mut headers = vec![("Content-Type", "application/x-protobuf")];
    headers.extend(tenant.map(|t| ("X-Scope-OrgID", t)));
    http_request(
        loki.addr(),
        "POST",
        "/loki/api/v1/push",
        &headers,
        loki_logdriver::ship::encode::encode_push(request),
    )
    .await
}

fn one(labels: &str, line: &str) -> PushRequest {
    push_request(vec![stream(labels, vec![entry(1_000, line)])])
}

fn lines_of(loki: &FakeLoki, selector: &[(&str, &str)]) -> Vec<String> {
    loki.entries_matching(selector)
        .iter()
        .map(|e| e.text())
        .collect()
}

/// Real Loki (`labels_loki_refuses`, `a_line_over_max_line_size_is_refused_...`):
/// a label set Loki cannot parse refuses the whole push (400, nothing
/// stored); Loki 3.7.6 stores an empty label set (it adds
/// `service_name="unknown_service"`), Loki 2.7.5 refuses that stream.
#[tokio::test]
async fn rejects_what_loki_rejects() {
    let loki = FakeLoki::start().await;
    let ok = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["1700000000000000000","hello"]]}]});
    assert_eq!(push_json(&loki, ok).await, 204);
    let no_labels = serde_json::json!({"streams":[{"stream":{},"values":[["1","x"]]}]});
    assert_eq!(
        push_json(&loki, no_labels.clone()).await,
        204,
        "Loki 3 stores it"
    );
    let bad_name = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["2","good"]]},{"stream":{"bad-name":"x"},"values":[["1","x"]]}]});
    assert_eq!(push_json(&loki, bad_name).await, 400);
    let long = "y".repeat(support::fake_loki::LOKI_MAX_LINE_SIZE + 1);
    let too_long = serde_json::json!({"streams":[{"stream":{"job":"x"},"values":[["1", long]]}]});
    assert_eq!(push_json(&loki, too_long).await, 400);
    let exactly = "y".repeat(support::fake_loki::LOKI_MAX_LINE_SIZE);
    let at_limit =
        serde_json::json!({"streams":[{"stream":{"job":"max"},"values":[["1", exactly]]}]});
    assert_eq!(
        push_json(&loki, at_limit).await,
        204,
        "262,144 bytes is allowed"
    );
    assert_eq!(
        loki.entry_count(),
        3,
        "refused pushes and lines are not recorded"
    );
    assert_eq!(lines_of(&loki, &[("job", "x")]), ["hello"]);

    loki.set_flavor(Flavor::Loki2);
    assert_eq!(
        push_json(&loki, no_labels).await,
        400,
        "Loki 2.7.5 refuses it"
    );
    let long = "y".repeat(300_000);
    let no_limit = serde_json::json!({"streams":[{"stream":{"job":"big"},"values":[["1", long]]}]});
    assert_eq!(
        push_json(&loki, no_limit).await,
        204,
        "2.7.5's max_line_size is 0: none"
    );
}

/// Real Loki 3.7.6 (`labels_loki_refuses`): the texts of its 400s for labels.
#[tokio::test]
async fn label_errors_read_like_loki_3() {
    let loki = FakeLoki::start().await;
    let cases = [
        (
            r#"{job="x", bad-name="y"}"#,
            "couldn't parse labels: 1:14: parse error: unexpected character inside braces: '-'\n",
        ),
        (
            r#"{0abc="x"}"#,
            "couldn't parse labels: 1:2: parse error: unexpected character inside braces: '0'\n",
        ),
        (
            r#"{job="x", a="1", a="2"}"#,
            "stream '{a=\"1\", a=\"2\", job=\"x\", service_name=\"x\"}' has duplicate label name: 'a'\n",
        ),
        (
            &format!(r#"{{v="{}"}}"#, "v".repeat(2049)),
            &format!(
                "stream '{{service_name=\"unknown_service\", v=\"{0}\"}}' has label value too long: '{0}'\n",
                "v".repeat(2049)
            ),
        ),
        (
            &format!(r#"{{{}="v"}}"#, "n".repeat(1025)),
            &format!(
                "stream '{{{0}=\"v\", service_name=\"unknown_service\"}}' has label name too long: '{0}'\n",
                "n".repeat(1025)
            ),
        ),
    ];
    for (labels, expected) in cases {
        let answer = push(&loki, &one(labels, "x")).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (400, expected),
            "{labels}"
        );
    }
    // At most 15 label names (Loki's own service_name not counted); the set
    // is shown sorted, with service_name taken from container_name before job.
    let fifteen: String = (0..13).map(|i| format!(", l{i}=\"v\"")).collect();
    let ok = format!(r#"{{job="j", container_name="web"{fifteen}}}"#);
    assert_eq!(push(&loki, &one(&ok, "x")).await.status, 204);
    let sixteen = format!(r#"{{job="j", container_name="web", l13="v"{fifteen}}}"#);
    let answer = push(&loki, &one(&sixteen, "x")).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.starts_with(
            "entry for stream '{container_name=\"web\", job=\"j\", l0=\"v\", l1=\"v\", l10=\"v\","
        ) && answer
            .body
            .ends_with("l9=\"v\", service_name=\"web\"}' has 16 label names; limit 15\n"),
        "{}",
        answer.body
    );
}

/// Real Loki 2.7.5 (`labels_loki_refuses`): no `couldn't parse labels:`
/// prefix, 30 label names, the label set as pushed, and only the last error
/// of a push told.
#[tokio::test]
async fn label_errors_read_like_loki_2_in_its_flavor() {
    let loki = FakeLoki::start().await;
    loki.set_flavor(Flavor::Loki2);
    let answer = push(&loki, &one(r#"{job="x", bad-name="y"}"#, "x")).await;
    assert_eq!(
        answer.body,
        "1:14: parse error: unexpected character inside braces: '-'\n"
    );
    let sixteen: String = (0..16).map(|i| format!("l{i}=\"v\", ")).collect();
    assert_eq!(
        push(&loki, &one(&format!("{{{sixteen}job=\"j\"}}"), "x"))
            .await
            .status,
        204
    );
    let many: String = (0..30).map(|i| format!("l{i}=\"v\", ")).collect();
    let answer = push(&loki, &one(&format!("{{{many}job=\"j\"}}"), "x")).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .body
            .starts_with("entry for stream '{l0=\"v\", l1=\"v\", l2=\"v\"")
            && answer
                .body
                .ends_with("job=\"j\"}' has 31 label names; limit 30\n"),
        "{}",
        answer.body
    );
    let request = push_request(vec![
        stream("{}", vec![entry(1, "empty")]),
        stream(r#"{job="good"}"#, vec![entry(1, "good")]),
        stream(
            &format!(r#"{{v="{}"}}"#, "v".repeat(2049)),
            vec![entry(1, "long")],
        ),
    ]);
    let answer = push(&loki, &request).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.ends_with(&format!(
            "has label value too long: '{}'\n",
            "v".repeat(2049)
        )) && !answer.body.contains("at least one label"),
        "only the last error: {}",
        answer.body
    );
    assert_eq!(lines_of(&loki, &[("job", "good")]), ["good"]);
}

/// Real Loki 3.7.6 (`a_line_over_max_line_size_is_refused_...`): a push with
/// a too long line is answered 400 naming that stream, and everything else
/// of it is stored: the other streams, and the other entries of that stream.
/// Several errors read `N errors like: ...; M errors like: ...`.
#[tokio::test]
async fn a_push_with_a_bad_stream_stores_the_rest() {
    let loki = FakeLoki::start().await;
    let request = push_request(vec![
        stream(r#"{job="good1"}"#, vec![entry(1, "ok1")]),
        stream(
            r#"{job="bad"}"#,
            vec![
                entry(1, "short"),
                entry(2, "a".repeat(300_000)),
                entry(3, "after"),
            ],
        ),
        stream(r#"{job="good3"}"#, vec![entry(1, "ok3")]),
    ]);
    let answer = push(&loki, &request).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (
            400,
            "max entry size '262144' bytes exceeded for stream '{job=\"bad\", service_name=\"bad\"}' \
             while adding an entry with length '300000' bytes\n"
        )
    );
    assert_eq!(lines_of(&loki, &[("job", "good1")]), ["ok1"]);
    assert_eq!(lines_of(&loki, &[("job", "bad")]), ["short", "after"]);
    assert_eq!(lines_of(&loki, &[("job", "good3")]), ["ok3"]);

    let several = push_request(vec![
        stream(
            r#"{job="twice"}"#,
            vec![entry(1, "x".repeat(300_000)), entry(2, "y".repeat(300_000))],
        ),
        stream(r#"{job="once"}"#, vec![entry(1, "z".repeat(300_001))]),
    ]);
    let answer = push(&loki, &several).await;
    assert_eq!(
        answer.body,
        "2 errors like: max entry size '262144' bytes exceeded for stream '{job=\"twice\", \
         service_name=\"twice\"}' while adding an entry with length '300000' bytes; 1 errors like: \
         max entry size '262144' bytes exceeded for stream '{job=\"once\", service_name=\"once\"}' \
         while adding an entry with length '300001' bytes\n"
    );
    assert!(loki.entries_matching(&[("job", "twice")]).is_empty());
}

/// Real Loki (`duplicates_are_stored_once_until_their_chunk_is_flushed`,
/// `a_batch_sent_again_after_a_lost_answer_is_stored_once`): an entry with
/// the timestamp and line of one already in its stream is dropped, also
/// within one push and also when it is not the newest; another line at
/// the same time is kept. (Real Loki keeps a second copy once the first
/// one's chunk was flushed; the fake never flushes.)
#[tokio::test]
async fn exact_duplicates_are_stored_once() {
    let loki = FakeLoki::start().await;
    let batch = push_request(vec![stream(
        r#"{job="dup"}"#,
        (0..5).map(|i| entry(i, format!("line {i}"))).collect(),
    )]);
    assert_eq!(push(&loki, &batch).await.status, 204);
    assert_eq!(
        push(&loki, &batch).await.status,
        204,
        "a duplicate is no error"
    );
    let older = push_request(vec![stream(r#"{job="dup"}"#, vec![entry(2, "line 2")])]);
    assert_eq!(push(&loki, &older).await.status, 204);
    assert_eq!(lines_of(&loki, &[("job", "dup")]).len(), 5);
    let same_time = push_request(vec![stream(
        r#"{job="same"}"#,
        vec![entry(0, "A"), entry(0, "B"), entry(0, "B"), entry(1, "C")],
    )]);
    push(&loki, &same_time).await;
    push(&loki, &one(r#"{job="same"}"#, "D")).await;
    push(&loki, &one(r#"{job="same"}"#, "D")).await;
    assert_eq!(lines_of(&loki, &[("job", "same")]), ["A", "B", "C", "D"]);
}

/// Real Loki (`structured_metadata_is_kept_by_loki_3_and_dropped_by_loki_2`):
/// Loki 3.7.6 stores structured metadata; Loki 2.7.5 answers 204 to it in
/// protobuf and drops it without a word, and answers 400 to it in JSON.
#[tokio::test]
async fn structured_metadata_is_kept_like_loki_3_and_dropped_like_loki_2() {
    let loki = FakeLoki::start().await;
    let request = push_request(vec![stream(
        r#"{job="meta"}"#,
        vec![entry_with_metadata(
            1,
            "line",
            &[("container_id", "abc123")],
        )],
    )]);
    let json = serde_json::json!({"streams":[{"stream":{"job":"json"},"values":[["1","line",{"trace_id":"t-1"}]]}]});
    assert_eq!(push(&loki, &request).await.status, 204);
    assert_eq!(push_json(&loki, json.clone()).await, 204);
    let kept = loki.entries_matching(&[("job", "meta")]);
    assert_eq!(
        kept[0].metadata,
        [("container_id".to_string(), "abc123".to_string())]
    );
    assert_eq!(
        loki.entries_matching(&[("job", "json")])[0].metadata.len(),
        1
    );

    let loki = FakeLoki::start().await;
    loki.set_flavor(Flavor::Loki2);
    assert_eq!(push(&loki, &request).await.status, 204);
    assert_eq!(push_json(&loki, json).await, 400);
    let kept = loki.entries_matching(&[("job", "meta")]);
    assert_eq!(kept[0].text(), "line");
    assert!(kept[0].metadata.is_empty(), "dropped");
}

/// Real Loki (`rate_limits_answer_429_and_store_what_fits`): a stream over
/// the per-stream limit is answered 429 with one line per refused entry (at
/// most ten) and a total, naming the stream; no Retry-After; the other
/// streams of the push are stored.
#[tokio::test]
async fn a_rate_limited_stream_gets_loki_429_and_the_others_are_stored() {
    let loki = FakeLoki::start().await;
    loki.rate_limit_streams(&[("job", "hot")], LimitAnswer::Always);
    let t = 1_795_278_683_130_443_808; // 2026-11-21 16:31:23.130443808 UTC
    let hot: Vec<EntryAdapter> = (0..12)
        .map(|i| entry(t + i * 100, "h".repeat(1024)))
        .collect();
    let request = push_request(vec![
        stream(r#"{job="hot"}"#, hot),
        stream(r#"{job="cold"}"#, vec![entry(t, "cold")]),
    ]);
    let answer = push(&loki, &request).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), None, "real Loki sends none");
    let lines: Vec<&str> = answer.body.lines().collect();
    assert_eq!(lines.len(), 11, "ten refused entries, then the total");
    assert_eq!(
        lines[0],
        "entry with timestamp 2026-11-21 16:31:23.130443808 +0000 UTC ignored, reason: 'Per stream \
         rate limit exceeded (limit: 3MB/sec) while attempting to ingest for stream '{job=\"hot\", \
         service_name=\"hot\"}' totaling 1KB, consider splitting a stream via additional labels or \
         contact your Loki administrator to see if the limit can be increased',"
    );
    assert!(lines[1].starts_with("entry with timestamp 2026-11-21 16:31:23.130443908 +0000 UTC"));
    assert_eq!(
        lines[10],
        "user 'fake', total ignored: 12 out of 12 for stream: {job=\"hot\", service_name=\"hot\"}"
    );
    assert!(answer.body.ends_with("}\n"));
    assert!(loki.entries_matching(&[("job", "hot")]).is_empty());
    assert_eq!(lines_of(&loki, &[("job", "cold")]), ["cold"]);

    // For a client that honours it, a Retry-After can be added.
    loki.set_retry_after(Some("2"));
    let answer = push_as(&loki, &request, Some("team-a")).await;
    assert_eq!(answer.header("retry-after"), Some("2"));
    assert!(
        answer.body.contains("user 'team-a', total ignored"),
        "{}",
        answer.body
    );

    loki.set_flavor(Flavor::Loki2);
    let answer = push(&loki, &request).await;
    let lines: Vec<&str> = answer.body.lines().collect();
    assert!(
        lines[0].ends_with("limit can be increased' for stream: {job=\"hot\"},"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[10], "total ignored: 12 out of 12");

    loki.clear_rate_limits();
    assert_eq!(push(&loki, &request).await.status, 204);
    assert_eq!(loki.entries_matching(&[("job", "hot")]).len(), 12);
}

/// Real Loki (`rate_limits_answer_429_and_store_what_fits`): the answer is
/// that of the LAST stream of the push. Refused entries of a stream followed
/// by an accepted stream are dropped while the push is answered 204.
#[tokio::test]
async fn like_loki_only_the_last_stream_of_a_push_decides_the_answer() {
    let loki = FakeLoki::start().await;
    loki.rate_limit_streams(&[("job", "hot")], LimitAnswer::LastStream);
    let hot = || stream(r#"{job="hot"}"#, vec![entry(1, "hot")]);
    let cold = |line: &str| stream(r#"{job="cold"}"#, vec![entry(1, line)]);
    let answer = push(&loki, &push_request(vec![cold("c1"), hot()])).await;
    assert_eq!(answer.status, 429);
    let answer = push(&loki, &push_request(vec![hot(), cold("c2")])).await;
    assert_eq!(answer.status, 204, "silently dropped");
    assert!(loki.entries_matching(&[("job", "hot")]).is_empty());
    assert_eq!(lines_of(&loki, &[("job", "cold")]), ["c1", "c2"]);
}

/// Real Loki (`rate_limits_answer_429_and_store_what_fits`): a push over the
/// tenant's ingestion rate is refused whole with 429, no Retry-After.
#[tokio::test]
async fn tenant_rate_limit_answers_like_loki() {
    let loki = FakeLoki::start().await;
    loki.set_mode(Mode::TenantRateLimited(4_194_304));
    let request = push_request(vec![
        stream(
            r#"{s="a"}"#,
            vec![entry(1, "x".repeat(1000)), entry(2, "y".repeat(500))],
        ),
        stream(r#"{s="b"}"#, vec![entry(1, "z".repeat(10))]),
    ]);
    let answer = push_as(&loki, &request, Some("team-a")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (
            429,
            "ingestion rate limit exceeded for user team-a (limit: 4194304 bytes/sec) while \
             attempting to ingest '3' lines totaling '1510' bytes, reduce log volume or contact \
             your Loki administrator to see if the limit can be increased\n"
        )
    );
    assert_eq!(answer.header("retry-after"), None);
    assert_eq!(loki.entry_count(), 0);
    loki.set_flavor(Flavor::Loki2);
    let answer = push(&loki, &request).await;
    assert!(
        answer
            .body
            .starts_with("Ingestion rate limit exceeded for user fake "),
        "{}",
        answer.body
    );
}

#[test]
fn times_print_like_go() {
    assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(
        go_time(1_700_000_000_123_000_000),
        "2023-11-14 22:13:20.123 +0000 UTC"
    );
    assert_eq!(
        go_time(951_782_400_000_000_001),
        "2000-02-29 00:00:00.000000001 +0000 UTC"
    );
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
