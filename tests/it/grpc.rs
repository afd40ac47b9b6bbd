//! gRPC through luas with a real gRPC implementation on both sides: a tonic
//! server behind luas and a tonic client in front of it, over h2c and over
//! TLS. What a gRPC user sees is checked: the echo, a server's status with
//! its message, server-streamed messages and the status in the trailers
//! after them, a deadline, luas's own failures as statuses, luas's metrics
//! of gRPC failures, and a rollout judging a gRPC canary.
//!
//! No protobuf and no code generation: messages are raw bytes (the [`Raw`]
//! codec), the server is a tower service dispatching by path to tonic's
//! `server::Grpc`, and the client calls `client::Grpc` with a path, as
//! tonic's generated code does.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use futures_util::StreamExt;
use http::uri::PathAndQuery;
use http::Method;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::server::{ServerStreamingService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Server};
use tonic::{Code, Status};

use crate::support::certs::{Authority, Leaf};
use crate::support::*;

const UNARY: &str = "/test.Echo/Unary";
const STREAM: &str = "/test.Echo/Stream";
const SLOW: &str = "/test.Echo/Slow";
const CHAT: &str = "/test.Echo/Chat";

// ---- the codec: a message is its bytes ----

/// Encodes and decodes a message as its raw bytes: gRPC's framing (the
/// 5-byte prefix) is tonic's, the message format is ours.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(source.copy_to_bytes(source.remaining())))
    }
}

// ---- the server: service test.Echo ----

/// What one server instance answers; every method counts its calls.
#[derive(Debug, Clone)]
struct Echo {
    /// `Unary` fails with this status instead of echoing (trailers-only).
    unary_status: Option<(Code, &'static str)>,
    /// `Stream` sends this many messages, then ends with this status
    /// (OK when `None`) in the trailers.
    stream: (usize, Option<(Code, &'static str)>),
    /// The pause before each message of `Stream`.
    stream_interval: Duration,
    /// How long `Slow` takes before it echoes.
    slow: Duration,
    calls: Arc<AtomicUsize>,
    /// `Stream` responses not yet finished or dropped.
    open_streams: Arc<AtomicUsize>,
}

impl Echo {
    fn new() -> Self {
        Self {
            unary_status: None,
            stream: (3, None),
            stream_interval: Duration::ZERO,
            slow: Duration::from_secs(3),
            calls: Arc::new(AtomicUsize::new(0)),
            open_streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn unary_failing(mut self, code: Code, message: &'static str) -> Self {
        self.unary_status = Some((code, message));
        self
    }

    fn streaming(mut self, messages: usize, end: Option<(Code, &'static str)>) -> Self {
        self.stream = (messages, end);
        self
    }

    fn stream_interval(mut self, interval: Duration) -> Self {
        self.stream_interval = interval;
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::SeqCst)
    }
}

/// Counts a `Stream` response as open until it is dropped: when it ended,
/// or when its HTTP/2 stream was reset.
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Self(open.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Dispatches by path, as tonic's generated server does.
impl tower::Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let echo = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(Raw);
            Ok(match request.uri().path() {
                UNARY => grpc.unary(UnaryMethod(echo), request).await,
                STREAM => grpc.server_streaming(StreamMethod(echo), request).await,
                SLOW => grpc.unary(SlowMethod(echo), request).await,
                CHAT => grpc.streaming(ChatMethod, request).await,
                _ => Status::unimplemented("test.Echo has no such method").into_http(),
            })
        })
    }
}

struct UnaryMethod(Echo);
struct StreamMethod(Echo);
struct SlowMethod(Echo);
/// Bidirectional: echoes each message as it comes.
struct ChatMethod;

impl UnaryService<Bytes> for UnaryMethod {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let failure = self.0.unary_status;
        Box::pin(async move {
            match failure {
                Some((code, message)) => {
                    let mut metadata = MetadataMap::new();
                    metadata.insert("x-echo-reason", "configured".parse().unwrap());
                    Err(Status::with_metadata(code, message, metadata))
                }
                None => Ok(tonic::Response::new(request.into_inner())),
            }
        })
    }
}

type Messages = futures_util::stream::BoxStream<'static, Result<Bytes, Status>>;

impl ServerStreamingService<Bytes> for StreamMethod {
    type Response = Bytes;
    type ResponseStream = Messages;
    type Future = BoxFuture<Result<tonic::Response<Messages>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (count, end) = self.0.stream;
        let interval = self.0.stream_interval;
        let open = OpenStream::new(&self.0.open_streams);
        Box::pin(async move {
            let prefix = String::from_utf8_lossy(request.get_ref()).into_owned();
            let messages =
                (0..count).map(move |index| Ok(Bytes::from(format!("{prefix} {index}"))));
            let end = end.map(|(code, message)| Err(Status::new(code, message)));
            let items = futures_util::stream::iter(messages.chain(end)).then(move |item| {
                let _open = &open;
                async move {
                    if !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                    item
                }
            });
            Ok(tonic::Response::new(items.boxed()))
        })
    }
}

