//! What the rollout judge and the dashboard history read from the counters:
//! a [`Reading`] of cumulative counters at one moment, the difference of two
//! readings, and the [`Window`] that is judged and shown (requests, errors,
//! p99). The rule for what counts as an error, [`counts_as_error`], lives
//! here and nowhere else, so the rollback decision cannot drift from what the
//! dashboard and the admin API show.
//!
//! `rollout` keeps a reading per group at the start of each step and judges
//! the window since; `history` keeps a reading per endpoint per second and
//! draws windows over the last seconds; `admin::api` shows an endpoint's
//! totals. Nothing here keeps state or knows about snapshots: callers pick
//! which endpoints to read.

use serde::{Deserialize, Serialize};

use super::handles::{CodeClass, CodeCounters, EndpointMetrics};
use super::histogram::{add_buckets, bucket_delta, cumulative_buckets, quantile};
use super::mirror::MirrorSeries;

/// The one error rule: a 5xx response, no response at all (connect
/// failure, reset, timeout), or a gRPC server-side failure status. A 4xx is
/// the client's doing and does not count.
pub(super) fn counts_as_error(code: CodeClass) -> bool {
    matches!(
        code,
        CodeClass::ServerError | CodeClass::Error | CodeClass::GrpcError
    )
}

/// Cumulative counters of one endpoint, or summed over several, as read at
/// one moment; or, out of [`Reading::since`], what happened between two.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reading {
    pub(crate) requests: u64,
    /// Requests that [`counts_as_error`].
    pub(crate) errors: u64,
    /// Cumulative latency buckets in seconds, ending with +Inf; empty in a
    /// reading of nothing.
    pub(crate) buckets: Vec<(f64, u64)>,
}

/// What a group did between two readings: what the rollout judges and the
/// admin API shows of a rollout step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub requests: u64,
    /// 5xx responses and requests that got no response.
    pub errors: u64,
    /// Seconds; None without observations.
    pub p99: Option<f64>,
}

impl Reading {
    /// One endpoint's counters now.
    pub(crate) fn of(metrics: &EndpointMetrics) -> Self {
        Self::of_series(&metrics.requests, &metrics.duration)
    }

    /// One endpoint's counters now, its mirrored copies included: all it
    /// served, as the dashboard shows it (a shadow version gets only
    /// copies). Rollouts judge [`Reading::of`], the traffic luas routed.
    pub(crate) fn served(metrics: &EndpointMetrics, mirror: Option<&MirrorSeries>) -> Self {
        let mut reading = Self::of(metrics);
        if let Some(mirror) = mirror {
            reading.add(&Self::of_series(&mirror.requests, &mirror.duration));
        }
        reading
    }

    fn of_series(requests: &CodeCounters, duration: &prometheus::Histogram) -> Self {
        Self {
            requests: requests.total(),
            errors: CodeClass::ALL
                .into_iter()
                .filter(|&code| counts_as_error(code))
                .map(|code| requests.get(code))
                .sum(),
            buckets: cumulative_buckets(duration),
        }
    }

    /// Several endpoints' counters now, summed (a group's).
    pub(crate) fn sum<'a>(endpoints: impl IntoIterator<Item = &'a EndpointMetrics>) -> Self {
        let mut sum = Self::default();
        for metrics in endpoints {
            sum.add(&Self::of(metrics));
        }
        sum
    }

    /// Adds `other` into this one (same bucket bounds).
    pub(crate) fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.errors += other.errors;
        add_buckets(&mut self.buckets, &other.buckets);
    }

    /// What happened between `earlier` and this reading. Counters never go
    /// back, but a series that was removed and bound again restarts at zero,
    /// so a difference below zero reads as zero.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            buckets: bucket_delta(&self.buckets, &earlier.buckets),
        }
    }

    /// The `q`-quantile of the latencies, in seconds; None without any.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        quantile(q, &self.buckets)
    }

    /// Requests, errors and p99 of this reading (meant for one out of
    /// [`Reading::since`]).
    pub(crate) fn window(&self) -> Window {
        Window {
            requests: self.requests,
            errors: self.errors,
            p99: self.quantile(0.99),
        }
    }
}

/// A [`Reading`] as JSON: how a replica hands its counters to the fleet's
/// rollout leader. Bucket bounds are written as text, since JSON has no
/// infinity (`+Inf` for the last).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadingWire {
    pub requests: u64,
    pub errors: u64,
    pub buckets: Vec<(String, u64)>,
}

impl From<&Reading> for ReadingWire {
    fn from(reading: &Reading) -> Self {
        Self {
            requests: reading.requests,
            errors: reading.errors,
            buckets: reading
                .buckets
                .iter()
                .map(|(bound, count)| {
                    let bound = if bound.is_infinite() {
                        "+Inf".to_owned()
                    } else {
                        bound.to_string()
                    };
                    (bound, *count)
                })
                .collect(),
        }
    }
}

impl ReadingWire {
    /// The reading; None when a bound is not a number.
    pub(crate) fn reading(&self) -> Option<Reading> {
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, count)| {
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                Some((bound, *count))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Reading {
            requests: self.requests,
            errors: self.errors,
            buckets,
        })
    }
}

