//! Header rules end to end (RFC 9110 §7.6): what the backend sees and what
//! the client gets back.

use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use tokio::net::TcpStream;

#[tokio::test]
async fn request_headers_are_rewritten_for_the_backend() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let edge = edge(&proxy);

    let answer = get(
        edge,
        "/headers",
        &[
            ("host", "app.example.com:8080"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("via", "1.1 upstream-lb"),
            ("x-end-to-end", "kept"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for removed in ["x-hop", "keep-alive", "proxy-connection", "te"] {
        assert!(
            answer.seen(removed).is_empty(),
            "{removed} reached the backend:\n{}",
            answer.body
        );
    }
    // The backend's own client connection is keep-alive, not the client's list.
    assert!(answer
        .seen("connection")
        .iter()
        .all(|value| !value.contains("x-hop")));
    assert_eq!(answer.seen("host"), ["app.example.com:8080"]);
    assert_eq!(answer.seen("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
    assert_eq!(answer.seen("x-forwarded-proto"), ["http"]);
    assert_eq!(answer.seen("x-forwarded-host"), ["app.example.com:8080"]);
    assert_eq!(answer.seen("via"), ["1.1 upstream-lb", "1.1 luas"]);
    assert_eq!(answer.seen("x-end-to-end"), ["kept"]);
    let request_id = answer.seen("x-request-id");
    assert_eq!(request_id.len(), 1);
    assert_eq!(request_id[0].len(), 32);

    // A request id the client sent is kept.
    let answer = get(edge, "/headers", &[("x-request-id", "trace-123")]).await;
    assert_eq!(answer.seen("x-request-id"), ["trace-123"]);
    // Generated ids differ per request.
    let again = get(edge, "/headers", &[]).await;
    assert_ne!(again.seen("x-request-id"), request_id);
}

#[tokio::test]
async fn xff_starts_a_list_when_the_client_sent_none() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let answer = get(edge(&proxy), "/headers", &[]).await;
    assert_eq!(answer.seen("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(answer.seen("via"), ["1.1 luas"]);
}

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let backend = raw_backend(
        b"HTTP/1.1 200 OK\r\nconnection: x-internal\r\nx-internal: 1\r\nkeep-alive: timeout=3\r\n\
          proxy-connection: keep-alive\r\nupgrade: h2c\r\nx-public: yes\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;

    // A raw client connection so we see exactly the headers luas sent.
    let stream = TcpStream::connect(edge(&proxy)).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            http::Request::builder()
                .uri("/")
                .header("host", "x")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    for removed in ["x-internal", "keep-alive", "proxy-connection", "upgrade"] {
        assert!(
            !headers.contains_key(removed),
            "{removed} reached the client: {headers:?}"
        );
    }
    assert_eq!(headers["x-public"], "yes");
    assert_eq!(headers["via"], "1.1 luas");
}

/// RFC 9112 §3.2.2: with an absolute-form target the Host header is
/// ignored; the target's authority routes the request and becomes the
/// backend's Host, and the backend gets the origin form.
#[tokio::test]
async fn an_absolute_form_target_names_the_host_the_route_and_the_backend_see() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = Backend::spawn(BackendOptions::new("target")).await.unwrap();
    let other = Backend::spawn(BackendOptions::new("other")).await.unwrap();
    let proxy = start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: by-host, match: {{ host: example.test }}, service: target }}
      - {{ name: rest, service: other }}
services:
  - {{ name: target, endpoints: ["{}"] }}
  - {{ name: other, endpoints: ["{}"] }}
"#,
        target.address, other.address
    ))
    .await;
    let edge = edge(&proxy);
    let mut stream = TcpStream::connect(edge).await.unwrap();
    let request = format!(
        "GET http://example.test/headers?x=1 HTTP/1.1\r\nHost: {edge}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer within 5 s")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    // The backend saw the origin form and the target's authority.
    assert!(body.contains("GET /headers?x=1 HTTP/1.1"), "{body}");
    assert!(body.contains("\nhost: example.test\n"), "{body}");
    assert!(!body.contains(&format!("host: {edge}")), "{body}");
}
