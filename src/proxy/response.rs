//! The response on its way back to the client, streamed, never buffered.
//!
//! [`ResponseBody`] carries the endpoint's in-flight guard and, for
//! HTTP/1.1, the pooled connection, which goes back to the pool only when
//! the response has been read to its end; with the access log on, it writes
//! the request's line when it ends. The body sent to backends is
//! `crate::body`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access_log::Entry;
use crate::endpoint::{InFlight, Release};

#[derive(Debug)]
pub(crate) enum ResponseBody {
    Upstream {
        body: Incoming,
        /// Dropped at end of stream (or when the client goes away), which ends
        /// the request's in-flight accounting.
        in_flight: Option<InFlight>,
        /// The HTTP/1.1 connection, back to its pool at the end of the stream.
        release: Option<Release>,
    },
    Full(Option<Bytes>),
    /// Any of the above, written to the access log when it ends.
    Logged(Box<LoggedBody>),
}

/// A response body and its access log entry, written once: at the end of
/// the body, at an error, or when the client goes away first.
#[derive(Debug)]
pub(crate) struct LoggedBody {
    body: ResponseBody,
    /// Taken when the line is written.
    entry: Option<Entry>,
    status: StatusCode,
    bytes_out: u64,
}

impl LoggedBody {
    fn write(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.finish(self.status, self.bytes_out);
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.write();
    }
}

impl ResponseBody {
    pub(crate) fn upstream(body: Incoming, in_flight: InFlight, release: Option<Release>) -> Self {
        Self::Upstream {
            body,
            in_flight: Some(in_flight),
            release,
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self::Full(Some(data))
    }

    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }

    pub(crate) fn logged(body: Self, entry: Entry, status: StatusCode) -> Self {
        Self::Logged(Box::new(LoggedBody {
            body,
            entry: Some(entry),
            status,
            bytes_out: 0,
        }))
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // An empty body (204, HEAD, content-length 0) may never be polled:
        // its connection is still fit for reuse.
        if let Self::Upstream { body, release, .. } = self {
            if body.is_end_stream() {
                if let Some(release) = release.take() {
                    release.reuse();
                }
            }
        }
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
            Self::Upstream {
                body,
                in_flight,
                release,
            } => {
                let polled = Pin::new(body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => {
                        in_flight.take();
                        if let Some(release) = release.take() {
                            release.reuse();
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {
                        in_flight.take();
                        release.take();
                    }
                    _ => {}
                }
                polled
            }
            Self::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Self::Logged(logged) => {
                let polled = Pin::new(&mut logged.body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            logged.bytes_out += data.len() as u64;
                        }
                        if logged.body.is_end_stream() {
                            logged.write();
                        }
                    }
                    Poll::Ready(_) => logged.write(),
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream { body, .. } => body.is_end_stream(),
            Self::Full(data) => data.is_none(),
            Self::Logged(logged) => logged.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream { body, .. } => body.size_hint(),
            Self::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Logged(logged) => logged.body.size_hint(),
        }
    }
}
