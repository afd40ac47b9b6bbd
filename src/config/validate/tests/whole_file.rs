//! Whole files: the full and minimal configs, the example file, and that every problem is collected.

use super::*;

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
    timeouts: { connect: 250ms, request: 5s, idle: 2m }
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
    retry:
      attempts: 3
      on: [reset, 5xx]
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
                        matches: RouteMatch {
                            host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                            path_prefix: Some("/v1".into()),
                            headers: vec![header("x-env", "staging")],
                            client_identity: None,
                        },
                        service: 0,
                    },
                    RouteConfig {
                        name: "rest".into(),
                        matches: RouteMatch::default(),
                        service: 1,
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
                    matches: RouteMatch::default(),
                    service: 0,
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
                        deployment: "loadapi-stable".into(),
                    },
                    GroupConfig {
                        name: "canary".into(),
                        weight: 0,
                        endpoints: vec![addr("[::1]:9003")],
                        dns: None,
                        deployment: "loadapi-v2".into(),
                    },
                    GroupConfig {
                        name: "next".into(),
                        weight: 100,
                        endpoints: vec![addr("10.0.0.1:80")],
                        dns: None,
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
                retry: RetryConfig {
                    attempts: 3,
                    on: RetryOn {
                        server_error: true,
                        reset: true,
                        timeout: false,
                    },
                    per_try_timeout: Some(Duration::from_secs(1)),
                    buffer_bytes: 1024,
                    budget_ratio: 0.1,
                    budget_min_per_second: 5,
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
                    deployment: "simple-stable".into(),
                }],
                split: SplitConfig {
                    override_header: None,
                    sticky: Some(StickyKey::Header(HeaderName::from_static("x-user-id"))),
                },
                rollout: None,
                health_check: None,
                outlier: defaults::OUTLIER,
                retry: defaults::RETRY,
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
fn example_file_is_valid() {
    let config = load(EXAMPLE);
    assert_eq!(config.admin.listen, addr("127.0.0.1:9901"));
    let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["edge", "secure", "internal"]);
    assert_eq!(config.listeners[2].listen, addr("[::1]:8081"));
    assert_eq!(
        config.listeners[1]
            .tls
            .as_ref()
            .map(|tls| tls.certificates.len()),
        Some(2)
    );
    assert_eq!(
        config.listeners[0].limits,
        ListenerLimits {
            max_body_bytes: Some(10 << 20),
            ..defaults::LIMITS
        }
    );
    assert_eq!(config.listeners[2].limits, defaults::LIMITS);
    let first = &config.listeners[0].routes[0];
    assert_eq!(
        first.matches,
        RouteMatch {
            host: Some(HostMatch::WildcardSuffix(".example.com".into())),
            path_prefix: Some("/v1".into()),
            headers: vec![header("x-env", "staging")],
            client_identity: None,
        }
    );
    assert_eq!(config.services[first.service].name, "loadapi");
    let loadapi = &config.services[0];
    let weights: Vec<u32> = loadapi.groups.iter().map(|g| g.weight).collect();
    assert_eq!(weights, [95, 5]);
    assert_eq!(loadapi.groups[0].deployment, "loadapi-primary");
    assert_eq!(loadapi.groups[1].deployment, "loadapi-canary");
    assert_eq!(
        loadapi.split.sticky,
        Some(StickyKey::Header(HeaderName::from_static("x-user-id")))
    );
    let rollout = loadapi.rollout.as_ref().unwrap();
    assert_eq!(rollout.group, "canary");
    assert_eq!(rollout.steps, [5, 25, 50, 100]);
    assert_eq!(rollout.max_error_rate, 0.01);
    assert_eq!(loadapi.timeouts.idle, defaults::IDLE_TIMEOUT);
    let check = loadapi.health_check.as_ref().unwrap();
    assert_eq!(check.path, "/healthz");
    assert_eq!(check.interval, defaults::HEALTH_INTERVAL);
    assert_eq!(check.timeout, defaults::HEALTH_TIMEOUT);
    assert_eq!(loadapi.outlier, defaults::OUTLIER);
    assert_eq!(
        loadapi.retry,
        RetryConfig {
            attempts: 2,
            per_try_timeout: Some(Duration::from_secs(2)),
            ..defaults::RETRY
        }
    );
    // The other services show that every section is optional.
    assert_eq!(config.services[1].health_check, None);
    assert_eq!(config.services[1].retry, defaults::RETRY);
    assert_eq!(config.services[1].groups[0].name, defaults::DEFAULT_GROUP);
    let shop = &config.services[2];
    assert_eq!(shop.split.override_header, None);
    assert_eq!(shop.split.sticky, Some(StickyKey::Cookie("session".into())));
    assert!(config.metrics.linkerd_compatible);
    assert_eq!(
        config.state_file.as_deref(),
        Some(std::path::Path::new("/var/lib/luas/state.json"))
    );
    let catalog = &config.services[3];
    assert_eq!(
        catalog.groups[0].dns,
        Some(DnsConfig {
            name: "catalog-v1.default.svc.cluster.local".into(),
            port: 8080,
            refresh: defaults::DNS_REFRESH,
        })
    );
    assert!(catalog.groups[0].endpoints.is_empty());
    assert_eq!(catalog.groups[1].dns, None);
    let search = &config.services[4].groups[0];
    assert_eq!(search.name, defaults::DEFAULT_GROUP);
    assert_eq!(
        search.dns.as_ref().map(|dns| dns.refresh),
        Some(Duration::from_secs(10))
    );
    assert_eq!(config.discovery.resolvers, vec![addr("10.96.0.10:53")]);
}

