//! luas's own HTTP/1.1 codec, both ways: parsing request heads from clients
//! and response heads from backends (on `httparse`, the parser hyper uses),
//! deciding a message's framing, decoding chunked bodies, and writing heads.
//!
//! It exists for memory and speed: a client connection served by it holds
//! no read or write buffer while it is idle between requests (see
//! `server::http1_connection`, which drives it), the request's own task
//! reads its body, and the same task writes the request to its backend and
//! reads the response ([`upstream`]), with no connection task between. The framing
//! rules are strict on purpose, since a lenient parser in front of other
//! servers is where request smuggling comes from: one Content-Length or one
//! `chunked` Transfer-Encoding, never both (400), no obs-fold, CRLF line
//! ends in chunked framing, and bounded sizes everywhere.
//!
//! This module owns bytes and framing only. What a request means is
//! `proxy`'s business; sockets, timeouts and keep-alive are `server`'s, and
//! which backend connection to use is `client`'s.
//! HTTP/2 stays with hyper.

pub mod body;
pub mod chunked;
pub mod encode;
pub mod head;
pub mod io;
pub mod read_buffers;
pub mod response;
pub mod upstream;

pub use body::{Body, BodyError, Inbound};
pub use head::{parse_request, Framing, HeadError, HeadLimits, RequestHead};
