//! Credentials beyond the URL, plugin-wide log-opt defaults (`LOG_OPTS`)
//! and least privilege, through the plugin binary between a fake daemon and
//! a fake Loki: what reaches Loki, and that no credential shows anywhere a
//! user or another program could read it (the plugin's log, StartLogging
//! errors, the records and journals on disk).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use support::fake_daemon::{Fifo, Plugin, line, numbered, start_request, summary_field};
use support::fake_loki::FakeLoki;

const PASSWORD: &str = "Pa55-from-FILE-q7";
const INLINE_PASSWORD: &str = "Pa55-in-LOG-OPTS-k2";
const TOKEN_1: &str = "t0ken-ONE-x1";
const TOKEN_2: &str = "t0ken-TWO-x2";
const HEADER_KEY: &str = "api-KEY-z9";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Every form a credential of these tests could take in a file or a log.
fn secret_forms() -> Vec<String> {
    let mut forms: Vec<String> = [PASSWORD, INLINE_PASSWORD, TOKEN_1, TOKEN_2, HEADER_KEY]
        .iter()
        .map(|s| s.to_string())
        .collect();
    forms.push(basic("alice", PASSWORD)["Basic ".len()..].to_string());
    forms.push(basic("alice", INLINE_PASSWORD)["Basic ".len()..].to_string());
    forms
}

/// A secrets directory as the `secrets` mount shows it, with `files`.
fn secrets_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write_secret(dir.path(), name, text);
    }
    dir
}

/// Writes a secret as rotation tools do: a new file renamed over the old.
fn write_secret(dir: &Path, name: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let next = dir.join(format!(".{name}.new"));
    std::fs::write(&next, text).unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&next, dir.join(name)).unwrap();
}

fn header(loki: &FakeLoki, request: usize, name: &str) -> Option<String> {
    loki.requests()[request]
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// Every file under `dir`, recursively, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.insert(path, bytes);
        }
    }
    found
}

fn assert_no_secret_in(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for secret in secret_forms() {
        assert!(!text.contains(&secret), "{what} shows {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_a_file_and_extra_headers_reach_loki() {
    let secrets = secrets_dir(&[("password", &format!("{PASSWORD}\n"))]);
    let loki = FakeLoki::start().await;
    loki.require_authorization(Some(&basic("alice", PASSWORD)));
    let plugin = Plugin::start(&[("SECRETS_DIR", secrets.path().to_str().unwrap())]);
    let mut fifo = Fifo::create();
    let password_file = secrets.path().join("password");
    let headers = format!("X-Team=core,X-Api-Key={HEADER_KEY}");
    let opts = [
        ("loki-url", loki.url()),
        ("loki-username", "alice".into()),
        ("loki-password-file", password_file.to_string_lossy().into()),
        ("loki-headers", headers),
        ("loki-tenant-id", "team-{{.Name}}".into()),
    ];
    let answer = plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    assert_eq!(answer, serde_json::json!({}));
    fifo.write_entry(&line("stdout", "authenticated"));
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    assert_eq!(header(&loki, 0, "x-team").as_deref(), Some("core"));
    assert_eq!(header(&loki, 0, "x-api-key").as_deref(), Some(HEADER_KEY));
    assert_eq!(
        header(&loki, 0, "x-scope-orgid").as_deref(),
        Some("team-fixture-app"),
        "the tenant template is rendered for the container"
    );
    assert_eq!(loki.requests()[0].status, 204);
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(5))
        .await;
    assert_no_secret_in("the plugin log", log.as_bytes());
}

/// A token file replaced while the plugin runs: the push Loki refuses with
/// 401 is sent again with the new token at once, and no line is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_bearer_token_is_picked_up_without_losing_a_line() {
    let secrets = secrets_dir(&[("token", TOKEN_1)]);
    let loki = FakeLoki::start().await;
    loki.require_authorization(Some(&format!("Bearer {TOKEN_1}")));
    let plugin = Plugin::start(&[("SECRETS_DIR", secrets.path().to_str().unwrap())]);
    let mut fifo = Fifo::create();
    let token_file = secrets.path().join("token");
    let opts = [
        ("loki-url", loki.url()),
        (
            "loki-bearer-token-file",
            token_file.to_string_lossy().into(),
        ),
        ("loki-batch-wait", "50ms".into()),
    ];
    plugin
        .start_logging(&start_request(&fifo.path, &opts))
        .await;
    fifo.write_entry(&line("stdout", &numbered(0, 20)));
    loki.wait_for_entries(1, Duration::from_secs(10)).await;

    write_secret(secrets.path(), "token", &format!("{TOKEN_2}\n"));
    loki.require_authorization(Some(&format!("Bearer {TOKEN_2}")));
    for n in 1..6 {
        fifo.write_entry(&line("stdout", &numbered(n, 20)));
    }
    loki.wait_for_entries(6, Duration::from_secs(10)).await;
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    let log = plugin
        .wait_for_log("logging finished", Duration::from_secs(5))
        .await;
    let statuses: Vec<u16> = loki.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [204, 401, 204], "one refusal, then the new token");
    assert_eq!(summary_field(&log, "fixture-app", "sent"), Some(6), "{log}");
    assert_eq!(
        summary_field(&log, "fixture-app", "dropped_rejected"),
        Some(0)
    );
    assert!(
        log.contains("TLS or credential files changed: using the new ones"),
        "{log}"
    );
    assert_no_secret_in("the plugin log", log.as_bytes());
}

