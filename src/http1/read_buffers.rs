//! Spare read buffers, kept per thread, that client connections borrow
//! while they read a request and give back when they go idle or close.
//!
//! An idle keep-alive connection holds no read buffer (that is most of
//! what makes it small), so every request used to allocate a fresh
//! [`READ_CHUNK`] buffer, and the split that hands the head its bytes
//! allocated the buffer's shared header: with their frees, about 2.5 % of
//! a keep-alive request's instructions. A buffer given back keeps both,
//! once nothing else refers to its bytes. This module owns only the spare
//! buffers; when a connection borrows and gives back is `server`'s and
//! [`super::body`]'s business.

use std::cell::RefCell;

use bytes::BytesMut;

use super::body::READ_CHUNK;

/// Spare buffers kept per thread, at most: enough for the connections one
/// worker has reading at once, and 512 KiB a thread at the most.
const SPARE_PER_THREAD: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least [`READ_CHUNK`] bytes: a spare
/// one when this thread has one.
fn borrow() -> BytesMut {
    SPARE
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

/// Gives `buffer` room to read into when it has none (a connection that
/// went idle gave its own back): a spare one when this thread has one.
pub fn lend_if_none(buffer: &mut BytesMut) {
    if buffer.capacity() == 0 {
        *buffer = borrow();
    }
}

/// Keeps `buffer` for the next [`lend_if_none`] on this thread if it is empty,
/// its bytes are no longer referred to elsewhere (a request's head or body
/// still alive keeps them) and it has not grown past twice the usual size;
/// otherwise drops it.
pub fn give_back(mut buffer: BytesMut) {
    // Reclaimed first: the capacity to judge is the whole allocation's.
    if !buffer.is_empty() || !buffer.try_reclaim(READ_CHUNK) || buffer.capacity() > 2 * READ_CHUNK {
        return;
    }
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < SPARE_PER_THREAD {
            spare.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spare_count() -> usize {
        SPARE.with_borrow(Vec::len)
    }

    #[test]
    fn a_buffer_given_back_is_lent_again_with_its_room() {
        let mut buffer = borrow();
        buffer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let address = buffer.as_ptr();
        let head = buffer.split().freeze();
        drop(head);
        let before = spare_count();
        give_back(buffer);
        assert_eq!(spare_count(), before + 1);
        let again = borrow();
        assert_eq!(
            again.as_ptr(),
            address,
            "the same allocation, from its start"
        );
        assert!(again.is_empty());
        assert!(again.capacity() >= READ_CHUNK);
    }

    #[test]
    fn a_buffer_whose_bytes_are_still_held_is_not_kept() {
        let mut buffer = borrow();
        buffer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buffer.split().freeze();
        let before = spare_count();
        give_back(buffer);
        assert_eq!(spare_count(), before, "the head still refers to its bytes");
        assert_eq!(&head[..4], b"GET ");
    }

    #[test]
    fn unread_bytes_and_grown_buffers_are_not_kept() {
        let before = spare_count();
        let mut unread = borrow();
        unread.extend_from_slice(b"GET");
        give_back(unread);
        give_back(BytesMut::with_capacity(4 * READ_CHUNK));
        assert_eq!(spare_count(), before);
    }

    #[test]
    fn each_thread_keeps_a_bounded_number() {
        let kept = std::thread::spawn(|| {
            for _ in 0..SPARE_PER_THREAD + 10 {
                give_back(BytesMut::with_capacity(READ_CHUNK));
            }
            spare_count()
        })
        .join()
        .expect("the thread ran");
        assert_eq!(kept, SPARE_PER_THREAD);
    }
}
