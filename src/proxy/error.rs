//! The one place a failure becomes an HTTP status.
//!
//! [`ProxyError`] says what went wrong and on which side; [`ProxyError::status`]
//! maps it: 404 no route, 503 no endpoint to use (or two or more endpoints
//! were tried and every one refused: the service is down), 502 the backend
//! refused or reset, 504 the backend did not answer in time; and on the client's side
//! 413 body too large, 408 body stalled, 400 body broken off. Clients get a short
//! plain-text body saying which; details (addresses, causes) go to the log
//! only, so internal addresses do not leak.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::response::ResponseBody;
use crate::client::BoxError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("no route matches this request")]
    NoRoute,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("service {service} has no endpoint to send to")]
    NoEndpoint { service: String },
    #[error("no endpoint of service {service} could be reached")]
    Unreachable { service: String },
    #[error("endpoint {endpoint} could not be reached: {source}")]
    Connect {
        endpoint: SocketAddr,
        #[source]
        source: BoxError,
    },
    #[error("endpoint {endpoint} closed or reset the connection: {source}")]
    Reset {
        endpoint: SocketAddr,
        #[source]
        source: BoxError,
    },
    #[error("endpoint {endpoint} sent no response within {timeout:?}")]
    Timeout {
        endpoint: SocketAddr,
        timeout: Duration,
    },
    #[error("request body larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("request body stalled for {after:?}")]
    BodyStalled { after: Duration },
    #[error("the client's request body broke off: {0}")]
    ClientBody(#[source] BoxError),
    /// luas does not tunnel: CONNECT is answered at once, never forwarded.
    #[error("CONNECT is not supported: luas does not tunnel")]
    TunnelRefused,
    /// The route's rate limit: the client's bucket is empty this long.
    #[error("rate limited; a request is allowed again in {retry_after:?}")]
    RateLimited { retry_after: Duration },
}

const GRPC_DEADLINE_EXCEEDED: u16 = 4;
const GRPC_RESOURCE_EXHAUSTED: u16 = 8;
const GRPC_UNIMPLEMENTED: u16 = 12;
const GRPC_INTERNAL: u16 = 13;
const GRPC_UNAVAILABLE: u16 = 14;

/// The methods luas forwards, for the `Allow` of a refused CONNECT.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE";

