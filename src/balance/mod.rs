//! Choosing an endpoint within a group.
//!
//! The default is power of two choices (P2C) over a peak-EWMA cost, the
//! scheme of Finagle and linkerd: pick two endpoints at random and send to the
//! cheaper one, where cost = latency estimate × (in-flight + 1). Comparing two
//! random candidates instead of scanning for the global minimum is what keeps
//! many proxies from all stampeding onto the same "best" endpoint (Mitzenmacher,
//! *The Power of Two Choices in Randomized Load Balancing*, 2001), and it costs
//! O(1) whatever the group size.
//!
//! - [`Balancer::P2cEwma`]: P2C over the peak-EWMA cost (see [`crate::ewma`]); an
//!   endpoint with no sample yet is compared at its partner's estimate, so a
//!   new replica is tried at once. Costs are compared with a resolution
//!   (estimates under 1 ms count as 1 ms, costs within 25 % are a tie, which
//!   fewer in-flight requests or the random draw settles), so measurement
//!   noise never decides the picks between identical replicas.
//! - [`Balancer::LeastRequest`]: P2C over the in-flight count alone.
//! - [`Balancer::RoundRobin`]: each endpoint in turn, ignoring load.
//!
//! Picks skip endpoints that are not eligible (failing active checks or
//! ejected, see `health`) and endpoints this request already tried. When no
//! endpoint is eligible the pick falls back to all of them (panic mode, as
//! Envoy does): trying a possibly-down endpoint beats a certain 503.
//!
//! A pick reads atomics only: no lock, no allocation, no worker task. This
//! module does not decide which group a request goes to (`split`) nor record
//! outcomes (`endpoint`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::config::BalancerKind;
use crate::endpoint::Endpoint;

thread_local! {
    // One generator per thread: picks never contend on shared random state.
    static RNG: RefCell<fastrand::Rng> = RefCell::new(fastrand::Rng::new());
}

#[derive(Debug)]
pub enum Balancer {
    P2cEwma,
    LeastRequest,
    RoundRobin { next: AtomicUsize },
}

impl Balancer {
    pub fn new(kind: BalancerKind) -> Self {
        match kind {
            BalancerKind::P2cEwma => Self::P2cEwma,
            BalancerKind::LeastRequest => Self::LeastRequest,
            BalancerKind::RoundRobin => Self::RoundRobin {
                // Start replicas of the proxy at different offsets.
                next: AtomicUsize::new(fastrand::usize(..1024)),
            },
        }
    }

    /// Picks an endpoint, or `None` when there is none.
    pub fn pick<'a>(&self, endpoints: &'a [Endpoint], now: Instant) -> Option<&'a Endpoint> {
        self.pick_excluding(endpoints, now, &[])
            .map(|pick| pick.endpoint)
    }

    /// Picks an endpoint not in `tried`, preferring eligible ones.
    pub fn pick_excluding<'a>(
        &self,
        endpoints: &'a [Endpoint],
        now: Instant,
        tried: &[SocketAddr],
    ) -> Option<Pick<'a>> {
        RNG.with(|rng| self.pick_with(endpoints, now, tried, &mut rng.borrow_mut()))
    }

    /// [`Balancer::pick_excluding`] with the random source passed in, for tests.
    pub fn pick_with<'a>(
        &self,
        endpoints: &'a [Endpoint],
        now: Instant,
        tried: &[SocketAddr],
        rng: &mut fastrand::Rng,
    ) -> Option<Pick<'a>> {
        let eligible = |endpoint: &Endpoint| {
            !tried.contains(&endpoint.address) && endpoint.stats.health.is_eligible(now)
        };
        if let Some(endpoint) = self.choose(endpoints, now, rng, &eligible) {
            return Some(Pick {
                endpoint,
                panic: false,
            });
        }
        // Panic mode is about health, not about what this request tried: when
        // some endpoint is eligible but already tried, this is a plain retry.
        let panic = !endpoints
            .iter()
            .any(|endpoint| endpoint.stats.health.is_eligible(now));
        let untried = |endpoint: &Endpoint| !tried.contains(&endpoint.address);
        self.choose(endpoints, now, rng, &untried)
            .map(|endpoint| Pick { endpoint, panic })
    }

    fn choose<'a>(
        &self,
        endpoints: &'a [Endpoint],
        now: Instant,
        rng: &mut fastrand::Rng,
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<&'a Endpoint> {
        let count = endpoints.len();
        if count == 0 {
            return None;
        }
        match self {
            Self::RoundRobin { next } => {
                let start = next.fetch_add(1, Ordering::Relaxed);
                (0..count)
                    .map(|offset| &endpoints[(start + offset) % count])
                    .find(|endpoint| usable(endpoint))
            }
            Self::P2cEwma | Self::LeastRequest => {
                let first = random_usable(endpoints, rng, usable, None)?;
                let Some(second) = random_usable(endpoints, rng, usable, Some(first)) else {
                    return Some(&endpoints[first]);
                };
                let (a, b) = (&endpoints[first], &endpoints[second]);
                let b_is_cheaper = match self {
                    Self::P2cEwma => second_is_better(a, b, now),
                    _ => b.in_flight() < a.in_flight(),
                };
                Some(if b_is_cheaper { b } else { a })
            }
        }
    }
}

