//! Building a [`Snapshot`] from a validated `Config`, reusing what must
//! outlive it from the previous snapshot: endpoint statistics keyed by
//! (service, group, address) and connection pools keyed by service name (when
//! the service's protocol and timeouts did not change). Pure apart from
//! binding metric handles; no I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::{Group, ListenerRoutes, Service, Snapshot};
use crate::balance::ewma::PeakEwma;
use crate::balance::Balancer;
use crate::client::{H2Slot, UpstreamClient};
use crate::config::Config;
use crate::endpoint::{Endpoint, EndpointStats};
use crate::metrics::{EndpointMetrics, Metrics, NO_ROUTE};
use crate::route::{Route, RouteTable};
use crate::split::Split;

pub(super) fn build(config: Config, metrics: &Metrics, previous: Option<&Snapshot>) -> Snapshot {
    let now = Instant::now();
    let mut old_stats: HashMap<(&str, &str, SocketAddr), &Arc<EndpointStats>> = HashMap::new();
    let mut old_clients: HashMap<&str, (&Arc<UpstreamClient>, &crate::config::Timeouts)> =
        HashMap::new();
    if let Some(previous) = previous {
        for service in &previous.services {
            old_clients.insert(&service.name, (&service.client, &service.timeouts));
            for group in &service.groups {
                for endpoint in &group.endpoints {
                    old_stats.insert(
                        (&service.name, &group.name, endpoint.address),
                        &endpoint.stats,
                    );
                }
            }
        }
    }

    let services = config
        .services
        .iter()
        .map(|service| {
            let client = match old_clients.get(service.name.as_str()) {
                Some((client, timeouts))
                    if client.protocol() == service.protocol && **timeouts == service.timeouts =>
                {
                    Arc::clone(client)
                }
                _ => Arc::new(UpstreamClient::new(service.protocol, &service.timeouts)),
            };
            let groups = service
                .groups
                .iter()
                .map(|group| {
                    let endpoints = group
                        .endpoints
                        .iter()
                        .map(|&address| {
                            let key = (service.name.as_str(), group.name.as_str(), address);
                            let stats = match old_stats.get(&key) {
                                Some(stats) => Arc::clone(stats),
                                None => Arc::new(EndpointStats {
                                    ewma: PeakEwma::new(
                                        service.ewma.decay,
                                        service.ewma.default_rtt,
                                        now,
                                    ),
                                    metrics: EndpointMetrics {
                                        linkerd: metrics.linkerd(&group.deployment),
                                        ..metrics.endpoint(
                                            &service.name,
                                            &group.name,
                                            &address.to_string(),
                                        )
                                    },
                                    failure_penalty: service.ewma.failure_penalty,
                                    h2: H2Slot::default(),
                                }),
                            };
                            Endpoint::new(address, stats)
                        })
                        .collect();
                    Group {
                        name: group.name.clone(),
                        weight: group.weight,
                        endpoints,
                        balancer: Balancer::new(service.balancer),
                    }
                })
                .collect();
            for group in &service.groups {
                metrics
                    .group_weight(&service.name, &group.name)
                    .set(i64::from(group.weight));
            }
            Service {
                name: service.name.clone(),
                split: Split::new(service.groups.iter().map(|group| group.weight)),
                groups,
                client,
                timeouts: service.timeouts,
                override_header: service.split.override_header.clone(),
                sticky: service.split.sticky.clone(),
            }
        })
        .collect();

    let listeners = config
        .listeners
        .iter()
        .map(|listener| ListenerRoutes {
            name: listener.name.clone(),
            routes: RouteTable {
                routes: listener
                    .routes
                    .iter()
                    .map(|route| Route {
                        name: route.name.clone(),
                        matches: route.matches.clone(),
                        service: route.service,
                        metrics: metrics.route(&listener.name, &route.name),
                    })
                    .collect(),
            },
            unmatched: metrics.route(&listener.name, NO_ROUTE),
        })
        .collect();

    Snapshot {
        config: Arc::new(config),
        listeners,
        services,
    }
}
