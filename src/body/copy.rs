//! A bounded copy of a request body for a route's mirror: kept as the body
//! streams to the primary endpoint, handed to the mirror whole when the
//! body ends.
//!
//! The copy never slows the primary: it is kept beside the stream, never
//! read ahead of it. Its memory is bounded by the limit: a body that grows
//! past it drops what was kept and tells the mirror so. A body that never
//! ends (the client's body failed, the request was refused) drops the copy,
//! and the mirror reads that as incomplete. Sending the copy is `proxy`'s.

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

/// What the mirror gets of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CopiedBody {
    Whole(Bytes),
    /// Larger than the copy's limit.
    TooLarge,
}

/// The copying side, kept by the body the primary reads.
#[derive(Debug)]
pub(crate) struct BodyCopy {
    limit: u64,
    kept: Vec<Bytes>,
    size: u64,
    receivers: Vec<oneshot::Sender<CopiedBody>>,
}

/// The mirror's side: resolves when the body ended (or will not).
pub(crate) type CopyReceiver = oneshot::Receiver<CopiedBody>;

impl BodyCopy {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            kept: Vec::new(),
            size: 0,
            receivers: Vec::new(),
        }
    }

    /// Copies for several mirrors share one body: the largest limit holds
    /// for all, and each mirror checks its own.
    pub(crate) fn raise_limit(&mut self, limit: u64) {
        self.limit = self.limit.max(limit);
    }

    /// One more mirror that wants the copy.
    pub(crate) fn receiver(&mut self) -> CopyReceiver {
        let (sender, receiver) = oneshot::channel();
        self.receivers.push(sender);
        receiver
    }

    /// Keeps `data` (a cheap reference-counted clone), or gives up on the
    /// copy once it would pass the limit.
    pub(crate) fn keep(&mut self, data: &Bytes) {
        if self.receivers.is_empty() {
            return;
        }
        self.size += data.len() as u64;
        if self.size > self.limit {
            self.kept = Vec::new();
            for receiver in self.receivers.drain(..) {
                let _ = receiver.send(CopiedBody::TooLarge);
            }
            return;
        }
        if !data.is_empty() {
            self.kept.push(data.clone());
        }
    }

    /// The body ended: hands the copy to every mirror.
    pub(crate) fn finish(&mut self) {
        if self.receivers.is_empty() {
            return;
        }
        let body = match self.kept.len() {
            0 => Bytes::new(),
            1 => self.kept.pop().unwrap_or_default(),
            _ => {
                let mut whole = BytesMut::with_capacity(self.size as usize);
                for part in self.kept.drain(..) {
                    whole.extend_from_slice(&part);
                }
                whole.freeze()
            }
        };
        for receiver in self.receivers.drain(..) {
            let _ = receiver.send(CopiedBody::Whole(body.clone()));
        }
    }

    /// A body already held whole.
    pub(crate) fn finish_with(&mut self, body: &Bytes) {
        self.keep(body);
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_within_the_limit_arrives_whole() {
        let mut copy = BodyCopy::new(10);
        let first = copy.receiver();
        let second = copy.receiver();
        copy.keep(&Bytes::from_static(b"hello "));
        copy.keep(&Bytes::from_static(b"luas"));
        copy.finish();
        let whole = CopiedBody::Whole(Bytes::from_static(b"hello luas"));
        assert_eq!(first.await.unwrap(), whole);
        assert_eq!(second.await.unwrap(), whole);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_given_up_and_keeps_nothing() {
        let mut copy = BodyCopy::new(8);
        let receiver = copy.receiver();
        copy.keep(&Bytes::from_static(b"hello "));
        copy.keep(&Bytes::from_static(b"luas"));
        assert!(copy.kept.is_empty());
        copy.keep(&Bytes::from_static(b"more"));
        copy.finish();
        assert!(copy.kept.is_empty());
        assert_eq!(receiver.await.unwrap(), CopiedBody::TooLarge);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_reads_as_gone() {
        let mut copy = BodyCopy::new(8);
        let receiver = copy.receiver();
        copy.keep(&Bytes::from_static(b"part"));
        drop(copy);
        assert!(receiver.await.is_err());
    }

    #[tokio::test]
    async fn an_empty_body_is_an_empty_copy() {
        let mut copy = Box::new(BodyCopy::new(0));
        let receiver = copy.receiver();
        copy.finish_with(&Bytes::new());
        assert_eq!(receiver.await.unwrap(), CopiedBody::Whole(Bytes::new()));
    }
}
