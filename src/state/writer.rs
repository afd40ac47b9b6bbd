//! The one writer of the running configuration.
//!
//! Every change (file reload, SIGHUP, admin API, rollout driver, DNS
//! discovery) takes the writer lock, builds and validates the whole next
//! snapshot from the inputs it guards (the file config, runtime overrides,
//! discovered addresses, TLS connectors), then stores it with one atomic
//! swap. Readers never wait. The lock is a std `Mutex` held for the
//! rebuild only, never across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::build;
use super::overrides::{Overrides, ServiceOverride, ServiceView};
use super::restart::restart_needed;
use super::snapshot::Snapshot;
use super::tls::{load_upstream_tls, TlsLoadError, UpstreamTlsSet};
use crate::config::{Config, DnsConfig, KubernetesEndpoints};
use crate::metrics::Metrics;

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

/// What the one writer guards: the inputs a snapshot is built from.
#[derive(Debug)]
struct Inputs {
    file_config: Config,
    overrides: Overrides,
    upstream_tls: UpstreamTlsSet,
    /// The last good address set of each DNS group, by (service, group).
    discovered: HashMap<(String, String), Discovered>,
}

/// The addresses last found for one discovered group, and where they were
/// found, so a reload that changes the name or port drops them.
#[derive(Debug)]
struct Discovered {
    target: Source,
    addresses: Vec<SocketAddr>,
}

/// Where a group's endpoints are discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A DNS name and port (`dns:`).
    Dns(DnsConfig),
    /// A Kubernetes Service's EndpointSlices (`kubernetes:`).
    Kubernetes(KubernetesEndpoints),
}

impl Source {
    /// The same place to look, whatever the refresh period.
    fn same_target(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Dns(one), Self::Dns(other)) => one.same_target(other),
            (Self::Kubernetes(one), Self::Kubernetes(other)) => one == other,
            _ => false,
        }
    }

    /// The source a group's config names, if it is discovered.
    pub(crate) fn of(group: &crate::config::GroupConfig) -> Option<Self> {
        match (&group.dns, &group.kubernetes) {
            (Some(dns), _) => Some(Self::Dns(dns.clone())),
            (None, Some(kubernetes)) => Some(Self::Kubernetes(kubernetes.clone())),
            (None, None) => None,
        }
    }
}

#[derive(Debug)]
pub struct State {
    current: ArcSwap<Snapshot>,
    metrics: Arc<Metrics>,
    writer: Mutex<Inputs>,
    /// Ticks after every store of a new snapshot, for tasks that follow the
    /// config (discovery). Carries no state: readers load the snapshot.
    swaps: watch::Sender<()>,
}

impl State {
    /// Builds the first snapshot: the config, with the state file's runtime
    /// changes applied when there is one.
    /// Fails only when a service's TLS files do not load.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Self, TlsLoadError> {
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
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
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
            source_of(&config, service, group)
                .is_some_and(|source| source.same_target(&discovered.target))
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
    pub(crate) fn set_discovered(
        &self,
        service: &str,
        group: &str,
        target: &Source,
        addresses: Vec<SocketAddr>,
    ) -> bool {
        let mut inputs = self.inputs();
        if !source_of(&inputs.file_config, service, group)
            .is_some_and(|source| source.same_target(target))
        {
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
        let (next, result) = plan(&inputs.file_config, &inputs.overrides, service, change)?;
        inputs.overrides = next;
        self.rebuild(&inputs);
        self.persist(&inputs);
        Ok(result)
    }

    /// What `change` would make of `base` (overrides held elsewhere: the
    /// fleet's shared state), judged against this replica's file config.
    /// Changes nothing here.
    pub(crate) fn plan_change<T>(
        &self,
        base: &Overrides,
        service: &str,
        change: impl FnOnce(&ServiceView<'_>, &mut ServiceOverride) -> Result<T, UpdateError>,
    ) -> Result<(Overrides, T), UpdateError> {
        let inputs = self.inputs();
        plan(&inputs.file_config, base, service, change)
    }

    /// Puts `overrides` in force in place of the ones held (the fleet's
    /// shared state, as written by any replica), rebuilds, swaps and saves
    /// them as this replica's cache.
    pub(crate) fn replace_overrides(&self, overrides: Overrides) {
        let mut inputs = self.inputs();
        inputs.overrides = overrides;
        for note in self.rebuild(&inputs) {
            tracing::warn!("{note}");
        }
        self.persist(&inputs);
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

/// The overrides `change` makes of `base` for `service`, checked: the
/// service and its groups exist, and some group keeps traffic.
fn plan<T>(
    file_config: &Config,
    base: &Overrides,
    service: &str,
    change: impl FnOnce(&ServiceView<'_>, &mut ServiceOverride) -> Result<T, UpdateError>,
) -> Result<(Overrides, T), UpdateError> {
    let (effective, _) = base.apply(file_config);
    let config_service = effective
        .services
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| UpdateError::UnknownService(service.to_owned()))?;
    let view = ServiceView {
        config: config_service,
    };
    let mut next = base.clone();
    let entry = next.services.entry(service.to_owned()).or_default();
    let result = change(&view, entry)?;
    for group in entry.weights.keys() {
        view.group_index(group)?;
    }
    // Judge the override itself: `apply` would quietly skip an all-zero one.
    let file_service = file_config.services.iter().find(|s| s.name == service);
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
    // An entry left with nothing in it (a reset, a restarted rollout) is no
    // override at all.
    if entry == &ServiceOverride::default() {
        next.services.remove(service);
    }
    Ok((next, result))
}

/// Where a group of `config` discovers its endpoints, if it does.
fn source_of(config: &Config, service: &str, group: &str) -> Option<Source> {
    let group = config
        .services
        .iter()
        .find(|s| s.name == service)?
        .groups
        .iter()
        .find(|g| g.name == group)?;
    Source::of(group)
}

/// Gives each discovered group of `config` the addresses found for it; a
/// group nothing was found for yet keeps none.
fn fill_in_discovered(config: &mut Config, discovered: &HashMap<(String, String), Discovered>) {
    if discovered.is_empty() {
        return;
    }
    for service in &mut config.services {
        for group in &mut service.groups {
            let Some(source) = Source::of(group) else {
                continue;
            };
            let key = (service.name.clone(), group.name.clone());
            if let Some(found) = discovered
                .get(&key)
                .filter(|found| found.target.same_target(&source))
            {
                group.endpoints.clone_from(&found.addresses);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

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
        let dns = state.load().config.services[0].groups[0]
            .dns
            .clone()
            .unwrap();
        let target = Source::Dns(dns.clone());
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
        let other_port = Source::Dns(DnsConfig { port: 81, ..dns });
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
        assert!(!state.set_discovered("web", "stable", &target, found));
        assert!(endpoints().is_empty());

        // A listed group needs no lookup.
        state.reload(config("endpoints: [127.0.0.1:8]")).unwrap();
        assert!(state.load().every_dns_group_resolved());
    }

    fn defaults_buckets() -> Vec<f64> {
        crate::config::defaults::BUCKETS.to_vec()
    }
}
