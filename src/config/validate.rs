//! Semantic checks: turning the raw serde mirror into the typed [`Config`].
//!
//! This module owns every rule about what the values mean: addresses parse,
//! durations parse and are non-zero where zero is nonsense, names are unique
//! and well-formed, routes point at services that exist, weights leave some
//! traffic somewhere, and match conditions are well-formed. It applies the
//! defaults from [`super::defaults`]. It reports *every* problem, each with
//! the key path a user can find in the file, instead of stopping at the
//! first. It does not read files or parse YAML (see `raw`), and it does not
//! check anything that needs the network, such as whether a port is free.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::defaults;
use super::raw::{
    RawBalancer, RawConfig, RawGroup, RawListener, RawListenerProtocol, RawMatch, RawRoute,
    RawService, RawUpstreamProtocol,
};
use super::{
    AdminConfig, BalancerKind, Config, SplitConfig, ConfigIssue, EwmaConfig, GroupConfig, HostMatch,
    ListenerConfig, ListenerProtocol, MetricsConfig, RouteConfig, RouteMatch, ServiceConfig,
    ShutdownConfig, Timeouts, UpstreamProtocol,
};

/// Stands in for a value that failed a check, so the walk can go on and find
/// the remaining problems. It never escapes: any recorded issue means the
/// whole `Config` is thrown away.
const PLACEHOLDER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

const ADDRESS_FORM: &str =
    "expected IP:port, e.g. 0.0.0.0:8080 or [::1]:8080 (host names are not resolved)";

const NAME_FORM: &str = "use only letters, digits, '.', '_' and '-'";

/// Checks `raw` and builds the typed configuration, or returns every problem found.
pub(crate) fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigIssue>> {
    let mut checker = Checker::default();
    let config = checker.config(raw);
    if checker.issues.is_empty() {
        Ok(config)
    } else {
        Err(checker.issues)
    }
}

#[derive(Default)]
struct Checker {
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let admin_text = raw
            .admin
            .and_then(|admin| admin.listen)
            .unwrap_or_else(|| defaults::ADMIN_LISTEN.to_string());
        let admin_listen = self.address("admin.listen", &admin_text);

        // Routes resolve services by the names in the file, so services may
        // come after the routes that use them; issues stay in file-section order.
        let service_names: Vec<&str> = raw.services.iter().map(|s| s.name.as_str()).collect();
        let listeners = self.listeners(&raw.listeners, &service_names, admin_listen);
        let services = self.services(&raw.services);

        let metrics = MetricsConfig {
            buckets: self.buckets(raw.metrics.and_then(|m| m.buckets)),
            linkerd_compatible: false,
            namespace: defaults::NAMESPACE.to_string(),
        };
        let grace = raw.shutdown.and_then(|s| s.grace_period);
        let shutdown = ShutdownConfig {
            grace_period: self.duration(
                "shutdown.grace_period",
                grace.as_deref(),
                defaults::GRACE_PERIOD,
                // Zero is a legitimate "stop now".
                None,
            ),
        };

