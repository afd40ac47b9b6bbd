//! luas as a `tower::Service`, for a program that embeds it: its own
//! server, its own layers (an auth check, say) in front of luas's routing.
//!
//! ```text
//! running.proxy("edge")   ─▶ MakeProxy            one per listener, kept by the program
//!   .for_client(remote)   ─▶ Proxy                one per client connection
//!     Service::call(req)  ─▶ proxy::handle(req)   the same function luas's own server calls
//! ```
//!
//! A [`Proxy`] serves the routes of one of luas's listeners from the live
//! state, so reloads, rollouts, the admin API, health checks and discovery
//! apply to it as they do to luas's own connections. Each call runs
//! `proxy::handle` unchanged, boxed once as luas's server boxes it; luas's
//! server does not go through this module, so it costs nothing there.
//!
//! This module owns only the handing out: sockets, TLS and HTTP framing are
//! the embedding program's (its server), the pipeline is `proxy`'s.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;

use crate::access_log::AccessLog;
use crate::proxy::{self, response::ResponseBody};
use crate::shutdown::{Shutdown, WeakDrainToken};
use crate::state::State;

/// One listener's routing, to be served to clients of an embedding program:
/// get it from `Running::proxy` (in `app`), keep it, and call
/// [`MakeProxy::for_client`] once per accepted connection.
///
/// Holding it does not hold up luas's shutdown; the [`Proxy`]s it makes do,
/// as luas's own connections do (see [`Proxy`]).
#[derive(Debug, Clone)]
pub struct MakeProxy {
    state: Arc<State>,
    access_log: Arc<AccessLog>,
    listener: usize,
    drain: WeakDrainToken,
}

impl MakeProxy {
    pub(crate) fn new(
        state: Arc<State>,
        access_log: Arc<AccessLog>,
        listener: usize,
        drain: WeakDrainToken,
    ) -> Self {
        Self {
            state,
            access_log,
            listener,
            drain,
        }
    }

    /// The service for one client connection from `remote`: the address
    /// that `X-Forwarded-For`, the access log, per-client rate limits and
    /// client-address routes see. Asked for per connection, not per
    /// request, because a program's server knows it when it accepts.
    /// Requests are taken as plain `http` (for `X-Forwarded-Proto`).
    pub fn for_client(&self, remote: SocketAddr) -> Proxy {
        // Once luas has drained there is nothing left to wait for: a token
        // of its own keeps the request path unchanged.
        let drain = self
            .drain
            .upgrade()
            .unwrap_or_else(|| Shutdown::new().token());
        Proxy {
            connection: Arc::new(proxy::Connection {
                state: self.state.clone(),
                access_log: self.access_log.clone(),
                listener: self.listener,
                remote,
                forwarded_for: crate::proxy::headers::ForwardedFor::of(remote.ip()),
                scheme: "http",
                client_identity: None,
                drain,
            }),
        }
    }
}

/// luas's request pipeline for one client connection, as a
/// `tower::Service`: route, split, balance, forward, retry, filters,
/// metrics and access log, exactly as for a connection luas accepted itself.
///
/// Errors become responses inside (404 for no route, 502/503/504 for
/// backends), so the service never fails and is always ready. Cloning is one
/// reference count; clones share the client address given to
/// [`MakeProxy::for_client`].
///
/// Each `Proxy` holds up luas's graceful shutdown (up to its grace period)
/// as an open connection does, so drop it with the connection; watch
/// `Running::shutdown_signal` (in `app`) to close connections gracefully.
#[derive(Clone)]
pub struct Proxy {
    // One Arc, as luas's server shares its connection between requests.
    connection: Arc<proxy::Connection>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("listener", &self.connection.listener)
            .field("remote", &self.connection.remote)
            .finish_non_exhaustive()
    }
}

impl tower::Service<Request<Incoming>> for Proxy {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // No queue and no limit here: listener limits are the server's.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> ResponseFuture {
        let connection = self.connection.clone();
        // Boxed as luas's server boxes it: the pipeline's future is a few
        // KiB, and an unboxed one would make every layer's future as big.
        ResponseFuture(Box::pin(async move {
            Ok(proxy::handle(&connection, request.map(crate::body::Incoming::from)).await)
        }))
    }
}

/// The future of [`Proxy`]'s response.
pub struct ResponseFuture(
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>,
);

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