impl UnaryService<Bytes> for SlowMethod {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let slow = self.0.slow;
        Box::pin(async move {
            tokio::time::sleep(slow).await;
            Ok(tonic::Response::new(request.into_inner()))
        })
    }
}

impl tonic::server::StreamingService<Bytes> for ChatMethod {
    type Response = Bytes;
    type ResponseStream = Messages;
    type Future = BoxFuture<Result<tonic::Response<Messages>, Status>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Bytes>>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner().boxed())) })
    }
}

/// Serves `echo` with tonic's server on 127.0.0.1:0 (over TLS with ALPN h2
/// when `tls` is given) until the test's runtime ends.
async fn serve(echo: &Echo, tls: Option<&Leaf>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    match tls {
        None => {
            let incoming = TcpIncoming::from(listener);
            tokio::spawn(Server::builder().serve_with_incoming(echo.clone(), incoming));
        }
        Some(leaf) => {
            let incoming = tls_incoming(listener, leaf);
            tokio::spawn(Server::builder().serve_with_incoming(echo.clone(), incoming));
        }
    }
    address
}

/// The TLS connections accepted on `listener`, handshaken with `leaf` and
/// ALPN h2. Done here rather than by tonic's `ServerTlsConfig`, which
/// builds its rustls config from the process-wide default provider and
/// installs one when there is none: these tests share one process.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    leaf: &Leaf,
) -> impl futures_util::Stream<
    Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                // A failed handshake is the client's business, not the server's end.
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = sender.send(Ok(stream)).await;
                }
            });
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|stream| (stream, receiver))
    })
}

// ---- the client ----

/// A tonic channel to luas's listener at `address`, h2c with prior knowledge.
async fn channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("tonic connects to luas")
}

/// A tonic channel over TLS (ALPN h2) to `address`, trusting `authority`
/// and checking the certificate against the name `localhost`.
async fn tls_channel(address: SocketAddr, authority: &Authority) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(authority.pem()))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("tonic connects to luas over TLS")
}

/// One unary call of `path` with `message`, answered within 10 s.
async fn unary(channel: &Channel, path: &'static str, message: &str) -> Result<Bytes, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    let call = async {
        client
            .ready()
            .await
            .map_err(|error| Status::unknown(format!("channel not ready: {error}")))?;
        client
            .unary(
                tonic::Request::new(Bytes::from(message.to_owned())),
                PathAndQuery::from_static(path),
                Raw,
            )
            .await
            .map(tonic::Response::into_inner)
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call ends within 10 s")
}

