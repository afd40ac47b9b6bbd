//! Serving one HTTP/1.1 client connection with luas's own codec (`http1`).
//!
//! The loop, one request at a time (pipelined requests wait their turn):
//! wait for bytes without a buffer (bounded by `header_read_timeout` before
//! the first request and `idle_timeout` between requests), read the head
//! within `header_read_timeout`, hand the request to `proxy::handle` (its
//! body is read by whichever task forwards it), write the response, and go
//! idle again holding no buffer. An HTTP/2 preface on the first bytes hands
//! the connection to hyper instead (`Outcome::Http2`).
//!
//! A head the codec refuses gets its status (400, 414, 431, 501) with
//! `connection: close`. A connection is closed after a response when the
//! client asked, when shutdown began, when a request body could not be
//! read to its end (within a small drain allowance), or when the response
//! could not be framed for keep-alive; unread input is then drained for a
//! moment before closing, so the client reads the answer rather than a
//! reset.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::HeaderMap;
use http::{Request, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use crate::body::Incoming;
use crate::config::{ListenerConfig, ListenerProtocol};
use crate::http1::body::{BodyState, ClientGone};
use crate::http1::encode::{self, RequestFacts, ResponseFraming};
use crate::http1::io::{ClientRead, ClientWrite, OnUpgrade, UpgradeSender, Upgraded};
use crate::http1::{self, HeadError, HeadLimits, Inbound};
use crate::proxy;
use crate::proxy::response::ResponseBody;
use crate::shutdown::ShutdownSignal;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Request body bytes luas reads and drops to keep a connection whose
/// handler did not read the whole body (nginx and hyper drain a little too).
const DRAIN_BYTES: u64 = 64 * 1024;
/// Time the drain of an unread body, or of input before a close, may take.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// Response data frames up to this size are copied next to the head or to
/// their chunk line, so most responses leave in one write.
const COALESCE_BYTES: usize = 16 * 1024;

/// What serving one HTTP/1.1 connection needs from its listener.
#[derive(Debug, Clone, Copy)]
pub(super) struct Http1Options {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub limits: HeadLimits,
    /// Look for an HTTP/2 preface in the first bytes (`protocol: auto`).
    pub detect_http2: bool,
}

impl Http1Options {
    /// A listener's options, from its config.
    pub(super) fn of(config: &ListenerConfig) -> Self {
        Self {
            header_read_timeout: config.limits.header_read_timeout,
            idle_timeout: config.limits.idle_timeout,
            limits: HeadLimits {
                max_bytes: config.limits.max_header_bytes,
                max_headers: config.limits.max_headers,
            },
            detect_http2: config.protocol == ListenerProtocol::Auto,
        }
    }
}

/// How a connection left the HTTP/1.1 loop.
pub(super) enum Outcome {
    Closed,
    /// It opened with the HTTP/2 preface: serve it with hyper.
    Http2(Upgraded),
}

/// When a wait ends: at the deadline the connection's timer is armed with
/// (a new connection's wait and first head, timed from its opening), or
/// `limit` after the wait begins.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Armed,
    After(Duration),
}

impl Deadline {
    /// The connection's first request keeps the armed deadline; a later
    /// one's wait gets `limit` from when it begins.
    fn of(first: bool, limit: Duration) -> Self {
        if first {
            Self::Armed
        } else {
            Self::After(limit)
        }
    }
}

