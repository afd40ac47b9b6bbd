//! An in-process HTTP backend for the demo and the tests: a real hyper server
//! on a loopback port that answers after a set latency and counts what it got.
//!
//! It speaks HTTP/1.1 and HTTP/2 (prior knowledge) on one port. Paths:
//! - `/echo`: streams the request body back as it arrives (no latency added);
//! - `/sink`: reads the whole request body, then answers with its size;
//! - `/headers`: the request line and headers as text, one per line;
//! - `/trailers`: body `ok` followed by the trailer `grpc-status: 0`;
//! - `/status/NNN`: answers with status NNN;
//! - anything else: `NAME\n` after the configured latency, with the
//!   configured status.
//!
//! Any request with `Connection: upgrade` and an `Upgrade` header is answered
//! 101 and the upgraded connection echoes bytes back. Every response carries
//! `x-backend: NAME`. Dropping the [`Backend`] closes its listener and every
//! connection, as a dying replica would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How a backend behaves.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    pub name: String,
    pub latency: Duration,
    pub status: StatusCode,
    /// Keep the value of this request header of every request, in order.
    pub record_header: Option<HeaderName>,
    /// Answer every path as a gRPC server failing every call: a
    /// trailers-only response with this `grpc-status` under HTTP 200.
    pub grpc_status: Option<u16>,
}

impl BackendOptions {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            latency: Duration::ZERO,
            status: StatusCode::OK,
            record_header: None,
            grpc_status: None,
        }
    }

    pub fn grpc_status(mut self, status: u16) -> Self {
        self.grpc_status = Some(status);
        self
    }

    pub fn record_header(mut self, name: &'static str) -> Self {
        self.record_header = Some(HeaderName::from_static(name));
        self
    }

    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

/// A running backend; stops when dropped.
#[derive(Debug)]
pub struct Backend {
    pub address: SocketAddr,
    pub name: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// Closes once the accept loop and every connection task have ended:
    /// each holds a sender and never sends.
    ended: mpsc::Receiver<()>,
}

/// What the serving tasks and the handle share.
#[derive(Debug)]
struct Shared {
    options: BackendOptions,
    requests: AtomicU64,
    /// The status of plain requests; changeable while running.
    status: AtomicU16,
    /// The latency of plain requests in microseconds; changeable while running.
    latency_micros: AtomicU64,
    recorded: Mutex<Vec<String>>,
}

type ResponseBody = BoxBody<Bytes, hyper::Error>;

impl Backend {
    /// Starts a backend on an ephemeral loopback port.
    pub async fn spawn(options: BackendOptions) -> std::io::Result<Self> {
        Self::spawn_on("127.0.0.1:0".parse().expect("valid address"), options).await
    }

    pub async fn spawn_on(address: SocketAddr, options: BackendOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let name = options.name.clone();
        let shared = Arc::new(Shared {
            status: AtomicU16::new(options.status.as_u16()),
            latency_micros: AtomicU64::new(options.latency.as_micros() as u64),
            options,
            requests: AtomicU64::new(0),
            recorded: Mutex::new(Vec::new()),
        });
        let serving = shared.clone();
        let mut stop_accepting = stopped.clone();
        let (alive, ended) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop_accepting.wait_for(|&stop| stop) => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let _ = stream.set_nodelay(true);
                let shared = serving.clone();
                let mut stop_connection = stopped.clone();
                let alive = alive.clone();
                tokio::spawn(async move {
                    let _alive = alive;
                    let service = service_fn(move |request: Request<Incoming>| {
                        shared.requests.fetch_add(1, Ordering::Relaxed);
                        if let Some(name) = &shared.options.record_header {
                            let value = request
                                .headers()
                                .get(name)
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                .unwrap_or_default();
                            shared
                                .recorded
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(value);
                        }
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(respond(&shared, request).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    // A stop cuts connections mid-request, like a killed process.
                    tokio::select! {
                        _ = connection => {}
                        _ = stop_connection.wait_for(|&stop| stop) => {}
                    }
                });
            }
        });
        Ok(Self {
            address,
            name,
            shared,
            stop,
            ended,
        })
    }

