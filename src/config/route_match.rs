//! The `match` of a route: [`RouteMatch`], its host pattern ([`HostMatch`])
//! and its path prefix ([`PathPrefix`]), the last two parsed from their text
//! with `FromStr`.
//!
//! This module owns the syntax of one host pattern or path prefix and the
//! canonical form it is stored in (lower-case host, prefix without a
//! trailing `/`). It does not know where the value sits in the file
//! (`validate::routes` adds the key path to the error) and does not match
//! requests (`route.rs` does).

use std::str::FromStr;

use http::{HeaderName, HeaderValue};

use super::InvalidValue;

/// Every condition present must hold; an empty match is the catch-all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteMatch {
    pub host: Option<HostMatch>,
    /// Matched segment by segment: `/v1` matches `/v1` and `/v1/x`, not `/v10`.
    pub path_prefix: Option<String>,
    /// Exact value match, header names lower-case.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A name the verified client certificate carries (a DNS or URI subject
    /// alternative name, e.g. `spiffe://cluster.local/ns/shop/sa/web`).
    pub client_identity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `api.example.com`, compared case-insensitively, port ignored. Stored lower-case.
    Exact(String),
    /// `*.example.com`: stores `.example.com`; matches one or more labels before it.
    WildcardSuffix(String),
}

/// A `path_prefix` that starts with `/`, holds no query, fragment, space or
/// control character, and has no trailing `/` (except the root `/` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPrefix(String);

impl PathPrefix {
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for HostMatch {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "use a host name like api.example.com or a wildcard like *.example.com";
        if text.is_empty() {
            return Err(InvalidValue(format!(
                "the host pattern is empty; {FORM}, or remove `host` to match any host"
            )));
        }
        let lower = text.to_ascii_lowercase();
        let (wildcard, domain) = match lower.strip_prefix('*') {
            Some(rest) => match rest.strip_prefix('.') {
                Some(domain) => (true, domain),
                None => {
                    return Err(InvalidValue(format!(
                        "host pattern {text:?}: `*` must be followed by `.`; {FORM}"
                    )))
                }
            },
            None => (false, lower.as_str()),
        };
        if domain.contains('*') {
            return Err(InvalidValue(format!(
                "host pattern {text:?}: `*` is only allowed as the whole first label; {FORM}"
            )));
        }
        if domain.is_empty() {
            return Err(InvalidValue(format!(
                "host pattern {text:?} has no domain after `*.`; {FORM}"
            )));
        }
        if domain.contains(':') {
            return Err(InvalidValue(format!(
                "host pattern {text:?} contains ':'; leave out the port (it is ignored when \
                 matching); {FORM}"
            )));
        }
        if domain.split('.').any(str::is_empty) {
            return Err(InvalidValue(format!(
                "host pattern {text:?} has an empty label (a leading, trailing or doubled '.'); \
                 {FORM}"
            )));
        }
        if let Some(bad) = domain
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(InvalidValue(format!(
                "host pattern {text:?} contains {bad:?}; host names use letters, digits, '-' \
                 and '.'"
            )));
        }
        Ok(if wildcard {
            Self::WildcardSuffix(format!(".{domain}"))
        } else {
            Self::Exact(domain.to_owned())
        })
    }
}

impl FromStr for PathPrefix {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !text.starts_with('/') {
            return Err(InvalidValue(format!(
                "path_prefix {text:?} must start with '/', e.g. /api"
            )));
        }
        if let Some(bad) = text
            .chars()
            .find(|&c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue(format!(
                "path_prefix {text:?} contains {bad:?}; it is compared with the request path \
                 only (no query or fragment), so it would never match"
            )));
        }
        // `/v1/` and `/v1` would mean the same under segment-wise matching; one
        // canonical spelling keeps the matcher simple.
        let trimmed = text.trim_end_matches('/');
        Ok(Self(if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> PathPrefix {
        PathPrefix(text.to_owned())
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            HostMatch::from_str("API.Example.com"),
            Ok(HostMatch::Exact("api.example.com".into()))
        );
        assert_eq!(
            HostMatch::from_str("*.Example.com"),
            Ok(HostMatch::WildcardSuffix(".example.com".into()))
        );
        assert_eq!(
            HostMatch::from_str("127.0.0.1"),
            Ok(HostMatch::Exact("127.0.0.1".into()))
        );
        let cases = [
            ("", "empty"),
            ("*", "`*` must be followed by `.`"),
            ("*example.com", "`*` must be followed by `.`"),
            ("*.", "no domain"),
            ("api.*.com", "only allowed as the whole first label"),
            ("*.*.example.com", "only allowed as the whole first label"),
            ("a*.example.com", "only allowed as the whole first label"),
            ("example.com:8080", "leave out the port"),
            ("example..com", "empty label"),
            (".example.com", "empty label"),
            ("example.com.", "empty label"),
            ("exa mple.com", "contains ' '"),
            ("exa/mple.com", "contains '/'"),
        ];
        for (pattern, expected) in cases {
            match pattern.parse::<HostMatch>() {
                Ok(host) => panic!("{pattern:?} should be rejected, got {host:?}"),
                Err(message) => assert!(
                    message.to_string().contains(expected),
                    "{pattern:?}: {message}"
                ),
            }
        }
    }

    #[test]
    fn path_prefixes() {
        assert_eq!(PathPrefix::from_str("/"), Ok(prefix("/")));
        assert_eq!(PathPrefix::from_str("//"), Ok(prefix("/")));
        assert_eq!(PathPrefix::from_str("/v1"), Ok(prefix("/v1")));
        assert_eq!(PathPrefix::from_str("/v1/"), Ok(prefix("/v1")));
        assert_eq!(PathPrefix::from_str("/v1/users//"), Ok(prefix("/v1/users")));
        assert!(PathPrefix::from_str("v1")
            .unwrap_err()
            .to_string()
            .contains("must start with '/'"));
        assert!(PathPrefix::from_str("")
            .unwrap_err()
            .to_string()
            .contains("must start with '/'"));
        assert!(PathPrefix::from_str("/a?b=1")
            .unwrap_err()
            .to_string()
            .contains("'?'"));
        assert!(PathPrefix::from_str("/a#x")
            .unwrap_err()
            .to_string()
            .contains("'#'"));
        assert!(PathPrefix::from_str("/a b")
            .unwrap_err()
            .to_string()
            .contains("' '"));
    }
}
