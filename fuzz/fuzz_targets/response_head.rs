//! Fuzzes the backend side of the codec on arbitrary bytes from a backend:
//! `luas::http1::response::parse_response` with the 1xx responses before
//! the final one skipped, then the body read by the framing it decided (a
//! length, a `ChunkedDecoder` with the driver's limits, or everything to
//! the end), the way `http1::upstream` reads a response.
//!
//! Besides "no panic", it checks what the driver relies on: the input read
//! whole and the same input arriving in pieces of arbitrary sizes (parsing
//! again after each append) give the same head, the same body and end at
//! the same byte, or the same refusal; an incomplete head leaves the buffer
//! untouched; a parsed head took exactly its own bytes (the buffer starts
//! right after its blank line, and one byte less is not a head); a HEAD
//! request's response and 1xx, 204 and 304 responses have no body; the
//! framing agrees with Content-Length and Transfer-Encoding; a length body
//! takes exactly its bytes, never more.
//!
//! Input layout: byte 0 bit 0 says the request was HEAD, byte 1 seeds the
//! piece sizes, the rest is what the backend sent.

#![no_main]

use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use luas::http1::chunked::{ChunkError, ChunkedDecoder, Decoded};
use luas::http1::response::{parse_response, BodyFraming, RESPONSE_LIMITS};
use luas::http1::HeadError;

fuzz_target!(|data: &[u8]| {
    let [flags, piece_seed, input @ ..] = data else {
        return;
    };
    let to_head = flags & 1 == 1;
    let whole = read(input, to_head, Feeder::whole(input));
    check_invariants(input, to_head, &whole);
    let pieces = read(input, to_head, Feeder::pieces(input, *piece_seed));
    assert!(
        same_class(&whole, &pieces, input.len() > RESPONSE_LIMITS.max_bytes),
        "whole and pieces (seed {piece_seed}) disagree on {:?}:\n  whole:  {whole:?}\n  pieces: {pieces:?}",
        String::from_utf8_lossy(input)
    );
});

/// What reading one response from the input gave, reduced to what can be
/// compared.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The input ended before a final response head.
    Incomplete,
    Refused(HeadError),
    Response(Box<Response>),
}

#[derive(Debug, PartialEq)]
struct Response {
    /// Where the final head starts in the input (after skipped 1xx heads)
    /// and where it ends: the buffer's start once it was parsed.
    head_start: usize,
    head_end: usize,
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    framing: BodyFraming,
    keep_alive: bool,
    body: Body,
}

#[derive(Debug, PartialEq)]
enum Body {
    /// The body ended at input offset `end`.
    Complete {
        data: Vec<u8>,
        trailers: HeaderMap,
        end: usize,
    },
    /// The input ended before the body did (the driver's ClosedEarly).
    Cut {
        data: Vec<u8>,
    },
    Refused(ChunkError),
}

/// The bytes of the input as a connection reads them: all at once, or a
/// piece at a time (sizes 1 to 32 from a small generator seeded by the
/// input).
struct Feeder<'a> {
    input: &'a [u8],
    fed: usize,
    /// xorshift32 state; None: the whole input in one read.
    state: Option<u32>,
}

impl<'a> Feeder<'a> {
    fn whole(input: &'a [u8]) -> Self {
        Self {
            input,
            fed: 0,
            state: None,
        }
    }

    fn pieces(input: &'a [u8], seed: u8) -> Self {
        Self {
            input,
            fed: 0,
            state: Some(u32::from(seed) | 0x100),
        }
    }

    /// Appends the next read to `buffer`; false at the end of the input
    /// (the backend closed).
    fn feed(&mut self, buffer: &mut BytesMut) -> bool {
        if self.fed == self.input.len() {
            return false;
        }
        let size = match &mut self.state {
            None => self.input.len(),
            Some(state) => {
                *state ^= *state << 13;
                *state ^= *state >> 17;
                *state ^= *state << 5;
                (*state % 32) as usize + 1
            }
        };
        let end = self.input.len().min(self.fed + size);
        buffer.extend_from_slice(&self.input[self.fed..end]);
        self.fed = end;
        true
    }

    /// The input offset of `buffer`'s first byte.
    fn offset(&self, buffer: &BytesMut) -> usize {
        self.fed - buffer.len()
    }
}

