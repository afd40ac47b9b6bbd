//! Automated progressive rollouts, judged from luas's own metrics.
//!
//! A service with a `rollout:` block moves its rollout group (the canary)
//! through the configured weight steps. Every `tick` the driver reads, for
//! the current step only, the canary's and the stable group's request
//! counters and latency histograms, and [`decide`] (a pure function) says:
//! - **rollback** at once, mid-step, as soon as the canary has had
//!   `min_requests` and its error rate (5xx and failed requests) is above
//!   `max_error_rate` or its p99 is above `max_p99_ratio` × the stable p99;
//! - **promote** to the next step once `interval` has passed with the canary
//!   judged healthy on at least `min_requests`;
//! - **complete** after the last step's interval;
//! - otherwise **wait**.
//!
//! Latencies below [`LATENCY_FLOOR`] count as the floor, so sub-millisecond
//! noise on a fast service never reads as "50 % slower", and p99s are
//! compared only once both groups have [`MIN_REQUESTS_FOR_P99`] requests in the
//! step: the p99 of twenty requests is their slowest one, often a connection
//! being opened.
//!
//! Weight changes go through `State::update_service` like any API call, so
//! they are swapped in atomically and saved to the state file with the
//! rollout's progress: a restart resumes the rollout, and never restarts one
//! that was rolled back. A manual weight change stops the rollout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::RolloutConfig;
use crate::fleet::{ChangeFn, ChangeKind, Fleet};
use crate::metrics::Reading;
use crate::state::{RolloutRecord, RolloutStatus, Service, State, UpdateError};

/// Latencies under this are compared as this.
pub(crate) const LATENCY_FLOOR: Duration = Duration::from_millis(5);

/// Requests each group needs in a step before its p99 is compared.
pub(crate) const MIN_REQUESTS_FOR_P99: u64 = 100;

/// One group's traffic during the current step; defined in `metrics` with
/// the error rule, so the judge counts what the dashboard shows.
pub(crate) use crate::metrics::Window;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Wait,
    Promote { next_step: usize },
    Complete,
    Rollback { reason: String },
}

/// The rollout's verdict on one step. Pure: data and time in, decision out.
pub(crate) fn decide(
    policy: &RolloutConfig,
    step: usize,
    time_in_step: Duration,
    canary: &Window,
    stable: &Window,
) -> Decision {
    let judged = canary.requests >= policy.min_requests.max(1);
    if judged {
        let error_rate = canary.errors as f64 / canary.requests as f64;
        if error_rate > policy.max_error_rate {
            return Decision::Rollback {
                reason: format!(
                    "canary error rate {:.2} % over {} requests is above the {:.2} % limit",
                    error_rate * 100.0,
                    canary.requests,
                    policy.max_error_rate * 100.0
                ),
            };
        }
        let enough_for_p99 = canary.requests >= policy.min_requests.max(MIN_REQUESTS_FOR_P99)
            && stable.requests >= MIN_REQUESTS_FOR_P99;
        if let (true, Some(canary_p99), Some(stable_p99)) = (enough_for_p99, canary.p99, stable.p99)
        {
            let floor = LATENCY_FLOOR.as_secs_f64();
            let ratio = canary_p99.max(floor) / stable_p99.max(floor);
            if ratio > policy.max_p99_ratio {
                return Decision::Rollback {
                    reason: format!(
                        "canary p99 {:.1} ms is {ratio:.2} × the stable p99 {:.1} ms, above the {:.2} × limit",
                        canary_p99 * 1000.0,
                        stable_p99 * 1000.0,
                        policy.max_p99_ratio
                    ),
                };
            }
        }
    }
    if time_in_step < policy.interval || !judged {
        return Decision::Wait;
    }
    if step + 1 < policy.steps.len() {
        Decision::Promote {
            next_step: step + 1,
        }
    } else {
        Decision::Complete
    }
}

/// A rollout's progress, as the driver last judged it: what
/// `/api/v1/services` shows and `luas ctl status` reads back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub group: String,
    /// Index into `steps`.
    pub step: usize,
    /// The canary weight of each step.
    pub steps: Vec<u32>,
    pub weight: u32,
    pub status: String,
    pub reason: String,
    pub seconds_in_step: f64,
    pub canary: Window,
    pub stable: Window,
}

