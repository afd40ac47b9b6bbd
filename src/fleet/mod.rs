//! Fleet mode: every replica with the same `fleet.name` shares one canary
//! state through the Kubernetes API, and a change made through any of them
//! reaches all of them, with proof.
//!
//! - The shared state (the runtime overrides that `state_file` holds for a
//!   lone luas: weights, rollbacks, promotions, rollout records) is one
//!   versioned [`Document`] in ConfigMap `luas-fleet-<name>`. Every replica
//!   watches it and puts each newer version in force through the one state
//!   writer (`State::replace_overrides`), which also saves it to
//!   `state_file` as this replica's cache.
//! - A change through the admin API ([`Fleet::change`]) reads the document,
//!   applies the change to it, and writes it back with an update whose
//!   `resourceVersion` is the precondition; on a 409 it reads again and
//!   applies the change again, so two replicas writing at once lose neither
//!   change. The writer applies its own write at once, then waits (bounded)
//!   until every live replica's Lease says it has applied that version.
//! - Each replica keeps a Lease `luas-fleet-<name>-<replica>` (renewed every
//!   10 s, 40 s long) whose annotations carry the version it has applied and
//!   its admin address; it updates the Lease right after applying a version,
//!   and deletes it when it shuts down, so it stops counting at once.
//! - Safety before availability: a rollback is never refused. With the API
//!   unreachable it is applied here at once, kept applied over any older
//!   fleet version this replica sees meanwhile, and written to the fleet by
//!   a task that retries until it lands. Any other change (raising a
//!   canary's weight, promoting) needs the API and is refused with the reason.
//!
//! - `document`: the ConfigMap's document and the Leases, as plain data;
//! - `changes`: writing a change for the fleet, acks, pending rollbacks;
//! - `tasks`: the watches and the Lease keeper; `leader`: the rollout
//!   Lease; `readings`: every replica's counters for the leader.
//!
//! This module does not judge rollouts (`rollout` does; in fleet mode its
//! writes come here) and does not know HTTP (the admin API calls it).

mod changes;
mod document;
mod leader;
mod readings;
mod tasks;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{replica_name_problem, FleetConfig};
use crate::kubernetes::Kubernetes;
use crate::metrics::{FleetMetrics, Metrics};
use crate::state::State;
use changes::Pending;
pub(crate) use changes::{rollback_change, ChangeFn, ChangeKind, FleetChange, FleetError};
pub(crate) use document::{Document, Replica};
pub(crate) use readings::Readings;

/// How long one request to the API may take before the API counts as
/// unreachable for a change (a watch is not bounded by it).
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// A replica as `GET /api/v1/fleet` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub name: String,
    pub applied_version: u64,
    /// Versions behind the newest this replica knows of.
    pub lag: u64,
    pub admin_address: String,
    pub seconds_since_renewal: f64,
    pub live: bool,
}

/// `GET /api/v1/fleet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub fleet: String,
    pub replica: String,
    pub namespace: String,
    /// The version this replica has applied.
    pub version: u64,
    /// The replica judging the fleet's rollouts, when known.
    pub leader: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
}

/// This replica's membership of its fleet.
#[derive(Debug)]
pub(crate) struct Fleet {
    name: String,
    replica: String,
    kubernetes: Kubernetes,
    state: Arc<State>,
    metrics: FleetMetrics,
    all_metrics: Arc<Metrics>,
    /// The fleet state version in force here.
    applied: watch::Sender<u64>,
    /// The newest version seen in the API (may be ahead of `applied` only
    /// for the instant between reading and applying).
    newest: AtomicU64,
    /// Every replica's Lease, as the Lease watch last saw them.
    replicas: watch::Sender<BTreeMap<String, Replica>>,
    /// The holder of the rollout Lease, when known.
    leader: Mutex<Option<String>>,
    pending: Mutex<Vec<Pending>>,
    next_pending: AtomicU64,
    /// Serializes "is this version newer? apply it", so a write's own apply
    /// and the watch's never interleave.
    apply_lock: Mutex<()>,
    admin_address: Mutex<String>,
    leaving: AtomicBool,
    /// True while this replica holds the rollout Lease.
    leading: AtomicBool,
}

