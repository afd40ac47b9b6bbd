//! Accepting client connections on one listener and serving HTTP on them.
//!
//! Each accepted connection gets its own task, HTTP/1.1 or HTTP/2 (prior
//! knowledge) detected from its first bytes when the listener's protocol is
//! `auto`, with upgrades enabled. Connections hold a drain token, so graceful
//! shutdown waits for them: on shutdown the accept loop stops and every
//! connection is told to finish its in-flight requests and close.
//!
//! Limits (per listener, `limits:`): at most `max_connections` open at once
//! (beyond it a new connection is accepted and closed at once, counted in
//! `luas_connections_rejected_total`); request headers must arrive within
//! `header_read_timeout` (which also closes HTTP/1.1 connections idle between
//! requests) and fit `max_header_bytes` and `max_headers` (431 beyond);
//! `h2_max_concurrent_streams` streams per HTTP/2 connection, with hyper's
//! and h2's defenses against rapid reset (CVE-2023-44487) on; and a
//! connection that starts no request for `idle_timeout` (looked at once per
//! timeout, so between one and two of them) is closed gracefully.
//! Malformed requests get hyper's 400 (or 414/431) and only their own
//! connection is closed.
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::access_log::AccessLog;
use crate::config::{ListenerConfig, ListenerLimits, ListenerProtocol};
use crate::metrics::ListenerMetrics;
use crate::proxy;
use crate::shutdown::{Shutdown, ShutdownSignal};
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
    // Shared: each connection clones only the one builder it uses.
    let builders = Arc::new(Builders::new(config.protocol, &config.limits));
    let metrics = state.metrics().listener(&config.name);
    let name = config.name.clone();
    let slots = Arc::new(Semaphore::new(config.limits.max_connections));
    let idle_timeout = config.limits.idle_timeout;
    let handshake_timeout = config.limits.header_read_timeout;
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
            let connection = proxy::Connection {
                state: state.clone(),
                access_log: access_log.clone(),
                listener: index,
                remote,
                scheme: "http",
                client_identity: None,
                drain: drain.clone(),
            };
            let serving = Serving {
                signal: signal.clone(),
                metrics: metrics.clone(),
                idle_timeout,
            };
            match &tls {
                None => {
                    let served = serving.serve(builders.auto.clone(), stream, connection);
                    tokio::spawn(async move {
                        served.await;
                        drop(slot);
                    });
                }
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    let builders = builders.clone();
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
                        let session = stream.get_ref().1;
                        let builder = match session.alpn_protocol() {
                            Some(b"h2") => builders.http2.clone(),
                            Some(b"http/1.1") => builders.http1.clone(),
                            _ => builders.auto.clone(),
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
                        serving.serve(builder, stream, connection).await;
                        drop(slot);
                    });
                }
            }
        }
        tracing::debug!(listener = %name, "stopped accepting");
    })
}

/// Connection builders of one listener: `auto` per its protocol, and the
/// two single-protocol ones that ALPN selects.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(protocol: ListenerProtocol, limits: &ListenerLimits) -> Self {
        let base = connection_builder(limits);
        Self {
            auto: match protocol {
                ListenerProtocol::Auto => base.clone(),
                ListenerProtocol::Http1 => base.clone().http1_only(),
                ListenerProtocol::Http2 => base.clone().http2_only(),
            },
            http1: base.clone().http1_only(),
            http2: base.http2_only(),
        }
    }
}

fn connection_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
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
    async fn serve<I>(
        self,
        builder: auto::Builder<TokioExecutor>,
        stream: I,
        connection: proxy::Connection,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            mut signal,
            metrics,
            idle_timeout,
        } = self;
        metrics.connections.inc();
        let _open = OpenConnection::new(metrics.open_connections);
        let remote = connection.remote;
        // One Arc per connection, cloned once per request.
        let shared = Arc::new((connection, Activity::new()));
        let service = {
            let shared = shared.clone();
            service_fn(move |request| {
                let shared = shared.clone();
                // Boxed because hyper keeps one slot the size of this future for
                // the whole life of an HTTP/1 connection: the proxy's future is
                // ~4.5 KiB, and every idle keep-alive connection paid for it.
                Box::pin(async move {
                    let (connection, activity) = &*shared;
                    let _busy = activity.begin();
                    Ok::<_, Infallible>(proxy::handle(connection, request).await)
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

/// Keeps the open-connections gauge right however the task ends.
struct OpenConnection(IntGauge);

impl OpenConnection {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