/// Estimates below this compare as this: under a millisecond the
/// difference between replicas is measurement noise (one slower sample, a
/// scheduler hiccup), not service time, and must not decide the picks.
pub const RESOLUTION_MICROS: f64 = 1_000.0;

/// Costs within this fraction of the higher one are a tie.
pub const TIE_BAND: f64 = 0.25;

/// P2C over peak-EWMA with a resolution: true when `b` should get the
/// request rather than `a` (which was drawn first, at random).
///
/// cost = max(estimate, [`RESOLUTION_MICROS`]) × (in-flight + 1). A clear
/// difference (more than [`TIE_BAND`]) goes to the cheaper endpoint, so a
/// replica a few milliseconds slower than its siblings still gets almost
/// nothing. A tie goes to the one with fewer requests in flight, and an
/// exact tie to `a`, the first random draw: identical replicas share the
/// traffic evenly instead of by noise.
///
/// An endpoint not yet measured is compared at its partner's estimate
/// rather than at the default RTT: otherwise a new replica next to fast ones
/// waits for its 30 ms prior to decay below their sub-millisecond
/// estimates, and under light load gets nothing for a minute. Its in-flight
/// count still applies, so it gets its share, not a flood.
fn second_is_better(a: &Endpoint, b: &Endpoint, now: Instant) -> bool {
    let (a, b) = (a.stats.load(now), b.stats.load(now));
    let (estimate_a, estimate_b) = match (a.measured, b.measured) {
        (true, false) => (a.estimate_micros, a.estimate_micros),
        (false, true) => (b.estimate_micros, b.estimate_micros),
        _ => (a.estimate_micros, b.estimate_micros),
    };
    let cost_a = a.cost_at(estimate_a.max(RESOLUTION_MICROS));
    let cost_b = b.cost_at(estimate_b.max(RESOLUTION_MICROS));
    if (cost_a - cost_b).abs() <= TIE_BAND * cost_a.max(cost_b) {
        return b.in_flight < a.in_flight;
    }
    cost_b < cost_a
}

/// A picked endpoint; `panic` when none was eligible and health was ignored.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'a> {
    pub endpoint: &'a Endpoint,
    pub panic: bool,
}

/// A random usable index other than `not`: a uniform start, then the next
/// usable one after it. With every endpoint usable (the common case) that is
/// one random draw.
fn random_usable(
    endpoints: &[Endpoint],
    rng: &mut fastrand::Rng,
    usable: &dyn Fn(&Endpoint) -> bool,
    not: Option<usize>,
) -> Option<usize> {
    let count = endpoints.len();
    let available = count - usize::from(not.is_some());
    if available == 0 {
        return None;
    }
    // Draw among the indices other than `not`, then map past it.
    let mut start = rng.usize(..available);
    if let Some(not) = not {
        if start >= not {
            start += 1;
        }
    }
    (0..count)
        .map(|offset| (start + offset) % count)
        .find(|&index| Some(index) != not && usable(&endpoints[index]))
}

#[cfg(test)]
mod tests;
