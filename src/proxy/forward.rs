//! Forwarding a routed request to its service: pick the group, prepare the
//! head and the body, then try endpoints until one answers or the retry
//! decision (`retry::next`) gives up. Each try is four steps: send (with the
//! per-try timeout), decide, account (in-flight guard, EWMA, outlier
//! streak), act (respond, send again, or fail). Called by `handle`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;

use super::error::ProxyError;
use super::response::ResponseBody;
use super::{headers, upgrade, Connection};
use crate::access_log::Trace;
use crate::body::RequestBody;
use crate::client::{BoxError, SendError, Sent};
use crate::config::{ListenerLimits, RetryConfig};
use crate::endpoint::{Endpoint, InFlight, Outcome};
use crate::health::outlier::{self, Verdict};
use crate::retry::{self, Attempt, Failure, Next, Retry, Tried};
use crate::state::{Group, Service};

pub(super) async fn forward(
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
    // A gRPC client's deadline bounds the request timeout from above.
    let request_timeout = headers::grpc_timeout(&parts)
        .map_or(service.timeouts.request, |deadline| {
            deadline.min(service.timeouts.request)
        });
    let group_index = service.split.pick_for(&parts).ok_or_else(no_endpoint)?;
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
    let client_upgrade = if upgrade {
        parts.extensions.remove::<OnUpgrade>()
    } else {
        None
    };

    let (replay, first_body) = body_for_tries(
        &parts,
        body,
        upgrade,
        &service.retry,
        limits,
        trace.as_deref_mut(),
    )
    .await?;
    let outgoing = Outgoing {
        first: Request::from_parts(parts, first_body),
        replay,
        timeout: request_timeout,
    };
    send_with_retries(
        connection,
        service,
        group,
        outgoing,
        client_upgrade,
        started,
        trace,
    )
    .await
}

/// The request as the tries send it: the first try's, and the copy the
/// next ones replay when the body was kept.
struct Outgoing {
    first: Request<RequestBody>,
    replay: Option<Replay>,
    /// `timeouts.request`, or the gRPC client's shorter deadline.
    timeout: std::time::Duration,
}

