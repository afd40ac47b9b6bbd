//! Prometheus metrics: every family registered once at start, and label
//! handles bound ahead of time so the request path only touches atomics.
//!
//! `state` asks for an [`EndpointMetrics`] per endpoint and a [`RouteMetrics`]
//! per route when it builds a snapshot; the handles are then stored beside
//! the endpoint or route and used without any map lookup. This module does
//! not decide what a request's outcome is (`endpoint` and `proxy` do) and does
//! not serve HTTP (`admin` does).
//!
//! Label names are the domain nouns: listener, route, service, group, endpoint.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Status classes used as the `code` label; `error` is a request that got no
/// response at all (connect failure, reset, timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Informational,
    Success,
    Redirect,
    ClientError,
    ServerError,
    Error,
}

impl CodeClass {
    const ALL: [CodeClass; 6] = [
        CodeClass::Informational,
        CodeClass::Success,
        CodeClass::Redirect,
        CodeClass::ClientError,
        CodeClass::ServerError,
        CodeClass::Error,
    ];

    pub fn of_status(status: http::StatusCode) -> CodeClass {
        match status.as_u16() {
            100..=199 => CodeClass::Informational,
            200..=299 => CodeClass::Success,
            300..=399 => CodeClass::Redirect,
            400..=499 => CodeClass::ClientError,
            _ => CodeClass::ServerError,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CodeClass::Informational => "1xx",
            CodeClass::Success => "2xx",
            CodeClass::Redirect => "3xx",
            CodeClass::ClientError => "4xx",
            CodeClass::ServerError => "5xx",
            CodeClass::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One counter per code class, bound to fixed labels.
#[derive(Debug, Clone)]
pub struct CodeCounters([IntCounter; 6]);

impl CodeCounters {
    fn bind(family: &IntCounterVec, labels: &[&str]) -> CodeCounters {
        CodeCounters(CodeClass::ALL.map(|code| {
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
    pub fn record(&self, failed: bool, latency: std::time::Duration) {
        if failed {
            self.failure.inc();
        } else {
            self.success.inc();
        }
        self.latency_ms.observe(latency.as_secs_f64() * 1000.0);
    }
}

/// linkerd2-proxy's `response_latency_ms` bucket bounds.
pub const LINKERD_LATENCY_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

#[derive(Debug)]
struct LinkerdFamilies {
    namespace: String,
    responses: IntCounterVec,
    latency: HistogramVec,
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

/// The registry and every metric family luas exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    backend_duration: HistogramVec,
    backend_requests: IntCounterVec,
    backend_in_flight: IntGaugeVec,
    backend_ewma: GaugeVec,
    request_duration: HistogramVec,
    requests: IntCounterVec,
    open_connections: IntGaugeVec,
    connections: IntCounterVec,
    group_weight: IntGaugeVec,
    config_reloads: IntCounterVec,
    rollout_step: IntGaugeVec,
    rollout_decisions: IntCounterVec,
    linkerd: Option<LinkerdFamilies>,
    backend_healthy: IntGaugeVec,
    backend_ejections: IntCounterVec,
    retries: IntCounterVec,
    retry_budget_exhausted: IntCounterVec,
    connections_rejected: IntCounterVec,
    tls_reloads: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    access_log_dropped: IntCounter,
    discovery_lookups: IntCounterVec,
    discovery_endpoints: IntGaugeVec,
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
    pub retry_budget_exhausted: IntCounter,
}

/// The route label of requests that matched no route.
pub const NO_ROUTE: &str = "no_route";

impl Metrics {
    /// Registers every family. `buckets` are histogram upper bounds in
    /// seconds, already validated as strictly increasing.
    pub fn new(buckets: &[f64]) -> Metrics {
        let registry = Registry::new();
        let endpoint_labels = &["service", "group", "endpoint"];
        let backend_duration = HistogramVec::new(
            HistogramOpts::new(
                "luas_backend_request_duration_seconds",
                "Time from sending a request to an endpoint until its response headers arrived.",
            )
            .buckets(buckets.to_vec()),
            endpoint_labels,
        )
        .expect("valid histogram");
        let backend_requests = IntCounterVec::new(
            Opts::new(
                "luas_backend_requests_total",
                "Requests sent to an endpoint, by status class; code=\"error\" got no response.",
            ),
            &["service", "group", "endpoint", "code"],
        )
        .expect("valid counter");
        let backend_in_flight = IntGaugeVec::new(
            Opts::new(
                "luas_backend_in_flight",
                "Requests sent to an endpoint whose response has not finished.",
            ),
            endpoint_labels,
        )
        .expect("valid gauge");
        let backend_ewma = GaugeVec::new(
            Opts::new(
                "luas_backend_ewma_seconds",
                "Peak-EWMA latency estimate of an endpoint, as of its last response.",
            ),
            endpoint_labels,
        )
        .expect("valid gauge");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "luas_request_duration_seconds",
                "Time from receiving a request until its response headers were ready.",
            )
            .buckets(buckets.to_vec()),
            &["listener", "route"],
        )
        .expect("valid histogram");
        let requests = IntCounterVec::new(
            Opts::new(
                "luas_requests_total",
                "Requests received on a listener, by route and status class.",
            ),
            &["listener", "route", "code"],
        )
        .expect("valid counter");
        let open_connections = IntGaugeVec::new(
            Opts::new(
                "luas_open_connections",
                "Client connections open on a listener.",
            ),
            &["listener"],
        )
        .expect("valid gauge");
        let connections = IntCounterVec::new(
            Opts::new(
                "luas_connections_total",
                "Client connections accepted on a listener.",
            ),
            &["listener"],
        )
        .expect("valid counter");
        let group_weight = IntGaugeVec::new(
            Opts::new(
                "luas_group_weight",
                "Weight of a service's version group now in force (share = weight / sum).",
            ),
            &["service", "group"],
        )
        .expect("valid gauge");
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "luas_config_reloads_total",
                "Config reloads by result (success or error; an error keeps the old config).",
            ),
            &["result"],
        )
        .expect("valid counter");
        let rollout_step = IntGaugeVec::new(
            Opts::new(
                "luas_rollout_step",
                "Step of a service's automated rollout, counting from 1; 0 before it starts.",
            ),
            &["service"],
        )
        .expect("valid gauge");
        let rollout_decisions = IntCounterVec::new(
            Opts::new(
                "luas_rollout_decisions_total",
                "Decisions of automated rollouts: promote, rollback, complete.",
            ),
            &["service", "decision"],
        )
        .expect("valid counter");
        let backend_healthy = IntGaugeVec::new(
            Opts::new(
                "luas_backend_healthy",
                "1 when the endpoint may be picked: passing active checks and not ejected.",
            ),
            endpoint_labels,
        )
        .expect("valid gauge");
        let backend_ejections = IntCounterVec::new(
            Opts::new(
                "luas_backend_ejections_total",
                "Times the endpoint was ejected for consecutive failures.",
            ),
            endpoint_labels,
        )
        .expect("valid counter");
        let retries = IntCounterVec::new(
            Opts::new(
                "luas_backend_retries_total",
                "Requests sent again to another try, by reason (not_sent, 5xx, reset, timeout).",
            ),
            &["service", "reason"],
        )
        .expect("valid counter");
        let retry_budget_exhausted = IntCounterVec::new(
            Opts::new(
                "luas_retry_budget_exhausted_total",
                "Retries not made because the service's retry budget was spent.",
            ),
            &["service"],
        )
        .expect("valid counter");
        let connections_rejected = IntCounterVec::new(
            Opts::new(
                "luas_connections_rejected_total",
                "Client connections closed at once because the listener had max_connections open.",
            ),
            &["listener"],
        )
        .expect("valid counter");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "luas_tls_reloads_total",
                "Reloads of a listener's TLS certificate, key and CA files after they changed, \
                 by result (success, error: the previous files keep serving).",
            ),
            &["listener", "result"],
        )
        .expect("valid counter");
        let tls_handshake_failures = IntCounterVec::new(
            Opts::new(
                "luas_tls_handshake_failures_total",
                "Client TLS handshakes that failed or did not finish within header_read_timeout.",
            ),
            &["listener"],
        )
        .expect("valid counter");
        let access_log_dropped = IntCounter::new(
            "luas_access_log_dropped_total",
            "Access log lines dropped because stdout did not keep up.",
        )
        .expect("valid counter");
        let discovery_lookups = IntCounterVec::new(
            Opts::new(
                "luas_discovery_lookups_total",
                "DNS lookups of a group's endpoints by result: ok, error (failure, timeout, \
                 NXDOMAIN) or empty (no address); error and empty keep the last set.",
            ),
            &["service", "group", "result"],
        )
        .expect("valid counter");
        let discovery_endpoints = IntGaugeVec::new(
            Opts::new(
                "luas_discovery_endpoints",
                "Endpoints of a DNS group in force: the addresses of its last successful lookup.",
            ),
            &["service", "group"],
        )
        .expect("valid gauge");
        for collector in [
            Box::new(backend_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(backend_requests.clone()),
            Box::new(backend_in_flight.clone()),
            Box::new(backend_ewma.clone()),
            Box::new(request_duration.clone()),
            Box::new(requests.clone()),
            Box::new(open_connections.clone()),
            Box::new(connections.clone()),
            Box::new(group_weight.clone()),
            Box::new(config_reloads.clone()),
            Box::new(rollout_step.clone()),
            Box::new(rollout_decisions.clone()),
            Box::new(backend_healthy.clone()),
            Box::new(backend_ejections.clone()),
            Box::new(retries.clone()),
            Box::new(retry_budget_exhausted.clone()),
            Box::new(connections_rejected.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(tls_handshake_failures.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(discovery_lookups.clone()),
            Box::new(discovery_endpoints.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            backend_duration,
            backend_requests,
            backend_in_flight,
            backend_ewma,
            request_duration,
            requests,
            open_connections,
            connections,
            group_weight,
            config_reloads,
            rollout_step,
            rollout_decisions,
            linkerd: None,
            backend_healthy,
            backend_ejections,
            retries,
            retry_budget_exhausted,
            connections_rejected,
            tls_reloads,
            tls_handshake_failures,
            access_log_dropped,
            discovery_lookups,
            discovery_endpoints,
        }
    }

    pub fn access_log_dropped(&self) -> IntCounter {
        self.access_log_dropped.clone()
    }

    pub fn discovery(&self, service: &str, group: &str) -> DiscoveryMetrics {
        let result = |result: &str| {
            self.discovery_lookups
                .with_label_values(&[service, group, result])
        };
        DiscoveryMetrics {
            lookups_ok: result("ok"),
            lookups_error: result("error"),
            lookups_empty: result("empty"),
            endpoints: self
                .discovery_endpoints
                .with_label_values(&[service, group]),
        }
    }

    /// Forgets a DNS group's discovery series (the group left the config or
    /// stopped using `dns`).
    pub fn remove_discovery(&self, service: &str, group: &str) {
        for result in ["ok", "error", "empty"] {
            let _ = self
                .discovery_lookups
                .remove_label_values(&[service, group, result]);
        }
        let _ = self
            .discovery_endpoints
            .remove_label_values(&[service, group]);
    }

    pub fn service(&self, service: &str) -> ServiceMetrics {
        let reason = |reason: &str| self.retries.with_label_values(&[service, reason]);
        ServiceMetrics {
            retry_not_sent: reason("not_sent"),
            retry_server_error: reason("5xx"),
            retry_reset: reason("reset"),
            retry_timeout: reason("timeout"),
            retry_budget_exhausted: self.retry_budget_exhausted.with_label_values(&[service]),
        }
    }

    /// Forgets an endpoint's series (it left the config), so dashboards do not
    /// show its last values forever.
    pub fn remove_endpoint(&self, service: &str, group: &str, endpoint: &str) {
        let labels = [service, group, endpoint];
        let _ = self.backend_duration.remove_label_values(&labels);
        let _ = self.backend_in_flight.remove_label_values(&labels);
        let _ = self.backend_ewma.remove_label_values(&labels);
        let _ = self.backend_healthy.remove_label_values(&labels);
        let _ = self.backend_ejections.remove_label_values(&labels);
        for code in CodeClass::ALL {
            let _ = self.backend_requests.remove_label_values(&[
                service,
                group,
                endpoint,
                code.label(),
            ]);
        }
    }

    pub fn remove_group(&self, service: &str, group: &str) {
        let _ = self.group_weight.remove_label_values(&[service, group]);
    }

    /// Forgets a route's series (the route left the config).
    pub fn remove_route(&self, listener: &str, route: &str) {
        let _ = self
            .request_duration
            .remove_label_values(&[listener, route]);
        for code in CodeClass::ALL {
            let _ = self
                .requests
                .remove_label_values(&[listener, route, code.label()]);
        }
    }

    /// Forgets a service's own series (the service left the config); its
    /// groups' and endpoints' are forgotten one by one.
    pub fn remove_service(&self, service: &str) {
        for reason in ["not_sent", "5xx", "reset", "timeout"] {
            let _ = self.retries.remove_label_values(&[service, reason]);
        }
        let _ = self.retry_budget_exhausted.remove_label_values(&[service]);
        let _ = self.rollout_step.remove_label_values(&[service]);
        for decision in ["promote", "complete", "rollback"] {
            let _ = self
                .rollout_decisions
                .remove_label_values(&[service, decision]);
        }
    }

    /// [`Metrics::new`] plus the linkerd-compatible families, labelled with
    /// `namespace`.
    pub fn with_linkerd(buckets: &[f64], namespace: &str) -> Metrics {
        let mut metrics = Metrics::new(buckets);
        let labels = &["direction", "namespace", "deployment"];
        let responses = IntCounterVec::new(
            Opts::new(
                "response_total",
                "linkerd-compatible: responses from a deployment, by classification.",
            ),
            &["direction", "namespace", "deployment", "classification"],
        )
        .expect("valid counter");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "response_latency_ms",
                "linkerd-compatible: time to response headers, in milliseconds.",
            )
            .buckets(LINKERD_LATENCY_BUCKETS_MS.to_vec()),
            labels,
        )
        .expect("valid histogram");
        metrics
            .registry
            .register(Box::new(responses.clone()))
            .expect("metric names are unique");
        metrics
            .registry
            .register(Box::new(latency.clone()))
            .expect("metric names are unique");
        metrics.linkerd = Some(LinkerdFamilies {
            namespace: namespace.to_owned(),
            responses,
            latency,
        });
        metrics
    }

    /// The linkerd-compatible handles of one deployment, when enabled.
    pub fn linkerd(&self, deployment: &str) -> Option<LinkerdMetrics> {
        let families = self.linkerd.as_ref()?;
        let namespace = families.namespace.as_str();
        let response = |classification| {
            families.responses.with_label_values(&[
                "inbound",
                namespace,
                deployment,
                classification,
            ])
        };
        Some(LinkerdMetrics {
            success: response("success"),
            failure: response("failure"),
            latency_ms: families
                .latency
                .with_label_values(&["inbound", namespace, deployment]),
        })
    }

    pub fn group_weight(&self, service: &str, group: &str) -> IntGauge {
        self.group_weight.with_label_values(&[service, group])
    }

    /// `result` is `success` or `error`.
    pub fn config_reloads(&self, result: &str) -> IntCounter {
        self.config_reloads.with_label_values(&[result])
    }

    pub fn rollout_step(&self, service: &str) -> IntGauge {
        self.rollout_step.with_label_values(&[service])
    }

    pub fn rollout_decisions(&self, service: &str, decision: &str) -> IntCounter {
        self.rollout_decisions
            .with_label_values(&[service, decision])
    }

    pub fn endpoint(&self, service: &str, group: &str, endpoint: &str) -> EndpointMetrics {
        let labels = [service, group, endpoint];
        EndpointMetrics {
            duration: self.backend_duration.with_label_values(&labels),
            requests: CodeCounters::bind(&self.backend_requests, &labels),
            in_flight: self.backend_in_flight.with_label_values(&labels),
            ewma_seconds: self.backend_ewma.with_label_values(&labels),
            healthy: self.backend_healthy.with_label_values(&labels),
            ejections: self.backend_ejections.with_label_values(&labels),
            linkerd: None,
        }
    }

    pub fn route(&self, listener: &str, route: &str) -> RouteMetrics {
        let labels = [listener, route];
        RouteMetrics {
            duration: self.request_duration.with_label_values(&labels),
            requests: CodeCounters::bind(&self.requests, &labels),
        }
    }

    pub fn listener(&self, listener: &str) -> ListenerMetrics {
        ListenerMetrics {
            open_connections: self.open_connections.with_label_values(&[listener]),
            connections: self.connections.with_label_values(&[listener]),
            rejected: self.connections_rejected.with_label_values(&[listener]),
            tls_handshake_failures: self.tls_handshake_failures.with_label_values(&[listener]),
        }
    }

    pub fn tls_reloads(&self, listener: &str) -> TlsReloadMetrics {
        TlsReloadMetrics {
            success: self.tls_reloads.with_label_values(&[listener, "success"]),
            error: self.tls_reloads.with_label_values(&[listener, "error"]),
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into a Vec cannot fail");
        buffer
    }
}

/// Cumulative bucket counts of a histogram, as `(upper bound, count)` pairs
/// ending with `(+Inf, total)`. Same bounds for every histogram of a family,
/// so these can be added and subtracted element-wise.
pub fn cumulative_buckets(histogram: &Histogram) -> Vec<(f64, u64)> {
    use prometheus::core::Metric;
    let metric = histogram.metric();
    let proto = metric.get_histogram();
    let mut buckets: Vec<(f64, u64)> = proto
        .get_bucket()
        .iter()
        .map(|bucket| (bucket.upper_bound(), bucket.cumulative_count()))
        .collect();
    #[allow(deprecated)]
    let total = proto.get_sample_count();
    buckets.push((f64::INFINITY, total));
    buckets
}

/// Adds `other`'s counts into `into` (same bounds), or copies it when empty.
pub fn add_buckets(into: &mut Vec<(f64, u64)>, other: &[(f64, u64)]) {
    if into.is_empty() {
        into.extend_from_slice(other);
        return;
    }
    for (mine, theirs) in into.iter_mut().zip(other) {
        mine.1 += theirs.1;
    }
}

/// `later - earlier` element-wise: the observations between two readings.
pub fn bucket_delta(later: &[(f64, u64)], earlier: &[(f64, u64)]) -> Vec<(f64, u64)> {
    if earlier.is_empty() {
        return later.to_vec();
    }
    later
        .iter()
        .zip(earlier)
        .map(|(later, earlier)| (later.0, later.1.saturating_sub(earlier.1)))
        .collect()
}

/// The `q`-quantile (0..=1) of cumulative buckets, interpolated linearly inside
/// the bucket that holds it, as PromQL's `histogram_quantile` does. None when
/// there are no observations. A quantile in the +Inf bucket reads as the
/// largest finite bound.
pub fn quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0u64;
    for &(upper_bound, count) in buckets {
        if count as f64 >= rank && count > lower_count {
            if upper_bound.is_infinite() {
                return Some(lower_bound);
            }
            let inside = (rank - lower_count as f64) / (count - lower_count) as f64;
            return Some(lower_bound + (upper_bound - lower_bound) * inside);
        }
        lower_bound = upper_bound;
        lower_count = count;
    }
    Some(lower_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let metrics = Metrics::new(&[0.01, 0.1, 1.0]);
        let endpoint = metrics.endpoint("s", "g", "e");
        assert_eq!(quantile(0.5, &cumulative_buckets(&endpoint.duration)), None);
        for _ in 0..50 {
            endpoint.duration.observe(0.005);
        }
        for _ in 0..50 {
            endpoint.duration.observe(0.05);
        }
        let buckets = cumulative_buckets(&endpoint.duration);
        assert_eq!(
            buckets,
            vec![(0.01, 50), (0.1, 100), (1.0, 100), (f64::INFINITY, 100)]
        );
        assert!((quantile(0.5, &buckets).unwrap() - 0.01).abs() < 1e-9);
        // Rank 99 of 100 is 49/50 of the way through the (0.01, 0.1] bucket.
        let p99 = quantile(0.99, &buckets).unwrap();
        assert!((p99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-9, "{p99}");
        endpoint.duration.observe(50.0);
        let later = cumulative_buckets(&endpoint.duration);
        let delta = bucket_delta(&later, &buckets);
        assert_eq!(delta.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(quantile(0.99, &delta), Some(1.0));
        let mut merged = Vec::new();
        add_buckets(&mut merged, &buckets);
        add_buckets(&mut merged, &delta);
        assert_eq!(merged, later);
    }

    #[test]
    fn bound_handles_show_up_in_the_exposition() {
        let metrics = Metrics::new(&[0.01, 0.1, 1.0]);
        let endpoint = metrics.endpoint("api", "stable", "127.0.0.1:9001");
        endpoint.duration.observe(0.05);
        endpoint.requests.inc(CodeClass::Success);
        endpoint.requests.inc(CodeClass::Error);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(text.contains(
            "luas_backend_request_duration_seconds_bucket{endpoint=\"127.0.0.1:9001\",group=\"stable\",service=\"api\",le=\"0.1\"} 1"
        ), "{text}");
        assert!(text.contains(
            "luas_backend_requests_total{code=\"error\",endpoint=\"127.0.0.1:9001\",group=\"stable\",service=\"api\"} 1"
        ), "{text}");
        assert_eq!(endpoint.requests.total(), 2);
    }

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

    /// One handle of every kind, bound and touched, so every family shows up.
    fn every_family() -> Metrics {
        let metrics = Metrics::with_linkerd(&[0.01, 0.1, 1.0], "prod");
        let endpoint = metrics.endpoint("api", "stable", "127.0.0.1:9001");
        endpoint.duration.observe(0.05);
        endpoint.requests.inc(CodeClass::Success);
        endpoint.requests.inc(CodeClass::ServerError);
        endpoint.in_flight.set(2);
        endpoint.ewma_seconds.set(0.025);
        endpoint.healthy.set(1);
        endpoint.ejections.inc();
        let route = metrics.route("edge", "api");
        route.duration.observe(0.2);
        route.requests.inc(CodeClass::ClientError);
        metrics
            .route("edge", NO_ROUTE)
            .requests
            .inc(CodeClass::ClientError);
        let listener = metrics.listener("edge");
        listener.open_connections.set(3);
        listener.connections.inc();
        listener.rejected.inc();
        listener.tls_handshake_failures.inc();
        let tls = metrics.tls_reloads("edge");
        tls.success.inc();
        tls.error.inc();
        let service = metrics.service("api");
        service.retry_not_sent.inc();
        service.retry_server_error.inc();
        service.retry_reset.inc();
        service.retry_timeout.inc();
        service.retry_budget_exhausted.inc();
        let discovery = metrics.discovery("api", "canary");
        discovery.lookups_ok.inc();
        discovery.lookups_error.inc();
        discovery.lookups_empty.inc();
        discovery.endpoints.set(2);
        metrics.group_weight("api", "stable").set(90);
        metrics.config_reloads("success").inc();
        metrics.config_reloads("error").inc();
        metrics.rollout_step("api").set(1);
        for decision in ["promote", "complete", "rollback"] {
            metrics.rollout_decisions("api", decision).inc();
        }
        metrics.access_log_dropped().inc();
        let linkerd = metrics
            .linkerd("api-stable")
            .expect("linkerd families enabled");
        linkerd.record(false, std::time::Duration::from_millis(7));
        linkerd.record(true, std::time::Duration::from_millis(70));
        metrics
    }

    /// The whole exposition, byte for byte: names, help texts, label names and
    /// bucket bounds are what dashboards and alerts are written against.
    #[test]
    fn exposition_is_unchanged() {
        let text = String::from_utf8(every_family().render()).unwrap();
        assert_eq!(text, include_str!("metrics/testdata/exposition.txt"));
    }

    #[test]
    fn linkerd_families_only_when_enabled() {
        let metrics = Metrics::new(&[1.0]);
        assert!(metrics.linkerd("api-stable").is_none());
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(!text.contains("response_total"), "{text}");
    }

    #[test]
    fn removed_series_leave_the_exposition() {
        let metrics = every_family();
        metrics.remove_endpoint("api", "stable", "127.0.0.1:9001");
        metrics.remove_route("edge", "api");
        metrics.remove_service("api");
        metrics.remove_group("api", "stable");
        metrics.remove_discovery("api", "canary");
        let text = String::from_utf8(metrics.render()).unwrap();
        let left: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.contains("service=\"api\"") || line.contains("route=\"api\""))
            .collect();
        assert_eq!(left, Vec::<&str>::new());
        assert!(
            text.contains(
                "luas_requests_total{code=\"4xx\",listener=\"edge\",route=\"no_route\"} 1"
            ),
            "{text}"
        );
    }
}
