//! A differential test of luas's HTTP/1.1 response codec
//! (`luas::http1::response` and the chunked decoder) against hyper's
//! HTTP/1 client, on the same bytes from a backend: is the response
//! accepted, with which status and headers, and where does its body end?
//! A proxy that reads a backend's framing differently from the client
//! behind it is where response splitting and desync live, so every input
//! is read by both and compared.
//!
//! The oracle is a real hyper 1.x client (`hyper::client::conn::http1`)
//! talking over a loopback connection to a raw TCP backend run here, which
//! reads the request head, writes the input, shuts its write side and
//! waits for the client to close. hyper's verdict is an error, or the
//! first final response (1xx other than 101 skipped) with its whole body
//! and trailers; a body cut short by the close is an error. The luas side
//! reads the same bytes as `http1::upstream` does: `parse_response`
//! (skipping 1xx other than 101), then the body by its framing (a length
//! that must all be there, a `ChunkedDecoder` with the driver's limits,
//! or everything to the close). Inputs: a hand-written list of the classic
//! response-framing ambiguities, each with the verdict it must get, and
//! seeded mutations of valid responses.
//!
//! luas refusing what hyper accepts is allowed only for the deliberate
//! strictness classes of [`StrictClass`], each recognised explicitly from
//! the input and counted. Anything else where the two differ fails the
//! test: a response both accept with a different status, headers, body or
//! body end, or a response luas accepts that hyper refused (the dangerous
//! direction). `cargo test --test it http1_response_differential --
//! --nocapture` prints the counts per class.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use luas::http1::chunked::{ChunkError, ChunkedDecoder, Decoded};
use luas::http1::response::{parse_response, BodyFraming, RESPONSE_LIMITS};
use luas::http1::HeadError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bounds each exchange with hyper; it ends well within this.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
const SEED: u64 = 0x5EED_0002;
const MUTATIONS: usize = 2000;

/// One response as the application saw it.
#[derive(Clone, PartialEq, Eq)]
struct Response {
    status: StatusCode,
    version: Version,
    /// Every field, in order.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

impl Response {
    fn new(parts: &http::response::Parts, body: Vec<u8>, trailers: Option<&HeaderMap>) -> Self {
        Self {
            status: parts.status,
            version: parts.version,
            headers: fields(Some(&parts.headers)),
            body,
            trailers: fields(trailers),
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |fields: &[(String, Vec<u8>)]| -> Vec<String> {
            fields
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.escape_ascii()))
                .collect()
        };
        formatter
            .debug_struct("Response")
            .field("status", &self.status.as_u16())
            .field("version", &self.version)
            .field("headers", &fields(&self.headers))
            .field("body", &format_args!("{}", escaped(&self.body)))
            .field("trailers", &fields(&self.trailers))
            .finish()
    }
}

fn fields(map: Option<&HeaderMap>) -> Vec<(String, Vec<u8>)> {
    map.into_iter()
        .flatten()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// Why luas refused the input.
#[derive(Debug)]
enum Stop {
    /// The input ended before a final response head.
    Closed,
    Head(HeadError),
    /// The input ended inside the body.
    ClosedEarly,
    /// The chunked body is invalid; luas's decoder had taken the input up
    /// to `stopped_at`, the body started at `body_start`.
    Body {
        error: ChunkError,
        body_start: usize,
        stopped_at: usize,
    },
}

/// The ways luas is stricter than hyper on purpose: hyper's client takes
/// the response, luas refuses it (a 502 to the client) and closes the
/// connection to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StrictClass {
    /// Content-Length and Transfer-Encoding together: hyper ignores the
    /// length (whatever it says) and goes by the coding; luas refuses.
    LengthAndCoding,
    /// `chunked` twice (`chunked, chunked` or two fields): hyper reads
    /// chunked, luas refuses a body chunked twice.
    ChunkedTwice,
    /// Codings besides chunked (`gzip`, `gzip, chunked`, `chunked, gzip`):
    /// hyper looks only at the last field's last coding, reading chunked
    /// or to the close; luas decodes none of them and refuses.
    OtherCodings,
    /// An empty element in Transfer-Encoding (`, chunked`, `chunked,`, an
    /// empty field): hyper looks only at the last element; luas refuses a
    /// list it would have to guess about.
    EmptyCodingElement,
    /// A Content-Length list whose items agree (`5, 5`): hyper takes 5,
    /// luas takes one length per field.
    LengthList,
    /// A Content-Length of more than 19 digits (leading zeros): hyper
    /// reads the number, luas refuses lengths it would need 20 digits for.
    LongLength,
    /// An invalid Content-Length or Transfer-Encoding on a response that
    /// has no body (1xx, 204, 304): hyper never reads them there; luas
    /// checks them on every response.
    FramingOnBodiless,
    /// A head over luas's 64 KiB (hyper's client buffers up to ~400 KiB).
    HeadTooLarge,
    /// Control bytes in a chunk extension: hyper skips any byte but LF.
    ExtensionControlByte,
    /// The trailer section: hyper takes any byte but CR inside a trailer
    /// line (a bare LF too) and hands what it read to httparse; luas
    /// wants CRLF lines only. Recognised by the body luas read being
    /// whole up to where it stopped, but for its trailer section.
    LenientTrailers,
}

