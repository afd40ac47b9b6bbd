use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::endpoint::{InFlight, Outcome};
use crate::metrics::Metrics;

fn endpoints(_metrics: &Metrics, count: usize, now: Instant) -> Vec<Endpoint> {
    crate::endpoint::test_endpoints(count, now)
}

fn observe(endpoint: &Endpoint, rtt: Duration, now: Instant) {
    endpoint.stats.ewma.observe(rtt, now);
}

#[test]
fn random_usable_is_uniform_and_skips_the_excluded() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(5, now);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seen = [0u32; 5];
    for _ in 0..50_000 {
        let first = random_usable(&group, &mut rng, &|_| true, None).unwrap();
        let second = random_usable(&group, &mut rng, &|_| true, Some(first)).unwrap();
        assert_ne!(first, second);
        seen[first] += 1;
        seen[second] += 1;
    }
    for count in seen {
        // 100 000 draws over 5 slots: 20 000 each, within 3 %.
        assert!((19_400..=20_600).contains(&count), "{seen:?}");
    }
}

fn pick<'a>(
    balancer: &Balancer,
    group: &'a [Endpoint],
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Option<&'a Endpoint> {
    balancer
        .pick_with(group, now, &[], rng)
        .map(|pick| pick.endpoint)
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
        assert!(pick(&balancer, &[], now, &mut rng).is_none());
        let one = endpoints(&metrics, 1, now);
        let picked = pick(&balancer, &one, now, &mut rng).unwrap();
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
        .filter(|_| pick(&balancer, &group, now, &mut rng).unwrap().address == group[0].address)
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
        pick(&balancer, &group, now, &mut rng).unwrap().address,
        group[0].address
    );
    // Three requests in flight make the 1 ms endpoint cost 4 ms against 3 ms.
    let guards: Vec<_> = (0..3).map(|_| InFlight::start(&group[0], now)).collect();
    assert_eq!(
        pick(&balancer, &group, now, &mut rng).unwrap().address,
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
        if pick(&balancer, &group, now, &mut rng).unwrap().address == group[0].address {
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

/// Simulates `seconds` of picks, ten a second, between two endpoints: the
/// picked one answers in `latency(index)`. Returns each one's picks.
fn simulate(
    group: &[Endpoint],
    start: Instant,
    seconds: u64,
    latency: impl Fn(usize) -> Duration,
) -> [u32; 2] {
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut picks = [0; 2];
    for step in 0..seconds * 10 {
        let now = start + Duration::from_millis(100 * step);
        let picked = pick(&balancer, group, now, &mut rng).unwrap();
        let index = usize::from(picked.address != group[0].address);
        picks[index] += 1;
        observe(picked, latency(index), now);
    }
    picks
}

#[test]
fn one_slow_sample_costs_an_endpoint_seconds_not_a_minute() {
    let metrics = Metrics::new(&[1.0]);
    let start = Instant::now();
    let group = endpoints(&metrics, 2, start);
    observe(&group[0], Duration::from_micros(300), start);
    observe(&group[1], Duration::from_micros(300), start);
    // A pause: one 50 ms answer among 0.3 ms ones. An unbounded peak kept
    // the endpoint out until 50 ms had decayed to ~1 ms: 10 s × ln 40 ≈ 37 s.
    observe(&group[0], Duration::from_millis(50), start);
    let later = start + Duration::from_secs(5);
    let picks = simulate(&group, later, 10, |_| Duration::from_micros(300));
    let share = f64::from(picks[0]) / 100.0;
    assert!((0.35..=0.65).contains(&share), "{picks:?}");
}

#[test]
fn an_endpoint_that_stays_slow_still_gets_under_five_percent() {
    let metrics = Metrics::new(&[1.0]);
    let start = Instant::now();
    let group = endpoints(&metrics, 2, start);
    observe(&group[0], Duration::from_micros(300), start);
    observe(&group[1], Duration::from_micros(300), start);
    // Endpoint 0 turns 5 ms slower than its sibling: the bounded peak
    // doubles its estimate per answer, so it is out within a few.
    let picks = simulate(&group, start, 60, |index| {
        Duration::from_micros(if index == 0 { 5_300 } else { 300 })
    });
    let share = f64::from(picks[0]) / 600.0;
    assert!(share < 0.05, "{picks:?}");
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
        pick(&balancer, &group, later, &mut rng).unwrap().address,
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
            pick(&balancer, &group, now, &mut rng).unwrap().address,
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
        let picked = pick(&balancer, &group, now, &mut rng).unwrap();
        counts[group
            .iter()
            .position(|e| e.address == picked.address)
            .unwrap()] += 1;
    }
    assert_eq!(counts, [100, 100, 100]);
}

#[test]
fn ineligible_and_tried_endpoints_are_skipped() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(3, now);
    let config = crate::config::defaults::OUTLIER;
    // Eject endpoint 0.
    for _ in 0..5 {
        crate::health::outlier::record(&config, &group[0].stats.health, &group, true, now);
    }
    let mut rng = fastrand::Rng::with_seed(9);
    for kind in [
        BalancerKind::P2cEwma,
        BalancerKind::LeastRequest,
        BalancerKind::RoundRobin,
    ] {
        let balancer = Balancer::new(kind);
        for _ in 0..200 {
            let picked = balancer
                .pick_with(&group, now, &[group[1].address], &mut rng)
                .unwrap();
            assert_eq!(picked.endpoint.address, group[2].address, "{kind:?}");
            assert!(!picked.panic);
        }
    }
}

