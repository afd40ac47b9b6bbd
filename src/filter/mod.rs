//! A route's filters applied to the request and the response:
//! header edits ([`headers`]), a redirect luas answers itself
//! ([`redirect`]), a rewrite of host and path ([`rewrite`]) and a rate
//! limit ([`rate_limit`], whose bucket table is the one piece of state, kept
//! in the snapshot's route).
//!
//! Plain functions over the request head and the response headers, called
//! by `proxy::handle` around forwarding, in the route's order; a route
//! without filters runs none of this. The filters' shapes and checks are
//! `config`'s; making the redirect's response is `proxy`'s.

pub(crate) mod headers;
pub(crate) mod rate_limit;
pub(crate) mod redirect;
pub(crate) mod rewrite;

use std::net::IpAddr;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::config::{PathMatch, RouteFilter, RouteMatch};
use crate::tls::ClientIdentity;
pub(crate) use rate_limit::RateLimiter;

/// Who sent the request, as the filters need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    pub address: IpAddr,
    pub identity: Option<&'a ClientIdentity>,
    /// `http` or `https`.
    pub scheme: &'a str,
}

/// What the request side of the filters decided.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Forward the (possibly edited) request.
    Forward,
    /// Answer with this redirect; the request goes nowhere.
    Redirect {
        status: StatusCode,
        location: HeaderValue,
    },
    /// Answer 429: the client's bucket is empty for this long.
    RateLimited { retry_after: Duration },
}

/// Applies the request side of `filters` in order. `matched` is the route
/// match that selected the request (its path prefix is what a
/// `replace_prefix` replaces); `limiters` are the route's rate limiters, one
/// per `rate_limit` filter, in the same order.
pub(crate) fn on_request(
    (filters, limiters): (&[RouteFilter], &[RateLimiter]),
    parts: &mut Parts,
    matched: &RouteMatch,
    client: &Client<'_>,
    now: Instant,
) -> Decision {
    let mut limiters = limiters.iter();
    let prefix = match &matched.path {
        Some(PathMatch::Prefix(prefix)) => Some(prefix.as_str()),
        _ => None,
    };
    for filter in filters {
        match filter {
            RouteFilter::RequestHeaders(edits) => headers::apply(edits, &mut parts.headers),
            RouteFilter::Rewrite(rewrite) => rewrite::apply(rewrite, parts, prefix),
            RouteFilter::RateLimit(_) => {
                let limiter = limiters.next().expect("one limiter per rate_limit filter");
                if let Err(retry_after) = limiter.check(parts, client.address, client.identity, now)
                {
                    return Decision::RateLimited { retry_after };
                }
            }
            RouteFilter::Redirect(redirect) => {
                if let Some(location) = redirect::location(redirect, parts, prefix, client.scheme) {
                    return Decision::Redirect {
                        status: redirect.status,
                        location,
                    };
                }
            }
            RouteFilter::ResponseHeaders(_) => {}
        }
    }
    Decision::Forward
}

/// Applies the response side of `filters` in order.
pub(crate) fn on_response(filters: &[RouteFilter], response_headers: &mut HeaderMap) {
    for filter in filters {
        if let RouteFilter::ResponseHeaders(edits) = filter {
            headers::apply(edits, response_headers);
        }
    }
}
