//! Bodies stream through the proxy in both directions without being
//! buffered whole, and arrive byte-exact.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const TEN_MEGABYTES: usize = 10 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Deterministic, non-repeating-looking test data.
fn payload() -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(42);
    (0..TEN_MEGABYTES).map(|_| rng.u8(..)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_both_ways_byte_exact() {
    let backend = Backend::spawn(BackendOptions::new("echo")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let data = payload();

    let (sender, body) = ChannelBody::new();
    let client: Client<_, ChannelBody> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("http://{}/echo", edge(&proxy)))
        .body(body)
        .unwrap();
    let upload = {
        let data = data.clone();
        tokio::spawn(async move {
            for chunk in data.chunks(CHUNK) {
                sender.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
        })
    };
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("response headers within 30 s")
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = tokio::time::timeout(Duration::from_secs(60), response.into_body().collect())
        .await
        .expect("body within 60 s")
        .unwrap()
        .to_bytes();
    upload.await.unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed body differs from what was sent");
}

#[tokio::test]
async fn request_body_is_forwarded_before_it_ends() {
    // The client sends one chunk and waits to hear it echoed before sending
    // the next: a proxy that buffered the request body would deadlock here.
    let backend = Backend::spawn(BackendOptions::new("echo")).await.unwrap();
    let proxy = start_proxy(&one_service_yaml(&[backend.address], "")).await;
    let (sender, body) = ChannelBody::new();
    let client: Client<_, ChannelBody> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("http://{}/echo", edge(&proxy)))
        .body(body)
        .unwrap();
    sender.send(Bytes::from_static(b"first")).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("headers before the request body ended")
        .unwrap();
    let mut body = response.into_body();
    let mut received = Vec::new();
    for (round, chunk) in [&b"second"[..], b"third"].iter().enumerate() {
        // Read until everything sent so far has come back.
        let expected_len = [5, 11, 16][round];
        while received.len() < expected_len {
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("echo of a chunk before the next one was sent")
                .expect("stream still open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
            }
        }
        sender.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    drop(sender);
    let rest = body.collect().await.unwrap().to_bytes();
    received.extend_from_slice(&rest);
    assert_eq!(received, b"firstsecondthird");
}
