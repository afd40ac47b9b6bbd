//! A differential test of luas's HTTP/1.1 request codec (`luas::http1`)
//! against hyper's HTTP/1 server, on the same bytes: where does each
//! request end, and what is its body? Request smuggling lives in the
//! answers two parsers give differently, so every input is read by both
//! and compared request by request.
//!
//! The oracle is a real hyper 1.x server (`hyper::server::conn::http1`) on
//! a loopback port, whose service reads each request's whole body and
//! records it; the client writes the input, shuts down its write side and
//! reads until the server closes. The luas side runs `parse_request` and
//! the body's framing (a length, or a `ChunkedDecoder`) over the same
//! bytes. Inputs: a hand-written list of the classic ambiguities, each
//! with the verdict it must get, and seeded mutations of valid pipelined
//! requests.
//!
//! luas refusing what hyper accepts is allowed only for the deliberate
//! strictness classes of [`StrictClass`], each recognised explicitly and
//! counted. Anything else where the two differ fails the test: a request
//! both accept with a different target or body, or a request luas accepts
//! that hyper refused or never produced (the dangerous direction).
//! `cargo test --test it http1_differential -- --nocapture` prints the
//! counts per class.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use luas::http1::chunked::{ChunkError, ChunkedDecoder, Decoded};
use luas::http1::{parse_request, Framing, HeadError, HeadLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// hyper's defaults: 100 header fields, trailers of at most 16 KiB. The
/// head limit is far above any input here.
const LIMITS: HeadLimits = HeadLimits {
    max_bytes: 64 * 1024,
    max_headers: 100,
};
const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Bounds each exchange with hyper; it closes well within this.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
const SEED: u64 = 0x5EED_0001;
const MUTATIONS: usize = 2000;

/// One request as the application saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exchange {
    method: String,
    target: String,
    version: http::Version,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

impl Exchange {
    fn new(parts: &http::request::Parts, body: Vec<u8>, trailers: Option<&HeaderMap>) -> Self {
        Self {
            method: parts.method.to_string(),
            target: parts.uri.to_string(),
            version: parts.version,
            body,
            trailers: trailers
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
        }
    }
}

/// Why luas stopped reading the input.
#[derive(Debug)]
enum Stop {
    /// The input ended between requests, or in a head (more to read).
    End,
    /// The request said the connection ends after it.
    Close,
    Head(HeadError),
    /// The input ended inside a body.
    BodyCut,
    Body(ChunkError),
}

/// The ways luas is stricter than hyper on purpose: hyper accepts the
/// request, luas refuses it (400 or 501) and closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StrictClass {
    /// Content-Length and Transfer-Encoding together: hyper drops the
    /// length and reads chunked (then closes); luas answers 400.
    LengthAndCoding,
    /// `chunked` twice (`chunked, chunked` or two fields): hyper reads
    /// chunked, luas refuses a body chunked twice.
    ChunkedTwice,
    /// Codings besides chunked (`gzip, chunked`, `identity` then
    /// `chunked`): hyper looks only at the last field's last coding; luas
    /// decodes none of them and answers 501.
    OtherCodings,
    /// An empty element in Transfer-Encoding (`, chunked`): hyper looks
    /// only at the last element; luas refuses a list it would have to
    /// guess about.
    EmptyCodingElement,
    /// Authority form outside CONNECT, `*` outside OPTIONS, or an origin
    /// form for CONNECT: hyper takes any URI; luas answers 400.
    TargetForm,
    /// A Content-Length of more than 19 digits (leading zeros): hyper
    /// reads the number, luas refuses lengths it would need 20 digits for.
    LongLength,
    /// Control bytes in a chunk extension: hyper skips any byte but LF.
    ExtensionControlByte,
    /// The trailer section: hyper takes any byte but CR inside a trailer
    /// line (a bare LF too) and hands what it read to httparse, ignoring
    /// what httparse left over; luas wants CRLF lines only. hyper checks
    /// CRLF strictly everywhere else in a chunked body, so a line-end or
    /// trailer error on a body hyper accepted is in the trailers.
    LenientTrailers,
}

/// What reading one input with both gave.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The same requests, the same bodies.
    Same(usize),
    /// luas refused request `.1` (counting from 0) for a deliberate reason.
    Stricter(StrictClass, usize),
    Disagree(String),
}

