//! The running configuration: one immutable [`Snapshot`] behind one `ArcSwap`.
//!
//! Readers (every request) take the current snapshot with one atomic load and
//! an `Arc` clone; they never wait and never see half an update. Every writer
//! (file reload, SIGHUP, admin API, rollout driver, DNS discovery) goes
//! through the one writer lock in [`State`]: it builds and validates the whole
//! next snapshot, then stores it atomically. Requests already running finish
//! on the snapshot they started with.
//!
//! The effective config is the file config with the runtime [`Overrides`]
//! (weights set through the API) applied on top, and with the addresses
//! discovered for each `dns` group filled in; overrides are saved to the
//! state file after every change, so a rollback survives a restart.
//! Discovered addresses are not saved: they are looked up again at start.
//!
//! Long-lived per-endpoint statistics and per-service connection pools live
//! outside the snapshot and are carried over by key (see `build`), so a
//! reload loses no latency history and no pooled connection. This module does
//! not read the config file or watch it; callers hand it a validated `Config`.

mod build;
pub mod overrides;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::request::Parts;
use http::HeaderName;
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::balance::Balancer;
use crate::client::UpstreamClient;
use crate::config::{
    Config, DnsConfig, ListenerLimits, OutlierConfig, RetryConfig, StickyKey, Timeouts,
};
use crate::endpoint::Endpoint;
use crate::history::History;
use crate::metrics::{Metrics, RouteMetrics, ServiceMetrics};
use crate::proxy::retry::RetryBudget;
use crate::route::RouteTable;
use crate::split::Split;
use crate::tls::UpstreamTlsConnector;
pub use overrides::{Overrides, RolloutRecord, RolloutStatus, ServiceOverride};

/// Everything a request needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// The effective config: the file's, with runtime overrides applied.
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
    pub override_header: Option<HeaderName>,
    pub sticky: Option<StickyKey>,
    pub retry: RetryConfig,
    pub outlier: OutlierConfig,
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
            .filter(|group| group.dns.is_some() && group.weight > 0)
            .all(|group| !group.endpoints.is_empty())
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.name == name)
    }
}

impl Service {
    /// The group a request goes to: the one its override header names (even
    /// at weight 0, but never one a rollback took out), else the one its
    /// sticky key hashes to, else a weighted random pick.
    pub fn pick_group(&self, request: &Parts) -> Option<usize> {
        if let Some(header) = &self.override_header {
            if let Some(wanted) = request.headers.get(header) {
                if let Some(index) = self.groups.iter().position(|group| {
                    group.name.as_bytes() == wanted.as_bytes() && !group.rolled_back
                }) {
                    return Some(index);
                }
            }
        }
        if let Some(key) = self
            .sticky
            .as_ref()
            .and_then(|sticky| sticky_key(sticky, request))
        {
            return self.split.pick_by_key(key);
        }
        self.split.pick()
    }
}

/// The request's sticky key, when it carries one.
fn sticky_key<'a>(sticky: &StickyKey, request: &'a Parts) -> Option<&'a [u8]> {
    match sticky {
        StickyKey::Header(name) => request.headers.get(name).map(|value| value.as_bytes()),
        StickyKey::Cookie(name) => request
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value.as_bytes())
            }),
    }
}

/// A runtime change that could not be made; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no service named {0}")]
    UnknownService(String),
    #[error("service {service} has no group named {group}; its groups are: {known}")]
    UnknownGroup {
        service: String,
        group: String,
        known: String,
    },
    #[error("weights for service {0} would all be 0; at least one group needs traffic")]
    AllZero(String),
    #[error("{0}")]
    Incompatible(String),
    #[error(transparent)]
    Tls(#[from] TlsLoadError),
    #[error("service {0} has no `rollout` in the config file; there is nothing to restart")]
    NoRollout(String),
}

/// Services' TLS files that do not load, each named by its key path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsLoadError(String);

