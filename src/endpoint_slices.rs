//! EndpointSlice discovery: the endpoints of a group with
//! `kubernetes: { service, port }` are the addresses of that Kubernetes
//! Service's EndpointSlices, followed through a watch.
//!
//! Which addresses, decided by [`addresses`] (pure): every IPv4 and IPv6
//! slice labelled `kubernetes.io/service-name=<service>` that has the port
//! (by the Service port's name, or by number: the port the pods serve on);
//! of their endpoints, those whose `conditions.ready` is true (absent counts
//! as true). When none is ready, the ones still `serving` while
//! `terminating`, as kube-proxy does, so a rollout's last pods are not cut
//! off before their replacements are ready. A pod that turns unready leaves
//! rotation with the watch event that says so; requests already sent to it
//! finish (each holds its endpoint), and an address that stays keeps its
//! EWMA and histograms (the writer carries statistics over by key).
//!
//! The set goes in through `State::set_discovered`, like DNS discovery's;
//! until a group's slices have been listed once it has no endpoints, so
//! `/ready` answers 503 until then. The watch lists again after a cut
//! stream, a restarted API server or `410 Gone`, with backoff, and logs when
//! it starts or stops working, not at every retry. The driver follows the
//! config across reloads: one watch per group, restarted when its service,
//! port or namespace change. DNS discovery (`discovery`) stays for everyone
//! outside Kubernetes.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::task::JoinHandle;

use crate::config::{KubernetesEndpoints, ServicePort};
use crate::discovery::{diff, AbortOnDrop, Diff};
use crate::kubernetes::{Kubernetes, WatchBackoff, WatchHealth};
use crate::state::{Source, State};

/// The label Kubernetes puts on a Service's EndpointSlices.
const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// The addresses to use from a Service's slices for `port`, sorted.
pub(crate) fn addresses<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port: &ServicePort,
) -> Vec<SocketAddr> {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let Some(number) = slice_port(slice, port) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let is_serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let into = if is_ready {
                &mut ready
            } else if is_serving && is_terminating {
                &mut terminating
            } else {
                continue;
            };
            into.extend(
                endpoint
                    .addresses
                    .iter()
                    .filter_map(|text| text.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, number)),
            );
        }
    }
    let chosen = if ready.is_empty() { terminating } else { ready };
    chosen.into_iter().collect()
}

/// The number of `port` in a slice, if the slice has it (TCP only).
fn slice_port(slice: &EndpointSlice, port: &ServicePort) -> Option<u16> {
    slice.ports.as_ref()?.iter().find_map(|candidate| {
        if candidate.protocol.as_deref().unwrap_or("TCP") != "TCP" {
            return None;
        }
        let number = u16::try_from(candidate.port?).ok()?;
        let matches = match port {
            ServicePort::Name(name) => candidate.name.as_deref().unwrap_or("") == name,
            ServicePort::Number(wanted) => number == *wanted,
        };
        matches.then_some(number)
    })
}

/// Starts the task that runs one watch per `kubernetes` group of the
/// current config, following every new snapshot. `kubernetes` is the client
/// built at start, if any; without one it is built when a group first needs it.
pub(crate) fn spawn_driver(state: Arc<State>, kubernetes: Option<Kubernetes>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = state.subscribe();
        let mut driver = Driver {
            kubernetes,
            tasks: HashMap::new(),
        };
        loop {
            driver.follow(&state).await;
            // The sender lives in `state`, which this task holds: this only
            // ends when the task is aborted.
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
}

#[derive(Debug)]
struct Driver {
    kubernetes: Option<Kubernetes>,
    /// By (service, group).
    tasks: HashMap<(String, String), GroupTask>,
}

#[derive(Debug)]
struct GroupTask {
    source: KubernetesEndpoints,
    _task: AbortOnDrop,
}

impl Driver {
    async fn follow(&mut self, state: &Arc<State>) {
        let snapshot = state.load();
        let wanted: HashMap<(String, String), &KubernetesEndpoints> = snapshot
            .config
            .services
            .iter()
            .flat_map(|service| {
                service.groups.iter().filter_map(move |group| {
                    let source = group.kubernetes.as_ref()?;
                    Some(((service.name.clone(), group.name.clone()), source))
                })
            })
            .collect();
        self.tasks.retain(|key, task| {
            let keep = wanted
                .get(key)
                .is_some_and(|source| **source == task.source);
            if !wanted.contains_key(key) {
                state.metrics().remove_discovery(&key.0, &key.1);
            }
            keep
        });
        if wanted.is_empty() {
            return;
        }
        let kubernetes = match &self.kubernetes {
            Some(kubernetes) => kubernetes.clone(),
            None => {
                match Kubernetes::connect(&snapshot.config.kubernetes, state.metrics().clone())
                    .await
                {
                    Ok(kubernetes) => {
                        self.kubernetes = Some(kubernetes.clone());
                        kubernetes
                    }
                    Err(error) => {
                        tracing::error!(%error, "EndpointSlice discovery cannot start: no Kubernetes client; the groups have no endpoints");
                        return;
                    }
                }
            }
        };
        for (key, source) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            tracing::debug!(service = %key.0, group = %key.1, source = %source, "EndpointSlice discovery started");
            let task = tokio::spawn(watch_group(
                state.clone(),
                kubernetes.clone(),
                key.0.clone(),
                key.1.clone(),
                source.clone(),
            ));
            self.tasks.insert(
                key,
                GroupTask {
                    source: source.clone(),
                    _task: AbortOnDrop(task),
                },
            );
        }
    }
}

