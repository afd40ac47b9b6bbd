//! Changes to the fleet's state: how a change made through one replica's
//! admin API (or its rollout driver) is written for the whole fleet and
//! acknowledged, and how a rollback made while the API is unreachable is
//! kept applied here and written later. Reading and applying the state, and
//! the replicas' Leases, are in `mod.rs` and `tasks`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::document::{self, Change, Document};
use super::{lock, Fleet, WriteError};
use crate::state::{FleetStamp, RolloutStatus, ServiceOverride, ServiceView, UpdateError};

/// Reads and writes one change may take when other replicas keep winning.
const MAX_ATTEMPTS: usize = 16;

/// A change to one service's override, run again on each attempt (and on
/// each fleet version while it waits to be written).
pub(crate) type ChangeFn =
    dyn Fn(&ServiceView<'_>, &mut ServiceOverride) -> Result<(), UpdateError> + Send + Sync;

/// The change of a rollback by hand: every group but the stable one to 0,
/// and a running rollout marked rolled back.
pub(crate) fn rollback_change() -> Arc<ChangeFn> {
    Arc::new(|view, entry| {
        entry.roll_back(view);
        if let Some(record) = entry.rollout.as_mut() {
            if record.status == RolloutStatus::Progressing {
                record.reason = "rolled back by hand".into();
            }
            record.status = RolloutStatus::RolledBack;
        }
        Ok(())
    })
}

/// Whether a change may be applied on this replica alone when the API
/// cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Makes traffic safer: never refused.
    Rollback,
    /// Anything else (raise a weight, promote, reset): needs the fleet.
    NeedsFleet,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FleetError {
    #[error(transparent)]
    Refused(#[from] UpdateError),
    #[error(
        "the Kubernetes API cannot be reached ({0}); only a rollback is applied without it, \
         so that replicas never disagree about raising a canary"
    )]
    Unreachable(String),
    #[error("the Kubernetes API refused the fleet state: {0}")]
    Api(String),
    #[error("gave up after {MAX_ATTEMPTS} attempts: other replicas kept changing the fleet state")]
    Contended,
}

/// How a change reached the fleet: the answer of a change through the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetChange {
    /// The fleet state version that holds the change (0 when local only).
    pub version: u64,
    /// Live replicas, this one included.
    pub replicas: usize,
    /// Of those, how many had applied the change when the answer was sent.
    pub applied: usize,
    /// Live replicas that had not applied it within the wait.
    pub lagging: Vec<String>,
    /// The last replica to apply it, and when (ms after the write).
    pub slowest: Option<String>,
    pub slowest_ms: f64,
    /// True when the API could not be reached: applied here only, still
    /// being written to the fleet.
    pub local_only: bool,
    /// One line for people: "rolled back web on 5/5 replicas in 41 ms".
    pub message: String,
}