impl Fleet {
    /// Joins the fleet: reads its state (waiting up to `startup_timeout` for
    /// the API) and puts it in force, before any listener serves. When the
    /// API does not answer in time, the replica starts from its cache (the
    /// state file) or the config file, and says so.
    pub(crate) async fn join(
        config: &FleetConfig,
        kubernetes: Kubernetes,
        state: Arc<State>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let replica = if let Some(replica) = &config.replica {
            replica.clone()
        } else {
            let host = host_name();
            if let Some(problem) = replica_name_problem(&config.name, &host) {
                return Err(format!(
                    "fleet.replica is not set and the host name ({host:?}, from $HOSTNAME or \
                     the kernel) {problem}; set fleet.replica to a name unique in the fleet \
                     (in a pod: its name)"
                ));
            }
            host
        };
        let cached = state.overrides();
        let stamp = cached
            .fleet
            .as_ref()
            .filter(|stamp| stamp.name == config.name);
        let cached_version = stamp.map_or(0, |stamp| stamp.version);
        let fleet = Arc::new(Self {
            metrics: metrics.fleet(&config.name),
            all_metrics: metrics,
            name: config.name.clone(),
            replica,
            kubernetes,
            state,
            applied: watch::channel(cached_version).0,
            newest: AtomicU64::new(cached_version),
            replicas: watch::channel(BTreeMap::new()).0,
            leader: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            next_pending: AtomicU64::new(0),
            apply_lock: Mutex::new(()),
            admin_address: Mutex::new(String::new()),
            leaving: AtomicBool::new(false),
            leading: AtomicBool::new(false),
        });
        // Rollbacks made while the API was unreachable, before a restart:
        // still to be written to the fleet.
        if let Some(stamp) = stamp {
            for service in &stamp.unwritten_rollbacks {
                fleet.add_pending(service, rollback_change());
            }
        }
        fleet.metrics.state_version.set(gauge(cached_version));
        fleet.first_read(config.startup_timeout).await;
        Ok(fleet)
    }

