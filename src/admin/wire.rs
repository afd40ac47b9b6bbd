//! The JSON of the admin API under `/api/v1`, as types: what `api` answers
//! and what `luas ctl` reads and sends. One definition, so a field renamed
//! on one side cannot silently vanish on the other.
//!
//! These types are the wire format and nothing else: they hold plain
//! values copied out of the snapshot, never handles. Field names, nesting
//! and `null`s are part of the API that scripts and the dashboard page
//! rely on; add fields, do not rename them. What a request does is `api`'s
//! business; how `ctl` prints an answer is `ctl`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/v1/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceList {
    pub services: Vec<ServiceStatus>,
}

/// One service, as `GET /api/v1/services/{name}` and every change answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `p2c-ewma`, `least-request` or `round-robin`.
    pub balancer: String,
    pub stable_group: String,
    pub groups: Vec<GroupStatus>,
    /// Weights set at run time (admin API, ctl, rollout); null when the
    /// file's weights apply.
    pub runtime_weights: Option<Weights>,
    /// The weights the last rollback replaced; null when none.
    pub replaced_by_rollback: Option<Weights>,
    /// The running (or last) rollout; null when the service has none.
    pub rollout: Option<RolloutProgress>,
    /// Fleet mode, in the answer to a change: how it reached the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub weight: u32,
    /// This group's fraction of the service's total weight, `0.0..=1.0`.
    pub share: f64,
    /// The weight in the config file; null for a group the file lacks.
    pub file_weight: Option<u32>,
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub address: String,
    /// A name for people (the demo's `stable-1`), present only where one is
    /// known: see `admin::names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub healthy: bool,
    pub ewma_ms: f64,
    pub in_flight: u64,
    pub requests: u64,
    /// 5xx responses and requests that got no response.
    pub errors: u64,
    /// Latency quantiles since start; null before the first response.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests per second over the last minute.
    pub rps: f64,
    /// Over the last minute; null without requests.
    pub error_rate: Option<f64>,
}

pub(crate) use crate::fleet::{FleetChange, FleetStatus};
pub(crate) use crate::rollout::Progress as RolloutProgress;

/// Group name → weight: the body of `PUT /api/v1/services/{name}/weights`,
/// and how weights are shown.
pub(crate) type Weights = BTreeMap<String, u32>;

/// The body of `POST /api/v1/services/{name}/promote`; an empty body is the
/// same as no `group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromoteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `POST /api/v1/reload`: the file that was read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reloaded {
    pub reloaded: String,
}

/// Every refusal: 400, 404, 409, 401, 403, 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_name_has_no_name_key() {
        let endpoint = EndpointStatus {
            address: "127.0.0.1:9001".into(),
            name: None,
            healthy: true,
            ewma_ms: 1.5,
            in_flight: 0,
            requests: 3,
            errors: 0,
            p50_ms: None,
            p90_ms: None,
            p99_ms: Some(2.0),
            rps: 0.0,
            error_rate: None,
        };
        let json = serde_json::to_value(&endpoint).unwrap();
        assert!(json.get("name").is_none(), "{json}");
        assert_eq!(json["p50_ms"], serde_json::Value::Null);
        let named = EndpointStatus {
            name: Some("stable-1".into()),
            ..endpoint
        };
        let json = serde_json::to_value(&named).unwrap();
        assert_eq!(json["name"], "stable-1");
        let back: EndpointStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, named);
    }

    #[test]
    fn promote_bodies() {
        let body: PromoteRequest = serde_json::from_str(r#"{"group": "canary"}"#).unwrap();
        assert_eq!(body.group.as_deref(), Some("canary"));
        assert!(serde_json::from_str::<PromoteRequest>(r#"{"grup": "canary"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&PromoteRequest::default()).unwrap(),
            "{}"
        );
    }
}
