//! `routes[].filters`: one filter per entry, header edits that name valid
//! headers luas does not manage itself, redirect and rewrite targets, and
//! the rules that span the route (a prefix replacement needs a prefix match;
//! a redirect and a rewrite exclude each other, and a redirect needs no
//! service).
//!
//! Called from `routes` with the route's parsed matches; the syntax of a
//! host name or a replacement path is `config/route_filter.rs`'s.

use http::{HeaderName, HeaderValue, StatusCode};

use super::Checker;
use std::time::Duration;

use crate::config::raw::{
    RawFilter, RawHeaderEdits, RawHeaders, RawMirror, RawPathReplace, RawRateKey, RawRateLimit,
};
use crate::config::route_filter::ReplacementPath;
use crate::config::{
    HeaderEdits, Hostname, ListenerConfig, Mirror, PathMatch, PathReplace, RateKey, RateLimit,
    Redirect, RedirectScheme, Rewrite, RouteFilter, RouteMatch, ServiceConfig,
};

/// Headers luas writes itself, or that frame the message: a filter that
/// edited them would break the exchange or be overwritten.
const MANAGED_HEADERS: [&str; 9] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// A rate or burst above this is no limit at all.
const MAX_RATE: u64 = 1_000_000_000;
/// About 100 bytes a key: 10 MB by default, 1 GB at most.
const DEFAULT_MAX_KEYS: u64 = 100_000;
const MAX_KEYS: u64 = 10_000_000;
const DEFAULT_MIRROR_IN_FLIGHT: u64 = 1024;
const DEFAULT_MIRROR_BODY_BYTES: u64 = 64 * 1024;
/// A copy is held whole until it is sent: bounded per copy.
const MAX_MIRROR_BODY_BYTES: u64 = 64 * 1024 * 1024;

