//! The snapshot: everything a request needs, immutable once built.
//!
//! Built by `build` from a validated `Config`, stored by the writer
//! (`writer::State`), read by every request with one atomic load. Holds the
//! effective config, each listener's routes and limits, and each service's
//! split, groups, endpoints, client and retry budget.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::balance::Balancer;
use crate::client::UpstreamClient;
use crate::config::{Config, GrpcConfig, ListenerLimits, OutlierConfig, RetryConfig, Timeouts};
use crate::endpoint::Endpoint;
use crate::metrics::{RouteMetrics, ServiceMetrics};
use crate::retry::RetryBudget;
use crate::route::RouteTable;
use crate::split::Split;

/// Everything a request needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// The effective config: the file's, with runtime overrides applied.
    pub config: Arc<Config>,
    /// In the order of `config.listeners`.
    pub listeners: Vec<Listener>,
    /// In the order of `config.services`; routes refer to them by index.
    pub services: Vec<Service>,
}

/// A listener as requests see it: its routes, and the limits read per
/// request, so nothing indexes the config by the listener's position.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub routes: RouteTable,
    /// The config's limits; of these only the body limits are read per
    /// request (the rest are fixed when the listener starts).
    pub limits: ListenerLimits,
    /// Handles for requests that matched no route.
    pub unmatched: RouteMetrics,
}

#[derive(Debug)]
pub struct Service {
    pub name: String,
    /// The group pick: weights, override header, sticky key.
    pub split: Split,
    pub groups: Vec<Group>,
    pub client: Arc<UpstreamClient>,
    pub timeouts: Timeouts,
    pub retry: RetryConfig,
    pub outlier: OutlierConfig,
    /// Which gRPC statuses count as the endpoint's failure.
    pub grpc: GrpcConfig,
    /// Carried over across snapshots while its settings stay the same.
    pub budget: Arc<RetryBudget>,
    pub metrics: ServiceMetrics,
}

#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub weight: u32,
    pub endpoints: Vec<Endpoint>,
    pub balancer: Balancer,
    /// Set while picks ignore health because no endpoint is eligible, so the
    /// log says when panic mode starts and ends, not once per request.
    pub in_panic: AtomicBool,
    /// A rollback set this group to 0: the override header cannot reach it
    /// until its weights are changed again.
    pub rolled_back: bool,
}

impl Snapshot {
    /// True when every service has at least one endpoint it can send to.
    pub fn every_service_has_an_endpoint(&self) -> bool {
        self.services.iter().all(|service| {
            service
                .groups
                .iter()
                .any(|group| group.weight > 0 && !group.endpoints.is_empty())
        })
    }

    /// True when every group whose endpoints come from DNS has had a
    /// successful lookup. A discovered set is only ever replaced by another
    /// non-empty one (failed and empty lookups keep it), so a DNS group has
    /// resolved exactly when it has endpoints.
    /// Every `dns` group that takes traffic (weight above 0) has addresses.
    /// A weight-0 group (a canary with no pods yet) does not hold up
    /// readiness.
    pub fn every_dns_group_resolved(&self) -> bool {
        self.config
            .services
            .iter()
            .flat_map(|service| &service.groups)
            .filter(|group| (group.dns.is_some() || group.kubernetes.is_some()) && group.weight > 0)
            .all(|group| !group.endpoints.is_empty())
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.name == name)
    }
}
