//! The request pipeline: one readable async function from a client's request
//! to the response sent back.
//!
//! ```text
//! handle:  snapshot → route (404) → forward → route metrics
//! forward: group by weight → endpoint by balancer (503) → rewrite headers
//!          → InFlight guard → send with the request timeout (502, 504)
//!          → rewrite response headers → stream the body back (or splice a 101)
//! ```
//!
//! Errors become statuses only in [`error::ProxyError::into_response`]. The
//! connection handling (accept, h1/h2, limits) is in `server`; sending is in
//! `client`.

pub mod body;
pub mod error;
pub mod headers;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::endpoint::{InFlight, Outcome};
use crate::metrics::CodeClass;
use crate::shutdown::DrainToken;
use crate::state::{Service, State};
use body::ResponseBody;
use error::ProxyError;

/// What a request's handler knows about the connection it came on.
#[derive(Debug, Clone)]
pub struct Connection {
    pub state: Arc<State>,
    /// Index of the listener in the snapshot.
    pub listener: usize,
    pub remote: SocketAddr,
    /// `http` or `https`, for X-Forwarded-Proto.
    pub scheme: &'static str,
    pub drain: DrainToken,
}

pub async fn handle(connection: &Connection, request: Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    let snapshot = connection.state.load();
    let listener = &snapshot.listeners[connection.listener];
    let (parts, body) = request.into_parts();

    let Some(route) = listener.routes.find(&parts) else {
        let error = ProxyError::NoRoute;
        tracing::info!(
            listener = %listener.name,
            method = %parts.method,
            path = %parts.uri.path(),
            status = error.status().as_u16(),
            "{error}"
        );
        listener.unmatched.requests.inc(CodeClass::ClientError);
        listener
            .unmatched
            .duration
            .observe(started.elapsed().as_secs_f64());
        return error.into_response();
    };
    let service = &snapshot.services[route.service];

    let response = match forward(connection, service, parts, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(
                listener = %listener.name,
                route = %route.name,
                service = %service.name,
                status = error.status().as_u16(),
                error = %error,
                "request failed"
            );
            error.into_response()
        }
    };
    route
        .metrics
        .requests
        .inc(CodeClass::of_status(response.status()));
    route
        .metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn forward(
    connection: &Connection,
    service: &Service,
    mut parts: http::request::Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, ProxyError> {
    let no_endpoint = || ProxyError::NoEndpoint {
        service: service.name.clone(),
    };
    let group = &service.groups[service.pick_group(&parts).ok_or_else(no_endpoint)?];
    let endpoint = group
        .balancer
        .pick(&group.endpoints, Instant::now())
        .ok_or_else(no_endpoint)?;

    let upgrade = headers::is_upgrade_request(&parts);
    headers::prepare_request(
        &mut parts,
        connection.remote.ip(),
        connection.scheme,
        upgrade,
    );
    let mut request = Request::from_parts(parts, body);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));

    let mut in_flight = InFlight::start(endpoint, Instant::now());
    let timeout = service.timeouts.request;
    let sent = tokio::time::timeout(timeout, service.client.send(endpoint, request)).await;
    let mut response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            in_flight.finish(Outcome::Failed, Instant::now());
            return Err(ProxyError::from_upstream(endpoint.address, error));
        }
        Err(_elapsed) => {
            in_flight.finish(Outcome::Failed, Instant::now());
            return Err(ProxyError::Timeout {
                endpoint: endpoint.address,
                timeout,
            });
        }
    };
    in_flight.finish(Outcome::Response(response.status()), Instant::now());
    tracing::debug!(
        service = %service.name,
        group = %group.name,
        endpoint = %endpoint.address,
        status = response.status().as_u16(),
        "forwarded"
    );

    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) =
        (response.status(), client_upgrade)
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        upgrade::spawn_tunnel(
            client_upgrade,
            upstream_upgrade,
            in_flight,
            connection.drain.clone(),
        );
        let (mut parts, _empty) = response.into_parts();
        headers::prepare_response(&mut parts.headers, parts.version, true);
        return Ok(Response::from_parts(parts, ResponseBody::empty()));
    }

    let (mut parts, body) = response.into_parts();
    headers::prepare_response(&mut parts.headers, parts.version, false);
    Ok(Response::from_parts(
        parts,
        ResponseBody::upstream(body, in_flight),
    ))
}
