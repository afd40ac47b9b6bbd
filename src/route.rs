//! Matching a request to a route: the route table of one listener.
//!
//! A route has one or more matches (Gateway API's HTTPRouteMatch); each
//! match's conditions must all hold:
//! - host: exact (`api.example.com`) or wildcard (`*.example.com`, one or more
//!   labels), case-insensitive, port ignored. The host is the URI authority
//!   (HTTP/2 `:authority`, absolute-form) or else the `Host` header.
//! - path: exact; prefix by whole segments, so `/v1` matches `/v1` and
//!   `/v1/users` but not `/v10`; or a regex the whole path matches.
//! - method.
//! - headers: each named header has a value equal to the given one (or
//!   matching the regex).
//! - query: each named parameter (percent-decoded) has a matching value.
//! - client identity: the verified client certificate (mTLS) carries the
//!   given DNS or URI name.
//!
//! When several routes match, the most specific match wins, in Gateway
//! API's order ([`Specificity`]), then the earlier route in the file.
//! [`RouteTable::new`] sorts the matches once; [`RouteTable::find`] is pure
//! and returns the first that holds, or `None` (a 404).
//!
//! This module does not know about services beyond their index, nor about
//! metrics beyond holding the route's pre-bound handles.

use std::cmp::Reverse;

use http::request::Parts;
use http::{HeaderMap, Method};

use crate::config::{HostMatch, PathMatch, RetryConfig, RouteMatch, RouteTimeouts, TextMatch};
use crate::filter::RouteFilters;
use crate::metrics::RouteMetrics;
use crate::tls::ClientIdentity;

#[derive(Debug)]
pub struct Route {
    pub name: String,
    /// Any of these selects the route.
    pub matches: Vec<RouteMatch>,
    /// Applied around forwarding, in order (`filter`).
    pub(crate) filters: RouteFilters,
    /// Index into the snapshot's services; None for a route a redirect
    /// answers.
    pub service: Option<usize>,
    /// Overrides of the service's request timeout and per-try timeout.
    pub timeouts: RouteTimeouts,
    /// Replaces the service's retry policy.
    pub retry: Option<RetryConfig>,
    pub metrics: RouteMetrics,
}

impl Route {
    /// A route without filters (the config's routes are built by `state`).
    pub fn new(
        name: &str,
        matches: Vec<RouteMatch>,
        service: usize,
        metrics: RouteMetrics,
    ) -> Self {
        Self {
            name: name.to_owned(),
            matches,
            filters: RouteFilters::default(),
            service: Some(service),
            timeouts: RouteTimeouts::default(),
            retry: None,
            metrics,
        }
    }
}

#[derive(Debug, Default)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    /// Every (route, match) pair, most specific first.
    order: Vec<(usize, usize)>,
    /// Some match has a host condition: only then is the request's host
    /// read (a header lookup and a scan of its value, per request).
    reads_host: bool,
}

/// How specific a match is, in Gateway API's order of precedence; a
/// smaller value wins.
/// 1. host: exact, then wildcard with the longer suffix, then none;
/// 2. path: exact, then regex (the longer pattern first), then prefix (the
///    longer first), then none;
/// 3. a method;
/// 4. more header conditions;
/// 5. more query conditions;
/// 6. a client identity.
///
/// Ties go to the earlier route in the file, then the earlier match.
type Specificity = (
    u8,
    Reverse<usize>,
    u8,
    Reverse<usize>,
    bool,
    Reverse<usize>,
    Reverse<usize>,
    bool,
);

