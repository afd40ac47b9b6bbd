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
//! With `slow_start`, an endpoint that started (or came back) less than a
//! window ago gets only a fraction of its share, rising over the window; see
//! [`Balancer::pick_with`] for how that applies to every balancer.
//!
//! A pick reads atomics only: no lock, no allocation, no worker task. This
//! module does not decide which group a request goes to (`split`) nor record
//! outcomes (`endpoint`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::config::{BalancerKind, SlowStartConfig};
use crate::endpoint::Endpoint;

thread_local! {
    // One generator per thread: picks never contend on shared random state.
    static RNG: RefCell<fastrand::Rng> = RefCell::new(fastrand::Rng::new());
}

/// How a group picks its endpoints: the policy, and slow start if configured.
#[derive(Debug)]
pub struct Balancer {
    kind: Kind,
    slow_start: Option<SlowStartConfig>,
}

#[derive(Debug)]
enum Kind {
    P2cEwma,
    LeastRequest,
    RoundRobin { next: AtomicUsize },
}

/// Picks redrawn at most, after the first, when slow start turns a pick
/// down; then the last one stands. Enough that the cap hardly bends the
/// shares (an endpoint ramping at 0.1 next to one sibling gets 9.2 % of the
/// picks for the 9.1 % of 0.1 / 1.1, where 4 redraws would give it 10.8 %),
/// few enough that a group in which every endpoint is ramping (all new at
/// start) pays little for it.
const MAX_REDRAWS: usize = 8;

impl Balancer {
    pub fn new(kind: BalancerKind) -> Self {
        let kind = match kind {
            BalancerKind::P2cEwma => Kind::P2cEwma,
            BalancerKind::LeastRequest => Kind::LeastRequest,
            BalancerKind::RoundRobin => Kind::RoundRobin {
                // Start replicas of the proxy at different offsets.
                next: AtomicUsize::new(fastrand::usize(..1024)),
            },
        };
        Self {
            kind,
            slow_start: None,
        }
    }

    /// Ramps the share of endpoints that started less than `slow_start.window` ago.
    pub fn with_slow_start(mut self, slow_start: Option<SlowStartConfig>) -> Self {
        self.slow_start = slow_start;
        self
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
    ///
    /// Slow start gives an endpoint ramping at factor f (see
    /// [`SlowStartConfig::factor`]) f of its share, as Envoy's weight × f
    /// does, with every balancer:
    /// - An endpoint picked while ramping is kept with probability f, else
    ///   the balancer picks again (at most [`MAX_REDRAWS`] times). A redraw
    ///   starts over from the same distribution, so each endpoint keeps f of
    ///   the picks it would get, renormalised over the group. Round-robin
    ///   advances its turn on every draw, so each endpoint still gets 1/N of
    ///   the draws and keeps f of them; least-request and p2c-ewma draw their
    ///   two candidates uniformly, so among idle endpoints the choice is
    ///   uniform and f scales the chance of being picked exactly.
    /// - Under load, least-request and p2c-ewma would give part of that cut
    ///   back: a ramping endpoint has fewer requests in flight, so it wins
    ///   more of its comparisons (measured: 9 % instead of 3 % at f = 0.1
    ///   next to three others). So in the comparison it also counts each of
    ///   its requests in flight 1/f times, which holds its load, and with it
    ///   its share, near f of its siblings'. Scaling its whole cost by 1/f
    ///   would not do: idle endpoints would then never tie, the ramping one
    ///   would lose every comparison and get nothing, whatever f.
    ///
    /// When every endpoint is ramping at the same factor (all new at start)
    /// the shares are unchanged: there is no warmer endpoint to send the
    /// traffic to. Without slow start all this costs one branch per
    /// endpoint looked at; past its window, one atomic load more.
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
        if let Some(endpoint) = self.choose_ramped(endpoints, now, rng, &eligible) {
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
        self.choose_ramped(endpoints, now, rng, &untried)
            .map(|endpoint| Pick { endpoint, panic })
    }

    /// [`Self::choose`], with picks of ramping endpoints kept at their
    /// slow-start factor (see [`Self::pick_with`]).
    fn choose_ramped<'a>(
        &self,
        endpoints: &'a [Endpoint],
        now: Instant,
        rng: &mut fastrand::Rng,
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<&'a Endpoint> {
        let mut picked = self.choose(endpoints, now, rng, usable)?;
        let Some(slow_start) = &self.slow_start else {
            return Some(picked);
        };
        for _ in 0..MAX_REDRAWS {
            let factor = slow_start.factor(picked.stats.health.since_start(now));
            if factor >= 1.0 || rng.f64() < factor {
                break;
            }
            picked = self.choose(endpoints, now, rng, usable)?;
        }
        Some(picked)
    }

    /// The share `endpoint` gets of its full share now: below 1 while it
    /// ramps up, 1 without slow start.
    fn factor(&self, endpoint: &Endpoint, now: Instant) -> f64 {
        match &self.slow_start {
            None => 1.0,
            Some(slow_start) => slow_start.factor(endpoint.stats.health.since_start(now)),
        }
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
        match &self.kind {
            Kind::RoundRobin { next } => {
                let start = next.fetch_add(1, Ordering::Relaxed);
                (0..count)
                    .map(|offset| &endpoints[(start + offset) % count])
                    .find(|endpoint| usable(endpoint))
            }
            Kind::P2cEwma | Kind::LeastRequest => {
                let first = random_usable(endpoints, rng, usable, None)?;
                let Some(second) = random_usable(endpoints, rng, usable, Some(first)) else {
                    return Some(&endpoints[first]);
                };
                let (a, b) = (&endpoints[first], &endpoints[second]);
                let factors = (self.factor(a, now), self.factor(b, now));
                let b_is_cheaper = match self.kind {
                    Kind::P2cEwma => second_is_better(a, b, now, factors),
                    _ => b.in_flight() as f64 / factors.1 < a.in_flight() as f64 / factors.0,
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
///
/// `factors` are the two endpoints' slow-start factors (1 when not
/// ramping): a ramping endpoint counts each request in flight 1/f times.
fn second_is_better(a: &Endpoint, b: &Endpoint, now: Instant, factors: (f64, f64)) -> bool {
    let (a, b) = (a.stats.load(now), b.stats.load(now));
    let (estimate_a, estimate_b) = match (a.measured, b.measured) {
        (true, false) => (a.estimate_micros, a.estimate_micros),
        (false, true) => (b.estimate_micros, b.estimate_micros),
        _ => (a.estimate_micros, b.estimate_micros),
    };
    let in_flight_a = a.in_flight as f64 / factors.0;
    let in_flight_b = b.in_flight as f64 / factors.1;
    let cost_a = estimate_a.max(RESOLUTION_MICROS) * (in_flight_a + 1.0);
    let cost_b = estimate_b.max(RESOLUTION_MICROS) * (in_flight_b + 1.0);
    if (cost_a - cost_b).abs() <= TIE_BAND * cost_a.max(cost_b) {
        return in_flight_b < in_flight_a;
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
