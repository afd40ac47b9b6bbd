//! Micro-benchmarks of the pieces on the request path, each alone:
//! route match, group split, balancer pick (3, 100 and 1 000 endpoints) and
//! recording an outcome into the endpoint's metrics.
//!
//! `cargo bench --bench hot_path`; whole-proxy numbers are in bench/run.sh.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderName, Request};
use luas::balance::Balancer;
use luas::config::{BalancerKind, EwmaConfig, HostMatch, PathMatch, RouteMatch, TextMatch};
use luas::endpoint::{Endpoint, EndpointStats, InFlight, Outcome, StatsSettings};
use luas::metrics::Metrics;
use luas::route::{Route, RouteTable};
use luas::split::Split;
use tokio::time::Instant;

fn endpoints(metrics: &Metrics, count: usize, now: Instant) -> Vec<Endpoint> {
    (0..count)
        .map(|i| {
            let address = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 8080));
            let settings = StatsSettings {
                ewma: EwmaConfig {
                    decay: Duration::from_secs(10),
                    default_rtt: Duration::from_millis(30),
                    failure_penalty: Duration::from_secs(1),
                },
                deployment: "web-stable".into(),
            };
            let stats = EndpointStats::new(
                settings,
                metrics.endpoint("web", "stable", &address.to_string()),
                now,
            );
            stats
                .ewma
                .observe(Duration::from_micros(200 + (i as u64 % 7) * 50), now);
            Endpoint::new(address, Arc::new(stats))
        })
        .collect()
}

fn route_match(c: &mut Criterion) {
    let metrics = Metrics::new(&luas::config::defaults::BUCKETS);
    let route = |name: &str, matches: RouteMatch| {
        Route::new(name, vec![matches], 0, metrics.route("edge", name))
    };
    let table = RouteTable::new(vec![
        route(
            "api",
            RouteMatch {
                host: Some(HostMatch::WildcardSuffix(".example.com".into())),
                path: Some(PathMatch::Prefix("/v1".into())),
                headers: vec![(
                    HeaderName::from_static("x-env"),
                    TextMatch::Exact("staging".into()),
                )],
                ..RouteMatch::default()
            },
        ),
        route(
            "web",
            RouteMatch {
                host: Some(HostMatch::Exact("web.example.com".into())),
                ..RouteMatch::default()
            },
        ),
        route("all", RouteMatch::default()),
    ]);
    let request = Request::get("/static/app.js")
        .header("host", "web.example.com")
        .header("user-agent", "bench")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    c.bench_function("route match (second of three routes)", |b| {
        b.iter(|| black_box(table.find(black_box(&request), None).map(|r| r.service)))
    });
}

fn group_split(c: &mut Criterion) {
    let split = Split::new([95, 5]);
    c.bench_function("group split (95/5, random)", |b| {
        b.iter(|| black_box(split.pick()))
    });
    c.bench_function("group split (95/5, sticky key)", |b| {
        b.iter(|| black_box(split.pick_by_key(black_box(b"user-12345"))))
    });
}

fn balancer_pick(c: &mut Criterion) {
    let metrics = Metrics::new(&luas::config::defaults::BUCKETS);
    let now = Instant::now();
    let mut group = c.benchmark_group("balancer pick");
    for count in [3usize, 100, 1_000] {
        let pool = endpoints(&metrics, count, now);
        for (name, kind) in [
            ("p2c-ewma", BalancerKind::P2cEwma),
            ("least-request", BalancerKind::LeastRequest),
            ("round-robin", BalancerKind::RoundRobin),
        ] {
            let balancer = Balancer::new(kind);
            group.bench_with_input(BenchmarkId::new(name, count), &pool, |b, pool| {
                b.iter(|| black_box(balancer.pick(black_box(pool), now).map(|e| e.address)))
            });
        }
    }
    group.finish();
}

fn metrics_record(c: &mut Criterion) {
    let metrics = Metrics::new(&luas::config::defaults::BUCKETS);
    let now = Instant::now();
    let pool = endpoints(&metrics, 1, now);
    let later = now + Duration::from_micros(800);
    c.bench_function(
        "record an outcome (in-flight, EWMA, histogram, counter)",
        |b| {
            b.iter(|| {
                let mut guard = InFlight::start(&pool[0], now);
                guard.finish(Outcome::Response(http::StatusCode::OK), black_box(later));
            })
        },
    );
}

criterion_group!(
    benches,
    route_match,
    group_split,
    balancer_pick,
    metrics_record
);
criterion_main!(benches);
