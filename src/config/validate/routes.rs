//! The routes of a listener: unique names, no match hidden behind an equal
//! one, a service that exists, and `match`/`matches` conditions that are
//! well-formed (host pattern, path, method, headers, query, client identity;
//! regexes compiled here, once).
//!
//! The syntax of a host pattern and of a path prefix belongs to `HostMatch` and
//! `PathPrefix` (`config/route_match.rs`); this module attaches the key path to
//! their errors. Called from `listeners`; matching requests is `route.rs`.

use std::collections::HashMap;

use http::HeaderName;

use super::Checker;
use crate::config::raw::{RawMatch, RawPathMatch, RawRoute, RawValueMatch};
use crate::config::route_match::{ExactPath, PathPrefix};
use crate::config::{
    HostMatch, PathMatch, Pattern, RouteConfig, RouteFilter, RouteMatch, RouteTimeouts, TextMatch,
};

impl Checker {
    pub(super) fn routes(
        &mut self,
        listener_path: &str,
        raw: &[RawRoute],
        service_names: &[&str],
    ) -> Vec<RouteConfig> {
        if raw.is_empty() {
            self.issue(
                format!("{listener_path}.routes"),
                "the listener has no routes, so every request would get a 404; add at least \
                 one route (a route without `match` catches everything)",
            );
        }

        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
        // Routes whose conditions all parsed: a malformed condition is left
        // out, which must not make its match look equal to another.
        let mut well_formed: Vec<bool> = Vec::with_capacity(raw.len());
        for (index, route) in raw.iter().enumerate() {
            let path = format!("{listener_path}.routes[{index}]");
            self.unique_name(
                &mut names,
                index,
                &route.name,
                "route",
                " within a listener",
                |i| format!("{listener_path}.routes[{i}]"),
            );

            let issues_before = self.issues.len();
            let matches = match (&route.single, &route.matches) {
                (Some(_), Some(_)) => {
                    self.issue(
                        format!("{path}.matches"),
                        "give either `match` (one set of conditions) or `matches` (a list, any \
                         of which selects the route), not both",
                    );
                    vec![RouteMatch::default()]
                }
                (Some(single), None) => vec![self.route_match(&format!("{path}.match"), single)],
                (None, Some(list)) if list.is_empty() => {
                    self.issue(
                        format!("{path}.matches"),
                        "the list is empty, so the route could never match; remove `matches` \
                         to match every request",
                    );
                    vec![RouteMatch::default()]
                }
                (None, Some(list)) => list
                    .iter()
                    .enumerate()
                    .map(|(i, raw_match)| {
                        self.route_match(&format!("{path}.matches[{i}]"), raw_match)
                    })
                    .collect(),
                (None, None) => vec![RouteMatch::default()],
            };
            // The most specific match wins, then file order: a match equal to
            // one before it could never be chosen.
            let parsed = self.issues.len() == issues_before;
            well_formed.push(parsed);
            for (match_index, conditions) in matches.iter().enumerate().filter(|_| parsed) {
                let earlier = routes.iter().enumerate().find_map(|(i, earlier)| {
                    (well_formed[i] && earlier.matches.contains(conditions))
                        .then_some((i, &earlier.name))
                });
                if let Some((first, first_name)) = earlier {
                    let written = if route.matches.is_some() {
                        format!("{path}.matches[{match_index}]")
                    } else {
                        path.clone()
                    };
                    self.issue(
                        written,
                        format!(
                            "route {:?} can never match these conditions: \
                             {listener_path}.routes[{first}] ({first_name:?}) has the same ones \
                             and comes first; remove one or make them differ",
                            route.name
                        ),
                    );
                }
            }

            let filters = self.filters(
                &format!("{path}.filters"),
                route.filters.as_deref().unwrap_or_default(),
                &matches,
                service_names,
            );
            let redirects = filters
                .iter()
                .any(|filter| matches!(filter, RouteFilter::Redirect(_)));
            let service = match (&route.service, redirects) {
                (Some(_), true) => {
                    self.issue(
                        format!("{path}.service"),
                        "the route's redirect answers every request itself, so `service` is \
                         never used; remove it",
                    );
                    None
                }
                (None, true) => None,
                (None, false) => {
                    self.issue(
                        path.clone(),
                        "the route has no `service`; name the service it sends requests to \
                         (only a route with a `redirect` filter needs none)",
                    );
                    Some(0)
                }
                (Some(name), false) => {
                    let found = service_names.iter().position(|known| known == name);
                    if found.is_none() {
                        let known = if service_names.is_empty() {
                            "no services are defined; add one under `services`".to_owned()
                        } else {
                            format!("known services: {}", service_names.join(", "))
                        };
                        self.issue(
                            format!("{path}.service"),
                            format!("unknown service {name:?}; {known}"),
                        );
                    }
                    Some(found.unwrap_or(0))
                }
            };

            let raw_timeouts = route.timeouts.as_ref();
            let request = raw_timeouts
                .and_then(|t| t.request.as_deref())
                .and_then(|text| {
                    self.checked_duration(
                        &format!("{path}.timeouts.request"),
                        text,
                        Some("a zero request timeout would fail every request"),
                    )
                });
            let backend_request = raw_timeouts
                .and_then(|t| t.backend_request.as_deref())
                .and_then(|text| {
                    self.checked_duration(
                        &format!("{path}.timeouts.backend_request"),
                        text,
                        Some("every try would time out at once"),
                    )
                });
            if let (Some(request), Some(backend)) = (request, backend_request) {
                if backend > request {
                    self.issue(
                        format!("{path}.timeouts.backend_request"),
                        format!(
                            "backend_request {backend:?} is longer than the route's request \
                             timeout {request:?}, which bounds every try together, so it would \
                             never fire; set it to at most {request:?}"
                        ),
                    );
                }
            }
            let retry = route.retry.as_ref().map(|raw_retry| {
                self.retry(
                    &format!("{path}.retry"),
                    raw_retry,
                    request.map(|r| (r, true)),
                )
            });

            routes.push(RouteConfig {
                name: route.name.clone(),
                matches,
                filters,
                service,
                timeouts: RouteTimeouts {
                    request,
                    backend_request,
                },
                retry,
            });
        }
        routes
    }