    /// Reads the fleet state until it is in force or `timeout` has passed.
    async fn first_read(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut backoff = crate::kubernetes::WatchBackoff::default();
        let mut last_error;
        loop {
            match self.read().await {
                Ok((Some(document), _)) => {
                    self.apply(&document, "start");
                    return;
                }
                Ok((None, _)) => {
                    // A new fleet: the first replica seeds it with what it
                    // holds (a state file from before fleet mode, or nothing).
                    self.seed().await;
                    return;
                }
                Err(error) => last_error = error,
            }
            let wait = backoff.next().unwrap_or(Duration::from_secs(1));
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        tracing::warn!(
            fleet = %self.name,
            version = *self.applied.borrow(),
            error = %last_error,
            "the fleet state could not be read within fleet.startup_timeout; serving from this \
             replica's cache (state_file) or the config file until the API answers"
        );
    }

    /// Writes this replica's overrides as the fleet's first version.
    async fn seed(&self) {
        let mut state = self.state.overrides();
        state.fleet = None;
        let document = Document {
            version: 1,
            change: self.change_record("fleet created"),
            state,
        };
        match self.write(&document, None).await {
            Ok(()) => {
                tracing::info!(fleet = %self.name, "fleet state created from this replica's state");
                self.apply(&document, "start");
            }
            // Another replica created it first: its version arrives by the watch.
            Err(error) => {
                tracing::info!(fleet = %self.name, %error, "fleet state not created here")
            }
        }
    }

    /// Starts the watches and the Lease keeper; `admin_address` is what other
    /// replicas (and people) reach this one's admin listener at.
    pub(crate) fn spawn(self: &Arc<Self>, admin_address: String) -> Vec<JoinHandle<()>> {
        *lock(&self.admin_address) = admin_address;
        vec![
            tokio::spawn(tasks::watch_state(self.clone())),
            tokio::spawn(tasks::watch_replicas(self.clone())),
            tokio::spawn(tasks::keep_lease(self.clone())),
            tokio::spawn(leader::lead(self.clone())),
        ]
    }

    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether this replica judges the fleet's rollouts now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Puts a fleet version in force here if it is newer than the one in
    /// force; rollbacks still waiting to be written stay applied over it.
    fn apply(&self, document: &Document, source: &str) -> bool {
        let _serial = lock(&self.apply_lock);
        self.newest.fetch_max(document.version, Ordering::AcqRel);
        let current = *self.applied.borrow();
        if document.version <= current {
            return false;
        }
        let mut state = document.state.clone();
        state.fleet = Some(self.stamp(document.version));
        for pending in lock(&self.pending).iter() {
            let planned = self
                .state
                .plan_change(&state, &pending.service, |view, entry| {
                    (pending.change)(view, entry)
                });
            if let Ok((next, ())) = planned {
                state = next;
            }
        }
        self.state.replace_overrides(state);
        self.applied.send_replace(document.version);
        self.metrics.state_version.set(gauge(document.version));
        let lag = document.age(SystemTime::now());
        self.metrics.apply_lag.observe(lag.as_secs_f64());
        tracing::info!(
            fleet = %self.name,
            version = document.version,
            cause = %document.change.cause,
            by = %document.change.by,
            lag_ms = lag.as_millis() as u64,
            source,
            "fleet state applied"
        );
        true
    }

    /// `GET /api/v1/fleet`.
    pub(crate) fn status(&self) -> FleetStatus {
        let now = SystemTime::now();
        let newest = self.newest.load(Ordering::Acquire);
        let version = *self.applied.borrow();
        let mut replicas: Vec<ReplicaStatus> = self
            .replicas
            .borrow()
            .values()
            .map(|replica| ReplicaStatus {
                name: replica.name.clone(),
                applied_version: replica.applied,
                lag: newest.saturating_sub(replica.applied),
                admin_address: replica.admin_address.clone(),
                seconds_since_renewal: document::millis_since_epoch(now)
                    .saturating_sub(replica.renewed_millis)
                    as f64
                    / 1000.0,
                live: replica.is_live(now),
            })
            .collect();
        if !replicas.iter().any(|replica| replica.name == self.replica) {
            replicas.push(ReplicaStatus {
                name: self.replica.clone(),
                applied_version: version,
                lag: newest.saturating_sub(version),
                admin_address: lock(&self.admin_address).clone(),
                seconds_since_renewal: 0.0,
                live: true,
            });
        }
        FleetStatus {
            fleet: self.name.clone(),
            replica: self.replica.clone(),
            namespace: self.kubernetes.namespace.clone(),
            version,
            leader: lock(&self.leader).clone(),
            replicas,
        }
    }

    /// Leaves the fleet (shutdown): stops renewing and deletes this
    /// replica's Lease, so changes stop waiting for it at once.
    pub(crate) async fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        leader::resign(self).await;
        let leases: Api<Lease> = self.leases();
        let name = document::replica_lease(&self.name, &self.replica);
        match timed(leases.delete(&name, &Default::default())).await {
            Ok(_) => {
                tracing::info!(fleet = %self.name, replica = %self.replica, "left the fleet")
            }
            Err(error) => {
                tracing::warn!(fleet = %self.name, %error, "Lease not deleted; it expires in 40 s")
            }
        }
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.kubernetes.client.clone(), &self.kubernetes.namespace)
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.kubernetes.client.clone(), &self.kubernetes.namespace)
    }

    /// The fleet state and its resourceVersion; None when it does not exist yet.
    async fn read(&self) -> Result<(Option<Document>, Option<String>), String> {
        let name = document::state_object(&self.name);
        let got = timed(self.config_maps().get_opt(&name))
            .await
            .map_err(|error| error.to_string())?;
        let Some(config_map) = got else {
            return Ok((None, None));
        };
        let document = Document::from_config_map(&config_map).map_err(|error| error.to_string())?;
        Ok((Some(document), config_map.metadata.resource_version))
    }

    /// Creates (no `resource_version`) or updates the fleet state.
    async fn write(
        &self,
        document: &Document,
        resource_version: Option<String>,
    ) -> Result<(), WriteError> {
        let name = document::state_object(&self.name);
        let create = resource_version.is_none();
        let object = document.to_config_map(&self.name, resource_version);
        let api = self.config_maps();
        let params = PostParams::default();
        let sent = if create {
            timed(api.create(&params, &object)).await
        } else {
            timed(api.replace(&name, &params, &object)).await
        };
        sent.map(drop).map_err(WriteError::from)
    }
}

/// How a write of the fleet state failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// Another replica wrote first (409), or the object was deleted or
    /// created meanwhile: read again and retry.
    #[error("the fleet state changed meanwhile")]
    Conflict,
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Refused(String),
}

impl From<kube::Error> for WriteError {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) => match status.code {
                404 | 409 => Self::Conflict,
                429 | 500.. => Self::Unreachable(error.to_string()),
                _ => Self::Refused(error.to_string()),
            },
            _ => Self::Unreachable(error.to_string()),
        }
    }
}

/// This machine's name, lower-case: `$HOSTNAME` (a pod's name in
/// Kubernetes), else the kernel's, since shells often do not export it.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// A request to the API, failed as a 504 when it takes over
/// [`API_TIMEOUT`] (counted as the API being unreachable).
async fn timed<T>(
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(API_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| {
            Err(kube::Error::Api(
                kube::core::Status::failure(
                    &format!("no answer from the Kubernetes API within {API_TIMEOUT:?}"),
                    "Timeout",
                )
                .with_code(504)
                .boxed(),
            ))
        })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gauge(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}
