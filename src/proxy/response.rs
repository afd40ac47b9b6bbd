//! The response on its way back to the client, streamed, never buffered.
//!
//! [`ResponseBody`] carries the try's [`Accounting`] (which records the
//! response when it ends: a gRPC status in the trailers, a body that broke
//! off) around the endpoint's body, which puts an HTTP/1.1 connection back
//! in its pool only when read to its end (`client::Received`). It cuts a body
//! that makes no progress for `timeouts.response_idle`: the time counted is
//! only time spent waiting for the endpoint, not for a slow client. With the
//! access log on, it writes the request's line when it ends. The body sent
//! to backends is `crate::body`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};

use super::accounting::Accounting;
use crate::access_log::Entry;
use crate::body::IdleTimer;
use crate::client::{BoxError, Received};

/// The body of a response luas sends to its client: an endpoint's body
/// streamed through (never buffered), or one luas wrote itself (an error,
/// a redirect). Its end is what records the response in luas's metrics,
/// returns an HTTP/1.1 connection to its pool and writes the access log
/// line, so poll it to its end or drop it.
///
/// An embedding program's own layers can answer with [`ResponseBody::full`]
/// or [`ResponseBody::empty`] (see [`crate::Proxy`]).
#[derive(Debug)]
pub struct ResponseBody(Kind);

// A newtype over the kinds so they stay private to the crate: the wrapper
// has the enum's size and layout, so luas's own path pays nothing for it.
#[derive(Debug)]
enum Kind {
    Upstream(UpstreamBody),
    Full(Option<Bytes>),
    /// Any of the above, written to the access log when it ends.
    Logged(Box<LoggedBody>),
}

/// An endpoint's response body on its way to the client.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    body: Received,
    /// Dropped at end of stream (or when the client goes away), which
    /// records the response and ends its in-flight accounting.
    accounting: Option<Accounting>,
    idle: IdleTimer,
    /// Set when the body was cut: nothing more is read from it.
    cut: bool,
}

/// Why luas cut a response body short.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CutShort {
    #[error("the endpoint sent no response bytes for {0:?} (timeouts.response_idle)")]
    Idle(Duration),
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
    pub(crate) fn upstream(body: Received, accounting: Accounting, idle: Option<Duration>) -> Self {
        Self(Kind::Upstream(UpstreamBody {
            body,
            accounting: Some(accounting),
            idle: IdleTimer::new(idle),
            cut: false,
        }))
    }

    /// A body of `data`, sent in one frame.
    pub fn full(data: impl Into<Bytes>) -> Self {
        Self(Kind::Full(Some(data.into())))
    }

    /// A body with nothing in it.
    pub fn empty() -> Self {
        Self(Kind::Full(None))
    }

    pub(crate) fn logged(body: Self, entry: Entry, status: StatusCode) -> Self {
        Self(Kind::Logged(Box::new(LoggedBody {
            body,
            entry: Some(entry),
            status,
            bytes_out: 0,
        })))
    }
}

impl UpstreamBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.cut {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.progressed();
                if let (Some(trailers), Some(accounting)) =
                    (frame.trailers_ref(), self.accounting.as_mut())
                {
                    accounting.trailers(trailers);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                self.accounting.take();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                let client_side = self
                    .accounting
                    .as_ref()
                    .is_some_and(Accounting::client_body_failed);
                if !client_side {
                    if let Some(accounting) = &self.accounting {
                        tracing::warn!(endpoint = %accounting.endpoint(), %error, "the endpoint's response body broke off");
                    }
                }
                let status = if client_side {
                    (1, "the request stream stalled or broke off")
                } else {
                    (14, "the backend reset the stream")
                };
                Poll::Ready(Some(self.cut_short(status, error)))
            }
            Poll::Pending => {
                if !self.idle.expired(cx) {
                    return Poll::Pending;
                }
                // While the client is still sending (a bidirectional call),
                // the endpoint may be waiting for it: the clock starts over.
                if self
                    .accounting
                    .as_ref()
                    .is_some_and(Accounting::request_streaming)
                {
                    self.idle.progressed();
                    if !self.idle.expired(cx) {
                        return Poll::Pending;
                    }
                }
                let limit = self.idle.limit().unwrap_or_default();
                if let Some(accounting) = &self.accounting {
                    tracing::warn!(
                        endpoint = %accounting.endpoint(),
                        idle = ?limit,
                        "cut a response whose body made no progress (timeouts.response_idle)"
                    );
                }
                let message =
                    format!("the backend sent nothing for {limit:?} (timeouts.response_idle)");
                Poll::Ready(Some(
                    self.cut_short((14, &message), CutShort::Idle(limit).into()),
                ))
            }
        }
    }

    /// Ends the body early: the response is recorded as failed (unless the
    /// client's own body failed first), the connection is not reused, and
    /// nothing more is read. A gRPC response ends with `grpc_status` in
    /// trailers so its client reads a status; any other ends with `error`:
    /// hyper then closes an HTTP/1.1 connection without the last chunk and
    /// resets an HTTP/2 stream, so the client sees the body is incomplete.
    fn cut_short(
        &mut self,
        (code, message): (u16, &str),
        error: BoxError,
    ) -> Result<Frame<Bytes>, BoxError> {
        let mut grpc = false;
        if let Some(mut accounting) = self.accounting.take() {
            grpc = accounting.grpc_trailers();
            accounting.fail();
        }
        self.cut = true;
        if grpc {
            let mut trailers = http::HeaderMap::new();
            crate::grpc::insert_status(&mut trailers, code, message);
            return Ok(Frame::trailers(trailers));
        }
        Err(error)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Kind::Upstream(upstream) => upstream.poll_frame(cx),
            Kind::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Kind::Logged(logged) => {
                let polled = Pin::new(&mut logged.body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            logged.bytes_out += data.len() as u64;
                        } else if let (Some(trailers), Some(entry)) =
                            (frame.trailers_ref(), logged.entry.as_mut())
                        {
                            if let Some(code) = crate::grpc::status(trailers) {
                                entry.grpc_status = Some(code);
                            }
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
        match &self.0 {
            Kind::Upstream(upstream) => upstream.cut || upstream.body.is_end_stream(),
            Kind::Full(data) => data.is_none(),
            Kind::Logged(logged) => logged.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Upstream(upstream) => upstream.body.size_hint(),
            Kind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Logged(logged) => logged.body.size_hint(),
        }
    }
}
