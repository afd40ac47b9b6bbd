//! Accepting client connections on one listener and serving HTTP on them.
//!
//! Each accepted connection gets its own task, HTTP/1.1 or HTTP/2 (prior
//! knowledge) detected from its first bytes when the listener's protocol is
//! `auto`, with upgrades enabled. Connections hold a drain token, so graceful
//! shutdown waits for them: on shutdown the accept loop stops and every
//! connection is told to finish its in-flight requests and close.
//!
//! This module owns sockets and protocol framing only; what happens to a
//! request is `proxy`'s business.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntGauge;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::metrics::ListenerMetrics;
use crate::proxy;
use crate::shutdown::{DrainToken, ShutdownSignal};
use crate::state::State;

/// How long a client may take to send a request's headers; closes slowloris
/// connections while others are served.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_BACKLOG: u32 = 1024;

/// Binds a TCP listener with address reuse and a production-sized backlog.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
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
pub fn spawn_listener(
    listener: TcpListener,
    index: usize,
    config: &ListenerConfig,
    state: Arc<State>,
    signal: ShutdownSignal,
    drain: DrainToken,
) -> JoinHandle<()> {
    let builder = connection_builder(config.protocol);
    let metrics = state.metrics().listener(&config.name);
    let name = config.name.clone();
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
            let connection = proxy::Connection {
                state: state.clone(),
                listener: index,
                remote,
                scheme: "http",
                drain: drain.clone(),
            };
            tokio::spawn(serve_connection(
                builder.clone(),
                stream,
                connection,
                signal.clone(),
                metrics.clone(),
            ));
        }
        tracing::debug!(listener = %name, "stopped accepting");
    })
}

fn connection_builder(protocol: ListenerProtocol) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    match protocol {
        ListenerProtocol::Auto => builder,
        ListenerProtocol::Http1 => builder.http1_only(),
        ListenerProtocol::Http2 => builder.http2_only(),
    }
}

async fn serve_connection(
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    connection: proxy::Connection,
    mut signal: ShutdownSignal,
    metrics: ListenerMetrics,
) {
    let _ = stream.set_nodelay(true);
    metrics.connections.inc();
    let _open = OpenConnection::new(metrics.open_connections);
    let remote = connection.remote;
    let connection = Arc::new(connection);
    let service = service_fn(move |request| {
        let connection = connection.clone();
        async move { Ok::<_, Infallible>(proxy::handle(&connection, request).await) }
    });
    let served = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = signal.triggered() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "client connection ended with an error");
    }
}

/// Keeps the open-connections gauge right however the task ends.
struct OpenConnection(IntGauge);

impl OpenConnection {
    fn new(gauge: IntGauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
