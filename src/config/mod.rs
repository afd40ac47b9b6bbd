//! Configuration: the YAML file format and the validated, typed configuration
//! the rest of luas is built from.
//!
//! Loading happens in two steps, kept in different types so nothing downstream
//! ever sees an unchecked value:
//! 1. `raw` mirrors the file with serde (`deny_unknown_fields`, so a typo in
//!    a key is an error, never silently ignored). Syntax errors carry the line
//!    and column.
//! 2. `validate` turns the raw mirror into [`Config`], collecting *every*
//!    semantic error, each named by its key path (`services[1].groups[0].weight`).
//!
//! This module does no I/O beyond reading the file in [`load_file`]; it does not
//! bind sockets, watch files or apply anything (see `app` and `state`).

mod dns;
mod duration;
mod health_check;
mod percent;
mod raw;
mod route_filter;
mod route_match;
mod slow_start;
mod sticky;
mod validate;

#[cfg(test)]
mod docs_test;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;

pub use dns::DnsConfig;
pub use duration::parse_duration;
pub use health_check::HealthCheckConfig;
pub use route_filter::{
    HeaderEdits, Hostname, Mirror, PathReplace, RateKey, RateLimit, Redirect, RedirectScheme,
    Rewrite, RouteFilter,
};
pub use route_match::{HostMatch, PathMatch, Pattern, RouteMatch, TextMatch};
pub use slow_start::SlowStartConfig;
pub use sticky::StickyKey;
pub(crate) use validate::replica_name_problem;

/// The validated configuration. Built only by [`Config::from_yaml`] (or by
/// tests that construct it field by field on purpose).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub admin: AdminConfig,
    pub listeners: Vec<ListenerConfig>,
    pub services: Vec<ServiceConfig>,
    pub metrics: MetricsConfig,
    pub shutdown: ShutdownConfig,
    /// Where runtime changes (weights, rollbacks, rollout progress) are kept
    /// across restarts. None: runtime changes live in memory only.
    pub state_file: Option<PathBuf>,
    pub access_log: AccessLogConfig,
    /// How the DNS names of `dns` groups are looked up.
    pub discovery: DiscoveryConfig,
    /// How the Kubernetes API is reached (fleet state, EndpointSlices).
    pub kubernetes: KubernetesConfig,
    /// The replicas this one shares its canary state with; None: this
    /// process alone.
    pub fleet: Option<FleetConfig>,
}

/// `kubernetes:`: where the API server and credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesConfig {
    /// A kubeconfig file; None: the pod's service account when in a
    /// cluster, else `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Where luas's objects live; None: the pod's namespace, else the
    /// kubeconfig context's.
    pub namespace: Option<String>,
}

/// `kubernetes:` of a group: its endpoints are the ready addresses of a
/// Kubernetes Service's EndpointSlices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubernetesEndpoints {
    pub service: String,
    pub port: ServicePort,
    /// None: `kubernetes.namespace`, else the pod's.
    pub namespace: Option<String>,
}

/// A port of an EndpointSlice: by the Service port's name, or by number
/// (the port the pods serve on, the Service's `targetPort`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServicePort {
    Name(String),
    Number(u16),
}

impl fmt::Display for KubernetesEndpoints {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(namespace) = &self.namespace {
            write!(formatter, "{namespace}/")?;
        }
        match &self.port {
            ServicePort::Name(name) => write!(formatter, "{}:{name}", self.service),
            ServicePort::Number(number) => write!(formatter, "{}:{number}", self.service),
        }
    }
}

/// `fleet:`: one canary state shared through the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// Replicas with the same name share state (ConfigMap `luas-fleet-<name>`).
    pub name: String,
    /// This replica's name; None: `$HOSTNAME` (the pod's name).
    pub replica: Option<String>,
    /// How long a starting replica waits for the fleet state before it
    /// serves from its cache. Default 10 s.
    pub startup_timeout: Duration,
}

/// `access_log:`: one JSON line per request on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessLogConfig {
    /// Default false.
    pub enabled: bool,
}

/// `discovery:` the name servers that `dns` groups are looked up with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryConfig {
    /// Name servers, tried in order; empty (the default): the system's
    /// (`/etc/resolv.conf`, with its search domains and `ndots`).
    pub resolvers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Default 127.0.0.1:9901: the admin port is loopback-only unless asked.
    pub listen: SocketAddr,
    /// File holding the bearer token that mutating admin endpoints require.
    pub token_file: Option<PathBuf>,
    /// Serve mutating endpoints without a token on a non-loopback address.
    pub allow_unauthenticated_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub listen: SocketAddr,
    pub protocol: ListenerProtocol,
    /// First match wins.
    pub routes: Vec<RouteConfig>,
    pub limits: ListenerLimits,
    /// TLS termination; None for plain TCP.
    pub tls: Option<ListenerTls>,
}