/// One server-streaming call of `Stream`: the messages received, then how
/// the stream ended (its status, OK included).
async fn stream(channel: &Channel, message: &str) -> (Vec<String>, Status) {
    let mut client = tonic::client::Grpc::new(channel.clone());
    let call = async {
        client.ready().await.expect("channel ready");
        let response = client
            .server_streaming(
                tonic::Request::new(Bytes::from(message.to_owned())),
                PathAndQuery::from_static(STREAM),
                Raw,
            )
            .await;
        let mut messages = Vec::new();
        let mut stream = match response {
            Ok(response) => response.into_inner(),
            Err(status) => return (messages, status),
        };
        // Bounded: the servers here send a handful of messages.
        for _ in 0..1000 {
            match stream.message().await {
                Ok(Some(message)) => messages.push(String::from_utf8_lossy(&message).into_owned()),
                Ok(None) => {
                    let trailers = stream.trailers().await.expect("trailers");
                    let status = trailers
                        .and_then(|trailers| Status::from_header_map(&trailers.into_headers()))
                        .unwrap_or_else(|| Status::unknown("no grpc-status in the trailers"));
                    return (messages, status);
                }
                Err(status) => return (messages, status),
            }
        }
        panic!("more than 1000 messages");
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the stream ends within 10 s")
}

// ---- luas in front ----

/// luas with listener `edge` routing everything to service `web`, which
/// speaks h2c to `endpoints`; `service_extra` is spliced into the service.
async fn proxy_to(endpoints: &[SocketAddr], service_extra: &str) -> Running {
    start_proxy(&one_service_yaml(
        endpoints,
        &format!("    protocol: http2\n{service_extra}"),
    ))
    .await
}

/// A fresh directory for one test's certificate files.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch(&format!("grpc-{name}"))
}

fn write(directory: &Path, name: &str, contents: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// The `luas_backend_requests_total` sample of `endpoint` in group `group`
/// of service `web` for `code`.
fn backend_requests(metrics: &str, code: &str, endpoint: SocketAddr, group: &str) -> Option<f64> {
    sample(
        metrics,
        &format!(
            "luas_backend_requests_total{{code=\"{code}\",endpoint=\"{endpoint}\",group=\"{group}\",service=\"web\"}}"
        ),
    )
}

/// Every `luas_backend_requests_total` line of `endpoint`, for messages.
fn backend_lines(metrics: &str, endpoint: SocketAddr) -> String {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("luas_backend_requests_total")
                && line.contains(&format!("endpoint=\"{endpoint}\""))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- the tests ----

#[tokio::test]
async fn a_unary_call_through_luas_over_h2c_returns_the_echo() {
    let echo = Echo::new();
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "").await;
    let channel = channel(edge(&proxy)).await;

    for round in 0..3 {
        let message = format!("hello {round}");
        assert_eq!(unary(&channel, UNARY, &message).await.unwrap(), message);
    }
    // Empty and large messages too (the large one spans many DATA frames).
    assert_eq!(unary(&channel, UNARY, "").await.unwrap(), "");
    let large = "x".repeat(1 << 20);
    assert_eq!(unary(&channel, UNARY, &large).await.unwrap(), large);
    assert_eq!(echo.calls(), 5, "every call reached the tonic server");
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        backend_requests(&metrics, "2xx", server, "stable"),
        Some(5.0),
        "{}",
        backend_lines(&metrics, server)
    );
}

