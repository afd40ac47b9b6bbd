//! Who may change things through the admin API.
//!
//! Reading (`/metrics`, `/live`, `/ready`, `GET /api/...`, the page) is open
//! to whoever reaches the admin listener. Changes (weights, rollback,
//! promote, reload) are allowed:
//! - with `admin.token_file`: to requests carrying `Authorization: Bearer
//!   TOKEN`, from anywhere, loopback included (containers of a pod share
//!   loopback, so it proves little). The file is read at each change, so a
//!   rotated Secret applies without a restart.
//! - without it, on an admin address that is not loopback (allowed only with
//!   `allow_unauthenticated_admin: true`, see config validation): to anyone.
//! - otherwise: to loopback clients only, which on the default 127.0.0.1
//!   address are all clients.
//!
//! Whatever the mode, a change that a browser marks as sent by another
//! site's page (`Sec-Fetch-Site` other than same-origin or none, or an
//! `Origin` that is not the admin address itself) is refused: otherwise any
//! web page open in an operator's browser could roll back a loopback-only
//! admin API with a plain form post. `luas ctl`, curl and other non-browser
//! clients send neither header.
//!
//! Without a token, a change must also address the admin listener by IP or
//! as `localhost` in its `Host`: DNS rebinding would otherwise let a page
//! under the attacker's own name reach 127.0.0.1 as a same-origin request.
//!
//! This module only decides; `admin` answers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::{header, HeaderMap, StatusCode};

use crate::config::AdminConfig;

#[derive(Debug, Clone)]
pub(crate) enum AdminAuth {
    LoopbackOnly,
    Token(PathBuf),
    Open,
}

/// Why a change was refused: the status and the message for the client.
pub(crate) type Refusal = (StatusCode, String);

impl AdminAuth {
    pub(crate) fn from_config(config: &AdminConfig) -> Self {
        match (&config.token_file, config.allow_unauthenticated_admin) {
            (Some(path), _) => Self::Token(path.clone()),
            (None, true) => Self::Open,
            (None, false) => Self::LoopbackOnly,
        }
    }

    /// Checks that the token file can be read and is not empty, so a
    /// mistake shows at start rather than at the first rollback.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Self::Token(path) => read_token(path).map(|_| ()),
            Self::LoopbackOnly | Self::Open => Ok(()),
        }
    }

    /// Whether a change from `peer` with these headers may go ahead.
    pub(crate) fn allow_change(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        if from_another_site(headers) {
            return Err((
                StatusCode::FORBIDDEN,
                "changes are not accepted from another site's page; use the dashboard served \
                 by this admin listener, or `luas ctl`"
                    .into(),
            ));
        }
        if !matches!(self, Self::Token(_)) && !addressed_by_ip_or_localhost(headers) {
            return Err((
                StatusCode::FORBIDDEN,
                "without a token, changes are accepted only when the admin listener is \
                 addressed by IP or as localhost (a browser page served under another name \
                 could be rebound to this address); use http://127.0.0.1:PORT or set \
                 admin.token_file"
                    .into(),
            ));
        }
        match self {
            Self::Open => Ok(()),
            Self::LoopbackOnly if peer.ip().is_loopback() => Ok(()),
            Self::LoopbackOnly => Err((
                StatusCode::FORBIDDEN,
                "changes are accepted from loopback clients only; run `luas ctl` inside the pod"
                    .into(),
            )),
            Self::Token(path) => {
                let expected = read_token(path).map_err(|why| {
                    tracing::error!("admin token unavailable: {why}");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the admin token file cannot be read; see luas's log".to_owned(),
                    )
                })?;
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .map(str::trim);
                match given {
                    Some(given) if same_secret(given.as_bytes(), expected.as_bytes()) => Ok(()),
                    Some(_) => Err((StatusCode::UNAUTHORIZED, "the bearer token is wrong".into())),
                    None => Err((
                        StatusCode::UNAUTHORIZED,
                        "changes need `Authorization: Bearer TOKEN` (the token in \
                         admin.token_file); `luas ctl --token-file FILE` sends it"
                            .into(),
                    )),
                }
            }
        }
    }
}

/// A browser request sent by a page of another origin (CSRF).
fn from_another_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("null");
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    match (authority, host) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// Whether the request's `Host` names the admin listener by IP address or
/// as `localhost` (or is absent, as from non-browser HTTP/1.0 clients). A
/// DNS name is refused: DNS rebinding lets a page under a name the attacker
/// controls reach 127.0.0.1 as its own origin.
fn addressed_by_ip_or_localhost(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [::1]:9901
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The token: the file's contents without surrounding whitespace. Errors
/// name the file, never its contents.
pub(crate) fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read admin.token_file {}: {error}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "admin.token_file {} is empty; put a long random token in it, e.g. the output \
             of `openssl rand -hex 32`",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

/// Compares in constant time (`subtle`), so the time taken does not tell an
/// attacker how much of a guess was right. The length is not secret: a
/// token of another length is refused at once.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn pages_of_other_sites_cannot_make_changes() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let local = "127.0.0.1:9901";
        assert!(
            !from_another_site(&headers(&[])),
            "ctl and curl send neither"
        );
        assert!(!from_another_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!from_another_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(from_another_site(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(from_another_site(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(!from_another_site(&headers(&[
            ("origin", "http://127.0.0.1:9901"),
            ("host", local)
        ])));
        assert!(from_another_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", local)
        ])));
        assert!(from_another_site(&headers(&[
            ("origin", "null"),
            ("host", local)
        ])));
        let refused = AdminAuth::Open.allow_change(
            "127.0.0.1:5000".parse().unwrap(),
            &headers(&[("sec-fetch-site", "cross-site")]),
        );
        assert_eq!(refused.unwrap_err().0, StatusCode::FORBIDDEN);
    }

    #[test]
    fn without_a_token_the_admin_must_be_addressed_by_ip() {
        let with_host = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap());
            headers
        };
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for host in ["127.0.0.1:9901", "localhost:9901", "[::1]:9901", "10.0.0.5"] {
            assert!(
                AdminAuth::LoopbackOnly
                    .allow_change(peer, &with_host(host))
                    .is_ok(),
                "{host}"
            );
        }
        for host in ["evil.example:9901", "luas.internal", "[not-an-ip]:1"] {
            let refused = AdminAuth::LoopbackOnly.allow_change(peer, &with_host(host));
            assert_eq!(refused.unwrap_err().0, StatusCode::FORBIDDEN, "{host}");
            let refused = AdminAuth::Open.allow_change(peer, &with_host(host));
            assert_eq!(refused.unwrap_err().0, StatusCode::FORBIDDEN, "{host}");
        }
    }

    #[test]
    fn loopback_only_refuses_other_peers() {
        let auth = AdminAuth::LoopbackOnly;
        let headers = HeaderMap::new();
        assert!(auth
            .allow_change("127.0.0.1:5000".parse().unwrap(), &headers)
            .is_ok());
        let refused = auth.allow_change("10.0.0.7:5000".parse().unwrap(), &headers);
        assert_eq!(refused.unwrap_err().0, StatusCode::FORBIDDEN);
        assert!(AdminAuth::Open
            .allow_change("10.0.0.7:5000".parse().unwrap(), &headers)
            .is_ok());
    }
}
