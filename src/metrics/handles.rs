//! The handles the rest of luas holds: label values bound once, when a
//! snapshot is built or a listener starts, so the request path only touches
//! atomics and never looks a series up by its labels.
//!
//! [`Metrics`](super::Metrics) creates every handle here; this file only says
//! what each one carries. [`CodeClass`] is the `code` label of the request
//! counters. The linkerd-compatible handles live in `linkerd.rs`.

use prometheus::{Gauge, Histogram, IntCounter, IntCounterVec, IntGauge};

use super::linkerd::LinkerdMetrics;

/// Status classes used as the `code` label; `error` is a request that got no
/// response at all (connect failure, reset, timeout); `grpc_error` a gRPC
/// response whose `grpc-status` is a server-side failure (UNAVAILABLE, …)
/// under HTTP 200. One more value of `code`, not a `grpc_status` label:
/// one series per endpoint instead of seventeen, and every query that
/// sums `code` keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Informational,
    Success,
    Redirect,
    ClientError,
    ServerError,
    Error,
    GrpcError,
}

impl CodeClass {
    pub(crate) const ALL: [Self; 7] = [
        Self::Informational,
        Self::Success,
        Self::Redirect,
        Self::ClientError,
        Self::ServerError,
        Self::Error,
        Self::GrpcError,
    ];

    pub fn of_status(status: http::StatusCode) -> Self {
        match status.as_u16() {
            100..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirect,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirect => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Error => "error",
            Self::GrpcError => "grpc_error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One counter per code class, bound to fixed labels.
#[derive(Debug, Clone)]
pub struct CodeCounters([IntCounter; 7]);

impl CodeCounters {
    /// `labels` are the family's label values before `code`, its last label.
    pub(crate) fn bind(family: &IntCounterVec, labels: &[&str]) -> Self {
        Self(CodeClass::ALL.map(|code| {
            let mut values = labels.to_vec();
            values.push(code.label());
            family.with_label_values(&values)
        }))
    }

    pub fn inc(&self, code: CodeClass) {
        self.0[code.index()].inc();
    }

    pub fn get(&self, code: CodeClass) -> u64 {
        self.0[code.index()].get()
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(IntCounter::get).sum()
    }
}

/// Handles for one endpoint (service, group, endpoint).
#[derive(Debug, Clone)]
pub struct EndpointMetrics {
    pub duration: Histogram,
    pub requests: CodeCounters,
    pub in_flight: IntGauge,
    pub ewma_seconds: Gauge,
    /// 1 when the balancer may pick the endpoint (healthy, not ejected).
    pub healthy: IntGauge,
    pub ejections: IntCounter,
    /// The linkerd-compatible series of the endpoint's group, when enabled.
    pub linkerd: Option<LinkerdMetrics>,
}

/// Handles for one route of one listener.
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    pub duration: Histogram,
    pub requests: CodeCounters,
}

/// Handles for one listener.
#[derive(Debug, Clone)]
pub struct ListenerMetrics {
    pub open_connections: IntGauge,
    pub connections: IntCounter,
    /// Connections closed at once because the listener was full.
    pub rejected: IntCounter,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: IntCounter,
}

/// Reloads of one listener's TLS files, by outcome.
#[derive(Debug, Clone)]
pub struct TlsReloadMetrics {
    pub success: IntCounter,
    pub error: IntCounter,
}

/// Handles for one DNS group (service, group) of `discovery`.
#[derive(Debug, Clone)]
pub struct DiscoveryMetrics {
    /// Lookups that found at least one address.
    pub lookups_ok: IntCounter,
    /// Lookups that failed: an error, a timeout, NXDOMAIN.
    pub lookups_error: IntCounter,
    /// Lookups that found the name without any A or AAAA record.
    pub lookups_empty: IntCounter,
    /// Addresses in force for the group.
    pub endpoints: IntGauge,
}

/// Handles for one service.
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    /// Retries by reason: the request never reached the endpoint.
    pub retry_not_sent: IntCounter,
    pub retry_server_error: IntCounter,
    pub retry_reset: IntCounter,
    pub retry_timeout: IntCounter,
    /// A trailers-only gRPC status that `retry.on` names.
    pub retry_grpc: IntCounter,
    pub retry_budget_exhausted: IntCounter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(
            CodeClass::of_status(http::StatusCode::SWITCHING_PROTOCOLS).label(),
            "1xx"
        );
        assert_eq!(
            CodeClass::of_status(http::StatusCode::NO_CONTENT).label(),
            "2xx"
        );
        assert_eq!(CodeClass::of_status(http::StatusCode::FOUND).label(), "3xx");
        assert_eq!(
            CodeClass::of_status(http::StatusCode::NOT_FOUND).label(),
            "4xx"
        );
        assert_eq!(
            CodeClass::of_status(http::StatusCode::BAD_GATEWAY).label(),
            "5xx"
        );
    }
}
