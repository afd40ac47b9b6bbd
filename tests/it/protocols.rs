//! Protocols: HTTP/2 with prior knowledge to the listener, HTTP/2 to a
//! backend with trailers (what gRPC needs), and WebSocket upgrades.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn h2_client(address: std::net::SocketAddr) -> http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::test]
async fn h2c_client_to_http1_backend() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut sender = h2_client(edge(&proxy)).await;
    for _ in 0..3 {
        let response = sender
            .send_request(
                Request::get("http://h2.example:8080/headers")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.starts_with("GET /headers HTTP/1.1"), "{body}");
        assert!(body.contains("\nhost: h2.example:8080\n"), "{body}");
        assert!(body.contains("\nvia: 2 luas\n"), "{body}");
    }
    assert_eq!(backend.requests(), 3);
}

#[tokio::test]
async fn h2_backend_trailers_pass_through() {
    let backend = Backend::spawn(BackendOptions::new("grpc")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "    protocol: http2")).await;
    let mut sender = h2_client(edge(&proxy)).await;

    let response = sender
        .send_request(
            Request::post("http://grpc.example/trailers")
                .header("te", "trailers")
                .header("content-type", "application/grpc")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers reached the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
    assert_eq!(&collected.to_bytes()[..], b"ok");

    // The backend saw HTTP/2, the client's authority and TE: trailers.
    let response = sender
        .send_request(
            Request::get("http://grpc.example/headers")
                .header("te", "trailers")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with("GET http://grpc.example/headers HTTP/2.0"),
        "{body}"
    );
    assert!(body.contains("\nte: trailers\n"), "{body}");
}

#[tokio::test]
async fn h1_client_to_h2_backend() {
    let backend = Backend::spawn(BackendOptions::new("h2")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "    protocol: http2")).await;
    let client = client();
    for _ in 0..5 {
        let answer = send(&client, edge(&proxy), "/headers", &[("host", "app.local")]).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .body
                .starts_with("GET http://app.local/headers HTTP/2.0"),
            "{}",
            answer.body
        );
    }
    assert_eq!(backend.requests(), 5);
}

#[tokio::test]
async fn websocket_upgrade_is_spliced_through() {
    let backend = Backend::spawn(BackendOptions::new("ws")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut stream = TcpStream::connect(edge(&proxy)).await.unwrap();
    stream
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: ws.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("101 within 10 s")
            .unwrap();
        assert_eq!(
            read,
            1,
            "connection closed before the 101: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("connection: upgrade"), "{head}");

    // Bytes now flow both ways through the tunnel.
    for message in [&b"hello"[..], b"luas tunnel", &[0u8, 1, 2, 255]] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echoed))
            .await
            .expect("echo within 10 s")
            .unwrap();
        assert_eq!(echoed, message);
    }
}

/// luas does not tunnel: CONNECT gets a 405 with `Allow` at once (over
/// HTTP/1.1 the connection then closes cleanly), is counted as a request
/// that matched no route, and never reaches a backend.
#[tokio::test]
async fn connect_is_refused_at_once_and_never_forwarded() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let edge = edge(&proxy);

    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(edge).await.unwrap();
    stream
        .write_all(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 2 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 405"), "{answer}");
    assert!(answer.contains("\r\nallow: get, head, post"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Over HTTP/2 too.
    let mut sender = h2_client(edge).await;
    let response = sender
        .send_request(
            Request::connect("example.test:443")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 405);

    // Other connections are untouched, and nothing reached the backend.
    assert_eq!(get(edge, "/", &[]).await.body, "b\n");
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="4xx",listener="edge",route="no_route"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!(
                "luas_backend_requests_total{{code=\"2xx\",endpoint=\"{}\",group=\"stable\",service=\"web\"}}",
                backend.address
            )
        ),
        Some(1.0)
    );
}