    fn route_match(&mut self, path: &str, raw: &RawMatch) -> RouteMatch {
        let host = raw.host.as_deref().and_then(|text| {
            text.parse::<HostMatch>()
                .map_err(|why| self.issue(format!("{path}.host"), why.to_string()))
                .ok()
        });
        let prefix = raw.path_prefix.as_deref().and_then(|text| {
            text.parse::<PathPrefix>()
                .map(|prefix| PathMatch::Prefix(prefix.into_string()))
                .map_err(|why| self.issue(format!("{path}.path_prefix"), why.to_string()))
                .ok()
        });
        let path_match = match (&raw.path, prefix) {
            (Some(_), Some(prefix)) => {
                self.issue(
                    format!("{path}.path"),
                    "give either `path_prefix` or `path`, not both; `path: { prefix: /api }` \
                     is the same as `path_prefix: /api`",
                );
                Some(prefix)
            }
            (Some(written), None) => self.path_match(&format!("{path}.path"), written),
            (None, prefix) => prefix,
        };
        let method = raw.method.as_deref().and_then(|text| {
            let upper = text.to_ascii_uppercase();
            match http::Method::from_bytes(upper.as_bytes()) {
                Ok(method) if !text.is_empty() => Some(method),
                _ => {
                    self.issue(
                        format!("{path}.method"),
                        format!("{text:?} is not an HTTP method; use e.g. GET, POST or DELETE"),
                    );
                    None
                }
            }
        });

        let mut headers: Vec<(HeaderName, TextMatch)> =
            Vec::with_capacity(raw.headers.entries.len());
        for (index, entry) in raw.headers.entries.iter().enumerate() {
            let header_path = if raw.headers.listed {
                format!("{path}.headers[{index}]")
            } else {
                format!("{path}.headers.{}", entry.name)
            };
            let name_path = if raw.headers.listed {
                format!("{header_path}.name")
            } else {
                header_path.clone()
            };
            let name = self.header_name(&name_path, &entry.name, "x-env");
            let value = self.text_match(&header_path, entry, raw.headers.listed);
            if let Some(name) = &name {
                if headers.iter().any(|(seen, _)| seen == name) {
                    self.issue(
                        header_path.clone(),
                        format!(
                            "header {:?} is listed twice (header names are \
                             case-insensitive); keep one entry",
                            name.as_str()
                        ),
                    );
                }
            }
            if let (Some(name), Some(value)) = (name, value) {
                headers.push((name, value));
            }
        }

        let mut query: Vec<(String, TextMatch)> = Vec::new();
        for (index, entry) in raw.query.iter().flatten().enumerate() {
            let query_path = format!("{path}.query[{index}]");
            if entry.name.is_empty() {
                self.issue(
                    format!("{query_path}.name"),
                    "the query parameter name is empty; give the name as it appears before '='",
                );
            }
            if query.iter().any(|(seen, _)| *seen == entry.name) {
                self.issue(
                    query_path.clone(),
                    format!(
                        "query parameter {:?} is listed twice; keep one entry",
                        entry.name
                    ),
                );
            }
            if let Some(value) = self.text_match(&query_path, entry, true) {
                query.push((entry.name.clone(), value));
            }
        }

        let client_identity = raw.client_identity.as_ref().and_then(|identity| {
            if identity.is_empty() {
                self.issue(
                    format!("{path}.client_identity"),
                    "the identity is empty; give a DNS or URI name of the client certificate, \
                     e.g. spiffe://cluster.local/ns/shop/sa/web",
                );
                return None;
            }
            Some(identity.clone())
        });

        RouteMatch {
            host,
            path: path_match,
            method,
            headers,
            query,
            client_identity,
        }
    }

