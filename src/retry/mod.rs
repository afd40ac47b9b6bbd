//! Retrying a request: the decision after each try, and the budget that
//! bounds retries.
//!
//! `proxy::forward` sends, says what happened ([`Tried`]) and asks [`next`]
//! what to do: hand the response to the client, send the request again, or
//! fail. The rules, in order:
//! - A request that never reached an endpoint (connect failure, or a pooled
//!   connection found closed before the request was written) cost the
//!   endpoints nothing: it goes to an endpoint not tried yet, up to
//!   [`MAX_RESENDS`] times, free of the budget. When none is left and two or
//!   more endpoints refused before any configured retry, the service is
//!   down as a whole ([`Failure::Unreachable`]).
//! - A pooled connection that closed without a byte of response (stale) is
//!   almost always the endpoint closing an idle connection as the request
//!   went out: a request whose body was kept goes again the same way.
//! - A 5xx, a reset or a timeout is retried when the service's policy names
//!   it, the body was kept for replay, configured attempts remain, the
//!   request's deadline has not passed and the [`RetryBudget`] pays for it.
//! - A trailers-only gRPC response whose `grpc-status` the policy names
//!   (`unavailable`, …) is retried like a 5xx. Only a trailers-only
//!   response can be: once a gRPC body has started towards the client, its
//!   status in the trailers comes too late to try again.
//! - The client's own body failing is the client's fault: no retry.
//!
//! [`next`] reads only its arguments and `now`; the budget is the one shared
//! counter it touches, withdrawing only when it answers "retry". Sending,
//! accounting and metrics are the caller's.

mod budget;

use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::config::RetryConfig;
pub(crate) use budget::RetryBudget;

/// How many times a request that never reached an endpoint is sent again,
/// on top of configured retries: it cost the endpoints nothing, so it is not
/// charged to the retry budget either.
pub(crate) const MAX_RESENDS: usize = 3;

/// Methods a retry may repeat (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// What one try of a request came to, as the retry decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tried {
    /// The endpoint answered with this status.
    Response(StatusCode),
    /// The endpoint answered a trailers-only gRPC response: this HTTP
    /// status and this `grpc-status`.
    GrpcResponse(StatusCode, u32),
    /// The request provably never reached the endpoint.
    NotSent,
    /// A pooled connection closed without a byte of response.
    Stale,
    /// The connection failed after the request may have been written.
    Reset,
    /// No response within the per-try timeout (or what was left of the
    /// request timeout).
    TimedOut,
    /// The client's request body failed (too large, stalled, broken off).
    ClientBody,
}

/// What the request has used so far, and what is left to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Configured retries made so far, each paid from the budget.
    pub retries: u32,
    /// Free resends so far of requests that never reached an endpoint.
    pub resends: usize,
    /// The body was kept, so the request can be sent again after it went out.
    pub replayable: bool,
    /// Some endpoint of the group has not been tried yet.
    pub untried_left: bool,
    /// Different endpoints tried so far, this try's included.
    pub endpoints_tried: usize,
}

/// What to do after a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Hand the endpoint's response to the client.
    Respond,
    /// Send the request again; the reason names the counter it is counted in.
    TryOther(Retry),
    /// Give up.
    Fail(Failure),
}

/// Why a request is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// It never reached the endpoint: another endpoint, free of the budget.
    NotSent,
    /// A stale pooled connection: again, possibly to the same endpoint (it
    /// does not count as tried), free of the budget.
    Stale,
    /// Configured retries, paid from the budget.
    ServerError,
    Reset,
    Timeout,
    /// A gRPC status `retry.on` names.
    Grpc,
}

/// Which error a request fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The error of the last failed try.
    LastError,
    /// Every endpoint tried refused the connection: the service is down.
    Unreachable,
}

/// A decision, and whether the budget refused a retry on the way to it (so
/// the caller counts `luas_retry_budget_exhausted_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub next: Next,
    pub budget_exhausted: bool,
}

impl Attempt {
    /// Counts a retry that is about to be made.
    pub(crate) fn count(&mut self, retry: Retry) {
        match retry {
            Retry::NotSent | Retry::Stale => self.resends += 1,
            Retry::ServerError | Retry::Reset | Retry::Timeout | Retry::Grpc => self.retries += 1,
        }
    }
}

/// What to do after a try that came to `tried`; see the module docs.
pub(crate) fn next(
    tried: Tried,
    policy: &RetryConfig,
    attempt: &Attempt,
    now: Instant,
    deadline: Instant,
    budget: &RetryBudget,
) -> Decision {
    let decided = |next| Decision {
        next,
        budget_exhausted: false,
    };
    // A configured retry, or `otherwise` when one may not be made.
    let configured = |retry, otherwise| {
        if !attempt.replayable || attempt.retries >= policy.attempts || now >= deadline {
            return decided(otherwise);
        }
        if !budget.try_withdraw(now) {
            return Decision {
                next: otherwise,
                budget_exhausted: true,
            };
        }
        decided(Next::TryOther(retry))
    };
    let fail = Next::Fail(Failure::LastError);
    match tried {
        Tried::Response(status) if status.is_server_error() && policy.on.server_error => {
            configured(Retry::ServerError, Next::Respond)
        }
        Tried::Response(_) => decided(Next::Respond),
        Tried::GrpcResponse(_, code) if policy.on.grpc.contains(code) => {
            configured(Retry::Grpc, Next::Respond)
        }
        Tried::GrpcResponse(status, _) if status.is_server_error() && policy.on.server_error => {
            configured(Retry::ServerError, Next::Respond)
        }
        Tried::GrpcResponse(..) => decided(Next::Respond),
        Tried::NotSent if attempt.resends < MAX_RESENDS && attempt.untried_left => {
            decided(Next::TryOther(Retry::NotSent))
        }
        Tried::NotSent if attempt.endpoints_tried > 1 && attempt.retries == 0 => {
            decided(Next::Fail(Failure::Unreachable))
        }
        Tried::NotSent => decided(fail),
        Tried::Stale if attempt.replayable && attempt.resends < MAX_RESENDS => {
            decided(Next::TryOther(Retry::Stale))
        }
        Tried::Stale | Tried::Reset if policy.on.reset => configured(Retry::Reset, fail),
        Tried::TimedOut if policy.on.timeout => configured(Retry::Timeout, fail),
        Tried::Stale | Tried::Reset | Tried::TimedOut | Tried::ClientBody => decided(fail),
    }
}

#[cfg(test)]
mod tests;