fn specificity(conditions: &RouteMatch) -> Specificity {
    let (host_rank, host_length) = match &conditions.host {
        Some(HostMatch::Exact(host)) => (0, host.len()),
        Some(HostMatch::WildcardSuffix(suffix)) => (1, suffix.len()),
        None => (2, 0),
    };
    let (path_rank, path_length) = match &conditions.path {
        Some(PathMatch::Exact(path)) => (0, path.len()),
        Some(PathMatch::Regex(pattern)) => (1, pattern.as_str().len()),
        Some(PathMatch::Prefix(prefix)) => (2, prefix.len()),
        None => (3, 0),
    };
    (
        host_rank,
        Reverse(host_length),
        path_rank,
        Reverse(path_length),
        conditions.method.is_none(),
        Reverse(conditions.headers.len()),
        Reverse(conditions.query.len()),
        conditions.client_identity.is_none(),
    )
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        let mut order: Vec<(usize, usize)> = routes
            .iter()
            .enumerate()
            .flat_map(|(route, each)| (0..each.matches.len()).map(move |index| (route, index)))
            .collect();
        // Stable: equal specificity keeps file order.
        order.sort_by_key(|&(route, index)| specificity(&routes[route].matches[index]));
        let reads_host = routes
            .iter()
            .flat_map(|route| &route.matches)
            .any(|conditions| conditions.host.is_some());
        Self {
            routes,
            order,
            reads_host,
        }
    }

    pub fn find(&self, request: &Parts, client: Option<&ClientIdentity>) -> Option<&Route> {
        self.find_match(request, client).map(|(route, _)| route)
    }

    /// The route and which of its matches selected the request (a filter's
    /// prefix replacement replaces what that match's prefix matched).
    pub fn find_match(
        &self,
        request: &Parts,
        client: Option<&ClientIdentity>,
    ) -> Option<(&Route, &RouteMatch)> {
        let seen = Request {
            host: if self.reads_host {
                request_host(request)
            } else {
                None
            },
            path: request.uri.path(),
            query: request.uri.query(),
            method: &request.method,
            headers: &request.headers,
            client,
        };
        self.order
            .iter()
            .find(|&&(route, index)| matches(&self.routes[route].matches[index], &seen))
            .map(|&(route, index)| (&self.routes[route], &self.routes[route].matches[index]))
    }
}

/// What matching reads of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub client: Option<&'a ClientIdentity>,
}

/// The host a request is for, without port; `None` when it names none.
pub fn request_host(request: &Parts) -> Option<&str> {
    if let Some(host) = request.uri.host() {
        return Some(host);
    }
    let value = request.headers.get(http::header::HOST)?.to_str().ok()?;
    Some(strip_port(value))
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        // IPv6 literal: keep through the closing bracket.
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(colon) => &authority[..colon],
        None => authority,
    }
}

/// True when every condition of `conditions` holds for `request`. The
/// cheap ones are checked first; regexes and the query last.
pub fn matches(conditions: &RouteMatch, request: &Request<'_>) -> bool {
    if let Some(identity) = &conditions.client_identity {
        if !request.client.is_some_and(|client| client.has(identity)) {
            return false;
        }
    }
    if let Some(method) = &conditions.method {
        if method != request.method {
            return false;
        }
    }
    if let Some(pattern) = &conditions.host {
        let Some(host) = request.host else {
            return false;
        };
        if !host_matches(pattern, host) {
            return false;
        }
    }
    if let Some(path) = &conditions.path {
        let holds = match path {
            PathMatch::Exact(expected) => request.path == expected,
            PathMatch::Prefix(prefix) => path_prefix_matches(prefix, request.path),
            PathMatch::Regex(pattern) => pattern.is_match(request.path),
        };
        if !holds {
            return false;
        }
    }
    let headers_hold = conditions.headers.iter().all(|(name, value)| {
        request
            .headers
            .get_all(name)
            .iter()
            .any(|present| value.matches(present.as_bytes()))
    });
    headers_hold
        && conditions
            .query
            .iter()
            .all(|(name, value)| query_holds(request.query, name, value))
}

/// Some parameter named `name` in the query has a value `value` matches.
fn query_holds(query: Option<&str>, name: &str, value: &TextMatch) -> bool {
    let Some(query) = query else { return false };
    form_urlencoded::parse(query.as_bytes())
        .any(|(key, found)| key == name && value.matches(found.as_bytes()))
}