impl fmt::Display for StrictClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, formatter)
    }
}

/// What reading one input with both gave.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Both took the same response, with the same body.
    Accepted,
    /// Both refused the input.
    Refused,
    /// luas refused what hyper took, for a deliberate reason.
    Stricter(StrictClass),
    Disagree(String),
}

/// The response luas's codec finds in `input`, as `http1::upstream` reads
/// it, or why it refused.
fn luas_reading(input: &[u8]) -> Result<Response, Stop> {
    let mut buffer = BytesMut::from(input);
    let head = final_head(&mut buffer)?;
    let body_start = input.len() - buffer.len();
    let (body, trailers) = match head.framing {
        BodyFraming::Empty => (Vec::new(), None),
        BodyFraming::Length(length) => {
            if (buffer.len() as u64) < length {
                return Err(Stop::ClosedEarly);
            }
            (buffer.split_to(length as usize).to_vec(), None)
        }
        BodyFraming::Chunked => match decode_chunked(&mut buffer) {
            Ok(Some(body)) => body,
            Ok(None) => return Err(Stop::ClosedEarly),
            Err(error) => {
                return Err(Stop::Body {
                    error,
                    body_start,
                    stopped_at: input.len() - buffer.len(),
                })
            }
        },
        BodyFraming::UntilClose => (buffer.split().to_vec(), None),
    };
    Ok(Response::new(&head.parts, body, trailers.as_ref()))
}

/// The first head that is not a 1xx other than 101, as the driver skips
/// them; `buffer` then starts after it.
fn final_head(buffer: &mut BytesMut) -> Result<luas::http1::response::ResponseHead, Stop> {
    // Each head takes at least one byte.
    for _ in 0..=buffer.len() {
        match parse_response(buffer, false) {
            Ok(Some(head)) if skipped(head.parts.status) => {}
            Ok(Some(head)) => return Ok(head),
            Ok(None) => return Err(Stop::Closed),
            Err(error) => return Err(Stop::Head(error)),
        }
    }
    unreachable!("every head takes at least one byte")
}

fn skipped(status: StatusCode) -> bool {
    status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS
}

type ChunkedBody = (Vec<u8>, Option<HeaderMap>);

fn decode_chunked(buffer: &mut BytesMut) -> Result<Option<ChunkedBody>, ChunkError> {
    let mut decoder = ChunkedDecoder::new(RESPONSE_LIMITS.max_bytes, RESPONSE_LIMITS.max_headers);
    let mut body = Vec::new();
    // Each step takes a byte or ends the body.
    for _ in 0..=buffer.len() + 1 {
        match decoder.decode(buffer)? {
            None => return Ok(None),
            Some(Decoded::Data(data)) => body.extend_from_slice(&data),
            Some(Decoded::Trailers(trailers)) => return Ok(Some((body, Some(trailers)))),
            Some(Decoded::End) => return Ok(Some((body, None))),
        }
    }
    unreachable!("the decoder made no progress")
}

