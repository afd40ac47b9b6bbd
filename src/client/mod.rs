//! Sending a request to one endpoint over a pooled connection.
//!
//! HTTP/1.1: luas's own codec (`http1::upstream`), driven by the request's
//! task, on connections from a small LIFO pool per endpoint (see
//! `endpoint::pool`; a per-endpoint lock held only to push or pop, never a
//! global one). A connection goes back to the pool only once its exchange
//! ended cleanly: the response read to its end by whoever polls [`Received`]
//! (`proxy::response`, a drain), the request sent whole. Idle ones older
//! than the service's `timeouts.idle`, or closed by the endpoint, are
//! dropped when taken. HTTP/2: one multiplexed connection
//! per endpoint in its slot, opened on first use and replaced when it
//! closes; the client's `Host` travels as `:authority`.
//!
//! The point of owning the pool: [`SendError::NotSent`] gives the request
//! back whenever it provably never reached the endpoint (the connection could
//! not be opened, or not a byte of its head could be written), so the proxy
//! can always retry it elsewhere, streaming body and all. A pooled
//! connection found closed before use is skipped without a try. Which endpoint, timeouts and statuses belong to `proxy`.
//!
//! An endpoint's pooled connections belong to the client that opened them:
//! when a reload replaces a service's client (other protocol, timeouts or
//! TLS settings or files), the new client never reuses the old one's
//! connections, so a tightened TLS setting applies at once.
//!
//! With `tls:` on the service, every connection is TLS (see `tls::upstream`);
//! the TLS handshake counts toward the connect timeout, and a connection
//! that fails it never carried the request.

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::client::conn::{http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::RequestBody;
use crate::config::{Timeouts, UpstreamProtocol};
use crate::endpoint::{Endpoint, EndpointStats};
use crate::http1::upstream::{self, Connection, SendFailure, Stream};
use crate::tls::UpstreamTlsConnector;

mod received;
pub(crate) use received::Received;

pub(crate) use crate::http1::upstream::BoxError;

/// Why a request to an endpoint got no response.
#[derive(Debug)]
pub enum SendError {
    /// The request never reached the endpoint and comes back untouched.
    NotSent {
        // Boxed: the failure path should not make every result large.
        request: Box<Request<RequestBody>>,
        error: BoxError,
    },
    /// The connection failed after the request may have been written
    /// (reset, closed early, malformed response).
    Failed(BoxError),
    /// A pooled connection closed without a byte of response: almost always
    /// the endpoint closing an idle connection just as the request went out,
    /// so an idempotent request may be sent again (RFC 9112 §9.3.1.1). Its
    /// head comes back for that, as the client sent it (origin-form URI,
    /// `Host` set); its body went.
    Stale {
        error: BoxError,
        head: Box<http::request::Parts>,
    },
}

/// An endpoint's response; its body returns an HTTP/1.1 connection to the
/// pool when read to its end.
#[derive(Debug)]
pub struct Sent {
    pub response: Response<Received>,
    /// Time this request spent opening its connection (TCP, TLS, the HTTP
    /// handshake): not the endpoint's service time, so the latency sample
    /// leaves it out. Zero on a pooled or shared connection.
    pub setup: std::time::Duration,
    /// When the response head arrived: read once, for the pool, the
    /// latency sample, the retry decision and the route's count alike.
    pub received: Instant,
}

impl Sent {
    /// Reads the response body to its end and drops it, handing back its
    /// trailers; a connection read to the end goes back to the pool. For
    /// answers luas does not pass on (health probes, mirrored copies).
    pub async fn drain(self) -> Result<Option<http::HeaderMap>, BoxError> {
        let mut body = self.response.into_body();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            if let Ok(found) = frame?.into_trailers() {
                trailers = Some(found);
            }
        }
        Ok(trailers)
    }
}

#[derive(Debug)]
pub struct UpstreamClient {
    /// Unique per client: an endpoint's connections belong to one client,
    /// so a client rebuilt with other TLS settings never reuses the old
    /// one's connections.
    id: u64,
    protocol: UpstreamProtocol,
    connect_timeout: Duration,
    idle_timeout: Duration,
    tls: Option<Arc<UpstreamTlsConnector>>,
}

