//! The families of fleet mode and of luas's use of the Kubernetes API. They
//! are labelled (by fleet, by kind), so a luas that runs alone exports none
//! of their series.

use prometheus::{Histogram, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec};

use super::Register;

/// Upper bounds of `luas_fleet_apply_lag_seconds`: from a write of the fleet
/// state to this replica applying it, a few milliseconds on a quiet cluster,
/// seconds while the API server struggles.
const APPLY_LAG_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone)]
pub(crate) struct FleetFamilies {
    state_version: IntGaugeVec,
    apply_lag: HistogramVec,
    replicas: IntGaugeVec,
    leader: IntGaugeVec,
    watch_events: IntCounterVec,
    requests: IntCounterVec,
}

/// One fleet's handles, bound once when fleet mode starts.
#[derive(Debug, Clone)]
pub struct FleetMetrics {
    /// The version of the fleet state this replica has applied.
    pub state_version: IntGauge,
    pub apply_lag: Histogram,
    /// Live replicas (unexpired Leases), this one included.
    pub replicas: IntGauge,
    /// 1 while this replica drives the fleet's rollouts.
    pub leader: IntGauge,
}

impl FleetFamilies {
    pub(crate) fn register(register: Register<'_>) -> Self {
        Self {
            state_version: register.gauge(
                "luas_fleet_state_version",
                "Version of the fleet's shared canary state this replica has applied.",
                &["fleet"],
            ),
            apply_lag: register.histogram(
                "luas_fleet_apply_lag_seconds",
                "Time from a write of the fleet state to this replica applying it.",
                &["fleet"],
                APPLY_LAG_BUCKETS,
            ),
            replicas: register.gauge(
                "luas_fleet_replicas",
                "Live replicas of the fleet (Leases not expired), this one included.",
                &["fleet"],
            ),
            leader: register.gauge(
                "luas_fleet_leader",
                "1 while this replica holds the fleet's rollout Lease and judges its rollouts.",
                &["fleet"],
            ),
            watch_events: register.counter(
                "luas_kubernetes_watch_events_total",
                "Events of luas's watches on the Kubernetes API, by kind and result \
                 (applied, ignored, error, restarted).",
                &["kind", "result"],
            ),
            requests: register.counter(
                "luas_kubernetes_requests_total",
                "Requests luas sent to the Kubernetes API, by verb, kind and HTTP status \
                 (code=\"error\": no answer).",
                &["verb", "kind", "code"],
            ),
        }
    }

    pub(crate) fn fleet(&self, fleet: &str) -> FleetMetrics {
        FleetMetrics {
            state_version: self.state_version.with_label_values(&[fleet]),
            apply_lag: self.apply_lag.with_label_values(&[fleet]),
            replicas: self.replicas.with_label_values(&[fleet]),
            leader: self.leader.with_label_values(&[fleet]),
        }
    }

    pub(crate) fn watch_event(&self, kind: &str, result: &str) {
        self.watch_events.with_label_values(&[kind, result]).inc();
    }

    pub(crate) fn request(&self, verb: &str, kind: &str, code: &str) {
        self.requests.with_label_values(&[verb, kind, code]).inc();
    }
}
