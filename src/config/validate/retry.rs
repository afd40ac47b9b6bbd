//! `services[].retry`: attempts, the outcomes that are retried, the per-try
//! timeout (which must fit the service's request timeout), the replay buffer
//! and the retry budget.
//!
//! Called from `services`, which passes the request timeout in; the retry
//! decision itself is `proxy::retry`.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::values::BUDGET_RATIO_FORM;
use super::Checker;
use crate::config::raw::RawRetry;
use crate::config::{defaults, RetryConfig, RetryOn};
use crate::grpc::{self, StatusSet};

/// The gRPC statuses `retry.on` accepts, as Envoy's `retry_on` names them:
/// the ones a server answers before doing the work, or that say to try
/// again.
const RETRIED_GRPC_STATUSES: [&str; 5] = [
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Every extra try is another request to an endpoint that may be struggling.
const RETRY_ATTEMPTS: RangeInclusive<u32> = 0..=10;

/// Each request being retried may hold this much body in memory.
const MAX_RETRY_BUFFER_BYTES: u64 = 16 << 20;

impl Checker {
    /// `request` is the service's request timeout and whether it was
    /// written, or None when it is invalid (and already reported).
    pub(super) fn retry(
        &mut self,
        path: &str,
        raw: &RawRetry,
        request: Option<(Duration, bool)>,
    ) -> RetryConfig {
        let d = defaults::RETRY;
        let attempts = self.int_in_range(
            &format!("{path}.attempts"),
            raw.attempts,
            d.attempts,
            RETRY_ATTEMPTS,
            "give the extra tries after the first, from 0 (no retries) to 10, e.g. 2",
        );
        let on = match &raw.on {
            Some(words) => self.retry_on(&format!("{path}.on"), words),
            None => d.on,
        };

        let per_try_path = format!("{path}.per_try_timeout");
        let per_try_timeout = raw.per_try_timeout.as_deref().and_then(|text| {
            self.checked_duration(
                &per_try_path,
                text,
                Some(
                    "every try would time out at once; remove the key to bound tries by the \
                     request timeout only",
                ),
            )
        });
        if let (Some(per_try), Some((request, written))) = (per_try_timeout, request) {
            // The request timeout covers every try together, so a longer
            // per-try timeout could never fire.
            if per_try > request {
                let which = if written {
                    "the request timeout"
                } else {
                    "the default request timeout"
                };
                self.issue(
                    per_try_path,
                    format!(
                        "per_try_timeout {per_try:?} is longer than {which} {request:?} \
                         (`timeouts.request`), which bounds all tries together, so it would \
                         never fire; set it to at most {request:?} or raise `timeouts.request`"
                    ),
                );
            }
        }

        let buffer_bytes = raw
            .buffer_bytes
            .as_ref()
            .and_then(|size| {
                self.size(
                    &format!("{path}.buffer_bytes"),
                    size,
                    0..=MAX_RETRY_BUFFER_BYTES,
                    "give the largest request body kept for replay, from 0 (never retry a \
                     request with a body) to 16MiB, e.g. 64KiB",
                )
            })
            // In range, so at most 16 MiB: it fits any usize luas runs on.
            .map_or(d.buffer_bytes, |bytes| bytes as usize);

        let budget = raw.budget.as_ref();
        let budget_ratio = match budget.and_then(|budget| budget.ratio.as_ref()) {
            Some(ratio) => self
                .rate(&format!("{path}.budget.ratio"), ratio, &BUDGET_RATIO_FORM)
                .unwrap_or(d.budget_ratio),
            None => d.budget_ratio,
        };
        let budget_min_per_second = budget
            .and_then(|budget| budget.min_per_second)
            .unwrap_or(d.budget_min_per_second);

        RetryConfig {
            attempts,
            on,
            per_try_timeout,
            buffer_bytes,
            budget_ratio,
            budget_min_per_second,
        }
    }

    fn retry_on(&mut self, path: &str, words: &[String]) -> RetryOn {
        let mut on = RetryOn {
            server_error: false,
            reset: false,
            timeout: false,
            grpc: StatusSet::EMPTY,
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, word) in words.iter().enumerate() {
            let word_path = format!("{path}[{index}]");
            let mut grpc_flag = false;
            let flag = match word.as_str() {
                "5xx" => &mut on.server_error,
                "reset" => &mut on.reset,
                "timeout" => &mut on.timeout,
                word if RETRIED_GRPC_STATUSES.contains(&word) => &mut grpc_flag,
                _ => {
                    self.issue(
                        word_path,
                        format!(
                            "unknown retry condition {word:?}; use any of 5xx (a 5xx \
                             response), reset (the connection broke), timeout (the try \
                             timed out) and the gRPC statuses {}; connection failures are \
                             always retried",
                            RETRIED_GRPC_STATUSES.join(", ")
                        ),
                    );
                    continue;
                }
            };
            if let Some(first) = seen.get(word.as_str()) {
                self.issue(
                    word_path,
                    format!("{word:?} is listed twice (first at {path}[{first}]); list it once"),
                );
                continue;
            }
            seen.insert(word, index);
            *flag = true;
            if grpc_flag {
                let grpc::StatusCode(code) = word.parse().expect("a listed gRPC status name");
                on.grpc = on.grpc.with(code);
            }
        }
        on
    }
}
