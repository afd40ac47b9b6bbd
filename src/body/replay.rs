//! A streamed request body that can be sent again: what a gRPC retry needs,
//! since a gRPC call is a POST whose size is not declared up front.
//!
//! The first try streams the client's body as it arrives; what passes is
//! kept, up to a limit, in a state every try shares. A retry replays what
//! was kept and then goes on reading the client's body where the last try
//! left off, so an endpoint that answered before it read the whole request
//! (a load-shedding server answering UNAVAILABLE at once) does not make the
//! request unrepeatable. Once more than the limit has passed, nothing is
//! kept and no try but the one that read it can go on: the request is no
//! longer [`Replayable::is_replayable`]. The idea is linkerd2-proxy's
//! `ReplayBody`.
//!
//! The state is behind a mutex of its own, per request: it is taken for each
//! frame of the few requests that use it, never shared between requests.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::{BodyError, StreamingBody};

/// One try's view of a replayable body: the shared state and how many of
/// its chunks this try has sent.
#[derive(Debug)]
pub struct ReplayBody {
    shared: Arc<Mutex<Shared>>,
    /// Chunks of the body this try has yielded so far.
    position: usize,
}

/// Makes the tries of one request: the first, then one per retry.
#[derive(Debug, Clone)]
pub(crate) struct Replayable {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    rest: StreamingBody,
    /// Every chunk read from the client so far, while they fit `limit`.
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    /// Chunks read from the client so far, kept or not.
    chunks_read: usize,
    /// More than `limit` was read, or the body had trailers: only the try
    /// that read the most can go on.
    overflowed: bool,
    ended: bool,
}

impl Replayable {
    /// Wraps `body`, keeping up to `limit` bytes of it for retries.
    pub(crate) fn new(body: StreamingBody, limit: usize) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                rest: body,
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                chunks_read: 0,
                overflowed: false,
                ended: false,
            })),
        }
    }

    /// A try from the start of the body.
    pub(crate) fn body(&self) -> ReplayBody {
        ReplayBody {
            shared: self.shared.clone(),
            position: 0,
        }
    }

    /// True while a new try could send the whole body: everything read so
    /// far was kept.
    pub(crate) fn is_replayable(&self) -> bool {
        !lock(&self.shared).overflowed
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding it cannot leave the state half-written in a way
    // that matters more than the panic itself.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ReplayBody {
    pub(crate) fn progress(&self) -> super::RequestProgress {
        lock(&self.shared).rest.progress.clone()
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let mut shared = lock(&this.shared);
        if this.position < shared.chunks_read {
            if shared.overflowed {
                return Poll::Ready(Some(Err(BodyError::NotReplayable)));
            }
            let chunk = shared.kept[this.position].clone();
            this.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if shared.ended {
            return Poll::Ready(None);
        }
        let polled = shared.rest.poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    shared.chunks_read += 1;
                    this.position = shared.chunks_read;
                    if !shared.overflowed {
                        shared.kept_bytes += data.len();
                        if shared.kept_bytes > shared.limit {
                            shared.overflowed = true;
                            shared.kept = Vec::new();
                        } else {
                            shared.kept.push(data.clone());
                        }
                    }
                } else {
                    // Trailers are not kept: such a body is not sent again.
                    shared.overflowed = true;
                    shared.kept = Vec::new();
                }
                if shared.rest.body.is_end_stream() {
                    shared.ended = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                shared.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                // The client's body failed: no try can send it whole.
                shared.overflowed = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let shared = lock(&self.shared);
        self.position >= shared.chunks_read && (shared.ended || shared.rest.body.is_end_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::time::Duration;

    /// A client body from a real HTTP/1.1 connection on loopback: `parts`
    /// sent as chunks, one at a time as the server reads them.
    async fn client_body(parts: &'static [&'static str]) -> StreamingBody {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let mut request =
                String::from("POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n");
            for part in parts {
                request.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
            }
            request.push_str("0\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            // Held open until the server is done with it.
            let mut buffer = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let service =
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(request.into_body()).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                        Bytes,
                    >::new(
                    )))
                }
            });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
        );
        let incoming = receiver.recv().await.unwrap();
        match super::super::RequestBody::streaming(
            incoming.into(),
            None,
            Duration::from_secs(5),
            None,
        ) {
            super::super::RequestBody::Streaming(streaming) => streaming,
            _ => unreachable!("a streaming body"),
        }
    }

    async fn read_all(body: ReplayBody) -> Result<String, BodyError> {
        let bytes = body.collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_retry_replays_what_the_first_try_sent() {
        let replayable = Replayable::new(client_body(&["hello ", "world"]).await, 1024);
        assert_eq!(read_all(replayable.body()).await.unwrap(), "hello world");
        assert!(replayable.is_replayable());
        assert_eq!(read_all(replayable.body()).await.unwrap(), "hello world");
    }

    #[tokio::test]
    async fn a_retry_goes_on_where_an_abandoned_try_stopped() {
        let replayable = Replayable::new(client_body(&["one ", "two ", "three"]).await, 1024);
        // The first try sends one chunk, then its endpoint answers and the
        // try is dropped.
        let mut first = replayable.body();
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "one ");
        drop(first);
        assert!(replayable.is_replayable());
        assert_eq!(read_all(replayable.body()).await.unwrap(), "one two three");
    }

    #[tokio::test]
    async fn a_body_larger_than_the_limit_cannot_be_replayed() {
        let replayable = Replayable::new(client_body(&["0123456789", "0123456789"]).await, 15);
        assert_eq!(
            read_all(replayable.body()).await.unwrap(),
            "01234567890123456789"
        );
        assert!(!replayable.is_replayable());
        assert!(matches!(
            read_all(replayable.body()).await,
            Err(BodyError::NotReplayable)
        ));
    }
}
