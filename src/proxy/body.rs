//! The response body luas sends to clients: either a backend's body streamed
//! through frame by frame (never buffered), carrying the endpoint's in-flight
//! guard until the stream ends, or a small body luas wrote itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::endpoint::InFlight;

#[derive(Debug)]
pub enum ResponseBody {
    Upstream {
        body: Incoming,
        /// Dropped at end of stream (or when the client goes away), which ends
        /// the request's in-flight accounting.
        in_flight: Option<InFlight>,
    },
    Full(Option<Bytes>),
}

impl ResponseBody {
    pub fn upstream(body: Incoming, in_flight: InFlight) -> ResponseBody {
        ResponseBody::Upstream {
            body,
            in_flight: Some(in_flight),
        }
    }

    pub fn full(data: Bytes) -> ResponseBody {
        ResponseBody::Full(Some(data))
    }

    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream { body, in_flight } => {
                let polled = Pin::new(body).poll_frame(cx);
                if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    in_flight.take();
                }
                polled
            }
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
            ResponseBody::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream { body, .. } => body.size_hint(),
            ResponseBody::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}
