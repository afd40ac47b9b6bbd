//! Whole files: the full and the minimal config become the expected values,
//! and every problem in a file is collected, not just the first.

use super::*;
use crate::config::{GrpcConfig, KubernetesConfig};
use crate::grpc::StatusSet;

const FULL: &str = "\
admin:
  listen: 127.0.0.1:9999
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    protocol: http2
    routes:
      - name: api
        match:
          host: \"*.Example.COM\"
          path_prefix: /v1/
          headers: { X-Env: staging }
        service: loadapi
      - name: rest
        service: simple
    limits:
      max_connections: 500
      header_read_timeout: 5s
      max_header_bytes: 16KiB
      max_headers: 50
      max_body_bytes: 1MB
      body_timeout: 20s
      idle_timeout: 90s
      h2_max_concurrent_streams: 250
  - name: internal
    listen: '[::1]:8081'
    routes:
      - { name: all, service: loadapi }
services:
  - name: loadapi
    balancer: least-request
    protocol: http2
    timeouts: { connect: 250ms, request: 5s, idle: 2m, response_idle: 0 }
    grpc: { failure_statuses: [unavailable, 13, DATA_LOSS] }
    ewma: { decay: 5s, default_rtt: 10ms, failure_penalty: 2s }
    health_check:
      path: /healthz?deep=1
      interval: 2s
      timeout: 500ms
      healthy_threshold: 1
      unhealthy_threshold: 4
    outlier:
      enabled: false
      consecutive_failures: 3
      base_ejection: 10s
      max_ejection: 1m
      max_ejected_percent: 30
    slow_start: { window: 45s, aggression: 2, min_weight_percent: 5 }
    retry:
      attempts: 3
      on: [reset, 5xx, unavailable, resource-exhausted]
      per_try_timeout: 1s
      buffer_bytes: 1024
      budget: { ratio: 10%, min_per_second: 5 }
    groups:
      - { name: stable, weight: 90, endpoints: [127.0.0.1:9001, 127.0.0.1:9002] }
      - { name: canary, weight: 0, endpoints: ['[::1]:9003'], deployment: loadapi-v2 }
      - { name: next, endpoints: [10.0.0.1:80] }
    override_header: X-Pick-Group
    sticky: { cookie: session_id }
    rollout:
      group: canary
      steps: [10, 50, 100]
      interval: 2m
      min_requests: 500
      max_error_rate: 0.5%
      max_p99_ratio: 2
      tick: 5s
  - name: simple
    endpoints: [127.0.0.1:9004]
    override_header: ''
    sticky: { header: X-User-Id }
metrics:
  buckets: [0.001, 0.01, 0.1, 1]
  linkerd_compatible: true
  namespace: shop-prod
shutdown:
  grace_period: 1m
state_file: /var/lib/luas/state.json
";