/// Sends the request to the group's endpoints until one answers or the
/// retry decision gives up; see the module docs for the four steps of a try.
async fn send_with_retries(
    connection: &Connection,
    service: &Service,
    group: &Group,
    outgoing: Outgoing,
    mut client_upgrade: Option<OnUpgrade>,
    started: Instant,
    mut trace: Option<&mut Trace>,
) -> Result<Response<ResponseBody>, ProxyError> {
    let no_endpoint = || ProxyError::NoEndpoint {
        service: service.name.clone(),
    };
    let policy = &service.retry;
    let Outgoing {
        first,
        replay,
        timeout: request_timeout,
    } = outgoing;
    let mut pending = Some(first);

    service.budget.deposit(started);
    let deadline = started + request_timeout;
    let mut tried: Vec<SocketAddr> = Vec::with_capacity(2);
    let mut attempt = Attempt {
        retries: 0,
        resends: 0,
        replayable: replay.is_some(),
        untried_left: true,
        endpoints_tried: 0,
    };
    let mut last_error: Option<ProxyError> = None;
    let mut now = started;
    loop {
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(last_error.unwrap_or(ProxyError::Timeout {
                endpoint: tried.last().copied().unwrap_or(([0, 0, 0, 0], 0).into()),
                timeout: request_timeout,
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

        // 1. Send, within the per-try timeout.
        let per_try = policy
            .per_try_timeout
            .map_or(remaining, |limit| limit.min(remaining));
        let mut in_flight = InFlight::start(endpoint, now);
        let result = tokio::time::timeout(per_try, service.client.send(endpoint, request)).await;
        now = Instant::now();
        if let Ok(Ok(sent)) = &result {
            in_flight.exclude_setup(sent.setup);
        }
        let (outcome, result) = TryResult::of(result);
        let grpc_failed = matches!(&result, TryResult::Sent(sent)
            if headers::grpc_failure(sent.response.headers()));

        // 2. Decide: respond, try again or fail.
        attempt.untried_left = group
            .endpoints
            .iter()
            .any(|candidate| !tried.contains(&candidate.address));
        attempt.endpoints_tried = tried_distinct(&tried);
        let decision = retry::next(outcome, policy, &attempt, now, deadline, &service.budget);

        // 3. Account: the endpoint's in-flight guard, EWMA and outlier streak.
        account(
            service,
            group,
            endpoint,
            &mut in_flight,
            (outcome, grpc_failed),
            decision.next,
            now,
        );
        if decision.budget_exhausted {
            service.metrics.retry_budget_exhausted.inc();
        }

        // 4. Act on the decision.
        match result {
            TryResult::Sent(sent) => {
                if decision.next == Next::Respond {
                    return Ok(respond(connection, sent, in_flight, client_upgrade.take()));
                }
                let status = sent.response.status();
                tracing::debug!(service = %service.name, endpoint = %endpoint.address, %status, "retrying a 5xx");
            }
            TryResult::NotSent(request, error) => {
                tracing::debug!(service = %service.name, endpoint = %endpoint.address, %error, "request not sent; trying another endpoint");
                last_error = Some(ProxyError::Connect {
                    endpoint: endpoint.address,
                    source: error,
                });
                pending = Some(request);
            }
            TryResult::Failed(error) if decision.next == Next::TryOther(Retry::Stale) => {
                // Not the endpoint's fault: it may take the request again on
                // a fresh connection.
                tracing::debug!(service = %service.name, endpoint = %endpoint.address, %error, "pooled connection was stale; sending again");
                tried.pop();
            }
            TryResult::Failed(error) => {
                last_error = Some(ProxyError::Reset {
                    endpoint: endpoint.address,
                    source: error,
                });
            }
            TryResult::TimedOut => {
                last_error = Some(ProxyError::Timeout {
                    endpoint: endpoint.address,
                    timeout: per_try,
                });
            }
            TryResult::ClientBody(error) => last_error = Some(error),
        }
        match decision.next {
            Next::TryOther(reason) => {
                let counter = match reason {
                    Retry::NotSent | Retry::Stale => &service.metrics.retry_not_sent,
                    Retry::ServerError => &service.metrics.retry_server_error,
                    Retry::Reset => &service.metrics.retry_reset,
                    Retry::Timeout => &service.metrics.retry_timeout,
                };
                counter.inc();
                attempt.count(reason);
            }
            Next::Fail(Failure::Unreachable) => {
                return Err(ProxyError::Unreachable {
                    service: service.name.clone(),
                })
            }
            Next::Fail(Failure::LastError) => return Err(last_error.unwrap_or_else(no_endpoint)),
            Next::Respond => unreachable!("only a response is handed on, and it was above"),
        }
    }
}

/// The body of the first try, and a copy for the next ones when retries may
/// need it. A body is kept for replay only when retries are configured for
/// this method and its declared size fits the buffer; everything else
/// streams, and is then sent again only if it never reached an endpoint.
/// Empty bodies of idempotent requests are always kept (there is nothing to
/// buffer), so a request that meets a stale pooled connection can go again.
async fn body_for_tries(
    parts: &http::request::Parts,
    body: Incoming,
    upgrade: bool,
    policy: &RetryConfig,
    limits: &ListenerLimits,
    trace: Option<&mut Trace>,
) -> Result<(Option<Replay>, RequestBody), ProxyError> {
    let idempotent = !upgrade && retry::is_idempotent(&parts.method);
    let replayable = idempotent
        && (body.is_end_stream()
            || policy.attempts > 0
                && body
                    .size_hint()
                    .upper()
                    .is_some_and(|size| size <= policy.buffer_bytes as u64));
    Ok(if replayable {
        // An empty body needs no read (and no timer): most GETs.
        let data = if body.is_end_stream() {
            Bytes::new()
        } else {
            read_whole(body, policy.buffer_bytes, limits).await?
        };
        if let Some(trace) = trace {
            trace.bytes_in.store(data.len() as u64, Ordering::Relaxed);
        }
        let replay = Replay::of(parts, data.clone());
        (Some(replay), RequestBody::buffered(data))
    } else {
        let counted = trace.map(|trace| trace.bytes_in.clone());
        let streaming =
            RequestBody::streaming(body, limits.max_body_bytes, limits.body_timeout, counted);
        (None, streaming)
    })
}

/// One try's result: what the proxy keeps of it, beside the [`Tried`] the
/// retry decision reads.
enum TryResult {
    Sent(Sent),
    NotSent(Request<RequestBody>, BoxError),
    /// Reset, closed early or stale.
    Failed(BoxError),
    TimedOut,
    /// The client's body failed, not the endpoint.
    ClientBody(ProxyError),
}

impl TryResult {
    fn of(result: Result<Result<Sent, SendError>, tokio::time::error::Elapsed>) -> (Tried, Self) {
        match result {
            Ok(Ok(sent)) => (Tried::Response(sent.response.status()), Self::Sent(sent)),
            Ok(Err(SendError::NotSent { request, error })) => {
                (Tried::NotSent, Self::NotSent(*request, error))
            }
            Ok(Err(SendError::Failed(error) | SendError::Stale(error)))
                if ProxyError::from_body_failure(&error).is_some() =>
            {
                let client_side = ProxyError::from_body_failure(&error).expect("checked above");
                (Tried::ClientBody, Self::ClientBody(client_side))
            }
            Ok(Err(SendError::Stale(error))) => (Tried::Stale, Self::Failed(error)),
            Ok(Err(SendError::Failed(error))) => (Tried::Reset, Self::Failed(error)),
            Err(_elapsed) => (Tried::TimedOut, Self::TimedOut),
        }
    }
}

/// Records a try against its endpoint (and whether it was a gRPC server
/// failure, see `headers::grpc_failure`): the outcome into the in-flight guard
/// (RTT into the EWMA, histogram, status counter) and the outlier streak.
/// A failure that was not the endpoint's (the client's body, a stale pooled
/// connection sent again) records nothing.
fn account(
    service: &Service,
    group: &Group,
    endpoint: &Endpoint,
    in_flight: &mut InFlight,
    (tried, grpc_failed): (Tried, bool),
    next: Next,
    now: Instant,
) {
    match tried {
        // A gRPC server failure under HTTP 200 counts as the endpoint's
        // failure everywhere a 5xx does.
        Tried::Response(_) if grpc_failed => {
            in_flight.finish(Outcome::GrpcFailure, now);
            record_outlier(service, group, endpoint, true, now);
        }
        Tried::Response(status) => {
            in_flight.finish(Outcome::Response(status), now);
            record_outlier(service, group, endpoint, status.is_server_error(), now);
        }
        Tried::ClientBody => in_flight.cancel(),
        Tried::Stale if next == Next::TryOther(Retry::Stale) => in_flight.cancel(),
        Tried::NotSent | Tried::Stale | Tried::Reset | Tried::TimedOut => {
            in_flight.finish(Outcome::Failed, now);
            record_outlier(service, group, endpoint, true, now);
        }
    }
}

fn tried_distinct(tried: &[SocketAddr]) -> usize {
    tried
        .iter()
        .enumerate()
        .filter(|(index, address)| !tried[..*index].contains(address))
        .count()
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
        ..
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
    fn of(parts: &http::request::Parts, body: Bytes) -> Self {
        Self {
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
