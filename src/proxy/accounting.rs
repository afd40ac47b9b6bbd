//! What a try costs its endpoint once it is over: the outcome into the
//! endpoint's counters (through its [`InFlight`] guard) and its outlier
//! streak, and the log line when that ejects it.
//!
//! A try that ends at its headers (it failed, or it is retried) is recorded
//! at once by `forward`, with [`record_outlier`]. A response handed to the
//! client is recorded when it ends: [`Accounting`] rides in the response
//! body, which tells it what the end was (a gRPC status in the trailers, a
//! body that broke off or stalled) and drops it when the body is done. It
//! holds the snapshot the request was routed in, so the outlier decision sees
//! the group as it was. Making responses is `response`'s, not this.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;

use crate::body::RequestProgress;
use crate::endpoint::{EndpointStats, InFlight, Outcome};
use crate::grpc::{self, StatusSet};
use crate::health::outlier::{self, Verdict};
use crate::state::{Group, Service, Snapshot};

/// Where a try went: the snapshot it was routed in, its service and group
/// (by index). Kept small: it rides in every response body, and the
/// endpoint's address is looked up only for a log line.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub snapshot: Arc<Snapshot>,
    pub service: u32,
    pub group: u32,
}

impl Target {
    fn service(&self) -> &Service {
        &self.snapshot.services[self.service as usize]
    }

    fn group(&self) -> &Group {
        &self.service().groups[self.group as usize]
    }
}

/// The address of the endpoint whose statistics these are, for a log line.
fn address_of(group: &Group, stats: &EndpointStats) -> Option<SocketAddr> {
    group
        .endpoints
        .iter()
        .find(|endpoint| std::ptr::eq(&*endpoint.stats, stats))
        .map(|endpoint| endpoint.address)
}

/// The accounting of a response on its way to the client; see the module
/// docs. Dropping it records the response with what is known by then.
#[derive(Debug)]
pub(crate) struct Accounting {
    /// Taken when the response is recorded (at the end, or by
    /// [`Accounting::settle`]).
    in_flight: Option<InFlight>,
    target: Target,
    /// What the response has come to so far: its headers' outcome, until
    /// the trailers or a failure of the body say otherwise.
    outcome: Outcome,
    /// gRPC statuses that fail the response, when its status is still to
    /// come in the trailers; empty for every other response.
    grpc_failures: StatusSet,
    /// A gRPC response whose status is still to come in the trailers.
    grpc_trailers: bool,
    /// The client's streamed body, if it streams: a failure while it is
    /// still open or after it failed is not (only) the endpoint's.
    request: Option<RequestProgress>,
}

impl Accounting {
    /// `in_flight` has recorded the response headers (`InFlight::respond`).
    /// `grpc_trailers` says the response is gRPC with its status still to
    /// come in the trailers.
    pub(crate) fn new(
        in_flight: InFlight,
        target: Target,
        grpc_trailers: bool,
        request: Option<RequestProgress>,
    ) -> Self {
        let outcome = in_flight
            .outcome_at_headers()
            .expect("the response headers were recorded");
        let grpc_failures = if grpc_trailers {
            target.service().grpc.failure_statuses
        } else {
            StatusSet::EMPTY
        };
        Self {
            in_flight: Some(in_flight),
            target,
            outcome,
            grpc_failures,
            grpc_trailers,
            request,
        }
    }

    /// The endpoint's address, for a log line.
    pub(crate) fn endpoint(&self) -> String {
        self.in_flight
            .as_ref()
            .and_then(|in_flight| address_of(self.target.group(), in_flight.stats()))
            .map_or_else(|| "?".to_owned(), |address| address.to_string())
    }

    /// A gRPC response whose status is still to come in the trailers: cut
    /// short, it ends with a status there rather than a reset.
    pub(crate) fn grpc_trailers(&self) -> bool {
        self.grpc_trailers
    }

    /// The response's trailers arrived.
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if self.grpc_failures.is_empty() {
            return;
        }
        if self.grpc_failures.failed(grpc::status(trailers)) {
            self.outcome = Outcome::GrpcFailure;
        }
    }

    /// The body broke off or stalled: the endpoint's failure, unless the
    /// client's own body failed first (the stream broke because of it).
    pub(crate) fn fail(&mut self) {
        if !self.client_body_failed() {
            self.outcome = Outcome::Failed;
        }
    }

    /// The client's body failed (too large, stalled, broken off).
    pub(crate) fn client_body_failed(&self) -> bool {
        self.request.as_ref().is_some_and(RequestProgress::failed)
    }

    /// The client is still sending its body: the exchange goes both ways
    /// (a bidirectional gRPC call), so the endpoint may be quiet waiting
    /// for it.
    pub(crate) fn request_streaming(&self) -> bool {
        self.request
            .as_ref()
            .is_some_and(|request| !request.ended() && !request.failed())
    }

    /// Records the response now and hands back the guard, which keeps the
    /// request in flight for as long as it is held (a WebSocket tunnel).
    pub(crate) fn settle(mut self) -> InFlight {
        self.record().expect("recorded only once, here or on drop")
    }

    /// Records the response, once: the guard is taken out as it is.
    fn record(&mut self) -> Option<InFlight> {
        let mut in_flight = self.in_flight.take()?;
        // Only a failure asks for the time (its penalty, an ejection), and
        // both ask for the same one: a success, most responses, reads no
        // clock.
        let mut read = None;
        let mut now = || *read.get_or_insert_with(Instant::now);
        in_flight.end(self.outcome, &mut now);
        record_outlier(
            self.target.service(),
            self.target.group(),
            in_flight.stats(),
            self.outcome.is_failure(),
            &mut now,
        );
        Some(in_flight)
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        self.record();
    }
}

/// Records one outcome in the endpoint's outlier streak, and says so in the
/// log when that ejects it or would but for the share limit.
pub(crate) fn record_outlier(
    service: &Service,
    group: &Group,
    stats: &EndpointStats,
    failed: bool,
    now: impl FnOnce() -> Instant,
) {
    let endpoint = || address_of(group, stats).map_or_else(|| "?".to_owned(), |a| a.to_string());
    match outlier::record(
        &service.outlier,
        &stats.health,
        &group.endpoints,
        failed,
        now,
    ) {
        Verdict::Ejected(length) => {
            stats.metrics.ejections.inc();
            stats.metrics.healthy.set(0);
            tracing::warn!(
                service = %service.name,
                group = %group.name,
                endpoint = %endpoint(),
                ejection = ?length,
                "endpoint ejected after {} consecutive failures",
                service.outlier.consecutive_failures
            );
        }
        Verdict::KeptByShareLimit => tracing::warn!(
            service = %service.name,
            group = %group.name,
            endpoint = %endpoint(),
            "endpoint keeps failing but is not ejected: {} % of the group is out already",
            service.outlier.max_ejected_percent
        ),
        Verdict::Nothing => {}
    }
}

/// Logs panic mode once when it starts and once when it ends.
pub(crate) fn note_panic(service: &Service, group: &Group, panic: bool) {
    if panic {
        if !group.in_panic.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                service = %service.name,
                group = %group.name,
                "no endpoint is eligible: trying all of them (panic mode)"
            );
        }
    } else if group.in_panic.load(Ordering::Relaxed)
        && group.in_panic.swap(false, Ordering::Relaxed)
    {
        tracing::info!(service = %service.name, group = %group.name, "endpoints eligible again: panic mode over");
    }
}