/// One response as `http1::upstream` reads it: heads parsed after each
/// read until one is complete, 1xx other than 101 dropped, then the body.
fn read(input: &[u8], to_head: bool, mut feeder: Feeder<'_>) -> Outcome {
    let mut buffer = BytesMut::new();
    let mut head_start = 0;
    let head = loop {
        let before = buffer.clone();
        match parse_response(&mut buffer, to_head) {
            Ok(None) => {
                assert_eq!(buffer, before, "an incomplete head changed the buffer");
                if !feeder.feed(&mut buffer) {
                    return Outcome::Incomplete;
                }
            }
            Err(error) => return Outcome::Refused(error),
            Ok(Some(head))
                if head.parts.status.is_informational()
                    && head.parts.status != StatusCode::SWITCHING_PROTOCOLS =>
            {
                assert_eq!(head.framing, BodyFraming::Empty, "a 1xx with a body");
                head_start = feeder.offset(&buffer);
            }
            Ok(Some(head)) => break head,
        }
    };
    let head_end = feeder.offset(&buffer);
    let body = match head.framing {
        BodyFraming::Empty => Body::Complete {
            data: Vec::new(),
            trailers: HeaderMap::new(),
            end: head_end,
        },
        BodyFraming::Length(length) => read_length(length, &mut buffer, &mut feeder),
        BodyFraming::Chunked => read_chunked(&mut buffer, &mut feeder),
        BodyFraming::UntilClose => {
            while feeder.feed(&mut buffer) {}
            Body::Complete {
                data: buffer.to_vec(),
                trailers: HeaderMap::new(),
                end: input.len(),
            }
        }
    };
    Outcome::Response(Box::new(Response {
        head_start,
        head_end,
        status: head.parts.status,
        version: head.parts.version,
        headers: head.parts.headers,
        framing: head.framing,
        keep_alive: head.keep_alive,
        body,
    }))
}

/// A length body, with `ResponseBody::poll_frame`'s arithmetic: each read
/// gives a frame of what is buffered, never past the length.
fn read_length(length: u64, buffer: &mut BytesMut, feeder: &mut Feeder<'_>) -> Body {
    assert!(length > 0, "Length(0) instead of Empty");
    let mut remaining = length;
    let mut data = Vec::new();
    loop {
        if !buffer.is_empty() {
            let take =
                usize::try_from(remaining).map_or(buffer.len(), |left| left.min(buffer.len()));
            assert!(
                take > 0 && take as u64 <= remaining,
                "took {take} of {remaining}"
            );
            remaining -= take as u64;
            data.extend_from_slice(&buffer.split_to(take));
            if remaining == 0 {
                assert_eq!(data.len() as u64, length, "a length body of another length");
                return Body::Complete {
                    data,
                    trailers: HeaderMap::new(),
                    end: feeder.offset(buffer),
                };
            }
        } else if !feeder.feed(buffer) {
            return Body::Cut { data };
        }
    }
}

/// A chunked body through a `ChunkedDecoder` with the driver's limits,
/// decoding all it can after each read.
fn read_chunked(buffer: &mut BytesMut, feeder: &mut Feeder<'_>) -> Body {
    let mut decoder = ChunkedDecoder::new(RESPONSE_LIMITS.max_bytes, RESPONSE_LIMITS.max_headers);
    let mut data = Vec::new();
    loop {
        match decoder.decode(buffer) {
            Err(error) => return Body::Refused(error),
            Ok(None) => {
                if !feeder.feed(buffer) {
                    return Body::Cut { data };
                }
            }
            Ok(Some(Decoded::Data(bytes))) => {
                assert!(!bytes.is_empty(), "an empty data frame");
                data.extend_from_slice(&bytes);
            }
            Ok(Some(Decoded::Trailers(trailers))) => {
                assert!(!trailers.is_empty(), "an empty trailer section as Trailers");
                assert!(decoder.is_done());
                return Body::Complete {
                    data,
                    trailers,
                    end: feeder.offset(buffer),
                };
            }
            Ok(Some(Decoded::End)) => {
                assert!(decoder.is_done());
                return Body::Complete {
                    data,
                    trailers: HeaderMap::new(),
                    end: feeder.offset(buffer),
                };
            }
        }
    }
}

/// The same outcome, or refusals of the same class. Two pairs of errors
/// are one class each: in an input `longer` than the head limit, a head
/// that grew past the limit in pieces is `TooLarge` where the whole input
/// may show a malformed byte past the limit first; and an unfinished
/// trailer section is checked for a bare CR or LF only while it is shorter
/// than the limit (see the chunked target). Either way the response is
/// refused.
fn same_class(whole: &Outcome, pieces: &Outcome, longer: bool) -> bool {
    match (whole, pieces) {
        (Outcome::Refused(_), Outcome::Refused(HeadError::TooLarge))
        | (Outcome::Refused(HeadError::TooLarge), Outcome::Refused(_))
            if longer =>
        {
            true
        }
        (Outcome::Response(whole), Outcome::Response(pieces)) => {
            match (&whole.body, &pieces.body) {
                (
                    Body::Refused(ChunkError::TrailersTooLarge),
                    Body::Refused(ChunkError::LineEnd),
                )
                | (
                    Body::Refused(ChunkError::LineEnd),
                    Body::Refused(ChunkError::TrailersTooLarge),
                ) => {
                    whole.head_end == pieces.head_end
                        && whole.status == pieces.status
                        && whole.headers == pieces.headers
                }
                _ => whole == pieces,
            }
        }
        _ => whole == pieces,
    }
}

