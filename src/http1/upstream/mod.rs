//! Requests to backends over HTTP/1.1, driven by the request's own task.
//!
//! hyper's client keeps a task per connection and hands every request and
//! response across a channel to it: two wake-ups and a hop between tasks
//! per request. Here the task that forwards a request writes its head,
//! streams its body and reads the response on the connection itself; the
//! [`ResponseBody`] it gets back carries the connection and keeps sending
//! the rest of the request body while the response streams (a backend may
//! answer before it has read the whole request).
//!
//! What it guarantees to its caller (`client`, which owns the pool): a
//! request whose head could not be written at all comes back untouched
//! ([`SendFailure::NotSent`]); a connection closed without a byte of
//! response says so and hands back the request's head
//! ([`SendFailure::Unanswered`], the mark of a stale pooled connection);
//! and a connection is offered back for reuse
//! ([`ResponseBody::take_reusable`]) only when both messages ended cleanly
//! on it and the backend keeps it alive. Response framing is strict (see
//! `response`): invalid framing is an error, never passed on.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

use super::body::split_length;
use super::chunked::{ChunkError, ChunkedDecoder, Decoded};
use super::encode::{self, RequestFraming};
use super::response::{parse_response, BodyFraming, RESPONSE_LIMITS};
use super::HeadError;

mod stream;
mod writer;
pub use stream::{Stream, Upgraded};
use writer::Writer;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An open connection to a backend, idle between exchanges. It keeps its
/// (empty) buffers while pooled, so a busy connection allocates none per
/// request; backend connections are few next to client connections.
pub struct Connection {
    stream: Stream,
    read: BytesMut,
    write: BytesMut,
}

/// Why the backend's response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the backend sent an invalid response head: {0}")]
    Head(#[from] HeadError),
    #[error("the backend sent an invalid chunked body: {0}")]
    Chunked(#[from] ChunkError),
    #[error("the backend closed the connection before responding")]
    ClosedBeforeResponse,
    #[error("the backend closed the connection before the end of its response body")]
    ClosedEarly,
    #[error("the request body does not match its Content-Length of {0} bytes")]
    BodyLength(u64),
    #[error("the connection to the backend failed: {0}")]
    Io(#[from] io::Error),
}

/// Why an exchange got no response.
#[derive(Debug)]
pub enum SendFailure<B> {
    /// Not a byte was written: the request comes back untouched.
    NotSent(Box<Request<B>>, io::Error),
    /// The backend closed the connection (or reset it) without a byte of
    /// response. The request's head comes back, so that the caller need
    /// not have copied it to send an idempotent request again; its body
    /// went, or began to.
    Unanswered {
        error: BoxError,
        head: Box<http::request::Parts>,
    },
    /// The request may have reached the backend and the exchange failed
    /// after some of a response came back, or the request's own body failed.
    Failed(BoxError),
}

/// Why an exchange ended before a response head; `send` turns it into a
/// [`SendFailure`], with the request's head when nothing came back.
struct NoHead {
    error: BoxError,
    nothing_received: bool,
}

/// The backend's response body, read from the connection by whoever polls
/// it; polling it also sends what remains of the request body.
pub struct ResponseBody<B> {
    /// Taken when the connection is reused or handed to an upgrade. Boxed:
    /// the body is moved several times on its way to the client, and
    /// hyper's was a 40-byte handle.
    exchange: Option<Box<Exchange<B>>>,
    reading: Reading,
    keep_alive: bool,
}

impl Connection {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            read: BytesMut::new(),
            write: BytesMut::new(),
        }
    }

    /// Whether an idle connection is still open and quiet, checked without
    /// waiting: the backend may have closed it (or, wrongly, written to it)
    /// since it went idle, and then it must not carry a request. The
    /// reactor's readiness answers first, with no system call; only a
    /// socket that became readable while idle (an end, stray bytes, or
    /// TLS's own records) is read to tell which.
    pub fn is_usable(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut context = Context::from_waker(Waker::noop());
        let socket = match &self.stream {
            Stream::Tcp(socket) => socket,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        if socket.poll_read_ready(&mut context).is_pending() {
            return true;
        }
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        Pin::new(&mut self.stream)
            .poll_read(&mut context, &mut probe)
            .is_pending()
    }

    fn poll_fill(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        super::io::poll_fill(&mut self.stream, context, &mut self.read)
    }
}

/// Sends `request` on `connection` and waits for the response head. The
/// request's URI must be in origin form; its headers are written as they
/// are, with the framing header decided here. 1xx responses other than 101
/// are read and dropped, as hyper's client does.
pub async fn send<B>(
    mut connection: Connection,
    request: Request<B>,
) -> Result<(http::response::Parts, ResponseBody<B>), SendFailure<B>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let (head, body) = request.into_parts();
    let framing = RequestFraming::of(
        &head.headers,
        body.is_end_stream(),
        body.size_hint().exact(),
    );
    let target = head.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut writer = Writer::new(std::mem::take(&mut connection.write));
    encode::write_request_head(
        &mut writer.staging,
        &head.method,
        target,
        &head.headers,
        framing,
    );
    // The head goes out before any of the body is read, so a head that
    // could not be written at all leaves the request whole.
    if let Err(error) = poll_fn(|context| writer.poll_flush(&mut connection.stream, context)).await
    {
        if writer.written == 0 {
            return Err(SendFailure::NotSent(
                Box::new(Request::from_parts(head, body)),
                error,
            ));
        }
        return Err(SendFailure::Failed(Box::new(UpstreamError::Io(error))));
    }
    let to_head = head.method == Method::HEAD;
    let sending = match framing {
        RequestFraming::Empty => None,
        RequestFraming::Length(length) => Some(Sending {
            body,
            remaining: Some(length),
        }),
        RequestFraming::Chunked => Some(Sending {
            body,
            remaining: None,
        }),
    };
    let mut exchange = Box::new(Exchange {
        connection,
        writer,
        sending,
        body_failed: None,
        write_failed: false,
        received_any: false,
    });
    let response = match poll_fn(|context| exchange.poll_head(context, to_head)).await {
        Ok(response) => response,
        Err(NoHead {
            error,
            nothing_received: true,
        }) => {
            return Err(SendFailure::Unanswered {
                error,
                head: Box::new(head),
            })
        }
        Err(NoHead { error, .. }) => return Err(SendFailure::Failed(error)),
    };
    let reading = match response.framing {
        BodyFraming::Empty => Reading::Done,
        BodyFraming::Length(length) => Reading::Length(length),
        BodyFraming::Chunked => Reading::Chunked(ChunkedDecoder::new(
            RESPONSE_LIMITS.max_bytes,
            RESPONSE_LIMITS.max_headers,
        )),
        BodyFraming::UntilClose => Reading::UntilClose,
    };
    let body = ResponseBody {
        exchange: Some(exchange),
        reading,
        // After a 101 the connection speaks another protocol: a tunnel's.
        keep_alive: response.keep_alive && response.parts.status != StatusCode::SWITCHING_PROTOCOLS,
    };
    Ok((response.parts, body))
}

