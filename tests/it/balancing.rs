//! Balancing end to end: with one replica 40 ms slower than its two siblings,
//! p2c-ewma sends it under 5 % of requests, round-robin about a third, and
//! least-request less than round-robin.

use std::time::Duration;

use crate::support::*;
use futures_util::future::join_all;

const SLOW: Duration = Duration::from_millis(40);
const CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 60;

/// Sends CLIENTS × REQUESTS_PER_CLIENT requests through a proxy in front of
/// two fast backends and one slow one; returns the slow one's share.
async fn slow_share(balancer: &str) -> f64 {
    let fast_a = Backend::spawn(BackendOptions::new("fast-a")).await.unwrap();
    let fast_b = Backend::spawn(BackendOptions::new("fast-b")).await.unwrap();
    let slow = Backend::spawn(BackendOptions::new("slow").latency(SLOW))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[fast_a.address, slow.address, fast_b.address],
        &format!("    balancer: {balancer}"),
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    join_all((0..CLIENTS).map(|_| {
        let client = client.clone();
        async move {
            for _ in 0..REQUESTS_PER_CLIENT {
                let answer = send(&client, edge, "/", &[]).await;
                assert_eq!(answer.status, 200);
            }
        }
    }))
    .await;
    let total = fast_a.requests() + fast_b.requests() + slow.requests();
    assert_eq!(total, (CLIENTS * REQUESTS_PER_CLIENT) as u64);
    let share = slow.requests() as f64 / total as f64;
    eprintln!(
        "{balancer}: slow replica got {:.2} % of {total}",
        share * 100.0
    );
    share
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_ewma_sends_the_slow_replica_under_five_percent() {
    let share = slow_share("p2c-ewma").await;
    assert!(share < 0.05, "slow replica got {:.1} %", share * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_sends_the_slow_replica_a_third() {
    let share = slow_share("round-robin").await;
    assert!(
        (0.30..=0.37).contains(&share),
        "slow replica got {:.1} %",
        share * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_sends_the_slow_replica_less_than_a_third() {
    let share = slow_share("least-request").await;
    assert!(share < 0.25, "slow replica got {:.1} %", share * 100.0);
}

/// Identical replicas (sub-millisecond, on loopback) through p2c-ewma:
/// `count` replicas, 300 sequential requests on new connections; returns
/// each replica's share.
async fn identical_shares(count: usize) -> Vec<f64> {
    let mut backends = Vec::new();
    for index in 0..count {
        backends.push(
            Backend::spawn(BackendOptions::new(&format!("r{index}")))
                .await
                .unwrap(),
        );
    }
    let addresses: Vec<_> = backends.iter().map(|backend| backend.address).collect();
    let proxy = start_proxy(&one_service_yaml(&addresses, "")).await;
    let edge = edge(&proxy);
    for _ in 0..300 {
        // A new client each time: a new connection per request.
        assert_eq!(get(edge, "/", &[]).await.status, 200);
    }
    let total: u64 = backends.iter().map(Backend::requests).sum();
    assert_eq!(total, 300);
    let shares: Vec<f64> = backends
        .iter()
        .map(|backend| backend.requests() as f64 / total as f64)
        .collect();
    eprintln!("{count} identical replicas: shares {shares:.3?}");
    shares
}

/// Noise must not decide between identical replicas (one slower sample
/// used to cost a replica nearly all its traffic for tens of seconds).
/// A measurement on a quiet machine: with the whole suite running on two
/// cores, scheduling delays of several milliseconds are noise above the
/// balancer's resolution, so it runs from scripts/balance-shares.sh, not CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run bash scripts/balance-shares.sh on a quiet machine"]
async fn bench_identical_replicas_share_the_traffic_evenly() {
    for share in identical_shares(2).await {
        assert!((0.35..=0.65).contains(&share), "{share}");
    }
    for share in identical_shares(3).await {
        assert!((0.20..=0.47).contains(&share), "{share}");
    }
    for share in identical_h2_shares_at_a_steady_rate().await {
        assert!((0.35..=0.65).contains(&share), "{share}");
    }
}

/// Two identical replicas behind a `protocol: http2` service, one h2c
/// client calling at a steady 200 calls/s for 3 s (the case where one
/// server used to get 3 calls of 1 000); returns each replica's share.
async fn identical_h2_shares_at_a_steady_rate() -> Vec<f64> {
    use http_body_util::Empty;
    use hyper::client::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut backends = Vec::new();
    for index in 0..2 {
        backends.push(
            Backend::spawn(BackendOptions::new(&format!("h2-{index}")))
                .await
                .unwrap(),
        );
    }
    let addresses: Vec<_> = backends.iter().map(|backend| backend.address).collect();
    let proxy = start_proxy(&one_service_yaml(&addresses, "    protocol: http2")).await;
    let stream = tokio::net::TcpStream::connect(edge(&proxy)).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut ticks = tokio::time::interval(Duration::from_millis(5));
    let mut calls = Vec::with_capacity(600);
    for _ in 0..600 {
        ticks.tick().await;
        let mut sender = sender.clone();
        calls.push(tokio::spawn(async move {
            let request = http::Request::post("http://grpc.test/pkg.Service/Call")
                .header("content-type", "application/grpc")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            sender
                .send_request(request)
                .await
                .map(|response| response.status())
        }));
    }
    for call in join_all(calls).await {
        assert_eq!(call.unwrap().unwrap(), 200);
    }
    let total: u64 = backends.iter().map(Backend::requests).sum();
    assert_eq!(total, 600);
    let shares: Vec<f64> = backends
        .iter()
        .map(|backend| backend.requests() as f64 / total as f64)
        .collect();
    eprintln!("2 identical h2 replicas at 200 calls/s: shares {shares:.3?}");
    shares
}
