//! Bodies on their way through luas, never buffered whole unless a retry
//! needs a copy.
//!
//! [`RequestBody`] goes to the backend: the client's body streamed through
//! with the listener's size limit and stall timeout applied, or a small copy
//! kept for replay when a request may be retried. [`ResponseBody`] goes back
//! to the client: the backend's body streamed through, carrying the
//! endpoint's in-flight guard and, for HTTP/1.1, the pooled connection, which
//! goes back to the pool only when the response has been read to its end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::access_log::Entry;
use crate::client::Release;
use crate::endpoint::InFlight;

/// Why a request body could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body stalled for {after:?}")]
    Stalled { after: Duration },
    #[error("reading the request body failed: {0}")]
    Client(#[source] hyper::Error),
}

/// The body sent to a backend.
#[derive(Debug)]
pub enum RequestBody {
    Streaming(StreamingBody),
    /// A complete copy, cheap to clone for a retry.
    Buffered(Option<Bytes>),
}

/// A client's body passed through as it arrives, with limits.
#[derive(Debug)]
pub struct StreamingBody {
    body: Incoming,
    limit: Option<u64>,
    seen: u64,
    stall_timeout: Duration,
    // Created only when the client makes us wait, so bodies that arrive
    // at once cost no timer.
    stall: Option<Pin<Box<Sleep>>>,
    /// The access log's byte count, when it is on.
    counted: Option<Arc<AtomicU64>>,
}

impl RequestBody {
    pub fn streaming(
        body: Incoming,
        limit: Option<u64>,
        stall_timeout: Duration,
        counted: Option<Arc<AtomicU64>>,
    ) -> RequestBody {
        RequestBody::Streaming(StreamingBody {
            body,
            limit,
            seen: 0,
            stall_timeout,
            stall: None,
            counted,
        })
    }

    pub fn buffered(data: Bytes) -> RequestBody {
        RequestBody::Buffered((!data.is_empty()).then_some(data))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RequestBody::Buffered(data) => {
                Poll::Ready(data.take().map(|data| Ok(Frame::data(data))))
            }
            RequestBody::Streaming(streaming) => streaming.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Buffered(data) => data.is_none(),
            RequestBody::Streaming(streaming) => streaming.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Buffered(Some(data)) => SizeHint::with_exact(data.len() as u64),
            RequestBody::Buffered(None) => SizeHint::with_exact(0),
            RequestBody::Streaming(streaming) => streaming.body.size_hint(),
        }
    }
}

impl StreamingBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if let Some(counted) = &self.counted {
                        counted.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    if let Some(limit) = self.limit.filter(|&limit| self.seen > limit) {
                        return Poll::Ready(Some(Err(BodyError::TooLarge { limit })));
                    }
                }
                if let Some(stall) = self.stall.as_mut() {
                    stall
                        .as_mut()
                        .reset(tokio::time::Instant::now() + self.stall_timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyError::Client(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = self.stall_timeout;
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(BodyError::Stalled { after: timeout })))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[derive(Debug)]
pub enum ResponseBody {
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
pub struct LoggedBody {
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
    pub fn upstream(body: Incoming, in_flight: InFlight, release: Option<Release>) -> ResponseBody {
        ResponseBody::Upstream {
            body,
            in_flight: Some(in_flight),
            release,
        }
    }

    pub fn full(data: Bytes) -> ResponseBody {
        ResponseBody::Full(Some(data))
    }

    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }

    pub fn logged(body: ResponseBody, entry: Entry, status: StatusCode) -> ResponseBody {
        ResponseBody::Logged(Box::new(LoggedBody {
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
        if let ResponseBody::Upstream { body, release, .. } = self {
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
            ResponseBody::Upstream {
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
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            ResponseBody::Logged(logged) => {
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
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
            ResponseBody::Full(data) => data.is_none(),
            ResponseBody::Logged(logged) => logged.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream { body, .. } => body.size_hint(),
            ResponseBody::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Logged(logged) => logged.body.size_hint(),
        }
    }
}
