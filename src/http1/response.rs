//! Response heads from backends: from bytes to `http::response::Parts`,
//! with the body's framing decided by RFC 9112 §6.3 and every ambiguity
//! refused, so a backend's invalid framing becomes a 502 and is never
//! passed on to the client.
//!
//! Stricter than the RFC where it allows a choice: Content-Length beside
//! Transfer-Encoding, a transfer coding other than a single `chunked`, and
//! Transfer-Encoding in an HTTP/1.0 response are all refused rather than
//! repaired, as are obs-fold and invalid header bytes (httparse's defaults).

use bytes::BytesMut;
use http::{StatusCode, Version};

use super::encode::bodiless;
use super::head::{parse_error, read_fields, with_slots, FieldSpans};
use super::{Framing, HeadError, HeadLimits};

/// Bounds on a backend's response head: Envoy's 60 KiB and 100 fields are
/// the common ground, with room to spare.
pub const RESPONSE_LIMITS: HeadLimits = HeadLimits {
    max_bytes: 64 * 1024,
    max_headers: 128,
};

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: HEAD, 1xx, 204, 304, or a length of 0.
    Empty,
    Length(u64),
    Chunked,
    /// Neither length nor coding: the body runs until the backend closes.
    UntilClose,
}

/// A parsed response head and what it says about the connection.
#[derive(Debug)]
pub struct ResponseHead {
    pub parts: http::response::Parts,
    pub framing: BodyFraming,
    /// The backend lets the connection carry another request.
    pub keep_alive: bool,
}

/// Parses one response head from the front of `buffer` for a request whose
/// method was HEAD when `to_head` is true. None: not complete yet. On
/// success the head's bytes are gone from `buffer`.
pub fn parse_response(
    buffer: &mut BytesMut,
    to_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let limits = RESPONSE_LIMITS;
    let mut spans = FieldSpans::default();
    let parsed = with_slots(limits.max_headers, |slots| {
        let mut response = httparse::Response::new(&mut []);
        let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buffer,
            slots,
        ) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(parse_error(error)),
        };
        if length > limits.max_bytes {
            return Err(HeadError::TooLarge);
        }
        let (Some(code), Some(minor)) = (response.code, response.version) else {
            return Err(HeadError::Malformed("an incomplete status line"));
        };
        spans.record(buffer, length, response.headers)?;
        Ok(Some((length, code, minor)))
    })?;
    let Some((length, code, minor)) = parsed else {
        if buffer.len() > limits.max_bytes {
            return Err(HeadError::TooLarge);
        }
        return Ok(None);
    };
    let status =
        StatusCode::from_u16(code).map_err(|_| HeadError::Malformed("an invalid status code"))?;
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let bytes = buffer.split_to(length).freeze();
    let fields = read_fields(&bytes, spans.as_slice(), |_, _| {})?;
    let framing = if to_head || bodiless(status) {
        BodyFraming::Empty
    } else if fields.framing.absent() {
        BodyFraming::UntilClose
    } else {
        match fields.framing.decide(version)? {
            Framing::Empty => BodyFraming::Empty,
            Framing::Length(length) => BodyFraming::Length(length),
            Framing::Chunked => BodyFraming::Chunked,
        }
    };
    let keep_alive = framing != BodyFraming::UntilClose && fields.tokens.keep_alive(version);
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = fields.headers;
    Ok(Some(ResponseHead {
        parts,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::head::values_of;
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
        parse_response(&mut BytesMut::from(bytes), false)
    }

    fn framing(bytes: &[u8]) -> Result<BodyFraming, HeadError> {
        parse(bytes).map(|head| head.expect("a complete head").framing)
    }

    #[test]
    fn a_plain_response_keeps_its_parts_and_leaves_the_body() {
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 201 Made\r\nContent-Length: 4\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody"[..],
        );
        let head = parse_response(&mut buffer, false).unwrap().unwrap();
        assert_eq!(head.parts.status, StatusCode::CREATED);
        assert_eq!(head.parts.version, Version::HTTP_11);
        let values: Vec<_> = head.parts.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(head.framing, BodyFraming::Length(4));
        assert!(head.keep_alive);
        assert_eq!(&buffer[..], b"body");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_response_with_many_fields_keeps_each_value_in_order() {
        // 100 fields: more than fit inline, so their spans go to the heap,
        // and the framing field at the end is still read.
        let mut text = String::from("HTTP/1.1 200 OK\r\n");
        for index in 0..99 {
            text.push_str(&format!("x-field: {index}\r\n"));
        }
        text.push_str("Content-Length: 2\r\n\r\nok");
        let mut buffer = BytesMut::from(text.as_bytes());
        let head = parse_response(&mut buffer, false).unwrap().unwrap();
        let expected: Vec<String> = (0..99).map(|index| index.to_string()).collect();
        assert_eq!(values_of(&head.parts.headers, "x-field"), expected);
        assert_eq!(head.framing, BodyFraming::Length(2));
        assert_eq!(&buffer[..], b"ok");
    }

    #[test]
    fn framing_follows_rfc_9112_and_refuses_ambiguity() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(BodyFraming::UntilClose)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(BodyFraming::Empty)
        );
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Ok(BodyFraming::Empty)
        );
        assert_eq!(
            framing(b"HTTP/1.1 304 Not Modified\r\n\r\n"),
            Ok(BodyFraming::Empty)
        );
        let to_head = parse_response(
            &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"[..]),
            true,
        );
        assert_eq!(to_head.unwrap().unwrap().framing, BodyFraming::Empty);
        for ambiguous in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
        ] {
            assert!(
                parse(ambiguous).is_err(),
                "{}",
                String::from_utf8_lossy(ambiguous)
            );
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        let keep = |bytes: &[u8]| parse(bytes).unwrap().unwrap().keep_alive;
        assert!(keep(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!keep(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(keep(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(b"HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let endless = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(70_000));
        assert_eq!(parse(endless.as_bytes()).unwrap_err(), HeadError::TooLarge);
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(129));
        assert_eq!(parse(many.as_bytes()).unwrap_err(), HeadError::TooLarge);
    }
}
