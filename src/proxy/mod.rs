//! The request pipeline: one readable async function from a client's request
//! to the response sent back.
//!
//! ```text
//! handle:  snapshot → route (404) → forward → route metrics
//! forward: body limit (413) → group by weight → rewrite headers
//!          → body: stream it, or keep a copy when a retry may need it
//!          → loop: endpoint by balancer, skipping tried and ineligible (503)
//!                  → InFlight guard → send with the per-try timeout
//!                  → outcome into EWMA, metrics, outlier detection
//!                  → not sent? always try another endpoint
//!                  → 5xx, reset, timeout? retry if the policy and budget allow
//!          → rewrite response headers → stream the body back (or splice a 101)
//! ```
//!
//! Errors become statuses only in [`error::ProxyError::into_response`]. The
//! connection handling (accept, h1/h2, limits) is in `server`; sending is in
//! `client`.

pub mod error;
pub mod headers;
pub mod response;
pub mod retry;
mod upgrade;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;

use crate::access_log::{Entry, Trace};
use crate::body::RequestBody;
use crate::client::{SendError, Sent};
use crate::config::ListenerLimits;
use crate::endpoint::{Endpoint, InFlight, Outcome};
use crate::health::outlier::{self, Verdict};
use crate::metrics::{CodeClass, RouteMetrics};
use crate::shutdown::DrainToken;
use crate::state::{Group, Service, State};
use crate::tls::ClientIdentity;
use error::ProxyError;
use response::ResponseBody;

/// What a request's handler knows about the connection it came on.
#[derive(Debug, Clone)]
pub struct Connection {
    pub state: Arc<State>,
    /// Index of the listener in the snapshot.
    pub listener: usize,
    pub remote: SocketAddr,
    /// `http` or `https`, for X-Forwarded-Proto.
    pub scheme: &'static str,
    /// Names of the verified client certificate (mTLS listeners only).
    pub client_identity: Option<Arc<ClientIdentity>>,
    pub drain: DrainToken,
}

pub async fn handle(connection: &Connection, request: Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    let snapshot = connection.state.load();
    let listener = &snapshot.listeners[connection.listener];
    let (parts, body) = request.into_parts();
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
    let Some(route) = listener
        .routes
        .find(&parts, connection.client_identity.as_deref())
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
        return logged(error.into_response(), entry.take());
    };
    let service = &snapshot.services[route.service];
    let limits = &snapshot.config.listeners[connection.listener].limits;

    if let Some(entry) = entry.0.as_deref_mut() {
        entry.route = Some(route.name.clone());
        entry.service = Some(service.name.clone());
    }
    let mut counted = RouteCount::new(&route.metrics, started);
    let trace = entry.0.as_deref_mut().map(|entry| &mut entry.trace);
    let forwarded = forward(connection, service, limits, parts, body, started, trace).await;
    let response = match forwarded {
        Ok(response) => response,
        Err(error) => {
            let status = error.status().as_u16();
            if error.is_client_side() {
                tracing::info!(listener = %listener.name, route = %route.name, service = %service.name, status, error = %error, "request refused");
            } else {
                tracing::warn!(listener = %listener.name, route = %route.name, service = %service.name, status, error = %error, "request failed");
            }
            error.into_response()
        }
    };
    counted.finish(response.status());
    logged(response, entry.take())
}

fn access_entry(
    connection: &Connection,
    listener: &str,
    parts: &http::request::Parts,
    started: Instant,
) -> Entry {
    Entry {
        log: connection.state.access_log().clone(),
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
    }
}