        Config {
            admin: AdminConfig {
                listen: admin_listen.unwrap_or(PLACEHOLDER_ADDR),
            },
            listeners,
            services,
            metrics,
            shutdown,
            state_file: None,
        }
    }

    // ---- listeners and routes ----

    fn listeners(
        &mut self,
        raw: &[RawListener],
        service_names: &[&str],
        admin_listen: Option<SocketAddr>,
    ) -> Vec<ListenerConfig> {
        if raw.is_empty() {
            self.issue(
                "listeners",
                "no listeners are defined, so luas would accept no traffic; add at least one \
                 listener with a `name`, a `listen` address and `routes`",
            );
        }

        let mut names: HashMap<&str, usize> = HashMap::new();
        // (key path, address) of every socket bound so far.
        let mut bound: Vec<(String, SocketAddr)> = Vec::new();
        if let Some(admin) = admin_listen {
            bound.push(("admin.listen".to_string(), admin));
        }

        let mut listeners = Vec::with_capacity(raw.len());
        for (index, listener) in raw.iter().enumerate() {
            let path = format!("listeners[{index}]");
            self.unique_name(&mut names, index, &listener.name, "listener", "", |i| {
                format!("listeners[{i}]")
            });

            let listen_path = format!("{path}.listen");
            let listen = self.address(&listen_path, &listener.listen);
            if let Some(addr) = listen {
                for (other_path, other) in &bound {
                    if sockets_collide(addr, *other) {
                        let (what, fix) = if other_path == "admin.listen" {
                            ("the admin listener", "move `admin.listen` or this listener")
                        } else {
                            ("another listener", "give each listener its own address")
                        };
                        let same = if addr == *other {
                            format!("address {addr} is already used by {what} at {other_path}")
                        } else {
                            format!(
                                "address {addr} overlaps {other} used by {what} at \
                                 {other_path}; binding both would fail"
                            )
                        };
                        self.issue(listen_path.clone(), format!("{same}; {fix}"));
                    }
                }
                bound.push((listen_path, addr));
            }

            let protocol = match listener.protocol {
                None | Some(RawListenerProtocol::Auto) => ListenerProtocol::Auto,
                Some(RawListenerProtocol::Http1) => ListenerProtocol::Http1,
                Some(RawListenerProtocol::Http2) => ListenerProtocol::Http2,
            };

            let routes = self.routes(&path, &listener.routes, service_names);
            listeners.push(ListenerConfig {
                name: listener.name.clone(),
                listen: listen.unwrap_or(PLACEHOLDER_ADDR),
                protocol,
                routes,
            });
        }
        listeners
    }

    fn routes(
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
            let unconditional = route.matches.as_ref().map_or(true, |m| {
                m.host.is_none() && m.path_prefix.is_none() && m.headers.0.is_empty()
            });
            if unconditional && catch_all.is_none() {
                catch_all = Some((index, &route.name));
            }

            let service = service_names.iter().position(|name| *name == route.service);
            if service.is_none() {
                let known = if service_names.is_empty() {
                    "no services are defined; add one under `services`".to_string()
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
            parse_host(text)
                .map_err(|why| self.issue(format!("{path}.host"), why))
                .ok()
        });
        let path_prefix = raw.path_prefix.as_deref().and_then(|text| {
            parse_path_prefix(text)
                .map_err(|why| self.issue(format!("{path}.path_prefix"), why))
                .ok()
        });

        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(raw.headers.0.len());
        for (name_text, value_text) in &raw.headers.0 {
            let header_path = format!("{path}.headers.{name_text}");
            let name = match HeaderName::from_bytes(name_text.as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    self.issue(
                        header_path.clone(),
                        format!(
                            "{name_text:?} is not a valid HTTP header name; use letters, \
                             digits and '-', e.g. x-env"
                        ),
                    );
                    None
                }
            };
            let value = match HeaderValue::from_str(value_text) {
                Ok(value) => Some(value),
                Err(_) => {
                    self.issue(
                        header_path.clone(),
                        format!(
                            "{value_text:?} is not a valid HTTP header value; control \
                             characters (such as newlines) are not allowed"
                        ),
                    );
                    None
                }
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

        RouteMatch {
            host,
            path_prefix,
            headers,
        }
    }

    // ---- services ----

    fn services(&mut self, raw: &[RawService]) -> Vec<ServiceConfig> {
        if raw.is_empty() {
            self.issue(
                "services",
                "no services are defined; add at least one service with a `name` and \
                 `endpoints` for the routes to send traffic to",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut services = Vec::with_capacity(raw.len());
        for (index, service) in raw.iter().enumerate() {
            let path = format!("services[{index}]");
            self.unique_name(&mut names, index, &service.name, "service", "", |i| {
                format!("services[{i}]")
            });
            services.push(self.service(&path, service));
        }
        services
    }

    fn service(&mut self, path: &str, raw: &RawService) -> ServiceConfig {
        let balancer = match raw.balancer {
            None | Some(RawBalancer::P2cEwma) => BalancerKind::P2cEwma,
            Some(RawBalancer::LeastRequest) => BalancerKind::LeastRequest,
            Some(RawBalancer::RoundRobin) => BalancerKind::RoundRobin,
        };
        let protocol = match raw.protocol {
            None | Some(RawUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
            Some(RawUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
        };

        let timeouts = raw.timeouts.as_ref();
        let timeouts = Timeouts {
            connect: self.duration(
                &format!("{path}.timeouts.connect"),
                timeouts.and_then(|t| t.connect.as_deref()),
                defaults::CONNECT_TIMEOUT,
                Some("a zero connect timeout would fail every connection attempt"),
            ),
            request: self.duration(
                &format!("{path}.timeouts.request"),
                timeouts.and_then(|t| t.request.as_deref()),
                defaults::REQUEST_TIMEOUT,
                Some("a zero request timeout would fail every request"),
            ),
        };
        let ewma = raw.ewma.as_ref();
        let ewma = EwmaConfig {
            decay: self.duration(
                &format!("{path}.ewma.decay"),
                ewma.and_then(|e| e.decay.as_deref()),
                defaults::EWMA_DECAY,
                Some("the moving average needs a positive time constant to decay over"),
            ),
            // Zero is allowed for both: an optimistic start and a free failure
            // are odd choices, not broken ones.
            default_rtt: self.duration(
                &format!("{path}.ewma.default_rtt"),
                ewma.and_then(|e| e.default_rtt.as_deref()),
                defaults::DEFAULT_RTT,
                None,
            ),
            failure_penalty: self.duration(
                &format!("{path}.ewma.failure_penalty"),
                ewma.and_then(|e| e.failure_penalty.as_deref()),
                defaults::FAILURE_PENALTY,
                None,
            ),
        };

        let groups = self.groups(path, raw);
        ServiceConfig {
            name: raw.name.clone(),
            balancer,
            protocol,
            timeouts,
            ewma,
            groups,
            split: SplitConfig {
                override_header: Some(http::HeaderName::from_static(defaults::OVERRIDE_HEADER)),
                sticky: None,
            },
            rollout: None,
        }
    }

    fn groups(&mut self, path: &str, raw: &RawService) -> Vec<GroupConfig> {
        // Every endpoint of the service, across groups, with where it was first seen.
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();

        match (&raw.endpoints, &raw.groups) {
            (Some(_), Some(_)) => self.issue(
                path,
                "the service has both `endpoints` and `groups`; use `endpoints` for one \
                 plain list of backends or `groups` for weighted versions, not both",
            ),
            (None, None) => self.issue(
                path,
                "the service has neither `endpoints` nor `groups`; list its backends, e.g. \
                 `endpoints: [10.0.0.1:8080]`",
            ),
            _ => {}
        }

        let mut groups = Vec::new();
        if let Some(endpoints) = &raw.endpoints {
            let endpoints = self.endpoints(&format!("{path}.endpoints"), endpoints, &mut seen);
            groups.push(GroupConfig {
                name: defaults::DEFAULT_GROUP.to_string(),
                weight: defaults::DEFAULT_WEIGHT,
                endpoints,
                deployment: format!("{}-{}", raw.name, defaults::DEFAULT_GROUP),
            });
        }
        if let Some(raw_groups) = &raw.groups {
            groups.extend(self.weighted_groups(path, raw_groups, &mut seen));
        }
        for group in &mut groups {
            if group.deployment.is_empty() {
                group.deployment = format!("{}-{}", raw.name, group.name);
            }
        }
        groups
    }

    fn weighted_groups(
        &mut self,
        service_path: &str,
        raw: &[RawGroup],
        seen: &mut HashMap<SocketAddr, String>,
    ) -> Vec<GroupConfig> {
        if raw.is_empty() {
            self.issue(
                format!("{service_path}.groups"),
                "`groups` is empty; add at least one group with endpoints, or use \
                 `endpoints` for a single group",
            );
            return Vec::new();
        }

        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut groups = Vec::with_capacity(raw.len());
        for (index, group) in raw.iter().enumerate() {
            let path = format!("{service_path}.groups[{index}]");
            self.unique_name(
                &mut names,
                index,
                &group.name,
                "group",
                " within a service",
                |i| format!("{service_path}.groups[{i}]"),
            );

            let weight = group.weight.unwrap_or(defaults::DEFAULT_WEIGHT);
            let endpoints = self.endpoints(&format!("{path}.endpoints"), &group.endpoints, seen);
            groups.push(GroupConfig {
                name: group.name.clone(),
                weight,
                endpoints,
                deployment: String::new(),
            });
        }

        if groups.iter().all(|group| group.weight == 0) {
            self.issue(
                format!("{service_path}.groups"),
                "every group has weight 0, so the service could never receive traffic; give \
                 at least one group a weight above 0 (the default is 100)",
            );
        }
        groups
    }

    fn endpoints(
        &mut self,
        path: &str,
        raw: &[String],
        seen: &mut HashMap<SocketAddr, String>,
    ) -> Vec<SocketAddr> {
        if raw.is_empty() {
            self.issue(
                path,
                "the endpoint list is empty; list at least one backend address, e.g. \
                 [10.0.0.1:8080]",
            );
        }
        let mut endpoints = Vec::with_capacity(raw.len());
        for (index, text) in raw.iter().enumerate() {
            let endpoint_path = format!("{path}[{index}]");
            let Some(addr) = self.address(&endpoint_path, text) else {
                continue;
            };
            if addr.port() == 0 {
                self.issue(
                    endpoint_path,
                    format!("endpoint {text:?} has port 0, which cannot be connected to; use the backend's real port"),
                );
                continue;
            }
            if let Some(first) = seen.get(&addr) {
                self.issue(
                    endpoint_path,
                    format!(
                        "endpoint {addr} is listed twice in this service (first at {first}); \
                         list each backend once, in one group"
                    ),
                );
                continue;
            }
            seen.insert(addr, endpoint_path);
            endpoints.push(addr);
        }
        endpoints
    }

    // ---- metrics ----

    fn buckets(&mut self, raw: Option<Vec<f64>>) -> Vec<f64> {
        let Some(buckets) = raw else {
            return defaults::BUCKETS.to_vec();
        };
        if buckets.is_empty() {
            self.issue(
                "metrics.buckets",
                "`buckets` is empty; list at least one upper bound in seconds, or remove \
                 `buckets` to use the defaults",
            );
        }
        for (index, &bound) in buckets.iter().enumerate() {
            let path = format!("metrics.buckets[{index}]");
            if !bound.is_finite() || bound <= 0.0 {
                self.issue(
                    path,
                    format!(
                        "bucket bound {bound} must be a positive number of seconds, e.g. 0.005"
                    ),
                );
                continue;
            }
            if index > 0 {
                let previous = buckets[index - 1];
                // Only compare against a valid neighbour, so that one bad
                // value is reported once.
                if previous.is_finite() && previous > 0.0 && bound <= previous {
                    self.issue(
                        path,
                        format!(
                            "bucket bound {bound} is not greater than the previous bound \
                             {previous}; bounds must be strictly increasing"
                        ),
                    );
                }
            }
        }
        buckets
    }

    // ---- leaf values ----

    /// Checks the form of the name of item `index` (a listener, route, ...)
    /// and that no earlier sibling has it. `item_path(i)` is the key path of
    /// sibling `i`; `scope` says where names must be unique.
    fn unique_name<'a>(
        &mut self,
        seen: &mut HashMap<&'a str, usize>,
        index: usize,
        name: &'a str,
        what: &str,
        scope: &str,
        item_path: impl Fn(usize) -> String,
    ) {
        let path = format!("{}.name", item_path(index));
        self.name(&path, what, name);
        match seen.get(name) {
            Some(&first) => self.issue(
                path,
                format!(
                    "duplicate {what} name {name:?}: {} already uses it; {what} names must \
                     be unique{scope}",
                    item_path(first)
                ),
            ),
            None => {
                seen.insert(name, index);
            }
        }
    }

    fn name(&mut self, path: &str, what: &str, name: &str) {
        if name.is_empty() {
            self.issue(path, format!("the {what} name is empty; {NAME_FORM}"));
            return;
        }
        if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
            self.issue(
                path,
                format!("{what} name {name:?} contains {bad:?}; {NAME_FORM}"),
            );
        }
    }

    fn address(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.issue(path, format!("invalid address {text:?}: {ADDRESS_FORM}"));
                None
            }
        }
    }

    /// Parses an optional duration, falling back to `default` when absent.
    /// `zero_reason` is set for keys where zero is nonsense and says why.
    fn duration(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: Duration,
        zero_reason: Option<&str>,
    ) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match super::parse_duration(text) {
            Ok(duration) => {
                if let (true, Some(reason)) = (duration.is_zero(), zero_reason) {
                    self.issue(
                        path,
                        format!("must be greater than 0 ({reason}); got {text:?}"),
                    );
                }
                duration
            }
            Err(message) => {
                self.issue(path, message);
                default
            }
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether two listening sockets cannot both be bound. Port 0 asks the OS
/// for a free port, so it never collides. A wildcard address collides with
/// any address of its family on the same port (Linux refuses the second bind).
fn sockets_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}

fn parse_host(text: &str) -> Result<HostMatch, String> {
    const FORM: &str = "use a host name like api.example.com or a wildcard like *.example.com";
    if text.is_empty() {
        return Err(format!(
            "the host pattern is empty; {FORM}, or remove `host` to match any host"
        ));
    }
    let lower = text.to_ascii_lowercase();
    let (wildcard, domain) = match lower.strip_prefix('*') {
        Some(rest) => match rest.strip_prefix('.') {
            Some(domain) => (true, domain),
            None => {
                return Err(format!(
                    "host pattern {text:?}: `*` must be followed by `.`; {FORM}"
                ))
            }
        },
        None => (false, lower.as_str()),
    };
    if domain.contains('*') {
        return Err(format!(
            "host pattern {text:?}: `*` is only allowed as the whole first label; {FORM}"
        ));
    }
    if domain.is_empty() {
        return Err(format!(
            "host pattern {text:?} has no domain after `*.`; {FORM}"
        ));
    }
    if domain.contains(':') {
        return Err(format!(
            "host pattern {text:?} contains ':'; leave out the port (it is ignored when \
             matching); {FORM}"
        ));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(format!(
            "host pattern {text:?} has an empty label (a leading, trailing or doubled '.'); \
             {FORM}"
        ));
    }
    if let Some(bad) = domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "host pattern {text:?} contains {bad:?}; host names use letters, digits, '-' \
             and '.'"
        ));
    }
    Ok(if wildcard {
        HostMatch::WildcardSuffix(format!(".{domain}"))
    } else {
        HostMatch::Exact(domain.to_string())
    })
}