/// Completes at `deadline`, on the connection's one timer. A timer per wait
/// for the next request cost an insert into tokio's timer wheel and a
/// removal for every request (the larger share of the 4.3 % the A1 profile
/// spent on timers), and each timer held in a state of the connection's
/// future made every idle connection larger. This one stays armed at the
/// deadline it has; when that comes early (the connection was busy in
/// between) it moves on to the current one.
///
/// The clock is read when this is first polled, not when it is made: in a
/// biased `select!` whose other branch is ready at once (a head that came
/// whole with its first bytes) it never is, and that wait reads no clock.
async fn expired(mut timer: Pin<&mut Sleep>, deadline: Deadline) {
    let deadline = match deadline {
        Deadline::Armed => timer.deadline(),
        Deadline::After(limit) => Instant::now() + limit,
    };
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    loop {
        timer.as_mut().await;
        if timer.deadline() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}

/// An async block, not an async fn, so the arguments are kept once in the
/// future every idle connection holds (see `Serving::serve_http1`).
#[allow(clippy::manual_async_fn)] // deliberately, for the future's size
pub(super) fn serve<'a>(
    read: ClientRead,
    mut write: ClientWrite,
    connection: &'a proxy::Connection,
    options: &'a Http1Options,
    signal: &'a ShutdownSignal,
) -> impl std::future::Future<Output = Outcome> + Send + 'a {
    async move {
        let mut signal = signal.clone();
        let inbound = Arc::new(Inbound::new(read, BytesMut::new()));
        let mut first = true;
        // Armed for a new connection's wait and head, which are timed from
        // its opening (nothing sent yet is a slow head too); a kept-alive
        // connection's wait from its last answer, its head from its first
        // byte. It stays at this first deadline until the first head is read.
        let idle_timer = tokio::time::sleep(options.header_read_timeout);
        tokio::pin!(idle_timer);
        loop {
            // Idle: wait for the next request's first byte, holding no buffer.
            let idle = {
                let mut state = inbound.lock();
                // Idle connections hold no buffer: this is most of what an
                // idle keep-alive connection cost in hyper.
                state.release_buffer();
                state.buffer.is_empty()
            };
            if idle {
                let readable = poll_fn(|context| inbound.lock().poll_idle(context));
                let deadline = Deadline::of(first, options.idle_timeout);
                // The socket first: when the next request's bytes are what
                // woke the task, the shutdown signal is not polled again
                // (each poll of it takes a lock). A request that arrives as
                // shutdown begins is still answered, with `connection:
                // close`.
                tokio::select! {
                    biased;
                    ready = readable => if ready.is_err() {
                        return Outcome::Closed;
                    },
                    _ = signal.triggered() => return Outcome::Closed,
                    () = expired(idle_timer.as_mut(), deadline) => return Outcome::Closed,
                }
            }
            let deadline = Deadline::of(first, options.header_read_timeout);
            let head = tokio::select! {
                biased;
                head = poll_fn(|context| poll_head(&inbound, options, first, context)) => head,
                () = expired(idle_timer.as_mut(), deadline) => return Outcome::Closed,
            };
            let head = match head {
                Ok(Head::Request(head)) => *head,
                Ok(Head::Closed) => return Outcome::Closed,
                Ok(Head::Http2) => return http2_handover(&inbound, write),
                Err(error) => {
                    if refuse(&mut write, &error, connection).await {
                        close(&inbound, write, Linger::Yes, idle_timer.as_mut()).await;
                    }
                    return Outcome::Closed;
                }
            };
            first = false;
            // Boxed, once per request: a request's state (the pipeline's
            // future of several KiB, its response body, the writes) lives
            // only while the request does, not in every idle connection's
            // task.
            let exchanged = Box::pin(exchange(
                &inbound, &mut write, head, connection, options, &signal,
            ));
            match exchanged.await {
                Next::KeepAlive => {}
                Next::Close(linger) => {
                    close(&inbound, write, linger, idle_timer.as_mut()).await;
                    return Outcome::Closed;
                }
                Next::Upgrade(sender) => {
                    let (read, read_ahead) = {
                        let mut state = inbound.lock();
                        (state.io.take(), state.buffer.split().freeze())
                    };
                    if let Some(read) = read {
                        // The request's handler gets it through its OnUpgrade.
                        let _ = sender.send(Upgraded {
                            read,
                            write,
                            read_ahead,
                        });
                    }
                    return Outcome::Closed;
                }
                Next::Broken => return Outcome::Closed,
            }
        }
    }
}

enum Head {
    /// Boxed: the parts are large next to the other two.
    Request(Box<http1::RequestHead>),
    /// The client closed before sending a whole head.
    Closed,
    Http2,
}

