//! One backend address and the accounting of requests sent to it.
//!
//! [`EndpointStats`] outlives snapshots: `state` carries it over by
//! (service, group, address) so a reload loses no latency history. The
//! [`InFlight`] guard does all per-request accounting by RAII:
//! - `InFlight::start` raises the in-flight count;
//! - `InFlight::respond` records the latency when the response headers
//!   arrive: the RTT into the peak-EWMA estimate and the latency histogram;
//! - `InFlight::end` counts the response when it ends, in the status-class
//!   counter, with the outcome the end decides (a body that broke off or
//!   stalled is a failure, and so is a gRPC failure status in the trailers);
//!   `InFlight::finish` does both at once for a try that ends at its headers
//!   (failed, or retried);
//! - dropping the guard lowers the in-flight count. The proxy keeps the guard
//!   inside the response body, so a request counts as in flight until its
//!   response body has been fully sent or abandoned.
//!
//! So latency is *time to response headers*, while load is *requests whose
//! response has not ended*, and a response is counted when it ends. A
//! request cancelled before its response headers records its elapsed time
//! into the estimate (a hung endpoint must grow expensive) but no status; one
//! abandoned by the client after its headers is counted as its headers said.
//!
//! The endpoint's open connections are stored here too ([`pool`]), so they
//! outlive snapshots with it; `client` opens them and sends on them.

mod health;
mod pool;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;

use crate::ewma::PeakEwma;
use crate::metrics::{CodeClass, EndpointMetrics, MirrorSeries};
pub use health::Health;
pub use pool::{H2Slot, Pool};

/// An endpoint as a snapshot holds it: cheap to clone.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// `address` pre-rendered for request URIs, so no request formats it.
    pub authority: Authority,
    pub stats: Arc<EndpointStats>,
}

/// Long-lived per-endpoint state, shared by every snapshot that has the endpoint.
#[derive(Debug)]
pub struct EndpointStats {
    pub ewma: PeakEwma,
    pub metrics: EndpointMetrics,
    /// The series of mirrored copies, bound when a snapshot first makes the
    /// endpoint a mirror's target.
    pub mirror: std::sync::OnceLock<MirrorSeries>,
    /// Latency charged for a failed request, so a replica that fails fast does
    /// not look fast.
    pub failure_penalty: Duration,
    /// Idle HTTP/1.1 connections to the endpoint.
    pub pool: Pool,
    /// The multiplexed HTTP/2 connection, for services that speak h2 upstream.
    pub h2: H2Slot,
    /// Active check results and outlier ejection.
    pub health: Health,
    /// What the stats were created with; a reload that changes it gets fresh stats.
    pub settings: StatsSettings,
}

/// The config an endpoint's statistics depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSettings {
    pub ewma: crate::config::EwmaConfig,
    pub deployment: String,
}

impl EndpointStats {
    pub fn new(settings: StatsSettings, metrics: EndpointMetrics, now: Instant) -> Self {
        Self {
            ewma: PeakEwma::new(settings.ewma.decay, settings.ewma.default_rtt, now),
            metrics,
            mirror: std::sync::OnceLock::new(),
            failure_penalty: settings.ewma.failure_penalty,
            pool: Pool::default(),
            h2: H2Slot::default(),
            health: Health::new(now),
            settings,
        }
    }
}

/// How a request to an endpoint ended, as far as accounting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Response(http::StatusCode),
    /// A gRPC response whose `grpc-status` says the server failed.
    GrpcFailure,
    /// Connect failure, reset or timeout: no response.
    Failed,
}

impl Endpoint {
    pub fn new(address: SocketAddr, stats: Arc<EndpointStats>) -> Self {
        let authority = Authority::try_from(address.to_string().as_str())
            .expect("a socket address is a valid authority");
        Self {
            address,
            authority,
            stats,
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.stats.in_flight()
    }
}

impl EndpointStats {
    pub fn in_flight(&self) -> u64 {
        self.metrics.in_flight.get().max(0) as u64
    }