/// TLS termination on a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// At least one. Chosen by SNI against each certificate's names; the
    /// first is served when the client sends no SNI or no name matches.
    pub certificates: Vec<CertificateFiles>,
    /// Client certificates are required and verified against this CA (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// A PEM certificate chain and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// TLS from luas to a service's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// CA certificates the endpoints' certificates must chain to; None for
    /// the system's roots.
    pub ca: Option<PathBuf>,
    /// Sent as SNI and verified against the endpoint's certificate; None for
    /// the endpoint's IP address.
    pub server_name: Option<String>,
    /// Presented to endpoints that ask for a client certificate (mTLS).
    pub client_certificate: Option<CertificateFiles>,
    /// Accept any endpoint certificate. Logged as a warning at every start.
    pub insecure_skip_verify: bool,
}

/// What one listener accepts from clients. Requests beyond a limit get a
/// 4xx; the connection that broke it may be closed; others are untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Client connections open at once; beyond it new connections are
    /// accepted and closed at once. Default 10 000.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (slowloris). Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest request header block in bytes (431 beyond). Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most request header fields (431 beyond). Default 100.
    pub max_headers: usize,
    /// Largest request body in bytes (413 beyond); None for no limit (default).
    pub max_body_bytes: Option<u64>,
    /// Longest pause inside a request body before it is given up (408). Default 30 s.
    pub body_timeout: Duration,
    /// Time a keep-alive client connection may sit idle. Default 60 s.
    pub idle_timeout: Duration,
    /// HTTP/2 streams a client may have open at once. Default 100.
    pub h2_max_concurrent_streams: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1 or HTTP/2 with prior knowledge, detected from the preface.
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    /// Any of these selects the route; never empty (a route without
    /// conditions has one empty match, the catch-all).
    pub matches: Vec<RouteMatch>,
    /// Applied in order: header edits, a redirect, a rewrite.
    pub filters: Vec<RouteFilter>,
    /// Index into [`Config::services`]; validation guarantees it exists.
    /// None only for a route that answers with a redirect.
    pub service: Option<usize>,
    /// Overrides of the service's timeouts for this route's requests.
    pub timeouts: RouteTimeouts,
    /// Replaces the service's `retry` for this route's requests.
    pub retry: Option<RetryConfig>,
}

/// `routes[].timeouts`, as Gateway API's HTTPRouteTimeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteTimeouts {
    /// The service's `timeouts.request` for this route: every try together.
    pub request: Option<Duration>,
    /// One try: the retry policy's `per_try_timeout` for this route.
    pub backend_request: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    pub balancer: BalancerKind,
    pub protocol: UpstreamProtocol,
    /// TLS to the endpoints; None for plain TCP.
    pub tls: Option<UpstreamTls>,
    pub timeouts: Timeouts,
    pub ewma: EwmaConfig,
    /// At least one group has a weight above zero.
    pub groups: Vec<GroupConfig>,
    pub split: SplitConfig,
    /// An automated progressive rollout of one group, judged by luas itself.
    pub rollout: Option<RolloutConfig>,
    /// Active health checks; None when not configured (the default).
    pub health_check: Option<HealthCheckConfig>,
    /// Passive outlier detection; on by default.
    pub outlier: OutlierConfig,
    /// Ramping a new endpoint's share up; None (the default) gives every
    /// endpoint its full share at once.
    pub slow_start: Option<SlowStartConfig>,
    pub retry: RetryConfig,
    /// How gRPC responses are classified.
    pub grpc: GrpcConfig,
}

/// `grpc:` which `grpc-status` values count as the endpoint's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Default: the server-side failures (`grpc::StatusSet::SERVER_FAILURES`).
    pub failure_statuses: crate::grpc::StatusSet,
}

/// `outlier:` ejects endpoints that keep failing, from live traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Default true.
    pub enabled: bool,
    /// Consecutive failures (connect error, reset, timeout, 5xx) that eject. Default 5.
    pub consecutive_failures: u32,
    /// First ejection's length; doubled for each repeat. Default 30 s.
    pub base_ejection: Duration,
    /// Cap on an ejection's length. Default 5 min.
    pub max_ejection: Duration,
    /// Most of a group's endpoints ejected at once, in percent. Default 50.
    pub max_ejected_percent: u32,
}

