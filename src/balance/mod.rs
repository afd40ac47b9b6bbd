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
//! - [`Balancer::P2cEwma`]: P2C over the peak-EWMA cost (see [`ewma`]).
//! - [`Balancer::LeastRequest`]: P2C over the in-flight count alone.
//! - [`Balancer::RoundRobin`]: each endpoint in turn, ignoring load.
//!
//! A pick reads atomics only: no lock, no allocation, no worker task. This
//! module does not decide which group a request goes to (`split`) nor record
//! outcomes (`endpoint`).

pub mod ewma;

use std::cell::RefCell;
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
    pub fn new(kind: BalancerKind) -> Balancer {
        match kind {
            BalancerKind::P2cEwma => Balancer::P2cEwma,
            BalancerKind::LeastRequest => Balancer::LeastRequest,
            BalancerKind::RoundRobin => Balancer::RoundRobin {
                // Start replicas of the proxy at different offsets.
                next: AtomicUsize::new(fastrand::usize(..1024)),
            },
        }
    }

    /// Picks an endpoint, or `None` when there is none.
    pub fn pick<'a>(&self, endpoints: &'a [Endpoint], now: Instant) -> Option<&'a Endpoint> {
        RNG.with(|rng| self.pick_with(endpoints, now, &mut rng.borrow_mut()))
    }

    /// [`Balancer::pick`] with the random source passed in, for tests.
    pub fn pick_with<'a>(
        &self,
        endpoints: &'a [Endpoint],
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> Option<&'a Endpoint> {
        match endpoints.len() {
            0 => None,
            1 => Some(&endpoints[0]),
            count => match self {
                Balancer::RoundRobin { next } => {
                    Some(&endpoints[next.fetch_add(1, Ordering::Relaxed) % count])
                }
                Balancer::P2cEwma => {
                    let (a, b) = two_distinct(count, rng);
                    let (a, b) = (&endpoints[a], &endpoints[b]);
                    Some(if b.stats.cost(now) < a.stats.cost(now) {
                        b
                    } else {
                        a
                    })
                }
                Balancer::LeastRequest => {
                    let (a, b) = two_distinct(count, rng);
                    let (a, b) = (&endpoints[a], &endpoints[b]);
                    Some(if b.in_flight() < a.in_flight() { b } else { a })
                }
            },
        }
    }
}

/// Two different indices below `count` (at least 2), uniformly.
fn two_distinct(count: usize, rng: &mut fastrand::Rng) -> (usize, usize) {
    let first = rng.usize(..count);
    let mut second = rng.usize(..count - 1);
    if second >= first {
        second += 1;
    }
    (first, second)
}

#[cfg(test)]
mod tests;
