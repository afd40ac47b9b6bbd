//! The body of an endpoint's response as `client` hands it on: read by
//! luas's HTTP/1.1 codec, or by hyper for HTTP/2.
//!
//! An HTTP/1.1 body that ends cleanly puts its connection back in the
//! endpoint's pool on the spot, so whoever reads it (the proxy passing it
//! to the client, a health probe or a mirror draining it) returns the
//! connection just by reading to the end. A body dropped early takes its
//! connection with it: closed, never reused half-read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::BoxError;
use crate::body::RequestBody;
use crate::endpoint::EndpointStats;
use crate::http1::upstream::{self, Upgraded};

#[derive(Debug)]
pub enum Received {
    Http1(Http1Body),
    Http2(hyper::body::Incoming),
}

/// An HTTP/1.1 response body and the pool its connection goes back to.
#[derive(Debug)]
pub struct Http1Body {
    body: upstream::ResponseBody<RequestBody>,
    /// The endpoint and the client that opened the connection; None once
    /// the connection is back (or never to go back).
    home: Option<(Arc<EndpointStats>, u64)>,
}

impl Received {
    pub(super) fn http1(
        body: upstream::ResponseBody<RequestBody>,
        home: Option<(Arc<EndpointStats>, u64)>,
    ) -> Self {
        Self::Http1(Http1Body { body, home })
    }

    /// The connection after a 101, for a tunnel (HTTP/1.1 only).
    pub fn into_upgraded(self) -> Option<Upgraded> {
        match self {
            Self::Http1(http1) => http1.body.into_upgraded(),
            Self::Http2(_) => None,
        }
    }
}

impl Http1Body {
    fn return_connection(&mut self) {
        if let Some((stats, owner)) = self.home.take() {
            if let Some(connection) = self.body.take_reusable() {
                stats.pool.put(connection, owner, Instant::now());
            }
        }
    }
}

impl Body for Received {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Http1(http1) => {
                let polled = Pin::new(&mut http1.body).poll_frame(context);
                if polled.is_ready() && http1.body.is_end_stream() {
                    http1.return_connection();
                }
                polled
            }
            Self::Http2(body) => Pin::new(body).poll_frame(context).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Http1(http1) => http1.body.is_end_stream(),
            Self::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Http1(http1) => http1.body.size_hint(),
            Self::Http2(body) => body.size_hint(),
        }
    }
}
