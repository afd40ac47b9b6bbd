//! Graceful shutdown: stop accepting, report not ready, let in-flight
//! requests finish, then return.

use std::time::Duration;

use crate::support::*;
use http::StatusCode;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_and_new_connections_are_refused() {
    let backend = Backend::spawn(BackendOptions::new("slow").latency(Duration::from_millis(1500)))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let edge = edge(&proxy);
    let admin = proxy.admin_address();
    assert_eq!(get(admin, "/ready", &[]).await.status, StatusCode::OK);

    let in_flight = tokio::spawn(async move { get(edge, "/", &[]).await });
    assert!(
        eventually(Duration::from_secs(5), || async { backend.requests() == 1 }).await,
        "the request never reached the backend"
    );

    let shutdown = tokio::spawn(proxy.shutdown());
    assert!(
        eventually(Duration::from_secs(5), || async {
            get(admin, "/ready", &[]).await.status == StatusCode::SERVICE_UNAVAILABLE
        })
        .await,
        "/ready did not turn 503 during the drain"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            TcpStream::connect(edge).await.is_err()
        })
        .await,
        "the listener still accepts connections"
    );
    assert!(
        !in_flight.is_finished(),
        "the drain should still be waiting for the request"
    );

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "slow\n");
    let drained = tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown returns once drained")
        .unwrap();
    assert!(
        drained,
        "shutdown reported requests cut by the grace period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_bounds_the_drain() {
    let backend = Backend::spawn(BackendOptions::new("stuck").latency(Duration::from_secs(30)))
        .await
        .unwrap();
    let mut yaml = one_service_yaml(&[backend.address], "");
    yaml.push_str("shutdown: { grace_period: 300ms }\n");
    let proxy = start_proxy(&yaml).await;
    let edge = edge(&proxy);
    let _stuck = tokio::spawn(async move { get(edge, "/", &[]).await });
    assert!(eventually(Duration::from_secs(5), || async { backend.requests() == 1 }).await);
    let started = std::time::Instant::now();
    let drained = tokio::time::timeout(Duration::from_secs(10), proxy.shutdown())
        .await
        .expect("shutdown returns after the grace period");
    assert!(
        !drained,
        "a 30 s request cannot finish in a 300 ms grace period"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
