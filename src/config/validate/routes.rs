//! The routes of a listener: unique names, no route hidden behind a
//! catch-all, a service that exists, and `match` conditions that are
//! well-formed (host pattern, path prefix, headers, client identity).
//!
//! The syntax of a host pattern and of a path prefix belongs to `HostMatch` and
//! `PathPrefix` (`config/route_match.rs`); this module attaches the key path to
//! their errors. Called from `listeners`; matching requests is `route.rs`.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};

use super::Checker;
use crate::config::raw::{RawMatch, RawRoute};
use crate::config::route_match::PathPrefix;
use crate::config::{HostMatch, RouteConfig, RouteMatch};

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
        let mut catch_all: Option<(usize, &str)> = None;
        let mut routes = Vec::with_capacity(raw.len());
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

            // First match wins, so anything after a catch-all is dead
            // configuration that the author almost certainly did not intend.
            if let Some((first, first_name)) = catch_all {
                self.issue(
                    path.clone(),
                    format!(
                        "route {:?} can never match: {listener_path}.routes[{first}] \
                         ({first_name:?}) has no `match` and takes every request first; \
                         move the catch-all route to the end",
                        route.name
                    ),
                );
            }

            let matches = match &route.matches {
                Some(raw_match) => self.route_match(&format!("{path}.match"), raw_match),
                None => RouteMatch::default(),
            };
            // Judged on what was written, not on what parsed: a route whose
            // only condition is malformed is not a catch-all.
            let unconditional = route.matches.as_ref().is_none_or(|m| {
                m.host.is_none()
                    && m.path_prefix.is_none()
                    && m.headers.0.is_empty()
                    && m.client_identity.is_none()
            });
            if unconditional && catch_all.is_none() {
                catch_all = Some((index, &route.name));
            }

            let service = service_names.iter().position(|name| *name == route.service);
            if service.is_none() {
                let known = if service_names.is_empty() {
                    "no services are defined; add one under `services`".to_owned()
                } else {
                    format!("known services: {}", service_names.join(", "))
                };
                self.issue(
                    format!("{path}.service"),
                    format!("unknown service {:?}; {known}", route.service),
                );
            }

            routes.push(RouteConfig {
                name: route.name.clone(),
                matches,
                service: service.unwrap_or(0),
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
        let path_prefix = raw.path_prefix.as_deref().and_then(|text| {
            text.parse::<PathPrefix>()
                .map(PathPrefix::into_string)
                .map_err(|why| self.issue(format!("{path}.path_prefix"), why.to_string()))
                .ok()
        });

        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(raw.headers.0.len());
        for (name_text, value_text) in &raw.headers.0 {
            let header_path = format!("{path}.headers.{name_text}");
            let name = self.header_name(&header_path, name_text, "x-env");
            let value = if let Ok(value) = HeaderValue::from_str(value_text) {
                Some(value)
            } else {
                self.issue(
                    header_path.clone(),
                    format!(
                        "{value_text:?} is not a valid HTTP header value; control \
                         characters (such as newlines) are not allowed"
                    ),
                );
                None
            };
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
            path_prefix,
            headers,
            client_identity,
        }
    }
}
