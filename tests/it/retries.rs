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

/// A gRPC call (an h2c POST whose body streams, with no content-length)
/// streamed through `ChannelBody` in two parts; the answer's status, its
/// `grpc-status` header if any, and its body.
async fn grpc_call(
    proxy: std::net::SocketAddr,
    message: &str,
) -> (StatusCode, Option<String>, String) {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, ChannelBody> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let (sender, body) = ChannelBody::new();
    let request = http::Request::post(format!("http://{proxy}/echo"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let (first, second) = message.split_at(message.len() / 2);
    sender.send(Bytes::from(first.to_owned())).await.unwrap();
    sender.send(Bytes::from(second.to_owned())).await.unwrap();
    drop(sender);
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let status = response.status();
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        grpc_status,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// `retry.on: [unavailable]`: a trailers-only UNAVAILABLE is retried on
/// another endpoint, with the whole streamed body sent again.
#[tokio::test]
async fn a_grpc_unavailable_is_retried_with_its_streamed_body() {
    let unavailable = Backend::spawn(BackendOptions::new("down").grpc_status(14))
        .await
        .unwrap();
    let echo = Backend::spawn(BackendOptions::new("echo")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[unavailable.address, echo.address],
        "    balancer: round-robin
    protocol: http2
    retry: { attempts: 2, on: [unavailable] }",
    ))
    .await;
    for call in 0..8 {
        let message = format!("call number {call}");
        let (status, grpc_status, body) = grpc_call(edge(&proxy), &message).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(grpc_status, None, "call {call} got the failure");
        assert_eq!(body, message, "call {call}: the retry lost the body");
    }
    assert!(unavailable.requests() >= 1);
    assert_eq!(echo.requests(), 8);
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        retried(&metrics, "grpc"),
        unavailable.requests() as f64,
        "{metrics}"
    );
}

/// Without `unavailable` in `retry.on`, or with a body larger than the
/// replay buffer, the failure goes to the client as it came.
#[tokio::test]
async fn a_grpc_failure_is_not_retried_unless_named_and_kept() {
    let unavailable = Backend::spawn(BackendOptions::new("down").grpc_status(14))
        .await
        .unwrap();
    for (retry, message, retries) in [
        ("{ attempts: 2, on: [5xx] }", "small", 0.0),
        (
            "{ attempts: 2, on: [unavailable], buffer_bytes: 16 }",
            "a body longer than sixteen bytes",
            0.0,
        ),
        // The only endpoint: the retries go back to it, and fail again.
        (
            "{ attempts: 2, on: [unavailable], buffer_bytes: 16 }",
            "short",
            2.0,
        ),
    ] {
        let proxy = start_proxy(&one_service_yaml(
            &[unavailable.address],
            &format!("    protocol: http2\n    outlier: {{ enabled: false }}\n    retry: {retry}"),
        ))
        .await;
        let (status, grpc_status, _) = grpc_call(edge(&proxy), message).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(grpc_status.as_deref(), Some("14"), "{retry}");
        let metrics = metrics_text(&proxy).await;
        assert_eq!(retried(&metrics, "grpc"), retries, "{retry} {message:?}");
    }
}
