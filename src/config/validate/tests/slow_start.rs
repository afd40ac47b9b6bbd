//! `services[].slow_start`.

use super::*;

fn slow_start_of(slow_start: &str) -> Option<SlowStartConfig> {
    load(&with_service_keys(&format!(
        "    slow_start: {slow_start}\n"
    )))
    .services[0]
        .slow_start
}

fn slow_start_issues(slow_start: &str) -> Vec<ConfigIssue> {
    issues(&with_service_keys(&format!(
        "    slow_start: {slow_start}\n"
    )))
}

#[test]
fn slow_start_is_off_unless_configured() {
    assert_eq!(load(&with_service_keys("")).services[0].slow_start, None);
}

#[test]
fn slow_start_values_and_defaults() {
    assert_eq!(
        slow_start_of("{ window: 30s }"),
        Some(SlowStartConfig {
            window: Duration::from_secs(30),
            aggression: defaults::SLOW_START_AGGRESSION,
            min_weight_percent: defaults::SLOW_START_MIN_WEIGHT_PERCENT,
        })
    );
    assert_eq!(
        slow_start_of("{ window: 1m, aggression: 0.5, min_weight_percent: 100 }"),
        Some(SlowStartConfig {
            window: Duration::from_secs(60),
            aggression: 0.5,
            min_weight_percent: 100,
        })
    );
    assert_eq!(
        slow_start_of("{ window: 2s, aggression: 3, min_weight_percent: 1 }"),
        Some(SlowStartConfig {
            window: Duration::from_secs(2),
            aggression: 3.0,
            min_weight_percent: 1,
        })
    );
}

#[test]
fn bad_slow_start_values() {
    let found = slow_start_issues("{ window: 0s, aggression: -1, min_weight_percent: 101 }");
    let message = issue_at(&found, "services[0].slow_start.window");
    assert!(message.contains("must be greater than 0"), "{message}");
    let message = issue_at(&found, "services[0].slow_start.aggression");
    assert!(
        message.contains("aggression -1 must be a number above 0"),
        "{message}"
    );
    let message = issue_at(&found, "services[0].slow_start.min_weight_percent");
    assert!(
        message.contains("min_weight_percent 101 is out of range"),
        "{message}"
    );
    assert!(message.contains("from 1 to 100"), "{message}");
    assert_eq!(found.len(), 3, "{found:#?}");

    let found = slow_start_issues("{ window: soon, aggression: 0, min_weight_percent: 0 }");
    assert!(issue_at(&found, "services[0].slow_start.window").contains("\"soon\""));
    assert!(issue_at(&found, "services[0].slow_start.aggression").contains("above 0"));
    assert!(issue_at(&found, "services[0].slow_start.min_weight_percent").contains("0 is out"));
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn slow_start_needs_a_window() {
    let found = slow_start_issues("{ aggression: 2 }");
    let message = issue_at(&found, "services[0].slow_start.window");
    assert!(message.contains("needs a `window`"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn a_slow_start_value_of_the_wrong_type_names_its_line() {
    let text = with_service_keys("    slow_start: { window: 1s, aggression: fast }\n");
    let error = raw::parse(&text).unwrap_err().to_string();
    assert!(
        error.contains("services[0].slow_start.aggression"),
        "{error}"
    );
    assert!(error.contains("line"), "{error}");
}
