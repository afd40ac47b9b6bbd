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
mod tests;
