use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::options::{ContainerConfig, EndpointConfig};
use crate::config::settings::Settings;
use crate::journal::JournalConfig;
use crate::protocol::ContainerInfo;
use crate::ship::Shipper;
use crate::ship::client::{BoxFuture, Pusher};
use crate::ship::policy::PushResult;

fn sample_container() -> ContainerSample {
    let mut lines = LineCounts {
        received: 100,
        sent: 90,
        ..LineCounts::default()
    };
    lines.dropped[DropReason::Rejected as usize] = 7;
    ContainerSample {
        name: "web-1".into(),
        short_id: "0123456789ab".into(),
        compose_project: "shop".into(),
        compose_service: "web".into(),
        lines,
        memory_bytes: 4096,
        journal_bytes: 123_456,
        journal_limit_bytes: 1 << 30,
        pending_lines: 3,
        oldest_pending_age_seconds: 1.5,
        filtered: vec![("drop_stage".into(), 2)],
        journal_unavailable: None,
    }
}

fn sample_endpoint() -> EndpointSample {
    let mut latency_buckets = [0; LATENCY_BUCKETS.len() + 1];
    latency_buckets[0] = 2; // <= 5 ms
    latency_buckets[4] = 1; // <= 100 ms
    latency_buckets[LATENCY_BUCKETS.len()] = 1; // > 10 s
    let mut pushes = [0; PushClass::ALL.len()];
    pushes[PushClass::Success as usize] = 3;
    pushes[PushClass::ClientError as usize] = 1;
    EndpointSample {
        url: "http://loki:3100/loki/api/v1/push".into(),
        pushes,
        latency_buckets,
        latency_sum_seconds: 12.25,
        retries: 5,
        lanes: 2,
        lanes_backing_off: 1,
        in_flight: 0,
        up: false,
    }
}

fn render_snapshot(snapshot: Snapshot) -> String {
    render(&registry(FixedCollector(snapshot))).unwrap()
}

