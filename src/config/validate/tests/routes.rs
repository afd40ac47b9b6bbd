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
    assert_eq!(config.listeners[0].routes[0].service, Some(1));
    assert_eq!(config.listeners[0].routes[1].service, Some(0));
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
        config.listeners[0].routes[0].matches[0].headers,
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
fn a_route_after_a_catch_all_is_fine_but_an_equal_match_is_not() {
    // The most specific match wins, so a catch-all may come first...
    let text = with_routes(
        "      - { name: api, match: { path_prefix: /api }, service: web }
      - { name: all, match: {}, service: web }
      - { name: late, match: { path_prefix: /late }, service: web }
",
    );
    assert_eq!(load(&text).listeners[0].routes.len(), 3);
    // ...but conditions equal to earlier ones could never be chosen.
    let text = with_routes(
        "      - { name: api, match: { path_prefix: /api }, service: web }
      - name: again
        matches: [ { path: { prefix: /api/ } }, { path: { exact: /x } } ]
        service: web
",
    );
    let found = issues(&text);
    let message = issue_at(&found, "listeners[0].routes[1].matches[0]");
    assert!(message.contains("\"again\" can never match"), "{message}");
    assert!(
        message.contains("listeners[0].routes[0] (\"api\")"),
        "{message}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn gateway_api_matches_are_checked_with_their_key_paths() {
    let text = with_routes(
        r#"      - name: r
        matches:
          - path: { regex: "/api/(v[0-9]+" }
            headers: [ { name: "bad name", value: x }, { name: x-a, value: a, regex: b } ]
            query: [ { name: debug, regex: "(" }, { name: "", value: "1" } ]
            method: "G T"
          - path: { exact: /a, prefix: /b }
          - path: { exact: nope }
          - path_prefix: /a
            path: { prefix: /a }
        service: web
      - { name: both, match: {}, matches: [ {} ], service: web }
      - { name: none, matches: [], service: web }
"#,
    );
    let found = issues(&text);
    let at = |path: &str| issue_at(&found, &format!("listeners[0].routes[0].{path}"));
    assert!(at("matches[0].path.regex").contains("invalid regex"));
    assert!(at("matches[0].headers[0].name").contains("not a valid HTTP header name"));
    assert!(at("matches[0].headers[1]").contains("exactly one of `value`"));
    assert!(at("matches[0].query[0].regex").contains("invalid regex"));
    assert!(at("matches[0].query[1].name").contains("empty"));
    assert!(at("matches[0].method").contains("not an HTTP method"));
    assert!(at("matches[1].path").contains("exactly one of `exact`, `prefix` and `regex`"));
    assert!(at("matches[2].path.exact").contains("must start with '/'"));
    assert!(at("matches[3].path").contains("either `path_prefix` or `path`"));
    assert!(issue_at(&found, "listeners[0].routes[1].matches").contains("not both"));
    assert!(issue_at(&found, "listeners[0].routes[2].matches").contains("empty"));
    assert_eq!(found.len(), 11, "{found:#?}");
}

#[test]
fn gateway_api_matches_parse() {
    let text = with_routes(
        r#"      - name: r
        matches:
          - path: { regex: "/api/v[0-9]+/users/[0-9]+" }
            headers: [ { name: X-Tester, value: "yes" }, { name: x-v, regex: "v[0-9]+" } ]
            query: [ { name: debug, regex: "1|true" } ]
            method: get
          - path: { exact: /health }
        service: web
"#,
    );
    let config = load(&text);
    let matches = &config.listeners[0].routes[0].matches;
    assert_eq!(matches.len(), 2);
    let first = &matches[0];
    assert!(
        matches!(&first.path, Some(PathMatch::Regex(p)) if p.as_str() == "/api/v[0-9]+/users/[0-9]+")
    );
    assert_eq!(first.method, Some(http::Method::GET));
    assert_eq!(first.headers[0], header("x-tester", "yes"));
    assert!(matches!(&first.headers[1].1, TextMatch::Regex(p) if p.as_str() == "v[0-9]+"));
    assert_eq!(first.query[0].0, "debug");
    assert_eq!(matches[1].path, Some(PathMatch::Exact("/health".into())));
}

#[test]
fn a_route_overrides_timeouts_and_retry() {
    let text = with_routes(
        "      - name: slow
        timeouts: { request: 300ms, backend_request: 100ms }
        retry: { attempts: 2, on: [5xx] }
        service: web
      - name: bad
        match: { path_prefix: /bad }
        timeouts: { request: 0s, backend_request: 2s }
        service: web
      - name: worse
        match: { path_prefix: /worse }
        timeouts: { request: 1s, backend_request: 2s }
        retry: { attempts: 2, per_try_timeout: 5s }
        service: web
",
    );
    let found = issues(&text);
    assert!(issue_at(&found, "listeners[0].routes[1].timeouts.request").contains("greater than 0"));
    assert!(
        issue_at(&found, "listeners[0].routes[2].timeouts.backend_request").contains("never fire")
    );
    assert!(
        issue_at(&found, "listeners[0].routes[2].retry.per_try_timeout").contains("never fire")
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    let config = load(&with_routes(
        "      - name: slow
        timeouts: { request: 300ms, backend_request: 100ms }
        retry: { attempts: 2, on: [5xx] }
        service: web
",
    ));
    let route = &config.listeners[0].routes[0];
    assert_eq!(
        route.timeouts,
        RouteTimeouts {
            request: Some(Duration::from_millis(300)),
            backend_request: Some(Duration::from_millis(100)),
        }
    );
    assert_eq!(route.retry.unwrap().attempts, 2);
}