/// The example is the user documentation, so it must show every key.
/// A new key in `raw` needs a line in the example and an assertion here.
#[test]
fn example_file_uses_every_key() {
    let raw = raw::parse(EXAMPLE).unwrap();
    assert!(raw.admin.and_then(|a| a.listen).is_some(), "admin.listen");
    assert!(
        raw.listeners.iter().any(|l| l.protocol.is_some()),
        "protocol"
    );
    let matches: Vec<&raw::RawMatch> = raw
        .listeners
        .iter()
        .flat_map(|l| &l.routes)
        .filter_map(|r| r.matches.as_ref())
        .collect();
    assert!(matches.iter().any(|m| m.host.is_some()), "match.host");
    assert!(
        matches.iter().any(|m| m.path_prefix.is_some()),
        "path_prefix"
    );
    assert!(matches.iter().any(|m| !m.headers.0.is_empty()), "headers");
    let limits = raw
        .listeners
        .iter()
        .find_map(|l| l.limits.as_ref())
        .unwrap();
    assert!(limits.max_connections.is_some(), "max_connections");
    assert!(limits.header_read_timeout.is_some(), "header_read_timeout");
    assert!(limits.max_header_bytes.is_some(), "max_header_bytes");
    assert!(limits.max_headers.is_some(), "max_headers");
    assert!(limits.max_body_bytes.is_some(), "max_body_bytes");
    assert!(limits.body_timeout.is_some(), "body_timeout");
    assert!(limits.idle_timeout.is_some(), "limits.idle_timeout");
    assert!(
        limits.h2_max_concurrent_streams.is_some(),
        "h2_max_concurrent_streams"
    );
    let services = &raw.services;
    assert!(services.iter().any(|s| s.balancer.is_some()), "balancer");
    assert!(services.iter().any(|s| s.protocol.is_some()), "protocol");
    assert!(services.iter().any(|s| s.endpoints.is_some()), "endpoints");
    let timeouts = services.iter().find_map(|s| s.timeouts.as_ref()).unwrap();
    assert!(timeouts.connect.is_some() && timeouts.request.is_some());
    assert!(timeouts.idle.is_some(), "timeouts.idle");
    let ewma = services.iter().find_map(|s| s.ewma.as_ref()).unwrap();
    assert!(ewma.decay.is_some() && ewma.default_rtt.is_some());
    assert!(ewma.failure_penalty.is_some());
    let groups = services.iter().find_map(|s| s.groups.as_ref()).unwrap();
    assert!(groups.iter().any(|g| g.weight.is_some()), "weight");
    assert!(groups.iter().any(|g| g.deployment.is_some()), "deployment");
    let groups: Vec<&raw::RawGroup> = services
        .iter()
        .filter_map(|s| s.groups.as_ref())
        .flatten()
        .collect();
    assert!(groups.iter().any(|g| g.dns.is_some()), "groups[].dns");
    assert!(
        groups.iter().any(|g| g.refresh.is_some()),
        "groups[].refresh"
    );
    assert!(services.iter().any(|s| s.dns.is_some()), "services[].dns");
    assert!(
        services.iter().any(|s| s.refresh.is_some()),
        "services[].refresh"
    );
    assert!(
        services.iter().any(|s| s.override_header.is_some()),
        "override_header"
    );
    let sticky: Vec<&raw::RawSticky> = services.iter().filter_map(|s| s.sticky.as_ref()).collect();
    assert!(sticky.iter().any(|s| s.header.is_some()), "sticky.header");
    assert!(sticky.iter().any(|s| s.cookie.is_some()), "sticky.cookie");
    let rollout = services.iter().find_map(|s| s.rollout.as_ref()).unwrap();
    assert!(rollout.min_requests.is_some(), "min_requests");
    assert!(rollout.max_error_rate.is_some(), "max_error_rate");
    assert!(rollout.max_p99_ratio.is_some(), "max_p99_ratio");
    assert!(rollout.tick.is_some(), "tick");
    let check = services
        .iter()
        .find_map(|s| s.health_check.as_ref())
        .unwrap();
    assert!(check.interval.is_some(), "health_check.interval");
    assert!(check.timeout.is_some(), "health_check.timeout");
    assert!(check.healthy_threshold.is_some(), "healthy_threshold");
    assert!(check.unhealthy_threshold.is_some(), "unhealthy_threshold");
    let outlier = services.iter().find_map(|s| s.outlier.as_ref()).unwrap();
    assert!(outlier.enabled.is_some(), "outlier.enabled");
    assert!(
        outlier.consecutive_failures.is_some(),
        "consecutive_failures"
    );
    assert!(outlier.base_ejection.is_some(), "base_ejection");
    assert!(outlier.max_ejection.is_some(), "max_ejection");
    assert!(outlier.max_ejected_percent.is_some(), "max_ejected_percent");
    let retry = services.iter().find_map(|s| s.retry.as_ref()).unwrap();
    assert!(retry.attempts.is_some(), "attempts");
    assert!(retry.on.is_some(), "retry.on");
    assert!(retry.per_try_timeout.is_some(), "per_try_timeout");
    assert!(retry.buffer_bytes.is_some(), "buffer_bytes");
    let budget = retry.budget.as_ref().unwrap();
    assert!(budget.ratio.is_some(), "budget.ratio");
    assert!(budget.min_per_second.is_some(), "budget.min_per_second");
    let metrics = raw.metrics.unwrap();
    assert!(metrics.buckets.is_some(), "buckets");
    assert!(metrics.linkerd_compatible.is_some(), "linkerd_compatible");
    assert!(metrics.namespace.is_some(), "namespace");
    assert!(
        raw.shutdown.and_then(|s| s.grace_period).is_some(),
        "grace_period"
    );
    assert!(raw.state_file.is_some(), "state_file");
    assert!(
        raw.discovery.and_then(|d| d.resolvers).is_some(),
        "discovery.resolvers"
    );
}

