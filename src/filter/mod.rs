//! A route's filters applied to the request and the response:
//! header edits ([`headers`]), a redirect luas answers itself
//! ([`redirect`]) and a rewrite of host and path ([`rewrite`]).
//!
//! Plain functions over the request head and the response headers, called
//! by `proxy::handle` around forwarding, in the route's order; a route
//! without filters runs none of this. The filters' shapes and checks are
//! `config`'s; making the redirect's response is `proxy`'s.

pub(crate) mod headers;
pub(crate) mod redirect;
pub(crate) mod rewrite;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::config::{PathMatch, RouteFilter, RouteMatch};

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
}

/// Applies the request side of `filters` in order. `matched` is the route
/// match that selected the request (its path prefix is what a
/// `replace_prefix` replaces); `scheme` the client's (`http` or `https`).
pub(crate) fn on_request(
    filters: &[RouteFilter],
    parts: &mut Parts,
    matched: &RouteMatch,
    scheme: &str,
) -> Decision {
    let prefix = match &matched.path {
        Some(PathMatch::Prefix(prefix)) => Some(prefix.as_str()),
        _ => None,
    };
    for filter in filters {
        match filter {
            RouteFilter::RequestHeaders(edits) => headers::apply(edits, &mut parts.headers),
            RouteFilter::Rewrite(rewrite) => rewrite::apply(rewrite, parts, prefix),
            RouteFilter::Redirect(redirect) => {
                if let Some(location) = redirect::location(redirect, parts, prefix, scheme) {
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
