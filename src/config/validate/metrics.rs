//! `metrics`: histogram buckets that climb and the Kubernetes namespace of
//! the linkerd-compatible series.
//!
//! Called from [`super::Checker::config`]; whether `deployment` names fit
//! those series is checked with the groups.

use super::values::{k8s_name_problem, K8S_NAME_FORM};
use super::Checker;
use crate::config::defaults;

impl Checker {
    pub(super) fn buckets(&mut self, raw: Option<Vec<f64>>) -> Vec<f64> {
        let Some(buckets) = raw else {
            return defaults::BUCKETS.to_vec();
        };
        if buckets.is_empty() {
            self.issue(
                "metrics.buckets",
                "`buckets` is empty; list at least one upper bound in seconds, or remove \
                 `buckets` to use the defaults",
            );
        }
        for (index, &bound) in buckets.iter().enumerate() {
            let path = format!("metrics.buckets[{index}]");
            if !bound.is_finite() || bound <= 0.0 {
                self.issue(
                    path,
                    format!(
                        "bucket bound {bound} must be a positive number of seconds, e.g. 0.005"
                    ),
                );
                continue;
            }
            if index > 0 {
                let previous = buckets[index - 1];
                // Only compare against a valid neighbour, so that one bad
                // value is reported once.
                if previous.is_finite() && previous > 0.0 && bound <= previous {
                    self.issue(
                        path,
                        format!(
                            "bucket bound {bound} is not greater than the previous bound \
                             {previous}; bounds must be strictly increasing"
                        ),
                    );
                }
            }
        }
        buckets
    }

    pub(super) fn namespace(&mut self, raw: Option<String>) -> String {
        let Some(namespace) = raw else {
            return defaults::NAMESPACE.to_owned();
        };
        if let Some(problem) = k8s_name_problem(&namespace) {
            self.issue(
                "metrics.namespace",
                format!(
                    "namespace {namespace:?} {problem}; use the Kubernetes namespace luas's \
                     services run in; {K8S_NAME_FORM}"
                ),
            );
        }
        namespace
    }
}