impl Checker {
    pub(super) fn filters(
        &mut self,
        path: &str,
        raw: &[RawFilter],
        matches: &[RouteMatch],
        service_names: &[&str],
    ) -> Vec<RouteFilter> {
        let mut filters = Vec::with_capacity(raw.len());
        for (index, entry) in raw.iter().enumerate() {
            let at = format!("{path}[{index}]");
            let given = [
                entry.request_headers.is_some(),
                entry.response_headers.is_some(),
                entry.redirect.is_some(),
                entry.rewrite.is_some(),
                entry.rate_limit.is_some(),
                entry.mirror.is_some(),
            ]
            .into_iter()
            .filter(|&given| given)
            .count();
            if given != 1 {
                self.issue(
                    at,
                    "give exactly one filter per entry: request_headers, response_headers, \
                     redirect, rewrite, rate_limit or mirror (list several filters as several \
                     entries)",
                );
                continue;
            }
            let filter = if let Some(edits) = &entry.request_headers {
                RouteFilter::RequestHeaders(
                    self.header_edits(&format!("{at}.request_headers"), edits),
                )
            } else if let Some(edits) = &entry.response_headers {
                RouteFilter::ResponseHeaders(
                    self.header_edits(&format!("{at}.response_headers"), edits),
                )
            } else if let Some(redirect) = &entry.redirect {
                let at = format!("{at}.redirect");
                let scheme = redirect.scheme.as_deref().and_then(|scheme| match scheme {
                    "http" => Some(RedirectScheme::Http),
                    "https" => Some(RedirectScheme::Https),
                    other => {
                        self.issue(
                            format!("{at}.scheme"),
                            format!("unknown scheme {other:?}; use http or https"),
                        );
                        None
                    }
                });
                let port = redirect.port.and_then(|port| match u16::try_from(port) {
                    Ok(port) if port > 0 => Some(port),
                    _ => {
                        self.issue(
                            format!("{at}.port"),
                            format!("port {port} is out of range; use 1 to 65535"),
                        );
                        None
                    }
                });
                let status = match redirect.status {
                    None => StatusCode::FOUND,
                    Some(code) if REDIRECT_STATUSES.contains(&code) => {
                        StatusCode::from_u16(code).expect("a listed redirect status")
                    }
                    Some(code) => {
                        self.issue(
                            format!("{at}.status"),
                            format!(
                                "status {code} is not a redirect; use 301, 302, 303, 307 or 308"
                            ),
                        );
                        StatusCode::FOUND
                    }
                };
                RouteFilter::Redirect(Redirect {
                    scheme,
                    hostname: self
                        .hostname(&format!("{at}.hostname"), redirect.hostname.as_deref()),
                    port,
                    path: self.path_replace(&format!("{at}.path"), redirect.path.as_ref(), matches),
                    status,
                })
            } else if let Some(rewrite) = &entry.rewrite {
                let at = format!("{at}.rewrite");
                RouteFilter::Rewrite(Rewrite {
                    hostname: self.hostname(&format!("{at}.hostname"), rewrite.hostname.as_deref()),
                    path: self.path_replace(&format!("{at}.path"), rewrite.path.as_ref(), matches),
                })
            } else if let Some(limit) = &entry.rate_limit {
                RouteFilter::RateLimit(self.rate_limit(&format!("{at}.rate_limit"), limit))
            } else if let Some(mirror) = &entry.mirror {
                RouteFilter::Mirror(self.mirror(&format!("{at}.mirror"), mirror, service_names))
            } else {
                unreachable!("exactly one filter was given")
            };
            filters.push(filter);
        }
        let redirects = filters
            .iter()
            .filter(|filter| matches!(filter, RouteFilter::Redirect(_)))
            .count();
        let rewrites = filters
            .iter()
            .filter(|filter| matches!(filter, RouteFilter::Rewrite(_)))
            .count();
        let mirrors = filters
            .iter()
            .filter(|filter| matches!(filter, RouteFilter::Mirror(_)))
            .count();
        if redirects > 0 && mirrors > 0 {
            self.issue(
                path,
                "a route with a redirect forwards nothing, so it has nothing to mirror; \
                 remove the mirror or the redirect",
            );
        }
        if redirects > 1 || rewrites > 1 || redirects + rewrites > 1 {
            self.issue(
                path,
                "a route takes at most one redirect or one rewrite, not both (as Gateway API \
                 allows): a redirect answers the request, a rewrite forwards it",
            );
        }
        filters
    }

    /// A mirror with an unknown service is reported and kept (at service 0,
    /// without a group), so later issues keep their filter indices.
    fn mirror(&mut self, path: &str, raw: &RawMirror, service_names: &[&str]) -> Mirror {
        let service = match raw.service.as_deref() {
            None => {
                self.issue(
                    format!("{path}.service"),
                    "required: the service that gets the copies, e.g. `service: shadow`",
                );
                None
            }
            Some(name) => {
                let found = service_names.iter().position(|known| *known == name);
                if found.is_none() {
                    self.issue(
                        format!("{path}.service"),
                        format!(
                            "unknown service {name:?}; known services: {}",
                            service_names.join(", ")
                        ),
                    );
                }
                found
            }
        };
        let fraction = match raw.percent {
            None => 1.0,
            Some(percent) if (0.0..=100.0).contains(&percent) => percent / 100.0,
            Some(percent) => {
                self.issue(
                    format!("{path}.percent"),
                    format!(
                        "percent {percent} is out of range; give the share of requests copied, \
                         0 to 100, e.g. 10"
                    ),
                );
                1.0
            }
        };
        let max_in_flight = self.int_in_range(
            &format!("{path}.max_in_flight"),
            raw.max_in_flight,
            DEFAULT_MIRROR_IN_FLIGHT,
            1..=MAX_RATE,
            "give the most copies on their way at once, from 1, e.g. 1024",
        );
        let max_body_bytes =
            raw.max_body_bytes
                .as_ref()
                .map_or(Some(DEFAULT_MIRROR_BODY_BYTES), |size| {
                    self.size(
                        &format!("{path}.max_body_bytes"),
                        size,
                        0..=MAX_MIRROR_BODY_BYTES,
                        "give the largest request body copied, e.g. 64KiB (0 copies only requests \
                     without a body)",
                    )
                });
        Mirror {
            service: service.unwrap_or(0),
            group: raw.group.clone().filter(|_| service.is_some()),
            fraction,
            max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
            max_body_bytes: max_body_bytes.unwrap_or(DEFAULT_MIRROR_BODY_BYTES),
        }
    }