impl ProxyError {
    /// The client-side error buried in a failed send, if the failure was the
    /// client's body rather than the endpoint.
    pub(crate) fn from_body_failure(error: &BoxError) -> Option<Self> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
        while let Some(current) = source {
            if let Some(body) = current.downcast_ref::<crate::body::BodyError>() {
                return Some(match body {
                    crate::body::BodyError::TooLarge { limit } => {
                        Self::BodyTooLarge { limit: *limit }
                    }
                    crate::body::BodyError::Stalled { after } => {
                        Self::BodyStalled { after: *after }
                    }
                    crate::body::BodyError::Client(error) => {
                        Self::ClientBody(error.to_string().into())
                    }
                    // The retry lost a race with its abandoned first try,
                    // which read past the buffer: not the endpoint's fault.
                    crate::body::BodyError::NotReplayable => {
                        Self::ClientBody(body.to_string().into())
                    }
                });
            }
            source = current.source();
        }
        None
    }

    /// True for failures the client caused.
    pub(crate) fn is_client_side(&self) -> bool {
        self.status().is_client_error()
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::NoEndpoint { .. } | Self::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Connect { .. } | Self::Reset { .. } => StatusCode::BAD_GATEWAY,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyStalled { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::ClientBody(_) => StatusCode::BAD_REQUEST,
            Self::TunnelRefused => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// What the client is told: which failure, without internal details.
    fn client_message(&self) -> &'static str {
        match self {
            Self::NoRoute => "luas: no route matches this request\n",
            Self::Malformed(_) => "luas: malformed request\n",
            Self::NoEndpoint { .. } => "luas: no backend endpoint is available for this service\n",
            Self::Unreachable { .. } => "luas: no backend endpoint could be reached\n",
            Self::Connect { .. } => {
                "luas: the backend refused the connection or could not be reached\n"
            }
            Self::Reset { .. } => "luas: the backend closed or reset the connection\n",
            Self::Timeout { .. } => "luas: the backend did not answer in time\n",
            Self::BodyTooLarge { .. } => {
                "luas: the request body is larger than this listener accepts\n"
            }
            Self::BodyStalled { .. } => "luas: the request body stopped arriving\n",
            Self::ClientBody(_) => "luas: the request body could not be read\n",
            Self::TunnelRefused => "luas: CONNECT is not supported: this proxy does not tunnel\n",
            Self::RateLimited { .. } => {
                "luas: too many requests; retry after Retry-After seconds\n"
            }
        }
    }

    /// The gRPC status code a gRPC client is told for this failure.
    pub(crate) fn grpc_status(&self) -> u16 {
        match self {
            // NOT_FOUND is a method the server lacks; no route is no method here.
            Self::NoRoute | Self::TunnelRefused => GRPC_UNIMPLEMENTED,
            Self::Malformed(_) | Self::ClientBody(_) => GRPC_INTERNAL,
            Self::NoEndpoint { .. }
            | Self::Unreachable { .. }
            | Self::Connect { .. }
            | Self::Reset { .. } => GRPC_UNAVAILABLE,
            Self::Timeout { .. } | Self::BodyStalled { .. } => GRPC_DEADLINE_EXCEEDED,
            Self::BodyTooLarge { .. } | Self::RateLimited { .. } => GRPC_RESOURCE_EXHAUSTED,
        }
    }

    /// The answer to the client: a gRPC status for a gRPC request, an HTTP
    /// status otherwise.
    pub(crate) fn into_response_for(self, grpc: bool) -> Response<ResponseBody> {
        if grpc {
            self.into_grpc_response()
        } else {
            self.into_response()
        }
    }

    /// The answer to a gRPC request (`content-type: application/grpc…`): a
    /// trailers-only response, HTTP 200 with `grpc-status` and
    /// `grpc-message` in its only headers, so a gRPC client sees a status
    /// instead of a protocol error.
    pub(crate) fn into_grpc_response(self) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::empty());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        let message = self
            .client_message()
            .trim_end()
            .trim_start_matches("luas: ");
        crate::grpc::insert_status(headers, self.grpc_status(), message);
        response
    }

    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        let close = matches!(self, Self::Malformed(_));
        let allow = matches!(self, Self::TunnelRefused);
        let retry_after = match &self {
            Self::RateLimited { retry_after } => {
                Some(crate::filter::rate_limit::retry_after_seconds(*retry_after))
            }
            _ => None,
        };
        let mut response = Response::new(ResponseBody::full(Bytes::from_static(
            self.client_message().as_bytes(),
        )));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if close {
            // Whatever follows on this connection cannot be trusted.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let endpoint: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ProxyError::NoEndpoint {
                service: "a".into()
            }
            .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ProxyError::Connect {
                endpoint,
                source: "refused".into()
            }
            .status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ProxyError::Reset {
                endpoint,
                source: "reset".into()
            }
            .status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ProxyError::BodyTooLarge { limit: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ProxyError::Timeout {
                endpoint,
                timeout: Duration::from_secs(1)
            }
            .status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }

    /// Every variant, with the status it must get. The match has no
    /// wildcard, so a new variant does not compile until it is listed here
    /// with its status; the list check makes the example list keep up.
    #[test]
    fn every_error_has_its_status() {
        let endpoint: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let every = [
            ProxyError::NoRoute,
            ProxyError::Malformed("two content-lengths"),
            ProxyError::NoEndpoint {
                service: "a".into(),
            },
            ProxyError::Unreachable {
                service: "a".into(),
            },
            ProxyError::Connect {
                endpoint,
                source: "refused".into(),
            },
            ProxyError::Reset {
                endpoint,
                source: "reset".into(),
            },
            ProxyError::Timeout {
                endpoint,
                timeout: Duration::from_secs(1),
            },
            ProxyError::BodyTooLarge { limit: 1 },
            ProxyError::BodyStalled {
                after: Duration::from_secs(1),
            },
            ProxyError::ClientBody("broken off".into()),
            ProxyError::TunnelRefused,
            ProxyError::RateLimited {
                retry_after: Duration::from_millis(1_500),
            },
        ];
        let mut listed = Vec::new();
        for error in every {
            let (variant, expected) = match &error {
                ProxyError::NoRoute => (0, StatusCode::NOT_FOUND),
                ProxyError::Malformed(_) => (1, StatusCode::BAD_REQUEST),
                ProxyError::NoEndpoint { .. } => (2, StatusCode::SERVICE_UNAVAILABLE),
                ProxyError::Unreachable { .. } => (3, StatusCode::SERVICE_UNAVAILABLE),
                ProxyError::Connect { .. } => (4, StatusCode::BAD_GATEWAY),
                ProxyError::Reset { .. } => (5, StatusCode::BAD_GATEWAY),
                ProxyError::Timeout { .. } => (6, StatusCode::GATEWAY_TIMEOUT),
                ProxyError::BodyTooLarge { .. } => (7, StatusCode::PAYLOAD_TOO_LARGE),
                ProxyError::BodyStalled { .. } => (8, StatusCode::REQUEST_TIMEOUT),
                ProxyError::ClientBody(_) => (9, StatusCode::BAD_REQUEST),
                ProxyError::TunnelRefused => (10, StatusCode::METHOD_NOT_ALLOWED),
                ProxyError::RateLimited { .. } => (11, StatusCode::TOO_MANY_REQUESTS),
            };
            listed.push(variant);
            assert_eq!(error.status(), expected, "{error}");
            let allow = matches!(error, ProxyError::TunnelRefused);
            let retry_after = matches!(error, ProxyError::RateLimited { .. });
            assert_eq!(
                error.is_client_side(),
                expected.is_client_error(),
                "{error}"
            );
            let close = matches!(error, ProxyError::Malformed(_));
            let response = error.into_response();
            assert_eq!(response.status(), expected);
            assert_eq!(
                response.headers().contains_key(header::CONNECTION),
                close,
                "only a malformed request closes the connection"
            );
            assert_eq!(response.headers().contains_key(header::ALLOW), allow);
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                retry_after.then_some("2"),
                "Retry-After rounds up to whole seconds"
            );
        }
        // Each arm above has an example.
        assert_eq!(listed, (0..12).collect::<Vec<_>>());
    }
}
