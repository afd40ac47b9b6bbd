//! One `matches` entry of a route, as Gateway API's HTTPRouteMatch has it:
//! [`RouteMatch`], with its host pattern ([`HostMatch`]), path condition
//! ([`PathMatch`]: exact, whole-segment prefix, or regex), header and query
//! conditions ([`TextMatch`]: exact or regex) and method. Host patterns,
//! paths and regexes ([`Pattern`]) parse from their text with `FromStr`.
//!
//! This module owns the syntax of each condition and the canonical form it
//! is stored in (lower-case host, prefix without a trailing `/`, a regex
//! compiled once, anchored to the whole text). It does not know where the
//! value sits in the file (`validate::routes` adds the key path to the
//! error) and does not match requests (`route.rs` does).

use std::str::FromStr;

use http::HeaderName;

use super::InvalidValue;

/// Every condition present must hold; an empty match is the catch-all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteMatch {
    pub host: Option<HostMatch>,
    pub path: Option<PathMatch>,
    /// Upper-case, as methods are written (`GET`).
    pub method: Option<http::Method>,
    /// Each header present with a matching value; names lower-case.
    pub headers: Vec<(HeaderName, TextMatch)>,
    /// Each query parameter present (percent-decoded) with a matching value.
    pub query: Vec<(String, TextMatch)>,
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

/// The path condition of a match.
#[derive(Debug, Clone, PartialEq)]
pub enum PathMatch {
    /// The whole path, exactly (Gateway API `Exact`).
    Exact(String),
    /// Whole segments: `/v1` matches `/v1` and `/v1/x`, not `/v10`
    /// (Gateway API `PathPrefix`). Stored without a trailing `/`.
    Prefix(String),
    /// A regex the whole path must match (Gateway API `RegularExpression`).
    Regex(Pattern),
}

/// A header or query value condition.
#[derive(Debug, Clone, PartialEq)]
pub enum TextMatch {
    /// Exactly this value, case-sensitive.
    Exact(String),
    /// A regex the whole value must match.
    Regex(Pattern),
}

impl TextMatch {
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(expected) => expected.as_bytes() == value,
            Self::Regex(pattern) => {
                std::str::from_utf8(value).is_ok_and(|text| pattern.is_match(text))
            }
        }
    }
}

/// A regular expression (the `regex` crate's syntax: no look-around or
/// back-references, so matching is linear in the input), compiled once at
/// load and anchored: it must match the whole text, as Envoy's `safe_regex`
/// does.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::Regex,
    source: String,
}

/// The compiled size a pattern may take: enough for any sane route
/// pattern, not for one that would make every request slow.
const MAX_PATTERN_BYTES: usize = 256 * 1024;

impl Pattern {
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl FromStr for Pattern {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |error| match error {
            regex::Error::CompiledTooBig(limit) => InvalidValue(format!(
                "regex {text:?} compiles to more than {} KiB; simplify it (fewer repetitions \
                 or character classes)",
                limit / 1024
            )),
            other => InvalidValue(format!("invalid regex {text:?}: {other}")),
        };
        // Compiled as written first, so a syntax error points into the
        // user's text rather than into the anchors added below.
        regex::RegexBuilder::new(text)
            .size_limit(MAX_PATTERN_BYTES)
            .build()
            .map_err(refuse)?;
        let regex = regex::RegexBuilder::new(&format!("^(?:{text})$"))
            .size_limit(MAX_PATTERN_BYTES)
            .build()
            .map_err(refuse)?;
        Ok(Self {
            regex,
            source: text.to_owned(),
        })
    }
}

/// An exact path: starts with `/`, no query, fragment, space or control
/// character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExactPath(String);

impl ExactPath {
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for ExactPath {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check_path("path.exact", text, MATCHED_PATH_ONLY)?;
        Ok(Self(text.to_owned()))
    }
}

/// What a condition's path may not contain, and why.
const MATCHED_PATH_ONLY: &str =
    "it is compared with the request path only (no query or fragment), so it would never match";

/// The rules every written path shares: it starts with `/` and has no
/// query, fragment, whitespace or control character. `key` names it in the
/// message, `why` says why a bad character is wrong here.
pub(crate) fn check_path(key: &str, text: &str, why: &str) -> Result<(), InvalidValue> {
    if !text.starts_with('/') {
        return Err(InvalidValue(format!(
            "{key} {text:?} must start with '/', e.g. /api"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|&c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(InvalidValue(format!(
            "{key} {text:?} contains {bad:?}; {why}"
        )));
    }
    Ok(())
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
        check_path("path_prefix", text, MATCHED_PATH_ONLY)?;
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
    fn patterns_match_the_whole_text_and_big_ones_are_refused() {
        let pattern: Pattern = "/api/v[0-9]+/users/[0-9]+".parse().unwrap();
        assert!(pattern.is_match("/api/v2/users/42"));
        assert!(!pattern.is_match("/api/v2/users/42/extra"));
        assert!(!pattern.is_match("/x/api/v2/users/42"));
        assert!("(1|true)".parse::<Pattern>().unwrap().is_match("true"));
        assert!("a("
            .parse::<Pattern>()
            .unwrap_err()
            .to_string()
            .contains("invalid regex"));
        assert!(r"(\w{100}){100}"
            .parse::<Pattern>()
            .unwrap_err()
            .to_string()
            .contains("KiB; simplify it"));
        let exact = TextMatch::Exact("yes".into());
        assert!(exact.matches(b"yes"));
        assert!(!exact.matches(b"Yes"));
        let regex = TextMatch::Regex("1|true".parse().unwrap());
        assert!(regex.matches(b"1"));
        assert!(!regex.matches(b"10"));
        assert!(!regex.matches(&[0xff]));
    }

    #[test]
    fn exact_paths() {
        assert_eq!(
            "/v1/users".parse::<ExactPath>().map(ExactPath::into_string),
            Ok("/v1/users".to_owned())
        );
        assert!("v1"
            .parse::<ExactPath>()
            .unwrap_err()
            .to_string()
            .contains("path.exact"));
        assert!("/a?b"
            .parse::<ExactPath>()
            .unwrap_err()
            .to_string()
            .contains("'?'"));
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
