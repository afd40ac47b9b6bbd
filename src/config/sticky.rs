//! The `sticky` key of a service's split: [`StickyKey`], and the cookie name
//! it may be ([`CookieName`], parsed with `FromStr`).
//!
//! This module owns what a cookie name may hold. It does not know where the
//! value sits in the file (`validate::split` adds the key path and checks
//! that exactly one of `header` and `cookie` is given) and does not read
//! requests (`split.rs` does).

use std::str::FromStr;

use http::HeaderName;

use super::InvalidValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// `sticky: { header: x-user-id }`, name stored lower-case.
    Header(HeaderName),
    /// `sticky: { cookie: session }`.
    Cookie(String),
}

/// A cookie name: a non-empty HTTP token (RFC 6265 section 4.1.1, RFC 9110
/// section 5.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CookieName(String);

impl CookieName {
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for CookieName {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(InvalidValue(
                "the cookie name is empty; name the cookie that identifies a user, e.g. \
                 `cookie: session`"
                    .to_owned(),
            ));
        }
        if let Some(bad) = text.chars().find(|&c| !is_token_char(c)) {
            return Err(InvalidValue(format!(
                "cookie name {text:?} contains {bad:?}; cookie names use letters, digits and \
                 !#$%&'*+-.^_`|~ (no spaces, '=', ';' or ',')"
            )));
        }
        Ok(Self(text.to_owned()))
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<String, String> {
        text.parse::<CookieName>()
            .map(CookieName::into_string)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tokens_are_cookie_names() {
        for good in [
            "session",
            "session_id",
            "SID",
            "a",
            "x-1.2",
            "!#$%&'*+-.^_`|~",
        ] {
            assert_eq!(parse(good), Ok(good.to_owned()));
        }
    }

    #[test]
    fn what_is_not_a_token_is_named() {
        assert_eq!(
            parse(""),
            Err(
                "the cookie name is empty; name the cookie that identifies a user, e.g. \
                 `cookie: session`"
                    .to_owned()
            )
        );
        for (text, bad) in [
            ("my session", "' '"),
            ("a=b", "'='"),
            ("a;b", "';'"),
            ("a,b", "','"),
            ("a\"b", "'\"'"),
            ("sessión", "'ó'"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(
                message.starts_with(&format!("cookie name {text:?} contains {bad}; ")),
                "{text:?}: {message}"
            );
        }
    }
}
