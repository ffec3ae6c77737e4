//! How the plugin reaches Loki: TLS with a custom CA, a server name, client
//! certificates or no verification, and through an HTTP CONNECT proxy.

mod support;

use std::time::Duration;

use support::connect_proxy::ConnectProxy;
use support::fake_daemon::{Fifo, Plugin, line, start_request};
use support::fake_loki::FakeLoki;
use support::tls::TestPki;

/// Starts logging with `opts`, writes one line, stops; returns the plugin.
async fn ship_one_line(opts: &[(&str, &str)]) -> (Plugin, Fifo) {
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    let answer = plugin.start_logging(&start_request(&fifo.path, opts)).await;
    assert_eq!(answer, serde_json::json!({}), "{opts:?}");
    fifo.write_entry(&line("stdout", "over the wire"));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    (plugin, fifo)
}

/// Waits for the line to reach Loki; on failure shows the plugin's log.
async fn delivered(loki: &FakeLoki, plugin: &Plugin) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while loki.entry_count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached Loki; plugin log:\n{}",
            plugin.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(loki.entries_matching(&[])[0].text(), "over the wire");
}

fn quick_retries<'a>(mut opts: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    opts.extend([
        ("loki-min-backoff", "50ms"),
        ("loki-max-backoff", "100ms"),
        ("loki-retries", "2"),
    ]);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_custom_ca_and_server_name() {
    let pki = TestPki::new("loki.test");
    let loki = FakeLoki::start_tls(pki.server_config(false)).await;
    let url = loki.url();
    let ca = pki.ca_file.to_str().unwrap();
    let (plugin, _fifo) = ship_one_line(&[
        ("loki-url", &url),
        ("loki-tls-ca-file", ca),
        ("loki-tls-server-name", "loki.test"),
    ])
    .await;
    delivered(&loki, &plugin).await;
    assert_eq!(loki.entries_matching(&[])[0].text(), "over the wire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let pki = TestPki::new("loki.test");
    let loki = FakeLoki::start_tls(pki.server_config(false)).await;
    let url = loki.url();
    let ca = pki.ca_file.to_str().unwrap();
    // The certificate names loki.test, the URL says 127.0.0.1.
    let (plugin, _fifo) = ship_one_line(&quick_retries(vec![
        ("loki-url", &url),
        ("loki-tls-ca-file", ca),
    ]))
    .await;
    // Refused certificates make Loki unreachable: the lines wait in the
    // journal (nothing is dropped) and the reason is logged.
    let log = plugin
        .wait_for_log("Loki is unreachable", Duration::from_secs(10))
        .await;
    assert!(
        log.contains("certificate"),
        "the TLS failure is explained:\n{log}"
    );
    assert_eq!(loki.entry_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_is_refused_unless_verification_is_skipped() {
    let pki = TestPki::new("loki.test");
    let loki = FakeLoki::start_tls(pki.server_config(false)).await;
    let url = loki.url();
    let (plugin, _fifo) = ship_one_line(&quick_retries(vec![("loki-url", &url)])).await;
    plugin
        .wait_for_log("Loki is unreachable", Duration::from_secs(10))
        .await;
    assert_eq!(
        loki.entry_count(),
        0,
        "a certificate from an unknown CA is not trusted"
    );

    let (plugin, _fifo) = ship_one_line(&[
        ("loki-url", &url),
        ("loki-tls-insecure-skip-verify", "true"),
    ])
    .await;
    delivered(&loki, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    let pki = TestPki::new("loki.test");
    let loki = FakeLoki::start_tls(pki.server_config(true)).await;
    let url = loki.url();
    let (ca, cert, key) = (
        pki.ca_file.to_str().unwrap(),
        pki.client_cert_file.to_str().unwrap(),
        pki.client_key_file.to_str().unwrap(),
    );
    let opts = [
        ("loki-url", url.as_str()),
        ("loki-tls-ca-file", ca),
        ("loki-tls-server-name", "loki.test"),
        ("loki-tls-cert-file", cert),
        ("loki-tls-key-file", key),
    ];
    let (plugin, _fifo) = ship_one_line(&opts).await;
    delivered(&loki, &plugin).await;
    assert!(loki.requests()[0].client_certificate);
}

#[tokio::test]
async fn unreadable_tls_files_fail_the_start_with_their_path() {
    let plugin = Plugin::start(&[]);
    let fifo = Fifo::create();
    let opts = [
        ("loki-url", "https://loki:3100/loki/api/v1/push"),
        ("loki-tls-ca-file", "/nonexistent/ca.pem"),
    ];
    let answer = plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    let err = answer["Err"].as_str().unwrap();
    assert!(
        err.contains("loki-tls-ca-file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_go_through_a_connect_proxy_with_its_credentials() {
    let loki = FakeLoki::start().await;
    let proxy = ConnectProxy::start().await;
    let url = loki.url();
    let proxy_url = format!("http://proxyuser:Pr0xyPa55@{}", proxy.addr);
    let (plugin, _fifo) =
        ship_one_line(&[("loki-url", &url), ("loki-proxy-url", &proxy_url)]).await;
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    let tunnels = proxy.tunnels();
    assert_eq!(tunnels.len(), 1, "{tunnels:?}");
    assert_eq!(tunnels[0].target, loki.addr().to_string());
    assert_eq!(
        tunnels[0].authorization.as_deref(),
        Some("Basic cHJveHl1c2VyOlByMHh5UGE1NQ==")
    );
    assert!(
        !plugin.log().contains("Pr0xyPa55"),
        "proxy password leaked:\n{}",
        plugin.log()
    );
}
