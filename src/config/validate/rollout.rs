//! `services[].rollout`: the group being rolled out (a group of the service
//! other than the stable one), steps that climb from 1 to 100, the interval
//! and tick, and the thresholds the group is judged by.
//!
//! Called from `services` with the service already built, so the stable group
//! is found by the same rule the rollout driver uses (`rollout.rs`).

use std::time::Duration;

use super::values::ERROR_RATE_FORM;
use super::Checker;
use crate::config::raw::RawRollout;
use crate::config::{defaults, RolloutConfig, ServiceConfig};

// Rollout defaults. Only validation applies them (the rollout driver reads
// the typed values), which is why they are not (yet) in `super::defaults`.
const ROLLOUT_MIN_REQUESTS: u64 = 100;

const ROLLOUT_MAX_ERROR_RATE: f64 = 0.01;

const ROLLOUT_MAX_P99_RATIO: f64 = 1.5;

impl Checker {
    pub(super) fn rollout(
        &mut self,
        path: &str,
        raw: &RawRollout,
        service: &ServiceConfig,
    ) -> RolloutConfig {
        self.rollout_group(path, &raw.group, service);
        self.rollout_steps(&format!("{path}.steps"), &raw.steps);

        let interval = self.checked_duration(
            &format!("{path}.interval"),
            &raw.interval,
            Some("each step would end as soon as the group had `min_requests`"),
        );
        let tick = match raw.tick.as_deref() {
            Some(text) => self.checked_duration(
                &format!("{path}.tick"),
                text,
                Some("the rollout would be evaluated in a busy loop"),
            ),
            None => Some(defaults::ROLLOUT_TICK),
        };
        if let (Some(tick), Some(interval)) = (tick, interval) {
            // A step is judged when a tick sees its interval is over; ticks
            // further apart than that would stretch every step.
            if tick > interval {
                let which = match raw.tick {
                    Some(_) => format!("tick {tick:?}"),
                    None => format!("the default tick {tick:?}"),
                };
                self.issue(
                    format!("{path}.tick"),
                    format!(
                        "{which} is longer than the interval {interval:?}, so steps would \
                         last longer than configured; set `tick` to at most the interval"
                    ),
                );
            }
        }

        let max_error_rate = raw
            .max_error_rate
            .as_ref()
            .map_or(ROLLOUT_MAX_ERROR_RATE, |rate| {
                self.rate(&format!("{path}.max_error_rate"), rate, &ERROR_RATE_FORM)
                    .unwrap_or(ROLLOUT_MAX_ERROR_RATE)
            });
        let max_p99_ratio = raw.max_p99_ratio.unwrap_or(ROLLOUT_MAX_P99_RATIO);
        if !(max_p99_ratio.is_finite() && max_p99_ratio > 0.0) {
            self.issue(
                format!("{path}.max_p99_ratio"),
                format!(
                    "max_p99_ratio {max_p99_ratio} must be a number above 0: the highest \
                     tolerated p99 latency of the group divided by the stable group's, e.g. \
                     1.5 for at most 50% slower"
                ),
            );
        }

        RolloutConfig {
            group: raw.group.clone(),
            steps: raw.steps.clone(),
            interval: interval.unwrap_or(Duration::ZERO),
            min_requests: raw.min_requests.unwrap_or(ROLLOUT_MIN_REQUESTS),
            max_error_rate,
            max_p99_ratio,
            tick: tick.unwrap_or(defaults::ROLLOUT_TICK),
        }
    }

    fn rollout_group(&mut self, path: &str, group: &str, service: &ServiceConfig) {
        let groups = &service.groups;
        // No groups means `groups` itself is broken and already reported.
        if groups.is_empty() {
            return;
        }
        let stable = &groups[service.stable_group()];
        if groups.len() == 1 {
            self.issue(
                path,
                format!(
                    "the service has a single group ({:?}), so there is nothing to roll out: a \
                     rollout raises a second group's weight step by step, judged against the \
                     stable group; define both under `groups` (e.g. stable and canary) or \
                     remove `rollout`",
                    stable.name
                ),
            );
            return;
        }
        let candidates: Vec<&str> = groups
            .iter()
            .filter(|g| g.name != stable.name)
            .map(|g| g.name.as_str())
            .collect();
        if candidates.is_empty() {
            // Every group is named like the stable one: a duplicate-name
            // issue already says what to fix.
            return;
        }
        let path = format!("{path}.group");
        if group == stable.name {
            self.issue(
                path,
                format!(
                    "group {group:?} is the stable group (the one named \"stable\", else the \
                     first), which the rollout is judged against, so it cannot be rolled out; \
                     name another group of this service: {}",
                    candidates.join(", ")
                ),
            );
        } else if !candidates.contains(&group) {
            self.issue(
                path,
                format!(
                    "unknown group {group:?}; groups this service can roll out: {}",
                    candidates.join(", ")
                ),
            );
        }
    }

    fn rollout_steps(&mut self, path: &str, steps: &[u32]) {
        const EXAMPLE: &str = "e.g. [5, 25, 50, 100]";
        if steps.is_empty() {
            self.issue(
                path,
                format!(
                    "`steps` is empty; list the rolled-out group's weight in percent at each \
                     step, {EXAMPLE}"
                ),
            );
        }
        let in_range = |step: u32| (1..=100).contains(&step);
        for (index, &step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            if !in_range(step) {
                self.issue(
                    step_path,
                    format!(
                        "step {step} is out of range; a step is the group's share of traffic \
                         in percent, from 1 to 100, {EXAMPLE}"
                    ),
                );
                continue;
            }
            if index > 0 {
                let previous = steps[index - 1];
                // As with buckets: one bad value is reported once.
                if in_range(previous) && step <= previous {
                    self.issue(
                        step_path,
                        format!(
                            "step {step} is not greater than the previous step {previous}; \
                             steps must be strictly increasing, {EXAMPLE}"
                        ),
                    );
                }
            }
        }
    }
}
