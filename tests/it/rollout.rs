//! Automated rollouts judged from luas's own metrics: a healthy canary is
//! promoted through every step; a canary that starts failing is rolled back
//! mid-step, and stays rolled back after a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use http::{Method, StatusCode};
use tokio::task::JoinHandle;

/// Four clients sending requests back to back until `stop`, at most 60 s.
fn load(edge: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = client();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    send(&client, edge, "/", &[]).await;
                }
            })
        })
        .collect()
}

async fn rollout_of(proxy: &Running) -> serde_json::Value {
    api(proxy, Method::GET, "/api/v1/services/web", "").await.1["rollout"].clone()
}

pub(crate) const ROLLOUT: &str = "    rollout:
      group: canary
      steps: [10, 50, 100]
      interval: 400ms
      tick: 50ms
      min_requests: 20
      max_error_rate: 5%
      max_p99_ratio: 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_is_promoted_through_every_step() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((100, 0), ROLLOUT, "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(edge(&proxy), stop.clone());

    // Poll every 10 ms for at most 30 s, noting each step as it shows up.
    let mut steps_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut completed = false;
    while !completed && Instant::now() < deadline {
        let rollout = rollout_of(&proxy).await;
        if let Some(step) = rollout["step"].as_u64() {
            if steps_seen.last() != Some(&step) {
                steps_seen.push(step);
            }
        }
        completed = rollout["status"] == "completed";
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(
        completed,
        "rollout did not complete: {}",
        rollout_of(&proxy).await
    );
    assert_eq!(steps_seen, [1, 2, 3], "every step in order");

    let (_, web) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        (weight_of(&web, "stable"), weight_of(&web, "canary")),
        (0, 100)
    );
    let metrics = metrics_text(&proxy).await;
    let decisions = |decision: &str| {
        sample(
            &metrics,
            &format!(r#"luas_rollout_decisions_total{{decision="{decision}",service="web"}}"#),
        )
    };
    assert_eq!(decisions("promote"), Some(2.0), "{metrics}");
    assert_eq!(decisions("complete"), Some(1.0));
    assert_eq!(decisions("rollback"), None);
    assert_eq!(
        sample(&metrics, r#"luas_rollout_step{service="web"}"#),
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_canary_is_rolled_back_mid_step_and_stays_rolled_back() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let state = scratch("rollout").join("state.json");
    let yaml = canary_yaml(
        &[stable.address],
        &[canary.address],
        (100, 0),
        // A long interval: the rollback must not wait for the step to end.
        &ROLLOUT
            .replace("interval: 400ms", "interval: 3s")
            .replace("[10, 50, 100]", "[50, 100]"),
        &format!("state_file: \"{}\"", state.display()),
    );
    let proxy = start_proxy(&yaml).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(edge(&proxy), stop.clone());

    // Let the canary serve healthily at the first step, then break it.
    assert!(
        eventually(Duration::from_secs(10), || async {
            canary.requests() >= 50
        })
        .await
    );
    assert_eq!(rollout_of(&proxy).await["step"], 1);
    let broken_at = Instant::now();
    canary.set_status(StatusCode::SERVICE_UNAVAILABLE);
    let rolled_back = eventually(Duration::from_secs(10), || async {
        rollout_of(&proxy).await["status"] == "rolled_back"
    })
    .await;
    let reaction = broken_at.elapsed();
    assert!(rolled_back, "no rollback: {}", rollout_of(&proxy).await);
    eprintln!("failing canary rolled back {reaction:?} after it broke (tick 50 ms)");
    assert!(
        reaction < Duration::from_secs(2),
        "took {reaction:?}; the step is 3 s long"
    );

    let canary_after = canary.requests();
    let stable_after = stable.requests();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stable.requests() > stable_after + 200
        })
        .await
    );
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    // In-flight requests may land just after the swap; nothing more does.
    assert!(
        canary.requests() <= canary_after + 4,
        "canary kept getting traffic"
    );
    let rollout = rollout_of(&proxy).await;
    assert!(
        rollout["reason"].as_str().unwrap().contains("error rate"),
        "{rollout}"
    );
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_rollout_decisions_total{decision="rollback",service="web"}"#
        ),
        Some(1.0)
    );
    assert!(proxy.shutdown().await);

    // A restart keeps the rollback and does not start the rollout again.
    canary.set_status(StatusCode::OK);
    let restarted = start_proxy(&yaml).await;
    let (_, web) = api(&restarted, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&web, "canary"), 0, "{web}");
    let before = canary.requests();
    for _ in 0..50 {
        assert_eq!(get(edge(&restarted), "/", &[]).await.body, "stable\n");
    }
    assert_eq!(canary.requests(), before);
    assert_eq!(rollout_of(&restarted).await["status"], "rolled_back");

    // With the canary fixed, the rollout is run again from its first step.
    let (status, _) = api(
        &restarted,
        Method::POST,
        "/api/v1/services/web/rollout/restart",
        "",
    )
    .await;
    assert_eq!(status, 200);
    let again = eventually(Duration::from_secs(10), || async {
        let rollout = rollout_of(&restarted).await;
        rollout["status"] == "progressing" && rollout["step"] == 1
    })
    .await;
    assert!(again, "not restarted: {}", rollout_of(&restarted).await);
    let (_, web) = api(&restarted, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(
        weight_of(&web, "canary"),
        50,
        "the first step's weight: {web}"
    );
    let reached = eventually(Duration::from_secs(10), || async {
        get(edge(&restarted), "/", &[]).await;
        canary.requests() > before
    })
    .await;
    assert!(reached, "the canary never got traffic again");

    // A service without a rollout has nothing to restart.
    let plain = start_proxy(&one_service_yaml(&[stable.address], "")).await;
    let (status, answer) = api(
        &plain,
        Method::POST,
        "/api/v1/services/web/rollout/restart",
        "",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("no `rollout`"),
        "{answer}"
    );
}