/// The requests luas's codec finds in `input`, as `server::http1` reads
/// them, and why it stopped.
fn luas_reading(input: &[u8]) -> (Vec<Exchange>, Stop) {
    let mut buffer = BytesMut::from(input);
    let mut exchanges = Vec::new();
    // One request per round; each takes at least one byte.
    for _ in 0..=input.len() {
        if buffer.is_empty() {
            return (exchanges, Stop::End);
        }
        let head = match parse_request(&mut buffer, &LIMITS) {
            Ok(Some(head)) => head,
            Ok(None) => return (exchanges, Stop::End),
            Err(error) => return (exchanges, Stop::Head(error)),
        };
        let (body, trailers) = match head.framing {
            Framing::Empty => (Vec::new(), None),
            Framing::Length(length) => {
                if (buffer.len() as u64) < length {
                    return (exchanges, Stop::BodyCut);
                }
                (buffer.split_to(length as usize).to_vec(), None)
            }
            Framing::Chunked => match decode_chunked(&mut buffer) {
                Ok(Some(body)) => body,
                Ok(None) => return (exchanges, Stop::BodyCut),
                Err(error) => return (exchanges, Stop::Body(error)),
            },
        };
        exchanges.push(Exchange::new(&head.parts, body, trailers.as_ref()));
        if !head.keep_alive || head.parts.method == Method::CONNECT {
            return (exchanges, Stop::Close);
        }
    }
    unreachable!("every request takes at least one byte")
}

type ChunkedBody = (Vec<u8>, Option<HeaderMap>);

fn decode_chunked(buffer: &mut BytesMut) -> Result<Option<ChunkedBody>, ChunkError> {
    let mut decoder = ChunkedDecoder::new(MAX_TRAILER_BYTES, LIMITS.max_headers);
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

/// The requests a hyper HTTP/1 server hands its service for `input` on
/// one connection, each with its whole body (a request whose body fails
/// is not counted).
async fn hyper_reading(input: &[u8]) -> Vec<Exchange> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn({
        let seen = seen.clone();
        async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let seen = seen.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    if let Ok(collected) = body.collect().await {
                        let trailers = collected.trailers().cloned();
                        let body = collected.to_bytes().to_vec();
                        let exchange = Exchange::new(&parts, body, trailers.as_ref());
                        seen.lock().unwrap().push(exchange);
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                }
            });
            // half_close: the client's shutdown after its last request
            // must not cut that request's response (and its record) short.
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    });
    let mut client = TcpStream::connect(address).await.unwrap();
    // hyper may close (and reset) before it read everything: errors here
    // are part of the exchange, not of the test.
    let _ = client.write_all(input).await;
    let _ = client.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(EXCHANGE_TIMEOUT, client.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "hyper did not close within {EXCHANGE_TIMEOUT:?} on {}",
        escaped(input)
    );
    tokio::time::timeout(EXCHANGE_TIMEOUT, server)
        .await
        .expect("hyper's connection ends after the client's")
        .unwrap();
    let seen = seen.lock().unwrap();
    seen.clone()
}

async fn judge(input: &[u8]) -> Verdict {
    let expected = hyper_reading(input).await;
    let (actual, stop) = luas_reading(input);
    for (index, (hyper, luas)) in expected.iter().zip(&actual).enumerate() {
        if hyper != luas {
            return Verdict::Disagree(format!(
                "request {index} differs:\n  hyper: {hyper:?}\n  luas:  {luas:?}"
            ));
        }
    }
    if actual.len() > expected.len() {
        return Verdict::Disagree(format!(
            "luas accepted request {} ({:?}), which hyper refused or never read; hyper read {}",
            expected.len(),
            actual[expected.len()],
            expected.len()
        ));
    }
    if actual.len() < expected.len() {
        let index = actual.len();
        return match classify(input, &stop) {
            Some(class) => Verdict::Stricter(class, index),
            None => Verdict::Disagree(format!(
                "luas stopped at request {index} ({stop:?}), which hyper accepted: {:?}",
                expected[index]
            )),
        };
    }
    Verdict::Same(actual.len())
}