/// Live progress of every rollout, written by the driver, read by the admin API.
#[derive(Debug, Default)]
pub(crate) struct Board {
    progress: Mutex<BTreeMap<String, Progress>>,
}

impl Board {
    pub(crate) fn get(&self, service: &str) -> Option<Progress> {
        self.lock().get(service).cloned()
    }

    fn set(&self, service: &str, progress: Progress) {
        self.lock().insert(service.to_owned(), progress);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Progress>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A group's counters now, summed over its endpoints; nothing when the
/// service has no such group.
pub(crate) fn group_reading(service: &Service, group: &str) -> Reading {
    let group = service.groups.iter().find(|g| g.name == group);
    Reading::sum(
        group
            .into_iter()
            .flat_map(|group| &group.endpoints)
            .map(|endpoint| &endpoint.stats.metrics),
    )
}

/// Where a service's rollout stands, in the driver's memory.
#[derive(Debug)]
struct Tracker {
    step: usize,
    started: Instant,
    canary_start: Reading,
    stable_start: Reading,
    /// Fleet leader: each other replica's (canary, stable) reading when it
    /// was first seen in this step.
    peers: BTreeMap<String, (Reading, Reading)>,
}

/// Where the driver's decisions go: this replica's state, or, in fleet
/// mode, the fleet's shared state.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    state: Arc<State>,
    fleet: Option<Arc<Fleet>>,
}

impl Writer {
    pub(crate) fn new(state: Arc<State>, fleet: Option<Arc<Fleet>>) -> Self {
        Self { state, fleet }
    }

    /// In fleet mode only the leader enters steps and promotes; every
    /// replica may roll back, so the first one to see a bad canary stops it.
    fn leads(&self) -> bool {
        self.fleet.as_ref().is_none_or(|fleet| fleet.is_leader())
    }

    async fn update(
        &self,
        service: &str,
        kind: ChangeKind,
        describe: &str,
        change: Arc<ChangeFn>,
    ) -> Result<(), String> {
        match &self.fleet {
            None => self
                .state
                .update_service(service, |view, entry| change(view, entry))
                .map_err(|error| error.to_string()),
            Some(fleet) => fleet
                .change(service, kind, describe, Duration::ZERO, change)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
        }
    }
}

/// Starts the driver: one task for every rollout of every snapshot, so a
/// reload that adds or removes a rollout block is picked up on the next tick.
pub(crate) fn spawn_driver(writer: Writer, board: Arc<Board>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
        loop {
            let tick = evaluate(&writer, &board, &mut trackers).await;
            tokio::time::sleep(tick).await;
        }
    })
}