/// The response hyper's HTTP/1 client gets for a GET from a backend that
/// sends `input` and closes, with its whole body; or hyper's error.
async fn hyper_reading(input: &[u8]) -> Result<Response, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answer = input.to_vec();
    let backend = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|four| four == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => request.extend_from_slice(&chunk[..read]),
            }
        }
        // hyper may close (and reset) before it read everything: errors
        // here are part of the exchange, not of the test.
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
        // Until the client closes, so the close never resets unread bytes.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    });
    let client = async {
        let stream = TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            // luas's bound, so field counts are not a difference.
            .max_headers(RESPONSE_LIMITS.max_headers)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        let request = Request::get("/")
            .header(HOST, "backend.test")
            .body(Empty::new())
            .unwrap();
        let result = match sender.send_request(request).await {
            Err(error) => Err(format!("head: {}", chain(&error))),
            Ok(response) => {
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Err(error) => Err(format!("body: {}", chain(&error))),
                    Ok(collected) => {
                        let trailers = collected.trailers().cloned();
                        let body = collected.to_bytes().to_vec();
                        Ok(Response::new(&parts, body, trailers.as_ref()))
                    }
                }
            }
        };
        // Closes the connection, which ends the backend.
        drop(sender);
        driver.abort();
        let _ = driver.await;
        result
    };
    let result = tokio::time::timeout(EXCHANGE_TIMEOUT, client)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "hyper did not answer within {EXCHANGE_TIMEOUT:?} on {}",
                escaped(input)
            )
        });
    tokio::time::timeout(EXCHANGE_TIMEOUT, backend)
        .await
        .expect("the backend ends once the client closes")
        .unwrap();
    result
}

/// An error and its sources, for the report.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn judge(input: &[u8]) -> Verdict {
    let expected = hyper_reading(input).await;
    let actual = luas_reading(input);
    match (expected, actual) {
        (Err(_), Err(_)) => Verdict::Refused,
        (Ok(hyper), Ok(luas)) if hyper == luas => Verdict::Accepted,
        (Ok(hyper), Ok(luas)) => Verdict::Disagree(format!(
            "both accept, differently:\n  hyper: {hyper:?}\n  luas:  {luas:?}"
        )),
        (Err(error), Ok(luas)) => Verdict::Disagree(format!(
            "luas accepted {luas:?}, which hyper refused: {error}"
        )),
        (Ok(hyper), Err(stop)) => match classify(input, &stop, &hyper) {
            Some(class) => Verdict::Stricter(class),
            None => Verdict::Disagree(format!(
                "luas refused ({stop:?}) what hyper accepted: {hyper:?}"
            )),
        },
    }
}

