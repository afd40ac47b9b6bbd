//! The series of mirrored traffic (a route's `mirror` filter): the copies'
//! responses and latencies, in the backend families under the extra label
//! `mirror="true"`, and the copies shed, in `luas_mirror_shed_total`.
//!
//! A Prometheus family has one set of label names in the `prometheus`
//! crate, so the mirror's series live in a registry of their own, in
//! families with the backend families' names and one more label, and
//! [`MirrorFamilies::merge_into`] appends them to the backend families when
//! `/metrics` is rendered. The primary traffic's series keep their labels
//! unchanged: `{mirror="true"}` selects the copies, `{mirror!="true"}` leaves
//! them out, and a sum over the family counts both.

use prometheus::core::Collector as _;
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, Registry};

use super::handles::{CodeClass, CodeCounters};
use super::Register;

#[derive(Debug)]
pub(crate) struct MirrorFamilies {
    /// Holds `requests` and `duration`, merged into the main exposition.
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    shed: IntCounterVec,
}

/// Handles for the copies one endpoint got.
#[derive(Debug, Clone)]
pub struct MirrorSeries {
    pub duration: Histogram,
    pub requests: CodeCounters,
}

/// Why a copy was not sent, one counter each, for one mirror filter.
#[derive(Debug, Clone)]
pub struct MirrorShed {
    /// `max_in_flight` copies were already on their way.
    pub busy: IntCounter,
    /// The request body was larger than `max_body_bytes`.
    pub body_too_large: IntCounter,
    /// The request body never arrived whole (the client's body failed, or
    /// the request was refused before it was read).
    pub body_incomplete: IntCounter,
}

const SERIES_LABELS: &[&str] = &["service", "group", "endpoint", "mirror"];

impl MirrorFamilies {
    pub(crate) fn register(register: Register<'_>, buckets: &[f64]) -> Self {
        let registry = Registry::new();
        let own = Register(&registry);
        let mut request_labels = SERIES_LABELS.to_vec();
        request_labels.push("code");
        Self {
            requests: own.counter(
                "luas_backend_requests_total",
                "(merged into the backend family)",
                &request_labels,
            ),
            duration: own.histogram(
                "luas_backend_request_duration_seconds",
                "(merged into the backend family)",
                SERIES_LABELS,
                buckets,
            ),
            registry,
            shed: register.counter(
                "luas_mirror_shed_total",
                "Mirrored copies not sent, by reason: busy (max_in_flight copies on their way), body_too_large, body_incomplete.",
                &["listener", "route", "service", "reason"],
            ),
        }
    }

    pub(crate) fn series(&self, service: &str, group: &str, endpoint: &str) -> MirrorSeries {
        let labels = [service, group, endpoint, "true"];
        MirrorSeries {
            duration: self.duration.with_label_values(&labels),
            requests: CodeCounters::bind(&self.requests, &labels),
        }
    }

    pub(crate) fn shed(&self, listener: &str, route: &str, service: &str) -> MirrorShed {
        let reason = |reason: &str| {
            self.shed
                .with_label_values(&[listener, route, service, reason])
        };
        MirrorShed {
            busy: reason("busy"),
            body_too_large: reason("body_too_large"),
            body_incomplete: reason("body_incomplete"),
        }
    }

    pub(crate) fn remove_endpoint(&self, service: &str, group: &str, endpoint: &str) {
        let labels = [service, group, endpoint, "true"];
        let _ = self.duration.remove_label_values(&labels);
        for code in CodeClass::ALL {
            let _ = self.requests.remove_label_values(&[
                service,
                group,
                endpoint,
                "true",
                code.label(),
            ]);
        }
    }

    pub(crate) fn remove_route(&self, listener: &str, route: &str) {
        // The target service is not known here: drop every series of the route.
        let mut families = self.shed.collect();
        let Some(family) = families.pop() else {
            return;
        };
        for metric in family.get_metric() {
            let value = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|pair| pair.name() == name)
                    .map(|pair| pair.value().to_owned())
                    .unwrap_or_default()
            };
            if value("listener") == listener && value("route") == route {
                let _ = self.shed.remove_label_values(&[
                    listener,
                    route,
                    &value("service"),
                    &value("reason"),
                ]);
            }
        }
    }

    /// Appends the mirror's series to the families of the same name in
    /// `families` (the main registry's gathering).
    pub(crate) fn merge_into(&self, families: &mut [MetricFamily]) {
        for mut mirrored in self.registry.gather() {
            if let Some(family) = families
                .iter_mut()
                .find(|family| family.name() == mirrored.name())
            {
                family.mut_metric().extend(mirrored.take_metric());
            }
        }
    }
}
