//! The `filters` of a route, as Gateway API's HTTPRouteFilter names them:
//! header edits on the request and on the response, a redirect answered by
//! luas itself, a rewrite of the request's host and path, a rate limit and
//! a mirror.
//!
//! This module owns the filters' shapes and the syntax of their values
//! (a redirect target's host, a replacement path); `validate::filters` adds
//! key paths and the rules that span a route (a prefix replacement needs a
//! prefix match), and `filter` applies them to requests.

use std::str::FromStr;

use http::{HeaderName, HeaderValue, StatusCode};

use super::InvalidValue;

/// One filter, applied in the order the route lists them.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteFilter {
    RequestHeaders(HeaderEdits),
    ResponseHeaders(HeaderEdits),
    Redirect(Redirect),
    Rewrite(Rewrite),
    RateLimit(RateLimit),
    Mirror(Mirror),
}

/// Gateway API's RequestMirror: a copy of the request (or of `percent` of
/// them) goes to another service in the background; its answer is read and
/// dropped, and the client never waits for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// Index into the config's services.
    pub service: usize,
    /// One group of that service; None splits the copies by the service's
    /// own weights.
    pub group: Option<String>,
    /// The fraction of requests copied, 0 to 1. Default 1.
    pub fraction: f64,
    /// Copies on their way at once; more are shed. Default 1024, Envoy's
    /// default circuit-breaker limit of a cluster's requests.
    pub max_in_flight: usize,
    /// A request body larger than this is not copied (the copy is shed).
    /// Default 64 KiB.
    pub max_body_bytes: u64,
}

/// A local token bucket per key: `burst` requests at once, refilled at
/// `requests` per `per`; a request finding the bucket empty gets 429.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: std::time::Duration,
    /// The bucket's size. Default: `requests`.
    pub burst: u32,
    pub key: RateKey,
    /// Most keys remembered; the least recently used go first.
    pub max_keys: usize,
}

/// What a rate limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The client's IP address (not its port).
    ClientAddress,
    /// The verified client certificate's first name (mTLS); clients
    /// without one share a bucket.
    ClientIdentity,
    /// This request header's value; requests without it share a bucket.
    Header(HeaderName),
}

/// Gateway API's HeaderModifier: `set` replaces every value of a header,
/// `add` appends one, `remove` drops the header; applied in that order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderEdits {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

/// Gateway API's RequestRedirect: luas answers the request with a redirect
/// to the same URL with these parts replaced; it is never forwarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub scheme: Option<RedirectScheme>,
    pub hostname: Option<Hostname>,
    pub port: Option<u16>,
    pub path: Option<PathReplace>,
    /// 301, 302 (the default, as Gateway API's), 303, 307 or 308.
    pub status: StatusCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectScheme {
    Http,
    Https,
}

impl RedirectScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port a URL of this scheme leaves out.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// Gateway API's URLRewrite: the request goes on with these parts replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    /// Replaces the `Host` the endpoint sees.
    pub hostname: Option<Hostname>,
    pub path: Option<PathReplace>,
}

/// How a filter replaces the request's path; the query is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathReplace {
    /// The whole path.
    Full(String),
    /// The part the route's prefix matched (whole segments); the rest of the
    /// path follows it.
    Prefix(String),
}

/// A host name or IP address, lower-case, without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(String);

impl Hostname {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Hostname {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if text.parse::<std::net::Ipv4Addr>().is_ok() || text.split('.').all(valid_label) {
            return Ok(Self(text.to_ascii_lowercase()));
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if inner.parse::<std::net::Ipv6Addr>().is_ok() {
                return Ok(Self(text.to_ascii_lowercase()));
            }
        }
        Err(InvalidValue(format!(
            "{text:?} is not a host name; use a name like docs.example.com or an IP address, \
             without a port (give the port as `port`)"
        )))
    }
}

/// A replacement path: starts with `/`, no query, fragment, whitespace or
/// control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplacementPath(pub(crate) String);

impl FromStr for ReplacementPath {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        super::route_match::check_path(
            "the replacement",
            text,
            "a replacement is a path only (the request's query is kept)",
        )?;
        Ok(Self(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for good in [
            "docs.example.com",
            "Docs.Example.com",
            "10.0.0.1",
            "[::1]",
            "svc_a",
        ] {
            assert!(good.parse::<Hostname>().is_ok(), "{good}");
        }
        assert_eq!(
            "Docs.Example.com".parse::<Hostname>().unwrap().as_str(),
            "docs.example.com"
        );
        for bad in [
            "",
            "a..b",
            "docs.example.com:8443",
            "*.example.com",
            "a b",
            "[::1",
        ] {
            assert!(bad.parse::<Hostname>().is_err(), "{bad}");
        }
    }

    #[test]
    fn replacement_paths() {
        assert!("/manual".parse::<ReplacementPath>().is_ok());
        assert!("/".parse::<ReplacementPath>().is_ok());
        assert!("manual".parse::<ReplacementPath>().is_err());
        assert!("/a?b=1".parse::<ReplacementPath>().is_err());
    }
}