/// TLS to luas's listener (the client trusts the test CA and needs ALPN
/// h2), and from luas to the server either h2c or TLS (ALPN h2, the
/// server's certificate checked against the test CA).
#[tokio::test]
async fn a_unary_call_over_tls_returns_the_echo_with_h2c_or_tls_to_the_server() {
    let directory = scratch("tls");
    let authority = Authority::new("gRPC test CA");
    let edge_leaf = authority.server(&["localhost"]);
    let (edge_cert, edge_key) = (
        write(&directory, "edge.crt", &edge_leaf.cert),
        write(&directory, "edge.key", &edge_leaf.key),
    );
    let ca = write(&directory, "ca.crt", &authority.pem());
    let plain = Echo::new();
    let secure = Echo::new();
    let plain_address = serve(&plain, None).await;
    let secure_address = serve(&secure, Some(&authority.server(&["grpc.internal"]))).await;
    let proxy = start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    tls: {{ cert: {edge_cert}, key: {edge_key} }}
    routes:
      - {{ name: all, service: plain }}
  - name: secure
    listen: "127.0.0.1:0"
    tls: {{ cert: {edge_cert}, key: {edge_key} }}
    routes:
      - {{ name: all, service: secure }}
services:
  - name: plain
    protocol: http2
    endpoints: ["{plain_address}"]
  - name: secure
    protocol: http2
    tls: {{ ca: {ca}, server_name: grpc.internal }}
    endpoints: ["{secure_address}"]
"#
    ))
    .await;

    let to_plain = tls_channel(edge(&proxy), &authority).await;
    assert_eq!(
        unary(&to_plain, UNARY, "over TLS, then h2c").await.unwrap(),
        "over TLS, then h2c"
    );
    let to_secure = tls_channel(proxy.listener_address("secure").unwrap(), &authority).await;
    assert_eq!(
        unary(&to_secure, UNARY, "TLS both ways").await.unwrap(),
        "TLS both ways"
    );
    assert_eq!((plain.calls(), secure.calls()), (1, 1));

    // The client does verify: trusting another CA, it cannot connect.
    let stranger = Authority::new("another CA");
    let refused = Endpoint::from_shared(format!("https://{}", edge(&proxy)))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(stranger.pem()))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
}

/// A status the server answers with (trailers-only) reaches the client as
/// it was sent: code, message (percent-encoded on the wire) and metadata.
#[tokio::test]
async fn a_server_status_reaches_the_client_with_its_code_message_and_metadata() {
    let message = "no echo named \"x\": 100% gone ✓";
    let echo = Echo::new().unary_failing(Code::NotFound, message);
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "").await;
    let channel = channel(edge(&proxy)).await;

    let status = unary(&channel, UNARY, "x").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), message);
    assert_eq!(
        status.metadata().get("x-echo-reason").unwrap(),
        "configured"
    );
    assert_eq!(echo.calls(), 1);

    // NOT_FOUND is the caller's problem, not a failure of the endpoint.
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        backend_requests(&metrics, "2xx", server, "stable"),
        Some(1.0),
        "{}",
        backend_lines(&metrics, server)
    );
}

#[tokio::test]
async fn server_streaming_delivers_every_message_and_the_final_status() {
    let ok = Echo::new().streaming(5, None);
    let failing = Echo::new().streaming(4, Some((Code::Unavailable, "shutting down")));
    let proxy = start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    routes:
      - {{ name: ok, match: {{ host: ok.test }}, service: ok }}
      - {{ name: failing, service: failing }}
services:
  - {{ name: ok, protocol: http2, endpoints: ["{}"] }}
  - {{ name: failing, protocol: http2, endpoints: ["{}"] }}
"#,
        serve(&ok, None).await,
        serve(&failing, None).await,
    ))
    .await;
    let edge = edge(&proxy);
    // The route is chosen by :authority, which tonic takes from the origin.
    let ok_channel = Endpoint::from_shared(format!("http://{edge}"))
        .unwrap()
        .origin("http://ok.test".parse().unwrap())
        .connect()
        .await
        .unwrap();
    let failing_channel = channel(edge).await;

    let (messages, status) = stream(&ok_channel, "ok").await;
    assert_eq!(messages, ["ok 0", "ok 1", "ok 2", "ok 3", "ok 4"]);
    assert_eq!(status.code(), Code::Ok, "{status:?}");

    let (messages, status) = stream(&failing_channel, "then").await;
    assert_eq!(messages, ["then 0", "then 1", "then 2", "then 3"]);
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "shutting down");
    assert_eq!((ok.calls(), failing.calls()), (1, 1));
}

/// `timeouts.request` bounds the wait for the response headers only: a
/// server stream goes on for as long as the server keeps sending (each
/// pause shorter than `timeouts.response_idle`, by default as long).
#[tokio::test]
async fn a_server_stream_outlives_the_request_timeout() {
    let echo = Echo::new()
        .streaming(6, None)
        .stream_interval(Duration::from_millis(200));
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "    timeouts: { request: 500ms }").await;
    let channel = channel(edge(&proxy)).await;

    let started = Instant::now();
    let (messages, status) = stream(&channel, "tick").await;
    assert_eq!(messages.len(), 6, "{messages:?} {status:?}");
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert!(started.elapsed() >= Duration::from_millis(1000));
}