fn check_invariants(input: &[u8], to_head: bool, outcome: &Outcome) {
    let Outcome::Response(response) = outcome else {
        return;
    };
    let Response {
        head_start,
        head_end,
        status,
        version,
        headers,
        framing,
        keep_alive,
        body,
    } = response.as_ref();
    let (head_start, head_end) = (*head_start, *head_end);
    assert!(head_start < head_end, "a head of no bytes");
    let head = &input[head_start..head_end];
    assert!(
        head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
        "the head does not end at a blank line"
    );
    assert!(headers.len() <= RESPONSE_LIMITS.max_headers);
    assert!(head.len() <= RESPONSE_LIMITS.max_bytes);
    // The head's bytes alone are the same head, and one byte less is none.
    let mut alone = BytesMut::from(head);
    let reparsed = parse_response(&mut alone, to_head)
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert!(alone.is_empty(), "the head alone left bytes over");
    assert_eq!(
        (
            &reparsed.parts.status,
            &reparsed.parts.headers,
            reparsed.framing
        ),
        (status, headers, *framing)
    );
    let mut short = BytesMut::from(&head[..head.len() - 1]);
    assert!(
        matches!(parse_response(&mut short, to_head), Ok(None)),
        "the head less its last byte is not incomplete"
    );

    if to_head
        || status.is_informational()
        || *status == StatusCode::NO_CONTENT
        || *status == StatusCode::NOT_MODIFIED
    {
        assert_eq!(*framing, BodyFraming::Empty, "a body where none may be");
    } else {
        check_framing(*version, headers, *framing);
    }
    if *framing == BodyFraming::UntilClose {
        assert!(!keep_alive, "keep-alive with a body ended by the close");
    }
    if tokens(headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("close")) {
        assert!(!keep_alive, "keep-alive despite Connection: close");
    }
    if *version == Version::HTTP_10 && *keep_alive {
        assert!(
            tokens(headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("keep-alive")),
            "an HTTP/1.0 keep-alive without Connection: keep-alive"
        );
    }

    let rest = &input[head_end..];
    match (framing, body) {
        (BodyFraming::Empty, Body::Complete { data, end, .. }) => {
            assert!(data.is_empty() && *end == head_end);
        }
        (BodyFraming::Length(length), Body::Complete { data, end, .. }) => {
            assert_eq!((*end - head_end) as u64, *length);
            assert_eq!(&data[..], &rest[..data.len()]);
        }
        (BodyFraming::Length(length), Body::Cut { data }) => {
            assert!(
                (rest.len() as u64) < *length,
                "a length body cut short with its bytes there"
            );
            assert_eq!(&data[..], rest);
        }
        (BodyFraming::Chunked, Body::Complete { data, end, .. }) => {
            assert!(data.len() < *end - head_end, "more data than chunked bytes");
            assert!(
                input[..*end].ends_with(b"\r\n"),
                "a chunked body not ending in CRLF"
            );
        }
        (BodyFraming::Chunked, Body::Cut { .. } | Body::Refused(_)) => {}
        (BodyFraming::UntilClose, Body::Complete { data, end, .. }) => {
            assert!(data == rest && *end == input.len());
        }
        (framing, body) => panic!("{framing:?} framing read as {body:?}"),
    }
}

/// RFC 9112 §6.3 as luas applies it to a response that may have a body:
/// chunked alone (no Content-Length, on HTTP/1.1, the only coding), else
/// every Content-Length value the same, else until the close.
fn check_framing(version: Version, headers: &HeaderMap, framing: BodyFraming) {
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    let has_coding = headers.contains_key(header::TRANSFER_ENCODING);
    match framing {
        BodyFraming::Chunked => {
            assert!(!has_length, "chunked framing with a Content-Length");
            assert_eq!(version, Version::HTTP_11, "chunked framing on HTTP/1.0");
            let codings: Vec<String> = tokens(headers, &header::TRANSFER_ENCODING).collect();
            assert!(
                codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked"),
                "chunked framing from Transfer-Encoding {codings:?}"
            );
        }
        BodyFraming::Length(length) => {
            assert!(length > 0, "Length(0) instead of Empty");
            assert!(!has_coding, "a length with a Transfer-Encoding");
            check_lengths(headers, length);
        }
        BodyFraming::Empty => {
            assert!(!has_coding, "no body with a Transfer-Encoding");
            assert!(has_length, "no body without Content-Length: 0");
            check_lengths(headers, 0);
        }
        BodyFraming::UntilClose => {
            assert!(
                !has_length && !has_coding,
                "read until the close with a Content-Length or Transfer-Encoding"
            );
        }
    }
}

fn check_lengths(headers: &HeaderMap, length: u64) {
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = std::str::from_utf8(value.as_bytes()).expect("an accepted length is ASCII");
        assert_eq!(
            text.trim_matches([' ', '\t']).parse::<u64>().ok(),
            Some(length),
            "framing Length({length}) from Content-Length {value:?}"
        );
    }
}

/// The non-empty, trimmed items of a list-valued field.
fn tokens<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(|item| {
            String::from_utf8_lossy(item)
                .trim_matches([' ', '\t'])
                .to_owned()
        })
        .filter(|item| !item.is_empty())
}
