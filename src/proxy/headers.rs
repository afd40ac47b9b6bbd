//! Header rules of a forwarding proxy (RFC 9110 §7.6), in both directions.
//!
//! Requests: hop-by-hop headers removed (the fixed list plus every header
//! named in `Connection`), except `Upgrade`/`Connection: upgrade` on an
//! upgrade request and `TE: trailers` (gRPC needs it); `X-Forwarded-For`
//! appended with the client address; `X-Forwarded-Proto` and
//! `X-Forwarded-Host` set (overwritten: luas is the first hop it can vouch
//! for); `Via` appended; `x-request-id` kept or generated; `Host` preserved,
//! and added from the URI authority when an HTTP/2 client sent none.
//! Responses: hop-by-hop headers removed the same way and `Via` appended.
//!
//! Pure functions over `HeaderMap`; no I/O, no knowledge of routes.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, Version};

static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why a request is refused before routing, if it is: a missing, repeated or
/// invalid Host on HTTP/1.1 (RFC 9112 §3.2 requires a 400), or framing
/// headers that disagree (request smuggling). hyper already rejects most
/// malformed framing itself; this covers what reaches us.
pub(crate) fn framing_problem(request: &request::Parts) -> Option<&'static str> {
    let headers = &request.headers;
    if request.version == Version::HTTP_11 {
        let mut hosts = headers.get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (None, _) => return Some("an HTTP/1.1 request without Host"),
            (Some(_), Some(_)) => return Some("more than one Host"),
            (Some(host), None) => {
                if !is_valid_host(host.as_bytes()) {
                    return Some("an invalid Host");
                }
            }
        }
    }
    // Content-Length first: most requests have none, and then one lookup
    // answers both questions.
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lengths.next()?;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Some("both Content-Length and Transfer-Encoding");
    }
    if lengths.any(|other| other != first) {
        return Some("Content-Length values that disagree");
    }
    None
}

/// Whether `value` is a Host field's value as RFC 9110 §7.2 defines it,
/// `uri-host [ ":" port ]` (RFC 3986 §3.2.2-3): a bracketed IPv6 address
/// or IPvFuture literal, or a registered name (an IPv4 address is one too)
/// of unreserved characters, sub-delimiters and percent-encodings, then an
/// optional port of digits. No userinfo: a Host has none. Empty is refused
/// too, as nginx refuses it: every client luas serves names a host. Checked
/// in place; parsing it as an `http::uri::Authority` copied it (an
/// allocation per request).
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&byte| byte == b']') else {
            return false;
        };
        return is_ip_literal(&literal[..close]) && is_optional_port(&literal[close + 1..]);
    }
    let colon = value
        .iter()
        .position(|&byte| byte == b':')
        .unwrap_or(value.len());
    let (host, port) = value.split_at(colon);
    !host.is_empty() && is_registered_name(host) && is_optional_port(port)
}

/// `[ ":" port ]`, where `port = *DIGIT`.
fn is_optional_port(rest: &[u8]) -> bool {
    match rest {
        [] => true,
        [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// RFC 3986 `reg-name`: `*( unreserved / pct-encoded / sub-delims )`.
fn is_registered_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&byte, after)) = rest.split_first() {
        rest = match byte {
            b'%' => match after {
                [high, low, after @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    after
                }
                _ => return false,
            },
            _ if is_unreserved(byte) || is_sub_delimiter(byte) => after,
            _ => return false,
        };
    }
    true
}

/// RFC 3986 `IP-literal` without its brackets: an IPv6 address (no zone)
/// or `IPvFuture` (`"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`).
fn is_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        let Some(dot) = rest.iter().position(|&byte| byte == b'.') else {
            return false;
        };
        let (version, address) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !address.is_empty()
            && address
                .iter()
                .all(|&byte| is_unreserved(byte) || is_sub_delimiter(byte) || byte == b':');
    }
    std::str::from_utf8(literal).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// RFC 9112 §3.2.2: a request whose target is in absolute form
