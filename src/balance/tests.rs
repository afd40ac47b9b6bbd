use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::SlowStartConfig;
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
        crate::health::outlier::record(&config, &group[0].stats.health, &group, true, || now);
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
            crate::health::outlier::record(&config, &endpoint.stats.health, &group, true, || now);
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

const KINDS: [BalancerKind; 3] = [
    BalancerKind::P2cEwma,
    BalancerKind::LeastRequest,
    BalancerKind::RoundRobin,
];

const WINDOW: Duration = Duration::from_secs(100);

fn slow_start(aggression: f64, min_weight_percent: u32) -> Option<SlowStartConfig> {
    Some(SlowStartConfig {
        window: WINDOW,
        aggression,
        min_weight_percent,
    })
}

/// Three endpoints that started long ago and one (the last) that starts at
/// the returned instant; all four as fast, so that p2c-ewma's choice
/// between them is even.
fn three_old_and_a_new_one() -> (Vec<Endpoint>, Instant) {
    let start = Instant::now();
    let added = start + Duration::from_secs(1_000);
    let mut group = crate::endpoint::test_endpoints(3, start);
    let new = crate::endpoint::test_endpoints(4, added).pop().unwrap();
    group.push(new);
    for endpoint in &group {
        observe(endpoint, Duration::from_millis(1), added);
    }
    (group, added)
}

/// Each endpoint's share of 20 000 picks at `now`.
fn shares(
    kind: BalancerKind,
    slow_start: Option<SlowStartConfig>,
    group: &[Endpoint],
    now: Instant,
) -> Vec<f64> {
    const PICKS: u32 = 20_000;
    let balancer = Balancer::new(kind).with_slow_start(slow_start);
    let mut rng = fastrand::Rng::with_seed(17);
    let mut counts = vec![0u32; group.len()];
    for _ in 0..PICKS {
        let picked = pick(&balancer, group, now, &mut rng).unwrap();
        counts[group
            .iter()
            .position(|e| e.address == picked.address)
            .unwrap()] += 1;
    }
    counts
        .iter()
        .map(|&c| f64::from(c) / f64::from(PICKS))
        .collect()
}

/// The share of one endpoint at `factor` next to three at full weight, as
/// Envoy's weights give it.
fn expected_share(factor: f64) -> f64 {
    factor / (3.0 + factor)
}

/// Within 20 % of `expected`: at least 5 standard deviations of 20 000
/// picks for the smallest share here (3 %), so a correct balancer never
/// fails it, while a share that ignores the factor is far outside it.
fn assert_near(share: f64, expected: f64, what: &str) {
    assert!(
        (share - expected).abs() <= 0.2 * expected,
        "{what}: share {share:.4}, expected {expected:.4}"
    );
}

#[test]
fn a_new_endpoints_share_rises_over_the_window() {
    let (group, added) = three_old_and_a_new_one();
    for kind in KINDS {
        let share_at = |percent: u64| {
            let now = added + WINDOW * percent as u32 / 100;
            shares(kind, slow_start(1.0, 10), &group, now)[3]
        };
        let rising: Vec<f64> = [0, 25, 50, 100].into_iter().map(share_at).collect();
        assert!(
            rising.windows(2).all(|pair| pair[0] < pair[1]),
            "{kind:?}: {rising:?}"
        );
        // 10 % (the minimum weight) at 0, then linear.
        for (share, factor) in rising.iter().zip([0.1, 0.25, 0.5, 1.0]) {
            assert_near(
                *share,
                expected_share(factor),
                &format!("{kind:?} at {factor}"),
            );
        }
    }
}

#[test]
fn past_the_window_a_new_endpoint_gets_what_its_siblings_get() {
    let (group, added) = three_old_and_a_new_one();
    for kind in KINDS {
        for now in [added + WINDOW, added + WINDOW * 3] {
            for (index, share) in shares(kind, slow_start(1.0, 10), &group, now)
                .into_iter()
                .enumerate()
            {
                assert_near(share, 0.25, &format!("{kind:?}, endpoint {index}"));
            }
        }
    }
}

#[test]
fn without_slow_start_a_new_endpoint_gets_its_full_share_at_once() {
    let (group, added) = three_old_and_a_new_one();
    for kind in KINDS {
        assert_near(
            shares(kind, None, &group, added)[3],
            0.25,
            &format!("{kind:?}"),
        );
    }
}