/// A rollback applied here while the API was unreachable, waiting to be
/// written to the fleet.
pub(super) struct Pending {
    pub(super) id: u64,
    pub(super) service: String,
    pub(super) change: Arc<ChangeFn>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Pending")
            .field("id", &self.id)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Makes a change to one service for the whole fleet and waits up to
    /// `wait` for every live replica to apply it. `describe` names it for
    /// people ("rolled back web").
    pub(crate) async fn change(
        &self,
        service: &str,
        kind: ChangeKind,
        describe: &str,
        wait: Duration,
        change: Arc<ChangeFn>,
    ) -> Result<FleetChange, FleetError> {
        let started = Instant::now();
        match self.write_change(service, describe, &change).await {
            Ok(version) => Ok(self.wait_for(version, started, wait, describe).await),
            // A rollback is never refused: not for an unreachable API, nor
            // for one that refuses the write (RBAC) or stays contended.
            Err(
                error @ (FleetError::Unreachable(_) | FleetError::Api(_) | FleetError::Contended),
            ) if kind == ChangeKind::Rollback => {
                let reason = match error {
                    FleetError::Unreachable(reason) | FleetError::Api(reason) => reason,
                    other => other.to_string(),
                };
                let held = self.state.overrides();
                let (mut next, ()) = self
                    .state
                    .plan_change(&held, service, |view, entry| change(view, entry))?;
                self.add_pending(service, change.clone());
                let version = *self.applied.borrow();
                next.fleet = Some(self.stamp(version));
                self.state.replace_overrides(next);
                tracing::warn!(
                    fleet = %self.name, service, %reason,
                    "{describe} on this replica only: the Kubernetes API cannot be reached; \
                     writing it to the fleet as soon as it can"
                );
                Ok(FleetChange {
                    replicas: 1,
                    applied: 1,
                    slowest: Some(self.replica.clone()),
                    local_only: true,
                    message: format!(
                        "{describe} on this replica ({}) only: the Kubernetes API cannot be \
                         reached ({reason}); it is written to the fleet as soon as the API answers",
                        self.replica
                    ),
                    ..FleetChange::default()
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Reads, changes and writes the fleet state until a write lands;
    /// returns the version written, already applied here.
    pub(super) async fn write_change(
        &self,
        service: &str,
        describe: &str,
        change: &Arc<ChangeFn>,
    ) -> Result<u64, FleetError> {
        for _ in 0..MAX_ATTEMPTS {
            let (current, resource_version) = self.read().await.map_err(FleetError::Unreachable)?;
            let current = current.unwrap_or_else(Document::empty);
            let (state, ()) = self
                .state
                .plan_change(&current.state, service, |view, entry| change(view, entry))?;
            let mut state = state;
            state.fleet = None;
            let next = Document {
                version: current.version + 1,
                change: self.change_record(describe),
                state,
            };
            match self.write(&next, resource_version).await {
                Ok(()) => {
                    self.apply(&next, "this replica");
                    return Ok(next.version);
                }
                Err(WriteError::Conflict) => {}
                Err(WriteError::Unreachable(reason)) => {
                    return Err(FleetError::Unreachable(reason))
                }
                Err(WriteError::Refused(reason)) => return Err(FleetError::Api(reason)),
            }
        }
        Err(FleetError::Contended)
    }

    pub(super) fn change_record(&self, cause: &str) -> Change {
        Change {
            cause: cause.to_owned(),
            by: self.replica.clone(),
            at_millis: document::millis_since_epoch(SystemTime::now()),
        }
    }

    /// Waits until every live replica has applied `version`, or `wait` has
    /// passed since `started`.
    pub(super) async fn wait_for(
        &self,
        version: u64,
        started: Instant,
        wait: Duration,
        describe: &str,
    ) -> FleetChange {
        let deadline = started + wait;
        let mut changes = self.replicas.subscribe();
        // This replica applied the version before waiting.
        let mut seen: BTreeMap<String, Duration> =
            BTreeMap::from([(self.replica.clone(), started.elapsed())]);
        let mut lagging;
        let mut live;
        loop {
            let now = SystemTime::now();
            lagging = Vec::new();
            live = 1;
            for replica in changes.borrow_and_update().values() {
                if replica.name == self.replica || !replica.is_live(now) {
                    continue;
                }
                live += 1;
                if replica.applied >= version {
                    seen.entry(replica.name.clone())
                        .or_insert_with(|| started.elapsed());
                } else {
                    lagging.push(replica.name.clone());
                }
            }
            if lagging.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changes.changed()).await.is_err() {
                break;
            }
        }
        let applied = live - lagging.len();
        let (slowest, slowest_time) = seen
            .iter()
            .filter(|(name, _)| !lagging.contains(name))
            .max_by_key(|(_, time)| **time)
            .map(|(name, time)| (Some(name.clone()), *time))
            .unwrap_or((None, Duration::ZERO));
        let slowest_ms = slowest_time.as_secs_f64() * 1000.0;
        let mut message = format!("{describe} on {applied}/{live} replicas in {slowest_ms:.0} ms");
        if !lagging.is_empty() {
            message.push_str(&format!(
                "; not applied within {} ms: {}",
                wait.as_millis(),
                lagging.join(", ")
            ));
        }
        FleetChange {
            version,
            replicas: live,
            applied,
            lagging,
            slowest,
            slowest_ms,
            local_only: false,
            message,
        }
    }

    /// Writes the rollbacks applied while the API was unreachable, until
    /// one fails to (the next call tries again).
    pub(super) async fn write_pending(&self) {
        let waiting: Vec<(u64, String, Arc<ChangeFn>)> = lock(&self.pending)
            .iter()
            .map(|pending| (pending.id, pending.service.clone(), pending.change.clone()))
            .collect();
        for (id, service, change) in waiting {
            let describe = format!("rollback of {service} (made while the API was unreachable)");
            match self.write_change(&service, &describe, &change).await {
                Ok(version) => {
                    lock(&self.pending).retain(|pending| pending.id != id);
                    // The cache must forget it too, or a restart would write
                    // this rollback again over whatever came after it.
                    let mut held = self.state.overrides();
                    held.fleet = Some(self.stamp(*self.applied.borrow()));
                    self.state.replace_overrides(held);
                    tracing::info!(fleet = %self.name, service, version, "rollback written to the fleet");
                }
                Err(FleetError::Refused(error)) => {
                    // The service or group is gone from the config: nothing to keep.
                    lock(&self.pending).retain(|pending| pending.id != id);
                    tracing::warn!(fleet = %self.name, service, %error, "rollback dropped");
                }
                Err(_) => return,
            }
        }
    }

    pub(super) fn add_pending(&self, service: &str, change: Arc<ChangeFn>) {
        let id = self.next_pending.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).push(Pending {
            id,
            service: service.to_owned(),
            change,
        });
    }

    /// What the cache records: the version, and the rollbacks still to write.
    pub(super) fn stamp(&self, version: u64) -> FleetStamp {
        let mut unwritten: Vec<String> = lock(&self.pending)
            .iter()
            .map(|pending| pending.service.clone())
            .collect();
        unwritten.sort_unstable();
        unwritten.dedup();
        FleetStamp {
            name: self.name.clone(),
            version,
            unwritten_rollbacks: unwritten,
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }
}
