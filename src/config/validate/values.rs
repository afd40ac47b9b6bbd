//! Leaf checks shared by every part of the file: durations, sizes and
//! integers in range, addresses, file paths, names (and their uniqueness),
//! header names, rates written as fractions or percentages, and the wording
//! helpers that keep messages alike.
//!
//! Each check records an issue at the key path it is given and returns None (or
//! the default) so the walk can go on. The syntax of a duration or a size
//! belongs to `config::duration`, that of a percentage to `Percent`; these
//! methods attach the key path and the key's own range.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

use super::Checker;
use crate::config::duration::{parse_duration, parse_size};
use crate::config::percent::Percent;
use crate::config::raw::{RawRate, RawSize};

const ADDRESS_FORM: &str =
    "expected IP:port, e.g. 0.0.0.0:8080 or [::1]:8080 (host names are not resolved)";

const NAME_FORM: &str = "use only letters, digits, '.', '_' and '-'";

pub(super) const K8S_NAME_FORM: &str =
    "Kubernetes names are 1 to 63 lower-case letters, digits and '-', \
     starting and ending with a letter or digit, e.g. web-canary";

/// How a rate key is named and exemplified in its messages.
pub(super) struct RateForm {
    key: &'static str,
    /// The same example value as a percentage and as a fraction.
    percent: &'static str,
    fraction: &'static str,
}

pub(super) const ERROR_RATE_FORM: RateForm = RateForm {
    key: "max_error_rate",
    percent: "1%",
    fraction: "0.01",
};

pub(super) const BUDGET_RATIO_FORM: RateForm = RateForm {
    key: "ratio",
    percent: "20%",
    fraction: "0.2",
};

impl Checker {
    /// A file path that must not be empty. Whether the file can be read is
    /// checked when it is loaded (at start and on reload), not here.
    pub(super) fn file_path(&mut self, path: &str, text: Option<&str>) -> Option<PathBuf> {
        let text = text?;
        if text.trim().is_empty() {
            self.issue(
                path,
                format!("`{}` is empty; give the path of a file", last_key(path)),
            );
            return None;
        }
        Some(PathBuf::from(text))
    }

