//! Forwarding a routed request to its service: pick the group, prepare the
//! head and the body (what retries need kept is `replay`'s), then try
//! endpoints until one answers or the retry decision (`retry::next`) gives
//! up. Each try is four steps: send (with the per-try timeout), decide,
//! account (in-flight guard, EWMA, outlier streak), act (respond, send
//! again, or fail). Called by `handle`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::accounting::{note_panic, record_outlier, Accounting, Target};
use super::error::ProxyError;
use super::replay::{body_for_tries, Replay};
use super::response::ResponseBody;
use super::{headers, upgrade, Connection};
use crate::access_log::Trace;
use crate::body::{BodyCopy, RequestBody, RequestProgress};
use crate::client::{BoxError, SendError, Sent};
use crate::config::{ListenerLimits, RetryConfig, RouteTimeouts};
use crate::endpoint::{Endpoint, InFlight, Outcome};
use crate::grpc;
use crate::retry::{self, Attempt, Failure, Next, Retry, Tried};
use crate::state::{Group, Service, Snapshot};

/// Where a request is forwarded: its service, by index into the snapshot it
/// was routed in (kept by the response for its accounting), and the route's
/// overrides of the service's timeouts and retry policy.
pub(super) struct ServiceRef<'a> {
    pub snapshot: &'a Arc<Snapshot>,
    pub index: usize,
    pub timeouts: RouteTimeouts,
    pub retry: Option<RetryConfig>,
}

impl ServiceRef<'_> {
    fn service(&self) -> &Service {
        &self.snapshot.services[self.index]
    }

    /// The retry policy in force: the route's, else the service's, with
    /// the route's per-try timeout.
    fn retry_policy(&self) -> RetryConfig {
        let mut policy = self.retry.unwrap_or(self.service().retry);
        if let Some(per_try) = self.timeouts.backend_request {
            policy.per_try_timeout = Some(per_try);
        }
        policy
    }
}

/// The response forwarded to the client, and what the try found in its
/// headers that the route's count needs too.
pub(super) struct Forwarded {
    pub response: Response<ResponseBody>,
    /// A trailers-only gRPC status in `grpc.failure_statuses`.
    pub grpc_failed: bool,
    /// When the response head arrived.
    pub received: Instant,
}

/// The client's request body, and the copy a mirror waits for, if any.
pub(super) struct ClientBody {
    pub incoming: crate::body::Incoming,
    /// Boxed: requests without a mirror carry one pointer, not the copy.
    pub mirror: Option<Box<BodyCopy>>,
}

/// Forwards the request to the service: picks the group, prepares the
/// headers, keeps the body for retries when they may need it, and sends.
///
/// An async block, not an async fn, for the future's size (see
/// [`send_with_retries`]).
#[allow(clippy::manual_async_fn)] // deliberately, for the future's size
pub(super) fn forward<'a>(
    connection: &'a Connection,
    to: ServiceRef<'a>,
    limits: &'a ListenerLimits,
    mut parts: http::request::Parts,
    body: ClientBody,
    started: Instant,
    mut trace: Option<&'a mut Trace>,
) -> impl std::future::Future<Output = Result<Forwarded, ProxyError>> + Send + 'a {
    async move {
        let service = to.service();
        if let Some(limit) = limits.max_body_bytes {
            let declared = headers::content_length(&parts.headers);
            if declared.is_some_and(|length| length > limit) {
                return Err(ProxyError::BodyTooLarge { limit });
            }
        }
        let no_endpoint = || ProxyError::NoEndpoint {
            service: service.name.clone(),
        };
        // The route's request timeout, else the service's; a gRPC client's
        // deadline bounds it from above.
        let configured = to.timeouts.request.unwrap_or(service.timeouts.request);
        let request_timeout =
            grpc::timeout(&parts.headers).map_or(configured, |deadline| deadline.min(configured));
        let policy = to.retry_policy();
        let group_index = service.split.pick_for(&parts).ok_or_else(no_endpoint)?;
        let group = &service.groups[group_index];

        let upgrade = headers::is_upgrade_request(&parts);
        headers::prepare_request(
            &mut parts,
            &connection.forwarded_for,
            connection.scheme,
            upgrade,
        );
        if let Some(trace) = trace.as_deref_mut() {
            trace.group = Some(group.name.clone());
            trace.request_id = parts.headers.get(headers::X_REQUEST_ID).cloned();
        }
        let client_upgrade = if upgrade {
            upgrade::ClientUpgrade::take(&mut parts.extensions)
        } else {
            None
        };

        let (replay, first_body) =
            body_for_tries(&parts, body, upgrade, &policy, limits, trace.as_deref_mut()).await?;
        let progress = first_body.progress();
        let outgoing = Outgoing {
            progress,
            first: Some(Request::from_parts(parts, first_body)),
            replay,
            timeout: request_timeout,
            policy,
        };
        send_with_retries(
            connection,
            (&to, group_index),
            outgoing,
            client_upgrade,
            started,
            trace,
        )
        .await
    }
}

