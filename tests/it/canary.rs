//! Canary splits end to end: accurate weights, the override header, sticky
//! assignment that moves few keys when weights change, and a rollback that is
//! instant: no request started after the rollback call returned reaches the
//! canary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::future::join_all;
use http::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_canary_gets_five_percent_of_100k_requests() {
    let Canary {
        stable,
        canary,
        proxy,
    } = canary_setup((95, 5), "", "").await;
    let edge = edge(&proxy);
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 6_250;
    let started = Instant::now();
    join_all((0..CLIENTS).map(|_| async move {
        let client = client();
        for _ in 0..PER_CLIENT {
            assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
        }
    }))
    .await;
    let total = stable.requests() + canary.requests();
    assert_eq!(total, 100_000);
    let share = canary.requests() as f64 / total as f64;
    eprintln!(
        "canary share {:.3} % of {total} requests in {:?}",
        share * 100.0,
        started.elapsed()
    );
    assert!(
        (0.045..=0.055).contains(&share),
        "canary got {:.3} %",
        share * 100.0
    );
}

#[tokio::test]
async fn override_header_reaches_a_zero_weight_canary() {
    let Canary {
        stable: _stable,
        canary,
        proxy,
    } = canary_setup((100, 0), "", "").await;
    let edge = edge(&proxy);
    let client = client();
    for _ in 0..50 {
        assert_eq!(send(&client, edge, "/", &[]).await.body, "stable\n");
        assert_eq!(
            send(&client, edge, "/", &[("x-luas-group", "canary")])
                .await
                .body,
            "canary\n"
        );
        // An unknown group name falls back to the weights.
        assert_eq!(
            send(&client, edge, "/", &[("x-luas-group", "nope")])
                .await
                .body,
            "stable\n"
        );
    }
    assert_eq!(canary.requests(), 50);
}

#[tokio::test]
async fn override_header_can_be_renamed_or_disabled() {
    let Canary {
        stable,
        canary,
        proxy,
    } = canary_setup((100, 0), "    override_header: x-version", "").await;
    let edge = edge(&proxy);
    assert_eq!(
        get(edge, "/", &[("x-version", "canary")]).await.body,
        "canary\n"
    );
    assert_eq!(
        get(edge, "/", &[("x-luas-group", "canary")]).await.body,
        "stable\n"
    );

    let disabled = start_proxy(&canary_yaml(
        &[stable.address],
        &[canary.address],
        (100, 0),
        "    override_header: \"\"",
        "",
    ))
    .await;
    assert_eq!(
        get(edge_of(&disabled), "/", &[("x-luas-group", "canary")])
            .await
            .body,
        "stable\n"
    );
}

fn edge_of(running: &Running) -> std::net::SocketAddr {
    edge(running)
}

#[tokio::test]
async fn sticky_users_stay_put_and_few_move_when_weights_change() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((90, 10), "    sticky: { header: x-user-id }", "").await;
    let edge = edge(&proxy);
    let client = client();
    const USERS: usize = 2_000;
    let mut before = Vec::with_capacity(USERS);
    for user in 0..USERS {
        let id = format!("user-{user}");
        let first = send(&client, edge, "/", &[("x-user-id", &id)]).await.body;
        // The same user lands in the same group every time.
        for _ in 0..2 {
            assert_eq!(
                send(&client, edge, "/", &[("x-user-id", &id)]).await.body,
                first
            );
        }
        before.push(first);
    }
    let canary_share = before.iter().filter(|b| *b == "canary\n").count() as f64 / USERS as f64;
    assert!((0.08..=0.12).contains(&canary_share), "{canary_share}");

    let (status, _) = api(
        &proxy,
        Method::PUT,
        "/api/v1/services/web/weights",
        r#"{"stable": 80, "canary": 20}"#,
    )
    .await;
    assert_eq!(status, 200);
    let mut moved = 0;
    for (user, was) in before.iter().enumerate() {
        let now = send(
            &client,
            edge,
            "/",
            &[("x-user-id", &format!("user-{user}"))],
        )
        .await
        .body;
        if &now != was {
            assert_eq!(
                (was.as_str(), now.as_str()),
                ("stable\n", "canary\n"),
                "only stable users move, to the canary"
            );
            moved += 1;
        }
    }
    // Ten percent of users move, all from stable to canary.
    let moved_share = moved as f64 / USERS as f64;
    assert!((0.08..=0.12).contains(&moved_share), "{moved_share}");
}

#[tokio::test]
async fn sticky_cookie() {
    let Canary {
        stable: _stable,
        canary: _canary,
        proxy,
    } = canary_setup((50, 50), "    sticky: { cookie: session }", "").await;
    let edge = edge(&proxy);
    let mut groups = std::collections::HashSet::new();
    for user in 0..40 {
        let cookie = format!("theme=dark; session=s{user}; other=1");
        let first = get(edge, "/", &[("cookie", &cookie)]).await.body;
        for _ in 0..3 {
            assert_eq!(get(edge, "/", &[("cookie", &cookie)]).await.body, first);
        }
        groups.insert(first);
    }
    assert_eq!(
        groups.len(),
        2,
        "40 sessions at 50/50 should reach both groups"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_instant_under_load() {
    let stable = Backend::spawn(BackendOptions::new("stable").record_header("x-sent-at"))
        .await
        .unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary").record_header("x-sent-at"))
        .await
        .unwrap();
    let proxy = start_proxy(&canary_yaml(
        &[stable.address],
        &[canary.address],
        (50, 50),
        "",
        "",
    ))
    .await;
    let edge = edge(&proxy);
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // Eight clients send requests back to back, each stamped with the time it
    // started, in microseconds since the epoch.
    let load: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = client();
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) && sent < 50_000 {
                    let stamp = epoch.elapsed().as_micros().to_string();
                    let answer = send(&client, edge, "/", &[("x-sent-at", &stamp)]).await;
                    assert_eq!(answer.status, 200);
                    sent += 1;
                }
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || async {
            canary.requests() >= 200
        })
        .await
    );

    let called = Instant::now();
    let (status, answer) = api(&proxy, Method::POST, "/api/v1/services/web/rollback", "").await;
    let returned = epoch.elapsed().as_micros();
    let round_trip = called.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(weight_of(&answer, "canary"), 0);
    assert_eq!(answer["replaced_by_rollback"]["canary"], 50);

    // Keep the load going well after the rollback, then stop it.
    let stable_at_rollback = stable.requests();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stable.requests() >= stable_at_rollback + 2_000
        })
        .await
    );
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    let late: Vec<u128> = canary
        .recorded()
        .iter()
        .filter_map(|stamp| stamp.parse::<u128>().ok())
        .filter(|&stamp| stamp > returned)
        .collect();
    eprintln!(
        "rollback call round trip {round_trip:?}; canary served {} requests before; {} started after the call returned",
        canary.requests(),
        late.len()
    );
    assert!(
        late.is_empty(),
        "{} requests started after the rollback reached the canary",
        late.len()
    );
    assert!(stable
        .recorded()
        .iter()
        .any(|stamp| stamp.parse::<u128>().unwrap() > returned));
}
