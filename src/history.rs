//! A short in-memory history of each service's traffic, for the dashboard:
//! per group one point a second for the last five minutes (requests/s, p99
//! and error rate over the last ten seconds, weight), and per endpoint the
//! latency distribution and rates over the last minute.
//!
//! One sampler task reads the endpoints' counters and histograms once a
//! second, the way `/metrics` would, and keeps the readings; nothing on the
//! request path knows about it. Memory is bounded: [`POINTS`] points per
//! group and [`ENDPOINT_READINGS`] readings per endpoint, and whatever left
//! the config is forgotten at the next sample. The admin API turns it into
//! JSON ([`History::to_json`]); the page draws it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::{Reading, Window};
use crate::state::State;

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// Points kept per group: five minutes at one a second.
pub(crate) const POINTS: usize = 300;
/// Readings kept per endpoint: one minute of them, plus the one before.
pub(crate) const ENDPOINT_READINGS: usize = 61;
/// Readings a group's p99 and error rate are computed over (ten seconds).
const RATE_WINDOW: usize = 10;

#[derive(Debug, Default)]
struct Columns {
    t: VecDeque<u64>,
    rps: VecDeque<f64>,
    p99_ms: VecDeque<Option<f64>>,
    error_rate: VecDeque<Option<f64>>,
    weight: VecDeque<u32>,
}

#[derive(Debug, Default)]
struct GroupHistory {
    columns: Columns,
}

#[derive(Debug, Default)]
struct EndpointHistory {
    /// Oldest first, at most ENDPOINT_READINGS.
    readings: VecDeque<(Instant, Reading)>,
}

#[derive(Debug, Default)]
struct ServiceHistory {
    groups: BTreeMap<String, GroupHistory>,
    /// By (group, address).
    endpoints: BTreeMap<(String, SocketAddr), EndpointHistory>,
}

/// What an endpoint did over the last minute (or since it appeared).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EndpointRates {
    pub requests_per_second: f64,
    /// None without requests.
    pub error_rate: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    // Written once a second by the sampler, read by the admin API; never
    // touched by requests.
    services: Mutex<BTreeMap<String, ServiceHistory>>,
}

impl History {
    /// Takes one sample of every service in the current snapshot.
    pub(crate) fn sample(&self, state: &State, now: Instant, wall: SystemTime) {
        let snapshot = state.load();
        let wall_ms = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64;
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        services.retain(|name, _| snapshot.service(name).is_some());
        for service in &snapshot.services {
            let history = services.entry(service.name.clone()).or_default();
            history
                .groups
                .retain(|name, _| service.groups.iter().any(|group| &group.name == name));
            let present: HashSet<(&str, SocketAddr)> = service
                .groups
                .iter()
                .flat_map(|group| {
                    group
                        .endpoints
                        .iter()
                        .map(move |endpoint| (group.name.as_str(), endpoint.address))
                })
                .collect();
            history
                .endpoints
                .retain(|(group, address), _| present.contains(&(group.as_str(), *address)));
            for group in &service.groups {
                // Summed from each endpoint's own deltas, so an endpoint
                // that leaves (or joins) does not make the group's rates jump.
                let mut rps = 0.0;
                let mut recent = Reading::default();
                for endpoint in &group.endpoints {
                    let reading =
                        Reading::served(&endpoint.stats.metrics, endpoint.stats.mirror.get());
                    let key = (group.name.clone(), endpoint.address);
                    let readings = &mut history
                        .endpoints
                        .entry(key)
                        .or_insert_with(|| EndpointHistory {
                            // An endpoint seen for the first time is new (at
                            // start, or it just joined: its counters began at
                            // zero), so what it served before this first
                            // sample belongs to the window too.
                            readings: VecDeque::from([(now, Reading::default())]),
                        })
                        .readings;
                    push_bounded(readings, (now, reading), ENDPOINT_READINGS);
                    rps += last_second_rate(readings);
                    let (_, newest) = readings.back().expect("just pushed");
                    let (_, oldest) = &readings[readings.len().saturating_sub(RATE_WINDOW + 1)];
                    recent.add(&newest.since(oldest));
                }
                let group_history = history.groups.entry(group.name.clone()).or_default();
                group_history.record(wall_ms, rps, &recent.window(), group.weight);
            }
        }
    }

    /// The rates of one endpoint over the readings kept.
    pub(crate) fn endpoint_rates(
        &self,
        service: &str,
        group: &str,
        address: SocketAddr,
    ) -> Option<EndpointRates> {
        let services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let endpoint = services
            .get(service)?
            .endpoints
            .get(&(group.to_owned(), address))?;
        let (first_at, first) = endpoint.readings.front()?;
        let (last_at, last) = endpoint.readings.back()?;
        let seconds = last_at.saturating_duration_since(*first_at).as_secs_f64();
        let window = last.since(first).window();
        Some(EndpointRates {
            requests_per_second: if seconds > 0.0 {
                window.requests as f64 / seconds
            } else {
                0.0
            },
            error_rate: window.error_rate(),
        })
    }