    /// A mirror's `group` names a group of its service: checked once the
    /// services are read, since routes come first in the file.
    pub(super) fn mirror_groups(
        &mut self,
        listeners: &[ListenerConfig],
        services: &[ServiceConfig],
    ) {
        for (listener_index, listener) in listeners.iter().enumerate() {
            for (route_index, route) in listener.routes.iter().enumerate() {
                for (filter_index, filter) in route.filters.iter().enumerate() {
                    let RouteFilter::Mirror(mirror) = filter else {
                        continue;
                    };
                    let (Some(group), Some(service)) =
                        (mirror.group.as_deref(), services.get(mirror.service))
                    else {
                        continue;
                    };
                    if service.groups.iter().all(|known| known.name != group) {
                        let known: Vec<&str> = service
                            .groups
                            .iter()
                            .map(|known| known.name.as_str())
                            .collect();
                        self.issue(
                            format!(
                                "listeners[{listener_index}].routes[{route_index}].filters[{filter_index}].mirror.group"
                            ),
                            format!(
                                "service {:?} has no group {group:?}; its groups: {}",
                                service.name,
                                known.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    fn rate_limit(&mut self, path: &str, raw: &RawRateLimit) -> RateLimit {
        if raw.requests.is_none() {
            self.issue(
                format!("{path}.requests"),
                "required: the requests allowed per `per`, e.g. `requests: 100, per: 1s`",
            );
        }
        let requests = self.int_in_range(
            &format!("{path}.requests"),
            raw.requests,
            1,
            1..=MAX_RATE,
            "give the requests allowed per `per`, from 1, e.g. 100",
        );
        let per = self.duration(
            &format!("{path}.per"),
            raw.per.as_deref(),
            Duration::from_secs(1),
            Some("a rate per no time at all means nothing"),
        );
        let burst = self.int_in_range(
            &format!("{path}.burst"),
            raw.burst,
            requests,
            1..=MAX_RATE,
            "give the requests a client may send at once, from 1, e.g. 20",
        );
        let max_keys = self.int_in_range(
            &format!("{path}.max_keys"),
            raw.max_keys,
            DEFAULT_MAX_KEYS,
            1..=MAX_KEYS,
            "give the most keys remembered, e.g. 100000 (about 100 bytes each)",
        );
        let key = match &raw.key {
            None => RateKey::ClientAddress,
            Some(RawRateKey::Word(word)) => match word.as_str() {
                "client_address" => RateKey::ClientAddress,
                "client_identity" => RateKey::ClientIdentity,
                other => {
                    self.issue(
                        format!("{path}.key"),
                        format!(
                            "unknown key {other:?}; use client_address, client_identity or \
                             {{ header: NAME }}"
                        ),
                    );
                    RateKey::ClientAddress
                }
            },
            Some(RawRateKey::Header { header }) => self
                .header_name(&format!("{path}.key.header"), header, "x-api-key")
                .map_or(RateKey::ClientAddress, RateKey::Header),
        };
        RateLimit {
            // In range, so they fit.
            requests: u32::try_from(requests).unwrap_or(u32::MAX),
            per,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
            key,
            max_keys: usize::try_from(max_keys).unwrap_or(usize::MAX),
        }
    }

    fn header_edits(&mut self, path: &str, raw: &RawHeaderEdits) -> HeaderEdits {
        let set = self.header_values(&format!("{path}.set"), &raw.set);
        let add = self.header_values(&format!("{path}.add"), &raw.add);
        let mut remove = Vec::with_capacity(raw.remove.len());
        for (index, name) in raw.remove.iter().enumerate() {
            let at = format!("{path}.remove[{index}]");
            if let Some(name) = self.header_name(&at, name, "x-internal") {
                if self.managed(&at, &name) {
                    remove.push(name);
                }
            }
        }
        // Judged on what was written: entries that were wrong are reported
        // already.
        if raw.set.entries.is_empty() && raw.add.entries.is_empty() && raw.remove.is_empty() {
            self.issue(
                path,
                "the filter changes nothing; give `set`, `add` or `remove`",
            );
        }
        HeaderEdits { set, add, remove }
    }

    fn header_values(&mut self, path: &str, raw: &RawHeaders) -> Vec<(HeaderName, HeaderValue)> {
        let mut values = Vec::with_capacity(raw.entries.len());
        for (index, entry) in raw.entries.iter().enumerate() {
            let at = if raw.listed {
                format!("{path}[{index}]")
            } else {
                format!("{path}.{}", entry.name)
            };
            let Some(name) = self.header_name(&at, &entry.name, "x-env") else {
                continue;
            };
            if !self.managed(&at, &name) {
                continue;
            }
            if values
                .iter()
                .any(|(seen, _): &(HeaderName, HeaderValue)| *seen == name)
            {
                self.issue(
                    at.clone(),
                    format!("header {:?} is listed twice; keep one entry", name.as_str()),
                );
            }
            let (Some(value), None) = (&entry.value, &entry.regex) else {
                self.issue(at, "give the header's value (a regex has no place here)");
                continue;
            };
            match HeaderValue::from_str(value) {
                Ok(value) => values.push((name, value)),
                Err(_) => self.issue(
                    at,
                    format!(
                        "{value:?} is not a valid HTTP header value; control characters (such \
                         as newlines) are not allowed"
                    ),
                ),
            }
        }
        values
    }

    /// True when a filter may edit `name`; reports it otherwise.
    fn managed(&mut self, path: &str, name: &HeaderName) -> bool {
        if MANAGED_HEADERS.contains(&name.as_str()) {
            let hint = if name == http::header::HOST {
                "; to change the host the endpoint sees, use `rewrite: { hostname }`"
            } else {
                ""
            };
            self.issue(
                path,
                format!(
                    "{:?} frames the message or is managed by luas and cannot be edited by a \
                     filter{hint}",
                    name.as_str()
                ),
            );
            return false;
        }
        true
    }

    fn hostname(&mut self, path: &str, text: Option<&str>) -> Option<Hostname> {
        text.and_then(|text| {
            text.parse::<Hostname>()
                .map_err(|why| self.issue(path, why.to_string()))
                .ok()
        })
    }

    /// `{ replace_full | replace_prefix }`: a prefix replacement replaces
    /// what the route's prefix matched, so every match must be a prefix.
    fn path_replace(
        &mut self,
        path: &str,
        raw: Option<&RawPathReplace>,
        matches: &[RouteMatch],
    ) -> Option<PathReplace> {
        let raw = raw?;
        let (key, text, full) = match (&raw.replace_full, &raw.replace_prefix) {
            (Some(text), None) => ("replace_full", text, true),
            (None, Some(text)) => ("replace_prefix", text, false),
            _ => {
                self.issue(
                    path,
                    "give exactly one of `replace_full` (the whole path) and `replace_prefix` \
                     (the part the route's prefix matched)",
                );
                return None;
            }
        };
        let at = format!("{path}.{key}");
        let ReplacementPath(text) = text
            .parse::<ReplacementPath>()
            .map_err(|why| self.issue(at.clone(), why.to_string()))
            .ok()?;
        if full {
            return Some(PathReplace::Full(text));
        }
        if !matches
            .iter()
            .all(|conditions| matches!(conditions.path, Some(PathMatch::Prefix(_))))
        {
            self.issue(
                at,
                "replace_prefix replaces the part of the path the route's prefix matched, so \
                 every match of the route needs a path prefix (`path: { prefix: /docs }`); use \
                 `replace_full` otherwise",
            );
            return None;
        }
        Some(PathReplace::Prefix(text))
    }
}
