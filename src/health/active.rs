//! Active health checks, the decision: an endpoint flips unhealthy after
//! `unhealthy_threshold` failed probes in a row and healthy again after
//! `healthy_threshold` passes in a row. Endpoints start healthy, so enabling
//! checks never causes a 503 at start.
//!
//! Sending the probes on a timer is the driver's job (`health_check`), which
//! hands each result to [`apply_probe`].

use std::sync::atomic::Ordering;

use crate::config::HealthCheckConfig;
use crate::endpoint::Health;

/// Applies one probe result; returns the new healthy state when it flipped.
pub(crate) fn apply_probe(
    health: &Health,
    config: &HealthCheckConfig,
    passed: bool,
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
        let health = Health::new(Instant::now());
        let check = check();
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
}
