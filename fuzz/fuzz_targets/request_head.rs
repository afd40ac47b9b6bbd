//! Fuzzes `luas::http1::parse_request` on arbitrary bytes with small
//! limits. Besides "no panic", it checks what a caller relies on: a parsed
//! head took exactly its own bytes off the buffer (never more than the
//! limit, ending at a line end), its framing agrees with its
//! Content-Length and Transfer-Encoding fields, an incomplete head leaves
//! the buffer untouched, and the same bytes arriving in two reads give the
//! same answer as arriving in one.
//!
//! Input layout: byte 0 picks the limits, bytes 1-2 the split point, the
//! rest is what the client sent.

#![no_main]

use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{Method, Uri, Version};
use libfuzzer_sys::fuzz_target;
use luas::http1::{parse_request, Framing, HeadError, HeadLimits};

/// Header slots a listener may allow; 129 takes the heap path of
/// `parse_request` (more than its 128 stack slots).
const MAX_HEADERS: [usize; 8] = [0, 1, 2, 4, 8, 16, 100, 129];

fuzz_target!(|data: &[u8]| {
    let [limit_knob, split_low, split_high, input @ ..] = data else {
        return;
    };
    let limits = HeadLimits {
        max_bytes: 16 + usize::from(limit_knob & 0x1f) * 32,
        max_headers: MAX_HEADERS[usize::from(limit_knob >> 5)],
    };
    let whole = parse_whole(input, &limits);
    check_invariants(input, &limits, &whole);

    let split = usize::from(u16::from_le_bytes([*split_low, *split_high])) % (input.len() + 1);
    let (split_outcome, first_was_too_large) = parse_split(input, split, &limits);
    if first_was_too_large {
        // The first read alone passed the limit without a complete head:
        // refused as too large, where the whole input may have hit a
        // malformed byte past the limit first. Either way it is refused.
        assert!(
            matches!(whole, Outcome::Refused(_)),
            "a too-large first read, but the whole input gave {whole:?}"
        );
    } else {
        assert_eq!(
            whole,
            split_outcome,
            "whole and split at {split} disagree on {:?}",
            String::from_utf8_lossy(input)
        );
    }
});

/// What one call of `parse_request` (or two, for a split input) gave,
/// reduced to what can be compared.
#[derive(Debug, PartialEq)]
enum Outcome {
    Incomplete,
    Head(Box<Parsed>),
    Refused(HeadError),
}

#[derive(Debug, PartialEq)]
struct Parsed {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    accepts_trailers: bool,
    /// The buffer after the head: body and pipelined requests.
    rest: Vec<u8>,
}

fn outcome(
    buffer: &BytesMut,
    parsed: Result<Option<luas::http1::RequestHead>, HeadError>,
) -> Outcome {
    match parsed {
        Ok(None) => Outcome::Incomplete,
        Ok(Some(head)) => Outcome::Head(Box::new(Parsed {
            method: head.parts.method,
            uri: head.parts.uri,
            version: head.parts.version,
            headers: head.parts.headers,
            framing: head.framing,
            keep_alive: head.keep_alive,
            expect_continue: head.expect_continue,
            accepts_trailers: head.accepts_trailers,
            rest: buffer.to_vec(),
        })),
        Err(error) => Outcome::Refused(error),
    }
}

fn parse_whole(input: &[u8], limits: &HeadLimits) -> Outcome {
    let mut buffer = BytesMut::from(input);
    let parsed = parse_request(&mut buffer, limits);
    if let Ok(None) = parsed {
        assert_eq!(&buffer[..], input, "an incomplete head changed the buffer");
    }
    outcome(&buffer, parsed)
}

/// The first `split` bytes, then (if that was not enough) the rest appended
/// and parsed again, as a connection does after a second read. The flag
/// says the first read was refused for its size alone.
fn parse_split(input: &[u8], split: usize, limits: &HeadLimits) -> (Outcome, bool) {
    let (first, second) = input.split_at(split);
    let mut buffer = BytesMut::from(first);
    match parse_request(&mut buffer, limits) {
        Ok(None) => {
            buffer.extend_from_slice(second);
            let parsed = parse_request(&mut buffer, limits);
            (outcome(&buffer, parsed), false)
        }
        Ok(Some(head)) => {
            buffer.extend_from_slice(second);
            (outcome(&buffer, Ok(Some(head))), false)
        }
        Err(error) => {
            let too_large = matches!(error, HeadError::TooLarge | HeadError::TargetTooLong)
                && first.len() > limits.max_bytes;
            (Outcome::Refused(error), too_large)
        }
    }
}

fn check_invariants(input: &[u8], limits: &HeadLimits, outcome: &Outcome) {
    match outcome {
        Outcome::Incomplete => assert!(
            input.len() <= limits.max_bytes,
            "{} bytes without a complete head, over the limit of {}, and not refused",
            input.len(),
            limits.max_bytes
        ),
        Outcome::Refused(_) => {}
        Outcome::Head(parsed) => {
            let Parsed {
                version,
                headers,
                framing,
                keep_alive,
                expect_continue,
                rest,
                ..
            } = parsed.as_ref();
            let used = input.len() - rest.len();
            assert!(used > 0, "a head of no bytes");
            assert!(
                used <= limits.max_bytes,
                "a head of {used} bytes passed a limit of {}",
                limits.max_bytes
            );
            assert_eq!(
                &input[used..],
                &rest[..],
                "the buffer lost bytes after the head"
            );
            assert!(
                input[..used].ends_with(b"\n"),
                "the head does not end at a line end"
            );
            assert!(
                headers.len() <= limits.max_headers,
                "more fields than max_headers"
            );
            check_framing(*version, headers, *framing);
            if *version == Version::HTTP_10 {
                assert!(!expect_continue, "100-continue for HTTP/1.0");
                if *keep_alive {
                    assert!(
                        tokens(headers, &header::CONNECTION)
                            .any(|t| t.eq_ignore_ascii_case("keep-alive")),
                        "an HTTP/1.0 keep-alive without Connection: keep-alive"
                    );
                }
            }
            if tokens(headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("close")) {
                assert!(!keep_alive, "keep-alive despite Connection: close");
            }
        }
    }
}

/// RFC 9112 §6.3 as luas applies it: chunked alone (no Content-Length, on
/// HTTP/1.1, the only coding), else every Content-Length value the same.
fn check_framing(version: Version, headers: &HeaderMap, framing: Framing) {
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    let has_coding = headers.contains_key(header::TRANSFER_ENCODING);
    match framing {
        Framing::Chunked => {
            assert!(!has_length, "chunked framing with a Content-Length");
            assert_eq!(version, Version::HTTP_11, "chunked framing on HTTP/1.0");
            let codings: Vec<String> = tokens(headers, &header::TRANSFER_ENCODING).collect();
            assert!(
                codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked"),
                "chunked framing from Transfer-Encoding {codings:?}"
            );
        }
        Framing::Length(length) => {
            assert!(length > 0, "Length(0) instead of Empty");
            assert!(!has_coding, "a length with a Transfer-Encoding");
            check_lengths(headers, length);
        }
        Framing::Empty => {
            assert!(!has_coding, "no body with a Transfer-Encoding");
            if has_length {
                check_lengths(headers, 0);
            }
        }
    }
}

fn check_lengths(headers: &HeaderMap, length: u64) {
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&byte| byte == b',') {
            let item = std::str::from_utf8(item).expect("an accepted length is ASCII");
            assert_eq!(
                item.trim_matches([' ', '\t']).parse::<u64>().ok(),
                Some(length),
                "framing Length({length}) from Content-Length {value:?}"
            );
        }
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
