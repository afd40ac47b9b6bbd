//! `services[].health_check`: the probe path, its interval and timeout (the
//! timeout fits the interval) and the pass/fail thresholds.
//!
//! Called from `services`; probing itself is `health::active`.

use http::uri::PathAndQuery;

use super::values::which;
use super::Checker;
use crate::config::raw::RawHealthCheck;
use crate::config::{defaults, HealthCheckConfig};

impl Checker {
    pub(super) fn health_check(&mut self, path: &str, raw: &RawHealthCheck) -> HealthCheckConfig {
        if let Err(why) = check_health_path(&raw.path) {
            self.issue(format!("{path}.path"), why);
        }
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
            path: raw.path.clone(),
            interval: interval.unwrap_or(defaults::HEALTH_INTERVAL),
            timeout: timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
            healthy_threshold,
            unhealthy_threshold,
        }
    }
}

/// A health check's path is sent as the target of `GET path HTTP/1.1`, so
/// anything that cannot go into a request line is refused here rather than
/// failing every probe.
fn check_health_path(text: &str) -> Result<(), String> {
    const FORM: &str = "e.g. /healthz";
    if !text.starts_with('/') {
        return Err(format!(
            "health check path {text:?} must start with '/', {FORM}"
        ));
    }
    if let Some(bad) = text.chars().find(|&c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "health check path {text:?} contains {bad:?}; a request path cannot hold \
             whitespace or control characters (percent-encode them, e.g. %20), {FORM}"
        ));
    }
    if text.contains('#') {
        return Err(format!(
            "health check path {text:?} contains '#'; a fragment is never sent to the \
             server, so leave it out, {FORM}"
        ));
    }
    // `PathAndQuery` lets raw UTF-8 through, but a request target is ASCII.
    if let Some(bad) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "health check path {text:?} contains {bad:?}; a request path is ASCII, so \
             percent-encode its UTF-8 bytes (e.g. %C3%BC for 'ü'), {FORM}"
        ));
    }
    match PathAndQuery::try_from(text) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "health check path {text:?} is not a valid request path ({error}); \
             percent-encode other characters, {FORM}"
        )),
    }
}
