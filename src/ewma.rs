//! The peak-EWMA latency estimator of one endpoint.
//!
//! An exponentially weighted moving average of round-trip times that jumps up
//! at once when a response is slower than the estimate ("peak") and decays
//! back with a time constant otherwise. This is the estimator of Finagle,
//! linkerd and tower's `PeakEwma`, with three deliberate differences:
//! - A peak takes two responses in a row slower than the estimate, and one
//!   peak at most doubles it (or adds 1 ms, the balancer's resolution, when
//!   that is more). With sub-millisecond latencies a peak taken whole from
//!   one sample let a scheduler hiccup take a replica out of rotation until
//!   it decayed, tens of seconds at τ = 10 s; an endpoint that stays slow
//!   still gets there within a few responses. Failures (charged the failure
//!   penalty) and hung requests still jump at once.
//! - The configured default RTT is only a prior: the first real sample replaces
//!   it rather than being blended in, so a fresh proxy does not spend one decay
//!   period ranking fast and slow endpoints alike. Like any idle estimate, the
//!   prior decays, so an endpoint never tried is tried eventually.
//! - Reads never write. An idle endpoint (nothing in flight) reads as its
//!   estimate decayed towards zero by the time since its last sample, which is
//!   what makes a recovered endpoint get probed again. An endpoint with
//!   requests in flight does not decay: a hung endpoint must not look cheap.
//!
//! State is one `AtomicU64` updated by compare-and-swap, so picks and updates
//! from any number of threads take no lock. Time is passed in, so tests can
//! drive it. This type knows nothing about requests or balancers; `endpoint`
//! feeds it and `balance` reads it. It sits below both, depending on nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Marks an estimator that has not seen a sample yet.
const UNMEASURED: u32 = ESTIMATE_BITS;
/// Estimates are kept in microseconds in 31 bits (35 minutes); cap just
/// below the marker.
const MAX_ESTIMATE_MICROS: u32 = ESTIMATE_BITS - 1;
const ESTIMATE_BITS: u32 = (1 << 31) - 1;
/// The 32nd bit: the last response was slower than the estimate, so the
/// next one that is too confirms a peak.
const ABOVE: u32 = 1 << 31;

#[derive(Debug)]
pub struct PeakEwma {
    epoch: Instant,
    decay_millis: f64,
    default_rtt_micros: f64,
    /// High 32 bits: [`ABOVE`] and the estimate in microseconds (or
    /// UNMEASURED). Low 32 bits: time of the last sample in milliseconds
    /// since `epoch`, wrapping after 49 days; only differences are used.
    state: AtomicU64,
}

impl PeakEwma {
    pub fn new(decay: Duration, default_rtt: Duration, now: Instant) -> Self {
        Self {
            epoch: now,
            decay_millis: (decay.as_secs_f64() * 1000.0).max(1.0),
            default_rtt_micros: default_rtt.as_secs_f64() * 1e6,
            state: AtomicU64::new(pack(UNMEASURED, false, 0)),
        }
    }

    /// The current estimate in microseconds. `idle` means nothing is in
    /// flight to this endpoint, which lets the estimate decay.
    pub fn estimate_micros(&self, now: Instant, idle: bool) -> f64 {
        let (estimate, _, stamp) = unpack(self.state.load(Ordering::Relaxed));
        // An endpoint never measured decays from the default like any idle
        // one (its stamp is its creation), so a new replica next to faster
        // ones is still tried after a while, even under light load.
        let estimate = if estimate == UNMEASURED {
            self.default_rtt_micros
        } else {
            f64::from(estimate)
        };
        if !idle {
            return estimate;
        }
        let elapsed = self.millis_since_epoch(now).wrapping_sub(stamp);
        estimate * (-f64::from(elapsed) / self.decay_millis).exp()
    }

    /// True once a real sample has replaced the default.
    pub fn is_measured(&self) -> bool {
        unpack(self.state.load(Ordering::Relaxed)).0 != UNMEASURED
    }