    /// `path: { exact | prefix | regex }`, exactly one.
    fn path_match(&mut self, path: &str, raw: &RawPathMatch) -> Option<PathMatch> {
        match (&raw.exact, &raw.prefix, &raw.regex) {
            (Some(exact), None, None) => exact
                .parse::<ExactPath>()
                .map(|exact| PathMatch::Exact(exact.into_string()))
                .map_err(|why| self.issue(format!("{path}.exact"), why.to_string()))
                .ok(),
            (None, Some(prefix), None) => prefix
                .parse::<PathPrefix>()
                .map(|prefix| PathMatch::Prefix(prefix.into_string()))
                .map_err(|why| self.issue(format!("{path}.prefix"), why.to_string()))
                .ok(),
            (None, None, Some(regex)) => regex
                .parse::<Pattern>()
                .map(PathMatch::Regex)
                .map_err(|why| self.issue(format!("{path}.regex"), why.to_string()))
                .ok(),
            _ => {
                self.issue(
                    path,
                    "give exactly one of `exact`, `prefix` and `regex`, e.g. \
                     `path: { prefix: /api }`",
                );
                None
            }
        }
    }

    /// A header or query condition's `value` or `regex`, exactly one. In
    /// the map form of headers the entry is the value itself.
    fn text_match(&mut self, path: &str, raw: &RawValueMatch, listed: bool) -> Option<TextMatch> {
        match (&raw.value, &raw.regex) {
            (Some(value), None) => {
                if value.chars().any(|c| c.is_control() && c != '\t') {
                    let at = if listed {
                        format!("{path}.value")
                    } else {
                        path.to_owned()
                    };
                    self.issue(
                        at,
                        format!(
                            "{value:?} is not a valid HTTP header value; control characters \
                             (such as newlines) are not allowed"
                        ),
                    );
                    return None;
                }
                Some(TextMatch::Exact(value.clone()))
            }
            (None, Some(regex)) => regex
                .parse::<Pattern>()
                .map(TextMatch::Regex)
                .map_err(|why| self.issue(format!("{path}.regex"), why.to_string()))
                .ok(),
            _ => {
                self.issue(
                    path,
                    "give exactly one of `value` (an exact match) and `regex`",
                );
                None
            }
        }
    }
}
