//! Sending a request to one endpoint: keep-alive HTTP/1.1 pools and
//! multiplexed HTTP/2 connections.
//!
//! One [`UpstreamClient`] per service, carried over across snapshots so pools
//! survive reloads. HTTP/1.1 goes through hyper-util's pooling client (idle
//! connections are reused per endpoint address). HTTP/2 keeps one multiplexed
//! connection per endpoint in that endpoint's [`H2Slot`], opened on first use
//! and replaced when it closes; we do not use the pooling client for h2
//! because it takes `:authority` from the address it connects to, and the
//! client's `Host` must reach the backend unchanged.
//!
//! This module only connects and sends. Which endpoint, header rewriting,
//! timeouts of the whole request and error statuses belong to `proxy`.

use std::error::Error as StdError;
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::config::{Timeouts, UpstreamProtocol};
use crate::endpoint::Endpoint;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a request to an endpoint got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The request never reached the endpoint: safe to retry anywhere.
    #[error("connect failed: {0}")]
    Connect(#[source] BoxError),
    /// The connection failed after the request may have been sent (reset,
    /// protocol error, closed early).
    #[error("connection failed: {0}")]
    Connection(#[source] BoxError),
}

#[derive(Debug)]
pub struct UpstreamClient {
    protocol: UpstreamProtocol,
    connect_timeout: Duration,
    http1: Client<HttpConnector, Incoming>,
}

/// The HTTP/2 connection of one endpoint; empty until first used.
#[derive(Debug, Default)]
pub struct H2Slot {
    // Held only to clone or replace the sender, never across an await.
    sender: std::sync::Mutex<Option<http2::SendRequest<Incoming>>>,
    // Serializes connection attempts so a burst opens one connection, not many.
    connecting: tokio::sync::Mutex<()>,
}

impl UpstreamClient {
    pub fn new(protocol: UpstreamProtocol, timeouts: &Timeouts) -> UpstreamClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect));
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        UpstreamClient {
            protocol,
            connect_timeout: timeouts.connect,
            http1,
        }
    }

    pub fn protocol(&self) -> UpstreamProtocol {
        self.protocol
    }

    /// Sends `request` to `endpoint`. The request's headers are final; only
    /// its URI and version are set here, to what the protocol needs.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        match self.protocol {
            UpstreamProtocol::Http1 => {
                *request.uri_mut() = absolute_uri(endpoint.authority.clone(), path);
                *request.version_mut() = Version::HTTP_11;
                self.http1.request(request).await.map_err(|error| {
                    if error.is_connect() {
                        UpstreamError::Connect(Box::new(error))
                    } else {
                        UpstreamError::Connection(Box::new(error))
                    }
                })
            }
            UpstreamProtocol::Http2 => {
                // :authority carries the client's host, the socket the endpoint.
                let authority = request
                    .headers_mut()
                    .remove(http::header::HOST)
                    .and_then(|host| http::uri::Authority::try_from(host.as_bytes()).ok())
                    .or_else(|| request.uri().authority().cloned())
                    .unwrap_or_else(|| endpoint.authority.clone());
                *request.uri_mut() = absolute_uri(authority, path);
                *request.version_mut() = Version::HTTP_2;
                let mut sender = self.h2_sender(endpoint).await?;
                sender
                    .send_request(request)
                    .await
                    .map_err(|error| UpstreamError::Connection(Box::new(error)))
            }
        }
    }

    async fn h2_sender(
        &self,
        endpoint: &Endpoint,
    ) -> Result<http2::SendRequest<Incoming>, UpstreamError> {
        let slot = &endpoint.stats.h2;
        if let Some(sender) = slot.ready_sender() {
            return Ok(sender);
        }
        let _connecting = slot.connecting.lock().await;
        // Someone else may have connected while we waited.
        if let Some(sender) = slot.ready_sender() {
            return Ok(sender);
        }
        let stream =
            tokio::time::timeout(self.connect_timeout, TcpStream::connect(endpoint.address))
                .await
                .map_err(|_| UpstreamError::Connect("connect timed out".into()))?
                .map_err(|error| UpstreamError::Connect(Box::new(error)))?;
        stream
            .set_nodelay(true)
            .map_err(|error| UpstreamError::Connect(Box::new(error)))?;
        let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| UpstreamError::Connect(Box::new(error)))?;
        let address = endpoint.address;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(endpoint = %address, %error, "h2 upstream connection ended");
            }
        });
        sender
            .ready()
            .await
            .map_err(|error| UpstreamError::Connect(Box::new(error)))?;
        *slot.sender.lock().expect("h2 slot lock poisoned") = Some(sender.clone());
        Ok(sender)
    }
}

impl H2Slot {
    fn ready_sender(&self) -> Option<http2::SendRequest<Incoming>> {
        let guard = self.sender.lock().expect("h2 slot lock poisoned");
        guard.as_ref().filter(|sender| !sender.is_closed()).cloned()
    }
}

fn absolute_uri(authority: http::uri::Authority, path: PathAndQuery) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    parts.path_and_query = Some(path);
    Uri::from_parts(parts).expect("scheme, authority and path make a valid URI")
}
