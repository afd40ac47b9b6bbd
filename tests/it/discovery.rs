//! DNS discovery end to end: a group's endpoints come from the A and AAAA
//! records a small in-test DNS server answers (as a Kubernetes headless
//! Service answers one record per ready pod), and follow them as they
//! change, while failed and empty lookups keep the last set.
//!
//! The pods behind one name share a port, as they do in Kubernetes, so each
//! backend listens on its own loopback address (127.0.0.1, 127.0.0.2, …,
//! ::1) with the same port.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::support::dns::{DnsAnswer, DnsServer};
use crate::support::*;
use http::{Method, StatusCode};
use luas::config::ConfigError;

const NAME: &str = "web.luas.test";
const WAIT: Duration = Duration::from_secs(10);

/// Backends on the same port at each of `ips`, the pods of one Service.
async fn pods(ips: &[&str], options: impl Fn(usize) -> BackendOptions) -> Vec<Backend> {
    // The first gets a free port; the others try it on their address, and
    // all start again on another port in the rare case it is taken there.
    for _ in 0..20 {
        let first: SocketAddr = format!("{}:0", bracketed(ips[0])).parse().unwrap();
        let Ok(first) = Backend::spawn_on(first, options(0)).await else {
            continue;
        };
        let port = first.address.port();
        let mut backends = vec![first];
        for (index, ip) in ips.iter().enumerate().skip(1) {
            let address = format!("{}:{port}", bracketed(ip)).parse().unwrap();
            match Backend::spawn_on(address, options(index)).await {
                Ok(backend) => backends.push(backend),
                Err(_) => break,
            }
        }
        if backends.len() == ips.len() {
            return backends;
        }
    }
    panic!("no port free on every one of {ips:?}");
}

fn bracketed(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}

fn named(index: usize) -> BackendOptions {
    BackendOptions::new(["a", "b", "c", "d"][index])
}

/// One listener in front of service `web`, whose single group is found under
/// `NAME:port`, looked up every 100 ms from `dns`; `service_extra` is spliced
/// into the service.
fn dns_yaml(dns: &DnsServer, port: u16, service_extra: &str) -> String {
    format!(
        r#"
{EDGE_TO_WEB}services:
  - name: web
    dns: "{NAME}:{port}"
    refresh: 100ms
{service_extra}
discovery:
  resolvers: ["{}"]
"#,
        dns.address
    )
}

async fn ready(proxy: &Running) -> StatusCode {
    get(proxy.admin_address(), "/ready", &[]).await.status
}

async fn eventually_ready(proxy: &Running) {
    let ready = eventually(WAIT, || async { ready(proxy).await == StatusCode::OK }).await;
    assert!(ready, "/ready never answered 200");
}

