//! `services[].health_check`: the probe path, its interval and timeout (the
//! timeout fits the interval) and the pass/fail thresholds. The syntax of the
//! path belongs to [`HealthPath`].
//!
//! Called from `services`; probing itself is `health::active`.

use super::values::which;
use super::Checker;
use crate::config::health_check::HealthPath;
use crate::config::raw::RawHealthCheck;
use crate::config::{defaults, HealthCheckConfig};

impl Checker {
    pub(super) fn health_check(&mut self, path: &str, raw: &RawHealthCheck) -> HealthCheckConfig {
        let probe_path = raw
            .path
            .parse::<HealthPath>()
            .map_err(|why| self.issue(format!("{path}.path"), why.to_string()))
            .ok();
        let interval = self.duration_or(
            &format!("{path}.interval"),
            raw.interval.as_deref(),
            defaults::HEALTH_INTERVAL,
            Some("endpoints would be probed in a busy loop"),
        );
        let timeout = self.duration_or(
            &format!("{path}.timeout"),
            raw.timeout.as_deref(),
            defaults::HEALTH_TIMEOUT,
            Some("every probe would fail before an endpoint could answer"),
        );
        if let (Some(timeout), Some(interval)) = (timeout, interval) {
            // Probes are sent every `interval`; a longer timeout would let
            // them pile up on a slow endpoint.
            if timeout > interval {
                self.issue(
                    format!("{path}.timeout"),
                    format!(
                        "{} is longer than {}, so probes of a slow endpoint would overlap; \
                         set `timeout` to at most the interval",
                        which("timeout", timeout, raw.timeout.is_some()),
                        which("interval", interval, raw.interval.is_some()),
                    ),
                );
            }
        }
        let healthy_threshold = self.int_in_range(
            &format!("{path}.healthy_threshold"),
            raw.healthy_threshold,
            defaults::HEALTHY_THRESHOLD,
            1..=u32::MAX,
            "give the consecutive passing probes that mark an endpoint healthy again, at least \
             1, e.g. 2",
        );
        let unhealthy_threshold = self.int_in_range(
            &format!("{path}.unhealthy_threshold"),
            raw.unhealthy_threshold,
            defaults::UNHEALTHY_THRESHOLD,
            1..=u32::MAX,
            "give the consecutive failing probes that mark an endpoint unhealthy, at least 1, \
             e.g. 3",
        );
        HealthCheckConfig {
            path: probe_path.map_or_else(|| raw.path.clone(), HealthPath::into_string),
            interval: interval.unwrap_or(defaults::HEALTH_INTERVAL),
            timeout: timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
            healthy_threshold,
            unhealthy_threshold,
        }
    }
}
