//! Hostile and malformed clients: slowloris, oversized headers, request
//! smuggling attempts, oversized and stalled bodies, too many connections,
//! HTTP/2 rapid reset, and broken backend responses. The attacker gets a 4xx
//! or is cut off; nothing malformed reaches a backend; other clients are
//! served throughout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes on a fresh connection and reads until the peer closes
/// (at most 5 s); returns what came back.
async fn raw_exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

const LIMITS: &str = "
    limits:
      header_read_timeout: 500ms
      max_header_bytes: 16KiB
      max_headers: 50
      max_body_bytes: 1KiB
      body_timeout: 300ms
      h2_max_concurrent_streams: 7";

/// A proxy with tight limits on listener `edge` in front of one backend.
async fn limited_proxy(backend: &Backend) -> Running {
    let yaml = one_service_yaml(&[backend.address], "").replace(
        "    listen: \"127.0.0.1:0\"\n    routes:",
        &format!(
            "    listen: \"127.0.0.1:0\"\n{}\n    routes:",
            LIMITS.trim_start_matches('\n')
        ),
    );
    start_proxy(&yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_while_others_are_served() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = limited_proxy(&backend).await;
    let edge = edge(&proxy);
    let mut attacker = TcpStream::connect(edge).await.unwrap();
    attacker
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let client = client();
    let mut served = 0;
    // Trickle a header byte every 50 ms, as slowloris does, while a normal
    // client keeps being served; stop when luas hangs up (at most 5 s).
    let cut_off = loop {
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
        if attacker.write_all(b"X").await.is_err() {
            break true;
        }
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(50), attacker.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(_)) => break true, // an error response, then the close
            Err(_) => {}
        }
        assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
        served += 1;
    };
    let after = started.elapsed();
    eprintln!("slowloris cut off after {after:?}; {served} normal requests served meanwhile");
    assert!(cut_off, "slowloris connection still open after 5 s");
    assert!(
        after >= Duration::from_millis(450),
        "cut off too early: {after:?}"
    );
    assert!(served >= 3);
    assert_eq!(backend.requests(), served);
}