impl Window {
    /// Errors per request; None without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn a_reading_crosses_json_whole() {
        let reading = Reading {
            requests: 7,
            errors: 2,
            buckets: vec![(0.005, 3), (0.25, 6), (f64::INFINITY, 7)],
        };
        let text = serde_json::to_string(&ReadingWire::from(&reading)).unwrap();
        assert!(text.contains("\"+Inf\""), "{text}");
        let back: ReadingWire = serde_json::from_str(&text).unwrap();
        assert_eq!(back.reading(), Some(reading));
        let broken = ReadingWire {
            buckets: vec![("soon".into(), 1)],
            ..ReadingWire::default()
        };
        assert_eq!(broken.reading(), None);
    }

    fn reading(requests: u64, errors: u64, buckets: &[(f64, u64)]) -> Reading {
        Reading {
            requests,
            errors,
            buckets: buckets.to_vec(),
        }
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn the_error_rule_for_each_code_class() {
        let rule: Vec<(&str, bool)> = CodeClass::ALL
            .into_iter()
            .map(|code| (code.label(), counts_as_error(code)))
            .collect();
        assert_eq!(
            rule,
            [
                ("1xx", false),
                ("2xx", false),
                ("3xx", false),
                ("4xx", false),
                ("5xx", true),
                ("error", true),
                ("grpc_error", true),
            ]
        );
    }

    #[test]
    fn an_endpoint_reading_counts_5xx_no_response_and_grpc_failures_as_errors() {
        let metrics = Metrics::new(&[0.01, 0.1]);
        let endpoint = metrics.endpoint("api", "canary", "127.0.0.1:9001");
        for code in CodeClass::ALL {
            endpoint.requests.inc(code);
        }
        endpoint.requests.inc(CodeClass::ServerError);
        endpoint.duration.observe(0.05);
        let reading = Reading::of(&endpoint);
        assert_eq!(
            reading,
            Reading {
                requests: 8,
                errors: 4,
                buckets: vec![(0.01, 0), (0.1, 1), (INF, 1)],
            }
        );
    }

    #[test]
    fn a_group_reading_sums_its_endpoints() {
        let metrics = Metrics::new(&[0.01, 0.1]);
        let one = metrics.endpoint("api", "canary", "127.0.0.1:9001");
        let two = metrics.endpoint("api", "canary", "127.0.0.1:9002");
        one.requests.inc(CodeClass::Success);
        one.duration.observe(0.005);
        two.requests.inc(CodeClass::Error);
        two.requests.inc(CodeClass::ClientError);
        two.duration.observe(0.5);
        assert_eq!(
            Reading::sum([&one, &two]),
            reading(3, 1, &[(0.01, 1), (0.1, 1), (INF, 2)])
        );
        assert_eq!(Reading::sum([]), Reading::default());
    }

    #[test]
    fn delta_of_two_readings() {
        let start = reading(100, 3, &[(0.01, 60), (0.1, 90), (INF, 100)]);
        let now = reading(250, 5, &[(0.01, 100), (0.1, 220), (INF, 250)]);
        assert_eq!(
            now.since(&start),
            reading(150, 2, &[(0.01, 40), (0.1, 130), (INF, 150)])
        );
        // Since nothing (an endpoint seen for the first time): all of it.
        assert_eq!(now.since(&Reading::default()), now);
        // A series bound again restarts at zero: no negative counts.
        assert_eq!(
            start.since(&now),
            reading(0, 0, &[(0.01, 0), (0.1, 0), (INF, 0)])
        );
    }

    #[test]
    fn p99_from_buckets() {
        let delta = reading(100, 0, &[(0.01, 50), (0.1, 100), (1.0, 100), (INF, 100)]);
        // Rank 99 of 100 is 49/50 of the way through the (0.01, 0.1] bucket.
        let p99 = delta.window().p99.unwrap();
        assert!((p99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-9, "{p99}");
        let p50 = delta.quantile(0.5).unwrap();
        assert!((p50 - 0.01).abs() < 1e-9, "{p50}");
        // Everything above the largest bound reads as that bound.
        let slow = reading(10, 0, &[(0.01, 0), (1.0, 0), (INF, 10)]);
        assert_eq!(slow.window().p99, Some(1.0));
    }

    #[test]
    fn an_empty_window() {
        assert_eq!(Reading::default().window(), Window::default());
        let same = reading(40, 2, &[(0.01, 30), (INF, 40)]);
        let window = same.since(&same).window();
        assert_eq!(
            window,
            Window {
                requests: 0,
                errors: 0,
                p99: None
            }
        );
        assert_eq!(window.error_rate(), None);
        assert_eq!(same.window().error_rate(), Some(0.05));
    }

    #[test]
    fn a_window_serializes_as_the_admin_api_shows_it() {
        let window = Window {
            requests: 120,
            errors: 3,
            p99: Some(0.25),
        };
        assert_eq!(
            serde_json::to_value(window).unwrap(),
            serde_json::json!({"requests": 120, "errors": 3, "p99": 0.25})
        );
    }
}