/// Which deliberate strictness made luas refuse what hyper took, if any,
/// recognised from the input itself.
fn classify(input: &[u8], stop: &Stop, hyper: &Response) -> Option<StrictClass> {
    match stop {
        Stop::Head(HeadError::TooLarge) => {
            let head = refused_head(input)?;
            (head.length > RESPONSE_LIMITS.max_bytes).then_some(StrictClass::HeadTooLarge)
        }
        Stop::Head(error) => {
            let RefusedHead { status, fields, .. } = refused_head(input)?;
            let has = |name: &http::HeaderName| fields.iter().any(|(field, _)| field == name);
            let lengths: Vec<&[u8]> = fields
                .iter()
                .filter(|(name, _)| name == CONTENT_LENGTH)
                .map(|(_, value)| &value[..])
                .collect();
            let bodiless = matches!(status, 100..=199 | 204 | 304);
            Some(match error {
                HeadError::Malformed(
                    "an invalid Content-Length"
                    | "Content-Length values that disagree"
                    | "an empty Transfer-Encoding element"
                    | "chunked applied twice",
                ) if bodiless => StrictClass::FramingOnBodiless,
                HeadError::Malformed("both Content-Length and Transfer-Encoding") => {
                    StrictClass::LengthAndCoding
                }
                // hyper ignores Content-Length next to Transfer-Encoding,
                // whatever it says; luas reads it first.
                HeadError::Malformed(
                    "an invalid Content-Length" | "Content-Length values that disagree",
                ) if has(&TRANSFER_ENCODING) => StrictClass::LengthAndCoding,
                HeadError::Malformed("an invalid Content-Length")
                    if hyper_length(&lengths).is_some()
                        && lengths.iter().any(|value| value.contains(&b',')) =>
                {
                    StrictClass::LengthList
                }
                HeadError::Malformed("an invalid Content-Length")
                    if hyper_length(&lengths).is_some()
                        && lengths.iter().any(|value| trimmed(value).len() > 19) =>
                {
                    StrictClass::LongLength
                }
                HeadError::Malformed("chunked applied twice") => StrictClass::ChunkedTwice,
                HeadError::UnsupportedTransferCoding
                | HeadError::Malformed("chunked is not the final transfer coding") => {
                    StrictClass::OtherCodings
                }
                HeadError::Malformed("an empty Transfer-Encoding element") => {
                    StrictClass::EmptyCodingElement
                }
                _ => return None,
            })
        }
        Stop::Body {
            error: ChunkError::Extension,
            ..
        } => Some(StrictClass::ExtensionControlByte),
        Stop::Body {
            error: ChunkError::LineEnd | ChunkError::Trailers,
            body_start,
            stopped_at,
        } => {
            // The body up to where luas stopped, with an empty trailer
            // section in place of the one it refused, is the body hyper
            // read: only the trailers were in question.
            let mut without_trailers = BytesMut::from(&input[*body_start..*stopped_at]);
            without_trailers.extend_from_slice(b"\r\n");
            match decode_chunked(&mut without_trailers) {
                Ok(Some((data, None))) if without_trailers.is_empty() && data == hyper.body => {
                    Some(StrictClass::LenientTrailers)
                }
                _ => None,
            }
        }
        Stop::Closed | Stop::ClosedEarly | Stop::Body { .. } => None,
    }
}

/// The head luas refused, as httparse lists it.
struct RefusedHead {
    /// Its bytes, to the blank line that ends it.
    length: usize,
    status: u16,
    fields: Vec<(http::HeaderName, Vec<u8>)>,
}

/// The head luas refused: the luas reading is repeated up to that head,
/// which httparse reads again. None when httparse cannot.
fn refused_head(input: &[u8]) -> Option<RefusedHead> {
    let mut buffer = BytesMut::from(input);
    for _ in 0..=input.len() {
        let before = buffer.clone();
        match parse_response(&mut buffer, false) {
            Ok(Some(head)) if skipped(head.parts.status) => {}
            Ok(_) => return None,
            Err(_) => {
                let mut slots = vec![httparse::EMPTY_HEADER; RESPONSE_LIMITS.max_headers];
                let mut response = httparse::Response::new(&mut slots);
                let Ok(httparse::Status::Complete(length)) = response.parse(&before) else {
                    return None;
                };
                let fields = response
                    .headers
                    .iter()
                    .filter_map(|field| {
                        let name = http::HeaderName::from_bytes(field.name.as_bytes()).ok()?;
                        Some((name, field.value.to_vec()))
                    })
                    .collect();
                return Some(RefusedHead {
                    length,
                    status: response.code?,
                    fields,
                });
            }
        }
    }
    None
}

/// Content-Length as hyper's client reads it: every comma-separated item
/// of every field all digits, all the same number.
fn hyper_length(values: &[&[u8]]) -> Option<u64> {
    let mut length = None;
    for value in values {
        for item in value.split(|&byte| byte == b',') {
            let item = trimmed(item);
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let number = item.iter().try_fold(0u64, |sum, digit| {
                sum.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })?;
            if length.is_some_and(|seen| seen != number) {
                return None;
            }
            length = Some(number);
        }
    }
    length
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

fn escaped(input: &[u8]) -> String {
    const SHOWN: usize = 400;
    if input.len() > SHOWN {
        return format!(
            "b\"{}\"... ({} bytes)",
            input[..SHOWN].escape_ascii(),
            input.len()
        );
    }
    format!("b\"{}\"", input.escape_ascii())
}

/// What a hand-written case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Both take the same response.
    Accepted,
    /// Both refuse it.
    Refused,
    /// hyper takes it; luas refuses it for this reason.
    Stricter(StrictClass),
}