#[tokio::test]
async fn oversized_header_blocks_get_431() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = limited_proxy(&backend).await;
    let edge = edge(&proxy);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    assert_eq!(
        status_of(&raw_exchange(edge, big.as_bytes()).await),
        Some(431)
    );
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..60 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(
        status_of(&raw_exchange(edge, many.as_bytes()).await),
        Some(431)
    );
    assert_eq!(backend.requests(), 0);
    // Just under the limits is fine.
    let fits = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(8 * 1024)
    );
    assert_eq!(
        status_of(&raw_exchange(edge, fits.as_bytes()).await),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_never_reach_a_backend() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let edge = edge(&proxy);
    // A well-behaved keep-alive client on its own connection throughout.
    let client = client();
    assert_eq!(send(&client, edge, "/", &[]).await.status, 200);

    // Content-Length with Transfer-Encoding: the framing is ambiguous, so
    // the request is refused with 400 and its connection closed (RFC 9112
    // §6.3 allows the server that choice); neither it nor the request
    // hidden behind it reaches the backend.
    let answer = raw_exchange(
        edge,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), Some(400), "{answer:?}");
    assert_eq!(
        answer.matches("HTTP/1.1").count(),
        1,
        "two answers on one connection: {answer:?}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer:?}"
    );
    assert_eq!(
        backend.requests(),
        1,
        "the refused or the hidden request reached the backend"
    );

    let attacks: &[(&str, &[u8])] = &[
        (
            "two different content-lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello12",
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        ),
        ("bad method", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("bad version", b"GET / HTTP/9.7\r\nHost: x\r\n\r\n"),
        (
            "bad header name",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
        ),
        (
            "bad target",
            b"GET not a target HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        ),
        ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("no host", b"GET / HTTP/1.1\r\n\r\n"),
        ("a host with a path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        (
            "a host with userinfo",
            b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        ),
        (
            "a host with a named port",
            b"GET / HTTP/1.1\r\nHost: a:http\r\n\r\n",
        ),
    ];
    for (name, attack) in attacks {
        let answer = raw_exchange(edge, attack).await;
        let status = status_of(&answer);
        assert!(
            matches!(status, Some(400..=499)) || answer.is_empty(),
            "{name}: expected a 4xx or a closed connection, got {answer:?}"
        );
        // The good client's connection is untouched.
        assert_eq!(
            send(&client, edge, "/", &[]).await.status,
            200,
            "after {name}"
        );
    }
    // Only the good client's requests reached the backend: nothing smuggled.
    assert_eq!(backend.requests(), 1 + attacks.len() as u64);

    // An invalid chunk size once the request is under way cuts that request
    // off; the backend never sees a second request from the leftover bytes.
    let answer = raw_exchange(
        edge,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    )
    .await;
    assert!(
        !answer.contains("HTTP/1.1 200 OK\r\n") || !answer.contains("smuggled"),
        "{answer:?}"
    );
    assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_stalled_bodies_408() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = limited_proxy(&backend).await;
    let edge = edge(&proxy);
    // Declared too large: refused before anything is forwarded.
    let declared = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n{}",
        "a".repeat(2048)
    );
    let answer = raw_exchange(edge, declared.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    assert_eq!(backend.requests(), 0);

    // Chunked, growing past the limit while streaming: 413 once it passes.
    let mut chunked = String::from(
        "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..4 {
        chunked.push_str(&format!("200\r\n{}\r\n", "b".repeat(512)));
    }
    chunked.push_str("0\r\n\r\n");
    let answer = raw_exchange(edge, chunked.as_bytes()).await;
    assert_eq!(status_of(&answer), Some(413), "{answer}");

    // A body that stops arriving is given up after body_timeout: 408.
    let mut stream = TcpStream::connect(edge).await.unwrap();
    stream
        .write_all(b"PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(
        waited < Duration::from_secs(3),
        "stalled body held for {waited:?}"
    );
    // Neither failure was the backend's: it is not charged with errors.
    let metrics = metrics_text(&proxy).await;
    let errors = format!(
        r#"luas_backend_requests_total{{code="error",endpoint="{}",group="stable",service="web"}}"#,
        backend.address
    );
    assert_eq!(sample(&metrics, &errors), Some(0.0), "{metrics}");

    // Bodies within the limit pass.
    let fine =
        "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let answer = raw_exchange(edge, fine.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n5\n"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_at_once() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let yaml = one_service_yaml(&[backend.address], "").replace(
        "    listen: \"127.0.0.1:0\"\n    routes:",
        "    listen: \"127.0.0.1:0\"\n    limits: { max_connections: 3 }\n    routes:",
    );
    let proxy = start_proxy(&yaml).await;
    let edge = edge(&proxy);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(edge).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 12];
        stream.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"HTTP/1.1 200");
        held.push(stream);
    }
    // The fourth is accepted and closed without an answer.
    let answer = raw_exchange(edge, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer, "");
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        sample(
            &metrics,
            r#"luas_connections_rejected_total{listener="edge"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    // Closing one makes room again.
    drop(held.pop());
    let served = eventually(Duration::from_secs(5), || async {
        status_of(
            &raw_exchange(
                edge,
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await,
        ) == Some(200)
    })
    .await;
    assert!(served);
}

/// Minimal HTTP/2 frames for the rapid-reset test.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9 + payload.len());
    let length = payload.len() as u32;
    bytes.extend_from_slice(&length.to_be_bytes()[1..]);
    bytes.push(kind);
    bytes.push(flags);
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_gets_the_connection_closed() {
    let backend = Backend::spawn(BackendOptions::new("b").latency(Duration::from_millis(200)))
        .await
        .unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let edge = edge(&proxy);
    let mut stream = TcpStream::connect(edge).await.unwrap();
    let mut attack = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    attack.extend(frame(0x4, 0, 0, &[])); // SETTINGS
                                          // HPACK: :method GET (0x82), :scheme http (0x86), :path / (0x84),
                                          // :authority "x" (literal, indexed name 1).
    let headers = [0x82, 0x86, 0x84, 0x41, 0x01, b'x'];
    for i in 0..2_000u32 {
        let id = 1 + 2 * i;
        attack.extend(frame(0x1, 0x4 | 0x1, id, &headers)); // HEADERS, END_HEADERS | END_STREAM
        attack.extend(frame(0x3, 0, id, &0x8u32.to_be_bytes())); // RST_STREAM CANCEL
    }
    let _ = stream.write_all(&attack).await;
    // Read frames until a GOAWAY (type 7) or the connection closes.
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut goaway = false;
    while Instant::now() < deadline {
        let mut buffer = [0u8; 16 * 1024];
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
            Err(_) => {}
        }
        let mut offset = 0;
        while received.len() >= offset + 9 {
            let length = u32::from_be_bytes([
                0,
                received[offset],
                received[offset + 1],
                received[offset + 2],
            ]) as usize;
            if received[offset + 3] == 0x7 {
                goaway = true;
            }
            offset += 9 + length;
        }
        if goaway {
            break;
        }
    }
    assert!(goaway, "no GOAWAY after 2000 rapid resets");
    // Streams that were reset at once never tied up the backend for long,
    // and a normal client is still served.
    assert!(
        backend.requests() < 2_000,
        "{} requests reached the backend",
        backend.requests()
    );
    let client = client();
    assert_eq!(send(&client, edge, "/", &[]).await.status, 200);
}

#[tokio::test]
async fn malformed_backend_responses_become_502_never_raw_bytes() {
    for (name, response) in [
        ("garbage", &b"this is not http\r\n\r\n"[..]),
        ("bad status line", b"HTTP/1.1 2x0 OK\r\n\r\n"),
        ("bad header", b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n"),
        (
            "conflicting lengths",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        ),
        (
            "length and chunked",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "another coding",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        ),
        (
            "chunked in HTTP/1.0",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Folded: a\r\n b\r\n\r\nabc",
        ),
    ] {
        let backend = raw_backend(response).await;
        let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
        let answer = get(edge(&proxy), "/", &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{name}: {answer:?}");
        assert!(
            !answer.body.contains("not http"),
            "{name}: raw bytes passed through"
        );
    }
}

#[tokio::test]
async fn a_truncated_backend_response_is_a_cut_stream() {
    let backend = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part").await;
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let client = client();
    let response = client
        .request(
            http::Request::get(format!("http://{}/", edge(&proxy)))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(
        body.is_err(),
        "a 100-byte body with 9 bytes must not complete"
    );
}

#[tokio::test]
async fn h2_clients_are_told_the_stream_limit() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = limited_proxy(&backend).await;
    let tcp = TcpStream::connect(edge(&proxy)).await.unwrap();
    let (mut sender, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let request = http::Request::get(format!("http://{}/", edge(&proxy)))
        .body(())
        .unwrap();
    let (response, _) = sender.send_request(request, true).unwrap();
    // The connection must be driven for the answer to arrive; the server's
    // SETTINGS come before it.
    let response = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            response = response => response,
            ended = &mut connection => panic!("connection ended first: {ended:?}"),
        }
    })
    .await
    .expect("an answer within 10 s")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(connection.max_concurrent_send_streams(), 7);
}
