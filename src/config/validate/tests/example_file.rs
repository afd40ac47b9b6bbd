//! The example file `config/example.yaml`: it is valid and, being the user
//! documentation, shows every key.

use super::*;

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
        [RouteMatch {
            host: Some(HostMatch::WildcardSuffix(".example.com".into())),
            path: Some(PathMatch::Prefix("/v1".into())),
            headers: vec![header("x-env", "staging")],
            ..RouteMatch::default()
        }]
    );
    assert_eq!(config.services[first.service.unwrap()].name, "loadapi");
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
        loadapi.slow_start,
        Some(SlowStartConfig {
            window: Duration::from_secs(30),
            aggression: defaults::SLOW_START_AGGRESSION,
            min_weight_percent: defaults::SLOW_START_MIN_WEIGHT_PERCENT,
        })
    );
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
        .filter_map(|r| r.single.as_ref())
        .collect();
    assert!(matches.iter().any(|m| m.host.is_some()), "match.host");
    assert!(
        matches.iter().any(|m| m.path_prefix.is_some()),
        "path_prefix"
    );
    assert!(
        matches.iter().any(|m| !m.headers.entries.is_empty()),
        "headers"
    );
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
    assert!(
        groups
            .iter()
            .any(|g| g.kubernetes.as_ref().is_some_and(|k| k.namespace.is_some())),
        "groups[].kubernetes.namespace"
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
    let slow_start = services.iter().find_map(|s| s.slow_start.as_ref()).unwrap();
    assert!(slow_start.window.is_some(), "slow_start.window");
    assert!(slow_start.aggression.is_some(), "slow_start.aggression");
    assert!(
        slow_start.min_weight_percent.is_some(),
        "slow_start.min_weight_percent"
    );
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
            .filter_map(|r| r.single.as_ref())
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
