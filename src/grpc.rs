//! What luas reads of gRPC: the content type that marks a gRPC message, the
//! `grpc-status` a response ends with, the `grpc-timeout` a client sends,
//! and the set of statuses that count as the server's failure.
//!
//! Pure functions over header maps, depending on nothing else in luas:
//! `config` parses a [`StatusSet`] from its names, `proxy` classifies
//! responses and honours deadlines with these, and `retry` asks a set
//! whether a status is retried. Making gRPC errors (luas's own trailers-only
//! answers) is `proxy::error`'s.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::{header, HeaderMap, HeaderName};

/// The gRPC status codes by their canonical names, lower case with hyphens
/// as Envoy's `retry_on` writes them, in code order (0 to 16).
pub const STATUS_NAMES: [&str; 17] = [
    "ok",
    "cancelled",
    "unknown",
    "invalid-argument",
    "deadline-exceeded",
    "not-found",
    "already-exists",
    "permission-denied",
    "resource-exhausted",
    "failed-precondition",
    "aborted",
    "out-of-range",
    "unimplemented",
    "internal",
    "unavailable",
    "data-loss",
    "unauthenticated",
];

/// `grpc-status: 2`, what a code outside 0-16 means (the gRPC spec maps
/// unknown codes to UNKNOWN).
const UNKNOWN: u32 = 2;

// Names made once: a lookup by `&str` parses the name on every call.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// A set of gRPC status codes, 0 to 16, as one bit each: checked per
/// response without a lookup or an allocation.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusSet(u32);

impl StatusSet {
    pub const EMPTY: Self = Self(0);

    /// The server-side failures: UNKNOWN, DEADLINE_EXCEEDED,
    /// RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
    /// Client errors such as INVALID_ARGUMENT or NOT_FOUND are not the
    /// backend's fault, and CANCELLED is usually the client's own doing.
    pub const SERVER_FAILURES: Self = Self::of(&[2, 4, 8, 12, 13, 14, 15]);

    pub const fn of(codes: &[u32]) -> Self {
        let mut bits = 0;
        let mut index = 0;
        while index < codes.len() {
            bits |= 1 << codes[index];
            index += 1;
        }
        Self(bits)
    }

    pub fn contains(self, code: u32) -> bool {
        code < 32 && self.0 & (1 << code) != 0
    }

    /// A status was given and it is in the set.
    pub fn failed(self, code: Option<u32>) -> bool {
        code.is_some_and(|code| self.contains(code))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub fn with(self, code: u32) -> Self {
        Self(self.0 | 1 << code)
    }

    pub fn codes(self) -> impl Iterator<Item = u32> {
        (0..17).filter(move |&code| self.contains(code))
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_set()
            .entries(self.codes().map(|code| STATUS_NAMES[code as usize]))
            .finish()
    }
}

/// A status code written as its name (`unavailable`, `UNAVAILABLE`,
/// `deadline_exceeded`) or its number (`14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode(pub u32);

impl FromStr for StatusCode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(code) = text.parse::<u32>() {
            return if code <= 16 {
                Ok(Self(code))
            } else {
                Err(format!(
                    "gRPC status {code} does not exist; codes run from 0 (ok) to 16 (unauthenticated)"
                ))
            };
        }
        let name = text.trim().to_ascii_lowercase().replace('_', "-");
        STATUS_NAMES
            .iter()
            .position(|known| *known == name)
            .map(|code| Self(code as u32))
            .ok_or_else(|| {
                format!(
                    "unknown gRPC status {text:?}; use a name such as unavailable, internal or \
                     deadline-exceeded, or a code from 0 to 16"
                )
            })
    }
}

/// True when the headers carry the gRPC content type, `application/grpc`
/// with an optional `+format` or parameters (not gRPC-Web).
pub fn has_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let value = value.trim_start();
            value.len() >= 16
                && value[..16].eq_ignore_ascii_case("application/grpc")
                && matches!(value.as_bytes().get(16), None | Some(b'+' | b';'))
        })
}

/// The `grpc-status` in a header map (a trailers-only response's headers,
/// or a response's trailers). A value that is not a number reads as
/// UNKNOWN, as gRPC clients read it.
pub fn status(headers: &HeaderMap) -> Option<u32> {
    let value = headers.get(GRPC_STATUS)?;
    Some(
        std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .unwrap_or(UNKNOWN),
    )
}

/// What a response's headers say of it as gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// Not the gRPC content type.
    NotGrpc,
    /// gRPC, its status still to come in the trailers.
    StatusInTrailers,
    /// A trailers-only gRPC response: `grpc-status` in its headers.
    TrailersOnly(u32),
}

