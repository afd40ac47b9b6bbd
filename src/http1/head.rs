//! Request heads: from bytes to `http::request::Parts`, with the message's
//! framing decided by RFC 9112 §6 and every ambiguity refused.
//!
//! The head is parsed by `httparse` once, in the read buffer; where each
//! part lies is noted as offsets, the head's bytes are split off the
//! buffer, and header values and the target become slices of them (no copy
//! per header, and no second parse).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// hyper's bound on a request target; a longer one is answered with 414.
pub const MAX_TARGET_BYTES: usize = 65_534;
/// Header slots parsed on the stack; more (when a listener allows more)
/// take a heap slice.
const STACK_HEADERS: usize = 128;
/// Fields whose spans are kept on the stack; a head with more (browsers
/// send one or two dozen) spills its spans to the heap.
const INLINE_SPANS: usize = 32;

/// The fields a forwarded message may gain beyond those it came with: a
/// request's `X-Forwarded-For`, `-Proto`, `-Host`, `Via`, `x-request-id`
/// and `Host`.
const ROOM_FOR_ADDED_FIELDS: usize = 6;

/// The listener's bounds on a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// The whole head, request line included (431 beyond, or 414 when the
    /// request line alone does not fit).
    pub max_bytes: usize,
    /// Header fields (431 beyond).
    pub max_headers: usize,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: no Content-Length and no Transfer-Encoding, or a length of 0.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head and what it says about the connection.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a 100 before its body.
    pub expect_continue: bool,
    /// `Transfer-Encoding: trailers` is acceptable to the client (`TE: trailers`).
    pub accepts_trailers: bool,
}

/// Why a head was refused; each maps to the status the client gets before
/// its connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("the request head is larger than the listener's max_header_bytes or has more than max_headers fields")]
    TooLarge,
    #[error("the request target is too long")]
    TargetTooLong,
    #[error("a malformed request: {0}")]
    Malformed(&'static str),
    #[error("a transfer coding other than chunked")]
    UnsupportedTransferCoding,
}

impl HeadError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TargetTooLong => StatusCode::URI_TOO_LONG,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// Parses one request head from the front of `buffer`. Returns None when
/// the head is not complete yet (read more and call again); on success the
/// head's bytes are gone from `buffer`, which then starts with the body or
/// the next request.
pub fn parse_request(
    buffer: &mut BytesMut,
    limits: &HeadLimits,
) -> Result<Option<RequestHead>, HeadError> {
    let mut spans = FieldSpans::default();
    let parsed = with_slots(limits.max_headers, |slots| {
        let mut request = httparse::Request::new(&mut []);
        let length = match request.parse_with_uninit_headers(buffer, slots) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(parse_error(error)),
        };
        if length > limits.max_bytes {
            return Err(too_large(buffer, limits));
        }
        let (Some(method), Some(target), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Err(HeadError::Malformed("an incomplete request line"));
        };
        let line = RequestLine {
            method: Method::from_bytes(method.as_bytes())
                .map_err(|_| HeadError::Malformed("an invalid method"))?,
            target: Span::of(buffer, length, target.as_bytes())?,
            minor,
        };
        spans.record(buffer, length, request.headers)?;
        Ok(Some((length, line)))
    })?;
    let Some((length, line)) = parsed else {
        if buffer.len() > limits.max_bytes {
            return Err(too_large(buffer, limits));
        }
        return Ok(None);
    };
    let bytes = buffer.split_to(length).freeze();
    build(&bytes, line, spans.as_slice()).map(Some)
}

/// Runs `parse` with `count` header slots, on the stack when they fit.
/// They are left uninitialized: zeroing 128 slots (4 KiB) for every parse
/// showed in the profile, and httparse writes each slot before reading it.
pub(super) fn with_slots<'bytes, T>(
    count: usize,
    parse: impl FnOnce(&mut [MaybeUninit<httparse::Header<'bytes>>]) -> T,
) -> T {
    if count <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        parse(&mut slots[..count])
    } else {
        parse(&mut vec![MaybeUninit::uninit(); count])
    }
}

