//! `health_check:` of a service as validated config: [`HealthCheckConfig`],
//! and the probe path ([`HealthPath`], parsed with `FromStr`).
//!
//! This module owns what a probe path may hold. It does not know where the
//! value sits in the file (`validate::health` adds the key path and checks
//! the durations and thresholds) and does not probe (`health::active` does).

use std::str::FromStr;
use std::time::Duration;

use http::uri::PathAndQuery;

use super::InvalidValue;

/// `health_check:` probes every endpoint with `GET path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Starts with `/`.
    pub path: String,
    /// Default 5 s.
    pub interval: Duration,
    /// Default 1 s; not longer than `interval`.
    pub timeout: Duration,
    /// Consecutive passing probes to mark an endpoint healthy again. Default 2.
    pub healthy_threshold: u32,
    /// Consecutive failing probes to mark it unhealthy. Default 3.
    pub unhealthy_threshold: u32,
}

/// A health check's path is sent as the target of `GET path HTTP/1.1`, so
/// anything that cannot go into a request line is refused here rather than
/// failing every probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthPath(String);

impl HealthPath {
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for HealthPath {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "e.g. /healthz";
        if !text.starts_with('/') {
            return Err(InvalidValue(format!(
                "health check path {text:?} must start with '/', {FORM}"
            )));
        }
        if let Some(bad) = text.chars().find(|&c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidValue(format!(
                "health check path {text:?} contains {bad:?}; a request path cannot hold \
                 whitespace or control characters (percent-encode them, e.g. %20), {FORM}"
            )));
        }
        if text.contains('#') {
            return Err(InvalidValue(format!(
                "health check path {text:?} contains '#'; a fragment is never sent to the \
                 server, so leave it out, {FORM}"
            )));
        }
        // `PathAndQuery` lets raw UTF-8 through, but a request target is ASCII.
        if let Some(bad) = text.chars().find(|c| !c.is_ascii()) {
            return Err(InvalidValue(format!(
                "health check path {text:?} contains {bad:?}; a request path is ASCII, so \
                 percent-encode its UTF-8 bytes (e.g. %C3%BC for 'ü'), {FORM}"
            )));
        }
        match PathAndQuery::try_from(text) {
            Ok(_) => Ok(Self(text.to_owned())),
            Err(error) => Err(InvalidValue(format!(
                "health check path {text:?} is not a valid request path ({error}); \
                 percent-encode other characters, {FORM}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<String, String> {
        text.parse::<HealthPath>()
            .map(HealthPath::into_string)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn request_targets_are_kept_as_written() {
        for good in [
            "/",
            "/healthz",
            "/healthz?deep=1",
            "/a%20b",
            "/status/ready?x=1&y=2",
        ] {
            assert_eq!(parse(good), Ok(good.to_owned()));
        }
    }

    #[test]
    fn what_cannot_be_sent_is_named() {
        let cases = [
            ("healthz", "must start with '/'"),
            ("", "must start with '/'"),
            ("/a b", "contains ' '"),
            ("/a\tb", "contains '\\t'"),
            ("/a#frag", "contains '#'"),
            ("/grüße", "contains 'ü'"),
            ("/a<b>", "is not a valid request path"),
        ];
        for (text, expected) in cases {
            match parse(text) {
                Ok(path) => panic!("{text:?} should be rejected, got {path:?}"),
                Err(message) => {
                    assert!(message.contains(expected), "{text:?}: {message}");
                    assert!(
                        message.starts_with(&format!("health check path {text:?}")),
                        "{message}"
                    );
                    assert!(message.ends_with("e.g. /healthz"), "{message}");
                }
            }
        }
    }
}
