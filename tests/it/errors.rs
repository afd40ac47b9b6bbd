//! Each failure gets its status and a plain-text body that says which:
//! 502 refused or reset, 504 timeout, 503 no endpoint, 404 no route; and a
//! failing backend never takes the proxy down.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use http::StatusCode;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// An address on which nothing listens.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

/// A backend that accepts, reads the request and closes without answering.
async fn resetting_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 512];
            let _ = stream.read(&mut buffer).await;
            drop(stream);
        }
    });
    address
}

#[tokio::test]
async fn refused_connection_is_502() {
    let proxy = start_proxy(&one_service_yaml(&[closed_port().await], "")).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        answer.body,
        "luas: the backend refused the connection or could not be reached\n"
    );
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn reset_before_response_is_502() {
    let proxy = start_proxy(&one_service_yaml(&[resetting_backend().await], "")).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        answer.body,
        "luas: the backend closed or reset the connection\n"
    );
}

#[tokio::test]
async fn slow_backend_is_504_after_the_request_timeout() {
    let slow = Backend::spawn(BackendOptions::new("slow").latency(Duration::from_secs(5)))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[slow.address],
        "    timeouts: { request: 200ms }",
    ))
    .await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(answer.body, "luas: the backend did not answer in time\n");
    let metrics = metrics_text(&proxy).await;
    let errors = format!(
        r#"luas_backend_requests_total{{code="error",endpoint="{}",group="stable",service="web"}}"#,
        slow.address
    );
    assert_eq!(sample(&metrics, &errors), Some(1.0), "{metrics}");
}

#[tokio::test]
async fn service_without_endpoints_is_503() {
    // Validation refuses an empty group, but discovery and health checks will
    // empty one at run time: build that state directly.
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let mut config = Config::from_yaml(&one_service_yaml(&[backend.address], "")).unwrap();
    config.services[0].groups[0].endpoints.clear();
    let proxy = start_proxy_with(config).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.body,
        "luas: no backend endpoint is available for this service\n"
    );
    // And the readiness probe says so.
    let ready = get(proxy.admin_address(), "/ready", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn backend_status_codes_pass_through_untouched() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    for code in [404u16, 500, 503] {
        let answer = get(edge(&proxy), &format!("/status/{code}"), &[]).await;
        assert_eq!(answer.status.as_u16(), code);
        assert_eq!(
            answer.body, "b\n",
            "a backend's own error body is not replaced"
        );
    }
}

#[tokio::test]
async fn a_failing_backend_does_not_hurt_the_healthy_one() {
    let healthy = Backend::spawn(BackendOptions::new("healthy"))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[healthy.address, closed_port().await],
        "    balancer: round-robin",
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(send(&client, edge, "/", &[]).await.status.as_u16());
    }
    // Requests picked for the dead port never reached it, so each is sent
    // again to the healthy endpoint: the client sees only 200s.
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(healthy.requests(), 20);
    let metrics = metrics_text(&proxy).await;
    let not_sent = sample(
        &metrics,
        r#"luas_backend_retries_total{reason="not_sent",service="web"}"#,
    );
    assert!(not_sent.unwrap_or(0.0) >= 1.0, "{metrics}");
}
