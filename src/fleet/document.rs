//! What the fleet keeps in the Kubernetes API, as plain data: the shared
//! state document in ConfigMap `luas-fleet-<name>`, and each replica's Lease
//! `luas-fleet-<name>-<replica>` with the version it has applied. Turning
//! them into and out of Kubernetes objects is pure, so it is tested without
//! an API server.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::state::Overrides;

/// The ConfigMap key holding the document.
pub(crate) const STATE_KEY: &str = "state.json";
/// Label on every object luas writes for a fleet: its name.
pub(crate) const FLEET_LABEL: &str = "luas.io/fleet";
/// Label telling replica Leases from the rollout Lease.
pub(crate) const ROLE_LABEL: &str = "luas.io/role";
pub(crate) const APPLIED_ANNOTATION: &str = "luas.io/applied-version";
pub(crate) const ADMIN_ANNOTATION: &str = "luas.io/admin-address";

/// How long a replica's Lease lasts without renewal, and how often it is renewed.
pub(crate) const REPLICA_LEASE: Duration = Duration::from_secs(40);
pub(crate) const REPLICA_RENEW: Duration = Duration::from_secs(10);

pub(crate) fn state_object(fleet: &str) -> String {
    format!("luas-fleet-{fleet}")
}

pub(crate) fn replica_lease(fleet: &str, replica: &str) -> String {
    format!("luas-fleet-{fleet}-{replica}")
}

pub(crate) fn rollout_lease(fleet: &str) -> String {
    format!("luas-fleet-{fleet}-rollout")
}

/// The fleet's shared canary state: every runtime override, and the change
/// that made this version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Document {
    /// Counts writes from 1; a replica applies only versions above its own.
    pub version: u64,
    pub change: Change,
    pub state: Overrides,
}

/// Who made a version, why and when, for the log and the lag metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// What was done, e.g. "rollback of web".
    pub cause: String,
    /// Which replica wrote it, and through what ("web-7f9c (admin API)").
    pub by: String,
    /// When it was written, milliseconds since the Unix epoch.
    pub at_millis: u64,
}

/// Why a ConfigMap does not hold a fleet document.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DocumentError {
    #[error("ConfigMap {0} has no {STATE_KEY} key")]
    Missing(String),
    #[error("ConfigMap {name} key {STATE_KEY} is not a luas fleet document: {source}")]
    Invalid {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Document {
    /// The version before any write: nothing overridden.
    pub(crate) fn empty() -> Self {
        Self {
            version: 0,
            change: Change::default(),
            state: Overrides::default(),
        }
    }

    pub(crate) fn from_config_map(config_map: &ConfigMap) -> Result<Self, DocumentError> {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        let text = config_map
            .data
            .as_ref()
            .and_then(|data| data.get(STATE_KEY))
            .ok_or_else(|| DocumentError::Missing(name.clone()))?;
        serde_json::from_str(text).map_err(|source| DocumentError::Invalid { name, source })
    }

    /// The ConfigMap holding this document; `resource_version` is the
    /// precondition of an update (None to create).
    pub(crate) fn to_config_map(&self, fleet: &str, resource_version: Option<String>) -> ConfigMap {
        let text = serde_json::to_string_pretty(self).expect("documents serialize");
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(state_object(fleet)),
                labels: Some(labels(fleet, "state")),
                resource_version,
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(STATE_KEY.to_owned(), text)])),
            ..ConfigMap::default()
        }
    }

    /// How long ago this version was written, by this machine's clock.
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        let written = UNIX_EPOCH + Duration::from_millis(self.change.at_millis);
        now.duration_since(written).unwrap_or(Duration::ZERO)
    }
}

pub(crate) fn millis_since_epoch(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// `now` as a Lease's renew or acquire time.
pub(crate) fn micro_time(now: SystemTime) -> MicroTime {
    let millis = i64::try_from(millis_since_epoch(now)).unwrap_or(i64::MAX);
    MicroTime(Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// When a Lease was last renewed, ms since the epoch (0: never), and how
/// long it lasts (`default` when it does not say).
pub(crate) fn renewal(spec: &LeaseSpec, default: Duration) -> (u64, u64) {
    let renewed = spec.renew_time.as_ref().map_or(0, |time| {
        u64::try_from(time.0.as_millisecond()).unwrap_or(0)
    });
    let seconds = spec
        .lease_duration_seconds
        .and_then(|seconds| u64::try_from(seconds).ok())
        .unwrap_or(default.as_secs());
    (renewed, seconds)
}

/// When a Lease expires unless renewed, ms since the epoch.
pub(crate) fn expiry_millis(spec: &LeaseSpec, default: Duration) -> u64 {
    let (renewed, seconds) = renewal(spec, default);
    renewed + seconds * 1000
}

pub(crate) fn labels(fleet: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_owned(), "luas".to_owned()),
        (FLEET_LABEL.to_owned(), fleet.to_owned()),
        (ROLE_LABEL.to_owned(), role.to_owned()),
    ])
}

