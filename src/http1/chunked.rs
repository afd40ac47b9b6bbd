//! The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded
//! incrementally from the connection's read buffer without copying data.
//!
//! Strict where leniency lets two parsers disagree on where a body ends:
//! every line ends in CRLF (a bare LF or CR is an error), chunk sizes are
//! hex without a sign and fit 64 bits, extensions are skipped but bounded
//! and free of control characters, and trailers fit the head's limits.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// Chunk extensions are read and dropped; this bounds the bytes a client
/// can make luas read for nothing over one body (hyper's bound too).
pub const MAX_EXTENSION_BYTES: usize = 16 * 1024;

/// What one step of decoding produced.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Data(Bytes),
    /// The trailer section (never empty); the body ends after it.
    Trailers(HeaderMap),
    /// The body ended.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("an invalid chunk size")]
    Size,
    #[error("a chunk size larger than 64 bits")]
    SizeOverflow,
    #[error("an invalid chunk extension")]
    Extension,
    #[error("chunk extensions longer than {MAX_EXTENSION_BYTES} bytes")]
    ExtensionTooLong,
    #[error("a chunk line or chunk data not ended by CRLF")]
    LineEnd,
    #[error("an invalid trailer section")]
    Trailers,
    #[error("a trailer section larger than the listener's header limits")]
    TrailersTooLarge,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading the size's hex digits; `digits` so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the size, before `;` or CRLF.
    AfterSize {
        size: u64,
    },
    Extension {
        size: u64,
    },
    /// CR seen at the end of the size line.
    SizeLineFeed {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCarriageReturn,
    DataLineFeed,
    Trailers,
    Done,
}

/// Decodes one chunked body; feed it the connection's buffer as bytes arrive.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    extension_bytes: usize,
    max_trailer_bytes: usize,
    max_trailers: usize,
}

impl ChunkedDecoder {
    /// `max_trailer_bytes` and `max_trailers` are the listener's head limits.
    pub fn new(max_trailer_bytes: usize, max_trailers: usize) -> Self {
        Self {
            state: State::Size { size: 0, digits: 0 },
            extension_bytes: 0,
            max_trailer_bytes,
            max_trailers,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes what it can from the front of `buffer`. None: more bytes are
    /// needed. Data comes out as slices of the buffer's storage.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Decoded>, ChunkError> {
        loop {
            match self.state {
                State::Data { remaining } => {
                    if buffer.is_empty() {
                        return Ok(None);
                    }
                    let take =
                        usize::try_from(remaining).map_or(buffer.len(), |r| r.min(buffer.len()));
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCarriageReturn
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Some(Decoded::Data(buffer.split_to(take).freeze())));
                }
                State::Trailers => return self.trailers(buffer),
                State::Done => return Ok(Some(Decoded::End)),
                _ => {}
            }
            let Some(&byte) = buffer.first() else {
                return Ok(None);
            };
            buffer.advance(1);
            self.state = self.step(byte)?;
        }
    }

