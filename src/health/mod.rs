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
//! decides; the cells it writes ([`Health`](crate::endpoint::Health)) live
//! with the endpoint's other long-lived statistics, `balance` reads
//! eligibility from them, `proxy` reports outcomes.

pub(crate) mod active;
pub(crate) mod outlier;
