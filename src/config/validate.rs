//! Semantic checks: turning the raw serde mirror into the typed [`Config`].
//!
//! This module owns every rule about what the values mean: addresses parse,
//! durations and sizes parse and are non-zero where zero is nonsense, counts
//! and sizes stay within what the proxy can honour, names are unique and
//! well-formed, routes point at services that exist, weights leave some
//! traffic somewhere, match conditions are well-formed, a service's override
//! header, sticky key and rollout fit its groups (a rollout names a group
//! other than the stable one, its steps climb), and related durations agree
//! (a health check's timeout fits its interval, ejections can grow from
//! `base_ejection` to `max_ejection`, one retry's try fits the request
//! timeout), and each group's endpoints are either listed or discovered
//! through a well-formed DNS name and port, never both. It applies the
//! defaults from [`super::defaults`]. It reports *every* problem, each with
//! the key path a user can find in the file, instead of stopping at the
//! first. It does not read files or parse YAML (see `raw`), and it does not
//! check anything that needs the network, such as whether a port is free or
//! a `dns` name resolves.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue};

use super::defaults;
use super::duration::parse_size;
use super::raw::{
    RawBalancer, RawConfig, RawDiscovery, RawGroup, RawHealthCheck, RawLimits, RawListener,
    RawListenerProtocol, RawListenerTls, RawMatch, RawOutlier, RawRate, RawRetry, RawRollout,
    RawRoute, RawService, RawSize, RawSticky, RawUpstreamProtocol, RawUpstreamTls,
};
use super::{
    AccessLogConfig, AdminConfig, BalancerKind, CertificateFiles, Config, ConfigIssue,
    DiscoveryConfig, DnsConfig, EwmaConfig, GroupConfig, HealthCheckConfig, HostMatch,
    ListenerConfig, ListenerLimits, ListenerProtocol, ListenerTls, MetricsConfig, OutlierConfig,
    RetryConfig, RetryOn, RolloutConfig, RouteConfig, RouteMatch, ServiceConfig, ShutdownConfig,
    SplitConfig, StickyKey, Timeouts, UpstreamProtocol, UpstreamTls,
};

/// Stands in for a value that failed a check, so the walk can go on and find
/// the remaining problems. It never escapes: any recorded issue means the
/// whole `Config` is thrown away.
const PLACEHOLDER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

const ADDRESS_FORM: &str =
    "expected IP:port, e.g. 0.0.0.0:8080 or [::1]:8080 (host names are not resolved)";

const NAME_FORM: &str = "use only letters, digits, '.', '_' and '-'";

const DNS_FORM: &str = "expected NAME:PORT, e.g. web.default.svc.cluster.local:8080 (a DNS name \
     of labels of letters, digits, '-' and '_', and a port from 1 to 65535)";

const K8S_NAME_FORM: &str = "Kubernetes names are 1 to 63 lower-case letters, digits and '-', \
     starting and ending with a letter or digit, e.g. web-canary";

// Rollout defaults. Only validation applies them (the rollout driver reads
// the typed values), which is why they are not (yet) in `super::defaults`.
const ROLLOUT_MIN_REQUESTS: u64 = 100;
const ROLLOUT_MAX_ERROR_RATE: f64 = 0.01;
const ROLLOUT_MAX_P99_RATIO: f64 = 1.5;

/// hyper refuses a header read buffer below 8 KiB, so a smaller
/// `max_header_bytes` could not be enforced.
const MIN_HEADER_BYTES: u64 = 8 * 1024;
/// Header blocks beyond this serve no real client and only let one tie up memory.
const MAX_HEADER_BYTES: u64 = 1 << 20;
const MAX_HEADERS: RangeInclusive<usize> = 1..=1000;
const H2_MAX_CONCURRENT_STREAMS: RangeInclusive<u32> = 1..=10_000;
/// Every extra try is another request to an endpoint that may be struggling.
const RETRY_ATTEMPTS: RangeInclusive<u32> = 0..=10;
/// Each request being retried may hold this much body in memory.
const MAX_RETRY_BUFFER_BYTES: u64 = 16 << 20;

/// How a rate key is named and exemplified in its messages.
struct RateForm {
    key: &'static str,
    /// The same example value as a percentage and as a fraction.
    percent: &'static str,
    fraction: &'static str,
}

const ERROR_RATE_FORM: RateForm = RateForm {
    key: "max_error_rate",
    percent: "1%",
    fraction: "0.01",
};

