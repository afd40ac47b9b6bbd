//! Building a [`Snapshot`] from a validated `Config`, reusing what must
//! outlive it from the previous snapshot: endpoint statistics and connection
//! pools keyed by (service, group, address) while their settings are
//! unchanged, and each service's client and retry budget keyed by service
//! name. Pure apart from binding metric handles; no I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use std::sync::atomic::AtomicBool;

use super::{Group, Listener, Overrides, Service, Snapshot, UpstreamTlsSet};
use crate::balance::Balancer;
use crate::client::UpstreamClient;
use crate::config::{Config, RouteFilter};
use crate::endpoint::{Endpoint, EndpointStats, StatsSettings};
use crate::filter::{MirrorFilter, RateLimiter, RouteFilters};
use crate::metrics::{EndpointMetrics, Metrics, NO_ROUTE};
use crate::retry::RetryBudget;
use crate::route::{Route, RouteTable};
use crate::split::Split;

pub(super) fn build(
    config: Config,
    overrides: &Overrides,
    upstream_tls: &UpstreamTlsSet,
    metrics: &Metrics,
    previous: Option<&Snapshot>,
) -> Snapshot {
    let now = Instant::now();
    let mut old_stats: HashMap<(&str, &str, SocketAddr), &Arc<EndpointStats>> = HashMap::new();
    let mut old_clients: HashMap<&str, (&Arc<UpstreamClient>, &crate::config::Timeouts)> =
        HashMap::new();
    let mut old_budgets: HashMap<&str, &Arc<RetryBudget>> = HashMap::new();
    if let Some(previous) = previous {
        for service in &previous.services {
            old_budgets.insert(&service.name, &service.budget);
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

    let services: Vec<Service> = config
        .services
        .iter()
        .map(|service| {
            let tls = upstream_tls.get(&service.name);
            // A new client never uses the old one's connections (see `client`).
            let client = match old_clients.get(service.name.as_str()) {
                Some((client, timeouts))
                    if client.protocol() == service.protocol
                        && **timeouts == service.timeouts
                        && client.same_tls(tls) =>
                {
                    Arc::clone(client)
                }
                _ => Arc::new(UpstreamClient::new(
                    service.protocol,
                    &service.timeouts,
                    tls.cloned(),
                )),
            };
            let groups: Vec<Group> = service
                .groups
                .iter()
                .map(|group| {
                    let endpoints = group
                        .endpoints
                        .iter()
                        .map(|&address| {
                            let key = (service.name.as_str(), group.name.as_str(), address);
                            let settings = StatsSettings {
                                ewma: service.ewma,
                                deployment: group.deployment.clone(),
                            };
                            let stats = match old_stats.get(&key) {
                                // Settings changed by a reload need fresh stats.
                                Some(stats) if stats.settings == settings => Arc::clone(stats),
                                _ => Arc::new(EndpointStats::new(
                                    settings,
                                    EndpointMetrics {
                                        linkerd: metrics.linkerd(&group.deployment),
                                        ..metrics.endpoint(
                                            &service.name,
                                            &group.name,
                                            &address.to_string(),
                                        )
                                    },
                                    now,
                                )),
                            };
                            Endpoint::new(address, stats)
                        })
                        .collect();
                    Group {
                        name: group.name.clone(),
                        weight: group.weight,
                        endpoints,
                        balancer: Balancer::new(service.balancer)
                            .with_slow_start(service.slow_start),
                        in_panic: AtomicBool::new(false),
                        rolled_back: overrides
                            .services
                            .get(&service.name)
                            .is_some_and(|entry| entry.rolled_back_groups.contains(&group.name)),
                    }
                })
                .collect();
            for group in &service.groups {
                metrics
                    .group_weight(&service.name, &group.name)
                    .set(i64::from(group.weight));
            }
            let mut split = Split::new(service.groups.iter().map(|group| group.weight));
            if let Some(header) = &service.split.override_header {
                let open = groups
                    .iter()
                    .map(|group: &Group| (!group.rolled_back).then(|| group.name.clone()));
                split = split.with_override_header(header.clone(), open.collect());
            }
            if let Some(sticky) = &service.split.sticky {
                split = split.with_sticky_key(sticky.clone());
            }
            Service {
                name: service.name.clone(),
                split,
                groups,
                client,
                timeouts: service.timeouts,
                retry: service.retry,
                outlier: service.outlier,
                grpc: service.grpc,
                budget: match old_budgets.get(service.name.as_str()) {
                    Some(budget)
                        if budget.settings()
                            == (
                                service.retry.budget_ratio,
                                service.retry.budget_min_per_second,
                            ) =>
                    {
                        Arc::clone(budget)
                    }
                    _ => Arc::new(RetryBudget::new(
                        service.retry.budget_ratio,
                        service.retry.budget_min_per_second,
                        now,
                    )),
                },
                metrics: metrics.service(&service.name),
            }
        })
        .collect();

    let listeners = config
        .listeners
        .iter()
        .map(|listener| Listener {
            name: listener.name.clone(),
            limits: listener.limits,
            routes: RouteTable::new(
                listener
                    .routes
                    .iter()
                    .map(|route| Route {
                        name: route.name.clone(),
                        matches: route.matches.clone(),
                        filters: route_filters(&listener.name, route, &services, metrics),
                        service: route.service,
                        timeouts: route.timeouts,
                        retry: route.retry,
                        metrics: metrics.route(&listener.name, &route.name),
                    })
                    .collect(),
            ),
            unmatched: metrics.route(&listener.name, NO_ROUTE),
        })
        .collect();

    let snapshot = Snapshot {
        config: Arc::new(config),
        listeners,
        services,
    };
    if let Some(previous) = previous {
        forget_removed_series(previous, &snapshot, metrics);
    }
    snapshot
}

/// Drops the series of routes, services, groups and endpoints the new
/// snapshot no longer has, so dashboards do not show their last values
/// forever.
fn forget_removed_series(previous: &Snapshot, next: &Snapshot, metrics: &Metrics) {
    for listener in &previous.listeners {
        let next_listener = next.listeners.iter().find(|l| l.name == listener.name);
        for route in &listener.routes.routes {
            let kept = next_listener.is_some_and(|l| {
                l.routes
                    .routes
                    .iter()
                    .any(|candidate| candidate.name == route.name)
            });
            if !kept {
                metrics.remove_route(&listener.name, &route.name);
            }
        }
    }
    for service in &previous.services {
        let next_service = next.service(&service.name);
        if next_service.is_none() {
            metrics.remove_service(&service.name);
        }
        for group in &service.groups {
            let next_group =
                next_service.and_then(|s| s.groups.iter().find(|g| g.name == group.name));
            if next_group.is_none() {
                metrics.remove_group(&service.name, &group.name);
            }
            for endpoint in &group.endpoints {
                let kept = next_group
                    .is_some_and(|g| g.endpoints.iter().any(|e| e.address == endpoint.address));
                if !kept {
                    metrics.remove_endpoint(
                        &service.name,
                        &group.name,
                        &endpoint.address.to_string(),
                    );
                }
            }
        }
    }
}

/// A route's filters with their state: a bucket table per rate limit, and
/// per mirror its target resolved to indices, with the mirror series of the
/// target's endpoints bound now rather than on the first copy.
fn route_filters(
    listener: &str,
    route: &crate::config::RouteConfig,
    services: &[Service],
    metrics: &Metrics,
) -> RouteFilters {
    let mut filters = RouteFilters {
        list: route.filters.clone(),
        ..RouteFilters::default()
    };
    for filter in &route.filters {
        match filter {
            RouteFilter::RateLimit(limit) => filters.rate_limiters.push(RateLimiter::new(
                limit.clone(),
                metrics.rate_limited(listener, &route.name),
            )),
            RouteFilter::Mirror(mirror) => {
                let service = &services[mirror.service];
                let group = mirror
                    .group
                    .as_deref()
                    .and_then(|name| service.groups.iter().position(|group| group.name == name));
                for (index, target) in service.groups.iter().enumerate() {
                    if group.is_some_and(|group| group != index) {
                        continue;
                    }
                    for endpoint in &target.endpoints {
                        endpoint.stats.mirror.get_or_init(|| {
                            metrics.mirror_series(
                                &service.name,
                                &target.name,
                                &endpoint.address.to_string(),
                            )
                        });
                    }
                }
                let shed = metrics.mirror_shed(listener, &route.name, &service.name);
                filters.mirrors.push(MirrorFilter::new(mirror, group, shed));
            }
            _ => {}
        }
    }
    filters
}
