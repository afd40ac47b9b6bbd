//! Accepting client connections on one listener and serving HTTP on them.
//!
//! Each accepted connection gets its own task. HTTP/1.1 is served by
//! luas's own codec (`http1_connection`, which holds no buffer while a
//! connection is idle); a connection that opens with the HTTP/2 preface
//! (protocol `auto`), or an `http2` listener, is served by hyper. Upgrades
//! are spliced. Connections hold a drain token, so graceful shutdown waits
//! for them: on shutdown the accept loop stops and every connection is told
//! to finish its in-flight requests and close.
//!
//! Limits (per listener, `limits:`): at most `max_connections` open at once
//! (beyond it a new connection is accepted and closed at once, counted in
//! `luas_connections_rejected_total`); request headers must arrive within
//! `header_read_timeout` and fit `max_header_bytes` and `max_headers` (431
//! beyond); `h2_max_concurrent_streams` streams per HTTP/2 connection, with
//! hyper's and h2's defenses against rapid reset (CVE-2023-44487) on; and a
//! connection that starts no request for `idle_timeout` is closed
//! gracefully (HTTP/1.1: the keep-alive wait; HTTP/2: looked at once per
//! timeout, so between one and two of them). Malformed requests get 400
//! (or 414, 431, 501) and only their own connection is closed.
//!
//! TLS (`tls:` on the listener, see `tls::listener`): the handshake runs in
//! the connection's task within `header_read_timeout`; ALPN `h2` serves
//! HTTP/2, `http/1.1` HTTP/1.1, and a client that offers neither gets the
//! listener's protocol detection. The verified client certificate's names
//! travel with the connection for routes and logs.
//!
//! This module owns sockets and protocol framing only; what happens to a
//! request is `proxy`'s business.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

mod http1_connection;

use http1_connection::Http1Options;

use crate::access_log::AccessLog;
use crate::config::{ListenerConfig, ListenerLimits, ListenerProtocol};
use crate::metrics::ListenerMetrics;
use crate::proxy;
use crate::shutdown::{DrainToken, Shutdown, ShutdownSignal};
use crate::state::State;
use crate::tls::{ClientIdentity, TlsTerminator};

const ACCEPT_BACKLOG: u32 = 1024;
/// Reset streams an HTTP/2 client may have pending before its connection is
/// closed: the rapid-reset (CVE-2023-44487) defense.
const H2_MAX_PENDING_RESETS: usize = 20;

/// Binds a TCP listener with address reuse and a production-sized backlog.
pub(crate) fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Starts the accept loop of listener `index` (its position in the config).
/// With `tls`, each connection's handshake runs in its own task, bounded by
/// `header_read_timeout`, and ALPN picks HTTP/2 or HTTP/1.1.
pub(crate) fn spawn_listener(
    listener: TcpListener,
    index: usize,
    config: &ListenerConfig,
    tls: Option<Arc<TlsTerminator>>,
    state: Arc<State>,
    access_log: Arc<AccessLog>,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let (signal, drain) = (shutdown.signal(), shutdown.token());
    // hyper's builder for HTTP/2 connections, shared; HTTP/1.1 is luas's.
    let http2 = Arc::new(http2_builder(&config.limits));
    let metrics = state.metrics().listener(&config.name);
    let name = config.name.clone();
    let slots = Arc::new(Semaphore::new(config.limits.max_connections));
    let idle_timeout = config.limits.idle_timeout;
    let handshake_timeout = config.limits.header_read_timeout;
    let protocol = config.protocol;
    let http1_options = Http1Options::of(config);
    tokio::spawn(async move {
        let mut stop = signal.clone();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.triggered() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin, and keep serving what is open.
                    tracing::warn!(listener = %name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Full: close at once rather than queue, so clients retry
                // another replica instead of hanging.
                metrics.rejected.inc();
                tracing::debug!(listener = %name, %remote, "connection limit reached: closed");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = accepted_connection(&state, &access_log, index, remote, &drain);
            let serving = Serving {
                signal: signal.clone(),
                metrics: metrics.clone(),
                idle_timeout,
            };
            match &tls {
                None if protocol == ListenerProtocol::Http2 => {
                    tokio::spawn(serving.serve(http2.clone(), stream, connection, slot));
                }
                None => {
                    // One async fn, not a block around one: a block would
                    // hold its captures beside the callee's copies of them,
                    // in every idle connection's task.
                    let halves = crate::http1::io::split_tcp(stream);
                    tokio::spawn(serving.serve_http1(
                        halves,
                        connection,
                        http1_options,
                        http2.clone(),
                        slot,
                    ));
                }
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    let http2 = http2.clone();
                    let name = name.clone();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
                        let stream = match handshake {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                serving.metrics.tls_handshake_failures.inc();
                                tracing::debug!(listener = %name, %remote, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                serving.metrics.tls_handshake_failures.inc();
                                tracing::debug!(listener = %name, %remote, "TLS handshake timed out");
                                return;
                            }
                        };
                        // Boxed, and made in a plain function: the task
                        // then holds the handshake's state while it runs
                        // and only a pointer after it. Inline, the task of
                        // every idle TLS connection was 8.6 KiB, sized for
                        // the handshake and hyper's HTTP/2 state at once.
                        serving
                            .serve_tls(stream, connection, http1_options, protocol, http2, slot)
                            .await;
                    });
                }
            }
        }
        tracing::debug!(listener = %name, "stopped accepting");
    })
}

