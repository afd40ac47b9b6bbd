//! The bytes of a request on their way to the backend.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::Stream;
use crate::http1::encode;

/// Request data below this size is copied beside its chunk framing, so a
/// small frame leaves in one write; larger data is written from its own
/// buffer.
const COPY_BELOW: usize = 8 * 1024;
/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 8;

/// Bytes waiting to be written: small pieces gathered in `staging`, large
/// data in `queue` ahead of it, all leaving in vectored writes.
#[derive(Default)]
pub(super) struct Writer {
    /// Written before `staging`.
    queue: VecDeque<Bytes>,
    pub(super) staging: BytesMut,
    /// Bytes written so far.
    pub(super) written: u64,
}

impl Writer {
    /// A writer that fills `staging`, a buffer kept from the connection's
    /// last request.
    pub(super) fn new(staging: BytesMut) -> Self {
        Self {
            staging,
            ..Self::default()
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.staging.is_empty()
    }

    pub(super) fn data(&mut self, data: Bytes, chunked: bool) {
        if chunked {
            encode::chunk_start(&mut self.staging, data.len());
        }
        if data.len() < COPY_BELOW {
            self.staging.put_slice(&data);
        } else {
            if !self.staging.is_empty() {
                self.queue.push_back(self.staging.split().freeze());
            }
            self.queue.push_back(data);
        }
        if chunked {
            self.staging.put_slice(b"\r\n");
        }
    }

    pub(super) fn poll_flush(
        &mut self,
        stream: &mut Stream,
        context: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = self.queue.len().min(MAX_SLICES - 1);
            for (slot, piece) in slices.iter_mut().zip(&self.queue).take(count) {
                *slot = IoSlice::new(piece);
            }
            if count == self.queue.len() && !self.staging.is_empty() {
                slices[count] = IoSlice::new(&self.staging);
                count += 1;
            }
            let written =
                ready!(Pin::new(&mut *stream).poll_write_vectored(context, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += written as u64;
            self.advance(written);
        }
        Pin::new(stream).poll_flush(context)
    }

    fn advance(&mut self, mut written: usize) {
        while written > 0 {
            match self.queue.front_mut() {
                Some(front) if written >= front.len() => {
                    written -= front.len();
                    self.queue.pop_front();
                }
                Some(front) => {
                    front.advance(written);
                    written = 0;
                }
                None => {
                    self.staging.advance(written);
                    written = 0;
                }
            }
        }
    }
}