/// Each TLS service's connector, by service name: loaded from files when
/// the file config is (at start and on reload), reused by runtime changes.
pub(crate) type UpstreamTlsSet = HashMap<String, Arc<UpstreamTlsConnector>>;

/// Loads each TLS service's files; a connector whose settings and file
/// contents are unchanged in `previous` is kept, with its connections.
fn load_upstream_tls(
    config: &Config,
    previous: Option<&UpstreamTlsSet>,
) -> Result<UpstreamTlsSet, TlsLoadError> {
    let mut loaded = HashMap::new();
    let mut problems = Vec::new();
    for (index, service) in config.services.iter().enumerate() {
        let Some(settings) = &service.tls else {
            continue;
        };
        let unchanged = previous
            .and_then(|previous| previous.get(&service.name))
            .filter(|connector| connector.loaded_from(settings));
        if let Some(connector) = unchanged {
            loaded.insert(service.name.clone(), connector.clone());
            continue;
        }
        match UpstreamTlsConnector::load(settings, service.protocol, &service.name) {
            Ok(connector) => {
                loaded.insert(service.name.clone(), Arc::new(connector));
            }
            Err(error) => problems.push(format!("services[{index}].tls: {error}")),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(TlsLoadError(problems.join("; ")))
    }
}

/// What the one writer guards: the inputs a snapshot is built from.
#[derive(Debug)]
struct Inputs {
    file_config: Config,
    overrides: Overrides,
    upstream_tls: UpstreamTlsSet,
    /// The last good address set of each DNS group, by (service, group).
    discovered: HashMap<(String, String), Discovered>,
}

/// The addresses last found for one DNS group, and what was looked up to
/// find them, so a reload that changes the name or port drops them.
#[derive(Debug)]
struct Discovered {
    target: DnsConfig,
    addresses: Vec<SocketAddr>,
}

#[derive(Debug)]
pub struct State {
    current: ArcSwap<Snapshot>,
    metrics: Arc<Metrics>,
    access_log: Arc<AccessLog>,
    history: Arc<History>,
    writer: Mutex<Inputs>,
    /// Ticks after every store of a new snapshot, for tasks that follow the
    /// config (discovery). Carries no state: readers load the snapshot.
    swaps: watch::Sender<()>,
}

impl State {
    /// Builds the first snapshot: the config, with the state file's runtime
    /// changes applied when there is one.
    /// Fails only when a service's TLS files do not load.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<State, TlsLoadError> {
        let upstream_tls = load_upstream_tls(&config, None)?;
        let overrides = match &config.state_file {
            None => Overrides::default(),
            Some(path) => match Overrides::load(path) {
                Ok(Some(overrides)) => {
                    tracing::info!(
                        state_file = %path.display(),
                        services = overrides.services.len(),
                        "applying runtime changes from the state file over the config file"
                    );
                    overrides
                }
                Ok(None) => {
                    tracing::info!(state_file = %path.display(), "no state file yet; starting from the config file");
                    Overrides::default()
                }
                Err(error) => {
                    tracing::error!(state_file = %path.display(), %error, "state file ignored");
                    Overrides::default()
                }
            },
        };
        let (effective, notes) = overrides.apply(&config);
        for note in notes {
            tracing::warn!("{note}");
        }
        let snapshot = build::build(effective, &overrides, &upstream_tls, &metrics, None);
        Ok(State {
            current: ArcSwap::from_pointee(snapshot),
            access_log: Arc::new(AccessLog::new(metrics.access_log_dropped())),
            history: Arc::default(),
            metrics,
            writer: Mutex::new(Inputs {
                file_config: config,
                overrides,
                upstream_tls,
                discovered: HashMap::new(),
            }),
            swaps: watch::channel(()).0,
        })
    }

    /// Notified each time a new snapshot is in force (reload, runtime
    /// change, discovery).
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.swaps.subscribe()
    }

    /// The current snapshot. Hold it for one request, not across reloads.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The last minutes of traffic, sampled for the dashboard.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Where requests' access log lines go (when `access_log` is on).
    pub fn access_log(&self) -> &Arc<AccessLog> {
        &self.access_log
    }

    /// The runtime overrides in force.
    pub fn overrides(&self) -> Overrides {
        self.inputs().overrides.clone()
    }

    /// The weights the config file gives a service's groups.
    pub fn file_weights(&self, service: &str) -> Option<BTreeMap<String, u32>> {
        let inputs = self.inputs();
        let service = inputs
            .file_config
            .services
            .iter()
            .find(|s| s.name == service)?;
        Some(
            service
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.weight))
                .collect(),
        )
    }

    /// Replaces the file config (a reload), keeping runtime overrides. Changes
    /// that need new sockets or metric families are refused: restart for those.
    pub fn reload(&self, config: Config) -> Result<(), UpdateError> {
        let mut inputs = self.inputs();
        restart_needed(&inputs.file_config, &config).map_err(UpdateError::Incompatible)?;
        // Read again so rotated client certificates and CAs take effect.
        let upstream_tls = load_upstream_tls(&config, Some(&inputs.upstream_tls))?;
        // A group whose DNS name and port stay keeps its addresses, so a
        // reload opens no window without endpoints; any other set is dropped.
        inputs.discovered.retain(|(service, group), discovered| {
            dns_of(&config, service, group).is_some_and(|dns| dns.same_target(&discovered.target))
        });
        inputs.file_config = config;
        inputs.upstream_tls = upstream_tls;
        for note in self.rebuild(&inputs) {
            tracing::warn!("{note}");
        }
        Ok(())
    }

    /// Installs the addresses a lookup found for a DNS group (see
    /// `discovery`), then rebuilds and swaps. Statistics of addresses that
    /// stay are carried over by key as on any rebuild; addresses that left
    /// get no new requests, while requests already sent to them finish on
    /// the snapshot they started with. Returns false, changing nothing, when
    /// these are the addresses in force, or when the file config no longer
    /// has the group with this DNS name and port (a lookup that finished
    /// after a reload changed it).
    pub fn set_discovered(
        &self,
        service: &str,
        group: &str,
        target: &DnsConfig,
        addresses: Vec<SocketAddr>,
    ) -> bool {
        let mut inputs = self.inputs();
        if !dns_of(&inputs.file_config, service, group).is_some_and(|dns| dns.same_target(target)) {
            return false;
        }
        let key = (service.to_owned(), group.to_owned());
        if inputs
            .discovered
            .get(&key)
            .is_some_and(|discovered| discovered.addresses == addresses)
        {
            return false;
        }
        inputs.discovered.insert(
            key,
            Discovered {
                target: target.clone(),
                addresses,
            },
        );
        self.rebuild(&inputs);
        true
    }

    /// Applies a change to one service's runtime override, then rebuilds,
    /// swaps and saves. `change` may refuse by returning an error; nothing is
    /// changed then.
    pub fn update_service<T>(
        &self,
        service: &str,
        change: impl FnOnce(&ServiceView<'_>, &mut ServiceOverride) -> Result<T, UpdateError>,
    ) -> Result<T, UpdateError> {
        let mut inputs = self.inputs();
        let current = self.load();
        let config_service = current
            .config
            .services
            .iter()
            .find(|s| s.name == service)
            .ok_or_else(|| UpdateError::UnknownService(service.to_owned()))?;
        let view = ServiceView {
            config: config_service,
        };
        let mut next = inputs.overrides.clone();
        let entry = next.services.entry(service.to_owned()).or_default();
        let result = change(&view, entry)?;
        for group in entry.weights.keys() {
            view.group_index(group)?;
        }
        // Judge the override itself: `apply` would quietly skip an all-zero one.
        let file_service = inputs
            .file_config
            .services
            .iter()
            .find(|s| s.name == service);
        let all_zero = file_service.is_some_and(|file_service| {
            file_service.groups.iter().all(|group| {
                entry
                    .weights
                    .get(&group.name)
                    .copied()
                    .unwrap_or(group.weight)
                    == 0
            })
        });
        if all_zero {
            return Err(UpdateError::AllZero(service.to_owned()));
        }
        inputs.overrides = next;
        self.rebuild(&inputs);
        self.persist(&inputs);
        Ok(result)
    }

    /// Forgets everything run-time about a service with a `rollout:` (its
    /// rollout record, weights and rolled-back groups), so the rollout
    /// driver starts it again from its first step at its next tick: how a
    /// rolled-back or finished rollout is run again once a fixed version is
    /// deployed.
    pub fn restart_rollout(&self, service: &str) -> Result<(), UpdateError> {
        let mut inputs = self.inputs();
        let file_service = inputs
            .file_config
            .services
            .iter()
            .find(|s| s.name == service)
            .ok_or_else(|| UpdateError::UnknownService(service.to_owned()))?;
        if file_service.rollout.is_none() {
            return Err(UpdateError::NoRollout(service.to_owned()));
        }
        inputs.overrides.services.remove(service);
        self.rebuild(&inputs);
        self.persist(&inputs);
        Ok(())
    }

    /// Drops a service's runtime override: the file's weights apply again.
    pub fn reset_service(&self, service: &str) -> Result<(), UpdateError> {
        let mut inputs = self.inputs();
        if !inputs
            .file_config
            .services
            .iter()
            .any(|s| s.name == service)
        {
            return Err(UpdateError::UnknownService(service.to_owned()));
        }
        // The rollout record stays, so a rollout that was rolled back is not
        // started again; a running one stops, since the file's weights rule now.
        let rollout = inputs
            .overrides
            .services
            .remove(service)
            .and_then(|entry| entry.rollout)
            .map(|mut record| {
                if record.status == RolloutStatus::Progressing {
                    record.status = RolloutStatus::Stopped;
                    record.reason = "weights reset to the config file's".into();
                }
                record
            });
        if let Some(rollout) = rollout {
            inputs.overrides.services.insert(
                service.to_owned(),
                ServiceOverride {
                    rollout: Some(rollout),
                    ..ServiceOverride::default()
                },
            );
        }
        self.rebuild(&inputs);
        self.persist(&inputs);
        Ok(())
    }

    /// Builds the next snapshot from the writer's inputs (the file config,
    /// runtime overrides over it, discovered addresses, TLS connectors) and
    /// swaps it in. Returns the notes of overrides that no longer fit the
    /// file config, for the callers that report them.
    fn rebuild(&self, inputs: &Inputs) -> Vec<String> {
        let (mut effective, notes) = inputs.overrides.apply(&inputs.file_config);
        fill_in_discovered(&mut effective, &inputs.discovered);
        let previous = self.current.load_full();
        let next = build::build(
            effective,
            &inputs.overrides,
            &inputs.upstream_tls,
            &self.metrics,
            Some(&previous),
        );
        self.current.store(Arc::new(next));
        self.swaps.send_replace(());
        notes
    }

    fn persist(&self, inputs: &Inputs) {
        let Some(path) = &inputs.file_config.state_file else {
            return;
        };
        // The swap has happened: a failed save only loses durability, so it is
        // logged loudly rather than undoing what the operator asked for.
        if let Err(error) = inputs.overrides.save(path) {
            tracing::error!(%error, "runtime change applied but not saved; it will not survive a restart");
        }
    }

    fn inputs(&self) -> MutexGuard<'_, Inputs> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServiceOverride {
    /// Weights chosen by hand (set or promote): the note of a past rollback
    /// and the override header's closed door no longer apply.
    pub fn set_weights(&mut self, weights: BTreeMap<String, u32>) {
        self.weights = weights;
        self.rolled_back_groups.clear();
        self.replaced_by_rollback = None;
    }

    /// Every group but the stable one to 0, remembering the weights replaced
    /// and closing the override header to the groups taken out. Returns the
    /// replaced weights. The one rollback, for the API and the rollout driver.
    pub fn roll_back(&mut self, view: &ServiceView<'_>) -> BTreeMap<String, u32> {
        let before = view.weights();
        self.weights = view.rollback_weights();
        self.rolled_back_groups = view.non_stable_groups();
        self.replaced_by_rollback = Some(before.clone());
        before
    }
}