    /// The balancer's cost: latency estimate times (in-flight + 1), in microseconds.
    pub fn cost(&self, now: Instant) -> f64 {
        self.load(now).cost()
    }

    /// What the balancer reads of the endpoint, each atomic once.
    pub fn load(&self, now: Instant) -> Load {
        let in_flight = self.in_flight();
        Load {
            estimate_micros: self.ewma.estimate_micros(now, in_flight == 0),
            measured: self.ewma.is_measured(),
            in_flight,
        }
    }
}

/// An endpoint's latency estimate and in-flight count as read for one pick.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub estimate_micros: f64,
    /// False while the estimate is still the configured default.
    pub measured: bool,
    pub in_flight: u64,
}

impl Load {
    /// Estimate × (in-flight + 1).
    pub fn cost(&self) -> f64 {
        self.cost_at(self.estimate_micros)
    }

    /// The cost with another estimate in place of this one.
    pub fn cost_at(&self, estimate_micros: f64) -> f64 {
        estimate_micros * (self.in_flight + 1) as f64
    }
}

/// Accounting guard of one request to one endpoint; see the module docs.
#[derive(Debug)]
pub struct InFlight {
    stats: Arc<EndpointStats>,
    started: Instant,
    phase: Phase,
    /// A mirrored copy: counted in the endpoint's mirror series, not in the
    /// series of its own traffic (nor the linkerd-compatible ones).
    mirror: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sent; no response yet.
    Waiting,
    /// The response headers arrived and were recorded; the response is
    /// counted when it ends, with what the headers said unless the end
    /// says otherwise.
    Responded(Outcome),
    /// Counted, or cancelled.
    Done,
}

impl Outcome {
    fn code(self) -> CodeClass {
        match self {
            Self::Response(status) => CodeClass::of_status(status),
            Self::GrpcFailure => CodeClass::GrpcError,
            Self::Failed => CodeClass::Error,
        }
    }

    pub fn is_failure(self) -> bool {
        match self {
            Self::Response(status) => status.is_server_error(),
            Self::GrpcFailure | Self::Failed => true,
        }
    }
}

impl InFlight {
    pub fn start(endpoint: &Endpoint, now: Instant) -> Self {
        endpoint.stats.metrics.in_flight.inc();
        Self {
            stats: endpoint.stats.clone(),
            started: now,
            phase: Phase::Waiting,
            mirror: false,
        }
    }

    /// [`Self::start`] for a mirrored copy. Its latency and failures still
    /// move the endpoint's estimate and in-flight count: they are load the
    /// endpoint carries.
    pub fn start_mirror(endpoint: &Endpoint, now: Instant) -> Self {
        let mut in_flight = Self::start(endpoint, now);
        in_flight.mirror = true;
        in_flight
    }

    /// Where this request's latency and status are counted: None for a
    /// copy to an endpoint whose mirror series were never bound.
    fn series(&self) -> Option<(&prometheus::Histogram, &crate::metrics::CodeCounters)> {
        if self.mirror {
            let series = self.stats.mirror.get()?;
            Some((&series.duration, &series.requests))
        } else {
            Some((&self.stats.metrics.duration, &self.stats.metrics.requests))
        }
    }

    fn linkerd(&self) -> Option<&crate::metrics::LinkerdMetrics> {
        if self.mirror {
            None
        } else {
            self.stats.metrics.linkerd.as_ref()
        }
    }

    /// Records a try that ends here (it failed, or its response is not
    /// handed on): latency and count at once. Later calls are ignored.
    pub fn finish(&mut self, outcome: Outcome, now: Instant) {
        self.respond(outcome, now);
        self.end(outcome, || now);
    }