/// A connection as it is accepted: plain HTTP, no client certificate (the
/// TLS branch fills those in after its handshake).
fn accepted_connection(
    state: &Arc<State>,
    access_log: &Arc<AccessLog>,
    listener: usize,
    remote: SocketAddr,
    drain: &DrainToken,
) -> proxy::Connection {
    proxy::Connection {
        state: state.clone(),
        access_log: access_log.clone(),
        listener,
        remote,
        forwarded_for: proxy::headers::ForwardedFor::of(remote.ip()),
        scheme: "http",
        client_identity: None,
        drain: drain.clone(),
    }
}

/// hyper's connection builder for the listener's HTTP/2 connections.
fn http2_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_header_list_size(limits.max_header_bytes as u32);
    builder
}

/// What serving one connection needs beyond the connection itself.
struct Serving {
    signal: ShutdownSignal,
    metrics: ListenerMetrics,
    idle_timeout: Duration,
}

impl Serving {
    /// Serves HTTP/1.1 with luas's codec; a connection that opens with the
    /// HTTP/2 preface goes on to hyper.
    ///
    /// Written as a function returning an async block rather than an async
    /// fn: an async fn's future keeps its arguments twice (as passed and as
    /// moved into its body), and every idle connection's task is this
    /// future.
    #[allow(clippy::manual_async_fn)] // deliberately, for the future's size
    fn serve_http1(
        self,
        (read, write): (crate::http1::io::ClientRead, crate::http1::io::ClientWrite),
        connection: proxy::Connection,
        options: Http1Options,
        http2: Arc<auto::Builder<TokioExecutor>>,
        slot: OwnedSemaphorePermit,
    ) -> impl std::future::Future<Output = ()> + Send {
        async move {
            let _open = self.open(slot);
            let outcome =
                http1_connection::serve(read, write, &connection, &options, &self.signal).await;
            if let http1_connection::Outcome::Http2(io) = outcome {
                // Boxed: hyper's connection state is large, and only HTTP/2
                // connections need it.
                Box::pin(self.serve_hyper(&http2, io, connection)).await;
            }
        }
    }

    /// Serves a TLS connection after its handshake, by ALPN: HTTP/2 with
    /// hyper, HTTP/1.1 with luas's codec; without ALPN, the listener's
    /// protocol decides. Boxed (see the TLS branch of `spawn_listener`).
    fn serve_tls(
        self,
        stream: TlsStream<TcpStream>,
        connection: proxy::Connection,
        http1_options: Http1Options,
        protocol: ListenerProtocol,
        http2: Arc<auto::Builder<TokioExecutor>>,
        slot: OwnedSemaphorePermit,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let session = stream.get_ref().1;
        let http1_options = match (session.alpn_protocol(), protocol) {
            (Some(b"h2"), _) | (None, ListenerProtocol::Http2) => None,
            (Some(b"http/1.1"), _) | (_, ListenerProtocol::Http1) => Some(Http1Options {
                detect_http2: false,
                ..http1_options
            }),
            _ => Some(http1_options),
        };
        let client_identity = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(ClientIdentity::from_certificate)
            .map(Arc::new);
        let connection = proxy::Connection {
            scheme: "https",
            client_identity,
            ..connection
        };
        match http1_options {
            None => Box::pin(self.serve(http2, stream, connection, slot)),
            Some(options) => {
                let halves = crate::http1::io::split_tls(stream);
                Box::pin(self.serve_http1(halves, connection, options, http2, slot))
            }
        }
    }

    /// Serves the connection with hyper (HTTP/2).
    async fn serve<I>(
        self,
        http2: Arc<auto::Builder<TokioExecutor>>,
        stream: I,
        connection: proxy::Connection,
        slot: OwnedSemaphorePermit,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _open = self.open(slot);
        self.serve_hyper(&http2, stream, connection).await;
    }

    /// Counts the connection; the guard keeps the open-connections gauge
    /// and the listener's connection slot until the connection ends.
    fn open(&self, slot: OwnedSemaphorePermit) -> OpenConnection {
        self.metrics.connections.inc();
        OpenConnection::new(self.metrics.open_connections.clone(), slot)
    }

