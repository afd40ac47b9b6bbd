//! `override_header` and `sticky`: how a request picks a group.

use super::*;

#[test]
fn override_header_values() {
    let config = load(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1], override_header: X-Version }
  - { name: b, endpoints: [127.0.0.1:2], override_header: '' }
  - { name: c, endpoints: [127.0.0.1:3] }
",
    ));
    let headers: Vec<Option<&str>> = config
        .services
        .iter()
        .map(|s| s.split.override_header.as_ref().map(HeaderName::as_str))
        .collect();
    assert_eq!(
        headers,
        [Some("x-version"), None, Some(defaults::OVERRIDE_HEADER)]
    );
}

#[test]
fn bad_override_header() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1], override_header: 'x group' }
  - { name: b, endpoints: [127.0.0.1:2], override_header: ':authority' }
",
    ));
    let message = issue_at(&found, "services[0].override_header");
    assert!(
        message.contains("\"x group\" is not a valid HTTP header name"),
        "{message}"
    );
    assert!(
        message.contains("\"\" to turn the override off"),
        "{message}"
    );
    assert!(issue_at(&found, "services[1].override_header").contains("\":authority\""));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn sticky_keys() {
    let config = load(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1], sticky: { header: X-User-Id } }
  - { name: b, endpoints: [127.0.0.1:2], sticky: { cookie: \"Sess!on#~.1\" } }
  - { name: c, endpoints: [127.0.0.1:3], sticky: ~ }
",
    ));
    let sticky: Vec<Option<StickyKey>> = config
        .services
        .iter()
        .map(|s| s.split.sticky.clone())
        .collect();
    assert_eq!(
        sticky,
        [
            Some(StickyKey::Header(HeaderName::from_static("x-user-id"))),
            // Cookie names are case-sensitive: kept as written.
            Some(StickyKey::Cookie("Sess!on#~.1".into())),
            None,
        ]
    );
}

#[test]
fn sticky_needs_exactly_one_key() {
    let found = issues(&with_services(
        "  - name: web
    endpoints: [127.0.0.1:1]
    sticky: { header: x-user-id, cookie: session }
  - { name: b, endpoints: [127.0.0.1:2], sticky: {} }
",
    ));
    let message = issue_at(&found, "services[0].sticky");
    assert!(message.contains("both `header` and `cookie`"), "{message}");
    assert!(message.contains("keep one of them"), "{message}");
    let message = issue_at(&found, "services[1].sticky");
    assert!(message.contains("names no key"), "{message}");
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn bad_sticky_header_and_cookie_names() {
    let found = issues(&with_services(
        "  - { name: web, endpoints: [127.0.0.1:1], sticky: { header: 'user id' } }
  - { name: b, endpoints: [127.0.0.1:2], sticky: { cookie: '' } }
  - { name: c, endpoints: [127.0.0.1:3], sticky: { cookie: 'a=b' } }
  - { name: d, endpoints: [127.0.0.1:4], sticky: { cookie: 'my session' } }
",
    ));
    let message = issue_at(&found, "services[0].sticky.header");
    assert!(
        message.contains("\"user id\" is not a valid HTTP header name"),
        "{message}"
    );
    assert!(message.contains("e.g. x-user-id"), "{message}");
    assert!(issue_at(&found, "services[1].sticky.cookie").contains("cookie name is empty"));
    let message = issue_at(&found, "services[2].sticky.cookie");
    assert!(
        message.contains("cookie name \"a=b\" contains '='"),
        "{message}"
    );
    assert!(issue_at(&found, "services[3].sticky.cookie").contains("contains ' '"));
    assert_eq!(found.len(), 4, "{found:#?}");
}
