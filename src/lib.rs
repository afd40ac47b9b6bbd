//! luas: an L7 reverse proxy and load balancer.
//!
//! ```text
//! accept (server) ─▶ connection: h1/h2 detect, limits ─▶ proxy::handle(request)
//!     snapshot = state.load()                    one Arc clone, no lock
//!     route    = listener.routes.find(&request)  pure
//!     group    = service.split.pick_for(&head)   pure: override header, sticky key, weights
//!     endpoint = group.balancer.pick(now)        P2C over peak-EWMA cost, atomics only
//!     guard    = InFlight::start(endpoint)       in-flight +1; records RTT, histogram, counters
//!     response = client.send(endpoint, request)  pooled keep-alive, h1 or h2
//!     next     = retry::next(tried, policy, …)   pure: respond, try again, or fail
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
//! Modules are declared top-down, each using only those below it: the
//! binary's, the app that starts everything, the control plane that writes
//! or watches the state, then the data path in the order a request meets
//! it, then the ground everything stands on.

#![forbid(unsafe_code)]

// The binary: command line, `luas ctl`, the demo.
pub mod cli;
pub mod ctl;
pub mod demo;
// Putting it together: owns the state, the history and the access log.
pub mod app;
// Control: every writer of the state, and what watches it.
pub mod admin;
pub mod discovery;
pub mod health_check;
pub mod history;
pub mod reload;
pub mod rollout;
// The data path, in the order a request meets it: accept, handle, load the
// snapshot, route, pick a group, pick an eligible endpoint, decide on
// retries, send, account, stream the bodies, log.
pub mod access_log;
pub mod balance;
pub mod body;
pub mod client;
pub mod endpoint;
pub mod ewma;
pub mod health;
pub mod proxy;
pub mod retry;
pub mod route;
pub mod server;
pub mod split;
pub mod state;
// Ground: shutdown signals, TLS, metric families, the config.
pub mod config;
pub mod metrics;
pub mod shutdown;
pub mod tls;
