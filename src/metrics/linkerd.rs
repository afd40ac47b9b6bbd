//! The linkerd-compatible families, for Flagger's built-in linkerd checks:
//! `response_total` and `response_latency_ms`, with linkerd2-proxy's label
//! names and latency buckets, so a canary analysis written for linkerd reads
//! luas's numbers unchanged.
//!
//! Registered only when the config asks for them
//! ([`Metrics::with_linkerd`](super::Metrics::with_linkerd)); `state` binds
//! one [`LinkerdMetrics`] per group (a "deployment") and `endpoint` records
//! into it beside luas's own series. The rest of `/metrics` is in `mod.rs`.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use super::Register;

/// Handles for the series Flagger's built-in linkerd checks query, bound to
/// one (namespace, deployment). `direction="inbound"` because Flagger asks for
/// the view of the target pods' own proxies, which these numbers stand in for.
#[derive(Debug, Clone)]
pub struct LinkerdMetrics {
    pub success: IntCounter,
    pub failure: IntCounter,
    pub latency_ms: Histogram,
}

impl LinkerdMetrics {
    /// The time to the response headers, as linkerd's `response_latency_ms`.
    pub fn latency(&self, latency: std::time::Duration) {
        self.latency_ms.observe(latency.as_secs_f64() * 1000.0);
    }

    /// A response that ended, as linkerd counts it in `response_total`
    /// (when its end, trailers included, is known).
    pub fn response(&self, failed: bool) {
        if failed {
            self.failure.inc();
        } else {
            self.success.inc();
        }
    }
}

/// linkerd2-proxy's `response_latency_ms` bucket bounds.
pub(super) const LINKERD_LATENCY_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// The two families, and the namespace every series of them carries.
#[derive(Debug)]
pub(crate) struct LinkerdFamilies {
    namespace: String,
    responses: IntCounterVec,
    latency: HistogramVec,
}

impl LinkerdFamilies {
    pub(crate) fn register(register: Register<'_>, namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            responses: register.counter(
                "response_total",
                "linkerd-compatible: responses from a deployment, by classification.",
                &["direction", "namespace", "deployment", "classification"],
            ),
            latency: register.histogram(
                "response_latency_ms",
                "linkerd-compatible: time to response headers, in milliseconds.",
                &["direction", "namespace", "deployment"],
                &LINKERD_LATENCY_BUCKETS_MS,
            ),
        }
    }

    /// The handles of one deployment.
    pub(crate) fn bind(&self, deployment: &str) -> LinkerdMetrics {
        let namespace = self.namespace.as_str();
        let response = |classification| {
            self.responses
                .with_label_values(&["inbound", namespace, deployment, classification])
        };
        LinkerdMetrics {
            success: response("success"),
            failure: response("failure"),
            latency_ms: self
                .latency
                .with_label_values(&["inbound", namespace, deployment]),
        }
    }
}