/// A client that drops a server stream half-way cancels it at the server
/// too: luas resets the upstream HTTP/2 stream rather than letting the
/// server go on sending into nothing.
#[tokio::test]
async fn a_client_cancelling_a_server_stream_cancels_it_at_the_server() {
    let echo = Echo::new()
        .streaming(100_000, None)
        .stream_interval(Duration::from_millis(10));
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "").await;
    let channel = channel(edge(&proxy)).await;

    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let response = client
        .server_streaming(
            tonic::Request::new(Bytes::from_static(b"endless")),
            PathAndQuery::from_static(STREAM),
            Raw,
        )
        .await
        .unwrap();
    let mut messages = response.into_inner();
    for index in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.message())
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert_eq!(message.unwrap(), format!("endless {index}"));
    }
    assert_eq!(echo.open_streams(), 1);
    drop(messages);
    let cancelled = eventually(Duration::from_secs(5), || async {
        echo.open_streams() == 0
    })
    .await;
    assert!(cancelled, "the server is still streaming");
    // The connection is fine for the next call.
    assert_eq!(unary(&channel, UNARY, "next").await.unwrap(), "next");
}

/// The client's deadline (300 ms in `grpc-timeout`) bounds luas's request
/// timeout (10 s here): luas answers DEADLINE_EXCEEDED itself at the
/// deadline, long before the server's 3 s answer.
///
/// tonic's `Channel` enforces the deadline it sends on its own and ends
/// the call with CANCELLED "Timeout expired" a moment before luas's
/// answer arrives, so that luas's status is seen here the call goes
/// through tonic's client over a plain HTTP/2 connection, which leaves
/// deadlines to the other side.
#[tokio::test]
async fn a_deadline_reaches_the_client_as_deadline_exceeded_from_luas() {
    let echo = Echo::new();
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "    timeouts: { request: 10s }").await;

    let stream = tokio::net::TcpStream::connect(edge(&proxy)).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut client = tonic::client::Grpc::with_origin(
        H2(sender),
        format!("http://{}", edge(&proxy)).parse().unwrap(),
    );
    let mut request = tonic::Request::new(Bytes::from_static(b"late"));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        client.ready().await.unwrap();
        client
            .unary(request, PathAndQuery::from_static(SLOW), Raw)
            .await
    })
    .await
    .expect("an answer within 10 s");
    let took = started.elapsed();
    eprintln!("DEADLINE_EXCEEDED after {took:?} (deadline 300 ms, server 3 s)");

    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "the backend did not answer in time",
        "luas's message, not the server's"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(echo.calls(), 1, "the call reached the server");
}

/// An HTTP/2 connection as the service tonic's client sends through;
/// unlike tonic's `Channel` it does not enforce `grpc-timeout` itself.
struct H2(hyper::client::conn::http2::SendRequest<Body>);

impl tower::Service<http::Request<Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<Result<Self::Response, hyper::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// A path no route matches is UNIMPLEMENTED, and a service whose only
/// endpoint refuses connections is UNAVAILABLE: statuses a gRPC client
/// understands, with luas's message, rather than HTTP 404 or 502.
#[tokio::test]
async fn luas_own_failures_reach_a_tonic_client_as_grpc_statuses() {
    let echo = Echo::new();
    let server = serve(&echo, None).await;
    // A port nothing listens on.
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
      - {{ name: other, match: {{ path_prefix: /other }}, service: web }}
      - {{ name: down, match: {{ path_prefix: /test.Down }}, service: down }}
services:
  - {{ name: web, protocol: http2, endpoints: ["{server}"] }}
  - {{ name: down, protocol: http2, endpoints: ["{closed}"] }}
"#
    ))
    .await;
    let channel = channel(edge(&proxy)).await;

    let status = unary(&channel, UNARY, "anyone?").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(status.message(), "no route matches this request");
    assert_eq!(echo.calls(), 0);

    let status = unary(&channel, "/test.Down/Unary", "anyone?")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("could not be reached")
            || status.message().contains("refused the connection"),
        "luas's message: {status:?}"
    );
    // The channel is still usable: each failure ended one call, not the
    // connection.
    let status = unary(&channel, UNARY, "again").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

