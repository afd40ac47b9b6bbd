//! `slow_start:` of a service as validated config: [`SlowStartConfig`], and
//! the ramp it describes ([`SlowStartConfig::factor`]).
//!
//! The formula is Envoy's `slow_start_config`: an endpoint that just started
//! (or came back) gets `max(min_weight, (elapsed / window) ^ (1 / aggression))`
//! of its full share. It lives beside the config because it is a pure
//! function of the config's three values; which endpoint is ramping, and
//! since when, is `endpoint::Health`, and the share is applied by `balance`.
//! `validate::slow_start` checks the values.

use std::time::Duration;

/// `slow_start:` ramps a new endpoint's share over `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStartConfig {
    /// How long an endpoint ramps up after it starts. Above 0; no default:
    /// slow start is off unless a service sets it.
    pub window: Duration,
    /// Shape of the ramp: 1 is linear, above 1 gives more traffic early,
    /// below 1 less. Above 0. Default 1.
    pub aggression: f64,
    /// The share an endpoint gets at the start of its window, in percent of
    /// its full share, 1 to 100. Default 10.
    pub min_weight_percent: u32,
}

impl SlowStartConfig {
    /// The fraction of its full share an endpoint gets `elapsed` into its
    /// window: in `min_weight_percent / 100 ..= 1`, and exactly 1 from the
    /// end of the window on.
    pub fn factor(&self, elapsed: Duration) -> f64 {
        if elapsed >= self.window {
            return 1.0;
        }
        let progress = elapsed.as_secs_f64() / self.window.as_secs_f64();
        // Linear, the default, needs no `powf`.
        let ramp = if self.aggression == 1.0 {
            progress
        } else {
            progress.powf(1.0 / self.aggression)
        };
        ramp.max(f64::from(self.min_weight_percent) / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(aggression: f64, min_weight_percent: u32) -> SlowStartConfig {
        SlowStartConfig {
            window: Duration::from_secs(100),
            aggression,
            min_weight_percent,
        }
    }

    #[test]
    fn linear_ramp_with_a_floor() {
        let linear = config(1.0, 10);
        let at = |secs| linear.factor(Duration::from_secs(secs));
        assert_eq!(at(0), 0.1);
        assert_eq!(at(5), 0.1);
        assert!((at(25) - 0.25).abs() < 1e-9);
        assert!((at(50) - 0.5).abs() < 1e-9);
        assert!((at(99) - 0.99).abs() < 1e-9);
        assert_eq!(at(100), 1.0);
        assert_eq!(at(1_000), 1.0);
    }

    #[test]
    fn aggression_bends_the_curve() {
        let half = Duration::from_secs(50);
        // Above 1: more traffic early (√0.5 ≈ 0.71); below 1: less (0.5² = 0.25).
        assert!((config(2.0, 1).factor(half) - 0.5f64.sqrt()).abs() < 1e-9);
        assert!((config(0.5, 1).factor(half) - 0.25).abs() < 1e-9);
        // The floor still holds.
        assert_eq!(config(0.5, 40).factor(half), 0.4);
        assert_eq!(config(0.5, 100).factor(Duration::ZERO), 1.0);
    }
}
