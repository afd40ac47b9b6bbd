//! `services[].retry`.

use super::*;

fn retry_of(retry: &str) -> RetryConfig {
    load(&with_service_keys(&format!("    retry: {retry}\n"))).services[0].retry
}

fn retry_issues(retry: &str) -> Vec<ConfigIssue> {
    issues(&with_service_keys(&format!("    retry: {retry}\n")))
}

#[test]
fn retry_values_and_defaults() {
    assert_eq!(retry_of("{}"), defaults::RETRY);
    assert_eq!(
        retry_of(
            "{ attempts: 10, on: [timeout], per_try_timeout: 30s, buffer_bytes: 16MiB,
                   budget: { ratio: 1, min_per_second: 0 } }"
        ),
        RetryConfig {
            attempts: 10,
            on: RetryOn {
                server_error: false,
                reset: false,
                timeout: true,
                grpc: crate::grpc::StatusSet::EMPTY,
            },
            // Equal to the default request timeout is fine.
            per_try_timeout: Some(Duration::from_secs(30)),
            buffer_bytes: 16 << 20,
            budget_ratio: 1.0,
            budget_min_per_second: 0,
        }
    );
    // Each budget key defaults on its own.
    let retry = retry_of("{ attempts: 0, buffer_bytes: 0, budget: { min_per_second: 3 } }");
    assert_eq!(retry.attempts, 0);
    assert_eq!(retry.buffer_bytes, 0);
    assert_eq!(retry.budget_ratio, defaults::RETRY_BUDGET_RATIO);
    assert_eq!(retry.budget_min_per_second, 3);
    assert_eq!(
        retry_of("{ budget: {} }").budget_ratio,
        defaults::RETRY_BUDGET_RATIO
    );
}

#[test]
fn retry_on_any_subset() {
    let on = |list: &str| retry_of(&format!("{{ on: {list} }}")).on;
    let flags = |on: RetryOn| (on.server_error, on.reset, on.timeout);
    assert_eq!(flags(on("[]")), (false, false, false));
    assert_eq!(flags(on("[5xx]")), (true, false, false));
    assert_eq!(flags(on("[reset]")), (false, true, false));
    assert_eq!(flags(on("[timeout, 5xx]")), (true, false, true));
    assert_eq!(flags(on("[timeout, reset, 5xx]")), (true, true, true));
}

#[test]
fn bad_retry_on_words() {
    let found = retry_issues("{ on: [5xx, 503, reset, Timeout, reset, 5xx] }");
    let message = issue_at(&found, "services[0].retry.on[1]");
    assert!(
        message.contains("unknown retry condition \"503\""),
        "{message}"
    );
    assert!(message.contains("any of 5xx"), "{message}");
    assert!(message.contains("reset"), "{message}");
    assert!(message.contains("timeout"), "{message}");
    assert!(issue_at(&found, "services[0].retry.on[3]").contains("\"Timeout\""));
    let message = issue_at(&found, "services[0].retry.on[4]");
    assert!(
        message.contains("\"reset\" is listed twice (first at services[0].retry.on[2])"),
        "{message}"
    );
    let message = issue_at(&found, "services[0].retry.on[5]");
    assert!(
        message.contains("first at services[0].retry.on[0]"),
        "{message}"
    );
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn bad_retry_values() {
    let found = retry_issues(
        "{ attempts: 11, per_try_timeout: 0s, buffer_bytes: 16777217,
               budget: { ratio: 1.5 } }",
    );
    let message = issue_at(&found, "services[0].retry.attempts");
    assert!(message.contains("attempts 11 is out of range"), "{message}");
    assert!(message.contains("from 0 (no retries) to 10"), "{message}");
    let message = issue_at(&found, "services[0].retry.per_try_timeout");
    assert!(message.contains("must be greater than 0"), "{message}");
    let message = issue_at(&found, "services[0].retry.buffer_bytes");
    assert!(
        message.contains("buffer_bytes 16777217 is above the maximum 16MiB"),
        "{message}"
    );
    let message = issue_at(&found, "services[0].retry.budget.ratio");
    assert!(
        message.contains("ratio 1.5 is above 1: a plain number is a fraction (0.2 = 20%)"),
        "{message}"
    );
    assert!(message.contains("write `1.5%`"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");

    let found = retry_issues("{ per_try_timeout: 1, buffer_bytes: 64KB/s }");
    assert!(issue_at(&found, "services[0].retry.per_try_timeout").contains("no unit"));
    assert!(issue_at(&found, "services[0].retry.buffer_bytes").contains("unknown unit"));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn retry_budget_ratio_forms() {
    let cases = [
        ("0.2", 0.2),
        ("20%", 0.2),
        ("'12.5%'", 0.125),
        ("0", 0.0),
        ("0%", 0.0),
        ("1", 1.0),
        ("100%", 1.0),
    ];
    for (value, expected) in cases {
        let retry = retry_of(&format!("{{ budget: {{ ratio: {value} }} }}"));
        assert_eq!(retry.budget_ratio, expected, "{value}");
    }
    let cases = [
        ("20", "to mean 20 percent write `20%`"),
        ("-0.5", "ratio -0.5 is out of range"),
        ("150%", "ratio \"150%\" is above 100%"),
        ("'-5%'", "ratio \"-5%\" is not a percentage"),
        ("lots", "ratio \"lots\" has no '%'"),
    ];
    for (value, expected) in cases {
        let found = retry_issues(&format!("{{ budget: {{ ratio: {value} }} }}"));
        let message = issue_at(&found, "services[0].retry.budget.ratio");
        assert!(message.contains(expected), "{value}: {message}");
        assert!(message.contains("20%"), "{value}: {message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn per_try_timeout_may_not_exceed_the_request_timeout() {
    let found = issues(&with_service_keys(
        "    timeouts: { request: 2s }\n    retry: { per_try_timeout: 3s }\n",
    ));
    let message = issue_at(&found, "services[0].retry.per_try_timeout");
    assert!(
        message.contains("per_try_timeout 3s is longer than the request timeout 2s"),
        "{message}"
    );
    assert!(
        message.contains("set it to at most 2s or raise `timeouts.request`"),
        "{message}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");

    let found = retry_issues("{ per_try_timeout: 31s }");
    let message = issue_at(&found, "services[0].retry.per_try_timeout");
    assert!(
        message.contains("longer than the default request timeout 30s"),
        "{message}"
    );

    let config = load(&with_service_keys(
        "    timeouts: { request: 2s }\n    retry: { per_try_timeout: 2s }\n",
    ));
    assert_eq!(
        config.services[0].retry.per_try_timeout,
        Some(Duration::from_secs(2))
    );

    // A broken request timeout is reported once, not compared with.
    let found = issues(&with_service_keys(
        "    timeouts: { request: 0s }\n    retry: { per_try_timeout: 1h }\n",
    ));
    assert_eq!(paths(&found), ["services[0].timeouts.request"]);
}