#[test]
fn example_file_uses_every_tls_and_admin_key() {
    let raw = raw::parse(EXAMPLE).unwrap();
    let admin = raw.admin.as_ref().unwrap();
    assert!(admin.token_file.is_some(), "admin.token_file");
    assert!(
        admin.allow_unauthenticated_admin.is_some(),
        "allow_unauthenticated_admin"
    );
    let tls: Vec<&raw::RawListenerTls> = raw
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .collect();
    assert!(
        tls.iter().any(|t| t.certificates.is_some()),
        "tls.certificates"
    );
    assert!(tls.iter().any(|t| t.client_ca.is_some()), "tls.client_ca");
    assert!(
        raw.listeners
            .iter()
            .flat_map(|l| &l.routes)
            .filter_map(|r| r.matches.as_ref())
            .any(|m| m.client_identity.is_some()),
        "client_identity"
    );
    let upstream = raw.services.iter().find_map(|s| s.tls.as_ref()).unwrap();
    assert!(upstream.ca.is_some() && upstream.server_name.is_some());
    assert!(upstream.cert.is_some() && upstream.key.is_some());
    assert!(upstream.insecure_skip_verify.is_some());
    assert!(
        raw.access_log.and_then(|a| a.enabled).is_some(),
        "access_log.enabled"
    );
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
