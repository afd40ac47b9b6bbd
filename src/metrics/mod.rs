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
//!
//! - `mod.rs`: [`Metrics`], the registry and luas's own families; a family is
//!   created only through [`Register`], which registers it as it makes it.
//! - `handles.rs`: the bound handles ([`EndpointMetrics`], [`CodeClass`], …).
//! - `linkerd.rs`: the optional linkerd-compatible families.
//! - `fleet.rs`: fleet mode's and the Kubernetes client's families.
//! - `mirror.rs`: the series of mirrored copies (`mirror="true"`).
//! - `histogram.rs`: bucket arithmetic and quantiles.
//! - `window.rs`: [`Reading`] and [`Window`], what the rollout judge and the
//!   dashboard history read from the counters, and the one error rule.

mod fleet;
mod handles;
mod histogram;
mod linkerd;
mod mirror;
mod window;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use fleet::FleetMetrics;
pub use handles::{
    CodeClass, CodeCounters, DiscoveryMetrics, EndpointMetrics, ListenerMetrics, RouteMetrics,
    ServiceMetrics, TlsReloadMetrics,
};
pub use linkerd::LinkerdMetrics;
pub use mirror::{MirrorSeries, MirrorShed};
pub(crate) use window::Reading;
pub use window::{ReadingWire, Window};

use fleet::FleetFamilies;
use linkerd::LinkerdFamilies;
use mirror::MirrorFamilies;

/// The route label of requests that matched no route.
pub const NO_ROUTE: &str = "no_route";

/// Label names of the per-endpoint families.
const ENDPOINT_LABELS: &[&str] = &["service", "group", "endpoint"];

/// The one way to make a family: each method builds it from a name, a help
/// text and label names, registers it, and returns it, so no family can be
/// declared and then left out of `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<F: Collector + Clone + 'static>(self, family: F) -> F {
        self.0
            .register(Box::new(family.clone()))
            .expect("metric names are unique");
        family
    }

    pub(crate) fn counter(self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"))
    }

    pub(crate) fn gauge(self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"))
    }

    pub(crate) fn float_gauge(self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"))
    }

    /// `buckets` are upper bounds, strictly increasing.
    pub(crate) fn histogram(
        self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels).expect("valid histogram"))
    }

    /// A family without labels: one series.
    pub(crate) fn single_counter(self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid counter"))
    }
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
    backend_healthy: IntGaugeVec,
    backend_ejections: IntCounterVec,
    retries: IntCounterVec,
    retry_budget_exhausted: IntCounterVec,
    connections_rejected: IntCounterVec,
    rate_limited: IntCounterVec,
    tls_reloads: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    access_log_dropped: IntCounter,
    discovery_lookups: IntCounterVec,
    discovery_endpoints: IntGaugeVec,
    fleet: FleetFamilies,
    mirror: MirrorFamilies,
    /// Registered only by [`Metrics::with_linkerd`].
    linkerd: Option<LinkerdFamilies>,
}

impl Metrics {
    /// Registers every family. `buckets` are histogram upper bounds in
    /// seconds, already validated as strictly increasing.
    pub fn new(buckets: &[f64]) -> Self {
        let registry = Registry::new();
        let register = Register(&registry);
        Self {
            backend_duration: register.histogram(
                "luas_backend_request_duration_seconds",
                "Time from sending a request to an endpoint until its response headers arrived.",
                ENDPOINT_LABELS,
                buckets,
            ),
            backend_requests: register.counter(
                "luas_backend_requests_total",
                "Requests sent to an endpoint, by status class; code=\"error\" got no response.",
                &["service", "group", "endpoint", "code"],
            ),
            backend_in_flight: register.gauge(
                "luas_backend_in_flight",
                "Requests sent to an endpoint whose response has not finished.",
                ENDPOINT_LABELS,
            ),
            backend_ewma: register.float_gauge(
                "luas_backend_ewma_seconds",
                "Peak-EWMA latency estimate of an endpoint, as of its last response.",
                ENDPOINT_LABELS,
            ),
            request_duration: register.histogram(
                "luas_request_duration_seconds",
                "Time from receiving a request until its response headers were ready.",
                &["listener", "route"],
                buckets,
            ),
            requests: register.counter(
                "luas_requests_total",
                "Requests received on a listener, by route and status class.",
                &["listener", "route", "code"],
            ),
            open_connections: register.gauge(
                "luas_open_connections",
                "Client connections open on a listener.",
                &["listener"],
            ),
            connections: register.counter(
                "luas_connections_total",
                "Client connections accepted on a listener.",
                &["listener"],
            ),
            group_weight: register.gauge(
                "luas_group_weight",
                "Weight of a service's version group now in force (share = weight / sum).",
                &["service", "group"],
            ),
            config_reloads: register.counter(
                "luas_config_reloads_total",
                "Config reloads by result (success or error; an error keeps the old config).",
                &["result"],
            ),
            rollout_step: register.gauge(
                "luas_rollout_step",
                "Step of a service's automated rollout, counting from 1; 0 before it starts.",
                &["service"],
            ),
            rollout_decisions: register.counter(
                "luas_rollout_decisions_total",
                "Decisions of automated rollouts: promote, rollback, complete.",
                &["service", "decision"],
            ),
            backend_healthy: register.gauge(
                "luas_backend_healthy",
                "1 when the endpoint may be picked: passing active checks and not ejected.",
                ENDPOINT_LABELS,
            ),
            backend_ejections: register.counter(
                "luas_backend_ejections_total",
                "Times the endpoint was ejected for consecutive failures.",
                ENDPOINT_LABELS,
            ),
            retries: register.counter(
                "luas_backend_retries_total",
                "Requests sent again to another try, by reason (not_sent, 5xx, reset, timeout, grpc).",
                &["service", "reason"],
            ),
            retry_budget_exhausted: register.counter(
                "luas_retry_budget_exhausted_total",
                "Retries not made because the service's retry budget was spent.",
                &["service"],
            ),
            connections_rejected: register.counter(
                "luas_connections_rejected_total",
                "Client connections closed at once because the listener had max_connections open.",
                &["listener"],
            ),
            rate_limited: register.counter(
                "luas_rate_limited_total",
                "Requests a route's rate_limit filter answered with 429.",
                &["listener", "route"],
            ),
            tls_reloads: register.counter(
                "luas_tls_reloads_total",
                "Reloads of a listener's TLS certificate, key and CA files after they changed, \
                 by result (success, error: the previous files keep serving).",
                &["listener", "result"],
            ),
            tls_handshake_failures: register.counter(
                "luas_tls_handshake_failures_total",
                "Client TLS handshakes that failed or did not finish within header_read_timeout.",
                &["listener"],
            ),
            access_log_dropped: register.single_counter(
                "luas_access_log_dropped_total",
                "Access log lines dropped because stdout did not keep up.",
            ),
            discovery_lookups: register.counter(
                "luas_discovery_lookups_total",
                "DNS lookups of a group's endpoints by result: ok, error (failure, timeout, \
                 NXDOMAIN) or empty (no address); error and empty keep the last set.",
                &["service", "group", "result"],
            ),
            discovery_endpoints: register.gauge(
                "luas_discovery_endpoints",
                "Endpoints of a DNS group in force: the addresses of its last successful lookup.",
                &["service", "group"],
            ),
            fleet: FleetFamilies::register(register),
            mirror: MirrorFamilies::register(register, buckets),
            linkerd: None,
            registry,
        }
    }