    /// `GET /api/v1/history`.
    pub(crate) fn to_json(&self) -> Value {
        let services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let services: Vec<Value> = services
            .iter()
            .map(|(name, service)| {
                let groups: Vec<Value> = service
                    .groups
                    .iter()
                    .map(|(group, history)| {
                        let columns = &history.columns;
                        json!({
                            "name": group,
                            "t": columns.t,
                            "rps": columns.rps,
                            "p99_ms": columns.p99_ms,
                            "error_rate": columns.error_rate,
                            "weight": columns.weight,
                        })
                    })
                    .collect();
                let endpoints: Vec<Value> = service
                    .endpoints
                    .iter()
                    .map(|((group, address), history)| {
                        json!({
                            "group": group,
                            "address": address,
                            "distribution": distribution(&history.readings),
                        })
                    })
                    .collect();
                json!({ "name": name, "groups": groups, "endpoints": endpoints })
            })
            .collect();
        json!({ "interval_ms": INTERVAL.as_millis() as u64, "services": services })
    }
}

impl GroupHistory {
    /// One point: `rps` over the last second, `window` the group's requests,
    /// errors and p99 over the last RATE_WINDOW seconds.
    fn record(&mut self, wall_ms: u64, rps: f64, window: &Window, weight: u32) {
        let columns = &mut self.columns;
        push_bounded(&mut columns.t, wall_ms, POINTS);
        push_bounded(&mut columns.rps, (rps * 10.0).round() / 10.0, POINTS);
        push_bounded(
            &mut columns.p99_ms,
            window.p99.map(|seconds| seconds * 1000.0),
            POINTS,
        );
        push_bounded(&mut columns.error_rate, window.error_rate(), POINTS);
        push_bounded(&mut columns.weight, weight, POINTS);
    }
}

/// Requests per second between an endpoint's last two readings.
fn last_second_rate(readings: &VecDeque<(Instant, Reading)>) -> f64 {
    let length = readings.len();
    if length < 2 {
        return 0.0;
    }
    let (before_at, before) = &readings[length - 2];
    let (at, last) = &readings[length - 1];
    let seconds = at.saturating_duration_since(*before_at).as_secs_f64();
    if seconds > 0.0 {
        last.since(before).requests as f64 / seconds
    } else {
        0.0
    }
}

/// Requests per bucket (not cumulative) between the oldest and newest
/// readings; `le` in seconds, null for +Inf.
fn distribution(readings: &VecDeque<(Instant, Reading)>) -> Vec<Value> {
    let (Some((_, first)), Some((_, last))) = (readings.front(), readings.back()) else {
        return Vec::new();
    };
    let cumulative = last.since(first).buckets;
    let mut below = 0;
    cumulative
        .iter()
        .map(|&(le, count)| {
            let in_bucket = count.saturating_sub(below);
            below = count;
            json!({ "le": le.is_finite().then_some(le), "count": in_bucket })
        })
        .collect()
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T, limit: usize) {
    if queue.len() == limit {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// Samples every [`INTERVAL`] until aborted.
pub(crate) fn spawn_sampler(state: Arc<State>, history: Arc<History>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            history.sample(&state, Instant::now(), SystemTime::now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_stay_bounded() {
        let mut queue = VecDeque::new();
        for value in 0..1000 {
            push_bounded(&mut queue, value, POINTS);
        }
        assert_eq!(queue.len(), POINTS);
        assert_eq!(queue.front(), Some(&700));
    }

    #[test]
    fn distribution_counts_each_bucket_over_the_window() {
        let reading = |buckets: &[(f64, u64)]| Reading {
            requests: buckets.last().map_or(0, |b| b.1),
            errors: 0,
            buckets: buckets.to_vec(),
        };
        let now = Instant::now();
        let mut readings = VecDeque::new();
        readings.push_back((now, reading(&[(0.001, 5), (0.01, 8), (f64::INFINITY, 9)])));
        readings.push_back((now, reading(&[(0.001, 7), (0.01, 15), (f64::INFINITY, 17)])));
        let counts: Vec<(Option<f64>, u64)> = distribution(&readings)
            .iter()
            .map(|bucket| (bucket["le"].as_f64(), bucket["count"].as_u64().unwrap()))
            .collect();
        // Window: 2 under 1 ms, 7 - 2 = 5 between 1 and 10 ms, 1 above.
        assert_eq!(counts, [(Some(0.001), 2), (Some(0.01), 5), (None, 1)]);
    }

    #[test]
    fn group_points_carry_rate_weight_and_window_quantiles() {
        let mut group = GroupHistory::default();
        let window = |requests: u64, errors: u64| {
            Reading {
                requests,
                errors,
                buckets: vec![(0.005, requests), (f64::INFINITY, requests)],
            }
            .window()
        };
        group.record(1_000, 0.0, &window(0, 0), 90);
        group.record(2_000, 50.0, &window(150, 5), 80);
        let columns = &group.columns;
        assert_eq!(Vec::from(columns.t.clone()), [1_000, 2_000]);
        assert_eq!(Vec::from(columns.rps.clone()), [0.0, 50.0]);
        assert_eq!(Vec::from(columns.weight.clone()), [90, 80]);
        assert_eq!(columns.error_rate[0], None, "no requests yet");
        assert_eq!(columns.error_rate[1], Some(5.0 / 150.0));
        // All 150 requests fell under 5 ms: p99 interpolates to 4.95 ms.
        let p99 = columns.p99_ms[1].unwrap();
        assert!((p99 - 4.95).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn an_endpoint_rate_comes_from_its_last_two_readings() {
        let start = Instant::now();
        let reading = |requests: u64| Reading {
            requests,
            ..Reading::default()
        };
        let mut readings = VecDeque::new();
        assert_eq!(last_second_rate(&readings), 0.0);
        readings.push_back((start, reading(10)));
        assert_eq!(last_second_rate(&readings), 0.0);
        readings.push_back((start + Duration::from_secs(2), reading(50)));
        assert_eq!(last_second_rate(&readings), 20.0);
    }
}
