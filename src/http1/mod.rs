//! luas's own HTTP/1.1 codec for client connections: parsing request heads
//! (on `httparse`, the parser hyper uses), deciding a message's framing,
//! decoding chunked bodies, and writing response heads.
//!
//! It exists for memory and speed: a connection served by it holds no read
//! or write buffer while it is idle between requests (see `server::http1`,
//! which drives it), and the request's own task reads its body. The framing
//! rules are strict on purpose, since a lenient parser in front of other
//! servers is where request smuggling comes from: one Content-Length or one
//! `chunked` Transfer-Encoding, never both (400), no obs-fold, CRLF line
//! ends in chunked framing, and bounded sizes everywhere.
//!
//! This module owns bytes and framing only. What a request means is
//! `proxy`'s business, and sockets, timeouts and keep-alive are `server`'s.
//! HTTP/2 stays with hyper.

pub mod body;
pub mod chunked;
pub mod encode;
pub mod head;
pub mod io;

pub use body::{Body, BodyError, Inbound};
pub use head::{parse_request, Framing, HeadError, HeadLimits, RequestHead};