/// Which deliberate strictness made luas stop where hyper went on, if any.
/// `input` is the whole input: the fields of the refused head are found
/// in it by reading it again up to that head.
fn classify(input: &[u8], stop: &Stop) -> Option<StrictClass> {
    match stop {
        Stop::Head(error) => {
            let fields = refused_head_fields(input);
            let has = |name: &http::HeaderName| fields.iter().any(|(field, _)| field == name);
            Some(match error {
                HeadError::Malformed("both Content-Length and Transfer-Encoding") => {
                    StrictClass::LengthAndCoding
                }
                // hyper ignores Content-Length next to Transfer-Encoding,
                // whatever it says; luas reads it first.
                HeadError::Malformed(
                    "an invalid Content-Length" | "Content-Length values that disagree",
                ) if has(&TRANSFER_ENCODING) => StrictClass::LengthAndCoding,
                HeadError::Malformed("chunked applied twice") => StrictClass::ChunkedTwice,
                HeadError::UnsupportedTransferCoding => StrictClass::OtherCodings,
                HeadError::Malformed("an empty Transfer-Encoding element") => {
                    StrictClass::EmptyCodingElement
                }
                HeadError::Malformed("a request target in the wrong form") => {
                    StrictClass::TargetForm
                }
                HeadError::Malformed("an invalid Content-Length")
                    if fields
                        .iter()
                        .filter(|(name, _)| name == CONTENT_LENGTH)
                        .all(|(_, value)| {
                            value.len() > 19 && value.iter().all(u8::is_ascii_digit)
                        }) =>
                {
                    StrictClass::LongLength
                }
                _ => return None,
            })
        }
        Stop::Body(ChunkError::Extension) => Some(StrictClass::ExtensionControlByte),
        Stop::Body(ChunkError::LineEnd | ChunkError::Trailers) => {
            Some(StrictClass::LenientTrailers)
        }
        _ => None,
    }
}

/// The header fields (name, value) of the head luas refused: the luas
/// reading is repeated up to that head, whose fields httparse lists.
fn refused_head_fields(input: &[u8]) -> Vec<(http::HeaderName, Vec<u8>)> {
    let (accepted, _) = luas_reading(input);
    let mut buffer = BytesMut::from(input);
    for _ in &accepted {
        let head = parse_request(&mut buffer, &LIMITS).unwrap().unwrap();
        match head.framing {
            Framing::Empty => {}
            Framing::Length(length) => drop(buffer.split_to(length as usize)),
            Framing::Chunked => drop(decode_chunked(&mut buffer).unwrap().unwrap()),
        }
    }
    let mut slots = vec![httparse::EMPTY_HEADER; LIMITS.max_headers];
    let mut request = httparse::Request::new(&mut slots);
    if request.parse(&buffer).is_err() {
        return Vec::new();
    }
    request
        .headers
        .iter()
        .filter_map(|field| {
            let name = http::HeaderName::from_bytes(field.name.as_bytes()).ok()?;
            Some((name, field.value.to_vec()))
        })
        .collect()
}

fn escaped(input: &[u8]) -> String {
    format!("b\"{}\"", input.escape_ascii())
}

/// What a hand-written case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Both read this many requests, identically.
    Same(usize),
    /// hyper accepts request 0 or later; luas refuses it for this reason.
    Stricter(StrictClass),
}

impl fmt::Display for StrictClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, formatter)
    }
}