/// A unary call the server fails with UNAVAILABLE (trailers-only) counts
/// as the endpoint's gRPC failure, not as the HTTP 200 it came in.
#[tokio::test]
async fn a_unary_unavailable_counts_as_a_grpc_error_of_its_endpoint() {
    let echo = Echo::new().unary_failing(Code::Unavailable, "overloaded");
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "").await;
    let channel = channel(edge(&proxy)).await;

    for _ in 0..3 {
        let status = unary(&channel, UNARY, "x").await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(status.message(), "overloaded");
    }
    let counted = eventually(Duration::from_secs(5), || async {
        let metrics = metrics_text(&proxy).await;
        backend_requests(&metrics, "grpc_error", server, "stable") == Some(3.0)
    })
    .await;
    let metrics = metrics_text(&proxy).await;
    let lines = backend_lines(&metrics, server);
    assert!(counted, "expected 3 grpc_error:\n{lines}");
    assert_eq!(
        backend_requests(&metrics, "2xx", server, "stable"),
        Some(0.0),
        "{lines}"
    );
}

/// A server-streaming call that sends messages and then ends with
/// UNAVAILABLE in its trailers is a failure of the endpoint too: the
/// status arrives after the body, so it is counted when the body ends.
#[tokio::test]
async fn a_stream_ending_with_unavailable_in_its_trailers_counts_as_a_grpc_error() {
    let echo = Echo::new().streaming(3, Some((Code::Unavailable, "went away")));
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "").await;
    let channel = channel(edge(&proxy)).await;

    let (messages, status) = stream(&channel, "m").await;
    assert_eq!(messages, ["m 0", "m 1", "m 2"]);
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let counted = eventually(Duration::from_secs(5), || async {
        let metrics = metrics_text(&proxy).await;
        backend_requests(&metrics, "grpc_error", server, "stable") == Some(1.0)
    })
    .await;
    let metrics = metrics_text(&proxy).await;
    let lines = backend_lines(&metrics, server);
    assert!(
        counted,
        "a stream ending UNAVAILABLE in its trailers should count as code=\"grpc_error\":\n{lines}"
    );
    assert_eq!(
        backend_requests(&metrics, "2xx", server, "stable"),
        Some(0.0),
        "{lines}"
    );
}

async fn rollout_of(proxy: &Running) -> serde_json::Value {
    api(proxy, Method::GET, "/api/v1/services/web", "").await.1["rollout"].clone()
}

