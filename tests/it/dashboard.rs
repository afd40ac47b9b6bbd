//! The dashboard end to end: luas in front of real backends under a small
//! load, the page driven in headless Chromium by `tests/dashboard/e2e.mjs`
//! (playwright-core), which watches the charts update, rolls the canary back
//! through the page's confirmation dialog and waits for the result; then the
//! admin API must show the canary at weight 0.
//!
//! Needs Node.js, Debian's Chromium (`/usr/bin/chromium`, or `$CHROMIUM`) and
//! `tests/dashboard/node_modules`; `scripts/test.sh` installs all three. A
//! missing one fails the test (it is never skipped silently).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use http::Method;
use tokio::task::JoinHandle;

/// How long the whole browser run may take.
const E2E_LIMIT: Duration = Duration::from_secs(120);
/// The background load never runs longer than this, stopped or not.
const LOAD_LIMIT: Duration = Duration::from_secs(150);

/// One browser at a time: the machine may have two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard")
}

/// Fails with what to run when a tool the test needs is missing.
fn require_tools() {
    let fix = "run `bash scripts/test.sh` once (it installs nodejs, chromium and \
               the test's npm packages), or by hand: apt-get install chromium \
               chromium-driver nodejs npm && npm ci --prefix tests/dashboard";
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(output) if output.status.success()),
        "the dashboard test needs Node.js (`node` on PATH): {fix}"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the dashboard test needs Chromium at {chromium}: {fix}"
    );
    let playwright = dashboard_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "the dashboard test needs {}: {fix}",
        playwright.display()
    );
}

/// A small load on the edge listener until stopped (or [`LOAD_LIMIT`]):
/// a few hundred requests a second at most, one at a time.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Load {
    fn start(proxy: &Running) -> Self {
        let address = edge(proxy);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let stop = stop.clone();
            let sent = sent.clone();
            async move {
                let client = client();
                let deadline = tokio::time::Instant::now() + LOAD_LIMIT;
                while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                    send(&client, address, "/", &[]).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
        });
        Self { stop, sent, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the load task does not panic");
        self.sent.load(Ordering::Relaxed)
    }
}

/// Runs e2e.mjs against the admin listener of `proxy`; panics with its
/// output unless it passes.
async fn run_e2e(proxy: &Running, token: Option<&str>) {
    let url = format!("http://{}", proxy.admin_address());
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dashboard_dir().join("e2e.mjs"))
        .arg(&url)
        .arg("web")
        .current_dir(dashboard_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match token {
        Some(token) => command.env("LUAS_E2E_TOKEN", token),
        None => command.env_remove("LUAS_E2E_TOKEN"),
    };
    let started = Instant::now();
    let child = command.spawn().expect("node starts");
    let output = tokio::time::timeout(E2E_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("e2e.mjs did not finish within {E2E_LIMIT:?} (Chromium hung?); it was killed")
        })
        .expect("e2e.mjs runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("e2e.mjs took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        output.status.success(),
        "e2e.mjs failed ({}) against {url}:\n{stdout}\n{stderr}",
        output.status
    );
}

async fn canary_weights(proxy: &Running) -> (u64, u64) {
    let (status, web) = api(proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(status, 200, "{web}");
    (weight_of(&web, "stable"), weight_of(&web, "canary"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and chromium: run bash scripts/test.sh"]
async fn the_page_shows_live_charts_and_rolls_the_canary_back() {
    require_tools();
    let _browser = BROWSER.lock().await;
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((90, 10), "", "").await;
    assert_eq!(canary_weights(&proxy).await, (90, 10));
    let load = Load::start(&proxy);

    run_e2e(&proxy, None).await;

    let sent = load.stop().await;
    assert!(sent > 0, "the load sent no request");
    assert_eq!(
        canary_weights(&proxy).await,
        (90, 0),
        "after the page's rollback the canary has weight 0 and stable keeps its 90"
    );
    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        web["replaced_by_rollback"],
        serde_json::json!({"stable": 90, "canary": 10}),
        "the rollback went through the API and remembers what it replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and chromium: run bash scripts/test.sh"]
async fn with_a_token_file_the_page_asks_for_the_token() {
    require_tools();
    let _browser = BROWSER.lock().await;
    let token = "dashboard-e2e-token-7f3a";
    let (
        Canary {
            stable: _stable,
            canary: _canary,
            proxy,
        },
        token_file,
    ) = canary_setup_with_token((80, 20), token).await;
    let load = Load::start(&proxy);

    run_e2e(&proxy, Some(token)).await;

    load.stop().await;
    assert_eq!(canary_weights(&proxy).await, (80, 0));
    let _ = std::fs::remove_file(&token_file);
}