fn poll_head(
    inbound: &Inbound,
    options: &Http1Options,
    first: bool,
    context: &mut std::task::Context<'_>,
) -> Poll<Result<Head, HeadError>> {
    let mut state = inbound.lock();
    loop {
        if !state.buffer.is_empty() {
            let seen = state.buffer.len().min(PREFACE.len());
            let maybe_http2 =
                first && options.detect_http2 && state.buffer[..seen] == PREFACE[..seen];
            if maybe_http2 && seen == PREFACE.len() {
                return Poll::Ready(Ok(Head::Http2));
            }
            // A prefix of the preface so far: read on before parsing.
            if !maybe_http2 {
                if let Some(head) = http1::parse_request(&mut state.buffer, &options.limits)? {
                    return Poll::Ready(Ok(Head::Request(Box::new(head))));
                }
            }
        }
        match state.poll_fill(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Ok(Head::Closed)),
            Poll::Ready(Ok(_)) => {}
        }
    }
}

enum Next {
    KeepAlive,
    /// Close after the response.
    Close(Linger),
    /// The 101 is written: the connection is the tunnel's.
    Upgrade(UpgradeSender),
    /// Writing failed: the client is gone.
    Broken,
}

/// One request and its response.
///
/// An async block that uses `head` where it was captured, not an async fn:
/// an async fn moves its arguments into locals of its own, and this future
/// would hold the request's head twice.
#[allow(clippy::manual_async_fn)] // deliberately, for the future's size
fn exchange<'a>(
    inbound: &'a Arc<Inbound>,
    write: &'a mut ClientWrite,
    mut head: http1::RequestHead,
    connection: &'a proxy::Connection,
    options: &'a Http1Options,
    signal: &'a ShutdownSignal,
) -> impl std::future::Future<Output = Next> + Send + 'a {
    async move {
        let (keep_alive, expect_continue, accepts_trailers) =
            (head.keep_alive, head.expect_continue, head.accepts_trailers);
        let facts = RequestFacts::of(&head.parts.method, head.parts.version);
        let body = match inbound.begin(head.framing, expect_continue, &options.limits) {
            Some(body) => Incoming::Http1(body),
            None => Incoming::Empty,
        };
        let upgrade = if proxy::headers::is_upgrade_request(&head.parts) {
            let (sender, on_upgrade) = OnUpgrade::pair();
            head.parts.extensions.insert(on_upgrade);
            Some(sender)
        } else {
            None
        };
        let request = Request::from_parts(head.parts, body);
        let Some(response) = handle(inbound, write, connection, request, expect_continue).await
        else {
            return Next::Broken;
        };

        let (parts, body) = response.into_parts();
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(sender)) = (parts.status, upgrade) {
            let mut out = BytesMut::new();
            encode::write_head(
                &mut out,
                facts,
                parts.status,
                &parts.headers,
                ResponseFraming::NoBody,
                true,
            );
            if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
                return Next::Broken;
            }
            return Next::Upgrade(sender);
        }

        // A 1xx as the final answer to a request that asked for no upgrade
        // leaves the client waiting for a response that never comes after it:
        // end the connection rather than keep it out of step.
        let wants_close = parts.status.is_informational()
            || !keep_alive
            || signal.is_triggered()
            || proxy::headers::connection_has_token(&parts.headers, "close")
            || matches!(inbound.lock().body, BodyState::Failed);
        let exact = body.size_hint().exact();
        let framing = encode::framing(facts, parts.status, &parts.headers, exact);
        let mut keep = !wants_close && framing != ResponseFraming::UntilClose;
        let mut out = BytesMut::with_capacity(512);
        encode::write_head(&mut out, facts, parts.status, &parts.headers, framing, keep);
        let written = write_body(write, out, body, framing, accepts_trailers).await;
        match written {
            Err(_) => return Next::Broken,
            Ok(false) => keep = false,
            Ok(true) => {}
        }
        if framing == ResponseFraming::UntilClose {
            return Next::Close(Linger::Yes);
        }

        // The request body: read to its end by the handler, or drained here.
        let body_done = inbound.lock().finish_body();
        if !body_done && (!keep || !drain_body(inbound).await) {
            return Next::Close(Linger::Yes);
        }
        if keep {
            Next::KeepAlive
        } else if !keep_alive && inbound.lock().buffer.is_empty() {
            // The client said this request was its last (`connection: close`,
            // or HTTP/1.0 without keep-alive), its body was read whole and
            // nothing came after it: it sends nothing more, so there is no
            // input to wait out. nginx lingers only when it suspects more
            // input too; waiting for the client's FIN cost A3 a read, two
            // reactor wake-ups and a timer per connection.
            Next::Close(Linger::No)
        } else {
            Next::Close(Linger::Yes)
        }
    }
}

