//! Active health checks, the decision: an endpoint flips unhealthy after
//! `unhealthy_threshold` failed probes in a row and healthy again after
//! `healthy_threshold` passes in a row. Endpoints start healthy, so enabling
//! checks never causes a 503 at start. An endpoint that comes back is, for
//! slow start, starting again.
//!
//! Sending the probes on a timer is the driver's job (`health_check`), which
//! hands each result to [`apply_probe`].

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use crate::config::HealthCheckConfig;
use crate::endpoint::Health;

/// Applies one probe result; returns the new healthy state when it flipped.
pub(crate) fn apply_probe(
    health: &Health,
    config: &HealthCheckConfig,
    passed: bool,
    now: Instant,
) -> Option<bool> {
    let streak = if passed {
        health
            .probe_streak
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.max(0).saturating_add(1))
            })
            .map_or(1, |s| s.max(0) + 1)
    } else {
        health
            .probe_streak
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.min(0).saturating_sub(1))
            })
            .map_or(-1, |s| s.min(0) - 1)
    };
    let healthy = health.active_healthy.load(Ordering::Relaxed);
    if !healthy && passed && streak >= config.healthy_threshold as i32 {
        health.active_healthy.store(true, Ordering::Relaxed);
        // Back in service: slow start ramps it from now.
        health.restart_at(health.millis(now));
        return Some(true);
    }
    if healthy && !passed && -streak >= config.unhealthy_threshold as i32 {
        health.active_healthy.store(false, Ordering::Relaxed);
        return Some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn check() -> HealthCheckConfig {
        HealthCheckConfig {
            path: "/healthz".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }

    #[test]
    fn thresholds_flip_the_state() {
        let now = Instant::now();
        let health = Health::new(now);
        let check = check();
        let apply_probe = |health: &Health, check: &HealthCheckConfig, passed: bool| {
            apply_probe(health, check, passed, now)
        };
        assert_eq!(apply_probe(&health, &check, false), None);
        assert_eq!(apply_probe(&health, &check, false), None);
        // A pass in between restarts the failure streak.
        assert_eq!(apply_probe(&health, &check, true), None);
        assert_eq!(apply_probe(&health, &check, false), None);
        assert_eq!(apply_probe(&health, &check, false), None);
        assert_eq!(apply_probe(&health, &check, false), Some(false));
        assert!(!health.is_actively_healthy());
        assert_eq!(apply_probe(&health, &check, false), None);
        assert_eq!(apply_probe(&health, &check, true), None);
        assert_eq!(apply_probe(&health, &check, true), Some(true));
        assert!(health.is_actively_healthy());
    }

    #[test]
    fn an_endpoint_back_from_failing_checks_starts_again() {
        let created = Instant::now();
        let health = Health::new(created);
        let check = check();
        let later = created + Duration::from_secs(60);
        for _ in 0..3 {
            apply_probe(&health, &check, false, later);
        }
        // Failing and passing probes that flip nothing leave the start alone.
        assert_eq!(health.since_start(later), Duration::from_secs(60));
        let back = later + Duration::from_secs(10);
        apply_probe(&health, &check, true, back);
        assert_eq!(apply_probe(&health, &check, true, back), Some(true));
        assert_eq!(
            health.since_start(back + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
