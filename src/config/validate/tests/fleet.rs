//! `kubernetes` and `fleet`.

use super::*;
use crate::config::{FleetConfig, KubernetesConfig};

fn base() -> String {
    with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n")
}

#[test]
fn fleet_mode_is_off_unless_asked_and_takes_its_defaults() {
    let config = load(&base());
    assert_eq!(config.fleet, None);
    assert_eq!(config.kubernetes, KubernetesConfig::default());
    let config = load(&format!(
        "{}kubernetes: {{ kubeconfig: /k/config, namespace: shop }}\nfleet: {{ name: edge }}\n",
        base()
    ));
    assert_eq!(
        config.fleet,
        Some(FleetConfig {
            name: "edge".into(),
            replica: None,
            startup_timeout: Duration::from_secs(10),
        })
    );
    assert_eq!(
        config.kubernetes,
        KubernetesConfig {
            kubeconfig: Some(PathBuf::from("/k/config")),
            namespace: Some("shop".into()),
        }
    );
}

#[test]
fn names_that_cannot_name_kubernetes_objects_are_refused_with_their_key() {
    let found = issues(&format!(
        "{}kubernetes: {{ namespace: Shop }}\nfleet: {{ name: Edge_1, replica: 'web 1', startup_timeout: soon }}\n",
        base()
    ));
    assert_eq!(
        paths(&found),
        [
            "kubernetes.namespace",
            "fleet.name",
            "fleet.replica",
            "fleet.startup_timeout"
        ],
        "{found:#?}"
    );
    assert!(issue_at(&found, "fleet.name").contains("luas-fleet-<name>"));
    assert!(issue_at(&found, "fleet.replica").contains("$HOSTNAME"));
    let long = "a".repeat(250);
    let found = issues(&format!(
        "{}fleet: {{ name: edge, replica: {long} }}\n",
        base()
    ));
    assert!(
        issue_at(&found, "fleet.replica").contains("at most 237 fit"),
        "{found:#?}"
    );
    // A pod name is a valid replica name.
    let config = load(&format!(
        "{}fleet: {{ name: edge, replica: web-7f9c.x-1 }}\n",
        base()
    ));
    assert_eq!(
        config.fleet.unwrap().replica.as_deref(),
        Some("web-7f9c.x-1")
    );
}

#[test]
fn a_group_takes_its_endpoints_from_a_kubernetes_service() {
    use crate::config::{KubernetesEndpoints, ServicePort};
    let config = load(&with_services(
        "  - name: web
    groups:
      - { name: stable, kubernetes: { service: web-v1, port: http } }
      - { name: canary, weight: 10, kubernetes: { service: web-v2, port: 8080, namespace: shop } }
  - { name: api, kubernetes: { service: api, port: grpc } }
",
    ));
    let web = &config.services[0];
    assert_eq!(
        web.groups[0].kubernetes,
        Some(KubernetesEndpoints {
            service: "web-v1".into(),
            port: ServicePort::Name("http".into()),
            namespace: None,
        })
    );
    assert!(web.groups[0].endpoints.is_empty() && web.groups[0].dns.is_none());
    assert_eq!(
        web.groups[1].kubernetes.as_ref().unwrap().to_string(),
        "shop/web-v2:8080"
    );
    assert_eq!(
        config.services[1].groups[0]
            .kubernetes
            .as_ref()
            .unwrap()
            .port,
        ServicePort::Name("grpc".into())
    );

    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: a, kubernetes: { service: Web, port: 0 } }
      - { name: b, kubernetes: { service: web, port: HTTP_1, namespace: -x } }
      - { name: c, endpoints: [127.0.0.1:1], kubernetes: { service: web, port: http } }
  - { name: api, dns: api.test:80, kubernetes: { service: api, port: http } }
",
    ));
    assert_eq!(
        paths(&found),
        [
            "services[0].groups[0].kubernetes.service",
            "services[0].groups[0].kubernetes.port",
            "services[0].groups[1].kubernetes.namespace",
            "services[0].groups[1].kubernetes.port",
            "services[0].groups[2].kubernetes",
            "services[1].kubernetes",
        ],
        "{found:#?}"
    );
}
