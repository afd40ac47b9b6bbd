//! Slow start end to end: an endpoint added by a reload to a service with
//! `slow_start` gets a share of the requests that rises over its window, and
//! a later reload does not start its ramp again.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::support::*;

const WINDOW: Duration = Duration::from_secs(2);
const CLIENTS: usize = 8;

fn yaml(balancer: &str, endpoints: &[&Backend]) -> String {
    let addresses: Vec<_> = endpoints.iter().map(|backend| backend.address).collect();
    one_service_yaml(
        &addresses,
        &format!(
            "    balancer: {balancer}\n    slow_start: {{ window: {}ms }}",
            WINDOW.as_millis()
        ),
    )
}

/// Sends requests from CLIENTS clients in a loop for `length`; returns, for
/// each answer, when it came (since `start`) and whether `name` sent it.
async fn traffic(
    proxy: &Running,
    start: Instant,
    length: Duration,
    name: &str,
) -> Vec<(Duration, bool)> {
    let edge = edge(proxy);
    let client = client();
    let end = Instant::now() + length;
    let expected = format!("{name}\n");
    let answers = join_all((0..CLIENTS).map(|_| {
        let client = client.clone();
        let expected = &expected;
        async move {
            let mut answers = Vec::new();
            while Instant::now() < end {
                let answer = send(&client, edge, "/", &[]).await;
                assert_eq!(answer.status, 200);
                answers.push((start.elapsed(), answer.body == *expected));
            }
            answers
        }
    }))
    .await;
    answers.into_iter().flatten().collect()
}

/// The share of the answers from `from` to `to` that were the new endpoint's.
fn share(answers: &[(Duration, bool)], from: Duration, to: Duration) -> f64 {
    let slice: Vec<bool> = answers
        .iter()
        .filter(|(at, _)| (from..to).contains(at))
        .map(|&(_, new)| new)
        .collect();
    // Fewer would make the shares below noise, not a measurement.
    assert!(
        slice.len() >= 40,
        "only {} answers from {from:?} to {to:?}",
        slice.len()
    );
    slice.iter().filter(|&&new| new).count() as f64 / slice.len() as f64
}

/// `latency`: how long every backend takes to answer.
async fn a_new_endpoint_ramps_up(balancer: &str, latency: Duration) {
    let mut backends = Vec::new();
    for name in ["a", "b", "c", "new"] {
        let options = BackendOptions::new(name).latency(latency);
        backends.push(Backend::spawn(options).await.unwrap());
    }
    let old: Vec<&Backend> = backends.iter().take(3).collect();
    let all: Vec<&Backend> = backends.iter().collect();
    let proxy = start_proxy(&yaml(balancer, &old)).await;
    // The three start ramping together with the proxy; the new one's ramp
    // is only visible next to siblings past theirs. Time, not a condition
    // to poll: their window has to pass.
    tokio::time::sleep(WINDOW).await;

    let config = Config::from_yaml(&yaml(balancer, &all)).unwrap();
    proxy.state().reload(config.clone()).unwrap();
    let added = Instant::now();
    let answers = traffic(&proxy, added, WINDOW + WINDOW / 2, "new").await;
    let third = WINDOW / 3;
    let slices = [
        share(&answers, Duration::ZERO, third),
        share(&answers, third, third * 2),
        share(&answers, third * 2, WINDOW),
        share(&answers, WINDOW, WINDOW + WINDOW / 2),
    ];
    // Expected with three siblings: about 6 %, 14 %, 22 %, then 25 %.
    eprintln!(
        "{balancer}: the new endpoint's share by third of its window, then after: {slices:.3?} \
         of {} answers",
        answers.len()
    );
    assert!(slices[0] < slices[2], "{slices:?}");
    assert!(slices[0] < 0.15, "{slices:?}");
    assert!(slices[3] > 0.1, "{slices:?}");

    // A reload keeps the endpoint's statistics, and with them its start.
    proxy.state().reload(config).unwrap();
    let reloaded = Instant::now();
    let answers = traffic(&proxy, reloaded, third, "new").await;
    let after_reload = share(&answers, Duration::ZERO, third);
    eprintln!("{balancer}: just after a second reload: {after_reload:.3}");
    assert!(after_reload > 0.1, "{after_reload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_ramps_up_a_new_endpoint() {
    a_new_endpoint_ramps_up("round-robin", Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_ramps_up_a_new_endpoint() {
    a_new_endpoint_ramps_up("least-request", Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_ewma_ramps_up_a_new_endpoint() {
    // Sub-millisecond answers on a busy machine make p2c-ewma's shares
    // follow scheduling noise (a replica that looks a little faster gets up
    // to twice its share); at 10 ms, noise stays inside the tie band and the
    // ramp is what shows.
    a_new_endpoint_ramps_up("p2c-ewma", Duration::from_millis(10)).await;
}
