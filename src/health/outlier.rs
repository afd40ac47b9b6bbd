//! Passive outlier detection: eject an endpoint after N consecutive failures.
//!
//! The rule, as in Envoy's consecutive-5xx detector: every failed request
//! (connect error, reset, timeout, 5xx) adds one to the endpoint's streak,
//! every success resets it. At `consecutive_failures` the endpoint is ejected
//! for `base_ejection × 2^(ejections so far)`, capped at `max_ejection`,
//! unless that would eject more than `max_ejected_percent` of its group. When
//! the time is up it is eligible again; its next failure streak starts from
//! zero but its ejection count does not, so a flapping endpoint stays out
//! longer each time. With `slow_start`, its share ramps up again from the
//! end of the ejection.
//!
//! [`record`] is the whole decision; it takes the group's endpoints so the
//! share check sees its siblings. The proxy calls it once per outcome.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::OutlierConfig;
use crate::endpoint::{Endpoint, Health};

/// What recording an outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Nothing,
    /// The endpoint was ejected for this long.
    Ejected(Duration),
    /// It reached the threshold, but too much of the group is out already.
    KeptByShareLimit,
}

/// Records one request outcome of the endpoint whose health this is, a
/// member of `group`. `now` is asked for only by a failure.
pub(crate) fn record(
    config: &OutlierConfig,
    health: &Health,
    group: &[Endpoint],
    failed: bool,
    now: impl FnOnce() -> Instant,
) -> Verdict {
    if !failed {
        // Only touch the shared cache line when there is a streak to reset.
        if health.consecutive_failures.load(Ordering::Relaxed) != 0 {
            health.consecutive_failures.store(0, Ordering::Relaxed);
        }
        return Verdict::Nothing;
    }
    if !config.enabled {
        return Verdict::Nothing;
    }
    let now = now();
    let streak = health.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if streak < config.consecutive_failures || health.is_ejected(now) {
        return Verdict::Nothing;
    }
    let ejected_now = group
        .iter()
        .filter(|member| member.stats.health.is_ejected(now))
        .count();
    let allowed = group.len() * config.max_ejected_percent as usize / 100;
    if ejected_now + 1 > allowed {
        return Verdict::KeptByShareLimit;
    }
    let previous = health.ejections.fetch_add(1, Ordering::Relaxed);
    let length = ejection_length(config, previous);
    health.consecutive_failures.store(0, Ordering::Relaxed);
    let until = health.millis(now) + length.as_millis() as u64;
    health.ejected_until.store(until, Ordering::Relaxed);
    // Back in service when the ejection ends: slow start ramps it from then.
    health.restart_at(until);
    Verdict::Ejected(length)
}

/// `base × 2^previous`, capped.
pub(crate) fn ejection_length(config: &OutlierConfig, previous: u32) -> Duration {
    let factor = 1u32.checked_shl(previous.min(20)).unwrap_or(u32::MAX);
    config
        .base_ejection
        .checked_mul(factor)
        .unwrap_or(config.max_ejection)
        .min(config.max_ejection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults;

    fn group(count: usize, now: Instant) -> Vec<Endpoint> {
        crate::endpoint::test_endpoints(count, now)
    }

    #[test]
    fn five_failures_eject_and_a_success_resets_the_streak() {
        let now = Instant::now();
        let group = group(4, now);
        let config = defaults::OUTLIER;
        for _ in 0..4 {
            assert_eq!(
                record(&config, &group[0].stats.health, &group, true, || now),
                Verdict::Nothing
            );
        }
        assert_eq!(
            record(&config, &group[0].stats.health, &group, false, || now),
            Verdict::Nothing
        );
        for _ in 0..4 {
            assert_eq!(
                record(&config, &group[0].stats.health, &group, true, || now),
                Verdict::Nothing
            );
        }
        assert_eq!(
            record(&config, &group[0].stats.health, &group, true, || now),
            Verdict::Ejected(Duration::from_secs(30))
        );
        assert!(!group[0].stats.health.is_eligible(now));
        assert!(group[0]
            .stats
            .health
            .is_ejected(now + Duration::from_secs(29)));
        assert!(group[0]
            .stats
            .health
            .is_eligible(now + Duration::from_secs(31)));
    }

    #[test]
    fn an_endpoint_back_from_ejection_starts_again() {
        let created = Instant::now();
        let group = group(4, created);
        let health = &group[0].stats.health;
        let now = created + Duration::from_secs(100);
        assert_eq!(health.since_start(now), Duration::from_secs(100));
        for _ in 0..5 {
            record(&defaults::OUTLIER, health, &group, true, || now);
        }
        // Not started while ejected; counted from the end of the ejection.
        assert_eq!(health.since_start(now), Duration::ZERO);
        let back = now + Duration::from_secs(30);
        assert!(health.is_eligible(back));
        assert_eq!(health.since_start(back), Duration::ZERO);
        assert_eq!(
            health.since_start(back + Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn repeated_ejections_grow_up_to_the_cap() {
        let config = defaults::OUTLIER;
        let lengths: Vec<u64> = (0..6)
            .map(|n| ejection_length(&config, n).as_secs())
            .collect();
        assert_eq!(lengths, [30, 60, 120, 240, 300, 300]);
        assert_eq!(ejection_length(&config, u32::MAX).as_secs(), 300);

        let start = Instant::now();
        let group = group(2, start);
        let mut now = start;
        for expected in [30, 60, 120] {
            let mut verdict = Verdict::Nothing;
            for _ in 0..5 {
                verdict = record(&config, &group[0].stats.health, &group, true, || now);
            }
            assert_eq!(verdict, Verdict::Ejected(Duration::from_secs(expected)));
            now += Duration::from_secs(expected + 1);
        }
    }

    #[test]
    fn never_more_than_the_share_limit() {
        let now = Instant::now();
        let group = group(4, now);
        let config = defaults::OUTLIER;
        let eject = |index: usize| {
            let mut verdict = Verdict::Nothing;
            for _ in 0..5 {
                verdict = record(&config, &group[index].stats.health, &group, true, || now);
            }
            verdict
        };
        assert!(matches!(eject(0), Verdict::Ejected(_)));
        assert!(matches!(eject(1), Verdict::Ejected(_)));
        // Two of four is the 50 % limit.
        assert_eq!(eject(2), Verdict::KeptByShareLimit);
        assert!(group[2].stats.health.is_eligible(now));
    }

    #[test]
    fn a_single_endpoint_group_is_never_ejected_at_fifty_percent() {
        let now = Instant::now();
        let group = group(1, now);
        let config = defaults::OUTLIER;
        for _ in 0..10 {
            assert_ne!(
                record(&config, &group[0].stats.health, &group, true, || now),
                Verdict::Ejected(Duration::from_secs(30))
            );
        }
    }

    #[test]
    fn disabled_detection_never_ejects() {
        let now = Instant::now();
        let group = group(4, now);
        let config = OutlierConfig {
            enabled: false,
            ..defaults::OUTLIER
        };
        for _ in 0..50 {
            assert_eq!(
                record(&config, &group[0].stats.health, &group, true, || now),
                Verdict::Nothing
            );
        }
    }
}
