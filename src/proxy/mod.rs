//! The request pipeline: one readable async function from a client's request
//! to the response sent back.
//!
//! ```text
//! handle:  snapshot → route (404) → forward → route metrics
//! forward: body limit (413) → group: split.pick_for(head) → rewrite headers
//!          → body: stream it, or keep a copy when a retry may need it
//!          → loop: endpoint by balancer, skipping tried and ineligible (503)
//!                  1. send: InFlight guard, per-try timeout
//!                  2. decide: retry::next → respond, try again, or fail
//!                  3. account: latency into EWMA and histogram; a try that
//!                     ends here also into counters and outlier detection
//!                  4. act on the decision
//!          → rewrite response headers → stream the body back (or splice a 101)
//! response: body cut after timeouts.response_idle without progress;
//!          at its end, `accounting` counts it (trailers' grpc-status decides)
//! ```
//!
//! Errors become statuses only in [`error::ProxyError::into_response`]. The
//! connection handling (accept, h1/h2, limits) is in `server`; sending is in
//! `client`.

mod accounting;
pub(crate) mod error;
mod forward;
pub(crate) mod headers;
mod mirror;
mod replay;
pub(crate) mod response;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body::Body as _;
use tokio::time::Instant;

use crate::access_log::{AccessLog, Entry, Trace};
use crate::filter;
use crate::metrics::{CodeClass, RouteMetrics};
use crate::shutdown::DrainToken;
use crate::state::State;
use crate::tls::ClientIdentity;
use error::ProxyError;
use response::ResponseBody;

/// What a request's handler knows about the connection it came on.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub state: Arc<State>,
    /// Where requests' access log lines go (when `access_log` is on).
    pub access_log: Arc<AccessLog>,
    /// Index of the listener in the snapshot.
    pub listener: usize,
    pub remote: SocketAddr,
    /// `remote`'s address as `X-Forwarded-For` carries it.
    pub forwarded_for: headers::ForwardedFor,
    /// `http` or `https`, for X-Forwarded-Proto.
    pub scheme: &'static str,
    /// Names of the verified client certificate (mTLS listeners only).
    pub client_identity: Option<Arc<ClientIdentity>>,
    pub drain: DrainToken,
}