/// The request as the tries send it: the first try's, and the copy the
/// next ones replay when the body was kept.
struct Outgoing {
    /// Taken by each try; put back when it was not sent, or rebuilt from
    /// the head a stale connection handed back.
    first: Option<Request<RequestBody>>,
    /// How far the client's body has come, when it streams.
    progress: Option<RequestProgress>,
    replay: Option<Replay>,
    /// `timeouts.request`, or the gRPC client's shorter deadline.
    timeout: std::time::Duration,
    /// The retry policy in force for this request.
    policy: RetryConfig,
}

/// Sends the request to the group's endpoints until one answers or the
/// retry decision gives up; see the module docs for the four steps of a try.
///
/// An async block, not an async fn, that uses `outgoing` where it was
/// captured: an async fn moves its arguments into locals of its own, and
/// the future then holds the 660-byte request twice, in this future and in
/// every one around it, all copied whenever one is nested in the next.
#[allow(clippy::manual_async_fn)] // deliberately, for the future's size
fn send_with_retries<'a>(
    connection: &'a Connection,
    (to, group_index): (&'a ServiceRef<'a>, usize),
    mut outgoing: Outgoing,
    mut client_upgrade: Option<upgrade::ClientUpgrade>,
    started: Instant,
    mut trace: Option<&'a mut Trace>,
) -> impl std::future::Future<Output = Result<Forwarded, ProxyError>> + Send + 'a {
    async move {
        let service = to.service();
        let group = &service.groups[group_index];
        let no_endpoint = || ProxyError::NoEndpoint {
            service: service.name.clone(),
        };
        let request_timeout = outgoing.timeout;

        service.budget.deposit(started);
        let deadline = started + request_timeout;
        let mut tried: Vec<SocketAddr> = Vec::with_capacity(2);
        let mut attempt = Attempt {
            retries: 0,
            resends: 0,
            replayable: outgoing.replay.as_ref().is_some_and(Replay::is_ready),
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
            let request = match (outgoing.first.take(), &outgoing.replay) {
                (Some(request), _) => request,
                (None, Some(replay)) => match replay.request() {
                    Some(request) => request,
                    None => return Err(last_error.unwrap_or_else(no_endpoint)),
                },
                (None, None) => return Err(last_error.unwrap_or_else(no_endpoint)),
            };

            // 1. Send, within the per-try timeout.
            let per_try = outgoing
                .policy
                .per_try_timeout
                .map_or(remaining, |limit| limit.min(remaining));
            let mut in_flight = InFlight::start(endpoint, now);
            // Boxed: a future is copied whole each time it is nested in
            // another, and the send's 2.7 KiB, carried by every level above it
            // up to the connection's per-request box, was the largest share of
            // the `memmove` at the top of the A1 and A2 profiles.
            let send = Box::pin(service.client.send(endpoint, request, now));
            // `timeout_at` from the clock read already taken: `timeout` reads it again.
            let result = tokio::time::timeout_at(now + per_try, send).await;
            now = match &result {
                Ok(Ok(sent)) => {
                    in_flight.exclude_setup(sent.setup);
                    sent.received
                }
                _ => Instant::now(),
            };
            let (outcome, result) = TryResult::of(result);
            let grpc_failed = matches!(outcome, Tried::GrpcResponse(_, code)
            if service.grpc.failure_statuses.contains(code));

            // 2. Decide: respond, try again or fail.
            attempt.untried_left = group
                .endpoints
                .iter()
                .any(|candidate| !tried.contains(&candidate.address));
            attempt.endpoints_tried = tried_distinct(&tried);
            attempt.replayable = outgoing.replay.as_ref().is_some_and(Replay::is_ready);
            let decision = retry::next(
                outcome,
                &outgoing.policy,
                &attempt,
                now,
                deadline,
                &service.budget,
            );

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
                TryResult::Sent {
                    sent,
                    grpc_trailers,
                } => {
                    if decision.next == Next::Respond {
                        // Indices of a snapshot's lists: far below u32::MAX.
                        let target = Target {
                            snapshot: to.snapshot.clone(),
                            service: to.index as u32,
                            group: group_index as u32,
                        };
                        let upgrade = client_upgrade.take();
                        let idle = service.timeouts.response_idle;
                        let accounting =
                            Accounting::new(in_flight, target, grpc_trailers, outgoing.progress);
                        return Ok(Forwarded {
                            received: now,
                            response: respond(connection, sent, accounting, upgrade, idle),
                            grpc_failed,
                        });
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
                    outgoing.first = Some(request);
                }
                TryResult::Stale(error, head) if decision.next == Next::TryOther(Retry::Stale) => {
                    // Not the endpoint's fault: it may take the request again on
                    // a fresh connection.
                    tracing::debug!(service = %service.name, endpoint = %endpoint.address, %error, "pooled connection was stale; sending again");
                    tried.pop();
                    outgoing.first = outgoing
                        .replay
                        .as_ref()
                        .and_then(|replay| replay.with_head(*head));
                }
                TryResult::Stale(error, _) | TryResult::Failed(error) => {
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
                        Retry::Grpc => &service.metrics.retry_grpc,
                    };
                    counter.inc();
                    attempt.count(reason);
                }
                Next::Fail(Failure::Unreachable) => {
                    return Err(ProxyError::Unreachable {
                        service: service.name.clone(),
                    })
                }
                Next::Fail(Failure::LastError) => {
                    return Err(last_error.unwrap_or_else(no_endpoint))
                }
                Next::Respond => unreachable!("only a response is handed on, and it was above"),
            }
        }
    }
}

