//! Live reload: a changed config file (also when swapped in through a symlink,
//! as Kubernetes does with ConfigMaps) and SIGHUP apply without a restart,
//! carrying endpoint statistics over; a broken file changes nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use http::Method;

fn scratch_dir(name: &str) -> PathBuf {
    scratch(&format!("reload-{name}"))
}

async fn start_from_file(path: &Path) -> Running {
    let config = luas::config::load_file(path).unwrap();
    App::build(config)
        .unwrap()
        .config_file(path.to_owned(), Some(Duration::from_millis(50)))
        .serve()
        .await
        .unwrap()
}

async fn answers_with(running: &Running, body: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        get(edge(running), "/", &[]).await.body == body
    })
    .await
}

#[tokio::test]
async fn file_change_is_picked_up_and_statistics_carry_over() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch_dir("change");
    let path = directory.join("luas.yaml");
    std::fs::write(
        &path,
        canary_yaml(&[a.address], &[b.address], (100, 0), "", ""),
    )
    .unwrap();
    let proxy = start_from_file(&path).await;
    for _ in 0..5 {
        assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");
    }

    std::fs::write(
        &path,
        canary_yaml(&[a.address], &[b.address], (0, 100), "", ""),
    )
    .unwrap();
    // Watch the API, not the proxy, so no request reaches `a` after the swap.
    let applied = eventually(Duration::from_secs(10), || async {
        let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
        weight_of(&service, "canary") == 100
    })
    .await;
    assert!(applied, "the file change was not applied");
    let (_, service) = api(&proxy, Method::GET, "/api/v1/services/web", "").await;
    let endpoint_a = &service["groups"][0]["endpoints"][0];
    assert_eq!(endpoint_a["requests"], 5, "{service}");
    // A fresh estimator would read the 30 ms default: `a`'s measured one survived.
    let ewma = endpoint_a["ewma_ms"].as_f64().unwrap();
    assert!(
        ewma < 30.0,
        "ewma {ewma} ms: statistics were reset by the reload"
    );
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "b\n");

    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(&metrics, r#"luas_config_reloads_total{result="success"}"#),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"luas_group_weight{group="canary",service="web"}"#
        ),
        Some(100.0)
    );
}

#[tokio::test]
async fn configmap_style_symlink_swap_is_picked_up() {
    // Kubernetes mounts a ConfigMap as config.yaml -> ..data/config.yaml with
    // ..data -> ..2026_01_01_v1, and updates it by re-pointing ..data.
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch_dir("symlink");
    let version = |name: &str, yaml: String| {
        let dir = directory.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    };
    version(
        "..v1",
        canary_yaml(&[a.address], &[b.address], (100, 0), "", ""),
    );
    version(
        "..v2",
        canary_yaml(&[a.address], &[b.address], (0, 100), "", ""),
    );
    std::os::unix::fs::symlink("..v1", directory.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.yaml", directory.join("config.yaml")).unwrap();

    let proxy = start_from_file(&directory.join("config.yaml")).await;
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");

    // The atomic swap Kubernetes does: a new link renamed over ..data.
    std::os::unix::fs::symlink("..v2", directory.join("..data_tmp")).unwrap();
    std::fs::rename(directory.join("..data_tmp"), directory.join("..data")).unwrap();
    assert!(
        answers_with(&proxy, "b\n").await,
        "the symlink swap was not picked up"
    );
}

#[tokio::test]
async fn broken_file_keeps_the_old_config_serving() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch_dir("broken");
    let path = directory.join("luas.yaml");
    let good = canary_yaml(&[a.address], &[b.address], (100, 0), "", "");
    std::fs::write(&path, &good).unwrap();
    let proxy = start_from_file(&path).await;

    // Bad YAML through the watcher.
    std::fs::write(&path, "services: [\n").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            sample(
                &metrics_text(&proxy).await,
                r#"luas_config_reloads_total{result="error"}"#,
            ) == Some(1.0)
        })
        .await,
        "the broken file was not noticed"
    );
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");

    // A semantic error through the API: 400 with the key path, nothing changes.
    std::fs::write(&path, good.replace("weight: 100", "weight: 0")).unwrap();
    let (status, answer) = api(&proxy, Method::POST, "/api/v1/reload", "").await;
    assert_eq!(status, 400, "{answer}");
    let reason = answer["error"].as_str().unwrap();
    assert!(reason.contains("services[0].groups"), "{reason}");
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");

    // A change that needs a restart is refused the same way.
    std::fs::write(&path, good.replace("name: edge", "name: renamed")).unwrap();
    let (status, answer) = api(&proxy, Method::POST, "/api/v1/reload", "").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("listeners"),
        "{answer}"
    );
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");

    // And a good file through the API works.
    std::fs::write(
        &path,
        canary_yaml(&[a.address], &[b.address], (0, 100), "", ""),
    )
    .unwrap();
    let (status, answer) = api(&proxy, Method::POST, "/api/v1/reload", "").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "b\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let a = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let b = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let directory = scratch_dir("sighup");
    let path = directory.join("luas.yaml");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (listen, admin) = (free_port(), free_port());
    let yaml = |weights| {
        canary_yaml(&[a.address], &[b.address], weights, "", "")
            .replace(
                "listen: \"127.0.0.1:0\" }",
                &format!("listen: \"{admin}\" }}"),
            )
            .replace("listen: \"127.0.0.1:0\"", &format!("listen: \"{listen}\""))
    };
    std::fs::write(&path, yaml((100, 0))).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .args(["run", "--watch-interval", "0s", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(20), || async {
        tokio::net::TcpStream::connect(listen).await.is_ok()
            && get(listen, "/", &[]).await.body == "a\n"
    })
    .await;
    assert!(ready, "luas run never served");

    // With watching off, only SIGHUP can apply the change.
    std::fs::write(&path, yaml((0, 100))).unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("sh")
        .args(["-c", &format!("kill -HUP {pid}")])
        .status()
        .unwrap()
        .success());
    assert!(
        eventually(Duration::from_secs(10), || async {
            get(listen, "/", &[]).await.body == "b\n"
        })
        .await,
        "SIGHUP did not reload"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_reload_forgets_the_series_of_removed_routes_and_services() {
    let backend = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let a = backend.address;
    let with_old = format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: old-route, match: {{ path_prefix: /old }}, service: old }}
      - {{ name: all, service: web }}
