//! luas's own HTTP/1.1 server, on raw sockets: keep-alive with its own idle
//! timer, pipelining, `Expect: 100-continue`, chunked bodies and transfer
//! codings, HTTP/1.0 clients, HEAD, and bodies the backend never read.

use std::time::{Duration, Instant};

use crate::support::raw::Connection;
use crate::support::*;
use tokio::io::AsyncWriteExt;

async fn proxy_with_limits(backend: &Backend, limits: &str) -> Running {
    let yaml = one_service_yaml(&[backend.address], "").replace(
        "    listen: \"127.0.0.1:0\"\n    routes:",
        &format!("    listen: \"127.0.0.1:0\"\n    limits:\n{limits}\n    routes:"),
    );
    start_proxy(&yaml).await
}

/// How long the proxy, having answered on `connection`, leaves it idle
/// before closing it; it must close within 5 s.
async fn idle_until_closed(connection: &mut Connection) -> Duration {
    let idle_since = Instant::now();
    assert!(
        connection.closed_within(Duration::from_secs(5)).await,
        "still open 5 s after the answer"
    );
    idle_since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_has_its_own_idle_timer() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = proxy_with_limits(
        &backend,
        "      header_read_timeout: 300ms\n      idle_timeout: 1500ms",
    )
    .await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let first = connection.response(false).await;
    assert_eq!(first.status, 200);
    assert!(first.header("date").is_some(), "{first:?}");
    // Idle for longer than header_read_timeout: the idle timer, not the
    // head's, bounds a kept-alive connection. The wait is the condition
    // under test, so it is a sleep.
    tokio::time::sleep(Duration::from_millis(700)).await;
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(connection.response(false).await.status, 200);
    let idle = idle_until_closed(&mut connection).await;
    assert!(
        idle >= Duration::from_millis(1200) && idle < Duration::from_secs(4),
        "closed after {idle:?} idle; idle_timeout is 1.5 s"
    );
    assert_eq!(backend.requests(), 2);
}

/// The other way round: an idle timeout shorter than the head's is kept
/// too, though the connection's timer was first armed for the longer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_idle_timeout_closes_before_a_long_head_timeout() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = proxy_with_limits(
        &backend,
        "      header_read_timeout: 10s\n      idle_timeout: 300ms",
    )
    .await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(connection.response(false).await.status, 200);
    let idle = idle_until_closed(&mut connection).await;
    assert!(
        idle >= Duration::from_millis(200) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle; idle_timeout is 300 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection
        .send(b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(connection.response(false).await.status, 201);
    let echo = connection.response(false).await;
    assert_eq!((echo.status, echo.body.as_slice()), (200, &b"abc"[..]));
    assert_eq!(connection.response(false).await.status, 202);
    assert_eq!(backend.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_before_the_body() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection
        .send(b"PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await;
    assert_eq!(connection.response(false).await.status, 100);
    connection.send(b"hello").await;
    let answer = connection.response(false).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"5\n"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_pass_and_other_codings_get_501() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection
        .send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .await;
    let echo = connection.response(false).await;
    assert_eq!(
        (echo.status, echo.body.as_slice()),
        (200, &b"hello world"[..])
    );

    let mut connection = Connection::open(edge(&proxy)).await;
    connection
        .send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
    let refused = connection.response(false).await;
    assert_eq!(refused.status, 501);
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(connection.closed_within(Duration::from_secs(3)).await);
    assert_eq!(backend.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_clients_close_unless_they_ask_to_keep_alive() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let answer = connection.response(false).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(connection.closed_within(Duration::from_secs(3)).await);

    let mut connection = Connection::open(edge(&proxy)).await;
    for _ in 0..2 {
        connection
            .send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let answer = connection.response(false).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("connection"), Some("keep-alive"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_and_unread_bodies_keep_the_connection_in_step() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let head = connection.response(true).await;
    assert_eq!(head.status, 200);
    // The backend answers /status/404 without reading the body, which
    // looks like a request: luas drains it, never parses it as one.
    let hidden = b"GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut request = format!(
        "POST /status/404 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        hidden.len()
    )
    .into_bytes();
    request.extend_from_slice(hidden);
    request.extend_from_slice(b"GET /status/203 HTTP/1.1\r\nHost: x\r\n\r\n");
    connection.send(&request).await;
    assert_eq!(connection.response(false).await.status, 404);
    assert_eq!(connection.response(false).await.status, 203);
    assert_eq!(backend.requests(), 3, "the body was taken for a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_said_close_is_let_go_at_once() {
    let backend = Backend::spawn(BackendOptions::new("b")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let mut connection = Connection::open(edge(&proxy)).await;
    connection
        .send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(connection.response(false).await.status, 200);
    assert!(connection.closed_within(Duration::from_secs(3)).await);
    // The client keeps its end open and writes on. Had luas kept reading
    // its input before closing (as it must while a client may still be
    // sending, for up to a second), the bytes would be read and dropped;
    // with luas's socket closed, the kernel answers the first with a reset
    // and the next write fails. Half a second is the bound: well inside the
    // drain's second, and far beyond a close that follows its response.
    let started = Instant::now();
    let mut refused = None;
    for _ in 0..50 {
        if let Err(error) = connection.stream.write_all(b"x").await {
            refused = Some(error.kind());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        matches!(
            refused,
            Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        ),
        "luas still held the connection {:?} after the client said it was done: {refused:?}",
        started.elapsed()
    );
}
