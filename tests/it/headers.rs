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
