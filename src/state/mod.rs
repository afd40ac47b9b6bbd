//! The running configuration: one immutable [`Snapshot`] behind one `ArcSwap`.
//!
//! Readers (every request) take the current snapshot with one atomic load and
//! an `Arc` clone; they never wait and never see half an update. Writers go
//! through [`State::update`], which holds the one writer lock while it builds
//! and validates the whole next snapshot, then stores it atomically. Requests
//! already running finish on the snapshot they started with.
//!
//! Long-lived per-endpoint statistics and per-service connection pools live
//! outside the snapshot and are carried over by key (see [`build`]), so a
//! reload loses no latency history and no pooled connection. This module does
//! not read files or watch for changes; callers hand it a validated `Config`.

mod build;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::balance::Balancer;
use crate::client::UpstreamClient;
use crate::config::{Config, Timeouts};
use crate::endpoint::Endpoint;
use crate::metrics::{Metrics, RouteMetrics};
use crate::route::RouteTable;
use crate::split::Split;

/// Everything a request needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    /// In the order of `config.listeners`.
    pub listeners: Vec<ListenerRoutes>,
    /// In the order of `config.services`; routes refer to them by index.
    pub services: Vec<Service>,
}

#[derive(Debug)]
pub struct ListenerRoutes {
    pub name: String,
    pub routes: RouteTable,
    /// Handles for requests that matched no route.
    pub unmatched: RouteMetrics,
}

#[derive(Debug)]
pub struct Service {
    pub name: String,
    pub split: Split,
    pub groups: Vec<Group>,
    pub client: Arc<UpstreamClient>,
    pub timeouts: Timeouts,
}

#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub weight: u32,
    pub endpoints: Vec<Endpoint>,
    pub balancer: Balancer,
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
}

#[derive(Debug)]
pub struct State {
    current: ArcSwap<Snapshot>,
    metrics: Arc<Metrics>,
    writer: Mutex<()>,
}

impl State {
    pub fn new(config: Config, metrics: Arc<Metrics>) -> State {
        let snapshot = build::build(config, &metrics, None);
        State {
            current: ArcSwap::from_pointee(snapshot),
            metrics,
            writer: Mutex::new(()),
        }
    }

    /// The current snapshot. Hold it for one request, not across reloads.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Replaces the running configuration, carrying statistics over.
    pub fn replace(&self, config: Config) {
        let _writer = self.writer.lock().expect("state writer lock poisoned");
        let previous = self.current.load_full();
        let next = build::build(config, &self.metrics, Some(&previous));
        self.current.store(Arc::new(next));
    }
}