/// Reads a response's headers as gRPC: the content type first (a standard
/// header's lookup is a table index, while `grpc-status`'s hashes the name
/// byte by byte), then `grpc-status`.
pub fn response_kind(headers: &HeaderMap) -> ResponseKind {
    if !has_content_type(headers) {
        return ResponseKind::NotGrpc;
    }
    match status(headers) {
        Some(code) => ResponseKind::TrailersOnly(code),
        None => ResponseKind::StatusInTrailers,
    }
}

/// The status of a trailers-only gRPC response: `grpc-status` in the
/// headers of a response with the gRPC content type. None for every other
/// response, including a gRPC response whose status is still to come in
/// its trailers.
pub fn trailers_only_status(headers: &HeaderMap) -> Option<u32> {
    match response_kind(headers) {
        ResponseKind::TrailersOnly(code) => Some(code),
        ResponseKind::NotGrpc | ResponseKind::StatusInTrailers => None,
    }
}

/// Writes a status luas itself gives, `grpc-status` and `grpc-message`,
/// into a trailers-only response's headers or a response's trailers.
/// luas's messages are plain ASCII without '%', so they need no
/// percent-encoding.
pub fn insert_status(headers: &mut HeaderMap, code: u16, message: &str) {
    headers.insert(GRPC_STATUS, http::HeaderValue::from(code));
    if let Ok(message) = http::HeaderValue::from_str(message) {
        headers.insert("grpc-message", message);
    }
}

/// The deadline a gRPC client sent in `grpc-timeout` (up to 8 digits and a
/// unit: H, M, S, m, u or n), if it sent a valid one.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn grpc_messages_are_known_by_their_content_type() {
        for (content_type, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("Application/GRPC; charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
        ] {
            let map = headers(&[("content-type", content_type)]);
            assert_eq!(has_content_type(&map), grpc, "{content_type}");
        }
        assert!(!has_content_type(&HeaderMap::new()));
    }

    #[test]
    fn timeouts_parse_as_the_grpc_spec_writes_them() {
        for (text, expected) in [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("5n", Some(Duration::from_nanos(5))),
            ("123456789S", None),
            ("1s", None),
            ("S", None),
            ("-1S", None),
            ("", None),
        ] {
            let map = headers(&[("grpc-timeout", text)]);
            assert_eq!(timeout(&map), expected, "{text:?}");
        }
    }

    #[test]
    fn the_default_failures_are_the_server_side_statuses() {
        let failures = StatusSet::SERVER_FAILURES;
        for code in [2, 4, 8, 12, 13, 14, 15] {
            assert!(failures.contains(code), "{code}");
        }
        for code in [0, 1, 3, 5, 6, 7, 9, 10, 11, 16, 17, 40] {
            assert!(!failures.contains(code), "{code}");
        }
        assert_eq!(
            format!("{failures:?}"),
            r#"{"unknown", "deadline-exceeded", "resource-exhausted", "unimplemented", "internal", "unavailable", "data-loss"}"#
        );
    }

    #[test]
    fn statuses_are_read_from_headers_and_trailers() {
        let grpc = |status: &str| {
            headers(&[
                ("content-type", "application/grpc"),
                ("grpc-status", status),
            ])
        };
        assert_eq!(trailers_only_status(&grpc("14")), Some(14));
        assert_eq!(trailers_only_status(&grpc("0")), Some(0));
        // Not a number: UNKNOWN, as a gRPC client reads it.
        assert_eq!(trailers_only_status(&grpc("oops")), Some(2));
        // Not gRPC, or no status in the headers (it comes in trailers).
        assert_eq!(
            trailers_only_status(&headers(&[("grpc-status", "14")])),
            None
        );
        assert_eq!(
            trailers_only_status(&headers(&[("content-type", "application/grpc")])),
            None
        );
        // Trailers carry no content type.
        assert_eq!(status(&headers(&[("grpc-status", "13")])), Some(13));
        assert_eq!(status(&HeaderMap::new()), None);
    }

    #[test]
    fn status_codes_parse_from_names_and_numbers() {
        assert_eq!("unavailable".parse(), Ok(StatusCode(14)));
        assert_eq!("UNAVAILABLE".parse(), Ok(StatusCode(14)));
        assert_eq!("deadline_exceeded".parse(), Ok(StatusCode(4)));
        assert_eq!("resource-exhausted".parse(), Ok(StatusCode(8)));
        assert_eq!("16".parse(), Ok(StatusCode(16)));
        assert!("17"
            .parse::<StatusCode>()
            .unwrap_err()
            .contains("0 (ok) to 16"));
        assert!("unavailible"
            .parse::<StatusCode>()
            .unwrap_err()
            .contains("unknown gRPC status"));
        for (code, name) in STATUS_NAMES.iter().enumerate() {
            assert_eq!(name.parse(), Ok(StatusCode(code as u32)));
        }
    }
}