/// `retry:` which failed requests are sent again, and how much extra load
/// retries may add. Requests that never reached an endpoint (connect
/// failures) are always retried on another endpoint, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Extra tries after the first, for idempotent requests. Default 0.
    pub attempts: u32,
    /// Which outcomes are retried. Default: 5xx, reset, timeout.
    pub on: RetryOn,
    /// Time one try may take; None: only the request timeout applies (default).
    pub per_try_timeout: Option<Duration>,
    /// Largest request body kept for replay, in bytes; larger bodies are not
    /// retried. Default 64 KiB.
    pub buffer_bytes: usize,
    /// Retries may add at most this share of recent requests. Default 0.2.
    pub budget_ratio: f64,
    /// ...plus this many retries per second. Default 10.
    pub budget_min_per_second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    pub server_error: bool,
    pub reset: bool,
    pub timeout: bool,
    /// gRPC statuses of a trailers-only response that are retried
    /// (`unavailable`, `cancelled`, …). Empty by default.
    pub grpc: crate::grpc::StatusSet,
}

/// How a request picks a group beyond plain weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitConfig {
    /// A request header naming a group forces that group, even at weight 0.
    /// Default `x-luas-group`; None when disabled (`override_header: ""`).
    pub override_header: Option<HeaderName>,
    /// Requests with the same key always land in the same group while the
    /// weights stay the same.
    pub sticky: Option<StickyKey>,
}

