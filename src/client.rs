//! Sending a request to one endpoint over a pooled connection.
//!
//! HTTP/1.1: each endpoint keeps a small LIFO pool of idle connections (see
//! `endpoint::pool`; a per-endpoint lock held only to push or pop, never a
//! global one). A connection goes back to the pool only once its response has
//! been read to the end (see `proxy::response`), and idle ones older than the
//! service's `timeouts.idle` are dropped. HTTP/2: one multiplexed connection
//! per endpoint in its slot, opened on first use and replaced when it
//! closes; the client's `Host` travels as `:authority`.
//!
//! The point of owning the pool: [`SendError::NotSent`] gives the request
//! back whenever it provably never reached the endpoint (the connection could
//! not be opened, or a pooled one turned out closed before the request was
//! written), so the proxy can always retry it elsewhere, streaming body and
//! all. Which endpoint, timeouts and statuses belong to `proxy`.
//!
//! An endpoint's pooled connections belong to the client that opened them:
//! when a reload replaces a service's client (other protocol, timeouts or
//! TLS settings or files), the new client never reuses the old one's
//! connections, so a tightened TLS setting applies at once.
//!
//! With `tls:` on the service, every connection is TLS (see `tls::upstream`);
//! the TLS handshake counts toward the connect timeout, and a connection
//! that fails it never carried the request.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::body::RequestBody;
use crate::config::{Timeouts, UpstreamProtocol};
use crate::endpoint::{Endpoint, Release};
use crate::tls::UpstreamTlsConnector;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

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
    /// so an idempotent request may be sent again (RFC 9112 §9.3.1.1).
    Stale(BoxError),
}

/// A response and, for HTTP/1.1, what returns its connection to the pool.
#[derive(Debug)]
pub struct Sent {
    pub response: Response<Incoming>,
    pub release: Option<Release>,
    /// Time this request spent opening its connection (TCP, TLS, the HTTP
    /// handshake): not the endpoint's service time, so the latency sample
    /// leaves it out. Zero on a pooled or shared connection.
    pub setup: std::time::Duration,
}

impl Sent {
    /// Reads the response body to its end and drops it, handing back its
    /// trailers; a connection read to the end goes back to the pool. For
    /// answers luas does not pass on (health probes, mirrored copies).
    pub async fn drain(self) -> Result<Option<http::HeaderMap>, hyper::Error> {
        let mut body = self.response.into_body();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            if let Ok(found) = frame?.into_trailers() {
                trailers = Some(found);
            }
        }
        if let Some(release) = self.release {
            release.reuse();
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

    /// Sends `request` to `endpoint`. Its headers are final; only its URI and
    /// version are set here, to what the protocol needs.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        mut request: Request<RequestBody>,
    ) -> Result<Sent, SendError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        match self.protocol {
            UpstreamProtocol::Http1 => {
                // Origin form on the wire; hyper writes what the URI holds.
                *request.uri_mut() = Uri::from(path);
                *request.version_mut() = Version::HTTP_11;
                self.send_http1(endpoint, request).await
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
    ) -> Result<Sent, SendError> {
        let stats = &endpoint.stats;
        if !request.headers().contains_key(http::header::HOST) {
            if let Ok(host) = http::HeaderValue::from_str(endpoint.authority.as_str()) {
                request.headers_mut().insert(http::header::HOST, host);
            }
        }
        // Pooled connections first; any of them may have been closed by the
        // endpoint since, which try_send_request reports with the request
        // handed back, so the next one (or a new connection) can take it.
        while let Some(mut sender) = stats.pool.take(self.idle_timeout, self.id) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(Sent {
                        response,
                        release: Some(Release::new(sender, stats.clone(), self.id)),
                        setup: std::time::Duration::ZERO,
                    })
                }
                Err(mut error) => {
                    if let Some(unsent) = error.take_message() {
                        request = unsent
                    } else {
                        let error = error.into_error();
                        return Err(if error.is_incomplete_message() {
                            SendError::Stale(Box::new(error))
                        } else {
                            SendError::Failed(Box::new(error))
                        });
                    }
                }
            }
        }
        let connecting = std::time::Instant::now();
        // Boxed: the connect future (TCP, TLS, handshake) is large and
        // rarely needed, and every request's future would otherwise carry
        // its space, and copy it when the request's future is boxed.
        let mut sender = match Box::pin(self.connect_http1(endpoint)).await {
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
                response,
                release: Some(Release::new(sender, stats.clone(), self.id)),
                setup,
            }),
            Err(error) => Err(fresh_connection_error(error)),
        }
    }

    /// TCP (and TLS, when the service has it) to the endpoint, within the
    /// connect timeout.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Connected, BoxError> {
        let connecting = async {
            let stream = TcpStream::connect(endpoint.address).await?;
            stream.set_nodelay(true)?;
            Ok::<_, BoxError>(match &self.tls {
                None => Connected::Plain(stream),
                Some(tls) => {
                    Connected::Tls(Box::new(tls.connect(endpoint.address.ip(), stream).await?))
                }
            })
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| format!("connect timed out after {:?}", self.connect_timeout))?
    }

    async fn connect_http1(
        &self,
        endpoint: &Endpoint,
    ) -> Result<http1::SendRequest<RequestBody>, BoxError> {
        match self.connect(endpoint).await? {
            Connected::Plain(stream) => handshake_http1(stream, endpoint).await,
            Connected::Tls(stream) => handshake_http1(stream, endpoint).await,
        }
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
                response,
                release: None,
                setup,
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
        let mut sender = match self.connect(endpoint).await? {
            Connected::Plain(stream) => handshake_http2(stream, endpoint).await?,
            Connected::Tls(stream) => handshake_http2(stream, endpoint).await?,
        };
        sender.ready().await?;
        slot.store(self.id, sender.clone());
        Ok(sender)
    }
}

/// A connection to an endpoint, before HTTP.
enum Connected {
    Plain(TcpStream),
    // Boxed: a TLS session is much larger than a socket.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn handshake_http1<I>(
    io: I,
    endpoint: &Endpoint,
) -> Result<http1::SendRequest<RequestBody>, BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new().handshake(TokioIo::new(io)).await?;
    let address = endpoint.address;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(endpoint = %address, %error, "upstream connection ended");
        }
    });
    Ok(sender)
}

async fn handshake_http2<I>(
    io: I,
    endpoint: &Endpoint,
) -> Result<http2::SendRequest<RequestBody>, BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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

/// A failure on a connection just opened (or the one h2 connection): the
/// request comes back if it was never written.
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
