//! The `dns` of a group: [`DnsConfig`], and the `NAME:PORT` it is written as
//! ([`DnsTarget`], parsed with `FromStr`).
//!
//! This module owns what a well-formed DNS name and port are. It does not
//! look anything up (`discovery.rs` does) and does not know where the value
//! sits in the file (`validate::groups` adds the key path and the `refresh`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use super::InvalidValue;

const DNS_FORM: &str = "expected NAME:PORT, e.g. web.default.svc.cluster.local:8080 (a DNS name \
     of labels of letters, digits, '-' and '_', and a port from 1 to 65535)";

/// `dns: NAME:PORT` of a group: its endpoints are the A and AAAA records of
/// `name`, each with `port`, looked up every `refresh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// A valid DNS name, stored lower-case; a trailing `.` makes it absolute
    /// (no search domains).
    pub name: String,
    /// 1 to 65535.
    pub port: u16,
    /// Time between lookups. Default 5 s.
    pub refresh: Duration,
}

impl DnsConfig {
    /// Whether two configs look up the same addresses: same name and port
    /// (the refresh interval does not change what is found).
    pub fn same_target(&self, other: &Self) -> bool {
        self.name == other.name && self.port == other.port
    }
}

impl fmt::Display for DnsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.port)
    }
}

/// `dns: NAME:PORT`: a DNS name, stored lower-case, and a port from 1 to
/// 65535. An IP address is refused: fixed addresses are `endpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsTarget {
    pub(crate) name: String,
    pub(crate) port: u16,
}

impl FromStr for DnsTarget {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, port)) = text.rsplit_once(':') else {
            return Err(InvalidValue(format!(
                "dns {text:?} has no port; {DNS_FORM}"
            )));
        };
        let bare_ip = name.trim_start_matches('[').trim_end_matches(']');
        if bare_ip.parse::<IpAddr>().is_ok() || text.parse::<SocketAddr>().is_ok() {
            return Err(InvalidValue(format!(
                "dns {text:?} is an IP address, not a name to look up; list fixed addresses under \
                 `endpoints` instead, or {DNS_FORM}"
            )));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {
                if let Some(problem) = dns_name_problem(name) {
                    return Err(InvalidValue(format!(
                        "dns {text:?}: the name {problem}; {DNS_FORM}"
                    )));
                }
                Ok(Self {
                    name: name.to_ascii_lowercase(),
                    port,
                })
            }
            _ => Err(InvalidValue(format!(
                "dns {text:?}: port {port:?} is not a number from 1 to 65535; {DNS_FORM}"
            ))),
        }
    }
}

/// Why `name` is not a DNS name a resolver would look up, or None. A
/// trailing `.` (an absolute name, looked up without search domains) is
/// allowed; `_` is too, as in Docker Compose service names.
fn dns_name_problem(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Some("is empty".to_owned());
    }
    if bare.len() > 253 {
        return Some(format!("is {} characters long (at most 253)", bare.len()));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Some("has an empty label (a leading or doubled '.')".to_owned());
        }
        if label.len() > 63 {
            return Some(format!(
                "has a label of {} characters (at most 63)",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Some(format!("contains {bad:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!(
                "has a label starting or ending with '-' ({label:?})"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Result<DnsTarget, String> {
        text.parse::<DnsTarget>().map_err(|e| e.to_string())
    }

    fn ok(name: &str, port: u16) -> Result<DnsTarget, String> {
        Ok(DnsTarget {
            name: name.to_owned(),
            port,
        })
    }

    #[test]
    fn names_and_ports() {
        assert_eq!(
            target("web.default.svc.cluster.local:8080"),
            ok("web.default.svc.cluster.local", 8080)
        );
        assert_eq!(target("Web.Example.COM:80"), ok("web.example.com", 80));
        assert_eq!(target("web.example.com.:443"), ok("web.example.com.", 443));
        assert_eq!(target("my_service:1"), ok("my_service", 1));
        assert_eq!(target("localhost:65535"), ok("localhost", 65535));
        let longest_label = "a".repeat(63);
        assert_eq!(
            target(&format!("{longest_label}.example:53")),
            ok(&format!("{longest_label}.example"), 53)
        );
    }

    #[test]
    fn what_is_wrong_is_named() {
        let cases = [
            ("web.example.com", "has no port"),
            ("10.0.0.1:8080", "is an IP address"),
            ("[::1]:8080", "is an IP address"),
            ("::1", "the name contains ':'"),
            ("web:0", "port \"0\" is not a number from 1 to 65535"),
            ("web:65536", "port \"65536\" is not a number"),
            ("web:http", "port \"http\" is not a number"),
            ("web:", "port \"\" is not a number"),
            (":80", "the name is empty"),
            (".:80", "the name is empty"),
            ("web..example:80", "has an empty label"),
            (".web:80", "has an empty label"),
            ("web example:80", "contains ' '"),
            ("web/x:80", "contains '/'"),
            ("-web:80", "starting or ending with '-'"),
            ("web-.example:80", "starting or ending with '-'"),
        ];
        for (text, expected) in cases {
            match target(text) {
                Ok(parsed) => panic!("{text:?} should be rejected, got {parsed:?}"),
                Err(message) => {
                    assert!(message.contains(expected), "{text:?}: {message}");
                    assert!(message.starts_with(&format!("dns {text:?}")), "{message}");
                    assert!(message.ends_with(DNS_FORM), "{message}");
                }
            }
        }
        let long_label = format!("{}.example:80", "a".repeat(64));
        assert!(target(&long_label)
            .unwrap_err()
            .contains("has a label of 64 characters (at most 63)"));
        let long_name = format!("{}:80", ["abcdefghi"; 26].join("."));
        assert!(target(&long_name)
            .unwrap_err()
            .contains("is 259 characters long (at most 253)"));
    }
}