/// A service's effective config as a runtime change sees it.
#[derive(Debug)]
pub struct ServiceView<'a> {
    pub config: &'a crate::config::ServiceConfig,
}

impl ServiceView<'_> {
    pub fn group_index(&self, group: &str) -> Result<usize, UpdateError> {
        self.config
            .groups
            .iter()
            .position(|g| g.name == group)
            .ok_or_else(|| UpdateError::UnknownGroup {
                service: self.config.name.clone(),
                group: group.to_owned(),
                known: self
                    .config
                    .groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Current effective weights by group name.
    pub fn weights(&self) -> BTreeMap<String, u32> {
        self.config
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.weight))
            .collect()
    }

    pub fn stable_group(&self) -> &str {
        &self.config.groups[self.config.stable_group()].name
    }

    /// Every group but the stable one: what a rollback takes out.
    pub fn non_stable_groups(&self) -> Vec<String> {
        let stable = self.stable_group();
        self.config
            .groups
            .iter()
            .filter(|group| group.name != stable)
            .map(|group| group.name.clone())
            .collect()
    }

    /// The weights of a rollback: every group but the stable one at 0; the
    /// stable group keeps its weight, or gets 100 if it had none.
    pub fn rollback_weights(&self) -> BTreeMap<String, u32> {
        let stable = self.stable_group();
        self.config
            .groups
            .iter()
            .map(|group| {
                let weight = match (group.name == stable, group.weight) {
                    (false, _) => 0,
                    (true, 0) => 100,
                    (true, weight) => weight,
                };
                (group.name.clone(), weight)
            })
            .collect()
    }
}