    /// Serves the connection with hyper, not counting it again.
    async fn serve_hyper<I>(
        &self,
        builder: &auto::Builder<TokioExecutor>,
        stream: I,
        connection: proxy::Connection,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut signal = self.signal.clone();
        let idle_timeout = self.idle_timeout;
        let remote = connection.remote;
        // One Arc per connection, cloned once per request.
        let shared = Arc::new((connection, Activity::new()));
        let service = {
            let shared = shared.clone();
            service_fn(move |request| {
                let shared = shared.clone();
                // Boxed so a connection's task holds the proxy's future (about
                // 7 KiB) only while a request is in flight.
                Box::pin(async move {
                    let (connection, activity) = &*shared;
                    let _busy = activity.begin();
                    Ok::<_, Infallible>(
                        proxy::handle(connection, request.map(crate::body::Incoming::from)).await,
                    )
                })
            })
        };
        let activity = &shared.1;
        let served = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(served);
        let mut closing = false;
        // Looked at once per idle timeout, so an idle connection is closed
        // between one and two timeouts after its last request started.
        let mut idle_checks = tokio::time::interval_at(Instant::now() + idle_timeout, idle_timeout);
        let result = loop {
            tokio::select! {
                result = served.as_mut() => break result,
                _ = signal.triggered(), if !closing => {
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
                _ = idle_checks.tick(), if !closing => {
                    if activity.idle_since_last_look() {
                        tracing::debug!(%remote, "closing an idle client connection");
                        closing = true;
                        served.as_mut().graceful_shutdown();
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%remote, %error, "client connection ended with an error");
        }
    }
}

/// Requests in progress on one connection, for the idle timeout. Counting
/// requests instead of reading the clock per request: the watchdog calls a
/// connection idle when nothing is in flight and no request started since
/// its previous look, one idle timeout ago.
struct Activity {
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// `started` as of the watchdog's previous look.
    seen: AtomicU64,
}

struct Busy<'a>(&'a Activity);

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            seen: AtomicU64::new(0),
        }
    }

    fn begin(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// True when idle since the previous call; remembers this look.
    fn idle_since_last_look(&self) -> bool {
        let started = self.started.load(Ordering::Relaxed);
        let previous = self.seen.swap(started, Ordering::Relaxed);
        self.in_flight.load(Ordering::Relaxed) == 0 && started == previous
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open connection: keeps the open-connections gauge right however the
/// task ends, and holds the listener's slot (`max_connections`) until then.
struct OpenConnection {
    gauge: IntGauge,
    _slot: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(gauge: IntGauge, slot: OwnedSemaphorePermit) -> Self {
        gauge.inc();
        Self { gauge, _slot: slot }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;

    /// The largest future an idle HTTP/1.1 connection's task may hold and
    /// stay in mimalloc's 1 024-byte size class.
    ///
    /// tokio 1.54 allocates a task as one cell aligned to 128 bytes: a
    /// 32-byte header, the scheduler handle and task id (16), the future in
    /// a `repr(C)` stage enum (8 more for its tag) and a 48-byte trailer.
    /// At 904 bytes of future the cell is 1 008 bytes, padded to 1 024
    /// (`-Zprint-type-sizes` agrees). Past 920 it pads to 1 152, which
    /// mimalloc serves from its 1 280-byte class: a quarter KiB more for
    /// every idle connection (docs/performance.md, section D).
    const IDLE_CONNECTION_FUTURE_BUDGET: usize = 920;

    #[tokio::test]
    async fn an_idle_http1_connection_task_stays_in_its_size_class() {
        let config = Config::from_yaml(
            "listeners:
  - { name: edge, listen: 127.0.0.1:0, routes: [{ name: all, service: web }] }
services:
  - { name: web, endpoints: [127.0.0.1:9] }
",
        )
        .unwrap();
        let metrics = Arc::new(Metrics::new(&[0.1, 1.0]));
        let access_log = Arc::new(AccessLog::new(metrics.access_log_dropped()));
        let state = Arc::new(State::new(config.clone(), metrics).unwrap());
        let listener_config = &config.listeners[0];
        let shutdown = Shutdown::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, remote) = listener.accept().await.unwrap();
        let connection = accepted_connection(&state, &access_log, 0, remote, &shutdown.token());
        let serving = Serving {
            signal: shutdown.signal(),
            metrics: state.metrics().listener(&listener_config.name),
            idle_timeout: listener_config.limits.idle_timeout,
        };
        let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let future = serving.serve_http1(
            crate::http1::io::split_tcp(stream),
            connection,
            Http1Options::of(listener_config),
            Arc::new(http2_builder(&listener_config.limits)),
            slot,
        );
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= IDLE_CONNECTION_FUTURE_BUDGET,
            "an idle HTTP/1.1 connection's future is {size} bytes, over its \
             {IDLE_CONNECTION_FUTURE_BUDGET}-byte budget: every idle connection's \
             task would take the next size class; box what grew"
        );
    }
}
