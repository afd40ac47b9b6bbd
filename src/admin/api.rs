//! The admin API under `/api/v1`: read the services, change weights, roll
//! back, promote, reload. JSON in and out.
//!
//! | method and path                           | what it does |
//! |-------------------------------------------|--------------|
//! | `GET /api/v1/services`                    | every service: groups, weights, endpoints with EWMA, in-flight, counts, p50/p99, rollout |
//! | `GET /api/v1/services/{name}`             | one service |
//! | `PUT /api/v1/services/{name}/weights`     | body `{"stable": 90, "canary": 10}`; groups not named keep their weight |
//! | `DELETE /api/v1/services/{name}/weights`  | drop runtime weights: the config file's apply again |
//! | `POST /api/v1/services/{name}/rollback`   | every group but stable to 0, remembering the weights replaced |
//! | `POST /api/v1/services/{name}/promote`    | body `{"group": "canary"}` (optional): that group gets all traffic |
//! | `POST /api/v1/reload`                     | re-read the config file |
//! | `GET /api/v1/fleet`                       | fleet mode: the replicas, the version each applied, the leader |
//!
//! Changes take `?wait=2s` (default 2 s): in fleet mode the answer waits
//! that long at most for every live replica to apply the change, and its
//! `fleet` field says how many did (see `fleet`).
//!
//! Every change goes through `State::update_service`, so it is atomic, saved
//! to the state file, and answered only once the new snapshot is in force:
//! when a rollback call returns, no request that starts afterwards can reach
//! the canary, not even one carrying the override header (a rollback closes
//! that door too, until the weights are set again). Errors answer 400 (bad request), 404 (unknown service) or 409
//! (no config file to reload) with `{"error": "..."}`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::wire::{
    EndpointStatus, GroupStatus, PromoteRequest, Reloaded, ServiceList, ServiceStatus, Weights,
};
use super::Admin;
use crate::fleet::{rollback_change, ChangeFn, ChangeKind, FleetChange, FleetError, Readings};
use crate::metrics::{Reading, ReadingWire};
use crate::reload::{ReloadError, Reloader};
use crate::state::{RolloutRecord, RolloutStatus, ServiceOverride, ServiceView, UpdateError};

/// A JSON answer and its status.
pub(crate) type ApiResult = Result<Value, (StatusCode, String)>;

/// A wire type as the JSON value the admin listener writes.
fn to_json(answer: &impl Serialize) -> Value {
    serde_json::to_value(answer).expect("the wire types serialize")
}

