//! Names of listeners, routes, services and groups: their form and uniqueness.

use super::*;

#[test]
fn duplicate_listener_names() {
    let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: edge, listen: 0.0.0.0:81, routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:9000] }
";
    let found = issues(text);
    let message = issue_at(&found, "listeners[1].name");
    assert!(
        message.contains("duplicate listener name \"edge\""),
        "{message}"
    );
    assert!(message.contains("listeners[0]"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn duplicate_route_names_within_a_listener() {
    let text = with_routes(
        "      - { name: r, match: { path_prefix: /a }, service: web }\n      - { name: r, service: web }\n",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[1].name");
    assert!(message.contains("duplicate route name \"r\""), "{message}");
    assert!(message.contains("listeners[0].routes[0]"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn same_route_name_in_two_listeners_is_fine() {
    let text = "\
listeners:
  - { name: a, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: b, listen: 0.0.0.0:81, routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:9000] }
";
    assert_eq!(load(text).listeners.len(), 2);
}

#[test]
fn duplicate_service_names() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1] }\n  - { name: web, endpoints: [127.0.0.1:2] }\n",
    ));
    let message = issue_at(&found, "services[1].name");
    assert!(
        message.contains("duplicate service name \"web\""),
        "{message}"
    );
    assert!(message.contains("services[0]"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn duplicate_group_names() {
    let found = issues(&with_services(
        "  - name: web
    groups:
      - { name: v1, endpoints: [127.0.0.1:1] }
      - { name: v1, endpoints: [127.0.0.1:2] }
",
    ));
    let message = issue_at(&found, "services[0].groups[1].name");
    assert!(message.contains("duplicate group name \"v1\""), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn empty_and_malformed_names() {
    let text = "\
listeners:
  - { name: '', listen: 0.0.0.0:80, routes: [{ name: 'a b', service: 'web/1' }] }
services:
  - name: 'web/1'
    groups: [{ name: 'v1!', endpoints: [127.0.0.1:1] }, { name: 'ünï', endpoints: [127.0.0.1:2] }]
";
    let found = issues(text);
    let message = issue_at(&found, "listeners[0].name");
    assert!(message.contains("listener name is empty"), "{message}");
    let message = issue_at(&found, "listeners[0].routes[0].name");
    assert!(message.contains("\"a b\" contains ' '"), "{message}");
    assert!(
        message.contains("letters, digits, '.', '_' and '-'"),
        "{message}"
    );
    assert!(issue_at(&found, "services[0].name").contains("'/'"));
    assert!(issue_at(&found, "services[0].groups[0].name").contains("'!'"));
    assert!(issue_at(&found, "services[0].groups[1].name").contains("'ü'"));
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn valid_names_with_every_allowed_character() {
    let config = load(&with_services(
        "  - { name: Web_2.x-y, endpoints: [127.0.0.1:1] }\n  - { name: web, endpoints: [127.0.0.1:2] }\n",
    ));
    assert_eq!(config.services[0].name, "Web_2.x-y");
}