    /// One byte of a size line or of the CRLF after a chunk's data.
    fn step(&mut self, byte: u8) -> Result<State, ChunkError> {
        Ok(match self.state {
            State::Size { size, digits } => match hex_value(byte) {
                Some(value) => {
                    let size = size
                        .checked_mul(16)
                        .and_then(|size| size.checked_add(u64::from(value)))
                        .ok_or(ChunkError::SizeOverflow)?;
                    State::Size {
                        size,
                        digits: digits.saturating_add(1),
                    }
                }
                None if digits == 0 => return Err(ChunkError::Size),
                None => Self::after_size(size, byte)?,
            },
            State::AfterSize { size } => Self::after_size(size, byte)?,
            State::Extension { size } => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSION_BYTES {
                    return Err(ChunkError::ExtensionTooLong);
                }
                match byte {
                    b'\r' => State::SizeLineFeed { size },
                    b'\t' => State::Extension { size },
                    byte if byte < 0x20 || byte == 0x7f => return Err(ChunkError::Extension),
                    _ => State::Extension { size },
                }
            }
            State::SizeLineFeed { size } => match (byte, size) {
                (b'\n', 0) => State::Trailers,
                (b'\n', size) => State::Data { remaining: size },
                _ => return Err(ChunkError::LineEnd),
            },
            State::DataCarriageReturn if byte == b'\r' => State::DataLineFeed,
            State::DataLineFeed if byte == b'\n' => State::Size { size: 0, digits: 0 },
            State::DataCarriageReturn | State::DataLineFeed => return Err(ChunkError::LineEnd),
            State::Data { .. } | State::Trailers | State::Done => {
                unreachable!("handled before reading a byte")
            }
        })
    }

    fn after_size(size: u64, byte: u8) -> Result<State, ChunkError> {
        Ok(match byte {
            b' ' | b'\t' => State::AfterSize { size },
            b';' => State::Extension { size },
            b'\r' => State::SizeLineFeed { size },
            b'\n' => return Err(ChunkError::LineEnd),
            _ => return Err(ChunkError::Size),
        })
    }

    /// The trailer section after the last chunk: CRLF alone, or header
    /// fields ending in an empty line; read only once it is whole.
    fn trailers(&mut self, buffer: &mut BytesMut) -> Result<Option<Decoded>, ChunkError> {
        match buffer.first() {
            None => return Ok(None),
            Some(b'\r') => {
                let Some(&second) = buffer.get(1) else {
                    return Ok(None);
                };
                if second != b'\n' {
                    return Err(ChunkError::LineEnd);
                }
                buffer.advance(2);
                self.state = State::Done;
                return Ok(Some(Decoded::End));
            }
            Some(_) => {}
        }
        let window = &buffer[..buffer.len().min(self.max_trailer_bytes)];
        let Some(end) = window.windows(4).position(|four| four == b"\r\n\r\n") else {
            // Line ends first, so the error does not depend on how the
            // bytes arrived (the fuzzer's whole-against-pieces check).
            if has_bare_line_end(window) {
                return Err(ChunkError::LineEnd);
            }
            if buffer.len() >= self.max_trailer_bytes {
                return Err(ChunkError::TrailersTooLarge);
            }
            return Ok(None);
        };
        let section = &buffer[..end + 4];
        if has_bare_line_end(section) {
            return Err(ChunkError::LineEnd);
        }
        let mut slots = vec![httparse::EMPTY_HEADER; self.max_trailers];
        let fields = match httparse::parse_headers(section, &mut slots) {
            Ok(httparse::Status::Complete((length, fields))) if length == section.len() => fields,
            Err(httparse::Error::TooManyHeaders) => return Err(ChunkError::TrailersTooLarge),
            _ => return Err(ChunkError::Trailers),
        };
        let mut trailers = HeaderMap::with_capacity(fields.len());
        for field in fields {
            let name =
                HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| ChunkError::Trailers)?;
            let value = HeaderValue::from_bytes(field.value).map_err(|_| ChunkError::Trailers)?;
            trailers.append(name, value);
        }
        buffer.advance(end + 4);
        self.state = State::Done;
        Ok(Some(Decoded::Trailers(trailers)))
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// An LF without its CR, or a CR without its LF.
fn has_bare_line_end(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(index, &byte)| match byte {
        b'\n' => index == 0 || bytes[index - 1] != b'\r',
        b'\r' => bytes.get(index + 1).is_some_and(|&next| next != b'\n'),
        _ => false,
    })
}

