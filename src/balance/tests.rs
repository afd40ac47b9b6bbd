use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::client::H2Slot;
use crate::endpoint::{EndpointStats, InFlight, Outcome};
use crate::metrics::Metrics;

fn endpoints(metrics: &Metrics, count: usize, now: Instant) -> Vec<Endpoint> {
    (0..count)
        .map(|i| {
            let address = format!("127.0.0.1:{}", 9000 + i).parse().unwrap();
            let stats = Arc::new(EndpointStats {
                ewma: ewma::PeakEwma::new(Duration::from_secs(10), Duration::from_millis(30), now),
                metrics: metrics.endpoint("svc", "stable", &format!("127.0.0.1:{}", 9000 + i)),
                failure_penalty: Duration::from_secs(1),
                h2: H2Slot::default(),
            });
            Endpoint::new(address, stats)
        })
        .collect()
}

fn observe(endpoint: &Endpoint, rtt: Duration, now: Instant) {
    endpoint.stats.ewma.observe(rtt, now);
}

#[test]
fn two_distinct_is_uniform_and_distinct() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seen = [0u32; 5];
    for _ in 0..50_000 {
        let (a, b) = two_distinct(5, &mut rng);
        assert_ne!(a, b);
        seen[a] += 1;
        seen[b] += 1;
    }
    for count in seen {
        // 100 000 draws over 5 slots: 20 000 each, within 3 %.
        assert!((19_400..=20_600).contains(&count), "{seen:?}");
    }
}

#[test]
fn empty_and_single() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let mut rng = fastrand::Rng::with_seed(1);
    for kind in [
        BalancerKind::P2cEwma,
        BalancerKind::LeastRequest,
        BalancerKind::RoundRobin,
    ] {
        let balancer = Balancer::new(kind);
        assert!(balancer.pick_with(&[], now, &mut rng).is_none());
        let one = endpoints(&metrics, 1, now);
        let picked = balancer.pick_with(&one, now, &mut rng).unwrap();
        assert_eq!(picked.address, one[0].address);
    }
}

#[test]
fn p2c_ewma_avoids_the_slow_endpoint() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let group = endpoints(&metrics, 3, now);
    observe(&group[0], Duration::from_millis(40), now);
    observe(&group[1], Duration::from_millis(1), now);
    observe(&group[2], Duration::from_millis(1), now);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(3);
    let slow = (0..10_000)
        .filter(|_| balancer.pick_with(&group, now, &mut rng).unwrap().address == group[0].address)
        .count();
    assert_eq!(slow, 0);
}

#[test]
fn p2c_ewma_weighs_in_flight_requests() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let group = endpoints(&metrics, 2, now);
    observe(&group[0], Duration::from_millis(1), now);
    observe(&group[1], Duration::from_millis(3), now);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(3);
    assert_eq!(
        balancer.pick_with(&group, now, &mut rng).unwrap().address,
        group[0].address
    );
    // Three requests in flight make the 1 ms endpoint cost 4 ms against 3 ms.
    let guards: Vec<_> = (0..3).map(|_| InFlight::start(&group[0], now)).collect();
    assert_eq!(
        balancer.pick_with(&group, now, &mut rng).unwrap().address,
        group[1].address
    );
    drop(guards);
    assert_eq!(group[0].in_flight(), 0);
}

#[test]
fn idle_slow_endpoint_is_probed_again_after_decay() {
    let metrics = Metrics::new(&[1.0]);
    let start = Instant::now();
    let group = endpoints(&metrics, 2, start);
    observe(&group[0], Duration::from_millis(40), start);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(3);
    // The fast endpoint keeps answering in 1 ms; the idle slow one decays.
    let mut probed_at = None;
    for step in 0..200 {
        let now = start + Duration::from_millis(500 * step);
        observe(&group[1], Duration::from_millis(1), now);
        if balancer.pick_with(&group, now, &mut rng).unwrap().address == group[0].address {
            probed_at = Some(now - start);
            break;
        }
    }
    // 40 ms decays below 1 ms after 10 s × ln 40 ≈ 37 s.
    let probed_at = probed_at.expect("slow endpoint never probed again");
    assert!(
        probed_at > Duration::from_secs(30) && probed_at < Duration::from_secs(45),
        "{probed_at:?}"
    );
}

#[test]
fn failures_count_as_the_penalty_latency() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let group = endpoints(&metrics, 2, now);
    observe(&group[1], Duration::from_millis(20), now);
    // Endpoint 0 fails in 1 ms: with latency alone it would win.
    let mut guard = InFlight::start(&group[0], now);
    guard.finish(
        Outcome::Response(http::StatusCode::SERVICE_UNAVAILABLE),
        now + Duration::from_millis(1),
    );
    drop(guard);
    let later = now + Duration::from_millis(1);
    assert!(group[0].stats.cost(later) >= 900_000.0);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(3);
    assert_eq!(
        balancer.pick_with(&group, later, &mut rng).unwrap().address,
        group[1].address
    );
    assert_eq!(
        group[0]
            .stats
            .metrics
            .requests
            .get(crate::metrics::CodeClass::ServerError),
        1
    );
}

#[test]
fn least_request_prefers_fewer_in_flight() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let group = endpoints(&metrics, 2, now);
    let _busy = InFlight::start(&group[0], now);
    let balancer = Balancer::new(BalancerKind::LeastRequest);
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..100 {
        assert_eq!(
            balancer.pick_with(&group, now, &mut rng).unwrap().address,
            group[1].address
        );
    }
}

#[test]
fn round_robin_takes_turns() {
    let metrics = Metrics::new(&[1.0]);
    let now = Instant::now();
    let group = endpoints(&metrics, 3, now);
    let balancer = Balancer::new(BalancerKind::RoundRobin);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut counts = [0; 3];
    for _ in 0..300 {
        let picked = balancer.pick_with(&group, now, &mut rng).unwrap();
        counts[group
            .iter()
            .position(|e| e.address == picked.address)
            .unwrap()] += 1;
    }
    assert_eq!(counts, [100, 100, 100]);
}