fn update_error(error: UpdateError) -> (StatusCode, String) {
    let status = match error {
        UpdateError::UnknownService(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, error.to_string())
}

/// Every service, as `GET /api/v1/services` shows them.
pub(crate) fn services(admin: &Admin) -> Value {
    let state = &admin.state;
    let snapshot = state.load();
    let services = snapshot
        .services
        .iter()
        .filter_map(|service| service_status(admin, &service.name))
        .collect();
    to_json(&ServiceList { services })
}

pub(crate) fn service(admin: &Admin, name: &str) -> ApiResult {
    let state = &admin.state;
    if state.load().service(name).is_none() {
        return Err((StatusCode::NOT_FOUND, format!("no service named {name}")));
    }
    Ok(service_json(admin, name))
}

fn service_json(admin: &Admin, name: &str) -> Value {
    service_status(admin, name).map_or(Value::Null, |service| to_json(&service))
}

fn service_status(admin: &Admin, name: &str) -> Option<ServiceStatus> {
    let state = &admin.state;
    let board = &admin.rollouts;
    let history = &admin.history;
    let snapshot = state.load();
    let service = snapshot.service(name)?;
    let config = snapshot
        .config
        .services
        .iter()
        .find(|s| s.name == name)
        .expect("snapshot services mirror the config");
    let file_weights = state.file_weights(name).unwrap_or_default();
    let overrides = state.overrides();
    let runtime = overrides.services.get(name);
    let now = tokio::time::Instant::now();
    let groups = service
        .groups
        .iter()
        .map(|group| {
            let endpoints = group
                .endpoints
                .iter()
                .map(|endpoint| {
                    let totals =
                        Reading::served(&endpoint.stats.metrics, endpoint.stats.mirror.get());
                    let in_flight = endpoint.in_flight();
                    let recent = history.endpoint_rates(name, &group.name, endpoint.address);
                    EndpointStatus {
                        address: endpoint.address.to_string(),
                        name: admin.endpoint_names.lookup(endpoint.address),
                        healthy: endpoint.stats.health.is_eligible(now),
                        ewma_ms: endpoint.stats.ewma.estimate_micros(now, in_flight == 0) / 1000.0,
                        in_flight,
                        requests: totals.requests,
                        errors: totals.errors,
                        p50_ms: totals.quantile(0.5).map(|s| s * 1000.0),
                        p90_ms: totals.quantile(0.9).map(|s| s * 1000.0),
                        p99_ms: totals.quantile(0.99).map(|s| s * 1000.0),
                        // Over the last minute, from the dashboard's history.
                        rps: recent.map_or(0.0, |rates| rates.requests_per_second),
                        error_rate: recent.and_then(|rates| rates.error_rate),
                    }
                })
                .collect();
            GroupStatus {
                name: group.name.clone(),
                weight: group.weight,
                share: if service.split.total() == 0 {
                    0.0
                } else {
                    f64::from(group.weight) / service.split.total() as f64
                },
                file_weight: file_weights.get(&group.name).copied(),
                endpoints,
            }
        })
        .collect();
    Some(ServiceStatus {
        name: service.name.clone(),
        balancer: match config.balancer {
            crate::config::BalancerKind::P2cEwma => "p2c-ewma",
            crate::config::BalancerKind::LeastRequest => "least-request",
            crate::config::BalancerKind::RoundRobin => "round-robin",
        }
        .to_owned(),
        stable_group: config.groups[config.stable_group()].name.clone(),
        groups,
        runtime_weights: runtime.map(|r| r.weights.clone()).filter(|w| !w.is_empty()),
        replaced_by_rollback: runtime.and_then(|r| r.replaced_by_rollback.clone()),
        rollout: board.get(name),
        fleet: None,
    })
}

/// Makes a change to one service: here alone, or, in fleet mode, for every
/// replica (waiting up to `wait` for their acks). The answer is the service
/// as it now is, with the fleet's report in fleet mode.
async fn apply_change(
    admin: &Admin,
    name: &str,
    kind: ChangeKind,
    describe: &str,
    wait: Duration,
    change: Arc<ChangeFn>,
) -> ApiResult {
    let report = match &admin.fleet {
        None => {
            admin
                .state
                .update_service(name, |view, entry| change(view, entry))
                .map_err(update_error)?;
            None
        }
        Some(fleet) => Some(
            fleet
                .change(name, kind, describe, wait, change)
                .await
                .map_err(fleet_error)?,
        ),
    };
    Ok(answer(admin, name, report))
}

/// The service as it now is, with the fleet's report of the change.
fn answer(admin: &Admin, name: &str, fleet: Option<FleetChange>) -> Value {
    match service_status(admin, name) {
        Some(mut status) => {
            status.fleet = fleet;
            to_json(&status)
        }
        None => Value::Null,
    }
}

fn fleet_error(error: FleetError) -> (StatusCode, String) {
    match error {
        FleetError::Refused(error) => update_error(error),
        error @ (FleetError::Unreachable(_) | FleetError::Api(_) | FleetError::Contended) => {
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
    }
}

/// `PUT /api/v1/services/{name}/weights`.
pub(crate) async fn set_weights(
    admin: &Admin,
    name: &str,
    body: &[u8],
    wait: Duration,
) -> ApiResult {
    let weights: Weights = serde_json::from_slice(body).map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object of group name to weight, like {{\"stable\": 90, \"canary\": 10}}: {error}"),
        )
    })?;
    if weights.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "no weights given".into()));
    }
    let wanted = weights.clone();
    let change: Arc<ChangeFn> = Arc::new(move |view, entry| {
        let mut next = view.weights();
        for (group, weight) in &wanted {
            view.group_index(group)?;
            next.insert(group.clone(), *weight);
        }
        entry.set_weights(next);
        stop_rollout(entry.rollout.as_mut(), "weights set by hand");
        Ok(())
    });
    let describe = format!("set the weights of {name}");
    let answer = apply_change(admin, name, ChangeKind::NeedsFleet, &describe, wait, change).await?;
    tracing::info!(
        service = name,
        ?weights,
        "weights set through the admin API"
    );
    Ok(answer)
}

/// `DELETE /api/v1/services/{name}/weights`: the file's weights apply
/// again. The rollout record stays, so a rollout that was rolled back is not
/// started again; a running one stops, since the file's weights rule now.
pub(crate) async fn reset_weights(admin: &Admin, name: &str, wait: Duration) -> ApiResult {
    let change: Arc<ChangeFn> = Arc::new(|_, entry| {
        let mut rollout = entry.rollout.take();
        stop_rollout(rollout.as_mut(), "weights reset to the config file's");
        *entry = ServiceOverride {
            rollout,
            ..ServiceOverride::default()
        };
        Ok(())
    });
    let describe = format!("reset the weights of {name}");
    let answer = apply_change(admin, name, ChangeKind::NeedsFleet, &describe, wait, change).await?;
    tracing::info!(
        service = name,
        "runtime weights dropped; the config file's weights apply"
    );
    Ok(answer)
}

