//! The body of a client's request as it comes in: from hyper (HTTP/2, and
//! programs that embed luas) or from luas's own HTTP/1.1 codec. The proxy
//! reads both the same way; this type does not limit or time them, which
//! is [`super::StreamingBody`]'s job.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

#[derive(Debug)]
pub enum Incoming {
    Hyper(hyper::body::Incoming),
    Http1(crate::http1::Body),
    /// A request without a body.
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub enum IncomingError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    Http1(#[from] crate::http1::BodyError),
}

impl From<hyper::body::Incoming> for Incoming {
    fn from(body: hyper::body::Incoming) -> Self {
        Self::Hyper(body)
    }
}

impl Body for Incoming {
    type Data = Bytes;
    type Error = IncomingError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, IncomingError>>> {
        match self.get_mut() {
            Self::Hyper(body) => Pin::new(body)
                .poll_frame(context)
                .map_err(IncomingError::Hyper),
            Self::Http1(body) => Pin::new(body)
                .poll_frame(context)
                .map_err(IncomingError::Http1),
            Self::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::Http1(body) => body.is_end_stream(),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            Self::Http1(body) => body.size_hint(),
            Self::Empty => SizeHint::with_exact(0),
        }
    }
}
