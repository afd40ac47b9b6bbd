//! Embedding: a program serves luas's routing as a `tower::Service` on its
//! own server, behind its own Layer: examples/embed.rs's bearer check,
//! compiled in here so the example is what is tested. Real loopback
//! backends, a real luas, a real hyper server and client.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use luas::MakeProxy;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::support::*;

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/embed.rs"]
mod example;

const TOKEN: &str = "s3cret";
const BEARER: (&str, &str) = ("authorization", "Bearer s3cret");
/// The client address the embedding server hands luas: not the loopback
/// address the test's client really has, so it is seen to be the one used.
const CLIENT: &str = "203.0.113.7:40000";

/// Serves `proxy` as examples/embed.rs does, behind its bearer check, on a
/// port of its own; every connection is said to come from [`CLIENT`].
async fn embedded(proxy: MakeProxy) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let client: SocketAddr = CLIENT.parse().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = ServiceBuilder::new()
                .layer(example::RequireBearer::new(TOKEN))
                .service(proxy.for_client(client));
            tokio::spawn(example::serve(stream, service));
        }
    });
    address
}

#[tokio::test]
async fn requests_without_the_token_never_reach_luas() {
    let backend = Backend::spawn(BackendOptions::new("web")).await.unwrap();
    let luas = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let server = embedded(luas.proxy("edge").expect("listener edge")).await;

    let refused: &[&[(&str, &str)]] = &[
        &[],
        &[("authorization", "Bearer wrong")],
        &[("authorization", "Bearer s3cret2")],
        &[("authorization", "Basic czNjcmV0")],
        &[("authorization", "s3cret")],
    ];
    for headers in refused {
        let answer = get(server, "/", headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(
        backend.requests(),
        0,
        "a refused request reached the backend"
    );
    // Not even luas saw them: it counted no request, routed or not.
    let metrics = metrics_text(&luas).await;
    assert_eq!(requests_total(&metrics, ""), 0.0, "{metrics}");

    let answer = get(server, "/headers", &[BEARER]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("x-backend"), Some("web"));
    assert_eq!(backend.requests(), 1);
    // The scheme is case-insensitive (RFC 9110, 11.1).
    let answer = get(server, "/", &[("authorization", "bearer s3cret")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(backend.requests(), 2);
}

#[tokio::test]
async fn routes_balances_and_forwards_for_the_client_it_is_given() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let web = [
        Backend::spawn(BackendOptions::new("web-1")).await.unwrap(),
        Backend::spawn(BackendOptions::new("web-2")).await.unwrap(),
    ];
    let luas = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: api, match: {{ headers: {{ x-team: api }} }}, service: api }}
      - {{ name: web, service: web }}
services:
  - {{ name: api, endpoints: ["{}"] }}
  - {{ name: web, balancer: round-robin, endpoints: ["{}", "{}"] }}
"#,
        api.address, web[0].address, web[1].address
    ))
    .await;
    let server = embedded(luas.proxy("edge").unwrap()).await;
    assert!(luas.proxy("no-such-listener").is_none());

    let answer = get(server, "/headers", &[BEARER, ("x-team", "api")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("x-backend"), Some("api"));
    // luas's forwarding headers, from the address the embedder supplied.
    assert_eq!(answer.seen("x-forwarded-for"), ["203.0.113.7"]);
    assert_eq!(answer.seen("x-forwarded-proto"), ["http"]);
    assert_eq!(answer.seen("via"), ["1.1 luas"]);
    // The layer took the token off before luas forwarded the request.
    assert!(answer.seen("authorization").is_empty(), "{answer:?}");

    let client = client();
    for _ in 0..10 {
        let answer = send(&client, server, "/", &[BEARER]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(api.requests(), 1);
    let spread = (web[0].requests(), web[1].requests());
    assert_eq!(spread, (5, 5), "round-robin over the embedded path");
    // Counted in luas's own route metrics, like any request it routed.
    let metrics = metrics_text(&luas).await;
    let routed = requests_total(&metrics, r#"route="web""#);
    assert_eq!(routed, 10.0, "{metrics}");
}

/// The sum of `luas_requests_total` over the series whose labels hold `label`.
fn requests_total(metrics: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("luas_requests_total{") && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn state_changes_and_reloads_apply_to_the_embedded_proxy() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let canary = Backend::spawn(BackendOptions::new("canary")).await.unwrap();
    let (stable_address, canary_address) = (stable.address, canary.address);
    let yaml = canary_yaml(&[stable_address], &[canary_address], (100, 0), "", "");
    let luas = start_proxy(&yaml).await;
    let server = embedded(luas.proxy("edge").unwrap()).await;
    let client = client();
    for _ in 0..5 {
        assert_eq!(send(&client, server, "/", &[BEARER]).await.body, "stable\n");
    }

    // A state change through the admin API (what a rollout step does).
    let (status, _) = api(
        &luas,
        Method::PUT,
        "/api/v1/services/web/weights",
        r#"{"stable": 0, "canary": 100}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(send(&client, server, "/", &[BEARER]).await.body, "canary\n");
    }

    // A config reload that adds a route: the same MakeProxy and the same
    // open connection (the pooled client) serve it at once.
    let reloaded = Config::from_yaml(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: pinned, match: {{ path_prefix: /pinned }}, service: pinned }}
      - {{ name: all, service: web }}
services:
  - {{ name: pinned, endpoints: ["{stable_address}"] }}
  - name: web
    groups:
      - {{ name: stable, weight: 0, endpoints: ["{stable_address}"] }}
      - {{ name: canary, weight: 100, endpoints: ["{canary_address}"] }}
"#
    ))
    .unwrap();
    luas.state().reload(reloaded).expect("the reload applies");
    let answer = send(&client, server, "/pinned", &[BEARER]).await;
    assert_eq!(answer.body, "stable\n");
    assert_eq!(send(&client, server, "/", &[BEARER]).await.body, "canary\n");
}

#[tokio::test]
async fn shutdown_waits_for_a_clients_proxy_not_for_the_make_proxy() {
    let backend = Backend::spawn(BackendOptions::new("web")).await.unwrap();
    let yaml = format!(
        "shutdown: {{ grace_period: 300ms }}\n{}",
        one_service_yaml(&[backend.address], "")
    );
    let luas = start_proxy(&yaml).await;
    let make = luas.proxy("edge").unwrap();
    let client_proxy = make.for_client(CLIENT.parse().unwrap());
    // An open client connection holds up the drain until the grace period.
    let drained = tokio::time::timeout(Duration::from_secs(10), luas.shutdown())
        .await
        .expect("shutdown ends by its grace period");
    assert!(!drained, "shutdown did not wait for the client's Proxy");
    drop(client_proxy);

    let luas = start_proxy(&yaml).await;
    let make = luas.proxy("edge").unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(10), luas.shutdown())
        .await
        .expect("shutdown ends by its grace period");
    assert!(drained, "a kept MakeProxy held up shutdown");
    // Made after the drain: still a working service, with nothing to wait for.
    drop(make.for_client(CLIENT.parse().unwrap()));
}