const BUDGET_RATIO_FORM: RateForm = RateForm {
    key: "ratio",
    percent: "20%",
    fraction: "0.2",
};

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
        let raw_admin = raw.admin.unwrap_or_default();
        let admin_text = raw_admin
            .listen
            .unwrap_or_else(|| defaults::ADMIN_LISTEN.to_string());
        let admin_listen = self.address("admin.listen", &admin_text);
        let token_file = self.file_path("admin.token_file", raw_admin.token_file.as_deref());
        let allow_unauthenticated_admin = raw_admin.allow_unauthenticated_admin.unwrap_or(false);
        if let Some(listen) = admin_listen {
            if !listen.ip().is_loopback() && token_file.is_none() && !allow_unauthenticated_admin {
                self.issue(
                    "admin.listen",
                    format!(
                        "the admin listener at {listen} is reachable from other machines, and \
                         anyone who reaches it could change weights, roll back or reload; set \
                         `admin.token_file` to a file holding a bearer token, bind it to \
                         127.0.0.1, or set `admin.allow_unauthenticated_admin: true` if a \
                         network policy protects it"
                    ),
                );
            }
        }

        // Routes resolve services by the names in the file, so services may
        // come after the routes that use them; issues stay in file-section order.
        let service_names: Vec<&str> = raw.services.iter().map(|s| s.name.as_str()).collect();
        let listeners = self.listeners(&raw.listeners, &service_names, admin_listen);
        let raw_metrics = raw.metrics.unwrap_or_default();
        // Read before the services: whether the derived `deployment` names
        // must be valid Kubernetes names depends on it.
        let linkerd_compatible = raw_metrics.linkerd_compatible.unwrap_or(false);
        let services = self.services(&raw.services, linkerd_compatible);

        let metrics = MetricsConfig {
            buckets: self.buckets(raw_metrics.buckets),
            linkerd_compatible,
            namespace: self.namespace(raw_metrics.namespace),
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

        let state_file = raw.state_file.and_then(|text| {
            if text.trim().is_empty() {
                self.issue(
                    "state_file",
                    "`state_file` is empty; give the path of a file luas may create and \
                     rewrite, e.g. /var/lib/luas/state.json, or remove the key to keep runtime \
                     changes in memory only",
                );
                return None;
            }
            Some(PathBuf::from(text))
        });

        let discovery = self.discovery(raw.discovery);

        Config {
            admin: AdminConfig {
                listen: admin_listen.unwrap_or(PLACEHOLDER_ADDR),
                token_file,
                allow_unauthenticated_admin,
            },
            listeners,
            services,
            metrics,
            shutdown,
            state_file,
            access_log: AccessLogConfig {
                enabled: raw
                    .access_log
                    .and_then(|access_log| access_log.enabled)
                    .unwrap_or(false),
            },
            discovery,
        }
    }

    // ---- discovery ----

    fn discovery(&mut self, raw: Option<RawDiscovery>) -> DiscoveryConfig {
        let Some(resolvers) = raw.and_then(|discovery| discovery.resolvers) else {
            return DiscoveryConfig::default();
        };
        if resolvers.is_empty() {
            self.issue(
                "discovery.resolvers",
                "`resolvers` is empty; list at least one name server as IP:port, e.g. \
                 [10.96.0.10:53], or remove the key to use the system's (/etc/resolv.conf)",
            );
        }
        let mut servers = Vec::with_capacity(resolvers.len());
        for (index, text) in resolvers.iter().enumerate() {
            let path = format!("discovery.resolvers[{index}]");
            let Some(addr) = self.address(&path, text) else {
                continue;
            };
            if addr.port() == 0 {
                self.issue(
                    path,
                    format!(
                        "name server {text:?} has port 0, which cannot be queried; DNS is \
                         port 53, e.g. 10.96.0.10:53"
                    ),
                );
                continue;
            }
            servers.push(addr);
        }
        DiscoveryConfig { resolvers: servers }
    }

    /// The `dns` and `refresh` keys of a group (or of the service
    /// shorthand) at `path`; None when either is invalid (and reported).
    fn dns(&mut self, path: &str, text: &str, refresh: Option<&str>) -> Option<DnsConfig> {
        let target = parse_dns_target(text)
            .map_err(|why| self.issue(format!("{path}.dns"), why))
            .ok();
        let refresh = self.duration_or(
            &format!("{path}.refresh"),
            refresh,
            defaults::DNS_REFRESH,
            Some("the name would be looked up in a busy loop"),
        );
        let ((name, port), refresh) = (target?, refresh?);
        Some(DnsConfig {
            name,
            port,
            refresh,
        })
    }

    /// `refresh` belongs to `dns`; alone it would silently do nothing.
    fn refresh_without_dns(&mut self, path: &str, refresh: Option<&str>, dns: Option<&str>) {
        if refresh.is_some() && dns.is_none() {
            self.issue(
                format!("{path}.refresh"),
                "`refresh` is how often a `dns` name is looked up, and there is no `dns` here; \
                 remove `refresh`, or replace `endpoints` with `dns: NAME:PORT`",
            );
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
            let limits = match &listener.limits {
                Some(limits) => self.limits(&format!("{path}.limits"), limits),
                None => defaults::LIMITS,
            };
            let tls = listener
                .tls
                .as_ref()
                .and_then(|tls| self.listener_tls(&format!("{path}.tls"), tls));
            let verifies_clients = tls.as_ref().is_some_and(|tls| tls.client_ca.is_some());
            for (index, route) in routes.iter().enumerate() {
                if route.matches.client_identity.is_some() && !verifies_clients {
                    self.issue(
                        format!("{path}.routes[{index}].match.client_identity"),
                        "this listener does not verify client certificates, so no request on \
                         it has a client identity and the route could never match; set \
                         `tls.client_ca` on the listener or remove the condition",
                    );
                }
            }
            listeners.push(ListenerConfig {
                name: listener.name.clone(),
                listen: listen.unwrap_or(PLACEHOLDER_ADDR),
                protocol,
                routes,
                limits,
                tls,
            });
        }
        listeners
    }

    fn listener_tls(&mut self, path: &str, raw: &RawListenerTls) -> Option<ListenerTls> {
        let single = self.certificate_pair(path, raw.cert.as_deref(), raw.key.as_deref());
        let certificates = match (&raw.certificates, single) {
            (Some(_), Some(_)) => {
                self.issue(
                    path,
                    "give either `cert` and `key` (one certificate) or `certificates` (several, \
                     chosen by SNI), not both",
                );
                return None;
            }
            (None, Some(pair)) => vec![pair],
            (None, None) => {
                if raw.cert.is_none() && raw.key.is_none() {
                    self.issue(
                        path,
                        "TLS needs a certificate: give `cert` and `key` (PEM files), or \
                         `certificates` with several of them",
                    );
                }
                return None;
            }
            (Some(list), None) => {
                if list.is_empty() {
                    self.issue(
                        format!("{path}.certificates"),
                        "the list is empty; give at least one `{ cert, key }`",
                    );
                }
                list.iter()
                    .enumerate()
                    .filter_map(|(index, pair)| {
                        let path = format!("{path}.certificates[{index}]");
                        self.certificate_pair(&path, Some(&pair.cert), Some(&pair.key))
                    })
                    .collect()
            }
        };
        let client_ca = self.file_path(&format!("{path}.client_ca"), raw.client_ca.as_deref());
        Some(ListenerTls {
            certificates,
            client_ca,
        })
    }

    fn upstream_tls(&mut self, path: &str, raw: &RawUpstreamTls) -> UpstreamTls {
        let ca = self.file_path(&format!("{path}.ca"), raw.ca.as_deref());
        let server_name =
            raw.server_name
                .as_ref()
                .and_then(
                    |name| match rustls_pki_types::ServerName::try_from(name.as_str()) {
                        Ok(_) => Some(name.clone()),
                        Err(_) => {
                            self.issue(
                                format!("{path}.server_name"),
                                format!(
                            "{name:?} is neither a DNS name nor an IP address; give the name \
                             the endpoints' certificates are issued for, e.g. \
                             api.internal.example.com"
                        ),
                            );
                            None
                        }
                    },
                );
        let client_certificate =
            self.certificate_pair(path, raw.cert.as_deref(), raw.key.as_deref());
        let insecure_skip_verify = raw.insecure_skip_verify.unwrap_or(false);
        if insecure_skip_verify && ca.is_some() {
            self.issue(
                format!("{path}.insecure_skip_verify"),
                "`ca` is given but `insecure_skip_verify: true` would ignore it; remove one",
            );
        }
        UpstreamTls {
            ca,
            server_name,
            client_certificate,
            insecure_skip_verify,
        }
    }

    /// `cert` and `key` under `path`: both or neither.
    fn certificate_pair(
        &mut self,
        path: &str,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> Option<CertificateFiles> {
        match (cert, key) {
            (None, None) => None,
            (Some(_), None) => {
                self.issue(
                    format!("{path}.key"),
                    "`cert` is given without `key`; give the PEM file of the certificate's \
                     private key",
                );
                None
            }
            (None, Some(_)) => {
                self.issue(
                    format!("{path}.cert"),
                    "`key` is given without `cert`; give the PEM file of the certificate chain",
                );
                None
            }
            (Some(cert), Some(key)) => {
                let cert = self.file_path(&format!("{path}.cert"), Some(cert));
                let key = self.file_path(&format!("{path}.key"), Some(key));
                Some(CertificateFiles {
                    cert: cert?,
                    key: key?,
                })
            }
        }
    }

    /// A file path that must not be empty. Whether the file can be read is
    /// checked when it is loaded (at start and on reload), not here.
    fn file_path(&mut self, path: &str, text: Option<&str>) -> Option<PathBuf> {
        let text = text?;
        if text.trim().is_empty() {
            self.issue(
                path,
                format!("`{}` is empty; give the path of a file", last_key(path)),
            );
            return None;
        }
        Some(PathBuf::from(text))
    }

    fn limits(&mut self, path: &str, raw: &RawLimits) -> ListenerLimits {
        let d = defaults::LIMITS;
        let max_connections = self.int_in_range(
            &format!("{path}.max_connections"),
            raw.max_connections,
            d.max_connections,
            1..=usize::MAX,
            "0 would turn every client away; give the most client connections open at once, \
             at least 1, e.g. 10000",
        );
        let header_read_timeout = self.duration(
            &format!("{path}.header_read_timeout"),
            raw.header_read_timeout.as_deref(),
            d.header_read_timeout,
            Some("no client could send its headers in time"),
        );
        let max_header_bytes = raw
            .max_header_bytes
            .as_ref()
            .and_then(|size| {
                self.size(
                    &format!("{path}.max_header_bytes"),
                    size,
                    MIN_HEADER_BYTES..=MAX_HEADER_BYTES,
                    "give the largest request header block, from 8KiB (hyper's smallest read \
                     buffer) to 1MiB, e.g. 64KiB",
                )
            })
            // In range, so at most 1 MiB: it fits any usize.
            .map_or(d.max_header_bytes, |bytes| bytes as usize);
        let max_headers = self.int_in_range(
            &format!("{path}.max_headers"),
            raw.max_headers,
            d.max_headers,
            MAX_HEADERS,
            "give the most header fields a request may have, from 1 to 1000, e.g. 100",
        );
        let max_body_bytes = raw.max_body_bytes.as_ref().and_then(|size| {
            self.size(
                &format!("{path}.max_body_bytes"),
                size,
                1..=u64::MAX,
                "a limit of 0 would refuse every request with a body; give the largest request \
                 body, e.g. 10MiB, or remove the key for no limit",
            )
        });
        let body_timeout = self.duration(
            &format!("{path}.body_timeout"),
            raw.body_timeout.as_deref(),
            d.body_timeout,
            Some("every request body would time out at its first pause"),
        );
        let idle_timeout = self.duration(
            &format!("{path}.idle_timeout"),
            raw.idle_timeout.as_deref(),
            d.idle_timeout,
            Some("keep-alive connections would be closed as soon as they fall idle"),
        );
        let h2_max_concurrent_streams = self.int_in_range(
            &format!("{path}.h2_max_concurrent_streams"),
            raw.h2_max_concurrent_streams,
            d.h2_max_concurrent_streams,
            H2_MAX_CONCURRENT_STREAMS,
            "give the most HTTP/2 streams a client may have open at once, from 1 to 10000, \
             e.g. 100",
        );
        ListenerLimits {
            max_connections,
            header_read_timeout,
            max_header_bytes,
            max_headers,
            max_body_bytes,
            body_timeout,
            idle_timeout,
            h2_max_concurrent_streams,
        }
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
            let name = self.header_name(&header_path, name_text, "x-env");
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

    // ---- services ----

    fn services(&mut self, raw: &[RawService], linkerd_compatible: bool) -> Vec<ServiceConfig> {
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
            services.push(self.service(&path, service, linkerd_compatible));
        }
        services
    }

    fn service(&mut self, path: &str, raw: &RawService, linkerd_compatible: bool) -> ServiceConfig {
        let balancer = match raw.balancer {
            None | Some(RawBalancer::P2cEwma) => BalancerKind::P2cEwma,
            Some(RawBalancer::LeastRequest) => BalancerKind::LeastRequest,
            Some(RawBalancer::RoundRobin) => BalancerKind::RoundRobin,
        };
        let protocol = match raw.protocol {
            None | Some(RawUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
            Some(RawUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
        };

        let tls = raw
            .tls
            .as_ref()
            .map(|tls| self.upstream_tls(&format!("{path}.tls"), tls));
        let timeouts = raw.timeouts.as_ref();
        let connect = self.duration(
            &format!("{path}.timeouts.connect"),
            timeouts.and_then(|t| t.connect.as_deref()),
            defaults::CONNECT_TIMEOUT,
            Some("a zero connect timeout would fail every connection attempt"),
        );
        let request_text = timeouts.and_then(|t| t.request.as_deref());
        // Kept as an Option so `retry.per_try_timeout` is compared with it
        // only when it is valid.
        let request = self.duration_or(
            &format!("{path}.timeouts.request"),
            request_text,
            defaults::REQUEST_TIMEOUT,
            Some("a zero request timeout would fail every request"),
        );
        let timeouts = Timeouts {
            connect,
            request: request.unwrap_or(defaults::REQUEST_TIMEOUT),
            idle: self.duration(
                &format!("{path}.timeouts.idle"),
                timeouts.and_then(|t| t.idle.as_deref()),
                defaults::IDLE_TIMEOUT,
                Some("pooled connections would be closed as soon as they are released"),
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

        let groups = self.groups(path, raw, linkerd_compatible);
        let split = self.split(path, raw);
        let health_check = raw
            .health_check
            .as_ref()
            .map(|check| self.health_check(&format!("{path}.health_check"), check));
        let outlier = match &raw.outlier {
            Some(outlier) => self.outlier(&format!("{path}.outlier"), outlier),
            None => defaults::OUTLIER,
        };
        let retry = match &raw.retry {
            Some(retry) => {
                let request = request.map(|timeout| (timeout, request_text.is_some()));
                self.retry(&format!("{path}.retry"), retry, request)
            }
            None => defaults::RETRY,
        };
        let mut service = ServiceConfig {
            name: raw.name.clone(),
            balancer,
            protocol,
            tls,
            timeouts,
            ewma,
            groups,
            split,
            rollout: None,
            health_check,
            outlier,
            retry,
        };
        // Checked against the built service so the stable group is found by
        // the very rule the rollout driver uses.
        service.rollout = raw
            .rollout
            .as_ref()
            .map(|rollout| self.rollout(&format!("{path}.rollout"), rollout, &service));
        service
    }

    // ---- health checks, outlier detection, retries ----

    fn health_check(&mut self, path: &str, raw: &RawHealthCheck) -> HealthCheckConfig {
        if let Err(why) = check_health_path(&raw.path) {
            self.issue(format!("{path}.path"), why);
        }
        let interval = self.duration_or(
            &format!("{path}.interval"),
            raw.interval.as_deref(),
            defaults::HEALTH_INTERVAL,
            Some("endpoints would be probed in a busy loop"),
        );
        let timeout = self.duration_or(
            &format!("{path}.timeout"),
            raw.timeout.as_deref(),
            defaults::HEALTH_TIMEOUT,
            Some("every probe would fail before an endpoint could answer"),
        );
        if let (Some(timeout), Some(interval)) = (timeout, interval) {
            // Probes are sent every `interval`; a longer timeout would let
            // them pile up on a slow endpoint.
            if timeout > interval {
                self.issue(
                    format!("{path}.timeout"),
                    format!(
                        "{} is longer than {}, so probes of a slow endpoint would overlap; \
                         set `timeout` to at most the interval",
                        which("timeout", timeout, raw.timeout.is_some()),
                        which("interval", interval, raw.interval.is_some()),
                    ),
                );
            }
        }
        let healthy_threshold = self.int_in_range(
            &format!("{path}.healthy_threshold"),
            raw.healthy_threshold,
            defaults::HEALTHY_THRESHOLD,
            1..=u32::MAX,
            "give the consecutive passing probes that mark an endpoint healthy again, at least \
             1, e.g. 2",
        );
        let unhealthy_threshold = self.int_in_range(
            &format!("{path}.unhealthy_threshold"),
            raw.unhealthy_threshold,
            defaults::UNHEALTHY_THRESHOLD,
            1..=u32::MAX,
            "give the consecutive failing probes that mark an endpoint unhealthy, at least 1, \
             e.g. 3",
        );
        HealthCheckConfig {
            path: raw.path.clone(),
            interval: interval.unwrap_or(defaults::HEALTH_INTERVAL),
            timeout: timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
            healthy_threshold,
            unhealthy_threshold,
        }
    }

    fn outlier(&mut self, path: &str, raw: &RawOutlier) -> OutlierConfig {
        let d = defaults::OUTLIER;
        // Checked even when `enabled: false`, so that turning detection back
        // on cannot surface a problem that was there all along.
        let consecutive_failures = self.int_in_range(
            &format!("{path}.consecutive_failures"),
            raw.consecutive_failures,
            d.consecutive_failures,
            1..=u32::MAX,
            "give the consecutive failures that eject an endpoint, at least 1, e.g. 5 (set \
             `enabled: false` to never eject)",
        );
        let base_ejection = self.duration_or(
            &format!("{path}.base_ejection"),
            raw.base_ejection.as_deref(),
            d.base_ejection,
            Some(
                "an ejected endpoint would be back at once, so ejecting would do nothing; set \
                 `enabled: false` to never eject",
            ),
        );
        let max_ejection = self.duration_or(
            &format!("{path}.max_ejection"),
            raw.max_ejection.as_deref(),
            d.max_ejection,
            Some("every ejection would end at once"),
        );
        if let (Some(base), Some(max)) = (base_ejection, max_ejection) {
            if max < base {
                self.issue(
                    format!("{path}.max_ejection"),
                    format!(
                        "{} is shorter than {}, the length of the first ejection, which is \
                         doubled on each repeat up to `max_ejection`; set `max_ejection` to at \
                         least `base_ejection`",
                        which("max_ejection", max, raw.max_ejection.is_some()),
                        which("base_ejection", base, raw.base_ejection.is_some()),
                    ),
                );
            }
        }
        let max_ejected_percent = self.int_in_range(
            &format!("{path}.max_ejected_percent"),
            raw.max_ejected_percent,
            d.max_ejected_percent,
            0..=100,
            "give the most of a group's endpoints ejected at once, in percent from 0 to 100, \
             e.g. 50",
        );
        OutlierConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            consecutive_failures,
            base_ejection: base_ejection.unwrap_or(d.base_ejection),
            max_ejection: max_ejection.unwrap_or(d.max_ejection),
            max_ejected_percent,
        }
    }

    /// `request` is the service's request timeout and whether it was
    /// written, or None when it is invalid (and already reported).
    fn retry(
        &mut self,
        path: &str,
        raw: &RawRetry,
        request: Option<(Duration, bool)>,
    ) -> RetryConfig {
        let d = defaults::RETRY;
        let attempts = self.int_in_range(
            &format!("{path}.attempts"),
            raw.attempts,
            d.attempts,
            RETRY_ATTEMPTS,
            "give the extra tries after the first, from 0 (no retries) to 10, e.g. 2",
        );
        let on = match &raw.on {
            Some(words) => self.retry_on(&format!("{path}.on"), words),
            None => d.on,
        };

        let per_try_path = format!("{path}.per_try_timeout");
        let per_try_timeout = raw.per_try_timeout.as_deref().and_then(|text| {
            self.checked_duration(
                &per_try_path,
                text,
                Some(
                    "every try would time out at once; remove the key to bound tries by the \
                     request timeout only",
                ),
            )
        });
        if let (Some(per_try), Some((request, written))) = (per_try_timeout, request) {
            // The request timeout covers every try together, so a longer
            // per-try timeout could never fire.
            if per_try > request {
                let which = if written {
                    "the request timeout"
                } else {
                    "the default request timeout"
                };
                self.issue(
                    per_try_path,
                    format!(
                        "per_try_timeout {per_try:?} is longer than {which} {request:?} \
                         (`timeouts.request`), which bounds all tries together, so it would \
                         never fire; set it to at most {request:?} or raise `timeouts.request`"
                    ),
                );
            }
        }

        let buffer_bytes = raw
            .buffer_bytes
            .as_ref()
            .and_then(|size| {
                self.size(
                    &format!("{path}.buffer_bytes"),
                    size,
                    0..=MAX_RETRY_BUFFER_BYTES,
                    "give the largest request body kept for replay, from 0 (never retry a \
                     request with a body) to 16MiB, e.g. 64KiB",
                )
            })
            // In range, so at most 16 MiB: it fits any usize luas runs on.
            .map_or(d.buffer_bytes, |bytes| bytes as usize);

        let budget = raw.budget.as_ref();
        let budget_ratio = match budget.and_then(|budget| budget.ratio.as_ref()) {
            Some(ratio) => self
                .rate(&format!("{path}.budget.ratio"), ratio, &BUDGET_RATIO_FORM)
                .unwrap_or(d.budget_ratio),
            None => d.budget_ratio,
        };
        let budget_min_per_second = budget
            .and_then(|budget| budget.min_per_second)
            .unwrap_or(d.budget_min_per_second);

        RetryConfig {
            attempts,
            on,
            per_try_timeout,
            buffer_bytes,
            budget_ratio,
            budget_min_per_second,
        }
    }

    fn retry_on(&mut self, path: &str, words: &[String]) -> RetryOn {
        let mut on = RetryOn {
            server_error: false,
            reset: false,
            timeout: false,
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, word) in words.iter().enumerate() {
            let word_path = format!("{path}[{index}]");
            let flag = match word.as_str() {
                "5xx" => &mut on.server_error,
                "reset" => &mut on.reset,
                "timeout" => &mut on.timeout,
                _ => {
                    self.issue(
                        word_path,
                        format!(
                            "unknown retry condition {word:?}; use any of 5xx (a 5xx \
                             response), reset (the connection broke) and timeout (the try \
                             timed out); connection failures are always retried"
                        ),
                    );
                    continue;
                }
            };
            if let Some(first) = seen.get(word.as_str()) {
                self.issue(
                    word_path,
                    format!("{word:?} is listed twice (first at {path}[{first}]); list it once"),
                );
                continue;
            }
            seen.insert(word, index);
            *flag = true;
        }
        on
    }

    fn groups(
        &mut self,
        path: &str,
        raw: &RawService,
        linkerd_compatible: bool,
    ) -> Vec<GroupConfig> {
        // Every endpoint of the service, across groups, with where it was first seen.
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();

        match (&raw.endpoints, &raw.groups) {
            (Some(_), Some(_)) => self.issue(
                path,
                "the service has both `endpoints` and `groups`; use `endpoints` for one \
                 plain list of backends or `groups` for weighted versions, not both",
            ),
            (None, None) if raw.dns.is_none() => self.issue(
                path,
                "the service has neither `endpoints` nor `groups` (nor `dns`); list its \
                 backends, e.g. `endpoints: [10.0.0.1:8080]`, or name the DNS name they are \
                 found under, e.g. `dns: web.default.svc.cluster.local:8080`",
            ),
            _ => {}
        }
        if raw.dns.is_some() {
            if raw.groups.is_some() {
                self.issue(
                    format!("{path}.dns"),
                    "the service has both `dns` and `groups`; `dns` here is the shorthand for \
                     a single group, so move it into a group (`groups: [{ name: stable, dns: \
                     ... }]`) or remove `groups`",
                );
            } else if raw.endpoints.is_some() {
                self.issue(
                    format!("{path}.dns"),
                    "the service has both `endpoints` and `dns`; give one: `endpoints` lists \
                     fixed backends, `dns` discovers them from a DNS name",
                );
            }
        }
        self.refresh_without_dns(path, raw.refresh.as_deref(), raw.dns.as_deref());

        let mut groups = Vec::new();
        let shorthand = match (&raw.endpoints, &raw.dns) {
            (Some(endpoints), _) => Some((
                self.endpoints(&format!("{path}.endpoints"), endpoints, &mut seen),
                None,
            )),
            (None, Some(dns)) if raw.groups.is_none() => {
                Some((Vec::new(), self.dns(path, dns, raw.refresh.as_deref())))
            }
            _ => None,
        };
        if let Some((endpoints, dns)) = shorthand {
            let deployment = self.default_deployment(
                path,
                &raw.name,
                defaults::DEFAULT_GROUP,
                linkerd_compatible,
                // The shorthand has nowhere to write `deployment`.
                "define the service with `groups` and give the group a `deployment`, or \
                 rename the service",
            );
            groups.push(GroupConfig {
                name: defaults::DEFAULT_GROUP.to_string(),
                weight: defaults::DEFAULT_WEIGHT,
                endpoints,
                dns,
                deployment,
            });
        }
        if let Some(raw_groups) = &raw.groups {
            groups.extend(self.weighted_groups(
                path,
                &raw.name,
                raw_groups,
                &mut seen,
                linkerd_compatible,
            ));
        }
        groups
    }

    /// The `deployment` of a group that does not name one: `SERVICE-GROUP`.
    /// Service and group names allow characters Kubernetes names do not, so
    /// the derived name is checked, but only when the linkerd-compatible
    /// series that carry it are exported: otherwise it is never used.
    fn default_deployment(
        &mut self,
        path: &str,
        service: &str,
        group: &str,
        linkerd_compatible: bool,
        fix: &str,
    ) -> String {
        let deployment = format!("{service}-{group}");
        if linkerd_compatible {
            if let Some(problem) = k8s_name_problem(&deployment) {
                self.issue(
                    path,
                    format!(
                        "metrics.linkerd_compatible labels every group with its Kubernetes \
                         Deployment, and the default name {deployment:?} (SERVICE-GROUP) \
                         {problem}; {fix} ({K8S_NAME_FORM})"
                    ),
                );
            }
        }
        deployment
    }

    fn weighted_groups(
        &mut self,
        service_path: &str,
        service_name: &str,
        raw: &[RawGroup],
        seen: &mut HashMap<SocketAddr, String>,
        linkerd_compatible: bool,
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
            let (endpoints, dns) = match (&group.endpoints, &group.dns) {
                (Some(endpoints), dns) => {
                    if dns.is_some() {
                        self.issue(
                            format!("{path}.dns"),
                            "the group has both `endpoints` and `dns`; give one: `endpoints` \
                             lists fixed backends, `dns` discovers them from a DNS name",
                        );
                    }
                    (
                        self.endpoints(&format!("{path}.endpoints"), endpoints, seen),
                        None,
                    )
                }
                (None, Some(dns)) => (Vec::new(), self.dns(&path, dns, group.refresh.as_deref())),
                (None, None) => {
                    self.issue(
                        path.clone(),
                        "the group has neither `endpoints` nor `dns`; list its backends, e.g. \
                         `endpoints: [10.0.0.1:8080]`, or name the DNS name they are found \
                         under, e.g. `dns: web-v2.default.svc.cluster.local:8080`",
                    );
                    (Vec::new(), None)
                }
            };
            self.refresh_without_dns(&path, group.refresh.as_deref(), group.dns.as_deref());
            let deployment = match &group.deployment {
                Some(deployment) => {
                    if let Some(problem) = k8s_name_problem(deployment) {
                        self.issue(
                            format!("{path}.deployment"),
                            format!(
                                "deployment {deployment:?} {problem}; it must be the name of \
                                 the group's Kubernetes Deployment, and {K8S_NAME_FORM}"
                            ),
                        );
                    }
                    deployment.clone()
                }
                None => self.default_deployment(
                    &path,
                    service_name,
                    &group.name,
                    linkerd_compatible,
                    "set `deployment` to the name of the group's Deployment",
                ),
            };
            groups.push(GroupConfig {
                name: group.name.clone(),
                weight,
                endpoints,
                dns,
                deployment,
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

    // ---- group selection: override header, stickiness, rollout ----

    fn split(&mut self, path: &str, raw: &RawService) -> SplitConfig {
        let override_header = match raw.override_header.as_deref() {
            None => Some(HeaderName::from_static(defaults::OVERRIDE_HEADER)),
            Some("") => None,
            Some(text) => self.header_name(
                &format!("{path}.override_header"),
                text,
                "x-luas-group, or \"\" to turn the override off",
            ),
        };
        let sticky = raw
            .sticky
            .as_ref()
            .and_then(|sticky| self.sticky(&format!("{path}.sticky"), sticky));
        SplitConfig {
            override_header,
            sticky,
        }
    }

    fn sticky(&mut self, path: &str, raw: &RawSticky) -> Option<StickyKey> {
        match (&raw.header, &raw.cookie) {
            (Some(header), None) => self
                .header_name(&format!("{path}.header"), header, "x-user-id")
                .map(StickyKey::Header),
            (None, Some(cookie)) => {
                let path = format!("{path}.cookie");
                if cookie.is_empty() {
                    self.issue(
                        path,
                        "the cookie name is empty; name the cookie that identifies a user, \
                         e.g. `cookie: session`",
                    );
                    return None;
                }
                if let Some(bad) = cookie.chars().find(|&c| !is_token_char(c)) {
                    self.issue(
                        path,
                        format!(
                            "cookie name {cookie:?} contains {bad:?}; cookie names use \
                             letters, digits and !#$%&'*+-.^_`|~ (no spaces, '=', ';' or ',')"
                        ),
                    );
                    return None;
                }
                Some(StickyKey::Cookie(cookie.clone()))
            }
            (Some(_), Some(_)) => {
                self.issue(
                    path,
                    "`sticky` has both `header` and `cookie`, but a request is keyed by one \
                     value; keep one of them, e.g. `sticky: { header: x-user-id }`",
                );
                None
            }
            (None, None) => {
                self.issue(
                    path,
                    "`sticky` names no key; give `header: NAME` or `cookie: NAME`, or remove \
                     `sticky` to split by weight alone",
                );
                None
            }
        }
    }

    fn rollout(&mut self, path: &str, raw: &RawRollout, service: &ServiceConfig) -> RolloutConfig {
        self.rollout_group(path, &raw.group, service);
        self.rollout_steps(&format!("{path}.steps"), &raw.steps);

        let interval = self.checked_duration(
            &format!("{path}.interval"),
            &raw.interval,
            Some("each step would end as soon as the group had `min_requests`"),
        );
        let tick = match raw.tick.as_deref() {
            Some(text) => self.checked_duration(
                &format!("{path}.tick"),
                text,
                Some("the rollout would be evaluated in a busy loop"),
            ),
            None => Some(defaults::ROLLOUT_TICK),
        };
        if let (Some(tick), Some(interval)) = (tick, interval) {
            // A step is judged when a tick sees its interval is over; ticks
            // further apart than that would stretch every step.
            if tick > interval {
                let which = match raw.tick {
                    Some(_) => format!("tick {tick:?}"),
                    None => format!("the default tick {tick:?}"),
                };
                self.issue(
                    format!("{path}.tick"),
                    format!(
                        "{which} is longer than the interval {interval:?}, so steps would \
                         last longer than configured; set `tick` to at most the interval"
                    ),
                );
            }
        }

        let max_error_rate = raw
            .max_error_rate
            .as_ref()
            .map_or(ROLLOUT_MAX_ERROR_RATE, |rate| {
                self.rate(&format!("{path}.max_error_rate"), rate, &ERROR_RATE_FORM)
                    .unwrap_or(ROLLOUT_MAX_ERROR_RATE)
            });
        let max_p99_ratio = raw.max_p99_ratio.unwrap_or(ROLLOUT_MAX_P99_RATIO);
        if !(max_p99_ratio.is_finite() && max_p99_ratio > 0.0) {
            self.issue(
                format!("{path}.max_p99_ratio"),
                format!(
                    "max_p99_ratio {max_p99_ratio} must be a number above 0: the highest \
                     tolerated p99 latency of the group divided by the stable group's, e.g. \
                     1.5 for at most 50% slower"
                ),
            );
        }

        RolloutConfig {
            group: raw.group.clone(),
            steps: raw.steps.clone(),
            interval: interval.unwrap_or(Duration::ZERO),
            min_requests: raw.min_requests.unwrap_or(ROLLOUT_MIN_REQUESTS),
            max_error_rate,
            max_p99_ratio,
            tick: tick.unwrap_or(defaults::ROLLOUT_TICK),
        }
    }

    fn rollout_group(&mut self, path: &str, group: &str, service: &ServiceConfig) {
        let groups = &service.groups;
        // No groups means `groups` itself is broken and already reported.
        if groups.is_empty() {
            return;
        }
        let stable = &groups[service.stable_group()];
        if groups.len() == 1 {
            self.issue(
                path,
                format!(
                    "the service has a single group ({:?}), so there is nothing to roll out: a \
                     rollout raises a second group's weight step by step, judged against the \
                     stable group; define both under `groups` (e.g. stable and canary) or \
                     remove `rollout`",
                    stable.name
                ),
            );
            return;
        }
        let candidates: Vec<&str> = groups
            .iter()
            .filter(|g| g.name != stable.name)
            .map(|g| g.name.as_str())
            .collect();
        if candidates.is_empty() {
            // Every group is named like the stable one: a duplicate-name
            // issue already says what to fix.
            return;
        }
        let path = format!("{path}.group");
        if group == stable.name {
            self.issue(
                path,
                format!(
                    "group {group:?} is the stable group (the one named \"stable\", else the \
                     first), which the rollout is judged against, so it cannot be rolled out; \
                     name another group of this service: {}",
                    candidates.join(", ")
                ),
            );
        } else if !candidates.contains(&group) {
            self.issue(
                path,
                format!(
                    "unknown group {group:?}; groups this service can roll out: {}",
                    candidates.join(", ")
                ),
            );
        }
    }

    fn rollout_steps(&mut self, path: &str, steps: &[u32]) {
        const EXAMPLE: &str = "e.g. [5, 25, 50, 100]";
        if steps.is_empty() {
            self.issue(
                path,
                format!(
                    "`steps` is empty; list the rolled-out group's weight in percent at each \
                     step, {EXAMPLE}"
                ),
            );
        }
        let in_range = |step: u32| (1..=100).contains(&step);
        for (index, &step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            if !in_range(step) {
                self.issue(
                    step_path,
                    format!(
                        "step {step} is out of range; a step is the group's share of traffic \
                         in percent, from 1 to 100, {EXAMPLE}"
                    ),
                );
                continue;
            }
            if index > 0 {
                let previous = steps[index - 1];
                // As with buckets: one bad value is reported once.
                if in_range(previous) && step <= previous {
                    self.issue(
                        step_path,
                        format!(
                            "step {step} is not greater than the previous step {previous}; \
                             steps must be strictly increasing, {EXAMPLE}"
                        ),
                    );
                }
            }
        }
    }

    /// A share from 0 to 1, written as a fraction or a percentage.
    fn rate(&mut self, path: &str, raw: &RawRate, form: &RateForm) -> Option<f64> {
        let RateForm {
            key,
            percent,
            fraction,
        } = form;
        let range = format!(
            "give a percentage from 0% to 100%, e.g. {percent}, or a fraction from 0 to 1, e.g. \
             {fraction}"
        );
        let rate = match raw {
            RawRate::Fraction(fraction) => *fraction,
            RawRate::Text(text) => match parse_percent(text, form) {
                Ok(rate) => rate,
                Err(why) => {
                    self.issue(path, why);
                    return None;
                }
            },
        };
        if (0.0..=1.0).contains(&rate) {
            return Some(rate);
        }
        let message = match raw {
            // A likely slip: `5` meant as 5 %, read as 500 %.
            RawRate::Fraction(n) if *n > 1.0 && *n <= 100.0 => format!(
                "{key} {n} is above 1: a plain number is a fraction ({fraction} = {percent}), \
                 so this is {}%; to mean {n} percent write `{n}%`",
                n * 100.0
            ),
            RawRate::Fraction(n) => format!("{key} {n} is out of range; {range}"),
            RawRate::Text(text) => format!("{key} {text:?} is above 100%; {range}"),
        };
        self.issue(path, message);
        None
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

    fn namespace(&mut self, raw: Option<String>) -> String {
        let Some(namespace) = raw else {
            return defaults::NAMESPACE.to_string();
        };
        if let Some(problem) = k8s_name_problem(&namespace) {
            self.issue(
                "metrics.namespace",
                format!(
                    "namespace {namespace:?} {problem}; use the Kubernetes namespace luas's \
                     services run in; {K8S_NAME_FORM}"
                ),
            );
        }
        namespace
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

    /// Parses a header name, stored lower-case; `example` completes the
    /// message with a name that would fit.
    fn header_name(&mut self, path: &str, text: &str, example: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(text.as_bytes()) {
            Ok(name) => Some(name),
            Err(_) => {
                self.issue(
                    path,
                    format!(
                        "{text:?} is not a valid HTTP header name; use letters, digits and \
                         '-', e.g. {example}"
                    ),
                );
                None
            }
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
        self.duration_or(path, text, default, zero_reason)
            .unwrap_or(default)
    }

    /// Like [`Self::duration`], but None when the value is invalid, for keys
    /// that are compared with others: comparing a value that was already
    /// reported would add a second, misleading issue.
    fn duration_or(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: Duration,
        zero_reason: Option<&str>,
    ) -> Option<Duration> {
        match text {
            Some(text) => self.checked_duration(path, text, zero_reason),
            None => Some(default),
        }
    }

    /// An optional integer that must lie in `range`, else `default`. `fix`
    /// ends the message: what the key means, its range and an example.
    fn int_in_range<T: PartialOrd + Copy + Display>(
        &mut self,
        path: &str,
        value: Option<T>,
        default: T,
        range: RangeInclusive<T>,
        fix: &str,
    ) -> T {
        match value {
            Some(value) if range.contains(&value) => value,
            Some(value) => {
                self.issue(
                    path,
                    format!("{} {value} is out of range; {fix}", last_key(path)),
                );
                default
            }
            None => default,
        }
    }

    /// Parses a size and checks it lies in `range`; None (with the issue
    /// recorded) otherwise. `fix` ends the message as for [`Self::int_in_range`].
    fn size(
        &mut self,
        path: &str,
        raw: &RawSize,
        range: RangeInclusive<u64>,
        fix: &str,
    ) -> Option<u64> {
        let (bytes, written) = match raw {
            RawSize::Bytes(bytes) => (*bytes, bytes.to_string()),
            RawSize::Text(text) => match parse_size(text) {
                Ok(bytes) => (bytes, format!("{text:?} ({bytes} bytes)")),
                Err(why) => {
                    self.issue(path, why);
                    return None;
                }
            },
        };
        let key = last_key(path);
        let problem = if bytes < *range.start() {
            format!("is below the minimum {}", show_size(*range.start()))
        } else if bytes > *range.end() {
            format!("is above the maximum {}", show_size(*range.end()))
        } else {
            return Some(bytes);
        };
        self.issue(path, format!("{key} {written} {problem}; {fix}"));
        None
    }

    /// Parses a duration that is present; None (with the issue recorded)
    /// when it is malformed, or zero where `zero_reason` says zero is nonsense.
    fn checked_duration(
        &mut self,
        path: &str,
        text: &str,
        zero_reason: Option<&str>,
    ) -> Option<Duration> {
        match super::parse_duration(text) {
            Ok(duration) => {
                if let (true, Some(reason)) = (duration.is_zero(), zero_reason) {
                    self.issue(
                        path,
                        format!("must be greater than 0 ({reason}); got {text:?}"),
                    );
                    return None;
                }
                Some(duration)
            }
            Err(message) => {
                self.issue(path, message);
                None
            }
        }
    }
}

/// Splits and checks `dns: NAME:PORT`: the name lower-case and the port.
fn parse_dns_target(text: &str) -> Result<(String, u16), String> {
    let Some((name, port)) = text.rsplit_once(':') else {
        return Err(format!("dns {text:?} has no port; {DNS_FORM}"));
    };
    let bare_ip = name.trim_start_matches('[').trim_end_matches(']');
    if bare_ip.parse::<IpAddr>().is_ok() || text.parse::<SocketAddr>().is_ok() {
        return Err(format!(
            "dns {text:?} is an IP address, not a name to look up; list fixed addresses under \
             `endpoints` instead, or {DNS_FORM}"
        ));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {
            if let Some(problem) = dns_name_problem(name) {
                return Err(format!("dns {text:?}: the name {problem}; {DNS_FORM}"));
            }
            Ok((name.to_ascii_lowercase(), port))
        }
        _ => Err(format!(
            "dns {text:?}: port {port:?} is not a number from 1 to 65535; {DNS_FORM}"
        )),
    }
}

/// Why `name` is not a DNS name a resolver would look up, or None. A
/// trailing `.` (an absolute name, looked up without search domains) is
/// allowed; `_` is too, as in Docker Compose service names.
fn dns_name_problem(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Some("is empty".to_string());
    }
    if bare.len() > 253 {
        return Some(format!("is {} characters long (at most 253)", bare.len()));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Some("has an empty label (a leading or doubled '.')".to_string());
        }
        if label.len() > 63 {
            return Some(format!(
                "has a label of {} characters (at most 63)",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Some(format!("contains {bad:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!(
                "has a label starting or ending with '-' ({label:?})"
            ));
        }
    }
    None
}

/// Why `text` is not a Kubernetes name (a DNS-1123 label, what namespaces
/// require), or None if it is one. Deployments are held to the same rule so
/// the linkerd-compatible labels match what Kubernetes tooling reports.
fn k8s_name_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("is empty".to_string());
    }
    let length = text.chars().count();
    if length > 63 {
        return Some(format!("is {length} characters long"));
    }
    if let Some(bad) = text
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        let case = if bad.is_ascii_uppercase() {
            "upper-case "
        } else {
            ""
        };
        return Some(format!("contains {case}{bad:?}"));
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Some("starts or ends with '-'".to_string());
    }
    None
}

/// The last key of a key path: `max_headers` for `listeners[0].limits.max_headers`.
fn last_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// `key 2s`, or `the default key 1s` when the value was not written, so a
/// message about a default does not send the user looking for the key.
fn which(key: &str, value: Duration, written: bool) -> String {
    if written {
        format!("{key} {value:?}")
    } else {
        format!("the default {key} {value:?}")
    }
}

/// A size bound for messages, in the largest binary unit that is exact.
fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || match bytes {
                1 => "1 byte".to_string(),
                _ => format!("{bytes} bytes"),
            },
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

/// A health check's path is sent as the target of `GET path HTTP/1.1`, so
/// anything that cannot go into a request line is refused here rather than
/// failing every probe.
fn check_health_path(text: &str) -> Result<(), String> {
    const FORM: &str = "e.g. /healthz";
    if !text.starts_with('/') {
        return Err(format!(
            "health check path {text:?} must start with '/', {FORM}"
        ));
    }
    if let Some(bad) = text.chars().find(|&c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "health check path {text:?} contains {bad:?}; a request path cannot hold \
             whitespace or control characters (percent-encode them, e.g. %20), {FORM}"
        ));
    }
    if text.contains('#') {
        return Err(format!(
            "health check path {text:?} contains '#'; a fragment is never sent to the \
             server, so leave it out, {FORM}"
        ));
    }
    // `PathAndQuery` lets raw UTF-8 through, but a request target is ASCII.
    if let Some(bad) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "health check path {text:?} contains {bad:?}; a request path is ASCII, so \
             percent-encode its UTF-8 bytes (e.g. %C3%BC for 'ü'), {FORM}"
        ));
    }
    match PathAndQuery::try_from(text) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "health check path {text:?} is not a valid request path ({error}); \
             percent-encode other characters, {FORM}"
        )),
    }
}

