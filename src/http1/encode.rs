//! Heads and body framing on the wire: the status line of a response to a
//! client or the request line of a request to a backend, the headers luas
//! passes on, and the framing headers it decides itself.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body is sent: HEAD, 1xx, 204, 304.
    NoBody,
    Length(u64),
    Chunked,
    /// The body runs until the connection closes (an HTTP/1.0 client and a
    /// body of unknown length).
    UntilClose,
}

/// What the response's head needs from its request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    pub head: bool,
    pub version: Version,
}

impl RequestFacts {
    pub fn of(method: &Method, version: Version) -> Self {
        Self {
            head: *method == Method::HEAD,
            version,
        }
    }
}

/// Statuses whose responses never have a body (RFC 9110 §6.4.1), whatever
/// their framing fields say.
pub fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Decides the framing from the status, the headers and what the body says
/// of its length (`exact`, None when unknown).
pub fn framing(
    request: RequestFacts,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
) -> ResponseFraming {
    if request.head || bodiless(status) {
        return ResponseFraming::NoBody;
    }
    if let Some(length) = content_length(headers) {
        return ResponseFraming::Length(length);
    }
    match exact {
        Some(length) => ResponseFraming::Length(length),
        None if request.version == Version::HTTP_11 => ResponseFraming::Chunked,
        None => ResponseFraming::UntilClose,
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

/// Writes the status line and headers. `keep_alive` false adds
/// `connection: close`; an HTTP/1.0 client kept alive is told so.
pub fn write_head(
    out: &mut BytesMut,
    request: RequestFacts,
    status: StatusCode,
    headers: &HeaderMap,
    framing: ResponseFraming,
    keep_alive: bool,
) {
    out.reserve(64 + headers.len() * 32);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    let no_length = status.is_informational() || status == StatusCode::NO_CONTENT;
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || (no_length && name == header::CONTENT_LENGTH)
        {
            continue;
        }
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        ResponseFraming::Length(length) => put_content_length(out, headers, length),
        ResponseFraming::Chunked => put_field(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        put_field(out, b"connection", b"upgrade");
    } else if !keep_alive {
        put_field(out, b"connection", b"close");
    } else if request.version == Version::HTTP_10 {
        put_field(out, b"connection", b"keep-alive");
    }
    if !headers.contains_key(header::DATE) {
        DATE.with(|date| put_field(out, b"date", date.borrow_mut().now()));
    }
    out.put_slice(b"\r\n");
}

/// How a request's body is delimited on the wire to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body (and no framing header beyond what the request carries).
    Empty,
    Length(u64),
    Chunked,
}

impl RequestFraming {
    /// From the request's Content-Length when it has one, else from what
    /// the body knows: nothing (`end_stream`), its exact length, or chunked.
    pub fn of(headers: &HeaderMap, end_stream: bool, exact: Option<u64>) -> Self {
        if end_stream {
            return Self::Empty;
        }
        match content_length(headers).or(exact) {
            Some(length) => Self::Length(length),
            None => Self::Chunked,
        }
    }
}

/// Writes a request line in origin form and the headers; the framing
/// header is `framing`'s (any Transfer-Encoding in `headers` is dropped,
/// and so is Content-Length when the body goes chunked).
pub fn write_request_head(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.reserve(32 + target.len() + headers.len() * 32);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    let chunked = framing == RequestFraming::Chunked;
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING || (chunked && name == header::CONTENT_LENGTH) {
            continue;
        }
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        RequestFraming::Length(length) => put_content_length(out, headers, length),
        RequestFraming::Chunked => put_field(out, b"transfer-encoding", b"chunked"),
        RequestFraming::Empty => {}
    }
    out.put_slice(b"\r\n");
}

/// The line before a chunk of `length` bytes.
pub fn chunk_start(out: &mut BytesMut, length: usize) {
    put_number(out, length as u64, 16);
    out.put_slice(b"\r\n");
}