/// One request and response on a connection.
struct Exchange<B> {
    connection: Connection,
    writer: Writer,
    /// The request body still going out; None once it all went.
    sending: Option<Sending<B>>,
    /// The request body failed (the client's side): the exchange ends.
    body_failed: Option<BoxError>,
    /// Writing failed: nothing more is sent and the connection is not
    /// reused, but a response on its way is still read.
    write_failed: bool,
    received_any: bool,
}

struct Sending<B> {
    body: B,
    /// Bytes the Content-Length still promises; None for chunked.
    remaining: Option<u64>,
}

impl<B> Exchange<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Moves the request body along as far as it goes without waiting.
    fn poll_send(&mut self, context: &mut Context<'_>) {
        while !self.write_failed && self.body_failed.is_none() {
            match self.writer.poll_flush(&mut self.connection.stream, context) {
                Poll::Pending => return,
                Poll::Ready(Err(_)) => {
                    self.write_failed = true;
                    self.sending = None;
                    return;
                }
                Poll::Ready(Ok(())) => {}
            }
            let Some(sending) = &mut self.sending else {
                return;
            };
            let frame = match Pin::new(&mut sending.body).poll_frame(context) {
                Poll::Pending => return,
                Poll::Ready(None) => None,
                Poll::Ready(Some(Err(error))) => {
                    self.body_failed = Some(error.into());
                    self.sending = None;
                    return;
                }
                Poll::Ready(Some(Ok(frame))) => Some(frame),
            };
            if let Err(error) = self.encode(frame) {
                self.body_failed = Some(Box::new(error));
                self.sending = None;
            }
        }
    }

    /// Puts one frame of the request body (None: its end) on the wire.
    fn encode(&mut self, frame: Option<Frame<Bytes>>) -> Result<(), UpstreamError> {
        let Some(sending) = &mut self.sending else {
            return Ok(());
        };
        let Some(frame) = frame else {
            match sending.remaining {
                None => encode::last_chunk(&mut self.writer.staging, None),
                Some(0) => {}
                Some(_) => return Err(self.length_error()),
            }
            self.sending = None;
            return Ok(());
        };
        match frame.into_data() {
            Ok(data) => {
                if let Some(remaining) = &mut sending.remaining {
                    if data.len() as u64 > *remaining {
                        return Err(self.length_error());
                    }
                    *remaining -= data.len() as u64;
                    self.writer.data(data, false);
                } else if !data.is_empty() {
                    self.writer.data(data, true);
                }
            }
            Err(frame) => {
                // Trailers end the body; only chunked framing carries them.
                if sending.remaining.is_none() {
                    encode::last_chunk(&mut self.writer.staging, frame.trailers_ref());
                    self.sending = None;
                }
            }
        }
        Ok(())
    }

    fn length_error(&mut self) -> UpstreamError {
        let declared = self
            .sending
            .take()
            .and_then(|sending| sending.remaining)
            .unwrap_or_default();
        UpstreamError::BodyLength(declared)
    }

    fn poll_head(
        &mut self,
        context: &mut Context<'_>,
        to_head: bool,
    ) -> Poll<Result<super::response::ResponseHead, NoHead>> {
        loop {
            self.poll_send(context);
            if let Some(error) = self.body_failed.take() {
                return Poll::Ready(Err(NoHead {
                    error,
                    nothing_received: false,
                }));
            }
            let parsed = if self.connection.read.is_empty() {
                Ok(None)
            } else {
                parse_response(&mut self.connection.read, to_head)
            };
            match parsed {
                Err(error) => return Poll::Ready(Err(self.failed(error.into()))),
                Ok(Some(head))
                    if head.parts.status.is_informational()
                        && head.parts.status != StatusCode::SWITCHING_PROTOCOLS => {}
                Ok(Some(head)) => return Poll::Ready(Ok(head)),
                Ok(None) => match ready!(self.connection.poll_fill(context)) {
                    Ok(0) => {
                        return Poll::Ready(Err(self.failed(UpstreamError::ClosedBeforeResponse)))
                    }
                    Ok(_) => self.received_any = true,
                    Err(error) => return Poll::Ready(Err(self.failed(error.into()))),
                },
            }
        }
    }

    fn failed(&self, error: UpstreamError) -> NoHead {
        NoHead {
            error: Box::new(error),
            nothing_received: !self.received_any,
        }
    }

    /// The request went out whole and nothing failed on the way.
    fn request_sent(&self) -> bool {
        self.sending.is_none()
            && self.writer.is_empty()
            && !self.write_failed
            && self.body_failed.is_none()
    }
}

