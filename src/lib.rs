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

// --- The binary

/// Command line of the `luas` binary.
pub mod cli;

/// `luas ctl`: the admin API from the command line.
pub mod ctl;

/// `luas demo`: a proxy with its own backends.
pub mod demo;

// --- Putting it together

/// Builds and serves everything; owns the state, the history and the access log.
pub mod app;

/// luas as a `tower::Service`, for programs that embed it.
pub mod embed;

pub use embed::{MakeProxy, Proxy};
pub use proxy::response::ResponseBody;

// --- Control: every writer of the state, and what watches it

/// Admin API, dashboard, /metrics, /live, /ready.
pub(crate) mod admin;

/// Config file reload (SIGHUP, watch, API).
pub(crate) mod reload;

/// The rollout driver and its judge.
pub(crate) mod rollout;

/// Fleet mode: one canary state for every replica, through the Kubernetes API.
pub(crate) mod fleet;

/// The Kubernetes API client (credentials, namespace, request counts).
pub(crate) mod kubernetes;

/// DNS discovery of `dns` groups.
pub(crate) mod discovery;

/// EndpointSlice discovery of `kubernetes` groups.
pub(crate) mod endpoint_slices;

/// The active health check driver.
pub(crate) mod health_check;

/// Traffic history for the dashboard.
pub(crate) mod history;

// --- The data path, in the order a request meets it

/// Accept: TLS, HTTP/1.1 and HTTP/2, listener limits.
pub(crate) mod server;

/// Handle a request: route, forward, retry, respond.
pub(crate) mod proxy;

/// The snapshot and its one writer.
pub(crate) mod state;

/// Route matching.
pub mod route;

/// A route's filters: header edits, redirects, rewrites.
pub(crate) mod filter;

/// Group pick: override header, sticky key, weights.
pub mod split;

/// Endpoint pick: P2C over peak-EWMA cost.
pub mod balance;

/// Outlier ejection and health check thresholds.
pub(crate) mod health;

/// The retry decision and budget.
pub(crate) mod retry;

/// Sending to an endpoint over pooled connections.
pub(crate) mod client;

/// An endpoint: stats, pools, health cells, the InFlight guard.
pub mod endpoint;

/// The peak-EWMA latency estimator.
pub(crate) mod ewma;

/// The body sent to backends.
pub(crate) mod body;

/// Access log lines, written off the request path.
pub(crate) mod access_log;

// --- Ground

/// luas's HTTP/1.1 codec for client connections (hyper serves HTTP/2).
pub mod http1;

/// Shutdown signals and drain tokens.
pub mod shutdown;

/// TLS: listener certificates, upstream connectors.
pub(crate) mod tls;

/// Metric families.
pub mod metrics;

/// gRPC content type, statuses and deadlines.
pub mod grpc;

/// Parsing and validating the config.
pub mod config;
