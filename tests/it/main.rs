//! luas's integration tests, linked as one binary: each module below was a
//! test binary of its own, and linking twenty of them against the whole
//! dependency graph dominated the test build on a small machine. The tests
//! run as threads of one process, so none may rely on being alone in it: no
//! process-wide settings (environment, current directory, a global rustls
//! provider), no fixed ports, scratch paths named per test.
//!
//! Tests that need a program from outside Rust (Node.js and Chromium for the
//! dashboard, promtool, curl) are `#[ignore]`d with the program named, so a
//! plain `cargo test` passes on a fresh checkout; `bash scripts/test.sh`
//! installs the programs and runs them too (a second pass with `--ignored`).

mod api;
mod balancing;
mod canary;
mod cli;
mod ctl;
mod dashboard;
mod discovery;
mod embed;
mod endpoint_slices;
mod errors;
mod faults;
mod filters;
mod fleet;
mod grpc;
mod headers;
mod http1;
mod http1_differential;
mod http1_response_differential;
mod kube_api;
mod kubernetes;
mod limits;
mod log_format;
mod metrics;
mod mirror;
mod protocols;
mod reload;
mod retries;
mod rollout;
mod routing;
mod shutdown;
mod slow_start;
mod stalls;
mod state_file;
mod streaming;
mod support;
mod tls;
mod upstream;
