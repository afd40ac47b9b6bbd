//! Services and their groups: endpoints, weights, `deployment`, idle timeouts.

use super::*;

#[test]
fn duplicate_endpoint_within_a_group_and_across_groups() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: a, endpoints: [127.0.0.1:1, 127.0.0.1:1] }
      - { name: b, endpoints: ['127.0.0.1:1'] }
",
    ));
    let message = issue_at(&found, "services[0].groups[0].endpoints[1]");
    assert!(message.contains("127.0.0.1:1 is listed twice"), "{message}");
    assert!(
        message.contains("services[0].groups[0].endpoints[0]"),
        "{message}"
    );
    let message = issue_at(&found, "services[0].groups[1].endpoints[0]");
    assert!(message.contains("listed twice"), "{message}");
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn duplicate_endpoint_compares_addresses_not_spelling() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: ['[::1]:80', '[0:0::1]:80'] }\n",
    ));
    assert!(issue_at(&found, "services[0].endpoints[1]").contains("listed twice"));
}

#[test]
fn same_endpoint_in_two_services_is_fine() {
    let config = load(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1] }\n  - { name: web2, endpoints: [127.0.0.1:1] }\n",
    ));
    assert_eq!(config.services.len(), 2);
}

#[test]
fn all_group_weights_zero() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: a, weight: 0, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 0, endpoints: [127.0.0.1:2] }
",
    ));
    let message = issue_at(&found, "services[0].groups");
    assert!(message.contains("every group has weight 0"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn huge_weights_are_accepted() {
    // `split` sums weights in u64, so u32::MAX twice is fine.
    let config = load(&with_services(
        "  - name: web
    groups:
      - { name: a, weight: 4294967295, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 4294967295, endpoints: [127.0.0.1:2] }
",
    ));
    assert_eq!(config.services[0].groups[1].weight, u32::MAX);
}

#[test]
fn empty_endpoint_lists() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: [] }
  - name: two
    groups:
      - { name: a, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 0, endpoints: [] }
  - { name: three, groups: [] }
",
    ));
    assert!(issue_at(&found, "services[0].endpoints").contains("endpoint list is empty"));
    assert!(issue_at(&found, "services[1].groups[1].endpoints").contains("empty"));
    assert!(issue_at(&found, "services[2].groups").contains("`groups` is empty"));
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn both_or_neither_endpoints_and_groups() {
    let found = issues(&with_services(
        "  - name: web
    endpoints: [127.0.0.1:1]
    groups: [{ name: a, endpoints: [127.0.0.1:2] }]
  - name: two
    balancer: round-robin
",
    ));
    let message = issue_at(&found, "services[0]");
    assert!(
        message.contains("both `endpoints` and `groups`"),
        "{message}"
    );
    let message = issue_at(&found, "services[1]");
    assert!(
        message.contains("neither `endpoints` nor `groups`"),
        "{message}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn endpoint_port_zero() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:0] }\n",
    ));
    assert!(issue_at(&found, "services[0].endpoints[0]").contains("port 0"));
}

#[test]
fn deployments_default_to_service_dash_group() {
    let config = load(&with_services(
        "  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: web-primary }
      - { name: canary, endpoints: [127.0.0.1:2] }
  - { name: api, endpoints: [127.0.0.1:3] }
",
    ));
    let deployments: Vec<&str> = config
        .services
        .iter()
        .flat_map(|s| &s.groups)
        .map(|g| g.deployment.as_str())
        .collect();
    assert_eq!(deployments, ["web-primary", "web-canary", "api-stable"]);
}

#[test]
fn bad_explicit_deployment() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1] }
      - { name: canary, endpoints: [127.0.0.1:2], deployment: Web_Canary }
      - { name: next, endpoints: [127.0.0.1:3], deployment: '' }
",
    ));
    let message = issue_at(&found, "services[0].groups[1].deployment");
    assert!(message.contains("deployment \"Web_Canary\""), "{message}");
    assert!(message.contains("upper-case 'W'"), "{message}");
    assert!(message.contains("Kubernetes Deployment"), "{message}");
    assert!(issue_at(&found, "services[0].groups[2].deployment").contains("is empty"));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn derived_deployments_must_be_kubernetes_names_only_for_linkerd_metrics() {
    let services = with_services(
        "  - name: Web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: web }
      - { name: v_2, endpoints: [127.0.0.1:2] }
  - { name: API, endpoints: [127.0.0.1:3] }
  - { name: web, endpoints: [127.0.0.1:4] }
",
    );
    // Without the linkerd series the derived names are never used.
    let config = load(&services);
    assert_eq!(config.services[0].groups[1].deployment, "Web-v_2");

    let found = issues(&format!(
        "{services}metrics: {{ linkerd_compatible: true }}\n"
    ));
    let message = issue_at(&found, "services[0].groups[1]");
    assert!(message.contains("metrics.linkerd_compatible"), "{message}");
    assert!(
        message.contains("default name \"Web-v_2\" (SERVICE-GROUP) contains upper-case 'W'"),
        "{message}"
    );
    assert!(message.contains("set `deployment`"), "{message}");
    // The shorthand has no `deployment` key, so the fix is different.
    let message = issue_at(&found, "services[1]");
    assert!(message.contains("\"API-stable\""), "{message}");
    assert!(
        message.contains("define the service with `groups`"),
        "{message}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn idle_timeout_of_pooled_connections() {
    let config = load(&with_service_keys("    timeouts: { idle: 90s }\n"));
    let timeouts = config.services[0].timeouts;
    assert_eq!(timeouts.idle, Duration::from_secs(90));
    // The other timeouts keep their defaults.
    assert_eq!(timeouts.connect, defaults::CONNECT_TIMEOUT);
    assert_eq!(timeouts.request, defaults::REQUEST_TIMEOUT);

    let found = issues(&with_service_keys("    timeouts: { idle: 0s }\n"));
    let message = issue_at(&found, "services[0].timeouts.idle");
    assert!(message.contains("must be greater than 0"), "{message}");
    assert!(message.contains("pooled connections"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
    let found = issues(&with_service_keys("    timeouts: { idle: forever }\n"));
    assert!(issue_at(&found, "services[0].timeouts.idle").contains("\"forever\""));
}