/// Failures luas itself answers reach a gRPC client as gRPC statuses
/// (trailers-only: HTTP 200 with grpc-status in the headers), not as HTTP
/// errors it would report as a protocol error; other clients get HTTP.
#[tokio::test]
async fn luas_answers_grpc_requests_with_grpc_statuses() {
    // A port nothing listens on: the only endpoint cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: api, match: {{ host: api.test }}, service: api }}
services:
  - {{ name: api, endpoints: ["{closed}"] }}
"#
    ))
    .await;
    let mut sender = h2_client(edge(&proxy)).await;
    let call = |host: &str, content_type: &str| {
        Request::post(format!("http://{host}/pkg.Service/Method"))
            .header("content-type", content_type)
            .header("te", "trailers")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    for (host, grpc_status, http_status) in [("other.test", "12", 404), ("api.test", "14", 502)] {
        let response = sender
            .send_request(call(host, "application/grpc"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        assert_eq!(response.headers()["grpc-status"], grpc_status, "{host}");
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert!(response.headers().contains_key("grpc-message"));
        // Trailers-only: no body, no trailers after it.
        let body = response.into_body().collect().await.unwrap();
        assert!(body.trailers().is_none());
        assert!(body.to_bytes().is_empty());

        let plain = sender
            .send_request(call(host, "application/json"))
            .await
            .unwrap();
        assert_eq!(plain.status(), http_status, "{host}");
    }
    // Counted by what failed, not by the 200 the gRPC client saw.
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="5xx",listener="edge",route="api"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"luas_requests_total{code="4xx",listener="edge",route="no_route"}"#
        ),
        Some(2.0)
    );
}

/// A gRPC client's `grpc-timeout` bounds the request timeout: a backend
/// slower than the deadline gets DEADLINE_EXCEEDED at the deadline, not at
/// `timeouts.request` (30 s here).
#[tokio::test]
async fn a_grpc_deadline_bounds_the_request_timeout() {
    let slow = Backend::spawn(BackendOptions::new("slow").latency(Duration::from_secs(3)))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(&[slow.address], "")).await;
    let mut sender = h2_client(edge(&proxy)).await;
    let started = std::time::Instant::now();
    let response = sender
        .send_request(
            Request::post("http://grpc.test/pkg.Service/Slow")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", "300m")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "4");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// A gRPC response that streams its body and then fails in its trailers
/// (`grpc-status: 14` after the messages) counts as the endpoint's gRPC
/// failure, recorded when the trailers arrive; `grpc-status: 0` and a
/// client error (5 NOT_FOUND) count as 2xx; `grpc.failure_statuses`
/// replaces the default set.
#[tokio::test]
async fn a_grpc_status_in_the_trailers_decides_the_outcome() {
    let backend = Backend::spawn(BackendOptions::new("grpc")).await.unwrap();
    let count = |metrics: &str, code: &str| {
        sample(
            metrics,
            &format!(
                "luas_backend_requests_total{{code=\"{code}\",endpoint=\"{}\",group=\"stable\",service=\"web\"}}",
                backend.address
            ),
        )
    };
    for (extra, statuses, failures) in [
        ("", [14, 0, 5], 1.0),
        // Only NOT_FOUND fails here; UNAVAILABLE is the operator's choice
        // to ignore.
        (
            "    grpc: { failure_statuses: [not-found] }",
            [14, 0, 5],
            1.0,
        ),
        (
            "    grpc: { failure_statuses: [not-found, 14] }",
            [14, 0, 5],
            2.0,
        ),
    ] {
        let yaml = one_service_yaml(&[backend.address], &format!("    protocol: http2\n{extra}"));
        let proxy = start_proxy(&yaml).await;
        let mut sender = h2_client(edge(&proxy)).await;
        for status in statuses {
            let response = sender
                .send_request(
                    Request::post(format!("http://grpc.example/trailers?status={status}"))
                        .header("te", "trailers")
                        .header("content-type", "application/grpc")
                        .body(Empty::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let collected = response.into_body().collect().await.unwrap();
            let trailers = collected.trailers().cloned().expect("trailers");
            assert_eq!(trailers["grpc-status"], status.to_string().as_str());
        }
        let counted = eventually(Duration::from_secs(5), || async {
            let metrics = metrics_text(&proxy).await;
            count(&metrics, "grpc_error") == Some(failures)
                && count(&metrics, "2xx") == Some(3.0 - failures)
        })
        .await;
        let metrics = metrics_text(&proxy).await;
        assert!(
            counted,
            "{extra:?}: grpc_error {:?}, 2xx {:?}",
            count(&metrics, "grpc_error"),
            count(&metrics, "2xx")
        );
    }
}