/// Where a part of a head lies: offsets from the head's first byte. httparse
/// hands out slices of the read buffer, which must be let go before the
/// head can be split off it; the offsets carry over to the split bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `part`, a slice of `head` given by httparse, lies in the
    /// head's first `length` bytes.
    pub(super) fn of(head: &[u8], length: usize, part: &[u8]) -> Result<Self, HeadError> {
        if part.is_empty() {
            return Ok(Self::default());
        }
        let start = (part.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
        let end = start.wrapping_add(part.len());
        // httparse's slices are of the head; anything else is a bug, and
        // refusing the head beats slicing out of bounds.
        if start >= end || end > length || end > u32::MAX as usize {
            return Err(HeadError::Malformed("a part outside the head"));
        }
        Ok(Self {
            start: start as u32,
            end: end as u32,
        })
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Where one header field's name and value lie.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FieldSpan {
    name: Span,
    value: Span,
}

/// Where each field of one head lies: on the stack for up to
/// `INLINE_SPANS` fields, on the heap beyond. Sized by the fields the parse
/// found rather than by the listener's limit: zeroing room for 128 spans
/// (2 KiB) before every head, twice a request, was 0.9 % of A1's
/// instructions.
#[derive(Default)]
pub(super) struct FieldSpans {
    inline: [FieldSpan; INLINE_SPANS],
    spilled: Vec<FieldSpan>,
    count: usize,
}

impl FieldSpans {
    /// Notes where each of `fields` lies in `head`'s first `length` bytes.
    /// Inlined into both parsers: left as a call, it took back a quarter of
    /// what dropping the zeroing saved (47 of 175 instructions per A1
    /// request).
    #[inline]
    pub(super) fn record(
        &mut self,
        head: &[u8],
        length: usize,
        fields: &[httparse::Header<'_>],
    ) -> Result<(), HeadError> {
        let spans = if fields.len() <= INLINE_SPANS {
            &mut self.inline[..fields.len()]
        } else {
            self.spilled.resize(fields.len(), FieldSpan::default());
            &mut self.spilled[..]
        };
        for (span, field) in spans.iter_mut().zip(fields) {
            *span = FieldSpan {
                name: Span::of(head, length, field.name.as_bytes())?,
                value: Span::of(head, length, field.value)?,
            };
        }
        self.count = fields.len();
        Ok(())
    }

    pub(super) fn as_slice(&self) -> &[FieldSpan] {
        if self.count <= INLINE_SPANS {
            &self.inline[..self.count]
        } else {
            &self.spilled
        }
    }
}

/// What the request line said, its target as a span of the head.
struct RequestLine {
    method: Method,
    target: Span,
    minor: u8,
}

fn too_large(buffer: &[u8], limits: &HeadLimits) -> HeadError {
    let line_ends = buffer[..limits.max_bytes.min(buffer.len())].contains(&b'\n');
    if line_ends {
        HeadError::TooLarge
    } else {
        HeadError::TargetTooLong
    }
}

pub(super) fn parse_error(error: httparse::Error) -> HeadError {
    match error {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        httparse::Error::HeaderName => HeadError::Malformed("an invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("an invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("an invalid line end"),
        httparse::Error::Status => HeadError::Malformed("an invalid status"),
        httparse::Error::Token => HeadError::Malformed("an invalid method or target"),
        httparse::Error::Version => HeadError::Malformed("an unsupported HTTP version"),
    }
}

fn build(bytes: &Bytes, line: RequestLine, fields: &[FieldSpan]) -> Result<RequestHead, HeadError> {
    let RequestLine {
        method,
        target,
        minor,
    } = line;
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let uri = target_uri(bytes, &method, target)?;

    let mut expect_continue = false;
    let mut accepts_trailers = false;
    let fields = read_fields(bytes, fields, |name, value| {
        if name == header::EXPECT {
            expect_continue |= trimmed(value.as_bytes()).eq_ignore_ascii_case(b"100-continue");
        } else if name == header::TE {
            accepts_trailers |= list(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"trailers"));
        }
    })?;
    let framing = fields.framing.decide(version)?;
    let keep_alive = fields.tokens.keep_alive(version);
    let headers = fields.headers;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(RequestHead {
        parts,
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::HTTP_11,
        accepts_trailers,
    })
}

/// A head's fields as a map of slices of its bytes, and what luas reads
/// of them on the way: the framing fields and the `Connection` tokens.
pub(super) struct Fields {
    pub(super) headers: HeaderMap,
    pub(super) framing: FramingHeaders,
    pub(super) tokens: ConnectionTokens,
}

/// Reads the fields that lie at `fields` in `bytes`; `other` sees every
/// field that is not about framing or the connection.
pub(super) fn read_fields(
    bytes: &Bytes,
    fields: &[FieldSpan],
    mut other: impl FnMut(&HeaderName, &HeaderValue),
) -> Result<Fields, HeadError> {
    let mut read = Fields {
        // Room for what the proxy adds on the way (forwarding headers to a
        // request, Via to a response): a map grown by one field rehashes
        // every field, and that was half of what inserting Via cost.
        headers: HeaderMap::with_capacity(fields.len() + ROOM_FOR_ADDED_FIELDS),
        framing: FramingHeaders::default(),
        tokens: ConnectionTokens::default(),
    };
    for field in fields {
        let name = HeaderName::from_bytes(&bytes[field.name.range()])
            .map_err(|_| HeadError::Malformed("an invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(field.value.range()))
            .map_err(|_| HeadError::Malformed("an invalid header value"))?;
        if name == header::CONTENT_LENGTH {
            read.framing.content_length(value.as_bytes())?;
        } else if name == header::TRANSFER_ENCODING {
            read.framing.transfer_encoding(value.as_bytes())?;
        } else if name == header::CONNECTION {
            read.tokens.read(value.as_bytes());
        } else {
            other(&name, &value);
        }
        read.headers.append(name, value);
    }
    Ok(read)
}

/// RFC 9112 §3.2: origin form for most requests, absolute form (with a
/// scheme and an authority) from proxies and some clients, authority form
/// for CONNECT only and `*` for OPTIONS only.
fn target_uri(bytes: &Bytes, method: &Method, target: Span) -> Result<Uri, HeadError> {
    let target = bytes.slice(target.range());
    if target.len() > MAX_TARGET_BYTES {
        return Err(HeadError::TargetTooLong);
    }
    let (asterisk, origin_form) = (&target[..] == b"*", target.starts_with(b"/"));
    let uri = Uri::from_maybe_shared(target)
        .map_err(|_| HeadError::Malformed("an invalid request target"))?;
    let form_fits = if *method == Method::CONNECT {
        uri.authority().is_some() && uri.scheme().is_none() && uri.path_and_query().is_none()
    } else if asterisk {
        *method == Method::OPTIONS
    } else if origin_form {
        true
    } else {
        uri.scheme().is_some() && uri.authority().is_some()
    };
    if !form_fits {
        return Err(HeadError::Malformed("a request target in the wrong form"));
    }
    Ok(uri)
}

#[derive(Default)]
pub(super) struct FramingHeaders {
    length: Option<u64>,
    /// Transfer codings in order, across all Transfer-Encoding fields.
    chunked_last: bool,
    codings: usize,
    chunked_seen: bool,
}

impl FramingHeaders {
    /// Each field is one length, all digits: RFC 9110 §8.6 lets a
    /// recipient take `5, 5` as 5, but hyper refuses it, and a parser in
    /// front of luas that reads a list otherwise is where smuggling
    /// starts. Repeated fields must agree.
    pub(super) fn content_length(&mut self, value: &[u8]) -> Result<(), HeadError> {
        let digits = trimmed(value);
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Malformed("an invalid Content-Length"));
        }
        let length = digits
            .iter()
            .fold(0u64, |sum, digit| sum * 10 + u64::from(digit - b'0'));
        match self.length {
            Some(seen) if seen != length => {
                Err(HeadError::Malformed("Content-Length values that disagree"))
            }
            _ => {
                self.length = Some(length);
                Ok(())
            }
        }
    }

    /// An empty field or an empty element (`chunked ,`, `, chunked`) is
    /// refused rather than skipped: other parsers read such a list
    /// differently (hyper takes `chunked ,` as not chunked, and a field
    /// with no coding at all as a Transfer-Encoding that is not chunked).
    pub(super) fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), HeadError> {
        for coding in value.split(|&byte| byte == b',') {
            let coding = trimmed(coding);
            if coding.is_empty() {
                return Err(HeadError::Malformed("an empty Transfer-Encoding element"));
            }
            let chunked = coding.eq_ignore_ascii_case(b"chunked");
            if chunked && self.chunked_seen {
                return Err(HeadError::Malformed("chunked applied twice"));
            }
            self.chunked_seen |= chunked;
            self.chunked_last = chunked;
            self.codings += 1;
        }
        Ok(())
    }

    /// Neither Content-Length nor Transfer-Encoding was present.
    pub(super) fn absent(&self) -> bool {
        self.length.is_none() && self.codings == 0
    }

    pub(super) fn decide(self, version: Version) -> Result<Framing, HeadError> {
        if self.codings > 0 {
            if self.length.is_some() {
                return Err(HeadError::Malformed(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if version != Version::HTTP_11 {
                return Err(HeadError::Malformed(
                    "Transfer-Encoding in an HTTP/1.0 message",
                ));
            }
            if !self.chunked_last {
                return Err(HeadError::Malformed(
                    "chunked is not the final transfer coding",
                ));
            }
            if self.codings > 1 {
                return Err(HeadError::UnsupportedTransferCoding);
            }
            return Ok(Framing::Chunked);
        }
        Ok(match self.length {
            None | Some(0) => Framing::Empty,
            Some(length) => Framing::Length(length),
        })
    }
}

#[derive(Default)]
pub(super) struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
}

impl ConnectionTokens {
    /// The connection may carry another message, per the version's default.
    pub(super) fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::HTTP_11 => !self.close,
            _ => self.keep_alive && !self.close,
        }
    }

    fn read(&mut self, value: &[u8]) {
        for token in list(value) {
            self.close |= token.eq_ignore_ascii_case(b"close");
            self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
}

fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&byte| byte == b',')
        .map(trimmed)
        .filter(|item| !item.is_empty())
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !matches!(byte, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !matches!(byte, b' ' | b'\t'))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Every value of the `name` fields, in order, as text (for tests of both
/// parsers).
#[cfg(test)]
pub(super) fn values_of(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 1024,
        max_headers: 8,
    };

    fn parse(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
        parse_request(&mut BytesMut::from(bytes), &LIMITS)
    }

    fn framing(bytes: &[u8]) -> Result<Framing, HeadError> {
        parse(bytes).map(|head| head.expect("a complete head").framing)
    }

    #[test]
    fn a_plain_get_keeps_its_parts_and_leaves_the_rest() {
        let mut buffer = BytesMut::from(
            &b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nNEXT"[..],
        );
        let head = parse_request(&mut buffer, &LIMITS).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "/a?b=c");
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["host"], "x");
        let twos: Vec<_> = head.parts.headers.get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.keep_alive);
        assert_eq!(&buffer[..], b"NEXT");
    }

    #[test]
    fn fields_keep_their_bytes_when_the_head_is_split_off() {
        // Empty values, values that end at the head's last field, and a
        // head that starts after earlier bytes were consumed: each span
        // must land on the same bytes in the split-off head.
        let mut buffer = BytesMut::from(
            &b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nHost: b\r\nX-Empty:\r\nContent-Length: 2\r\nX-Last:  tail \r\n\r\nhi"[..],
        );
        let first = parse_request(&mut buffer, &LIMITS).unwrap().unwrap();
        assert_eq!(first.parts.uri, "/first");
        let second = parse_request(&mut buffer, &LIMITS).unwrap().unwrap();
        assert_eq!(second.parts.method, Method::POST);
        assert_eq!(second.parts.uri, "/x");
        assert_eq!(second.parts.headers["host"], "b");
        assert_eq!(second.parts.headers["x-empty"], "");
        assert_eq!(second.parts.headers["x-last"], "tail");
        assert_eq!(second.framing, Framing::Length(2));
        assert_eq!(&buffer[..], b"hi");
    }

    #[test]
    fn heads_with_more_fields_than_fit_inline_keep_every_field() {
        // At the inline room, one over it and far over it (the spans go to
        // the heap): every field keeps its own value, in order.
        let limits = HeadLimits {
            max_bytes: 64 * 1024,
            max_headers: 200,
        };
        for count in [INLINE_SPANS - 1, INLINE_SPANS, INLINE_SPANS + 1, 150] {
            let mut text = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
            for index in 1..count {
                text.push_str(&format!("x-field: {index}\r\n"));
            }
            text.push_str("\r\n");
            let head = parse_request(&mut BytesMut::from(text.as_bytes()), &limits)
                .unwrap()
                .unwrap_or_else(|| panic!("{count} fields: incomplete"));
            assert_eq!(head.parts.headers.len(), count, "{count} fields");
            assert_eq!(head.parts.headers["host"], "h");
            let expected: Vec<String> = (1..count).map(|index| index.to_string()).collect();
            assert_eq!(
                values_of(&head.parts.headers, "x-field"),
                expected,
                "{count} fields"
            );
        }
    }

    #[test]
    fn an_incomplete_head_waits_and_an_endless_one_is_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        let long_header = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(2000));
        assert_eq!(
            parse(long_header.as_bytes()).unwrap_err(),
            HeadError::TooLarge
        );
        let long_target = format!("GET /{}", "a".repeat(2000));
        assert_eq!(
            parse(long_target.as_bytes()).unwrap_err(),
            HeadError::TargetTooLong
        );
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(9));
        assert_eq!(parse(many.as_bytes()).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        let refused: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for head in refused {
            let error = framing(head).unwrap_err();
            assert_eq!(
                error.status(),
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(HeadError::UnsupportedTransferCoding)
        );
    }

    /// Found by the fuzzer and the differential test against hyper
    /// (fuzz/, tests/it/http1_differential.rs): empty Transfer-Encoding
    /// elements were skipped, so a field with no coding at all meant no
    /// Transfer-Encoding (and its Content-Length was used), and lists in
    /// Content-Length were read as one length. hyper refuses all of these.
    #[test]
    fn lists_other_parsers_read_otherwise_are_refused() {
        let refused: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: \n\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked ,\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: , chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5,5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n",
        ];
        for head in refused {
            assert_eq!(
                framing(head).map_err(|error| error.status()),
                Err(StatusCode::BAD_REQUEST),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        let refused: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/9.7\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
            b"GET not a target HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            b"GET example.com:80 HTTP/1.1\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"CONNECT /path HTTP/1.1\r\n\r\n",
        ];
        for head in refused {
            assert_eq!(
                parse(head).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn target_forms_and_connection_semantics() {
        let head = parse(b"OPTIONS * HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.parts.uri, "*");
        let head = parse(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.parts.uri.authority().unwrap(), "example.com:443");
        let head = parse(b"GET http://a.test/p HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.parts.uri.host(), Some("a.test"));

        let head = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
        let head = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let head = parse(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nTE: trailers\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.expect_continue && head.accepts_trailers);
    }
}
