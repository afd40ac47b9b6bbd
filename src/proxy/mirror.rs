//! Sending a route's mirrored copies: each in a task of its own, so the
//! client's response never waits for a copy and never sees its errors.
//!
//! A copy of a request without a body goes at once. A copy of a request
//! with a body waits until the primary has read the body whole (the copy
//! is kept beside the stream, `body::BodyCopy`, up to the mirror's
//! `max_body_bytes`), then goes; a larger body, or one that never arrived
//! whole, sheds the copy. The copy goes to one endpoint of the target,
//! picked by its group's balancer, with the target service's request
//! timeout, and is never retried; its answer is read to its end and
//! dropped. It is counted in the endpoint's mirror series
//! (`mirror="true"`) and moves the endpoint's estimate and outlier streak
//! like any request: it is load the endpoint carries.
//!
//! What is copied and how many copies may be on their way is the filter's
//! (`filter::mirror`); this module only sends.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use tokio::time::Instant;

use super::accounting::record_outlier;
use super::headers::{self, ForwardedFor};
use crate::body::{BodyCopy, CopiedBody, CopyReceiver, RequestBody};
use crate::endpoint::{InFlight, Outcome};
use crate::filter::MirrorCopy;
use crate::grpc;
use crate::state::Snapshot;

/// A copy's body: there already, or on its way from the primary's stream.
enum CopyBody {
    Ready(Bytes),
    Copying(CopyReceiver),
}

/// Starts the copies of one request. `body_is_empty` says the request has
/// no body (most GETs); otherwise the returned [`BodyCopy`] must go with the
/// primary's body, which fills it as it streams.
pub(super) fn start(
    snapshot: &Arc<Snapshot>,
    copies: Vec<MirrorCopy>,
    body_is_empty: bool,
    declared_length: Option<u64>,
    client: (&ForwardedFor, &'static str),
) -> Option<Box<BodyCopy>> {
    let mut body_copy: Option<Box<BodyCopy>> = None;
    for copy in copies {
        let body = if body_is_empty {
            CopyBody::Ready(Bytes::new())
        } else if declared_length.is_some_and(|length| length > copy.target.max_body_bytes) {
            copy.target.shed.body_too_large.inc();
            continue;
        } else {
            let limit = copy.target.max_body_bytes;
            let shared = body_copy.get_or_insert_with(|| Box::new(BodyCopy::new(limit)));
            shared.raise_limit(limit);
            CopyBody::Copying(shared.receiver())
        };
        tokio::spawn(send(
            snapshot.clone(),
            copy,
            body,
            (client.0.clone(), client.1),
        ));
    }
    body_copy
}

async fn send(
    snapshot: Arc<Snapshot>,
    mut copy: MirrorCopy,
    body: CopyBody,
    (client, scheme): (ForwardedFor, &'static str),
) {
    let head = std::mem::take(&mut copy.head);
    let target = &copy.target;
    let body = match body {
        CopyBody::Ready(body) => body,
        CopyBody::Copying(receiver) => match receiver.await {
            Ok(CopiedBody::Whole(body)) if body.len() as u64 <= target.max_body_bytes => body,
            Ok(CopiedBody::Whole(_) | CopiedBody::TooLarge) => {
                target.shed.body_too_large.inc();
                return;
            }
            Err(_never_ended) => {
                target.shed.body_incomplete.inc();
                return;
            }
        },
    };
    let service = &snapshot.services[target.service];
    let (mut parts, ()) = head.into_parts();
    headers::prepare_request(&mut parts, &client, scheme, false);
    let Some(group_index) = target.group.or_else(|| service.split.pick_for(&parts)) else {
        return;
    };
    let group = &service.groups[group_index];
    let now = Instant::now();
    let Some(endpoint) = group.balancer.pick(&group.endpoints, now) else {
        tracing::debug!(service = %service.name, "mirror target has no endpoint; copy dropped");
        return;
    };
    let timeout = service.timeouts.request;
    let deadline = now + timeout;
    let mut in_flight = InFlight::start_mirror(endpoint, now);
    let request = Request::from_parts(parts, RequestBody::buffered(body));
    let sent = tokio::time::timeout_at(deadline, service.client.send(endpoint, request, now)).await;
    let outcome = match sent {
        Ok(Ok(sent)) => {
            in_flight.exclude_setup(sent.setup);
            let at_headers = classify(service, &sent.response);
            in_flight.respond(at_headers, sent.received);
            // Read to the end so the connection can serve again, and so a
            // gRPC status in the trailers is counted.
            match tokio::time::timeout_at(deadline, sent.drain()).await {
                Ok(Ok(trailers)) => {
                    let code = trailers.as_ref().and_then(grpc::status);
                    if service.grpc.failure_statuses.failed(code) {
                        Outcome::GrpcFailure
                    } else {
                        at_headers
                    }
                }
                Ok(Err(_)) | Err(_) => Outcome::Failed,
            }
        }
        Ok(Err(error)) => {
            tracing::debug!(service = %service.name, endpoint = %endpoint.address, error = ?error, "mirrored copy failed");
            Outcome::Failed
        }
        Err(_elapsed) => Outcome::Failed,
    };
    let now = Instant::now();
    // Counts the copy (a response's latency was recorded at its headers).
    in_flight.finish(outcome, now);
    record_outlier(
        service,
        group,
        &endpoint.stats,
        outcome.is_failure(),
        || now,
    );
}

/// The outcome the response headers show.
fn classify(
    service: &crate::state::Service,
    response: &http::Response<crate::client::Received>,
) -> Outcome {
    if service
        .grpc
        .failure_statuses
        .failed(grpc::trailers_only_status(response.headers()))
    {
        Outcome::GrpcFailure
    } else {
        Outcome::Response(response.status())
    }
}
