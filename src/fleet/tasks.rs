//! The fleet's background tasks: the watch of the shared state, the watch of
//! the replicas' Leases, and this replica's Lease keeper (which also writes
//! the rollbacks made while the API was unreachable). Watches go through
//! kube's watcher, which lists again after a cut stream, a restarted API
//! server or a `410 Gone`; each logs when it starts or stops working, not at
//! every retry.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use kube::api::PostParams;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use super::document::{self, Document, Replica, REPLICA_RENEW};
use super::{lock, timed, Fleet};
use crate::kubernetes::{WatchBackoff, WatchHealth};

/// How often rollbacks waiting for the API are tried again.
const PENDING_RETRY: Duration = Duration::from_millis(250);

/// Follows the fleet state and applies every newer version.
pub(super) async fn watch_state(fleet: Arc<Fleet>) {
    let name = document::state_object(&fleet.name);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(fleet.config_maps(), config)
        .backoff(WatchBackoff::default())
        .boxed();
    let mut health = WatchHealth::new(format!("ConfigMap {name}"));
    while let Some(event) = events.next().await {
        let metrics = &fleet.all_metrics;
        match event {
            Ok(Event::Apply(config_map) | Event::InitApply(config_map)) => {
                health.working();
                match Document::from_config_map(&config_map) {
                    Ok(document) => {
                        let result = if fleet.apply(&document, "watch") {
                            "applied"
                        } else {
                            "ignored"
                        };
                        metrics.kubernetes_watch_event("configmap", result);
                    }
                    Err(error) => {
                        metrics.kubernetes_watch_event("configmap", "error");
                        tracing::error!(fleet = %fleet.name, %error, "fleet state not applied; the version in force stays");
                    }
                }
            }
            Ok(Event::Delete(_)) => {
                health.working();
                metrics.kubernetes_watch_event("configmap", "ignored");
                tracing::warn!(
                    fleet = %fleet.name,
                    version = *fleet.applied.borrow(),
                    "fleet state ConfigMap deleted; the version in force stays, and the next change creates it again"
                );
            }
            Ok(Event::Init) => metrics.kubernetes_watch_event("configmap", "restarted"),
            Ok(Event::InitDone) => health.working(),
            Err(error) => {
                metrics.kubernetes_watch_event("configmap", "error");
                health.failed(&error);
            }
        }
    }
}

/// Follows every replica's Lease: who is live and what each has applied.
pub(super) async fn watch_replicas(fleet: Arc<Fleet>) {
    let config = watcher::Config::default().labels(&document::replica_selector(&fleet.name));
    // kube's reflector keeps the Leases, swapping in a relist only once it
    // is complete.
    let (leases, writer) = reflector::store();
    let mut events = reflector::reflector(writer, watcher::watcher(fleet.leases(), config))
        .backoff(WatchBackoff::default())
        .boxed();
    let mut health = WatchHealth::new(format!("Leases of fleet {}", fleet.name));
    while let Some(event) = events.next().await {
        let metrics = &fleet.all_metrics;
        match event {
            Ok(Event::Apply(_) | Event::Delete(_)) => {
                metrics.kubernetes_watch_event("lease", "applied");
            }
            Ok(Event::InitDone) => {}
            Ok(Event::Init) => {
                metrics.kubernetes_watch_event("lease", "restarted");
                continue;
            }
            Ok(Event::InitApply(_)) => continue,
            Err(error) => {
                metrics.kubernetes_watch_event("lease", "error");
                health.failed(&error);
                continue;
            }
        }
        health.working();
        let replicas: BTreeMap<String, Replica> = leases
            .state()
            .iter()
            .filter_map(|lease| Replica::from_lease(lease))
            .map(|replica| (replica.name.clone(), replica))
            .collect();
        let now = SystemTime::now();
        let live = replicas
            .values()
            .filter(|replica| replica.name != fleet.replica && replica.is_live(now))
            .count();
        fleet.replicas.send_replace(replicas);
        fleet.metrics.replicas.set(live as i64 + 1);
    }
}

/// Keeps this replica's Lease: renewed every 10 s and at once after each
/// newly applied version, with that version and the admin address. Also
/// writes rollbacks that wait for the API.
pub(super) async fn keep_lease(fleet: Arc<Fleet>) {
    let leases = fleet.leases();
    let name = document::replica_lease(&fleet.name, &fleet.replica);
    let mut applied = fleet.applied.subscribe();
    let mut resource_version: Option<String> = None;
    let mut health = WatchHealth::new(format!("Lease {name}"));
    let mut next_renewal = tokio::time::Instant::now();
    let mut newly_applied = false;
    loop {
        if fleet.leaving.load(Ordering::Acquire) {
            return;
        }
        if tokio::time::Instant::now() >= next_renewal || newly_applied {
            newly_applied = false;
            let version = *applied.borrow_and_update();
            let admin_address = lock(&fleet.admin_address).clone();
            match renew(
                &fleet,
                &leases,
                &name,
                version,
                &admin_address,
                &mut resource_version,
            )
            .await
            {
                Ok(()) => {
                    health.working();
                    next_renewal = tokio::time::Instant::now() + REPLICA_RENEW;
                }
                Err(error) => {
                    health.failed(&error);
                    resource_version = None;
                    // Soon, not in 10 s: a late ack holds up every change.
                    next_renewal = tokio::time::Instant::now() + Duration::from_millis(500);
                }
            }
        }
        if fleet.has_pending() {
            fleet.write_pending().await;
        }
        let sleep = next_renewal
            .saturating_duration_since(tokio::time::Instant::now())
            .min(PENDING_RETRY);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            changed = applied.changed() => newly_applied = changed.is_ok(),
        }
    }
}

/// One renewal: update with the last resourceVersion known, else create,
/// else read the current one and update.
async fn renew(
    fleet: &Fleet,
    leases: &kube::Api<k8s_openapi::api::coordination::v1::Lease>,
    name: &str,
    version: u64,
    admin_address: &str,
    resource_version: &mut Option<String>,
) -> Result<(), kube::Error> {
    let params = PostParams::default();
    for _ in 0..3 {
        // Leaving: the Lease is being deleted; writing it again would keep
        // this replica counted for 40 s.
        if fleet.leaving.load(Ordering::Acquire) {
            return Ok(());
        }
        let lease = Replica::to_lease(
            &fleet.name,
            &fleet.replica,
            version,
            admin_address,
            SystemTime::now(),
            resource_version.clone(),
        );
        let sent = match resource_version {
            Some(_) => timed(leases.replace(name, &params, &lease)).await,
            None => timed(leases.create(&params, &lease)).await,
        };
        match sent {
            Ok(written) => {
                *resource_version = written.metadata.resource_version;
                return Ok(());
            }
            // Someone else's write, or our Lease from before a restart:
            // take its resourceVersion and write again.
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                *resource_version = timed(leases.get_opt(name))
                    .await?
                    .and_then(|lease| lease.metadata.resource_version);
            }
            Err(error) => return Err(error),
        }
    }
    Err(kube::Error::Api(Box::new(kube::core::Status::failure(
        "the Lease kept changing under this replica",
        "Conflict",
    ))))
}