/// (`GET http://example.test/path HTTP/1.1`) names its authority there, and
/// the recipient must ignore the Host header and use the target's. The
/// Host is replaced here, before routing, so the route, the backend's Host
/// and the access log all see the target's authority; the backend gets the
/// origin form (`/path`), as `client` writes it. Userinfo is not part of a
/// Host. HTTP/2's `:authority` is already the request's authority.
pub(crate) fn use_absolute_form_authority(request: &mut request::Parts) {
    if request.version > Version::HTTP_11 {
        return;
    }
    let Some(authority) = request.uri.authority() else {
        return;
    };
    let host = match authority.port() {
        Some(port) => format!("{}:{}", authority.host(), port.as_str()),
        None => authority.host().to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&host) {
        request.headers.insert(header::HOST, value);
    }
}

/// True for a gRPC request (`content-type: application/grpc`, `+proto`,
/// `+json`, …), whose failures luas answers as gRPC statuses.
pub(crate) fn is_grpc(request: &request::Parts) -> bool {
    crate::grpc::has_content_type(&request.headers)
}

/// True for an HTTP/1.1 request asking to switch protocols (WebSocket and others).
pub(crate) fn is_upgrade_request(request: &request::Parts) -> bool {
    request.version == Version::HTTP_11
        && request.headers.contains_key(header::UPGRADE)
        && connection_has_token(&request.headers, "upgrade")
}

/// The body length a request declares, when it declares one that parses.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
}

/// A client's address as `X-Forwarded-For` carries it: rendered once per
/// connection, since every request on it appends the same text (rendering
/// it per request showed in the A2 profile). Behind an `Arc`: every idle
/// connection's task holds it, and its 40 bytes inline took the task's
/// allocation into the next size class.
#[derive(Debug, Clone)]
pub(crate) struct ForwardedFor(Arc<HeaderValue>);

impl ForwardedFor {
    pub(crate) fn of(client: IpAddr) -> Self {
        let value = match client {
            // Written by hand: the formatting machinery behind `to_string`
            // was 4 % of A3's instructions, once per connection.
            IpAddr::V4(address) => {
                let mut text = [0u8; 15];
                let length = write_ipv4(address, &mut text);
                HeaderValue::from_bytes(&text[..length])
            }
            IpAddr::V6(_) => HeaderValue::from_maybe_shared(Bytes::from(client.to_string())),
        };
        Self(Arc::new(
            value.expect("an IP address is a valid header value"),
        ))
    }
}

/// Writes `address` in dotted decimal into `text`; returns its length.
fn write_ipv4(address: std::net::Ipv4Addr, text: &mut [u8; 15]) -> usize {
    let mut length = 0;
    for (index, octet) in address.octets().into_iter().enumerate() {
        if index > 0 {
            text[length] = b'.';
            length += 1;
        }
        if octet >= 100 {
            text[length] = b'0' + octet / 100;
            length += 1;
        }
        if octet >= 10 {
            text[length] = b'0' + octet / 10 % 10;
            length += 1;
        }
        text[length] = b'0' + octet % 10;
        length += 1;
    }
    length
}

/// The forwarding headers `prepare_request` may add to a request.
const ADDED_HEADERS: usize = 6;