/// One try's result: what the proxy keeps of it, beside the [`Tried`] the
/// retry decision reads.
enum TryResult {
    /// A response; `grpc_trailers`: a gRPC response whose status comes
    /// in its trailers, which the accounting then reads.
    Sent {
        sent: Sent,
        grpc_trailers: bool,
    },
    NotSent(Request<RequestBody>, BoxError),
    /// A pooled connection closed without a byte of response; the request's
    /// head came back.
    Stale(BoxError, Box<http::request::Parts>),
    /// Reset or closed early.
    Failed(BoxError),
    TimedOut,
    /// The client's body failed, not the endpoint.
    ClientBody(ProxyError),
}

impl TryResult {
    fn of(result: Result<Result<Sent, SendError>, tokio::time::error::Elapsed>) -> (Tried, Self) {
        match result {
            Ok(Ok(sent)) => {
                let status = sent.response.status();
                let kind = grpc::response_kind(sent.response.headers());
                let tried = match kind {
                    grpc::ResponseKind::TrailersOnly(code) => Tried::GrpcResponse(status, code),
                    _ => Tried::Response(status),
                };
                let grpc_trailers = kind == grpc::ResponseKind::StatusInTrailers;
                (
                    tried,
                    Self::Sent {
                        sent,
                        grpc_trailers,
                    },
                )
            }
            Ok(Err(SendError::NotSent { request, error })) => {
                (Tried::NotSent, Self::NotSent(*request, error))
            }
            Ok(Err(SendError::Failed(error) | SendError::Stale { error, .. }))
                if ProxyError::from_body_failure(&error).is_some() =>
            {
                let client_side = ProxyError::from_body_failure(&error).expect("checked above");
                (Tried::ClientBody, Self::ClientBody(client_side))
            }
            Ok(Err(SendError::Stale { error, head })) => (Tried::Stale, Self::Stale(error, head)),
            Ok(Err(SendError::Failed(error))) => (Tried::Reset, Self::Failed(error)),
            Err(_elapsed) => (Tried::TimedOut, Self::TimedOut),
        }
    }
}

/// Records a try against its endpoint (and whether it was a gRPC server
/// failure, a trailers-only status in `grpc.failure_statuses`): the outcome
/// into the in-flight guard (RTT into the EWMA, histogram, status counter)
/// and the outlier streak. A response handed to the client has only its
/// headers recorded here; the rest waits for its end (`accounting`). A
/// failure that was not the endpoint's (the client's body, a stale pooled
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
    let outcome = match tried {
        // A gRPC server failure under HTTP 200 counts as the endpoint's
        // failure everywhere a 5xx does.
        Tried::Response(_) | Tried::GrpcResponse(..) if grpc_failed => Outcome::GrpcFailure,
        Tried::Response(status) | Tried::GrpcResponse(status, _) => Outcome::Response(status),
        Tried::ClientBody => return in_flight.cancel(),
        Tried::Stale if next == Next::TryOther(Retry::Stale) => return in_flight.cancel(),
        Tried::NotSent | Tried::Stale | Tried::Reset | Tried::TimedOut => Outcome::Failed,
    };
    if next == Next::Respond {
        in_flight.respond(outcome, now);
    } else {
        in_flight.finish(outcome, now);
        let failed = outcome.is_failure();
        record_outlier(service, group, &endpoint.stats, failed, || now);
    }
}

fn tried_distinct(tried: &[SocketAddr]) -> usize {
    tried
        .iter()
        .enumerate()
        .filter(|(index, address)| !tried[..*index].contains(address))
        .count()
}

/// The backend's response on its way to the client, or the splice of a 101.
/// Its accounting goes with it, to record the response when it ends.
fn respond(
    connection: &Connection,
    sent: Sent,
    accounting: Accounting,
    client_upgrade: Option<upgrade::ClientUpgrade>,
    response_idle: Option<std::time::Duration>,
) -> Response<ResponseBody> {
    let (mut parts, body) = sent.response.into_parts();
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) = (parts.status, client_upgrade)
    {
        // The connection now belongs to the tunnel, not the pool.
        if let Some(upstream_upgrade) = body.into_upgraded() {
            upgrade::spawn_tunnel(
                client_upgrade,
                upstream_upgrade,
                accounting.settle(),
                connection.drain.clone(),
            );
        }
        headers::prepare_response(&mut parts.headers, parts.version, true);
        return Response::from_parts(parts, ResponseBody::empty());
    }
    headers::prepare_response(&mut parts.headers, parts.version, false);
    let body = ResponseBody::upstream(body, accounting, response_idle);
    Response::from_parts(parts, body)
}