/// One pass over every rollout; returns how long to sleep.
async fn evaluate(
    writer: &Writer,
    board: &Board,
    trackers: &mut BTreeMap<String, Tracker>,
) -> Duration {
    let state = &writer.state;
    let snapshot = state.load();
    let overrides = state.overrides();
    let leads = writer.leads();
    // The leader judges the fleet's traffic: every replica's counters.
    let peers = match &writer.fleet {
        Some(fleet) if leads => fleet.peer_readings().await,
        _ => BTreeMap::new(),
    };
    let mut tick: Option<Duration> = None;
    for service_config in &snapshot.config.services {
        let Some(policy) = &service_config.rollout else {
            trackers.remove(&service_config.name);
            continue;
        };
        tick = Some(tick.map_or(policy.tick, |tick| tick.min(policy.tick)));
        let name = service_config.name.as_str();
        let record = overrides
            .services
            .get(name)
            .and_then(|service| service.rollout.clone());
        let stable_name = &service_config.groups[service_config.stable_group()].name;
        let service = snapshot
            .service(name)
            .expect("snapshot has every config service");

        match &record {
            Some(record) if record.status != RolloutStatus::Progressing => {
                trackers.remove(name);
                board.set(
                    name,
                    progress(policy, record, None, Window::default(), Window::default()),
                );
                continue;
            }
            _ => {}
        }
        // In fleet mode the step is the fleet's: when the leader moved it,
        // every replica judges the new step from now on.
        let recorded_step = record
            .as_ref()
            .map(|record| record.step.min(policy.steps.len() - 1));
        if let (Some(step), Some(tracker)) = (recorded_step, trackers.get(name)) {
            if writer.fleet.is_some() && tracker.step != step {
                trackers.remove(name);
            }
        }
        let now = Instant::now();
        let Some(tracker) = trackers.get_mut(name) else {
            let step = recorded_step.unwrap_or(0);
            if leads {
                // First sight (or resumed after a restart): enter the step.
                let entered = enter(
                    writer,
                    board,
                    name,
                    policy,
                    stable_name,
                    step,
                    "rollout started".into(),
                )
                .await;
                if let Some(tracker) = entered {
                    trackers.insert(name.to_owned(), tracker);
                }
            } else if recorded_step.is_some() {
                // A follower judges the step the leader entered, on its own
                // traffic, to roll back without waiting for the leader.
                let reason = "following the fleet's rollout leader".to_owned();
                if let Some(tracker) = track(state, board, name, policy, stable_name, step, reason)
                {
                    trackers.insert(name.to_owned(), tracker);
                }
            }
            continue;
        };

        let mut canary = group_reading(service, &policy.group).since(&tracker.canary_start);
        let mut stable = group_reading(service, stable_name).since(&tracker.stable_start);
        for (replica, readings) in &peers {
            let Some(groups) = readings.get(name) else {
                continue;
            };
            let now_canary = groups.get(&policy.group).cloned().unwrap_or_default();
            let now_stable = groups.get(stable_name).cloned().unwrap_or_default();
            let (canary_start, stable_start) = tracker
                .peers
                .entry(replica.clone())
                .or_insert_with(|| (now_canary.clone(), now_stable.clone()));
            canary.add(&now_canary.since(canary_start));
            stable.add(&now_stable.since(stable_start));
        }
        let (canary, stable) = (canary.window(), stable.window());
        let time_in_step = now.saturating_duration_since(tracker.started);
        let mut decision = decide(policy, tracker.step, time_in_step, &canary, &stable);
        if !leads && !matches!(decision, Decision::Rollback { .. }) {
            decision = Decision::Wait;
        }
        let current = RolloutRecord {
            step: tracker.step,
            status: RolloutStatus::Progressing,
            reason: String::new(),
        };
        match decision {
            Decision::Wait => {
                board.set(
                    name,
                    progress(policy, &current, Some(time_in_step), canary, stable),
                );
            }
            Decision::Promote { next_step } => {
                let reason = format!(
                    "step {} healthy: {} canary requests, {} errors; moving to {} %",
                    tracker.step + 1,
                    canary.requests,
                    canary.errors,
                    policy.steps[next_step]
                );
                tracing::info!(service = name, decision = "promote", "{reason}");
                if let Some(entered) =
                    enter(writer, board, name, policy, stable_name, next_step, reason).await
                {
                    state.metrics().rollout_decisions(name, "promote").inc();
                    *tracker = entered;
                }
            }
            Decision::Complete => {
                let reason = format!(
                    "last step healthy: {} canary requests, {} errors; rollout complete",
                    canary.requests, canary.errors
                );
                tracing::info!(service = name, decision = "complete", "{reason}");
                let record = RolloutRecord {
                    step: tracker.step,
                    status: RolloutStatus::Completed,
                    reason,
                };
                if finish(writer, name, record.clone(), false).await.is_ok() {
                    state.metrics().rollout_decisions(name, "complete").inc();
                    board.set(name, progress(policy, &record, None, canary, stable));
                    trackers.remove(name);
                }
            }
            Decision::Rollback { reason } => {
                tracing::warn!(
                    service = name,
                    decision = "rollback",
                    "rolling back: {reason}"
                );
                let record = RolloutRecord {
                    step: tracker.step,
                    status: RolloutStatus::RolledBack,
                    reason,
                };
                if finish(writer, name, record.clone(), true).await.is_ok() {
                    state.metrics().rollout_decisions(name, "rollback").inc();
                    board.set(name, progress(policy, &record, None, canary, stable));
                    trackers.remove(name);
                }
            }
        }
    }
    // With no rollout configured, look again now and then: a reload may add one.
    tick.unwrap_or(Duration::from_secs(1))
}