/// Decodes a whole chunked body from `input` at once: its data, its
/// trailers and how many bytes of `input` it took. None when `input` ends
/// before the body does. For tests and fuzzing.
pub fn decode_all(
    input: &[u8],
    max_trailer_bytes: usize,
) -> Result<Option<(Vec<u8>, HeaderMap, usize)>, ChunkError> {
    let mut decoder = ChunkedDecoder::new(max_trailer_bytes, 100);
    let mut buffer = BytesMut::from(input);
    let mut data = Vec::new();
    loop {
        match decoder.decode(&mut buffer)? {
            None => return Ok(None),
            Some(Decoded::Data(bytes)) => data.extend_from_slice(&bytes),
            Some(Decoded::Trailers(trailers)) => {
                return Ok(Some((data, trailers, input.len() - buffer.len())))
            }
            Some(Decoded::End) => {
                return Ok(Some((data, HeaderMap::new(), input.len() - buffer.len())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Result<Option<(Vec<u8>, HeaderMap, usize)>, ChunkError> {
        decode_all(input, 1024)
    }

    #[test]
    fn chunks_extensions_and_trailers_decode() {
        let input = b"5\r\nhello\r\n6;name=\"v\"\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
        let (data, trailers, used) = whole(input).unwrap().unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(trailers["x-sum"], "1");
        assert_eq!(&input[used..], b"NEXT");
        let (data, trailers, used) = whole(b"A \r\n0123456789\r\n000\r\n\r\n").unwrap().unwrap();
        assert_eq!((data.len(), trailers.len(), used), (10, 0, 23));
    }

    #[test]
    fn byte_by_byte_gives_the_same_body() {
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
        let mut decoder = ChunkedDecoder::new(1024, 10);
        let mut buffer = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = None;
        for &byte in input {
            buffer.extend_from_slice(&[byte]);
            while let Some(decoded) = decoder.decode(&mut buffer).unwrap() {
                match decoded {
                    Decoded::Data(bytes) => data.extend_from_slice(&bytes),
                    Decoded::Trailers(map) => trailers = Some(map),
                    Decoded::End => unreachable!("trailers end this body"),
                }
                if decoder.is_done() {
                    break;
                }
            }
        }
        assert_eq!(data, b"abcde");
        assert_eq!(trailers.unwrap()["t"], "v");
        assert!(decoder.is_done());
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let cases: &[(&[u8], ChunkError)] = &[
            (b"zz\r\n", ChunkError::Size),
            (b"\r\n", ChunkError::Size),
            (b"-5\r\n", ChunkError::Size),
            (b"+5\r\n", ChunkError::Size),
            (b"0x5\r\n", ChunkError::Size),
            (b"5\nhello\r\n", ChunkError::LineEnd),
            (b"5\r\nhelloXX", ChunkError::LineEnd),
            (b"5\r\nhello\n0\r\n\r\n", ChunkError::LineEnd),
            (b"5\rhello", ChunkError::LineEnd),
            (b"10000000000000000\r\n", ChunkError::SizeOverflow),
            (b"5;a\x01\r\n", ChunkError::Extension),
            (b"5;a\nb\r\n", ChunkError::Extension),
            (b"0\r\nX: a\nY: b\r\n\r\n", ChunkError::LineEnd),
            (b"0\r\nbad trailer\r\n\r\n", ChunkError::Trailers),
            (b"0\r\n\rX", ChunkError::LineEnd),
        ];
        for (input, expected) in cases {
            assert_eq!(
                whole(input).as_ref().map(|_| ()).unwrap_err(),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_EXTENSION_BYTES));
        assert_eq!(
            whole(long.as_bytes()).unwrap_err(),
            ChunkError::ExtensionTooLong
        );
        // Whole or byte by byte, a bare LF in an over-long trailer section
        // is the same error.
        let mut input = b"0\r\n\n\x01".to_vec();
        input.extend(std::iter::repeat_n(b'a', 20));
        assert_eq!(decode_all(&input, 9).unwrap_err(), ChunkError::LineEnd);
        let mut decoder = ChunkedDecoder::new(9, 10);
        let mut buffer = BytesMut::new();
        let mut piecewise = None;
        for &byte in &input {
            buffer.extend_from_slice(&[byte]);
            if let Err(error) = decoder.decode(&mut buffer) {
                piecewise = Some(error);
                break;
            }
        }
        assert_eq!(piecewise, Some(ChunkError::LineEnd));
        let big = format!("0\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            whole(big.as_bytes()).unwrap_err(),
            ChunkError::TrailersTooLarge
        );
    }

    #[test]
    fn an_unfinished_body_asks_for_more() {
        for input in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r",
            b"0\r\n",
            b"0\r\nX: 1\r\n",
            b"0\r\n\r",
        ] {
            assert_eq!(
                whole(input),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
