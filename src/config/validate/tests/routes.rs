//! Routes and their `match`: the services they name, headers, host patterns,
//! path prefixes and catch-alls.

use super::*;

#[test]
fn routes_may_refer_to_services_defined_later() {
    let text = "\
services:
  - { name: a, endpoints: [127.0.0.1:1] }
  - { name: b, endpoints: [127.0.0.1:2] }
listeners:
  - name: edge
    listen: 0.0.0.0:80
    routes:
      - { name: r1, match: { path_prefix: /b }, service: b }
      - { name: r2, service: a }
";
    let config = load(text);
    assert_eq!(config.listeners[0].routes[0].service, 1);
    assert_eq!(config.listeners[0].routes[1].service, 0);
}

#[test]
fn unknown_service_lists_the_known_ones() {
    let text = with_routes("      - { name: all, service: wbe }\n");
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[0].service");
    assert!(message.contains("unknown service \"wbe\""), "{message}");
    assert!(message.contains("known services: web"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn unknown_service_when_there_are_none() {
    let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [{ name: r, service: x }] }
";
    let found = issues(text);
    let message = issue_at(&found, "listeners[0].routes[0].service");
    assert!(message.contains("no services are defined"), "{message}");
    assert!(issue_at(&found, "services").contains("no services"));
}

#[test]
fn bad_header_names_and_values() {
    let text = with_routes(
        "      - name: r
        match:
          headers: { 'x env': a, 'x-ok': \"bad\\nvalue\", ':authority': b, X-Dup: 1, x-dup: 2 }
        service: web
",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[0].match.headers.x env");
    assert!(
        message.contains("not a valid HTTP header name"),
        "{message}"
    );
    let message = issue_at(&found, "listeners[0].routes[0].match.headers.x-ok");
    assert!(
        message.contains("not a valid HTTP header value"),
        "{message}"
    );
    assert!(
        issue_at(&found, "listeners[0].routes[0].match.headers.:authority").contains("header name")
    );
    let message = issue_at(&found, "listeners[0].routes[0].match.headers.x-dup");
    assert!(message.contains("listed twice"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn header_names_are_stored_lower_case() {
    let text = with_routes(
        "      - { name: r, match: { headers: { X-Env: Staging, Accept: '*/*' } }, service: web }\n",
    );
    let config = load(&text);
    assert_eq!(
        config.listeners[0].routes[0].matches.headers,
        vec![header("x-env", "Staging"), header("accept", "*/*")]
    );
}

#[test]
fn bad_host_pattern_has_its_path() {
    let text = with_routes(
        "      - { name: r, match: { host: 'api.*.com' }, service: web }\n      - { name: s, match: { host: '' }, service: web }\n",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[0].match.host");
    assert!(message.contains("\"api.*.com\""), "{message}");
    assert!(issue_at(&found, "listeners[0].routes[1].match.host").contains("empty"));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn bad_path_prefix_has_its_path() {
    let text = with_routes(
        "      - { name: r, match: { path_prefix: api }, service: web }\n      - { name: all, service: web }\n",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[0].match.path_prefix");
    assert!(message.contains("\"api\" must start with '/'"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn routes_after_a_catch_all_are_unreachable() {
    let text = with_routes(
        "      - { name: api, match: { path_prefix: /api }, service: web }
      - { name: all, match: {}, service: web }
      - { name: late, match: { path_prefix: /late }, service: web }
",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[2]");
    assert!(message.contains("\"late\" can never match"), "{message}");
    assert!(
        message.contains("listeners[0].routes[1] (\"all\")"),
        "{message}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}
