//! Retries: configured retries hide a failing endpoint from clients, only
//! for requests that may be repeated, within a budget; per-try timeouts move
//! on from a slow endpoint; active health checks take an endpoint out of
//! rotation and bring it back.

use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use futures_util::future::join_all;
use http::{Method, StatusCode};
use http_body_util::Full;

const RETRY: &str = "    balancer: round-robin
    outlier: { enabled: false }
    retry: { attempts: 2, on: [5xx, reset, timeout], budget: { ratio: 0.2, min_per_second: 10 } }";

fn retried(metrics: &str, reason: &str) -> f64 {
    sample(
        metrics,
        &format!(r#"luas_backend_retries_total{{reason="{reason}",service="web"}}"#),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_5xx_is_retried_on_another_endpoint() {
    let good = Backend::spawn(BackendOptions::new("good")).await.unwrap();
    let bad = Backend::spawn(BackendOptions::new("bad").status(StatusCode::INTERNAL_SERVER_ERROR))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(&[bad.address, good.address], RETRY)).await;
    let client = client();
    for _ in 0..20 {
        let answer = send(&client, edge(&proxy), "/", &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "good\n");
    }
    assert!(
        bad.requests() >= 5,
        "round-robin should have tried the bad one"
    );
    assert_eq!(
        retried(&metrics_text(&proxy).await, "5xx"),
        bad.requests() as f64
    );
}

#[tokio::test]
async fn non_idempotent_and_large_requests_are_not_retried() {
    let good = Backend::spawn(BackendOptions::new("good")).await.unwrap();
    let bad = Backend::spawn(BackendOptions::new("bad").status(StatusCode::INTERNAL_SERVER_ERROR))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(&[bad.address, good.address], RETRY)).await;
    let client = client();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let request = http::Request::post(format!("http://{}/", edge(&proxy)))
            .body(Full::new(Bytes::from_static(b"order")))
            .unwrap();
        statuses.push(client.request(request).await.unwrap().status().as_u16());
    }
    // POST is not idempotent: the bad endpoint's 500s reach the client.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 500).count(),
        5,
        "{statuses:?}"
    );
    // A PUT over the 64 KiB replay buffer is not retried either.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let request = http::Request::put(format!("http://{}/", edge(&proxy)))
            .body(Full::new(Bytes::from(vec![b'x'; 100 * 1024])))
            .unwrap();
        statuses.push(client.request(request).await.unwrap().status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 500).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(retried(&metrics_text(&proxy).await, "5xx"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_caps_retries_when_everything_fails() {
    let bad_a = Backend::spawn(BackendOptions::new("a").status(StatusCode::SERVICE_UNAVAILABLE))
        .await
        .unwrap();
    let bad_b = Backend::spawn(BackendOptions::new("b").status(StatusCode::SERVICE_UNAVAILABLE))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[bad_a.address, bad_b.address],
        &RETRY.replace("min_per_second: 10", "min_per_second: 1"),
    ))
    .await;
    let edge = edge(&proxy);
    const REQUESTS: u64 = 400;
    join_all((0..8).map(|_| async move {
        let client = client();
        for _ in 0..REQUESTS / 8 {
            assert_eq!(send(&client, edge, "/", &[]).await.status, 503);
        }
    }))
    .await;
    let metrics = metrics_text(&proxy).await;
    let retries = retried(&metrics, "5xx");
    let exhausted = sample(
        &metrics,
        r#"luas_retry_budget_exhausted_total{service="web"}"#,
    )
    .unwrap_or(0.0);
    let sent = (bad_a.requests() + bad_b.requests()) as f64;
    eprintln!("everything failing: {REQUESTS} requests, {retries} retries, {exhausted} refused by the budget");
    // Two attempts each would be 800 retries; the budget allows 20 % of
    // requests plus 1/s over ten seconds.
    assert!(
        retries <= REQUESTS as f64 * 0.2 + 10.0 + 2.0,
        "{retries} retries"
    );
    assert!(
        retries >= 10.0,
        "{retries} retries: the budget's minimum should allow some"
    );
    assert!(exhausted > 0.0);
    assert_eq!(sent, REQUESTS as f64 + retries);
}

#[tokio::test]
async fn per_try_timeout_moves_on_from_a_slow_endpoint() {
    let slow = Backend::spawn(BackendOptions::new("slow").latency(Duration::from_secs(5)))
        .await
        .unwrap();
    let fast = Backend::spawn(BackendOptions::new("fast")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[slow.address, fast.address],
        "    balancer: round-robin
    outlier: { enabled: false }
    retry: { attempts: 1, on: [timeout], per_try_timeout: 100ms }",
    ))
    .await;
    let client = client();
    for _ in 0..6 {
        let started = Instant::now();
        let answer = send(&client, edge(&proxy), "/", &[]).await;
        assert_eq!(answer.body, "fast\n");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(retried(&metrics_text(&proxy).await, "timeout") >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_an_endpoint_out_and_back() {
    let good = Backend::spawn(BackendOptions::new("good")).await.unwrap();
    let flaky = Backend::spawn(BackendOptions::new("flaky")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[good.address, flaky.address],
        "    balancer: round-robin
    outlier: { enabled: false }
    health_check: { path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 2, unhealthy_threshold: 3 }",
    ))
    .await;
    let healthy = format!(
        r#"luas_backend_healthy{{endpoint="{}",group="stable",service="web"}}"#,
        flaky.address
    );
    let probes_seen = eventually(Duration::from_secs(5), || async { flaky.requests() >= 2 }).await;
    assert!(probes_seen, "no health probes arrived");

    flaky.set_status(StatusCode::SERVICE_UNAVAILABLE);
    let broke = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            sample(&metrics_text(&proxy).await, &healthy) == Some(0.0)
        })
        .await,
        "never marked unhealthy"
    );
    eprintln!(
        "health checks marked the endpoint unhealthy {:?} after it broke",
        broke.elapsed()
    );
    let client = client();
    let mut probes_only = flaky.requests();
    for _ in 0..30 {
        assert_eq!(send(&client, edge(&proxy), "/", &[]).await.body, "good\n");
    }
    // Only probes (every 100 ms) reached it meanwhile, no client request.
    probes_only = flaky.requests() - probes_only;
    assert!(probes_only < 10, "{probes_only}");

    flaky.set_status(StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async {
            sample(&metrics_text(&proxy).await, &healthy) == Some(1.0)
        })
        .await,
        "never marked healthy again"
    );
    let mut bodies = Vec::new();
    for _ in 0..10 {
        bodies.push(send(&client, edge(&proxy), "/", &[]).await.body);
    }
    assert!(bodies.iter().any(|b| b == "flaky\n"), "{bodies:?}");
    let _ = Method::GET;
}