    /// Records the round-trip time of a response. A peak takes two
    /// responses in a row slower than the estimate, and raises it at most
    /// to [`peak_limit`]: one slow sample among fast ones (a pause, a
    /// scheduler hiccup, a cold cache) must not take the endpoint out of
    /// rotation for tens of seconds, while an endpoint that stays slow
    /// reaches its real estimate within a few responses.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        self.update(rtt, now, true);
    }

    /// Records a failure's charge (or the time a request waited before it
    /// was abandoned): a peak taken whole, so an endpoint that fails or
    /// hangs grows expensive at once.
    pub fn observe_failure(&self, rtt: Duration, now: Instant) {
        self.update(rtt, now, false);
    }

    fn update(&self, rtt: Duration, now: Instant, bounded_peak: bool) {
        let rtt_micros = (rtt.as_secs_f64() * 1e6).min(f64::from(MAX_ESTIMATE_MICROS));
        let now_millis = self.millis_since_epoch(now);
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (estimate, above, stamp) = unpack(current);
            let blend = || {
                let elapsed = f64::from(now_millis.wrapping_sub(stamp));
                let weight = (-elapsed / self.decay_millis).exp();
                f64::from(estimate) * weight + rtt_micros * (1.0 - weight)
            };
            let (next, next_above) = if estimate == UNMEASURED {
                (rtt_micros, false)
            } else if rtt_micros > f64::from(estimate) {
                if !bounded_peak {
                    (rtt_micros, false)
                } else if above {
                    (rtt_micros.min(peak_limit(f64::from(estimate))), false)
                } else {
                    // The first slow one: blended in, and remembered.
                    (blend(), true)
                }
            } else {
                (blend(), false)
            };
            let next = pack(next.round() as u32, next_above, now_millis);
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    fn millis_since_epoch(&self, now: Instant) -> u32 {
        // Truncation is the wrap-around documented on `state`.
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

/// How far one response's peak may raise an estimate, in microseconds:
/// double it, or add [`PEAK_STEP_MICROS`] when that is more. A sample below
/// the balancer's resolution (1 ms) then decides nothing, and a single
/// slow sample costs the endpoint at most a few seconds of decay.
fn peak_limit(estimate_micros: f64) -> f64 {
    (estimate_micros * 2.0).max(estimate_micros + PEAK_STEP_MICROS)
}

/// The smallest step a peak may take: the balancer's resolution.
const PEAK_STEP_MICROS: f64 = 1000.0;

fn pack(estimate_micros: u32, above: bool, stamp_millis: u32) -> u64 {
    let high = estimate_micros.min(ESTIMATE_BITS) | if above { ABOVE } else { 0 };
    (u64::from(high) << 32) | u64::from(stamp_millis)
}

fn unpack(state: u64) -> (u32, bool, u32) {
    let high = (state >> 32) as u32;
    (high & ESTIMATE_BITS, high & ABOVE != 0, state as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator(now: Instant) -> PeakEwma {
        PeakEwma::new(Duration::from_secs(10), Duration::from_millis(30), now)
    }

    #[test]
    fn unmeasured_reads_default_rtt_decaying_while_idle() {
        let now = Instant::now();
        let ewma = estimator(now);
        assert_eq!(ewma.estimate_micros(now, true), 30_000.0);
        let later = now + Duration::from_secs(10);
        assert_eq!(ewma.estimate_micros(later, false), 30_000.0);
        let decayed = ewma.estimate_micros(later, true);
        assert!(
            (decayed - 30_000.0 * (-1.0f64).exp()).abs() < 2.0,
            "{decayed}"
        );
    }

    #[test]
    fn first_sample_replaces_the_prior() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_micros(500), now);
        assert_eq!(ewma.estimate_micros(now, false), 500.0);
    }

    #[test]
    fn two_slower_responses_in_a_row_raise_the_estimate_at_most_to_double() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_millis(6), now);
        assert_eq!(ewma.estimate_micros(now, false), 6_000.0);
        // 40 ms after 6 ms: one response alone changes nothing (it is
        // blended in, with no time passed: no weight)...
        ewma.observe(Duration::from_millis(40), now);
        assert_eq!(ewma.estimate_micros(now, false), 6_000.0);
        // ...a second confirms the peak, which doubles the estimate, no
        // more; an endpoint that stays slow gets there in a few.
        for expected in [12_000.0, 12_000.0, 24_000.0, 24_000.0, 40_000.0] {
            ewma.observe(Duration::from_millis(40), now);
            assert_eq!(ewma.estimate_micros(now, false), expected);
        }
    }

    #[test]
    fn a_faster_response_between_two_slow_ones_cancels_the_peak() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_micros(300), now);
        for _ in 0..10 {
            ewma.observe(Duration::from_millis(50), now);
            ewma.observe(Duration::from_micros(300), now);
        }
        assert_eq!(ewma.estimate_micros(now, false), 300.0);
    }

    #[test]
    fn below_a_millisecond_a_peak_may_step_up_by_one_millisecond() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_micros(300), now);
        ewma.observe(Duration::from_millis(50), now);
        ewma.observe(Duration::from_millis(50), now);
        assert_eq!(ewma.estimate_micros(now, false), 1_300.0);
    }

    #[test]
    fn a_failure_charge_is_taken_whole() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_micros(300), now);
        ewma.observe_failure(Duration::from_secs(1), now);
        assert_eq!(ewma.estimate_micros(now, false), 1_000_000.0);
    }

    #[test]
    fn faster_samples_pull_the_estimate_down_with_the_time_constant() {
        let start = Instant::now();
        let ewma = estimator(start);
        ewma.observe(Duration::from_millis(40), start);
        // One time constant later, a 0 ms sample keeps e^-1 of the old estimate.
        let later = start + Duration::from_secs(10);
        ewma.observe(Duration::ZERO, later);
        let expected = 40_000.0 * (-1.0f64).exp();
        let got = ewma.estimate_micros(later, false);
        assert!(
            (got - expected).abs() < 2.0,
            "got {got}, expected {expected}"
        );
    }

    #[test]
    fn idle_estimate_decays_but_busy_one_does_not() {
        let start = Instant::now();
        let ewma = estimator(start);
        ewma.observe(Duration::from_millis(40), start);
        let later = start + Duration::from_secs(20);
        assert_eq!(ewma.estimate_micros(later, false), 40_000.0);
        let idle = ewma.estimate_micros(later, true);
        let expected = 40_000.0 * (-2.0f64).exp();
        assert!(
            (idle - expected).abs() < 2.0,
            "got {idle}, expected {expected}"
        );
    }

    #[test]
    fn huge_samples_saturate_instead_of_wrapping() {
        let now = Instant::now();
        let ewma = estimator(now);
        ewma.observe(Duration::from_secs(10_000), now);
        assert_eq!(
            ewma.estimate_micros(now, false),
            f64::from(MAX_ESTIMATE_MICROS)
        );
    }

    #[test]
    fn concurrent_observers_never_lose_the_peak() {
        let now = Instant::now();
        let ewma = std::sync::Arc::new(estimator(now));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let ewma = ewma.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        let micros = if thread == 0 && i == 5_000 {
                            90_000
                        } else {
                            100
                        };
                        if micros == 90_000 {
                            ewma.observe_failure(Duration::from_micros(micros), now);
                        } else {
                            ewma.observe(Duration::from_micros(micros), now);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // All samples share one timestamp, so nothing decays after the peak.
        assert_eq!(ewma.estimate_micros(now, false), 90_000.0);
    }
}