/// Follows one group's slices until aborted.
async fn watch_group(
    state: Arc<State>,
    kubernetes: Kubernetes,
    service: String,
    group: String,
    source: KubernetesEndpoints,
) {
    let namespace = source
        .namespace
        .clone()
        .unwrap_or_else(|| kubernetes.namespace.clone());
    let api: Api<EndpointSlice> = Api::namespaced(kubernetes.client.clone(), &namespace);
    let config = watcher::Config::default().labels(&format!("{SERVICE_LABEL}={}", source.service));
    // kube's reflector keeps the slices, swapping in a relist only once it
    // is complete.
    let (slices, writer) = reflector::store();
    let mut events = reflector::reflector(writer, watcher::watcher(api, config))
        .backoff(WatchBackoff::default())
        .boxed();
    let mut health = WatchHealth::new(format!(
        "EndpointSlices of {namespace}/{} (service {service}, group {group})",
        source.service
    ));
    let metrics = state.metrics().clone();
    let gauge = metrics.discovery(&service, &group).endpoints;
    let discovered = Source::Kubernetes(source.clone());
    let mut in_force: Option<Vec<SocketAddr>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(_) | Event::Delete(_) | Event::InitDone) => {}
            Ok(Event::Init) => {
                metrics.kubernetes_watch_event("endpointslice", "restarted");
                continue;
            }
            Ok(Event::InitApply(_)) => continue,
            Err(error) => {
                metrics.kubernetes_watch_event("endpointslice", "error");
                health.failed(&error);
                continue;
            }
        }
        health.working();
        let slices = slices.state();
        let found = addresses(slices.iter().map(AsRef::as_ref), &source.port);
        if in_force.as_ref() == Some(&found) {
            metrics.kubernetes_watch_event("endpointslice", "ignored");
            continue;
        }
        metrics.kubernetes_watch_event("endpointslice", "applied");
        let before: BTreeSet<SocketAddr> = in_force.iter().flatten().copied().collect();
        let after: BTreeSet<SocketAddr> = found.iter().copied().collect();
        let Diff { added, removed } = diff(&before, &after);
        let shown = |addresses: &[SocketAddr]| {
            addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        tracing::info!(
            service = %service,
            group = %group,
            source = %source,
            endpoints = found.len(),
            added = %shown(&added),
            removed = %shown(&removed),
            "endpoints from EndpointSlices changed"
        );
        gauge.set(found.len() as i64);
        state.set_discovered(&service, &group, &discovered, found.clone());
        in_force = Some(found);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    use super::*;

    fn endpoint(address: &str, ready: Option<bool>, serving: bool, terminating: bool) -> Endpoint {
        Endpoint {
            addresses: vec![address.to_owned()],
            conditions: Some(EndpointConditions {
                ready,
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            ..Endpoint::default()
        }
    }

    fn slice(address_type: &str, ports: &[(&str, i32)], endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: address_type.to_owned(),
            endpoints,
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| EndpointPort {
                        name: Some((*name).to_owned()),
                        port: Some(*port),
                        ..EndpointPort::default()
                    })
                    .collect(),
            ),
            ..EndpointSlice::default()
        }
    }

    fn shown(found: &[SocketAddr]) -> Vec<String> {
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ready_endpoints_of_the_named_port_across_slices() {
        let slices = [
            slice(
                "IPv4",
                &[("http", 8080), ("metrics", 9090)],
                vec![
                    endpoint("10.0.0.2", Some(true), true, false),
                    endpoint("10.0.0.1", None, true, false),
                    endpoint("10.0.0.3", Some(false), false, false),
                ],
            ),
            slice(
                "IPv6",
                &[("http", 8080)],
                vec![endpoint("fd00::1", Some(true), true, false)],
            ),
            // Another port name, an FQDN slice: not this group's.
            slice(
                "IPv4",
                &[("grpc", 7000)],
                vec![endpoint("10.0.0.9", Some(true), true, false)],
            ),
            slice(
                "FQDN",
                &[("http", 8080)],
                vec![endpoint("a.example", Some(true), true, false)],
            ),
        ];
        assert_eq!(
            shown(&addresses(&slices, &ServicePort::Name("http".into()))),
            ["10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"]
        );
        assert_eq!(
            shown(&addresses(&slices, &ServicePort::Number(9090))),
            ["10.0.0.1:9090", "10.0.0.2:9090"]
        );
        assert!(addresses(&slices, &ServicePort::Name("admin".into())).is_empty());
    }

    #[test]
    fn terminating_endpoints_still_serving_are_used_only_when_none_is_ready() {
        let draining = slice(
            "IPv4",
            &[("http", 80)],
            vec![
                endpoint("10.0.0.1", Some(false), true, true),
                endpoint("10.0.0.2", Some(false), false, true),
                endpoint("10.0.0.3", Some(false), false, false),
            ],
        );
        let port = ServicePort::Name("http".into());
        assert_eq!(shown(&addresses([&draining], &port)), ["10.0.0.1:80"]);
        let replacement = slice(
            "IPv4",
            &[("http", 80)],
            vec![endpoint("10.0.0.4", Some(true), true, false)],
        );
        assert_eq!(
            shown(&addresses([&draining, &replacement], &port)),
            ["10.0.0.4:80"]
        );
    }

    #[test]
    fn an_unnamed_port_is_found_by_number_and_udp_ports_are_not() {
        let mut unnamed = slice(
            "IPv4",
            &[("", 53)],
            vec![endpoint("10.0.0.1", None, true, false)],
        );
        assert_eq!(
            shown(&addresses([&unnamed], &ServicePort::Number(53))),
            ["10.0.0.1:53"]
        );
        unnamed.ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert!(addresses([&unnamed], &ServicePort::Number(53)).is_empty());
    }
}
