//! A request body read straight from the client's connection, by whichever
//! task forwards it, without a channel or a task in between.
//!
//! The connection's read half, the bytes read ahead and the body's framing
//! state live in one [`Inbound`] per connection, behind a mutex that only
//! the connection's task and the current request's body ever take (never
//! at once for long: each poll locks, reads, unlocks). Each request gets a
//! new generation: a body that outlives its request (a backend answered
//! before reading it) reads nothing more, so it can never take the next
//! request's bytes as its own.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;

use super::chunked::{ChunkError, ChunkedDecoder, Decoded};
use super::head::{Framing, HeadLimits};
use super::io::ClientRead;
use super::read_buffers;

/// Bytes asked of the socket per read while a head or a body is read.
pub const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client closed its connection before the request body ended")]
    Closed,
    #[error("reading the request body failed: {0}")]
    Io(#[source] io::Error),
    #[error("the request body's chunked framing is invalid: {0}")]
    Chunked(#[source] ChunkError),
    #[error("the request body was cut off: its request is over")]
    Abandoned,
}

/// Where the current request's body stands.
#[derive(Debug)]
pub enum BodyState {
    /// No body, or read to its end.
    Done,
    Length(u64),
    Chunked(ChunkedDecoder),
    /// It failed; the connection cannot carry another request.
    Failed,
}

/// A client connection's inbound side, shared by its task and the body
/// of its current request.
#[derive(Debug)]
pub struct Inbound {
    state: Mutex<InboundState>,
    /// The body wants the client told `100 Continue`.
    continue_wanted: Notify,
}

#[derive(Debug)]
pub struct InboundState {
    /// None once the connection was handed to an upgrade.
    pub io: Option<ClientRead>,
    /// Bytes read and not used yet; empty (and unallocated) while idle.
    pub buffer: BytesMut,
    pub body: BodyState,
    /// The current request's generation; bodies of older ones read nothing.
    pub generation: u64,
    /// Set by a request with `Expect: 100-continue` until it is asked for.
    pub expect_continue: bool,
}

impl Drop for InboundState {
    fn drop(&mut self) {
        self.release_buffer();
    }
}

impl Inbound {
    pub fn new(io: ClientRead, read_ahead: BytesMut) -> Self {
        Self {
            state: Mutex::new(InboundState {
                io: Some(io),
                buffer: read_ahead,
                body: BodyState::Done,
                generation: 0,
                expect_continue: false,
            }),
            continue_wanted: Notify::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, InboundState> {
        // A panic while holding it leaves bytes, not broken invariants that
        // matter more than the connection: go on with what is there.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the body of a new request in a new generation: None when the
    /// request has none. A chunked body's trailers are held to `limits`,
    /// the head's.
    pub fn begin(
        self: &Arc<Self>,
        framing: Framing,
        expect_continue: bool,
        limits: &HeadLimits,
    ) -> Option<Body> {
        let mut state = self.lock();
        state.generation += 1;
        state.expect_continue = expect_continue && framing != Framing::Empty;
        state.body = match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(length) => BodyState::Length(length),
            Framing::Chunked => {
                BodyState::Chunked(ChunkedDecoder::new(limits.max_bytes, limits.max_headers))
            }
        };
        (framing != Framing::Empty).then(|| Body {
            inbound: self.clone(),
            generation: state.generation,
            ended: false,
        })
    }

    /// Resolves once a body asked for `100 Continue`.
    pub async fn continue_wanted(&self) {
        self.continue_wanted.notified().await;
    }
}

/// The next piece of a body framed by Content-Length, from what `buffer`
/// holds: at most `remaining` bytes, which it counts down. None when the
/// buffer is empty. Client requests and backend responses both read with it.
pub(crate) fn split_length(buffer: &mut BytesMut, remaining: &mut u64) -> Option<Bytes> {
    if buffer.is_empty() {
        return None;
    }
    let take = usize::try_from(*remaining).map_or(buffer.len(), |left| left.min(buffer.len()));
    *remaining -= take as u64;
    Some(buffer.split_to(take).freeze())
}

impl InboundState {
    /// Ready once the client has sent something (or closed), holding no
    /// buffer while it waits. Plain TCP asks the reactor, with no system
    /// call. TLS cannot be asked without reading, since rustls decrypts
    /// whole records into its own buffer: its first bytes are read into a
    /// small array on the stack and kept, so an idle TLS connection does
    /// not hold the 8 KiB read buffer either.
    pub fn poll_idle(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match self.io.as_mut() {
            None => Poll::Ready(Ok(())),
            Some(read @ ClientRead::Tcp(_)) => read.poll_read_ready(context),
            Some(read @ ClientRead::Tls(_)) => {
                let mut first = [0u8; 512];
                let mut filled = ReadBuf::new(&mut first);
                std::task::ready!(Pin::new(read).poll_read(context, &mut filled))?;
                // Nothing read is the end of input: the head's read finds it.
                if !filled.filled().is_empty() {
                    read_buffers::lend_if_none(&mut self.buffer);
                    self.buffer.extend_from_slice(filled.filled());
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Reads more bytes into the buffer: Ready(Ok(0)) at the end of input.
    pub fn poll_fill(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        read_buffers::lend_if_none(&mut self.buffer);
        super::io::poll_fill(io, context, &mut self.buffer)
    }

    /// Gives the read buffer back to the spare ones if nothing is left in
    /// it: the connection is going idle, holding none.
    pub fn release_buffer(&mut self) {
        if self.buffer.is_empty() {
            read_buffers::give_back(std::mem::take(&mut self.buffer));
        }
    }

    /// The next piece of the current body. Used by [`Body`] and by the
    /// connection when it drains a body nobody read.
    pub fn poll_body(
        &mut self,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            let frame = match &mut self.body {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Failed => return Poll::Ready(Some(Err(BodyError::Abandoned))),
                BodyState::Length(remaining) => {
                    let data = split_length(&mut self.buffer, remaining);
                    if data.is_some() && *remaining == 0 {
                        self.body = BodyState::Done;
                    }
                    data.map(Frame::data)
                }
                BodyState::Chunked(decoder) => match decoder.decode(&mut self.buffer) {
                    Ok(None) => None,
                    Ok(Some(Decoded::Data(data))) => Some(Frame::data(data)),
                    Ok(Some(Decoded::Trailers(trailers))) => {
                        self.body = BodyState::Done;
                        Some(Frame::trailers(trailers))
                    }
                    Ok(Some(Decoded::End)) => {
                        self.body = BodyState::Done;
                        return Poll::Ready(None);
                    }
                    Err(error) => {
                        self.body = BodyState::Failed;
                        return Poll::Ready(Some(Err(BodyError::Chunked(error))));
                    }
                },
            };
            if let Some(frame) = frame {
                return Poll::Ready(Some(Ok(frame)));
            }
            match self.poll_fill(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.body = BodyState::Failed;
                    return Poll::Ready(Some(Err(BodyError::Closed)));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => {
                    self.body = BodyState::Failed;
                    return Poll::Ready(Some(Err(BodyError::Io(error))));
                }
            }
        }
    }

    pub fn body_done(&self) -> bool {
        matches!(self.body, BodyState::Done)
    }

    /// Once the response is written: true if the body was read to its end.
    /// Otherwise its [`Body`] can never read again, and what is left is
    /// the connection's to drain.
    pub fn finish_body(&mut self) -> bool {
        let done = self.body_done();
        if !done {
            self.generation += 1;
        }
        done
    }

    /// Ready once the client has closed its connection (or it broke),
    /// while a request whose body is read whole is being handled: the
    /// handler is then dropped, as hyper drops it. Bytes of a pipelined
    /// request are left where they are (TLS reads them into the buffer).
    pub fn poll_client_gone(&mut self, context: &mut Context<'_>) -> Poll<ClientGone> {
        if !self.body_done() {
            // Reading the body notices a close on its own.
            return Poll::Pending;
        }
        match self.io.as_mut() {
            None => Poll::Pending,
            Some(read @ ClientRead::Tcp(_)) => match read.poll_readable(context) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(ClientGone::Closed),
                Poll::Ready(Ok(_)) => Poll::Ready(ClientGone::SentMore),
            },
            Some(ClientRead::Tls(_)) => loop {
                if self.buffer.len() >= READ_CHUNK {
                    return Poll::Ready(ClientGone::SentMore);
                }
                match self.poll_fill(context) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(ClientGone::Closed),
                    Poll::Ready(Ok(_)) => {}
                }
            },
        }
    }
}

/// What [`InboundState::poll_client_gone`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientGone {
    Closed,
    /// The client sent more (a pipelined request): nothing more to watch.
    SentMore,
}

/// The body of one request on an HTTP/1.1 connection luas serves itself.
#[derive(Debug)]
pub struct Body {
    inbound: Arc<Inbound>,
    generation: u64,
    ended: bool,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let inbound = this.inbound.clone();
        let mut state = inbound.lock();
        if state.generation != this.generation {
            this.ended = true;
            return Poll::Ready(Some(Err(BodyError::Abandoned)));
        }
        if state.expect_continue {
            state.expect_continue = false;
            if state.buffer.is_empty() {
                inbound.continue_wanted.notify_one();
            }
        }
        let polled = state.poll_body(context);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => this.ended = true,
            Poll::Ready(Some(Ok(_))) => {
                // Said at once, as hyper's body does: a sender that stops at
                // the declared length never polls for the end.
                this.ended = state.body_done();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            return SizeHint::with_exact(0);
        }
        // Read from the framing state, not kept beside it: asked once or
        // twice per request (the sender choosing its framing), never per frame.
        let state = self.inbound.lock();
        if state.generation != self.generation {
            // Its request is over: it reads nothing more.
            return SizeHint::with_exact(0);
        }
        match &state.body {
            BodyState::Length(remaining) => SizeHint::with_exact(*remaining),
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Chunked(_) | BodyState::Failed => SizeHint::default(),
        }
    }
}