#[test]
fn full_config_becomes_the_expected_values() {
    let config = load(FULL);
    let expected = Config {
        admin: AdminConfig {
            listen: addr("127.0.0.1:9999"),
            token_file: None,
            allow_unauthenticated_admin: false,
        },
        listeners: vec![
            ListenerConfig {
                name: "edge".into(),
                listen: addr("0.0.0.0:8080"),
                protocol: ListenerProtocol::Http2,
                routes: vec![
                    RouteConfig {
                        name: "api".into(),
                        matches: vec![RouteMatch {
                            host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                            path: Some(PathMatch::Prefix("/v1".into())),
                            headers: vec![header("x-env", "staging")],
                            ..RouteMatch::default()
                        }],
                        filters: Vec::new(),
                        service: Some(0),
                        timeouts: RouteTimeouts::default(),
                        retry: None,
                    },
                    RouteConfig {
                        name: "rest".into(),
                        matches: vec![RouteMatch::default()],
                        filters: Vec::new(),
                        service: Some(1),
                        timeouts: RouteTimeouts::default(),
                        retry: None,
                    },
                ],
                limits: ListenerLimits {
                    max_connections: 500,
                    header_read_timeout: Duration::from_secs(5),
                    max_header_bytes: 16 * 1024,
                    max_headers: 50,
                    max_body_bytes: Some(1_000_000),
                    body_timeout: Duration::from_secs(20),
                    idle_timeout: Duration::from_secs(90),
                    h2_max_concurrent_streams: 250,
                },
                tls: None,
            },
            ListenerConfig {
                name: "internal".into(),
                listen: addr("[::1]:8081"),
                protocol: ListenerProtocol::Auto,
                routes: vec![RouteConfig {
                    name: "all".into(),
                    matches: vec![RouteMatch::default()],
                    filters: Vec::new(),
                    service: Some(0),
                    timeouts: RouteTimeouts::default(),
                    retry: None,
                }],
                limits: defaults::LIMITS,
                tls: None,
            },
        ],
        services: vec![
            ServiceConfig {
                name: "loadapi".into(),
                balancer: BalancerKind::LeastRequest,
                protocol: UpstreamProtocol::Http2,
                tls: None,
                timeouts: Timeouts {
                    connect: Duration::from_millis(250),
                    request: Duration::from_secs(5),
                    idle: Duration::from_secs(120),
                    response_idle: None,
                },
                ewma: EwmaConfig {
                    decay: Duration::from_secs(5),
                    default_rtt: Duration::from_millis(10),
                    failure_penalty: Duration::from_secs(2),
                },
                groups: vec![
                    GroupConfig {
                        name: "stable".into(),
                        weight: 90,
                        endpoints: vec![addr("127.0.0.1:9001"), addr("127.0.0.1:9002")],
                        dns: None,
                        kubernetes: None,
                        deployment: "loadapi-stable".into(),
                    },
                    GroupConfig {
                        name: "canary".into(),
                        weight: 0,
                        endpoints: vec![addr("[::1]:9003")],
                        dns: None,
                        kubernetes: None,
                        deployment: "loadapi-v2".into(),
                    },
                    GroupConfig {
                        name: "next".into(),
                        weight: 100,
                        endpoints: vec![addr("10.0.0.1:80")],
                        dns: None,
                        kubernetes: None,
                        deployment: "loadapi-next".into(),
                    },
                ],
                split: SplitConfig {
                    override_header: Some(HeaderName::from_static("x-pick-group")),
                    sticky: Some(StickyKey::Cookie("session_id".into())),
                },
                rollout: Some(RolloutConfig {
                    group: "canary".into(),
                    steps: vec![10, 50, 100],
                    interval: Duration::from_secs(120),
                    min_requests: 500,
                    max_error_rate: 0.005,
                    max_p99_ratio: 2.0,
                    tick: Duration::from_secs(5),
                }),
                health_check: Some(HealthCheckConfig {
                    path: "/healthz?deep=1".into(),
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_millis(500),
                    healthy_threshold: 1,
                    unhealthy_threshold: 4,
                }),
                outlier: OutlierConfig {
                    enabled: false,
                    consecutive_failures: 3,
                    base_ejection: Duration::from_secs(10),
                    max_ejection: Duration::from_secs(60),
                    max_ejected_percent: 30,
                },
                slow_start: Some(SlowStartConfig {
                    window: Duration::from_secs(45),
                    aggression: 2.0,
                    min_weight_percent: 5,
                }),
                retry: RetryConfig {
                    attempts: 3,
                    on: RetryOn {
                        server_error: true,
                        reset: true,
                        timeout: false,
                        grpc: StatusSet::of(&[8, 14]),
                    },
                    per_try_timeout: Some(Duration::from_secs(1)),
                    buffer_bytes: 1024,
                    budget_ratio: 0.1,
                    budget_min_per_second: 5,
                },
                grpc: GrpcConfig {
                    failure_statuses: StatusSet::of(&[13, 14, 15]),
                },
            },
            ServiceConfig {
                name: "simple".into(),
                balancer: BalancerKind::P2cEwma,
                protocol: UpstreamProtocol::Http1,
                tls: None,
                timeouts: Timeouts {
                    connect: defaults::CONNECT_TIMEOUT,
                    request: defaults::REQUEST_TIMEOUT,
                    idle: defaults::IDLE_TIMEOUT,
                    response_idle: Some(defaults::REQUEST_TIMEOUT),
                },
                ewma: EwmaConfig {
                    decay: defaults::EWMA_DECAY,
                    default_rtt: defaults::DEFAULT_RTT,
                    failure_penalty: defaults::FAILURE_PENALTY,
                },
                groups: vec![GroupConfig {
                    name: "stable".into(),
                    weight: 100,
                    endpoints: vec![addr("127.0.0.1:9004")],
                    dns: None,
                    kubernetes: None,
                    deployment: "simple-stable".into(),
                }],
                split: SplitConfig {
                    override_header: None,
                    sticky: Some(StickyKey::Header(HeaderName::from_static("x-user-id"))),
                },
                rollout: None,
                health_check: None,
                outlier: defaults::OUTLIER,
                slow_start: None,
                retry: defaults::RETRY,
                grpc: defaults::GRPC,
            },
        ],
        metrics: MetricsConfig {
            buckets: vec![0.001, 0.01, 0.1, 1.0],
            linkerd_compatible: true,
            namespace: "shop-prod".into(),
        },
        shutdown: ShutdownConfig {
            grace_period: Duration::from_secs(60),
        },
        state_file: Some(PathBuf::from("/var/lib/luas/state.json")),
        access_log: AccessLogConfig::default(),
        discovery: DiscoveryConfig::default(),
        kubernetes: KubernetesConfig::default(),
        fleet: None,
    };
    assert_eq!(config, expected);
}

