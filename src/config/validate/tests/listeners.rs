//! Listeners: at least one, their routes and their addresses.

use super::*;

#[test]
fn no_listeners() {
    let found = issues("services:\n  - { name: web, endpoints: [127.0.0.1:1] }\n");
    assert!(issue_at(&found, "listeners").contains("no listeners"));
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn listener_without_routes() {
    let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [] }
  - { name: other, listen: 0.0.0.0:81 }
services:
  - { name: web, endpoints: [127.0.0.1:1] }
";
    let found = issues(text);
    assert!(issue_at(&found, "listeners[0].routes").contains("no routes"));
    assert!(issue_at(&found, "listeners[1].routes").contains("no routes"));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn two_listeners_on_one_address() {
    let text = "\
admin: { listen: '0.0.0.0:9901', token_file: /etc/luas/token }
listeners:
  - { name: a, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: b, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: c, listen: 127.0.0.1:80, routes: [{ name: r, service: web }] }
  - { name: d, listen: 127.0.0.1:9901, routes: [{ name: r, service: web }] }
  - { name: e, listen: '[::]:80', routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:1] }
";
    let found = issues(text);
    let message = issue_at(&found, "listeners[1].listen");
    assert!(message.contains("0.0.0.0:80 is already used"), "{message}");
    assert!(message.contains("listeners[0].listen"), "{message}");
    // 127.0.0.1:80 cannot be bound next to 0.0.0.0:80; reported against both.
    let c: Vec<&ConfigIssue> = found
        .iter()
        .filter(|i| i.path == "listeners[2].listen")
        .collect();
    assert_eq!(c.len(), 2, "{found:#?}");
    assert!(c[0].message.contains("overlaps 0.0.0.0:80"), "{found:#?}");
    let message = issue_at(&found, "listeners[3].listen");
    assert!(message.contains("admin listener"), "{message}");
    // IPv6 wildcard is a different family.
    assert!(!paths(&found).contains(&"listeners[4].listen"));
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn port_zero_listeners_never_collide() {
    let text = "\
listeners:
  - { name: a, listen: 127.0.0.1:0, routes: [{ name: r, service: web }] }
  - { name: b, listen: 127.0.0.1:0, routes: [{ name: r, service: web }] }
admin: { listen: 127.0.0.1:0 }
services:
  - { name: web, endpoints: [127.0.0.1:1] }
";
    assert_eq!(load(text).listeners.len(), 2);
}
