//! EndpointSlice discovery end to end: the real proxy follows a Service's
//! EndpointSlices in the in-test Kubernetes API server, in front of real
//! backends on loopback addresses that share one port (as pods do).

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use crate::support::kube_api::{Kind, KubeApi};
use crate::support::{api, edge, eventually, get, start_proxy, Backend, BackendOptions, Running};

/// Backends named after their loopback address, all on `port`.
async fn backends(port: u16, hosts: &[&str], latency: Duration) -> Vec<Backend> {
    let mut started = Vec::new();
    for host in hosts {
        let address: SocketAddr = format!("{host}:{port}").parse().unwrap();
        let options = BackendOptions::new(host).latency(latency);
        started.push(Backend::spawn_on(address, options).await.unwrap());
    }
    started
}

/// A port free on 127.0.0.2 (the backends' addresses are 127.0.0.x).
fn shared_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One endpoint of a slice: its address and conditions.
fn endpoint(address: &str, ready: bool, serving: bool, terminating: bool) -> Value {
    json!({
        "addresses": [address],
        "conditions": { "ready": ready, "serving": serving, "terminating": terminating },
    })
}

fn slice(name: &str, service: &str, port: u16, endpoints: &[Value]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": { "name": name, "labels": { "kubernetes.io/service-name": service } },
        "addressType": "IPv4",
        "ports": [ { "name": "http", "port": port, "protocol": "TCP" } ],
        "endpoints": endpoints,
    })
}

/// Writes service web's slice `name`, as the EndpointSlice controller would.
fn publish(kube: &KubeApi, name: &str, port: u16, endpoints: &[Value]) {
    kube.apply(
        Kind::EndpointSlice,
        "default",
        slice(name, "web", port, endpoints),
    );
}

async fn proxy(kube: &KubeApi, test: &str) -> Running {
    let directory = crate::support::scratch(&format!("slices-{test}"));
    let kubeconfig = directory.join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig, "default");
    start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes: [ {{ name: all, service: web }} ]
services:
  - name: web
    kubernetes: {{ service: web, port: http }}
kubernetes: {{ kubeconfig: "{}" }}
"#,
        kubeconfig.display()
    ))
    .await
}

/// Which backends `count` requests reached.
async fn reached(proxy: &Running, count: usize) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..count {
        let answer = get(edge(proxy), "/", &[]).await;
        seen.insert(if answer.status == StatusCode::OK {
            answer.body.trim().to_owned()
        } else {
            answer.status.to_string()
        });
    }
    seen
}

/// Waits until `count` requests in a row reach exactly `hosts`.
async fn until_only(proxy: &Running, hosts: &[&str]) -> bool {
    let wanted: std::collections::BTreeSet<String> =
        hosts.iter().map(|h| (*h).to_owned()).collect();
    eventually(Duration::from_secs(10), || async {
        reached(proxy, 30).await == wanted
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_endpoints_of_a_service_take_traffic_and_unready_ones_leave() {
    let port = shared_port();
    let _backends = backends(
        port,
        &["127.0.0.2", "127.0.0.3", "127.0.0.4"],
        Duration::ZERO,
    )
    .await;
    let kube = KubeApi::start().await;
    let proxy = proxy(&kube, "ready").await;
    let admin = proxy.admin_address();

    // Not ready before the slices have been listed with an endpoint.
    assert_eq!(
        get(admin, "/ready", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let a = endpoint("127.0.0.2", true, true, false);
    let b = endpoint("127.0.0.3", true, true, false);
    publish(&kube, "web-1", port, &[a.clone(), b]);
    // Another Service's slice is not this group's.
    kube.apply(
        Kind::EndpointSlice,
        "default",
        slice(
            "other-1",
            "other",
            port,
            &[endpoint("127.0.0.4", true, true, false)],
        ),
    );
    let ready = eventually(Duration::from_secs(10), || async {
        get(admin, "/ready", &[]).await.status == StatusCode::OK
    })
    .await;
    assert!(ready, "never ready after the slices were listed");
    assert!(until_only(&proxy, &["127.0.0.2", "127.0.0.3"]).await);

    // A pod turning unready leaves rotation with the watch event.
    let b_unready = endpoint("127.0.0.3", false, false, false);
    publish(&kube, "web-1", port, &[a, b_unready]);
    assert!(until_only(&proxy, &["127.0.0.2"]).await);

    // None ready: the ones still serving while terminating keep the traffic.
    let draining = [
        endpoint("127.0.0.2", false, true, true),
        endpoint("127.0.0.3", false, false, true),
    ];
    publish(&kube, "web-1", port, &draining);
    assert!(until_only(&proxy, &["127.0.0.2"]).await);

    // After a compaction and a cut stream the watch lists again (410) and
    // still follows: a new slice with a ready pod takes over.
    kube.compact();
    kube.cut_watches();
    publish(
        &kube,
        "web-2",
        port,
        &[endpoint("127.0.0.4", true, true, false)],
    );
    assert!(until_only(&proxy, &["127.0.0.4"]).await);
    let metrics = crate::support::metrics_text(&proxy).await;
    assert!(
        metrics.contains(
            "luas_kubernetes_watch_events_total{kind=\"endpointslice\",result=\"restarted\"}"
        ),
        "{metrics}"
    );
    assert_eq!(kube.requests("patch", Kind::EndpointSlice), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_to_a_removed_endpoint_completes() {
    let port = shared_port();
    let _slow = backends(port, &["127.0.0.5"], Duration::from_millis(1500)).await;
    let _fast = backends(port, &["127.0.0.6"], Duration::ZERO).await;
    let kube = KubeApi::start().await;
    let proxy = proxy(&kube, "in-flight").await;
    publish(
        &kube,
        "web-1",
        port,
        &[endpoint("127.0.0.5", true, true, false)],
    );
    let admin = proxy.admin_address();
    let ready = eventually(Duration::from_secs(10), || async {
        get(admin, "/ready", &[]).await.status == StatusCode::OK
    })
    .await;
    assert!(ready);
    let listener = edge(&proxy);
    let slow_request = tokio::spawn(async move { get(listener, "/", &[]).await });
    let started = eventually(Duration::from_secs(5), || async {
        let (_, web) = api(&proxy, http::Method::GET, "/api/v1/services/web", "").await;
        web["groups"][0]["endpoints"][0]["in_flight"] == 1
    })
    .await;
    assert!(started, "the slow request never reached its endpoint");
    // The pod goes away while its request runs.
    publish(
        &kube,
        "web-1",
        port,
        &[endpoint("127.0.0.6", true, true, false)],
    );
    assert!(until_only(&proxy, &["127.0.0.6"]).await);
    let answer = slow_request.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.trim(), "127.0.0.5");
}