/// Samples of the text: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn renders_every_family_in_the_openmetrics_text_format() {
    let mut snapshot = Snapshot {
        containers: vec![sample_container()],
        endpoints: vec![sample_endpoint()],
        plugin: PluginSample {
            memory_budget_bytes: 256 << 20,
            memory_budget_used_bytes: 4096,
            open_fifos: 1,
            journals_open: 1,
            endpoints: 1,
            ..PluginSample::default()
        },
    };
    snapshot.plugin.lines = snapshot.containers[0].lines;
    snapshot.plugin.lines.received += 50;
    let text = render_snapshot(snapshot);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for header in [
        "# HELP loki_logdriver_lines_received Lines read from the container's FIFO",
        "# TYPE loki_logdriver_lines_received counter",
        "# TYPE loki_logdriver_memory_bytes gauge",
        "# UNIT loki_logdriver_memory_bytes bytes",
        "# TYPE loki_logdriver_push_duration_seconds histogram",
        "# TYPE loki_logdriver_oldest_pending_age_seconds gauge",
        "# TYPE loki_logdriver_build_info gauge",
    ] {
        assert!(text.contains(header), "no {header:?} in\n{text}");
    }
    let samples = samples(&text);
    let container = r#"container_name="web-1",container_id="0123456789ab",compose_project="shop",compose_service="web""#;
    let endpoint = r#"endpoint="http://loki:3100/loki/api/v1/push""#;
    let expected = [
        (
            format!("loki_logdriver_lines_received_total{{{container}}}"),
            "100",
        ),
        (
            format!("loki_logdriver_lines_sent_total{{{container}}}"),
            "90",
        ),
        (
            format!("loki_logdriver_lines_recovered_total{{{container}}}"),
            "0",
        ),
        (
            format!("loki_logdriver_lines_dropped_total{{{container},reason=\"rejected\"}}"),
            "7",
        ),
        (
            format!("loki_logdriver_lines_dropped_total{{{container},reason=\"memory_full\"}}"),
            "0",
        ),
        (
            format!("loki_logdriver_invalid_frames_total{{{container}}}"),
            "0",
        ),
        (
            format!("loki_logdriver_journal_misses_total{{{container}}}"),
            "0",
        ),
        (
            format!("loki_logdriver_memory_bytes{{{container}}}"),
            "4096",
        ),
        (
            format!("loki_logdriver_journal_bytes{{{container}}}"),
            "123456",
        ),
        (
            format!("loki_logdriver_journal_limit_bytes{{{container}}}"),
            "1073741824",
        ),
        (format!("loki_logdriver_pending_lines{{{container}}}"), "3"),
        (
            format!("loki_logdriver_oldest_pending_age_seconds{{{container}}}"),
            "1.5",
        ),
        (
            format!("loki_logdriver_pushes_total{{{endpoint},status=\"2xx\"}}"),
            "3",
        ),
        (
            format!("loki_logdriver_pushes_total{{{endpoint},status=\"4xx\"}}"),
            "1",
        ),
        (
            format!("loki_logdriver_pushes_total{{{endpoint},status=\"unreachable\"}}"),
            "0",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_count{{{endpoint}}}"),
            "4",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_sum{{{endpoint}}}"),
            "12.25",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_bucket{{le=\"0.005\",{endpoint}}}"),
            "2",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_bucket{{le=\"0.05\",{endpoint}}}"),
            "2",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_bucket{{le=\"0.1\",{endpoint}}}"),
            "3",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_bucket{{le=\"10.0\",{endpoint}}}"),
            "3",
        ),
        (
            format!("loki_logdriver_push_duration_seconds_bucket{{le=\"+Inf\",{endpoint}}}"),
            "4",
        ),
        (format!("loki_logdriver_retries_total{{{endpoint}}}"), "5"),
        (format!("loki_logdriver_lanes{{{endpoint}}}"), "2"),
        (
            format!("loki_logdriver_lanes_backing_off{{{endpoint}}}"),
            "1",
        ),
        (
            format!("loki_logdriver_pushes_in_flight{{{endpoint}}}"),
            "0",
        ),
        (format!("loki_logdriver_endpoint_up{{{endpoint}}}"), "0"),
        ("loki_logdriver_plugin_lines_received_total".into(), "150"),
        ("loki_logdriver_plugin_lines_sent_total".into(), "90"),
        (
            "loki_logdriver_plugin_lines_dropped_total{reason=\"rejected\"}".into(),
            "7",
        ),
        ("loki_logdriver_memory_budget_bytes".into(), "268435456"),
        ("loki_logdriver_memory_budget_used_bytes".into(), "4096"),
        ("loki_logdriver_open_fifos".into(), "1"),
        ("loki_logdriver_journals_open".into(), "1"),
        ("loki_logdriver_endpoints".into(), "1"),
        (
            format!(
                "loki_logdriver_build_info{{version=\"{}\",arch=\"{}\"}}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            ),
            "1",
        ),
    ];
    for (series, value) in expected {
        assert_eq!(
            samples.get(&series).map(String::as_str),
            Some(value),
            "{series} in\n{text}"
        );
    }
    let reasons = samples
        .keys()
        .filter(|k| k.starts_with("loki_logdriver_lines_dropped_total{"))
        .count();
    assert_eq!(
        reasons,
        DropReason::ALL.len(),
        "every reason, zeros included"
    );
}

#[test]
fn label_values_are_escaped_and_empty_families_keep_their_header() {
    let mut container = sample_container();
    container.name = "we\"ird\\name\nx".into();
    container.compose_project = String::new();
    let text = render_snapshot(Snapshot {
        containers: vec![container],
        ..Snapshot::default()
    });
    assert!(
        text.contains(r#"container_name="we\"ird\\name\nx""#),
        "{text}"
    );
    assert!(text.contains(r#"compose_project="""#), "{text}");
    assert!(text.contains("# TYPE loki_logdriver_pushes counter\n"));
    assert!(!text.contains("loki_logdriver_pushes_total{"), "{text}");
}

#[test]
fn endpoint_labels_carry_no_credentials_query_or_fragment() {
    assert_eq!(
        endpoint_label("https://loki.example:3100/loki/api/v1/push?token=abc#frag"),
        "https://loki.example:3100/loki/api/v1/push"
    );
    assert_eq!(
        endpoint_label("http://user:pw@loki/loki/api/v1/push"),
        "http://loki/loki/api/v1/push"
    );
    assert_eq!(endpoint_label("not a url u:p@host"), "<redacted>@host");
}

/// Never called: the endpoints of these tests push nothing.
struct NoLoki;

impl Pusher for NoLoki {
    fn push(
        &self,
        _body: Bytes,
        _timeout: Duration,
        _tenant: Option<Arc<str>>,
    ) -> BoxFuture<'_, PushResult> {
        Box::pin(std::future::pending())
    }
}

fn no_loki() -> Arc<Shipper> {
    Shipper::new(Box::new(|_| {
        Box::pin(async { Ok(Arc::new(NoLoki) as Arc<dyn Pusher>) })
    }))
}

fn endpoint(opts: &[(&str, &str)]) -> EndpointConfig {
    ContainerConfig::from_log_opts(
        &opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap()
    .endpoint
}

fn journal_config() -> JournalConfig {
    JournalConfig {
        max_size: Some(1 << 20),
        max_file: 2,
        no_file: false,
        keep_file: false,
        disk_limit: 8 << 20,
        memory_limit: 1 << 20,
        journaled_memory: usize::MAX,
        max_line: 16 << 10,
    }
}

fn info(id: &str, name: &str, service: Option<&str>) -> ContainerInfo {
    ContainerInfo {
        container_id: id.into(),
        container_name: format!("/{name}"),
        labels: service.map(|s| {
            [("com.docker.compose.service".to_string(), s.to_string())]
                .into_iter()
                .collect()
        }),
        ..ContainerInfo::default()
    }
}

#[tokio::test]
async fn the_collector_reads_the_driver_and_totals_outlive_containers() {
    let shipper = no_loki();
    let settings = Settings {
        data_dir: None,
        docker_socket: None,
        ..Settings::default()
    };
    let driver = Driver::with_shipper(settings, shipper);
    let store = driver.store().clone();
    let open = |id: &str, name: &str, service: Option<&str>| {
        let info = info(id, name, service);
        store
            .open(
                id,
                name,
                journal_config(),
                Arc::new(ContainerCounters::of_container(&info)),
                None,
            )
            .unwrap()
    };
    let web = open("aaaaaaaaaaaaaaaa", "web-1", Some("web"));
    let job = open("bbbbbbbbbbbbbbbb", "job", None);
    ContainerCounters::add(&web.counters.received, 10);
    ContainerCounters::add(&web.counters.sent, 8);
    web.counters.drop_lines(DropReason::Rejected, 2);
    ContainerCounters::add(&job.counters.received, 5);
    ContainerCounters::add(&job.counters.sent, 5);
    let now = now_ns();
    job.counters
        .oldest_pending_ns
        .store(now - 90_000_000_000, Ordering::Relaxed);
    job.counters.memory_lines.store(1, Ordering::Relaxed);

    // Two endpoints with the same URL (one with credentials and a tenant):
    // one label, counts added together.
    let url = "http://127.0.0.1:3100/loki/api/v1/push";
    let secret = "http://alice:s3cret@127.0.0.1:3100/loki/api/v1/push";
    for config in [
        endpoint(&[("loki-url", url)]),
        endpoint(&[("loki-url", secret), ("loki-tenant-id", "team-secret")]),
    ] {
        driver.shipper().prepare(&config).await.unwrap();
    }
    let counters = driver.shipper().counters();
    assert_eq!(counters.len(), 2);
    counters[0].record_push(PushClass::Success, Duration::from_millis(3));
    counters[1].record_push(PushClass::Unreachable, Duration::from_millis(30));
    counters[1].up.store(false, Ordering::Relaxed);

    let collector = DriverCollector::new(driver.clone());
    let snapshot = collector.snapshot();
    let names: Vec<(&str, &str)> = snapshot
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.compose_service.as_str()))
        .collect();
    assert_eq!(names, [("job", ""), ("web-1", "web")]);
    let job_sample = &snapshot.containers[0];
    assert_eq!(job_sample.short_id, "bbbbbbbbbbbb");
    assert_eq!(job_sample.pending_lines, 1);
    assert!(
        (89.0..120.0).contains(&job_sample.oldest_pending_age_seconds),
        "{}",
        job_sample.oldest_pending_age_seconds
    );
    assert_eq!(snapshot.endpoints.len(), 1);
    let endpoint = &snapshot.endpoints[0];
    assert_eq!(endpoint.url, url);
    assert_eq!(endpoint.pushes[PushClass::Success as usize], 1);
    assert_eq!(endpoint.pushes[PushClass::Unreachable as usize], 1);
    assert_eq!(endpoint.latency_buckets.iter().sum::<u64>(), 2);
    assert!(!endpoint.up, "down when any endpoint of the URL is down");
    assert_eq!(snapshot.plugin.lines.received, 15);
    assert_eq!(snapshot.plugin.journals_open, 2);
    assert_eq!(snapshot.plugin.endpoints, 1);
    assert_eq!(snapshot.plugin.open_fifos, 0);
    let text = render(&registry(DriverCollector::new(driver.clone()))).unwrap();
    for secret in ["alice", "s3cret", "team-secret"] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }

    // The container goes: its series go, the plugin-wide totals stay.
    drop(web);
    let snapshot = collector.snapshot();
    assert_eq!(snapshot.containers.len(), 1);
    assert_eq!(snapshot.plugin.journals_open, 1);
    assert_eq!(snapshot.plugin.lines.received, 15);
    assert_eq!(snapshot.plugin.lines.sent, 13);
    assert_eq!(
        snapshot.plugin.lines.dropped[DropReason::Rejected as usize],
        2
    );
    // Counting goes on where it happens; a scrape reset nothing.
    ContainerCounters::add(&job.counters.received, 1);
    assert_eq!(collector.snapshot().plugin.lines.received, 16);
    assert_eq!(collector.snapshot().containers[0].lines.received, 6);
}

#[test]
fn plugin_totals_never_go_down_while_a_journal_closes() {
    let settings = Settings {
        data_dir: None,
        docker_socket: None,
        ..Settings::default()
    };
    let driver = Driver::with_shipper(settings, no_loki());
    let journal = driver
        .store()
        .open("cccccccccccc", "c", journal_config(), Arc::default(), None)
        .unwrap();
    ContainerCounters::add(&journal.counters.received, 4);
    let collector = DriverCollector::new(driver.clone());
    assert_eq!(collector.snapshot().plugin.lines.received, 4);
    // As if the journal had closed and its counters were not yet retired.
    let counters = journal.counters.clone();
    drop(journal);
    assert_eq!(
        Snapshot::take(&driver, now_ns()).plugin.lines.received,
        0,
        "the moment a closing journal is in neither place"
    );
    assert_eq!(collector.snapshot().plugin.lines.received, 4);
    drop(counters);
    assert_eq!(Snapshot::take(&driver, now_ns()).plugin.lines.received, 4);
}

async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn fixed_registry() -> Registry {
    registry(FixedCollector(Snapshot {
        containers: vec![sample_container()],
        ..Snapshot::default()
    }))
}

#[tokio::test]
async fn the_server_answers_get_metrics_and_nothing_else() {
    let server = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        fixed_registry(),
        Limits::default(),
    )
    .await
    .unwrap();
    let addr = server.addr();
    let (status, content_type, body) = get(addr, "GET", "/metrics").await;
    assert_eq!((status, content_type.as_str()), (200, CONTENT_TYPE));
    assert!(
        body.contains("loki_logdriver_lines_received_total{"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));
    let (status, _, body) = get(addr, "HEAD", "/metrics").await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(get(addr, "GET", "/").await.0, 404);
    assert_eq!(get(addr, "GET", "/metrics/x").await.0, 404);
    assert_eq!(get(addr, "POST", "/metrics").await.0, 405);
    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped: nothing listens"
    );
}

/// Reads until the peer closes; true when it closed within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    matches!(
        tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await,
        Ok(())
    )
}

#[tokio::test]
async fn idle_and_excess_connections_cannot_hold_the_server() {
    let limits = Limits {
        connections: 2,
        header_timeout: Duration::from_millis(300),
        connection_timeout: Duration::from_secs(2),
    };
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), fixed_registry(), limits)
        .await
        .unwrap();
    let addr = server.addr();
    // A client that sends half a request and one that sends nothing take
    // both slots.
    let mut stalled = Vec::new();
    for partial in [&b"GET /metrics HTTP/1.1\r\n"[..], b""] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(partial).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third is closed at once, unread.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_millis(200)).await);
    // The stalled ones are cut at the header time limit...
    let started = std::time::Instant::now();
    for stream in &mut stalled {
        assert!(closed_within(stream, Duration::from_secs(3)).await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cut by the header time limit, not the connection's: {:?}",
        started.elapsed()
    );
    // ...and the server answers again.
    assert_eq!(get(addr, "GET", "/metrics").await.0, 200);

    // Headers larger than the read buffer are refused.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains(" 200 "), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_taken_address_is_an_error_not_a_panic() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = MetricsServer::start(
        taken.local_addr().unwrap(),
        fixed_registry(),
        Limits::default(),
    )
    .await;
    assert!(result.is_err());
}