    /// Checks the form of the name of item `index` (a listener, route, ...)
    /// and that no earlier sibling has it. `item_path(i)` is the key path of
    /// sibling `i`; `scope` says where names must be unique.
    pub(super) fn unique_name<'a>(
        &mut self,
        seen: &mut HashMap<&'a str, usize>,
        index: usize,
        name: &'a str,
        what: &str,
        scope: &str,
        item_path: impl Fn(usize) -> String,
    ) {
        let path = format!("{}.name", item_path(index));
        self.name(&path, what, name);
        match seen.get(name) {
            Some(&first) => self.issue(
                path,
                format!(
                    "duplicate {what} name {name:?}: {} already uses it; {what} names must \
                     be unique{scope}",
                    item_path(first)
                ),
            ),
            None => {
                seen.insert(name, index);
            }
        }
    }

    fn name(&mut self, path: &str, what: &str, name: &str) {
        if name.is_empty() {
            self.issue(path, format!("the {what} name is empty; {NAME_FORM}"));
            return;
        }
        if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
            self.issue(
                path,
                format!("{what} name {name:?} contains {bad:?}; {NAME_FORM}"),
            );
        }
    }

    /// Parses a header name, stored lower-case; `example` completes the
    /// message with a name that would fit.
    pub(super) fn header_name(
        &mut self,
        path: &str,
        text: &str,
        example: &str,
    ) -> Option<HeaderName> {
        if let Ok(name) = HeaderName::from_bytes(text.as_bytes()) {
            Some(name)
        } else {
            self.issue(
                path,
                format!(
                    "{text:?} is not a valid HTTP header name; use letters, digits and \
                     '-', e.g. {example}"
                ),
            );
            None
        }
    }

    pub(super) fn address(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        if let Ok(addr) = text.parse() {
            Some(addr)
        } else {
            self.issue(path, format!("invalid address {text:?}: {ADDRESS_FORM}"));
            None
        }
    }

    /// Parses an optional duration, falling back to `default` when absent.
    /// `zero_reason` is set for keys where zero is nonsense and says why.
    pub(super) fn duration(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: Duration,
        zero_reason: Option<&str>,
    ) -> Duration {
        self.duration_or(path, text, default, zero_reason)
            .unwrap_or(default)
    }

    /// Like [`Self::duration`], but None when the value is invalid, for keys
    /// that are compared with others: comparing a value that was already
    /// reported would add a second, misleading issue.
    pub(super) fn duration_or(
        &mut self,
        path: &str,
        text: Option<&str>,
        default: Duration,
        zero_reason: Option<&str>,
    ) -> Option<Duration> {
        match text {
            Some(text) => self.checked_duration(path, text, zero_reason),
            None => Some(default),
        }
    }

    /// An optional integer that must lie in `range`, else `default`. `fix`
    /// ends the message: what the key means, its range and an example.
    pub(super) fn int_in_range<T: PartialOrd + Copy + Display>(
        &mut self,
        path: &str,
        value: Option<T>,
        default: T,
        range: RangeInclusive<T>,
        fix: &str,
    ) -> T {
        match value {
            Some(value) if range.contains(&value) => value,
            Some(value) => {
                self.issue(
                    path,
                    format!("{} {value} is out of range; {fix}", last_key(path)),
                );
                default
            }
            None => default,
        }
    }

    /// Parses a size and checks it lies in `range`; None (with the issue
    /// recorded) otherwise. `fix` ends the message as for [`Self::int_in_range`].
    pub(super) fn size(
        &mut self,
        path: &str,
        raw: &RawSize,
        range: RangeInclusive<u64>,
        fix: &str,
    ) -> Option<u64> {
        let (bytes, written) = match raw {
            RawSize::Bytes(bytes) => (*bytes, bytes.to_string()),
            RawSize::Text(text) => match parse_size(text) {
                Ok(bytes) => (bytes, format!("{text:?} ({bytes} bytes)")),
                Err(why) => {
                    self.issue(path, why);
                    return None;
                }
            },
        };
        let key = last_key(path);
        let problem = if bytes < *range.start() {
            format!("is below the minimum {}", show_size(*range.start()))
        } else if bytes > *range.end() {
            format!("is above the maximum {}", show_size(*range.end()))
        } else {
            return Some(bytes);
        };
        self.issue(path, format!("{key} {written} {problem}; {fix}"));
        None
    }

    /// Parses a duration that is present; None (with the issue recorded)
    /// when it is malformed, or zero where `zero_reason` says zero is nonsense.
    pub(super) fn checked_duration(
        &mut self,
        path: &str,
        text: &str,
        zero_reason: Option<&str>,
    ) -> Option<Duration> {
        match parse_duration(text) {
            Ok(duration) => {
                if let (true, Some(reason)) = (duration.is_zero(), zero_reason) {
                    self.issue(
                        path,
                        format!("must be greater than 0 ({reason}); got {text:?}"),
                    );
                    return None;
                }
                Some(duration)
            }
            Err(message) => {
                self.issue(path, message);
                None
            }
        }
    }

    /// A share from 0 to 1, written as a fraction or a percentage.
    pub(super) fn rate(&mut self, path: &str, raw: &RawRate, form: &RateForm) -> Option<f64> {
        let RateForm {
            key,
            percent,
            fraction,
        } = form;
        let range = format!(
            "give a percentage from 0% to 100%, e.g. {percent}, or a fraction from 0 to 1, e.g. \
             {fraction}"
        );
        let rate = match raw {
            RawRate::Fraction(fraction) => *fraction,
            RawRate::Text(text) => match parse_percent(text, form) {
                Ok(rate) => rate,
                Err(why) => {
                    self.issue(path, why);
                    return None;
                }
            },
        };
        if (0.0..=1.0).contains(&rate) {
            return Some(rate);
        }
        let message = match raw {
            // A likely slip: `5` meant as 5 %, read as 500 %.
            RawRate::Fraction(n) if *n > 1.0 && *n <= 100.0 => format!(
                "{key} {n} is above 1: a plain number is a fraction ({fraction} = {percent}), \
                 so this is {}%; to mean {n} percent write `{n}%`",
                n * 100.0
            ),
            RawRate::Fraction(n) => format!("{key} {n} is out of range; {range}"),
            RawRate::Text(text) => format!("{key} {text:?} is above 100%; {range}"),
        };
        self.issue(path, message);
        None
    }
}

/// The last key of a key path: `max_headers` for `listeners[0].limits.max_headers`.
fn last_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// `key 2s`, or `the default key 1s` when the value was not written, so a
/// message about a default does not send the user looking for the key.
pub(super) fn which(key: &str, value: Duration, written: bool) -> String {
    if written {
        format!("{key} {value:?}")
    } else {
        format!("the default {key} {value:?}")
    }
}

/// A size bound for messages, in the largest binary unit that is exact.
pub(super) fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || match bytes {
                1 => "1 byte".to_owned(),
                _ => format!("{bytes} bytes"),
            },
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Why `text` is not a Kubernetes name (a DNS-1123 label, what namespaces
/// require), or None if it is one. Deployments are held to the same rule so
/// the linkerd-compatible labels match what Kubernetes tooling reports.
pub(super) fn k8s_name_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("is empty".to_owned());
    }
    let length = text.chars().count();
    if length > 63 {
        return Some(format!("is {length} characters long"));
    }
    if let Some(bad) = text
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        let case = if bad.is_ascii_uppercase() {
            "upper-case "
        } else {
            ""
        };
        return Some(format!("contains {case}{bad:?}"));
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Some("starts or ends with '-'".to_owned());
    }
    None
}

/// Parses `1%` or `0.5%` into a fraction (0.01, 0.005); `form` names the
/// key in messages. The range is checked by the caller.
pub(super) fn parse_percent(text: &str, form: &RateForm) -> Result<f64, String> {
    let RateForm {
        key,
        percent,
        fraction,
    } = form;
    text.parse::<Percent>()
        .map(Percent::fraction)
        .map_err(|problem| {
            format!(
                "{key} {text:?} {problem}; write a percentage such as {percent} or 0.5%, or an \
                 unquoted fraction such as {fraction}"
            )
        })
}