fn host_matches(pattern: &HostMatch, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    match pattern {
        HostMatch::Exact(expected) => host.eq_ignore_ascii_case(expected),
        HostMatch::WildcardSuffix(suffix) => {
            host.len() > suffix.len()
                && host.is_char_boundary(host.len() - suffix.len())
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
    }
}

fn path_prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn parts(uri: &str, host: Option<&str>, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn conditions(
        host: Option<HostMatch>,
        prefix: Option<&str>,
        headers: &[(&str, &str)],
    ) -> RouteMatch {
        RouteMatch {
            host,
            path: prefix.map(|prefix| PathMatch::Prefix(prefix.to_owned())),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        TextMatch::Exact((*v).to_owned()),
                    )
                })
                .collect(),
            ..RouteMatch::default()
        }
    }

    fn seen<'a>(request: &'a Parts, client: Option<&'a ClientIdentity>) -> Request<'a> {
        Request {
            host: request_host(request),
            path: request.uri.path(),
            query: request.uri.query(),
            method: &request.method,
            headers: &request.headers,
            client,
        }
    }

    fn check(cond: &RouteMatch, request: &Parts) -> bool {
        matches(cond, &seen(request, None))
    }

    #[test]
    fn client_identity_needs_a_verified_name() {
        let cond = RouteMatch {
            client_identity: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
            ..RouteMatch::default()
        };
        let request = parts("/", None, &[]);
        let web = ClientIdentity {
            uris: vec!["spiffe://cluster.local/ns/shop/sa/web".into()],
            dns_names: Vec::new(),
        };
        let other = ClientIdentity {
            uris: vec!["spiffe://cluster.local/ns/shop/sa/batch".into()],
            dns_names: Vec::new(),
        };
        assert!(matches(&cond, &seen(&request, Some(&web))));
        assert!(!matches(&cond, &seen(&request, Some(&other))));
        assert!(!matches(&cond, &seen(&request, None)));
    }

    #[test]
    fn empty_match_is_catch_all() {
        assert!(check(
            &RouteMatch::default(),
            &parts("/anything", None, &[])
        ));
    }

    #[test]
    fn exact_host_ignores_case_and_port() {
        let cond = conditions(Some(HostMatch::Exact("api.example.com".into())), None, &[]);
        assert!(check(&cond, &parts("/", Some("API.example.com:8080"), &[])));
        assert!(check(&cond, &parts("/", Some("api.example.com."), &[])));
        assert!(check(&cond, &parts("http://api.example.com/x", None, &[])));
        assert!(!check(&cond, &parts("/", Some("web.example.com"), &[])));
        assert!(!check(&cond, &parts("/", None, &[])));
    }

    #[test]
    fn wildcard_host_needs_a_label_before_the_suffix() {
        let cond = conditions(
            Some(HostMatch::WildcardSuffix(".example.com".into())),
            None,
            &[],
        );
        assert!(check(&cond, &parts("/", Some("a.example.com"), &[])));
        assert!(check(&cond, &parts("/", Some("a.b.EXAMPLE.com"), &[])));
        assert!(!check(&cond, &parts("/", Some("example.com"), &[])));
        assert!(!check(&cond, &parts("/", Some(".example.com"), &[])));
        assert!(!check(&cond, &parts("/", Some("badexample.com"), &[])));
    }

    #[test]
    fn ipv6_host_keeps_its_brackets() {
        let cond = conditions(Some(HostMatch::Exact("[::1]".into())), None, &[]);
        assert!(check(&cond, &parts("/", Some("[::1]:8080"), &[])));
    }

    #[test]
    fn path_prefix_matches_whole_segments() {
        let cond = conditions(None, Some("/v1"), &[]);
        assert!(check(&cond, &parts("/v1", None, &[])));
        assert!(check(&cond, &parts("/v1/", None, &[])));
        assert!(check(&cond, &parts("/v1/users?x=1", None, &[])));
        assert!(!check(&cond, &parts("/v10", None, &[])));
        assert!(!check(&cond, &parts("/", None, &[])));
        assert!(check(
            &conditions(None, Some("/"), &[]),
            &parts("/x", None, &[])
        ));
    }

    #[test]
    fn headers_must_all_match_exactly() {
        let cond = conditions(None, None, &[("x-env", "staging"), ("x-team", "a")]);
        assert!(check(
            &cond,
            &parts("/", None, &[("x-env", "staging"), ("x-team", "a")])
        ));
        assert!(!check(&cond, &parts("/", None, &[("x-env", "staging")])));
        assert!(!check(
            &cond,
            &parts("/", None, &[("x-env", "Staging"), ("x-team", "a")])
        ));
    }

    fn route(name: &str, matches: Vec<RouteMatch>) -> Route {
        let metrics = crate::metrics::Metrics::new(&[1.0]);
        Route::new(name, matches, 0, metrics.route("edge", name))
    }

    fn regex(text: &str) -> crate::config::Pattern {
        text.parse().unwrap()
    }

    #[test]
    fn methods_query_exact_and_regex_paths() {
        let cond = RouteMatch {
            path: Some(PathMatch::Regex(regex("/api/v[0-9]+/users/[0-9]+"))),
            method: Some(Method::GET),
            query: vec![("debug".into(), TextMatch::Regex(regex("1|true")))],
            ..RouteMatch::default()
        };
        assert!(check(
            &cond,
            &parts("/api/v2/users/7?debug=true", None, &[])
        ));
        assert!(check(
            &cond,
            &parts("/api/v2/users/7?a=b&debug=1", None, &[])
        ));
        assert!(!check(
            &cond,
            &parts("/api/v2/users/7?debug=yes", None, &[])
        ));
        assert!(!check(&cond, &parts("/api/v2/users/7", None, &[])));
        assert!(!check(&cond, &parts("/api/v2/users/x?debug=1", None, &[])));
        let mut post = parts("/api/v2/users/7?debug=1", None, &[]);
        post.method = Method::POST;
        assert!(!check(&cond, &post));
        // Query values are percent-decoded before they are compared.
        let spaced = RouteMatch {
            query: vec![("q".into(), TextMatch::Exact("a b/c".into()))],
            ..RouteMatch::default()
        };
        assert!(check(&spaced, &parts("/?q=a+b%2Fc", None, &[])));
        let exact = RouteMatch {
            path: Some(PathMatch::Exact("/v1".into())),
            ..RouteMatch::default()
        };
        assert!(check(&exact, &parts("/v1?x=1", None, &[])));
        assert!(!check(&exact, &parts("/v1/", None, &[])));
        let header_regex = RouteMatch {
            headers: vec![(
                HeaderName::from_static("x-version"),
                TextMatch::Regex(regex("v[0-9]+")),
            )],
            ..RouteMatch::default()
        };
        assert!(check(
            &header_regex,
            &parts("/", None, &[("x-version", "v12")])
        ));
        assert!(!check(
            &header_regex,
            &parts("/", None, &[("x-version", "v1x")])
        ));
    }

    /// Gateway API's precedence, as a table: each request goes to the most
    /// specific route that matches it, whatever the order in the file.
    #[test]
    fn the_most_specific_match_wins() {
        let prefix = |text: &str| RouteMatch {
            path: Some(PathMatch::Prefix(text.into())),
            ..RouteMatch::default()
        };
        let table = RouteTable::new(vec![
            route("catch-all", vec![RouteMatch::default()]),
            route("prefix-api", vec![prefix("/api")]),
            route("prefix-api-v1", vec![prefix("/api/v1")]),
            route(
                "exact-api-v1-users",
                vec![RouteMatch {
                    path: Some(PathMatch::Exact("/api/v1/users".into())),
                    ..RouteMatch::default()
                }],
            ),
            route(
                "regex-api-users",
                vec![RouteMatch {
                    path: Some(PathMatch::Regex(regex("/api/v[0-9]+/users/[0-9]+"))),
                    ..RouteMatch::default()
                }],
            ),
            route(
                "prefix-api-post",
                vec![RouteMatch {
                    method: Some(Method::POST),
                    ..prefix("/api")
                }],
            ),
            route(
                "prefix-api-one-header",
                vec![conditions(None, Some("/api"), &[("x-tester", "yes")])],
            ),
            route(
                "prefix-api-two-headers",
                vec![conditions(
                    None,
                    Some("/api"),
                    &[("x-tester", "yes"), ("x-team", "a")],
                )],
            ),
            route(
                "prefix-api-header-and-query",
                vec![RouteMatch {
                    query: vec![("debug".into(), TextMatch::Exact("1".into()))],
                    ..conditions(None, Some("/api"), &[("x-tester", "yes")])
                }],
            ),
            route(
                "host-wildcard",
                vec![RouteMatch {
                    host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                    ..RouteMatch::default()
                }],
            ),
            route(
                "host-exact",
                vec![RouteMatch {
                    host: Some(HostMatch::Exact("shop.example.com".into())),
                    ..RouteMatch::default()
                }],
            ),
            // Equal to prefix-api, later in the file: never chosen.
            route("prefix-api-again", vec![prefix("/api")]),
            // Two matches, either selects it.
            route("either", vec![prefix("/either-a"), prefix("/either-b")]),
        ]);
        /// Path, method, host, headers, and the route it must reach.
        type Row<'a> = (
            &'a str,
            Method,
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            &'a str,
        );
        #[rustfmt::skip]
        let table_rows: &[Row<'_>] = &[
            // path                       method        host                  headers                                  route
            ("/",                         Method::GET,  None,                 &[],                                     "catch-all"),
            ("/api",                      Method::GET,  None,                 &[],                                     "prefix-api"),
            ("/api/v10",                  Method::GET,  None,                 &[],                                     "prefix-api"),
            ("/api/v1/orders",            Method::GET,  None,                 &[],                                     "prefix-api-v1"),
            ("/api/v1/users",             Method::GET,  None,                 &[],                                     "exact-api-v1-users"),
            ("/api/v1/users/7",           Method::GET,  None,                 &[],                                     "regex-api-users"),
            ("/api/v2/users/7",           Method::GET,  None,                 &[],                                     "regex-api-users"),
            ("/api/v2/things",            Method::POST, None,                 &[],                                     "prefix-api-post"),
            ("/api/v2/things",            Method::POST, None,                 &[("x-tester", "yes")],                  "prefix-api-post"),
            ("/api/v2/things",            Method::GET,  None,                 &[("x-tester", "yes")],                  "prefix-api-one-header"),
            ("/api/v2/things",            Method::GET,  None,                 &[("x-tester", "yes"), ("x-team", "a")], "prefix-api-two-headers"),
            ("/api/v2/things?debug=1",    Method::GET,  None,                 &[("x-tester", "yes")],                  "prefix-api-header-and-query"),
            ("/api",                      Method::GET,  Some("a.example.com"), &[],                                    "host-wildcard"),
            ("/api",                      Method::GET,  Some("shop.example.com"), &[],                                 "host-exact"),
            ("/either-b/x",               Method::GET,  None,                 &[],                                     "either"),
        ];
        for (path, method, host, headers, expected) in table_rows {
            let mut request = parts(path, *host, headers);
            request.method = method.clone();
            let found = table.find(&request, None).map(|route| route.name.as_str());
            assert_eq!(
                found,
                Some(*expected),
                "{method} {path} host={host:?} {headers:?}"
            );
        }
    }

    #[test]
    fn no_match_is_none() {
        let table = RouteTable::new(vec![route(
            "api",
            vec![conditions(None, Some("/api"), &[])],
        )]);
        assert!(table.find(&parts("/web", None, &[]), None).is_none());
    }
}