    /// The response headers arrived: records the latency (into the
    /// estimate, with the failure penalty when `outcome` is a failure, and
    /// into the histograms). The response is counted by [`Self::end`], or
    /// with `outcome` when the guard is dropped first.
    pub fn respond(&mut self, outcome: Outcome, now: Instant) {
        if self.phase != Phase::Waiting {
            return;
        }
        self.phase = Phase::Responded(outcome);
        let elapsed = now.saturating_duration_since(self.started);
        let metrics = &self.stats.metrics;
        if outcome.is_failure() {
            self.charge_failure(now);
        } else {
            self.stats.ewma.observe(elapsed, now);
            metrics
                .ewma_seconds
                .set(self.stats.ewma.estimate_micros(now, false) / 1e6);
        }
        if let Some((duration, _)) = self.series() {
            duration.observe(elapsed.as_secs_f64());
        }
        if let Some(linkerd) = self.linkerd() {
            linkerd.latency(elapsed);
        }
    }

    /// Charges a failure into the estimate: the time it took, at least the
    /// failure penalty.
    fn charge_failure(&self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.started);
        self.stats
            .ewma
            .observe_failure(elapsed.max(self.stats.failure_penalty), now);
        self.stats
            .metrics
            .ewma_seconds
            .set(self.stats.ewma.estimate_micros(now, false) / 1e6);
    }

    /// The response ended as `outcome`: counts it once. A failure the
    /// headers did not show (the body broke off or stalled, a gRPC status
    /// in the trailers) charges the failure penalty at `now`, which only
    /// that asks for.
    pub fn end(&mut self, outcome: Outcome, now: impl FnOnce() -> Instant) {
        let Phase::Responded(at_headers) = self.phase else {
            return;
        };
        self.phase = Phase::Done;
        let failed = outcome.is_failure();
        if failed && !at_headers.is_failure() {
            self.charge_failure(now());
        }
        if let Some((_, requests)) = self.series() {
            requests.inc(outcome.code());
        }
        if let Some(linkerd) = self.linkerd() {
            linkerd.response(failed);
        }
    }

    /// The outcome the response headers showed, once they arrived.
    pub fn outcome_at_headers(&self) -> Option<Outcome> {
        match self.phase {
            Phase::Responded(outcome) => Some(outcome),
            Phase::Waiting | Phase::Done => None,
        }
    }

    /// Leaves `setup` (opening the connection) out of this request's
    /// latency sample: it is not the endpoint's service time, and one slow
    /// first connection must not cost a replica its traffic.
    pub fn exclude_setup(&mut self, setup: std::time::Duration) {
        self.started += setup;
    }

    /// The request failed through no fault of the endpoint (the client went
    /// away mid-body): record nothing against it.
    pub fn cancel(&mut self) {
        self.phase = Phase::Done;
    }

    /// The endpoint this guard accounts for.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        match self.phase {
            // Cancelled before any response: the time waited still counts,
            // fully, so a hung endpoint grows expensive.
            Phase::Waiting => {
                let now = Instant::now();
                self.stats
                    .ewma
                    .observe_failure(now.saturating_duration_since(self.started), now);
            }
            // The client went away before the response ended: the headers'
            // verdict stands, it was not the endpoint's failure.
            Phase::Responded(outcome) => self.end(outcome, Instant::now),
            Phase::Done => {}
        }
        self.stats.metrics.in_flight.dec();
    }
}

/// Endpoints on 127.0.0.1:9000.. with default settings, for unit tests.
#[cfg(test)]
pub(crate) fn test_endpoints(count: usize, now: Instant) -> Vec<Endpoint> {
    let metrics = crate::metrics::Metrics::new(&[1.0]);
    (0..count)
        .map(|i| {
            let address: SocketAddr = format!("127.0.0.1:{}", 9000 + i)
                .parse()
                .expect("valid address");
            let settings = StatsSettings {
                ewma: crate::config::EwmaConfig {
                    decay: Duration::from_secs(10),
                    default_rtt: Duration::from_millis(30),
                    failure_penalty: Duration::from_secs(1),
                },
                deployment: "svc-stable".into(),
            };
            let stats = EndpointStats::new(
                settings,
                metrics.endpoint("svc", "stable", &address.to_string()),
                now,
            );
            Endpoint::new(address, Arc::new(stats))
        })
        .collect()
}