/// `POST /api/v1/services/{name}/rollout/restart`: forgets everything
/// run-time about a service with a `rollout:` (its record, weights and
/// rolled-back groups), so the driver starts it again from its first step:
/// how a rolled-back or finished rollout is run again once a fixed version
/// is deployed.
pub(crate) async fn restart_rollout(admin: &Admin, name: &str, wait: Duration) -> ApiResult {
    let change: Arc<ChangeFn> = Arc::new(|view, entry| {
        if view.config.rollout.is_none() {
            return Err(UpdateError::NoRollout(view.config.name.clone()));
        }
        *entry = ServiceOverride::default();
        Ok(())
    });
    let describe = format!("restarted the rollout of {name}");
    let answer = apply_change(admin, name, ChangeKind::NeedsFleet, &describe, wait, change).await?;
    tracing::warn!(
        service = name,
        "rollout restarted through the admin API: runtime weights dropped, first step next"
    );
    Ok(answer)
}

/// `POST /api/v1/services/{name}/rollback`.
pub(crate) async fn rollback(admin: &Admin, name: &str, wait: Duration) -> ApiResult {
    let describe = format!("rolled back {name}");
    let answer = apply_change(
        admin,
        name,
        ChangeKind::Rollback,
        &describe,
        wait,
        rollback_change(),
    )
    .await?;
    tracing::warn!(service = name, "rolled back through the admin API");
    Ok(answer)
}

/// `POST /api/v1/services/{name}/promote`: the named group (default: the
/// rollout group, else the non-stable group with the most weight, else
/// `canary`) gets all traffic.
pub(crate) async fn promote(admin: &Admin, name: &str, body: &[u8], wait: Duration) -> ApiResult {
    let body: PromoteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PromoteRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                format!("the body must be empty or like {{\"group\": \"canary\"}}: {error}"),
            )
        })?
    };
    let change: Arc<ChangeFn> = Arc::new(move |view, entry| {
        let group = promoted_group(view, body.group.as_deref());
        view.group_index(&group)?;
        entry.set_weights(
            view.weights()
                .into_keys()
                .map(|g| {
                    let weight = if g == group { 100 } else { 0 };
                    (g, weight)
                })
                .collect(),
        );
        if let Some(record) = entry.rollout.as_mut() {
            record.status = RolloutStatus::Completed;
            record.reason = "promoted by hand".into();
        }
        Ok(())
    });
    let describe = format!("promoted {name}");
    let answer = apply_change(admin, name, ChangeKind::NeedsFleet, &describe, wait, change).await?;
    tracing::info!(service = name, "promoted through the admin API");
    Ok(answer)
}

/// The group a promotion gives all traffic to.
fn promoted_group(view: &ServiceView<'_>, asked: Option<&str>) -> String {
    if let Some(group) = asked {
        return group.to_owned();
    }
    let stable = view.stable_group();
    view.config
        .rollout
        .as_ref()
        .map(|rollout| rollout.group.clone())
        .or_else(|| {
            view.config
                .groups
                .iter()
                .filter(|g| g.name != stable)
                .max_by_key(|g| g.weight)
                .map(|g| g.name.clone())
        })
        .unwrap_or_else(|| "canary".into())
}

/// `GET /api/v1/fleet/readings`: this replica's counters by service and
/// group, for the fleet's rollout leader.
pub(crate) fn fleet_readings(admin: &Admin) -> ApiResult {
    let Some(fleet) = &admin.fleet else {
        return Err((StatusCode::NOT_FOUND, "fleet mode is off".into()));
    };
    let snapshot = admin.state.load();
    let services = snapshot
        .services
        .iter()
        .map(|service| {
            let groups = service
                .groups
                .iter()
                .map(|group| {
                    let reading = crate::rollout::group_reading(service, &group.name);
                    (group.name.clone(), ReadingWire::from(&reading))
                })
                .collect();
            (service.name.clone(), groups)
        })
        .collect();
    Ok(to_json(&Readings {
        replica: fleet.replica().to_owned(),
        services,
    }))
}

/// `GET /api/v1/fleet`.
pub(crate) fn fleet(admin: &Admin) -> ApiResult {
    match &admin.fleet {
        Some(fleet) => Ok(to_json(&fleet.status())),
        None => Err((
            StatusCode::NOT_FOUND,
            "fleet mode is off: this luas shares no state (set `fleet:` in the config)".into(),
        )),
    }
}

/// `POST /api/v1/reload`.
pub(crate) fn reload(reloader: Option<&Reloader>) -> ApiResult {
    let Some(reloader) = reloader else {
        return Err((
            StatusCode::CONFLICT,
            "luas was not started from a config file, so there is nothing to reload".into(),
        ));
    };
    match reloader.reload("admin API") {
        Ok(()) => Ok(to_json(&Reloaded {
            reloaded: reloader.path().display().to_string(),
        })),
        Err(error @ (ReloadError::Config(_) | ReloadError::Update(_))) => {
            Err((StatusCode::BAD_REQUEST, error.to_string()))
        }
    }
}

fn stop_rollout(record: Option<&mut RolloutRecord>, reason: &str) {
    if let Some(record) = record {
        if record.status == RolloutStatus::Progressing {
            record.status = RolloutStatus::Stopped;
            record.reason = reason.to_owned();
        }
    }
}
