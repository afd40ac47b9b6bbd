//! How a request picks a group beyond weights: the `override_header` (on by
//! default, `""` turns it off) and the `sticky` key (a header or a cookie,
//! exactly one; the syntax of a cookie name belongs to `CookieName`).
//!
//! Called from `services`; the pick itself is `split.rs`.

use http::HeaderName;

use super::Checker;
use crate::config::raw::{RawService, RawSticky};
use crate::config::sticky::CookieName;
use crate::config::{defaults, SplitConfig, StickyKey};

impl Checker {
    pub(super) fn split(&mut self, path: &str, raw: &RawService) -> SplitConfig {
        let override_header = match raw.override_header.as_deref() {
            None => Some(HeaderName::from_static(defaults::OVERRIDE_HEADER)),
            Some("") => None,
            Some(text) => self.header_name(
                &format!("{path}.override_header"),
                text,
                "x-luas-group, or \"\" to turn the override off",
            ),
        };
        let sticky = raw
            .sticky
            .as_ref()
            .and_then(|sticky| self.sticky(&format!("{path}.sticky"), sticky));
        SplitConfig {
            override_header,
            sticky,
        }
    }

    fn sticky(&mut self, path: &str, raw: &RawSticky) -> Option<StickyKey> {
        match (&raw.header, &raw.cookie) {
            (Some(header), None) => self
                .header_name(&format!("{path}.header"), header, "x-user-id")
                .map(StickyKey::Header),
            (None, Some(cookie)) => {
                let parsed = cookie
                    .parse::<CookieName>()
                    .map_err(|why| self.issue(format!("{path}.cookie"), why.to_string()))
                    .ok()?;
                Some(StickyKey::Cookie(parsed.into_string()))
            }
            (Some(_), Some(_)) => {
                self.issue(
                    path,
                    "`sticky` has both `header` and `cookie`, but a request is keyed by one \
                     value; keep one of them, e.g. `sticky: { header: x-user-id }`",
                );
                None
            }
            (None, None) => {
                self.issue(
                    path,
                    "`sticky` names no key; give `header: NAME` or `cookie: NAME`, or remove \
                     `sticky` to split by weight alone",
                );
                None
            }
        }
    }
}