impl UpstreamClient {
    pub fn new(
        protocol: UpstreamProtocol,
        timeouts: &Timeouts,
        tls: Option<Arc<UpstreamTlsConnector>>,
    ) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            protocol,
            connect_timeout: timeouts.connect,
            idle_timeout: timeouts.idle,
            tls,
        }
    }

    pub fn protocol(&self) -> UpstreamProtocol {
        self.protocol
    }

    /// Whether this client speaks TLS with exactly `tls` (the same loaded
    /// files), so a rebuilt snapshot may keep it and its connections.
    pub fn same_tls(&self, tls: Option<&Arc<UpstreamTlsConnector>>) -> bool {
        match (&self.tls, tls) {
            (None, None) => true,
            (Some(own), Some(other)) => Arc::ptr_eq(own, other),
            _ => false,
        }
    }

    /// Sends `request` to `endpoint`, a try that began at `started` (a
    /// pooled connection idle for longer than the service's idle timeout
    /// by then is not used). Its headers are final; only its URI and
    /// version are set here, to what the protocol needs.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        mut request: Request<RequestBody>,
        started: Instant,
    ) -> Result<Sent, SendError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        match self.protocol {
            UpstreamProtocol::Http1 => {
                // Origin form on the wire: the codec writes the path and query.
                *request.uri_mut() = Uri::from(path);
                *request.version_mut() = Version::HTTP_11;
                self.send_http1(endpoint, request, started).await
            }
            UpstreamProtocol::Http2 => {
                let authority = request
                    .headers_mut()
                    .remove(http::header::HOST)
                    .and_then(|host| Authority::try_from(host.as_bytes()).ok())
                    .or_else(|| request.uri().authority().cloned())
                    .unwrap_or_else(|| endpoint.authority.clone());
                *request.uri_mut() = absolute_uri(authority, path);
                *request.version_mut() = Version::HTTP_2;
                self.send_http2(endpoint, request).await
            }
        }
    }

    async fn send_http1(
        &self,
        endpoint: &Endpoint,
        mut request: Request<RequestBody>,
        started: Instant,
    ) -> Result<Sent, SendError> {
        let stats = &endpoint.stats;
        if !request.headers().contains_key(http::header::HOST) {
            if let Ok(host) = http::HeaderValue::from_str(endpoint.authority.as_str()) {
                request.headers_mut().insert(http::header::HOST, host);
            }
        }
        // Pooled connections first; the endpoint may have closed any of
        // them since, which shows before use or as a head that could not
        // be written, and the next one (or a new connection) takes it.
        while let Some(mut connection) = stats.pool.take(self.idle_timeout, self.id, started) {
            if !connection.is_usable() {
                continue;
            }
            match upstream::send(connection, request).await {
                Ok((parts, body)) => return Ok(self.sent(stats, parts, body, Duration::ZERO)),
                Err(SendFailure::NotSent(unsent, _)) => request = *unsent,
                Err(SendFailure::Unanswered { error, head }) => {
                    return Err(SendError::Stale { error, head })
                }
                Err(SendFailure::Failed(error)) => return Err(SendError::Failed(error)),
            }
        }
        let connecting = std::time::Instant::now();
        // Boxed: the connect future (TCP, TLS) is large and rarely needed,
        // and every request's future would otherwise carry its space, and
        // copy it when the request's future is boxed.
        let connection = match Box::pin(self.connect(endpoint)).await {
            Ok(stream) => Connection::new(stream),
            Err(error) => {
                return Err(SendError::NotSent {
                    request: Box::new(request),
                    error,
                })
            }
        };
        let setup = connecting.elapsed();
        match upstream::send(connection, request).await {
            Ok((parts, body)) => Ok(self.sent(stats, parts, body, setup)),
            Err(SendFailure::NotSent(request, error)) => Err(SendError::NotSent {
                request,
                error: Box::new(error),
            }),
            Err(SendFailure::Unanswered { error, .. } | SendFailure::Failed(error)) => {
                Err(SendError::Failed(error))
            }
        }
    }

    /// The response, its connection back in the pool at once when the
    /// exchange is already over (no body, request sent whole).
    fn sent(
        &self,
        stats: &Arc<EndpointStats>,
        parts: http::response::Parts,
        mut body: upstream::ResponseBody<RequestBody>,
        setup: Duration,
    ) -> Sent {
        let received = Instant::now();
        let body = match body.take_reusable() {
            Some(connection) => {
                stats.pool.put(connection, self.id, received);
                Received::http1(body, None)
            }
            None => Received::http1(body, Some((stats.clone(), self.id))),
        };
        Sent {
            response: Response::from_parts(parts, body),
            setup,
            received,
        }
    }

    /// TCP (and TLS, when the service has it) to the endpoint, within the
    /// connect timeout.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Stream, BoxError> {
        let connecting = async {
            let stream = TcpStream::connect(endpoint.address).await?;
            stream.set_nodelay(true)?;
            Ok::<_, BoxError>(match &self.tls {
                None => Stream::Tcp(stream),
                Some(tls) => {
                    Stream::Tls(Box::new(tls.connect(endpoint.address.ip(), stream).await?))
                }
            })
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| format!("connect timed out after {:?}", self.connect_timeout))?
    }

    async fn send_http2(
        &self,
        endpoint: &Endpoint,
        request: Request<RequestBody>,
    ) -> Result<Sent, SendError> {
        let connecting = std::time::Instant::now();
        let mut sender = match self.h2_sender(endpoint).await {
            Ok(sender) => sender,
            Err(error) => {
                return Err(SendError::NotSent {
                    request: Box::new(request),
                    error,
                })
            }
        };
        let setup = connecting.elapsed();
        match sender.try_send_request(request).await {
            Ok(response) => Ok(Sent {
                response: response.map(Received::Http2),
                setup,
                received: Instant::now(),
            }),
            Err(error) => Err(fresh_connection_error(error)),
        }
    }

    async fn h2_sender(
        &self,
        endpoint: &Endpoint,
    ) -> Result<http2::SendRequest<RequestBody>, BoxError> {
        match endpoint.stats.h2.ready_sender(self.id) {
            Some(sender) => Ok(sender),
            // Boxed for the same reason as HTTP/1.1's connect.
            None => Box::pin(self.connect_http2(endpoint)).await,
        }
    }

    async fn connect_http2(
        &self,
        endpoint: &Endpoint,
    ) -> Result<http2::SendRequest<RequestBody>, BoxError> {
        let slot = &endpoint.stats.h2;
        let _connecting = slot.connecting.lock().await;
        // Someone else may have connected while we waited.
        if let Some(sender) = slot.ready_sender(self.id) {
            return Ok(sender);
        }
        let mut sender = handshake_http2(self.connect(endpoint).await?, endpoint).await?;
        sender.ready().await?;
        slot.store(self.id, sender.clone());
        Ok(sender)
    }
}

async fn handshake_http2(
    io: Stream,
    endpoint: &Endpoint,
) -> Result<http2::SendRequest<RequestBody>, BoxError> {
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(io))
        .await?;
    let address = endpoint.address;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(endpoint = %address, %error, "h2 upstream connection ended");
        }
    });
    Ok(sender)
}

/// A failure on the endpoint's h2 connection: the request comes back if it
/// was never written.
fn fresh_connection_error(mut error: TrySendError<Request<RequestBody>>) -> SendError {
    match error.take_message() {
        Some(request) => SendError::NotSent {
            request: Box::new(request),
            error: Box::new(error.into_error()),
        },
        None => SendError::Failed(Box::new(error.into_error())),
    }
}

fn absolute_uri(authority: Authority, path: PathAndQuery) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    parts.path_and_query = Some(path);
    Uri::from_parts(parts).expect("scheme, authority and path make a valid URI")
}
