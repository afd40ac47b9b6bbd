//! `routes[].filters`: the issue's example shape parses; every bad filter is
//! reported at its key path; unknown filter names are refused with a line.

use super::*;
use crate::config::{HeaderEdits, PathReplace, RedirectScheme, RouteFilter};
use http::{HeaderValue, StatusCode};

#[test]
fn the_documented_filters_parse() {
    let text = with_routes(
        r#"      - name: api
        match: { path_prefix: /api }
        filters:
          - request_headers: { set: { x-env: prod }, add: { x-via-route: api }, remove: [x-internal] }
          - response_headers: { set: { cache-control: no-store } }
        service: web
      - name: old-docs
        matches: [ { path: { prefix: /docs } } ]
        filters:
          - redirect: { scheme: https, hostname: docs.example.com, path: { replace_prefix: /manual }, status: 301 }
      - name: legacy
        matches: [ { path: { prefix: /legacy } } ]
        filters: [ { rewrite: { path: { replace_prefix: / } } } ]
        service: web
"#,
    );
    let config = load(&text);
    let routes = &config.listeners[0].routes;
    assert_eq!(
        routes[0].filters[0],
        RouteFilter::RequestHeaders(HeaderEdits {
            set: vec![(
                HeaderName::from_static("x-env"),
                HeaderValue::from_static("prod")
            )],
            add: vec![(
                HeaderName::from_static("x-via-route"),
                HeaderValue::from_static("api")
            )],
            remove: vec![HeaderName::from_static("x-internal")],
        })
    );
    assert!(matches!(
        &routes[0].filters[1],
        RouteFilter::ResponseHeaders(_)
    ));
    let RouteFilter::Redirect(redirect) = &routes[1].filters[0] else {
        panic!("{:?}", routes[1].filters);
    };
    assert_eq!(redirect.scheme, Some(RedirectScheme::Https));
    assert_eq!(
        redirect.hostname.as_ref().unwrap().as_str(),
        "docs.example.com"
    );
    assert_eq!(redirect.path, Some(PathReplace::Prefix("/manual".into())));
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(routes[1].service, None);
    assert!(matches!(&routes[2].filters[0], RouteFilter::Rewrite(_)));
}

#[test]
fn bad_filters_have_their_key_paths() {
    let text = with_routes(
        r#"      - name: a
        match: { path_prefix: /a }
        filters:
          - request_headers: { set: { host: x }, add: { "bad name": v }, remove: [content-length] }
          - response_headers: {}
          - { request_headers: { set: { x-a: "1" } }, response_headers: { set: { x-b: "2" } } }
          - redirect: { scheme: ftp, port: 70000, status: 200, path: { replace_full: nope } }
        service: web
      - name: b
        matches: [ { path: { exact: /b } } ]
        filters: [ { rewrite: { hostname: "b.example.com:80", path: { replace_prefix: /x } } } ]
        service: web
      - name: c
        match: { path_prefix: /c }
        filters: [ { redirect: {} } ]
        service: web
      - name: d
        match: { path_prefix: /d }
"#,
    );
    let found = issues(&text);
    let at = |path: &str| issue_at(&found, &format!("listeners[0].routes[{path}"));
    assert!(at("0].filters[0].request_headers.set.host").contains("rewrite: { hostname }"));
    assert!(
        at("0].filters[0].request_headers.add.bad name").contains("not a valid HTTP header name")
    );
    assert!(at("0].filters[0].request_headers.remove[0]").contains("frames the message"));
    assert!(at("0].filters[1].response_headers").contains("changes nothing"));
    assert!(at("0].filters[2]").contains("exactly one filter per entry"));
    assert!(at("0].filters[3].redirect.scheme").contains("http or https"));
    assert!(at("0].filters[3].redirect.port").contains("out of range"));
    assert!(at("0].filters[3].redirect.status").contains("not a redirect"));
    assert!(at("0].filters[3].redirect.path.replace_full").contains("must start with '/'"));
    assert!(at("0].service").contains("never used"));
    assert!(at("1].filters[0].rewrite.hostname").contains("without a port"));
    assert!(at("1].filters[0].rewrite.path.replace_prefix").contains("needs a path prefix"));
    assert!(at("2].service").contains("never used"));
    assert!(at("3]").contains("has no `service`"));
    assert_eq!(found.len(), 14, "{found:#?}");
}

#[test]
fn an_unknown_filter_is_refused_with_its_line() {
    let text = with_routes(
        "      - name: a\n        filters: [ { cors: { allow_origins: ['*'] } } ]\n        service: web\n",
    );
    let error = Config::from_yaml(&text).unwrap_err().to_string();
    assert!(error.contains("unknown field `cors`"), "{error}");
    assert!(error.contains("line 6"), "{error}");
}

#[test]
fn a_mirror_names_a_service_and_group_that_exist() {
    let text = with_routes(
        r#"      - name: a
        filters:
          - mirror: { service: web, percent: 10, max_in_flight: 8, max_body_bytes: 1KiB }
          - mirror: { service: web, group: stable }
        service: web
"#,
    );
    let config = load(&text);
    let RouteFilter::Mirror(mirror) = &config.listeners[0].routes[0].filters[0] else {
        panic!("a mirror filter");
    };
    assert_eq!(mirror.service, 0);
    assert_eq!(mirror.fraction, 0.1);
    assert_eq!(mirror.max_in_flight, 8);
    assert_eq!(mirror.max_body_bytes, 1024);
    let RouteFilter::Mirror(defaults) = &config.listeners[0].routes[0].filters[1] else {
        panic!("a mirror filter");
    };
    assert_eq!(defaults.group.as_deref(), Some("stable"));
    assert_eq!(defaults.fraction, 1.0);
    assert_eq!(defaults.max_in_flight, 1024);
    assert_eq!(defaults.max_body_bytes, 64 * 1024);
}

#[test]
fn bad_mirrors_are_reported_at_their_key_paths() {
    let text = with_routes(
        r#"      - name: a
        filters:
          - mirror: { service: shadow }
          - mirror: { service: web, group: canary, percent: 150 }
          - mirror: { percent: 5, max_in_flight: 0 }
        service: web
      - name: b
        match: { path_prefix: /b }
        filters:
          - redirect: { hostname: example.com }
          - mirror: { service: web }
"#,
    );
    let found = issues(&text);
    let at = |path: &str| issue_at(&found, &format!("listeners[0].routes[{path}"));
    assert!(at("0].filters[0].mirror.service").contains("unknown service \"shadow\""));
    assert!(at("0].filters[1].mirror.percent").contains("out of range"));
    assert!(at("0].filters[1].mirror.group").contains("no group \"canary\""));
    assert!(at("0].filters[2].mirror.service").contains("required"));
    assert!(at("0].filters[2].mirror.max_in_flight").contains("out of range"));
    assert!(at("1].filters").contains("nothing to mirror"));
    assert_eq!(found.len(), 6, "{found:#?}");
}
