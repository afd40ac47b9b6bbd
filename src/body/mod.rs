//! The body luas sends to a backend, never buffered whole unless a retry
//! needs a copy.
//!
//! [`RequestBody`] is the client's body streamed through with the listener's
//! size limit and stall timeout applied, or a small copy kept for replay when
//! a request may be retried, or (for a gRPC call that may be retried) the
//! streamed body kept as it goes by, in [`replay`]. [`IdleTimer`], the
//! bound on a body that stops making progress, serves the response body
//! (`proxy::response`) too. It sits below everything that sends: `proxy`
//! builds it, `client` and the pooled connections in `endpoint` carry it, and
//! `health_check` sends an empty one. The body going back to the client
//! carries the endpoint's in-flight guard and pooled connection, so it lives
//! above them, in `proxy::response`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

mod copy;
mod incoming;
mod replay;
pub(crate) use copy::{BodyCopy, CopiedBody, CopyReceiver};
pub(crate) use incoming::{Incoming, IncomingError};
pub(crate) use replay::ReplayBody;
pub(crate) use replay::Replayable;

/// Why a request body could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body stalled for {after:?}")]
    Stalled { after: Duration },
    #[error("reading the request body failed: {0}")]
    Client(#[source] IncomingError),
    /// A retry of a body too large to keep (a bug if ever seen: retries
    /// check first).
    #[error("the request body was larger than the retry buffer and cannot be sent again")]
    NotReplayable,
}

/// The body sent to a backend.
#[derive(Debug)]
pub enum RequestBody {
    Streaming(StreamingBody),
    /// A complete copy, cheap to clone for a retry.
    Buffered(Option<Bytes>),
    /// Streamed, and kept as it goes for a retry (gRPC).
    Replay(ReplayBody),
}

/// A client's body passed through as it arrives, with limits.
#[derive(Debug)]
pub struct StreamingBody {
    body: Incoming,
    limit: Option<u64>,
    seen: u64,
    /// Bounds the time the client keeps us waiting for its next bytes.
    stall: IdleTimer,
    /// The access log's byte count, when it is on.
    counted: Option<Arc<AtomicU64>>,
    progress: RequestProgress,
    /// A mirror's copy, kept as the body goes by.
    copy: Option<Box<BodyCopy>>,
}

/// How far the client's streamed body has come, for the response's
/// accounting: an endpoint that goes quiet while the request is still
/// streaming (a bidirectional gRPC call) or whose stream breaks because the
/// client's body failed is not at fault.
#[derive(Debug, Clone, Default)]
pub struct RequestProgress(Arc<std::sync::atomic::AtomicU8>);

// 0: still streaming.
const ENDED: u8 = 1;
const FAILED: u8 = 2;

impl RequestProgress {
    /// The whole body was read from the client.
    pub fn ended(&self) -> bool {
        self.0.load(Ordering::Relaxed) == ENDED
    }

    /// The client's body failed: too large, stalled or broken off.
    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Relaxed) == FAILED
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }
}

impl RequestBody {
    pub fn streaming(
        body: Incoming,
        limit: Option<u64>,
        stall_timeout: Duration,
        counted: Option<Arc<AtomicU64>>,
    ) -> Self {
        Self::Streaming(StreamingBody {
            body,
            limit,
            seen: 0,
            stall: IdleTimer::new(Some(stall_timeout)),
            counted,
            progress: RequestProgress::default(),
            copy: None,
        })
    }

    /// Gives a mirror a copy of this body: kept as a streamed body goes by,
    /// at once for a body held whole.
    pub(crate) fn copy_to(&mut self, mut copy: Box<BodyCopy>) {
        match self {
            Self::Streaming(streaming) => streaming.copy = Some(copy),
            Self::Buffered(data) => copy.finish_with(data.as_ref().unwrap_or(&Bytes::new())),
            // Built from a streamed body that has its copy already.
            Self::Replay(_) => {}
        }
    }

    /// How far a streamed body has come; None for a body held whole.
    pub fn progress(&self) -> Option<RequestProgress> {
        match self {
            Self::Streaming(streaming) => Some(streaming.progress.clone()),
            Self::Replay(replay) => Some(replay.progress()),
            Self::Buffered(_) => None,
        }
    }