/// Where the response body stands.
#[derive(Debug)]
enum Reading {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
    /// Broke off with an error: nothing more is read.
    Failed,
}

impl<B> ResponseBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// The connection, when this exchange ended cleanly on it and the
    /// backend keeps it alive: the response read to its end with nothing
    /// after it, the request body sent whole.
    pub fn take_reusable(&mut self) -> Option<Connection> {
        let exchange = self.exchange.as_ref()?;
        let fit = matches!(self.reading, Reading::Done)
            && self.keep_alive
            && exchange.request_sent()
            && exchange.connection.read.is_empty();
        if !fit {
            return None;
        }
        let Exchange {
            mut connection,
            writer,
            ..
        } = *self.exchange.take()?;
        connection.write = writer.staging;
        Some(connection)
    }

    /// The connection after a 101 response, for a tunnel.
    pub fn into_upgraded(mut self) -> Option<Upgraded> {
        let exchange = *self.exchange.take()?;
        Some(Upgraded {
            stream: exchange.connection.stream,
            read_ahead: exchange.connection.read.freeze(),
        })
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.reading = Reading::Failed;
        self.exchange = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(exchange) = this.exchange.as_mut() else {
                return Poll::Ready(None);
            };
            exchange.poll_send(context);
            if let Some(error) = exchange.body_failed.take() {
                return this.fail(error);
            }
            let read = &mut exchange.connection.read;
            let frame = match &mut this.reading {
                Reading::Done | Reading::Failed => return Poll::Ready(None),
                Reading::Length(remaining) => split_length(read, remaining).map(Frame::data),
                Reading::Chunked(decoder) => match decoder.decode(read) {
                    Ok(None) => None,
                    Ok(Some(Decoded::Data(data))) => Some(Frame::data(data)),
                    Ok(Some(Decoded::Trailers(trailers))) => {
                        this.reading = Reading::Done;
                        Some(Frame::trailers(trailers))
                    }
                    Ok(Some(Decoded::End)) => {
                        this.reading = Reading::Done;
                        return Poll::Ready(None);
                    }
                    Err(error) => return this.fail(Box::new(UpstreamError::Chunked(error))),
                },
                Reading::UntilClose => {
                    (!read.is_empty()).then(|| Frame::data(read.split().freeze()))
                }
            };
            if let Some(frame) = frame {
                if matches!(this.reading, Reading::Length(0)) {
                    this.reading = Reading::Done;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            match ready!(exchange.connection.poll_fill(context)) {
                Ok(0) if matches!(this.reading, Reading::UntilClose) => {
                    this.reading = Reading::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(Box::new(UpstreamError::ClosedEarly)),
                Ok(_) => {}
                Err(error) => return this.fail(Box::new(UpstreamError::Io(error))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.reading, Reading::Done | Reading::Failed)
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading {
            Reading::Length(remaining) => SizeHint::with_exact(remaining),
            Reading::Done | Reading::Failed => SizeHint::with_exact(0),
            Reading::Chunked(_) | Reading::UntilClose => SizeHint::default(),
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("http1::upstream::ResponseBody")
            .field("reading", &self.reading)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "http1::upstream::Connection({:?})", self.stream)
    }
}
