//! A backend that stops sending in the middle of its response body:
//! `timeouts.response_idle` cuts the response so the client sees it is
//! incomplete, and counts it as the endpoint's failure. A body that keeps
//! making progress, or one under `response_idle: 0`, is never cut.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One step of a hand-written backend's answer.
#[derive(Debug, Clone, Copy)]
enum Step {
    Write(&'static [u8]),
    Wait(Duration),
}

/// A backend that answers every request with `steps`, then keeps the
/// connection open (silent) until the proxy closes it.
async fn scripted_backend(steps: &'static [Step]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                for step in steps {
                    match *step {
                        Step::Write(bytes) => {
                            if stream.write_all(bytes).await.is_err() {
                                return;
                            }
                        }
                        Step::Wait(time) => tokio::time::sleep(time).await,
                    }
                }
                // Silent until the other side goes away (bounded by the test).
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await;
            });
        }
    });
    address
}

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";

/// Headers and the first chunk, then nothing.
const STALLS: &[Step] = &[Step::Write(HEAD)];

/// Sends a GET over a raw HTTP/1.1 connection and reads until the proxy
/// closes it (at most 15 s): what arrived and how long it took.
async fn raw_get(proxy: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: stalls.test\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut received));
    let _ = read.await;
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

async fn backend_count(proxy: &Running, backend: SocketAddr, code: &str) -> Option<f64> {
    sample(
        &metrics_text(proxy).await,
        &format!(
            "luas_backend_requests_total{{code=\"{code}\",endpoint=\"{backend}\",group=\"stable\",service=\"web\"}}"
        ),
    )
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_after_response_idle_and_counted_as_a_failure() {
    let backend = scripted_backend(STALLS).await;
    let yaml = one_service_yaml(
        &[backend],
        "    timeouts: { request: 3s, response_idle: 500ms }",
    );
    let proxy = start_proxy(&yaml).await;
    let (received, took) = raw_get(edge(&proxy)).await;
    eprintln!("stalled body cut after {took:?}");
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("hello"), "{received}");
    // Closed without the terminating chunk: the client knows the body is
    // incomplete.
    assert!(!received.ends_with("0\r\n\r\n"), "{received:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "cut after {took:?}, expected about 500 ms"
    );
    // Counted when the body ended: as the endpoint's failure, not a 2xx.
    let counted = eventually(Duration::from_secs(5), || async {
        backend_count(&proxy, backend, "error").await == Some(1.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(&proxy).await);
    assert_eq!(backend_count(&proxy, backend, "2xx").await, Some(0.0));
}

#[tokio::test]
async fn by_default_a_stalled_body_is_cut_after_the_request_timeout() {
    let backend = scripted_backend(STALLS).await;
    let yaml = one_service_yaml(&[backend], "    timeouts: { request: 1s }");
    let proxy = start_proxy(&yaml).await;
    let (received, took) = raw_get(edge(&proxy)).await;
    eprintln!("stalled body cut after {took:?} with the default response_idle");
    assert!(received.contains("hello"), "{received}");
    assert!(!received.ends_with("0\r\n\r\n"), "{received:?}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "cut after {took:?}, expected about 1 s"
    );
}

#[tokio::test]
async fn over_http2_a_stalled_body_is_reset() {
    let backend = scripted_backend(STALLS).await;
    let yaml = one_service_yaml(
        &[backend],
        "    timeouts: { request: 3s, response_idle: 500ms }",
    );
    let proxy = start_proxy(&yaml).await;
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let started = Instant::now();
    let response = client
        .get(format!("http://{}/", edge(&proxy)).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    let ended = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the stream ends within 10 s");
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    received.extend_from_slice(data);
                }
            }
            Some(Err(error)) => break Err(error),
            None => break Ok(()),
        }
    };
    let took = started.elapsed();
    eprintln!("HTTP/2 stream reset after {took:?}: {ended:?}");
    assert_eq!(received, b"hello");
    assert!(
        ended.is_err(),
        "the stream ended cleanly: the client cannot tell the body is cut"
    );
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn a_body_that_keeps_making_progress_is_never_cut() {
    const STEADY: &[Step] = &[
        Step::Write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
        Step::Write(b"1\r\na\r\n"),
        Step::Wait(Duration::from_millis(300)),
        Step::Write(b"1\r\nb\r\n"),
        Step::Wait(Duration::from_millis(300)),
        Step::Write(b"1\r\nc\r\n"),
        Step::Wait(Duration::from_millis(300)),
        Step::Write(b"1\r\nd\r\n"),
        Step::Wait(Duration::from_millis(300)),
        Step::Write(b"0\r\n\r\n"),
    ];
    let backend = scripted_backend(STEADY).await;
    let yaml = one_service_yaml(
        &[backend],
        "    timeouts: { request: 1s, response_idle: 500ms }",
    );
    let proxy = start_proxy(&yaml).await;
    // 1.2 s in all, longer than the request timeout and twice response_idle,
    // but never 500 ms without a byte.
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "abcd");
    let counted = eventually(Duration::from_secs(5), || async {
        backend_count(&proxy, backend, "2xx").await == Some(1.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(&proxy).await);
}

#[tokio::test]
async fn response_idle_zero_lets_a_quiet_stream_live() {
    const QUIET: &[Step] = &[
        Step::Write(HEAD),
        Step::Wait(Duration::from_millis(1200)),
        Step::Write(b"6\r\n world\r\n0\r\n\r\n"),
    ];
    let backend = scripted_backend(QUIET).await;
    let yaml = one_service_yaml(
        &[backend],
        "    timeouts: { request: 500ms, response_idle: 0 }",
    );
    let proxy = start_proxy(&yaml).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "hello world");
}