/// Routes, filters and forwards one request; the response is whatever the
/// client is to get, errors included.
///
/// The request is taken apart before the future is made, and the future's
/// block uses the parts where it captured them: an async fn would hold the
/// request and its parts side by side, in this future and in every future
/// around it (each copied whole when it is nested in the next).
pub(crate) fn handle(
    connection: &Connection,
    request: Request<crate::body::Incoming>,
) -> impl std::future::Future<Output = Response<ResponseBody>> + Send + '_ {
    let (mut parts, body) = request.into_parts();
    async move {
        let started = Instant::now();
        let snapshot = connection.state.load();
        let listener = &snapshot.listeners[connection.listener];
        // Built only when the access log is on: the one cost when it is off is
        // this branch (and an empty Option held across the await). Written as a
        // 499 if the client goes away before the response headers.
        let mut entry = PendingEntry(
            snapshot
                .config
                .access_log
                .enabled
                .then(|| Box::new(access_entry(connection, &listener.name, &parts, started))),
        );

        if let Some(problem) = headers::framing_problem(&parts) {
            let error = ProxyError::Malformed(problem);
            tracing::info!(listener = %listener.name, remote = %connection.remote, "{error}");
            listener.unmatched.requests.inc(CodeClass::ClientError);
            return logged(error.into_response(), entry.take());
        }
        if parts.method == http::Method::CONNECT {
            // luas does not tunnel: refused at once, counted, never forwarded.
            let error = ProxyError::TunnelRefused;
            tracing::info!(listener = %listener.name, remote = %connection.remote, target = %parts.uri, "{error}");
            listener.unmatched.requests.inc(CodeClass::ClientError);
            let mut response = error.into_response();
            if parts.version <= http::Version::HTTP_11 {
                // The client may already be sending its tunnel's bytes: they
                // are not a request, so the connection ends with this answer.
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            return logged(response, entry.take());
        }
        headers::use_absolute_form_authority(&mut parts);
        let grpc = headers::is_grpc(&parts);
        let Some((route, matched)) = listener
            .routes
            .find_match(&parts, connection.client_identity.as_deref())
        else {
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
            return logged(error.into_response_for(grpc), entry.take());
        };
        if let Some(entry) = entry.0.as_deref_mut() {
            entry.route = Some(route.name.clone());
        }
        let mut counted = RouteCount::new(&route.metrics, started);
        // Mirrored copies of this request, sent only if it is forwarded.
        let mut copies = Vec::new();
        if !route.filters.is_empty() {
            let client = filter::Client {
                address: connection.remote.ip(),
                identity: connection.client_identity.as_deref(),
                scheme: connection.scheme,
            };
            let decision = filter::on_request(
                &route.filters,
                &mut parts,
                matched,
                &client,
                started,
                &mut copies,
            );
            let answer = match decision {
                filter::Decision::Forward => None,
                filter::Decision::Redirect { status, location } => {
                    let mut response = Response::new(ResponseBody::empty());
                    *response.status_mut() = status;
                    response
                        .headers_mut()
                        .insert(http::header::LOCATION, location);
                    Some((response, status))
                }
                filter::Decision::RateLimited { retry_after } => {
                    let error = ProxyError::RateLimited { retry_after };
                    tracing::debug!(listener = %listener.name, route = %route.name, remote = %connection.remote, "{error}");
                    // Counted by the HTTP status even when a gRPC client gets
                    // it as RESOURCE_EXHAUSTED under 200.
                    let status = error.status();
                    Some((error.into_response_for(grpc), status))
                }
            };
            if let Some((mut response, status)) = answer {
                filter::on_response(&route.filters, response.headers_mut());
                counted.finish(status);
                return logged(response, entry.take());
            }
        }
        let Some(service_index) = route.service else {
            // A redirect route, and the request named no host to redirect to.
            let error = ProxyError::Malformed("no host to redirect to");
            counted.finish(error.status());
            return logged(error.into_response(), entry.take());
        };
        let service = &snapshot.services[service_index];
        let limits = &listener.limits;
        if let Some(entry) = entry.0.as_deref_mut() {
            entry.service = Some(service.name.clone());
        }
        let trace = entry.0.as_deref_mut().map(|entry| &mut entry.trace);
        let to = forward::ServiceRef {
            snapshot: &snapshot,
            index: service_index,
            timeouts: route.timeouts,
            retry: route.retry,
        };
        // WebSocket and other upgrades are not mirrored: a copy of a tunnel's
        // opening is no tunnel.
        let mirror_body = if copies.is_empty() || headers::is_upgrade_request(&parts) {
            None
        } else {
            mirror::start(
                &snapshot,
                copies,
                body.is_end_stream(),
                headers::content_length(&parts.headers),
                (&connection.forwarded_for, connection.scheme),
            )
        };
        let body = forward::ClientBody {
            incoming: body,
            mirror: mirror_body,
        };
        let forwarded = forward::forward(connection, to, limits, parts, body, started, trace).await;
        let mut response = match forwarded {
            Ok(forward::Forwarded {
                response,
                grpc_failed,
                received,
            }) => {
                // A backend's gRPC failure under 200 counts as one for the route too.
                let code = if grpc_failed {
                    CodeClass::GrpcError
                } else {
                    CodeClass::of_status(response.status())
                };
                // Timed at the try's own reading of the clock.
                counted.count(code, || received);
                response
            }
            Err(error) => {
                let status = error.status();
                if error.is_client_side() {
                    tracing::info!(listener = %listener.name, route = %route.name, service = %service.name, status = status.as_u16(), error = %error, "request refused");
                } else {
                    tracing::warn!(listener = %listener.name, route = %route.name, service = %service.name, status = status.as_u16(), error = %error, "request failed");
                    if grpc && service.client.protocol() == crate::config::UpstreamProtocol::Http1 {
                        // gRPC servers speak HTTP/2 only: a misconfiguration
                        // that otherwise reads as an outage.
                        tracing::warn!(service = %service.name, "a gRPC request went to a service that speaks HTTP/1.1 to its endpoints; gRPC servers need `protocol: http2` on the service");
                    }
                }
                // Counted by the failure's HTTP status either way: a gRPC
                // client's 200 with grpc-status 14 is still a 503 of luas's.
                counted.finish(status);
                error.into_response_for(grpc)
            }
        };
        if !route.filters.is_empty() {
            filter::on_response(&route.filters, response.headers_mut());
        }
        logged(response, entry.take())
    }
}