services:
  - {{ name: web, endpoints: ["{a}"] }}
  - {{ name: old, endpoints: ["{a}"], retry: {{ attempts: 1 }} }}
"#
    );
    let proxy = start_proxy(&with_old).await;
    assert_eq!(get(edge(&proxy), "/old/x", &[]).await.status, 200);
    assert_eq!(get(edge(&proxy), "/", &[]).await.status, 200);
    let before = metrics_text(&proxy).await;
    assert!(before.contains("route=\"old-route\""), "{before}");
    assert!(before.contains("service=\"old\""), "{before}");

    let without_old = with_old
        .replace(
            "      - { name: old-route, match: { path_prefix: /old }, service: old }\n",
            "",
        )
        .replace(
            &format!("  - {{ name: old, endpoints: [\"{a}\"], retry: {{ attempts: 1 }} }}\n"),
            "",
        );
    assert!(!without_old.contains("old"), "{without_old}");
    proxy
        .state()
        .reload(Config::from_yaml(&without_old).unwrap())
        .unwrap();
    let after = metrics_text(&proxy).await;
    assert!(!after.contains("route=\"old-route\""), "{after}");
    assert!(!after.contains("service=\"old\""), "{after}");
    assert!(
        after.contains("route=\"all\""),
        "the kept route keeps its series"
    );
}

#[tokio::test]
async fn a_reload_that_changes_listener_limits_fixed_at_start_is_refused() {
    let backend = Backend::spawn(BackendOptions::new("a")).await.unwrap();
    let yaml = one_service_yaml(&[backend.address], "");
    let proxy = start_proxy(&yaml).await;
    let with_limits = |limits: &str| {
        yaml.replace(
            "    routes:\n",
            &format!("    limits: {{ {limits} }}\n    routes:\n"),
        )
    };
    // Read per request: applied.
    let body_limits = with_limits("max_body_bytes: 1KiB, body_timeout: 5s");
    proxy
        .state()
        .reload(Config::from_yaml(&body_limits).unwrap())
        .unwrap();
    // Fixed when the listener started: refused, naming the listener.
    let refused = proxy
        .state()
        .reload(Config::from_yaml(&with_limits("max_connections: 5")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("listeners[0].limits"), "{refused}");
    assert!(refused.contains("restart"), "{refused}");
    assert_eq!(get(edge(&proxy), "/", &[]).await.body, "a\n");
}