/// A fresh window of counters for `step`, from now, and the progress shown
/// for its start; None when the service is gone from the snapshot.
fn track(
    state: &State,
    board: &Board,
    name: &str,
    policy: &RolloutConfig,
    stable_name: &str,
    step: usize,
    reason: String,
) -> Option<Tracker> {
    let snapshot = state.load();
    let service = snapshot.service(name)?;
    let tracker = Tracker {
        step,
        started: Instant::now(),
        canary_start: group_reading(service, &policy.group),
        stable_start: group_reading(service, stable_name),
        peers: BTreeMap::new(),
    };
    let record = RolloutRecord {
        step,
        status: RolloutStatus::Progressing,
        reason,
    };
    board.set(
        name,
        progress(
            policy,
            &record,
            Some(Duration::ZERO),
            Window::default(),
            Window::default(),
        ),
    );
    Some(tracker)
}

/// Moves a rollout into `step`: its weights, the step gauge, a fresh window
/// of counters and the progress shown; None when the weights could not be set.
async fn enter(
    writer: &Writer,
    board: &Board,
    name: &str,
    policy: &RolloutConfig,
    stable_name: &str,
    step: usize,
    reason: String,
) -> Option<Tracker> {
    if let Err(error) = enter_step(writer, name, policy, stable_name, step, &reason).await {
        tracing::warn!(service = name, step = step + 1, %error, "rollout step not applied");
        return None;
    }
    let state = &writer.state;
    state.metrics().rollout_step(name).set(step as i64 + 1);
    track(state, board, name, policy, stable_name, step, reason)
}

/// Sets the weights of a step: the rollout group gets the step's percent,
/// the stable group the rest; other groups keep theirs.
async fn enter_step(
    writer: &Writer,
    service: &str,
    policy: &RolloutConfig,
    stable: &str,
    step: usize,
    reason: &str,
) -> Result<(), String> {
    let weight = policy.steps[step];
    let group = policy.group.clone();
    let stable = stable.to_owned();
    let reason_text = reason.to_owned();
    let change: Arc<ChangeFn> = Arc::new(move |view, entry| {
        let mut weights = view.weights();
        weights.insert(group.clone(), weight);
        weights.insert(stable.clone(), 100 - weight);
        entry.weights = weights;
        entry.rollout = Some(RolloutRecord {
            step,
            status: RolloutStatus::Progressing,
            reason: reason_text.clone(),
        });
        Ok(())
    });
    let describe = format!("rollout of {service} to step {} ({weight} %)", step + 1);
    writer
        .update(service, ChangeKind::NeedsFleet, &describe, change)
        .await
}

/// Records the end of a rollout, with the weights to leave in force.
async fn finish(
    writer: &Writer,
    service: &str,
    record: RolloutRecord,
    roll_back: bool,
) -> Result<(), String> {
    let (kind, describe) = if roll_back {
        (
            ChangeKind::Rollback,
            format!("rollout of {service} rolled back: {}", record.reason),
        )
    } else {
        (
            ChangeKind::NeedsFleet,
            format!("rollout of {service} completed"),
        )
    };
    let change: Arc<ChangeFn> = Arc::new(move |view, entry| {
        // In a fleet another replica may have ended this rollout first:
        // it ends once.
        if entry
            .rollout
            .as_ref()
            .is_some_and(|current| current.status != RolloutStatus::Progressing)
        {
            return Err(UpdateError::Incompatible(format!(
                "the rollout of {} has already ended",
                view.config.name
            )));
        }
        if roll_back {
            entry.roll_back(view);
        }
        entry.rollout = Some(record.clone());
        Ok(())
    });
    writer
        .update(service, kind, &describe, change)
        .await
        .inspect_err(|error| tracing::error!(service, %error, "rollout decision not applied"))
}