/// Whether a close waits out the client's input first.
enum Linger {
    /// The client may still be sending (it did not ask to close, or sent
    /// more than was read): drain its input before closing.
    Yes,
    /// The client said it is done and everything it sent was read.
    No,
}

/// Hands the request to `proxy::handle` and waits for its response, while
/// answering `Expect: 100-continue` and watching for the client to leave.
/// None when the client is gone.
///
/// A future of its own, awaited at one point of `exchange`: the handler's
/// future (about 2.7 KiB) then shares its space in `exchange` with the
/// response writer's, where held across several awaits of `exchange` it
/// would sit beside it. The whole exchange is boxed per request, and every
/// byte of it is copied when it is.
async fn handle(
    inbound: &Inbound,
    write: &mut ClientWrite,
    connection: &proxy::Connection,
    request: Request<Incoming>,
    expect_continue: bool,
) -> Option<http::Response<ResponseBody>> {
    let handling = proxy::handle(connection, request);
    tokio::pin!(handling);
    let mut continue_sent = false;
    let mut watching = true;
    let client_gone = || poll_fn(|context| inbound.lock().poll_client_gone(context));
    loop {
        tokio::select! {
            biased;
            response = &mut handling => return Some(response),
            _ = inbound.continue_wanted(), if expect_continue && !continue_sent => {
                continue_sent = true;
                if write.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                    return None;
                }
            }
            gone = client_gone(), if watching => match gone {
                // Dropping the handler is how a request learns its client
                // left (a 499 in the access log, the backend's request
                // cancelled), as with hyper.
                ClientGone::Closed => return None,
                ClientGone::SentMore => watching = false,
            },
        }
    }
}

