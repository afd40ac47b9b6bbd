//! luas: an L7 reverse proxy and load balancer.
//!
//! ```text
//! accept (server) ─▶ connection: h1/h2 detect, limits ─▶ proxy::handle(request)
//!     snapshot = state.load()                    one Arc clone, no lock
//!     route    = listener.routes.find(&request)  pure
//!     group    = service.split.pick(roll)        pure: weights
//!     endpoint = group.balancer.pick(now)        P2C over peak-EWMA cost, atomics only
//!     guard    = InFlight::start(endpoint)       in-flight +1; records RTT, histogram, counters
//!     response = client.send(endpoint, request)  pooled keep-alive, h1 or h2
//!     errors   → ProxyError::into_response       the only place an error becomes a status
//! ```
//!
//! Glossary, one vocabulary from YAML keys to metric labels:
//! - **listener**: an address luas accepts HTTP on, with an ordered route table.
//! - **route**: match conditions (host, path prefix, headers) naming a service.
//! - **service**: a set of version groups with weights and one balancer policy.
//! - **group**: one version of a service (stable, canary, …) with its endpoints,
//!   listed or discovered through DNS.
//! - **endpoint**: one backend address, with its latency estimate and metrics.
//!
//! Modules are declared in the order a request meets them.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod app;
pub mod balance;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod discovery;
pub mod endpoint;
pub mod ewma;
pub mod health;
pub mod health_check;
pub mod history;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod rollout;
pub mod route;
pub mod server;
pub mod shutdown;
pub mod split;
pub mod state;
pub mod tls;