/// The classic ambiguities, one line each, with the verdict each gets.
fn hand_written() -> Vec<(&'static [u8], Expect)> {
    use Expect::{Same, Stricter};
    use StrictClass::*;
    vec![
        // Plain requests and pipelining.
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", Same(3)),
        (b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", Same(0)),
        (b"\r\n\r\nGET /after-empty-lines HTTP/1.1\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n", Same(2)),
        (b"GET / HTTP/1.1\nHost: x\n\nGET /lf HTTP/1.1\n\n", Same(2)),
        (b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\nGET /b HTTP/1.1\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET /b HTTP/1.1\r\n\r\n", Same(2)),
        (b"GET /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n", Same(2)),
        // HTTP/1.0: one request unless keep-alive; no chunked.
        (b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n", Same(1)),
        (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n", Same(2)),
        (b"POST /a HTTP/1.0\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nokGET /b HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"GET / HTTP/2.0\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1 \r\n\r\n", Same(0)),
        (b"GET  / HTTP/1.1\r\n\r\n", Same(0)),
        // Target forms.
        (b"GET http://a.test/p?q HTTP/1.1\r\nHost: a.test\r\n\r\nGET http://b.test HTTP/1.1\r\n\r\n", Same(2)),
        (b"OPTIONS * HTTP/1.1\r\n\r\n", Same(1)),
        (b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\nGET /tunnelled HTTP/1.1\r\n\r\n", Same(1)),
        (b"GET a.test:80 HTTP/1.1\r\n\r\n", Stricter(TargetForm)),
        (b"GET * HTTP/1.1\r\n\r\n", Stricter(TargetForm)),
        (b"GET /a HTTP/1.1\r\n\r\nGET a.test:80 HTTP/1.1\r\n\r\n", Stricter(TargetForm)),
        // Content-Length.
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhelloGET /n HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhelloGET /n HTTP/1.1\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length:  005 \r\n\r\nhelloGET /n HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.1\r\nContent-Length: 00000000000000000005\r\n\r\nhello", Stricter(LongLength)),
        (b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", Same(0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET", Same(1)),
        (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /n HTTP/1.1\r\n\r\n", Same(2)),
        // Content-Length with Transfer-Encoding, in either order.
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n", Stricter(LengthAndCoding)),
        (b"POST / HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGPOST / HTTP/1.1\r\n\r\n", Stricter(LengthAndCoding)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", Same(0)),
        // Transfer-Encoding variants.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /n HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", Stricter(ChunkedTwice)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(ChunkedTwice)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Stricter(OtherCodings)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", Stricter(EmptyCodingElement)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked ,\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\nGET /n HTTP/1.1\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", Same(0)),
        // obs-fold and odd field lines.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n0\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1\r\nno-colon\r\n\r\n", Same(0)),
        (b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", Same(1)),
        // Chunk sizes.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\nGET /n HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \t\r\nhello\r\n0\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000005\r\nhello\r\n0\r\n\r\n", Same(1)),
        // Bare LF and CR in chunk lines.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n", Same(0)),
        // Chunk extensions.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d;e\"\r\nhello\r\n0;x\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a=b\r\nhello\r\n0\r\n\r\n", Same(1)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01b\r\nhello\r\n0\r\n\r\n", Stricter(ExtensionControlByte)),
        // Trailers.
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\nGET /n HTTP/1.1\r\n\r\n", Same(2)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\n\r\n\r\n", Stricter(LenientTrailers)),
        // (hyper counts trailer lines by CRLF: two fields on one such line
        // are more than the slots it gives httparse.)
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\nX-B: 2\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nX-A: 1\r\n\r\n", Stricter(LenientTrailers)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\rX: 2\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n", Same(0)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n Y: folded\r\n\r\n", Same(0)),
        // Expect and bodies sent anyway.
        (b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nokGET /n HTTP/1.1\r\n\r\n", Same(2)),
    ]
}

/// Valid pipelined requests that the mutations start from: every framing
/// and both versions, so a mutation can break each.
const TEMPLATES: &[&[u8]] = &[
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b?c=d HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nPOST /d HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /e HTTP/1.1\r\n\r\n",
    b"PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\nA\r\n0123456789\r\n0\r\n\r\nDELETE /g HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /h HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"POST /i HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbodyGET http://a.test/j HTTP/1.1\r\nHost: a.test\r\n\r\nPOST /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
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
async fn luas_reads_requests_as_hyper_does_or_stricter_on_purpose() {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();

    let cases = hand_written();
    for (input, expect) in &cases {
        let verdict = judge(input).await;
        let met = match (expect, &verdict) {
            (Expect::Same(expected), Verdict::Same(seen)) => expected == seen,
            (Expect::Stricter(expected), Verdict::Stricter(seen, _)) => expected == seen,
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
        "http1 differential: {} inputs ({} hand-written, {} mutated): {}",
        cases.len() + mutated.len(),
        cases.len(),
        mutated.len(),
        summary.join(" ")
    );
    assert!(
        failures.is_empty(),
        "{} input(s) where luas and hyper disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn count(counts: &mut BTreeMap<String, usize>, verdict: &Verdict) {
    let key = match verdict {
        Verdict::Same(_) => "same".to_owned(),
        Verdict::Stricter(class, _) => format!("stricter:{class}"),
        Verdict::Disagree(_) => "disagree".to_owned(),
    };
    *counts.entry(key).or_default() += 1;
}
