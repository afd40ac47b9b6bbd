//! A route's filters applied to the request and the response:
//! header edits ([`headers`]), a redirect luas answers itself
//! ([`redirect`]), a rewrite of host and path ([`rewrite`]), a rate limit
//! ([`rate_limit`], with its bucket table) and a mirror ([`mirror`], which
//! takes a copy of the request head). The rate limits' and mirrors' state
//! is kept in the snapshot's route, in [`RouteFilters`].
//!
//! Plain functions over the request head and the response headers, called
//! by `proxy::handle` around forwarding, in the route's order; a route
//! without filters runs none of this. The filters' shapes and checks are
//! `config`'s; making the redirect's response is `proxy`'s.

pub(crate) mod headers;
pub(crate) mod mirror;
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
pub(crate) use mirror::{MirrorCopy, MirrorFilter};
pub(crate) use rate_limit::RateLimiter;

/// A route's filters as a snapshot holds them: the config's list, and the
/// state of its rate limits and mirrors, one each per such filter, in order.
#[derive(Debug, Default)]
pub(crate) struct RouteFilters {
    pub list: Vec<RouteFilter>,
    pub rate_limiters: Vec<RateLimiter>,
    pub mirrors: Vec<MirrorFilter>,
}

impl RouteFilters {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

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
/// `replace_prefix` replaces). A mirror that copies the request adds its
/// copy to `copies`, to be sent if the request is forwarded.
pub(crate) fn on_request(
    filters: &RouteFilters,
    parts: &mut Parts,
    matched: &RouteMatch,
    client: &Client<'_>,
    now: Instant,
    copies: &mut Vec<MirrorCopy>,
) -> Decision {
    let mut limiters = filters.rate_limiters.iter();
    let mut mirrors = filters.mirrors.iter();
    let prefix = match &matched.path {
        Some(PathMatch::Prefix(prefix)) => Some(prefix.as_str()),
        _ => None,
    };
    for filter in &filters.list {
        match filter {
            RouteFilter::Mirror(_) => {
                let mirror = mirrors.next().expect("one mirror per mirror filter");
                copies.extend(mirror.capture(parts));
            }
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
pub(crate) fn on_response(filters: &RouteFilters, response_headers: &mut HeaderMap) {
    for filter in &filters.list {
        if let RouteFilter::ResponseHeaders(edits) = filter {
            headers::apply(edits, response_headers);
        }
    }
}
