//! Endpoint health: which endpoints a balancer may pick.
//!
//! Two independent sources, both recorded in the endpoint's [`Health`]:
//! - [`outlier`]: passive detection from live traffic. Consecutive failures
//!   (connect error, reset, timeout, 5xx) eject an endpoint for a while that
//!   grows with each repeat; it comes back on its own when the time is up.
//! - [`active`]: optional probes (`health_check:`), `GET path` on every
//!   endpoint at an interval, flipping it unhealthy and healthy again after
//!   thresholds of consecutive results.
//!
//! An endpoint is *eligible* when it is actively healthy and not ejected. When
//! no endpoint of a group is eligible, the balancer tries them all anyway
//! (panic mode): answering 503 to everyone is worse than trying. This module
//! decides; `balance` reads eligibility, `proxy` reports outcomes.

pub mod active;
pub mod outlier;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

/// Health of one endpoint; lives in its `EndpointStats`, so it survives reloads.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    /// False once active checks failed `unhealthy_threshold` times in a row.
    active_healthy: AtomicBool,
    /// Consecutive active probe results: positive passes, negative failures.
    probe_streak: std::sync::atomic::AtomicI32,
    /// Milliseconds since `epoch` until which the endpoint is ejected; 0: not ejected.
    ejected_until: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Ejections so far; each one lasts longer.
    ejections: AtomicU32,
}

impl Health {
    pub fn new(now: Instant) -> Health {
        Health {
            epoch: now,
            active_healthy: AtomicBool::new(true),
            probe_streak: std::sync::atomic::AtomicI32::new(0),
            ejected_until: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
        }
    }

    /// May the balancer pick this endpoint now?
    pub fn is_eligible(&self, now: Instant) -> bool {
        self.active_healthy.load(Ordering::Relaxed) && !self.is_ejected(now)
    }

    pub fn is_ejected(&self, now: Instant) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && self.millis(now) < until
    }

    /// Forgets active check results: for a service whose checks were removed.
    pub fn clear_active(&self) {
        self.active_healthy.store(true, Ordering::Relaxed);
        self.probe_streak.store(0, Ordering::Relaxed);
    }

    pub fn is_actively_healthy(&self) -> bool {
        self.active_healthy.load(Ordering::Relaxed)
    }

    pub fn ejection_count(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    fn millis(&self, now: Instant) -> u64 {
        // +1 so that "until" is never the 0 that means "not ejected".
        now.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }
}
