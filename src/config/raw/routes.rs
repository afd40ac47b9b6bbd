//! The serde mirror of a listener's routes: their matches (Gateway API's
//! HTTPRouteMatch, and the first `match` form), filters and per-route
//! overrides. Part of `raw`, whose rules it follows: shapes only, every
//! struct denies unknown fields, meaning is `validate`'s.

use std::fmt;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::RawRetry;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) name: String,
    /// One match: the shorthand of a one-element `matches`.
    #[serde(rename = "match")]
    pub(crate) single: Option<RawMatch>,
    /// Several matches, any of which selects the route.
    pub(crate) matches: Option<Vec<RawMatch>>,
    pub(crate) filters: Option<Vec<RawFilter>>,
    /// Required unless a redirect answers the route's requests.
    pub(crate) service: Option<String>,
    pub(crate) timeouts: Option<RawRouteTimeouts>,
    pub(crate) retry: Option<RawRetry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteTimeouts {
    pub(crate) request: Option<String>,
    pub(crate) backend_request: Option<String>,
}

/// One filter: exactly one of the keys, which `validate` checks. An unknown
/// filter name is refused by `deny_unknown_fields`, with its line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    pub(crate) request_headers: Option<RawHeaderEdits>,
    pub(crate) response_headers: Option<RawHeaderEdits>,
    pub(crate) redirect: Option<RawRedirect>,
    pub(crate) rewrite: Option<RawRewrite>,
    pub(crate) rate_limit: Option<RawRateLimit>,
    pub(crate) mirror: Option<RawMirror>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMirror {
    pub(crate) service: Option<String>,
    pub(crate) group: Option<String>,
    /// Gateway API's integer percent; fractions are taken too.
    pub(crate) percent: Option<f64>,
    pub(crate) max_in_flight: Option<u64>,
    pub(crate) max_body_bytes: Option<super::RawSize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub(crate) requests: Option<u64>,
    pub(crate) per: Option<String>,
    pub(crate) burst: Option<u64>,
    pub(crate) key: Option<RawRateKey>,
    pub(crate) max_keys: Option<u64>,
}

/// `client_address`, `client_identity` or `{ header: NAME }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRateKey {
    Word(String),
    Header { header: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderEdits {
    #[serde(default)]
    pub(crate) set: RawHeaders,
    #[serde(default)]
    pub(crate) add: RawHeaders,
    #[serde(default)]
    pub(crate) remove: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedirect {
    pub(crate) scheme: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) port: Option<u32>,
    pub(crate) path: Option<RawPathReplace>,
    pub(crate) status: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRewrite {
    pub(crate) hostname: Option<String>,
    pub(crate) path: Option<RawPathReplace>,
}

/// `{ replace_full | replace_prefix }`; exactly one, which `validate` checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPathReplace {
    pub(crate) replace_full: Option<String>,
    pub(crate) replace_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub(crate) host: Option<String>,
    /// The first form of a prefix condition, kept: `path: { prefix }`.
    pub(crate) path_prefix: Option<String>,
    pub(crate) path: Option<RawPathMatch>,
    pub(crate) method: Option<String>,
    #[serde(default)]
    pub(crate) headers: RawHeaders,
    pub(crate) query: Option<Vec<RawValueMatch>>,
    pub(crate) client_identity: Option<String>,
}

/// `path: { exact | prefix | regex }`; exactly one, which `validate` checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPathMatch {
    pub(crate) exact: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) regex: Option<String>,
}

/// A header or query condition: `{ name, value | regex }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawValueMatch {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) regex: Option<String>,
}

/// Header conditions in file order: a list of `{ name, value | regex }`
/// (Gateway API's form), or a map of name to exact value (the first form).
/// A plain map would lose the order and silently keep only one of two
/// spellings of the same name (`X-Env` and `x-env`); keeping every entry
/// lets `validate` report the duplicate.
#[derive(Debug, Default)]
pub(crate) struct RawHeaders {
    pub(crate) entries: Vec<RawValueMatch>,
    /// Written as a list, whose entries are named by index in key paths
    /// (a map's by header name).
    pub(crate) listed: bool,
}

impl<'de> Deserialize<'de> for RawHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = RawHeaders;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of { name, value } or { name, regex }, or a map of header name to \
                     exact header value",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawHeaders, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(entry) = seq.next_element::<RawValueMatch>()? {
                    entries.push(entry);
                }
                Ok(RawHeaders {
                    entries,
                    listed: true,
                })
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<RawHeaders, E> {
                Ok(RawHeaders::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeaders, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    entries.push(RawValueMatch {
                        name,
                        value: Some(value),
                        regex: None,
                    });
                }
                Ok(RawHeaders {
                    entries,
                    listed: false,
                })
            }
        }

        deserializer.deserialize_any(HeadersVisitor)
    }
}
