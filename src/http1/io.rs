//! The two halves of a client connection served by the HTTP/1.1 codec:
//! plain TCP or TLS, split so the request's body can be read by whichever
//! task forwards it while the connection's task writes the response.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use super::body::READ_CHUNK;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;

/// Reads what `io` has into `buffer`, growing it by [`READ_CHUNK`] when
/// less than a quarter of that is free: Ready(Ok(0)) at the end of input.
/// Both directions read with it: client requests and backend responses.
pub fn poll_fill<R: AsyncRead + Unpin>(
    io: &mut R,
    context: &mut Context<'_>,
    buffer: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if buffer.capacity() - buffer.len() < READ_CHUNK / 4 {
        buffer.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), context, buffer)
}

pub enum ClientRead {
    Tcp(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

pub enum ClientWrite {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for ClientRead {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Tcp(_) => "ClientRead::Tcp",
            Self::Tls(_) => "ClientRead::Tls",
        })
    }
}

impl std::fmt::Debug for ClientWrite {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Tcp(_) => "ClientWrite::Tcp",
            Self::Tls(_) => "ClientWrite::Tls",
        })
    }
}

pub fn split_tcp(stream: TcpStream) -> (ClientRead, ClientWrite) {
    let (read, write) = stream.into_split();
    (ClientRead::Tcp(read), ClientWrite::Tcp(write))
}

pub fn split_tls(stream: TlsStream<TcpStream>) -> (ClientRead, ClientWrite) {
    let (read, write) = tokio::io::split(stream);
    (ClientRead::Tls(read), ClientWrite::Tls(write))
}

impl ClientRead {
    /// Ready once the reactor says the socket can be read (bytes or the
    /// end), with no system call: an idle connection waits without a
    /// buffer, and the read that follows finds out what came. A `peek`
    /// here cost one `recvfrom` per request on top of the read. TLS is
    /// always ready, as in [`Self::poll_readable`]; an idle TLS connection
    /// waits in `InboundState::poll_idle` instead.
    pub fn poll_read_ready(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(read) => AsRef::<TcpStream>::as_ref(read).poll_read_ready(context),
            Self::Tls(_) => Poll::Ready(Ok(())),
        }
    }

    /// Ready once bytes (or the end) can be read, without reading them:
    /// Ok(0) at the end of input, else how many bytes were seen (at most 1). TLS decrypts whole
    /// records into its own buffer, so it is always "ready" (Ok(1)): its
    /// caller reads with a buffer.
    pub fn poll_readable(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(read) => {
                let mut byte = [0u8; 1];
                let mut peeked = ReadBuf::new(&mut byte);
                read.poll_peek(context, &mut peeked)
            }
            Self::Tls(_) => Poll::Ready(Ok(1)),
        }
    }
}

impl AsyncRead for ClientRead {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(read) => Pin::new(read).poll_read(context, buffer),
            Self::Tls(read) => Pin::new(read).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for ClientWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_write(context, bytes),
            Self::Tls(write) => Pin::new(write).poll_write(context, bytes),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_write_vectored(context, slices),
            Self::Tls(write) => Pin::new(write).poll_write_vectored(context, slices),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(write) => write.is_write_vectored(),
            Self::Tls(write) => write.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_flush(context),
            Self::Tls(write) => Pin::new(write).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_shutdown(context),
            Self::Tls(write) => Pin::new(write).poll_shutdown(context),
        }
    }
}

/// A client connection after a 101: the bytes already read past the
/// request head come first, then the socket.
#[derive(Debug)]
pub struct Upgraded {
    pub(crate) read: ClientRead,
    pub(crate) write: ClientWrite,
    pub(crate) read_ahead: Bytes,
}

/// Moves bytes read ahead of an upgrade into `buffer`, as much as fits:
/// an upgraded connection's reads serve those first, then the socket. False
/// when there were none left.
pub(crate) fn take_read_ahead(read_ahead: &mut Bytes, buffer: &mut ReadBuf<'_>) -> bool {
    if read_ahead.is_empty() {
        return false;
    }
    let take = read_ahead.len().min(buffer.remaining());
    buffer.put_slice(&read_ahead.split_to(take));
    true
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if take_read_ahead(&mut this.read_ahead, buffer) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.read).poll_read(context, buffer)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write_vectored(context, slices)
    }

    fn is_write_vectored(&self) -> bool {
        self.write.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(context)
    }
}

/// The client side of a 101, handed over once the response head is
/// written. Kept in the request's extensions like hyper's `OnUpgrade`,
/// which asks for `Clone`: clones share the one handover.
#[derive(Debug, Clone)]
pub struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

/// The connection's end of an [`OnUpgrade`].
pub type UpgradeSender = oneshot::Sender<Upgraded>;

impl OnUpgrade {
    pub fn pair() -> (UpgradeSender, Self) {
        let (sender, receiver) = oneshot::channel();
        (sender, Self(Arc::new(Mutex::new(Some(receiver)))))
    }

    /// The upgraded connection, once the 101 is written; an error if the
    /// connection ended first or another clone took it.
    pub async fn upgraded(self) -> io::Result<Upgraded> {
        let receiver = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let aborted = || {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the client connection closed before the upgrade",
            )
        };
        receiver.ok_or_else(aborted)?.await.map_err(|_| aborted())
    }
}