/// The last chunk, with the trailers when the client accepts them.
pub fn last_chunk(out: &mut BytesMut, trailers: Option<&HeaderMap>) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// `content-length`, unless the passed-on fields already carry it.
fn put_content_length(out: &mut BytesMut, headers: &HeaderMap, length: u64) {
    if !headers.contains_key(header::CONTENT_LENGTH) {
        out.put_slice(b"content-length: ");
        put_number(out, length, 10);
        out.put_slice(b"\r\n");
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// `value` in base `radix` (10 or 16), lowercase, without a copy through a
/// String.
fn put_number(out: &mut BytesMut, mut value: u64, radix: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(value % radix) as usize];
        value /= radix;
        if value == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// The IMF-fixdate of the current second, formatted once per second per
/// thread rather than per response.
struct CachedDate {
    second: u64,
    text: HeaderValue,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            self.text = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                .unwrap_or(HeaderValue::from_static(""));
        }
        self.text.as_bytes()
    }
}

thread_local! {
    static DATE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate {
            second: u64::MAX,
            text: HeaderValue::from_static(""),
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_11: RequestFacts = RequestFacts {
        head: false,
        version: Version::HTTP_11,
    };

    fn head_text(
        status: StatusCode,
        headers: &HeaderMap,
        framing: ResponseFraming,
        keep: bool,
    ) -> String {
        let mut out = BytesMut::new();
        write_head(&mut out, GET_11, status, headers, framing, keep);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn framing_is_decided_by_status_length_and_version() {
        let empty = HeaderMap::new();
        let mut sized = HeaderMap::new();
        sized.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(
            framing(GET_11, StatusCode::OK, &sized, None),
            ResponseFraming::Length(12)
        );
        assert_eq!(
            framing(GET_11, StatusCode::OK, &empty, Some(3)),
            ResponseFraming::Length(3)
        );
        assert_eq!(
            framing(GET_11, StatusCode::OK, &empty, None),
            ResponseFraming::Chunked
        );
        assert_eq!(
            framing(GET_11, StatusCode::NO_CONTENT, &empty, None),
            ResponseFraming::NoBody
        );
        assert_eq!(
            framing(GET_11, StatusCode::NOT_MODIFIED, &sized, None),
            ResponseFraming::NoBody
        );
        let head = RequestFacts::of(&Method::HEAD, Version::HTTP_11);
        assert_eq!(
            framing(head, StatusCode::OK, &sized, None),
            ResponseFraming::NoBody
        );
        let old = RequestFacts::of(&Method::GET, Version::HTTP_10);
        assert_eq!(
            framing(old, StatusCode::OK, &empty, None),
            ResponseFraming::UntilClose
        );
    }

    #[test]
    fn heads_carry_framing_connection_and_date() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let text = head_text(StatusCode::OK, &headers, ResponseFraming::Chunked, false);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\ndate: "), "{text}");
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        let text = head_text(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            ResponseFraming::Length(0),
            true,
        );
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: "),
            "{text}"
        );
    }

    #[test]
    fn chunk_lines_are_hex() {
        let mut out = BytesMut::new();
        chunk_start(&mut out, 0x1a2f);
        chunk_start(&mut out, 0);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        last_chunk(&mut out, Some(&trailers));
        assert_eq!(&out[..], b"1a2f\r\n0\r\n0\r\ngrpc-status: 0\r\n\r\n");
    }

    #[test]
    fn request_heads_carry_the_framing_decided_here() {
        let head = |headers: &HeaderMap, framing: RequestFraming| {
            let mut out = BytesMut::new();
            write_request_head(&mut out, &Method::POST, "/a?b", headers, framing);
            String::from_utf8(out.to_vec()).unwrap()
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("x"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            head(&headers, RequestFraming::Length(5)),
            "POST /a?b HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n"
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("9"));
        assert_eq!(
            head(&headers, RequestFraming::Chunked),
            "POST /a?b HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            RequestFraming::of(&headers, false, Some(3)),
            RequestFraming::Length(9)
        );
        let empty = HeaderMap::new();
        assert_eq!(
            RequestFraming::of(&empty, true, None),
            RequestFraming::Empty
        );
        assert_eq!(
            RequestFraming::of(&empty, false, Some(3)),
            RequestFraming::Length(3)
        );
        assert_eq!(
            RequestFraming::of(&empty, false, None),
            RequestFraming::Chunked
        );
    }
}
