//! `services[].health_check`.

use super::*;

fn health_of(check: &str) -> HealthCheckConfig {
    load(&with_service_keys(&format!("    health_check: {check}\n"))).services[0]
        .health_check
        .clone()
        .unwrap()
}

fn health_issues(check: &str) -> Vec<ConfigIssue> {
    issues(&with_service_keys(&format!("    health_check: {check}\n")))
}

#[test]
fn health_check_values_and_defaults() {
    assert_eq!(
        health_of("{ path: /healthz }"),
        HealthCheckConfig {
            path: "/healthz".into(),
            interval: defaults::HEALTH_INTERVAL,
            timeout: defaults::HEALTH_TIMEOUT,
            healthy_threshold: defaults::HEALTHY_THRESHOLD,
            unhealthy_threshold: defaults::UNHEALTHY_THRESHOLD,
        }
    );
    assert_eq!(
        health_of(
            "{ path: /ready, interval: 10s, timeout: 10s, healthy_threshold: 1,
                   unhealthy_threshold: 7 }"
        ),
        HealthCheckConfig {
            path: "/ready".into(),
            interval: Duration::from_secs(10),
            // Equal to the interval is fine.
            timeout: Duration::from_secs(10),
            healthy_threshold: 1,
            unhealthy_threshold: 7,
        }
    );
    // A query and percent-encoding are part of a request target.
    assert_eq!(health_of("{ path: '/' }").path, "/");
    assert_eq!(health_of("{ path: '/a%20b?x=1&y' }").path, "/a%20b?x=1&y");
}

#[test]
fn bad_health_check_paths() {
    let cases = [
        ("healthz", "must start with '/', e.g. /healthz"),
        ("''", "must start with '/'"),
        ("'/health z'", "contains ' '"),
        ("\"/a\\tb\"", "contains '\\t'"),
        ("\"/a\\x01\"", "contains '\\u{1}'"),
        ("'/healthz#top'", "contains '#'"),
        ("'/ünï'", "contains 'ü'; a request path is ASCII"),
        ("'/a<b>'", "is not a valid request path"),
    ];
    for (value, expected) in cases {
        let found = health_issues(&format!("{{ path: {value} }}"));
        let message = issue_at(&found, "services[0].health_check.path");
        assert!(message.contains(expected), "{value}: {message}");
        assert_eq!(found.len(), 1, "{found:#?}");
    }
}

#[test]
fn health_check_durations_and_thresholds() {
    let found = health_issues(
        "{ path: /h, interval: 0s, timeout: 0s, healthy_threshold: 0, unhealthy_threshold: 0 }",
    );
    let message = issue_at(&found, "services[0].health_check.interval");
    assert!(message.contains("must be greater than 0"), "{message}");
    assert!(issue_at(&found, "services[0].health_check.timeout").contains("greater than 0"));
    let message = issue_at(&found, "services[0].health_check.healthy_threshold");
    assert!(
        message.contains("healthy_threshold 0 is out of range"),
        "{message}"
    );
    assert!(message.contains("at least 1, e.g. 2"), "{message}");
    let message = issue_at(&found, "services[0].health_check.unhealthy_threshold");
    assert!(message.contains("at least 1, e.g. 3"), "{message}");
    assert_eq!(found.len(), 4, "{found:#?}");

    let found = health_issues("{ path: /h, interval: 5 }");
    assert!(issue_at(&found, "services[0].health_check.interval").contains("no unit"));
    // The timeout is not compared with an interval that did not parse.
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn health_check_timeout_may_not_exceed_the_interval() {
    let found = health_issues("{ path: /h, interval: 2s, timeout: 3s }");
    let message = issue_at(&found, "services[0].health_check.timeout");
    assert!(
        message.contains("timeout 3s is longer than interval 2s"),
        "{message}"
    );
    assert!(message.contains("at most the interval"), "{message}");
    assert_eq!(found.len(), 1, "{found:#?}");

    // Defaults count too, and the message says which value was not written.
    let found = health_issues("{ path: /h, interval: 500ms }");
    let message = issue_at(&found, "services[0].health_check.timeout");
    assert!(
        message.contains("the default timeout 1s is longer than interval 500ms"),
        "{message}"
    );
    let found = health_issues("{ path: /h, timeout: 6s }");
    let message = issue_at(&found, "services[0].health_check.timeout");
    assert!(
        message.contains("timeout 6s is longer than the default interval 5s"),
        "{message}"
    );
}
