//! `--log-format`: the process log as JSON lines for log collectors, and a
//! clear refusal of a format luas does not know.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const LUAS: &str = env!("CARGO_BIN_EXE_luas");

#[tokio::test]
async fn demo_with_log_format_json_logs_json_lines() {
    let mut child = tokio::process::Command::new(LUAS)
        .args(["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--traffic", "0", "--worker-threads", "1"])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Every line is JSON; the one we wait for is the listener's "listening".
    let listening = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
            assert!(entry["level"].is_string(), "no level: {line}");
            assert!(entry["message"].is_string(), "no message: {line}");
            if entry["message"] == "listening" {
                return entry;
            }
        }
        panic!("stderr closed before the listener logged");
    })
    .await
    .expect("a `listening` log line within 20 s");
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert_eq!(listening["listener"], "demo", "{listening}");
    assert!(listening["timestamp"].is_string(), "{listening}");
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    let output = std::process::Command::new(LUAS)
        .args([
            "run",
            "--config",
            "/nonexistent.yaml",
            "--log-format",
            "xml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'xml'"), "{stderr}");
    assert!(stderr.contains("--log-format"), "{stderr}");
    assert!(
        stderr.contains("text") && stderr.contains("json"),
        "{stderr}"
    );
}
