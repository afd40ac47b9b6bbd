//! The binary: `luas validate` reports every error with its key path (and
//! line and column for syntax errors) and exits 64; `luas run` serves a
//! config and exits 0 after draining on SIGTERM.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

const LUAS: &str = env!("CARGO_BIN_EXE_luas");

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = scratch(&format!("cli-{name}")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn validate(name: &str, text: &str) -> Output {
    let path = write_config(name, text);
    Command::new(LUAS)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap()
}

const GOOD: &str = r#"
listeners:
  - name: edge
    listen: 127.0.0.1:8080
    routes:
      - name: all
        service: web
services:
  - name: web
    endpoints: [127.0.0.1:9001]
"#;

#[test]
fn validate_accepts_the_example_configs() {
    let output = validate("good.yaml", GOOD);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yaml");
    let output = Command::new(LUAS)
        .args(["validate", example])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid"));
}

#[test]
fn validate_reports_a_typo_in_a_key_with_its_line() {
    let output = validate(
        "typo.yaml",
        &GOOD.replace("        service: web", "        sevice: web"),
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `sevice`"), "{stderr}");
    assert!(stderr.contains("line 7"), "{stderr}");
    assert!(stderr.contains("listeners[0].routes[0]"), "{stderr}");
}

#[test]
fn validate_reports_an_unknown_service_with_its_key_path() {
    let output = validate(
        "unknown.yaml",
        &GOOD.replace("        service: web", "        service: webb"),
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listeners[0].routes[0].service"),
        "{stderr}"
    );
    assert!(stderr.contains("webb"), "{stderr}");
}

#[test]
fn validate_reports_bad_yaml_with_line_and_column() {
    let output = validate(
        "bad.yaml",
        "listeners:\n  - name: edge\n    listen: [127.0.0.1:8080\n",
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line"), "{stderr}");
    assert!(stderr.contains("column"), "{stderr}");
}

/// `luas run` on a config that must be refused: its exit code and stderr.
fn run_refused(name: &str, text: &str) -> (Option<i32>, String) {
    let path = write_config(name, text);
    let output = Command::new(LUAS)
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn run_refuses_a_bad_config_with_exit_64() {
    let (code, stderr) = run_refused("run-bad.yaml", &GOOD.replace("9001", "99999"));
    assert_eq!(code, Some(64));
    assert!(stderr.contains("services[0].endpoints[0]"), "{stderr}");
}

#[test]
fn run_refuses_a_public_admin_address_without_a_token() {
    // Port 0 on every interface: refused before anything is bound.
    let (code, stderr) = run_refused(
        "run-public-admin.yaml",
        &format!("admin: {{ listen: \"0.0.0.0:0\" }}\n{GOOD}"),
    );
    assert_eq!(code, Some(64));
    assert!(stderr.contains("admin.listen"), "{stderr}");
    assert!(stderr.contains("admin.token_file"), "{stderr}");
}

/// `luas run` as a child process on free loopback ports, serving `GOOD`
/// (after `edit`) in front of `backend`, with `top` prepended; returns once
/// its admin answers ready.
async fn run_binary(
    name: &str,
    backend: &Backend,
    top: &str,
    edit: impl Fn(String) -> String,
    stdout: Stdio,
) -> (tokio::process::Child, std::net::SocketAddr) {
    // Ports from the kernel, released just before luas binds them.
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (listen, admin) = (free_port(), free_port());
    let config = edit(
        GOOD.replace("127.0.0.1:8080", &listen.to_string())
            .replace("127.0.0.1:9001", &backend.address.to_string()),
    );
    let path = write_config(
        name,
        &format!("admin: {{ listen: \"{admin}\" }}\n{top}\n{config}"),
    );
    let child = tokio::process::Command::new(LUAS)
        .arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--worker-threads")
        .arg("1")
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(20), || async {
        match tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(admin),
        )
        .await
        {
            Ok(Ok(_)) => get(admin, "/ready", &[]).await.status == 200,
            _ => false,
        }
    })
    .await;
    assert!(ready, "luas run never became ready");
    (child, listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_and_exits_zero_on_sigterm() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let (mut child, listen) =
        run_binary("run.yaml", &backend, "", |config| config, Stdio::null()).await;
    let answer = get(listen, "/", &[]).await;
    assert_eq!(answer.body, "b\n");

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("luas exits within 15 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_writes_one_json_line_per_request_to_stdout() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let with_echo_route = |config: String| {
        config.replace(
            "      - name: all\n",
            "      - name: api\n        match: { path_prefix: /echo }\n        service: web\n      - name: all\n",
        )
    };
    let (mut child, listen) = run_binary(
        "access-log.yaml",
        &backend,
        "access_log: { enabled: true }",
        with_echo_route,
        Stdio::piped(),
    )
    .await;

    let request = http::Request::post(format!("http://{listen}/echo?x=1"))
        .header("host", "shop.example.com")
        .header("x-request-id", "req-42")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"hello",
        )))
        .unwrap();
    let answer = Answer::from(client().request(request).await.unwrap()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "hello")
    );

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a log line within 10 s")
        .unwrap()
        .expect("stdout open");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["method"], "POST", "{line}");
    assert_eq!(entry["authority"], "shop.example.com");
    assert_eq!(entry["path"], "/echo?x=1");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["bytes_in"], 5);
    assert_eq!(entry["bytes_out"], 5);
    assert_eq!(entry["listener"], "edge");
    assert_eq!(entry["route"], "api");
    assert_eq!(entry["service"], "web");
    assert_eq!(entry["group"], "stable");
    assert_eq!(entry["endpoint"], backend.address.to_string());
    assert_eq!(entry["retries"], 0);
    assert_eq!(entry["request_id"], "req-42");
    assert_eq!(entry["protocol"], "HTTP/1.1");
    assert!(entry["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(entry["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));

    // A gRPC status in the trailers is logged as `grpc_status`; other
    // lines have none.
    assert!(entry.get("grpc_status").is_none(), "{line}");
    let request = http::Request::post(format!("http://{listen}/trailers?status=14"))
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = Answer::from(client().request(request).await.unwrap()).await;
    assert_eq!(answer.status, 200);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a log line for the gRPC call within 10 s")
        .unwrap()
        .expect("stdout open");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["path"], "/trailers?status=14", "{line}");
    assert_eq!(entry["grpc_status"], 14, "{line}");

    // A client that gives up before the response headers: logged as 499.
    backend.set_latency(Duration::from_secs(5));
    let request = http::Request::get(format!("http://{listen}/slow"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(200), client().request(request)).await;
    assert!(
        gave_up.is_err(),
        "the backend answered before the client gave up"
    );
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a log line for the abandoned request within 10 s")
        .unwrap()
        .expect("stdout open");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["path"], "/slow", "{line}");
    assert_eq!(entry["status"], 499, "{line}");
    assert_eq!(entry["bytes_out"], 0);
    assert_eq!(entry["route"], "all");
    assert_eq!(entry["endpoint"], backend.address.to_string());

    // A HEAD (a body that is never polled) is logged once, with no bytes.
    backend.set_latency(Duration::ZERO);
    let request = http::Request::head(format!("http://{listen}/"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = Answer::from(client().request(request).await.unwrap()).await;
    assert_eq!(answer.status, 200);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a log line for the HEAD within 10 s")
        .unwrap()
        .expect("stdout open");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (entry["method"].as_str(), entry["status"].as_u64()),
        (Some("HEAD"), Some(200)),
        "{line}"
    );
    assert_eq!(entry["bytes_out"], 0);
    // Exactly one line per request: nothing else is waiting.
    let extra = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await;
    assert!(extra.is_err(), "an extra log line: {extra:?}");
}