/// The endpoint addresses of group `group` of service `web`, from the admin API.
async fn endpoints(proxy: &Running, group: &str) -> Vec<String> {
    let (_, service) = api(proxy, Method::GET, "/api/v1/services/web", "").await;
    service["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == group)
        .unwrap_or_else(|| panic!("no group {group}: {service}"))["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| endpoint["address"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_for_endpoints(proxy: &Running, group: &str, backends: &[&Backend]) {
    let mut wanted: Vec<String> = backends.iter().map(|b| b.address.to_string()).collect();
    wanted.sort();
    let found = eventually(WAIT, || async {
        let mut found = endpoints(proxy, group).await;
        found.sort();
        found == wanted
    })
    .await;
    assert!(
        found,
        "group {group} never had exactly {wanted:?}; it has {:?}",
        endpoints(proxy, group).await
    );
}

fn lookups(metrics: &str, group: &str, result: &str) -> f64 {
    sample(
        metrics,
        &format!(
            r#"luas_discovery_lookups_total{{group="{group}",result="{result}",service="web"}}"#
        ),
    )
    .unwrap_or(0.0)
}

/// Waits until `count` more lookups of `group` with `result` were counted.
async fn more_lookups(proxy: &Running, group: &str, result: &str, count: f64) {
    let start = lookups(&metrics_text(proxy).await, group, result);
    let counted = eventually(WAIT, || async {
        lookups(&metrics_text(proxy).await, group, result) >= start + count
    })
    .await;
    assert!(
        counted,
        "{count} more {result} lookups of {group} were not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_reaches_every_resolved_backend() {
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"];
    let backends = pods(&ips, named).await;
    let dns = DnsServer::start().await;
    dns.set_records(NAME, &ips);
    let proxy = start_proxy(&dns_yaml(
        &dns,
        backends[0].address.port(),
        "    balancer: round-robin",
    ))
    .await;
    eventually_ready(&proxy).await;

    let client = client();
    for _ in 0..40 {
        let answer = send(&client, edge(&proxy), "/", &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    for backend in &backends {
        assert_eq!(
            backend.requests(),
            10,
            "{} at {}",
            backend.name,
            backend.address
        );
    }
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_discovery_endpoints{group="stable",service="web"}"#
        ),
        Some(4.0),
        "{metrics}"
    );
    assert!(lookups(&metrics, "stable", "ok") >= 1.0, "{metrics}");
    assert_eq!(lookups(&metrics, "stable", "error"), 0.0, "{metrics}");
    // Both record types were asked for.
    assert!(dns.queries(NAME) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_join_and_leave_while_requests_in_flight_finish() {
    let backends = pods(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], |index| {
        // b answers slowly, so a request to it is still running when it leaves.
        let latency = if index == 1 { 3000 } else { 0 };
        named(index).latency(Duration::from_millis(latency))
    })
    .await;
    let [a, b, c] = [&backends[0], &backends[1], &backends[2]];
    let dns = DnsServer::start().await;
    dns.set_records(NAME, &["127.0.0.1", "127.0.0.2"]);
    let proxy = start_proxy(&dns_yaml(
        &dns,
        a.address.port(),
        "    balancer: round-robin",
    ))
    .await;
    eventually_ready(&proxy).await;
    wait_for_endpoints(&proxy, "stable", &[a, b]).await;

    // A new record joins.
    dns.set_records(NAME, &["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    wait_for_endpoints(&proxy, "stable", &[a, b, c]).await;

    // One request to each, round-robin; the one to b stays in flight.
    let edge = edge(&proxy);
    let requests: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(edge, "/", &[]).await }))
        .collect();
    let unfinished = || requests.iter().filter(|r| !r.is_finished()).count();
    assert!(
        eventually(WAIT, || async { b.requests() == 1 && unfinished() == 1 }).await,
        "expected only the request to b in flight; b got {}",
        b.requests()
    );

    // b's record goes: b leaves the balancer while its request runs on.
    dns.set_records(NAME, &["127.0.0.1", "127.0.0.3"]);
    wait_for_endpoints(&proxy, "stable", &[a, c]).await;
    assert_eq!(unfinished(), 1, "b's request ended before b left");
    let mut bodies = Vec::new();
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        bodies.push(answer.body);
    }
    bodies.sort();
    assert_eq!(bodies, ["a\n", "b\n", "c\n"]);

    // No new request reaches b.
    let client = client();
    for _ in 0..20 {
        let answer = send(&client, edge, "/", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_ne!(answer.body, "b\n");
    }
    assert_eq!(b.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_stays_keeps_its_statistics() {
    let backends = pods(&["127.0.0.1", "127.0.0.2"], named).await;
    let [a, b] = [&backends[0], &backends[1]];
    let dns = DnsServer::start().await;
    dns.set_records(NAME, &["127.0.0.1"]);
    let proxy = start_proxy(&dns_yaml(&dns, a.address.port(), "")).await;
    eventually_ready(&proxy).await;
    for _ in 0..5 {
        assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");
    }

    dns.set_records(NAME, &["127.0.0.2", "127.0.0.1"]);
    wait_for_endpoints(&proxy, "stable", &[a, b]).await;
    let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    let endpoint_a = service["groups"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == a.address.to_string())
        .unwrap()
        .clone();
    assert_eq!(endpoint_a["requests"], 5, "{service}");
    // A fresh estimator would read the 30 ms default: a's measured one survived.
    assert!(endpoint_a["ewma_ms"].as_f64().unwrap() < 30.0, "{service}");
    let metrics = metrics_text(&proxy).await;
    let series = |backend: &Backend| {
        format!(
            r#"luas_backend_requests_total{{code="2xx",endpoint="{}",group="stable",service="web"}}"#,
            backend.address
        )
    };
    assert_eq!(sample(&metrics, &series(a)), Some(5.0), "{metrics}");
    assert_eq!(sample(&metrics, &series(b)), Some(0.0), "{metrics}");

    // And when the other one leaves again.
    dns.set_records(NAME, &["127.0.0.1"]);
    wait_for_endpoints(&proxy, "stable", &[a]).await;
    let metrics = metrics_text(&proxy).await;
    assert_eq!(sample(&metrics, &series(a)), Some(5.0), "{metrics}");
    // The series of an endpoint that left are dropped.
    assert_eq!(sample(&metrics, &series(b)), None, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_empty_lookups_keep_the_last_set_and_are_counted() {
    let backends = pods(&["127.0.0.1", "127.0.0.2"], named).await;
    let [a, b] = [&backends[0], &backends[1]];
    let dns = DnsServer::start().await;
    dns.set_records(NAME, &["127.0.0.1", "127.0.0.2"]);
    let proxy = start_proxy(&dns_yaml(
        &dns,
        a.address.port(),
        "    balancer: round-robin",
    ))
    .await;
    eventually_ready(&proxy).await;
    wait_for_endpoints(&proxy, "stable", &[a, b]).await;
    let gauge = r#"luas_discovery_endpoints{group="stable",service="web"}"#;

    for (answer, result) in [
        (DnsAnswer::ServFail, "error"),
        (DnsAnswer::NxDomain, "error"),
        (DnsAnswer::Records(Vec::new()), "empty"),
    ] {
        dns.set(NAME, answer.clone());
        more_lookups(&proxy, "stable", result, 3.0).await;
        assert_eq!(
            endpoints(&proxy, "stable").await.len(),
            2,
            "{answer:?} changed the set"
        );
        let metrics = metrics_text(&proxy).await;
        assert_eq!(sample(&metrics, gauge), Some(2.0), "{answer:?}: {metrics}");
        let client = client();
        let mut bodies: Vec<String> = Vec::new();
        for _ in 0..4 {
            let answer = send(&client, edge(&proxy), "/", &[]).await;
            assert_eq!(answer.status, StatusCode::OK);
            bodies.push(answer.body);
        }
        bodies.sort();
        assert_eq!(bodies, ["a\n", "a\n", "b\n", "b\n"], "{answer:?}");
        assert_eq!(ready(&proxy).await, StatusCode::OK, "{answer:?}");
    }
    let metrics = metrics_text(&proxy).await;
    assert!(lookups(&metrics, "stable", "error") >= 6.0, "{metrics}");
    assert!(lookups(&metrics, "stable", "empty") >= 3.0, "{metrics}");

    // Lookups go on: a good answer is followed again.
    dns.set_records(NAME, &["127.0.0.2"]);
    wait_for_endpoints(&proxy, "stable", &[b]).await;
    let metrics = metrics_text(&proxy).await;
    assert_eq!(sample(&metrics, gauge), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_until_every_weighted_dns_group_has_resolved() {
    let backends = pods(&["127.0.0.1", "127.0.0.2"], named).await;
    let [stable, canary] = [&backends[0], &backends[1]];
    let dns = DnsServer::start().await;
    dns.set(NAME, DnsAnswer::ServFail);
    dns.set("canary.luas.test", DnsAnswer::ServFail);
    // Both groups are discovered; the canary, at weight 0, has no pods yet.
    let yaml = format!(
        r#"
{EDGE_TO_WEB}services:
  - name: web
    groups:
      - {{ name: stable, weight: 100, dns: "{NAME}:{}", refresh: 100ms }}
      - {{ name: canary, weight: 0, dns: "canary.luas.test:{}", refresh: 100ms }}
discovery:
  resolvers: ["{}"]
"#,
        stable.address.port(),
        canary.address.port(),
        dns.address
    );
    let proxy = start_proxy(&yaml).await;
    more_lookups(&proxy, "stable", "error", 2.0).await;
    assert_eq!(ready(&proxy).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(endpoints(&proxy, "stable").await.is_empty());
    let empty = get(edge(&proxy), "/", &[]).await;
    assert_eq!(empty.status, StatusCode::SERVICE_UNAVAILABLE, "{empty:?}");
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_discovery_endpoints{group="stable",service="web"}"#
        ),
        Some(0.0),
        "{metrics}"
    );

    // The weighted group resolves: ready, though the weight-0 canary has not.
    dns.set_records(NAME, &["127.0.0.1"]);
    eventually_ready(&proxy).await;
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");
    let forced = get(edge(&proxy), "/", &[("x-luas-group", "canary")]).await;
    assert_eq!(forced.status, StatusCode::SERVICE_UNAVAILABLE, "{forced:?}");

    // Giving the unresolved canary weight does not take a serving replica
    // out of its Service: readiness waits on DNS only until it first holds.
    let weighted = yaml.replace("name: canary, weight: 0", "name: canary, weight: 10");
    proxy
        .state()
        .reload(Config::from_yaml(&weighted).unwrap())
        .unwrap();
    assert!(!proxy.state().load().every_dns_group_resolved());
    assert_eq!(ready(&proxy).await, StatusCode::OK);

    dns.set_records("canary.luas.test", &["127.0.0.2"]);
    let forced = eventually(Duration::from_secs(10), || async {
        get(edge(&proxy), "/", &[("x-luas-group", "canary")])
            .await
            .body
            == "b\n"
    })
    .await;
    assert!(forced, "the canary never resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_apply_to_discovered_endpoints() {
    let backends = pods(&["127.0.0.1", "127.0.0.2"], named).await;
    let [good, flaky] = [&backends[0], &backends[1]];
    let dns = DnsServer::start().await;
    dns.set_records(NAME, &["127.0.0.1", "127.0.0.2"]);
    let proxy = start_proxy(&dns_yaml(
        &dns,
        good.address.port(),
        "    balancer: round-robin
    outlier: { enabled: false }
    health_check: { path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 2 }",
    ))
    .await;
    eventually_ready(&proxy).await;
    let probed = eventually(WAIT, || async { flaky.requests() >= 2 }).await;
    assert!(probed, "the discovered endpoint was never probed");

    flaky.set_status(StatusCode::SERVICE_UNAVAILABLE);
    let healthy = format!(
        r#"luas_backend_healthy{{endpoint="{}",group="stable",service="web"}}"#,
        flaky.address
    );
    let out = eventually(WAIT, || async {
        sample(&metrics_text(&proxy).await, &healthy) == Some(0.0)
    })
    .await;
    assert!(out, "failing health checks never took the endpoint out");
    let client = client();
    for _ in 0..10 {
        assert_eq!(send(&client, edge(&proxy), "/", &[]).await.body, "a\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_start_stop_and_keep_discovery() {
    let backends = pods(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], named).await;
    let [a, b, c] = [&backends[0], &backends[1], &backends[2]];
    let port = a.address.port();
    let dns = DnsServer::start().await;
    dns.set_records("v1.luas.test", &["127.0.0.1"]);
    dns.set_records("v2.luas.test", &["127.0.0.2"]);
    dns.set_records("v3.luas.test", &["127.0.0.3"]);
    let yaml = |groups: &str| {
        format!(
            r#"
{EDGE_TO_WEB}services:
  - name: web
    groups:
{groups}
discovery:
  resolvers: ["{}"]
"#,
            dns.address
        )
    };
    let group = |name: &str, weight: u32, host: &str| {
        format!("      - {{ name: {name}, weight: {weight}, dns: \"{host}:{port}\", refresh: 100ms }}\n")
    };
    let directory = scratch("discovery-reload");
    let path = directory.join("luas.yaml");
    let write = |text: String| std::fs::write(&path, text).unwrap();
    let reload = |proxy: &Running| proxy.reloader().unwrap().reload("test").unwrap();

    write(yaml(&group("stable", 100, "v1.luas.test")));
    let proxy = start_from_file(&path).await;
    eventually_ready(&proxy).await;
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");

    // A new group starts being discovered. The stable group's name stays, so
    // it keeps its set across the reload, even though its lookups now fail.
    dns.set("v1.luas.test", DnsAnswer::ServFail);
    more_lookups(&proxy, "stable", "error", 1.0).await;
    write(yaml(&format!(
        "{}{}",
        group("stable", 100, "v1.luas.test"),
        group("canary", 0, "v2.luas.test")
    )));
    reload(&proxy);
    assert_eq!(endpoints(&proxy, "stable").await, [a.address.to_string()]);
    wait_for_endpoints(&proxy, "canary", &[b]).await;
    for _ in 0..5 {
        assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");
    }
    let forced = get(edge(&proxy), "/", &[("x-luas-group", "canary")]).await;
    assert_eq!(forced.body, "b\n");

    // A group that goes stops being looked up, and its series go with it.
    write(yaml(&group("stable", 100, "v1.luas.test")));
    reload(&proxy);
    let series = r#"luas_discovery_endpoints{group="canary",service="web"}"#;
    let gone = eventually(WAIT, || async {
        sample(&metrics_text(&proxy).await, series).is_none()
    })
    .await;
    assert!(gone, "the removed group's discovery series stayed");
    let stopped_at = dns.queries("v2.luas.test");
    // Absence cannot be polled for: give a running task five refreshes to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        dns.queries("v2.luas.test") <= stopped_at + 2,
        "the removed group is still looked up"
    );

    // A new name for a group: its old set goes, the new name's set comes.
    write(yaml(&group("stable", 100, "v3.luas.test")));
    reload(&proxy);
    wait_for_endpoints(&proxy, "stable", &[c]).await;
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "c\n");
}

async fn start_from_file(path: &Path) -> Running {
    let config = luas::config::load_file(path).unwrap();
    App::build(config)
        .unwrap()
        .config_file(path.to_owned(), None)
        .serve()
        .await
        .unwrap()
}

#[test]
fn endpoints_and_dns_are_validated_with_their_key_paths() {
    let config = |services: &str| {
        format!(
            "listeners:\n  - {{ name: edge, listen: 127.0.0.1:0, routes: [{{ name: all, service: web }}] }}\nservices:\n{services}"
        )
    };
    let issues = |services: &str| match luas::config::Config::from_yaml(&config(services)) {
        Err(ConfigError::Invalid(issues)) => issues
            .into_iter()
            .map(|issue| (issue.path, issue.message))
            .collect::<Vec<_>>(),
        other => panic!("expected validation issues, got {other:?}"),
    };
    let cases = [
        (
            "  - { name: web, groups: [{ name: s, endpoints: [127.0.0.1:1], dns: web:80 }] }\n",
            "services[0].groups[0].dns",
            "both `endpoints` and `dns`",
        ),
        (
            "  - { name: web, groups: [{ name: s, weight: 1 }] }\n",
            "services[0].groups[0]",
            "neither `endpoints` nor `dns`",
        ),
        (
            "  - { name: web, endpoints: [127.0.0.1:1], dns: web:80 }\n",
            "services[0].dns",
            "both `endpoints` and `dns`",
        ),
        (
            "  - { name: web, dns: \"web_:80:80\" }\n",
            "services[0].dns",
            "contains ':'",
        ),
        (
            "  - { name: web, dns: web.test }\n",
            "services[0].dns",
            "has no port",
        ),
        (
            "  - { name: web, dns: \"web..test:80\" }\n",
            "services[0].dns",
            "empty label",
        ),
        (
            "  - { name: web, groups: [{ name: s, dns: web:99999 }] }\n",
            "services[0].groups[0].dns",
            "not a number from 1 to 65535",
        ),
        (
            "  - { name: web, dns: web:80, refresh: 0s }\n",
            "services[0].refresh",
            "must be greater than 0",
        ),
        (
            "  - { name: web, groups: [{ name: s, dns: web:80, refresh: often }] }\n",
            "services[0].groups[0].refresh",
            "invalid duration",
        ),
        (
            "  - { name: web, endpoints: [127.0.0.1:1], refresh: 5s }\n",
            "services[0].refresh",
            "no `dns` here",
        ),
    ];
    for (services, path, expected) in cases {
        let found = issues(services);
        assert_eq!(found.len(), 1, "{services}: {found:#?}");
        assert_eq!(found[0].0, path, "{services}: {found:#?}");
        assert!(found[0].1.contains(expected), "{services}: {found:#?}");
    }
    let valid = luas::config::Config::from_yaml(&config(
        "  - { name: web, dns: app.default.svc.cluster.local:8080 }\n",
    ))
    .unwrap();
    let dns = valid.services[0].groups[0].dns.as_ref().unwrap();
    assert_eq!(dns.to_string(), "app.default.svc.cluster.local:8080");
    assert_eq!(dns.refresh, Duration::from_secs(5));
}
