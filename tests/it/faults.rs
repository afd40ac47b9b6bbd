//! Fault tests: backends die, fail, hang or all go down under steady load,
//! and clients see as little of it as the proxy can manage. Each test is
//! bounded in time and talks to loopback only; each prints its numbers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use http::StatusCode;
use tokio::task::JoinHandle;

/// Counts of what a load generator's clients saw.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// `clients` clients sending GETs back to back until `stop`, at most 30 s.
fn steady_load(
    edge: SocketAddr,
    clients: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (stop, tally) = (stop.clone(), tally.clone());
            tokio::spawn(async move {
                let client = client();
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let answer = send(&client, edge, "/", &[]).await;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    if answer.status != StatusCode::OK {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

async fn stop_load(stop: &AtomicBool, clients: Vec<JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_backend_under_load_fails_no_request() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b").latency(Duration::from_millis(2)))
        .await
        .unwrap();
    let victim = Backend::spawn(BackendOptions::new("victim").latency(Duration::from_millis(2)))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[a.address, b.address, victim.address],
        "    balancer: round-robin\n    retry: { attempts: 2, on: [reset, 5xx, timeout] }",
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = steady_load(edge(&proxy), 8, stop.clone(), tally.clone());

    assert!(
        eventually(Duration::from_secs(10), || async {
            victim.requests() >= 200
        })
        .await
    );
    let sent_before_kill = tally.sent.load(Ordering::Relaxed);
    drop(victim); // closes its listener and cuts every open connection mid-request
    let at_kill = a.requests() + b.requests();
    assert!(
        eventually(Duration::from_secs(15), || async {
            a.requests() + b.requests() >= at_kill + 2_000
        })
        .await
    );
    stop_load(&stop, clients).await;

    let (sent, failed) = (
        tally.sent.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    let metrics = metrics_text(&proxy).await;
    let retried = |reason: &str| {
        sample(
            &metrics,
            &format!(r#"luas_backend_retries_total{{reason="{reason}",service="web"}}"#),
        )
        .unwrap_or(0.0)
    };
    eprintln!(
        "backend killed: {sent} requests sent ({sent_before_kill} before the kill), {failed} failed; retried: {} not sent, {} reset",
        retried("not_sent"),
        retried("reset")
    );
    assert_eq!(
        failed, 0,
        "clients saw failures when one backend of three died"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answering_500_is_ejected_and_returns_after_recovery() {
    let good_a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let good_b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let bad = Backend::spawn(BackendOptions::new("bad")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[good_a.address, good_b.address, bad.address],
        "    balancer: round-robin\n    outlier: { consecutive_failures: 5, base_ejection: 1s }",
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    let ejections = format!(
        r#"luas_backend_ejections_total{{endpoint="{}",group="stable",service="web"}}"#,
        bad.address
    );
    let healthy = format!(
        r#"luas_backend_healthy{{endpoint="{}",group="stable",service="web"}}"#,
        bad.address
    );

    bad.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    let broke = Instant::now();
    let mut server_errors = 0;
    let mut sent = 0;
    while sample(&metrics_text(&proxy).await, &ejections) != Some(1.0) {
        assert!(broke.elapsed() < Duration::from_secs(10), "never ejected");
        sent += 1;
        if send(&client, edge, "/", &[]).await.status == 500 {
            server_errors += 1;
        }
    }
    let ejected_after = broke.elapsed();
    eprintln!("500-answering backend ejected {ejected_after:?} after it broke: {server_errors} 500s seen in {sent} requests");
    assert_eq!(
        server_errors, 5,
        "ejected after exactly five consecutive failures"
    );
    assert_eq!(sample(&metrics_text(&proxy).await, &healthy), Some(0.0));

    // While ejected it gets nothing; the others take all traffic.
    let bad_before = bad.requests();
    for _ in 0..30 {
        assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
    }
    assert_eq!(
        bad.requests(),
        bad_before,
        "an ejected endpoint received traffic"
    );

    // It recovers; once the 1 s ejection is over it is back in rotation.
    bad.set_status(StatusCode::OK);
    let back = eventually(Duration::from_secs(10), || async {
        send(&client, edge, "/", &[]).await;
        bad.requests() > bad_before
    })
    .await;
    assert!(back, "the recovered endpoint never got traffic again");
    assert!(
        eventually(Duration::from_secs(5), || async {
            sample(&metrics_text(&proxy).await, &healthy) == Some(1.0)
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_costs_504s_only_until_it_is_avoided() {
    let good_a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let good_b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let victim = Backend::spawn(BackendOptions::new("victim")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(
        &[good_a.address, victim.address, good_b.address],
        // Long enough that a healthy backend on a busy CI machine never
        // times out, so every 504 is the hanging one.
        "    timeouts: { request: 1s }",
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    // Healthy at first, so the balancer knows it as fast; then it hangs:
    // it accepts requests and never answers. The estimate takes an
    // endpoint's first sample whole: one slowed by a loaded machine (it
    // failed this way once in CI) keeps the victim out of P2C's picks
    // until it decays (τ = 10 s), about 40 s for a 100 ms sample.
    assert!(
        eventually(Duration::from_secs(45), || async {
            send(&client, edge, "/", &[]).await;
            victim.requests() >= 3
        })
        .await
    );
    victim.set_latency(Duration::from_secs(3600));
    let victim_before = victim.requests();
    let mut timeouts = 0;
    let before = good_a.requests() + good_b.requests();
    // With one client at a time P2C may keep preferring the other two until
    // the victim's estimate, the highest of three fast ones, has decayed
    // below theirs while idle (seconds), so send until the victim has been
    // picked once, then 200 more.
    let mut sent = 0;
    let mut first_timeout_at = None;
    let hung_at = Instant::now();
    while hung_at.elapsed() < Duration::from_secs(40)
        && first_timeout_at.is_none_or(|at| sent < at + 200)
    {
        let started = Instant::now();
        let answer = send(&client, edge, "/", &[]).await;
        sent += 1;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::GATEWAY_TIMEOUT => {
                timeouts += 1;
                first_timeout_at.get_or_insert(sent);
                let took = started.elapsed();
                assert!(
                    took >= Duration::from_millis(990) && took < Duration::from_secs(3),
                    "504 after {took:?}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    eprintln!("hanging backend: {timeouts} of {sent} requests timed out (504 after 1 s), the rest served by the others");
    assert_eq!(
        victim.requests() - victim_before,
        timeouts,
        "every 504 was a request the hanging endpoint took"
    );
    assert!(
        timeouts >= 1,
        "the hanging endpoint was never tried in {sent} requests"
    );
    // Its failure penalty makes P2C avoid it after the first timeout or two.
    assert!(
        timeouts <= 3,
        "{timeouts} requests went to the hanging endpoint"
    );
    assert_eq!(
        good_a.requests() + good_b.requests() - before,
        sent - timeouts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_backends_down_is_a_quick_503_and_service_resumes_when_one_returns() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let (address_a, address_b) = (a.address, b.address);
    let proxy = start_proxy(&one_service_yaml(&[address_a, address_b], "")).await;
    let edge = edge(&proxy);
    let client = client();
    assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
    // Both gone for good before the first request: a backend cut while it
    // reads that request would answer with a reset (502), not a refusal.
    a.shut_down().await;
    b.shut_down().await;

    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let answer = send(&client, edge, "/", &[]).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.body
        );
        assert_eq!(answer.body, "luas: no backend endpoint could be reached\n");
    }
    eprintln!("all backends down: 20 × 503, slowest in {slowest:?}");
    assert!(slowest < Duration::from_secs(1));

    // One comes back on its old address: served again at once, even if the
    // outlier detector had ejected it.
    let revived = Backend::spawn_on(address_b, BackendOptions::new("b-again"))
        .await
        .unwrap();
    let returned = Instant::now();
    let served = eventually(Duration::from_secs(5), || async {
        send(&client, edge, "/", &[]).await.status == StatusCode::OK
    })
    .await;
    assert!(served, "not served after a backend came back");
    eprintln!(
        "served again {:?} after a backend returned",
        returned.elapsed()
    );
    assert!(returned.elapsed() < Duration::from_secs(1));
    for _ in 0..20 {
        assert_eq!(send(&client, edge, "/", &[]).await.body, "b-again\n");
    }
    drop(revived);
}