fn access_entry(
    connection: &Connection,
    listener: &str,
    parts: &http::request::Parts,
    started: Instant,
) -> Entry {
    Entry {
        log: connection.access_log.clone(),
        time: std::time::SystemTime::now(),
        started,
        client: connection.remote,
        client_identity: connection
            .client_identity
            .as_ref()
            .map(|identity| identity.primary().to_owned()),
        listener: listener.to_owned(),
        route: None,
        service: None,
        method: parts.method.clone(),
        authority: crate::route::request_host(parts).map(str::to_owned),
        path: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_owned(),
            |path| path.as_str().to_owned(),
        ),
        version: parts.version,
        trace: Trace::default(),
        grpc_status: None,
    }
}

fn logged(response: Response<ResponseBody>, entry: Option<Box<Entry>>) -> Response<ResponseBody> {
    let Some(mut entry) = entry else {
        return response;
    };
    // A trailers-only gRPC response; a status in trailers is read as the
    // body ends.
    entry.grpc_status = crate::grpc::trailers_only_status(response.headers());
    let status = response.status();
    response.map(|body| ResponseBody::logged(body, *entry, status))
}

/// Counts a routed request in its route's series once its response status
/// is known, or as a 4xx (nginx's 499) if the client goes away first, so
/// abandoned requests are not missing from `luas_requests_total`.
struct RouteCount<'a> {
    metrics: &'a RouteMetrics,
    started: Instant,
    counted: bool,
}

impl<'a> RouteCount<'a> {
    fn new(metrics: &'a RouteMetrics, started: Instant) -> Self {
        RouteCount {
            metrics,
            started,
            counted: false,
        }
    }

    fn finish(&mut self, status: StatusCode) {
        self.count(CodeClass::of_status(status), Instant::now);
    }

    /// Counts the request as `code`, answered at the time `at` gives; once.
    /// The time is asked for only then: a request counted already reads no
    /// clock.
    fn count(&mut self, code: CodeClass, at: impl FnOnce() -> Instant) {
        if !self.counted {
            let at = at();
            self.counted = true;
            self.metrics.requests.inc(code);
            self.metrics
                .duration
                .observe(at.saturating_duration_since(self.started).as_secs_f64());
        }
    }
}

impl Drop for RouteCount<'_> {
    fn drop(&mut self) {
        self.count(CodeClass::ClientError, Instant::now);
    }
}

/// nginx's status for a client that closed before the response headers.
const CLIENT_CLOSED: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => panic!("499 is a valid status code"),
};

/// A request's access log entry until its response starts: if the handler
/// is dropped first (the client closed the connection or reset the stream),
/// the line is written with nginx's 499 and no response bytes.
struct PendingEntry(Option<Box<Entry>>);

impl PendingEntry {
    fn take(&mut self) -> Option<Box<Entry>> {
        self.0.take()
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if let Some(entry) = self.0.take() {
            entry.finish(CLIENT_CLOSED, 0);
        }
    }
}
