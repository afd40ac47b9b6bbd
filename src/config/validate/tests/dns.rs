//! `dns` groups, the service shorthand, `refresh` and `discovery.resolvers`.

use super::*;

#[test]
fn dns_groups_and_the_service_shorthand() {
    let text = format!(
        "{}discovery:\n  resolvers: [\"127.0.0.1:5353\", \"[::1]:53\"]\n",
        with_services(
            "  - name: web
    groups:
      - { name: stable, weight: 100, dns: App-V1.Default.svc.cluster.local:8080, refresh: 250ms }
      - { name: canary, weight: 0, endpoints: [127.0.0.1:9003] }
  - { name: simple, dns: \"simple.test.:80\" }
"
        )
    );
    let config = load(&text);
    let web = &config.services[0];
    assert_eq!(
        web.groups[0].dns,
        Some(DnsConfig {
            name: "app-v1.default.svc.cluster.local".into(),
            port: 8080,
            refresh: Duration::from_millis(250),
        })
    );
    // Nothing is discovered yet: the file config of a DNS group has no endpoints.
    assert!(web.groups[0].endpoints.is_empty());
    assert_eq!(web.groups[1].dns, None);
    assert_eq!(web.groups[1].endpoints, vec![addr("127.0.0.1:9003")]);
    let simple = &config.services[1].groups[0];
    assert_eq!(simple.name, defaults::DEFAULT_GROUP);
    assert_eq!(simple.weight, defaults::DEFAULT_WEIGHT);
    assert_eq!(
        simple.dns,
        Some(DnsConfig {
            name: "simple.test.".into(),
            port: 80,
            refresh: defaults::DNS_REFRESH,
        })
    );
    assert_eq!(
        config.discovery.resolvers,
        vec![addr("127.0.0.1:5353"), addr("[::1]:53")]
    );
    // Without `discovery`, the system's resolver configuration is used.
    let plain = load(&with_services("  - { name: web, dns: web.test:80 }\n"));
    assert_eq!(plain.discovery, DiscoveryConfig::default());
    assert_eq!(
        plain.services[0].groups[0]
            .dns
            .as_ref()
            .map(ToString::to_string),
        Some("web.test:80".to_owned())
    );
}

#[test]
fn exactly_one_of_endpoints_and_dns() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: a, endpoints: [127.0.0.1:1], dns: a.test:80 }
      - { name: b, weight: 0 }
  - { name: two, endpoints: [127.0.0.1:2], dns: two.test:80 }
  - name: three
    dns: three.test:80
    groups: [{ name: a, endpoints: [127.0.0.1:3] }]
",
    ));
    let message = issue_at(&found, "services[0].groups[0].dns");
    assert!(message.contains("both `endpoints` and `dns`"), "{message}");
    let message = issue_at(&found, "services[0].groups[1]");
    assert!(
        message.contains("neither `endpoints` nor `dns`"),
        "{message}"
    );
    let message = issue_at(&found, "services[1].dns");
    assert!(message.contains("both `endpoints` and `dns`"), "{message}");
    let message = issue_at(&found, "services[2].dns");
    assert!(message.contains("both `dns` and `groups`"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn dns_names_and_ports() {
    let dns_of = |target: &str| {
        let text = with_services(&format!("  - {{ name: web, dns: \"{target}\" }}\n"));
        let raw = raw::parse(&text).unwrap();
        validate(raw).map(|config| config.services[0].groups[0].dns.clone().unwrap())
    };
    for (target, name, port) in [
        ("web:80", "web", 80),
        (
            "Web.Default.SVC.cluster.local:8080",
            "web.default.svc.cluster.local",
            8080,
        ),
        ("web.test.:65535", "web.test.", 65535),
        ("my_service-2:1", "my_service-2", 1),
    ] {
        let dns = dns_of(target).unwrap_or_else(|issues| panic!("{target}: {issues:#?}"));
        assert_eq!((dns.name.as_str(), dns.port), (name, port), "{target}");
    }
    let long_label = format!("{}.test:80", "a".repeat(64));
    let long_name = format!("{}:80", ["abcdefghi"; 26].join("."));
    for (target, expected) in [
        ("web", "has no port"),
        ("web:", "port \"\" is not a number from 1 to 65535"),
        ("web:0", "port \"0\" is not a number"),
        ("web:65536", "port \"65536\" is not a number"),
        ("web:http", "port \"http\" is not a number"),
        ("10.0.0.1:80", "is an IP address"),
        ("[::1]:80", "is an IP address"),
        (":80", "the name is empty"),
        ("a..b:80", "empty label"),
        (".web:80", "empty label"),
        ("-web.test:80", "starting or ending with '-'"),
        ("web-.test:80", "starting or ending with '-'"),
        ("we b.test:80", "contains ' '"),
        ("web/v1:80", "contains '/'"),
        ("http://web:80", "contains ':'"),
        (long_label.as_str(), "a label of 64 characters"),
        (long_name.as_str(), "259 characters long"),
    ] {
        let found = dns_of(target).expect_err(target);
        let message = issue_at(&found, "services[0].dns");
        assert!(message.contains(expected), "{target}: {message}");
        assert!(
            message.contains("expected NAME:PORT"),
            "{target}: {message}"
        );
        assert_eq!(found.len(), 1, "{target}: {found:#?}");
    }
}

#[test]
fn refresh_must_be_a_duration_above_zero_and_only_with_dns() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: a, dns: a.test:80, refresh: 0s }
      - { name: b, dns: b.test:80, refresh: '5' }
      - { name: c, endpoints: [127.0.0.1:3], refresh: 5s }
  - { name: two, dns: two.test:80, refresh: -1s }
  - { name: three, endpoints: [127.0.0.1:4], refresh: 1s }
",
    ));
    let message = issue_at(&found, "services[0].groups[0].refresh");
    assert!(message.contains("must be greater than 0"), "{message}");
    assert!(message.contains("busy loop"), "{message}");
    assert!(issue_at(&found, "services[0].groups[1].refresh").contains("unit"));
    let message = issue_at(&found, "services[0].groups[2].refresh");
    assert!(message.contains("there is no `dns` here"), "{message}");
    issue_at(&found, "services[1].refresh");
    let message = issue_at(&found, "services[2].refresh");
    assert!(message.contains("there is no `dns` here"), "{message}");
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn discovery_resolvers_are_ip_and_port() {
    let resolvers = |list: &str| {
        issues(&format!(
            "{}discovery: {{ resolvers: {list} }}\n",
            with_services("  - { name: web, dns: web.test:80 }\n")
        ))
    };
    let found = resolvers("[10.0.0.1:53, kube-dns:53, 10.0.0.2, \"10.0.0.3:0\"]");
    assert!(issue_at(&found, "discovery.resolvers[1]").contains("expected IP:port"));
    assert!(issue_at(&found, "discovery.resolvers[2]").contains("expected IP:port"));
    assert!(issue_at(&found, "discovery.resolvers[3]").contains("port 0"));
    assert_eq!(found.len(), 3, "{found:#?}");
    let found = resolvers("[]");
    assert!(issue_at(&found, "discovery.resolvers").contains("`resolvers` is empty"));
    assert_eq!(found.len(), 1, "{found:#?}");
}