/// The classic response-framing ambiguities, one line each, with the
/// verdict each gets.
fn hand_written() -> Vec<(Vec<u8>, Expect)> {
    use Expect::{Accepted, Refused, Stricter};
    use StrictClass::*;
    let cases: Vec<(&[u8], Expect)> = vec![
        // Plain responses, and where they end.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Accepted),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\nmore", Accepted),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra", Accepted),
        (b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil the close", Accepted),
        (b"HTTP/1.1 200 OK\r\n\r\n", Accepted),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the close", Accepted),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", Accepted),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", Accepted),
        (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", Accepted),
        (b"HTTP/1.1 999 Whatever\r\nContent-Length: 1\r\n\r\nx", Accepted),
        (b"HTTP/1.1 404 \xe9t\xe9\r\nContent-Length: 1\r\n\r\nx", Accepted),
        (b"HTTP/1.1 200 OK\r\nX: \xff\xfe\r\nContent-Length: 1\r\n\r\nx", Accepted),
        (b"", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", Refused),
        (b"HTTP/2.0 200 OK\r\n\r\n", Refused),
        (b"HTTP/1.1 2000 OK\r\n\r\n", Refused),
        (b"HTTP/1.1 099 Low\r\n\r\n", Refused),
        (b"HTTP/1.1 20 OK\r\n\r\n", Refused),
        (b"http/1.1 200 OK\r\n\r\n", Refused),
        (b" HTTP/1.1 200 OK\r\n\r\n", Refused),
        (b"HTTP/1.1  200 OK\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n", Refused),
        // 1xx before the final response, and 101.
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Accepted),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Accepted),
        (b"HTTP/1.1 102 Processing\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody", Accepted),
        (b"HTTP/1.1 100 Continue\r\n\r\n", Refused),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n", Refused),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", Refused),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x00tunnel", Accepted),
        (b"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Stricter(FramingOnBodiless)),
        // 204 and 304: no body, whatever the fields say.
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", Accepted),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc", Accepted),
        (b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", Accepted),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Accepted),
        (b"HTTP/1.0 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", Accepted),
        (b"HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n", Accepted),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 1, 2\r\n\r\n", Stricter(FramingOnBodiless)),
        (b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Stricter(FramingOnBodiless)),
        // Content-Length.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", Accepted),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", Stricter(LengthList)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\nContent-Length: 5\r\n\r\nhello", Stricter(LengthList)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length:  005 \r\n\r\nhello", Accepted),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000005\r\n\r\nhello", Stricter(LongLength)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9999999999\r\n\r\nshort", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\nhello", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\tfolded\r\n\r\nhello", Refused),
        // Content-Length with Transfer-Encoding, in either order.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: gzip\r\n\r\nokay", Stricter(LengthAndCoding)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", Stricter(LengthAndCoding)),
        // Transfer-Encoding variants.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", Stricter(ChunkedTwice)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(ChunkedTwice)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw until the close", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", Stricter(EmptyCodingElement)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", Stricter(EmptyCodingElement)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\nuntil the close", Stricter(EmptyCodingElement)),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", Refused),
        // obs-fold.
        (b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n Transfer-Encoding: chunked\r\n\r\n", Refused),
        // Chunk sizes.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \t\r\nhello\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000005\r\nhello\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", Refused),
        // Bare LF and CR in chunk lines.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n", Refused),
        // Chunk extensions.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d;e\"\r\nhello\r\n0;x\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a=b\r\nhello\r\n0\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01b\r\nhello\r\n0\r\n\r\n", Stricter(ExtensionControlByte)),
        // Trailers.
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", Accepted),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\n\r\n\r\n", Stricter(LenientTrailers)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nX-A: 1\r\n\r\n", Stricter(LenientTrailers)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\rX: 2\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n", Refused),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n Y: folded\r\n\r\n", Refused),
    ];
    let mut cases: Vec<(Vec<u8>, Expect)> = cases
        .into_iter()
        .map(|(input, expect)| (input.to_vec(), expect))
        .collect();
    // Field counts: luas's bound is hyper's here (`max_headers`).
    let fields = |count: usize| {
        format!(
            "HTTP/1.1 200 OK\r\n{}Content-Length: 2\r\n\r\nok",
            "X-F: v\r\n".repeat(count - 1)
        )
        .into_bytes()
    };
    cases.push((fields(RESPONSE_LIMITS.max_headers), Accepted));
    cases.push((fields(RESPONSE_LIMITS.max_headers + 1), Refused));
    // A head past luas's 64 KiB, well within hyper's buffer.
    let big = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
        "a".repeat(RESPONSE_LIMITS.max_bytes)
    );
    cases.push((big.into_bytes(), Stricter(HeadTooLarge)));
    cases
}