    pub fn buffered(data: Bytes) -> Self {
        Self::Buffered((!data.is_empty()).then_some(data))
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
            Self::Buffered(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Self::Streaming(streaming) => streaming.poll_frame(cx),
            Self::Replay(replay) => Pin::new(replay).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Buffered(data) => data.is_none(),
            Self::Streaming(streaming) => streaming.body.is_end_stream(),
            Self::Replay(replay) => replay.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Buffered(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Self::Buffered(None) => SizeHint::with_exact(0),
            Self::Streaming(streaming) => streaming.body.size_hint(),
            Self::Replay(_) => SizeHint::default(),
        }
    }
}

impl StreamingBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = self.poll_inner(cx);
        match &polled {
            Poll::Ready(Some(Err(_))) => {
                self.progress.set(FAILED);
                self.copy = None;
            }
            Poll::Ready(None) => self.ended(),
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(copy), Some(data)) = (self.copy.as_deref_mut(), frame.data_ref()) {
                    copy.keep(data);
                }
                if self.body.is_end_stream() {
                    self.ended();
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn ended(&mut self) {
        self.progress.set(ENDED);
        if let Some(mut copy) = self.copy.take() {
            copy.finish();
        }
    }

    fn poll_inner(
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
                self.stall.progressed();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyError::Client(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if self.stall.expired(cx) => Poll::Ready(Some(Err(BodyError::Stalled {
                after: self.stall.limit().unwrap_or_default(),
            }))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Bounds the time a body keeps luas waiting for its next bytes, in either
/// direction: the clock runs from the moment the body is found pending
/// with no progress since, so time luas spends passing bytes on (a slow
/// reader on the other side) does not count.
///
/// The first wait costs no timer: the task wakes itself once and the
/// timer is armed only if the body is still pending at the next poll. A
/// body that comes through a channel (hyper's client hands a response body
/// over from its connection task) is almost always pending at its first
/// poll and ready at its second, so most responses never register a timer,
/// an allocation and two timer-wheel operations each (found in the A1
/// profile). The stall clock starts one poll later, microseconds.
#[derive(Debug)]
pub(crate) struct IdleTimer {
    limit: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A frame arrived since the timer was last armed.
    progressed: bool,
    /// The free first wait was taken (reset by progress while no timer
    /// exists).
    yielded: bool,
}

impl IdleTimer {
    /// `None`: never expires.
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            sleep: None,
            progressed: false,
            yielded: false,
        }
    }

    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// A frame went through.
    pub(crate) fn progressed(&mut self) {
        self.progressed = true;
        self.yielded = false;
    }

    /// Called when the body is pending: true once it has waited `limit`
    /// since it last made progress, or since it started waiting.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        if self.sleep.is_none() && !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return false;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if self.progressed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + limit);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep(limit))),
        };
        self.progressed = false;
        sleep.as_mut().poll(cx).is_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (counting.clone(), Waker::from(counting))
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_wait_yields_once_instead_of_arming_a_timer() {
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut timer = IdleTimer::new(Some(Duration::from_secs(1)));
        assert!(!timer.expired(&mut cx));
        assert!(timer.sleep.is_none(), "no timer for the first wait");
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            1,
            "the task is polled again"
        );
        // Ready at the next poll: progress, and the next wait is free again.
        timer.progressed();
        assert!(!timer.expired(&mut cx));
        assert!(timer.sleep.is_none());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_pending_at_the_next_poll_is_cut_after_the_limit() {
        let (_wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut timer = IdleTimer::new(Some(Duration::from_secs(1)));
        assert!(!timer.expired(&mut cx));
        assert!(!timer.expired(&mut cx));
        assert!(timer.sleep.is_some(), "armed at the second wait");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!timer.expired(&mut cx));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(timer.expired(&mut cx));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_nothing_expires_or_wakes() {
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut timer = IdleTimer::new(None);
        assert!(!timer.expired(&mut cx));
        assert!(!timer.expired(&mut cx));
        assert_eq!(wakes.0.load(Ordering::Relaxed), 0);
    }
}
