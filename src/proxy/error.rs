//! The one place a failure becomes an HTTP status.
//!
//! [`ProxyError`] says what went wrong and on which side; [`ProxyError::status`]
//! maps it: 404 no route, 503 no endpoint to use, 502 the backend refused or
//! reset, 504 the backend did not answer in time. Clients get a short
//! plain-text body saying which; details (addresses, causes) go to the log
//! only, so internal addresses do not leak.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::body::ResponseBody;
use crate::client::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matches this request")]
    NoRoute,
    #[error("service {service} has no endpoint to send to")]
    NoEndpoint { service: String },
    #[error("endpoint {endpoint} could not be reached: {source}")]
    Connect {
        endpoint: SocketAddr,
        #[source]
        source: UpstreamError,
    },
    #[error("endpoint {endpoint} closed or reset the connection: {source}")]
    Reset {
        endpoint: SocketAddr,
        #[source]
        source: UpstreamError,
    },
    #[error("endpoint {endpoint} sent no response within {timeout:?}")]
    Timeout {
        endpoint: SocketAddr,
        timeout: Duration,
    },
}

impl ProxyError {
    pub fn from_upstream(endpoint: SocketAddr, error: UpstreamError) -> ProxyError {
        match error {
            UpstreamError::Connect(_) => ProxyError::Connect {
                endpoint,
                source: error,
            },
            UpstreamError::Connection(_) => ProxyError::Reset {
                endpoint,
                source: error,
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoEndpoint { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. } | ProxyError::Reset { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// What the client is told: which failure, without internal details.
    fn client_message(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "luas: no route matches this request\n",
            ProxyError::NoEndpoint { .. } => {
                "luas: no backend endpoint is available for this service\n"
            }
            ProxyError::Connect { .. } => {
                "luas: the backend refused the connection or could not be reached\n"
            }
            ProxyError::Reset { .. } => "luas: the backend closed or reset the connection\n",
            ProxyError::Timeout { .. } => "luas: the backend did not answer in time\n",
        }
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(Bytes::from_static(
            self.client_message().as_bytes(),
        )));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
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
            ProxyError::from_upstream(endpoint, UpstreamError::Connect("refused".into())).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ProxyError::from_upstream(endpoint, UpstreamError::Connection("reset".into())).status(),
            StatusCode::BAD_GATEWAY
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
}