/// A cookie name is an HTTP token (RFC 6265 section 4.1.1, RFC 9110 section 5.6.2).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses `1%` or `0.5%` into a fraction (0.01, 0.005); `form` names the
/// key in messages. The range is checked by the caller.
fn parse_percent(text: &str, form: &RateForm) -> Result<f64, String> {
    let RateForm {
        key,
        percent,
        fraction,
    } = form;
    let fix = format!(
        "write a percentage such as {percent} or 0.5%, or an unquoted fraction such as {fraction}"
    );
    let Some(number) = text.strip_suffix('%') else {
        return Err(format!("{key} {text:?} has no '%'; {fix}"));
    };
    // Digits with at most one inner '.', as for durations; `f64::from_str`
    // alone would also take `inf`, `NaN` and `1e2`.
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match number.parse::<f64>() {
        Ok(percent) if digits(whole) && digits(fraction) => Ok(percent / 100.0),
        _ => Err(format!("{key} {text:?} is not a percentage; {fix}")),
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
    limits:
      max_connections: 500
      header_read_timeout: 5s
      max_header_bytes: 16KiB
      max_headers: 50
      max_body_bytes: 1MB
      body_timeout: 20s
      idle_timeout: 90s
      h2_max_concurrent_streams: 250
  - name: internal
    listen: '[::1]:8081'
    routes:
      - { name: all, service: loadapi }
services:
  - name: loadapi
    balancer: least-request
    protocol: http2
    timeouts: { connect: 250ms, request: 5s, idle: 2m }
    ewma: { decay: 5s, default_rtt: 10ms, failure_penalty: 2s }
    health_check:
      path: /healthz?deep=1
      interval: 2s
      timeout: 500ms
      healthy_threshold: 1
      unhealthy_threshold: 4
    outlier:
      enabled: false
      consecutive_failures: 3
      base_ejection: 10s
      max_ejection: 1m
      max_ejected_percent: 30
    retry:
      attempts: 3
      on: [reset, 5xx]
      per_try_timeout: 1s
      buffer_bytes: 1024
      budget: { ratio: 10%, min_per_second: 5 }
    groups:
      - { name: stable, weight: 90, endpoints: [127.0.0.1:9001, 127.0.0.1:9002] }
      - { name: canary, weight: 0, endpoints: ['[::1]:9003'], deployment: loadapi-v2 }
      - { name: next, endpoints: [10.0.0.1:80] }
    override_header: X-Pick-Group
    sticky: { cookie: session_id }
    rollout:
      group: canary
      steps: [10, 50, 100]
      interval: 2m
      min_requests: 500
      max_error_rate: 0.5%
      max_p99_ratio: 2
      tick: 5s
  - name: simple
    endpoints: [127.0.0.1:9004]
    override_header: ''
    sticky: { header: X-User-Id }
metrics:
  buckets: [0.001, 0.01, 0.1, 1]
  linkerd_compatible: true
  namespace: shop-prod
shutdown:
  grace_period: 1m
state_file: /var/lib/luas/state.json
";

    #[test]
    fn full_config_becomes_the_expected_values() {
        let config = load(FULL);
        let expected = Config {
            admin: AdminConfig {
                listen: addr("127.0.0.1:9999"),
                token_file: None,
                allow_unauthenticated_admin: false,
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
                                client_identity: None,
                            },
                            service: 0,
                        },
                        RouteConfig {
                            name: "rest".into(),
                            matches: RouteMatch::default(),
                            service: 1,
                        },
                    ],
                    limits: ListenerLimits {
                        max_connections: 500,
                        header_read_timeout: Duration::from_secs(5),
                        max_header_bytes: 16 * 1024,
                        max_headers: 50,
                        max_body_bytes: Some(1_000_000),
                        body_timeout: Duration::from_secs(20),
                        idle_timeout: Duration::from_secs(90),
                        h2_max_concurrent_streams: 250,
                    },
                    tls: None,
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
                    limits: defaults::LIMITS,
                    tls: None,
                },
            ],
            services: vec![
                ServiceConfig {
                    name: "loadapi".into(),
                    balancer: BalancerKind::LeastRequest,
                    protocol: UpstreamProtocol::Http2,
                    tls: None,
                    timeouts: Timeouts {
                        connect: Duration::from_millis(250),
                        request: Duration::from_secs(5),
                        idle: Duration::from_secs(120),
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
                            dns: None,
                            deployment: "loadapi-stable".into(),
                        },
                        GroupConfig {
                            name: "canary".into(),
                            weight: 0,
                            endpoints: vec![addr("[::1]:9003")],
                            dns: None,
                            deployment: "loadapi-v2".into(),
                        },
                        GroupConfig {
                            name: "next".into(),
                            weight: 100,
                            endpoints: vec![addr("10.0.0.1:80")],
                            dns: None,
                            deployment: "loadapi-next".into(),
                        },
                    ],
                    split: SplitConfig {
                        override_header: Some(HeaderName::from_static("x-pick-group")),
                        sticky: Some(StickyKey::Cookie("session_id".into())),
                    },
                    rollout: Some(RolloutConfig {
                        group: "canary".into(),
                        steps: vec![10, 50, 100],
                        interval: Duration::from_secs(120),
                        min_requests: 500,
                        max_error_rate: 0.005,
                        max_p99_ratio: 2.0,
                        tick: Duration::from_secs(5),
                    }),
                    health_check: Some(HealthCheckConfig {
                        path: "/healthz?deep=1".into(),
                        interval: Duration::from_secs(2),
                        timeout: Duration::from_millis(500),
                        healthy_threshold: 1,
                        unhealthy_threshold: 4,
                    }),
                    outlier: OutlierConfig {
                        enabled: false,
                        consecutive_failures: 3,
                        base_ejection: Duration::from_secs(10),
                        max_ejection: Duration::from_secs(60),
                        max_ejected_percent: 30,
                    },
                    retry: RetryConfig {
                        attempts: 3,
                        on: RetryOn {
                            server_error: true,
                            reset: true,
                            timeout: false,
                        },
                        per_try_timeout: Some(Duration::from_secs(1)),
                        buffer_bytes: 1024,
                        budget_ratio: 0.1,
                        budget_min_per_second: 5,
                    },
                },
                ServiceConfig {
                    name: "simple".into(),
                    balancer: BalancerKind::P2cEwma,
                    protocol: UpstreamProtocol::Http1,
                    tls: None,
                    timeouts: Timeouts {
                        connect: defaults::CONNECT_TIMEOUT,
                        request: defaults::REQUEST_TIMEOUT,
                        idle: defaults::IDLE_TIMEOUT,
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
                        dns: None,
                        deployment: "simple-stable".into(),
                    }],
                    split: SplitConfig {
                        override_header: None,
                        sticky: Some(StickyKey::Header(HeaderName::from_static("x-user-id"))),
                    },
                    rollout: None,
                    health_check: None,
                    outlier: defaults::OUTLIER,
                    retry: defaults::RETRY,
                },
            ],
            metrics: MetricsConfig {
                buckets: vec![0.001, 0.01, 0.1, 1.0],
                linkerd_compatible: true,
                namespace: "shop-prod".into(),
            },
            shutdown: ShutdownConfig {
                grace_period: Duration::from_secs(60),
            },
            state_file: Some(PathBuf::from("/var/lib/luas/state.json")),
            access_log: AccessLogConfig::default(),
            discovery: DiscoveryConfig::default(),
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
        assert_eq!(
            config.listeners[0].limits,
            ListenerLimits {
                max_connections: 10_000,
                header_read_timeout: Duration::from_secs(10),
                max_header_bytes: 64 * 1024,
                max_headers: 100,
                max_body_bytes: None,
                body_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                h2_max_concurrent_streams: 100,
            }
        );
        let service = &config.services[0];
        assert_eq!(service.balancer, BalancerKind::P2cEwma);
        assert_eq!(service.protocol, UpstreamProtocol::Http1);
        assert_eq!(service.timeouts.connect, Duration::from_secs(1));
        assert_eq!(service.timeouts.request, Duration::from_secs(30));
        assert_eq!(service.timeouts.idle, Duration::from_secs(60));
        assert_eq!(service.ewma.decay, Duration::from_secs(10));
        assert_eq!(service.ewma.default_rtt, Duration::from_millis(30));
        assert_eq!(service.ewma.failure_penalty, Duration::from_secs(1));
        assert_eq!(
            service.groups,
            vec![GroupConfig {
                name: "stable".into(),
                weight: 100,
                endpoints: vec![addr("127.0.0.1:9000")],
                dns: None,
                deployment: "web-stable".into(),
            }]
        );
        assert_eq!(
            service.split,
            SplitConfig {
                override_header: Some(HeaderName::from_static(defaults::OVERRIDE_HEADER)),
                sticky: None,
            }
        );
        assert_eq!(service.rollout, None);
        assert_eq!(service.health_check, None);
        assert_eq!(
            service.outlier,
            OutlierConfig {
                enabled: true,
                consecutive_failures: 5,
                base_ejection: Duration::from_secs(30),
                max_ejection: Duration::from_secs(300),
                max_ejected_percent: 50,
            }
        );
        assert_eq!(
            service.retry,
            RetryConfig {
                attempts: 0,
                on: RetryOn {
                    server_error: true,
                    reset: true,
                    timeout: true,
                },
                per_try_timeout: None,
                buffer_bytes: 64 * 1024,
                budget_ratio: 0.2,
                budget_min_per_second: 10,
            }
        );
        assert_eq!(config.metrics.buckets, defaults::BUCKETS.to_vec());
        assert!(!config.metrics.linkerd_compatible);
        assert_eq!(config.metrics.namespace, defaults::NAMESPACE);
        assert_eq!(config.shutdown.grace_period, Duration::from_secs(10));
        assert_eq!(config.state_file, None);
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
        assert_eq!(names, ["edge", "secure", "internal"]);
        assert_eq!(config.listeners[2].listen, addr("[::1]:8081"));
        assert_eq!(
            config.listeners[1]
                .tls
                .as_ref()
                .map(|tls| tls.certificates.len()),
            Some(2)
        );
        assert_eq!(
            config.listeners[0].limits,
            ListenerLimits {
                max_body_bytes: Some(10 << 20),
                ..defaults::LIMITS
            }
        );
        assert_eq!(config.listeners[2].limits, defaults::LIMITS);
        let first = &config.listeners[0].routes[0];
        assert_eq!(
            first.matches,
            RouteMatch {
                host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                path_prefix: Some("/v1".into()),
                headers: vec![header("x-env", "staging")],
                client_identity: None,
            }
        );
        assert_eq!(config.services[first.service].name, "loadapi");
        let loadapi = &config.services[0];
        let weights: Vec<u32> = loadapi.groups.iter().map(|g| g.weight).collect();
        assert_eq!(weights, [95, 5]);
        assert_eq!(loadapi.groups[0].deployment, "loadapi-primary");
        assert_eq!(loadapi.groups[1].deployment, "loadapi-canary");
        assert_eq!(
            loadapi.split.sticky,
            Some(StickyKey::Header(HeaderName::from_static("x-user-id")))
        );
        let rollout = loadapi.rollout.as_ref().unwrap();
        assert_eq!(rollout.group, "canary");
        assert_eq!(rollout.steps, [5, 25, 50, 100]);
        assert_eq!(rollout.max_error_rate, 0.01);
        assert_eq!(loadapi.timeouts.idle, defaults::IDLE_TIMEOUT);
        let check = loadapi.health_check.as_ref().unwrap();
        assert_eq!(check.path, "/healthz");
        assert_eq!(check.interval, defaults::HEALTH_INTERVAL);
        assert_eq!(check.timeout, defaults::HEALTH_TIMEOUT);
        assert_eq!(loadapi.outlier, defaults::OUTLIER);
        assert_eq!(
            loadapi.retry,
            RetryConfig {
                attempts: 2,
                per_try_timeout: Some(Duration::from_secs(2)),
                ..defaults::RETRY
            }
        );
        // The other services show that every section is optional.
        assert_eq!(config.services[1].health_check, None);
        assert_eq!(config.services[1].retry, defaults::RETRY);
        assert_eq!(config.services[1].groups[0].name, defaults::DEFAULT_GROUP);
        let shop = &config.services[2];
        assert_eq!(shop.split.override_header, None);
        assert_eq!(shop.split.sticky, Some(StickyKey::Cookie("session".into())));
        assert!(config.metrics.linkerd_compatible);
        assert_eq!(
            config.state_file.as_deref(),
            Some(std::path::Path::new("/var/lib/luas/state.json"))
        );
        let catalog = &config.services[3];
        assert_eq!(
            catalog.groups[0].dns,
            Some(DnsConfig {
                name: "catalog-v1.default.svc.cluster.local".into(),
                port: 8080,
                refresh: defaults::DNS_REFRESH,
            })
        );
        assert!(catalog.groups[0].endpoints.is_empty());
        assert_eq!(catalog.groups[1].dns, None);
        let search = &config.services[4].groups[0];
        assert_eq!(search.name, defaults::DEFAULT_GROUP);
        assert_eq!(
            search.dns.as_ref().map(|dns| dns.refresh),
            Some(Duration::from_secs(10))
        );
        assert_eq!(config.discovery.resolvers, vec![addr("10.96.0.10:53")]);
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
        let limits = raw
            .listeners
            .iter()
            .find_map(|l| l.limits.as_ref())
            .unwrap();
        assert!(limits.max_connections.is_some(), "max_connections");
        assert!(limits.header_read_timeout.is_some(), "header_read_timeout");
        assert!(limits.max_header_bytes.is_some(), "max_header_bytes");
        assert!(limits.max_headers.is_some(), "max_headers");
        assert!(limits.max_body_bytes.is_some(), "max_body_bytes");
        assert!(limits.body_timeout.is_some(), "body_timeout");
        assert!(limits.idle_timeout.is_some(), "limits.idle_timeout");
        assert!(
            limits.h2_max_concurrent_streams.is_some(),
            "h2_max_concurrent_streams"
        );
        let services = &raw.services;
        assert!(services.iter().any(|s| s.balancer.is_some()), "balancer");
        assert!(services.iter().any(|s| s.protocol.is_some()), "protocol");
        assert!(services.iter().any(|s| s.endpoints.is_some()), "endpoints");
        let timeouts = services.iter().find_map(|s| s.timeouts.as_ref()).unwrap();
        assert!(timeouts.connect.is_some() && timeouts.request.is_some());
        assert!(timeouts.idle.is_some(), "timeouts.idle");
        let ewma = services.iter().find_map(|s| s.ewma.as_ref()).unwrap();
        assert!(ewma.decay.is_some() && ewma.default_rtt.is_some());
        assert!(ewma.failure_penalty.is_some());
        let groups = services.iter().find_map(|s| s.groups.as_ref()).unwrap();
        assert!(groups.iter().any(|g| g.weight.is_some()), "weight");
        assert!(groups.iter().any(|g| g.deployment.is_some()), "deployment");
        let groups: Vec<&raw::RawGroup> = services
            .iter()
            .filter_map(|s| s.groups.as_ref())
            .flatten()
            .collect();
        assert!(groups.iter().any(|g| g.dns.is_some()), "groups[].dns");
        assert!(
            groups.iter().any(|g| g.refresh.is_some()),
            "groups[].refresh"
        );
        assert!(services.iter().any(|s| s.dns.is_some()), "services[].dns");
        assert!(
            services.iter().any(|s| s.refresh.is_some()),
            "services[].refresh"
        );
        assert!(
            services.iter().any(|s| s.override_header.is_some()),
            "override_header"
        );
        let sticky: Vec<&raw::RawSticky> =
            services.iter().filter_map(|s| s.sticky.as_ref()).collect();
        assert!(sticky.iter().any(|s| s.header.is_some()), "sticky.header");
        assert!(sticky.iter().any(|s| s.cookie.is_some()), "sticky.cookie");
        let rollout = services.iter().find_map(|s| s.rollout.as_ref()).unwrap();
        assert!(rollout.min_requests.is_some(), "min_requests");
        assert!(rollout.max_error_rate.is_some(), "max_error_rate");
        assert!(rollout.max_p99_ratio.is_some(), "max_p99_ratio");
        assert!(rollout.tick.is_some(), "tick");
        let check = services
            .iter()
            .find_map(|s| s.health_check.as_ref())
            .unwrap();
        assert!(check.interval.is_some(), "health_check.interval");
        assert!(check.timeout.is_some(), "health_check.timeout");
        assert!(check.healthy_threshold.is_some(), "healthy_threshold");
        assert!(check.unhealthy_threshold.is_some(), "unhealthy_threshold");
        let outlier = services.iter().find_map(|s| s.outlier.as_ref()).unwrap();
        assert!(outlier.enabled.is_some(), "outlier.enabled");
        assert!(
            outlier.consecutive_failures.is_some(),
            "consecutive_failures"
        );
        assert!(outlier.base_ejection.is_some(), "base_ejection");
        assert!(outlier.max_ejection.is_some(), "max_ejection");
        assert!(outlier.max_ejected_percent.is_some(), "max_ejected_percent");
        let retry = services.iter().find_map(|s| s.retry.as_ref()).unwrap();
        assert!(retry.attempts.is_some(), "attempts");
        assert!(retry.on.is_some(), "retry.on");
        assert!(retry.per_try_timeout.is_some(), "per_try_timeout");
        assert!(retry.buffer_bytes.is_some(), "buffer_bytes");
        let budget = retry.budget.as_ref().unwrap();
        assert!(budget.ratio.is_some(), "budget.ratio");
        assert!(budget.min_per_second.is_some(), "budget.min_per_second");
        let metrics = raw.metrics.unwrap();
        assert!(metrics.buckets.is_some(), "buckets");
        assert!(metrics.linkerd_compatible.is_some(), "linkerd_compatible");
        assert!(metrics.namespace.is_some(), "namespace");
        assert!(
            raw.shutdown.and_then(|s| s.grace_period).is_some(),
            "grace_period"
        );
        assert!(raw.state_file.is_some(), "state_file");
        assert!(
            raw.discovery.and_then(|d| d.resolvers).is_some(),
            "discovery.resolvers"
        );
    }

    #[test]
    fn example_file_uses_every_tls_and_admin_key() {
        let raw = raw::parse(EXAMPLE).unwrap();
        let admin = raw.admin.as_ref().unwrap();
        assert!(admin.token_file.is_some(), "admin.token_file");
        assert!(
            admin.allow_unauthenticated_admin.is_some(),
            "allow_unauthenticated_admin"
        );
        let tls: Vec<&raw::RawListenerTls> = raw
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .collect();
        assert!(
            tls.iter().any(|t| t.certificates.is_some()),
            "tls.certificates"
        );
        assert!(tls.iter().any(|t| t.client_ca.is_some()), "tls.client_ca");
        assert!(
            raw.listeners
                .iter()
                .flat_map(|l| &l.routes)
                .filter_map(|r| r.matches.as_ref())
                .any(|m| m.client_identity.is_some()),
            "client_identity"
        );
        let upstream = raw.services.iter().find_map(|s| s.tls.as_ref()).unwrap();
        assert!(upstream.ca.is_some() && upstream.server_name.is_some());
        assert!(upstream.cert.is_some() && upstream.key.is_some());
        assert!(upstream.insecure_skip_verify.is_some());
        assert!(
            raw.access_log.and_then(|a| a.enabled).is_some(),
            "access_log.enabled"
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
    fn dns_groups_and_the_service_shorthand() {
        let text = format!(
            "{}discovery:\n  resolvers: [\"127.0.0.1:5353\", \"[::1]:53\"]\n",
            with_services(
                "  - name: web
    groups:
      - { name: stable, weight: 100, dns: App-V1.Default.svc.cluster.local:8080, refresh: 250ms }
      - { name: canary, weight: 0, endpoints: [127.0.0.1:9003] }
  - { name: simple, dns: \"simple.test.:80\" }
"
            )
        );
        let config = load(&text);
        let web = &config.services[0];
        assert_eq!(
            web.groups[0].dns,
            Some(DnsConfig {
                name: "app-v1.default.svc.cluster.local".into(),
                port: 8080,
                refresh: Duration::from_millis(250),
            })
        );
        // Nothing is discovered yet: the file config of a DNS group has no endpoints.
        assert!(web.groups[0].endpoints.is_empty());
        assert_eq!(web.groups[1].dns, None);
        assert_eq!(web.groups[1].endpoints, vec![addr("127.0.0.1:9003")]);
        let simple = &config.services[1].groups[0];
        assert_eq!(simple.name, defaults::DEFAULT_GROUP);
        assert_eq!(simple.weight, defaults::DEFAULT_WEIGHT);
        assert_eq!(
            simple.dns,
            Some(DnsConfig {
                name: "simple.test.".into(),
                port: 80,
                refresh: defaults::DNS_REFRESH,
            })
        );
        assert_eq!(
            config.discovery.resolvers,
            vec![addr("127.0.0.1:5353"), addr("[::1]:53")]
        );
        // Without `discovery`, the system's resolver configuration is used.
        let plain = load(&with_services("  - { name: web, dns: web.test:80 }\n"));
        assert_eq!(plain.discovery, DiscoveryConfig::default());
        assert_eq!(
            plain.services[0].groups[0]
                .dns
                .as_ref()
                .map(ToString::to_string),
            Some("web.test:80".to_string())
        );
    }

    #[test]
    fn exactly_one_of_endpoints_and_dns() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: a, endpoints: [127.0.0.1:1], dns: a.test:80 }
      - { name: b, weight: 0 }
  - { name: two, endpoints: [127.0.0.1:2], dns: two.test:80 }
  - name: three
    dns: three.test:80
    groups: [{ name: a, endpoints: [127.0.0.1:3] }]
",
        ));
        let message = issue_at(&found, "services[0].groups[0].dns");
        assert!(message.contains("both `endpoints` and `dns`"), "{message}");
        let message = issue_at(&found, "services[0].groups[1]");
        assert!(
            message.contains("neither `endpoints` nor `dns`"),
            "{message}"
        );
        let message = issue_at(&found, "services[1].dns");
        assert!(message.contains("both `endpoints` and `dns`"), "{message}");
        let message = issue_at(&found, "services[2].dns");
        assert!(message.contains("both `dns` and `groups`"), "{message}");
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn dns_names_and_ports() {
        let dns_of = |target: &str| {
            let text = with_services(&format!("  - {{ name: web, dns: \"{target}\" }}\n"));
            let raw = raw::parse(&text).unwrap();
            validate(raw).map(|config| config.services[0].groups[0].dns.clone().unwrap())
        };
        for (target, name, port) in [
            ("web:80", "web", 80),
            (
                "Web.Default.SVC.cluster.local:8080",
                "web.default.svc.cluster.local",
                8080,
            ),
            ("web.test.:65535", "web.test.", 65535),
            ("my_service-2:1", "my_service-2", 1),
        ] {
            let dns = dns_of(target).unwrap_or_else(|issues| panic!("{target}: {issues:#?}"));
            assert_eq!((dns.name.as_str(), dns.port), (name, port), "{target}");
        }
        let long_label = format!("{}.test:80", "a".repeat(64));
        let long_name = format!("{}:80", ["abcdefghi"; 26].join("."));
        for (target, expected) in [
            ("web", "has no port"),
            ("web:", "port \"\" is not a number from 1 to 65535"),
            ("web:0", "port \"0\" is not a number"),
            ("web:65536", "port \"65536\" is not a number"),
            ("web:http", "port \"http\" is not a number"),
            ("10.0.0.1:80", "is an IP address"),
            ("[::1]:80", "is an IP address"),
            (":80", "the name is empty"),
            ("a..b:80", "empty label"),
            (".web:80", "empty label"),
            ("-web.test:80", "starting or ending with '-'"),
            ("web-.test:80", "starting or ending with '-'"),
            ("we b.test:80", "contains ' '"),
            ("web/v1:80", "contains '/'"),
            ("http://web:80", "contains ':'"),
            (long_label.as_str(), "a label of 64 characters"),
            (long_name.as_str(), "259 characters long"),
        ] {
            let found = dns_of(target).expect_err(target);
            let message = issue_at(&found, "services[0].dns");
            assert!(message.contains(expected), "{target}: {message}");
            assert!(
                message.contains("expected NAME:PORT"),
                "{target}: {message}"
            );
            assert_eq!(found.len(), 1, "{target}: {found:#?}");
        }
    }

    #[test]
    fn refresh_must_be_a_duration_above_zero_and_only_with_dns() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: a, dns: a.test:80, refresh: 0s }
      - { name: b, dns: b.test:80, refresh: '5' }
      - { name: c, endpoints: [127.0.0.1:3], refresh: 5s }
  - { name: two, dns: two.test:80, refresh: -1s }
  - { name: three, endpoints: [127.0.0.1:4], refresh: 1s }