fn parse_path_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "path_prefix {text:?} must start with '/', e.g. /api"
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|&c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "path_prefix {text:?} contains {bad:?}; it is compared with the request path \
             only (no query or fragment), so it would never match"
        ));
    }
    // `/v1/` and `/v1` would mean the same under segment-wise matching; one
    // canonical spelling keeps the matcher simple.
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw;

    const EXAMPLE: &str = include_str!("../../config/example.yaml");

    fn load(text: &str) -> Config {
        let raw = raw::parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"));
        validate(raw).unwrap_or_else(|issues| {
            let list: Vec<String> = issues.iter().map(ToString::to_string).collect();
            panic!("validation failed:\n{}", list.join("\n"))
        })
    }

    fn issues(text: &str) -> Vec<ConfigIssue> {
        let raw = raw::parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"));
        match validate(raw) {
            Ok(config) => panic!("expected validation issues, got {config:?}"),
            Err(issues) => issues,
        }
    }

    /// The single issue at `path`; fails if there is none or more than one.
    fn issue_at(issues: &[ConfigIssue], path: &str) -> String {
        let found: Vec<&ConfigIssue> = issues.iter().filter(|i| i.path == path).collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one issue at {path}, got {issues:#?}"
        );
        found[0].message.clone()
    }

    fn paths(issues: &[ConfigIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.path.as_str()).collect()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn header(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
        (
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        )
    }

    /// A valid config with one listener and one service; tests append to it
    /// or swap pieces of it.
    fn with_services(services: &str) -> String {
        format!(
            "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - {{ name: all, service: web }}
services:
{services}"
        )
    }

    fn with_routes(routes: &str) -> String {
        format!(
            "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
{routes}services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
        )
    }

    const FULL: &str = "\
admin:
  listen: 127.0.0.1:9999
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    protocol: http2
    routes:
      - name: api
        match:
          host: \"*.Example.COM\"
          path_prefix: /v1/
          headers: { X-Env: staging }
        service: loadapi
      - name: rest
        service: simple
  - name: internal
    listen: '[::1]:8081'
    routes:
      - { name: all, service: loadapi }
services:
  - name: loadapi
    balancer: least-request
    protocol: http2
    timeouts: { connect: 250ms, request: 5s }
    ewma: { decay: 5s, default_rtt: 10ms, failure_penalty: 2s }
    groups:
      - { name: stable, weight: 90, endpoints: [127.0.0.1:9001, 127.0.0.1:9002] }
      - { name: canary, weight: 0, endpoints: ['[::1]:9003'] }
      - { name: next, endpoints: [10.0.0.1:80] }
  - name: simple
    endpoints: [127.0.0.1:9004]
metrics:
  buckets: [0.001, 0.01, 0.1, 1]
shutdown:
  grace_period: 1m
";

    #[test]
    fn full_config_becomes_the_expected_values() {
        let config = load(FULL);
        let expected = Config {
            admin: AdminConfig {
                listen: addr("127.0.0.1:9999"),
            },
            listeners: vec![
                ListenerConfig {
                    name: "edge".into(),
                    listen: addr("0.0.0.0:8080"),
                    protocol: ListenerProtocol::Http2,
                    routes: vec![
                        RouteConfig {
                            name: "api".into(),
                            matches: RouteMatch {
                                host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                                path_prefix: Some("/v1".into()),
                                headers: vec![header("x-env", "staging")],
                            },
                            service: 0,
                        },
                        RouteConfig {
                            name: "rest".into(),
                            matches: RouteMatch::default(),
                            service: 1,
                        },
                    ],
                },
                ListenerConfig {
                    name: "internal".into(),
                    listen: addr("[::1]:8081"),
                    protocol: ListenerProtocol::Auto,
                    routes: vec![RouteConfig {
                        name: "all".into(),
                        matches: RouteMatch::default(),
                        service: 0,
                    }],
                },
            ],
            services: vec![
                ServiceConfig {
                    name: "loadapi".into(),
                    balancer: BalancerKind::LeastRequest,
                    protocol: UpstreamProtocol::Http2,
                    timeouts: Timeouts {
                        connect: Duration::from_millis(250),
                        request: Duration::from_secs(5),
                    },
                    ewma: EwmaConfig {
                        decay: Duration::from_secs(5),
                        default_rtt: Duration::from_millis(10),
                        failure_penalty: Duration::from_secs(2),
                    },
                    groups: vec![
                        GroupConfig {
                            name: "stable".into(),
                            weight: 90,
                            endpoints: vec![addr("127.0.0.1:9001"), addr("127.0.0.1:9002")],
                        },
                        GroupConfig {
                            name: "canary".into(),
                            weight: 0,
                            endpoints: vec![addr("[::1]:9003")],
                        },
                        GroupConfig {
                            name: "next".into(),
                            weight: 100,
                            endpoints: vec![addr("10.0.0.1:80")],
                        },
                    ],
                },
                ServiceConfig {
                    name: "simple".into(),
                    balancer: BalancerKind::P2cEwma,
                    protocol: UpstreamProtocol::Http1,
                    timeouts: Timeouts {
                        connect: defaults::CONNECT_TIMEOUT,
                        request: defaults::REQUEST_TIMEOUT,
                    },
                    ewma: EwmaConfig {
                        decay: defaults::EWMA_DECAY,
                        default_rtt: defaults::DEFAULT_RTT,
                        failure_penalty: defaults::FAILURE_PENALTY,
                    },
                    groups: vec![GroupConfig {
                        name: "stable".into(),
                        weight: 100,
                        endpoints: vec![addr("127.0.0.1:9004")],
                    }],
                },
            ],
            metrics: MetricsConfig {
                buckets: vec![0.001, 0.01, 0.1, 1.0],
            },
            shutdown: ShutdownConfig {
                grace_period: Duration::from_secs(60),
            },
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn minimal_config_gets_every_default() {
        let config = load(&with_services(
            "  - { name: web, endpoints: [127.0.0.1:9000] }\n",
        ));
        assert_eq!(config.admin.listen, addr("127.0.0.1:9901"));
        assert_eq!(config.listeners[0].protocol, ListenerProtocol::Auto);
        let service = &config.services[0];
        assert_eq!(service.balancer, BalancerKind::P2cEwma);
        assert_eq!(service.protocol, UpstreamProtocol::Http1);
        assert_eq!(service.timeouts.connect, Duration::from_secs(1));
        assert_eq!(service.timeouts.request, Duration::from_secs(30));
        assert_eq!(service.ewma.decay, Duration::from_secs(10));
        assert_eq!(service.ewma.default_rtt, Duration::from_millis(30));
        assert_eq!(service.ewma.failure_penalty, Duration::from_secs(1));
        assert_eq!(
            service.groups,
            vec![GroupConfig {
                name: "stable".into(),
                weight: 100,
                endpoints: vec![addr("127.0.0.1:9000")],
            }]
        );
        assert_eq!(config.metrics.buckets, defaults::BUCKETS.to_vec());
        assert_eq!(config.shutdown.grace_period, Duration::from_secs(10));
    }

    #[test]
    fn admin_section_without_listen_uses_the_default() {
        let text = format!(
            "admin: {{}}\n{}",
            with_services("  - { name: web, endpoints: [127.0.0.1:9000] }\n")
        );
        assert_eq!(load(&text).admin.listen, addr("127.0.0.1:9901"));
    }

    #[test]
    fn example_file_is_valid() {
        let config = load(EXAMPLE);
        assert_eq!(config.admin.listen, addr("127.0.0.1:9901"));
        let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["edge", "internal"]);
        assert_eq!(config.listeners[1].listen, addr("[::1]:8081"));
        let first = &config.listeners[0].routes[0];
        assert_eq!(
            first.matches,
            RouteMatch {
                host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                path_prefix: Some("/v1".into()),
                headers: vec![header("x-env", "staging")],
            }
        );
        assert_eq!(config.services[first.service].name, "loadapi");
        let weights: Vec<u32> = config.services[0].groups.iter().map(|g| g.weight).collect();
        assert_eq!(weights, [95, 5]);
        assert_eq!(config.services[1].groups[0].name, defaults::DEFAULT_GROUP);
    }

    /// The example is the user documentation, so it must show every key.
    /// A new key in `raw` needs a line in the example and an assertion here.
    #[test]
    fn example_file_uses_every_key() {
        let raw = raw::parse(EXAMPLE).unwrap();
        assert!(raw.admin.and_then(|a| a.listen).is_some(), "admin.listen");
        assert!(
            raw.listeners.iter().any(|l| l.protocol.is_some()),
            "protocol"
        );
        let matches: Vec<&raw::RawMatch> = raw
            .listeners
            .iter()
            .flat_map(|l| &l.routes)
            .filter_map(|r| r.matches.as_ref())
            .collect();
        assert!(matches.iter().any(|m| m.host.is_some()), "match.host");
        assert!(
            matches.iter().any(|m| m.path_prefix.is_some()),
            "path_prefix"
        );
        assert!(matches.iter().any(|m| !m.headers.0.is_empty()), "headers");
        let services = &raw.services;
        assert!(services.iter().any(|s| s.balancer.is_some()), "balancer");
        assert!(services.iter().any(|s| s.protocol.is_some()), "protocol");
        assert!(services.iter().any(|s| s.endpoints.is_some()), "endpoints");
        let timeouts = services.iter().find_map(|s| s.timeouts.as_ref()).unwrap();
        assert!(timeouts.connect.is_some() && timeouts.request.is_some());
        let ewma = services.iter().find_map(|s| s.ewma.as_ref()).unwrap();
        assert!(ewma.decay.is_some() && ewma.default_rtt.is_some());
        assert!(ewma.failure_penalty.is_some());
        let groups = services.iter().find_map(|s| s.groups.as_ref()).unwrap();
        assert!(groups.iter().any(|g| g.weight.is_some()), "weight");
        assert!(raw.metrics.and_then(|m| m.buckets).is_some(), "buckets");
        assert!(
            raw.shutdown.and_then(|s| s.grace_period).is_some(),
            "grace_period"
        );
    }

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
    fn duplicate_listener_names() {
        let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: edge, listen: 0.0.0.0:81, routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:9000] }
";
        let found = issues(text);
        let message = issue_at(&found, "listeners[1].name");
        assert!(
            message.contains("duplicate listener name \"edge\""),
            "{message}"
        );
        assert!(message.contains("listeners[0]"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn duplicate_route_names_within_a_listener() {
        let text = with_routes(
            "      - { name: r, match: { path_prefix: /a }, service: web }\n      - { name: r, service: web }\n",
        );
        let found = issues(&text);
        let message = issue_at(&found, "listeners[0].routes[1].name");
        assert!(message.contains("duplicate route name \"r\""), "{message}");
        assert!(message.contains("listeners[0].routes[0]"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn same_route_name_in_two_listeners_is_fine() {
        let text = "\
listeners:
  - { name: a, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - { name: b, listen: 0.0.0.0:81, routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:9000] }
";
        assert_eq!(load(text).listeners.len(), 2);
    }

    #[test]
    fn duplicate_service_names() {
        let found = issues(&with_services(
            "  - { name: web, endpoints: [127.0.0.1:1] }\n  - { name: web, endpoints: [127.0.0.1:2] }\n",
        ));
        let message = issue_at(&found, "services[1].name");
        assert!(
            message.contains("duplicate service name \"web\""),
            "{message}"
        );
        assert!(message.contains("services[0]"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn duplicate_group_names() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: v1, endpoints: [127.0.0.1:1] }
      - { name: v1, endpoints: [127.0.0.1:2] }
",
        ));
        let message = issue_at(&found, "services[0].groups[1].name");
        assert!(message.contains("duplicate group name \"v1\""), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn duplicate_endpoint_within_a_group_and_across_groups() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: a, endpoints: [127.0.0.1:1, 127.0.0.1:1] }
      - { name: b, endpoints: ['127.0.0.1:1'] }
",
        ));
        let message = issue_at(&found, "services[0].groups[0].endpoints[1]");
        assert!(message.contains("127.0.0.1:1 is listed twice"), "{message}");
        assert!(
            message.contains("services[0].groups[0].endpoints[0]"),
            "{message}"
        );
        let message = issue_at(&found, "services[0].groups[1].endpoints[0]");
        assert!(message.contains("listed twice"), "{message}");
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn duplicate_endpoint_compares_addresses_not_spelling() {
        let found = issues(&with_services(
            "  - { name: web, endpoints: ['[::1]:80', '[0:0::1]:80'] }\n",
        ));
        assert!(issue_at(&found, "services[0].endpoints[1]").contains("listed twice"));
    }

    #[test]
    fn same_endpoint_in_two_services_is_fine() {
        let config = load(&with_services(
            "  - { name: web, endpoints: [127.0.0.1:1] }\n  - { name: web2, endpoints: [127.0.0.1:1] }\n",
        ));
        assert_eq!(config.services.len(), 2);
    }

    #[test]
    fn all_group_weights_zero() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: a, weight: 0, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 0, endpoints: [127.0.0.1:2] }
",
        ));
        let message = issue_at(&found, "services[0].groups");
        assert!(message.contains("every group has weight 0"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn huge_weights_are_accepted() {
        // `split` sums weights in u64, so u32::MAX twice is fine.
        let config = load(&with_services(
            "  - name: web
    groups:
      - { name: a, weight: 4294967295, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 4294967295, endpoints: [127.0.0.1:2] }
",
        ));
        assert_eq!(config.services[0].groups[1].weight, u32::MAX);
    }

    #[test]
    fn empty_endpoint_lists() {
        let found = issues(&with_services(
            "  - { name: web, endpoints: [] }
  - name: two
    groups:
      - { name: a, endpoints: [127.0.0.1:1] }
      - { name: b, weight: 0, endpoints: [] }
  - { name: three, groups: [] }
",
        ));
        assert!(issue_at(&found, "services[0].endpoints").contains("endpoint list is empty"));
        assert!(issue_at(&found, "services[1].groups[1].endpoints").contains("empty"));
        assert!(issue_at(&found, "services[2].groups").contains("`groups` is empty"));
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn both_or_neither_endpoints_and_groups() {
        let found = issues(&with_services(
            "  - name: web
    endpoints: [127.0.0.1:1]
    groups: [{ name: a, endpoints: [127.0.0.1:2] }]
  - name: two
    balancer: round-robin
",
        ));
        let message = issue_at(&found, "services[0]");
        assert!(
            message.contains("both `endpoints` and `groups`"),
            "{message}"
        );
        let message = issue_at(&found, "services[1]");
        assert!(
            message.contains("neither `endpoints` nor `groups`"),
            "{message}"
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn unparsable_addresses() {
        let text = "\
admin: { listen: localhost:9901 }
listeners:
  - { name: edge, listen: 8080, routes: [{ name: r, service: web }] }
  - { name: v6, listen: '::1:8080', routes: [{ name: r, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:1, 10.0.0.300:80, 127.0.0.1] }
";
        let found = issues(text);
        let message = issue_at(&found, "admin.listen");
        assert!(
            message.contains("invalid address \"localhost:9901\""),
            "{message}"
        );
        assert!(message.contains("expected IP:port"), "{message}");
        assert!(issue_at(&found, "listeners[0].listen").contains("\"8080\""));
        assert!(issue_at(&found, "listeners[1].listen").contains("[::1]:8080"));
        assert!(issue_at(&found, "services[0].endpoints[1]").contains("\"10.0.0.300:80\""));
        assert!(issue_at(&found, "services[0].endpoints[2]").contains("\"127.0.0.1\""));
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn endpoint_port_zero() {
        let found = issues(&with_services(
            "  - { name: web, endpoints: [127.0.0.1:0] }\n",
        ));
        assert!(issue_at(&found, "services[0].endpoints[0]").contains("port 0"));
    }

    #[test]
    fn bad_durations_name_the_key_and_value() {
        let found = issues(&with_services(
            "  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { connect: 1x, request: '-1s' }
    ewma: { decay: 10, default_rtt: fast, failure_penalty: 1.5 }
shutdown: { grace_period: soon }
",
        ));
        let message = issue_at(&found, "services[0].timeouts.connect");
        assert!(
            message.starts_with("invalid duration \"1x\": "),
            "{message}"
        );
        assert!(message.contains("e.g. 250ms"), "{message}");
        assert!(issue_at(&found, "services[0].timeouts.request").contains("negative"));
        assert!(issue_at(&found, "services[0].ewma.decay").contains("no unit"));
        assert!(issue_at(&found, "services[0].ewma.default_rtt").contains("\"fast\""));
        assert!(issue_at(&found, "services[0].ewma.failure_penalty").contains("\"1.5\""));
        assert!(issue_at(&found, "shutdown.grace_period").contains("\"soon\""));
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn zero_durations_where_they_make_no_sense() {
        let found = issues(&with_services(
            "  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { connect: 0s, request: 0ms }
    ewma: { decay: 0s, default_rtt: 0s, failure_penalty: 0s }
shutdown: { grace_period: 0s }
",
        ));
        let message = issue_at(&found, "services[0].timeouts.connect");
        assert!(message.contains("must be greater than 0"), "{message}");
        assert!(issue_at(&found, "services[0].timeouts.request").contains("greater than 0"));
        assert!(issue_at(&found, "services[0].ewma.decay").contains("greater than 0"));
        // Zero is meaningful for these.
        assert_eq!(
            paths(&found),
            [
                "services[0].timeouts.connect",
                "services[0].timeouts.request",
                "services[0].ewma.decay"
            ]
        );
    }

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
admin: { listen: '0.0.0.0:9901' }
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

    #[test]
    fn empty_and_malformed_names() {
        let text = "\
listeners:
  - { name: '', listen: 0.0.0.0:80, routes: [{ name: 'a b', service: 'web/1' }] }
services:
  - name: 'web/1'
    groups: [{ name: 'v1!', endpoints: [127.0.0.1:1] }, { name: 'ünï', endpoints: [127.0.0.1:2] }]
";
        let found = issues(text);
        let message = issue_at(&found, "listeners[0].name");
        assert!(message.contains("listener name is empty"), "{message}");
        let message = issue_at(&found, "listeners[0].routes[0].name");
        assert!(message.contains("\"a b\" contains ' '"), "{message}");
        assert!(
            message.contains("letters, digits, '.', '_' and '-'"),
            "{message}"
        );
        assert!(issue_at(&found, "services[0].name").contains("'/'"));
        assert!(issue_at(&found, "services[0].groups[0].name").contains("'!'"));
        assert!(issue_at(&found, "services[0].groups[1].name").contains("'ü'"));
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn valid_names_with_every_allowed_character() {
        let config = load(&with_services(
            "  - { name: Web_2.x-y, endpoints: [127.0.0.1:1] }\n  - { name: web, endpoints: [127.0.0.1:2] }\n",
        ));
        assert_eq!(config.services[0].name, "Web_2.x-y");
    }

    #[test]
    fn bad_buckets() {
        let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
        let found = issues(&format!("{base}metrics: {{ buckets: [] }}\n"));
        assert!(issue_at(&found, "metrics.buckets").contains("empty"));

        let found = issues(&format!(
            "{base}metrics: {{ buckets: [0, 0.1, 0.1, 0.05, -1, .inf, .nan, 2] }}\n"
        ));
        assert!(issue_at(&found, "metrics.buckets[0]").contains("must be a positive"));
        let message = issue_at(&found, "metrics.buckets[2]");
        assert!(
            message.contains("not greater than the previous bound 0.1"),
            "{message}"
        );
        assert!(issue_at(&found, "metrics.buckets[3]").contains("strictly increasing"));
        assert!(issue_at(&found, "metrics.buckets[4]").contains("-1"));
        assert!(issue_at(&found, "metrics.buckets[5]").contains("positive"));
        assert!(issue_at(&found, "metrics.buckets[6]").contains("positive"));
        assert_eq!(found.len(), 6, "{found:#?}");
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
            issue_at(&found, "listeners[0].routes[0].match.headers.:authority")
                .contains("header name")
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
    fn host_patterns() {
        assert_eq!(
            parse_host("API.Example.com"),
            Ok(HostMatch::Exact("api.example.com".into()))
        );
        assert_eq!(
            parse_host("*.Example.com"),
            Ok(HostMatch::WildcardSuffix(".example.com".into()))
        );
        assert_eq!(
            parse_host("127.0.0.1"),
            Ok(HostMatch::Exact("127.0.0.1".into()))
        );
        let cases = [
            ("", "empty"),
            ("*", "`*` must be followed by `.`"),
            ("*example.com", "`*` must be followed by `.`"),
            ("*.", "no domain"),
            ("api.*.com", "only allowed as the whole first label"),
            ("*.*.example.com", "only allowed as the whole first label"),
            ("a*.example.com", "only allowed as the whole first label"),
            ("example.com:8080", "leave out the port"),
            ("example..com", "empty label"),
            (".example.com", "empty label"),
            ("example.com.", "empty label"),
            ("exa mple.com", "contains ' '"),
            ("exa/mple.com", "contains '/'"),
        ];
        for (pattern, expected) in cases {
            match parse_host(pattern) {
                Ok(host) => panic!("{pattern:?} should be rejected, got {host:?}"),
                Err(message) => assert!(message.contains(expected), "{pattern:?}: {message}"),
            }
        }
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
    fn path_prefixes() {
        assert_eq!(parse_path_prefix("/"), Ok("/".into()));
        assert_eq!(parse_path_prefix("//"), Ok("/".into()));
        assert_eq!(parse_path_prefix("/v1"), Ok("/v1".into()));
        assert_eq!(parse_path_prefix("/v1/"), Ok("/v1".into()));
        assert_eq!(parse_path_prefix("/v1/users//"), Ok("/v1/users".into()));
        assert!(parse_path_prefix("v1")
            .unwrap_err()
            .contains("must start with '/'"));
        assert!(parse_path_prefix("")
            .unwrap_err()
            .contains("must start with '/'"));
        assert!(parse_path_prefix("/a?b=1").unwrap_err().contains("'?'"));
        assert!(parse_path_prefix("/a#x").unwrap_err().contains("'#'"));
        assert!(parse_path_prefix("/a b").unwrap_err().contains("' '"));
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

    #[test]
    fn every_problem_is_collected() {
        let text = "\
listeners:
  - name: edge
    listen: 0.0.0.0:80
    routes:
      - { name: a, match: { host: 'x.*', path_prefix: nope }, service: missing }
  - { name: edge, listen: nowhere, routes: [] }
services:
  - name: web
    timeouts: { connect: 0s }
    groups:
      - { name: g, weight: 0, endpoints: [bad] }
      - { name: g, weight: 0, endpoints: [] }
metrics: { buckets: [1, 0.5] }
";
        let found = issues(text);
        assert_eq!(
            paths(&found),
            [
                "listeners[0].routes[0].match.host",
                "listeners[0].routes[0].match.path_prefix",
                "listeners[0].routes[0].service",
                "listeners[1].name",
                "listeners[1].listen",
                "listeners[1].routes",
                "services[0].timeouts.connect",
                "services[0].groups[0].endpoints[0]",
                "services[0].groups[1].name",
                "services[0].groups[1].endpoints",
                "services[0].groups",
                "metrics.buckets[1]",
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn from_yaml_reports_issues_as_invalid() {
        let error = Config::from_yaml("services:\n  - { name: web, endpoints: [] }\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("2 errors in config"), "{text}");
        assert!(text.contains("\n  listeners: no listeners"), "{text}");
        assert!(
            text.contains("\n  services[0].endpoints: the endpoint list is empty"),
            "{text}"
        );
    }
}