    /// [`Metrics::new`] plus the linkerd-compatible families, labelled with
    /// `namespace`.
    pub fn with_linkerd(buckets: &[f64], namespace: &str) -> Self {
        let mut metrics = Self::new(buckets);
        let families = LinkerdFamilies::register(Register(&metrics.registry), namespace);
        metrics.linkerd = Some(families);
        metrics
    }

    /// The handles of fleet `name` (fleet mode).
    pub fn fleet(&self, name: &str) -> FleetMetrics {
        self.fleet.fleet(name)
    }

    /// Counts an event of a watch on the Kubernetes API.
    pub fn kubernetes_watch_event(&self, kind: &str, result: &str) {
        self.fleet.watch_event(kind, result);
    }

    /// Counts a request to the Kubernetes API and its answer's status.
    pub fn kubernetes_request(&self, verb: &str, kind: &str, code: &str) {
        self.fleet.request(verb, kind, code);
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
            retry_grpc: reason("grpc"),
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
        self.mirror.remove_endpoint(service, group, endpoint);
        for code in CodeClass::ALL {
            let _ = self.backend_requests.remove_label_values(&[
                service,
                group,
                endpoint,
                code.label(),
            ]);
        }
    }

    /// The series of the mirrored copies one endpoint gets.
    pub fn mirror_series(&self, service: &str, group: &str, endpoint: &str) -> MirrorSeries {
        self.mirror.series(service, group, endpoint)
    }

    /// The shed counters of one mirror filter.
    pub fn mirror_shed(&self, listener: &str, route: &str, service: &str) -> MirrorShed {
        self.mirror.shed(listener, route, service)
    }

    pub fn remove_group(&self, service: &str, group: &str) {
        let _ = self.group_weight.remove_label_values(&[service, group]);
    }

    /// Forgets a route's series (the route left the config).
    pub fn remove_route(&self, listener: &str, route: &str) {
        let _ = self
            .request_duration
            .remove_label_values(&[listener, route]);
        let _ = self.rate_limited.remove_label_values(&[listener, route]);
        self.mirror.remove_route(listener, route);
        for code in CodeClass::ALL {
            let _ = self
                .requests
                .remove_label_values(&[listener, route, code.label()]);
        }
    }

    /// Forgets a service's own series (the service left the config); its
    /// groups' and endpoints' are forgotten one by one.
    pub fn remove_service(&self, service: &str) {
        for reason in ["not_sent", "5xx", "reset", "timeout", "grpc"] {
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

    /// The linkerd-compatible handles of one deployment, when enabled.
    pub fn linkerd(&self, deployment: &str) -> Option<LinkerdMetrics> {
        Some(self.linkerd.as_ref()?.bind(deployment))
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

    /// The 429 counter of a route with a rate limit (only such routes get
    /// the series).
    pub fn rate_limited(&self, listener: &str, route: &str) -> IntCounter {
        self.rate_limited.with_label_values(&[listener, route])
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
        let mut families = self.registry.gather();
        self.mirror.merge_into(&mut families);
        TextEncoder::new()
            .encode(&families, &mut buffer)
            .expect("encoding into a Vec cannot fail");
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        service.retry_grpc.inc();
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
        linkerd.latency(std::time::Duration::from_millis(7));
        linkerd.response(false);
        linkerd.latency(std::time::Duration::from_millis(70));
        linkerd.response(true);

        metrics
    }

    /// The whole exposition, byte for byte: names, help texts, label names and
    /// bucket bounds are what dashboards and alerts are written against.
    #[test]
    fn exposition_is_unchanged() {
        let text = String::from_utf8(every_family().render()).unwrap();
        assert_eq!(text, include_str!("testdata/exposition.txt"));
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