/// `rollout:` of a service: move `group` through `steps` of weight, judging
/// it against the stable group from luas's own metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutConfig {
    /// The group being rolled out; exists in the service and is not the
    /// stable group.
    pub group: String,
    /// Weight of the rolled-out group at each step, in percent (1..=100),
    /// strictly increasing; the stable group gets 100 minus that.
    pub steps: Vec<u32>,
    /// Time spent at each step before promoting.
    pub interval: Duration,
    /// Requests the group must have had during a step before it is judged.
    pub min_requests: u64,
    /// Highest tolerated share of 5xx and failed requests, as a fraction (0.01 = 1 %).
    pub max_error_rate: f64,
    /// Highest tolerated ratio of the group's p99 latency to the stable group's.
    pub max_p99_ratio: f64,
    /// How often the rollout is evaluated. Default 1 s.
    pub tick: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancerKind {
    P2cEwma,
    LeastRequest,
    RoundRobin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to one endpoint. Default 1 s.
    pub connect: Duration,
    /// From receiving the request until the response headers are ready,
    /// across every retry. Default 30 s.
    pub request: Duration,
    /// How long an unused pooled connection to an endpoint is kept. Default 60 s.
    pub idle: Duration,
    /// How long a response body may make no progress (no bytes from the
    /// endpoint while luas waits for them) before it is cut. Default: the
    /// request timeout; None (`0`) for long-lived streams.
    pub response_idle: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EwmaConfig {
    /// Time constant of the decay. Default 10 s.
    pub decay: Duration,
    /// Estimate of an endpoint that has not answered yet. Default 30 ms.
    pub default_rtt: Duration,
    /// Latency charged for a failed request. Default 1 s.
    pub failure_penalty: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    pub name: String,
    pub weight: u32,
    /// The listed endpoints, never empty after validation; for a group with
    /// `dns`, the addresses discovered so far (none in the file config, and
    /// none in force before the first successful lookup).
    pub endpoints: Vec<SocketAddr>,
    /// Where the endpoints come from when they are discovered, not listed.
    pub dns: Option<DnsConfig>,
    /// Or: the EndpointSlices of a Kubernetes Service.
    pub kubernetes: Option<KubernetesEndpoints>,
    /// The Kubernetes Deployment behind this group, for the linkerd-compatible
    /// metrics' `deployment` label. Default `SERVICE-GROUP`.
    pub deployment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Upper bounds in seconds, strictly increasing.
    pub buckets: Vec<f64>,
    /// Also export the series Flagger's linkerd checks query.
    pub linkerd_compatible: bool,
    /// The `namespace` label of the linkerd-compatible series. Default `default`.
    pub namespace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long in-flight requests may run after SIGTERM. Default 10 s.
    pub grace_period: Duration,
}

/// Defaults shared by validation, the docs and the tests.
pub mod defaults {
    use std::time::Duration;

    pub const ADMIN_LISTEN: &str = "127.0.0.1:9901";
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const EWMA_DECAY: Duration = Duration::from_secs(10);
    pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
    pub const FAILURE_PENALTY: Duration = Duration::from_secs(1);
    pub const GRACE_PERIOD: Duration = Duration::from_secs(10);
    pub const FLEET_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_GROUP: &str = "stable";
    pub const DEFAULT_WEIGHT: u32 = 100;
    pub const OVERRIDE_HEADER: &str = "x-luas-group";
    pub const ROLLOUT_TICK: Duration = Duration::from_secs(1);
    pub const NAMESPACE: &str = "default";
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_CONNECTIONS: usize = 10_000;
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_HEADER_BYTES: usize = 64 * 1024;
    pub const MAX_HEADERS: usize = 100;
    pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
    pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
    pub const HEALTHY_THRESHOLD: u32 = 2;
    pub const UNHEALTHY_THRESHOLD: u32 = 3;
    pub const CONSECUTIVE_FAILURES: u32 = 5;
    pub const BASE_EJECTION: Duration = Duration::from_secs(30);
    pub const MAX_EJECTION: Duration = Duration::from_secs(300);
    pub const MAX_EJECTED_PERCENT: u32 = 50;
    pub const SLOW_START_AGGRESSION: f64 = 1.0;
    pub const SLOW_START_MIN_WEIGHT_PERCENT: u32 = 10;
    pub const RETRY_BUFFER_BYTES: usize = 64 * 1024;
    pub const RETRY_BUDGET_RATIO: f64 = 0.2;
    pub const RETRY_BUDGET_MIN_PER_SECOND: u32 = 10;
    pub const DNS_REFRESH: Duration = Duration::from_secs(5);
    pub const GRPC: super::GrpcConfig = super::GrpcConfig {
        failure_statuses: crate::grpc::StatusSet::SERVER_FAILURES,
    };

    pub const LIMITS: super::ListenerLimits = super::ListenerLimits {
        max_connections: MAX_CONNECTIONS,
        header_read_timeout: HEADER_READ_TIMEOUT,
        max_header_bytes: MAX_HEADER_BYTES,
        max_headers: MAX_HEADERS,
        max_body_bytes: None,
        body_timeout: BODY_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
        h2_max_concurrent_streams: H2_MAX_CONCURRENT_STREAMS,
    };
    pub const OUTLIER: super::OutlierConfig = super::OutlierConfig {
        enabled: true,
        consecutive_failures: CONSECUTIVE_FAILURES,
        base_ejection: BASE_EJECTION,
        max_ejection: MAX_EJECTION,
        max_ejected_percent: MAX_EJECTED_PERCENT,
    };
    pub const RETRY: super::RetryConfig = super::RetryConfig {
        attempts: 0,
        on: super::RetryOn {
            server_error: true,
            reset: true,
            timeout: true,
            grpc: crate::grpc::StatusSet::EMPTY,
        },
        per_try_timeout: None,
        buffer_bytes: RETRY_BUFFER_BYTES,
        budget_ratio: RETRY_BUDGET_RATIO,
        budget_min_per_second: RETRY_BUDGET_MIN_PER_SECOND,
    };
    /// 20 buckets from 0.5 ms to 10 s.
    pub const BUCKETS: [f64; 20] = [
        0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
        0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
}

/// A configuration that could not be loaded: every problem found, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type or an unknown key; the message has the line and column.
    #[error("{0}")]
    Parse(String),
    #[error("{}", ConfigIssues(.0))]
    Invalid(Vec<ConfigIssue>),
}

/// A value whose text does not parse, from the `FromStr` of the config type
/// it would become. The message names the value and shows how to write it,
/// but not the key: validation adds the key path when it records the issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

/// One semantic problem, named by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// For example `services[1].groups[0].weight`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct ConfigIssues<'a>(&'a [ConfigIssue]);

impl fmt::Display for ConfigIssues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} error{} in config",
            if count == 1 { "" } else { "s" }
        )?;
        for issue in self.0 {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let raw = raw::parse(text)?;
        validate::validate(raw).map_err(ConfigError::Invalid)
    }

    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services
            .iter()
            .position(|service| service.name == name)
    }
}

impl ServiceConfig {
    /// The group rollbacks return to: the one named `stable`, else the first.
    pub fn stable_group(&self) -> usize {
        self.groups
            .iter()
            .position(|group| group.name == defaults::DEFAULT_GROUP)
            .unwrap_or(0)
    }
}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Config::from_yaml(&text)
}