fn logged(response: Response<ResponseBody>, entry: Option<Box<Entry>>) -> Response<ResponseBody> {
    let Some(entry) = entry else {
        return response;
    };
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
    fn new(metrics: &'a RouteMetrics, started: Instant) -> RouteCount<'a> {
        RouteCount {
            metrics,
            started,
            counted: false,
        }
    }

    fn finish(&mut self, status: StatusCode) {
        self.count(CodeClass::of_status(status));
    }

    fn count(&mut self, code: CodeClass) {
        if !self.counted {
            self.counted = true;
            self.metrics.requests.inc(code);
            self.metrics
                .duration
                .observe(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for RouteCount<'_> {
    fn drop(&mut self) {
        self.count(CodeClass::ClientError);
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

/// How many times a request that never reached an endpoint is sent again,
/// on top of configured retries: it cost the endpoints nothing, so it is not
/// charged to the retry budget either.
const MAX_NOT_SENT_RETRIES: usize = 3;

/// Methods a retry may repeat (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

async fn forward(
    connection: &Connection,
    service: &Service,
    limits: &ListenerLimits,
    mut parts: http::request::Parts,
    body: Incoming,
    started: Instant,
    mut trace: Option<&mut Trace>,
) -> Result<Response<ResponseBody>, ProxyError> {
    if let Some(limit) = limits.max_body_bytes {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(ProxyError::BodyTooLarge { limit });
        }
    }
    let no_endpoint = || ProxyError::NoEndpoint {
        service: service.name.clone(),
    };
    let group_index = service.pick_group(&parts).ok_or_else(no_endpoint)?;
    let group = &service.groups[group_index];

    let upgrade = headers::is_upgrade_request(&parts);
    headers::prepare_request(
        &mut parts,
        connection.remote.ip(),
        connection.scheme,
        upgrade,
    );
    if let Some(trace) = trace.as_deref_mut() {
        trace.group = Some(group.name.clone());
        trace.request_id = parts.headers.get(headers::X_REQUEST_ID).cloned();
    }
    let mut client_upgrade = if upgrade {
        parts.extensions.remove::<OnUpgrade>()
    } else {
        None
    };

    // A body is kept for replay only when retries are configured for this
    // method and its declared size fits the buffer; everything else streams,
    // and is then sent again only if it never reached an endpoint.
    // Empty bodies of idempotent requests are always kept (there is nothing
    // to buffer), so a request that meets a stale pooled connection can go again.
    let policy = &service.retry;
    let idempotent = !upgrade && is_idempotent(&parts.method);
    let replayable = idempotent
        && (body.is_end_stream()
            || policy.attempts > 0
                && body
                    .size_hint()
                    .upper()
                    .is_some_and(|size| size <= policy.buffer_bytes as u64));
    let (replay, first_body) = if replayable {
        // An empty body needs no read (and no timer): most GETs.
        let data = if body.is_end_stream() {
            Bytes::new()
        } else {
            read_whole(body, policy.buffer_bytes, limits).await?
        };
        if let Some(trace) = trace.as_deref_mut() {
            trace.bytes_in.store(data.len() as u64, Ordering::Relaxed);
        }
        let replay = Replay::of(&parts, data.clone());
        (Some(replay), RequestBody::buffered(data))
    } else {
        let counted = trace.as_deref().map(|trace| trace.bytes_in.clone());
        let streaming =
            RequestBody::streaming(body, limits.max_body_bytes, limits.body_timeout, counted);
        (None, streaming)
    };
    let mut pending = Some(Request::from_parts(parts, first_body));

    service.budget.deposit(started);
    let deadline = started + service.timeouts.request;
    let mut tried: Vec<SocketAddr> = Vec::with_capacity(2);
    let mut retries = 0u32;
    let mut not_sent_retries = 0usize;
    let mut last_error: Option<ProxyError> = None;
    let mut now = started;
    loop {
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(last_error.unwrap_or(ProxyError::Timeout {
                endpoint: tried.last().copied().unwrap_or(([0, 0, 0, 0], 0).into()),
                timeout: service.timeouts.request,
            }));
        }
        // Another endpoint when there is one; the same one again when it is
        // the only one (a retry of a 5xx may still succeed there).
        let pick = group
            .balancer
            .pick_excluding(&group.endpoints, now, &tried)
            .or_else(|| group.balancer.pick_excluding(&group.endpoints, now, &[]));
        let Some(pick) = pick else {
            return Err(last_error.unwrap_or_else(no_endpoint));
        };
        note_panic(service, group, pick.panic);
        let endpoint = pick.endpoint;
        tried.push(endpoint.address);
        if let Some(trace) = trace.as_deref_mut() {
            trace.endpoint = Some(endpoint.address);
            trace.tries += 1;
        }
        let request = match (pending.take(), &replay) {
            (Some(request), _) => request,
            (None, Some(replay)) => replay.request(),
            (None, None) => return Err(last_error.unwrap_or_else(no_endpoint)),
        };

        let per_try = policy
            .per_try_timeout
            .map_or(remaining, |limit| limit.min(remaining));
        let mut in_flight = InFlight::start(endpoint, now);
        let result = tokio::time::timeout(per_try, service.client.send(endpoint, request)).await;
        now = Instant::now();
        match result {
            Ok(Ok(sent)) => {
                let status = sent.response.status();
                in_flight.finish(Outcome::Response(status), now);
                record_outlier(service, group, endpoint, status.is_server_error(), now);
                let retry = status.is_server_error()
                    && policy.on.server_error
                    && may_retry(service, replay.is_some(), &mut retries, deadline, now);
                if retry {
                    service.metrics.retry_server_error.inc();
                    tracing::debug!(service = %service.name, endpoint = %endpoint.address, %status, "retrying a 5xx");
                    continue;
                }
                return Ok(respond(connection, sent, in_flight, client_upgrade.take()));
            }
            Ok(Err(SendError::NotSent { request, error })) => {
                in_flight.finish(Outcome::Failed, now);
                record_outlier(service, group, endpoint, true, now);
                tracing::debug!(service = %service.name, endpoint = %endpoint.address, %error, "request not sent; trying another endpoint");
                last_error = Some(ProxyError::Connect {
                    endpoint: endpoint.address,
                    source: error,
                });
                let untried_left = group
                    .endpoints
                    .iter()
                    .any(|candidate| !tried.contains(&candidate.address));
                if not_sent_retries < MAX_NOT_SENT_RETRIES && untried_left {
                    not_sent_retries += 1;
                    service.metrics.retry_not_sent.inc();
                    pending = Some(*request);
                    continue;
                }
                if tried_distinct(&tried) > 1 && retries == 0 {
                    // Every endpoint refused: the service is down, not one backend.
                    return Err(ProxyError::Unreachable {
                        service: service.name.clone(),
                    });
                }
            }
            Ok(Err(SendError::Stale(error)))
                if replay.is_some() && not_sent_retries < MAX_NOT_SENT_RETRIES =>
            {
                // Not the endpoint's fault and not charged to the budget;
                // the same endpoint may take it on a fresh connection.
                in_flight.cancel();
                tracing::debug!(service = %service.name, endpoint = %endpoint.address, %error, "pooled connection was stale; sending again");
                tried.pop();
                not_sent_retries += 1;
                service.metrics.retry_not_sent.inc();
                continue;
            }
            Ok(Err(SendError::Failed(error) | SendError::Stale(error))) => {
                if let Some(client_side) = ProxyError::from_body_failure(&error) {
                    // The client's body failed, not the endpoint.
                    in_flight.cancel();
                    return Err(client_side);
                }
                in_flight.finish(Outcome::Failed, now);
                record_outlier(service, group, endpoint, true, now);
                last_error = Some(ProxyError::Reset {
                    endpoint: endpoint.address,
                    source: error,
                });
                if policy.on.reset
                    && may_retry(service, replay.is_some(), &mut retries, deadline, now)
                {
                    service.metrics.retry_reset.inc();
                    continue;
                }
            }
            Err(_elapsed) => {
                in_flight.finish(Outcome::Failed, now);
                record_outlier(service, group, endpoint, true, now);
                last_error = Some(ProxyError::Timeout {
                    endpoint: endpoint.address,
                    timeout: per_try,
                });
                if policy.on.timeout
                    && may_retry(service, replay.is_some(), &mut retries, deadline, now)
                {
                    service.metrics.retry_timeout.inc();
                    continue;
                }
            }
        }
        return Err(last_error.unwrap_or_else(no_endpoint));
    }
}

fn tried_distinct(tried: &[SocketAddr]) -> usize {
    tried
        .iter()
        .enumerate()
        .filter(|(index, address)| !tried[..*index].contains(address))
        .count()
}

/// Whether one more configured retry may be made, taking it from the budget.
fn may_retry(
    service: &Service,
    replayable: bool,
    retries: &mut u32,
    deadline: Instant,
    now: Instant,
) -> bool {
    if !replayable || *retries >= service.retry.attempts || now >= deadline {
        return false;
    }
    if !service.budget.try_withdraw(now) {
        service.metrics.retry_budget_exhausted.inc();
        return false;
    }
    *retries += 1;
    true
}

fn record_outlier(
    service: &Service,
    group: &Group,
    endpoint: &Endpoint,
    failed: bool,
    now: Instant,
) {
    match outlier::record(&service.outlier, endpoint, &group.endpoints, failed, now) {
        Verdict::Ejected(length) => {
            let metrics = &endpoint.stats.metrics;
            metrics.ejections.inc();
            metrics.healthy.set(0);
            tracing::warn!(
                service = %service.name,
                group = %group.name,
                endpoint = %endpoint.address,
                ejection = ?length,
                "endpoint ejected after {} consecutive failures",
                service.outlier.consecutive_failures
            );
        }
        Verdict::KeptByShareLimit => tracing::warn!(
            service = %service.name,
            group = %group.name,
            endpoint = %endpoint.address,
            "endpoint keeps failing but is not ejected: {} % of the group is out already",
            service.outlier.max_ejected_percent
        ),
        Verdict::Nothing => {}
    }
}

/// Logs panic mode once when it starts and once when it ends.
fn note_panic(service: &Service, group: &Group, panic: bool) {
    if panic {
        if !group.in_panic.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                service = %service.name,
                group = %group.name,
                "no endpoint is eligible: trying all of them (panic mode)"
            );
        }
    } else if group.in_panic.load(Ordering::Relaxed)
        && group.in_panic.swap(false, Ordering::Relaxed)
    {
        tracing::info!(service = %service.name, group = %group.name, "endpoints eligible again: panic mode over");
    }
}

/// The backend's response on its way to the client, or the splice of a 101.
fn respond(
    connection: &Connection,
    sent: Sent,
    in_flight: InFlight,
    client_upgrade: Option<OnUpgrade>,
) -> Response<ResponseBody> {
    let Sent {
        mut response,
        release,
    } = sent;
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) =
        (response.status(), client_upgrade)
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        // The connection now belongs to the tunnel, not the pool.
        drop(release);
        upgrade::spawn_tunnel(
            client_upgrade,
            upstream_upgrade,
            in_flight,
            connection.drain.clone(),
        );
        let (mut parts, _empty) = response.into_parts();
        headers::prepare_response(&mut parts.headers, parts.version, true);
        return Response::from_parts(parts, ResponseBody::empty());
    }
    let (mut parts, body) = response.into_parts();
    headers::prepare_response(&mut parts.headers, parts.version, false);
    Response::from_parts(parts, ResponseBody::upstream(body, in_flight, release))
}

/// What a request needs to be sent again: its head and its whole body.
struct Replay {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Replay {
    fn of(parts: &http::request::Parts, body: Bytes) -> Replay {
        Replay {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            body,
        }
    }

    fn request(&self) -> Request<RequestBody> {
        let mut request = Request::new(RequestBody::buffered(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Reads a small body whole, for replay.
async fn read_whole(
    body: Incoming,
    max: usize,
    limits: &ListenerLimits,
) -> Result<Bytes, ProxyError> {
    let collected = tokio::time::timeout(limits.body_timeout, Limited::new(body, max).collect())
        .await
        .map_err(|_| ProxyError::BodyStalled {
            after: limits.body_timeout,
        })?
        .map_err(ProxyError::ClientBody)?;
    Ok(collected.to_bytes())
}