/// Writes the head and the body, coalescing small frames that are ready at
/// once into one write. Ok(false): the body ended short of its length (or
/// failed after the head), so the connection cannot be reused.
async fn write_body(
    write: &mut ClientWrite,
    mut out: BytesMut,
    body: ResponseBody,
    framing: ResponseFraming,
    accepts_trailers: bool,
) -> std::io::Result<bool> {
    if framing == ResponseFraming::NoBody {
        write.write_all(&out).await?;
        return Ok(true);
    }
    let mut body = std::pin::pin!(body);
    let mut sent: u64 = 0;
    loop {
        let frame = if let Some(frame) = body.frame().now_or_never() {
            frame
        } else {
            if !out.is_empty() {
                write.write_all(&out).await?;
                out.clear();
            }
            body.frame().await
        };
        match frame {
            None => {
                match framing {
                    ResponseFraming::Chunked => encode::last_chunk(&mut out, None),
                    ResponseFraming::Length(length) if sent != length => {
                        write.write_all(&out).await?;
                        return Ok(false);
                    }
                    _ => {}
                }
                write.write_all(&out).await?;
                return Ok(true);
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "the response body failed after its head: closing");
                write.write_all(&out).await?;
                return Ok(false);
            }
            Some(Ok(frame)) => {
                match frame.into_data() {
                    Ok(data) => {
                        if data.is_empty() {
                            continue;
                        }
                        let data = match framing {
                            ResponseFraming::Length(length) => {
                                let room = length - sent;
                                if data.len() as u64 > room {
                                    // More than the head promised: never let the
                                    // extra bytes pass as the next response.
                                    tracing::debug!("the response body is longer than its Content-Length: closing");
                                    let data = data.slice(..room as usize);
                                    write.write_all(&out).await?;
                                    write.write_all(&data).await?;
                                    return Ok(false);
                                }
                                data
                            }
                            _ => data,
                        };
                        sent += data.len() as u64;
                        if framing == ResponseFraming::Chunked {
                            encode::chunk_start(&mut out, data.len());
                        }
                        put_data(write, &mut out, data).await?;
                        if framing == ResponseFraming::Chunked {
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    Err(frame) => {
                        if let (Ok(trailers), ResponseFraming::Chunked) =
                            (frame.into_trailers(), framing)
                        {
                            encode::last_chunk(&mut out, accepts_trailers.then_some(&trailers));
                            write.write_all(&out).await?;
                            return Ok(true);
                        }
                    }
                }
            }
        }
    }
}

/// Small data joins the pending bytes; large data is written after them
/// without a copy.
async fn put_data(write: &mut ClientWrite, out: &mut BytesMut, data: Bytes) -> std::io::Result<()> {
    if data.len() <= COALESCE_BYTES {
        out.extend_from_slice(&data);
        return Ok(());
    }
    if !out.is_empty() {
        write.write_all(out).await?;
        out.clear();
    }
    write.write_all(&data).await
}

/// Reads and drops what is left of a request body nobody read, within the
/// drain allowance. True when it ended.
async fn drain_body(inbound: &Inbound) -> bool {
    let mut drained = 0u64;
    let draining = poll_fn(|context| {
        let mut state = inbound.lock();
        loop {
            match state.poll_body(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                Poll::Ready(Some(Ok(frame))) => {
                    drained += frame.data_ref().map_or(0, |data| data.len() as u64);
                    if drained > DRAIN_BYTES {
                        return Poll::Ready(false);
                    }
                }
            }
        }
    });
    tokio::time::timeout(DRAIN_TIME, draining)
        .await
        .unwrap_or(false)
}

/// Answers a head the codec refused; false when the client is gone.
async fn refuse(
    write: &mut ClientWrite,
    error: &HeadError,
    connection: &proxy::Connection,
) -> bool {
    tracing::debug!(remote = %connection.remote, %error, "refused a malformed request head");
    let facts = RequestFacts::of(&http::Method::GET, http::Version::HTTP_11);
    let mut out = BytesMut::new();
    encode::write_head(
        &mut out,
        facts,
        error.status(),
        &HeaderMap::new(),
        ResponseFraming::Length(0),
        false,
    );
    write.write_all(&out).await.is_ok() && write.flush().await.is_ok()
}

/// Ends the connection: the write side first, so the client sees the end
/// of the answer, then (with `Linger::Yes`) reads and drops input until the
/// client closes too (within a second and 256 KiB): closing a socket with
/// unread input sends a reset that can destroy the answer before the
/// client reads it. The drain is timed on the connection's one timer.
async fn close(inbound: &Inbound, mut write: ClientWrite, linger: Linger, timer: Pin<&mut Sleep>) {
    let _ = write.shutdown().await;
    let read = inbound.lock().io.take();
    if let (Some(mut read), Linger::Yes) = (read, linger) {
        // On the heap: an array here would be part of every idle
        // connection's task, which holds the largest of its futures' states.
        let mut sink = vec![0u8; 4096];
        let draining = async {
            let mut total = 0usize;
            while total < 256 * 1024 {
                match read.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => total += read,
                }
            }
        };
        tokio::select! {
            biased;
            () = draining => {}
            () = expired(timer, Deadline::After(DRAIN_TIME)) => {}
        }
    }
}

/// Hands a connection that opened with the HTTP/2 preface to hyper, with
/// the bytes read so far.
fn http2_handover(inbound: &Inbound, write: ClientWrite) -> Outcome {
    let mut state = inbound.lock();
    let read_ahead = state.buffer.split().freeze();
    match state.io.take() {
        Some(read) => Outcome::Http2(Upgraded {
            read,
            write,
            read_ahead,
        }),
        None => Outcome::Closed,
    }
}
