//! The `mirror` filter end to end: the shadow backend receives a copy of
//! each request (head as the filters left it, body whole), counted under
//! `mirror="true"`; the client gets the primary's answer and never waits for
//! the copy, whether the shadow is slow, silent or down; `percent` samples;
//! copies past `max_in_flight` or bodies past `max_body_bytes` are shed and
//! counted, never queued.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

use crate::support::*;

/// What the shadow received of one request.
#[derive(Debug)]
struct Copy {
    method: String,
    path_and_query: String,
    headers: http::HeaderMap,
    body: Bytes,
}

/// A shadow backend that records every request it gets in full; it answers
/// 200 at once, or never when `silent`.
async fn shadow(silent: bool) -> (SocketAddr, mpsc::UnboundedReceiver<Copy>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let sender = sender.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = sender.send(Copy {
                            method: parts.method.to_string(),
                            path_and_query: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        });
                        if silent {
                            std::future::pending::<()>().await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"shadow"))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, receiver)
}

/// The next copy the shadow records, within 10 s.
async fn next_copy(copies: &mut mpsc::UnboundedReceiver<Copy>) -> Copy {
    tokio::time::timeout(Duration::from_secs(10), copies.recv())
        .await
        .expect("a copy within 10 s")
        .expect("the shadow runs")
}

fn config(api: SocketAddr, shadow: SocketAddr, mirror: &str, shadow_extra: &str) -> String {
    format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: api
        filters:
          - request_headers: {{ set: {{ x-env: prod }} }}
          - mirror: {mirror}
        service: api
services:
  - {{ name: api, endpoints: ["{api}"] }}
  - name: shadow
    endpoints: ["{shadow}"]
{shadow_extra}
"#
    )
}

async fn post(address: SocketAddr, path: &str, body: Bytes) -> Answer {
    let request = Request::post(format!("http://{address}{path}"))
        .body(Full::new(body))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client().request(request))
        .await
        .expect("response within 10 s")
        .expect("request succeeds");
    Answer::from(response).await
}

#[tokio::test]
async fn the_shadow_gets_a_copy_and_the_client_the_primary_answer() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let (shadow_address, mut copies) = shadow(false).await;
    let proxy = start_proxy(&config(
        api.address,
        shadow_address,
        "{ service: shadow }",
        "",
    ))
    .await;
    let edge = edge(&proxy);

    let answer = get(edge, "/headers?user=7", &[("x-tester", "yes")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("\nx-env: prod\n"), "{}", answer.body);
    let copy = next_copy(&mut copies).await;
    assert_eq!(copy.method, "GET");
    assert_eq!(copy.path_and_query, "/headers?user=7");
    assert_eq!(copy.headers["x-tester"], "yes");
    // The head as the filters before the mirror left it, forwarded as luas
    // forwards any request.
    assert_eq!(copy.headers["x-env"], "prod");
    assert_eq!(copy.headers["x-forwarded-for"], "127.0.0.1");
    assert!(copy.body.is_empty());

    // A body, read whole by the primary, arrives whole at the shadow.
    let body = Bytes::from(vec![b'm'; 10_000]);
    let answer = post(edge, "/echo", body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.len(), 10_000);
    let copy = next_copy(&mut copies).await;
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.body, body);

    // Counted under mirror="true", apart from the shadow's own traffic and
    // from the route's requests.
    let mirrored = format!(
        "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{shadow_address}\",group=\"stable\",mirror=\"true\",service=\"shadow\"}}"
    );
    let counted = eventually(Duration::from_secs(10), || async {
        sample(&metrics_text(&proxy).await, &mirrored) == Some(2.0)
    })
    .await;
    let text = metrics_text(&proxy).await;
    assert!(counted, "{text}");
    let own = format!(
        "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{shadow_address}\",group=\"stable\",service=\"shadow\"}}"
    );
    assert_eq!(sample(&text, &own), Some(0.0), "{text}");
    let histogram = format!(
        "luas_backend_request_duration_seconds_count{{endpoint=\"{shadow_address}\",group=\"stable\",mirror=\"true\",service=\"shadow\"}}"
    );
    assert_eq!(sample(&text, &histogram), Some(2.0), "{text}");
    let route = "luas_requests_total{code=\"2xx\",listener=\"edge\",route=\"api\"}";
    assert_eq!(sample(&text, route), Some(2.0), "{text}");
    assert_eq!(api.requests(), 2);

    // The dashboard's view of the shadow shows the copies it served.
    let (_, service) =
        crate::support::api(&proxy, http::Method::GET, "/api/v1/services/shadow", "").await;
    let endpoint = &service["groups"][0]["endpoints"][0];
    assert_eq!(endpoint["requests"], 2, "{service}");
}