/// A gRPC canary failing every call with UNAVAILABLE answers HTTP 200: its
/// `grpc-status` (here in a trailers-only response, the form gRPC servers
/// answer an error with) makes it count as failing, and the rollout rolls
/// it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_canary_answering_unavailable_is_rolled_back() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary").grpc_status(14))
        .await
        .unwrap();
    let yaml = canary_yaml(
        &[stable.address],
        &[canary.address],
        (100, 0),
        &ROLLOUT
            .replace("interval: 400ms", "interval: 5s")
            .replace("[10, 50, 100]", "[50, 100]"),
        "",
    );
    let proxy = start_proxy(&yaml).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(edge(&proxy), stop.clone());
    let started = Instant::now();
    let rolled_back = eventually(Duration::from_secs(10), || async {
        rollout_of(&proxy).await["status"] == "rolled_back"
    })
    .await;
    eprintln!(
        "gRPC canary rolled back {:?} after the rollout started",
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(rolled_back, "no rollback: {}", rollout_of(&proxy).await);
    let rollout = rollout_of(&proxy).await;
    assert!(
        rollout["reason"].as_str().unwrap().contains("error rate"),
        "{rollout}"
    );
    let metrics = metrics_text(&proxy).await;
    let failures = sample(
        &metrics,
        &format!(
            "luas_backend_requests_total{{code=\"grpc_error\",endpoint=\"{}\",group=\"canary\",service=\"web\"}}",
            canary.address
        ),
    );
    assert!(failures >= Some(20.0), "{failures:?}");
    let successes = sample(
        &metrics,
        &format!(
            "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{}\",group=\"canary\",service=\"web\"}}",
            canary.address
        ),
    );
    assert_eq!(successes, Some(0.0));
    assert!(
        sample(
            &metrics,
            r#"luas_requests_total{code="grpc_error",listener="edge",route="all"}"#
        ) >= Some(20.0),
        "{metrics}"
    );
}