/// Credentials set in LOG_OPTS, in files, and given wrongly: none shows in
/// the plugin's log (at debug level), in an error, or in the attachment
/// records and journals on disk. (What a container sets in its own log-opts
/// is in its StartLogging request, and so in its record: Docker shows it in
/// `docker inspect` anyway. Nothing else is written.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_show_in_no_log_error_or_record() {
    let secrets = secrets_dir(&[("password", PASSWORD), ("token", TOKEN_1)]);
    let loki = FakeLoki::start().await;
    let defaults = serde_json::json!({
        "loki-url": loki.url(),
        "loki-username": "alice",
        "loki-password": INLINE_PASSWORD,
        "loki-headers": format!("X-Api-Key={HEADER_KEY}"),
    })
    .to_string();
    let mut plugin = Plugin::start(&[
        ("SECRETS_DIR", secrets.path().to_str().unwrap()),
        ("LOG_OPTS", &defaults),
    ]);
    // With the defaults' credentials.
    let mut first = Fifo::create();
    let answer = plugin
        .start_logging(&start_request::<&str>(&first.path, &[]))
        .await;
    assert_eq!(answer, serde_json::json!({}));
    // Its own credentials, from a file, to another Loki: the defaults'
    // credentials do not follow it there.
    let other = FakeLoki::start().await;
    let mut second = Fifo::create();
    let mut request = start_request(
        &second.path,
        &[
            ("loki-url", other.url()),
            (
                "loki-bearer-token-file",
                secrets.path().join("token").to_string_lossy().into(),
            ),
        ],
    );
    request["Info"]["ContainerName"] = "/second".into();
    request["Info"]["ContainerID"] = "5ec0nd0c0ntainer0id".into();
    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    first.write_entry(&line("stdout", "with defaults"));
    second.write_entry(&line("stdout", "with its own"));
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    other.wait_for_entries(1, Duration::from_secs(10)).await;
    assert_eq!(
        header(&loki, 0, "authorization"),
        Some(basic("alice", INLINE_PASSWORD))
    );
    assert_eq!(header(&loki, 0, "x-api-key").as_deref(), Some(HEADER_KEY));
    assert_eq!(
        header(&other, 0, "authorization"),
        Some(format!("Bearer {TOKEN_1}"))
    );
    assert_eq!(header(&other, 0, "x-api-key"), None);

    // Mistakes: each refused with a message that names the option only.
    let bad = Fifo::create();
    let nope = secrets.path().join("nope").to_string_lossy().into_owned();
    let cases: Vec<Vec<(&str, String)>> = vec![
        // Another credential over the defaults' (same URL): a conflict.
        vec![("loki-bearer-token", TOKEN_2.into())],
        vec![("loki-url", other.url()), ("loki-bearer-token-file", nope)],
        vec![
            ("loki-url", other.url()),
            ("loki-bearer-token-file", "/etc/shadow".into()),
        ],
        vec![
            ("loki-url", other.url()),
            ("loki-headers", format!("Authorization=Bearer {TOKEN_2}")),
        ],
        vec![
            ("loki-url", other.url()),
            ("loki-password", PASSWORD.into()),
        ],
        vec![
            ("loki-url", other.url()),
            ("loki-username", "alice".into()),
            ("loki-password", PASSWORD.into()),
            ("loki-bearer-token", TOKEN_2.into()),
        ],
    ];
    for opts in cases {
        let answer = plugin.start_logging(&start_request(&bad.path, &opts)).await;
        let err = answer["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("{opts:?} accepted"));
        assert_no_secret_in(&format!("the error for {opts:?}"), err.as_bytes());
    }
    // The attachment records and journals, while the containers run.
    let running = files_under(&plugin.data_dir);
    let records = running
        .keys()
        .filter(|p| p.to_string_lossy().contains("/attached/"))
        .count();
    let metas = running
        .keys()
        .filter(|p| p.ends_with("container.json"))
        .count();
    assert_eq!((records, metas), (2, 2), "{:?}", running.keys());
    for fifo in [&mut first, &mut second] {
        plugin.stop_logging(&fifo.path).await;
        fifo.close();
    }
    plugin
        .wait_for_log("container=second", Duration::from_secs(10))
        .await;
    tokio::task::block_in_place(|| plugin.terminate());
    assert_no_secret_in("the plugin log", plugin.log().as_bytes());
    let stopped = files_under(&plugin.data_dir);
    for (path, bytes) in running.iter().chain(&stopped) {
        assert_no_secret_in(&path.display().to_string(), bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_opt_defaults_apply_and_each_container_overrides_them() {
    let loki = FakeLoki::start().await;
    let other = FakeLoki::start().await;
    let defaults = serde_json::json!({
        "loki-url": loki.url(),
        "loki-tenant-id": "team-a",
        "loki-external-labels": "env=prod",
        "loki-batch-wait": "50ms",
    })
    .to_string();
    let mut plugin = Plugin::start(&[("LOG_OPTS", &defaults)]);
    let mut plain = Fifo::create();
    plugin
        .start_logging(&start_request::<&str>(&plain.path, &[]))
        .await;
    let mut own = Fifo::create();
    let mut request = start_request(
        &own.path,
        &[
            ("loki-url", other.url()),
            ("loki-tenant-id", "team-b".into()),
            ("loki-external-labels", "env=dev".into()),
        ],
    );
    request["Info"]["ContainerName"] = "/own".into();
    request["Info"]["ContainerID"] = "0wn0c0ntainer0id".into();
    assert_eq!(plugin.start_logging(&request).await, serde_json::json!({}));
    plain.write_entry(&line("stdout", "defaults"));
    own.write_entry(&line("stdout", "overridden"));
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    other.wait_for_entries(1, Duration::from_secs(10)).await;
    assert_eq!(header(&loki, 0, "x-scope-orgid").as_deref(), Some("team-a"));
    assert_eq!(
        header(&other, 0, "x-scope-orgid").as_deref(),
        Some("team-b")
    );
    assert_eq!(loki.entries_matching(&[("env", "prod")]).len(), 1);
    assert_eq!(other.entries_matching(&[("env", "dev")]).len(), 1);

    // After a crash the record (the container's own log-opts, without
    // loki-url) is re-attached with the defaults again.
    plugin.kill();
    plain.write_entry(&line("stdout", "while the plugin was away"));
    let next = plugin.restart_from(&[("LOG_OPTS", &defaults)]);
    next.wait_for_log("resumed=true", Duration::from_secs(5))
        .await;
    plain.write_entry(&line("stdout", "after the restart"));
    loki.wait_for_entries(3, Duration::from_secs(10)).await;
    let texts: Vec<String> = loki
        .entries_matching(&[("env", "prod")])
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(
        texts,
        ["defaults", "while the plugin was away", "after the restart"]
    );
    for fifo in [&mut plain, &mut own] {
        next.stop_logging(&fifo.path).await;
        fifo.close();
    }

    // Without defaults, loki-url is required, and the error says how to
    // set it once for all containers.
    let bare = Plugin::start(&[]);
    let fifo = Fifo::create();
    let answer = bare
        .start_logging(&start_request::<&str>(&fifo.path, &[]))
        .await;
    let err = answer["Err"].as_str().unwrap();
    assert!(
        err.contains("'loki-url' is required") && err.contains("LOG_OPTS"),
        "{err}"
    );
}

#[test]
fn a_bad_log_opts_setting_stops_the_plugin_with_a_message_and_no_secret() {
    for (value, reason) in [
        ("{not json", "not a JSON object"),
        (r#"{"mode":"non-blocking"}"#, "Docker's own"),
        (
            &*format!(r#"{{"loki-password":"{INLINE_PASSWORD}","loki-username":"a"}}"#),
            "loki-url is not",
        ),
        (r#"{"loki-batch-wait":"1y"}"#, "loki-batch-wait"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_loki-logdriver"))
            .args(["--socket", "/nonexistent/loki.sock"])
            .env("LOG_OPTS", value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("LOG_OPTS") && stderr.contains(reason),
            "{value}: {stderr}"
        );
        assert_no_secret_in("the start-up error", stderr.as_bytes());
    }
}

/// Docker gives a plugin 14 capabilities (CAP_DAC_OVERRIDE, CAP_SETUID, ...);
/// the plugin drops them all at start, in every thread, and still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_plugin_has_no_capabilities_and_still_works() {
    let loki = FakeLoki::start().await;
    let plugin = Plugin::start(&[]);
    let mut fifo = Fifo::create();
    plugin
        .start_logging(&start_request(&fifo.path, &[("loki-url", loki.url())]))
        .await;
    fifo.write_entry(&line("stdout", "without capabilities"));
    loki.wait_for_entries(1, Duration::from_secs(10)).await;
    let log = plugin
        .wait_for_log("dropped all capabilities", Duration::from_secs(5))
        .await;
    assert!(log.contains("no_new_privs"), "{log}");
    let tasks: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/task", plugin.pid()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(tasks.len() > 1, "the runtime's threads are there too");
    for task in tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {status}"))
                .trim()
                .to_string()
        };
        for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
            assert_eq!(field(set), "0000000000000000", "{task:?} {set}");
        }
        assert_eq!(field("NoNewPrivs:"), "1", "{task:?}");
    }
    // Its journal and records (root's files) are still written and read.
    plugin.stop_logging(&fifo.path).await;
    fifo.close();
    plugin
        .wait_for_log("logging finished", Duration::from_secs(5))
        .await;
    let entries = plugin
        .read_all_logs(
            &start_request(&fifo.path, &[("loki-url", loki.url())]),
            serde_json::json!({"Tail": -1, "Follow": false}),
        )
        .await;
    assert_eq!(entries.len(), 1);
}

/// The privileges `docker plugin install` asks for, computed from
/// config.json as moby's `computePrivileges`
/// (`daemon/pkg/plugin/backend_linux.go`) does: host network, and two
/// mounts that give nothing by default; no Docker API socket, no device,
/// no capability.
#[test]
fn the_default_config_json_asks_for_no_docker_api_and_no_capability() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.json")).unwrap(),
    )
    .unwrap();
    // Docker matches the fields case-insensitively.
    let field = |value: &serde_json::Value, name: &str| -> serde_json::Value {
        value
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
            .unwrap_or(serde_json::Value::Null)
    };
    let mut privileges: Vec<(String, Vec<String>)> = Vec::new();
    let network = field(&field(&manifest, "network"), "type");
    if let Some(kind) = network
        .as_str()
        .filter(|t| !["", "null", "bridge"].contains(t))
    {
        privileges.push(("network".into(), vec![kind.into()]));
    }
    for (flag, name) in [
        ("ipchost", "host ipc namespace"),
        ("pidhost", "host pid namespace"),
    ] {
        if field(&manifest, flag) == serde_json::Value::Bool(true) {
            privileges.push((name.into(), vec!["true".into()]));
        }
    }
    let mounts = field(&manifest, "mounts");
    for mount in mounts.as_array().into_iter().flatten() {
        if let Some(source) = field(mount, "source").as_str() {
            privileges.push(("mount".into(), vec![source.into()]));
        }
    }
    let linux = field(&manifest, "linux");
    for device in field(&linux, "devices").as_array().into_iter().flatten() {
        if let Some(path) = field(device, "path").as_str() {
            privileges.push(("device".into(), vec![path.into()]));
        }
    }
    if field(&linux, "allowalldevices") == serde_json::Value::Bool(true) {
        privileges.push(("allow-all-devices".into(), vec!["true".into()]));
    }
    let capabilities: Vec<String> = field(&linux, "capabilities")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if !capabilities.is_empty() {
        privileges.push(("capabilities".into(), capabilities));
    }
    let expected: Vec<(String, Vec<String>)> = vec![
        ("network".into(), vec!["host".into()]),
        ("mount".into(), vec!["/proc/sys/kernel/random".into()]),
        ("mount".into(), vec!["/dev/null".into()]),
    ];
    assert_eq!(privileges, expected);

    // Both mounts are read-only, their source settable; the Docker API is
    // off unless DOCKER_SOCKET is set too.
    for mount in mounts.as_array().unwrap() {
        let options = field(mount, "options");
        assert!(
            options.as_array().unwrap().iter().any(|o| o == "ro"),
            "{mount}"
        );
        assert_eq!(
            field(mount, "settable"),
            serde_json::json!(["source"]),
            "{mount}"
        );
    }
    let env = field(&manifest, "env");
    let setting = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| field(e, "name") == name)
            .map(|e| (field(e, "value"), field(e, "settable")))
            .unwrap_or_else(|| panic!("{name} is not in config.json"))
    };
    for name in ["DOCKER_SOCKET", "LOG_OPTS"] {
        assert_eq!(
            setting(name),
            (serde_json::json!(""), serde_json::json!(["value"])),
            "{name}"
        );
    }
    assert_eq!(
        setting("LOCAL_STORE_MAX_AGE").1,
        serde_json::json!(["value"])
    );
}
