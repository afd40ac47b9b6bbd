//! `services[].slow_start`: ramping a new endpoint's share. The window is
//! required and above 0 (it is what turns slow start on), the aggression a
//! number above 0 and the minimum weight a percentage from 1 to 100.
//!
//! Called from `services`; the ramp itself is `config::SlowStartConfig::factor`,
//! applied by `balance`.

use super::Checker;
use crate::config::raw::RawSlowStart;
use crate::config::{defaults, SlowStartConfig};

impl Checker {
    /// None, with the issue recorded, when the window is missing or invalid.
    pub(super) fn slow_start(&mut self, path: &str, raw: &RawSlowStart) -> Option<SlowStartConfig> {
        let window = if let Some(text) = raw.window.as_deref() {
            self.checked_duration(
                &format!("{path}.window"),
                text,
                Some("an endpoint would get its full share at once, as without slow start"),
            )
        } else {
            self.issue(
                format!("{path}.window"),
                "slow_start needs a `window`: how long a new endpoint's share takes to ramp up \
                 to its full share, e.g. `window: 30s` (remove `slow_start` to give new \
                 endpoints their full share at once)",
            );
            None
        };
        let aggression = raw.aggression.unwrap_or(defaults::SLOW_START_AGGRESSION);
        if !(aggression.is_finite() && aggression > 0.0) {
            self.issue(
                format!("{path}.aggression"),
                format!(
                    "aggression {aggression} must be a number above 0: the shape of the ramp, \
                     1 for linear, above 1 for more traffic early in the window, below 1 for \
                     less"
                ),
            );
        }
        let min_weight_percent = self.int_in_range(
            &format!("{path}.min_weight_percent"),
            raw.min_weight_percent,
            defaults::SLOW_START_MIN_WEIGHT_PERCENT,
            1..=100,
            "give the share a new endpoint starts with, in percent of its full share from 1 \
             to 100, e.g. 10",
        );
        Some(SlowStartConfig {
            window: window?,
            aggression,
            min_weight_percent,
        })
    }
}