fn progress(
    policy: &RolloutConfig,
    record: &RolloutRecord,
    time_in_step: Option<Duration>,
    canary: Window,
    stable: Window,
) -> Progress {
    Progress {
        group: policy.group.clone(),
        step: record.step + 1,
        steps: policy.steps.clone(),
        weight: policy.steps.get(record.step).copied().unwrap_or(0),
        status: serde_json::to_value(record.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        reason: record.reason.clone(),
        seconds_in_step: time_in_step.map_or(0.0, |t| t.as_secs_f64()),
        canary,
        stable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RolloutConfig {
        RolloutConfig {
            group: "canary".into(),
            steps: vec![5, 25, 50, 100],
            interval: Duration::from_secs(60),
            min_requests: 100,
            max_error_rate: 0.01,
            max_p99_ratio: 1.5,
            tick: Duration::from_secs(1),
        }
    }

    fn window(requests: u64, errors: u64, p99_ms: f64) -> Window {
        Window {
            requests,
            errors,
            p99: Some(p99_ms / 1000.0),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn waits_for_the_interval_and_enough_requests() {
        let stable = window(1000, 0, 20.0);
        assert_eq!(
            decide(
                &policy(),
                0,
                Duration::from_secs(10),
                &window(500, 0, 20.0),
                &stable
            ),
            Decision::Wait
        );
        assert_eq!(
            decide(&policy(), 0, MINUTE, &window(99, 0, 20.0), &stable),
            Decision::Wait
        );
        assert_eq!(
            decide(&policy(), 0, MINUTE, &window(100, 1, 20.0), &stable),
            Decision::Promote { next_step: 1 }
        );
        assert_eq!(
            decide(&policy(), 3, MINUTE, &window(100, 0, 20.0), &stable),
            Decision::Complete
        );
    }

    #[test]
    fn rolls_back_mid_step_on_errors() {
        let decision = decide(
            &policy(),
            1,
            Duration::from_secs(3),
            &window(100, 2, 20.0),
            &window(1000, 0, 20.0),
        );
        match decision {
            Decision::Rollback { reason } => {
                assert!(reason.contains("error rate 2.00 %"), "{reason}")
            }
            other => panic!("expected a rollback, got {other:?}"),
        }
    }

    #[test]
    fn never_judges_too_few_requests() {
        // 50 % errors, but only 10 requests: wait for min_requests.
        assert_eq!(
            decide(
                &policy(),
                0,
                Duration::from_secs(3),
                &window(10, 5, 20.0),
                &window(1000, 0, 20.0)
            ),
            Decision::Wait
        );
    }

    #[test]
    fn rolls_back_on_a_slow_canary() {
        let decision = decide(
            &policy(),
            0,
            Duration::from_secs(3),
            &window(200, 0, 31.0),
            &window(1000, 0, 20.0),
        );
        assert!(
            matches!(decision, Decision::Rollback { .. }),
            "{decision:?}"
        );
        // 1.45 × is within the 1.5 × limit.
        let decision = decide(
            &policy(),
            0,
            MINUTE,
            &window(200, 0, 29.0),
            &window(1000, 0, 20.0),
        );
        assert_eq!(decision, Decision::Promote { next_step: 1 });
    }

    #[test]
    fn p99_needs_a_hundred_requests_on_each_side() {
        let policy = RolloutConfig {
            min_requests: 20,
            ..policy()
        };
        let slow = window(99, 0, 80.0);
        assert_eq!(
            decide(&policy, 0, MINUTE, &slow, &window(1000, 0, 20.0)),
            Decision::Promote { next_step: 1 }
        );
        let decision = decide(
            &policy,
            0,
            MINUTE,
            &window(100, 0, 80.0),
            &window(99, 0, 20.0),
        );
        assert_eq!(decision, Decision::Promote { next_step: 1 });
        let decision = decide(
            &policy,
            0,
            MINUTE,
            &window(100, 0, 80.0),
            &window(100, 0, 20.0),
        );
        assert!(matches!(decision, Decision::Rollback { .. }));
    }

    #[test]
    fn latency_floor_ignores_sub_millisecond_noise() {
        // 0.9 ms against 0.3 ms is 3 ×, but both are under the 5 ms floor.
        let decision = decide(
            &policy(),
            0,
            MINUTE,
            &window(200, 0, 0.9),
            &window(1000, 0, 0.3),
        );
        assert_eq!(decision, Decision::Promote { next_step: 1 });
    }

    #[test]
    fn missing_stable_latency_skips_the_ratio() {
        let stable = Window {
            requests: 0,
            errors: 0,
            p99: None,
        };
        let decision = decide(&policy(), 3, MINUTE, &window(200, 0, 900.0), &stable);
        assert_eq!(decision, Decision::Complete);
    }
}
