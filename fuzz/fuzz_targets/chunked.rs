//! Fuzzes the chunked body decoder (`luas::http1::chunked`) on arbitrary
//! bytes: `decode_all` on the whole input must agree with a
//! `ChunkedDecoder` fed the same bytes in pieces of arbitrary sizes (the
//! same data, trailers and bytes used, or an error of the same class), and
//! a body that decodes must end exactly where it says: one byte less asks
//! for more.
//!
//! Input layout: byte 0 picks the trailer limit, byte 1 seeds the piece
//! sizes, the rest is the body as the client sent it.

#![no_main]

use bytes::BytesMut;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use luas::http1::chunked::{decode_all, ChunkError, ChunkedDecoder, Decoded};

type Result = std::result::Result<Option<(Vec<u8>, HeaderMap, usize)>, ChunkError>;

/// `decode_all`'s bound on the number of trailer fields.
const MAX_TRAILERS: usize = 100;

fuzz_target!(|data: &[u8]| {
    let [limit_knob, piece_seed, input @ ..] = data else {
        return;
    };
    let max_trailer_bytes = 1 + usize::from(*limit_knob) * 4;
    let whole = decode_all(input, max_trailer_bytes);
    let pieces = decode_in_pieces(input, max_trailer_bytes, *piece_seed);
    assert!(
        same_class(&whole, &pieces),
        "decode_all and pieces (seed {piece_seed}) disagree on {:?}:\n  whole:  {whole:?}\n  pieces: {pieces:?}",
        String::from_utf8_lossy(input)
    );
    if let Ok(Some((data, _, used))) = &whole {
        assert!(
            *used <= input.len() && data.len() < *used,
            "{used} bytes used for {} of data",
            data.len()
        );
        assert!(
            input[..*used].ends_with(b"\r\n"),
            "a body that does not end in CRLF"
        );
        assert_eq!(
            decode_all(&input[..*used], max_trailer_bytes),
            whole,
            "the body alone decodes differently from the body and what follows"
        );
        assert_eq!(
            decode_all(&input[..*used - 1], max_trailer_bytes),
            Ok(None),
            "the body less its last byte does not ask for more"
        );
    }
});

/// The same body, or errors of the same class. One pair of errors is one
/// class: an unfinished trailer section is checked for a bare CR or LF
/// only while it is shorter than the limit, so a section that has both
/// is `TrailersTooLarge` when it arrived whole and `LineEnd` when it came
/// in small pieces. Both refuse the body.
fn same_class(whole: &Result, pieces: &Result) -> bool {
    match (whole, pieces) {
        (Err(ChunkError::TrailersTooLarge), Err(ChunkError::LineEnd))
        | (Err(ChunkError::LineEnd), Err(ChunkError::TrailersTooLarge)) => true,
        _ => whole == pieces,
    }
}

/// A `ChunkedDecoder` fed `input` the way a connection reads it: a piece at
/// a time (sizes 1 to 16 from a small generator seeded by `seed`),
/// decoding all it can after each piece.
fn decode_in_pieces(input: &[u8], max_trailer_bytes: usize, seed: u8) -> Result {
    let mut decoder = ChunkedDecoder::new(max_trailer_bytes, MAX_TRAILERS);
    let mut buffer = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    let mut state = u32::from(seed) | 0x100;
    loop {
        loop {
            match decoder.decode(&mut buffer)? {
                None => break,
                Some(Decoded::Data(bytes)) => {
                    assert!(!bytes.is_empty(), "an empty data frame");
                    data.extend_from_slice(&bytes);
                }
                Some(Decoded::Trailers(trailers)) => {
                    assert!(!trailers.is_empty(), "an empty trailer section as Trailers");
                    assert!(decoder.is_done());
                    return Ok(Some((data, trailers, fed - buffer.len())));
                }
                Some(Decoded::End) => {
                    assert!(decoder.is_done());
                    return Ok(Some((data, HeaderMap::new(), fed - buffer.len())));
                }
            }
        }
        if fed == input.len() {
            return Ok(None);
        }
        // xorshift32: deterministic piece sizes, different per seed.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 16) as usize + 1;
        let end = input.len().min(fed + size);
        buffer.extend_from_slice(&input[fed..end]);
        fed = end;
    }
}
