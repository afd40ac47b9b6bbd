//! The groups of a service: where its endpoints come from and what they are
//! called in metrics.
//!
//! A service has either `endpoints` (one implicit `stable` group), the `dns`
//! shorthand, or weighted `groups`, each with listed `endpoints` or a `dns`
//! name, never both; endpoints are unique across a service; some group has a
//! weight above zero; `deployment` names are Kubernetes names when the
//! linkerd-compatible series carry them. `discovery.resolvers`, the name
//! servers of every `dns` group, is checked here too. The `NAME:PORT` syntax
//! belongs to `DnsTarget` (`config/dns.rs`). Called from `services`; the group
//! pick (`split`) and rollouts are checked elsewhere.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::values::{k8s_name_problem, K8S_NAME_FORM};
use super::Checker;
use crate::config::dns::DnsTarget;
use crate::config::raw::{RawDiscovery, RawGroup, RawKubernetesEndpoints, RawPort, RawService};
use crate::config::{
    defaults, DiscoveryConfig, DnsConfig, GroupConfig, KubernetesEndpoints, ServicePort,
};

impl Checker {
    pub(super) fn groups(
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
            (None, None) if raw.dns.is_none() && raw.kubernetes.is_none() => self.issue(
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
        if raw.kubernetes.is_some()
            && (raw.groups.is_some() || raw.endpoints.is_some() || raw.dns.is_some())
        {
            self.issue(
                format!("{path}.kubernetes"),
                "the service has `kubernetes` and also `endpoints`, `dns` or `groups`; \
                 `kubernetes` here is the shorthand for a single group whose endpoints come \
                 from a Kubernetes Service: give only it, or move it into a group",
            );
        }
        self.refresh_without_dns(path, raw.refresh.as_deref(), raw.dns.as_deref());

        let mut groups = Vec::new();
        let shorthand = match (&raw.endpoints, &raw.dns, &raw.kubernetes) {
            (Some(endpoints), _, _) => Some((
                self.endpoints(&format!("{path}.endpoints"), endpoints, &mut seen),
                None,
                None,
            )),
            (None, Some(dns), _) if raw.groups.is_none() => Some((
                Vec::new(),
                self.dns(path, dns, raw.refresh.as_deref()),
                None,
            )),
            (None, None, Some(kubernetes)) if raw.groups.is_none() => Some((
                Vec::new(),
                None,
                self.kubernetes_endpoints(&format!("{path}.kubernetes"), kubernetes),
            )),
            _ => None,
        };
        if let Some((endpoints, dns, kubernetes)) = shorthand {
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
                name: defaults::DEFAULT_GROUP.to_owned(),
                weight: defaults::DEFAULT_WEIGHT,
                endpoints,
                dns,
                kubernetes,
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
            let kubernetes = match &group.kubernetes {
                None => None,
                Some(_) if group.endpoints.is_some() || group.dns.is_some() => {
                    self.issue(
                        format!("{path}.kubernetes"),
                        "the group has `kubernetes` and also `endpoints` or `dns`; give one \
                         source of endpoints",
                    );
                    None
                }
                Some(raw) => self.kubernetes_endpoints(&format!("{path}.kubernetes"), raw),
            };
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
                (None, None) if group.kubernetes.is_some() => (Vec::new(), None),
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
                kubernetes,
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

    /// The `dns` and `refresh` keys of a group (or of the service
    /// shorthand) at `path`; None when either is invalid (and reported).
    fn dns(&mut self, path: &str, text: &str, refresh: Option<&str>) -> Option<DnsConfig> {
        let target = text
            .parse::<DnsTarget>()
            .map_err(|why| self.issue(format!("{path}.dns"), why.to_string()))
            .ok();
        let refresh = self.duration_or(
            &format!("{path}.refresh"),
            refresh,
            defaults::DNS_REFRESH,
            Some("the name would be looked up in a busy loop"),
        );
        let (DnsTarget { name, port }, refresh) = (target?, refresh?);
        Some(DnsConfig {
            name,
            port,
            refresh,
        })
    }

    /// `kubernetes: { service, port, namespace }` at `path`; None when any
    /// part is invalid (and reported).
    fn kubernetes_endpoints(
        &mut self,
        path: &str,
        raw: &RawKubernetesEndpoints,
    ) -> Option<KubernetesEndpoints> {
        let mut valid = true;
        if let Some(problem) = k8s_name_problem(&raw.service) {
            self.issue(
                format!("{path}.service"),
                format!(
                    "Service name {:?} {problem}; name the Kubernetes Service whose \
                     EndpointSlices hold the group's pods; {K8S_NAME_FORM}",
                    raw.service
                ),
            );
            valid = false;
        }
        if let Some(namespace) = &raw.namespace {
            if let Some(problem) = k8s_name_problem(namespace) {
                self.issue(
                    format!("{path}.namespace"),
                    format!("namespace {namespace:?} {problem}; {K8S_NAME_FORM}"),
                );
                valid = false;
            }
        }
        let port = match &raw.port {
            RawPort::Number(number) => match u16::try_from(*number) {
                Ok(number) if number > 0 => Some(ServicePort::Number(number)),
                _ => {
                    self.issue(
                        format!("{path}.port"),
                        format!(
                            "port {number} is not a port; give the Service port's name (e.g. \
                             http) or the number the pods serve on, 1 to 65535"
                        ),
                    );
                    None
                }
            },
            RawPort::Name(name) => {
                // IANA service names, as Kubernetes requires of port names.
                let well_formed = !name.is_empty()
                    && name.len() <= 15
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && name.chars().any(|c| c.is_ascii_lowercase())
                    && !name.starts_with('-')
                    && !name.ends_with('-')
                    && !name.contains("--");
                if well_formed {
                    Some(ServicePort::Name(name.clone()))
                } else {
                    self.issue(
                        format!("{path}.port"),
                        format!(
                            "port {name:?} is not a Kubernetes port name (1 to 15 lower-case \
                             letters, digits and '-', with a letter); give the Service port's \
                             name or its number"
                        ),
                    );
                    None
                }
            }
        };
        Some(KubernetesEndpoints {
            service: raw.service.clone(),
            port: port?,
            namespace: raw.namespace.clone(),
        })
        .filter(|_| valid)
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

    pub(super) fn discovery(&mut self, raw: Option<RawDiscovery>) -> DiscoveryConfig {
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
}
