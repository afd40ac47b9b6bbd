//! luas's own HTTP/1.1 client, against backends written by hand: 1xx
//! answers dropped, pooled connections the backend closed never used, an
//! answer that comes before the request body has all gone, and request and
//! response streaming at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use bytes::BytesMut;
use luas::http1::chunked::{ChunkedDecoder, Decoded};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PATIENCE: Duration = Duration::from_secs(5);

/// Reads until `buffer` holds a whole head; false if the peer closed first.
async fn read_head<R: AsyncRead + Unpin>(stream: &mut R, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
        match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => buffer.extend_from_slice(&chunk[..read]),
            _ => return false,
        }
    }
    true
}

/// Reads until `buffer` contains `wanted`, within 5 s.
async fn read_until(stream: &mut TcpStream, buffer: &mut Vec<u8>, wanted: &[u8]) {
    let mut chunk = [0u8; 4096];
    while !buffer.windows(wanted.len()).any(|window| window == wanted) {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{:?} within 5 s; got {:?}",
                    String::from_utf8_lossy(wanted),
                    String::from_utf8_lossy(buffer)
                )
            })
            .unwrap();
        assert!(
            read > 0,
            "closed before {:?}; got {:?}",
            String::from_utf8_lossy(wanted),
            String::from_utf8_lossy(buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn informational_answers_before_the_response_are_dropped() {
    let backend = raw_backend(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let answer = get(edge(&proxy), "/", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ok");
}

/// A backend that answers one request per connection with keep-alive, then
/// closes the connection as if its idle timeout had passed, counting the
/// connections it accepted and closed.
async fn closing_backend() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (accepted_count, closed_count) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted_count.fetch_add(1, Ordering::SeqCst);
            let closed_count = closed_count.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                if read_head(&mut stream, &mut request).await {
                    // The bodies sent here are short and arrive with the head.
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
                drop(stream);
                closed_count.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (address, accepted, closed)
}

#[tokio::test]
async fn a_pooled_connection_the_backend_closed_is_never_used() {
    let (backend, accepted, closed) = closing_backend().await;
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let client = client();
    assert_eq!(send(&client, edge(&proxy), "/", &[]).await.status, 200);
    assert!(
        eventually(PATIENCE, || async { closed.load(Ordering::SeqCst) == 1 }).await,
        "the backend closed its first connection"
    );
    // A POST is not idempotent: had it gone out on the closed connection,
    // it could not be sent again and would fail.
    let response = client
        .request(
            http::Request::post(format!("http://{}/", edge(&proxy)))
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"payload",
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A backend that answers the first request on each connection with
/// keep-alive, then reads the next request's head and closes without a
/// word: its idle timeout fired just as the request arrived. Sends every
/// head it read down `heads`.
async fn backend_closing_on_the_second_request(
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (heads, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                if !read_head(&mut stream, &mut request).await {
                    return;
                }
                let _ = heads.send(String::from_utf8_lossy(&request).into_owned());
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let mut next = Vec::new();
                if read_head(&mut stream, &mut next).await {
                    let _ = heads.send(String::from_utf8_lossy(&next).into_owned());
                }
            });
        }
    });
    (address, received)
}

/// The line of `head` that starts with `name` (lower case), if any.
fn head_line<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find(|line| line.to_ascii_lowercase().starts_with(name))
}

#[tokio::test]
async fn a_get_that_meets_a_stale_pooled_connection_goes_again_unchanged() {
    let (backend, mut heads) = backend_closing_on_the_second_request().await;
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let client = client();
    assert_eq!(send(&client, edge(&proxy), "/first", &[]).await.status, 200);
    let first = tokio::time::timeout(PATIENCE, heads.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with("GET /first "), "{first}");

    // Goes out on the pooled connection, which the backend then closes
    // unanswered; luas sends it again on a new one.
    let answer = send(&client, edge(&proxy), "/second?q=1", &[("x-test", "7")]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ok");
    let mut sent = Vec::new();
    for _ in 0..2 {
        let head = tokio::time::timeout(PATIENCE, heads.recv()).await;
        sent.push(head.expect("the backend saw the request twice").unwrap());
    }
    for head in &sent {
        assert!(head.starts_with("GET /second?q=1 HTTP/1.1\r\n"), "{head}");
        assert_eq!(head_line(head, "x-test:"), Some("x-test: 7"), "{head}");
    }
    let id = |head: &str| head_line(head, "x-request-id:").map(str::to_owned);
    assert!(id(&sent[0]).is_some(), "{}", sent[0]);
    assert_eq!(id(&sent[0]), id(&sent[1]), "one request, sent twice");
    assert_eq!(head_line(&sent[0], "host:"), head_line(&sent[1], "host:"));
}

#[tokio::test]
async fn an_answer_before_the_whole_request_body_reaches_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        if read_head(&mut stream, &mut request).await {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\
                      Connection: close\r\n\r\ntoo much",
                )
                .await;
            // Reads what else comes, so closing does not reset the answer.
            let mut sink = [0u8; 16 * 1024];
            let _ = tokio::time::timeout(PATIENCE, async {
                while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
            })
            .await;
        }
    });
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let mut client = TcpStream::connect(edge(&proxy)).await.unwrap();
    // A megabyte announced, a sixteenth of it sent: the rest never comes.
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        .await
        .unwrap();
    client.write_all(&vec![b'a'; 64 * 1024]).await.unwrap();
    let mut answer = Vec::new();
    read_until(&mut client, &mut answer, b"too much").await;
    assert!(answer.starts_with(b"HTTP/1.1 413"), "{answer:?}");
}

#[tokio::test]
async fn request_and_response_bodies_stream_at_once() {
    // An echo that answers at once and sends each chunk back as it comes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        if !read_head(&mut stream, &mut request).await {
            return;
        }
        let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut pending = BytesMut::from(&request[end..]);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let mut decoder = ChunkedDecoder::new(4096, 16);
        let mut chunk = [0u8; 4096];
        loop {
            match decoder.decode(&mut pending) {
                Ok(Some(Decoded::Data(data))) => {
                    let framed = [
                        format!("{:x}\r\n", data.len()).as_bytes(),
                        &data[..],
                        b"\r\n",
                    ]
                    .concat();
                    let _ = stream.write_all(&framed).await;
                }
                Ok(Some(Decoded::End | Decoded::Trailers(_))) => {
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    return;
                }
                Ok(None) => match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
                    Ok(Ok(read)) if read > 0 => pending.extend_from_slice(&chunk[..read]),
                    _ => return,
                },
                Err(_) => return,
            }
        }
    });
    let proxy = start_proxy(&one_service_yaml(&[backend], "")).await;
    let mut client = TcpStream::connect(edge(&proxy)).await.unwrap();
    client
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
        )
        .await
        .unwrap();
    // The first chunk comes back before the second is sent: the request
    // keeps streaming after the response began.
    let mut answer = Vec::new();
    read_until(&mut client, &mut answer, b"first").await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    client.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await.unwrap();
    read_until(&mut client, &mut answer, b"second").await;
    read_until(&mut client, &mut answer, b"0\r\n\r\n").await;
}