/// A weighted canary whose tonic server fails every call with UNAVAILABLE,
/// under calls from tonic clients: the rollout rolls it back within 10 s
/// of the first UNAVAILABLE a client sees, and calls succeed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_canary_answering_unavailable_is_rolled_back() {
    let stable = Echo::new();
    let canary = Echo::new().unary_failing(Code::Unavailable, "canary is broken");
    let yaml = canary_yaml(
        &[serve(&stable, None).await],
        &[serve(&canary, None).await],
        (100, 0),
        &format!(
            "    protocol: http2\n{}",
            crate::rollout::ROLLOUT
                .replace("interval: 400ms", "interval: 5s")
                .replace("[10, 50, 100]", "[50, 100]")
        ),
        "",
    );
    let proxy = start_proxy(&yaml).await;
    let channel = channel(edge(&proxy)).await;

    // Four clients calling back to back on one connection until `stop`, at
    // most 60 s; the first UNAVAILABLE any of them sees is noted.
    let stop = Arc::new(AtomicBool::new(false));
    let first_unavailable: Arc<Mutex<Option<Instant>>> = Arc::default();
    let clients: Vec<JoinHandle<()>> = (0..4)
        .map(|_| {
            let (channel, stop, first) = (channel.clone(), stop.clone(), first_unavailable.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Err(status) = unary(&channel, UNARY, "call").await {
                        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                        first.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                }
            })
        })
        .collect();

    let rolled_back = eventually(Duration::from_secs(20), || async {
        rollout_of(&proxy).await["status"] == "rolled_back"
    })
    .await;
    let rolled_back_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(rolled_back, "no rollback: {}", rollout_of(&proxy).await);
    let first = first_unavailable
        .lock()
        .unwrap()
        .expect("a client saw UNAVAILABLE");
    let reaction = rolled_back_at - first;
    eprintln!("tonic canary rolled back {reaction:?} after the first UNAVAILABLE a client saw");
    assert!(reaction < Duration::from_secs(10), "took {reaction:?}");
    let rollout = rollout_of(&proxy).await;
    assert!(
        rollout["reason"].as_str().unwrap().contains("error rate"),
        "{rollout}"
    );

    // After the rollback every call goes to the stable group.
    let canary_calls = canary.calls();
    for _ in 0..20 {
        assert_eq!(unary(&channel, UNARY, "after").await.unwrap(), "after");
    }
    assert!(
        canary.calls() <= canary_calls,
        "the canary still gets calls"
    );
}

// ---- quiet streams ----

/// A bidirectional call whose client is quiet for longer than
/// `listeners[].limits.body_timeout` (30 s by default, 300 ms here) after
/// the server has started answering is cut by luas (the client's body
/// stalled), but that is not counted as the endpoint's failure.
#[tokio::test]
async fn a_quiet_bidi_client_is_not_the_endpoints_failure() {
    let echo = Echo::new();
    let server = serve(&echo, None).await;
    let proxy = start_proxy(&format!(
        r#"admin: {{ listen: "127.0.0.1:0" }}
listeners:
  - name: edge
    listen: "127.0.0.1:0"
    limits: {{ body_timeout: 300ms }}
    routes:
      - {{ name: all, service: web }}
services:
  - {{ name: web, protocol: http2, endpoints: ["{server}"] }}
"#
    ))
    .await;
    let channel = channel(edge(&proxy)).await;
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let outbound = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|message| (message, receiver))
    });
    sender.send(Bytes::from_static(b"one")).await.unwrap();
    let mut inbound = client
        .streaming(
            tonic::Request::new(outbound),
            PathAndQuery::from_static(CHAT),
            Raw,
        )
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), inbound.message()).await;
    assert_eq!(first.unwrap().unwrap().unwrap(), "one");
    // The client thinks for a second before its next message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = sender.send(Bytes::from_static(b"two")).await;
    let second = tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .expect("an answer within 5 s");
    eprintln!("after a 1 s pause (body_timeout 300 ms) the client got {second:?}");
    drop(sender);
    let _ = tokio::time::timeout(Duration::from_secs(5), inbound.message()).await;

    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        backend_requests(&metrics, "error", server, "stable"),
        Some(0.0),
        "the client's stall was counted against the endpoint:\n{}",
        backend_lines(&metrics, server)
    );
}

/// A server stream quiet for longer than `timeouts.response_idle` (by
/// default `timeouts.request`, 30 s; 500 ms here) is cut by luas, and ends
/// with a gRPC status in trailers (14 UNAVAILABLE and a message) rather
/// than a reset the client would read as a protocol error.
#[tokio::test]
async fn a_quiet_server_stream_cut_by_luas_ends_with_a_grpc_status() {
    let echo = Echo::new()
        .streaming(3, None)
        .stream_interval(Duration::from_millis(800));
    let server = serve(&echo, None).await;
    let proxy = proxy_to(&[server], "    timeouts: { request: 500ms }").await;
    let channel = channel(edge(&proxy)).await;

    let (messages, status) = stream(&channel, "quiet").await;
    eprintln!("a quiet stream cut by luas: {messages:?} then {status:?}");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Unavailable),
        "{status:?}"
    );
    assert!(status.message().starts_with("the backend"), "{status:?}");
}