#[test]
fn minimal_config_gets_every_default() {
    let config = load(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:9000] }\n",
    ));
    assert_eq!(config.admin.listen, addr("127.0.0.1:9901"));
    assert_eq!(config.listeners[0].protocol, ListenerProtocol::Auto);
    assert_eq!(
        config.listeners[0].limits,
        ListenerLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: None,
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 100,
        }
    );
    let service = &config.services[0];
    assert_eq!(service.balancer, BalancerKind::P2cEwma);
    assert_eq!(service.protocol, UpstreamProtocol::Http1);
    assert_eq!(service.timeouts.connect, Duration::from_secs(1));
    assert_eq!(service.timeouts.request, Duration::from_secs(30));
    assert_eq!(service.timeouts.idle, Duration::from_secs(60));
    assert_eq!(service.ewma.decay, Duration::from_secs(10));
    assert_eq!(service.ewma.default_rtt, Duration::from_millis(30));
    assert_eq!(service.ewma.failure_penalty, Duration::from_secs(1));
    assert_eq!(
        service.groups,
        vec![GroupConfig {
            name: "stable".into(),
            weight: 100,
            endpoints: vec![addr("127.0.0.1:9000")],
            dns: None,
            kubernetes: None,
            deployment: "web-stable".into(),
        }]
    );
    assert_eq!(
        service.split,
        SplitConfig {
            override_header: Some(HeaderName::from_static(defaults::OVERRIDE_HEADER)),
            sticky: None,
        }
    );
    assert_eq!(service.rollout, None);
    assert_eq!(service.health_check, None);
    assert_eq!(
        service.outlier,
        OutlierConfig {
            enabled: true,
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    );
    assert_eq!(
        service.retry,
        RetryConfig {
            attempts: 0,
            on: RetryOn {
                server_error: true,
                reset: true,
                timeout: true,
                grpc: StatusSet::EMPTY,
            },
            per_try_timeout: None,
            buffer_bytes: 64 * 1024,
            budget_ratio: 0.2,
            budget_min_per_second: 10,
        }
    );
    assert_eq!(config.metrics.buckets, defaults::BUCKETS.to_vec());
    assert!(!config.metrics.linkerd_compatible);
    assert_eq!(config.metrics.namespace, defaults::NAMESPACE);
    assert_eq!(config.shutdown.grace_period, Duration::from_secs(10));
    assert_eq!(config.state_file, None);
}

#[test]
fn admin_section_without_listen_uses_the_default() {
    let text = format!(
        "admin: {{}}\n{}",
        with_services("  - { name: web, endpoints: [127.0.0.1:9000] }\n")
    );
    assert_eq!(load(&text).admin.listen, addr("127.0.0.1:9901"));
}

