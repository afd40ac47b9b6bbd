//! Runtime changes survive a restart through the state file; a corrupt or
//! missing state file means a clean start from the config file, never a crash.

use std::path::PathBuf;

use crate::support::*;
use http::Method;

fn state_path(name: &str) -> PathBuf {
    scratch(&format!("state-{name}")).join("state.json")
}

fn yaml(stable: &Backend, canary: &Backend, state: &std::path::Path) -> String {
    canary_yaml(
        &[stable.address],
        &[canary.address],
        (50, 50),
        "",
        &format!("state_file: \"{}\"", state.display()),
    )
}

#[tokio::test]
async fn rollback_survives_a_restart() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let state = state_path("rollback");
    let proxy = start_proxy(&yaml(&stable, &canary, &state)).await;
    let (status, _) = api(&proxy, Method::POST, "/api/v1/services/web/rollback", "").await;
    assert_eq!(status, 200);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["services"]["web"]["weights"]["canary"], 0, "{saved}");
    assert!(proxy.shutdown().await);

    // A new process (here: a new App) with the same config file.
    let restarted = start_proxy(&yaml(&stable, &canary, &state)).await;
    let (_, service) = api(&restarted, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&service, "canary"), 0, "{service}");
    assert_eq!(service["replaced_by_rollback"]["canary"], 50);
    let before = canary.requests();
    for _ in 0..100 {
        assert_eq!(get(edge(&restarted), "/", &[]).await.body, "stable\n");
    }
    assert_eq!(canary.requests(), before);

    // Dropping the runtime weights brings the file's back, and saves that too.
    let (status, service) = api(
        &restarted,
        Method::DELETE,
        "/api/v1/services/web/weights",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(weight_of(&service, "canary"), 50);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(saved["services"].as_object().unwrap().is_empty(), "{saved}");
}

#[tokio::test]
async fn corrupt_state_file_starts_from_the_config() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let state = state_path("corrupt");
    std::fs::write(&state, "{ this is not json").unwrap();
    let proxy = start_proxy(&yaml(&stable, &canary, &state)).await;
    let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&service, "canary"), 50);
    assert_eq!(get(edge(&proxy), "/", &[]).await.status, 200);

    // The next runtime change replaces the corrupt file with a good one.
    let (status, _) = api(
        &proxy,
        Method::PUT,
        "/api/v1/services/web/weights",
        r#"{"canary": 5}"#,
    )
    .await;
    assert_eq!(status, 200);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["services"]["web"]["weights"]["canary"], 5);
}

#[tokio::test]
async fn state_for_a_vanished_group_is_ignored() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let state = state_path("vanished");
    std::fs::write(
        &state,
        r#"{"version": 1, "services": {"web": {"weights": {"stable": 0, "gone": 100}}, "old": {"weights": {"x": 1}}}}"#,
    )
    .unwrap();
    let proxy = start_proxy(&yaml(&stable, &canary, &state)).await;
    // stable=0 alone would leave no traffic, so the whole entry is skipped.
    let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    assert_eq!(weight_of(&service, "stable"), 50, "{service}");
    assert_eq!(get(edge(&proxy), "/", &[]).await.status, 200);
}

#[tokio::test]
async fn missing_state_directory_is_not_fatal() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let state = scratch("state-unwritable").join("no-such-dir/state.json");
    let proxy = start_proxy(&yaml(&stable, &canary, &state)).await;
    // The change applies even though it cannot be saved (logged as an error).
    let (status, service) = api(&proxy, Method::POST, "/api/v1/services/web/rollback", "").await;
    assert_eq!(status, 200);
    assert_eq!(weight_of(&service, "canary"), 0);
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "stable\n");
}