/// The DNS source of a group of `config`, if it has one.
fn dns_of<'a>(config: &'a Config, service: &str, group: &str) -> Option<&'a DnsConfig> {
    config
        .services
        .iter()
        .find(|s| s.name == service)?
        .groups
        .iter()
        .find(|g| g.name == group)?
        .dns
        .as_ref()
}

/// Gives each DNS group of `config` the addresses discovered for it; a group
/// nothing was found for yet keeps none.
fn fill_in_discovered(config: &mut Config, discovered: &HashMap<(String, String), Discovered>) {
    if discovered.is_empty() {
        return;
    }
    for service in &mut config.services {
        for group in &mut service.groups {
            let Some(dns) = &group.dns else {
                continue;
            };
            let key = (service.name.clone(), group.name.clone());
            if let Some(found) = discovered
                .get(&key)
                .filter(|found| found.target.same_target(dns))
            {
                group.endpoints.clone_from(&found.addresses);
            }
        }
    }
}

/// Why a new file config cannot be applied without a restart, if it cannot.
fn restart_needed(old: &Config, new: &Config) -> Result<(), String> {
    if old.admin != new.admin {
        return Err(
            "the admin section changed (listen, token_file or allow_unauthenticated_admin); \
             restart luas to apply it"
                .into(),
        );
    }
    let shape = |config: &Config| {
        config
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.listen, l.protocol, l.tls.clone()))
            .collect::<Vec<_>>()
    };
    if shape(old) != shape(new) {
        return Err(
            "listeners were added, removed, renamed, moved to another address or protocol, or \
             their TLS files were renamed; routes can change on reload, listeners need a \
             restart (a certificate rewritten in place is picked up without one)"
                .into(),
        );
    }
    // Set when a listener starts; only the body limits are read per request.
    let fixed = |limits: &ListenerLimits| ListenerLimits {
        max_body_bytes: None,
        body_timeout: Duration::ZERO,
        ..*limits
    };
    // Same listeners in the same order, as the shape check just showed.
    for (index, (was, is)) in old.listeners.iter().zip(&new.listeners).enumerate() {
        if fixed(&was.limits) != fixed(&is.limits) {
            return Err(format!(
                "listeners[{index}].limits ({}): limits other than max_body_bytes and \
                 body_timeout are fixed when a listener starts; restart luas to apply them",
                was.name
            ));
        }
    }
    if old.metrics != new.metrics {
        return Err("metrics settings changed; restart luas to apply them".into());
    }
    if old.state_file != new.state_file {
        return Err("state_file changed; restart luas to apply it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(stable: &str) -> Config {
        let text = format!(
            "listeners:
  - {{ name: edge, listen: 127.0.0.1:0, routes: [{{ name: all, service: web }}] }}
services:
  - name: web
    groups:
      - {{ name: stable, {stable} }}
      - {{ name: canary, weight: 0, endpoints: [127.0.0.1:9] }}
"
        );
        Config::from_yaml(&text).unwrap()
    }

    fn addresses(texts: &[&str]) -> Vec<SocketAddr> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn discovered_addresses_go_through_the_writer_and_follow_reloads() {
        let state = State::new(
            config("dns: web.test:80"),
            Arc::new(Metrics::new(&defaults_buckets())),
        )
        .expect("no TLS files to load");
        let endpoints = || -> Vec<SocketAddr> {
            let snapshot = state.load();
            let group = &snapshot.services[0].groups[0];
            // The effective config and the balancer's endpoints agree.
            let listed = snapshot.config.services[0].groups[0].endpoints.clone();
            let built: Vec<SocketAddr> = group.endpoints.iter().map(|e| e.address).collect();
            assert_eq!(listed, built);
            built
        };
        let target = state.load().config.services[0].groups[0]
            .dns
            .clone()
            .unwrap();
        let mut changes = state.subscribe();
        assert!(endpoints().is_empty());
        assert!(!state.load().every_dns_group_resolved());

        let found = addresses(&["10.0.0.1:80", "10.0.0.2:80"]);
        assert!(state.set_discovered("web", "stable", &target, found.clone()));
        assert_eq!(endpoints(), found);
        assert!(state.load().every_dns_group_resolved());
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();

        // The same set again builds no snapshot; stale or unknown targets are refused.
        assert!(!state.set_discovered("web", "stable", &target, found.clone()));
        let other_port = DnsConfig {
            port: 81,
            ..target.clone()
        };
        assert!(!state.set_discovered("web", "stable", &other_port, vec![]));
        assert!(!state.set_discovered("web", "canary", &target, vec![]));
        assert!(!state.set_discovered("api", "stable", &target, vec![]));
        assert!(!changes.has_changed().unwrap());

        // Runtime changes and reloads that keep the name and port keep the set.
        state
            .update_service("web", |view, entry| {
                entry.set_weights(view.weights());
                Ok(())
            })
            .unwrap();
        assert_eq!(endpoints(), found);
        state
            .reload(config("dns: WEB.test:80, refresh: 1s"))
            .unwrap();
        assert_eq!(endpoints(), found);

        // Another name drops it, and late answers for the old one are refused.
        state.reload(config("dns: web2.test:80")).unwrap();
        assert!(endpoints().is_empty());
        assert!(!state.load().every_dns_group_resolved());
        assert!(!state.set_discovered("web", "stable", &target, found.clone()));
        assert!(endpoints().is_empty());

        // A listed group needs no lookup.
        state.reload(config("endpoints: [127.0.0.1:8]")).unwrap();
        assert!(state.load().every_dns_group_resolved());
    }

    fn defaults_buckets() -> Vec<f64> {
        crate::config::defaults::BUCKETS.to_vec()
    }
}
