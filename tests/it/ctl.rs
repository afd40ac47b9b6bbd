//! `luas ctl` beyond the basics in api.rs: endpoint names from the
//! demo in `status`, and an `https://` admin address verified with
//! `--cacert`.
//!
//! The TLS admin is a real one: a luas whose TLS listener routes to another
//! luas's admin listener, the way an admin API is published behind a TLS
//! proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use luas::app::{App, Running};
use luas::config::Config;
use luas::demo::DemoBackends;

use crate::support::certs::Authority;

async fn ctl(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_luas"))
        .arg("ctl")
        .args(args)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The demo's proxy and backends, on free loopback ports.
async fn demo() -> (DemoBackends, Running) {
    let backends = DemoBackends::spawn().await.unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = backends.config(any, any).unwrap();
    let running = App::build(config)
        .unwrap()
        .endpoint_names(backends.names())
        .serve()
        .await
        .unwrap();
    (backends, running)
}

async fn services_json(admin: SocketAddr) -> serde_json::Value {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{admin}/api/v1/services").parse().unwrap();
    let response = client.get(uri).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_demo_replicas() {
    let (backends, running) = demo().await;
    let admin = running.admin_address();

    let all = services_json(admin).await;
    let stable = &all["services"][0]["groups"][0]["endpoints"];
    for (index, name) in ["stable-1", "stable-2", "stable-3"].into_iter().enumerate() {
        assert_eq!(stable[index]["name"], name, "{stable}");
        assert_eq!(
            stable[index]["address"],
            backends.stable[index].address.to_string()
        );
    }
    assert_eq!(
        all["services"][0]["groups"][1]["endpoints"][0]["name"],
        "canary-1"
    );

    let output = ctl(&["--admin", &format!("http://{admin}"), "status"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for backend in backends.stable.iter().chain([&backends.canary]) {
        let label = format!("    {} {} ", backend.name, backend.address);
        assert!(stdout.contains(&label), "no `{label}` in\n{stdout}");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_nobody_named_have_no_name() {
    let backend =
        luas::demo::backend::Backend::spawn(luas::demo::backend::BackendOptions::new("unnamed"))
            .await
            .unwrap();
    let config = Config::from_yaml(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes: [{{ name: all, service: web }}]
services:
  - name: web
    endpoints: ["{}"]
"#,
        backend.address
    ))
    .unwrap();
    let running = App::build(config).unwrap().serve().await.unwrap();
    let all = services_json(running.admin_address()).await;
    let endpoint = &all["services"][0]["groups"][0]["endpoints"][0];
    assert_eq!(endpoint["address"], backend.address.to_string());
    assert!(endpoint.get("name").is_none(), "{endpoint}");
    running.shutdown().await;
}

// ---- https ----

/// A test CA and the PEM files of a server certificate it signed for
/// 127.0.0.1 and localhost.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(directory: &Path) -> Pki {
    let _ = std::fs::remove_dir_all(directory);
    std::fs::create_dir_all(directory).unwrap();
    let authority = Authority::new("ctl test CA");
    // rcgen makes an address SAN of a name that parses as an IP address.
    let leaf = authority.server(&["localhost", "127.0.0.1"]);
    let write = |name: &str, contents: String| {
        let path = directory.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", authority.pem()),
        cert: write("admin.pem", leaf.cert),
        key: write("admin.key", leaf.key),
    }
}

/// A luas whose TLS listener forwards to `admin` (another luas's admin
/// listener).
async fn tls_front(admin: SocketAddr, pki: &Pki) -> Running {
    let config = Config::from_yaml(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: admin-tls
    listen: "127.0.0.1:0"
    tls: {{ cert: "{}", key: "{}" }}
    routes: [{{ name: all, service: admin }}]
services:
  - name: admin
    endpoints: ["{admin}"]
"#,
        pki.cert.display(),
        pki.key.display()
    ))
    .unwrap();
    App::build(config).unwrap().serve().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_speaks_https_verified_by_cacert() {
    let directory = crate::support::scratch("ctl-https");
    let pki = pki(&directory);
    let (_backends, inner) = demo().await;
    let front = tls_front(inner.admin_address(), &pki).await;
    let port = front.listener_address("admin-tls").unwrap().port();
    let cacert = pki.ca.to_str().unwrap();

    // Verified by IP address and by name.
    for admin in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let output = ctl(&["--admin", &admin, "--cacert", cacert, "status", "web"]).await;
        assert!(output.status.success(), "{admin}: {}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("service web (balancer p2c-ewma)"),
            "{stdout}"
        );
        assert!(stdout.contains("stable-1 127.0.0.1:"), "{stdout}");
    }
    // Changes go through too.
    let admin = format!("https://127.0.0.1:{port}");
    let output = ctl(&[
        "--admin",
        &admin,
        "--cacert",
        cacert,
        "weights",
        "web",
        "canary=20",
    ])
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("group canary     weight   20"),
        "{}",
        text(&output.stdout)
    );

    // Without --cacert the system's roots do not know the test CA.
    let output = ctl(&["--admin", &admin, "status"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    // Another CA's file does not vouch for this certificate either.
    let other = directory.join("other-ca.pem");
    std::fs::write(&other, Authority::new("another CA").pem()).unwrap();
    let output = ctl(&[
        "--admin",
        &admin,
        "--cacert",
        other.to_str().unwrap(),
        "status",
    ])
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("TLS with the admin API"), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    front.shutdown().await;
    inner.shutdown().await;
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn ctl_refuses_bad_https_settings_up_front() {
    // --cacert only means something for https.
    let output = ctl(&[
        "--admin",
        "http://127.0.0.1:9",
        "--cacert",
        "/nonexistent.pem",
        "status",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--cacert is for an https:// admin address"),
        "{}",
        text(&output.stderr)
    );
    // A CA file that does not exist is named.
    let output = ctl(&[
        "--admin",
        "https://127.0.0.1:9",
        "--cacert",
        "/nonexistent.pem",
        "status",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("/nonexistent.pem"),
        "{}",
        text(&output.stderr)
    );
    // Neither http nor https.
    let output = ctl(&["--admin", "ftp://127.0.0.1:9", "status"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("the scheme must be http or https"),
        "{}",
        text(&output.stderr)
    );
}