/// Rewrites a request's headers for forwarding. `proto` is the scheme the
/// client used (`http` or `https`).
pub(crate) fn prepare_request(
    request: &mut request::Parts,
    client: &ForwardedFor,
    proto: &'static str,
    upgrade: bool,
) {
    let headers = &mut request.headers;
    // Room for the added headers at once, rather than a grow and rehash
    // in the middle of them.
    headers.reserve(ADDED_HEADERS);
    let keep_trailers_te = headers
        .get_all(header::TE)
        .iter()
        .any(|value| has_token(value, "trailers"));
    let upgrade_value = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    remove_hop_by_hop(headers);
    if keep_trailers_te {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(protocol) = upgrade_value {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }

    // One lookup per header (each hashes its name): `entry` where the
    // header is set only when missing.
    let host = match headers.entry(header::HOST) {
        header::Entry::Occupied(host) => Some(host.get().clone()),
        header::Entry::Vacant(missing) => request
            .uri
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            .map(|host| missing.insert(host).clone()),
    };
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    append_forwarded_for(headers, client);
    append_via(headers, request.version);
    headers
        .entry(X_REQUEST_ID)
        .or_insert_with(generate_request_id);
}

/// Rewrites a response's headers for the client. `upgraded` keeps the
/// `Upgrade`/`Connection` pair of a 101 response.
pub(crate) fn prepare_response(headers: &mut HeaderMap, version: Version, upgraded: bool) {
    let upgrade_value = if upgraded {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    remove_hop_by_hop(headers);
    if let Some(protocol) = upgrade_value {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    append_via(headers, version);
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, comparing rather than hashing: most messages
    // carry none of these fields, and most that do carry only `Connection`.
    // Removing each of the six by name, and making each token of
    // `Connection: close` a name to remove, was 6 % of A3's instructions.
    // All are found before any goes: the tokens that name them go with
    // `Connection`, which is one of the six: without any of them, there is
    // nothing to look up.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let connection = headers.get_all(header::CONNECTION);
    let mut doomed = headers.keys().filter(|name| {
        HOP_BY_HOP.contains(name)
            || connection
                .iter()
                .any(|value| has_token(value, name.as_str()))
    });
    let Some(first) = doomed.next().cloned() else {
        return;
    };
    // Empty, and so not allocated, when `first` is the only one.
    let rest: Vec<HeaderName> = doomed.cloned().collect();
    headers.remove(first);
    for name in rest {
        headers.remove(name);
    }
}

/// True when a `Connection` field lists `token` (case-insensitive).
pub(crate) fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|value| has_token(value, token))
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .map(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
        .unwrap_or(false)
}

fn append_forwarded_for(headers: &mut HeaderMap, client: &ForwardedFor) {
    let mut existing = match headers.entry(X_FORWARDED_FOR) {
        header::Entry::Vacant(missing) => {
            missing.insert(HeaderValue::clone(&client.0));
            return;
        }
        header::Entry::Occupied(existing) => existing,
    };
    let mut value = String::with_capacity(64);
    for earlier in existing.iter() {
        if let Ok(earlier) = earlier.to_str() {
            value.push_str(earlier);
            value.push_str(", ");
        }
    }
    value.push_str(client.0.to_str().unwrap_or_default());
    if let Ok(value) = HeaderValue::from_str(&value) {
        existing.insert(value);
    }
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    let ours = match version {
        Version::HTTP_10 => "1.0 luas",
        Version::HTTP_2 => "2 luas",
        Version::HTTP_3 => "3 luas",
        _ => "1.1 luas",
    };
    // `append` adds the first value too, where there is none.
    headers.append(header::VIA, HeaderValue::from_static(ours));
}

/// 128 random bits as 32 lower-case hex digits, written out by hand: one
/// allocation (the value's) where `format!` took two and its machinery.
fn generate_request_id() -> HeaderValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = fastrand::u128(..);
    let mut text = [0u8; 32];
    for digit in text.iter_mut().rev() {
        *digit = DIGITS[(id & 0xf) as usize];
        id >>= 4;
    }
    HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn hosts_are_checked_against_rfc_9110() {
        let valid = [
            "example.test",
            "example.test:8080",
            "example.test:",
            "EXAMPLE.test.",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "[2001:db8::ff00:42:8329]:8080",
            "[::ffff:192.0.2.1]",
            "[v7.fe80::a+en1]",
            "a-b_c~d.test",
            "ex%41mple.test",
            "!$&'()*+,;=",
        ];
        let invalid = [
            "",
            ":80",
            "user@example.test",
            "example.test:80:81",
            "example.test:http",
            "example.test/path",
            "example.test?q",
            "example.test#f",
            "exa mple.test",
            "example.test\\",
            "ex%4mple.test",
            "ex%zzmple.test",
            "[::1",
            "[::1]x",
            "[::1]:8a",
            "[zz::1]",
            "[fe80::1%25en0]",
            "[v.x]",
            "[v1.]",
            "::1",
            "\"quoted\"",
            "caf\u{e9}.test",
        ];
        for host in valid {
            assert!(is_valid_host(host.as_bytes()), "{host:?} should be valid");
        }
        for host in invalid {
            assert!(
                !is_valid_host(host.as_bytes()),
                "{host:?} should be invalid"
            );
        }
    }

    /// Where RFC 9110's Host and `http::uri::Authority` agree (no userinfo,
    /// no percent sign, a numeric port, and bracketed literals that are
    /// IPv6 addresses), the check gives Authority's answer, as the check it
    /// replaced did: every string of up to four bytes over an alphabet of
    /// the characters that matter.
    #[test]
    fn hosts_are_judged_as_http_judges_authorities_where_the_grammars_agree() {
        let alphabet = b"a1.-:[]@%/ ~\"v";
        let mut compared = 0;
        let mut buffer = Vec::with_capacity(4);
        for length in 1..=4u32 {
            for mut index in 0..alphabet.len().pow(length) {
                buffer.clear();
                for _ in 0..length {
                    buffer.push(alphabet[index % alphabet.len()]);
                    index /= alphabet.len();
                }
                let authority = http::uri::Authority::try_from(&buffer[..]);
                let outside_agreement = buffer.contains(&b'@')
                    || buffer.contains(&b'%')
                    || buffer.contains(&b'[')
                    || authority.as_ref().is_ok_and(|parsed| {
                        parsed.host().is_empty()
                            || parsed.as_str().contains(':') && parsed.port_u16().is_none()
                    });
                if outside_agreement {
                    continue;
                }
                compared += 1;
                assert_eq!(
                    is_valid_host(&buffer),
                    authority.is_ok(),
                    "{:?}",
                    String::from_utf8_lossy(&buffer)
                );
            }
        }
        assert!(compared > 10_000, "compared {compared}");
    }

    fn parts(version: Version, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::builder().version(version).uri("/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_client_address_reads_as_std_writes_it() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "1.20.3.199",
            "127.0.0.1",
            "::1",
            "2001:db8::8:800:200c:417a",
        ] {
            let address: IpAddr = text.parse().unwrap();
            assert_eq!(ForwardedFor::of(address).0.as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn every_field_connection_names_goes_with_it() {
        let named: Vec<String> = (0..10).map(|index| format!("x-hop-{index}")).collect();
        let mut headers: Vec<(&str, &str)> =
            named.iter().map(|name| (name.as_str(), "1")).collect();
        let connection = named.join(", ");
        headers.extend([
            ("connection", connection.as_str()),
            ("keep-alive", "timeout=5"),
            ("x-stays", "1"),
        ]);
        let mut request = parts(Version::HTTP_11, &headers);
        remove_hop_by_hop(&mut request.headers);
        let left: Vec<&str> = request.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-stays"]);
    }

    #[test]
    fn removes_hop_by_hop_and_connection_named_headers() {
        let mut request = parts(
            Version::HTTP_11,
            &[
                ("host", "example.com"),
                ("connection", "keep-alive, x-secret"),
                ("keep-alive", "timeout=5"),
                ("x-secret", "1"),
                ("proxy-connection", "keep-alive"),
                ("te", "gzip"),
                ("upgrade", "h2c"),
                ("x-kept", "yes"),
            ],
        );
        prepare_request(
            &mut request,
            &ForwardedFor::of("10.0.0.1".parse().unwrap()),
            "http",
            false,
        );
        let headers = &request.headers;
        for gone in [
            "connection",
            "keep-alive",
            "x-secret",
            "proxy-connection",
            "te",
            "upgrade",
        ] {
            assert!(!headers.contains_key(gone), "{gone} should be removed");
        }
        assert_eq!(headers["x-kept"], "yes");
        assert_eq!(headers["host"], "example.com");
    }

    #[test]
    fn keeps_te_trailers_and_upgrade_when_asked() {
        let mut request = parts(
            Version::HTTP_11,
            &[
                ("te", "trailers, deflate"),
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
            ],
        );
        assert!(is_upgrade_request(&request));
        prepare_request(
            &mut request,
            &ForwardedFor::of("10.0.0.1".parse().unwrap()),
            "http",
            true,
        );
        assert_eq!(request.headers["te"], "trailers");
        assert_eq!(request.headers["upgrade"], "websocket");
        assert_eq!(request.headers["connection"], "upgrade");
    }

    #[test]
    fn forwarding_headers() {
        let mut request = parts(
            Version::HTTP_11,
            &[
                ("host", "api.example.com:8443"),
                ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
                ("x-forwarded-proto", "https"),
                ("via", "1.1 edge"),
            ],
        );
        prepare_request(
            &mut request,
            &ForwardedFor::of("10.0.0.7".parse().unwrap()),
            "http",
            false,
        );
        let headers = &request.headers;
        assert_eq!(headers["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 10.0.0.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "api.example.com:8443");
        let via: Vec<_> = headers.get_all("via").iter().collect();
        assert_eq!(via, ["1.1 edge", "1.1 luas"]);
        let id = headers["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn a_first_hop_gets_the_client_address_and_a_fresh_request_id() {
        let client = ForwardedFor::of("2001:db8::7".parse().unwrap());
        let mut ids = Vec::new();
        for _ in 0..2 {
            let mut request = parts(Version::HTTP_11, &[("host", "a.example")]);
            prepare_request(&mut request, &client, "https", false);
            assert_eq!(request.headers["x-forwarded-for"], "2001:db8::7");
            let id = request.headers["x-request-id"].to_str().unwrap().to_owned();
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            ids.push(id);
        }
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn keeps_an_existing_request_id_and_adds_host_for_h2() {
        let mut request = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://svc.local:81/x")
            .header("x-request-id", "abc")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        prepare_request(
            &mut request,
            &ForwardedFor::of("::1".parse().unwrap()),
            "http",
            false,
        );
        assert_eq!(request.headers["x-request-id"], "abc");
        assert_eq!(request.headers["host"], "svc.local:81");
        assert_eq!(request.headers["x-forwarded-for"], "::1");
        assert_eq!(request.headers["via"], "2 luas");
    }

    #[test]
    fn an_absolute_form_target_names_the_host() {
        let mut request = parts(Version::HTTP_11, &[("host", "127.0.0.1:8080")]);
        request.uri = "http://user@Example.test:81/path?q=1".parse().unwrap();
        use_absolute_form_authority(&mut request);
        assert_eq!(request.headers[header::HOST], "Example.test:81");
        assert_eq!(request.headers.get_all(header::HOST).iter().count(), 1);
        let mut origin = parts(Version::HTTP_11, &[("host", "127.0.0.1:8080")]);
        origin.uri = "/path".parse().unwrap();
        use_absolute_form_authority(&mut origin);
        assert_eq!(origin.headers[header::HOST], "127.0.0.1:8080");
    }

    #[test]
    fn response_rules() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-internal"));
        headers.insert("x-internal", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        prepare_response(&mut headers, Version::HTTP_11, false);
        assert!(!headers.contains_key("connection"));
        assert!(!headers.contains_key("x-internal"));
        assert!(!headers.contains_key("transfer-encoding"));
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["via"], "1.1 luas");
    }
}