#[test]
fn panic_mode_when_nothing_is_eligible() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(2, now);
    let config = crate::config::OutlierConfig {
        max_ejected_percent: 100,
        ..crate::config::defaults::OUTLIER
    };
    for endpoint in &group {
        for _ in 0..5 {
            crate::health::outlier::record(&config, &endpoint.stats.health, &group, true, now);
        }
    }
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(9);
    let picked = balancer.pick_with(&group, now, &[], &mut rng).unwrap();
    assert!(picked.panic);
    // Every endpoint tried: nothing left.
    let tried = [group[0].address, group[1].address];
    assert!(balancer.pick_with(&group, now, &tried, &mut rng).is_none());
}

#[test]
fn a_new_endpoint_is_tried_next_to_fast_measured_ones() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(3, now);
    observe(&group[0], Duration::from_micros(300), now);
    observe(&group[1], Duration::from_micros(300), now);
    // group[2] has only the 30 ms default.
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(5);
    let new = (0..3_000)
        .filter(|_| pick(&balancer, &group, now, &mut rng).unwrap().address == group[2].address)
        .count();
    // Compared as an equal, it wins a share of its pairings (about a third).
    assert!((600..=1_400).contains(&new), "{new}");
}

#[test]
fn sub_millisecond_differences_are_noise_and_split_evenly() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(2, now);
    // Three times slower, but both under the 1 ms resolution.
    observe(&group[0], Duration::from_micros(300), now);
    observe(&group[1], Duration::from_micros(900), now);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(11);
    let second = (0..10_000)
        .filter(|_| pick(&balancer, &group, now, &mut rng).unwrap().address == group[1].address)
        .count();
    assert!((4_500..=5_500).contains(&second), "{second}");
}

#[test]
fn a_tie_goes_to_fewer_requests_in_flight() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(2, now);
    observe(&group[0], Duration::from_micros(500), now);
    observe(&group[1], Duration::from_micros(500), now);
    // 1 ms (the resolution) × 2 in flight against 2.2 ms × 1: a cost
    // comparison alone would pick the busy one; within the band it is a tie,
    // and the one with fewer requests in flight wins.
    observe(&group[1], Duration::from_micros(2_200), now);
    let _busy = InFlight::start(&group[0], now);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..100 {
        assert_eq!(
            pick(&balancer, &group, now, &mut rng).unwrap().address,
            group[1].address
        );
    }
}

#[test]
fn a_replica_five_milliseconds_slower_still_gets_nothing() {
    let now = Instant::now();
    let group = crate::endpoint::test_endpoints(3, now);
    observe(&group[0], Duration::from_millis(1), now);
    observe(&group[1], Duration::from_millis(6), now);
    observe(&group[2], Duration::from_millis(1), now);
    let balancer = Balancer::new(BalancerKind::P2cEwma);
    let mut rng = fastrand::Rng::with_seed(7);
    let slow = (0..10_000)
        .filter(|_| pick(&balancer, &group, now, &mut rng).unwrap().address == group[1].address)
        .count();
    assert_eq!(slow, 0);
}