",
        ));
        let message = issue_at(&found, "services[0].groups[0].refresh");
        assert!(message.contains("must be greater than 0"), "{message}");
        assert!(message.contains("busy loop"), "{message}");
        assert!(issue_at(&found, "services[0].groups[1].refresh").contains("unit"));
        let message = issue_at(&found, "services[0].groups[2].refresh");
        assert!(message.contains("there is no `dns` here"), "{message}");
        issue_at(&found, "services[1].refresh");
        let message = issue_at(&found, "services[2].refresh");
        assert!(message.contains("there is no `dns` here"), "{message}");
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn discovery_resolvers_are_ip_and_port() {
        let resolvers = |list: &str| {
            issues(&format!(
                "{}discovery: {{ resolvers: {list} }}\n",
                with_services("  - { name: web, dns: web.test:80 }\n")
            ))
        };
        let found = resolvers("[10.0.0.1:53, kube-dns:53, 10.0.0.2, \"10.0.0.3:0\"]");
        assert!(issue_at(&found, "discovery.resolvers[1]").contains("expected IP:port"));
        assert!(issue_at(&found, "discovery.resolvers[2]").contains("expected IP:port"));
        assert!(issue_at(&found, "discovery.resolvers[3]").contains("port 0"));
        assert_eq!(found.len(), 3, "{found:#?}");
        let found = resolvers("[]");
        assert!(issue_at(&found, "discovery.resolvers").contains("`resolvers` is empty"));
        assert_eq!(found.len(), 1, "{found:#?}");
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
admin: { listen: '0.0.0.0:9901', token_file: /etc/luas/token }
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

    // ---- state_file, metrics.linkerd_compatible, metrics.namespace ----

    #[test]
    fn empty_state_file() {
        let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
        for value in ["''", "'  '"] {
            let found = issues(&format!("{base}state_file: {value}\n"));
            let message = issue_at(&found, "state_file");
            assert!(message.contains("`state_file` is empty"), "{message}");
            assert!(message.contains("/var/lib/luas/state.json"), "{message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
        // `~` is the same as leaving the key out.
        assert_eq!(load(&format!("{base}state_file: ~\n")).state_file, None);
        let config = load(&format!("{base}state_file: state.json\n"));
        assert_eq!(config.state_file, Some(PathBuf::from("state.json")));
    }

    #[test]
    fn linkerd_metrics_settings() {
        let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
        let config = load(&format!(
            "{base}metrics: {{ linkerd_compatible: true, namespace: team-a1 }}\n"
        ));
        assert!(config.metrics.linkerd_compatible);
        assert_eq!(config.metrics.namespace, "team-a1");
        // Only the keys given replace their defaults.
        let config = load(&format!("{base}metrics: {{ linkerd_compatible: false }}\n"));
        assert!(!config.metrics.linkerd_compatible);
        assert_eq!(config.metrics.namespace, defaults::NAMESPACE);
        assert_eq!(config.metrics.buckets, defaults::BUCKETS.to_vec());
        let longest = "n".repeat(63);
        let config = load(&format!("{base}metrics: {{ namespace: {longest} }}\n"));
        assert_eq!(config.metrics.namespace, longest);
    }

    #[test]
    fn bad_namespaces() {
        let base = with_services("  - { name: web, endpoints: [127.0.0.1:1] }\n");
        let cases = [
            ("''", "is empty"),
            ("Prod", "contains upper-case 'P'"),
            ("team_a", "contains '_'"),
            ("team.a", "contains '.'"),
            ("-team", "starts or ends with '-'"),
            ("team-", "starts or ends with '-'"),
            (&"n".repeat(64), "is 64 characters long"),
        ];
        for (value, expected) in cases {
            let found = issues(&format!("{base}metrics: {{ namespace: {value} }}\n"));
            let message = issue_at(&found, "metrics.namespace");
            assert!(message.contains(expected), "{value}: {message}");
            assert!(message.contains("1 to 63 lower-case letters"), "{message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }

    #[test]
    fn kubernetes_names() {
        for good in ["a", "0", "web-canary", "a-b-c-1", &"x".repeat(63)] {
            assert_eq!(k8s_name_problem(good), None, "{good:?}");
        }
        assert_eq!(k8s_name_problem("").as_deref(), Some("is empty"));
        assert_eq!(k8s_name_problem("ab cd").as_deref(), Some("contains ' '"));
        assert_eq!(k8s_name_problem("é").as_deref(), Some("contains 'é'"));
    }

    // ---- groups[].deployment ----

    #[test]
    fn deployments_default_to_service_dash_group() {
        let config = load(&with_services(
            "  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: web-primary }
      - { name: canary, endpoints: [127.0.0.1:2] }
  - { name: api, endpoints: [127.0.0.1:3] }
",
        ));
        let deployments: Vec<&str> = config
            .services
            .iter()
            .flat_map(|s| &s.groups)
            .map(|g| g.deployment.as_str())
            .collect();
        assert_eq!(deployments, ["web-primary", "web-canary", "api-stable"]);
    }

    #[test]
    fn bad_explicit_deployment() {
        let found = issues(&with_services(
            "  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1] }
      - { name: canary, endpoints: [127.0.0.1:2], deployment: Web_Canary }
      - { name: next, endpoints: [127.0.0.1:3], deployment: '' }
",
        ));
        let message = issue_at(&found, "services[0].groups[1].deployment");
        assert!(message.contains("deployment \"Web_Canary\""), "{message}");
        assert!(message.contains("upper-case 'W'"), "{message}");
        assert!(message.contains("Kubernetes Deployment"), "{message}");
        assert!(issue_at(&found, "services[0].groups[2].deployment").contains("is empty"));
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn derived_deployments_must_be_kubernetes_names_only_for_linkerd_metrics() {
        let services = with_services(
            "  - name: Web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: web }
      - { name: v_2, endpoints: [127.0.0.1:2] }
  - { name: API, endpoints: [127.0.0.1:3] }
  - { name: web, endpoints: [127.0.0.1:4] }
",
        );
        // Without the linkerd series the derived names are never used.
        let config = load(&services);
        assert_eq!(config.services[0].groups[1].deployment, "Web-v_2");

        let found = issues(&format!(
            "{services}metrics: {{ linkerd_compatible: true }}\n"
        ));
        let message = issue_at(&found, "services[0].groups[1]");
        assert!(message.contains("metrics.linkerd_compatible"), "{message}");
        assert!(
            message.contains("default name \"Web-v_2\" (SERVICE-GROUP) contains upper-case 'W'"),
            "{message}"
        );
        assert!(message.contains("set `deployment`"), "{message}");
        // The shorthand has no `deployment` key, so the fix is different.
        let message = issue_at(&found, "services[1]");
        assert!(message.contains("\"API-stable\""), "{message}");
        assert!(
            message.contains("define the service with `groups`"),
            "{message}"
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    // ---- override_header and sticky ----

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

    // ---- rollout ----

    /// A service `web` with groups `stable` and `canary`, and `rollout` as given.
    fn with_rollout(rollout: &str) -> String {
        with_services(&format!(
            "  - name: web
    groups:
      - {{ name: stable, weight: 95, endpoints: [127.0.0.1:1] }}
      - {{ name: canary, weight: 5, endpoints: [127.0.0.1:2] }}
    rollout: {rollout}
"
        ))
    }

    fn rollout_of(text: &str) -> RolloutConfig {
        load(text).services[0].rollout.clone().unwrap()
    }

    #[test]
    fn rollout_defaults() {
        let rollout = rollout_of(&with_rollout(
            "{ group: canary, steps: [50, 100], interval: 30s }",
        ));
        assert_eq!(
            rollout,
            RolloutConfig {
                group: "canary".into(),
                steps: vec![50, 100],
                interval: Duration::from_secs(30),
                min_requests: 100,
                max_error_rate: 0.01,
                max_p99_ratio: 1.5,
                tick: defaults::ROLLOUT_TICK,
            }
        );
    }

    #[test]
    fn rollout_edge_values_are_accepted() {
        let rollout = rollout_of(&with_rollout(
            "{ group: canary, steps: [1, 100], interval: 1s, tick: 1s, min_requests: 0,
               max_error_rate: 0, max_p99_ratio: 0.5 }",
        ));
        assert_eq!(rollout.steps, [1, 100]);
        // A tick equal to the interval is fine.
        assert_eq!(rollout.tick, rollout.interval);
        assert_eq!(rollout.min_requests, 0);
        assert_eq!(rollout.max_error_rate, 0.0);
        assert_eq!(rollout.max_p99_ratio, 0.5);
    }

    #[test]
    fn max_error_rate_forms() {
        let cases = [
            ("1%", 0.01),
            ("0.5%", 0.005),
            ("'25%'", 0.25),
            ("100%", 1.0),
            ("0%", 0.0),
            ("0.02", 0.02),
            ("1", 1.0),
            ("0", 0.0),
        ];
        for (value, expected) in cases {
            let rollout = rollout_of(&with_rollout(&format!(
                "{{ group: canary, steps: [100], interval: 1m, max_error_rate: {value} }}"
            )));
            assert_eq!(rollout.max_error_rate, expected, "{value}");
        }
    }

    #[test]
    fn bad_max_error_rates() {
        let cases = [
            ("5", "this is 500%; to mean 5 percent write `5%`"),
            ("1.5", "to mean 1.5 percent write `1.5%`"),
            ("250", "max_error_rate 250 is out of range"),
            ("-0.1", "max_error_rate -0.1 is out of range"),
            (".nan", "is out of range"),
            ("150%", "\"150%\" is above 100%"),
            ("'0.01'", "\"0.01\" has no '%'"),
            ("one", "\"one\" has no '%'"),
            ("-1%", "\"-1%\" is not a percentage"),
            ("'.5%'", "is not a percentage"),
            ("'1e1%'", "is not a percentage"),
            ("'inf%'", "is not a percentage"),
            ("'1 %'", "is not a percentage"),
            ("'%'", "is not a percentage"),
        ];
        for (value, expected) in cases {
            let found = issues(&with_rollout(&format!(
                "{{ group: canary, steps: [100], interval: 1m, max_error_rate: {value} }}"
            )));
            let message = issue_at(&found, "services[0].rollout.max_error_rate");
            assert!(message.contains(expected), "{value}: {message}");
            // Every message shows the percentage form.
            assert!(message.contains("1%"), "{value}: {message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }

    #[test]
    fn percentages() {
        let percent = |text| parse_percent(text, &ERROR_RATE_FORM);
        assert_eq!(percent("1%"), Ok(0.01));
        assert_eq!(percent("12.5%"), Ok(0.125));
        assert_eq!(percent("007%"), Ok(0.07));
        // Range is the caller's business.
        assert_eq!(percent("200%"), Ok(2.0));
        for bad in ["", "%", "1", "1.%", "1..2%", "+1%", "1%%", "NaN%"] {
            assert!(percent(bad).is_err(), "{bad:?}");
        }
        // Messages name the key and show its own example.
        let message = parse_percent("x", &BUDGET_RATIO_FORM).unwrap_err();
        assert!(message.starts_with("ratio \"x\" has no '%'"), "{message}");
        assert!(message.contains("such as 20%"), "{message}");
        assert!(message.contains("such as 0.2"), "{message}");
    }

    #[test]
    fn bad_max_p99_ratio() {
        for value in ["0", "-1", ".inf", ".nan"] {
            let found = issues(&with_rollout(&format!(
                "{{ group: canary, steps: [100], interval: 1m, max_p99_ratio: {value} }}"
            )));
            let message = issue_at(&found, "services[0].rollout.max_p99_ratio");
            assert!(
                message.contains("must be a number above 0"),
                "{value}: {message}"
            );
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }

    #[test]
    fn rollout_steps_must_climb_within_1_to_100() {
        let found = issues(&with_rollout(
            "{ group: canary, steps: [0, 5, 5, 101, 3, 50, 40], interval: 1m }",
        ));
        let message = issue_at(&found, "services[0].rollout.steps[0]");
        assert!(message.contains("step 0 is out of range"), "{message}");
        assert!(message.contains("from 1 to 100"), "{message}");
        let message = issue_at(&found, "services[0].rollout.steps[2]");
        assert!(
            message.contains("step 5 is not greater than the previous step 5"),
            "{message}"
        );
        assert!(issue_at(&found, "services[0].rollout.steps[3]").contains("101"));
        // steps[4] follows an out-of-range step, so it is not compared with it.
        let message = issue_at(&found, "services[0].rollout.steps[6]");
        assert!(message.contains("strictly increasing"), "{message}");
        assert_eq!(found.len(), 4, "{found:#?}");

        let found = issues(&with_rollout("{ group: canary, steps: [], interval: 1m }"));
        let message = issue_at(&found, "services[0].rollout.steps");
        assert!(message.contains("`steps` is empty"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn rollout_durations() {
        let found = issues(&with_rollout(
            "{ group: canary, steps: [100], interval: 0s, tick: 0ms }",
        ));
        assert!(issue_at(&found, "services[0].rollout.interval").contains("greater than 0"));
        assert!(issue_at(&found, "services[0].rollout.tick").contains("greater than 0"));
        assert_eq!(found.len(), 2, "{found:#?}");

        let found = issues(&with_rollout(
            "{ group: canary, steps: [100], interval: soon, tick: 1x }",
        ));
        assert!(issue_at(&found, "services[0].rollout.interval").contains("\"soon\""));
        assert!(issue_at(&found, "services[0].rollout.tick").contains("\"1x\""));
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn rollout_tick_may_not_exceed_the_interval() {
        let found = issues(&with_rollout(
            "{ group: canary, steps: [100], interval: 10s, tick: 11s }",
        ));
        let message = issue_at(&found, "services[0].rollout.tick");
        assert!(
            message.contains("tick 11s is longer than the interval 10s"),
            "{message}"
        );
        assert!(message.contains("at most the interval"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");

        // The default tick counts too, and the message says it was not written.
        let found = issues(&with_rollout(
            "{ group: canary, steps: [100], interval: 500ms }",
        ));
        let message = issue_at(&found, "services[0].rollout.tick");
        assert!(message.contains("the default tick 1s"), "{message}");
        let rollout = rollout_of(&with_rollout(
            "{ group: canary, steps: [100], interval: 500ms, tick: 100ms }",
        ));
        assert_eq!(rollout.tick, Duration::from_millis(100));
    }

    #[test]
    fn rollout_of_the_stable_group() {
        let found = issues(&with_rollout(
            "{ group: stable, steps: [100], interval: 1m }",
        ));
        let message = issue_at(&found, "services[0].rollout.group");
        assert!(
            message.contains("group \"stable\" is the stable group"),
            "{message}"
        );
        assert!(
            message.contains("name another group of this service: canary"),
            "{message}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn without_a_group_named_stable_the_first_group_is_stable() {
        let services = |group: &str| {
            with_services(&format!(
                "  - name: web
    groups:
      - {{ name: blue, endpoints: [127.0.0.1:1] }}
      - {{ name: green, weight: 0, endpoints: [127.0.0.1:2] }}
      - {{ name: stable, weight: 0, endpoints: [127.0.0.1:3] }}
      - {{ name: red, weight: 0, endpoints: [127.0.0.1:4] }}
    rollout: {{ group: {group}, steps: [100], interval: 1m }}
"
            ))
        };
        // A group named "stable" wins even when it is not first.
        assert_eq!(rollout_of(&services("blue")).group, "blue");
        let found = issues(&services("stable"));
        let message = issue_at(&found, "services[0].rollout.group");
        assert!(message.contains("blue, green, red"), "{message}");

        let text = with_services(
            "  - name: web
    groups:
      - { name: blue, endpoints: [127.0.0.1:1] }
      - { name: green, weight: 0, endpoints: [127.0.0.1:2] }
    rollout: { group: blue, steps: [100], interval: 1m }
",
        );
        let found = issues(&text);
        let message = issue_at(&found, "services[0].rollout.group");
        assert!(
            message.contains("\"blue\" is the stable group"),
            "{message}"
        );
        assert!(message.contains(": green"), "{message}");
    }

    #[test]
    fn rollout_of_an_unknown_group() {
        let found = issues(&with_rollout(
            "{ group: canery, steps: [100], interval: 1m }",
        ));
        let message = issue_at(&found, "services[0].rollout.group");
        assert!(message.contains("unknown group \"canery\""), "{message}");
        assert!(
            message.contains("groups this service can roll out: canary"),
            "{message}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn single_group_services_cannot_roll_out() {
        let found = issues(&with_services(
            "  - name: web
    endpoints: [127.0.0.1:1]
    rollout: { group: canary, steps: [100], interval: 1m }
  - name: api
    groups: [{ name: v1, endpoints: [127.0.0.1:2] }]
    rollout: { group: v1, steps: [100], interval: 1m }
",
        ));
        let message = issue_at(&found, "services[0].rollout");
        assert!(
            message.contains("single group (\"stable\"), so there is nothing to roll out"),
            "{message}"
        );
        assert!(message.contains("remove `rollout`"), "{message}");
        assert!(issue_at(&found, "services[1].rollout").contains("single group (\"v1\")"));
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn rollout_group_is_not_checked_when_groups_are_broken() {
        let found = issues(&with_services(
            "  - { name: web, groups: [], rollout: { group: canary, steps: [100], interval: 1m } }\n",
        ));
        assert_eq!(paths(&found), ["services[0].groups"]);
    }

    #[test]
    fn every_problem_with_the_new_keys_is_collected() {
        let text = "\
listeners:
  - { name: edge, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
services:
  - name: web
    groups:
      - { name: stable, endpoints: [127.0.0.1:1], deployment: Stable }
      - { name: canary, endpoints: [127.0.0.1:2] }
    override_header: 'a b'
    sticky: {}
    rollout:
      group: stable
      steps: [50, 10]
      interval: 0s
      max_error_rate: 2
      max_p99_ratio: 0
      tick: 0s
metrics: { namespace: Default }
state_file: ''
";
        let found = issues(text);
        assert_eq!(
            paths(&found),
            [
                "services[0].groups[0].deployment",
                "services[0].override_header",
                "services[0].sticky",
                "services[0].rollout.group",
                "services[0].rollout.steps[1]",
                "services[0].rollout.interval",
                "services[0].rollout.tick",
                "services[0].rollout.max_error_rate",
                "services[0].rollout.max_p99_ratio",
                "metrics.namespace",
                "state_file",
            ],
            "{found:#?}"
        );
    }

    // ---- listeners[].limits ----

    /// The standard config with `limits` (a flow mapping) on its listener.
    fn with_limits(limits: &str) -> String {
        format!(
            "\
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    routes:
      - {{ name: all, service: web }}
    limits: {limits}
services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
        )
    }

    fn limits_of(limits: &str) -> ListenerLimits {
        load(&with_limits(limits)).listeners[0].limits
    }

    #[test]
    fn limits_keep_the_defaults_of_keys_not_given() {
        assert_eq!(limits_of("{}"), defaults::LIMITS);
        assert_eq!(limits_of("~"), defaults::LIMITS);
        let limits = limits_of("{ max_headers: 20, body_timeout: 1m }");
        assert_eq!(
            limits,
            ListenerLimits {
                max_headers: 20,
                body_timeout: Duration::from_secs(60),
                ..defaults::LIMITS
            }
        );
    }

    #[test]
    fn limits_edge_values_are_accepted() {
        let low = limits_of(
            "{ max_connections: 1, header_read_timeout: 1ms, max_header_bytes: 8KiB,
               max_headers: 1, max_body_bytes: 1, body_timeout: 1ms, idle_timeout: 1ms,
               h2_max_concurrent_streams: 1 }",
        );
        assert_eq!(
            low,
            ListenerLimits {
                max_connections: 1,
                header_read_timeout: Duration::from_millis(1),
                max_header_bytes: 8192,
                max_headers: 1,
                max_body_bytes: Some(1),
                body_timeout: Duration::from_millis(1),
                idle_timeout: Duration::from_millis(1),
                h2_max_concurrent_streams: 1,
            }
        );
        let high = limits_of(
            "{ max_header_bytes: 1MiB, max_headers: 1000, h2_max_concurrent_streams: 10000,
               max_body_bytes: 17179869183GiB }",
        );
        assert_eq!(high.max_header_bytes, 1 << 20);
        assert_eq!(high.max_headers, 1000);
        assert_eq!(high.h2_max_concurrent_streams, 10_000);
        assert_eq!(high.max_body_bytes, Some(u64::MAX - (1 << 30) + 1));
        // A plain number is bytes; 8192 is the smallest header limit.
        assert_eq!(
            limits_of("{ max_header_bytes: 8192 }").max_header_bytes,
            8192
        );
        assert_eq!(
            limits_of("{ max_header_bytes: 1048576 }").max_header_bytes,
            1 << 20
        );
    }

    #[test]
    fn sizes_in_every_form() {
        let cases = [
            ("512B", 512),
            ("10KB", 10_000),
            ("10MB", 10_000_000),
            ("1GB", 1_000_000_000),
            ("64KiB", 65_536),
            ("10MiB", 10 << 20),
            ("1GiB", 1 << 30),
            ("12345", 12_345),
            ("'12345'", 12_345),
        ];
        for (value, expected) in cases {
            let limits = limits_of(&format!("{{ max_body_bytes: {value} }}"));
            assert_eq!(limits.max_body_bytes, Some(expected), "{value}");
        }
    }

    #[test]
    fn bad_limits_name_their_key() {
        let found = issues(&with_limits(
            "{ max_connections: 0, header_read_timeout: 0s, max_header_bytes: 8191,
               max_headers: 0, max_body_bytes: 0, body_timeout: 0ms, idle_timeout: 0s,
               h2_max_concurrent_streams: 0 }",
        ));
        let at = |key: &str| issue_at(&found, &format!("listeners[0].limits.{key}"));
        let message = at("max_connections");
        assert!(
            message.contains("max_connections 0 is out of range"),
            "{message}"
        );
        assert!(message.contains("e.g. 10000"), "{message}");
        let message = at("header_read_timeout");
        assert!(message.contains("must be greater than 0"), "{message}");
        let message = at("max_header_bytes");
        assert!(
            message.contains("max_header_bytes 8191 is below the minimum 8KiB"),
            "{message}"
        );
        assert!(
            message.contains("hyper's smallest read buffer"),
            "{message}"
        );
        assert!(message.contains("e.g. 64KiB"), "{message}");
        let message = at("max_headers");
        assert!(
            message.contains("max_headers 0 is out of range"),
            "{message}"
        );
        assert!(message.contains("from 1 to 1000"), "{message}");
        let message = at("max_body_bytes");
        assert!(
            message.contains("max_body_bytes 0 is below the minimum 1 byte;"),
            "{message}"
        );
        assert!(message.contains("remove the key for no limit"), "{message}");
        assert!(at("body_timeout").contains("greater than 0"));
        assert!(at("idle_timeout").contains("greater than 0"));
        let message = at("h2_max_concurrent_streams");
        assert!(message.contains("0 is out of range"), "{message}");
        assert!(message.contains("from 1 to 10000"), "{message}");
        assert_eq!(found.len(), 8, "{found:#?}");
    }

    #[test]
    fn limits_above_their_range() {
        let found = issues(&with_limits(
            "{ max_header_bytes: 2MiB, max_headers: 1001, h2_max_concurrent_streams: 10001 }",
        ));
        let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
        assert!(
            message.contains("max_header_bytes \"2MiB\" (2097152 bytes) is above the maximum 1MiB"),
            "{message}"
        );
        assert!(issue_at(&found, "listeners[0].limits.max_headers").contains("1001"));
        assert!(
            issue_at(&found, "listeners[0].limits.h2_max_concurrent_streams").contains("10001")
        );
        assert_eq!(found.len(), 3, "{found:#?}");

        let found = issues(&with_limits("{ max_header_bytes: 4KiB }"));
        let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
        assert!(
            message.contains("\"4KiB\" (4096 bytes) is below the minimum 8KiB"),
            "{message}"
        );
    }

    #[test]
    fn malformed_sizes_and_durations_in_limits() {
        let cases = [
            ("64kb", "unknown unit \"kb\""),
            ("64 KiB", "unknown unit \" KiB\""),
            ("-1", "it is negative"),
            ("1.5", "not a whole number"),
            ("1.5MiB", "not a whole number"),
            ("''", "it is empty"),
            ("big", "does not start with a number"),
            ("99999999999GiB", "too large"),
        ];
        for (value, expected) in cases {
            let found = issues(&with_limits(&format!("{{ max_header_bytes: {value} }}")));
            let message = issue_at(&found, "listeners[0].limits.max_header_bytes");
            assert!(message.starts_with("invalid size "), "{value}: {message}");
            assert!(message.contains(expected), "{value}: {message}");
            assert!(message.contains("e.g. 512B, 64KiB, 10MB"), "{message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
        let found = issues(&with_limits(
            "{ header_read_timeout: 10, body_timeout: soon, idle_timeout: 1x }",
        ));
        assert!(issue_at(&found, "listeners[0].limits.header_read_timeout").contains("no unit"));
        assert!(issue_at(&found, "listeners[0].limits.body_timeout").contains("\"soon\""));
        assert!(issue_at(&found, "listeners[0].limits.idle_timeout").contains("\"1x\""));
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn limits_of_the_second_listener_have_its_path() {
        let text = "\
listeners:
  - { name: a, listen: 0.0.0.0:80, routes: [{ name: r, service: web }] }
  - name: b
    listen: 0.0.0.0:81
    routes: [{ name: r, service: web }]
    limits: { max_headers: 5000 }
services:
  - { name: web, endpoints: [127.0.0.1:1] }
";
        let found = issues(text);
        assert_eq!(paths(&found), ["listeners[1].limits.max_headers"]);
    }

    #[test]
    fn show_size_picks_an_exact_unit() {
        assert_eq!(show_size(0), "0 bytes");
        assert_eq!(show_size(1), "1 byte");
        assert_eq!(show_size(1000), "1000 bytes");
        assert_eq!(show_size(8192), "8KiB");
        assert_eq!(show_size(1536 * 1024), "1536KiB");
        assert_eq!(show_size(16 << 20), "16MiB");
        assert_eq!(show_size(2 << 30), "2GiB");
    }

    // ---- services[].timeouts.idle ----

    /// The standard config with one service `web` that has `keys` (lines
    /// indented by four spaces) besides its endpoint.
    fn with_service_keys(keys: &str) -> String {
        with_services(&format!(
            "  - name: web\n    endpoints: [127.0.0.1:1]\n{keys}"
        ))
    }

    #[test]
    fn idle_timeout_of_pooled_connections() {
        let config = load(&with_service_keys("    timeouts: { idle: 90s }\n"));
        let timeouts = config.services[0].timeouts;
        assert_eq!(timeouts.idle, Duration::from_secs(90));
        // The other timeouts keep their defaults.
        assert_eq!(timeouts.connect, defaults::CONNECT_TIMEOUT);
        assert_eq!(timeouts.request, defaults::REQUEST_TIMEOUT);

        let found = issues(&with_service_keys("    timeouts: { idle: 0s }\n"));
        let message = issue_at(&found, "services[0].timeouts.idle");
        assert!(message.contains("must be greater than 0"), "{message}");
        assert!(message.contains("pooled connections"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");
        let found = issues(&with_service_keys("    timeouts: { idle: forever }\n"));
        assert!(issue_at(&found, "services[0].timeouts.idle").contains("\"forever\""));
    }

    // ---- services[].health_check ----

    fn health_of(check: &str) -> HealthCheckConfig {
        load(&with_service_keys(&format!("    health_check: {check}\n"))).services[0]
            .health_check
            .clone()
            .unwrap()
    }

    fn health_issues(check: &str) -> Vec<ConfigIssue> {
        issues(&with_service_keys(&format!("    health_check: {check}\n")))
    }

    #[test]
    fn health_check_values_and_defaults() {
        assert_eq!(
            health_of("{ path: /healthz }"),
            HealthCheckConfig {
                path: "/healthz".into(),
                interval: defaults::HEALTH_INTERVAL,
                timeout: defaults::HEALTH_TIMEOUT,
                healthy_threshold: defaults::HEALTHY_THRESHOLD,
                unhealthy_threshold: defaults::UNHEALTHY_THRESHOLD,
            }
        );
        assert_eq!(
            health_of(
                "{ path: /ready, interval: 10s, timeout: 10s, healthy_threshold: 1,
                   unhealthy_threshold: 7 }"
            ),
            HealthCheckConfig {
                path: "/ready".into(),
                interval: Duration::from_secs(10),
                // Equal to the interval is fine.
                timeout: Duration::from_secs(10),
                healthy_threshold: 1,
                unhealthy_threshold: 7,
            }
        );
        // A query and percent-encoding are part of a request target.
        assert_eq!(health_of("{ path: '/' }").path, "/");
        assert_eq!(health_of("{ path: '/a%20b?x=1&y' }").path, "/a%20b?x=1&y");
    }

    #[test]
    fn bad_health_check_paths() {
        let cases = [
            ("healthz", "must start with '/', e.g. /healthz"),
            ("''", "must start with '/'"),
            ("'/health z'", "contains ' '"),
            ("\"/a\\tb\"", "contains '\\t'"),
            ("\"/a\\x01\"", "contains '\\u{1}'"),
            ("'/healthz#top'", "contains '#'"),
            ("'/ünï'", "contains 'ü'; a request path is ASCII"),
            ("'/a<b>'", "is not a valid request path"),
        ];
        for (value, expected) in cases {
            let found = health_issues(&format!("{{ path: {value} }}"));
            let message = issue_at(&found, "services[0].health_check.path");
            assert!(message.contains(expected), "{value}: {message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }

    #[test]
    fn health_check_durations_and_thresholds() {
        let found = health_issues(
            "{ path: /h, interval: 0s, timeout: 0s, healthy_threshold: 0, unhealthy_threshold: 0 }",
        );
        let message = issue_at(&found, "services[0].health_check.interval");
        assert!(message.contains("must be greater than 0"), "{message}");
        assert!(issue_at(&found, "services[0].health_check.timeout").contains("greater than 0"));
        let message = issue_at(&found, "services[0].health_check.healthy_threshold");
        assert!(
            message.contains("healthy_threshold 0 is out of range"),
            "{message}"
        );
        assert!(message.contains("at least 1, e.g. 2"), "{message}");
        let message = issue_at(&found, "services[0].health_check.unhealthy_threshold");
        assert!(message.contains("at least 1, e.g. 3"), "{message}");
        assert_eq!(found.len(), 4, "{found:#?}");

        let found = health_issues("{ path: /h, interval: 5 }");
        assert!(issue_at(&found, "services[0].health_check.interval").contains("no unit"));
        // The timeout is not compared with an interval that did not parse.
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn health_check_timeout_may_not_exceed_the_interval() {
        let found = health_issues("{ path: /h, interval: 2s, timeout: 3s }");
        let message = issue_at(&found, "services[0].health_check.timeout");
        assert!(
            message.contains("timeout 3s is longer than interval 2s"),
            "{message}"
        );
        assert!(message.contains("at most the interval"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");

        // Defaults count too, and the message says which value was not written.
        let found = health_issues("{ path: /h, interval: 500ms }");
        let message = issue_at(&found, "services[0].health_check.timeout");
        assert!(
            message.contains("the default timeout 1s is longer than interval 500ms"),
            "{message}"
        );
        let found = health_issues("{ path: /h, timeout: 6s }");
        let message = issue_at(&found, "services[0].health_check.timeout");
        assert!(
            message.contains("timeout 6s is longer than the default interval 5s"),
            "{message}"
        );
    }

    // ---- services[].outlier ----

    fn outlier_of(outlier: &str) -> OutlierConfig {
        load(&with_service_keys(&format!("    outlier: {outlier}\n"))).services[0].outlier
    }

    fn outlier_issues(outlier: &str) -> Vec<ConfigIssue> {
        issues(&with_service_keys(&format!("    outlier: {outlier}\n")))
    }

    #[test]
    fn outlier_values_and_defaults() {
        assert_eq!(outlier_of("{}"), defaults::OUTLIER);
        assert_eq!(
            outlier_of("{ enabled: false }"),
            OutlierConfig {
                enabled: false,
                ..defaults::OUTLIER
            }
        );
        assert_eq!(
            outlier_of(
                "{ enabled: true, consecutive_failures: 1, base_ejection: 1s, max_ejection: 1s,
                   max_ejected_percent: 100 }"
            ),
            OutlierConfig {
                enabled: true,
                consecutive_failures: 1,
                base_ejection: Duration::from_secs(1),
                // Equal to base_ejection: every ejection lasts the same.
                max_ejection: Duration::from_secs(1),
                max_ejected_percent: 100,
            }
        );
        assert_eq!(
            outlier_of("{ max_ejected_percent: 0 }").max_ejected_percent,
            0
        );
    }

    #[test]
    fn bad_outlier_values() {
        let found = outlier_issues(
            "{ consecutive_failures: 0, base_ejection: 0s, max_ejection: 0s,
               max_ejected_percent: 101 }",
        );
        let message = issue_at(&found, "services[0].outlier.consecutive_failures");
        assert!(
            message.contains("consecutive_failures 0 is out of range"),
            "{message}"
        );
        assert!(message.contains("`enabled: false`"), "{message}");
        let message = issue_at(&found, "services[0].outlier.base_ejection");
        assert!(message.contains("must be greater than 0"), "{message}");
        let message = issue_at(&found, "services[0].outlier.max_ejection");
        assert!(message.contains("must be greater than 0"), "{message}");
        let message = issue_at(&found, "services[0].outlier.max_ejected_percent");
        assert!(
            message.contains("max_ejected_percent 101 is out of range"),
            "{message}"
        );
        assert!(message.contains("from 0 to 100"), "{message}");
        assert_eq!(found.len(), 4, "{found:#?}");

        // Checked even while detection is off.
        let found = outlier_issues("{ enabled: false, base_ejection: later }");
        assert!(issue_at(&found, "services[0].outlier.base_ejection").contains("\"later\""));
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn max_ejection_may_not_be_shorter_than_base_ejection() {
        let found = outlier_issues("{ base_ejection: 1m, max_ejection: 30s }");
        let message = issue_at(&found, "services[0].outlier.max_ejection");
        assert!(
            message.contains("max_ejection 30s is shorter than base_ejection 60s"),
            "{message}"
        );
        assert!(message.contains("at least `base_ejection`"), "{message}");
        assert_eq!(found.len(), 1, "{found:#?}");

        let found = outlier_issues("{ base_ejection: 10m }");
        let message = issue_at(&found, "services[0].outlier.max_ejection");
        assert!(
            message.contains("the default max_ejection 300s is shorter than base_ejection 600s"),
            "{message}"
        );
        let found = outlier_issues("{ max_ejection: 10s }");
        let message = issue_at(&found, "services[0].outlier.max_ejection");
        assert!(
            message.contains("shorter than the default base_ejection 30s"),
            "{message}"
        );
    }

    // ---- services[].retry ----

    fn retry_of(retry: &str) -> RetryConfig {
        load(&with_service_keys(&format!("    retry: {retry}\n"))).services[0].retry
    }

    fn retry_issues(retry: &str) -> Vec<ConfigIssue> {
        issues(&with_service_keys(&format!("    retry: {retry}\n")))
    }

    #[test]
    fn retry_values_and_defaults() {
        assert_eq!(retry_of("{}"), defaults::RETRY);
        assert_eq!(
            retry_of(
                "{ attempts: 10, on: [timeout], per_try_timeout: 30s, buffer_bytes: 16MiB,
                   budget: { ratio: 1, min_per_second: 0 } }"
            ),
            RetryConfig {
                attempts: 10,
                on: RetryOn {
                    server_error: false,
                    reset: false,
                    timeout: true,
                },
                // Equal to the default request timeout is fine.
                per_try_timeout: Some(Duration::from_secs(30)),
                buffer_bytes: 16 << 20,
                budget_ratio: 1.0,
                budget_min_per_second: 0,
            }
        );
        // Each budget key defaults on its own.
        let retry = retry_of("{ attempts: 0, buffer_bytes: 0, budget: { min_per_second: 3 } }");
        assert_eq!(retry.attempts, 0);
        assert_eq!(retry.buffer_bytes, 0);
        assert_eq!(retry.budget_ratio, defaults::RETRY_BUDGET_RATIO);
        assert_eq!(retry.budget_min_per_second, 3);
        assert_eq!(
            retry_of("{ budget: {} }").budget_ratio,
            defaults::RETRY_BUDGET_RATIO
        );
    }

    #[test]
    fn retry_on_any_subset() {
        let on = |list: &str| retry_of(&format!("{{ on: {list} }}")).on;
        let flags = |on: RetryOn| (on.server_error, on.reset, on.timeout);
        assert_eq!(flags(on("[]")), (false, false, false));
        assert_eq!(flags(on("[5xx]")), (true, false, false));
        assert_eq!(flags(on("[reset]")), (false, true, false));
        assert_eq!(flags(on("[timeout, 5xx]")), (true, false, true));
        assert_eq!(flags(on("[timeout, reset, 5xx]")), (true, true, true));
    }

    #[test]
    fn bad_retry_on_words() {
        let found = retry_issues("{ on: [5xx, 503, reset, Timeout, reset, 5xx] }");
        let message = issue_at(&found, "services[0].retry.on[1]");
        assert!(
            message.contains("unknown retry condition \"503\""),
            "{message}"
        );
        assert!(message.contains("any of 5xx"), "{message}");
        assert!(message.contains("reset"), "{message}");
        assert!(message.contains("timeout"), "{message}");
        assert!(issue_at(&found, "services[0].retry.on[3]").contains("\"Timeout\""));
        let message = issue_at(&found, "services[0].retry.on[4]");
        assert!(
            message.contains("\"reset\" is listed twice (first at services[0].retry.on[2])"),
            "{message}"
        );
        let message = issue_at(&found, "services[0].retry.on[5]");
        assert!(
            message.contains("first at services[0].retry.on[0]"),
            "{message}"
        );
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn bad_retry_values() {
        let found = retry_issues(
            "{ attempts: 11, per_try_timeout: 0s, buffer_bytes: 16777217,
               budget: { ratio: 1.5 } }",
        );
        let message = issue_at(&found, "services[0].retry.attempts");
        assert!(message.contains("attempts 11 is out of range"), "{message}");
        assert!(message.contains("from 0 (no retries) to 10"), "{message}");
        let message = issue_at(&found, "services[0].retry.per_try_timeout");
        assert!(message.contains("must be greater than 0"), "{message}");
        let message = issue_at(&found, "services[0].retry.buffer_bytes");
        assert!(
            message.contains("buffer_bytes 16777217 is above the maximum 16MiB"),
            "{message}"
        );
        let message = issue_at(&found, "services[0].retry.budget.ratio");
        assert!(
            message.contains("ratio 1.5 is above 1: a plain number is a fraction (0.2 = 20%)"),
            "{message}"
        );
        assert!(message.contains("write `1.5%`"), "{message}");
        assert_eq!(found.len(), 4, "{found:#?}");

        let found = retry_issues("{ per_try_timeout: 1, buffer_bytes: 64KB/s }");
        assert!(issue_at(&found, "services[0].retry.per_try_timeout").contains("no unit"));
        assert!(issue_at(&found, "services[0].retry.buffer_bytes").contains("unknown unit"));
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn retry_budget_ratio_forms() {
        let cases = [
            ("0.2", 0.2),
            ("20%", 0.2),
            ("'12.5%'", 0.125),
            ("0", 0.0),
            ("0%", 0.0),
            ("1", 1.0),
            ("100%", 1.0),
        ];
        for (value, expected) in cases {
            let retry = retry_of(&format!("{{ budget: {{ ratio: {value} }} }}"));
            assert_eq!(retry.budget_ratio, expected, "{value}");
        }
        let cases = [
            ("20", "to mean 20 percent write `20%`"),
            ("-0.5", "ratio -0.5 is out of range"),
            ("150%", "ratio \"150%\" is above 100%"),
            ("'-5%'", "ratio \"-5%\" is not a percentage"),
            ("lots", "ratio \"lots\" has no '%'"),
        ];
        for (value, expected) in cases {
            let found = retry_issues(&format!("{{ budget: {{ ratio: {value} }} }}"));
            let message = issue_at(&found, "services[0].retry.budget.ratio");
            assert!(message.contains(expected), "{value}: {message}");
            assert!(message.contains("20%"), "{value}: {message}");
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }

    #[test]
    fn per_try_timeout_may_not_exceed_the_request_timeout() {
        let found = issues(&with_service_keys(
            "    timeouts: { request: 2s }\n    retry: { per_try_timeout: 3s }\n",
        ));
        let message = issue_at(&found, "services[0].retry.per_try_timeout");
        assert!(
            message.contains("per_try_timeout 3s is longer than the request timeout 2s"),
            "{message}"
        );
        assert!(
            message.contains("set it to at most 2s or raise `timeouts.request`"),
            "{message}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");

        let found = retry_issues("{ per_try_timeout: 31s }");
        let message = issue_at(&found, "services[0].retry.per_try_timeout");
        assert!(
            message.contains("longer than the default request timeout 30s"),
            "{message}"
        );

        let config = load(&with_service_keys(
            "    timeouts: { request: 2s }\n    retry: { per_try_timeout: 2s }\n",
        ));
        assert_eq!(
            config.services[0].retry.per_try_timeout,
            Some(Duration::from_secs(2))
        );

        // A broken request timeout is reported once, not compared with.
        let found = issues(&with_service_keys(
            "    timeouts: { request: 0s }\n    retry: { per_try_timeout: 1h }\n",
        ));
        assert_eq!(paths(&found), ["services[0].timeouts.request"]);
    }

    #[test]
    fn every_problem_with_the_resilience_keys_is_collected() {
        let text = "\
listeners:
  - name: edge
    listen: 0.0.0.0:80
    routes: [{ name: r, service: web }]
    limits: { max_connections: 0, max_header_bytes: 1KiB, h2_max_concurrent_streams: 0 }
services:
  - name: web
    endpoints: [127.0.0.1:1]
    timeouts: { request: 1s, idle: 0s }
    health_check: { path: healthz, interval: 1s, timeout: 2s, unhealthy_threshold: 0 }
    outlier: { consecutive_failures: 0, base_ejection: 1m, max_ejection: 1s }
    retry:
      attempts: 99
      on: [5xx, gateway]
      per_try_timeout: 5s
      buffer_bytes: 1TB
      budget: { ratio: 2 }
";
        let found = issues(text);
        assert_eq!(
            paths(&found),
            [
                "listeners[0].limits.max_connections",
                "listeners[0].limits.max_header_bytes",
                "listeners[0].limits.h2_max_concurrent_streams",
                "services[0].timeouts.idle",
                "services[0].health_check.path",
                "services[0].health_check.timeout",
                "services[0].health_check.unhealthy_threshold",
                "services[0].outlier.consecutive_failures",
                "services[0].outlier.max_ejection",
                "services[0].retry.attempts",
                "services[0].retry.on[1]",
                "services[0].retry.per_try_timeout",
                "services[0].retry.buffer_bytes",
                "services[0].retry.budget.ratio",
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

    #[test]
    fn listener_tls_takes_one_pair_or_a_list() {
        let tls = |tls: &str| {
            format!(
                "\
listeners:
  - name: edge
    listen: 0.0.0.0:8443
    tls: {tls}
    routes:
      - {{ name: all, service: web }}
services:
  - {{ name: web, endpoints: [127.0.0.1:9000] }}
"
            )
        };
        let config = load(&tls(
            "{ cert: /tls/a.crt, key: /tls/a.key, client_ca: /tls/ca.pem }",
        ));
        let listener_tls = config.listeners[0].tls.as_ref().unwrap();
        assert_eq!(
            listener_tls.certificates,
            [CertificateFiles {
                cert: "/tls/a.crt".into(),
                key: "/tls/a.key".into()
            }]
        );
        assert_eq!(listener_tls.client_ca, Some(PathBuf::from("/tls/ca.pem")));
        let config = load(&tls(
            "{ certificates: [{ cert: a.crt, key: a.key }, { cert: b.crt, key: b.key }] }",
        ));
        assert_eq!(
            config.listeners[0].tls.as_ref().unwrap().certificates.len(),
            2
        );

        let both = issues(&tls(
            "{ cert: a, key: b, certificates: [{ cert: c, key: d }] }",
        ));
        assert!(issue_at(&both, "listeners[0].tls").contains("not both"));
        let neither = issues(&tls("{ client_ca: ca.pem }"));
        assert!(issue_at(&neither, "listeners[0].tls").contains("needs a certificate"));
        let half = issues(&tls("{ cert: a.crt }"));
        assert!(issue_at(&half, "listeners[0].tls.key").contains("without `key`"));
        let empty = issues(&tls("{ certificates: [] }"));
        assert!(issue_at(&empty, "listeners[0].tls.certificates").contains("empty"));
        let blank = issues(&tls("{ cert: '', key: a.key }"));
        assert!(issue_at(&blank, "listeners[0].tls.cert").contains("empty"));
        let unknown = raw::parse(&tls("{ cert: a, key: b, ciphers: all }")).unwrap_err();
        assert!(unknown.to_string().contains("ciphers"), "{unknown}");
    }

    #[test]
    fn client_identity_needs_a_listener_that_verifies_clients() {
        let yaml = with_routes(
            "      - { name: web, match: { client_identity: 'spiffe://cluster.local/ns/a/sa/web' }, service: web }\n      - { name: all, service: web }\n",
        );
        let found = issues(&yaml);
        assert!(
            issue_at(&found, "listeners[0].routes[0].match.client_identity").contains("client_ca"),
            "{found:?}"
        );
        // A route whose only condition is an identity is not a catch-all.
        assert!(!paths(&found).contains(&"listeners[0].routes[1]"));
        let verified = yaml.replace(
            "    routes:",
            "    tls: { cert: a.crt, key: a.key, client_ca: ca.pem }\n    routes:",
        );
        let config = load(&verified);
        assert_eq!(
            config.listeners[0].routes[0]
                .matches
                .client_identity
                .as_deref(),
            Some("spiffe://cluster.local/ns/a/sa/web")
        );
    }

    #[test]
    fn upstream_tls_checks_its_keys() {
        let config = load(&with_services(
            "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: { ca: ca.pem, server_name: api.internal, cert: c.crt, key: c.key }\n",
        ));
        assert_eq!(
            config.services[0].tls,
            Some(UpstreamTls {
                ca: Some("ca.pem".into()),
                server_name: Some("api.internal".into()),
                client_certificate: Some(CertificateFiles {
                    cert: "c.crt".into(),
                    key: "c.key".into()
                }),
                insecure_skip_verify: false,
            })
        );
        let defaults = load(&with_services(
            "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: {}\n",
        ));
        let tls = defaults.services[0].tls.as_ref().unwrap();
        assert_eq!((tls.ca.as_ref(), tls.insecure_skip_verify), (None, false));

        let found = issues(&with_services(
            "  - name: web\n    endpoints: [127.0.0.1:9000]\n    tls: { ca: ca.pem, insecure_skip_verify: true, server_name: 'not a name', key: k.pem }\n",
        ));
        assert!(issue_at(&found, "services[0].tls.insecure_skip_verify").contains("remove one"));
        assert!(issue_at(&found, "services[0].tls.server_name").contains("neither"));
        assert!(issue_at(&found, "services[0].tls.cert").contains("without `cert`"));
    }

    #[test]
    fn a_public_admin_address_needs_a_token_or_an_explicit_opt_out() {
        let admin = |admin: &str| {
            format!(
                "admin: {admin}\n{}",
                with_services("  - { name: web, endpoints: [127.0.0.1:9000] }\n")
            )
        };
        let found = issues(&admin("{ listen: 0.0.0.0:9901 }"));
        let message = issue_at(&found, "admin.listen");
        assert!(message.contains("token_file"), "{message}");
        assert!(message.contains("allow_unauthenticated_admin"), "{message}");

        let config = load(&admin(
            "{ listen: 0.0.0.0:9901, token_file: /etc/luas/token }",
        ));
        assert_eq!(
            config.admin.token_file,
            Some(PathBuf::from("/etc/luas/token"))
        );
        let config = load(&admin(
            "{ listen: '[::]:9901', allow_unauthenticated_admin: true }",
        ));
        assert!(config.admin.allow_unauthenticated_admin);
        // Loopback needs neither, IPv6 included.
        let config = load(&admin("{ listen: '[::1]:9901' }"));
        assert_eq!(config.admin.token_file, None);
        assert!(!config.admin.allow_unauthenticated_admin);
    }
}