#[tokio::test]
async fn a_silent_or_absent_shadow_never_reaches_the_client() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let (silent, mut copies) = shadow(true).await;
    let proxy = start_proxy(&config(
        api.address,
        silent,
        "{ service: shadow }",
        "    timeouts: { request: 60s }",
    ))
    .await;
    let edge = edge(&proxy);
    for _ in 0..5 {
        let answer = get(edge, "/headers", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // Every copy reached the shadow, and none has been answered: the client
    // had all five answers while the copies were still waiting.
    for _ in 0..5 {
        next_copy(&mut copies).await;
    }
    let in_flight = format!(
        "luas_backend_in_flight{{endpoint=\"{silent}\",group=\"stable\",service=\"shadow\"}}"
    );
    assert_eq!(sample(&metrics_text(&proxy).await, &in_flight), Some(5.0));

    // A shadow that is down: the copies fail, the client never notices.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = start_proxy(&config(api.address, closed, "{ service: shadow }", "")).await;
    for _ in 0..5 {
        let answer = get(crate::support::edge(&down), "/headers", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let failed = format!(
        "luas_backend_requests_total{{code=\"error\",endpoint=\"{closed}\",group=\"stable\",mirror=\"true\",service=\"shadow\"}}"
    );
    let counted = eventually(Duration::from_secs(10), || async {
        sample(&metrics_text(&down).await, &failed) == Some(5.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(&down).await);
}

#[tokio::test]
async fn copies_past_max_in_flight_are_shed_not_queued() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let (silent, mut copies) = shadow(true).await;
    let proxy = start_proxy(&config(
        api.address,
        silent,
        "{ service: shadow, max_in_flight: 4 }",
        "    timeouts: { request: 60s }",
    ))
    .await;
    let edge = edge(&proxy);
    for _ in 0..4 {
        get(edge, "/headers", &[]).await;
    }
    // The four places are taken once the shadow holds four copies.
    for _ in 0..4 {
        next_copy(&mut copies).await;
    }
    for _ in 0..46 {
        let answer = get(edge, "/headers", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let text = metrics_text(&proxy).await;
    let shed = "luas_mirror_shed_total{listener=\"edge\",reason=\"busy\",route=\"api\",service=\"shadow\"}";
    assert_eq!(sample(&text, shed), Some(46.0), "{text}");
    let in_flight = format!(
        "luas_backend_in_flight{{endpoint=\"{silent}\",group=\"stable\",service=\"shadow\"}}"
    );
    assert_eq!(sample(&text, &in_flight), Some(4.0), "{text}");
    assert!(copies.try_recv().is_err(), "no copy beyond the four");
    assert_eq!(api.requests(), 50);
}

#[tokio::test]
async fn bodies_past_max_body_bytes_are_not_copied() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let (shadow_address, mut copies) = shadow(false).await;
    let proxy = start_proxy(&config(
        api.address,
        shadow_address,
        "{ service: shadow, max_body_bytes: 1KiB }",
        "",
    ))
    .await;
    let edge = edge(&proxy);

    // Declared too large: shed before a byte is kept.
    let answer = post(edge, "/echo", Bytes::from(vec![b'x'; 4096])).await;
    assert_eq!(answer.body.len(), 4096);
    // Streamed without a length: shed once it grows past the limit, while
    // the primary still gets all of it.
    let (sender, body) = ChannelBody::new();
    let request = Request::post(format!("http://{edge}/echo"))
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<ChannelBody>();
    let responding = tokio::spawn(async move { client.request(request).await });
    for _ in 0..4 {
        sender.send(Bytes::from(vec![b'y'; 1024])).await.unwrap();
    }
    drop(sender);
    let response = tokio::time::timeout(Duration::from_secs(10), responding)
        .await
        .expect("response within 10 s")
        .unwrap()
        .unwrap();
    let answer = Answer::from(response).await;
    assert_eq!(answer.body.len(), 4096);
    // A small body still goes.
    post(edge, "/echo", Bytes::from_static(b"small")).await;
    let copy = next_copy(&mut copies).await;
    assert_eq!(copy.body, Bytes::from_static(b"small"));
    let text = metrics_text(&proxy).await;
    let shed = "luas_mirror_shed_total{listener=\"edge\",reason=\"body_too_large\",route=\"api\",service=\"shadow\"}";
    assert_eq!(sample(&text, shed), Some(2.0), "{text}");
    assert!(copies.try_recv().is_err(), "only the small body was copied");
}

#[tokio::test]
async fn percent_copies_a_share_of_the_requests() {
    let api = Backend::spawn(BackendOptions::new("api")).await.unwrap();
    let (shadow_address, mut copies) = shadow(false).await;
    let proxy = start_proxy(&config(
        api.address,
        shadow_address,
        "{ service: shadow, percent: 25 }",
        "",
    ))
    .await;
    let edge = edge(&proxy);
    let client = client();
    for _ in 0..400 {
        send(&client, edge, "/headers", &[]).await;
    }
    let mirrored = format!(
        "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{shadow_address}\",group=\"stable\",mirror=\"true\",service=\"shadow\"}}"
    );
    // Every copy the shadow received is counted once it is answered; the
    // requests were answered first, so copies may still be arriving.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut received = 0;
    loop {
        while copies.try_recv().is_ok() {
            received += 1;
        }
        let text = metrics_text(&proxy).await;
        if sample(&text, &mirrored) == Some(received as f64) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{received} copies received: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // 400 draws at 25 %: 100 expected, sd 8.7; 50..150 is over five sd.
    assert!((50..=150).contains(&received), "{received} copies of 400");
}

#[tokio::test]
async fn a_mirror_can_shadow_one_group_of_a_service() {
    let stable = Backend::spawn(BackendOptions::new("stable")).await.unwrap();
    let (next, mut copies) = shadow(false).await;
    let proxy = start_proxy(&format!(
        r#"
admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - name: api
        filters: [ {{ mirror: {{ service: api, group: next }} }} ]
        service: api
services:
  - name: api
    groups:
      - {{ name: stable, weight: 100, endpoints: ["{}"] }}
      - {{ name: next, weight: 0, endpoints: ["{next}"] }}
"#,
        stable.address
    ))
    .await;
    for _ in 0..3 {
        let answer = get(edge(&proxy), "/headers", &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    for _ in 0..3 {
        next_copy(&mut copies).await;
    }
    assert_eq!(stable.requests(), 3);
    let mirrored = format!(
        "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{next}\",group=\"next\",mirror=\"true\",service=\"api\"}}"
    );
    let counted = eventually(Duration::from_secs(10), || async {
        sample(&metrics_text(&proxy).await, &mirrored) == Some(3.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(&proxy).await);
}
