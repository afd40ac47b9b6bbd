//! The health cells of one endpoint: whether active checks pass and whether
//! outlier detection ejected it, as atomics.
//!
//! Only storage and reads: the rules that write these cells (thresholds,
//! ejection lengths, the share limit) are in `health`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

/// Health of one endpoint; lives in its `EndpointStats`, so it survives reloads.
/// Written by `health` (outlier detection and active checks), read by
/// `balance`.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    /// False once active checks failed `unhealthy_threshold` times in a row.
    pub(crate) active_healthy: AtomicBool,
    /// Consecutive active probe results: positive passes, negative failures.
    pub(crate) probe_streak: std::sync::atomic::AtomicI32,
    /// Milliseconds since `epoch` until which the endpoint is ejected; 0: not ejected.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) consecutive_failures: AtomicU32,
    /// Ejections so far; each one lasts longer.
    pub(crate) ejections: AtomicU32,
}

impl Health {
    pub fn new(now: Instant) -> Self {
        Self {
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

    pub(crate) fn millis(&self, now: Instant) -> u64 {
        // +1 so that "until" is never the 0 that means "not ejected".
        now.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }
}
