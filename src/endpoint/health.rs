//! The health cells of one endpoint: whether active checks pass, whether
//! outlier detection ejected it, and since when it is back in service (for
//! slow start), as atomics.
//!
//! Only storage and reads: the rules that write these cells (thresholds,
//! ejection lengths, the share limit) are in `health`, and the ramp that
//! reads the start is in `balance`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

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
    /// Milliseconds since `epoch` (+1, as `ejected_until`) at which the
    /// endpoint last started taking traffic: its creation, the end of its
    /// latest ejection (set when it is ejected, so nothing has to run when
    /// the ejection ends), or its return to passing active checks. Slow
    /// start ramps its share from here; one atomic, so reading it costs a
    /// pick one load.
    pub(crate) started: AtomicU64,
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
            started: AtomicU64::new(1),
        }
    }

    /// How long the endpoint has been in service since it last started
    /// (see `started`); zero while an ejection is still running.
    pub fn since_start(&self, now: Instant) -> Duration {
        let started = self.started.load(Ordering::Relaxed);
        Duration::from_millis(self.millis(now).saturating_sub(started))
    }

    /// The endpoint starts taking traffic again at `at` (a value of
    /// [`Self::millis`]): slow start ramps it up from there.
    pub(crate) fn restart_at(&self, at: u64) {
        self.started.store(at, Ordering::Relaxed);
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