#[test]
fn every_problem_is_collected() {
    let text = "\
listeners:
  - name: edge
    listen: 0.0.0.0:80
    routes:
      - { name: a, match: { host: 'x.*', path_prefix: nope }, service: missing }
  - { name: edge, listen: nowhere, routes: [] }
services:
  - name: web
    timeouts: { connect: 0s }
    groups:
      - { name: g, weight: 0, endpoints: [bad] }
      - { name: g, weight: 0, endpoints: [] }
metrics: { buckets: [1, 0.5] }
";
    let found = issues(text);
    assert_eq!(
        paths(&found),
        [
            "listeners[0].routes[0].match.host",
            "listeners[0].routes[0].match.path_prefix",
            "listeners[0].routes[0].service",
            "listeners[1].name",
            "listeners[1].listen",
            "listeners[1].routes",
            "services[0].timeouts.connect",
            "services[0].groups[0].endpoints[0]",
            "services[0].groups[1].name",
            "services[0].groups[1].endpoints",
            "services[0].groups",
            "metrics.buckets[1]",
        ],
        "{found:#?}"
    );
}

#[test]
fn every_problem_with_the_new_keys_is_collected() {
    let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
services:
  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: Stable }
      - { name: canary, endpoints: [127.0.0.1:2] }
    override_header: 'a b'
    sticky: {}
    rollout:
      group: stable
      steps: [50, 10]
      interval: 0s
      max_error_rate: 2
      max_p99_ratio: 0
      tick: 0s
metrics: { namespace: Default }
state_file: ''
";
    let found = issues(text);
    assert_eq!(
        paths(&found),
        [
            "services[0].groups[0].deployment",
            "services[0].override_header",
            "services[0].sticky",
            "services[0].rollout.group",
            "services[0].rollout.steps[1]",
            "services[0].rollout.interval",
            "services[0].rollout.tick",
            "services[0].rollout.max_error_rate",
            "services[0].rollout.max_p99_ratio",
            "metrics.namespace",
            "state_file",
        ],
        "{found:#?}"
    );
}

#[test]
fn every_problem_with_the_resilience_keys_is_collected() {
    let text = "\
listeners:
  - name: edge
    listen: 0.0.0.0:80
    routes: [{ name: r, service: web }]
    limits: { max_connections: 0, max_header_bytes: 1KiB, h2_max_concurrent_streams: 0 }
services:
  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { request: 1s, idle: 0s }
    health_check: { path: healthz, interval: 1s, timeout: 2s, unhealthy_threshold: 0 }
    outlier: { consecutive_failures: 0, base_ejection: 1m, max_ejection: 1s }
    slow_start: { window: 0s, aggression: 0, min_weight_percent: 0 }
    retry:
      attempts: 99
      on: [5xx, gateway]
      per_try_timeout: 5s
      buffer_bytes: 1TB
      budget: { ratio: 2 }
";
    let found = issues(text);
    assert_eq!(
        paths(&found),
        [
            "listeners[0].limits.max_connections",
            "listeners[0].limits.max_header_bytes",
            "listeners[0].limits.h2_max_concurrent_streams",
            "services[0].timeouts.idle",
            "services[0].health_check.path",
            "services[0].health_check.timeout",
            "services[0].health_check.unhealthy_threshold",
            "services[0].outlier.consecutive_failures",
            "services[0].outlier.max_ejection",
            "services[0].slow_start.window",
            "services[0].slow_start.aggression",
            "services[0].slow_start.min_weight_percent",
            "services[0].retry.attempts",
            "services[0].retry.on[1]",
            "services[0].retry.per_try_timeout",
            "services[0].retry.buffer_bytes",
            "services[0].retry.budget.ratio",
        ],
        "{found:#?}"
    );
}

#[test]
fn from_yaml_reports_issues_as_invalid() {
    let error = Config::from_yaml("services:\n  - { name: web, endpoints: [] }\n").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("2 errors in config"), "{text}");
    assert!(text.contains("\n  listeners: no listeners"), "{text}");
    assert!(
        text.contains("\n  services[0].endpoints: the endpoint list is empty"),
        "{text}"
    );
}