/// The label selector of a fleet's replica Leases.
pub(crate) fn replica_selector(fleet: &str) -> String {
    format!("{FLEET_LABEL}={fleet},{ROLE_LABEL}=replica")
}

/// What one replica's Lease says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Replica {
    pub name: String,
    /// The fleet state version it has applied (0: none yet).
    pub applied: u64,
    /// Where its admin listener answers, as it reported it.
    pub admin_address: String,
    /// Last renewal, milliseconds since the Unix epoch.
    pub renewed_millis: u64,
    pub lease_seconds: u64,
}

impl Replica {
    /// The Lease of a replica that has applied `applied`, renewed `now`.
    pub(crate) fn to_lease(
        fleet: &str,
        replica: &str,
        applied: u64,
        admin_address: &str,
        now: SystemTime,
        resource_version: Option<String>,
    ) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(replica_lease(fleet, replica)),
                labels: Some(labels(fleet, "replica")),
                annotations: Some(BTreeMap::from([
                    (APPLIED_ANNOTATION.to_owned(), applied.to_string()),
                    (ADMIN_ANNOTATION.to_owned(), admin_address.to_owned()),
                ])),
                resource_version,
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(replica.to_owned()),
                lease_duration_seconds: Some(
                    i32::try_from(REPLICA_LEASE.as_secs()).unwrap_or(i32::MAX),
                ),
                renew_time: Some(micro_time(now)),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Reads a replica Lease; None for a Lease that is not one.
    pub(crate) fn from_lease(lease: &Lease) -> Option<Self> {
        let spec = lease.spec.as_ref()?;
        let name = spec.holder_identity.clone()?;
        let annotations = lease.metadata.annotations.as_ref();
        let annotation = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
        let (renewed_millis, lease_seconds) = renewal(spec, REPLICA_LEASE);
        Some(Self {
            name,
            applied: annotation(APPLIED_ANNOTATION)
                .and_then(|text| text.parse().ok())
                .unwrap_or(0),
            admin_address: annotation(ADMIN_ANNOTATION).unwrap_or_default(),
            renewed_millis,
            lease_seconds,
        })
    }

    /// A replica whose Lease has expired counts no more: it died without
    /// deleting it.
    pub(crate) fn is_live(&self, now: SystemTime) -> bool {
        let expires = self.renewed_millis + self.lease_seconds * 1000;
        millis_since_epoch(now) < expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceOverride;

    #[test]
    fn a_document_survives_its_config_map() {
        let mut state = Overrides::default();
        state.services.insert(
            "web".into(),
            ServiceOverride {
                weights: BTreeMap::from([("stable".into(), 100), ("canary".into(), 0)]),
                ..ServiceOverride::default()
            },
        );
        let document = Document {
            version: 7,
            change: Change {
                cause: "rollback of web".into(),
                by: "web-1 (admin API)".into(),
                at_millis: 1_700_000_000_123,
            },
            state,
        };
        let config_map = document.to_config_map("edge", Some("42".into()));
        assert_eq!(config_map.metadata.name.as_deref(), Some("luas-fleet-edge"));
        assert_eq!(config_map.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            config_map.metadata.labels.as_ref().unwrap()[FLEET_LABEL],
            "edge"
        );
        assert_eq!(Document::from_config_map(&config_map).unwrap(), document);
    }

    #[test]
    fn a_config_map_that_is_not_a_document_is_an_error_not_a_reset() {
        let mut config_map = Document::empty().to_config_map("edge", None);
        config_map
            .data
            .as_mut()
            .unwrap()
            .insert(STATE_KEY.into(), "{\"version\": \"seven\"}".into());
        let error = Document::from_config_map(&config_map).unwrap_err();
        assert!(
            error.to_string().contains("not a luas fleet document"),
            "{error}"
        );
        config_map.data = None;
        let error = Document::from_config_map(&config_map).unwrap_err();
        assert!(error.to_string().contains("has no state.json"), "{error}");
    }

    #[test]
    fn a_lease_says_what_its_replica_applied_and_until_when_it_counts() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let lease = Replica::to_lease("edge", "web-1", 9, "10.0.0.5:9901", now, None);
        assert_eq!(
            lease.metadata.name.as_deref(),
            Some("luas-fleet-edge-web-1")
        );
        let replica = Replica::from_lease(&lease).unwrap();
        assert_eq!(
            replica,
            Replica {
                name: "web-1".into(),
                applied: 9,
                admin_address: "10.0.0.5:9901".into(),
                renewed_millis: 1_700_000_000_000,
                lease_seconds: 40,
            }
        );
        assert!(replica.is_live(now + Duration::from_secs(39)));
        assert!(!replica.is_live(now + Duration::from_secs(40)));
        // A Lease without a holder is not a replica's.
        let mut other = lease;
        other.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(Replica::from_lease(&other), None);
    }
}