/// Valid responses that the mutations start from: every framing, 1xx
/// before the final response and both versions, so a mutation can break
/// each.
const TEMPLATES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nafter",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil the close",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\ngone",
];

/// Seeded mutations of the templates: one to three byte flips, insertions
/// of a delimiter, deletions or duplicated lines each.
fn mutations(rng: &mut fastrand::Rng, count: usize) -> Vec<Vec<u8>> {
    const INSERTS: &[&[u8]] = &[
        b"\r", b"\n", b" ", b",", b"\t", b"0", b":", b"\r\n", b";", b"\x01",
    ];
    (0..count)
        .map(|_| {
            let mut input = TEMPLATES[rng.usize(..TEMPLATES.len())].to_vec();
            for _ in 0..rng.usize(1..=3) {
                let at = rng.usize(..input.len());
                match rng.u8(..5) {
                    0 => input[at] ^= 1 << rng.u8(..8),
                    1 => input[at] = rng.u8(..),
                    2 => {
                        let insert = INSERTS[rng.usize(..INSERTS.len())];
                        input.splice(at..at, insert.iter().copied());
                    }
                    3 => {
                        input.remove(at);
                    }
                    _ => duplicate_line(&mut input, at),
                }
            }
            input
        })
        .collect()
}

/// Repeats the line that contains byte `at` (up to its LF) right after it.
fn duplicate_line(input: &mut Vec<u8>, at: usize) {
    let start = input[..at]
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |lf| lf + 1);
    let Some(end) = input[at..].iter().position(|&byte| byte == b'\n') else {
        return;
    };
    let line = input[start..=at + end].to_vec();
    input.splice(at + end + 1..at + end + 1, line);
}

#[tokio::test]
async fn luas_reads_responses_as_hyper_does_or_stricter_on_purpose() {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();

    let cases = hand_written();
    for (input, expect) in &cases {
        let verdict = judge(input).await;
        let met = match (expect, &verdict) {
            (Expect::Accepted, Verdict::Accepted) | (Expect::Refused, Verdict::Refused) => true,
            (Expect::Stricter(expected), Verdict::Stricter(seen)) => expected == seen,
            _ => false,
        };
        if !met {
            failures.push(format!(
                "{}\n  expected {expect:?}, got {verdict:?}",
                escaped(input)
            ));
        }
        count(&mut counts, &verdict);
    }

    let mut rng = fastrand::Rng::with_seed(SEED);
    let mutated = mutations(&mut rng, MUTATIONS);
    for input in &mutated {
        let verdict = judge(input).await;
        if let Verdict::Disagree(why) = &verdict {
            failures.push(format!("{}\n  {why}", escaped(input)));
        }
        count(&mut counts, &verdict);
    }

    let summary: Vec<String> = counts
        .iter()
        .map(|(class, count)| format!("{class}={count}"))
        .collect();
    println!(
        "http1 response differential: {} inputs ({} hand-written, {} mutated): {}",
        cases.len() + mutated.len(),
        cases.len(),
        mutated.len(),
        summary.join(" ")
    );
    assert!(
        failures.is_empty(),
        "{} input(s) where luas and hyper's client disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn count(counts: &mut BTreeMap<String, usize>, verdict: &Verdict) {
    let key = match verdict {
        Verdict::Accepted => "accepted".to_owned(),
        Verdict::Refused => "refused".to_owned(),
        Verdict::Stricter(class) => format!("stricter:{class}"),
        Verdict::Disagree(_) => "disagree".to_owned(),
    };
    *counts.entry(key).or_default() += 1;
}