    /// Stops like a drop (connections cut mid-request, like a killed
    /// process), and returns once the listener is closed and every
    /// connection has been cut, so a test can act on a backend that is
    /// really gone.
    pub async fn shut_down(mut self) {
        self.stop.send_replace(true);
        while self.ended.recv().await.is_some() {}
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Changes the status plain requests get from now on (a replica going bad).
    pub fn set_status(&self, status: StatusCode) {
        self.shared.status.store(status.as_u16(), Ordering::Relaxed);
    }

    /// Changes the latency of plain requests from now on (a replica slowing
    /// down, or hanging with a very long one).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_micros
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// The recorded header values (see [`BackendOptions::record_header`]).
    pub fn recorded(&self) -> Vec<String> {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn respond(shared: &Shared, mut request: Request<Incoming>) -> Response<ResponseBody> {
    let options = &shared.options;
    let is_upgrade = request.headers().contains_key(header::UPGRADE)
        && request
            .headers()
            .get(header::CONNECTION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().contains("upgrade"));
    let mut response = if is_upgrade {
        upgrade(&mut request)
    } else if let Some(grpc_status) = options.grpc_status {
        // Every call fails the same way, whatever its path, after reading
        // the request as a unary gRPC server reads its message first.
        let _ = request.into_body().collect().await;
        let mut response = Response::new(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed(),
        );
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(grpc_status));
        response
    } else {
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/echo" => Response::new(request.into_body().boxed()),
            "/sink" => match request.into_body().collect().await {
                Ok(body) => full(StatusCode::OK, format!("{}\n", body.to_bytes().len())),
                Err(error) => full(StatusCode::BAD_REQUEST, format!("{error}\n")),
            },
            "/headers" => full(StatusCode::OK, describe(&request)),
            "/trailers" => trailers(request.uri().query()),
            _ => {
                if let Some(code) = path.strip_prefix("/status/") {
                    let status = code
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    full(status, format!("{}\n", options.name))
                } else {
                    let latency =
                        Duration::from_micros(shared.latency_micros.load(Ordering::Relaxed));
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    let status = StatusCode::from_u16(shared.status.load(Ordering::Relaxed))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    full(status, format!("{}\n", options.name))
                }
            }
        }
    };
    if let Ok(name) = HeaderValue::from_str(&options.name) {
        response.headers_mut().insert("x-backend", name);
    }
    response
}

fn full(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

fn describe(request: &Request<Incoming>) -> String {
    let mut text = format!(
        "{} {} {:?}\n",
        request.method(),
        request.uri(),
        request.version()
    );
    for (name, value) in request.headers() {
        text.push_str(name.as_str());
        text.push_str(": ");
        text.push_str(&String::from_utf8_lossy(value.as_bytes()));
        text.push('\n');
    }
    text
}

/// A gRPC-shaped response: a body, then `grpc-status` in the trailers (0,
/// or the number in `?status=N`).
fn trailers(query: Option<&str>) -> Response<ResponseBody> {
    let status = query
        .and_then(|query| query.strip_prefix("status="))
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(0);
    let mut trailer = HeaderMap::new();
    trailer.insert("grpc-status", HeaderValue::from(status));
    trailer.insert("grpc-message", HeaderValue::from_static("done"));
    // A stream of unknown length, so HTTP/1.1 sends it chunked, the only
    // framing that carries trailers (to a client that sent `TE: trailers`).
    let frames = [
        Ok(Frame::data(Bytes::from_static(b"ok"))),
        Ok(Frame::trailers(trailer)),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    // HTTP/1.1 sends only the trailer fields the head announced.
    response.headers_mut().insert(
        header::TRAILER,
        HeaderValue::from_static("grpc-status, grpc-message"),
    );
    response
}

fn upgrade(request: &mut Request<Incoming>) -> Response<ResponseBody> {
    let protocol = request
        .headers()
        .get(header::UPGRADE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("websocket"));
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let (mut reader, mut writer) = tokio::io::split(&mut io);
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    });
    let mut response = full(StatusCode::SWITCHING_PROTOCOLS, String::new());
    response.headers_mut().insert(header::UPGRADE, protocol);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response
}
