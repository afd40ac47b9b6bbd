//! Matching a request to a route: the ordered route table of one listener.
//!
//! [`RouteTable::find`] is pure: it reads the request head and returns the
//! first route whose every condition holds, or `None` (a 404). Conditions:
//! - host: exact (`api.example.com`) or wildcard (`*.example.com`, one or more
//!   labels), case-insensitive, port ignored. The host is the URI authority
//!   (HTTP/2 `:authority`, absolute-form) or else the `Host` header.
//! - path prefix: whole segments, so `/v1` matches `/v1` and `/v1/users` but
//!   not `/v10` (the Gateway API's `PathPrefix`).
//! - headers: each named header has exactly the given value.
//! - client identity: the verified client certificate (mTLS) carries the
//!   given DNS or URI name.
//!
//! This module does not know about services beyond their index, nor about
//! metrics beyond holding the route's pre-bound handles.

use http::request::Parts;
use http::HeaderMap;

use crate::config::{HostMatch, RouteMatch};
use crate::metrics::RouteMetrics;
use crate::tls::ClientIdentity;

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matches: RouteMatch,
    /// Index into the snapshot's services.
    pub service: usize,
    pub metrics: RouteMetrics,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    pub routes: Vec<Route>,
}

impl RouteTable {
    pub fn find(&self, request: &Parts, client: Option<&ClientIdentity>) -> Option<&Route> {
        let host = request_host(request);
        let path = request.uri.path();
        self.routes
            .iter()
            .find(|route| matches(&route.matches, host, path, &request.headers, client))
    }
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

pub fn matches(
    conditions: &RouteMatch,
    host: Option<&str>,
    path: &str,
    headers: &HeaderMap,
    client: Option<&ClientIdentity>,
) -> bool {
    if let Some(identity) = &conditions.client_identity {
        if !client.is_some_and(|client| client.has(identity)) {
            return false;
        }
    }
    if let Some(pattern) = &conditions.host {
        let Some(host) = host else { return false };
        if !host_matches(pattern, host) {
            return false;
        }
    }
    if let Some(prefix) = &conditions.path_prefix {
        if !path_prefix_matches(prefix, path) {
            return false;
        }
    }
    conditions
        .headers
        .iter()
        .all(|(name, value)| headers.get_all(name).iter().any(|present| present == value))
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
    use http::{HeaderName, HeaderValue, Request};

    fn parts(uri: &str, host: Option<&str>, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri(uri);
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
            path_prefix: prefix.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        HeaderValue::from_str(v).unwrap(),
                    )
                })
                .collect(),
            client_identity: None,
        }
    }

    fn check(cond: &RouteMatch, request: &Parts) -> bool {
        matches(
            cond,
            request_host(request),
            request.uri.path(),
            &request.headers,
            None,
        )
    }

    #[test]
    fn client_identity_needs_a_verified_name() {
        let cond = RouteMatch {
            client_identity: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
            ..RouteMatch::default()
        };
        let request = parts("/", None, &[]);
        let host = request_host(&request);
        let web = ClientIdentity {
            uris: vec!["spiffe://cluster.local/ns/shop/sa/web".into()],
            dns_names: Vec::new(),
        };
        let other = ClientIdentity {
            uris: vec!["spiffe://cluster.local/ns/shop/sa/batch".into()],
            dns_names: Vec::new(),
        };
        let headers = &request.headers;
        assert!(matches(&cond, host, "/", headers, Some(&web)));
        assert!(!matches(&cond, host, "/", headers, Some(&other)));
        assert!(!matches(&cond, host, "/", headers, None));
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

    #[test]
    fn first_match_wins() {
        let metrics = crate::metrics::Metrics::new(&[1.0]);
        let table = RouteTable {
            routes: vec![
                Route {
                    name: "api".into(),
                    matches: conditions(None, Some("/api"), &[]),
                    service: 0,
                    metrics: metrics.route("edge", "api"),
                },
                Route {
                    name: "rest".into(),
                    matches: RouteMatch::default(),
                    service: 1,
                    metrics: metrics.route("edge", "rest"),
                },
            ],
        };
        let find = |path| {
            table
                .find(&parts(path, None, &[]), None)
                .unwrap()
                .name
                .clone()
        };
        assert_eq!(find("/api/x"), "api");
        assert_eq!(find("/web"), "rest");
    }
}