#[test]
fn the_minimum_weight_holds_at_the_start() {
    let (group, added) = three_old_and_a_new_one();
    for kind in KINDS {
        for (min_weight_percent, factor) in [(1, 0.01), (10, 0.1), (50, 0.5)] {
            // A tenth into the window the linear ramp is at 0.1: below the
            // floor of 50 %, at that of 10 %, above that of 1 %.
            let now = added + WINDOW / 10;
            let share = shares(kind, slow_start(1.0, min_weight_percent), &group, now)[3];
            let factor = f64::max(factor, 0.1);
            assert_near(
                share,
                expected_share(factor),
                &format!("{kind:?}, min_weight_percent {min_weight_percent}"),
            );
        }
        // At the very start, the floor alone.
        let share = shares(kind, slow_start(1.0, 10), &group, added)[3];
        assert_near(share, expected_share(0.1), &format!("{kind:?} at 0"));
    }
}

#[test]
fn aggression_bends_the_ramp() {
    let (group, added) = three_old_and_a_new_one();
    for kind in KINDS {
        let quarter = added + WINDOW / 4;
        // Aggression 2: (1/4)^(1/2) = 1/2, twice the linear ramp's 1/4.
        let eager = shares(kind, slow_start(2.0, 1), &group, quarter)[3];
        assert_near(
            eager,
            expected_share(0.5),
            &format!("{kind:?}, aggression 2"),
        );
        // Aggression 0.5: (1/4)^2 = 1/16.
        let shy = shares(kind, slow_start(0.5, 1), &group, quarter)[3];
        assert_near(
            shy,
            expected_share(1.0 / 16.0),
            &format!("{kind:?}, aggression 0.5"),
        );
        let linear = shares(kind, slow_start(1.0, 1), &group, quarter)[3];
        assert!(
            shy < linear && linear < eager,
            "{kind:?}: {shy} {linear} {eager}"
        );
    }
}

#[test]
fn endpoints_that_all_start_together_share_evenly() {
    let start = Instant::now();
    let group = crate::endpoint::test_endpoints(4, start);
    for kind in KINDS {
        for now in [start, start + WINDOW / 2] {
            for (index, share) in shares(kind, slow_start(1.0, 10), &group, now)
                .into_iter()
                .enumerate()
            {
                assert_near(share, 0.25, &format!("{kind:?}, endpoint {index}"));
            }
        }
    }
}

#[test]
fn under_load_a_new_endpoints_share_still_follows_the_ramp() {
    // Closed loop: 16 requests in flight, the oldest ends as a new one starts,
    // so in-flight counts drive the comparisons as they do under real load.
    let (group, added) = three_old_and_a_new_one();
    for kind in [BalancerKind::LeastRequest, BalancerKind::P2cEwma] {
        let share_at = |percent: u32| {
            let now = added + WINDOW * percent / 100;
            let balancer = Balancer::new(kind).with_slow_start(slow_start(1.0, 10));
            let mut rng = fastrand::Rng::with_seed(23);
            let mut in_flight = std::collections::VecDeque::new();
            let mut new = 0u32;
            for _ in 0..20_000 {
                let picked = pick(&balancer, &group, now, &mut rng).unwrap();
                new += u32::from(picked.address == group[3].address);
                in_flight.push_back(InFlight::start(picked, now));
                if in_flight.len() > 16 {
                    in_flight.pop_front();
                }
            }
            f64::from(new) / 20_000.0
        };
        let rising: Vec<f64> = [0, 25, 50, 100].into_iter().map(share_at).collect();
        assert!(
            rising.windows(2).all(|pair| pair[0] < pair[1]),
            "{kind:?}: {rising:?}"
        );
        // Fewer requests in flight win a ramping endpoint more comparisons;
        // counting them 1/f times keeps that small (without it: 9 % at 0.1).
        for (share, factor) in rising.iter().zip([0.1, 0.25, 0.5, 1.0]) {
            let expected = expected_share(factor);
            assert!(
                (share - expected).abs() <= 0.35 * expected,
                "{kind:?} at {factor}: {rising:?}"
            );
        }
    }
}
